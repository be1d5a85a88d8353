//! Schedules migrate: the schedule of a scheduled integration (its definition and whether it was
//! started) travels beside the integration's archive, and is put back on the target after the
//! activations.
//!
//! * Export: for each exported integration whose list item says `scheduleDefinedFlag`, its
//!   schedule is read (`GET …/schedule`) and saved as an artifact of kind `schedule`: the JSON
//!   file `Schedules/CODE_VERSION.json` of a backup job ([`SavedSchedule`]), listed and
//!   checksummed in the manifest like every artifact.
//! * Import (after the activations; option `schedules`, [`SchedulesMode`]): `keep` (default)
//!   creates or replaces the target's schedule and brings it to the state it had on the source
//!   (started where it was started, paused where paused, stopped where stopped); `create` only
//!   creates or replaces the definition; `skip` leaves schedules alone. Each change is an effect:
//!   the definition (stage `import`, `put schedule`: create, or replace the definition) and the
//!   state (stage
//!   `activate`: `start schedule` / `pause schedule`; stage `deactivate`: `stop schedule`), with
//!   a check of the target first, so `ferry plan` shows them and a resumed run skips them.
//! * Rollback: what a change is about to lose (the target's schedule and state, or that it had
//!   none) is saved first (the earliest record wins, so a schedule an integration replace stopped
//!   is recorded as it was before that replace); [`rollback_one`] puts it back after the
//!   integrations are restored.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::OpsError;
use super::activate::ActivateWhen;
use super::ctx::{Ctx, fan_out, fan_out_adaptive};
use super::import::{ImportResult, ItemAction, failed_effect, verify_blocking};
use crate::artifact::{Artifact, ArtifactKey, ArtifactKind};
use crate::effect::{Action, Decision, Effect, EffectError, Failure, Outcome, SkipReason};
use crate::ledger::{RollbackEntry, Stage, StepStatus};
use crate::oic::{
    Integration, IntegrationId, Lane, OicClient, OicError, Schedule, ScheduleDefinition,
    ScheduleState,
};

/// What an import does with the schedules that travel with the integrations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedulesMode {
    /// Create or replace the schedule and give it the state it had on the source.
    #[default]
    Keep,
    /// Create or replace the definition only; the target's schedule state is not changed (a
    /// new schedule stays stopped).
    Create,
    /// Leave the target's schedules alone.
    Skip,
}

/// The file saved for one schedule (`Schedules/CODE_VERSION.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedSchedule {
    /// Format version (1).
    pub format: u32,
    /// `CODE|VERSION` of the integration.
    pub integration: String,
    /// The definition, as OIC answered it.
    pub definition: ScheduleDefinition,
    /// Its state on the source (`ACTIVE`, `CANCELLED`, `HOLD`); absent when OIC named none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ScheduleState>,
}

impl SavedSchedule {
    fn of(id: &IntegrationId, s: &Schedule) -> SavedSchedule {
        SavedSchedule {
            format: 1,
            integration: id.to_string(),
            definition: s.definition.clone(),
            state: s.state.clone(),
        }
    }

