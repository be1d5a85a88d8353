//! A command's run without a recipe: the runtime, the configuration (or the sandbox), Ctrl-C,
//! and a run ([`runner::run_ops`]) in which the command calls [`crate::ops`] directly.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::ScriptOpts;
use super::error::CliError;
use crate::config::Config;
use crate::ops::OpsError;
use crate::script::Host;
use crate::script::runner::{self, RunOptions, RunResult};
use crate::shell::Shell;

/// Runs `f` as the run `name` with the options of `opts` (and `run` for what the command sets:
/// dry run, kind) on `shell`; gives the result and the configuration.
pub fn run_ops(
    name: &str,
    opts: &ScriptOpts,
    run: RunOptions,
    shell: &Shell,
    f: impl FnOnce(&Arc<Host>) -> Result<(), OpsError>,
) -> Result<(RunResult, Config), CliError> {
    let rt = super::runtime()?;
    let (config, sandbox) = super::run::load_config(&rt, opts).map_err(|_| CliError::Config)?;
    let cancel = CancellationToken::new();
    super::run::install_ctrl_c(&rt, cancel.clone(), Some(super::run::temp_path(&config)));
    shell.add_secrets(&config.secrets);
    let run = RunOptions {
        dry_run: run.dry_run,
        kind: run.kind,
        temp_dir: true,
        ..super::run_options(opts, &config)
    };
    let result = runner::run_ops(
        name,
        Arc::new(config.clone()),
        rt.handle().clone(),
        cancel,
        shell.clone(),
        &run,
        f,
    );
    if let Some(sb) = sandbox {
        rt.block_on(sb.sim.shutdown());
    }
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    Ok((result, config))
}
