//! Access: OIC roles in the identity domain (SCIM grants) and OIC 3 project ACLs.
//!
//! * [`IdentityClient`]: the identity domain's SCIM API (users, groups, the OIC application and its
//!   app roles, grants), with the credentials of an administrator application
//!   (`[identity.NAME]`), not the OIC one.
//! * [`RoleMap`]: who gets which role, from a Rhai map, a CSV or a TOML file.
//! * [`grant_app_roles`]: apply the OIC roles of a role map through SCIM grants. Idempotent: a
//!   role already held is `unchanged`.
//! * [`acl`]: project ACLs as data ([`acl::ProjectAcl`]): the edits a role map makes to one
//!   ([`acl::plan_project`]) and an ACL mapped into another identity domain
//!   ([`acl::map_acl`]). rbac never calls an OIC instance: `ops::grant` reads and writes the
//!   ACLs and hands them over.
//!
//! Every change goes through the effect [`Executor`] (stage `grant`): recorded, retried when
//! transient (the executor's one retry loop, lookups included), and only planned in a dry run
//! (where lookups still run, so the plan says which grants would be made and which are already
//! in place).

pub mod acl;
pub mod roles;
pub mod scim;

use std::future::Future;
use std::time::Duration;

pub use acl::{AclCopyRow, ProjectAcl};
pub use roles::{OIC_ROLES, PROJECT_ROLES, Principal, RoleEntry, RoleMap, oic_role, project_role};
pub use scim::{GrantOutcome, Identity, IdentityClient, OicApp};

use crate::artifact::{ArtifactKey, ArtifactKind};
use crate::effect::{Effect, EffectOutput, Executor, Failure, Outcome};
use crate::ledger::{Stage, StepError, StepStatus};

/// A user or a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PrincipalKind {
    User,
    Group,
}

impl PrincipalKind {
    /// `user` or `group` (as in project ACLs).
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Group => "group",
        }
    }
    /// Parses `user` / `group` (any case).
    pub fn parse(s: &str) -> Option<PrincipalKind> {
        match s.to_ascii_lowercase().as_str() {
            "user" => Some(PrincipalKind::User),
            "group" => Some(PrincipalKind::Group),
            _ => None,
        }
    }
}

/// Everything that can go wrong with access management. Never carries a token or a secret.
#[derive(Debug, thiserror::Error)]
pub enum RbacError {
    /// The identity domain answered with a non-success status.
    #[error("identity domain {domain}: {method} {path}: HTTP {status}: {detail}")]
    Http {
        domain: String,
        method: String,
        path: String,
        status: u16,
        detail: String,
        retry_after: Option<Duration>,
    },
    /// The identity domain could not be reached.
    #[error("identity domain {domain}: {method} {path}: {message}")]
    Transport {
        domain: String,
        method: String,
        path: String,
        message: String,
        timeout: bool,
    },
    /// The token endpoint refused the administrator application's credentials.
    #[error("identity domain {domain}: authentication failed: {message}")]
    Auth { domain: String, message: String },
    /// A user, group or application does not exist in the domain.
    #[error("{what} not found in identity domain {domain}")]
    NotFound { domain: String, what: String },
    /// A role map is invalid.
    #[error("role map {origin}: {message}")]
    RoleMap { origin: String, message: String },
    /// Something else the request cannot do (a project role on OIC Gen2, no identity domain...).
    #[error("{0}")]
    Usage(String),
    /// The config lacks what the request needs (an identity domain, or one for `instance`).
    #[error("{message}")]
    Config {
        instance: Option<String>,
        message: String,
    },
}

impl crate::effect::Classify for RbacError {
    fn retryable(&self) -> bool {
        self.is_retryable()
    }
    fn retry_after(&self) -> Option<Duration> {
        RbacError::retry_after(self)
    }
    fn status(&self) -> Option<u16> {
        RbacError::status(self)
    }
    fn kind(&self) -> &'static str {
        RbacError::kind(self)
    }
}

crate::into_failure!(RbacError);