    /// Writes it to a temporary file as an artifact of kind `schedule` (`source_status` = its
    /// state).
    pub fn to_artifact(&self, source: &str) -> Result<Artifact, Failure> {
        use sha2::Digest;
        use std::io::Write;
        let id = IntegrationId::parse(&self.integration).map_err(Failure::from)?;
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Failure::Task(e.to_string()))?;
        let mut f = tempfile::Builder::new()
            .prefix("ferry-schedule-")
            .suffix(".json")
            .tempfile()
            .map_err(|e| Failure::Task(format!("cannot write a temporary file: {e}")))?;
        f.write_all(&bytes)
            .and_then(|_| f.flush())
            .map_err(|e| Failure::Task(format!("cannot write a temporary file: {e}")))?;
        let sha = hex::encode(sha2::Sha256::digest(&bytes));
        let mut a = Artifact::from_temp(
            ArtifactKey::new(ArtifactKind::Schedule, &id.code, &id.version),
            f.into_temp_path(),
            bytes.len() as u64,
            sha,
            source,
        );
        a.source_status = self.state.as_ref().map(|s| s.to_string());
        Ok(a)
    }

    /// [`SavedSchedule::to_artifact`] on the blocking pool: creating a file can take a
    /// millisecond or more, and the async thread also sends and answers the requests in flight.
    pub async fn into_artifact(self, source: &str) -> Result<Artifact, Failure> {
        let source = source.to_string();
        tokio::task::spawn_blocking(move || self.to_artifact(&source))
            .await
            .map_err(|e| Failure::Task(e.to_string()))?
    }

    /// Reads a saved schedule (bounded: a schedule file is a few hundred bytes).
    pub fn read(a: &Artifact) -> Result<SavedSchedule, String> {
        if a.size > 1024 * 1024 {
            return Err(format!(
                "{}: {} bytes is not a schedule",
                a.key.id(),
                a.size
            ));
        }
        let bytes = std::fs::read(a.path()).map_err(|e| format!("{}: {e}", a.key.id()))?;
        let s: SavedSchedule = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{} is not a saved schedule: {e}", a.key.id()))?;
        if s.format != 1 {
            return Err(format!("{}: unknown format {}", a.key.id(), s.format));
        }
        if !s.definition.is_valid() {
            return Err(format!(
                "{}: the schedule names neither a frequency nor an iCal expression",
                a.key.id()
            ));
        }
        Ok(s)
    }
}

fn iid(key: &ArtifactKey) -> IntegrationId {
    IntegrationId::new(&key.code, &key.version)
}

fn skey(key: &ArtifactKey) -> ArtifactKey {
    ArtifactKey::new(ArtifactKind::Schedule, &key.code, &key.version)
}

/// The target's schedule; `None` when it has none or the integration is not there (yet: a dry
/// run plans its import).
async fn current(client: &OicClient, id: &IntegrationId) -> Result<Option<Schedule>, OicError> {
    match client.get_schedule(id).await {
        Err(e) if e.is_status(404) => Ok(None),
        r => r,
    }
}

// ------------------------------------------------------------------------------------ export

/// Exports the schedules of the exported integrations that have one (`scheduleDefinedFlag`), as
/// artifacts of kind `schedule`; each read is an export effect (also in a dry run). Failures are
/// recorded and returned.
pub async fn export(
    ctx: &dyn Ctx,
    client: &OicClient,
    integrations: Vec<Integration>,
    concurrency: usize,
) -> Vec<Result<Artifact, EffectError>> {
    let with: Vec<Integration> = integrations
        .into_iter()
        .filter(|i| i.schedule_defined)
        .collect();
    // Artifacts of their own: the run's expected total grows by them.
    if !with.is_empty() {
        ctx.exec().record().expect(Stage::Export, with.len() as u64);
    }
    let res = fan_out(
        ctx.bar(with.len(), "schedules"),
        concurrency,
        with,
        |i| async move { export_effect(ctx, client, &i, None).await },
    )
    .await;
    res.into_iter().filter_map(Result::transpose).collect()
}

/// The answer of a schedule read made ahead of the effect that records it (`job.backup` reads
/// the schedules while it decides what to carry over): the effect's first attempt.
pub(super) type ReadAhead = Result<Option<Schedule>, OicError>;

/// Answers read ahead, by integration (an export takes its own, [`super::export::export_with`]).
pub(super) type ReadsAhead = std::collections::HashMap<IntegrationId, ReadAhead>;

