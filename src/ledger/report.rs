//! Run reports: the JSON document (`report.json`, `--json`) and the summary table printed at the
//! end of a run.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{JobRow, RunExtra, RunInfo, Stage, Step, StepError, StepStatus};
use crate::artifact::ArtifactKind;

/// Counts of a run, per effect.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub exported: u64,
    pub backed_up: u64,
    pub verified: u64,
    pub imported: u64,
    pub activated: u64,
    pub deactivated: u64,
    pub planned: u64,
    pub skipped: u64,
    /// Artifacts with at least one failed stage.
    pub failed: u64,
    pub artifacts: u64,
}

/// One stage of one artifact in the report.
#[derive(Clone, Debug, Serialize)]
pub struct StageReport {
    pub stage: Stage,
    pub target: String,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub status: StepStatus,
    pub attempts: u32,
    pub duration_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
}

/// One artifact in the report.
#[derive(Clone, Debug, Serialize)]
pub struct ArtifactReport {
    pub kind: ArtifactKind,
    pub code: String,
    pub version: String,
    pub sha256: Option<String>,
    pub stages: Vec<StageReport>,
}

impl ArtifactReport {
    /// `ok`, `failed`, `planned` or `skipped`, from the stages.
    pub fn outcome(&self) -> &'static str {
        if self.stages.iter().any(|s| s.status == StepStatus::Failed) {
            "failed"
        } else if self.stages.iter().any(|s| s.status == StepStatus::Planned) {
            "planned"
        } else if self.stages.iter().all(|s| s.status == StepStatus::Skipped) {
            "skipped"
        } else {
            "ok"
        }
    }
}

/// A failure, root cause first.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    pub artifact: String,
    pub kind: ArtifactKind,
    pub stage: Stage,
    pub target: String,
    /// The innermost cause of the error (what the server or the system said), without the
    /// context around it.
    pub root_cause: String,
    pub error: StepError,
}

/// The innermost cause in an error message: the text after the last `HTTP nnn: ` (what the
/// server said) or after the last `: ` of a chain of contexts, when that leaves a sentence;
/// else the whole message.
pub fn root_cause(message: &str) -> String {
    let re = regex::Regex::new(r"HTTP \d{3}: ").expect("static regex");
    if let Some(m) = re.find_iter(message).last() {
        let tail = message[m.end()..].trim();
        if !tail.is_empty() {
            return tail.to_string();
        }
    }
    message.trim().to_string()
}

/// The instances the steps of `stages` worked on, sorted, once each.
pub fn targets(steps: &[Step], stages: &[Stage]) -> Vec<String> {
    let mut v: Vec<String> = steps
        .iter()
        .filter(|s| stages.contains(&s.stage))
        .map(|s| s.target.clone())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The report of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub run: RunInfo,
    /// The run's kind (`run`, `plan`, `rollback`), profiles and the run it resumes.
    #[serde(flatten)]
    pub extra: RunExtra,
    /// The instances the run exported from.
    pub from: Vec<String>,
    /// The instances it imported into, activated or deactivated on.
    pub to: Vec<String>,
    /// The backup jobs it wrote (vault, job name, path).
    pub backup_jobs: Vec<JobRow>,
    pub summary: Summary,
    pub artifacts: Vec<ArtifactReport>,
    pub failures: Vec<Failure>,
}

impl Report {
    /// Builds the report from the run's steps.
    pub fn build(run: RunInfo, steps: &[Step]) -> Report {
        Report::build_from(run, &mut steps.iter().cloned())
    }

    /// Builds the report from the run's steps, taken one at a time (none is kept but what the
    /// report holds).
    pub fn build_from(run: RunInfo, steps: &mut dyn Iterator<Item = Step>) -> Report {
        let mut from: Vec<String> = vec![];
        let mut to: Vec<String> = vec![];
        let mut by_key: BTreeMap<(ArtifactKind, String, String), ArtifactReport> = BTreeMap::new();
        let mut order: Vec<(ArtifactKind, String, String)> = vec![];
        let mut s = Summary::default();
        let mut failures = vec![];
        for st in steps {
            let list = match st.stage {
                Stage::Export => Some(&mut from),
                Stage::Import | Stage::Activate | Stage::Deactivate => Some(&mut to),
                _ => None,
            };
            if let Some(list) = list
                && !list.contains(&st.target)
            {
                list.push(st.target.clone());
            }
            let k = (st.kind, st.code.clone(), st.version.clone());
            let entry = by_key.entry(k.clone()).or_insert_with(|| {
                order.push(k.clone());
                ArtifactReport {
                    kind: st.kind,
                    code: st.code.clone(),
                    version: st.version.clone(),
                    sha256: None,
                    stages: vec![],
                }
            });
            if entry.sha256.is_none() {
                entry.sha256 = st.sha256.clone();
            }
            entry.stages.push(StageReport {
                stage: st.stage,
                target: st.target.clone(),
                action: st.action.clone(),
                reason: st.reason.clone(),
                status: st.status,
                attempts: st.attempts,
                duration_ms: st.duration_ms(),
                error: st.error.clone(),
            });
            match st.status {
                StepStatus::Ok => match st.stage {
                    Stage::Export => s.exported += 1,
                    Stage::Store => s.backed_up += 1,
                    Stage::Verify => s.verified += 1,
                    Stage::Import => s.imported += 1,
                    Stage::Activate => s.activated += 1,
                    Stage::Deactivate => s.deactivated += 1,
                    _ => {}
                },
                StepStatus::Planned => s.planned += 1,
                StepStatus::Skipped => s.skipped += 1,
                StepStatus::Failed => {
                    if let Some(e) = &st.error {
                        failures.push(Failure {
                            artifact: st.key().id(),
                            kind: st.kind,
                            stage: st.stage,
                            target: st.target.clone(),
                            root_cause: root_cause(&e.message),
                            error: e.clone(),
                        });
                    }
                }
            }
        }
        let artifacts: Vec<ArtifactReport> = order
            .into_iter()
            .filter_map(|k| by_key.remove(&k))
            .collect();
        s.failed = artifacts.iter().filter(|a| a.outcome() == "failed").count() as u64;
        s.artifacts = artifacts.len() as u64;
        from.sort();
        to.sort();
        Report {
            run,
            extra: RunExtra::default(),
            from,
            to,
            backup_jobs: vec![],
            summary: s,
            artifacts,
            failures,
        }
    }

