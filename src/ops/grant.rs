//! `grant`, `revoke`, `copy_acl`, `project_acl`, `set_project_acl`: access on an instance. OIC
//! roles are granted in the identity domain ([`crate::rbac`]); project roles go through the
//! project's ACL, which this module reads and writes with the OIC client and hands to rbac as
//! data ([`ProjectAcl`]). Every write is an effect (stage `grant`); every read goes through the
//! executor's retry loop.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Config;
use crate::effect::{Effect, Executor, Failure, Outcome};
use crate::ledger::{Stage, StepError, StepStatus};
use crate::oic::{Acl, AclPrincipal, AclRole, OicClient};
use crate::rbac::acl::{self, AclCopyRow, AclMember, AclRoleList, ProjectAcl, project_key};
use crate::rbac::{GrantResult, GrantStatus, IdentityClient, RbacError, RoleEntry, RoleMap};

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

impl From<AclPrincipal> for AclMember {
    fn from(p: AclPrincipal) -> AclMember {
        AclMember {
            id: p.id,
            display_name: p.display_name,
            kind: p.kind,
            id_not_found: p.id_not_found,
        }
    }
}

impl From<AclMember> for AclPrincipal {
    fn from(p: AclMember) -> AclPrincipal {
        AclPrincipal {
            id: p.id,
            display_name: p.display_name,
            kind: p.kind,
            id_not_found: p.id_not_found,
        }
    }
}

