//! ferry against a hostile HTTP server (a tiny one inside the test, on loopback): numbers that
//! overflow, bodies that never end or trickle, error bodies that echo the credentials.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry::config::{Auth, Generation, IdentityProfile, InstanceProfile, Secret};
use ferry::oic::OicClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the hostile server saw it.
#[derive(Clone, Debug, Default)]
struct Req {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn header(&self, name: &str) -> String {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

/// What the server answers.
enum Body {
    Bytes(Vec<u8>),
    /// `total` bytes of `fill`, written one byte every `every`.
    Trickle {
        total: usize,
        every: Duration,
    },
    /// A JSON list that never ends (until the client hangs up), sent as fast as it reads.
    Endless,
}

struct Reply {
    status: u16,
    content_type: &'static str,
    body: Body,
}

fn json(status: u16, v: serde_json::Value) -> Reply {
    Reply {
        status,
        content_type: "application/json",
        body: Body::Bytes(v.to_string().into_bytes()),
    }
}

type Handler = Arc<dyn Fn(&Req) -> Reply + Send + Sync>;

struct Hostile {
    url: String,
    seen: Arc<Mutex<Vec<Req>>>,
}

async fn hostile(handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> Hostile {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    let seen: Arc<Mutex<Vec<Req>>> = Arc::default();
    let h: Handler = Arc::new(handler);
    let s2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = l.accept().await {
            let h = h.clone();
            let seen = s2.clone();
            tokio::spawn(async move {
                let _ = serve(sock, h, seen).await;
            });
        }
    });
    Hostile { url, seen }
}

async fn read_request(sock: &mut TcpStream) -> std::io::Result<Option<Req>> {
    let mut buf = vec![];
    let mut b = [0u8; 4096];
    let end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = sock.read(&mut b).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&b[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.split("\r\n");
    let first: Vec<&str> = lines.next().unwrap_or("").split(' ').collect();
    let mut req = Req {
        method: first.first().unwrap_or(&"").to_string(),
        path: first.get(1).unwrap_or(&"").to_string(),
        headers: vec![],
        body: vec![],
    };
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            req.headers
                .push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = req.header("content-length").parse().unwrap_or(0);
    req.body = buf[end + 4..].to_vec();
    while req.body.len() < len {
        let n = sock.read(&mut b).await?;
        if n == 0 {
            break;
        }
        req.body.extend_from_slice(&b[..n]);
    }
    Ok(Some(req))
}

async fn serve(mut sock: TcpStream, h: Handler, seen: Arc<Mutex<Vec<Req>>>) -> std::io::Result<()> {
    while let Some(req) = read_request(&mut sock).await? {
        seen.lock().expect("seen").push(req.clone());
        let r = h(&req);
        let len = match &r.body {
            Body::Bytes(b) => format!("content-length: {}\r\n", b.len()),
            Body::Trickle { total, .. } => format!("content-length: {total}\r\n"),
            Body::Endless => String::new(),
        };
        let head = format!(
            "HTTP/1.1 {} X\r\ncontent-type: {}\r\n{len}\r\n",
            r.status, r.content_type
        );
        sock.write_all(head.as_bytes()).await?;
        match r.body {
            Body::Bytes(b) => sock.write_all(&b).await?,
            Body::Trickle { total, every } => {
                for _ in 0..total {
                    sock.write_all(b"P").await?;
                    tokio::time::sleep(every).await;
                }
            }
            Body::Endless => {
                sock.write_all(b"{\"items\":[").await?;
                let chunk = "{\"code\":\"X\",\"version\":\"01.00.0000\"},".repeat(2000);
                loop {
                    sock.write_all(chunk.as_bytes()).await?;
                }
            }
        }
    }
    Ok(())
}

fn profile(url: &str, auth: Auth) -> InstanceProfile {
    InstanceProfile {
        name: "evil".into(),
        base_url: url.to_string(),
        generation: Generation::Gen2,
        integration_instance: None,
        auth,
        timeout_secs: 30,
        reads: Default::default(),
    }
}

fn oauth(url: &str, secret: &str) -> Auth {
    Auth::ClientCredentials {
        token_url: format!("{url}/oauth2/v1/token"),
        client_id: "evil-client".into(),
        client_secret: Secret::new(secret),
        scope: "urn:test".into(),
    }
}

fn empty_list() -> Reply {
    json(
        200,
        serde_json::json!({"items": [], "totalResults": 0, "hasMore": false, "Resources": []}),
    )
}

/// Finding 3: `expires_in` of 2^63 and more made ferry panic adding it to `Instant`.
#[tokio::test]
async fn huge_expires_in_does_not_panic() {
    for n in ["9223372036854775808", "18446744073709551615"] {
        let n = n.to_string();
        let srv = hostile(move |r| {
            if r.path.starts_with("/oauth2/") {
                let body = format!(
                    "{{\"access_token\":\"tok-abc\",\"token_type\":\"Bearer\",\"expires_in\":{n}}}"
                );
                Reply {
                    status: 200,
                    content_type: "application/json",
                    body: Body::Bytes(body.into_bytes()),
                }
            } else {
                empty_list()
            }
        })
        .await;
        let c =
            OicClient::new(&profile(&srv.url, oauth(&srv.url, "s3cret-value"))).expect("client");
        let list = c
            .list_integrations(None)
            .await
            .expect("list with a huge token lifetime");
        assert!(list.is_empty());
        // The identity-domain client does the same addition.
        let idp = IdentityProfile {
            name: "evil-idp".into(),
            url: srv.url.clone(),
            token_url: format!("{}/oauth2/v1/token", srv.url),
            client_id: "evil-client".into(),
            client_secret: Secret::new("s3cret-value"),
            scope: "urn:opc:idm:__myscopes__".into(),
            apps: Default::default(),
            timeout_secs: 30,
        };
        let id = ferry::rbac::scim::IdentityClient::new(&idp).expect("identity client");
        let found = id.find_user("a@example.com").await.expect("find user");
        assert!(found.is_none());
        assert!(srv.seen.lock().unwrap().len() >= 3);
    }
}

/// Finding 5: a JSON answer that never ends is cut at the cap with a clear error, not read into
/// memory without bound.
#[tokio::test]
async fn an_endless_json_answer_is_refused_at_the_cap() {
    let srv = hostile(|r| {
        if r.path.starts_with("/oauth2/") {
            json(200, serde_json::json!({"access_token": "tok-endless", "token_type": "Bearer", "expires_in": 3600}))
        } else {
            Reply {
                status: 200,
                content_type: "application/json",
                body: Body::Endless,
            }
        }
    })
    .await;
    let c = OicClient::new(&profile(&srv.url, oauth(&srv.url, "s3cret-value"))).expect("client");
    let e = tokio::time::timeout(Duration::from_secs(60), c.list_integrations(None))
        .await
        .expect("refused in time")
        .unwrap_err();
    assert!(e.to_string().contains("larger than 32 MiB"), "{e}");
}

/// Finding 5: a download trickling a byte every 300 ms is stopped by the stall window
/// (the instance's `download_stall_secs`), as a transport error the effect layer retries.
#[tokio::test]
async fn a_trickled_download_stalls_out() {
    let srv = hostile(|r| {
        if r.path.starts_with("/oauth2/") {
            json(200, serde_json::json!({"access_token": "tok-trickle", "token_type": "Bearer", "expires_in": 3600}))
        } else if r.path.contains("/archive") {
            Reply {
                status: 200,
                content_type: "application/octet-stream",
                body: Body::Trickle {
                    total: 1000,
                    every: Duration::from_millis(300),
                },
            }
        } else {
            json(200, serde_json::json!({"id": "A|01.00.0000", "code": "A", "version": "01.00.0000", "status": "CONFIGURED", "name": "A"}))
        }
    })
    .await;
    let mut p = profile(&srv.url, oauth(&srv.url, "s3cret-value"));
    p.reads.download_stall_secs = Some(2);
    let c = OicClient::new(&p).expect("client");
    let id = ferry::oic::IntegrationId::parse("A|01.00.0000").expect("id");
    let started = std::time::Instant::now();
    let e = tokio::time::timeout(Duration::from_secs(30), c.export_integration(&id))
        .await
        .expect("stopped in time")
        .unwrap_err();
    assert!(e.to_string().contains("stalled"), "{e}");
    assert!(e.is_retryable(), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Finding 6: the webhook payload reaches chat with its mentions neutralised, control
/// characters escaped and secrets scrubbed.
#[tokio::test]
async fn webhook_payloads_are_neutralised() {
    let srv = hostile(|_| json(200, serde_json::json!({"ok": true}))).await;
    let _secret = Secret::new("hook-secret-4711");
    let hook = ferry::notify::Webhook::new(
        Secret::new(format!("{}/hooks/T0K3N", srv.url)),
        Duration::from_secs(5),
    )
    .expect("webhook");
    hook.post(&serde_json::json!({
        "text": "<!channel> @here @Everyone <@U123> done \u{1b}[31mred hook-secret-4711",
        "failures": [{"message": "<!here> again"}],
    }))
    .await
    .expect("posted");
    let seen = srv.seen.lock().unwrap().clone();
    assert_eq!(seen[0].method, "POST");
    let body = String::from_utf8(seen[0].body.clone()).expect("utf-8");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    let text = v["text"].as_str().unwrap();
    for bad in [
        "<!channel>",
        "@here",
        "@Everyone",
        "<@U123>",
        "\u{1b}",
        "hook-secret-4711",
        "<!here>",
    ] {
        assert!(
            !body.contains(bad) && !text.contains(bad),
            "{bad} in {body}"
        );
    }
    assert!(text.contains("&lt;!channel&gt;"), "{text}");
    assert!(text.contains("done"), "{text}");
}

/// Finding 4: a server that echoes the `Authorization` header (Basic credentials with a short
/// password, a bearer token ferry obtained) and the URL-encoded client secret in its error
/// bodies: none of it reaches stdout, stderr (retry warnings at the default level, and -vvv), the
/// ledger or the run's reports.
#[test]
fn echoed_credentials_never_leave_ferry() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let token = "tok-0123456789-obtained";
    let secret = "cl!ent secret/42";
    let srv = rt.block_on(hostile(move |r| {
        if r.path.starts_with("/oauth2/") {
            return json(
                200,
                serde_json::json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600}),
            );
        }
        let enc: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let title = format!(
            "denied: Authorization: {} (client secret {enc}, raw {secret}, password pw9)",
            r.header("authorization")
        );
        json(503, serde_json::json!({ "title": title }))
    }));
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("pw.txt"), "pw9\n").unwrap();
    std::fs::write(d.join("cs.txt"), secret).unwrap();
    std::fs::write(
        d.join("ferry.toml"),
        format!(
            "[instances.basic]\nbase_url = \"{u}\"\ngeneration = 2\nusername = \"svc\"\npassword = \"file:pw.txt\"\ntimeout_secs = 5\n\n\
             [instances.oauth]\nbase_url = \"{u}\"\ngeneration = 2\ntoken_url = \"{u}/oauth2/v1/token\"\nclient_id = \"evil-client\"\n\
             client_secret = \"file:cs.txt\"\nscope = \"urn:x\"\ntimeout_secs = 5\n",
            u = srv.url
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("leak.rhai"),
        "try { oic::instance(\"basic\").integrations(); } catch (e) { print(e.message); log::info(e.message); }\n\
         oic::instance(\"oauth\").integrations();\n",
    )
    .unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let forbidden = [
        token.to_string(),
        secret.to_string(),
        url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>(),
        b64.encode("svc:pw9"),
        b64.encode(format!(
            "evil-client:{}",
            url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>()
        )),
        " pw9".to_string(),
    ];
    for verbosity in [None, Some("-vvv")] {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"));
        c.current_dir(d)
            .args(["run", "leak.rhai", "--retry-base-ms", "5"])
            .args(verbosity)
            .env_remove("FERRY_CONFIG")
            .env("NO_COLOR", "1");
        let out = c.output().expect("run ferry");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_ne!(out.status.code(), Some(0));
        assert!(
            stdout.contains("denied"),
            "the error itself is shown: {stdout}"
        );
        assert!(stderr.contains("denied"), "{stderr}");
        let mut files = String::new();
        let mut stack = vec![d.join(".ferry")];
        while let Some(p) = stack.pop() {
            for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else {
                    files.push_str(&String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()));
                }
            }
        }
        assert!(
            files.contains("denied"),
            "the ledger and reports hold the error"
        );
        for f in &forbidden {
            for (what, text) in [("stdout", &stdout), ("stderr", &stderr), ("files", &files)] {
                assert!(
                    !text.contains(f.as_str()),
                    "{f:?} leaked to {what} ({verbosity:?}):\n{text}"
                );
            }
        }
    }
}

