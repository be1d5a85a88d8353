//! OIC's own whole-instance archive ("clone", `docs/oic-api.md` §7): asynchronous jobs under
//! `/ic/api/common/v1/`. `exportServiceInstanceArchive` writes the design-time metadata of the
//! instance to an Object Storage bucket; `importServiceInstanceArchive` reads it into another
//! instance. Each POST answers 202 with a job id; the job is polled with a GET until its
//! `overallStatus` is `COMPLETED` or `FAILED`. One job at a time per instance (409 otherwise).
//!
//! The status body (recorded, OIC 3): `{jobType, description?, startTime, endTime, archiveName?,
//! jobId, components[{name, status, percentage, resourceCount?, errorMessage?}], jobName,
//! overallStatus, importScheduleParams, includeSecurityArtifacts, startSchedules,
//! failureMessage?}`; `resourceCount` is a string.

use serde::Serialize;
use serde_json::{Value, json};

use super::http::{Body, Call};
use super::{OicClient, OicError};
use crate::config::Secret;

/// Prefix of the common (service-instance) API.
pub const COMMON: &str = "/ic/api/common/v1";

/// The Object Storage bucket a job writes to or reads from (Swift URL, user, auth token).
#[derive(Clone, Debug)]
pub struct StorageInfo {
    /// `https://swiftobjectstorage.<region>.oraclecloud.com/v1/<namespace>/<bucket>`.
    pub url: String,
    pub user: String,
    pub password: Secret,
}

impl StorageInfo {
    fn json(&self) -> Value {
        json!({
            "storageUrl": self.url,
            "storageUser": self.user,
            "storagePassword": self.password.expose(),
        })
    }
}

/// What `importActivateMode` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum ImportActivateMode {
    /// Import only; nothing is activated.
    ImportOnly,
    /// Activate what was active on the source, import nothing.
    ActivateOnly,
    /// Import, then activate what was active on the source.
    ImportActivate,
}

impl ImportActivateMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportActivateMode::ImportOnly => "ImportOnly",
            ImportActivateMode::ActivateOnly => "ActivateOnly",
            ImportActivateMode::ImportActivate => "ImportActivate",
        }
    }
}

/// A request to export the instance.
#[derive(Clone, Debug)]
pub struct InstanceExport {
    pub job_name: String,
    pub description: Option<String>,
    /// `exportSecurityArtifacts`: connection credentials and certificates travel too.
    pub security: bool,
    pub storage: StorageInfo,
}

/// A request to import an instance archive.
#[derive(Clone, Debug)]
pub struct InstanceImport {
    /// The `archiveName` of the export job.
    pub archive_file: String,
    pub job_name: String,
    pub description: Option<String>,
    pub mode: ImportActivateMode,
    /// `importSecurityArtifacts`.
    pub security: bool,
    /// `startSchedules`: start the schedules that ran on the source.
    pub start_schedules: bool,
    /// `importScheduleParams`.
    pub schedule_params: bool,
    pub storage: StorageInfo,
}

/// Export or import.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveJobKind {
    Export,
    Import,
}

impl ArchiveJobKind {
    fn path(self) -> String {
        match self {
            ArchiveJobKind::Export => format!("{COMMON}/exportServiceInstanceArchive"),
            ArchiveJobKind::Import => format!("{COMMON}/importServiceInstanceArchive"),
        }
    }
}

/// One component of a job (`integration`, ...).
#[derive(Clone, Debug, Serialize)]
pub struct JobComponent {
    pub name: String,
    pub status: String,
    pub percentage: u32,
    pub resource_count: Option<u64>,
    pub error: Option<String>,
}

/// The state of an instance archive job.
#[derive(Clone, Debug, Serialize)]
pub struct ArchiveJob {
    pub job_id: String,
    /// `EXPORT` or `IMPORT`.
    pub job_type: String,
    pub job_name: String,
    /// The archive an export wrote (what an import names in `archiveFile`).
    pub archive_name: Option<String>,
    /// `overallStatus`: `IN_PROGRESS`, `COMPLETED`, `FAILED` (others possible).
    pub status: String,
    pub components: Vec<JobComponent>,
    pub failure: Option<String>,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
}

impl ArchiveJob {
    /// `COMPLETED` or `FAILED` (or any status OIC ends a job with other than "in progress").
    pub fn finished(&self) -> bool {
        !matches!(
            self.status.as_str(),
            "IN_PROGRESS" | "NOT_STARTED" | "RUNNING" | "SUBMITTED" | ""
        )
    }
    pub fn succeeded(&self) -> bool {
        self.status == "COMPLETED"
    }
    /// Resources the job exported or imported (sum over the components).
    pub fn resources(&self) -> u64 {
        self.components
            .iter()
            .filter_map(|c| c.resource_count)
            .sum()
    }

