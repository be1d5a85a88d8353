//! `notify` against a real SMTP server on loopback (aiosmtpd from `.ci/services.sh`: STARTTLS and
//! AUTH required). The messages the server wrote to its Maildir are parsed with Python's `email`
//! package and checked: recipients, subject, the failed artifacts with their root causes, the
//! attachment, and that no secret appears. A wrong password and a server that is down are
//! recorded as failed `notify` steps without failing anything else.
//!
//! Without TEST_SMTP_*: fails when `CI` or `FERRY_REQUIRE_SERVICES` is set, else prints a SKIP line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ferry::artifact::ArtifactKind;
use ferry::config::{Secret, SmtpProfile, SmtpTls};
use ferry::effect::{Executor, RetryPolicy};
use ferry::ledger::{Report, RunInfo, RunRecord, Stage, Step, StepError, StepStatus};
use ferry::notify::{DeliveryStatus, Mailer, Owners, When, compose, deliver};
use tokio_util::sync::CancellationToken;

struct Env {
    host: String,
    port: u16,
    user: String,
    pass: String,
    maildir: PathBuf,
    ca: PathBuf,
}

fn env() -> Option<Env> {
    let v = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
    Some(Env {
        host: v("TEST_SMTP_HOST")?,
        port: v("TEST_SMTP_PORT")?
            .parse()
            .expect("TEST_SMTP_PORT is a port"),
        user: v("TEST_SMTP_USER")?,
        pass: v("TEST_SMTP_PASS")?,
        maildir: v("TEST_SMTP_MAILDIR")?.into(),
        ca: v("TEST_SMTP_CA")?.into(),
    })
}

macro_rules! need_env {
    () => {
        match env() {
            Some(e) => e,
            None => {
                if std::env::var_os("CI").is_some()
                    || std::env::var_os("FERRY_REQUIRE_SERVICES").is_some()
                {
                    panic!(
                        "TEST_SMTP_* is not set but CI/FERRY_REQUIRE_SERVICES is: start the SMTP sink with `bash .ci/services.sh && . /srv/ocitest/env`"
                    );
                }
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIP {}: TEST_SMTP_* not set; run `bash .ci/services.sh && . /srv/ocitest/env` to test against a real SMTP server",
                    module_path!()
                );
                return;
            }
        }
    };
}

fn smtp(e: &Env, pass: &str) -> SmtpProfile {
    SmtpProfile {
        host: e.host.clone(),
        port: e.port,
        tls: SmtpTls::StartTls,
        username: Some(e.user.clone()),
        password: Some(Secret::new(pass.to_string())),
        timeout_secs: 10,
        ca_file: Some(e.ca.clone()),
        accept_invalid_certs: false,
    }
}

fn exec(secrets: Vec<Secret>) -> (Executor, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let info = info(&unique("run"));
    let rec = RunRecord::create(dir.path(), info, secrets).unwrap();
    let policy = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        budget: Duration::from_secs(20),
    };
    (
        Executor::new(Arc::new(rec), false, policy, CancellationToken::new()),
        dir,
    )
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

fn info(id: &str) -> RunInfo {
    RunInfo {
        ended: Some(Utc::now()),
        outcome: Some("failed".into()),
        ..crate::support::run_info(id)
    }
}

fn step(code: &str, stage: Stage, status: StepStatus, err: Option<(u16, &str)>) -> Step {
    Step {
        seq: 0,
        stage,
        kind: ArtifactKind::Integration,
        code: code.into(),
        version: "01.00.0000".into(),
        target: "prod".into(),
        action: stage.as_str().into(),
        reason: None,
        status,
        attempts: 1,
        error: err.map(|(s, m)| StepError {
            kind: "http".into(),
            status: Some(s),
            message: m.into(),
        }),
        sha256: None,
        started: Utc::now(),
        ended: Utc::now(),
    }
}

/// A run: ORDERS ok, HR_SYNC failed on import (412), BILLING failed on activate.
fn sample_report(run_id: &str) -> Report {
    Report::build(
        info(run_id),
        &[
            step("ORDERS", Stage::Export, StepStatus::Ok, None),
            step("ORDERS", Stage::Import, StepStatus::Ok, None),
            step("HR_SYNC", Stage::Export, StepStatus::Ok, None),
            step(
                "HR_SYNC",
                Stage::Import,
                StepStatus::Failed,
                Some((
                    412,
                    "connection HR_DB is a draft: configure it on prod first",
                )),
            ),
            step(
                "BILLING",
                Stage::Activate,
                StepStatus::Failed,
                Some((500, "activation failed: endpoint BILLING_SOAP unreachable")),
            ),
        ],
    )
}

