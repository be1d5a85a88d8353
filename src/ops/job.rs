//! The vault jobs a run opened: written while the run goes, finished (manifest written) when the
//! recipe calls `job.finish()` or, at the latest, when the run ends ([`super::run::Run::finish`]).
//! A run that was stopped (Ctrl-C, SIGTERM) leaves them unfinished, to be continued with
//! `--resume`. Artifacts whose export failed in the run are recorded as missing: the job is then
//! `partial`, and says so.

use std::sync::{Arc, Mutex};

use chrono::NaiveDate;

use super::ctx::fan_out;
use super::run::Run;
use super::{Ctx, OpsError};
use crate::artifact::{Artifact, ArtifactKey};
use crate::effect::{Effect, Executor, Failure, Outcome, SkipReason};
use crate::ledger::{RunRecord, Stage, StepStatus};
use crate::shell::Shell;
use crate::vault::{
    JobMeta, JobReader, JobStatus, JobWriter, ManifestEntry, MissingEntry, Vault, VaultError,
};

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
    /// The local files this run stored, by artifact (not kept alive): reading the job back
    /// verifies the stored copies and hands these files back rather than writing them again.
    pub stored: Mutex<std::collections::HashMap<ArtifactKey, crate::artifact::FileHandle>>,
    /// Local files kept alive for `job.artifacts()` (`job.backup` with `keep_local`), released
    /// once handed back.
    pub kept: Mutex<Vec<Artifact>>,
    /// The entries this run read back and checked right after storing them (`job.backup` with
    /// `keep_local`: a `verify` step each, overlapping the exports); `job.artifacts()` hands
    /// their local files back when the finished manifest holds the same entries, without
    /// reading them again.
    pub verified: Mutex<std::collections::HashMap<ArtifactKey, ManifestEntry>>,
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
            stored: Mutex::new(Default::default()),
            kept: Mutex::new(vec![]),
            verified: Mutex::new(Default::default()),
        }
    }

    /// The state of a finished job read back (a job opened by its path, or one a resumed run
    /// finished before).
    pub fn opened(vault_name: &str, vault: Vault, reader: JobReader) -> JobState {
        let m = reader.manifest();
        let finished = Some((m.status, m.missing.clone()));
        JobState {
            vault_name: vault_name.to_string(),
            vault,
            name: m.job.clone(),
            path: reader.path().to_string(),
            writer: Mutex::new(None),
            reader: Mutex::new(Some(Arc::new(reader))),
            planned: Mutex::new(vec![]),
            finished: Mutex::new(finished),
            stored: Mutex::new(Default::default()),
            kept: Mutex::new(vec![]),
            verified: Mutex::new(Default::default()),
        }
    }

    /// The job read back: finishes it first when it is still being written. Blocking: call it
    /// from the script thread or `spawn_blocking`.
    pub fn reader(&self, record: &RunRecord, shell: &Shell) -> Result<Arc<JobReader>, OpsError> {
        let err = |m: String| OpsError::Vault {
            at: self.vault_name.clone(),
            message: m,
        };
        if let Some(r) = self
            .reader
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Ok(r);
        }
        self.finish(record, shell).map_err(err)?;
        let r = Arc::new(
            self.vault
                .open_job(&self.path)
                .map_err(|e| err(e.to_string()))?,
        );
        *self.reader.lock().unwrap_or_else(|p| p.into_inner()) = Some(r.clone());
        Ok(r)
    }

    /// Refuses a partial job unless `accept_partial`.
    pub fn check_partial(&self, accept_partial: bool) -> Result<(), OpsError> {
        match &*self.finished.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((JobStatus::Partial, missing)) if !accept_partial => Err(OpsError::Vault {
                at: self.vault_name.clone(),
                message: format!(
                    "{}; restore what it holds with `accept_partial: true` (ferry vault restore --accept-partial)",
                    partial_line(&self.path, missing)
                ),
            }),
            _ => Ok(()),
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
        // the manifest is written as its entries are read: none are held
        let (status, missing) = w.finish_status().map_err(|e| e.to_string())?;
        if status == JobStatus::Partial {
            shell.line(&partial_line(&self.path, &missing));
        }
        *self.finished.lock().unwrap_or_else(|p| p.into_inner()) = Some((status, missing));
        Ok(())
    }

    /// The selected artifacts a finished job does not hold, as `CODE|VERSION` (empty while
    /// open).
    pub fn missing_ids(&self) -> Vec<String> {
        match &*self.finished.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((_, m)) => m.iter().map(|m| m.key().id()).collect(),
            None => vec![],
        }
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
    // the last export step of each artifact (the record keeps its steps compact; none copied)
    record
        .last_failed(Stage::Export)
        .into_iter()
        .map(|(k, why)| (k, format!("export failed: {why}")))
        .collect()
}

