//! Schedules of scheduled integrations (global and `/projects/{p}/`): `GET/POST/PUT/DELETE …/schedule`,
//! `POST …/schedule/{start,stop,pause,resume}` and "run now" (`POST …/schedule/jobs`), with the recorded
//! status codes, bodies and 409/412 messages (docs/oic-fidelity.md "Schedules").
//!
//! A schedule is `CANCELLED` (stopped; new and imported schedules), `ACTIVE` (started) or `HOLD` (paused). While
//! `ACTIVE` it produces one run per period (the period its definition names, or the forced one, see [`tick`])
//! of the emulator's clock ([`super::clock`]); runs are materialised lazily when monitoring is read, so a
//! stopped schedule never produces any. "Run now" produces one run at once, whatever the schedule state.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::error::{ApiError, ApiResult};
use super::extract::{Api, space};
use super::integrations::{enc, json_status, label, split_id};
use super::state::{IntStatus, Integration, Run, Schedule, ScheduleState, Shared, oic_date};
use super::wire::plain_json;

/// Most recent runs kept per integration.
pub const MAX_RUNS: usize = 100;

/// When schedules are looked at: the emulator's clock ([`super::clock`]) and the period forced on every
/// schedule (`SimHandle::set_schedule_tick`), if any.
#[derive(Clone, Copy, Debug)]
pub struct Tick {
    pub now: DateTime<Utc>,
    pub period: Option<Duration>,
}

/// The [`Tick`] of a request.
pub fn tick(shared: &Shared) -> Tick {
    let period = match shared
        .schedule_tick_ms
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    };
    Tick {
        now: shared.clock.now(),
        period,
    }
}

/// The period a definition names: `frequency` (`frequencyType` × `interval`) or the iCal `FREQ`/`INTERVAL`.
pub fn period(s: &Schedule) -> Duration {
    let (unit, interval) = if let Some(f) = &s.frequency {
        let v: Value = serde_json::from_str(f).unwrap_or(Value::Null);
        (
            v["frequencyType"]
                .as_str()
                .unwrap_or("DAILY")
                .to_uppercase(),
            v["interval"].as_u64().unwrap_or(1),
        )
    } else {
        let e = s.ical.as_deref().unwrap_or("").to_uppercase();
        let part = |k: &str| {
            e.split(';')
                .find_map(|p| p.trim().strip_prefix(k).map(str::to_string))
        };
        (
            part("FREQ=").unwrap_or_else(|| "DAILY".into()),
            part("INTERVAL=").and_then(|n| n.parse().ok()).unwrap_or(1),
        )
    };
    let unit_secs: u64 = match unit.as_str() {
        "MINUTELY" | "MINUTES" | "MINUTE" => 60,
        "HOURLY" | "HOURS" | "HOUR" => 3600,
        "WEEKLY" | "WEEKS" | "WEEK" => 7 * 86400,
        "MONTHLY" | "MONTHS" | "MONTH" => 30 * 86400,
        "YEARLY" => 365 * 86400,
        _ => 86400,
    };
    Duration::from_secs(unit_secs.saturating_mul(interval.max(1)))
}

/// A run id in the recorded form (22 characters of URL-safe base64).
pub fn run_id(i: &Integration, at: &DateTime<Utc>, n: usize) -> String {
    let d = Sha256::digest(format!(
        "{}|{}|{n}",
        i.id(),
        at.timestamp_nanos_opt().unwrap_or(0)
    ));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&d[..16])
}

fn push_run(i: &mut Integration, at: DateTime<Utc>, scheduled: bool) -> String {
    let id = run_id(i, &at, i.runs.len());
    i.runs.push(Run {
        id: id.clone(),
        at,
        scheduled,
        failed: false,
    });
    if i.runs.len() > MAX_RUNS {
        let extra = i.runs.len() - MAX_RUNS;
        i.runs.drain(..extra);
    }
    id
}

/// Adds the runs an `ACTIVE` schedule produced up to `now`.
pub fn materialize(i: &mut Integration, tick: Tick) {
    let now = tick.now;
    let Some(s) = &i.schedule else { return };
    if s.state != ScheduleState::Active {
        return;
    }
    let Some(mut since) = s.active_since else {
        // Started before this emulator ran (seeded or restored): count from now.
        if let Some(s) = i.schedule.as_mut() {
            s.active_since = Some(now);
        }
        return;
    };
    let p = tick.period.unwrap_or_else(|| period(s));
    let Ok(step) = chrono::Duration::from_std(p.max(Duration::from_millis(1))) else {
        return;
    };
    let elapsed = now.signed_duration_since(since);
    if elapsed < step {
        return;
    }
    let periods = (elapsed.num_milliseconds() / step.num_milliseconds().max(1)).max(0) as usize;
    // Only the last MAX_RUNS runs are kept: skip the older periods without building them.
    let skip = periods.saturating_sub(MAX_RUNS);
    since += step * skip as i32;
    for _ in skip..periods {
        since += step;
        push_run(i, since, true);
    }
    if let Some(s) = i.schedule.as_mut() {
        s.active_since = Some(since);
    }
}

