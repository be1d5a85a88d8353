//! Plan files at the effect level: while `ferry plan -o FILE` runs, the [`PlanGuard`] collects
//! every effect the executor describes instead of performing (and the content digest of every
//! archive exported); while `ferry apply FILE` runs, it admits only the effects of the plan,
//! each as often as the plan has it, and refuses an export whose archive differs from the one
//! the plan saw. The effects are compared with what identifies them: stage, artifact, target,
//! action (a store without its path: the job's name may hold the time) and archive.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::Effect;
use crate::artifact::ArtifactKind;
use crate::ledger::Stage;

/// One effect of a plan.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedEffect {
    pub stage: Stage,
    pub kind: ArtifactKind,
    pub code: String,
    pub version: String,
    /// The instance or vault name.
    pub target: String,
    /// What is done ("import new", "replace", "activate", "store"...).
    pub action: String,
    /// The archive it sends or stores: its content digest (see `vault::content_hash`) when it
    /// was exported in the run, else its sha256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
}

impl PlannedEffect {
    /// `ARTIFACT: STAGE ACTION on TARGET`, for messages.
    pub fn describe(&self) -> String {
        let id = if self.version.is_empty() {
            self.code.clone()
        } else {
            format!("{}|{}", self.code, self.version)
        };
        format!(
            "{} {id}: {} on {} ({})",
            self.kind.as_str(),
            self.action,
            self.target,
            self.stage
        )
    }
}

/// An archive exported while the plan was made.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedArchive {
    pub kind: ArtifactKind,
    pub code: String,
    pub version: String,
    /// The instance it was exported from.
    pub source: String,
    /// The sha256 of the exported bytes (OIC exports differ byte for byte between two exports).
    pub sha256: String,
    /// The content digest: equal for two exports of unchanged content.
    pub digest: String,
}

impl PlannedArchive {
    pub fn id(&self) -> String {
        if self.version.is_empty() {
            self.code.clone()
        } else {
            format!("{}|{}", self.code, self.version)
        }
    }
}

/// Stages that only read: never held to the plan (their archives are, through the exports).
fn is_read(stage: Stage) -> bool {
    matches!(stage, Stage::Export | Stage::Verify)
}

/// The action as a plan compares it: a store without the job path.
fn normal_action(stage: Stage, action: &str) -> String {
    match stage {
        Stage::Store => "store".to_string(),
        _ => action.to_string(),
    }
}

#[derive(Debug, Default)]
struct State {
    /// Effects described (recording) or still admitted (applying).
    effects: Vec<PlannedEffect>,
    /// Archives exported in this run.
    archives: Vec<PlannedArchive>,
    /// sha256 of an archive exported in this run → its content digest.
    digests: BTreeMap<String, String>,
}

/// What the executor does with plans; see the module documentation.
#[derive(Debug)]
pub struct PlanGuard {
    /// `Some`: applying this plan's archives (by source and key); `None`: recording.
    expected_archives: Option<BTreeMap<(ArtifactKind, String, String, String), String>>,
    state: Mutex<State>,
}

impl PlanGuard {
    /// A guard that records the effects of a dry run.
    pub fn recording() -> PlanGuard {
        PlanGuard {
            expected_archives: None,
            state: Mutex::default(),
        }
    }

