//! Connections (§5 and the project variants of §4.3): list, get, PATCH-override update, test, validate,
//! attachments, delete.

use axum::extract::Multipart;
use axum::extract::multipart::MultipartRejection;
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use bytes::Bytes;
use chrono::Utc;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::extract::{Api, space};
use super::integrations::{
    empty_ok, enc, is_active, json_ok, multipart_fields, refresh_statuses, require_patch_override,
};
use super::query::{envelope, parse_q};
use super::state::{ConnStatus, Connection, InstanceData, Property, oic_date};

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Connection '{id}' not found."))
}

/// Whether a connection has what a test needs: a non-empty connection property and, unless the policy is
/// `NONE`, a non-empty security property.
pub fn complete(c: &Connection) -> bool {
    let has = |ps: &[Property]| {
        ps.iter()
            .any(|p| p.property_value.as_deref().is_some_and(|v| !v.is_empty()))
    };
    has(&c.connection_properties) && (c.security_policy == "NONE" || has(&c.security_properties))
}

fn usage(data: &InstanceData, code: &str) -> (usize, usize) {
    let using = data
        .integrations
        .values()
        .filter(|i| i.connections.iter().any(|c| c.code == code));
    let mut total = 0;
    let mut active = 0;
    for i in using {
        total += 1;
        if is_active(i.status) {
            active += 1;
        }
    }
    (total, active)
}

/// The mask OIC returns for the value of a `PASSWORD` property (recorded).
pub const MASK: &str = "*****";

/// Whether a property holds a secret (its value is masked on read).
pub fn is_secret(p: &Property) -> bool {
    p.property_type.eq_ignore_ascii_case("PASSWORD")
}

/// A display name for a property name (`connectionUrl` → `Connection Url`).
fn display_name(name: &str) -> String {
    let mut out = String::new();
    for (n, ch) in name.chars().enumerate() {
        if n == 0 {
            out.extend(ch.to_uppercase());
        } else if ch.is_uppercase() {
            out.push(' ');
            out.push(ch);
        } else if ch == '.' || ch == '_' {
            out.push(' ');
        } else {
            out.push(ch);
        }
    }
    out
}

/// A property in the recorded shape; `value` adds `propertyValue` (masked for secrets).
fn property_json(p: &Property, value: bool) -> Value {
    let mut v = json!({
        "displayName": display_name(&p.property_name),
        "hasAttachment": p.property_type == "ATTACHMENT",
        "hiddenFlag": false,
        "propertyGroup": p.property_group,
        "propertyName": p.property_name,
        "propertyType": p.property_type,
        "requiredFlag": true,
    });
    if value && let Some(val) = p.property_value.as_deref().filter(|v| !v.is_empty()) {
        v["propertyValue"] = json!(if is_secret(p) { MASK } else { val });
    }
    v
}

/// The policies the adapter offers (`securityPolicyInfo[]`): the connection's own policy with its properties,
/// and basic authentication (property descriptors only, no values).
fn security_policy_info(c: &Connection) -> Value {
    let scope = if c.role == "SOURCE_AND_TARGET" {
        "SOURCE_AND_TARGET"
    } else if c.role == "SOURCE" {
        "SOURCE"
    } else {
        "TARGET"
    };
    let mut policies = vec![json!({
        "scope": scope,
        "securityPolicy": c.security_policy,
        "securityProperties": c.security_properties.iter().map(|p| property_json(p, false)).collect::<Vec<_>>(),
    })];
    if c.security_policy != "BASIC_AUTH" {
        let basic = [("username", "STRING"), ("password", "PASSWORD")].map(|(n, t)| Property {
            property_group: "CREDENTIALS".into(),
            property_name: n.into(),
            property_type: t.into(),
            property_value: None,
        });
        policies.push(json!({
            "scope": scope,
            "securityPolicy": "BASIC_AUTH",
            "securityProperties": basic.iter().map(|p| property_json(p, false)).collect::<Vec<_>>(),
        }));
    }
    json!(policies)
}

