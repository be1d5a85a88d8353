//! `activate` and `deactivate`: integrations in parallel, bounded, each one effect with a check
//! of its status first when this run did not just import it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::OpsError;
use super::ctx::{Ctx, fan_out_adaptive};
use super::import::ItemAction;
use crate::artifact::{Artifact, ArtifactKey, ArtifactKind};
use crate::effect::{
    Action, Decision, Effect, EffectError, Executor, Failure, Outcome, SkipReason,
};
use crate::ledger::{RollbackEntry, Stage};
use crate::oic::{ActivateOptions, IntegrationId, Lane, OicClient};

/// When to activate after an import: `true`, `false`, or `"keep"` (what was active on the
/// source).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "BoolOrKeep")]
pub enum ActivateWhen {
    Never,
    Always,
    /// What was active on the source.
    Keep,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum BoolOrKeep {
    Bool(bool),
    Text(String),
}

impl TryFrom<BoolOrKeep> for ActivateWhen {
    type Error = String;
    fn try_from(v: BoolOrKeep) -> Result<Self, String> {
        match v {
            BoolOrKeep::Bool(true) => Ok(ActivateWhen::Always),
            BoolOrKeep::Bool(false) => Ok(ActivateWhen::Never),
            BoolOrKeep::Text(s) if s == "keep" => Ok(ActivateWhen::Keep),
            BoolOrKeep::Text(s) => Err(format!(
                "option `activate` must be true, false or \"keep\", found {s:?}"
            )),
        }
    }
}

impl ActivateWhen {
    /// True when `a` (an integration) is to be activated after its import.
    pub fn wants(self, a: &Artifact) -> bool {
        a.key.kind == ArtifactKind::Integration
            && match self {
                ActivateWhen::Always => true,
                ActivateWhen::Never => false,
                ActivateWhen::Keep => a.source_status.as_deref() == Some("ACTIVATED"),
            }
    }
}

/// Options of `activate` and `deactivate`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActivateOpts {
    /// Hard cap on activations at a time (default: adaptive, see `oic::Limiter`).
    pub concurrency: Option<usize>,
    pub async_activation: bool,
    /// Seconds to wait for an activation.
    pub activation_timeout: u64,
    pub stop_on_error: bool,
}

impl Default for ActivateOpts {
    fn default() -> Self {
        ActivateOpts {
            concurrency: None,
            async_activation: true,
            activation_timeout: 300,
            stop_on_error: false,
        }
    }
}

/// The result of activating or deactivating one integration: `status` is its OIC status after
/// it (or `()` when nothing was done), `action` what was done.
#[derive(Clone, Debug, Serialize)]
pub struct ActivationResult {
    pub id: String,
    pub kind: String,
    pub action: ItemAction,
    pub status: Option<String>,
    pub error: Option<String>,
}

/// Activates (`activate` true) or deactivates integrations in parallel, bounded.
pub async fn set_active(
    ctx: &dyn Ctx,
    client: &OicClient,
    ids: Vec<IntegrationId>,
    activate: bool,
    o: &ActivateOpts,
) -> Result<Vec<ActivationResult>, OpsError> {
    let conc = o.concurrency.unwrap_or(ctx.bounds().activations);
    let act = ActivateOptions {
        async_mode: o.async_activation,
        timeout: Duration::from_secs(o.activation_timeout),
        poll_interval: Duration::from_millis(500),
        tracing: None,
        payload_tracing: None,
    };
    let label = if activate { "activate" } else { "deactivate" };
    let results = fan_out_adaptive(
        ctx.bar(ids.len(), label),
        conc,
        client,
        Lane::Writes,
        ids,
        |id| {
            let act = act.clone();
            async move {
                let key = ArtifactKey::new(ArtifactKind::Integration, &id.code, &id.version);
                let r = if activate {
                    let eff = Effect::new(Stage::Activate, key, client.name(), "activate");
                    ctx.exec()
                        .run(eff, || async {
                            client.activate(&id, &act).await.map_err(Failure::from)
                        })
                        .await
                } else {
                    let eff = Effect::new(Stage::Deactivate, key, client.name(), "deactivate");
                    ctx.exec()
                        .run(eff, || async {
                            client.deactivate(&id).await.map_err(Failure::from)?;
                            Ok::<_, Failure>("CONFIGURED".to_string())
                        })
                        .await
                };
                (id, r)
            }
        },
    )
    .await;
    let done = if activate {
        ItemAction::Activated
    } else {
        ItemAction::Deactivated
    };
    let mut out = vec![];
    for (id, r) in results {
        let mut m = ActivationResult {
            id: id.to_string(),
            kind: ArtifactKind::Integration.as_str().into(),
            action: done,
            status: None,
            error: None,
        };
        match r {
            Ok(Outcome::Done(s)) => m.status = Some(s),
            Ok(Outcome::Planned) => m.action = ItemAction::Planned,
            Ok(Outcome::Skipped(_)) => m.action = ItemAction::Skipped,
            Err(e) if e.cancelled => return Err(OpsError::Cancelled),
            Err(e) if o.stop_on_error => return Err(OpsError::effect(e)),
            Err(e) => {
                m.action = ItemAction::Failed;
                m.error = Some(e.error.message);
            }
        }
        out.push(m);
    }
    Ok(out)
}

