//! The ledger database: an embedded SQLite file (`<state dir>/ledger.db`, or `$FERRY_LEDGER`)
//! holding every run and every step of every run. It is the central error log that `ferry runs`,
//! `ferry errors` and recipes read, and what `--resume` and `ferry rollback` work from.
//!
//! Writes are transactional (one transaction per step) and the database runs in WAL mode, so a
//! killed process loses at most the step it was writing.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::store::{LedgerStore, Row, SqliteStore, Stmt, Val};
use super::{LedgerError, RunInfo, Stage, Step, StepError, StepStatus};
use crate::artifact::{ArtifactKey, ArtifactKind};

/// The ledger database path for a state folder: `$FERRY_LEDGER` when set, else
/// `<state_dir>/ledger.db`.
pub fn ledger_path(state_dir: &Path) -> PathBuf {
    match std::env::var_os("FERRY_LEDGER") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => state_dir.join("ledger.db"),
    }
}

/// Extra facts about a run kept in the ledger besides [`RunInfo`].
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct RunExtra {
    /// `run`, `plan` or `rollback`.
    pub kind: String,
    /// The config profiles (instances, vaults) the run could use.
    pub profiles: Vec<String>,
    /// The run this one resumes, if any.
    pub resumes: Option<String>,
}

/// A run as listed by `ferry runs`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RunRow {
    #[serde(flatten)]
    pub info: RunInfo,
    #[serde(flatten)]
    pub extra: RunExtra,
    /// The run's folder (reports).
    pub dir: Option<String>,
    /// The machine the run ran on.
    pub host: Option<String>,
    /// How many artifacts the run planned to move, when it said (for progress).
    pub expected: Option<u64>,
    /// When the run last wrote a step (a running run whose heartbeat stops has died).
    pub updated: Option<DateTime<Utc>>,
    pub steps: u64,
    pub failed_steps: u64,
    /// How many artifacts the run has worked on so far (a step of any stage but `notify`).
    pub artifacts: u64,
}

/// A vault job a run opened for writing (used to reopen it on resume).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct JobRow {
    pub run: String,
    pub seq: u64,
    pub vault: String,
    pub name: String,
    pub path: String,
    pub date: String,
}

/// What a target held before a run changed it: enough to put it back (`ferry rollback`).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RollbackEntry {
    pub kind: ArtifactKind,
    pub code: String,
    pub version: String,
    /// The instance.
    pub target: String,
    /// False when the run created it (rollback deletes it).
    pub existed: bool,
    /// Its status before the run (`ACTIVATED`, `CONFIGURED`...).
    pub previous_status: Option<String>,
    /// The sha256 of its archive before the run.
    pub sha256: Option<String>,
    /// The content digest of its archive before the run (see `vault::content_hash`): what a
    /// later check compares, as two exports of the same content differ byte for byte.
    pub content_sha256: Option<String>,
    /// The content digest of the archive the run imported in its place.
    pub imported_content_sha256: Option<String>,
    /// Where the archive was saved: `vault:<vault>:<job path>` or a local file path.
    pub location: Option<String>,
}

impl RollbackEntry {
    pub fn key(&self) -> ArtifactKey {
        ArtifactKey::new(self.kind, self.code.clone(), self.version.clone())
    }
}

/// An effect about to be sent (see [`Ledger::insert_intent`]).
#[derive(Clone, Debug, Serialize, PartialEq, Eq, Hash)]
pub struct Intent {
    pub stage: Stage,
    pub kind: ArtifactKind,
    pub code: String,
    pub version: String,
    pub target: String,
    pub sha256: String,
}

/// A filter for [`Ledger::errors`].
#[derive(Clone, Debug, Default)]
pub struct ErrorFilter {
    pub run: Option<String>,
    /// Only steps that started at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only steps that started before this time.
    pub until: Option<DateTime<Utc>>,
    pub stage: Option<Stage>,
    /// Only steps on this instance (or vault).
    pub target: Option<String>,
    /// Only steps of artifacts whose code contains this text.
    pub code: Option<String>,
    pub limit: Option<u64>,
}

/// A failed step with its run.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ErrorRow {
    pub run: String,
    pub recipe: String,
    #[serde(flatten)]
    pub step: Step,
}

