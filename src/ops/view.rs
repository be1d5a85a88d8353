//! How an integration and an artifact read in a script and in the REPL: one line of text
//! (`to_string`, `print`) and their fields as a map (`to_map`, `to_json`).

use serde::Serialize;

use crate::artifact::Artifact;
use crate::oic::Integration;

/// An integration's fields as scripts see them (`to_map`).
#[derive(Debug, Serialize)]
pub struct IntegrationView<'a> {
    /// `CODE|VERSION`.
    pub id: String,
    pub code: &'a str,
    pub version: &'a str,
    pub name: &'a str,
    pub status: &'a str,
    pub locked: bool,
    /// A schedule is defined.
    pub scheduled: bool,
    pub project_type: &'a str,
    /// The OIC 3 project, `()` for a global integration.
    pub project: Option<&'a str>,
    pub last_updated: &'a str,
    pub last_updated_by: &'a str,
    pub connections: &'a [String],
    pub lookups: &'a [String],
}

impl<'a> IntegrationView<'a> {
    pub fn of(i: &'a Integration) -> Self {
        IntegrationView {
            id: format!("{}|{}", i.code, i.version),
            code: &i.code,
            version: &i.version,
            name: &i.name,
            status: &i.status,
            locked: i.locked,
            scheduled: i.schedule_defined,
            project_type: &i.project_type,
            project: i.project_code.as_deref(),
            last_updated: &i.last_updated,
            last_updated_by: &i.last_updated_by,
            connections: &i.connections,
            lookups: &i.lookups,
        }
    }
}

/// An artifact's fields as scripts see them (`to_map`).
#[derive(Debug, Serialize)]
pub struct ArtifactView<'a> {
    /// `integration`, `project`, `lookup`, `library`, `package`, `schedule`.
    pub kind: &'static str,
    /// `CODE|VERSION` (the code alone for kinds without a version).
    pub id: String,
    pub code: &'a str,
    pub version: &'a str,
    /// Bytes (scripts' integers are i64).
    pub size: i64,
    pub sha256: &'a str,
    pub source: &'a str,
    /// The status on the source, `()` when unknown.
    pub source_status: Option<&'a str>,
}

impl<'a> ArtifactView<'a> {
    pub fn of(a: &'a Artifact) -> Self {
        ArtifactView {
            kind: a.key.kind.as_str(),
            id: a.key.id(),
            code: &a.key.code,
            version: &a.key.version,
            size: i64::try_from(a.size).unwrap_or(i64::MAX),
            sha256: &a.sha256,
            source: &a.source,
            source_status: a.source_status.as_deref(),
        }
    }
}

/// `CODE|VERSION  STATUS  Name`, then `[locked]` and `[scheduled]` when they apply.
pub fn integration_text(i: &Integration) -> String {
    let locked = if i.locked { "  [locked]" } else { "" };
    let scheduled = if i.schedule_defined {
        "  [scheduled]"
    } else {
        ""
    };
    format!(
        "{}|{}  {}  {}{locked}{scheduled}",
        i.code, i.version, i.status, i.name
    )
}

/// `kind CODE|VERSION (size bytes, sha256 prefix…, from SOURCE)`, or `(planned, from SOURCE)`
/// for the artifact of a dry run.
pub fn artifact_text(a: &Artifact) -> String {
    if a.is_planned() {
        return format!("{} {} (planned, from {})", a.key.kind, a.key.id(), a.source);
    }
    format!(
        "{} {} ({} bytes, sha256 {}…, from {})",
        a.key.kind,
        a.key.id(),
        a.size,
        a.sha256.get(..12).unwrap_or(&a.sha256),
        a.source
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::{ArtifactKey, ArtifactKind};
    use serde_json::json;

    fn integration() -> Integration {
        Integration::from_json(json!({
            "id": "HR_SYNC|01.00.0000", "name": "HR sync", "status": "ACTIVATED", "lockedFlag": true,
            "scheduleDefinedFlag": true, "projectType": "DEVELOPED", "lastUpdated": "2026-01-02",
            "lastUpdatedBy": "jane@example.com",
            "dependencies": {"connections": [{"id": "HCM"}], "lookups": [{"name": "L1"}]}
        }))
    }

    #[test]
    fn integration_as_text_and_map() {
        let i = integration();
        assert_eq!(
            integration_text(&i),
            "HR_SYNC|01.00.0000  ACTIVATED  HR sync  [locked]  [scheduled]"
        );
        let plain = Integration::from_json(
            json!({"code": "A", "version": "01.00.0000", "status": "CONFIGURED", "name": "A"}),
        );
        assert_eq!(integration_text(&plain), "A|01.00.0000  CONFIGURED  A");
        let m = serde_json::to_value(IntegrationView::of(&i)).unwrap();
        assert_eq!(
            m,
            json!({"id": "HR_SYNC|01.00.0000", "code": "HR_SYNC", "version": "01.00.0000",
                "name": "HR sync", "status": "ACTIVATED", "locked": true, "scheduled": true,
                "project_type": "DEVELOPED", "project": null, "last_updated": "2026-01-02",
                "last_updated_by": "jane@example.com", "connections": ["HCM"], "lookups": ["L1"]})
        );
    }

    #[test]
    fn artifact_as_text_and_map() {
        let key = ArtifactKey::new(ArtifactKind::Lookup, "COUNTRIES", "");
        let a = Artifact::planned(key, "dev", None);
        assert_eq!(artifact_text(&a), "lookup COUNTRIES (planned, from dev)");
        let m = serde_json::to_value(ArtifactView::of(&a)).unwrap();
        assert_eq!(m["kind"], "lookup");
        assert_eq!(m["id"], "COUNTRIES");
        assert_eq!(m["source_status"], serde_json::Value::Null);
        let key = ArtifactKey::new(ArtifactKind::Integration, "HR_SYNC", "01.00.0000");
        let sha = "0123456789abcdef".repeat(4);
        let mut a = Artifact::from_path(key, "/nowhere".into(), 2048, sha, "dev");
        a.source_status = Some("ACTIVATED".into());
        assert_eq!(
            artifact_text(&a),
            "integration HR_SYNC|01.00.0000 (2048 bytes, sha256 0123456789ab…, from dev)"
        );
        let m = serde_json::to_value(ArtifactView::of(&a)).unwrap();
        assert_eq!(
            (&m["id"], &m["size"], &m["source_status"]),
            (
                &json!("HR_SYNC|01.00.0000"),
                &json!(2048),
                &json!("ACTIVATED")
            )
        );
    }
}
