//! The `rbac` module: OIC roles for users and groups (identity-domain grants), and OIC 3 project
//! access (project ACLs); see [`crate::ops::grant`].

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use rhai::plugin::*;

use super::oic::{Instance, results};
use super::{host_of, register_plugin};
use crate::effect::{Classify, Failure};
use crate::ops::grant::{self as ops_grant, AccessTarget, CopyRow, GrantRow};
use crate::rbac::{RbacError, RoleMap};
use crate::script::errors::{self, Ctx};

/// An identity domain from the config (script type `IdentityDomain`), with the OIC application
/// roles are granted on.
#[derive(Clone)]
pub struct IdentityDomain {
    pub name: String,
    /// The OIC application (display name or id).
    pub app: String,
}

/// An access error: usage and config errors as such, the rest at the `grant` stage.
fn rbac_err(e: RbacError) -> Box<EvalAltResult> {
    match e {
        RbacError::Usage(m) => errors::usage(m),
        RbacError::Config { instance, message } => {
            let ctx = instance.map(|i| Ctx::instance(&i)).unwrap_or_default();
            errors::script_error("config", None, message, ctx)
        }
        e => failure(Failure::from(e), Ctx::default().stage("grant")),
    }
}

fn failure(f: Failure, ctx: Ctx) -> Box<EvalAltResult> {
    errors::script_error(Classify::kind(&f), Classify::status(&f), f.to_string(), ctx)
}

/// The script's roles argument (a .csv path, a map, or an array of maps) as a role map.
fn role_map(v: &Dynamic) -> Result<RoleMap, Box<EvalAltResult>> {
    let v = rhai::serde::from_dynamic(v).unwrap_or_default();
    RoleMap::from_value(&v).map_err(rbac_err)
}

/// Grants or revokes on an Instance or an IdentityDomain.
fn apply(
    ctx: &NativeCallContext,
    target: &Dynamic,
    roles: &Dynamic,
    add: bool,
) -> Result<Array, Box<EvalAltResult>> {
    let h = host_of(ctx)?;
    let map = role_map(roles)?;
    let (idp, app, oic, label) = if let Some(inst) = target.read_lock::<Instance>() {
        let (idp, app) =
            ops_grant::identity_for_instance(&h.config, &inst.name()).map_err(rbac_err)?;
        (idp, app, Some(inst.client.clone()), inst.name())
    } else if let Some(d) = target.read_lock::<IdentityDomain>() {
        let idp = ops_grant::identity_domain(&h.config, &d.name, Some(&map)).map_err(rbac_err)?;
        (idp, d.app.clone(), None, format!("{} ({})", d.name, d.app))
    } else {
        return Err(errors::usage(
            "the target must be an instance (oic::instance(\"prod\")) or an identity domain (rbac::identity(\"corp\", \"OICINST_prod\"))",
        ));
    };
    let t = AccessTarget {
        identity: &idp,
        app,
        oic: oic.as_ref(),
    };
    let rows = h.block_on(async {
        match add {
            true => ops_grant::grant(&h.exec, &t, &map).await,
            false => ops_grant::revoke(&h.exec, &t, &map).await,
        }
    })?;
    let verb = if add { "rbac::grant" } else { "rbac::revoke" };
    for line in ops_grant::grant_summary(verb, &label, &rows) {
        h.out.line(&line);
    }
    results(rows.iter().map(GrantRow::from).collect())
}

/// Access: OIC roles (ServiceDeveloper, ServiceViewer, ...) for users and groups through the identity domain, and OIC 3 project access (project ACLs).
/// The identity domain needs its own administrator application in the config: [identity.NAME] with url, client_id, client_secret and [identity.NAME.apps] (instance -> OIC application).
#[export_module]
mod rbac_api {
    use super::*;

    /// Grants roles on an instance (or an identity domain). `roles`: a map (`"jane@example.com": "ServiceDeveloper"`, `"group:OIC-Developers": [roles]`), an array of maps (`user`/`group`, `role`/`roles`, `project`), or a .csv path.
    /// Role names may be spaced. Returns per user/group and role: `principal`, `type`, `role`, `project`, `status` (`granted`, `unchanged`, `planned`, `failed`), `reason`.
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
        apply(&ctx, &target, &roles, true)
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
        apply(&ctx, &target, &roles, false)
    }

    /// Reads a role map from a .csv file (`user or group, role[, project]`; roles separated by `;`), checking every role name: an array of maps for `rbac::grant`.
    ///
    /// # Example
    /// ```rhai
    /// let team = rbac::load_roles("roles/team-a.csv");
    /// rbac::grant(oic::instance("prod"), team);
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn load_roles(path: ImmutableString) -> Result<Array, Box<EvalAltResult>> {
        let map = RoleMap::load(std::path::Path::new(path.as_str())).map_err(rbac_err)?;
        results(map.rows())
    }

    /// The identity domain `[identity.NAME]` with the OIC application `app` (display name or id), for grants without an instance.
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
        ops_grant::identity_domain(&host_of(&ctx)?.config, &name, None).map_err(rbac_err)?;
        Ok(IdentityDomain {
            name: name.to_string(),
            app: app.to_string(),
        })
    }

    /// Copies the access list of `project` from `source` to `target` (OIC 3), mapping users by e-mail and groups by name into the target's identity domain; those missing there are `failed` (and recorded).
    /// Returns per principal and role: `role`, `type`, `principal`, `status`, `reason`, `source_id`, `target_id`.
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
        let h = host_of(&ctx)?;
        let src_idp = h.config.identity_for_instance(&source.name());
        let src_idp = src_idp
            .map(crate::rbac::IdentityClient::new)
            .transpose()
            .map_err(rbac_err)?;
        let (dst_idp, _) =
            ops_grant::identity_for_instance(&h.config, &target.name()).map_err(rbac_err)?;
        let (sc, dc) = (&source.client, &target.client);
        let rows = h
            .block_on(ops_grant::copy_acl(
                &h.exec,
                sc,
                src_idp.as_ref(),
                dc,
                &dst_idp,
                &project,
            ))?
            .map_err(|f| {
                failure(
                    f,
                    Ctx::instance(&target.name())
                        .artifact(project.as_str())
                        .stage("grant"),
                )
            })?;
        for line in ops_grant::copy_summary(&project, &source.name(), &target.name(), &rows) {
            h.out.line(&line);
        }
        results(rows.iter().map(CopyRow::from).collect())
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
        let h = host_of(&ctx)?;
        let acl = h
            .block_on(ops_grant::project_acl(&h.exec, &inst.client, &project))?
            .map_err(|f| failure(f, Ctx::instance(&inst.name()).artifact(project.as_str())))?;
        rhai::serde::to_dynamic(ops_grant::acl_json(&acl))?
            .try_cast::<Map>()
            .ok_or_else(|| errors::usage("ACL is not a map"))
    }

    /// Replaces the access list of an OIC 3 project (a map like `rbac::project_acl` returns). A `grant` step; planned in a dry run.
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
        let acl: crate::oic::Acl = rhai::serde::from_dynamic(&Dynamic::from(acl))
            .map_err(|e| errors::usage(format!("not an ACL: {e}")))?;
        let h = host_of(&ctx)?;
        h.block_on(ops_grant::set_project_acl(
            &h.exec,
            &inst.client,
            &project,
            &acl,
        ))?
        .map_err(errors::from_effect)
    }
}

/// Registers the module.
pub fn register(e: &mut Engine) {
    e.register_type_with_name::<IdentityDomain>("IdentityDomain");
    register_plugin(e, "rbac", exported_module!(rbac_api));
}
