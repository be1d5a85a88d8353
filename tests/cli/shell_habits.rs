//! Shell habits: completions for bash, zsh and fish and the man page are generated from the real
//! clap definition and load in the real shells / render with `man`; `ferry init` in an empty
//! folder writes a config that ferry's own loader reads and a recipe whose test passes at once,
//! and refuses to overwrite anything.
//!
//! The shells and `man` are installed by tests/run.sh; when one is missing the test fails under
//! FERRY_REQUIRE_SERVICES=1 and otherwise checks the generated text only.

use crate::support;

use std::path::Path;
use std::process::Command;

use support::*;

fn required() -> bool {
    std::env::var("FERRY_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            !required(),
            "`{tool}` is not installed (tests/run.sh installs it)"
        );
        eprintln!("SKIP part: `{tool}` is not installed; only the generated text is checked");
    }
    found
}

fn generated(dir: &Path, args: &[&str]) -> String {
    let out = ferry(dir, args, &[]);
    assert!(
        out.status.success(),
        "ferry {args:?}: {}",
        text(&out.stderr)
    );
    let s = text(&out.stdout);
    assert!(!s.is_empty(), "ferry {args:?} printed nothing");
    s
}

#[test]
fn bash_completion_loads_and_completes_subcommands_and_flags() {
    let d = tempdir();
    let script = generated(d.path(), &["completions", "bash"]);
    assert!(script.contains("complete -F _ferry"), "{script}");
    if !have("bash") {
        return;
    }
    let path = d.path().join("ferry.bash");
    std::fs::write(&path, &script).unwrap();
    // Load it and ask the completion function what follows `ferry ` and `ferry run --`.
    let probe = r#"
source "$1" || exit 9
complete -p ferry || exit 8
COMP_WORDS=(ferry ""); COMP_CWORD=1; COMP_LINE="ferry "; COMP_POINT=6
_ferry ferry "" ferry; echo "TOP: ${COMPREPLY[*]}"
COMP_WORDS=(ferry run --dr); COMP_CWORD=2; COMP_LINE="ferry run --dr"; COMP_POINT=14
_ferry ferry --dr run; echo "RUN: ${COMPREPLY[*]}"
"#;
    let out = Command::new("bash")
        .args(["--norc", "-c", probe, "probe"])
        .arg(&path)
        .output()
        .unwrap();
    let so = text(&out.stdout);
    assert!(out.status.success(), "{so}{}", text(&out.stderr));
    let top = so.lines().find(|l| l.starts_with("TOP:")).unwrap();
    for sub in ["run", "plan", "init", "completions", "man", "sim", "test"] {
        assert!(top.split_whitespace().any(|w| w == sub), "{sub} in {top}");
    }
    let run = so.lines().find(|l| l.starts_with("RUN:")).unwrap();
    assert!(run.contains("--dry-run"), "{run}");
}

