//! The configuration file (`ferry.toml`): named OIC instances, vaults, mail, and script settings.
//!
//! Looked up as `--config FILE`, then `$FERRY_CONFIG`, then `./ferry.toml`. Secrets are references
//! (`env:VAR`, `file:PATH`) resolved when the config is loaded; their values are wrapped in
//! [`Secret`] and never printed. Every error names the file, the key and what is wrong.

pub mod ledger;
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
}

/// One `[vaults.NAME]` table.
#[derive(Clone, Debug)]
pub struct VaultProfile {
    pub name: String,
    /// `file:///abs/path` or `sftp://user@host:port/path`.
    pub url: String,
    /// Every other key of the table, for the store and encryption settings.
    pub settings: toml::Table,
    /// Where the config file lives (relative paths in settings are resolved against it).
    pub base_dir: PathBuf,
}

/// The `[mail]` table.
#[derive(Clone, Debug, Default)]
pub struct MailProfile {
    pub settings: toml::Table,
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
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    file: file.to_string(),
                    reason: format!("{}{}", e.message(), line_of(text, e.span())),
                })?;
        let mut p = Parser {
            file,
            base,
            secrets: vec![],
        };
        let mut cfg = Config {
            file: file.to_string(),
            state_dir: PathBuf::from(".ferry"),
            ..Default::default()
        };
        for (k, v) in &table {
            match k.as_str() {
                "instances" => {
                    let t = p.table(v, "instances")?;
                    for (name, inst) in t {
                        let prof = p.instance(name, inst)?;
                        cfg.instances.insert(name.clone(), prof);
                    }
                }
                "vaults" => {
                    let t = p.table(v, "vaults")?;
                    for (name, vt) in t {
                        let key = format!("vaults.{name}");
                        let vt = p.table(vt, &key)?;
                        let url = p.req_str(vt, &key, "url")?;
                        if !(url.starts_with("file://") || url.starts_with("sftp://")) {
                            return Err(p.err(&format!("{key}.url"), format!("expected a `file:///path` or `sftp://user@host:port/path` URL, got `{url}`")));
                        }
                        let mut settings = vt.clone();
                        settings.remove("url");
                        cfg.vaults.insert(
                            name.clone(),
                            VaultProfile {
                                name: name.clone(),
                                url,
                                settings,
                                base_dir: base.to_path_buf(),
                            },
                        );
                    }
                }
                "mail" => {
                    cfg.mail = Some(p.mail(v)?);
                }
                "ledger" => cfg.ledger = ledger::parse_ledger(v, file, base, &mut p.secrets)?,
                "serve" => cfg.serve = ledger::parse_serve(v, file, base, &mut p.secrets)?,
                "identity" => {
                    let t = p.table(v, "identity")?;
                    for (name, it) in t {
                        let prof = p.identity(name, it)?;
                        cfg.identities.insert(name.clone(), prof);
                    }
                }
                "script" => {
                    let t = p.table(v, "script")?;
                    for (sk, sv) in t {
                        match sk.as_str() {
                            "lib_paths" => {
                                let arr = sv.as_array().ok_or_else(|| {
                                    p.err("script.lib_paths", "expected a list of folders".into())
                                })?;
                                for x in arr {
                                    let s = x.as_str().ok_or_else(|| {
                                        p.err(
                                            "script.lib_paths",
                                            "expected a list of folders".into(),
                                        )
                                    })?;
                                    cfg.lib_paths.push(base.join(s));
                                }
                            }
                            other => {
                                return Err(p.err(
                                    &format!("script.{other}"),
                                    "unknown key (known: lib_paths)".into(),
                                ));
                            }
                        }
                    }
                }
                "run" => {
                    let t = p.table(v, "run")?;
                    for (sk, sv) in t {
                        match sk.as_str() {
                            "dir" => {
                                let s = sv.as_str().ok_or_else(|| {
                                    p.err("run.dir", "expected a folder path".into())
                                })?;
                                cfg.state_dir = base.join(s);
                            }
                            other => {
                                return Err(p.err(
                                    &format!("run.{other}"),
                                    "unknown key (known: dir)".into(),
                                ));
                            }
                        }
                    }
                }
                other => {
                    return Err(p.err(
                        other,
                        "unknown section (known: instances, vaults, mail, identity, script, run, ledger, serve)"
                            .into(),
                    ));
                }
            }
        }
        cfg.secrets = p.secrets;
        Ok(cfg)
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

