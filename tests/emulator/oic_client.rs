//! Integration tests of the OIC client against the real emulator (`ferry::sim`) over HTTP on
//! loopback. No mocks: every call goes through reqwest, the token endpoint and the emulator's
//! routing.

use crate::support::emulator::*;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry::artifact::{Artifact, ArtifactKey, ArtifactKind, hash_file};
use ferry::config::{Auth, InstanceProfile, Secret};
use ferry::oic::{
    ActivateOptions, ImportAction, ImportMode, IntegrationId, OicClient, OicError, archive,
};
use ferry::sim::{Seed, SimConfig, SimHandle, SimInstanceInfo, SimInstanceSpec};

async fn start(instances: Vec<SimInstanceSpec>, token_ttl: Duration) -> SimHandle {
    start_with(SimConfig {
        instances,
        token_ttl,
        ..SimConfig::default()
    })
    .await
}

/// The four-instance landscape: dev2/prod2 (Gen2), dev3/prod3 (OIC 3).
async fn landscape() -> SimHandle {
    start(
        vec![
            spec("dev2", 2, Seed::Sample),
            spec("prod2", 2, Seed::TargetConnections),
            spec("dev3", 3, Seed::Sample),
            spec("prod3", 3, Seed::TargetConnections),
        ],
        Duration::from_secs(3600),
    )
    .await
}

/// A Basic-auth profile (Gen2 only).
fn basic_profile(i: &SimInstanceInfo) -> InstanceProfile {
    let mut p = profile(i);
    p.auth = Auth::Basic {
        username: i.username.clone().expect("gen2 user"),
        password: Secret::new(i.password.clone().expect("gen2 password")),
    };
    p
}

#[tokio::test]
async fn list_pages_through_has_more_and_filters() {
    let h = start(
        vec![
            spec("big", 3, Seed::Generated(250)),
            spec("g2", 2, Seed::Generated(130)),
        ],
        Duration::from_secs(3600),
    )
    .await;
    for name in ["big", "g2"] {
        let c = client(&h, name);
        let all = c.list_integrations(None).await.expect("list");
        let want = if name == "big" { 250 } else { 130 };
        assert_eq!(all.len(), want, "{name}: every page was fetched");
        let ids: BTreeSet<&str> = all.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids.len(), want, "{name}: no duplicates across pages");
        for i in &all {
            assert_eq!(i.id, format!("{}|{}", i.code, i.version));
            assert!(!i.status.is_empty() && !i.name.is_empty());
        }
        let active = c
            .list_integrations(Some("{status:'ACTIVATED'}"))
            .await
            .expect("filtered list");
        assert!(!active.is_empty());
        assert!(active.iter().all(|i| i.status == "ACTIVATED"));
        assert_eq!(
            active.len(),
            all.iter().filter(|i| i.status == "ACTIVATED").count()
        );
    }
}

#[tokio::test]
async fn get_returns_the_resource_or_none() {
    let h = landscape().await;
    for name in ["dev2", "dev3"] {
        let c = client(&h, name);
        assert_eq!(c.name(), name);
        let i = c
            .get_integration(&id("HR_EMPLOYEE_SYNC|01.00.0000"))
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(i.code, "HR_EMPLOYEE_SYNC");
        assert_eq!(i.version, "01.00.0000");
        assert_eq!(i.status, "ACTIVATED");
        assert!(
            i.connections.contains(&"HR_REST".to_string()),
            "{:?}",
            i.connections
        );
        assert_eq!(i.lookups, vec!["COUNTRY_CODES".to_string()]);
        assert!(
            c.get_integration(&id("NOPE|01.00.0000"))
                .await
                .expect("get missing")
                .is_none()
        );
        let locked = c
            .get_integration(&id("FIN_SUPPLIER_SYNC|01.00.0000"))
            .await
            .unwrap()
            .unwrap();
        assert!(locked.locked);
        let sched = c
            .get_integration(&id("HR_PAYROLL_EXPORT|01.00.0000"))
            .await
            .unwrap()
            .unwrap();
        assert!(sched.schedule_defined);
    }
}

