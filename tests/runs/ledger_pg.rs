//! The ledger on a real PostgreSQL server (the private cluster of `.ci/pg.sh`): the same rows as
//! the SQLite file, numbered migrations, TLS with the server's certificate checked, a read-only
//! viewer role that can read and cannot write, two runners writing at once, and a migration
//! killed in one working folder and process and resumed from another.
//!
//! Needs TEST_PG_* (`. /srv/ocitest/env`): without them the tests fail, unless
//! FERRY_ALLOW_SKIP=1 (then they print SKIP).

use crate::support::ledger as ledger_support;

use std::path::Path;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use ferry::config::{Secret, SslMode};
use ferry::ledger::store::latest_version;
use ferry::ledger::{
    ErrorFilter, Intent, JobRow, Ledger, LedgerLocation, RollbackEntry, RunExtra, RunInfo, Stage,
    Step,
};
use ferry::sim::Seed;
use ledger_support::support::pg::{Pg, pg};
use ledger_support::*;

fn at(s: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + s, 0).unwrap()
}

fn info(id: &str, started: i64) -> RunInfo {
    RunInfo {
        recipe_sha256: "sha".into(),
        run_by: "pipeline".into(),
        started: at(started),
        ferry_version: "0.1.0".into(),
        ..crate::support::run_info(id)
    }
}

/// The dashboard tests' step, with the stage as its action, a sha256 and times from [`at`].
fn step(seq: u64, stage: Stage, code: &str, target: &str, fail: Option<&str>) -> Step {
    Step {
        action: stage.as_str().into(),
        sha256: Some("ab".into()),
        started: at(seq as i64),
        ended: at(seq as i64 + 1),
        ..crate::support::dashboard::step(seq, stage, code, target, fail)
    }
}

/// Writes the same history into a ledger and returns everything read back from it.
fn exercise(mut db: Ledger) -> String {
    let extra = RunExtra {
        kind: "run".into(),
        profiles: vec!["dev".into(), "prod".into()],
        resumes: None,
    };
    db.insert_run(&info("r1", 0), &extra, Some(Path::new("/w/a")))
        .unwrap();
    db.set_expected("r1", 3).unwrap();
    db.insert_step("r1", &step(1, Stage::Export, "ORDERS", "dev", None))
        .unwrap();
    db.insert_step(
        "r1",
        &step(2, Stage::Import, "ORDERS", "prod", Some("it's \"taken\"")),
    )
    .unwrap();
    db.insert_step(
        "r1",
        &step(3, Stage::Import, "BILLING_100%", "prod", Some("boom")),
    )
    .unwrap();
    let i = Intent {
        stage: Stage::Import,
        kind: ferry::artifact::ArtifactKind::Integration,
        code: "ORDERS".into(),
        version: "01.00.0000".into(),
        target: "prod".into(),
        sha256: "ab".into(),
    };
    db.insert_intent("r1", &i).unwrap();
    db.insert_intent("r1", &i).unwrap();
    let job = JobRow {
        run: "r1".into(),
        seq: 1,
        vault: "backups".into(),
        name: "nightly".into(),
        path: "2026/nightly".into(),
        date: "2026-11-30".into(),
    };
    db.insert_job(&job).unwrap();
    let rb = RollbackEntry {
        kind: ferry::artifact::ArtifactKind::Integration,
        code: "ORDERS".into(),
        version: "01.00.0000".into(),
        target: "prod".into(),
        existed: true,
        previous_status: Some("ACTIVATED".into()),
        sha256: None,
        content_sha256: Some("c0ffee".into()),
        imported_content_sha256: Some("beef".into()),
        location: Some("vault:backups:2026/nightly".into()),
    };
    db.insert_rollback("r1", &rb).unwrap();
    db.insert_rollback("r1", &rb).unwrap();
    let mut done = info("r1", 0);
    done.ended = Some(at(10));
    done.outcome = Some("failed".into());
    db.finish_run(&done).unwrap();
    db.insert_run(&info("r2", 20), &RunExtra::default(), None)
        .unwrap();

    let mut runs = db.runs(10).unwrap();
    for r in &mut runs {
        assert!(r.updated.is_some());
        assert!(r.host.is_some());
        r.updated = None;
    }
    let filters = [
        ErrorFilter::default(),
        ErrorFilter {
            stage: Some(Stage::Import),
            target: Some("prod".into()),
            code: Some("100%".into()),
            ..Default::default()
        },
        ErrorFilter {
            since: Some(at(3)),
            until: Some(at(4)),
            ..Default::default()
        },
        ErrorFilter {
            run: Some("r2".into()),
            ..Default::default()
        },
    ];
    let errors: Vec<_> = filters.iter().map(|f| db.errors(f).unwrap()).collect();
    assert_eq!(
        errors.iter().map(Vec::len).collect::<Vec<_>>(),
        [2, 1, 1, 0]
    );
    format!(
        "{runs:?}\n{:?}\n{errors:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        db.steps("r1").unwrap(),
        db.intents("r1").unwrap(),
        db.jobs("r1").unwrap(),
        db.rollback_entries("r1").unwrap(),
        db.last_run(Some("migrate.rhai"), Some("r2"))
            .unwrap()
            .map(|r| r.info.id),
    )
}

