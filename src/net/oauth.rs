//! The one OAuth 2.0 token source (the `oauth2` crate), shared by the OIC client and the
//! identity-domain (SCIM) client: client-credentials requests ([`ClientCredentials`]) and a
//! cache that renews tokens before they expire ([`TokenCache`]).
//!
//! Tokens are held as [`Secret`]s (registered with the scrubber when obtained), never as plain
//! strings. A server lifetime is capped at [`MAX_TTL`] and the expiry computed with checked
//! arithmetic, so no `expires_in` overflows `Instant`. One token request at a time per cache (a
//! tokio mutex); concurrent callers wait for it and share the result. A renewal after a 401 is
//! skipped when another task already renewed the token that failed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

use oauth2::basic::BasicClient;
use oauth2::{
    AsyncHttpClient, ClientId, ClientSecret, EndpointNotSet, EndpointSet, HttpRequest,
    HttpResponse, Scope, TokenResponse, TokenUrl,
};

use crate::config::Secret;

/// Lifetime assumed when the token response has no `expires_in`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// The longest lifetime believed: a server number larger than this (up to 2^64 s, which would
/// overflow `Instant`) is taken as this.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

type Oauth =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// A bearer token with the serial number of the fetch that produced it.
#[derive(Clone)]
pub struct Token {
    pub value: Secret,
    pub serial: u64,
}

/// Why a token request failed. Never carries the secret: answers are scrubbed.
#[derive(Debug)]
pub enum TokenError {
    /// The token URL or the HTTP client is unusable.
    Config(String),
    Timeout,
    Transport(String),
    /// The token endpoint answered with an error (or something unreadable); `status` is `None`
    /// when it is not known.
    Refused {
        status: Option<u16>,
        message: String,
        retry_after: Option<Duration>,
    },
}

impl TokenError {
    /// 429 and 5xx: worth another attempt (the other refusals are credential problems).
    pub fn transient_status(&self) -> Option<u16> {
        match self {
            TokenError::Refused {
                status: Some(s), ..
            } if *s == 429 || *s >= 500 => Some(*s),
            _ => None,
        }
    }
}

/// The transport error handed back through the oauth2 crate (no URL, no secrets).
#[derive(Debug)]
pub struct TokenTransportError {
    message: String,
    timeout: bool,
}

impl std::fmt::Display for TokenTransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TokenTransportError {}

/// The status and `Retry-After` of the token endpoint's last answer.
type Seen = Arc<StdMutex<Option<(u16, Option<Duration>)>>>;

/// The largest token endpoint answer read (a token response is a few KiB).
const MAX_TOKEN_BODY: u64 = 1 << 20;

/// The HTTP client handed to the oauth2 crate: reqwest with a timeout, recording the status and
/// `Retry-After` of the answer for classification. A named type with a boxed `Send` future (a
/// closure here would make every caller's future fail the `Send` check).
struct TokenHttp {
    http: reqwest::Client,
    timeout: Duration,
    seen: Seen,
}

impl<'c> AsyncHttpClient<'c> for TokenHttp {
    type Error = TokenTransportError;
    type Future =
        Pin<Box<dyn Future<Output = Result<HttpResponse, TokenTransportError>> + Send + 'c>>;

    fn call(&'c self, req: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let mut rq = reqwest::Request::try_from(req).map_err(|e| TokenTransportError {
                message: format!("bad token request: {}", e.without_url()),
                timeout: false,
            })?;
            *rq.timeout_mut() = Some(self.timeout);
            let conv = |e: reqwest::Error| TokenTransportError {
                timeout: e.is_timeout(),
                message: super::describe(&e),
            };
            let resp = self.http.execute(rq).await.map_err(conv)?;
            let status = resp.status();
            let ra = super::retry_after(resp.headers());
            if let Ok(mut g) = self.seen.lock() {
                *g = Some((status.as_u16(), ra));
            }
            let mut builder = oauth2::http::Response::builder().status(status);
            for (k, v) in resp.headers() {
                builder = builder.header(k, v);
            }
            let body = super::read_capped(resp, MAX_TOKEN_BODY)
                .await
                .map_err(|e| match e {
                    super::CappedRead::Transport(e) => conv(e),
                    super::CappedRead::TooBig(max) => TokenTransportError {
                        message: format!("the token endpoint's answer is larger than {max} bytes"),
                        timeout: false,
                    },
                })?;
            builder
                .body(body.to_vec())
                .map_err(|e| TokenTransportError {
                    message: e.to_string(),
                    timeout: false,
                })
        })
    }
}

