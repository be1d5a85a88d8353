//! Emulator fault knobs, admin endpoint and request log.

use crate::support::sim as common;

use std::time::{Duration, Instant};

use common::*;
use ferry::sim::Faults;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn scripted_statuses_and_retry_after() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    h.set_faults(Faults {
        script: vec![429, 503, 0, 500],
        retry_after_secs: Some(2),
        ..Faults::default()
    });
    let r = dev.get("/integrations").await;
    assert_eq!(r.headers()["retry-after"], "2");
    assert_error(r, TOO_MANY_REQUESTS).await;
    dev.get_error("/integrations", SERVICE_UNAVAILABLE).await;
    assert_eq!(dev.get("/integrations").await.status(), StatusCode::OK);
    dev.get_error("/integrations", INTERNAL_SERVER_ERROR).await;
    assert_eq!(dev.get("/integrations").await.status(), StatusCode::OK);
    let log = h.request_log();
    let statuses: Vec<u16> = log
        .iter()
        .filter(|e| e.path.ends_with("/integrations"))
        .map(|e| e.status)
        .collect();
    assert_eq!(statuses, vec![429, 503, 200, 500, 200]);
    assert!(log.iter().all(|e| e.instance.as_deref() == Some("dev")));
    assert_eq!(log.iter().filter(|e| e.injected).count(), 3);
}

#[tokio::test]
async fn rates_are_seeded_and_replayable() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    let run = |h: &ferry::sim::SimHandle| {
        h.set_faults(Faults {
            rate_429: 0.3,
            rate_503: 0.2,
            ..Faults::default()
        })
    };
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        run(&h);
        let mut o = Vec::new();
        for _ in 0..40 {
            o.push(dev.get("/integrations?limit=1").await.status().as_u16());
        }
        outcomes.push(o);
    }
    assert_eq!(outcomes[0], outcomes[1], "same seed, same outcomes");
    let n429 = outcomes[0].iter().filter(|s| **s == 429).count();
    let n503 = outcomes[0].iter().filter(|s| **s == 503).count();
    assert!(n429 > 2 && n429 < 25, "{n429}");
    assert!(n503 > 0 && n503 < 20, "{n503}");
    assert!(outcomes[0].contains(&200));
    // No Retry-After unless configured.
    h.set_faults(Faults {
        script: vec![429],
        ..Faults::default()
    });
    assert!(
        dev.get("/integrations")
            .await
            .headers()
            .get("retry-after")
            .is_none()
    );
}

