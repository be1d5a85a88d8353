//! The config file as serde reads it (every table refuses unknown keys), and the checks that turn
//! it into the profiles of [`super::Config`]. Every error names the dotted key it is about.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{
    Auth, Config, ConfigError, Generation, IdentityProfile, InstanceProfile, JwtAssertion,
    MailProfile, Secret, SecretRef, SmtpProfile, SmtpTls, VaultProfile, VaultSettings,
    WebhookProfile,
};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    instances: BTreeMap<String, RawInstance>,
    #[serde(default)]
    vaults: BTreeMap<String, VaultSettings>,
    mail: Option<RawMail>,
    #[serde(default)]
    identity: BTreeMap<String, RawIdentity>,
    script: Option<RawScript>,
    run: Option<RawRun>,
    ledger: Option<super::ledger::RawLedger>,
    serve: Option<super::ledger::RawServe>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstance {
    base_url: String,
    generation: Option<i64>,
    #[serde(alias = "integrationInstance")]
    integration_instance: Option<String>,
    token_url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
    username: Option<String>,
    password: Option<String>,
    timeout_secs: Option<i64>,
    max_json_mib: Option<i64>,
    download_stall_secs: Option<i64>,
    download_deadline_secs: Option<i64>,
    jwt_user: Option<String>,
    jwt_private_key: Option<String>,
    jwt_key_id: Option<String>,
}

