//! Monitoring (§8): per-integration statistics, a minimal instance list, errors.
//!
//! Numbers are deterministic: seeded integrations that are `ACTIVATED` get traffic derived from a hash of their
//! id (a few have errors); imported integrations and inactive ones have none, so a fresh migration verifies clean.

use axum::response::Response;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::error::{ApiError, ApiResult};
use super::extract::{Api, space};
use super::integrations::{enc, json_ok, split_id};
use super::query::{envelope, parse_q};
use super::state::{ArchiveSource, IntStatus, Integration, Run, oic_date};

fn h(id: &str, salt: &str) -> u64 {
    let d = Sha256::digest(format!("{id}:{salt}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b)
}

/// Records `n` instances of integration `i` received at `at`, the share `error_rate` of them failed
/// (spread evenly: instance k fails when ⌊(k+1)·rate⌋ > ⌊k·rate⌋, counting every run it had).
pub fn add_instances(i: &mut Integration, n: u64, error_rate: f64, at: DateTime<Utc>) -> Vec<bool> {
    let rate = error_rate.clamp(0.0, 1.0);
    let mut out = vec![];
    for _ in 0..n {
        let k = i.runs.len() as f64;
        let failed = ((k + 1.0) * rate).floor() > (k * rate).floor();
        let id = super::schedules::run_id(i, &at, i.runs.len());
        i.runs.push(Run {
            id,
            at,
            scheduled: false,
            failed,
        });
        out.push(failed);
    }
    if i.runs.len() > super::schedules::MAX_RUNS {
        let extra = i.runs.len() - super::schedules::MAX_RUNS;
        i.runs.drain(..extra);
    }
    out
}

/// (received, errors, aborted) of an integration.
fn traffic(i: &Integration) -> (u64, u64, u64) {
    let recorded = i.runs.len() as u64;
    let failed = i.runs.iter().filter(|r| r.failed).count() as u64;
    if i.pattern == "Scheduled" {
        // Scheduled integrations run only when their schedule fires or on "run now".
        return (recorded, failed, 0);
    }
    let seeded = matches!(i.archive, ArchiveSource::Generated { .. });
    if !seeded || i.status != IntStatus::Activated {
        return (recorded, failed, 0);
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
    (received + recorded, errors + failed, aborted)
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

/// The recorded runs of an integration (its schedule, "run now", injected traffic and REST trigger calls),
/// newest first.
fn scheduled_runs(i: &Integration) -> Vec<Value> {
    let scheduled = i.pattern == "Scheduled";
    i.runs
        .iter()
        .rev()
        .map(|r| {
            json!({
                "id": r.id,
                "integrationId": i.code,
                "integrationName": i.name,
                "integrationVersion": i.version,
                "status": if r.failed { "FAILED" } else { "COMPLETED" },
                "creationDate": oic_date(&r.at),
                "lastTrackedTime": oic_date(&r.at),
                "primaryValue": match (scheduled, r.scheduled) {
                    (true, true) => "SCHEDULE",
                    (true, false) => "RUN_NOW",
                    _ => "REST",
                },
                "errorMessage": if r.failed { json!("Remote endpoint returned HTTP 500.") } else { Value::Null },
                "recoverable": r.failed,
            })
        })
        .collect()
}

/// The instances (runs) of an integration: up to 5 recent ones, the erroneous ones `FAILED`.
fn runs(i: &Integration) -> Vec<Value> {
    if i.pattern == "Scheduled" {
        return scheduled_runs(i);
    }
    let mut out = scheduled_runs(i);
    let seeded = matches!(i.archive, ArchiveSource::Generated { .. });
    if !seeded || i.status != IntStatus::Activated {
        return out;
    }
    let (rx, err, ab) = traffic(i);
    let (rx, err) = (
        rx - i.runs.len() as u64,
        err - i.runs.iter().filter(|r| r.failed).count() as u64,
    );
    let n = rx.min(5);
    out.extend((0..n)
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
        }));
    out
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
                "startdate" | "enddate" => {
                    let at = r["creationDate"].as_str().and_then(parse_date);
                    let bound = c.value().and_then(parse_date);
                    match (at, bound) {
                        (Some(at), Some(b)) if c.key() == "startdate" => at >= b,
                        (Some(at), Some(b)) => at <= b,
                        _ => true,
                    }
                }
                _ => true,
            })
        })
        .collect())
}

/// A date of a monitoring query (`startdate:'2026-03-02 09:15:00'`, UTC) or of an answer
/// (`2026-03-02T09:15:00.000+0000`); RFC 3339 is accepted too.
pub fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(t.with_timezone(&Utc));
    }
    [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
    ]
    .iter()
    .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
    .map(|t| t.and_utc())
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

/// The REST trigger of an active integration (runtime `…/ic/api/integration/v1/flows/rest/CODE/1.0/...`, any
/// method): records one instance (failed at the rate of its [`super::faults::TrafficRule`]) and answers 200
/// `{"status":"COMPLETED","instanceId"}`, or 500 when the instance failed; 404 when no active version answers.
pub async fn trigger(api: Api) -> ApiResult<Response> {
    let (code, ver) = (api.param("code").to_string(), api.param("ver").to_string());
    let faults = api.ctx.shared.faults.get();
    let mut g = api.inst.lock();
    let i = g
        .integrations
        .values_mut()
        .find(|i| i.code == code && i.short_version() == ver && i.status == IntStatus::Activated)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "No active integration answers /flows/rest/{code}/{ver}."
            ))
        })?;
    let rate = faults
        .traffic_for(&i.code, &i.version)
        .map(|r| r.error_rate)
        .unwrap_or(0.0);
    let failed = add_instances(i, 1, rate, Utc::now())
        .first()
        .copied()
        .unwrap_or(false);
    let id = i.runs.last().map(|r| r.id.clone()).unwrap_or_default();
    if failed {
        return Err(ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("Instance {id} of {code} {ver} failed: Remote endpoint returned HTTP 500."),
        ));
    }
    Ok(json_ok(&json!({ "status": "COMPLETED", "instanceId": id })))
}
