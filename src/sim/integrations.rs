//! Integrations (§3, and the project variants of §4.3): list, get, export, import (POST/PUT), update /
//! activate / deactivate, activation status and errors, delete, schedule, re-activate batch.
//!
//! Every handler works on a "space": the instance's global integrations or a project's (`/projects/{p}/...`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Multipart;
use axum::extract::multipart::MultipartRejection;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::Utc;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::{Value, json};

use super::archive::{self, ArchiveError, ParsedIar};
use super::error::{ApiError, ApiResult};
use super::extract::{Api, space};
use super::query::parse_q;
use super::state::{
    ArchiveSource, ConnRef, ConnStatus, Connection, Instance, InstanceData, IntStatus, Integration,
    ScheduleState, oic_date,
};

/// A JSON 200 response with `Content-Type: application/json`.
pub fn json_ok(v: &Value) -> Response {
    json_status(StatusCode::OK, v)
}

/// A JSON response with a status.
pub fn json_status(status: StatusCode, v: &Value) -> Response {
    json_text(status, v.to_string())
}

/// A JSON response from its text.
fn json_text(status: StatusCode, text: String) -> Response {
    let mut r = (status, text).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

/// A JSON response from its bytes (`Content-Type: application/json`).
pub fn json_bytes(status: StatusCode, text: Bytes) -> Response {
    let mut r = (status, text).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

/// An empty 200 response.
pub fn empty_ok() -> Response {
    StatusCode::OK.into_response()
}

/// Characters escaped in ids inside links: controls, space, `|` and URL delimiters.
const ID_ESCAPE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'|')
    .add(b'/')
    .add(b'?')
    .add(b'#')
    .add(b'%')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'&')
    .add(b'+');

/// Percent-encodes an id for use in a link (`HELLO_WORLD|01.00.0000` → `HELLO_WORLD%7C01.00.0000`).
pub fn enc(id: &str) -> String {
    utf8_percent_encode(id, ID_ESCAPE).to_string()
}

/// Splits `CODE|VERSION` (404 when there is no `|`).
pub fn split_id(id: &str) -> ApiResult<(String, String)> {
    match id.split_once('|') {
        Some((c, v)) if !c.is_empty() && !v.is_empty() => {
            Ok((c.trim().to_string(), v.trim().to_string()))
        }
        _ => Err(not_found(id)),
    }
}

/// `Integration 'CODE | 1.0'` as OIC writes it in messages.
pub fn label(i: &Integration) -> String {
    format!("Integration '{} | {}'", i.code, i.short_version())
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Integration '{id}' not found."))
}

/// Whether the status counts as active (for 412 rules).
pub fn is_active(s: IntStatus) -> bool {
    matches!(
        s,
        IntStatus::Activated | IntStatus::ActivationInProgress | IntStatus::DeactivationInProgress
    )
}

/// The adapter of a connection used by `i` (`rest` when unknown).
fn adapter_of<'a>(data: &'a InstanceData, code: &str) -> &'a str {
    data.connections
        .get(code)
        .map(|c| c.adapter.as_str())
        .unwrap_or("rest")
}

/// Whether the integration is triggered by a REST connection (it then has a runtime endpoint).
fn rest_triggered(i: &Integration, data: &InstanceData) -> bool {
    i.pattern != "Scheduled"
        && i.connections
            .iter()
            .any(|c| c.role.starts_with("SOURCE") && adapter_of(data, &c.code) == "rest")
}

/// `smartTags` as recorded: `app:<adapter>, app:<adapter>,style:<style>`.
fn smart_tags(i: &Integration, data: &InstanceData) -> String {
    let apps: Vec<String> = i
        .connections
        .iter()
        .map(|c| format!("app:{}", adapter_of(data, &c.code)))
        .collect();
    let style = if i.pattern == "Scheduled" {
        "style:scheduled orchestration"
    } else {
        "style:app driven orchestration"
    };
    if apps.is_empty() {
        style.to_string()
    } else {
        format!("{},{style}", apps.join(", "))
    }
}

/// The three `trackingVariables` of an integration (the recorded shape; the first is the primary one).
fn tracking_variables(i: &Integration, data: &InstanceData) -> [TrackingVar; 3] {
    let (name, xpath) = if i.pattern == "Scheduled" {
        ("start Time", "/schedule/startTime")
    } else if rest_triggered(i, data) {
        ("id", "/execute/QueryParameters/id")
    } else {
        ("tracking_var_1", "")
    };
    let var = |n: usize, name: &'static str, xpath: &'static str| TrackingVar {
        message_context_ref: ContextRef {
            property: [],
            ref_uri: "messagecontext_1".into(),
        },
        name,
        output: TrackingOutput {
            message_context_ref: ContextRef {
                property: [],
                ref_uri: format!("messagecontext_{}", 2 * n),
            },
            name: format!("output_{}", 2 * n + 1),
        },
        primary: n == 1,
        property: [],
        role: format!("tracking_var_{n}"),
        xpath,
    };
    [
        var(1, name, xpath),
        var(2, "tracking_var_2", ""),
        var(3, "tracking_var_3", ""),
    ]
}

// The integration resource, typed: a list page is serialized straight to text, without building a
// `Value` per item (that cost 40 µs an item and made the list the emulator's bottleneck). Fields
// are declared in the byte order of their JSON keys, the order a `Value` prints them in, so both
// paths give the same text.

#[derive(serde::Serialize)]
struct Link {
    href: String,
    rel: &'static str,
}

fn links(href: &str) -> [Link; 2] {
    [
        Link {
            href: href.to_string(),
            rel: "self",
        },
        Link {
            href: href.to_string(),
            rel: "canonical",
        },
    ]
}

