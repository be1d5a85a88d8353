//! `ferry test DIR`: finds `*_test.rhai` files, runs each `test_*` function (or the file) against
//! its own sandbox, applies fixtures and faults, and prints `N passed, N failed`.

use crate::support;

use std::path::Path;

fn ferry_bin() -> String {
    std::env::var("FERRY_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ferry").to_string())
}

fn ferry_test(args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(ferry_bin())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("test")
        .args(args)
        .env_remove("FERRY_PATH")
        .output()
        .expect("run ferry test");
    (
        out.status.code(),
        format!(
            "{}{}",
            support::text(&out.stdout),
            support::text(&out.stderr)
        ),
    )
}

#[test]
fn passes_failures_fixtures_and_faults_are_counted() {
    let (code, out) = ferry_test(&["tests/scripts/ferry_test"]);
    assert_eq!(code, Some(1), "a failing test exits 1:\n{out}");
    // 1 pass + 1 fail in pass_fail_test, 1 fixture file, 2 fault tests; helper.rhai (not *_test.rhai) is ignored.
    assert!(out.contains("\n4 passed, 1 failed\n"), "{out}");
    assert!(
        out.contains("PASS tests/scripts/ferry_test/pass_fail_test.rhai::test_passes"),
        "{out}"
    );
    assert!(
        out.contains("FAIL tests/scripts/ferry_test/pass_fail_test.rhai::test_fails"),
        "{out}"
    );
    assert!(!out.contains("helper_is_not_a_test"), "{out}");
    assert!(
        out.contains("PASS tests/scripts/ferry_test/sub/fixture_test.rhai\n"),
        "{out}"
    );
    assert!(out.contains("PASS tests/scripts/ferry_test/sub/faults_test.rhai::test_a_fault_reaches_the_script_then_clears"), "{out}");
    // The failure shows both values, the message and where it happened.
    assert!(out.contains("assert_eq failed: maps differ"), "{out}");
    assert!(out.contains("actual:   #{\"a\": 1}"), "{out}");
    assert!(out.contains("expected: #{\"a\": 2}"), "{out}");
    assert!(out.contains("pass_fail_test.rhai:8:"), "{out}");
    assert!(!out.contains("helper.rhai"), "{out}");
}

#[test]
fn filter_selects_tests_and_an_empty_folder_is_a_usage_error() {
    let (code, out) = ferry_test(&["tests/scripts/ferry_test", "--filter", "test_passes"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("\n1 passed, 0 failed\n"), "{out}");
    let dir = support::tempdir();
    let (code, out) = ferry_test(&[dir.path().to_str().expect("utf-8 path")]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("no *_test.rhai files"), "{out}");
}

#[test]
fn a_bad_fixture_line_fails_its_file_with_the_line() {
    let dir = support::tempdir();
    let f = dir.path().join("bad_test.rhai");
    std::fs::write(&f, "// fixture: instance x gen=9\nassert(true);\n").expect("write");
    let (code, out) = ferry_test(&[f.to_str().expect("utf-8 path")]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("line 1: fixture: unknown setting `gen=9`"),
        "{out}"
    );
    assert!(Path::new(&f).exists());
}

#[test]
fn notify_at_end_sends_when_a_test_file_ends() {
    let dir = support::tempdir();
    let file = dir.path().join("notify_test.rhai");
    std::fs::write(
        &file,
        "fn test_asks_for_a_mail_at_end() {\n    notify::at_end(#{ to: [\"ops@example.com\"] });\n}\n",
    )
    .unwrap();
    let (code, out) = ferry_test(&[file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("\n1 passed, 0 failed\n"), "{out}");
    assert!(
        out.contains("  at end: mail to ops@example.com written to "),
        "{out}"
    );
}