/// The export effect of one integration's schedule (its caller has counted it in the run's
/// expected total): `Ok(None)` when it has none. `ahead`: the answer of a read already made,
/// taken as the first attempt (a transient failure is read again, as any attempt's).
pub(super) async fn export_effect(
    ctx: &dyn Ctx,
    client: &OicClient,
    i: &Integration,
    ahead: Option<ReadAhead>,
) -> Result<Option<Artifact>, EffectError> {
    let id = IntegrationId::new(&i.code, &i.version);
    let eff = Effect::new(
        Stage::Export,
        ArtifactKey::new(ArtifactKind::Schedule, &i.code, &i.version),
        client.name(),
        "export schedule",
    );
    let mut ahead = ahead;
    let id = &id;
    ctx.exec()
        .run_read_planned(eff, || {
            let ahead = ahead.take();
            async move {
                let read = match ahead {
                    Some(r) => r,
                    None => client.get_schedule(id).await,
                };
                match read.map_err(Failure::from)? {
                    Some(s) => SavedSchedule::of(id, &s)
                        .into_artifact(client.name())
                        .await
                        .map(Some),
                    None => Ok(None),
                }
            }
        })
        .await
}

/// The schedule of one integration as a `schedule` artifact (the file a backup job holds);
/// `None` when it has none.
pub async fn export_one(
    client: &OicClient,
    id: &IntegrationId,
) -> Result<Option<Artifact>, OicError> {
    match client.get_schedule(id).await? {
        None => Ok(None),
        Some(s) => SavedSchedule::of(id, &s)
            .into_artifact(client.name())
            .await
            .map(Some)
            .map_err(|e| OicError::Config(format!("schedule of {id}: {e}"))),
    }
}

// ------------------------------------------------------------------------------------ import

/// Saves the target's schedule of `key` (an integration) for rollback before a run changes it:
/// its definition and state, or that it had none. Skipped in a dry run.
pub async fn save_previous(
    ctx: &dyn Ctx,
    client: &OicClient,
    key: &ArtifactKey,
    cur: Option<&Schedule>,
) -> Result<(), String> {
    if ctx.exec().dry_run() {
        return Ok(());
    }
    let id = iid(key);
    let mut entry = RollbackEntry {
        kind: ArtifactKind::Schedule,
        code: key.code.clone(),
        version: key.version.clone(),
        target: client.name().to_string(),
        existed: cur.is_some(),
        previous_status: cur.and_then(|s| s.state.as_ref()).map(|s| s.to_string()),
        sha256: None,
        content_sha256: None,
        imported_content_sha256: None,
        location: None,
    };
    if let Some(s) = cur {
        let a = SavedSchedule::of(&id, s)
            .into_artifact(client.name())
            .await
            .map_err(|e| e.to_string())?;
        let sink = ctx.rollback_sink();
        entry.sha256 = Some(a.sha256.clone());
        let location = tokio::task::spawn_blocking(move || sink.save(&a))
            .await
            .map_err(|e| e.to_string())??;
        entry.location = Some(location);
    }
    ctx.exec().record().note_rollback(&entry);
    Ok(())
}

/// Saves the schedule of an integration about to be replaced (its replace stops it).
pub async fn save_before_replace(
    ctx: &dyn Ctx,
    client: &OicClient,
    key: &ArtifactKey,
) -> Result<(), String> {
    if ctx.exec().dry_run() {
        return Ok(());
    }
    let cur = current(client, &iid(key))
        .await
        .map_err(|e| format!("cannot read the schedule of {}: {e}", key.id()))?;
    save_previous(ctx, client, key, cur.as_ref()).await
}

