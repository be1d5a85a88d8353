//! `job.backup`: a nightly backup that does not export what did not change. Before exporting,
//! each integration is looked up in the newest complete jobs of the vault: when the source lists
//! it exactly as that job recorded it (same instance, same `lastUpdated`, same status, same
//! encryption) and the earlier bytes are still there, the job links (file vaults) or refers to
//! (SFTP, S3) the earlier file instead of exporting it again ([`crate::vault::JobWriter::carry`]).
//! Everything else, and everything when in any doubt (no earlier complete job, another instance,
//! another `lastUpdated` or status, the earlier file missing or of another size, a vault error),
//! is exported and stored as usual, where unchanged content is still found by its content hash.
//! Schedules are always read again (their state changes without the integration's `lastUpdated`).

use std::sync::Arc;

use serde::Deserialize;

use super::OpsError;
use super::ctx::{Ctx, fan_out};
use super::export::{ExportOptions, Exportable};
use crate::artifact::{Artifact, ArtifactKey};
use crate::effect::{Effect, SkipReason};
use crate::ledger::{Stage, StepStatus};
use crate::oic::{Integration, OicClient};
use crate::vault::{JobWriter, Listing, ManifestEntry, Matched};

use super::job::JobState;

/// Vault lookups (a stat each) at a time.
const CARRY_CONCURRENCY: usize = 16;
/// Carried entries journaled together.
const BATCH: usize = 256;

fn yes() -> bool {
    true
}

/// Options of `job.backup`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupOptions {
    /// Hard cap on exports at a time (default: adaptive).
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Raise the first failure instead of recording it and going on.
    #[serde(default)]
    pub stop_on_error: bool,
    /// For projects: the deployment whose integration versions go into the archive.
    #[serde(default)]
    pub label: Option<String>,
    /// Carry integrations the source lists unchanged over from the newest complete job without
    /// exporting them (default true). `false` exports everything (unchanged content is still
    /// stored once, found by its content hash).
    #[serde(default = "yes")]
    pub incremental: bool,
    /// Read every byte of each earlier file back (checked against its stored sha256) before
    /// carrying it, instead of checking its size (default false).
    #[serde(default)]
    pub verify_unchanged: bool,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            concurrency: None,
            stop_on_error: false,
            label: None,
            incremental: true,
            verify_unchanged: false,
        }
    }
}

impl BackupOptions {
    /// The options of the exports.
    pub fn export(&self) -> ExportOptions {
        ExportOptions {
            concurrency: self.concurrency,
            stop_on_error: self.stop_on_error,
            label: self.label.clone(),
        }
    }
}

/// What [`carry_unchanged`] left to do.
pub struct Carried {
    /// The items to export (changed, or in doubt).
    pub to_export: Vec<Exportable>,
    /// The schedules of the carried integrations that have one (read again, to be stored).
    pub schedules: Vec<Artifact>,
    /// Integrations carried over without an export.
    pub carried: usize,
}

fn listed_status(i: &Integration) -> Option<&str> {
    Some(i.status.as_str()).filter(|s| !s.is_empty())
}

