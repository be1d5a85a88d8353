//! Access: OIC roles in the identity domain (SCIM grants) and OIC 3 project ACLs.
//!
//! * [`IdentityClient`]: the identity domain's SCIM API (users, groups, the OIC application and its
//!   app roles, grants), with the credentials of an administrator application
//!   (`[identity.NAME]`), not the OIC one.
//! * [`RoleMap`]: who gets which role, from a Rhai map, a CSV or a TOML file.
//! * [`grant`] / [`revoke`]: apply a role map to an instance: OIC roles through SCIM grants,
//!   project roles through the project's ACL. Idempotent: a role already held is `unchanged`.
//! * [`copy_acl`]: copy a project's ACL from one instance to another, mapping principals by
//!   e-mail or group name; principals missing in the target domain are reported, not dropped
//!   silently.
//!
//! Every change goes through the effect [`Executor`] (stage `grant`): recorded, retried when
//! transient, and only planned in a dry run (where lookups still run, so the plan says which
//! grants would be made and which are already in place).

pub mod roles;
pub mod scim;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

pub use roles::{OIC_ROLES, PROJECT_ROLES, Principal, RoleEntry, RoleMap, oic_role, project_role};
pub use scim::{GrantOutcome, Identity, IdentityClient, OicApp};

use crate::artifact::{ArtifactKey, ArtifactKind};
use crate::effect::{Effect, EffectOutput, Executor, Failure, Outcome};
use crate::ledger::{Stage, StepError, StepStatus};
use crate::oic::{Acl, AclPrincipal, AclRole, OicClient};

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

/// Where roles are granted: an identity domain and the OIC application of one instance, plus
/// the instance's client for project ACLs (OIC 3).
pub struct AccessTarget<'a> {
    pub identity: &'a IdentityClient,
    /// The OIC application's display name (`OICINST_prod`) or id.
    pub app: String,
    /// The instance (for project ACLs and the record), when there is one.
    pub oic: Option<&'a OicClient>,
}

impl AccessTarget<'_> {
    fn label(&self) -> String {
        match self.oic {
            Some(c) => c.name().to_string(),
            None => format!("{} ({})", self.identity.name(), self.app),
        }
    }
}

/// The key a grant step is recorded under: the principal and the role for OIC roles; the
/// project for ACL changes.
///
/// The ledger keys steps by artifact; a role grant is not an artifact, so it is recorded under a
/// pseudo-artifact of kind `grant`: `user:jane@example.com|ServiceDeveloper`.
pub fn step_key(p: &Principal, role: &str) -> ArtifactKey {
    ArtifactKey::new(ArtifactKind::Grant, p.to_string(), role)
}

fn project_key(project: &str) -> ArtifactKey {
    ArtifactKey::new(ArtifactKind::Project, project, "")
}

impl EffectOutput for GrantOutcome {}

