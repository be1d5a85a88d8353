//! Integrations (§3): list, get, export, import (POST/PUT), activate/deactivate, activation status.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::Utc;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use super::archive::{self, ArchiveError, ParsedIar};
use super::auth::{Caller, authenticate};
use super::error::{ApiError, ApiResult};
use super::query::{Params, envelope, parse_q};
use super::state::{
    ArchiveSource, ConnRef, ConnStatus, Connection, Instance, InstanceData, IntStatus, Integration,
    oic_date,
};
use super::{API, Ctx};

/// A JSON 200 response with `Content-Type: application/json`.
pub fn json_ok(v: &Value) -> Response {
    json_status(StatusCode::OK, v)
}

/// A JSON response with a status.
pub fn json_status(status: StatusCode, v: &Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

/// Percent-encodes an id for use in a link (`|` → `%7C`).
pub fn enc(id: &str) -> String {
    utf8_percent_encode(id, NON_ALPHANUMERIC).to_string()
}

/// Splits `CODE|VERSION`.
pub fn split_id(id: &str) -> ApiResult<(String, String)> {
    match id.split_once('|') {
        Some((c, v)) if !c.is_empty() && !v.is_empty() => {
            Ok((c.trim().to_string(), v.trim().to_string()))
        }
        _ => Err(ApiError::not_found(format!(
            "Integration '{id}' not found."
        ))),
    }
}

/// `Integration 'CODE | 1.0'` as OIC writes it in messages.
pub fn label(i: &Integration) -> String {
    format!("Integration '{} | {}'", i.code, i.short_version())
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Integration '{id}' not found."))
}

/// The integration resource (§3.2).
pub fn integration_json(base: &str, i: &Integration, data: &InstanceData, expand: &str) -> Value {
    let id = i.id();
    let href = format!("{base}{API}/integrations/{}", enc(&id));
    let conn_json = |c: &ConnRef| {
        let conn = data.connections.get(&c.code);
        let status = conn.map(|c| c.status.as_str()).unwrap_or("INPROGRESS");
        let name = conn
            .map(|c| c.name.clone())
            .unwrap_or_else(|| c.code.clone());
        let mut v = json!({ "id": c.code, "name": name, "status": status, "role": c.role });
        if expand.contains("connection")
            && let Some(conn) = conn
        {
            v["adapterType"] = json!({ "name": conn.adapter, "displayName": conn.adapter.to_uppercase(), "type": "PREINSTALLED" });
            v["securityPolicy"] = json!(conn.security_policy);
        }
        v
    };
    let end_points: Vec<Value> = i
        .connections
        .iter()
        .map(|c| json!({ "name": c.code, "role": c.role, "connection": conn_json(c) }))
        .collect();
    let deps: Vec<Value> = i
        .connections
        .iter()
        .map(|c| {
            let status = data
                .connections
                .get(&c.code)
                .map(|c| c.status.as_str())
                .unwrap_or("INPROGRESS");
            json!({ "id": c.code, "status": status, "role": c.role })
        })
        .collect();
    let lookups: Vec<Value> = i
        .lookups
        .iter()
        .map(|l| json!({ "name": l, "id": l }))
        .collect();
    json!({
        "id": id,
        "code": i.code,
        "version": i.version,
        "name": i.name,
        "description": i.description,
        "status": i.status.as_str(),
        "pattern": i.pattern,
        "patternDescription": i.pattern_description,
        "style": i.style,
        "styleDescription": i.pattern_description,
        "lockedFlag": i.locked_by.is_some(),
        "lockedBy": i.locked_by,
        "tracingEnabledFlag": i.tracing,
        "payloadTracingEnabledFlag": i.payload_tracing,
        "recordEnabledFlag": i.record_enabled,
        "scheduleApplicableFlag": i.schedule.is_some(),
        "scheduleDefinedFlag": i.schedule.is_some(),
        "percentageComplete": if i.status == IntStatus::InProgress { 60 } else { 100 },
        "projectType": i.project_type,
        "compatible": true,
        "packageName": i.package_name,
        "endPointURI": format!("{base}/ic/api/integration/v1/flows/rest/{}/{}/", i.code, i.short_version()),
        "endPoints": end_points,
        "dependencies": { "connections": deps, "lookups": lookups, "libraries": [], "certificates": [] },
        "created": oic_date(&i.created),
        "createdBy": i.created_by,
        "lastUpdated": oic_date(&i.last_updated),
        "lastUpdatedBy": i.last_updated_by,
        "links": [ { "href": href, "rel": "self" }, { "href": href, "rel": "canonical" } ],
    })
}

/// Authenticated request context: instance, caller, parsed query.
pub struct Req {
    /// Selected instance.
    pub inst: Arc<Instance>,
    /// Caller.
    pub caller: Caller,
    /// Query parameters.
    pub params: Params,
}

/// Authenticates and parses the query.
pub fn req(ctx: &Ctx, headers: &HeaderMap, raw: Option<String>) -> ApiResult<Req> {
    let params = Params::parse(raw.as_deref());
    let (inst, caller) = authenticate(ctx, headers, &params.0)?;
    Ok(Req {
        inst,
        caller,
        params,
    })
}

fn sort_key_time(i: &Integration) -> std::cmp::Reverse<chrono::DateTime<Utc>> {
    std::cmp::Reverse(i.last_updated)
}

/// `GET /integrations`.
pub async fn list(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let r = req(&ctx, &headers, raw)?;
    let (offset, limit) = r.params.paging()?;
    let conds = parse_q(
        r.params.get("q"),
        &[
            "name", "code", "status", "type", "style", "version", "pattern",
        ],
    )?;
    let expand = r.params.get("expand").unwrap_or("").to_string();
    let data = r.inst.lock();
    let mut items: Vec<&Integration> = data
        .integrations
        .values()
        .filter(|i| {
            conds.iter().all(|c| match c.key() {
                "name" => c.matches(&i.name),
                "code" => c.matches(&i.code),
                "status" => c.matches(i.status.as_str()),
                "type" => c.matches(&i.project_type),
                "style" => c.matches(&i.style),
                "pattern" => c.matches(&i.pattern),
                "version" => c.matches(&i.version),
                _ => false,
            })
        })
        .collect();
    match r.params.get("orderBy").unwrap_or("") {
        "" => {}
        "name" => items.sort_by(|a, b| {
            a.name
                .to_lowercase()
                .cmp(&b.name.to_lowercase())
                .then(a.version.cmp(&b.version))
        }),
        "time" => items.sort_by_key(|i| sort_key_time(i)),
        o => {
            return Err(ApiError::bad_request(format!(
                "Invalid orderBy '{o}'. Use name or time."
            )));
        }
    }
    let all: Vec<Value> = items
        .iter()
        .map(|i| integration_json(&ctx.base_url, i, &data, &expand))
        .collect();
    Ok(json_ok(&envelope(
        all,
        offset,
        limit,
        &format!("{}{API}/integrations", ctx.base_url),
    )))
}

/// `GET /integrations/{id}`.
pub async fn get(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let r = req(&ctx, &headers, raw)?;
    let (code, version) = split_id(&id)?;
    let expand = r.params.get("expand").unwrap_or("").to_string();
    let data = r.inst.lock();
    let i = data
        .integrations
        .get(&(code, version))
        .ok_or_else(|| not_found(&id))?;
    Ok(json_ok(&integration_json(&ctx.base_url, i, &data, &expand)))
}

/// Builds the export bytes of an integration (checks 404/423).
pub fn export_bytes(inst: &Instance, id: &str) -> ApiResult<(String, Bytes)> {
    let (code, version) = split_id(id)?;
    let data = inst.lock();
    let i = data
        .integrations
        .get(&(code, version))
        .ok_or_else(|| not_found(id))?;
    if let Some(by) = &i.locked_by {
        return Err(ApiError::locked(format!(
            "{} is locked by {by} and cannot be exported.",
            label(i)
        )));
    }
    if i.project_type == "PREBUILT" {
        return Err(ApiError::locked(format!(
            "{} is a prebuilt integration and cannot be exported.",
            label(i)
        )));
    }
    let file = format!("{}_{}.iar", i.code, i.version);
    match &i.archive {
        ArchiveSource::Stored(b) => Ok((file, b.clone())),
        ArchiveSource::Generated { padding } => {
            let conns: Vec<Connection> = i
                .connections
                .iter()
                .filter_map(|c| data.connections.get(&c.code).cloned())
                .collect();
            let lookups: Vec<_> = i
                .lookups
                .iter()
                .filter_map(|l| data.lookups.get(l).cloned())
                .collect();
            let bytes = archive::build_iar(i, &conns, &lookups, *padding)
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            Ok((file, Bytes::from(bytes)))
        }
    }
}

/// An `application/octet-stream` download.
pub fn octet_stream(file: &str, body: Body) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = header::HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// `GET /integrations/{id}/archive`.
pub async fn export(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let r = req(&ctx, &headers, raw)?;
    let (file, bytes) = export_bytes(&r.inst, &id)?;
    Ok(octet_stream(&file, Body::from(bytes)))
}

/// Reads the `file` part of a multipart upload (400 when missing).
pub async fn multipart_file(mp: Result<Multipart, MultipartRejection>) -> ApiResult<Bytes> {
    let Ok(mut mp) = mp else {
        return Err(ApiError::bad_request(
            "A multipart/form-data body with a 'file' part is required.",
        ));
    };
    let mut file = None;
    loop {
        match mp.next_field().await {
            Ok(Some(f)) => {
                if f.name() == Some("file") {
                    let b = f.bytes().await.map_err(|e| {
                        ApiError::bad_request(format!("Could not read the uploaded file: {e}"))
                    })?;
                    file = Some(b);
                }
            }
            Ok(None) => break,
            Err(e) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid multipart body: {e}"
                )));
            }
        }
    }
    file.ok_or_else(|| ApiError::bad_request("The multipart part 'file' is missing."))
}

