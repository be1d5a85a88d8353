//! The `ledger` module: the run ledger read from recipes, and `ledger::rollback` (a binding of
//! [`crate::ops::rollback`]).

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use rhai::plugin::*;

use super::args::{self, RhaiResultOf, results};
use super::{host_of, register_plugin};
use crate::ledger::query::{self, ErrorQuery};
use crate::ledger::{Ledger, LedgerError, LedgerLocation};
use crate::script::errors::{self, Ctx};

fn ledger_err(e: impl std::fmt::Display) -> Box<EvalAltResult> {
    errors::script_error("ledger", None, e.to_string(), Ctx::default())
}

fn open(ctx: &NativeCallContext) -> RhaiResultOf<Ledger> {
    Ledger::open_at(&LedgerLocation::for_config(&host_of(ctx)?.config)).map_err(ledger_err)
}

/// A run with its steps (from [`query`]) as a map, or `()`.
fn detail(run: Result<Option<serde_json::Value>, LedgerError>) -> RhaiResultOf<Dynamic> {
    run.map_err(ledger_err)?
        .map_or(Ok(Dynamic::UNIT), rhai::serde::to_dynamic)
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
    pub fn runs(ctx: NativeCallContext) -> RhaiResultOf<Array> {
        results(open(&ctx)?.runs(50).map_err(ledger_err)?)
    }

    /// One run with its `steps` (each: `stage`, `kind`, `code`, `version`, `target`, `action`, `status`, `attempts`, `error`, `sha256`...), or `()`.
    ///
    /// # Example
    /// ```rhai
    /// let r = ledger::run("20261126-142501-a3f0");
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn run(ctx: NativeCallContext, id: ImmutableString) -> RhaiResultOf<Dynamic> {
        detail(query::run_detail(&open(&ctx)?, &id))
    }

    /// The latest earlier real run (not a dry run) of this recipe, with its steps, or `()`.
    ///
    /// # Example
    /// ```rhai
    /// let last = ledger::last_run();
    /// if last != () { print(last.outcome); }
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn last_run(ctx: NativeCallContext) -> RhaiResultOf<Dynamic> {
        let (db, info) = (open(&ctx)?, host_of(&ctx)?.exec.record().info());
        detail(query::last_run_detail(&db, &info.recipe, &info.id))
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
    pub fn failed(ctx: NativeCallContext, run: ImmutableString) -> RhaiResultOf<Array> {
        let steps = open(&ctx)?.steps(&run).map_err(ledger_err)?;
        results(query::still_failed(&steps))
    }

    /// Failed steps of every run, newest first. Filter keys: `run`, `since` (`"2026-11-01"` or RFC 3339), `stage` (`"import"`...), `limit`.
    ///
    /// # Example
    /// ```rhai
    /// for e in ledger::errors(#{ stage: "import", since: "2026-11-01" }) { print(e.error.message); }
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn errors(ctx: NativeCallContext, filter: Map) -> RhaiResultOf<Array> {
        let q: ErrorQuery = args::options("errors", &filter)?;
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
    pub fn rollback(ctx: NativeCallContext, run: ImmutableString) -> RhaiResultOf<Array> {
        rollback_with(ctx, run, Map::new())
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
    ) -> RhaiResultOf<Array> {
        let h = host_of(&ctx)?;
        let opts = args::options("rollback", &options)?;
        let r = h.block_on(crate::ops::rollback::rollback(&*h, &run, &opts))?;
        results(r.map_err(errors::ops_err)?)
    }
}

/// Registers the `ledger` module.
pub fn register(e: &mut Engine) {
    register_plugin(e, "ledger", exported_module!(ledger_api));
}
