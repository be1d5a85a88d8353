//! The OIC REST client: a plain async API over the Oracle Integration Developer APIs (Gen2 and
//! OIC 3), written from `docs/oic-api.md`.
//!
//! * Authentication: OAuth 2.0 client credentials (the `oauth2` crate, Basic client
//!   authentication), the token cached and renewed 60 s before expiry (half-life for short-lived
//!   tokens); HTTP Basic on Gen2. On a 401 the token is renewed once and the request repeated once.
//! * OIC 3: `integrationInstance=<name>` is appended to every request.
//! * Ids travel URL-encoded (`CODE%7CVERSION`); updates are `POST` with
//!   `X-HTTP-Method-Override: PATCH`; archives stream to and from disk and are never held in memory.
//! * The client never retries (beyond the one token renewal): errors are classified
//!   ([`OicError::is_retryable`], [`OicError::status`]) for the effect layer, which retries, logs
//!   and dry-runs. Decisions rely on status codes, never on error titles.
//!
//! [`OicClient`] is cheap to clone and safe to share between tasks; concurrent first calls share
//! one token request. A token response without `expires_in` (or with 0) is assumed to live an hour,
//! and the 401 renewal covers an earlier expiry.
//!
//! Operations (global space unless noted; `project: Option<&str>` selects `/projects/{p}/...`):
//!
//! * integrations: [`OicClient::list_integrations`], [`OicClient::get_integration`],
//!   [`OicClient::export_integration`], [`OicClient::import_integration`] (GET, then POST or
//!   stop-schedule/deactivate/PUT), [`OicClient::create_integration`] (POST only),
//!   [`OicClient::replace_integration`] (PUT only), [`OicClient::activate`] (sync or async with
//!   polling), [`OicClient::deactivate`], [`OicClient::activation_status`],
//!   [`OicClient::activation_errors`], [`OicClient::stop_schedule`], [`OicClient::delete_integration`];
//! * schedules (status codes: `src/oic/schedules.rs`): [`OicClient::get_schedule`] (definition + state),
//!   [`OicClient::schedule_state`], [`OicClient::start_schedule`], [`OicClient::stop_schedule`],
//!   and at a global or project path (`*_at(project, id)`): get, state, create, update, put
//!   (create or replace), delete, start, stop, pause, resume, set state, run now;
//! * connections: list, get, update (the four documented members), test, validate, attachments;
//! * lookups, libraries and packages: list, get, export, import (create or replace);
//! * certificates: [`OicClient::list_certificates`] (metadata only: OIC gives no certificate
//!   file or private key back, see `src/oic/certificates.rs`);
//! * OIC 3 projects: list, get, export `.car` (by deployment label or whole), import (replace =
//!   deactivate + delete + import, the ACL kept), delete, ACL get/put, project integrations
//!   (list, get, activate, deactivate, status);
//! * monitoring: per-integration statistics and the summary list;
//! * [`archive`]: code/version of an `.iar`, code of a `.car`, read without unpacking;
//! * [`instance_archive`]: OIC's own whole-instance export/import jobs (`/ic/api/common/v1`).

pub mod archive;
mod auth;
mod certificates;
mod connections;
mod error;
mod http;
pub mod instance_archive;
mod jwt;
mod limit;
mod projects;
mod resources;
mod schedules;
mod types;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use certificates::Certificate;
pub use connections::{Connection, ConnectionProperty, ConnectionTest, ConnectionUpdate};
pub use error::OicError;
pub use limit::{Lane, LimitStats, Limiter};

/// The highest window of the adaptive limiter.
pub const fn limit_max() -> usize {
    limit::MAX_LIMIT
}
pub use projects::{Acl, AclPrincipal, AclRole, Deployment, Project, ProjectExport};
pub use resources::{InstanceCounts, IntegrationStats, Library, Lookup, Package};
pub use schedules::{Schedule, ScheduleDefinition, ScheduleRun, ScheduleState};
pub use types::{
    ActivateOptions, ImportAction, ImportMode, ImportOutcome, Integration, IntegrationId,
    encode_segment,
};

