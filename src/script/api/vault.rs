//! The `vault` module: backup jobs in a vault (`file://` or `sftp://`), stored, verified and
//! fetched back.

use std::sync::{Arc, Mutex};

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use super::{getter, global, in_module, static_module};
use crate::artifact::Artifact;
use crate::effect::{Effect, Failure, Outcome};
use crate::ledger::Stage;
use crate::ops::job::{JobState, partial_line};
use crate::script::errors::{self, Ctx};
use crate::script::host::Host;
use crate::vault::{JobFilter, JobMeta, JobReader, JobStatus, Vault, VaultError};

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

fn verr(e: VaultError, ctx: Ctx) -> Box<EvalAltResult> {
    errors::script_error("vault", None, e.to_string(), ctx)
}

/// Opens a configured vault.
pub fn open(host: &Arc<Host>, name: &str) -> Result<VaultH, Box<EvalAltResult>> {
    let profile = host
        .config
        .vault(name)
        .map_err(errors::from_config)?
        .clone();
    let v = host
        .block_on(async move { tokio::task::spawn_blocking(move || Vault::open(&profile)).await })?
        .map_err(|e| errors::script_error("internal", None, e.to_string(), Ctx::instance(name)))?
        .map_err(|e| verr(e, Ctx::instance(name)))?;
    Ok(VaultH {
        host: host.clone(),
        name: name.to_string(),
        vault: v,
    })
}

fn new_job(v: &VaultH, name: &str, resume: bool) -> Result<Job, Box<EvalAltResult>> {
    let host = v.host.clone();
    // A resumed run reopens the jobs of the run it resumes, in the same order.
    let (name, date, resume) = super::ledger::job_for(&host, &v.name, name, resume);
    let name = name.as_str();
    let path = Vault::job_path(name, date).map_err(|e| verr(e, Ctx::instance(&v.name)))?;
    let writer = if host.exec.dry_run() {
        None
    } else {
        let info = host.exec.record().info();
        let meta = JobMeta {
            ferry_version: info.ferry_version,
            recipe: info.recipe,
            run_by: info.run_by,
            sources: vec![],
            target: None,
            resume,
        };
        let vault = v.vault.clone();
        let n = name.to_string();
        let w = host
            .block_on(async move {
                tokio::task::spawn_blocking(move || vault.create_job(&n, date, meta)).await
            })?
            .map_err(|e| {
                errors::script_error("internal", None, e.to_string(), Ctx::instance(&v.name))
            })?;
        let w = match w {
            // The resumed run finished this job: read it back; stores skip what it holds.
            Err(e) if resume && super::ledger::is_complete(&e) => {
                let job = open_existing(v, &path)?;
                super::ledger::note_job(&host, &v.name, name, &path, date);
                host.run.add_job(job.state.clone());
                return Ok(job);
            }
            w => w.map_err(|e| verr(e, Ctx::instance(&v.name)))?,
        };
        super::ledger::note_job(&host, &v.name, name, w.path(), date);
        Some(Arc::new(w))
    };
    let state = Arc::new(JobState::new(&v.name, v.vault.clone(), name, &path, writer));
    host.run.add_job(state.clone());
    Ok(Job { host, state })
}

fn open_existing(v: &VaultH, path: &str) -> Result<Job, Box<EvalAltResult>> {
    let vault = v.vault.clone();
    let p = path.to_string();
    let reader = v
        .host
        .block_on(async move { tokio::task::spawn_blocking(move || vault.open_job(&p)).await })?
        .map_err(|e| errors::script_error("internal", None, e.to_string(), Ctx::instance(&v.name)))?
        .map_err(|e| verr(e, Ctx::instance(&v.name)))?;
    let name = reader.manifest().job.clone();
    let finished = Some((reader.manifest().status, reader.manifest().missing.clone()));
    let state = Arc::new(JobState {
        vault_name: v.name.clone(),
        vault: v.vault.clone(),
        name,
        path: reader.path().to_string(),
        writer: Mutex::new(None),
        reader: Mutex::new(Some(Arc::new(reader))),
        planned: Mutex::new(vec![]),
        finished: Mutex::new(finished),
    });
    Ok(Job {
        host: v.host.clone(),
        state,
    })
}

