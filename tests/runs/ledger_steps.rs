//! The ledger records what happened, stage by stage, in a run with injected failures (an export
//! refused by the source, activations refused by the target); `ferry runs`, `ferry errors` and
//! the reports agree with it; `report.html` is well-formed and names every failure's root cause.

use crate::support::ledger as ledger_support;

use std::collections::BTreeMap;

use ferry::ledger::{Ledger, Stage, StepStatus};
use ferry::sim::{Faults, Seed};
use ledger_support::*;

const FAILING_EXPORT: &str = "FIN_GL_JOURNAL|02.00.0000";

/// Checks that `html` is well-formed: every tag closed in order (void elements excepted),
/// attributes quoted, entities known.
fn check_well_formed(html: &str) -> Result<(), String> {
    const VOID: &[&str] = &["meta", "br", "hr", "img", "link", "input"];
    let mut stack: Vec<String> = vec![];
    let mut rest = html;
    if !rest.starts_with("<!DOCTYPE html>") {
        return Err("no <!DOCTYPE html>".into());
    }
    rest = &rest["<!DOCTYPE html>".len()..];
    while let Some(i) = rest.find(['<', '&']) {
        let (before, at) = rest.split_at(i);
        if before.contains('>') {
            return Err(format!("stray `>` in text: {before:?}"));
        }
        if at.starts_with('&') {
            let end = at.find(';').ok_or("unterminated entity")?;
            let ent = &at[..=end];
            if !["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].contains(&ent) {
                return Err(format!("unknown entity {ent}"));
            }
            rest = &at[end + 1..];
            continue;
        }
        let end = at.find('>').ok_or("unterminated tag")?;
        let tag = &at[1..end];
        rest = &at[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack.pop().ok_or(format!("</{name}> closes nothing"))?;
            if open != name {
                return Err(format!("</{name}> closes <{open}>"));
            }
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if name.is_empty() {
            return Err(format!("bad tag <{tag}>"));
        }
        // Attributes: name="value" pairs only.
        let attrs = tag[name.len()..].trim().trim_end_matches('/');
        let mut a = attrs;
        while !a.trim().is_empty() {
            let t = a.trim_start();
            let eq = t
                .find('=')
                .ok_or(format!("attribute without value in <{tag}>"))?;
            let v = &t[eq + 1..];
            if !v.starts_with('"') {
                return Err(format!("unquoted attribute in <{tag}>"));
            }
            let close = v[1..]
                .find('"')
                .ok_or(format!("unterminated attribute in <{tag}>"))?;
            a = &v[close + 2..];
        }
        if !VOID.contains(&name.as_str()) {
            stack.push(name);
        }
    }
    if !stack.is_empty() {
        return Err(format!("unclosed: {stack:?}"));
    }
    Ok(())
}

#[test]
fn ledger_records_every_stage_of_a_run_with_failures() {
    // prod is empty: imported integrations bring their connections as drafts, so activating them
    // is refused; and dev refuses one export.
    let env = Env::start(Seed::Empty);
    env.sim.set_faults(Faults {
        path_regex: Some(r"FIN_GL_JOURNAL%7C02\.00\.0000/archive$".into()),
        script: vec![404, 404, 404],
        ..Faults::default()
    });
    let recipe = env.recipe("migrate.rhai", MIGRATE);
    let out = env.ferry(&["run", &recipe, "--json", "--var", "job=ledger-test"]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    let report = json_out(&out);
    let run = report["run"]["id"].as_str().expect("run id").to_string();
    assert_eq!(report["run"]["outcome"], "failed");

    let db = Ledger::open(&env.path().join(".ferry").join("ledger.db")).expect("ledger");
    let steps = db.steps(&run).expect("steps");
    let dev = env.rt.block_on(list_integrations(&env.instance("dev")));
    let selected = expected_selection(&dev);
    let mut by_artifact: BTreeMap<String, Vec<(Stage, StepStatus)>> = BTreeMap::new();
    // Integrations only: the recipe's end-of-run notification is a `message` step.
    for s in steps
        .iter()
        .filter(|s| s.kind == ferry::artifact::ArtifactKind::Integration)
    {
        by_artifact
            .entry(s.key().id())
            .or_default()
            .push((s.stage, s.status));
    }
    assert_eq!(
        by_artifact.keys().cloned().collect::<Vec<_>>(),
        selected.keys().cloned().collect::<Vec<_>>(),
        "one artifact per selected integration"
    );
    let mut failed_activations = 0;
    for (id, dev_status) in &selected {
        let got = &by_artifact[id];
        if id == FAILING_EXPORT {
            assert_eq!(got, &vec![(Stage::Export, StepStatus::Failed)], "{id}");
            let s = steps.iter().find(|s| s.key().id() == *id).unwrap();
            assert_eq!(s.error.as_ref().unwrap().status, Some(404));
            continue;
        }
        let mut want = vec![
            (Stage::Export, StepStatus::Ok),
            (Stage::Store, StepStatus::Ok),
            (Stage::Verify, StepStatus::Ok),
            (Stage::Import, StepStatus::Ok),
        ];
        if dev_status == "ACTIVATED" {
            // What the target says decides what the ledger must say.
            let on_prod = env.sim.integration_status("prod", id).unwrap_or_default();
            let st = if on_prod == "ACTIVATED" {
                StepStatus::Ok
            } else {
                failed_activations += 1;
                StepStatus::Failed
            };
            want.push((Stage::Activate, st));
        }
        let mut sorted = got.clone();
        sorted.sort_by_key(|(s, _)| *s);
        assert_eq!(sorted, want, "{id}");
    }
    assert!(
        failed_activations > 0,
        "the emulator was expected to refuse some activations"
    );

    // The report says the same as the ledger.
    let failures = report["failures"].as_array().unwrap();
    let failed_steps: Vec<_> = steps
        .iter()
        .filter(|s| s.status == StepStatus::Failed)
        .collect();
    assert_eq!(failures.len(), failed_steps.len());
    assert_eq!(failures.len(), failed_activations + 1);

    // `ferry errors` is the central error log.
    let all = json_out(&env.ferry(&["errors", "--json"]));
    assert_eq!(all.as_array().unwrap().len(), failed_steps.len());
    let exports = json_out(&env.ferry(&["errors", "--json", "--stage", "export"]));
    let exports = exports.as_array().unwrap();
    assert_eq!(exports.len(), 1);
    assert_eq!(exports[0]["code"], "FIN_GL_JOURNAL");
    assert_eq!(exports[0]["run"], run.as_str());
    let acts = json_out(&env.ferry(&["errors", "--json", "--stage", "activate", "--run", &run]));
    assert_eq!(acts.as_array().unwrap().len(), failed_activations);
    let future = json_out(&env.ferry(&["errors", "--json", "--since", "2999-01-01"]));
    assert_eq!(future.as_array().unwrap().len(), 0);
    let bad = env.ferry(&["errors", "--stage", "nope"]);
    assert_eq!(bad.status.code(), Some(2));

    // `ferry runs` and `ferry runs show`.
    let runs = json_out(&env.ferry(&["runs", "--json"]));
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["id"], run.as_str());
    assert_eq!(runs[0]["outcome"], "failed");
    assert_eq!(
        runs[0]["failed_steps"].as_u64(),
        Some(failed_steps.len() as u64)
    );
    assert!(
        runs[0]["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "prod")
    );
    let show = json_out(&env.ferry(&["runs", "show", &run, "--json"]));
    assert_eq!(show["summary"], report["summary"]);
    let table = env.ferry(&["runs", "show", "last"]);
    assert!(
        text(&table.stdout).contains(&run),
        "{}",
        text(&table.stdout)
    );

    // report.json is what --json printed; report.html is well-formed and has every failure.
    let dir = run_dir(env.path(), &run);
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(on_disk, report);
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    check_well_formed(&html).unwrap_or_else(|e| panic!("report.html: {e}"));
    assert!(!html.contains("<script"), "no scripts in the report");
    assert!(
        !html.contains("src=") && !html.contains("<link") && !html.contains("url("),
        "report.html must be self-contained"
    );
    // Who ran it, from which instance to which, into which backup job.
    let run_by = report["run"]["run_by"].as_str().unwrap();
    assert!(!run_by.is_empty() && run_by != "unknown", "{run_by}");
    assert_eq!(fact(&html, "Run by"), run_by);
    assert_eq!(fact(&html, "From"), "dev");
    assert_eq!(fact(&html, "To"), "prod");
    assert_eq!(report["from"], serde_json::json!(["dev"]));
    assert_eq!(report["to"], serde_json::json!(["prod"]));
    let job = &report["backup_jobs"][0];
    assert_eq!(job["name"], "ledger-test");
    assert_eq!(job["vault"], "backups");
    assert_eq!(
        fact(&html, "Backup jobs"),
        format!(
            "ledger-test (vault backups): {}",
            job["path"].as_str().unwrap()
        )
    );
    // The run said how many it selected: the dashboard's progress counts against it.
    let row = db.run(&run).unwrap().expect("the run's row");
    // The export stage counts every artifact it selected: the integrations and, beside each
    // scheduled one, its schedule (`Schedules/CODE_VERSION.json`).
    let schedules = steps
        .iter()
        .filter(|s| s.kind == ferry::artifact::ArtifactKind::Schedule && s.stage == Stage::Export)
        .map(|s| s.key().id())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let expected = (selected.len() + schedules) as u64;
    assert_eq!(
        row.expected,
        Some(expected),
        "{schedules} schedule(s) exported"
    );
    assert!(row.artifacts >= expected, "{row:?}");

    let failures_section = &html[html.find("id=\"failures\"").expect("failures table")..];
    for s in &failed_steps {
        let e = s.error.as_ref().unwrap();
        let id = s.key().id();
        assert!(failures_section.contains(&id), "report.html lacks {id}");
        let msg = ferry::ledger::html::escape(&e.message);
        let cause = ferry::ledger::html::escape(&ferry::ledger::report::root_cause(&e.message));
        let row = failures_section
            .lines()
            .find(|l| l.contains("class=\"failure\"") && l.contains(&id))
            .unwrap_or_else(|| panic!("report.html has no failure row for {id}"));
        let at_cause = row
            .find(&cause)
            .unwrap_or_else(|| panic!("report.html lacks the root cause of {id}: {cause}"));
        assert!(
            row.contains(&msg),
            "report.html lacks the message of {id}: {msg}"
        );
        assert!(
            at_cause < row.find(&id).unwrap(),
            "the root cause comes first in the row of {id}"
        );
    }

    // Recipes read the same ledger: `ledger::runs`, `run`, `failed`, `errors`.
    let read = env.recipe("read.rhai", READ_LEDGER);
    let out = env.ferry(&["run", &read, "--var", &format!("run={run}")]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let seen: serde_json::Value = stdout
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON line in {stdout}"));
    assert_eq!(seen["listed"], true);
    assert_eq!(seen["outcome"], "failed");
    assert_eq!(seen["steps"].as_u64(), Some(steps.len() as u64));
    assert_eq!(seen["first_step"]["seq"], steps[0].seq);
    assert_eq!(seen["first_step"]["stage"], steps[0].stage.as_str());
    let failed = seen["failed"].as_array().expect("failed");
    // One row per artifact, stage and target whose last step failed.
    let key = |s: &ferry::ledger::Step| (s.key().id(), s.stage.as_str(), s.target.clone());
    let keys: std::collections::BTreeSet<_> = failed_steps
        .iter()
        .map(|f| key(f))
        .filter(|k| steps.iter().rfind(|s| key(s) == *k).unwrap().status == StepStatus::Failed)
        .collect();
    let rows: std::collections::BTreeSet<_> = failed
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["stage"].as_str().unwrap(),
                f["target"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        keys.iter()
            .map(|(i, s, t)| (i.clone(), *s, t.clone()))
            .collect()
    );
    let export = failed
        .iter()
        .find(|f| f["stage"] == "export")
        .expect("the failed export");
    assert_eq!(export["id"], FAILING_EXPORT);
    assert_eq!(export["code"], "FIN_GL_JOURNAL");
    assert_eq!(export["kind"], "integration");
    assert_eq!(export["target"], "dev");
    assert_eq!(export["status"], 404);
    assert!(!export["error"].as_str().unwrap().is_empty());
    assert_eq!(seen["export_errors"], 1);
    assert_eq!(seen["limited"], 1);
    assert_eq!(seen["missing"], serde_json::Value::Null);
    let refused = seen["refused"].as_str().unwrap();
    assert!(refused.contains("unknown option `bogus`"), "{refused}");
    let refused = seen["bad_stage"].as_str().unwrap();
    assert!(refused.contains("unknown stage `nope`"), "{refused}");
}

/// The text of the fact `key` in report.html's facts table (one row a line).
fn fact(html: &str, key: &str) -> String {
    let line = html
        .lines()
        .find(|l| l.contains(&format!(">{key}</th>")))
        .unwrap_or_else(|| panic!("report.html has no fact `{key}`"));
    let td = &line[line.find("<td").unwrap()..];
    let text = &td[td.find('>').unwrap() + 1..td.find("</td>").unwrap()];
    text.replace("&amp;", "&")
}

#[test]
fn the_well_formedness_check_catches_errors() {
    assert!(check_well_formed("<!DOCTYPE html><p><b>x</p></b>").is_err());
    assert!(check_well_formed("<!DOCTYPE html><p a=b>x</p>").is_err());
    assert!(check_well_formed("<!DOCTYPE html><p>a & b</p>").is_err());
    assert!(check_well_formed("<!DOCTYPE html><p a=\"b\">x<br></p>").is_ok());
}

/// Reads the ledger of run `run` from a recipe and prints what it saw as one JSON line.
const READ_LEDGER: &str = r#"
let id = param("run");
let r = ledger::run(id);
let refused = "";
try { ledger::errors(#{ bogus: 1 }); } catch (e) { refused = e.message; }
let bad_stage = "";
try { ledger::errors(#{ stage: "nope" }); } catch (e) { bad_stage = e.message; }
print(to_json(#{
    listed: ledger::runs().map(|x| x.id).contains(id),
    outcome: r.outcome,
    steps: r.steps.len(),
    first_step: r.steps[0],
    failed: ledger::failed(id),
    export_errors: ledger::errors(#{ run: id, stage: "export" }).len(),
    limited: ledger::errors(#{ run: id, limit: 1, since: "2020-01-01" }).len(),
    missing: ledger::run("no-such-run"),
    refused: refused,
    bad_stage: bad_stage,
}));
"#;
