//! The recipes in scripts/: each one runs in `--sandbox`, and each starts with a comment that says
//! what it does and which configuration it needs.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Output;

fn ferry_bin() -> String {
    std::env::var("FERRY_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ferry").to_string())
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

/// `ferry run scripts/NAME --sandbox ARGS` in `dir`.
fn run(dir: &Path, name: &str, args: &[&str]) -> (Output, String) {
    run_file(dir, &script(name), args)
}

/// `ferry run RECIPE --sandbox ARGS` in `dir`: the exit status and stdout followed by stderr.
fn run_file(dir: &Path, recipe: &Path, args: &[&str]) -> (Output, String) {
    let out = std::process::Command::new(ferry_bin())
        .current_dir(dir)
        .arg("run")
        .arg(recipe)
        .args(["--sandbox", "--retry-base-ms", "1"])
        .args(args)
        .env_remove("FERRY_CONFIG")
        .env_remove("FERRY_PATH")
        .env("NO_COLOR", "1")
        .output()
        .expect("run ferry");
    let text = format!(
        "{}{}",
        support::text(&out.stdout),
        support::text(&out.stderr)
    );
    (out, text)
}

/// The newest job of the sandbox vault in `dir` (`ferry vault jobs --json`).
fn newest_job(dir: &Path) -> serde_json::Value {
    let jobs = support::sandbox_jobs(dir);
    jobs.last().expect("a job").clone()
}

/// Asserts that `text` contains every one of `needles` (naming the first missing one).
fn contains_all(text: &str, needles: &[&str]) {
    for n in needles {
        assert!(text.contains(n), "no {n:?} in:\n{text}");
    }
}

const RECIPES: &[&str] = &[
    "migrate.rhai",
    "nightly-backup.rhai",
    "restore.rhai",
    "promote-project.rhai",
    "audit.rhai",
    "instance-migrate.rhai",
    "cutover.rhai",
];

#[test]
fn every_recipe_starts_with_what_it_does_and_the_config_it_needs() {
    for r in RECIPES {
        let text = std::fs::read_to_string(script(r)).expect("read recipe");
        let head: String = text
            .lines()
            .take_while(|l| l.starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            head.starts_with(&format!("// {r}: ")),
            "{r}: first line must say what it does:\n{head}"
        );
        assert!(
            head.contains("Config it needs"),
            "{r}: no `Config it needs` in the header:\n{head}"
        );
        assert!(
            head.contains("--sandbox"),
            "{r}: the header shows no sandbox command:\n{head}"
        );
    }
}

#[test]
fn cutover_runs_in_the_sandbox() {
    let dir = support::tempdir();
    let (out, text) = run(dir.path(), "cutover.rhai", &["--var", "window=0"]);
    assert_eq!(out.status.code(), Some(0), "{text}");
    contains_all(
        &text,
        &[
            "cutover into prod: completed",
            "activation order (callees first): [\"FIN_PAYMENT_STATUS|01.00.0000\"",
        ],
    );
}

#[test]
fn migrate_runs_in_the_sandbox() {
    let dir = support::tempdir();
    let (out, text) = run(dir.path(), "migrate.rhai", &[]);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("Backed up and verified"), "{text}");
}

