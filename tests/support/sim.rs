//! Shared helpers of the emulator tests (`support::sim`, imported as `common` by the emulator tests).
#![allow(dead_code)]

use std::io::{Cursor, Read, Write};

use ferry::sim::{self, Seed, SimConfig, SimHandle, SimInstanceInfo, SimInstanceSpec};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;

pub const API: &str = "/ic/api/integration/v1";

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

pub async fn fetch_token(http: &Client, info: &SimInstanceInfo) -> String {
    let resp = http
        .post(&info.token_url)
        .basic_auth(&info.client_id, Some(&info.client_secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", info.scope.as_str()),
        ])
        .send()
        .await
        .expect("token request");
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.expect("token json");
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
        let mut u = format!("{}{API}{path}", self.info.base_url);
        if let Some(ii) = &self.info.integration_instance {
            u.push(if u.contains('?') { '&' } else { '?' });
            u.push_str("integrationInstance=");
            u.push_str(ii);
        }
        u
    }
    pub fn req(&self, m: Method, path: &str) -> RequestBuilder {
        let rb = self.http.request(m, self.url(path));
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
        let form = reqwest::multipart::Form::new()
            .part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name("x.iar"),
            )
            .text("type", "application/octet-stream");
        self.req(m, "/integrations/archive")
            .multipart(form)
            .send()
            .await
            .expect("import")
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

/// Asserts the §1.6 error shape and returns the title.
pub async fn assert_error(r: Response, code: u16, reason: &str, anchor: &str) -> String {
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
