//! Connections: list, get, update (PATCH override with the four documented members) and test,
//! globally or inside an OIC 3 project.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::http::{API, Body, Call};
use super::types::{b, encode_segment, opt_s, s};
use super::{OicClient, OicError};

/// One connection property (`connectionProperties[]` / `securityProperties[]`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionProperty {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// `propertyGroup` (`CONNECTION_PROPS`, `CREDENTIALS`...).
    pub property_group: Option<String>,
    #[serde(default)]
    /// `propertyName` (adapter-specific, e.g. `connectionUrl`).
    pub property_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// `propertyType` (`URL`, `STRING`, `PASSWORD`...).
    pub property_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// `propertyValue` (never returned by OIC for secrets).
    pub property_value: Option<String>,
}

impl ConnectionProperty {
    /// A property with group, name, type and value.
    pub fn new(group: &str, name: &str, ty: &str, value: impl Into<String>) -> Self {
        ConnectionProperty {
            property_group: Some(group.into()),
            property_name: name.into(),
            property_type: Some(ty.into()),
            property_value: Some(value.into()),
        }
    }
}

/// Values are printed only for non-secret properties: anything in the `CREDENTIALS` group or of
/// a `PASSWORD`/secret-like type shows `***`.
impl fmt::Debug for ConnectionProperty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secretish = self
            .property_group
            .as_deref()
            .is_some_and(|g| g.eq_ignore_ascii_case("CREDENTIALS"))
            || self.property_type.as_deref().is_some_and(|t| {
                let t = t.to_ascii_uppercase();
                t.contains("PASSWORD")
                    || t.contains("SECRET")
                    || t.contains("KEY")
                    || t.contains("TOKEN")
            });
        let value = match (&self.property_value, secretish) {
            (None, _) => "None".to_string(),
            (Some(_), true) => "***".to_string(),
            (Some(v), false) => format!("{v:?}"),
        };
        f.debug_struct("ConnectionProperty")
            .field("property_group", &self.property_group)
            .field("property_name", &self.property_name)
            .field("property_type", &self.property_type)
            .field("property_value", &format_args!("{value}"))
            .finish()
    }
}

/// A connection as listed or fetched (missing fields default).
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    /// The connection code.
    pub id: String,
    /// The display name.
    pub name: String,
    /// `CONFIGURED`, `INPROGRESS` (draft), ...
    pub status: String,
    /// `SOURCE`, `TARGET`, `SOURCE_AND_TARGET`.
    pub role: String,
    /// `adapterType.name` (e.g. `rest`, `atpdatabase`).
    pub adapter: String,
    /// `securityPolicy` (`BASIC_AUTH`, `OAUTH_CLIENT_CREDENTIALS`...).
    pub security_policy: String,
    /// `lockedFlag`.
    pub locked: bool,
    /// `connectionProperties[]`.
    pub connection_properties: Vec<ConnectionProperty>,
    /// The whole JSON object as received.
    pub raw: Value,
}

impl Connection {
    /// Reads a connection from its JSON object; never fails.
    pub fn from_json(v: Value) -> Connection {
        let props = v
            .get("connectionProperties")
            .cloned()
            .and_then(|p| serde_json::from_value::<Vec<ConnectionProperty>>(p).ok())
            .unwrap_or_default();
        let adapter = v
            .get("adapterType")
            .map(|a| {
                opt_s(a, "name")
                    .or_else(|| opt_s(a, "type"))
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        Connection {
            id: opt_s(&v, "id")
                .or_else(|| opt_s(&v, "code"))
                .unwrap_or_default(),
            name: s(&v, "name"),
            status: s(&v, "status"),
            role: s(&v, "role"),
            adapter,
            security_policy: s(&v, "securityPolicy"),
            locked: b(&v, "lockedFlag"),
            connection_properties: props,
            raw: v,
        }
    }
}

/// The body of a connection update. Only these four members are honoured by OIC; `None`
/// members are not sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    /// `connectionProperties`.
    pub connection_properties: Option<Vec<ConnectionProperty>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// `securityPolicy`.
    pub security_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// `securityProperties` (credentials).
    pub security_properties: Option<Vec<ConnectionProperty>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// `agentGroupId` (connectivity agent group).
    pub agent_group_id: Option<String>,
}

/// The answer of `POST /connections/{id}/test`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionTest {
    /// The connection code.
    pub id: String,
    /// `SUCCESS` or `FAILED`.
    pub status: String,
    /// The message of the test.
    pub details: String,
}

impl ConnectionTest {
    /// True for `SUCCESS`.
    pub fn ok(&self) -> bool {
        self.status.eq_ignore_ascii_case("SUCCESS")
    }
}

pub(crate) fn connections_base(project: Option<&str>) -> String {
    match project {
        Some(p) => format!("{API}/projects/{}/connections", encode_segment(p)),
        None => format!("{API}/connections"),
    }
}

impl OicClient {
    /// All connections (`GET /connections`, or `/projects/{p}/connections`), paged.
    pub async fn list_connections(
        &self,
        project: Option<&str>,
        q: Option<&str>,
    ) -> Result<Vec<Connection>, OicError> {
        self.list_as(&connections_base(project), q, Connection::from_json)
            .await
    }

