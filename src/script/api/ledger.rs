//! The `ledger` module and the hooks the other modules call for resume and rollback:
//!
//! * reading the run ledger from recipes (`ledger::runs()`, `ledger::last_run()`,
//!   `ledger::failed(run)`, `ledger::errors(filter)`);
//! * the rollback sink of a recipe's run ([`sink_for`]): where replaced archives are saved;
//! * (reopening the vault jobs of a resumed run, and skipping what they hold, is
//!   [`crate::ops::job::new_job`]'s);
//! * `ledger::rollback(run)`, a binding of [`crate::ops::rollback`].

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use rhai::plugin::*;

use super::{host_of, register_plugin};
use crate::ledger::{ErrorFilter, Ledger, StepStatus, stage_from_str};
use crate::script::errors::{self, Ctx};
use crate::script::host::Host;

// ------------------------------------------------------------------------------ rollback store

/// Where the host's run saves what a replace loses: the run itself (a sibling vault job
/// `<job>-rollback` of the latest job the recipe opened, or the run's folder), see
/// [`crate::ops::run::Run::keep_for_rollback`].
pub fn sink_for(host: &Host) -> Arc<dyn crate::ops::RollbackSink> {
    host.run.clone()
}

// ------------------------------------------------------------------------------ rollback

fn ledger_err(e: impl std::fmt::Display) -> Box<EvalAltResult> {
    errors::script_error("ledger", None, e.to_string(), Ctx::default())
}

fn open_ledger(host: &Host) -> Result<Ledger, Box<EvalAltResult>> {
    Ledger::open_at(&crate::ledger::LedgerLocation::for_config(&host.config)).map_err(ledger_err)
}

// ------------------------------------------------------------------------------ script module

fn to_dyn<T: serde::Serialize>(v: &T) -> Result<Dynamic, Box<EvalAltResult>> {
    rhai::serde::to_dynamic(v)
}

fn run_map(db: &Ledger, id: &str) -> Result<Dynamic, Box<EvalAltResult>> {
    let Some(row) = db.run(id).map_err(ledger_err)? else {
        return Ok(Dynamic::UNIT);
    };
    let steps = db.steps(id).map_err(ledger_err)?;
    let mut m = to_dyn(&row)?.try_cast::<Map>().unwrap_or_default();
    m.insert("steps".into(), to_dyn(&steps)?);
    Ok(Dynamic::from_map(m))
}

fn failed_of(db: &Ledger, id: &str) -> Result<Array, Box<EvalAltResult>> {
    let steps = db.steps(id).map_err(ledger_err)?;
    // The artifacts whose last step of a stage failed.
    let mut last: BTreeMap<(String, String, String), &crate::ledger::Step> = BTreeMap::new();
    for s in &steps {
        last.insert(
            (s.key().id(), s.stage.as_str().to_string(), s.target.clone()),
            s,
        );
    }
    let mut out = Array::new();
    for s in last.values().filter(|s| s.status == StepStatus::Failed) {
        let mut m = Map::new();
        m.insert("id".into(), s.key().id().into());
        m.insert("kind".into(), s.kind.as_str().into());
        m.insert("code".into(), s.code.clone().into());
        m.insert("version".into(), s.version.clone().into());
        m.insert("stage".into(), s.stage.as_str().into());
        m.insert("target".into(), s.target.clone().into());
        m.insert(
            "error".into(),
            s.error
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_default()
                .into(),
        );
        m.insert(
            "status".into(),
            s.error
                .as_ref()
                .and_then(|e| e.status)
                .map(|c| Dynamic::from(c as i64))
                .unwrap_or(Dynamic::UNIT),
        );
        out.push(Dynamic::from_map(m));
    }
    Ok(out)
}

fn rollback(h: &Host, run: &str, o: Option<&Map>) -> Result<Array, Box<EvalAltResult>> {
    let opts: crate::ops::rollback::RollbackOptions = match o {
        Some(o) => super::oic::options("rollback", o)?,
        None => Default::default(),
    };
    let r = h.block_on(crate::ops::rollback::rollback(h, run, &opts))?;
    super::oic::results(r.map_err(super::oic::ops_err)?)
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
        let db = open_ledger(&*host_of(&ctx)?)?;
        db.runs(50)
            .map_err(ledger_err)?
            .iter()
            .map(to_dyn)
            .collect()
    }

    /// One run with its `steps` (each: `stage`, `kind`, `code`, `version`, `target`, `action`, `status`, `attempts`, `error`, `sha256`...), or `()`.
    ///
    /// # Example
    /// ```rhai
    /// let r = ledger::run("20261126-142501-a3f0");
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn run(ctx: NativeCallContext, id: ImmutableString) -> Result<Dynamic, Box<EvalAltResult>> {
        run_map(&open_ledger(&*host_of(&ctx)?)?, &id)
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
        let h = host_of(&ctx)?;
        let db = open_ledger(&h)?;
        let info = h.exec.record().info();
        match db
            .last_run(Some(&info.recipe), Some(&info.id))
            .map_err(ledger_err)?
        {
            Some(r) => run_map(&db, &r.info.id),
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
        failed_of(&open_ledger(&*host_of(&ctx)?)?, &run)
    }

    /// Failed steps of every run, newest first. Filter keys: `run`, `since` (`"2026-11-01"` or RFC 3339), `stage` (`"import"`...), `limit`.
    ///
    /// # Example
    /// ```rhai
    /// for e in ledger::errors(#{ stage: "import", since: "2026-11-01" }) { print(e.error.message); }
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn errors(ctx: NativeCallContext, filter: Map) -> Result<Array, Box<EvalAltResult>> {
        let filter = filter_from_map(&filter)?;
        let db = open_ledger(&*host_of(&ctx)?)?;
        db.errors(&filter)
            .map_err(ledger_err)?
            .iter()
            .map(to_dyn)
            .collect()
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
        super::rollback(&*host_of(&ctx)?, &run, None)
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
        super::rollback(&*host_of(&ctx)?, &run, Some(&options))
    }
}

/// Registers the `ledger` module.
pub fn register(e: &mut Engine) {
    register_plugin(e, "ledger", exported_module!(ledger_api));
}

/// Parses a `since` value: a date (`2026-11-01`) or an RFC 3339 time.
pub fn parse_since(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&chrono::Utc));
    }
    s.parse::<NaiveDate>()
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

fn filter_from_map(f: &Map) -> Result<ErrorFilter, Box<EvalAltResult>> {
    let mut out = ErrorFilter::default();
    for (k, v) in f {
        match k.as_str() {
            "run" => out.run = Some(v.to_string()),
            "since" => {
                out.since = Some(parse_since(&v.to_string()).ok_or_else(|| {
                    errors::usage(format!(
                        "`since` must be a date or RFC 3339 time, found {v}"
                    ))
                })?)
            }
            "stage" => {
                out.stage = Some(
                    stage_from_str(&v.to_string())
                        .ok_or_else(|| errors::usage(format!("unknown stage `{v}`")))?,
                )
            }
            "limit" => out.limit = v.as_int().ok().map(|n| n.max(0) as u64),
            other => {
                return Err(errors::usage(format!(
                    "unknown filter `{other}` (known: run, since, stage, limit)"
                )));
            }
        }
    }
    Ok(out)
}
