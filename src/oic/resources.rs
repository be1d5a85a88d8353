//! Lookups and JavaScript libraries (list, get, export, import) and monitoring statistics.

use serde_json::Value;

use super::http::{API, Body, Call};
use super::types::{b, encode_segment, opt_s, s};
use super::{ImportAction, ImportMode, ImportOutcome, IntegrationId, OicClient, OicError};
use crate::artifact::{Artifact, ArtifactKey, ArtifactKind};

/// A lookup (domain value map) as listed or fetched.
#[derive(Clone, Debug, PartialEq)]
pub struct Lookup {
    /// The lookup name (its id).
    pub name: String,
    /// The description.
    pub description: String,
    /// Column (domain) names.
    pub columns: Vec<String>,
    /// `rowCount`.
    pub row_count: u64,
    /// `status`.
    pub status: String,
    /// `lockedFlag`.
    pub locked: bool,
    /// The whole JSON object as received.
    pub raw: Value,
}

impl Lookup {
    /// Reads a lookup from its JSON object; never fails.
    pub fn from_json(v: Value) -> Lookup {
        let columns = match v.get("columns") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|c| c.as_str().map(str::to_string).or_else(|| opt_s(c, "name")))
                .collect(),
            _ => vec![],
        };
        Lookup {
            name: opt_s(&v, "name")
                .or_else(|| opt_s(&v, "id"))
                .unwrap_or_default(),
            description: s(&v, "description"),
            columns,
            row_count: num(&v, "rowCount"),
            status: s(&v, "status"),
            locked: b(&v, "lockedFlag"),
            raw: v,
        }
    }
}

/// A JavaScript library as listed or fetched.
#[derive(Clone, Debug, PartialEq)]
pub struct Library {
    /// `CODE|VERSION`.
    pub id: String,
    /// The library code.
    pub code: String,
    /// The library version.
    pub version: String,
    /// `displayName`.
    pub display_name: String,
    /// `libraryType` (`API`).
    pub library_type: String,
    /// `status`.
    pub status: String,
    /// `lockedFlag`.
    pub locked: bool,
    /// The whole JSON object as received.
    pub raw: Value,
}

impl Library {
    /// Reads a library from its JSON object; never fails.
    pub fn from_json(v: Value) -> Library {
        let id = s(&v, "id");
        let parsed = IntegrationId::parse(&id).ok();
        let code = opt_s(&v, "code")
            .or_else(|| parsed.as_ref().map(|p| p.code.clone()))
            .unwrap_or_default();
        let version = opt_s(&v, "version")
            .or_else(|| parsed.as_ref().map(|p| p.version.clone()))
            .unwrap_or_default();
        Library {
            id: if id.is_empty() && !code.is_empty() {
                format!("{code}|{version}")
            } else {
                id
            },
            code,
            version,
            display_name: opt_s(&v, "displayName")
                .or_else(|| opt_s(&v, "name"))
                .unwrap_or_default(),
            library_type: opt_s(&v, "libraryType")
                .or_else(|| opt_s(&v, "type"))
                .unwrap_or_default(),
            status: s(&v, "status"),
            locked: b(&v, "lockedFlag"),
            raw: v,
        }
    }
}

/// Monitoring figures for one integration (`/monitoring/integrations/{id}`).
#[derive(Clone, Debug, PartialEq)]
pub struct IntegrationStats {
    /// `CODE|VERSION` (from `id`, or `code`/`version`).
    pub id: String,
    /// `noOfMsgsReceived`.
    pub received: u64,
    /// `noOfMsgsProcessed`.
    pub processed: u64,
    /// `noOfSuccess`.
    pub succeeded: u64,
    /// `noOfErrors`.
    pub errors: u64,
    /// `noOfAborted`.
    pub aborted: u64,
    /// `successRate` as sent (a percentage).
    pub success_rate: f64,
    /// `flowStatus`.
    pub flow_status: String,
    /// The whole JSON object as received.
    pub raw: Value,
}