fn archive_error(e: ArchiveError) -> ApiError {
    ApiError::bad_request(e.to_string())
}

/// Creates connections and lookups from an archive when missing (existing ones are left untouched).
pub fn merge_dependencies(data: &mut InstanceData, p: &ParsedIar, who: &str) {
    let now = Utc::now();
    let role_of = |code: &str| {
        p.connection_roles
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, r)| r.clone())
    };
    for c in &p.connections {
        data.connections
            .entry(c.code.clone())
            .or_insert_with(|| Connection {
                code: c.code.clone(),
                name: c.name.clone(),
                description: String::new(),
                status: ConnStatus::InProgress,
                role: role_of(&c.code).unwrap_or_else(|| c.role.clone()),
                adapter: c.adapter.clone(),
                security_policy: c.security_policy.clone(),
                connection_properties: c.properties.clone(),
                security_properties: Vec::new(),
                agent_group_id: None,
                locked_by: None,
                created: now,
                created_by: who.to_string(),
                last_updated: now,
                last_updated_by: who.to_string(),
            });
    }
    for l in &p.lookups {
        data.lookups
            .entry(l.name.clone())
            .or_insert_with(|| l.clone());
    }
}

/// Connection references of a parsed archive.
pub fn conn_refs(p: &ParsedIar) -> Vec<ConnRef> {
    if !p.connection_roles.is_empty() {
        p.connection_roles
            .iter()
            .map(|(code, role)| ConnRef {
                code: code.clone(),
                role: role.clone(),
            })
            .collect()
    } else {
        p.connections
            .iter()
            .map(|c| ConnRef {
                code: c.code.clone(),
                role: c.role.clone(),
            })
            .collect()
    }
}

