//! Emulator OIC 3 projects (§4): list/get/create/delete, .car export/import, deployments, ACL, project
//! integrations and connections.

use crate::support::sim as common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn export_car(o: &Oic, code: &str, label: Option<&str>) -> reqwest::Response {
    let mut body = json!({"type": "DEVELOPED", "code": code});
    if let Some(l) = label {
        body["label"] = json!(l);
    }
    o.call_json(Method::POST, &format!("/projects/{code}/archive"), &body)
        .await
}

async fn import_car(o: &Oic, bytes: Vec<u8>) -> reqwest::Response {
    let form = file_form(bytes, "p.car").text("type", "application/octet-stream");
    o.upload(Method::POST, "/projects/archive", form).await
}

#[tokio::test]
async fn list_get_and_project_json_shape() {
    let h = start().await;
    let t3 = Oic::new(&h, "test3").await;
    let l = t3.json("/projects").await;
    assert_eq!(l["totalResults"], 1);
    let p = t3.json("/projects/HR_ONBOARDING").await;
    assert_eq!(p["id"], "HR_ONBOARDING");
    assert_eq!(p["type"], "DEVELOPED");
    assert_eq!(p["state"]["status"], "DRAFT");
    assert_eq!(
        p["state"]["assets"]["labelsRs"]["items"][0]["code"],
        "HR-ONB-REL1"
    );
    assert!(
        p["state"]["created"]["date"]
            .as_str()
            .is_some_and(|d| d.ends_with("+0000"))
    );
    t3.get_error("/projects/NOPE", NOT_FOUND).await;
    let ints = t3.json("/projects/HR_ONBOARDING/integrations").await;
    assert_eq!(ints["totalResults"], 3);
    assert_eq!(ints["items"][0]["projectCode"], "HR_ONBOARDING");
    let c = t3.json("/projects/HR_ONBOARDING/connections/HR_REST").await;
    assert_eq!(c["status"], "CONFIGURED");
    // Global list does not include project integrations.
    let g = t3
        .json("/integrations?q=%7Bcode%3A%27ONB_WELCOME_MAIL%27%7D")
        .await;
    assert_eq!(g["totalResults"], 0);
    // Gen 2 has no projects.
    let dev = Oic::new(&h, "dev").await;
    dev.get_error("/projects", NOT_FOUND).await;
}

