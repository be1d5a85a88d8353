//! Service-instance export/import (§7): asynchronous jobs under `/ic/api/common/v1/`.
//!
//! Object Storage is emulated in memory: an export job stores a snapshot of the instance (integrations,
//! connections, lookups, libraries, packages, projects) under `<storageUrl>/<archiveFile>`; an import job on any
//! emulated instance reads it back from the same `storageUrl` + `archiveFile`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::Digest as _;

use super::error::{ApiError, ApiResult};
use super::extract::Api;
use super::integrations::{activate, connections_ready, is_active, refresh_statuses};
use super::state::{ConnStatus, Instance, InstanceData, IntStatus, ScheduleState, oic_date};

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
    /// `description` of the request.
    pub description: Option<String>,
    /// `storageInfo.storageUrl` as sent (the `location` of an export).
    pub location: String,
    /// `exportSecurityArtifacts` / `importSecurityArtifacts`.
    pub security: bool,
    /// `startSchedules` (import).
    pub start_schedules: bool,
    /// `importScheduleParams` (import).
    pub import_schedule_params: bool,
    /// Resources exported or imported (when done).
    pub resources: usize,
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

/// Time format of a job status (`2025-03-28 14:55:41.697 UTC`, recorded).
fn status_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()
}

/// One `components[]` item (recorded key order).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Component {
    name: &'static str,
    status: String,
    percentage: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_count: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
}

/// A job status body, keys in the recorded order (not alphabetical).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JobBody {
    job_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    start_time: String,
    end_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    archive_name: Option<String>,
    job_id: String,
    components: Vec<Component>,
    job_name: String,
    overall_status: String,
    import_schedule_params: bool,
    include_security_artifacts: bool,
    start_schedules: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_message: Option<String>,
}

/// The status body of a job; `list` uses the time format of `serviceInstance/jobs` (`…T…+0000`).
fn job_body(j: &Job, list: bool) -> JobBody {
    let time = |t: &DateTime<Utc>| if list { oic_date(t) } else { status_time(t) };
    let done = j.status != "IN_PROGRESS";
    JobBody {
        job_type: match j.kind {
            JobKind::Export => "EXPORT",
            JobKind::Import => "IMPORT",
        },
        description: j.description.clone(),
        start_time: time(&j.start),
        end_time: time(&j.end.unwrap_or(j.start)),
        archive_name: (j.kind == JobKind::Export).then(|| j.archive_file.clone()),
        job_id: j.id.clone(),
        components: vec![Component {
            name: "integration",
            status: j.status.clone(),
            percentage: if j.status == "COMPLETED" { 100 } else { 0 },
            resource_count: done.then(|| j.resources.to_string()),
            error_message: j.message.clone(),
        }],
        job_name: j.name.clone(),
        overall_status: j.status.clone(),
        import_schedule_params: j.import_schedule_params,
        include_security_artifacts: j.security,
        start_schedules: j.start_schedules,
        failure_message: j.message.clone(),
    }
}

/// A JSON answer that keeps the key order of `body`.
fn ordered_json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".into());
    let mut r = (status, text).into_response();
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    r
}

/// A job id in the recorded (UUID) form.
fn job_id(instance: &str, n: u64) -> String {
    let d = sha2::Sha256::digest(format!(
        "{instance}:{n}:{}",
        Utc::now().timestamp_nanos_opt().unwrap_or(0)
    ));
    let h = hex::encode(&d[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

struct Start {
    name: String,
    storage_url: String,
    location: String,
    description: Option<String>,
}

fn parse_start(body: &Bytes) -> ApiResult<(Value, Start)> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))?;
    let location = v["storageInfo"]["storageUrl"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("storageInfo.storageUrl is required."))?
        .to_string();
    let storage_url = location.trim_end_matches('/').to_string();
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
    let name = v["jobName"].as_str().unwrap_or("job").trim().to_string();
    let description = v["description"].as_str().map(str::to_string);
    Ok((
        v,
        Start {
            name,
            storage_url,
            location,
            description,
        },
    ))
}

