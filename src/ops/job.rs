//! The vault jobs a run opened: written while the run goes, finished (manifest written) when the
//! recipe calls `job.finish()` or, at the latest, when the run ends ([`super::run::Run::finish`]).

use std::sync::{Arc, Mutex};

use crate::artifact::Artifact;
use crate::vault::{JobReader, JobWriter, Vault};

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
        }
    }

    /// Writes the manifest (once; later calls do nothing). Blocking: call it from the script
    /// thread or `spawn_blocking`.
    pub fn finish(&self) -> Result<(), String> {
        let Some(w) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return Ok(());
        };
        let w = Arc::try_unwrap(w)
            .map_err(|_| format!("job {}: still in use, manifest not written", self.path))?;
        w.finish().map(|_| ()).map_err(|e| e.to_string())
    }
}
