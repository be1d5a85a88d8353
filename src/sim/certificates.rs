//! Certificates (instance-wide, `{API}/certificates`): list and get, metadata only
//! (docs/oic-fidelity.md "Certificates").
//!
//! Documented: `GET /certificates` (query `q` by `name`, `status`, `type`; `orderBy` `name`,
//! `expiry`, `expiry:asc`; `limit`/`offset`), `GET /certificates/{id}` with the composite id
//! `installedType|type|category|name` (404 "Certificate not found"), and an upload
//! (`POST /certificates`, multipart). The documented single answer also names `content`,
//! `keystore` and password fields without a shape or an example: the emulator answers the
//! metadata only, and keeps no certificate file or key (it has no upload).

use axum::response::Response;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::extract::Api;
use super::integrations::{enc, json_ok};
use super::query::{envelope, parse_q};
use super::state::{Certificate, oic_date};

fn cert_json(prefix: &str, c: &Certificate) -> Value {
    let href = format!("{prefix}/certificates/{}", enc(&c.id()));
    json!({
        "id": c.id(),
        "name": c.name,
        "type": c.cert_type,
        "category": c.category,
        "installedType": c.installed_type,
        "status": "CONFIGURED",
        "description": c.description,
        "issued": oic_date(&c.issued),
        "expires": oic_date(&c.expires),
        "created": oic_date(&c.issued),
        "createdBy": c.created_by,
        "lastUpdated": oic_date(&c.last_updated),
        "lastUpdatedBy": c.created_by,
        "links": [ { "href": href, "rel": "self" }, { "href": href, "rel": "canonical" } ],
    })
}

/// `GET /certificates`.
pub async fn list(api: Api) -> ApiResult<Response> {
    let (offset, limit) = api.params.paging()?;
    let conds = parse_q(api.params.get("q"), &["name", "status", "type"])?;
    let g = api.inst.lock();
    let mut items: Vec<&Certificate> = g
        .certificates
        .values()
        .filter(|c| {
            conds.iter().all(|q| match q.key() {
                "name" => q.matches(&c.name),
                "type" => q.matches(&c.cert_type),
                _ => q.matches("CONFIGURED"),
            })
        })
        .collect();
    match api.params.get("orderBy").unwrap_or("") {
        "" | "name" => items.sort_by(|a, b| a.name.cmp(&b.name)),
        "expiry" => items.sort_by_key(|c| std::cmp::Reverse(c.expires)),
        "expiry:asc" => items.sort_by_key(|c| c.expires),
        o => return Err(ApiError::bad_request(format!("Invalid orderBy '{o}'."))),
    }
    let prefix = api.prefix();
    let all = items.iter().map(|c| cert_json(&prefix, c)).collect();
    Ok(json_ok(&envelope(
        all,
        offset,
        limit,
        &format!("{prefix}/certificates"),
    )))
}

/// `GET /certificates/{id}` (`installedType|type|category|name`).
pub async fn get(api: Api) -> ApiResult<Response> {
    let g = api.inst.lock();
    let c = g
        .certificates
        .get(api.id())
        .ok_or_else(|| ApiError::not_found("Certificate not found"))?;
    Ok(json_ok(&cert_json(&api.prefix(), c)))
}
