//! The request machinery: URL building (`integrationInstance` on OIC 3), authentication headers,
//! the single 401 renewal, timeouts, error classification and streamed archive transfers.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::limit::{Lane, Signal};
use super::{AuthKind, OicClient, OicError};
use crate::config::{Generation, Secret};

/// The Developer API prefix for integrations, projects, connections, lookups, libraries, monitoring.
pub(crate) const API: &str = "/ic/api/integration/v1";

/// Largest error body read for the title.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// A download that receives fewer than this many bytes in a stall window has stalled.
const STALL_MIN_BYTES: u64 = 1024;

/// The limits on reading answers, from the instance's profile (`max_json_mib`,
/// `download_stall_secs`, `download_deadline_secs`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadLimits {
    /// Largest JSON answer, in bytes.
    pub max_json: u64,
    /// A download stalls when less than 1 KiB arrives in this window.
    pub stall: Duration,
    /// No download takes longer than this.
    pub deadline: Duration,
}

impl ReadLimits {
    /// The profile's limits; the stall window defaults to the request timeout, at most 60 s.
    pub fn new(cfg: &crate::config::ReadLimits, timeout: Duration) -> ReadLimits {
        ReadLimits {
            max_json: cfg.max_json_mib.max(1).saturating_mul(1024 * 1024),
            stall: cfg
                .download_stall_secs
                .filter(|n| *n > 0)
                .map(Duration::from_secs)
                .unwrap_or_else(|| timeout.min(Duration::from_secs(60))),
            deadline: Duration::from_secs(cfg.download_deadline_secs.max(1)),
        }
    }
}

/// The body of a request, rebuilt for each attempt (the 401 retry re-sends it).
pub(crate) enum Body {
    Empty,
    /// `Content-Type: application/json`.
    Json(Value),
    /// `POST` + `X-HTTP-Method-Override: PATCH` + JSON.
    Patch(Value),
    /// `multipart/form-data`: the file streamed as the `file` part, plus plain text fields.
    File {
        path: PathBuf,
        file_name: String,
        fields: Vec<(String, String)>,
    },
}

/// What a 409 answered to a write means, by call: OIC answers 409 for several reasons, and
/// only the call says which ones are possible (`oic-api.md` §1.5, Oracle's per-operation pages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum On409 {
    /// No 409 of its own is documented for the call (a replace, an activation, a schedule's
    /// `PUT`, start or stop): a 409 while other writes of the instance were in flight is the
    /// instance refusing parallel writes. Sent again within the cut window, then returned as
    /// [`OicError::Busy`] (retryable with back-off by the effect executor).
    Busy,
    /// A create, whose documented 409 is "already exists" (`POST …/archive`, `POST …/schedule`).
    /// While other writes were in flight it may also be a refusal of parallel writes: sent again
    /// as [`On409::Busy`], but the last 409 is returned as [`OicError::Http`] (not retryable) and
    /// the caller reads the target to tell which (absent: [`OicError::into_busy`]).
    Exists,
    /// A 409 with a meaning of its own (a connection not fully configured, an instance archive
    /// job already running): never taken for a refusal of parallel writes; returned at once.
    Own,
}

/// One API call.
pub(crate) struct Call {
    pub method: Method,
    /// Path below the host, already percent-encoded, starting with `/ic/api/`.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Body,
    /// Archive download: no whole-request timeout, only the header and idle timeouts.
    pub download: bool,
    /// What a 409 to it means.
    pub on_409: On409,
}

