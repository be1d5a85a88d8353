//! The vault test services, shared by `vault_sftp.rs`, `vault_s3.rs` and `vault_nightly.rs`: the
//! loopback sshd (`TEST_SFTP_*`) and Garage (`TEST_S3_*`), both started by `.ci/services.sh`
//! (`. /srv/ocitest/env` sets the variables).
//!
//! A missing service fails the test, unless `FERRY_ALLOW_SKIP=1` outside CI (then it prints SKIP).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use ferry::config::Secret;
use ferry::vault::{S3Config, SftpConfig};

fn var(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|s| !s.is_empty())
}

/// `None` (after a loud SKIP line) when skipping is allowed; a panic otherwise.
fn missing<T>(what: &str, test: &str) -> Option<T> {
    let allow = std::env::var_os("FERRY_ALLOW_SKIP").is_some_and(|v| v == "1")
        && std::env::var_os("CI").is_none()
        && std::env::var_os("FERRY_REQUIRE_SERVICES").is_none();
    if !allow {
        panic!(
            "{what} is not set: start the test services with `bash .ci/services.sh && . /srv/ocitest/env` (or set FERRY_ALLOW_SKIP=1 to skip)"
        );
    }
    // Written to the real stderr (not captured by the test harness), so it shows.
    let _ = writeln!(
        std::io::stderr(),
        "SKIP {test}: {what} not set; run `bash .ci/services.sh && . /srv/ocitest/env` to test against the real server"
    );
    None
}

/// The loopback sshd.
#[derive(Clone, Debug)]
pub struct SftpEnv {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub dir: String,
    pub key: PathBuf,
    pub known_hosts: PathBuf,
    pub rsa_key: Option<PathBuf>,
    pub rsa_passphrase: Option<String>,
}

fn sftp_vars() -> Option<SftpEnv> {
    Some(SftpEnv {
        host: var("TEST_SFTP_HOST")?,
        port: var("TEST_SFTP_PORT")?
            .parse()
            .expect("TEST_SFTP_PORT is a port number"),
        user: var("TEST_SFTP_USER")?,
        dir: var("TEST_SFTP_DIR")?,
        key: var("TEST_SFTP_KEY")?.into(),
        known_hosts: var("TEST_SFTP_KNOWN_HOSTS")?.into(),
        rsa_key: var("TEST_SFTP_RSA_KEY").map(PathBuf::from),
        rsa_passphrase: var("TEST_SFTP_RSA_PASSPHRASE"),
    })
}

/// The sshd's settings; `None` only when the test may be skipped (see the module docs).
pub fn sftp_env(test: &str) -> Option<SftpEnv> {
    sftp_vars().or_else(|| missing("TEST_SFTP_*", test))
}

/// The S3-compatible server (Garage).
#[derive(Clone, Debug)]
pub struct S3Env {
    pub endpoint: String,
    pub bucket: String,
    pub key_id: String,
    pub secret: String,
    pub region: String,
}

fn s3_vars() -> Option<S3Env> {
    Some(S3Env {
        endpoint: var("TEST_S3_ENDPOINT")?,
        bucket: var("TEST_S3_BUCKET")?,
        key_id: var("TEST_S3_KEY_ID")?,
        secret: var("TEST_S3_SECRET")?,
        region: var("TEST_S3_REGION").unwrap_or_else(|| "garage".into()),
    })
}

/// Garage's settings; `None` only when the test may be skipped (see the module docs).
pub fn s3_env(test: &str) -> Option<S3Env> {
    s3_vars().or_else(|| missing("TEST_S3_*", test))
}

/// A name no other test uses (`prefix-<48 random bits>`).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

/// An SFTP store config for `root` on the test sshd (10 s timeout).
pub fn sftp_config(e: &SftpEnv, root: &str) -> SftpConfig {
    let mut c = SftpConfig::new(e.host.clone(), e.user.clone(), root.to_string());
    c.port = e.port;
    c.identity_file = Some(e.key.clone());
    c.known_hosts = e.known_hosts.clone();
    c.timeout = Duration::from_secs(10);
    c
}

/// An S3 store config for `prefix` in the test bucket (30 s timeout).
pub fn s3_config(e: &S3Env, prefix: &str) -> S3Config {
    let mut c = S3Config::new(e.bucket.clone(), prefix.to_string());
    c.endpoint = Some(e.endpoint.clone());
    c.region = e.region.clone();
    c.path_style = true;
    c.access_key_id = Some(Secret::new(e.key_id.clone()));
    c.secret_access_key = Some(Secret::new(e.secret.clone()));
    c.timeout = Duration::from_secs(30);
    c
}

/// The `[vaults.NAME]` settings (TOML lines after the table header) of a fresh SFTP vault.
pub fn sftp_vault_toml(e: &SftpEnv) -> String {
    // A relative TEST_SFTP_DIR is below the login folder (`/~/`).
    let dir = match e.dir.strip_prefix('/') {
        Some(abs) => format!("/{abs}"),
        None => format!("/~/{}", e.dir),
    };
    format!(
        "url = \"sftp://{}@{}:{}{dir}/{}\"\nidentity_file = \"{}\"\nknown_hosts = \"{}\"\n",
        e.user,
        e.host,
        e.port,
        unique("v"),
        e.key.display(),
        e.known_hosts.display()
    )
}

/// The `[vaults.NAME]` settings of a fresh S3 vault (credentials read from `TEST_S3_*`).
pub fn s3_vault_toml(e: &S3Env) -> String {
    format!(
        "url = \"s3://{}/{}\"\nendpoint = \"{}\"\nregion = \"{}\"\naccess_key_id = \"env:TEST_S3_KEY_ID\"\nsecret_access_key = \"env:TEST_S3_SECRET\"\n",
        e.bucket,
        unique("v"),
        e.endpoint,
        e.region
    )
}