/// Materialises the runs of every integration of a space.
pub fn materialize_all(data: &mut super::state::InstanceData, tick: Tick) {
    for i in data.integrations.values_mut() {
        materialize(i, tick);
    }
}

/// Stops a started or paused schedule (deactivation does this): its runs so far are kept.
pub fn stop_running(i: &mut Integration, tick: Tick) {
    materialize(i, tick);
    if let Some(s) = i.schedule.as_mut() {
        s.state = ScheduleState::Cancelled;
        s.active_since = None;
    }
}

fn not_defined() -> ApiError {
    ApiError::precondition("Schedule is not defined for this integration.")
}

/// `…/integrations/{id}` of the request, without query.
fn integration_href(api: &Api) -> String {
    format!("{}/integrations/{}", api.prefix(), enc(api.id()))
}

/// `?integrationInstance=X` on the OIC 3 design host, "" on Gen2.
fn q(api: &Api) -> String {
    api.instance_query()
}

/// The schedule resource: the recorded POST answer (`frequency`|`icalExpression`, `links`, `lockedFlag`,
/// `name`, `scheduleTZ`, `scheduleTZDisplayName`, `startDate`, `endDate`, `updated`); with `full` (GET) also the
/// documented `state`, `created`, `createdBy`, `updatedBy`.
fn schedule_json(api: &Api, s: &Schedule, full: bool) -> Value {
    let href = format!("{}/schedule{}", integration_href(api), q(api));
    let mut v = json!({
        "links": [ { "href": href, "rel": "self" }, { "href": href, "rel": "canonical" } ],
        "lockedFlag": false,
        "name": s.name,
        "scheduleTZ": s.tz,
        "updated": oic_date(&s.updated),
    });
    if let Some(f) = &s.frequency {
        v["frequency"] = serde_json::from_str(f).unwrap_or(Value::Null);
    }
    if let Some(e) = &s.ical {
        v["icalExpression"] = json!(e);
    }
    if let Some(d) = &s.tz_display {
        v["scheduleTZDisplayName"] = json!(d);
    }
    if let Some(d) = &s.start_date {
        v["startDate"] = json!(d);
    }
    if let Some(d) = &s.end_date {
        v["endDate"] = json!(d);
    }
    if full {
        v["state"] = json!(s.state.as_str());
        v["created"] = json!(oic_date(&s.created));
        v["createdBy"] = json!(s.created_by);
        v["updatedBy"] = json!(s.updated_by);
    }
    v
}

/// A schedule definition as written by `POST`/`PUT …/schedule`.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Definition {
    name: Option<String>,
    frequency: Option<Value>,
    ical_expression: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    #[serde(rename = "scheduleTZ")]
    schedule_tz: Option<String>,
    #[serde(rename = "scheduleTZDisplayName")]
    schedule_tz_display_name: Option<String>,
}

fn parse_definition(body: &[u8]) -> ApiResult<Definition> {
    let d: Definition = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid schedule definition: {e}")))?;
    let freq = d.frequency.as_ref().is_some_and(|f| !f.is_null());
    let ical = d
        .ical_expression
        .as_deref()
        .is_some_and(|e| !e.trim().is_empty());
    if freq == ical {
        return Err(ApiError::bad_request(
            "A schedule needs either a frequency or an icalExpression.",
        ));
    }
    if freq
        && !d
            .frequency
            .as_ref()
            .is_some_and(|f| f["frequencyType"].is_string())
    {
        return Err(ApiError::bad_request(
            "frequency.frequencyType is required.",
        ));
    }
    Ok(d)
}

fn apply(s: &mut Schedule, d: Definition, default_name: String) {
    s.name = d.name.filter(|n| !n.is_empty()).unwrap_or(default_name);
    s.frequency = d.frequency.filter(|f| !f.is_null()).map(|f| f.to_string());
    s.ical = d.ical_expression.filter(|e| !e.trim().is_empty());
    s.start_date = d.start_date.filter(|x| !x.is_empty());
    s.end_date = d.end_date.filter(|x| !x.is_empty());
    s.tz = d
        .schedule_tz
        .filter(|x| !x.is_empty())
        .unwrap_or_else(|| "UTC".into());
    s.tz_display = d.schedule_tz_display_name.filter(|x| !x.is_empty());
}

