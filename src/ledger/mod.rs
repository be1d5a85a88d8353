//! The run record: every effect of a run as a step (artifact, stage, status, attempts, error,
//! timings, sha256), appended to a journal on disk as it happens, and the reports built from it.
//!
//! Every run and step is written to the ledger database ([`Ledger`], `<state dir>/ledger.db`),
//! one transaction per step, so a killed process loses nothing that completed. A run's folder
//! `<state dir>/runs/<run id>/` receives, at the end, `report.json` (the same document `--json`
//! prints) and `report.html` (one self-contained page).

pub mod db;
pub mod html;
pub mod pg;
pub mod query;
pub mod report;
pub mod store;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::artifact::{ArtifactKey, ArtifactKind};

pub use db::{
    ErrorFilter, ErrorRow, Intent, JobRow, Ledger, LedgerLocation, RollbackEntry, RunExtra, RunRow,
    host_name, ledger_path, stage_from_str,
};
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
    /// Why: the reason of a skip ("unchanged by checksum", "done in run X") or of a planned
    /// action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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

impl RunInfo {
    /// A run `id` of `recipe` by `run_by`, started now and still running, neither a dry run nor
    /// in the sandbox, of this ferry version (change other facts with `..RunInfo::started_now`).
    pub fn started_now(id: &str, recipe: &str, run_by: &str) -> RunInfo {
        RunInfo {
            id: id.to_string(),
            recipe: recipe.to_string(),
            recipe_sha256: String::new(),
            run_by: run_by.to_string(),
            started: Utc::now(),
            ended: None,
            dry_run: false,
            sandbox: false,
            ferry_version: env!("CARGO_PKG_VERSION").to_string(),
            outcome: None,
            message: None,
        }
    }
}

/// Errors of the ledger itself.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot write the run record in {path}: {reason}")]
    Write { path: String, reason: String },
    #[error("no run `{0}` in the ledger (see `ferry runs`)")]
    NoRun(String),
    /// A stored value that is not one ferry writes (never read as a default).
    #[error(
        "the ledger {path} is damaged: table `{table}`, row {row}, column `{column}`: `{value}` is not {expected}"
    )]
    BadRow {
        path: String,
        table: &'static str,
        row: String,
        column: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// A step as the record keeps it for the report: the texts many steps repeat (code, version,
/// target) shared, the checksum as its 32 bytes, the rest boxed (about a third of the memory of
/// a [`Step`]). Only a record without a ledger database, and the steps the database could not
/// take, are kept: the others are read back from the database.
struct KeptStep {
    seq: u64,
    stage: Stage,
    kind: ArtifactKind,
    status: StepStatus,
    attempts: u32,
    code: Arc<str>,
    version: Arc<str>,
    target: Arc<str>,
    action: Box<str>,
    reason: Option<Box<str>>,
    error: Option<Box<StepError>>,
    /// The sha256 as bytes when it is 64 lower-case hex digits, else as text.
    sha256: Option<Sha>,
    started: DateTime<Utc>,
    ended: DateTime<Utc>,
}

enum Sha {
    Bytes([u8; 32]),
    Text(Box<str>),
}

impl Sha {
    fn of(s: &str) -> Sha {
        let mut b = [0u8; 32];
        let hex = s.len() == 64
            && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
            && b.iter_mut().enumerate().all(|(i, x)| {
                u8::from_str_radix(&s[2 * i..2 * i + 2], 16)
                    .map(|v| *x = v)
                    .is_ok()
            });
        if hex {
            Sha::Bytes(b)
        } else {
            Sha::Text(s.into())
        }
    }
    fn text(&self) -> String {
        match self {
            Sha::Bytes(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
            Sha::Text(t) => t.to_string(),
        }
    }
}

/// The steps of a run kept in memory, with one copy of each repeated text, and how many steps
/// the run has.
#[derive(Default)]
struct Steps {
    rows: Vec<KeptStep>,
    texts: HashSet<Arc<str>>,
    count: u64,
}

impl Steps {
    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.texts.get(s) {
            return a.clone();
        }
        let a: Arc<str> = s.into();
        self.texts.insert(a.clone());
        a
    }

    fn keep(&mut self, s: &Step) {
        let row = KeptStep {
            seq: s.seq,
            stage: s.stage,
            kind: s.kind,
            status: s.status,
            attempts: s.attempts,
            code: self.intern(&s.code),
            version: self.intern(&s.version),
            target: self.intern(&s.target),
            action: s.action.as_str().into(),
            reason: s.reason.as_deref().map(Into::into),
            error: s.error.clone().map(Box::new),
            sha256: s.sha256.as_deref().map(Sha::of),
            started: s.started,
            ended: s.ended,
        };
        self.rows.push(row);
    }

    fn step(&self, i: usize) -> Step {
        let k = &self.rows[i];
        Step {
            seq: k.seq,
            stage: k.stage,
            kind: k.kind,
            code: k.code.to_string(),
            version: k.version.to_string(),
            target: k.target.to_string(),
            action: k.action.to_string(),
            reason: k.reason.as_deref().map(str::to_string),
            status: k.status,
            attempts: k.attempts,
            error: k.error.as_deref().cloned(),
            sha256: k.sha256.as_ref().map(Sha::text),
            started: k.started,
            ended: k.ended,
        }
    }
}

/// The steps of a run read back from the ledger database a page at a time (a run of 10,000
/// artifacts has tens of thousands of steps: they are not held in memory).
const STEPS_PAGE: u64 = 512;

/// The steps of a run in order: those of the ledger database, page by page, merged with those
/// kept in memory (steps the database could not take), by sequence number.
struct StepsIter<'a> {
    record: &'a RunRecord,
    kept: &'a Steps,
    /// The next kept row.
    next_kept: usize,
    /// The last sequence number read from the database, and the page being read.
    after: u64,
    page: std::iter::Peekable<std::vec::IntoIter<Step>>,
    db_done: bool,
}

