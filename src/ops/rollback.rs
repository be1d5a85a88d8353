//! `rollback`: puts the targets of a run back as they were before it, for every kind an import
//! can replace: re-imports the archives it replaced (saved in the run's rollback job or folder),
//! re-applies the activation states integrations had, and deletes what it added. Every step is
//! an effect (planned in a dry run).

use std::collections::HashSet;
use std::path::PathBuf;

use serde::Serialize;

use super::OpsError;
use super::activate::{activate_one, deactivate_one};
use super::ctx::Ctx;
use super::import::{Incoming, apply, content_digest, target_check};
use super::kinds::{KindOps, ops_for};
use crate::artifact::{Artifact, ArtifactKind};
use crate::config::Config;
use crate::effect::{Action, Decision, Effect, EffectError, Failure, Outcome, SkipReason};
use crate::ledger::{Ledger, RollbackEntry, Stage, StepStatus};
use crate::oic::{ImportMode, OicClient};
use crate::vault::Vault;

/// What rollback did to one artifact.
#[derive(Clone, Debug, Serialize)]
pub struct RollbackResult {
    pub id: String,
    pub kind: String,
    /// `done`, `planned`, `skipped: <why>`, `failed`, `unsupported`, `-` (nothing but its state).
    pub action: String,
    pub error: Option<String>,
    pub target: String,
    /// False when the run had added it (rollback deletes it).
    pub existed: bool,
    pub previous_status: Option<String>,
    /// What was done to its activation state (integrations).
    pub activation: Option<String>,
}

impl RollbackResult {
    fn of(e: &RollbackEntry, action: &str, error: Option<String>) -> RollbackResult {
        RollbackResult {
            id: e.key().id(),
            kind: e.kind.as_str().into(),
            action: action.into(),
            error,
            target: e.target.clone(),
            existed: e.existed,
            previous_status: e.previous_status.clone(),
            activation: None,
        }
    }

    fn outcome<T>(e: &RollbackEntry, r: &Result<Outcome<T>, EffectError>) -> RollbackResult {
        match r {
            Ok(o) => RollbackResult::of(e, &describe(o), None),
            Err(err) => RollbackResult::of(e, "failed", Some(err.error.message.clone())),
        }
    }
}

fn describe<T>(o: &Outcome<T>) -> String {
    match o {
        Outcome::Done(_) => "done".into(),
        Outcome::Planned => "planned".into(),
        Outcome::Skipped(why) => format!("skipped: {why}"),
    }
}

fn ledger_err(e: impl std::fmt::Display) -> OpsError {
    OpsError::Ledger(e.to_string())
}

/// The rollback entries of a run and of the runs it resumed (the earliest record of an artifact
/// wins: it is what the target held before the first attempt).
pub fn entries(db: &Ledger, run: &str) -> Result<Vec<RollbackEntry>, OpsError> {
    let mut seen = HashSet::new();
    let mut out = vec![];
    for row in chain(db, run)? {
        for e in db.rollback_entries(&row.info.id).map_err(ledger_err)? {
            if seen.insert((e.key(), e.target.clone())) {
                out.push(e);
            }
        }
    }
    Ok(out)
}

/// Options of [`rollback`].
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RollbackOptions {
    /// Undo the run's changes even where a later run changed the same artifact since.
    pub force: bool,
}

/// A change of the run that a later run changed again: rolling it back would undo that run.
#[derive(Clone, Debug)]
struct Conflict {
    id: String,
    target: String,
    later_run: String,
}

/// The runs of a resume chain, oldest first (`run` last).
fn chain(db: &Ledger, run: &str) -> Result<Vec<crate::ledger::RunRow>, OpsError> {
    let mut out: Vec<crate::ledger::RunRow> = vec![];
    let mut cur = Some(run.to_string());
    while let Some(id) = cur {
        if out.iter().any(|r| r.info.id == id) || out.len() > 100 {
            break;
        }
        let row = db
            .run(&id)
            .map_err(ledger_err)?
            .ok_or_else(|| ledger_err(format!("no run `{id}` in the ledger (see `ferry runs`)")))?;
        cur = row.extra.resumes.clone();
        out.push(row);
    }
    out.reverse();
    Ok(out)
}

