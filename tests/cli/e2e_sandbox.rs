//! The sandbox run end to end, over real HTTP: after `scripts/migrate.rhai`, `prod` holds exactly
//! the selected `CODE|VERSION` set, each ACTIVATED where it was in `dev`; the manifest's sha256
//! values match the stored files and the archives exported from `prod`.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ferry::cli::sandbox;
use ferry::script::Output;
use ferry::script::runner::{RunOptions, run_recipe};
use serde_json::Value;
use support::ledger::{self, expected_selection};
use support::*;

#[test]
fn sandbox_migration_lands_exactly_the_selection() {
    let dir = tempdir();
    let rt = ferry::cli::runtime().unwrap();
    let sb = rt
        .block_on(sandbox::start(&dir.path().join(".ferry")))
        .unwrap();
    let dev = sb
        .sim
        .info
        .instances
        .iter()
        .find(|i| i.name == "dev")
        .unwrap()
        .clone();
    let prod = sb
        .sim
        .info
        .instances
        .iter()
        .find(|i| i.name == "prod")
        .unwrap()
        .clone();
    assert_eq!(dev.generation, 2);
    assert_eq!(prod.generation, 3);

    let dev_list = rt.block_on(list_integrations(&dev));
    let expected = expected_selection(&dev_list);
    assert!(
        expected.len() >= 4,
        "the sample seed has several movable integrations: {expected:?}"
    );
    assert!(
        expected.values().any(|s| s == "ACTIVATED") && expected.values().any(|s| s == "CONFIGURED")
    );
    assert!(
        rt.block_on(list_integrations(&prod)).is_empty(),
        "prod starts empty"
    );
    // Scheduled integrations of the selection: each also gives a schedule artifact (exported,
    // stored, verified, put on prod, and started where it runs on dev: the sample's schedules
    // run where their integration is active).
    let scheduled: Vec<&Value> = dev_list
        .iter()
        .filter(|i| i["scheduleDefinedFlag"] == true)
        .filter(|i| expected.contains_key(i["id"].as_str().unwrap()))
        .collect();
    assert!(
        !scheduled.is_empty(),
        "the sample selection has a scheduled integration"
    );
    let started = scheduled
        .iter()
        .filter(|i| i["status"] == "ACTIVATED")
        .count();
    let sched = scheduled.len();

    let out = Output::buffer();
    let res = run_recipe(
        "scripts/migrate.rhai",
        ledger::MIGRATE,
        Arc::new(sb.config.clone()),
        rt.handle().clone(),
        Default::default(),
        out.clone(),
        &RunOptions {
            sandbox: true,
            ..Default::default()
        },
    );
    assert_eq!(
        res.code,
        0,
        "error: {:?}\noutput: {:?}",
        res.error,
        out.lines()
    );
    let report = res.report.unwrap();
    assert_eq!(report.summary.exported as usize, expected.len() + sched);
    assert_eq!(report.summary.backed_up as usize, expected.len() + sched);
    assert_eq!(report.summary.verified as usize, expected.len() + sched);
    assert_eq!(report.summary.imported as usize, expected.len() + sched);
    assert_eq!(
        report.summary.activated as usize,
        expected.values().filter(|s| *s == "ACTIVATED").count() + started
    );
    assert_eq!(report.summary.failed, 0);

    // prod holds exactly the selection, ACTIVATED where it was on dev.
    let prod_list = rt.block_on(list_integrations(&prod));
    let got: BTreeMap<String, String> = prod_list
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_string(),
                i["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got.keys().collect::<BTreeSet<_>>(),
        expected.keys().collect::<BTreeSet<_>>()
    );
    for (id, dev_status) in &expected {
        let want = if dev_status == "ACTIVATED" {
            "ACTIVATED"
        } else {
            "CONFIGURED"
        };
        assert_eq!(got[id], want, "{id} on prod");
    }

    // The manifest matches the stored files and what prod exports.
    let vault_root = dir.path().join(".ferry/sandbox/vault");
    let manifests: Vec<_> = files_under(&vault_root)
        .into_iter()
        .filter(|p| p.file_name().unwrap() == "manifest.json")
        .collect();
    assert_eq!(manifests.len(), 1, "one job");
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&manifests[0]).unwrap()).unwrap();
    let job_dir = manifests[0].parent().unwrap();
    assert!(
        job_dir
            .strip_prefix(&vault_root)
            .unwrap()
            .starts_with("OIC_Backups"),
        "dated tree: {}",
        job_dir.display()
    );
    let (schedules, entries): (Vec<&Value>, Vec<&Value>) = m["entries"]
        .as_array()
        .unwrap()
        .iter()
        .partition(|e| e["kind"] == "schedule");
    assert_eq!(entries.len(), expected.len());
    assert_eq!(schedules.len(), sched);
    for s in &schedules {
        let want = format!(
            "Schedules/{}_{}.json.age",
            s["code"].as_str().unwrap(),
            s["version"].as_str().unwrap()
        );
        assert_eq!(s["path"], want.as_str());
    }
    for e in entries {
        let id = format!(
            "{}|{}",
            e["code"].as_str().unwrap(),
            e["version"].as_str().unwrap()
        );
        let path = job_dir.join(e["path"].as_str().unwrap());
        // The sandbox vault encrypts: CODE_VERSION.iar.age, checked against the stored checksum;
        // the plaintext's content digest is what prod's archive must match.
        let want = format!(
            "{}_{}.iar.age",
            e["code"].as_str().unwrap(),
            e["version"].as_str().unwrap()
        );
        assert_eq!(path.file_name().unwrap().to_str().unwrap(), want);
        assert_eq!(e["encrypted"], true);
        let stored = std::fs::read(&path).unwrap();
        assert_eq!(
            sha256_hex(&stored),
            e["stored_sha256"].as_str().unwrap(),
            "stored file of {id}"
        );
        assert_ne!(
            e["stored_sha256"], e["sha256"],
            "stored bytes are not the plaintext"
        );
        // A new export has other bytes (export time stamps, as on real OIC): the same content.
        let from_prod = rt.block_on(export_bytes(&prod, &id));
        assert_eq!(
            content_digest(&from_prod),
            e["content_sha256"].as_str().unwrap(),
            "prod's archive of {id}"
        );
    }

    // The report is written into the run's folder too.
    let run_dir = dir.path().join(".ferry/runs").join(&report.run.id);
    let on_disk: Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(on_disk["summary"]["imported"], expected.len() + sched);
    rt.block_on(sb.sim.shutdown());
}

