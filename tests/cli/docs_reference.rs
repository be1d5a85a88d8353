//! `ferry docs`: the reference is generated from the engine's metadata and doc comments; every
//! script-visible function has a doc comment with an example, and docs/api.md is current.

use crate::support;

use std::path::Path;

use serde_json::Value;

fn ferry_bin() -> String {
    std::env::var("FERRY_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ferry").to_string())
}

fn docs(args: &[&str]) -> String {
    let out = std::process::Command::new(ferry_bin())
        .arg("docs")
        .args(args)
        .output()
        .expect("run ferry docs");
    assert!(out.status.success(), "{}", support::text(&out.stderr));
    support::text(&out.stdout)
}

#[test]
fn every_script_visible_function_has_a_doc_comment_and_an_example() {
    let v: Value = serde_json::from_str(&docs(&["--format", "json"])).expect("docs json");
    let entries = v["entries"].as_array().expect("entries");
    assert!(entries.len() > 100, "only {} entries", entries.len());
    let mut missing = vec![];
    for e in entries {
        let doc = e["doc"].as_str().unwrap_or_default();
        if doc.trim().is_empty() || !doc.contains("# Example") || !doc.contains("```rhai") {
            missing.push(e["signature"].as_str().unwrap_or("?").to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "without a doc comment or an example: {missing:#?}"
    );
    // The same check in the library (what `ferry docs` renders).
    let sigs: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["signature"].as_str())
        .collect();
    for s in [
        "oic::instance(name: string) -> Instance",
        "Instance.export_archives(items: any) -> Array",
        "Integration.code -> string",
        "vault::open(name: string) -> Vault",
        "assert_eq(actual: any, expected: any)",
        "sandbox::faults(instance: string, faults: Map)",
        "select::latest(list)",
        "roles::for_env(text, env)",
        "envs::pick(all, env)",
        "report::summary(results)",
        "naming::job(template, source, target)",
    ] {
        assert!(sigs.contains(&s), "{s} is not in the reference");
    }
    // Closures and private helpers of the stdlib are not part of the reference.
    assert!(!sigs.iter().any(|s| s.contains("anon$")), "{sigs:?}");
}

#[test]
fn the_committed_reference_is_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed = std::fs::read_to_string(root.join("docs/api.md")).expect("docs/api.md");
    let now = docs(&["--format", "markdown"]);
    assert!(
        committed == now,
        "docs/api.md is stale: run `cargo run -q -- docs --format markdown > docs/api.md`"
    );
    assert!(now.starts_with("# ferry script API"));
    assert!(now.contains("## `oic`"));
    assert!(now.contains("## `stdlib:select`"));
}

#[test]
fn text_filter_and_definitions() {
    let text = docs(&[]);
    assert!(text.contains("\n== oic ==\n"), "{text}");
    assert!(
        text.contains("oic::instance(name: string) -> Instance\n    "),
        "{text}"
    );
    let only = docs(&["oic::"]);
    assert!(only.contains("oic::instance"), "{only}");
    assert!(!only.contains("vault::open"), "{only}");

    let dir = support::tempdir();
    let defs = dir.path().join("defs");
    let out = docs(&["--definitions", defs.to_str().expect("utf-8 path")]);
    assert!(out.starts_with("wrote "), "{out}");
    let all: String = support::files_under(&defs)
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("read definition"))
        .collect();
    assert!(all.contains("module oic"), "{all}");
    assert!(
        all.contains("fn instance(name: String) -> Instance")
            || all.contains("fn instance(name: string)"),
        "{all}"
    );
    assert!(
        all.contains("/// The value of a recipe variable"),
        "doc comments are kept: {all}"
    );
    assert!(all.contains("// fn select::latest(list);"), "{all}");
}

/// Every `# Example` of the reference parses as Rhai (compiled with the language's own rules:
/// the functions it calls are checked by the doc test above, not here), so an example with a
/// typo or a stray placeholder fails the build of the docs.
#[test]
fn every_example_in_the_reference_compiles() {
    let v: Value = serde_json::from_str(&docs(&["--format", "json"])).expect("docs json");
    let engine = rhai::Engine::new();
    let mut examples = 0;
    let mut bad = vec![];
    for e in v["entries"].as_array().expect("entries") {
        let doc = e["doc"].as_str().unwrap_or_default();
        for block in doc.split("```rhai").skip(1) {
            let code = block.split("```").next().unwrap_or_default();
            examples += 1;
            if let Err(err) = engine.compile(code) {
                bad.push(format!("{}: {err}\n{code}", e["signature"]));
            }
        }
    }
    assert!(examples > 100, "only {examples} examples");
    assert!(
        bad.is_empty(),
        "examples that do not compile:\n{}",
        bad.join("\n")
    );
}
