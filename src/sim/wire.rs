//! HTTP details of OIC 3 answers, as recorded (docs/oic-fidelity.md "HTTP"): a trailing `/` on any path,
//! the common response headers, the `Content-Type` of each kind of answer, and gzip when the caller asks.
//!
//! * Paths: a trailing `/` is removed before routing (`…/integrations/CODE|VERSION/` is the same resource).
//! * Every OIC answer carries `opc-request-id: /<32 hex>/<32 hex>`, `Expires: Wed, 31 Dec 1969 23:59:59 GMT`,
//!   `Cache-Control: no-cache, no-store, must-revalidate`, `Pragma: no-cache`, `X-Content-Type-Options: nosniff`
//!   and `Strict-Transport-Security`; answers of the OIC 3 design host also `oic-virtualservice: true`.
//! * `Content-Type`: 2xx JSON answers of `/ic/api/integration/v1` say `application/json;charset=utf-8` unless the
//!   handler marked them [`PlainJson`] (the recordings show plain `application/json` for a few of them); errors
//!   and every `/ic/api/common/v1` answer say `application/json`; empty answers (204, empty 200) and binaries
//!   say `application/octet-stream`.
//! * `Accept-Encoding: gzip` → 2xx JSON answers are gzip-compressed (`Content-Encoding: gzip`).

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, HttpBody as _};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};

use super::{Ctx, ListenerKind};

/// Response extension: keep `Content-Type: application/json` without a charset (as recorded for this answer).
#[derive(Debug, Clone, Copy)]
pub struct PlainJson;

/// Marks a response as [`PlainJson`].
pub fn plain_json(mut r: Response) -> Response {
    r.extensions_mut().insert(PlainJson);
    r
}

/// Removes a trailing `/` from the request path (not from `/` itself) before routing.
pub async fn strip_trailing_slash(mut req: Request) -> Request {
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let pq = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_string(),
        };
        let mut parts = req.uri().clone().into_parts();
        if let Ok(p) = pq.parse() {
            parts.path_and_query = Some(p);
            if let Ok(u) = axum::http::Uri::from_parts(parts) {
                *req.uri_mut() = u;
            }
        }
    }
    req
}

static REQUEST_COUNTER: AtomicU64 = AtomicU64::new(1);

/// A request id in the recorded form `/<32 upper hex>/<32 upper hex>`.
pub fn request_id() -> String {
    let n = REQUEST_COUNTER.fetch_add(1, Ordering::Relaxed);
    let d = Sha256::digest(format!(
        "{n}:{}:{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    ));
    let h = hex::encode_upper(d);
    format!("/{}/{}", &h[..32], &h[32..64])
}

/// Adds `?integrationInstance=<ii>` to every developer-API URL (`href`, `endPointURI`) of this host in a JSON
/// document that does not carry one yet (runtime flow URLs excepted).
pub fn add_instance(v: &mut serde_json::Value, base_url: &str, ii: &str) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if (k == "href" || k == "endPointURI")
                    && let serde_json::Value::String(s) = x
                {
                    if wants_instance(s, base_url) {
                        s.push(if s.contains('?') { '&' } else { '?' });
                        s.push_str("integrationInstance=");
                        s.push_str(ii);
                    }
                } else {
                    add_instance(x, base_url, ii);
                }
            }
        }
        serde_json::Value::Array(a) => {
            for x in a {
                add_instance(x, base_url, ii);
            }
        }
        _ => {}
    }
}

/// Whether an OIC 3 link (the value of an `href` or `endPointURI`) is given `?integrationInstance=`: a
/// developer-API URL of this host without one (runtime flow URLs excepted).
fn wants_instance(s: &str, base_url: &str) -> bool {
    s.starts_with(base_url)
        && s.contains("/ic/api/")
        && !s.contains("/flows/")
        && !s.contains("integrationInstance=")
}