fn begin(
    api: &Api,
    kind: JobKind,
    s: Start,
    archive_file: String,
    mode: Option<String>,
    flags: (bool, bool, bool),
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
        id: job_id(&api.inst.ident.name, n),
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
        description: s.description,
        location: s.location,
        security: false,
        start_schedules: false,
        import_schedule_params: false,
        resources: 0,
    };
    let mut job = job;
    (
        job.security,
        job.start_schedules,
        job.import_schedule_params,
    ) = flags;
    jobs.insert(job.id.clone(), job.clone());
    Ok(job)
}

fn finish(shared: &Arc<super::state::Shared>, id: &str, result: Result<usize, String>) {
    let mut jobs = lock(&shared.jobs.jobs);
    if let Some(j) = jobs.get_mut(id) {
        j.end = Some(Utc::now());
        j.resources = *result.as_ref().unwrap_or(&0);
        match result {
            Ok(_) => j.status = "COMPLETED".into(),
            Err(m) => {
                j.status = "FAILED".into();
                j.message = Some(m);
            }
        }
    }
}

/// `POST /ic/api/common/v1/exportServiceInstanceArchive` → 202 with the job; 409 while a job runs.
pub async fn export_start(api: Api, body: Bytes) -> ApiResult<Response> {
    let (v, s) = parse_start(&body)?;
    // Recorded: the archive is named after the job (`archiveName` = `jobName`).
    let file = s.name.clone();
    let security = v["exportSecurityArtifacts"].as_bool().unwrap_or(false);
    let job = begin(
        &api,
        JobKind::Export,
        s,
        file,
        None,
        (security, false, false),
    )?;
    let snapshot = api.inst.lock().clone();
    let count = resource_count(&snapshot);
    let shared = api.ctx.shared.clone();
    let (id, key) = (
        job.id.clone(),
        format!("{}/{}", job.storage_url, job.archive_file),
    );
    tokio::spawn(async move {
        shared.clock.sleep(JOB_DURATION).await;
        lock(&shared.jobs.bucket).insert(key, snapshot);
        finish(&shared, &id, Ok(count));
    });
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Accepted<'a> {
        job_id: &'a str,
        location: &'a str,
        status: &'a str,
    }
    Ok(with_jobid(
        ordered_json(
            StatusCode::ACCEPTED,
            &Accepted {
                job_id: &job.id,
                location: &job.location,
                status: "IN_PROGRESS",
            },
        ),
        &job.id,
    ))
}

