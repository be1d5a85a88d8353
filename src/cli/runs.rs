//! `ferry runs` and `ferry runs show RUN`: the runs in the ledger.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use std::fmt::Write;

use super::error::CliError;
use super::exit;
use crate::config::Config;
use crate::ledger::report::render_table;
use crate::ledger::{Ledger, Report};

#[derive(Args, Debug)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub command: Option<RunsCommand>,
    /// How many runs to list (newest first).
    #[arg(long, default_value_t = 20)]
    pub limit: u64,
    #[command(flatten)]
    pub ledger: LedgerOpts,
}

#[derive(Subcommand, Debug)]
pub enum RunsCommand {
    /// One run: its facts, each artifact's stages, and its failures.
    Show {
        /// The run id (or `last`).
        run: String,
        #[command(flatten)]
        ledger: LedgerOpts,
    },
}

/// Where the ledger is, and the output format.
#[derive(Args, Debug, Clone, Default)]
pub struct LedgerOpts {
    /// Configuration file, for its `[run] dir` (default: $FERRY_CONFIG, then ./ferry.toml; without
    /// one, `.ferry`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The state folder: the config's `[run] dir` when a config is found, else `.ferry`. An explicit
/// config that does not load is an error.
pub fn state_dir(opts: &LedgerOpts) -> Result<PathBuf, String> {
    match Config::discover(opts.config.as_deref()) {
        Ok(c) => Ok(c.state_dir),
        Err(e) if opts.config.is_some() => Err(e.to_string()),
        Err(_) => Ok(PathBuf::from(".ferry")),
    }
}

/// Where the ledger is: the config's `[ledger]` (a shared PostgreSQL database or a SQLite
/// file), else `<run dir>/ledger.db`; without a config, `.ferry/ledger.db`.
pub fn location(opts: &LedgerOpts) -> Result<crate::ledger::LedgerLocation, String> {
    use crate::ledger::LedgerLocation;
    match Config::discover(opts.config.as_deref()) {
        Ok(c) => Ok(LedgerLocation::for_config(&c)),
        Err(e) if opts.config.is_some() => Err(e.to_string()),
        Err(_) => Ok(LedgerLocation::in_state_dir(&PathBuf::from(".ferry"))),
    }
}

/// Opens the ledger, or explains that there is none.
pub fn open(opts: &LedgerOpts) -> Result<Ledger, String> {
    let loc = location(opts)?;
    match Ledger::open_existing_at(&loc) {
        Ok(Some(l)) => Ok(l),
        Ok(None) => Err(format!(
            "no ledger in {} yet (it is created by the first `ferry run`)",
            loc.describe()
        )),
        Err(e) => Err(e.to_string()),
    }
}

pub fn exec(a: RunsArgs) -> u8 {
    let (r, json) = match &a.command {
        Some(RunsCommand::Show { run, ledger }) => (show(run, ledger), ledger.json),
        None => (list(a.limit, &a.ledger), a.ledger.json),
    };
    let shell = super::shell(false, json);
    match r {
        Ok(out) => {
            shell.report(&out);
            exit::OK
        }
        Err(e) => e.report(&shell),
    }
}

/// The runs as a table (or JSON), for the shell to print.
fn list(limit: u64, opts: &LedgerOpts) -> Result<String, CliError> {
    let mut out = String::new();
    let db = open(opts).map_err(CliError::Ledger)?;
    let runs = db
        .runs(limit)
        .map_err(|e| CliError::Ledger(e.to_string()))?;
    if opts.json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&runs).unwrap_or_else(|_| "[]".into())
        );
        return Ok(out);
    }
    let mut rows = vec![vec![
        "RUN".to_string(),
        "KIND".into(),
        "RECIPE".into(),
        "BY".into(),
        "STARTED".into(),
        "OUTCOME".into(),
        "STEPS".into(),
        "FAILED".into(),
    ]];
    for r in &runs {
        let kind = match (&r.extra.resumes, r.info.dry_run) {
            (Some(p), _) => format!("{} (resumes {p})", r.extra.kind),
            (None, true) if r.extra.kind == "run" => "dry run".into(),
            _ => r.extra.kind.clone(),
        };
        rows.push(vec![
            r.info.id.clone(),
            kind,
            r.info.recipe.clone(),
            r.info.run_by.clone(),
            r.info.started.format("%Y-%m-%d %H:%M:%S").to_string(),
            r.info
                .outcome
                .clone()
                .unwrap_or_else(|| "unfinished".into()),
            r.steps.to_string(),
            r.failed_steps.to_string(),
        ]);
    }
    let _ = write!(out, "{}", render_table(&rows));
    if runs.is_empty() {
        let _ = writeln!(out, "(no runs)");
    }
    Ok(out)
}

/// One run's facts and summary (or its JSON report), for the shell to print.
fn show(run: &str, opts: &LedgerOpts) -> Result<String, CliError> {
    let mut out = String::new();
    let db = open(opts).map_err(CliError::Ledger)?;
    let row = if run == "last" {
        db.last_run(None, None)
    } else {
        db.run(run)
    };
    let row = row
        .map_err(|e| CliError::Ledger(e.to_string()))?
        .ok_or_else(|| {
            CliError::Ledger(format!("no run `{run}` in the ledger (see `ferry runs`)"))
        })?;
    let steps = db
        .steps(&row.info.id)
        .map_err(|e| CliError::Ledger(e.to_string()))?;
    let mut report = Report::build(row.info.clone(), &steps);
    report.extra = row.extra.clone();
    report.backup_jobs = db.jobs(&row.info.id).unwrap_or_default();
    if opts.json {
        let _ = writeln!(out, "{}", report.to_json_pretty());
        return Ok(out);
    }
    let i = &row.info;
    let _ = writeln!(out, "Run      {}", i.id);
    let _ = writeln!(out, "Kind     {}", row.extra.kind);
    let _ = writeln!(out, "Recipe   {} (sha256 {})", i.recipe, i.recipe_sha256);
    let _ = writeln!(out, "Run by   {}", i.run_by);
    if !row.extra.profiles.is_empty() {
        let _ = writeln!(out, "Profiles {}", row.extra.profiles.join(", "));
    }
    if let Some(p) = &row.extra.resumes {
        let _ = writeln!(out, "Resumes  {p}");
    }
    let _ = writeln!(
        out,
        "Started  {}",
        i.started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let _ = writeln!(
        out,
        "Ended    {}",
        i.ended
            .map(|e| e.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_else(|| "- (stopped before its end)".into())
    );
    let _ = writeln!(
        out,
        "Outcome  {}{}",
        i.outcome.clone().unwrap_or_else(|| "unfinished".into()),
        i.message
            .as_ref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default()
    );
    if let Some(d) = &row.dir {
        let _ = writeln!(out, "Folder   {d}");
    }
    let _ = writeln!(out, "\n{}", report.summary_table());
    Ok(out)
}