/// Runs `f` on the request's integration (404 when missing; 412 when it is not a scheduled integration).
fn with_scheduled<T>(
    api: &Api,
    f: impl FnOnce(&mut Integration, Tick) -> ApiResult<T>,
) -> ApiResult<T> {
    let key = split_id(api.id())?;
    let tick = tick(&api.ctx.shared);
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    let i = data
        .integrations
        .get_mut(&key)
        .ok_or_else(|| ApiError::not_found(format!("Integration '{}' not found.", api.id())))?;
    if i.pattern != "Scheduled" {
        return Err(ApiError::precondition(format!(
            "{} is not a scheduled integration.",
            label(i)
        )));
    }
    f(i, tick)
}

/// `GET …/schedule`: 200 with the schedule and its `state`; 412 when none is defined.
pub async fn get(api: Api) -> ApiResult<Response> {
    let v = with_scheduled(&api, |i, tick| {
        materialize(i, tick);
        let s = i.schedule.as_ref().ok_or_else(not_defined)?;
        Ok(schedule_json(&api, s, true))
    })?;
    Ok(json_status(StatusCode::OK, &v))
}

/// `POST …/schedule`: 200 (as recorded, `application/json`) with the new, stopped schedule; 409 when one exists.
pub async fn create(api: Api, body: Bytes) -> ApiResult<Response> {
    let d = parse_definition(&body)?;
    let v = with_scheduled(&api, |i, tick| {
        if i.schedule.is_some() {
            return Err(ApiError::conflict("Schedule already exists."));
        }
        let now = tick.now;
        let mut s = Schedule::ical("", "", api.who(), now);
        apply(
            &mut s,
            d,
            format!("Schedule2{}_{}", i.code, i.version.replace('.', "_")),
        );
        let v = schedule_json(&api, &s, false);
        i.schedule = Some(s);
        Ok(v)
    })?;
    Ok(plain_json(json_status(StatusCode::OK, &v)))
}

/// `PUT …/schedule`: replaces the definition (the state is kept); 412 when none is defined.
pub async fn replace(api: Api, body: Bytes) -> ApiResult<Response> {
    let d = parse_definition(&body)?;
    let v = with_scheduled(&api, |i, tick| {
        materialize(i, tick);
        let default = format!("Schedule2{}_{}", i.code, i.version.replace('.', "_"));
        let s = i.schedule.as_mut().ok_or_else(not_defined)?;
        apply(s, d, default);
        s.updated = tick.now;
        s.updated_by = api.who().to_string();
        Ok(schedule_json(&api, s, false))
    })?;
    Ok(plain_json(json_status(StatusCode::OK, &v)))
}

/// `DELETE …/schedule`: 200 with an empty body (as recorded); 412 when none is defined or it is not stopped.
pub async fn delete(api: Api) -> ApiResult<Response> {
    with_scheduled(&api, |i, _| {
        let s = i.schedule.as_ref().ok_or_else(not_defined)?;
        if s.state != ScheduleState::Cancelled {
            return Err(ApiError::precondition(format!(
                "Schedule is in {} state. It can be deleted only when in CANCELLED state.",
                s.state.as_str()
            )));
        }
        i.schedule = None;
        Ok(())
    })?;
    Ok(StatusCode::OK.into_response())
}

/// The `links` of a start/stop/pause/resume answer (recorded: every schedule action but the one done).
fn action_links(api: &Api, i: &Integration, done: &str) -> Value {
    let base = format!("{}/schedule", integration_href(api));
    let q = q(api);
    let mut links = vec![
        json!({ "href": format!("{base}/{done}{q}"), "method": "POST", "rel": "self" }),
        json!({ "href": format!("{base}/{done}{q}"), "method": "POST", "rel": "canonical" }),
        json!({ "href": format!("{base}{q}"), "mediaType": "GET", "rel": "Schedule" }),
        json!({
            "href": format!(
                "{}{}/monitoring/instances%3Foffset%3D0%26limit%3D50%26q%3D%7Btimewindow%3A%271h%27%2C+code%3A%27{}%27%2C+version%3A%27{}%27%7D{q}",
                api.ctx.base_url,
                super::API,
                i.code,
                i.version
            ),
            "method": "GET",
            "rel": "Schedule Instances",
        }),
    ];
    for (action, rel) in [
        ("start", "Start Schedule"),
        ("pause", "Pause Schedule"),
        ("resume", "Resume Schedule"),
        ("stop", "Stop Schedule"),
    ] {
        if action != done {
            links.push(
                json!({ "href": format!("{base}/{action}{q}"), "method": "POST", "rel": rel }),
            );
        }
    }
    json!(links)
}