#[test]
fn the_readme_command_runs_and_prints_the_json_report() {
    let dir = tempdir();
    let recipe = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/migrate.rhai");
    let out = ferry(
        dir.path(),
        &["run", recipe.to_str().unwrap(), "--sandbox", "--json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON report");
    for k in ["exported", "backed_up", "imported", "activated", "failed"] {
        assert!(v["summary"][k].is_u64(), "summary.{k}");
    }
    assert_eq!(v["summary"]["failed"], 0);
    let arts: Vec<&Value> = v["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "integration")
        .collect();
    assert!(!arts.is_empty());
    // Phase 4 grants roles and the run ends with mail to the outbox: recorded as steps too.
    assert!(
        v["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "grant" && a["stages"][0]["status"] == "ok")
    );
    for a in arts {
        assert_eq!(a["kind"], "integration");
        assert!(a["code"].is_string() && a["version"].is_string());
        assert_eq!(a["sha256"].as_str().unwrap().len(), 64);
        let stages: Vec<&str> = a["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["stage"].as_str().unwrap())
            .collect();
        assert!(
            stages.starts_with(&["export", "store", "verify", "import"]),
            "{stages:?}"
        );
        assert!(
            a["stages"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["status"] == "ok")
        );
    }
    // Without --json: the summary table and exit code 0.
    let out = ferry(
        dir.path(),
        &["run", recipe.to_str().unwrap(), "--sandbox"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.contains("ARTIFACT") && s.contains("EXPORT") && s.contains("ACTIVATE"),
        "{s}"
    );
    assert!(s.contains("0 failed"), "{s}");
}
