//! Restoring one artifact (or a few) from any backup job: which manifest entries a selection
//! like `ORDERS|01.00.0002` or `COUNTRIES` names (`ferry vault restore JOB --only ...`,
//! `job.restore(target, #{ only: [...] })`).

use std::collections::HashMap;
use std::sync::Arc;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use super::ctx::fan_out;
use super::import::{ImportOptions, ImportResult, import_archives};
use super::job::JobState;
use super::{Ctx, OpsError};
use crate::artifact::{Artifact, ArtifactKey, FileHandle};
use crate::effect::{Effect, Failure};
use crate::ledger::{Stage, StepStatus};
use crate::oic::OicClient;
use crate::vault::{EntryCheck, JobFilter, JobReader, JobSummary, ManifestEntry, Vault};

/// The entries `only` selects: each item is `CODE|VERSION` (that version), or `CODE` (every
/// entry with that code: an integration's versions in the job, a lookup, a project...). Codes
/// compare case-insensitively. Fails, naming the item and what the job holds, when an item
/// selects nothing.
pub fn select(entries: &[ManifestEntry], only: &[String]) -> Result<Vec<ManifestEntry>, String> {
    let mut out: Vec<ManifestEntry> = vec![];
    for item in only {
        let (code, version) = match item.split_once('|') {
            Some((c, v)) => (c.trim(), Some(v.trim())),
            None => (item.trim(), None),
        };
        let hits: Vec<&ManifestEntry> = entries
            .iter()
            .filter(|e| e.code.eq_ignore_ascii_case(code))
            .filter(|e| version.is_none_or(|v| e.version == v))
            .collect();
        if hits.is_empty() {
            return Err(format!(
                "`{item}` is not in the job (it holds {})",
                held(entries)
            ));
        }
        for h in hits {
            if !out.iter().any(|o| o.path == h.path) {
                out.push(h.clone());
            }
        }
    }
    Ok(out)
}

/// The job's artifacts as `CODE|VERSION` (or `CODE`), the first 20.
fn held(entries: &[ManifestEntry]) -> String {
    let mut names: Vec<String> = entries
        .iter()
        .map(|e| {
            if e.version.is_empty() {
                e.code.clone()
            } else {
                format!("{}|{}", e.code, e.version)
            }
        })
        .collect();
    if names.is_empty() {
        return "nothing".into();
    }
    let more = names.len().saturating_sub(20);
    names.truncate(20);
    let mut s = names.join(", ");
    if more > 0 {
        s.push_str(&format!(" and {more} more"));
    }
    s
}

/// Options of a restore (`job.restore(target, options)`, `ferry vault restore`): the selection,
/// and the import options (with their defaults) in the same map. Unknown keys are refused.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// `CODE|VERSION` or `CODE` items; empty: the whole job.
    pub only: Vec<String>,
    /// Restore what a partial job holds.
    pub accept_partial: bool,
    /// How to import (the defaults of `import_archives`).
    pub import: ImportOptions,
}

impl<'de> Deserialize<'de> for RestoreOptions {
    /// `only` and `accept_partial` are taken out; the rest is read as [`ImportOptions`] (serde's
    /// `flatten` cannot refuse unknown keys).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut m = serde_json::Map::deserialize(d)?;
        let mut take = |k: &str| m.remove(k).filter(|v| !v.is_null());
        let only = match take("only") {
            Some(v) => serde_json::from_value(v).map_err(|_| {
                D::Error::custom("`only` is a list of \"CODE|VERSION\" or \"CODE\" strings")
            })?,
            None => vec![],
        };
        let accept_partial = match take("accept_partial") {
            Some(v) => v
                .as_bool()
                .ok_or_else(|| D::Error::custom("`accept_partial` must be true or false"))?,
            None => false,
        };
        let import =
            ImportOptions::deserialize(serde_json::Value::Object(m)).map_err(D::Error::custom)?;
        Ok(RestoreOptions {
            only,
            accept_partial,
            import,
        })
    }
}

pub(super) fn vault_err(at: &str, e: impl std::fmt::Display) -> OpsError {
    OpsError::Vault {
        at: at.to_string(),
        message: e.to_string(),
    }
}

/// Opens the configured vault `name`.
pub async fn open_vault(ctx: &dyn Ctx, name: &str) -> Result<Vault, OpsError> {
    let profile = ctx.config().vault(name)?.clone();
    tokio::task::spawn_blocking(move || Vault::open(&profile))
        .await
        .map_err(|e| vault_err(name, e))?
        .map_err(|e| vault_err(name, e))
}