use crate::artifact::{Artifact, ArtifactKey, ArtifactKind};
use crate::config::{Auth, Generation, InstanceProfile, Secret};
use http::{API, Body, Call};

pub(crate) enum AuthKind {
    Token(Box<auth::TokenSource>),
    Basic { user: String, password: Secret },
}

pub(crate) struct Inner {
    name: String,
    base: String,
    generation: Generation,
    integration_instance: Option<String>,
    auth: AuthKind,
    http: reqwest::Client,
    timeout: Duration,
    /// Limits on reading answers.
    reads: http::ReadLimits,
    /// Adaptive concurrency of the requests to this instance.
    limiter: Limiter,
}

/// A client for one OIC instance (one profile). Clone is cheap (an `Arc`); `Send + Sync`.
#[derive(Clone)]
pub struct OicClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for OicClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OicClient")
            .field("name", &self.inner.name)
            .field("base", &self.inner.base)
            .field("generation", &self.inner.generation)
            .finish()
    }
}

/// Refuses a `base_url` with a password, a query or a fragment (ferry builds every path and
/// query itself; credentials in a URL leak into logs); warns on plain `http://` to another host.
fn check_base_url(name: &str, u: &url::Url) -> Result<(), OicError> {
    let shown = format!("{}://{}", u.scheme(), u.host_str().unwrap_or_default());
    let bad = |what: &str| {
        Err(OicError::Config(format!(
            "{name}: base_url ({shown}...) must not carry {what}"
        )))
    };
    if u.password().is_some() || !u.username().is_empty() {
        return bad("a user or password (use the credential settings)");
    }
    if u.query().is_some() {
        return bad("a query (`?...`)");
    }
    if u.fragment().is_some() {
        return bad("a fragment (`#...`)");
    }
    let loopback = match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    };
    if u.scheme() == "http" && !loopback {
        tracing::warn!(
            "{name}: base_url {shown} is plain http: tokens and archives travel unencrypted"
        );
    }
    Ok(())
}

