//! The dashboard's pages. maud escapes every value inserted with `(...)`, so no ledger text can
//! become markup.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;

use crate::ledger::report::targets;
use crate::ledger::{ErrorFilter, ErrorRow, JobRow, RunRow, Stage, Step, StepStatus};

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:0;padding:0 .8rem 2rem;color:#202124}
nav{display:flex;gap:1rem;padding:.7rem 0;border-bottom:1px solid #ddd;margin-bottom:.8rem;flex-wrap:wrap}
nav a{font-weight:600}table{border-collapse:collapse;width:100%;font-size:.9rem}
td,th{border-bottom:1px solid #eee;padding:.3rem .4rem;text-align:left;vertical-align:top}
.wrap{overflow-x:auto}.ok{color:#137333}.failed{color:#a50e0e;font-weight:bold}.skipped,.planned{color:#666}
.cause{color:#a50e0e;font-weight:600}.bar{position:relative;height:1rem;background:#f1f3f4;min-width:12rem}
.seg{position:absolute;top:0;height:1rem;opacity:.85}.seg.ok{background:#34a853}.seg.failed{background:#ea4335}
.seg.skipped,.seg.planned{background:#bbb}form{display:flex;flex-wrap:wrap;gap:.5rem;margin-bottom:.8rem}
form label{display:flex;flex-direction:column;font-size:.8rem}progress{width:8rem}
@media(max-width:600px){.wide{display:none}}";

/// Updates the progress of running runs from `/events`.
const LIVE_JS: &str = "new EventSource('/events').addEventListener('progress',function(e){
JSON.parse(e.data).forEach(function(r){var p=document.getElementById('p-'+r.id);if(p){if(r.expected)p.max=Math.max(r.expected,r.artifacts);p.value=r.artifacts;}
var t=document.getElementById('t-'+r.id);if(t){t.textContent=r.text;}});});";

fn layout(title: &str, live: bool, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · ferry" }
                style { (PreEscaped(CSS)) }
            }
            body {
                nav { a href="/" { "Runs" } a href="/errors" { "Errors" } a href="/jobs" { "Backup jobs" } }
                h1 { (title) }
                (body)
                @if live { script { (PreEscaped(LIVE_JS)) } }
            }
        }
    }
    .into_string()
}

/// A page with a title and one sentence.
pub fn message(title: &str, text: &str) -> String {
    layout(title, false, html! { p { (text) } })
}

/// The page shown without a valid token.
pub fn login() -> String {
    layout(
        "Access token needed",
        false,
        html! {
            p { "Open this page with " code { "?token=…" } " (the token of " code { "[serve] token" } ")." }
            form method="get" action="/" {
                label { "Token" input type="password" name="token" autocomplete="off"; }
                button type="submit" { "Open" }
            }
        },
    )
}

fn when(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn progress_text(r: &RunRow) -> String {
    let state = match (&r.info.ended, &r.info.outcome) {
        (None, _) => "running".to_string(),
        (Some(_), Some(o)) => o.clone(),
        (Some(_), None) => "ended".to_string(),
    };
    let failed = match r.failed_steps {
        0 => String::new(),
        n => format!(", {n} failed"),
    };
    match r.expected {
        Some(n) => format!(
            "{state}: {} of {n} artifacts ({} steps{failed})",
            r.artifacts, r.steps
        ),
        None => format!(
            "{state}: {} artifacts ({} steps{failed})",
            r.artifacts, r.steps
        ),
    }
}

/// A run's progress, as the event stream sends it.
pub fn progress_json(r: &RunRow) -> serde_json::Value {
    serde_json::json!({
        "id": r.info.id, "artifacts": r.artifacts, "steps": r.steps, "failed": r.failed_steps,
        "expected": r.expected, "text": progress_text(r),
    })
}

/// A bar of the artifacts worked on against those selected (when the run said how many).
fn progress(r: &RunRow) -> Markup {
    let max = r.expected.unwrap_or(r.artifacts.max(1)).max(r.artifacts);
    html! {
        progress id=(format!("p-{}", r.info.id)) value=(r.artifacts) max=(max) {}
        " " span id=(format!("t-{}", r.info.id)) { (progress_text(r)) }
    }
}

/// The runs, newest first.
pub fn runs(runs: &[RunRow]) -> String {
    let live = runs.iter().any(|r| r.info.ended.is_none());
    layout(
        "Runs",
        live,
        html! {
            div class="wrap" { table {
                tr { th { "Run" } th { "Recipe" } th class="wide" { "By" } th class="wide" { "Host" } th { "Started" } th { "Progress" } }
                @for r in runs {
                    tr data-run=(r.info.id) {
                        td { a href=(format!("/runs/{}", r.info.id)) { (r.info.id) } }
                        td { (r.info.recipe) @if r.info.dry_run { " (dry run)" } }
                        td class="wide" { (r.info.run_by) }
                        td class="wide" { (r.host.as_deref().unwrap_or("")) }
                        td { (when(&r.info.started)) }
                        td { (progress(r)) }
                    }
                }
            } }
        },
    )
}

fn status_class(s: StepStatus) -> &'static str {
    s.as_str()
}

fn facts(r: &RunRow, steps: &[Step], jobs: &[JobRow]) -> Markup {
    let from = targets(steps, &[Stage::Export]);
    let to = targets(steps, &[Stage::Import, Stage::Activate, Stage::Deactivate]);
    html! {
        table {
            tr { th { "Run by" } td { (r.info.run_by) } }
            tr { th { "Host" } td { (r.host.as_deref().unwrap_or("")) } }
            tr { th { "From" } td { (from.join(", ")) } }
            tr { th { "To" } td { (to.join(", ")) } }
            tr { th { "Backup jobs" } td { @for j in jobs { (j.name) " (vault " (j.vault) "): " (j.path) br; } } }
            tr { th { "Started" } td { (when(&r.info.started)) } }
            tr { th { "Progress" } td { (progress(r)) } }
            @if let Some(m) = &r.info.message { tr { th { "Message" } td { (m) } } }
        }
        p { a href=(format!("/runs/{}/report", r.info.id)) { "The run's report" } }
    }
}

/// A bar per artifact: each stage placed at its time in the run, as wide as it took.
fn timeline(steps: &[Step]) -> Markup {
    let (Some(t0), Some(t1)) = (
        steps.iter().map(|s| s.started).min(),
        steps.iter().map(|s| s.ended).max(),
    ) else {
        return html! {};
    };
    let span = ((t1 - t0).num_milliseconds().max(1)) as f64;
    let mut by_artifact: BTreeMap<String, Vec<&Step>> = BTreeMap::new();
    for s in steps {
        by_artifact
            .entry(format!("{} {}", s.code, s.version))
            .or_default()
            .push(s);
    }
    html! {
        h2 { "Timeline" }
        div class="wrap" { table {
            @for (a, ss) in &by_artifact {
                tr { td { (a) } td class="bar" {
                    @for s in ss {
                        @let left = (s.started - t0).num_milliseconds() as f64 / span * 100.0;
                        @let width = (s.duration_ms().max(0) as f64 / span * 100.0).max(0.8);
                        span class=(format!("seg {}", status_class(s.status)))
                            style=(format!("left:{left:.2}%;width:{width:.2}%"))
                            title=(format!("{} {} ms", s.stage, s.duration_ms())) {}
                    }
                } }
            }
        } }
    }
}

fn failures(steps: &[Step]) -> Markup {
    html! {
        @for s in steps.iter().filter(|s| s.status == StepStatus::Failed) {
            li {
                span class="cause" { (s.error.as_ref().map(|e| e.message.as_str()).unwrap_or("failed")) }
                " — " (s.stage) " of " (s.code) " " (s.version) " on " (s.target)
                @if let Some(e) = &s.error { " (" (e.kind) @if let Some(c) = e.status { " " (c) } ")" }
            }
        }
    }
}

/// One run: facts, failures (root cause first), each artifact's stages, the timeline.
pub fn run(r: &RunRow, steps: &[Step], jobs: &[JobRow]) -> String {
    let mut table: BTreeMap<String, BTreeMap<Stage, &Step>> = BTreeMap::new();
    for s in steps {
        table
            .entry(format!("{} {}", s.code, s.version))
            .or_default()
            .insert(s.stage, s);
    }
    let mut stages: Vec<Stage> = steps.iter().map(|s| s.stage).collect();
    stages.sort();
    stages.dedup();
    layout(
        &format!("Run {}", r.info.id),
        r.info.ended.is_none(),
        html! {
            (facts(r, steps, jobs))
            @if r.failed_steps > 0 { h2 { "Failures" } ul id="failures" { (failures(steps)) } }
            h2 { "Artifacts and stages" }
            div class="wrap" { table {
                tr { th { "Artifact" } @for st in &stages { th { (st) } } }
                @for (a, row) in &table {
                    tr { td { (a) } @for st in &stages {
                        @match row.get(st) {
                            Some(s) => td class=(status_class(s.status)) { (s.status.as_str()) " " small { (s.duration_ms()) " ms" } },
                            None => td {},
                        }
                    } }
                }
            } }
            (timeline(steps))
        },
    )
}

/// The error log's filter, as the form sends it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ErrorQuery {
    pub stage: Option<String>,
    pub instance: Option<String>,
    pub artifact: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub run: Option<String>,
    pub token: Option<String>,
}