/// Puts the imported schedules on the target, after the imports and activations whose results
/// are `results`. One result per schedule.
pub async fn apply(
    ctx: &dyn Ctx,
    client: &OicClient,
    schedules: Vec<Artifact>,
    o: &super::import::ImportOptions,
    results: &[ImportResult],
) -> Result<Vec<ImportResult>, OpsError> {
    let (mode, overwrite, stop_on_error, activate) =
        (o.schedules, o.overwrite, o.stop_on_error, o.activate);
    let results = Arc::new(results.to_vec());
    // Each schedule belongs to its own integration: they go in parallel on the write lane of the
    // instance's limiter, bounded as the activations are (one at a time, 224 schedules of a
    // 1,000-integration migration took 66 s of round trips). A 409 answered to a schedule write
    // sent while others were in flight cuts the write window and is sent again, as an import's
    // is (`OicError::Busy`, retried by the executor with back-off); a create's 409 ("already
    // exists") goes to a PUT, as one at a time.
    let conc = o.activation_concurrency.unwrap_or(ctx.bounds().activations);
    let bar = ctx.bar(schedules.len(), "schedules");
    let done = fan_out_adaptive(bar, conc, client, Lane::Writes, schedules, |a| {
        let results = results.clone();
        async move {
            let mut m = ImportResult::of(&a);
            let integration = results.iter().find(|r| {
                r.kind == ArtifactKind::Integration.as_str()
                    && r.code == a.key.code
                    && r.version == a.key.version
            });
            let left = match (mode, integration) {
                (SchedulesMode::Skip, _) => Some("the import options say `schedules: \"skip\"`"),
                (_, Some(r)) if r.action == Some(ItemAction::Failed) => {
                    Some("its integration was not imported")
                }
                (_, Some(r)) if r.action == Some(ItemAction::Skipped) && !overwrite => {
                    Some("its integration is left as it is (overwrite is off)")
                }
                _ => None,
            };
            if let Some(why) = left {
                let reason = SkipReason::ScheduleLeft { why: why.into() };
                let eff = Effect::new(Stage::Import, skey(&a.key), client.name(), "schedule");
                ctx.exec().skip(eff, reason.clone());
                m.action = Some(ItemAction::Skipped);
                m.reason = Some(reason.to_string());
                return Ok(m);
            }
            // Imported by this run (or planned): the import brought the archive's schedule, if
            // it carries one, stopped (OIC imports schedules stopped; a replace stops them).
            let imported = integration.is_some_and(|r| {
                matches!(
                    r.action,
                    Some(ItemAction::Created | ItemAction::Replaced | ItemAction::Planned)
                )
            });
            // Its activation failed, or this run imported it and leaves it inactive: the
            // schedule cannot be started (an activation failure is the integration's,
            // recorded once).
            let inactive = integration.is_some_and(|r| {
                let failed =
                    r.error.is_some() && r.stage.as_deref() == Some(Stage::Activate.as_str());
                let activated = match activate {
                    ActivateWhen::Always => true,
                    ActivateWhen::Never => false,
                    ActivateWhen::Keep => r.source_status.as_deref() == Some("ACTIVATED"),
                };
                failed || (imported && !activated)
            });
            let how = How {
                mode,
                imported,
                inactive,
            };
            match apply_one(ctx, client, &a, how, &mut m).await {
                Ok(()) => Ok(m),
                Err(e) if e.cancelled => Err(OpsError::Cancelled),
                Err(e) if stop_on_error => Err(OpsError::effect(e)),
                Err(e) => {
                    m.action = Some(ItemAction::Failed);
                    m.stage = Some(e.stage.as_str().into());
                    m.error = Some(e.error.message.clone());
                    m.status_code = e.error.status;
                    Ok(m)
                }
            }
        }
    })
    .await;
    done.into_iter().collect()
}

/// How one schedule is applied.
#[derive(Clone, Copy)]
struct How {
    mode: SchedulesMode,
    /// Its integration was imported (or planned) by this run.
    imported: bool,
    /// Its integration's activation failed.
    inactive: bool,
}

