//! A ledger for the dashboard tests (`serve_dashboard`, `serve_browser`): a running run with
//! expected totals, a failed run whose root cause is hostile markup, a backup job.

use chrono::Utc;
use ferry::ledger::{JobRow, Ledger, RunExtra, RunInfo, Stage, Step, StepError, StepStatus};

/// A run started now by `alice`, still running.
pub fn info(id: &str) -> RunInfo {
    RunInfo {
        recipe_sha256: "s".into(),
        run_by: "alice".into(),
        ..super::run_info(id)
    }
}

/// A step of `code` on `target`, failed with `err` (an HTTP 409) when given.
pub fn step(seq: u64, stage: Stage, code: &str, target: &str, err: Option<&str>) -> Step {
    Step {
        seq,
        stage,
        kind: ferry::artifact::ArtifactKind::Integration,
        code: code.into(),
        version: "01.00.0000".into(),
        target: target.into(),
        action: "x".into(),
        reason: None,
        status: if err.is_some() {
            StepStatus::Failed
        } else {
            StepStatus::Ok
        },
        attempts: 1,
        error: err.map(|m| StepError {
            kind: "http".into(),
            status: Some(409),
            message: m.into(),
        }),
        sha256: None,
        started: Utc::now(),
        ended: Utc::now(),
    }
}

/// The root cause of `run-failed`'s import of BILLING: markup that must show as text.
pub const HOSTILE_CAUSE: &str = "connection <script>alert(1)</script> missing";

/// `run-live` (1 step of 10 expected, still running) and `run-failed` (BILLING's import failed
/// with [`HOSTILE_CAUSE`], PAYROLL's activation refused, one backup job `nightly`).
pub fn seed(db: &mut Ledger) {
    db.insert_run(&info("run-live"), &RunExtra::default(), None)
        .unwrap();
    db.set_expected("run-live", 10).unwrap();
    db.insert_step("run-live", &step(1, Stage::Export, "ORDERS", "dev", None))
        .unwrap();
    db.insert_run(&info("run-failed"), &RunExtra::default(), None)
        .unwrap();
    db.insert_step(
        "run-failed",
        &step(1, Stage::Export, "BILLING", "dev", None),
    )
    .unwrap();
    db.insert_step(
        "run-failed",
        &step(2, Stage::Import, "BILLING", "prod", Some(HOSTILE_CAUSE)),
    )
    .unwrap();
    db.insert_step(
        "run-failed",
        &step(
            3,
            Stage::Activate,
            "PAYROLL",
            "prod",
            Some("activation refused"),
        ),
    )
    .unwrap();
    db.insert_job(&JobRow {
        run: "run-failed".into(),
        seq: 1,
        vault: "backups".into(),
        name: "nightly".into(),
        path: "2026/nightly-1".into(),
        date: "2026-11-30".into(),
    })
    .unwrap();
    let mut done = info("run-failed");
    done.ended = Some(Utc::now());
    done.outcome = Some("failed".into());
    db.finish_run(&done).unwrap();
}