#[derive(serde::Serialize)]
struct AdapterType<'a> {
    #[serde(rename = "displayName")]
    display_name: String,
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// The `connection` object of an integration's `endPoints[]` (recorded key set; with
/// `expand=connection` also the adapter, policy, status and name).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct EndPointConnection<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    adapter_type: Option<AdapterType<'a>>,
    agent_required: bool,
    agent_supported: bool,
    id: &'a str,
    links: [Link; 2],
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    private_endpoint: bool,
    private_endpoint_supported: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    security_policy: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    test_status: bool,
}

#[derive(serde::Serialize)]
struct EndPoint<'a> {
    connection: EndPointConnection<'a>,
    name: &'a str,
    role: &'a str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ContextRef {
    property: [u8; 0],
    ref_uri: String,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct TrackingOutput {
    message_context_ref: ContextRef,
    name: String,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct TrackingVar {
    message_context_ref: ContextRef,
    name: &'static str,
    output: TrackingOutput,
    primary: bool,
    property: [u8; 0],
    role: String,
    xpath: &'static str,
}

/// A collection envelope as [`super::query::envelope`] prints it.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ListPage<T> {
    has_more: bool,
    items: Vec<T>,
    limit: usize,
    links: [Link; 2],
    total_results: usize,
}

/// One integration as a list item (see [`integration_json`]).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationView<'a> {
    code: &'a str,
    compatible: bool,
    created: String,
    created_by: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(rename = "endPointURI", skip_serializing_if = "Option::is_none")]
    end_point_uri: Option<String>,
    end_points: Vec<EndPoint<'a>>,
    id: String,
    is_clone_allowed: bool,
    is_view_allowed: bool,
    keywords: &'static str,
    last_updated: String,
    last_updated_by: &'a str,
    links: [Link; 2],
    #[serde(skip_serializing_if = "Option::is_none")]
    locked_by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    locked_date: Option<String>,
    locked_flag: bool,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    package_name: Option<&'a str>,
    pattern: &'a str,
    pattern_description: &'a str,
    payload_tracing_enabled_flag: bool,
    percentage_complete: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    project_code: Option<&'a str>,
    project_type: &'a str,
    record_enabled_flag: bool,
    schedule_applicable_flag: bool,
    schedule_defined_flag: bool,
    scope: &'static str,
    smart_tags: String,
    status: &'static str,
    style: &'a str,
    style_description: &'static str,
    temp_copy_exists: bool,
    total_end_points: u32,
    tracing_enabled_flag: bool,
    tracking_variables: [TrackingVar; 3],
    version: &'a str,
}

/// The typed list item of `i` (what [`integration_json`] returns, before it becomes a `Value`).
pub fn integration_view<'a>(
    prefix: &str,
    i: &'a Integration,
    data: &'a InstanceData,
    expand: &str,
) -> IntegrationView<'a> {
    let id = i.id();
    let href = format!("{prefix}/integrations/{}", enc(&id));
    let expand_conn = expand.contains("connection");
    let end_points = i
        .connections
        .iter()
        .map(|c| {
            let full = data.connections.get(&c.code).filter(|_| expand_conn);
            EndPoint {
                connection: EndPointConnection {
                    adapter_type: full.map(|f| AdapterType {
                        display_name: f.adapter.to_uppercase(),
                        name: &f.adapter,
                        kind: "PREINSTALLED",
                    }),
                    agent_required: false,
                    agent_supported: false,
                    id: &c.code,
                    links: links(&format!("{prefix}/connections/{}", enc(&c.code))),
                    name: full.map(|f| f.name.as_str()),
                    private_endpoint: false,
                    private_endpoint_supported: false,
                    security_policy: full.map(|f| f.security_policy.as_str()),
                    status: full.map(|f| f.status.as_str()),
                    test_status: false,
                },
                name: &c.code,
                role: &c.role,
            }
        })
        .collect();
    let prebuilt = i.project_type != "DEVELOPED";
    let end_point_uri = if i.pattern == "Scheduled" {
        Some(format!("{href}/schedule/jobs"))
    } else if rest_triggered(i, data) {
        let runtime = prefix.split("/ic/api").next().unwrap_or(prefix);
        Some(format!(
            "{runtime}/ic/api/integration/v1/flows/rest/{}/{}/metadata",
            i.code,
            i.short_version()
        ))
    } else {
        None
    };
    IntegrationView {
        code: &i.code,
        compatible: true,
        created: oic_date(&i.created),
        created_by: &i.created_by,
        description: Some(i.description.as_str()).filter(|d| !d.is_empty()),
        end_point_uri,
        end_points,
        id,
        is_clone_allowed: prebuilt,
        is_view_allowed: prebuilt,
        keywords: "",
        last_updated: oic_date(&i.last_updated),
        last_updated_by: &i.last_updated_by,
        links: links(&href),
        locked_by: i.locked_by.as_deref(),
        locked_date: i.locked_by.as_ref().map(|_| oic_date(&i.last_updated)),
        locked_flag: i.locked_by.is_some(),
        name: &i.name,
        package_name: Some(i.package_name.as_str()).filter(|p| !p.is_empty()),
        pattern: &i.pattern,
        pattern_description: &i.pattern_description,
        payload_tracing_enabled_flag: i.payload_tracing,
        percentage_complete: if i.status == IntStatus::InProgress {
            60
        } else {
            100
        },
        project_code: i.project.as_deref(),
        project_type: &i.project_type,
        record_enabled_flag: i.record_enabled,
        schedule_applicable_flag: i.pattern == "Scheduled",
        schedule_defined_flag: i.schedule.is_some(),
        scope: "Private",
        smart_tags: smart_tags(i, data),
        status: i.status.as_str(),
        style: &i.style,
        style_description: "Orchestration",
        temp_copy_exists: false,
        total_end_points: 0,
        tracing_enabled_flag: i.tracing,
        tracking_variables: tracking_variables(i, data),
        version: &i.version,
    }
}

