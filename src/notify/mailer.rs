//! The mail transport: SMTP (lettre, pooled) or an outbox folder of `.eml` files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{Message, NotifyError};
use crate::config::{MailProfile, SmtpProfile, SmtpTls};

enum Transport {
    Smtp(Box<AsyncSmtpTransport<Tokio1Executor>>),
    Outbox(PathBuf),
}

/// Delivers messages. Build it once per run: the SMTP transport keeps a small pool of
/// connections, so several messages share one session.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    target: String,
}

/// What a successful send produced.
#[derive(Clone, Debug)]
pub struct Sent {
    /// The `.eml` file (outbox only).
    pub path: Option<PathBuf>,
}

fn settings(msg: impl Into<String>) -> NotifyError {
    NotifyError::Settings(msg.into())
}

impl Mailer {
    /// A mailer for the `[mail]` profile: the outbox when `outbox` is set, else SMTP.
    pub fn from_profile(p: &MailProfile) -> Result<Mailer, NotifyError> {
        let from = p.from.as_deref().unwrap_or("ferry <ferry@localhost>");
        if let Some(dir) = &p.outbox {
            return Mailer::outbox(dir, from);
        }
        match &p.smtp {
            Some(s) => Mailer::smtp(s, from),
            None => Err(settings(
                "no SMTP server configured: set `host` (and `port`, `tls`, `username`, `password`) in [mail], or `outbox`",
            )),
        }
    }

    /// An SMTP mailer; call it inside a Tokio runtime (the connection pool spawns a task), and
    /// drop it there too. STARTTLS is required when `tls = "starttls"` (a server that does not offer
    /// it is refused rather than spoken to in clear).
    pub fn smtp(s: &SmtpProfile, from: &str) -> Result<Mailer, NotifyError> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| settings(format!("`from` address `{from}`: {e}")))?;
        let tls = match s.tls {
            SmtpTls::None => Tls::None,
            mode => {
                let mut b = TlsParameters::builder(s.host.clone());
                if let Some(ca) = &s.ca_file {
                    let pem = std::fs::read(ca).map_err(|e| {
                        settings(format!("cannot read ca_file {}: {e}", ca.display()))
                    })?;
                    let cert = Certificate::from_pem(&pem).map_err(|e| {
                        settings(format!(
                            "ca_file {}: not a PEM certificate: {e}",
                            ca.display()
                        ))
                    })?;
                    b = b.add_root_certificate(cert);
                }
                if s.accept_invalid_certs {
                    b = b.dangerous_accept_invalid_certs(true);
                }
                let params = b
                    .build_rustls()
                    .map_err(|e| settings(format!("TLS settings: {e}")))?;
                if mode == SmtpTls::Implicit {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        let timeout = Duration::from_secs(s.timeout_secs);
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
            .port(s.port)
            .tls(tls)
            .timeout(Some(timeout))
            .pool_config(
                PoolConfig::new()
                    .max_size(2)
                    .idle_timeout(Duration::from_secs(30)),
            );
        if let (Some(u), Some(p)) = (&s.username, &s.password) {
            b = b.credentials(Credentials::new(u.clone(), p.expose().to_string()));
        }
        let mode = match s.tls {
            SmtpTls::StartTls => "starttls",
            SmtpTls::Implicit => "tls",
            SmtpTls::None => "plain",
        };
        Ok(Mailer {
            transport: Transport::Smtp(Box::new(b.build())),
            from,
            target: format!("smtp {}:{} ({mode})", s.host, s.port),
        })
    }

    /// A mailer that writes each message as an `.eml` file into `dir` (created when missing).
    pub fn outbox(dir: &Path, from: &str) -> Result<Mailer, NotifyError> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| settings(format!("`from` address `{from}`: {e}")))?;
        Ok(Mailer {
            transport: Transport::Outbox(dir.to_path_buf()),
            from,
            target: format!("outbox {}", dir.display()),
        })
    }

    /// Where messages go, for the record: `smtp host:port (starttls)` or `outbox DIR`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The outbox folder, when this mailer writes files.
    pub fn outbox_dir(&self) -> Option<&Path> {
        match &self.transport {
            Transport::Outbox(d) => Some(d),
            Transport::Smtp(_) => None,
        }
    }

    /// Builds the MIME message: `multipart/mixed` of (`multipart/alternative` text + HTML) and
    /// the attachments.
    pub fn build(&self, m: &Message) -> Result<lettre::Message, NotifyError> {
        if m.to.is_empty() {
            return Err(settings("a message without recipients"));
        }
        // Every secret form the process knows is scrubbed from what leaves in a mail.
        let scrub = |t: &str| crate::config::scrub(t, &[]);
        let mut b = lettre::Message::builder()
            .from(self.from.clone())
            .subject(scrub(&m.subject));
        for to in &m.to {
            let mb: Mailbox = to
                .parse()
                .map_err(|e| settings(format!("recipient `{to}`: {e}")))?;
            b = b.to(mb);
        }
        let alt = MultiPart::alternative_plain_html(scrub(&m.text), scrub(&m.html));
        let body = if m.attachments.is_empty() {
            alt
        } else {
            let mut mixed = MultiPart::mixed().multipart(alt);
            for a in &m.attachments {
                let ct = ContentType::parse(&a.content_type).map_err(|e| {
                    settings(format!("attachment {}: content type: {e}", a.filename))
                })?;
                let content = match String::from_utf8(a.content.clone()) {
                    Ok(t) => scrub(&t).into_bytes(),
                    Err(_) => a.content.clone(),
                };
                let part: SinglePart =
                    lettre::message::Attachment::new(a.filename.clone()).body(content, ct);
                mixed = mixed.singlepart(part);
            }
            mixed
        };
        b.multipart(body)
            .map_err(|e| settings(format!("cannot build the message: {e}")))
    }

    /// Sends one message (one attempt; the executor retries).
    pub async fn send(&self, m: &Message) -> Result<Sent, NotifyError> {
        let msg = self.build(m)?;
        match &self.transport {
            Transport::Smtp(t) => {
                t.send(msg)
                    .await
                    .map_err(|e| smtp_error(&self.target, &e))?;
                Ok(Sent { path: None })
            }
            Transport::Outbox(dir) => {
                let path = write_eml(dir, &m.subject, &msg.formatted())?;
                Ok(Sent { path: Some(path) })
            }
        }
    }
}

