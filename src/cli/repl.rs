//! `ferry repl`: an interactive session.

use std::sync::Arc;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::{ScriptOpts, exit, sandbox};
use crate::config::Config;
use crate::effect::Executor;
use crate::ledger::{RunInfo, RunRecord};
use crate::script::{self, EngineOptions, Host, Output, repl};

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
    let info = RunInfo {
        id: RunRecord::new_id(),
        recipe: "<repl>".into(),
        recipe_sha256: String::new(),
        run_by: crate::ledger::run_by(&config),
        started: chrono::Utc::now(),
        ended: None,
        dry_run: a.dry_run,
        sandbox: a.opts.sandbox,
        ferry_version: env!("CARGO_PKG_VERSION").to_string(),
        outcome: None,
        message: None,
    };
    let record = match RunRecord::for_config(&config, info, Default::default()) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            super::eprint_error(&e.to_string());
            return exit::USAGE;
        }
    };
    let exec = Executor::new(
        record.clone(),
        a.dry_run,
        script::runner::default_retry(),
        CancellationToken::new(),
    );
    let mut host = Host::new(
        Arc::new(config.clone()),
        rt.handle().clone(),
        exec,
        Output::stdout(),
    );
    host.sandbox = a.opts.sandbox;
    for (k, v) in &a.opts.vars {
        host.vars.insert(k.as_str().into(), v.clone().into());
    }
    let host = Arc::new(host);
    let opts = EngineOptions::with_paths(&a.opts.libs, &config.lib_paths);
    let engine = script::build_engine(host.clone(), &opts);
    let mut session = repl::Session::with_options(host.clone(), engine, opts);
    session.json = a.opts.json;
    let res = repl::run_interactive(session);
    host.finish_jobs();
    record.finish("ok", None);
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