/// One schedule: its definition, then (with `keep`) its state.
async fn apply_one(
    ctx: &dyn Ctx,
    client: &OicClient,
    a: &Artifact,
    how: How,
    m: &mut ImportResult,
) -> Result<(), EffectError> {
    let How {
        mode,
        imported,
        inactive,
    } = how;
    let exec = ctx.exec();
    let eff = Effect::new(
        Stage::Import,
        skey(&a.key),
        client.name(),
        Action::PutSchedule.to_string(),
    )
    .with_sha256(Some(a.sha256.clone()).filter(|s| !s.is_empty()));
    let id = iid(&a.key);
    let target = client.name().to_string();
    let (def, want) = if a.is_planned() {
        // A dry run's stand-in: no file; its state was recorded as its source status.
        exec.note(&eff, StepStatus::Planned, None);
        m.action = Some(ItemAction::Planned);
        (None, a.source_status.as_deref().map(ScheduleState::parse))
    } else {
        if let Err(ie) = verify_blocking(a).await {
            return Err(failed_effect(exec, &eff, "integrity", ie.to_string()));
        }
        let a2 = a.clone();
        let saved = match tokio::task::spawn_blocking(move || SavedSchedule::read(&a2)).await {
            Ok(Ok(s)) => s,
            Ok(Err(msg)) => return Err(failed_effect(exec, &eff, "integrity", msg)),
            Err(e) => return Err(failed_effect(exec, &eff, "task", e.to_string())),
        };
        (Some(saved.definition), saved.state)
    };
    let (planned_put, known) = match def {
        None => (true, None),
        Some(def) => put_definition(ctx, client, a, eff, def, imported, m).await?,
    };
    if mode != SchedulesMode::Keep {
        return Ok(());
    }
    // The state it had on the source (unknown: left as it is).
    let Some(want) = want else {
        return Ok(());
    };
    if inactive && !want.is_stopped() {
        let eff = Effect::new(
            Stage::Activate,
            skey(&a.key),
            client.name(),
            Action::StartSchedule.to_string(),
        );
        let why = SkipReason::ScheduleLeft {
            why: format!("its integration is not active on {target}"),
        };
        exec.skip(eff, why.clone());
        m.reason = Some(why.to_string());
        return Ok(());
    }
    let put = PutDone {
        planned: planned_put,
        known,
    };
    set_state(ctx, client, a, &id, &target, want, imported, put, m).await
}

/// What putting the definition left: `planned` (a dry run plans it), and the schedule's state
/// when it is known without a read (`Some(state)`: the check's read just before a PUT, which
/// keeps the state, or a skip; `None`: unknown, read it).
struct PutDone {
    planned: bool,
    known: Option<Option<ScheduleState>>,
}

/// The definition: put unless the target already runs it on the same recurrence (always put
/// after an import: what the archive brought is not known before). The check's read says
/// whether a schedule exists, so the put is one request (a PUT, or a POST). Returns whether it
/// was planned, and the schedule's state when known without another read.
async fn put_definition(
    ctx: &dyn Ctx,
    client: &OicClient,
    a: &Artifact,
    eff: Effect,
    def: ScheduleDefinition,
    imported: bool,
    m: &mut ImportResult,
) -> Result<(bool, Option<Option<ScheduleState>>), EffectError> {
    let exec = ctx.exec();
    let id = iid(&a.key);
    let target = client.name().to_string();
    // What the check read (the run's first attempt uses it; a retry reads again).
    let seen: std::sync::Mutex<Option<Option<Schedule>>> = std::sync::Mutex::new(None);
    // What the last attempt went by (`None`: it read nothing known).
    let used: std::sync::Mutex<Option<Option<Schedule>>> = std::sync::Mutex::new(None);
    let check = || async {
        let cur = current(client, &id).await.map_err(Failure::from)?;
        *seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(cur.clone());
        let d = match &cur {
            _ if imported => Decision::go(
                Action::PutSchedule,
                format!("imported into {target} by this run"),
            ),
            Some(c) if c.definition.same_recurrence(&def) => {
                Decision::Skip(SkipReason::SameSchedule {
                    target: target.clone(),
                })
            }
            Some(_) => Decision::go(
                Action::PutSchedule,
                format!("{target} runs it on another schedule"),
            ),
            None => Decision::go(
                Action::PutSchedule,
                format!("it has no schedule on {target}"),
            ),
        };
        // After an import, what the target had was saved before the replace (a created
        // integration is deleted by rollback, its schedule with it).
        if matches!(d, Decision::Go { .. }) && !imported {
            save_previous(ctx, client, &a.key, cur.as_ref())
                .await
                .map_err(|e| {
                    Failure::Task(format!(
                        "cannot save the schedule of {} for rollback: {e}",
                        a.key.id()
                    ))
                })?;
        }
        Ok::<_, Failure>(d)
    };
    let put = exec
        .run_checked(eff, check, || async {
            let cur = seen.lock().unwrap_or_else(|e| e.into_inner()).take();
            *used.lock().unwrap_or_else(|e| e.into_inner()) = cur.clone();
            match cur {
                Some(cur) => client
                    .put_schedule_known_at(None, &id, &def, cur.is_some())
                    .await
                    .map_err(Failure::from),
                None => client
                    .put_schedule_at(None, &id, &def)
                    .await
                    .map_err(Failure::from),
            }
        })
        .await?;
    let read = seen.into_inner().unwrap_or_else(|e| e.into_inner());
    let first_read = used.into_inner().unwrap_or_else(|e| e.into_inner());
    m.action = Some(match &put {
        Outcome::Done(true) => ItemAction::Created,
        Outcome::Done(false) => ItemAction::Replaced,
        Outcome::Planned => ItemAction::Planned,
        Outcome::Skipped(why) => {
            m.reason = Some(why.to_string());
            ItemAction::Skipped
        }
    });
    // The state now: a replaced definition keeps the state the check read (`read` is left
    // only when the put did not consume it: a skip); a created one is read again.
    let known = match &put {
        Outcome::Done(false) => first_read.map(|c| c.and_then(|s| s.state)),
        Outcome::Skipped(SkipReason::SameSchedule { .. }) => read.map(|c| c.and_then(|s| s.state)),
        _ => None,
    };
    Ok((matches!(put, Outcome::Planned), known))
}

