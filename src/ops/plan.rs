//! A plan: what a dry run's report says would be done, one line per planned, skipped or failed
//! step (`ferry plan`, `ferry rollback --dry-run`, the REPL's `:plan`).

use serde::Serialize;

use crate::ledger::report::render_table;
use crate::ledger::{Report, Stage, StepStatus};

/// One line of a plan.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PlanLine {
    pub artifact: String,
    pub kind: String,
    pub stage: Stage,
    pub target: String,
    /// `export`, `store`, `import new`, `replace`, `skip`, `activate`, ...
    pub action: String,
    pub reason: String,
    /// True when it would change something (not a read, not a skip).
    pub change: bool,
}

/// The plan of a report: one line per planned, skipped or failed step.
pub fn plan_lines(report: &Report) -> Vec<PlanLine> {
    let mut out = vec![];
    for a in &report.artifacts {
        let id = if a.version.is_empty() {
            a.code.clone()
        } else {
            format!("{}|{}", a.code, a.version)
        };
        for s in &a.stages {
            let (action, change) = match s.status {
                StepStatus::Planned => (
                    s.action.clone(),
                    !matches!(s.stage, Stage::Export | Stage::Verify),
                ),
                StepStatus::Skipped => ("skip".to_string(), false),
                StepStatus::Failed => ("FAILED".to_string(), false),
                StepStatus::Ok => continue,
            };
            let mut reason = match (&s.error, &s.reason) {
                (Some(e), _) => e.message.clone(),
                (None, Some(r)) => r.clone(),
                (None, None) => String::new(),
            };
            // "store PATH", "fetch and verify PATH": the path is the reason's business.
            let mut action = action;
            for verb in ["store ", "fetch and verify "] {
                if let Some(rest) = action.strip_prefix(verb) {
                    if reason.is_empty() {
                        reason = rest.to_string();
                    }
                    action = verb.trim_end().to_string();
                    break;
                }
            }
            out.push(PlanLine {
                artifact: id.clone(),
                kind: a.kind.as_str().to_string(),
                stage: s.stage,
                target: s.target.clone(),
                action,
                reason,
                change,
            });
        }
    }
    out
}

/// The plan as a table.
pub fn plan_table(lines: &[PlanLine]) -> String {
    let mut rows = vec![vec![
        "ARTIFACT".to_string(),
        "KIND".into(),
        "TARGET".into(),
        "ACTION".into(),
        "REASON".into(),
    ]];
    for l in lines {
        rows.push(vec![
            l.artifact.clone(),
            l.kind.clone(),
            l.target.clone(),
            l.action.clone(),
            l.reason.clone(),
        ]);
    }
    render_table(&rows)
}
