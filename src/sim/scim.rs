//! The identity domain's SCIM API (§10) on the identity listener: Users, Groups, Apps, AppRoles, Grants.
//!
//! Calls need a bearer token of the admin client (scope `urn:opc:idm:__myscopes__`).

use std::collections::BTreeMap;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Ctx;
use super::auth::bearer_token;

/// Scope of the admin client.
pub const ADMIN_SCOPE: &str = "urn:opc:idm:__myscopes__";

/// OIC application roles.
pub const OIC_ROLES: &[&str] = &[
    "ServiceAdministrator",
    "ServiceDeveloper",
    "ServiceViewer",
    "ServiceMonitor",
    "ServiceDeployer",
    "ServiceUser",
    "ServiceInvoker",
    "ServiceEndUser",
];

/// Identity-domain content. Resources are stored as their SCIM JSON.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct IdentityStore {
    /// Users by id.
    pub users: BTreeMap<String, Value>,
    /// Groups by id.
    pub groups: BTreeMap<String, Value>,
    /// Apps by id.
    pub apps: BTreeMap<String, Value>,
    /// App roles by id.
    pub app_roles: BTreeMap<String, Value>,
    /// Grants by id.
    pub grants: BTreeMap<String, Value>,
    counter: u64,
    seed: u64,
}

impl IdentityStore {
    /// An empty store whose ids derive from `seed`.
    pub fn new(seed: u64) -> Self {
        IdentityStore {
            seed,
            ..Default::default()
        }
    }

    /// A new 32-hex id (deterministic per seed and creation order).
    pub fn new_id(&mut self) -> String {
        use sha2::{Digest, Sha256};
        self.counter += 1;
        let d = Sha256::digest(format!("{}:{}", self.seed, self.counter).as_bytes());
        hex::encode(&d[..16])
    }

    fn meta(kind: &str) -> Value {
        let now = super::state::oic_date(&chrono::Utc::now());
        json!({ "resourceType": kind, "created": now, "lastModified": now })
    }

    /// Adds a user; returns its id. An existing user with that e-mail is returned as is.
    pub fn add_user(&mut self, email: &str, display_name: &str) -> String {
        if let Some((id, _)) = self.users.iter().find(|(_, u)| {
            u["userName"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(email))
        }) {
            return id.clone();
        }
        let id = self.new_id();
        let (given, family) = display_name.split_once(' ').unwrap_or((display_name, ""));
        self.users.insert(
            id.clone(),
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "id": id,
                "userName": email,
                "displayName": display_name,
                "name": { "givenName": given, "familyName": family, "formatted": display_name },
                "emails": [ { "value": email, "primary": true, "type": "work" } ],
                "active": true,
                "meta": Self::meta("User"),
            }),
        );
        id
    }

    /// Adds a group with members (e-mails of existing users; unknown ones are created); returns its id.
    pub fn add_group(&mut self, name: &str, members: &[&str]) -> String {
        let member_ids: Vec<Value> = members
            .iter()
            .map(|m| {
                let uid = self.add_user(m, m.split('@').next().unwrap_or(m));
                json!({ "value": uid, "type": "User", "display": m })
            })
            .collect();
        if let Some((id, g)) = self
            .groups
            .iter_mut()
            .find(|(_, g)| g["displayName"] == name)
        {
            g["members"] = Value::Array(member_ids);
            return id.clone();
        }
        let id = self.new_id();
        self.groups.insert(
            id.clone(),
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "id": id,
                "displayName": name,
                "members": member_ids,
                "meta": Self::meta("Group"),
            }),
        );
        id
    }

    /// Adds the OIC application of an instance and its roles; returns the app id.
    pub fn add_oic_app(&mut self, display_name: &str, audience: &str) -> String {
        let id = self.new_id();
        self.apps.insert(
            id.clone(),
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:oracle:idcs:App"],
                "id": id,
                "displayName": display_name,
                "serviceTypeURN": "INTEGRATIONCAUTO",
                "audience": audience,
                "active": true,
                "meta": Self::meta("App"),
            }),
        );
        for role in OIC_ROLES {
            let rid = self.new_id();
            self.app_roles.insert(
                rid.clone(),
                json!({
                    "schemas": ["urn:ietf:params:scim:schemas:oracle:idcs:AppRole"],
                    "id": rid,
                    "displayName": role,
                    "app": { "value": id, "display": display_name },
                    "adminRole": false,
                    "meta": Self::meta("AppRole"),
                }),
            );
        }
        id
    }

    /// Whether an ACL principal resolves (`type` `user` or `group`).
    pub fn resolves(&self, id: &str, kind: &str) -> bool {
        if kind.eq_ignore_ascii_case("group") {
            self.groups.contains_key(id)
        } else {
            self.users.contains_key(id)
        }
    }
}

