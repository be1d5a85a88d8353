//! `ferry apply PLAN`: perform exactly the effects of a plan file written by `ferry plan -o`.
//!
//! The plan is read and checked (format version, unknown keys, its digest, the recipe's
//! checksum); the same plan is made again (a dry run of the recipe it holds, with its variables,
//! and the targets read back) and compared with it: when a target, an archive or an effect
//! differs, apply refuses and names each difference, performing nothing. Otherwise the recipe
//! runs with the effect executor admitting only the plan's effects, each as often as the plan
//! has it (a target changing during the run stops the effect it would change), and an export
//! whose content differs from the plan's is refused.
//!
//! Exit codes, as `terraform apply`: 0 applied, 1 refused or failed (usage errors included),
//! 130 interrupted.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::ScriptOpts;
use crate::config::Config;
use crate::effect::PlanGuard;
use crate::ops::planfile::{self, FORMAT, FORMAT_VERSION, PlanFile, PlanRecipe};
use crate::ops::run::RunKind;
use crate::script::runner::{self, RunOptions};
use crate::shell::Shell;

/// Exit codes of `ferry apply`.
pub mod code {
    /// Applied.
    pub const OK: u8 = 0;
    /// Refused (the plan is stale or was edited) or failed.
    pub const ERROR: u8 = 1;
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// The plan file `ferry plan RECIPE -o FILE` wrote.
    pub plan: PathBuf,
    /// Configuration file (default: $FERRY_CONFIG, then ./ferry.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the run report as JSON on stdout (script output and the summary go to stderr).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub ci: super::ci::CiOpts,
}

/// The recipe part of a plan file.
pub fn plan_recipe(name: &str, text: &str, opts: &ScriptOpts) -> PlanRecipe {
    PlanRecipe {
        name: name.to_string(),
        sha256: hex::encode(Sha256::digest(text.as_bytes())),
        text: text.to_string(),
        vars: opts.vars.clone(),
        libs: opts.libs.iter().map(|p| p.display().to_string()).collect(),
        sandbox: opts.sandbox,
    }
}

/// The plan file of a dry run that recorded its effects with `guard`: the targets of its effects
/// (and of `also`'s) are read now.
pub fn plan_file(
    rt: &tokio::runtime::Runtime,
    config: &Config,
    guard: &PlanGuard,
    run: &str,
    recipe: PlanRecipe,
    also: &[crate::effect::PlannedEffect],
) -> Result<PlanFile, String> {
    let effects = guard.effects();
    let mut read = effects.clone();
    read.extend_from_slice(also);
    let targets = rt
        .block_on(planfile::target_states(config, &read))
        .map_err(|e| format!("cannot read the targets for the plan: {e}"))?;
    let instances = if recipe.sandbox {
        Default::default()
    } else {
        planfile::instance_urls(config, &effects)
    };
    Ok(PlanFile {
        format: FORMAT.to_string(),
        version: FORMAT_VERSION,
        ferry_version: env!("CARGO_PKG_VERSION").to_string(),
        run: run.to_string(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        recipe,
        instances,
        archives: guard.archives(),
        effects,
        targets,
        digest: String::new(),
    })
}

pub fn exec(a: ApplyArgs, quiet: bool) -> u8 {
    let shell = super::shell(quiet, a.json);
    let plan = match PlanFile::read(&a.plan) {
        Ok(p) => p,
        Err(e) => {
            shell.error(&e.to_string());
            return code::ERROR;
        }
    };
    let sopts = ScriptOpts {
        config: a.config.clone(),
        sandbox: plan.recipe.sandbox,
        vars: plan.recipe.vars.clone(),
        libs: plan.recipe.libs.iter().map(PathBuf::from).collect(),
        json: a.json,
        ..Default::default()
    };
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            shell.error(&format!("cannot start the runtime: {e}"));
            return code::ERROR;
        }
    };
    let (config, sandbox) = match super::run::load_config(&rt, &sopts) {
        Ok(x) => x,
        Err(_) => return code::ERROR,
    };
    let cancel = CancellationToken::new();
    super::run::install_ctrl_c(&rt, cancel.clone(), Some(super::run::temp_path(&config)));
    shell.add_secrets(&config.secrets);
    let code = apply(&a, &plan, &sopts, &rt, &config, cancel, &shell);
    if let Some(sb) = sandbox {
        rt.block_on(sb.sim.shutdown());
    }
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    code
}

fn apply(
    a: &ApplyArgs,
    plan: &PlanFile,
    sopts: &ScriptOpts,
    rt: &tokio::runtime::Runtime,
    config: &Config,
    cancel: CancellationToken,
    shell: &Shell,
) -> u8 {
    let shared = Arc::new(config.clone());
    let now = match replan(plan, sopts, rt, config, &shared, cancel.clone(), shell) {
        Ok(n) => n,
        Err(code) => return code,
    };
    let diffs = planfile::differences(plan, &now);
    if !diffs.is_empty() {
        shell.error(&format!(
            "refused: {} changed since the plan was made ({} difference(s)); nothing was done. Make a new plan.",
            a.plan.display(),
            diffs.len()
        ));
        for d in &diffs {
            shell.eprint(&format!("  {d}\n"));
        }
        return code::ERROR;
    }
    perform(a, plan, sopts, rt, config, shared, cancel, shell)
}