#[tokio::test]
async fn car_export_import_roundtrip_with_label() {
    let h = start().await;
    let t3 = Oic::new(&h, "test3").await;
    let prod = Oic::new(&h, "prod").await;
    let r = export_car(&t3, "HR_ONBOARDING", Some("HR-ONB-REL1")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    let car = r.bytes().await.expect("bytes").to_vec();
    let e = zip_entries(&car);
    assert!(e.contains_key("project/project.yaml"));
    assert!(e.contains_key("project/oic_project.properties"));
    assert!(e.contains_key("project/labels/HR-ONB-REL1.json"));
    assert!(e.contains_key("project/connections/HR_REST.xml"));
    assert!(
        e.keys()
            .any(|k| k.starts_with("project/integrations/ONB_WELCOME_MAIL_01.00.0000/"))
    );
    assert!(
        !e.keys()
            .any(|k| k.starts_with("project/integrations/ONB_WELCOME_MAIL_01.01.0000/")),
        "label selects versions"
    );
    let yaml = String::from_utf8(e["project/project.yaml"].clone()).expect("utf8");
    assert!(yaml.contains("code: \"HR_ONBOARDING\""));
    // Whole project without label.
    let all = zip_entries(
        &export_car(&t3, "HR_ONBOARDING", None)
            .await
            .bytes()
            .await
            .expect("bytes"),
    );
    assert!(
        all.keys()
            .any(|k| k.starts_with("project/integrations/ONB_WELCOME_MAIL_01.01.0000/"))
    );
    // Unknown label / project, code mismatch.
    assert_error(
        export_car(&t3, "HR_ONBOARDING", Some("NOPE")).await,
        NOT_FOUND,
    )
    .await;
    assert_error(export_car(&t3, "NOPE", None).await, NOT_FOUND).await;
    let r = t3
        .call_json(
            Method::POST,
            "/projects/HR_ONBOARDING/archive",
            &json!({"code":"OTHER"}),
        )
        .await;
    assert_error(r, BAD_REQUEST).await;
    // Import into prod: 200 + project JSON, connections are drafts, integrations INPROGRESS.
    let r = import_car(&prod, car.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let p: Value = r.json().await.expect("json");
    assert_eq!(p["code"], "HR_ONBOARDING");
    assert_eq!(
        p["state"]["assets"]["labelsRs"]["items"][0]["integrations"]
            .as_array()
            .expect("ints")
            .len(),
        2
    );
    assert_eq!(
        prod.json("/projects/HR_ONBOARDING/connections/HR_REST")
            .await["status"],
        "INPROGRESS"
    );
    assert_eq!(
        prod.json("/projects/HR_ONBOARDING/integrations/ONB_CREATE_ACCOUNT%7C01.00.0000")
            .await["status"],
        "INPROGRESS"
    );
    // Again → 409.
    assert_error(import_car(&prod, car.clone()).await, CONFLICT).await;
    // Configure + test connections, then activate the deployment's integrations in the project.
    for code in ["HR_REST", "ORACLE_HCM"] {
        let body = json!({"connectionProperties":[{"propertyName":"connectionUrl","propertyValue":"https://hr.prod.example.com"}],
            "securityPolicy":"BASIC_AUTH","securityProperties":[{"propertyName":"username","propertyValue":"u"},{"propertyName":"password","propertyValue":"p"}]});
        assert_eq!(
            prod.patch(
                &format!("/projects/HR_ONBOARDING/connections/{code}"),
                &body.to_string()
            )
            .await
            .status(),
            StatusCode::OK
        );
        let t: Value = prod
            .call(
                Method::POST,
                &format!("/projects/HR_ONBOARDING/connections/{code}/test"),
            )
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(t["status"], "SUCCESS");
    }
    let r = prod
        .patch(
            "/projects/HR_ONBOARDING/integrations/ONB_CREATE_ACCOUNT%7C01.00.0000",
            r#"{"status":"ACTIVATED"}"#,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Delete while active → 412; deactivate, then delete → 200.
    assert_error(
        prod.call(Method::DELETE, "/projects/HR_ONBOARDING").await,
        PRECONDITION_FAILED,
    )
    .await;
    assert_eq!(
        prod.patch(
            "/projects/HR_ONBOARDING/integrations/ONB_CREATE_ACCOUNT|01.00.0000",
            r#"{"status":"CONFIGURED"}"#
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        prod.call(Method::DELETE, "/projects/HR_ONBOARDING")
            .await
            .status(),
        StatusCode::OK
    );
    prod.get_error("/projects/HR_ONBOARDING", NOT_FOUND).await;
    // Tampered .car → 400 ICS-20099; not a zip → 400.
    let mut e = zip_entries(&car);
    e.insert(
        "project/project.yaml".into(),
        yaml.replace("HR Onboarding", "Edited").into_bytes(),
    );
    let title = assert_error(import_car(&prod, rezip(&e)).await, BAD_REQUEST).await;
    assert!(title.contains("ICS-20099"));
    assert_error(import_car(&prod, b"nope".to_vec()).await, BAD_REQUEST).await;
}

#[tokio::test]
async fn create_deployments_and_iar_into_project() {
    let h = start().await;
    let prod = Oic::new(&h, "prod").await;
    let dev = Oic::new(&h, "dev").await;
    let r = prod
        .call_json(
            Method::POST,
            "/projects",
            &json!({"name":"Finance Flows","code":"FIN_FLOWS"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = prod
        .call_json(
            Method::POST,
            "/projects",
            &json!({"name":"Finance Flows","code":"FIN_FLOWS"}),
        )
        .await;
    assert_error(r, CONFLICT).await;
    // Import an IAR into the project.
    let iar = dev.export("FIN_INVOICE_IMPORT|01.00.0000").await;
    let form = file_form(iar.clone(), "x.iar");
    let r = prod
        .upload(
            Method::POST,
            "/projects/FIN_FLOWS/integrations/archive",
            form,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let form = file_form(iar, "x.iar");
    let r = prod
        .upload(
            Method::POST,
            "/projects/FIN_FLOWS/integrations/archive",
            form,
        )
        .await;
    assert_error(r, CONFLICT).await;
    // Deployments.
    let d = json!({"name":"REL1","code":"REL1","description":"r1","integrations":[{"code":"FIN_INVOICE_IMPORT","version":"01.00.0000"}]});
    let r = prod
        .call_json(Method::POST, "/projects/FIN_FLOWS/deployments", &d)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = prod
        .call_json(Method::POST, "/projects/FIN_FLOWS/deployments", &d)
        .await;
    assert_error(r, CONFLICT).await;
    let bad = json!({"code":"REL2","integrations":[{"code":"NOPE","version":"01.00.0000"}]});
    let r = prod
        .call_json(Method::POST, "/projects/FIN_FLOWS/deployments", &bad)
        .await;
    assert_error(r, BAD_REQUEST).await;
    assert_eq!(
        prod.json("/projects/FIN_FLOWS/deployments").await["items"]
            .as_array()
            .expect("items")
            .len(),
        1
    );
    assert_eq!(
        prod.json("/projects/FIN_FLOWS/deployments/REL1").await["integrations"][0]["code"],
        "FIN_INVOICE_IMPORT"
    );
    let r = prod
        .patch(
            "/projects/FIN_FLOWS/deployments/REL1",
            r#"{"description":"changed"}"#,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        prod.json("/projects/FIN_FLOWS/deployments/REL1").await["description"],
        "changed"
    );
    assert_eq!(
        prod.call(Method::DELETE, "/projects/FIN_FLOWS/deployments/REL1")
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    prod.get_error("/projects/FIN_FLOWS/deployments/REL1", NOT_FOUND)
        .await;
}

#[tokio::test]
async fn acl_get_put_with_id_not_found() {
    let h = start().await;
    let t3 = Oic::new(&h, "test3").await;
    let jane = h.user_id("jane.doe@example.com").expect("seeded user");
    let acl = json!({
        "administrators": {"allowAll": false, "allowed": [{"id": jane, "displayName": "Jane Doe", "type": "user"}]},
        "editors": {"allowAll": false, "allowed": [{"id": "deadbeef", "displayName": "Gone Group", "type": "group"}]},
        "viewers": {"allowAll": true, "allowed": []},
        "monitors": {"allowAll": true, "allowed": []}
    });
    let r = t3
        .call_json(Method::PUT, "/projects/HR_ONBOARDING/acl", &acl)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let got = t3.json("/projects/HR_ONBOARDING/acl").await;
    assert_eq!(got["administrators"]["allowed"][0]["idNotFound"], false);
    assert_eq!(got["editors"]["allowed"][0]["idNotFound"], true);
    assert_eq!(got["viewers"]["allowAll"], true);
    assert!(got["createdBy"].is_string() && got["updatedDate"].is_string());
    let r = t3
        .call_json(
            Method::PUT,
            "/projects/HR_ONBOARDING/acl",
            &json!({"editors": {"allowAll": "yes"}}),
        )
        .await;
    assert_error(r, BAD_REQUEST).await;
    let r = t3.call_json(Method::PUT, "/projects/NOPE/acl", &acl).await;
    assert_error(r, NOT_FOUND).await;
}