/// Finding 4 (token endpoint): a token endpoint that answers 503 echoing the client secret (raw,
/// URL-encoded) and the Basic header it was sent: the retry warnings at the default level, the
/// final error, the ledger and the reports hold none of it.
#[test]
fn a_token_endpoint_echoing_the_client_secret_leaks_nothing() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let secret = "t0ken-end/point secret+9";
    let srv = rt.block_on(hostile(move |r| {
        if r.path.starts_with("/oauth2/") {
            let enc: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
            return json(
                503,
                serde_json::json!({
                    "error": "temporarily_unavailable",
                    "error_description": format!(
                        "busy; got {} and client_secret={enc} ({secret})",
                        r.header("authorization")
                    )
                }),
            );
        }
        empty_list()
    }));
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("cs.txt"), secret).unwrap();
    std::fs::write(
        d.join("ferry.toml"),
        format!(
            "[instances.oauth]\nbase_url = \"{u}\"\ngeneration = 2\ntoken_url = \"{u}/oauth2/v1/token\"\nclient_id = \"evil-client\"\n\
             client_secret = \"file:cs.txt\"\nscope = \"urn:x\"\ntimeout_secs = 5\n",
            u = srv.url
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("t.rhai"),
        "oic::instance(\"oauth\").integrations();\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .current_dir(d)
        .args(["run", "t.rhai", "--retry-base-ms", "5"])
        .env_remove("FERRY_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run ferry");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        format!("{stdout}{stderr}").contains("busy"),
        "the error itself is shown: {stdout}\n{stderr}"
    );
    let tries = srv
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path.starts_with("/oauth2/"))
        .count();
    assert!(tries >= 2, "the token request was retried ({tries})");
    let mut files = String::new();
    let mut stack = vec![d.join(".ferry")];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                files.push_str(&String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()));
            }
        }
    }
    use base64::Engine as _;
    let enc: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let forbidden = [
        secret.to_string(),
        enc.clone(),
        base64::engine::general_purpose::STANDARD.encode(format!("evil-client:{enc}")),
        base64::engine::general_purpose::STANDARD.encode(format!("evil-client:{secret}")),
    ];
    for f in &forbidden {
        for (what, text) in [("stdout", &stdout), ("stderr", &stderr), ("files", &files)] {
            assert!(
                !text.contains(f.as_str()),
                "{f:?} leaked to {what}:\n{text}"
            );
        }
    }
}

