//! Plain data types of the OIC API: identifiers and resources, deserialised tolerantly.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use super::OicError;
use crate::shared::Shared;

/// Characters escaped in one path segment: everything except RFC 3986 unreserved characters.
pub(crate) const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment (`|` becomes `%7C`, `/` becomes `%2F`).
pub fn encode_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// An integration (or library) identifier: `CODE|VERSION`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IntegrationId {
    /// Upper-case code, e.g. `HELLO_WORLD`.
    pub code: String,
    /// `MM.mm.pppp`, e.g. `01.00.0000`.
    pub version: String,
}

impl IntegrationId {
    /// Builds an id from its parts.
    pub fn new(code: impl Into<String>, version: impl Into<String>) -> Self {
        IntegrationId {
            code: code.into(),
            version: version.into(),
        }
    }

    /// Parses `CODE|VERSION` (spaces around the parts are ignored).
    pub fn parse(s: &str) -> Result<IntegrationId, OicError> {
        let bad = || {
            OicError::Config(format!(
                "`{s}` is not an integration id (expected CODE|VERSION, e.g. HELLO_WORLD|01.00.0000)"
            ))
        };
        let (code, version) = s.split_once('|').ok_or_else(bad)?;
        let (code, version) = (code.trim(), version.trim());
        if code.is_empty() || version.is_empty() || version.contains('|') {
            return Err(bad());
        }
        Ok(IntegrationId::new(code, version))
    }

    /// The id as sent in a URL path: `CODE%7CVERSION`.
    pub fn path_segment(&self) -> String {
        format!(
            "{}%7C{}",
            encode_segment(&self.code),
            encode_segment(&self.version)
        )
    }
}

impl fmt::Display for IntegrationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}|{}", self.code, self.version)
    }
}

impl FromStr for IntegrationId {
    type Err = OicError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IntegrationId::parse(s)
    }
}

pub(crate) fn s(v: &Value, key: &str) -> String {
    opt_s(v, key).unwrap_or_default()
}

