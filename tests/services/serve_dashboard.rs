//! `ferry serve` over HTTP, on both ledger backends: the token is required, pages show the runs,
//! a failed artifact's root cause (escaped), the error filter, backup jobs, and the event stream
//! reports a running run's progress as it moves.

use crate::support;

use ferry::config::{Secret, SslMode};
use ferry::ledger::{Ledger, LedgerLocation, Stage};
use support::dashboard::{seed, step};
use support::pg::pg;

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
    let Some(pg) = pg() else { return };
    let pg = std::sync::Arc::new(pg);
    let p = pg.clone();
    let name = tokio::task::spawn_blocking(move || p.fresh_db())
        .await
        .unwrap();
    check(LedgerLocation::Postgres(pg.ledger(
        &name,
        &pg.writer,
        SslMode::Disable,
    )))
    .await;
}
