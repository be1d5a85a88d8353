//! Project access lists as data: rbac's own view of an OIC 3 project ACL, and the decisions
//! taken on it. Nothing here reads or writes an ACL on an instance: `ops::grant` reads it with
//! the OIC client, hands it over as a [`ProjectAcl`], and writes back what comes out.

use super::{
    GrantResult, GrantStatus, Identity, IdentityClient, PrincipalKind, RbacError, RoleEntry,
    resolve, result, step_error,
};
use crate::artifact::{ArtifactKey, ArtifactKind};
use crate::effect::{Effect, Executor};
use crate::ledger::{Stage, StepStatus};

pub use super::roles::PROJECT_ROLES;

/// One principal of an ACL role.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AclMember {
    /// The id in the identity domain.
    pub id: String,
    pub display_name: String,
    /// `user` or `group`, as the instance said it (kept as it is, so a PUT sends it back).
    pub kind: String,
    /// The id no longer resolves in the instance's identity domain.
    pub id_not_found: bool,
}

/// One ACL role: everybody, or a list of principals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AclRoleList {
    pub allow_all: bool,
    pub allowed: Vec<AclMember>,
}

/// A project's ACL: the four roles of [`PROJECT_ROLES`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProjectAcl {
    pub administrators: AclRoleList,
    pub editors: AclRoleList,
    pub viewers: AclRoleList,
    pub monitors: AclRoleList,
}

impl ProjectAcl {
    /// The role list by name (`administrators`, ...).
    pub fn role(&self, role: &str) -> Option<&AclRoleList> {
        match role {
            "administrators" => Some(&self.administrators),
            "editors" => Some(&self.editors),
            "viewers" => Some(&self.viewers),
            "monitors" => Some(&self.monitors),
            _ => None,
        }
    }

    /// The role list by name, to change it.
    pub fn role_mut(&mut self, role: &str) -> Option<&mut AclRoleList> {
        match role {
            "administrators" => Some(&mut self.administrators),
            "editors" => Some(&mut self.editors),
            "viewers" => Some(&mut self.viewers),
            "monitors" => Some(&mut self.monitors),
            _ => None,
        }
    }

    /// Same `allowAll` flags and the same principals (by id and type) per role, in any order.
    pub fn same_as(&self, other: &ProjectAcl) -> bool {
        fn set(l: &AclRoleList) -> Vec<(&str, &str)> {
            let mut v: Vec<(&str, &str)> = l
                .allowed
                .iter()
                .map(|p| (p.id.as_str(), p.kind.as_str()))
                .collect();
            v.sort();
            v
        }
        PROJECT_ROLES
            .iter()
            .all(|r| match (self.role(r), other.role(r)) {
                (Some(x), Some(y)) => x.allow_all == y.allow_all && set(x) == set(y),
                _ => false,
            })
    }
}

/// What adding or removing one principal does to an ACL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AclEdit {
    /// Already in the wanted state; why, for people.
    Unchanged(String),
    /// Changed; the action, for the record.
    Changed(String),
    /// Not one of [`PROJECT_ROLES`].
    UnknownRole,
}

/// Adds `who` to (or removes it from) `role` of `acl`.
pub fn edit(acl: &mut ProjectAcl, role: &str, who: &Identity, add: bool) -> AclEdit {
    let Some(list) = acl.role_mut(role) else {
        return AclEdit::UnknownRole;
    };
    let kind = who.kind.as_str();
    let shown = format!("{kind}:{}", who_name(who));
    let has = list
        .allowed
        .iter()
        .position(|p| p.id == who.id && p.kind == kind);
    match (add, has) {
        (true, Some(_)) => AclEdit::Unchanged(format!("already in {role}")),
        (false, None) => AclEdit::Unchanged(format!("not in {role}")),
        (true, None) => {
            list.allowed.push(AclMember {
                id: who.id.clone(),
                display_name: who.display_name.clone(),
                kind: kind.to_string(),
                id_not_found: false,
            });
            AclEdit::Changed(format!("add {shown} to {role}"))
        }
        (false, Some(j)) => {
            list.allowed.remove(j);
            AclEdit::Changed(format!("remove {shown} from {role}"))
        }
    }
}

