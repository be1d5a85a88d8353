//! Conformance tests of the OIC emulator against docs/oic-api.md, over real HTTP on loopback.

use crate::support::sim as common;

use std::time::Duration;

use common::*;
use ferry::sim;
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;

#[tokio::test]
async fn list_paging_and_envelope() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    let all = dev.json("/integrations").await;
    assert_eq!(all["totalResults"], 11);
    assert_eq!(all["limit"], 100);
    assert!(
        all.get("offset").is_none(),
        "recorded envelope has no offset"
    );
    assert_eq!(all["hasMore"], false);
    assert_eq!(all["items"].as_array().expect("items").len(), 11);
    // Page through with limit 4.
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let p = dev
            .json(&format!("/integrations?limit=4&offset={offset}"))
            .await;
        let items = p["items"].as_array().expect("items");
        assert!(items.len() <= 4);
        seen.extend(
            items
                .iter()
                .map(|i| i["id"].as_str().expect("id").to_string()),
        );
        if !p["hasMore"].as_bool().expect("hasMore") {
            break;
        }
        offset += items.len();
    }
    assert_eq!(seen.len(), 11);
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), 11);
    // Cap 1000.
    assert_eq!(dev.json("/integrations?limit=5000").await["limit"], 1000);
    // Bad limit → 400.
    dev.get_error("/integrations?limit=abc", BAD_REQUEST).await;
    // Item fields are camelCase.
    let item = &all["items"][0];
    for k in [
        "id",
        "code",
        "version",
        "name",
        "status",
        "lockedFlag",
        "projectType",
        "lastUpdatedBy",
        "scheduleDefinedFlag",
    ] {
        assert!(item.get(k).is_some(), "missing {k}");
    }
    // Compact JSON.
    let raw = dev
        .get("/integrations?limit=1")
        .await
        .text()
        .await
        .expect("text");
    assert!(raw.contains("\"hasMore\":true"), "{raw}");
}

#[tokio::test]
async fn q_filters() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    let v = dev
        .json(&format!("/integrations?q={}", enc("{name:'HR New Hire'}")))
        .await;
    assert_eq!(v["totalResults"], 2);
    let v = dev
        .json(&format!("/integrations?q={}", enc("{name:/payroll/}")))
        .await;
    assert_eq!(v["totalResults"], 1);
    assert_eq!(v["items"][0]["code"], "HR_PAYROLL_EXPORT");
    let v = dev
        .json(&format!("/integrations?q={}", enc("{status:'ACTIVATED'}")))
        .await;
    let items = v["items"].as_array().expect("items");
    assert!(items.len() >= 4);
    assert!(items.iter().all(|i| i["status"] == "ACTIVATED"));
    let v = dev
        .json(&format!(
            "/integrations?q={}",
            enc("{name:/^FIN/, status:'CONFIGURED'}")
        ))
        .await;
    assert!(
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|i| i["status"] == "CONFIGURED"
                && i["code"].as_str().is_some_and(|c| c.starts_with("FIN")))
    );
    assert_eq!(v["totalResults"], 2);
    dev.get_error(&format!("/integrations?q={}", enc("{name:'x")), BAD_REQUEST)
        .await;
}

#[tokio::test]
async fn get_with_encoded_and_raw_ids() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    let enc = dev.json("/integrations/HR_NEW_HIRE%7C01.01.0000").await;
    assert_eq!(enc["id"], "HR_NEW_HIRE|01.01.0000");
    assert_eq!(enc["status"], "ACTIVATED");
    let url = dev.url("/integrations/HR_NEW_HIRE|01.00.0000");
    let parsed = reqwest::Url::parse(&url).expect("url");
    assert!(
        parsed.as_str().contains("HR_NEW_HIRE|01.00.0000"),
        "raw | is sent as is: {parsed}"
    );
    let raw = dev.json("/integrations/HR_NEW_HIRE|01.00.0000").await;
    assert_eq!(raw["status"], "CONFIGURED");
    let lower = dev.json("/integrations/HR_NEW_HIRE%7c01.00.0000").await;
    assert_eq!(lower["id"], "HR_NEW_HIRE|01.00.0000");
    let title = dev
        .get_error("/integrations/NOPE%7C01.00.0000", NOT_FOUND)
        .await;
    assert!(title.contains("NOPE"));
    // Gen 3 as well.
    let t3 = Oic::new(&h, "test3").await;
    assert_eq!(
        t3.json("/integrations/HR_NEW_HIRE|01.01.0000").await["code"],
        "HR_NEW_HIRE"
    );
}