/// Opens job `job_path` of `vault` (named `vault_name`), finished, to read it back.
pub async fn open_job_in(
    vault_name: &str,
    vault: &Vault,
    job_path: &str,
) -> Result<JobState, OpsError> {
    let (v, p) = (vault.clone(), job_path.to_string());
    let reader = tokio::task::spawn_blocking(move || v.open_job(&p))
        .await
        .map_err(|e| vault_err(vault_name, e))?
        .map_err(|e| vault_err(vault_name, e))?;
    Ok(JobState::opened(vault_name, vault.clone(), reader))
}

/// The jobs of `vault` (named `vault_name`), oldest first.
pub async fn list_jobs(vault_name: &str, vault: &Vault) -> Result<Vec<JobSummary>, OpsError> {
    let v = vault.clone();
    tokio::task::spawn_blocking(move || v.list_jobs(JobFilter::default()))
        .await
        .map_err(|e| vault_err(vault_name, e))?
        .map_err(|e| vault_err(vault_name, e))
}

/// A job read back: finished first when it is still being written.
pub async fn reader(ctx: &dyn Ctx, job: &Arc<JobState>) -> Result<Arc<JobReader>, OpsError> {
    let (j, record, shell) = (
        job.clone(),
        ctx.exec().record().clone(),
        ctx.shell().clone(),
    );
    tokio::task::spawn_blocking(move || j.reader(&record, &shell))
        .await
        .map_err(|e| vault_err(&job.vault_name, e))?
}

/// What `job.verify()` found: every byte of every file of the job read and checked against the
/// manifest.
#[derive(Debug, serde::Serialize)]
pub struct JobCheck {
    pub ok: bool,
    pub bytes_read: u64,
    /// The entries that are not as the manifest says.
    pub failures: Vec<EntryCheck>,
}

/// Reads every byte of every file of `job` (finished first when still open) and checks it
/// against the manifest.
pub async fn verify_job(ctx: &dyn Ctx, job: &Arc<JobState>) -> Result<JobCheck, OpsError> {
    let r = reader(ctx, job).await?;
    let at = job.vault_name.as_str();
    let rep = tokio::task::spawn_blocking(move || r.verify())
        .await
        .map_err(|e| vault_err(at, e))?
        .map_err(|e| vault_err(at, e))?;
    let failures = rep.failures().into_iter().cloned().collect();
    Ok(JobCheck {
        ok: rep.ok(),
        bytes_read: rep.bytes_read,
        failures,
    })
}

/// Restores job `job_path` of vault `vault_name` into instance `target` (`ferry vault restore`):
/// see [`restore_job`].
pub async fn restore(
    ctx: &dyn Ctx,
    vault_name: &str,
    job_path: &str,
    target: &str,
    o: &RestoreOptions,
) -> Result<Vec<ImportResult>, OpsError> {
    let vault = open_vault(ctx, vault_name).await?;
    let job = Arc::new(open_job_in(vault_name, &vault, job_path).await?);
    let client = ctx.client(target)?;
    restore_job(ctx, &job, &client, o).await
}

/// Restores a job into the instance of `client`: fetches every selected archive (each verified
/// against the manifest, one `verify` step; a tampered file or a wrong key is refused before
/// anything is imported), then imports them and re-applies their activation states (the
/// options of `import_archives`). A partial job is refused unless `accept_partial`.
pub async fn restore_job(
    ctx: &dyn Ctx,
    job: &Arc<JobState>,
    client: &OicClient,
    o: &RestoreOptions,
) -> Result<Vec<ImportResult>, OpsError> {
    job.check_partial(o.accept_partial)?;
    let arts = job_artifacts(ctx, job, &o.only).await?;
    // A job this run just finished may have turned out partial.
    job.check_partial(o.accept_partial)?;
    import_archives(ctx, client, arts, &o.import).await
}

