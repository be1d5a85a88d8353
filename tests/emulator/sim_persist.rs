//! Emulator `state_dir` persistence across restarts.

use crate::support::sim as common;

use common::*;
use ferry::sim::{self, Seed, SimConfig};
use reqwest::{Method, StatusCode};

fn cfg(dir: &std::path::Path) -> SimConfig {
    SimConfig {
        instances: vec![
            spec("dev", 2, Seed::Sample),
            spec("prod", 3, Seed::TargetConnections),
        ],
        state_dir: Some(dir.to_path_buf()),
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn state_survives_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (iar, prod_client, big) = {
        let h = sim::start(cfg(dir.path())).await.expect("start");
        let dev = Oic::new(&h, "dev").await;
        let prod = Oic::new(&h, "prod").await;
        let iar = dev.export("FIN_INVOICE_IMPORT|01.00.0000").await;
        assert_eq!(
            prod.import(Method::POST, iar.clone()).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            prod.patch(
                "/integrations/FIN_INVOICE_IMPORT%7C01.00.0000?enableAsyncActivationMode=true",
                r#"{"status":"ACTIVATED"}"#
            )
            .await
            .status(),
            StatusCode::OK
        );
        let del = dev
            .call(Method::DELETE, "/integrations/HR_NEW_HIRE%7C01.00.0000")
            .await;
        assert_eq!(del.status(), StatusCode::OK);
        h.add_user("new.person@example.com", "New Person");
        // A large import is spooled to disk; it must survive the restart too.
        assert!(h.set_archive_size("dev", "SCM_ORDER_NOTIFY|01.00.0000", 12 * 1024 * 1024));
        let big = dev.export("SCM_ORDER_NOTIFY|01.00.0000").await;
        assert!(big.len() > 12 * 1024 * 1024);
        assert_eq!(
            prod.import(Method::POST, big.clone()).await.status(),
            StatusCode::NO_CONTENT
        );
        assert!(
            dir.path().join("state.json").exists(),
            "saved after a mutating request"
        );
        let client = h.instance("prod").expect("prod").client_id.clone();
        h.shutdown().await;
        (iar, client, big)
    };
    let h = sim::start(cfg(dir.path())).await.expect("restart");
    assert_eq!(
        h.instance("prod").expect("prod").client_id,
        prod_client,
        "credentials are stable"
    );
    let dev = Oic::new(&h, "dev").await;
    let prod = Oic::new(&h, "prod").await;
    let got = prod
        .json("/integrations/FIN_INVOICE_IMPORT%7C01.00.0000")
        .await;
    assert_eq!(got["status"], "ACTIVATED");
    assert_eq!(
        content(&prod.export("FIN_INVOICE_IMPORT|01.00.0000").await),
        content(&iar)
    );
    dev.get_error("/integrations/HR_NEW_HIRE%7C01.00.0000", NOT_FOUND)
        .await;
    assert!(h.user_id("new.person@example.com").is_some());
    assert!(
        prod.export("SCM_ORDER_NOTIFY|01.00.0000").await == big,
        "spooled archive restored"
    );
}