#[test]
fn nightly_backup_stores_verifies_and_prunes_then_restore_brings_it_back() {
    let dir = support::tempdir();
    // The sample `dev` has 11 integrations, 8 of them exportable, plus one lookup and one library.
    let (out, text) = run(dir.path(), "nightly-backup.rhai", &[]);
    assert_eq!(out.status.code(), Some(0), "{text}");
    contains_all(
        &text,
        &[
            "Stored 10 archive(s) and 1 schedule(s)",
            "Retention: kept 1 job(s), deleted 0",
        ],
    );
    // Nothing failed: no mail.
    let outbox = dir.path().join(".ferry/sandbox/outbox");
    assert!(
        support::files_under(&outbox).is_empty(),
        "{:?}",
        support::files_under(&outbox)
    );
    let vault = dir.path().join(".ferry/sandbox/vault");
    let files = support::files_under(&vault);
    // One file per archive (encrypted with the sandbox vault's age key) beside the manifest,
    // and the scheduled integration's schedule.
    let archives = files
        .iter()
        .filter(|p| p.to_string_lossy().contains("/nightly-dev-"))
        .filter(|p| p.file_name().is_some_and(|n| n != "manifest.json"))
        .count();
    assert_eq!(archives, 11, "{files:?}");
    assert!(
        files.iter().any(|p| p
            .to_string_lossy()
            .ends_with("/Schedules/HR_PAYROLL_EXPORT_01.00.0000.json.age")),
        "{files:?}"
    );

    // A second backup on the same day: the daily rule keeps only the newest job of the day.
    // Started within the second of the first, its `{time}` name is taken: it writes `NAME-2`
    // (see `a_new_job_never_shares_a_folder`), which sorts after `NAME` among jobs that
    // finished in the same second.
    let first = newest_job(dir.path());
    let (out, text) = run(
        dir.path(),
        "nightly-backup.rhai",
        &[
            "--var",
            "daily=1",
            "--var",
            "weekly=0",
            "--var",
            "monthly=0",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    // Each sandbox run starts its emulator on another port: another instance as far as the
    // backup can tell, so nothing is carried over from the first job; all is exported again.
    contains_all(
        &text,
        &[
            "0 integration(s) unchanged since the last complete backup (not exported)",
            "Retention: kept 1 job(s), deleted 1",
        ],
    );
    let kept = support::sandbox_jobs(dir.path());
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_ne!(
        kept[0]["path"], first["path"],
        "the newer job is kept: {kept:?}"
    );
    let deleted = format!("deleted {}", first["path"].as_str().expect("path"));
    contains_all(&text, &[&deleted]);

    // Restore the newest job into the (empty) prod instance: everything lands and is checked.
    let (out, text) = run(dir.path(), "restore.rhai", &["--var", "target=prod"]);
    assert_eq!(out.status.code(), Some(0), "{text}");
    contains_all(
        &text,
        &["10 item(s): 10 created, 0 replaced, 0 skipped, 0 failed"],
    );

    // A failing backup mails the report to the admins (the sandbox outbox).
    let (out, text) = run(
        dir.path(),
        "nightly-backup.rhai",
        &["--var", "instance=nowhere"],
    );
    assert_ne!(out.status.code(), Some(0), "{text}");
    let mails = support::files_under(&outbox);
    assert_eq!(mails.len(), 1, "{text}");
    let mail = std::fs::read_to_string(&mails[0]).expect("read mail");
    assert!(mail.contains("ops@sandbox.local"), "{mail}");

    // Only some codes.
    let (out, text) = run(
        dir.path(),
        "restore.rhai",
        &["--var", "target=prod", "--var", "codes=HR_*"],
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("Restoring 4 archive(s)"), "{text}");
}

#[test]
fn restore_without_a_backup_says_so() {
    let dir = support::tempdir();
    let (out, text) = run(dir.path(), "restore.rhai", &[]);
    assert_ne!(out.status.code(), Some(0), "{text}");
    contains_all(&text, &["no complete backup job in vault backups"]);
    assert!(
        text.contains("restore.rhai:"),
        "the error names the recipe: {text}"
    );
}

#[test]
fn promote_project_moves_the_project_at_its_label() {
    let dir = support::tempdir();
    std::fs::write(
        dir.path().join("roles.csv"),
        "env,principal,role,project\nprod,jane.doe@example.com,ServiceDeveloper\nprod,max.mustermann@example.com,Viewer,HR_ONBOARDING\ndev,ana.silva@example.com,ServiceViewer\n",
    )
    .expect("write roles.csv");
    let (out, text) = run(
        dir.path(),
        "promote-project.rhai",
        &["--var", "roles=roles.csv"],
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("ACL: 1 of 1 entries copied"), "{text}");
    // Only the prod rows of the CSV are granted.
    contains_all(
        &text,
        &[
            "Roles: 2 granted, 0 unchanged",
            "Promoting HR_ONBOARDING at HR-ONB-REL1 (2 integration(s)) from uat to prod",
            "HR_ONBOARDING|HR-ONB-REL1  created",
            "HR_ONBOARDING on prod: 1 deployment(s)",
        ],
    );

    let (out, text) = run(dir.path(), "promote-project.rhai", &["--var", "label=NOPE"]);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("has no deployment NOPE"), "{text}");

    // A Gen2 source is refused before anything is exported.
    let (out, text) = run(dir.path(), "promote-project.rhai", &["--var", "source=dev"]);
    assert_ne!(out.status.code(), Some(0), "{text}");
    contains_all(&text, &["projects exist only on OIC 3: dev is OIC 2"]);
}

#[test]
fn audit_reports_differences_and_can_fail_on_them() {
    let dir = support::tempdir();
    // prod has no integrations: all 11 of dev are missing there.
    let (out, text) = run(dir.path(), "audit.rhai", &[]);
    assert_eq!(out.status.code(), Some(0), "{text}");
    contains_all(&text, &["Missing on prod (11):", "11 difference(s)"]);
    let (out, text) = run(dir.path(), "audit.rhai", &["--var", "fail_on_diff=true"]);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("dev and prod differ in 11 place(s)"),
        "{text}"
    );
    // An instance against itself: nothing differs.
    let (out, text) = run(
        dir.path(),
        "audit.rhai",
        &["--var", "target=dev", "--var", "fail_on_diff=true"],
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("0 difference(s)"), "{text}");
    // dev and uat share the sample integrations, but uat's are OIC 3: same ids.
    let (out, text) = run(
        dir.path(),
        "audit.rhai",
        &["--var", "target=uat", "--var", "code=HR_*"],
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("Missing on uat (0):"), "{text}");
}