impl IntegrationStats {
    /// Reads the figures from their JSON object; never fails.
    pub fn from_json(v: Value) -> IntegrationStats {
        let id = opt_s(&v, "id")
            .filter(|x| x.contains('|'))
            .unwrap_or_else(|| match (opt_s(&v, "code"), opt_s(&v, "version")) {
                (Some(c), Some(ver)) => format!("{c}|{ver}"),
                _ => s(&v, "id"),
            });
        let success_rate = match v.get("successRate") {
            Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
            Some(Value::String(x)) => x.trim_end_matches('%').trim().parse().unwrap_or(0.0),
            _ => 0.0,
        };
        IntegrationStats {
            id,
            received: num(&v, "noOfMsgsReceived"),
            processed: num(&v, "noOfMsgsProcessed"),
            succeeded: num(&v, "noOfSuccess"),
            errors: num(&v, "noOfErrors"),
            aborted: num(&v, "noOfAborted"),
            success_rate,
            flow_status: s(&v, "flowStatus"),
            raw: v,
        }
    }
}

/// The instances of an integration in a period, by status (`GET /monitoring/instances`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct InstanceCounts {
    pub total: u64,
    pub completed: u64,
    pub failed: u64,
    pub aborted: u64,
    /// Any other status (`IN_PROGRESS`, `RECOVERING`, ...).
    pub in_progress: u64,
}

impl InstanceCounts {
    /// Failed and aborted instances over all of them (0 when there were none).
    pub fn error_rate(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            (self.failed + self.aborted) as f64 / self.total as f64
        }
    }
}

/// A package (Gen2 grouping of integrations) as listed or fetched.
#[derive(Clone, Debug, PartialEq)]
pub struct Package {
    /// The package name (its id).
    pub name: String,
    /// `type` (`DEVELOPED`, `PREBUILT`...).
    pub package_type: String,
    /// The integrations it holds, with their status when sent.
    pub integrations: Vec<super::Integration>,
    /// The whole JSON object as received.
    pub raw: Value,
}

impl Package {
    /// Reads a package from its JSON object; never fails. Integrations may be objects or
    /// `CODE|VERSION` strings.
    pub fn from_json(v: Value) -> Package {
        let integrations = match v.get("integrations") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| match x {
                    Value::String(id) => {
                        super::Integration::from_json(serde_json::json!({ "id": id }))
                    }
                    o => super::Integration::from_json(o.clone()),
                })
                .collect(),
            _ => vec![],
        };
        Package {
            name: opt_s(&v, "name")
                .or_else(|| opt_s(&v, "id"))
                .unwrap_or_default(),
            package_type: opt_s(&v, "type").unwrap_or_default(),
            integrations,
            raw: v,
        }
    }
}

