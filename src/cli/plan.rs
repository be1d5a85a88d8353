//! `ferry plan RECIPE`: run the recipe with every effect described instead of performed (reads
//! still happen, so the plan is real) and print what would be done: artifact, action, reason.
//!
//! Exit codes, as `terraform plan -detailed-exitcode`: 0 nothing would change, 2 something would,
//! 1 the plan could not be made (usage, config, script or read error), 130 interrupted. Usage
//! errors are 1 here (2 for the other commands) so that they never read as "changes".

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{ScriptOpts, sandbox};
use crate::config::Config;
use crate::ledger::report::render_table;
use crate::ledger::{Report, Stage, StepStatus};
use crate::script::runner::{self, RunOptions, RunResult};
use crate::script::{EngineOptions, Output};

/// Exit codes of `ferry plan`.
pub mod code {
    /// Nothing would change.
    pub const NO_CHANGES: u8 = 0;
    /// The plan could not be made.
    pub const ERROR: u8 = 1;
    /// Something would change.
    pub const CHANGES: u8 = 2;
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// The recipe (.rhai) to plan.
    pub recipe: PathBuf,
    #[command(flatten)]
    pub opts: ScriptOpts,
    #[command(flatten)]
    pub ci: super::ci::CiOpts,
}

/// One line of a plan.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PlanLine {
    pub artifact: String,
    pub kind: String,
    pub stage: Stage,
    pub target: String,
    /// `export`, `store`, `import new`, `replace`, `skip`, `activate`, ...
    pub action: String,
    pub reason: String,
    /// True when it would change something (not a read, not a skip).
    pub change: bool,
}

/// The plan of a report: one line per planned, skipped or failed step.
pub fn plan_lines(report: &Report) -> Vec<PlanLine> {
    let mut out = vec![];
    for a in &report.artifacts {
        let id = if a.version.is_empty() {
            a.code.clone()
        } else {
            format!("{}|{}", a.code, a.version)
        };
        for s in &a.stages {
            let (action, change) = match s.status {
                StepStatus::Planned => (
                    s.action.clone(),
                    !matches!(s.stage, Stage::Export | Stage::Verify),
                ),
                StepStatus::Skipped => ("skip".to_string(), false),
                StepStatus::Failed => ("FAILED".to_string(), false),
                StepStatus::Ok => continue,
            };
            let mut reason = match (&s.error, &s.reason) {
                (Some(e), _) => e.message.clone(),
                (None, Some(r)) => r.clone(),
                (None, None) => String::new(),
            };
            // "store PATH", "fetch and verify PATH": the path is the reason's business.
            let mut action = action;
            for verb in ["store ", "fetch and verify "] {
                if let Some(rest) = action.strip_prefix(verb) {
                    if reason.is_empty() {
                        reason = rest.to_string();
                    }
                    action = verb.trim_end().to_string();
                    break;
                }
            }
            out.push(PlanLine {
                artifact: id.clone(),
                kind: a.kind.as_str().to_string(),
                stage: s.stage,
                target: s.target.clone(),
                action,
                reason,
                change,
            });
        }
    }
    out
}

/// The plan as a table.
pub fn plan_table(lines: &[PlanLine]) -> String {
    let mut rows = vec![vec![
        "ARTIFACT".to_string(),
        "KIND".into(),
        "TARGET".into(),
        "ACTION".into(),
        "REASON".into(),
    ]];
    for l in lines {
        rows.push(vec![
            l.artifact.clone(),
            l.kind.clone(),
            l.target.clone(),
            l.action.clone(),
            l.reason.clone(),
        ]);
    }
    render_table(&rows)
}

/// Loads the config (or starts the sandbox) for a command that runs scripts.
pub fn prepare(
    opts: &ScriptOpts,
    rt: &tokio::runtime::Runtime,
) -> Result<(Config, Option<sandbox::Sandbox>), String> {
    if opts.sandbox {
        let sb = rt
            .block_on(sandbox::start(std::path::Path::new(".ferry")))
            .map_err(|e| format!("cannot start the sandbox: {e:#}"))?;
        let c = sb.config.clone();
        Ok((c, Some(sb)))
    } else {
        Config::discover(opts.config.as_deref())
            .map(|c| (c, None))
            .map_err(|e| e.to_string())
    }
}

/// Runs `text` as `name` with the options of `opts`.
pub fn run_script(
    name: &str,
    text: &str,
    opts: &ScriptOpts,
    run: RunOptions,
    quiet: bool,
) -> Result<(RunResult, Config), String> {
    let rt = super::runtime().map_err(|e| format!("cannot start the runtime: {e}"))?;
    let cancel = CancellationToken::new();
    super::run::install_ctrl_c(&rt, cancel.clone(), None);
    let (config, sb) = prepare(opts, &rt)?;
    let out = if opts.json || quiet {
        Output::stderr()
    } else {
        Output::stdout()
    };
    let run = RunOptions {
        sandbox: opts.sandbox,
        vars: opts.vars.clone(),
        engine: EngineOptions::with_paths(&opts.libs, &config.lib_paths),
        ..run
    };
    let config_arc = Arc::new(config.clone());
    let result = runner::run_recipe(
        name,
        text,
        config_arc,
        rt.handle().clone(),
        cancel,
        out,
        &run,
    );
    if let Some(sb) = sb {
        rt.block_on(sb.sim.shutdown());
    }
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    Ok((result, config))
}

pub fn exec(a: PlanArgs, quiet: bool) -> u8 {
    let text = match runner::read_recipe(&a.recipe) {
        Ok(t) => t,
        Err(e) => {
            super::eprint_error(&e);
            return code::ERROR;
        }
    };
    let name = a.recipe.display().to_string();
    let run = RunOptions {
        dry_run: true,
        kind: Some("plan".into()),
        ..Default::default()
    };
    let (result, config) = match run_script(&name, &text, &a.opts, run, quiet) {
        Ok(r) => r,
        Err(e) => {
            super::eprint_error(&e);
            return code::ERROR;
        }
    };
    if let Some(err) = &result.error {
        eprint!("{}", config.scrub(err));
    }
    let ci_failed = !super::ci::emit(&a.ci, "plan", &name, &result, &config);
    let Some(report) = &result.report else {
        return code::ERROR;
    };
    if result.code == super::exit::INTERRUPTED {
        return result.code;
    }
    let lines = plan_lines(report);
    let changes = lines.iter().any(|l| l.change);
    let failed = ci_failed || result.code != 0 || lines.iter().any(|l| l.action == "FAILED");
    if a.opts.json {
        let doc = serde_json::json!({
            "run": report.run.id,
            "recipe": report.run.recipe,
            "changes": changes,
            "failed": failed,
            "plan": lines,
        });
        println!(
            "{}",
            config.scrub(&serde_json::to_string_pretty(&doc).unwrap_or_default())
        );
    } else {
        println!("{}", config.scrub(&plan_table(&lines)));
        let n = lines.iter().filter(|l| l.change).count();
        if failed {
            println!("The plan is incomplete: some reads failed (see above).");
        } else if changes {
            println!("{n} change(s) would be made.");
        } else {
            println!("No changes: the targets are up to date.");
        }
    }
    if failed {
        code::ERROR
    } else if changes {
        code::CHANGES
    } else {
        code::NO_CHANGES
    }
}