fn vault_err(at: &str, e: impl std::fmt::Display) -> OpsError {
    OpsError::Vault {
        at: at.to_string(),
        message: e.to_string(),
    }
}

/// The metadata of a job the run of `record` writes.
pub fn job_meta(record: &RunRecord, resume: bool) -> JobMeta {
    let info = record.info();
    JobMeta {
        ferry_version: info.ferry_version,
        recipe: info.recipe,
        run_by: info.run_by,
        sources: vec![],
        target: None,
        resume,
    }
}

/// The job a `new_job(name)` opens: in a resumed run, the `n`-th job the resumed run opened in
/// the same vault (same name and day, continued), else `name` today. Returns (name, date,
/// resume).
fn job_for(
    exec: &Executor,
    run: &Run,
    vault: &str,
    name: &str,
    resume: bool,
) -> (String, NaiveDate, bool) {
    let today = chrono::Utc::now().date_naive();
    let Some(r) = exec.resume() else {
        return (name.to_string(), today, resume);
    };
    match r.job(vault, run.jobs_in(vault) + 1) {
        Some(j) => {
            let date = j.date.parse::<NaiveDate>().unwrap_or(today);
            (j.name.clone(), date, true)
        }
        None => (name.to_string(), today, resume),
    }
}

/// Starts (or, with `resume`, continues) today's job `name` in `vault` and adds it to the run. A
/// new job is the run's own: when today has a job `name` already, it is `name-2`, `name-3`, ...
/// A resumed run reopens the jobs of the run it resumes, in the same order; one it finished is
/// read back, and stores skip what it holds. In a dry run nothing is written.
pub async fn new_job(
    ctx: &dyn Ctx,
    run: &Run,
    vault_name: &str,
    vault: &Vault,
    name: &str,
    resume: bool,
) -> Result<Arc<JobState>, OpsError> {
    let exec = ctx.exec();
    let (mut name, date, resume) = job_for(exec, run, vault_name, name, resume);
    let mut path = Vault::job_path(&name, date).map_err(|e| vault_err(vault_name, e))?;
    let writer = if exec.dry_run() {
        None
    } else {
        // The job's stores run in parallel: a store with connections opens them meanwhile.
        vault.store().warm();
        let meta = job_meta(exec.record(), resume);
        let (v, n) = (vault.clone(), name.clone());
        // A new job is this run's own (another name when the job exists); a resumed one is
        // continued by its name.
        let w = tokio::task::spawn_blocking(move || {
            if resume {
                v.create_job(&n, date, meta)
            } else {
                v.create_new_job(&n, date, meta)
            }
        })
        .await
        .map_err(|e| vault_err(vault_name, e))?;
        let w = match w {
            // The resumed run finished this job: read it back.
            Err(VaultError::Complete { .. }) if resume => {
                let job =
                    Arc::new(super::vault_restore::open_job_in(vault_name, vault, &path).await?);
                exec.record().note_job(vault_name, &name, &path, date);
                run.add_job(job.clone());
                return Ok(job);
            }
            w => w.map_err(|e| vault_err(vault_name, e))?,
        };
        if w.name() != name {
            ctx.shell().warn(&format!(
                "job {path} exists already: this run writes job {} instead",
                w.path()
            ));
            (name, path) = (w.name().to_string(), w.path().to_string());
        }
        exec.record().note_job(vault_name, &name, w.path(), date);
        Some(Arc::new(w))
    };
    let state = Arc::new(JobState::new(
        vault_name,
        vault.clone(),
        &name,
        &path,
        writer,
    ));
    run.add_job(state.clone());
    Ok(state)
}

