//! Whole-instance migration against the emulator over HTTP (issue 18, part 2): OIC's own
//! instance archive (`oic::instance_archive`) and ferry's per-artifact path
//! (`oic::migrate_instance`, `scripts/instance-migrate.rhai`).

mod support;

use std::sync::Arc;
use std::time::Duration;

use ferry::cli::sandbox::config_for;
use ferry::effect::RetryPolicy;
use ferry::script::Output;
use ferry::script::runner::{RunOptions, RunResult, run_recipe};
use ferry::sim::{self, Seed, SimConfig, SimHandle, SimInstanceSpec};
use serde_json::Value;

struct Env {
    rt: tokio::runtime::Runtime,
    sim: SimHandle,
    dir: tempfile::TempDir,
}

impl Env {
    fn start(src: Seed, dst: Seed) -> Env {
        let rt = ferry::cli::runtime().expect("runtime");
        let sim = rt
            .block_on(sim::start(SimConfig {
                instances: vec![
                    SimInstanceSpec {
                        name: "dev".into(),
                        generation: 3,
                        seed: src,
                    },
                    SimInstanceSpec {
                        name: "prod".into(),
                        generation: 3,
                        seed: dst,
                    },
                ],
                seed: 42,
                ..Default::default()
            }))
            .expect("start the emulator");
        Env {
            rt,
            sim,
            dir: support::tempdir(),
        }
    }

    /// Runs `recipe`; returns the result and the printed lines.
    fn run(&self, recipe: &str) -> (RunResult, Vec<String>) {
        let cfg = config_for(&self.sim.info, &self.dir.path().join(".ferry")).expect("config");
        let out = Output::buffer();
        let opts = RunOptions {
            retry: Some(RetryPolicy {
                max_attempts: 20,
                base_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(500),
                budget: Duration::from_secs(600),
            }),
            ..Default::default()
        };
        let r = run_recipe(
            "test.rhai",
            recipe,
            Arc::new(cfg),
            self.rt.handle().clone(),
            Default::default(),
            out.clone(),
            &opts,
        );
        (r, out.lines())
    }

    /// The JSON a recipe printed last.
    fn run_json(&self, recipe: &str) -> Value {
        let (r, lines) = self.run(recipe);
        assert_eq!(r.code, 0, "{:?}\n{}", r.error, lines.join("\n"));
        let last = lines.iter().rev().find(|l| l.starts_with('{'));
        serde_json::from_str(last.expect("a JSON line")).expect("JSON")
    }

    fn info(&self, name: &str) -> sim::SimInstanceInfo {
        self.sim
            .info
            .instances
            .iter()
            .find(|i| i.name == name)
            .cloned()
            .expect("instance")
    }

    /// `GET {API}{path}` on `inst` as JSON.
    fn get(&self, inst: &str, path: &str) -> Value {
        let i = self.info(inst);
        self.rt.block_on(async {
            let tok = support::token(&i).await;
            let sep = if path.contains('?') { '&' } else { '?' };
            let url = format!(
                "{}/ic/api/integration/v1{path}{sep}integrationInstance={}",
                i.base_url,
                i.integration_instance.clone().unwrap_or_default()
            );
            let r = reqwest::Client::new()
                .get(url)
                .bearer_auth(tok)
                .send()
                .await
                .expect("get");
            assert!(r.status().is_success(), "GET {path}: {}", r.status());
            r.json().await.expect("json")
        })
    }

    fn put_json(&self, inst: &str, path: &str, body: &Value) {
        let i = self.info(inst);
        self.rt.block_on(async {
            let tok = support::token(&i).await;
            let url = format!(
                "{}/ic/api/integration/v1{path}?integrationInstance={}",
                i.base_url,
                i.integration_instance.clone().unwrap_or_default()
            );
            let r = reqwest::Client::new()
                .put(url)
                .bearer_auth(tok)
                .json(body)
                .send()
                .await
                .expect("put");
            assert!(r.status().is_success(), "PUT {path}: {}", r.status());
        })
    }