/// The state: started, paused or stopped as on the source, unless it already is.
#[allow(clippy::too_many_arguments)]
async fn set_state(
    ctx: &dyn Ctx,
    client: &OicClient,
    a: &Artifact,
    id: &IntegrationId,
    target: &str,
    want: ScheduleState,
    imported: bool,
    put: PutDone,
    m: &mut ImportResult,
) -> Result<(), EffectError> {
    let exec = ctx.exec();
    // The state the check found (the first attempt goes by it; a retry reads again).
    let seen: std::sync::Mutex<Option<Option<ScheduleState>>> = std::sync::Mutex::new(None);
    let (stage, action) = if want.is_stopped() {
        (Stage::Deactivate, Action::StopSchedule)
    } else if matches!(want, ScheduleState::Hold | ScheduleState::Pausing) {
        (Stage::Activate, Action::PauseSchedule)
    } else if want.is_started() {
        (Stage::Activate, Action::StartSchedule)
    } else {
        return Ok(());
    };
    let eff = Effect::new(stage, skey(&a.key), client.name(), action.to_string())
        .with_sha256(Some(a.sha256.clone()).filter(|s| !s.is_empty()))
        .with_reason(format!("{want} on {}", a.source));
    let check = || async {
        // In a dry run, an integration this run imports has its schedule stopped (or none yet).
        let (exists, now) = if exec.dry_run() && imported {
            (true, Some(ScheduleState::Cancelled))
        } else if let Some(known) = &put.known {
            // Just put (or found the same): it exists, in the state read before the put.
            (true, known.clone())
        } else {
            let cur = current(client, id).await.map_err(Failure::from)?;
            (cur.is_some() || put.planned, cur.and_then(|c| c.state))
        };
        *seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(now.clone());
        let same = match &now {
            Some(n) => {
                (n.is_stopped() && want.is_stopped())
                    || (n.is_started() && want.is_started())
                    || n == &want
            }
            None => false,
        };
        Ok::<_, Failure>(if same {
            Decision::Skip(SkipReason::AlreadyIn {
                status: now.map(|s| s.to_string()).unwrap_or_default(),
            })
        } else if !exists && want.is_stopped() {
            Decision::Skip(SkipReason::NotOn {
                target: target.to_string(),
            })
        } else {
            Decision::go(action.clone(), format!("{want} on {}", a.source))
        })
    };
    let st = exec
        .run_checked(eff, check, || async {
            let known = seen.lock().unwrap_or_else(|e| e.into_inner()).take();
            match known {
                Some(cur) => client.set_schedule_state_from(None, id, cur, &want).await,
                None => client.set_schedule_state_at(None, id, &want).await,
            }
            .map_err(Failure::from)
        })
        .await?;
    m.status = match st {
        Outcome::Done(s) => s.map(|s| s.to_string()),
        Outcome::Planned => Some(want.to_string()),
        Outcome::Skipped(_) => Some(want.to_string()),
    };
    m.activated = want.is_started();
    Ok(())
}