/// Deletes the integration `id` as one `delete` effect (OIC refuses an active or locked one).
pub async fn delete(ctx: &dyn Ctx, client: &OicClient, id: &IntegrationId) -> Result<(), OpsError> {
    let key = ArtifactKey::new(ArtifactKind::Integration, &id.code, &id.version);
    let eff = Effect::new(Stage::Delete, key, client.name(), "delete");
    ctx.exec()
        .run(eff, || async {
            client.delete_integration(id).await.map_err(Failure::from)
        })
        .await?;
    Ok(())
}

/// Activates an integration as one `activate` effect. When this run did not just import it
/// (`fresh` false), its status is read first and an active one is skipped "already active";
/// an inactive one's status is recorded for rollback.
pub async fn activate_one(
    exec: &Executor,
    client: &OicClient,
    opts: &ActivateOptions,
    eff: Effect,
    fresh: bool,
) -> Result<Outcome<String>, EffectError> {
    let record = exec.record().clone();
    let dry = exec.dry_run();
    let key = eff.key.clone();
    let id = IntegrationId::new(&key.code, &key.version);
    let why = eff.reason.clone();
    let check = || async {
        if fresh {
            return Ok(Decision::Go {
                action: Action::Activate,
                reason: why.clone(),
            });
        }
        let st = client.activation_status(&id).await.map_err(Failure::from)?;
        if st == "ACTIVATED" {
            return Ok(Decision::Skip(SkipReason::AlreadyActive));
        }
        // Its state before this run, for rollback (an import's record, made first, wins).
        if !dry {
            record.note_rollback(&RollbackEntry {
                kind: key.kind,
                code: key.code.clone(),
                version: key.version.clone(),
                target: client.name().to_string(),
                existed: true,
                previous_status: Some(st.clone()),
                sha256: None,
                content_sha256: None,
                imported_content_sha256: None,
                location: None,
            });
        }
        Ok::<_, Failure>(Decision::go(
            Action::Activate,
            format!("{st} on {}", client.name()),
        ))
    };
    exec.run_checked(eff, check, || async {
        client.activate(&id, opts).await.map_err(Failure::from)
    })
    .await
}

/// Deactivates an integration as one `deactivate` effect, after reading its status (an
/// inactive one is skipped); `restored`: a restore just replaced it, which leaves it inactive.
pub async fn deactivate_one(
    exec: &Executor,
    client: &OicClient,
    eff: Effect,
    was: &str,
    restored: bool,
) -> Result<Outcome<()>, EffectError> {
    let id = IntegrationId::new(&eff.key.code, &eff.key.version);
    let check = || async {
        if restored {
            return Ok(Decision::Skip(SkipReason::InactiveAfterRestore));
        }
        let st = client.activation_status(&id).await?;
        Ok::<_, Failure>(if st == "ACTIVATED" {
            Decision::go(Action::Deactivate, format!("it was {was} before the run"))
        } else {
            Decision::Skip(SkipReason::AlreadyIn { status: st })
        })
    };
    exec.run_checked(eff, check, || async {
        client.deactivate(&id).await.map_err(Failure::from)
    })
    .await
}
