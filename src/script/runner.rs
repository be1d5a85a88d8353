//! Running a recipe from start to end on one [`Run`]: compile, run on the calling thread, finish
//! the run (jobs, rollback job, `at_end` notifications, record) and decide the exit code. Used by
//! `ferry run`, `plan`, `rollback`, `vault restore`/`prune` and the tests.

use std::path::Path;
use std::sync::Arc;

use rhai::{EvalAltResult, Scope};
use tokio_util::sync::CancellationToken;

use super::{EngineOptions, Host, Output, build_engine, errors, render};
use crate::config::Config;
use crate::effect::RetryPolicy;
use crate::ledger::{Report, Stage, StepStatus};
use crate::ops::run::{Run, RunKind, RunOutcome};
use crate::shell::exit;

/// How to run a recipe.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub dry_run: bool,
    pub sandbox: bool,
    pub vars: Vec<(String, String)>,
    pub engine: EngineOptions,
    /// Retry settings; `None` takes the defaults.
    pub retry: Option<RetryPolicy>,
    /// How long a resumed run waits for an import its predecessor sent; `None`: 20 s.
    pub resume_grace: Option<std::time::Duration>,
    /// Resume a stopped run: its id, or `last` (the latest run of this recipe).
    pub resume: Option<String>,
    /// The kind of run recorded in the ledger.
    pub kind: RunKind,
    /// Stream archives to a temporary folder of the run's own, removed when it ends.
    pub temp_dir: bool,
    /// Record the run's effects for a plan file, or admit only a plan's effects.
    pub plan: Option<Arc<crate::effect::PlanGuard>>,
}

impl RunOptions {
    /// The options of the [`Run`].
    pub fn run_options(&self) -> crate::ops::run::RunOptions {
        let mut o = crate::ops::run::RunOptions {
            kind: self.kind,
            dry_run: self.dry_run,
            sandbox: self.sandbox,
            resume: self.resume.clone(),
            temp_dir: self.temp_dir,
            plan: self.plan.clone(),
            ..Default::default()
        };
        if let Some(r) = &self.retry {
            o.retry = r.clone();
        }
        if let Some(g) = self.resume_grace {
            o.resume_grace = g;
        }
        o
    }
}

/// The end of a run.
pub struct RunResult {
    pub code: u8,
    /// The report (absent when the run could not start).
    pub report: Option<Report>,
    /// A rendered script error, when the recipe stopped on one.
    pub error: Option<String>,
}

/// Starts a run of `text` (shown as `name`), builds its host with the recipe variables, and
/// hands both to `f`; the run is finished by the caller ([`Run::finish`]) or, on an early
/// return, by its drop guard.
pub fn start(
    name: &str,
    text: &str,
    config: Arc<Config>,
    rt: tokio::runtime::Handle,
    cancel: CancellationToken,
    out: Output,
    opts: &RunOptions,
) -> Result<Arc<Host>, String> {
    let run = Run::start(config, rt, cancel, out, name, text, opts.run_options())
        .map_err(|e| format!("error: {e}\n"))?;
    let host = Host::new(run).with_vars(&opts.vars);
    host.sources.add(name, text);
    Ok(Arc::new(host))
}

/// Compiles and runs `text` (shown as `name`) with `config`. The script runs on this thread; the
/// runtime behind `rt` must be multi-threaded and this thread must not be one of its workers.
pub fn run_recipe(
    name: &str,
    text: &str,
    config: Arc<Config>,
    rt: tokio::runtime::Handle,
    cancel: CancellationToken,
    out: Output,
    opts: &RunOptions,
) -> RunResult {
    let host = match start(name, text, config, rt, cancel, out, opts) {
        Ok(h) => h,
        Err(error) => {
            return RunResult {
                code: exit::USAGE,
                report: None,
                error: Some(error),
            };
        }
    };
    let engine = build_engine(host.clone(), &opts.engine);
    let outcome = match engine.compile(text) {
        Ok(mut ast) => {
            ast.set_source(name);
            // Every `--var` the recipe reads is checked before its first effect.
            match crate::script::values::check_params(&ast, &host.vars) {
                Err(e) => Err(e),
                Ok(()) => {
                    let mut scope = Scope::new();
                    let r = engine.run_ast_with_scope(&mut scope, &ast);
                    // the archives the scope's values hold go with their folder, off this thread
                    host.run.release_temp();
                    r
                }
            }
        }
        Err(e) => Err(EvalAltResult::from(e).into()),
    };
    drop(engine);
    end(&host, name, outcome)
}

