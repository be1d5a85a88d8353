//! `ferry vault jobs|verify|restore|prune` on the sandbox's file vault.

use crate::support;

use serde_json::Value;
use support::*;

#[test]
fn list_verify_restore_and_prune_jobs() {
    let d = tempdir();
    for _ in 0..2 {
        sandbox_migrate(d.path());
    }
    let list = sandbox_jobs(d.path());
    assert_eq!(list.len(), 2, "{list:?}");
    let job = list[1]["path"].as_str().unwrap().to_string();
    assert!(
        list.iter()
            .all(|j| j["complete"] == true && j["artifacts"].as_u64().unwrap() >= 4)
    );

    let out = ferry(d.path(), &["vault", "verify", &job, "--sandbox"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("all ok"));

    // Restore into a fresh sandbox prod: every archive imported, activation states re-applied.
    let out = sandbox_restore(d.path(), &job, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rep: Value = serde_json::from_slice(&out.stdout).unwrap();
    let n = list[1]["artifacts"].as_u64().unwrap();
    assert_eq!(rep["summary"]["verified"], n);
    assert_eq!(rep["summary"]["imported"], n);
    assert!(rep["summary"]["activated"].as_u64().unwrap() >= 1);

    // A flipped byte: verify says so (exit 1), and restore refuses the file before importing it.
    let manifest = sandbox_manifest(d.path(), &job);
    let victim = manifest["entries"][0]["path"].as_str().unwrap().to_string();
    let victim_id = format!(
        "{}|{}",
        manifest["entries"][0]["code"].as_str().unwrap(),
        manifest["entries"][0]["version"].as_str().unwrap()
    );
    let file = sandbox_vault(d.path()).join(&job).join(&victim);
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&file, bytes).unwrap();
    let out = ferry(d.path(), &["vault", "verify", &job, "--sandbox"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("MISMATCH"),
        "{}",
        text(&out.stdout)
    );
    let out = sandbox_restore(d.path(), &job, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let rep: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rep["summary"]["imported"], n - 1, "the others are restored");
    let f = rep["failures"].as_array().unwrap();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["artifact"], victim_id.as_str());
    assert_eq!(f[0]["stage"], "verify");

    // Prune: both jobs are from today; keeping one day keeps the newest only.
    let out = ferry(
        d.path(),
        &["vault", "prune", "--daily", "1", "--dry-run", "--sandbox"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("kept 1, deleted 1"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(sandbox_jobs(d.path()).len(), 2, "a dry run deletes nothing");
    let out = ferry(
        d.path(),
        &["vault", "prune", "--daily", "1", "--sandbox"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let left = sandbox_jobs(d.path());
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["path"], list[1]["path"], "the newest job is kept");
    let out = ferry(d.path(), &["vault", "prune", "--sandbox"], &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a policy that keeps nothing is refused"
    );
}
