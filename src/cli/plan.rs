//! `ferry plan RECIPE`: run the recipe with every effect described instead of performed (reads
//! still happen, so the plan is real) and print what would be done: artifact, action, reason.
//!
//! With `-o FILE` the plan is also written as a plan file (the effects, the archives' content
//! digests, the targets' state, the recipe and its variables) for `ferry apply FILE`, which
//! performs exactly those effects or refuses.
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
use crate::effect::PlanGuard;
pub use crate::ops::plan::{PlanLine, plan_lines, plan_table};
use crate::ops::planfile::PlanFile;
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
    /// Also write the plan to FILE for `ferry apply FILE`: the effects, the archives' content
    /// digests and the targets' state it assumed.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
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
    run_script_then(name, text, opts, run, shell, |_, _, _| ()).map(|(r, c, ())| (r, c))
}

/// [`run_script`], then `after` with the runtime, the config and the result, while the sandbox
/// (if any) still runs.
pub fn run_script_then<T>(
    name: &str,
    text: &str,
    opts: &ScriptOpts,
    run: RunOptions,
    shell: &Shell,
    after: impl FnOnce(&tokio::runtime::Runtime, &Config, &RunResult) -> T,
) -> Result<(RunResult, Config, T), String> {
    let rt = super::runtime().map_err(|e| format!("cannot start the runtime: {e}"))?;
    let cancel = CancellationToken::new();
    super::run::install_ctrl_c(&rt, cancel.clone(), None);
    let (config, sb) = super::run::load_config(&rt, opts).map_err(|_| String::new())?;
    shell.add_secrets(&config.secrets);
    let run = RunOptions {
        dry_run: run.dry_run,
        kind: run.kind,
        plan: run.plan,
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
    let t = after(&rt, &config, &result);
    if let Some(sb) = sb {
        rt.block_on(sb.sim.shutdown());
    }
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    Ok((result, config, t))
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
    let guard = a.out.as_ref().map(|_| Arc::new(PlanGuard::recording()));
    let run = RunOptions {
        dry_run: true,
        kind: RunKind::Plan,
        plan: guard.clone(),
        ..Default::default()
    };
    // Script output on stderr under --json or -q: stdout carries the plan.
    let shell = super::shell(quiet, a.opts.json || quiet);
    let recipe = super::apply::plan_recipe(&name, &text, &a.opts);
    let made = run_script_then(
        &name,
        &text,
        &a.opts,
        run,
        &shell,
        |rt, config, result| match (&guard, &result.report) {
            (Some(g), Some(report)) if result.code == 0 && report.failures.is_empty() => Some(
                super::apply::plan_file(rt, config, g, &report.run.id, recipe, &[]),
            ),
            _ => None,
        },
    );
    let (result, config) = match made {
        Ok((result, config, file)) => {
            if let (Some(out), Some(file)) = (&a.out, file)
                && let Err(e) = write_plan(out, file)
            {
                shell.error(&e);
                return code::ERROR;
            }
            (result, config)
        }
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
        shell.report(&verdict(failed, n));
        if let (Some(out), false) = (&a.out, failed) {
            shell.note(&format!(
                "Plan written to {}; `ferry apply {}` performs exactly these effects.",
                out.display(),
                out.display()
            ));
        }
    }
    exit_code(failed, changes)
}

/// Writes the plan file made after the dry run (or says why there is none).
fn write_plan(out: &std::path::Path, file: Result<PlanFile, String>) -> Result<(), String> {
    file.and_then(|f| {
        f.write(out)
            .map_err(|e| format!("cannot write the plan {}: {e}", out.display()))
    })
}

/// The sentence under the plan table: incomplete, `n` changes, or none.
fn verdict(failed: bool, changes: usize) -> String {
    if failed {
        "The plan is incomplete: some reads failed (see above).".to_string()
    } else if changes > 0 {
        format!("{changes} change(s) would be made.")
    } else {
        "No changes: the targets are up to date.".to_string()
    }
}

/// terraform's `-detailed-exitcode`: an error wins over changes.
fn exit_code(failed: bool, changes: bool) -> u8 {
    if failed {
        code::ERROR
    } else if changes {
        code::CHANGES
    } else {
        code::NO_CHANGES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_never_reads_as_changes() {
        assert_eq!(exit_code(true, true), code::ERROR);
        assert_eq!(exit_code(false, true), code::CHANGES);
        assert_eq!(exit_code(false, false), code::NO_CHANGES);
        assert_ne!(code::ERROR, code::CHANGES);
        assert_eq!(verdict(false, 3), "3 change(s) would be made.");
        assert_eq!(verdict(false, 0), "No changes: the targets are up to date.");
        assert!(verdict(true, 3).starts_with("The plan is incomplete"));
    }
}
