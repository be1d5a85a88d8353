//! The `vault` module: backup jobs in a vault (`file://` or `sftp://`), stored, verified and
//! fetched back.

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use super::oic::{Instance, as_artifacts, ops_err, options, results};
use super::{getter, global, in_module, static_module};
use crate::ops::job::{self, JobState};
use crate::ops::vault_restore::{self, RestoreOptions};
use crate::script::errors::{self, Ctx};
use crate::script::host::Host;
use crate::vault::{JobFilter, JobReader, Vault};

/// A vault from the config (script type `Vault`).
#[derive(Clone)]
pub struct VaultH {
    pub host: Arc<Host>,
    pub name: String,
    pub vault: Vault,
}

/// Script handle on a job.
#[derive(Clone)]
pub struct Job {
    pub host: Arc<Host>,
    pub state: Arc<JobState>,
}

/// Opens a configured vault.
pub fn open(host: &Arc<Host>, name: &str) -> Result<VaultH, Box<EvalAltResult>> {
    let vault = host
        .block_on(vault_restore::open_vault(&**host, name))?
        .map_err(ops_err)?;
    Ok(VaultH {
        host: host.clone(),
        name: name.to_string(),
        vault,
    })
}

fn new_job(v: &VaultH, name: &str, resume: bool) -> Result<Job, Box<EvalAltResult>> {
    let host = &v.host;
    let state = host
        .block_on(job::new_job(
            &**host, &host.run, &v.name, &v.vault, name, resume,
        ))?
        .map_err(ops_err)?;
    Ok(Job {
        host: host.clone(),
        state,
    })
}

fn open_existing(v: &VaultH, path: &str) -> Result<Job, Box<EvalAltResult>> {
    let state = v
        .host
        .block_on(vault_restore::open_job_in(&v.name, &v.vault, path))?
        .map_err(ops_err)?;
    Ok(Job {
        host: v.host.clone(),
        state: Arc::new(state),
    })
}

/// The job read back (finished first when it is still being written).
pub(super) fn reader_of(j: &Job) -> Result<Arc<JobReader>, Box<EvalAltResult>> {
    let run = &j.host.run;
    j.state.reader(run.record(), &run.shell).map_err(ops_err)
}

