//! OIC 3 projects (§4): list, get, create, delete, export/import `.car`, deployments, ACL.
//!
//! Project integrations and connections are served by the handlers of [`super::integrations`] and
//! [`super::connections`] on the `/projects/{p}/...` routes.

use axum::extract::Multipart;
use axum::extract::multipart::MultipartRejection;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::Utc;
use serde_json::{Value, json};

use super::car;
use super::error::{ApiError, ApiResult};
use super::extract::Api;
use super::integrations::{
    archive_error, empty_ok, enc, integration_from_archive, is_active, json_ok, json_status,
    merge_dependencies, multipart_file, octet_stream, require_patch_override,
};
use super::query::{envelope, parse_q};
use super::state::{
    ConnStatus, Connection, Deployment, InstanceData, Integration, Lookup, Project, oic_date,
};

fn not_found(p: &str) -> ApiError {
    ApiError::not_found(format!("Project '{p}' not found."))
}

fn gen3_only(api: &Api) -> ApiResult<()> {
    if api.inst.ident.generation < 3 {
        return Err(ApiError::not_found(
            "Projects are not available on this Oracle Integration generation.",
        ));
    }
    Ok(())
}

/// The default ACL of a new project: the creator administers, everyone else may view and monitor.
pub fn default_acl(creator: &str) -> Value {
    json!({
        "administrators": { "allowAll": false, "allowed": [ { "id": creator, "displayName": creator, "type": "user" } ] },
        "editors": { "allowAll": false, "allowed": [] },
        "viewers": { "allowAll": true, "allowed": [] },
        "monitors": { "allowAll": true, "allowed": [] },
    })
}

/// The project resource (§4.2).
pub fn project_json(prefix_api: &str, p: &Project) -> Value {
    let href = format!("{prefix_api}/projects/{}", enc(&p.code));
    let labels: Vec<Value> = p
        .deployments
        .values()
        .map(|d| {
            json!({
                "code": d.code,
                "integrations": d.integrations.iter().map(|(c, v)| json!({"code": c, "version": v})).collect::<Vec<_>>(),
                "lastUpdated": oic_date(&d.last_updated),
                "name": d.name,
            })
        })
        .collect();
    let mut tags: Vec<String> = p
        .data
        .connections
        .values()
        .map(|c| format!("app:{}", c.adapter))
        .collect();
    tags.sort();
    tags.dedup();
    if !p.data.integrations.is_empty() {
        tags.push("style:app driven orchestration".into());
    }
    json!({
        "cloneRestrict": "NONE",
        "code": p.code,
        "description": p.description,
        "id": p.code,
        "links": [ { "href": href, "rel": "self" }, { "href": href, "rel": "canonical" } ],
        "mcpEnabled": false,
        "keyword": "",
        "name": p.name,
        "origin": { "type": p.project_type },
        "simplifiedMode": false,
        "smartTags": tags,
        "state": {
            "assets": { "labelsRs": { "items": labels } },
            "created": { "by": p.created_by, "date": oic_date(&p.created) },
            "latest": { "by": p.updated_by, "date": oic_date(&p.updated) },
            "projectRevisionId": 0,
            "serviceInstanceId": 0,
            "locked": false,
            "lockStatus": "UNLOCKED",
            "status": "DRAFT",
            "updated": { "by": p.updated_by, "date": oic_date(&p.updated) },
        },
        "type": p.project_type,
        "viewRestricted": false,
    })
}

fn api_prefix(api: &Api) -> String {
    format!("{}{}", api.ctx.base_url, super::API)
}

/// `GET /projects`.
pub async fn list(api: Api) -> ApiResult<Response> {
    gen3_only(&api)?;
    let (offset, limit) = api.params.paging()?;
    let conds = parse_q(api.params.get("q"), &["name", "code", "type"])?;
    let g = api.inst.lock();
    let mut items: Vec<&Project> = g
        .projects
        .values()
        .filter(|p| {
            conds.iter().all(|c| match c.key() {
                "name" => c.matches(&p.name),
                "code" => c.matches(&p.code),
                _ => c.matches(&p.project_type),
            })
        })
        .collect();
    match api.params.get("orderBy").unwrap_or("") {
        "" => {}
        "name" => items.sort_by_key(|p| p.name.to_lowercase()),
        "time" => items.sort_by_key(|p| std::cmp::Reverse(p.updated)),
        o => return Err(ApiError::bad_request(format!("Invalid orderBy '{o}'."))),
    }
    let prefix = api_prefix(&api);
    let all = items.iter().map(|p| project_json(&prefix, p)).collect();
    Ok(json_ok(&envelope(
        all,
        offset,
        limit,
        &format!("{prefix}/projects"),
    )))
}