    /// A guard that admits exactly `effects` and archives equal to `archives`.
    pub fn applying(effects: Vec<PlannedEffect>, archives: &[PlannedArchive]) -> PlanGuard {
        let expected = archives
            .iter()
            .map(|a| {
                (
                    (a.kind, a.code.clone(), a.version.clone(), a.source.clone()),
                    a.digest.clone(),
                )
            })
            .collect();
        PlanGuard {
            expected_archives: Some(expected),
            state: Mutex::new(State {
                effects,
                ..State::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn planned(&self, st: &State, eff: &Effect) -> PlannedEffect {
        let archive = eff
            .sha256
            .as_ref()
            .map(|s| st.digests.get(s).cloned().unwrap_or_else(|| s.clone()));
        PlannedEffect {
            stage: eff.stage,
            kind: eff.key.kind,
            code: eff.key.code.clone(),
            version: eff.key.version.clone(),
            target: eff.target.clone(),
            action: normal_action(eff.stage, &eff.action),
            archive,
        }
    }

    /// Recording: `eff` was described instead of performed.
    pub(crate) fn described(&self, eff: &Effect) {
        if self.expected_archives.is_some() || is_read(eff.stage) {
            return;
        }
        let mut st = self.lock();
        let p = self.planned(&st, eff);
        st.effects.push(p);
    }

    /// Applying: may `eff` be performed? It may when the plan has it (once per time the plan
    /// has it); the message says why not.
    pub(crate) fn admit(&self, eff: &Effect) -> Result<(), String> {
        if self.expected_archives.is_none() || is_read(eff.stage) {
            return Ok(());
        }
        let mut st = self.lock();
        let p = self.planned(&st, eff);
        match st.effects.iter().position(|e| *e == p) {
            Some(i) => {
                st.effects.remove(i);
                Ok(())
            }
            None => Err(format!(
                "refused: {} is not in the plan (the target or the archive changed since the plan was made)",
                p.describe()
            )),
        }
    }

    /// An export of `eff` gave an archive with `sha256` and content `digest`: remembered, and
    /// when applying, compared with the plan's.
    pub(crate) fn exported(
        &self,
        eff: &Effect,
        sha256: Option<String>,
        digest: Option<String>,
    ) -> Result<(), String> {
        let Some(sha) = sha256 else { return Ok(()) };
        let digest = digest.unwrap_or_else(|| sha.clone());
        let a = PlannedArchive {
            kind: eff.key.kind,
            code: eff.key.code.clone(),
            version: eff.key.version.clone(),
            source: eff.target.clone(),
            sha256: sha.clone(),
            digest: digest.clone(),
        };
        let mut st = self.lock();
        st.digests.insert(sha, digest.clone());
        if let Some(exp) = &self.expected_archives {
            let k = (a.kind, a.code.clone(), a.version.clone(), a.source.clone());
            match exp.get(&k) {
                Some(d) if *d == digest => {}
                Some(d) => {
                    return Err(format!(
                        "refused: the archive of {} {} exported from {} differs from the plan's (content digest {}, the plan has {})",
                        a.kind.as_str(),
                        a.id(),
                        a.source,
                        short(&digest),
                        short(d)
                    ));
                }
                None => {
                    return Err(format!(
                        "refused: {} {} exported from {} is not an archive of the plan",
                        a.kind.as_str(),
                        a.id(),
                        a.source
                    ));
                }
            }
        }
        st.archives.push(a);
        Ok(())
    }

    /// Recording: the effects described, sorted. Applying: the effects of the plan not performed.
    pub fn effects(&self) -> Vec<PlannedEffect> {
        let mut v = self.lock().effects.clone();
        v.sort();
        v
    }

    /// The archives exported in this run, sorted.
    pub fn archives(&self) -> Vec<PlannedArchive> {
        let mut v = self.lock().archives.clone();
        v.sort();
        v.dedup();
        v
    }
}

fn short(s: &str) -> &str {
    &s[..s.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::ArtifactKey;

    fn eff(stage: Stage, action: &str, sha: Option<&str>) -> Effect {
        Effect::new(
            stage,
            ArtifactKey::new(ArtifactKind::Integration, "A", "01.00.0000"),
            "prod",
            action,
        )
        .with_sha256(sha.map(str::to_string))
    }

    #[test]
    fn records_then_admits_exactly_the_plan() {
        let rec = PlanGuard::recording();
        let mut ex = eff(Stage::Export, "export", None);
        ex.target = "dev".into();
        rec.exported(&ex, Some("s1".into()), Some("d1".into()))
            .unwrap();
        rec.described(&eff(Stage::Store, "store OIC/x/A.iar", Some("s1")));
        rec.described(&eff(Stage::Import, "import new", Some("s1")));
        rec.described(&eff(Stage::Activate, "activate", None));
        let effects = rec.effects();
        assert_eq!(effects.len(), 3);
        assert!(
            effects
                .iter()
                .all(|e| e.stage == Stage::Activate || e.archive.as_deref() == Some("d1"))
        );

        // Applying: a new export of the same content (other bytes) is admitted.
        let app = PlanGuard::applying(effects, &rec.archives());
        app.exported(&ex, Some("s2".into()), Some("d1".into()))
            .unwrap();
        app.admit(&eff(Stage::Store, "store OIC/y/A.iar", Some("s2")))
            .unwrap();
        app.admit(&eff(Stage::Import, "import new", Some("s2")))
            .unwrap();
        // A replace was not planned; a second activation neither.
        assert!(
            app.admit(&eff(Stage::Import, "replace", Some("s2")))
                .is_err()
        );
        app.admit(&eff(Stage::Activate, "activate", None)).unwrap();
        let e = app
            .admit(&eff(Stage::Activate, "activate", None))
            .unwrap_err();
        assert!(e.contains("integration A|01.00.0000"), "{e}");
        assert!(app.effects().is_empty());
        // Another content is refused at the export.
        let e = app
            .exported(&ex, Some("s3".into()), Some("d2".into()))
            .unwrap_err();
        assert!(e.contains("differs from the plan"), "{e}");
    }
}
