//! The `rbac` module: OIC roles for users and groups (identity-domain grants), and OIC 3 project
//! access (project ACLs).

use crate::script::api::OrUnit;
use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use rhai::plugin::*;

use super::oic::Instance;
use super::{host_of, register_plugin};
use crate::effect::Failure;
use crate::oic::Acl;
use crate::ops::grant::{self as ops_grant, AccessTarget};
use crate::rbac::{
    self, AclCopyRow, GrantResult, IdentityClient, Principal, PrincipalKind, RbacError, RoleMap,
};
use crate::script::errors::{self, Ctx};
use crate::script::host::Host;

/// An identity domain from the config (script type `IdentityDomain`), with the OIC application
/// roles are granted on.
#[derive(Clone)]
pub struct IdentityDomain {
    pub name: String,
    /// The OIC application (display name or id), when chosen.
    pub app: Option<String>,
}

fn rbac_err(e: RbacError) -> Box<EvalAltResult> {
    let f = Failure::from(e);
    errors::script_error(
        crate::effect::Classify::kind(&f),
        crate::effect::Classify::status(&f),
        f.to_string(),
        Ctx::default().stage("grant"),
    )
}

fn client(host: &Host, name: &str) -> Result<IdentityClient, Box<EvalAltResult>> {
    let p = host.config.identity(name).map_err(errors::from_config)?;
    IdentityClient::new(p).map_err(rbac_err)
}