/// `GET /projects/{p}`.
pub async fn get(api: Api) -> ApiResult<Response> {
    gen3_only(&api)?;
    let g = api.inst.lock();
    let p = g
        .projects
        .get(api.param("p"))
        .ok_or_else(|| not_found(api.param("p")))?;
    Ok(json_ok(&project_json(&api_prefix(&api), p)))
}

fn new_project(code: &str, name: &str, description: &str, ty: &str, who: &str) -> Project {
    let now = Utc::now();
    Project {
        code: code.into(),
        name: name.into(),
        description: description.into(),
        project_type: ty.into(),
        created: now,
        created_by: who.into(),
        updated: now,
        updated_by: who.into(),
        deployments: Default::default(),
        acl: default_acl(who),
        data: InstanceData::default(),
    }
}

/// `POST /projects` `{"name","code","description"}`: 201 with the project; 409 when it exists.
pub async fn create(api: Api, body: Bytes) -> ApiResult<Response> {
    gen3_only(&api)?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))?;
    let name = v["name"].as_str().unwrap_or("").trim().to_string();
    let code = v["code"].as_str().map(str::to_string).unwrap_or_else(|| {
        name.to_uppercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    });
    if name.is_empty() || code.is_empty() {
        return Err(ApiError::bad_request("name is required."));
    }
    let mut g = api.inst.lock();
    if g.projects.contains_key(&code) {
        return Err(ApiError::conflict(format!(
            "Project '{code}' already exists."
        )));
    }
    let p = new_project(
        &code,
        &name,
        v["description"].as_str().unwrap_or(""),
        "DEVELOPED",
        api.who(),
    );
    let out = project_json(&api_prefix(&api), &p);
    g.projects.insert(code, p);
    Ok(json_status(StatusCode::CREATED, &out))
}

/// `DELETE /projects/{p}`: 200; 412 while an integration is active or locked.
pub async fn delete(api: Api) -> ApiResult<Response> {
    gen3_only(&api)?;
    let code = api.param("p").to_string();
    let mut g = api.inst.lock();
    let p = g.projects.get(&code).ok_or_else(|| not_found(&code))?;
    if let Some(i) = p
        .data
        .integrations
        .values()
        .find(|i| is_active(i.status) || i.locked_by.is_some())
    {
        return Err(ApiError::precondition(format!(
            "Project '{code}' cannot be deleted: integration '{}' is active or locked.",
            i.id()
        )));
    }
    g.projects.remove(&code);
    Ok(empty_ok())
}