/// Where a ledger lives.
#[derive(Clone, Debug)]
pub enum LedgerLocation {
    /// The embedded default: one SQLite file.
    Sqlite(PathBuf),
    /// A shared PostgreSQL database.
    Postgres(crate::config::PgLedger),
}

impl LedgerLocation {
    /// The location a configuration names: its `[ledger]`, else `<run dir>/ledger.db` (or
    /// `$FERRY_LEDGER`).
    pub fn for_config(c: &crate::config::Config) -> LedgerLocation {
        match (&c.ledger.postgres, &c.ledger.sqlite) {
            (Some(pg), _) => LedgerLocation::Postgres(pg.clone()),
            (None, Some(p)) => LedgerLocation::Sqlite(p.clone()),
            (None, None) => LedgerLocation::in_state_dir(&c.state_dir),
        }
    }

    /// The location for a state folder: its SQLite file (see [`ledger_path`]).
    pub fn in_state_dir(state_dir: &Path) -> LedgerLocation {
        LedgerLocation::Sqlite(ledger_path(state_dir))
    }

    /// Whether a ledger may already be there (a database server always may).
    pub fn exists(&self) -> bool {
        match self {
            LedgerLocation::Sqlite(p) => p.exists(),
            LedgerLocation::Postgres(_) => true,
        }
    }

    /// For messages: the file, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            LedgerLocation::Sqlite(p) => p.display().to_string(),
            LedgerLocation::Postgres(pg) => pg.url.clone(),
        }
    }
}

/// An open ledger: every query goes through its [`LedgerStore`].
pub struct Ledger {
    store: Mutex<Box<dyn LedgerStore>>,
    location: String,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ledger({})", self.location)
    }
}

fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Why a stored row could not be read.
#[derive(Debug)]
enum RowError {
    /// The store's own complaint (a missing column, a wrong type).
    Store(String),
    /// A value that is not one ferry writes: never replaced by a default.
    Bad {
        column: &'static str,
        value: String,
        expected: &'static str,
    },
}

impl From<String> for RowError {
    fn from(s: String) -> RowError {
        RowError::Store(s)
    }
}

fn bad(column: &'static str, value: &str, expected: &'static str) -> RowError {
    RowError::Bad {
        column,
        value: value.to_string(),
        expected,
    }
}

fn parse_ts(column: &'static str, s: &str) -> Result<DateTime<Utc>, RowError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| bad(column, s, "an RFC 3339 time"))
}

fn parse_opt_ts(
    column: &'static str,
    s: Option<String>,
) -> Result<Option<DateTime<Utc>>, RowError> {
    s.as_deref().map(|s| parse_ts(column, s)).transpose()
}

fn parse_stage(column: &'static str, s: &str) -> Result<Stage, RowError> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| bad(column, s, "a stage"))
}

fn parse_status(column: &'static str, s: &str) -> Result<StepStatus, RowError> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| bad(column, s, "a step status"))
}

fn parse_kind(column: &'static str, s: &str) -> Result<ArtifactKind, RowError> {
    ArtifactKind::parse(s).ok_or_else(|| bad(column, s, "an artifact kind"))
}

/// Parses a stage name (`export`, `import`, ...).
pub fn stage_from_str(s: &str) -> Option<Stage> {
    serde_json::from_value(serde_json::Value::String(s.to_ascii_lowercase())).ok()
}

/// The machine ferry runs on.
pub fn host_name() -> String {
    whoami::hostname().unwrap_or_else(|_| "unknown-host".to_string())
}

const STEP_COLS: [&str; 16] = [
    "seq",
    "stage",
    "kind",
    "code",
    "version",
    "target",
    "action",
    "reason",
    "status",
    "attempts",
    "error_kind",
    "error_status",
    "error_message",
    "sha256",
    "started",
    "ended",
];

const RUN_INSERT_COLS: [&str; 17] = [
    "id",
    "kind",
    "recipe",
    "recipe_sha256",
    "run_by",
    "profiles",
    "started",
    "ended",
    "dry_run",
    "sandbox",
    "ferry_version",
    "outcome",
    "message",
    "resumes",
    "dir",
    "host",
    "updated",
];