/// [`add_instance`] on the compact JSON text the handlers write, without parsing it: each
/// `"href":"…"` or `"endPointURI":"…"` member (its key opening an object member, after `{` or
/// `,`) has its value extended in place. Parsing the page into a `Value` and printing it again
/// cost 60 times the rest of a `GET integrations?limit=100` answer. `None` when the text is not
/// one this handles exactly (an escape in a link, a key written another way, or the key text
/// elsewhere): the caller then rewrites through a `Value`.
fn add_instance_text(json: &[u8], base_url: &str, ii: &str) -> Option<Vec<u8>> {
    const KEYS: [&str; 2] = ["\"href\"", "\"endPointURI\""];
    if ii.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        return None;
    }
    let text = std::str::from_utf8(json).ok()?;
    // every occurrence of a key's text must be a member rewritten below
    let mut at: Vec<(usize, usize)> = KEYS
        .iter()
        .flat_map(|k| text.match_indices(k).map(|(p, _)| (p, k.len())))
        .collect();
    at.sort_unstable();
    let mut out = String::with_capacity(text.len() + at.len() * (21 + ii.len()));
    let mut copied = 0;
    for (p, key_len) in at {
        if p < copied || p == 0 || !matches!(text.as_bytes()[p - 1], b'{' | b',') {
            return None;
        }
        let v0 = p + key_len + 2;
        let rest = text[p + key_len..].strip_prefix(":\"")?;
        let len = rest.find('"')?;
        let value = &rest[..len];
        if value.contains('\\') {
            return None;
        }
        if wants_instance(value, base_url) {
            out.push_str(&text[copied..v0 + len]);
            out.push(if value.contains('?') { '&' } else { '?' });
            out.push_str("integrationInstance=");
            out.push_str(ii);
            copied = v0 + len;
        }
    }
    out.push_str(&text[copied..]);
    Some(out.into_bytes())
}

/// Largest JSON answer that is gzip-compressed (bigger ones go out as they are).
const GZIP_MAX: usize = 64 * 1024 * 1024;

/// The response layer of the OIC listeners (see the module docs).
pub async fn layer(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    if matches!(ctx.kind, ListenerKind::Identity) {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    if path.starts_with("/__sim/") {
        return next.run(req).await;
    }
    // OIC 3: links carry `?integrationInstance=`, so they work when followed.
    let instance = if matches!(ctx.kind, ListenerKind::Design) && path.starts_with(super::API) {
        req.uri().query().and_then(integration_instance)
    } else {
        None
    };
    let gzip = accepts_gzip(req.headers());
    let mut resp = next.run(req).await;
    let status = resp.status();
    let plain = resp.extensions().get::<PlainJson>().is_some();
    set_oic_headers(resp.headers_mut(), matches!(ctx.kind, ListenerKind::Design));
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let empty = resp.body().size_hint().exact() == Some(0);
    let h = resp.headers_mut();
    if status == StatusCode::NO_CONTENT || (status.is_success() && empty && ct.is_empty()) {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        return resp;
    }
    let json = ct.starts_with("application/json");
    if json
        && status.is_success()
        && !plain
        && ct == "application/json"
        && path.starts_with(super::API)
    {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=utf-8"),
        );
    }
    let rewrite = instance.is_some() && json && status.is_success();
    if (rewrite || gzip) && json && status.is_success() && !h.contains_key(header::CONTENT_ENCODING)
    {
        return rewrite_json(resp, instance.as_deref(), &ctx.base_url, gzip).await;
    }
    resp
}

/// The `integrationInstance` of a query string.
fn integration_instance(query: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "integrationInstance")
        .map(|(_, v)| v.into_owned())
}

/// The client accepts a gzip-encoded answer.
fn accepts_gzip(h: &axum::http::HeaderMap) -> bool {
    h.get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")))
}

/// The headers OIC sends with every answer (those the handler did not set itself); the design
/// host adds `oic-virtualservice`.
fn set_oic_headers(h: &mut axum::http::HeaderMap, design: bool) {
    let set = |h: &mut axum::http::HeaderMap, k: &'static str, v: &str| {
        if !h.contains_key(k)
            && let Ok(v) = HeaderValue::from_str(v)
        {
            h.insert(k, v);
        }
    };
    set(h, "opc-request-id", &request_id());
    if design {
        set(h, "oic-virtualservice", "true");
    }
    set(h, "expires", "Wed, 31 Dec 1969 23:59:59 GMT");
    set(
        h,
        "strict-transport-security",
        "max-age=15768000; includeSubDomains",
    );
    set(h, "cache-control", "no-cache, no-store, must-revalidate");
    set(h, "pragma", "no-cache");
    set(h, "x-content-type-options", "nosniff");
}

