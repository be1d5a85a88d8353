//! One run: [`Run::start`] opens the run record (or an in-memory one) and the effect executor,
//! [`Run::finish`] does every end-of-run duty in one place, and dropping a run that was not
//! finished (an early return, a panic unwinding) finishes it as an error. `ferry run`, `plan`,
//! `repl`, `test`, `rollback` and `vault restore`/`prune` all go through it, so the duties are the
//! same everywhere: the vault jobs left open get their manifests, the job holding what the run
//! replaced (for `ferry rollback`) gets its manifest, `notify::at_end` requests are sent with the
//! final outcome, the record is closed, and the temporary folder is removed.
//!
//! Everything a run holds lives here, not in process-global maps: two runs in one process (the
//! REPL and its `:plan`, tests) never see each other's jobs, rollback archives or notifications.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::job::JobState;
use super::notify::{self, NotifyRequest};
use crate::artifact::Artifact;
use crate::config::Config;
use crate::effect::{Executor, Resume, RetryPolicy};
use crate::ledger::{LedgerLocation, Report, RunExtra, RunInfo, RunRecord, Stage};
use crate::shell::Shell;
use crate::vault::JobWriter;

/// The kind of run, as the ledger records it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RunKind {
    #[default]
    Run,
    Plan,
    Rollback,
    Repl,
    Test,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Run => "run",
            RunKind::Plan => "plan",
            RunKind::Rollback => "rollback",
            RunKind::Repl => "repl",
            RunKind::Test => "test",
        }
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    Ok,
    /// Some artifact or job failed, or the recipe stopped on a domain error.
    Failed,
    /// A usage, configuration or script error.
    Error,
    Interrupted,
    /// A plan (dry run) that went through.
    Planned,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Ok => "ok",
            RunOutcome::Failed => "failed",
            RunOutcome::Error => "error",
            RunOutcome::Interrupted => "interrupted",
            RunOutcome::Planned => "planned",
        }
    }
}

/// Settings of a run. Every knob is here (the command line fills them); nothing below reads
/// environment variables.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub kind: RunKind,
    /// Describe effects instead of performing them.
    pub dry_run: bool,
    /// Running against the sandbox (mail goes to its outbox).
    pub sandbox: bool,
    /// Resume a stopped run: its id, or `last` (the latest run of the same recipe).
    pub resume: Option<String>,
    /// Retries of every effect and read.
    pub retry: RetryPolicy,
    /// How long a resumed run waits for an import its predecessor sent but never saw answered.
    pub resume_grace: Duration,
    /// Keep the record in memory only (the REPL's `:plan`, `check`, `docs`).
    pub in_memory: bool,
    /// Stream archives to `<state dir>/tmp/<pid>/`, removed when the run ends.
    pub temp_dir: bool,
    /// Record the run's effects for a plan file, or admit only a plan's effects.
    pub plan: Option<Arc<crate::effect::PlanGuard>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            kind: RunKind::Run,
            dry_run: false,
            sandbox: false,
            resume: None,
            retry: RetryPolicy::default(),
            resume_grace: Duration::from_secs(20),
            in_memory: false,
            temp_dir: false,
            plan: None,
        }
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot resume: {0}")]
    Resume(String),
    #[error("{0}")]
    Record(String),
    /// A setting of the config that cannot work (checked before the first effect).
    #[error("{0}")]
    Config(String),
}

/// What [`Run::finish`] leaves.
pub struct Finished {
    pub outcome: RunOutcome,
    pub report: Report,
    /// End-of-run duties that failed (a job whose manifest could not be written...).
    pub errors: Vec<String>,
}

