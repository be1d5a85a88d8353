//! The `vault` module: backup jobs in a vault (`file://` or `sftp://`), stored, verified and
//! fetched back (bindings of [`crate::ops::job`], [`crate::ops::vault_restore`],
//! [`crate::ops::vault_prune`], [`crate::ops::vault_diff`] and [`crate::ops::backup`]).

use std::sync::Arc;

use rhai::plugin::*;
use rhai::{Array, Dynamic, Engine, ImmutableString, Map};

use super::args::{RhaiResultOf, as_artifacts, as_exportables, map_of, objects, options, results};
use super::oic::Instance;
use super::{call, host_of, register_plugin};
use crate::ops::job::{self, JobState};
use crate::ops::{backup, vault_diff, vault_prune, vault_restore};
use crate::script::errors::{self, Ctx};
use crate::script::host::Host;

/// A vault from the config (script type `Vault`).
#[derive(Clone)]
pub struct Vault {
    pub host: Arc<Host>,
    pub name: String,
    pub vault: crate::vault::Vault,
}

/// Script handle on a job.
#[derive(Clone)]
pub struct Job {
    pub host: Arc<Host>,
    pub state: Arc<JobState>,
}

fn new_job(v: &Vault, name: &str, resume: bool) -> RhaiResultOf<Job> {
    let host = v.host.clone();
    let state = job::new_job(&*host, &host.run, &v.name, &v.vault, name, resume);
    let state = call(&host, state)?;
    Ok(Job { host, state })
}

/// Backup vaults: dated jobs of archives with a checksummed manifest, optionally encrypted.
#[export_module]
mod vault_api {
    use super::*;

    /// Opens the vault `name` from the config file (`[vaults.NAME]`).
    ///
    /// # Example
    /// ```rhai
    /// let v = vault::open("backups");
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn open(ctx: NativeCallContext, name: ImmutableString) -> RhaiResultOf<Vault> {
        let host = host_of(&ctx)?;
        let vault = call(&host, vault_restore::open_vault(&*host, &name))?;
        let name = name.to_string();
        Ok(Vault { host, name, vault })
    }

    /// What changed between two backup jobs: `#{ from, to, added, removed, changed, unchanged }`. Each changed artifact says
    /// what changed inside its archive: `contents.connections_added/removed`, `endpoints_added/removed` and `entries` (every file added,
    /// removed or changed, with its kind: `mapping`, `connection`, `endpoint`, `lookup`...). The diff is also added to the run's report.html.
    ///
    /// # Example
    /// ```rhai
    /// let v = vault::open("backups");
    /// let d = vault::diff(v.job("OIC_Backups/2026/11/25/nightly"), v.job("OIC_Backups/2026/11/26/nightly"));
    /// for c in d.changed { print(c.code); }
    /// ```
    #[rhai_fn(name = "diff", volatile, return_raw)]
    pub fn diff_all(from: Job, to: Job) -> RhaiResultOf<Map> {
        diff_with(from, to, Map::new())
    }

    /// `vault::diff` with options: `#{ details: false }` only lists the artifacts that changed, without opening archives.
    ///
    /// # Example
    /// ```rhai
    /// let d = vault::diff(a, b, #{ details: false });
    /// ```
    #[rhai_fn(name = "diff", volatile, return_raw)]
    pub fn diff_with(from: Job, to: Job, options: Map) -> RhaiResultOf<Map> {
        let (o, h) = (super::options("diff", &options)?, &*from.host);
        let d = vault_diff::diff_jobs(h, &from.state, &to.state, &o);
        map_of(&call(h, d)?)
    }
}

// The methods of `Vault` and `Job`.
#[export_module]
mod vault_methods {
    use super::*;

    /// Starts a backup job `OIC_Backups/YYYY/MM/DD/<name>/` (today, UTC) and takes its lock. The
    /// job is this run's own: when today already has a job `name` (complete, or another run's),
    /// it is `name-2`, `name-3`, ... (a warning says so; `job.path` tells which).
    ///
    /// # Example
    /// ```rhai
    /// let job = vault::open("backups").new_job("dev-to-prod");
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn new_job(v: &mut Vault, name: ImmutableString) -> RhaiResultOf<Job> {
        super::new_job(v, &name, false)
    }

    /// Continues today's job `name` that an earlier run left unfinished (or starts it).
    ///
    /// # Example
    /// ```rhai
    /// let job = v.resume_job("dev-to-prod");
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn resume_job(v: &mut Vault, name: ImmutableString) -> RhaiResultOf<Job> {
        super::new_job(v, &name, true)
    }

