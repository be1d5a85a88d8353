//! `report.html`: one self-contained page (no scripts, no external resources, inline styles so
//! mail clients keep them) with the outcome, counts per stage, the artifacts with each stage's
//! status and duration, and the failures with their root cause first.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::report::Report;
use super::{Stage, StepStatus};

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

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

impl Report {
    /// The report as one self-contained HTML page.
    pub fn to_html(&self) -> String {
        let r = &self.run;
        let outcome = r.outcome.clone().unwrap_or_else(|| "unfinished".into());
        let kind = if self.extra.kind.is_empty() {
            "run"
        } else {
            self.extra.kind.as_str()
        };
        let mut h = String::new();
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>ferry {kind} {id}: {outcome}</title>\n</head>\n\
             <body style=\"font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#202124;margin:16px\">\n",
            id = escape(&r.id),
            outcome = escape(&outcome),
        );
        let _ = writeln!(
            h,
            "<h1 style=\"font-size:20px;margin:0 0 8px 0\">ferry {kind} {id} \
             <span style=\"{st};padding:2px 8px;border-radius:4px;font-size:16px\">{outcome}</span></h1>",
            id = escape(&r.id),
            st = outcome_style(&outcome),
            outcome = escape(&outcome.to_uppercase()),
        );
        // Facts.
        let duration = r
            .ended
            .map(|e| fmt_ms((e - r.started).num_milliseconds()))
            .unwrap_or_else(|| "-".into());
        let mut facts: Vec<(&str, String)> = vec![
            ("Recipe", r.recipe.clone()),
            ("Run by", r.run_by.clone()),
            (
                "Started",
                r.started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
            ("Duration", duration),
            ("ferry", r.ferry_version.clone()),
        ];
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
        h.push_str("<table style=\"border-collapse:collapse;margin:8px 0 16px 0\">\n");
        for (k, v) in facts {
            let _ = writeln!(
                h,
                "<tr><th style=\"{TH}\">{}</th><td style=\"{TD}\">{}</td></tr>",
                escape(k),
                escape(&v)
            );
        }
        h.push_str("</table>\n");

        // Failures first: they are what the reader needs.
        let _ = writeln!(
            h,
            "<h2 style=\"font-size:17px;margin:16px 0 8px 0\">Failures ({})</h2>",
            self.failures.len()
        );
        if self.failures.is_empty() {
            h.push_str("<p style=\"margin:0 0 16px 0\">None.</p>\n");
        } else {
            let _ = writeln!(
                h,
                "<table id=\"failures\" style=\"border-collapse:collapse;margin:0 0 16px 0\">\n\
                 <tr><th style=\"{TH}\">Root cause</th><th style=\"{TH}\">Artifact</th><th style=\"{TH}\">Stage</th><th style=\"{TH}\">Target</th></tr>"
            );
            for f in &self.failures {
                let status = f
                    .error
                    .status
                    .map(|c| format!("HTTP {c} "))
                    .unwrap_or_default();
                let context = if f.root_cause == f.error.message.trim() {
                    String::new()
                } else {
                    format!(
                        "<br><span style=\"color:#5f6368;font-size:12px\">{}</span>",
                        escape(&f.error.message)
                    )
                };
                let _ = writeln!(
                    h,
                    "<tr class=\"failure\"><td style=\"{TD}\"><span style=\"color:#a50e0e\"><b>{}{}</b>: {}</span>{}</td><td style=\"{TD}\">{} {}</td><td style=\"{TD}\">{}</td><td style=\"{TD}\">{}</td></tr>",
                    escape(&status),
                    escape(&f.error.kind),
                    escape(&f.root_cause),
                    context,
                    escape(f.kind.as_str()),
                    escape(&f.artifact),
                    escape(f.stage.as_str()),
                    escape(&f.target)
                );
            }
            h.push_str("</table>\n");
        }

        // Counts per stage.
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
        h.push_str("<h2 style=\"font-size:17px;margin:16px 0 8px 0\">Counts per stage</h2>\n");
        let _ = writeln!(
            h,
            "<table id=\"counts\" style=\"border-collapse:collapse;margin:0 0 16px 0\">\n<tr><th style=\"{TH}\">Stage</th><th style=\"{TH}\">ok</th><th style=\"{TH}\">failed</th><th style=\"{TH}\">skipped</th><th style=\"{TH}\">planned</th></tr>"
        );
        for (stage, c) in &counts {
            let _ = writeln!(
                h,
                "<tr><td style=\"{TD}\">{}</td><td style=\"{TD};text-align:right\">{}</td><td style=\"{TD};text-align:right{}\">{}</td><td style=\"{TD};text-align:right\">{}</td><td style=\"{TD};text-align:right\">{}</td></tr>",
                stage.as_str(),
                c[0],
                if c[1] > 0 {
                    ";color:#a50e0e;font-weight:bold"
                } else {
                    ""
                },
                c[1],
                c[2],
                c[3]
            );
        }
        h.push_str("</table>\n");

        // Artifacts × stages.
        let stages: Vec<Stage> = counts.keys().copied().collect();
        let _ = writeln!(
            h,
            "<h2 style=\"font-size:17px;margin:16px 0 8px 0\">Artifacts ({})</h2>",
            self.artifacts.len()
        );
        let _ = write!(
            h,
            "<table id=\"artifacts\" style=\"border-collapse:collapse;margin:0 0 16px 0\">\n<tr><th style=\"{TH}\">Artifact</th><th style=\"{TH}\">Kind</th><th style=\"{TH}\">Outcome</th>"
        );
        for s in &stages {
            let _ = write!(h, "<th style=\"{TH}\">{}</th>", s.as_str());
        }
        h.push_str("</tr>\n");
        for a in &self.artifacts {
            let id = if a.version.is_empty() {
                a.code.clone()
            } else {
                format!("{}|{}", a.code, a.version)
            };
            let _ = write!(
                h,
                "<tr><td style=\"{TD}\"><b>{}</b>{}</td><td style=\"{TD}\">{}</td><td style=\"{TD}\">{}</td>",
                escape(&id),
                a.sha256
                    .as_deref()
                    .map(|s| format!(
                        "<br><span style=\"font-family:monospace;font-size:11px;color:#5f6368\">sha256 {}</span>",
                        escape(&s.chars().take(16).collect::<String>())
                    ))
                    .unwrap_or_default(),
                escape(a.kind.as_str()),
                escape(a.outcome())
            );
            for st in &stages {
                let cells: Vec<String> = a
                    .stages
                    .iter()
                    .filter(|s| s.stage == *st)
                    .map(|s| {
                        let title = match (&s.reason, &s.error) {
                            (_, Some(e)) => e.message.clone(),
                            (Some(r), None) => r.clone(),
                            _ => s.action.clone(),
                        };
                        format!(
                            "<span title=\"{}\" style=\"{};padding:1px 4px;border-radius:3px\">{}</span> <span style=\"color:#5f6368;font-size:12px\">{}</span>",
                            escape(&title),
                            status_style(s.status),
                            s.status.as_str(),
                            fmt_ms(s.duration_ms)
                        )
                    })
                    .collect();
                if cells.is_empty() {
                    let _ = write!(h, "<td style=\"{TD};color:#9aa0a6\">-</td>");
                } else {
                    let _ = write!(h, "<td style=\"{TD}\">{}</td>", cells.join("<br>"));
                }
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
        let s = &self.summary;
        let _ = writeln!(
            h,
            "<p style=\"color:#5f6368;font-size:12px\">{} artifact(s): {} exported, {} backed up, {} verified, {} imported, {} activated, {} skipped, {} planned, {} failed. Generated by ferry {}.</p>",
            s.artifacts,
            s.exported,
            s.backed_up,
            s.verified,
            s.imported,
            s.activated,
            s.skipped,
            s.planned,
            s.failed,
            escape(&r.ferry_version)
        );
        h.push_str("</body>\n</html>\n");
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
