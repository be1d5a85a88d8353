//! `ferry vault`: backup jobs for people who are not writing a recipe — list, verify, restore
//! and prune. Restore and prune run as recorded runs (planned with `--dry-run`, reported like
//! any run); listing and verifying only read.

use clap::{Args, Subcommand};

use std::sync::Arc;

use super::error::CliError;
use super::{ScriptOpts, exit};
use crate::config::Config;
use crate::ledger::report::render_table;
use crate::ops::OpsError;
use crate::ops::import::ImportOptions;
use crate::ops::vault_prune::{PruneOptions, prune};
use crate::ops::vault_restore::RestoreOptions;
use crate::script::Host;
use crate::script::runner::RunOptions;
use crate::vault::{EntryStatus, JobCondition, JobFilter, JobStatus, Vault, VerifyReport};

#[derive(Args, Debug)]
pub struct VaultArgs {
    #[command(subcommand)]
    pub cmd: VaultCmd,
    /// The vault (`[vaults.NAME]`); optional when only one is configured.
    #[arg(long, global = true)]
    pub vault: Option<String>,
    #[command(flatten)]
    pub opts: ScriptOpts,
}

#[derive(Subcommand, Debug)]
pub enum VaultCmd {
    /// List backup jobs, oldest first.
    Jobs {
        /// Only jobs on or after this date (YYYY-MM-DD).
        #[arg(long)]
        from: Option<chrono::NaiveDate>,
        /// Only jobs on or before this date (YYYY-MM-DD).
        #[arg(long)]
        to: Option<chrono::NaiveDate>,
        /// Only jobs whose name contains this text.
        #[arg(long)]
        name: Option<String>,
    },
    /// Read every byte of a job back and check it against its manifest. Exit code 1 on any
    /// mismatch, and for a partial job unless `--accept-partial`.
    Verify {
        /// The job's path (`OIC_Backups/YYYY/MM/DD/NAME`, as `ferry vault jobs` shows it).
        job: String,
        /// A partial job whose files all check out exits 0.
        #[arg(long)]
        accept_partial: bool,
    },
    /// Restore a job into an instance: import every archive (verified first) and re-apply the
    /// activation states and schedules they had when backed up.
    Restore {
        job: String,
        /// The instance to restore into.
        #[arg(long)]
        to: String,
        /// Describe what would be imported and activated, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Restore what a partial job holds (refused otherwise).
        #[arg(long)]
        accept_partial: bool,
        /// Restore only this artifact: `CODE|VERSION`, or `CODE` (every version of it in the
        /// job). Repeatable.
        #[arg(long, value_name = "CODE|VERSION")]
        only: Vec<String>,
    },
    /// What changed between two backup jobs: artifacts added, removed and changed, and inside a
    /// changed archive its connections, endpoints and files (mappings...) entry by entry.
    Diff {
        /// The older job (`OIC_Backups/YYYY/MM/DD/NAME`).
        from: String,
        /// The newer job.
        to: String,
        /// Also write the differences as a self-contained HTML page.
        #[arg(long, value_name = "FILE")]
        html: Option<std::path::PathBuf>,
        /// Only say which artifacts changed; do not open the archives.
        #[arg(long)]
        brief: bool,
    },
    /// Delete the complete jobs a retention policy does not keep.
    Prune {
        /// Keep the newest job of each of the last N days.
        #[arg(long, default_value_t = 0)]
        daily: u32,
        /// Keep the newest job of each of the last N ISO weeks.
        #[arg(long, default_value_t = 0)]
        weekly: u32,
        /// Keep the newest job of each of the last N months.
        #[arg(long, default_value_t = 0)]
        monthly: u32,
        /// Say what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub(super) fn pick_vault(config: &Config, name: Option<&str>) -> Result<String, String> {
    match name {
        Some(n) => config
            .vault(n)
            .map(|v| v.name.clone())
            .map_err(|e| e.to_string()),
        None => match config.vaults.len() {
            1 => Ok(config.vaults.keys().next().cloned().unwrap_or_default()),
            0 => Err(format!(
                "{}: no vault configured (add a [vaults.NAME] table)",
                config.file
            )),
            _ => Err(format!(
                "several vaults are configured ({}); choose one with --vault",
                config.vaults.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        },
    }
}

/// Runs `f` as the run `name` (recorded and reported as `ferry run` reports a recipe's run):
/// the summary table, or the JSON report under `--json`; the run's exit code.
fn ops_command(
    name: &str,
    opts: &ScriptOpts,
    dry_run: bool,
    quiet: bool,
    f: impl FnOnce(&Arc<Host>) -> Result<(), OpsError>,
) -> u8 {
    let shell = super::shell(quiet, opts.json);
    let run = RunOptions {
        dry_run,
        ..Default::default()
    };
    let (result, config) = match super::session::run_ops(name, opts, run, &shell, f) {
        Ok(r) => r,
        Err(e) => return e.report(&shell),
    };
    if let Some(err) = &result.error {
        shell.eprint(err);
    }
    if let Some(report) = &result.report {
        if opts.json {
            shell.report(&report.to_json_pretty());
        } else if !report.artifacts.is_empty() || result.error.is_none() {
            shell.note(&format!("\n{}", report.summary_table()));
            if let Some(dir) = super::run::report_dir(&config, &report.run.id) {
                shell.note(&format!("Run {} recorded in {}", report.run.id, dir));
            }
        }
    }
    result.code
}

pub fn exec(a: VaultArgs, quiet: bool) -> u8 {
    let shell = super::shell(quiet, a.opts.json);
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => return CliError::from(e).report(&shell),
    };
    let (config, sandbox) = match super::run::load_config(&rt, &a.opts) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let vname = match pick_vault(&config, a.vault.as_deref()) {
        Ok(v) => v,
        Err(e) => return CliError::Usage(e).report(&shell),
    };
    let code = match a.cmd {
        VaultCmd::Restore {
            job,
            to,
            dry_run,
            accept_partial,
            only,
        } => {
            drop(sandbox);
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
            let o = RestoreOptions {
                only,
                accept_partial,
                import: ImportOptions {
                    overwrite: true,
                    ..Default::default()
                },
            };
            return ops_command(
                &format!("<ferry vault restore {job} --to {to}>"),
                &a.opts,
                dry_run,
                quiet,
                |host| {
                    let results = host.run.rt.block_on(crate::ops::vault_restore::restore(
                        &**host, &vname, &job, &to, &o,
                    ))?;
                    for r in results.iter().filter(|r| r.error.is_some()) {
                        host.run.shell.line(&format!(
                            "  FAILED {}: {}",
                            r.id,
                            r.error.as_deref().unwrap_or_default()
                        ));
                    }
                    Ok(())
                },
            );
        }
        VaultCmd::Prune {
            daily,
            weekly,
            monthly,
            dry_run,
        } => {
            drop(sandbox);
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
            if daily + weekly + monthly == 0 {
                let e = CliError::Usage(
                    "a policy that keeps nothing would delete every job; give --daily, --weekly or --monthly".into(),
                );
                return e.report(&shell);
            }
            let policy = PruneOptions {
                daily,
                weekly,
                monthly,
            };
            return ops_command("<ferry vault prune>", &a.opts, dry_run, quiet, |host| {
                let profile = host.config.vault(&vname)?.clone();
                let vault = Vault::open(&profile).map_err(|e| OpsError::Vault {
                    at: vname.clone(),
                    message: e.to_string(),
                })?;
                let r = host
                    .run
                    .rt
                    .block_on(prune(&host.exec, &vname, &vault, &policy))?;
                let out = &host.run.shell;
                out.line(&format!(
                    "kept {}, deleted {}, unfinished {}, partial {}, damaged {}",
                    r.kept.len(),
                    r.deleted.len(),
                    r.skipped_unfinished.len(),
                    r.skipped_partial.len(),
                    r.skipped_damaged.len()
                ));
                if !r.kept_shared.is_empty() {
                    out.line(&format!(
                        "  kept {} file(s) of deleted jobs that newer jobs share",
                        r.kept_shared.len()
                    ));
                }
                for p in &r.skipped_damaged {
                    out.line(&format!("  DAMAGED manifest, left alone: {p}"));
                }
                let verb = if r.dry_run { "would delete" } else { "deleted" };
                for p in &r.deleted {
                    out.line(&format!("  {verb} {p}"));
                }
                Ok(())
            });
        }
        VaultCmd::Diff {
            from,
            to,
            html,
            brief,
        } => super::vault_diff::exec_jobs(
            &config,
            &vname,
            (&from, &to),
            a.opts.json,
            html.as_deref(),
            brief,
        ),
        VaultCmd::Jobs { from, to, name } => {
            let profile = config.vaults[&vname].clone();
            let filter = JobFilter { from, to, name };
            match Vault::open(&profile).and_then(|v| v.list_jobs(filter)) {
                Ok(jobs) => {
                    if a.opts.json {
                        shell.report(&serde_json::to_string_pretty(&jobs).unwrap_or_default());
                    } else {
                        let mut rows = vec![vec![
                            "JOB".to_string(),
                            "DATE".into(),
                            "STATE".into(),
                            "ARTIFACTS".into(),
                            "SIZE".into(),
                        ]];
                        for j in &jobs {
                            let state = match j.status {
                                JobCondition::Unfinished if j.locked => {
                                    "locked (running?)".to_string()
                                }
                                JobCondition::Partial => format!("PARTIAL ({} missing)", j.missing),
                                JobCondition::Damaged => format!(
                                    "DAMAGED: {}",
                                    j.problem.as_deref().unwrap_or("bad manifest")
                                ),
                                s => s.as_str().to_string(),
                            };
                            rows.push(vec![
                                j.path.clone(),
                                j.date.to_string(),
                                state,
                                j.artifacts.to_string(),
                                j.total_size.to_string(),
                            ]);
                        }
                        shell.report(&format!(
                            "{}{} job(s) in {}",
                            render_table(&rows),
                            jobs.len(),
                            profile.url
                        ));
                    }
                    exit::OK
                }
                Err(e) => {
                    shell.error(&e.to_string());
                    exit::FAILED
                }
            }
        }
        VaultCmd::Verify {
            job,
            accept_partial,
        } => {
            let profile = config.vaults[&vname].clone();
            match Vault::open(&profile)
                .and_then(|v| v.open_job(&job))
                .and_then(|j| Ok((j.verify()?, j.manifest().clone())))
            {
                Ok((rep, m)) => {
                    print_verify(&shell, &rep, a.opts.json);
                    let partial = m.status == JobStatus::Partial;
                    if partial {
                        shell.report(&partial_statement(&m));
                    }
                    if rep.ok() && (!partial || accept_partial) {
                        exit::OK
                    } else {
                        exit::FAILED
                    }
                }
                Err(e) => {
                    shell.error(&e.to_string());
                    exit::FAILED
                }
            }
        }
    };
    if let Some(sb) = sandbox {
        rt.block_on(sb.sim.shutdown());
    }
    code
}

fn print_verify(shell: &crate::shell::Shell, rep: &VerifyReport, json: bool) {
    if json {
        shell.report(&serde_json::to_string_pretty(rep).unwrap_or_default());
        return;
    }
    let mut rows = vec![vec!["ARTIFACT".to_string(), "FILE".into(), "RESULT".into()]];
    for e in &rep.entries {
        let r = match &e.status {
            EntryStatus::Ok => "ok".to_string(),
            EntryStatus::StoredOk => "stored bytes ok (no identity to decrypt)".to_string(),
            EntryStatus::Mismatch { problem } => format!("MISMATCH: {problem}"),
            EntryStatus::Missing => "MISSING".to_string(),
            EntryStatus::Unreadable { reason } => format!("UNREADABLE: {reason}"),
        };
        rows.push(vec![e.artifact.clone(), e.path.clone(), r]);
    }
    shell.report(&format!(
        "{}{} file(s), {} byte(s) read: {}",
        render_table(&rows),
        rep.entries.len(),
        rep.bytes_read,
        if rep.ok() { "all ok" } else { "PROBLEMS FOUND" }
    ));
}

/// What a partial job lacks, said plainly.
fn partial_statement(m: &crate::vault::Manifest) -> String {
    let mut s = format!(
        "job {} is PARTIAL: {} selected artifact(s) missing",
        m.path,
        m.missing.len()
    );
    for x in &m.missing {
        s.push_str(&format!("\n  missing {}: {}", x.key(), x.reason));
    }
    s
}
