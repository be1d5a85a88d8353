//! `ferry repl`: an interactive session.

use std::sync::Arc;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::{ScriptOpts, exit, sandbox};
use crate::config::Config;
use crate::ops::run::{RunKind, RunOutcome};
use crate::script::{self, repl, runner};

#[derive(Args, Debug)]
pub struct ReplArgs {
    #[command(flatten)]
    pub opts: ScriptOpts,
    /// Describe effects instead of performing them for the whole session.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn exec(a: ReplArgs) -> u8 {
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            super::eprint_error(&format!("cannot start the runtime: {e}"));
            return exit::USAGE;
        }
    };
    let mut _sandbox = None;
    let config = if a.opts.sandbox {
        match rt.block_on(sandbox::start(std::path::Path::new(".ferry"))) {
            Ok(sb) => {
                let c = sb.config.clone();
                _sandbox = Some(sb);
                c
            }
            Err(e) => {
                super::eprint_error(&format!("cannot start the sandbox: {e:#}"));
                return exit::USAGE;
            }
        }
    } else {
        match Config::discover(a.opts.config.as_deref()) {
            Ok(c) => c,
            Err(crate::config::ConfigError::NotFound) => {
                eprintln!(
                    "note: no configuration found; only offline functions work (use --sandbox or --config)"
                );
                Config {
                    state_dir: ".ferry".into(),
                    ..Default::default()
                }
            }
            Err(e) => {
                super::eprint_error(&e.to_string());
                return exit::USAGE;
            }
        }
    };
    // No progress bars: they would fight the line editor for the terminal.
    let shell = crate::shell::Shell::stdout();
    let opts = crate::script::runner::RunOptions {
        dry_run: a.dry_run,
        kind: RunKind::Repl,
        ..super::run_options(&a.opts, &config)
    };
    let host = match runner::start(
        "<repl>",
        "",
        Arc::new(config),
        rt.handle().clone(),
        CancellationToken::new(),
        shell.clone(),
        &opts,
    ) {
        Ok(h) => h,
        Err(e) => {
            shell.eprint(&e);
            return exit::USAGE;
        }
    };
    let engine = script::build_engine(host.clone(), &opts.engine);
    let mut session = repl::Session::with_options(host.clone(), engine, opts.engine.clone());
    session.json = a.opts.json;
    let res = repl::run_interactive(session);
    // The session's end is the run's: open jobs finished, `notify::at_end` sent.
    let done = host.run.finish(RunOutcome::Ok, None);
    for e in &done.errors {
        shell.error(e);
    }
    if let Some(sb) = _sandbox.take() {
        rt.block_on(sb.sim.shutdown());
    }
    match res {
        Ok(()) => exit::OK,
        Err(e) => {
            super::eprint_error(&format!("terminal: {e}"));
            exit::USAGE
        }
    }
}