/// How a script ended: the exit code, the run's outcome, the rendered error and its message.
pub fn classify(
    host: &Host,
    name: &str,
    r: Result<(), Box<EvalAltResult>>,
) -> (u8, RunOutcome, Option<(String, String)>) {
    let Err(e) = r else {
        return (exit::OK, RunOutcome::Ok, None);
    };
    let inner = e.unwrap_inner();
    let rendered = render::render(&e, name, &host.sources);
    let message = render::message_of(inner);
    let (code, outcome) = if matches!(inner, EvalAltResult::ErrorTerminated(..)) {
        (exit::INTERRUPTED, RunOutcome::Interrupted)
    } else if is_domain_error(inner) && !errors::is_config_error(&e) {
        (exit::FAILED, RunOutcome::Failed)
    } else {
        (exit::USAGE, RunOutcome::Error)
    };
    (code, outcome, Some((rendered, message)))
}

/// Finishes the run of `host` after its script ended with `r`.
pub fn end(host: &Host, name: &str, r: Result<(), Box<EvalAltResult>>) -> RunResult {
    let (code, outcome, err) = classify(host, name, r);
    let (error, message) = match err {
        Some((rendered, message)) => (Some(rendered), Some(message)),
        None => (None, None),
    };
    finish(host, code, outcome, error, message)
}

/// Runs `f`, a command's work written in Rust (calls into [`crate::ops`], no script), as the run
/// `name`: recorded, finished and reported like a recipe's run. An error of `f` ends the run as
/// a script error would: usage and configuration errors exit 2, cancellation 130, the others 1.
pub fn run_ops(
    name: &str,
    config: Arc<Config>,
    rt: tokio::runtime::Handle,
    cancel: CancellationToken,
    out: Output,
    opts: &RunOptions,
    f: impl FnOnce(&Arc<Host>) -> Result<(), crate::ops::OpsError>,
) -> RunResult {
    use crate::ops::OpsError;
    let host = match start(name, "", config, rt, cancel, out, opts) {
        Ok(h) => h,
        Err(error) => {
            return RunResult {
                code: exit::USAGE,
                report: None,
                error: Some(error),
            };
        }
    };
    let (code, outcome, message) = match f(&host) {
        Ok(()) => (exit::OK, RunOutcome::Ok, None),
        Err(OpsError::Cancelled) => (
            exit::INTERRUPTED,
            RunOutcome::Interrupted,
            Some("cancelled".to_string()),
        ),
        Err(e @ (OpsError::Usage(_) | OpsError::Config(_))) => {
            (exit::USAGE, RunOutcome::Error, Some(e.to_string()))
        }
        Err(e) => (exit::FAILED, RunOutcome::Failed, Some(e.to_string())),
    };
    let error = message
        .as_ref()
        .filter(|_| code != exit::INTERRUPTED)
        .map(|m| format!("error: {}\n", host.run.shell.scrub(m)));
    finish(&host, code, outcome, error, message)
}

/// Finishes the run of `host`: end-of-run duties, the report and the exit code.
fn finish(
    host: &Host,
    code: u8,
    outcome: RunOutcome,
    mut error: Option<String>,
    message: Option<String>,
) -> RunResult {
    let done = host.run.finish(outcome, message);
    for je in &done.errors {
        error
            .get_or_insert_with(String::new)
            .push_str(&format!("error: {je}\n"));
    }
    let artifacts_failed = done.report.artifacts.iter().any(|a| {
        a.stages
            .iter()
            .any(|s| s.status == StepStatus::Failed && s.stage != Stage::Notify)
    });
    let code = if code == exit::OK && (artifacts_failed || !done.errors.is_empty()) {
        exit::FAILED
    } else {
        code
    };
    RunResult {
        code,
        report: Some(done.report),
        error,
    }
}

/// Errors raised by ferry's domain primitives (maps with a `kind` other than `usage`/`config`).
fn is_domain_error(e: &EvalAltResult) -> bool {
    if let EvalAltResult::ErrorRuntime(v, _) = e
        && let Some(m) = v.read_lock::<rhai::Map>()
        && let Some(k) = m.get("kind")
    {
        let k = k.to_string();
        return k != "usage" && k != "config";
    }
    false
}

/// Reads a recipe file, with the error message ferry prints when it cannot.
pub fn read_recipe(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the recipe {}: {e}", path.display()))
}