/// The connection resource as recorded: plain property values, `*****` for `PASSWORD` properties,
/// `securityPolicyInfo[]`, `testStatus`, `agentRequired`, ... (`lockedBy`/`lockedDate` only when locked,
/// `description` only when set).
pub fn connection_json(prefix: &str, c: &Connection, data: &InstanceData, expand: &str) -> Value {
    let href = format!("{prefix}/connections/{}", enc(&c.code));
    let (used, used_active) = usage(data, &c.code);
    let mut adapter = json!({
        "displayName": adapter_display(&c.adapter),
        "links": [],
        "name": c.adapter,
        "type": "PREINSTALLED",
    });
    if expand.contains("adapter") {
        adapter["version"] = json!("1.0");
        adapter["vendor"] = json!("Oracle");
    }
    let mut v = json!({
        "adapterType": adapter,
        "agentRequired": c.agent_group_id.is_some(),
        "agentSupported": true,
        "connectionProperties": c.connection_properties.iter().map(|p| property_json(p, true)).collect::<Vec<_>>(),
        "created": oic_date(&c.created),
        "createdBy": c.created_by,
        "hasOverride": false,
        "id": c.code,
        "keywords": "",
        "lastRefreshedDate": oic_date(&c.last_updated),
        "lastUpdated": oic_date(&c.last_updated),
        "lastUpdatedBy": c.last_updated_by,
        "links": [ { "href": href, "rel": "self" }, { "href": href, "rel": "canonical" } ],
        "lockedFlag": c.locked_by.is_some(),
        "metadataDownloadState": "COMPLETE",
        "metadataDownloadSupportedFlag": true,
        "name": c.name,
        "percentageComplete": if c.status == ConnStatus::Configured { 100 } else if complete(c) { 80 } else { 0 },
        "privateEndpoint": false,
        "privateEndpointSupported": true,
        "refreshedStatus": "COMPLETE",
        "role": c.role,
        "securityPolicy": c.security_policy,
        "securityPolicyInfo": security_policy_info(c),
        "securityProperties": c.security_properties.iter().map(|p| property_json(p, true)).collect::<Vec<_>>(),
        "status": c.status.as_str(),
        "testStatus": false,
        "usage": used,
        "usageActive": used_active,
    });
    if !c.description.is_empty() {
        v["description"] = json!(c.description);
    }
    if let Some(by) = &c.locked_by {
        v["lockedBy"] = json!(by);
        v["lockedDate"] = json!(oic_date(&c.last_updated));
    }
    if let Some(a) = &c.agent_group_id {
        v["agentGroupId"] = json!(a);
    }
    v
}

fn adapter_display(a: &str) -> String {
    match a {
        "rest" => "REST".into(),
        "hcm" => "Oracle HCM Cloud".into(),
        "erp" => "Oracle ERP Cloud".into(),
        "atpdatabase" => "Oracle Autonomous Transaction Processing".into(),
        "ftp" => "FTP".into(),
        other => other.to_uppercase(),
    }
}

/// `GET /connections`.
pub async fn list(api: Api) -> ApiResult<Response> {
    let (offset, limit) = api.params.paging()?;
    let conds = parse_q(
        api.params.get("q"),
        &["name", "code", "status", "role", "type", "adapter"],
    )?;
    let expand = api.params.get("expand").unwrap_or("").to_string();
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    let mut items: Vec<&Connection> = data
        .connections
        .values()
        .filter(|c| {
            conds.iter().all(|q| match q.key() {
                "name" => q.matches(&c.name),
                "code" => q.matches(&c.code),
                "status" => q.matches(c.status.as_str()),
                "role" => q.matches(&c.role),
                _ => q.matches(&c.adapter),
            })
        })
        .collect();
    match api.params.get("orderBy").unwrap_or("") {
        "" => {}
        "name" => items.sort_by_key(|c| c.name.to_lowercase()),
        "time" => items.sort_by_key(|c| std::cmp::Reverse(c.last_updated)),
        "type" => items.sort_by(|a, b| a.adapter.cmp(&b.adapter).then(a.code.cmp(&b.code))),
        o => {
            return Err(ApiError::bad_request(format!(
                "Invalid orderBy '{o}'. Use name, time or type."
            )));
        }
    }
    let prefix = api.prefix();
    let all = items
        .iter()
        .map(|c| connection_json(&prefix, c, data, &expand))
        .collect();
    Ok(json_ok(&envelope(
        all,
        offset,
        limit,
        &format!("{prefix}/connections"),
    )))
}