/// The keys of an instance the JWT user-assertion grant uses.
struct RawJwt {
    token_url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
    jwt_user: Option<String>,
    jwt_private_key: Option<String>,
    jwt_key_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMail {
    host: Option<String>,
    port: Option<i64>,
    tls: Option<String>,
    username: Option<String>,
    password: Option<String>,
    timeout_secs: Option<i64>,
    ca_file: Option<String>,
    #[serde(default)]
    accept_invalid_certs: bool,
    from: Option<String>,
    #[serde(default)]
    admins: Vec<String>,
    outbox: Option<String>,
    webhook: Option<String>,
    webhook_timeout_secs: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    url: String,
    token_url: Option<String>,
    client_id: String,
    client_secret: String,
    scope: Option<String>,
    #[serde(default)]
    apps: BTreeMap<String, String>,
    timeout_secs: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScript {
    #[serde(default)]
    lib_paths: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRun {
    dir: Option<String>,
    retry_base_ms: Option<i64>,
    resume_grace_ms: Option<i64>,
}

/// Reads config text into the raw tables; errors name the dotted key.
pub(super) fn read(text: &str, file: &str) -> Result<RawConfig, ConfigError> {
    let de = toml::de::Deserializer::parse(text).map_err(|e| ConfigError::Syntax {
        file: file.to_string(),
        reason: format!("{}{}", e.message(), line_of(text, e.span())),
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let (key, problem) = key_problem(&path, e.inner().message());
        ConfigError::Key {
            file: file.to_string(),
            key,
            problem: format!("{problem}{}", line_of(text, e.inner().span())),
        }
    })
}

/// Turns serde's messages into ferry's: the key a missing or unknown field would have, and what
/// is wrong in ferry's words.
pub(super) fn key_problem(path: &str, msg: &str) -> (String, String) {
    let join = |field: &str| match path {
        "" | "." => field.to_string(),
        p => format!("{p}.{field}"),
    };
    let quoted = |rest: &str| rest.split('`').nth(1).unwrap_or("").to_string();
    if let Some(rest) = msg.strip_prefix("missing field ") {
        return (join(&quoted(rest)), "missing (required)".into());
    }
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        let field = quoted(rest);
        let known: Vec<&str> = rest
            .split_once("expected")
            .map(|(_, k)| k.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        // The path names the unknown key itself; its parent is the table it sits in.
        let key = if path.ends_with(&format!(".{field}")) || path == field {
            path.to_string()
        } else {
            join(&field)
        };
        let what = if key.contains('.') { "key" } else { "section" };
        return (key, format!("unknown {what} (known: {})", known.join(", ")));
    }
    let problem = msg
        .strip_prefix("invalid type: ")
        .map(|r| match r.split_once(", expected ") {
            Some((found, want)) => format!("expected {want}, found {found}"),
            None => r.to_string(),
        })
        .unwrap_or_else(|| msg.to_string());
    (path.to_string(), problem)
}

fn line_of(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(r) => {
            let line = text[..r.start.min(text.len())].matches('\n').count() + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

/// Checks the raw tables and resolves secrets: the semantic half of loading.
pub(super) struct Check<'a> {
    pub file: &'a str,
    pub base: &'a Path,
    pub secrets: Vec<Secret>,
    /// The file's text (to name the line of a key in messages).
    pub text: &'a str,
}

/// The line of a dotted key (`vaults.backups.url`) in config text: the line of its `KEY =`
/// in its table, else of the table's header; `None` when neither is found.
pub(super) fn key_line(text: &str, key: &str) -> Option<usize> {
    let parts: Vec<&str> = key.split('.').collect();
    let header_of = |line: &str| -> Option<String> {
        let t = line.trim();
        let inner = t.strip_prefix('[')?.split(']').next()?;
        Some(
            inner
                .split('.')
                .map(|p| p.trim().trim_matches('"').trim_matches('\''))
                .collect::<Vec<_>>()
                .join("."),
        )
    };
    let assigns = |line: &str, field: &str| {
        line.trim_start()
            .strip_prefix(field)
            .is_some_and(|r| r.trim_start().starts_with('='))
    };
    // The longest table that is a prefix of the key, then the field in it.
    for split in (0..parts.len()).rev() {
        let table = parts[..split].join(".");
        let field = parts[split..].join(".");
        let mut in_table = table.is_empty();
        let mut header = None;
        for (i, line) in text.lines().enumerate() {
            if let Some(h) = header_of(line) {
                in_table = h == table;
                if in_table {
                    header = Some(i + 1);
                }
                continue;
            }
            if in_table && assigns(line, &field) {
                return Some(i + 1);
            }
        }
        if header.is_some() {
            return header;
        }
    }
    None
}

/// A host that is this machine (traffic to it never leaves it).
fn loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Check<'_> {
    fn err(&self, key: &str, problem: impl Into<String>) -> ConfigError {
        let mut problem = problem.into();
        if !problem.contains("(line ")
            && let Some(n) = key_line(self.text, key)
        {
            problem.push_str(&format!(" (line {n})"));
        }
        ConfigError::Key {
            file: self.file.to_string(),
            key: key.to_string(),
            problem,
        }
    }

    /// Warns (at load, before anything is sent) about a setting that sends credentials in the
    /// clear.
    fn warn_cleartext(&self, key: &str, what: &str) {
        let line = key_line(self.text, key)
            .map(|n| format!(" (line {n})"))
            .unwrap_or_default();
        tracing::warn!("{}: `{key}`: {what}{line}", self.file);
    }

    fn required(&self, v: Option<String>, key: &str) -> Result<String, ConfigError> {
        v.ok_or_else(|| self.err(key, "missing (required)"))
    }

    fn secret(&mut self, raw: Option<String>, key: &str) -> Result<Secret, ConfigError> {
        let raw = self.required(raw, key)?;
        let r =
            SecretRef::parse(&raw, Some(self.base)).map_err(|e| self.err(key, e.to_string()))?;
        let s = r
            .resolve()
            .map_err(|e| self.err(key, format!("{e} (from {})", r.describe())))?;
        self.secrets.push(s.clone());
        Ok(s)
    }

    fn url(&self, s: &str, key: &str) -> Result<String, ConfigError> {
        let u = url::Url::parse(s)
            .map_err(|e| self.err(key, format!("not a valid URL (`{s}`): {e}")))?;
        if u.scheme() != "https" && u.scheme() != "http" {
            let scheme = u.scheme();
            return Err(self.err(
                key,
                format!("expected an http(s) URL, got scheme `{scheme}`"),
            ));
        }
        let Some(host) = u.host_str() else {
            return Err(self.err(key, format!("the URL `{s}` has no host")));
        };
        // Credentials belong in their own keys (secret references), never in a URL that is
        // printed, logged and recorded; a query or fragment would be lost or misread when ferry
        // appends API paths.
        if !u.username().is_empty() || u.password().is_some() {
            return Err(self.err(
                key,
                "the URL holds a user name or password: put credentials in their own keys (secret references)",
            ));
        }
        if u.query().is_some() {
            return Err(self.err(key, "the URL has a query (`?...`): give the base URL only"));
        }
        if u.fragment().is_some() {
            return Err(self.err(
                key,
                "the URL has a fragment (`#...`): give the base URL only",
            ));
        }
        if u.scheme() == "http" && !loopback(host) {
            self.warn_cleartext(
                key,
                &format!(
                    "plain http:// to {host}: tokens and archives travel unencrypted; use https://"
                ),
            );
        }
        Ok(s.trim_end_matches('/').to_string())
    }

    fn positive(&self, v: Option<i64>, default: u64, key: &str) -> Result<u64, ConfigError> {
        match v {
            None => Ok(default),
            Some(n) if n > 0 => Ok(n as u64),
            Some(n) => Err(self.err(key, format!("expected a positive number, found {n}"))),
        }
    }

    /// The whole file, in the order the tables are described in the README.
    pub(super) fn config(&mut self, raw: RawConfig) -> Result<Config, ConfigError> {
        let mut cfg = Config {
            file: self.file.to_string(),
            state_dir: PathBuf::from(".ferry"),
            ..Default::default()
        };
        for (name, inst) in raw.instances {
            let prof = self.instance(&name, inst)?;
            cfg.instances.insert(name, prof);
        }
        for (name, v) in raw.vaults {
            let key = format!("vaults.{name}.url");
            if !["file://", "sftp://", "s3://"]
                .iter()
                .any(|s| v.url.starts_with(s))
            {
                let url = &v.url;
                return Err(self.err(
                    &key,
                    format!(
                        "expected a `file:///path`, `sftp://user@host:port/path` or `s3://bucket/prefix` URL, got `{url}`"
                    ),
                ));
            }
            let prof = VaultProfile {
                name: name.clone(),
                url: v.url.clone(),
                settings: v,
                base_dir: self.base.to_path_buf(),
            };
            cfg.vaults.insert(name, prof);
        }
        if let Some(m) = raw.mail {
            cfg.mail = Some(self.mail(m)?);
        }
        for (name, it) in raw.identity {
            let prof = self.identity(&name, it)?;
            cfg.identities.insert(name, prof);
        }
        if let Some(s) = raw.script {
            cfg.lib_paths = s.lib_paths.iter().map(|p| self.base.join(p)).collect();
        }
        if let Some(r) = raw.run {
            if let Some(dir) = r.dir {
                cfg.state_dir = self.base.join(dir);
            }
            let ms = |v: Option<i64>, key: &str| match v {
                None => Ok(None),
                v => self.positive(v, 0, key).map(Some),
            };
            cfg.run = super::RunSettings {
                retry_base_ms: ms(r.retry_base_ms, "run.retry_base_ms")?,
                resume_grace_ms: ms(r.resume_grace_ms, "run.resume_grace_ms")?,
            };
        }
        if let Some(l) = raw.ledger {
            cfg.ledger = super::ledger::check_ledger(l, self.file, self.base, &mut self.secrets)?;
        }
        if let Some(s) = raw.serve {
            cfg.serve = super::ledger::check_serve(s, self.file, self.base, &mut self.secrets)?;
        }
        cfg.secrets = std::mem::take(&mut self.secrets);
        Ok(cfg)
    }

    fn instance(&mut self, name: &str, t: RawInstance) -> Result<InstanceProfile, ConfigError> {
        let key = format!("instances.{name}");
        let base_url = self.url(&t.base_url, &format!("{key}.base_url"))?;
        let generation = match t.generation {
            None | Some(3) => Generation::Gen3,
            Some(2) => Generation::Gen2,
            Some(v) => {
                return Err(self.err(
                    &format!("{key}.generation"),
                    format!("expected 2 or 3, found {v}"),
                ));
            }
        };
        let ii = t.integration_instance;
        if generation == Generation::Gen3 && ii.as_deref().unwrap_or("").is_empty() {
            return Err(self.err(&format!("{key}.integration_instance"), "missing (required for generation 3: the service instance name from the OIC About box)"));
        }
        let jwt = t.jwt_user.is_some() || t.jwt_private_key.is_some() || t.jwt_key_id.is_some();
        let auth = if jwt {
            let j = RawJwt {
                token_url: t.token_url,
                client_id: t.client_id,
                client_secret: t.client_secret,
                scope: t.scope,
                jwt_user: t.jwt_user,
                jwt_private_key: t.jwt_private_key,
                jwt_key_id: t.jwt_key_id,
            };
            self.jwt_assertion(j, &key)?
        } else if t.client_id.is_some() || t.token_url.is_some() {
            let token_url = self.required(t.token_url, &format!("{key}.token_url"))?;
            Auth::ClientCredentials {
                token_url: self.url(&token_url, &format!("{key}.token_url"))?,
                client_id: self.required(t.client_id, &format!("{key}.client_id"))?,
                client_secret: self.secret(t.client_secret, &format!("{key}.client_secret"))?,
                scope: self.required(t.scope, &format!("{key}.scope"))?,
            }
        } else if let Some(username) = t.username {
            if generation == Generation::Gen3 {
                return Err(self.err(&format!("{key}.username"), "basic authentication is refused by OIC 3; configure token_url, client_id, client_secret and scope"));
            }
            Auth::Basic {
                username,
                password: self.secret(t.password, &format!("{key}.password"))?,
            }
        } else {
            return Err(self.err(&format!("{key}.client_id"), "missing (configure token_url, client_id, client_secret and scope, or username and password on Gen2)"));
        };
        let timeout_secs = match t.timeout_secs {
            None => 120,
            Some(n) if n > 0 => n as u64,
            Some(v) => {
                return Err(self.err(
                    &format!("{key}.timeout_secs"),
                    format!("expected a positive number of seconds, found {v}"),
                ));
            }
        };
        let defaults = super::ReadLimits::default();
        let reads = super::ReadLimits {
            max_json_mib: self.positive(
                t.max_json_mib,
                defaults.max_json_mib,
                &format!("{key}.max_json_mib"),
            )?,
            download_stall_secs: match t.download_stall_secs {
                None => None,
                v => Some(self.positive(v, 0, &format!("{key}.download_stall_secs"))?),
            },
            download_deadline_secs: self.positive(
                t.download_deadline_secs,
                defaults.download_deadline_secs,
                &format!("{key}.download_deadline_secs"),
            )?,
        };
        Ok(InstanceProfile {
            name: name.to_string(),
            base_url,
            generation,
            integration_instance: ii,
            auth,
            timeout_secs,
            reads,
        })
    }

    /// `jwt_user`, `jwt_private_key` and `jwt_key_id` beside `token_url`, `client_id` and `scope`
    /// (`client_secret` optional: without it the client authenticates with a client assertion).
    fn jwt_assertion(&mut self, t: RawJwt, key: &str) -> Result<Auth, ConfigError> {
        let token_url = self.required(t.token_url, &format!("{key}.token_url"))?;
        let client_secret = match t.client_secret {
            Some(s) => Some(self.secret(Some(s), &format!("{key}.client_secret"))?),
            None => None,
        };
        Ok(Auth::JwtUserAssertion(Box::new(JwtAssertion {
            token_url: self.url(&token_url, &format!("{key}.token_url"))?,
            client_id: self.required(t.client_id, &format!("{key}.client_id"))?,
            client_secret,
            scope: self.required(t.scope, &format!("{key}.scope"))?,
            user: self.required(t.jwt_user, &format!("{key}.jwt_user"))?,
            private_key: self.secret(t.jwt_private_key, &format!("{key}.jwt_private_key"))?,
            key_id: self.required(t.jwt_key_id, &format!("{key}.jwt_key_id"))?,
        })))
    }

    /// `[mail]`: SMTP settings (when `host` is set), sender, admins, outbox and webhook.
    fn mail(&mut self, t: RawMail) -> Result<MailProfile, ConfigError> {
        if let Some(a) = t.admins.iter().find(|a| !a.contains('@')) {
            return Err(self.err(
                "mail.admins",
                format!("expected a list of e-mail addresses, found `{a}`"),
            ));
        }
        let webhook = match t.webhook.clone() {
            None => None,
            Some(raw) => {
                let url = self.secret(Some(raw), "mail.webhook")?;
                let ok = url::Url::parse(url.expose())
                    .map(|u| matches!(u.scheme(), "https" | "http") && u.host_str().is_some())
                    .unwrap_or(false);
                if !ok {
                    return Err(self.err("mail.webhook", "expected an http(s) URL"));
                }
                if let Ok(u) = url::Url::parse(url.expose())
                    && u.scheme() == "http"
                    && !loopback(u.host_str().unwrap_or(""))
                {
                    self.warn_cleartext(
                        "mail.webhook",
                        "plain http:// to a host other than this machine: reports travel unencrypted; use https://",
                    );
                }
                let timeout = t.webhook_timeout_secs;
                Some(WebhookProfile {
                    url,
                    timeout_secs: self.positive(timeout, 30, "mail.webhook_timeout_secs")?,
                })
            }
        };
        if let Some(from) = &t.from
            && let Err(e) = from.parse::<lettre::message::Mailbox>()
        {
            return Err(self.err(
                "mail.from",
                format!("not an e-mail address (`{from}`): {e}"),
            ));
        }
        if let Some(a) = t
            .admins
            .iter()
            .find(|a| a.parse::<lettre::message::Mailbox>().is_err())
        {
            return Err(self.err("mail.admins", format!("`{a}` is not an e-mail address")));
        }
        Ok(MailProfile {
            admins: t.admins.clone(),
            from: t.from.clone(),
            outbox: t.outbox.as_ref().map(|f| self.base.join(f)),
            webhook,
            smtp: self.smtp(t)?,
        })
    }

    /// The SMTP half of `[mail]`: absent when `host` is not set (webhook or outbox only).
    fn smtp(&mut self, t: RawMail) -> Result<Option<SmtpProfile>, ConfigError> {
        let Some(host) = t.host else {
            return Ok(None);
        };
        let tls = match t.tls.as_deref() {
            None | Some("starttls") => SmtpTls::StartTls,
            Some("tls") | Some("implicit") => SmtpTls::Implicit,
            Some("none") => SmtpTls::None,
            Some(o) => {
                return Err(self.err(
                    "mail.tls",
                    format!("expected `starttls`, `tls` or `none`, got `{o}`"),
                ));
            }
        };
        let port = match t.port {
            None if tls == SmtpTls::Implicit => 465,
            None => 587,
            Some(n) if (1..=65535).contains(&n) => n as u16,
            Some(v) => {
                return Err(self.err("mail.port", format!("expected a port number, found {v}")));
            }
        };
        if tls == SmtpTls::None && !loopback(&host) {
            self.warn_cleartext(
                "mail.tls",
                &format!("SMTP without TLS to {host}: the login and the reports travel unencrypted; use `starttls` or `tls`"),
            );
        }
        if t.username.is_some() != t.password.is_some() {
            return Err(self.err("mail.password", "`username` and `password` go together"));
        }
        let password = match t.password {
            Some(p) => Some(self.secret(Some(p), "mail.password")?),
            None => None,
        };
        Ok(Some(SmtpProfile {
            host,
            port,
            tls,
            username: t.username,
            password,
            timeout_secs: self.positive(t.timeout_secs, 30, "mail.timeout_secs")?,
            ca_file: t.ca_file.map(|f| self.base.join(f)),
            accept_invalid_certs: t.accept_invalid_certs,
        }))
    }

    /// `[identity.NAME]`: the identity domain and its administrator application.
    fn identity(&mut self, name: &str, t: RawIdentity) -> Result<IdentityProfile, ConfigError> {
        let key = format!("identity.{name}");
        let url = self.url(&t.url, &format!("{key}.url"))?;
        let token_url = match t.token_url {
            Some(u) => self.url(&u, &format!("{key}.token_url"))?,
            None => format!("{url}/oauth2/v1/token"),
        };
        Ok(IdentityProfile {
            name: name.to_string(),
            url,
            token_url,
            client_id: t.client_id,
            client_secret: self.secret(Some(t.client_secret), &format!("{key}.client_secret"))?,
            scope: t
                .scope
                .unwrap_or_else(|| "urn:opc:idm:__myscopes__".to_string()),
            apps: t.apps,
            timeout_secs: self.positive(t.timeout_secs, 60, &format!("{key}.timeout_secs"))?,
        })
    }
}