#[tokio::test]
async fn export_streams_hashes_and_checks_the_archive() {
    let h = landscape().await;
    for name in ["dev2", "dev3"] {
        let c = client(&h, name);
        let a = c
            .export_integration(&id("HR_EMPLOYEE_SYNC|01.00.0000"))
            .await
            .expect("export");
        assert_eq!(
            a.key,
            ArtifactKey::new(ArtifactKind::Integration, "HR_EMPLOYEE_SYNC", "01.00.0000")
        );
        assert_eq!(a.source, name);
        assert_eq!(a.source_status.as_deref(), Some("ACTIVATED"));
        let (size, sha) = hash_file(a.path()).expect("hash");
        assert_eq!((size, sha.as_str()), (a.size, a.sha256.as_str()));
        assert!(a.size > 100);
        a.verify().expect("verify");
        let info = archive::inspect(a.path()).expect("inspect");
        assert_eq!(info.id(), "HR_EMPLOYEE_SYNC|01.00.0000");
        assert!(info.connections.contains(&"HR_REST".to_string()));
        let path = a.path().to_path_buf();
        drop(a);
        assert!(
            !path.exists(),
            "the temporary file is removed with the last clone"
        );

        // locked and PREBUILT → 423, missing → 404; none retryable
        for (bad, status) in [
            ("FIN_SUPPLIER_SYNC|01.00.0000", 423),
            ("ORCL_ERP_ACCEL_SYNC|01.00.0000", 423),
            ("NOPE|01.00.0000", 404),
        ] {
            let e = c.export_integration(&id(bad)).await.expect_err(bad);
            assert_eq!(e.status(), Some(status), "{bad}: {e}");
            assert_eq!(e.kind(), "http");
            assert!(!e.is_retryable());
        }
    }
}

/// dev → prod: create with POST, skip, then replace (deactivate + PUT) an active one.
async fn import_round_trip(h: &SimHandle, src: &OicClient, dst: &OicClient) {
    let dst_name = dst.name().to_string();
    let hid = id("HR_EMPLOYEE_SYNC|01.00.0000");
    let a = src.export_integration(&hid).await.expect("export");
    let out = dst
        .import_integration(&a, ImportMode::Overwrite)
        .await
        .expect("import new");
    assert_eq!(out.action, ImportAction::Created);
    assert_eq!(out.previous_status, None);
    let got = dst
        .get_integration(&hid)
        .await
        .unwrap()
        .expect("now exists");
    assert_eq!(
        got.status, "CONFIGURED",
        "target connections are configured"
    );

    let out = dst
        .import_integration(&a, ImportMode::SkipExisting)
        .await
        .expect("skip");
    assert_eq!(out.action, ImportAction::Skipped);
    assert_eq!(out.previous_status.as_deref(), Some("CONFIGURED"));

    assert_eq!(
        dst.activate(&hid, &sync_activation())
            .await
            .expect("activate"),
        "ACTIVATED"
    );
    assert_eq!(
        h.integration_status(&dst_name, &hid.to_string()).as_deref(),
        Some("ACTIVATED")
    );

    let out = dst
        .import_integration(&a, ImportMode::Overwrite)
        .await
        .expect("replace");
    assert_eq!(out.action, ImportAction::Replaced);
    assert_eq!(out.previous_status.as_deref(), Some("ACTIVATED"));
    assert_eq!(
        h.integration_status(&dst_name, &hid.to_string()).as_deref(),
        Some("CONFIGURED"),
        "deactivated, then replaced"
    );

    // the content went through unchanged (a new export has other bytes: export time stamps,
    // as on real OIC)
    let back = dst
        .export_integration(&hid)
        .await
        .expect("export from target");
    assert_ne!(back.sha256, a.sha256, "exports are stamped");
    assert_eq!(
        ferry::vault::content_hash(back.path(), &back.sha256).expect("digest"),
        ferry::vault::content_hash(a.path(), &a.sha256).expect("digest")
    );
}

