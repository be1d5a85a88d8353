//! Building the messages of a run from its report: subject with the outcome and the counts, a body
//! with the failed artifacts first (stage and root cause), then what succeeded; a text and an
//! HTML part; the HTML report attached.
//!
//! The HTML parts are rendered with maud (as report.html and `ferry serve`), which escapes every
//! value it inserts; the attached report is the ledger's `report.html` ([`html_report`]).

use std::collections::{BTreeMap, BTreeSet};

use super::{Attachment, Message};
use maud::{DOCTYPE, PreEscaped, html};

use crate::ledger::report::ArtifactReport;
use crate::ledger::{Report, Stage, StepStatus};

/// When a notification is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Every run.
    Always,
    /// Only when something failed (or the recipe stopped on an error).
    Failure,
}

impl When {
    /// Parses `always` / `failure` (also `on_failure`, `failed`).
    pub fn parse(s: &str) -> Option<When> {
        match s.to_ascii_lowercase().as_str() {
            "always" => Some(When::Always),
            "failure" | "on_failure" | "failed" | "failures" => Some(When::Failure),
            _ => None,
        }
    }
}

/// Which artifacts a message covers.
#[derive(Clone, Debug)]
pub enum Scope {
    /// The whole run.
    All,
    /// Only these artifacts (by code, or by `CODE|VERSION`).
    Only(BTreeSet<String>),
}

impl Scope {
    fn covers(&self, a: &ArtifactReport) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(set) => {
                set.contains(&a.code) || set.contains(&format!("{}|{}", a.code, a.version))
            }
        }
    }
}

/// Who owns which artifact: explicit assignments from the recipe (code or `CODE|VERSION` ->
/// e-mail) first, then the integration's `lastUpdatedBy` when it is an e-mail address.
#[derive(Clone, Debug, Default)]
pub struct Owners {
    /// From the recipe's map.
    pub explicit: BTreeMap<String, String>,
    /// From the integrations (`code` -> `lastUpdatedBy`).
    pub last_updated_by: BTreeMap<String, String>,
}

impl Owners {
    /// The owner of an artifact, if any is known and looks like an e-mail address.
    pub fn owner_of(&self, code: &str, version: &str) -> Option<&str> {
        let id = format!("{code}|{version}");
        self.explicit
            .get(&id)
            .or_else(|| self.explicit.get(code))
            .or_else(|| self.last_updated_by.get(&id))
            .or_else(|| self.last_updated_by.get(code))
            .map(String::as_str)
            .filter(|e| e.contains('@'))
    }
}

/// Artifacts shown in notifications: all but the notification steps themselves.
fn listed(report: &Report) -> impl Iterator<Item = &ArtifactReport> {
    report
        .artifacts
        .iter()
        .filter(|a| a.stages.iter().any(|s| s.stage != Stage::Notify))
}

fn stages_of(a: &ArtifactReport) -> impl Iterator<Item = &crate::ledger::report::StageReport> {
    a.stages.iter().filter(|s| s.stage != Stage::Notify)
}

fn failed(a: &ArtifactReport) -> bool {
    stages_of(a).any(|s| s.status == StepStatus::Failed)
}

fn id_of(a: &ArtifactReport) -> String {
    if a.version.is_empty() {
        a.code.clone()
    } else {
        format!("{}|{}", a.code, a.version)
    }
}

/// True when the run (or the part of it in `scope`) failed.
pub fn has_failures(report: &Report, scope: &Scope) -> bool {
    matches!(
        report.run.outcome.as_deref(),
        Some("error") | Some("interrupted")
    ) && matches!(scope, Scope::All)
        || listed(report).filter(|a| scope.covers(a)).any(failed)
}

/// The subject: outcome, recipe, counts, run id.
pub fn subject(report: &Report, scope: &Scope) -> String {
    let arts: Vec<&ArtifactReport> = listed(report).filter(|a| scope.covers(a)).collect();
    let n_failed = arts.iter().filter(|a| failed(a)).count();
    let outcome = if matches!(scope, Scope::All) && report.run.outcome.as_deref() == Some("error") {
        "ERROR"
    } else if n_failed > 0 {
        "FAILED"
    } else if report.run.dry_run {
        "DRY RUN"
    } else {
        "OK"
    };
    let counts = if n_failed > 0 {
        format!("{n_failed} of {} artifact(s) failed", arts.len())
    } else {
        format!("{} artifact(s) ok", arts.len())
    };
    format!(
        "[ferry] {outcome}: {} - {counts} (run {})",
        report.run.recipe, report.run.id
    )
}

