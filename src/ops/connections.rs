//! Connections per environment: the wanted settings of a connection (a map, or a TOML file
//! with a table per instance), the update that carries them (secret references resolved when
//! sent), configuring and testing them (`configure_connections`, the `connections` option of
//! `import_archives` and `cutover`, `migrate_instance`), and the connections that block
//! activation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use super::ctx::fan_out;
use super::{Ctx, OpsError};
use crate::artifact::{Artifact, ArtifactKey, ArtifactKind};
use crate::config::{Secret, SecretRef};
use crate::effect::{Effect, Failure, Outcome};
use crate::ledger::{Stage, StepStatus};
use crate::oic::{Connection, ConnectionProperty, ConnectionUpdate, Integration, OicClient};

/// The wanted configuration of one connection (unknown keys refused).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionSpec {
    #[serde(deserialize_with = "text_map")]
    pub properties: BTreeMap<String, String>,
    pub security_policy: Option<String>,
    /// Values may be `env:VAR` / `file:PATH` references, resolved when sent.
    #[serde(deserialize_with = "text_map")]
    pub security: BTreeMap<String, String>,
    pub agent_group: Option<String>,
}

/// A map of names to values, each value taken as text (`port = 443` is `"443"`).
fn text_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let m = BTreeMap::<String, serde_json::Value>::deserialize(d)?;
    Ok(m.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => (k, s),
            v => (k, v.to_string()),
        })
        .collect())
}

/// Connection settings as a recipe gives them: a map `CODE -> settings`, or the path of a TOML
/// file whose `[INSTANCE.CODE]` tables hold the settings of each instance.
#[derive(Clone, Debug)]
pub enum Connections {
    File(PathBuf),
    Specs(BTreeMap<String, ConnectionSpec>),
}

impl Default for Connections {
    fn default() -> Self {
        Connections::Specs(BTreeMap::new())
    }
}

impl<'de> Deserialize<'de> for Connections {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(p) => Ok(Connections::File(p.into())),
            v @ serde_json::Value::Object(_) => serde_path_to_error::deserialize(v)
                .map(Connections::Specs)
                .map_err(|e| D::Error::custom(format!("connections: {}: {}", e.path(), e.inner()))),
            _ => Err(D::Error::custom(
                "connections must be a map of connection codes to settings, or the path of a TOML file",
            )),
        }
    }
}

impl Connections {
    /// The settings for instance `instance` (from the file: its table; none when it has none).
    pub fn for_instance(
        &self,
        instance: &str,
    ) -> Result<BTreeMap<String, ConnectionSpec>, OpsError> {
        match self {
            Connections::Specs(m) => Ok(m.clone()),
            Connections::File(p) => specs_from_toml(p, instance).map_err(OpsError::Usage),
        }
    }
}

/// Reads the specs for `instance` from a TOML file: `[INSTANCE.CODE]` tables with
/// `security_policy`, `agent_group`, and sub-tables `properties` and `security`.
pub fn specs_from_toml(
    path: &Path,
    instance: &str,
) -> Result<BTreeMap<String, ConnectionSpec>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut t: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("{}: {}", path.display(), e.message()))?;
    let Some(inst) = t.remove(instance) else {
        return Ok(BTreeMap::new());
    };
    serde_path_to_error::deserialize(inst).map_err(|e| {
        format!(
            "{}: `{instance}.{}`: {}",
            path.display(),
            e.path(),
            e.inner()
        )
    })
}

fn secretish(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["password", "secret", "key", "token", "passphrase"]
        .iter()
        .any(|s| n.contains(s))
}

/// The update to send: property groups and types reused from the current connection where it has
/// them; secret references resolved now.
pub fn build_update(
    current: Option<&Connection>,
    spec: &ConnectionSpec,
) -> Result<(ConnectionUpdate, Vec<crate::config::Secret>), String> {
    let mut secrets = vec![];
    let find = |name: &str| {
        current.and_then(|c| {
            c.connection_properties
                .iter()
                .find(|p| p.property_name == name)
        })
    };
    let props: Vec<ConnectionProperty> = spec
        .properties
        .iter()
        .map(|(k, v)| {
            let (group, ty) = match find(k) {
                Some(p) => (
                    p.property_group
                        .clone()
                        .unwrap_or_else(|| "CONNECTION_PROPS".into()),
                    p.property_type.clone().unwrap_or_else(|| "STRING".into()),
                ),
                None => (
                    "CONNECTION_PROPS".to_string(),
                    if k.to_ascii_lowercase().ends_with("url") {
                        "URL".to_string()
                    } else {
                        "STRING".to_string()
                    },
                ),
            };
            ConnectionProperty::new(&group, k, &ty, v.clone())
        })
        .collect();
    let mut sec = vec![];
    for (k, v) in &spec.security {
        let value = if v.starts_with("env:") || v.starts_with("file:") {
            let r =
                SecretRef::parse(v, None).map_err(|e| format!("security property `{k}`: {e}"))?;
            let s = r
                .resolve()
                .map_err(|e| format!("security property `{k}`: {e} (from {})", r.describe()))?;
            secrets.push(s.clone());
            s.expose().to_string()
        } else {
            if secretish(k) && v.len() >= 4 {
                secrets.push(crate::config::Secret::new(v.clone()));
            }
            v.clone()
        };
        let ty = if secretish(k) { "PASSWORD" } else { "STRING" };
        sec.push(ConnectionProperty::new("CREDENTIALS", k, ty, value));
    }
    Ok((
        ConnectionUpdate {
            connection_properties: (!props.is_empty()).then_some(props),
            security_policy: spec.security_policy.clone(),
            security_properties: (!sec.is_empty()).then_some(sec),
            agent_group_id: spec.agent_group.clone(),
        },
        secrets,
    ))
}