/// One run of a recipe, a command or a REPL session.
pub struct Run {
    pub config: Arc<Config>,
    pub rt: tokio::runtime::Handle,
    pub exec: Executor,
    pub shell: Shell,
    pub opts: RunOptions,
    jobs: Mutex<Vec<Arc<JobState>>>,
    /// The job holding what the run replaced: `(vault, writer)`.
    rollback: Mutex<Option<(String, Arc<JobWriter>)>>,
    /// The rollback job was sealed ([`Run::seal_rollback_job`]): later saves go to the run folder.
    rollback_sealed: Mutex<bool>,
    at_end: Mutex<Vec<NotifyRequest>>,
    temp: Option<PathBuf>,
    /// Removes the archives of a script that ended ([`Run::release_temp`]); joined by `finish`.
    temp_removal: Mutex<Option<std::thread::JoinHandle<()>>>,
    finished: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The facts of a run that starts now.
pub fn run_info(config: &Config, recipe: &str, text: &str, opts: &RunOptions) -> RunInfo {
    let id = if opts.in_memory {
        opts.kind.as_str().to_string()
    } else {
        RunRecord::new_id()
    };
    RunInfo {
        recipe_sha256: hex::encode(Sha256::digest(text.as_bytes())),
        dry_run: opts.dry_run,
        sandbox: opts.sandbox,
        ..RunInfo::started_now(&id, recipe, &crate::ledger::run_by(config))
    }
}

impl Run {
    /// Starts a run of `recipe` (its text, for the checksum): opens the record, loads the run it
    /// resumes, builds the executor and creates the temporary folder.
    pub fn start(
        config: Arc<Config>,
        rt: tokio::runtime::Handle,
        cancel: CancellationToken,
        shell: Shell,
        recipe: &str,
        text: &str,
        opts: RunOptions,
    ) -> Result<Arc<Run>, StartError> {
        shell.add_secrets(&config.secrets);
        // The whole config is checked before anything happens: vault settings (and the secrets
        // they reference) too, not only when a recipe opens the vault.
        for v in config.vaults.values() {
            if let Err(e) = crate::vault::Vault::check(v) {
                let msg = match e {
                    crate::vault::VaultError::Config { key, problem } => {
                        config.key_error(&key, &problem).to_string()
                    }
                    other => format!("{}: {other}", config.file),
                };
                return Err(StartError::Config(msg));
            }
        }
        let info = run_info(&config, recipe, text, &opts);
        let resume = match &opts.resume {
            None => None,
            Some(which) => Some(Arc::new(
                Resume::load(&LedgerLocation::for_config(&config), which, recipe)
                    .map_err(|e| StartError::Resume(e.to_string()))?,
            )),
        };
        let record = if opts.in_memory {
            RunRecord::in_memory(info)
        } else {
            let extra = RunExtra {
                kind: opts.kind.as_str().to_string(),
                profiles: config
                    .instances
                    .keys()
                    .chain(config.vaults.keys())
                    .cloned()
                    .collect(),
                resumes: resume.as_ref().map(|r| r.run.clone()),
            };
            RunRecord::for_config(&config, info, extra)
                .map_err(|e| StartError::Record(e.to_string()))?
        };
        let exec = Executor::new(Arc::new(record), opts.dry_run, opts.retry.clone(), cancel)
            .with_resume(resume)
            .with_plan(opts.plan.clone());
        let temp = if opts.temp_dir {
            temp_dir(&config.state_dir)
        } else {
            None
        };
        Ok(Run::new(config, rt, exec, shell, opts, temp))
    }

    /// A run with nothing done yet.
    fn new(
        config: Arc<Config>,
        rt: tokio::runtime::Handle,
        exec: Executor,
        shell: Shell,
        opts: RunOptions,
        temp: Option<PathBuf>,
    ) -> Arc<Run> {
        Arc::new(Run {
            config,
            rt,
            exec,
            shell,
            opts,
            jobs: Mutex::default(),
            rollback: Mutex::default(),
            rollback_sealed: Mutex::default(),
            at_end: Mutex::default(),
            temp,
            temp_removal: Mutex::default(),
            finished: AtomicBool::new(false),
        })
    }

