//! The `rbac` module: OIC roles for users and groups (identity-domain grants), and OIC 3 project
//! access (project ACLs); see [`crate::ops::grant`].

use rhai::plugin::*;
use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use super::args::{RhaiResultOf, map_of, results};
use super::oic::Instance;
use super::{host_of, register_plugin};
use crate::effect::{Classify, Failure};
use crate::ops::grant::{self as ops_grant, AccessError, On, Report};
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

/// An access error: usage and config errors as such, the rest (with `ctx`) at the `grant` stage.
fn access_err(e: impl Into<AccessError>, ctx: Ctx) -> Box<EvalAltResult> {
    let f = match e.into() {
        AccessError::Setup(RbacError::Usage(m)) => return errors::usage(m),
        AccessError::Setup(RbacError::Config { instance, message }) => {
            let ctx = instance.map(|i| Ctx::instance(&i)).unwrap_or_default();
            return errors::script_error("config", None, message, ctx);
        }
        AccessError::Setup(e) => Failure::from(e),
        AccessError::Failed(f) => f,
    };
    errors::script_error(Classify::kind(&f), Classify::status(&f), f.to_string(), ctx)
}

fn rbac_err(e: RbacError) -> Box<EvalAltResult> {
    access_err(e, Ctx::default().stage("grant"))
}

/// The report's summary printed, its rows as the result.
fn reported<R: serde::Serialize>(ctx: &NativeCallContext, r: Report<R>) -> RhaiResultOf<Array> {
    let h = host_of(ctx)?;
    r.summary.iter().for_each(|l| h.out.line(l));
    results(r.rows)
}

const NOT_A_TARGET: &str = "the target must be an instance (oic::instance(\"prod\")) or an identity domain (rbac::identity(\"corp\", \"OICINST_prod\"))";

/// Grants or revokes the roles `roles` (a .csv path, a map, or an array of maps) on an
/// Instance or an IdentityDomain.
fn apply(
    ctx: &NativeCallContext,
    target: &Dynamic,
    roles: &Dynamic,
    add: bool,
) -> RhaiResultOf<Array> {
    let h = host_of(ctx)?;
    // A roles value that is not plain data (a function pointer, an Instance...) is refused, not read as no roles.
    let value =
        rhai::serde::from_dynamic(roles).map_err(|e| errors::usage(format!("roles: {e}")))?;
    let map = RoleMap::from_value(&value);
    let map = map.map_err(rbac_err)?;
    let inst = target.clone().try_cast::<Instance>();
    let domain = target.clone().try_cast::<IdentityDomain>();
    let on = match (&inst, &domain) {
        (Some(i), _) => On::Instance(&i.client),
        (_, Some(d)) => On::Domain {
            name: &d.name,
            app: &d.app,
        },
        _ => return Err(errors::usage(NOT_A_TARGET)),
    };
    let r = h.block_on(ops_grant::apply_roles(&h.exec, &h.config, on, &map, add))?;
    reported(ctx, r.map_err(rbac_err)?)
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
    pub fn grant(ctx: NativeCallContext, target: Dynamic, roles: Dynamic) -> RhaiResultOf<Array> {
        apply(&ctx, &target, &roles, true)
    }

    /// Revokes roles (same arguments as `rbac::grant`); a role not held is `unchanged`, a revoked one `revoked`.
    ///
    /// # Example
    /// ```rhai
    /// rbac::revoke(oic::instance("prod"), #{ "leaver@example.com": ["ServiceDeveloper", "ServiceViewer"] });
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn revoke(ctx: NativeCallContext, target: Dynamic, roles: Dynamic) -> RhaiResultOf<Array> {
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
    pub fn load_roles(path: ImmutableString) -> RhaiResultOf<Array> {
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
    ) -> RhaiResultOf<IdentityDomain> {
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
    ) -> RhaiResultOf<Array> {
        let h = host_of(&ctx)?;
        let (src, dst) = (&source.client, &target.client);
        let copy = ops_grant::copy_acl_between(&h.exec, &h.config, src, dst, &project);
        let on = Ctx::instance(&target.name()).artifact(project.as_str());
        let r = h
            .block_on(copy)?
            .map_err(|e| access_err(e, on.stage("grant")))?;
        reported(&ctx, r)
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
    ) -> RhaiResultOf<Map> {
        let h = host_of(&ctx)?;
        let acl = h.block_on(ops_grant::project_acl(&h.exec, &inst.client, &project))?;
        let on = Ctx::instance(&inst.name()).artifact(project.as_str());
        map_of(&ops_grant::acl_json(&acl.map_err(|f| access_err(f, on))?))
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
    ) -> RhaiResultOf<()> {
        let acl: crate::oic::Acl = rhai::serde::from_dynamic(&Dynamic::from(acl))
            .map_err(|e| errors::usage(format!("not an ACL: {e}")))?;
        let h = host_of(&ctx)?;
        let set = ops_grant::set_project_acl(&h.exec, &inst.client, &project, &acl);
        h.block_on(set)?.map_err(errors::from_effect)
    }
}

/// Registers the module.
pub fn register(e: &mut Engine) {
    e.register_type_with_name::<IdentityDomain>("IdentityDomain");
    register_plugin(e, "rbac", exported_module!(rbac_api));
}