/// The stamping switch belongs to one emulator: with it off, two exports (generated, and of an
/// imported archive) are byte-identical, while another emulator of the same process, left on,
/// stamps its exports.
#[tokio::test]
async fn stamped_exports_is_a_switch_of_one_emulator() {
    let (plain, stamped) = (start().await, start().await);
    plain.set_stamped_exports(false);
    let id = "HR_EMPLOYEE_SYNC|01.00.0000";
    let (p, s) = (
        Oic::new(&plain, "dev").await,
        Oic::new(&stamped, "dev").await,
    );
    let first = p.export(id).await;
    assert_eq!(first, p.export(id).await, "unstamped: reproducible bytes");
    assert_ne!(
        s.export(id).await,
        s.export(id).await,
        "stamped: never twice the same"
    );
    // an imported archive is exported exactly as uploaded
    let uploaded = s.export(id).await;
    let prod = Oic::new(&plain, "prod").await;
    let r = prod.import(Method::POST, uploaded.clone()).await;
    assert!(r.status().is_success(), "import: {}", r.status());
    assert_eq!(prod.export(id).await, uploaded);
}

#[tokio::test]
async fn export_layout_and_423() {
    let h = start().await;
    h.set_stamped_exports(true);
    let dev = Oic::new(&h, "dev").await;
    let bytes = dev.export("HR_EMPLOYEE_SYNC|01.00.0000").await;
    let e = zip_entries(&bytes);
    let p = "icspackage/project/HR_EMPLOYEE_SYNC_01.00.0000/";
    let props = String::from_utf8(e[&format!("{p}ics_project_attributes.properties")].clone())
        .expect("utf8");
    assert!(props.contains("project_code=HR_EMPLOYEE_SYNC\n"));
    assert!(props.contains("project_version=01.00.0000\n"));
    assert!(props.contains("project_name=HR Employee Sync\n"));
    assert!(props.contains("project_type=DEVELOPED\n"));
    let m = props
        .lines()
        .find_map(|l| l.strip_prefix("mod="))
        .expect("mod line");
    use base64::Engine;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(m)
            .expect("b64")
            .len(),
        16
    );
    let px = String::from_utf8(e[&format!("{p}PROJECT-INF/project.xml")].clone()).expect("utf8");
    assert!(px.contains("<projectCode>HR_EMPLOYEE_SYNC</projectCode>"));
    assert!(px.contains("xmlns:ns3=\"http://www.oracle.com/2014/03/ics/project\""));
    assert!(e.contains_key("icspackage/appinstances/HR_REST.xml"));
    assert!(e.contains_key("icspackage/appinstances/ORACLE_HCM.xml"));
    assert!(e.contains_key("icspackage/dvms/COUNTRY_CODES.dvm"));
    let conn = String::from_utf8(e["icspackage/appinstances/HR_REST.xml"].clone()).expect("utf8");
    assert!(!conn.contains("dev-secret"), "no secrets in archives");
    // Two exports of the same integration differ (time stamps) but hold the same content.
    let again = dev.export("HR_EMPLOYEE_SYNC|01.00.0000").await;
    assert_ne!(bytes, again, "exports carry their export time");
    assert_eq!(content(&bytes), content(&again));
    // Scheduled flow has a schedule entry.
    let s = zip_entries(&dev.export("HR_PAYROLL_EXPORT|01.00.0000").await);
    assert!(s.keys().any(|k| k.starts_with("icspackage/schedule/")));
    // 404, 423 locked, 423 prebuilt.
    dev.get_error("/integrations/NOPE%7C01.00.0000/archive", NOT_FOUND)
        .await;
    dev.get_error(
        "/integrations/FIN_SUPPLIER_SYNC%7C01.00.0000/archive",
        LOCKED,
    )
    .await;
    dev.get_error(
        "/integrations/ORCL_ERP_ACCEL_SYNC%7C01.00.0000/archive",
        LOCKED,
    )
    .await;
}

