//! The configuration file (`ferry.toml`): named OIC instances, vaults, mail, and script settings.
//!
//! Looked up as `--config FILE`, then `$FERRY_CONFIG`, then `./ferry.toml`. Secrets are references
//! (`env:VAR`, `file:PATH`) resolved when the config is loaded; their values are wrapped in
//! [`Secret`] and never printed. Every error names the file, the key and what is wrong.

pub mod ledger;
mod raw;
pub mod secret;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use ledger::{LedgerConfig, PgLedger, ServeConfig, SslMode};
pub use secret::{Secret, SecretError, SecretRef};

/// A configuration error: the file, the dotted key, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read the config file: {reason}")]
    Read { file: String, reason: String },
    #[error("{file}: not valid TOML: {reason}")]
    Syntax { file: String, reason: String },
    #[error("{file}: `{key}`: {problem}")]
    Key {
        file: String,
        key: String,
        problem: String,
    },
    #[error(
        "no config file: pass --config FILE, set FERRY_CONFIG, create ./ferry.toml, or use --sandbox"
    )]
    NotFound,
    /// A setting a verb needs is not configured (the message says which and where).
    #[error("{0}")]
    Missing(String),
}

/// OIC generation: Gen2 (the host is the instance) or OIC 3 (design host + `integrationInstance`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Generation {
    Gen2,
    Gen3,
}

impl Generation {
    pub fn number(self) -> i64 {
        match self {
            Generation::Gen2 => 2,
            Generation::Gen3 => 3,
        }
    }
}

/// How ferry authenticates against an instance.
#[derive(Clone, Debug)]
pub enum Auth {
    /// OAuth 2.0 client credentials against the identity domain's token endpoint.
    ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: Secret,
        scope: String,
    },
    /// HTTP Basic (Gen2 only).
    Basic { username: String, password: Secret },
    /// OAuth 2.0 JWT user assertion (`jwt_user`, `jwt_private_key`, `jwt_key_id`).
    JwtUserAssertion(Box<JwtAssertion>),
}

/// The JWT user-assertion grant of an instance: ferry signs an assertion for `user` with the
/// private key whose certificate is uploaded to the confidential application under `key_id`, and
/// trades it for an access token.
#[derive(Clone, Debug)]
pub struct JwtAssertion {
    pub token_url: String,
    pub client_id: String,
    /// Client authentication with the secret; without it, a client assertion signed with the same
    /// key.
    pub client_secret: Option<Secret>,
    pub scope: String,
    /// The identity-domain user the assertion names (`sub`).
    pub user: String,
    /// The RSA private key in PEM (`jwt_private_key`, a secret reference).
    pub private_key: Secret,
    /// The certificate alias in the confidential application (`kid`).
    pub key_id: String,
}

/// One `[instances.NAME]` table.
#[derive(Clone, Debug)]
pub struct InstanceProfile {
    pub name: String,
    /// Developer-API base URL, without a trailing slash (`https://host`).
    pub base_url: String,
    pub generation: Generation,
    /// OIC 3 service instance name, sent as `integrationInstance` on every call.
    pub integration_instance: Option<String>,
    pub auth: Auth,
    /// Per-request timeout in seconds.
    pub timeout_secs: u64,
    /// Limits on reading this instance's answers.
    pub reads: ReadLimits,
}

/// The limits on reading an instance's answers (`max_json_mib`, `download_stall_secs`,
/// `download_deadline_secs` in `[instances.NAME]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimits {
    /// Largest JSON answer, in MiB (default 32).
    pub max_json_mib: u64,
    /// A download stalls when less than 1 KiB arrives in this many seconds (default: the request
    /// timeout, at most 60).
    pub download_stall_secs: Option<u64>,
    /// No download takes longer than this many seconds (default 3600).
    pub download_deadline_secs: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_json_mib: 32,
            download_stall_secs: None,
            download_deadline_secs: 3600,
        }
    }
}

/// Timings of every run (`[run]`); `None` keeps the default. `--retry-base-ms` and
/// `--resume-grace-ms` override them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunSettings {
    /// The first retry delay in milliseconds (`retry_base_ms`, default 1000).
    pub retry_base_ms: Option<u64>,
    /// How long `--resume` waits for an import a killed run sent, in milliseconds
    /// (`resume_grace_ms`, default 20000).
    pub resume_grace_ms: Option<u64>,
}