impl Iterator for StepsIter<'_> {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        if self.page.peek().is_none() && !self.db_done {
            let id = self.record.info().id;
            let after = self.after;
            let page = self
                .record
                .with_db(|db| db.steps_page(&id, after, STEPS_PAGE))
                .unwrap_or_default();
            self.db_done = (page.len() as u64) < STEPS_PAGE;
            self.page = page.into_iter().peekable();
        }
        let kept_seq = self.kept.rows.get(self.next_kept).map(|k| k.seq);
        match (self.page.peek().map(|s| s.seq), kept_seq) {
            (Some(d), Some(k)) if k < d => {}
            (Some(_), _) => {
                let s = self.page.next()?;
                self.after = s.seq;
                return Some(s);
            }
            (None, None) => return None,
            (None, Some(_)) => {}
        }
        self.next_kept += 1;
        Some(self.kept.step(self.next_kept - 1))
    }
}

/// The record of one run: each step written to the ledger database in its own transaction as
/// it happens, and read back from it for the report (kept in memory, compact, when the record
/// has no database or the database could not take it).
pub struct RunRecord {
    info: Mutex<RunInfo>,
    extra: Mutex<RunExtra>,
    steps: Mutex<Steps>,
    dir: Option<PathBuf>,
    db: Option<Mutex<Ledger>>,
    jobs: Mutex<Vec<JobRow>>,
    /// The stage that declared how many artifacts the run moves, and how many.
    expected: Mutex<Option<(Stage, u64)>>,
    secrets: Vec<crate::config::Secret>,
}

impl RunRecord {
    /// A record that lives only in memory (tests, `ferry check`).
    pub fn in_memory(info: RunInfo) -> RunRecord {
        RunRecord {
            info: Mutex::new(info),
            extra: Mutex::new(RunExtra::default()),
            steps: Mutex::new(Steps::default()),
            dir: None,
            db: None,
            jobs: Mutex::new(vec![]),
            expected: Mutex::new(None),
            secrets: vec![],
        }
    }

    /// A record in the ledger of `state_dir` (see [`ledger_path`]), with its folder
    /// `<state_dir>/runs/<id>/` for the reports, created now.
    pub fn create(
        state_dir: &Path,
        info: RunInfo,
        secrets: Vec<crate::config::Secret>,
    ) -> Result<RunRecord, LedgerError> {
        let loc = LedgerLocation::in_state_dir(state_dir);
        RunRecord::create_with(state_dir, &loc, info, RunExtra::default(), secrets)
    }

