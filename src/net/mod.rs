//! HTTP helpers shared by ferry's clients (the OIC client and the identity-domain client), and
//! the one OAuth 2.0 token source they both use ([`oauth`]). A leaf: depends on `config` and the
//! report escaping only.

pub mod oauth;

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// A reqwest client builder with the TLS configuration every client of the process shares.
///
/// reqwest builds its rustls configuration anew for each client: the system's certificate
/// store (`SSL_CERT_FILE`, `SSL_CERT_DIR`: a few hundred certificates) read and parsed every
/// time, about 25 ms for each of the four clients a two-instance run makes before its first
/// request. This is the configuration reqwest builds (its webpki roots and the system's,
/// every TLS version, SNI, ALPN `h2` then `http/1.1`), built once.
pub fn client_builder() -> reqwest::ClientBuilder {
    match shared_tls() {
        Some(tls) => reqwest::Client::builder().use_preconfigured_tls(tls.clone()),
        // no usable system certificate: reqwest's own build reports it
        None => reqwest::Client::builder(),
    }
}

/// Builds the shared TLS configuration on a thread of its own, so that reading the system's
/// certificates overlaps a run's start (configuration, ledger, compiling the recipe) instead of
/// delaying its first request; a client built before it is done waits for it.
pub fn prepare_tls() {
    let _ = std::thread::Builder::new()
        .name("ferry-tls".into())
        .spawn(|| {
            let _ = shared_tls();
        });
}

fn shared_tls() -> Option<&'static rustls::ClientConfig> {
    static TLS: std::sync::OnceLock<Option<rustls::ClientConfig>> = std::sync::OnceLock::new();
    TLS.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let native = rustls_native_certs::load_native_certs();
        let (mut valid, mut invalid) = (0, 0);
        for cert in native.certs {
            // as reqwest: a store often holds a certificate rustls cannot parse; skip it
            match roots.add(cert) {
                Ok(()) => valid += 1,
                Err(_) => invalid += 1,
            }
        }
        if valid == 0 && invalid > 0 {
            return None;
        }
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| std::sync::Arc::new(rustls::crypto::ring::default_provider()));
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .ok()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Some(tls)
    })
    .as_ref()
}

/// Describes a reqwest error without its URL: kind plus the chain of causes.
pub fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "body transfer failed"
    } else if e.is_request() {
        "request failed"
    } else {
        "HTTP error"
    };
    let mut out = kind.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(n) = v.parse::<u64>() {
        return Some(Duration::from_secs(n));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let secs = (when.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .num_seconds()
        .max(0);
    Some(Duration::from_secs(secs as u64))
}

/// At most `n` characters, with `...` when cut; whitespace collapsed, control characters shown
/// as `\u{..}` (server text never drives a terminal).
pub fn truncate(s: &str, n: usize) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let s = crate::ledger::report::escape_controls(&s);
    if s.chars().count() <= n {
        s
    } else {
        format!("{}...", s.chars().take(n).collect::<String>())
    }
}

/// Why [`read_capped`] stopped.
#[derive(Debug)]
pub enum CappedRead {
    /// The body is larger than the cap (it was not read further).
    TooBig(u64),
    /// The connection failed while reading.
    Transport(reqwest::Error),
}

/// Reads a response body of at most `max` bytes. A server that announces or sends more is
/// refused instead of being read into memory: no answer from a server is read unbounded.
pub async fn read_capped(mut resp: reqwest::Response, max: u64) -> Result<Vec<u8>, CappedRead> {
    if resp.content_length().is_some_and(|n| n > max) {
        return Err(CappedRead::TooBig(max));
    }
    let mut body = Vec::new();
    while let Some(c) = resp.chunk().await.map_err(CappedRead::Transport)? {
        if (body.len() + c.len()) as u64 > max {
            return Err(CappedRead::TooBig(max));
        }
        body.extend_from_slice(&c);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves one answer with `head` and then `body_len` bytes, on loopback.
    async fn serve(head: &'static str, body_len: usize) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(&vec![b'x'; body_len]).await;
        });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn a_body_over_the_cap_is_refused_whether_announced_or_not() {
        let announced = serve("HTTP/1.1 200 OK\r\ncontent-length: 4096\r\n\r\n", 4096).await;
        let resp = reqwest::get(announced).await.unwrap();
        assert!(matches!(
            read_capped(resp, 1024).await,
            Err(CappedRead::TooBig(1024))
        ));

        // No length given: the read stops once the cap is passed.
        let unannounced = serve("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n", 4096).await;
        let resp = reqwest::get(unannounced).await.unwrap();
        assert!(matches!(
            read_capped(resp, 1024).await,
            Err(CappedRead::TooBig(1024))
        ));

        let small = serve("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n", 10).await;
        let resp = reqwest::get(small).await.unwrap();
        assert_eq!(read_capped(resp, 1024).await.unwrap().len(), 10);
    }
}
