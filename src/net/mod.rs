//! HTTP helpers shared by ferry's clients (the OIC client and the identity-domain client), and
//! the one OAuth 2.0 token source they both use ([`oauth`]). A leaf: depends on `config` and the
//! report escaping only.

pub mod oauth;

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Describes a reqwest error without its URL: kind plus the chain of causes.
pub fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "body transfer failed"
    } else if e.is_request() {
        "request failed"
    } else {
        "HTTP error"
    };
    let mut out = kind.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(n) = v.parse::<u64>() {
        return Some(Duration::from_secs(n));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let secs = (when.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .num_seconds()
        .max(0);
    Some(Duration::from_secs(secs as u64))
}

/// At most `n` characters, with `...` when cut; whitespace collapsed, control characters shown
/// as `\u{..}` (server text never drives a terminal).
pub fn truncate(s: &str, n: usize) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let s = crate::ledger::report::escape_controls(&s);
    if s.chars().count() <= n {
        s
    } else {
        format!("{}...", s.chars().take(n).collect::<String>())
    }
}
