//! Pruning a vault by retention (`vault::open(v).prune(...)`, `ferry vault prune`): the vault's
//! own plan of what the policy keeps, then each deletion as a recorded `delete` effect (planned in
//! a dry run), then the sweep of files no job uses any more.

use serde::{Deserialize, Serialize};

use super::OpsError;
use crate::artifact::{ArtifactKey, ArtifactKind};
use crate::effect::{Effect, Executor, Failure, Outcome};
use crate::ledger::Stage;
use crate::vault::{Retention, Vault};

/// A retention policy: keep the newest complete job of each of the last N days, ISO weeks and
/// months that have jobs.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PruneOptions {
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

/// What a prune kept and deleted (job paths; `kept_shared`: files of deleted jobs that jobs
/// staying still use).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneResult {
    pub dry_run: bool,
    pub kept: Vec<String>,
    pub deleted: Vec<String>,
    pub skipped_unfinished: Vec<String>,
    pub skipped_partial: Vec<String>,
    pub skipped_damaged: Vec<String>,
    pub kept_shared: Vec<String>,
}

fn vault_err(at: &str, e: impl std::fmt::Display) -> OpsError {
    OpsError::Vault {
        at: at.to_string(),
        message: e.to_string(),
    }
}

/// Prunes `vault` (configured as `name`) by `policy`; each deletion is one effect of `exec`.
pub async fn prune(
    exec: &Executor,
    name: &str,
    vault: &Vault,
    policy: &PruneOptions,
) -> Result<PruneResult, OpsError> {
    let r = Retention {
        daily: policy.daily,
        weekly: policy.weekly,
        monthly: policy.monthly,
    };
    if r.daily + r.weekly + r.monthly == 0 {
        return Err(OpsError::Usage(
            "prune: a policy that keeps nothing would delete every job; give daily, weekly or monthly"
                .into(),
        ));
    }
    let v = vault.clone();
    let plan = tokio::task::spawn_blocking(move || v.prune(r, true))
        .await
        .map_err(|e| vault_err(name, e))?
        .map_err(|e| vault_err(name, e))?;
    let mut deleted = vec![];
    for path in &plan.deleted {
        let key = ArtifactKey::new(ArtifactKind::Job, path.clone(), "");
        let eff = Effect::new(Stage::Delete, key, name, "delete job (retention)");
        let r = exec
            .run(eff, || {
                let (vault, plan, p) = (vault.clone(), plan.clone(), path.clone());
                async move {
                    // Files that jobs staying share stay (see vault::shared).
                    match tokio::task::spawn_blocking(move || vault.delete_pruned(&plan, &p)).await
                    {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(e)) => Err(Failure::from(e)),
                        Err(e) => Err(Failure::Task(e.to_string())),
                    }
                }
            })
            .await;
        match r {
            Ok(Outcome::Done(())) | Ok(Outcome::Planned) => deleted.push(path.clone()),
            Ok(Outcome::Skipped(_)) => {}
            Err(e) if e.cancelled => return Err(OpsError::Cancelled),
            Err(_) => {}
        }
    }
    if !exec.dry_run() {
        let (v, plan2) = (vault.clone(), plan.clone());
        tokio::task::spawn_blocking(move || v.sweep_pruned(&plan2))
            .await
            .map_err(|e| vault_err(name, e))?
            .map_err(|e| vault_err(name, e))?;
    }
    Ok(PruneResult {
        dry_run: exec.dry_run(),
        kept: plan.kept.iter().map(|(p, _)| p.clone()).collect(),
        deleted,
        skipped_unfinished: plan.skipped_unfinished.clone(),
        skipped_partial: plan.skipped_partial.clone(),
        skipped_damaged: plan.skipped_damaged.clone(),
        kept_shared: plan.kept_shared.clone(),
    })
}