/// Stores artifacts in the job, in parallel; returns those stored (or planned).
pub fn store(job: &Job, items: Vec<Artifact>) -> Result<Vec<Artifact>, Box<EvalAltResult>> {
    let host = job.host.clone();
    let writer = job.state.writer.lock().expect("job writer lock").clone();
    let reader = job.state.reader.lock().expect("job reader lock").clone();
    // What the job already holds (a resumed job): not stored again.
    let held = match (&writer, &reader) {
        (Some(w), _) => w.entries(),
        (None, Some(r)) => r.manifest().entries.clone(),
        _ => vec![],
    };
    let all_held = !items.is_empty()
        && items
            .iter()
            .all(|a| super::ledger::already_stored(&host.exec, &held, a).is_some());
    if writer.is_none() && !host.exec.dry_run() && !all_held {
        return Err(errors::script_error(
            "vault",
            None,
            format!(
                "job {} is finished; open a new job to store more",
                job.state.path
            ),
            Ctx::instance(&job.state.vault_name),
        ));
    }
    let results = super::bulk::run_bulk(&host, "store", host.concurrency.stores, items, |a| {
        let exec = host.exec.clone();
        let writer = writer.clone();
        let st = job.state.clone();
        let held = &held;
        async move {
            let dest = format!("{}/{}/{}", st.path, a.key.kind.folder(), a.file_name());
            let eff = Effect::new(
                Stage::Store,
                a.key.clone(),
                st.vault_name.clone(),
                format!("store {dest}"),
            )
            .with_sha256(Some(a.sha256.clone()).filter(|s| !s.is_empty()));
            let r = if a.is_planned() {
                exec.note(&eff, crate::ledger::StepStatus::Planned, None);
                Ok(Outcome::Planned)
            } else if let Some(why) = super::ledger::already_stored(&exec, held, &a) {
                exec.skip(eff, why.clone());
                Ok(Outcome::Skipped(why))
            } else {
                exec.run(eff, || {
                    let w = writer.clone();
                    let a2 = a.clone();
                    async move {
                        let Some(w) = w else {
                            return Err(Failure::Task("job is not open for writing".into()));
                        };
                        match tokio::task::spawn_blocking(move || w.store(&a2)).await {
                            Ok(Ok(_entry)) => Ok(()),
                            Ok(Err(e)) => Err(Failure::from(e)),
                            Err(e) => Err(Failure::Task(e.to_string())),
                        }
                    }
                })
                .await
            };
            (a, r)
        }
    })?;
    let mut out = vec![];
    for (a, r) in results {
        match r {
            Ok(Outcome::Planned) => {
                job.state
                    .planned
                    .lock()
                    .expect("planned lock")
                    .push(a.clone());
                out.push(a);
            }
            Ok(_) => out.push(a),
            Err(e) if e.cancelled => return Err(errors::cancelled()),
            Err(_) => {}
        }
    }
    Ok(out)
}

/// `job.backup(instance, items, options)`: carries what the source lists unchanged since the
/// newest complete job, exports and stores the rest; see [`crate::ops::backup`].
fn backup(
    job: &Job,
    inst: &super::oic::Instance,
    items: &Dynamic,
    opts: &Map,
) -> Result<Map, Box<EvalAltResult>> {
    let o: crate::ops::backup::BackupOptions = super::oic::options("backup", opts)?;
    let items = super::oic::as_exportables(items)?;
    let writer = job.state.writer.lock().expect("job writer lock").clone();
    let host = &*inst.host;
    let c = host
        .block_on(crate::ops::backup::carry_unchanged(
            host,
            &inst.client,
            &job.state.vault_name,
            writer,
            items,
            &o,
        ))?
        .map_err(super::oic::ops_err)?;
    let mut arts = host
        .block_on(crate::ops::export::export(
            host,
            &inst.client,
            c.to_export,
            &o.export(),
        ))?
        .map_err(super::oic::ops_err)?;
    let exported = arts.len();
    arts.extend(c.schedules);
    let stored = store(job, arts)?;
    let mut m = Map::new();
    m.insert("carried".into(), (c.carried as i64).into());
    m.insert("exported".into(), (exported as i64).into());
    m.insert("stored".into(), (stored.len() as i64).into());
    Ok(m)
}

