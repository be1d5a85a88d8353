//! Secret references (`env:VAR`, `file:PATH`) and the [`Secret`] wrapper that never prints its value.

use std::fmt;
use std::path::{Path, PathBuf};

/// A resolved secret value. `Debug` and `Display` print `***`, so a secret cannot leak through
/// logs, reports or error messages by accident; call [`Secret::expose`] only where the value is
/// sent to the service that needs it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value itself. Only for the code that sends it to its service.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a secret comes from, as written in the config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretRef {
    /// `env:VAR`: the environment variable `VAR`.
    Env(String),
    /// `file:PATH`: the contents of a file, trailing newline removed. Relative to the config file.
    File(PathBuf),
    /// A literal value written inline in the config (allowed, discouraged, never printed).
    Inline(Secret),
}

/// Why a secret reference could not be resolved. Never contains the value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("environment variable `{0}` is not set")]
    EnvUnset(String),
    #[error("cannot read secret file `{path}`: {reason}")]
    File { path: String, reason: String },
    #[error("a secret reference must look like `env:VAR` or `file:PATH`, got an empty value")]
    Empty,
}

impl SecretRef {
    /// Parses `env:VAR`, `file:PATH` or, failing both, an inline literal.
    pub fn parse(s: &str, base: Option<&Path>) -> Result<SecretRef, SecretError> {
        if let Some(var) = s.strip_prefix("env:") {
            if var.is_empty() {
                return Err(SecretError::Empty);
            }
            Ok(SecretRef::Env(var.to_string()))
        } else if let Some(p) = s.strip_prefix("file:") {
            if p.is_empty() {
                return Err(SecretError::Empty);
            }
            let p = PathBuf::from(p);
            let p = match base {
                Some(b) if p.is_relative() => b.join(p),
                _ => p,
            };
            Ok(SecretRef::File(p))
        } else if s.is_empty() {
            Err(SecretError::Empty)
        } else {
            Ok(SecretRef::Inline(Secret::new(s)))
        }
    }

    /// Reads the value now.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        match self {
            SecretRef::Env(v) => std::env::var(v)
                .map(Secret::new)
                .map_err(|_| SecretError::EnvUnset(v.clone())),
            SecretRef::File(p) => std::fs::read_to_string(p)
                .map(|s| Secret::new(s.trim_end_matches(['\n', '\r'])))
                .map_err(|e| SecretError::File {
                    path: p.display().to_string(),
                    reason: e.kind().to_string(),
                }),
            SecretRef::Inline(s) => Ok(s.clone()),
        }
    }

    /// A printable description of where the secret comes from (never the value).
    pub fn describe(&self) -> String {
        match self {
            SecretRef::Env(v) => format!("env:{v}"),
            SecretRef::File(p) => format!("file:{}", p.display()),
            SecretRef::Inline(_) => "inline value".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
    }

    #[test]
    fn parses_refs() {
        assert_eq!(
            SecretRef::parse("env:X", None).unwrap(),
            SecretRef::Env("X".into())
        );
        assert_eq!(
            SecretRef::parse("file:k.txt", Some(Path::new("/etc"))).unwrap(),
            SecretRef::File("/etc/k.txt".into())
        );
        assert!(matches!(
            SecretRef::parse("lit", None).unwrap(),
            SecretRef::Inline(_)
        ));
        assert_eq!(SecretRef::parse("env:", None), Err(SecretError::Empty));
    }

    #[test]
    fn unset_env_names_the_variable() {
        let r = SecretRef::Env("FERRY_SURELY_UNSET_VAR".into()).resolve();
        assert_eq!(
            r,
            Err(SecretError::EnvUnset("FERRY_SURELY_UNSET_VAR".into()))
        );
    }
}