fn scim_json(status: StatusCode, v: &Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/scim+json"),
    );
    r
}

/// A SCIM error response (RFC 7644 shape).
pub fn scim_error(status: StatusCode, detail: &str, scim_type: Option<&str>) -> Response {
    let mut v = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": status.as_u16().to_string(),
        "detail": detail,
    });
    if let Some(t) = scim_type {
        v["scimType"] = json!(t);
    }
    let mut r = scim_json(status, &v);
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    r
}

fn check_admin(ctx: &Ctx, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(t) = bearer_token(headers) else {
        return Err(Box::new(scim_error(
            StatusCode::UNAUTHORIZED,
            "Authorization required.",
            None,
        )));
    };
    let info = ctx.shared.tokens().get(&t).cloned();
    match info {
        Some(i) if i.expires > Instant::now() && i.scope.split(' ').any(|s| s == ADMIN_SCOPE) => {
            Ok(())
        }
        Some(i) if i.expires > Instant::now() => Err(Box::new(scim_error(
            StatusCode::FORBIDDEN,
            "The access token does not grant identity-domain administration.",
            None,
        ))),
        _ => Err(Box::new(scim_error(
            StatusCode::UNAUTHORIZED,
            "The access token is invalid or expired.",
            None,
        ))),
    }
}

/// One SCIM filter condition.
#[derive(Debug)]
struct FilterCond {
    attr: String,
    op: String,
    value: String,
}

/// Parses `attr op "value" [and attr op "value" ...]` (ops `eq`, `co`, `sw`, `ew`, `pr`).
fn parse_filter(f: &str) -> Result<Vec<FilterCond>, String> {
    let re = regex::Regex::new(r#"(?i)^\s*([A-Za-z0-9_.$:]+)\s+(eq|co|sw|ew|ne)\s+"((?:[^"\\]|\\.)*)"\s*$|^\s*([A-Za-z0-9_.$:]+)\s+(pr)\s*$"#)
        .map_err(|e| e.to_string())?;
    let split = regex::Regex::new(r"(?i)\s+and\s+").map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for part in split.split(f) {
        let c = re
            .captures(part)
            .ok_or_else(|| format!("Invalid filter: {f}"))?;
        if let Some(attr) = c.get(4) {
            out.push(FilterCond {
                attr: attr.as_str().to_string(),
                op: "pr".into(),
                value: String::new(),
            });
        } else {
            out.push(FilterCond {
                attr: c[1].to_string(),
                op: c[2].to_lowercase(),
                value: c[3].replace("\\\"", "\""),
            });
        }
    }
    Ok(out)
}

/// Values at a dotted path (arrays are flattened).
fn values_at<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut cur = vec![v];
    for seg in path.split('.') {
        let mut next = Vec::new();
        for c in cur {
            let items: Vec<&Value> = match c {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            for i in items {
                let found = i.as_object().and_then(|o| {
                    o.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(seg))
                        .map(|(_, v)| v)
                });
                if let Some(f) = found {
                    match f {
                        Value::Array(a) => next.extend(a.iter()),
                        other => next.push(other),
                    }
                }
            }
        }
        cur = next;
    }
    cur
}

fn matches(v: &Value, conds: &[FilterCond]) -> bool {
    conds.iter().all(|c| {
        let vals = values_at(v, &c.attr);
        if c.op == "pr" {
            return !vals.is_empty();
        }
        let test = |x: &Value| {
            let s = match x {
                Value::String(s) => s.to_lowercase(),
                other => other.to_string().to_lowercase(),
            };
            let want = c.value.to_lowercase();
            match c.op.as_str() {
                "eq" => s == want,
                "ne" => s != want,
                "co" => s.contains(&want),
                "sw" => s.starts_with(&want),
                _ => s.ends_with(&want),
            }
        };
        vals.into_iter().any(test)
    })
}

fn list_response(all: Vec<Value>, filter: Option<&str>, start: usize, count: usize) -> Response {
    let conds = match filter.map(parse_filter).transpose() {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => return scim_error(StatusCode::BAD_REQUEST, &e, Some("invalidFilter")),
    };
    let matched: Vec<Value> = all.into_iter().filter(|v| matches(v, &conds)).collect();
    let total = matched.len();
    let start = start.max(1);
    let page: Vec<Value> = matched.into_iter().skip(start - 1).take(count).collect();
    scim_json(
        StatusCode::OK,
        &json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": total,
            "Resources": page,
            "startIndex": start,
            "itemsPerPage": count,
        }),
    )
}

