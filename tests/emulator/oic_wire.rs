//! What the OIC client puts on the wire, and how it classifies faults, checked with the
//! emulator's request log and fault knobs (real HTTP on loopback, no mocks).

use crate::support::emulator::*;

use std::time::Duration;

use ferry::oic::{
    ConnectionProperty, ConnectionUpdate, ImportAction, ImportMode, IntegrationId, OicClient,
};
use ferry::sim::{Faults, LogEntry, Seed, SimHandle};

async fn landscape() -> SimHandle {
    start(vec![
        spec("dev2", 2, Seed::Sample),
        spec("dev3", 3, Seed::Sample),
        spec("new2", 2, Seed::Empty),
        spec("new3", 3, Seed::Empty),
    ])
    .await
}

/// Requests to the instance (not the identity domain).
fn api_log(h: &SimHandle, instance: &str) -> Vec<LogEntry> {
    h.request_log()
        .into_iter()
        .filter(|e| e.instance.as_deref() == Some(instance) && !e.path.starts_with("/oauth2/"))
        .collect()
}

fn line(e: &LogEntry) -> String {
    format!("{} {} {}", e.method, e.path, e.status)
}

#[tokio::test]
async fn gen3_calls_carry_integration_instance_and_encoded_ids() {
    let h = landscape().await;
    let c = client(&h, "dev3");
    let ii = h
        .instance("dev3")
        .unwrap()
        .integration_instance
        .clone()
        .unwrap();
    let nh = id("HR_NEW_HIRE|01.00.0000");
    h.clear_request_log();
    c.list_integrations(None).await.unwrap();
    c.get_integration(&nh).await.unwrap().unwrap();
    let a = c.export_integration(&nh).await.unwrap();
    c.activate(&nh, &sync_activation()).await.unwrap();
    c.activation_status(&nh).await.unwrap();
    c.deactivate(&nh).await.unwrap();
    c.import_integration(&a, ImportMode::Overwrite)
        .await
        .unwrap();
    let log = api_log(&h, "dev3");
    assert!(log.len() >= 8, "{log:?}");
    for e in &log {
        assert!(
            e.query
                .split('&')
                .any(|kv| kv == format!("integrationInstance={ii}")),
            "{}?{}",
            e.path,
            e.query
        );
        if e.path.contains("HR_NEW_HIRE") {
            assert!(e.path.contains("HR_NEW_HIRE%7C01.00.0000"), "{}", e.path);
        }
    }
    let lines: Vec<String> = log.iter().map(line).collect();
    assert!(
        lines.contains(
            &"GET /ic/api/integration/v1/integrations/HR_NEW_HIRE%7C01.00.0000/archive 200"
                .to_string()
        ),
        "{lines:?}"
    );
    assert!(
        lines.contains(
            &"POST /ic/api/integration/v1/integrations/HR_NEW_HIRE%7C01.00.0000 200".to_string()
        ),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"PUT /ic/api/integration/v1/integrations/archive 200".to_string()),
        "{lines:?}"
    );
    // the list asked for pages explicitly
    assert!(log.iter().any(|e| e.path.ends_with("/integrations")
        && e.query.contains("offset=0")
        && e.query.contains("limit=100")));

    // with a known status the export is one request
    h.clear_request_log();
    let b = c
        .export_integration_with_status(&nh, Some("CONFIGURED"))
        .await
        .unwrap();
    assert_eq!(b.source_status.as_deref(), Some("CONFIGURED"));
    // the same content (each export carries its own time stamps, as on real OIC)
    assert_eq!(
        ferry::vault::content_hash(b.path(), &b.sha256).unwrap(),
        ferry::vault::content_hash(a.path(), &a.sha256).unwrap()
    );
    assert_eq!(api_log(&h, "dev3").len(), 1);

    // Gen2: no integrationInstance
    let c2 = client(&h, "dev2");
    h.clear_request_log();
    c2.get_integration(&nh).await.unwrap().unwrap();
    let log = api_log(&h, "dev2");
    assert_eq!(log.len(), 1);
    assert!(
        !log[0].query.contains("integrationInstance"),
        "{:?}",
        log[0]
    );
}

