//! The vault jobs a run opened: written while the run goes, finished (manifest written) when the
//! recipe calls `job.finish()` or, at the latest, when the run ends ([`super::run::Run::finish`]).
//! A run that was stopped (Ctrl-C, SIGTERM) leaves them unfinished, to be continued with
//! `--resume`. Artifacts whose export failed in the run are recorded as missing: the job is then
//! `partial`, and says so.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::artifact::{Artifact, ArtifactKey};
use crate::ledger::{RunRecord, Stage, StepStatus};
use crate::shell::Shell;
use crate::vault::{JobReader, JobStatus, JobWriter, MissingEntry, Vault};

/// The state of one job of a run (the script type `Job` holds an `Arc` of it).
pub struct JobState {
    pub vault_name: String,
    pub vault: Vault,
    pub name: String,
    pub path: String,
    /// Open for writing (absent in a dry run and once finished).
    pub writer: Mutex<Option<Arc<JobWriter>>>,
    /// Open for reading (after `finish`, or for a job opened by path).
    pub reader: Mutex<Option<Arc<JobReader>>>,
    /// Dry run: what would have been stored.
    pub planned: Mutex<Vec<Artifact>>,
    /// Once finished (or opened finished): complete or partial, and what is missing.
    pub finished: Mutex<Option<(JobStatus, Vec<MissingEntry>)>>,
}

impl JobState {
    /// A job state with nothing read yet.
    pub fn new(
        vault_name: &str,
        vault: Vault,
        name: &str,
        path: &str,
        writer: Option<Arc<JobWriter>>,
    ) -> JobState {
        JobState {
            vault_name: vault_name.to_string(),
            vault,
            name: name.to_string(),
            path: path.to_string(),
            writer: Mutex::new(writer),
            reader: Mutex::new(None),
            planned: Mutex::new(vec![]),
            finished: Mutex::new(None),
        }
    }

    /// Writes the manifest (once; later calls do nothing), with the artifacts whose export failed
    /// in the run of `record` as missing; a partial job is told on `shell`. Blocking: call it from
    /// the script thread or `spawn_blocking`.
    pub fn finish(&self, record: &RunRecord, shell: &Shell) -> Result<(), String> {
        let Some(w) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return Ok(());
        };
        let w = Arc::try_unwrap(w)
            .map_err(|_| format!("job {}: still in use, manifest not written", self.path))?;
        for (key, reason) in failed_exports(record) {
            w.note_missing(key, reason);
        }
        let m = w.finish().map_err(|e| e.to_string())?;
        if m.status == JobStatus::Partial {
            shell.line(&partial_line(&self.path, &m.missing));
        }
        *self.finished.lock().unwrap_or_else(|p| p.into_inner()) = Some((m.status, m.missing));
        Ok(())
    }

    /// `open` (still being written), `complete` or `partial`.
    pub fn status(&self) -> &'static str {
        match &*self.finished.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((s, _)) => s.as_str(),
            None => "open",
        }
    }
}

/// The plain statement of a partial job: how many artifacts are missing, and which.
pub fn partial_line(path: &str, missing: &[MissingEntry]) -> String {
    let names: Vec<String> = missing.iter().map(|m| m.key().to_string()).collect();
    format!(
        "job {path} is PARTIAL: {} selected artifact(s) missing: {}",
        missing.len(),
        names.join(", ")
    )
}

/// The artifacts whose export failed in this run and did not succeed later.
fn failed_exports(record: &RunRecord) -> Vec<(ArtifactKey, String)> {
    let mut last = BTreeMap::new();
    for st in record.steps() {
        if st.stage == Stage::Export {
            last.insert(st.key(), st);
        }
    }
    last.into_iter()
        .filter(|(_, st)| st.status == StepStatus::Failed)
        .map(|(k, st)| {
            let why = st.error.map(|e| e.message).unwrap_or_default();
            (k, format!("export failed: {why}"))
        })
        .collect()
}
