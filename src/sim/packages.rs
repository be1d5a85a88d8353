//! Packages (§6.3): list, get, export (`.par`), import, replace, delete.
//!
//! `.par` layout (inner layout is inferred in the reference): `package.json`
//! (`{"name","type","integrations":["CODE|VERSION",...]}`) and one `<CODE>_<VERSION>.iar` per integration.

use axum::body::Body;
use axum::extract::Multipart;
use axum::extract::multipart::MultipartRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::archive::{self, ParsedIar};
use super::error::{ApiError, ApiResult};
use super::extract::{Api, space};
use super::integrations::{
    archive_error, empty_ok, enc, export_source, export_source_bytes, integration_from_archive,
    is_active, json_ok, label, merge_dependencies, multipart_file, octet_stream,
};
use super::query::{envelope, parse_q};
use super::state::{InstanceData, Package};

fn not_found(n: &str) -> ApiError {
    ApiError::not_found(format!("Package '{n}' not found."))
}

/// The package resource.
pub fn package_json(prefix: &str, p: &Package, data: &InstanceData) -> Value {
    let ints: Vec<Value> = data
        .integrations
        .values()
        .filter(|i| i.package_name == p.name)
        .map(|i| json!({ "id": i.id(), "code": i.code, "version": i.version, "status": i.status.as_str() }))
        .collect();
    let href = format!("{prefix}/packages/{}", enc(&p.name));
    json!({
        "id": p.name,
        "name": p.name,
        "type": p.package_type,
        "countOfIntegrations": ints.len(),
        "integrations": ints,
        "links": [ { "href": href, "rel": "self" }, { "href": href, "rel": "canonical" } ],
    })
}

/// `GET /packages`.
pub async fn list(api: Api) -> ApiResult<Response> {
    let (offset, limit) = api.params.paging()?;
    let conds = parse_q(api.params.get("q"), &["name", "type"])?;
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    let prefix = api.prefix();
    let all = data
        .packages
        .values()
        .filter(|p| {
            conds.iter().all(|c| match c.key() {
                "name" => c.matches(&p.name),
                _ => c.matches(&p.package_type),
            })
        })
        .map(|p| package_json(&prefix, p, data))
        .collect();
    Ok(json_ok(&envelope(
        all,
        offset,
        limit,
        &format!("{prefix}/packages"),
    )))
}

/// `GET /packages/{id}`.
pub async fn get(api: Api) -> ApiResult<Response> {
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    let p = data
        .packages
        .get(api.id())
        .ok_or_else(|| not_found(api.id()))?;
    Ok(json_ok(&package_json(&api.prefix(), p, data)))
}

/// `GET /packages/{id}/archive`: the `.par`.
pub async fn export(api: Api) -> ApiResult<Response> {
    let name = api.id().to_string();
    let sources = {
        let mut g = api.inst.lock();
        let data = space(&mut g, api.project())?;
        let p = data.packages.get(&name).ok_or_else(|| not_found(&name))?;
        let ids: Vec<String> = data
            .integrations
            .values()
            .filter(|i| i.package_name == p.name)
            .map(|i| i.id())
            .collect();
        let mut out = Vec::new();
        for id in &ids {
            out.push(export_source(data, id)?);
        }
        (p.package_type.clone(), ids, out)
    };
    let (ty, ids, srcs) = sources;
    let mut e = archive::Entries::new();
    e.insert(
        "package.json".into(),
        json!({ "name": name, "type": ty, "integrations": ids })
            .to_string()
            .into_bytes()
            .into(),
    );
    for (file, src) in srcs {
        e.insert(file, export_source_bytes(src)?.to_vec().into());
    }
    let bytes = archive::write_zip(&e)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(octet_stream(&format!("{name}.par"), Body::from(bytes)))
}

struct ParsedPar {
    name: String,
    package_type: String,
    iars: Vec<(ParsedIar, Bytes)>,
}