/// The Maildir files whose text contains `marker`. Read once, no waiting: the sink (aiosmtpd's
/// `Mailbox`) writes a message into `new/` before it answers 250 to DATA, so a message that
/// `deliver` reports sent is already on disk.
/// The sample report of run `run_id`, mailed to ops@example.com through `p` by an executor that
/// knows `secrets`: the executor (its record) and the delivery results.
async fn mail_sample(
    p: &SmtpProfile,
    run_id: &str,
    secrets: Vec<Secret>,
) -> (Executor, Vec<ferry::notify::Delivery>, tempfile::TempDir) {
    let msgs = compose(
        &sample_report(run_id),
        &["ops@example.com".into()],
        None,
        When::Always,
    );
    let (x, d) = exec(secrets);
    let mailer = Mailer::smtp(p, "ferry@example.com").unwrap();
    let res = deliver(&x, &mailer, &msgs).await;
    (x, res, d)
}

fn received(maildir: &Path, marker: &str) -> Vec<PathBuf> {
    std::fs::read_dir(maildir.join("new"))
        .expect("the sink's Maildir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains(marker)))
        .collect()
}

const PARSE: &str = r#"
import email, json, sys
from email import policy
m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=policy.default)
out = {"to": [a.addr_spec for a in m["to"].addresses], "subject": str(m["subject"]),
       "from": str(m["from"]), "rcpt": m.get("X-RcptTo", ""), "text": "", "html": "", "attachments": []}
for part in m.walk():
    if part.is_multipart():
        continue
    fn = part.get_filename()
    if fn:
        out["attachments"].append({"filename": fn, "type": part.get_content_type(),
                                   "content": part.get_content() if part.get_content_maintype() == "text" else ""})
    elif part.get_content_type() == "text/plain":
        out["text"] += part.get_content()
    elif part.get_content_type() == "text/html":
        out["html"] += part.get_content()
print(json.dumps(out))
"#;