/// The integration resource as recorded on OIC 3 (list items; [`integration_get_json`] adds the GET-only keys).
/// `prefix` is `{base}{API}` or the project prefix. Keys without a value (`description`, `lockedBy`,
/// `packageName`, `endPointURI`) are absent, as recorded.
pub fn integration_json(prefix: &str, i: &Integration, data: &InstanceData, expand: &str) -> Value {
    serde_json::to_value(integration_view(prefix, i, data, expand)).unwrap_or(Value::Null)
}

/// `GET /integrations/{id}`: the list item plus `activationStatus` and `dependencies` (documented; the
/// recordings hold no single-integration GET).
pub fn integration_get_json(
    prefix: &str,
    i: &Integration,
    data: &InstanceData,
    expand: &str,
) -> Value {
    let mut v = integration_json(prefix, i, data, expand);
    let deps: Vec<Value> = i
        .connections
        .iter()
        .map(|c| {
            let conn = data.connections.get(&c.code);
            json!({
                "id": c.code,
                "name": conn.map(|c| c.name.clone()).unwrap_or_else(|| c.code.clone()),
                "role": c.role,
                "status": conn.map(|c| c.status.as_str()).unwrap_or("INPROGRESS"),
                "type": adapter_of(data, &c.code),
                "usage": data.integrations.values().filter(|o| o.connections.iter().any(|x| x.code == c.code)).count(),
            })
        })
        .collect();
    let lookups: Vec<Value> = i
        .lookups
        .iter()
        .map(|l| json!({ "name": l, "id": l }))
        .collect();
    v["activationStatus"] = json!(i.status.as_str());
    v["dependencies"] =
        json!({ "connections": deps, "lookups": lookups, "libraries": [], "certificates": [] });
    v
}

/// Query keys accepted by `q` on integration lists.
pub const Q_KEYS: &[&str] = &[
    "name", "code", "status", "type", "style", "version", "pattern",
];

/// `GET /integrations`, `GET /projects/{p}/integrations`.
pub async fn list(api: Api) -> ApiResult<Response> {
    let (offset, limit) = api.params.paging()?;
    let conds = parse_q(api.params.get("q"), Q_KEYS)?;
    let expand = api.params.get("expand").unwrap_or("").to_string();
    let order = api.params.get("orderBy").unwrap_or("");
    // A page already rendered in this generation of the instance is sent again as it was.
    let prefix = api.prefix();
    let key = format!(
        "integrations\n{prefix}\n{offset}\n{limit}\n{}\n{expand}\n{order}",
        api.params.get("q").unwrap_or("")
    );
    if let Some(page) = api.inst.cached_page(&key) {
        return Ok(json_bytes(StatusCode::OK, page));
    }
    let (mut g, generation) = api.inst.read();
    let data = space(&mut g, api.project())?;
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
    match order {
        "" => {}
        "name" => items.sort_by(|a, b| {
            a.name
                .to_lowercase()
                .cmp(&b.name.to_lowercase())
                .then(a.version.cmp(&b.version))
        }),
        "time" => items.sort_by_key(|i| std::cmp::Reverse(i.last_updated)),
        o => {
            return Err(ApiError::bad_request(format!(
                "Invalid orderBy '{o}'. Use name or time."
            )));
        }
    }
    // only the page is rendered, typed, straight to text (the envelope of `query::envelope`)
    let total = items.len();
    let page: Vec<IntegrationView> = items
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|i| integration_view(&prefix, i, data, &expand))
        .collect();
    let body = ListPage {
        has_more: offset.saturating_add(page.len()) < total,
        items: page,
        limit,
        links: links(&format!("{prefix}/integrations")),
        total_results: total,
    };
    let text = serde_json::to_vec(&body)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    drop(g);
    let page = Bytes::from(text);
    api.inst.cache_page(generation, key, page.clone());
    Ok(json_bytes(StatusCode::OK, page))
}

/// `GET /integrations/{id}`.
pub async fn get(api: Api) -> ApiResult<Response> {
    let (code, version) = split_id(api.id())?;
    let expand = api.params.get("expand").unwrap_or("").to_string();
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    let i = data
        .integrations
        .get(&(code, version))
        .ok_or_else(|| not_found(api.id()))?;
    Ok(json_ok(&integration_get_json(
        &api.prefix(),
        i,
        data,
        &expand,
    )))
}

/// The export content of an integration: stored bytes, or the inputs to generate them.
pub enum ExportSource {
    /// Bytes as imported.
    Stored(Bytes),
    /// A spooled upload on disk.
    File(std::path::PathBuf),
    /// Generate from the model.
    Generated {
        /// Integration snapshot.
        integration: Box<Integration>,
        /// Its connections.
        connections: Vec<Connection>,
        /// Its lookups.
        lookups: Vec<super::state::Lookup>,
        /// Extra resource bytes.
        padding: u64,
    },
}

/// Looks up what to export (404 / 423 checks).
pub fn export_source(data: &InstanceData, id: &str) -> ApiResult<(String, ExportSource)> {
    let (code, version) = split_id(id)?;
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
    let src = match &i.archive {
        ArchiveSource::Stored(b) => ExportSource::Stored(b.clone()),
        ArchiveSource::Spilled(p) => ExportSource::File(p.clone()),
        ArchiveSource::Generated { padding } => ExportSource::Generated {
            integration: Box::new(i.clone()),
            connections: i
                .connections
                .iter()
                .filter_map(|c| data.connections.get(&c.code).cloned())
                .collect(),
            lookups: i
                .lookups
                .iter()
                .filter_map(|l| data.lookups.get(l).cloned())
                .collect(),
            padding: *padding,
        },
    };
    Ok((file, src))
}

