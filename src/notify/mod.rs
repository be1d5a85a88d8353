//! Notifications at the end of a run: e-mail (SMTP through `lettre`, or `.eml` files in an outbox
//! folder) and webhooks (a JSON POST for chat tools).
//!
//! * [`Message`] is what is sent: recipients, subject, a text and an HTML part, attachments.
//!   [`compose`] builds the messages of a run from its [`Report`](crate::ledger::Report): the full
//!   report for the administrators, and for each owner only their own artifacts.
//! * [`Mailer`] delivers messages: SMTP with STARTTLS or implicit TLS, authentication, timeouts
//!   and a pooled connection shared by all messages of a run; or an outbox folder of `.eml`
//!   files (`--sandbox`, or `[mail] outbox`).
//! * [`Webhook`] posts a JSON summary to a URL.
//! * [`deliver`] and [`post_webhook`] send through the effect [`Executor`]: every message is a
//!   recorded `notify` step, retried when the failure is transient, and only planned in a dry
//!   run. A notification failure is recorded; it never stops the run.

pub mod compose;
mod mailer;
mod webhook;

pub use compose::{Owners, Scope, When, compose, has_failures, html_report, subject};
pub use mailer::{Mailer, Sent};
pub use webhook::{Webhook, neutralize, sanitize, webhook_payload};

use crate::artifact::{ArtifactKey, ArtifactKind};
use crate::effect::{Effect, EffectOutput, Executor, Outcome};
use crate::ledger::Stage;

/// Everything that can go wrong sending a notification. No variant carries a password or a
/// webhook URL (which usually holds a token): webhooks are named by their host only.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The mail settings or a message cannot be used (bad address, unreadable CA file...).
    #[error("mail: {0}")]
    Settings(String),
    /// The SMTP server refused or the connection failed.
    #[error("SMTP {server}: {message}")]
    Smtp {
        /// `host:port`.
        server: String,
        message: String,
        /// The SMTP reply code, when the server answered.
        code: Option<u16>,
        /// True for 4xx replies, dropped connections and timeouts.
        transient: bool,
        timeout: bool,
    },
    /// The outbox folder cannot be written.
    #[error("outbox {path}: {reason}")]
    Outbox { path: String, reason: String },
    /// The webhook answered with a non-success status.
    #[error("webhook {host}: HTTP {status}: {body}")]
    WebhookStatus {
        host: String,
        status: u16,
        body: String,
    },
    /// The webhook could not be reached.
    #[error("webhook {host}: {reason}")]
    WebhookTransport {
        host: String,
        reason: String,
        timeout: bool,
    },
}

impl crate::effect::Classify for NotifyError {
    fn retryable(&self) -> bool {
        self.is_retryable()
    }
    fn status(&self) -> Option<u16> {
        NotifyError::status(self)
    }
    fn kind(&self) -> &'static str {
        NotifyError::kind(self)
    }
}

crate::into_failure!(NotifyError);

impl NotifyError {
    /// True for failures worth another attempt.
    pub fn is_retryable(&self) -> bool {
        match self {
            NotifyError::Smtp { transient, .. } => *transient,
            NotifyError::WebhookStatus { status, .. } => *status == 429 || *status >= 500,
            NotifyError::WebhookTransport { .. } => true,
            NotifyError::Settings(_) | NotifyError::Outbox { .. } => false,
        }
    }
    /// The HTTP status (webhooks) or the SMTP reply code.
    pub fn status(&self) -> Option<u16> {
        match self {
            NotifyError::Smtp { code, .. } => *code,
            NotifyError::WebhookStatus { status, .. } => Some(*status),
            _ => None,
        }
    }
    /// `smtp`, `timeout`, `webhook`, `io` or `config`.
    pub fn kind(&self) -> &'static str {
        match self {
            NotifyError::Smtp { timeout: true, .. }
            | NotifyError::WebhookTransport { timeout: true, .. } => "timeout",
            NotifyError::Smtp { .. } => "smtp",
            NotifyError::WebhookStatus { .. } => "http",
            NotifyError::WebhookTransport { .. } => "transport",
            NotifyError::Outbox { .. } => "io",
            NotifyError::Settings(_) => "config",
        }
    }
}

