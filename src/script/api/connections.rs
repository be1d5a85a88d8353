//! Connections: read them, configure them from a per-environment map (recipe map or TOML file,
//! secrets as `env:`/`file:` references), test them, and find those that block activation.

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use super::oic::{Instance, oic_err, ops_err, options, results};
use super::{OrUnit, getter, global};
use crate::artifact::Artifact;
use crate::oic::{Connection, Integration};
use crate::ops::connections;
use crate::script::errors::{self, Ctx};

/// `configure_connections`: see [`connections::configure`].
fn configure(inst: &Instance, settings: Dynamic) -> Result<Array, Box<EvalAltResult>> {
    let m = Map::from_iter([("connections".into(), settings)]);
    let o: ConfigureOptions = options("configure_connections", &m)?;
    let specs = o.connections.for_instance(&inst.name()).map_err(ops_err)?;
    let host = &*inst.host;
    results(host.block_on(connections::configure(host, &inst.client, specs, true))?)
}

/// The settings of `configure_connections`, read as the `connections` option of the other verbs.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigureOptions {
    connections: connections::Connections,
}

/// `blocking_connections`: see [`connections::blocking`].
fn blocking(inst: &Instance, items: &Dynamic) -> Result<Array, Box<EvalAltResult>> {
    let list: Vec<Dynamic> = match items.read_lock::<Array>() {
        Some(a) => a.clone(),
        None => vec![items.clone()],
    };
    let (mut ints, mut arts) = (vec![], vec![]);
    for x in list {
        if let Some(i) = x.read_lock::<Integration>() {
            ints.push(i.clone());
        } else if let Some(a) = x.read_lock::<Artifact>() {
            arts.push(a.clone());
        } else {
            let t = x.type_name();
            return Err(errors::usage(format!(
                "expected integrations or artifacts, found a {t}"
            )));
        }
    }
    let host = &*inst.host;
    let r = host.block_on(connections::blocking(host, &inst.client, &ints, &arts))?;
    results(r.map_err(ops_err)?)
}

fn conn_text(c: &Connection) -> String {
    format!("{}  {}  {}  {}", c.id, c.status, c.adapter, c.name)
}

pub fn register(e: &mut Engine) {
    e.register_type_with_name::<Connection>("Connection");
    macro_rules! get {
        ($prop:literal, $ty:literal, $doc:literal, $f:expr) => {
            getter(
                $prop,
                &["c: Connection", $ty],
                concat!($doc, "\n\n# Example\n```rhai\nprint(c.", $prop, ");\n```"),
            )
            .register_into_engine(e, $f);
        };
    }
    get!(
        "id",
        "string",
        "The connection code (`ERP_REST`).",
        |c: &mut Connection| c.id.clone()
    );
    get!(
        "name",
        "string",
        "The display name.",
        |c: &mut Connection| c.name.clone()
    );
    get!(
        "status",
        "string",
        "`CONFIGURED`, or `INPROGRESS` for a draft (drafts block activation).",
        |c: &mut Connection| c.status.clone()
    );
    get!(
        "role",
        "string",
        "`SOURCE`, `TARGET` or `SOURCE_AND_TARGET`.",
        |c: &mut Connection| c.role.clone()
    );
    get!(
        "adapter",
        "string",
        "The adapter type (`rest`, `atpdatabase`, ...).",
        |c: &mut Connection| c.adapter.clone()
    );
    get!(
        "security_policy",
        "string",
        "The security policy (`BASIC_AUTH`, `OAUTH_CLIENT_CREDENTIALS`, ...).",
        |c: &mut Connection| c.security_policy.clone()
    );
    get!(
        "locked",
        "bool",
        "True while someone edits it.",
        |c: &mut Connection| c.locked
    );
    get!(
        "properties",
        "Map",
        "The connection properties, name to value (security values are never returned by OIC).",
        |c: &mut Connection| -> Map {
            c.connection_properties
                .iter()
                .map(|p| {
                    (
                        p.property_name.as_str().into(),
                        p.property_value.clone().or_unit(),
                    )
                })
                .collect()
        }
    );
    global(
        "to_string",
        &["c: Connection", "string"],
        "`CODE  STATUS  adapter  Name`.\n\n# Example\n```rhai\nprint(c);\n```",
    )
    .register_into_engine(e, |c: &mut Connection| conn_text(c));

    global("connections", &["inst: Instance", "Array"], "Every connection of the instance.\n\n# Example\n```rhai\nfor c in prod.connections() { print(c); }\n```")
        .register_into_engine(e, |i: &mut Instance| -> Result<Array, Box<EvalAltResult>> {
            let list = i.host.read("list_connections", || i.client.list_connections(None, None))?.map_err(|e| oic_err(e, Ctx::instance(&i.name())))?;
            Ok(list.into_iter().map(Dynamic::from).collect())
        });
    global("connection", &["inst: Instance", "code: string", "Connection"], "One connection by code; an error with `status` 404 when it does not exist.\n\n# Example\n```rhai\nlet c = prod.connection(\"ERP_REST\");\n```")
        .register_into_engine(e, |i: &mut Instance, code: ImmutableString| -> Result<Connection, Box<EvalAltResult>> {
            let c = i.host.read("get_connection", || i.client.get_connection(None, &code))?.map_err(|e| oic_err(e, Ctx::instance(&i.name())))?;
            c.ok_or_else(|| errors::script_error("http", Some(404), format!("connection {code} does not exist on {}", i.name()), Ctx::instance(&i.name())))
        });
    global(
        "configure_connections",
        &["inst: Instance", "settings: Dynamic", "Array"],
        "Updates connections and tests them. `settings` is a map `#{ CODE: #{ properties: #{..}, security_policy: \"..\", security: #{..}, agent_group: \"..\" } }`\nor the path of a TOML file with `[INSTANCE.CODE]` tables (the part for this instance is used). Security values may be `env:VAR` or `file:PATH`\nreferences; they are resolved when sent and never printed. Returns one map per connection: `connection`, `updated`, `test`, `status`, `error`.\n\n# Example\n```rhai\nprod.configure_connections(#{ ERP_REST: #{ properties: #{ connectionUrl: \"https://erp.example.com\" },\n                                         security: #{ username: \"svc\", password: \"env:ERP_PASSWORD\" } } });\n```",
    )
    .register_into_engine(e, |i: &mut Instance, settings: Dynamic| configure(i, settings));
    global("test_connection", &["inst: Instance", "code: string", "Map"], "Tests a connection: `#{ connection, status: \"SUCCESS\"|\"FAILED\", details }`.\n\n# Example\n```rhai\nlet t = prod.test_connection(\"ERP_REST\");\n```")
        .register_into_engine(e, |i: &mut Instance, code: ImmutableString| -> Result<Dynamic, Box<EvalAltResult>> {
            let host = &*i.host;
            rhai::serde::to_dynamic(host.block_on(connections::test(host, &i.client, &code))?.map_err(ops_err)?)
        });
    global("blocking_connections", &["inst: Instance", "items: Dynamic", "Array"], "The connections that the given integrations or artifacts use and that are not `CONFIGURED` on this instance (they block activation):\n`#{ connection, status, used_by }` each (`status` is `MISSING` when the connection does not exist yet).\n\n# Example\n```rhai\nfor b in prod.blocking_connections(artifacts) { print(`${b.connection} (${b.status}) blocks ${b.used_by}`); }\n```")
        .register_into_engine(e, |i: &mut Instance, items: Dynamic| blocking(i, &items));
}
