//! `report.html`: one self-contained page (no scripts, no external resources, inline styles so
//! mail clients keep them) with the outcome, who ran it, from which instance to which and into
//! which backup jobs, counts per stage, the artifacts with each stage's status and duration, and
//! the failures with their root cause first. Rendered with maud (as `ferry serve`'s pages), which
//! escapes every value it inserts.

use std::collections::BTreeMap;
use std::io;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::report::{ArtifactReport, Report};
use super::{Stage, StepStatus};

/// Where the artifacts' rows go in the page (a comment no text of a report can make: text is
/// escaped).
const ROWS: &str = "<!--ferry:artifact-rows-->";

/// Escapes text for HTML element content and attribute values, as maud does for the pages (for
/// fragments written by hand, e.g. report sections).
pub fn escape(s: &str) -> String {
    html! { (s) }.into_string()
}

/// A line break between table rows, so each row of the page is one line of its source.
const NL: PreEscaped<&str> = PreEscaped("\n");

fn status_style(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Ok => "background:#e6f4ea;color:#137333",
        StepStatus::Failed => "background:#fce8e6;color:#a50e0e;font-weight:bold",
        StepStatus::Skipped => "background:#f1f3f4;color:#5f6368",
        StepStatus::Planned => "background:#e8f0fe;color:#1a73e8",
    }
}

fn outcome_style(o: &str) -> &'static str {
    match o {
        "ok" => "background:#137333;color:#ffffff",
        "planned" => "background:#1a73e8;color:#ffffff",
        _ => "background:#a50e0e;color:#ffffff",
    }
}

