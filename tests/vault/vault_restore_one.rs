//! `ferry vault restore JOB --only CODE|VERSION --to INSTANCE`: one artifact from any night.

use crate::support;

use serde_json::Value;
use support::*;

#[test]
fn restore_one_artifact_from_a_job() {
    let d = tempdir();
    sandbox_migrate(d.path());
    let jobs = sandbox_jobs(d.path());
    let job = jobs[0]["path"].as_str().unwrap().to_string();
    assert!(jobs[0]["artifacts"].as_u64().unwrap() >= 2, "{jobs:#?}");
    let manifest = sandbox_manifest(d.path(), &job);
    let e = manifest["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "integration")
        .expect("an integration in the job")
        .clone();
    let id = format!(
        "{}|{}",
        e["code"].as_str().unwrap(),
        e["version"].as_str().unwrap()
    );

    let out = sandbox_restore(d.path(), &job, &["--only", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rep: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rep["summary"]["verified"], 1, "{rep:#}");
    assert_eq!(rep["summary"]["imported"], 1, "{rep:#}");
    let arts = rep["artifacts"].as_array().unwrap();
    assert!(arts.iter().all(|a| a["code"] == e["code"]), "{rep:#}");

    // Something the job does not hold is refused, naming what it holds.
    let out = ferry(
        d.path(),
        &[
            "vault",
            "restore",
            &job,
            "--only",
            "NO_SUCH|01.00.0000",
            "--to",
            "prod",
            "--sandbox",
        ],
        &[],
    );
    assert_ne!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(
        err.contains("NO_SUCH|01.00.0000") && err.contains(&id),
        "{err}"
    );
}
