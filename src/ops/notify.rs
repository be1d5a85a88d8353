//! Notifications of a run: the report by mail (and webhook), now or when the run ends. A
//! notification never fails the run: a mail that cannot be sent is a failed `notify` step in the
//! record and a warning line.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::config::{Config, ConfigError};
use crate::ledger::{Report, RunInfo, StepError, StepStatus};
use crate::notify::{
    Delivery, DeliveryStatus, Mailer, Message, Owners, Scope, Webhook, When, compose, deliver,
    post_webhook, subject, webhook_payload,
};
use crate::oic::{Integration, OicClient};

use super::OpsError;
use super::run::Run;

/// The options of `notify::report` / `notify::at_end` (unknown keys refused; `source`, an
/// instance, is the caller's: see [`source_owners`]).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyOptions {
    /// E-mails; default `[mail] admins`.
    pub to: Option<Recipients>,
    pub owners: Option<OwnersOption>,
    /// `always` (default) or `failure`.
    pub when: Option<String>,
    pub mail: Option<bool>,
    /// Default: true when a webhook is configured.
    pub webhook: Option<bool>,
}

/// An e-mail address or a list of them.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged, expecting = "`to`: an e-mail address or a list of them")]
pub enum Recipients {
    One(String),
    Many(Vec<String>),
}

/// `owners: true` (each integration's lastUpdatedBy) or a map of integration code to e-mail.
#[derive(Clone, Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "`owners`: true (lastUpdatedBy) or a map of integration code to e-mail"
)]
pub enum OwnersOption {
    LastUpdatedBy(bool),
    Explicit(BTreeMap<String, String>),
}

/// An item given to `notify::report(items, ...)` that tells an owner: an integration (`code`,
/// `last_updated_by`) or a result map with `code` and `owner` (other keys ignored).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct OwnedItem {
    pub code: String,
    pub owner: Option<String>,
    pub last_updated_by: Option<String>,
}

impl From<&Integration> for OwnedItem {
    fn from(i: &Integration) -> OwnedItem {
        OwnedItem {
            code: i.code.clone(),
            owner: None,
            last_updated_by: Some(i.last_updated_by.clone()),
        }
    }
}

/// The request of `notify::report` / `notify::at_end`: `opts` under `config`, the owners
/// `items` tell, and for codes they do not name the lastUpdatedBy of `source`'s integrations.
pub async fn request(
    config: &Config,
    opts: NotifyOptions,
    items: &[OwnedItem],
    source: Option<&OicClient>,
) -> Result<NotifyRequest, OpsError> {
    let mut owners = owners_of(items);
    if let Some(oic) = source {
        source_owners(oic, &mut owners).await?;
    }
    opts.request(config, owners)
}

/// Integration code -> owner, from the items (`owner` before `last_updated_by`; empty ones
/// skipped).
pub fn owners_of(items: &[OwnedItem]) -> BTreeMap<String, String> {
    items
        .iter()
        .filter_map(|i| {
            let who = i.owner.as_ref().or(i.last_updated_by.as_ref())?;
            (!who.is_empty()).then(|| (i.code.clone(), who.clone()))
        })
        .collect()
}

/// Adds the lastUpdatedBy of every integration of `oic` that `owners` does not know yet.
pub async fn source_owners(
    oic: &OicClient,
    owners: &mut BTreeMap<String, String>,
) -> Result<(), OpsError> {
    let list = oic
        .list_integrations(None)
        .await
        .map_err(|e| OpsError::oic(oic.name(), e))?;
    for i in list.into_iter().filter(|i| !i.last_updated_by.is_empty()) {
        owners
            .entry(i.code.clone())
            .or_insert(i.last_updated_by.clone());
    }
    Ok(())
}

fn no_webhook() -> OpsError {
    OpsError::Config(Box::new(ConfigError::Missing(
        "no webhook configured: set `webhook = \"URL\"` (or a secret reference) in [mail]".into(),
    )))
}

impl NotifyOptions {
    /// Only the webhook, with the run's summary (`notify::webhook()`).
    pub fn webhook_only() -> NotifyOptions {
        NotifyOptions {
            mail: Some(false),
            webhook: Some(true),
            ..Default::default()
        }
    }

    /// The request these options make under `config`; `last_updated_by` (code -> e-mail) serves
    /// `owners: true`. Refuses a webhook that is not configured, and a request that notifies
    /// nobody.
    pub fn request(
        self,
        config: &Config,
        last_updated_by: BTreeMap<String, String>,
    ) -> Result<NotifyRequest, OpsError> {
        let mail_cfg = config.mail.as_ref();
        let to = match self.to {
            None => mail_cfg.map(|m| m.admins.clone()).unwrap_or_default(),
            Some(Recipients::One(x)) => vec![x],
            Some(Recipients::Many(v)) => v,
        };
        let when = match self.when {
            None => When::Always,
            Some(v) => When::parse(&v).ok_or_else(|| {
                OpsError::Usage(format!(
                    "`when` must be \"always\" or \"failure\", not `{v}`"
                ))
            })?,
        };
        let has_hook = mail_cfg.is_some_and(|m| m.webhook.is_some());
        let mail = self.mail.unwrap_or(true);
        let webhook = self.webhook.unwrap_or(has_hook);
        if webhook && !has_hook {
            return Err(no_webhook());
        }
        let owners = match self.owners {
            None | Some(OwnersOption::LastUpdatedBy(false)) => None,
            Some(OwnersOption::LastUpdatedBy(true)) => Some(BTreeMap::new()),
            Some(OwnersOption::Explicit(m)) => Some(m),
        }
        .map(|explicit| Owners {
            explicit,
            last_updated_by,
        });
        if mail && to.is_empty() && owners.is_none() && !webhook {
            return Err(OpsError::Usage(
                "nobody to notify: give `to: [...]`, `owners: true`, or set `admins` in [mail]"
                    .into(),
            ));
        }
        Ok(NotifyRequest {
            to,
            owners,
            when,
            mail,
            webhook,
        })
    }
}