fn parse_par(bytes: &[u8]) -> ApiResult<ParsedPar> {
    let entries = archive::read_zip(bytes).map_err(archive_error)?;
    let meta: Value = entries
        .get("package.json")
        .and_then(|c| serde_json::from_slice(c.bytes()).ok())
        .ok_or_else(|| {
            ApiError::bad_request("Invalid package archive: package.json is missing or invalid.")
        })?;
    let name = meta["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("Invalid package archive: package.json has no name."))?
        .to_string();
    let mut iars = Vec::new();
    for (n, c) in &entries {
        if n.ends_with(".iar") {
            let b = Bytes::from(c.bytes().to_vec());
            iars.push((archive::parse_iar(&b).map_err(archive_error)?, b));
        }
    }
    Ok(ParsedPar {
        name,
        package_type: meta["type"].as_str().unwrap_or("DEVELOPED").to_string(),
        iars,
    })
}

fn install(data: &mut InstanceData, par: &ParsedPar, who: &str, project: Option<&str>) {
    data.packages.insert(
        par.name.clone(),
        Package {
            name: par.name.clone(),
            package_type: par.package_type.clone(),
        },
    );
    for (p, b) in &par.iars {
        merge_dependencies(data, p, who);
        let key = (p.code.clone(), p.version.clone());
        let prev = data.integrations.get(&key).cloned();
        let mut i = integration_from_archive(
            data,
            p,
            super::state::ArchiveSource::Stored(b.clone()),
            who,
            prev.as_ref(),
            project,
        );
        i.package_name = par.name.clone();
        data.integrations.insert(key, i);
    }
}

/// `POST /packages/archive`: 204; 409 when the package or one of its integrations exists.
pub async fn import_new(
    api: Api,
    mp: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    let par = parse_par(&multipart_file(mp).await?)?;
    let mut g = api.inst.lock();
    let project = api.project().map(str::to_string);
    let data = space(&mut g, project.as_deref())?;
    if data.packages.contains_key(&par.name) {
        return Err(ApiError::conflict(format!(
            "Package '{}' already exists.",
            par.name
        )));
    }
    if let Some(i) = par
        .iars
        .iter()
        .find_map(|(p, _)| data.integrations.get(&(p.code.clone(), p.version.clone())))
    {
        return Err(ApiError::conflict(format!("{} already exists.", label(i))));
    }
    install(data, &par, api.who(), project.as_deref());
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /packages/archive`: 200; 404 missing; 412 when a contained integration is active or locked.
pub async fn import_replace(
    api: Api,
    mp: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    let par = parse_par(&multipart_file(mp).await?)?;
    let mut g = api.inst.lock();
    let project = api.project().map(str::to_string);
    let data = space(&mut g, project.as_deref())?;
    if !data.packages.contains_key(&par.name) {
        return Err(not_found(&par.name));
    }
    if let Some(i) = par.iars.iter().find_map(|(p, _)| {
        data.integrations
            .get(&(p.code.clone(), p.version.clone()))
            .filter(|i| is_active(i.status) || i.locked_by.is_some())
    }) {
        return Err(ApiError::precondition(format!(
            "{} is active or locked.",
            label(i)
        )));
    }
    install(data, &par, api.who(), project.as_deref());
    let p = data
        .packages
        .get(&par.name)
        .cloned()
        .ok_or_else(|| not_found(&par.name))?;
    Ok(json_ok(&package_json(&api.prefix(), &p, data)))
}

/// `DELETE /packages/{id}`: deletes the package and its integrations (200); 412 when one is active or locked.
pub async fn delete(api: Api) -> ApiResult<Response> {
    let name = api.id().to_string();
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    if !data.packages.contains_key(&name) {
        return Err(not_found(&name));
    }
    if let Some(i) = data
        .integrations
        .values()
        .find(|i| i.package_name == name && (is_active(i.status) || i.locked_by.is_some()))
    {
        return Err(ApiError::precondition(format!(
            "{} is active or locked.",
            label(i)
        )));
    }
    data.integrations.retain(|_, i| i.package_name != name);
    data.packages.remove(&name);
    Ok(empty_ok())
}