    fn from_json(v: &Value) -> ArchiveJob {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let count = |c: &Value| match c.get("resourceCount") {
            Some(Value::String(s)) => s.trim().parse().ok(),
            Some(Value::Number(n)) => n.as_u64(),
            _ => None,
        };
        let components = v
            .get("components")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|c| JobComponent {
                        name: c["name"].as_str().unwrap_or_default().to_string(),
                        status: c["status"].as_str().unwrap_or_default().to_string(),
                        percentage: c["percentage"].as_u64().unwrap_or(0).min(100) as u32,
                        resource_count: count(c),
                        error: c["errorMessage"].as_str().map(str::to_string),
                    })
                    .collect()
            })
            .unwrap_or_default();
        ArchiveJob {
            job_id: s("jobId").unwrap_or_default(),
            job_type: s("jobType").unwrap_or_default(),
            job_name: s("jobName").unwrap_or_default(),
            archive_name: s("archiveName").or_else(|| s("archiveFile")),
            status: s("overallStatus")
                .or_else(|| s("status"))
                .unwrap_or_default(),
            components,
            failure: s("failureMessage").or_else(|| s("message")),
            start_time: s("startTime"),
            end_time: s("endTime"),
        }
    }
}

impl OicClient {
    /// `POST /ic/api/common/v1/exportServiceInstanceArchive`: starts the export; returns the job id.
    pub async fn start_instance_export(&self, r: &InstanceExport) -> Result<String, OicError> {
        let mut body = json!({
            "jobName": r.job_name,
            "exportSecurityArtifacts": r.security,
            "storageInfo": r.storage.json(),
        });
        if let Some(d) = &r.description {
            body["description"] = json!(d);
        }
        self.start_job(ArchiveJobKind::Export, body).await
    }

    /// `POST /ic/api/common/v1/importServiceInstanceArchive`: starts the import; returns the job id.
    pub async fn start_instance_import(&self, r: &InstanceImport) -> Result<String, OicError> {
        let mut body = json!({
            "archiveFile": r.archive_file,
            "jobName": r.job_name,
            "importActivateMode": r.mode.as_str(),
            "importSecurityArtifacts": r.security,
            "startSchedules": r.start_schedules,
            "importScheduleParams": r.schedule_params,
            "storageInfo": r.storage.json(),
        });
        if let Some(d) = &r.description {
            body["description"] = json!(d);
        }
        self.start_job(ArchiveJobKind::Import, body).await
    }

    async fn start_job(&self, kind: ArchiveJobKind, body: Value) -> Result<String, OicError> {
        // 409: another job is running (its own meaning; the ops layer matches it with the jobs)
        let call = Call::post(kind.path()).own_409().body(Body::Json(body));
        let path = call.path.clone();
        let v = self.json(call).await?;
        v.get("jobId")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| OicError::Protocol {
                instance: self.name().to_string(),
                method: "POST".into(),
                path,
                message: "the answer carries no jobId".into(),
            })
    }

    /// `GET …/exportServiceInstanceArchive/{jobId}` or `…/importServiceInstanceArchive/{jobId}`.
    pub async fn instance_archive_job(
        &self,
        kind: ArchiveJobKind,
        job_id: &str,
    ) -> Result<ArchiveJob, OicError> {
        let path = format!("{}/{}", kind.path(), super::encode_segment(job_id));
        let v = self.json(Call::get(path)).await?;
        let mut j = ArchiveJob::from_json(&v);
        if j.job_id.is_empty() {
            j.job_id = job_id.to_string();
        }
        Ok(j)
    }

    /// `GET /ic/api/common/v1/serviceInstance/jobs`: the instance's export and import jobs,
    /// newest first (first page of 100).
    pub async fn instance_archive_jobs(&self) -> Result<Vec<ArchiveJob>, OicError> {
        let v = self
            .json(Call::get(format!("{COMMON}/serviceInstance/jobs")).query("limit", "100"))
            .await?;
        Ok(v.get("items")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(ArchiveJob::from_json).collect())
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_failed_job_reads_back() {
        let v: Value = serde_json::from_str(
            r#"{"jobType":"EXPORT","startTime":"2024-10-30T12:54:09.953+0000","endTime":"x","archiveName":"export_X_1","jobId":"1344eeaf","components":[{"name":"integration","status":"FAILED","percentage":0,"resourceCount":"0","errorMessage":"Failed to export the data"}],"jobName":"export_X_1","overallStatus":"FAILED","importScheduleParams":false,"includeSecurityArtifacts":true,"startSchedules":false,"failureMessage":"Failed to export the data"}"#,
        )
        .unwrap();
        let j = ArchiveJob::from_json(&v);
        assert!(j.finished() && !j.succeeded());
        assert_eq!(j.archive_name.as_deref(), Some("export_X_1"));
        assert_eq!(j.failure.as_deref(), Some("Failed to export the data"));
        assert_eq!(j.components[0].resource_count, Some(0));
        let running = ArchiveJob::from_json(&serde_json::json!({"overallStatus":"IN_PROGRESS"}));
        assert!(!running.finished());
    }
}