/// `GET /connections/{id}`.
pub async fn get(api: Api) -> ApiResult<Response> {
    let expand = api.params.get("expand").unwrap_or("").to_string();
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    let c = data
        .connections
        .get(api.id())
        .ok_or_else(|| not_found(api.id()))?;
    Ok(json_ok(&connection_json(&api.prefix(), c, data, &expand)))
}

/// The four honoured members of an update body; everything else is ignored.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateBody {
    connection_properties: Option<Vec<Property>>,
    security_policy: Option<String>,
    security_properties: Option<Vec<Property>>,
    agent_group_id: Option<String>,
}

/// Merges properties by `propertyName`. A property written back as read keeps its stored value: an absent
/// `propertyValue` or the mask `*****` never replaces a stored value, so a GET body sent back unchanged keeps
/// the credentials.
fn merge(into: &mut Vec<Property>, from: Vec<Property>, default_group: &str) {
    for mut p in from {
        if p.property_group.is_empty() {
            p.property_group = default_group.to_string();
        }
        let keep = p.property_value.is_none() || p.property_value.as_deref() == Some(MASK);
        match into.iter_mut().find(|q| q.property_name == p.property_name) {
            Some(q) => {
                if keep {
                    p.property_value = q.property_value.clone();
                }
                if p.property_type.is_empty() {
                    p.property_type = q.property_type.clone();
                }
                *q = p;
            }
            None => {
                if p.property_value.as_deref() == Some(MASK) {
                    p.property_value = None;
                }
                into.push(p);
            }
        }
    }
}

/// `POST /connections/{id}` + `X-HTTP-Method-Override: PATCH`: 200 with the updated connection; 412 locked.
pub async fn update(
    api: Api,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    require_patch_override(&method, &headers)?;
    let upd: UpdateBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))?;
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    let c = data
        .connections
        .get_mut(api.id())
        .ok_or_else(|| not_found(api.id()))?;
    if let Some(by) = &c.locked_by {
        return Err(ApiError::precondition(format!(
            "Connection '{}' is locked by {by}.",
            c.code
        )));
    }
    if let Some(ps) = upd.connection_properties {
        merge(&mut c.connection_properties, ps, "CONNECTION_PROPS");
    }
    if let Some(p) = upd.security_policy {
        if p.trim().is_empty() {
            return Err(ApiError::bad_request("securityPolicy must not be empty."));
        }
        c.security_policy = p;
    }
    if let Some(ps) = upd.security_properties {
        merge(&mut c.security_properties, ps, "CREDENTIALS");
    }
    if let Some(a) = upd.agent_group_id {
        c.agent_group_id = (!a.is_empty()).then_some(a);
    }
    c.last_updated = Utc::now();
    c.last_updated_by = api.who().to_string();
    let snapshot = c.clone();
    // Recorded answer of an update: `application/json`, `securityPolicyInfo: []` and no value for secrets.
    let mut v = connection_json(&api.prefix(), &snapshot, data, "");
    v["securityPolicyInfo"] = json!([]);
    if let Some(ps) = v["securityProperties"].as_array_mut() {
        for p in ps {
            if p["propertyType"] == "PASSWORD"
                && let Some(m) = p.as_object_mut()
            {
                m.remove("propertyValue");
            }
        }
    }
    Ok(super::wire::plain_json(json_ok(&v)))
}

/// Whether a test of a complete connection fails: a connection property value containing `.invalid`
/// (RFC 2606) or a security property whose value is `invalid`.
fn test_fails(c: &Connection) -> Option<String> {
    if let Some(p) = c.connection_properties.iter().find(|p| {
        p.property_value
            .as_deref()
            .is_some_and(|v| v.contains(".invalid"))
    }) {
        return Some(format!(
            "Unable to reach {}: unknown host.",
            p.property_value.as_deref().unwrap_or("")
        ));
    }
    if c.security_properties
        .iter()
        .any(|p| p.property_value.as_deref() == Some("invalid"))
    {
        return Some("Authentication failed: invalid credentials (HTTP 401).".into());
    }
    None
}

