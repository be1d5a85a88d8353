//! The OIC error body of oic-api.md §1.6 and the 401 answer of §2.3.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error answered in the OIC shape:
/// `{"status":"HTTP 409 Conflict","title":"...","type":"https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.10"}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human message (`title`).
    pub title: String,
    /// Extra response headers (e.g. `WWW-Authenticate`, `Retry-After`).
    pub headers: Vec<(header::HeaderName, String)>,
}

impl ApiError {
    /// An error with this status and title.
    pub fn new(status: StatusCode, title: impl Into<String>) -> Self {
        ApiError {
            status,
            title: title.into(),
            headers: Vec::new(),
        }
    }
    /// 400 Bad Request.
    pub fn bad_request(title: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, title)
    }
    /// 404 Not Found.
    pub fn not_found(title: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, title)
    }
    /// 409 Conflict.
    pub fn conflict(title: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, title)
    }
    /// 412 Precondition Failed.
    pub fn precondition(title: impl Into<String>) -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED, title)
    }
    /// 423 Locked.
    pub fn locked(title: impl Into<String>) -> Self {
        Self::new(StatusCode::LOCKED, title)
    }
    /// 401 with `WWW-Authenticate: Bearer`.
    pub fn unauthorized(title: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, title)
            .with_header(header::WWW_AUTHENTICATE, "Bearer".to_string())
    }
    /// Adds a response header.
    pub fn with_header(mut self, name: header::HeaderName, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// The RFC 2616 section anchor for a status code (`#sec10.4.10` for 409).
pub fn rfc2616_anchor(code: u16) -> &'static str {
    match code {
        400 => "#sec10.4.1",
        401 => "#sec10.4.2",
        403 => "#sec10.4.4",
        404 => "#sec10.4.5",
        405 => "#sec10.4.6",
        406 => "#sec10.4.7",
        409 => "#sec10.4.10",
        410 => "#sec10.4.11",
        412 => "#sec10.4.13",
        413 => "#sec10.4.14",
        415 => "#sec10.4.16",
        500 => "#sec10.5.1",
        501 => "#sec10.5.2",
        502 => "#sec10.5.3",
        503 => "#sec10.5.4",
        504 => "#sec10.5.5",
        // 423 and 429 are not in RFC 2616: point at the 4xx / 5xx chapter.
        c if c >= 500 => "#sec10.5",
        _ => "#sec10.4",
    }
}

/// The compact JSON error body (keys `status`, `title`, `type`, in that order).
pub fn error_body(status: StatusCode, title: &str) -> String {
    let line = format!(
        "HTTP {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let ty = format!(
        "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html{}",
        rfc2616_anchor(status.as_u16())
    );
    // Built by hand so that the key order is guaranteed.
    format!(
        "{{\"status\":{},\"title\":{},\"type\":{}}}",
        serde_json::Value::String(line),
        serde_json::Value::String(title.to_string()),
        serde_json::Value::String(ty)
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, error_body(self.status, &self.title)).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().insert(name, v);
            }
        }
        resp
    }
}

/// Result type of the handlers.
pub type ApiResult<T> = Result<T, ApiError>;
