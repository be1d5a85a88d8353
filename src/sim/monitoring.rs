//! Monitoring (§8): per-integration statistics, a minimal instance list, errors.
//!
//! Numbers are deterministic: seeded integrations that are `ACTIVATED` get traffic derived from a hash of their
//! id (a few have errors); imported integrations and inactive ones have none, so a fresh migration verifies clean.

use axum::response::Response;
use chrono::Duration as ChronoDuration;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::error::{ApiError, ApiResult};
use super::extract::{Api, space};
use super::integrations::{enc, json_ok, split_id};
use super::query::{envelope, parse_q};
use super::state::{ArchiveSource, IntStatus, Integration, oic_date};

fn h(id: &str, salt: &str) -> u64 {
    let d = Sha256::digest(format!("{id}:{salt}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b)
}

/// (received, errors, aborted) of an integration.
fn traffic(i: &Integration) -> (u64, u64, u64) {
    if i.pattern == "Scheduled" {
        // Scheduled integrations run only when their schedule fires or on "run now".
        return (i.runs.len() as u64, 0, 0);
    }
    let seeded = matches!(i.archive, ArchiveSource::Generated { .. });
    if !seeded || i.status != IntStatus::Activated {
        return (0, 0, 0);
    }
    let id = i.id();
    let received = 20 + h(&id, "rx") % 500;
    let errors = if h(&id, "err").is_multiple_of(4) {
        1 + h(&id, "n") % 5
    } else {
        0
    };
    let aborted = if h(&id, "ab").is_multiple_of(10) {
        1
    } else {
        0
    };
    (received, errors, aborted)
}

/// Per-integration statistics.
pub fn stats_json(prefix: &str, i: &Integration) -> Value {
    let (rx, err, ab) = traffic(i);
    let ok = rx - err - ab;
    json!({
        "id": i.id(),
        "code": i.code,
        "version": i.version,
        "name": i.name,
        "noOfMsgsReceived": rx,
        "noOfMsgsProcessed": rx,
        "noOfSuccess": ok,
        "noOfErrors": err,
        "noOfAborted": ab,
        "successRate": if rx == 0 { 0.0 } else { (ok as f64 * 10000.0 / rx as f64).round() / 100.0 },
        "flowStatus": i.status.as_str(),
        "links": [ { "href": format!("{prefix}/monitoring/integrations/{}", enc(&i.id())), "rel": "self" } ],
    })
}

fn check_window(api: &Api) -> ApiResult<()> {
    let conds = parse_q(
        api.params.get("q"),
        &[
            "timewindow",
            "code",
            "version",
            "status",
            "name",
            "primaryValue",
            "startdate",
            "enddate",
            "minDuration",
        ],
    )?;
    for c in &conds {
        if c.key() == "timewindow"
            && !["1h", "6h", "1d", "2d", "3d", "RETENTIONPERIOD"]
                .iter()
                .any(|w| c.matches(w))
        {
            return Err(ApiError::bad_request(
                "timewindow must be 1h, 6h, 1d, 2d, 3d or RETENTIONPERIOD.",
            ));
        }
    }
    Ok(())
}

/// `GET /monitoring/integrations/{id}`.
pub async fn integration(api: Api) -> ApiResult<Response> {
    check_window(&api)?;
    let key = split_id(api.id())?;
    let tick = super::schedules::tick(&api.ctx.shared);
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    super::schedules::materialize_all(data, tick);
    let i = data
        .integrations
        .get(&key)
        .ok_or_else(|| ApiError::not_found(format!("Integration '{}' not found.", api.id())))?;
    Ok(json_ok(&stats_json(&api.prefix(), i)))
}

/// `GET /monitoring/integrations`.
pub async fn integrations(api: Api) -> ApiResult<Response> {
    check_window(&api)?;
    let (offset, limit) = api.params.paging()?;
    let conds = parse_q(
        api.params.get("q"),
        &[
            "timewindow",
            "code",
            "version",
            "status",
            "name",
            "primaryValue",
            "startdate",
            "enddate",
            "minDuration",
        ],
    )?;
    let tick = super::schedules::tick(&api.ctx.shared);
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    super::schedules::materialize_all(data, tick);
    let prefix = api.prefix();
    let all = data
        .integrations
        .values()
        .filter(|i| {
            conds.iter().all(|c| match c.key() {
                "code" => c.matches(&i.code),
                "version" => c.matches(&i.version),
                "name" => c.matches(&i.name),
                "status" => c.matches(i.status.as_str()),
                _ => true,
            })
        })
        .map(|i| stats_json(&prefix, i))
        .collect();
    Ok(json_ok(&envelope(
        all,
        offset,
        limit,
        &format!("{prefix}/monitoring/integrations"),
    )))
}

/// The runs of a scheduled integration (produced by its schedule or "run now"), newest first.
fn scheduled_runs(i: &Integration) -> Vec<Value> {
    i.runs
        .iter()
        .rev()
        .map(|r| {
            json!({
                "id": r.id,
                "integrationId": i.code,
                "integrationName": i.name,
                "integrationVersion": i.version,
                "status": "COMPLETED",
                "creationDate": oic_date(&r.at),
                "lastTrackedTime": oic_date(&r.at),
                "primaryValue": if r.scheduled { "SCHEDULE" } else { "RUN_NOW" },
                "errorMessage": Value::Null,
                "recoverable": false,
            })
        })
        .collect()
}

/// The instances (runs) of an integration: up to 5 recent ones, the erroneous ones `FAILED`.
fn runs(i: &Integration) -> Vec<Value> {
    if i.pattern == "Scheduled" {
        return scheduled_runs(i);
    }
    let (rx, err, ab) = traffic(i);
    let n = rx.min(5);
    (0..n)
        .map(|k| {
            let status = if k < err.min(n) {
                "FAILED"
            } else if k == n - 1 && ab > 0 {
                "ABORTED"
            } else {
                "COMPLETED"
            };
            let created = i.last_updated + ChronoDuration::minutes(10 * (k as i64 + 1));
            json!({
                "id": format!("{}{}", h(&i.id(), "inst") % 1_000_000, k),
                "integrationId": i.code,
                "integrationName": i.name,
                "integrationVersion": i.version,
                "status": status,
                "creationDate": oic_date(&created),
                "lastTrackedTime": oic_date(&(created + ChronoDuration::seconds(3))),
                "primaryValue": format!("{}-{}", i.code, k + 1),
                "errorMessage": if status == "FAILED" { json!("Remote endpoint returned HTTP 500.") } else { Value::Null },
                "recoverable": status == "FAILED",
            })
        })
        .collect()
}

fn all_runs(api: &Api) -> ApiResult<Vec<Value>> {
    let conds = parse_q(
        api.params.get("q"),
        &[
            "timewindow",
            "code",
            "version",
            "status",
            "name",
            "primaryValue",
            "startdate",
            "enddate",
            "minDuration",
        ],
    )?;
    check_window(api)?;
    let tick = super::schedules::tick(&api.ctx.shared);
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    super::schedules::materialize_all(data, tick);
    Ok(data
        .integrations
        .values()
        .flat_map(runs)
        .filter(|r| {
            conds.iter().all(|c| match c.key() {
                "code" => c.matches(r["integrationId"].as_str().unwrap_or("")),
                "version" => c.matches(r["integrationVersion"].as_str().unwrap_or("")),
                "status" => c.matches(r["status"].as_str().unwrap_or("")),
                "primaryValue" => c.matches(r["primaryValue"].as_str().unwrap_or("")),
                _ => true,
            })
        })
        .collect())
}

/// `GET /monitoring/instances`.
pub async fn instances(api: Api) -> ApiResult<Response> {
    let (offset, limit) = api.params.paging()?;
    let all = all_runs(&api)?;
    Ok(json_ok(&envelope(
        all,
        offset,
        limit,
        &format!("{}/monitoring/instances", api.prefix()),
    )))
}

/// `GET /monitoring/instances/{id}`.
pub async fn instance(api: Api) -> ApiResult<Response> {
    let all = all_runs(&api)?;
    let r = all
        .into_iter()
        .find(|r| r["id"] == api.id())
        .ok_or_else(|| ApiError::not_found(format!("Instance '{}' not found.", api.id())))?;
    Ok(json_ok(&r))
}

/// `GET /monitoring/errors`: the failed instances.
pub async fn errors(api: Api) -> ApiResult<Response> {
    let (offset, limit) = api.params.paging()?;
    let all: Vec<Value> = all_runs(&api)?
        .into_iter()
        .filter(|r| r["status"] == "FAILED")
        .collect();
    Ok(json_ok(&envelope(
        all,
        offset,
        limit,
        &format!("{}/monitoring/errors", api.prefix()),
    )))
}