fn fmt_ms(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

const TD: &str = "padding:4px 8px;border:1px solid #dadce0;vertical-align:top";
const TH: &str = "padding:4px 8px;border:1px solid #dadce0;background:#f8f9fa;text-align:left;vertical-align:top";

fn fmt_ms_or_dash(ms: Option<i64>) -> String {
    ms.map(fmt_ms).unwrap_or_else(|| "-".into())
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

const H2: &str = "font-size:17px;margin:16px 0 8px 0";
const TABLE: &str = "border-collapse:collapse;margin:0 0 16px 0";

impl Report {
    fn facts(&self) -> Markup {
        let r = &self.run;
        let duration = fmt_ms_or_dash(r.ended.map(|e| (e - r.started).num_milliseconds()));
        let started = r.started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut facts: Vec<(&str, String)> = vec![
            ("Recipe", r.recipe.clone()),
            ("Run by", r.run_by.clone()),
            ("From", list_or_none(&self.from)),
            ("To", list_or_none(&self.to)),
        ];
        let jobs: Vec<String> = self
            .backup_jobs
            .iter()
            .map(|j| format!("{} (vault {}): {}", j.name, j.vault, j.path))
            .collect();
        facts.push(("Backup jobs", list_or_none(&jobs)));
        facts.extend([
            ("Started", started),
            ("Duration", duration),
            ("ferry", r.ferry_version.clone()),
        ]);
        if !self.extra.profiles.is_empty() {
            facts.push(("Profiles", self.extra.profiles.join(", ")));
        }
        if let Some(p) = &self.extra.resumes {
            facts.push(("Resumes run", p.clone()));
        }
        if r.dry_run {
            facts.push(("Mode", "dry run (nothing was changed)".into()));
        }
        if let Some(m) = &r.message {
            facts.push(("Stopped on", m.clone()));
        }
        html! {
            table id="facts" style="border-collapse:collapse;margin:8px 0 16px 0" {
                (NL)
                @for (k, v) in &facts {
                    tr { th style=(TH) { (k) } td style=(TD) { (v) } } (NL)
                }
            }
        }
    }

    fn failures_html(&self) -> Markup {
        html! {
            h2 style=(H2) { "Failures (" (self.failures.len()) ")" } (NL)
            @if self.failures.is_empty() {
                p style="margin:0 0 16px 0" { "None." }
            } @else {
                table id="failures" style=(TABLE) {
                    (NL)
                    tr { th style=(TH) { "Root cause" } th style=(TH) { "Artifact" } th style=(TH) { "Stage" } th style=(TH) { "Target" } } (NL)
                    @for f in &self.failures {
                        tr class="failure" {
                            td style=(TD) {
                                span style="color:#a50e0e" {
                                    b { @if let Some(c) = f.error.status { "HTTP " (c) " " } (f.error.kind) } ": " (f.root_cause)
                                }
                                @if f.root_cause != f.error.message.trim() {
                                    br; span style="color:#5f6368;font-size:12px" { (f.error.message) }
                                }
                            }
                            td style=(TD) { (f.kind.as_str()) " " (f.artifact) }
                            td style=(TD) { (f.stage.as_str()) }
                            td style=(TD) { (f.target) }
                        } (NL)
                    }
                }
            }
            (NL)
        }
    }

    fn counts_html(counts: &BTreeMap<Stage, [u64; 4]>) -> Markup {
        let right = format!("{TD};text-align:right");
        let bad = format!("{TD};text-align:right;color:#a50e0e;font-weight:bold");
        html! {
            h2 style=(H2) { "Counts per stage" } (NL)
            table id="counts" style=(TABLE) {
                (NL)
                tr { th style=(TH) { "Stage" } th style=(TH) { "ok" } th style=(TH) { "failed" } th style=(TH) { "skipped" } th style=(TH) { "planned" } } (NL)
                @for (stage, c) in counts {
                    tr {
                        td style=(TD) { (stage.as_str()) }
                        td style=(right) { (c[0]) }
                        td style=(if c[1] > 0 { &bad } else { &right }) { (c[1]) }
                        td style=(right) { (c[2]) }
                        td style=(right) { (c[3]) }
                    } (NL)
                }
            }
            (NL)
        }
    }

    /// The artifacts table without its rows: [`ROWS`] stands where they go.
    fn artifacts_html(&self, stages: &[Stage]) -> Markup {
        html! {
            h2 style=(H2) { "Artifacts (" (self.artifacts.len()) ")" } (NL)
            table id="artifacts" style=(TABLE) {
                (NL)
                tr { th style=(TH) { "Artifact" } th style=(TH) { "Kind" } th style=(TH) { "Outcome" }
                     @for s in stages { th style=(TH) { (s.as_str()) } } } (NL)
                (PreEscaped(ROWS))
            }
            (NL)
        }
    }

    /// One row of the artifacts table.
    fn artifact_row(a: &ArtifactReport, stages: &[Stage]) -> Markup {
        html! {
            tr {
                td style=(TD) {
                    b { @if a.version.is_empty() { (a.code) } @else { (a.code) "|" (a.version) } }
                    @if let Some(sha) = &a.sha256 {
                        br; span style="font-family:monospace;font-size:11px;color:#5f6368" {
                            "sha256 " (sha.chars().take(16).collect::<String>())
                        }
                    }
                }
                td style=(TD) { (a.kind.as_str()) }
                td style=(TD) { (a.outcome()) }
                @for st in stages {
                    @let cells: Vec<_> = a.stages.iter().filter(|s| s.stage == *st).collect();
                    @if cells.is_empty() {
                        td style=(format!("{TD};color:#9aa0a6")) { "-" }
                    } @else {
                        td style=(TD) {
                            @for (i, s) in cells.iter().enumerate() {
                                @if i > 0 { br; }
                                @let title = match (&s.reason, &s.error) {
                                    (_, Some(e)) => e.message.as_str(),
                                    (Some(r), None) => r.as_str(),
                                    _ => s.action.as_str(),
                                };
                                span title=(title) style=(format!("{};padding:1px 4px;border-radius:3px", status_style(s.status))) { (s.status.as_str()) }
                                " " span style="color:#5f6368;font-size:12px" { (fmt_ms(s.duration_ms)) }
                            }
                        }
                    }
                }
            } (NL)
        }
    }

    /// The report as one self-contained HTML page.
    pub fn to_html(&self) -> String {
        let mut out = String::new();
        let _ = self.write_html(&mut |part: &str| {
            out.push_str(part);
            Ok(())
        });
        out
    }

    /// The page of [`Report::to_html`], handed to `sink` in parts as it is made (the page of a
    /// run of 10,000 artifacts is megabytes: it is never held whole): the page up to the
    /// artifacts' rows, each row, then the rest. Stops at the first error of `sink`.
    pub fn write_html(&self, sink: &mut dyn FnMut(&str) -> io::Result<()>) -> io::Result<()> {
        let page = self.page_html();
        let (head, tail) = page.split_once(ROWS).unwrap_or((page.as_str(), ""));
        sink(head)?;
        let stages = self.stages();
        for a in &self.artifacts {
            sink(&Self::artifact_row(a, &stages).into_string())?;
        }
        sink(tail)
    }

    /// The stages any artifact went through, in order (the columns of the HTML and terminal
    /// tables).
    pub(super) fn stages(&self) -> Vec<Stage> {
        let mut v: Vec<Stage> = self
            .artifacts
            .iter()
            .flat_map(|a| a.stages.iter().map(|s| s.stage))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The page with [`ROWS`] where the artifacts' rows go.
    fn page_html(&self) -> String {
        let r = &self.run;
        let outcome = r.outcome.clone().unwrap_or_else(|| "unfinished".into());
        let kind = if self.extra.kind.is_empty() {
            "run"
        } else {
            self.extra.kind.as_str()
        };
        // Counts per stage: ok, failed, skipped, planned.
        let mut counts: BTreeMap<Stage, [u64; 4]> = BTreeMap::new();
        for a in &self.artifacts {
            for s in &a.stages {
                let c = counts.entry(s.stage).or_default();
                c[match s.status {
                    StepStatus::Ok => 0,
                    StepStatus::Failed => 1,
                    StepStatus::Skipped => 2,
                    StepStatus::Planned => 3,
                }] += 1;
            }
        }
        let stages: Vec<Stage> = counts.keys().copied().collect();
        let s = &self.summary;
        html! {
            (DOCTYPE) (NL)
            html lang="en" {
                (NL)
                head {
                    (NL)
                    meta charset="utf-8"; (NL)
                    meta name="viewport" content="width=device-width, initial-scale=1"; (NL)
                    title { "ferry " (kind) " " (r.id) ": " (outcome) } (NL)
                }
                (NL)
                body style="font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#202124;margin:16px" {
                    (NL)
                    h1 style="font-size:20px;margin:0 0 8px 0" {
                        "ferry " (kind) " " (r.id) " "
                        span style=(format!("{};padding:2px 8px;border-radius:4px;font-size:16px", outcome_style(&outcome))) {
                            (outcome.to_uppercase())
                        }
                    }
                    (NL)
                    (self.facts()) (NL)
                    // Failures first: they are what the reader needs.
                    (self.failures_html())
                    (Self::counts_html(&counts))
                    (self.artifacts_html(&stages))
                    p style="color:#5f6368;font-size:12px" {
                        (s.artifacts) " artifact(s): " (s.exported) " exported, " (s.backed_up) " backed up, "
                        (s.verified) " verified, " (s.imported) " imported, " (s.activated) " activated, "
                        (s.skipped) " skipped, " (s.planned) " planned, " (s.failed) " failed. Generated by ferry "
                        (r.ferry_version) "."
                    }
                    (NL)
                }
                (NL)
            }
            (NL)
        }
        .into_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&"),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
    }
}
