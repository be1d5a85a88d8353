//! Bad input gets a clear error: script errors render `file:line:col`, the line and a caret (and
//! the call chain for errors inside functions and imported modules); config errors name the file
//! and the key; both exit with code 2. A configured secret never appears in any output or file.

use crate::support;

use std::path::Path;

use support::*;

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn syntax_error_is_rendered_with_a_caret() {
    let d = tempdir();
    write(d.path(), "ferry.toml", "");
    write(d.path(), "bad.rhai", "let a = 1;\nlet b = a +;\n");
    for args in [&["run", "bad.rhai"][..], &["check", "bad.rhai"][..]] {
        let out = ferry(d.path(), args, &[]);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            text(&out.stderr),
            "error: syntax error: Unexpected ';'\n --> bad.rhai:2:12\n  |\n2 | let b = a +;\n  |            ^\n"
        );
    }
}

#[test]
fn unknown_function_is_rendered_with_a_caret() {
    let d = tempdir();
    write(d.path(), "ferry.toml", "");
    write(
        d.path(),
        "unknown.rhai",
        "// calls something that does not exist\nlet x = 1;\nlet y = no_such_fn(x);\n",
    );
    let out = ferry(d.path(), &["run", "unknown.rhai"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: Function not found: no_such_fn (i64)\n --> unknown.rhai:3:9\n  |\n3 | let y = no_such_fn(x);\n  |         ^\n"
    );
}

#[test]
fn error_inside_an_imported_module_shows_the_innermost_place_and_the_chain() {
    let d = tempdir();
    write(d.path(), "ferry.toml", "");
    write(
        d.path(),
        "lib/util.rhai",
        "fn fails(n) {\n    let m = n * 2;\n    no_such_method(m)\n}\n",
    );
    write(
        d.path(),
        "main.rhai",
        "import \"util\" as util;\n\nfn run_it() {\n\tutil::fails(21)\n}\nrun_it();\n",
    );
    let out = ferry(d.path(), &["run", "main.rhai", "--lib", "lib"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: Function not found: no_such_method (i64)\n --> lib/util.rhai:3:5\n  |\n3 |     no_such_method(m)\n  |     ^\n  = in call to function 'fails' at main.rhai:4:8\n  = in call to function 'run_it' at main.rhai:6:1\n"
    );
}

#[test]
fn syntax_error_inside_an_imported_module_names_the_module_file() {
    let d = tempdir();
    write(d.path(), "lib/broken.rhai", "fn x() {\n  let = 3;\n}\n");
    write(d.path(), "imp.rhai", "import \"broken\" as b;\n");
    let out = ferry(d.path(), &["check", "imp.rhai", "--lib", "lib"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: syntax error: Expecting name of a variable\n --> lib/broken.rhai:2:7\n  |\n2 |   let = 3;\n  |       ^\n  = importing 'lib/broken.rhai' at imp.rhai:1:1\n"
    );
}

#[test]
fn domain_errors_are_catchable_maps() {
    let d = tempdir();
    let recipe = r#"
let dev = oic::instance("dev");
let status = 0;
let stage = "";
try { dev.integration("NO_SUCH_THING|01.00.0000"); } catch (e) { status = e.status; stage = e.kind; }
if status != 404 { throw `expected 404, got ${status}`; }
try { oic::instance("nowhere"); } catch (e) { print(`config: ${e.kind}: ${e.message}`); }
print("caught");
"#;
    write(d.path(), "c.rhai", recipe);
    let out = ferry(d.path(), &["run", "c.rhai", "--sandbox"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("config: config: <sandbox>: `instances.nowhere`: no such instance (configured: dev, prod, uat)"), "{s}");
    assert!(s.contains("caught"));
}

fn config_error(toml: &str) -> (Option<i32>, String) {
    let d = tempdir();
    write(d.path(), "ferry.toml", toml);
    write(d.path(), "r.rhai", "print(1);\n");
    let out = ferry(d.path(), &["run", "r.rhai"], &[]);
    (out.status.code(), text(&out.stderr))
}

#[test]
fn config_errors_name_the_file_and_the_key() {
    let (code, err) =
        config_error("[instances.dev]\nbase_url = \"https://dev.example.com\"\ngeneration = 2\n");
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        "error: ferry.toml: `instances.dev.client_id`: missing (configure token_url, client_id, client_secret and scope, or username and password on Gen2) (line 1)\n"
    );

    let (code, err) = config_error(
        "[instances.dev]\nbase_url = \"ht!tp//bad\"\ngeneration = 2\ntoken_url=\"https://t\"\nclient_id=\"c\"\nclient_secret=\"x\"\nscope=\"s\"\n",
    );
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        "error: ferry.toml: `instances.dev.base_url`: not a valid URL (`ht!tp//bad`): relative URL without a base (line 2)\n"
    );

    let (code, err) = config_error(
        "[instances.dev]\nbase_url = \"https://dev.example.com\"\ngeneration = 3\nintegration_instance = \"dev-1\"\ntoken_url = \"https://idcs.example.com/oauth2/v1/token\"\nclient_id = \"cid\"\nclient_secret = \"env:FERRY_SURELY_UNSET_SECRET\"\nscope = \"https://AUD:443/ic/api/\"\n",
    );
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        "error: ferry.toml: `instances.dev.client_secret`: environment variable `FERRY_SURELY_UNSET_SECRET` is not set (from env:FERRY_SURELY_UNSET_SECRET) (line 7)\n"
    );

    let (code, err) =
        config_error("[instances.dev]\nbase_url = \"https://dev.example.com\"\ncolour = 3\n");
    assert_eq!(code, Some(2));
    assert!(
        err.starts_with("error: ferry.toml: `instances.dev.colour`: unknown key"),
        "{err}"
    );
}

#[test]
fn a_configured_secret_never_appears_in_output_or_files() {
    let rt = ferry::cli::runtime().unwrap();
    let sim = rt
        .block_on(ferry::sim::start(ferry::sim::SimConfig {
            instances: vec![
                ferry::sim::SimInstanceSpec {
                    name: "dev".into(),
                    generation: 2,
                    seed: ferry::sim::Seed::Sample,
                },
                ferry::sim::SimInstanceSpec {
                    name: "prod".into(),
                    generation: 3,
                    seed: ferry::sim::Seed::TargetConnections,
                },
            ],
            ..Default::default()
        }))
        .unwrap();
    let d = tempdir();
    let dev = sim.info.instances[0].clone();
    let prod = sim.info.instances[1].clone();
    std::fs::write(
        d.path().join("prod.secret"),
        format!("{}\n", prod.client_secret),
    )
    .unwrap();
    let toml = format!(
        "[instances.dev]\nbase_url = \"{}\"\ngeneration = 2\ntoken_url = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"env:DEV_CLIENT_SECRET\"\nscope = \"{}\"\n\n\
         [instances.prod]\nbase_url = \"{}\"\ngeneration = 3\nintegration_instance = \"{}\"\ntoken_url = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"file:prod.secret\"\nscope = \"{}\"\n\n\
         [vaults.backups]\nurl = \"file://{}/vault\"\n",
        dev.base_url,
        dev.token_url,
        dev.client_id,
        dev.scope,
        prod.base_url,
        prod.integration_instance.clone().unwrap(),
        prod.token_url,
        prod.client_id,
        prod.scope,
        d.path().display()
    );
    std::fs::write(d.path().join("ferry.toml"), toml).unwrap();
    // A recipe that also prints and fails on purpose, so error paths are covered.
    std::fs::write(
        d.path().join("leak.rhai"),
        "let dev = oic::instance(\"dev\");\nprint(dev);\nprint(dev.integrations().len());\ntry { dev.integration(\"NOPE|01.00.0000\"); } catch (e) { print(e); }\n",
    )
    .unwrap();
    let recipe = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/migrate.rhai");
    let env = [("DEV_CLIENT_SECRET", dev.client_secret.as_str())];
    let mut outputs = vec![];
    for args in [
        vec!["-vvv", "run", recipe.to_str().unwrap(), "--json"],
        vec!["-vvv", "run", "leak.rhai"],
    ] {
        let out = ferry(d.path(), &args, &env);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        outputs.push(text(&out.stdout));
        outputs.push(text(&out.stderr));
    }
    let mut files = files_under(&d.path().join(".ferry"));
    files.extend(files_under(&d.path().join("vault")));
    assert!(files.len() > 5, "runs and backups were written");
    for secret in [&dev.client_secret, &prod.client_secret] {
        assert!(secret.len() >= 8);
        for o in &outputs {
            assert!(!o.contains(secret.as_str()), "secret in output:\n{o}");
        }
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(secret.as_str()),
                "secret in {}",
                f.display()
            );
        }
    }
    rt.block_on(sim.shutdown());
}