pub fn register(e: &mut Engine, host: Arc<Host>) {
    e.register_type_with_name::<VaultH>("Vault");
    e.register_type_with_name::<Job>("Job");

    let h = host.clone();
    static_module(
        e,
        "vault",
        "Backup vaults: dated jobs of archives with a checksummed manifest, optionally encrypted.",
        move |m| {
            let h1 = h.clone();
            in_module("open", &["name: string", "Vault"], "Opens the vault `name` from the config file (`[vaults.NAME]`).\n\n# Example\n```rhai\nlet v = vault::open(\"backups\");\n```")
            .set_into_module(m, move |name: ImmutableString| open(&h1, &name));
            in_module("diff", &["from: Job", "to: Job", "Map"], "What changed between two backup jobs: `#{ from, to, added, removed, changed, unchanged }`. Each changed artifact says\nwhat changed inside its archive: `contents.connections_added/removed`, `endpoints_added/removed` and `entries` (every file added,\nremoved or changed, with its kind: `mapping`, `connection`, `endpoint`, `lookup`...). The diff is also added to the run's report.html.\n\n# Example\n```rhai\nlet v = vault::open(\"backups\");\nlet d = vault::diff(v.job(\"OIC_Backups/2026/11/25/nightly\"), v.job(\"OIC_Backups/2026/11/26/nightly\"));\nfor c in d.changed { print(c.code); }\n```")
            .set_into_module(m, |a: Job, b: Job| super::vault_diff::diff(&a, &b, &Dynamic::UNIT));
            in_module("diff", &["from: Job", "to: Job", "options: Map", "Map"], "`vault::diff` with options: `#{ details: false }` only lists the artifacts that changed, without opening archives.\n\n# Example\n```rhai\nlet d = vault::diff(a, b, #{ details: false });\n```")
            .set_into_module(m, |a: Job, b: Job, o: rhai::Map| super::vault_diff::diff(&a, &b, &Dynamic::from(o)));
        },
    );

    getter(
        "name",
        &["v: Vault", "string"],
        "The vault's profile name.\n\n# Example\n```rhai\nprint(v.name);\n```",
    )
    .register_into_engine(e, |v: &mut VaultH| v.name.clone());
    getter(
        "url",
        &["v: Vault", "string"],
        "Where the vault is (no secrets).\n\n# Example\n```rhai\nprint(v.url);\n```",
    )
    .register_into_engine(e, |v: &mut VaultH| v.vault.describe());
    global(
        "to_string",
        &["v: Vault", "string"],
        "`Vault(name, url)`.\n\n# Example\n```rhai\nprint(v);\n```",
    )
    .register_into_engine(e, |v: &mut VaultH| {
        format!("Vault({}, {})", v.name, v.vault.describe())
    });
    global("new_job", &["v: Vault", "name: string", "Job"], "Starts a backup job `OIC_Backups/YYYY/MM/DD/<name>/` (today, UTC) and takes its lock.\nFails when another run holds the job or the job is already complete.\n\n# Example\n```rhai\nlet job = vault::open(\"backups\").new_job(\"dev-to-prod\");\n```")
        .register_into_engine(e, |v: &mut VaultH, name: ImmutableString| new_job(v, &name, false));
    global("resume_job", &["v: Vault", "name: string", "Job"], "Continues today's job `name` that an earlier run left unfinished (or starts it).\n\n# Example\n```rhai\nlet job = v.resume_job(\"dev-to-prod\");\n```")
        .register_into_engine(e, |v: &mut VaultH, name: ImmutableString| new_job(v, &name, true));
    global("job", &["v: Vault", "path: string", "Job"], "Opens a complete job by its path (`OIC_Backups/2026/11/26/dev-to-prod`), to fetch or restore it.\n\n# Example\n```rhai\nlet job = v.job(\"OIC_Backups/2026/11/26/dev-to-prod\");\n```")
        .register_into_engine(e, |v: &mut VaultH, path: ImmutableString| open_existing(v, &path));
    global("jobs", &["v: Vault", "Array"], "The jobs in the vault, oldest first, as maps: `path`, `name`, `date`, `complete`, `locked`, `artifacts`, `total_size`.\n\n# Example\n```rhai\nfor j in v.jobs() { print(j.path); }\n```")
        .register_into_engine(e, |v: &mut VaultH| jobs(v));

    global(
        "prune",
        &["v: Vault", "policy: Map", "Map"],
        "Deletes the complete jobs a retention policy does not keep: `#{ daily: N, weekly: N, monthly: N }` keeps the newest job of each of the\nlast N days, ISO weeks and months that have jobs (a job kept by any rule is kept; unfinished jobs are never touched).\nFiles of a deleted job that a job staying still shares (unchanged content stored once) are kept until no job uses them.\nIn a dry run nothing is deleted. Returns `#{ kept: [paths], deleted: [paths], skipped_unfinished: [paths], skipped_partial: [paths], skipped_damaged: [paths], kept_shared: [file paths], dry_run }`.\n\n# Example\n```rhai\nvault::open(\"backups\").prune(#{ daily: 7, weekly: 4, monthly: 12 });\n```",
    )
    .register_into_engine(e, |v: &mut VaultH, policy: Map| -> Result<Map, Box<EvalAltResult>> { prune(v, &policy) });
    global(
        "restore",
        &["job: Job", "target: Instance", "Array"],
        "Restores a backup job into an instance: fetches every archive (verified against the manifest; a tampered file or a wrong key is refused\nbefore anything is imported), imports them, and re-applies the activation states they had when backed up.\nThe defaults are those of `import_archives`: what the target already holds is left alone (pass `overwrite: true` to replace it).\nReturns the import results (as `import_archives`).\n\n# Example\n```rhai\nlet job = vault::open(\"backups\").job(\"OIC_Backups/2026/11/26/dev-to-prod-101500-1a2b\");\njob.restore(oic::instance(\"prod\"), #{ overwrite: true });\n```",
    )
    .register_into_engine(e, |j: &mut Job, target: Instance| restore(j, &target, Map::new()));
    global(
        "restore",
        &["job: Job", "target: Instance", "options: Map", "Array"],
        "Restores a backup job with import options (the options and defaults of `import_archives`: `overwrite: false, activate: \"keep\"`).\nA partial job is refused unless `accept_partial: true`.\n`only: [\"CODE|VERSION\", \"CODE\"]` restores just those artifacts (each fetched and verified; the integration's schedule comes with it, `Schedules/CODE_VERSION.json`, put back as the `schedules` option says).\n\n# Example\n```rhai\njob.restore(prod, #{ activate: false });\njob.restore(prod, #{ overwrite: true, only: [\"ORDERS|01.00.0002\"] });\n```",
    )
    .register_into_engine(e, |j: &mut Job, target: Instance, opts: Map| restore(j, &target, opts));

    getter(
        "path",
        &["job: Job", "string"],
        "The job's folder in the vault.\n\n# Example\n```rhai\nprint(job.path);\n```",
    )
    .register_into_engine(e, |j: &mut Job| j.state.path.clone());
    getter(
        "status",
        &["job: Job", "string"],
        "`open` while the job is written, then `complete` (every selected artifact stored and checked) or `partial`\n(some missing: see `missing`).\n\n# Example\n```rhai\nif job.status != \"complete\" { print(`backup ${job.status}: ${job.missing}`); }\n```",
    )
    .register_into_engine(e, |j: &mut Job| j.state.status().to_string());
    getter(
        "missing",
        &["job: Job", "Array"],
        "The selected artifacts a finished job does not hold, as `\"CODE|VERSION\"` strings (empty when complete or open).\n\n# Example\n```rhai\nfor m in job.missing { print(`missing ${m}`); }\n```",
    )
    .register_into_engine(e, |j: &mut Job| -> Array {
        match &*j.state.finished.lock().expect("job status lock") {
            Some((_, m)) => m.iter().map(|m| Dynamic::from(m.key().id())).collect(),
            None => Array::new(),
        }
    });
    getter(
        "name",
        &["job: Job", "string"],
        "The job's name.\n\n# Example\n```rhai\nprint(job.name);\n```",
    )
    .register_into_engine(e, |j: &mut Job| j.state.name.clone());
    global(
        "to_string",
        &["job: Job", "string"],
        "`Job(vault:path)`.\n\n# Example\n```rhai\nprint(job);\n```",
    )
    .register_into_engine(e, |j: &mut Job| {
        format!("Job({}:{})", j.state.vault_name, j.state.path)
    });
    global("store", &["job: Job", "artifacts: Dynamic", "Array"], "Stores artifacts in the job (hashed, encrypted when the vault has recipients, written under a temporary name and renamed).\nReturns the artifacts stored; failures are recorded in the run.\n\n# Example\n```rhai\njob.store(dev.export_archives(list));\n```")
        .register_into_engine(e, |j: &mut Job, items: Dynamic| store(j, &items));
    global("backup", &["job: Job", "inst: Instance", "items: Dynamic", "Map"], "A nightly backup of `items` (integrations, projects, lookups, libraries, packages) from `inst` into the job, that does not export\nwhat did not change: an integration the instance lists with the same `lastUpdated` and status as the newest complete job of the vault\nrecorded (from the same instance, with the same encryption, its file still there) is carried over from that job (a hard link on\nfile vaults, a reference in the manifest on SFTP and S3) without an export; everything else, and everything in doubt, is exported\nand stored (unchanged content is still stored once). Schedules are read again. Returns `#{ carried, exported, stored, archives, schedules }` (`archives`: carried or stored, schedules\nexcluded; `exported` counts the schedules of exported integrations too). In a dry run, what would be carried is counted as carried.\n\n# Example\n```rhai\nlet job = vault::open(\"backups\").new_job(\"nightly\");\nlet r = job.backup(dev, dev.integrations());\njob.finish();\nprint(`${r.carried} unchanged, ${r.exported} exported`);\n```")
        .register_into_engine(e, |j: &mut Job, inst: Instance, items: Dynamic| backup(j, &inst, &items, &Map::new()));
    global("backup", &["job: Job", "inst: Instance", "items: Dynamic", "options: Map", "Map"], "`backup` with options: `concurrency`, `stop_on_error`, `label` (as `export_archives`), `incremental` (default true;\n`false` exports everything), `verify_unchanged` (default false; `true` reads each earlier file back and checks its sha256\nbefore carrying it, instead of checking its size).\n\n# Example\n```rhai\njob.backup(dev, dev.integrations(), #{ concurrency: 8, verify_unchanged: true });\n```")
        .register_into_engine(e, |j: &mut Job, inst: Instance, items: Dynamic, o: Map| backup(j, &inst, &items, &o));
    global("finish", &["job: Job"], "Writes the job's manifest.json (the mark of a complete job) and releases its lock. Runs at the end of a run if the recipe does not call it.\n\n# Example\n```rhai\njob.finish();\n```")
        .register_into_engine(e, |j: &mut Job| -> Result<(), Box<EvalAltResult>> {
            let run = &j.host.run;
            j.state.finish(run.record(), &run.shell).map_err(|m| errors::script_error("vault", None, m, Ctx::instance(&j.state.vault_name)))
        });
    global("artifacts", &["job: Job", "Array"], "Fetches every artifact of the job back (decrypted) and verifies each against the manifest's size and sha256.\nFinishes the job first if it is still open.\n\n# Example\n```rhai\nlet verified = job.artifacts();\n```")
        .register_into_engine(e, |j: &mut Job| artifacts(j));
    global("verify", &["job: Job", "Map"], "Reads every byte of every file of the job and checks it against the manifest.\nReturns `#{ ok, bytes_read, failures: [#{ artifact, path, status }] }`.\n\n# Example\n```rhai\nlet r = job.verify();\nif !r.ok { print(r.failures); }\n```")
        .register_into_engine(e, |j: &mut Job| verify(j));
}