#[tokio::test]
async fn the_client_never_retries_and_classifies_faults() {
    let h = landscape().await;
    let c = client(&h, "dev3");
    let nh = id("HR_NEW_HIRE|01.00.0000");
    c.get_integration(&nh).await.unwrap(); // token fetched
    for (status, retry_after) in [
        (503u16, None),
        (500, None),
        (502, None),
        (504, None),
        (429, Some(7u64)),
        (429, None),
    ] {
        h.set_faults(Faults {
            script: vec![status],
            retry_after_secs: retry_after,
            ..Faults::default()
        });
        h.clear_request_log();
        let e = c.get_integration(&nh).await.unwrap_err();
        assert_eq!(e.status(), Some(status), "{e}");
        assert!(e.is_retryable(), "{status}");
        assert_eq!(
            e.retry_after(),
            retry_after.map(Duration::from_secs),
            "{status}"
        );
        assert_eq!(
            api_log(&h, "dev3").len(),
            1,
            "{status}: exactly one request, no retry"
        );
    }
    // a 503 in the middle of an import sequence stops it: nothing after the failed step. (The
    // failing step is the deactivation, a small JSON body: an injected answer to a multipart
    // upload may reach the client as a connection reset instead, since the server does not read
    // the body it refuses; that is a transport error, retryable as well.)
    let a = c.export_integration(&nh).await.unwrap();
    assert_eq!(
        c.activate(&nh, &sync_activation()).await.unwrap(),
        "ACTIVATED"
    );
    h.set_faults(Faults {
        script: vec![0, 503],
        ..Faults::default()
    });
    h.clear_request_log();
    let e = c
        .import_integration(&a, ImportMode::Overwrite)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(503), "{e}");
    let lines: Vec<String> = api_log(&h, "dev3").iter().map(line).collect();
    assert_eq!(
        lines,
        vec![
            "GET /ic/api/integration/v1/integrations/HR_NEW_HIRE%7C01.00.0000 200",
            "POST /ic/api/integration/v1/integrations/HR_NEW_HIRE%7C01.00.0000 503"
        ]
    );
    h.set_faults(Faults::default());
    // repeated by the caller, the sequence completes
    let out = c
        .import_integration(&a, ImportMode::Overwrite)
        .await
        .expect("second attempt");
    assert_eq!(out.action, ImportAction::Replaced);
    assert_eq!(out.previous_status.as_deref(), Some("ACTIVATED"));
}

#[tokio::test]
async fn a_401_renews_the_token_once_and_repeats_once() {
    let h = landscape().await;
    let c = client(&h, "dev3");
    let nh = id("HR_NEW_HIRE|01.00.0000");
    c.get_integration(&nh).await.unwrap();
    assert_eq!(c.token_fetches().await, 1);
    // the next request meets a 401 (as if the token had been revoked)
    h.set_faults(Faults {
        script: vec![401],
        path_regex: Some("/integrations/".into()),
        ..Faults::default()
    });
    h.clear_request_log();
    c.get_integration(&nh)
        .await
        .expect("repeated after renewal")
        .expect("exists");
    assert_eq!(c.token_fetches().await, 2);
    let statuses: Vec<u16> = api_log(&h, "dev3").iter().map(|e| e.status).collect();
    assert_eq!(statuses, vec![401, 200]);
    // two 401 in a row: renewed once, repeated once, then the 401 surfaces (not retryable)
    h.set_faults(Faults {
        script: vec![401, 401],
        path_regex: Some("/integrations/".into()),
        ..Faults::default()
    });
    h.clear_request_log();
    let e = c.get_integration(&nh).await.unwrap_err();
    assert_eq!(e.status(), Some(401));
    assert!(!e.is_retryable());
    assert_eq!(api_log(&h, "dev3").len(), 2);
    assert_eq!(c.token_fetches().await, 3);
    // the token endpoint failing with 503 is a retryable HTTP error, not an auth failure
    let fresh = client(&h, "dev3");
    h.set_faults(Faults {
        script: vec![503],
        instances: Some(vec!["identity".into()]),
        ..Faults::default()
    });
    let e = fresh.get_integration(&nh).await.unwrap_err();
    assert_eq!(e.status(), Some(503), "{e}");
    assert!(e.is_retryable());
    assert!(e.to_string().contains("/oauth2/v1/token"), "{e}");
    h.set_faults(Faults::default());
    fresh
        .get_integration(&nh)
        .await
        .expect("works once the endpoint is back");
}

