//! The `ledger` module and the hooks the other modules call for plan, resume and rollback:
//!
//! * reading the run ledger from recipes (`ledger::runs()`, `ledger::last_run()`,
//!   `ledger::failed(run)`, `ledger::errors(filter)`);
//! * the check before an import ([`import_integration`]): reads the target, decides "import new",
//!   "replace" or "skip (unchanged by checksum)", and saves what a replace would lose (the
//!   current archive and activation state) for rollback;
//! * the check before an activation ([`activate_integration`]);
//! * reopening the vault jobs of a resumed run ([`job_for`]) and skipping what they hold;
//! * `ledger::rollback(run)`: putting a target back as it was before a run.

use crate::script::api::OrUnit;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use super::{in_module, static_module};
use crate::artifact::{Artifact, ArtifactKey, ArtifactKind};
use crate::effect::{Decision, Effect, EffectError, Executor, Failure, Outcome};
use crate::ledger::{
    ErrorFilter, Intent, Ledger, RollbackEntry, Stage, StepStatus, stage_from_str,
};
use crate::oic::{ImportMode, ImportOutcome, IntegrationId, OicClient};
use crate::script::errors::{self, Ctx};
use crate::script::host::Host;
use crate::vault::{Vault, VaultError};

// ------------------------------------------------------------------------------ import check

