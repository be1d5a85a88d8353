//! OIC's own whole-instance archive as a ferry verb: export the source's design-time metadata to
//! an Object Storage bucket, import it into the target, each job one recorded effect that starts
//! the job and polls it until it ends. The clone is all or nothing: no selection, and what it
//! drops (users, role grants, project access policies) is said in its report ([`coverage`]).
//!
//! A start that OIC answers 409 (a job is already running) is matched against the instance's job
//! list by name, so a retried or resumed start polls the job it already started instead of
//! failing. In a dry run both jobs are planned, not started.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::OpsError;
use super::ctx::Ctx;
use crate::artifact::{ArtifactKey, ArtifactKind};
use crate::config::SecretRef;
use crate::effect::{Classify, Effect, EffectOutput, Failure, Outcome};
use crate::ledger::Stage;
use crate::oic::OicClient;
use crate::oic::instance_archive::{
    ArchiveJob, ArchiveJobKind, ImportActivateMode, InstanceExport, InstanceImport, StorageInfo,
};

/// The Object Storage bucket: Swift URL, user, and the auth token as `env:VAR`, `file:PATH` or
/// (discouraged) the value itself.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageOpts {
    pub url: String,
    pub user: String,
    pub password: String,
}

impl StorageOpts {
    fn resolve(&self) -> Result<StorageInfo, OpsError> {
        let r = SecretRef::parse(&self.password, None)
            .map_err(|e| OpsError::Usage(format!("storage.password: {e}")))?;
        let password = r
            .resolve()
            .map_err(|e| OpsError::Usage(format!("storage.password ({}): {e}", r.describe())))?;
        if self.url.trim().is_empty() || self.user.trim().is_empty() {
            return Err(OpsError::Usage(
                "storage.url and storage.user must not be empty".into(),
            ));
        }
        Ok(StorageInfo {
            url: self.url.trim().to_string(),
            user: self.user.clone(),
            password,
        })
    }
}

/// Options of `oic::instance_archive` (unknown keys refused).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloneOptions {
    /// Where the archive goes (required).
    pub storage: Option<StorageOpts>,
    /// Name of the export job, which names the archive (default `ferry-<source>-<run time>`).
    pub job_name: Option<String>,
    /// Import this archive, already in the bucket, instead of exporting the source first.
    pub archive: Option<String>,
    pub description: Option<String>,
    /// Export and import security artifacts (connection credentials, certificates); default true.
    pub security: bool,
    /// `import_only` (default), `activate_only` or `import_activate`.
    pub mode: ModeOpt,
    /// Start the schedules that ran on the source (with `import_activate`).
    pub start_schedules: bool,
    /// `importScheduleParams`.
    pub schedule_params: bool,
    /// Seconds between two status reads (default 10).
    pub poll_seconds: f64,
    /// Seconds a job may take (default 7200).
    pub timeout: u64,
}

impl Default for CloneOptions {
    fn default() -> Self {
        CloneOptions {
            storage: None,
            job_name: None,
            archive: None,
            description: None,
            security: true,
            mode: ModeOpt::ImportOnly,
            start_schedules: false,
            schedule_params: false,
            poll_seconds: 10.0,
            timeout: 7200,
        }
    }
}

/// `importActivateMode` as an option value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeOpt {
    ImportOnly,
    ActivateOnly,
    ImportActivate,
}

impl From<ModeOpt> for ImportActivateMode {
    fn from(m: ModeOpt) -> Self {
        match m {
            ModeOpt::ImportOnly => ImportActivateMode::ImportOnly,
            ModeOpt::ActivateOnly => ImportActivateMode::ActivateOnly,
            ModeOpt::ImportActivate => ImportActivateMode::ImportActivate,
        }
    }
}

/// One line of what a migration path carries or drops.
#[derive(Clone, Debug, Serialize)]
pub struct Coverage {
    /// What (`integrations`, `role grants`, ...).
    pub item: String,
    pub carried: bool,
    /// How, or why not.
    pub note: String,
}

fn cov(item: &str, carried: bool, note: &str) -> Coverage {
    Coverage {
        item: item.into(),
        carried,
        note: note.into(),
    }
}

/// What OIC's instance archive carries and drops, with these options.
pub fn coverage(security: bool, mode: ModeOpt, start_schedules: bool) -> Vec<Coverage> {
    let active = mode != ModeOpt::ImportOnly;
    vec![
        cov(
            "integrations",
            true,
            "every version; activated on the target only with import_activate/activate_only",
        ),
        cov(
            "projects",
            true,
            "with their deployments; the ACL is replaced by the importer's default",
        ),
        cov(
            "connections",
            true,
            if security {
                "with properties and credentials (security artifacts)"
            } else {
                "properties only: credentials dropped, connections arrive as drafts"
            },
        ),
        cov("lookups", true, "all"),
        cov("libraries", true, "all"),
        cov("packages", true, "all"),
        cov(
            "schedules",
            true,
            if active && start_schedules {
                "definitions; those that ran on the source are started"
            } else {
                "definitions only, stopped"
            },
        ),
        cov(
            "certificates",
            security,
            if security {
                "with the security artifacts"
            } else {
                "dropped (security artifacts off)"
            },
        ),
        cov(
            "role grants",
            false,
            "dropped: users and roles live in the identity domain and are not in the archive",
        ),
        cov(
            "project ACLs",
            false,
            "dropped: access policies are not in the archive",
        ),
        cov(
            "selection",
            false,
            "all or nothing: no include/exclude; active integrations on the target are left as they are",
        ),
    ]
}

