//! JWT user-assertion authentication end to end: `ferry run` against an emulated OIC 3 instance
//! whose identity domain holds the public key of an RSA key pair made here with openssl. A run
//! authenticated with the matching private key works (with the client secret, and with a client
//! assertion instead of it); a wrong key, an unknown alias or an unknown user is refused with a
//! clear error; an expired or forged assertion is refused by the token endpoint. The key, the
//! assertions and the tokens never appear in any output or file.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use ferry::sim::{Seed, SimConfig};
use support::*;

const USER: &str = "ferry.ci@example.com";
const ALIAS: &str = "ferry_ci_cert";

/// An RSA key pair from openssl: (private PKCS#8 PEM path, public SPKI PEM).
fn keypair(dir: &Path, name: &str) -> (PathBuf, Vec<u8>) {
    let key = dir.join(format!("{name}.pem"));
    let ok = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .output()
        .expect("openssl is installed (tests/run.sh installs it)");
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let out = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    (key, out.stdout)
}

/// The emulator (one gen-3 instance `dev`, started by `support::emulator`) whose identity domain
/// holds the public key of `key`; `wrong_key` is another pair's private key.
struct World {
    env: support::emulator::World,
    key: PathBuf,
    wrong_key: PathBuf,
}

fn world() -> World {
    let env = support::emulator::World::start(
        SimConfig {
            instances: vec![support::emulator::spec("dev", 3, Seed::Sample)],
            ..Default::default()
        },
        Default::default(),
    );
    let (key, public) = keypair(env.dir.path(), "ferry-ci");
    let (wrong_key, _) = keypair(env.dir.path(), "someone-else");
    let sim = env.sim();
    sim.register_jwt_key("dev", ALIAS, &public).unwrap();
    sim.add_user(USER, "Ferry CI");
    std::fs::write(
        env.dir.path().join("list.rhai"),
        "let all = oic::instance(\"dev\").integrations();\nprint(`listed ${all.len()} integrations`);\n",
    )
    .unwrap();
    World {
        env,
        key,
        wrong_key,
    }
}

impl World {
    /// Writes ferry.toml for the JWT grant and runs list.rhai; returns (exit code, stdout+stderr).
    fn run(&self, key: &Path, alias: &str, user: &str, with_secret: bool) -> (i32, String) {
        let i = self.env.sim().instance("dev").unwrap();
        std::fs::write(
            self.env.dir.path().join("client-secret.txt"),
            &i.client_secret,
        )
        .unwrap();
        let secret_line = if with_secret {
            "client_secret = \"file:client-secret.txt\"\n"
        } else {
            ""
        };
        let cfg = format!(
            "[instances.dev]\nbase_url = \"{}\"\ngeneration = 3\nintegration_instance = \"{}\"\ntoken_url = \"{}\"\nclient_id = \"{}\"\n{secret_line}scope = \"{}\"\njwt_user = \"{user}\"\njwt_private_key = \"file:{}\"\njwt_key_id = \"{alias}\"\n",
            i.base_url,
            i.integration_instance.as_deref().unwrap(),
            i.token_url,
            i.client_id,
            i.scope,
            key.display(),
        );
        std::fs::write(self.env.dir.path().join("ferry.toml"), cfg).unwrap();
        let out = ferry(self.env.dir.path(), &["run", "list.rhai"], &[]);
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        self.assert_no_secret(&all);
        (out.status.code().unwrap_or(-1), all)
    }

    /// Neither key, nor any JWT (assertions and the emulator's tokens all start with `eyJ`),
    /// in `output` or in any file ferry wrote.
    fn assert_no_secret(&self, output: &str) {
        let mut texts = vec![("output".to_string(), output.to_string())];
        for f in files_under(&self.env.dir.path().join(".ferry")) {
            if let Ok(t) = std::fs::read_to_string(&f) {
                texts.push((f.display().to_string(), t));
            }
        }
        for k in [&self.key, &self.wrong_key] {
            let pem = std::fs::read_to_string(k).unwrap();
            let body = pem.lines().nth(1).unwrap().to_string();
            for (what, t) in &texts {
                assert!(!t.contains(&body), "the private key in {what}");
            }
        }
        for (what, t) in &texts {
            assert!(!t.contains("eyJ"), "a JWT in {what}:\n{t}");
        }
    }
}