/// When to renew a token that lives `ttl`: 60 s before expiry, or at half-life for short tokens.
pub fn refresh_after(ttl: Duration) -> Duration {
    if ttl >= Duration::from_secs(120) {
        ttl - Duration::from_secs(60)
    } else {
        ttl / 2
    }
}

/// OAuth 2.0 client credentials (client authentication with HTTP Basic) at one token URL.
pub struct ClientCredentials {
    oauth: Oauth,
    scope: String,
    token_path: String,
    http: reqwest::Client,
    timeout: Duration,
}

impl ClientCredentials {
    /// Errors name the URL, never the secret; `client_id:secret` is registered with the
    /// scrubber (the Basic form too).
    pub fn new(
        token_url: &str,
        client_id: &str,
        secret: &Secret,
        scope: &str,
        timeout: Duration,
    ) -> Result<ClientCredentials, TokenError> {
        let bad = |e: String| {
            TokenError::Config(format!("token_url `{token_url}` is not a valid URL: {e}"))
        };
        let token_path = url::Url::parse(token_url)
            .map_err(|e| bad(e.to_string()))?
            .path()
            .to_string();
        let tu = TokenUrl::new(token_url.to_string()).map_err(|e| bad(e.to_string()))?;
        crate::config::secret::register_basic(client_id, secret.expose());
        let oauth = BasicClient::new(ClientId::new(client_id.to_string()))
            .set_client_secret(ClientSecret::new(secret.expose().to_string()))
            .set_token_uri(tu);
        // The oauth2 crate's advice: no redirects on the token endpoint.
        let http = crate::net::client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TokenError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(ClientCredentials {
            oauth,
            scope: scope.to_string(),
            token_path,
            http,
            timeout,
        })
    }

    /// The token URL's path (for error messages).
    pub fn token_path(&self) -> &str {
        &self.token_path
    }

    /// The HTTP client for the token endpoint (no redirects), for other grants at the same URL.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The scope asked for.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The timeout of one token request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Requests a token: the token and its lifetime (capped at [`MAX_TTL`]).
    pub async fn fetch(&self) -> Result<(Secret, Duration), TokenError> {
        // (status, retry-after) of the token endpoint's answer, for precise classification.
        let seen: Seen = Arc::new(StdMutex::new(None));
        let caller = TokenHttp {
            http: self.http.clone(),
            timeout: self.timeout,
            seen: seen.clone(),
        };
        let mut req = self.oauth.exchange_client_credentials();
        if !self.scope.trim().is_empty() {
            req = req.add_scope(Scope::new(self.scope.clone()));
        }
        let res = req.request_async(&caller).await;
        let seen = seen.lock().ok().and_then(|g| *g);
        let status = seen.map(|s| s.0);
        let retry_after = seen.and_then(|s| s.1);
        // The endpoint may echo the client secret or the Basic credentials.
        let refused = |message: String| TokenError::Refused {
            status,
            message: crate::config::scrub(&message, &[]),
            retry_after,
        };
        use oauth2::RequestTokenError as E;
        match res {
            Ok(t) => {
                let ttl = t
                    .expires_in()
                    .filter(|d| !d.is_zero())
                    .unwrap_or(DEFAULT_TTL)
                    .min(MAX_TTL);
                Ok((Secret::new(t.access_token().secret().clone()), ttl))
            }
            Err(E::Request(e)) if e.timeout => Err(TokenError::Timeout),
            Err(E::Request(e)) => Err(TokenError::Transport(e.message)),
            Err(E::ServerResponse(r)) => {
                let mut msg = r.error().to_string();
                if let Some(d) = r.error_description() {
                    msg = format!("{msg}: {}", super::truncate(d, 300));
                }
                Err(refused(msg))
            }
            Err(E::Parse(_, body)) => {
                let text = super::truncate(&String::from_utf8_lossy(&body), 200);
                Err(refused(if status == Some(200) {
                    "the token endpoint sent an unreadable token response".to_string()
                } else {
                    format!("unexpected token endpoint response: {text}")
                }))
            }
            Err(E::Other(m)) => Err(refused(m)),
        }
    }
}