/// Writes the job's manifest (once).
fn finish(job: &Job) -> Result<(), Box<EvalAltResult>> {
    let st = (job.state.clone(), job.host.run.clone());
    job.host
        .block_on(async move {
            tokio::task::spawn_blocking(move || {
                let run = &st.1;
                st.0.finish(run.record(), &run.shell)
            })
            .await
        })?
        .map_err(|e| e.to_string())
        .and_then(|r| r)
        .map_err(|m| errors::script_error("vault", None, m, Ctx::instance(&job.state.vault_name)))
}

pub(super) fn reader_of(job: &Job) -> Result<Arc<JobReader>, Box<EvalAltResult>> {
    if let Some(r) = job.state.reader.lock().expect("job reader lock").clone() {
        return Ok(r);
    }
    finish(job)?;
    let vault = job.state.vault.clone();
    let p = job.state.path.clone();
    let r = job
        .host
        .block_on(async move { tokio::task::spawn_blocking(move || vault.open_job(&p)).await })?
        .map_err(|e| {
            errors::script_error(
                "internal",
                None,
                e.to_string(),
                Ctx::instance(&job.state.vault_name),
            )
        })?
        .map_err(|e| verr(e, Ctx::instance(&job.state.vault_name)))?;
    let r = Arc::new(r);
    *job.state.reader.lock().expect("job reader lock") = Some(r.clone());
    Ok(r)
}

/// Fetches every artifact of the job back, decrypted and verified against the manifest (one
/// `verify` step each). Finishes the job first if it is still being written.
pub fn artifacts(job: &Job) -> Result<Vec<Artifact>, Box<EvalAltResult>> {
    artifacts_only(job, None)
}