    /// One connection; `None` on 404.
    pub async fn get_connection(
        &self,
        project: Option<&str>,
        id: &str,
    ) -> Result<Option<Connection>, OicError> {
        self.get_as(
            Call::get(format!(
                "{}/{}",
                connections_base(project),
                encode_segment(id)
            )),
            Connection::from_json,
        )
        .await
    }

    /// Updates a connection (`POST /connections/{id}` + `X-HTTP-Method-Override: PATCH`).
    /// Returns the updated connection (re-read with `GET` when the answer has no body).
    pub async fn update_connection(
        &self,
        project: Option<&str>,
        id: &str,
        update: &ConnectionUpdate,
    ) -> Result<Connection, OicError> {
        let body = serde_json::to_value(update)
            .map_err(|e| OicError::Config(format!("connection update for {id}: {e}")))?;
        let path = format!("{}/{}", connections_base(project), encode_segment(id));
        let v = self.json(Call::post(&path).body(Body::Patch(body))).await?;
        if v.is_object() {
            return Ok(Connection::from_json(v));
        }
        Ok(Connection::from_json(self.json(Call::get(path)).await?))
    }

    /// Validates a connection (`POST /connections/{id}/validate`) without changing its state.
    pub async fn validate_connection(
        &self,
        project: Option<&str>,
        id: &str,
    ) -> Result<ConnectionTest, OicError> {
        let v = self
            .json(
                Call::post(format!(
                    "{}/{}/validate",
                    connections_base(project),
                    encode_segment(id)
                ))
                .own_409(),
            )
            .await?;
        Ok(ConnectionTest {
            id: opt_s(&v, "id").unwrap_or_else(|| id.to_string()),
            status: opt_s(&v, "status").unwrap_or_default(),
            details: opt_s(&v, "details")
                .or_else(|| opt_s(&v, "message"))
                .unwrap_or_default(),
        })
    }

    /// Uploads a file as the value of an attachment property (WSDL, keystore...):
    /// `POST /connections/{id}/attachments/{property}`, multipart `file`, streamed.
    pub async fn upload_connection_attachment(
        &self,
        project: Option<&str>,
        id: &str,
        property: &str,
        file: &std::path::Path,
    ) -> Result<(), OicError> {
        let file_name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| property.to_string());
        let call = Call::post(format!(
            "{}/{}/attachments/{}",
            connections_base(project),
            encode_segment(id),
            encode_segment(property)
        ))
        .body(Body::File {
            path: file.to_path_buf(),
            file_name,
            fields: vec![],
        });
        self.empty(call).await.map(|_| ())
    }

    /// Tests a connection (`POST /connections/{id}/test`). A failed test with a 200 answer is
    /// returned as `status == "FAILED"`; 409 (not fully configured) and 412 (locked) are errors.
    pub async fn test_connection(
        &self,
        project: Option<&str>,
        id: &str,
    ) -> Result<ConnectionTest, OicError> {
        let v = self
            .json(
                Call::post(format!(
                    "{}/{}/test",
                    connections_base(project),
                    encode_segment(id)
                ))
                .own_409(),
            )
            .await?;
        Ok(ConnectionTest {
            id: opt_s(&v, "id").unwrap_or_else(|| id.to_string()),
            status: opt_s(&v, "status")
                .or_else(|| opt_s(&v, "testStatus"))
                .unwrap_or_default(),
            details: opt_s(&v, "details")
                .or_else(|| opt_s(&v, "message"))
                .unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn update_serialises_only_the_four_members() {
        let u = ConnectionUpdate {
            connection_properties: Some(vec![ConnectionProperty::new(
                "CONNECTION_PROPS",
                "connectionUrl",
                "URL",
                "https://x",
            )]),
            security_policy: Some("BASIC_AUTH".into()),
            security_properties: Some(vec![ConnectionProperty::new(
                "CREDENTIALS",
                "password",
                "PASSWORD",
                "hunter22",
            )]),
            agent_group_id: None,
        };
        let v = serde_json::to_value(&u).unwrap();
        assert_eq!(
            v,
            json!({
                "connectionProperties": [{"propertyGroup": "CONNECTION_PROPS", "propertyName": "connectionUrl", "propertyType": "URL", "propertyValue": "https://x"}],
                "securityPolicy": "BASIC_AUTH",
                "securityProperties": [{"propertyGroup": "CREDENTIALS", "propertyName": "password", "propertyType": "PASSWORD", "propertyValue": "hunter22"}]
            })
        );
        let dbg = format!("{u:?}");
        assert!(!dbg.contains("hunter22"), "{dbg}");
        assert!(dbg.contains("https://x"), "{dbg}");
    }

    #[test]
    fn connection_tolerant() {
        let c = Connection::from_json(
            json!({"id": "BUCKET", "status": "CONFIGURED", "adapterType": {"name": "rest"}, "lockedFlag": true,
            "connectionProperties": [{"propertyName": "connectionUrl", "propertyValue": "https://a"}]}),
        );
        assert_eq!(c.id, "BUCKET");
        assert_eq!(c.adapter, "rest");
        assert!(c.locked);
        assert_eq!(
            c.connection_properties[0].property_value.as_deref(),
            Some("https://a")
        );
        let c = Connection::from_json(json!({"code": "X", "connectionProperties": "junk"}));
        assert_eq!(c.id, "X");
        assert!(c.connection_properties.is_empty());
        assert_eq!(
            connections_base(Some("P-1")),
            "/ic/api/integration/v1/projects/P-1/connections"
        );
    }
}
