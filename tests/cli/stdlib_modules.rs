//! The stdlib modules (`stdlib/*.rhai`), tested by their own `*_test.rhai` files through
//! `ferry test` against the sandbox (tests/scripts/stdlib/), and compiled one by one.

use crate::support;

use std::path::Path;

fn ferry_bin() -> String {
    std::env::var("FERRY_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ferry").to_string())
}

#[test]
fn every_stdlib_module_passes_its_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(ferry_bin())
        .current_dir(root)
        .args(["test", "tests/scripts/stdlib"])
        .env_remove("FERRY_PATH")
        .output()
        .expect("run ferry test");
    let stdout = support::text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        support::text(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    let passed: usize = last
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(passed >= 10, "{stdout}");
    assert!(last.ends_with(" passed, 0 failed"), "{stdout}");
    for f in [
        "select_test.rhai::test_latest_keeps_one_version_per_code_the_highest",
        "select_test.rhai::test_by_project_on_oic3",
        "naming_report_test.rhai::test_file_and_job_templates",
        "naming_report_test.rhai::test_summary_failed_and_table",
        "roles_envs_test.rhai::test_parse_and_pick_an_environment",
        "roles_envs_test.rhai::test_env_maps_merge_default_and_environment",
    ] {
        assert!(
            stdout.contains(&format!("PASS tests/scripts/stdlib/{f}")),
            "{f}: {stdout}"
        );
    }
}

#[test]
fn every_stdlib_module_is_embedded_and_compiles() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("stdlib");
    let mut engine = rhai::Engine::new();
    engine.set_max_expr_depths(64, 32); // as ferry's engine
    let mut on_disk = vec![];
    for e in std::fs::read_dir(&dir).expect("stdlib folder").flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(m) = name.strip_suffix(".rhai") {
            on_disk.push(m.to_string());
            let text = std::fs::read_to_string(e.path()).expect("read module");
            if let Err(err) = engine.compile(&text) {
                panic!("stdlib/{name} does not compile: {err}");
            }
            let embedded = ferry::script::resolver::STDLIB
                .iter()
                .find(|(n, _)| *n == m)
                .unwrap_or_else(|| panic!("stdlib/{name} is not registered in STDLIB"));
            assert_eq!(embedded.1, text, "stdlib/{name}: embedded text differs");
            assert!(text.starts_with("//!"), "stdlib/{name} has no module doc");
        }
    }
    assert!(on_disk.len() >= 5, "{on_disk:?}");
}