impl OicClient {
    /// Builds a client from a profile. Checks the URLs and the generation/auth combination; does
    /// not contact the instance (the first call fetches the token).
    pub fn new(profile: &InstanceProfile) -> Result<OicClient, OicError> {
        let name = profile.name.clone();
        let base = profile.base_url.trim_end_matches('/').to_string();
        let u = url::Url::parse(&base).map_err(|e| {
            OicError::Config(format!("{name}: base_url `{base}` is not a valid URL: {e}"))
        })?;
        if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
            return Err(OicError::Config(format!(
                "{name}: base_url `{base}` must be an http(s) URL with a host"
            )));
        }
        check_base_url(&name, &u)?;
        let ii = profile
            .integration_instance
            .clone()
            .filter(|s| !s.trim().is_empty());
        if profile.generation == Generation::Gen3 && ii.is_none() {
            return Err(OicError::Config(format!(
                "{name}: OIC 3 needs integration_instance (the service instance name)"
            )));
        }
        let timeout = Duration::from_secs(profile.timeout_secs.max(1));
        let auth = match &profile.auth {
            Auth::ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope,
            } => AuthKind::Token(Box::new(auth::TokenSource::new(
                &name,
                token_url,
                client_id,
                client_secret,
                scope,
                timeout,
            )?)),
            Auth::JwtUserAssertion(j) => AuthKind::Token(Box::new(
                auth::TokenSource::new(
                    &name,
                    &j.token_url,
                    &j.client_id,
                    &Secret::default(),
                    &j.scope,
                    timeout,
                )?
                .with_user_assertion(jwt::UserAssertion::new(&name, j)?),
            )),
            Auth::Basic { username, password } => {
                if profile.generation == Generation::Gen3 {
                    return Err(OicError::Config(format!(
                        "{name}: OIC 3 refuses basic authentication; configure OAuth client credentials"
                    )));
                }
                crate::config::secret::register_basic(username, password.expose());
                AuthKind::Basic {
                    user: username.clone(),
                    password: password.clone(),
                }
            }
        };
        let http = crate::net::client_builder()
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OicError::Config(format!("{name}: cannot build the HTTP client: {e}")))?;
        Ok(OicClient {
            inner: Arc::new(Inner {
                name,
                base,
                generation: profile.generation,
                integration_instance: ii,
                auth,
                http,
                timeout,
                reads: http::ReadLimits::new(&profile.reads, timeout),
                limiter: Limiter::new(),
            }),
        })
    }

    /// The adaptive concurrency limiter of this instance (shared by the client's clones).
    pub fn limiter(&self) -> &Limiter {
        &self.inner.limiter
    }

    /// The profile name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Gen2 or OIC 3.
    pub fn generation(&self) -> Generation {
        self.inner.generation
    }

    /// How many access tokens this client (and its clones) obtained so far; 0 with Basic auth.
    /// For diagnostics and tests of the renewal.
    pub async fn token_fetches(&self) -> u64 {
        match &self.inner.auth {
            AuthKind::Token(ts) => ts.fetches().await,
            AuthKind::Basic { .. } => 0,
        }
    }

    /// The Developer-API base URL.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// Which instance this client talks to: the base URL, with `?integrationInstance=NAME` on
    /// OIC 3 (no credentials). Two profiles with the same identity are the same instance.
    pub fn identity(&self) -> String {
        match &self.inner.integration_instance {
            Some(ii) => format!("{}?integrationInstance={ii}", self.inner.base),
            None => self.inner.base.clone(),
        }
    }

    fn integration_path(id: &IntegrationId) -> String {
        format!("{API}/integrations/{}", id.path_segment())
    }

    /// `/integrations/{id}` or `/projects/{p}/integrations/{id}`.
    pub(crate) fn ipath(project: Option<&str>, id: &IntegrationId) -> String {
        match project {
            Some(p) => format!(
                "{API}/projects/{}/integrations/{}",
                encode_segment(p),
                id.path_segment()
            ),
            None => Self::integration_path(id),
        }
    }

    // ---------------------------------------------------------------- integrations

    /// All integrations (`GET /integrations`, paged with `offset`/`limit` while `hasMore`).
    /// `q` is an OIC filter such as `{status:'ACTIVATED'}`.
    pub async fn list_integrations(&self, q: Option<&str>) -> Result<Vec<Integration>, OicError> {
        self.list_as(&format!("{API}/integrations"), q, Integration::from_json)
            .await
    }

    /// One integration; `None` on 404.
    pub async fn get_integration(
        &self,
        id: &IntegrationId,
    ) -> Result<Option<Integration>, OicError> {
        self.get_as(
            Call::get(Self::integration_path(id)),
            Integration::from_json,
        )
        .await
    }

    /// Exports an integration (`GET /integrations/{id}/archive`), streamed to a temporary file
    /// while hashed. The status is read first (`GET /integrations/{id}`) and recorded as
    /// `source_status`; the archive is checked to be an `.iar` of the same code and version.
    pub async fn export_integration(&self, id: &IntegrationId) -> Result<Artifact, OicError> {
        let v = self.json(Call::get(Self::integration_path(id))).await?;
        let status = Some(Integration::from_json(v).status.clone()).filter(|s| !s.is_empty());
        self.export_integration_with_status(id, status.as_deref())
            .await
    }

    /// [`OicClient::export_integration`] without the status read: `known_status` (for example
    /// from a list just made) is recorded as `source_status`. One request instead of two.
    pub async fn export_integration_with_status(
        &self,
        id: &IntegrationId,
        known_status: Option<&str>,
    ) -> Result<Artifact, OicError> {
        let status = known_status.filter(|s| !s.is_empty()).map(str::to_string);
        let call = Call::get(format!("{}/archive", Self::integration_path(id))).download();
        let (temp, size, sha) = self.download(call).await?;
        let p = temp.to_path_buf();
        let info = tokio::task::spawn_blocking(move || archive::inspect(&p))
            .await
            .map_err(|e| OicError::Config(format!("archive inspection task failed: {e}")))?
            .map_err(|e| match e {
                OicError::Archive { message, .. } => OicError::Archive {
                    artifact: format!("integration {id} exported from {}", self.inner.name),
                    message,
                },
                o => o,
            })?;
        if info.code != id.code || info.version != id.version {
            return Err(OicError::Archive {
                artifact: format!("integration {id} exported from {}", self.inner.name),
                message: format!("the archive holds {} instead", info.id()),
            });
        }
        let mut a = Artifact::from_temp(
            ArtifactKey::new(ArtifactKind::Integration, &id.code, &id.version),
            temp,
            size,
            sha,
            &self.inner.name,
        );
        a.source_status = status;
        Ok(a)
    }

    /// Imports an `.iar` following the documented sequence: `GET` the target; 404 →
    /// `POST /integrations/archive`; 200 → with [`ImportMode::Overwrite`] stop its schedule if
    /// one is defined (412 ignored), deactivate it if `ACTIVATED` (412 ignored) and
    /// `PUT /integrations/archive`; with [`ImportMode::SkipExisting`] do nothing. The file is
    /// streamed. The archive's own code/version must match the artifact key.
    pub async fn import_integration(
        &self,
        a: &Artifact,
        mode: ImportMode,
    ) -> Result<ImportOutcome, OicError> {
        let id = self.checked_iar(a).await?;
        match self.get_integration(&id).await? {
            None => {
                self.create_integration_unchecked(a).await?;
                Ok(ImportOutcome::created())
            }
            Some(cur) => {
                let prev = Some(cur.status.clone()).filter(|s| !s.is_empty());
                if mode == ImportMode::SkipExisting {
                    return Ok(ImportOutcome::existing(ImportAction::Skipped, prev));
                }
                if cur.schedule_defined {
                    self.stop_schedule(&id).await?;
                }
                if cur.status == "ACTIVATED" || cur.status == "ACTIVATION_INPROGRESS" {
                    self.deactivate(&id).await?;
                }
                self.empty(
                    Call::new(reqwest::Method::PUT, format!("{API}/integrations/archive"))
                        .body(Self::iar_body(a)),
                )
                .await?;
                Ok(ImportOutcome::existing(ImportAction::Replaced, prev))
            }
        }
    }

    /// `POST /integrations/archive` only (no existence check): 409 when it already exists.
    pub async fn create_integration(&self, a: &Artifact) -> Result<(), OicError> {
        self.checked_iar(a).await?;
        self.create_integration_unchecked(a).await
    }

    async fn create_integration_unchecked(&self, a: &Artifact) -> Result<(), OicError> {
        self.empty(
            Call::post(format!("{API}/integrations/archive"))
                .create()
                .body(Self::iar_body(a)),
        )
        .await
        .map(|_| ())
    }

    /// `PUT /integrations/archive` only: 404 when it does not exist, 412 when it is active,
    /// 423 when locked.
    pub async fn replace_integration(&self, a: &Artifact) -> Result<(), OicError> {
        self.checked_iar(a).await?;
        self.empty(
            Call::new(reqwest::Method::PUT, format!("{API}/integrations/archive"))
                .body(Self::iar_body(a)),
        )
        .await
        .map(|_| ())
    }

    fn iar_body(a: &Artifact) -> Body {
        Body::File {
            path: a.path().to_path_buf(),
            file_name: a.file_name(),
            fields: vec![],
        }
    }

    /// Checks that an artifact is an `.iar` whose content matches its key; returns its id.
    async fn checked_iar(&self, a: &Artifact) -> Result<IntegrationId, OicError> {
        if a.key.kind != ArtifactKind::Integration {
            return Err(OicError::Archive {
                artifact: a.key.to_string(),
                message: "not an integration archive (import it with the matching kind)".into(),
            });
        }
        let p = a.path().to_path_buf();
        let info = tokio::task::spawn_blocking(move || archive::inspect(&p))
            .await
            .map_err(|e| OicError::Config(format!("archive inspection task failed: {e}")))??;
        if info.code != a.key.code || info.version != a.key.version {
            return Err(OicError::Archive {
                artifact: a.key.to_string(),
                message: format!("the file holds {} (archives cannot be renamed)", info.id()),
            });
        }
        Ok(IntegrationId::new(&a.key.code, &a.key.version))
    }

    /// Activates (`POST` + PATCH override `{"status":"ACTIVATED"}`) and returns the final status.
    ///
    /// With `async_mode`, sends `enableAsyncActivationMode=true`; whenever the answer is
    /// `ACTIVATION_INPROGRESS`, polls `activationStatus` every `poll_interval` until `ACTIVATED`,
    /// `FAILEDACTIVATION` (→ [`OicError::Activation`] with the `activationErrors` text) or
    /// `timeout` (→ [`OicError::Activation`] with `timed_out`). A 412 from the PATCH is answered
    /// by reading the status: already `ACTIVATED` is success, in progress is polled, so a
    /// repeated call is safe; otherwise the 412 is returned.
    pub async fn activate(
        &self,
        id: &IntegrationId,
        opts: &ActivateOptions,
    ) -> Result<String, OicError> {
        self.activate_at(None, id, opts).await
    }

    /// The text of `GET /integrations/{id}/activationErrors` (messages joined with `; `).
    pub async fn activation_errors(&self, id: &IntegrationId) -> Result<String, OicError> {
        self.activation_errors_at(None, id).await
    }

    /// Deactivates (PATCH `{"status":"CONFIGURED"}`); 412 means it was not active: `Ok`.
    pub async fn deactivate(&self, id: &IntegrationId) -> Result<(), OicError> {
        self.deactivate_at(None, id).await
    }

    /// `GET /integrations/{id}/activationStatus` → `ACTIVATED`, `CONFIGURED`, ...
    pub async fn activation_status(&self, id: &IntegrationId) -> Result<String, OicError> {
        self.activation_status_at(None, id).await
    }

    /// The activation sequence at `/integrations/{id}` or `/projects/{p}/integrations/{id}`.
    pub(crate) async fn activate_at(
        &self,
        project: Option<&str>,
        id: &IntegrationId,
        opts: &ActivateOptions,
    ) -> Result<String, OicError> {
        let mut body = json!({"status": "ACTIVATED"});
        if let Some(t) = opts.tracing {
            body["tracingEnabledFlag"] = json!(t);
        }
        if let Some(t) = opts.payload_tracing {
            body["payloadTracingEnabledFlag"] = json!(t);
        }
        let mut call = Call::post(Self::ipath(project, id)).body(Body::Patch(body));
        if opts.async_mode {
            call = call.query("enableAsyncActivationMode", "true");
        }
        let status = match self.json(call).await {
            Ok(v) => types::opt_s(&v, "status").unwrap_or_default(),
            Err(e) if e.is_status(412) => {
                let st = self.activation_status_at(project, id).await?;
                if st != "ACTIVATED" && st != "ACTIVATION_INPROGRESS" {
                    return Err(e);
                }
                st
            }
            Err(e) => return Err(e),
        };
        let started = Instant::now();
        let mut status = if status.is_empty() {
            self.activation_status_at(project, id).await?
        } else {
            status
        };
        loop {
            match status.as_str() {
                "ACTIVATED" => return Ok(status),
                "FAILEDACTIVATION" => {
                    let message = self
                        .activation_errors_at(project, id)
                        .await
                        .unwrap_or_else(|e| format!("(activation errors unavailable: {e})"));
                    return Err(OicError::Activation {
                        instance: self.inner.name.clone(),
                        id: id.to_string(),
                        status,
                        message,
                        timed_out: false,
                    });
                }
                "ACTIVATION_INPROGRESS" => {}
                _ => {
                    return Err(OicError::Activation {
                        instance: self.inner.name.clone(),
                        id: id.to_string(),
                        message: format!("unexpected status `{status}` after activation"),
                        status,
                        timed_out: false,
                    });
                }
            }
            if started.elapsed() >= opts.timeout {
                return Err(OicError::Activation {
                    instance: self.inner.name.clone(),
                    id: id.to_string(),
                    message: format!("still {status} after {:?}", opts.timeout),
                    status,
                    timed_out: true,
                });
            }
            tokio::time::sleep(
                opts.poll_interval
                    .min(opts.timeout.saturating_sub(started.elapsed()))
                    .max(Duration::from_millis(10)),
            )
            .await;
            status = self.activation_status_at(project, id).await?;
        }
    }

    /// The text of `GET /integrations/{id}/activationErrors` (messages joined with `; `).
    pub(crate) async fn activation_errors_at(
        &self,
        project: Option<&str>,
        id: &IntegrationId,
    ) -> Result<String, OicError> {
        let v = self
            .json(Call::get(format!(
                "{}/activationErrors",
                Self::ipath(project, id)
            )))
            .await?;
        let items: Vec<String> = match v.get("items") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    match (
                        types::opt_s(x, "code"),
                        types::opt_s(x, "message").or_else(|| types::opt_s(x, "errorMessage")),
                    ) {
                        (Some(c), Some(m)) => format!("{c}: {m}"),
                        (None, Some(m)) => m,
                        _ => x.to_string(),
                    }
                })
                .collect(),
            _ => vec![],
        };
        Ok(if items.is_empty() {
            http::truncate(&v.to_string(), 500)
        } else {
            items.join("; ")
        })
    }

    /// Deactivates (PATCH `{"status":"CONFIGURED"}`); 412 means it was not active: `Ok`.
    pub(crate) async fn deactivate_at(
        &self,
        project: Option<&str>,
        id: &IntegrationId,
    ) -> Result<(), OicError> {
        match self
            .empty(
                Call::post(Self::ipath(project, id))
                    .body(Body::Patch(json!({"status": "CONFIGURED"}))),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_status(412) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `GET /integrations/{id}/activationStatus` → `ACTIVATED`, `CONFIGURED`, ...
    pub(crate) async fn activation_status_at(
        &self,
        project: Option<&str>,
        id: &IntegrationId,
    ) -> Result<String, OicError> {
        let call = Call::get(format!("{}/activationStatus", Self::ipath(project, id)));
        let path = call.path.clone();
        let v = self.json(call).await?;
        types::opt_s(&v, "activationStatus")
            .or_else(|| types::opt_s(&v, "status"))
            .ok_or_else(|| OicError::Protocol {
                instance: self.inner.name.clone(),
                method: "GET".into(),
                path,
                message: format!(
                    "no activationStatus in {}",
                    http::truncate(&v.to_string(), 120)
                ),
            })
    }

    /// `POST /integrations/{id}/schedule/stop`; 412 (not scheduled / not running) is `Ok`.
    pub async fn stop_schedule(&self, id: &IntegrationId) -> Result<(), OicError> {
        match self
            .empty(Call::post(format!(
                "{}/schedule/stop",
                Self::integration_path(id)
            )))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_status(412) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `DELETE /integrations/{id}` (412 when active, 423 when locked, 404 when absent).
    pub async fn delete_integration(&self, id: &IntegrationId) -> Result<(), OicError> {
        self.empty(Call::new(
            reqwest::Method::DELETE,
            Self::integration_path(id),
        ))
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(generation: Generation, ii: Option<&str>, auth: Auth) -> InstanceProfile {
        InstanceProfile {
            name: "dev".into(),
            base_url: "http://127.0.0.1:9/".into(),
            generation,
            integration_instance: ii.map(str::to_string),
            auth,
            timeout_secs: 5,
            reads: Default::default(),
        }
    }

    fn cc() -> Auth {
        Auth::ClientCredentials {
            token_url: "http://127.0.0.1:9/oauth2/v1/token".into(),
            client_id: "cid".into(),
            client_secret: Secret::new("s3cr3t-value"),
            scope: "sc".into(),
        }
    }

    #[test]
    fn construction_checks() {
        let c = OicClient::new(&profile(Generation::Gen3, Some("inst-1"), cc())).unwrap();
        assert_eq!(c.name(), "dev");
        assert_eq!(c.generation(), Generation::Gen3);
        assert_eq!(c.base_url(), "http://127.0.0.1:9");
        assert!(format!("{c:?}").contains("dev"));
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let e = OicClient::new(&profile(Generation::Gen3, None, cc())).unwrap_err();
        assert_eq!(e.kind(), "config");
        let basic = Auth::Basic {
            username: "u".into(),
            password: Secret::new("pw"),
        };
        assert_eq!(
            OicClient::new(&profile(Generation::Gen3, Some("i"), basic.clone()))
                .unwrap_err()
                .kind(),
            "config"
        );
        OicClient::new(&profile(Generation::Gen2, None, basic)).unwrap();
        let mut p = profile(Generation::Gen2, None, cc());
        p.base_url = "ftp://x".into();
        assert_eq!(OicClient::new(&p).unwrap_err().kind(), "config");
    }

    #[test]
    fn urls_carry_the_instance_on_gen3_only() {
        let c = OicClient::new(&profile(Generation::Gen3, Some("inst-1"), cc())).unwrap();
        let id = IntegrationId::new("HELLO", "01.00.0000");
        let call = Call::get(OicClient::integration_path(&id)).query("q", "{name:'x y'}");
        assert_eq!(
            c.url(&call).unwrap().as_str(),
            "http://127.0.0.1:9/ic/api/integration/v1/integrations/HELLO%7C01.00.0000?q=%7Bname%3A%27x+y%27%7D&integrationInstance=inst-1"
        );
        let c = OicClient::new(&profile(Generation::Gen2, Some("ignored"), cc())).unwrap();
        assert_eq!(
            c.url(&Call::get(OicClient::integration_path(&id)))
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9/ic/api/integration/v1/integrations/HELLO%7C01.00.0000"
        );
    }

    #[tokio::test]
    async fn transport_errors_are_classified_and_secret_free() {
        // port 9 (discard) on loopback: nothing listens, the connection is refused
        let c = OicClient::new(&profile(Generation::Gen3, Some("inst-1"), cc())).unwrap();
        let e = c.list_integrations(None).await.unwrap_err();
        assert_eq!(e.kind(), "transport", "{e}");
        assert!(e.is_retryable());
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        let basic = Auth::Basic {
            username: "u".into(),
            password: Secret::new("pw-secret"),
        };
        let c = OicClient::new(&profile(Generation::Gen2, None, basic)).unwrap();
        let e = c
            .get_integration(&IntegrationId::new("A", "01.00.0000"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), "transport", "{e}");
        assert!(!e.to_string().contains("pw-secret"));
    }
}

/// Compile-time check: the futures of the public API are `Send`, so callers can spawn them.
#[cfg(test)]
#[allow(dead_code)]
mod send_check {
    use super::*;
    fn send<T: Send>(_: T) {}
    fn shared<T: Send + Sync + 'static>() {}
    fn client_is_shareable() {
        shared::<OicClient>();
        shared::<OicError>();
        fn clone<T: Clone>() {}
        clone::<OicClient>();
    }
    fn all(c: OicClient, id: IntegrationId, a: Artifact, o: ActivateOptions, call: Call) {
        send(async move {
            let _ = c.attempt(&call, None).await;
            let _ = c.list_integrations(None).await;
            let _ = c.get_integration(&id).await;
            let _ = c.export_integration(&id).await;
            let _ = c.import_integration(&a, ImportMode::Overwrite).await;
            let _ = c.activate(&id, &o).await;
            let _ = c.list_connections(None, None).await;
            let _ = c.export_project("P", &ProjectExport::default()).await;
            let _ = c.import_project(&a, ImportMode::Overwrite).await;
            let _ = c.import_library(&a, None, ImportMode::Overwrite).await;
        });
    }
}
