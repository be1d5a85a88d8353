//! The ledger database: an embedded SQLite file (`<state dir>/ledger.db`, or `$FERRY_LEDGER`)
//! holding every run and every step of every run. It is the central error log that `ferry runs`,
//! `ferry errors` and recipes read, and what `--resume` and `ferry rollback` work from.
//!
//! Writes are transactional (one transaction per step) and the database runs in WAL mode, so a
//! killed process loses at most the step it was writing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{LedgerError, RunInfo, Stage, Step, StepError, StepStatus};
use crate::artifact::{ArtifactKey, ArtifactKind};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL DEFAULT 'run',
    recipe TEXT NOT NULL,
    recipe_sha256 TEXT NOT NULL,
    run_by TEXT NOT NULL,
    profiles TEXT NOT NULL DEFAULT '',
    started TEXT NOT NULL,
    ended TEXT,
    dry_run INTEGER NOT NULL,
    sandbox INTEGER NOT NULL,
    ferry_version TEXT NOT NULL,
    outcome TEXT,
    message TEXT,
    resumes TEXT,
    dir TEXT
);
CREATE TABLE IF NOT EXISTS steps (
    run TEXT NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    stage TEXT NOT NULL,
    kind TEXT NOT NULL,
    code TEXT NOT NULL,
    version TEXT NOT NULL,
    target TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error_kind TEXT,
    error_status INTEGER,
    error_message TEXT,
    sha256 TEXT,
    started TEXT NOT NULL,
    ended TEXT NOT NULL,
    PRIMARY KEY (run, seq)
);
CREATE INDEX IF NOT EXISTS steps_status ON steps(status, stage);
CREATE TABLE IF NOT EXISTS jobs (
    run TEXT NOT NULL,
    seq INTEGER NOT NULL,
    vault TEXT NOT NULL,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    date TEXT NOT NULL,
    PRIMARY KEY (run, seq)
);
CREATE TABLE IF NOT EXISTS intents (
    run TEXT NOT NULL,
    stage TEXT NOT NULL,
    kind TEXT NOT NULL,
    code TEXT NOT NULL,
    version TEXT NOT NULL,
    target TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (run, stage, kind, code, version, target, sha256)
);
CREATE TABLE IF NOT EXISTS rollback (
    run TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    code TEXT NOT NULL,
    version TEXT NOT NULL,
    target TEXT NOT NULL,
    existed INTEGER NOT NULL,
    previous_status TEXT,
    sha256 TEXT,
    location TEXT,
    PRIMARY KEY (run, kind, code, version, target)
);
";

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
    pub steps: u64,
    pub failed_steps: u64,
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
    pub stage: Option<Stage>,
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

fn db_err(path: &Path, e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Write {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// An open ledger database.
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ledger({})", self.path.display())
    }
}

fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn parse_ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn parse_stage(s: &str) -> Stage {
    serde_json::from_value(serde_json::Value::String(s.to_string())).unwrap_or(Stage::Export)
}

fn parse_status(s: &str) -> StepStatus {
    serde_json::from_value(serde_json::Value::String(s.to_string())).unwrap_or(StepStatus::Failed)
}

/// Parses a stage name (`export`, `import`, ...).
pub fn stage_from_str(s: &str) -> Option<Stage> {
    serde_json::from_value(serde_json::Value::String(s.to_ascii_lowercase())).ok()
}

const STEP_COLS: &str = "seq, stage, kind, code, version, target, action, reason, status, attempts, error_kind, error_status, error_message, sha256, started, ended";

fn step_from_row(r: &rusqlite::Row<'_>, off: usize) -> rusqlite::Result<Step> {
    let kind: String = r.get(off + 2)?;
    let err_kind: Option<String> = r.get(off + 10)?;
    let err_status: Option<i64> = r.get(off + 11)?;
    let err_msg: Option<String> = r.get(off + 12)?;
    Ok(Step {
        seq: r.get::<_, i64>(off)? as u64,
        stage: parse_stage(&r.get::<_, String>(off + 1)?),
        kind: ArtifactKind::parse(&kind).unwrap_or(ArtifactKind::Integration),
        code: r.get(off + 3)?,
        version: r.get(off + 4)?,
        target: r.get(off + 5)?,
        action: r.get(off + 6)?,
        reason: r.get(off + 7)?,
        status: parse_status(&r.get::<_, String>(off + 8)?),
        attempts: r.get::<_, i64>(off + 9)? as u32,
        error: err_kind.map(|k| StepError {
            kind: k,
            status: err_status.map(|s| s as u16),
            message: err_msg.unwrap_or_default(),
        }),
        sha256: r.get(off + 13)?,
        started: parse_ts(&r.get::<_, String>(off + 14)?),
        ended: parse_ts(&r.get::<_, String>(off + 15)?),
    })
}

const RUN_COLS: &str = "id, recipe, recipe_sha256, run_by, started, ended, dry_run, sandbox, ferry_version, outcome, message, kind, profiles, resumes, dir, (SELECT COUNT(*) FROM steps s WHERE s.run = runs.id), (SELECT COUNT(*) FROM steps s WHERE s.run = runs.id AND s.status = 'failed')";

