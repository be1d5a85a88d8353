//! The `ledger` module: the run ledger read from recipes, and `ledger::rollback` (a binding of
//! [`crate::ops::rollback`]); plus [`sink_for`], where a run saves what a replace loses.

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use rhai::plugin::*;

use super::oic::{options, results};
use super::{host_of, register_plugin};
use crate::ledger::query::{self, ErrorQuery};
use crate::ledger::{Ledger, LedgerLocation};
use crate::script::errors::{self, Ctx};
use crate::script::host::Host;

/// Where the host's run saves what a replace loses (see
/// [`crate::ops::run::Run::keep_for_rollback`]).
pub fn sink_for(host: &Host) -> Arc<dyn crate::ops::RollbackSink> {
    host.run.clone()
}

fn ledger_err(e: impl std::fmt::Display) -> Box<EvalAltResult> {
    errors::script_error("ledger", None, e.to_string(), Ctx::default())
}

fn open(ctx: &NativeCallContext) -> Result<Ledger, Box<EvalAltResult>> {
    Ledger::open_at(&LedgerLocation::for_config(&host_of(ctx)?.config)).map_err(ledger_err)
}

fn run_detail(db: &Ledger, id: &str) -> Result<Dynamic, Box<EvalAltResult>> {
    match query::run_detail(db, id).map_err(ledger_err)? {
        Some(v) => rhai::serde::to_dynamic(v),
        None => Ok(Dynamic::UNIT),
    }
}

fn rollback(
    ctx: &NativeCallContext,
    run: &str,
    o: Option<&Map>,
) -> Result<Array, Box<EvalAltResult>> {
    let h = host_of(ctx)?;
    let opts = o
        .map(|o| options("rollback", o))
        .transpose()?
        .unwrap_or_default();
    let r = h.block_on(crate::ops::rollback::rollback(&*h, run, &opts))?;
    results(r.map_err(super::oic::ops_err)?)
}

/// The run ledger: every run and step, the central error log; and rollback of a run.
#[export_module]
mod ledger_api {
    use super::*;

    /// The 50 most recent runs, newest first, as maps: `id`, `recipe`, `run_by`, `started`, `ended`, `outcome`, `kind`, `steps`, `failed_steps`, ...
    ///
    /// # Example
    /// ```rhai
    /// for r in ledger::runs() { print(`${r.id} ${r.outcome}`); }
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn runs(ctx: NativeCallContext) -> Result<Array, Box<EvalAltResult>> {
        results(open(&ctx)?.runs(50).map_err(ledger_err)?)
    }

    /// One run with its `steps` (each: `stage`, `kind`, `code`, `version`, `target`, `action`, `status`, `attempts`, `error`, `sha256`...), or `()`.
    ///
    /// # Example
    /// ```rhai
    /// let r = ledger::run("20261126-142501-a3f0");
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn run(ctx: NativeCallContext, id: ImmutableString) -> Result<Dynamic, Box<EvalAltResult>> {
        run_detail(&open(&ctx)?, &id)
    }

    /// The latest earlier real run (not a dry run) of this recipe, with its steps, or `()`.
    ///
    /// # Example
    /// ```rhai
    /// let last = ledger::last_run();
    /// if last != () { print(last.outcome); }
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn last_run(ctx: NativeCallContext) -> Result<Dynamic, Box<EvalAltResult>> {
        let (db, info) = (open(&ctx)?, host_of(&ctx)?.exec.record().info());
        match db
            .last_run(Some(&info.recipe), Some(&info.id))
            .map_err(ledger_err)?
        {
            Some(r) => run_detail(&db, &r.info.id),
            None => Ok(Dynamic::UNIT),
        }
    }

    /// What failed in a run and did not succeed later in it: one map per artifact and stage (`id`, `kind`, `code`, `version`, `stage`, `target`, `error`, `status`).
    ///
    /// # Example
    /// ```rhai
    /// // Retry what failed in the last run.
    /// let last = ledger::last_run();
    /// let codes = ledger::failed(last.id).map(|f| f.code);
    /// let again = dev.integrations().filter(|i| codes.contains(i.code));
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn failed(
        ctx: NativeCallContext,
        run: ImmutableString,
    ) -> Result<Array, Box<EvalAltResult>> {
        results(query::still_failed(
            &open(&ctx)?.steps(&run).map_err(ledger_err)?,
        ))
    }

    /// Failed steps of every run, newest first. Filter keys: `run`, `since` (`"2026-11-01"` or RFC 3339), `stage` (`"import"`...), `limit`.
    ///
    /// # Example
    /// ```rhai
    /// for e in ledger::errors(#{ stage: "import", since: "2026-11-01" }) { print(e.error.message); }
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn errors(ctx: NativeCallContext, filter: Map) -> Result<Array, Box<EvalAltResult>> {
        let q: ErrorQuery = options("errors", &filter)?;
        let f = q.filter().map_err(errors::usage)?;
        results(open(&ctx)?.errors(&f).map_err(ledger_err)?)
    }

    /// Puts the targets of a run back as they were before it: re-imports the archives it replaced (saved in the job's rollback job),
    /// re-applies their activation states, and deletes what it added. Planned in a dry run. One result map per artifact.
    ///
    /// # Example
    /// ```rhai
    /// let results = ledger::rollback("20261126-142501-a3f0");
    /// ```
    #[rhai_fn(name = "rollback", volatile, return_raw)]
    pub fn rollback(
        ctx: NativeCallContext,
        run: ImmutableString,
    ) -> Result<Array, Box<EvalAltResult>> {
        super::rollback(&ctx, &run, None)
    }

    /// `ledger::rollback(run)` with options: `force` (default false) undoes the run's changes even where a later run
    /// changed the same artifact since (without it, such a rollback is refused before any change and names that run).
    ///
    /// # Example
    /// ```rhai
    /// let results = ledger::rollback("20261126-142501-a3f0", #{ force: true });
    /// ```
    #[rhai_fn(name = "rollback", volatile, return_raw)]
    pub fn rollback_with(
        ctx: NativeCallContext,
        run: ImmutableString,
        options: Map,
    ) -> Result<Array, Box<EvalAltResult>> {
        super::rollback(&ctx, &run, Some(&options))
    }
}

/// Registers the `ledger` module.
pub fn register(e: &mut Engine) {
    register_plugin(e, "ledger", exported_module!(ledger_api));
}
