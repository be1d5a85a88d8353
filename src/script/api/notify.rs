//! The `notify` module: the run's report by e-mail (and webhook), now or at the end of the run.
//!
//! A notification never fails the run: a mail that cannot be sent is a failed `notify` step in
//! the record and a warning line, and the recipe goes on.

use crate::script::api::OrUnit;
use std::collections::BTreeMap;

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use rhai::plugin::*;

use super::{host_of, register_plugin};
use crate::notify::{Delivery, Owners, Webhook, When, post_webhook};
use crate::oic::Integration;
use crate::ops::{self, notify::NotifyRequest};
use crate::script::errors;
use crate::script::host::Host;
use serde::Deserialize;

fn usage(m: impl Into<String>) -> Box<EvalAltResult> {
    errors::usage(m)
}

/// Owners from the items given to `notify::report(items, ...)`: Integration objects (their
/// `lastUpdatedBy`) and maps with `code` and `owner` or `last_updated_by`.
fn owners_from_items(items: &Dynamic) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut add = |v: &Dynamic| {
        if let Some(i) = v.read_lock::<Integration>() {
            if !i.last_updated_by.is_empty() {
                out.insert(i.code.clone(), i.last_updated_by.clone());
            }
        } else if let Some(m) = v.read_lock::<Map>() {
            let code = m.get("code").map(|c| c.to_string());
            let who = m
                .get("owner")
                .or_else(|| m.get("last_updated_by"))
                .filter(|w| w.is_string())
                .map(|w| w.to_string());
            if let (Some(c), Some(w)) = (code, who) {
                out.insert(c, w);
            }
        }
    };
    if let Some(a) = items.read_lock::<Array>() {
        a.iter().for_each(&mut add);
    } else {
        add(items);
    }
    out
}

/// The options of `notify::report` / `notify::at_end` (unknown keys refused). `source`, an
/// Instance, is taken out of the map before: serde cannot read a script object.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct NotifyOptions {
    /// E-mails; default `[mail] admins`.
    to: Option<Recipients>,
    owners: Option<OwnersOption>,
    /// `always` (default) or `failure`.
    when: Option<String>,
    mail: Option<bool>,
    /// Default: true when a webhook is configured.
    webhook: Option<bool>,
}

/// An e-mail address or a list of them.
#[derive(Deserialize)]
#[serde(untagged, expecting = "`to`: an e-mail address or a list of them")]
enum Recipients {
    One(String),
    Many(Vec<String>),
}

/// `owners: true` (each integration's lastUpdatedBy) or a map of integration code to e-mail.
#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "`owners`: true (lastUpdatedBy) or a map of integration code to e-mail"
)]
enum OwnersOption {
    LastUpdatedBy(bool),
    Explicit(BTreeMap<String, String>),
}

/// Adds the lastUpdatedBy of every integration of `source` (an instance) that `owners` does not
/// know yet.
fn source_owners(
    host: &Host,
    source: &Dynamic,
    owners: &mut BTreeMap<String, String>,
) -> Result<(), Box<EvalAltResult>> {
    let Some(inst) = source.read_lock::<super::oic::Instance>() else {
        return Err(usage(
            "`source` must be an instance (oic::instance(\"dev\"))",
        ));
    };
    let client = inst.client.clone();
    let list = host
        .block_on(async move { client.list_integrations(None).await })?
        .map_err(|e| super::oic::oic_err(e, errors::Ctx::instance(&inst.name())))?;
    for i in list.into_iter().filter(|i| !i.last_updated_by.is_empty()) {
        owners.entry(i.code.clone()).or_insert(i.last_updated_by);
    }
    Ok(())
}

