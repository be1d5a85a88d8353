//! Connections per environment: the wanted settings of a connection and the update that
//! carries them (secret references resolved when sent). Used by `configure_connections` and by
//! the cutover.

use std::collections::BTreeMap;

use crate::config::SecretRef;
use crate::oic::{Connection, ConnectionProperty, ConnectionUpdate};

/// The wanted configuration of one connection.
#[derive(Clone, Debug, Default)]
pub struct ConnectionSpec {
    pub properties: BTreeMap<String, String>,
    pub security_policy: Option<String>,
    /// Values may be `env:VAR` / `file:PATH` references, resolved when sent.
    pub security: BTreeMap<String, String>,
    pub agent_group: Option<String>,
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
