//! Emulator service-instance export/import jobs (§7).

use crate::support::sim as common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const COMMON: &str = "/ic/api/common/v1";

fn storage() -> Value {
    json!({"storageUrl": "https://swiftobjectstorage.eu-frankfurt-1.oraclecloud.com/v1/ns/bucket",
           "storageUser": "oci-user", "storagePassword": "auth-token"})
}

async fn post(o: &Oic, path: &str, body: &Value) -> reqwest::Response {
    let mut url = format!("{}{COMMON}{path}", o.info.base_url);
    if let Some(ii) = &o.info.integration_instance {
        url.push_str(&format!("?integrationInstance={ii}"));
    }
    let rb = o.http.request(Method::POST, url).json(body);
    let rb = match &o.token {
        Some(t) => rb.bearer_auth(t),
        None => rb.basic_auth(
            o.info.username.as_deref().unwrap_or(""),
            o.info.password.as_deref(),
        ),
    };
    rb.send().await.expect("send")
}

/// The job's status once it ended: the emulator's clock is moved past the job's duration, so it ends
/// as soon as its task runs (the loop only yields to it, bounded; no time passes).
async fn wait(h: &ferry::sim::SimHandle, o: &Oic, kind: &str, id: &str) -> Value {
    h.advance_clock(ferry::sim::jobs::JOB_DURATION);
    for _ in 0..1000 {
        let mut url = format!("{}{COMMON}/{kind}/{id}", o.info.base_url);
        if let Some(ii) = &o.info.integration_instance {
            url.push_str(&format!("?integrationInstance={ii}"));
        }
        let rb = o.http.get(url);
        let rb = match &o.token {
            Some(t) => rb.bearer_auth(t),
            None => rb.basic_auth(
                o.info.username.as_deref().unwrap_or(""),
                o.info.password.as_deref(),
            ),
        };
        let v: Value = rb.send().await.expect("send").json().await.expect("json");
        if v["overallStatus"] != "IN_PROGRESS" {
            return v;
        }
        tokio::task::yield_now().await;
    }
    panic!("job {id} did not finish");
}

#[tokio::test]
async fn export_then_import_activate() {
    let h = start().await;
    let dev = Oic::new(&h, "dev").await;
    let tgt = Oic::new(&h, "test3").await;
    let r = post(
        &dev,
        "/exportServiceInstanceArchive",
        &json!({"jobName":"nightly","exportSecurityArtifacts":true,"storageInfo":storage()}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let job: Value = r.json().await.expect("json");
    assert_eq!(job["status"], "IN_PROGRESS");
    // A second job while one runs → 409.
    let r = post(
        &dev,
        "/exportServiceInstanceArchive",
        &json!({"jobName":"again","storageInfo":storage()}),
    )
    .await;
    assert_error(r, 409, "Conflict", "sec10.4.10").await;
    let done = wait(
        &h,
        &dev,
        "exportServiceInstanceArchive",
        job["jobId"].as_str().expect("id"),
    )
    .await;
    assert_eq!(done["overallStatus"], "COMPLETED");
    let file = done["archiveName"].as_str().expect("file").to_string();
    // Import into another instance (gen 3) with ImportActivate.
    let r = post(
        &tgt,
        "/importServiceInstanceArchive",
        &json!({"archiveFile": file, "importActivateMode":"ImportActivate",
        "importSecurityArtifacts": true, "jobName":"restore", "storageInfo": storage()}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let job: Value = r.json().await.expect("json");
    let done = wait(
        &h,
        &tgt,
        "importServiceInstanceArchive",
        job["jobId"].as_str().expect("id"),
    )
    .await;
    assert_eq!(done["overallStatus"], "COMPLETED");
    assert_eq!(
        tgt.json("/integrations/FIN_PAYMENT_STATUS%7C01.00.0000")
            .await["status"],
        "ACTIVATED"
    );
    assert_eq!(
        tgt.json("/integrations/FIN_GL_JOURNAL%7C02.00.0000").await["status"],
        "CONFIGURED"
    );
    // Unknown archive → job FAILED; bad bodies → 400; unknown job → 404.
    let r = post(
        &tgt,
        "/importServiceInstanceArchive",
        &json!({"archiveFile":"nope.zip","storageInfo":storage()}),
    )
    .await;
    let job: Value = r.json().await.expect("json");
    let done = wait(
        &h,
        &tgt,
        "importServiceInstanceArchive",
        job["jobId"].as_str().expect("id"),
    )
    .await;
    assert_eq!(done["overallStatus"], "FAILED");
    assert_error(
        post(
            &tgt,
            "/importServiceInstanceArchive",
            &json!({"archiveFile":"x.zip"}),
        )
        .await,
        400,
        "Bad Request",
        "sec10.4.1",
    )
    .await;
    assert_error(
        post(
            &tgt,
            "/importServiceInstanceArchive",
            &json!({"archiveFile":"x.zip","importActivateMode":"Bogus","storageInfo":storage()}),
        )
        .await,
        400,
        "Bad Request",
        "sec10.4.1",
    )
    .await;
    let r = dev
        .http
        .get(format!(
            "{}{COMMON}/exportServiceInstanceArchive/NOPE",
            dev.info.base_url
        ))
        .basic_auth(
            dev.info.username.as_deref().unwrap_or(""),
            dev.info.password.as_deref(),
        )
        .send()
        .await
        .expect("send");
    let title = assert_error(r, 404, "Not Found", "sec10.4.5").await;
    assert!(title.contains("Job"), "{title}");
}
