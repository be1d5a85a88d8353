//! Shared helpers of the emulator tests (`support::sim`, imported as `common` by the emulator tests).
#![allow(dead_code)]

use std::io::{Cursor, Read, Write};

use ferry::sim::{self, Seed, SimConfig, SimHandle, SimInstanceInfo, SimInstanceSpec};
use reqwest::multipart::{Form, Part};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;

pub const API: &str = "/ic/api/integration/v1";
/// The common (service instance) API: instance archive jobs.
pub const COMMON: &str = "/ic/api/common/v1";

pub fn spec(name: &str, generation: u8, seed: Seed) -> SimInstanceSpec {
    SimInstanceSpec {
        name: name.into(),
        generation,
        seed,
    }
}

/// dev (gen 2, Sample), prod (gen 3, TargetConnections), empty2 (gen 2, Empty), test3 (gen 3, Sample).
pub async fn start() -> SimHandle {
    sim::start(SimConfig {
        instances: vec![
            spec("dev", 2, Seed::Sample),
            spec("prod", 3, Seed::TargetConnections),
            spec("empty2", 2, Seed::Empty),
            spec("test3", 3, Seed::Sample),
        ],
        ..SimConfig::default()
    })
    .await
    .expect("emulator starts")
}

/// A caller bound to one instance: Basic auth on gen 2, bearer on gen 3.
pub struct Oic {
    pub http: Client,
    pub info: SimInstanceInfo,
    pub token: Option<String>,
}

/// A client-credentials token request to `url` (Basic client auth) and its answer.
pub async fn client_credentials(
    http: &Client,
    url: &str,
    client: (&str, &str),
    scope: &str,
) -> Response {
    http.post(url)
        .basic_auth(client.0, Some(client.1))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .expect("token request")
}

/// The answer of the instance's token endpoint to its client (as JSON).
pub async fn token_json(http: &Client, info: &SimInstanceInfo) -> Value {
    let resp = client_credentials(
        http,
        &info.token_url,
        (&info.client_id, &info.client_secret),
        &info.scope,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.expect("token json")
}

pub async fn fetch_token(http: &Client, info: &SimInstanceInfo) -> String {
    let v = token_json(http, info).await;
    assert_eq!(v["token_type"], "Bearer");
    v["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

impl Oic {
    pub async fn new(h: &SimHandle, name: &str) -> Oic {
        let http = Client::new();
        let info = h.instance(name).expect("instance").clone();
        let token = if info.generation == 3 {
            Some(fetch_token(&http, &info).await)
        } else {
            None
        };
        Oic { http, info, token }
    }
    /// Full URL of `path` (under the API prefix), with `integrationInstance` on gen 3.
    pub fn url(&self, path: &str) -> String {
        self.url_at(API, path)
    }
    /// Full URL of `path` under `prefix` ([`API`] or [`COMMON`]), with `integrationInstance` on
    /// gen 3.
    pub fn url_at(&self, prefix: &str, path: &str) -> String {
        let mut u = format!("{}{prefix}{path}", self.info.base_url);
        if let Some(ii) = &self.info.integration_instance {
            u.push(if u.contains('?') { '&' } else { '?' });
            u.push_str("integrationInstance=");
            u.push_str(ii);
        }
        u
    }
    pub fn req(&self, m: Method, path: &str) -> RequestBuilder {
        self.req_at(API, m, path)
    }
    /// A request to `path` under `prefix`, authenticated as the instance wants.
    pub fn req_at(&self, prefix: &str, m: Method, path: &str) -> RequestBuilder {
        let rb = self.http.request(m, self.url_at(prefix, path));
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb.basic_auth(
                self.info.username.as_deref().unwrap_or(""),
                self.info.password.as_deref(),
            ),
        }
    }
    pub async fn get(&self, path: &str) -> Response {
        self.req(Method::GET, path).send().await.expect("GET")
    }
    /// `m path` of the common (service instance) API, with a JSON body if given.
    pub async fn common(&self, m: Method, path: &str, body: Option<&Value>) -> Response {
        send_with(self.req_at(COMMON, m, path), body).await
    }
    /// `m path` without a body.
    pub async fn call(&self, m: Method, path: &str) -> Response {
        self.req(m, path).send().await.expect("send")
    }
    /// `m path` with a JSON body.
    pub async fn call_json(&self, m: Method, path: &str, body: &Value) -> Response {
        self.req(m, path).json(body).send().await.expect("send")
    }
    /// `m path` with a multipart form (an archive upload, see [`file_form`]).
    pub async fn upload(&self, m: Method, path: &str, form: Form) -> Response {
        self.req(m, path)
            .multipart(form)
            .send()
            .await
            .expect("send")
    }
    /// Asserts that `GET path` answers `status` in OIC's error shape; returns the title.
    pub async fn get_error(&self, path: &str, status: Status) -> String {
        assert_error(self.get(path).await, status).await
    }
    pub async fn json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.json().await.expect("json")
    }
    pub async fn patch(&self, path: &str, body: &str) -> Response {
        self.req(Method::POST, path)
            .header("X-HTTP-Method-Override", "PATCH")
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("PATCH override")
    }
    pub async fn import(&self, m: Method, bytes: Vec<u8>) -> Response {
        let form = file_form(bytes, "x.iar").text("type", "application/octet-stream");
        self.upload(m, "/integrations/archive", form).await
    }
    pub async fn export(&self, id: &str) -> Vec<u8> {
        let r = self
            .get(&format!("/integrations/{}/archive", id.replace('|', "%7C")))
            .await;
        assert_eq!(r.status(), StatusCode::OK, "export {id}");
        assert_eq!(r.headers()["content-type"], "application/octet-stream");
        r.bytes().await.expect("bytes").to_vec()
    }
}

/// A multipart form with `bytes` as the part `file` named `name`.
pub fn file_form(bytes: Vec<u8>, name: &str) -> Form {
    Form::new().part("file", Part::bytes(bytes).file_name(name.to_string()))
}

/// An error status as OIC answers it (§1.6): code, reason phrase, anchor of its RFC 2616 section.
#[derive(Clone, Copy, Debug)]
pub struct Status(pub u16, pub &'static str, pub &'static str);

pub const BAD_REQUEST: Status = Status(400, "Bad Request", "sec10.4.1");
pub const UNAUTHORIZED: Status = Status(401, "Unauthorized", "sec10.4.2");
pub const NOT_FOUND: Status = Status(404, "Not Found", "sec10.4.5");
pub const METHOD_NOT_ALLOWED: Status = Status(405, "Method Not Allowed", "sec10.4.6");
pub const CONFLICT: Status = Status(409, "Conflict", "sec10.4.10");
pub const PRECONDITION_FAILED: Status = Status(412, "Precondition Failed", "sec10.4.13");
pub const LOCKED: Status = Status(423, "Locked", "sec10.4");
pub const TOO_MANY_REQUESTS: Status = Status(429, "Too Many Requests", "sec10.4");
pub const INTERNAL_SERVER_ERROR: Status = Status(500, "Internal Server Error", "sec10.5.1");
pub const SERVICE_UNAVAILABLE: Status = Status(503, "Service Unavailable", "sec10.5.4");

/// Asserts the §1.6 error shape with `status` and returns the title.
pub async fn assert_error(r: Response, status: Status) -> String {
    let Status(code, reason, anchor) = status;
    assert_eq!(r.status().as_u16(), code);
    assert_eq!(r.headers()["content-type"], "application/json");
    let text = r.text().await.expect("body");
    let v: Value = serde_json::from_str(&text).expect("error json");
    let title = v["title"].as_str().expect("title").to_string();
    let expected = format!(
        "{{\"status\":\"HTTP {code} {reason}\",\"title\":{},\"type\":\"https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#{anchor}\"}}",
        serde_json::to_string(&title).expect("title json")
    );
    assert_eq!(text, expected);
    title
}

pub fn zip_entries(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut z = zip::ZipArchive::new(Cursor::new(bytes)).expect("zip");
    let mut out = std::collections::BTreeMap::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).expect("entry");
        let name = f.name().expect("name").to_string();
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).expect("read");
        out.insert(name, buf);
    }
    out
}

