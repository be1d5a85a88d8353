//! Cutover (issue 18, part 1): what the emulator and the client offer it (archives that say whom
//! they call, connection tests that fail on demand, monitoring that counts instances since a time
//! with injectable error rates, a REST trigger), and the cutover itself against the emulator over
//! HTTP.

use std::time::Duration;

use ferry::config::{Auth, Generation, InstanceProfile, Secret};
use ferry::oic::archive::{self, InvokeKind};
use ferry::oic::{ActivateOptions, ImportMode, IntegrationId, OicClient};
use ferry::sim::faults::TrafficRule;
use ferry::sim::{self, Faults, Seed, SimConfig, SimHandle, SimInstanceInfo, SimInstanceSpec};

async fn start() -> SimHandle {
    sim::start(SimConfig {
        instances: vec![
            SimInstanceSpec {
                name: "dev".into(),
                generation: 2,
                seed: Seed::Sample,
            },
            SimInstanceSpec {
                name: "prod".into(),
                generation: 3,
                seed: Seed::TargetConnections,
            },
        ],
        ..SimConfig::default()
    })
    .await
    .expect("emulator starts")
}

fn profile(i: &SimInstanceInfo) -> InstanceProfile {
    InstanceProfile {
        name: i.name.clone(),
        base_url: i.base_url.clone(),
        generation: if i.generation == 2 {
            Generation::Gen2
        } else {
            Generation::Gen3
        },
        integration_instance: i.integration_instance.clone(),
        auth: Auth::ClientCredentials {
            token_url: i.token_url.clone(),
            client_id: i.client_id.clone(),
            client_secret: Secret::new(i.client_secret.clone()),
            scope: i.scope.clone(),
        },
        timeout_secs: 30,
    }
}

fn client(h: &SimHandle, name: &str) -> OicClient {
    OicClient::new(&profile(h.instance(name).expect("instance"))).expect("client")
}

fn id(s: &str) -> IntegrationId {
    IntegrationId::parse(s).expect("id")
}

fn sync_activation() -> ActivateOptions {
    ActivateOptions {
        async_mode: false,
        timeout: Duration::from_secs(10),
        poll_interval: Duration::from_millis(20),
        tracing: None,
        payload_tracing: None,
    }
}

#[tokio::test]
async fn sample_archives_say_whom_they_call_and_import_without_the_local_adapter() {
    let h = start().await;
    let (dev, prod) = (client(&h, "dev"), client(&h, "prod"));
    let scm = dev
        .export_integration(&id("SCM_ORDER_NOTIFY|01.00.0000"))
        .await
        .expect("export");
    let calls = archive::invocations(scm.path()).expect("read calls");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        (calls[0].code.as_str(), calls[0].version.as_str()),
        ("FIN_INVOICE_IMPORT", "01.00")
    );
    assert_eq!(calls[0].kind, InvokeKind::Rest);
    let fin = dev
        .export_integration(&id("FIN_INVOICE_IMPORT|01.00.0000"))
        .await
        .expect("export");
    let calls = archive::invocations(fin.path()).expect("read calls");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        (
            calls[0].code.as_str(),
            calls[0].version.as_str(),
            &calls[0].kind
        ),
        ("FIN_PAYMENT_STATUS", "01.00.0000", &InvokeKind::Local)
    );
    // The local integration adapter is a system adapter: not a connection of the archive, so the
    // import on prod is ready to activate.
    let info = archive::inspect(fin.path()).expect("inspect");
    assert_eq!(info.connections, vec!["FIN_ATP", "FIN_ERP"]);
    let leaf = dev
        .export_integration(&id("FIN_PAYMENT_STATUS|01.00.0000"))
        .await
        .expect("export");
    assert!(archive::invocations(leaf.path()).expect("calls").is_empty());
    prod.import_integration(&fin, ImportMode::Overwrite)
        .await
        .expect("import");
    assert_eq!(
        h.integration_status("prod", "FIN_INVOICE_IMPORT|01.00.0000")
            .as_deref(),
        Some("CONFIGURED")
    );
}