#[tokio::test]
async fn a_cut_download_is_a_transport_error() {
    let h = landscape().await;
    let c = client(&h, "dev3");
    h.set_faults(Faults {
        drop_download_after: Some(100),
        ..Faults::default()
    });
    let e = c
        .export_integration(&id("HR_EMPLOYEE_SYNC|01.00.0000"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "transport", "{e}");
    assert!(e.is_retryable());
    h.set_faults(Faults::default());
    c.export_integration(&id("HR_EMPLOYEE_SYNC|01.00.0000"))
        .await
        .expect("whole download");
}

#[tokio::test]
async fn replacing_a_scheduled_active_integration_stops_deactivates_then_puts() {
    let h = landscape().await;
    for name in ["dev2", "dev3"] {
        let c = client(&h, name);
        let pe = id("HR_PAYROLL_EXPORT|01.00.0000");
        let a = c.export_integration(&pe).await.unwrap();
        assert_eq!(a.source_status.as_deref(), Some("ACTIVATED"));
        h.clear_request_log();
        let out = c
            .import_integration(&a, ImportMode::Overwrite)
            .await
            .expect("replace");
        assert_eq!(out.action, ImportAction::Replaced);
        let lines: Vec<String> = api_log(&h, name).iter().map(line).collect();
        let p = "/ic/api/integration/v1/integrations/HR_PAYROLL_EXPORT%7C01.00.0000";
        assert_eq!(
            lines,
            vec![
                format!("GET {p} 200"),
                format!("POST {p}/schedule/stop 200"),
                format!("POST {p} 200"),
                "PUT /ic/api/integration/v1/integrations/archive 200".to_string()
            ],
            "{name}"
        );
        assert_eq!(
            h.integration_status(name, "HR_PAYROLL_EXPORT|01.00.0000")
                .as_deref(),
            Some("CONFIGURED")
        );
    }
}

#[tokio::test]
async fn delete_is_classified() {
    let h = landscape().await;
    let c = client(&h, "dev3");
    let e = c
        .delete_integration(&id("HR_EMPLOYEE_SYNC|01.00.0000"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(412), "active: {e}");
    let e = c
        .delete_integration(&id("FIN_SUPPLIER_SYNC|01.00.0000"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(423), "locked: {e}");
    let e = c
        .delete_integration(&id("NOPE|01.00.0000"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");
    c.delete_integration(&id("SCM_ORDER_NOTIFY|01.00.0000"))
        .await
        .expect("delete configured");
    assert!(
        c.get_integration(&id("SCM_ORDER_NOTIFY|01.00.0000"))
            .await
            .unwrap()
            .is_none()
    );
    c.stop_schedule(&id("SCM_ORDER_NOTIFY|01.00.0000"))
        .await
        .expect_err("404 on a deleted one is an error");
    c.stop_schedule(&id("HR_NEW_HIRE|01.00.0000"))
        .await
        .expect("not scheduled: 412 is fine");
}

#[tokio::test]
async fn connections_drafts_are_configured_then_the_integration_activates() {
    let h = landscape().await;
    for (src, dst) in [("dev2", "new2"), ("dev3", "new3")] {
        let s = client(&h, src);
        let t = client(&h, dst);
        let all = s.list_connections(None, None).await.expect("list");
        assert_eq!(all.len(), 6, "{all:?}");
        let rest = s
            .get_connection(None, "HR_REST")
            .await
            .unwrap()
            .expect("HR_REST");
        assert_eq!(rest.status, "CONFIGURED");
        assert_eq!(rest.adapter, "rest");
        assert!(s.get_connection(None, "NOPE").await.unwrap().is_none());

        let sync = id("HR_EMPLOYEE_SYNC|01.00.0000");
        let a = s.export_integration(&sync).await.unwrap();
        assert_eq!(
            t.import_integration(&a, ImportMode::Overwrite)
                .await
                .unwrap()
                .action,
            ImportAction::Created
        );
        let imported = t.get_integration(&sync).await.unwrap().unwrap();
        assert_eq!(
            imported.status, "INPROGRESS",
            "its connections are drafts on the empty target"
        );
        let e = t.activate(&sync, &sync_activation()).await.unwrap_err();
        assert_eq!(e.status(), Some(412), "{e}");

        for code in &imported.connections {
            let draft = t
                .get_connection(None, code)
                .await
                .unwrap()
                .expect("draft created by the import");
            assert_eq!(draft.status, "INPROGRESS");
            let e = t.test_connection(None, code).await.unwrap_err();
            assert_eq!(e.status(), Some(409), "testing a draft: {e}");
            let upd = ConnectionUpdate {
                connection_properties: Some(vec![ConnectionProperty::new(
                    "CONNECTION_PROPS",
                    "connectionUrl",
                    "URL",
                    "https://target.example.com",
                )]),
                security_policy: Some("BASIC_AUTH".into()),
                security_properties: Some(vec![
                    ConnectionProperty::new("CREDENTIALS", "username", "STRING", "svc"),
                    ConnectionProperty::new(
                        "CREDENTIALS",
                        "password",
                        "PASSWORD",
                        "pw-never-returned",
                    ),
                ]),
                agent_group_id: None,
            };
            let after = t.update_connection(None, code, &upd).await.expect("update");
            assert_eq!(after.id, *code);
            assert!(!after.raw.to_string().contains("pw-never-returned"));
            let r = t.test_connection(None, code).await.expect("test");
            assert!(r.ok(), "{r:?}");
            assert_eq!(
                h.connection_status(dst, code).as_deref(),
                Some("CONFIGURED")
            );
        }
        assert_eq!(
            t.activate(&sync, &sync_activation())
                .await
                .expect("activates now"),
            "ACTIVATED"
        );
    }
}

#[tokio::test]
async fn a_slow_instance_is_a_retryable_timeout() {
    let h = landscape().await;
    let mut p = profile(h.instance("dev3").unwrap());
    p.timeout_secs = 1;
    let c = OicClient::new(&p).unwrap();
    let nh = id("HR_NEW_HIRE|01.00.0000");
    c.get_integration(&nh).await.expect("fast enough");
    h.set_faults(Faults {
        latency_ms: 2500,
        path_regex: Some("/integrations".into()),
        ..Faults::default()
    });
    let e = c.get_integration(&nh).await.unwrap_err();
    assert_eq!(e.kind(), "timeout", "{e}");
    assert!(e.is_retryable());
    let e = c.export_integration(&nh).await.unwrap_err();
    assert_eq!(e.kind(), "timeout", "{e}");
    h.set_faults(Faults::default());
    c.get_integration(&nh).await.expect("fast again");
}

#[tokio::test]
async fn concurrent_first_calls_share_one_token_request() {
    let h = landscape().await;
    let c = client(&h, "dev3");
    h.clear_request_log();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.get_integration(&IntegrationId::new("HR_NEW_HIRE", "01.00.0000"))
                .await
                .map(|o| o.is_some())
        }));
    }
    for t in tasks {
        assert!(t.await.expect("task").expect("call"));
    }
    let token_calls = h
        .request_log()
        .iter()
        .filter(|e| e.path == "/oauth2/v1/token")
        .count();
    assert_eq!(
        token_calls, 1,
        "one token request for 20 concurrent callers"
    );
    assert_eq!(c.token_fetches().await, 1);
    assert_eq!(api_log(&h, "dev3").len(), 20);
}
