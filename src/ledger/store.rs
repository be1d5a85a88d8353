//! Where the ledger's rows live: the [`LedgerStore`] trait with its two implementations, the
//! embedded SQLite file ([`SqliteStore`]) and a shared PostgreSQL database
//! ([`super::pg::PgStore`]), and the numbered schema [`MIGRATIONS`] both apply.
//!
//! The ledger's queries are written once (in [`super::db`]) in the SQL both databases speak:
//! `?N` placeholders (rewritten to `$N` for PostgreSQL), `INSERT ... ON CONFLICT`, and only two
//! column types, text and 64-bit integers, so a row reads back the same from either store.
//!
//! The schema version is `PRAGMA user_version` in SQLite and the `schema_version` table in
//! PostgreSQL. Each migration runs once, in a transaction, under a lock (`BEGIN IMMEDIATE`, an
//! advisory lock), so two runners opening a new ledger at once migrate it once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

/// A value in or out of the ledger: the only types its columns have.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Null,
    Int(i64),
    Text(String),
}

impl From<&str> for Val {
    fn from(s: &str) -> Val {
        Val::Text(s.to_string())
    }
}
impl From<String> for Val {
    fn from(s: String) -> Val {
        Val::Text(s)
    }
}
impl From<&String> for Val {
    fn from(s: &String) -> Val {
        Val::Text(s.clone())
    }
}
impl From<i64> for Val {
    fn from(n: i64) -> Val {
        Val::Int(n)
    }
}
impl From<bool> for Val {
    fn from(b: bool) -> Val {
        Val::Int(b as i64)
    }
}
impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(o: Option<T>) -> Val {
        o.map(Into::into).unwrap_or(Val::Null)
    }
}

/// One result row.
#[derive(Clone, Debug, Default)]
pub struct Row(pub Vec<Val>);

impl Row {
    fn at(&self, i: usize) -> Result<&Val, String> {
        self.0.get(i).ok_or_else(|| format!("no column {i}"))
    }
    pub fn opt_text(&self, i: usize) -> Result<Option<String>, String> {
        match self.at(i)? {
            Val::Null => Ok(None),
            Val::Text(s) => Ok(Some(s.clone())),
            Val::Int(n) => Err(format!("column {i}: integer {n} where text was expected")),
        }
    }
    pub fn text(&self, i: usize) -> Result<String, String> {
        self.opt_text(i)?
            .ok_or_else(|| format!("column {i}: null where text was expected"))
    }
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, String> {
        match self.at(i)? {
            Val::Null => Ok(None),
            Val::Int(n) => Ok(Some(*n)),
            Val::Text(s) => Err(format!(
                "column {i}: text {s:?} where an integer was expected"
            )),
        }
    }
    pub fn int(&self, i: usize) -> Result<i64, String> {
        self.opt_int(i)?
            .ok_or_else(|| format!("column {i}: null where an integer was expected"))
    }
}

/// A statement with its parameters (see [`LedgerStore::batch`]).
pub type Stmt = (String, Vec<Val>);

/// The storage under a [`super::Ledger`].
pub trait LedgerStore: Send {
    /// Runs statements in one transaction; returns the rows changed by each.
    fn batch(&mut self, stmts: &[Stmt]) -> Result<Vec<u64>, String>;
    /// Runs a query.
    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, String>;
    /// The schema version the database is at.
    fn schema_version(&mut self) -> Result<i64, String>;
    /// Where the rows are, for messages (a file path, or the URL without its password).
    fn location(&self) -> String;
}

/// Which SQL dialect a migration is written out for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// One numbered schema change. Its SQL names the integer type `{int}` and ends each table with
/// `{strict}`: `INTEGER ... STRICT` in SQLite (typed columns), `BIGINT` in PostgreSQL.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    sql: &'static str,
}

