//! Rollback: after a migration that replaced active (and inactive) integrations, activated one,
//! and added one, `ferry rollback RUN` restores the target's archives (by checksum) and
//! activation states exactly, and removes what the run added.

mod ledger_support;

use ferry::ledger::Ledger;
use ferry::sim::Seed;
use ledger_support::*;

/// dev's archive of `id` with one more file in it, sealed again (a different archive of the same
/// integration, as a later edit on prod would make).
fn variant(env: &Env, id: &str) -> Vec<u8> {
    use ferry::sim::archive;
    let bytes = env
        .rt
        .block_on(try_export(&env.instance("dev"), id))
        .expect("export from dev");
    let mut entries = archive::read_zip(&bytes).expect("read the archive");
    entries.insert(
        "icspackage/prod-note.txt".into(),
        archive::Content::Bytes(b"the prod variant".to_vec()),
    );
    archive::seal_and_zip(entries).expect("seal")
}

/// Replaces `id` on prod with `bytes` (`PUT /integrations/archive`).
fn put_archive(env: &Env, id: &str, bytes: Vec<u8>) {
    let i = env.instance("prod");
    let code = env.rt.block_on(async {
        let tok = token(&i).await;
        let mut url = format!("{}/ic/api/integration/v1/integrations/archive", i.base_url);
        if let Some(ii) = &i.integration_instance {
            url.push_str(&format!("?integrationInstance={ii}"));
        }
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(format!("{}.iar", id.replace('|', "_")));
        let form = reqwest::multipart::Form::new().part("file", part);
        let r = reqwest::Client::new()
            .put(url)
            .bearer_auth(tok)
            .multipart(form)
            .send()
            .await
            .expect("put");
        let code = r.status().as_u16();
        (code, r.text().await.unwrap_or_default())
    });
    assert!(code.0 < 300, "replace {id} on prod: HTTP {code:?}");
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
            assert_eq!(
                e.sha256.as_deref(),
                Some(before[replaced_active].1.as_str())
            );
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