fn who_name(who: &Identity) -> &str {
    match who.kind {
        PrincipalKind::User => who.email.as_deref().unwrap_or(&who.name),
        PrincipalKind::Group => &who.name,
    }
}

/// The pseudo-artifact ACL steps are recorded under: the project.
pub fn project_key(project: &str) -> ArtifactKey {
    ArtifactKey::new(ArtifactKind::Project, project, "")
}

/// The rows of a role map for one project, applied to its ACL in memory: the results of the
/// rows decided without a change, and the rows that changed the ACL (with their actions).
pub struct AclPlan {
    /// In the order of the rows; `None` for the changed ones (decided by the write).
    pub results: Vec<Option<GrantResult>>,
    /// (row index, action).
    pub changed: Vec<(usize, String)>,
}

impl AclPlan {
    /// The actions of the changed rows, for the one recorded write.
    pub fn action(&self) -> String {
        let a: Vec<&str> = self.changed.iter().map(|(_, a)| a.as_str()).collect();
        format!("ACL: {}", a.join(", "))
    }

    /// The results once the write ended with `status` (and `reason`).
    pub fn finish(
        mut self,
        rows: &[&RoleEntry],
        status: GrantStatus,
        reason: Option<String>,
    ) -> Vec<GrantResult> {
        for (i, _) in std::mem::take(&mut self.changed) {
            self.results[i] = Some(result(rows[i], status, reason.clone()));
        }
        self.results.into_iter().flatten().collect()
    }
}