/// One `[vaults.NAME]` table.
#[derive(Clone, Debug)]
pub struct VaultProfile {
    pub name: String,
    /// `file:///abs/path` or `sftp://user@host:port/path`.
    pub url: String,
    /// The whole table, for the store and encryption settings.
    pub settings: VaultSettings,
    /// Where the config file lives (relative paths in settings are resolved against it).
    pub base_dir: PathBuf,
}

/// The settings of one `[vaults.NAME]` table. Secret references (`passphrase`, `password`,
/// `passphrase_secret`, `identity`) are kept as written and resolved when the vault is opened, so
/// a machine that only backs up needs no restore key.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSettings {
    /// `file:///abs/path`, `sftp://user@host:port/path` or `s3://bucket/prefix`.
    pub url: String,
    /// SFTP private key (ed25519 or RSA); `~/` and relative paths are resolved.
    pub identity_file: Option<String>,
    /// The SFTP key's passphrase (a secret reference).
    pub passphrase: Option<String>,
    /// SFTP password (a secret reference).
    pub password: Option<String>,
    /// OpenSSH known_hosts file (default `~/.ssh/known_hosts`).
    pub known_hosts: Option<String>,
    /// Accept a host key that known_hosts does not list (testing only).
    pub accept_unknown_host_keys: Option<bool>,
    /// Connect and I/O timeout in seconds.
    pub timeout_secs: Option<i64>,
    /// age public keys to encrypt to (a list, or one key as a string).
    #[serde(default, deserialize_with = "one_or_many")]
    pub recipients: Option<Vec<String>>,
    /// Encrypt with a passphrase instead (a secret reference).
    pub passphrase_secret: Option<String>,
    /// The age identity that decrypts (`file:PATH`, `env:VAR` or a path).
    pub identity: Option<String>,
    /// S3: the service endpoint (`https://NAMESPACE.compat.objectstorage.REGION.oraclecloud.com`
    /// for OCI; none for AWS S3).
    pub endpoint: Option<String>,
    /// S3: the signing region (`us-east-1`, `eu-frankfurt-1`...); default `us-east-1`.
    pub region: Option<String>,
    /// S3: path-style requests (`ENDPOINT/BUCKET/KEY`); default true with an `endpoint`, false
    /// on AWS.
    pub path_style: Option<bool>,
    /// S3: access key id (a secret reference).
    pub access_key_id: Option<String>,
    /// S3: secret access key (a secret reference).
    pub secret_access_key: Option<String>,
    /// S3: session token for temporary credentials (a secret reference).
    pub session_token: Option<String>,
    /// S3: multipart part size in MiB (at least 5, default 8).
    pub part_size_mb: Option<i64>,
}

/// A string or a list of strings, read as a list.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged, expecting = "a list of age public keys (\"age1...\")")]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(Some(match serde::Deserialize::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    }))
}

/// The `[mail]` table.
#[derive(Clone, Debug, Default)]
pub struct MailProfile {
    pub admins: Vec<String>,
    /// The parsed SMTP settings (absent when `host` is not set: webhook or outbox only).
    pub smtp: Option<SmtpProfile>,
    /// The sender (`from = "ferry <ferry@example.com>"`; default `ferry@localhost`).
    pub from: Option<String>,
    /// Write messages as `.eml` files into this folder instead of sending them (`outbox = "DIR"`).
    pub outbox: Option<PathBuf>,
    /// Webhook channel (`webhook = "URL"` or a secret reference, since such URLs carry tokens).
    pub webhook: Option<WebhookProfile>,
}

/// How the SMTP connection is secured (`[mail] tls`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// `starttls` (default; port 587): plain connection upgraded with STARTTLS, which is required.
    StartTls,
    /// `tls` (port 465): TLS from the first byte.
    Implicit,
    /// `none`: no encryption (only for a relay on loopback).
    None,
}

/// The SMTP part of `[mail]`.
#[derive(Clone, Debug)]
pub struct SmtpProfile {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Connect, command and data timeout in seconds (`timeout_secs`, default 30).
    pub timeout_secs: u64,
    /// An extra PEM certificate to trust (`ca_file`), for a relay with a private certificate.
    pub ca_file: Option<PathBuf>,
    /// `accept_invalid_certs = true`: do not check the server's certificate (testing only).
    pub accept_invalid_certs: bool,
}

/// The webhook part of `[mail]` (a JSON POST for chat tools).
#[derive(Clone, Debug)]
pub struct WebhookProfile {
    pub url: Secret,
    pub timeout_secs: u64,
}

