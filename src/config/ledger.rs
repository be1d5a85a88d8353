//! The `[ledger]` table (where the run ledger lives: the embedded SQLite file by default, or a
//! shared PostgreSQL database) and the `[serve]` table (the dashboard of `ferry serve`).
//!
//! ```toml
//! [ledger]
//! url = "postgres://ferry_writer@db.example.com:5432/ferry"
//! password = "env:FERRY_LEDGER_PASSWORD"   # a secret reference, never in the URL
//! sslmode = "require"                       # disable | prefer (default) | require | verify-full
//! ca_file = "certs/db-ca.pem"               # trust this CA (default: the public web roots)
//! identity = "release-pipeline"             # who runs are recorded as (default: the OS user)
//!
//! [serve]
//! listen = "127.0.0.1:8640"
//! token = "env:FERRY_SERVE_TOKEN"           # the dashboard's access token (a secret reference)
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ConfigError, Secret, SecretRef};

/// How the PostgreSQL connection is encrypted. The server's certificate is always verified
/// (against `ca_file`, else the public web roots) whenever TLS is used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// No TLS (a server on loopback or a private network only).
    Disable,
    /// TLS when the server offers it, plain otherwise.
    #[default]
    Prefer,
    /// TLS or no connection.
    Require,
    /// The same as `require` (ferry always checks the certificate and the host name).
    VerifyFull,
}

/// A shared ledger on PostgreSQL.
#[derive(Clone, Debug)]
pub struct PgLedger {
    /// `postgres://user@host:port/database`, without a password.
    pub url: String,
    pub password: Option<Secret>,
    pub sslmode: SslMode,
    /// A PEM file of certificates to trust for the server.
    pub ca_file: Option<PathBuf>,
    /// Connect timeout, and the bound of every statement, in seconds (default 30).
    pub timeout_secs: u64,
}

/// The `[ledger]` table.
#[derive(Clone, Debug, Default)]
pub struct LedgerConfig {
    /// The shared PostgreSQL ledger, when `url` names one.
    pub postgres: Option<PgLedger>,
    /// A SQLite file other than `<run dir>/ledger.db` (`url = "sqlite:PATH"`).
    pub sqlite: Option<PathBuf>,
    /// Who runs are recorded as (default: `$FERRY_USER`, else the operating-system user).
    pub identity: Option<String>,
}

/// The `[serve]` table.
#[derive(Clone, Debug, Default)]
pub struct ServeConfig {
    /// The address to listen on (default `127.0.0.1:8640`).
    pub listen: Option<String>,
    /// The access token the dashboard asks for.
    pub token: Option<Secret>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LedgerToml {
    url: Option<String>,
    password: Option<String>,
    sslmode: Option<SslMode>,
    ca_file: Option<PathBuf>,
    identity: Option<String>,
    timeout_secs: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeToml {
    listen: Option<String>,
    token: Option<String>,
}

fn key_err(file: &str, key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Key {
        file: file.to_string(),
        key: key.to_string(),
        problem: problem.into(),
    }
}

fn de_err(file: &str, section: &str, e: toml::de::Error) -> ConfigError {
    key_err(file, section, e.message().to_string())
}

/// Resolves a secret reference found at `key`, adding the value to `secrets`.
fn secret(
    raw: &str,
    file: &str,
    key: &str,
    base: &Path,
    secrets: &mut Vec<Secret>,
) -> Result<Secret, ConfigError> {
    let r = SecretRef::parse(raw, Some(base)).map_err(|e| key_err(file, key, e.to_string()))?;
    let s = r
        .resolve()
        .map_err(|e| key_err(file, key, format!("{e} (from {})", r.describe())))?;
    secrets.push(s.clone());
    Ok(s)
}

/// Parses `[ledger]`.
pub fn parse_ledger(
    v: &toml::Value,
    file: &str,
    base: &Path,
    secrets: &mut Vec<Secret>,
) -> Result<LedgerConfig, ConfigError> {
    let t: LedgerToml = v
        .clone()
        .try_into()
        .map_err(|e| de_err(file, "ledger", e))?;
    let mut out = LedgerConfig {
        identity: t.identity.filter(|s| !s.trim().is_empty()),
        ..Default::default()
    };
    let Some(url) = t.url else {
        if t.password.is_some() || t.sslmode.is_some() || t.ca_file.is_some() {
            return Err(key_err(
                file,
                "ledger.url",
                "missing: password, sslmode and ca_file are for a PostgreSQL `url`",
            ));
        }
        return Ok(out);
    };
    if let Some(p) = url.strip_prefix("sqlite:") {
        out.sqlite = Some(base.join(p));
        return Ok(out);
    }
    let parsed = url::Url::parse(&url).map_err(|e| {
        key_err(
            file,
            "ledger.url",
            format!(
                "not a URL ({e}): expected `postgres://user@host:port/database` or `sqlite:PATH`"
            ),
        )
    })?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(key_err(
            file,
            "ledger.url",
            format!(
                "unknown scheme `{}` (known: postgres, sqlite)",
                parsed.scheme()
            ),
        ));
    }
    if parsed.password().is_some() {
        return Err(key_err(
            file,
            "ledger.url",
            "the URL holds a password: put it in `password` as a secret reference (`env:VAR`, `file:PATH`)",
        ));
    }
    if parsed.query().is_some() {
        return Err(key_err(
            file,
            "ledger.url",
            "no `?options` in the URL: use `sslmode`, `ca_file` and `timeout_secs`",
        ));
    }
    let password = match &t.password {
        Some(raw) => Some(secret(raw, file, "ledger.password", base, secrets)?),
        None => None,
    };
    out.postgres = Some(PgLedger {
        url,
        password,
        sslmode: t.sslmode.unwrap_or_default(),
        ca_file: t.ca_file.map(|p| base.join(p)),
        timeout_secs: t.timeout_secs.unwrap_or(30).max(1),
    });
    Ok(out)
}

/// Parses `[serve]`.
pub fn parse_serve(
    v: &toml::Value,
    file: &str,
    base: &Path,
    secrets: &mut Vec<Secret>,
) -> Result<ServeConfig, ConfigError> {
    let t: ServeToml = v.clone().try_into().map_err(|e| de_err(file, "serve", e))?;
    let token = match &t.token {
        Some(raw) => Some(secret(raw, file, "serve.token", base, secrets)?),
        None => None,
    };
    Ok(ServeConfig {
        listen: t.listen,
        token,
    })
}
