//! `job.backup`: a nightly backup that does not export what did not change. Before exporting,
//! each integration is looked up in the newest complete jobs of the vault: when the source lists
//! it exactly as that job recorded it (same instance, same `lastUpdated`, same status, same
//! encryption) and the earlier bytes are still there, the job links (file vaults) or refers to
//! (SFTP, S3) the earlier file instead of exporting it again ([`crate::vault::JobWriter::carry`]).
//! Everything else, and everything when in any doubt (no earlier complete job, another instance,
//! another `lastUpdated` or status, the earlier file missing or of another size, a vault error),
//! is exported and stored as usual, where unchanged content is still found by its content hash.
//! Schedules are always read again (their state changes without the integration's `lastUpdated`).

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use super::OpsError;
use super::ctx::{Ctx, fan_out};
use super::export::{ExportOptions, Exportable};
use crate::artifact::{Artifact, ArtifactKey};
use crate::effect::{Effect, SkipReason};
use crate::ledger::{Stage, StepStatus};
use crate::oic::{Integration, OicClient};
use crate::vault::{JobWriter, Listing, ManifestEntry, Matched, ShareVia, SharedBytes};

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
    /// Keep each exported archive's local file until `job.artifacts()` of this run hands it
    /// back (a migration imports them next: the stored copies are then read back and checked
    /// against the manifest, and the local files given back, not written again). Default false:
    /// a file is deleted once stored.
    #[serde(default)]
    pub keep_local: bool,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            concurrency: None,
            stop_on_error: false,
            label: None,
            incremental: true,
            verify_unchanged: false,
            keep_local: false,
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

/// An integration found unchanged: its listing, its entry in the job, and whether a resumed job
/// already held it.
type Found = (Integration, ManifestEntry, bool);

/// Carries the integrations of `items` that are unchanged since an earlier complete job into
/// `job` (see the module docs); returns what is left to export. In a dry run nothing is
/// written: what would be carried is shown as carried. With `incremental: false` nothing is
/// carried.
pub async fn carry_unchanged(
    ctx: &dyn Ctx,
    client: &OicClient,
    job: &JobState,
    items: Vec<Exportable>,
    o: &BackupOptions,
) -> Result<Carried, OpsError> {
    let writer = job.writer.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let dry_run = ctx.exec().dry_run();
    if !o.incremental || (writer.is_none() && !dry_run) {
        return Ok(Carried {
            to_export: items,
            schedules: vec![],
            carried: 0,
        });
    }
    let (candidates, mut to_export): (Vec<Exportable>, Vec<Exportable>) = items
        .into_iter()
        .partition(|it| matches!(it, Exportable::Integration(i) if !i.last_updated.is_empty()));
    let (found, unsure) = match writer {
        Some(w) => {
            let (found, mut unsure) = decide(ctx, client, &w, candidates, o.verify_unchanged).await;
            let (kept, unjournaled) = journal(&job.vault_name, &w, found).await?;
            unsure.extend(unjournaled);
            (kept, unsure)
        }
        None => plan(client, job, candidates).await,
    };
    to_export.extend(unsure);
    let scheduled = report_carried(ctx, client, &job.vault_name, &found);
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
        carried: found.len(),
    })
}

/// Looks each candidate up in the earlier jobs (a stat each, [`CARRY_CONCURRENCY`] at a time)
/// and carries it into the job when unchanged: (found, to export). An item a resumed job
/// already carried with this listing is found as held.
async fn decide(
    ctx: &dyn Ctx,
    client: &OicClient,
    writer: &Arc<JobWriter>,
    candidates: Vec<Exportable>,
    deep: bool,
) -> (Vec<Found>, Vec<Exportable>) {
    let instance = client.identity();
    let source = client.name().to_string();
    let held: HashMap<ArtifactKey, ManifestEntry> =
        writer.entries().into_iter().map(|e| (e.key(), e)).collect();
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
                if let Some(e) = held.filter(|e| carried_as_listed(e, i)) {
                    return (it, Ok(Some((e, true))));
                }
                let i2 = i.clone();
                let r = tokio::task::spawn_blocking(move || {
                    let key = Exportable::Integration(i2.clone()).key();
                    writer.carry(&listing(&key, &source, &instance, &i2), deep)
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
    let (mut found, mut to_export) = (vec![], vec![]);
    for (it, r) in decided {
        match (it, r) {
            (Exportable::Integration(i), Ok(Some((e, held)))) => found.push((i, e, held)),
            (it, Ok(_)) => to_export.push(it),
            (it, Err(why)) => {
                tracing::warn!(artifact = %it.key(), "cannot tell whether it is unchanged, so it is exported: {why}");
                to_export.push(it);
            }
        }
    }
    (found, to_export)
}

/// Whether a job's entry is `i` carried over with the listing `i` has now.
fn carried_as_listed(e: &ManifestEntry, i: &Integration) -> bool {
    e.shared
        .as_ref()
        .is_some_and(|s| s.matched == Matched::Listing)
        && e.source_updated.as_deref() == Some(i.last_updated.as_str())
        && e.source_status.as_deref() == listed_status(i)
}

fn listing<'a>(
    key: &'a ArtifactKey,
    source: &'a str,
    instance: &'a str,
    i: &'a Integration,
) -> Listing<'a> {
    Listing {
        key,
        source,
        instance,
        status: listed_status(i),
        updated: &i.last_updated,
    }
}