impl Call {
    pub fn new(method: Method, path: impl Into<String>) -> Call {
        Call {
            method,
            path: path.into(),
            query: vec![],
            body: Body::Empty,
            download: false,
            on_409: On409::Busy,
        }
    }
    pub fn get(path: impl Into<String>) -> Call {
        Call::new(Method::GET, path)
    }
    pub fn post(path: impl Into<String>) -> Call {
        Call::new(Method::POST, path)
    }
    pub fn query(mut self, k: &str, v: impl Into<String>) -> Call {
        self.query.push((k.to_string(), v.into()));
        self
    }
    pub fn body(mut self, b: Body) -> Call {
        self.body = b;
        self
    }
    pub fn download(mut self) -> Call {
        self.download = true;
        self
    }
    /// A create: its 409 means "already exists" ([`On409::Exists`]).
    pub fn create(mut self) -> Call {
        self.on_409 = On409::Exists;
        self
    }
    /// A call whose 409 has a meaning of its own ([`On409::Own`]).
    pub fn own_409(mut self) -> Call {
        self.on_409 = On409::Own;
        self
    }
    /// The method name used in errors and logs (`PATCH` for an override).
    pub fn label(&self) -> String {
        match self.body {
            Body::Patch(_) => "PATCH".to_string(),
            _ => self.method.as_str().to_string(),
        }
    }
}

pub(crate) use crate::net::{describe, retry_after, truncate};

/// The human message of an error body: OIC's `title`, else other usual keys, else the text.
pub(crate) fn error_title(status: StatusCode, body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        for k in ["title", "detail", "error_description", "message", "error"] {
            if let Some(Value::String(s)) = v.get(k)
                && !s.is_empty()
            {
                return truncate(s, 300);
            }
        }
    }
    let text = truncate(&String::from_utf8_lossy(body), 200);
    if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    }
}

impl OicClient {
    pub(crate) fn url(&self, call: &Call) -> Result<url::Url, OicError> {
        let raw = format!("{}{}", self.inner.base, call.path);
        let mut u = url::Url::parse(&raw).map_err(|e| {
            OicError::Config(format!("{}: bad request URL `{raw}`: {e}", self.inner.name))
        })?;
        {
            let mut q = u.query_pairs_mut();
            for (k, v) in &call.query {
                q.append_pair(k, v);
            }
            if self.inner.generation == Generation::Gen3
                && let Some(ii) = &self.inner.integration_instance
            {
                q.append_pair("integrationInstance", ii);
            }
        }
        if u.query() == Some("") {
            u.set_query(None);
        }
        Ok(u)
    }

    fn transport(&self, call: &Call, e: reqwest::Error) -> OicError {
        if e.is_timeout() {
            OicError::Timeout {
                instance: self.inner.name.clone(),
                method: call.label(),
                path: call.path.clone(),
            }
        } else {
            OicError::Transport {
                instance: self.inner.name.clone(),
                method: call.label(),
                path: call.path.clone(),
                message: describe(&e),
            }
        }
    }

    /// A download that is too slow: a transport error (retried like a dropped connection).
    fn slow(&self, call: &Call, message: String) -> OicError {
        OicError::Transport {
            instance: self.inner.name.clone(),
            method: call.label(),
            path: call.path.clone(),
            message,
        }
    }

    pub(crate) fn timeout_err(&self, call: &Call) -> OicError {
        OicError::Timeout {
            instance: self.inner.name.clone(),
            method: call.label(),
            path: call.path.clone(),
        }
    }

