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
            // A run of its own (with its own runtime and sandbox).
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
            return restore(&a.opts, quiet, &vname, &job, &to, dry_run, &o);
        }
        VaultCmd::Prune {
            daily,
            weekly,
            monthly,
            dry_run,
        } => {
            drop(sandbox);
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
            let policy = PruneOptions {
                daily,
                weekly,
                monthly,
            };
            return prune_jobs(&a.opts, quiet, &shell, &vname, dry_run, &policy);
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
        VaultCmd::Jobs { from, to, name } => list_jobs(
            &config,
            &vname,
            JobFilter { from, to, name },
            a.opts.json,
            &shell,
        ),
        VaultCmd::Verify {
            job,
            accept_partial,
        } => verify_job(&config, &vname, &job, accept_partial, a.opts.json, &shell),
    };
    if let Some(sb) = sandbox {
        rt.block_on(sb.sim.shutdown());
    }
    code
}

/// `ferry vault restore`: a run that restores `job` of `vname` into `to`.
fn restore(
    opts: &ScriptOpts,
    quiet: bool,
    vname: &str,
    job: &str,
    to: &str,
    dry_run: bool,
    o: &RestoreOptions,
) -> u8 {
    let name = format!("<ferry vault restore {job} --to {to}>");
    ops_command(&name, opts, dry_run, quiet, |host| {
        let results = host.run.rt.block_on(crate::ops::vault_restore::restore(
            &**host, vname, job, to, o,
        ))?;
        for r in results.iter().filter(|r| r.error.is_some()) {
            host.run.shell.line(&format!(
                "  FAILED {}: {}",
                r.id,
                r.error.as_deref().unwrap_or_default()
            ));
        }
        Ok(())
    })
}

/// `ferry vault prune`: a run that deletes the jobs `policy` does not keep.
fn prune_jobs(
    opts: &ScriptOpts,
    quiet: bool,
    shell: &crate::shell::Shell,
    vname: &str,
    dry_run: bool,
    policy: &PruneOptions,
) -> u8 {
    if policy.daily + policy.weekly + policy.monthly == 0 {
        let e = CliError::Usage(
            "a policy that keeps nothing would delete every job; give --daily, --weekly or --monthly".into(),
        );
        return e.report(shell);
    }
    ops_command("<ferry vault prune>", opts, dry_run, quiet, |host| {
        let profile = host.config.vault(vname)?.clone();
        let vault = Vault::open(&profile).map_err(|e| OpsError::Vault {
            at: vname.to_string(),
            message: e.to_string(),
        })?;
        let r = host
            .run
            .rt
            .block_on(prune(&host.exec, vname, &vault, policy))?;
        for l in prune_lines(&r) {
            host.run.shell.line(&l);
        }
        Ok(())
    })
}

/// What a prune did (or would do), line by line.
fn prune_lines(r: &crate::ops::vault_prune::PruneResult) -> Vec<String> {
    let mut out = vec![format!(
        "kept {}, deleted {}, unfinished {}, partial {}, damaged {}",
        r.kept.len(),
        r.deleted.len(),
        r.skipped_unfinished.len(),
        r.skipped_partial.len(),
        r.skipped_damaged.len()
    )];
    if !r.kept_shared.is_empty() {
        out.push(format!(
            "  kept {} file(s) of deleted jobs that newer jobs share",
            r.kept_shared.len()
        ));
    }
    for p in &r.skipped_damaged {
        out.push(format!("  DAMAGED manifest, left alone: {p}"));
    }
    let verb = if r.dry_run { "would delete" } else { "deleted" };
    for p in &r.deleted {
        out.push(format!("  {verb} {p}"));
    }
    out
}