/// One `[identity.NAME]` table: an identity domain and the administrator application ferry uses
/// to grant OIC roles (SCIM). Not the OIC application: granting roles needs an admin app role.
#[derive(Clone, Debug)]
pub struct IdentityProfile {
    pub name: String,
    /// Identity domain URL (`https://idcs-<guid>.identity.oraclecloud.com`), no trailing slash.
    pub url: String,
    /// Token endpoint (default `<url>/oauth2/v1/token`).
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Default `urn:opc:idm:__myscopes__`.
    pub scope: String,
    /// OIC instance name -> the OIC application in this domain (its display name, e.g.
    /// `OICINST_prod`, or its id) (`[identity.NAME.apps]`).
    pub apps: BTreeMap<String, String>,
    pub timeout_secs: u64,
}

/// The whole configuration.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// The file it came from (`<sandbox>` for the embedded defaults).
    pub file: String,
    pub instances: BTreeMap<String, InstanceProfile>,
    pub vaults: BTreeMap<String, VaultProfile>,
    pub mail: Option<MailProfile>,
    /// Identity domains (`[identity.NAME]`), for granting roles.
    pub identities: BTreeMap<String, IdentityProfile>,
    /// Extra module folders for `import` (`[script] lib_paths`).
    pub lib_paths: Vec<PathBuf>,
    /// Where runs and reports are written (`[run] dir`, default `.ferry`).
    pub state_dir: PathBuf,
    /// Retry and resume timings (`[run]`).
    pub run: RunSettings,
    /// Where the run ledger lives (`[ledger]`; default: `<run dir>/ledger.db`).
    pub ledger: LedgerConfig,
    /// The dashboard of `ferry serve` (`[serve]`).
    pub serve: ServeConfig,
    /// Every secret value loaded, so that output can be scrubbed as a last line of defence.
    pub secrets: Vec<Secret>,
}

impl Config {
    /// Finds and loads the config: explicit path, then `$FERRY_CONFIG`, then `./ferry.toml`.
    pub fn discover(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        if let Some(p) = explicit {
            return Config::load(p);
        }
        if let Ok(p) = std::env::var("FERRY_CONFIG")
            && !p.is_empty()
        {
            return Config::load(Path::new(&p));
        }
        let local = Path::new("ferry.toml");
        if local.exists() {
            return Config::load(local);
        }
        Err(ConfigError::NotFound)
    }

    /// Loads one file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Config::parse(&text, &file, &base)
    }

    /// Parses config text. `file` is only used in messages; `base` resolves relative paths.
    pub fn parse(text: &str, file: &str, base: &Path) -> Result<Config, ConfigError> {
        let raw = raw::read(text, file)?;
        raw::Check {
            file,
            base,
            secrets: vec![],
            text,
        }
        .config(raw)
    }

    /// An error about `key` of this config, naming the file and the key's line (read from the
    /// file when it can be); for settings checked outside this module (vault settings).
    pub fn key_error(&self, key: &str, problem: &str) -> ConfigError {
        let line = std::fs::read_to_string(&self.file)
            .ok()
            .and_then(|t| raw::key_line(&t, key))
            .map(|n| format!(" (line {n})"))
            .unwrap_or_default();
        ConfigError::Key {
            file: self.file.clone(),
            key: key.to_string(),
            problem: format!("{problem}{line}"),
        }
    }

    /// The profile called `name`, or an error listing the known ones.
    pub fn instance(&self, name: &str) -> Result<&InstanceProfile, ConfigError> {
        self.instances.get(name).ok_or_else(|| ConfigError::Key {
            file: self.file.clone(),
            key: format!("instances.{name}"),
            problem: format!(
                "no such instance (configured: {})",
                join_names(self.instances.keys())
            ),
        })
    }

    /// The vault called `name`, or an error listing the known ones.
    pub fn vault(&self, name: &str) -> Result<&VaultProfile, ConfigError> {
        self.vaults.get(name).ok_or_else(|| ConfigError::Key {
            file: self.file.clone(),
            key: format!("vaults.{name}"),
            problem: format!(
                "no such vault (configured: {})",
                join_names(self.vaults.keys())
            ),
        })
    }

    /// The identity domain called `name`, or an error listing the known ones.
    pub fn identity(&self, name: &str) -> Result<&IdentityProfile, ConfigError> {
        self.identities.get(name).ok_or_else(|| ConfigError::Key {
            file: self.file.clone(),
            key: format!("identity.{name}"),
            problem: format!(
                "no such identity domain (configured: {})",
                join_names(self.identities.keys())
            ),
        })
    }

    /// The identity domain that serves the OIC instance `instance` (whose `apps` names it).
    pub fn identity_for_instance(&self, instance: &str) -> Option<&IdentityProfile> {
        self.identities
            .values()
            .find(|i| i.apps.contains_key(instance))
    }

    /// Replaces every known secret value in `text` with `***`.
    pub fn scrub(&self, text: &str) -> String {
        scrub(text, &self.secrets)
    }
}

