//! Service-instance export/import (§7): asynchronous jobs under `/ic/api/common/v1/`.
//!
//! Object Storage is emulated in memory: an export job stores a snapshot of the instance (integrations,
//! connections, lookups, libraries, packages, projects) under `<storageUrl>/<archiveFile>`; an import job on any
//! emulated instance reads it back from the same `storageUrl` + `archiveFile`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::extract::Api;
use super::integrations::{activate, connections_ready, is_active, json_status, refresh_statuses};
use super::state::{ConnStatus, Instance, InstanceData, IntStatus, oic_date};

/// Duration of a job (IN_PROGRESS → COMPLETED/FAILED).
pub const JOB_DURATION: Duration = Duration::from_millis(500);

/// Job kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// `exportServiceInstanceArchive`.
    Export,
    /// `importServiceInstanceArchive`.
    Import,
}

/// One job.
#[derive(Debug, Clone)]
pub struct Job {
    /// Id.
    pub id: String,
    /// Kind.
    pub kind: JobKind,
    /// Instance name.
    pub instance: String,
    /// Name given by the caller.
    pub name: String,
    /// `IN_PROGRESS`, `COMPLETED`, `FAILED`.
    pub status: String,
    /// Archive file name.
    pub archive_file: String,
    /// Storage URL.
    pub storage_url: String,
    /// Start.
    pub start: DateTime<Utc>,
    /// End.
    pub end: Option<DateTime<Utc>>,
    /// Failure message.
    pub message: Option<String>,
    /// Import mode.
    pub mode: Option<String>,
}

/// Jobs and the emulated bucket.
#[derive(Debug, Default)]
pub struct JobStore {
    jobs: Mutex<HashMap<String, Job>>,
    bucket: Mutex<HashMap<String, InstanceData>>,
    counter: Mutex<u64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn job_json(j: &Job) -> Value {
    let mut v = json!({
        "jobId": j.id,
        "jobName": j.name,
        "overallStatus": j.status,
        "archiveFile": j.archive_file,
        "storageUrl": j.storage_url,
        "startTime": oic_date(&j.start),
        "endTime": j.end.map(|e| oic_date(&e)),
    });
    if let Some(m) = &j.mode {
        v["importActivateMode"] = json!(m);
    }
    if let Some(m) = &j.message {
        v["message"] = json!(m);
    }
    v
}

struct Start {
    name: String,
    storage_url: String,
}

fn parse_start(body: &Bytes) -> ApiResult<(Value, Start)> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))?;
    let storage_url = v["storageInfo"]["storageUrl"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("storageInfo.storageUrl is required."))?
        .trim_end_matches('/')
        .to_string();
    if v["storageInfo"]["storageUser"]
        .as_str()
        .is_none_or(str::is_empty)
        || v["storageInfo"]["storagePassword"]
            .as_str()
            .is_none_or(str::is_empty)
    {
        return Err(ApiError::bad_request(
            "storageInfo.storageUser and storageInfo.storagePassword are required.",
        ));
    }
    let name = v["jobName"].as_str().unwrap_or("job").to_string();
    Ok((v, Start { name, storage_url }))
}

fn begin(
    api: &Api,
    kind: JobKind,
    s: Start,
    archive_file: String,
    mode: Option<String>,
) -> ApiResult<Job> {
    let store = &api.ctx.shared.jobs;
    let mut jobs = lock(&store.jobs);
    if jobs
        .values()
        .any(|j| j.instance == api.inst.ident.name && j.status == "IN_PROGRESS")
    {
        return Err(ApiError::conflict(
            "Another export or import job is running on this instance.",
        ));
    }
    let n = {
        let mut c = lock(&store.counter);
        *c += 1;
        *c
    };
    let job = Job {
        id: format!(
            "{}{:06}",
            api.inst
                .ident
                .name
                .to_uppercase()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>(),
            n
        ),
        kind,
        instance: api.inst.ident.name.clone(),
        name: s.name,
        status: "IN_PROGRESS".into(),
        archive_file,
        storage_url: s.storage_url,
        start: Utc::now(),
        end: None,
        message: None,
        mode,
    };
    jobs.insert(job.id.clone(), job.clone());
    Ok(job)
}

fn finish(shared: &Arc<super::state::Shared>, id: &str, result: Result<(), String>) {
    let mut jobs = lock(&shared.jobs.jobs);
    if let Some(j) = jobs.get_mut(id) {
        j.end = Some(Utc::now());
        match result {
            Ok(()) => j.status = "COMPLETED".into(),
            Err(m) => {
                j.status = "FAILED".into();
                j.message = Some(m);
            }
        }
    }
}

