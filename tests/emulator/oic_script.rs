//! The `oic` script module against the emulator over HTTP, with faults: 429 storms, 500s,
//! dropped downloads, expiring tokens, 409/412/423. Each test asserts the final state of the
//! target and that every artifact was imported exactly once.

use crate::support;
use crate::support::emulator::{World, retry, spec};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ferry::cli::sandbox::config_for;
use ferry::ledger::StepStatus;
use ferry::script::Output;
use ferry::script::runner::{RunOptions, run_recipe};
use ferry::sim::{Faults, Seed, SimConfig};
use support::*;

fn world(dev: Seed, prod: Seed, prod_gen: u8) -> World {
    World::start(
        SimConfig {
            instances: vec![spec("dev", 2, dev), spec("prod", prod_gen, prod)],
            seed: 7,
            ..Default::default()
        },
        retry(12, 5, 40, 60),
    )
}

impl World {
    fn prod_state(&self) -> BTreeMap<String, String> {
        let prod = self.sim().instance("prod").unwrap().clone();
        self.rt
            .block_on(list_integrations(&prod))
            .iter()
            .map(|i| {
                (
                    i["id"].as_str().unwrap().to_string(),
                    i["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
    /// Successful archive imports on prod (POST or PUT `/integrations/archive`).
    fn prod_imports(&self) -> usize {
        self.sim()
            .request_log()
            .iter()
            .filter(|e| {
                e.instance.as_deref() == Some("prod")
                    && e.path.ends_with("/integrations/archive")
                    && (e.method == "POST" || e.method == "PUT")
                    && e.status < 300
            })
            .count()
    }
}

const MOVE_ALL: &str = r#"
let dev = oic::instance("dev");
let prod = oic::instance("prod");
let wanted = dev.integrations(#{ latest: true }).filter(|i| i.status != "INPROGRESS" && !i.locked && i.project_type != "PREBUILT");
let arts = dev.export_archives(wanted, #{ concurrency: 4 });
let results = prod.import_archives(arts, #{ overwrite: true, activate: "keep", concurrency: 3 });
let v = prod.verify(arts);
print(`verified ${v.ok} ${v.checked}`);
"#;

fn expected_count(w: &World) -> usize {
    let dev = w.sim().instance("dev").unwrap().clone();
    let list = w.rt.block_on(list_integrations(&dev));
    let mut latest: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for i in list {
        let c = i["code"].as_str().unwrap().to_string();
        if latest
            .get(&c)
            .is_none_or(|b| b["version"].as_str() < i["version"].as_str())
        {
            latest.insert(c, i);
        }
    }
    latest
        .values()
        .filter(|i| {
            i["status"] != "INPROGRESS" && i["lockedFlag"] != true && i["projectType"] != "PREBUILT"
        })
        .count()
}

#[test]
fn a_429_storm_and_server_errors_are_retried_and_every_artifact_lands_once() {
    let w = world(Seed::Sample, Seed::TargetConnections, 3);
    let n = expected_count(&w);
    w.sim().set_faults(Faults {
        rate_429: 0.2,
        rate_500: 0.03,
        rate_503: 0.03,
        path_regex: Some("/ic/api/".into()),
        ..Default::default()
    });
    let (r, out) = w.run(MOVE_ALL);
    assert_eq!(
        r.code,
        0,
        "{:?} {out:?} {:?}",
        r.error,
        r.report.as_ref().map(|x| x
            .artifacts
            .iter()
            .filter(|a| a.outcome() == "failed")
            .map(|a| format!("{:?}", a.stages))
            .collect::<Vec<_>>())
    );
    // The faults stop before the test reads prod's state itself.
    w.sim().set_faults(Faults::default());
    let log = w.sim().request_log();
    assert!(
        log.iter().filter(|e| e.injected).count() > 5,
        "faults were injected"
    );
    assert!(out.contains(&format!("verified true {n}")), "{out:?}");
    assert_eq!(w.prod_state().len(), n);
    assert_eq!(w.prod_imports(), n, "each artifact imported exactly once");
    let report = r.report.unwrap();
    assert!(
        report
            .artifacts
            .iter()
            .flat_map(|a| &a.stages)
            .any(|s| s.attempts > 1),
        "some step needed a retry"
    );
}

#[test]
fn retry_after_is_honoured() {
    let w = world(Seed::Sample, Seed::TargetConnections, 3);
    // The first three API calls are throttled with Retry-After: 1.
    w.sim().set_faults(Faults {
        script: vec![429, 429, 429],
        retry_after_secs: Some(1),
        path_regex: Some("/ic/api/integration/v1/integrations/".into()),
        ..Default::default()
    });
    let started = std::time::Instant::now();
    let (r, _) = w.run(r#"let dev = oic::instance("dev"); let a = dev.export_archives(dev.integration("HR_EMPLOYEE_SYNC|01.00.0000"));"#);
    assert_eq!(r.code, 0, "{:?}", r.error);
    assert!(
        started.elapsed() >= Duration::from_millis(2900),
        "waited for Retry-After three times: {:?}",
        started.elapsed()
    );
}

#[test]
fn dropped_downloads_are_retried_then_reported_and_a_rerun_completes() {
    let w = world(Seed::Sample, Seed::TargetConnections, 3);
    let n = expected_count(&w);
    // Every archive download is cut after 200 bytes: each export is retried, then recorded as a
    // transport failure; nothing reaches prod, and no partial archive is kept.
    w.sim().set_faults(Faults {
        drop_download_after: Some(200),
        ..Default::default()
    });
    let (r, _) = w.run(MOVE_ALL);
    assert_eq!(r.code, 1, "the exports failed");
    let report = r.report.unwrap();
    assert_eq!(report.failures.len(), n, "{:?}", report.failures);
    for f in &report.failures {
        assert_eq!(f.stage, ferry::ledger::Stage::Export);
        assert_eq!(f.error.kind, "transport", "{:?}", f.error);
    }
    assert!(
        report.artifacts.iter().all(|a| a.stages[0].attempts == 12),
        "retried up to the limit"
    );
    assert!(w.prod_state().is_empty());
    // The fault is gone: the same recipe completes, each artifact imported once.
    w.sim().set_faults(Faults::default());
    let (r, _) = w.run(MOVE_ALL);
    assert_eq!(r.code, 0, "{:?}", r.error);
    assert_eq!(w.prod_state().len(), n);
    assert_eq!(w.prod_imports(), n);
}

#[test]
fn expiring_tokens_are_renewed_without_surfacing_401() {
    let w = world(Seed::Sample, Seed::TargetConnections, 3);
    w.sim().set_faults(Faults {
        token_ttl_secs: Some(1),
        latency_ms: 60,
        path_regex: Some("/ic/api/".into()),
        ..Default::default()
    });
    let (r, out) = w.run(MOVE_ALL);
    assert_eq!(r.code, 0, "{:?} {out:?}", r.error);
    let log = w.sim().request_log();
    let token_calls = log
        .iter()
        .filter(|e| e.path.ends_with("/oauth2/v1/token"))
        .count();
    assert!(
        token_calls > 2,
        "tokens were renewed ({token_calls} token calls)"
    );
    let report = r.report.unwrap();
    assert!(report.failures.is_empty());
    assert_eq!(w.prod_imports(), expected_count(&w));
}

#[test]
fn existing_integrations_are_skipped_unless_overwritten_and_unchanged_ones_are_never_reimported() {
    let w = world(Seed::Sample, Seed::TargetConnections, 2);
    let (r, _) = w.run(MOVE_ALL);
    assert_eq!(r.code, 0, "{:?}", r.error);
    let n = expected_count(&w);
    // A new build of two integrations on dev: their archives differ from what prod holds.
    for id in [
        "HR_EMPLOYEE_SYNC|01.00.0000",
        "HR_PAYROLL_EXPORT|01.00.0000",
    ] {
        assert!(w.sim().set_archive_size("dev", id, 30_000), "{id}");
    }
    let (r, out) = w.run(
        r#"
let dev = oic::instance("dev");
let prod = oic::instance("prod");
let arts = dev.export_archives(dev.integrations(#{ code: "HR_*", latest: true, status: "ACTIVATED" }));
let n = arts.filter(|a| a.kind == "integration").len();
let kept = prod.import_archives(arts, #{ overwrite: false }).filter(|r| r.kind == "integration");
print(`without overwrite: ${kept.filter(|r| r.action == "skipped").len()} skipped of ${n}`);
let again = prod.import_archives(arts, #{ overwrite: true }).filter(|r| r.kind == "integration");
print(`replaced ${again.filter(|r| r.action == "replaced" && r.status == "ACTIVATED").len()}`);
print(`unchanged ${again.filter(|r| r.action == "skipped" && r.reason.starts_with("unchanged by checksum")).len()}`);
// A new export of the same integrations: other bytes (export time stamps), the same content.
let arts2 = dev.export_archives(dev.integrations(#{ code: "HR_*", latest: true, status: "ACTIVATED" }));
let differ = 0;
for a in arts2.filter(|a| a.kind == "integration") {
    if arts.filter(|b| b.kind == "integration" && b.id == a.id && b.sha256 != a.sha256).len() == 1 { differ += 1; }
}
print(`bytes differ ${differ}`);
let third = prod.import_archives(arts2, #{ overwrite: true }).filter(|r| r.kind == "integration");
print(`still unchanged ${third.filter(|r| r.action == "skipped" && r.reason.starts_with("unchanged by checksum")).len()}`);
try { prod.import_archives(arts, #{ overwirte: true }); } catch (e) { print(`usage: ${e.kind}`); }
"#,
    );
    assert_eq!(r.code, 0, "{:?} {out:?}", r.error);
    let k: usize = out
        .iter()
        .find(|l| l.starts_with("without overwrite"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|x| x.parse().ok())
        .unwrap();
    assert!(k >= 3, "{out:?}");
    assert!(
        out.contains(&format!("without overwrite: {k} skipped of {k}")),
        "{out:?}"
    );
    assert!(
        out.contains(&"replaced 2".to_string()),
        "the two new builds replace what prod had: {out:?}"
    );
    assert!(
        out.contains(&format!("unchanged {}", k - 2)),
        "the others are skipped by checksum: {out:?}"
    );
    assert!(
        out.contains(&format!("bytes differ {k}")),
        "two exports are never byte-identical: {out:?}"
    );
    assert!(
        out.contains(&format!("still unchanged {k}")),
        "a new export of unchanged content is skipped (content digest): {out:?}"
    );
    assert!(out.contains(&"usage: usage".to_string()), "{out:?}");
    assert_eq!(
        w.prod_imports(),
        n + 2,
        "n imports, then exactly the two replacements"
    );
    assert_eq!(
        w.prod_state()
            .get("HR_EMPLOYEE_SYNC|01.00.0000")
            .map(String::as_str),
        Some("ACTIVATED")
    );
}

#[test]
fn locked_and_prebuilt_exports_are_refused_with_423_and_recorded() {
    let w = world(Seed::Sample, Seed::TargetConnections, 3);
    let (r, out) = w.run(
        r#"
let dev = oic::instance("dev");
let blocked = dev.integrations().filter(|i| i.locked || i.project_type == "PREBUILT");
print(`blocked ${blocked.len()}`);
let arts = dev.export_archives(blocked);
print(`exported ${arts.len()}`);
try { dev.export_archives(blocked, #{ stop_on_error: true }); } catch (e) { print(`caught ${e.status} ${e.stage}`); }
"#,
    );
    assert_eq!(r.code, 1, "artifacts failed");
    assert!(out.contains(&"blocked 2".to_string()), "{out:?}");
    assert!(out.contains(&"exported 0".to_string()));
    assert!(out.contains(&"caught 423 export".to_string()), "{out:?}");
    let report = r.report.unwrap();
    assert!(report.failures.iter().all(|f| f.error.status == Some(423)));
}

#[test]
fn draft_connections_block_activation_until_configured() {
    // prod has no connections: importing creates them as drafts, and activation is refused (412).
    let w = world(Seed::Sample, Seed::Empty, 3);
    let (r, out) = w.run(
        r#"
let dev = oic::instance("dev");
let prod = oic::instance("prod");
let arts = dev.export_archives(dev.integration("HR_EMPLOYEE_SYNC|01.00.0000"));
let first = prod.import_archives(arts, #{ activate: true });
print(`first: ${first[0].action} ${first[0].stage} ${first[0].status_code}`);
let blocking = prod.blocking_connections(arts);
print(`blocking: ${blocking.map(|b| b.connection + ":" + b.status)}`);
let settings = #{};
for b in blocking {
    settings[b.connection] = #{ properties: #{ connectionUrl: "https://target.example.com" }, security: #{ username: "svc", password: "not-a-real-password" } };
}
let second = prod.import_archives(arts, #{ overwrite: true, activate: true, connections: settings });
print(`second: ${second[0].action} ${second[0].status}`);
print(`still blocking: ${prod.blocking_connections(arts).len()}`);
"#,
    );
    assert_eq!(
        r.code, 1,
        "the first activation failed and was recorded: {:?}",
        r.error
    );
    assert!(
        out.contains(&"first: created activate 412".to_string()),
        "{out:?}"
    );
    assert!(
        out.iter()
            .any(|l| l.starts_with("blocking: [") && l.contains("INPROGRESS")),
        "{out:?}"
    );
    assert!(
        out.contains(&"second: skipped ACTIVATED".to_string()),
        "{out:?}"
    );
    assert!(out.contains(&"still blocking: 0".to_string()), "{out:?}");
    assert_eq!(
        w.prod_state()
            .get("HR_EMPLOYEE_SYNC|01.00.0000")
            .map(String::as_str),
        Some("ACTIVATED")
    );
    // The password given in the recipe never reaches the run record.
    let report = r.report.unwrap();
    assert!(!report.to_json_pretty().contains("not-a-real-password"));
    let steps: Vec<_> = report
        .artifacts
        .iter()
        .flat_map(|a| a.stages.iter())
        .filter(|s| s.stage == ferry::ledger::Stage::Connection)
        .collect();
    assert!(!steps.is_empty() && steps.iter().all(|s| s.status == StepStatus::Ok));
}

#[test]
fn dry_run_describes_effects_and_changes_nothing() {
    let w = world(Seed::Sample, Seed::TargetConnections, 3);
    let cfg = config_for(&w.sim().info, &w.dir.path().join(".ferry")).unwrap();
    let out = Output::buffer();
    let r = run_recipe(
        "test.rhai",
        MOVE_ALL,
        Arc::new(cfg),
        w.rt.handle().clone(),
        Default::default(),
        out.clone(),
        &RunOptions {
            dry_run: true,
            ..Default::default()
        },
    );
    assert_eq!(r.code, 0, "{:?}", r.error);
    let report = r.report.unwrap();
    assert!(report.summary.planned > 0);
    assert_eq!(report.summary.imported, 0);
    assert!(w.prod_state().is_empty(), "nothing imported in a dry run");
    assert_eq!(w.prod_imports(), 0);
    assert!(
        w.sim()
            .request_log()
            .iter()
            .all(|e| e.method == "GET" || e.path.ends_with("/token")),
        "only reads in a dry run"
    );
}

#[test]
fn listed_integrations_carry_their_connections() {
    // OIC's list items have no `dependencies` (only `endPoints`): the connections of an item of
    // `integrations()` must still be those `integration(id)` gives.
    let w = world(Seed::Sample, Seed::Empty, 3);
    let (r, out) = w.run(
        r#"
let dev = oic::instance("dev");
for i in dev.integrations() {
    let one = dev.integration(i.id);
    if i.connections != one.connections || i.to_map().connections != one.connections {
        print(`differ ${i.id}: ${i.connections} vs ${one.connections}`);
    }
    if one.connections.len() > 0 { print(`uses ${i.id}`); }
}
"#,
    );
    assert_eq!(r.code, 0, "{:?} {out:?}", r.error);
    assert!(
        !out.iter().any(|l| l.starts_with("differ")),
        "list items lack their connections: {out:?}"
    );
    assert!(out.iter().any(|l| l.starts_with("uses ")), "{out:?}");
}
