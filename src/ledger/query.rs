//! The ledger as recipes read it (`ledger::run`, `ledger::failed`, `ledger::errors`): a run with
//! its steps, what failed and stayed failed in a run, and the script's error filter.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{ErrorFilter, Ledger, LedgerError, Step, StepStatus, stage_from_str};

/// Parses a `since` value: a date (`2026-11-01`) or an RFC 3339 time.
pub fn parse_since(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    s.parse::<NaiveDate>()
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// One run with its `steps` (the run's fields, the step count replaced by the steps), or `None`.
pub fn run_detail(db: &Ledger, id: &str) -> Result<Option<serde_json::Value>, LedgerError> {
    let Some(row) = db.run(id)? else {
        return Ok(None);
    };
    let mut v = serde_json::to_value(&row).unwrap_or_default();
    v["steps"] = serde_json::to_value(db.steps(id)?).unwrap_or_default();
    Ok(Some(v))
}

/// The latest real run (not a plan, not a dry run) of `recipe` other than `this`, with its
/// steps (`ledger::last_run`), or `None`.
pub fn last_run_detail(
    db: &Ledger,
    recipe: &str,
    this: &str,
) -> Result<Option<serde_json::Value>, LedgerError> {
    match db.last_run(Some(recipe), Some(this))? {
        Some(r) => run_detail(db, &r.info.id),
        None => Ok(None),
    }
}

/// An artifact whose last step of a stage (on a target) failed in a run.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FailedStep {
    pub id: String,
    pub kind: String,
    pub code: String,
    pub version: String,
    pub stage: String,
    pub target: String,
    /// The error message (empty when none was recorded).
    pub error: String,
    /// The HTTP status, when there was one.
    pub status: Option<u16>,
}

/// What failed in `steps` and did not succeed later: the last step of each artifact, stage and
/// target, when it failed (ordered by artifact id, stage, target).
pub fn still_failed(steps: &[Step]) -> Vec<FailedStep> {
    let mut last: BTreeMap<(String, &str, &str), &Step> = BTreeMap::new();
    for s in steps {
        last.insert((s.key().id(), s.stage.as_str(), &s.target), s);
    }
    last.values()
        .filter(|s| s.status == StepStatus::Failed)
        .map(|s| FailedStep {
            id: s.key().id(),
            kind: s.kind.as_str().to_string(),
            code: s.code.clone(),
            version: s.version.clone(),
            stage: s.stage.as_str().to_string(),
            target: s.target.clone(),
            error: s
                .error
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_default(),
            status: s.error.as_ref().and_then(|e| e.status),
        })
        .collect()
}

/// The filter of `ledger::errors(filter)` (unknown keys refused).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorQuery {
    pub run: Option<String>,
    /// A date (`2026-11-01`) or an RFC 3339 time.
    pub since: Option<String>,
    /// A stage name (`import`...).
    pub stage: Option<String>,
    pub limit: Option<i64>,
}

impl ErrorQuery {
    /// The ledger filter; a bad date or an unknown stage is an error (its message).
    pub fn filter(&self) -> Result<ErrorFilter, String> {
        let since = match &self.since {
            Some(v) => Some(
                parse_since(v)
                    .ok_or_else(|| format!("`since` must be a date or RFC 3339 time, found {v}"))?,
            ),
            None => None,
        };
        let stage = match &self.stage {
            Some(v) => Some(stage_from_str(v).ok_or_else(|| format!("unknown stage `{v}`"))?),
            None => None,
        };
        Ok(ErrorFilter {
            run: self.run.clone(),
            since,
            stage,
            limit: self.limit.map(|n| n.max(0) as u64),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::ArtifactKind;
    use crate::ledger::{Stage, StepError};

    fn step(code: &str, stage: Stage, status: StepStatus, seq: u64) -> Step {
        let t = Utc::now();
        Step {
            seq,
            stage,
            kind: ArtifactKind::Integration,
            code: code.into(),
            version: "01.00.0000".into(),
            target: "prod".into(),
            action: "import".into(),
            reason: None,
            status,
            attempts: 1,
            error: (status == StepStatus::Failed).then(|| StepError {
                kind: "http".into(),
                status: Some(502),
                message: "bad gateway".into(),
            }),
            sha256: None,
            started: t,
            ended: t,
        }
    }

    #[test]
    fn failed_then_done_is_not_failed() {
        let steps = [
            step("A", Stage::Import, StepStatus::Failed, 1),
            step("B", Stage::Import, StepStatus::Failed, 2),
            step("A", Stage::Import, StepStatus::Ok, 3),
            step("A", Stage::Activate, StepStatus::Failed, 4),
        ];
        let f = still_failed(&steps);
        let got: Vec<(&str, &str)> = f
            .iter()
            .map(|x| (x.code.as_str(), x.stage.as_str()))
            .collect();
        assert_eq!(got, [("A", "activate"), ("B", "import")]);
        assert_eq!(f[1].status, Some(502));
        assert_eq!(f[1].error, "bad gateway");
        assert_eq!(f[1].kind, "integration");
    }

    #[test]
    fn since_and_stage() {
        assert!(parse_since("2026-11-01").is_some());
        assert!(parse_since("2026-11-01T10:00:00+02:00").is_some());
        assert!(parse_since("yesterday").is_none());
        let q = ErrorQuery {
            since: Some("2026-11-01".into()),
            stage: Some("Import".into()),
            limit: Some(-3),
            ..Default::default()
        };
        let f = q.filter().unwrap();
        assert_eq!(f.stage, Some(Stage::Import));
        assert_eq!(f.limit, Some(0));
        let bad = ErrorQuery {
            stage: Some("nope".into()),
            ..Default::default()
        };
        assert_eq!(bad.filter().unwrap_err(), "unknown stage `nope`");
        let bad = ErrorQuery {
            since: Some("soon".into()),
            ..Default::default()
        };
        assert!(bad.filter().unwrap_err().contains("found soon"));
    }

    #[test]
    fn the_last_run_is_an_earlier_one_of_the_same_recipe_with_its_steps() {
        let d = tempfile::tempdir().unwrap();
        let loc = crate::ledger::LedgerLocation::in_state_dir(d.path());
        let extra = || crate::ledger::RunExtra {
            kind: "run".into(),
            ..Default::default()
        };
        for (id, recipe) in [("r1", "m.rhai"), ("r2", "other.rhai"), ("r3", "m.rhai")] {
            let info = crate::ledger::RunInfo::started_now(id, recipe, "t");
            crate::ledger::RunRecord::create_with(d.path(), &loc, info, extra(), vec![]).unwrap();
        }
        let db = Ledger::open_at(&loc).unwrap();
        let last = last_run_detail(&db, "m.rhai", "r3").unwrap().expect("r1");
        assert_eq!(
            (last["id"].as_str(), last["steps"].as_array().map(Vec::len)),
            (Some("r1"), Some(0))
        );
        assert!(
            last_run_detail(&db, "m.rhai", "r1")
                .unwrap()
                .is_some_and(|r| r["id"] == "r3")
        );
        assert!(last_run_detail(&db, "none.rhai", "r3").unwrap().is_none());
    }
}
