//! Emulator lookups, libraries, packages and monitoring (§6, §8).

use crate::support::sim as common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn file_form(bytes: Vec<u8>, name: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
    )
}

#[tokio::test]
async fn lookups_csv_roundtrip() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    let prod = Oic::new(&h, "prod").await;
    let l = dev.json("/lookups/COUNTRY_CODES").await;
    assert_eq!(l["rowCount"], 3);
    assert_eq!(l["rows"][0]["rowData"], json!(["DE", "DEU"]));
    assert_eq!(l["usage"], 1);
    let r = dev.get("/lookups/COUNTRY_CODES/archive").await;
    assert_eq!(r.status(), StatusCode::OK);
    let csv = r.bytes().await.expect("bytes").to_vec();
    assert!(String::from_utf8_lossy(&csv).starts_with("DVM,COUNTRY_CODES,"));
    let r = prod
        .req(Method::POST, "/lookups/archive")
        .multipart(file_form(csv.clone(), "c.csv"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(prod.json("/lookups/COUNTRY_CODES").await["rows"], l["rows"]);
    let r = prod
        .req(Method::POST, "/lookups/archive")
        .multipart(file_form(csv.clone(), "c.csv"))
        .send()
        .await
        .expect("send");
    assert_error(r, 409, "Conflict", "sec10.4.10").await;
    let r = prod
        .req(Method::PUT, "/lookups/archive")
        .multipart(file_form(csv, "c.csv"))
        .send()
        .await
        .expect("send");
    // Recorded: 204 with the lookup's Location and an empty body.
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let loc = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert!(loc.contains("/lookups/"), "{loc}");
    assert!(r.bytes().await.expect("body").is_empty());
    let r = prod
        .req(Method::POST, "/lookups/archive")
        .multipart(file_form(b"garbage".to_vec(), "c.csv"))
        .send()
        .await
        .expect("send");
    assert_error(r, 400, "Bad Request", "sec10.4.1").await;
    // JSON create, delete, in-use delete.
    let body = json!({"name":"STATUS_MAP","columns":["SRC","TGT"],"rows":[{"rowData":["a","b"]}]});
    let r = prod
        .req(Method::POST, "/lookups")
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = prod
        .req(Method::POST, "/lookups")
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_error(r, 409, "Conflict", "sec10.4.10").await;
    assert_eq!(
        prod.req(Method::DELETE, "/lookups/STATUS_MAP")
            .send()
            .await
            .expect("send")
            .status(),
        StatusCode::OK
    );
    assert_error(
        dev.req(Method::DELETE, "/lookups/COUNTRY_CODES")
            .send()
            .await
            .expect("send"),
        412,
        "Precondition Failed",
        "sec10.4.13",
    )
    .await;
    assert_error(
        dev.get("/lookups/NOPE").await,
        404,
        "Not Found",
        "sec10.4.5",
    )
    .await;
}

#[tokio::test]
async fn libraries_import_export_metadata() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    let prod = Oic::new(&h, "prod").await;
    let l = dev.json("/libraries/DATE_UTILS%7C01.00.0000").await;
    assert_eq!(l["libraryType"], "API");
    let r = dev.get("/libraries/DATE_UTILS|01.00.0000/archive").await;
    assert_eq!(r.status(), StatusCode::OK);
    let jar = r.bytes().await.expect("bytes").to_vec();
    assert!(zip_entries(&jar).keys().any(|k| k.ends_with(".js")));
    let form = file_form(jar.clone(), "DATE_UTILS.jar")
        .text("name", "Date Utils")
        .text("code", "DATE_UTILS")
        .text("version", "01.00.0000")
        .text("type", "API")
        .text("description", "Date helpers");
    let r = prod
        .req(Method::POST, "/libraries/archive")
        .multipart(form)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let form = file_form(jar.clone(), "DATE_UTILS.jar")
        .text("code", "DATE_UTILS")
        .text("version", "01.00.0000");
    let r = prod
        .req(Method::POST, "/libraries/archive")
        .multipart(form)
        .send()
        .await
        .expect("send");
    assert_error(r, 409, "Conflict", "sec10.4.10").await;
    let form = file_form(jar.clone(), "x.jar").text("version", "01.00.0000");
    let r = prod
        .req(Method::POST, "/libraries/archive")
        .multipart(form)
        .send()
        .await
        .expect("send");
    assert_error(r, 400, "Bad Request", "sec10.4.1").await;
    let m = prod
        .json("/libraries/DATE_UTILS%7C01.00.0000/metadata")
        .await;
    let names: Vec<&str> = m["functions"]
        .as_array()
        .expect("fns")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(names, vec!["toIsoDate", "addDays"]);
    let r = prod
        .req(Method::POST, "/libraries/DATE_UTILS%7C01.00.0000/archive")
        .multipart(file_form(b"function only() {}".to_vec(), "x.js"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        prod.json("/libraries/DATE_UTILS%7C01.00.0000/metadata")
            .await["functions"][0]["name"],
        "only"
    );
    assert_eq!(
        prod.req(Method::DELETE, "/libraries/DATE_UTILS%7C01.00.0000")
            .send()
            .await
            .expect("send")
            .status(),
        StatusCode::OK
    );
    assert_error(
        prod.get("/libraries/DATE_UTILS%7C01.00.0000").await,
        404,
        "Not Found",
        "sec10.4.5",
    )
    .await;
}

#[tokio::test]
async fn packages_par_roundtrip() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    let tgt = Oic::new(&h, "empty2").await;
    let p = dev.json("/packages/fin.payables").await;
    assert_eq!(p["countOfIntegrations"], 2);
    let r = dev.get("/packages/fin.payables/archive").await;
    assert_eq!(r.status(), StatusCode::OK);
    let par = r.bytes().await.expect("bytes").to_vec();
    let e = zip_entries(&par);
    assert!(e.contains_key("package.json"));
    assert!(e.contains_key("FIN_INVOICE_IMPORT_01.00.0000.iar"));
    let r = tgt
        .req(Method::POST, "/packages/archive")
        .multipart(file_form(par.clone(), "p.par"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let got = tgt.json("/packages/fin.payables").await;
    assert_eq!(got["countOfIntegrations"], 2);
    assert_eq!(
        tgt.json("/integrations/FIN_PAYMENT_STATUS%7C01.00.0000")
            .await["packageName"],
        "fin.payables"
    );
    let r = tgt
        .req(Method::POST, "/packages/archive")
        .multipart(file_form(par.clone(), "p.par"))
        .send()
        .await
        .expect("send");
    assert_error(r, 409, "Conflict", "sec10.4.10").await;
    let r = tgt
        .req(Method::PUT, "/packages/archive")
        .multipart(file_form(par.clone(), "p.par"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    // Replace/delete refused while a dev integration of the package is active.
    let r = dev
        .req(Method::PUT, "/packages/archive")
        .multipart(file_form(par, "p.par"))
        .send()
        .await
        .expect("send");
    assert_error(r, 412, "Precondition Failed", "sec10.4.13").await;
    assert_error(
        dev.req(Method::DELETE, "/packages/fin.payables")
            .send()
            .await
            .expect("send"),
        412,
        "Precondition Failed",
        "sec10.4.13",
    )
    .await;
    assert_eq!(
        tgt.req(Method::DELETE, "/packages/fin.payables")
            .send()
            .await
            .expect("send")
            .status(),
        StatusCode::OK
    );
    assert_error(
        tgt.get("/integrations/FIN_PAYMENT_STATUS%7C01.00.0000")
            .await,
        404,
        "Not Found",
        "sec10.4.5",
    )
    .await;
    assert_error(
        tgt.get("/packages/fin.payables").await,
        404,
        "Not Found",
        "sec10.4.5",
    )
    .await;
}

#[tokio::test]
async fn monitoring_stats() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    let prod = Oic::new(&h, "prod").await;
    let s = dev
        .json(
            "/monitoring/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000?q=%7Btimewindow%3A%271d%27%7D",
        )
        .await;
    for k in [
        "noOfMsgsReceived",
        "noOfMsgsProcessed",
        "noOfSuccess",
        "noOfErrors",
        "noOfAborted",
        "successRate",
        "flowStatus",
    ] {
        assert!(s.get(k).is_some(), "{k}");
    }
    assert!(s["noOfMsgsReceived"].as_u64().is_some_and(|n| n > 0));
    assert_eq!(s["flowStatus"], "ACTIVATED");
    // A freshly migrated integration has no traffic and no errors.
    let iar = dev.export("HR_EMPLOYEE_SYNC|01.00.0000").await;
    assert_eq!(
        prod.import(Method::POST, iar).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        prod.patch(
            "/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000",
            r#"{"status":"ACTIVATED"}"#
        )
        .await
        .status(),
        StatusCode::OK
    );
    let s = prod
        .json("/monitoring/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000")
        .await;
    assert_eq!(s["noOfErrors"], 0);
    assert_eq!(s["flowStatus"], "ACTIVATED");
    let all = dev.json("/monitoring/integrations?limit=3").await;
    assert_eq!(all["items"].as_array().expect("items").len(), 3);
    let inst: Value = dev
        .json("/monitoring/instances?q=%7Bcode%3A%27HR_EMPLOYEE_SYNC%27%7D")
        .await;
    let items = inst["items"].as_array().expect("items");
    assert!(!items.is_empty());
    assert!(
        items
            .iter()
            .all(|i| i["integrationId"] == "HR_EMPLOYEE_SYNC")
    );
    let one = dev
        .json(&format!(
            "/monitoring/instances/{}",
            items[0]["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(one["id"], items[0]["id"]);
    assert_error(
        dev.get("/monitoring/integrations/NOPE%7C01.00.0000").await,
        404,
        "Not Found",
        "sec10.4.5",
    )
    .await;
    assert_error(
        dev.get("/monitoring/integrations?q=%7Btimewindow%3A%2799d%27%7D")
            .await,
        400,
        "Bad Request",
        "sec10.4.1",
    )
    .await;
    let errs = dev.json("/monitoring/errors").await;
    assert!(
        errs["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|e| e["status"] == "FAILED")
    );
}