/// [`artifacts`], only for the entries `only` selects (`CODE|VERSION` or `CODE`).
fn artifacts_only(job: &Job, only: Option<&[String]>) -> Result<Vec<Artifact>, Box<EvalAltResult>> {
    let host = job.host.clone();
    if host.exec.dry_run() && job.state.reader.lock().expect("job reader lock").is_none() {
        let mut planned = job.state.planned.lock().expect("planned lock").clone();
        if let Some(sel) = only {
            planned.retain(|a| {
                sel.iter().any(|s| {
                    s.eq_ignore_ascii_case(&a.key.code)
                        || s.eq_ignore_ascii_case(&format!("{}|{}", a.key.code, a.key.version))
                })
            });
        }
        for a in &planned {
            host.exec.note(
                &Effect::new(
                    Stage::Verify,
                    a.key.clone(),
                    job.state.vault_name.clone(),
                    "fetch and verify",
                ),
                crate::ledger::StepStatus::Planned,
                None,
            );
        }
        return Ok(planned);
    }
    let reader = reader_of(job)?;
    let entries = match only {
        None => reader.manifest().entries.clone(),
        Some(sel) => crate::ops::vault_restore::select(&reader.manifest().entries, sel)
            .map_err(|m| errors::usage(format!("job {}: {m}", job.state.path)))?,
    };
    let results =
        super::bulk::run_bulk(&host, "verify", host.concurrency.stores, entries, |entry| {
            let exec = host.exec.clone();
            let reader = reader.clone();
            let vname = job.state.vault_name.clone();
            async move {
                let eff = Effect::new(
                    Stage::Verify,
                    entry.key(),
                    vname,
                    format!("fetch and verify {}", entry.path),
                )
                .with_sha256(Some(entry.sha256.clone()));
                // Verifying is a read, so it also happens in a dry run.
                exec.run_read(eff, || {
                    let reader = reader.clone();
                    let entry = entry.clone();
                    async move {
                        let fetched = tokio::task::spawn_blocking(move || {
                            reader.fetch(&entry).map(|mut a| {
                                a.source = entry.source.clone();
                                a
                            })
                        })
                        .await;
                        match fetched {
                            Ok(Ok(a)) => Ok(a),
                            Ok(Err(e)) => Err(Failure::from(e)),
                            Err(e) => Err(Failure::Task(e.to_string())),
                        }
                    }
                })
                .await
            }
        })?;
    let mut out = vec![];
    for r in results {
        match r {
            Ok(a) => out.push(a),
            Err(e) if e.cancelled => return Err(errors::cancelled()),
            Err(_) => {}
        }
    }
    Ok(out)
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
        .register_into_engine(e, |v: &mut VaultH| -> Result<Array, Box<EvalAltResult>> {
            let vault = v.vault.clone();
            let list = v
                .host
                .block_on(async move { tokio::task::spawn_blocking(move || vault.list_jobs(JobFilter::default())).await })?
                .map_err(|e| errors::script_error("internal", None, e.to_string(), Ctx::instance(&v.name)))?
                .map_err(|e| verr(e, Ctx::instance(&v.name)))?;
            list.into_iter().map(|j| rhai::serde::to_dynamic(&j)).collect()
        });

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
    .register_into_engine(e, |j: &mut Job, target: super::oic::Instance| -> Result<Array, Box<EvalAltResult>> { restore(j, &target, Map::new()) });
    global(
        "restore",
        &["job: Job", "target: Instance", "options: Map", "Array"],
        "Restores a backup job with import options (the options and defaults of `import_archives`: `overwrite: false, activate: \"keep\"`).\nA partial job is refused unless `accept_partial: true`.\n`only: [\"CODE|VERSION\", \"CODE\"]` restores just those artifacts (each fetched and verified; the integration's schedule comes with it, `Schedules/CODE_VERSION.json`, put back as the `schedules` option says).\n\n# Example\n```rhai\njob.restore(prod, #{ activate: false });\njob.restore(prod, #{ overwrite: true, only: [\"ORDERS|01.00.0002\"] });\n```",
    )
    .register_into_engine(e, |j: &mut Job, target: super::oic::Instance, opts: Map| -> Result<Array, Box<EvalAltResult>> { restore(j, &target, opts) });

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
        .register_into_engine(e, |j: &mut Job, items: Dynamic| -> Result<Array, Box<EvalAltResult>> { Ok(store(j, super::oic::as_artifacts(&items)?)?.into_iter().map(Dynamic::from).collect()) });
    global("backup", &["job: Job", "inst: Instance", "items: Dynamic", "Map"], "A nightly backup of `items` (integrations, projects, lookups, libraries, packages) from `inst` into the job, that does not export\nwhat did not change: an integration the instance lists with the same `lastUpdated` and status as the newest complete job of the vault\nrecorded (from the same instance, with the same encryption, its file still there) is carried over from that job (a hard link on\nfile vaults, a reference in the manifest on SFTP and S3) without an export; everything else, and everything in doubt, is exported\nand stored (unchanged content is still stored once). Schedules are read again. Returns `#{ carried, exported, stored }`.\n\n# Example\n```rhai\nlet job = vault::open(\"backups\").new_job(\"nightly\");\nlet r = job.backup(dev, dev.integrations());\njob.finish();\nprint(`${r.carried} unchanged, ${r.exported} exported`);\n```")
        .register_into_engine(e, |j: &mut Job, inst: super::oic::Instance, items: Dynamic| -> Result<Map, Box<EvalAltResult>> { backup(j, &inst, &items, &Map::new()) });
    global("backup", &["job: Job", "inst: Instance", "items: Dynamic", "options: Map", "Map"], "`backup` with options: `concurrency`, `stop_on_error`, `label` (as `export_archives`), `incremental` (default true;\n`false` exports everything), `verify_unchanged` (default false; `true` reads each earlier file back and checks its sha256\nbefore carrying it, instead of checking its size).\n\n# Example\n```rhai\njob.backup(dev, dev.integrations(), #{ concurrency: 8, verify_unchanged: true });\n```")
        .register_into_engine(e, |j: &mut Job, inst: super::oic::Instance, items: Dynamic, o: Map| -> Result<Map, Box<EvalAltResult>> { backup(j, &inst, &items, &o) });
    global("finish", &["job: Job"], "Writes the job's manifest.json (the mark of a complete job) and releases its lock. Runs at the end of a run if the recipe does not call it.\n\n# Example\n```rhai\njob.finish();\n```")
        .register_into_engine(e, |j: &mut Job| -> Result<(), Box<EvalAltResult>> { finish(j) });
    global("artifacts", &["job: Job", "Array"], "Fetches every artifact of the job back (decrypted) and verifies each against the manifest's size and sha256.\nFinishes the job first if it is still open.\n\n# Example\n```rhai\nlet verified = job.artifacts();\n```")
        .register_into_engine(e, |j: &mut Job| -> Result<Array, Box<EvalAltResult>> { Ok(artifacts(j)?.into_iter().map(Dynamic::from).collect()) });
    global("verify", &["job: Job", "Map"], "Reads every byte of every file of the job and checks it against the manifest.\nReturns `#{ ok, bytes_read, failures: [#{ artifact, path, status }] }`.\n\n# Example\n```rhai\nlet r = job.verify();\nif !r.ok { print(r.failures); }\n```")
        .register_into_engine(e, |j: &mut Job| -> Result<Map, Box<EvalAltResult>> {
            let reader = reader_of(j)?;
            let rep = j
                .host
                .block_on(async move { tokio::task::spawn_blocking(move || reader.verify()).await })?
                .map_err(|e| errors::script_error("internal", None, e.to_string(), Ctx::default()))?
                .map_err(|e| verr(e, Ctx::instance(&j.state.vault_name)))?;
            let mut m = Map::new();
            m.insert("ok".into(), rep.ok().into());
            m.insert("bytes_read".into(), (rep.bytes_read as i64).into());
            let fails: Array = rep.failures().iter().map(|f| rhai::serde::to_dynamic(f).unwrap_or(Dynamic::UNIT)).collect();
            m.insert("failures".into(), fails.into());
            Ok(m)
        });
}