impl RbacError {
    /// True for failures worth another attempt (429, 5xx, transport).
    pub fn is_retryable(&self) -> bool {
        match self {
            RbacError::Http { status, .. } => *status == 429 || *status >= 500,
            RbacError::Transport { .. } => true,
            _ => false,
        }
    }
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RbacError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
    pub fn status(&self) -> Option<u16> {
        match self {
            RbacError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
    /// `http`, `transport`, `timeout`, `auth`, `not_found`, `usage`.
    pub fn kind(&self) -> &'static str {
        match self {
            RbacError::Http { .. } => "http",
            RbacError::Transport { timeout: true, .. } => "timeout",
            RbacError::Transport { .. } => "transport",
            RbacError::Auth { .. } => "auth",
            RbacError::NotFound { .. } => "not_found",
            RbacError::RoleMap { .. } | RbacError::Usage(_) => "usage",
            RbacError::Config { .. } => "config",
        }
    }
}

/// How one grant, revoke or ACL entry ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantStatus {
    Granted,
    Revoked,
    /// Already in the wanted state.
    Unchanged,
    /// Dry run: would be granted or revoked.
    Planned,
    Failed,
}

impl GrantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantStatus::Granted => "granted",
            GrantStatus::Revoked => "revoked",
            GrantStatus::Unchanged => "unchanged",
            GrantStatus::Planned => "planned",
            GrantStatus::Failed => "failed",
        }
    }
}

/// The result for one principal, role and (for project access) project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantResult {
    pub principal: Principal,
    pub role: String,
    pub project: Option<String>,
    pub status: GrantStatus,
    /// Why it failed, or what "unchanged" means here.
    pub reason: Option<String>,
}

/// The key a grant step is recorded under: the principal and the role for OIC roles; the
/// project for ACL changes.
///
/// The ledger keys steps by artifact; a role grant is not an artifact, so it is recorded under a
/// pseudo-artifact of kind `grant`: `user:jane@example.com|ServiceDeveloper`.
pub fn step_key(p: &Principal, role: &str) -> ArtifactKey {
    ArtifactKey::new(ArtifactKind::Grant, p.to_string(), role)
}

impl EffectOutput for GrantOutcome {}

pub(crate) fn step_error(e: &RbacError) -> StepError {
    StepError {
        kind: e.kind().to_string(),
        status: e.status(),
        message: e.to_string(),
    }
}

/// A lookup in the identity domain (not recorded as a step), retried on transient failures by
/// the executor's one retry loop ([`Executor::read`]), with the run's policy and cancellation.
async fn read<T, F, Fut>(exec: &Executor, f: F) -> Result<T, RbacError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RbacError>>,
{
    exec.read("identity domain lookup", f).await
}

pub(crate) fn result(e: &RoleEntry, status: GrantStatus, reason: Option<String>) -> GrantResult {
    GrantResult {
        principal: e.principal.clone(),
        role: e.role.clone(),
        project: e.project.clone(),
        status,
        reason,
    }
}

pub(crate) async fn resolve(
    exec: &Executor,
    idp: &IdentityClient,
    p: &Principal,
) -> Result<Identity, RbacError> {
    read(exec, || idp.find(p.kind, &p.name))
        .await?
        .ok_or_else(|| RbacError::NotFound {
            domain: idp.name().to_string(),
            what: format!("{} `{}`", p.kind.as_str(), p.name),
        })
}