/// Replaces every secret value (of 4 characters or more) in `text` with `***`.
pub fn scrub(text: &str, secrets: &[Secret]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if s.expose().len() >= 4 && out.contains(s.expose()) {
            out = out.replace(s.expose(), "***");
        }
    }
    out
}

fn join_names<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = names.map(String::as_str).collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
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

struct Parser<'a> {
    file: &'a str,
    base: &'a Path,
    secrets: Vec<Secret>,
}

impl Parser<'_> {
    fn err(&self, key: &str, problem: String) -> ConfigError {
        ConfigError::Key {
            file: self.file.to_string(),
            key: key.to_string(),
            problem,
        }
    }

    fn table<'v>(&self, v: &'v toml::Value, key: &str) -> Result<&'v toml::Table, ConfigError> {
        v.as_table()
            .ok_or_else(|| self.err(key, format!("expected a table, found a {}", v.type_str())))
    }

    fn opt_str(
        &self,
        t: &toml::Table,
        key: &str,
        field: &str,
    ) -> Result<Option<String>, ConfigError> {
        match t.get(field) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.err(
                &format!("{key}.{field}"),
                format!("expected a string, found a {}", v.type_str()),
            )),
        }
    }

    fn req_str(&self, t: &toml::Table, key: &str, field: &str) -> Result<String, ConfigError> {
        self.opt_str(t, key, field)?
            .ok_or_else(|| self.err(&format!("{key}.{field}"), "missing (required)".into()))
    }

    fn secret(&mut self, t: &toml::Table, key: &str, field: &str) -> Result<Secret, ConfigError> {
        let raw = self.req_str(t, key, field)?;
        let full = format!("{key}.{field}");
        let r =
            SecretRef::parse(&raw, Some(self.base)).map_err(|e| self.err(&full, e.to_string()))?;
        let s = r
            .resolve()
            .map_err(|e| self.err(&full, format!("{e} (from {})", r.describe())))?;
        self.secrets.push(s.clone());
        Ok(s)
    }

    fn url(&self, t: &toml::Table, key: &str, field: &str) -> Result<String, ConfigError> {
        let s = self.req_str(t, key, field)?;
        let full = format!("{key}.{field}");
        let u = url::Url::parse(&s)
            .map_err(|e| self.err(&full, format!("not a valid URL (`{s}`): {e}")))?;
        if u.scheme() != "https" && u.scheme() != "http" {
            return Err(self.err(
                &full,
                format!("expected an http(s) URL, got scheme `{}`", u.scheme()),
            ));
        }
        if u.host_str().is_none() {
            return Err(self.err(&full, format!("the URL `{s}` has no host")));
        }
        Ok(s.trim_end_matches('/').to_string())
    }

    fn known_keys(&self, t: &toml::Table, key: &str, known: &[&str]) -> Result<(), ConfigError> {
        for k in t.keys() {
            if !known.contains(&k.as_str()) {
                return Err(self.err(
                    &format!("{key}.{k}"),
                    format!("unknown key (known: {})", known.join(", ")),
                ));
            }
        }
        Ok(())
    }

    fn positive(
        &self,
        t: &toml::Table,
        key: &str,
        field: &str,
        default: u64,
    ) -> Result<u64, ConfigError> {
        match t.get(field) {
            None => Ok(default),
            Some(toml::Value::Integer(n)) if *n > 0 => Ok(*n as u64),
            Some(v) => Err(self.err(
                &format!("{key}.{field}"),
                format!("expected a positive number, found {v}"),
            )),
        }
    }

    /// `[mail]`: SMTP (`host`, `port`, `tls`, `username`, `password`, `timeout_secs`, `ca_file`,
    /// `accept_invalid_certs`), `from`, `admins`, `outbox`, `webhook`, `webhook_timeout_secs`.
    fn mail(&mut self, v: &toml::Value) -> Result<MailProfile, ConfigError> {
        let t = self.table(v, "mail")?;
        self.known_keys(
            t,
            "mail",
            &[
                "host",
                "port",
                "tls",
                "username",
                "password",
                "timeout_secs",
                "ca_file",
                "accept_invalid_certs",
                "from",
                "admins",
                "outbox",
                "webhook",
                "webhook_timeout_secs",
            ],
        )?;
        let admins = match t.get("admins") {
            None => vec![],
            Some(toml::Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .filter(|s| s.contains('@'))
                        .map(str::to_string)
                        .ok_or_else(|| {
                            self.err("mail.admins", "expected a list of e-mail addresses".into())
                        })
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(self.err("mail.admins", "expected a list of e-mail addresses".into()));
            }
        };
        let smtp = match self.opt_str(t, "mail", "host")? {
            None => None,
            Some(host) => {
                let tls = match self.opt_str(t, "mail", "tls")?.as_deref() {
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
                let port = match t.get("port") {
                    None => match tls {
                        SmtpTls::Implicit => 465,
                        _ => 587,
                    },
                    Some(toml::Value::Integer(n)) if (1..=65535).contains(n) => *n as u16,
                    Some(v) => {
                        return Err(
                            self.err("mail.port", format!("expected a port number, found {v}"))
                        );
                    }
                };
                let username = self.opt_str(t, "mail", "username")?;
                let password = if t.contains_key("password") {
                    Some(self.secret(t, "mail", "password")?)
                } else {
                    None
                };
                if username.is_some() != password.is_some() {
                    return Err(self.err(
                        "mail.password",
                        "`username` and `password` go together".into(),
                    ));
                }
                let accept_invalid_certs = match t.get("accept_invalid_certs") {
                    None => false,
                    Some(toml::Value::Boolean(b)) => *b,
                    Some(v) => {
                        return Err(self.err(
                            "mail.accept_invalid_certs",
                            format!("expected true or false, found {v}"),
                        ));
                    }
                };
                Some(SmtpProfile {
                    host,
                    port,
                    tls,
                    username,
                    password,
                    timeout_secs: self.positive(t, "mail", "timeout_secs", 30)?,
                    ca_file: self
                        .opt_str(t, "mail", "ca_file")?
                        .map(|f| self.base.join(f)),
                    accept_invalid_certs,
                })
            }
        };
        let webhook = if t.contains_key("webhook") {
            let url = self.secret(t, "mail", "webhook")?;
            let ok = url::Url::parse(url.expose())
                .map(|u| (u.scheme() == "https" || u.scheme() == "http") && u.host_str().is_some())
                .unwrap_or(false);
            if !ok {
                return Err(self.err("mail.webhook", "expected an http(s) URL".into()));
            }
            Some(WebhookProfile {
                url,
                timeout_secs: self.positive(t, "mail", "webhook_timeout_secs", 30)?,
            })
        } else {
            None
        };
        Ok(MailProfile {
            settings: t.clone(),
            admins,
            smtp,
            from: self.opt_str(t, "mail", "from")?,
            outbox: self
                .opt_str(t, "mail", "outbox")?
                .map(|f| self.base.join(f)),
            webhook,
        })
    }

    /// `[identity.NAME]`: `url`, `client_id`, `client_secret`, optional `token_url`, `scope`,
    /// `timeout_secs` and `[identity.NAME.apps]` (OIC instance name -> OIC app name or id).
    fn identity(&mut self, name: &str, v: &toml::Value) -> Result<IdentityProfile, ConfigError> {
        let key = format!("identity.{name}");
        let t = self.table(v, &key)?;
        self.known_keys(
            t,
            &key,
            &[
                "url",
                "token_url",
                "client_id",
                "client_secret",
                "scope",
                "apps",
                "timeout_secs",
            ],
        )?;
        let url = self.url(t, &key, "url")?;
        let token_url = if t.contains_key("token_url") {
            self.url(t, &key, "token_url")?
        } else {
            format!("{url}/oauth2/v1/token")
        };
        let mut apps = BTreeMap::new();
        if let Some(a) = t.get("apps") {
            let at = self.table(a, &format!("{key}.apps"))?;
            for (inst, app) in at {
                let s = app.as_str().ok_or_else(|| {
                    self.err(
                        &format!("{key}.apps.{inst}"),
                        "expected the OIC application's name or id".into(),
                    )
                })?;
                apps.insert(inst.clone(), s.to_string());
            }
        }
        Ok(IdentityProfile {
            name: name.to_string(),
            url,
            token_url,
            client_id: self.req_str(t, &key, "client_id")?,
            client_secret: self.secret(t, &key, "client_secret")?,
            scope: self
                .opt_str(t, &key, "scope")?
                .unwrap_or_else(|| "urn:opc:idm:__myscopes__".to_string()),
            apps,
            timeout_secs: self.positive(t, &key, "timeout_secs", 60)?,
        })
    }

    fn instance(&mut self, name: &str, v: &toml::Value) -> Result<InstanceProfile, ConfigError> {
        let key = format!("instances.{name}");
        let t = self.table(v, &key)?;
        const KNOWN: &[&str] = &[
            "base_url",
            "generation",
            "integration_instance",
            "integrationInstance",
            "token_url",
            "client_id",
            "client_secret",
            "scope",
            "username",
            "password",
            "timeout_secs",
        ];
        for k in t.keys() {
            if !KNOWN.contains(&k.as_str()) {
                return Err(self.err(
                    &format!("{key}.{k}"),
                    format!("unknown key (known: {})", KNOWN.join(", ")),
                ));
            }
        }
        let base_url = self.url(t, &key, "base_url")?;
        let generation = match t.get("generation") {
            None => Generation::Gen3,
            Some(toml::Value::Integer(2)) => Generation::Gen2,
            Some(toml::Value::Integer(3)) => Generation::Gen3,
            Some(v) => {
                return Err(self.err(
                    &format!("{key}.generation"),
                    format!("expected 2 or 3, found {v}"),
                ));
            }
        };
        let ii = match self.opt_str(t, &key, "integration_instance")? {
            Some(s) => Some(s),
            None => self.opt_str(t, &key, "integrationInstance")?,
        };
        if generation == Generation::Gen3 && ii.as_deref().unwrap_or("").is_empty() {
            return Err(self.err(&format!("{key}.integration_instance"), "missing (required for generation 3: the service instance name from the OIC About box)".into()));
        }
        let auth = if t.contains_key("client_id") || t.contains_key("token_url") {
            Auth::ClientCredentials {
                token_url: self.url(t, &key, "token_url")?,
                client_id: self.req_str(t, &key, "client_id")?,
                client_secret: self.secret(t, &key, "client_secret")?,
                scope: self.req_str(t, &key, "scope")?,
            }
        } else if t.contains_key("username") {
            if generation == Generation::Gen3 {
                return Err(self.err(&format!("{key}.username"), "basic authentication is refused by OIC 3; configure token_url, client_id, client_secret and scope".into()));
            }
            Auth::Basic {
                username: self.req_str(t, &key, "username")?,
                password: self.secret(t, &key, "password")?,
            }
        } else {
            return Err(self.err(&format!("{key}.client_id"), "missing (configure token_url, client_id, client_secret and scope, or username and password on Gen2)".into()));
        };
        let timeout_secs = match t.get("timeout_secs") {
            None => 120,
            Some(toml::Value::Integer(n)) if *n > 0 => *n as u64,
            Some(v) => {
                return Err(self.err(
                    &format!("{key}.timeout_secs"),
                    format!("expected a positive number of seconds, found {v}"),
                ));
            }
        };
        Ok(InstanceProfile {
            name: name.to_string(),
            base_url,
            generation,
            integration_instance: ii,
            auth,
            timeout_secs,
        })
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
            "ferry.toml: `instances.dev.base_url`: missing (required)"
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
            "ferry.toml: `instances.dev.client_secret`: environment variable `FERRY_UNSET_X` is not set (from env:FERRY_UNSET_X)"
        );
        let e = parse("[vaults.v]\nurl='s3://x'\n").unwrap_err().to_string();
        assert!(e.contains("`vaults.v.url`"), "{e}");
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
            "ferry.toml: `mail.tls`: expected `starttls`, `tls` or `none`, got `ssl`"
        );
        let e = parse("[mail]\nhost='h'\nusername='u'\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "ferry.toml: `mail.password`: `username` and `password` go together"
        );
        let e = parse("[identity.x]\nurl='https://i'\nclient_id='c'\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "ferry.toml: `identity.x.client_secret`: missing (required)"
        );
        let e = c.identity("nope").unwrap_err().to_string();
        assert!(e.contains("configured: corp"), "{e}");
    }
}