#[test]
fn postgres_and_sqlite_hold_the_same_rows() {
    let Some(pg) = pg() else { return };
    let name = pg.fresh_db();
    let on_pg = Ledger::open_at(&pg.writer_at(&name)).unwrap();
    assert_eq!(on_pg.schema_version().unwrap(), latest_version());
    let d = tempfile::tempdir().unwrap();
    let on_sqlite = Ledger::open(&d.path().join("ledger.db")).unwrap();
    let a = exercise(on_pg);
    let b = exercise(on_sqlite);
    assert_eq!(a, b);
    // The versions are rows of schema_version, one per migration.
    let n: i64 = pg
        .client(&name)
        .query_one("SELECT COUNT(*) FROM schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, latest_version());
}

#[test]
fn tls_is_used_and_the_certificate_is_checked() {
    let Some(pg) = pg() else { return };
    let name = pg.fresh_db();
    let db = Ledger::open_at(&pg.writer_at(&name)).unwrap();
    db.runs(1).unwrap();
    let ssl: bool = pg
        .client(&name)
        .query_one(
            "SELECT bool_and(s.ssl) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
             WHERE a.application_name = 'ferry' AND a.datname = $1",
            &[&name],
        )
        .unwrap()
        .get(0);
    assert!(ssl, "the ledger's connection is encrypted");
    // Without the private CA the self-signed certificate is refused.
    let mut no_ca = pg.ledger(&name, &pg.writer, SslMode::Require);
    no_ca.ca_file = None;
    let e = Ledger::open_at(&LedgerLocation::Postgres(no_ca))
        .unwrap_err()
        .to_string();
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    // A wrong password is refused, and never printed.
    let mut bad = pg.ledger(&name, &pg.writer, SslMode::Require);
    bad.password = Some(Secret::new("not-the-password"));
    let e = Ledger::open_at(&LedgerLocation::Postgres(bad))
        .unwrap_err()
        .to_string();
    assert!(e.contains("password authentication failed"), "{e}");
    assert!(!e.contains("not-the-password") && !e.contains(&pg.writer.1));
}

#[test]
fn the_viewer_role_reads_and_cannot_write() {
    let Some(pg) = pg() else { return };
    let name = pg.fresh_db();
    let viewer = LedgerLocation::Postgres(pg.ledger(&name, &pg.viewer, SslMode::Require));
    // Before the writer created the tables, the viewer cannot.
    let e = Ledger::open_at(&viewer).unwrap_err().to_string();
    assert!(e.contains("read-only role"), "{e}");
    let mut w = Ledger::open_at(&pg.writer_at(&name)).unwrap();
    w.insert_run(&info("r1", 0), &RunExtra::default(), None)
        .unwrap();
    w.insert_step("r1", &step(1, Stage::Import, "A", "prod", Some("no")))
        .unwrap();

    let mut v = Ledger::open_at(&viewer).unwrap();
    assert_eq!(v.runs(10).unwrap().len(), 1);
    assert_eq!(v.errors(&ErrorFilter::default()).unwrap().len(), 1);
    let e = v
        .insert_run(&info("r2", 1), &RunExtra::default(), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("permission denied"), "{e}");
    let e = v
        .insert_step("r1", &step(2, Stage::Import, "B", "prod", None))
        .unwrap_err()
        .to_string();
    assert!(e.contains("permission denied"), "{e}");
    let mut done = info("r1", 0);
    done.outcome = Some("ok".into());
    assert!(v.finish_run(&done).is_err());
    assert_eq!(w.runs(10).unwrap()[0].info.outcome, None);
}

#[test]
fn two_runners_writing_at_once_stay_consistent() {
    let Some(pg) = pg() else { return };
    let name = pg.fresh_db();
    const STEPS: u64 = 40;
    let handles: Vec<_> = (0..4)
        .map(|n| {
            let loc = pg.writer_at(&name);
            std::thread::spawn(move || {
                // Each opens a new ledger at the same moment: the schema is migrated once.
                let mut db = Ledger::open_at(&loc).unwrap();
                let id = format!("runner-{n}");
                db.insert_run(&info(&id, n), &RunExtra::default(), None)
                    .unwrap();
                for s in 1..=STEPS {
                    let fail = (s % 10 == 0).then_some("refused");
                    db.insert_step(&id, &step(s, Stage::Import, &format!("I{s}"), "prod", fail))
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let db = Ledger::open_at(&pg.writer_at(&name)).unwrap();
    let runs = db.runs(10).unwrap();
    assert_eq!(runs.len(), 4);
    for r in &runs {
        assert_eq!(
            (r.steps, r.failed_steps),
            (STEPS, STEPS / 10),
            "{}",
            r.info.id
        );
        let seqs: Vec<u64> = db
            .steps(&r.info.id)
            .unwrap()
            .iter()
            .map(|s| s.seq)
            .collect();
        assert_eq!(seqs, (1..=STEPS).collect::<Vec<_>>());
    }
    let n: i64 = pg
        .client(&name)
        .query_one("SELECT COUNT(*) FROM schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, latest_version(), "each migration applied once");
}

/// The `[ledger]` table for a working folder (the password in a file beside it).
fn ledger_toml(dir: &Path, pg: &Pg, db: &str) -> String {
    std::fs::create_dir_all(dir.join("secrets")).unwrap();
    std::fs::write(dir.join("secrets/pg.txt"), &pg.writer.1).unwrap();
    format!(
        "\n[ledger]\nurl = \"postgres://{}@{}:{}/{db}\"\npassword = \"file:secrets/pg.txt\"\nsslmode = \"require\"\nca_file = \"{}\"\nidentity = \"ci-runner\"\n",
        pg.writer.0, pg.host, pg.port, pg.ca
    )
}

#[test]
fn a_run_killed_in_one_folder_resumes_from_another() {
    let Some(pg) = pg() else { return };
    let name = pg.fresh_db();
    let env = Env::start(Seed::TargetConnections);
    let cfg = env.path().join("ferry.toml");
    let mut toml = std::fs::read_to_string(&cfg).unwrap();
    toml.push_str(&ledger_toml(env.path(), &pg, &name));
    std::fs::write(&cfg, &toml).unwrap();
    let recipe = env.recipe("migrate.rhai", MIGRATE);
    let selected = expected_selection(&env.rt.block_on(list_integrations(&env.instance("dev"))));

    // Runner A: killed right after its second import request.
    let mut child = env.spawn(&["run", &recipe]);
    // Woken by the emulator as each request is logged (no polling).
    let reached = env.sim.wait_for_requests(Duration::from_secs(60), |log| {
        log.iter()
            .filter(|e| {
                e.instance.as_deref() == Some("prod")
                    && e.path.ends_with("/integrations/archive")
                    && !e.injected
            })
            .count()
            >= 2
    });
    assert!(reached, "timed out before the second import");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before its second import"
    );
    child.kill().unwrap();
    child.wait().unwrap();

    // Runner B: another folder (same config, secrets beside it), another process.
    let b = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(b.path().join("secrets")).unwrap();
    for f in std::fs::read_dir(env.path().join("secrets")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), b.path().join("secrets").join(f.file_name())).unwrap();
    }
    std::fs::write(b.path().join("ferry.toml"), &toml).unwrap();
    std::fs::write(b.path().join("migrate.rhai"), MIGRATE).unwrap();
    let run_in_b = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
            .current_dir(b.path())
            .args(args)
            .env_remove("FERRY_CONFIG")
            .env_remove("FERRY_LEDGER")
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let out = run_in_b(&["run", "migrate.rhai", "--resume", "last", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = json_out(&out);

    let db = Ledger::open_at(&pg.writer_at(&name)).unwrap();
    let runs = db.runs(10).unwrap();
    assert_eq!(runs.len(), 2);
    let (second, first) = (&runs[0], &runs[1]);
    assert!(first.info.outcome.is_none(), "the killed run never ended");
    assert_eq!(report["resumes"], first.info.id.as_str());
    assert_eq!(
        second.extra.resumes.as_deref(),
        Some(first.info.id.as_str())
    );
    assert_eq!(first.info.run_by, "ci-runner");
    assert_ne!(first.dir, second.dir, "two working folders");
    assert!(
        second
            .dir
            .as_deref()
            .unwrap()
            .starts_with(&b.path().display().to_string())
    );
    // Each artifact imported once over both runs.
    let imports = env
        .sim
        .request_log()
        .iter()
        .filter(|e| {
            e.instance.as_deref() == Some("prod")
                && (e.method == "POST" || e.method == "PUT")
                && e.path.ends_with("/integrations/archive")
                && e.status < 300
        })
        .count();
    assert_eq!(imports, selected.len());
    assert_eq!(env.state("prod").len(), selected.len());

    // `ferry runs` and `ferry errors` in folder B read the shared ledger.
    let out = run_in_b(&["runs", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listed = json_out(&out);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second.info.id.as_str(), first.info.id.as_str()]);
    let out = run_in_b(&["errors", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
