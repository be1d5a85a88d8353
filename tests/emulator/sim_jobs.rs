//! Emulator service-instance export/import jobs (§7).

use crate::support::sim as common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn storage() -> Value {
    json!({"storageUrl": "https://swiftobjectstorage.eu-frankfurt-1.oraclecloud.com/v1/ns/bucket",
           "storageUser": "oci-user", "storagePassword": "auth-token"})
}

/// The job's status once it ended: the emulator's clock is moved past the job's duration, so it ends
/// as soon as its task runs (the loop only yields to it, bounded; no time passes).
async fn wait(h: &ferry::sim::SimHandle, o: &Oic, kind: &str, job: &Value) -> Value {
    let id = job["jobId"].as_str().expect("jobId");
    h.advance_clock(ferry::sim::jobs::JOB_DURATION);
    for _ in 0..1000 {
        let v: Value = o
            .common(Method::GET, &format!("/{kind}/{id}"), None)
            .await
            .json()
            .await
            .expect("json");
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
    let r = dev.common(Method::POST, "/exportServiceInstanceArchive", Some(&json!({"jobName":"nightly","exportSecurityArtifacts":true,"storageInfo":storage()})))
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let job: Value = r.json().await.expect("json");
    assert_eq!(job["status"], "IN_PROGRESS");
    // A second job while one runs → 409.
    let r = dev
        .common(
            Method::POST,
            "/exportServiceInstanceArchive",
            Some(&json!({"jobName":"again","storageInfo":storage()})),
        )
        .await;
    assert_error(r, CONFLICT).await;
    let done = wait(&h, &dev, "exportServiceInstanceArchive", &job).await;
    assert_eq!(done["overallStatus"], "COMPLETED");
    let file = done["archiveName"].as_str().expect("file").to_string();
    // Import into another instance (gen 3) with ImportActivate.
    let r = tgt
        .common(
            Method::POST,
            "/importServiceInstanceArchive",
            Some(
                &json!({"archiveFile": file, "importActivateMode":"ImportActivate",
        "importSecurityArtifacts": true, "jobName":"restore", "storageInfo": storage()}),
            ),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let job: Value = r.json().await.expect("json");
    let done = wait(&h, &tgt, "importServiceInstanceArchive", &job).await;
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
    let r = tgt
        .common(
            Method::POST,
            "/importServiceInstanceArchive",
            Some(&json!({"archiveFile":"nope.zip","storageInfo":storage()})),
        )
        .await;
    let job: Value = r.json().await.expect("json");
    let done = wait(&h, &tgt, "importServiceInstanceArchive", &job).await;
    assert_eq!(done["overallStatus"], "FAILED");
    assert_error(
        tgt.common(
            Method::POST,
            "/importServiceInstanceArchive",
            Some(&json!({"archiveFile":"x.zip"})),
        )
        .await,
        BAD_REQUEST,
    )
    .await;
    assert_error(tgt.common(Method::POST, "/importServiceInstanceArchive", Some(&json!({"archiveFile":"x.zip","importActivateMode":"Bogus","storageInfo":storage()})))
        .await, BAD_REQUEST)
    .await;
    let r = dev
        .common(Method::GET, "/exportServiceInstanceArchive/NOPE", None)
        .await;
    let title = assert_error(r, NOT_FOUND).await;
    assert!(title.contains("Job"), "{title}");
}