    /// A run that records nothing and performs nothing (a dry run kept in memory): for reading
    /// metadata (`check`, `docs`) and for the REPL's `:plan`.
    pub fn offline(
        config: Arc<Config>,
        rt: tokio::runtime::Handle,
        shell: Shell,
        kind: RunKind,
    ) -> Arc<Run> {
        let opts = RunOptions {
            kind,
            dry_run: true,
            in_memory: true,
            ..Default::default()
        };
        let record = RunRecord::in_memory(run_info(&config, kind.as_str(), "", &opts));
        let exec = Executor::new(
            Arc::new(record),
            true,
            opts.retry.clone(),
            CancellationToken::new(),
        );
        Run::new(config, rt, exec, shell, opts, None)
    }

    /// The run's record.
    pub fn record(&self) -> &Arc<RunRecord> {
        self.exec.record()
    }

    /// The run's id.
    pub fn id(&self) -> String {
        self.record().info().id
    }

    /// The temporary folder (Ctrl-C removes it before quitting at once).
    pub fn temp_dir(&self) -> Option<&PathBuf> {
        self.temp.as_ref()
    }

    /// The script ended: the temporary archives its values still hold are removed together
    /// with their folder on a thread of its own while the run finishes (the folder is renamed
    /// `<pid>-ended` and made again empty, so dropping the values afterwards costs one failed
    /// unlink each instead of a removal each on the script's thread: about 1,000 at the end of a
    /// migration). [`Run::finish`] waits for the removal.
    pub fn release_temp(&self) {
        let Some(t) = &self.temp else { return };
        let Some(ended) = ended_temp(t) else { return };
        if std::fs::rename(t, &ended).is_err() {
            return;
        }
        let _ = std::fs::create_dir(t);
        let gone = ended.clone();
        match std::thread::Builder::new()
            .name("ferry-temp".into())
            .spawn(move || {
                let _ = std::fs::remove_dir_all(&gone);
            }) {
            Ok(h) => *lock(&self.temp_removal) = Some(h),
            Err(_) => {
                let _ = std::fs::remove_dir_all(&ended);
            }
        }
    }

    /// Adds a vault job the run opened (finished at the end if the recipe does not).
    pub fn add_job(&self, job: Arc<JobState>) {
        lock(&self.jobs).push(job);
    }

    /// How many jobs the run opened in `vault`.
    pub fn jobs_in(&self, vault: &str) -> usize {
        lock(&self.jobs)
            .iter()
            .filter(|j| j.vault_name == vault)
            .count()
    }

    /// The latest job the run opened.
    pub fn last_job(&self) -> Option<Arc<JobState>> {
        lock(&self.jobs).last().cloned()
    }

    /// Sends `req` when the run ends, with its final outcome.
    pub fn notify_at_end(&self, req: NotifyRequest) {
        lock(&self.at_end).push(req);
    }

    /// Keeps the archive a replace is about to lose, for `ferry rollback`: in a sibling vault job
    /// `<job>-rollback` of the latest job the run opened (same vault, same day), or in the run's
    /// folder when it opened none. Returns its location (`vault:NAME:PATH` or `file:PATH`).
    /// Blocking: call it from `spawn_blocking`.
    pub fn keep_for_rollback(&self, a: &Artifact) -> Result<String, String> {
        let mut sink = lock(&self.rollback);
        if sink.is_none()
            && !*lock(&self.rollback_sealed)
            && let Some(job) = self.last_job()
        {
            let date =
                date_of_job_path(&job.path).unwrap_or_else(|| chrono::Utc::now().date_naive());
            let meta = super::job::job_meta(self.record(), true);
            // A stopped run of this resume chain finished `<job>-rollback` with what it had
            // saved (each archive's rollback record names its job): continue in a sibling.
            let w = job
                .vault
                .create_first_job(&format!("{}-rollback", job.name), date, meta, |e| {
                    matches!(e, crate::vault::VaultError::Complete { .. })
                })
                .map_err(|e| e.to_string())?;
            *sink = Some((job.vault_name.clone(), Arc::new(w)));
        }
        match &*sink {
            Some((vname, w)) => {
                w.store(a).map_err(|e| e.to_string())?;
                Ok(format!("vault:{vname}:{}", w.path()))
            }
            None => {
                let dir = self
                    .record()
                    .dir()
                    .ok_or("the run has no folder")?
                    .join("rollback");
                std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                let p = dir.join(a.file_name());
                std::fs::copy(a.path(), &p).map_err(|e| e.to_string())?;
                Ok(format!("file:{}", p.display()))
            }
        }
    }