/// `POST /projects/{p}/archive` with `{type, code, label?, name?, builtBy?}`: the `.car` (200).
/// With `label` (a deployment code) only that deployment's integration versions are included.
pub async fn export(api: Api, body: Bytes) -> ApiResult<Response> {
    gen3_only(&api)?;
    let code = api.param("p").to_string();
    let v: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))?
    };
    if let Some(c) = v["code"].as_str()
        && c != code
    {
        return Err(ApiError::bad_request(format!(
            "The body code '{c}' does not match the project '{code}'."
        )));
    }
    let label = v["label"]
        .as_str()
        .filter(|l| !l.is_empty())
        .map(str::to_string);
    let (file, entries) = {
        let g = api.inst.lock();
        let p = g.projects.get(&code).ok_or_else(|| not_found(&code))?;
        let (ints, deps): (Vec<&Integration>, Vec<&Deployment>) = match &label {
            Some(l) => {
                let d = p.deployments.get(l).ok_or_else(|| {
                    ApiError::not_found(format!("Deployment '{l}' not found in project '{code}'."))
                })?;
                let ints = d
                    .integrations
                    .iter()
                    .filter_map(|k| p.data.integrations.get(k))
                    .collect();
                (ints, vec![d])
            }
            None => (
                p.data.integrations.values().collect(),
                p.deployments.values().collect(),
            ),
        };
        if let Some(i) = ints.iter().find(|i| i.locked_by.is_some()) {
            return Err(ApiError::locked(format!(
                "Integration '{}' is locked.",
                i.id()
            )));
        }
        let (conns, lookups): (Vec<&Connection>, Vec<&Lookup>) = if label.is_some() {
            (
                p.data
                    .connections
                    .values()
                    .filter(|c| {
                        ints.iter()
                            .any(|i| i.connections.iter().any(|r| r.code == c.code))
                    })
                    .collect(),
                p.data
                    .lookups
                    .values()
                    .filter(|l| ints.iter().any(|i| i.lookups.contains(&l.name)))
                    .collect(),
            )
        } else {
            (
                p.data.connections.values().collect(),
                p.data.lookups.values().collect(),
            )
        };
        let entries = car::car_entries(p, &ints, &conns, &lookups, &deps)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let file = match &label {
            Some(l) => format!("{code}-{l}.car"),
            None => format!("{code}.car"),
        };
        (file, entries)
    };
    let drop_after = api.ctx.shared.faults.get().drop_download_after;
    let big = entries.values().map(|c| c.len()).sum::<u64>() > super::stream::STREAM_THRESHOLD;
    let body = if big {
        let b = super::stream::stream_entries(entries);
        match drop_after {
            Some(n) => {
                use futures::StreamExt;
                super::stream::truncate(
                    b.into_data_stream()
                        .map(|r| r.map_err(std::io::Error::other)),
                    n,
                )
            }
            None => b,
        }
    } else {
        let bytes = super::archive::seal_and_zip(entries)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        super::stream::body_of(Bytes::from(bytes), drop_after)
    };
    Ok(octet_stream(&file, body))
}

/// `POST /projects/archive` (multipart `file`): 200 with the project; 409 when it exists; 400 bad archive.
pub async fn import(api: Api, mp: Result<Multipart, MultipartRejection>) -> ApiResult<Response> {
    gen3_only(&api)?;
    let bytes = multipart_file(mp).await?;
    let parsed = car::parse_car(&bytes).map_err(archive_error)?;
    let mut g = api.inst.lock();
    if g.projects.contains_key(&parsed.code) {
        return Err(ApiError::conflict(format!(
            "Project '{}' already exists.",
            parsed.code
        )));
    }
    let who = api.who().to_string();
    let mut p = new_project(
        &parsed.code,
        &parsed.name,
        &parsed.description,
        &parsed.project_type,
        &who,
    );
    let now = Utc::now();
    for c in &parsed.connections {
        p.data.connections.insert(
            c.code.clone(),
            Connection {
                code: c.code.clone(),
                name: c.name.clone(),
                description: String::new(),
                status: ConnStatus::InProgress,
                role: c.role.clone(),
                adapter: c.adapter.clone(),
                security_policy: c.security_policy.clone(),
                connection_properties: c.properties.clone(),
                security_properties: Vec::new(),
                agent_group_id: None,
                locked_by: None,
                created: now,
                created_by: who.clone(),
                last_updated: now,
                last_updated_by: who.clone(),
            },
        );
    }
    for l in &parsed.lookups {
        p.data.lookups.insert(l.name.clone(), l.clone());
    }
    for (pi, iar) in &parsed.integrations {
        merge_dependencies(&mut p.data, pi, &who);
        let i = integration_from_archive(
            &p.data,
            pi,
            super::state::ArchiveSource::Stored(Bytes::from(iar.clone())),
            &who,
            None,
            Some(&parsed.code),
        );
        p.data
            .integrations
            .insert((pi.code.clone(), pi.version.clone()), i);
    }
    for d in &parsed.deployments {
        p.deployments.insert(d.code.clone(), d.clone());
    }
    let out = project_json(&api_prefix(&api), &p);
    g.projects.insert(parsed.code.clone(), p);
    Ok(json_ok(&out))
}

fn acl_with_resolution(acl: &Value, ids: &super::scim::IdentityStore) -> Value {
    let mut out = acl.clone();
    for role in ["administrators", "editors", "viewers", "monitors"] {
        if let Some(list) = out[role]["allowed"].as_array_mut() {
            for p in list {
                let id = p["id"].as_str().unwrap_or("").to_string();
                let ty = p["type"].as_str().unwrap_or("user").to_string();
                p["idNotFound"] = json!(!ids.resolves(&id, &ty));
            }
        }
    }
    out
}

