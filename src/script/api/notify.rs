//! The `notify` module: the run's report by e-mail (and webhook), now or at the end of the run
//! (see [`crate::ops::notify`]). A notification never fails the run.

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use rhai::plugin::*;

use super::oic::{Instance, ops_err, options, results};
use super::{host_of, register_plugin};
use crate::oic::Integration;
use crate::ops::notify::{self as ops_notify, NotifyOptions, NotifyRequest, OwnedItem};
use crate::script::errors;
use crate::script::host::Host;

/// Who owns what among `items`: Integration objects (their lastUpdatedBy) and maps with `code`
/// and `owner` or `last_updated_by`; anything else is passed over.
fn owned(items: &Dynamic) -> Vec<OwnedItem> {
    let one = |v: &Dynamic| match v.read_lock::<Integration>() {
        Some(i) => Some(OwnedItem {
            code: i.code.clone(),
            last_updated_by: Some(i.last_updated_by.clone()),
            owner: None,
        }),
        None => v
            .is_map()
            .then(|| rhai::serde::from_dynamic(v).ok())
            .flatten(),
    };
    match items.read_lock::<Array>() {
        Some(a) => a.iter().filter_map(one).collect(),
        None => one(items).into_iter().collect(),
    }
}

/// The request of `notify::report` / `notify::at_end`: the options (`source`, an instance, taken
/// out before serde reads the rest) and the owners the items and the source tell.
fn request(
    h: &Host,
    items: Option<&Dynamic>,
    o: &Map,
) -> Result<NotifyRequest, Box<EvalAltResult>> {
    let mut o = o.clone();
    let source = o.remove("source");
    let opts: NotifyOptions = options("notify", &o).map_err(|e| {
        let m = crate::script::render::message_of(&e);
        errors::usage(m.replace("`webhook`", "`webhook`, `source`"))
    })?;
    let mut owners = ops_notify::owners_of(&items.map(owned).unwrap_or_default());
    if let Some(src) = source {
        let Some(inst) = src.read_lock::<Instance>() else {
            return Err(errors::usage(
                "`source` must be an instance (oic::instance(\"dev\"))",
            ));
        };
        let c = inst.client.clone();
        h.block_on(ops_notify::source_owners(&c, &mut owners))?
            .map_err(ops_err)?;
    }
    opts.request(&h.config, owners).map_err(ops_err)
}

fn report_now(h: &Host, req: NotifyRequest) -> Result<Array, Box<EvalAltResult>> {
    let info = h.exec.record().info();
    results(h.block_on(ops_notify::send(&h.run, info, &req))?)
}

fn report(
    ctx: &NativeCallContext,
    items: Option<&Dynamic>,
    o: &Map,
) -> Result<Array, Box<EvalAltResult>> {
    let h = host_of(ctx)?;
    report_now(&h, request(&h, items, o)?)
}

fn at_end(
    ctx: &NativeCallContext,
    items: Option<&Dynamic>,
    o: &Map,
) -> Result<(), Box<EvalAltResult>> {
    let h = host_of(ctx)?;
    h.run.notify_at_end(request(&h, items, o)?);
    Ok(())
}

fn first_map(a: Array) -> Map {
    a.into_iter()
        .next()
        .and_then(|d| d.try_cast::<Map>())
        .unwrap_or_default()
}

/// Notifications: the run's report by e-mail (SMTP, or .eml files in the outbox with --sandbox) and webhook.
/// A notification never fails the run: failures are recorded as `notify` steps and printed as warnings.
#[export_module]
mod notify_api {
    use super::*;

    /// Sends the report of the run so far: the whole run to `to` (default `[mail] admins`), and with `owners` to each owner their artifacts.
    /// Options: `to`, `owners` (`true`: lastUpdatedBy; or a map code -> e-mail), `source` (an instance to read lastUpdatedBy from), `when` (`"always"`, `"failure"`), `mail` (default true), `webhook` (default: true when configured).
    /// Returns one map per message: `to`, `subject`, `status` (`sent`, `planned`, `failed`), `path` (outbox file), `error`.
    ///
    /// # Example
    /// ```rhai
    /// notify::report(#{ to: ["ops@example.com"], when: "failure" });
    /// ```
    #[rhai_fn(name = "report", volatile, return_raw)]
    pub fn report(ctx: NativeCallContext, options: Map) -> Result<Array, Box<EvalAltResult>> {
        super::report(&ctx, None, &options)
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
        super::report(&ctx, Some(&items), &options)
    }

    /// Sends the report when the run ends (even on an error), with its outcome. Options as `notify::report`.
    ///
    /// # Example
    /// ```rhai
    /// notify::at_end(#{ when: "failure" });
    /// ```
    #[rhai_fn(name = "at_end", volatile, return_raw)]
    pub fn at_end(ctx: NativeCallContext, options: Map) -> Result<(), Box<EvalAltResult>> {
        super::at_end(&ctx, None, &options)
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
        super::at_end(&ctx, Some(&items), &options)
    }

    /// Posts the run's summary (outcome, counts, failures with their root cause) as JSON to the webhook of `[mail] webhook`. Returns the delivery map.
    ///
    /// # Example
    /// ```rhai
    /// notify::webhook();
    /// ```
    #[rhai_fn(name = "webhook", volatile, return_raw)]
    pub fn webhook(ctx: NativeCallContext) -> Result<Map, Box<EvalAltResult>> {
        let h = host_of(&ctx)?;
        let req = NotifyOptions::webhook_only().request(&h.config, Default::default());
        Ok(first_map(report_now(&h, req.map_err(ops_err)?)?))
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
        let h = host_of(&ctx)?;
        let d = h
            .block_on(ops_notify::post_text(&h.run, &text))?
            .map_err(ops_err)?;
        Ok(first_map(results(vec![d])?))
    }

    /// The folder mail is written to instead of being sent (`--sandbox` or `[mail] outbox`), or `()` when mail goes to an SMTP server.
    ///
    /// # Example
    /// ```rhai
    /// print(notify::outbox());
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn outbox(ctx: NativeCallContext) -> Result<Dynamic, Box<EvalAltResult>> {
        let h = host_of(&ctx)?;
        let dir = ops_notify::outbox(&h.config, h.sandbox);
        Ok(dir.map_or(Dynamic::UNIT, |d| d.display().to_string().into()))
    }
}

/// Registers the module.
pub fn register(e: &mut Engine) {
    register_plugin(e, "notify", exported_module!(notify_api));
}
