//! `ferry vault diff JOB_A JOB_B` and `ferry diff INSTANCE JOB`: what changed between two
//! backups, or on an instance since a backup (the work is in [`crate::ops::vault_diff`]).

use std::path::{Path, PathBuf};

use clap::Args;

use super::{ScriptOpts, exit};
use crate::config::Config;
use crate::ops::vault_diff::{self, DiffOptions, VaultDiff};
use crate::vault::Vault;

/// `ferry diff INSTANCE JOB`.
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The instance (`[instances.NAME]`).
    pub instance: String,
    /// The backup job (`OIC_Backups/YYYY/MM/DD/NAME`, as `ferry vault jobs` shows it).
    pub job: String,
    /// The vault (`[vaults.NAME]`); optional when only one is configured.
    #[arg(long)]
    pub vault: Option<String>,
    /// Also write the differences as a self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Only say which artifacts changed; do not open the archives.
    #[arg(long)]
    pub brief: bool,
    #[command(flatten)]
    pub opts: ScriptOpts,
}

/// Prints a diff (text or JSON) and writes its HTML page when asked.
fn show(d: &VaultDiff, json: bool, html: Option<&Path>) -> u8 {
    if json {
        println!("{}", serde_json::to_string_pretty(d).unwrap_or_default());
    } else {
        print!("{}", d.to_text());
    }
    if let Some(p) = html
        && let Err(e) = std::fs::write(p, d.to_html())
    {
        super::eprint_error(&format!("cannot write {}: {e}", p.display()));
        return exit::FAILED;
    }
    exit::OK
}

/// `ferry vault diff JOB_A JOB_B`.
pub fn exec_jobs(
    config: &Config,
    vname: &str,
    jobs: (&str, &str),
    json: bool,
    html: Option<&Path>,
    brief: bool,
) -> u8 {
    let opts = DiffOptions { details: !brief };
    let r = Vault::open(&config.vaults[vname])
        .and_then(|v| Ok((v.open_job(jobs.0)?, v.open_job(jobs.1)?)))
        .map_err(vault_diff::DiffError::from)
        .and_then(|(a, b)| vault_diff::diff(&a, &b, &opts));
    match r {
        Ok(d) => show(&d, json, html),
        Err(e) => {
            super::eprint_error(&e.to_string());
            exit::FAILED
        }
    }
}

/// `ferry diff INSTANCE JOB`: the job is the old side, the instance the new one.
pub fn exec(a: DiffArgs) -> u8 {
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            super::eprint_error(&format!("cannot start the runtime: {e}"));
            return exit::USAGE;
        }
    };
    let (config, sandbox) = match super::run::load_config(&rt, &a.opts) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let code = match diff_instance(&rt, &config, &a) {
        Ok(d) => show(&d, a.opts.json, a.html.as_deref()),
        Err((code, msg)) => {
            super::eprint_error(&msg);
            code
        }
    };
    if let Some(sb) = sandbox {
        rt.block_on(sb.sim.shutdown());
    }
    code
}

fn diff_instance(
    rt: &tokio::runtime::Runtime,
    config: &Config,
    a: &DiffArgs,
) -> Result<VaultDiff, (u8, String)> {
    let usage = |m: String| (exit::USAGE, m);
    let failed = |m: String| (exit::FAILED, m);
    let vname = super::vault::pick_vault(config, a.vault.as_deref()).map_err(usage)?;
    let profile = config
        .instance(&a.instance)
        .map_err(|e| usage(e.to_string()))?;
    let client = crate::oic::OicClient::new(profile).map_err(|e| usage(e.to_string()))?;
    let job = Vault::open(&config.vaults[&vname])
        .and_then(|v| v.open_job(&a.job))
        .map_err(|e| failed(e.to_string()))?;
    let entries = job.manifest().entries.clone();
    let exported = rt
        .block_on(vault_diff::export_instance(&client, &entries))
        .map_err(|e| failed(e.to_string()))?;
    let opts = DiffOptions { details: !a.brief };
    vault_diff::diff(&job, &exported, &opts).map_err(|e| failed(e.to_string()))
}