/// `GET /projects/{p}/acl`: the ACL with `createdBy`/`createdDate`/`updatedBy`/`updatedDate` and per principal
/// `idNotFound` (true when the id is not a user/group id of the identity domain).
pub async fn acl_get(api: Api) -> ApiResult<Response> {
    gen3_only(&api)?;
    let (acl, p_created, p_by, p_updated, p_uby) = {
        let g = api.inst.lock();
        let p = g
            .projects
            .get(api.param("p"))
            .ok_or_else(|| not_found(api.param("p")))?;
        (
            p.acl.clone(),
            oic_date(&p.created),
            p.created_by.clone(),
            oic_date(&p.updated),
            p.updated_by.clone(),
        )
    };
    let mut v = acl_with_resolution(&acl, &api.ctx.shared.identity());
    v["createdBy"] = json!(p_by);
    v["createdDate"] = json!(p_created);
    v["updatedBy"] = json!(p_uby);
    v["updatedDate"] = json!(p_updated);
    Ok(json_ok(&v))
}

/// Validates an ACL document; missing role keys become `{allowAll:false, allowed:[]}`.
fn normalize_acl(v: &Value) -> ApiResult<Value> {
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::bad_request("The ACL must be a JSON object."))?;
    let mut out = json!({});
    for role in ["administrators", "editors", "viewers", "monitors"] {
        let r = obj.get(role).cloned().unwrap_or(json!({}));
        let allow_all = match r.get("allowAll") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(ApiError::bad_request(format!(
                    "{role}.allowAll must be a boolean."
                )));
            }
        };
        let mut allowed = Vec::new();
        for p in r
            .get("allowed")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let id = p["id"].as_str().filter(|s| !s.is_empty()).ok_or_else(|| {
                ApiError::bad_request(format!("{role}.allowed[].id is required."))
            })?;
            let ty = p["type"].as_str().unwrap_or("user").to_lowercase();
            if ty != "user" && ty != "group" {
                return Err(ApiError::bad_request(format!(
                    "{role}.allowed[].type must be user or group."
                )));
            }
            allowed.push(json!({ "id": id, "displayName": p["displayName"].as_str().unwrap_or(id), "type": ty }));
        }
        out[role] = json!({ "allowAll": allow_all, "allowed": allowed });
    }
    Ok(out)
}

/// `PUT /projects/{p}/acl`: replaces the ACL (204).
pub async fn acl_put(api: Api, body: Bytes) -> ApiResult<Response> {
    gen3_only(&api)?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))?;
    let acl = normalize_acl(&v)?;
    let mut g = api.inst.lock();
    let p = g
        .projects
        .get_mut(api.param("p"))
        .ok_or_else(|| not_found(api.param("p")))?;
    p.acl = acl;
    p.updated = Utc::now();
    p.updated_by = api.who().to_string();
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn parse_deployment(v: &Value, code_default: Option<&str>) -> ApiResult<Deployment> {
    let code = v["code"]
        .as_str()
        .or(code_default)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("code is required."))?
        .to_string();
    Ok(super::car::deployment_from(v, code))
}

fn check_members(p: &Project, d: &Deployment) -> ApiResult<()> {
    for k in &d.integrations {
        if !p.data.integrations.contains_key(k) {
            return Err(ApiError::bad_request(format!(
                "Integration '{}|{}' is not part of project '{}'.",
                k.0, k.1, p.code
            )));
        }
    }
    Ok(())
}

/// A deployment as the REST API shows it (recorded): `code`, `integrations[]` with code, name, status,
/// type and version, `lastUpdated`, `name` (`description` only when set).
fn rest_deployment_json(p: &Project, d: &Deployment) -> Value {
    let integrations: Vec<Value> = d
        .integrations
        .iter()
        .map(|(c, v)| {
            let i = p.data.integrations.get(&(c.clone(), v.clone()));
            json!({
                "code": c,
                "name": i.map(|i| i.name.clone()).unwrap_or_else(|| c.clone()),
                "status": i.map(|i| i.status.as_str()).unwrap_or("CONFIGURED"),
                "type": i.map(|i| i.project_type.clone()).unwrap_or_else(|| "DEVELOPED".into()),
                "version": v,
            })
        })
        .collect();
    let mut v = json!({
        "code": d.code,
        "integrations": integrations,
        "lastUpdated": oic_date(&d.last_updated),
        "name": d.name,
    });
    if !d.description.is_empty() {
        v["description"] = json!(d.description);
    }
    v
}