    /// Writes the manifest of the rollback job now (so that an in-run rollback, a cutover's,
    /// can read its archives back). A later replace in the same run saves into the run's folder.
    pub fn seal_rollback_job(&self) -> Result<(), String> {
        let taken = lock(&self.rollback).take();
        if let Some((_, w)) = taken {
            let w = Arc::try_unwrap(w).map_err(|_| "rollback job: still in use".to_string())?;
            w.finish_status()
                .map_err(|e| format!("rollback job: {e}"))?;
            *lock(&self.rollback_sealed) = true;
        }
        Ok(())
    }

    /// Ends the run: finishes the jobs left open and the rollback job, decides the final outcome
    /// (a run that went through with failed steps or jobs has failed), sends the `at_end`
    /// notifications with it, closes the record and removes the temporary folder. Called once;
    /// later calls (and the drop guard) do nothing but return the record's report.
    pub fn finish(&self, outcome: RunOutcome, message: Option<String>) -> Finished {
        if self.finished.swap(true, Ordering::SeqCst) {
            let report = self.record().report_with(self.record().info());
            return Finished {
                outcome,
                report,
                errors: vec![],
            };
        }
        let errors = self.finish_jobs(outcome == RunOutcome::Interrupted);
        let failed_steps = self.record().any_failed_except(Stage::Notify);
        let outcome = match outcome {
            RunOutcome::Ok | RunOutcome::Planned if failed_steps || !errors.is_empty() => {
                RunOutcome::Failed
            }
            o => o,
        };
        self.send_at_end(outcome, message.as_deref());
        let report = self.record().finish(outcome.as_str(), message);
        if let Some(h) = lock(&self.temp_removal).take() {
            let _ = h.join();
        }
        if let Some(t) = &self.temp {
            let _ = std::fs::remove_dir_all(t);
        }
        Finished {
            outcome,
            report,
            errors,
        }
    }

    /// Writes the manifests of the jobs left open and of the rollback job. A stopped run
    /// (Ctrl-C, SIGTERM) leaves its jobs unfinished (no manifest, lock kept): it is continued
    /// with `--resume`, never finalised half-way.
    fn finish_jobs(&self, stopped: bool) -> Vec<String> {
        let mut errors = vec![];
        // Only a resumed run can continue what a killed attempt left.
        if !stopped
            && self.record().extra().resumes.is_some()
            && lock(&self.rollback).is_none()
            && !*lock(&self.rollback_sealed)
        {
            self.finish_left_rollback_jobs();
        }
        let jobs: Vec<_> = lock(&self.jobs).drain(..).collect();
        for j in jobs {
            if stopped {
                tracing::info!(job = %j.path, "run stopped: the job stays unfinished; continue it with --resume");
            } else if let Err(e) = j.finish(self.record(), &self.shell) {
                errors.push(e);
            }
        }
        if let Some((_, w)) = lock(&self.rollback).take() {
            match Arc::try_unwrap(w) {
                Ok(w) => {
                    if let Err(e) = w.finish_status() {
                        errors.push(format!("rollback job: {e}"));
                    }
                }
                Err(_) => errors.push("rollback job: still in use, manifest not written".into()),
            }
        }
        errors
    }

