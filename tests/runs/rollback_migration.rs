//! Rollback: after a migration that replaced active (and inactive) integrations, activated one,
//! and added one, `ferry rollback RUN` restores the target's archives (by checksum) and
//! activation states exactly, and removes what the run added.

use crate::support::ledger as ledger_support;

use ferry::ledger::Ledger;
use ferry::sim::Seed;
use ledger_support::*;

/// dev's archive of `id` with one more file in it, sealed again (a different archive of the same
/// integration, as a later edit on prod would make).
fn variant(env: &Env, id: &str) -> Vec<u8> {
    env.edited_archive(id, "the prod variant")
}

/// Replaces `id` on prod with `bytes` (`PUT /integrations/archive`).
fn put_archive(env: &Env, id: &str, bytes: Vec<u8>) {
    put_archive_on(env, "prod", id, bytes)
}

/// Replaces `id` on `inst` with `bytes`.
fn put_archive_on(env: &Env, inst: &str, id: &str, bytes: Vec<u8>) {
    env.upload_archive(inst, reqwest::Method::PUT, id, bytes)
}

#[test]
fn rollback_restores_archives_and_activation_states() {
    // prod starts as a copy of dev, then drifts.
    let env = Env::start(Seed::Sample);
    let replaced_active = "FIN_INVOICE_IMPORT|01.00.0000"; // ACTIVATED on dev and prod
    let replaced_inactive = "HR_EMPLOYEE_SYNC|01.00.0000"; // ACTIVATED on dev, CONFIGURED on prod
    let replaced_was_active = "SCM_ORDER_NOTIFY|01.00.0000"; // CONFIGURED on dev, ACTIVATED on prod
    let only_deactivated = "FIN_PAYMENT_STATUS|01.00.0000"; // same archive, CONFIGURED on prod
    let missing = "HR_PAYROLL_EXPORT|01.00.0000"; // not on prod: the run adds it
    for id in [replaced_active, replaced_inactive, replaced_was_active] {
        if env.sim.integration_status("prod", id).as_deref() == Some("ACTIVATED") {
            env.set_status("prod", id, "CONFIGURED");
        }
        put_archive(&env, id, variant(&env, id));
    }
    env.set_status("prod", replaced_active, "ACTIVATED");
    env.set_status("prod", replaced_was_active, "ACTIVATED");
    env.set_status("prod", only_deactivated, "CONFIGURED");
    env.set_status("prod", missing, "CONFIGURED");
    let code = env.call(
        "prod",
        reqwest::Method::DELETE,
        &format!("/integrations/{}", missing.replace('|', "%7C")),
        None,
    );
    assert!(code < 300, "delete {missing}: HTTP {code}");
    let before = env.state("prod");
    assert_eq!(before[replaced_active].0, "ACTIVATED");
    assert_eq!(before[replaced_inactive].0, "CONFIGURED");
    assert_eq!(before[replaced_was_active].0, "ACTIVATED");
    assert!(!before.contains_key(missing));
    let dev = env.state("dev");
    assert_ne!(before[replaced_active].1, dev[replaced_active].1);

    // The migration replaces, activates and adds.
    let recipe = env.recipe("migrate.rhai", MIGRATE);
    let out = env.ferry(&["run", &recipe, "--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let run = json_out(&out)["run"]["id"].as_str().unwrap().to_string();
    let migrated = env.state("prod");
    for id in [
        replaced_active,
        replaced_inactive,
        replaced_was_active,
        missing,
    ] {
        assert_eq!(migrated[id].1, dev[id].1, "{id} now holds dev's archive");
    }
    assert_eq!(migrated[replaced_inactive].0, "ACTIVATED");
    assert_eq!(migrated[replaced_was_active].0, "CONFIGURED");
    assert_eq!(migrated[only_deactivated].0, "ACTIVATED");
    assert_ne!(migrated, before);

    // What was saved: the replaced archives (in a rollback job next to the backup job), the
    // activation changed without an import, and the addition.
    let db = Ledger::open(&env.path().join(".ferry/ledger.db")).unwrap();
    let saved = db.rollback_entries(&run).unwrap();
    let ids: Vec<String> = saved.iter().map(|e| e.key().id()).collect();
    for id in [
        replaced_active,
        replaced_inactive,
        replaced_was_active,
        only_deactivated,
        missing,
    ] {
        assert!(
            ids.contains(&id.to_string()),
            "{id} saved for rollback: {ids:?}"
        );
    }
    for e in &saved {
        if e.key().id() == replaced_active {
            // Recorded by content: an export of the same content has other bytes.
            assert_eq!(
                e.content_sha256.as_deref(),
                Some(before[replaced_active].1.as_str())
            );
            assert!(e.sha256.is_some());
            assert!(e.location.as_deref().unwrap().starts_with("vault:backups:"));
        }
        if e.key().id() == missing {
            assert!(!e.existed);
        }
    }

    // A dry run of the rollback changes nothing and says what it would do.
    let out = env.ferry(&["rollback", &run, "--dry-run", "--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(env.state("prod"), migrated);
    let plan = json_out(&out);
    assert!(plan["summary"]["planned"].as_u64().unwrap() >= 5, "{plan}");

    // The rollback puts prod back exactly: archives by checksum and activation states.
    let out = env.ferry(&["rollback", &run, "--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let report = json_out(&out);
    assert_eq!(report["kind"], "rollback");
    assert_eq!(env.state("prod"), before);
    let rb = report["run"]["id"].as_str().unwrap();
    assert!(run_dir(env.path(), rb).join("report.html").exists());

    // Rolling back again changes nothing.
    let out = env.ferry(&["rollback", &run, "--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let again = json_out(&out);
    assert_eq!(again["summary"]["imported"], 0);
    assert_eq!(env.state("prod"), before);
}

/// `GET /projects/{code}` on `inst` as JSON (`Null` when missing).
fn project_json(env: &Env, inst: &str, code: &str) -> serde_json::Value {
    let i = env.instance(inst);
    env.rt.block_on(async {
        let tok = token(&i).await;
        let r = api_get(&i, &tok, &format!("/projects/{code}")).await;
        if r.status().as_u16() == 404 {
            return serde_json::Value::Null;
        }
        r.json().await.expect("project json")
    })
}

fn deployment_codes(p: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = p
        .pointer("/state/assets/labelsRs/items")
        .and_then(|x| x.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|d| d["code"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_project_replaced_by_promote_project_is_rolled_back() {
    // The sandbox's instances (uat holds the project HR_ONBOARDING), in this process, with a
    // ferry.toml for them and their identity domain (promote-project copies the project's ACL).
    let rt = ferry::cli::runtime().expect("runtime");
    let sim = rt
        .block_on(ferry::sim::start(ferry::sim::SimConfig {
            instances: ferry::cli::sandbox::default_instances(),
            ..ferry::sim::SimConfig::default()
        }))
        .expect("start the emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), &sim);
    let info = &sim.info;
    std::fs::write(
        dir.path().join("secrets/idcs.txt"),
        &info.admin_client_secret,
    )
    .unwrap();
    let mut toml = std::fs::read_to_string(dir.path().join("ferry.toml")).unwrap();
    toml.push_str(&format!(
        "\n[identity.corp]\nurl = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"file:secrets/idcs.txt\"\nscope = \"{}\"\n[identity.corp.apps]\n",
        info.identity_url, info.admin_client_id, info.admin_scope
    ));
    for i in &info.instances {
        toml.push_str(&format!("{} = \"{}\"\n", i.name, i.idcs_app_name));
    }
    std::fs::write(dir.path().join("ferry.toml"), toml).unwrap();
    let env = Env { rt, sim, dir };
    let recipe =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/promote-project.rhai");
    let recipe = recipe.to_str().unwrap();

    // First promotion: the project is new on prod.
    let out = env.ferry(&["run", recipe, "--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(
        deployment_codes(&project_json(&env, "prod", "HR_ONBOARDING")),
        ["HR-ONB-REL1"]
    );

    // prod drifts: a deployment of its own.
    let i = env.instance("prod");
    let code = env.rt.block_on(async {
        let tok = token(&i).await;
        let url = format!(
            "{}/ic/api/integration/v1/projects/HR_ONBOARDING/deployments?integrationInstance={}",
            i.base_url,
            i.integration_instance.clone().unwrap_or_default()
        );
        reqwest::Client::new()
            .post(url)
            .bearer_auth(tok)
            .json(&serde_json::json!({"code": "PROD-HOTFIX", "name": "prod hotfix", "integrations": []}))
            .send()
            .await
            .expect("create deployment")
            .status()
            .as_u16()
    });
    assert!(code < 300, "create deployment: HTTP {code}");
    let before = deployment_codes(&project_json(&env, "prod", "HR_ONBOARDING"));
    assert_eq!(before, ["HR-ONB-REL1", "PROD-HOTFIX"]);

    // Second promotion replaces the project (its own deployment is lost)...
    let out = env.ferry(&["run", recipe, "--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let run = json_out(&out)["run"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        deployment_codes(&project_json(&env, "prod", "HR_ONBOARDING")),
        ["HR-ONB-REL1"]
    );
    let db = Ledger::open(&env.path().join(".ferry/ledger.db")).unwrap();
    let saved = db.rollback_entries(&run).unwrap();
    let project = saved
        .iter()
        .find(|e| e.kind == ferry::artifact::ArtifactKind::Project)
        .unwrap_or_else(|| panic!("the project saved for rollback: {saved:?}"));
    assert!(project.existed && project.location.is_some(), "{project:?}");

    // ... and `ferry rollback` puts prod's project back, its own deployment included.
    let out = env.ferry(&["rollback", &run, "--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(
        deployment_codes(&project_json(&env, "prod", "HR_ONBOARDING")),
        before
    );
}

/// Finding 7: run A adds dev's integrations to prod, run B then replaces one of them with a
/// newer archive. Rolling back A must not delete B's change behind its back: it refuses and names
/// B (unless --force); once B is rolled back, A's rollback removes exactly what A added.
#[test]
fn rollback_refuses_to_undo_a_later_runs_change() {
    let env = Env::start(Seed::TargetConnections);
    let recipe = env.recipe("migrate.rhai", MIGRATE);
    let before = env.state("prod");

    let out = env.ferry(&["run", &recipe, "--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let run_a = json_out(&out)["run"]["id"].as_str().unwrap().to_string();
    let after_a = env.state("prod");
    assert!(after_a.len() >= 3, "{after_a:?}");

    // dev moves on; run B brings the newer SCM_ORDER_NOTIFY over.
    let id = "SCM_ORDER_NOTIFY|01.00.0000";
    assert_eq!(env.state("dev")[id].0, "CONFIGURED");
    put_archive_on(&env, "dev", id, variant(&env, id));
    let out = env.ferry(&["run", &recipe, "--var", "prefix=SCM_ORDER", "--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let run_b = json_out(&out)["run"]["id"].as_str().unwrap().to_string();
    let after_b = env.state("prod");
    assert_ne!(after_b[id].1, after_a[id].1, "B replaced {id}");

    // Rolling back A would delete B's archive: refused, naming B, nothing changed.
    let out = env.ferry(&["rollback", &run_a]);
    assert_ne!(out.status.code(), Some(0), "stdout: {}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains(&run_b), "names the later run: {err}");
    assert!(err.contains(id) && err.contains("--force"), "{err}");
    assert_eq!(env.state("prod"), after_b);

    // --force goes ahead (planned here, so nothing changes).
    let out = env.ferry(&["rollback", &run_a, "--force", "--dry-run", "--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(env.state("prod"), after_b);

    // B's rollback puts A's archive back; then A's rollback removes what A added, and only that.
    let out = env.ferry(&["rollback", &run_b, "--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(env.state("prod"), after_a);
    let out = env.ferry(&["rollback", &run_a, "--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(env.state("prod"), before);
}

/// Finding 7: two runs import the same new integration into prod at the same time (their imports
/// overlap: one is answered 409 because the other landed first). Only the run whose import
/// created it records it as created: rolling back the other leaves it in place.
#[test]
fn only_the_run_that_created_an_artifact_rolls_it_back() {
    let env = Env::start(Seed::TargetConnections);
    let recipe = env.recipe("migrate.rhai", MIGRATE);
    let id = "SCM_ORDER_NOTIFY|01.00.0000";
    // Imports on prod take 3 s, so the two runs' creates overlap.
    env.sim.set_faults(ferry::sim::Faults {
        latency_ms: 3000,
        path_regex: Some("/integrations/archive$".into()),
        instances: Some(vec!["prod".into()]),
        ..Default::default()
    });
    let args = [
        "run",
        recipe.as_str(),
        "--var",
        "prefix=SCM_ORDER",
        "--json",
    ];
    let a = env.spawn(&args);
    let b = env.spawn(&args);
    for mut c in [a, b] {
        assert_eq!(c.wait().unwrap().code(), Some(0));
    }
    env.sim.set_faults(ferry::sim::Faults::default());
    let conflicts = env
        .sim
        .request_log()
        .iter()
        .filter(|e| {
            e.instance.as_deref() == Some("prod")
                && e.method == "POST"
                && e.path.ends_with("/integrations/archive")
                && e.status == 409
        })
        .count();
    assert_eq!(conflicts, 1, "the two creates overlapped");
    assert!(env.state("prod").contains_key(id));

    let db = Ledger::open(&env.path().join(".ferry/ledger.db")).unwrap();
    let runs: Vec<String> = db
        .runs(10)
        .unwrap()
        .iter()
        .map(|r| r.info.id.clone())
        .collect();
    assert_eq!(runs.len(), 2);
    let created: Vec<&String> = runs
        .iter()
        .filter(|r| {
            db.rollback_entries(r)
                .unwrap()
                .iter()
                .any(|e| e.key().id() == id && !e.existed)
        })
        .collect();
    assert_eq!(
        created.len(),
        1,
        "exactly one run created {id}: {created:?}"
    );
    let creator = created[0].clone();
    let other = runs.iter().find(|r| **r != creator).unwrap().clone();

    let out = env.ferry(&["rollback", &other, "--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(
        env.state("prod").contains_key(id),
        "the other run's rollback left it"
    );
    let out = env.ferry(&["rollback", &creator, "--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(
        !env.state("prod").contains_key(id),
        "its creator's rollback removed it"
    );
}
