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

    /// Posts `payload` as JSON (one attempt). Success is any 2xx.
    pub async fn post(&self, payload: &serde_json::Value) -> Result<(), NotifyError> {
        let resp = self
            .client
            .post(self.url.expose())
            .json(payload)
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
        let body = resp.text().await.unwrap_or_default();
        Err(NotifyError::WebhookStatus {
            host: self.host.clone(),
            status: status.as_u16(),
            body: body.chars().take(200).collect(),
        })
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