/// The answer of a deployment create/update (recorded): `code`, `description`, `lastUpdated`, `name`.
fn deployment_written(d: &Deployment) -> Value {
    json!({
        "code": d.code,
        "description": d.description,
        "lastUpdated": oic_date(&d.last_updated),
        "name": d.name,
    })
}

/// `GET /projects/{p}/deployments`: `{"items":[...]}` (recorded; no paging envelope).
pub async fn deployments_list(api: Api) -> ApiResult<Response> {
    gen3_only(&api)?;
    let g = api.inst.lock();
    let p = g
        .projects
        .get(api.param("p"))
        .ok_or_else(|| not_found(api.param("p")))?;
    let items: Vec<Value> = p
        .deployments
        .values()
        .map(|d| rest_deployment_json(p, d))
        .collect();
    Ok(json_ok(&json!({ "items": items })))
}

/// `POST /projects/{p}/deployments`: 201; 409 exists; 400 unknown integration.
pub async fn deployment_create(api: Api, body: Bytes) -> ApiResult<Response> {
    gen3_only(&api)?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))?;
    let d = parse_deployment(&v, None)?;
    let mut g = api.inst.lock();
    let p = g
        .projects
        .get_mut(api.param("p"))
        .ok_or_else(|| not_found(api.param("p")))?;
    if p.deployments.contains_key(&d.code) {
        return Err(ApiError::conflict(format!(
            "Deployment '{}' already exists.",
            d.code
        )));
    }
    check_members(p, &d)?;
    let out = deployment_written(&d);
    p.deployments.insert(d.code.clone(), d);
    Ok(json_status(StatusCode::CREATED, &out))
}

/// `GET /projects/{p}/deployments/{d}`.
pub async fn deployment_get(api: Api) -> ApiResult<Response> {
    gen3_only(&api)?;
    let g = api.inst.lock();
    let p = g
        .projects
        .get(api.param("p"))
        .ok_or_else(|| not_found(api.param("p")))?;
    let d = p.deployments.get(api.param("d")).ok_or_else(|| {
        ApiError::not_found(format!("Deployment '{}' not found.", api.param("d")))
    })?;
    Ok(json_ok(&rest_deployment_json(p, d)))
}

/// `POST /projects/{p}/deployments/{d}` + `X-HTTP-Method-Override: PATCH`: replaces name/description/members.
pub async fn deployment_update(
    api: Api,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    gen3_only(&api)?;
    require_patch_override(&method, &headers)?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))?;
    let dcode = api.param("d").to_string();
    let mut g = api.inst.lock();
    let p = g
        .projects
        .get_mut(api.param("p"))
        .ok_or_else(|| not_found(api.param("p")))?;
    let old = p
        .deployments
        .get(&dcode)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("Deployment '{dcode}' not found.")))?;
    let mut d = parse_deployment(&v, Some(&dcode))?;
    d.code = dcode.clone();
    if v.get("integrations").is_none() {
        d.integrations = old.integrations;
    }
    if v.get("name").is_none() {
        d.name = old.name;
    }
    check_members(p, &d)?;
    let out = deployment_written(&d);
    p.deployments.insert(dcode, d);
    Ok(super::wire::plain_json(json_ok(&out)))
}

/// `DELETE /projects/{p}/deployments/{d}`: 204 (recorded).
pub async fn deployment_delete(api: Api) -> ApiResult<Response> {
    gen3_only(&api)?;
    let mut g = api.inst.lock();
    let p = g
        .projects
        .get_mut(api.param("p"))
        .ok_or_else(|| not_found(api.param("p")))?;
    p.deployments.remove(api.param("d")).ok_or_else(|| {
        ApiError::not_found(format!("Deployment '{}' not found.", api.param("d")))
    })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