struct Cached {
    token: Token,
    refresh_at: Instant,
}

/// The cached token of one client, renewed before it expires.
#[derive(Default)]
pub struct TokenCache {
    state: tokio::sync::Mutex<(Option<Cached>, u64)>,
}

impl TokenCache {
    pub fn new() -> TokenCache {
        TokenCache::default()
    }

    /// How many tokens were obtained so far.
    pub async fn fetches(&self) -> u64 {
        self.state.lock().await.1
    }

    /// The cached token, or a new one from `fetch` when it is missing or due for renewal.
    pub async fn current<E, Fut>(&self, fetch: impl FnOnce() -> Fut) -> Result<Token, E>
    where
        Fut: Future<Output = Result<(Secret, Duration), E>>,
    {
        let mut st = self.state.lock().await;
        if let Some(c) = &st.0
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        Self::fetch_locked(&mut st, fetch).await
    }

    /// Renews after a 401 on the token numbered `stale`, unless another task already replaced
    /// it.
    pub async fn renew<E, Fut>(&self, stale: u64, fetch: impl FnOnce() -> Fut) -> Result<Token, E>
    where
        Fut: Future<Output = Result<(Secret, Duration), E>>,
    {
        let mut st = self.state.lock().await;
        if let Some(c) = &st.0
            && c.token.serial != stale
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        Self::fetch_locked(&mut st, fetch).await
    }

    async fn fetch_locked<E, Fut>(
        st: &mut (Option<Cached>, u64),
        fetch: impl FnOnce() -> Fut,
    ) -> Result<Token, E>
    where
        Fut: Future<Output = Result<(Secret, Duration), E>>,
    {
        st.0 = None;
        let started = Instant::now();
        let (value, ttl) = fetch().await?;
        let ttl = ttl.min(MAX_TTL);
        st.1 += 1;
        let token = Token {
            value,
            serial: st.1,
        };
        st.0 = Some(Cached {
            token: token.clone(),
            refresh_at: started
                .checked_add(refresh_after(ttl))
                .unwrap_or_else(Instant::now),
        });
        tracing::debug!(ttl_secs = ttl.as_secs_f64(), "obtained an access token");
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_schedule() {
        assert_eq!(
            refresh_after(Duration::from_secs(3600)),
            Duration::from_secs(3540)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(120)),
            Duration::from_secs(60)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(100)),
            Duration::from_secs(50)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(1)),
            Duration::from_millis(500)
        );
    }

    #[tokio::test]
    async fn a_huge_lifetime_does_not_overflow_and_renew_skips_a_replaced_token() {
        let cache = TokenCache::new();
        let huge = || async { Ok::<_, ()>((Secret::new("tok-1"), Duration::MAX)) };
        let t = cache.current(huge).await.unwrap();
        assert_eq!(t.serial, 1);
        // Cached: no second fetch.
        let again = cache
            .current(|| async { Err::<(Secret, Duration), ()>(()) })
            .await
            .unwrap();
        assert_eq!(again.serial, 1);
        // A renewal for token 1 fetches; one for a token already replaced does not.
        let t2 = cache
            .renew(1, || async {
                Ok::<_, ()>((Secret::new("tok-2"), DEFAULT_TTL))
            })
            .await
            .unwrap();
        assert_eq!(t2.serial, 2);
        let t3 = cache
            .renew(1, || async { Err::<(Secret, Duration), ()>(()) })
            .await
            .unwrap();
        assert_eq!(t3.serial, 2);
        assert_eq!(cache.fetches().await, 2);
    }
}