/// The entries of an archive without the export time stamp (the comment line that starts each
/// `.properties` file): two exports of the same content compare equal with this.
pub fn content(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    zip_entries(bytes)
        .into_iter()
        .map(|(n, c)| {
            if n.ends_with(".properties") {
                let text = String::from_utf8_lossy(&c)
                    .lines()
                    .filter(|l| !l.starts_with('#'))
                    .map(|l| format!("{l}\n"))
                    .collect::<String>();
                (n, text.into_bytes())
            } else {
                (n, c)
            }
        })
        .collect()
}

pub fn rezip(entries: &std::collections::BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (n, c) in entries {
        w.start_file(n.as_str(), zip::write::SimpleFileOptions::default())
            .expect("start");
        w.write_all(c).expect("write");
    }
    w.finish().expect("finish").into_inner()
}

/// A caller of the emulator's identity domain (SCIM under `/admin/v1`) with the admin
/// application's token.
pub struct Scim {
    pub http: Client,
    pub base: String,
    pub token: String,
}

impl Scim {
    pub async fn new(h: &SimHandle) -> Scim {
        let http = Client::new();
        let r = client_credentials(
            &http,
            &format!("{}/oauth2/v1/token", h.info.identity_url),
            (&h.info.admin_client_id, &h.info.admin_client_secret),
            "urn:opc:idm:__myscopes__",
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        let token = r.json::<Value>().await.expect("json")["access_token"]
            .as_str()
            .expect("token")
            .to_string();
        Scim {
            http,
            base: format!("{}/admin/v1", h.info.identity_url),
            token,
        }
    }
    /// `m path` with the admin token and a JSON body if given.
    pub async fn call(&self, m: Method, path: &str, body: Option<&Value>) -> Response {
        let rb = self
            .http
            .request(m, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        send_with(rb, body).await
    }
    /// The JSON answer of `GET path`.
    pub async fn json(&self, path: &str) -> Value {
        self.call(Method::GET, path, None)
            .await
            .json()
            .await
            .expect("json")
    }
    /// The JSON answer of `GET /resource?filter=` (`filter` percent-encoded here).
    pub async fn filter(&self, resource: &str, filter: &str) -> Value {
        self.json(&format!("/{resource}?filter={}", enc(filter)))
            .await
    }
}

/// `s` percent-encoded for a query parameter or a path segment.
pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Sends `rb` with `body` as JSON when given (the emulator's answer, whatever its status).
async fn send_with(rb: reqwest::RequestBuilder, body: Option<&Value>) -> Response {
    match body {
        Some(b) => rb.json(b),
        None => rb,
    }
    .send()
    .await
    .expect("send")
}
