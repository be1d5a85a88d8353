//! The `notify` module: the run's report by e-mail (and webhook), now or at the end of the run
//! (see [`crate::ops::notify`]). A notification never fails the run.

use std::sync::Arc;

use rhai::plugin::*;
use rhai::{Array, Dynamic, Engine, ImmutableString, Map};

use super::args::{RhaiResultOf, map_of, options, results};
use super::oic::Instance;
use super::{host_of, register_plugin};
use crate::oic::Integration;
use crate::ops::notify::{self as ops_notify, NotifyOptions, NotifyRequest, OwnedItem};
use crate::script::errors::{self, ops_err};
use crate::script::host::Host;

/// Who owns what among `items`: Integration objects (their lastUpdatedBy) and maps with `code`
/// and `owner` or `last_updated_by`; anything else is passed over.
fn owned(items: &Dynamic) -> Vec<OwnedItem> {
    let one = |v: &Dynamic| match v.read_lock::<Integration>() {
        Some(i) => Some(OwnedItem::from(&*i)),
        None if v.is_map() => rhai::serde::from_dynamic(v).ok(),
        None => None,
    };
    match items.read_lock::<Array>() {
        Some(a) => a.iter().filter_map(one).collect(),
        None => one(items).into_iter().collect(),
    }
}

/// The request of `notify::report` / `notify::at_end`: the options (`source`, an instance, taken
/// out before serde reads the rest), and the owners `items` tell (none in `()`).
fn request(
    ctx: &NativeCallContext,
    items: &Dynamic,
    o: &Map,
) -> RhaiResultOf<(Arc<Host>, NotifyRequest)> {
    let (h, mut o) = (host_of(ctx)?, o.clone());
    let source = o.remove("source");
    let opts: NotifyOptions = options("notify", &o).map_err(|e| {
        let m = crate::script::render::message_of(&e);
        errors::usage(m.replace("`webhook`", "`webhook`, `source`"))
    })?;
    let not_an_instance = || errors::usage("`source` must be an instance (oic::instance(\"dev\"))");
    let source = source.map(|s| s.try_cast::<Instance>().ok_or_else(not_an_instance));
    let source = source.transpose()?;
    let items = owned(items);
    let req = ops_notify::request(&h.config, opts, &items, source.as_ref().map(|i| &i.client));
    let req = h.block_on(req)?.map_err(ops_err)?;
    Ok((h, req))
}

fn report_now(h: &Host, req: NotifyRequest) -> RhaiResultOf<Array> {
    let info = h.exec.record().info();
    results(h.block_on(ops_notify::send(&h.run, info, &req))?)
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
    pub fn report(ctx: NativeCallContext, options: Map) -> RhaiResultOf<Array> {
        report_items(ctx, Dynamic::UNIT, options)
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
    ) -> RhaiResultOf<Array> {
        let (h, req) = request(&ctx, &items, &options)?;
        report_now(&h, req)
    }

    /// Sends the report when the run ends (even on an error), with its outcome. Options as `notify::report`.
    ///
    /// # Example
    /// ```rhai
    /// notify::at_end(#{ when: "failure" });
    /// ```
    #[rhai_fn(name = "at_end", volatile, return_raw)]
    pub fn at_end(ctx: NativeCallContext, options: Map) -> RhaiResultOf<()> {
        at_end_items(ctx, Dynamic::UNIT, options)
    }

    /// Like `notify::at_end(options)`, with the integrations whose lastUpdatedBy makes them owners.
    ///
    /// # Example
    /// ```rhai
    /// let wanted = oic::instance("dev").integrations();
    /// notify::at_end(wanted, #{ owners: true });
    /// ```
    #[rhai_fn(name = "at_end", volatile, return_raw)]
    pub fn at_end_items(ctx: NativeCallContext, items: Dynamic, options: Map) -> RhaiResultOf<()> {
        let (h, req) = request(&ctx, &items, &options)?;
        h.run.notify_at_end(req);
        Ok(())
    }

    /// Posts the run's summary (outcome, counts, failures with their root cause) as JSON to the webhook of `[mail] webhook`. Returns the delivery map.
    ///
    /// # Example
    /// ```rhai
    /// notify::webhook();
    /// ```
    #[rhai_fn(name = "webhook", volatile, return_raw)]
    pub fn webhook(ctx: NativeCallContext) -> RhaiResultOf<Map> {
        let h = host_of(&ctx)?;
        let d = h
            .block_on(ops_notify::post_summary(&h.run))?
            .map_err(ops_err)?;
        d.map_or_else(|| Ok(Map::new()), |d| map_of(&d))
    }

    /// Posts `#{ text }` as JSON to the webhook of `[mail] webhook` (a chat message). Returns the delivery map.
    ///
    /// # Example
    /// ```rhai
    /// notify::webhook("Migration to prod started");
    /// ```
    #[rhai_fn(name = "webhook", volatile, return_raw)]
    pub fn webhook_message(ctx: NativeCallContext, text: ImmutableString) -> RhaiResultOf<Map> {
        let h = host_of(&ctx)?;
        let d = h.block_on(ops_notify::post_text(&h.run, &text))?;
        map_of(&d.map_err(ops_err)?)
    }

    /// The folder mail is written to instead of being sent (`--sandbox` or `[mail] outbox`), or `()` when mail goes to an SMTP server.
    ///
    /// # Example
    /// ```rhai
    /// print(notify::outbox());
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn outbox(ctx: NativeCallContext) -> RhaiResultOf<Dynamic> {
        let h = host_of(&ctx)?;
        let dir = ops_notify::outbox(&h.config, h.sandbox);
        Ok(dir.map_or(Dynamic::UNIT, |d| d.display().to_string().into()))
    }
}

/// Registers the module.
pub fn register(e: &mut Engine) {
    register_plugin(e, "notify", exported_module!(notify_api));
}