#[test]
fn a_recipe_exports_and_imports_a_package() {
    let dir = support::tempdir();
    let recipe = dir.path().join("packages.rhai");
    std::fs::write(
        &recipe,
        r#"
let dev = oic::instance("dev");
let prod = oic::instance("prod");
let p = dev.get_package("fin.payables");
print(`package ${p.name}: ${p.integrations.len()} integration(s)`);
let archives = dev.export_archives(dev.packages());
print(`exported ${archives.len()}: ${archives[0].kind} ${archives[0].code}`);
let r = prod.import_archives(archives, #{ activate: false });
print(`imported ${r[0].kind} ${r[0].id}: ${r[0].action}`);
print(`on prod: ${prod.packages().map(|x| x.name)}`);
let again = prod.import_archives(archives, #{ activate: false });
print(`again: ${again[0].action}`);
try { prod.import_archives(archives, #{ overwite: true }); } catch (e) { print(`refused: ${e.message}`); }
"#,
    )
    .expect("write recipe");
    let (out, text) = run_file(dir.path(), &recipe, &[]);
    assert_eq!(out.status.code(), Some(0), "{text}");
    contains_all(
        &text,
        &[
            "package fin.payables: 2 integration(s)",
            "exported 1: package fin.payables",
            "imported package fin.payables: created",
            "on prod: [\"fin.payables\"]",
            "again: skipped",
            "refused: import_archives: unknown option `overwite`",
        ],
    );
}

#[test]
fn instance_migrate_moves_a_gen2_instance_to_oic3_in_the_sandbox() {
    let dir = support::tempdir();
    let (out, text) = run(
        dir.path(),
        "instance-migrate.rhai",
        &["--var", "exclude=[\"SCM_*\"]"],
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    contains_all(
        &text,
        &[
            "Moved from dev to prod:",
            "integration:SCM_ORDER_NOTIFY|01.00.0000: exclude rule 1",
            "DROPS   role grants",
            "Diff after the run:",
        ],
    );
}

#[test]
fn a_new_job_never_shares_a_folder() {
    // Two jobs of one name in one run stand for two runs whose `{time}` names fall in one second.
    let dir = support::tempdir();
    let recipe = dir.path().join("twice.rhai");
    std::fs::write(
        &recipe,
        r#"
let v = vault::open("backups");
let a = v.new_job("same");
let b = v.new_job("same");
print(`paths: ${a.path} ${b.path}`);
b.finish();
a.finish();
"#,
    )
    .expect("write recipe");
    let (out, text) = run_file(dir.path(), &recipe, &[]);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let day = chrono::Utc::now().format("OIC_Backups/%Y/%m/%d");
    contains_all(
        &text,
        &[
            &format!("paths: {day}/same {day}/same-2"),
            &format!("warning: job {day}/same exists already: this run writes job {day}/same-2"),
        ],
    );
    let jobs = support::sandbox_jobs(dir.path());
    let paths: Vec<&str> = jobs.iter().filter_map(|j| j["path"].as_str()).collect();
    assert_eq!(paths.len(), 2, "{jobs:?}");
    assert!(
        paths
            .iter()
            .all(|p| p.ends_with("/same") || p.ends_with("/same-2")),
        "{paths:?}"
    );
}