/// The result of one job (or its plan).
#[derive(Clone, Debug, Serialize)]
pub struct JobSummary {
    pub instance: String,
    pub kind: ArchiveJobKind,
    pub job_name: String,
    /// `planned` in a dry run, `skipped` when a resumed run already did it.
    pub status: String,
    pub job_id: Option<String>,
    pub archive: Option<String>,
    pub resources: u64,
    pub seconds: f64,
}

/// The result of a whole clone.
#[derive(Clone, Debug, Serialize)]
pub struct CloneReport {
    pub source: String,
    pub target: String,
    /// The export job (absent when the options named an `archive` to import). Not `export`:
    /// that is a keyword of Rhai.
    pub export_job: Option<JobSummary>,
    pub import_job: JobSummary,
    pub coverage: Vec<Coverage>,
}

/// A job that OIC ended `FAILED`, or one that did not end in time.
#[derive(Debug, thiserror::Error)]
#[error("{instance}: instance {kind} job {job} {status}: {message}")]
pub struct JobFailed {
    instance: String,
    kind: &'static str,
    job: String,
    status: String,
    message: String,
}

impl Classify for JobFailed {
    fn retryable(&self) -> bool {
        false
    }
    fn kind(&self) -> &'static str {
        "job"
    }
}

crate::into_failure!(JobFailed);

impl EffectOutput for ArchiveJob {}

fn kind_word(k: ArchiveJobKind) -> &'static str {
    match k {
        ArchiveJobKind::Export => "export",
        ArchiveJobKind::Import => "import",
    }
}

/// Starts a job (or finds the one a previous attempt started) and polls it to its end.
async fn run_job(
    ctx: &dyn Ctx,
    client: &OicClient,
    kind: ArchiveJobKind,
    job_name: &str,
    start: impl Fn() -> futures::future::BoxFuture<'static, Result<String, crate::oic::OicError>>,
    poll: Duration,
    timeout: Duration,
) -> Result<Outcome<ArchiveJob>, OpsError> {
    let (stage, action) = match kind {
        ArchiveJobKind::Export => (Stage::Export, "export instance archive"),
        ArchiveJobKind::Import => (Stage::Import, "import instance archive"),
    };
    let key = ArtifactKey::new(ArtifactKind::Job, job_name, "");
    let eff = Effect::new(stage, key, client.name(), action);
    let started: Mutex<Option<String>> = Mutex::new(None);
    let cancel = ctx.exec().cancel_token().clone();
    let out = ctx
        .exec()
        .run(eff, || async {
            let known = started.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let id = match known {
                Some(id) => id,
                None => {
                    let id = match start().await {
                        Ok(id) => id,
                        // A job of that name already runs (a retried or resumed start): take it.
                        Err(e) if e.is_status(409) => client
                            .instance_archive_jobs()
                            .await?
                            .into_iter()
                            .find(|j| j.job_name == job_name && !j.finished())
                            .map(|j| j.job_id)
                            .ok_or(e)?,
                        Err(e) => return Err(Failure::from(e)),
                    };
                    *started.lock().unwrap_or_else(|p| p.into_inner()) = Some(id.clone());
                    id
                }
            };
            let clock = std::time::Instant::now();
            loop {
                let j = client.instance_archive_job(kind, &id).await?;
                if j.finished() {
                    if j.succeeded() {
                        return Ok(j);
                    }
                    let message = j
                        .failure
                        .clone()
                        .or_else(|| j.components.iter().find_map(|c| c.error.clone()))
                        .unwrap_or_else(|| "no message".into());
                    return Err(Failure::from(JobFailed {
                        instance: client.name().into(),
                        kind: kind_word(kind),
                        job: id,
                        status: j.status,
                        message,
                    }));
                }
                if clock.elapsed() >= timeout {
                    return Err(Failure::from(JobFailed {
                        instance: client.name().into(),
                        kind: kind_word(kind),
                        job: id,
                        status: j.status,
                        message: format!("still running after {}s", timeout.as_secs()),
                    }));
                }
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {}
                    _ = cancel.cancelled() => {
                        return Err(Failure::Task("cancelled while waiting for the job".into()));
                    }
                }
            }
        })
        .await?;
    Ok(out)
}