    fn ids(&self, inst: &str) -> Vec<String> {
        let i = self.info(inst);
        let mut v: Vec<String> = self
            .rt
            .block_on(support::list_integrations(&i))
            .into_iter()
            .filter_map(|x| x["id"].as_str().map(str::to_string))
            .collect();
        v.sort();
        v
    }
}

const STORAGE: &str = r#"storage: #{ url: "https://swiftobjectstorage.sim.oraclecloud.com/v1/ns/clone", user: "me@example.com", password: "env:FERRY_TEST_STORAGE_TOKEN" }"#;

#[test]
fn instance_archive_clones_everything_but_access() {
    // SAFETY: set before any thread of this test reads the environment.
    unsafe { std::env::set_var("FERRY_TEST_STORAGE_TOKEN", "tok-3141592653") };
    let env = Env::start(Seed::Sample, Seed::Empty);
    // dev's project grants a developer group access; the clone must not carry it.
    let acl = env.get("dev", "/projects/HR_ONBOARDING/acl");
    let mut custom = acl.clone();
    custom["editors"] = serde_json::json!({"allowAll": true, "allowed": []});
    env.put_json("dev", "/projects/HR_ONBOARDING/acl", &custom);
    let before = env.get("dev", "/projects/HR_ONBOARDING/acl");
    assert_eq!(before["editors"]["allowAll"], true);
    assert!(env.ids("prod").is_empty());

    let r = env.run_json(&format!(
        r#"let r = oic::instance_archive(oic::instance("dev"), oic::instance("prod"), #{{ {STORAGE}, poll_seconds: 0.1 }});
print(to_json(r));"#
    ));
    assert_eq!(r["export"]["status"], "COMPLETED", "{r}");
    assert_eq!(r["import"]["status"], "COMPLETED", "{r}");
    assert!(r["export"]["resources"].as_u64().unwrap_or(0) > 10, "{r}");
    assert_eq!(r["export"]["archive"], r["export"]["job_name"]);
    // Every global integration version arrived.
    assert_eq!(env.ids("prod"), env.ids("dev"));
    // The project arrived, without dev's access policy.
    let after = env.get("prod", "/projects/HR_ONBOARDING/acl");
    assert_ne!(after["editors"]["allowAll"], true, "{after}");
    // The report says so.
    let cov = r["coverage"].as_array().expect("coverage");
    let carried = |item: &str| {
        cov.iter()
            .find(|c| c["item"] == item)
            .map(|c| c["carried"].as_bool().unwrap_or(true))
    };
    assert_eq!(carried("integrations"), Some(true));
    assert_eq!(carried("role grants"), Some(false));
    assert_eq!(carried("project ACLs"), Some(false));
    // The secret never reaches the output.
    assert!(!r.to_string().contains("tok-3141592653"));
}

#[test]
fn instance_archive_refuses_bad_options_and_reports_a_failed_job() {
    let env = Env::start(Seed::Sample, Seed::Empty);
    let (r, _) = env.run(r#"oic::instance_archive(oic::instance("dev"), oic::instance("prod"), #{ storage_url: "x" });"#);
    assert_ne!(r.code, 0);
    assert!(
        r.error.as_deref().unwrap_or("").contains("storage_url"),
        "{:?}",
        r.error
    );
    let (r, _) = env.run(
        r#"oic::instance_archive(oic::instance("dev"), oic::instance("prod"), #{ poll_seconds: 0.1 });"#,
    );
    assert_ne!(r.code, 0);
    assert!(
        r.error.as_deref().unwrap_or("").contains("storage"),
        "{:?}",
        r.error
    );
    // An import of an archive that is not in the bucket: the job ends FAILED, and the run says why.
    unsafe { std::env::set_var("FERRY_TEST_STORAGE_TOKEN", "tok-2718281828") };
    let (r, lines) = env.run(&format!(
        r#"oic::instance_archive(oic::instance("dev"), oic::instance("prod"), #{{ {STORAGE}, archive: "nope", poll_seconds: 0.1 }});"#
    ));
    assert_ne!(r.code, 0, "{lines:?}");
    let err = r.error.unwrap_or_default();
    assert!(err.contains("FAILED") && err.contains("not found"), "{err}");
    assert!(!err.contains("tok-2718281828"));
}