/// `POST /ic/api/common/v1/exportServiceInstanceArchive` → 202 with the job; 409 while a job runs.
pub async fn export_start(api: Api, body: Bytes) -> ApiResult<Response> {
    let (_, s) = parse_start(&body)?;
    let file = format!("{}_{}.zip", s.name, Utc::now().format("%Y%m%d%H%M%S"));
    let job = begin(&api, JobKind::Export, s, file, None)?;
    let snapshot = api.inst.lock().clone();
    let shared = api.ctx.shared.clone();
    let (id, key) = (
        job.id.clone(),
        format!("{}/{}", job.storage_url, job.archive_file),
    );
    tokio::spawn(async move {
        tokio::time::sleep(JOB_DURATION).await;
        lock(&shared.jobs.bucket).insert(key, snapshot);
        finish(&shared, &id, Ok(()));
    });
    Ok(json_status(StatusCode::ACCEPTED, &job_json(&job)))
}

/// Applies an instance archive to `data` (mode `ImportOnly`, `ActivateOnly` or `ImportActivate`).
fn apply_import(
    data: &mut InstanceData,
    src: &InstanceData,
    mode: &str,
    with_security: bool,
    who: &str,
) {
    let activate_after =
        mode.eq_ignore_ascii_case("ImportActivate") || mode.eq_ignore_ascii_case("ActivateOnly");
    if !mode.eq_ignore_ascii_case("ActivateOnly") {
        for (code, c) in &src.connections {
            let mut c = c.clone();
            if !with_security {
                c.security_properties.clear();
                c.status = ConnStatus::InProgress;
            }
            if data
                .connections
                .get(code)
                .is_none_or(|existing| existing.status != ConnStatus::Configured || with_security)
            {
                data.connections.insert(code.clone(), c);
            }
        }
        for (k, l) in &src.lookups {
            data.lookups.insert(k.clone(), l.clone());
        }
        for (k, l) in &src.libraries {
            data.libraries.insert(k.clone(), l.clone());
        }
        for (k, p) in &src.packages {
            data.packages.insert(k.clone(), p.clone());
        }
        for (k, p) in &src.projects {
            data.projects.insert(k.clone(), p.clone());
        }
        for (k, i) in &src.integrations {
            if data
                .integrations
                .get(k)
                .is_some_and(|t| is_active(t.status))
            {
                continue; // active integrations on the target are left alone
            }
            let mut i = i.clone();
            i.status = if !i.draft && connections_ready(data, &i.connections) {
                IntStatus::Configured
            } else {
                IntStatus::InProgress
            };
            i.locked_by = None;
            i.last_updated = Utc::now();
            i.last_updated_by = who.to_string();
            data.integrations.insert(k.clone(), i);
        }
        refresh_statuses(data);
    }
    if activate_after {
        for (k, i) in &src.integrations {
            if i.status == IntStatus::Activated {
                let _ = activate(data, k, false, who);
            }
        }
    }
}

/// `POST /ic/api/common/v1/importServiceInstanceArchive` → 202 with the job; 409 while a job runs.
pub async fn import_start(api: Api, body: Bytes) -> ApiResult<Response> {
    let (v, s) = parse_start(&body)?;
    let file = v["archiveFile"]
        .as_str()
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ApiError::bad_request("archiveFile is required."))?
        .to_string();
    let mode = v["importActivateMode"]
        .as_str()
        .unwrap_or("ImportOnly")
        .to_string();
    if !["importonly", "activateonly", "importactivate"].contains(&mode.to_lowercase().as_str()) {
        return Err(ApiError::bad_request(
            "importActivateMode must be ImportOnly, ActivateOnly or ImportActivate.",
        ));
    }
    let with_security = v["importSecurityArtifacts"].as_bool().unwrap_or(false);
    let job = begin(&api, JobKind::Import, s, file, Some(mode.clone()))?;
    let shared = api.ctx.shared.clone();
    let inst: Arc<Instance> = api.inst.clone();
    let who = api.who().to_string();
    let (id, key) = (
        job.id.clone(),
        format!("{}/{}", job.storage_url, job.archive_file),
    );
    tokio::spawn(async move {
        tokio::time::sleep(JOB_DURATION).await;
        let src = lock(&shared.jobs.bucket).get(&key).cloned();
        let result = match src {
            Some(src) => {
                apply_import(&mut inst.lock(), &src, &mode, with_security, &who);
                Ok(())
            }
            None => Err(format!("The archive {key} was not found in the storage.")),
        };
        finish(&shared, &id, result);
    });
    Ok(json_status(StatusCode::ACCEPTED, &job_json(&job)))
}

fn status(api: &Api, kind: JobKind) -> ApiResult<Response> {
    let jobs = lock(&api.ctx.shared.jobs.jobs);
    let j = jobs
        .get(api.id())
        .filter(|j| j.kind == kind && j.instance == api.inst.ident.name)
        .ok_or_else(|| ApiError::not_found(format!("Job '{}' not found.", api.id())))?;
    Ok(json_status(StatusCode::OK, &job_json(j)))
}

/// `GET /ic/api/common/v1/exportServiceInstanceArchive/{jobId}`.
pub async fn export_status(api: Api) -> ApiResult<Response> {
    status(&api, JobKind::Export)
}

/// `GET /ic/api/common/v1/importServiceInstanceArchive/{jobId}`.
pub async fn import_status(api: Api) -> ApiResult<Response> {
    status(&api, JobKind::Import)
}
