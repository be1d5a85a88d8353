//! `notify` from recipes, through the `ferry` binary: the sandbox outbox, end-of-run reports with
//! the final outcome, owners, a real SMTP server (aiosmtpd) configured in ferry.toml with a
//! secret reference, and mail failures that are recorded without failing the run.

use crate::support;

use std::path::{Path, PathBuf};

use support::*;

fn eml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    v.sort();
    v
}

#[test]
fn sandbox_mail_goes_to_the_outbox_with_the_final_outcome() {
    let dir = tempdir();
    let out = run_rhai(
        dir.path(),
        r#"
let dev = oic::instance("dev");
let prod = oic::instance("prod");
let wanted = dev.integrations(#{ latest: true }).filter(|i| i.status == "ACTIVATED");
notify::at_end(wanted, #{ owners: #{ "NOPE": "nope.owner@example.com" } });
try { prod.activate("NOPE|01.00.0000"); } catch (e) { print(`caught ${e.status}`); }
let sent = notify::report(#{ to: ["lead@example.com"], when: "failure" });
print(`now: ${sent.len()} ${sent[0].status}`);
print(`outbox: ${notify::outbox()}`);
"#,
        &["--sandbox"],
        &[],
    );
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the failed activation fails the run\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("now: 1 sent"), "{stdout}");
    let outbox = dir.path().join(".ferry/sandbox/outbox");
    assert!(
        stdout.contains(&format!(
            "outbox: {}",
            outbox.canonicalize().unwrap().display()
        )) || stdout.contains(&format!(
            "outbox: {}",
            std::path::absolute(&outbox).unwrap().display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("written to "),
        "the run says where the mail went: {stdout}"
    );
    let files = eml_files(&outbox);
    // lead (now), ops admin (at end), the NOPE owner (at end).
    assert_eq!(files.len(), 3, "{files:?}\n{stdout}");
    let all: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let admin = all
        .iter()
        .find(|t| t.contains("To: ops@sandbox.local"))
        .expect("the admins' message at the end");
    assert!(admin.contains("Subject: [ferry] FAILED: r.rhai"), "{admin}");
    assert!(admin.contains("NOPE|01.00.0000"), "{admin}");
    let owner = all
        .iter()
        .find(|t| t.contains("To: nope.owner@example.com"))
        .expect("the owner's message");
    assert!(!owner.contains("To: ops@sandbox.local"));
    // The sandbox's secrets are nowhere in the mail.
    for t in &all {
        assert!(!t.contains("client_secret"));
    }
    // Each message is a recorded notify step.
    let j = journal_of(dir.path());
    assert_eq!(
        j.matches("\"stage\":\"notify\",\"status\"").count(),
        3,
        "{j}"
    );
}

#[test]
fn when_failure_sends_nothing_for_a_clean_run_and_dry_run_plans() {
    let dir = tempdir();
    let out = run_rhai(
        dir.path(),
        r#"notify::at_end(#{ when: "failure" });
let r = notify::report(#{ to: ["a@example.com"] });
print(`status ${r[0].status}`);
try { notify::report(#{ to: "a@example.com", cc: "b@example.com" }); } catch (e) { print(`refused: ${e.message}`); }
try { notify::at_end([], #{ source: "dev" }); } catch (e) { print(`refused: ${e.message}`); }
"#,
        &["--sandbox", "--dry-run"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("status planned"), "{stdout}");
    // Unknown options are refused with the verb and the key, `source` among the known ones.
    assert!(
        stdout.contains("refused: notify: unknown option `cc`, expected one of `to`, `owners`, `when`, `mail`, `webhook`, `source`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("refused: `source` must be an instance"),
        "{stdout}"
    );
    assert!(eml_files(&dir.path().join(".ferry/sandbox/outbox")).is_empty());
}

#[test]
fn a_mail_server_that_is_down_does_not_fail_the_run() {
    let dir = tempdir();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.path().join("ferry.toml"),
        format!(
            "[mail]\nhost = \"127.0.0.1\"\nport = {port}\nusername = \"alice\"\npassword = \"env:FERRY_TEST_SMTP_PW\"\nadmins = [\"ops@example.com\"]\ntimeout_secs = 5\n"
        ),
    )
    .unwrap();
    let out = run_rhai(
        dir.path(),
        "notify::at_end(#{});\nlet r = notify::report(#{});\nprint(`status ${r[0].status}`);\n",
        &["--retry-base-ms", "5"],
        &[("FERRY_TEST_SMTP_PW", "pw-that-must-not-leak-123")],
    );
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("status failed"), "{stdout}");
    assert!(
        stdout.contains("warning: notification to ops@example.com not sent: SMTP 127.0.0.1"),
        "{stdout}"
    );
    let j = journal_of(dir.path());
    assert_eq!(
        j.matches("\"stage\":\"notify\",\"status\"").count(),
        2,
        "{j}"
    );
    assert!(j.contains("\"status\":\"failed\""));
    assert!(j.contains("\"outcome\":\"ok\""), "{j}");
    for t in [&stdout, &stderr, &j] {
        assert!(!t.contains("pw-that-must-not-leak-123"));
    }
}

#[test]
fn configured_smtp_with_starttls_and_auth_delivers() {
    let vars = [
        "TEST_SMTP_HOST",
        "TEST_SMTP_PORT",
        "TEST_SMTP_USER",
        "TEST_SMTP_PASS",
        "TEST_SMTP_MAILDIR",
        "TEST_SMTP_CA",
    ];
    let v: Vec<Option<String>> = vars.iter().map(|k| std::env::var(k).ok()).collect();
    if v.iter().any(Option::is_none) {
        if std::env::var_os("CI").is_some() || std::env::var_os("FERRY_REQUIRE_SERVICES").is_some()
        {
            panic!(
                "TEST_SMTP_* is not set but CI/FERRY_REQUIRE_SERVICES is: run `bash .ci/services.sh && . /srv/ocitest/env`"
            );
        }
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIP notify_script::configured_smtp: TEST_SMTP_* not set; run `bash .ci/services.sh && . /srv/ocitest/env`"
        );
        return;
    }
    let v: Vec<String> = v.into_iter().flatten().collect();
    let dir = tempdir();
    let marker = format!("M{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff);
    std::fs::write(
        dir.path().join("ferry.toml"),
        format!(
            "[mail]\nhost = \"{}\"\nport = {}\ntls = \"starttls\"\nusername = \"{}\"\npassword = \"env:FERRY_SMTP_PW\"\nca_file = \"{}\"\nfrom = \"ferry <ferry@example.com>\"\nadmins = [\"{marker}@example.com\"]\n",
            v[0], v[1], v[2], v[5]
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("r.rhai"),
        "let r = notify::report(#{});\nprint(`status ${r[0].status}`);\n",
    )
    .unwrap();
    let out = ferry(dir.path(), &["run", "r.rhai"], &[("FERRY_SMTP_PW", &v[3])]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("status sent"), "{stdout}");
    // No waiting: the sink writes the message into `new/` before it answers 250 to DATA, and
    // ferry's process has exited, so a sent mail is already on disk.
    let newdir = Path::new(&v[4]).join("new");
    let found = std::fs::read_dir(&newdir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains(&marker)));
    let msg = std::fs::read_to_string(found.expect("the message arrived")).unwrap();
    assert!(msg.contains(&format!("To: {marker}@example.com")));
    assert!(
        msg.contains("Subject: [ferry] OK: r.rhai - 0 artifact(s) ok"),
        "{msg}"
    );
    assert!(!msg.contains(&v[3]), "no secret in the message");
}

#[test]
fn webhook_from_the_config_gets_the_summary_and_chat_text() {
    use std::sync::{Arc, Mutex};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let g = got.clone();
    let addr = rt.block_on(async move {
        let app = axum::Router::new().route(
            "/hook/S3CRET-PATH",
            axum::routing::post(move |b: axum::Json<serde_json::Value>| {
                let g = g.clone();
                async move {
                    g.lock().unwrap().push(b.0);
                    "ok"
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        addr
    });
    let dir = tempdir();
    std::fs::write(
        dir.path().join("ferry.toml"),
        "[mail]\nwebhook = \"env:FERRY_TEST_HOOK\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("r.rhai"),
        "notify::webhook(\"migration started\");\nnotify::at_end(#{ mail: false, webhook: true });\n",
    )
    .unwrap();
    let url = format!("http://{addr}/hook/S3CRET-PATH");
    let out = ferry(dir.path(), &["run", "r.rhai"], &[("FERRY_TEST_HOOK", &url)]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0]["text"], "migration started");
    assert!(
        got[1]["text"]
            .as_str()
            .unwrap()
            .starts_with("[ferry] OK: r.rhai - 0 artifact(s) ok"),
        "{got:?}"
    );
    assert_eq!(got[1]["outcome"], "ok");
    let j = journal_of(dir.path());
    assert!(
        !j.contains("S3CRET-PATH")
            && !stdout.contains("S3CRET-PATH")
            && !stderr.contains("S3CRET-PATH")
    );
}