fn some(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn day(s: &str, next: bool) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not a date (YYYY-MM-DD)"))?;
    let d = if next { d.succ_opt().unwrap_or(d) } else { d };
    Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
}

impl ErrorQuery {
    /// The ledger filter; an unknown stage or a bad date is an error.
    pub fn filter(&self) -> Result<ErrorFilter, String> {
        let stage = match some(&self.stage) {
            Some(s) => {
                Some(crate::ledger::stage_from_str(&s).ok_or(format!("unknown stage `{s}`"))?)
            }
            None => None,
        };
        Ok(ErrorFilter {
            run: some(&self.run),
            since: some(&self.since).map(|s| day(&s, false)).transpose()?,
            until: some(&self.until).map(|s| day(&s, true)).transpose()?,
            stage,
            target: some(&self.instance),
            code: some(&self.artifact),
            limit: Some(500),
        })
    }
}

const STAGES: [Stage; 10] = [
    Stage::Export,
    Stage::Store,
    Stage::Verify,
    Stage::Import,
    Stage::Activate,
    Stage::Deactivate,
    Stage::Delete,
    Stage::Connection,
    Stage::Grant,
    Stage::Notify,
];

fn filter_form(q: &ErrorQuery) -> Markup {
    let cur = some(&q.stage).unwrap_or_default();
    html! {
        form method="get" action="/errors" id="filter" {
            label { "Stage" select name="stage" {
                option value="" { "any" }
                @for s in STAGES { option value=(s.as_str()) selected[cur == s.as_str()] { (s.as_str()) } }
            } }
            label { "Instance" input name="instance" value=(some(&q.instance).unwrap_or_default()); }
            label { "Artifact" input name="artifact" value=(some(&q.artifact).unwrap_or_default()); }
            label { "Since" input type="date" name="since" value=(some(&q.since).unwrap_or_default()); }
            label { "Until" input type="date" name="until" value=(some(&q.until).unwrap_or_default()); }
            button type="submit" { "Filter" }
        }
    }
}