/// The identity domain and application that serve an instance (`[identity.NAME.apps]`).
fn for_instance(host: &Host, inst: &str) -> Result<(IdentityClient, String), Box<EvalAltResult>> {
    let Some(p) = host.config.identity_for_instance(inst) else {
        return Err(errors::script_error(
            "config",
            None,
            format!(
                "no identity domain serves instance `{inst}`: add `{inst} = \"<OIC application name or id>\"` under [identity.NAME.apps] (configured domains: {})",
                if host.config.identities.is_empty() {
                    "none".to_string()
                } else {
                    host.config
                        .identities
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
            Ctx::instance(inst),
        ));
    };
    let app = p.apps.get(inst).cloned().unwrap_or_default();
    Ok((IdentityClient::new(p).map_err(rbac_err)?, app))
}

fn text(v: &Dynamic) -> Option<String> {
    v.is_string().then(|| v.to_string())
}

/// Turns the script's roles argument into a role map: a path (`.csv`), a map
/// (`"e-mail or group" => role or [roles]`), or an array of maps (`user`/`group`, `role`/`roles`,
/// `project`).
pub fn role_map(v: &Dynamic) -> Result<RoleMap, Box<EvalAltResult>> {
    let bad = |m: String| errors::usage(m);
    if let Some(path) = text(v) {
        return RoleMap::load(std::path::Path::new(&path)).map_err(rbac_err);
    }
    let roles_of = |r: &Dynamic, at: &str| -> Result<Vec<String>, Box<EvalAltResult>> {
        if let Some(s) = text(r) {
            return Ok(vec![s]);
        }
        if let Some(a) = r.read_lock::<Array>() {
            return a
                .iter()
                .map(|x| text(x).ok_or_else(|| bad(format!("{at}: roles must be strings"))))
                .collect();
        }
        Err(bad(format!("{at}: expected a role or a list of roles")))
    };
    let mut m = RoleMap::default();
    if let Some(map) = v.read_lock::<Map>() {
        for (who, r) in map.iter() {
            let at = format!("roles[\"{who}\"]");
            for role in roles_of(r, &at)? {
                m.push(Principal::parse(who), &role, None, &at)
                    .map_err(rbac_err)?;
            }
        }
        return Ok(m);
    }
    if let Some(arr) = v.read_lock::<Array>() {
        for (i, row) in arr.iter().enumerate() {
            let at = format!("roles[{i}]");
            let Some(r) = row.read_lock::<Map>() else {
                return Err(bad(format!(
                    "{at}: expected a map like #{{ user: \"jane@example.com\", role: \"ServiceDeveloper\" }}"
                )));
            };
            for k in r.keys() {
                if !["user", "group", "principal", "role", "roles", "project"].contains(&k.as_str())
                {
                    return Err(bad(format!(
                        "{at}: unknown key `{k}` (known: user, group, role, roles, project)"
                    )));
                }
            }
            let p = match (r.get("user"), r.get("group"), r.get("principal")) {
                (Some(u), None, None) => Principal {
                    kind: PrincipalKind::User,
                    name: u.to_string(),
                },
                (None, Some(g), None) => Principal {
                    kind: PrincipalKind::Group,
                    name: g.to_string(),
                },
                (None, None, Some(p)) => Principal::parse(&p.to_string()),
                _ => return Err(bad(format!("{at}: give one of `user`, `group`"))),
            };
            let roles = match (r.get("role"), r.get("roles")) {
                (Some(x), None) | (None, Some(x)) => roles_of(x, &at)?,
                _ => return Err(bad(format!("{at}: give `role` or `roles`"))),
            };
            let project = r.get("project").and_then(text);
            for role in roles {
                m.push(p.clone(), &role, project.as_deref(), &at)
                    .map_err(rbac_err)?;
            }
        }
        return Ok(m);
    }
    if let Some(rm) = v.read_lock::<RoleMap>() {
        return Ok(rm.clone());
    }
    Err(bad(
        "roles: expected a file path, a map of user/group to roles, or an array of maps".into(),
    ))
}

fn result_map(r: &GrantResult) -> Dynamic {
    let mut m = Map::new();
    m.insert("principal".into(), r.principal.name.clone().into());
    m.insert("type".into(), r.principal.kind.as_str().into());
    m.insert("role".into(), r.role.clone().into());
    m.insert("project".into(), r.project.clone().or_unit());
    m.insert("status".into(), r.status.as_str().into());
    m.insert("reason".into(), r.reason.clone().or_unit());
    Dynamic::from(m)
}

fn copy_row_map(r: &AclCopyRow) -> Dynamic {
    let mut m = Map::new();
    m.insert("role".into(), r.role.clone().into());
    m.insert("type".into(), r.kind.as_str().into());
    m.insert("principal".into(), r.name.clone().into());
    m.insert("status".into(), r.status.as_str().into());
    m.insert("reason".into(), r.reason.clone().or_unit());
    m.insert("source_id".into(), r.source_id.clone().into());
    m.insert("target_id".into(), r.target_id.clone().or_unit());
    Dynamic::from(m)
}

fn summary_line(host: &Host, what: &str, on: &str, rows: &[GrantResult]) {
    let count = |s: rbac::GrantStatus| rows.iter().filter(|r| r.status == s).count();
    host.out.line(&format!(
        "{what} on {on}: {} granted, {} revoked, {} unchanged, {} planned, {} failed",
        count(rbac::GrantStatus::Granted),
        count(rbac::GrantStatus::Revoked),
        count(rbac::GrantStatus::Unchanged),
        count(rbac::GrantStatus::Planned),
        count(rbac::GrantStatus::Failed),
    ));
    for r in rows
        .iter()
        .filter(|r| r.status == rbac::GrantStatus::Failed)
    {
        host.out.line(&format!(
            "  FAILED {} {}{}: {}",
            r.principal,
            r.role,
            r.project
                .as_ref()
                .map(|p| format!(" on project {p}"))
                .unwrap_or_default(),
            r.reason.as_deref().unwrap_or("failed")
        ));
    }
}

/// Grants or revokes on an Instance or an IdentityDomain.
fn apply(
    host: &Arc<Host>,
    target: &Dynamic,
    roles: &Dynamic,
    add: bool,
) -> Result<Array, Box<EvalAltResult>> {
    let map = role_map(roles)?;
    let (idp, app, oic, label) = if let Some(inst) = target.read_lock::<Instance>() {
        let (idp, app) = for_instance(host, &inst.name())?;
        (idp, app, Some(inst.client.clone()), inst.name())
    } else if let Some(d) = target.read_lock::<IdentityDomain>() {
        let Some(app) = d.app.clone() else {
            return Err(errors::usage(format!(
                "choose the OIC application first: rbac::identity(\"{}\", \"OICINST_prod\")",
                d.name
            )));
        };
        if map.entries.iter().any(|e| e.project.is_some()) {
            return Err(errors::usage(
                "project roles need the instance: rbac::grant(oic::instance(\"prod\"), roles)",
            ));
        }
        (
            client(host, &d.name)?,
            app.clone(),
            None,
            format!("{} ({app})", d.name),
        )
    } else {
        return Err(errors::usage(
            "the target must be an instance (oic::instance(\"prod\")) or an identity domain (rbac::identity(\"corp\", \"OICINST_prod\"))",
        ));
    };
    let exec = host.exec.clone();
    let rows = host.block_on(async move {
        let t = AccessTarget {
            identity: &idp,
            app,
            oic: oic.as_ref(),
        };
        if add {
            ops_grant::grant(&exec, &t, &map).await
        } else {
            ops_grant::revoke(&exec, &t, &map).await
        }
    })?;
    summary_line(
        host,
        if add { "rbac::grant" } else { "rbac::revoke" },
        &label,
        &rows,
    );
    Ok(rows.iter().map(result_map).collect())
}

fn load_roles(path: &str) -> Result<Array, Box<EvalAltResult>> {
    let rm = RoleMap::load(std::path::Path::new(path)).map_err(rbac_err)?;
    Ok(rm
        .entries
        .iter()
        .map(|e| {
            let mut m = Map::new();
            m.insert(
                e.principal.kind.as_str().into(),
                e.principal.name.clone().into(),
            );
            m.insert("role".into(), e.role.clone().into());
            if let Some(p) = &e.project {
                m.insert("project".into(), p.clone().into());
            }
            Dynamic::from(m)
        })
        .collect())
}

fn copy_acl(
    h: &Arc<Host>,
    src: &Instance,
    dst: &Instance,
    project: &str,
) -> Result<Array, Box<EvalAltResult>> {
    let src_idp = h
        .config
        .identity_for_instance(&src.name())
        .map(IdentityClient::new)
        .transpose()
        .map_err(rbac_err)?;
    let (dst_idp, _) = for_instance(h, &dst.name())?;
    let exec = h.exec.clone();
    let p = project.to_string();
    let (sc, dc) = (src.client.clone(), dst.client.clone());
    let rows = h
        .block_on(async move {
            ops_grant::copy_acl(&exec, &sc, src_idp.as_ref(), &dc, &dst_idp, &p).await
        })?
        .map_err(|f| {
            failure(
                f,
                Ctx::instance(&dst.name()).artifact(project).stage("grant"),
            )
        })?;
    let missing = rows.iter().filter(|r| r.target_id.is_none()).count();
    h.out.line(&format!(
        "rbac::copy_acl {project}: {} principal(s) copied from {} to {}, {missing} not found in the target domain",
        rows.len() - missing,
        src.name(),
        dst.name()
    ));
    for r in rows.iter().filter(|r| r.target_id.is_none()) {
        h.out.line(&format!(
            "  NOT COPIED {}:{} ({}): {}",
            r.kind.as_str(),
            r.name,
            r.role,
            r.reason.as_deref().unwrap_or("")
        ));
    }
    Ok(rows.iter().map(copy_row_map).collect())
}

fn failure(f: Failure, ctx: Ctx) -> Box<EvalAltResult> {
    use crate::effect::Classify;
    errors::script_error(Classify::kind(&f), Classify::status(&f), f.to_string(), ctx)
}

fn project_acl(h: &Arc<Host>, inst: &Instance, project: &str) -> Result<Map, Box<EvalAltResult>> {
    let (c, exec, p) = (inst.client.clone(), h.exec.clone(), project.to_string());
    let acl = h
        .block_on(async move { ops_grant::project_acl(&exec, &c, &p).await })?
        .map_err(|f| failure(f, Ctx::instance(&inst.name()).artifact(project)))?;
    rhai::serde::to_dynamic(ops_grant::acl_json(&acl))?
        .try_cast::<Map>()
        .ok_or_else(|| errors::usage("ACL is not a map"))
}

fn set_project_acl(
    h: &Arc<Host>,
    inst: &Instance,
    project: &str,
    acl: Map,
) -> Result<(), Box<EvalAltResult>> {
    let acl: Acl = rhai::serde::from_dynamic(&Dynamic::from(acl))
        .map_err(|e| errors::usage(format!("not an ACL: {e}")))?;
    let (c, exec, p) = (inst.client.clone(), h.exec.clone(), project.to_string());
    h.block_on(async move { ops_grant::set_project_acl(&exec, &c, &p, &acl).await })?
        .map_err(errors::from_effect)
}

/// Access: OIC roles (ServiceDeveloper, ServiceViewer, ...) for users and groups through the identity domain, and OIC 3 project access (project ACLs).
/// The identity domain needs its own administrator application in the config: [identity.NAME] with url, client_id, client_secret and [identity.NAME.apps] (instance -> OIC application).
#[export_module]
mod rbac_api {
    use super::*;

    /// Grants roles on an instance (or an identity domain). `roles` is a map (`"jane@example.com": "ServiceDeveloper"`, `"group:OIC-Developers": ["ServiceViewer", "ServiceMonitor"]`), an array of maps (`user` or `group`, `role` or `roles`, optional `project` for project access), or the path of a .csv file (`user or group, role, project`).
    /// Role names may be spaced (`"Service Developer"`). A role already held is `unchanged`. Returns one map per user/group and role: `principal`, `type`, `role`, `project`, `status` (`granted`, `unchanged`, `planned`, `failed`), `reason`.
    ///
    /// # Example
    /// ```rhai
    /// let prod = oic::instance("prod");
    /// let r = rbac::grant(prod, #{ "jane.doe@example.com": "Service Developer", "group:OIC-Developers": "ServiceViewer" });
    /// for x in r { if x.status == "failed" { print(`${x.principal}: ${x.reason}`); } }
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn grant(
        ctx: NativeCallContext,
        target: Dynamic,
        roles: Dynamic,
    ) -> Result<Array, Box<EvalAltResult>> {
        apply(&host_of(&ctx)?, &target, &roles, true)
    }

    /// Revokes roles (same arguments as `rbac::grant`); a role not held is `unchanged`, a revoked one `revoked`.
    ///
    /// # Example
    /// ```rhai
    /// rbac::revoke(oic::instance("prod"), #{ "leaver@example.com": ["ServiceDeveloper", "ServiceViewer"] });
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn revoke(
        ctx: NativeCallContext,
        target: Dynamic,
        roles: Dynamic,
    ) -> Result<Array, Box<EvalAltResult>> {
        apply(&host_of(&ctx)?, &target, &roles, false)
    }

    /// Reads a role map from a .csv file (`user or group, role[, project]` per line, several roles separated by `;`), checking every role name. Returns it as an array of maps, ready for `rbac::grant` (and for `filter`).
    ///
    /// # Example
    /// ```rhai
    /// let team = rbac::load_roles("roles/team-a.csv");
    /// rbac::grant(oic::instance("prod"), team);
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn load_roles(path: ImmutableString) -> Result<Array, Box<EvalAltResult>> {
        super::load_roles(&path)
    }

    /// The identity domain `[identity.NAME]` with the OIC application `app` (its display name, e.g. `OICINST_prod`, or its id), for granting roles without an instance.
    ///
    /// # Example
    /// ```rhai
    /// let idp = rbac::identity("corp", "OICINST_prod");
    /// rbac::grant(idp, #{ "jane.doe@example.com": "ServiceViewer" });
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn identity(
        ctx: NativeCallContext,
        name: ImmutableString,
        app: ImmutableString,
    ) -> Result<IdentityDomain, Box<EvalAltResult>> {
        host_of(&ctx)?
            .config
            .identity(&name)
            .map_err(errors::from_config)?;
        Ok(IdentityDomain {
            name: name.to_string(),
            app: Some(app.to_string()),
        })
    }

    /// Copies the access list of `project` from `source` to `target` (OIC 3): principals are mapped by e-mail (users) and name (groups) into the target's identity domain. Principals missing there are reported (`failed`, with the reason) and recorded, not dropped silently.
    /// Returns one map per principal and role: `role`, `type`, `principal`, `status` (`granted`, `unchanged`, `planned`, `failed`), `reason`, `source_id`, `target_id`.
    ///
    /// # Example
    /// ```rhai
    /// let rows = rbac::copy_acl(oic::instance("dev"), oic::instance("prod"), "HR_ONBOARDING");
    /// for r in rows.filter(|r| r.status == "failed") { print(`not copied: ${r.principal} (${r.role})`); }
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn copy_acl(
        ctx: NativeCallContext,
        source: Instance,
        target: Instance,
        project: ImmutableString,
    ) -> Result<Array, Box<EvalAltResult>> {
        super::copy_acl(&host_of(&ctx)?, &source, &target, &project)
    }

    /// The access list of an OIC 3 project: `administrators`, `editors`, `viewers`, `monitors`, each `#{ allowAll, allowed: [#{ id, displayName, type, idNotFound }] }`.
    ///
    /// # Example
    /// ```rhai
    /// let acl = rbac::project_acl(oic::instance("prod"), "HR_ONBOARDING");
    /// print(acl.editors.allowed.map(|p| p.displayName));
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn project_acl(
        ctx: NativeCallContext,
        inst: Instance,
        project: ImmutableString,
    ) -> Result<Map, Box<EvalAltResult>> {
        super::project_acl(&host_of(&ctx)?, &inst, &project)
    }

    /// Replaces the access list of an OIC 3 project (a map like the one `rbac::project_acl` returns; the ids are identity-domain ids). Recorded as a `grant` step; planned in a dry run.
    ///
    /// # Example
    /// ```rhai
    /// let prod = oic::instance("prod");
    /// let acl = rbac::project_acl(prod, "HR_ONBOARDING");
    /// acl.viewers.allowAll = true;
    /// rbac::set_project_acl(prod, "HR_ONBOARDING", acl);
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn set_project_acl(
        ctx: NativeCallContext,
        inst: Instance,
        project: ImmutableString,
        acl: Map,
    ) -> Result<(), Box<EvalAltResult>> {
        super::set_project_acl(&host_of(&ctx)?, &inst, &project, acl)
    }
}

/// Registers the module.
pub fn register(e: &mut Engine) {
    e.register_type_with_name::<IdentityDomain>("IdentityDomain");
    e.register_type_with_name::<RoleMap>("RoleMap");
    register_plugin(e, "rbac", exported_module!(rbac_api));
}