/// `INSERT INTO table (cols) VALUES (?1, ...) ON CONFLICT (keys) DO UPDATE SET` every other
/// column: the same statement in SQLite and PostgreSQL.
fn upsert(table: &str, cols: &[&str], keys: &[&str]) -> String {
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let sets: Vec<String> = cols
        .iter()
        .filter(|c| !keys.contains(c))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}",
        cols.join(", "),
        marks.join(", "),
        keys.join(", "),
        sets.join(", ")
    )
}

fn step_cols(prefix: &str) -> String {
    STEP_COLS
        .iter()
        .map(|c| format!("{prefix}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn step_from_row(r: &Row, off: usize) -> Result<Step, RowError> {
    let err_kind = r.opt_text(off + 10)?;
    Ok(Step {
        seq: r.int(off)? as u64,
        stage: parse_stage("stage", &r.text(off + 1)?)?,
        kind: parse_kind("kind", &r.text(off + 2)?)?,
        code: r.text(off + 3)?,
        version: r.text(off + 4)?,
        target: r.text(off + 5)?,
        action: r.text(off + 6)?,
        reason: r.opt_text(off + 7)?,
        status: parse_status("status", &r.text(off + 8)?)?,
        attempts: r.int(off + 9)? as u32,
        error: match err_kind {
            Some(kind) => Some(StepError {
                kind,
                status: r.opt_int(off + 11)?.map(|s| s as u16),
                message: r.opt_text(off + 12)?.unwrap_or_default(),
            }),
            None => None,
        },
        sha256: r.opt_text(off + 13)?,
        started: parse_ts("started", &r.text(off + 14)?)?,
        ended: parse_ts("ended", &r.text(off + 15)?)?,
    })
}

const RUN_COLS: &str = "id, recipe, recipe_sha256, run_by, started, ended, dry_run, sandbox, ferry_version, outcome, message, kind, profiles, resumes, dir, host, expected, updated, (SELECT COUNT(*) FROM steps s WHERE s.run = runs.id), (SELECT COUNT(*) FROM steps s WHERE s.run = runs.id AND s.status = 'failed'), (SELECT COUNT(DISTINCT s.kind || '|' || s.code || '|' || s.version) FROM steps s WHERE s.run = runs.id AND s.stage <> 'notify')";

fn run_from_row(r: &Row) -> Result<RunRow, RowError> {
    let profiles = r.text(12)?;
    Ok(RunRow {
        info: RunInfo {
            id: r.text(0)?,
            recipe: r.text(1)?,
            recipe_sha256: r.text(2)?,
            run_by: r.text(3)?,
            started: parse_ts("started", &r.text(4)?)?,
            ended: parse_opt_ts("ended", r.opt_text(5)?)?,
            dry_run: r.int(6)? != 0,
            sandbox: r.int(7)? != 0,
            ferry_version: r.text(8)?,
            outcome: r.opt_text(9)?,
            message: r.opt_text(10)?,
        },
        extra: RunExtra {
            kind: r.text(11)?,
            profiles: profiles
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            resumes: r.opt_text(13)?,
        },
        dir: r.opt_text(14)?,
        host: r.opt_text(15)?,
        expected: r.opt_int(16)?.map(|n| n as u64),
        updated: parse_opt_ts("updated", r.opt_text(17)?)?,
        steps: r.int(18)? as u64,
        failed_steps: r.int(19)? as u64,
        artifacts: r.int(20)? as u64,
    })
}

fn job_from_row(r: &Row) -> Result<JobRow, RowError> {
    Ok(JobRow {
        run: r.text(0)?,
        seq: r.int(1)? as u64,
        vault: r.text(2)?,
        name: r.text(3)?,
        path: r.text(4)?,
        date: r.text(5)?,
    })
}

fn rollback_from_row(r: &Row) -> Result<RollbackEntry, RowError> {
    Ok(RollbackEntry {
        kind: parse_kind("kind", &r.text(0)?)?,
        code: r.text(1)?,
        version: r.text(2)?,
        target: r.text(3)?,
        existed: r.int(4)? != 0,
        previous_status: r.opt_text(5)?,
        sha256: r.opt_text(6)?,
        location: r.opt_text(7)?,
        content_sha256: r.opt_text(8)?,
        imported_content_sha256: r.opt_text(9)?,
    })
}

fn intent_from_row(r: &Row) -> Result<Intent, RowError> {
    Ok(Intent {
        stage: parse_stage("stage", &r.text(0)?)?,
        kind: parse_kind("kind", &r.text(1)?)?,
        code: r.text(2)?,
        version: r.text(3)?,
        target: r.text(4)?,
        sha256: r.text(5)?,
    })
}

fn kind_or_run(extra: &RunExtra) -> &str {
    if extra.kind.is_empty() {
        "run"
    } else {
        extra.kind.as_str()
    }
}

impl Ledger {
    /// Opens (creating when needed, migrating to the current schema) the SQLite ledger at
    /// `path`, in WAL mode.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        Ledger::open_at(&LedgerLocation::Sqlite(path.to_path_buf()))
    }

    /// Opens the ledger at a location, bringing its schema up to date.
    pub fn open_at(loc: &LedgerLocation) -> Result<Ledger, LedgerError> {
        let err = |reason: String| LedgerError::Write {
            path: loc.describe(),
            reason,
        };
        let store: Box<dyn LedgerStore> = match loc {
            LedgerLocation::Sqlite(p) => Box::new(SqliteStore::open(p).map_err(err)?),
            LedgerLocation::Postgres(pg) => Box::new(super::pg::PgStore::open(pg).map_err(err)?),
        };
        Ok(Ledger::with_store(store))
    }

    /// A ledger over a store.
    pub fn with_store(store: Box<dyn LedgerStore>) -> Ledger {
        Ledger {
            location: store.location(),
            store: Mutex::new(store),
        }
    }

    /// Opens the ledger of a state folder (see [`ledger_path`]).
    pub fn open_in(state_dir: &Path) -> Result<Ledger, LedgerError> {
        Ledger::open(&ledger_path(state_dir))
    }

    /// Opens an existing ledger read-write; `None` when there is none yet.
    pub fn open_existing(state_dir: &Path) -> Result<Option<Ledger>, LedgerError> {
        Ledger::open_existing_at(&LedgerLocation::in_state_dir(state_dir))
    }

    /// Opens the ledger at a location when there is one (a database server always has one).
    pub fn open_existing_at(loc: &LedgerLocation) -> Result<Option<Ledger>, LedgerError> {
        if !loc.exists() {
            return Ok(None);
        }
        Ledger::open_at(loc).map(Some)
    }

    /// The database file, or the URL without its password.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The database file (the location, as a path).
    pub fn path(&self) -> &Path {
        Path::new(&self.location)
    }

    /// The schema version of the database.
    pub fn schema_version(&self) -> Result<i64, LedgerError> {
        let mut g = self.store.lock().unwrap_or_else(|p| p.into_inner());
        g.schema_version().map_err(|e| self.err(e))
    }

    fn err(&self, reason: String) -> LedgerError {
        LedgerError::Write {
            path: self.location.clone(),
            reason,
        }
    }

    fn exec(&self, stmts: &[Stmt]) -> Result<Vec<u64>, LedgerError> {
        let mut g = self.store.lock().unwrap_or_else(|p| p.into_inner());
        g.batch(stmts).map_err(|e| self.err(e))
    }

    fn rows<T>(
        &self,
        table: &'static str,
        sql: &str,
        params: &[Val],
        map: impl Fn(&Row) -> Result<T, RowError>,
    ) -> Result<Vec<T>, LedgerError> {
        let rows = {
            let mut g = self.store.lock().unwrap_or_else(|p| p.into_inner());
            g.query(sql, params).map_err(|e| self.err(e))?
        };
        rows.iter()
            .enumerate()
            .map(|(i, r)| {
                map(r).map_err(|e| match e {
                    RowError::Store(e) => self.err(e),
                    RowError::Bad {
                        column,
                        value,
                        expected,
                    } => LedgerError::BadRow {
                        path: self.location.clone(),
                        table,
                        row: row_name(i, r),
                        column,
                        value,
                        expected,
                    },
                })
            })
            .collect()
    }

    /// Records the start of a run.
    pub fn insert_run(
        &self,
        info: &RunInfo,
        extra: &RunExtra,
        dir: Option<&Path>,
    ) -> Result<(), LedgerError> {
        let params: Vec<Val> = vec![
            (&info.id).into(),
            kind_or_run(extra).into(),
            (&info.recipe).into(),
            (&info.recipe_sha256).into(),
            (&info.run_by).into(),
            extra.profiles.join(",").into(),
            ts(&info.started).into(),
            info.ended.as_ref().map(ts).into(),
            info.dry_run.into(),
            info.sandbox.into(),
            (&info.ferry_version).into(),
            info.outcome.as_ref().into(),
            info.message.as_ref().into(),
            extra.resumes.as_ref().into(),
            dir.map(|d| d.display().to_string()).into(),
            host_name().into(),
            ts(&Utc::now()).into(),
        ];
        self.exec(&[(upsert("runs", &RUN_INSERT_COLS, &["id"]), params)])?;
        Ok(())
    }

    /// Updates a run's kind, profiles and the run it resumes.
    pub fn update_extra(&self, run: &str, extra: &RunExtra) -> Result<(), LedgerError> {
        self.exec(&[(
            "UPDATE runs SET kind = ?2, profiles = ?3, resumes = ?4 WHERE id = ?1".into(),
            vec![
                run.into(),
                kind_or_run(extra).into(),
                extra.profiles.join(",").into(),
                extra.resumes.as_ref().into(),
            ],
        )])?;
        Ok(())
    }

    /// Records how many artifacts a run plans to move (its progress is its steps against this).
    pub fn set_expected(&self, run: &str, expected: u64) -> Result<(), LedgerError> {
        self.exec(&[(
            "UPDATE runs SET expected = ?2 WHERE id = ?1".into(),
            vec![run.into(), (expected as i64).into()],
        )])?;
        Ok(())
    }

    /// Records the end of a run.
    pub fn finish_run(&self, info: &RunInfo) -> Result<(), LedgerError> {
        self.exec(&[(
            "UPDATE runs SET ended = ?2, outcome = ?3, message = ?4, updated = ?5 WHERE id = ?1"
                .into(),
            vec![
                (&info.id).into(),
                info.ended.as_ref().map(ts).into(),
                info.outcome.as_ref().into(),
                info.message.as_ref().into(),
                ts(&Utc::now()).into(),
            ],
        )])?;
        Ok(())
    }

    /// Appends a step and beats the run's heartbeat, in one transaction.
    pub fn insert_step(&mut self, run: &str, s: &Step) -> Result<(), LedgerError> {
        let mut cols = vec!["run"];
        cols.extend(STEP_COLS);
        let params: Vec<Val> = vec![
            run.into(),
            (s.seq as i64).into(),
            s.stage.as_str().into(),
            s.kind.as_str().into(),
            (&s.code).into(),
            (&s.version).into(),
            (&s.target).into(),
            (&s.action).into(),
            s.reason.as_ref().into(),
            s.status.as_str().into(),
            (s.attempts as i64).into(),
            s.error.as_ref().map(|e| e.kind.clone()).into(),
            s.error
                .as_ref()
                .and_then(|e| e.status)
                .map(|c| c as i64)
                .into(),
            s.error.as_ref().map(|e| e.message.clone()).into(),
            s.sha256.as_ref().into(),
            ts(&s.started).into(),
            ts(&s.ended).into(),
        ];
        self.exec(&[
            (upsert("steps", &cols, &["run", "seq"]), params),
            (
                "UPDATE runs SET updated = ?2 WHERE id = ?1".into(),
                vec![run.into(), ts(&Utc::now()).into()],
            ),
        ])?;
        Ok(())
    }

    /// Records that an effect is about to be sent (an import): if the run dies before its step
    /// is written, a resumed run knows a request may still be landing.
    pub fn insert_intent(&self, run: &str, i: &Intent) -> Result<(), LedgerError> {
        self.exec(&[(
            "INSERT INTO intents (run, stage, kind, code, version, target, sha256, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING".into(),
            vec![
                run.into(),
                i.stage.as_str().into(),
                i.kind.as_str().into(),
                (&i.code).into(),
                (&i.version).into(),
                (&i.target).into(),
                (&i.sha256).into(),
                ts(&Utc::now()).into(),
            ],
        )])?;
        Ok(())
    }

    /// The intents of a run.
    pub fn intents(&self, run: &str) -> Result<Vec<Intent>, LedgerError> {
        self.rows(
            "intents",
            "SELECT stage, kind, code, version, target, sha256 FROM intents WHERE run = ?1",
            &[run.into()],
            intent_from_row,
        )
    }

    /// Records a vault job a run opened for writing.
    pub fn insert_job(&self, j: &JobRow) -> Result<(), LedgerError> {
        let cols = ["run", "seq", "vault", "name", "path", "date"];
        self.exec(&[(
            upsert("jobs", &cols, &["run", "seq"]),
            vec![
                (&j.run).into(),
                (j.seq as i64).into(),
                (&j.vault).into(),
                (&j.name).into(),
                (&j.path).into(),
                (&j.date).into(),
            ],
        )])?;
        Ok(())
    }

    /// The vault jobs a run opened, in order.
    pub fn jobs(&self, run: &str) -> Result<Vec<JobRow>, LedgerError> {
        self.rows(
            "jobs",
            "SELECT run, seq, vault, name, path, date FROM jobs WHERE run = ?1 ORDER BY seq",
            &[run.into()],
            job_from_row,
        )
    }

    /// The vault jobs of every run, newest first (at most `limit`).
    pub fn all_jobs(&self, limit: u64) -> Result<Vec<JobRow>, LedgerError> {
        self.rows(
            "jobs",
            "SELECT run, seq, vault, name, path, date FROM jobs ORDER BY date DESC, run DESC, seq DESC LIMIT ?1",
            &[(limit as i64).into()],
            job_from_row,
        )
    }

    /// Records what a target held before the run changed it. The first record of an artifact in
    /// a run wins (a resumed run keeps what the first attempt saw).
    pub fn insert_rollback(&self, run: &str, e: &RollbackEntry) -> Result<(), LedgerError> {
        self.exec(&[(
            "INSERT INTO rollback (run, seq, kind, code, version, target, existed, previous_status, sha256, location, content_sha256, imported_content_sha256)
             VALUES (?1, (SELECT COUNT(*) + 1 FROM rollback WHERE run = ?1), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT DO NOTHING".into(),
            vec![
                run.into(),
                e.kind.as_str().into(),
                (&e.code).into(),
                (&e.version).into(),
                (&e.target).into(),
                e.existed.into(),
                e.previous_status.as_ref().into(),
                e.sha256.as_ref().into(),
                e.location.as_ref().into(),
                e.content_sha256.as_ref().into(),
                e.imported_content_sha256.as_ref().into(),
            ],
        )])?;
        Ok(())
    }

    /// Removes a run's rollback record of one artifact on one target (see
    /// [`super::RunRecord::forget_rollback`]).
    pub fn delete_rollback(
        &self,
        run: &str,
        key: &ArtifactKey,
        target: &str,
    ) -> Result<(), LedgerError> {
        self.exec(&[(
            "DELETE FROM rollback WHERE run = ?1 AND kind = ?2 AND code = ?3 AND version = ?4 AND target = ?5"
                .into(),
            vec![
                run.into(),
                key.kind.as_str().into(),
                (&key.code).into(),
                (&key.version).into(),
                target.into(),
            ],
        )])?;
        Ok(())
    }

    /// The real runs (not plans, dry runs or rollbacks) that started after `after` and recorded
    /// a change of `key` on `target` for rollback, newest first: `(run id, started)`.
    pub fn later_changes(
        &self,
        key: &ArtifactKey,
        target: &str,
        after: &DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>)>, LedgerError> {
        self.rows(
            "rollback",
            "SELECT DISTINCT rollback.run, runs.started FROM rollback JOIN runs ON runs.id = rollback.run
             WHERE rollback.kind = ?1 AND rollback.code = ?2 AND rollback.version = ?3 AND rollback.target = ?4
               AND runs.kind = 'run' AND runs.dry_run = 0 AND runs.started > ?5
             ORDER BY runs.started DESC",
            &[
                key.kind.as_str().into(),
                (&key.code).into(),
                (&key.version).into(),
                target.into(),
                ts(after).into(),
            ],
            |r| Ok((r.text(0)?, parse_ts("started", &r.text(1)?)?)),
        )
    }

    /// What a run saved for rollback, in the order it was saved.
    pub fn rollback_entries(&self, run: &str) -> Result<Vec<RollbackEntry>, LedgerError> {
        self.rows(
            "rollback",
            "SELECT kind, code, version, target, existed, previous_status, sha256, location, content_sha256, imported_content_sha256 FROM rollback WHERE run = ?1 ORDER BY seq",
            &[run.into()],
            rollback_from_row,
        )
    }

    /// The most recent runs first (at most `limit`).
    pub fn runs(&self, limit: u64) -> Result<Vec<RunRow>, LedgerError> {
        self.rows(
            "runs",
            &format!("SELECT {RUN_COLS} FROM runs ORDER BY started DESC, id DESC LIMIT ?1"),
            &[(limit as i64).into()],
            run_from_row,
        )
    }

    /// One run.
    pub fn run(&self, id: &str) -> Result<Option<RunRow>, LedgerError> {
        let mut rows = self.rows(
            "runs",
            &format!("SELECT {RUN_COLS} FROM runs WHERE id = ?1"),
            &[id.into()],
            run_from_row,
        )?;
        Ok(rows.pop())
    }

    /// The latest run (not a plan) of a recipe (any recipe when `None`), other than `except`.
    pub fn last_run(
        &self,
        recipe: Option<&str>,
        except: Option<&str>,
    ) -> Result<Option<RunRow>, LedgerError> {
        let mut rows = self.rows(
            "runs",
            &format!(
                "SELECT {RUN_COLS} FROM runs WHERE kind = 'run' AND dry_run = 0
                 AND (CAST(?1 AS TEXT) IS NULL OR recipe = ?1) AND (CAST(?2 AS TEXT) IS NULL OR id <> ?2)
                 ORDER BY started DESC, id DESC LIMIT 1"
            ),
            &[recipe.into(), except.into()],
            run_from_row,
        )?;
        Ok(rows.pop())
    }

    /// The steps of a run, in order.
    pub fn steps(&self, run: &str) -> Result<Vec<Step>, LedgerError> {
        self.rows(
            "steps",
            &format!(
                "SELECT {} FROM steps WHERE run = ?1 ORDER BY seq",
                step_cols("")
            ),
            &[run.into()],
            |r| step_from_row(r, 0),
        )
    }

    /// At most `limit` steps of a run after the step `after`, in order (a run's steps read a
    /// page at a time).
    pub fn steps_page(&self, run: &str, after: u64, limit: u64) -> Result<Vec<Step>, LedgerError> {
        self.rows(
            "steps",
            &format!(
                "SELECT {} FROM steps WHERE run = ?1 AND seq > ?2 ORDER BY seq LIMIT {limit}",
                step_cols("")
            ),
            &[run.into(), (after as i64).into()],
            |r| step_from_row(r, 0),
        )
    }

    /// Failed steps, newest first.
    pub fn errors(&self, f: &ErrorFilter) -> Result<Vec<ErrorRow>, LedgerError> {
        let sql = format!(
            "SELECT steps.run, runs.recipe, {} FROM steps JOIN runs ON runs.id = steps.run
             WHERE steps.status = 'failed'
               AND (CAST(?1 AS TEXT) IS NULL OR steps.run = ?1)
               AND (CAST(?2 AS TEXT) IS NULL OR steps.started >= ?2)
               AND (CAST(?3 AS TEXT) IS NULL OR steps.started < ?3)
               AND (CAST(?4 AS TEXT) IS NULL OR steps.stage = ?4)
               AND (CAST(?5 AS TEXT) IS NULL OR steps.target = ?5)
               AND (CAST(?6 AS TEXT) IS NULL OR LOWER(steps.code) LIKE LOWER(?6) ESCAPE '\\')
             ORDER BY steps.started DESC, steps.seq DESC LIMIT ?7",
            step_cols("steps.")
        );
        let like = f.code.as_ref().map(|c| format!("%{}%", escape_like(c)));
        self.rows(
            "steps",
            &sql,
            &[
                f.run.as_ref().into(),
                f.since.as_ref().map(ts).into(),
                f.until.as_ref().map(ts).into(),
                f.stage.map(|s| s.as_str()).into(),
                f.target.as_ref().into(),
                like.into(),
                (f.limit
                    .map(|l| l.min(i64::MAX as u64))
                    .unwrap_or(i64::MAX as u64) as i64)
                    .into(),
            ],
            |r| {
                Ok(ErrorRow {
                    run: r.text(0)?,
                    recipe: r.text(1)?,
                    step: step_from_row(r, 2)?,
                })
            },
        )
    }
}

/// Names a row of a query for messages: its place and its first column (a run id or a seq).
fn row_name(i: usize, r: &Row) -> String {
    let first = match r.0.first() {
        Some(Val::Text(s)) => format!(" ({s})"),
        Some(Val::Int(n)) => format!(" ({n})"),
        _ => String::new(),
    };
    format!("{}{first}", i + 1)
}

/// Escapes `\`, `%` and `_` for a `LIKE ... ESCAPE '\'` pattern.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger_with_one_step(dir: &Path) -> Ledger {
        let mut db = Ledger::open(&dir.join("ledger.db")).unwrap();
        let now = Utc::now();
        let info = RunInfo {
            recipe_sha256: "x".into(),
            started: now,
            ..RunInfo::started_now("r1", "m.rhai", "me")
        };
        db.insert_run(&info, &RunExtra::default(), None).unwrap();
        let step = Step {
            seq: 7,
            stage: Stage::Import,
            kind: ArtifactKind::Lookup,
            code: "L".into(),
            version: "01.00.0000".into(),
            target: "prod".into(),
            action: "import new".into(),
            reason: None,
            status: StepStatus::Ok,
            attempts: 1,
            error: None,
            sha256: None,
            started: now,
            ended: now,
        };
        db.insert_step("r1", &step).unwrap();
        db
    }

    fn poke(dir: &Path, sql: &str) {
        // A damaged or foreign-written file: the CHECK constraints do not hold there either.
        let c = rusqlite::Connection::open(dir.join("ledger.db")).unwrap();
        c.execute_batch("PRAGMA ignore_check_constraints = ON")
            .unwrap();
        c.execute(sql, []).unwrap();
    }

    /// Issue 11: a value ferry never writes is an error naming table, row and column, not a
    /// silent `export`, `failed`, `integration` or 1970.
    #[test]
    fn unknown_stored_values_are_typed_errors_naming_row_and_column() {
        let cases = [
            ("UPDATE steps SET stage = 'teleport'", "stage", "teleport"),
            ("UPDATE steps SET status = 'maybe'", "status", "maybe"),
            ("UPDATE steps SET kind = 'spaceship'", "kind", "spaceship"),
            (
                "UPDATE steps SET started = 'yesterday'",
                "started",
                "yesterday",
            ),
        ];
        for (sql, column, value) in cases {
            let dir = tempfile::tempdir().unwrap();
            let db = ledger_with_one_step(dir.path());
            assert_eq!(db.steps("r1").unwrap()[0].stage, Stage::Import);
            poke(dir.path(), sql);
            match db.steps("r1") {
                Err(LedgerError::BadRow {
                    table,
                    row,
                    column: c,
                    value: v,
                    ..
                }) => {
                    assert_eq!((table, c, v.as_str()), ("steps", column, value));
                    assert_eq!(row, "1 (7)", "the row is named by place and seq");
                }
                other => panic!("{sql}: expected BadRow, got {other:?}"),
            }
            let msg = db.steps("r1").unwrap_err().to_string();
            assert!(msg.contains(&format!("column `{column}`")), "{msg}");
        }
        let dir = tempfile::tempdir().unwrap();
        let db = ledger_with_one_step(dir.path());
        poke(dir.path(), "UPDATE runs SET ended = 'soon'");
        let msg = db.run("r1").unwrap_err().to_string();
        assert!(
            msg.contains("table `runs`, row 1 (r1), column `ended`"),
            "{msg}"
        );
    }
}
