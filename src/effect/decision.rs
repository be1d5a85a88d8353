//! Typed decisions: why an effect was skipped ([`SkipReason`]) and what a check decided to do
//! ([`Action`]). Code matches on the variants; people read their `Display`. The ledger stores the
//! text, and [`SkipReason::recorded_done_in_run`] reads the one reason resume needs back, so a
//! rewording is caught by the round-trip test below rather than by a broken resume.

use std::fmt;

/// The text of a "done in run" reason, up to the run id.
const DONE_IN_RUN: &str = "done in run ";

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// Why an effect was not performed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// The run being resumed performed it with the same inputs.
    DoneInRun { run: String },
    /// The target already holds an archive of this content: `sha256` is the content digest
    /// (`vault::content_hash`), as two exports of the same content differ byte for byte.
    Unchanged { sha256: String },
    /// It exists on the target (with this status) and overwrite is off.
    Present { target: String, status: String },
    /// The vault job already holds it with the same checksum; `run` is the resumed run that
    /// stored it, if any.
    InJob { run: Option<String> },
    /// The integration is already active.
    AlreadyActive,
    /// Already in the wanted state (`CONFIGURED`, ...).
    AlreadyIn { status: String },
    /// Nothing to remove: it is not on the target.
    NotOn { target: String },
    /// A restore (a replace) left it inactive, as wanted.
    InactiveAfterRestore,
    /// The target's schedule already has this definition (or state).
    SameSchedule { target: String },
    /// The import options leave schedules alone (`schedules: "skip"`), or its integration was
    /// not imported.
    ScheduleLeft { why: String },
    /// Not exported: the source lists it as the earlier complete backup recorded it (same
    /// `lastUpdated` and status), so the backup job shares that backup's `file`.
    UnchangedSince { file: String, updated: String },
    /// Any other reason, in words.
    Other(String),
}

impl SkipReason {
    /// True when the artifact is on the target as wanted after this skip, so what follows an
    /// import (its activation) still follows.
    pub fn import_continues(&self) -> bool {
        matches!(
            self,
            SkipReason::Unchanged { .. }
                | SkipReason::DoneInRun { .. }
                | SkipReason::InJob { run: Some(_) }
        )
    }

    /// True when an earlier run (resumed by this one) did the work.
    pub fn done_in_run(&self) -> bool {
        matches!(
            self,
            SkipReason::DoneInRun { .. } | SkipReason::InJob { run: Some(_) }
        )
    }

    /// Reads a reason recorded in the ledger: true when it is one of the "done in run" reasons
    /// (what resume counts as done).
    pub fn recorded_done_in_run(text: &str) -> bool {
        text.starts_with(DONE_IN_RUN)
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::DoneInRun { run } => write!(f, "{DONE_IN_RUN}{run}"),
            SkipReason::Unchanged { sha256 } => {
                write!(
                    f,
                    "unchanged by checksum (content sha256 {}…)",
                    short(sha256)
                )
            }
            SkipReason::Present { target, status } => {
                write!(f, "present on {target} ({status}); overwrite is off")
            }
            SkipReason::InJob { run: Some(run) } => {
                write!(f, "{DONE_IN_RUN}{run} (already in the job)")
            }
            SkipReason::InJob { run: None } => {
                write!(f, "already in the job with the same checksum")
            }
            SkipReason::AlreadyActive => write!(f, "already active"),
            SkipReason::AlreadyIn { status } => write!(f, "already {status}"),
            SkipReason::NotOn { target } => write!(f, "not on {target}"),
            SkipReason::InactiveAfterRestore => write!(f, "inactive after the restore"),
            SkipReason::SameSchedule { target } => write!(f, "same schedule on {target}"),
            SkipReason::ScheduleLeft { why } => write!(f, "schedule left as it is: {why}"),
            SkipReason::UnchangedSince { file, updated } => write!(
                f,
                "unchanged since the backup in {file} (lastUpdated {updated}); not exported"
            ),
            SkipReason::Other(s) => f.write_str(s),
        }
    }
}

impl From<SkipReason> for String {
    fn from(r: SkipReason) -> String {
        r.to_string()
    }
}

/// What a check decided to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Import an archive that is not on the target.
    ImportNew,
    /// Replace what the target holds.
    Replace,
    /// Put back a saved archive (rollback): replace or import new.
    Restore {
        new: bool,
    },
    /// Stop the schedule of an integration (a step of a replace).
    StopSchedule,
    /// Create the schedule of an integration, or replace its definition (`POST`, on 409 `PUT
    /// …/schedule`).
    PutSchedule,
    /// Start (or resume) a schedule.
    StartSchedule,
    /// Start and pause a schedule (`HOLD`).
    PauseSchedule,
    /// Stop and delete a schedule (rollback of one the run created).
    DeleteSchedule,
    Activate,
    Deactivate,
    Delete,
    /// Any other action, in words.
    Other(String),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::ImportNew => f.write_str("import new"),
            Action::Replace => f.write_str("replace"),
            Action::Restore { new: true } => f.write_str("import new (restore)"),
            Action::Restore { new: false } => f.write_str("replace (restore)"),
            Action::StopSchedule => f.write_str("stop schedule"),
            Action::PutSchedule => f.write_str("put schedule"),
            Action::StartSchedule => f.write_str("start schedule"),
            Action::PauseSchedule => f.write_str("pause schedule"),
            Action::DeleteSchedule => f.write_str("delete schedule"),
            Action::Activate => f.write_str("activate"),
            Action::Deactivate => f.write_str("deactivate"),
            Action::Delete => f.write_str("delete"),
            Action::Other(s) => f.write_str(s),
        }
    }
}

/// What a check made before an effect (a read of the target) decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Perform it, as this action, for this reason.
    Go {
        action: Action,
        reason: Option<String>,
    },
    /// Nothing to do, for this reason.
    Skip(SkipReason),
}

impl Decision {
    pub fn go(action: Action, reason: impl Into<String>) -> Decision {
        Decision::Go {
            action,
            reason: Some(reason.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn done_in_run_reasons_are_read_back_from_their_text() {
        let done = [
            SkipReason::DoneInRun { run: "r1".into() },
            SkipReason::InJob {
                run: Some("r1".into()),
            },
        ];
        for r in done {
            assert!(r.done_in_run());
            assert!(SkipReason::recorded_done_in_run(&r.to_string()), "{r}");
        }
        let not_done = [
            SkipReason::Unchanged {
                sha256: "ab".into(),
            },
            SkipReason::InJob { run: None },
            SkipReason::AlreadyActive,
            SkipReason::Other("done".into()),
        ];
        for r in not_done {
            assert!(!r.done_in_run());
            assert!(!SkipReason::recorded_done_in_run(&r.to_string()), "{r}");
        }
    }

    #[test]
    fn import_continues_after_unchanged_and_done_only() {
        assert!(SkipReason::Unchanged { sha256: "x".into() }.import_continues());
        assert!(
            !SkipReason::Present {
                target: "p".into(),
                status: "ACTIVATED".into()
            }
            .import_continues()
        );
    }
}
