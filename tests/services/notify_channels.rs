//! The outbox (`.eml` files, as `--sandbox` uses) and the webhook channel against a real HTTP
//! receiver on loopback; dry runs plan without sending.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use chrono::Utc;
use ferry::artifact::ArtifactKind;
use ferry::config::Secret;
use ferry::effect::Executor;
use ferry::ledger::{Report, RunInfo, Stage, Step, StepError, StepStatus};
use ferry::notify::{
    DeliveryStatus, Mailer, Webhook, When, compose, deliver, post_webhook, webhook_payload,
};

fn info(dry: bool) -> RunInfo {
    RunInfo {
        dry_run: dry,
        sandbox: true,
        ..crate::support::run_info("R-chan")
    }
}

fn exec(dry: bool) -> Executor {
    crate::support::memory_executor(info(dry))
}

fn report() -> Report {
    let mk = |code: &str, status: StepStatus| Step {
        seq: 0,
        stage: Stage::Import,
        kind: ArtifactKind::Integration,
        code: code.into(),
        version: "01.00.0000".into(),
        target: "prod".into(),
        action: "import".into(),
        reason: None,
        status,
        attempts: 1,
        error: (status == StepStatus::Failed).then(|| StepError {
            kind: "http".into(),
            status: Some(412),
            message: "connection HR_DB is a draft".into(),
        }),
        sha256: None,
        started: Utc::now(),
        ended: Utc::now(),
    };
    Report::build(
        info(false),
        &[
            mk("ORDERS", StepStatus::Ok),
            mk("HR_SYNC", StepStatus::Failed),
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn outbox_writes_parseable_eml_files() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let mailer = Mailer::outbox(&outbox, "ferry <ferry@sandbox.local>").unwrap();
    let msgs = compose(&report(), &["ops@example.com".into()], None, When::Always);
    let x = exec(false);
    let res = deliver(&x, &mailer, &msgs).await;
    assert_eq!(res[0].status, DeliveryStatus::Sent);
    let path = res[0].path.clone().expect("the .eml path");
    assert_eq!(path.parent().unwrap(), outbox);
    assert_eq!(path.extension().unwrap(), "eml");
    let raw = std::fs::read_to_string(&path).unwrap();
    assert!(raw.contains("To: ops@example.com"), "{raw}");
    assert!(raw.contains("Content-Type: multipart/mixed"), "{raw}");
    assert!(
        raw.contains("filename=\"ferry-report-R-chan.html\""),
        "{raw}"
    );
    let steps = x.record().steps();
    assert_eq!(steps[0].stage, Stage::Notify);
    assert!(steps[0].target.starts_with("outbox "));
    // No temporary file left behind.
    assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_plans_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = Mailer::outbox(&dir.path().join("o"), "ferry@x.example").unwrap();
    let msgs = compose(&report(), &["ops@example.com".into()], None, When::Always);
    let x = exec(true);
    let res = deliver(&x, &mailer, &msgs).await;
    assert_eq!(res[0].status, DeliveryStatus::Planned);
    assert!(!dir.path().join("o").exists());
    assert_eq!(x.record().steps()[0].status, StepStatus::Planned);
}

async fn receiver(status: StatusCode) -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let g = got.clone();
    let app = Router::new().route(
        "/hooks/T0KEN-abc123",
        post(move |body: axum::Json<serde_json::Value>| {
            let g = g.clone();
            async move {
                g.lock().unwrap().push(body.0);
                status
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}/hooks/T0KEN-abc123"), got)
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_posts_the_summary_with_failures() {
    let (url, got) = receiver(StatusCode::OK).await;
    let hook = Webhook::new(Secret::new(url), Duration::from_secs(5)).unwrap();
    let r = report();
    let subject = ferry::notify::subject(&r, &ferry::notify::Scope::All);
    let x = exec(false);
    let d = post_webhook(&x, &hook, &subject, &webhook_payload(&r, &subject)).await;
    assert_eq!(d.status, DeliveryStatus::Sent, "{d:?}");
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let text = got[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("[ferry] FAILED: migrate.rhai - 1 of 2"),
        "{text}"
    );
    assert!(
        text.contains(
            "- HR_SYNC|01.00.0000 [import on prod] HTTP 412: connection HR_DB is a draft"
        ),
        "{text}"
    );
    assert_eq!(got[0]["summary"]["failed"], 1);
    assert_eq!(got[0]["failures"][0]["artifact"], "HR_SYNC|01.00.0000");
    // The step names the host, never the token in the path.
    let st = &x.record().steps()[0];
    assert!(!st.target.contains("T0KEN") && !st.action.contains("T0KEN"));
    assert!(st.target.starts_with("webhook 127.0.0.1:"));
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_errors_are_recorded_without_the_url() {
    let (url, got) = receiver(StatusCode::SERVICE_UNAVAILABLE).await;
    let hook = Webhook::new(Secret::new(url), Duration::from_secs(5)).unwrap();
    let r = report();
    let x = exec(false);
    let d = post_webhook(&x, &hook, "s", &webhook_payload(&r, "s")).await;
    assert_eq!(d.status, DeliveryStatus::Failed);
    assert_eq!(got.lock().unwrap().len(), 3, "503 is retried");
    let st = &x.record().steps()[0];
    assert_eq!(st.status, StepStatus::Failed);
    assert_eq!(st.error.as_ref().unwrap().status, Some(503));
    assert!(!st.error.as_ref().unwrap().message.contains("T0KEN"));

    // Nothing listening: a transport error, without the URL either.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hook = Webhook::new(
        Secret::new(format!("http://127.0.0.1:{port}/hooks/T0KEN-x")),
        Duration::from_secs(2),
    )
    .unwrap();
    let d = post_webhook(&x, &hook, "s", &serde_json::json!({})).await;
    assert_eq!(d.status, DeliveryStatus::Failed);
    let e = d.error.unwrap();
    assert!(e.contains("cannot connect") && !e.contains("T0KEN"), "{e}");
}
