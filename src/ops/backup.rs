//! `job.backup`: a nightly backup that does not export what did not change. Before exporting,
//! each integration is looked up in the newest complete jobs of the vault: when the source lists
//! it exactly as that job recorded it (same instance, same `lastUpdated`, same status, same
//! encryption) and the earlier bytes are still there, the job links (file vaults) or refers to
//! (SFTP, S3) the earlier file instead of exporting it again ([`crate::vault::JobWriter::carry`]).
//! Everything else, and everything when in any doubt (no earlier complete job, another instance,
//! another `lastUpdated` or status, the earlier file missing or of another size, a vault error),
//! is exported and stored as usual, where unchanged content is still found by its content hash.
//! Schedules are always read again (their state changes without the integration's `lastUpdated`):
//! every candidate's from the start, while the decisions are made (an unchanged night is these
//! reads, one round trip each), each carried one's stored as soon as it is both read and
//! carried. Once every decision is made, no other is read ahead; an integration left to export
//! takes the answer read ahead for it (its schedule is not read twice), or drops it when its
//! export fails (nothing of it is stored or recorded, as when it is read after the export).

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender};
use serde::Deserialize;

use super::OpsError;
use super::ctx::{Ctx, fan_out};
use super::export::{ExportOptions, Exportable};
use super::schedules::{ReadAhead, ReadsAhead};
use crate::artifact::{Artifact, ArtifactKey};
use crate::effect::{Effect, Executor, SkipReason};
use crate::ledger::{Stage, StepStatus};
use crate::oic::{Integration, IntegrationId, OicClient};
use crate::vault::{JobWriter, Listing, ManifestEntry, Matched, ShareVia, SharedBytes};

use super::job::JobState;

/// Vault lookups (a stat each) at a time.
const CARRY_CONCURRENCY: usize = 16;

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
    /// back (a migration imports them next: each stored copy is read back and checked right
    /// after its store, overlapping the exports, and the local files given back once the
    /// manifest holds the entries checked, not written again). Default false: a file is deleted
    /// once stored.
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
    /// Schedules of carried integrations read again and sent to the store.
    pub schedules: usize,
    /// Integrations carried over without an export.
    pub carried: usize,
    /// Schedules read ahead for integrations left to export (their export takes them).
    ahead: ReadsAhead,
}

fn listed_status(i: &Integration) -> Option<&str> {
    Some(i.status.as_str()).filter(|s| !s.is_empty())
}

/// An integration found unchanged: its listing, its entry in the job, and whether a resumed job
/// already held it.
type Found = (Integration, ManifestEntry, bool);

/// Carries the integrations of `items` that are unchanged since an earlier complete job into
/// `job` (see the module docs); returns what is left to export. The schedules are read from the
/// start, while the rest is decided, and each carried one's is sent to `tx` (the store) as soon
/// as it is both read and carried. In a dry run nothing is written: what
/// would be carried is shown as carried. With `incremental: false` nothing is carried.
pub async fn carry_unchanged(
    ctx: &dyn Ctx,
    client: &OicClient,
    job: &JobState,
    items: Vec<Exportable>,
    o: &BackupOptions,
    tx: &UnboundedSender<Artifact>,
) -> Result<Carried, OpsError> {
    let writer = job.writer.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let dry_run = ctx.exec().dry_run();
    if !o.incremental || (writer.is_none() && !dry_run) {
        return Ok(Carried {
            to_export: items,
            schedules: 0,
            carried: 0,
            ahead: HashMap::new(),
        });
    }
    let (candidates, mut to_export): (Vec<Exportable>, Vec<Exportable>) = items
        .into_iter()
        .partition(|it| matches!(it, Exportable::Integration(i) if !i.last_updated.is_empty()));
    // Every candidate's schedule is read as the decisions go (most are carried on a night of
    // few changes), not after each decision.
    let ahead: Vec<Integration> = candidates
        .iter()
        .filter_map(|it| match it {
            Exportable::Integration(i) if i.schedule_defined => Some(i.clone()),
            _ => None,
        })
        .collect();
    // The carried integrations that have a schedule, as they are carried.
    let (stx, srx) = futures::channel::mpsc::unbounded::<Integration>();
    let decided = async move {
        let (carried, with_schedule, unsure) = match writer {
            Some(w) => decide(ctx, client, job, &w, candidates, o.verify_unchanged, stx).await,
            None => {
                let (found, unsure) = plan(client, job, candidates).await;
                let mut with_schedule = 0;
                for f in &found {
                    report_carried(ctx.exec(), client.name(), &job.vault_name, f);
                    if f.0.schedule_defined {
                        with_schedule += 1;
                        let _ = stx.unbounded_send(f.0.clone());
                    }
                }
                (found.len(), with_schedule, unsure)
            }
        };
        // Each carried integration is an export skipped, and its schedule one read: the run's
        // expected total grows by them.
        ctx.exec()
            .record()
            .expect(Stage::Export, (carried + with_schedule) as u64);
        (carried, unsure)
    };
    let conc = o.concurrency.unwrap_or(ctx.bounds().exports);
    let schedules = read_schedules(ctx, client, ahead, srx, conc, o.stop_on_error, tx);
    let ((carried, unsure), schedules) = tokio::join!(decided, schedules);
    let (schedules, ahead) = schedules?;
    to_export.extend(unsure);
    Ok(Carried {
        to_export,
        schedules,
        carried,
        ahead,
    })
}