#[tokio::test]
async fn import_post_put_and_errors() {
    let h = start().await;
    h.set_stamped_exports(true);
    let dev = Oic::new(&h, "dev").await;
    let prod = Oic::new(&h, "prod").await;
    let iar = dev.export("FIN_INVOICE_IMPORT|01.00.0000").await;
    prod.get_error("/integrations/FIN_INVOICE_IMPORT%7C01.00.0000", NOT_FOUND)
        .await;
    // PUT of a missing one → 404.
    assert_error(prod.import(Method::PUT, iar.clone()).await, NOT_FOUND).await;
    let r = prod.import(Method::POST, iar.clone()).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let got = prod
        .json("/integrations/FIN_INVOICE_IMPORT%7C01.00.0000")
        .await;
    assert_eq!(got["status"], "CONFIGURED", "connections exist on prod");
    // Again → 409 with the exact body shape.
    assert_error(prod.import(Method::POST, iar.clone()).await, CONFLICT).await;
    // Replace → 200.
    let r = prod.import(Method::PUT, iar.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    // Round trip: the export from prod holds what was imported (re-stamped, so not byte-identical).
    let back = prod.export("FIN_INVOICE_IMPORT|01.00.0000").await;
    assert_ne!(back, iar);
    assert_eq!(content(&back), content(&iar));
    // Tampered: code changed inside the properties → ICS-20099.
    let mut e = zip_entries(&iar);
    let key = "icspackage/project/FIN_INVOICE_IMPORT_01.00.0000/ics_project_attributes.properties"
        .to_string();
    let props = String::from_utf8(e[&key].clone())
        .expect("utf8")
        .replace("project_name=FIN Invoice Import", "project_name=Edited");
    e.insert(key, props.into_bytes());
    let title = assert_error(prod.import(Method::PUT, rezip(&e)).await, BAD_REQUEST).await;
    assert!(title.contains("ICS-20099"), "{title}");
    // Not a zip, missing file.
    assert_error(
        prod.import(Method::POST, b"not a zip".to_vec()).await,
        BAD_REQUEST,
    )
    .await;
    let form = reqwest::multipart::Form::new().text("type", "application/octet-stream");
    let r = prod
        .upload(Method::POST, "/integrations/archive", form)
        .await;
    assert_error(r, BAD_REQUEST).await;
    // PUT while ACTIVATED → 412.
    let r = prod
        .patch(
            "/integrations/FIN_INVOICE_IMPORT%7C01.00.0000",
            r#"{"status":"ACTIVATED"}"#,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_error(
        prod.import(Method::PUT, iar.clone()).await,
        PRECONDITION_FAILED,
    )
    .await;
}

#[tokio::test]
async fn import_creates_draft_connections() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    let empty = Oic::new(&h, "empty2").await;
    let iar = dev.export("HR_EMPLOYEE_SYNC|01.00.0000").await;
    assert_eq!(
        empty.import(Method::POST, iar).await.status(),
        StatusCode::NO_CONTENT
    );
    let got = empty
        .json("/integrations/HR_EMPLOYEE_SYNC|01.00.0000")
        .await;
    assert_eq!(got["status"], "INPROGRESS");
    assert_eq!(
        h.connection_status("empty2", "HR_REST").as_deref(),
        Some("INPROGRESS")
    );
    assert_eq!(
        h.connection_status("empty2", "ORACLE_HCM").as_deref(),
        Some("INPROGRESS")
    );
    let title = assert_error(
        empty
            .patch(
                "/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000",
                r#"{"status":"ACTIVATED"}"#,
            )
            .await,
        PRECONDITION_FAILED,
    )
    .await;
    assert_eq!(
        title,
        "Integration 'HR_EMPLOYEE_SYNC | 1.0' is either already active, activation in-progress or not ready for activation."
    );
}