/// Prunes by retention; each deletion is one recorded `delete` step (see
/// [`crate::ops::vault_prune`]).
fn prune(v: &VaultH, policy: &Map) -> Result<Map, Box<EvalAltResult>> {
    let o: crate::ops::vault_prune::PruneOptions = options("prune", policy)?;
    let host = &v.host;
    let r = host
        .block_on(crate::ops::vault_prune::prune(
            &host.exec, &v.name, &v.vault, &o,
        ))?
        .map_err(ops_err)?;
    Ok(rhai::serde::to_dynamic(&r)?.cast::<Map>())
}

/// `job.restore(target, options)`: see [`vault_restore::restore_job`].
fn restore(j: &Job, target: &Instance, opts: Map) -> Result<Array, Box<EvalAltResult>> {
    let o: RestoreOptions = options("restore", &opts)?;
    let host = &*j.host;
    let r = host.block_on(vault_restore::restore_job(
        host,
        &j.state,
        &target.client,
        &o,
    ))?;
    results(r.map_err(ops_err)?)
}

/// `job.store(artifacts)`: see [`job::store`].
fn store(j: &Job, items: &Dynamic) -> Result<Array, Box<EvalAltResult>> {
    let host = &*j.host;
    let r = host.block_on(job::store(host, &j.state, as_artifacts(items)?))?;
    Ok(r.map_err(ops_err)?.into_iter().map(Dynamic::from).collect())
}