/// The bytes of an export source (in memory; see [`super::stream`] for large generated archives).
pub fn export_source_bytes(src: ExportSource) -> ApiResult<Bytes> {
    match src {
        // Re-packed with fresh time stamps, as every real export is made anew (content unchanged).
        ExportSource::Stored(b) if archive::stamped_exports() => {
            Ok(archive::restamp_zip(&b).map(Bytes::from).unwrap_or(b))
        }
        ExportSource::Stored(b) => Ok(b),
        ExportSource::File(p) => std::fs::read(&p).map(Bytes::from).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Reading the archive failed: {e}"),
            )
        }),
        ExportSource::Generated {
            integration,
            connections,
            lookups,
            padding,
        } => archive::build_iar(&integration, &connections, &lookups, padding)
            .map(Bytes::from)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
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
    if let Ok(v) = header::HeaderValue::from_str(&format!("attachment; filename={file}")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// `GET /integrations/{id}/archive`.
pub async fn export(api: Api) -> ApiResult<Response> {
    let (file, src) = {
        let mut g = api.inst.lock();
        let data = space(&mut g, api.project())?;
        export_source(data, api.id())?
    };
    let body = super::stream::export_body(src, &api.ctx.shared)?;
    Ok(octet_stream(&file, body))
}

/// Reads the `file` part of a multipart upload (400 when missing).
pub async fn multipart_file(mp: Result<Multipart, MultipartRejection>) -> ApiResult<Bytes> {
    Ok(multipart_fields(mp).await?.0)
}

/// Reads a multipart upload: the `file` part (400 when missing) and the other text fields.
pub async fn multipart_fields(
    mp: Result<Multipart, MultipartRejection>,
) -> ApiResult<(Bytes, Vec<(String, String)>)> {
    let Ok(mut mp) = mp else {
        return Err(ApiError::bad_request(
            "A multipart/form-data body with a 'file' part is required.",
        ));
    };
    let mut file = None;
    let mut fields = Vec::new();
    loop {
        match mp.next_field().await {
            Ok(Some(f)) => {
                let name = f.name().unwrap_or("").to_string();
                let b = f.bytes().await.map_err(|e| {
                    ApiError::bad_request(format!("Could not read the multipart body: {e}"))
                })?;
                if name == "file" {
                    file = Some(b);
                } else {
                    fields.push((name, String::from_utf8_lossy(&b).to_string()));
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
    let file =
        file.ok_or_else(|| ApiError::bad_request("The multipart part 'file' is missing."))?;
    Ok((file, fields))
}

/// Uploads larger than this are spooled to disk instead of being held in memory.
pub const SPILL_ABOVE: usize = 8 * 1024 * 1024;

/// Reads the `file` part of an `.iar` upload, spooling large ones to disk, and validates it (parsing a spooled
/// file streams it). Returns the parsed archive and where its bytes now live.
pub async fn upload_iar(
    mp: Result<Multipart, MultipartRejection>,
    shared: &super::state::Shared,
) -> ApiResult<(ParsedIar, ArchiveSource)> {
    let Ok(mut mp) = mp else {
        return Err(ApiError::bad_request(
            "A multipart/form-data body with a 'file' part is required.",
        ));
    };
    let read_err = |e: axum::extract::multipart::MultipartError| {
        ApiError::bad_request(format!("Could not read the multipart body: {e}"))
    };
    let io_err = |e: std::io::Error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Spooling the upload failed: {e}"),
        )
    };
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => {
                return Err(ApiError::bad_request(
                    "The multipart part 'file' is missing.",
                ));
            }
            Err(e) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid multipart body: {e}"
                )));
            }
        };
        if field.name() != Some("file") {
            continue;
        }
        let mut field = field;
        let mut mem: Vec<u8> = Vec::new();
        let mut spool: Option<(std::path::PathBuf, tokio::fs::File)> = None;
        while let Some(chunk) = field.chunk().await.map_err(read_err)? {
            use tokio::io::AsyncWriteExt;
            match spool.as_mut() {
                Some((_, f)) => f.write_all(&chunk).await.map_err(io_err)?,
                None => {
                    mem.extend_from_slice(&chunk);
                    if mem.len() > SPILL_ABOVE {
                        let path = shared.spool_path();
                        let mut f = tokio::fs::File::create(&path).await.map_err(io_err)?;
                        f.write_all(&mem).await.map_err(io_err)?;
                        mem = Vec::new();
                        spool = Some((path, f));
                    }
                }
            }
        }
        return match spool {
            None => {
                let bytes = Bytes::from(mem);
                let p = archive::parse_iar(&bytes).map_err(archive_error)?;
                Ok((p, ArchiveSource::Stored(bytes)))
            }
            Some((path, mut f)) => {
                use tokio::io::AsyncWriteExt;
                f.flush().await.map_err(io_err)?;
                drop(f);
                let p2 = path.clone();
                let parsed = tokio::task::spawn_blocking(move || {
                    let f = std::fs::File::open(&p2)
                        .map_err(|e| ArchiveError::NotZip(e.to_string()))?;
                    archive::parse_iar_reader(std::io::BufReader::new(f))
                })
                .await
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
                match parsed {
                    Ok(p) => Ok((p, ArchiveSource::Spilled(path))),
                    Err(e) => {
                        let _ = std::fs::remove_file(&path);
                        Err(archive_error(e))
                    }
                }
            }
        };
    }
}

/// Maps archive errors to 400.
pub fn archive_error(e: ArchiveError) -> ApiError {
    ApiError::bad_request(e.to_string())
}

