//! `rbac` from recipes, through the `ferry` binary in the sandbox (the emulator's identity domain
//! over real HTTP): grants from a map and from a CSV file, idempotence, the dry-run plan, and the
//! results in the run record.

use crate::support;

use support::*;

#[test]
fn grants_from_a_map_and_a_file_are_recorded_and_idempotent() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("team.csv"),
        "user or group,role,project\nana.silva@example.com,Service Monitor,\nOIC-Developers,ServiceDeveloper,\n",
    )
    .unwrap();
    let out = run_rhai(
        dir.path(),
        r#"
let prod = oic::instance("prod");
let first = rbac::grant(prod, #{ "jane.doe@example.com": ["Service Developer", "ServiceViewer"], "ghost@example.com": "ServiceViewer" });
for r in first { print(`first ${r.principal} ${r.role} ${r.status}`); }
let team = rbac::load_roles("team.csv");
print(`team ${team.len()} ${team[1].group} ${team[1].role}`);
for r in rbac::grant(prod, team) { print(`team ${r.principal} ${r.role} ${r.status}`); }
for r in rbac::grant(prod, "team.csv") { print(`again ${r.principal} ${r.role} ${r.status}`); }
try { rbac::grant(prod, #{ "jane.doe@example.com": "Boss" }); } catch (e) { print(`bad role: ${e.kind}: ${e.message}`); }
try { rbac::project_acl(prod, "NO_SUCH_PROJECT"); } catch (e) { print(`acl: ${e.status}`); }
try { rbac::grant(prod, [#{ user: "a@example.com", role: "ServiceViewer", team: "x" }]); } catch (e) { print(`bad key: ${e.kind}: ${e.message}`); }
try { rbac::grant(prod, [#{ role: "ServiceViewer" }]); } catch (e) { print(`no one: ${e.kind}: ${e.message}`); }
try { rbac::identity("nope", "OICINST_prod"); } catch (e) { print(`no domain: ${e.kind}`); }
try { rbac::grant(42, #{}); } catch (e) { print(`bad target: ${e.kind}`); }
"#,
        &["--sandbox"],
        &[],
    );
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    // The unknown user is a failed grant: the run reports it (exit 1) and goes on.
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    for line in [
        "first jane.doe@example.com ServiceDeveloper granted",
        "first jane.doe@example.com ServiceViewer granted",
        "first ghost@example.com ServiceViewer failed",
        "team 2 OIC-Developers ServiceDeveloper",
        "team ana.silva@example.com ServiceMonitor granted",
        "team OIC-Developers ServiceDeveloper granted",
        "again ana.silva@example.com ServiceMonitor unchanged",
        "again OIC-Developers ServiceDeveloper unchanged",
        "  FAILED user:ghost@example.com ServiceViewer: user `ghost@example.com` not found in identity domain sandbox",
        "acl: 404",
        "bad key: usage: roles[0]: unknown key `team`",
        "no one: usage: roles[0]: give one of `user`, `group`",
        "no domain: config",
        "bad target: usage",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in\n{stdout}");
    }
    assert!(
        stdout.contains(
            "bad role: usage: role map roles[\"jane.doe@example.com\"]: unknown OIC role `Boss`"
        ),
        "{stdout}"
    );
    // The run record has one grant step per user and role.
    let runs = dir.path().join(".ferry/runs");
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    let failures = report["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["stage"], "grant");
    assert_eq!(
        failures[0]["artifact"],
        "user:ghost@example.com|ServiceViewer"
    );
    // Every step, from the ledger (the report is written before end-of-run notifications).
    let journal = journal_of(dir.path());
    assert_eq!(
        journal.matches("\"stage\":\"grant\",\"status\"").count(),
        7,
        "{journal}"
    );
}

#[test]
fn dry_run_plans_grants_and_changes_nothing() {
    let dir = tempdir();
    let out = run_rhai(
        dir.path(),
        r#"
let prod = oic::instance("prod");
for r in rbac::grant(prod, [#{ user: "jane.doe@example.com", role: "ServiceDeployer" }]) { print(`plan ${r.status}`); }
for r in rbac::grant(prod, [#{ user: "jane.doe@example.com", role: "ServiceDeployer" }]) { print(`plan-again ${r.status}`); }
"#,
        &["--sandbox", "--dry-run"],
        &[],
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("plan planned"), "{stdout}");
    // Nothing was granted, so the second plan still plans.
    assert!(stdout.contains("plan-again planned"), "{stdout}");
}

#[test]
fn every_rbac_and_notify_function_has_a_compiling_example() {
    let (_rt, engine) = ferry::cli::docs::offline_engine().expect("engine");
    let (_, entries) = ferry::script::docs::collect(&engine);
    let mine: Vec<_> = entries
        .iter()
        .filter(|e| e.group == "rbac" || e.group == "notify")
        .collect();
    assert!(mine.len() >= 14, "{}", mine.len());
    for e in mine {
        let start = e
            .doc
            .find("```rhai\n")
            .unwrap_or_else(|| panic!("{} has no example", e.signature));
        let rest = &e.doc[start + 8..];
        let code = &rest[..rest.find("```").expect("closed example")];
        if let Err(err) = engine.compile(code) {
            panic!("{}: example does not compile: {err}\n{code}", e.signature);
        }
    }
}