pub(crate) fn opt_s(v: &Value, key: &str) -> Option<String> {
    match v.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn b(v: &Value, key: &str) -> bool {
    match v.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

pub(crate) fn ids_of(v: &Value, path: &[&str], field: &str) -> Vec<String> {
    let mut cur = v;
    for p in path {
        match cur.get(*p) {
            Some(x) => cur = x,
            None => return vec![],
        }
    }
    match cur {
        Value::Array(a) => a
            .iter()
            .filter_map(|x| match x {
                Value::String(s) => Some(s.clone()),
                o => opt_s(o, field)
                    .or_else(|| opt_s(o, "name"))
                    .or_else(|| opt_s(o, "code")),
            })
            .collect(),
        _ => vec![],
    }
}

/// The connection codes of an integration object: `dependencies.connections[].id` (a GET), else
/// (a list item, which has no `dependencies`) the connections of its `endPoints`, each once.
fn connections_of(v: &Value) -> Vec<String> {
    if v.pointer("/dependencies/connections").is_some() {
        return ids_of(v, &["dependencies", "connections"], "id");
    }
    let mut out: Vec<String> = vec![];
    for e in v
        .get("endPoints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(id) = e.pointer("/connection/id").and_then(Value::as_str)
            && !out.iter().any(|c| c == id)
        {
            out.push(id.to_string());
        }
    }
    out
}

/// An integration as listed or fetched: a [`Shared`] handle on its [`IntegrationFields`] (a
/// write copies them first when another clone shares them). A clone costs a reference count:
/// scripts filter and pass lists of thousands by value.
pub type Integration = Shared<IntegrationFields>;

/// The facts of an [`Integration`]. Missing fields default to empty/false.
#[derive(Clone, Debug, PartialEq)]
pub struct IntegrationFields {
    /// `CODE|VERSION`.
    pub id: String,
    /// The integration code.
    pub code: String,
    /// The version, `MM.mm.pppp`.
    pub version: String,
    /// The display name.
    pub name: String,
    /// `CONFIGURED`, `ACTIVATED`, `ACTIVATION_INPROGRESS`, `FAILEDACTIVATION`, `INPROGRESS`.
    pub status: String,
    /// `lockedFlag`: being edited.
    pub locked: bool,
    /// `projectType` (or `type`): `DEVELOPED`, `PREBUILT`, `CUSTOM`.
    pub project_type: String,
    /// `scheduleDefinedFlag`.
    pub schedule_defined: bool,
    /// `scheduleApplicableFlag`: a scheduled integration (one that can have a schedule).
    pub schedule_applicable: bool,
    /// `lastUpdated` as sent.
    pub last_updated: String,
    /// `lastUpdatedBy`.
    pub last_updated_by: String,
    /// Connection codes from `dependencies.connections[].id`; list items carry no
    /// `dependencies`, so without it from `endPoints[].connection.id` (each code once).
    pub connections: Vec<String>,
    /// Lookup names from `dependencies.lookups[]` (empty on list items: only a GET has them).
    pub lookups: Vec<String>,
    /// The OIC 3 project that holds it, when the item says so.
    pub project_code: Option<String>,
}

impl Integration {
    /// Reads an integration from its JSON object; never fails (missing fields default).
    pub fn from_json(v: Value) -> Integration {
        let mut code = s(&v, "code");
        let mut version = s(&v, "version");
        let mut id = s(&v, "id");
        if (code.is_empty() || version.is_empty())
            && let Ok(p) = IntegrationId::parse(&id)
        {
            if code.is_empty() {
                code = p.code;
            }
            if version.is_empty() {
                version = p.version;
            }
        }
        if id.is_empty() && !code.is_empty() {
            id = format!("{code}|{version}");
        }
        let project_type = opt_s(&v, "projectType")
            .or_else(|| opt_s(&v, "type"))
            .unwrap_or_default();
        IntegrationFields {
            name: s(&v, "name"),
            status: s(&v, "status"),
            locked: b(&v, "lockedFlag"),
            project_type,
            schedule_defined: b(&v, "scheduleDefinedFlag"),
            schedule_applicable: b(&v, "scheduleApplicableFlag")
                || s(&v, "pattern").eq_ignore_ascii_case("Scheduled"),
            last_updated: s(&v, "lastUpdated"),
            last_updated_by: s(&v, "lastUpdatedBy"),
            connections: connections_of(&v),
            lookups: ids_of(&v, &["dependencies", "lookups"], "name"),
            project_code: opt_s(&v, "projectCode").filter(|s| !s.is_empty()),
            id,
            code,
            version,
        }
        .into()
    }

    /// The typed id (`None` if the item had neither `id` nor `code`/`version`).
    pub fn integration_id(&self) -> Option<IntegrationId> {
        if self.code.is_empty() || self.version.is_empty() {
            None
        } else {
            Some(IntegrationId::new(&self.code, &self.version))
        }
    }
}

/// What to do when the integration already exists on the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportMode {
    /// Stop its schedule, deactivate it and replace it (`PUT /integrations/archive`).
    Overwrite,
    /// Leave it alone.
    SkipExisting,
}

/// What an import did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportAction {
    /// It did not exist: `POST /integrations/archive`.
    Created,
    /// It existed and was replaced: `PUT /integrations/archive`.
    Replaced,
    /// It existed and [`ImportMode::SkipExisting`] left it alone.
    Skipped,
}

impl ImportAction {
    /// `created`, `replaced`, `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportAction::Created => "created",
            ImportAction::Replaced => "replaced",
            ImportAction::Skipped => "skipped",
        }
    }
}

/// The result of [`super::OicClient::import_integration`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportOutcome {
    /// What was done.
    pub action: ImportAction,
    /// The status the target had before (None when it did not exist).
    pub previous_status: Option<String>,
}

impl ImportOutcome {
    /// The artifact did not exist and was created.
    pub fn created() -> ImportOutcome {
        ImportOutcome {
            action: ImportAction::Created,
            previous_status: None,
        }
    }
    /// The artifact existed (with `previous_status`) and `action` was done to it.
    pub fn existing(action: ImportAction, previous_status: Option<String>) -> ImportOutcome {
        ImportOutcome {
            action,
            previous_status,
        }
    }
}