fn summary(
    client: &OicClient,
    kind: ArchiveJobKind,
    job_name: &str,
    out: Outcome<ArchiveJob>,
    t: std::time::Instant,
) -> JobSummary {
    let mut s = JobSummary {
        instance: client.name().to_string(),
        kind,
        job_name: job_name.to_string(),
        status: String::new(),
        job_id: None,
        archive: None,
        resources: 0,
        seconds: t.elapsed().as_secs_f64(),
    };
    match out {
        Outcome::Done(j) => {
            s.status = j.status.clone();
            s.resources = j.resources();
            s.archive = j.archive_name.clone();
            s.job_id = Some(j.job_id);
        }
        Outcome::Planned => s.status = "planned".into(),
        Outcome::Skipped(_) => s.status = "skipped".into(),
    }
    s
}

/// Exports `client`'s instance to the bucket: one effect (start + poll).
pub async fn export(
    ctx: &dyn Ctx,
    client: &OicClient,
    o: &CloneOptions,
) -> Result<JobSummary, OpsError> {
    let storage = storage(o)?;
    let job_name = o.job_name.clone().unwrap_or_else(|| {
        format!(
            "ferry-{}-{}",
            client.name(),
            chrono::Utc::now().format("%Y%m%d%H%M%S")
        )
    });
    let req = InstanceExport {
        job_name: job_name.clone(),
        description: o.description.clone(),
        security: o.security,
        storage,
    };
    let t = std::time::Instant::now();
    let out = run_job(
        ctx,
        client,
        ArchiveJobKind::Export,
        &job_name,
        || {
            let (c, r) = (client.clone(), req.clone());
            Box::pin(async move { c.start_instance_export(&r).await })
        },
        poll(o),
        Duration::from_secs(o.timeout),
    )
    .await?;
    Ok(summary(client, ArchiveJobKind::Export, &job_name, out, t))
}

/// Imports the archive `archive_file` from the bucket into `client`'s instance.
pub async fn import(
    ctx: &dyn Ctx,
    client: &OicClient,
    archive_file: &str,
    o: &CloneOptions,
) -> Result<JobSummary, OpsError> {
    let storage = storage(o)?;
    let job_name = format!("import-{archive_file}");
    let req = InstanceImport {
        archive_file: archive_file.to_string(),
        job_name: job_name.clone(),
        description: o.description.clone(),
        mode: o.mode.into(),
        security: o.security,
        start_schedules: o.start_schedules,
        schedule_params: o.schedule_params,
        storage,
    };
    let t = std::time::Instant::now();
    let out = run_job(
        ctx,
        client,
        ArchiveJobKind::Import,
        &job_name,
        || {
            let (c, r) = (client.clone(), req.clone());
            Box::pin(async move { c.start_instance_import(&r).await })
        },
        poll(o),
        Duration::from_secs(o.timeout),
    )
    .await?;
    Ok(summary(client, ArchiveJobKind::Import, &job_name, out, t))
}

fn storage(o: &CloneOptions) -> Result<StorageInfo, OpsError> {
    o.storage
        .as_ref()
        .ok_or_else(|| {
            OpsError::Usage(
                "instance_archive: option `storage` #{ url, user, password } is required".into(),
            )
        })?
        .resolve()
}

fn poll(o: &CloneOptions) -> Duration {
    Duration::from_secs_f64(o.poll_seconds.clamp(0.05, 600.0))
}

/// The whole clone: export `source`, import the archive into `target`; what it carries goes into
/// the run's report.html.
pub async fn clone_instance(
    ctx: &dyn Ctx,
    source: &OicClient,
    target: &OicClient,
    o: &CloneOptions,
) -> Result<CloneReport, OpsError> {
    let (export, archive) = match &o.archive {
        Some(a) => (None, a.clone()),
        None => {
            let e = export(ctx, source, o).await?;
            // The archive is named after the export job (recorded); a planned export names it too.
            let a = e.archive.clone().unwrap_or_else(|| e.job_name.clone());
            (Some(e), a)
        }
    };
    let import = import(ctx, target, &archive, o).await?;
    let coverage = coverage(o.security, o.mode, o.start_schedules);
    let html = coverage_html("OIC instance archive", &coverage);
    ctx.exec().record().add_report_section(&html);
    Ok(CloneReport {
        source: source.name().to_string(),
        target: target.name().to_string(),
        export_job: export,
        import_job: import,
        coverage,
    })
}

/// What a path carries and drops, as a section of the run's report.html.
pub fn coverage_html(title: &str, rows: &[Coverage]) -> String {
    use crate::ledger::html::escape;
    let mut s = format!(
        "<h2>{}: what it carries</h2>\n<table><tr><th>item</th><th>carried</th><th>note</th></tr>\n",
        escape(title)
    );
    for r in rows {
        s.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&r.item),
            if r.carried { "yes" } else { "NO" },
            escape(&r.note)
        ));
    }
    s.push_str("</table>\n");
    s
}
