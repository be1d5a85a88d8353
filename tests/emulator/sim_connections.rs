//! Emulator connections (§5): list/get without secrets, PATCH-override update, test, draft flow after import.

use crate::support::sim as common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn list_get_never_returns_secrets() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    let raw = dev.get("/connections").await.text().await.expect("text");
    assert!(!raw.contains("dev-secret"), "secret values leak: {raw}");
    let v: Value = serde_json::from_str(&raw).expect("json");
    assert_eq!(v["totalResults"], 6);
    let c = dev.json("/connections/HR_REST").await;
    assert_eq!(c["id"], "HR_REST");
    assert_eq!(c["status"], "CONFIGURED");
    assert_eq!(c["securityPolicy"], "BASIC_AUTH");
    assert_eq!(c["adapterType"]["name"], "rest");
    // Recorded: plain values are shown, PASSWORD values are masked.
    for p in c["securityProperties"].as_array().expect("sec") {
        if p["propertyType"] == "PASSWORD" {
            assert_eq!(p["propertyValue"], "*****", "{p}");
        } else {
            assert_ne!(p["propertyValue"], "dev-secret", "{p}");
        }
    }
    assert_eq!(c["usage"], 3);
    let q = dev.json("/connections?q=%7Brole%3A%27TARGET%27%7D").await;
    assert!(
        q["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|c| c["role"] == "TARGET")
    );
    let t = dev.json("/connections?orderBy=type&limit=2").await;
    assert_eq!(t["hasMore"], true);
    dev.get_error("/connections/NOPE", NOT_FOUND).await;
}

#[tokio::test]
async fn import_draft_update_test_activate() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    let tgt = Oic::new(&h, "empty2").await;
    let iar = dev.export("FIN_INVOICE_IMPORT|01.00.0000").await;
    assert_eq!(
        tgt.import(Method::POST, iar).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        tgt.json("/integrations/FIN_INVOICE_IMPORT%7C01.00.0000")
            .await["status"],
        "INPROGRESS"
    );
    let erp = tgt.json("/connections/FIN_ERP").await;
    assert_eq!(erp["status"], "INPROGRESS");
    assert_eq!(erp["securityProperties"], json!([]));
    // Test of a draft without credentials → 409.
    assert_error(
        tgt.call(Method::POST, "/connections/FIN_ERP/test").await,
        CONFLICT,
    )
    .await;
    // Activation is refused while connections are drafts.
    assert_error(
        tgt.patch(
            "/integrations/FIN_INVOICE_IMPORT%7C01.00.0000",
            r#"{"status":"ACTIVATED"}"#,
        )
        .await,
        PRECONDITION_FAILED,
    )
    .await;
    // Update with the four honoured members (plus an ignored one).
    for code in ["FIN_ERP", "FIN_ATP"] {
        let body = json!({
            "connectionProperties": [{"propertyGroup":"CONNECTION_PROPS","propertyName":"connectionUrl","propertyType":"URL","propertyValue":"https://erp.prod.example.com"}],
            "securityPolicy": "BASIC_AUTH",
            "securityProperties": [
                {"propertyGroup":"CREDENTIALS","propertyName":"username","propertyType":"STRING","propertyValue":"svc"},
                {"propertyGroup":"CREDENTIALS","propertyName":"password","propertyType":"PASSWORD","propertyValue":"s3cret-value"}],
            "agentGroupId": "AGENT_GROUP_1",
            "name": "ignored rename"
        });
        let r = tgt
            .patch(&format!("/connections/{code}"), &body.to_string())
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let text = r.text().await.expect("text");
        assert!(!text.contains("s3cret-value"));
        let v: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["securityPolicy"], "BASIC_AUTH");
        assert_eq!(v["agentGroupId"], "AGENT_GROUP_1");
        assert_ne!(v["name"], "ignored rename");
        assert_eq!(v["status"], "INPROGRESS", "update alone does not configure");
        let r = tgt
            .call(Method::POST, &format!("/connections/{code}/test"))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let t: Value = r.json().await.expect("json");
        assert_eq!(
            t,
            json!({"details": format!("Test of {code} connection succeeded."), "id": code, "status": "SUCCESS"})
        );
        assert_eq!(
            tgt.json(&format!("/connections/{code}")).await["status"],
            "CONFIGURED"
        );
    }
    assert_eq!(
        tgt.json("/integrations/FIN_INVOICE_IMPORT%7C01.00.0000")
            .await["status"],
        "CONFIGURED"
    );
    assert_eq!(
        tgt.patch(
            "/integrations/FIN_INVOICE_IMPORT%7C01.00.0000",
            r#"{"status":"ACTIVATED"}"#
        )
        .await
        .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn import_leaves_existing_connections_untouched_and_test_can_fail() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    let prod = Oic::new(&h, "prod").await;
    let before = prod.json("/connections/FIN_ERP").await;
    let iar = dev.export("FIN_INVOICE_IMPORT|01.00.0000").await;
    assert_eq!(
        prod.import(Method::POST, iar).await.status(),
        StatusCode::NO_CONTENT
    );
    let after = prod.json("/connections/FIN_ERP").await;
    assert_eq!(
        before["connectionProperties"],
        after["connectionProperties"]
    );
    assert_eq!(
        after["connectionProperties"][0]["propertyValue"],
        "https://fin-erp.prod.example.com"
    );
    // A bad URL makes the test fail (200 FAILED).
    let body = json!({"connectionProperties":[{"propertyName":"connectionUrl","propertyValue":"https://nowhere.invalid"}]});
    assert_eq!(
        prod.patch("/connections/FIN_ERP", &body.to_string())
            .await
            .status(),
        StatusCode::OK
    );
    let t: Value = prod
        .call(Method::POST, "/connections/FIN_ERP/test")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(t["status"], "FAILED");
    assert!(
        t["details"]
            .as_str()
            .is_some_and(|d| d.contains("nowhere.invalid"))
    );
    // Missing override → 405; unknown → 404; bad JSON → 400.
    let r = prod
        .call_json(Method::POST, "/connections/FIN_ERP", &json!({}))
        .await;
    assert_error(r, METHOD_NOT_ALLOWED).await;
    assert_error(prod.patch("/connections/NOPE", "{}").await, NOT_FOUND).await;
    assert_error(
        prod.patch("/connections/FIN_ERP", "{not json").await,
        BAD_REQUEST,
    )
    .await;
    // Delete in use → 412.
    assert_error(
        prod.call(Method::DELETE, "/connections/FIN_ERP").await,
        PRECONDITION_FAILED,
    )
    .await;
    assert_eq!(
        prod.call(Method::DELETE, "/connections/SCM_REST")
            .await
            .status(),
        StatusCode::OK
    );
}
