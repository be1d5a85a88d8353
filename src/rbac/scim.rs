//! The identity domain's SCIM API (`/admin/v1/...`) as far as OIC role grants need it: users by
//! e-mail, groups by name, the OIC application and its app roles, grants.
//!
//! Authentication: OAuth 2.0 client credentials of an administrator application (not the OIC
//! one), scope `urn:opc:idm:__myscopes__`, client authentication with HTTP Basic, through the
//! token source the OIC client uses too ([`crate::net::oauth`]): the token is a [`Secret`],
//! cached and renewed a minute before it expires, or once after a 401.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{PrincipalKind, RbacError};
use crate::config::{IdentityProfile, Secret};
use crate::net::oauth::{ClientCredentials, TokenCache, TokenError};

/// The largest SCIM answer read (a page of users with their groups is far smaller).
const MAX_SCIM_BODY: u64 = 32 << 20;

/// A user or group found in the identity domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub kind: PrincipalKind,
    /// SCIM id.
    pub id: String,
    /// `userName` for users, `displayName` for groups.
    pub name: String,
    /// The primary e-mail (users).
    pub email: Option<String>,
    pub display_name: String,
}

/// The OIC application of an instance and its app roles.
#[derive(Clone, Debug)]
pub struct OicApp {
    pub id: String,
    pub display_name: String,
    /// App role display name (`ServiceDeveloper`) -> app role id.
    pub roles: std::collections::BTreeMap<String, String>,
}

/// What a grant request did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantOutcome {
    /// Created (201); the grant id.
    Granted(String),
    /// The grantee already had the role (409, or found before posting).
    Unchanged,
}

