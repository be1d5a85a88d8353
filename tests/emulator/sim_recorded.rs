//! The emulator answers as recorded OIC 3 does (issue 12; docs/oic-fidelity.md): trailing `/`, the recorded
//! key sets of integrations and connections, schedules, async deactivation, instance archive jobs, projects and
//! deployments, lookups and the HTTP details. Over real HTTP on loopback.

use crate::support::sim as common;

use std::collections::BTreeSet;
use std::io::Read as _;
use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect::<BTreeSet<_>>()
}

fn set(ks: &[&str]) -> BTreeSet<String> {
    ks.iter().map(|s| s.to_string()).collect()
}

/// The key set of a recorded OIC 3 integration list item (without the keys that only some items have).
const INTEGRATION_KEYS: &[&str] = &[
    "code",
    "compatible",
    "created",
    "createdBy",
    "endPoints",
    "id",
    "isCloneAllowed",
    "isViewAllowed",
    "keywords",
    "lastUpdated",
    "lastUpdatedBy",
    "links",
    "lockedFlag",
    "name",
    "pattern",
    "patternDescription",
    "payloadTracingEnabledFlag",
    "percentageComplete",
    "projectType",
    "recordEnabledFlag",
    "scheduleApplicableFlag",
    "scheduleDefinedFlag",
    "scope",
    "smartTags",
    "status",
    "style",
    "styleDescription",
    "tempCopyExists",
    "totalEndPoints",
    "tracingEnabledFlag",
    "trackingVariables",
    "version",
];

