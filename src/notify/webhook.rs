//! Webhook notifications: a JSON POST (Slack/Teams-style `text` plus the run's facts).

use std::time::Duration;

use super::NotifyError;
use super::compose::{Scope, has_failures};
use crate::config::{Secret, WebhookProfile};
use crate::ledger::Report;

/// A webhook endpoint. Its URL is a secret (chat webhooks carry their token in the path); only the
/// host is ever shown.
pub struct Webhook {
    client: reqwest::Client,
    url: Secret,
    host: String,
}

impl Webhook {
    /// A webhook for the `[mail] webhook` setting.
    pub fn from_profile(p: &WebhookProfile) -> Result<Webhook, NotifyError> {
        Webhook::new(p.url.clone(), Duration::from_secs(p.timeout_secs))
    }

    /// A webhook posting to `url` with a per-request timeout.
    pub fn new(url: Secret, timeout: Duration) -> Result<Webhook, NotifyError> {
        let host = url::Url::parse(url.expose())
            .ok()
            .and_then(|u| {
                u.host_str().map(|h| {
                    format!(
                        "{h}{}",
                        u.port().map(|p| format!(":{p}")).unwrap_or_default()
                    )
                })
            })
            .ok_or_else(|| NotifyError::Settings("the webhook is not an http(s) URL".into()))?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| NotifyError::Settings(format!("webhook client: {e}")))?;
        Ok(Webhook { client, url, host })
    }

    /// The host (and port) of the URL, for messages and the record.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Posts `payload` as JSON (one attempt). Success is any 2xx. Every string in it is
    /// [`sanitize`]d first: secrets scrubbed, chat mentions neutralised, control characters
    /// escaped.
    pub async fn post(&self, payload: &serde_json::Value) -> Result<(), NotifyError> {
        let payload = sanitize(payload);
        let resp = self
            .client
            .post(self.url.expose())
            .json(&payload)
            .send()
            .await
            .map_err(|e| NotifyError::WebhookTransport {
                host: self.host.clone(),
                // reqwest's message includes the URL: keep only the kind of failure.
                reason: if e.is_timeout() {
                    "timed out".into()
                } else if e.is_connect() {
                    "cannot connect".into()
                } else {
                    "request failed".into()
                },
                timeout: e.is_timeout(),
            })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        // At most 4 KiB of the answer is read.
        let mut resp = resp;
        let mut body = Vec::new();
        while body.len() < 4096 {
            match resp.chunk().await {
                Ok(Some(c)) => body.extend_from_slice(&c),
                _ => break,
            }
        }
        let body = crate::config::scrub(&String::from_utf8_lossy(&body), &[]);
        Err(NotifyError::WebhookStatus {
            host: self.host.clone(),
            status: status.as_u16(),
            body: body.chars().take(200).collect(),
        })
    }
}

/// Makes a text safe for a chat channel: secrets scrubbed; `<!channel>`, `<@U1>`, `<at>`...
/// lose their angle brackets (escaped as Slack asks: `&lt;` `&gt;`, `&amp;`); `@here`,
/// `@channel`, `@everyone` get a zero-width space after the `@`; control characters other than
/// newline and tab are shown as `\u{..}`.
pub fn neutralize(text: &str) -> String {
    let text = crate::config::scrub(text, &[]);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    for m in ["here", "channel", "everyone", "all", "room"] {
        for at in ["@", "\u{FF20}"] {
            out = break_mention(&out, at, m);
        }
    }
    out
}

/// Puts a zero-width space between `at` and `word` wherever they meet (ASCII case-insensitive).
fn break_mention(text: &str, at: &str, word: &str) -> String {
    let from = format!("{at}{word}");
    let lower = text.to_ascii_lowercase();
    if !lower.contains(&from) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut last = 0;
    for (i, _) in lower.match_indices(&from) {
        out.push_str(&text[last..i + at.len()]);
        out.push('\u{200B}');
        last = i + at.len();
    }
    out.push_str(&text[last..]);
    out
}

/// Every string of a JSON value (keys included) [`neutralize`]d.
pub fn sanitize(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(neutralize(s)),
        Value::Array(a) => Value::Array(a.iter().map(sanitize).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (neutralize(k), sanitize(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The JSON posted for a run: `text` (one line per failure, for chat tools), `run`, `outcome`,
/// `summary` and `failures`.
pub fn webhook_payload(report: &Report, subject: &str) -> serde_json::Value {
    let mut text = subject.to_string();
    for f in report
        .failures
        .iter()
        .filter(|f| f.stage != crate::ledger::Stage::Notify)
    {
        let st = f
            .error
            .status
            .map(|c| format!(" HTTP {c}"))
            .unwrap_or_default();
        text.push_str(&format!(
            "\n- {} [{} on {}]{st}: {}",
            f.artifact, f.stage, f.target, f.error.message
        ));
    }
    serde_json::json!({
        "text": text,
        "run": report.run.id,
        "recipe": report.run.recipe,
        "outcome": report.run.outcome.clone().unwrap_or_else(|| {
            if has_failures(report, &Scope::All) { "failed".into() } else { "ok".into() }
        }),
        "dry_run": report.run.dry_run,
        "summary": report.summary,
        "failures": report.failures.iter().filter(|f| f.stage != crate::ledger::Stage::Notify).collect::<Vec<_>>(),
    })
}