/// A JSON answer read whole: its links given `?integrationInstance=` (OIC 3; on the text, else
/// through a `Value`), then gzipped when the client accepts it.
async fn rewrite_json(
    resp: Response,
    instance: Option<&str>,
    base_url: &str,
    gzip: bool,
) -> Response {
    let (mut parts, body) = resp.into_parts();
    let mut bytes = match axum::body::to_bytes(body, GZIP_MAX).await {
        Ok(b) => b,
        Err(_) => return Response::from_parts(parts, Body::empty()),
    };
    if let Some(ii) = instance {
        if let Some(b) = add_instance_text(&bytes, base_url, ii) {
            bytes = axum::body::Bytes::from(b);
        } else if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            add_instance(&mut v, base_url, ii);
            bytes = axum::body::Bytes::from(v.to_string());
        }
    }
    if !gzip {
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::from(bytes));
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let zipped = enc.write_all(&bytes).and_then(|_| enc.finish());
    match zipped {
        Ok(z) => {
            parts
                .headers
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(z))
        }
        Err(_) => Response::from_parts(parts, Body::from(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text rewrite gives what the `Value` rewrite gives, or declines.
    #[test]
    fn links_get_the_instance_on_the_text_as_through_a_value() {
        let base = "http://127.0.0.1:9";
        let via_value = |doc: &str| {
            let mut v: serde_json::Value = serde_json::from_str(doc).unwrap();
            add_instance(&mut v, base, "dev-sim-lo");
            v
        };
        let docs = [
            r#"{"items":[{"code":"A","links":[{"href":"http://127.0.0.1:9/ic/api/integration/v1/integrations/A%7C01.00.0000","rel":"self"},{"href":"http://127.0.0.1:9/ic/api/integration/v1/integrations/A%7C01.00.0000","rel":"canonical"}],"endPointURI":"http://127.0.0.1:9/ic/api/integration/v1/integrations/A%7C01.00.0000/schedule/jobs"},{"endPointURI":"http://127.0.0.1:9/ic/api/integration/v1/flows/rest/A/1.0/metadata","dependencies":{"connections":[{"links":[{"href":"http://127.0.0.1:9/ic/api/integration/v1/connections/C?expand=x","rel":"self"}]}]}}],"links":[{"href":"http://127.0.0.1:9/ic/api/integration/v1/integrations","rel":"self"}],"totalResults":2}"#,
            r#"{"href":"http://127.0.0.1:9/ic/api/x?integrationInstance=other","other":"http://127.0.0.1:9/ic/api/y","l":[{"href":"http://elsewhere/ic/api/z"}]}"#,
            r#"[]"#,
            r#"{"title":"no links"}"#,
        ];
        for doc in docs {
            let text = add_instance_text(doc.as_bytes(), base, "dev-sim-lo").expect(doc);
            let got: serde_json::Value = serde_json::from_slice(&text).unwrap();
            assert_eq!(got, via_value(doc), "{doc}");
        }
        // the first document: five links given the instance, the flow URL left alone
        let text = add_instance_text(docs[0].as_bytes(), base, "dev-sim-lo").unwrap();
        let text = String::from_utf8(text).unwrap();
        assert_eq!(text.matches("integrationInstance=dev-sim-lo").count(), 5);
        assert!(text.contains("C?expand=x&integrationInstance=dev-sim-lo"));
        // what it does not handle exactly goes through a `Value`
        for doc in [
            r#"{"href": "http://127.0.0.1:9/ic/api/x"}"#,
            r#"{"href":"http://127.0.0.1:9/ic/api/x\u0041"}"#,
            r#"{"rel":"href","href":"http://127.0.0.1:9/ic/api/x"}"#,
        ] {
            assert_eq!(
                add_instance_text(doc.as_bytes(), base, "dev-sim-lo"),
                None,
                "{doc}"
            );
        }
        assert_eq!(add_instance_text(b"{}", base, "a\"b"), None);
    }

    #[test]
    fn request_details_and_default_headers() {
        assert_eq!(
            integration_instance("limit=5&integrationInstance=dev-x%2D1").as_deref(),
            Some("dev-x-1")
        );
        assert_eq!(integration_instance("limit=5"), None);
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("br, gzip;q=0.5"),
        );
        assert!(accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        assert!(!accepts_gzip(&h));
        let mut h = axum::http::HeaderMap::new();
        h.insert("cache-control", HeaderValue::from_static("max-age=5"));
        set_oic_headers(&mut h, false);
        assert_eq!(
            h["cache-control"], "max-age=5",
            "the handler's own header stays"
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(h.contains_key("opc-request-id"));
        assert!(!h.contains_key("oic-virtualservice"));
        set_oic_headers(&mut h, true);
        assert_eq!(h["oic-virtualservice"], "true");
    }
}
