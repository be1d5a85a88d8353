//! Resuming a stopped run: what it already did, so the new run does not do it again.

use std::collections::HashSet;

use super::Effect;
use crate::artifact::ArtifactKind;
use crate::ledger::{
    Intent, JobRow, Ledger, LedgerError, LedgerLocation, RunRow, Stage, Step, StepStatus,
};

/// Stages whose completed effects are skipped on resume: those that change a target. Exports
/// and verifications are reads and run again; stores are skipped by the reopened vault job,
/// which knows what it holds.
const RESUMABLE: &[Stage] = &[
    Stage::Import,
    Stage::Activate,
    Stage::Deactivate,
    Stage::Delete,
    Stage::Connection,
    Stage::Grant,
    Stage::Notify,
];

type DoneKey = (Stage, ArtifactKind, String, String, String, String);

/// The effects a run completed: (stage, artifact, target, input sha256).
#[derive(Clone, Debug, Default)]
pub struct ResumeIndex {
    done: HashSet<DoneKey>,
    /// Effects that were sent but whose end was never recorded: their request may still land.
    pending: HashSet<DoneKey>,
}

impl ResumeIndex {
    /// Builds the index from a run's steps: those `ok`, and those skipped because an earlier run
    /// (that this one resumed) had done them.
    pub fn from_steps(steps: &[Step]) -> ResumeIndex {
        let done = steps
            .iter()
            .filter(|s| RESUMABLE.contains(&s.stage))
            .filter(|s| {
                s.status == StepStatus::Ok
                    || (s.status == StepStatus::Skipped
                        && s.reason
                            .as_deref()
                            .is_some_and(super::SkipReason::recorded_done_in_run))
            })
            .map(|s| {
                (
                    s.stage,
                    s.kind,
                    s.code.clone(),
                    s.version.clone(),
                    s.target.clone(),
                    s.sha256.clone().unwrap_or_default(),
                )
            })
            .collect();
        ResumeIndex {
            done,
            pending: HashSet::new(),
        }
    }

    /// Adds the intents of the run: those without a recorded end are pending.
    pub fn with_intents(mut self, intents: &[Intent], steps: &[Step]) -> ResumeIndex {
        let ended: HashSet<DoneKey> = steps
            .iter()
            .map(|s| {
                (
                    s.stage,
                    s.kind,
                    s.code.clone(),
                    s.version.clone(),
                    s.target.clone(),
                    s.sha256.clone().unwrap_or_default(),
                )
            })
            .collect();
        for i in intents {
            let k = (
                i.stage,
                i.kind,
                i.code.clone(),
                i.version.clone(),
                i.target.clone(),
                i.sha256.clone(),
            );
            if !ended.contains(&k) {
                self.pending.insert(k);
            }
        }
        self
    }

    /// True when the effect was sent by the resumed run and its end never recorded.
    pub fn pending(&self, eff: &Effect) -> bool {
        self.pending.contains(&(
            eff.stage,
            eff.key.kind,
            eff.key.code.clone(),
            eff.key.version.clone(),
            eff.target.clone(),
            eff.sha256.clone().unwrap_or_default(),
        ))
    }

    /// True when the effect (same stage, artifact, target and input sha256) was completed.
    pub fn done(&self, eff: &Effect) -> bool {
        RESUMABLE.contains(&eff.stage)
            && self.done.contains(&(
                eff.stage,
                eff.key.kind,
                eff.key.code.clone(),
                eff.key.version.clone(),
                eff.target.clone(),
                eff.sha256.clone().unwrap_or_default(),
            ))
    }

    /// Number of completed effects.
    pub fn len(&self) -> usize {
        self.done.len()
    }

    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }
}

/// The run being resumed: its id, what it completed, and the vault jobs it wrote (reopened in
/// the same order by the new run).
#[derive(Clone, Debug, Default)]
pub struct Resume {
    pub run: String,
    pub index: ResumeIndex,
    pub jobs: Vec<JobRow>,
}

impl Resume {
    /// Loads run `which` (`last`: the latest real run of `recipe`) from the ledger at `loc`
    /// (possibly another machine's run, in a shared PostgreSQL ledger).
    pub fn load(loc: &LedgerLocation, which: &str, recipe: &str) -> Result<Resume, LedgerError> {
        let Some(db) = Ledger::open_existing_at(loc)? else {
            return Err(LedgerError::NoRun(which.to_string()));
        };
        let row: Option<RunRow> = if which == "last" {
            db.last_run(Some(recipe), None)?
        } else {
            db.run(which)?
        };
        let Some(row) = row else {
            return Err(LedgerError::NoRun(if which == "last" {
                format!("last (no earlier run of {recipe})")
            } else {
                which.to_string()
            }));
        };
        let id = row.info.id;
        let steps = db.steps(&id)?;
        let intents = db.intents(&id)?;
        Ok(Resume {
            index: ResumeIndex::from_steps(&steps).with_intents(&intents, &steps),
            jobs: db.jobs(&id)?,
            run: id,
        })
    }

    /// The `n`-th (1-based) job the resumed run opened in `vault`.
    pub fn job(&self, vault: &str, n: usize) -> Option<&JobRow> {
        self.jobs.iter().filter(|j| j.vault == vault).nth(n - 1)
    }
}