    /// Opens a complete job by its path (`OIC_Backups/2026/11/26/dev-to-prod`), to fetch or restore it.
    ///
    /// # Example
    /// ```rhai
    /// let job = v.job("OIC_Backups/2026/11/26/dev-to-prod");
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn job(v: &mut Vault, path: ImmutableString) -> RhaiResultOf<Job> {
        let (host, open) = (
            v.host.clone(),
            vault_restore::open_job_in(&v.name, &v.vault, &path),
        );
        let state = Arc::new(call(&host, open)?);
        Ok(Job { host, state })
    }

    /// The jobs in the vault, oldest first, as maps: `path`, `name`, `date`, `complete`, `locked`, `artifacts`, `total_size`.
    ///
    /// # Example
    /// ```rhai
    /// for j in v.jobs() { print(j.path); }
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn jobs(v: &mut Vault) -> RhaiResultOf<Array> {
        results(call(&v.host, vault_restore::list_jobs(&v.name, &v.vault))?)
    }

    /// Deletes the complete jobs a retention policy does not keep: `#{ daily: N, weekly: N, monthly: N }` keeps the newest job of each of the
    /// last N days, ISO weeks and months that have jobs (a job kept by any rule is kept; unfinished jobs are never touched).
    /// Files of a deleted job that a job staying still shares (unchanged content stored once) are kept until no job uses them.
    /// In a dry run nothing is deleted. Returns `#{ kept: [paths], deleted: [paths], skipped_unfinished: [paths], skipped_partial: [paths], skipped_damaged: [paths], kept_shared: [file paths], dry_run }`.
    ///
    /// # Example
    /// ```rhai
    /// vault::open("backups").prune(#{ daily: 7, weekly: 4, monthly: 12 });
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn prune(v: &mut Vault, policy: Map) -> RhaiResultOf<Map> {
        let o = options("prune", &policy)?;
        let pruned = vault_prune::prune(&v.host.exec, &v.name, &v.vault, &o);
        map_of(&call(&v.host, pruned)?)
    }

    /// Restores a backup job into an instance: fetches every archive (verified against the manifest; a tampered file or a wrong key is refused
    /// before anything is imported), imports them, and re-applies the activation states they had when backed up.
    /// The defaults are those of `import_archives`: what the target already holds is left alone (pass `overwrite: true` to replace it).
    /// Returns the import results (as `import_archives`).
    ///
    /// # Example
    /// ```rhai
    /// let job = vault::open("backups").job("OIC_Backups/2026/11/26/dev-to-prod-101500-1a2b");
    /// job.restore(oic::instance("prod"), #{ overwrite: true });
    /// ```
    #[rhai_fn(name = "restore", volatile, pure, return_raw)]
    pub fn restore_all(job: &mut Job, target: Instance) -> RhaiResultOf<Array> {
        restore_with(job, target, Map::new())
    }

    /// Restores a backup job with import options (the options and defaults of `import_archives`: `overwrite: false, activate: "keep"`).
    /// A partial job is refused unless `accept_partial: true`.
    /// `only: ["CODE|VERSION", "CODE"]` restores just those artifacts (each fetched and verified; the integration's schedule comes with it, `Schedules/CODE_VERSION.json`, put back as the `schedules` option says).
    ///
    /// # Example
    /// ```rhai
    /// job.restore(prod, #{ activate: false });
    /// job.restore(prod, #{ overwrite: true, only: ["ORDERS|01.00.0002"] });
    /// ```
    #[rhai_fn(name = "restore", volatile, pure, return_raw)]
    pub fn restore_with(job: &mut Job, target: Instance, options: Map) -> RhaiResultOf<Array> {
        let (o, h) = (super::options("restore", &options)?, &*job.host);
        let restored = vault_restore::restore_job(h, &job.state, &target.client, &o);
        results(call(h, restored)?)
    }

    /// Stores artifacts in the job (hashed, encrypted when the vault has recipients, written under a temporary name and renamed).
    /// Returns the artifacts stored; failures are recorded in the run.
    ///
    /// # Example
    /// ```rhai
    /// job.store(dev.export_archives(list));
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn store(job: &mut Job, artifacts: Dynamic) -> RhaiResultOf<Array> {
        let (h, items) = (&*job.host, as_artifacts(&artifacts)?);
        Ok(objects(call(h, job::store(h, &job.state, items))?))
    }