/// The changes of the run that later runs changed again and that still stand. An archive the
/// run imported is checked on the target by content digest: when the target holds what the run
/// left (or what was there before it), the later change was undone and rolling back is safe.
/// `left`: the content digests the run's imports brought (for entries recorded without them,
/// the sha256 of its last import done, which only identical bytes match).
async fn conflicts(ctx: &dyn Ctx, db_entries: &[Check]) -> Result<Vec<Conflict>, OpsError> {
    let mut out = vec![];
    for (e, later, left) in db_entries {
        let Some(latest) = later.first() else {
            continue;
        };
        let conflict = match (left.is_empty(), ops_for(e.kind)) {
            (false, Some(kops)) => {
                let client = ctx.client(&e.target)?;
                let key = e.key();
                let on_target = match kops.state(&client, &key).await {
                    Ok(None) => None,
                    Ok(Some(_)) => {
                        let cur = kops
                            .export_current(&client, &key)
                            .await
                            .map_err(|x| OpsError::oic(&e.target, x))?;
                        // Unreadable as a zip: only identical bytes match (a conflict is
                        // reported rather than a later change undone).
                        let digest = content_digest(&cur).await.ok();
                        Some((cur.sha256.clone(), digest))
                    }
                    Err(x) => return Err(OpsError::oic(&e.target, x)),
                };
                match on_target {
                    // Gone: nothing of the later run left to undo.
                    None => false,
                    Some((sha, digest)) => {
                        let known = |x: &String| *x == sha || Some(x) == digest.as_ref();
                        !left.iter().any(known)
                            && !e.sha256.iter().any(known)
                            && !e.content_sha256.iter().any(known)
                    }
                }
            }
            // Only its activation state was changed by the run: any later change stands.
            _ => true,
        };
        if conflict {
            out.push(Conflict {
                id: e.key().id(),
                target: e.target.clone(),
                later_run: latest.clone(),
            });
        }
    }
    Ok(out)
}

/// An entry of the run, the later runs that changed the same artifact (newest first), and the
/// content digests the run's imports left on the target (see [`conflicts`]).
type Check = (RollbackEntry, Vec<String>, Vec<String>);

/// An artifact and its target.
type Place = (crate::artifact::ArtifactKey, String);

/// Puts the targets of run `run` back as they were before it. One result per artifact. Refuses
/// (before any change) when a later run changed one of the same artifacts since, naming it,
/// unless `opts.force`.
pub async fn rollback(
    ctx: &dyn Ctx,
    run: &str,
    opts: &RollbackOptions,
) -> Result<Vec<RollbackResult>, OpsError> {
    let (list, checks) = read_run(ctx, run)?;
    if !opts.force {
        let found = conflicts(ctx, &checks).await?;
        if !found.is_empty() {
            return Err(OpsError::Usage(refusal(run, &found)));
        }
    }
    let mut out = vec![];
    for e in undo_order(&list) {
        out.push(undo_one(ctx, e, run).await?);
    }
    Ok(out)
}

/// The rollback entries of the run's chain, each with its [`Check`].
fn read_run(ctx: &dyn Ctx, run: &str) -> Result<(Vec<RollbackEntry>, Vec<Check>), OpsError> {
    let db = Ledger::open_in(&ctx.config().state_dir).map_err(ledger_err)?;
    let runs = chain(&db, run)?;
    let ids: Vec<String> = runs.iter().map(|r| r.info.id.clone()).collect();
    let first = runs.first().map(|r| r.info.started).unwrap_or_default();
    let list = entries(&db, run)?;
    let imported = imported_sha(&db, &ids)?;
    let imported_content = imported_content(&db, &ids)?;
    let mut checks = vec![];
    for e in &list {
        let later: Vec<String> = db
            .later_changes(&e.key(), &e.target, &first)
            .map_err(ledger_err)?
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| !ids.contains(id))
            .collect();
        let k = (e.key(), e.target.clone());
        let left: Vec<String> = imported_content
            .get(&k)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .chain(imported.get(&k).cloned())
            .collect();
        checks.push((e.clone(), later, left));
    }
    Ok((list, checks))
}