/// One attachment.
#[derive(Clone, Debug)]
pub struct Attachment {
    pub filename: String,
    /// `text/html; charset=utf-8`, `application/json`...
    pub content_type: String,
    pub content: Vec<u8>,
}

/// A message to send.
#[derive(Clone, Debug, Default)]
pub struct Message {
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attachments: Vec<Attachment>,
}

/// How the delivery of one message ended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Accepted by the server (or written to the outbox).
    Sent,
    /// Dry run: described, not sent.
    Planned,
    /// Failed after the retries; recorded as a failed `notify` step.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Planned => "planned",
            DeliveryStatus::Failed => "failed",
        }
    }
}

/// The result of sending one message or webhook (as scripts see it, serialised).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Delivery {
    pub to: Vec<String>,
    pub subject: String,
    pub status: DeliveryStatus,
    /// The `.eml` file, for the outbox.
    pub path: Option<std::path::PathBuf>,
    /// Root cause first, when it failed.
    pub error: Option<String>,
}

/// The key a notification step is recorded under in the run record.
///
/// The ledger keys steps by artifact; a notification is not an artifact, so it is recorded under
/// a pseudo-artifact of kind `message`, named after the channel and the first recipient
/// (`mail:ops@example.com`).
pub fn step_key(channel: &str, first: &str) -> ArtifactKey {
    ArtifactKey::new(ArtifactKind::Message, format!("{channel}:{first}"), "")
}

impl EffectOutput for Sent {}

/// Sends every message through the executor (one recorded `notify` step each, retried when
/// transient, planned in a dry run). Never fails: failures are in the returned deliveries and in
/// the run record.
pub async fn deliver(exec: &Executor, mailer: &Mailer, messages: &[Message]) -> Vec<Delivery> {
    let mut out = Vec::with_capacity(messages.len());
    for m in messages {
        let first = m.to.first().map(String::as_str).unwrap_or("nobody");
        let more = if m.to.len() > 1 {
            format!(" (+{})", m.to.len() - 1)
        } else {
            String::new()
        };
        let eff = Effect::new(
            Stage::Notify,
            step_key("mail", &format!("{first}{more}")),
            mailer.target(),
            format!("mail \"{}\" to {}", m.subject, m.to.join(", ")),
        );
        let r = exec
            .run(eff, || async {
                mailer.send(m).await.map_err(crate::effect::Failure::from)
            })
            .await;
        let (status, path, error) = match r {
            Ok(Outcome::Done(sent)) => (DeliveryStatus::Sent, sent.path, None),
            Ok(Outcome::Planned) => (DeliveryStatus::Planned, None, None),
            Ok(Outcome::Skipped(why)) => (DeliveryStatus::Planned, None, Some(why.to_string())),
            Err(e) => {
                tracing::warn!("{e}");
                (DeliveryStatus::Failed, None, Some(e.error.message))
            }
        };
        out.push(Delivery {
            to: m.to.clone(),
            subject: m.subject.clone(),
            status,
            path,
            error,
        });
    }
    out
}

/// Posts `payload` to the webhook through the executor (a recorded `notify` step). Never fails:
/// the failure is in the returned delivery and in the run record.
pub async fn post_webhook(
    exec: &Executor,
    hook: &Webhook,
    subject: &str,
    payload: &serde_json::Value,
) -> Delivery {
    let eff = Effect::new(
        Stage::Notify,
        step_key("webhook", hook.host()),
        format!("webhook {}", hook.host()),
        format!("post \"{subject}\""),
    );
    let r = exec
        .run(eff, || async {
            hook.post(payload)
                .await
                .map_err(crate::effect::Failure::from)
        })
        .await;
    let (status, error) = match r {
        Ok(Outcome::Done(())) => (DeliveryStatus::Sent, None),
        Ok(_) => (DeliveryStatus::Planned, None),
        Err(e) => {
            tracing::warn!("{e}");
            (DeliveryStatus::Failed, Some(e.error.message))
        }
    };
    Delivery {
        to: vec![format!("webhook {}", hook.host())],
        subject: subject.to_string(),
        status,
        path: None,
        error,
    }
}