    pub fn to_json_pretty(&self) -> String {
        let mut out = String::new();
        match self.write_json_pretty(&mut |part: &str| {
            out.push_str(part);
            Ok(())
        }) {
            Ok(()) => out,
            Err(e) => format!("{{\"error\":\"{e}\"}}"),
        }
    }

    /// The text of [`Report::to_json_pretty`], handed to `sink` in parts as it is made (the
    /// report of a run of 10,000 artifacts is megabytes: it is never held whole): the document
    /// up to the artifacts, each artifact, then the rest.
    pub fn write_json_pretty(
        &self,
        sink: &mut dyn FnMut(&str) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let head = Report {
            run: self.run.clone(),
            extra: self.extra.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            backup_jobs: self.backup_jobs.clone(),
            summary: self.summary.clone(),
            artifacts: vec![],
            failures: self.failures.clone(),
        };
        let text = serde_json::to_string_pretty(&head)?;
        // The one `"artifacts": []` of the document (a string's quotes are escaped in JSON).
        const SLOT: &str = "\n  \"artifacts\": []";
        let (before, after) = text.split_once(SLOT).unwrap_or((text.as_str(), ""));
        sink(before)?;
        if text.len() == before.len() {
            return Ok(());
        }
        sink("\n  \"artifacts\": [")?;
        for (i, a) in self.artifacts.iter().enumerate() {
            sink(if i == 0 { "\n    " } else { ",\n    " })?;
            // each artifact as the whole document would indent it: two levels deeper
            let one = serde_json::to_string_pretty(a)?;
            sink(&one.replace('\n', "\n    "))?;
        }
        sink(if self.artifacts.is_empty() {
            "]"
        } else {
            "\n  ]"
        })?;
        sink(after)
    }

    /// The table printed at the end of a run: one row per artifact, one column per stage.
    pub fn summary_table(&self) -> String {
        let stages = self.stages();
        let mut header = vec!["ARTIFACT".to_string(), "KIND".to_string()];
        header.extend(stages.iter().map(|s| s.as_str().to_uppercase()));
        let mut rows = vec![header];
        for a in &self.artifacts {
            let id = if a.version.is_empty() {
                a.code.clone()
            } else {
                format!("{}|{}", a.code, a.version)
            };
            let mut row = vec![id, a.kind.as_str().to_string()];
            for st in &stages {
                let cell: Vec<&str> = a
                    .stages
                    .iter()
                    .filter(|s| s.stage == *st)
                    .map(|s| s.status.as_str())
                    .collect();
                row.push(if cell.is_empty() {
                    "-".to_string()
                } else {
                    cell.join(",")
                });
            }
            rows.push(row);
        }
        let mut out = render_table(&rows);
        let s = &self.summary;
        out.push_str(&format!(
            "\n{} artifact(s): {} exported, {} backed up, {} verified, {} imported, {} activated, {} failed{}\n",
            s.artifacts,
            s.exported,
            s.backed_up,
            s.verified,
            s.imported,
            s.activated,
            s.failed,
            if s.planned > 0 { format!(", {} planned (dry run)", s.planned) } else { String::new() }
        ));
        if !self.failures.is_empty() {
            out.push_str("\nFailures (root cause first):\n");
            for f in &self.failures {
                let status = f
                    .error
                    .status
                    .map(|c| format!(" HTTP {c}"))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "  {} [{} on {}]{}: {}\n",
                    f.artifact, f.stage, f.target, status, f.root_cause
                ));
                if f.root_cause != f.error.message.trim() {
                    out.push_str(&format!("      ({})\n", f.error.message));
                }
            }
        }
        out
    }
}

