//! Lookups (§6.1): list, get, CSV export/import, JSON create, delete.
//!
//! CSV layout (the reference leaves it open): line 1 `DVM,<name>,<description>`, line 2 the column (domain)
//! names, then one line per row. Fields are quoted RFC 4180 style when needed.

use axum::body::Body;
use axum::extract::Multipart;
use axum::extract::multipart::MultipartRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::Utc;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::extract::{Api, space};
use super::integrations::{empty_ok, enc, json_ok, json_status, multipart_file, octet_stream};
use super::query::{envelope, parse_q};
use super::state::{InstanceData, Lookup, oic_date};

fn not_found(n: &str) -> ApiError {
    ApiError::not_found(format!("Lookup '{n}' not found."))
}

fn usage(data: &InstanceData, name: &str) -> usize {
    data.integrations
        .values()
        .filter(|i| i.lookups.iter().any(|l| l == name))
        .count()
}

/// The lookup resource (`rows` only with `full`).
pub fn lookup_json(prefix: &str, l: &Lookup, data: &InstanceData, full: bool) -> Value {
    let href = format!("{prefix}/lookups/{}", enc(&l.name));
    let mut v = json!({
        "name": l.name,
        "id": l.name,
        "description": l.description,
        "columns": l.columns,
        "rowCount": l.rows.len(),
        "status": "CONFIGURED",
        "lockedFlag": false,
        "usage": usage(data, &l.name),
        "lastUpdated": oic_date(&l.last_updated),
        "links": [ { "href": href, "rel": "self" }, { "href": href, "rel": "canonical" } ],
    });
    if full {
        v["rows"] = json!(
            l.rows
                .iter()
                .map(|r| json!({ "rowData": r }))
                .collect::<Vec<_>>()
        );
    }
    v
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The CSV export of a lookup.
pub fn to_csv(l: &Lookup) -> String {
    let line = |fields: &[String]| {
        fields
            .iter()
            .map(|f| csv_field(f))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut out = line(&["DVM".to_string(), l.name.clone(), l.description.clone()]);
    out.push('\n');
    out.push_str(&line(&l.columns));
    out.push('\n');
    for r in &l.rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
}

/// Parses CSV text into records.
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut rec = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = false,
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => rec.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                rec.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut rec));
                any = false;
            }
            c => field.push(c),
        }
    }
    if any {
        rec.push(field);
        records.push(rec);
    }
    records
}

/// Parses the CSV export format (400 when malformed).
pub fn from_csv(text: &str) -> ApiResult<Lookup> {
    let recs = parse_csv(text);
    let bad = |m: &str| ApiError::bad_request(format!("Invalid lookup CSV: {m}"));
    let head = recs.first().ok_or_else(|| bad("empty file"))?;
    if head.first().map(String::as_str) != Some("DVM") || head.get(1).is_none_or(|n| n.is_empty()) {
        return Err(bad("the first line must be DVM,<name>,<description>"));
    }
    let columns = recs
        .get(1)
        .cloned()
        .ok_or_else(|| bad("missing the column line"))?;
    if columns.len() < 2 {
        return Err(bad("a lookup needs at least two columns"));
    }
    let rows: Vec<Vec<String>> = recs[2..]
        .iter()
        .filter(|r| !(r.len() == 1 && r[0].is_empty()))
        .cloned()
        .collect();
    if rows.iter().any(|r| r.len() != columns.len()) {
        return Err(bad("every row must have one value per column"));
    }
    Ok(Lookup {
        name: head[1].clone(),
        description: head.get(2).cloned().unwrap_or_default(),
        columns,
        rows,
        last_updated: Utc::now(),
    })
}

/// `GET /lookups`.
pub async fn list(api: Api) -> ApiResult<Response> {
    let (offset, limit) = api.params.paging()?;
    let conds = parse_q(api.params.get("q"), &["name", "status"])?;
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    let mut items: Vec<&Lookup> = data
        .lookups
        .values()
        .filter(|l| {
            conds.iter().all(|c| match c.key() {
                "name" => c.matches(&l.name),
                _ => c.matches("CONFIGURED"),
            })
        })
        .collect();
    match api.params.get("orderBy").unwrap_or("") {
        "" | "name" => {}
        "time" => items.sort_by_key(|l| std::cmp::Reverse(l.last_updated)),
        o => return Err(ApiError::bad_request(format!("Invalid orderBy '{o}'."))),
    }
    let prefix = api.prefix();
    let all = items
        .iter()
        .map(|l| lookup_json(&prefix, l, data, false))
        .collect();
    Ok(json_ok(&envelope(
        all,
        offset,
        limit,
        &format!("{prefix}/lookups"),
    )))
}