#[tokio::test]
async fn activate_deactivate_rules() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    let id = "/integrations/SCM_ORDER_NOTIFY%7C01.00.0000";
    let r = dev
        .patch(id, r#"{"status":"ACTIVATED","tracingEnabledFlag":true}"#)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["status"], "ACTIVATED");
    assert_eq!(
        dev.json(&format!("{id}/activationStatus")).await["activationStatus"],
        "ACTIVATED"
    );
    assert_eq!(dev.json(id).await["tracingEnabledFlag"], true);
    let title = assert_error(
        dev.patch(id, r#"{"status":"ACTIVATED"}"#).await,
        PRECONDITION_FAILED,
    )
    .await;
    assert_eq!(
        title,
        "Integration 'SCM_ORDER_NOTIFY | 1.0' is either already active, activation in-progress or not ready for activation."
    );
    let title = assert_error(
        dev.patch(id, r#"{"tracingEnabledFlag":false}"#).await,
        PRECONDITION_FAILED,
    )
    .await;
    assert!(title.starts_with("Failed to save integration configuration"));
    assert_eq!(
        dev.patch(id, r#"{"status":"CONFIGURED"}"#).await.status(),
        StatusCode::OK
    );
    assert_error(
        dev.patch(id, r#"{"status":"CONFIGURED"}"#).await,
        PRECONDITION_FAILED,
    )
    .await;
    // Draft cannot be activated.
    assert_error(
        dev.patch(
            "/integrations/HR_ABSENCE_FEED%7C01.00.0000",
            r#"{"status":"ACTIVATED"}"#,
        )
        .await,
        PRECONDITION_FAILED,
    )
    .await;
    // 404, 400, missing override → 405.
    assert_error(
        dev.patch(
            "/integrations/NOPE%7C01.00.0000",
            r#"{"status":"ACTIVATED"}"#,
        )
        .await,
        NOT_FOUND,
    )
    .await;
    assert_error(dev.patch(id, r#"{"status":"BOGUS"}"#).await, BAD_REQUEST).await;
    let r = dev
        .call_json(Method::POST, id, &serde_json::json!({"status":"ACTIVATED"}))
        .await;
    assert_error(r, METHOD_NOT_ALLOWED).await;
    // Activation status 404.
    dev.get_error(
        "/integrations/NOPE%7C01.00.0000/activationStatus",
        NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn minor_version_rule_and_async_activation() {
    let h = start().await;
    let dev = Oic::new(&h, "test3").await;
    // HR_NEW_HIRE 01.01 is active; activating 01.00 deactivates 01.01 (same major).
    let r = dev
        .patch(
            "/integrations/HR_NEW_HIRE|01.00.0000",
            r#"{"status":"ACTIVATED"}"#,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        dev.json("/integrations/HR_NEW_HIRE%7C01.01.0000").await["status"],
        "CONFIGURED"
    );
    assert_eq!(
        dev.json("/integrations/HR_NEW_HIRE%7C01.00.0000").await["status"],
        "ACTIVATED"
    );
    // Different major: FIN_GL_JOURNAL 02.00 activation leaves others alone.
    h.set_async_activation_delay(Duration::from_secs(3600));
    let r = dev
        .patch(
            "/integrations/FIN_GL_JOURNAL%7C02.00.0000?enableAsyncActivationMode=true",
            r#"{"status":"ACTIVATED"}"#,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["status"], "ACTIVATION_INPROGRESS");
    assert_eq!(
        dev.json("/integrations/FIN_GL_JOURNAL%7C02.00.0000/activationStatus")
            .await["activationStatus"],
        "ACTIVATION_INPROGRESS"
    );
    // The emulator's clock passes the delay: the activation ends as soon as its task runs (the
    // loop only yields to it, bounded; no time passes).
    h.advance_clock(Duration::from_secs(3600));
    let mut status = String::new();
    for _ in 0..1000 {
        status = dev
            .json("/integrations/FIN_GL_JOURNAL%7C02.00.0000/activationStatus")
            .await["activationStatus"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if status == "ACTIVATED" {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(status, "ACTIVATED");
    assert_eq!(
        h.integration_status("test3", "FIN_GL_JOURNAL|02.00.0000")
            .as_deref(),
        Some("ACTIVATED")
    );
}

#[tokio::test]
async fn gen2_auth_rules() {
    let h = start().await;
    let info = h.instance("dev").expect("dev").clone();
    let http = Client::new();
    let url = format!("{}{API}/integrations", info.base_url);
    let r = http.get(&url).send().await.expect("send");
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_error(r, UNAUTHORIZED).await;
    let r = http
        .get(&url)
        .basic_auth(info.username.as_deref().unwrap_or(""), Some("wrong"))
        .send()
        .await
        .expect("send");
    assert_error(r, UNAUTHORIZED).await;
    // Bearer works on gen 2 too.
    let token = fetch_token(&http, &info).await;
    let r = http
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    // A token of another instance is refused.
    let other = h.instance("empty2").expect("empty2").clone();
    let t2 = fetch_token(&http, &other).await;
    let r = http.get(&url).bearer_auth(&t2).send().await.expect("send");
    assert_error(r, UNAUTHORIZED).await;
    let r = http
        .get(&url)
        .bearer_auth("garbage")
        .send()
        .await
        .expect("send");
    assert_error(r, UNAUTHORIZED).await;
}

#[tokio::test]
async fn gen3_auth_rules_and_instance_selector() {
    let h = start().await;
    let info = h.instance("prod").expect("prod").clone();
    let http = Client::new();
    let token = fetch_token(&http, &info).await;
    let ii = info
        .integration_instance
        .clone()
        .expect("gen3 has integrationInstance");
    assert_eq!(ii, "prod-sim-lo");
    let base = format!("{}{API}/integrations", info.base_url);
    let ok = http
        .get(format!("{base}?integrationInstance={ii}"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status(), StatusCode::OK);
    // Missing / unknown selector.
    let r = http
        .get(&base)
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_error(r, BAD_REQUEST).await;
    let r = http
        .get(format!("{base}?integrationInstance=nope"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_error(r, NOT_FOUND).await;
    // Basic is refused on OIC 3.
    let r = http
        .get(format!("{base}?integrationInstance={ii}"))
        .basic_auth(&info.client_id, Some(&info.client_secret))
        .send()
        .await
        .expect("send");
    assert_error(r, UNAUTHORIZED).await;
    // Token for another gen-3 instance on the same design host → 401.
    let t3 = fetch_token(&http, h.instance("test3").expect("test3")).await;
    let r = http
        .get(format!("{base}?integrationInstance={ii}"))
        .bearer_auth(&t3)
        .send()
        .await
        .expect("send");
    assert_error(r, UNAUTHORIZED).await;
    // Expired token → 401 with WWW-Authenticate: Bearer (expired by the emulator, not by waiting).
    let short = fetch_token(&http, &info).await;
    let r = http
        .get(format!("{base}?integrationInstance={ii}"))
        .bearer_auth(&short)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    h.expire_tokens();
    let r = http
        .get(format!("{base}?integrationInstance={ii}"))
        .bearer_auth(&short)
        .send()
        .await
        .expect("send");
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_error(r, UNAUTHORIZED).await;
}

#[tokio::test]
async fn token_endpoint_errors() {
    let h = start().await;
    let info = h.instance("prod").expect("prod").clone();
    let http = Client::new();
    let r = http
        .post(&info.token_url)
        .basic_auth(&info.client_id, Some("bad"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", info.scope.as_str()),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"], "invalid_client");
    let r = http
        .post(&info.token_url)
        .basic_auth(&info.client_id, Some(&info.client_secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "https://other/ic/api/"),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.expect("json")["error"],
        "invalid_scope"
    );
    let r = http
        .post(&info.token_url)
        .basic_auth(&info.client_id, Some(&info.client_secret))
        .form(&[("grant_type", "password"), ("scope", info.scope.as_str())])
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.json::<Value>().await.expect("json")["error"],
        "unsupported_grant_type"
    );
    // Token response shape and TTL.
    let r = http
        .post(&info.token_url)
        .basic_auth(&info.client_id, Some(&info.client_secret))
        .header(
            "Content-Type",
            "application/x-www-form-urlencoded;charset=UTF-8",
        )
        .body(format!(
            "grant_type=client_credentials&scope={}",
            percent_encoding::utf8_percent_encode(&info.scope, percent_encoding::NON_ALPHANUMERIC)
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["expires_in"], 3600);
    assert!(
        v["access_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("eyJ"))
    );
}

#[tokio::test]
async fn info_line_and_fixed_ports() {
    let h = start().await;
    let line = sim::standalone_info_line(&h.info);
    assert!(!line.contains('\n'));
    let v: Value = serde_json::from_str(&line).expect("json");
    assert_eq!(v["instances"].as_array().expect("instances").len(), 4);
    assert!(
        v["instances"][0]["base_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://127.0.0.1:") && !u.ends_with('/'))
    );
    assert_eq!(v["instances"][1]["integration_instance"], "prod-sim-lo");
    assert!(
        v["instances"][0]["scope"]
            .as_str()
            .is_some_and(|s| s.ends_with(".integration.sim.ocp.oraclecloud.com:443/ic/api/"))
    );
    h.shutdown().await;
}

#[tokio::test]
async fn unknown_path_is_404_in_oic_shape() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    dev.get_error("/nonsense", NOT_FOUND).await;
}
