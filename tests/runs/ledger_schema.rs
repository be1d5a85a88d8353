//! The SQLite ledger's schema is versioned (`PRAGMA user_version`) and its tables are STRICT: a
//! new ledger is created at the latest version, a ledger written before versions is brought to
//! it with its rows kept, a ledger newer than this ferry is refused, rows of the wrong type are
//! refused, and several processes opening a new ledger at once migrate it once.

use std::path::Path;

use ferry::ledger::store::{MIGRATIONS, latest_version};
use ferry::ledger::{Ledger, RunExtra, RunInfo};
use rusqlite::Connection;

fn info(id: &str) -> RunInfo {
    RunInfo {
        recipe: "r.rhai".into(),
        recipe_sha256: "abc".into(),
        run_by: "tester".into(),
        sandbox: true,
        ..crate::support::run_info(id)
    }
}

fn user_version(p: &Path) -> i64 {
    Connection::open(p)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

fn strict_tables(p: &Path) -> Vec<String> {
    let c = Connection::open(p).unwrap();
    let mut st = c
        .prepare(
            "SELECT name FROM pragma_table_list WHERE strict = 1 AND schema = 'main' ORDER BY name",
        )
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<Vec<String>, _>>()
        .unwrap()
}

const ALL: [&str; 5] = ["intents", "jobs", "rollback", "runs", "steps"];

#[test]
fn new_ledger_is_at_the_latest_version_with_strict_tables() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("ledger.db");
    let db = Ledger::open(&p).unwrap();
    assert_eq!(latest_version(), MIGRATIONS.len() as i64);
    assert_eq!(db.schema_version().unwrap(), latest_version());
    assert_eq!(user_version(&p), latest_version());
    assert_eq!(strict_tables(&p), ALL);
    // A strict row: text where an integer belongs is refused.
    let c = Connection::open(&p).unwrap();
    let e = c
        .execute(
            "INSERT INTO runs (id, recipe, recipe_sha256, run_by, started, dry_run, sandbox, ferry_version) VALUES ('x', 'r', 's', 'u', 't', 'yes', 0, 'v')",
            [],
        )
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot store TEXT value in INTEGER column"),
        "{e}"
    );
    // And so is a status no step can have.
    db.insert_run(&info("r1"), &RunExtra::default(), None)
        .unwrap();
    let e = c
        .execute(
            "INSERT INTO steps (run, seq, stage, kind, code, version, target, action, status, attempts, started, ended) VALUES ('r1', 1, 'export', 'integration', 'A', '01', 'dev', 'export', 'great', 1, 't', 't')",
            [],
        )
        .unwrap_err();
    assert!(e.to_string().contains("CHECK constraint failed"), "{e}");
}

/// The schema of the ledger before it had versions (what `ferry` wrote until then).
const LEGACY: &str = "
CREATE TABLE runs (id TEXT PRIMARY KEY, kind TEXT NOT NULL DEFAULT 'run', recipe TEXT NOT NULL,
    recipe_sha256 TEXT NOT NULL, run_by TEXT NOT NULL, profiles TEXT NOT NULL DEFAULT '',
    started TEXT NOT NULL, ended TEXT, dry_run INTEGER NOT NULL, sandbox INTEGER NOT NULL,
    ferry_version TEXT NOT NULL, outcome TEXT, message TEXT, resumes TEXT, dir TEXT);
CREATE TABLE steps (run TEXT NOT NULL REFERENCES runs(id), seq INTEGER NOT NULL, stage TEXT NOT NULL,
    kind TEXT NOT NULL, code TEXT NOT NULL, version TEXT NOT NULL, target TEXT NOT NULL,
    action TEXT NOT NULL, reason TEXT, status TEXT NOT NULL, attempts INTEGER NOT NULL,
    error_kind TEXT, error_status INTEGER, error_message TEXT, sha256 TEXT, started TEXT NOT NULL,
    ended TEXT NOT NULL, PRIMARY KEY (run, seq));
CREATE INDEX steps_status ON steps(status, stage);
CREATE TABLE jobs (run TEXT NOT NULL, seq INTEGER NOT NULL, vault TEXT NOT NULL, name TEXT NOT NULL,
    path TEXT NOT NULL, date TEXT NOT NULL, PRIMARY KEY (run, seq));
INSERT INTO runs VALUES ('old-1', 'run', 'migrate.rhai', 'sha', 'alice', 'dev,prod',
    '2026-11-01T10:00:00.000Z', '2026-11-01T10:05:00.000Z', 0, 0, '0.1.0', 'failed', NULL, NULL, '/x');
INSERT INTO steps VALUES ('old-1', 1, 'export', 'integration', 'A', '01.00.0000', 'dev', 'export',
    NULL, 'ok', 1, NULL, NULL, NULL, 'aa', '2026-11-01T10:00:01.000Z', '2026-11-01T10:00:02.000Z');
INSERT INTO steps VALUES ('old-1', 2, 'import', 'integration', 'A', '01.00.0000', 'prod', 'import new',
    NULL, 'failed', 3, 'http', 409, 'already exists', 'aa', '2026-11-01T10:00:03.000Z', '2026-11-01T10:00:04.000Z');
INSERT INTO jobs VALUES ('old-1', 1, 'main', 'nightly', 'jobs/nightly', '2026-11-01');
";

#[test]
fn a_ledger_from_before_versions_is_migrated_with_its_rows() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("ledger.db");
    Connection::open(&p).unwrap().execute_batch(LEGACY).unwrap();
    assert_eq!(user_version(&p), 0);

    let db = Ledger::open(&p).unwrap();
    assert_eq!(user_version(&p), latest_version());
    assert_eq!(strict_tables(&p), ALL);
    let run = db.run("old-1").unwrap().expect("the old run is kept");
    assert_eq!(run.info.run_by, "alice");
    assert_eq!(run.extra.profiles, ["dev", "prod"]);
    assert_eq!((run.steps, run.failed_steps), (2, 1));
    let errs = db.errors(&Default::default()).unwrap();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].step.error.as_ref().unwrap().status, Some(409));
    assert_eq!(db.jobs("old-1").unwrap()[0].path, "jobs/nightly");
    // The new columns and tables work on the migrated file.
    db.set_expected("old-1", 7).unwrap();
    assert_eq!(db.run("old-1").unwrap().unwrap().expected, Some(7));
    assert!(db.rollback_entries("old-1").unwrap().is_empty());
    drop(db);
    // Opening again changes nothing.
    let db = Ledger::open(&p).unwrap();
    assert_eq!(db.runs(10).unwrap().len(), 1);
}

#[test]
fn a_ledger_newer_than_this_ferry_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("ledger.db");
    drop(Ledger::open(&p).unwrap());
    Connection::open(&p)
        .unwrap()
        .pragma_update(None, "user_version", latest_version() + 1)
        .unwrap();
    let e = Ledger::open(&p).unwrap_err().to_string();
    assert!(e.contains("newer than this ferry"), "{e}");
}

#[test]
fn concurrent_first_opens_migrate_once() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("ledger.db");
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let p = p.clone();
            std::thread::spawn(move || {
                let db = Ledger::open(&p).unwrap();
                db.insert_run(&info(&format!("r{i}")), &RunExtra::default(), None)
                    .unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let db = Ledger::open(&p).unwrap();
    assert_eq!(db.runs(100).unwrap().len(), 6);
    assert_eq!(user_version(&p), latest_version());
}