/// The answer of a state change: 202 + `Location` with `?async=true` (as recorded), 200 otherwise.
fn action_answer(api: &Api, body: Value, plain: bool) -> Response {
    let asynchronous = api.params.flag("async");
    let mut r = json_status(
        if asynchronous {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        },
        &body,
    );
    if asynchronous {
        // Recorded: the query of the Location is percent-encoded into the path (`schedule%3FintegrationInstance%3DX`).
        let q = q(api).replace('?', "%3F").replace('=', "%3D");
        if let Ok(v) = HeaderValue::from_str(&format!("{}/schedule{q}", integration_href(api))) {
            r.headers_mut().insert(header::LOCATION, v);
        }
    }
    if plain { plain_json(r) } else { r }
}

/// Changes the state of a defined schedule: `from` are the states allowed, `verb` names the action.
fn transition(
    api: &Api,
    action: &str,
    from: &[ScheduleState],
    allowed: &str,
    to: ScheduleState,
) -> ApiResult<Value> {
    with_scheduled(api, |i, tick| {
        let state = i.schedule.as_ref().ok_or_else(not_defined)?.state;
        if !from.contains(&state) {
            return Err(ApiError::precondition(format!(
                "Schedule is in {} state. It can be {} only when in {allowed} state.",
                state.as_str(),
                match action {
                    "start" => "started",
                    "stop" => "stopped",
                    "pause" => "paused",
                    _ => "resumed",
                }
            )));
        }
        if to == ScheduleState::Active && i.status != IntStatus::Activated {
            return Err(ApiError::precondition(format!(
                "{} is not activated. Its schedule can be started only when it is active.",
                label(i)
            )));
        }
        materialize(i, tick);
        let links = action_links(api, i, action);
        if let Some(s) = i.schedule.as_mut() {
            s.state = to;
            s.active_since = (to == ScheduleState::Active).then_some(tick.now);
        }
        Ok(links)
    })
}

/// `POST …/schedule/start[?async=true]`: `CANCELLED` → `ACTIVE` (the integration must be active).
pub async fn start(api: Api) -> ApiResult<Response> {
    let links = transition(
        &api,
        "start",
        &[ScheduleState::Cancelled],
        "CANCELLED",
        ScheduleState::Active,
    )?;
    Ok(action_answer(
        &api,
        json!({ "id": "", "instanceId": "", "links": links }),
        false,
    ))
}

/// `POST …/schedule/stop[?async=true]`: `ACTIVE`/`HOLD` → `CANCELLED`.
pub async fn stop(api: Api) -> ApiResult<Response> {
    let links = transition(
        &api,
        "stop",
        &[ScheduleState::Active, ScheduleState::Hold],
        "ACTIVE or HOLD",
        ScheduleState::Cancelled,
    )?;
    Ok(action_answer(&api, json!({ "links": links }), true))
}

/// `POST …/schedule/pause[?async=true]`: `ACTIVE` → `HOLD`.
pub async fn pause(api: Api) -> ApiResult<Response> {
    let links = transition(
        &api,
        "pause",
        &[ScheduleState::Active],
        "ACTIVE",
        ScheduleState::Hold,
    )?;
    Ok(action_answer(&api, json!({ "links": links }), true))
}

/// `POST …/schedule/resume[?async=true]`: `HOLD` → `ACTIVE`.
pub async fn resume(api: Api) -> ApiResult<Response> {
    let links = transition(
        &api,
        "resume",
        &[ScheduleState::Hold],
        "HOLD",
        ScheduleState::Active,
    )?;
    Ok(action_answer(&api, json!({ "links": links }), true))
}

/// `POST …/schedule/jobs` (run now): 204 with `Location` (the monitoring instance) and
/// `x-oracle-ics-instance-id`; 412 when the integration is not active.
pub async fn run_now(api: Api, body: Bytes) -> ApiResult<Response> {
    if !body.iter().all(u8::is_ascii_whitespace) {
        serde_json::from_slice::<Value>(&body)
            .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))?;
    }
    let id = with_scheduled(&api, |i, tick| {
        if i.status != IntStatus::Activated {
            return Err(ApiError::precondition(format!(
                "{} is not activated and cannot be run.",
                label(i)
            )));
        }
        materialize(i, tick);
        Ok(push_run(i, tick.now, false))
    })?;
    let mut r = StatusCode::NO_CONTENT.into_response();
    let loc = format!(
        "{}{}/monitoring/instances/{id}{}",
        api.ctx.base_url,
        super::API,
        q(&api)
    );
    if let Ok(v) = HeaderValue::from_str(&loc) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        r.headers_mut().insert("x-oracle-ics-instance-id", v);
    }
    Ok(r)
}