impl From<AclRole> for AclRoleList {
    fn from(r: AclRole) -> AclRoleList {
        AclRoleList {
            allow_all: r.allow_all,
            allowed: r.allowed.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<AclRoleList> for AclRole {
    fn from(r: AclRoleList) -> AclRole {
        AclRole {
            allow_all: r.allow_all,
            allowed: r.allowed.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<Acl> for ProjectAcl {
    fn from(a: Acl) -> ProjectAcl {
        ProjectAcl {
            administrators: a.administrators.into(),
            editors: a.editors.into(),
            viewers: a.viewers.into(),
            monitors: a.monitors.into(),
        }
    }
}

impl From<ProjectAcl> for Acl {
    fn from(a: ProjectAcl) -> Acl {
        Acl {
            administrators: a.administrators.into(),
            editors: a.editors.into(),
            viewers: a.viewers.into(),
            monitors: a.monitors.into(),
        }
    }
}

/// Reads the ACL of `project` (retried by the executor).
pub async fn project_acl(exec: &Executor, oic: &OicClient, project: &str) -> Result<Acl, Failure> {
    Ok(exec
        .read("reading a project ACL", || oic.get_project_acl(project))
        .await?)
}

/// Replaces the ACL of `project`: one `grant` step, planned in a dry run.
pub async fn set_project_acl(
    exec: &Executor,
    oic: &OicClient,
    project: &str,
    acl: &Acl,
) -> Result<(), crate::effect::EffectError> {
    let eff = Effect::new(Stage::Grant, project_key(project), oic.name(), "set ACL");
    exec.run(eff, || async {
        oic.put_project_acl(project, acl)
            .await
            .map_err(Failure::from)
    })
    .await
    .map(|_| ())
}

/// Where `rbac::grant`/`rbac::revoke` apply.
pub enum On<'a> {
    /// An instance: the identity domain and OIC application that serve it
    /// (`[identity.NAME.apps]`); project roles go through its project ACLs.
    Instance(&'a OicClient),
    /// The identity domain `[identity.NAME]` and an OIC application (no project roles).
    Domain { name: &'a str, app: &'a str },
}

/// What a verb did: its rows (as scripts see them) and the lines that tell it.
#[derive(Debug)]
pub struct Report<R> {
    pub rows: Vec<R>,
    pub summary: Vec<String>,
}

/// Why an access verb failed as a whole: the config or role map (`Setup`), or a read or write
/// of the instance after its retries (`Failed`).
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(transparent)]
    Setup(#[from] RbacError),
    #[error(transparent)]
    Failed(#[from] Failure),
}

/// The identity domain and OIC application roles in `map` are granted on, `on` an instance or
/// a domain (checked before anything is read or changed).
pub fn identity_for(
    config: &Config,
    on: &On<'_>,
    map: &RoleMap,
) -> Result<(IdentityClient, String), RbacError> {
    match on {
        On::Instance(c) => identity_for_instance(config, c.name()),
        On::Domain { name, app } => {
            Ok((identity_domain(config, name, Some(map))?, app.to_string()))
        }
    }
}

/// `rbac::grant` (`add`) or `rbac::revoke` of `map` on `on`: one row per principal and role,
/// and a summary (a count per status, then each failure).
pub async fn apply_roles(
    exec: &Executor,
    config: &Config,
    on: On<'_>,
    map: &RoleMap,
    add: bool,
) -> Result<Report<GrantRow>, RbacError> {
    let (identity, app) = identity_for(config, &on, map)?;
    let oic = match on {
        On::Instance(c) => Some(c),
        On::Domain { .. } => None,
    };
    let t = AccessTarget {
        identity: &identity,
        app,
        oic,
    };
    let rows = apply(exec, &t, map, add).await;
    let verb = if add { "rbac::grant" } else { "rbac::revoke" };
    Ok(Report {
        summary: grant_summary(verb, &t.label(), &rows),
        rows: rows.iter().map(GrantRow::from).collect(),
    })
}

/// `rbac::copy_acl`: the identity domains of `src` (if any) and `dst` from the config, then
/// [`copy_acl`]; one row per principal and role, and a summary naming those not copied.
pub async fn copy_acl_between(
    exec: &Executor,
    config: &Config,
    src: &OicClient,
    dst: &OicClient,
    project: &str,
) -> Result<Report<CopyRow>, AccessError> {
    let src_idp = config.identity_for_instance(src.name());
    let src_idp = src_idp.map(IdentityClient::new).transpose()?;
    let (dst_idp, _) = identity_for_instance(config, dst.name())?;
    let rows = copy_acl(exec, src, src_idp.as_ref(), dst, &dst_idp, project).await?;
    Ok(Report {
        summary: copy_summary(project, src.name(), dst.name(), &rows),
        rows: rows.iter().map(CopyRow::from).collect(),
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
    let label = target.label();
    if !app_rows.is_empty() {
        let idp = target.identity;
        out.extend(
            crate::rbac::grant_app_roles(exec, idp, &target.app, &label, &app_rows, add).await,
        );
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

/// The project roles of `rows` through the ACL of `project`: read, edited by rbac, written back
/// once (one step) when anything changed.
async fn apply_project(
    exec: &Executor,
    target: &AccessTarget<'_>,
    project: &str,
    rows: &[&RoleEntry],
    add: bool,
) -> Vec<GrantResult> {
    let where_ = target.label();
    let fail_all = |message: String, kind: &str| -> Vec<GrantResult> {
        let eff = Effect::new(Stage::Grant, project_key(project), &where_, "update ACL");
        let err = StepError {
            kind: kind.into(),
            status: None,
            message: message.clone(),
        };
        exec.note(&eff, StepStatus::Failed, Some(err));
        rows.iter()
            .map(|r| crate::rbac::result(r, GrantStatus::Failed, Some(message.clone())))
            .collect()
    };
    let Some(oic) = target.oic else {
        return fail_all(
            format!("project {project}: project access needs an OIC 3 instance as the target"),
            "usage",
        );
    };
    let mut acl: ProjectAcl = match exec
        .read("reading a project ACL", || oic.get_project_acl(project))
        .await
    {
        Ok(a) => a.into(),
        Err(e) => return fail_all(e.to_string(), e.kind()),
    };
    let plan =
        acl::plan_project(exec, target.identity, &where_, project, &mut acl, rows, add).await;
    if plan.changed.is_empty() {
        return plan.finish(rows, GrantStatus::Unchanged, None);
    }
    let eff = Effect::new(Stage::Grant, project_key(project), &where_, plan.action());
    let acl: Acl = acl.into();
    let res = exec
        .run(eff, || async {
            oic.put_project_acl(project, &acl)
                .await
                .map_err(Failure::from)
        })
        .await;
    let (status, reason) = match res {
        Ok(Outcome::Done(())) if add => (GrantStatus::Granted, None),
        Ok(Outcome::Done(())) => (GrantStatus::Revoked, None),
        Ok(_) => (GrantStatus::Planned, None),
        Err(e) => (GrantStatus::Failed, Some(e.error.message)),
    };
    plan.finish(rows, status, reason)
}

/// Copies the ACL of `project` from `src` to `dst`: `allowAll` as on the source, each principal
/// mapped by e-mail (users) or name (groups) into the target domain (see
/// [`acl::map_acl`]). Principals that do not exist in the target domain are reported (failed
/// rows and failed steps), and the rest is copied in one write, or none when the target's ACL is
/// already the same.
pub async fn copy_acl(
    exec: &Executor,
    src: &OicClient,
    src_idp: Option<&IdentityClient>,
    dst: &OicClient,
    dst_idp: &IdentityClient,
    project: &str,
) -> Result<Vec<AclCopyRow>, Failure> {
    let src_acl: ProjectAcl = project_acl(exec, src, project).await?.into();
    let current: ProjectAcl = project_acl(exec, dst, project).await?.into();
    let (new_acl, mut rows) =
        acl::map_acl(exec, &src_acl, src_idp, dst_idp, dst.name(), project).await;
    let unmapped = rows.iter().filter(|r| r.target_id.is_none()).count();
    let (status, reason) = if current.same_as(&new_acl) {
        let action = format!("copy ACL from {}", src.name());
        let eff = Effect::new(Stage::Grant, project_key(project), dst.name(), action);
        exec.note(&eff, StepStatus::Skipped, None);
        let why = "the target ACL is already the same".to_string();
        (GrantStatus::Unchanged, Some(why))
    } else {
        let missing = if unmapped > 0 {
            format!(", {unmapped} not found in the target domain")
        } else {
            String::new()
        };
        let action = format!(
            "copy ACL from {}: {} principal(s){missing}",
            src.name(),
            rows.len() - unmapped
        );
        let eff = Effect::new(Stage::Grant, project_key(project), dst.name(), action);
        let new_acl: Acl = new_acl.into();
        let res = exec
            .run(eff, || async {
                dst.put_project_acl(project, &new_acl)
                    .await
                    .map_err(Failure::from)
            })
            .await;
        match res {
            Ok(Outcome::Done(())) => (GrantStatus::Granted, None),
            Ok(_) => (GrantStatus::Planned, None),
            Err(e) => (GrantStatus::Failed, Some(e.error.message)),
        }
    };
    for r in rows.iter_mut().filter(|r| r.target_id.is_some()) {
        r.status = status;
        r.reason = reason.clone();
    }
    Ok(rows)
}

/// An ACL as scripts see it: the OIC JSON shape, with `idNotFound` kept (the client does not send
/// it back, so it is not serialised).
pub fn acl_json(a: &Acl) -> serde_json::Value {
    let mut v = serde_json::to_value(a).unwrap_or_default();
    let acl = ProjectAcl::from(a.clone());
    for role in acl::PROJECT_ROLES {
        if let (Some(list), Some(r)) = (v[role]["allowed"].as_array_mut(), acl.role(role)) {
            for (j, pv) in list.iter_mut().enumerate() {
                let gone = r.allowed.get(j).is_some_and(|x| x.id_not_found);
                pv["idNotFound"] = serde_json::json!(gone);
            }
        }
    }
    v
}

/// The identity domain and OIC application that serve instance `inst`
/// (`[identity.NAME.apps]`).
pub fn identity_for_instance(
    config: &Config,
    inst: &str,
) -> Result<(IdentityClient, String), RbacError> {
    let Some(p) = config.identity_for_instance(inst) else {
        let known: Vec<String> = config.identities.keys().cloned().collect();
        let known = if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        };
        return Err(RbacError::Config {
            instance: Some(inst.to_string()),
            message: format!(
                "no identity domain serves instance `{inst}`: add `{inst} = \"<OIC application name or id>\"` under [identity.NAME.apps] (configured domains: {known})"
            ),
        });
    };
    let app = p.apps.get(inst).cloned().unwrap_or_default();
    Ok((IdentityClient::new(p)?, app))
}

/// The identity domain `[identity.NAME]` (for grants without an instance: no project roles).
pub fn identity_domain(
    config: &Config,
    name: &str,
    map: Option<&RoleMap>,
) -> Result<IdentityClient, RbacError> {
    let p = config.identity(name).map_err(|e| RbacError::Config {
        instance: None,
        message: e.to_string(),
    })?;
    if map.is_some_and(|m| m.entries.iter().any(|e| e.project.is_some())) {
        return Err(RbacError::Usage(
            "project roles need the instance: rbac::grant(oic::instance(\"prod\"), roles)".into(),
        ));
    }
    IdentityClient::new(p)
}

/// One result of `grant`/`revoke` as scripts see it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct GrantRow {
    pub principal: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub role: String,
    pub project: Option<String>,
    pub status: &'static str,
    pub reason: Option<String>,
}

impl From<&GrantResult> for GrantRow {
    fn from(r: &GrantResult) -> GrantRow {
        GrantRow {
            principal: r.principal.name.clone(),
            kind: r.principal.kind.as_str(),
            role: r.role.clone(),
            project: r.project.clone(),
            status: r.status.as_str(),
            reason: r.reason.clone(),
        }
    }
}

/// One principal of `copy_acl` as scripts see it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CopyRow {
    pub role: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub principal: String,
    pub status: &'static str,
    pub reason: Option<String>,
    pub source_id: String,
    pub target_id: Option<String>,
}

impl From<&AclCopyRow> for CopyRow {
    fn from(r: &AclCopyRow) -> CopyRow {
        CopyRow {
            role: r.role.clone(),
            kind: r.kind.as_str(),
            principal: r.name.clone(),
            status: r.status.as_str(),
            reason: r.reason.clone(),
            source_id: r.source_id.clone(),
            target_id: r.target_id.clone(),
        }
    }
}

/// What `verb` (`rbac::grant`...) did on `on`: a count per status, then one line per failure.
pub fn grant_summary(verb: &str, on: &str, rows: &[GrantResult]) -> Vec<String> {
    let count = |s: GrantStatus| rows.iter().filter(|r| r.status == s).count();
    let mut out = vec![format!(
        "{verb} on {on}: {} granted, {} revoked, {} unchanged, {} planned, {} failed",
        count(GrantStatus::Granted),
        count(GrantStatus::Revoked),
        count(GrantStatus::Unchanged),
        count(GrantStatus::Planned),
        count(GrantStatus::Failed),
    )];
    for r in rows.iter().filter(|r| r.status == GrantStatus::Failed) {
        let on_project = r
            .project
            .as_ref()
            .map(|p| format!(" on project {p}"))
            .unwrap_or_default();
        let why = r.reason.as_deref().unwrap_or("failed");
        out.push(format!(
            "  FAILED {} {}{on_project}: {why}",
            r.principal, r.role
        ));
    }
    out
}

/// What `copy_acl` of `project` from `src` to `dst` did: the count, then each principal not
/// copied.
pub fn copy_summary(project: &str, src: &str, dst: &str, rows: &[AclCopyRow]) -> Vec<String> {
    let missing: Vec<&AclCopyRow> = rows.iter().filter(|r| r.target_id.is_none()).collect();
    let mut out = vec![format!(
        "rbac::copy_acl {project}: {} principal(s) copied from {src} to {dst}, {} not found in the target domain",
        rows.len() - missing.len(),
        missing.len()
    )];
    for r in missing {
        out.push(format!(
            "  NOT COPIED {}:{} ({}): {}",
            r.kind.as_str(),
            r.name,
            r.role,
            r.reason.as_deref().unwrap_or("")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::{Principal, PrincipalKind};

    fn result(who: &str, role: &str, project: Option<&str>, status: GrantStatus) -> GrantResult {
        GrantResult {
            principal: Principal::parse(who),
            role: role.into(),
            project: project.map(str::to_string),
            status,
            reason: (status == GrantStatus::Failed).then(|| "no such user".to_string()),
        }
    }

    #[test]
    fn summaries_count_and_name_the_failures() {
        let rows = [
            result("a@x.io", "ServiceViewer", None, GrantStatus::Granted),
            result("b@x.io", "ServiceViewer", None, GrantStatus::Unchanged),
            result("c@x.io", "editors", Some("HR"), GrantStatus::Failed),
        ];
        assert_eq!(
            grant_summary("rbac::grant", "prod", &rows),
            [
                "rbac::grant on prod: 1 granted, 0 revoked, 1 unchanged, 0 planned, 1 failed",
                "  FAILED user:c@x.io editors on project HR: no such user",
            ]
        );
        let row = GrantRow::from(&rows[2]);
        assert_eq!(
            (row.principal.as_str(), row.kind, row.status),
            ("c@x.io", "user", "failed")
        );
        let copy = [
            AclCopyRow {
                role: "editors".into(),
                kind: PrincipalKind::Group,
                name: "Ops".into(),
                source_id: "s1".into(),
                target_id: Some("t1".into()),
                status: GrantStatus::Granted,
                reason: None,
            },
            AclCopyRow {
                role: "viewers".into(),
                kind: PrincipalKind::User,
                name: "gone@x.io".into(),
                source_id: "s2".into(),
                target_id: None,
                status: GrantStatus::Failed,
                reason: Some("not found".into()),
            },
        ];
        assert_eq!(
            copy_summary("HR", "dev", "prod", &copy),
            [
                "rbac::copy_acl HR: 1 principal(s) copied from dev to prod, 1 not found in the target domain",
                "  NOT COPIED user:gone@x.io (viewers): not found",
            ]
        );
        let v = serde_json::to_value(CopyRow::from(&copy[1])).unwrap();
        assert_eq!(v["type"], "user");
        assert_eq!(v["target_id"], serde_json::Value::Null);
    }

    #[test]
    fn a_domain_target_takes_its_app_and_refuses_project_roles() {
        let toml = "[identity.corp]\nurl = 'https://idcs-1.example.com'\nclient_id = 'c'\nclient_secret = 's'\n";
        let c = Config::parse(toml, "ferry.toml", std::path::Path::new(".")).unwrap();
        let on = On::Domain {
            name: "corp",
            app: "OICINST_prod",
        };
        let roles = serde_json::json!({ "jane@x.io": "ServiceViewer" });
        let (idp, app) = identity_for(&c, &on, &RoleMap::from_value(&roles).unwrap()).unwrap();
        assert_eq!((idp.name(), app.as_str()), ("corp", "OICINST_prod"));
        let project =
            serde_json::json!([{ "user": "jane@x.io", "role": "editors", "project": "HR" }]);
        let Err(e) = identity_for(&c, &on, &RoleMap::from_value(&project).unwrap()) else {
            panic!("project roles need an instance");
        };
        assert!(matches!(e, RbacError::Usage(_)), "{e}");
        let other = On::Domain {
            name: "nope",
            app: "x",
        };
        let e = identity_for(&c, &other, &RoleMap::default())
            .err()
            .map(|e| e.kind());
        assert_eq!(e, Some("config"));
    }

    #[test]
    fn no_identity_domain_names_the_instance() {
        let c = Config::parse("", "ferry.toml", std::path::Path::new(".")).unwrap();
        let Err(e) = identity_for_instance(&c, "prod") else {
            panic!("no domain is configured");
        };
        assert_eq!(e.kind(), "config");
        assert!(
            e.to_string().contains("instance `prod`")
                && e.to_string().ends_with("(configured domains: none)"),
            "{e}"
        );
        assert!(matches!(
            identity_domain(&c, "corp", None),
            Err(RbacError::Config { instance: None, .. })
        ));
    }
}
