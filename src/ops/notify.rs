//! Notifications of a run: the report by mail (and webhook), now or when the run ends. A
//! notification never fails the run: a mail that cannot be sent is a failed `notify` step in the
//! record and a warning line.

use crate::ledger::{Report, RunInfo, StepError, StepStatus};
use crate::notify::{
    Delivery, DeliveryStatus, Mailer, Message, Owners, Scope, Webhook, When, compose, deliver,
    post_webhook, subject, webhook_payload,
};

use super::run::Run;

/// What a recipe asked for: recipients, owners, when, channels.
#[derive(Clone, Debug)]
pub struct NotifyRequest {
    pub to: Vec<String>,
    /// `None`: no owner messages; `Some`: explicit owners and/or `lastUpdatedBy`.
    pub owners: Option<Owners>,
    pub when: When,
    pub mail: bool,
    pub webhook: bool,
}

/// The mailer of a run: the outbox in `--sandbox` or with `[mail] outbox`, else SMTP. Built
/// inside the runtime (lettre's pool spawns a task when it is built).
fn mailer(run: &Run) -> Result<Mailer, String> {
    let config = &run.config;
    let profile = config.mail.clone().unwrap_or_default();
    if run.opts.sandbox && profile.outbox.is_none() {
        let dir = config.state_dir.join("sandbox").join("outbox");
        let from = profile
            .from
            .as_deref()
            .unwrap_or("ferry <ferry@sandbox.local>");
        return Mailer::outbox(&dir, from).map_err(|e| e.to_string());
    }
    if config.mail.is_none() {
        return Err("no [mail] section in the config".into());
    }
    Mailer::from_profile(&profile).map_err(|e| e.to_string())
}

fn failed(req: &NotifyRequest, report: &Report, error: String) -> Delivery {
    Delivery {
        to: req.to.clone(),
        subject: subject(report, &Scope::All),
        status: DeliveryStatus::Failed,
        path: None,
        error: Some(error),
    }
}

async fn send_mail(run: &Run, report: &Report, req: &NotifyRequest) -> Vec<Delivery> {
    let msgs: Vec<Message> = compose(report, &req.to, req.owners.as_ref(), req.when);
    if msgs.is_empty() {
        return vec![];
    }
    if !run.opts.sandbox && run.config.mail.is_none() {
        // Nothing to send with: not a delivery failure but a setting left out, so nothing is
        // recorded; the warning printed for the failed delivery says what to add.
        return vec![failed(
            req,
            report,
            "no [mail] section in the config".into(),
        )];
    }
    match mailer(run) {
        Ok(m) => deliver(&run.exec, &m, &msgs).await,
        Err(e) => {
            let eff = crate::effect::Effect::new(
                crate::ledger::Stage::Notify,
                crate::notify::step_key("mail", "config"),
                "mail",
                "send the run report",
            );
            let err = StepError {
                kind: "config".into(),
                status: None,
                message: e.clone(),
            };
            run.exec.note(&eff, StepStatus::Failed, Some(err));
            vec![failed(req, report, e)]
        }
    }
}

/// Sends the notifications of `req` for the run as it stands (`info` carries the outcome when
/// called at the end). Never fails: problems are deliveries with status `failed`, and each
/// delivery is told on the run's shell.
pub async fn send(run: &Run, info: RunInfo, req: &NotifyRequest) -> Vec<Delivery> {
    let report = run.exec.record().report_with(info);
    let mut out = vec![];
    if req.mail {
        out.extend(send_mail(run, &report, req).await);
    }
    if req.webhook
        && (req.when == When::Always || crate::notify::has_failures(&report, &Scope::All))
        && let Some(p) = run.config.mail.as_ref().and_then(|m| m.webhook.as_ref())
    {
        let s = subject(&report, &Scope::All);
        match Webhook::from_profile(p) {
            Ok(hook) => {
                let payload = webhook_payload(&report, &s);
                out.push(post_webhook(&run.exec, &hook, &s, &payload).await);
            }
            Err(e) => run.shell.warn(&e.to_string()),
        }
    }
    for d in &out {
        match (&d.status, &d.path, &d.error) {
            (DeliveryStatus::Failed, _, Some(e)) => run.shell.line(&format!(
                "warning: notification to {} not sent: {e}",
                d.to.join(", ")
            )),
            (_, Some(p), _) => run.shell.line(&format!(
                "mail to {} written to {}",
                d.to.join(", "),
                p.display()
            )),
            _ => {}
        }
    }
    out
}