/// Posts the run's summary to the webhook (`notify::webhook()`): its delivery, if any.
pub async fn post_summary(run: &Run) -> Result<Option<Delivery>, OpsError> {
    let req = NotifyOptions::webhook_only().request(&run.config, BTreeMap::new())?;
    Ok(send(run, run.exec.record().info(), &req)
        .await
        .into_iter()
        .next())
}

/// Posts `#{ text }` as JSON to the webhook of `[mail] webhook` (a chat message).
pub async fn post_text(run: &Run, text: &str) -> Result<Delivery, OpsError> {
    let Some(p) = run.config.mail.as_ref().and_then(|m| m.webhook.as_ref()) else {
        return Err(OpsError::Config(Box::new(ConfigError::Missing(
            "no webhook configured: set `webhook = \"URL\"` in [mail]".into(),
        ))));
    };
    let hook = Webhook::from_profile(p)
        .map_err(|e| OpsError::Config(Box::new(ConfigError::Missing(e.to_string()))))?;
    let payload = serde_json::json!({ "text": text });
    Ok(post_webhook(&run.exec, &hook, text, &payload).await)
}

/// The folder mail is written to instead of being sent (`--sandbox` or `[mail] outbox`), as an
/// absolute path; `None` when mail goes to an SMTP server.
pub fn outbox(config: &Config, sandbox: bool) -> Option<PathBuf> {
    let dir = match config.mail.as_ref().and_then(|m| m.outbox.clone()) {
        Some(d) => d,
        None if sandbox => config.state_dir.join("sandbox").join("outbox"),
        None => return None,
    };
    Some(std::path::absolute(&dir).unwrap_or(dir))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(text, "ferry.toml", std::path::Path::new(".")).expect("config")
    }

    fn opts(v: serde_json::Value) -> NotifyOptions {
        serde_json::from_value(v).expect("options")
    }

    #[test]
    fn requests_default_to_the_admins_and_refuse_nobody() {
        let c = config("[mail]\nadmins = ['ops@example.com']\n");
        let r = NotifyOptions::default()
            .request(&c, BTreeMap::new())
            .unwrap();
        assert_eq!(r.to, ["ops@example.com"]);
        assert!(r.mail && !r.webhook && r.owners.is_none() && r.when == When::Always);

        let r = opts(serde_json::json!({ "to": "a@x.io", "when": "failure", "owners": true }))
            .request(&c, BTreeMap::from([("HR".into(), "h@x.io".into())]))
            .unwrap();
        assert_eq!(r.to, ["a@x.io"]);
        assert_eq!(r.when, When::Failure);
        let o = r.owners.expect("owners");
        assert!(o.explicit.is_empty());
        assert_eq!(o.last_updated_by["HR"], "h@x.io");

        let none = config("");
        let e = NotifyOptions::default()
            .request(&none, BTreeMap::new())
            .unwrap_err();
        assert!(e.to_string().starts_with("nobody to notify"), "{e}");
        let e = opts(serde_json::json!({ "webhook": true }))
            .request(&c, BTreeMap::new())
            .unwrap_err();
        assert!(matches!(e, OpsError::Config(_)), "{e}");
        let e = opts(serde_json::json!({ "when": "sometimes" }))
            .request(&c, BTreeMap::new())
            .unwrap_err();
        assert!(e.to_string().contains("not `sometimes`"), "{e}");
        assert!(serde_json::from_value::<NotifyOptions>(serde_json::json!({ "cc": 1 })).is_err());
    }

    #[test]
    fn owners_come_from_owner_then_last_updated_by() {
        let items = [
            OwnedItem {
                code: "A".into(),
                owner: Some("o@x.io".into()),
                last_updated_by: Some("l@x.io".into()),
            },
            OwnedItem {
                code: "B".into(),
                owner: None,
                last_updated_by: Some("l@x.io".into()),
            },
            OwnedItem {
                code: "C".into(),
                owner: None,
                last_updated_by: Some(String::new()),
            },
        ];
        let m = owners_of(&items);
        assert_eq!(m.len(), 2);
        assert_eq!((m["A"].as_str(), m["B"].as_str()), ("o@x.io", "l@x.io"));
    }

    #[tokio::test]
    async fn a_request_takes_its_owners_from_the_items() {
        let c = config("[mail]\nadmins = ['ops@example.com']\n");
        let i = Integration::from_json(
            serde_json::json!({ "id": "HR|01.00.0000", "lastUpdatedBy": "h@x.io" }),
        );
        let items = [
            OwnedItem::from(&i),
            OwnedItem {
                code: "FIN".into(),
                owner: Some("f@x.io".into()),
                last_updated_by: None,
            },
        ];
        let r = request(
            &c,
            opts(serde_json::json!({ "owners": true })),
            &items,
            None,
        )
        .await;
        let o = r.unwrap().owners.expect("owners");
        assert_eq!(
            (
                o.last_updated_by["HR"].as_str(),
                o.last_updated_by["FIN"].as_str()
            ),
            ("h@x.io", "f@x.io")
        );
        let e = request(&config(""), NotifyOptions::default(), &items, None)
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("nobody to notify"), "{e}");
    }

    #[test]
    fn the_sandbox_has_an_outbox() {
        let c = config("");
        assert!(outbox(&c, false).is_none());
        let dir = outbox(&c, true).expect("outbox");
        assert!(
            dir.is_absolute() && dir.ends_with("sandbox/outbox"),
            "{dir:?}"
        );
    }
}