/// Whether all connections of an integration are configured.
pub fn connections_ready(data: &InstanceData, refs: &[ConnRef]) -> bool {
    refs.iter().all(|c| {
        data.connections
            .get(&c.code)
            .is_some_and(|c| c.status == ConnStatus::Configured)
    })
}

/// Builds the integration of an imported archive.
pub fn integration_from_archive(
    data: &InstanceData,
    p: &ParsedIar,
    bytes: Bytes,
    who: &str,
    previous: Option<&Integration>,
) -> Integration {
    let now = Utc::now();
    let refs = conn_refs(p);
    let status = if connections_ready(data, &refs) {
        IntStatus::Configured
    } else {
        IntStatus::InProgress
    };
    Integration {
        code: p.code.clone(),
        version: p.version.clone(),
        name: p.name.clone(),
        description: p.description.clone(),
        status,
        pattern: p.pattern.clone(),
        pattern_description: if p.pattern == "Scheduled" {
            "Scheduled Orchestration".into()
        } else {
            "App Driven Orchestration".into()
        },
        style: p.style.clone(),
        locked_by: None,
        project_type: p.project_type.clone(),
        tracing: previous.is_some_and(|i| i.tracing),
        payload_tracing: previous.is_some_and(|i| i.payload_tracing),
        record_enabled: false,
        schedule: p.schedule.as_ref().map(|e| super::state::Schedule {
            expression: e.clone(),
            running: false,
        }),
        connections: refs,
        lookups: p.lookups.iter().map(|l| l.name.clone()).collect(),
        package_name: previous.map(|i| i.package_name.clone()).unwrap_or_default(),
        created: previous.map(|i| i.created).unwrap_or(now),
        created_by: previous
            .map(|i| i.created_by.clone())
            .unwrap_or_else(|| who.to_string()),
        last_updated: now,
        last_updated_by: who.to_string(),
        archive: ArchiveSource::Stored(bytes),
        activation_errors: Vec::new(),
    }
}

