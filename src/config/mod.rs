//! The configuration file (`ferry.toml`): named OIC instances, vaults, mail, and script settings.
//!
//! Looked up as `--config FILE`, then `$FERRY_CONFIG`, then `./ferry.toml`. Secrets are references
//! (`env:VAR`, `file:PATH`) resolved when the config is loaded; their values are wrapped in
//! [`Secret`] and never printed. Every error names the file, the key and what is wrong.

pub mod secret;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
}

/// The whole configuration.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// The file it came from (`<sandbox>` for the embedded defaults).
    pub file: String,
    pub instances: BTreeMap<String, InstanceProfile>,
    pub vaults: BTreeMap<String, VaultProfile>,
    pub mail: Option<MailProfile>,
    /// Extra module folders for `import` (`[script] lib_paths`).
    pub lib_paths: Vec<PathBuf>,
    /// Where runs and reports are written (`[run] dir`, default `.ferry`).
    pub state_dir: PathBuf,
    /// Every secret value loaded, so that output can be scrubbed as a last line of defence.
    pub secrets: Vec<Secret>,
}

impl Config {
    /// Finds and loads the config: explicit path, then `$FERRY_CONFIG`, then `./ferry.toml`.
    pub fn discover(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        if let Some(p) = explicit {
            return Config::load(p);
        }
        if let Ok(p) = std::env::var("FERRY_CONFIG") {
            if !p.is_empty() {
                return Config::load(Path::new(&p));
            }
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
                    let t = p.table(v, "mail")?;
                    let admins = match t.get("admins") {
                        None => vec![],
                        Some(toml::Value::Array(a)) => a
                            .iter()
                            .map(|x| {
                                x.as_str().map(str::to_string).ok_or_else(|| {
                                    p.err(
                                        "mail.admins",
                                        "expected a list of e-mail addresses".into(),
                                    )
                                })
                            })
                            .collect::<Result<_, _>>()?,
                        Some(_) => {
                            return Err(
                                p.err("mail.admins", "expected a list of e-mail addresses".into())
                            );
                        }
                    };
                    cfg.mail = Some(MailProfile {
                        settings: t.clone(),
                        admins,
                    });
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
                        "unknown section (known: instances, vaults, mail, script, run)".into(),
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
}