    /// A record in the ledger a configuration names (see [`LedgerLocation::for_config`]), with
    /// its folder `<run dir>/runs/<id>/` for the reports.
    pub fn for_config(
        config: &crate::config::Config,
        info: RunInfo,
        extra: RunExtra,
    ) -> Result<RunRecord, LedgerError> {
        RunRecord::create_with(
            &config.state_dir,
            &LedgerLocation::for_config(config),
            info,
            extra,
            config.secrets.clone(),
        )
    }

    /// [`RunRecord::create`] in the ledger at `loc`, with the run's kind, profiles and the run
    /// it resumes.
    pub fn create_with(
        state_dir: &Path,
        loc: &LedgerLocation,
        info: RunInfo,
        extra: RunExtra,
        secrets: Vec<crate::config::Secret>,
    ) -> Result<RunRecord, LedgerError> {
        let dir = state_dir.join("runs").join(&info.id);
        std::fs::create_dir_all(&dir).map_err(|e| LedgerError::Write {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })?;
        let db = Ledger::open_at(loc)?;
        // The ledger may be shared by machines: it records the folder as an absolute path.
        let abs = std::path::absolute(&dir).unwrap_or_else(|_| dir.clone());
        db.insert_run(&info, &extra, Some(&abs))?;
        Ok(RunRecord {
            info: Mutex::new(info),
            extra: Mutex::new(extra),
            steps: Mutex::new(Steps::default()),
            dir: Some(dir),
            db: Some(Mutex::new(db)),
            jobs: Mutex::new(vec![]),
            expected: Mutex::new(None),
            secrets,
        })
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

    /// The run's id (without a copy of the whole [`RunInfo`]: once per step written).
    fn id(&self) -> String {
        self.info.lock().expect("run info lock").id.clone()
    }

    /// The run's kind, profiles and the run it resumes.
    pub fn extra(&self) -> RunExtra {
        self.extra.lock().expect("run extra lock").clone()
    }

    /// Sets the run's kind, profiles and the run it resumes.
    pub fn set_extra(&self, extra: RunExtra) {
        *self.extra.lock().expect("run extra lock") = extra.clone();
        let id = self.id();
        self.with_db(|db| db.update_extra(&id, &extra));
    }

    /// The run's folder, when it has one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Runs `f` on the ledger database (when the record has one); errors are logged, never
    /// raised: the run goes on even when its record cannot be written.
    pub fn with_db<T>(&self, f: impl FnOnce(&mut Ledger) -> Result<T, LedgerError>) -> Option<T> {
        let db = self.db.as_ref()?;
        let mut g = db.lock().unwrap_or_else(|p| p.into_inner());
        match f(&mut g) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!("{e}");
                None
            }
        }
    }

    /// Appends a finished step (scrubbed of secrets) and writes it to the ledger.
    pub fn push(&self, mut step: Step) -> Step {
        if let Some(e) = step.error.as_mut() {
            e.message = crate::config::scrub(&e.message, &self.secrets);
        }
        if let Some(r) = step.reason.as_mut() {
            *r = crate::config::scrub(r, &self.secrets);
        }
        let mut steps = self.steps.lock().expect("steps lock");
        steps.count += 1;
        step.seq = steps.count;
        let id = self.id();
        // Written while the steps lock is held, so the database order is the record's order.
        if self.with_db(|db| db.insert_step(&id, &step)).is_none() {
            steps.keep(&step);
        }
        step
    }

    /// Every step so far, as a copy (tests; see [`RunRecord::with_steps`]).
    pub fn steps(&self) -> Vec<Step> {
        self.with_steps(|it| it.collect())
    }

    /// Calls `f` with the steps so far, in order, each made as it is read (from the ledger
    /// database a page at a time: no copy of a record of thousands of steps is held).
    pub fn with_steps<T>(&self, f: impl FnOnce(&mut dyn Iterator<Item = Step>) -> T) -> T {
        let steps = self.steps.lock().expect("steps lock");
        let mut it = StepsIter {
            record: self,
            kept: &steps,
            next_kept: 0,
            after: 0,
            page: Vec::new().into_iter().peekable(),
            db_done: self.db.is_none(),
        };
        f(&mut it)
    }

    /// True when a step of `stage`s other than `except` failed.
    pub fn any_failed_except(&self, except: Stage) -> bool {
        self.with_steps(|mut it| {
            Iterator::any(&mut it, |s| {
                s.status == StepStatus::Failed && s.stage != except
            })
        })
    }

    /// The artifacts whose last step of `stage` failed, with that step's error message.
    pub fn last_failed(&self, stage: Stage) -> Vec<(ArtifactKey, String)> {
        // The last step of each artifact: only the failed ones keep their message.
        let mut last: BTreeMap<ArtifactKey, Option<String>> = BTreeMap::new();
        self.with_steps(|it| {
            for st in Iterator::filter(it, |s| s.stage == stage) {
                let why = (st.status == StepStatus::Failed).then(|| {
                    st.error
                        .as_ref()
                        .map(|e| e.message.clone())
                        .unwrap_or_default()
                });
                last.insert(st.key(), why);
            }
        });
        last.into_iter()
            .filter_map(|(k, why)| Some((k, why?)))
            .collect()
    }

    /// Records how many artifacts the run plans to move (the dashboard shows its progress).
    pub fn set_expected(&self, expected: u64) {
        let id = self.id();
        self.with_db(|db| db.set_expected(&id, expected));
    }

    /// Called by a verb that starts on its selection of `n` artifacts: the first stage to say so
    /// (the exports of a migration, the imports of a restore) sets the run's expected total, and
    /// later calls of that stage (another batch) add to it; other stages change nothing.
    pub fn expect(&self, stage: Stage, n: u64) {
        let total = {
            let mut e = self.expected.lock().unwrap_or_else(|p| p.into_inner());
            let total = match e.as_mut() {
                None => n,
                Some((s, total)) if *s == stage => *total + n,
                Some(_) => return,
            };
            *e = Some((stage, total));
            total
        };
        self.set_expected(total);
    }

    /// The backup jobs the run opened for writing, in order.
    pub fn jobs(&self) -> Vec<JobRow> {
        self.jobs.lock().expect("jobs lock").clone()
    }

    /// The run's report as it stands, with `info` (which carries the outcome at the end): the
    /// steps, the run's kind and profiles, the backup jobs.
    pub fn report_with(&self, info: RunInfo) -> Report {
        let mut report = self.with_steps(|steps| Report::build_from(info, steps));
        report.extra = self.extra();
        report.backup_jobs = self.jobs();
        report
    }

    /// Records a vault job opened for writing; returns its sequence number in the run (1, 2...).
    pub fn note_job(&self, vault: &str, name: &str, path: &str, date: chrono::NaiveDate) -> u64 {
        let row = {
            let mut jobs = self.jobs.lock().expect("jobs lock");
            let row = JobRow {
                run: self.info().id,
                seq: jobs.len() as u64 + 1,
                vault: vault.to_string(),
                name: name.to_string(),
                path: path.to_string(),
                date: date.to_string(),
            };
            jobs.push(row.clone());
            row
        };
        self.with_db(|db| db.insert_job(&row));
        row.seq
    }

    /// Records that an effect is about to be sent.
    pub fn note_intent(&self, i: &Intent) {
        let id = self.id();
        self.with_db(|db| db.insert_intent(&id, i));
    }

    /// Records what a target held before this run changed it (the first record of an artifact
    /// wins).
    pub fn note_rollback(&self, e: &RollbackEntry) {
        let id = self.id();
        self.with_db(|db| db.insert_rollback(&id, e));
    }

    /// Withdraws this run's rollback record of `key` on `target`: the change it announced was
    /// made by someone else (another run's import landed first), so rolling this run back must
    /// not undo it.
    pub fn forget_rollback(&self, key: &ArtifactKey, target: &str) {
        let id = self.id();
        self.with_db(|db| db.delete_rollback(&id, key, target));
    }

    /// Adds an HTML fragment (a heading and tables, e.g. a backup diff) to the run's report.html.
    /// Kept in the run folder under `sections/` until the report is written; a run without a
    /// folder has no report.html and keeps nothing.
    pub fn add_report_section(&self, html: &str) {
        let Some(dir) = &self.dir else { return };
        let sections = dir.join("sections");
        let n = std::fs::read_dir(&sections).map(|d| d.count()).unwrap_or(0);
        let text = crate::config::scrub(html, &self.secrets);
        if std::fs::create_dir_all(&sections)
            .and_then(|_| std::fs::write(sections.join(format!("{n:04}.html")), text))
            .is_err()
        {
            tracing::error!("cannot write a report section in {}", dir.display());
        }
    }

    /// The sections added during the run (see [`RunRecord::add_report_section`]), in order.
    fn sections(dir: &Path) -> String {
        let Ok(rd) = std::fs::read_dir(dir.join("sections")) else {
            return String::new();
        };
        let mut files: Vec<std::path::PathBuf> =
            rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect()
    }

    /// Writes `name` in the run's folder (through a temporary name) from the parts `write`
    /// hands over, each scrubbed of secrets, none held after it is written.
    fn write_part_file(
        &self,
        dir: &Path,
        name: &str,
        write: impl FnOnce(&mut dyn FnMut(&str) -> std::io::Result<()>) -> std::io::Result<()>,
    ) {
        use std::io::Write;
        let tmp = dir.join(format!("{name}.tmp"));
        let res = std::fs::File::create(&tmp).and_then(|f| {
            let mut w = std::io::BufWriter::new(f);
            write(&mut |part: &str| {
                w.write_all(crate::config::scrub(part, &self.secrets).as_bytes())
            })?;
            w.into_inner().map_err(|e| e.into_error())?;
            std::fs::rename(&tmp, dir.join(name))
        });
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
            tracing::error!("cannot write {name} in {}", dir.display());
        }
    }

    /// Marks the run finished and writes `report.json` and `report.html`; returns the report.
    pub fn finish(&self, outcome: &str, message: Option<String>) -> Report {
        {
            let mut i = self.info.lock().expect("run info lock");
            i.ended = Some(Utc::now());
            i.outcome = Some(outcome.to_string());
            i.message = message.map(|m| crate::config::scrub(&m, &self.secrets));
        }
        let info = self.info();
        self.with_db(|db| db.finish_run(&info));
        let report = self.report_with(info);
        if let Some(dir) = &self.dir {
            // Both written in parts (a run of 10,000 artifacts has reports of megabytes).
            self.write_part_file(dir, "report.json", |sink| report.write_json_pretty(sink));
            let sections = Self::sections(dir);
            self.write_part_file(dir, "report.html", |sink| {
                // the sections go before the page's end
                let mut held: Option<String> = None;
                report.write_html(&mut |part: &str| {
                    if let Some(prev) = held.replace(part.to_string()) {
                        sink(&prev)?;
                    }
                    Ok(())
                })?;
                let last = held.unwrap_or_default();
                match last.rfind("</body>") {
                    Some(i) => {
                        sink(&last[..i])?;
                        sink(&sections)?;
                        sink(&last[i..])
                    }
                    None => {
                        sink(&last)?;
                        sink(&sections)
                    }
                }
            });
        }
        report
    }
}