/// Applies an instance archive to `data` (mode `ImportOnly`, `ActivateOnly` or `ImportActivate`).
fn apply_import(
    data: &mut InstanceData,
    src: &InstanceData,
    mode: &str,
    with_security: bool,
    start_schedules: bool,
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
        // The clone drops access policies: an imported project's ACL is the default one of a
        // new project created by the importer (Oracle: users, roles and access policies are not
        // part of the instance archive).
        for (k, p) in &src.projects {
            let mut p = p.clone();
            p.acl = super::projects::default_acl(who);
            data.projects.insert(k.clone(), p);
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
            if let Some(s) = i.schedule.as_mut() {
                s.state = ScheduleState::Cancelled;
                s.active_since = None;
            }
            data.integrations.insert(k.clone(), i);
        }
        refresh_statuses(data);
    }
    if activate_after {
        for (k, i) in &src.integrations {
            if i.status == IntStatus::Activated {
                let _ = activate(data, k, false, who);
            }
            // `startSchedules`: a schedule that ran on the source runs again once its integration is active.
            let ran = i
                .schedule
                .as_ref()
                .is_some_and(|s| s.state == ScheduleState::Active);
            if start_schedules
                && ran
                && let Some(t) = data.integrations.get_mut(k)
                && t.status == IntStatus::Activated
                && let Some(s) = t.schedule.as_mut()
            {
                s.state = ScheduleState::Active;
                s.active_since = Some(Utc::now());
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
    let start_schedules = v["startSchedules"].as_bool().unwrap_or(false);
    let schedule_params = v["importScheduleParams"].as_bool().unwrap_or(false);
    let job = begin(
        &api,
        JobKind::Import,
        s,
        file,
        Some(mode.clone()),
        (with_security, start_schedules, schedule_params),
    )?;
    let shared = api.ctx.shared.clone();
    let inst: Arc<Instance> = api.inst.clone();
    let who = api.who().to_string();
    let (id, key) = (
        job.id.clone(),
        format!("{}/{}", job.storage_url, job.archive_file),
    );
    tokio::spawn(async move {
        shared.clock.sleep(JOB_DURATION).await;
        let src = lock(&shared.jobs.bucket).get(&key).cloned();
        let result = match src {
            Some(src) => {
                apply_import(
                    &mut inst.lock(),
                    &src,
                    &mode,
                    with_security,
                    start_schedules,
                    &who,
                );
                Ok(resource_count(&src))
            }
            None => Err(format!("The archive {key} was not found in the storage.")),
        };
        finish(&shared, &id, result);
    });
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Accepted<'a> {
        job_id: &'a str,
        status: &'a str,
    }
    Ok(with_jobid(
        ordered_json(
            StatusCode::ACCEPTED,
            &Accepted {
                job_id: &job.id,
                status: "IN_PROGRESS",
            },
        ),
        &job.id,
    ))
}

/// Adds the recorded `jobid` header.
fn with_jobid(mut r: Response, id: &str) -> Response {
    if let Ok(v) = axum::http::HeaderValue::from_str(id) {
        r.headers_mut().insert("jobid", v);
    }
    r
}

/// Resources in an instance archive (integrations, connections, lookups, libraries, packages, projects).
fn resource_count(d: &InstanceData) -> usize {
    d.integrations.len()
        + d.connections.len()
        + d.lookups.len()
        + d.libraries.len()
        + d.packages.len()
        + d.projects.len()
}

fn status(api: &Api, kind: JobKind) -> ApiResult<Response> {
    let jobs = lock(&api.ctx.shared.jobs.jobs);
    let j = jobs
        .get(api.id())
        .filter(|j| j.kind == kind && j.instance == api.inst.ident.name)
        .ok_or_else(|| ApiError::not_found(format!("Job '{}' not found.", api.id())))?;
    Ok(ordered_json(StatusCode::OK, &job_body(j, false)))
}

/// `GET /ic/api/common/v1/serviceInstance/jobs?offset&limit`: this instance's jobs, newest first, as
/// `{"hasMore","totalResults","items"}` (recorded; times as `yyyy-MM-dd'T'HH:mm:ss.SSS+0000`).
pub async fn list(api: Api) -> ApiResult<Response> {
    let (offset, limit) = api.params.paging()?;
    let jobs = lock(&api.ctx.shared.jobs.jobs);
    let mut mine: Vec<&Job> = jobs
        .values()
        .filter(|j| j.instance == api.inst.ident.name)
        .collect();
    mine.sort_by(|a, b| b.start.cmp(&a.start).then(b.id.cmp(&a.id)));
    let total = mine.len();
    let items: Vec<JobBody> = mine
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|j| job_body(j, true))
        .collect();
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Page {
        has_more: bool,
        total_results: usize,
        items: Vec<JobBody>,
    }
    let has_more = offset.saturating_add(items.len()) < total;
    Ok(ordered_json(
        StatusCode::OK,
        &Page {
            has_more,
            total_results: total,
            items,
        },
    ))
}

/// `GET /ic/api/common/v1/exportServiceInstanceArchive/{jobId}`.
pub async fn export_status(api: Api) -> ApiResult<Response> {
    status(&api, JobKind::Export)
}

/// `GET /ic/api/common/v1/importServiceInstanceArchive/{jobId}`.
pub async fn import_status(api: Api) -> ApiResult<Response> {
    status(&api, JobKind::Import)
}