/// Creates connections and lookups from an archive when missing (existing ones are left untouched).
pub fn merge_dependencies(data: &mut InstanceData, p: &ParsedIar, who: &str) {
    let now = Utc::now();
    for c in &p.connections {
        let role = p
            .connection_roles
            .iter()
            .find(|(code, _)| code == &c.code)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| c.role.clone());
        data.connections
            .entry(c.code.clone())
            .or_insert_with(|| Connection {
                code: c.code.clone(),
                name: c.name.clone(),
                description: String::new(),
                status: ConnStatus::InProgress,
                role,
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
    for (code, role) in &p.connection_roles {
        // A flow references a connection that is not in appinstances/: create a bare draft.
        data.connections
            .entry(code.clone())
            .or_insert_with(|| Connection {
                code: code.clone(),
                name: code.clone(),
                description: String::new(),
                status: ConnStatus::InProgress,
                role: role.clone(),
                adapter: "rest".into(),
                security_policy: "NONE".into(),
                connection_properties: Vec::new(),
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

/// Moves non-draft `INPROGRESS` integrations whose connections are now all configured to `CONFIGURED`.
pub fn refresh_statuses(data: &mut InstanceData) {
    let ready: Vec<(String, String)> = data
        .integrations
        .iter()
        .filter(|(_, i)| {
            i.status == IntStatus::InProgress && !i.draft && connections_ready(data, &i.connections)
        })
        .map(|(k, _)| k.clone())
        .collect();
    for k in ready {
        if let Some(i) = data.integrations.get_mut(&k) {
            i.status = IntStatus::Configured;
        }
    }
}

/// Builds the integration of an imported archive.
pub fn integration_from_archive(
    data: &InstanceData,
    p: &ParsedIar,
    archive: ArchiveSource,
    who: &str,
    previous: Option<&Integration>,
    project: Option<&str>,
) -> Integration {
    let now = Utc::now();
    let refs = conn_refs(p);
    let status = if !p.draft && connections_ready(data, &refs) {
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
        pattern_description: p.pattern.clone(),
        style: if p.style.is_empty() {
            "FREEFORM".into()
        } else {
            p.style.clone()
        },
        locked_by: None,
        project_type: p.project_type.clone(),
        tracing: previous.is_some_and(|i| i.tracing),
        payload_tracing: previous.is_some_and(|i| i.payload_tracing),
        record_enabled: false,
        // An imported schedule is stopped (CANCELLED); a replace without one keeps the previous definition.
        schedule: p
            .schedule
            .clone()
            .map(|mut s| {
                s.created = now;
                s.created_by = who.to_string();
                s.updated = now;
                s.updated_by = who.to_string();
                s
            })
            .or_else(|| previous.and_then(|i| i.schedule.clone()))
            .map(|mut s| {
                s.state = ScheduleState::Cancelled;
                s.active_since = None;
                s
            }),
        runs: previous.map(|i| i.runs.clone()).unwrap_or_default(),
        connections: refs,
        lookups: p.lookups.iter().map(|l| l.name.clone()).collect(),
        package_name: previous.map(|i| i.package_name.clone()).unwrap_or_default(),
        created: previous.map(|i| i.created).unwrap_or(now),
        created_by: previous
            .map(|i| i.created_by.clone())
            .unwrap_or_else(|| who.to_string()),
        last_updated: now,
        last_updated_by: who.to_string(),
        archive,
        activation_errors: Vec::new(),
        draft: p.draft,
        project: project.map(str::to_string),
        calls: p.calls.clone(),
    }
}

/// Imports a parsed IAR as new into a space (409 when it exists).
pub fn import_new_into(
    data: &mut InstanceData,
    p: &ParsedIar,
    archive: ArchiveSource,
    who: &str,
    project: Option<&str>,
) -> ApiResult<()> {
    let key = (p.code.clone(), p.version.clone());
    if let Some(existing) = data.integrations.get(&key) {
        return Err(ApiError::conflict(format!(
            "{} already exists. Use PUT to replace it.",
            label(existing)
        )));
    }
    merge_dependencies(data, p, who);
    let i = integration_from_archive(data, p, archive, who, None, project);
    data.integrations.insert(key, i);
    Ok(())
}

/// [`upload_iar`] read and parsed while the request's simulated latency runs, returned once the
/// latency has passed, so that the caller changes the instance after it (see `LatencyGate`).
async fn upload_within_latency(
    mp: Result<Multipart, MultipartRejection>,
    shared: &super::state::Shared,
    gate: Option<axum::Extension<super::faults::LatencyGate>>,
) -> ApiResult<(ParsedIar, ArchiveSource)> {
    let upload = upload_iar(mp, shared).await;
    if let Some(axum::Extension(g)) = gate {
        g.wait().await;
    }
    upload
}

/// `POST /integrations/archive` (new; 204, 409 when it exists).
pub async fn import_new(
    api: Api,
    gate: Option<axum::Extension<super::faults::LatencyGate>>,
    mp: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    let (p, src) = upload_within_latency(mp, &api.ctx.shared, gate).await?;
    let mut g = api.inst.lock();
    let project = api.project().map(str::to_string);
    let data = space(&mut g, project.as_deref())?;
    import_new_into(data, &p, src, api.who(), project.as_deref())?;
    // Documented: "the Location header provides the URI for the newly created integration".
    let mut r = StatusCode::NO_CONTENT.into_response();
    let loc = format!(
        "{}/integrations/{}{}",
        api.prefix(),
        enc(&format!("{}|{}", p.code, p.version)),
        api.instance_query()
    );
    if let Ok(v) = header::HeaderValue::from_str(&loc) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// `PUT /integrations/archive` (replace; 200, 404 missing, 412 active, 423 locked).
pub async fn import_replace(
    api: Api,
    gate: Option<axum::Extension<super::faults::LatencyGate>>,
    mp: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    let (p, src) = upload_within_latency(mp, &api.ctx.shared, gate).await?;
    let mut g = api.inst.lock();
    let project = api.project().map(str::to_string);
    let data = space(&mut g, project.as_deref())?;
    let key = (p.code.clone(), p.version.clone());
    let Some(existing) = data.integrations.get(&key).cloned() else {
        return Err(ApiError::not_found(format!(
            "Integration '{}|{}' does not exist. Use POST to import it.",
            p.code, p.version
        )));
    };
    if is_active(existing.status) {
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
    merge_dependencies(data, &p, api.who());
    let i = integration_from_archive(
        data,
        &p,
        src,
        api.who(),
        Some(&existing),
        project.as_deref(),
    );
    let body = integration_get_json(&api.prefix(), &i, data, "");
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

/// Checks the method override header (`X-HTTP-Method-Override: PATCH`); a real PATCH passes too.
pub fn require_patch_override(method: &Method, headers: &HeaderMap) -> ApiResult<()> {
    if method == Method::PATCH {
        return Ok(());
    }
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
        "compatible": false,
        "links": [],
        "lockedFlag": i.locked_by.is_some(),
        "scheduleApplicableFlag": i.pattern == "Scheduled",
        "scheduleDefinedFlag": i.schedule.is_some(),
        "status": i.status.as_str(),
        "tempCopyExists": false,
        "totalEndPoints": 0,
    })
}

fn not_ready(i: &Integration) -> ApiError {
    ApiError::precondition(format!(
        "{} is either already active, activation in-progress or not ready for activation.",
        label(i)
    ))
}

/// Activates `key` in `data` (412 rules; minor-version rule). Returns whether the caller must finish an async
/// activation.
pub fn activate(
    data: &mut InstanceData,
    key: &(String, String),
    async_mode: bool,
    who: &str,
) -> ApiResult<()> {
    let ready = {
        let i = data
            .integrations
            .get(key)
            .ok_or_else(|| not_found(&format!("{}|{}", key.0, key.1)))?;
        connections_ready(data, &i.connections)
    };
    let Some(i) = data.integrations.get_mut(key) else {
        return Err(not_found(&format!("{}|{}", key.0, key.1)));
    };
    if is_active(i.status) || i.status == IntStatus::InProgress || !ready || i.locked_by.is_some() {
        return Err(not_ready(i));
    }
    i.status = if async_mode {
        IntStatus::ActivationInProgress
    } else {
        IntStatus::Activated
    };
    i.activation_errors.clear();
    i.last_updated = Utc::now();
    i.last_updated_by = who.to_string();
    let (code, major, version) = (i.code.clone(), i.major().to_string(), i.version.clone());
    for other in data.integrations.values_mut() {
        if other.code == code
            && other.version != version
            && other.major() == major
            && is_active(other.status)
        {
            other.status = IntStatus::Configured;
        }
    }
    Ok(())
}

/// Marks an activation as failed (`FAILEDACTIVATION` with one activation error).
pub fn fail_activation(i: &mut Integration) {
    i.status = IntStatus::FailedActivation;
    i.activation_errors = vec![(
        "ICS-10556".to_string(),
        format!(
            "{} could not be activated: the endpoint of connection '{}' could not be deployed (injected fault).",
            label(i),
            i.connections
                .first()
                .map(|c| c.code.as_str())
                .unwrap_or("-")
        ),
    )];
}

/// Finishes an async activation (as `FAILEDACTIVATION` when `fail`; with `traffic` instances once active) or
/// deactivation after `delay` of the emulator's clock.
pub fn finish_async(
    shared: Arc<super::state::Shared>,
    inst: Arc<Instance>,
    project: Option<String>,
    key: (String, String),
    delay: Duration,
    fail: bool,
    traffic: Option<(u64, f64)>,
) {
    tokio::spawn(async move {
        // On the emulator's clock: a test advances it rather than waiting.
        shared.clock.sleep(delay).await;
        let mut g = inst.lock();
        if let Ok(data) = space(&mut g, project.as_deref())
            && let Some(i) = data.integrations.get_mut(&key)
        {
            if i.status == IntStatus::ActivationInProgress {
                if fail {
                    fail_activation(i);
                } else {
                    i.status = IntStatus::Activated;
                    if let Some((n, rate)) = traffic {
                        super::monitoring::add_instances(i, n, rate, Utc::now());
                    }
                }
            } else if i.status == IntStatus::DeactivationInProgress {
                i.status = IntStatus::Configured;
            }
        }
    });
}

/// Applies a status / flag update (§3.3) to integration `id` of a space.
pub fn apply_update(
    data: &mut InstanceData,
    id: &str,
    body: &[u8],
    async_mode: bool,
    who: &str,
    tick: super::schedules::Tick,
) -> ApiResult<Value> {
    let upd: UpdateBody = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))?;
    let key = split_id(id)?;
    if !data.integrations.contains_key(&key) {
        return Err(not_found(id));
    }
    let set_flags = |i: &mut Integration| {
        if let Some(v) = upd.tracing_enabled_flag {
            i.tracing = v;
        }
        if let Some(v) = upd.payload_tracing_enabled_flag {
            i.payload_tracing = v;
        }
        if let Some(v) = upd.record_enabled_flag {
            i.record_enabled = v;
        }
    };
    match upd.status.as_deref() {
        Some("ACTIVATED") => {
            activate(data, &key, async_mode, who)?;
            let i = data
                .integrations
                .get_mut(&key)
                .ok_or_else(|| not_found(id))?;
            set_flags(i);
            Ok(activation_body(i))
        }
        Some("CONFIGURED") => {
            let i = data
                .integrations
                .get_mut(&key)
                .ok_or_else(|| not_found(id))?;
            if !matches!(
                i.status,
                IntStatus::Activated
                    | IntStatus::ActivationInProgress
                    | IntStatus::FailedActivation
            ) {
                return Err(ApiError::precondition(format!(
                    "{} is not activated and cannot be deactivated.",
                    label(i)
                )));
            }
            i.status = if async_mode {
                IntStatus::DeactivationInProgress
            } else {
                IntStatus::Configured
            };
            i.last_updated = Utc::now();
            i.last_updated_by = who.to_string();
            super::schedules::stop_running(i, tick);
            set_flags(i);
            Ok(activation_body(i))
        }
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid status '{other}'. Use ACTIVATED or CONFIGURED."
        ))),
        None => {
            let i = data
                .integrations
                .get_mut(&key)
                .ok_or_else(|| not_found(id))?;
            if is_active(i.status) {
                return Err(ApiError::precondition(
                    "Failed to save integration configuration because it is active or is in the process of being activated.",
                ));
            }
            set_flags(i);
            i.last_updated = Utc::now();
            i.last_updated_by = who.to_string();
            Ok(activation_body(i))
        }
    }
}

/// `POST /integrations/{id}` + `X-HTTP-Method-Override: PATCH` (also plain `PATCH`).
pub async fn update(
    api: Api,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    require_patch_override(&method, &headers)?;
    let async_mode = api.params.flag("enableAsyncActivationMode");
    let delay = Duration::from_millis(api.ctx.shared.async_activation_ms.load(Ordering::Relaxed));
    let project = api.project().map(str::to_string);
    let key = split_id(api.id())?;
    let faults = api.ctx.shared.faults.get();
    let fail = faults.fail_activation.iter().any(|f| f == api.id());
    let traffic = faults
        .traffic_for(&key.0, &key.1)
        .map(|r| (r.instances, r.error_rate));
    let out = {
        let mut g = api.inst.lock();
        let data = space(&mut g, project.as_deref())?;
        let tick = super::schedules::tick(&api.ctx.shared);
        let mut out = apply_update(data, api.id(), &body, async_mode, api.who(), tick)?;
        if out["status"] == "ACTIVATED"
            && let Some(i) = data.integrations.get_mut(&key)
        {
            if fail {
                fail_activation(i);
                out["status"] = json!(i.status.as_str());
            } else if let Some((n, rate)) = traffic {
                super::monitoring::add_instances(i, n, rate, Utc::now());
            }
        }
        out
    };
    if out["status"] == "ACTIVATION_INPROGRESS" || out["status"] == "DEACTIVATION_INPROGRESS" {
        finish_async(
            api.ctx.shared.clone(),
            api.inst.clone(),
            project,
            key,
            delay,
            fail,
            traffic,
        );
    }
    Ok(json_ok(&out))
}

/// Runs `f` on integration `{id}` of the request's space (404 when missing).
fn with_integration<T>(
    api: &Api,
    f: impl FnOnce(&mut Integration) -> ApiResult<T>,
) -> ApiResult<T> {
    let key = split_id(api.id())?;
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    let i = data
        .integrations
        .get_mut(&key)
        .ok_or_else(|| not_found(api.id()))?;
    f(i)
}

/// `GET /integrations/{id}/activationStatus`.
pub async fn activation_status(api: Api) -> ApiResult<Response> {
    let s = with_integration(&api, |i| Ok(i.status.as_str()))?;
    Ok(json_ok(&json!({ "activationStatus": s })))
}

/// `GET /integrations/{id}/activationErrors`: `{"items":[{"code","message"}]}` (empty unless FAILEDACTIVATION).
pub async fn activation_errors(api: Api) -> ApiResult<Response> {
    let items = with_integration(&api, |i| {
        Ok(i.activation_errors
            .iter()
            .map(|(c, m)| json!({ "code": c, "message": m }))
            .collect::<Vec<_>>())
    })?;
    Ok(json_ok(
        &json!({ "items": items, "totalResults": items.len() }),
    ))
}

/// `DELETE /integrations/{id}`: 200 (empty body); 412 active; 423 locked.
pub async fn delete(api: Api) -> ApiResult<Response> {
    let key = split_id(api.id())?;
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    let i = data
        .integrations
        .get(&key)
        .ok_or_else(|| not_found(api.id()))?;
    if is_active(i.status) {
        return Err(ApiError::precondition(format!(
            "{} is active and cannot be deleted. Deactivate it first.",
            label(i)
        )));
    }
    if let Some(by) = &i.locked_by {
        return Err(ApiError::locked(format!(
            "{} is locked by {by} and cannot be deleted.",
            label(i)
        )));
    }
    data.integrations.remove(&key);
    Ok(empty_ok())
}

/// `POST /integrations/reactivate` with a JSON array of ids: deactivates and activates each active one.
/// 200 `{"items":[{"id","status","message"}]}`; per-id failures are reported in the items.
pub async fn reactivate(api: Api, body: Bytes) -> ApiResult<Response> {
    let ids: Vec<String> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "The body must be a JSON array of integration ids: {e}"
        ))
    })?;
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    let mut items = Vec::new();
    for id in ids {
        let key = match split_id(&id) {
            Ok(k) => k,
            Err(e) => {
                items.push(json!({ "id": id, "status": "FAILED", "message": e.title }));
                continue;
            }
        };
        let was_active = data
            .integrations
            .get(&key)
            .map(|i| i.status == IntStatus::Activated);
        let result = match was_active {
            None => Err(not_found(&id)),
            Some(true) => {
                if let Some(i) = data.integrations.get_mut(&key) {
                    i.status = IntStatus::Configured;
                }
                activate(data, &key, false, api.who())
            }
            Some(false) => activate(data, &key, false, api.who()),
        };
        match result {
            Ok(()) => items.push(json!({ "id": id, "status": "ACTIVATED", "message": "" })),
            Err(e) => items.push(json!({ "id": id, "status": "FAILED", "message": e.title })),
        }
    }
    Ok(json_ok(&json!({ "items": items })))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Value-built rendering this module had before the typed one, kept as the reference.
    /// The `connection` object of an integration's `endPoints[]` (recorded key set).
    fn endpoint_connection(prefix: &str, code: &str) -> Value {
        let href = format!("{prefix}/connections/{}", enc(code));
        json!({
            "agentRequired": false,
            "agentSupported": false,
            "id": code,
            "links": [ { "href": href, "rel": "self" }, { "href": href, "rel": "canonical" } ],
            "privateEndpoint": false,
            "privateEndpointSupported": false,
            "testStatus": false,
        })
    }

    /// The three `trackingVariables` of an integration (the recorded shape; the first is the primary one).
    fn reference_tracking(i: &Integration, data: &InstanceData) -> Value {
        let (name, xpath) = if i.pattern == "Scheduled" {
            ("start Time".to_string(), "/schedule/startTime".to_string())
        } else if rest_triggered(i, data) {
            ("id".to_string(), "/execute/QueryParameters/id".to_string())
        } else {
            ("tracking_var_1".to_string(), String::new())
        };
        let var = |n: usize, name: &str, xpath: &str| {
            json!({
                "role": format!("tracking_var_{n}"),
                "primary": n == 1,
                "name": name,
                "xpath": xpath,
                "messageContextRef": { "property": [], "refUri": "messagecontext_1" },
                "property": [],
                "output": {
                    "messageContextRef": { "property": [], "refUri": format!("messagecontext_{}", 2 * n) },
                    "name": format!("output_{}", 2 * n + 1),
                },
            })
        };
        json!([
            var(1, &name, &xpath),
            var(2, "tracking_var_2", ""),
            var(3, "tracking_var_3", "")
        ])
    }

    fn reference_json(prefix: &str, i: &Integration, data: &InstanceData, expand: &str) -> Value {
        let id = i.id();
        let href = format!("{prefix}/integrations/{}", enc(&id));
        let end_points: Vec<Value> = i
            .connections
            .iter()
            .map(|c| {
                let mut conn = endpoint_connection(prefix, &c.code);
                if expand.contains("connection")
                    && let Some(full) = data.connections.get(&c.code)
                {
                    conn["adapterType"] = json!({ "name": full.adapter, "displayName": full.adapter.to_uppercase(), "type": "PREINSTALLED" });
                    conn["securityPolicy"] = json!(full.security_policy);
                    conn["status"] = json!(full.status.as_str());
                    conn["name"] = json!(full.name);
                }
                json!({ "connection": conn, "name": c.code, "role": c.role })
            })
            .collect();
        let prebuilt = i.project_type != "DEVELOPED";
        let mut v = json!({
            "code": i.code,
            "compatible": true,
            "created": oic_date(&i.created),
            "createdBy": i.created_by,
            "endPoints": end_points,
            "id": id,
            "isCloneAllowed": prebuilt,
            "isViewAllowed": prebuilt,
            "keywords": "",
            "lastUpdated": oic_date(&i.last_updated),
            "lastUpdatedBy": i.last_updated_by,
            "links": [ { "href": href, "rel": "self" }, { "href": href, "rel": "canonical" } ],
            "lockedFlag": i.locked_by.is_some(),
            "name": i.name,
            "pattern": i.pattern,
            "patternDescription": i.pattern_description,
            "payloadTracingEnabledFlag": i.payload_tracing,
            "percentageComplete": if i.status == IntStatus::InProgress { 60 } else { 100 },
            "projectType": i.project_type,
            "recordEnabledFlag": i.record_enabled,
            "scheduleApplicableFlag": i.pattern == "Scheduled",
            "scheduleDefinedFlag": i.schedule.is_some(),
            "scope": "Private",
            "smartTags": smart_tags(i, data),
            "status": i.status.as_str(),
            "style": i.style,
            "styleDescription": "Orchestration",
            "tempCopyExists": false,
            "totalEndPoints": 0,
            "tracingEnabledFlag": i.tracing,
            "trackingVariables": reference_tracking(i, data),
            "version": i.version,
        });
        if !i.description.is_empty() {
            v["description"] = json!(i.description);
        }
        if let Some(by) = &i.locked_by {
            v["lockedBy"] = json!(by);
            v["lockedDate"] = json!(oic_date(&i.last_updated));
        }
        if !i.package_name.is_empty() {
            v["packageName"] = json!(i.package_name);
        }
        if i.pattern == "Scheduled" {
            v["endPointURI"] = json!(format!("{href}/schedule/jobs"));
        } else if rest_triggered(i, data) {
            let runtime = prefix.split("/ic/api").next().unwrap_or(prefix);
            v["endPointURI"] = json!(format!(
                "{runtime}/ic/api/integration/v1/flows/rest/{}/{}/metadata",
                i.code,
                i.short_version()
            ));
        }
        if let Some(p) = &i.project {
            v["projectCode"] = json!(p);
        }
        v
    }

    /// The typed list item prints its keys in the order a `Value` prints them (the list page is
    /// serialized from it directly, every other answer goes through `integration_json`), with
    /// every optional key present somewhere.
    #[test]
    fn typed_list_items_print_as_values_do() {
        let mut data = InstanceData::default();
        super::super::seed::sample(&mut data);
        super::super::seed::generated(&mut data, 300, 7);
        if let Some(i) = data.integrations.values_mut().next() {
            i.locked_by = Some("someone".into());
            i.description = "described".into();
            i.package_name = "pkg".into();
            i.project = Some("P".into());
        }
        let mut keys = std::collections::BTreeSet::new();
        for expand in ["", "connection"] {
            for i in data.integrations.values() {
                let typed =
                    serde_json::to_string(&integration_view("/p", i, &data, expand)).unwrap();
                let v = integration_json("/p", i, &data, expand);
                assert_eq!(typed, v.to_string(), "{}", i.id());
                assert_eq!(v, reference_json("/p", i, &data, expand), "{}", i.id());
                keys.extend(v.as_object().unwrap().keys().cloned());
            }
        }
        for k in [
            "description",
            "lockedBy",
            "lockedDate",
            "packageName",
            "projectCode",
            "endPointURI",
        ] {
            assert!(keys.contains(k), "{k} never printed");
        }
    }
}