#[tokio::test]
async fn import_new_and_replace_gen2_and_gen3() {
    let h = landscape().await;
    import_round_trip(&h, &client(&h, "dev2"), &client(&h, "prod2")).await;
    import_round_trip(&h, &client(&h, "dev3"), &client(&h, "prod3")).await;
    // cross-generation, with Basic auth on the Gen2 target
    let basic = OicClient::new(&basic_profile(h.instance("prod2").unwrap())).unwrap();
    let a = client(&h, "dev3")
        .export_integration(&id("FIN_INVOICE_IMPORT|01.00.0000"))
        .await
        .unwrap();
    let out = basic
        .import_integration(&a, ImportMode::Overwrite)
        .await
        .expect("basic import");
    assert_eq!(out.action, ImportAction::Created);
}

#[tokio::test]
async fn import_refuses_a_mislabelled_or_broken_file() {
    let h = landscape().await;
    let src = client(&h, "dev3");
    let dst = client(&h, "prod3");
    let a = src
        .export_integration(&id("HR_EMPLOYEE_SYNC|01.00.0000"))
        .await
        .unwrap();

    // an artifact whose key says something else than its file: refused locally
    let wrong = Artifact::from_path(
        ArtifactKey::new(ArtifactKind::Integration, "OTHER", "01.00.0000"),
        a.path().to_path_buf(),
        a.size,
        a.sha256.clone(),
        "x",
    );
    let e = dst
        .import_integration(&wrong, ImportMode::Overwrite)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "archive", "{e}");
    assert!(
        dst.get_integration(&id("OTHER|01.00.0000"))
            .await
            .unwrap()
            .is_none()
    );

    // an edited archive (integrity hash no longer matches): the emulator answers 400 (ICS-20099)
    let dir = tempfile::tempdir().unwrap();
    let edited = dir.path().join("edited.iar");
    rewrite_zip(a.path(), &edited, |name, data| {
        if name.ends_with("PROJECT-INF/layout.json") {
            data.extend_from_slice(b" ");
        }
    });
    let (size, sha) = hash_file(&edited).unwrap();
    let ea = Artifact::from_path(a.key.clone(), edited, size, sha, "edited");
    let e = dst
        .import_integration(&ea, ImportMode::Overwrite)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("ICS-20099"), "{e}");
}

fn rewrite_zip(
    src: &std::path::Path,
    dst: &std::path::Path,
    mut edit: impl FnMut(&str, &mut Vec<u8>),
) {
    let mut z = zip::ZipArchive::new(std::fs::File::open(src).unwrap()).unwrap();
    let mut w = zip::ZipWriter::new(std::fs::File::create(dst).unwrap());
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        let name = f.name().expect("entry name").to_string();
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        edit(&name, &mut data);
        w.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(&data).unwrap();
    }
    w.finish().unwrap();
}

