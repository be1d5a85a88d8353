//! `ferry serve` over HTTP, on both ledger backends: the token is required, pages show the runs,
//! a failed artifact's root cause (escaped), the error filter, backup jobs, and the event stream
//! reports a running run's progress as it moves.

use chrono::Utc;
use ferry::config::{PgLedger, Secret, SslMode};
use ferry::ledger::{
    JobRow, Ledger, LedgerLocation, RunExtra, RunInfo, Stage, Step, StepError, StepStatus,
};

fn info(id: &str) -> RunInfo {
    RunInfo {
        id: id.into(),
        recipe: "migrate.rhai".into(),
        recipe_sha256: "s".into(),
        run_by: "alice".into(),
        started: Utc::now(),
        ended: None,
        dry_run: false,
        sandbox: false,
        ferry_version: "0".into(),
        outcome: None,
        message: None,
    }
}

fn step(seq: u64, stage: Stage, code: &str, target: &str, err: Option<&str>) -> Step {
    Step {
        seq,
        stage,
        kind: ferry::artifact::ArtifactKind::Integration,
        code: code.into(),
        version: "01.00.0000".into(),
        target: target.into(),
        action: "x".into(),
        reason: None,
        status: if err.is_some() {
            StepStatus::Failed
        } else {
            StepStatus::Ok
        },
        attempts: 1,
        error: err.map(|m| StepError {
            kind: "http".into(),
            status: Some(409),
            message: m.into(),
        }),
        sha256: None,
        started: Utc::now(),
        ended: Utc::now(),
    }
}

fn seed(db: &mut Ledger) {
    db.insert_run(&info("run-live"), &RunExtra::default(), None)
        .unwrap();
    db.set_expected("run-live", 10).unwrap();
    db.insert_step("run-live", &step(1, Stage::Export, "ORDERS", "dev", None))
        .unwrap();
    db.insert_run(&info("run-failed"), &RunExtra::default(), None)
        .unwrap();
    db.insert_step(
        "run-failed",
        &step(1, Stage::Export, "BILLING", "dev", None),
    )
    .unwrap();
    db.insert_step(
        "run-failed",
        &step(
            2,
            Stage::Import,
            "BILLING",
            "prod",
            Some("connection <script>alert(1)</script> missing"),
        ),
    )
    .unwrap();
    db.insert_step(
        "run-failed",
        &step(
            3,
            Stage::Activate,
            "PAYROLL",
            "prod",
            Some("activation refused"),
        ),
    )
    .unwrap();
    db.insert_job(&JobRow {
        run: "run-failed".into(),
        seq: 1,
        vault: "backups".into(),
        name: "nightly".into(),
        path: "2026/nightly-1".into(),
        date: "2026-11-30".into(),
    })
    .unwrap();
    let mut done = info("run-failed");
    done.ended = Some(Utc::now());
    done.outcome = Some("failed".into());
    db.finish_run(&done).unwrap();
}

