//! `ferry rollback RUN`: put the targets of a run back as they were before it (re-import the
//! archives it replaced, re-apply their activation states, delete what it added). Planned with
//! `--dry-run`, recorded and reported like any run.

use clap::Args;

use super::{ScriptOpts, exit};
use crate::script::runner::RunOptions;

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

/// The recipe a rollback runs.
pub fn recipe_for(run: &str, force: bool) -> String {
    format!(
        "// Rollback of run {run}\nlet results = ledger::rollback({}, #{{ force: {force} }});\nfor r in results {{ if r.error != () {{ print(`  FAILED ${{r.id}}: ${{r.error}}`); }} }}\n",
        serde_json::Value::String(run.to_string())
    )
}

pub fn exec(a: RollbackArgs, quiet: bool) -> u8 {
    let run_id = if a.run == "last" {
        let lo = super::runs::LedgerOpts {
            config: a.opts.config.clone(),
            json: false,
        };
        match super::runs::open(&lo).and_then(|db| {
            db.last_run(None, None)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "no run in the ledger yet".to_string())
        }) {
            Ok(r) => r.info.id,
            Err(e) => {
                super::eprint_error(&e);
                return exit::USAGE;
            }
        }
    } else {
        a.run.clone()
    };
    let name = format!("rollback {run_id}");
    let run = RunOptions {
        dry_run: a.dry_run,
        kind: crate::ops::run::RunKind::Rollback,
        ..Default::default()
    };
    let shell = super::shell(quiet, a.opts.json || quiet);
    let (result, config) =
        match super::plan::run_script(&name, &recipe_for(&run_id, a.force), &a.opts, run, &shell) {
            Ok(r) => r,
            Err(e) => {
                super::eprint_error(&e);
                return exit::USAGE;
            }
        };
    if let Some(err) = &result.error {
        eprint!("{}", config.scrub(err));
    }
    if let Some(report) = &result.report {
        if a.opts.json {
            println!("{}", config.scrub(&report.to_json_pretty()));
        } else if !quiet {
            println!("\n{}", config.scrub(&report.summary_table()));
            if a.dry_run {
                println!(
                    "{}",
                    config.scrub(&super::plan::plan_table(&super::plan::plan_lines(report)))
                );
            }
            println!("Rollback of {run_id} recorded as run {}", report.run.id);
        }
    }
    result.code
}