fn status_cell(a: &ArtifactReport) -> String {
    stages_of(a)
        .map(|s| format!("{} {}", s.stage, s.status.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn failure_lines(a: &ArtifactReport) -> Vec<(String, String)> {
    stages_of(a)
        .filter(|s| s.status == StepStatus::Failed)
        .map(|s| {
            let st = s
                .error
                .as_ref()
                .and_then(|e| e.status)
                .map(|c| format!(", HTTP {c}"))
                .unwrap_or_default();
            (
                format!("{} on {}{st}", s.stage, s.target),
                s.error
                    .as_ref()
                    .map(|e| e.message.clone())
                    .unwrap_or_else(|| "failed".into()),
            )
        })
        .collect()
}

/// Where the run moved artifacts: `From dev to prod, backup jobs: nightly (vault backups): PATH`.
fn route(report: &Report) -> Option<String> {
    let mut parts = vec![];
    if !report.from.is_empty() {
        parts.push(format!("from {}", report.from.join(", ")));
    }
    if !report.to.is_empty() {
        parts.push(format!("to {}", report.to.join(", ")));
    }
    let jobs: Vec<String> = report
        .backup_jobs
        .iter()
        .map(|j| format!("{} (vault {}): {}", j.name, j.vault, j.path))
        .collect();
    if !jobs.is_empty() {
        parts.push(format!("backup jobs: {}", jobs.join(", ")));
    }
    let s = parts.join(", ");
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
}

fn text_body(report: &Report, scope: &Scope) -> String {
    let r = &report.run;
    let arts: Vec<&ArtifactReport> = listed(report).filter(|a| scope.covers(a)).collect();
    let (bad, good): (Vec<&ArtifactReport>, Vec<&ArtifactReport>) =
        arts.iter().partition(|a| failed(a));
    let mut t = String::new();
    t.push_str(&format!(
        "ferry run {} of {} by {}: {}{}\n",
        r.id,
        r.recipe,
        r.run_by,
        r.outcome.as_deref().unwrap_or("in progress"),
        if r.dry_run { " (dry run)" } else { "" }
    ));
    t.push_str(&format!(
        "Started {}{}\n",
        r.started.format("%Y-%m-%d %H:%M:%S UTC"),
        r.ended
            .map(|e| format!(", ended {}", e.format("%Y-%m-%d %H:%M:%S UTC")))
            .unwrap_or_default()
    ));
    if let Some(route) = route(report) {
        t.push_str(&format!("{route}\n"));
    }
    if let (Scope::All, Some(m)) = (scope, &r.message) {
        t.push_str(&format!("Stopped on: {m}\n"));
    }
    t.push_str(&format!(
        "{} artifact(s): {} failed, {} succeeded\n",
        arts.len(),
        bad.len(),
        good.len()
    ));
    if !bad.is_empty() {
        t.push_str(&format!("\nFAILED ({}), root cause first:\n", bad.len()));
        for a in &bad {
            t.push_str(&format!("  {} ({})\n", id_of(a), a.kind));
            for (where_, why) in failure_lines(a) {
                t.push_str(&format!("    {where_}: {why}\n"));
            }
        }
    }
    if !good.is_empty() {
        t.push_str(&format!("\nSUCCEEDED ({}):\n", good.len()));
        for a in &good {
            t.push_str(&format!(
                "  {} ({}): {}\n",
                id_of(a),
                a.kind,
                status_cell(a)
            ));
        }
    }
    t.push_str("\nThe full report is attached (HTML).\n");
    t
}

fn html_body(report: &Report, scope: &Scope) -> String {
    let r = &report.run;
    let arts: Vec<&ArtifactReport> = listed(report).filter(|a| scope.covers(a)).collect();
    let (bad, good): (Vec<&ArtifactReport>, Vec<&ArtifactReport>) =
        arts.iter().partition(|a| failed(a));
    // Rows on lines of their own keep the mail's source readable (and its lines short).
    let nl = PreEscaped("\n");
    html! {
        (DOCTYPE) (nl)
        html { body style="font-family:sans-serif" {
            (nl)
            p {
                "ferry run " b { (r.id) } " of " code { (r.recipe) } " by " (r.run_by) ": "
                b { (r.outcome.as_deref().unwrap_or("in progress")) }
                @if r.dry_run { " (dry run)" }
            }
            (nl)
            @if let Some(route) = route(report) { p { (route) } (nl) }
            @if let (Scope::All, Some(m)) = (scope, &r.message) {
                p { "Stopped on: " (m) } (nl)
            }
            @if !bad.is_empty() {
                h3 { "Failed (" (bad.len()) ")" } (nl)
                table border="1" cellpadding="4" cellspacing="0" {
                    (nl)
                    tr { th { "Artifact" } th { "Kind" } th { "Stage" } th { "Root cause" } } (nl)
                    @for a in &bad {
                        @for (where_, why) in failure_lines(a) {
                            tr { td { (id_of(a)) } td { (a.kind) } td { (where_) } td { (why) } } (nl)
                        }
                    }
                }
                (nl)
            }
            @if !good.is_empty() {
                h3 { "Succeeded (" (good.len()) ")" } (nl)
                table border="1" cellpadding="4" cellspacing="0" {
                    (nl)
                    tr { th { "Artifact" } th { "Kind" } th { "Stages" } } (nl)
                    @for a in &good {
                        tr { td { (id_of(a)) } td { (a.kind) } td { (status_cell(a)) } } (nl)
                    }
                }
                (nl)
            }
            p { "The full report is attached." } (nl)
        } }
        (nl)
    }
    .into_string()
}

/// The part of a report in `scope`, without the notification steps, with its counts redone.
pub fn scoped(report: &Report, scope: &Scope) -> Report {
    let mut r = report.clone();
    r.artifacts = listed(report)
        .filter(|a| scope.covers(a))
        .map(|a| {
            let mut a = a.clone();
            a.stages.retain(|s| s.stage != Stage::Notify);
            a
        })
        .collect();
    let ids: BTreeSet<String> = r.artifacts.iter().map(id_of).collect();
    r.failures
        .retain(|f| f.stage != Stage::Notify && ids.contains(&f.artifact));
    let mut s = crate::ledger::Summary::default();
    for a in &r.artifacts {
        for st in &a.stages {
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
                StepStatus::Failed => {}
            }
        }
    }
    s.failed = r.artifacts.iter().filter(|a| failed(a)).count() as u64;
    s.artifacts = r.artifacts.len() as u64;
    r.summary = s;
    r
}

/// The HTML report of a run (or of the part in `scope`): the ledger's `report.html` page for
/// that part of the run.
pub fn html_report(report: &Report, scope: &Scope) -> String {
    scoped(report, scope).to_html()
}

fn message(report: &Report, scope: &Scope, to: Vec<String>) -> Message {
    Message {
        to,
        subject: subject(report, scope),
        text: text_body(report, scope),
        html: html_body(report, scope),
        attachments: vec![Attachment {
            filename: format!("ferry-report-{}.html", report.run.id),
            content_type: "text/html; charset=utf-8".into(),
            content: html_report(report, scope).into_bytes(),
        }],
    }
}

/// The messages of a run: one with the whole report for `admins` (when there are any), and one
/// per owner with only their artifacts (owners who are also admins get only the full one).
/// With [`When::Failure`], a message is only built when its part of the run failed.
pub fn compose(
    report: &Report,
    admins: &[String],
    owners: Option<&Owners>,
    when: When,
) -> Vec<Message> {
    let mut out = vec![];
    let mut admin_set: Vec<String> = vec![];
    for a in admins {
        if !admin_set.iter().any(|x| x.eq_ignore_ascii_case(a)) {
            admin_set.push(a.clone());
        }
    }
    if !admin_set.is_empty() && (when == When::Always || has_failures(report, &Scope::All)) {
        out.push(message(report, &Scope::All, admin_set.clone()));
    }
    if let Some(owners) = owners {
        let mut per: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for a in listed(report) {
            if let Some(o) = owners.owner_of(&a.code, &a.version) {
                per.entry(o.to_ascii_lowercase())
                    .or_default()
                    .insert(id_of(a));
            }
        }
        for (owner, ids) in per {
            if admin_set.iter().any(|x| x.eq_ignore_ascii_case(&owner)) {
                continue;
            }
            let scope = Scope::Only(ids);
            if when == When::Failure && !has_failures(report, &scope) {
                continue;
            }
            out.push(message(report, &scope, vec![owner]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::ArtifactKind;
    use crate::ledger::{RunInfo, Step, StepError};
    use chrono::Utc;

    fn step(code: &str, stage: Stage, status: StepStatus, msg: &str) -> Step {
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
                message: msg.into(),
            }),
            sha256: None,
            started: Utc::now(),
            ended: Utc::now(),
        }
    }

    fn report() -> Report {
        let info = RunInfo::started_now("R1", "migrate.rhai", "ops");
        Report::build(
            info,
            &[
                step("A", Stage::Import, StepStatus::Ok, ""),
                step(
                    "B",
                    Stage::Import,
                    StepStatus::Failed,
                    "connection <X> is a draft",
                ),
                step("C", Stage::Import, StepStatus::Ok, ""),
            ],
        )
    }

    #[test]
    fn admin_message_lists_failures_first_and_escapes_html() {
        let r = report();
        let m = compose(&r, &["ops@example.com".into()], None, When::Always);
        assert_eq!(m.len(), 1);
        assert_eq!(
            m[0].subject,
            "[ferry] FAILED: migrate.rhai - 1 of 3 artifact(s) failed (run R1)"
        );
        let f = m[0].text.find("FAILED (1)").unwrap();
        let s = m[0].text.find("SUCCEEDED (2)").unwrap();
        assert!(f < s, "{}", m[0].text);
        assert!(
            m[0].text
                .contains("    import on prod, HTTP 412: connection <X> is a draft\n"),
            "{}",
            m[0].text
        );
        assert!(m[0].html.contains("connection &lt;X&gt; is a draft"));
        assert!(!m[0].html.contains("<X>"));
        assert_eq!(m[0].attachments.len(), 1);
        assert!(m[0].text.contains("\nTo prod\n"), "{}", m[0].text);
        let mut r = r;
        r.from = vec!["dev".into()];
        r.backup_jobs = vec![crate::ledger::JobRow {
            run: "R1".into(),
            seq: 1,
            vault: "backups".into(),
            name: "nightly".into(),
            path: "2026/<n>".into(),
            date: "2026-11-30".into(),
        }];
        let m = compose(&r, &["ops@example.com".into()], None, When::Always);
        let route = "From dev, to prod, backup jobs: nightly (vault backups): 2026/";
        assert!(
            m[0].text.contains(&format!("{route}<n>\n")),
            "{}",
            m[0].text
        );
        assert!(
            m[0].html.contains(&format!("<p>{route}&lt;n&gt;</p>")),
            "{}",
            m[0].html
        );
    }

    #[test]
    fn owners_get_only_their_artifacts_and_when_failure_filters() {
        let r = report();
        let mut o = Owners::default();
        o.explicit.insert("A".into(), "ann@example.com".into());
        o.last_updated_by
            .insert("B".into(), "bob@example.com".into());
        o.last_updated_by.insert("C".into(), "not-an-email".into());
        let all = compose(&r, &[], Some(&o), When::Always);
        assert_eq!(all.len(), 2);
        let ann = all.iter().find(|m| m.to == ["ann@example.com"]).unwrap();
        assert!(ann.text.contains("A|01.00.0000") && !ann.text.contains("B|01.00.0000"));
        assert!(ann.subject.starts_with("[ferry] OK: "), "{}", ann.subject);
        let fail = compose(&r, &["ops@example.com".into()], Some(&o), When::Failure);
        let tos: Vec<_> = fail.iter().map(|m| m.to.join(",")).collect();
        assert_eq!(tos, ["ops@example.com", "bob@example.com"]);
    }
}