fn smtp_error(target: &str, e: &lettre::transport::smtp::Error) -> NotifyError {
    let server = target
        .strip_prefix("smtp ")
        .and_then(|s| s.split(' ').next())
        .unwrap_or(target)
        .to_string();
    let code = e.status().map(|c| {
        let s = c.to_string();
        s.parse::<u16>().unwrap_or(0)
    });
    let timeout = e.is_timeout();
    let mut message = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let t = s.to_string();
        if !message.contains(&t) {
            message = format!("{message}: {t}");
        }
        src = s.source();
    }
    let message = message.replace("Connection error: Connection error: ", "connection error: ");
    // A certificate the client does not trust arrives as a connection error wrapping rustls's.
    let tls_refused =
        e.is_tls() || message.contains("certificate") || message.contains("handshake");
    // 4xx replies, refused or dropped connections and timeouts are worth another attempt; 5xx
    // replies (bad password, refused recipient) and TLS failures are not.
    let transient = e.is_transient()
        || timeout
        || (!e.is_permanent() && !tls_refused && !e.is_client() && !e.is_response());
    NotifyError::Smtp {
        server,
        message,
        code,
        transient,
        timeout,
    }
}

/// Writes `bytes` to `<dir>/<timestamp>-<slug>.eml` through a temporary file and a rename.
fn write_eml(dir: &Path, subject: &str, bytes: &[u8]) -> Result<PathBuf, NotifyError> {
    let werr = |e: std::io::Error| NotifyError::Outbox {
        path: dir.display().to_string(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(werr)?;
    let slug: String = subject
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .take(8)
        .collect::<Vec<_>>()
        .join("-");
    let name = format!(
        "{}-{:04x}-{}.eml",
        chrono::Utc::now().format("%Y%m%d-%H%M%S"),
        rand::random::<u16>(),
        slug
    );
    let path = dir.join(name);
    let tmp = path.with_extension("eml.tmp");
    std::fs::write(&tmp, bytes).map_err(werr)?;
    std::fs::rename(&tmp, &path).map_err(werr)?;
    Ok(path)
}