#[test]
fn zsh_and_fish_completions_parse_in_their_shells() {
    let d = tempdir();
    let zsh = generated(d.path(), &["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef ferry"), "{zsh}");
    let fish = generated(d.path(), &["completions", "fish"]);
    assert!(fish.contains("complete -c ferry"), "{fish}");
    assert!(fish.contains("-a \"init\""), "{fish}");
    for (shell, body, check) in [("zsh", &zsh, "-n"), ("fish", &fish, "--no-execute")] {
        if !have(shell) {
            continue;
        }
        let path = d.path().join(format!("ferry.{shell}"));
        std::fs::write(&path, body).unwrap();
        let out = Command::new(shell).arg(check).arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "{shell} {check}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn man_page_renders_with_every_subcommand() {
    let d = tempdir();
    let page = generated(d.path(), &["man"]);
    assert!(
        page.contains(".TH ferry 1"),
        "{}",
        &page[..200.min(page.len())]
    );
    // `manpage` is an alias.
    assert_eq!(generated(d.path(), &["manpage"]), page);
    // One page per command with --dir.
    let out = ferry(d.path(), &["man", "--dir", "pages"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for f in [
        "ferry.1",
        "ferry-run.1",
        "ferry-init.1",
        "ferry-vault-restore.1",
    ] {
        assert!(d.path().join("pages").join(f).is_file(), "{f}");
    }
    let rendered = if have("man") {
        let path = d.path().join("ferry.1");
        std::fs::write(&path, &page).unwrap();
        let out = Command::new("man")
            .args(["-l", "-P", "cat"])
            .arg(&path)
            .env("MANWIDTH", "100")
            .env("MAN_KEEP_FORMATTING", "0")
            .output()
            .unwrap();
        assert!(out.status.success(), "man -l: {}", text(&out.stderr));
        // Strip overstrike formatting (X\bX) if the pager kept it.
        let raw = text(&out.stdout);
        let mut s = String::new();
        for c in raw.chars() {
            if c == '\u{8}' {
                s.pop();
            } else {
                s.push(c);
            }
        }
        s
    } else {
        // Parse as roff: every line is a request (`.XX`), a comment, or text; no stray escapes.
        for l in page.lines() {
            assert!(!l.starts_with(". "), "bad request line: {l}");
        }
        page.replace("\\-", "-")
            .replace("\\fB", "")
            .replace("\\fR", "")
            .replace("\\fI", "")
    };
    assert!(rendered.contains("NAME"), "{rendered}");
    assert!(
        rendered.contains("SUBCOMMANDS") || rendered.contains("ferry-run(1)"),
        "{rendered}"
    );
    for sub in ["ferry-run(1)", "ferry-init(1)", "ferry-completions(1)"] {
        assert!(rendered.contains(sub), "{sub} in\n{rendered}");
    }
}

/// The environment variables a config's `env:VAR` references name.
fn env_refs(toml: &str) -> Vec<String> {
    let re = regex::Regex::new(r#""env:([A-Za-z0-9_]+)""#).unwrap();
    re.captures_iter(toml).map(|c| c[1].to_string()).collect()
}

#[test]
fn init_then_test_passes_and_the_config_loads() {
    let d = tempdir();
    let out = ferry(d.path(), &["init"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let so = text(&out.stdout);
    assert!(
        so.contains("ferry.toml") && so.contains("ferry test recipes"),
        "{so}"
    );
    let cfg_text = std::fs::read_to_string(d.path().join("ferry.toml")).unwrap();
    for section in ["[instances.", "[vaults.", "[identity.", "[mail]"] {
        assert!(cfg_text.contains(section), "{section}");
    }
    assert!(
        cfg_text.contains("\nclient_secret = \"env:"),
        "secrets are references"
    );

    // ferry test passes at once, offline.
    let out = ferry(d.path(), &["test", "recipes"], &[]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("1 passed, 0 failed"), "{all}");

    // ferry's own loader reads the config (with the secrets it references set), and knows
    // every instance, the vault, the identity domain and the mail settings.
    let vars = env_refs(&cfg_text);
    assert!(vars.len() >= 4, "{vars:?}");
    let cfg = load_with_env(d.path(), &vars);
    assert_eq!(
        cfg.instances.keys().cloned().collect::<Vec<_>>(),
        ["dev", "prod"]
    );
    assert!(cfg.vaults.contains_key("backups"));
    assert!(cfg.identities.contains_key("corp"));
    assert!(cfg.mail.as_ref().is_some_and(|m| m.smtp.is_some()));
    // The vault folder it points at is beside the config.
    let vault_url = &cfg.vaults["backups"].url;
    let vault_dir = url::Url::parse(vault_url).unwrap().to_file_path().unwrap();
    assert_eq!(vault_dir.file_name().unwrap(), "backups");
    assert_eq!(
        vault_dir.parent().unwrap().canonicalize().unwrap(),
        d.path().canonicalize().unwrap()
    );
}

/// Loads `dir/ferry.toml` with ferry's loader, from a copy where each `env:VAR` reference is
/// replaced by a `file:` reference to a dummy value (this test's environment stays untouched).
fn load_with_env(dir: &Path, vars: &[String]) -> ferry::config::Config {
    let text = std::fs::read_to_string(dir.join("ferry.toml")).unwrap();
    let mut patched = text.clone();
    let secrets = dir.join("test-secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    for v in vars {
        std::fs::write(secrets.join(v), format!("dummy-{v}")).unwrap();
        patched = patched.replace(
            &format!("\"env:{v}\""),
            &format!("\"file:test-secrets/{v}\""),
        );
    }
    let path = dir.join("ferry-resolved.toml");
    std::fs::write(&path, patched).unwrap();
    ferry::config::Config::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn init_refuses_to_overwrite_and_writes_nothing() {
    let d = tempdir();
    std::fs::create_dir_all(d.path().join("proj/recipes")).unwrap();
    std::fs::write(d.path().join("proj/recipes/promote.rhai"), "// mine\n").unwrap();
    let out = ferry(d.path(), &["init", "proj"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("promote.rhai") && err.contains("writes nothing over existing files"),
        "{err}"
    );
    assert!(
        !d.path().join("proj/ferry.toml").exists(),
        "nothing written"
    );
    assert_eq!(
        std::fs::read_to_string(d.path().join("proj/recipes/promote.rhai")).unwrap(),
        "// mine\n"
    );
    // Into a new folder it works, and a second time it refuses.
    let out = ferry(d.path(), &["init", "fresh"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let before = std::fs::read_to_string(d.path().join("fresh/ferry.toml")).unwrap();
    let out = ferry(d.path(), &["init", "fresh"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("ferry.toml"));
    assert_eq!(
        std::fs::read_to_string(d.path().join("fresh/ferry.toml")).unwrap(),
        before
    );
}