/// `GET /lookups/{id}`.
pub async fn get(api: Api) -> ApiResult<Response> {
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    let l = data
        .lookups
        .get(api.id())
        .ok_or_else(|| not_found(api.id()))?;
    Ok(json_ok(&lookup_json(&api.prefix(), l, data, true)))
}

/// `GET /lookups/{id}/archive`: CSV bytes.
pub async fn export(api: Api) -> ApiResult<Response> {
    let csv = {
        let mut g = api.inst.lock();
        let data = space(&mut g, api.project())?;
        to_csv(
            data.lookups
                .get(api.id())
                .ok_or_else(|| not_found(api.id()))?,
        )
    };
    Ok(octet_stream(&format!("{}.csv", api.id()), Body::from(csv)))
}

async fn read_upload(mp: Result<Multipart, MultipartRejection>) -> ApiResult<Lookup> {
    let bytes = multipart_file(mp).await?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::bad_request("The lookup file is not UTF-8 text."))?;
    from_csv(&text)
}

/// `POST /lookups/archive`: 204; 409 exists.
pub async fn import_new(
    api: Api,
    mp: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    let l = read_upload(mp).await?;
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    if data.lookups.contains_key(&l.name) {
        return Err(ApiError::conflict(format!(
            "Lookup '{}' already exists.",
            l.name
        )));
    }
    data.lookups.insert(l.name.clone(), l);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /lookups/archive`: 204 with `Location` (the lookup; recorded); 404 missing.
pub async fn import_replace(
    api: Api,
    mp: Result<Multipart, MultipartRejection>,
) -> ApiResult<Response> {
    let l = read_upload(mp).await?;
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    if !data.lookups.contains_key(&l.name) {
        return Err(not_found(&l.name));
    }
    let loc = format!(
        "{}/lookups/{}{}",
        api.prefix(),
        enc(&l.name),
        api.instance_query()
    );
    data.lookups.insert(l.name.clone(), l);
    let mut r = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&loc) {
        r.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(r)
}

/// `POST /lookups` `{"name","description","columns":[...],"rows":[{"rowData":[...]}]}`: 201; 409.
pub async fn create(api: Api, body: Bytes) -> ApiResult<Response> {
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))?;
    let name = v["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("name is required."))?;
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x.as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let columns = strs(&v["columns"]);
    if columns.len() < 2 {
        return Err(ApiError::bad_request(
            "A lookup needs at least two columns.",
        ));
    }
    let rows: Vec<Vec<String>> = v["rows"]
        .as_array()
        .map(|a| a.iter().map(|r| strs(&r["rowData"])).collect())
        .unwrap_or_default();
    if rows.iter().any(|r| r.len() != columns.len()) {
        return Err(ApiError::bad_request(
            "Every row must have one value per column.",
        ));
    }
    let l = Lookup {
        name: name.to_string(),
        description: v["description"].as_str().unwrap_or_default().to_string(),
        columns,
        rows,
        last_updated: Utc::now(),
    };
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    if data.lookups.contains_key(&l.name) {
        return Err(ApiError::conflict(format!(
            "Lookup '{}' already exists.",
            l.name
        )));
    }
    let out = lookup_json(&api.prefix(), &l, data, true);
    data.lookups.insert(l.name.clone(), l);
    Ok(json_status(StatusCode::CREATED, &out))
}

/// `DELETE /lookups/{id}`: 200; 412 in use.
pub async fn delete(api: Api) -> ApiResult<Response> {
    let mut g = api.inst.lock();
    let data = space(&mut g, api.project())?;
    if !data.lookups.contains_key(api.id()) {
        return Err(not_found(api.id()));
    }
    let n = usage(data, api.id());
    if n > 0 {
        return Err(ApiError::precondition(format!(
            "Lookup '{}' is used by {n} integration(s).",
            api.id()
        )));
    }
    data.lookups.remove(api.id());
    Ok(empty_ok())
}
