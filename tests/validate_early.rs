//! Finding 9: configuration and recipe-variable errors arrive before the first effect, exit 2,
//! and name the file and the key (or the variable and its `param` line).

mod ledger_support;

use ferry::sim::Seed;
use ledger_support::*;

/// Requests on prod other than reads (imports, activations...).
fn writes_on_prod(env: &Env) -> usize {
    env.sim
        .request_log()
        .iter()
        .filter(|e| e.instance.as_deref() == Some("prod") && e.method != "GET")
        .count()
}

/// A `--var` that does not fit its `param` default stops the run before anything is exported,
/// stored or imported (it used to fail in the access phase, after every import).
#[test]
fn a_bad_var_is_refused_before_the_first_effect() {
    let env = Env::start(Seed::TargetConnections);
    let recipe = env.recipe("migrate.rhai", MIGRATE);
    let line = MIGRATE
        .lines()
        .position(|l| l.contains("param(\"roles\""))
        .unwrap()
        + 1;
    let out = env.ferry(&["run", &recipe, "--var", "roles=ana.silva@example.com"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("`roles`"), "{err}");
    assert!(
        err.contains(&format!("line {line}")),
        "names the param line {line}: {err}"
    );
    assert_eq!(writes_on_prod(&env), 0, "nothing imported");
    let exports = env
        .sim
        .request_log()
        .iter()
        .filter(|e| e.path.ends_with("/archive"))
        .count();
    assert_eq!(exports, 0, "nothing exported");
    assert!(
        !env.path().join("vault/OIC_Backups").exists(),
        "no backup job opened"
    );

    // A value that fits runs as before.
    let out = env.ferry(&[
        "run",
        &recipe,
        "--var",
        "prefix=SCM_",
        "--var",
        r#"roles={"ana.silva@example.com": "Service Developer"}"#,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