/// What each artifact holds after the runs `ids`: the sha256 of its last import done.
fn imported_sha(
    db: &Ledger,
    ids: &[String],
) -> Result<std::collections::HashMap<Place, String>, OpsError> {
    let mut imported = std::collections::HashMap::new();
    for id in ids {
        for s in db.steps(id).map_err(ledger_err)? {
            if s.stage == Stage::Import
                && s.status == StepStatus::Ok
                && let Some(sha) = &s.sha256
            {
                imported.insert((s.key(), s.target.clone()), sha.clone());
            }
        }
    }
    Ok(imported)
}

/// What the imports of the runs `ids` brought, by content digest (every record of the chain: a
/// resumed run may have imported again).
fn imported_content(
    db: &Ledger,
    ids: &[String],
) -> Result<std::collections::HashMap<Place, Vec<String>>, OpsError> {
    let mut out: std::collections::HashMap<Place, Vec<String>> = Default::default();
    for id in ids {
        for e in db.rollback_entries(id).map_err(ledger_err)? {
            if let Some(c) = e.imported_content_sha256.clone() {
                out.entry((e.key(), e.target.clone())).or_default().push(c);
            }
        }
    }
    Ok(out)
}

/// Why the rollback of `run` is refused: each conflict, and the later runs to roll back first.
fn refusal(run: &str, found: &[Conflict]) -> String {
    let lines: Vec<String> = found
        .iter()
        .map(|c| {
            format!(
                "  {} on {}: changed by the later run {}",
                c.id, c.target, c.later_run
            )
        })
        .collect();
    let mut runs: Vec<&str> = found.iter().map(|c| c.later_run.as_str()).collect();
    runs.sort();
    runs.dedup();
    format!(
        "rollback of run {run} refused: it would undo what a later run changed since:\n{}\nRoll back {} first, or use --force to undo them anyway.",
        lines.join("\n"),
        runs.join(", ")
    )
}

/// The order of the undo: the reverse of the run's, schedules last (an integration's restore, a
/// replace, stops its schedule).
fn undo_order(list: &[RollbackEntry]) -> Vec<&RollbackEntry> {
    let (schedules, others): (Vec<&RollbackEntry>, Vec<&RollbackEntry>) = list
        .iter()
        .rev()
        .partition(|e| e.kind == ArtifactKind::Schedule);
    others.into_iter().chain(schedules).collect()
}

/// Undoes the run's change of one artifact: a schedule re-applied, an addition deleted, an
/// activation state re-applied, or a replaced archive restored.
async fn undo_one(ctx: &dyn Ctx, e: &RollbackEntry, run: &str) -> Result<RollbackResult, OpsError> {
    if e.kind == ArtifactKind::Schedule {
        let client = ctx.client(&e.target)?;
        let (action, error) = super::schedules::rollback_one(ctx, &client, e).await;
        return Ok(RollbackResult::of(e, &action, error));
    }
    let Some(kops) = ops_for(e.kind) else {
        let why = format!("{} cannot be rolled back", e.kind);
        return Ok(RollbackResult::of(e, "unsupported", Some(why)));
    };
    let client = ctx.client(&e.target)?;
    let r = if !e.existed {
        remove(ctx, kops, &client, e, run).await
    } else if e.location.is_none() {
        // Only its activation state changed: re-apply it.
        reapply_state(ctx, &client, RollbackResult::of(e, "-", None), e, false).await
    } else {
        restore(ctx, kops, &client, e).await
    };
    if ctx.exec().cancel_token().is_cancelled() {
        return Err(OpsError::Cancelled);
    }
    Ok(r)
}

