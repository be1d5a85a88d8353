//! CI output for `ferry run` and `ferry plan`: a JUnit XML file (`--junit FILE`: one test case per
//! artifact and stage, failures carrying the root cause) and, when `GITHUB_ACTIONS=true`, GitHub
//! Actions workflow commands (`::error file=...::`) on stderr, so stdout stays the report.

use std::io;
use std::path::{Path, PathBuf};

use clap::Args;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use crate::config::Config;
use crate::ledger::report::StageReport;
use crate::ledger::report::root_cause;
use crate::ledger::{Report, StepStatus};
use crate::script::runner::RunResult;

/// The CI options of `ferry run` and `ferry plan`.
#[derive(Args, Debug, Clone, Default)]
pub struct CiOpts {
    /// Write a JUnit XML report to FILE: a test case per artifact and stage (failures carry the
    /// root cause), and one for the recipe itself when it stops on an error.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

/// One JUnit test case.
struct Case {
    classname: String,
    name: String,
    secs: f64,
    outcome: Outcome,
    /// Text for `<system-out>` (what a planned step would do).
    out: Option<String>,
}

enum Outcome {
    Passed,
    Skipped(String),
    /// (type, root cause, full message)
    Failed(String, String, String),
    /// The recipe itself failed (a script or configuration error).
    Error(String, String),
}

/// The place (`file`, line, column) of a rendered script error (` --> file:line:col`).
fn error_place(rendered: &str) -> Option<(String, u32, u32)> {
    let re = regex::Regex::new(r"(?m)^\s*--> (.+):(\d+):(\d+)\s*$").ok()?;
    let c = re.captures(rendered)?;
    Some((c[1].to_string(), c[2].parse().ok()?, c[3].parse().ok()?))
}

fn stage_case(artifact: &str, st: &StageReport) -> Case {
    let name = format!("{} {}", st.stage.as_str(), st.target);
    let outcome = match (&st.status, &st.error) {
        (StepStatus::Failed, e) => {
            let (kind, msg): (String, String) = match e {
                Some(e) => (e.kind.clone(), e.message.clone()),
                None => ("error".to_string(), "failed".to_string()),
            };
            Outcome::Failed(kind, root_cause(&msg), msg)
        }
        (StepStatus::Skipped, _) => {
            Outcome::Skipped(st.reason.clone().unwrap_or_else(|| "skipped".into()))
        }
        _ => Outcome::Passed,
    };
    let out = (st.status == StepStatus::Planned).then(|| {
        let reason = st
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        format!("would {}{reason}", st.action)
    });
    Case {
        classname: artifact.to_string(),
        name,
        secs: st.duration_ms.max(0) as f64 / 1000.0,
        outcome,
        out,
    }
}

/// The test cases of a run: its artifacts' stages, and the recipe when it stopped on an error.
fn cases(recipe: &str, result: &RunResult) -> Vec<Case> {
    let mut out = vec![];
    if let Some(r) = &result.report {
        for a in &r.artifacts {
            let id = if a.version.is_empty() {
                a.code.clone()
            } else {
                format!("{}|{}", a.code, a.version)
            };
            let artifact = format!("{}.{id}", a.kind.as_str());
            out.extend(a.stages.iter().map(|st| stage_case(&artifact, st)));
        }
    }
    if let Some(err) = &result.error {
        let first = err
            .lines()
            .next()
            .unwrap_or("error")
            .trim_start_matches("error: ");
        out.push(Case {
            classname: "recipe".into(),
            name: recipe.to_string(),
            secs: 0.0,
            outcome: Outcome::Error(first.to_string(), err.clone()),
            out: None,
        });
    }
    out
}

/// Text XML 1.0 can hold: control characters other than tab and newline are dropped.
fn xml_text(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .collect()
}

fn write_case(w: &mut Writer<Vec<u8>>, c: &Case, config: &Config) -> io::Result<()> {
    let el = w
        .create_element("testcase")
        .with_attribute(("classname", xml_text(&config.scrub(&c.classname)).as_str()))
        .with_attribute(("name", xml_text(&config.scrub(&c.name)).as_str()))
        .with_attribute(("time", format!("{:.3}", c.secs).as_str()));
    let text = |s: &str| xml_text(&config.scrub(s));
    if matches!(c.outcome, Outcome::Passed) && c.out.is_none() {
        el.write_empty()?;
        return Ok(());
    }
    el.write_inner_content(|w| {
        match &c.outcome {
            Outcome::Passed => {}
            Outcome::Skipped(reason) => {
                w.create_element("skipped")
                    .write_text_content(BytesText::new(&text(reason)))?;
            }
            Outcome::Error(first, full) => {
                w.create_element("error")
                    .with_attribute(("message", text(first).as_str()))
                    .with_attribute(("type", "recipe"))
                    .write_text_content(BytesText::new(&text(full)))?;
            }
            Outcome::Failed(kind, cause, full) => {
                w.create_element("failure")
                    .with_attribute(("message", text(cause).as_str()))
                    .with_attribute(("type", text(kind).as_str()))
                    .write_text_content(BytesText::new(&text(full)))?;
            }
        }
        if let Some(o) = &c.out {
            w.create_element("system-out")
                .write_text_content(BytesText::new(&text(o)))?;
        }
        Ok(())
    })?;
    Ok(())
}

/// The JUnit XML document of a run (`kind` is `run` or `plan`).
pub fn junit_xml(
    kind: &str,
    recipe: &str,
    result: &RunResult,
    config: &Config,
) -> io::Result<String> {
    let cases = cases(recipe, result);
    let failures = cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Failed(..)))
        .count();
    let errors = cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Error(..)))
        .count();
    let skipped = cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Skipped(_)))
        .count();
    let secs: f64 = cases.iter().map(|c| c.secs).sum();
    let report: Option<&Report> = result.report.as_ref();
    let (tests, failures, errors, skipped, time) = (
        cases.len().to_string(),
        failures.to_string(),
        errors.to_string(),
        skipped.to_string(),
        format!("{secs:.3}"),
    );
    let suite = format!("ferry {kind} {recipe}");
    let started = report
        .map(|r| r.run.started.format("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_default();
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let counts = [
        ("tests", tests.as_str()),
        ("failures", failures.as_str()),
        ("errors", errors.as_str()),
        ("time", time.as_str()),
    ];
    w.create_element("testsuites")
        .with_attribute(("name", "ferry"))
        .with_attributes(counts)
        .write_inner_content(|w| {
            let mut el = w
                .create_element("testsuite")
                .with_attribute(("name", xml_text(&suite).as_str()))
                .with_attributes(counts)
                .with_attribute(("skipped", skipped.as_str()));
            if let Some(r) = report {
                el = el
                    .with_attribute(("id", r.run.id.as_str()))
                    .with_attribute(("timestamp", started.as_str()));
            }
            el.write_inner_content(|w| {
                if let Some(r) = report {
                    w.create_element("properties").write_inner_content(|w| {
                        for (k, v) in [("run", &r.run.id), ("recipe", &r.run.recipe)] {
                            w.create_element("property")
                                .with_attribute(("name", k))
                                .with_attribute(("value", xml_text(v).as_str()))
                                .write_empty()?;
                        }
                        Ok(())
                    })?;
                }
                for c in &cases {
                    write_case(w, c, config)?;
                }
                Ok(())
            })?;
            Ok(())
        })?;
    let mut xml = String::from_utf8(w.into_inner()).map_err(io::Error::other)?;
    xml.push('\n');
    Ok(xml)
}

/// Escapes a workflow command's message (`%`, CR, LF) or, with `property`, a property value
/// (also `:` and `,`).
fn gh_escape(s: &str, property: bool) -> String {
    let mut out = s
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    if property {
        out = out.replace(':', "%3A").replace(',', "%2C");
    }
    out
}

/// The GitHub Actions workflow commands for a run: an `::error` per failed step (with the
/// recipe as the file) and one for a recipe error (with its line and column).
pub fn github_annotations(recipe: &str, result: &RunResult, config: &Config) -> Vec<String> {
    let mut out = vec![];
    for c in cases(recipe, result) {
        match &c.outcome {
            Outcome::Failed(_, cause, _) => {
                let title = format!("{} {}", c.classname, c.name);
                out.push(format!(
                    "::error file={},title={}::{}",
                    gh_escape(recipe, true),
                    gh_escape(&config.scrub(&title), true),
                    gh_escape(&config.scrub(cause), false)
                ));
            }
            Outcome::Error(first, full) => {
                let place = error_place(full)
                    .map(|(f, l, col)| format!("file={},line={l},col={col}", gh_escape(&f, true)))
                    .unwrap_or_else(|| format!("file={}", gh_escape(recipe, true)));
                out.push(format!(
                    "::error {place},title=ferry::{}",
                    gh_escape(&config.scrub(first), false)
                ));
            }
            _ => {}
        }
    }
    out
}

/// Writes what the CI options and the environment ask for. An unwritable JUnit file is an error
/// (the CI would otherwise miss the results): it is printed and `false` returned.
pub fn emit(opts: &CiOpts, kind: &str, recipe: &str, result: &RunResult, config: &Config) -> bool {
    if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
        for line in github_annotations(recipe, result, config) {
            eprintln!("{line}");
        }
    }
    let Some(path) = &opts.junit else {
        return true;
    };
    let res = junit_xml(kind, recipe, result, config).and_then(|xml| write_file(path, &xml));
    if let Err(e) = &res {
        let shown = path.display();
        super::eprint_error(&format!("cannot write the JUnit report {shown}: {e}"));
    }
    res.is_ok()
}

fn write_file(path: &Path, text: &str) -> io::Result<()> {
    if let Some(p) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(p)?;
    }
    std::fs::write(path, text)
}