#[tokio::test]
async fn admin_endpoint_latency_and_log_over_http() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    let http = reqwest::Client::new();
    // The admin endpoint exists on every listener; use the identity one.
    let r = http
        .post(format!("{}/__sim/faults", h.info.identity_url))
        .json(&json!({"latency_ms": 150, "path_regex": "/integrations$"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(h.faults().latency_ms, 150);
    let t = Instant::now();
    assert_eq!(dev.get("/integrations").await.status(), StatusCode::OK);
    assert!(t.elapsed() >= Duration::from_millis(150));
    let t = Instant::now();
    assert_eq!(dev.get("/connections").await.status(), StatusCode::OK);
    assert!(
        t.elapsed() < Duration::from_millis(150),
        "path_regex limits the latency"
    );
    let got: Value = http
        .get(format!("{}/__sim/faults", dev.info.base_url))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(got["latency_ms"], 150);
    let log = http
        .get(format!("{}/__sim/log", dev.info.base_url))
        .send()
        .await
        .expect("send");
    assert_eq!(log.headers()["content-type"], "application/x-ndjson");
    let text = log.text().await.expect("text");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let first = lines
        .iter()
        .find(|l| l["path"] == "/ic/api/integration/v1/integrations")
        .expect("logged");
    assert_eq!(first["method"], "GET");
    assert_eq!(first["status"], 200);
    assert_eq!(first["instance"], "dev");
    assert!(first["duration_ms"].as_u64().is_some_and(|d| d >= 150));
    // Bad JSON → 400; token TTL knob.
    let r = http
        .post(format!("{}/__sim/faults", dev.info.base_url))
        .body("{")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = http
        .post(format!("{}/__sim/faults", dev.info.base_url))
        .json(&json!({"token_ttl_secs": 5}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let info = h.instance("prod").expect("prod").clone();
    let tok = token_json(&http, &info).await;
    assert_eq!(tok["expires_in"], 5);
}

#[tokio::test]
async fn concurrency_cap_gives_429() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    h.set_faults(Faults {
        max_concurrent: Some(2),
        latency_ms: 300,
        ..Faults::default()
    });
    let futs: Vec<_> = (0..5).map(|_| dev.get("/integrations?limit=1")).collect();
    let res = futures::future::join_all(futs).await;
    let codes: Vec<u16> = res.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 2, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 429).count(), 3, "{codes:?}");
    // Another instance is not affected by dev's load.
    let other = Oic::new(&h, "empty2").await;
    assert_eq!(other.get("/integrations").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn download_dropped_part_way() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    let full = dev.export("HR_EMPLOYEE_SYNC|01.00.0000").await;
    assert!(full.len() > 1500);
    h.set_faults(Faults {
        drop_download_after: Some(1000),
        ..Faults::default()
    });
    let mut r = dev
        .get("/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000/archive")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut got = 0usize;
    let failed = loop {
        match r.chunk().await {
            Ok(Some(c)) => got += c.len(),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(failed, "the body must fail part-way");
    assert_eq!(got, 1000, "exactly the first 1000 bytes arrive");
    h.set_faults(Faults::default());
    assert_eq!(
        content(&dev.export("HR_EMPLOYEE_SYNC|01.00.0000").await),
        content(&full)
    );
}

#[tokio::test]
async fn parallel_writes_conflict() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    h.set_faults(Faults {
        conflict_on_parallel_writes: true,
        latency_ms: 200,
        path_regex: Some("/integrations/".into()),
        ..Faults::default()
    });
    let a = dev.patch(
        "/integrations/SCM_ORDER_NOTIFY%7C01.00.0000",
        r#"{"status":"ACTIVATED"}"#,
    );
    let b = dev.patch(
        "/integrations/FIN_GL_JOURNAL%7C02.00.0000",
        r#"{"status":"ACTIVATED"}"#,
    );
    let (ra, rb) = futures::join!(a, b);
    let mut codes = [ra.status().as_u16(), rb.status().as_u16()];
    codes.sort();
    assert_eq!(codes, [200, 409]);
    // Reads in parallel are fine; serial writes are fine.
    let (x, y) = futures::join!(
        dev.get("/integrations?limit=1"),
        dev.get("/integrations?limit=1")
    );
    assert_eq!((x.status().as_u16(), y.status().as_u16()), (200, 200));
    assert_eq!(
        dev.patch(
            "/integrations/HR_NEW_HIRE%7C01.01.0000",
            r#"{"status":"CONFIGURED"}"#
        )
        .await
        .status(),
        StatusCode::OK
    );
}

/// A request held by latency shows in `GET /__sim/in_flight` while it is answered (the log has
/// it only afterwards): what a test waits on before it interrupts a slow call.
#[tokio::test]
async fn in_flight_shows_a_request_while_it_is_answered() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    let in_flight = || async {
        dev.http
            .get(format!("{}/__sim/in_flight", dev.info.base_url))
            .send()
            .await
            .expect("send")
            .json::<Value>()
            .await
            .expect("json")
    };
    assert_eq!(in_flight().await, json!({}));
    h.set_faults(Faults {
        latency_ms: 1500,
        ..Faults::default()
    });
    // answers as the request is counted in (the wait is the event, not a poll)
    let seen = async {
        dev.http
            .get(format!(
                "{}/__sim/in_flight?at_least=1&wait_ms=10000",
                dev.info.base_url
            ))
            .send()
            .await
            .expect("send")
            .json::<Value>()
            .await
            .expect("json")
    };
    let started = std::time::Instant::now();
    let (r, seen) = tokio::join!(dev.get("/integrations"), seen);
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(seen, json!({"dev": 1}), "the request shows in flight");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the wait ended with the event, not its bound"
    );
    assert_eq!(
        in_flight().await,
        json!({}),
        "answered: no longer in flight"
    );
}