/// Fetches (verified) and imports a job's archives with the options and defaults of
/// `import_archives`, re-applying their activation states. A partial job is refused unless `accept_partial: true`. `only`
/// restores just the artifacts it names.
fn restore(
    j: &Job,
    target: &super::oic::Instance,
    mut opts: Map,
) -> Result<Array, Box<EvalAltResult>> {
    let only: Option<Vec<String>> = match opts.remove("only") {
        None => None,
        Some(v) => Some(rhai::serde::from_dynamic(&v).map_err(|_| {
            errors::usage("restore: `only` is a list of \"CODE|VERSION\" or \"CODE\" strings")
        })?),
    };
    let accept = match opts.remove("accept_partial") {
        None => false,
        Some(v) => v
            .as_bool()
            .map_err(|_| errors::usage("restore: `accept_partial` must be true or false"))?,
    };
    if let Some((JobStatus::Partial, missing)) = &*j.state.finished.lock().expect("job status lock")
        && !accept
    {
        return Err(errors::script_error(
            "vault",
            None,
            format!(
                "{}; restore what it holds with `accept_partial: true` (ferry vault restore --accept-partial)",
                partial_line(&j.state.path, missing)
            ),
            Ctx::instance(&j.state.vault_name),
        ));
    }
    let arts = artifacts_only(j, only.as_deref())?;
    super::oic::import(target, arts, &opts, "restore")
}

/// Prunes by retention; each deletion is one recorded `delete` step (see
/// [`crate::ops::vault_prune`]).
fn prune(v: &VaultH, policy: &Map) -> Result<Map, Box<EvalAltResult>> {
    let o: crate::ops::vault_prune::PruneOptions = super::oic::options("prune", policy)?;
    let host = &v.host;
    let r = host
        .block_on(crate::ops::vault_prune::prune(
            &host.exec, &v.name, &v.vault, &o,
        ))?
        .map_err(super::oic::ops_err)?;
    rhai::serde::to_dynamic(&r)?
        .try_cast::<Map>()
        .ok_or_else(|| errors::usage("prune: the result is not a map"))
}