/// Who a run is recorded as: the configured `[ledger] identity`, else [`current_user`].
pub fn run_by(config: &crate::config::Config) -> String {
    config.ledger.identity.clone().unwrap_or_else(current_user)
}

/// Who runs ferry: `$FERRY_USER`, else the operating-system user (`$USER`, else the account
/// of the process, as the password database names it, else its user id as `uid 1000`: a
/// container's user may have no name, but a run is never recorded as by "unknown").
pub fn current_user() -> String {
    std::env::var("FERRY_USER")
        .or_else(|_| std::env::var("USER"))
        .ok()
        .filter(|u| !u.trim().is_empty())
        .or_else(|| whoami::username().ok().filter(|u| !u.trim().is_empty()))
        .unwrap_or_else(uid_name)
}

#[cfg(unix)]
fn uid_name() -> String {
    // SAFETY: getuid has no preconditions and cannot fail.
    format!("uid {}", unsafe { libc::getuid() })
}

#[cfg(not(unix))]
fn uid_name() -> String {
    std::env::var("USERNAME").unwrap_or_else(|_| "the account of this process".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_kept_compact_read_back_as_they_were_pushed() {
        let rec = RunRecord::in_memory(RunInfo::started_now("r", "m.rhai", "me"));
        steps_read_back_as_they_were_pushed(&rec);
    }

    #[test]
    fn steps_read_back_from_the_ledger_as_they_were_pushed() {
        let d = tempfile::tempdir().unwrap();
        let info = RunInfo::started_now("r", "m.rhai", "me");
        let loc = LedgerLocation::in_state_dir(d.path());
        let rec =
            RunRecord::create_with(d.path(), &loc, info, RunExtra::default(), vec![]).unwrap();
        steps_read_back_as_they_were_pushed(&rec);
        assert!(
            rec.steps.lock().unwrap().rows.is_empty(),
            "none kept in memory"
        );
        // more than a page, in order
        for i in 0..(2 * STEPS_PAGE + 3) {
            let mut s = rec.steps()[0].clone();
            s.code = format!("P{i}");
            rec.push(s);
        }
        let all = rec.steps();
        assert_eq!(all.len() as u64, 2 * STEPS_PAGE + 8);
        assert!(all.iter().enumerate().all(|(i, s)| s.seq == i as u64 + 1));
        assert_eq!(all.last().unwrap().code, format!("P{}", 2 * STEPS_PAGE + 2));
    }

    fn steps_read_back_as_they_were_pushed(rec: &RunRecord) {
        // the ledger keeps times to the millisecond
        let now = || DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
        let step = |stage, code: &str, status, sha: Option<&str>| Step {
            seq: 0,
            stage,
            kind: ArtifactKind::Integration,
            code: code.into(),
            version: "01.00.0000".into(),
            target: "dev".into(),
            action: format!("{stage} {code}"),
            reason: (status == StepStatus::Skipped).then(|| "unchanged".to_string()),
            status,
            attempts: 2,
            error: (status == StepStatus::Failed).then(|| StepError {
                kind: "http".into(),
                status: Some(500),
                message: "boom".into(),
            }),
            sha256: sha.map(str::to_string),
            started: now(),
            ended: now(),
        };
        let hex = "0123456789abcdef".repeat(4);
        let pushed = [
            step(Stage::Export, "A", StepStatus::Failed, None),
            step(Stage::Export, "B", StepStatus::Ok, Some(&hex)),
            step(Stage::Store, "B", StepStatus::Skipped, Some("ABC not hex")),
            step(
                Stage::Export,
                "A",
                StepStatus::Ok,
                Some(&hex.to_uppercase()),
            ),
            step(Stage::Export, "C", StepStatus::Failed, None),
        ];
        let back: Vec<Step> = pushed.iter().map(|s| rec.push(s.clone())).collect();
        assert_eq!(rec.steps(), back);
        for (i, (a, b)) in pushed.iter().zip(&back).enumerate() {
            assert_eq!(b.seq, i as u64 + 1);
            assert_eq!(
                Step {
                    seq: b.seq,
                    ..a.clone()
                },
                *b
            );
        }
        // the last export of A succeeded; C's failed
        let failed = rec.last_failed(Stage::Export);
        assert_eq!(
            failed,
            vec![(
                ArtifactKey::new(ArtifactKind::Integration, "C", "01.00.0000"),
                "boom".to_string()
            )]
        );
        assert!(rec.any_failed_except(Stage::Notify));
        assert!(!rec.any_failed_except(Stage::Export));
        let r = rec.report_with(rec.info());
        assert_eq!(r.summary.exported, 2);
        assert_eq!(r.from, vec!["dev".to_string()]);
    }

    #[test]
    fn the_first_stage_to_count_its_selection_sets_the_expected_total() {
        let d = tempfile::tempdir().unwrap();
        let info = RunInfo::started_now("r1", "m.rhai", &current_user());
        let loc = LedgerLocation::in_state_dir(d.path());
        let rec =
            RunRecord::create_with(d.path(), &loc, info, RunExtra::default(), vec![]).unwrap();
        let expected = || {
            Ledger::open_at(&loc)
                .unwrap()
                .run("r1")
                .unwrap()
                .unwrap()
                .expected
        };
        assert_eq!(expected(), None);
        rec.expect(Stage::Export, 3);
        rec.expect(Stage::Import, 3);
        assert_eq!(
            expected(),
            Some(3),
            "the imports of the exports count nothing more"
        );
        rec.expect(Stage::Export, 2);
        assert_eq!(expected(), Some(5), "a second batch of exports adds");
        let run_by = current_user();
        assert!(!run_by.trim().is_empty() && run_by != "unknown", "{run_by}");
        assert!(uid_name().starts_with("uid "));
    }
}