fn conn_key(project: Option<&str>, code: &str) -> ArtifactKey {
    let id = match project {
        Some(p) => format!("{p}/{code}"),
        None => code.to_string(),
    };
    ArtifactKey::new(ArtifactKind::Connection, id, "")
}

/// The source's non-secret properties (with a value) and its security policy.
fn copied(src: &Connection) -> (BTreeMap<String, ConnectionProperty>, Option<String>) {
    let props = src
        .connection_properties
        .iter()
        .filter(|p| {
            let secret = p
                .property_group
                .as_deref()
                .is_some_and(|g| g.eq_ignore_ascii_case("CREDENTIALS"))
                || secretish(&p.property_name);
            p.property_value.as_deref().is_some_and(|v| !v.is_empty()) && !secret
        })
        .map(|p| (p.property_name.clone(), p.clone()))
        .collect();
    (
        props,
        Some(src.security_policy.clone()).filter(|s| !s.is_empty()),
    )
}

/// The update of a migrated connection: the source's non-secret properties and security policy
/// (when `copy`), then the per-environment `settings` over them. `None` when there is nothing
/// to send.
pub fn update_from_source(
    src: &Connection,
    settings: Option<&ConnectionSpec>,
    copy: bool,
) -> Result<Option<(ConnectionUpdate, Vec<Secret>)>, String> {
    let (mut props, mut policy) = if copy {
        copied(src)
    } else {
        (BTreeMap::new(), None)
    };
    let (over, secrets) = match settings {
        Some(s) => build_update(Some(src), s)?,
        None => (ConnectionUpdate::default(), vec![]),
    };
    for p in over.connection_properties.unwrap_or_default() {
        props.insert(p.property_name.clone(), p);
    }
    policy = over.security_policy.or(policy);
    let u = ConnectionUpdate {
        connection_properties: (!props.is_empty()).then(|| props.into_values().collect()),
        security_policy: policy,
        ..over
    };
    Ok((u != ConnectionUpdate::default()).then_some((u, secrets)))
}

/// What happened to one connection.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ConnectionResult {
    pub connection: String,
    /// The project holding it (a project's connection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    pub updated: bool,
    /// `SUCCESS`, `FAILED`, or `()` when not tested.
    pub test: Option<String>,
    /// Its status after the update (`CONFIGURED`, ...), where read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    pub error: Option<String>,
    /// A dry run: the update is planned.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub planned: bool,
}

/// Sends `update` to connection `code` (one `update connection` step; a settings error is
/// recorded as a failed one), then, with `test`, tests it (one `test connection` step).
pub async fn update_and_test(
    ctx: &dyn Ctx,
    client: &OicClient,
    project: Option<&str>,
    code: &str,
    update: Result<Option<(ConnectionUpdate, Vec<Secret>)>, String>,
    test: bool,
) -> ConnectionResult {
    let mut r = ConnectionResult {
        connection: code.to_string(),
        project: project.map(str::to_string),
        ..Default::default()
    };
    let (exec, key) = (ctx.exec(), conn_key(project, code));
    let eff = |what: String| Effect::new(Stage::Connection, key.clone(), client.name(), what);
    match update {
        Err(m) => {
            let e = eff("update connection".into());
            let err = super::import::step_error("config", m.clone());
            exec.note(&e, StepStatus::Failed, Some(err));
            r.error = Some(m);
            return r;
        }
        Ok(None) => {}
        Ok(Some((u, secrets))) => {
            ctx.shell().add_secrets(&secrets);
            let what: Vec<&str> = u
                .connection_properties
                .iter()
                .chain(u.security_properties.iter())
                .flatten()
                .map(|p| p.property_name.as_str())
                .collect();
            let send = || async {
                client
                    .update_connection(project, code, &u)
                    .await
                    .map(|_| ())
                    .map_err(Failure::from)
            };
            match exec
                .run(
                    eff(format!("update connection ({})", what.join(", "))),
                    send,
                )
                .await
            {
                Ok(Outcome::Done(())) => r.updated = true,
                Ok(_) => r.planned = exec.dry_run(),
                Err(e) => {
                    r.error = Some(e.error.message);
                    return r;
                }
            }
        }
    }
    if test {
        let t = || async {
            client
                .test_connection(project, code)
                .await
                .map_err(Failure::from)
        };
        match exec.run(eff("test connection".into()), t).await {
            Ok(Outcome::Done(t)) => {
                if !t.ok() {
                    r.error = Some(format!("test failed: {}", t.details));
                }
                r.test = Some(t.status);
            }
            Ok(_) => {}
            Err(e) => r.error = Some(e.error.message),
        }
    }
    r
}