/// The message of a test failed on demand ([`super::faults::Faults::fail_connection_tests`]): what OIC says
/// when the endpoint refuses the connection.
fn injected_test_failure(c: &Connection) -> String {
    let url = c
        .connection_properties
        .iter()
        .find_map(|p| p.property_value.clone())
        .unwrap_or_else(|| c.code.clone());
    format!(
        "CASDK-0005: A connector specific exception was raised by the application. Unable to establish a connection with {url}: java.net.ConnectException: Connection refused."
    )
}

/// `POST /connections/{id}/test`: 200 `{"details","id","status":"SUCCESS"|"FAILED"}`; 409 when incomplete;
/// 412 locked. Success makes the connection `CONFIGURED` (and integrations waiting only for it, too).
pub async fn test(api: Api) -> ApiResult<Response> {
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    let c = data
        .connections
        .get_mut(api.id())
        .ok_or_else(|| not_found(api.id()))?;
    if let Some(by) = &c.locked_by {
        return Err(ApiError::precondition(format!(
            "Connection '{}' is locked by {by}.",
            c.code
        )));
    }
    if !complete(c) {
        return Err(ApiError::conflict(format!(
            "Connection '{}' is not fully configured. Provide its connection and security properties before testing it.",
            c.code
        )));
    }
    let code = c.code.clone();
    let injected = api
        .ctx
        .shared
        .faults
        .get()
        .fail_connection_tests
        .contains(&code)
        .then(|| injected_test_failure(c));
    let body = match injected.or_else(|| test_fails(c)) {
        Some(msg) => {
            json!({ "details": format!("Test of {code} connection failed. {msg}"), "id": code, "status": "FAILED" })
        }
        None => {
            c.status = ConnStatus::Configured;
            json!({ "details": format!("Test of {code} connection succeeded."), "id": code, "status": "SUCCESS" })
        }
    };
    refresh_statuses(data);
    Ok(json_ok(&body))
}

/// `POST /connections/{id}/validate`: like test, without changing the state.
pub async fn validate(api: Api) -> ApiResult<Response> {
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    let c = data
        .connections
        .get(api.id())
        .ok_or_else(|| not_found(api.id()))?;
    let ok = complete(c) && test_fails(c).is_none();
    Ok(json_ok(&json!({
        "id": c.code,
        "status": if ok { "SUCCESS" } else { "FAILED" },
        "details": if ok { "Validation succeeded." } else { "Validation failed." },
    })))
}

/// `POST /connections/{id}/attachments/{propertyName}` (multipart `file`): stores the attachment as the
/// property's value (`<attachment N bytes>`). 200 with the connection.
pub async fn attachment(
    api: Api,
    mp: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    let (file, _) = multipart_fields(mp).await?;
    let prop = api.param("prop").to_string();
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    let c = data
        .connections
        .get_mut(api.id())
        .ok_or_else(|| not_found(api.id()))?;
    merge(
        &mut c.connection_properties,
        vec![Property {
            property_group: "CONNECTION_PROPS".into(),
            property_name: prop,
            property_type: "ATTACHMENT".into(),
            property_value: Some(format!("<attachment {} bytes>", file.len())),
        }],
        "CONNECTION_PROPS",
    );
    let snapshot = c.clone();
    Ok(json_ok(&connection_json(
        &api.prefix(),
        &snapshot,
        data,
        "",
    )))
}

/// `DELETE /connections/{id}`: 200; 412 while an integration uses it.
pub async fn delete(api: Api) -> ApiResult<Response> {
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    if !data.connections.contains_key(api.id()) {
        return Err(not_found(api.id()));
    }
    let (used, _) = usage(data, api.id());
    if used > 0 {
        return Err(ApiError::precondition(format!(
            "Connection '{}' is used by {used} integration(s) and cannot be deleted.",
            api.id()
        )));
    }
    data.connections.remove(api.id());
    Ok(empty_ok())
}