fn id_of(i: &Integration) -> IntegrationId {
    IntegrationId::new(&i.code, &i.version)
}

/// Reads the schedules of `ahead` (the candidates with a schedule, in their order) at most
/// `conc` at a time, without waiting for the decisions, while `carried` sends the integrations
/// carried over: each carried one's schedule is recorded (its export effect, taking the answer
/// read ahead) and sent to `tx` as soon as both are there. New reads ahead stop once every
/// decision is made (`carried` closed): then only the carried integrations not read yet are.
/// Returns how many were sent, and the answers read ahead for integrations not carried (their
/// export takes them, [`super::export::export_with`]). A failure is recorded and the others go
/// on, unless `stop_on_error` (or the run is cancelled).
async fn read_schedules(
    ctx: &dyn Ctx,
    client: &OicClient,
    ahead: Vec<Integration>,
    carried: UnboundedReceiver<Integration>,
    conc: usize,
    stop_on_error: bool,
    tx: &UnboundedSender<Artifact>,
) -> Result<(usize, ReadsAhead), OpsError> {
    use futures::stream::FuturesUnordered;
    let bar = ctx.bar(ahead.len(), "schedules");
    let conc = conc.max(1);
    let mut queue: std::collections::VecDeque<Integration> = ahead.into();
    let mut queued: std::collections::HashSet<IntegrationId> = queue.iter().map(id_of).collect();
    let mut reads = FuturesUnordered::new();
    let mut reading: std::collections::HashSet<IntegrationId> = Default::default();
    let mut effects = FuturesUnordered::new();
    // Answers read and not yet claimed; carried integrations whose answer is not there yet.
    let mut answers = ReadsAhead::new();
    let mut waiting: HashMap<IntegrationId, Integration> = HashMap::new();
    let mut carried = carried.fuse();
    let mut decided = false;
    let mut sent = 0;
    let cancel = ctx.exec().cancel_token().clone();
    let effect = |i: Integration, ahead: Option<ReadAhead>| async move {
        super::schedules::export_effect(ctx, client, &i, ahead).await
    };
    loop {
        while reads.len() < conc {
            let Some(i) = queue.pop_front() else { break };
            let k = id_of(&i);
            queued.remove(&k);
            reading.insert(k.clone());
            reads.push(async move {
                let r = client.get_schedule(&k).await;
                (k, r)
            });
        }
        if decided && reads.is_empty() && effects.is_empty() {
            break;
        }
        tokio::select! {
            // Cancelled: what is in flight is dropped (a resumed run reads it again).
            _ = cancel.cancelled() => return Err(OpsError::Cancelled),
            c = carried.next(), if !decided => match c {
                Some(i) => {
                    let k = id_of(&i);
                    if let Some(r) = answers.remove(&k) {
                        effects.push(effect(i, Some(r)));
                    } else if queued.contains(&k) || reading.contains(&k) {
                        waiting.insert(k, i);
                    } else {
                        // not among those read ahead: read by its effect
                        effects.push(effect(i, None));
                    }
                }
                None => {
                    decided = true;
                    // Only the carried ones are still read; the others' exports read theirs.
                    queue.retain(|i| waiting.contains_key(&id_of(i)));
                    queued = queue.iter().map(id_of).collect();
                }
            },
            Some((k, r)) = reads.next(), if !reads.is_empty() => {
                reading.remove(&k);
                match waiting.remove(&k) {
                    Some(i) => effects.push(effect(i, Some(r))),
                    None => {
                        answers.insert(k, r);
                    }
                }
            },
            Some(r) = effects.next(), if !effects.is_empty() => {
                bar.inc(1);
                match r {
                    Ok(Some(a)) => {
                        sent += 1;
                        let _ = tx.unbounded_send(a);
                    }
                    Ok(None) => {}
                    Err(e) if e.cancelled => return Err(OpsError::Cancelled),
                    Err(e) if stop_on_error => return Err(OpsError::effect(e)),
                    Err(_) => {}
                }
            },
        }
    }
    bar.finish_and_clear();
    Ok((sent, answers))
}

