//! Connections: read them, configure them from a per-environment map (recipe map or TOML file,
//! secrets as `env:`/`file:` references), test them, and find those that block activation.

use rhai::plugin::*;
use rhai::{Array, Dynamic, Engine, ImmutableString, Map};

use super::OrUnit;
use super::args::{RhaiResultOf, map_of, objects, options, results};
use super::oic::Instance;
use crate::artifact::Artifact;
use crate::oic::{Connection, Integration};
use crate::ops::{connections, reads};
use crate::script::errors;

/// Integrations and artifacts (one or an array of them), apart.
fn integrations_and_artifacts(items: &Dynamic) -> RhaiResultOf<(Vec<Integration>, Vec<Artifact>)> {
    let list = items.read_lock::<Array>().map(|a| a.clone());
    let (mut ints, mut arts) = (vec![], vec![]);
    for x in list.unwrap_or_else(|| vec![items.clone()]) {
        match (x.read_lock::<Integration>(), x.read_lock::<Artifact>()) {
            (Some(i), _) => ints.push(i.clone()),
            (_, Some(a)) => arts.push(a.clone()),
            _ => {
                let m = format!(
                    "expected integrations or artifacts, found a {}",
                    x.type_name()
                );
                return Err(errors::usage(m));
            }
        }
    }
    Ok((ints, arts))
}

/// Reading, configuring and testing an instance's connections.
#[export_module]
mod connections_api {
    use super::*;

    /// Every connection of the instance.
    ///
    /// # Example
    /// ```rhai
    /// for c in prod.connections() { print(c); }
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn connections(i: &mut Instance) -> RhaiResultOf<Array> {
        Ok(objects(i.run(|h, c| reads::connections(h, c))?))
    }

    /// One connection by code; an error with `status` 404 when it does not exist.
    ///
    /// # Example
    /// ```rhai
    /// let c = prod.connection("ERP_REST");
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn connection(i: &mut Instance, code: ImmutableString) -> RhaiResultOf<Connection> {
        i.run(|h, c| reads::connection(h, c, &code))
    }

    /// Updates connections and tests them. `settings` is a map `#{ CODE: #{ properties: #{..}, security_policy: "..", security: #{..}, agent_group: ".." } }`
    /// or the path of a TOML file with `[INSTANCE.CODE]` tables (the part for this instance is used). Security values may be `env:VAR` or `file:PATH`
    /// references; they are resolved when sent and never printed. Returns one map per connection: `connection`, `updated`, `test`, `status`, `error`.
    ///
    /// # Example
    /// ```rhai
    /// prod.configure_connections(#{ ERP_REST: #{ properties: #{ connectionUrl: "https://erp.example.com" },
    ///                                          security: #{ username: "svc", password: "env:ERP_PASSWORD" } } });
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn configure_connections(i: &mut Instance, settings: Dynamic) -> RhaiResultOf<Array> {
        let m = Map::from_iter([("connections".into(), settings)]);
        let o = options("configure_connections", &m)?;
        results(i.run(|h, c| connections::configure_connections(h, c, &o))?)
    }

    /// Tests a connection: `#{ connection, status: "SUCCESS"|"FAILED", details }`.
    ///
    /// # Example
    /// ```rhai
    /// let t = prod.test_connection("ERP_REST");
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn test_connection(i: &mut Instance, code: ImmutableString) -> RhaiResultOf<Map> {
        map_of(&i.run(|h, c| connections::test(h, c, &code))?)
    }

    /// The connections that the given integrations or artifacts use and that are not `CONFIGURED` on this instance (they block activation):
    /// `#{ connection, status, used_by }` each (`status` is `MISSING` when the connection does not exist yet).
    ///
    /// # Example
    /// ```rhai
    /// for b in prod.blocking_connections(artifacts) { print(`${b.connection} (${b.status}) blocks ${b.used_by}`); }
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn blocking_connections(i: &mut Instance, items: Dynamic) -> RhaiResultOf<Array> {
        let (ints, arts) = integrations_and_artifacts(&items)?;
        results(i.run(|h, c| connections::blocking(h, c, &ints, &arts))?)
    }
}

pub fn register(e: &mut Engine) {
    e.register_type_with_name::<Connection>("Connection");
    e.register_global_module(exported_module!(connections_api).into());
    props!(e, c: Connection {
        id -> String: "The connection code (`ERP_REST`).", c.id.clone();
        name -> String: "The display name.", c.name.clone();
        status -> String: "`CONFIGURED`, or `INPROGRESS` for a draft (drafts block activation).", c.status.clone();
        role -> String: "`SOURCE`, `TARGET` or `SOURCE_AND_TARGET`.", c.role.clone();
        adapter -> String: "The adapter type (`rest`, `atpdatabase`, ...).", c.adapter.clone();
        security_policy -> String: "The security policy (`BASIC_AUTH`, `OAUTH_CLIENT_CREDENTIALS`, ...).",
            c.security_policy.clone();
        locked -> bool: "True while someone edits it.", c.locked;
        properties -> Map: "The connection properties, name to value (security values are never returned by OIC).",
            c.connection_properties.iter()
                .map(|p| (p.property_name.as_str().into(), p.property_value.clone().or_unit()))
                .collect();
        fn to_string -> String: "`CODE  STATUS  adapter  Name`.",
            format!("{}  {}  {}  {}", c.id, c.status, c.adapter, c.name);
    });
}