/// Carries the integrations of `items` that are unchanged since an earlier complete job into
/// the job `writer` writes (see the module docs); returns what is left to export. Without a
/// writer (a dry run), or with `incremental: false`, nothing is carried.
pub async fn carry_unchanged(
    ctx: &dyn Ctx,
    client: &OicClient,
    vault_name: &str,
    writer: Option<Arc<JobWriter>>,
    items: Vec<Exportable>,
    o: &BackupOptions,
) -> Result<Carried, OpsError> {
    let Some(writer) = writer.filter(|_| o.incremental && !ctx.exec().dry_run()) else {
        return Ok(Carried {
            to_export: items,
            schedules: vec![],
            carried: 0,
        });
    };
    let instance = client.identity();
    let source = client.name().to_string();
    let held: std::collections::HashMap<ArtifactKey, ManifestEntry> =
        writer.entries().into_iter().map(|e| (e.key(), e)).collect();
    let (candidates, mut to_export): (Vec<Exportable>, Vec<Exportable>) = items
        .into_iter()
        .partition(|it| matches!(it, Exportable::Integration(i) if !i.last_updated.is_empty()));
    let deep = o.verify_unchanged;
    let decided = fan_out(
        ctx.bar(candidates.len(), "unchanged?"),
        CARRY_CONCURRENCY,
        candidates,
        |it| {
            let writer = writer.clone();
            let instance = instance.clone();
            let source = source.clone();
            let held = held.get(&it.key()).cloned();
            async move {
                let Exportable::Integration(i) = &it else {
                    return (it, Ok(None));
                };
                // Resumed: already carried into this job with this listing.
                if let Some(e) = held
                    && e.shared
                        .as_ref()
                        .is_some_and(|s| s.matched == Matched::Listing)
                    && e.source_updated.as_deref() == Some(i.last_updated.as_str())
                    && e.source_status.as_deref() == listed_status(i)
                {
                    return (it, Ok(Some((e, true))));
                }
                let i2 = i.clone();
                let r = tokio::task::spawn_blocking(move || {
                    let key = Exportable::Integration(i2.clone()).key();
                    writer.carry(
                        &Listing {
                            key: &key,
                            source: &source,
                            instance: &instance,
                            status: listed_status(&i2),
                            updated: &i2.last_updated,
                        },
                        deep,
                    )
                })
                .await;
                let r = match r {
                    Ok(Ok(v)) => Ok(v.map(|e| (e, false))),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                (it, r)
            }
        },
    )
    .await;
    let mut carried: Vec<(Integration, ManifestEntry, bool)> = vec![];
    for (it, r) in decided {
        match (it, r) {
            (Exportable::Integration(i), Ok(Some((e, held)))) => carried.push((i, e, held)),
            (it, Ok(_)) => to_export.push(it),
            (it, Err(why)) => {
                tracing::warn!(artifact = %it.key(), "cannot tell whether it is unchanged, so it is exported: {why}");
                to_export.push(it);
            }
        }
    }
    // Journal the new entries in batches; a batch that cannot be journaled is exported instead.
    let mut kept: Vec<(Integration, ManifestEntry, bool)> = vec![];
    let mut fresh: Vec<(Integration, ManifestEntry, bool)> = vec![];
    for c in carried {
        if c.2 { kept.push(c) } else { fresh.push(c) }
    }
    while !fresh.is_empty() {
        let rest = fresh.split_off(fresh.len().min(BATCH));
        let batch = std::mem::replace(&mut fresh, rest);
        let entries: Vec<ManifestEntry> = batch.iter().map(|c| c.1.clone()).collect();
        let w = writer.clone();
        let r = tokio::task::spawn_blocking(move || w.record_carried(entries)).await;
        match r {
            Ok(Ok(())) => kept.extend(batch),
            Ok(Err(e)) => {
                tracing::warn!(
                    "cannot journal {} unchanged integrations, so they are exported: {e}",
                    batch.len()
                );
                to_export.extend(batch.into_iter().map(|c| Exportable::Integration(c.0)));
            }
            Err(e) => {
                return Err(OpsError::Vault {
                    at: vault_name.to_string(),
                    message: e.to_string(),
                });
            }
        }
    }
    ctx.exec().record().expect(Stage::Export, kept.len() as u64);
    let mut scheduled = vec![];
    for (i, e, held) in &kept {
        let key = e.key();
        let from = e
            .shared
            .as_ref()
            .map(|s| s.file.clone())
            .unwrap_or_default();
        let why = if *held {
            SkipReason::InJob {
                run: ctx.exec().resume().map(|r| r.run.clone()),
            }
        } else {
            SkipReason::UnchangedSince {
                file: from.clone(),
                updated: i.last_updated.clone(),
            }
        };
        ctx.exec().skip(
            Effect::new(Stage::Export, key.clone(), client.name(), "export"),
            why,
        );
        if !*held {
            let store = Effect::new(
                Stage::Store,
                key,
                vault_name.to_string(),
                format!("carry {} over unchanged from {from}", e.path),
            )
            .with_sha256(Some(e.sha256.clone()));
            ctx.exec().note(&store, StepStatus::Ok, None);
        }
        if i.schedule_defined {
            scheduled.push(i.clone());
        }
    }
    let conc = o.concurrency.unwrap_or(ctx.bounds().exports);
    let mut schedules = vec![];
    for r in super::schedules::export(ctx, client, scheduled, conc).await {
        match r {
            Ok(a) => schedules.push(a),
            Err(e) if e.cancelled => return Err(OpsError::Cancelled),
            Err(e) if o.stop_on_error => return Err(OpsError::effect(e)),
            Err(_) => {}
        }
    }
    Ok(Carried {
        to_export,
        schedules,
        carried: kept.len(),
    })
}

/// What `job.backup` did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct BackupReport {
    /// Integrations carried over without an export (listed unchanged).
    pub carried: usize,
    /// Archives exported (schedules of exported integrations included).
    pub exported: usize,
    /// Artifacts stored by this call (exported archives and every schedule read).
    pub stored: usize,
}

/// `job.backup(instance, items, options)`: carries what `client` lists unchanged since the
/// newest complete job ([`carry_unchanged`]), exports the rest and stores it with the schedules.
pub async fn backup(
    ctx: &dyn Ctx,
    job: &Arc<JobState>,
    client: &OicClient,
    items: Vec<Exportable>,
    o: &BackupOptions,
) -> Result<BackupReport, OpsError> {
    let writer = job.writer.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let c = carry_unchanged(ctx, client, &job.vault_name, writer, items, o).await?;
    let mut arts = super::export::export(ctx, client, c.to_export, &o.export()).await?;
    let exported = arts.len();
    arts.extend(c.schedules);
    let stored = super::job::store(ctx, job, arts).await?;
    Ok(BackupReport {
        carried: c.carried,
        exported,
        stored: stored.len(),
    })
}