/// `job.backup(instance, items, options)`: see [`crate::ops::backup`].
fn backup(
    j: &Job,
    inst: &Instance,
    items: &Dynamic,
    opts: &Map,
) -> Result<Map, Box<EvalAltResult>> {
    let o: crate::ops::backup::BackupOptions = options("backup", opts)?;
    let items = super::oic::as_exportables(items)?;
    let host = &*j.host;
    let r = host.block_on(crate::ops::backup::backup(
        host,
        &j.state,
        &inst.client,
        items,
        &o,
    ))?;
    Ok(rhai::serde::to_dynamic(r.map_err(ops_err)?)?.cast::<Map>())
}

/// `job.artifacts()`: see [`vault_restore::job_artifacts`].
fn artifacts(j: &Job) -> Result<Array, Box<EvalAltResult>> {
    let host = &*j.host;
    let r = host.block_on(vault_restore::job_artifacts(host, &j.state, &[]))?;
    Ok(r.map_err(ops_err)?.into_iter().map(Dynamic::from).collect())
}

/// `job.verify()`: every byte of every file checked against the manifest.
fn verify(j: &Job) -> Result<Dynamic, Box<EvalAltResult>> {
    let reader = reader_of(j)?;
    let rep = j
        .host
        .block_on(async move { tokio::task::spawn_blocking(move || reader.verify()).await })?
        .map_err(|e| errors::script_error("internal", None, e.to_string(), Ctx::default()))?
        .map_err(|e| {
            errors::script_error(
                "vault",
                None,
                e.to_string(),
                Ctx::instance(&j.state.vault_name),
            )
        })?;
    let mut m = Map::new();
    m.insert("ok".into(), rep.ok().into());
    m.insert("bytes_read".into(), (rep.bytes_read as i64).into());
    m.insert("failures".into(), results(rep.failures().to_vec())?.into());
    Ok(m.into())
}

/// The jobs of the vault, oldest first.
fn jobs(v: &VaultH) -> Result<Array, Box<EvalAltResult>> {
    let vault = v.vault.clone();
    let list = v
        .host
        .block_on(async move {
            tokio::task::spawn_blocking(move || vault.list_jobs(JobFilter::default())).await
        })?
        .map_err(|e| errors::script_error("internal", None, e.to_string(), Ctx::instance(&v.name)))?
        .map_err(|e| errors::script_error("vault", None, e.to_string(), Ctx::instance(&v.name)))?;
    results(list)
}
