//! `ferry plan RECIPE`: run the recipe with every effect described instead of performed (reads
//! still happen, so the plan is real) and print what would be done: artifact, action, reason.
//!
//! Exit codes, as `terraform plan -detailed-exitcode`: 0 nothing would change, 2 something would,
//! 1 the plan could not be made (usage, config, script or read error), 130 interrupted. Usage
//! errors are 1 here (2 for the other commands) so that they never read as "changes".

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::ScriptOpts;
use crate::config::Config;
pub use crate::ops::plan::{PlanLine, plan_lines, plan_table};
use crate::ops::run::RunKind;
use crate::script::runner::{self, RunOptions, RunResult};
use crate::shell::Shell;

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

/// Runs `text` as `name` with the options of `opts` (and `run` for what the command sets) on
/// `shell`; gives the result and the config.
pub fn run_script(
    name: &str,
    text: &str,
    opts: &ScriptOpts,
    run: RunOptions,
    shell: &Shell,
) -> Result<(RunResult, Config), String> {
    let rt = super::runtime().map_err(|e| format!("cannot start the runtime: {e}"))?;
    let cancel = CancellationToken::new();
    super::run::install_ctrl_c(&rt, cancel.clone(), None);
    let (config, sb) = super::run::load_config(&rt, opts).map_err(|_| String::new())?;
    shell.add_secrets(&config.secrets);
    let run = RunOptions {
        dry_run: run.dry_run,
        kind: run.kind,
        ..super::run_options(opts, &config)
    };
    let result = runner::run_recipe(
        name,
        text,
        Arc::new(config.clone()),
        rt.handle().clone(),
        cancel,
        shell.clone(),
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
        kind: RunKind::Plan,
        ..Default::default()
    };
    // Script output on stderr under --json or -q: stdout carries the plan.
    let shell = super::shell(quiet, a.opts.json || quiet);
    let (result, config) = match run_script(&name, &text, &a.opts, run, &shell) {
        Ok(r) => r,
        Err(e) => {
            if !e.is_empty() {
                shell.error(&e);
            }
            return code::ERROR;
        }
    };
    if let Some(err) = &result.error {
        shell.eprint(err);
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
        shell.report(&serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        shell.report(&plan_table(&lines));
        let n = lines.iter().filter(|l| l.change).count();
        if failed {
            shell.report("The plan is incomplete: some reads failed (see above).");
        } else if changes {
            shell.report(&format!("{n} change(s) would be made."));
        } else {
            shell.report("No changes: the targets are up to date.");
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
