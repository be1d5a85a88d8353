//! `ferry rollback RUN`: put the targets of a run back as they were before it (re-import the
//! archives it replaced, re-apply their activation states, delete what it added). Planned with
//! `--dry-run`, recorded and reported like any run.

use clap::Args;

use super::ScriptOpts;
use super::error::CliError;
use crate::ops::plan::{plan_lines, plan_table};
use crate::ops::run::RunKind;
use crate::script::runner::RunOptions;
use crate::shell::Shell;

#[derive(Args, Debug)]
pub struct RollbackArgs {
    /// The run to roll back (or `last`).
    pub run: String,
    #[command(flatten)]
    pub opts: ScriptOpts,
    /// Describe what would be restored instead of doing it.
    #[arg(long)]
    pub dry_run: bool,
    /// Undo the run's changes even where a later run changed the same artifacts since (without
    /// it, such a rollback is refused and names that run).
    #[arg(long)]
    pub force: bool,
}

pub fn exec(a: RollbackArgs, quiet: bool) -> u8 {
    let shell = super::shell(quiet, a.opts.json || quiet);
    match rollback(&a, &shell) {
        Ok(code) => code,
        Err(e) => e.report(&shell),
    }
}

/// The run `last` names, or `run` itself.
fn run_id(a: &RollbackArgs) -> Result<String, CliError> {
    if a.run != "last" {
        return Ok(a.run.clone());
    }
    let lo = super::runs::LedgerOpts {
        config: a.opts.config.clone(),
        json: false,
    };
    let db = super::runs::open(&lo).map_err(CliError::Ledger)?;
    db.last_run(None, None)
        .map_err(|e| CliError::Ledger(e.to_string()))?
        .map(|r| r.info.id)
        .ok_or_else(|| CliError::Ledger("no run in the ledger yet".into()))
}

fn rollback(a: &RollbackArgs, shell: &Shell) -> Result<u8, CliError> {
    let run_id = run_id(a)?;
    let name = format!("rollback {run_id}");
    let run = RunOptions {
        dry_run: a.dry_run,
        kind: RunKind::Rollback,
        ..Default::default()
    };
    let (result, _config) = super::session::run_ops(&name, &a.opts, run, shell, |host| {
        let results = host.run.rt.block_on(crate::ops::rollback::rollback(
            &**host,
            &run_id,
            &crate::ops::rollback::RollbackOptions { force: a.force },
        ))?;
        for r in &results {
            if let Some(e) = &r.error {
                host.run.shell.line(&format!("  FAILED {}: {e}", r.id));
            }
        }
        Ok(())
    })?;
    if let Some(err) = &result.error {
        shell.eprint(err);
    }
    if let Some(report) = &result.report {
        if a.opts.json {
            shell.report(&report.to_json_pretty());
        } else {
            shell.note(&format!("\n{}", report.summary_table()));
            if a.dry_run {
                shell.note(&plan_table(&plan_lines(report)));
            }
            shell.note(&format!(
                "Rollback of {run_id} recorded as run {}",
                report.run.id
            ));
        }
    }
    Ok(result.code)
}
