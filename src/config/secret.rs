//! Secret references (`env:VAR`, `file:PATH`) and the [`Secret`] wrapper that never prints its value.

use std::fmt;
use std::path::{Path, PathBuf};

/// A resolved secret value. `Debug` and `Display` print `***`, so a secret cannot leak through
/// logs, reports or error messages by accident; call [`Secret::expose`] only where the value is
/// sent to the service that needs it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value, and registers it (in every form it travels) with the process's scrubber:
    /// no output of this process shows it afterwards.
    pub fn new(value: impl Into<String>) -> Self {
        let v = value.into();
        register(&v);
        Secret(v)
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

// ------------------------------------------------------------------------------ scrubbing

/// Secrets shorter than this are replaced only where they stand as a word of their own (a
/// one-letter password must not blank out every `a` of a report).
const SHORT: usize = 4;
/// The largest secret file read (a secret is a line, a key; not a disk image).
pub const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Every form of every secret this process knows: the value, its URL encodings, its base64
/// (alone and in `user:password` pairs registered with [`register_basic`]). Longest first.
static FORMS: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

fn add_form(forms: &mut Vec<String>, f: String) {
    if !f.is_empty() && !forms.contains(&f) {
        forms.push(f);
    }
}

fn with_forms(f: impl FnOnce(&mut Vec<String>)) {
    let mut g = FORMS.write().unwrap_or_else(|p| p.into_inner());
    f(&mut g);
    g.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
}

fn encodings(v: &str) -> Vec<String> {
    use base64::Engine as _;
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let b64 = base64::engine::general_purpose::STANDARD;
    let url = utf8_percent_encode(v, NON_ALPHANUMERIC).to_string();
    let form: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
    let mut out = vec![v.to_string(), url, form];
    if v.len() >= SHORT {
        out.push(b64.encode(v));
        out.push(b64.encode(v).trim_end_matches('=').to_string());
    }
    out
}

/// Registers a secret value (and its URL-encoded and base64 forms) with the scrubber. Tokens
/// ferry obtains are registered when obtained ([`Secret::new`] does it).
pub fn register(value: &str) {
    if value.is_empty() {
        return;
    }
    with_forms(|forms| {
        for f in encodings(value) {
            add_form(forms, f);
        }
    });
}

/// Registers the HTTP Basic credentials `user:password` as they travel: base64 of the pair,
/// also with both halves URL-encoded (RFC 6749 client authentication).
pub fn register_basic(user: &str, password: &str) {
    use base64::Engine as _;
    if password.is_empty() {
        return;
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let enc = |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    register(password);
    with_forms(|forms| {
        for pair in [
            format!("{user}:{password}"),
            format!("{}:{}", enc(user), enc(password)),
        ] {
            add_form(forms, b64.encode(&pair));
            add_form(forms, b64.encode(&pair).trim_end_matches('=').to_string());
        }
    });
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// Replaces `form` in `text`: anywhere, or as a whole word when it is short.
fn replace_form(text: &str, form: &str) -> String {
    if form.chars().count() >= SHORT {
        return text.replace(form, "***");
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(form) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + form.len()..].chars().next();
        out.push_str(&rest[..i]);
        if before.is_some_and(is_word) || after.is_some_and(is_word) {
            out.push_str(form);
        } else {
            out.push_str("***");
        }
        rest = &rest[i + form.len()..];
    }
    out.push_str(rest);
    out
}

/// Replaces every registered secret form, and every value of `extra`, with `***`.
pub fn scrub(text: &str, extra: &[Secret]) -> String {
    let mut out = text.to_string();
    for s in extra {
        if !s.0.is_empty() && out.contains(&s.0) {
            out = replace_form(&out, &s.0);
        }
    }
    let forms = FORMS.read().unwrap_or_else(|p| p.into_inner());
    for f in forms.iter() {
        if out.contains(f.as_str()) {
            out = replace_form(&out, f);
        }
    }
    out
}

/// A `tracing` writer to stderr that scrubs every event (logs of every level, retry warnings).
#[derive(Clone, Copy, Default)]
pub struct ScrubbedStderr;

/// One event's bytes, scrubbed and written to stderr when dropped.
pub struct ScrubbedLine(Vec<u8>);

impl std::io::Write for ScrubbedLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ScrubbedLine {
    fn drop(&mut self) {
        use std::io::Write as _;
        let text = scrub(&String::from_utf8_lossy(&self.0), &[]);
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ScrubbedStderr {
    type Writer = ScrubbedLine;
    fn make_writer(&'a self) -> ScrubbedLine {
        ScrubbedLine(Vec::with_capacity(256))
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
            SecretRef::File(p) => {
                read_secret_file(p).map(|s| Secret::new(s.trim_end_matches(['\n', '\r'])))
            }
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

/// Reads a secret file of at most [`MAX_SECRET_FILE`] bytes.
fn read_secret_file(p: &Path) -> Result<String, SecretError> {
    use std::io::Read as _;
    let err = |reason: String| SecretError::File {
        path: p.display().to_string(),
        reason,
    };
    let f = std::fs::File::open(p).map_err(|e| err(e.kind().to_string()))?;
    let mut buf = Vec::new();
    f.take(MAX_SECRET_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| err(e.kind().to_string()))?;
    if buf.len() as u64 > MAX_SECRET_FILE {
        return Err(err(format!(
            "larger than {} KiB: not a secret",
            MAX_SECRET_FILE / 1024
        )));
    }
    String::from_utf8(buf).map_err(|_| err("not UTF-8 text".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_every_form() {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let _s = Secret::new("p@ss w/rd+9");
        register_basic("svc-user", "p@ss w/rd+9");
        let _t = Secret::new("ab");
        let text = format!(
            "lit p@ss w/rd+9 url p%40ss%20w%2Frd%2B9 form p%40ss+w%2Frd%2B9 basic {} b64 {} short ab, cab",
            b64.encode("svc-user:p@ss w/rd+9"),
            b64.encode("p@ss w/rd+9"),
        );
        let out = scrub(&text, &[]);
        assert!(!out.contains("p@ss"), "{out}");
        assert!(!out.contains("%40ss"), "{out}");
        assert!(!out.contains(&b64.encode("svc-user:p@ss w/rd+9")), "{out}");
        assert!(!out.contains(&b64.encode("p@ss w/rd+9")), "{out}");
        assert!(out.contains("short ***,"), "{out}");
        assert!(
            out.contains("cab"),
            "a short secret inside a word stays: {out}"
        );
    }

    #[test]
    fn secret_files_are_bounded() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("big");
        std::fs::write(&p, vec![b'x'; (MAX_SECRET_FILE + 1) as usize]).unwrap();
        let e = SecretRef::File(p).resolve().unwrap_err();
        assert!(e.to_string().contains("not a secret"), "{e}");
    }

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
