//! Emulator lookups, libraries, packages and monitoring (§6, §8).

use crate::support::sim as common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

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
        .upload(
            Method::POST,
            "/lookups/archive",
            file_form(csv.clone(), "c.csv"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(prod.json("/lookups/COUNTRY_CODES").await["rows"], l["rows"]);
    let r = prod
        .upload(
            Method::POST,
            "/lookups/archive",
            file_form(csv.clone(), "c.csv"),
        )
        .await;
    assert_error(r, CONFLICT).await;
    let r = prod
        .upload(Method::PUT, "/lookups/archive", file_form(csv, "c.csv"))
        .await;
    // Recorded: 204 with the lookup's Location and an empty body.
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let loc = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert!(loc.contains("/lookups/"), "{loc}");
    assert!(r.bytes().await.expect("body").is_empty());
    let r = prod
        .upload(
            Method::POST,
            "/lookups/archive",
            file_form(b"garbage".to_vec(), "c.csv"),
        )
        .await;
    assert_error(r, BAD_REQUEST).await;
    // JSON create, delete, in-use delete.
    let body = json!({"name":"STATUS_MAP","columns":["SRC","TGT"],"rows":[{"rowData":["a","b"]}]});
    let r = prod.call_json(Method::POST, "/lookups", &body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = prod.call_json(Method::POST, "/lookups", &body).await;
    assert_error(r, CONFLICT).await;
    assert_eq!(
        prod.call(Method::DELETE, "/lookups/STATUS_MAP")
            .await
            .status(),
        StatusCode::OK
    );
    assert_error(
        dev.call(Method::DELETE, "/lookups/COUNTRY_CODES").await,
        PRECONDITION_FAILED,
    )
    .await;
    dev.get_error("/lookups/NOPE", NOT_FOUND).await;
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
    let r = prod.upload(Method::POST, "/libraries/archive", form).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let form = file_form(jar.clone(), "DATE_UTILS.jar")
        .text("code", "DATE_UTILS")
        .text("version", "01.00.0000");
    let r = prod.upload(Method::POST, "/libraries/archive", form).await;
    assert_error(r, CONFLICT).await;
    let form = file_form(jar.clone(), "x.jar").text("version", "01.00.0000");
    let r = prod.upload(Method::POST, "/libraries/archive", form).await;
    assert_error(r, BAD_REQUEST).await;
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
        .upload(
            Method::POST,
            "/libraries/DATE_UTILS%7C01.00.0000/archive",
            file_form(b"function only() {}".to_vec(), "x.js"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        prod.json("/libraries/DATE_UTILS%7C01.00.0000/metadata")
            .await["functions"][0]["name"],
        "only"
    );
    assert_eq!(
        prod.call(Method::DELETE, "/libraries/DATE_UTILS%7C01.00.0000")
            .await
            .status(),
        StatusCode::OK
    );
    prod.get_error("/libraries/DATE_UTILS%7C01.00.0000", NOT_FOUND)
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
        .upload(
            Method::POST,
            "/packages/archive",
            file_form(par.clone(), "p.par"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let got = tgt.json("/packages/fin.payables").await;
    assert_eq!(got["countOfIntegrations"], 2);
    assert_eq!(
        tgt.json("/integrations/FIN_PAYMENT_STATUS%7C01.00.0000")
            .await["packageName"],
        "fin.payables"
    );
    let r = tgt
        .upload(
            Method::POST,
            "/packages/archive",
            file_form(par.clone(), "p.par"),
        )
        .await;
    assert_error(r, CONFLICT).await;
    let r = tgt
        .upload(
            Method::PUT,
            "/packages/archive",
            file_form(par.clone(), "p.par"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Replace/delete refused while a dev integration of the package is active.
    let r = dev
        .upload(Method::PUT, "/packages/archive", file_form(par, "p.par"))
        .await;
    assert_error(r, PRECONDITION_FAILED).await;
    assert_error(
        dev.call(Method::DELETE, "/packages/fin.payables").await,
        PRECONDITION_FAILED,
    )
    .await;
    assert_eq!(
        tgt.call(Method::DELETE, "/packages/fin.payables")
            .await
            .status(),
        StatusCode::OK
    );
    tgt.get_error("/integrations/FIN_PAYMENT_STATUS%7C01.00.0000", NOT_FOUND)
        .await;
    tgt.get_error("/packages/fin.payables", NOT_FOUND).await;
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
    dev.get_error("/monitoring/integrations/NOPE%7C01.00.0000", NOT_FOUND)
        .await;
    dev.get_error(
        "/monitoring/integrations?q=%7Btimewindow%3A%2799d%27%7D",
        BAD_REQUEST,
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
