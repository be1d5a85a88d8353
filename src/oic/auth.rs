//! The OIC client's tokens: the shared token source ([`crate::net::oauth`]: client credentials
//! through the `oauth2` crate, cached and renewed before expiry), or the JWT user-assertion
//! grant ([`super::jwt`]), with failures classified as [`OicError`]s.

use std::time::Duration;

use super::OicError;
use crate::config::Secret;
use crate::net::oauth::{ClientCredentials, DEFAULT_TTL, TokenCache, TokenError};

pub(crate) use crate::net::oauth::Token;

/// Fetches and caches tokens for one instance.
pub(crate) struct TokenSource {
    instance: String,
    cc: ClientCredentials,
    cache: TokenCache,
    /// The JWT user-assertion grant instead of client credentials (see [`super::jwt`]).
    jwt: Option<super::jwt::UserAssertion>,
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
        let cc =
            ClientCredentials::new(token_url, client_id, secret, scope, timeout).map_err(|e| {
                match e {
                    TokenError::Config(m) => OicError::Config(format!("{instance}: {m}")),
                    other => OicError::Config(format!("{instance}: {other:?}")),
                }
            })?;
        Ok(TokenSource {
            instance: instance.to_string(),
            cc,
            cache: TokenCache::new(),
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
            self.cc.token_path().to_string(),
        );
        match j
            .fetch(self.cc.http(), self.cc.scope(), self.cc.timeout())
            .await
        {
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
        self.cache.fetches().await
    }

    /// The cached token, or a new one when it is missing or due for renewal.
    pub async fn current(&self) -> Result<Token, OicError> {
        self.cache.current(|| self.fetch()).await
    }

    /// Renews after a 401 on `stale`, unless another task already replaced it.
    pub async fn renew(&self, stale: u64) -> Result<Token, OicError> {
        self.cache.renew(stale, || self.fetch()).await
    }

    async fn fetch(&self) -> Result<(Secret, Duration), OicError> {
        if let Some(j) = &self.jwt {
            return self.fetch_jwt(j).await;
        }
        let path = self.cc.token_path().to_string();
        self.cc.fetch().await.map_err(|e| match e {
            TokenError::Config(m) => OicError::Config(format!("{}: {m}", self.instance)),
            TokenError::Timeout => OicError::Timeout {
                instance: self.instance.clone(),
                method: "POST".into(),
                path,
            },
            TokenError::Transport(message) => OicError::Transport {
                instance: self.instance.clone(),
                method: "POST".into(),
                path,
                message,
            },
            TokenError::Refused {
                status,
                message,
                retry_after,
            } => self.classify(status, message, retry_after),
        })
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
                path: self.cc.token_path().to_string(),
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