/// The same plan, made now: a dry run of the plan's recipe recording its effects, its script
/// output buffered (shown only when it fails). Err: the exit code, the reason already reported.
fn replan(
    plan: &PlanFile,
    sopts: &ScriptOpts,
    rt: &tokio::runtime::Runtime,
    config: &Config,
    shared: &Arc<Config>,
    cancel: CancellationToken,
    shell: &Shell,
) -> Result<PlanFile, u8> {
    let recorder = Arc::new(PlanGuard::recording());
    let check = RunOptions {
        dry_run: true,
        kind: RunKind::Plan,
        plan: Some(recorder.clone()),
        ..super::run_options(sopts, config)
    };
    let quiet = Shell::buffer();
    quiet.add_secrets(&config.secrets);
    let result = runner::run_recipe(
        &plan.recipe.name,
        &plan.recipe.text,
        shared.clone(),
        rt.handle().clone(),
        cancel,
        quiet.clone(),
        &check,
    );
    if result.code == super::exit::INTERRUPTED {
        return Err(result.code);
    }
    let now = replanned(&result).and_then(|report| {
        plan_file(
            rt,
            config,
            &recorder,
            &report.run.id,
            plan.recipe.clone(),
            &plan.effects,
        )
    });
    now.map_err(|e| {
        for l in quiet.lines() {
            shell.eprint(&format!("{l}\n"));
        }
        shell.error(&e);
        code::ERROR
    })
}

/// The report of the dry run of [`replan`] when it succeeded, else why it gives no plan: its
/// first failure or its error.
fn replanned(result: &runner::RunResult) -> Result<&crate::ledger::report::Report, String> {
    match (&result.report, &result.error) {
        (Some(report), None) if result.code == 0 && report.failures.is_empty() => Ok(report),
        (Some(report), _) => Err(match report.failures.first() {
            Some(f) => format!(
                "the plan cannot be made again: {} of {} on {}: {}",
                f.stage, f.artifact, f.target, f.error.message
            ),
            None => format!(
                "the plan cannot be made again: {}",
                result.error.clone().unwrap_or_default().trim()
            ),
        }),
        (None, e) => Err(format!(
            "the plan cannot be made again: {}",
            e.clone().unwrap_or_default().trim()
        )),
    }
}

/// Runs the plan's recipe admitting exactly the plan's effects; reports the run and every
/// planned effect it did not perform.
#[allow(clippy::too_many_arguments)]
fn perform(
    a: &ApplyArgs,
    plan: &PlanFile,
    sopts: &ScriptOpts,
    rt: &tokio::runtime::Runtime,
    config: &Config,
    shared: Arc<Config>,
    cancel: CancellationToken,
    shell: &Shell,
) -> u8 {
    let name = &plan.recipe.name;
    let guard = Arc::new(PlanGuard::applying(plan.effects.clone(), &plan.archives));
    let run = RunOptions {
        dry_run: false,
        kind: RunKind::Run,
        temp_dir: true,
        plan: Some(guard.clone()),
        ..super::run_options(sopts, config)
    };
    let result = runner::run_recipe(
        name,
        &plan.recipe.text,
        shared,
        rt.handle().clone(),
        cancel,
        shell.clone(),
        &run,
    );
    if let Some(err) = &result.error {
        shell.eprint(err);
    }
    let left = guard.effects();
    report_applied(a, &result, config, shell);
    let ci_failed = !super::ci::emit(&a.ci, "apply", name, &result, config);
    if result.code == super::exit::INTERRUPTED {
        return result.code;
    }
    if !left.is_empty() {
        shell.error(&format!(
            "{} planned effect(s) were not performed:",
            left.len()
        ));
        for e in &left {
            shell.eprint(&format!("  {}\n", e.describe()));
        }
        return code::ERROR;
    }
    if result.code != 0 || ci_failed {
        return code::ERROR;
    }
    code::OK
}

/// The applied run's report: JSON under `--json`, else the summary table and where it is kept.
fn report_applied(a: &ApplyArgs, result: &runner::RunResult, config: &Config, shell: &Shell) {
    let Some(report) = &result.report else { return };
    if a.json {
        shell.report(&report.to_json_pretty());
    } else if !report.artifacts.is_empty() || result.error.is_none() {
        shell.note_with(|| format!("\n{}", report.summary_table()));
        if let Some(dir) = super::run::report_dir(config, &report.run.id) {
            shell.note(&format!(
                "Plan {} applied as run {}, recorded in {}",
                a.plan.display(),
                report.run.id,
                dir
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_that_did_not_start_says_why_the_plan_cannot_be_made() {
        let r = runner::RunResult {
            code: 2,
            report: None,
            error: Some("error: ferry.toml: `instances.dev`: gone\n".into()),
        };
        assert_eq!(
            replanned(&r).map(|_| ()),
            Err(
                "the plan cannot be made again: error: ferry.toml: `instances.dev`: gone"
                    .to_string()
            )
        );
    }
}