// ---------------------------------------------------------------------------------- rollback

/// What rollback did to one schedule: `done`, `planned`, `skipped: <why>` or `failed` (with the
/// error).
pub async fn rollback_one(
    ctx: &dyn Ctx,
    client: &OicClient,
    e: &RollbackEntry,
) -> (String, Option<String>) {
    let r = rollback_inner(ctx, client, e).await;
    match r {
        Ok(Outcome::Done(())) => ("done".into(), None),
        Ok(Outcome::Planned) => ("planned".into(), None),
        Ok(Outcome::Skipped(why)) => (format!("skipped: {why}"), None),
        Err(err) => ("failed".into(), Some(err.error.message)),
    }
}

async fn rollback_inner(
    ctx: &dyn Ctx,
    client: &OicClient,
    e: &RollbackEntry,
) -> Result<Outcome<()>, EffectError> {
    let exec = ctx.exec();
    let key = e.key();
    let id = iid(&key);
    let target = client.name().to_string();
    if !e.existed {
        return delete_added(exec, client, e).await;
    }
    let eff = Effect::new(Stage::Import, key.clone(), &e.target, "restore schedule")
        .with_sha256(e.sha256.clone());
    let saved = {
        let (config, entry) = (ctx.config().clone(), e.clone());
        let fetched = tokio::task::spawn_blocking(move || {
            super::rollback::fetch_saved(&config, &entry)
                .map_err(|f| f.to_string())
                .and_then(|a| SavedSchedule::read(&a))
        })
        .await
        .map_err(|x| x.to_string())
        .and_then(|r| r);
        match fetched {
            Ok(s) => s,
            Err(msg) => return Err(failed_effect(exec, &eff, "vault", msg)),
        }
    };
    let def = saved.definition.clone();
    let check = || async {
        Ok::<_, Failure>(match current(client, &id).await.map_err(Failure::from)? {
            Some(c) if c.definition.same_recurrence(&def) => {
                Decision::Skip(SkipReason::SameSchedule {
                    target: target.clone(),
                })
            }
            Some(_) => Decision::go(Action::PutSchedule, "as it was before the run"),
            None => Decision::go(Action::PutSchedule, "as it was before the run"),
        })
    };
    let put = exec
        .run_checked(eff.clone(), check, || async {
            client
                .put_schedule_at(None, &id, &def)
                .await
                .map(|_| ())
                .map_err(Failure::from)
        })
        .await?;
    let Some(want) = saved.state.clone() else {
        return Ok(put);
    };
    let st = restore_state(exec, client, eff, &put, want).await?;
    Ok(match (put, st) {
        (Outcome::Skipped(_), Outcome::Skipped(why)) => Outcome::Skipped(why),
        (Outcome::Planned, _) | (_, Outcome::Planned) => Outcome::Planned,
        _ => Outcome::Done(()),
    })
}