/// Parses a received message with Python's `email` package (a real MIME parser).
fn parse(path: &Path) -> serde_json::Value {
    let out = std::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(PARSE)
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "parse {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_and_owners_get_their_messages_over_starttls_with_auth() {
    let e = need_env!();
    let run_id = unique("R");
    let report = sample_report(&run_id);
    let mut owners = Owners::default();
    owners
        .explicit
        .insert("HR_SYNC".into(), "hr.owner@example.com".into());
    owners
        .last_updated_by
        .insert("ORDERS".into(), "orders.dev@example.com".into());
    owners
        .last_updated_by
        .insert("BILLING".into(), "not-an-address".into());
    let msgs = compose(
        &report,
        &["ops@example.com".into(), "lead@example.com".into()],
        Some(&owners),
        When::Always,
    );
    assert_eq!(msgs.len(), 3);

    let secret = Secret::new(e.pass.clone());
    let (x, _d) = exec(vec![secret.clone()]);
    let mailer = Mailer::smtp(&smtp(&e, &e.pass), "ferry <ferry@example.com>").unwrap();
    let res = deliver(&x, &mailer, &msgs).await;
    for r in &res {
        assert_eq!(r.status, DeliveryStatus::Sent, "{r:?}");
    }
    let steps = x.record().steps();
    assert_eq!(steps.len(), 3);
    assert!(
        steps
            .iter()
            .all(|s| s.stage == Stage::Notify && s.status == StepStatus::Ok)
    );

    let files = received(&e.maildir, &run_id);
    assert_eq!(files.len(), 3);
    let parsed: Vec<serde_json::Value> = files.iter().map(|f| parse(f)).collect();
    let mut peers = std::collections::BTreeSet::new();
    for (f, raw) in files.iter().zip(&parsed) {
        let text = std::fs::read_to_string(f).unwrap();
        peers.insert(
            text.lines()
                .find(|l| l.starts_with("X-Peer:"))
                .map(str::to_string),
        );
        assert!(
            !text.contains(&e.pass),
            "the SMTP password leaked into {f:?}"
        );
        assert_eq!(raw["from"], "ferry <ferry@example.com>");
    }
    // Pooled: the messages share sessions. lettre returns a connection to its pool on a spawned
    // task, so whether the next message finds it there races with that task on a loaded machine
    // (an exact count of one failed here under load); asserted: fewer sessions than messages.
    assert!(
        peers.len() < files.len(),
        "the SMTP pool reused a session for the three messages: {peers:?}"
    );
    let admin = parsed
        .iter()
        .find(|m| m["to"].as_array().unwrap().len() == 2)
        .expect("the admin message");
    assert_eq!(
        admin["to"],
        serde_json::json!(["ops@example.com", "lead@example.com"])
    );
    assert_eq!(
        admin["subject"],
        format!("[ferry] FAILED: migrate.rhai - 2 of 3 artifact(s) failed (run {run_id})")
    );
    let text = admin["text"].as_str().unwrap();
    let failed_at = text.find("FAILED (2), root cause first:").expect(text);
    let ok_at = text.find("SUCCEEDED (1):").expect(text);
    assert!(failed_at < ok_at, "failures come first:\n{text}");
    assert!(text.contains(
        "  HR_SYNC|01.00.0000 (integration)\n    import on prod, HTTP 412: connection HR_DB is a draft: configure it on prod first\n"
    ), "{text}");
    assert!(
        text.contains(
            "    activate on prod, HTTP 500: activation failed: endpoint BILLING_SOAP unreachable\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("  ORDERS|01.00.0000 (integration): export ok, import ok\n"),
        "{text}"
    );
    let html = admin["html"].as_str().unwrap();
    assert!(html.contains("<td>HR_SYNC|01.00.0000</td>"), "{html}");
    let att = &admin["attachments"][0];
    assert_eq!(att["filename"], format!("ferry-report-{run_id}.html"));
    assert_eq!(att["type"], "text/html");
    let report_html = att["content"].as_str().unwrap();
    assert!(report_html.contains("connection HR_DB is a draft"));
    assert!(report_html.contains("BILLING_SOAP unreachable"));

    // Each owner gets only their own artifacts.
    let hr = parsed
        .iter()
        .find(|m| m["to"] == serde_json::json!(["hr.owner@example.com"]))
        .expect("the HR owner's message");
    let hr_text = hr["text"].as_str().unwrap();
    assert!(hr_text.contains("HR_SYNC|01.00.0000"));
    assert!(
        !hr_text.contains("ORDERS") && !hr_text.contains("BILLING"),
        "{hr_text}"
    );
    assert!(
        hr["subject"]
            .as_str()
            .unwrap()
            .starts_with("[ferry] FAILED: migrate.rhai - 1 of 1 artifact(s) failed")
    );
    assert!(
        !hr["attachments"][0]["content"]
            .as_str()
            .unwrap()
            .contains("BILLING")
    );
    let orders = parsed
        .iter()
        .find(|m| m["to"] == serde_json::json!(["orders.dev@example.com"]))
        .expect("the ORDERS owner's message (from lastUpdatedBy)");
    assert!(
        orders["subject"]
            .as_str()
            .unwrap()
            .starts_with("[ferry] OK: ")
    );
    assert!(!orders["text"].as_str().unwrap().contains("HR_SYNC"));
    // The envelope recipients are exactly the header recipients.
    assert!(
        orders["rcpt"]
            .as_str()
            .unwrap()
            .contains("orders.dev@example.com")
    );
    assert!(!orders["rcpt"].as_str().unwrap().contains("ops@example.com"));

    // Nothing the run wrote (its folder, the ledger database) holds the password either.
    let run_dir = x.record().dir().unwrap().to_path_buf();
    let state_dir = run_dir
        .parent()
        .and_then(|p| p.parent())
        .unwrap()
        .to_path_buf();
    let mut stack = vec![run_dir, state_dir];
    while let Some(d) = stack.pop() {
        for ent in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = ent.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap_or_default();
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(&e.pass),
                    "password in {}",
                    p.display()
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_recorded_not_retried_and_leaks_nothing() {
    let e = need_env!();
    let wrong = "wrong-pass-7f3a9";
    let run_id = unique("R");
    let (x, res, _d) = mail_sample(&smtp(&e, wrong), &run_id, vec![Secret::new(wrong)]).await;
    assert_eq!(res.len(), 1);
    assert_eq!(res[0].status, DeliveryStatus::Failed);
    let err = res[0].error.clone().unwrap();
    assert!(err.contains("535"), "{err}");
    assert!(!err.contains(wrong));
    let steps = x.record().steps();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].status, StepStatus::Failed);
    assert_eq!(steps[0].attempts, 1, "a refused login is not retried");
    let se = steps[0].error.clone().unwrap();
    assert_eq!(se.kind, "smtp");
    assert_eq!(se.status, Some(535));
    // And nothing arrived (the login was refused, so no DATA was ever sent: nothing to wait for).
    assert!(received(&e.maildir, &run_id).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_is_down_is_retried_then_recorded() {
    let e = need_env!();
    // A loopback port with nothing listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut p = smtp(&e, &e.pass);
    p.port = port;
    let (x, res, _d) = mail_sample(&p, &unique("R"), vec![]).await;
    assert_eq!(res[0].status, DeliveryStatus::Failed);
    let steps = x.record().steps();
    assert_eq!(steps[0].status, StepStatus::Failed);
    assert_eq!(steps[0].attempts, 3, "a refused connection is transient");
    assert!(steps[0].target.contains(&format!("127.0.0.1:{port}")));
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_smtp_is_refused_by_a_server_that_requires_starttls() {
    let e = need_env!();
    let mut p = smtp(&e, &e.pass);
    p.tls = SmtpTls::None;
    p.username = None;
    p.password = None;
    let (_x, res, _d) = mail_sample(&p, &unique("R"), vec![]).await;
    assert_eq!(res[0].status, DeliveryStatus::Failed);
    assert!(
        res[0].error.as_deref().unwrap().contains("530"),
        "{:?}",
        res[0]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_certificate_is_refused() {
    let e = need_env!();
    let mut p = smtp(&e, &e.pass);
    p.ca_file = None;
    let (x, res, _d) = mail_sample(&p, &unique("R"), vec![]).await;
    assert_eq!(res[0].status, DeliveryStatus::Failed);
    assert_eq!(
        x.record().steps()[0].attempts,
        1,
        "TLS failures are not retried: {:?}",
        res[0].error
    );
}
