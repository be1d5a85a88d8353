//! The command line: one file per subcommand, each a thin wrapper over the library.

pub mod apply;
pub mod check;
pub mod ci;
pub mod completions;
pub mod docs;
pub mod error;
pub mod errors;
pub mod init;
pub mod plan;
pub mod repl;
pub mod rollback;
pub mod run;
pub mod runs;
pub mod sandbox;
pub mod serve;
pub mod session;
pub mod sim;
pub mod test;
pub mod vault;
pub mod vault_diff;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Exit codes, as documented in `--help` and the README.
pub use crate::shell::exit;

const AFTER_HELP: &str = "\
Exit codes:
  0    success
  1    the recipe ran but some artifact failed (see the summary and the run's report.json)
  2    usage, configuration or script error
  130  interrupted (Ctrl-C)
`ferry plan` follows terraform's -detailed-exitcode: 0 no changes, 2 changes, 1 any error
(usage, configuration and script errors included), 130 interrupted. `ferry apply PLAN` (a plan
file from `ferry plan -o PLAN`): 0 applied, 1 refused (stale or edited plan) or failed, 130.

Environment: FERRY_CONFIG (the config file), FERRY_PATH (module folders, colon-separated),
FERRY_LOG (log filter, as RUST_LOG), FERRY_USER (the user recorded in the ledger),
FERRY_LEDGER (the ledger database). Timings and limits are settings, not variables: [run]
retry_base_ms and resume_grace_ms (or --retry-base-ms, --resume-grace-ms), and per instance
max_json_mib, download_stall_secs and download_deadline_secs (see the README's Configuration).

Configuration: --config FILE, else $FERRY_CONFIG, else ./ferry.toml. Secrets in it are references
(env:VAR or file:PATH) and never printed. --sandbox needs no configuration at all.";

/// ferry: move Oracle Integration Cloud artifacts between instances with scriptable recipes.
#[derive(Parser, Debug)]
#[command(name = "ferry", version, about, long_about = None, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    /// More logging (-v info, -vv debug, -vvv trace). Logs go to stderr.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr; no progress bars.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a recipe.
    Run(run::RunArgs),
    /// Parse a recipe and its imports and report errors; performs nothing.
    Check(check::CheckArgs),
    /// Start the OIC emulator and print how to reach it (one JSON line).
    Sim(sim::SimArgs),
    /// Interactive session: explore instances and try recipe lines.
    Repl(repl::ReplArgs),
    /// The reference of every script-visible module, function, method and property.
    Docs(docs::DocsArgs),
    /// Backup jobs: list, verify, restore, prune.
    Vault(vault::VaultArgs),
    /// Describe what a recipe would do, without doing it (exit 0: no changes, 2: changes, 1: any
    /// error, usage errors included).
    Plan(plan::PlanArgs),
    /// Perform exactly the effects of a plan file (`ferry plan RECIPE -o FILE`); refuse, naming
    /// what changed, when the targets or the archives differ from the plan (exit 0 applied, 1
    /// refused or failed).
    Apply(apply::ApplyArgs),
    /// The runs in the ledger (`ferry runs show RUN` for one).
    Runs(runs::RunsArgs),
    /// The central error log: failed steps of every run.
    Errors(errors::ErrorsArgs),
    /// Put the targets of a run back as they were before it.
    Rollback(rollback::RollbackArgs),
    /// A read-only web dashboard over the ledger: runs (live), stages, errors, backup jobs.
    Serve(serve::ServeArgs),
    /// Run every `*_test.rhai` in a folder against the sandbox and print `N passed, N failed`.
    Test(test::TestArgs),
    /// Write a commented ferry.toml and a recipe folder with one recipe and its test.
    Init(init::InitArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff) on stdout, or write one page per command with --dir.
    #[command(alias = "manpage")]
    Man(completions::ManArgs),
    /// What changed on an instance since a backup job (artifacts, and inside changed archives).
    Diff(vault_diff::DiffArgs),
}

/// Options shared by the commands that run scripts.
#[derive(Args, Debug, Clone, Default)]
pub struct ScriptOpts {
    /// Configuration file (default: $FERRY_CONFIG, then ./ferry.toml).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Run against emulated OIC instances (`dev` Gen2, seeded; `prod` OIC 3, empty; `uat` OIC 3,
    /// seeded with a project) and a local vault, with embedded defaults: no configuration and no
    /// network needed.
    #[arg(long, global = true)]
    pub sandbox: bool,
    /// A recipe variable, read in scripts with param("KEY"). Repeatable.
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var, global = true)]
    pub vars: Vec<(String, String)>,
    /// A folder of shared .rhai modules for `import`. Repeatable; searched before $FERRY_PATH.
    #[arg(long = "lib", value_name = "DIR", global = true)]
    pub libs: Vec<PathBuf>,
    /// Print the run report as JSON on stdout (script output and the summary go to stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// The first retry delay in milliseconds (default: `[run] retry_base_ms`, else 1000); each
    /// retry doubles it.
    #[arg(long, value_name = "MS", global = true)]
    pub retry_base_ms: Option<u64>,
    /// How long `--resume` waits for an import a killed run sent, in milliseconds (default:
    /// `[run] resume_grace_ms`, else 20000).
    #[arg(long, value_name = "MS", global = true)]
    pub resume_grace_ms: Option<u64>,
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