fn query_params(raw: Option<&str>) -> BTreeMap<String, String> {
    raw.map(|r| {
        url::form_urlencoded::parse(r.as_bytes())
            .into_owned()
            .collect()
    })
    .unwrap_or_default()
}

fn paging(q: &BTreeMap<String, String>) -> (usize, usize) {
    let start = q
        .get("startIndex")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let count = q
        .get("count")
        .and_then(|s| s.parse().ok())
        .unwrap_or(50usize)
        .min(1000);
    (start, count)
}

fn collection(ctx: &Ctx, kind: &str) -> Vec<Value> {
    let ids = ctx.shared.identity();
    let m = match kind {
        "Users" => &ids.users,
        "Groups" => &ids.groups,
        "Apps" => &ids.apps,
        "AppRoles" => &ids.app_roles,
        _ => &ids.grants,
    };
    m.values().cloned().collect()
}

/// `GET /admin/v1/{Users|Groups|Apps|AppRoles|Grants}?filter=...&startIndex=&count=`.
pub async fn list(
    State(ctx): State<Ctx>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Err(r) = check_admin(&ctx, &headers) {
        return *r;
    }
    if !["Users", "Groups", "Apps", "AppRoles", "Grants"].contains(&kind.as_str()) {
        return scim_error(StatusCode::NOT_FOUND, "Unknown resource type.", None);
    }
    let q = query_params(raw.as_deref());
    let (start, count) = paging(&q);
    list_response(
        collection(&ctx, &kind),
        q.get("filter").map(String::as_str),
        start,
        count,
    )
}

/// `GET /admin/v1/{kind}/{id}`.
pub async fn get_one(
    State(ctx): State<Ctx>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_admin(&ctx, &headers) {
        return *r;
    }
    match collection(&ctx, &kind)
        .into_iter()
        .find(|v| v["id"] == id.as_str())
    {
        Some(v) => scim_json(StatusCode::OK, &v),
        None => scim_error(
            StatusCode::NOT_FOUND,
            &format!("Resource {id} not found."),
            None,
        ),
    }
}

/// `POST /admin/v1/Grants`: 201; 409 when the grantee already has the role; 400/404 on bad references.
async fn grant_create(State(ctx): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = check_admin(&ctx, &headers) {
        return *r;
    }
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return scim_error(
                StatusCode::BAD_REQUEST,
                &format!("Invalid JSON: {e}"),
                Some("invalidSyntax"),
            );
        }
    };
    let gtype = v["grantee"]["type"].as_str().unwrap_or("");
    let gid = v["grantee"]["value"].as_str().unwrap_or("");
    let app = v["app"]["value"].as_str().unwrap_or("");
    let attr = v["entitlement"]["attributeName"].as_str().unwrap_or("");
    let role = v["entitlement"]["attributeValue"].as_str().unwrap_or("");
    if gid.is_empty()
        || app.is_empty()
        || role.is_empty()
        || attr != "appRoles"
        || !["User", "Group"].contains(&gtype)
    {
        return scim_error(
            StatusCode::BAD_REQUEST,
            "grantee{type,value}, app.value and entitlement{attributeName:appRoles,attributeValue} are required.",
            Some("invalidValue"),
        );
    }
    let mut ids = ctx.shared.identity();
    let grantee = if gtype == "User" {
        ids.users.get(gid)
    } else {
        ids.groups.get(gid)
    };
    let Some(grantee) = grantee.cloned() else {
        return scim_error(
            StatusCode::NOT_FOUND,
            &format!("{gtype} {gid} not found."),
            None,
        );
    };
    if !ids.apps.contains_key(app) {
        return scim_error(
            StatusCode::NOT_FOUND,
            &format!("App {app} not found."),
            None,
        );
    }
    if ids
        .app_roles
        .get(role)
        .is_none_or(|r| r["app"]["value"] != app)
    {
        return scim_error(
            StatusCode::NOT_FOUND,
            &format!("AppRole {role} not found in app {app}."),
            None,
        );
    }
    let dup = ids.grants.values().any(|g| {
        g["grantee"]["value"] == gid
            && g["app"]["value"] == app
            && g["entitlement"]["attributeValue"] == role
    });
    if dup {
        return scim_error(
            StatusCode::CONFLICT,
            "The grantee already has this app role.",
            Some("uniqueness"),
        );
    }
    let id = ids.new_id();
    let mechanism = v["grantMechanism"].as_str().unwrap_or(if gtype == "User" {
        "ADMINISTRATOR_TO_USER"
    } else {
        "ADMINISTRATOR_TO_GROUP"
    });
    let display = grantee["displayName"].clone();
    let grant = json!({
        "schemas": ["urn:ietf:params:scim:schemas:oracle:idcs:Grant"],
        "id": id,
        "grantee": { "type": gtype, "value": gid, "display": display },
        "app": { "value": app },
        "entitlement": { "attributeName": "appRoles", "attributeValue": role },
        "grantMechanism": mechanism,
        "meta": IdentityStore::meta("Grant"),
    });
    ids.grants.insert(id, grant.clone());
    scim_json(StatusCode::CREATED, &grant)
}

