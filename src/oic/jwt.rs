//! JWT user-assertion authentication (OIC 3 identity domains), beside client credentials.
//!
//! As Oracle documents "Call the Developer APIs with JWT User Assertion": ferry signs a user
//! assertion with RS256 (`kid` = the alias of the certificate uploaded to the confidential
//! application; `sub` = the user; `iss` = the client id; `aud` = `https://identity.oraclecloud.com/`;
//! a short `exp`) and posts it to the token endpoint as
//! `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=...&scope=...`. The client
//! authenticates with its secret (Basic) when one is configured, else with a client assertion
//! signed by the same key. The key, the assertions and the token are [`Secret`]s: never printed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::OicError;
use crate::config::{JwtAssertion, Secret};

/// The user-assertion grant type.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The client-assertion type.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The audience identity domains require.
pub const AUDIENCE: &str = "https://identity.oraclecloud.com/";
/// How long a signed assertion is valid.
const ASSERTION_TTL: Duration = Duration::from_secs(300);
/// The largest token-endpoint answer read.
const MAX_ANSWER: usize = 256 * 1024;

/// Signs assertions for one instance.
pub(crate) struct UserAssertion {
    token_url: String,
    client_id: String,
    client_secret: Option<Secret>,
    user: String,
    key_id: String,
    key: EncodingKey,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    prn: &'a str,
    iss: &'a str,
    aud: [&'a str; 1],
    iat: u64,
    exp: u64,
    jti: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    expires_in: Option<u64>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Why a token request failed, classified by the token source.
pub(crate) enum FetchError {
    /// The assertion could not be signed.
    Sign(String),
    Timeout,
    Transport(String),
    Answer {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
}

impl UserAssertion {
    /// Reads the private key; a bad key is a configuration error naming the instance (never the
    /// key).
    pub fn new(instance: &str, cfg: &JwtAssertion) -> Result<UserAssertion, OicError> {
        let key = EncodingKey::from_rsa_pem(cfg.private_key.expose().as_bytes()).map_err(|_| {
            OicError::Config(format!(
                "{instance}: jwt_private_key is not an RSA private key in PEM (PKCS#1 or PKCS#8)"
            ))
        })?;
        for (k, v) in [("jwt_user", &cfg.user), ("jwt_key_id", &cfg.key_id)] {
            if v.trim().is_empty() {
                return Err(OicError::Config(format!("{instance}: {k} is empty")));
            }
        }
        Ok(UserAssertion {
            token_url: cfg.token_url.clone(),
            client_id: cfg.client_id.clone(),
            client_secret: cfg.client_secret.clone(),
            user: cfg.user.clone(),
            key_id: cfg.key_id.clone(),
            key,
        })
    }

    /// A signed assertion with subject `sub`, issued by the client.
    fn sign(&self, sub: &str) -> Result<Secret, FetchError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut jti = [0u8; 16];
        rand::rng().fill_bytes(&mut jti);
        let claims = Claims {
            sub,
            prn: sub,
            iss: &self.client_id,
            aud: [AUDIENCE],
            iat: now,
            exp: now + ASSERTION_TTL.as_secs(),
            jti: hex::encode(jti),
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.key_id.clone());
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map(Secret::new)
            .map_err(|e| FetchError::Sign(format!("cannot sign the JWT assertion: {e}")))
    }

    /// The token request's form (the user assertion, and the client assertion when there is no
    /// secret).
    fn form(&self, scope: &str) -> Result<Vec<(&'static str, String)>, FetchError> {
        let mut form = vec![
            ("grant_type", JWT_BEARER.to_string()),
            ("assertion", self.sign(&self.user)?.expose().to_string()),
        ];
        if !scope.trim().is_empty() {
            form.push(("scope", scope.to_string()));
        }
        if self.client_secret.is_none() {
            form.push(("client_id", self.client_id.clone()));
            form.push(("client_assertion_type", CLIENT_ASSERTION_TYPE.to_string()));
            let ca = self.sign(&self.client_id)?;
            form.push(("client_assertion", ca.expose().to_string()));
        }
        Ok(form)
    }

    /// Trades a fresh assertion for an access token and its lifetime (when the answer has one).
    pub async fn fetch(
        &self,
        http: &reqwest::Client,
        scope: &str,
        timeout: Duration,
    ) -> Result<(Secret, Option<Duration>), FetchError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.form(scope)?)
            .finish();
        let mut req = http
            .post(&self.token_url)
            .timeout(timeout)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body);
        if let Some(s) = &self.client_secret {
            let b64 = base64::engine::general_purpose::STANDARD;
            let basic = b64.encode(format!("{}:{}", self.client_id, s.expose()));
            req = req.header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"));
        }
        exchange(req).await
    }
}

fn transport(e: reqwest::Error) -> FetchError {
    if e.is_timeout() {
        FetchError::Timeout
    } else {
        FetchError::Transport(super::http::describe(&e))
    }
}

/// Sends the token request and reads at most [`MAX_ANSWER`] bytes of the answer.
async fn exchange(req: reqwest::RequestBuilder) -> Result<(Secret, Option<Duration>), FetchError> {
    let mut resp = req.send().await.map_err(transport)?;
    let status = resp.status().as_u16();
    let retry_after = super::http::retry_after(resp.headers());
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_ANSWER {
            return Err(FetchError::Transport(
                "the token endpoint's answer is too large".into(),
            ));
        }
    }
    let answer: Option<TokenAnswer> = serde_json::from_slice(&bytes).ok();
    match answer {
        Some(TokenAnswer {
            access_token: Some(t),
            expires_in,
            ..
        }) if status == 200 => Ok((
            Secret::new(t),
            expires_in.filter(|s| *s > 0).map(Duration::from_secs),
        )),
        Some(a) if a.error.is_some() => {
            let mut message = a.error.unwrap_or_default();
            if let Some(d) = a.error_description {
                message = format!("{message}: {}", super::http::truncate(&d, 300));
            }
            Err(FetchError::Answer {
                status,
                message,
                retry_after,
            })
        }
        _ => Err(FetchError::Answer {
            status,
            message: if status == 200 {
                "the token endpoint sent an unreadable token response".into()
            } else {
                format!(
                    "unexpected token endpoint response: {}",
                    super::http::truncate(&String::from_utf8_lossy(&bytes), 200)
                )
            },
            retry_after,
        }),
    }
}
