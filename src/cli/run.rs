//! `ferry run RECIPE`: run a recipe against the configured instances (or the sandbox).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::{ScriptOpts, exit, sandbox};
use crate::config::Config;
use crate::script::runner::{self, RunOptions};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The recipe (.rhai) to run.
    pub recipe: PathBuf,
    #[command(flatten)]
    pub opts: ScriptOpts,
    /// Describe every effect (export, store, import, activate, ...) instead of performing it.
    /// Reads still happen, so what is described is what would be done.
    #[arg(long)]
    pub dry_run: bool,
    /// Resume a stopped run (its id, or `last` for the latest run of this recipe): the recipe
    /// runs again and every effect that run completed with the same inputs is skipped.
    #[arg(long, value_name = "RUN|last")]
    pub resume: Option<String>,
    #[command(flatten)]
    pub ci: super::ci::CiOpts,
}

/// Set when SIGTERM stopped the run (its exit code is then 143, not 130).
static TERMINATED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Stops the run on the first Ctrl-C (or SIGTERM); a second one removes the run's temporary files
/// and exits at once with 130 (143).
pub fn install_ctrl_c(
    rt: &tokio::runtime::Runtime,
    cancel: CancellationToken,
    temp: Option<PathBuf>,
) {
    let (c2, t2) = (cancel.clone(), temp.clone());
    rt.spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return;
        };
        if term.recv().await.is_some() {
            eprintln!("\nterminated: stopping (the run stays resumable with --resume last)");
            TERMINATED.store(true, std::sync::atomic::Ordering::SeqCst);
            c2.cancel();
            if term.recv().await.is_some() {
                if let Some(t) = &t2 {
                    remove_temp(t);
                }
                std::process::exit(i32::from(exit::TERMINATED));
            }
        }
    });
    rt.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ninterrupted: stopping (Ctrl-C again to quit at once)");
            cancel.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                if let Some(t) = &temp {
                    remove_temp(t);
                }
                std::process::exit(i32::from(exit::INTERRUPTED));
            }
        }
    });
}

/// Removes the run's temporary folder and the one its ended script left being removed (see
/// `ops::Run::release_temp`).
fn remove_temp(t: &std::path::Path) {
    let _ = std::fs::remove_dir_all(t);
    if let Some(ended) = crate::ops::run::ended_temp(t) {
        let _ = std::fs::remove_dir_all(ended);
    }
}

/// The folder a run of this process streams archives to (created and removed by the run).
pub fn temp_path(config: &Config) -> PathBuf {
    config
        .state_dir
        .join("tmp")
        .join(std::process::id().to_string())
}

pub fn exec(a: RunArgs, quiet: bool) -> u8 {
    let text = match runner::read_recipe(&a.recipe) {
        Ok(t) => t,
        Err(e) => {
            super::eprint_error(&e);
            return exit::USAGE;
        }
    };
    execute_ci(
        &a.recipe.display().to_string(),
        &text,
        &a.opts,
        a.dry_run,
        a.resume.clone(),
        quiet,
        &a.ci,
    )
}

/// The configuration: the sandbox's (started now, kept alive by the returned handle) or the
/// config file's. Prints the error and gives the exit code when it cannot.
pub fn load_config(
    rt: &tokio::runtime::Runtime,
    opts: &ScriptOpts,
) -> Result<(Config, Option<sandbox::Sandbox>), u8> {
    if opts.sandbox {
        match rt.block_on(sandbox::start(std::path::Path::new(".ferry"))) {
            Ok(sb) => Ok((sb.config.clone(), Some(sb))),
            Err(e) => {
                super::eprint_error(&format!("cannot start the sandbox: {e:#}"));
                Err(exit::USAGE)
            }
        }
    } else {
        match Config::discover(opts.config.as_deref()) {
            Ok(c) => Ok((c, None)),
            Err(e) => {
                super::eprint_error(&e.to_string());
                Err(exit::USAGE)
            }
        }
    }
}

/// Runs recipe text (shown as `name`) as `ferry run` does: config or sandbox, temporary files,
/// Ctrl-C, the summary table or the JSON report, and the exit code.
pub fn execute(
    name: &str,
    text: &str,
    sopts: &ScriptOpts,
    dry_run: bool,
    resume: Option<String>,
    quiet: bool,
) -> u8 {
    let ci = super::ci::CiOpts::default();
    execute_ci(name, text, sopts, dry_run, resume, quiet, &ci)
}

/// [`execute`] with CI output (`--junit`, GitHub Actions annotations).
pub fn execute_ci(
    name: &str,
    text: &str,
    sopts: &ScriptOpts,
    dry_run: bool,
    resume: Option<String>,
    quiet: bool,
    ci: &super::ci::CiOpts,
) -> u8 {
    crate::net::prepare_tls();
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            super::eprint_error(&format!("cannot start the runtime: {e}"));
            return exit::USAGE;
        }
    };
    let cancel = CancellationToken::new();
    let (config, mut sandbox) = match load_config(&rt, sopts) {
        Ok(x) => x,
        Err(code) => return code,
    };
    install_ctrl_c(&rt, cancel.clone(), Some(temp_path(&config)));
    let shell = super::shell(quiet, sopts.json);
    shell.add_secrets(&config.secrets);
    let opts = RunOptions {
        dry_run,
        resume,
        temp_dir: true,
        ..super::run_options(sopts, &config)
    };
    let config = Arc::new(config);
    let result = runner::run_recipe(
        name,
        text,
        config.clone(),
        rt.handle().clone(),
        cancel,
        shell.clone(),
        &opts,
    );
    if let Some(err) = &result.error {
        shell.eprint(err);
    }
    if let Some(report) = &result.report {
        if sopts.json {
            shell.report(&report.to_json_pretty());
        } else if !report.artifacts.is_empty() || result.error.is_none() {
            shell.note_with(|| format!("\n{}", report.summary_table()));
            if let Some(dir) = report_dir(&config, &report.run.id) {
                shell.note(&format!("Run {} recorded in {}", report.run.id, dir));
            }
        }
    }
    let ci_failed = !super::ci::emit(ci, "run", name, &result, &config);
    if let Some(sb) = sandbox.take() {
        rt.block_on(sb.sim.shutdown());
    }
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    if ci_failed && result.code == exit::OK {
        return exit::FAILED;
    }
    if result.code == exit::INTERRUPTED && TERMINATED.load(std::sync::atomic::Ordering::SeqCst) {
        return exit::TERMINATED;
    }
    result.code
}

pub(crate) fn report_dir(config: &Config, id: &str) -> Option<String> {
    let d = config.state_dir.join("runs").join(id);
    d.exists().then(|| d.display().to_string())
}