/// Deletes what the run added.
async fn remove(
    ctx: &dyn Ctx,
    kops: &dyn KindOps,
    client: &OicClient,
    e: &RollbackEntry,
    run: &str,
) -> RollbackResult {
    let key = e.key();
    let eff = Effect::new(
        Stage::Delete,
        key.clone(),
        &e.target,
        Action::Delete.to_string(),
    )
    .with_reason(format!("added by run {run}"));
    let check = || async {
        Ok::<_, Failure>(match kops.state(client, &key).await? {
            None => Decision::Skip(SkipReason::NotOn {
                target: client.name().to_string(),
            }),
            Some(_) => Decision::go(Action::Delete, format!("added by run {run}")),
        })
    };
    let r = ctx
        .exec()
        .run_checked(eff, check, || async {
            kops.delete(client, &key).await.map_err(Failure::from)
        })
        .await;
    RollbackResult::outcome(e, &r)
}

/// Re-imports the saved archive (unless the target already holds it), then re-applies the
/// activation state of an integration.
async fn restore(
    ctx: &dyn Ctx,
    kops: &dyn KindOps,
    client: &OicClient,
    e: &RollbackEntry,
) -> RollbackResult {
    let exec = ctx.exec();
    let key = e.key();
    let sha = e.sha256.clone().unwrap_or_default();
    let incoming = Incoming::Recorded {
        sha256: &sha,
        content: e.content_sha256.as_deref(),
    };
    let mut eff =
        Effect::new(Stage::Import, key.clone(), &e.target, "restore").with_sha256(e.sha256.clone());
    let r: Result<Outcome<()>, EffectError> = async {
        if let Some(why) = exec.done_before(&eff) {
            exec.skip(eff, why.clone());
            return Ok(Outcome::Skipped(why));
        }
        let d = exec
            .check(&eff, || {
                target_check(kops, client, &key, incoming, ImportMode::Overwrite)
            })
            .await?;
        let (new, reason) = match d.decision {
            Decision::Skip(why) => {
                exec.skip(eff, why.clone());
                return Ok(Outcome::Skipped(why));
            }
            Decision::Go { action, reason } => (action == Action::ImportNew, reason),
        };
        eff.action = Action::Restore { new }.to_string();
        eff.reason = reason;
        if exec.dry_run() {
            exec.note(&eff, StepStatus::Planned, None);
            return Ok(Outcome::Planned);
        }
        let (config, entry) = (ctx.config().clone(), e.clone());
        let fetched = tokio::task::spawn_blocking(move || fetch_saved(&config, &entry))
            .await
            .map_err(|x| Failure::Task(x.to_string()))
            .and_then(|r| r);
        let a = match fetched {
            Ok(a) => a,
            Err(f) => {
                let msg = f.to_string();
                return Err(super::import::failed_effect(exec, &eff, "vault", msg));
            }
        };
        apply(ctx, kops, client, &a, eff, new, d.state.as_ref()).await
    }
    .await;
    let imported = matches!(r, Ok(Outcome::Done(_)) | Ok(Outcome::Planned));
    let res = RollbackResult::outcome(e, &r);
    if r.is_err() || e.kind != ArtifactKind::Integration {
        return res;
    }
    reapply_state(ctx, client, res, e, imported).await
}

/// Re-applies the activation state an integration had before the run; `imported`: it was just
/// restored (a replace leaves it inactive).
async fn reapply_state(
    ctx: &dyn Ctx,
    client: &OicClient,
    mut res: RollbackResult,
    e: &RollbackEntry,
    imported: bool,
) -> RollbackResult {
    if e.kind != ArtifactKind::Integration {
        return res;
    }
    let key = e.key();
    let exec = ctx.exec();
    let ar = if e.previous_status.as_deref() == Some("ACTIVATED") {
        let eff = Effect::new(
            Stage::Activate,
            key,
            &e.target,
            Action::Activate.to_string(),
        )
        .with_reason("it was ACTIVATED before the run");
        let opts = crate::oic::ActivateOptions {
            poll_interval: std::time::Duration::from_millis(500),
            ..Default::default()
        };
        activate_one(exec, client, &opts, eff, imported)
            .await
            .map(|o| describe(&o))
    } else {
        let eff = Effect::new(
            Stage::Deactivate,
            key,
            &e.target,
            Action::Deactivate.to_string(),
        );
        let was = e.previous_status.clone().unwrap_or_default();
        deactivate_one(exec, client, eff, &was, imported)
            .await
            .map(|o| describe(&o))
    };
    match ar {
        Ok(s) => res.activation = Some(s),
        Err(err) => {
            res.activation = Some("failed".into());
            res.error = Some(err.error.message);
        }
    }
    res
}