impl crate::effect::EffectOutput for crate::oic::ConnectionTest {}

/// The options of `configure_connections` (the settings are its one argument, read as the
/// `connections` option of the other verbs).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigureOptions {
    pub connections: Connections,
}

/// `configure_connections`: the settings meant for the instance of `client` (from the file: its
/// table), each updated and tested.
pub async fn configure_connections(
    ctx: &dyn Ctx,
    client: &OicClient,
    o: &ConfigureOptions,
) -> Result<Vec<ConnectionResult>, OpsError> {
    let specs = o.connections.for_instance(client.name())?;
    Ok(configure(ctx, client, specs, true).await)
}

/// Updates then (with `test`) tests each connection of `specs` on the instance of `client`, in
/// parallel; one result per connection, with its status after the update.
pub async fn configure(
    ctx: &dyn Ctx,
    client: &OicClient,
    specs: BTreeMap<String, ConnectionSpec>,
    test: bool,
) -> Vec<ConnectionResult> {
    let items: Vec<(String, ConnectionSpec)> = specs.into_iter().collect();
    let bar = ctx.bar(items.len(), "connections");
    fan_out(
        bar,
        ctx.bounds().imports,
        items,
        |(code, spec)| async move { configure_one(ctx, client, code, &spec, test).await },
    )
    .await
}

/// Updates then (with `test`) tests connection `code` (one of [`configure`]); its result, with
/// its status after the update.
pub async fn configure_one(
    ctx: &dyn Ctx,
    client: &OicClient,
    code: String,
    spec: &ConnectionSpec,
    test: bool,
) -> ConnectionResult {
    let current = match client.get_connection(None, &code).await {
        Ok(c) => c,
        Err(e) => {
            return ConnectionResult {
                connection: code,
                error: Some(e.to_string()),
                ..Default::default()
            };
        }
    };
    let update = build_update(current.as_ref(), spec).map(Some);
    let mut r = update_and_test(ctx, client, None, &code, update, test).await;
    if let Ok(Some(c)) = client.get_connection(None, &code).await {
        r.status = Some(c.status);
    }
    r
}

/// A connection that blocks activation.
#[derive(Clone, Debug, Serialize)]
pub struct Blocking {
    pub connection: String,
    /// Its status on the instance; `MISSING` when it does not exist.
    pub status: String,
    /// The integrations (`CODE|VERSION`) that use it.
    pub used_by: Vec<String>,
}

/// The connections that `integrations` and the integration archives among `artifacts` use and
/// that are not `CONFIGURED` on the instance of `client`.
pub async fn blocking(
    ctx: &dyn Ctx,
    client: &OicClient,
    integrations: &[Integration],
    artifacts: &[Artifact],
) -> Result<Vec<Blocking>, OpsError> {
    let mut uses: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for i in integrations {
        for c in &i.connections {
            uses.entry(c.clone())
                .or_default()
                .push(format!("{}|{}", i.code, i.version));
        }
    }
    for a in artifacts {
        if a.key.kind == ArtifactKind::Integration && !a.is_planned() {
            let info = crate::oic::archive::inspect(a.path())
                .map_err(|e| OpsError::oic(&a.key.id(), e))?;
            for c in info.connections {
                uses.entry(c).or_default().push(a.key.id());
            }
        }
    }
    let conns = ctx
        .exec()
        .read("list_connections", || client.list_connections(None, None))
        .await
        .map_err(|e| OpsError::oic(client.name(), e))?;
    let status: BTreeMap<String, String> = conns.into_iter().map(|c| (c.id, c.status)).collect();
    Ok(uses
        .into_iter()
        .filter_map(|(code, used_by)| {
            let st = status.get(&code).cloned();
            (st.as_deref() != Some("CONFIGURED")).then(|| Blocking {
                connection: code,
                status: st.unwrap_or_else(|| "MISSING".into()),
                used_by,
            })
        })
        .collect())
}

/// The answer of `test_connection`.
#[derive(Clone, Debug, Serialize)]
pub struct TestResult {
    pub connection: String,
    /// `SUCCESS`, `FAILED`, or `planned` in a dry run.
    pub status: String,
    /// OIC's message (`()` in a dry run).
    pub details: Option<String>,
}

/// Tests connection `code` (one `test connection` step).
pub async fn test(ctx: &dyn Ctx, client: &OicClient, code: &str) -> Result<TestResult, OpsError> {
    let eff = Effect::new(
        Stage::Connection,
        conn_key(None, code),
        client.name(),
        "test connection",
    );
    let t = || async {
        client
            .test_connection(None, code)
            .await
            .map_err(Failure::from)
    };
    let (status, details) = match ctx.exec().run(eff, t).await? {
        Outcome::Done(t) => (t.status, Some(t.details)),
        _ => ("planned".to_string(), None),
    };
    Ok(TestResult {
        connection: code.to_string(),
        status,
        details,
    })
}