/// The rollback of a schedule the run gave an integration: stop and delete it (nothing to do
/// when the integration itself was removed by the rollback).
async fn delete_added(
    exec: &crate::effect::Executor,
    client: &OicClient,
    e: &RollbackEntry,
) -> Result<Outcome<()>, EffectError> {
    let key = e.key();
    let id = iid(&key);
    let target = client.name().to_string();
    // The run gave it a schedule: stop and delete it (nothing to do when the integration
    // itself was removed by the rollback).
    let eff = Effect::new(
        Stage::Delete,
        key.clone(),
        &e.target,
        Action::DeleteSchedule.to_string(),
    );
    let check = || async {
        Ok::<_, Failure>(match current(client, &id).await.map_err(Failure::from)? {
            None => Decision::Skip(SkipReason::NotOn {
                target: target.clone(),
            }),
            Some(_) => Decision::go(Action::DeleteSchedule, "created by the run"),
        })
    };
    exec.run_checked(eff, check, || async {
        client
            .stop_schedule_at(None, &id)
            .await
            .map_err(Failure::from)?;
        client
            .delete_schedule_at(None, &id)
            .await
            .map(|_| ())
            .map_err(Failure::from)
    })
    .await
}

/// Puts the schedule back in state `want` (one step; skipped when it is already in it).
async fn restore_state(
    exec: &crate::effect::Executor,
    client: &OicClient,
    mut eff: Effect,
    put: &Outcome<()>,
    want: ScheduleState,
) -> Result<Outcome<()>, EffectError> {
    let id = iid(&eff.key);
    let stage = if want.is_stopped() {
        Stage::Deactivate
    } else {
        Stage::Activate
    };
    eff.stage = stage;
    eff.action = format!("schedule {want}");
    let planned = matches!(put, Outcome::Planned);
    let check = || async {
        let now = if planned {
            None
        } else {
            current(client, &id)
                .await
                .map_err(Failure::from)?
                .and_then(|c| c.state)
        };
        Ok::<_, Failure>(match now {
            Some(n) if n == want || (n.is_stopped() && want.is_stopped()) => {
                Decision::Skip(SkipReason::AlreadyIn {
                    status: n.to_string(),
                })
            }
            _ => Decision::go(
                Action::Other(format!("schedule {want}")),
                format!("{want} before the run"),
            ),
        })
    };
    exec.run_checked(eff, check, || async {
        client
            .set_schedule_state_at(None, &id, &want)
            .await
            .map(|_| ())
            .map_err(Failure::from)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn modes_are_a_closed_set() {
        let m: SchedulesMode = serde_json::from_value(json!("keep")).unwrap();
        assert_eq!(m, SchedulesMode::Keep);
        let m: SchedulesMode = serde_json::from_value(json!("create")).unwrap();
        assert_eq!(m, SchedulesMode::Create);
        let m: SchedulesMode = serde_json::from_value(json!("skip")).unwrap();
        assert_eq!(m, SchedulesMode::Skip);
        assert!(serde_json::from_value::<SchedulesMode>(json!("start")).is_err());
        assert_eq!(SchedulesMode::default(), SchedulesMode::Keep);
    }

    #[test]
    fn a_saved_schedule_round_trips_and_refuses_unknown_keys() {
        let s = SavedSchedule {
            format: 1,
            integration: "HR_PAYROLL_EXPORT|01.00.0000".into(),
            definition: ScheduleDefinition::from_json(&json!({
                "icalExpression": "FREQ=DAILY;BYHOUR=2;BYMINUTE=0;", "name": "S", "scheduleTZ": "UTC"
            })),
            state: Some(ScheduleState::Active),
        };
        let a = s.to_artifact("dev").unwrap();
        assert_eq!(a.file_name(), "HR_PAYROLL_EXPORT_01.00.0000.json");
        assert_eq!(a.key.kind.folder(), "Schedules");
        assert_eq!(a.source_status.as_deref(), Some("ACTIVE"));
        a.verify().unwrap();
        assert_eq!(SavedSchedule::read(&a).unwrap(), s);
        let text = std::fs::read_to_string(a.path()).unwrap();
        assert!(text.contains("\"state\": \"ACTIVE\""), "{text}");
        let bad = text.replace("\"format\"", "\"bogus\": 1, \"format\"");
        assert!(serde_json::from_str::<SavedSchedule>(&bad).is_err());
    }
}