/// Grants (or revokes, `add` false) the OIC roles of `rows` (entries without a project) on the
/// application `app` (display name or id) of `idp`; steps are recorded on `where_` (the
/// instance, or the domain and application). Never fails as a whole: each row has its result
/// (and its step).
pub async fn grant_app_roles(
    exec: &Executor,
    idp: &IdentityClient,
    app: &str,
    where_: &str,
    rows: &[&RoleEntry],
    add: bool,
) -> Vec<GrantResult> {
    let verb = if add { "grant" } else { "revoke" };
    // The application and its roles, once.
    let app = match read(exec, || idp.find_app(app)).await {
        Ok(a) => a,
        Err(e) => {
            return rows
                .iter()
                .map(|r| {
                    let eff = Effect::new(
                        Stage::Grant,
                        step_key(&r.principal, &r.role),
                        where_,
                        format!("{verb} {}", r.role),
                    );
                    exec.note(&eff, StepStatus::Failed, Some(step_error(&e)));
                    result(r, GrantStatus::Failed, Some(e.to_string()))
                })
                .collect();
        }
    };
    let mut out = vec![];
    for r in rows {
        let eff = Effect::new(
            Stage::Grant,
            step_key(&r.principal, &r.role),
            where_,
            format!("{verb} {} on {}", r.role, app.display_name),
        );
        let res = match app_role_state(exec, idp, &app, r).await {
            Ok((who, role_id, existing)) => {
                let one = AppRoleGrant {
                    exec,
                    idp,
                    app: &app,
                    who: &who,
                    role_id: &role_id,
                    eff: &eff,
                };
                if add {
                    one.grant(r, existing.is_some()).await
                } else {
                    one.revoke(r, existing).await
                }
            }
            Err(e) => {
                exec.note(&eff, StepStatus::Failed, Some(step_error(&e)));
                result(r, GrantStatus::Failed, Some(e.to_string()))
            }
        };
        out.push(res);
    }
    out
}

/// What a row of OIC roles meets in the domain: the principal, the app role's id and the grant
/// it already has (its id), if any.
async fn app_role_state(
    exec: &Executor,
    idp: &IdentityClient,
    app: &OicApp,
    r: &RoleEntry,
) -> Result<(Identity, String, Option<String>), RbacError> {
    let Some(role_id) = app.roles.get(&r.role).cloned() else {
        return Err(RbacError::NotFound {
            domain: idp.name().to_string(),
            what: format!("app role `{}` of {}", r.role, app.display_name),
        });
    };
    let who = resolve(exec, idp, &r.principal).await?;
    let existing = read(exec, || idp.find_grant(&who.id, &app.id, &role_id)).await?;
    Ok((who, role_id, existing))
}

/// One app role for one principal, as the effect `eff`.
struct AppRoleGrant<'a> {
    exec: &'a Executor,
    idp: &'a IdentityClient,
    app: &'a OicApp,
    who: &'a Identity,
    role_id: &'a str,
    eff: &'a Effect,
}

impl AppRoleGrant<'_> {
    async fn grant(&self, r: &RoleEntry, held: bool) -> GrantResult {
        let already = || Some("already granted".to_string());
        if held {
            self.exec.note(self.eff, StepStatus::Skipped, None);
            return result(r, GrantStatus::Unchanged, already());
        }
        let res = self
            .exec
            .run(self.eff.clone(), || async {
                self.idp
                    .grant(self.who, &self.app.id, self.role_id)
                    .await
                    .map_err(Failure::from)
            })
            .await;
        match res {
            Ok(Outcome::Done(GrantOutcome::Granted(_))) => result(r, GrantStatus::Granted, None),
            Ok(Outcome::Done(GrantOutcome::Unchanged)) => {
                result(r, GrantStatus::Unchanged, already())
            }
            Ok(_) => result(r, GrantStatus::Planned, None),
            Err(e) => result(r, GrantStatus::Failed, Some(e.error.message)),
        }
    }

    async fn revoke(&self, r: &RoleEntry, existing: Option<String>) -> GrantResult {
        let not_granted = || Some("not granted".to_string());
        let Some(gid) = existing else {
            self.exec.note(self.eff, StepStatus::Skipped, None);
            return result(r, GrantStatus::Unchanged, not_granted());
        };
        let res = self
            .exec
            .run(self.eff.clone(), || async {
                self.idp.delete_grant(&gid).await.map_err(Failure::from)
            })
            .await;
        match res {
            Ok(Outcome::Done(true)) => result(r, GrantStatus::Revoked, None),
            Ok(Outcome::Done(false)) => result(r, GrantStatus::Unchanged, not_granted()),
            Ok(_) => result(r, GrantStatus::Planned, None),
            Err(e) => result(r, GrantStatus::Failed, Some(e.error.message)),
        }
    }
}