/// The reason to skip storing `a` because the job already holds it (the same bytes or the same
/// content digest).
fn already_stored(exec: &Executor, entries: &[ManifestEntry], a: &Artifact) -> Option<SkipReason> {
    // Two exports of the same content differ byte for byte (as on real OIC), and an entry
    // sharing an earlier job's bytes records that export's sha256: it is the same artifact when
    // the content is the same.
    let same_content = |e: &ManifestEntry| {
        e.content_sha256.is_some()
            && !a.is_planned()
            && crate::vault::content_hash(a.path(), &a.sha256).ok() == e.content_sha256
    };
    entries
        .iter()
        .any(|e| e.key() == a.key && (e.sha256 == a.sha256 || same_content(e)))
        .then(|| SkipReason::InJob {
            run: exec.resume().map(|r| r.run.clone()),
        })
}

/// What a job already holds (a resumed job), the writer, and whether the job takes stores.
struct StoreSetup {
    writer: Option<Arc<JobWriter>>,
    held: Vec<ManifestEntry>,
}

fn store_setup(job: &JobState) -> StoreSetup {
    let writer = job.writer.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let reader = job.reader.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // What the job already holds (a resumed job): not stored again.
    let held = match (&writer, &reader) {
        (Some(w), _) => w.entries(),
        (None, Some(r)) => r.manifest().entries.clone(),
        _ => vec![],
    };
    StoreSetup { writer, held }
}

fn finished_err(job: &JobState) -> OpsError {
    vault_err(
        &job.vault_name,
        format!("job {} is finished; open a new job to store more", job.path),
    )
}

/// Stores artifacts in the job, in parallel (one `store` step each; what the job already holds
/// is skipped); returns those stored, skipped or planned. A failure is recorded and the rest go
/// on.
pub async fn store(
    ctx: &dyn Ctx,
    job: &Arc<JobState>,
    items: Vec<Artifact>,
) -> Result<Vec<Artifact>, OpsError> {
    let exec = ctx.exec();
    let StoreSetup { writer, held } = store_setup(job);
    let all_held = !items.is_empty()
        && items
            .iter()
            .all(|a| already_stored(exec, &held, a).is_some());
    if writer.is_none() && !exec.dry_run() && !all_held {
        return Err(finished_err(job));
    }
    let bar = ctx.bar(items.len(), "store");
    let results = fan_out(bar, ctx.bounds().stores, items, |a| {
        let held = &held;
        let writer = writer.clone();
        async move {
            let r = store_one(exec, job, writer, held, &a, &Mutex::new(None)).await;
            // only whether a failure was a cancellation is kept (it is recorded in the run)
            (a, r.map_err(|e| e.cancelled))
        }
    })
    .await;
    let mut out = vec![];
    for (a, r) in results {
        if let Some(a) = stored(job, a, r)? {
            out.push(a);
        }
    }
    Ok(out)
}

/// [`store`] of artifacts as they arrive (an export still going on sends them): each is stored
/// as soon as a place is free ([`super::ctx::Bounds::stores`] at a time), so that the vault's
/// work overlaps the exports' round trips instead of following them. With `verify`, each file
/// stored is then read back and checked against its entry (a `verify` step, see
/// [`JobState::verified`]). Returns those stored, skipped or planned, in the order they were
/// stored. A job that takes no stores (finished) is refused at the first artifact it does not
/// hold; what arrives after is dropped.
pub async fn store_stream(
    ctx: &dyn Ctx,
    job: &Arc<JobState>,
    items: futures::channel::mpsc::UnboundedReceiver<Artifact>,
    expected: usize,
    verify: bool,
) -> Result<Vec<Artifact>, OpsError> {
    use futures::StreamExt;
    let exec = ctx.exec();
    let StoreSetup { writer, held } = store_setup(job);
    let closed = writer.is_none() && !exec.dry_run();
    let bar = ctx.bar(expected, "store");
    let held = &held;
    let results: Vec<(
        Artifact,
        Result<Outcome<()>, crate::effect::EffectError>,
        bool,
    )> = items
        .map(|a| {
            let writer = writer.clone();
            let bar = bar.clone();
            async move {
                let refused = closed && already_stored(exec, held, &a).is_none();
                let entry = Mutex::new(None);
                let r = if refused {
                    Ok(Outcome::Planned)
                } else {
                    store_one(exec, job, writer.clone(), held, &a, &entry).await
                };
                let entry = entry.into_inner().unwrap_or_else(|p| p.into_inner());
                if let (true, Ok(Outcome::Done(())), Some(w), Some(e)) = (verify, &r, writer, entry)
                {
                    verify_stored(exec, job, w, e).await;
                }
                bar.inc(1);
                (a, r, refused)
            }
        })
        .buffer_unordered(ctx.bounds().stores.max(1))
        .collect()
        .await;
    bar.finish_and_clear();
    if results.iter().any(|(_, _, refused)| *refused) {
        return Err(finished_err(job));
    }
    let mut out = vec![];
    for (a, r, _) in results {
        if let Some(a) = stored(job, a, r.map_err(|e| e.cancelled))? {
            out.push(a);
        }
    }
    Ok(out)
}