/// Finding 6 (terminal side): an integration name and an error body holding terminal escapes
/// (CSI colour, an OSC title sequence ended by BEL, a carriage return) are shown escaped by
/// the recipe's print, the run's warnings and summary, `ferry errors` and `ferry runs show`:
/// no raw control character reaches the terminal.
#[test]
fn server_text_reaches_the_terminal_escaped() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let evil = "EVIL\u{1b}[31mRED\u{1b}]0;owned\u{7}\rX";
    let srv = rt.block_on(hostile(move |r| {
        let path = r.path.split('?').next().unwrap_or_default();
        if path.ends_with("/archive") {
            return json(
                500,
                serde_json::json!({ "title": format!("export broke: {evil}") }),
            );
        }
        if path.ends_with("/integrations") {
            return json(
                200,
                serde_json::json!({"items": [{
                    "id": "EVIL|01.00.0000", "code": "EVIL", "version": "01.00.0000",
                    "name": evil, "status": "CONFIGURED", "lastUpdated": "2026-01-01T00:00:00.000+0000"
                }], "totalResults": 1, "hasMore": false}),
            );
        }
        empty_list()
    }));
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("pw.txt"), "pw-ctl-77\n").unwrap();
    std::fs::write(
        d.join("ferry.toml"),
        format!(
            "[run]\nretry_base_ms = 5\n\n[instances.evil]\nbase_url = \"{}\"\ngeneration = 2\nusername = \"svc\"\npassword = \"file:pw.txt\"\ntimeout_secs = 5\n",
            srv.url
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("ctl.rhai"),
        "let s = oic::instance(\"evil\");\nlet l = s.integrations();\nprint(`found ${l[0].name}`);\n\
         s.export_archives(l);\n",
    )
    .unwrap();
    let ferry = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
            .current_dir(d)
            .args(args)
            .env_remove("FERRY_CONFIG")
            .env_remove("FERRY_LEDGER")
            .env("NO_COLOR", "1")
            .output()
            .expect("run ferry");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let raw = |t: &str| t.chars().any(|c| matches!(c, '\u{1b}' | '\u{7}' | '\r'));
    let (code, stdout, stderr) = ferry(&["run", "ctl.rhai"]);
    assert_ne!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("found EVIL"),
        "the name is shown: {stdout}\n{stderr}"
    );
    assert!(
        format!("{stdout}{stderr}").contains("export broke"),
        "the error is shown: {stdout}\n{stderr}"
    );
    for (what, t) in [("run stdout", &stdout), ("run stderr", &stderr)] {
        assert!(!raw(t), "{what} holds a raw control character: {t:?}");
    }
    let (code, errors, stderr) = ferry(&["errors"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(errors.contains("export broke"), "{errors}");
    assert!(!raw(&errors), "ferry errors: {errors:?}");
    let (code, runs, _) = ferry(&["runs", "--json"]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&runs).expect("runs json");
    let id = v[0]["id"]
        .as_str()
        .or_else(|| v[0]["run"]["id"].as_str())
        .unwrap_or_else(|| panic!("a run id: {v}"))
        .to_string();
    let (code, show, stderr) = ferry(&["runs", "show", &id]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(show.contains("export broke"), "{show}");
    assert!(!raw(&show), "ferry runs show: {show:?}");
}

/// Finding 9: a `base_url` with a password, a query or a fragment is refused, without echoing
/// the password.
#[test]
fn base_url_with_password_query_or_fragment_is_refused() {
    for url in [
        "https://svc:hunter22@oic.example.com",
        "https://oic.example.com/?x=1",
        "https://oic.example.com/#frag",
    ] {
        let e = OicClient::new(&profile(
            url,
            oauth("https://idcs.example.com", "s3cret-value"),
        ))
        .err()
        .unwrap_or_else(|| panic!("{url} accepted"));
        let msg = e.to_string();
        assert!(msg.contains("must not carry"), "{msg}");
        assert!(!msg.contains("hunter22"), "{msg}");
    }
    OicClient::new(&profile(
        "https://oic.example.com",
        oauth("https://idcs.example.com", "s3cret-value"),
    ))
    .expect("a plain base_url is fine");
}