/// Shows control characters (terminal escapes from server text) as `\u{1b}`; newlines and tabs
/// stay.
pub fn escape_controls(s: &str) -> String {
    if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Renders rows as a left-aligned table with two spaces between columns, no borders, the first
/// row as given (a header when the caller puts one there), control characters escaped. The one
/// table renderer of the command line (`ferry runs`, `errors`, `vault jobs`, plans, summaries):
/// comfy-table lays it out (display widths, so wide characters line up).
pub fn render_table(rows: &[Vec<String>]) -> String {
    use comfy_table::{ContentArrangement, Table, presets::NOTHING};
    let mut t = Table::new();
    t.load_style(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    for r in rows {
        // One line per row: a newline inside a cell would start a row of its own.
        t.add_row(r.iter().map(|c| escape_controls(c).replace('\n', " ")));
    }
    let n = t.column_count();
    for (i, col) in t.column_iter_mut().enumerate() {
        col.set_padding((0, if i + 1 == n { 0 } else { 2 }));
    }
    let mut out = String::new();
    for line in t.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn step(stage: Stage, code: &str, status: StepStatus) -> Step {
        Step {
            seq: 0,
            stage,
            kind: ArtifactKind::Integration,
            code: code.into(),
            version: "01.00.0000".into(),
            target: "prod".into(),
            action: stage.as_str().into(),
            reason: None,
            status,
            attempts: 1,
            error: (status == StepStatus::Failed).then(|| StepError {
                kind: "http".into(),
                status: Some(412),
                message: "draft connection".into(),
            }),
            sha256: Some("ab".into()),
            started: Utc::now(),
            ended: Utc::now(),
        }
    }

    #[test]
    fn tables_align_columns_two_spaces_apart() {
        let rows = vec![
            vec!["RUN".to_string(), "BY".into(), "OUTCOME".into()],
            vec!["20261130-1".into(), "ana".into(), "ok".into()],
            vec!["r2".into(), "bo\u{1b}[31m".into()],
        ];
        assert_eq!(
            render_table(&rows),
            "RUN         BY            OUTCOME\n20261130-1  ana           ok\nr2          bo\\u{1b}[31m\n"
        );
        assert_eq!(render_table(&[]), "");
    }

    #[test]
    fn root_cause_is_what_the_server_said() {
        assert_eq!(
            root_cause("prod: PATCH /x: HTTP 412: connection HR_DB is a draft"),
            "connection HR_DB is a draft"
        );
        assert_eq!(root_cause("disk full"), "disk full");
        assert_eq!(root_cause("prod: HTTP 500: "), "prod: HTTP 500:");
    }

    #[test]
    fn json_written_in_parts_is_the_whole_document() {
        let info = RunInfo {
            sandbox: true,
            message: Some("two\nlines".into()),
            ..RunInfo::started_now("r", "x \"artifacts\": [] .rhai", "me")
        };
        let steps = vec![
            step(Stage::Export, "A", StepStatus::Ok),
            step(Stage::Export, "B", StepStatus::Ok),
            step(Stage::Import, "B", StepStatus::Failed),
        ];
        for r in [
            Report::build(info.clone(), &steps),
            Report::build(info.clone(), &[]),
        ] {
            assert_eq!(
                r.to_json_pretty(),
                serde_json::to_string_pretty(&r).unwrap()
            );
            let html = r.to_html();
            assert!(!html.contains("ferry:artifact-rows"), "{html}");
            let table = &html[html.find("id=\"artifacts\"").unwrap()..];
            let table = &table[..table.find("</table>").unwrap()];
            for a in &r.artifacts {
                let cell = format!("<b>{}|{}</b>", a.code, a.version);
                assert_eq!(table.matches(&cell).count(), 1, "{html}");
            }
            assert_eq!(table.matches("<tr>").count(), r.artifacts.len() + 1);
            assert!(html.ends_with("</body>\n</html>\n"), "{html}");
        }
    }

    #[test]
    fn counts_and_failures() {
        let info = RunInfo {
            sandbox: true,
            ..RunInfo::started_now("r", "x.rhai", "me")
        };
        let steps = vec![
            step(Stage::Export, "A", StepStatus::Ok),
            step(Stage::Export, "B", StepStatus::Ok),
            step(Stage::Import, "A", StepStatus::Ok),
            step(Stage::Import, "B", StepStatus::Failed),
        ];
        let r = Report::build(info, &steps);
        assert_eq!(r.summary.exported, 2);
        assert_eq!(r.summary.imported, 1);
        assert_eq!(r.summary.failed, 1);
        assert_eq!(r.failures.len(), 1);
        assert_eq!(r.failures[0].artifact, "B|01.00.0000");
        let t = r.summary_table();
        assert!(
            t.contains("B|01.00.0000  integration  ok      failed"),
            "{t}"
        );
        assert!(
            t.contains("B|01.00.0000 [import on prod] HTTP 412: draft connection"),
            "{t}"
        );
    }
}
