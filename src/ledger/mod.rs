//! The run record: every effect of a run as a step (artifact, stage, status, attempts, error,
//! timings, sha256), appended to a journal on disk as it happens, and the reports built from it.
//!
//! A run lives in `<state dir>/runs/<run id>/`: `journal.jsonl` (one line per finished step,
//! flushed as it is written, so a killed process loses nothing that completed) and, at the end,
//! `report.json` (the same document `--json` prints).

pub mod report;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::artifact::{ArtifactKey, ArtifactKind};

pub use report::{Report, Summary};

/// The stage of a migration a step belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Export,
    Store,
    Verify,
    Import,
    Activate,
    Deactivate,
    Delete,
    Connection,
    Grant,
    Notify,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Export => "export",
            Stage::Store => "store",
            Stage::Verify => "verify",
            Stage::Import => "import",
            Stage::Activate => "activate",
            Stage::Deactivate => "deactivate",
            Stage::Delete => "delete",
            Stage::Connection => "connection",
            Stage::Grant => "grant",
            Stage::Notify => "notify",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// Done.
    Ok,
    /// Failed after its retries.
    Failed,
    /// Not done because there was nothing to do (already in the wanted state, or done in the run
    /// being resumed).
    Skipped,
    /// Described instead of done (dry run).
    Planned,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Ok => "ok",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::Planned => "planned",
        }
    }
}

/// A failure, with the root cause first.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StepError {
    /// `http`, `transport`, `timeout`, `auth`, `archive`, `integrity`, `vault`, `io`, ...
    pub kind: String,
    /// HTTP status, when the failure was an HTTP answer.
    pub status: Option<u16>,
    pub message: String,
}

/// One effect, as it happened.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Step {
    pub seq: u64,
    pub stage: Stage,
    pub kind: ArtifactKind,
    pub code: String,
    pub version: String,
    /// The instance or vault the effect was applied to.
    pub target: String,
    /// What was (or would be) done, in words: "import new", "replace", "activate (was ACTIVATED on dev)".
    pub action: String,
    pub status: StepStatus,
    pub attempts: u32,
    pub error: Option<StepError>,
    pub sha256: Option<String>,
    pub started: DateTime<Utc>,
    pub ended: DateTime<Utc>,
}

impl Step {
    pub fn key(&self) -> ArtifactKey {
        ArtifactKey::new(self.kind, self.code.clone(), self.version.clone())
    }
    pub fn duration_ms(&self) -> i64 {
        (self.ended - self.started).num_milliseconds()
    }
}

/// Facts about a run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunInfo {
    pub id: String,
    pub recipe: String,
    pub recipe_sha256: String,
    pub run_by: String,
    pub started: DateTime<Utc>,
    pub ended: Option<DateTime<Utc>>,
    pub dry_run: bool,
    pub sandbox: bool,
    pub ferry_version: String,
    /// `ok`, `failed` (some artifact failed), `error` (the recipe stopped), `interrupted`.
    pub outcome: Option<String>,
    pub message: Option<String>,
}

/// Errors of the ledger itself.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot write the run record in {path}: {reason}")]
    Write { path: String, reason: String },
}

/// The record of one run: steps in memory, mirrored line by line to `journal.jsonl`.
pub struct RunRecord {
    info: Mutex<RunInfo>,
    steps: Mutex<Vec<Step>>,
    dir: Option<PathBuf>,
    journal: Mutex<Option<File>>,
    secrets: Vec<crate::config::Secret>,
}

impl RunRecord {
    /// A record that lives only in memory (tests, `ferry check`).
    pub fn in_memory(info: RunInfo) -> RunRecord {
        RunRecord {
            info: Mutex::new(info),
            steps: Mutex::new(vec![]),
            dir: None,
            journal: Mutex::new(None),
            secrets: vec![],
        }
    }

    /// A record in `<state_dir>/runs/<id>/`, created now.
    pub fn create(
        state_dir: &Path,
        info: RunInfo,
        secrets: Vec<crate::config::Secret>,
    ) -> Result<RunRecord, LedgerError> {
        let dir = state_dir.join("runs").join(&info.id);
        let werr = |e: std::io::Error| LedgerError::Write {
            path: dir.display().to_string(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(&dir).map_err(werr)?;
        let journal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("journal.jsonl"))
            .map_err(werr)?;
        let rec = RunRecord {
            info: Mutex::new(info),
            steps: Mutex::new(vec![]),
            dir: Some(dir),
            journal: Mutex::new(Some(journal)),
            secrets,
        };
        rec.write_line(&serde_json::json!({ "run": rec.info() }))?;
        Ok(rec)
    }

    /// New run id: `YYYYMMDD-HHMMSS-xxxx`.
    pub fn new_id() -> String {
        let now = Utc::now();
        format!(
            "{}-{:04x}",
            now.format("%Y%m%d-%H%M%S"),
            rand::random::<u16>()
        )
    }

    pub fn info(&self) -> RunInfo {
        self.info.lock().expect("run info lock").clone()
    }

    /// The run's folder, when it has one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn write_line(&self, v: &serde_json::Value) -> Result<(), LedgerError> {
        let mut j = self.journal.lock().expect("journal lock");
        if let Some(f) = j.as_mut() {
            let line = crate::config::scrub(&v.to_string(), &self.secrets);
            let werr = |e: std::io::Error| LedgerError::Write {
                path: self
                    .dir
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
                reason: e.to_string(),
            };
            writeln!(f, "{line}").map_err(werr)?;
            f.flush().map_err(werr)?;
            f.sync_data().map_err(werr)?;
        }
        Ok(())
    }

    /// Appends a finished step (scrubbed of secrets) and journals it.
    pub fn push(&self, mut step: Step) -> Step {
        if let Some(e) = step.error.as_mut() {
            e.message = crate::config::scrub(&e.message, &self.secrets);
        }
        {
            let mut steps = self.steps.lock().expect("steps lock");
            step.seq = steps.len() as u64 + 1;
            steps.push(step.clone());
        }
        if let Err(e) = self.write_line(&serde_json::json!({ "step": step })) {
            tracing::error!("{e}");
        }
        step
    }

    pub fn steps(&self) -> Vec<Step> {
        self.steps.lock().expect("steps lock").clone()
    }

    /// Marks the run finished and writes `report.json`; returns the report.
    pub fn finish(&self, outcome: &str, message: Option<String>) -> Report {
        {
            let mut i = self.info.lock().expect("run info lock");
            i.ended = Some(Utc::now());
            i.outcome = Some(outcome.to_string());
            i.message = message.map(|m| crate::config::scrub(&m, &self.secrets));
        }
        let report = Report::build(self.info(), &self.steps());
        let _ = self.write_line(&serde_json::json!({ "end": self.info() }));
        if let Some(dir) = &self.dir {
            let text = crate::config::scrub(&report.to_json_pretty(), &self.secrets);
            let tmp = dir.join("report.json.tmp");
            if std::fs::write(&tmp, text)
                .and_then(|_| std::fs::rename(&tmp, dir.join("report.json")))
                .is_err()
            {
                tracing::error!("cannot write report.json in {}", dir.display());
            }
        }
        report
    }
}

/// Who runs ferry: `$FERRY_USER`, `$USER`, or `unknown`.
pub fn current_user() -> String {
    std::env::var("FERRY_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".to_string())
}
