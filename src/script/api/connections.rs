//! Connections: read them, configure them from a per-environment map (recipe map or TOML file,
//! secrets as `env:`/`file:` references), test them, and find those that block activation.

use crate::script::api::OrUnit;
use std::collections::BTreeMap;
use std::path::Path;

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use super::oic::{Instance, oic_err};
use super::{getter, global};
use crate::artifact::{Artifact, ArtifactKey, ArtifactKind};
use crate::effect::{Effect, Failure, Outcome};
use crate::ledger::Stage;
use crate::oic::{Connection, Integration};
use crate::script::errors::{self, Ctx};

pub use crate::ops::connections::{ConnectionSpec, build_update};

fn str_map(v: &Dynamic, what: &str) -> Result<BTreeMap<String, String>, Box<EvalAltResult>> {
    let m = v
        .read_lock::<Map>()
        .ok_or_else(|| errors::usage(format!("`{what}` must be a map of names to values")))?;
    Ok(m.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// Reads `#{ properties: #{..}, security_policy: "..", security: #{..}, agent_group: ".." }`.
pub fn spec_from_map(code: &str, m: &Map) -> Result<ConnectionSpec, Box<EvalAltResult>> {
    let mut s = ConnectionSpec::default();
    for (k, v) in m {
        match k.as_str() {
            "properties" => s.properties = str_map(v, "properties")?,
            "security" => s.security = str_map(v, "security")?,
            "security_policy" => s.security_policy = Some(v.to_string()),
            "agent_group" => s.agent_group = Some(v.to_string()),
            other => {
                return Err(errors::usage(format!(
                    "connection {code}: unknown key `{other}` (known: properties, security_policy, security, agent_group)"
                )));
            }
        }
    }
    Ok(s)
}

fn toml_str_map(t: &toml::Value, what: &str) -> Result<BTreeMap<String, String>, String> {
    let t = t
        .as_table()
        .ok_or_else(|| format!("`{what}` must be a table"))?;
    Ok(t.iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            )
        })
        .collect())
}

/// Reads the specs for `instance` from a TOML file: `[INSTANCE.CODE]` tables with
/// `security_policy`, `agent_group`, and sub-tables `properties` and `security`.
pub fn specs_from_toml(
    path: &Path,
    instance: &str,
) -> Result<BTreeMap<String, ConnectionSpec>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let t: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("{}: {}", path.display(), e.message()))?;
    let mut out = BTreeMap::new();
    let Some(inst) = t.get(instance) else {
        return Ok(out);
    };
    let inst = inst.as_table().ok_or_else(|| {
        format!(
            "{}: `{instance}` must be a table of connections",
            path.display()
        )
    })?;
    for (code, v) in inst {
        let ct = v
            .as_table()
            .ok_or_else(|| format!("{}: `{instance}.{code}` must be a table", path.display()))?;
        let mut s = ConnectionSpec::default();
        for (k, v) in ct {
            let key = format!("{}: `{instance}.{code}.{k}`", path.display());
            match k.as_str() {
                "properties" => s.properties = toml_str_map(v, &key)?,
                "security" => s.security = toml_str_map(v, &key)?,
                "security_policy" => s.security_policy = v.as_str().map(str::to_string),
                "agent_group" => s.agent_group = v.as_str().map(str::to_string),
                _ => {
                    return Err(format!(
                        "{key}: unknown key (known: properties, security_policy, security, agent_group)"
                    ));
                }
            }
        }
        out.insert(code.clone(), s);
    }
    Ok(out)
}

/// Specs from a script value: a map of code → spec map, or the path of a TOML file.
pub fn specs_from_value(
    inst: &Instance,
    v: &Dynamic,
) -> Result<BTreeMap<String, ConnectionSpec>, Box<EvalAltResult>> {
    if v.is_string() {
        return specs_from_toml(Path::new(&v.to_string()), &inst.name())
            .map_err(|m| errors::script_error("config", None, m, Ctx::instance(&inst.name())));
    }
    let m = v.read_lock::<Map>().ok_or_else(|| {
        errors::usage(
            "connections must be a map of connection codes to settings, or the path of a TOML file",
        )
    })?;
    let mut out = BTreeMap::new();
    for (code, spec) in m.iter() {
        let sm = spec
            .read_lock::<Map>()
            .ok_or_else(|| errors::usage(format!("connection {code}: expected a map")))?;
        out.insert(code.to_string(), spec_from_map(code, &sm)?);
    }
    Ok(out)
}

