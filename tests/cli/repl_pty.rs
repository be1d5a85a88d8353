//! `ferry repl` through a real pseudo-terminal: keys are typed and the screen is read by
//! `tests/scripts/pty_drive.py` (Python's `pty` module), against the in-process sandbox.

use crate::support;

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

/// The binary under test (`$FERRY_TEST_BIN` overrides Cargo's, for a copy taken right after the build).
fn ferry_bin() -> String {
    std::env::var("FERRY_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ferry").to_string())
}

/// Runs `ferry repl ARGS` in a pseudo-terminal in `dir` with the steps; returns the transcript.
fn drive(dir: &Path, args: &[&str], steps: Value) -> String {
    drive_env(dir, args, &[], steps)
}

fn drive_env(dir: &Path, args: &[&str], env: &[(&str, &str)], steps: Value) -> String {
    let scenario = dir.join("scenario.json");
    std::fs::write(&scenario, steps.to_string()).expect("write scenario");
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/pty_drive.py");
    let out = Command::new("python3")
        .arg(&driver)
        .arg(&scenario)
        .arg("--")
        .arg(ferry_bin())
        .arg("repl")
        .args(args)
        .current_dir(dir)
        .env_remove("FERRY_CONFIG")
        .env_remove("FERRY_PATH")
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .output()
        .expect("python3 runs the pty driver");
    let text = support::text(&out.stdout);
    assert!(
        out.status.success(),
        "pty scenario failed:\n{text}\n{}",
        support::text(&out.stderr)
    );
    text
}

#[test]
fn scope_multiline_tables_help_and_history() {
    let dir = support::tempdir();
    let t = drive(
        dir.path(),
        &["--sandbox"],
        json!([
            ["expect", "ferry> "],
            ["mark"],
            ["line", "let x = 40 + 2;"],
            ["line", "x"],
            ["expect", "\n42\n"],
            // Multi-line: an open block waits for more (no error, no result until it is closed:
            // anything the open block printed would stand before the result).
            ["mark"],
            ["send", "fn double(n) {\r"],
            ["send", "  n * 2\r"],
            ["line", "}"],
            ["line", "double(x)"],
            ["expect", "\n84\n"],
            ["reject", "error"],
            // An unfinished expression waits too.
            ["mark"],
            ["send", "let y = [1,\r"],
            ["line", "2];"],
            ["line", "y.len() + 1"],
            ["expect", "\n3\n"],
            // Imports persist across lines.
            ["mark"],
            ["line", "import \"naming\" as naming;"],
            [
                "line",
                "naming::file(\"{code}_{version}.{ext}\", \"A\", \"01\", \"iar\")"
            ],
            ["expect", "A_01.iar"],
            // A list of integrations prints as a table.
            ["mark"],
            ["line", "let dev = oic::instance(\"dev\");"],
            ["line", "dev.integrations()", 30],
            ["expect", "ID +STATUS +NAME.*\\(\\d+ integrations\\)", 30],
            // JSON output.
            ["mark"],
            ["line", ":json on"],
            ["line", "#{ a: 1 }"],
            ["expect", "\"a\": 1"],
            ["line", ":json off"],
            // Help on a function: signature, doc and example.
            ["mark"],
            ["line", ":help oic::instance"],
            [
                "expect",
                "oic::instance\\(name: string\\) -> Instance.*# Example"
            ],
            ["mark"],
            ["line", ":vars"],
            ["expect", "x = 42"],
            // Errors print like batch mode (source, line, caret).
            ["mark"],
            ["line", "let z = nope + 1;"],
            ["expect", "<repl:\\d+>:1:9.*\\^"],
            // :plan describes instead of doing.
            ["mark"],
            [
                "line",
                ":plan dev.activate(dev.integrations().filter(|i| i.status == \"CONFIGURED\"))",
                30
            ],
            [
                "expect",
                "plan \\(\\d+ step\\(s\\), nothing was done\\)",
                30
            ],
            ["send", "\u{4}"],
            ["exit", 0, 20]
        ]),
    );
    assert!(t.contains("84"), "{t}");
    let hist = std::fs::read_to_string(dir.path().join("state/ferry/history"))
        .expect("history file in the state folder");
    assert!(hist.contains("let x = 40 + 2;"), "history: {hist}");
}

