//! Helpers shared by the integration tests: a temporary working folder, running the `ferry`
//! binary, and talking to the emulator over plain HTTP (independently of ferry's client).
#![allow(dead_code)]

pub mod dashboard;
pub mod emulator;
pub mod ledger;
pub mod pg;
pub mod sim;
pub mod vaults;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ferry::sim::SimInstanceInfo;
use serde_json::Value;

/// Runs the built `ferry` binary in `dir` with `args` and extra environment variables.
pub fn ferry(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ferry"));
    c.current_dir(dir)
        .args(args)
        .env_remove("FERRY_CONFIG")
        .env_remove("FERRY_PATH")
        .env("NO_COLOR", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run ferry")
}

/// Writes `source` to `dir/r.rhai` and runs `ferry run r.rhai ARGS` in `dir` with `env`.
pub fn run_rhai(dir: &Path, source: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    std::fs::write(dir.join("r.rhai"), source).expect("write r.rhai");
    let mut all = vec!["run", "r.rhai"];
    all.extend_from_slice(args);
    ferry(dir, &all, env)
}

/// Every run of the ledger in `dir/.ferry` as `ferry runs show ID --json` prints it, one JSON
/// text after the other (to count the steps of a stage).
pub fn journal_of(dir: &Path) -> String {
    let runs = dir.join(".ferry").join("runs");
    let mut out = String::new();
    for e in std::fs::read_dir(runs).expect("runs folder").flatten() {
        let id = e.file_name().to_string_lossy().to_string();
        let o = ferry(dir, &["runs", "show", &id, "--json"], &[]);
        if let Ok(v) = serde_json::from_slice::<Value>(&o.stdout) {
            out.push_str(&serde_json::to_string(&v).unwrap_or_default());
        }
    }
    out
}

/// A run `id` of migrate.rhai by `ops`, started now and still running, neither a dry run nor in
/// the sandbox: the base of a test's run record (change fields with `..run_info(id)`).
pub fn run_info(id: &str) -> ferry::ledger::RunInfo {
    ferry::ledger::RunInfo::started_now(id, "migrate.rhai", "ops")
}

/// An executor over an in-memory record of `info` (a dry run as `info` says), retrying 3 times
/// after 10 to 50 ms.
pub fn memory_executor(info: ferry::ledger::RunInfo) -> ferry::effect::Executor {
    let dry = info.dry_run;
    ferry::effect::Executor::new(
        std::sync::Arc::new(ferry::ledger::RunRecord::in_memory(info)),
        dry,
        ferry::effect::RetryPolicy {
            max_attempts: 3,
            base_delay: std::time::Duration::from_millis(10),
            max_delay: std::time::Duration::from_millis(50),
            budget: std::time::Duration::from_secs(10),
        },
        tokio_util::sync::CancellationToken::new(),
    )
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// A fresh temporary folder.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Every regular file under `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
    }
    out
}

/// A bearer token from the emulator's token endpoint (client credentials, Basic client auth).
pub async fn token(i: &SimInstanceInfo) -> String {
    sim::fetch_token(&reqwest::Client::new(), i).await
}

/// The URL of `path` under `/ic/api/integration/v1` of an emulated instance, with
/// `integrationInstance` where the instance has one.
pub fn api_url(i: &SimInstanceInfo, path: &str) -> String {
    let url = format!("{}/ic/api/integration/v1{path}", i.base_url);
    match &i.integration_instance {
        Some(ii) => format!(
            "{url}{}integrationInstance={ii}",
            if url.contains('?') { '&' } else { '?' }
        ),
        None => url,
    }
}

/// `GET path` (see [`api_url`]) with the bearer token `tok`.
pub async fn api_get(i: &SimInstanceInfo, tok: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(api_url(i, path))
        .bearer_auth(tok)
        .send()
        .await
        .expect("GET")
}

/// `GET /ic/api/integration/v1/integrations` (all pages) as JSON items.
pub async fn list_integrations(i: &SimInstanceInfo) -> Vec<Value> {
    let tok = token(i).await;
    let mut items = vec![];
    let mut offset = 0;
    loop {
        let v: Value = api_get(i, &tok, &format!("/integrations?limit=50&offset={offset}"))
            .await
            .json()
            .await
            .expect("list json");
        let page = v["items"].as_array().cloned().unwrap_or_default();
        offset += page.len();
        items.extend(page);
        if !v["hasMore"].as_bool().unwrap_or(false) {
            break;
        }
    }
    items
}

/// `/integrations/{CODE%7CVERSION}/archive`.
pub fn archive_path(id: &str) -> String {
    format!("/integrations/{}/archive", id.replace('|', "%7C"))
}

/// The bytes of `GET /integrations/{CODE%7CVERSION}/archive`.
pub async fn export_bytes(i: &SimInstanceInfo, id: &str) -> Vec<u8> {
    let tok = token(i).await;
    let r = api_get(i, &tok, &archive_path(id)).await;
    assert_eq!(r.status(), 200, "export {id}");
    r.bytes().await.expect("bytes").to_vec()
}

pub fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// The content digest of archive bytes (entry names and contents, export time stamps left out;
/// see `ferry::vault::content_hash`): what "the same archive" means, as two exports of the same
/// content differ byte for byte, on real OIC and on the emulator.
#[allow(dead_code)]
pub fn content_digest(bytes: &[u8]) -> String {
    let f = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(f.path(), bytes).expect("write archive");
    ferry::vault::content_hash(f.path(), &sha256_hex(bytes)).expect("content digest")
}

/// `scripts/<name>` of this repository.
pub fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
        .display()
        .to_string()
}

/// Runs `scripts/migrate.rhai --sandbox -q` in `dir` (one backup job in the sandbox's file vault).
pub fn sandbox_migrate(dir: &Path) {
    let out = ferry(
        dir,
        &["run", &script("migrate.rhai"), "--sandbox", "-q"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// `ferry vault jobs --sandbox --json` in `dir`.
pub fn sandbox_jobs(dir: &Path) -> Vec<Value> {
    let out = ferry(dir, &["vault", "jobs", "--sandbox", "--json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout)
        .expect("vault jobs --json")
        .as_array()
        .expect("a list of jobs")
        .clone()
}

/// `ferry vault restore JOB --to prod --sandbox --json ARGS` in `dir`.
pub fn sandbox_restore(dir: &Path, job: &str, args: &[&str]) -> Output {
    let mut all = vec![
        "vault",
        "restore",
        job,
        "--to",
        "prod",
        "--sandbox",
        "--json",
    ];
    all.extend_from_slice(args);
    ferry(dir, &all, &[])
}

/// The sandbox file vault's folder in `dir`.
pub fn sandbox_vault(dir: &Path) -> PathBuf {
    dir.join(".ferry/sandbox/vault")
}

/// The manifest of a job of the sandbox vault.
pub fn sandbox_manifest(dir: &Path, job: &str) -> Value {
    let p = sandbox_vault(dir).join(job).join("manifest.json");
    serde_json::from_str(&std::fs::read_to_string(&p).expect("manifest.json")).expect("json")
}