/// Journals the newly carried entries in batches: (kept, to export). A batch that cannot be
/// journaled is exported instead.
async fn journal(
    vault_name: &str,
    writer: &Arc<JobWriter>,
    found: Vec<Found>,
) -> Result<(Vec<Found>, Vec<Exportable>), OpsError> {
    let (mut kept, mut fresh): (Vec<Found>, Vec<Found>) = found.into_iter().partition(|c| c.2);
    let mut to_export = vec![];
    while !fresh.is_empty() {
        let rest = fresh.split_off(fresh.len().min(BATCH));
        let batch = std::mem::replace(&mut fresh, rest);
        let entries: Vec<ManifestEntry> = batch.iter().map(|c| c.1.clone()).collect();
        let w = writer.clone();
        match tokio::task::spawn_blocking(move || w.record_carried(entries)).await {
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
    Ok((kept, to_export))
}

/// A dry run: what the job would carry over (found by the same rules, nothing written), and
/// the rest to export. A vault that cannot be read carries nothing.
async fn plan(
    client: &OicClient,
    job: &JobState,
    candidates: Vec<Exportable>,
) -> (Vec<Found>, Vec<Exportable>) {
    let (vault, path) = (job.vault.clone(), job.path.clone());
    let (instance, source) = (client.identity(), client.name().to_string());
    let r = tokio::task::spawn_blocking(move || {
        let probe = match vault.carry_probe(&path) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(job = %path, "cannot tell what is unchanged: {e}");
                return (vec![], candidates);
            }
        };
        let (mut found, mut to_export) = (vec![], vec![]);
        for it in candidates {
            let Exportable::Integration(i) = &it else {
                to_export.push(it);
                continue;
            };
            let key = it.key();
            match probe.would_carry(&listing(&key, &source, &instance, i)) {
                Ok(Some(file)) => {
                    let entry = planned_entry(&key, &source, i, file);
                    if let Exportable::Integration(i) = it {
                        found.push((i, entry, false));
                    }
                }
                _ => to_export.push(it),
            }
        }
        (found, to_export)
    })
    .await;
    r.unwrap_or_default()
}

/// The entry a dry run shows for an integration it would carry over from `file`.
fn planned_entry(key: &ArtifactKey, source: &str, i: &Integration, file: String) -> ManifestEntry {
    ManifestEntry {
        kind: key.kind,
        code: key.code.clone(),
        version: key.version.clone(),
        source: source.to_string(),
        source_status: listed_status(i).map(str::to_string),
        size: 0,
        sha256: String::new(),
        content_sha256: None,
        stored_size: 0,
        stored_sha256: String::new(),
        encrypted: false,
        exported_at: String::new(),
        path: crate::artifact::file_name_of(key),
        source_updated: Some(i.last_updated.clone()),
        shared: Some(SharedBytes::new(
            ShareVia::Reference,
            file,
            Matched::Listing,
        )),
    }
}

/// Records the carried integrations in the run (export skipped as unchanged, store noted, or
/// planned in a dry run); returns those with a schedule (read again).
fn report_carried(
    ctx: &dyn Ctx,
    client: &OicClient,
    vault_name: &str,
    found: &[Found],
) -> Vec<Integration> {
    let exec = ctx.exec();
    exec.record().expect(Stage::Export, found.len() as u64);
    let mut scheduled = vec![];
    for (i, e, held) in found {
        let key = e.key();
        let from = e
            .shared
            .as_ref()
            .map(|s| s.file.clone())
            .unwrap_or_default();
        let why = if *held {
            SkipReason::InJob {
                run: exec.resume().map(|r| r.run.clone()),
            }
        } else {
            SkipReason::UnchangedSince {
                file: from.clone(),
                updated: i.last_updated.clone(),
            }
        };
        exec.skip(
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
            .with_sha256(Some(e.sha256.clone()).filter(|s| !s.is_empty()));
            let status = if exec.dry_run() {
                StepStatus::Planned
            } else {
                StepStatus::Ok
            };
            exec.note(&store, status, None);
        }
        if i.schedule_defined {
            scheduled.push(i.clone());
        }
    }
    scheduled
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
    /// Archives (not schedules) the job holds from this call: carried over or stored.
    pub archives: usize,
    /// Schedules stored by this call.
    pub schedules: usize,
}

/// `job.backup(instance, items, options)`: carries what `client` lists unchanged since the
/// newest complete job ([`carry_unchanged`]), exports the rest and stores it with the schedules.
/// Each archive is stored as soon as it is exported ([`super::job::store_stream`]): the vault's
/// work overlaps the exports' round trips.
pub async fn backup(
    ctx: &dyn Ctx,
    job: &Arc<JobState>,
    client: &OicClient,
    items: Vec<Exportable>,
    o: &BackupOptions,
) -> Result<BackupReport, OpsError> {
    let c = carry_unchanged(ctx, client, job, items, o).await?;
    let (tx, rx) = futures::channel::mpsc::unbounded();
    let expected = c.to_export.len() + c.schedules.len();
    for a in c.schedules {
        let _ = tx.unbounded_send(a);
    }
    let eo = o.export();
    let (arts, stored) = tokio::join!(
        super::export::export_to(ctx, client, c.to_export, &eo, Some(tx)),
        super::job::store_stream(ctx, job, rx, expected),
    );
    let exported = arts?.len();
    let stored = stored?;
    if o.keep_local {
        job.kept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(stored.iter().filter(|a| !a.is_planned()).cloned());
    }
    let schedules = stored
        .iter()
        .filter(|a| a.key.kind == crate::artifact::ArtifactKind::Schedule)
        .count();
    Ok(BackupReport {
        carried: c.carried,
        exported,
        stored: stored.len(),
        archives: c.carried + stored.len() - schedules,
        schedules,
    })
}