fn init_tracing(verbose: u8, quiet: bool) {
    let level = if quiet {
        "error"
    } else {
        match verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "{level},hyper=warn,reqwest=warn,h2=warn,rustls=warn,tower=warn"
        ))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::config::secret::ScrubbedStderr)
        .with_target(false)
        .try_init();
}

/// Threads of the runtime's blocking pool (file creation and writes of downloads, `tokio::fs`,
/// vault work, ledger writes, archive inspection). tokio's default is 512, and a fan-out of 16
/// exports grew it to 70-80 threads; each keeps its own glibc cache of freed chunks, which held
/// about 15 MiB at 10,000 integrations (peak RSS 76-82 MiB; 62-64 MiB with 8 threads).
/// The long tasks (vault stores and reads) are at most `stores` at a time (4 by default), which
/// leaves threads for the short ones.
///
/// A cap queues blocking work: it could deadlock only if a task in the pool waited for another
/// task of the pool. None does: every `spawn_blocking` body is plain blocking work (files,
/// SQLite, libssh2, zip reading) that finishes by itself; the PostgreSQL ledger and the S3 vault
/// wait on threads and runtimes of their own; `block_on` is called from the script (main) thread
/// only. The emulator's archive streams, which wait for their client to read, run on threads of
/// their own (`sim::stream`), since a `--sandbox` client in this process writes what it reads
/// through this pool.
pub const BLOCKING_THREADS: usize = 8;

/// The multi-thread runtime every command uses; scripts run on the main thread beside it.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ferry-rt")
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
}

/// True when the command line (which did not parse) is a `ferry plan` or `ferry apply` one.
pub fn is_plan<I, T>(args: I) -> bool
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::CommandFactory;
    Cli::command()
        .ignore_errors(true)
        .try_get_matches_from(args)
        .is_ok_and(|m| matches!(m.subcommand_name(), Some("plan" | "apply")))
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if !e.use_stderr() {
                exit::OK
            } else if is_plan(std::env::args_os()) {
                // `ferry plan` keeps 2 for "changes": its usage errors are errors (1).
                plan::code::ERROR
            } else {
                exit::USAGE
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_tracing(cli.verbose, cli.quiet);
    let code = match cli.command {
        Command::Run(a) => run::exec(a, cli.quiet),
        Command::Check(a) => check::exec(a),
        Command::Sim(a) => sim::exec(a),
        Command::Repl(a) => repl::exec(a),
        Command::Docs(a) => docs::exec(a),
        Command::Vault(a) => vault::exec(a, cli.quiet),
        Command::Plan(a) => plan::exec(a, cli.quiet),
        Command::Apply(a) => apply::exec(a, cli.quiet),
        Command::Runs(a) => runs::exec(a),
        Command::Errors(a) => errors::exec(a),
        Command::Rollback(a) => rollback::exec(a, cli.quiet),
        Command::Serve(a) => serve::exec(a),
        Command::Test(a) => test::exec(a),
        Command::Init(a) => init::exec(a),
        Command::Completions(a) => completions::exec_completions(a),
        Command::Man(a) => completions::exec_man(a),
        Command::Diff(a) => vault_diff::exec(a),
    };
    ExitCode::from(code)
}

/// The shell of a command that runs scripts (`-q`, `--json`).
pub fn shell(quiet: bool, json: bool) -> crate::shell::Shell {
    let v = if quiet {
        crate::shell::Verbosity::Quiet
    } else {
        crate::shell::Verbosity::Normal
    };
    crate::shell::Shell::for_command(v, json)
}

/// The run options of `opts` and the config: the flags `--retry-base-ms` and `--resume-grace-ms`
/// over `[run] retry_base_ms` and `resume_grace_ms` (absent: the defaults).
pub fn run_options(
    opts: &ScriptOpts,
    config: &crate::config::Config,
) -> crate::script::runner::RunOptions {
    let ms =
        |flag: Option<u64>, key: Option<u64>| flag.or(key).map(std::time::Duration::from_millis);
    let retry =
        ms(opts.retry_base_ms, config.run.retry_base_ms).map(|d| crate::effect::RetryPolicy {
            base_delay: d,
            ..Default::default()
        });
    crate::script::runner::RunOptions {
        sandbox: opts.sandbox,
        vars: opts.vars.clone(),
        engine: crate::script::EngineOptions::with_paths(&opts.libs, &config.lib_paths),
        retry,
        resume_grace: ms(opts.resume_grace_ms, config.run.resume_grace_ms),
        ..Default::default()
    }
}

/// Prints an error to stderr in the one format ferry uses.
pub fn eprint_error(msg: &str) {
    eprintln!("error: {msg}");
}