/// `DELETE /admin/v1/Grants/{id}`: 204; 404.
async fn grant_delete(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_admin(&ctx, &headers) {
        return *r;
    }
    match ctx.shared.identity().grants.remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => scim_error(
            StatusCode::NOT_FOUND,
            &format!("Grant {id} not found."),
            None,
        ),
    }
}

/// `PATCH /admin/v1/Groups/{id}` with a SCIM PatchOp adding/removing `members`.
async fn group_patch(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = check_admin(&ctx, &headers) {
        return *r;
    }
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return scim_error(
                StatusCode::BAD_REQUEST,
                &format!("Invalid JSON: {e}"),
                Some("invalidSyntax"),
            );
        }
    };
    let mut ids = ctx.shared.identity();
    let users = ids.users.clone();
    let Some(g) = ids.groups.get_mut(&id) else {
        return scim_error(
            StatusCode::NOT_FOUND,
            &format!("Group {id} not found."),
            None,
        );
    };
    for op in v["Operations"].as_array().into_iter().flatten() {
        let kind = op["op"].as_str().unwrap_or("").to_lowercase();
        if op["path"].as_str() != Some("members") {
            return scim_error(
                StatusCode::BAD_REQUEST,
                "Only the members path is supported.",
                Some("invalidPath"),
            );
        }
        let mut members: Vec<Value> = g["members"].as_array().cloned().unwrap_or_default();
        for m in op["value"].as_array().into_iter().flatten() {
            let uid = m["value"].as_str().unwrap_or("").to_string();
            match kind.as_str() {
                "add" => {
                    let Some(u) = users.get(&uid) else {
                        return scim_error(
                            StatusCode::NOT_FOUND,
                            &format!("User {uid} not found."),
                            None,
                        );
                    };
                    if !members.iter().any(|x| x["value"] == uid.as_str()) {
                        members.push(
                            json!({ "value": uid, "type": "User", "display": u["userName"] }),
                        );
                    }
                }
                "remove" => members.retain(|x| x["value"] != uid.as_str()),
                _ => {
                    return scim_error(
                        StatusCode::BAD_REQUEST,
                        "op must be add or remove.",
                        Some("invalidValue"),
                    );
                }
            }
        }
        g["members"] = Value::Array(members);
    }
    let out = g.clone();
    scim_json(StatusCode::OK, &out)
}

/// `POST /admin/v1/{kind}`: only `Grants` can be created.
pub async fn create_dispatch(
    state: State<Ctx>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if kind == "Grants" {
        grant_create(state, headers, body).await
    } else {
        scim_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Creating this resource type is not supported by the emulator.",
            None,
        )
    }
}

/// `POST /admin/v1/{kind}/.search`.
pub async fn search_dispatch(
    State(ctx): State<Ctx>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if id != ".search" {
        return scim_error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.", None);
    }
    if let Err(r) = check_admin(&ctx, &headers) {
        return *r;
    }
    if !["Users", "Groups", "Apps", "AppRoles", "Grants"].contains(&kind.as_str()) {
        return scim_error(StatusCode::NOT_FOUND, "Unknown resource type.", None);
    }
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return scim_error(
                StatusCode::BAD_REQUEST,
                &format!("Invalid JSON: {e}"),
                Some("invalidSyntax"),
            );
        }
    };
    let start = v["startIndex"].as_u64().unwrap_or(1) as usize;
    let count = v["count"].as_u64().unwrap_or(50).min(1000) as usize;
    list_response(collection(&ctx, &kind), v["filter"].as_str(), start, count)
}

/// `DELETE /admin/v1/{kind}/{id}`: only grants can be deleted.
pub async fn delete_dispatch(
    state: State<Ctx>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if kind == "Grants" {
        grant_delete(state, Path(id), headers).await
    } else {
        scim_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Deleting this resource type is not supported by the emulator.",
            None,
        )
    }
}

/// `PATCH /admin/v1/{kind}/{id}`: only group membership.
pub async fn patch_dispatch(
    state: State<Ctx>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if kind == "Groups" {
        group_patch(state, Path(id), headers, body).await
    } else {
        scim_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Patching this resource type is not supported by the emulator.",
            None,
        )
    }
}
