//! JWT assertions at the identity domain's token endpoint, as Oracle's identity domains take them:
//!
//! * a **user assertion** (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`,
//!   `assertion=JWT`): RS256, `kid` = the alias of a certificate uploaded to the client's
//!   confidential application, `sub` = an identity-domain user, `iss` = the client id, `aud`
//!   containing `https://identity.oraclecloud.com/`, `exp` in the future;
//! * a **client assertion** (`client_assertion_type=urn:ietf:params:oauth:client-assertion-type:
//!   jwt-bearer`, `client_assertion=JWT`) instead of the client secret: the same, with `sub` =
//!   `iss` = the client id.
//!
//! Keys are registered per client with [`super::SimHandle::register_jwt_key`] (or `ferry sim
//! --jwt-key`): the certificate's public key in PEM. Bad signatures, unknown aliases, expired or
//! foreign assertions are refused with OAuth errors (`invalid_grant`, `invalid_client`).

use std::sync::Mutex;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::state::Shared;

/// The user-assertion grant type.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The client-assertion type.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The audience identity domains require in assertions.
pub const AUDIENCE: &str = "https://identity.oraclecloud.com/";

/// A certificate's public key uploaded to a client's confidential application.
#[derive(Clone)]
pub struct JwtKey {
    /// The client (confidential application) it belongs to.
    pub client_id: String,
    /// The certificate alias, matched against the assertion's `kid`.
    pub alias: String,
    /// The decoding key.
    pub key: DecodingKey,
}

/// The registered keys.
#[derive(Default)]
pub struct JwtKeys(Mutex<Vec<JwtKey>>);

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys")
    }
}

impl JwtKeys {
    /// Registers (or replaces) `alias` for `client_id` from an RSA public key in PEM (SPKI or
    /// PKCS#1).
    pub fn register(&self, client_id: &str, alias: &str, public_pem: &[u8]) -> Result<(), String> {
        let key = DecodingKey::from_rsa_pem(public_pem)
            .map_err(|e| format!("not an RSA public key in PEM: {e}"))?;
        let mut keys = self.0.lock().unwrap_or_else(|e| e.into_inner());
        keys.retain(|k| !(k.client_id == client_id && k.alias == alias));
        keys.push(JwtKey {
            client_id: client_id.to_string(),
            alias: alias.to_string(),
            key,
        });
        Ok(())
    }

    fn find(&self, client_id: Option<&str>, alias: &str) -> Option<JwtKey> {
        let keys = self.0.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .find(|k| k.alias == alias && client_id.is_none_or(|c| c == k.client_id))
            .cloned()
    }
}

/// Why an assertion was refused: the OAuth error code and its description.
#[derive(Debug)]
pub struct Refusal {
    pub error: &'static str,
    pub description: String,
}

fn refuse(error: &'static str, description: impl Into<String>) -> Refusal {
    Refusal {
        error,
        description: description.into(),
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    iss: String,
}

/// Verifies `jwt` against the key its `kid` names (of `client_id`, when known) and returns the
/// key's client and the claims. `error` is the OAuth error code for a refusal.
fn verify(
    shared: &Shared,
    client_id: Option<&str>,
    jwt: &str,
    error: &'static str,
) -> Result<(String, Claims), Refusal> {
    let header = jsonwebtoken::decode_header(jwt)
        .map_err(|_| refuse(error, "The assertion is not a valid JWT."))?;
    if header.alg != Algorithm::RS256 {
        return Err(refuse(error, "The assertion must be signed with RS256."));
    }
    let kid = header.kid.ok_or_else(|| {
        refuse(
            error,
            "The assertion header has no kid (the certificate alias).",
        )
    })?;
    let key = shared.jwt_keys.find(client_id, &kid).ok_or_else(|| {
        refuse(
            error,
            format!("No trusted certificate with the alias '{kid}' for this client."),
        )
    })?;
    let mut v = Validation::new(Algorithm::RS256);
    v.leeway = 0;
    v.set_audience(&[AUDIENCE]);
    v.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
    let data = jsonwebtoken::decode::<Claims>(jwt, &key.key, &v).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        refuse(
            error,
            match e.kind() {
                K::InvalidSignature => "The assertion signature is invalid.".to_string(),
                K::ExpiredSignature => "The assertion has expired.".to_string(),
                K::InvalidAudience => format!("The assertion audience must include {AUDIENCE}."),
                K::MissingRequiredClaim(c) => format!("The assertion has no '{c}' claim."),
                _ => "The assertion is invalid.".to_string(),
            },
        )
    })?;
    if data.claims.iss != key.client_id {
        return Err(refuse(
            error,
            "The assertion issuer is not the client the certificate belongs to.",
        ));
    }
    Ok((key.client_id, data.claims))
}

/// Client authentication by client assertion: the client id it proves (`sub` = `iss` = client).
pub fn client_from_assertion(
    shared: &Shared,
    claimed_client: Option<&str>,
    jwt: &str,
) -> Result<String, Refusal> {
    let (client, claims) = verify(shared, claimed_client, jwt, "invalid_client")?;
    if claims.sub != client {
        return Err(refuse(
            "invalid_client",
            "The client assertion subject must be the client id.",
        ));
    }
    Ok(client)
}

/// A user assertion presented by `client_id` (already authenticated): the user name it asserts,
/// which must be an active user of the identity domain.
pub fn user_from_assertion(shared: &Shared, client_id: &str, jwt: &str) -> Result<String, Refusal> {
    let (_, claims) = verify(shared, Some(client_id), jwt, "invalid_grant")?;
    let known = shared.identity().users.values().any(|u| {
        u["userName"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(&claims.sub))
            && u["active"].as_bool() != Some(false)
    });
    if !known {
        return Err(refuse(
            "invalid_grant",
            format!(
                "The user '{}' of the assertion is not an active user of the identity domain.",
                claims.sub
            ),
        ));
    }
    Ok(claims.sub)
}