#[tokio::test]
async fn activation_sync_async_and_idempotent() {
    let h = landscape().await;
    for name in ["dev2", "dev3"] {
        let c = client(&h, name);
        // sync: HR_NEW_HIRE|01.00.0000 is CONFIGURED
        let nh = id("HR_NEW_HIRE|01.00.0000");
        assert_eq!(
            c.activate(&nh, &sync_activation())
                .await
                .expect("sync activate"),
            "ACTIVATED"
        );
        assert_eq!(c.activation_status(&nh).await.unwrap(), "ACTIVATED");
        // activating again: 412 from OIC, answered by reading the status
        assert_eq!(
            c.activate(&nh, &sync_activation()).await.expect("repeat"),
            "ACTIVATED"
        );
        c.deactivate(&nh).await.expect("deactivate");
        assert_eq!(c.activation_status(&nh).await.unwrap(), "CONFIGURED");
        c.deactivate(&nh)
            .await
            .expect("deactivating an inactive one is fine (412)");

        // async: ACTIVATION_INPROGRESS, polled until ACTIVATED
        h.set_async_activation_delay(Duration::from_millis(400));
        let gl = id("FIN_GL_JOURNAL|02.00.0000");
        let t0 = Instant::now();
        let st = c
            .activate(
                &gl,
                &ActivateOptions {
                    tracing: Some(true),
                    payload_tracing: Some(false),
                    ..async_activation()
                },
            )
            .await
            .expect("async activate");
        assert_eq!(st, "ACTIVATED");
        assert!(
            t0.elapsed() >= Duration::from_millis(350),
            "it waited for the emulator's activation delay"
        );
        assert_eq!(
            h.integration_status(name, "FIN_GL_JOURNAL|02.00.0000")
                .as_deref(),
            Some("ACTIVATED")
        );

        // async with a poll timeout shorter than the activation: an Activation error, timed out
        h.set_async_activation_delay(Duration::from_secs(5));
        let sc = id("SCM_ORDER_NOTIFY|01.00.0000");
        let e = c
            .activate(
                &sc,
                &ActivateOptions {
                    timeout: Duration::from_millis(300),
                    ..async_activation()
                },
            )
            .await
            .unwrap_err();
        match &e {
            OicError::Activation {
                timed_out, status, ..
            } => {
                assert!(*timed_out);
                assert_eq!(status, "ACTIVATION_INPROGRESS");
            }
            other => panic!("expected an activation timeout, got {other}"),
        }
        assert!(!e.is_retryable());
        h.set_async_activation_delay(Duration::from_millis(300));

        // an incomplete draft: 412, not retryable
        let e = c
            .activate(&id("HR_ABSENCE_FEED|01.00.0000"), &sync_activation())
            .await
            .unwrap_err();
        assert_eq!(e.status(), Some(412), "{e}");
        assert!(!e.is_retryable());
        // missing: 404
        let e = c
            .activate(&id("NOPE|01.00.0000"), &sync_activation())
            .await
            .unwrap_err();
        assert_eq!(e.status(), Some(404), "{e}");
    }
}

#[tokio::test]
async fn conflict_and_precondition_statuses_are_classified() {
    let h = landscape().await;
    let c = client(&h, "dev3");
    let a = c
        .export_integration(&id("HR_EMPLOYEE_SYNC|01.00.0000"))
        .await
        .unwrap();
    // 409: POST of an existing integration
    let e = c.create_integration(&a).await.unwrap_err();
    assert_eq!(e.status(), Some(409), "{e}");
    assert_eq!(e.kind(), "http");
    assert!(!e.is_retryable());
    // 412: PUT over an ACTIVATED integration
    let e = c.replace_integration(&a).await.unwrap_err();
    assert_eq!(e.status(), Some(412), "{e}");
    assert!(!e.is_retryable());
    // 423: export of a locked one
    let e = c
        .export_integration(&id("FIN_SUPPLIER_SYNC|01.00.0000"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(423), "{e}");
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("dev3: GET /ic/api/integration/v1/integrations/FIN_SUPPLIER_SYNC%7C01.00.0000/archive: HTTP 423"), "{e}");
    // 404: PUT of one that does not exist
    let other = client(&h, "prod3");
    let e = other.replace_integration(&a).await.unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");
}