#[test]
fn a_jwt_authenticated_run_works_with_the_secret_or_a_client_assertion() {
    let w = world();
    let n = w
        .env
        .rt
        .block_on(list_integrations(w.env.sim().instance("dev").unwrap()))
        .len();
    for with_secret in [true, false] {
        let (code, out) = w.run(&w.key, ALIAS, USER, with_secret);
        assert_eq!(code, 0, "with_secret={with_secret}: {out}");
        assert!(out.contains(&format!("listed {n} integrations")), "{out}");
    }
}

#[test]
fn a_wrong_key_an_unknown_alias_or_user_is_refused_clearly() {
    let w = world();
    let cases = [
        (&w.wrong_key, ALIAS, USER, true, "signature is invalid"),
        (&w.wrong_key, ALIAS, USER, false, "signature is invalid"),
        (
            &w.key,
            "no_such_alias",
            USER,
            true,
            "No trusted certificate with the alias 'no_such_alias'",
        ),
        (
            &w.key,
            ALIAS,
            "nobody@example.com",
            true,
            "'nobody@example.com' of the assertion is not an active user",
        ),
    ];
    for (key, alias, user, with_secret, expected) in cases {
        let (code, out) = w.run(key, alias, user, with_secret);
        assert_ne!(code, 0, "{out}");
        assert!(out.contains(expected), "expected `{expected}` in:\n{out}");
        assert!(out.contains("token endpoint answered"), "{out}");
    }
}

#[test]
fn a_bad_private_key_is_a_config_error_naming_the_key_not_showing_it() {
    let w = world();
    let bogus = w.env.dir.path().join("bogus.pem");
    std::fs::write(
        &bogus,
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let (code, out) = w.run(&bogus, ALIAS, USER, true);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("jwt_private_key is not an RSA private key"),
        "{out}"
    );
    assert!(!out.contains("bm90IGEga2V5"), "{out}");
}

/// Posts a user assertion straight to the token endpoint; returns (status, body).
fn post_assertion(w: &World, assertion: &str) -> (u16, String) {
    let i = w.env.sim().instance("dev").unwrap().clone();
    w.env.rt.block_on(async move {
        let r = reqwest::Client::new()
            .post(&i.token_url)
            .basic_auth(&i.client_id, Some(&i.client_secret))
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion),
                ("scope", i.scope.as_str()),
            ])
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

fn assertion(w: &World, key: &Path, exp_offset: i64, aud: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let i = w.env.sim().instance("dev").unwrap();
    let claims = serde_json::json!({
        "sub": USER, "iss": i.client_id, "aud": [aud],
        "iat": now - 600, "exp": now + exp_offset,
    });
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = Some(ALIAS.into());
    let k = jsonwebtoken::EncodingKey::from_rsa_pem(&std::fs::read(key).unwrap()).unwrap();
    jsonwebtoken::encode(&h, &claims, &k).unwrap()
}

#[test]
fn the_token_endpoint_checks_expiry_audience_and_signature() {
    let w = world();
    let aud = "https://identity.oraclecloud.com/";
    let (s, b) = post_assertion(&w, &assertion(&w, &w.key, 300, aud));
    assert_eq!(s, 200, "{b}");
    assert!(b.contains("access_token"), "{b}");
    let (s, b) = post_assertion(&w, &assertion(&w, &w.key, -60, aud));
    assert_eq!((s, b.contains("invalid_grant")), (400, true), "{b}");
    assert!(b.contains("expired"), "{b}");
    let (s, b) = post_assertion(
        &w,
        &assertion(&w, &w.key, 300, "https://elsewhere.example.com/"),
    );
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("audience"), "{b}");
    let (s, b) = post_assertion(&w, &assertion(&w, &w.wrong_key, 300, aud));
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("signature is invalid"), "{b}");
    // A valid assertion with one character of the signature changed.
    let mut forged = assertion(&w, &w.key, 300, aud);
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let (s, b) = post_assertion(&w, &forged);
    assert_eq!(s, 400, "{b}");
    let (s, b) = post_assertion(&w, "not-a-jwt");
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("not a valid JWT"), "{b}");
}