fn num(v: &Value, k: &str) -> u64 {
    match v.get(k) {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().map(|f| f.max(0.0) as u64))
            .unwrap_or(0),
        Some(Value::String(x)) => x.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

fn lookup_path(name: &str) -> String {
    format!("{API}/lookups/{}", encode_segment(name))
}

fn library_path(id: &IntegrationId) -> String {
    format!("{API}/libraries/{}", id.path_segment())
}

impl OicClient {
    // ------------------------------------------------------------------ lookups

    /// All lookups, paged.
    pub async fn list_lookups(&self, q: Option<&str>) -> Result<Vec<Lookup>, OicError> {
        self.list_as(&format!("{API}/lookups"), q, Lookup::from_json)
            .await
    }

    /// One lookup; `None` on 404.
    pub async fn get_lookup(&self, name: &str) -> Result<Option<Lookup>, OicError> {
        self.get_as(Call::get(lookup_path(name)), Lookup::from_json)
            .await
    }

    /// Exports a lookup (`GET /lookups/{name}/archive`, CSV) to a temporary file.
    pub async fn export_lookup(&self, name: &str) -> Result<Artifact, OicError> {
        let key = ArtifactKey::new(ArtifactKind::Lookup, name, "");
        self.export_resource(format!("{}/archive", lookup_path(name)), key, "lookup")
            .await
    }

    /// Downloads `path` to a temporary file as the artifact `key` (a `what`), refusing an empty
    /// export.
    async fn export_resource(
        &self,
        path: String,
        key: ArtifactKey,
        what: &str,
    ) -> Result<Artifact, OicError> {
        let (temp, size, sha) = self.download(Call::get(path).download()).await?;
        if size == 0 {
            return Err(OicError::Archive {
                artifact: format!("{what} {} exported from {}", key.id(), self.name()),
                message: "the export is empty".into(),
            });
        }
        Ok(Artifact::from_temp(key, temp, size, sha, self.name()))
    }

    /// Imports a lookup CSV: `GET /lookups/{name}`; 404 → `POST /lookups/archive`; exists →
    /// `PUT /lookups/archive` ([`ImportMode::Overwrite`]) or nothing ([`ImportMode::SkipExisting`]).
    pub async fn import_lookup(
        &self,
        a: &Artifact,
        mode: ImportMode,
    ) -> Result<ImportOutcome, OicError> {
        if a.key.kind != ArtifactKind::Lookup {
            return Err(OicError::Archive {
                artifact: a.key.to_string(),
                message: "not a lookup export".into(),
            });
        }
        let body = || Body::File {
            path: a.path().to_path_buf(),
            file_name: a.file_name(),
            fields: vec![],
        };
        match self.get_lookup(&a.key.code).await? {
            None => {
                self.empty(
                    Call::post(format!("{API}/lookups/archive"))
                        .create()
                        .body(body()),
                )
                .await?;
                Ok(ImportOutcome::created())
            }
            Some(cur) => {
                let prev = Some(cur.status).filter(|s| !s.is_empty());
                if mode == ImportMode::SkipExisting {
                    return Ok(ImportOutcome::existing(ImportAction::Skipped, prev));
                }
                self.empty(
                    Call::new(reqwest::Method::PUT, format!("{API}/lookups/archive")).body(body()),
                )
                .await?;
                Ok(ImportOutcome::existing(ImportAction::Replaced, prev))
            }
        }
    }

    // ---------------------------------------------------------------- libraries

    /// All JavaScript libraries, paged.
    pub async fn list_libraries(&self, q: Option<&str>) -> Result<Vec<Library>, OicError> {
        self.list_as(&format!("{API}/libraries"), q, Library::from_json)
            .await
    }

    /// One library; `None` on 404.
    pub async fn get_library(&self, id: &IntegrationId) -> Result<Option<Library>, OicError> {
        self.get_as(Call::get(library_path(id)), Library::from_json)
            .await
    }

    /// Exports a library (`GET /libraries/{id}/archive`, `.jar`) to a temporary file.
    pub async fn export_library(&self, id: &IntegrationId) -> Result<Artifact, OicError> {
        let key = ArtifactKey::new(ArtifactKind::Library, &id.code, &id.version);
        self.export_resource(format!("{}/archive", library_path(id)), key, "library")
            .await
    }

    /// Imports a library: `GET /libraries/{id}`; 404 → `POST /libraries/archive` (multipart
    /// `file`, `name`, `code`, `version`, `type=API`); exists → `POST /libraries/{id}/archive`
    /// ([`ImportMode::Overwrite`]) or nothing. `display_name` defaults to the code.
    pub async fn import_library(
        &self,
        a: &Artifact,
        display_name: Option<&str>,
        mode: ImportMode,
    ) -> Result<ImportOutcome, OicError> {
        if a.key.kind != ArtifactKind::Library || a.key.version.is_empty() {
            return Err(OicError::Archive {
                artifact: a.key.to_string(),
                message: "not a library archive with a code and version".into(),
            });
        }
        let id = IntegrationId::new(&a.key.code, &a.key.version);
        match self.get_library(&id).await? {
            None => {
                let fields = vec![
                    (
                        "name".to_string(),
                        display_name.unwrap_or(&a.key.code).to_string(),
                    ),
                    ("code".to_string(), a.key.code.clone()),
                    ("version".to_string(), a.key.version.clone()),
                    ("type".to_string(), "API".to_string()),
                    ("description".to_string(), String::new()),
                ];
                let body = Body::File {
                    path: a.path().to_path_buf(),
                    file_name: a.file_name(),
                    fields,
                };
                self.empty(
                    Call::post(format!("{API}/libraries/archive"))
                        .create()
                        .body(body),
                )
                .await?;
                Ok(ImportOutcome::created())
            }
            Some(cur) => {
                let prev = Some(cur.status).filter(|s| !s.is_empty());
                if mode == ImportMode::SkipExisting {
                    return Ok(ImportOutcome::existing(ImportAction::Skipped, prev));
                }
                let body = Body::File {
                    path: a.path().to_path_buf(),
                    file_name: a.file_name(),
                    fields: vec![],
                };
                self.empty(Call::post(format!("{}/archive", library_path(&id))).body(body))
                    .await?;
                Ok(ImportOutcome::existing(ImportAction::Replaced, prev))
            }
        }
    }

    // ----------------------------------------------------------------- packages

    /// All packages, paged.
    pub async fn list_packages(&self, q: Option<&str>) -> Result<Vec<Package>, OicError> {
        self.list_as(&format!("{API}/packages"), q, Package::from_json)
            .await
    }

    /// One package; `None` on 404.
    pub async fn get_package(&self, name: &str) -> Result<Option<Package>, OicError> {
        self.get_as(
            Call::get(format!("{API}/packages/{}", encode_segment(name))),
            Package::from_json,
        )
        .await
    }

    /// Exports a package (`GET /packages/{name}/archive`, `.par`) to a temporary file and checks
    /// that it is a zip archive.
    pub async fn export_package(&self, name: &str) -> Result<Artifact, OicError> {
        let call = Call::get(format!("{API}/packages/{}/archive", encode_segment(name))).download();
        let (temp, size, sha) = self.download(call).await?;
        let p = temp.to_path_buf();
        let what = format!("package {name} exported from {}", self.name());
        tokio::task::spawn_blocking(move || super::archive::check_zip(&p))
            .await
            .map_err(|e| OicError::Config(format!("archive inspection task failed: {e}")))?
            .map_err(|e| match e {
                OicError::Archive { message, .. } => OicError::Archive {
                    artifact: what.clone(),
                    message,
                },
                o => o,
            })?;
        Ok(Artifact::from_temp(
            ArtifactKey::new(ArtifactKind::Package, name, ""),
            temp,
            size,
            sha,
            self.name(),
        ))
    }

    /// Imports a `.par`: `GET /packages/{name}`; 404 → `POST /packages/archive`; exists →
    /// [`ImportMode::Overwrite`] deactivates its active integrations (412 ignored) and
    /// `PUT /packages/archive`; [`ImportMode::SkipExisting`] does nothing.
    pub async fn import_package(
        &self,
        a: &Artifact,
        mode: ImportMode,
    ) -> Result<ImportOutcome, OicError> {
        if a.key.kind != ArtifactKind::Package {
            return Err(OicError::Archive {
                artifact: a.key.to_string(),
                message: "not a package archive".into(),
            });
        }
        let p = a.path().to_path_buf();
        tokio::task::spawn_blocking(move || super::archive::check_zip(&p))
            .await
            .map_err(|e| OicError::Config(format!("archive inspection task failed: {e}")))??;
        let body = || Body::File {
            path: a.path().to_path_buf(),
            file_name: a.file_name(),
            fields: vec![],
        };
        match self.get_package(&a.key.code).await? {
            None => {
                self.empty(
                    Call::post(format!("{API}/packages/archive"))
                        .create()
                        .body(body()),
                )
                .await?;
                Ok(ImportOutcome::created())
            }
            Some(cur) => {
                if mode == ImportMode::SkipExisting {
                    return Ok(ImportOutcome::existing(ImportAction::Skipped, None));
                }
                for i in &cur.integrations {
                    if let Some(iid) = i.integration_id() {
                        let status = if i.status.is_empty() {
                            self.activation_status(&iid).await?
                        } else {
                            i.status.clone()
                        };
                        if status == "ACTIVATED" || status == "ACTIVATION_INPROGRESS" {
                            self.deactivate(&iid).await?;
                        }
                    }
                }
                self.empty(
                    Call::new(reqwest::Method::PUT, format!("{API}/packages/archive")).body(body()),
                )
                .await?;
                Ok(ImportOutcome::existing(ImportAction::Replaced, None))
            }
        }
    }

    // ------------------------------------------------------------------ deletes

    /// `DELETE /lookups/{name}` (412 while an active integration uses it).
    pub async fn delete_lookup(&self, name: &str) -> Result<(), OicError> {
        self.empty(Call::new(reqwest::Method::DELETE, lookup_path(name)))
            .await
            .map(|_| ())
    }

    /// `DELETE /libraries/{id}` (412 while an active integration uses it).
    pub async fn delete_library(&self, id: &IntegrationId) -> Result<(), OicError> {
        self.empty(Call::new(reqwest::Method::DELETE, library_path(id)))
            .await
            .map(|_| ())
    }

    /// `DELETE /packages/{name}` (412 while one of its integrations is active).
    pub async fn delete_package(&self, name: &str) -> Result<(), OicError> {
        self.empty(Call::new(
            reqwest::Method::DELETE,
            format!("{API}/packages/{}", encode_segment(name)),
        ))
        .await
        .map(|_| ())
    }

    // --------------------------------------------------------------- monitoring

    /// `GET /monitoring/integrations/{id}?q={timewindow:'<window>'}` (`1h`, `6h`, `1d`, `2d`,
    /// `3d`, `RETENTIONPERIOD`); `None` on 404.
    pub async fn integration_stats(
        &self,
        id: &IntegrationId,
        timewindow: &str,
    ) -> Result<Option<IntegrationStats>, OicError> {
        let call = Call::get(format!(
            "{API}/monitoring/integrations/{}",
            id.path_segment()
        ))
        .query("q", format!("{{timewindow:'{timewindow}'}}"));
        match self.json(call).await {
            Ok(v) => {
                let mut st = IntegrationStats::from_json(v);
                if st.id.is_empty() {
                    st.id = id.to_string();
                }
                Ok(Some(st))
            }
            Err(e) if e.is_status(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The instances of integration `id` created since `since`, counted by status:
    /// `GET /monitoring/instances?q={code:'C', version:'V', startdate:'yyyy-MM-dd HH:mm:ss'}` (the date
    /// in UTC, as Oracle's reference documents `startdate`), every page.
    pub async fn instance_counts_since(
        &self,
        id: &IntegrationId,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<InstanceCounts, OicError> {
        let q = format!(
            "{{code:'{}', version:'{}', startdate:'{}'}}",
            id.code,
            id.version,
            since.format("%Y-%m-%d %H:%M:%S")
        );
        let statuses = self
            .list_as(&format!("{API}/monitoring/instances"), Some(&q), |v| {
                s(&v, "status")
            })
            .await?;
        let mut c = InstanceCounts::default();
        for st in statuses {
            c.total += 1;
            match st.to_ascii_uppercase().as_str() {
                "COMPLETED" => c.completed += 1,
                "FAILED" => c.failed += 1,
                "ABORTED" => c.aborted += 1,
                _ => c.in_progress += 1,
            }
        }
        Ok(c)
    }

    /// Calls a REST trigger (`path`: below the host, e.g.
    /// `/ic/api/integration/v1/flows/rest/HELLO/1.0/ping`) with `method` and an optional JSON body;
    /// the answer's JSON (`null` when empty). A 4xx/5xx answer is an error.
    pub async fn call_rest_trigger(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, OicError> {
        let m = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| OicError::Config(format!("`{method}` is not an HTTP method")))?;
        if !path.starts_with('/') {
            return Err(OicError::Config(format!(
                "a REST trigger path starts with `/`: `{path}`"
            )));
        }
        // the integration's own answer: a 409 there is never the instance refusing parallel writes
        let mut call = Call::new(m, path.to_string()).own_409();
        if let Some(b) = body {
            call = call.body(Body::Json(b));
        }
        self.json(call).await
    }

    /// `GET /monitoring/integrations` (paged) with an optional `q`, e.g. `{timewindow:'1d'}`.
    pub async fn list_integration_stats(
        &self,
        q: Option<&str>,
    ) -> Result<Vec<IntegrationStats>, OicError> {
        self.list_as(
            &format!("{API}/monitoring/integrations"),
            q,
            IntegrationStats::from_json,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tolerant_resources() {
        let l = Lookup::from_json(
            json!({"name": "COUNTRIES", "columns": ["SRC", {"name": "TGT"}], "rowCount": "3", "lockedFlag": "true"}),
        );
        assert_eq!(l.columns, vec!["SRC", "TGT"]);
        assert_eq!(l.row_count, 3);
        assert!(l.locked);
        let lib = Library::from_json(
            json!({"id": "MATHS|01.00.0000", "displayName": "Maths", "libraryType": "API"}),
        );
        assert_eq!(
            (
                lib.code.as_str(),
                lib.version.as_str(),
                lib.display_name.as_str()
            ),
            ("MATHS", "01.00.0000", "Maths")
        );
        let st = IntegrationStats::from_json(
            json!({"code": "A", "version": "01.00.0000", "noOfMsgsReceived": 10, "noOfErrors": "2", "successRate": "80%", "flowStatus": "ACTIVATED"}),
        );
        assert_eq!(st.id, "A|01.00.0000");
        assert_eq!((st.received, st.errors), (10, 2));
        assert_eq!(st.success_rate, 80.0);
        assert_eq!(
            IntegrationStats::from_json(json!({"successRate": 99.5})).success_rate,
            99.5
        );
    }
}