impl Migration {
    /// The migration's statements for a dialect.
    pub fn statements(&self, d: Dialect) -> Vec<String> {
        let (int, strict) = match d {
            Dialect::Sqlite => ("INTEGER", " STRICT"),
            Dialect::Postgres => ("BIGINT", ""),
        };
        self.sql
            .replace("{int}", int)
            .replace("{strict}", strict)
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

const V1: &str = "
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL DEFAULT 'run',
    recipe TEXT NOT NULL,
    recipe_sha256 TEXT NOT NULL,
    run_by TEXT NOT NULL,
    profiles TEXT NOT NULL DEFAULT '',
    started TEXT NOT NULL,
    ended TEXT,
    dry_run {int} NOT NULL CHECK (dry_run IN (0, 1)),
    sandbox {int} NOT NULL CHECK (sandbox IN (0, 1)),
    ferry_version TEXT NOT NULL,
    outcome TEXT,
    message TEXT,
    resumes TEXT,
    dir TEXT
){strict};
CREATE TABLE steps (
    run TEXT NOT NULL REFERENCES runs(id),
    seq {int} NOT NULL CHECK (seq > 0),
    stage TEXT NOT NULL,
    kind TEXT NOT NULL,
    code TEXT NOT NULL,
    version TEXT NOT NULL,
    target TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'skipped', 'planned')),
    attempts {int} NOT NULL CHECK (attempts >= 0),
    error_kind TEXT,
    error_status {int},
    error_message TEXT,
    sha256 TEXT,
    started TEXT NOT NULL,
    ended TEXT NOT NULL,
    PRIMARY KEY (run, seq)
){strict};
CREATE INDEX steps_status ON steps(status, stage);
CREATE TABLE jobs (
    run TEXT NOT NULL,
    seq {int} NOT NULL,
    vault TEXT NOT NULL,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    date TEXT NOT NULL,
    PRIMARY KEY (run, seq)
){strict};
CREATE TABLE intents (
    run TEXT NOT NULL,
    stage TEXT NOT NULL,
    kind TEXT NOT NULL,
    code TEXT NOT NULL,
    version TEXT NOT NULL,
    target TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (run, stage, kind, code, version, target, sha256)
){strict};
CREATE TABLE rollback (
    run TEXT NOT NULL,
    seq {int} NOT NULL,
    kind TEXT NOT NULL,
    code TEXT NOT NULL,
    version TEXT NOT NULL,
    target TEXT NOT NULL,
    existed {int} NOT NULL CHECK (existed IN (0, 1)),
    previous_status TEXT,
    sha256 TEXT,
    location TEXT,
    PRIMARY KEY (run, kind, code, version, target)
){strict}
";

const V2: &str = "
ALTER TABLE runs ADD COLUMN host TEXT;
ALTER TABLE runs ADD COLUMN expected {int} CHECK (expected >= 0);
ALTER TABLE runs ADD COLUMN updated TEXT;
CREATE INDEX runs_started ON runs(started);
CREATE INDEX steps_started ON steps(started)
";

const V3: &str = "
ALTER TABLE rollback ADD COLUMN content_sha256 TEXT;
ALTER TABLE rollback ADD COLUMN imported_content_sha256 TEXT
";

/// The ledger's schema, in order. Never edit a released migration: add the next one.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "runs, steps, jobs, intents, rollback",
        sql: V1,
    },
    Migration {
        version: 2,
        name: "runs.host, runs.expected (planned artifacts), runs.updated (heartbeat)",
        sql: V2,
    },
    Migration {
        version: 3,
        name: "rollback.content_sha256, rollback.imported_content_sha256 (content digests)",
        sql: V3,
    },
];

/// The schema version this ferry writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}

/// The tables of the ledger, in the order their rows can be copied.
const TABLES: [&str; 5] = ["runs", "steps", "jobs", "intents", "rollback"];

/// The embedded ledger: one SQLite file in WAL mode.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating when needed) the file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore, String> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        let conn = Connection::open(path).map_err(|e| e.to_string())?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(|e| e.to_string())?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Why a file lock: switching a database to WAL takes an exclusive lock, and SQLite
            // answers SQLITE_BUSY at once (its busy timeout does not apply) when another process
            // opens the new file at the same moment: two runs started together on a fresh state
            // folder lost one of them to "database is locked". The lock file lives beside the
            // database and is held only for the switch.
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path.with_extension("db-open-lock"))
                .map_err(|e| e.to_string())?;
            lock.lock().map_err(|e| e.to_string())?;
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(|e| e.to_string())?;
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| e.to_string())?;
        let mut s = SqliteStore {
            conn,
            path: path.to_path_buf(),
        };
        s.migrate()?;
        Ok(s)
    }

    fn user_version(&self) -> Result<i64, String> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| e.to_string())
    }

    /// Applies the missing migrations, each under the write lock (`BEGIN IMMEDIATE`).
    fn migrate(&mut self) -> Result<(), String> {
        let latest = latest_version();
        if self.user_version()? == latest {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| e.to_string())?;
        let current: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| e.to_string())?;
        if current > latest {
            return Err(newer_schema(current, latest));
        }
        let legacy = current == 0 && table_exists(&tx, "runs")?;
        if legacy {
            for t in TABLES {
                if table_exists(&tx, t)? {
                    tx.execute_batch(&format!("ALTER TABLE {t} RENAME TO legacy_{t}"))
                        .map_err(|e| e.to_string())?;
                }
            }
            tx.execute_batch("DROP INDEX IF EXISTS steps_status")
                .map_err(|e| e.to_string())?;
        }
        for m in MIGRATIONS.iter().filter(|m| m.version > current) {
            for s in m.statements(Dialect::Sqlite) {
                tx.execute_batch(&s)
                    .map_err(|e| format!("schema migration {} ({}): {e}", m.version, m.name))?;
            }
            if legacy && m.version == 1 {
                adopt_legacy(&tx)?;
            }
        }
        tx.pragma_update(None, "user_version", latest)
            .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())
    }
}

