//! Public-script compatibility: tests/sim/curl_client.sh (curl + jq) and tests/sim/requests_client.py
//! (Python requests) run against the emulator. Without curl/jq/python3+requests the tests are skipped, except
//! when `CI` is set, where they fail.

use crate::support::emulator::{self, spec};

use std::path::Path;
use std::process::Command;

use ferry::sim::{Seed, SimHandle};

fn have(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn require(ok: bool, what: &str) -> bool {
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} is required when CI is set"
        );
        eprintln!("skipping: {what} not available");
    }
    ok
}

/// dev (gen 2, Sample) and prod (OIC 3, target connections).
async fn start() -> SimHandle {
    emulator::start(vec![
        spec("dev", 2, Seed::Sample),
        spec("prod", 3, Seed::TargetConnections),
    ])
    .await
}

fn env(h: &SimHandle, work: &Path) -> Vec<(String, String)> {
    let dev = h.instance("dev").expect("dev");
    let prod = h.instance("prod").expect("prod");
    vec![
        ("GEN2_URL".into(), dev.base_url.clone()),
        ("GEN2_USER".into(), dev.username.clone().unwrap_or_default()),
        ("GEN2_PASS".into(), dev.password.clone().unwrap_or_default()),
        ("GEN3_URL".into(), prod.base_url.clone()),
        (
            "GEN3_II".into(),
            prod.integration_instance.clone().unwrap_or_default(),
        ),
        ("TOKEN_URL".into(), prod.token_url.clone()),
        ("CLIENT_ID".into(), prod.client_id.clone()),
        ("CLIENT_SECRET".into(), prod.client_secret.clone()),
        ("SCOPE".into(), prod.scope.clone()),
        ("WORK".into(), work.display().to_string()),
    ]
}

async fn run(cmd: &str, script: &str) {
    let h = start().await;
    h.set_stamped_exports(true);
    let work = tempfile::tempdir().expect("tempdir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sim")
        .join(script);
    let vars = env(&h, work.path());
    let cmd = cmd.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(cmd)
            .arg(script)
            .envs(vars)
            .output()
            .expect("run script")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "script failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("ALL OK"), "{stdout}");
}

#[tokio::test]
async fn curl_and_jq_like_public_scripts() {
    if !require(
        have("curl", &["--version"]) && have("jq", &["--version"]) && have("unzip", &["-v"]),
        "curl, jq and unzip",
    ) {
        return;
    }
    run("bash", "curl_client.sh").await;
}

#[tokio::test]
async fn python_requests_like_public_scripts() {
    if !require(
        have("python3", &["-c", "import requests"]),
        "python3 with requests",
    ) {
        return;
    }
    run("python3", "requests_client.py").await;
}