/// The error log: root cause first.
pub fn errors(q: &ErrorQuery, rows: &[ErrorRow]) -> String {
    layout(
        "Errors",
        false,
        html! {
            (filter_form(q))
            p id="count" { (rows.len()) " failed steps" }
            div class="wrap" { table id="errors" {
                tr { th { "Root cause" } th { "Stage" } th { "Artifact" } th { "Instance" } th class="wide" { "When" } th class="wide" { "Run" } }
                @for e in rows {
                    tr {
                        td class="cause" { (e.step.error.as_ref().map(|x| x.message.as_str()).unwrap_or("failed"))
                            @if let Some(x) = &e.step.error { " " small { "(" (x.kind) @if let Some(c) = x.status { " " (c) } ")" } } }
                        td { (e.step.stage) }
                        td { (e.step.code) " " (e.step.version) }
                        td { (e.step.target) }
                        td class="wide" { (when(&e.step.started)) }
                        td class="wide" { a href=(format!("/runs/{}", e.run)) { (e.run) } }
                    }
                }
            } }
        },
    )
}

/// The backup jobs runs wrote.
pub fn jobs(jobs: &[JobRow]) -> String {
    layout(
        "Backup jobs",
        false,
        html! {
            div class="wrap" { table {
                tr { th { "Date" } th { "Vault" } th { "Job" } th { "Path" } th { "Run" } }
                @for j in jobs {
                    tr { td { (j.date) } td { (j.vault) } td { (j.name) } td { (j.path) }
                         td { a href=(format!("/runs/{}", j.run)) { (j.run) } } }
                }
            } }
        },
    )
}