/// Replaces every secret value in `text` with `***`, in every form the process has registered
/// (URL-encoded, base64, Basic credentials, tokens; short ones as whole words).
pub fn scrub(text: &str, secrets: &[Secret]) -> String {
    secret::scrub(text, secrets)
}

fn join_names<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = names.map(String::as_str).collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, "ferry.toml", Path::new("/cfg"))
    }

    #[test]
    fn full_instance() {
        let c = parse(
            r#"
[instances.dev]
base_url = "https://design.integration.eu-frankfurt-1.ocp.oraclecloud.com/"
generation = 3
integration_instance = "dev-abc-fr"
token_url = "https://idcs-1.identity.oraclecloud.com/oauth2/v1/token"
client_id = "cid"
client_secret = "inline-secret"
scope = "https://AUD.integration.eu-frankfurt-1.ocp.oraclecloud.com:443/ic/api/"
"#,
        )
        .unwrap();
        let i = c.instance("dev").unwrap();
        assert_eq!(
            i.base_url,
            "https://design.integration.eu-frankfurt-1.ocp.oraclecloud.com"
        );
        assert_eq!(i.generation, Generation::Gen3);
        assert_eq!(c.scrub("x inline-secret y"), "x *** y");
    }

    #[test]
    fn errors_name_file_and_key() {
        let e = parse("[instances.dev]\ngeneration = 2\nusername='u'\npassword='pppp'\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "ferry.toml: `instances.dev.base_url`: missing (required) (line 1)"
        );
        let e = parse("[instances.dev]\nbase_url = 'not a url'\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("ferry.toml: `instances.dev.base_url`: not a valid URL"),
            "{e}"
        );
        let e = parse("[instances.dev]\nbase_url='https://h'\ngeneration=2\ntoken_url='https://t'\nclient_id='c'\nscope='s'\nclient_secret='env:FERRY_UNSET_X'\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "ferry.toml: `instances.dev.client_secret`: environment variable `FERRY_UNSET_X` is not set (from env:FERRY_UNSET_X) (line 7)"
        );
        let e = parse("[vaults.v]\nurl='ftp://x'\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`vaults.v.url`"), "{e}");
    }

    #[test]
    fn jwt_user_assertion_keys() {
        let base = "[instances.p]\nbase_url='https://h'\nintegration_instance='i'\ntoken_url='https://t'\nclient_id='c'\nscope='s'\njwt_user='u@example.com'\njwt_private_key='PEM'\n";
        let e = parse(base).unwrap_err().to_string();
        assert_eq!(
            e,
            "ferry.toml: `instances.p.jwt_key_id`: missing (required) (line 1)"
        );
        let c = parse(&format!("{base}jwt_key_id='alias'\n")).unwrap();
        match &c.instance("p").unwrap().auth {
            Auth::JwtUserAssertion(j) => {
                assert_eq!(
                    (j.user.as_str(), j.key_id.as_str()),
                    ("u@example.com", "alias")
                );
                assert!(j.client_secret.is_none());
                assert_eq!(
                    format!("{j:?}").matches("PEM").count(),
                    0,
                    "the key is never printed"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn serde_errors_read_like_ferrys() {
        let e = |s: &str| parse(s).unwrap_err().to_string();
        assert_eq!(
            e("[instances.dev]\nbase_url='https://h'\ncolour='red'\n"),
            "ferry.toml: `instances.dev.colour`: unknown key (known: base_url, generation, integrationInstance, integration_instance, token_url, client_id, client_secret, scope, username, password, timeout_secs, max_json_mib, download_stall_secs, download_deadline_secs, jwt_user, jwt_private_key, jwt_key_id) (line 3)"
        );
        assert!(
            e("[colours]\nx=1\n").starts_with("ferry.toml: `colours`: unknown section (known: instances, vaults, mail, identity, script, run, ledger, serve)"),
            "{}",
            e("[colours]\nx=1\n")
        );
        let t = e("[mail]\nport='x'\n");
        assert!(
            t.starts_with("ferry.toml: `mail.port`: expected i64, found string"),
            "{t}"
        );
        let t = e("[vaults.v]\nurl='file:///x'\nrecipient=['a']\n");
        assert!(
            t.starts_with(
                "ferry.toml: `vaults.v.recipient`: unknown key (known: url, identity_file"
            ),
            "{t}"
        );
        let t = e("[vaults.v]\nurl='file:///x'\nrecipients=1\n");
        assert!(
            t.contains("`vaults.v.recipients`: a list of age public keys"),
            "{t}"
        );
        let t = e(
            "[identity.x]\nurl='https://i'\nclient_id='c'\nclient_secret='s'\n[identity.x.apps]\nprod=1\n",
        );
        assert!(
            t.starts_with(
                "ferry.toml: `identity.x.apps.prod`: expected a string, found integer `1`"
            ),
            "{t}"
        );
        let c = parse("[vaults.v]\nurl='file:///x'\nrecipients='age1x'\n").unwrap();
        assert_eq!(
            c.vault("v").unwrap().settings.recipients,
            Some(vec!["age1x".into()])
        );
    }

    #[test]
    fn mail_and_identity_profiles() {
        let c = parse(
            r#"
[mail]
host = "smtp.example.com"
username = "ferry"
password = "mail-pass-xyz"
from = "ferry <ferry@example.com>"
admins = ["ops@example.com"]
webhook = "https://hooks.example.com/T/secret-token"

[identity.corp]
url = "https://idcs-1.identity.oraclecloud.com/"
client_id = "admin-app"
client_secret = "idcs-secret-xyz"
[identity.corp.apps]
prod = "OICINST_prod"
"#,
        )
        .unwrap();
        let m = c.mail.as_ref().unwrap();
        let s = m.smtp.as_ref().unwrap();
        assert_eq!(
            (s.port, s.tls, s.timeout_secs),
            (587, SmtpTls::StartTls, 30)
        );
        assert_eq!(m.admins, ["ops@example.com"]);
        assert_eq!(
            m.webhook.as_ref().unwrap().url.expose(),
            "https://hooks.example.com/T/secret-token"
        );
        let i = c.identity("corp").unwrap();
        assert_eq!(
            i.token_url,
            "https://idcs-1.identity.oraclecloud.com/oauth2/v1/token"
        );
        assert_eq!(i.scope, "urn:opc:idm:__myscopes__");
        assert_eq!(c.identity_for_instance("prod").unwrap().name, "corp");
        assert!(c.identity_for_instance("dev").is_none());
        assert_eq!(
            c.scrub("mail-pass-xyz idcs-secret-xyz https://hooks.example.com/T/secret-token"),
            "*** *** ***"
        );
        let e = parse("[mail]\nhost='h'\ntls='ssl'\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "ferry.toml: `mail.tls`: expected `starttls`, `tls` or `none`, got `ssl` (line 3)"
        );
        let e = parse("[mail]\nhost='h'\nusername='u'\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "ferry.toml: `mail.password`: `username` and `password` go together (line 1)"
        );
        let e = parse("[identity.x]\nurl='https://i'\nclient_id='c'\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "ferry.toml: `identity.x.client_secret`: missing (required) (line 1)"
        );
        let e = c.identity("nope").unwrap_err().to_string();
        assert!(e.contains("configured: corp"), "{e}");
    }

    #[test]
    fn run_timings_and_read_limits_are_settings() {
        let inst =
            "[instances.g]\nbase_url='https://h'\ngeneration=2\nusername='u'\npassword='pppp'\n";
        let c = parse(inst).unwrap();
        assert_eq!(c.run, RunSettings::default());
        assert_eq!(c.instance("g").unwrap().reads, ReadLimits::default());
        let c = parse(&format!(
            "[run]\nretry_base_ms = 5\nresume_grace_ms = 3000\n{inst}max_json_mib = 64\ndownload_stall_secs = 2\ndownload_deadline_secs = 9\n"
        ))
        .unwrap();
        assert_eq!(c.run.retry_base_ms, Some(5));
        assert_eq!(c.run.resume_grace_ms, Some(3000));
        let r = c.instance("g").unwrap().reads;
        assert_eq!(
            r,
            ReadLimits {
                max_json_mib: 64,
                download_stall_secs: Some(2),
                download_deadline_secs: 9,
            }
        );
        let e = parse("[run]\nretry_base_ms = -1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`run.retry_base_ms`"), "{e}");
        let e = parse(&format!("{inst}download_stall_secs = 0\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`instances.g.download_stall_secs`"), "{e}");
        let e = parse("[run]\nretry_base = 5\n").unwrap_err().to_string();
        assert!(e.contains("retry_base"), "{e}");
    }
}