#[test]
fn tab_completion_from_metadata_profiles_and_codes() {
    let dir = support::tempdir();
    drive(
        dir.path(),
        &["--sandbox"],
        json!([
            ["expect", "ferry> "],
            // A module's functions.
            ["mark"],
            ["send", "oic::insta\t"],
            ["expect", "oic::instance"],
            ["send", "(\"de\t"],
            ["expect", "oic::instance\\(\"dev"],
            ["line", "\")"],
            ["expect", "Instance\\(dev, OIC 2"],
            // Methods of the value before the dot.
            ["mark"],
            ["line", "let dev = oic::instance(\"dev\");"],
            ["send", "let all = dev.integrat\t"],
            ["expect", "dev\\.integration"],
            ["line", "s();"],
            // Integration codes, once a list was fetched.
            ["mark"],
            ["send", "all.filter(|i| i.code == \"HR_EMP\t"],
            ["expect", "HR_EMPLOYEE_SYNC"],
            ["line", "\").len()"],
            ["expect", "\n[1-9]\\d*\n"],
            // Commands.
            ["mark"],
            ["send", ":he\t"],
            ["expect", ":help"],
            ["line", ""],
            ["expect", "Commands:"],
            ["send", ":quit\r"],
            ["exit", 0, 20]
        ]),
    );
}

#[test]
fn ctrl_c_cancels_a_slow_call_and_the_session_goes_on() {
    let dir = support::tempdir();
    let t = drive(
        dir.path(),
        &["--sandbox"],
        json!([
            ["expect", "ferry> "],
            ["line", "let dev = oic::instance(\"dev\");"],
            ["line", "let n = 7;"],
            ["mark"],
            ["line", "dev"],
            [
                "expect",
                "Instance\\(dev, OIC 2, (http://127\\.0\\.0\\.1:\\d+)"
            ],
            // Every emulator request now takes 20 s.
            ["post", "{1}/__sim/faults", "{\"latency_ms\": 20000}"],
            ["mark"],
            ["send", "dev.integrations().len()\r"],
            // Ctrl-C once the call is underway: the emulator holds its request.
            [
                "await",
                "{1}/__sim/in_flight?at_least=1&wait_ms=10000",
                ":\\s*[1-9]",
                20
            ],
            ["send", "\u{3}"],
            ["expect", "error: Script terminated.*\nferry> ", 5],
            // The session is intact, and the next entry is not cancelled.
            ["post", "{1}/__sim/faults", "{}"],
            ["mark"],
            ["line", "n * 6"],
            ["expect", "\n42\n", 10],
            ["mark"],
            ["line", "dev.integrations().len() > 0", 30],
            ["expect", "\ntrue\n", 30],
            // A runaway loop stops too.
            ["mark"],
            ["send", "let k = 0; print(\"looping\"); loop { k += 1; }\r"],
            ["expect", "\nlooping\n", 10],
            ["send", "\u{3}"],
            ["expect", "error: Script terminated.*\nferry> ", 5],
            // Ctrl-C at the prompt only clears the line.
            ["mark"],
            ["send", "garbage\u{3}"],
            ["expect", "garbage\nferry> "],
            ["mark"],
            ["line", "n"],
            ["expect", "\n7\n"],
            ["send", "\u{4}"],
            ["exit", 0, 20]
        ]),
    );
    assert!(t.contains("Script terminated"), "{t}");
}

#[test]
fn secrets_never_print() {
    let dir = support::tempdir();
    let secret = "s3cr3t-Value-9f2c";
    std::fs::write(
        dir.path().join("ferry.toml"),
        "[instances.dev]\nbase_url = \"http://127.0.0.1:9\"\ngeneration = 2\ntoken_url = \"http://127.0.0.1:9/token\"\nclient_id = \"cid\"\nclient_secret = \"env:REPL_PTY_SECRET\"\nscope = \"s\"\n",
    )
    .expect("write config");
    let var = format!("leak={secret}");
    let t = drive_env(
        dir.path(),
        &["--config", "ferry.toml", "--var", &var],
        &[("REPL_PTY_SECRET", secret)],
        json!([
            ["expect", "ferry> "],
            ["mark"],
            ["line", "param(\"leak\")"],
            ["expect", "\\*\\*\\*"],
            ["mark"],
            ["line", "print(`value: ${param(\"leak\")}`)"],
            ["expect", "value: \\*\\*\\*"],
            ["mark"],
            ["line", "throw param(\"leak\")"],
            ["expect", "error"],
            ["line", ":vars"],
            ["send", "\u{4}"],
            ["exit", 0, 20]
        ]),
    );
    assert!(!t.contains(secret), "a secret was printed:\n{t}");
    assert!(t.contains("***"), "{t}");
}

#[test]
fn notify_at_end_sends_when_the_session_ends() {
    let dir = support::tempdir();
    let t = drive(
        dir.path(),
        &["--sandbox"],
        json!([
            ["expect", "ferry> "],
            ["mark"],
            ["line", "notify::at_end(#{ to: [\"ops@example.com\"] });"],
            ["send", "\u{4}"],
            ["expect", "mail to ops@example.com written to", 20],
            ["exit", 0, 20]
        ]),
    );
    let outbox = dir.path().join(".ferry/sandbox/outbox");
    let mails: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap_or_else(|e| panic!("no outbox {}: {e}\n{t}", outbox.display()))
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert_eq!(mails.len(), 1, "{t}");
    assert!(mails[0].contains("ops@example.com"), "{}", mails[0]);
}