#[test]
fn plan_usage_errors_and_changes_exit_with_different_codes() {
    let d = tempdir();
    write(
        d.path(),
        "sync.rhai",
        "let dev = oic::instance(\"dev\");\nlet wanted = dev.integrations(#{ latest: true }).filter(|i| i.status == \"ACTIVATED\");\noic::instance(\"prod\").import_archives(dev.export_archives(wanted), #{ overwrite: true });\n",
    );
    let usage = ferry(d.path(), &["plan", "--no-such-flag", "sync.rhai"], &[]);
    assert_eq!(usage.status.code(), Some(1), "{}", text(&usage.stderr));
    assert!(text(&usage.stderr).contains("--no-such-flag"));
    // The same flag elsewhere stays a usage error (2).
    let run = ferry(d.path(), &["run", "--no-such-flag", "sync.rhai"], &[]);
    assert_eq!(run.status.code(), Some(2));
    let changes = ferry(d.path(), &["plan", "--sandbox", "sync.rhai"], &[]);
    assert_eq!(
        changes.status.code(),
        Some(2),
        "{}{}",
        text(&changes.stdout),
        text(&changes.stderr)
    );
    assert!(text(&changes.stdout).contains("change(s) would be made"));
    assert_ne!(usage.status.code(), changes.status.code());
}

#[test]
fn recipe_variables_are_strings_unless_the_default_has_another_type() {
    let d = tempdir();
    write(d.path(), "ferry.toml", "");
    write(
        d.path(),
        "vars.rhai",
        "print(`${type_of(param(\"prefix\"))} ${param(\"prefix\")}`);\nprint(`${type_of(param(\"prefix\", \"x\"))} ${param(\"prefix\", \"x\")}`);\nprint(`${param(\"n\", 1) + 1} ${param(\"flag\", false)} ${param(\"list\", []).len()}`);\nprint(`${type_of(params().n)} ${param(\"unset\", 7)}`);\n",
    );
    let out = ferry(
        d.path(),
        &[
            "run",
            "vars.rhai",
            "--var",
            "prefix=01",
            "--var",
            "n=41",
            "--var",
            "flag=true",
            "--var",
            "list=[1,2]",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.starts_with("string 01\nstring 01\n42 true 2\nstring 7\n"),
        "{s}"
    );
    let bad = ferry(
        d.path(),
        &["run", "vars.rhai", "--var", "prefix=01", "--var", "n=x"],
        &[],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr)
            .contains("recipe variable `n`: expected an integer (like its default), found `x`"),
        "{}",
        text(&bad.stderr)
    );
}