    /// A killed run of this resume chain may have left `<job>-rollback[-N]` unfinished (no
    /// manifest) with archives it saved; when the resumed run saves none, nothing would finish
    /// it and `ferry rollback` could not read them. The run that goes through finishes them.
    fn finish_left_rollback_jobs(&self) {
        let Some(job) = self.last_job() else { return };
        let prefix = format!("{}-rollback", job.name);
        let filter = crate::vault::JobFilter {
            name: Some(prefix.clone()),
            ..Default::default()
        };
        let Ok(found) = job.vault.list_jobs(filter) else {
            return;
        };
        for j in found.into_iter().filter(|j| {
            j.status == crate::vault::JobCondition::Unfinished
                && (j.name == prefix
                    || j.name
                        .strip_prefix(&format!("{prefix}-"))
                        .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit())))
        }) {
            let meta = super::job::job_meta(self.record(), true);
            let r = job
                .vault
                .create_job(&j.name, j.date, meta)
                .map_err(|e| e.to_string())
                .and_then(|w| w.finish_status().map(|_| ()).map_err(|e| e.to_string()));
            if let Err(e) = r {
                // The run itself went through: say it, without failing it.
                self.shell.warn(&format!(
                    "rollback job {} left unfinished by an earlier attempt: {e}",
                    j.path
                ));
            }
        }
    }

    /// Sends what `notify::at_end` registered, with the run's outcome; never fails.
    fn send_at_end(&self, outcome: RunOutcome, message: Option<&str>) {
        let reqs: Vec<_> = lock(&self.at_end).drain(..).collect();
        if reqs.is_empty() {
            return;
        }
        let mut info = self.record().info();
        info.outcome = Some(outcome.as_str().to_string());
        info.message = message.map(str::to_string);
        info.ended = Some(chrono::Utc::now());
        for r in &reqs {
            let send = notify::send(self, info.clone(), r);
            if tokio::runtime::Handle::try_current().is_ok() {
                // Inside the runtime (a drop on a worker): the notification cannot be awaited.
                self.shell
                    .warn("end-of-run notification not sent: the run ended inside the runtime");
            } else {
                self.rt.block_on(send);
            }
        }
    }
}

impl super::RollbackSink for Run {
    fn save(&self, a: &Artifact) -> Result<String, String> {
        self.keep_for_rollback(a)
    }
}

/// The guard for the error path: a run dropped before [`Run::finish`] is finished as an error,
/// so its jobs get their manifests and its record is closed.
impl Drop for Run {
    fn drop(&mut self) {
        if !self.finished.load(Ordering::SeqCst) {
            self.finish(
                RunOutcome::Error,
                Some("the run stopped before it was finished".into()),
            );
        }
    }
}

fn date_of_job_path(path: &str) -> Option<chrono::NaiveDate> {
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() < 5 {
        return None;
    }
    chrono::NaiveDate::from_ymd_opt(
        parts[1].parse().ok()?,
        parts[2].parse().ok()?,
        parts[3].parse().ok()?,
    )
}

/// Archives are streamed to temporary files in `<state dir>/tmp/<pid>/`, removed when the run
/// ends (also on error and Ctrl-C). Folders left by runs that were killed are removed here. The
/// folder is the process's temporary folder from then on (`tempfile` allows that once).
/// Where [`Run::release_temp`] moves the temporary folder `t` of a script that ended
/// (`<pid>-ended` beside it), to be removed on a thread of its own.
pub fn ended_temp(t: &std::path::Path) -> Option<PathBuf> {
    let name = t.file_name()?.to_str()?;
    Some(t.with_file_name(format!("{name}-ended")))
}

fn temp_dir(state_dir: &std::path::Path) -> Option<PathBuf> {
    let base = state_dir.join("tmp");
    if let Ok(rd) = std::fs::read_dir(&base) {
        for e in rd.flatten() {
            // `<pid>`, or `<pid>-ended` (see `Run::release_temp`)
            let stale = e
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix("-ended").unwrap_or(n).parse::<u32>().ok())
                .is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists());
            if stale {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = base.join(std::process::id().to_string());
    std::fs::create_dir_all(&dir).ok()?;
    let dir = std::path::absolute(&dir).ok()?;
    tempfile::env::override_temp_dir(&dir).ok()?;
    Some(dir)
}