/// Parses the options map of `notify::report` / `notify::at_end`.
fn request(
    host: &Host,
    items: Option<&Dynamic>,
    o: &Map,
) -> Result<NotifyRequest, Box<EvalAltResult>> {
    let mut o = o.clone();
    let source = o.remove("source");
    let opts: NotifyOptions = super::oic::options("notify", &o).map_err(|e| {
        // Rhai calls a serde message a syntax error; `source` was taken out before serde saw it.
        let m = crate::script::render::message_of(&e);
        usage(
            m.replace("Syntax error: ", "")
                .replace("`webhook`", "`webhook`, `source`"),
        )
    })?;
    let mail_cfg = host.config.mail.as_ref();
    let to = match opts.to {
        None => mail_cfg.map(|m| m.admins.clone()).unwrap_or_default(),
        Some(Recipients::One(x)) => vec![x],
        Some(Recipients::Many(v)) => v,
    };
    let when = match opts.when {
        None => When::Always,
        Some(v) => When::parse(&v).ok_or_else(|| {
            usage(format!(
                "`when` must be \"always\" or \"failure\", not `{v}`"
            ))
        })?,
    };
    let has_hook = mail_cfg.is_some_and(|m| m.webhook.is_some());
    let mail = opts.mail.unwrap_or(true);
    let webhook = opts.webhook.unwrap_or(has_hook);
    if webhook && !has_hook {
        return Err(errors::script_error(
            "config",
            None,
            "no webhook configured: set `webhook = \"URL\"` (or a secret reference) in [mail]",
            Default::default(),
        ));
    }
    let mut last_updated_by = items.map(owners_from_items).unwrap_or_default();
    if let Some(src) = &source {
        source_owners(host, src, &mut last_updated_by)?;
    }
    let owners = match opts.owners {
        None | Some(OwnersOption::LastUpdatedBy(false)) => None,
        Some(OwnersOption::LastUpdatedBy(true)) => Some(BTreeMap::new()),
        Some(OwnersOption::Explicit(m)) => Some(m),
    }
    .map(|explicit| Owners {
        explicit,
        last_updated_by,
    });
    if mail && to.is_empty() && owners.is_none() && !webhook {
        return Err(usage(
            "nobody to notify: give `to: [...]`, `owners: true`, or set `admins` in [mail]",
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

fn delivery_map(d: &Delivery) -> Dynamic {
    let mut m = Map::new();
    m.insert(
        "to".into(),
        Dynamic::from(d.to.iter().cloned().map(Dynamic::from).collect::<Array>()),
    );
    m.insert("subject".into(), d.subject.clone().into());
    m.insert("status".into(), d.status.as_str().into());
    m.insert(
        "path".into(),
        d.path
            .as_ref()
            .map(|p| Dynamic::from(p.display().to_string()))
            .unwrap_or(Dynamic::UNIT),
    );
    m.insert("error".into(), d.error.clone().or_unit());
    Dynamic::from(m)
}

fn report_now(host: &Host, items: Option<&Dynamic>, o: &Map) -> Result<Array, Box<EvalAltResult>> {
    let req = request(host, items, o)?;
    let info = host.exec.record().info();
    let deliveries = host.block_on(ops::notify::send(&host.run, info, &req))?;
    Ok(deliveries.iter().map(delivery_map).collect())
}

fn report_at_end(host: &Host, items: Option<&Dynamic>, o: &Map) -> Result<(), Box<EvalAltResult>> {
    let req = request(host, items, o)?;
    host.run.notify_at_end(req);
    Ok(())
}

fn webhook_text(h: &Host, text: &str) -> Result<Dynamic, Box<EvalAltResult>> {
    let config = |m: String| errors::script_error("config", None, m, Default::default());
    let Some(p) = h.config.mail.as_ref().and_then(|m| m.webhook.clone()) else {
        return Err(config(
            "no webhook configured: set `webhook = \"URL\"` in [mail]".into(),
        ));
    };
    let hook = Webhook::from_profile(&p).map_err(|e| config(e.to_string()))?;
    let exec = h.exec.clone();
    let payload = serde_json::json!({ "text": text });
    let t = text.to_string();
    let d = h.block_on(async move { post_webhook(&exec, &hook, &t, &payload).await })?;
    Ok(delivery_map(&d))
}

fn outbox(h: &Host) -> Dynamic {
    let profile = h.config.mail.clone().unwrap_or_default();
    let dir = match profile.outbox {
        Some(d) => Some(d),
        None if h.sandbox => Some(h.config.state_dir.join("sandbox").join("outbox")),
        None => None,
    };
    dir.map(|d| Dynamic::from(std::path::absolute(&d).unwrap_or(d).display().to_string()))
        .unwrap_or(Dynamic::UNIT)
}

/// Notifications: the run's report by e-mail (SMTP, or .eml files in the outbox with --sandbox) and webhook.
/// A notification never fails the run: failures are recorded as `notify` steps and printed as warnings.
#[export_module]
mod notify_api {
    use super::*;

    /// Sends the report of the run so far: to the administrators (`to`, default `[mail] admins`) the whole run, and with `owners` to each owner only their artifacts.
    /// Options: `to` (e-mails), `owners` (`true` for each integration's lastUpdatedBy, or a map code -> e-mail), `source` (an instance to read lastUpdatedBy from), `when` (`"always"` or `"failure"`), `mail` (default true), `webhook` (default: true when one is configured).
    /// Returns one map per message: `to`, `subject`, `status` (`sent`, `planned`, `failed`), `path` (outbox file), `error`.
    ///
    /// # Example
    /// ```rhai
    /// notify::report(#{ to: ["ops@example.com"], when: "failure" });
    /// ```
    #[rhai_fn(name = "report", volatile, return_raw)]
    pub fn report(ctx: NativeCallContext, options: Map) -> Result<Array, Box<EvalAltResult>> {
        report_now(&*host_of(&ctx)?, None, &options)
    }

    /// Like `notify::report(options)`; `items` (the integrations moved, or result maps with `code` and `owner`) tell who owns what for `owners: true`.
    ///
    /// # Example
    /// ```rhai
    /// let wanted = oic::instance("dev").integrations();
    /// notify::report(wanted, #{ owners: true, when: "always" });
    /// ```
    #[rhai_fn(name = "report", volatile, return_raw)]
    pub fn report_items(
        ctx: NativeCallContext,
        items: Dynamic,
        options: Map,
    ) -> Result<Array, Box<EvalAltResult>> {
        report_now(&*host_of(&ctx)?, Some(&items), &options)
    }

    /// Sends the report when the run ends, with its final outcome, even when the recipe stops on an error. Same options as `notify::report`; `when: "failure"` sends only when something failed.
    ///
    /// # Example
    /// ```rhai
    /// notify::at_end(#{ when: "failure" });
    /// ```
    #[rhai_fn(name = "at_end", volatile, return_raw)]
    pub fn at_end(ctx: NativeCallContext, options: Map) -> Result<(), Box<EvalAltResult>> {
        report_at_end(&*host_of(&ctx)?, None, &options)
    }

    /// Like `notify::at_end(options)`, with the integrations whose lastUpdatedBy makes them owners.
    ///
    /// # Example
    /// ```rhai
    /// let wanted = oic::instance("dev").integrations();
    /// notify::at_end(wanted, #{ owners: true });
    /// ```
    #[rhai_fn(name = "at_end", volatile, return_raw)]
    pub fn at_end_items(
        ctx: NativeCallContext,
        items: Dynamic,
        options: Map,
    ) -> Result<(), Box<EvalAltResult>> {
        report_at_end(&*host_of(&ctx)?, Some(&items), &options)
    }

    /// Posts the run's summary (outcome, counts, failures with their root cause) as JSON to the webhook of `[mail] webhook`. Returns the delivery map.
    ///
    /// # Example
    /// ```rhai
    /// notify::webhook();
    /// ```
    #[rhai_fn(name = "webhook", volatile, return_raw)]
    pub fn webhook(ctx: NativeCallContext) -> Result<Map, Box<EvalAltResult>> {
        let mut o = Map::new();
        o.insert("mail".into(), false.into());
        o.insert("webhook".into(), true.into());
        let first = report_now(&*host_of(&ctx)?, None, &o)?.into_iter().next();
        Ok(first.and_then(|d| d.try_cast::<Map>()).unwrap_or_default())
    }

    /// Posts `#{ text }` as JSON to the webhook of `[mail] webhook` (a chat message). Returns the delivery map.
    ///
    /// # Example
    /// ```rhai
    /// notify::webhook("Migration to prod started");
    /// ```
    #[rhai_fn(name = "webhook", volatile, return_raw)]
    pub fn webhook_message(
        ctx: NativeCallContext,
        text: ImmutableString,
    ) -> Result<Map, Box<EvalAltResult>> {
        let d = webhook_text(&*host_of(&ctx)?, &text)?;
        Ok(d.try_cast::<Map>().unwrap_or_default())
    }

    /// The folder mail is written to instead of being sent (`--sandbox` or `[mail] outbox`), or `()` when mail goes to an SMTP server.
    ///
    /// # Example
    /// ```rhai
    /// print(notify::outbox());
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn outbox(ctx: NativeCallContext) -> Result<Dynamic, Box<EvalAltResult>> {
        Ok(super::outbox(&*host_of(&ctx)?))
    }
}

/// Registers the module.
pub fn register(e: &mut Engine) {
    register_plugin(e, "notify", exported_module!(notify_api));
}