fn run_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    let ended: Option<String> = r.get(5)?;
    let profiles: String = r.get(12)?;
    Ok(RunRow {
        info: RunInfo {
            id: r.get(0)?,
            recipe: r.get(1)?,
            recipe_sha256: r.get(2)?,
            run_by: r.get(3)?,
            started: parse_ts(&r.get::<_, String>(4)?),
            ended: ended.as_deref().map(parse_ts),
            dry_run: r.get::<_, i64>(6)? != 0,
            sandbox: r.get::<_, i64>(7)? != 0,
            ferry_version: r.get(8)?,
            outcome: r.get(9)?,
            message: r.get(10)?,
        },
        extra: RunExtra {
            kind: r.get(11)?,
            profiles: profiles
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            resumes: r.get(13)?,
        },
        dir: r.get(14)?,
        steps: r.get::<_, i64>(15)? as u64,
        failed_steps: r.get::<_, i64>(16)? as u64,
    })
}

impl Ledger {
    /// Opens (creating when needed) the ledger at `path`, in WAL mode.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| db_err(path, e))?;
        }
        let conn = Connection::open(path).map_err(|e| db_err(path, e))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|e| db_err(path, e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| db_err(path, e))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| db_err(path, e))?;
        conn.execute_batch(SCHEMA).map_err(|e| db_err(path, e))?;
        Ok(Ledger {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Opens the ledger of a state folder (see [`ledger_path`]).
    pub fn open_in(state_dir: &Path) -> Result<Ledger, LedgerError> {
        Ledger::open(&ledger_path(state_dir))
    }

    /// Opens an existing ledger read-write; `None` when there is none yet.
    pub fn open_existing(state_dir: &Path) -> Result<Option<Ledger>, LedgerError> {
        let p = ledger_path(state_dir);
        if !p.exists() {
            return Ok(None);
        }
        Ledger::open(&p).map(Some)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: impl std::fmt::Display) -> LedgerError {
        db_err(&self.path, e)
    }

    /// Records the start of a run.
    pub fn insert_run(
        &self,
        info: &RunInfo,
        extra: &RunExtra,
        dir: Option<&Path>,
    ) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO runs (id, kind, recipe, recipe_sha256, run_by, profiles, started, ended, dry_run, sandbox, ferry_version, outcome, message, resumes, dir)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                params![
                    info.id,
                    if extra.kind.is_empty() { "run" } else { extra.kind.as_str() },
                    info.recipe,
                    info.recipe_sha256,
                    info.run_by,
                    extra.profiles.join(","),
                    ts(&info.started),
                    info.ended.as_ref().map(ts),
                    info.dry_run as i64,
                    info.sandbox as i64,
                    info.ferry_version,
                    info.outcome,
                    info.message,
                    extra.resumes,
                    dir.map(|d| d.display().to_string()),
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Updates a run's kind, profiles and the run it resumes.
    pub fn update_extra(&self, run: &str, extra: &RunExtra) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "UPDATE runs SET kind = ?2, profiles = ?3, resumes = ?4 WHERE id = ?1",
                params![
                    run,
                    if extra.kind.is_empty() {
                        "run"
                    } else {
                        extra.kind.as_str()
                    },
                    extra.profiles.join(","),
                    extra.resumes
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records the end of a run.
    pub fn finish_run(&self, info: &RunInfo) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "UPDATE runs SET ended = ?2, outcome = ?3, message = ?4 WHERE id = ?1",
                params![
                    info.id,
                    info.ended.as_ref().map(ts),
                    info.outcome,
                    info.message
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Appends a step, in its own transaction.
    pub fn insert_step(&mut self, run: &str, s: &Step) -> Result<(), LedgerError> {
        let tx = self.conn.transaction().map_err(|e| db_err(&self.path, e))?;
        tx.execute(
            &format!("INSERT OR REPLACE INTO steps (run, {STEP_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"),
            params![
                run,
                s.seq as i64,
                s.stage.as_str(),
                s.kind.as_str(),
                s.code,
                s.version,
                s.target,
                s.action,
                s.reason,
                s.status.as_str(),
                s.attempts as i64,
                s.error.as_ref().map(|e| e.kind.clone()),
                s.error.as_ref().and_then(|e| e.status).map(|c| c as i64),
                s.error.as_ref().map(|e| e.message.clone()),
                s.sha256,
                ts(&s.started),
                ts(&s.ended),
            ],
        )
        .map_err(|e| db_err(&self.path, e))?;
        tx.commit().map_err(|e| db_err(&self.path, e))?;
        Ok(())
    }

    /// Records that an effect is about to be sent (an import): if the run dies before its step
    /// is written, a resumed run knows a request may still be landing.
    pub fn insert_intent(&self, run: &str, i: &Intent) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO intents (run, stage, kind, code, version, target, sha256, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    run,
                    i.stage.as_str(),
                    i.kind.as_str(),
                    i.code,
                    i.version,
                    i.target,
                    i.sha256,
                    ts(&Utc::now())
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The intents of a run.
    pub fn intents(&self, run: &str) -> Result<Vec<Intent>, LedgerError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT stage, kind, code, version, target, sha256 FROM intents WHERE run = ?1",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![run], |r| {
                let kind: String = r.get(1)?;
                Ok(Intent {
                    stage: parse_stage(&r.get::<_, String>(0)?),
                    kind: ArtifactKind::parse(&kind).unwrap_or(ArtifactKind::Integration),
                    code: r.get(2)?,
                    version: r.get(3)?,
                    target: r.get(4)?,
                    sha256: r.get(5)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Records a vault job a run opened for writing.
    pub fn insert_job(&self, j: &JobRow) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO jobs (run, seq, vault, name, path, date) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![j.run, j.seq as i64, j.vault, j.name, j.path, j.date],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The vault jobs a run opened, in order.
    pub fn jobs(&self, run: &str) -> Result<Vec<JobRow>, LedgerError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT run, seq, vault, name, path, date FROM jobs WHERE run = ?1 ORDER BY seq",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![run], |r| {
                Ok(JobRow {
                    run: r.get(0)?,
                    seq: r.get::<_, i64>(1)? as u64,
                    vault: r.get(2)?,
                    name: r.get(3)?,
                    path: r.get(4)?,
                    date: r.get(5)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Records what a target held before the run changed it. The first record of an artifact in
    /// a run wins (a resumed run keeps what the first attempt saw).
    pub fn insert_rollback(&self, run: &str, e: &RollbackEntry) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO rollback (run, seq, kind, code, version, target, existed, previous_status, sha256, location)
                 VALUES (?1, (SELECT COUNT(*) + 1 FROM rollback WHERE run = ?1), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    run,
                    e.kind.as_str(),
                    e.code,
                    e.version,
                    e.target,
                    e.existed as i64,
                    e.previous_status,
                    e.sha256,
                    e.location
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// What a run saved for rollback, in the order it was saved.
    pub fn rollback_entries(&self, run: &str) -> Result<Vec<RollbackEntry>, LedgerError> {
        let mut st = self
            .conn
            .prepare("SELECT kind, code, version, target, existed, previous_status, sha256, location FROM rollback WHERE run = ?1 ORDER BY seq")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![run], |r| {
                let kind: String = r.get(0)?;
                Ok(RollbackEntry {
                    kind: ArtifactKind::parse(&kind).unwrap_or(ArtifactKind::Integration),
                    code: r.get(1)?,
                    version: r.get(2)?,
                    target: r.get(3)?,
                    existed: r.get::<_, i64>(4)? != 0,
                    previous_status: r.get(5)?,
                    sha256: r.get(6)?,
                    location: r.get(7)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// The most recent runs first (at most `limit`).
    pub fn runs(&self, limit: u64) -> Result<Vec<RunRow>, LedgerError> {
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {RUN_COLS} FROM runs ORDER BY started DESC, id DESC LIMIT ?1"
            ))
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![limit as i64], run_from_row)
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// One run.
    pub fn run(&self, id: &str) -> Result<Option<RunRow>, LedgerError> {
        self.conn
            .query_row(
                &format!("SELECT {RUN_COLS} FROM runs WHERE id = ?1"),
                params![id],
                run_from_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The latest run (not a plan) of a recipe (any recipe when `None`), other than `except`.
    pub fn last_run(
        &self,
        recipe: Option<&str>,
        except: Option<&str>,
    ) -> Result<Option<RunRow>, LedgerError> {
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {RUN_COLS} FROM runs WHERE kind = 'run' AND dry_run = 0 AND (?1 IS NULL OR recipe = ?1) AND (?2 IS NULL OR id != ?2) ORDER BY started DESC, id DESC LIMIT 1"
            ))
            .map_err(|e| self.err(e))?;
        st.query_row(params![recipe, except], run_from_row)
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The steps of a run, in order.
    pub fn steps(&self, run: &str) -> Result<Vec<Step>, LedgerError> {
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {STEP_COLS} FROM steps WHERE run = ?1 ORDER BY seq"
            ))
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![run], |r| step_from_row(r, 0))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Failed steps, newest first.
    pub fn errors(&self, f: &ErrorFilter) -> Result<Vec<ErrorRow>, LedgerError> {
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT steps.run, runs.recipe, {} FROM steps JOIN runs ON runs.id = steps.run
                 WHERE steps.status = 'failed' AND (?1 IS NULL OR steps.run = ?1)
                   AND (?2 IS NULL OR steps.started >= ?2) AND (?3 IS NULL OR steps.stage = ?3)
                 ORDER BY steps.started DESC, steps.seq DESC LIMIT ?4",
                STEP_COLS
                    .split(", ")
                    .map(|c| format!("steps.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(
                params![
                    f.run,
                    f.since.as_ref().map(ts),
                    f.stage.map(|s| s.as_str()),
                    f.limit.map(|l| l as i64).unwrap_or(-1)
                ],
                |r| {
                    Ok(ErrorRow {
                        run: r.get(0)?,
                        recipe: r.get(1)?,
                        step: step_from_row(r, 2)?,
                    })
                },
            )
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}