/// Looks each candidate up in the earlier jobs (a stat each, [`CARRY_CONCURRENCY`] at a time),
/// carries it into the job when unchanged and adds it to the job (its reference journaled
/// first, see [`JobWriter::record_carried`]); each carried one is recorded in the run and, when
/// it has a schedule, sent to `scheduled` at once. Returns (carried, carried with a schedule,
/// to export). An item a
/// resumed job already carried with this listing is found as held; one that cannot be added to
/// the job is exported.
async fn decide(
    ctx: &dyn Ctx,
    client: &OicClient,
    job: &JobState,
    writer: &Arc<JobWriter>,
    candidates: Vec<Exportable>,
    deep: bool,
    scheduled: UnboundedSender<Integration>,
) -> (usize, usize, Vec<Exportable>) {
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
            let scheduled = scheduled.clone();
            let exec = ctx.exec().clone();
            let vault_name = job.vault_name.clone();
            async move {
                let Exportable::Integration(i) = it else {
                    return Err(it);
                };
                // The vault's work and the run's record of it (a database write or two) off
                // the runtime's threads, which carry the schedule reads meanwhile.
                let unsure = Exportable::Integration(i.clone());
                let r = tokio::task::spawn_blocking(move || {
                    // Resumed: already carried into this job with this listing.
                    let (e, held) = match held.filter(|e| carried_as_listed(e, &i)) {
                        Some(e) => (e, true),
                        None => {
                            let key = ArtifactKey::new(
                                crate::artifact::ArtifactKind::Integration,
                                &i.code,
                                &i.version,
                            );
                            let l = listing(&key, &source, &instance, &i);
                            let e = match writer.carry(&l, deep) {
                                Ok(Some(e)) => e,
                                Ok(None) => return (i, Ok(false)),
                                Err(e) => return (i, Err(e.to_string())),
                            };
                            if let Err(err) = writer.record_carried(vec![e.clone()]) {
                                return (i, Err(err.to_string()));
                            }
                            (e, false)
                        }
                    };
                    let found = (i, e, held);
                    report_carried(&exec, &source, &vault_name, &found);
                    (found.0, Ok(true))
                })
                .await;
                let (i, r) = match r {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(artifact = %unsure.key(), "cannot tell whether it is unchanged, so it is exported: {e}");
                        return Err(unsure);
                    }
                };
                match r {
                    Ok(true) => {
                        let with_schedule = i.schedule_defined;
                        if with_schedule {
                            let _ = scheduled.unbounded_send(i);
                        }
                        Ok(with_schedule)
                    }
                    Ok(false) => Err(unsure),
                    Err(why) => {
                        tracing::warn!(artifact = %unsure.key(), "cannot tell whether it is unchanged (or cannot journal it), so it is exported: {why}");
                        Err(unsure)
                    }
                }
            }
        },
    )
    .await;
    let (mut carried, mut with_schedule) = (0, 0);
    let mut to_export = vec![];
    for r in decided {
        match r {
            Ok(s) => {
                carried += 1;
                with_schedule += usize::from(s);
            }
            Err(it) => to_export.push(it),
        }
    }
    (carried, with_schedule, to_export)
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

/// Records a carried integration in the run: export skipped as unchanged (or held by the
/// resumed job), store noted (or planned in a dry run).
fn report_carried(exec: &Executor, source: &str, vault_name: &str, found: &Found) {
    let (i, e, held) = found;
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
        Effect::new(Stage::Export, key.clone(), source, "export"),
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
/// Each archive and schedule is stored as soon as it is exported or read
/// ([`super::job::store_stream`]): the vault's work overlaps the round trips to the instance.
pub async fn backup(
    ctx: &dyn Ctx,
    job: &Arc<JobState>,
    client: &OicClient,
    items: Vec<Exportable>,
    o: &BackupOptions,
) -> Result<BackupReport, OpsError> {
    let (tx, rx) = futures::channel::mpsc::unbounded();
    // What is stored is at most every item and a schedule each (the store's progress bar).
    let expected = items.len()
        + items
            .iter()
            .filter(|it| matches!(it, Exportable::Integration(i) if i.schedule_defined))
            .count();
    let eo = o.export();
    // The schedules of carried integrations and the exports are stored as they come.
    let produce = async move {
        let c = carry_unchanged(ctx, client, job, items, o, &tx).await?;
        let arts =
            super::export::export_with(ctx, client, c.to_export, &eo, Some(tx), c.ahead).await;
        Ok::<_, OpsError>((c.carried, arts))
    };
    let (produced, stored) = tokio::join!(
        produce,
        super::job::store_stream(ctx, job, rx, expected, o.keep_local),
    );
    let (carried, arts) = produced?;
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
        carried,
        exported,
        stored: stored.len(),
        archives: carried + stored.len() - schedules,
        schedules,
    })
}
