//! OAuth 2.0 token endpoint (identity listener) and request authentication for the OIC listeners.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rand::RngCore;

use super::Ctx;
use super::ListenerKind;
use super::error::ApiError;
use super::state::{Instance, Shared, TokenInfo};

/// The caller behind a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// User name (basic auth) or client id (bearer).
    pub principal: String,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({ "error": error, "error_description": description }).to_string();
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"idcs\""),
        );
    }
    resp
}

/// Decodes `Authorization: Basic ...` into (user, password).
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// The bearer token of a request.
pub fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim().to_string())
}

/// Scopes an instance's client may request / a token may carry for the instance's developer API.
pub fn instance_scopes(inst: &Instance) -> [String; 2] {
    [
        inst.ident.scope.clone(),
        format!("{}urn:opc:resource:consumer::all", inst.ident.audience),
    ]
}

fn new_token(shared: &Shared, client_id: &str, scope: &str) -> String {
    let n = shared.token_counter.fetch_add(1, Ordering::Relaxed);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"x5t#S256":"sim","kid":"SIGNING_KEY","alg":"RS256"}"#);
    let payload = b64.encode(
        serde_json::json!({ "sub": client_id, "scope": scope, "jti": n, "iss": "https://identity.oraclecloud.com/" })
            .to_string(),
    );
    let mut sig = [0u8; 32];
    rand::rng().fill_bytes(&mut sig);
    format!("{header}.{payload}.{}", b64.encode(sig))
}

/// `POST /oauth2/v1/token`: client credentials or a JWT user assertion (`jwt-bearer`), with Basic,
/// form or client-assertion client authentication (see [`super::jwt`]).
pub async fn token(State(ctx): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let shared = &ctx.shared;
    let client =
        if field("client_assertion_type").as_deref() == Some(super::jwt::CLIENT_ASSERTION_TYPE) {
            // Client authentication by a signed client assertion instead of the secret.
            let jwt = field("client_assertion").unwrap_or_default();
            match super::jwt::client_from_assertion(shared, field("client_id").as_deref(), &jwt) {
                Ok(id) => shared.clients().into_iter().find(|c| c.client_id == id),
                Err(r) => return oauth_error(StatusCode::UNAUTHORIZED, r.error, &r.description),
            }
        } else {
            let creds = basic_credentials(&headers)
                .or_else(|| Some((field("client_id")?, field("client_secret")?)));
            creds.and_then(|(id, secret)| {
                shared
                    .clients()
                    .into_iter()
                    .find(|c| c.client_id == id && c.client_secret == secret)
            })
        };
    let Some(client) = client else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed.",
        );
    };
    match field("grant_type").as_deref() {
        Some("client_credentials") => {}
        Some(super::jwt::JWT_BEARER) => {
            let jwt = field("assertion").unwrap_or_default();
            if let Err(r) = super::jwt::user_from_assertion(shared, &client.client_id, &jwt) {
                return oauth_error(StatusCode::BAD_REQUEST, r.error, &r.description);
            }
        }
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "The grant type is not supported.",
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required.",
            );
        }
    }
    let scope = field("scope").unwrap_or_default();
    if !client.scopes.iter().any(|s| s == &scope) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "The requested scope is invalid, unknown, or malformed.",
        );
    }
    let ttl = shared.token_ttl();
    let token = new_token(shared, &client.client_id, &scope);
    shared.tokens().insert(
        token.clone(),
        TokenInfo {
            scope: scope.clone(),
            client_id: client.client_id.clone(),
            expires: Instant::now() + ttl,
        },
    );
    let body = serde_json::json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
    })
    .to_string();
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// A client registered in the identity domain.
#[derive(Debug, Clone)]
pub struct Client {
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: String,
    /// Scopes it may request.
    pub scopes: Vec<String>,
}

/// Authenticates a request to an OIC listener and selects the instance (§1.1, §2).
///
/// Order: credentials are checked first (401), then the instance selector (400/404), then the token scope (401).
pub fn authenticate(
    ctx: &Ctx,
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Result<(Arc<Instance>, Caller), ApiError> {
    let shared = &ctx.shared;
    let bearer = bearer_token(headers);
    let basic = basic_credentials(headers);
    let token_info = match &bearer {
        Some(t) => {
            let info = shared.tokens().get(t).cloned();
            match info {
                Some(i) if i.expires > Instant::now() => Some(i),
                Some(_) => return Err(ApiError::unauthorized("The access token expired.")),
                None => return Err(ApiError::unauthorized("The access token is invalid.")),
            }
        }
        None => None,
    };
    let inst = match ctx.kind {
        ListenerKind::Gen2(i) => shared
            .instances
            .get(i)
            .cloned()
            .ok_or_else(|| ApiError::not_found("Unknown instance."))?,
        ListenerKind::Design => {
            if token_info.is_none() {
                return Err(if basic.is_some() {
                    ApiError::unauthorized(
                        "Basic authentication is not supported. Use an OAuth access token.",
                    )
                } else {
                    ApiError::unauthorized("Authorization required.")
                });
            }
            let name = query
                .iter()
                .find(|(k, _)| k == "integrationInstance")
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    ApiError::bad_request("The query parameter integrationInstance is required.")
                })?;
            shared
                .instances
                .iter()
                .find(|i| i.ident.integration_instance.as_deref() == Some(name.as_str()))
                .cloned()
                .ok_or_else(|| {
                    ApiError::not_found(format!("Integration instance '{name}' not found."))
                })?
        }
        ListenerKind::Identity => return Err(ApiError::not_found("Not an OIC endpoint.")),
    };
    if let Some(info) = token_info {
        if !instance_scopes(&inst).iter().any(|s| s == &info.scope) {
            return Err(ApiError::unauthorized(
                "The access token is not valid for this instance.",
            ));
        }
        return Ok((
            inst,
            Caller {
                principal: info.client_id,
            },
        ));
    }
    match basic {
        Some((u, p))
            if inst.ident.username.as_deref() == Some(u.as_str())
                && inst.ident.password.as_deref() == Some(p.as_str()) =>
        {
            Ok((inst, Caller { principal: u }))
        }
        Some(_) => Err(ApiError::unauthorized("Invalid user name or password.")),
        None => Err(ApiError::unauthorized("Authorization required.")),
    }
}
