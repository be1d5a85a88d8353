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

/// `[ledger]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLedger {
    url: Option<String>,
    password: Option<String>,
    sslmode: Option<SslMode>,
    ca_file: Option<PathBuf>,
    identity: Option<String>,
    timeout_secs: Option<u64>,
}

/// `[serve]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServe {
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

/// Checks `[ledger]` and resolves its password.
pub(super) fn check_ledger(
    t: RawLedger,
    file: &str,
    base: &Path,
    secrets: &mut Vec<Secret>,
) -> Result<LedgerConfig, ConfigError> {
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

/// Checks `[serve]` and resolves its token.
pub(super) fn check_serve(
    t: RawServe,
    file: &str,
    base: &Path,
    secrets: &mut Vec<Secret>,
) -> Result<ServeConfig, ConfigError> {
    let token = match &t.token {
        Some(raw) => Some(secret(raw, file, "serve.token", base, secrets)?),
        None => None,
    };
    Ok(ServeConfig {
        listen: t.listen,
        token,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn parse(s: &str) -> Result<Config, String> {
        Config::parse(s, "ferry.toml", std::path::Path::new("/etc/ferry"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn ledger_and_serve_tables() {
        let c = parse("[ledger]\nurl='postgres://w@db:5432/ferry'\npassword='file:pw.txt'\n")
            .unwrap_err();
        assert!(
            c.contains("`ledger.password`") && c.contains("/etc/ferry/pw.txt"),
            "{c}"
        );
        let e = parse("[ledger]\nurl='postgres://w:hunter2@db/ferry'\n").unwrap_err();
        assert!(
            e.contains("holds a password") && !e.contains("hunter2"),
            "{e}"
        );
        let e = parse("[ledger]\nurl='mysql://db/x'\n").unwrap_err();
        assert!(e.contains("unknown scheme"), "{e}");
        let e = parse("[ledger]\nurl='postgres://db/x'\nsslmode='maybe'\n").unwrap_err();
        assert!(e.contains("ledger.sslmode"), "{e}");
        let e = parse("[serve]\nport=1\n").unwrap_err();
        assert!(e.contains("serve.port"), "{e}");
        let c = parse("[ledger]\nurl='postgres://w@db/x'\nsslmode='require'\nidentity='ci'\n[serve]\nlisten='0.0.0.0:1'\n").unwrap();
        let pg = c.ledger.postgres.unwrap();
        assert_eq!(
            (pg.url.as_str(), pg.sslmode),
            ("postgres://w@db/x", super::SslMode::Require)
        );
        assert_eq!(c.ledger.identity.as_deref(), Some("ci"));
        assert_eq!(c.serve.listen.as_deref(), Some("0.0.0.0:1"));
        let c = parse("[ledger]\nurl='sqlite:l.db'\n").unwrap();
        assert_eq!(
            c.ledger.sqlite.unwrap(),
            std::path::Path::new("/etc/ferry/l.db")
        );
    }
}