#[tokio::test]
async fn a_trailing_slash_is_accepted_on_every_route() {
    let h = start().await;
    for name in ["dev", "test3"] {
        let o = Oic::new(&h, name).await;
        for path in [
            "/integrations/",
            "/integrations/HR_EMPLOYEE_SYNC|01.00.0000/",
            "/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000/",
            "/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000/activationStatus/",
            "/connections/HR_REST/",
            "/lookups/",
            "/monitoring/integrations/",
            "/integrations/HR_PAYROLL_EXPORT%7C01.00.0000/schedule/",
        ] {
            assert_eq!(o.get(path).await.status(), StatusCode::OK, "{name} {path}");
        }
        let r = o
            .get("/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000/archive/")
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{name} export with /");
        // Unknown paths stay 404 with or without the slash.
        o.get_error("/nothing/", NOT_FOUND).await;
    }
    let t3 = Oic::new(&h, "test3").await;
    assert_eq!(t3.get("/projects/").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn integrations_have_the_recorded_keys_links_and_envelope() {
    let h = start().await;
    let t3 = Oic::new(&h, "test3").await;
    let ii = t3.info.integration_instance.clone().expect("gen3");
    let list = t3.json("/integrations").await;
    // Envelope as recorded (no offset).
    assert_eq!(
        keys(&list),
        set(&["hasMore", "items", "limit", "links", "totalResults"])
    );
    let rels: Vec<&str> = list["links"]
        .as_array()
        .expect("links")
        .iter()
        .map(|l| l["rel"].as_str().expect("rel"))
        .collect();
    assert_eq!(rels, ["self", "canonical"]);
    for item in list["items"].as_array().expect("items") {
        let k = keys(item);
        for want in INTEGRATION_KEYS {
            assert!(k.contains(*want), "{} lacks {want}", item["id"]);
        }
        let optional = set(&[
            "description",
            "endPointURI",
            "lockedBy",
            "lockedDate",
            "packageName",
        ]);
        for extra in k.difference(&set(INTEGRATION_KEYS)) {
            assert!(optional.contains(extra), "unrecorded key {extra}");
        }
        // lockedBy only when locked.
        assert_eq!(item.get("lockedBy").is_some(), item["lockedFlag"] == true);
        // Recorded enumerations.
        assert_eq!(item["style"], "FREEFORM");
        assert_eq!(item["styleDescription"], "Orchestration");
        assert_eq!(item["scope"], "Private");
        assert_eq!(item["pattern"], item["patternDescription"]);
        assert!(
            ["Orchestration", "Scheduled"].contains(&item["pattern"].as_str().expect("pattern"))
        );
        assert_eq!(item["trackingVariables"].as_array().expect("tv").len(), 3);
        assert_eq!(item["trackingVariables"][0]["primary"], true);
        for ep in item["endPoints"].as_array().expect("endPoints") {
            assert_eq!(
                keys(&ep["connection"]),
                set(&[
                    "agentRequired",
                    "agentSupported",
                    "id",
                    "links",
                    "privateEndpoint",
                    "privateEndpointSupported",
                    "testStatus"
                ])
            );
        }
        // Links carry integrationInstance on OIC 3 ...
        let href = item["links"][0]["href"].as_str().expect("href");
        assert!(
            href.ends_with(&format!("?integrationInstance={ii}")),
            "{href}"
        );
    }
    // ... and work when followed.
    let href = list["items"][0]["links"][0]["href"]
        .as_str()
        .expect("href")
        .to_string();
    let r = t3
        .http
        .get(&href)
        .bearer_auth(t3.token.as_deref().expect("token"))
        .send()
        .await
        .expect("follow");
    assert_eq!(r.status(), StatusCode::OK, "{href}");
    let followed: Value = r.json().await.expect("json");
    assert_eq!(followed["id"], list["items"][0]["id"]);
    // endPointURI: REST trigger → the flow metadata URL; scheduled → run-now URL; only there.
    let rest = t3.json("/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000").await;
    assert!(
        rest["endPointURI"]
            .as_str()
            .expect("uri")
            .ends_with("/ic/api/integration/v1/flows/rest/HR_EMPLOYEE_SYNC/1.0/metadata")
    );
    let sched = t3
        .json("/integrations/HR_PAYROLL_EXPORT%7C01.00.0000")
        .await;
    assert_eq!(sched["pattern"], "Scheduled");
    assert_eq!(sched["scheduleApplicableFlag"], true);
    assert!(
        sched["endPointURI"]
            .as_str()
            .expect("uri")
            .ends_with(&format!(
                "/integrations/HR_PAYROLL_EXPORT%7C01.00.0000/schedule/jobs?integrationInstance={ii}"
            ))
    );
    assert_eq!(
        sched["trackingVariables"][0]["xpath"],
        "/schedule/startTime"
    );
    // GET adds activationStatus and dependencies.
    assert_eq!(rest["activationStatus"], rest["status"]);
    let dep = &rest["dependencies"]["connections"][0];
    for k in ["id", "name", "type", "usage"] {
        assert!(dep.get(k).is_some(), "dependency lacks {k}: {dep}");
    }
    // A locked one has lockedBy and lockedDate.
    let dev = Oic::new(&h, "dev").await;
    let locked = dev
        .json("/integrations/FIN_SUPPLIER_SYNC%7C01.00.0000")
        .await;
    assert_eq!(locked["lockedFlag"], true);
    assert!(locked["lockedBy"].is_string() && locked["lockedDate"].is_string());
    // Gen2 links are the instance host without a selector.
    let d = dev.json("/integrations?limit=1").await;
    assert!(
        !d["items"][0]["links"][0]["href"]
            .as_str()
            .expect("href")
            .contains("integrationInstance")
    );
}

#[tokio::test]
async fn connections_mask_passwords_and_keep_credentials_written_back() {
    let h = start().await;
    let t3 = Oic::new(&h, "test3").await;
    let c = t3.json("/connections/HR_REST").await;
    for k in [
        "adapterType",
        "agentRequired",
        "agentSupported",
        "connectionProperties",
        "hasOverride",
        "lockedFlag",
        "metadataDownloadState",
        "privateEndpoint",
        "refreshedStatus",
        "securityPolicy",
        "securityPolicyInfo",
        "securityProperties",
        "testStatus",
        "usage",
        "usageActive",
    ] {
        assert!(c.get(k).is_some(), "connection lacks {k}");
    }
    assert!(c.get("lockedBy").is_none());
    assert_eq!(c["testStatus"], false);
    assert_eq!(c["adapterType"]["links"], json!([]));
    assert!(
        c["connectionProperties"][0]["propertyValue"]
            .as_str()
            .expect("value")
            .starts_with("https://")
    );
    let sec = c["securityProperties"].as_array().expect("sec");
    let pw = sec
        .iter()
        .find(|p| p["propertyType"] == "PASSWORD")
        .expect("password");
    assert_eq!(pw["propertyValue"], "*****");
    let user = sec
        .iter()
        .find(|p| p["propertyName"] == "username")
        .expect("username");
    assert!(user["propertyValue"].as_str().is_some_and(|v| v != "*****"));
    let info = c["securityPolicyInfo"].as_array().expect("info");
    assert!(
        info.iter()
            .any(|p| p["securityPolicy"] == c["securityPolicy"])
    );
    assert!(
        info.iter()
            .flat_map(|p| p["securityProperties"].as_array().expect("props"))
            .all(|p| p.get("propertyValue").is_none())
    );
    // The GET body written back unchanged keeps the stored credentials: the test still succeeds.
    let r = t3.patch("/connections/HR_REST", &c.to_string()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    let back: Value = r.json().await.expect("json");
    assert_eq!(back["securityPolicyInfo"], json!([]));
    let test: Value = t3
        .call(Method::POST, "/connections/HR_REST/test")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(test["status"], "SUCCESS", "{test}");
    // A new value replaces it (a wrong password then fails the test).
    let r = t3
        .patch(
            "/connections/HR_REST",
            r#"{"securityProperties":[{"propertyName":"password","propertyType":"PASSWORD","propertyValue":"invalid"}]}"#,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let test: Value = t3
        .call(Method::POST, "/connections/HR_REST/test")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(test["status"], "FAILED", "{test}");
}

/// The `activationStatus` at `path` once it is no longer `from`. The clock was advanced past the
/// delay: the emulator's background task ends it as soon as it runs (no time passes here; the
/// loop only yields to that task, bounded).
async fn wait_status(o: &Oic, path: &str, from: &str) -> String {
    for _ in 0..1000 {
        let s = o.json(path).await["activationStatus"]
            .as_str()
            .expect("status")
            .to_string();
        if s != from {
            return s;
        }
        tokio::task::yield_now().await;
    }
    panic!("{path} still {from}");
}

async fn runs_of(o: &Oic, code: &str) -> Vec<Value> {
    let q = format!("/monitoring/instances?limit=1000&q=%7Bcode%3A%27{code}%27%7D");
    o.json(&q).await["items"].as_array().expect("items").clone()
}

#[tokio::test]
async fn schedules_answer_as_recorded_and_run_only_while_started() {
    let h = start().await;
    let t3 = Oic::new(&h, "test3").await;
    let ii = t3.info.integration_instance.clone().expect("gen3");
    let p = "/integrations/HR_PAYROLL_EXPORT%7C01.00.0000/schedule";
    const DAY: Duration = Duration::from_secs(86_400);
    let post = |path: String, body: Option<Value>| {
        let rb = t3.req(Method::POST, &path);
        let rb = match body {
            Some(b) => rb.json(&b),
            None => rb,
        };
        rb.send()
    };
    // The seeded schedule runs.
    let s = t3.json(p).await;
    assert_eq!(s["state"], "ACTIVE");
    assert!(s["icalExpression"].is_string());
    // Create while one exists → 409 as recorded.
    let r = post(
        p.to_string(),
        Some(json!({"icalExpression":"FREQ=DAILY;BYHOUR=12,14;BYMINUTE=20;","name":"S","startDate":null,"endDate":null,"scheduleTZ":"Europe/Berlin"})),
    )
    .await
    .expect("send");
    let title = assert_error(r, CONFLICT).await;
    assert_eq!(title, "Schedule already exists.");
    // Start while started → 412 naming the states.
    let r = post(format!("{p}/start?async=true"), Some(json!({})))
        .await
        .expect("send");
    let title = assert_error(r, PRECONDITION_FAILED).await;
    assert_eq!(
        title,
        "Schedule is in ACTIVE state. It can be started only when in CANCELLED state."
    );
    // Runs appear while it is started: one per period of its definition (daily) on the emulator's
    // clock, which the test moves forward (the wall time the test takes is far below a day).
    let before = runs_of(&t3, "HR_PAYROLL_EXPORT").await.len();
    h.advance_clock(DAY * 2);
    let n = runs_of(&t3, "HR_PAYROLL_EXPORT").await.len();
    assert_eq!(n, before + 2, "a started daily schedule runs once a day");
    // Stop (async): 202, Location, recorded body.
    let r = post(format!("{p}/stop?async=true"), Some(json!({})))
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(r.headers()["content-type"], "application/json");
    let loc = r.headers()["location"].to_str().expect("loc").to_string();
    assert!(
        loc.ends_with(&format!("{p}%3FintegrationInstance%3D{ii}")),
        "{loc}"
    );
    let body: Value = r.json().await.expect("json");
    assert_eq!(keys(&body), set(&["links"]));
    let rels: Vec<&str> = body["links"]
        .as_array()
        .expect("links")
        .iter()
        .map(|l| l["rel"].as_str().expect("rel"))
        .collect();
    assert_eq!(
        rels,
        [
            "self",
            "canonical",
            "Schedule",
            "Schedule Instances",
            "Start Schedule",
            "Pause Schedule",
            "Resume Schedule"
        ]
    );
    // No runs while stopped.
    let stopped = runs_of(&t3, "HR_PAYROLL_EXPORT").await.len();
    assert_eq!(stopped, n, "none since");
    h.advance_clock(DAY * 3);
    assert_eq!(runs_of(&t3, "HR_PAYROLL_EXPORT").await.len(), stopped);
    let r = post(format!("{p}/stop?async=true"), Some(json!({})))
        .await
        .expect("send");
    let title = assert_error(r, PRECONDITION_FAILED).await;
    assert_eq!(
        title,
        "Schedule is in CANCELLED state. It can be stopped only when in ACTIVE or HOLD state."
    );
    // Run now: 204, Location of the monitoring instance, which works when followed.
    let r = post(
        format!("{p}/jobs"),
        Some(json!({"runAsSchedule":false,"parameters":[{"name":"schedule_parameter_1","value":"124"}]})),
    )
    .await
    .expect("send");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    let id = r.headers()["x-oracle-ics-instance-id"]
        .to_str()
        .expect("id")
        .to_string();
    assert_eq!(id.len(), 22);
    let loc = r.headers()["location"].to_str().expect("loc").to_string();
    assert!(
        loc.contains(&format!("/monitoring/instances/{id}")),
        "{loc}"
    );
    assert!(r.bytes().await.expect("body").is_empty());
    let inst: Value = t3
        .http
        .get(&loc)
        .bearer_auth(t3.token.as_deref().expect("token"))
        .send()
        .await
        .expect("follow")
        .json()
        .await
        .expect("json");
    assert_eq!(inst["id"], id.as_str());
    let after = runs_of(&t3, "HR_PAYROLL_EXPORT").await;
    assert_eq!(after.len(), stopped + 1);
    assert_eq!(after[0]["id"], id.as_str(), "newest first");
    // Delete: 200 with an empty body; again → 412 as recorded.
    let r = t3.call(Method::DELETE, p).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert!(r.bytes().await.expect("body").is_empty());
    let r = t3.call(Method::DELETE, p).await;
    let title = assert_error(r, PRECONDITION_FAILED).await;
    assert_eq!(title, "Schedule is not defined for this integration.");
    assert_eq!(
        t3.json("/integrations/HR_PAYROLL_EXPORT%7C01.00.0000")
            .await["scheduleDefinedFlag"],
        false
    );
    // Create with a frequency: 200, plain application/json, recorded keys.
    let r = post(
        p.to_string(),
        Some(json!({"frequency":{"frequencyType":"DAILY","interval":1},"name":"Schedule2X","startDate":"2/14/2025|0:0:0","endDate":null,"scheduleTZ":"Europe/Berlin","scheduleTZDisplayName":"(UTC+01:00) Berlin - Central European Time"})),
    )
    .await
    .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    let created: Value = r.json().await.expect("json");
    assert_eq!(
        keys(&created),
        set(&[
            "frequency",
            "links",
            "lockedFlag",
            "name",
            "scheduleTZ",
            "scheduleTZDisplayName",
            "startDate",
            "updated"
        ])
    );
    assert_eq!(created["frequency"]["frequencyType"], "DAILY");
    // New schedules are stopped; replace it with an iCal definition.
    assert_eq!(t3.json(p).await["state"], "CANCELLED");
    let r = t3
        .call_json(Method::PUT, p, &json!({"icalExpression":"FREQ=MONTHLY;BYDAY=MO,TUE;BYHOUR=12,14;BYMINUTE=20;","name":"Schedule2X","scheduleTZ":"UTC"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let g = t3.json(p).await;
    assert_eq!(
        g["icalExpression"],
        "FREQ=MONTHLY;BYDAY=MO,TUE;BYHOUR=12,14;BYMINUTE=20;"
    );
    assert!(g.get("frequency").is_none());
    // Start (async): 202, recorded body with empty id/instanceId; pause → HOLD; resume → ACTIVE.
    let r = post(
        format!("{p}/start?async=true"),
        Some(json!({"parameters":[]})),
    )
    .await
    .expect("send");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(
        r.headers()["content-type"],
        "application/json;charset=utf-8"
    );
    assert!(r.headers().contains_key("location"));
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["id"], "");
    assert_eq!(body["instanceId"], "");
    assert_eq!(body["links"][2]["mediaType"], "GET");
    assert_eq!(t3.json(p).await["state"], "ACTIVE");
    assert_eq!(
        post(format!("{p}/pause"), None)
            .await
            .expect("send")
            .status(),
        StatusCode::OK
    );
    assert_eq!(t3.json(p).await["state"], "HOLD");
    assert_eq!(
        post(format!("{p}/resume"), None)
            .await
            .expect("send")
            .status(),
        StatusCode::OK
    );
    assert_eq!(t3.json(p).await["state"], "ACTIVE");
    // Not a scheduled integration → 412; unknown → 404.
    let r = t3
        .get("/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000/schedule")
        .await;
    assert_error(r, PRECONDITION_FAILED).await;
    let r = t3.get("/integrations/NOPE%7C01.00.0000/schedule").await;
    assert_error(r, NOT_FOUND).await;
    // Deactivation stops it; start then needs an active integration.
    let r = t3
        .patch(
            "/integrations/HR_PAYROLL_EXPORT%7C01.00.0000",
            r#"{"status":"CONFIGURED"}"#,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(t3.json(p).await["state"], "CANCELLED");
    let r = post(format!("{p}/start"), None).await.expect("send");
    assert_error(r, PRECONDITION_FAILED).await;
}

#[tokio::test]
async fn the_schedule_definition_travels_in_the_archive_and_arrives_stopped() {
    let h = start().await;
    let t3 = Oic::new(&h, "test3").await;
    let prod = Oic::new(&h, "prod").await;
    let iar = t3.export("HR_PAYROLL_EXPORT|01.00.0000").await;
    let e = zip_entries(&iar);
    let xml = String::from_utf8(e["icspackage/schedule/schedule.xml"].clone()).expect("utf8");
    assert!(xml.contains("<expression>FREQ=DAILY"), "{xml}");
    assert_eq!(
        prod.import(Method::POST, iar).await.status(),
        StatusCode::NO_CONTENT
    );
    let p = "/integrations/HR_PAYROLL_EXPORT%7C01.00.0000/schedule";
    let s = prod.json(p).await;
    assert_eq!(s["state"], "CANCELLED");
    assert!(
        s["icalExpression"]
            .as_str()
            .is_some_and(|e| e.starts_with("FREQ=DAILY"))
    );
}

#[tokio::test]
async fn async_deactivation_passes_through_deactivation_inprogress() {
    let h = start().await;
    // Long on the wall clock: only the test's advances end it.
    h.set_async_activation_delay(Duration::from_secs(60));
    let t3 = Oic::new(&h, "test3").await;
    let id = "/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000";
    let iar = t3.export("HR_EMPLOYEE_SYNC|01.00.0000").await;
    let r = t3
        .patch(
            &format!("{id}?enableAsyncActivationMode=true"),
            r#"{"status":"CONFIGURED"}"#,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"],
        "application/json;charset=utf-8"
    );
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        keys(&body),
        set(&[
            "apiDeploymentInprogress",
            "compatible",
            "links",
            "lockedFlag",
            "scheduleApplicableFlag",
            "scheduleDefinedFlag",
            "status",
            "tempCopyExists",
            "totalEndPoints"
        ])
    );
    assert_eq!(body["status"], "DEACTIVATION_INPROGRESS");
    assert_eq!(
        t3.json(&format!("{id}/activationStatus")).await["activationStatus"],
        "DEACTIVATION_INPROGRESS"
    );
    // A replace, a second deactivation or an activation meanwhile → 412.
    let title = assert_error(
        t3.import(Method::PUT, iar.clone()).await,
        PRECONDITION_FAILED,
    )
    .await;
    assert!(title.contains("HR_EMPLOYEE_SYNC"), "{title}");
    assert_error(
        t3.patch(id, r#"{"status":"CONFIGURED"}"#).await,
        PRECONDITION_FAILED,
    )
    .await;
    assert_error(
        t3.patch(id, r#"{"status":"ACTIVATED"}"#).await,
        PRECONDITION_FAILED,
    )
    .await;
    // Still in progress until the delay has passed on the emulator's clock, then CONFIGURED.
    h.advance_clock(Duration::from_secs(30));
    assert_eq!(
        t3.json(&format!("{id}/activationStatus")).await["activationStatus"],
        "DEACTIVATION_INPROGRESS"
    );
    h.advance_clock(Duration::from_secs(30));
    let status = wait_status(
        &t3,
        &format!("{id}/activationStatus"),
        "DEACTIVATION_INPROGRESS",
    )
    .await;
    assert_eq!(status, "CONFIGURED");
    assert_eq!(
        t3.import(Method::PUT, iar).await.status(),
        StatusCode::OK,
        "replace once it is configured"
    );
}

fn storage() -> Value {
    json!({"storageUrl": "https://objectstorage.eu-frankfurt-1.oraclecloud.com/p/PAR/n/ns/b/bucket/o/",
           "storageUser": "oci-user", "storagePassword": "auth-token"})
}

#[tokio::test]
async fn instance_archive_jobs_answer_as_recorded() {
    let h = start().await;
    let t3 = Oic::new(&h, "test3").await;
    let r = t3.common(Method::POST,
        "/exportServiceInstanceArchive",
        Some(&json!({"jobName":"export_x_metadata_1","exportSecurityArtifacts":true,"description":"Export x","storageInfo":storage()})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(r.headers()["content-type"], "application/json");
    let jobid = r.headers()["jobid"].to_str().expect("jobid").to_string();
    let raw = r.text().await.expect("text");
    let v: Value = serde_json::from_str(&raw).expect("json");
    assert_eq!(keys(&v), set(&["jobId", "location", "status"]));
    assert_eq!(v["jobId"], jobid.as_str());
    assert_eq!(v["status"], "IN_PROGRESS");
    assert_eq!(v["location"], storage()["storageUrl"]);
    assert_eq!(jobid.len(), 36, "a UUID");
    // Status: recorded key order and time format.
    let uuid_re = regex::Regex::new(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC$").expect("re");
    // The job takes JOB_DURATION on the emulator's clock: moved past it, it ends as soon as its
    // task runs (the loop yields to it, bounded; no time passes).
    h.advance_clock(ferry::sim::jobs::JOB_DURATION);
    let mut st = Value::Null;
    for _ in 0..1000 {
        let r = t3
            .common(
                Method::GET,
                &format!("/exportServiceInstanceArchive/{jobid}"),
                None,
            )
            .await;
        assert_eq!(r.headers()["content-type"], "application/json");
        let raw = r.text().await.expect("text");
        assert!(
            raw.starts_with("{\"jobType\":\"EXPORT\",\"description\":\"Export x\",\"startTime\""),
            "{raw}"
        );
        st = serde_json::from_str(&raw).expect("json");
        assert!(
            uuid_re.is_match(st["startTime"].as_str().expect("t")),
            "{st}"
        );
        if st["overallStatus"] != "IN_PROGRESS" {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(st["overallStatus"], "COMPLETED");
    assert_eq!(st["archiveName"], "export_x_metadata_1");
    assert_eq!(st["components"][0]["name"], "integration");
    assert_eq!(st["components"][0]["percentage"], 100);
    assert!(st["components"][0]["resourceCount"].is_string());
    assert_eq!(st["includeSecurityArtifacts"], true);
    assert_eq!(st["startSchedules"], false);
    assert_eq!(st["importScheduleParams"], false);
    // Import: 202 with jobId and status only.
    let prod = Oic::new(&h, "prod").await;
    let r = prod.common(Method::POST,
        "/importServiceInstanceArchive",
        Some(&json!({"archiveFile":"export_x_metadata_1","importActivateMode":"importOnly","importSecurityArtifacts":false,"jobName":"Import of x","storageInfo":storage()})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let ijob = r.headers()["jobid"].to_str().expect("jobid").to_string();
    let v: Value = r.json().await.expect("json");
    assert_eq!(keys(&v), set(&["jobId", "status"]));
    h.advance_clock(ferry::sim::jobs::JOB_DURATION);
    let mut st = Value::Null;
    for _ in 0..1000 {
        st = prod
            .common(
                Method::GET,
                &format!("/importServiceInstanceArchive/{ijob}"),
                None,
            )
            .await
            .json()
            .await
            .expect("json");
        if st["overallStatus"] != "IN_PROGRESS" {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(st["overallStatus"], "COMPLETED");
    assert_eq!(st["jobType"], "IMPORT");
    assert!(st.get("archiveName").is_none(), "no archiveName on imports");
    // The jobs list: its own envelope and time format.
    let r = t3
        .common(Method::GET, "/serviceInstance/jobs?offset=0&limit=20", None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let raw = r.text().await.expect("text");
    assert!(
        raw.starts_with("{\"hasMore\":false,\"totalResults\":1,\"items\":[{\"jobType\":\"EXPORT\""),
        "{raw}"
    );
    let l: Value = serde_json::from_str(&raw).expect("json");
    let t = l["items"][0]["startTime"].as_str().expect("t");
    assert!(
        regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")
            .expect("re")
            .is_match(t),
        "{t}"
    );
}

#[tokio::test]
async fn projects_and_deployments_answer_as_recorded() {
    let h = start().await;
    let t3 = Oic::new(&h, "test3").await;
    let p = t3.json("/projects/HR_ONBOARDING").await;
    for k in ["status", "locked", "lockStatus"] {
        assert!(p["state"].get(k).is_some(), "state lacks {k}");
    }
    assert!(p.get("origin").is_some() && p.get("keyword").is_some());
    let list = t3.json("/projects/HR_ONBOARDING/deployments").await;
    assert_eq!(keys(&list), set(&["items"]));
    let d = &list["items"][0];
    for k in ["code", "integrations", "lastUpdated", "name"] {
        assert!(d.get(k).is_some(), "deployment lacks {k}");
    }
    assert_eq!(
        keys(&d["integrations"][0]),
        set(&["code", "name", "status", "type", "version"])
    );
    let r = t3
        .call_json(
            Method::POST,
            "/projects/HR_ONBOARDING/deployments",
            &json!({"name":"Patch-100000002","code":"100000002","description":"Patch 100000002"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let c: Value = r.json().await.expect("json");
    assert_eq!(
        keys(&c),
        set(&["code", "description", "lastUpdated", "name"])
    );
    let r = t3
        .patch(
            "/projects/HR_ONBOARDING/deployments/100000002",
            r#"{"description":"Patch 2"}"#,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    let r = t3
        .call(
            Method::DELETE,
            "/projects/HR_ONBOARDING/deployments/100000002",
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert!(r.bytes().await.expect("body").is_empty());
}

#[tokio::test]
async fn http_details_as_recorded() {
    let h = start().await;
    let t3 = Oic::new(&h, "test3").await;
    let r = t3.get("/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000").await;
    let hd = r.headers();
    assert_eq!(hd["content-type"], "application/json;charset=utf-8");
    let rid = hd["opc-request-id"].to_str().expect("rid");
    assert!(
        regex::Regex::new(r"^/[0-9A-F]{32}/[0-9A-F]{32}$")
            .expect("re")
            .is_match(rid),
        "{rid}"
    );
    assert_eq!(hd["cache-control"], "no-cache, no-store, must-revalidate");
    assert_eq!(hd["pragma"], "no-cache");
    assert_eq!(hd["expires"], "Wed, 31 Dec 1969 23:59:59 GMT");
    assert_eq!(hd["x-content-type-options"], "nosniff");
    assert_eq!(hd["oic-virtualservice"], "true");
    // Errors: application/json without charset.
    let r = t3.get("/integrations/NOPE%7C01.00.0000").await;
    assert_eq!(r.headers()["content-type"], "application/json");
    assert!(r.headers().contains_key("opc-request-id"));
    // gzip when asked.
    let r = t3
        .req(Method::GET, "/connections/HR_REST")
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .expect("send");
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let z = r.bytes().await.expect("bytes");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&z[..])
        .read_to_string(&mut text)
        .expect("gunzip");
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["id"], "HR_REST");
    // Content-Disposition filename unquoted; archives carry the files real exports carry.
    let r = t3
        .get("/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000/archive")
        .await;
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=HR_EMPLOYEE_SYNC_01.00.0000.iar"
    );
    let e = zip_entries(&r.bytes().await.expect("bytes"));
    let p = "icspackage/project/HR_EMPLOYEE_SYNC_01.00.0000/PROJECT-INF/";
    for f in [
        "project.xml",
        "layout.json",
        "layout3.json",
        "analysis.json",
        "project_messages.json",
    ] {
        assert!(e.contains_key(&format!("{p}{f}")), "{f}");
    }
    // An import answers 204 with the new integration's Location and no body.
    let prod = Oic::new(&h, "prod").await;
    let iar = t3.export("HR_EMPLOYEE_SYNC|01.00.0000").await;
    let r = prod.import(Method::POST, iar).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert!(
        r.headers()["location"]
            .to_str()
            .expect("loc")
            .contains("/integrations/HR_EMPLOYEE_SYNC%7C01.00.0000?integrationInstance=")
    );
}