fn step_error(e: &RbacError) -> StepError {
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

fn result(e: &RoleEntry, status: GrantStatus, reason: Option<String>) -> GrantResult {
    GrantResult {
        principal: e.principal.clone(),
        role: e.role.clone(),
        project: e.project.clone(),
        status,
        reason,
    }
}

async fn resolve(
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

/// Grants every entry of `map` on `target`: OIC roles through SCIM grants, project roles through
/// the projects' ACLs. Never fails as a whole: each entry has its result (and its step).
pub async fn grant(exec: &Executor, target: &AccessTarget<'_>, map: &RoleMap) -> Vec<GrantResult> {
    apply(exec, target, map, true).await
}

/// Revokes every entry of `map` on `target` (a role not held is `unchanged`).
pub async fn revoke(exec: &Executor, target: &AccessTarget<'_>, map: &RoleMap) -> Vec<GrantResult> {
    apply(exec, target, map, false).await
}

async fn apply(
    exec: &Executor,
    target: &AccessTarget<'_>,
    map: &RoleMap,
    add: bool,
) -> Vec<GrantResult> {
    let mut out = vec![];
    let (app_rows, project_rows): (Vec<&RoleEntry>, Vec<&RoleEntry>) =
        map.entries.iter().partition(|e| e.project.is_none());
    if !app_rows.is_empty() {
        out.extend(apply_app_roles(exec, target, &app_rows, add).await);
    }
    let mut by_project: BTreeMap<String, Vec<&RoleEntry>> = BTreeMap::new();
    for e in project_rows {
        by_project
            .entry(e.project.clone().unwrap_or_default())
            .or_default()
            .push(e);
    }
    for (project, rows) in by_project {
        out.extend(apply_project(exec, target, &project, &rows, add).await);
    }
    out
}

async fn apply_app_roles(
    exec: &Executor,
    target: &AccessTarget<'_>,
    rows: &[&RoleEntry],
    add: bool,
) -> Vec<GrantResult> {
    let idp = target.identity;
    let where_ = target.label();
    let verb = if add { "grant" } else { "revoke" };
    // The application and its roles, once.
    let app = match read(exec, || idp.find_app(&target.app)).await {
        Ok(a) => a,
        Err(e) => {
            return rows
                .iter()
                .map(|r| {
                    let eff = Effect::new(
                        Stage::Grant,
                        step_key(&r.principal, &r.role),
                        &where_,
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
            &where_,
            format!("{verb} {} on {}", r.role, app.display_name),
        );
        let fail = |e: RbacError| {
            exec.note(&eff, StepStatus::Failed, Some(step_error(&e)));
            result(r, GrantStatus::Failed, Some(e.to_string()))
        };
        let Some(role_id) = app.roles.get(&r.role).cloned() else {
            out.push(fail(RbacError::NotFound {
                domain: idp.name().to_string(),
                what: format!("app role `{}` of {}", r.role, app.display_name),
            }));
            continue;
        };
        let who = match resolve(exec, idp, &r.principal).await {
            Ok(w) => w,
            Err(e) => {
                out.push(fail(e));
                continue;
            }
        };
        let existing = match read(exec, || idp.find_grant(&who.id, &app.id, &role_id)).await {
            Ok(g) => g,
            Err(e) => {
                out.push(fail(e));
                continue;
            }
        };
        if add {
            if existing.is_some() {
                exec.note(&eff, StepStatus::Skipped, None);
                out.push(result(
                    r,
                    GrantStatus::Unchanged,
                    Some("already granted".into()),
                ));
                continue;
            }
            let res = exec
                .run(eff.clone(), || async {
                    idp.grant(&who, &app.id, &role_id)
                        .await
                        .map_err(Failure::from)
                })
                .await;
            out.push(match res {
                Ok(Outcome::Done(GrantOutcome::Granted(_))) => {
                    result(r, GrantStatus::Granted, None)
                }
                Ok(Outcome::Done(GrantOutcome::Unchanged)) => {
                    result(r, GrantStatus::Unchanged, Some("already granted".into()))
                }
                Ok(_) => result(r, GrantStatus::Planned, None),
                Err(e) => result(r, GrantStatus::Failed, Some(e.error.message)),
            });
        } else {
            let Some(gid) = existing else {
                exec.note(&eff, StepStatus::Skipped, None);
                out.push(result(
                    r,
                    GrantStatus::Unchanged,
                    Some("not granted".into()),
                ));
                continue;
            };
            let res = exec
                .run(eff.clone(), || async {
                    idp.delete_grant(&gid).await.map_err(Failure::from)
                })
                .await;
            out.push(match res {
                Ok(Outcome::Done(true)) => result(r, GrantStatus::Revoked, None),
                Ok(Outcome::Done(false)) => {
                    result(r, GrantStatus::Unchanged, Some("not granted".into()))
                }
                Ok(_) => result(r, GrantStatus::Planned, None),
                Err(e) => result(r, GrantStatus::Failed, Some(e.error.message)),
            });
        }
    }
    out
}

/// The role list of an ACL by name (`administrators`, ...).
pub fn acl_role_mut<'a>(acl: &'a mut Acl, role: &str) -> Option<&'a mut AclRole> {
    match role {
        "administrators" => Some(&mut acl.administrators),
        "editors" => Some(&mut acl.editors),
        "viewers" => Some(&mut acl.viewers),
        "monitors" => Some(&mut acl.monitors),
        _ => None,
    }
}

/// The role list of an ACL by name (read only).
pub fn acl_role<'a>(acl: &'a Acl, role: &str) -> Option<&'a AclRole> {
    match role {
        "administrators" => Some(&acl.administrators),
        "editors" => Some(&acl.editors),
        "viewers" => Some(&acl.viewers),
        "monitors" => Some(&acl.monitors),
        _ => None,
    }
}

async fn apply_project(
    exec: &Executor,
    target: &AccessTarget<'_>,
    project: &str,
    rows: &[&RoleEntry],
    add: bool,
) -> Vec<GrantResult> {
    let where_ = target.label();
    let key = project_key(project);
    let fail_all = |e: String, kind: &str| -> Vec<GrantResult> {
        let eff = Effect::new(Stage::Grant, key.clone(), &where_, "update ACL");
        exec.note(
            &eff,
            StepStatus::Failed,
            Some(StepError {
                kind: kind.into(),
                status: None,
                message: e.clone(),
            }),
        );
        rows.iter()
            .map(|r| result(r, GrantStatus::Failed, Some(e.clone())))
            .collect()
    };
    let Some(oic) = target.oic else {
        return fail_all(
            format!("project {project}: project access needs an OIC 3 instance as the target"),
            "usage",
        );
    };
    let mut acl = match oic.get_project_acl(project).await {
        Ok(a) => a,
        Err(e) => return fail_all(e.to_string(), e.kind()),
    };
    // Results in the order of the map; the changed rows are filled in after the PUT.
    let mut out: Vec<Option<GrantResult>> = vec![None; rows.len()];
    let mut changed: Vec<(usize, String)> = vec![];
    for (i, r) in rows.iter().enumerate() {
        let who = match resolve(exec, target.identity, &r.principal).await {
            Ok(w) => w,
            Err(e) => {
                let eff = Effect::new(
                    Stage::Grant,
                    key.clone(),
                    &where_,
                    format!(
                        "{} {} as {}",
                        if add { "add" } else { "remove" },
                        r.principal,
                        r.role
                    ),
                );
                exec.note(&eff, StepStatus::Failed, Some(step_error(&e)));
                out[i] = Some(result(r, GrantStatus::Failed, Some(e.to_string())));
                continue;
            }
        };
        let Some(list) = acl_role_mut(&mut acl, &r.role) else {
            out[i] = Some(result(
                r,
                GrantStatus::Failed,
                Some(format!("unknown ACL role {}", r.role)),
            ));
            continue;
        };
        let kind = r.principal.kind.as_str();
        let has = list
            .allowed
            .iter()
            .position(|p| p.id == who.id && p.kind == kind);
        match (add, has) {
            (true, Some(_)) => {
                out[i] = Some(result(
                    r,
                    GrantStatus::Unchanged,
                    Some(format!("already in {}", r.role)),
                ))
            }
            (false, None) => {
                out[i] = Some(result(
                    r,
                    GrantStatus::Unchanged,
                    Some(format!("not in {}", r.role)),
                ))
            }
            (true, None) => {
                list.allowed.push(AclPrincipal {
                    id: who.id.clone(),
                    display_name: who.display_name.clone(),
                    kind: kind.to_string(),
                    id_not_found: false,
                });
                changed.push((i, format!("add {} to {}", r.principal, r.role)));
            }
            (false, Some(j)) => {
                list.allowed.remove(j);
                changed.push((i, format!("remove {} from {}", r.principal, r.role)));
            }
        }
    }
    if !changed.is_empty() {
        let action = changed
            .iter()
            .map(|(_, a)| a.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let eff = Effect::new(Stage::Grant, key, &where_, format!("ACL: {action}"));
        let res = exec
            .run(eff, || async {
                oic.put_project_acl(project, &acl)
                    .await
                    .map_err(Failure::from)
            })
            .await;
        let (status, reason) = match res {
            Ok(Outcome::Done(())) => (
                if add {
                    GrantStatus::Granted
                } else {
                    GrantStatus::Revoked
                },
                None,
            ),
            Ok(_) => (GrantStatus::Planned, None),
            Err(e) => (GrantStatus::Failed, Some(e.error.message)),
        };
        for (i, _) in changed {
            out[i] = Some(result(rows[i], status, reason.clone()));
        }
    }
    out.into_iter().flatten().collect()
}

/// One principal of a copied ACL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclCopyRow {
    pub role: String,
    pub kind: PrincipalKind,
    /// The e-mail or group name it was matched by (or the display name when nothing better was
    /// known).
    pub name: String,
    pub source_id: String,
    /// The id in the target domain, when it was found.
    pub target_id: Option<String>,
    /// `granted` (copied), `unchanged` (the target ACL already had it), `planned`, `failed`
    /// (not found in the target domain, or the PUT failed).
    pub status: GrantStatus,
    pub reason: Option<String>,
}

/// Copies the ACL of `project` from `src` to `dst`: `allowAll` as on the source, each principal
/// mapped by e-mail (users) or name (groups) into the target domain. The source domain, when
/// given, turns source ids into e-mails and group names; otherwise the ACL's display names are
/// used. Principals that do not exist in the target domain are reported (failed rows and
/// failed steps), and the rest is copied.
pub async fn copy_acl(
    exec: &Executor,
    src: &OicClient,
    src_idp: Option<&IdentityClient>,
    dst: &OicClient,
    dst_idp: &IdentityClient,
    project: &str,
) -> Result<Vec<AclCopyRow>, Failure> {
    let src_acl = src.get_project_acl(project).await?;
    let current = dst.get_project_acl(project).await?;
    let key = project_key(project);
    let mut new_acl = Acl::default();
    let mut rows = vec![];
    for role in PROJECT_ROLES {
        let (Some(from), Some(to)) = (acl_role(&src_acl, role), acl_role_mut(&mut new_acl, role))
        else {
            continue;
        };
        to.allow_all = from.allow_all;
        for p in &from.allowed {
            let kind = PrincipalKind::parse(&p.kind).unwrap_or(PrincipalKind::User);
            // The name to match by: from the source domain when we can ask it.
            let mut name = p.display_name.clone();
            if let Some(sidp) = src_idp
                && let Ok(Some(who)) = read(exec, || sidp.by_id(kind, &p.id)).await
            {
                name = match kind {
                    PrincipalKind::User => who.email.clone().unwrap_or(who.name.clone()),
                    PrincipalKind::Group => who.name.clone(),
                };
            }
            if name.is_empty() {
                name = p.id.clone();
            }
            let found = read(exec, || dst_idp.find(kind, &name)).await;
            let mut row = AclCopyRow {
                role: role.to_string(),
                kind,
                name: name.clone(),
                source_id: p.id.clone(),
                target_id: None,
                status: GrantStatus::Failed,
                reason: None,
            };
            match found {
                Ok(Some(who)) => {
                    row.target_id = Some(who.id.clone());
                    if !to
                        .allowed
                        .iter()
                        .any(|x| x.id == who.id && x.kind == kind.as_str())
                    {
                        to.allowed.push(AclPrincipal {
                            id: who.id.clone(),
                            display_name: if who.display_name.is_empty() {
                                name.clone()
                            } else {
                                who.display_name.clone()
                            },
                            kind: kind.as_str().to_string(),
                            id_not_found: false,
                        });
                    }
                }
                Ok(None) => {
                    let e = RbacError::NotFound {
                        domain: dst_idp.name().to_string(),
                        what: format!("{} `{name}`", kind.as_str()),
                    };
                    row.reason = Some(format!("{e}; not copied"));
                    let eff = Effect::new(
                        Stage::Grant,
                        key.clone(),
                        dst.name(),
                        format!("copy ACL: map {}:{name} ({role})", kind.as_str()),
                    );
                    exec.note(&eff, StepStatus::Failed, Some(step_error(&e)));
                }
                Err(e) => {
                    row.reason = Some(e.to_string());
                    let eff = Effect::new(
                        Stage::Grant,
                        key.clone(),
                        dst.name(),
                        format!("copy ACL: map {}:{name} ({role})", kind.as_str()),
                    );
                    exec.note(&eff, StepStatus::Failed, Some(step_error(&e)));
                }
            }
            rows.push(row);
        }
    }
    let unmapped = rows.iter().filter(|r| r.target_id.is_none()).count();
    let same = acl_equal(&current, &new_acl);
    let mapped_status = if same {
        let eff = Effect::new(
            Stage::Grant,
            key,
            dst.name(),
            format!("copy ACL from {}", src.name()),
        );
        exec.note(&eff, StepStatus::Skipped, None);
        (
            GrantStatus::Unchanged,
            Some("the target ACL is already the same".to_string()),
        )
    } else {
        let eff = Effect::new(
            Stage::Grant,
            key,
            dst.name(),
            format!(
                "copy ACL from {}: {} principal(s){}",
                src.name(),
                rows.len() - unmapped,
                if unmapped > 0 {
                    format!(", {unmapped} not found in the target domain")
                } else {
                    String::new()
                }
            ),
        );
        match exec
            .run(eff, || async {
                dst.put_project_acl(project, &new_acl)
                    .await
                    .map_err(Failure::from)
            })
            .await
        {
            Ok(Outcome::Done(())) => (GrantStatus::Granted, None),
            Ok(_) => (GrantStatus::Planned, None),
            Err(e) => (GrantStatus::Failed, Some(e.error.message)),
        }
    };
    for r in rows.iter_mut().filter(|r| r.target_id.is_some()) {
        r.status = mapped_status.0;
        r.reason = mapped_status.1.clone();
    }
    Ok(rows)
}

/// Same `allowAll` flags and the same principals (by id and type) per role, in any order.
fn acl_equal(a: &Acl, b: &Acl) -> bool {
    PROJECT_ROLES
        .iter()
        .all(|r| match (acl_role(a, r), acl_role(b, r)) {
            (Some(x), Some(y)) => {
                let set = |l: &AclRole| {
                    let mut v: Vec<(String, String)> = l
                        .allowed
                        .iter()
                        .map(|p| (p.id.clone(), p.kind.clone()))
                        .collect();
                    v.sort();
                    v
                };
                x.allow_all == y.allow_all && set(x) == set(y)
            }
            _ => false,
        })
}