    pub(crate) async fn attempt(
        &self,
        call: &Call,
        auth: Option<&Secret>,
    ) -> Result<Response, OicError> {
        let url = self.url(call)?;
        let http = &self.inner.http;
        let mut rb = http.request(call.method.clone(), url);
        match &self.inner.auth {
            AuthKind::Token(_) => {
                if let Some(t) = auth {
                    rb = rb.bearer_auth(t.expose());
                }
            }
            AuthKind::Basic { user, password } => rb = rb.basic_auth(user, Some(password.expose())),
        }
        let mut whole = Some(self.inner.timeout);
        match &call.body {
            Body::Empty => {}
            Body::Json(v) => {
                rb = rb
                    .header(CONTENT_TYPE, "application/json")
                    .body(v.to_string())
            }
            Body::Patch(v) => {
                rb = rb
                    .header("X-HTTP-Method-Override", "PATCH")
                    .header(CONTENT_TYPE, "application/json")
                    .body(v.to_string())
            }
            Body::File {
                path,
                file_name,
                fields,
            } => {
                let f = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| OicError::io(format!("cannot open {}", path.display()), e))?;
                let size = f
                    .metadata()
                    .await
                    .map_err(|e| OicError::io(format!("cannot read {}", path.display()), e))?
                    .len();
                let stream = tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024);
                let part = reqwest::multipart::Part::stream_with_length(
                    reqwest::Body::wrap_stream(stream),
                    size,
                )
                .file_name(file_name.clone())
                .mime_str("application/octet-stream")
                .map_err(|e| OicError::Config(format!("multipart: {e}")))?;
                let mut form = reqwest::multipart::Form::new();
                for (k, v) in fields {
                    form = form.text(k.clone(), v.clone());
                }
                form = form.part("file", part);
                rb = rb.multipart(form);
                // Uploads of large archives: the timeout plus one second per MiB.
                whole = Some(self.inner.timeout + Duration::from_secs(size / (1024 * 1024)));
            }
        }
        rb = rb.header(
            ACCEPT,
            if call.download {
                "*/*"
            } else {
                "application/json"
            },
        );
        if call.download {
            whole = None;
        }
        if let Some(t) = whole {
            rb = rb.timeout(t);
        }
        let send = rb.send();
        let res = if call.download {
            // headers within the timeout; the body is then guarded by the client's read timeout
            match tokio::time::timeout(self.inner.timeout, send).await {
                Ok(r) => r,
                Err(_) => return Err(self.timeout_err(call)),
            }
        } else {
            send.await
        };
        let resp = res.map_err(|e| self.transport(call, e))?;
        tracing::debug!(instance = %self.inner.name, method = %call.label(), path = %call.path, status = resp.status().as_u16(), "OIC call");
        Ok(resp)
    }

    /// Sends a call within the instance's adaptive concurrency limit; a 401 with OAuth renews
    /// the token once and repeats the call once; a write answered 409 while other writes were in
    /// flight (OIC refuses parallel imports), unless the call's 409 has a meaning of its own
    /// ([`On409::Own`]), is sent again, at most 3 times, after the write window was cut, and a
    /// last such 409 is [`OicError::Busy`] (retryable) unless the call is a create
    /// ([`On409::Exists`]: the caller tells); a 429/503 refusing a request sent above the window
    /// the limiter now keeps (its probe or slow start's overshoot) is sent again, at most twice,
    /// within it. Returns the response for a 2xx status, an [`OicError`] otherwise.
    pub(crate) async fn execute(&self, call: &Call) -> Result<Response, OicError> {
        let lane = match (&call.method, &call.body) {
            (_, Body::Patch(_)) => Lane::Writes,
            (m, _) if m == Method::GET || m == Method::HEAD => Lane::Reads,
            _ => Lane::Writes,
        };
        let limiter = &self.inner.limiter;
        let (mut conflicts, mut refusals) = (0, 0);
        loop {
            let permit = limiter.acquire(lane).await;
            let r = self.execute_once(call).await;
            let (signal, ra) = match &r {
                Ok(resp) => match resp.status().as_u16() {
                    429 | 503 => (Signal::Overload, retry_after(resp.headers())),
                    409 if lane == Lane::Writes
                        && call.on_409 != On409::Own
                        && permit.overlapped() =>
                    {
                        (Signal::Conflict, None)
                    }
                    _ => (Signal::Ok, None),
                },
                Err(OicError::Timeout { .. }) => (Signal::Timeout, None),
                Err(_) => (Signal::Ignore, None),
            };
            let overshoot = permit.finish(signal, ra);
            if signal == Signal::Conflict && conflicts < 3 {
                conflicts += 1;
                tracing::debug!(instance = %self.inner.name, path = %call.path, "409 on a parallel write: sent again");
                continue;
            }
            if overshoot && refusals < 2 {
                refusals += 1;
                tracing::debug!(instance = %self.inner.name, path = %call.path, "refused above the adaptive window: sent again within it");
                continue;
            }
            let resp = r?;
            if resp.status().is_success() {
                return Ok(resp);
            }
            let e = self.http_error(call, resp).await;
            return Err(
                if signal == Signal::Conflict && call.on_409 == On409::Busy {
                    e.into_busy()
                } else {
                    e
                },
            );
        }
    }

    /// One send, with the single 401 renewal.
    async fn execute_once(&self, call: &Call) -> Result<Response, OicError> {
        Ok(match &self.inner.auth {
            AuthKind::Token(ts) => {
                let tok = ts.current().await?;
                let resp = self.attempt(call, Some(&tok.value)).await?;
                if resp.status() == StatusCode::UNAUTHORIZED {
                    drop(resp);
                    tracing::debug!(instance = %self.inner.name, path = %call.path, "401: renewing the token once");
                    let tok = ts.renew(tok.serial).await?;
                    self.attempt(call, Some(&tok.value)).await?
                } else {
                    resp
                }
            }
            AuthKind::Basic { .. } => self.attempt(call, None).await?,
        })
    }

    async fn http_error(&self, call: &Call, mut resp: Response) -> OicError {
        let status = resp.status();
        let ra = retry_after(resp.headers());
        let mut body = Vec::new();
        while body.len() < MAX_ERROR_BODY {
            match resp.chunk().await {
                Ok(Some(c)) => body.extend_from_slice(&c),
                _ => break,
            }
        }
        // An error body may echo the credentials (any form): scrubbed here, at the source.
        let title = crate::config::scrub(&error_title(status, &body), &[]);
        OicError::Http {
            instance: self.inner.name.clone(),
            method: call.label(),
            path: call.path.clone(),
            status: status.as_u16(),
            title,
            retry_after: ra,
        }
    }

    /// Reads a JSON answer of at most `max_json` bytes (a larger one is refused, unread).
    async fn bounded_body(&self, call: &Call, resp: Response) -> Result<Vec<u8>, OicError> {
        let max = self.inner.reads.max_json;
        crate::net::read_capped(resp, max)
            .await
            .map_err(|e| match e {
                crate::net::CappedRead::Transport(e) => self.transport(call, e),
                crate::net::CappedRead::TooBig(max) => OicError::Protocol {
                    instance: self.inner.name.clone(),
                    method: call.label(),
                    path: call.path.clone(),
                    message: format!(
                        "the answer is larger than {} MiB (the instance's max_json_mib raises the limit)",
                        max / (1024 * 1024)
                    ),
                },
            })
    }

    /// Sends a call and parses the JSON answer (an empty body gives `null`).
    pub(crate) async fn json(&self, call: Call) -> Result<Value, OicError> {
        let resp = self.execute(&call).await?;
        let bytes = self.bounded_body(&call, resp).await?;
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| OicError::Protocol {
            instance: self.inner.name.clone(),
            method: call.label(),
            path: call.path.clone(),
            message: format!(
                "not JSON ({e}): {}",
                truncate(&String::from_utf8_lossy(&bytes), 120)
            ),
        })
    }

    /// Sends a call and discards the answer.
    pub(crate) async fn empty(&self, call: Call) -> Result<u16, OicError> {
        let resp = self.execute(&call).await?;
        let status = resp.status().as_u16();
        let _ = resp.bytes().await;
        Ok(status)
    }

    /// Streams a download into a new temporary file while hashing it. Returns the file, its size
    /// and its lower-case hex sha256. The file is removed if anything fails.
    pub(crate) async fn download(
        &self,
        call: Call,
    ) -> Result<(tempfile::TempPath, u64, String), OicError> {
        let mut resp = self.execute(&call).await?;
        // Created off the async thread: a file system under load takes a millisecond or more to
        // create a file, and that thread also sends and answers the other requests in flight.
        let tmp = tokio::task::spawn_blocking(|| {
            tempfile::Builder::new()
                .prefix("ferry-")
                .suffix(".part")
                .tempfile()
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
        .map_err(|e| OicError::io("cannot create a temporary file", e))?;
        let (file, path) = tmp.into_parts();
        let mut out = tokio::fs::File::from_std(file);
        let mut h = Sha256::new();
        let mut n = 0u64;
        let lim = self.inner.reads;
        let started = tokio::time::Instant::now();
        let deadline = started + lim.deadline;
        // (start of the current stall window, bytes received in it)
        let mut window = (started, 0u64);
        loop {
            let window_end = (window.0 + lim.stall).min(deadline);
            let chunk = match tokio::time::timeout_at(window_end, resp.chunk()).await {
                Err(_) => None,
                Ok(Err(e)) => return Err(self.transport(&call, e)),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(c))) => Some(c),
            };
            let now = tokio::time::Instant::now();
            if let Some(c) = &chunk {
                window.1 += c.len() as u64;
            }
            if now >= deadline {
                return Err(self.slow(
                    &call,
                    format!(
                        "download not done after {} s (download_deadline_secs)",
                        lim.deadline.as_secs()
                    ),
                ));
            }
            if now >= window.0 + lim.stall {
                if window.1 < STALL_MIN_BYTES {
                    return Err(self.slow(
                        &call,
                        format!(
                            "download stalled: {} byte(s) in {} s (download_stall_secs)",
                            window.1,
                            lim.stall.as_secs()
                        ),
                    ));
                }
                window = (now, 0);
            }
            let Some(chunk) = chunk else { continue };
            h.update(&chunk);
            n += chunk.len() as u64;
            out.write_all(&chunk)
                .await
                .map_err(|e| OicError::io(format!("cannot write {}", path.display()), e))?;
        }
        // No fsync: the file is a temporary copy (a crash loses it and a resumed run exports
        // again); what must survive a crash is fsynced where it is kept (the vault).
        out.flush()
            .await
            .map_err(|e| OicError::io(format!("cannot write {}", path.display()), e))?;
        drop(out);
        Ok((path, n, hex::encode(h.finalize())))
    }

    /// Every item of a collection (filtered by the OIC expression `q` when given), each read
    /// with `from`.
    pub(crate) async fn list_as<T>(
        &self,
        path: &str,
        q: Option<&str>,
        from: fn(Value) -> T,
    ) -> Result<Vec<T>, OicError> {
        let extra: Vec<(&str, String)> = q.map(|q| vec![("q", q.to_string())]).unwrap_or_default();
        self.list_all(path, &extra, from).await
    }

    /// One resource read with `from`; `None` on 404.
    pub(crate) async fn get_as<T>(
        &self,
        call: Call,
        from: fn(Value) -> T,
    ) -> Result<Option<T>, OicError> {
        match self.json(call).await {
            Ok(v) => Ok(Some(from(v))),
            Err(e) if e.is_status(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET` a collection and follow `hasMore` with `offset`/`limit`; returns all items.
    ///
    /// `hasMore` alone decides whether there is more. When the first answer's `totalResults`
    /// counts more than that page (it counts the whole collection), the other pages are asked for
    /// ahead, several at a time (each within the instance's limiter), and taken in order while
    /// each one continues where the previous one ended; a short page or a `hasMore` beyond them
    /// goes on one page at a time. A list of 1,000 items then costs one round trip and a
    /// tenth, not ten.
    pub(crate) async fn list_all<T>(
        &self,
        path: &str,
        extra: &[(&str, String)],
        from: fn(Value) -> T,
    ) -> Result<Vec<T>, OicError> {
        use futures::StreamExt;
        const LIMIT: usize = 100;
        const MAX_PAGES: usize = 10_000;
        const AHEAD: usize = 16;
        let fetch = |offset: usize| {
            let mut call = Call::get(path)
                .query("offset", offset.to_string())
                .query("limit", LIMIT.to_string());
            for (k, v) in extra {
                call = call.query(k, v.clone());
            }
            async move {
                let label = call.label();
                self.json(call).await.map(|v| (label, v))
            }
        };
        let mut out = Vec::new();
        let mut offset = 0usize;
        let mut prev_first: Option<Value> = None;
        let mut fetched = 0usize;
        while fetched < MAX_PAGES {
            let (label, v) = fetch(offset).await?;
            fetched += 1;
            let total = v.get("totalResults").and_then(Value::as_u64);
            let (got, more) =
                self.take_page(path, label, v, offset, &mut out, &mut prev_first, from)?;
            if !more {
                return Ok(out);
            }
            offset += got;
            let Some(total) = total.map(|t| t as usize).filter(|&t| t > offset) else {
                continue;
            };
            let offsets: Vec<usize> = (offset..total)
                .step_by(got)
                .take(MAX_PAGES - fetched)
                .collect();
            let mut ahead = futures::stream::iter(offsets)
                .map(|o| {
                    let page = fetch(o);
                    async move { (o, page.await) }
                })
                .buffered(AHEAD);
            while let Some((o, page)) = ahead.next().await {
                if o != offset {
                    // the previous page was short: ask from where it ended
                    break;
                }
                fetched += 1;
                let (label, v) = page?;
                let (got, more) =
                    self.take_page(path, label, v, offset, &mut out, &mut prev_first, from)?;
                if !more {
                    return Ok(out);
                }
                offset += got;
            }
        }
        Err(OicError::Protocol {
            instance: self.inner.name.clone(),
            method: "GET".into(),
            path: path.to_string(),
            message: format!("more than {MAX_PAGES} pages"),
        })
    }

    /// Takes the items of the page at `offset` into `out`; returns how many and `hasMore`.
    #[allow(clippy::too_many_arguments)]
    fn take_page<T>(
        &self,
        path: &str,
        label: String,
        mut v: Value,
        offset: usize,
        out: &mut Vec<T>,
        prev_first: &mut Option<Value>,
        from: fn(Value) -> T,
    ) -> Result<(usize, bool), OicError> {
        let protocol = |message: String| OicError::Protocol {
            instance: self.inner.name.clone(),
            method: label.clone(),
            path: path.to_string(),
            message,
        };
        let items = match v.get_mut("items").map(Value::take) {
            Some(Value::Array(a)) => a,
            None | Some(Value::Null) => vec![],
            Some(_) => return Err(protocol("`items` is not a list".into())),
        };
        let got = items.len();
        // a server that ignores `offset` would send the same page forever
        if offset > 0 && got > 0 && prev_first.as_ref() == items.first() {
            return Err(protocol(format!(
                "the page at offset {offset} repeats the previous page (offset ignored?)"
            )));
        }
        *prev_first = items.first().cloned();
        // typed as the page arrives: a parsed item is some 20 KB, a typed one a few hundred bytes
        out.extend(items.into_iter().map(from));
        let more = matches!(v.get("hasMore"), Some(Value::Bool(true)));
        if more && got == 0 {
            return Err(protocol(format!(
                "hasMore is true but the page at offset {offset} is empty"
            )));
        }
        Ok((got, more))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    #[test]
    fn titles() {
        let b = br#"{"status":"HTTP 412 Precondition Failed","title":"Integration 'A | 1.0' is either already active","type":"x"}"#;
        assert_eq!(
            error_title(StatusCode::PRECONDITION_FAILED, b),
            "Integration 'A | 1.0' is either already active"
        );
        assert_eq!(error_title(StatusCode::BAD_REQUEST, br#"{"error":"invalid_client","error_description":"Client authentication failed."}"#), "Client authentication failed.");
        assert_eq!(error_title(StatusCode::NOT_FOUND, b""), "Not Found");
        assert_eq!(
            error_title(StatusCode::BAD_GATEWAY, b"<html>\n bad   gateway</html>"),
            "<html> bad gateway</html>"
        );
        let long = "x".repeat(500);
        assert_eq!(
            error_title(StatusCode::INTERNAL_SERVER_ERROR, long.as_bytes()).len(),
            203
        );
    }

    #[test]
    fn retry_after_header() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }
}