async fn check(loc: LedgerLocation) {
    let mut writer = Ledger::open_at(&loc).unwrap();
    seed(&mut writer);
    let token = Secret::new("t0ken-for-tests");
    let app = ferry::serve::app(Ledger::open_at(&loc).unwrap(), &token);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let c = reqwest::Client::new();

    let r = c.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(!r.text().await.unwrap().contains("t0ken"));
    let r = c.get(format!("{base}/?token=wrong")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(format!("{base}/?token=t0ken-for-tests"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = r.text().await.unwrap();
    assert!(page.contains("run-live") && page.contains("run-failed"));
    assert!(
        !page.contains("t0ken-for-tests"),
        "the token is never shown"
    );
    let get = |path: &str| {
        let c = c.clone();
        let url = format!("{base}{path}");
        let cookie = cookie.clone();
        async move { c.get(url).header("cookie", cookie).send().await.unwrap() }
    };
    let run = get("/runs/run-failed").await.text().await.unwrap();
    assert!(
        run.contains("connection &lt;script&gt;alert(1)&lt;/script&gt; missing"),
        "escaped root cause: {run}"
    );
    assert!(!run.contains("<script>alert"));
    assert!(run.contains("2026/nightly-1") && run.contains("alice"));
    let errs = get("/errors?stage=activate").await.text().await.unwrap();
    assert!(
        errs.contains("activation refused") && !errs.contains("connection &lt;script"),
        "{errs}"
    );
    let errs = get("/errors?artifact=bill&instance=prod")
        .await
        .text()
        .await
        .unwrap();
    assert!(errs.contains("1 failed steps") && errs.contains("BILLING"));
    assert_eq!(get("/errors?stage=nope").await.status(), 400);
    assert!(get("/jobs").await.text().await.unwrap().contains("nightly"));
    assert!(
        get("/runs/run-failed/report")
            .await
            .text()
            .await
            .unwrap()
            .contains("activation refused")
    );

    // The event stream: the running run's progress moves as steps land.
    let mut ev = get("/events").await;
    let first = next_event(&mut ev).await;
    assert!(
        first.contains("\"id\":\"run-live\"") && first.contains("\"steps\":1"),
        "{first}"
    );
    for s in 2..=4 {
        writer
            .insert_step("run-live", &step(s, Stage::Import, "ORDERS", "prod", None))
            .unwrap();
    }
    let mut later = next_event(&mut ev).await;
    for _ in 0..5 {
        if later.contains("\"steps\":4") {
            break;
        }
        later = next_event(&mut ev).await;
    }
    assert!(
        later.contains("\"steps\":4") && later.contains("\"expected\":10"),
        "{later}"
    );
}

/// The data of the next `progress` event.
async fn next_event(r: &mut reqwest::Response) -> String {
    let mut buf = String::new();
    loop {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), r.chunk())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("the stream stays open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(i) = buf.find("event: progress")
            && let Some(end) = buf[i..].find("\n\n")
        {
            return buf[i..i + end].to_string();
        }
    }
}

#[tokio::test]
async fn dashboard_over_sqlite() {
    let d = tempfile::tempdir().unwrap();
    check(LedgerLocation::Sqlite(d.path().join("ledger.db"))).await;
}

#[tokio::test]
async fn dashboard_over_postgres() {
    let v = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
    let (Some(host), Some(port), Some(pw)) = (
        v("TEST_PG_HOST"),
        v("TEST_PG_PORT"),
        v("TEST_PG_WRITER_PASSWORD"),
    ) else {
        assert!(
            std::env::var("FERRY_ALLOW_SKIP").as_deref() == Ok("1"),
            "TEST_PG_* is not set: `bash .ci/pg.sh && . /srv/ocitest/env` (or FERRY_ALLOW_SKIP=1)"
        );
        eprintln!("SKIP: TEST_PG_* is not set");
        return;
    };
    let user = v("TEST_PG_WRITER").unwrap_or("ferry_writer".into());
    let name = format!("ferry_s_{:08x}", rand::random::<u32>());
    let (h, p, u, w) = (host.clone(), port.clone(), user.clone(), pw.clone());
    let n = name.clone();
    tokio::task::spawn_blocking(move || {
        let mut c = postgres::Config::new()
            .host(&h)
            .port(p.parse().unwrap())
            .user(&u)
            .password(&w)
            .dbname("ferry")
            .connect(postgres::NoTls)
            .unwrap();
        c.batch_execute(&format!("CREATE DATABASE {n}")).unwrap();
    })
    .await
    .unwrap();
    check(LedgerLocation::Postgres(PgLedger {
        url: format!("postgres://{user}@{host}:{port}/{name}"),
        password: Some(Secret::new(pw)),
        sslmode: SslMode::Disable,
        ca_file: None,
        timeout_secs: 20,
    }))
    .await;
}