/// How to activate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivateOptions {
    /// Send `enableAsyncActivationMode=true` and poll `activationStatus`.
    pub async_mode: bool,
    /// How long to poll before giving up.
    pub timeout: Duration,
    /// Pause between two polls.
    pub poll_interval: Duration,
    /// `tracingEnabledFlag` (not sent when None).
    pub tracing: Option<bool>,
    /// `payloadTracingEnabledFlag` (not sent when None).
    pub payload_tracing: Option<bool>,
}

impl Default for ActivateOptions {
    fn default() -> Self {
        ActivateOptions {
            async_mode: true,
            timeout: Duration::from_secs(300),
            poll_interval: Duration::from_secs(3),
            tracing: None,
            payload_tracing: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn id_parse_display_encode() {
        let id = IntegrationId::parse("HELLO_WORLD|01.00.0000").unwrap();
        assert_eq!(id.code, "HELLO_WORLD");
        assert_eq!(id.version, "01.00.0000");
        assert_eq!(id.to_string(), "HELLO_WORLD|01.00.0000");
        assert_eq!(id.path_segment(), "HELLO_WORLD%7C01.00.0000");
        assert_eq!(
            IntegrationId::parse(" A | 01.00.0000 ")
                .unwrap()
                .to_string(),
            "A|01.00.0000"
        );
        let id: IntegrationId = "X-Y|1.0".parse().unwrap();
        assert_eq!(id.path_segment(), "X-Y%7C1.0");
        assert_eq!(
            IntegrationId::new("A B/C", "1").path_segment(),
            "A%20B%2FC%7C1"
        );
        for bad in ["", "A", "|1", "A|", "A|1|2"] {
            let e = IntegrationId::parse(bad).unwrap_err();
            assert_eq!(e.kind(), "config", "{bad}");
        }
    }

    #[test]
    fn integration_tolerant() {
        let i = Integration::from_json(json!({
            "id": "HELLO_WORLD|01.00.0000", "code": "HELLO_WORLD", "version": "01.00.0000", "name": "Hello",
            "status": "ACTIVATED", "lockedFlag": true, "projectType": "DEVELOPED", "scheduleDefinedFlag": true,
            "lastUpdated": "2024", "lastUpdatedBy": "u",
            "dependencies": {"connections": [{"id": "SAMPLE_REST"}, {"id": "ATP"}], "lookups": [{"name": "L1"}]}
        }));
        assert_eq!(i.id, "HELLO_WORLD|01.00.0000");
        assert!(i.locked && i.schedule_defined);
        assert_eq!(i.connections, vec!["SAMPLE_REST", "ATP"]);
        assert_eq!(i.lookups, vec!["L1"]);
        assert_eq!(i.project_code, None);
        assert_eq!(
            i.integration_id().unwrap().to_string(),
            "HELLO_WORLD|01.00.0000"
        );

        let i = Integration::from_json(
            json!({"id": "A|01.00.0000", "lockedFlag": null, "dependencies": null}),
        );
        assert_eq!((i.code.as_str(), i.version.as_str()), ("A", "01.00.0000"));
        assert!(!i.locked);
        assert!(i.connections.is_empty());
        // A list item: no `dependencies`, the connections of its endpoints (each once).
        let i = Integration::from_json(json!({"id": "C|01.00.0000", "endPoints": [
            {"name": "Trigger", "role": "SOURCE", "connection": {"id": "REST_IN"}},
            {"name": "Call", "role": "TARGET", "connection": {"id": "ERP"}},
            {"name": "Again", "role": "TARGET", "connection": {"id": "REST_IN"}},
            {"name": "Odd", "connection": null}]}));
        assert_eq!(i.connections, vec!["REST_IN", "ERP"]);
        let i = Integration::from_json(
            json!({"code": "B", "version": "02.00.0000", "type": "PREBUILT", "projectCode": "P"}),
        );
        assert_eq!(i.id, "B|02.00.0000");
        assert_eq!(i.project_type, "PREBUILT");
        assert_eq!(i.project_code.as_deref(), Some("P"));
        let i = Integration::from_json(json!("garbage"));
        assert_eq!(i.id, "");
        assert!(i.integration_id().is_none());
    }
}
