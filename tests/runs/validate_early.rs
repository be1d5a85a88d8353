//! Finding 9: configuration and recipe-variable errors arrive before the first effect, exit 2,
//! and name the file and the key (or the variable and its `param` line).

use crate::support::ledger as ledger_support;

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

/// Appends `extra` to the env's ferry.toml; returns the 1-based line where it starts.
fn append_config(env: &Env, extra: &str) -> usize {
    let cfg = env.path().join("ferry.toml");
    let mut t = std::fs::read_to_string(&cfg).unwrap();
    if !t.ends_with('\n') {
        t.push('\n');
    }
    let start = t.lines().count() + 1;
    t.push_str(extra);
    std::fs::write(&cfg, t).unwrap();
    start
}

/// A vault setting that cannot work (a secret that cannot be read) is refused before the
/// first effect, exit 2, naming the file, the key and its line (it used to fail when the
/// recipe opened the vault, after the exports, exit 1, without the file).
#[test]
fn a_bad_vault_setting_is_refused_before_the_first_effect() {
    let env = Env::start(Seed::TargetConnections);
    let recipe = env.recipe("migrate.rhai", MIGRATE);
    let start = append_config(&env, "passphrase_secret = \"file:secrets/missing.txt\"\n");
    let cfg = std::fs::read_to_string(env.path().join("ferry.toml")).unwrap();
    assert!(
        cfg.lines()
            .nth(start - 2)
            .unwrap()
            .starts_with("url = \"file://"),
        "appended to [vaults.backups]"
    );
    let out = env.ferry(&["run", &recipe]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("ferry.toml: `vaults.backups.passphrase_secret`"),
        "names file and key: {err}"
    );
    assert!(
        err.contains(&format!("(line {start})")),
        "names the line {start}: {err}"
    );
    let archives = env
        .sim
        .request_log()
        .iter()
        .filter(|e| e.path.ends_with("/archive"))
        .count();
    assert_eq!(archives, 0, "nothing exported or imported");
}

/// `mail.from` that is not an address, and a `base_url` with a password, a query or a
/// fragment: refused when the config is read, exit 2, file and key named.
#[test]
fn bad_addresses_and_urls_are_refused_when_the_config_is_read() {
    let env = Env::start(Seed::TargetConnections);
    let recipe = env.recipe("hello.rhai", "print(\"hello\");\n");
    let cfg = env.path().join("ferry.toml");
    let good = std::fs::read_to_string(&cfg).unwrap();

    append_config(&env, "[mail]\nfrom = \"ferry at example dot com\"\n");
    let out = env.ferry(&["run", &recipe]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("ferry.toml: `mail.from`"), "{err}");

    for (bad, what) in [
        ("https://user:pw@oic.example.com", "password"),
        ("https://oic.example.com/?x=1", "query"),
        ("https://oic.example.com/#top", "fragment"),
    ] {
        std::fs::write(&cfg, &good).unwrap();
        append_config(
            &env,
            &format!(
                "[instances.far]\nbase_url = \"{bad}\"\ngeneration = 2\nusername = \"u\"\npassword = \"env:FERRY_SURELY_UNSET_VAR_X\"\n"
            ),
        );
        let out = env.ferry(&["run", &recipe]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(
            err.contains("ferry.toml: `instances.far.base_url`"),
            "{what}: {err}"
        );
        assert!(err.contains("(line "), "{what}: {err}");
        assert!(!err.contains("pw@"), "the password is not echoed: {err}");
    }
}

/// Plain http:// and SMTP without TLS to another host are accepted with a warning; to this
/// machine (the emulator on 127.0.0.1) without one.
#[test]
fn cleartext_to_other_hosts_is_warned_about() {
    let env = Env::start(Seed::TargetConnections);
    let recipe = env.recipe("hello.rhai", "print(\"hello\");\n");
    std::fs::write(env.path().join("secrets/far.txt"), "pw").unwrap();
    let out = env.ferry(&["run", &recipe]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("http://"),
        "no warning for loopback: {}",
        text(&out.stderr)
    );

    append_config(
        &env,
        "[instances.far]\nbase_url = \"http://oic.example.com\"\ngeneration = 2\nusername = \"u\"\npassword = \"file:secrets/far.txt\"\n\n[mail]\nhost = \"smtp.example.com\"\nport = 25\ntls = \"none\"\nfrom = \"ferry@example.com\"\n",
    );
    let out = env.ferry(&["run", &recipe]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("`instances.far.base_url`: plain http:// to oic.example.com"),
        "{err}"
    );
    assert!(
        err.contains("`mail.tls`: SMTP without TLS to smtp.example.com"),
        "{err}"
    );
}