/// `POST /integrations/archive` (new; 204, 409 when it exists).
pub async fn import_new(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    mp: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    let r = req(&ctx, &headers, raw)?;
    let bytes = multipart_file(mp).await?;
    let p = archive::parse_iar(&bytes).map_err(archive_error)?;
    let mut data = r.inst.lock();
    let key = (p.code.clone(), p.version.clone());
    if let Some(existing) = data.integrations.get(&key) {
        return Err(ApiError::conflict(format!(
            "{} already exists. Use PUT to replace it.",
            label(existing)
        )));
    }
    merge_dependencies(&mut data, &p, &r.caller.principal);
    let i = integration_from_archive(&data, &p, bytes, &r.caller.principal, None);
    data.integrations.insert(key, i);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /integrations/archive` (replace; 200, 404 missing, 412 active, 423 locked).
pub async fn import_replace(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    mp: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    let r = req(&ctx, &headers, raw)?;
    let bytes = multipart_file(mp).await?;
    let p = archive::parse_iar(&bytes).map_err(archive_error)?;
    let mut data = r.inst.lock();
    let key = (p.code.clone(), p.version.clone());
    let Some(existing) = data.integrations.get(&key).cloned() else {
        return Err(ApiError::not_found(format!(
            "Integration '{}|{}' does not exist. Use POST to import it.",
            p.code, p.version
        )));
    };
    if matches!(
        existing.status,
        IntStatus::Activated | IntStatus::ActivationInProgress
    ) {
        return Err(ApiError::precondition(format!(
            "{} is active or is in the process of being activated. Deactivate it before replacing it.",
            label(&existing)
        )));
    }
    if let Some(by) = &existing.locked_by {
        return Err(ApiError::locked(format!(
            "{} is locked by {by}.",
            label(&existing)
        )));
    }
    merge_dependencies(&mut data, &p, &r.caller.principal);
    let i = integration_from_archive(&data, &p, bytes, &r.caller.principal, Some(&existing));
    let body = integration_json(&ctx.base_url, &i, &data, "");
    data.integrations.insert(key, i);
    Ok(json_ok(&body))
}

/// Body of the PATCH-override update (§3.3).
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateBody {
    status: Option<String>,
    tracing_enabled_flag: Option<bool>,
    payload_tracing_enabled_flag: Option<bool>,
    record_enabled_flag: Option<bool>,
}

/// Checks the method override header (`X-HTTP-Method-Override: PATCH`).
pub fn require_patch_override(headers: &HeaderMap) -> ApiResult<()> {
    let ov = headers
        .get("x-http-method-override")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ov.eq_ignore_ascii_case("PATCH") {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST on this resource requires the header X-HTTP-Method-Override: PATCH.",
        ))
    }
}

/// The activation response body (GH-RCH shape).
fn activation_body(i: &Integration) -> Value {
    json!({
        "apiDeploymentInprogress": false,
        "compatible": true,
        "links": [],
        "lockedFlag": i.locked_by.is_some(),
        "scheduleApplicableFlag": i.schedule.is_some(),
        "scheduleDefinedFlag": i.schedule.is_some(),
        "softDeactivated": false,
        "status": i.status.as_str(),
        "tempCopyExists": false,
        "totalEndPoints": i.connections.len(),
    })
}

/// Applies a status / flag update to an integration (shared with projects).
pub fn apply_update(
    inst: &Arc<Instance>,
    id: &str,
    body: &[u8],
    async_mode: bool,
    async_delay: Duration,
    who: &str,
) -> ApiResult<Value> {
    let upd: UpdateBody = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))?;
    let (code, version) = split_id(id)?;
    let key = (code, version);
    let mut data = inst.lock();
    let ready = {
        let i = data.integrations.get(&key).ok_or_else(|| not_found(id))?;
        connections_ready(&data, &i.connections)
    };
    let Some(i) = data.integrations.get_mut(&key) else {
        return Err(not_found(id));
    };
    let active = matches!(
        i.status,
        IntStatus::Activated | IntStatus::ActivationInProgress
    );
    match upd.status.as_deref() {
        Some("ACTIVATED") => {
            if active || i.status == IntStatus::InProgress || !ready || i.locked_by.is_some() {
                return Err(ApiError::precondition(format!(
                    "{} is either already active, activation in-progress or not ready for activation.",
                    label(i)
                )));
            }
            if let Some(v) = upd.tracing_enabled_flag {
                i.tracing = v;
            }
            if let Some(v) = upd.payload_tracing_enabled_flag {
                i.payload_tracing = v;
            }
            if let Some(v) = upd.record_enabled_flag {
                i.record_enabled = v;
            }
            i.status = if async_mode {
                IntStatus::ActivationInProgress
            } else {
                IntStatus::Activated
            };
            i.activation_errors.clear();
            i.last_updated = Utc::now();
            i.last_updated_by = who.to_string();
            let body = activation_body(i);
            let (code, major, version) = (i.code.clone(), i.major().to_string(), i.version.clone());
            // Minor-version rule: other versions of the same major are deactivated.
            for other in data.integrations.values_mut() {
                if other.code == code
                    && other.version != version
                    && other.major() == major
                    && matches!(
                        other.status,
                        IntStatus::Activated | IntStatus::ActivationInProgress
                    )
                {
                    other.status = IntStatus::Configured;
                }
            }
            drop(data);
            if async_mode {
                let inst = inst.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(async_delay).await;
                    let mut data = inst.lock();
                    if let Some(i) = data.integrations.get_mut(&key)
                        && i.status == IntStatus::ActivationInProgress
                    {
                        i.status = IntStatus::Activated;
                    }
                });
            }
            Ok(body)
        }
        Some("CONFIGURED") => {
            if !active && i.status != IntStatus::FailedActivation {
                return Err(ApiError::precondition(format!(
                    "{} is not activated and cannot be deactivated.",
                    label(i)
                )));
            }
            i.status = IntStatus::Configured;
            i.last_updated = Utc::now();
            i.last_updated_by = who.to_string();
            if let Some(s) = i.schedule.as_mut() {
                s.running = false;
            }
            Ok(activation_body(i))
        }
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid status '{other}'. Use ACTIVATED or CONFIGURED."
        ))),
        None => {
            if active {
                return Err(ApiError::precondition(
                    "Failed to save integration configuration because it is active or is in the process of being activated.",
                ));
            }
            if let Some(v) = upd.tracing_enabled_flag {
                i.tracing = v;
            }
            if let Some(v) = upd.payload_tracing_enabled_flag {
                i.payload_tracing = v;
            }
            if let Some(v) = upd.record_enabled_flag {
                i.record_enabled = v;
            }
            i.last_updated = Utc::now();
            i.last_updated_by = who.to_string();
            Ok(activation_body(i))
        }
    }
}

/// `POST /integrations/{id}` + `X-HTTP-Method-Override: PATCH` (also plain `PATCH`).
pub async fn update(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    method: axum::http::Method,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> ApiResult<Response> {
    let r = req(&ctx, &headers, raw)?;
    if method != axum::http::Method::PATCH {
        require_patch_override(&headers)?;
    }
    let delay = Duration::from_millis(ctx.shared.async_activation_ms.load(Ordering::Relaxed));
    let body = apply_update(
        &r.inst,
        &id,
        &body,
        r.params.flag("enableAsyncActivationMode"),
        delay,
        &r.caller.principal,
    )?;
    Ok(json_ok(&body))
}

/// `GET /integrations/{id}/activationStatus`.
pub async fn activation_status(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let r = req(&ctx, &headers, raw)?;
    let (code, version) = split_id(&id)?;
    let data = r.inst.lock();
    let i = data
        .integrations
        .get(&(code, version))
        .ok_or_else(|| not_found(&id))?;
    Ok(json_ok(&json!({ "activationStatus": i.status.as_str() })))
}