/// A SCIM client for one identity domain.
pub struct IdentityClient {
    http: reqwest::Client,
    name: String,
    base: String,
    tokens: ClientCredentials,
    cache: TokenCache,
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A SCIM filter string value, quoted.
fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl IdentityClient {
    /// A client for the `[identity.NAME]` profile.
    pub fn new(p: &IdentityProfile) -> Result<IdentityClient, RbacError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(p.timeout_secs))
            .connect_timeout(Duration::from_secs(p.timeout_secs.min(30)))
            .build()
            .map_err(|e| RbacError::Transport {
                domain: p.name.clone(),
                method: "-".into(),
                path: "-".into(),
                message: e.to_string(),
                timeout: false,
            })?;
        let timeout = Duration::from_secs(p.timeout_secs);
        let tokens = ClientCredentials::new(
            &p.token_url,
            &p.client_id,
            &p.client_secret,
            &p.scope,
            timeout,
        )
        .map_err(|e| match e {
            TokenError::Config(m) => RbacError::Usage(format!("identity domain {}: {m}", p.name)),
            other => RbacError::Usage(format!("identity domain {}: {other:?}", p.name)),
        })?;
        Ok(IdentityClient {
            http,
            name: p.name.clone(),
            base: p.url.trim_end_matches('/').to_string(),
            tokens,
            cache: TokenCache::new(),
        })
    }

    /// The profile name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A token request, its failures as [`RbacError`]s (429 and 5xx retryable, other refusals
    /// authentication failures).
    async fn fetch_token(&self) -> Result<(Secret, Duration), RbacError> {
        let path = self.tokens.token_path().to_string();
        let transport = |message: String, timeout: bool| RbacError::Transport {
            domain: self.name.clone(),
            method: "POST".into(),
            path: path.clone(),
            message,
            timeout,
        };
        self.tokens.fetch().await.map_err(|e| match e {
            TokenError::Timeout => transport("timed out".into(), true),
            TokenError::Transport(m) => transport(m, false),
            TokenError::Config(m) => {
                RbacError::Usage(format!("identity domain {}: {m}", self.name))
            }
            TokenError::Refused {
                status: Some(status),
                message,
                retry_after,
            } if status == 429 || status >= 500 => RbacError::Http {
                domain: self.name.clone(),
                method: "POST".into(),
                path: path.clone(),
                status,
                detail: message,
                retry_after,
            },
            TokenError::Refused {
                status, message, ..
            } => RbacError::Auth {
                domain: self.name.clone(),
                message: match status {
                    Some(s) => format!("HTTP {s}: {message}"),
                    None => message,
                },
            },
        })
    }

    fn transport(&self, method: &str, path: &str, e: &reqwest::Error) -> RbacError {
        RbacError::Transport {
            domain: self.name.clone(),
            method: method.into(),
            path: path.into(),
            message: if e.is_timeout() {
                "timed out".into()
            } else if e.is_connect() {
                "cannot connect".into()
            } else {
                "request failed".into()
            },
            timeout: e.is_timeout(),
        }
    }

    /// One SCIM call; returns the status and the JSON body (Null when empty). Non-2xx statuses
    /// other than those in `ok` become errors.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        ok: &[u16],
    ) -> Result<(u16, Value), RbacError> {
        let url = format!("{}/admin/v1{path}", self.base);
        let shown = path.split('?').next().unwrap_or(path).to_string();
        let mut tok = self.cache.current(|| self.fetch_token()).await?;
        let mut renewed = false;
        loop {
            let mut rb = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(tok.value.expose())
                .header("Accept", "application/scim+json, application/json");
            if let Some(b) = body {
                rb = rb
                    .header("Content-Type", "application/scim+json")
                    .body(b.to_string());
            }
            let resp = rb
                .send()
                .await
                .map_err(|e| self.transport(method.as_str(), &shown, &e))?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !renewed {
                renewed = true;
                tok = self.cache.renew(tok.serial, || self.fetch_token()).await?;
                continue;
            }
            let retry_after = crate::net::retry_after(resp.headers());
            let body = crate::net::read_capped(resp, MAX_SCIM_BODY)
                .await
                .map_err(|e| match e {
                    crate::net::CappedRead::Transport(e) => {
                        self.transport(method.as_str(), &shown, &e)
                    }
                    crate::net::CappedRead::TooBig(max) => RbacError::Transport {
                        domain: self.name.clone(),
                        method: method.as_str().into(),
                        path: shown.clone(),
                        message: format!("the answer is larger than {} MiB", max >> 20),
                        timeout: false,
                    },
                })?;
            let text = String::from_utf8_lossy(&body).into_owned();
            let v: Value = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text.clone()))
            };
            if status.is_success() || ok.contains(&status.as_u16()) {
                return Ok((status.as_u16(), v));
            }
            let detail = v["detail"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| text.chars().take(200).collect());
            return Err(RbacError::Http {
                domain: self.name.clone(),
                method: method.as_str().into(),
                path: shown,
                status: status.as_u16(),
                detail,
                retry_after,
            });
        }
    }

    async fn list(&self, kind: &str, filter: &str) -> Result<Vec<Value>, RbacError> {
        let mut out = vec![];
        let mut start = 1usize;
        loop {
            let (_, v) = self
                .call(
                    Method::GET,
                    &format!(
                        "/{kind}?filter={}&startIndex={start}&count=100",
                        enc(filter)
                    ),
                    None,
                    &[],
                )
                .await?;
            let page = v["Resources"].as_array().cloned().unwrap_or_default();
            let total = v["totalResults"].as_u64().unwrap_or(0) as usize;
            let n = page.len();
            out.extend(page);
            if n == 0 || out.len() >= total {
                return Ok(out);
            }
            start += n;
        }
    }

    fn user_of(v: &Value) -> Identity {
        let emails = v["emails"].as_array().cloned().unwrap_or_default();
        let email = emails
            .iter()
            .find(|e| e["primary"].as_bool() == Some(true))
            .or(emails.first())
            .and_then(|e| e["value"].as_str())
            .map(str::to_string);
        Identity {
            kind: PrincipalKind::User,
            id: v["id"].as_str().unwrap_or_default().to_string(),
            name: v["userName"].as_str().unwrap_or_default().to_string(),
            email,
            display_name: v["displayName"].as_str().unwrap_or_default().to_string(),
        }
    }

    fn group_of(v: &Value) -> Identity {
        let name = v["displayName"].as_str().unwrap_or_default().to_string();
        Identity {
            kind: PrincipalKind::Group,
            id: v["id"].as_str().unwrap_or_default().to_string(),
            name: name.clone(),
            email: None,
            display_name: name,
        }
    }

    /// The user with this e-mail (`emails.value`, then `userName`; for a name that is not an
    /// e-mail, `userName` then `displayName`), if any.
    pub async fn find_user(&self, email: &str) -> Result<Option<Identity>, RbacError> {
        let attrs: &[&str] = if email.contains('@') {
            &["emails.value", "userName"]
        } else {
            // Not an e-mail (an ACL display name): the user name, then the display name.
            &["userName", "displayName"]
        };
        for attr in attrs {
            let found = self
                .list("Users", &format!("{attr} eq {}", q(email)))
                .await?;
            if let Some(u) = found.first() {
                return Ok(Some(Self::user_of(u)));
            }
        }
        Ok(None)
    }

    /// The group with this display name, if any.
    pub async fn find_group(&self, name: &str) -> Result<Option<Identity>, RbacError> {
        let found = self
            .list("Groups", &format!("displayName eq {}", q(name)))
            .await?;
        Ok(found.first().map(Self::group_of))
    }

    /// A user or group by name (e-mail for users).
    pub async fn find(
        &self,
        kind: PrincipalKind,
        name: &str,
    ) -> Result<Option<Identity>, RbacError> {
        match kind {
            PrincipalKind::User => self.find_user(name).await,
            PrincipalKind::Group => self.find_group(name).await,
        }
    }

    /// A user or group by SCIM id (None on 404).
    pub async fn by_id(
        &self,
        kind: PrincipalKind,
        id: &str,
    ) -> Result<Option<Identity>, RbacError> {
        let coll = match kind {
            PrincipalKind::User => "Users",
            PrincipalKind::Group => "Groups",
        };
        let (status, v) = self
            .call(Method::GET, &format!("/{coll}/{}", enc(id)), None, &[404])
            .await?;
        if status == 404 {
            return Ok(None);
        }
        Ok(Some(match kind {
            PrincipalKind::User => Self::user_of(&v),
            PrincipalKind::Group => Self::group_of(&v),
        }))
    }

    /// The OIC application by id or display name, with its app roles.
    pub async fn find_app(&self, name_or_id: &str) -> Result<OicApp, RbacError> {
        let (status, v) = self
            .call(
                Method::GET,
                &format!("/Apps/{}", enc(name_or_id)),
                None,
                &[404, 400],
            )
            .await?;
        let app = if status == 200 {
            v
        } else {
            let found = self
                .list("Apps", &format!("displayName eq {}", q(name_or_id)))
                .await?;
            found
                .into_iter()
                .next()
                .ok_or_else(|| RbacError::NotFound {
                    domain: self.name.clone(),
                    what: format!("OIC application `{name_or_id}`"),
                })?
        };
        let id = app["id"].as_str().unwrap_or_default().to_string();
        let mut roles = std::collections::BTreeMap::new();
        for r in self
            .list("AppRoles", &format!("app.value eq {}", q(&id)))
            .await?
        {
            if let (Some(n), Some(rid)) = (r["displayName"].as_str(), r["id"].as_str()) {
                roles.insert(n.to_string(), rid.to_string());
            }
        }
        Ok(OicApp {
            id,
            display_name: app["displayName"]
                .as_str()
                .unwrap_or(name_or_id)
                .to_string(),
            roles,
        })
    }

    /// The id of the grant of `role_id` of `app_id` to `grantee_id`, if there is one.
    pub async fn find_grant(
        &self,
        grantee_id: &str,
        app_id: &str,
        role_id: &str,
    ) -> Result<Option<String>, RbacError> {
        let found = self
            .list(
                "Grants",
                &format!(
                    "grantee.value eq {} and app.value eq {}",
                    q(grantee_id),
                    q(app_id)
                ),
            )
            .await?;
        Ok(found
            .iter()
            .find(|g| g["entitlement"]["attributeValue"].as_str() == Some(role_id))
            .and_then(|g| g["id"].as_str())
            .map(str::to_string))
    }

    /// Every app-role grant of `app_id`: (grantee kind, grantee id, app role id) each.
    pub async fn list_grants(
        &self,
        app_id: &str,
    ) -> Result<Vec<(PrincipalKind, String, String)>, RbacError> {
        let found = self
            .list("Grants", &format!("app.value eq {}", q(app_id)))
            .await?;
        Ok(found
            .iter()
            .filter_map(|g| {
                let kind = PrincipalKind::parse(g["grantee"]["type"].as_str()?)?;
                let id = g["grantee"]["value"].as_str()?.to_string();
                let role = g["entitlement"]["attributeValue"].as_str()?.to_string();
                Some((kind, id, role))
            })
            .collect())
    }

    /// Grants an app role (`POST /Grants`); 409 (already granted) is [`GrantOutcome::Unchanged`].
    pub async fn grant(
        &self,
        grantee: &Identity,
        app_id: &str,
        role_id: &str,
    ) -> Result<GrantOutcome, RbacError> {
        let (ty, mech) = match grantee.kind {
            PrincipalKind::User => ("User", "ADMINISTRATOR_TO_USER"),
            PrincipalKind::Group => ("Group", "ADMINISTRATOR_TO_GROUP"),
        };
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:oracle:idcs:Grant"],
            "grantee": { "type": ty, "value": grantee.id },
            "app": { "value": app_id },
            "entitlement": { "attributeName": "appRoles", "attributeValue": role_id },
            "grantMechanism": mech,
        });
        let (status, v) = self
            .call(Method::POST, "/Grants", Some(&body), &[409])
            .await?;
        if status == 409 {
            return Ok(GrantOutcome::Unchanged);
        }
        Ok(GrantOutcome::Granted(
            v["id"].as_str().unwrap_or_default().to_string(),
        ))
    }

    /// Deletes a grant; false when it was already gone (404).
    pub async fn delete_grant(&self, grant_id: &str) -> Result<bool, RbacError> {
        let (status, _) = self
            .call(
                Method::DELETE,
                &format!("/Grants/{}", enc(grant_id)),
                None,
                &[404],
            )
            .await?;
        Ok(status != 404)
    }
}
