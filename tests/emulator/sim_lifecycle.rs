//! Emulator integration lifecycle: delete, schedule, activation errors, reactivate, orderBy, expand, type.

use crate::support::sim as common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn delete_rules() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    let del = |p: &str| dev.req(Method::DELETE, p).send();
    assert_error(
        del("/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000")
            .await
            .expect("send"),
        PRECONDITION_FAILED,
    )
    .await;
    assert_error(
        del("/integrations/FIN_SUPPLIER_SYNC%7C01.00.0000")
            .await
            .expect("send"),
        LOCKED,
    )
    .await;
    assert_error(
        del("/integrations/NOPE%7C01.00.0000").await.expect("send"),
        NOT_FOUND,
    )
    .await;
    assert_eq!(
        del("/integrations/HR_NEW_HIRE|01.00.0000")
            .await
            .expect("send")
            .status(),
        StatusCode::OK
    );
    dev.get_error("/integrations/HR_NEW_HIRE%7C01.00.0000", NOT_FOUND)
        .await;
}

#[tokio::test]
async fn schedule_start_stop_get() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    let p = "/integrations/HR_PAYROLL_EXPORT%7C01.00.0000";
    let s = dev.json(&format!("{p}/schedule")).await;
    assert_eq!(s["state"], "ACTIVE");
    assert!(
        s["icalExpression"]
            .as_str()
            .is_some_and(|e| e.contains("FREQ=DAILY"))
    );
    let post = |x: &str| dev.req(Method::POST, &format!("{p}/schedule/{x}")).send();
    assert_eq!(post("stop").await.expect("send").status(), StatusCode::OK);
    assert_error(post("stop").await.expect("send"), PRECONDITION_FAILED).await;
    assert_eq!(post("start").await.expect("send").status(), StatusCode::OK);
    assert_eq!(dev.json(&format!("{p}/schedule")).await["state"], "ACTIVE");
    // Not scheduled → 412; unknown → 404.
    let r = dev
        .call(
            Method::POST,
            "/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000/schedule/stop",
        )
        .await;
    assert_error(r, PRECONDITION_FAILED).await;
    let r = dev
        .call(
            Method::POST,
            "/integrations/NOPE%7C01.00.0000/schedule/stop",
        )
        .await;
    assert_error(r, NOT_FOUND).await;
    // Deactivation stops the schedule; start needs an active integration.
    assert_eq!(
        dev.patch(p, r#"{"status":"CONFIGURED"}"#).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        dev.json(&format!("{p}/schedule")).await["state"],
        "CANCELLED"
    );
    assert_error(post("start").await.expect("send"), PRECONDITION_FAILED).await;
    // The integration resource flags it.
    let i = dev.json(p).await;
    assert_eq!(i["scheduleDefinedFlag"], true);
}

#[tokio::test]
async fn activation_errors_and_reactivate() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    let v = dev
        .json("/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000/activationErrors")
        .await;
    assert_eq!(v["items"], json!([]));
    dev.get_error(
        "/integrations/NOPE%7C01.00.0000/activationErrors",
        NOT_FOUND,
    )
    .await;
    let r = dev
        .call_json(
            Method::POST,
            "/integrations/reactivate",
            &json!([
                "HR_EMPLOYEE_SYNC|01.00.0000",
                "HR_ABSENCE_FEED|01.00.0000",
                "NOPE|01.00.0000"
            ]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["items"][0]["status"], "ACTIVATED");
    assert_eq!(v["items"][1]["status"], "FAILED");
    assert_eq!(v["items"][2]["status"], "FAILED");
    assert_eq!(
        dev.json("/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000")
            .await["status"],
        "ACTIVATED"
    );
    let r = dev
        .call_json(Method::POST, "/integrations/reactivate", &json!({"x":1}))
        .await;
    assert_error(r, BAD_REQUEST).await;
}

#[tokio::test]
async fn order_expand_type_and_flags() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    let by_name = dev.json("/integrations?orderBy=name").await;
    let names: Vec<String> = by_name["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["name"].as_str().unwrap_or("").to_lowercase())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let by_time = dev.json("/integrations?orderBy=time").await;
    let times: Vec<String> = by_time["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["lastUpdated"].as_str().unwrap_or("").to_string())
        .collect();
    let mut desc = times.clone();
    desc.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, desc);
    dev.get_error("/integrations?orderBy=size", BAD_REQUEST)
        .await;
    let pre = dev
        .json(&format!("/integrations?q={}", enc("{type:'PREBUILT'}")))
        .await;
    assert_eq!(pre["totalResults"], 1);
    assert_eq!(pre["items"][0]["projectType"], "PREBUILT");
    let x = dev
        .json("/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000?expand=connection")
        .await;
    assert_eq!(
        x["endPoints"][0]["connection"]["adapterType"]["name"],
        "rest"
    );
    // Tracing flags on an inactive integration.
    let r = dev
        .patch(
            "/integrations/SCM_ORDER_NOTIFY%7C01.00.0000",
            r#"{"tracingEnabledFlag":true,"payloadTracingEnabledFlag":true}"#,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let i = dev
        .json("/integrations/SCM_ORDER_NOTIFY%7C01.00.0000")
        .await;
    assert_eq!(i["tracingEnabledFlag"], true);
    assert_eq!(i["payloadTracingEnabledFlag"], true);
}

#[tokio::test]
async fn injected_activation_failure() {
    let h = start().await;
    let dev = Oic::new(&h, "test3").await;
    // Long on the wall clock: the test's advance of the emulator's clock ends it.
    h.set_async_activation_delay(std::time::Duration::from_secs(60));
    h.set_faults(ferry::sim::Faults {
        fail_activation: vec!["SCM_ORDER_NOTIFY|01.00.0000".into()],
        ..Default::default()
    });
    let p = "/integrations/SCM_ORDER_NOTIFY%7C01.00.0000";
    let r = dev
        .patch(
            &format!("{p}?enableAsyncActivationMode=true"),
            r#"{"status":"ACTIVATED"}"#,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        dev.json(&format!("{p}/activationStatus")).await["activationStatus"],
        "ACTIVATION_INPROGRESS"
    );
    h.advance_clock(std::time::Duration::from_secs(60));
    // It ends as soon as the emulator's task runs: the loop only yields to it (bounded).
    let mut status = String::new();
    for _ in 0..1000 {
        status = dev.json(&format!("{p}/activationStatus")).await["activationStatus"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if status != "ACTIVATION_INPROGRESS" {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(status, "FAILEDACTIVATION");
    let errs = dev.json(&format!("{p}/activationErrors")).await;
    assert!(
        errs["items"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("SCM_ORDER_NOTIFY"))
    );
    // Sync mode fails at once; after clearing the fault, activation works.
    let r = dev.patch(p, r#"{"status":"ACTIVATED"}"#).await;
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["status"], "FAILEDACTIVATION");
    h.set_faults(ferry::sim::Faults::default());
    let v: Value = dev
        .patch(p, r#"{"status":"ACTIVATED"}"#)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["status"], "ACTIVATED");
    assert_eq!(
        dev.json(&format!("{p}/activationErrors")).await["items"],
        json!([])
    );
}