    /// A nightly backup of `items` (integrations, projects, lookups, libraries, packages) from `inst` into the job, that does not export
    /// what did not change: an integration the instance lists with the same `lastUpdated` and status as the newest complete job of the vault
    /// recorded (from the same instance, with the same encryption, its file still there) is carried over from that job (a hard link on
    /// file vaults, a reference in the manifest on SFTP and S3) without an export; everything else, and everything in doubt, is exported
    /// and stored (unchanged content is still stored once). Schedules are read again. Returns `#{ carried, exported, stored, archives, schedules }` (`archives`: carried or stored, schedules
    /// excluded; `exported` counts the schedules of exported integrations too). In a dry run, what would be carried is counted as carried.
    ///
    /// # Example
    /// ```rhai
    /// let job = vault::open("backups").new_job("nightly");
    /// let r = job.backup(dev, dev.integrations());
    /// job.finish();
    /// print(`${r.carried} unchanged, ${r.exported} exported`);
    /// ```
    #[rhai_fn(name = "backup", volatile, pure, return_raw)]
    pub fn backup_all(job: &mut Job, inst: Instance, items: Dynamic) -> RhaiResultOf<Map> {
        backup_with(job, inst, items, Map::new())
    }

    /// `backup` with options: `concurrency`, `stop_on_error`, `label` (as `export_archives`), `incremental` (default true;
    /// `false` exports everything), `verify_unchanged` (default false; `true` reads each earlier file back and checks its sha256
    /// before carrying it, instead of checking its size), `keep_local` (default false; `true` keeps each exported archive's
    /// local file until `job.artifacts()` hands it back, for a migration that imports them next; each stored file is then
    /// read back and checked right after its store, while the exports go on, a `verify` step each).
    ///
    /// # Example
    /// ```rhai
    /// job.backup(dev, dev.integrations(), #{ concurrency: 8, verify_unchanged: true });
    /// ```
    #[rhai_fn(name = "backup", volatile, pure, return_raw)]
    pub fn backup_with(
        job: &mut Job,
        inst: Instance,
        items: Dynamic,
        options: Map,
    ) -> RhaiResultOf<Map> {
        let (o, h) = (super::options("backup", &options)?, &*job.host);
        let items = as_exportables(&items)?;
        let backed_up = backup::backup(h, &job.state, &inst.client, items, &o);
        map_of(&call(h, backed_up)?)
    }

    /// Writes the job's manifest.json (the mark of a complete job) and releases its lock. Runs at the end of a run if the recipe does not call it.
    ///
    /// # Example
    /// ```rhai
    /// job.finish();
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn finish(job: &mut Job) -> RhaiResultOf<()> {
        let (run, ctx) = (&job.host.run, Ctx::instance(&job.state.vault_name));
        let r = job.state.finish(run.record(), &run.shell);
        r.map_err(|m| errors::script_error("vault", None, m, ctx))
    }

    /// Fetches every artifact of the job back (decrypted) and verifies each against the manifest's size and sha256.
    /// Finishes the job first if it is still open. A file this run's `job.backup(..., #{ keep_local: true })` read back and
    /// checked right after storing it is handed back from its local copy, without reading it again, when the manifest holds
    /// the entry that was checked.
    ///
    /// # Example
    /// ```rhai
    /// let verified = job.artifacts();
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn artifacts(job: &mut Job) -> RhaiResultOf<Array> {
        let (h, state) = (&*job.host, &job.state);
        Ok(objects(call(
            h,
            vault_restore::job_artifacts(h, state, &[]),
        )?))
    }

    /// Reads every byte of every file of the job and checks it against the manifest.
    /// Returns `#{ ok, bytes_read, failures: [#{ artifact, path, status }] }`.
    ///
    /// # Example
    /// ```rhai
    /// let r = job.verify();
    /// if !r.ok { print(r.failures); }
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn verify(job: &mut Job) -> RhaiResultOf<Map> {
        let h = &*job.host;
        map_of(&call(h, vault_restore::verify_job(h, &job.state))?)
    }
}

pub fn register(e: &mut Engine) {
    e.register_type_with_name::<Vault>("Vault");
    e.register_type_with_name::<Job>("Job");
    register_plugin(e, "vault", exported_module!(vault_api));
    e.register_global_module(exported_module!(vault_methods).into());
    props!(e, v: Vault {
        name -> String: "The vault's profile name.", v.name.clone();
        url -> String: "Where the vault is (no secrets).", v.vault.describe();
        fn to_string -> String: "`Vault(name, url)`.", format!("Vault({}, {})", v.name, v.vault.describe());
    });
    props!(e, job: Job {
        path -> String: "The job's folder in the vault.", job.state.path.clone();
        status -> String: "`open` while the job is written, then `complete` (every selected artifact stored and checked) or `partial`\n(some missing: see `missing`)."
            => "if job.status != \"complete\" { print(`backup ${job.status}: ${job.missing}`); }", job.state.status().to_string();
        missing -> Array: "The selected artifacts a finished job does not hold, as `\"CODE|VERSION\"` strings (empty when complete or open)."
            => "for m in job.missing { print(`missing ${m}`); }", objects(job.state.missing_ids());
        name -> String: "The job's name.", job.state.name.clone();
        fn to_string -> String: "`Job(vault:path)`.", format!("Job({}:{})", job.state.vault_name, job.state.path);
    });
}