/// True when the manifest entry `m` holds the archive saved for `e`: the same bytes, or the
/// same content (a vault job shares an earlier job's bytes of the same content, so its entry
/// carries that export's sha256).
fn saved_as(e: &RollbackEntry, m: &crate::vault::ManifestEntry) -> bool {
    match (&e.sha256, &e.content_sha256, &m.content_sha256) {
        (None, _, _) => true,
        (Some(s), _, _) if *s == m.sha256 => true,
        (_, Some(c), Some(mc)) => c == mc,
        _ => false,
    }
}

/// Reads back an archive saved for rollback (`file:<path>` or `vault:<vault>:<job>`), checked
/// against the sha256 recorded with it.
pub fn fetch_saved(config: &Config, e: &RollbackEntry) -> Result<Artifact, Failure> {
    let loc = e
        .location
        .clone()
        .ok_or_else(|| Failure::Task("no archive was saved".into()))?;
    if let Some(p) = loc.strip_prefix("file:") {
        let path = PathBuf::from(p);
        let (size, sha) = crate::artifact::hash_file(&path)
            .map_err(|x| Failure::Task(format!("cannot read {}: {x}", path.display())))?;
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
        .map_err(|x| Failure::Task(x.to_string()))?
        .clone();
    let reader = Vault::open(&profile)?.open_job(job)?;
    let entry = reader
        .manifest()
        .entries
        .iter()
        .find(|m| m.key() == e.key() && saved_as(e, m))
        .cloned()
        .ok_or_else(|| {
            Failure::Task(format!("{} is not in the rollback job {job}", e.key().id()))
        })?;
    Ok(reader.fetch(&entry)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: ArtifactKind, code: &str) -> RollbackEntry {
        RollbackEntry {
            kind,
            code: code.into(),
            version: "01.00.0000".into(),
            target: "prod".into(),
            existed: true,
            previous_status: None,
            sha256: None,
            content_sha256: None,
            imported_content_sha256: None,
            location: None,
        }
    }

    #[test]
    fn undo_runs_backwards_with_schedules_last() {
        let list = [
            entry(ArtifactKind::Integration, "A"),
            entry(ArtifactKind::Schedule, "A"),
            entry(ArtifactKind::Lookup, "L"),
            entry(ArtifactKind::Integration, "B"),
        ];
        let order: Vec<(ArtifactKind, &str)> = undo_order(&list)
            .iter()
            .map(|e| (e.kind, e.code.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                (ArtifactKind::Integration, "B"),
                (ArtifactKind::Lookup, "L"),
                (ArtifactKind::Integration, "A"),
                (ArtifactKind::Schedule, "A"),
            ]
        );
    }

    #[test]
    fn a_refusal_names_each_conflict_and_each_later_run_once() {
        let c = |id: &str, later: &str| Conflict {
            id: id.into(),
            target: "prod".into(),
            later_run: later.into(),
        };
        let msg = refusal("r1", &[c("A|01", "r3"), c("B|01", "r2"), c("C|01", "r3")]);
        assert!(msg.starts_with("rollback of run r1 refused"), "{msg}");
        assert!(
            msg.contains("  B|01 on prod: changed by the later run r2\n"),
            "{msg}"
        );
        assert!(
            msg.ends_with("Roll back r2, r3 first, or use --force to undo them anyway."),
            "{msg}"
        );
    }
}