#[tokio::test]
async fn connection_tests_fail_on_demand_with_an_oic_message() {
    let h = start().await;
    let prod = client(&h, "prod");
    let ok = prod.test_connection(None, "FIN_ERP").await.expect("test");
    assert!(ok.ok(), "{ok:?}");
    h.set_faults(Faults {
        fail_connection_tests: vec!["FIN_ERP".into()],
        ..Faults::default()
    });
    let t = prod.test_connection(None, "FIN_ERP").await.expect("test");
    assert!(!t.ok());
    assert_eq!(t.status, "FAILED");
    assert!(
        t.details
            .starts_with("Test of FIN_ERP connection failed. CASDK-0005")
            && t.details.contains("https://fin-erp.prod.example.com"),
        "{}",
        t.details
    );
    assert!(
        prod.test_connection(None, "FIN_ATP")
            .await
            .expect("test")
            .ok()
    );
}

#[tokio::test]
async fn monitoring_counts_instances_since_activation_with_injected_error_rates() {
    let h = start().await;
    let (dev, prod) = (client(&h, "dev"), client(&h, "prod"));
    let pay = id("FIN_PAYMENT_STATUS|01.00.0000");
    let a = dev.export_integration(&pay).await.expect("export");
    prod.import_integration(&a, ImportMode::Overwrite)
        .await
        .expect("import");
    h.set_faults(Faults {
        traffic: vec![TrafficRule {
            integration: "FIN_PAYMENT_*".into(),
            instances: 10,
            error_rate: 0.3,
        }],
        ..Faults::default()
    });
    let before = chrono::Utc::now() - chrono::Duration::seconds(2);
    // Nothing ran before the activation.
    let none = prod
        .instance_counts_since(&pay, before)
        .await
        .expect("counts");
    assert_eq!(none.total, 0);
    prod.activate(&pay, &sync_activation())
        .await
        .expect("activate");
    let c = prod
        .instance_counts_since(&pay, before)
        .await
        .expect("counts");
    assert_eq!((c.total, c.failed, c.completed), (10, 3, 7), "{c:?}");
    assert!((c.error_rate() - 0.3).abs() < 1e-9);
    // Since a later time: none of them.
    let later = chrono::Utc::now() + chrono::Duration::seconds(5);
    assert_eq!(
        prod.instance_counts_since(&pay, later)
            .await
            .expect("counts")
            .total,
        0
    );
    // The REST trigger adds one instance per call; at a 100 % error rate it answers 500.
    let path = "/ic/api/integration/v1/flows/rest/FIN_PAYMENT_STATUS/1.0/status";
    let v = prod
        .call_rest_trigger("POST", path, Some(serde_json::json!({"id": 1})))
        .await
        .expect("trigger");
    assert_eq!(v["status"], "COMPLETED");
    h.set_faults(Faults {
        traffic: vec![TrafficRule {
            integration: "FIN_PAYMENT_STATUS|01.00.0000".into(),
            instances: 0,
            error_rate: 1.0,
        }],
        ..Faults::default()
    });
    let e = prod
        .call_rest_trigger("POST", path, None)
        .await
        .expect_err("a failed instance");
    assert_eq!(e.status(), Some(500), "{e}");
    let c = prod
        .instance_counts_since(&pay, before)
        .await
        .expect("counts");
    assert_eq!((c.total, c.failed), (12, 4), "{c:?}");
    // An inactive integration has no trigger.
    let e = prod
        .call_rest_trigger(
            "POST",
            "/ic/api/integration/v1/flows/rest/HR_NEW_HIRE/1.1/",
            None,
        )
        .await
        .expect_err("not active");
    assert_eq!(e.status(), Some(404), "{e}");
}