#[tokio::test]
async fn short_lived_tokens_are_renewed_without_surfacing_401() {
    // 1-second tokens: renewed at half-life, over a run of several lifetimes with parallel tasks
    let h = start(
        vec![spec("dev3", 3, Seed::Sample), spec("dev2", 2, Seed::Sample)],
        Duration::from_secs(1),
    )
    .await;
    for name in ["dev3", "dev2"] {
        let c = client(&h, name);
        // At least 3.5 s (several lifetimes) and at least 20 calls per task, however slow the
        // machine: the bounds below follow the time the run really took. Each task calls again
        // as soon as its previous call answered (no pacing: the answer is the event).
        let begun = Instant::now();
        let deadline = begun + Duration::from_millis(3500);
        let mut tasks = Vec::new();
        for t in 0..4 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = 0u32;
                while Instant::now() < deadline || n <= 20 {
                    if t % 2 == 0 {
                        c.list_integrations(None).await.map_err(|e| e.to_string())?;
                    } else {
                        c.get_integration(&IntegrationId::new("HR_NEW_HIRE", "01.01.0000"))
                            .await
                            .map_err(|e| e.to_string())?
                            .ok_or("missing")?;
                    }
                    n += 1;
                }
                Ok::<u32, String>(n)
            }));
        }
        for t in tasks {
            t.await.expect("task").expect("no call failed");
        }
        let secs = begun.elapsed().as_secs_f64();
        let fetched = c.token_fetches().await;
        eprintln!("tokens fetched: {fetched} in {secs:.1} s");
        // Renewed at half-life: about two tokens a second (a 3.5 s run: 5 to 12), never one per
        // call (more than 80 calls) and never fewer than one per lifetime.
        let (least, most) = (secs.floor() as u64, (secs * 2.0).ceil() as u64 + 5);
        assert!(
            (least..=most).contains(&fetched),
            "{name}: renewed at half-life about every 0.5 s, got {fetched} tokens in {secs:.1} s"
        );
    }
    // tokens shorter than a second (expires_in 0): every call after expiry meets a 401, renews
    // once and repeats once; no 401 reaches the caller. The emulator expires the tokens after
    // each call (no waiting).
    h.set_token_ttl(Duration::from_millis(300));
    let c = Arc::new(client(&h, "dev3"));
    for _ in 0..5 {
        c.get_integration(&id("HR_EMPLOYEE_SYNC|01.00.0000"))
            .await
            .expect("renewed after 401")
            .expect("exists");
        h.expire_tokens();
    }
    // the client believed each token good for an hour (expires_in 0), so every renewal was a
    // 401: the first token and one per expiry met
    let fetched = c.token_fetches().await;
    assert_eq!(fetched, 5, "renewals after 401: {fetched}");
}

#[tokio::test]
async fn bad_credentials_are_auth_errors_without_secrets() {
    let h = landscape().await;
    let info = h.instance("dev3").unwrap();
    let mut p = profile(info);
    p.auth = Auth::ClientCredentials {
        token_url: info.token_url.clone(),
        client_id: info.client_id.clone(),
        client_secret: Secret::new("wrong-secret-value"),
        scope: info.scope.clone(),
    };
    let e = OicClient::new(&p)
        .unwrap()
        .list_integrations(None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "auth", "{e}");
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("invalid_client"), "{e}");
    assert!(!e.to_string().contains("wrong-secret-value"));
    assert!(!format!("{e:?}").contains("wrong-secret-value"));

    let mut p = profile(info);
    if let Auth::ClientCredentials { scope, .. } = &mut p.auth {
        *scope = "https://not-the-audience/ic/api/".into();
    }
    let e = OicClient::new(&p)
        .unwrap()
        .list_integrations(None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "auth", "{e}");
    assert!(e.to_string().contains("invalid_scope"), "{e}");

    // Gen2 basic auth with a wrong password: the API's 401, not retryable, password not echoed
    let g2 = h.instance("dev2").unwrap();
    let mut p = basic_profile(g2);
    p.auth = Auth::Basic {
        username: g2.username.clone().unwrap(),
        password: Secret::new("wrong-password-value"),
    };
    let e = OicClient::new(&p)
        .unwrap()
        .list_integrations(None)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    assert!(!e.is_retryable());
    assert!(!e.to_string().contains("wrong-password-value"));
    // and the right one works
    let ok = OicClient::new(&basic_profile(g2))
        .unwrap()
        .list_integrations(None)
        .await
        .expect("basic auth");
    assert_eq!(ok.len(), 11);

    // a wrong integrationInstance on OIC 3: 404 from the design host
    let mut p = profile(info);
    p.integration_instance = Some("nope-sim-lo".into());
    let e = OicClient::new(&p)
        .unwrap()
        .list_integrations(None)
        .await
        .unwrap_err();
    assert!(matches!(e.status(), Some(401) | Some(404)), "{e}");
}

#[tokio::test]
async fn a_stopped_emulator_is_a_retryable_transport_error() {
    let h = landscape().await;
    let c = client(&h, "dev3");
    c.list_integrations(None).await.expect("up");
    h.shutdown().await;
    let e = c.list_integrations(None).await.unwrap_err();
    assert!(matches!(e.kind(), "transport" | "timeout"), "{e}");
    assert!(e.is_retryable());
}
