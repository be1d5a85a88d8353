//! JavaScript libraries (§6.2): list, get, export (`.jar`), import, replace, metadata, delete.

use axum::body::Body;
use axum::extract::Multipart;
use axum::extract::multipart::MultipartRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use chrono::Utc;
use serde_json::{Value, json};

use super::archive;
use super::error::{ApiError, ApiResult};
use super::extract::{Api, space};
use super::integrations::{empty_ok, enc, json_ok, multipart_fields, octet_stream, split_id};
use super::query::{envelope, parse_q};
use super::state::{Library, oic_date};

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Library '{id}' not found."))
}

/// Function names declared in JavaScript source (`function name(`).
pub fn js_functions(src: &str) -> Vec<String> {
    super::archive::cached_regex(r"function\s+([A-Za-z_$][A-Za-z0-9_$]*)\s*\(")
        .map(|re| re.captures_iter(src).map(|c| c[1].to_string()).collect())
        .unwrap_or_default()
}

/// Functions of an uploaded library file: a `.js` text, or a `.jar`/zip holding `.js` files.
pub fn functions_of(bytes: &[u8]) -> Vec<String> {
    match archive::read_zip(bytes) {
        Ok(entries) => entries
            .iter()
            .filter(|(n, _)| n.ends_with(".js"))
            .flat_map(|(_, c)| js_functions(&String::from_utf8_lossy(c.bytes())))
            .collect(),
        Err(_) => js_functions(&String::from_utf8_lossy(bytes)),
    }
}

/// A `.jar` holding one `.js` file (seed data).
pub fn make_jar(code: &str, js: &str) -> Vec<u8> {
    let mut e = archive::Entries::new();
    e.insert(
        "META-INF/MANIFEST.MF".into(),
        b"Manifest-Version: 1.0\n".to_vec().into(),
    );
    e.insert(
        format!("resources/{}.js", code.to_lowercase()),
        js.as_bytes().to_vec().into(),
    );
    archive::write_zip(&e).unwrap_or_default()
}

/// The library resource.
pub fn library_json(prefix: &str, l: &Library) -> Value {
    let id = format!("{}|{}", l.code, l.version);
    let href = format!("{prefix}/libraries/{}", enc(&id));
    json!({
        "id": id,
        "code": l.code,
        "version": l.version,
        "displayName": l.name,
        "name": l.name,
        "description": l.description,
        "libraryType": l.library_type,
        "calloutType": "JS",
        "status": "CONFIGURED",
        "lockedFlag": false,
        "usage": 0,
        "lastUpdated": oic_date(&l.last_updated),
        "links": [ { "href": href, "rel": "self" }, { "href": href, "rel": "canonical" } ],
    })
}

/// `GET /libraries`.
pub async fn list(api: Api) -> ApiResult<Response> {
    let (offset, limit) = api.params.paging()?;
    let conds = parse_q(api.params.get("q"), &["name", "code", "type"])?;
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    let prefix = api.prefix();
    let all = data
        .libraries
        .values()
        .filter(|l| {
            conds.iter().all(|c| match c.key() {
                "name" => c.matches(&l.name),
                "code" => c.matches(&l.code),
                _ => c.matches(&l.library_type),
            })
        })
        .map(|l| library_json(&prefix, l))
        .collect();
    Ok(json_ok(&envelope(
        all,
        offset,
        limit,
        &format!("{prefix}/libraries"),
    )))
}

/// `GET /libraries/{id}`.
pub async fn get(api: Api) -> ApiResult<Response> {
    let key = split_id(api.id()).map_err(|_| not_found(api.id()))?;
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    let l = data
        .libraries
        .get(&key)
        .ok_or_else(|| not_found(api.id()))?;
    Ok(json_ok(&library_json(&api.prefix(), l)))
}

/// `GET /libraries/{id}/archive`: the `.jar` bytes.
pub async fn export(api: Api) -> ApiResult<Response> {
    let key = split_id(api.id()).map_err(|_| not_found(api.id()))?;
    let bytes = {
        let mut g = api.inst.lock();
        let data = space(&mut g, api.project())?;
        data.libraries
            .get(&key)
            .ok_or_else(|| not_found(api.id()))?
            .archive
            .clone()
    };
    Ok(octet_stream(
        &format!("{}_{}.jar", key.0, key.1),
        Body::from(bytes),
    ))
}

/// `POST /libraries/archive` multipart `file`, `name`, `code`, `version`, `type`, `description`: 204; 409.
pub async fn import(api: Api, mp: Result<Multipart, MultipartRejection>) -> ApiResult<Response> {
    let (file, fields) = multipart_fields(mp).await?;
    let field = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
    };
    let code = field("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("The field 'code' is required."))?;
    let version = field("version")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("The field 'version' is required."))?;
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    let key = (code.clone(), version.clone());
    if data.libraries.contains_key(&key) {
        return Err(ApiError::conflict(format!(
            "Library '{code}|{version}' already exists."
        )));
    }
    data.libraries.insert(
        key,
        Library {
            name: field("name").unwrap_or_else(|| code.clone()),
            description: field("description").unwrap_or_default(),
            library_type: field("type")
                .filter(|t| !t.is_empty() && t != "application/octet-stream")
                .unwrap_or_else(|| "API".into()),
            functions: functions_of(&file),
            archive: file,
            code,
            version,
            last_updated: Utc::now(),
        },
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /libraries/{id}/archive` multipart `file`: replaces the code (200).
pub async fn replace(api: Api, mp: Result<Multipart, MultipartRejection>) -> ApiResult<Response> {
    let key = split_id(api.id()).map_err(|_| not_found(api.id()))?;
    let (file, _) = multipart_fields(mp).await?;
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    let l = data
        .libraries
        .get_mut(&key)
        .ok_or_else(|| not_found(api.id()))?;
    l.functions = functions_of(&file);
    l.archive = file;
    l.last_updated = Utc::now();
    let out = library_json(&api.prefix(), l);
    Ok(json_ok(&out))
}

/// `GET /libraries/{id}/metadata`: the function signatures.
pub async fn metadata(api: Api) -> ApiResult<Response> {
    let key = split_id(api.id()).map_err(|_| not_found(api.id()))?;
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    let l = data
        .libraries
        .get(&key)
        .ok_or_else(|| not_found(api.id()))?;
    Ok(json_ok(&json!({
        "id": api.id(),
        "functions": l.functions.iter().map(|f| json!({ "name": f, "type": "JS" })).collect::<Vec<_>>(),
    })))
}

/// `DELETE /libraries/{id}`: 200.
pub async fn delete(api: Api) -> ApiResult<Response> {
    let key = split_id(api.id()).map_err(|_| not_found(api.id()))?;
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    data.libraries
        .remove(&key)
        .ok_or_else(|| not_found(api.id()))?;
    Ok(empty_ok())
}