/// `ferry vault jobs`: the jobs of `vname` that `filter` selects, as a table or JSON.
fn list_jobs(
    config: &Config,
    vname: &str,
    filter: JobFilter,
    json: bool,
    shell: &crate::shell::Shell,
) -> u8 {
    let profile = config.vaults[vname].clone();
    match Vault::open(&profile).and_then(|v| v.list_jobs(filter)) {
        Ok(jobs) if json => {
            shell.report(&serde_json::to_string_pretty(&jobs).unwrap_or_default());
            exit::OK
        }
        Ok(jobs) => {
            shell.report(&format!(
                "{}{} job(s) in {}",
                render_table(&jobs_table(&jobs)),
                jobs.len(),
                profile.url
            ));
            exit::OK
        }
        Err(e) => {
            shell.error(&e.to_string());
            exit::FAILED
        }
    }
}

/// The rows of the jobs table, its header first.
fn jobs_table(jobs: &[crate::vault::JobSummary]) -> Vec<Vec<String>> {
    let mut rows = vec![vec![
        "JOB".to_string(),
        "DATE".into(),
        "STATE".into(),
        "ARTIFACTS".into(),
        "SIZE".into(),
    ]];
    for j in jobs {
        rows.push(vec![
            j.path.clone(),
            j.date.to_string(),
            job_state(j),
            j.artifacts.to_string(),
            j.total_size.to_string(),
        ]);
    }
    rows
}

/// The STATE column of a job.
fn job_state(j: &crate::vault::JobSummary) -> String {
    match j.status {
        JobCondition::Unfinished if j.locked => "locked (running?)".to_string(),
        JobCondition::Partial => format!("PARTIAL ({} missing)", j.missing),
        JobCondition::Damaged => format!(
            "DAMAGED: {}",
            j.problem.as_deref().unwrap_or("bad manifest")
        ),
        s => s.as_str().to_string(),
    }
}

/// `ferry vault verify`: reads `job` back; exit 1 on a mismatch, or when partial unless
/// `accept_partial`.
fn verify_job(
    config: &Config,
    vname: &str,
    job: &str,
    accept_partial: bool,
    json: bool,
    shell: &crate::shell::Shell,
) -> u8 {
    let profile = config.vaults[vname].clone();
    match Vault::open(&profile)
        .and_then(|v| v.open_job(job))
        .and_then(|j| Ok((j.verify()?, j.manifest().clone())))
    {
        Ok((rep, m)) => {
            print_verify(shell, &rep, json);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(status: JobCondition) -> crate::vault::JobSummary {
        crate::vault::JobSummary {
            path: "OIC_Backups/2026/11/30/nightly".into(),
            name: "nightly".into(),
            date: chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap_or_default(),
            complete: false,
            status,
            missing: 2,
            problem: None,
            locked: false,
            artifacts: 3,
            total_size: 4096,
            recipe: None,
            created_at: None,
            finished_at: None,
        }
    }

    #[test]
    fn the_state_column_says_what_is_wrong() {
        assert_eq!(
            job_state(&summary(JobCondition::Partial)),
            "PARTIAL (2 missing)"
        );
        assert_eq!(
            job_state(&summary(JobCondition::Damaged)),
            "DAMAGED: bad manifest"
        );
        let mut locked = summary(JobCondition::Unfinished);
        locked.locked = true;
        assert_eq!(job_state(&locked), "locked (running?)");
        let rows = jobs_table(&[summary(JobCondition::Partial)]);
        assert_eq!(rows[0][2], "STATE");
        assert_eq!(
            rows[1],
            [
                "OIC_Backups/2026/11/30/nightly",
                "2026-11-30",
                "PARTIAL (2 missing)",
                "3",
                "4096"
            ]
        );
    }

    #[test]
    fn prune_lines_name_each_job() {
        let r = crate::ops::vault_prune::PruneResult {
            dry_run: true,
            kept: vec!["a".into()],
            deleted: vec!["b".into()],
            skipped_damaged: vec!["c".into()],
            kept_shared: vec!["f".into()],
            ..Default::default()
        };
        assert_eq!(
            prune_lines(&r),
            [
                "kept 1, deleted 1, unfinished 0, partial 0, damaged 1",
                "  kept 1 file(s) of deleted jobs that newer jobs share",
                "  DAMAGED manifest, left alone: c",
                "  would delete b",
            ]
        );
    }
}