pub(crate) fn newer_schema(found: i64, known: i64) -> String {
    format!(
        "the ledger's schema is at version {found}, newer than this ferry knows ({known}): upgrade ferry"
    )
}

fn table_exists(c: &Connection, name: &str) -> Result<bool, String> {
    c.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .map_err(|e| e.to_string())
}

fn columns(c: &Connection, table: &str) -> Result<Vec<String>, String> {
    let mut st = c
        .prepare(&format!("PRAGMA table_info({table})"))
        .map_err(|e| e.to_string())?;
    let names = st
        .query_map([], |r| r.get::<_, String>(1))
        .map_err(|e| e.to_string())?;
    names
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

/// Copies the rows of a ledger written before schema versions (its tables renamed `legacy_*`)
/// into the typed tables of migration 1, then drops the old tables.
fn adopt_legacy(c: &Connection) -> Result<(), String> {
    for t in TABLES {
        let old = format!("legacy_{t}");
        if !table_exists(c, &old)? {
            continue;
        }
        let new_cols = columns(c, t)?;
        let common: Vec<String> = columns(c, &old)?
            .into_iter()
            .filter(|col| new_cols.contains(col))
            .collect();
        let list = common.join(", ");
        c.execute_batch(&format!(
            "INSERT INTO {t} ({list}) SELECT {list} FROM {old}"
        ))
        .map_err(|e| format!("cannot bring the ledger's {t} rows to the typed schema: {e}"))?;
    }
    // Steps before runs: the old steps refer to the old runs.
    for t in TABLES.iter().rev() {
        c.execute_batch(&format!("DROP TABLE IF EXISTS legacy_{t}"))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn to_sql(v: &Val) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match v {
        Val::Null => Value::Null,
        Val::Int(n) => Value::Integer(*n),
        Val::Text(s) => Value::Text(s.clone()),
    }
}

fn from_sql(v: rusqlite::types::ValueRef<'_>) -> Val {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Val::Null,
        ValueRef::Integer(n) => Val::Int(n),
        ValueRef::Real(f) => Val::Int(f as i64),
        ValueRef::Text(t) | ValueRef::Blob(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
    }
}

impl LedgerStore for SqliteStore {
    fn batch(&mut self, stmts: &[Stmt]) -> Result<Vec<u64>, String> {
        // Why IMMEDIATE: a deferred transaction takes the write lock only at its first write, and
        // in WAL mode a lock upgrade that finds another process's commit since its read snapshot
        // fails at once with SQLITE_BUSY (the busy timeout does not apply). Two runs sharing a
        // ledger then lose a step record ("database is locked"); taking the lock up front waits.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| e.to_string())?;
        let mut counts = Vec::with_capacity(stmts.len());
        for (sql, params) in stmts {
            let values: Vec<_> = params.iter().map(to_sql).collect();
            // cached: a run writes the same few statements thousands of times (one step each),
            // and compiling one costs more than running it
            let n = tx
                .prepare_cached(sql)
                .and_then(|mut st| st.execute(rusqlite::params_from_iter(values)))
                .map_err(|e| e.to_string())?;
            counts.push(n as u64);
        }
        tx.commit().map_err(|e| e.to_string())?;
        Ok(counts)
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, String> {
        let mut st = self.conn.prepare_cached(sql).map_err(|e| e.to_string())?;
        let n = st.column_count();
        let values: Vec<_> = params.iter().map(to_sql).collect();
        let mut rows = st
            .query(rusqlite::params_from_iter(values))
            .map_err(|e| e.to_string())?;
        let mut out = vec![];
        while let Some(r) = rows.next().map_err(|e| e.to_string())? {
            let mut row = Vec::with_capacity(n);
            for i in 0..n {
                row.push(from_sql(r.get_ref(i).map_err(|e| e.to_string())?));
            }
            out.push(Row(row));
        }
        Ok(out)
    }

    fn schema_version(&mut self) -> Result<i64, String> {
        self.user_version()
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }
}