/// The artifacts of a job fetched back, decrypted and verified against the manifest (one
/// `verify` step each); `only` selects (`CODE|VERSION` or `CODE`; empty: all). A job still being
/// written is finished first. In a dry run, a job that was only planned gives back the
/// artifacts it would hold (each a planned `verify` step).
pub async fn job_artifacts(
    ctx: &dyn Ctx,
    job: &Arc<JobState>,
    only: &[String],
) -> Result<Vec<Artifact>, OpsError> {
    let exec = ctx.exec();
    let no_reader = job
        .reader
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_none();
    if exec.dry_run() && no_reader {
        return Ok(planned_artifacts(ctx, job, only));
    }
    let reader = reader(ctx, job).await?;
    let entries = if only.is_empty() {
        reader.manifest().entries.clone()
    } else {
        select(&reader.manifest().entries, only)
            .map_err(|e| OpsError::Usage(format!("job {}: {e}", job.path)))?
    };
    let local = job.stored.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // Kept alive until the artifacts given back hold them.
    let kept = std::mem::take(&mut *job.kept.lock().unwrap_or_else(|p| p.into_inner()));
    // Read back and checked right after their store in this run (`job.backup` with
    // `keep_local`), and the manifest holds them as checked: their local files are handed back
    // without reading them again. The others are fetched and verified now.
    let verified = std::mem::take(&mut *job.verified.lock().unwrap_or_else(|p| p.into_inner()));
    let order: Vec<ArtifactKey> = entries.iter().map(ManifestEntry::key).collect();
    let mut ready: HashMap<ArtifactKey, Artifact> = HashMap::new();
    let mut rest = vec![];
    for e in entries {
        let key = e.key();
        let checked = verified.get(&key) == Some(&e);
        match (checked, local.get(&key)) {
            (true, Some(h)) => match checked_local(reader.path(), &e, h) {
                Some(a) => {
                    ready.insert(key, a);
                }
                None => rest.push(e),
            },
            _ => rest.push(e),
        }
    }
    let r = if ready.is_empty() {
        fetch_verified(ctx, &job.vault_name, reader, rest, &local).await
    } else {
        let fetched = fetch_verified(ctx, &job.vault_name, reader, rest, &local).await?;
        ready.extend(fetched.into_iter().map(|a| (a.key.clone(), a)));
        Ok(order.iter().filter_map(|k| ready.remove(k)).collect())
    };
    drop(kept);
    r
}

/// The artifact of `entry` backed by this run's local file `h` (the stored copy was checked
/// already); `None` when the file is not that entry's.
fn checked_local(job_path: &str, entry: &ManifestEntry, h: &FileHandle) -> Option<Artifact> {
    let mut a = Artifact::planned(
        entry.key(),
        format!("vault:{job_path}"),
        entry.source_status.clone(),
    );
    a.size = entry.size;
    a.sha256 = entry.sha256.clone();
    a.exported_at = entry.exported_at.clone();
    let mut a = a.backed_by(h)?;
    a.source = entry.source.clone();
    Some(a)
}

/// What a planned job would give back, each a planned `verify` step.
fn planned_artifacts(ctx: &dyn Ctx, job: &JobState, only: &[String]) -> Vec<Artifact> {
    let mut planned = job
        .planned
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if !only.is_empty() {
        planned.retain(|a| {
            only.iter().any(|s| {
                s.eq_ignore_ascii_case(&a.key.code)
                    || s.eq_ignore_ascii_case(&format!("{}|{}", a.key.code, a.key.version))
            })
        });
    }
    for a in &planned {
        let eff = Effect::new(
            Stage::Verify,
            a.key.clone(),
            job.vault_name.clone(),
            "fetch and verify",
        );
        ctx.exec().note(&eff, StepStatus::Planned, None);
    }
    planned
}

/// Fetches `entries` from a job, each verified against the manifest (one `verify` step each, a
/// read, so it also happens in a dry run). A failure is recorded and the rest go on.
pub async fn fetch_verified(
    ctx: &dyn Ctx,
    vault_name: &str,
    reader: Arc<JobReader>,
    entries: Vec<ManifestEntry>,
    local: &std::collections::HashMap<crate::artifact::ArtifactKey, crate::artifact::FileHandle>,
) -> Result<Vec<Artifact>, OpsError> {
    let fetched = fan_out(
        ctx.bar(entries.len(), "verify"),
        ctx.bounds().stores,
        entries,
        |entry| {
            let reader = reader.clone();
            async move {
                let eff = Effect::new(
                    Stage::Verify,
                    entry.key(),
                    vault_name,
                    format!("fetch and verify {}", entry.path),
                )
                .with_sha256(Some(entry.sha256.clone()));
                ctx.exec()
                    .run_read(eff, || {
                        let (reader, entry) = (reader.clone(), entry.clone());
                        let held = local.get(&entry.key()).cloned();
                        async move {
                            let r = tokio::task::spawn_blocking(move || {
                                reader.fetch_or_share(&entry, held.as_ref()).map(|mut a| {
                                    a.source = entry.source.clone();
                                    a
                                })
                            })
                            .await;
                            match r {
                                Ok(Ok(a)) => Ok(a),
                                Ok(Err(e)) => Err(Failure::from(e)),
                                Err(e) => Err(Failure::Task(e.to_string())),
                            }
                        }
                    })
                    .await
            }
        },
    )
    .await;
    let mut arts = vec![];
    for r in fetched {
        match r {
            Ok(a) => arts.push(a),
            Err(e) if e.cancelled => return Err(OpsError::Cancelled),
            // Recorded as a failed verify step; the rest is restored.
            Err(_) => {}
        }
    }
    Ok(arts)
}