/// Resolves each row's principal in `idp` (lookups through the executor's retry loop) and
/// edits `acl` in memory. A principal that is not found is a failed row (and a failed step on
/// the project, recorded on `target`).
pub async fn plan_project(
    exec: &Executor,
    idp: &IdentityClient,
    target: &str,
    project: &str,
    acl: &mut ProjectAcl,
    rows: &[&RoleEntry],
    add: bool,
) -> AclPlan {
    let mut plan = AclPlan {
        results: vec![None; rows.len()],
        changed: vec![],
    };
    for (i, r) in rows.iter().enumerate() {
        let who = match resolve(exec, idp, &r.principal).await {
            Ok(w) => w,
            Err(e) => {
                let verb = if add { "add" } else { "remove" };
                let action = format!("{verb} {} as {}", r.principal, r.role);
                let eff = Effect::new(Stage::Grant, project_key(project), target, action);
                exec.note(&eff, StepStatus::Failed, Some(step_error(&e)));
                plan.results[i] = Some(result(r, GrantStatus::Failed, Some(e.to_string())));
                continue;
            }
        };
        match edit(acl, &r.role, &who, add) {
            AclEdit::Unchanged(why) => {
                plan.results[i] = Some(result(r, GrantStatus::Unchanged, Some(why)))
            }
            AclEdit::UnknownRole => {
                let why = format!("unknown ACL role {}", r.role);
                plan.results[i] = Some(result(r, GrantStatus::Failed, Some(why)))
            }
            // The action names the principal as the map did.
            AclEdit::Changed(_) => plan.changed.push((
                i,
                if add {
                    format!("add {} to {}", r.principal, r.role)
                } else {
                    format!("remove {} from {}", r.principal, r.role)
                },
            )),
        }
    }
    plan
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

/// The source ACL mapped into the target domain: `allowAll` as on the source, each principal
/// found by e-mail (users) or name (groups) in `dst_idp`. The source domain, when given, turns
/// source ids into e-mails and group names; otherwise the ACL's display names are used.
/// Principals missing in the target domain are failed rows (and failed steps on the project,
/// recorded on `target`); their statuses are final, the others wait for the write.
pub async fn map_acl(
    exec: &Executor,
    src_acl: &ProjectAcl,
    src_idp: Option<&IdentityClient>,
    dst_idp: &IdentityClient,
    target: &str,
    project: &str,
) -> (ProjectAcl, Vec<AclCopyRow>) {
    let mut new_acl = ProjectAcl::default();
    let mut rows = vec![];
    for role in PROJECT_ROLES {
        let (Some(from), Some(to)) = (src_acl.role(role), new_acl.role_mut(role)) else {
            continue;
        };
        to.allow_all = from.allow_all;
        for p in &from.allowed {
            let kind = PrincipalKind::parse(&p.kind).unwrap_or(PrincipalKind::User);
            let name = source_name(exec, src_idp, kind, p).await;
            let mut row = AclCopyRow {
                role: role.to_string(),
                kind,
                name: name.clone(),
                source_id: p.id.clone(),
                target_id: None,
                status: GrantStatus::Failed,
                reason: None,
            };
            let found = exec
                .read("identity domain lookup", || dst_idp.find(kind, &name))
                .await;
            let err = match found {
                Ok(Some(who)) => {
                    row.target_id = Some(who.id.clone());
                    if !to
                        .allowed
                        .iter()
                        .any(|x| x.id == who.id && x.kind == kind.as_str())
                    {
                        to.allowed.push(AclMember {
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
                    None
                }
                Ok(None) => {
                    let e = RbacError::NotFound {
                        domain: dst_idp.name().to_string(),
                        what: format!("{} `{name}`", kind.as_str()),
                    };
                    row.reason = Some(format!("{e}; not copied"));
                    Some(e)
                }
                Err(e) => {
                    row.reason = Some(e.to_string());
                    Some(e)
                }
            };
            if let Some(e) = err {
                let action = format!("copy ACL: map {}:{name} ({role})", kind.as_str());
                let eff = Effect::new(Stage::Grant, project_key(project), target, action);
                exec.note(&eff, StepStatus::Failed, Some(step_error(&e)));
            }
            rows.push(row);
        }
    }
    (new_acl, rows)
}

/// The name to match a source principal by: from the source domain when we can ask it, else
/// its display name, else its id.
async fn source_name(
    exec: &Executor,
    src_idp: Option<&IdentityClient>,
    kind: PrincipalKind,
    p: &AclMember,
) -> String {
    let mut name = p.display_name.clone();
    if let Some(sidp) = src_idp
        && let Ok(Some(who)) = exec
            .read("identity domain lookup", || sidp.by_id(kind, &p.id))
            .await
    {
        name = who_name(&who).to_string();
    }
    if name.is_empty() {
        name = p.id.clone();
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(kind: PrincipalKind, id: &str) -> Identity {
        Identity {
            kind,
            id: id.into(),
            name: format!("n-{id}"),
            email: Some(format!("{id}@example.com")),
            display_name: format!("D {id}"),
        }
    }

    #[test]
    fn edits_are_idempotent_and_unknown_roles_are_refused() {
        let mut acl = ProjectAcl::default();
        let jane = who(PrincipalKind::User, "jane");
        assert!(matches!(
            edit(&mut acl, "editors", &jane, true),
            AclEdit::Changed(_)
        ));
        assert_eq!(
            edit(&mut acl, "editors", &jane, true),
            AclEdit::Unchanged("already in editors".into())
        );
        assert_eq!(acl.editors.allowed[0].kind, "user");
        assert_eq!(edit(&mut acl, "bosses", &jane, true), AclEdit::UnknownRole);
        let before = acl.clone();
        assert!(matches!(
            edit(&mut acl, "editors", &jane, false),
            AclEdit::Changed(_)
        ));
        assert!(!acl.same_as(&before));
        assert_eq!(
            edit(&mut acl, "editors", &jane, false),
            AclEdit::Unchanged("not in editors".into())
        );
        assert!(acl.same_as(&ProjectAcl::default()));
    }

    #[test]
    fn same_as_ignores_order_and_display_names() {
        let m = |id: &str, n: &str| AclMember {
            id: id.into(),
            display_name: n.into(),
            kind: "user".into(),
            id_not_found: false,
        };
        let mut a = ProjectAcl::default();
        a.viewers.allowed = vec![m("1", "a"), m("2", "b")];
        let mut b = ProjectAcl::default();
        b.viewers.allowed = vec![m("2", "x"), m("1", "y")];
        assert!(a.same_as(&b));
        b.viewers.allow_all = true;
        assert!(!a.same_as(&b));
    }
}