/// Notes what one store did in the job state; the artifact when it was stored, skipped or
/// planned (a failure is recorded in the run already; `Err(true)`: the run was cancelled).
fn stored(
    job: &JobState,
    a: Artifact,
    r: Result<Outcome<()>, bool>,
) -> Result<Option<Artifact>, OpsError> {
    match r {
        Ok(Outcome::Planned) => {
            job.planned
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(a.clone());
            Ok(Some(a))
        }
        Ok(Outcome::Done(())) => {
            job.stored
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(a.key.clone(), a.file_handle());
            Ok(Some(a))
        }
        Ok(_) => Ok(Some(a)),
        Err(true) => Err(OpsError::Cancelled),
        Err(_) => Ok(None),
    }
}

/// One `verify` step right after a store: the file read back and checked against the entry
/// the store made; noted in [`JobState::verified`] when it holds. A failure is recorded, and
/// `job.artifacts()` reads the file again (and refuses it if it still does not match).
async fn verify_stored(exec: &Executor, job: &JobState, w: Arc<JobWriter>, e: ManifestEntry) {
    let eff = Effect::new(
        Stage::Verify,
        e.key(),
        job.vault_name.clone(),
        format!("fetch and verify {}", e.path),
    )
    .with_sha256(Some(e.sha256.clone()));
    let r = exec
        .run_read(eff, || {
            let (w, e) = (w.clone(), e.clone());
            async move {
                match tokio::task::spawn_blocking(move || w.check_stored(&e)).await {
                    Ok(Ok(plain)) => Ok(plain),
                    Ok(Err(err)) => Err(Failure::from(err)),
                    Err(err) => Err(Failure::Task(err.to_string())),
                }
            }
        })
        .await;
    // Encrypted without an identity: only a fetch proves the plaintext (job.artifacts does).
    if let Ok(true) = r {
        job.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(e.key(), e);
    }
}

/// One `store` step: planned, skipped (the job holds it) or written (its entry put in `entry`).
async fn store_one(
    exec: &Executor,
    job: &JobState,
    writer: Option<Arc<JobWriter>>,
    held: &[ManifestEntry],
    a: &Artifact,
    entry: &Mutex<Option<ManifestEntry>>,
) -> Result<Outcome<()>, crate::effect::EffectError> {
    let dest = format!("{}/{}/{}", job.path, a.key.kind.folder(), a.file_name());
    let eff = Effect::new(
        Stage::Store,
        a.key.clone(),
        job.vault_name.clone(),
        format!("store {dest}"),
    )
    .with_sha256(Some(a.sha256.clone()).filter(|s| !s.is_empty()));
    if a.is_planned() {
        exec.note(&eff, StepStatus::Planned, None);
        return Ok(Outcome::Planned);
    }
    if let Some(why) = already_stored(exec, held, a) {
        exec.skip(eff, why.clone());
        return Ok(Outcome::Skipped(why));
    }
    exec.run(eff, || {
        let (w, a) = (writer.clone(), a.clone());
        async move {
            let Some(w) = w else {
                return Err(Failure::Task("job is not open for writing".into()));
            };
            match tokio::task::spawn_blocking(move || w.store(&a)).await {
                Ok(Ok(e)) => {
                    *entry.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    Ok(())
                }
                Ok(Err(e)) => Err(Failure::from(e)),
                Err(e) => Err(Failure::Task(e.to_string())),
            }
        }
    })
    .await
}