fn conn_key(code: &str) -> ArtifactKey {
    ArtifactKey::new(ArtifactKind::Connection, code, "")
}

/// Updates then tests each connection (one `connection` step each); returns one result map per
/// connection: `connection`, `updated`, `test` (`SUCCESS`/`FAILED`/`()`), `status`, `error`.
pub fn configure(
    inst: &Instance,
    specs: BTreeMap<String, ConnectionSpec>,
    test: bool,
) -> Result<Array, Box<EvalAltResult>> {
    let host = inst.host.clone();
    let items: Vec<(String, ConnectionSpec)> = specs.into_iter().collect();
    let results = super::bulk::run_bulk(
        &host,
        "connections",
        host.concurrency.imports,
        items,
        |(code, spec)| {
            let exec = host.exec.clone();
            let client = inst.client.clone();
            let host = host.clone();
            async move {
                let mut m = Map::new();
                m.insert("connection".into(), code.clone().into());
                let current = match client.get_connection(None, &code).await {
                    Ok(c) => c,
                    Err(e) => {
                        m.insert("error".into(), e.to_string().into());
                        return m;
                    }
                };
                let (update, secrets) = match build_update(current.as_ref(), &spec) {
                    Ok(x) => x,
                    Err(msg) => {
                        exec.note(
                            &Effect::new(
                                Stage::Connection,
                                conn_key(&code),
                                client.name(),
                                "update",
                            ),
                            crate::ledger::StepStatus::Failed,
                            Some(crate::ledger::StepError {
                                kind: "config".into(),
                                status: None,
                                message: msg.clone(),
                            }),
                        );
                        m.insert("error".into(), msg.into());
                        return m;
                    }
                };
                host.out.add_secrets(&secrets);
                let what: Vec<&str> = spec
                    .properties
                    .keys()
                    .chain(spec.security.keys())
                    .map(String::as_str)
                    .collect();
                let eff = Effect::new(
                    Stage::Connection,
                    conn_key(&code),
                    client.name(),
                    format!("update connection ({})", what.join(", ")),
                );
                match exec
                    .run(eff, || async {
                        client
                            .update_connection(None, &code, &update)
                            .await
                            .map(|_| ())
                            .map_err(Failure::from)
                    })
                    .await
                {
                    Ok(Outcome::Done(())) => {
                        m.insert("updated".into(), true.into());
                    }
                    Ok(_) => {
                        m.insert("updated".into(), false.into());
                        m.insert("planned".into(), true.into());
                    }
                    Err(e) => {
                        m.insert("updated".into(), false.into());
                        m.insert("error".into(), e.error.message.into());
                        return m;
                    }
                }
                if test {
                    let eff = Effect::new(
                        Stage::Connection,
                        conn_key(&code),
                        client.name(),
                        "test connection",
                    );
                    match exec
                        .run(eff, || async {
                            client
                                .test_connection(None, &code)
                                .await
                                .map_err(Failure::from)
                        })
                        .await
                    {
                        Ok(Outcome::Done(t)) => {
                            m.insert("test".into(), t.status.clone().into());
                            if !t.ok() {
                                m.insert(
                                    "error".into(),
                                    format!("test failed: {}", t.details).into(),
                                );
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            m.insert("error".into(), e.error.message.into());
                        }
                    }
                }
                if let Ok(Some(c)) = client.get_connection(None, &code).await {
                    m.insert("status".into(), c.status.into());
                }
                m
            }
        },
    )?;
    Ok(results
        .into_iter()
        .map(|mut m| {
            for k in ["updated", "test", "status", "error"] {
                m.entry(k.into()).or_insert(Dynamic::UNIT);
            }
            Dynamic::from_map(m)
        })
        .collect())
}

impl crate::effect::EffectOutput for crate::oic::ConnectionTest {}

/// The connections that `items` (integrations or integration artifacts) use and that are not
/// `CONFIGURED` on the instance: `#{ connection, status, used_by: [ids] }` each.
pub fn blocking(inst: &Instance, items: &Dynamic) -> Result<Array, Box<EvalAltResult>> {
    let mut uses: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let list: Vec<Dynamic> = match items.read_lock::<Array>() {
        Some(a) => a.clone(),
        None => vec![items.clone()],
    };
    for x in &list {
        if let Some(i) = x.read_lock::<Integration>() {
            for c in &i.connections {
                uses.entry(c.clone())
                    .or_default()
                    .push(format!("{}|{}", i.code, i.version));
            }
        } else if let Some(a) = x.read_lock::<Artifact>() {
            if a.key.kind == ArtifactKind::Integration && !a.is_planned() {
                let info = crate::oic::archive::inspect(a.path())
                    .map_err(|e| oic_err(e, Ctx::default().artifact(a.key.id())))?;
                for c in info.connections {
                    uses.entry(c).or_default().push(a.key.id());
                }
            }
        } else {
            return Err(errors::usage(format!(
                "expected integrations or artifacts, found a {}",
                x.type_name()
            )));
        }
    }
    let conns = inst
        .host
        .read("list_connections", || {
            inst.client.list_connections(None, None)
        })?
        .map_err(|e| oic_err(e, Ctx::instance(&inst.name())))?;
    let status: BTreeMap<String, String> = conns
        .into_iter()
        .map(|c| (c.id.clone(), c.status.clone()))
        .collect();
    let mut out = Array::new();
    for (code, users) in uses {
        let st = status.get(&code).cloned();
        if st.as_deref() != Some("CONFIGURED") {
            let mut m = Map::new();
            m.insert("connection".into(), code.into());
            m.insert(
                "status".into(),
                st.unwrap_or_else(|| "MISSING".into()).into(),
            );
            m.insert(
                "used_by".into(),
                users
                    .into_iter()
                    .map(Dynamic::from)
                    .collect::<Array>()
                    .into(),
            );
            out.push(m.into());
        }
    }
    Ok(out)
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
    .register_into_engine(e, |i: &mut Instance, settings: Dynamic| -> Result<Array, Box<EvalAltResult>> {
        let specs = specs_from_value(i, &settings)?;
        configure(i, specs, true)
    });
    global("test_connection", &["inst: Instance", "code: string", "Map"], "Tests a connection: `#{ connection, status: \"SUCCESS\"|\"FAILED\", details }`.\n\n# Example\n```rhai\nlet t = prod.test_connection(\"ERP_REST\");\n```")
        .register_into_engine(e, |i: &mut Instance, code: ImmutableString| -> Result<Map, Box<EvalAltResult>> {
            let client = i.client.clone();
            let code2 = code.to_string();
            let r = i.host.block_on(i.host.exec.run(Effect::new(Stage::Connection, conn_key(&code), i.name(), "test connection"), || async { client.test_connection(None, &code2).await.map_err(Failure::from) }))?;
            let mut m = Map::new();
            m.insert("connection".into(), code.into());
            match r.map_err(errors::from_effect)? {
                Outcome::Done(t) => {
                    m.insert("status".into(), t.status.into());
                    m.insert("details".into(), t.details.into());
                }
                _ => {
                    m.insert("status".into(), "planned".into());
                    m.insert("details".into(), Dynamic::UNIT);
                }
            }
            Ok(m)
        });
    global("blocking_connections", &["inst: Instance", "items: Dynamic", "Array"], "The connections that the given integrations or artifacts use and that are not `CONFIGURED` on this instance (they block activation):\n`#{ connection, status, used_by }` each (`status` is `MISSING` when the connection does not exist yet).\n\n# Example\n```rhai\nfor b in prod.blocking_connections(artifacts) { print(`${b.connection} (${b.status}) blocks ${b.used_by}`); }\n```")
        .register_into_engine(e, |i: &mut Instance, items: Dynamic| blocking(i, &items));
}
