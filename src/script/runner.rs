//! Running a recipe from start to end: compile, run on the calling thread, finish open vault
//! jobs, close the run record, and decide the exit code. Used by `ferry run` and the tests.

use std::path::Path;
use std::sync::Arc;

use rhai::{EvalAltResult, Scope};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::{EngineOptions, Host, Output, build_engine, errors, render};
use crate::cli::exit;
use crate::config::Config;
use crate::effect::{Executor, Resume, RetryPolicy};
use crate::ledger::{LedgerLocation, Report, RunExtra, RunInfo, RunRecord};

/// How to run a recipe.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub dry_run: bool,
    pub sandbox: bool,
    /// Draw progress bars.
    pub progress: bool,
    pub vars: Vec<(String, String)>,
    pub engine: EngineOptions,
    /// Retry settings; `None` takes the defaults (or `$FERRY_RETRY_BASE_MS` for the first delay).
    pub retry: Option<RetryPolicy>,
    /// Resume a stopped run: its id, or `last` (the latest run of this recipe).
    pub resume: Option<String>,
    /// The kind of run recorded in the ledger: `run` (default), `plan` or `rollback`.
    pub kind: Option<String>,
}

/// The end of a run.
pub struct RunResult {
    pub code: u8,
    /// The report (absent when the recipe did not compile or the run could not start).
    pub report: Option<Report>,
    /// A rendered script error, when the recipe stopped on one.
    pub error: Option<String>,
}

/// The retry policy: defaults, with the first delay from `$FERRY_RETRY_BASE_MS` when set.
pub fn default_retry() -> RetryPolicy {
    let mut p = RetryPolicy::default();
    if let Some(ms) = std::env::var("FERRY_RETRY_BASE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        p.base_delay = std::time::Duration::from_millis(ms);
    }
    p
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
    let info = RunInfo {
        id: RunRecord::new_id(),
        recipe: name.to_string(),
        recipe_sha256: hex::encode(Sha256::digest(text.as_bytes())),
        run_by: crate::ledger::run_by(&config),
        started: chrono::Utc::now(),
        ended: None,
        dry_run: opts.dry_run,
        sandbox: opts.sandbox,
        ferry_version: env!("CARGO_PKG_VERSION").to_string(),
        outcome: None,
        message: None,
    };
    let resume = match &opts.resume {
        None => None,
        Some(which) => match Resume::load(&LedgerLocation::for_config(&config), which, name) {
            Ok(r) => Some(Arc::new(r)),
            Err(e) => {
                return RunResult {
                    code: exit::USAGE,
                    report: None,
                    error: Some(format!("error: cannot resume: {e}\n")),
                };
            }
        },
    };
    let extra = RunExtra {
        kind: opts.kind.clone().unwrap_or_else(|| "run".into()),
        profiles: config
            .instances
            .keys()
            .chain(config.vaults.keys())
            .cloned()
            .collect(),
        resumes: resume.as_ref().map(|r| r.run.clone()),
    };
    let record = match RunRecord::for_config(&config, info, extra) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            return RunResult {
                code: exit::USAGE,
                report: None,
                error: Some(format!("error: {e}\n")),
            };
        }
    };
    let exec = Executor::new(
        record.clone(),
        opts.dry_run,
        opts.retry.clone().unwrap_or_else(default_retry),
        cancel.clone(),
    )
    .with_resume(resume);
    let mut host = Host::new(config, rt, exec, out);
    host.progress = opts.progress;
    host.sandbox = opts.sandbox;
    for (k, v) in &opts.vars {
        host.vars.insert(k.as_str().into(), v.clone().into());
    }
    let host = Arc::new(host);
    host.sources.add(name, text);
    let engine = build_engine(host.clone(), &opts.engine);

    let ast = match engine.compile(text) {
        Ok(mut ast) => {
            ast.set_source(name);
            ast
        }
        Err(e) => {
            let err = EvalAltResult::from(e);
            let rendered = render::render(&err, name, &host.sources);
            record.finish("error", Some(render::message_of(&err)));
            return RunResult {
                code: exit::USAGE,
                report: None,
                error: Some(rendered),
            };
        }
    };
    let mut scope = Scope::new();
    let outcome = engine.run_ast_with_scope(&mut scope, &ast);
    drop(scope);
    // Finish the vault jobs the recipe left open (their manifests are written last).
    let stopped = matches!(&outcome, Err(e) if matches!(e.unwrap_inner(), EvalAltResult::ErrorTerminated(..)));
    let mut job_errors = if stopped {
        host.leave_jobs_unfinished()
    } else {
        host.finish_jobs()
    };
    // The job holding what the run replaced (for `ferry rollback`).
    if let Err(e) = super::api::ledger::finish_rollback(&record.info().id) {
        job_errors.push(format!("rollback job: {e}"));
    }

    let (code, error, outcome_name, msg) = match outcome {
        Ok(()) => (exit::OK, None, "ok", None),
        Err(e) => {
            let inner = e.unwrap_inner();
            let rendered = render::render(&e, name, &host.sources);
            let message = render::message_of(inner);
            if matches!(inner, EvalAltResult::ErrorTerminated(..)) {
                (
                    exit::INTERRUPTED,
                    Some(rendered),
                    "interrupted",
                    Some(message),
                )
            } else if is_domain_error(inner) && !errors::is_config_error(&e) {
                (exit::FAILED, Some(rendered), "failed", Some(message))
            } else {
                (exit::USAGE, Some(rendered), "error", Some(message))
            }
        }
    };
    let mut error = error;
    for je in &job_errors {
        let line = format!("error: {je}\n");
        error = Some(match error {
            Some(e) => format!("{e}{line}"),
            None => line,
        });
    }
    // Notification failures are recorded but never fail the run.
    let counts = |s: &crate::ledger::Step| {
        s.status == crate::ledger::StepStatus::Failed && s.stage != crate::ledger::Stage::Notify
    };
    let steps_failed = record.steps().iter().any(counts);
    let outcome_name = if outcome_name == "ok" && (steps_failed || !job_errors.is_empty()) {
        "failed"
    } else {
        outcome_name
    };
    // End-of-run notifications (`notify::at_end`) see the outcome; they never change it.
    super::api::notify::finish_run(&host, outcome_name, msg.as_deref());
    let report = record.finish(outcome_name, msg);
    let artifacts_failed = report.artifacts.iter().any(|a| {
        a.stages.iter().any(|s| {
            s.status == crate::ledger::StepStatus::Failed && s.stage != crate::ledger::Stage::Notify
        })
    });
    let code = if code == exit::OK && (artifacts_failed || !job_errors.is_empty()) {
        exit::FAILED
    } else {
        code
    };
    RunResult {
        code,
        report: Some(report),
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
