//! OAuth 2.0 client-credentials tokens (the `oauth2` crate), cached and renewed before expiry.
//!
//! One token request at a time per client (a tokio mutex); concurrent callers wait for it and
//! share the result. A renewal after a 401 is skipped when another task already renewed the
//! token that failed.

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

use super::OicError;
use crate::config::Secret;

/// Lifetime assumed when the token response has no `expires_in`.
const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// The longest lifetime believed: a server number larger than this (up to 2^64 s, which would
/// overflow `Instant`) is taken as this.
pub(crate) const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

type Oauth =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// A bearer token with the serial number of the fetch that produced it.
#[derive(Clone)]
pub(crate) struct Token {
    pub value: Secret,
    pub serial: u64,
}

struct Cached {
    token: Token,
    refresh_at: Instant,
}

/// Fetches and caches client-credentials tokens for one instance.
pub(crate) struct TokenSource {
    instance: String,
    oauth: Oauth,
    scope: String,
    token_path: String,
    http: reqwest::Client,
    timeout: Duration,
    state: tokio::sync::Mutex<(Option<Cached>, u64)>,
    /// The JWT user-assertion grant instead of client credentials (see [`super::jwt`]).
    jwt: Option<super::jwt::UserAssertion>,
}

/// The transport error handed back through the oauth2 crate (no URL, no secrets).
#[derive(Debug)]
pub(crate) struct TokenTransportError {
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
                message: super::http::describe(&e),
            };
            let resp = self.http.execute(rq).await.map_err(conv)?;
            let status = resp.status();
            let ra = super::http::retry_after(resp.headers());
            if let Ok(mut g) = self.seen.lock() {
                *g = Some((status.as_u16(), ra));
            }
            let mut builder = oauth2::http::Response::builder().status(status);
            for (k, v) in resp.headers() {
                builder = builder.header(k, v);
            }
            let body = resp.bytes().await.map_err(conv)?;
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
pub(crate) fn refresh_after(ttl: Duration) -> Duration {
    if ttl >= Duration::from_secs(120) {
        ttl - Duration::from_secs(60)
    } else {
        ttl / 2
    }
}