/// Reasons of skipped imports after which the artifact is on the target as wanted, so its
/// activation still follows.
pub fn import_skip_continues(reason: &str) -> bool {
    reason.starts_with("unchanged by checksum") || reason.starts_with("done in run ")
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// Imports an integration archive as one `import` effect with a check first (also in a dry
/// run): absent on the target → "import new"; present with the same archive sha256 →
/// skipped "unchanged by checksum"; present otherwise → "replace" (or skipped when `mode` does
/// not overwrite). Before a replace, the target's current archive and status are saved for
/// rollback; before an import new, the absence is recorded.
pub async fn import_integration(
    host: &Arc<Host>,
    client: &OicClient,
    a: &Artifact,
    mode: ImportMode,
    eff: Effect,
    listed_absent: bool,
) -> Result<Outcome<ImportOutcome>, EffectError> {
    let exec = host.exec.clone();
    let id = IntegrationId::new(&a.key.code, &a.key.version);
    let target = client.name().to_string();
    // What the check decided, for the import that follows it.
    let decided: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    // The run being resumed sent this import and died before recording its end: the request
    // may still land. Wait for it (up to a grace period) rather than import twice.
    let pending = exec.resume().is_some_and(|r| r.index.pending(&eff));
    let check = || {
        let decided = decided.clone();
        let client = client.clone();
        let id = id.clone();
        let a = a.clone();
        let host = host.clone();
        let target = target.clone();
        async move {
            // The target's list, read once before the imports, did not hold it: import new
            // without a GET of its own (not when resuming: an earlier request may land late).
            let mut d = if listed_absent && !pending {
                TargetCheck {
                    decision: Decision::go("import new", format!("not on {}", client.name())),
                    previous_status: None,
                    current: None,
                }
            } else {
                target_check(&client, &a.key, &a.sha256, mode).await?
            };
            if pending {
                let until = std::time::Instant::now() + host.run.opts.resume_grace;
                while matches!(d.decision, Decision::Go { .. }) && std::time::Instant::now() < until
                {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    d = target_check(&client, &a.key, &a.sha256, mode).await?;
                }
            }
            if let (Decision::Go { .. }, false) = (&d.decision, host.exec.dry_run()) {
                save_for_rollback(&host, &target, &a.key, d.previous_status, d.current)
                    .await
                    .map_err(|e| {
                        Failure::Task(format!(
                            "cannot save {id} for rollback before replacing it: {e}"
                        ))
                    })?;
            }
            if let (Decision::Go { action, .. }, Ok(mut slot)) = (&d.decision, decided.lock()) {
                *slot = Some(action.clone());
            }
            Ok::<Decision, Failure>(d.decision)
        }
    };
    let intent = Intent {
        stage: eff.stage,
        kind: a.key.kind,
        code: a.key.code.clone(),
        version: a.key.version.clone(),
        target: target.clone(),
        sha256: eff.sha256.clone().unwrap_or_default(),
    };
    let r = exec
        .run_checked(eff.clone(), check, || async {
            exec.record().note_intent(&intent);
            // A new archive is one POST (retried on its own); a replace is the documented
            // sequence (stop the schedule, deactivate, PUT).
            let new = decided.lock().map(|d| d.as_deref() == Some("import new")).unwrap_or(false);
            let sent = if new {
                client.create_integration(a).await.map(|()| ImportOutcome {
                    action: crate::oic::ImportAction::Created,
                    previous_status: None,
                })
            } else {
                client.import_integration(a, mode).await
            };
            match sent {
                // Created meanwhile (a request of a stopped run landing late): fine when it
                // holds this very archive.
                Err(e) if e.is_status(409) => {
                    let d = target_check(client, &a.key, &a.sha256, mode).await?;
                    match d.decision {
                        Decision::Skip(why) if why.starts_with("unchanged by checksum") => {
                            tracing::warn!(artifact = %a.key.id(), "{why}: an earlier request landed");
                            Ok(ImportOutcome {
                                action: crate::oic::ImportAction::Created,
                                previous_status: None,
                            })
                        }
                        _ => Err(Failure::from(e)),
                    }
                }
                r => r.map_err(Failure::from),
            }
        })
        .await;
    if let Ok(Outcome::Done(_)) = &r {
        exec.touch(&eff);
    }
    r
}

/// What a check of the target found.
pub struct TargetCheck {
    pub decision: Decision,
    pub previous_status: Option<String>,
    /// The target's current archive (exported to compare checksums), when it exists.
    pub current: Option<Artifact>,
}

/// Reads the target to decide how an archive with `sha256` would be imported.
pub async fn target_check(
    client: &OicClient,
    key: &ArtifactKey,
    sha256: &str,
    mode: ImportMode,
) -> Result<TargetCheck, Failure> {
    let id = IntegrationId::new(&key.code, &key.version);
    let Some(cur) = client.get_integration(&id).await? else {
        return Ok(TargetCheck {
            decision: Decision::go("import new", format!("not on {}", client.name())),
            previous_status: None,
            current: None,
        });
    };
    let prev = Some(cur.status.clone()).filter(|s| !s.is_empty());
    if mode == ImportMode::SkipExisting {
        return Ok(TargetCheck {
            decision: Decision::Skip(format!(
                "present on {} ({}); overwrite is off",
                client.name(),
                cur.status
            )),
            previous_status: prev,
            current: None,
        });
    }
    let current = client.export_integration(&id).await?;
    let decision = if !sha256.is_empty() && current.sha256 == sha256 {
        Decision::Skip(format!("unchanged by checksum (sha256 {}…)", short(sha256)))
    } else {
        Decision::go(
            "replace",
            format!(
                "{} holds sha256 {}… ({}), the archive has {}…",
                client.name(),
                short(&current.sha256),
                cur.status,
                if sha256.is_empty() {
                    "?"
                } else {
                    short(sha256)
                }
            ),
        )
    };
    Ok(TargetCheck {
        decision,
        previous_status: prev,
        current: Some(current),
    })
}

/// Activates an integration as one `activate` effect. When this run did not just import it
/// (`fresh` false), its status is read first and an active one is skipped "already active".
pub async fn activate_integration(
    exec: &Executor,
    client: &OicClient,
    id: &IntegrationId,
    opts: &crate::oic::ActivateOptions,
    eff: Effect,
    fresh: bool,
) -> Result<Outcome<String>, EffectError> {
    let record = exec.record().clone();
    let dry = exec.dry_run();
    let (ekey, etarget) = (eff.key.clone(), eff.target.clone());
    let entry = |status: String| RollbackEntry {
        kind: ekey.kind,
        code: ekey.code.clone(),
        version: ekey.version.clone(),
        target: etarget.clone(),
        existed: true,
        previous_status: Some(status),
        sha256: None,
        location: None,
    };
    // "activate (was ACTIVATED on dev)" → action "activate", reason "was ACTIVATED on dev".
    let why = eff
        .action
        .strip_prefix("activate (")
        .and_then(|r| r.strip_suffix(')'))
        .map(str::to_string)
        .or_else(|| eff.reason.clone());
    let check = || async {
        if fresh {
            return Ok(Decision::Go {
                action: "activate".into(),
                reason: why.clone(),
            });
        }
        let st = client.activation_status(id).await.map_err(Failure::from)?;
        Ok::<_, Failure>(if st == "ACTIVATED" {
            Decision::Skip("already active".into())
        } else {
            // Its state before this run, for rollback (an import's record, made first, wins).
            if !dry {
                record.note_rollback(&entry(st.clone()));
            }
            Decision::go("activate", format!("{st} on {}", client.name()))
        })
    };
    exec.run_checked(eff, check, || async {
        client.activate(id, opts).await.map_err(Failure::from)
    })
    .await
}

// ------------------------------------------------------------------------------ rollback store

async fn save_for_rollback(
    host: &Arc<Host>,
    target: &str,
    key: &ArtifactKey,
    previous_status: Option<String>,
    current: Option<Artifact>,
) -> Result<(), String> {
    let record = host.exec.record().clone();
    let Some(cur) = current else {
        record.note_rollback(&RollbackEntry {
            kind: key.kind,
            code: key.code.clone(),
            version: key.version.clone(),
            target: target.to_string(),
            existed: false,
            previous_status: None,
            sha256: None,
            location: None,
        });
        return Ok(());
    };
    // In the rollback job beside the recipe's latest job, or in the run's folder.
    let run = host.run.clone();
    let a = cur.clone();
    let location = tokio::task::spawn_blocking(move || run.keep_for_rollback(&a))
    .await
    .map_err(|e| e.to_string())??;
    host.exec.record().note_rollback(&RollbackEntry {
        kind: key.kind,
        code: key.code.clone(),
        version: key.version.clone(),
        target: target.to_string(),
        existed: true,
        previous_status,
        sha256: Some(cur.sha256.clone()),
        location: Some(location),
    });
    Ok(())
}

// ------------------------------------------------------------------------------ resume: jobs

/// The job a `new_job(name)` call opens: in a resumed run, the `n`-th job the resumed run
/// opened in the same vault (same name and day, continued with `resume`), else `name` today.
/// Returns (name, date, resume).
pub fn job_for(
    host: &Arc<Host>,
    vault: &str,
    name: &str,
    resume: bool,
) -> (String, NaiveDate, bool) {
    let today = chrono::Utc::now().date_naive();
    let Some(r) = host.exec.resume() else {
        return (name.to_string(), today, resume);
    };
    let n = host.run.jobs_in(vault) + 1;
    match r.job(vault, n) {
        Some(j) => {
            let date = j.date.parse::<NaiveDate>().unwrap_or(today);
            (j.name.clone(), date, true)
        }
        None => (name.to_string(), today, resume),
    }
}

/// Records a job opened for writing in the ledger.
pub fn note_job(host: &Arc<Host>, vault: &str, name: &str, path: &str, date: NaiveDate) {
    host.exec.record().note_job(vault, name, path, date);
}

/// True when a vault error says the job is complete (a resumed run's job that was finished).
pub fn is_complete(e: &VaultError) -> bool {
    matches!(e, VaultError::Complete { .. })
}

/// The reason to skip storing `a` because the job already holds it with the same checksum.
pub fn already_stored(
    exec: &Executor,
    entries: &[crate::vault::ManifestEntry],
    a: &Artifact,
) -> Option<String> {
    entries
        .iter()
        .any(|e| e.key() == a.key && e.sha256 == a.sha256)
        .then(|| match exec.resume() {
            Some(r) => format!("done in run {} (already in the job)", r.run),
            None => "already in the job with the same checksum".to_string(),
        })
}

// ------------------------------------------------------------------------------ rollback

fn ledger_err(e: impl std::fmt::Display) -> Box<EvalAltResult> {
    errors::script_error("ledger", None, e.to_string(), Ctx::default())
}

fn open_ledger(host: &Host) -> Result<Ledger, Box<EvalAltResult>> {
    Ledger::open_in(&host.config.state_dir).map_err(ledger_err)
}

/// The rollback entries of a run and of the runs it resumed (the earliest record of an artifact
/// wins: it is what the target held before the first attempt).
pub fn rollback_entries(db: &Ledger, run: &str) -> Result<Vec<RollbackEntry>, Box<EvalAltResult>> {
    let mut chain = vec![];
    let mut cur = Some(run.to_string());
    while let Some(id) = cur {
        if chain.contains(&id) || chain.len() > 100 {
            break;
        }
        let row = db
            .run(&id)
            .map_err(ledger_err)?
            .ok_or_else(|| ledger_err(format!("no run `{id}` in the ledger (see `ferry runs`)")))?;
        cur = row.extra.resumes.clone();
        chain.push(id);
    }
    chain.reverse();
    let mut seen = std::collections::HashSet::new();
    let mut out = vec![];
    for id in chain {
        for e in db.rollback_entries(&id).map_err(ledger_err)? {
            if seen.insert((e.key(), e.target.clone())) {
                out.push(e);
            }
        }
    }
    Ok(out)
}

fn fetch_saved(config: &crate::config::Config, e: &RollbackEntry) -> Result<Artifact, Failure> {
    let loc = e
        .location
        .clone()
        .ok_or_else(|| Failure::Task("no archive was saved".into()))?;
    if let Some(p) = loc.strip_prefix("file:") {
        let path = PathBuf::from(p);
        let (size, sha) = crate::artifact::hash_file(&path)
            .map_err(|e| Failure::Task(format!("cannot read {}: {e}", path.display())))?;
        if e.sha256.as_deref().is_some_and(|s| s != sha) {
            return Err(Failure::Task(format!(
                "the saved archive {} changed: sha256 {sha}, expected {}",
                path.display(),
                e.sha256.clone().unwrap_or_default()
            )));
        }
        return Ok(Artifact::from_path(
            e.key(),
            path,
            size,
            sha,
            e.target.clone(),
        ));
    }
    let rest = loc
        .strip_prefix("vault:")
        .ok_or_else(|| Failure::Task(format!("unknown rollback location `{loc}`")))?;
    let (vname, job) = rest
        .split_once(':')
        .ok_or_else(|| Failure::Task(format!("bad rollback location `{loc}`")))?;
    let profile = config
        .vault(vname)
        .map_err(|e| Failure::Task(e.to_string()))?
        .clone();
    let vault = Vault::open(&profile)?;
    let reader = vault.open_job(job)?;
    let entry = reader
        .manifest()
        .entries
        .iter()
        .find(|m| m.key() == e.key() && e.sha256.as_deref().is_none_or(|s| s == m.sha256))
        .cloned()
        .ok_or_else(|| {
            Failure::Task(format!("{} is not in the rollback job {job}", e.key().id()))
        })?;
    Ok(reader.fetch(&entry)?)
}

/// Puts the targets of run `run` back as they were before it: re-imports the saved archives,
/// re-applies the saved activation states, deletes what the run added. Every step is an effect
/// (planned in a dry run). Returns one map per artifact.
pub fn rollback(host: &Arc<Host>, run: &str) -> Result<Array, Box<EvalAltResult>> {
    let db = open_ledger(host)?;
    let entries = rollback_entries(&db, run)?;
    drop(db);
    let exec = host.exec.clone();
    let mut out = Array::new();
    for e in entries.iter().rev() {
        if e.kind != ArtifactKind::Integration {
            out.push(Dynamic::from_map(result(
                e,
                "unsupported",
                Some("only integrations can be rolled back".into()),
            )));
            continue;
        }
        let inst = super::oic::instance(host, &e.target)?;
        let client = inst.client.clone();
        let id = IntegrationId::new(&e.code, &e.version);
        let key = e.key();
        if !e.existed {
            let eff = Effect::new(Stage::Delete, key.clone(), &e.target, "delete")
                .with_reason(format!("added by run {run}"));
            let check = || async {
                Ok::<_, Failure>(match client.get_integration(&id).await? {
                    None => Decision::Skip(format!("not on {}", client.name())),
                    Some(_) => Decision::go("delete", format!("added by run {run}")),
                })
            };
            let r = host.block_on(exec.run_checked(eff, check, || async {
                let cur = client.get_integration(&id).await?;
                if let Some(c) = cur {
                    if c.status == "ACTIVATED" || c.status == "ACTIVATION_INPROGRESS" {
                        client.deactivate(&id).await?;
                    }
                    client.delete_integration(&id).await?;
                }
                Ok::<(), Failure>(())
            }))?;
            out.push(Dynamic::from_map(outcome_map(e, r.map(|o| describe(&o)))));
            continue;
        }
        if e.location.is_none() {
            // Only its activation state changed: re-apply it.
            let m = reapply_state(host, &exec, &client, &id, e, false)?;
            out.push(Dynamic::from_map(m));
            continue;
        }
        // Re-import the saved archive (unless the target already holds it).
        let sha = e.sha256.clone().unwrap_or_default();
        let eff = Effect::new(Stage::Import, key.clone(), &e.target, "restore")
            .with_sha256(e.sha256.clone());
        let h2 = host.config.clone();
        let e2 = e.clone();
        let check = || {
            let client = client.clone();
            let key = key.clone();
            let sha = sha.clone();
            async move {
                let d = target_check(&client, &key, &sha, ImportMode::Overwrite).await?;
                Ok::<_, Failure>(match d.decision {
                    Decision::Go { action, reason } => Decision::Go {
                        action: format!("{action} (restore)"),
                        reason,
                    },
                    s => s,
                })
            }
        };
        let fetched: Mutex<Option<Artifact>> = Mutex::new(None);
        let r = host.block_on(exec.run_checked(eff.clone(), check, || {
            let h2 = h2.clone();
            let e2 = e2.clone();
            let client = client.clone();
            let fetched = &fetched;
            async move {
                let have = fetched.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let a = match have {
                    Some(a) => a,
                    None => {
                        let a = tokio::task::spawn_blocking(move || fetch_saved(&h2, &e2))
                            .await
                            .map_err(|e| Failure::Task(e.to_string()))??;
                        *fetched.lock().unwrap_or_else(|p| p.into_inner()) = Some(a.clone());
                        a
                    }
                };
                client
                    .import_integration(&a, ImportMode::Overwrite)
                    .await
                    .map_err(Failure::from)
            }
        }))?;
        let imported = matches!(r, Ok(Outcome::Done(_)) | Ok(Outcome::Planned));
        if let Ok(Outcome::Done(_)) = &r {
            exec.touch(&eff);
        }
        let m = outcome_map(e, r.as_ref().map(describe).map_err(|x| x.clone()));
        if r.is_err() {
            out.push(Dynamic::from_map(m));
            continue;
        }
        let mut m2 = reapply_state(host, &exec, &client, &id, e, imported)?;
        m2.insert(
            "action".into(),
            m.get("action").cloned().unwrap_or(Dynamic::UNIT),
        );
        out.push(Dynamic::from_map(m2));
    }
    Ok(out)
}

/// Re-applies the activation state an integration had before the run; `imported`: it was just
/// restored (a replace leaves it inactive).
fn reapply_state(
    host: &Arc<Host>,
    exec: &Executor,
    client: &OicClient,
    id: &IntegrationId,
    e: &RollbackEntry,
    imported: bool,
) -> Result<Map, Box<EvalAltResult>> {
    let key = e.key();
    let mut m = result(e, "-", None);
    {
        let want_active = e.previous_status.as_deref() == Some("ACTIVATED");
        let ar = if want_active {
            let eff = Effect::new(Stage::Activate, key.clone(), &e.target, "activate")
                .with_reason("it was ACTIVATED before the run");
            let opts = crate::oic::ActivateOptions {
                poll_interval: std::time::Duration::from_millis(500),
                ..Default::default()
            };
            host.block_on(activate_integration(exec, client, id, &opts, eff, imported))?
                .map(|o| describe(&o))
        } else {
            let eff = Effect::new(Stage::Deactivate, key.clone(), &e.target, "deactivate");
            let was = e.previous_status.clone().unwrap_or_default();
            let check = || async {
                if imported {
                    // A replace leaves it inactive.
                    return Ok(Decision::Skip("inactive after the restore".into()));
                }
                let st = client.activation_status(id).await?;
                Ok::<_, Failure>(if st == "ACTIVATED" {
                    Decision::go("deactivate", format!("it was {was} before the run"))
                } else {
                    Decision::Skip(format!("already {st}"))
                })
            };
            host.block_on(exec.run_checked(eff, check, || async {
                client.deactivate(id).await.map_err(Failure::from)
            }))?
            .map(|o| describe(&o))
        };
        match ar {
            Ok(s) => {
                m.insert("activation".into(), s.into());
            }
            Err(err) => {
                m.insert("activation".into(), "failed".into());
                m.insert("error".into(), err.error.message.clone().into());
            }
        }
    }
    Ok(m)
}

fn describe<T>(o: &Outcome<T>) -> String {
    match o {
        Outcome::Done(_) => "done".into(),
        Outcome::Planned => "planned".into(),
        Outcome::Skipped(why) => format!("skipped: {why}"),
    }
}

fn result(e: &RollbackEntry, action: &str, error: Option<String>) -> Map {
    let mut m = Map::new();
    m.insert("id".into(), e.key().id().into());
    m.insert("kind".into(), e.kind.as_str().into());
    m.insert("target".into(), e.target.clone().into());
    m.insert("existed".into(), e.existed.into());
    m.insert(
        "previous_status".into(),
        e.previous_status.clone().or_unit(),
    );
    m.insert("action".into(), action.into());
    m.insert("error".into(), error.or_unit());
    m
}

fn outcome_map(e: &RollbackEntry, r: Result<String, EffectError>) -> Map {
    match r {
        Ok(s) => result(e, &s, None),
        Err(err) => result(e, "failed", Some(err.error.message)),
    }
}

// ------------------------------------------------------------------------------ script module

fn to_dyn<T: serde::Serialize>(v: &T) -> Result<Dynamic, Box<EvalAltResult>> {
    rhai::serde::to_dynamic(v)
}

fn run_map(db: &Ledger, id: &str) -> Result<Dynamic, Box<EvalAltResult>> {
    let Some(row) = db.run(id).map_err(ledger_err)? else {
        return Ok(Dynamic::UNIT);
    };
    let steps = db.steps(id).map_err(ledger_err)?;
    let mut m = to_dyn(&row)?.try_cast::<Map>().unwrap_or_default();
    m.insert("steps".into(), to_dyn(&steps)?);
    Ok(Dynamic::from_map(m))
}

fn failed_of(db: &Ledger, id: &str) -> Result<Array, Box<EvalAltResult>> {
    let steps = db.steps(id).map_err(ledger_err)?;
    // The artifacts whose last step of a stage failed.
    let mut last: BTreeMap<(String, String, String), &crate::ledger::Step> = BTreeMap::new();
    for s in &steps {
        last.insert(
            (s.key().id(), s.stage.as_str().to_string(), s.target.clone()),
            s,
        );
    }
    let mut out = Array::new();
    for s in last.values().filter(|s| s.status == StepStatus::Failed) {
        let mut m = Map::new();
        m.insert("id".into(), s.key().id().into());
        m.insert("kind".into(), s.kind.as_str().into());
        m.insert("code".into(), s.code.clone().into());
        m.insert("version".into(), s.version.clone().into());
        m.insert("stage".into(), s.stage.as_str().into());
        m.insert("target".into(), s.target.clone().into());
        m.insert(
            "error".into(),
            s.error
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_default()
                .into(),
        );
        m.insert(
            "status".into(),
            s.error
                .as_ref()
                .and_then(|e| e.status)
                .map(|c| Dynamic::from(c as i64))
                .unwrap_or(Dynamic::UNIT),
        );
        out.push(Dynamic::from_map(m));
    }
    Ok(out)
}

/// Registers the `ledger` module.
pub fn register(e: &mut Engine, host: Arc<Host>) {
    let h = host.clone();
    static_module(
        e,
        "ledger",
        "The run ledger: every run and step, the central error log; and rollback of a run.",
        move |m| {
            let h1 = h.clone();
            in_module("runs", &["Array"], "The 50 most recent runs, newest first, as maps: `id`, `recipe`, `run_by`, `started`, `ended`, `outcome`, `kind`, `steps`, `failed_steps`, ...\n\n# Example\n```rhai\nfor r in ledger::runs() { print(`${r.id} ${r.outcome}`); }\n```")
                .set_into_module(m, move || -> Result<Array, Box<EvalAltResult>> {
                    let db = open_ledger(&h1)?;
                    db.runs(50).map_err(ledger_err)?.iter().map(to_dyn).collect()
                });
            let h2 = h.clone();
            in_module("run", &["id: string", "Map"], "One run with its `steps` (each: `stage`, `kind`, `code`, `version`, `target`, `action`, `status`, `attempts`, `error`, `sha256`...), or `()`.\n\n# Example\n```rhai\nlet r = ledger::run(\"20261126-142501-a3f0\");\n```")
                .set_into_module(m, move |id: ImmutableString| -> Result<Dynamic, Box<EvalAltResult>> {
                    run_map(&open_ledger(&h2)?, &id)
                });
            let h3 = h.clone();
            in_module("last_run", &["Dynamic"], "The latest earlier real run (not a dry run) of this recipe, with its steps, or `()`.\n\n# Example\n```rhai\nlet last = ledger::last_run();\nif last != () { print(last.outcome); }\n```")
                .set_into_module(m, move || -> Result<Dynamic, Box<EvalAltResult>> {
                    let db = open_ledger(&h3)?;
                    let info = h3.exec.record().info();
                    match db.last_run(Some(&info.recipe), Some(&info.id)).map_err(ledger_err)? {
                        Some(r) => run_map(&db, &r.info.id),
                        None => Ok(Dynamic::UNIT),
                    }
                });
            let h4 = h.clone();
            in_module("failed", &["run: string", "Array"], "What failed in a run and did not succeed later in it: one map per artifact and stage (`id`, `kind`, `code`, `version`, `stage`, `target`, `error`, `status`).\n\n# Example\n```rhai\n// Retry what failed in the last run.\nlet last = ledger::last_run();\nlet codes = ledger::failed(last.id).map(|f| f.code);\nlet again = dev.integrations().filter(|i| codes.contains(i.code));\n```")
                .set_into_module(m, move |run: ImmutableString| -> Result<Array, Box<EvalAltResult>> {
                    failed_of(&open_ledger(&h4)?, &run)
                });
            let h5 = h.clone();
            in_module("errors", &["filter: Map", "Array"], "Failed steps of every run, newest first. Filter keys: `run`, `since` (`\"2026-11-01\"` or RFC 3339), `stage` (`\"import\"`...), `limit`.\n\n# Example\n```rhai\nfor e in ledger::errors(#{ stage: \"import\", since: \"2026-11-01\" }) { print(e.error.message); }\n```")
                .set_into_module(m, move |f: Map| -> Result<Array, Box<EvalAltResult>> {
                    let filter = filter_from_map(&f)?;
                    let db = open_ledger(&h5)?;
                    db.errors(&filter).map_err(ledger_err)?.iter().map(to_dyn).collect()
                });
            let h6 = h.clone();
            in_module("rollback", &["run: string", "Array"], "Puts the targets of a run back as they were before it: re-imports the archives it replaced (saved in the job's rollback job),\nre-applies their activation states, and deletes what it added. Planned in a dry run. One result map per artifact.\n\n# Example\n```rhai\nlet results = ledger::rollback(\"20261126-142501-a3f0\");\n```")
                .set_into_module(m, move |run: ImmutableString| rollback(&h6, &run));
        },
    );
}

/// Parses a `since` value: a date (`2026-11-01`) or an RFC 3339 time.
pub fn parse_since(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&chrono::Utc));
    }
    s.parse::<NaiveDate>()
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

fn filter_from_map(f: &Map) -> Result<ErrorFilter, Box<EvalAltResult>> {
    let mut out = ErrorFilter::default();
    for (k, v) in f {
        match k.as_str() {
            "run" => out.run = Some(v.to_string()),
            "since" => {
                out.since = Some(parse_since(&v.to_string()).ok_or_else(|| {
                    errors::usage(format!(
                        "`since` must be a date or RFC 3339 time, found {v}"
                    ))
                })?)
            }
            "stage" => {
                out.stage = Some(
                    stage_from_str(&v.to_string())
                        .ok_or_else(|| errors::usage(format!("unknown stage `{v}`")))?,
                )
            }
            "limit" => out.limit = v.as_int().ok().map(|n| n.max(0) as u64),
            other => {
                return Err(errors::usage(format!(
                    "unknown filter `{other}` (known: run, since, stage, limit)"
                )));
            }
        }
    }
    Ok(out)
}