impl TokenSource {
    pub fn new(
        instance: &str,
        token_url: &str,
        client_id: &str,
        secret: &Secret,
        scope: &str,
        timeout: Duration,
    ) -> Result<TokenSource, OicError> {
        let parsed = url::Url::parse(token_url).map_err(|e| {
            OicError::Config(format!(
                "{instance}: token_url `{token_url}` is not a valid URL: {e}"
            ))
        })?;
        let token_path = parsed.path().to_string();
        let tu = TokenUrl::new(token_url.to_string()).map_err(|e| {
            OicError::Config(format!(
                "{instance}: token_url `{token_url}` is not a valid URL: {e}"
            ))
        })?;
        // The client authenticates with HTTP Basic: that form is scrubbed too.
        crate::config::secret::register_basic(client_id, secret.expose());
        let oauth = BasicClient::new(ClientId::new(client_id.to_string()))
            .set_client_secret(ClientSecret::new(secret.expose().to_string()))
            .set_token_uri(tu);
        // The oauth2 crate's advice: no redirects on the token endpoint.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                OicError::Config(format!("{instance}: cannot build the HTTP client: {e}"))
            })?;
        Ok(TokenSource {
            instance: instance.to_string(),
            oauth,
            scope: scope.to_string(),
            token_path,
            http,
            timeout,
            state: tokio::sync::Mutex::new((None, 0)),
            jwt: None,
        })
    }

    /// Uses the JWT user-assertion grant instead of client credentials.
    pub fn with_user_assertion(mut self, a: super::jwt::UserAssertion) -> TokenSource {
        self.jwt = Some(a);
        self
    }

    async fn fetch_jwt(
        &self,
        j: &super::jwt::UserAssertion,
    ) -> Result<(Secret, Duration), OicError> {
        use super::jwt::FetchError as F;
        let (instance, method, path) = (
            self.instance.clone(),
            "POST".to_string(),
            self.token_path.clone(),
        );
        match j.fetch(&self.http, &self.scope, self.timeout).await {
            Ok((token, ttl)) => Ok((token, ttl.unwrap_or(DEFAULT_TTL))),
            Err(F::Sign(m)) => Err(OicError::Config(format!("{instance}: {m}"))),
            Err(F::Timeout) => Err(OicError::Timeout {
                instance,
                method,
                path,
            }),
            Err(F::Transport(message)) => Err(OicError::Transport {
                instance,
                method,
                path,
                message,
            }),
            Err(F::Answer {
                status,
                message,
                retry_after,
            }) => Err(self.classify(Some(status), message, retry_after)),
        }
    }

    /// How many tokens were obtained so far.
    pub async fn fetches(&self) -> u64 {
        self.state.lock().await.1
    }

    /// The cached token, or a new one when it is missing or due for renewal.
    pub async fn current(&self) -> Result<Token, OicError> {
        let mut st = self.state.lock().await;
        if let Some(c) = &st.0
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        self.fetch_locked(&mut st).await
    }

    /// Renews after a 401 on `stale`, unless another task already replaced it.
    pub async fn renew(&self, stale: u64) -> Result<Token, OicError> {
        let mut st = self.state.lock().await;
        if let Some(c) = &st.0
            && c.token.serial != stale
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        self.fetch_locked(&mut st).await
    }

    async fn fetch_locked(&self, st: &mut (Option<Cached>, u64)) -> Result<Token, OicError> {
        st.0 = None;
        let started = Instant::now();
        let (value, ttl) = self.fetch().await?;
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
        tracing::debug!(instance = %self.instance, ttl_secs = ttl.as_secs_f64(), "obtained an access token");
        Ok(token)
    }

    async fn fetch(&self) -> Result<(Secret, Duration), OicError> {
        if let Some(j) = &self.jwt {
            return self.fetch_jwt(j).await;
        }
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
            Err(E::Request(e)) => {
                if e.timeout {
                    Err(OicError::Timeout {
                        instance: self.instance.clone(),
                        method: "POST".into(),
                        path: self.token_path.clone(),
                    })
                } else {
                    Err(OicError::Transport {
                        instance: self.instance.clone(),
                        method: "POST".into(),
                        path: self.token_path.clone(),
                        message: e.message,
                    })
                }
            }
            Err(E::ServerResponse(r)) => {
                let mut msg = r.error().to_string();
                if let Some(d) = r.error_description() {
                    msg = format!("{msg}: {}", super::http::truncate(d, 300));
                }
                Err(self.classify(status, msg, retry_after))
            }
            Err(E::Parse(_, body)) => {
                let text = super::http::truncate(&String::from_utf8_lossy(&body), 200);
                let msg = if status == Some(200) {
                    "the token endpoint sent an unreadable token response".to_string()
                } else {
                    format!("unexpected token endpoint response: {text}")
                };
                Err(self.classify(status, msg, retry_after))
            }
            Err(E::Other(m)) => Err(self.classify(status, m, retry_after)),
        }
    }

    /// 400/401/403 (and anything odd) are credential problems; 429 and 5xx are HTTP errors the
    /// effect layer may retry.
    fn classify(
        &self,
        status: Option<u16>,
        message: String,
        retry_after: Option<Duration>,
    ) -> OicError {
        // The endpoint may echo the client secret or the Basic credentials.
        let message = crate::config::scrub(&message, &[]);
        match status {
            Some(s) if s == 429 || s >= 500 => OicError::Http {
                instance: self.instance.clone(),
                method: "POST".into(),
                path: self.token_path.clone(),
                status: s,
                title: format!("token endpoint: {message}"),
                retry_after,
            },
            Some(s) => OicError::Auth {
                instance: self.instance.clone(),
                message: format!("token endpoint answered {s}: {message}"),
            },
            None => OicError::Auth {
                instance: self.instance.clone(),
                message,
            },
        }
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
}
