//! `cutover`: a release into a protected instance (PROD) that tests, activates in call order,
//! smoke-checks and rolls itself back.
//!
//! 1. Import everything **inactive** (libraries and lookups first, then integrations); every
//!    replaced archive and previous state is saved for rollback by the import.
//! 2. Configure the connections per environment, then **test every connection the selection
//!    uses** (read from the archives). One failing test stops the cutover before any activation,
//!    with each failing connection and OIC's message.
//! 3. **Activate in dependency order**: integrations ordered by who calls whom (read from the
//!    archives: a local invoke or a call to another integration's REST endpoint), callee first.
//!    The states the target's other versions of those codes had are recorded for rollback first.
//! 4. **Smoke check** for a window: per activated integration, its instances since its
//!    activation and their error rate (monitoring API); optional test calls to REST triggers.
//! 5. When an activation or the smoke check fails, **roll the whole cutover back** (the run's
//!    rollback entries: previous archives from the rollback job, activation states, added
//!    integrations removed, schedules), then **notify** with the cause. The schedules the target
//!    had for the selection's codes (definition and state) are saved and recorded before the
//!    first change, so `ferry rollback RUN` of a cutover that completed puts them back too.
//!
//! Every step is an effect of the run's executor: `ferry plan` lists the sequence, `--resume`
//! continues it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::OpsError;
use super::activate::{ActivateWhen, activate_one};
use super::connections::{ConnectionSpec, Connections, build_update};
use super::ctx::Ctx;
use super::import::{ImportOptions, ImportResult, ItemAction, import};
use super::notify::{NotifyRequest, send};
use super::rollback::{RollbackResult, rollback};
use super::run::Run;
use crate::artifact::{Artifact, ArtifactKey, ArtifactKind};
use crate::effect::{Effect, Failure};
use crate::ledger::{RollbackEntry, Stage, StepError, StepStatus};
use crate::notify::When;
use crate::oic::archive::{InvokeKind, inspect, invocations};
use crate::oic::{ActivateOptions, IntegrationId, OicClient};

/// Options of `cutover` (unknown keys refused).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CutoverOpts {
    /// Which integrations to activate: `"keep"` (what was active on the source, default),
    /// `true` (all), `false` (none: import, configure and test only).
    pub activate: ActivateWhen,
    /// Seconds to wait for one activation.
    pub activation_timeout: u64,
    /// The smoke check after the activations.
    pub smoke: SmokeOpts,
    /// Start the schedule of every activated integration that has one, after all the
    /// activations (default true).
    pub start_schedules: bool,
    /// Roll back by itself when an activation or the smoke check fails (default true).
    pub rollback: bool,
    /// Who is told about a stop or a rollback (default: the `[mail] admins`).
    pub notify: Vec<String>,
    /// Per-environment connection settings, configured before the tests (a map, or a TOML
    /// file, as for `configure_connections`).
    pub connections: Connections,
}

impl Default for CutoverOpts {
    fn default() -> Self {
        CutoverOpts {
            activate: ActivateWhen::Keep,
            activation_timeout: 300,
            smoke: SmokeOpts::default(),
            start_schedules: true,
            rollback: true,
            notify: vec![],
            connections: Connections::default(),
        }
    }
}

/// The smoke check: a window, its polls and the thresholds.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmokeOpts {
    /// Seconds to watch the activated integrations (0: one look right after the activations).
    pub window_secs: u64,
    /// Seconds between two looks at monitoring.
    pub poll_secs: u64,
    /// Highest error rate (failed and aborted instances over all of them, 0..1) an integration
    /// may show; above it the cutover is rolled back at once.
    pub max_error_rate: f64,
    /// Fewest instances each activated integration must have received by the end of the window.
    pub min_instances: u64,
    /// Test calls to REST triggers, made once right after the activations.
    pub calls: Vec<SmokeCall>,
}

impl Default for SmokeOpts {
    fn default() -> Self {
        SmokeOpts {
            window_secs: 300,
            poll_secs: 30,
            max_error_rate: 0.0,
            min_instances: 0,
            calls: vec![],
        }
    }
}

/// A test call to a REST trigger.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeCall {
    /// The path below the host (`/ic/api/integration/v1/flows/rest/HELLO/1.0/ping`).
    pub path: String,
    /// The HTTP method (default `POST`).
    #[serde(default = "post")]
    pub method: String,
    /// A JSON body.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
}

fn post() -> String {
    "POST".into()
}

/// How a cutover ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CutoverOutcome {
    /// Everything imported, tested, activated and the smoke check passed.
    Completed,
    /// Described only (dry run / `ferry plan`).
    Planned,
    /// An import failed: stopped before any activation.
    ImportFailed,
    /// A connection failed its test: stopped before any activation.
    ConnectionsFailed,
    /// An activation or the smoke check failed and the cutover was rolled back.
    RolledBack,
    /// An activation or the smoke check failed; rollback was off.
    Failed,
}

/// A connection that failed its test, with OIC's message.
#[derive(Clone, Debug, Serialize)]
pub struct FailedConnection {
    pub connection: String,
    pub message: String,
}

/// The smoke figures of one integration.
#[derive(Clone, Debug, Serialize)]
pub struct SmokeResult {
    pub id: String,
    pub instances: u64,
    pub failed: u64,
    pub error_rate: f64,
    pub ok: bool,
}

/// What a cutover did.
#[derive(Clone, Debug, Serialize)]
pub struct CutoverReport {
    /// The instance cut over.
    pub target: String,
    pub outcome: CutoverOutcome,
    /// Why it stopped or was rolled back.
    pub cause: Option<String>,
    pub imported: Vec<ImportResult>,
    /// Connections tested (codes).
    pub tested: Vec<String>,
    pub failed_connections: Vec<FailedConnection>,
    /// `CODE|VERSION` in the order they were activated (callees first).
    pub activated: Vec<String>,
    /// `CODE|VERSION` whose schedule was started.
    pub schedules_started: Vec<String>,
    /// Schedules put back by the rollback: `CODE|VERSION` and the state set.
    pub schedules_restored: Vec<(String, String)>,
    /// The activation order decided (each level after the one it calls).
    pub order: Vec<String>,
    pub smoke: Vec<SmokeResult>,
    pub rollback: Vec<RollbackResult>,
}

/// Time for the smoke window: the system clock in runs, a clock the test drives in tests.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The system clock (`tokio::time::sleep`).
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// A connection test that OIC answered `FAILED`: its message, as OIC wrote it.
struct TestFailed(String);

impl std::fmt::Display for TestFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl crate::effect::Classify for TestFailed {
    fn retryable(&self) -> bool {
        false
    }
    fn kind(&self) -> &'static str {
        "connection_test"
    }
}

fn key_of(id: &str) -> ArtifactKey {
    let (c, v) = id.split_once('|').unwrap_or((id, ""));
    ArtifactKey::new(ArtifactKind::Integration, c, v)
}

fn conn_key(code: &str) -> ArtifactKey {
    ArtifactKey::new(ArtifactKind::Connection, code, "")
}

/// The activation order of `ids` (`CODE|VERSION`) from their calls: callees before callers, in
/// levels (each integration after every selected integration it calls). A call names a version
/// (`MM.mm.pppp`, local invoke) or a major.minor (`MM.mm`, REST endpoint); one to an integration
/// outside the selection does not order anything. A cycle is an error naming its members.
pub fn activation_order(
    ids: &[String],
    calls: &HashMap<String, Vec<(String, String)>>,
) -> Result<Vec<String>, String> {
    let set: BTreeSet<&String> = ids.iter().collect();
    let resolve = |code: &str, ver: &str| -> Vec<String> {
        ids.iter()
            .filter(|id| {
                let (c, v) = id.split_once('|').unwrap_or((id, ""));
                c == code && (ver.is_empty() || v == ver || v.starts_with(&format!("{ver}.")))
            })
            .cloned()
            .collect()
    };
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for id in ids {
        let mut d = BTreeSet::new();
        for (code, ver) in calls.get(id).into_iter().flatten() {
            d.extend(resolve(code, ver).into_iter().filter(|x| x != id));
        }
        deps.insert(id.clone(), d);
    }
    let mut out: Vec<String> = vec![];
    let mut left: Vec<String> = ids.to_vec();
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|id| {
                deps[*id]
                    .iter()
                    .all(|d| out.contains(d) || !set.contains(d))
            })
            .cloned()
            .collect();
        if ready.is_empty() {
            return Err(format!(
                "the integrations call each other in a cycle: {}",
                left.join(", ")
            ));
        }
        left.retain(|x| !ready.contains(x));
        out.extend(ready);
    }
    Ok(out)
}

/// A smoke verdict of one look at an integration.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Ok,
    /// Failed at once (error rate above the threshold, a failed test call).
    Fail(String),
}

/// Watches for `window` (one look every `poll`, at least one): `look` returns the verdict of
/// every integration; the first failure ends the window at once. At the end, `last` decides
/// (minimum instances). Time comes from `clock`.
pub async fn smoke_window<F, Fut>(
    clock: &dyn Clock,
    window: Duration,
    poll: Duration,
    mut look: F,
) -> Result<u32, String>
where
    F: FnMut(bool) -> Fut,
    Fut: Future<Output = Verdict>,
{
    let start = clock.now();
    let end = start + chrono::Duration::from_std(window).unwrap_or_default();
    let mut looks = 0u32;
    loop {
        let now = clock.now();
        let last = now >= end;
        looks += 1;
        if let Verdict::Fail(why) = look(last).await {
            return Err(why);
        }
        if last {
            return Ok(looks);
        }
        let left = (end - now).to_std().unwrap_or_default();
        clock
            .sleep(poll.max(Duration::from_millis(1)).min(left))
            .await;
    }
}

/// What the archives of a cutover say: the connections the integrations use, who calls whom,
/// which to activate and which carry a schedule.
#[derive(Default)]
struct ArchivePlan {
    used: BTreeSet<String>,
    calls: HashMap<String, Vec<(String, String)>>,
    wanted: Vec<String>,
    with_schedule: BTreeSet<String>,
}

/// Reads the integration archives among `artifacts` (see [`ArchivePlan`]).
async fn read_archives(
    artifacts: &[Artifact],
    o: &CutoverOpts,
    target: &str,
) -> Result<ArchivePlan, OpsError> {
    let mut plan = ArchivePlan::default();
    for a in artifacts
        .iter()
        .filter(|a| a.key.kind == ArtifactKind::Integration && !a.is_planned())
    {
        let path = a.path().to_path_buf();
        let (info, inv) = tokio::task::spawn_blocking(move || (inspect(&path), invocations(&path)))
            .await
            .map_err(|e| OpsError::Usage(e.to_string()))?;
        let info = info.map_err(|e| OpsError::oic(target, e))?;
        if info.scheduled {
            plan.with_schedule.insert(a.key.id());
        }
        plan.used.extend(info.connections);
        let inv = inv.map_err(|e| OpsError::oic(target, e))?;
        plan.calls.insert(
            a.key.id(),
            inv.into_iter()
                .map(|i| {
                    let v = match i.kind {
                        InvokeKind::Local | InvokeKind::Rest => i.version,
                    };
                    (i.code, v)
                })
                .collect(),
        );
        if o.activate.wants(a) {
            plan.wanted.push(a.key.id());
        }
    }
    Ok(plan)
}

/// Runs a cutover of `artifacts` into instance `target`. See the module docs.
pub async fn cutover(
    ctx: &dyn Ctx,
    run: &Run,
    target: &str,
    artifacts: Vec<Artifact>,
    o: &CutoverOpts,
    clock: &dyn Clock,
) -> Result<CutoverReport, OpsError> {
    let client = ctx.client(target)?;
    let connections = o.connections.for_instance(target)?;
    let mut rep = CutoverReport {
        target: target.to_string(),
        outcome: CutoverOutcome::Completed,
        cause: None,
        imported: vec![],
        tested: vec![],
        failed_connections: vec![],
        activated: vec![],
        schedules_started: vec![],
        schedules_restored: vec![],
        order: vec![],
        smoke: vec![],
        rollback: vec![],
    };
    let plan = read_archives(&artifacts, o, target).await?;
    rep.order = activation_order(&plan.wanted, &plan.calls).map_err(OpsError::Usage)?;

    // The schedules the target has for these codes, before anything changes: each one's
    // definition and state is saved in the run's rollback job and recorded, so the run's
    // rollback (its own, or a later `ferry rollback RUN`) puts them back.
    let codes: BTreeSet<String> = artifacts
        .iter()
        .filter(|a| a.key.kind == ArtifactKind::Integration)
        .map(|a| a.key.code.clone())
        .collect();
    if !ctx.exec().dry_run() {
        save_schedules(ctx, &client, &codes).await?;
    }
    let steps = Steps {
        ctx,
        client: &client,
        target,
        o,
        clock,
    };
    match steps.go(artifacts, &connections, &plan, &mut rep).await? {
        Some(stop) => finish(ctx, run, rep, stop, o).await,
        None => Ok(rep),
    }
}

/// The steps of a cutover, each stopping it (`Some(Stop)`) or letting it go on.
struct Steps<'a> {
    ctx: &'a dyn Ctx,
    client: &'a OicClient,
    target: &'a str,
    o: &'a CutoverOpts,
    clock: &'a dyn Clock,
}

impl Steps<'_> {
    /// A failure after the imports: rolled back when the options say so.
    fn failed(&self, cause: String) -> Stop {
        Stop {
            outcome: fail_outcome(self.o),
            cause,
            roll_back: self.o.rollback,
        }
    }

    /// Steps 1 to 4, in order, up to the first that stops.
    async fn go(
        &self,
        artifacts: Vec<Artifact>,
        connections: &BTreeMap<String, ConnectionSpec>,
        plan: &ArchivePlan,
        rep: &mut CutoverReport,
    ) -> Result<Option<Stop>, OpsError> {
        if let Some(stop) = self.import_inactive(artifacts, rep).await? {
            return Ok(Some(stop));
        }
        self.configure(connections).await?;
        if let Some(stop) = self.test_connections(&plan.used, rep).await? {
            return Ok(Some(stop));
        }
        let since = match self.activate(plan, rep).await? {
            Ok(since) => since,
            Err(stop) => return Ok(Some(stop)),
        };
        if self.o.start_schedules
            && let Some(stop) = self.start_schedules(plan, rep).await?
        {
            return Ok(Some(stop));
        }
        if self.ctx.exec().dry_run() {
            self.plan_smoke(rep);
            return Ok(None);
        }
        // 4. Smoke check.
        let smoked = smoke(
            self.ctx,
            self.client,
            self.target,
            &since,
            &self.o.smoke,
            self.clock,
        );
        match smoked.await {
            Ok(results) => rep.smoke = results,
            Err((results, cause)) => {
                rep.smoke = results;
                return Ok(Some(self.failed(cause)));
            }
        }
        Ok(None)
    }

    /// 1. Imports everything inactive.
    async fn import_inactive(
        &self,
        artifacts: Vec<Artifact>,
        rep: &mut CutoverReport,
    ) -> Result<Option<Stop>, OpsError> {
        let iopts = ImportOptions {
            overwrite: true,
            activate: ActivateWhen::Never,
            ..ImportOptions::default()
        };
        let imported = import(self.ctx, self.client, artifacts, &iopts).await?;
        rep.imported = imported.results;
        Ok(rep
            .imported
            .iter()
            .find(|r| r.action == Some(ItemAction::Failed))
            .map(|f| Stop {
                outcome: CutoverOutcome::ImportFailed,
                cause: format!(
                    "import of {} failed: {}",
                    f.id,
                    f.error.clone().unwrap_or_default()
                ),
                roll_back: false,
            }))
    }

    /// 2a. The per-environment settings of the connections.
    async fn configure(
        &self,
        connections: &BTreeMap<String, ConnectionSpec>,
    ) -> Result<(), OpsError> {
        let (exec, client, target) = (self.ctx.exec(), self.client, self.target);
        for (code, spec) in connections {
            let current = exec
                .read("get_connection", || client.get_connection(None, code))
                .await
                .map_err(|e| OpsError::oic(target, e))?;
            let (update, secrets) =
                build_update(current.as_ref(), spec).map_err(OpsError::Usage)?;
            self.ctx.shell().add_secrets(&secrets);
            let eff = Effect::new(
                Stage::Connection,
                conn_key(code),
                target,
                "update connection",
            )
            .with_reason("per-environment settings of the cutover");
            exec.run(eff, || async {
                client
                    .update_connection(None, code, &update)
                    .await
                    .map(|_| ())
                    .map_err(Failure::from)
            })
            .await
            .map_err(OpsError::effect)?;
        }
        Ok(())
    }

    /// 2b. Tests every connection the selection uses; one failing stops the cutover before any
    /// activation.
    async fn test_connections(
        &self,
        used: &BTreeSet<String>,
        rep: &mut CutoverReport,
    ) -> Result<Option<Stop>, OpsError> {
        let (exec, client) = (self.ctx.exec(), self.client);
        for code in used {
            rep.tested.push(code.clone());
            let eff = Effect::new(
                Stage::Connection,
                conn_key(code),
                self.target,
                "test connection",
            )
            .with_reason("used by the cutover; tested before any activation");
            let r = exec
                .run(eff.clone(), || async {
                    let t = client
                        .test_connection(None, code)
                        .await
                        .map_err(Failure::from)?;
                    if t.ok() {
                        Ok(t)
                    } else {
                        Err(Failure::new(TestFailed(t.details.clone())))
                    }
                })
                .await;
            if let Err(e) = r {
                if e.cancelled {
                    return Err(OpsError::Cancelled);
                }
                rep.failed_connections.push(FailedConnection {
                    connection: code.clone(),
                    message: e.error.message.clone(),
                });
            }
        }
        if rep.failed_connections.is_empty() {
            return Ok(None);
        }
        let cause = format!(
            "{} connection(s) failed their test, nothing was activated: {}",
            rep.failed_connections.len(),
            rep.failed_connections
                .iter()
                .map(|f| format!("{} ({})", f.connection, f.message))
                .collect::<Vec<_>>()
                .join("; ")
        );
        Ok(Some(Stop {
            outcome: CutoverOutcome::ConnectionsFailed,
            cause,
            roll_back: false,
        }))
    }

    /// Records, for rollback, the states of the target's other versions of the codes about to
    /// be activated (an activation deactivates the other minor versions).
    async fn note_other_versions(&self, order: &[String]) -> Result<(), OpsError> {
        let (exec, client) = (self.ctx.exec(), self.client);
        let codes: BTreeSet<&str> = order
            .iter()
            .map(|id| id.split_once('|').map(|x| x.0).unwrap_or(id))
            .collect();
        let listed = exec
            .read("list_integrations", || client.list_integrations(None))
            .await
            .map_err(|e| OpsError::oic(self.target, e))?;
        for i in listed.iter().filter(|i| {
            codes.contains(i.code.as_str()) && !order.contains(&format!("{}|{}", i.code, i.version))
        }) {
            exec.record().note_rollback(&RollbackEntry {
                kind: ArtifactKind::Integration,
                code: i.code.clone(),
                version: i.version.clone(),
                target: self.target.to_string(),
                existed: true,
                previous_status: Some(i.status.clone()),
                sha256: None,
                content_sha256: None,
                imported_content_sha256: None,
                location: None,
            });
        }
        Ok(())
    }

    /// 3. Activates in the order decided, callees first; returns when each was activated.
    async fn activate(
        &self,
        plan: &ArchivePlan,
        rep: &mut CutoverReport,
    ) -> Result<Result<Vec<(String, DateTime<Utc>)>, Stop>, OpsError> {
        let exec = self.ctx.exec();
        if !exec.dry_run() {
            self.note_other_versions(&rep.order).await?;
        }
        let aopts = ActivateOptions {
            async_mode: true,
            timeout: Duration::from_secs(self.o.activation_timeout),
            poll_interval: Duration::from_millis(500),
            tracing: None,
            payload_tracing: None,
        };
        let mut since: Vec<(String, DateTime<Utc>)> = vec![];
        for id in rep.order.clone() {
            let at = self.clock.now();
            let why = match plan.calls.get(&id).map(|c| c.len()).unwrap_or(0) {
                0 => "cutover".to_string(),
                n => format!("cutover, after the {n} integration(s) it calls"),
            };
            let eff =
                Effect::new(Stage::Activate, key_of(&id), self.target, "activate").with_reason(why);
            match activate_one(exec, self.client, &aopts, eff, true).await {
                Ok(_) => {
                    rep.activated.push(id.clone());
                    since.push((id, at));
                }
                Err(e) if e.cancelled => return Err(OpsError::Cancelled),
                Err(e) => {
                    let cause = format!("activation of {id} failed: {}", e.error.message);
                    return Ok(Err(self.failed(cause)));
                }
            }
        }
        Ok(Ok(since))
    }

    /// Starts the schedules of the activated integrations, after all the activations.
    async fn start_schedules(
        &self,
        plan: &ArchivePlan,
        rep: &mut CutoverReport,
    ) -> Result<Option<Stop>, OpsError> {
        let (exec, client) = (self.ctx.exec(), self.client);
        // What the archives carry, and (in a run) what the target says it holds.
        let scheduled: BTreeSet<String> = if exec.dry_run() {
            plan.with_schedule.clone()
        } else {
            exec.read("list_integrations", || client.list_integrations(None))
                .await
                .map_err(|e| OpsError::oic(self.target, e))?
                .into_iter()
                .filter(|i| i.schedule_defined)
                .map(|i| format!("{}|{}", i.code, i.version))
                .collect()
        };
        for id in rep.activated.clone() {
            if !scheduled.contains(&id) {
                continue;
            }
            let eff = Effect::new(Stage::Activate, key_of(&id), self.target, "start schedule")
                .with_reason("cutover: schedules after the integrations");
            let iid = IntegrationId::new(&key_of(&id).code, &key_of(&id).version);
            let start = || async {
                client
                    .start_schedule(&iid)
                    .await
                    .map(|s| s.as_str().to_string())
                    .map_err(Failure::from)
            };
            match exec.run(eff, start).await {
                Ok(_) => rep.schedules_started.push(id),
                Err(e) if e.cancelled => return Err(OpsError::Cancelled),
                Err(e) => {
                    let cause =
                        format!("starting the schedule of {id} failed: {}", e.error.message);
                    return Ok(Some(self.failed(cause)));
                }
            }
        }
        Ok(None)
    }

    /// A dry run: the smoke check, planned.
    fn plan_smoke(&self, rep: &mut CutoverReport) {
        let eff = Effect::new(
            Stage::Verify,
            ArtifactKey::new(ArtifactKind::Integration, "smoke check", ""),
            self.target,
            format!(
                "smoke check {} integration(s) for {} s (error rate ≤ {})",
                rep.order.len(),
                self.o.smoke.window_secs,
                self.o.smoke.max_error_rate
            ),
        );
        self.ctx.exec().note(&eff, StepStatus::Planned, None);
        rep.outcome = CutoverOutcome::Planned;
    }
}

/// Saves for rollback the schedule (definition and state) of every integration of the target
/// with one of `codes` and a schedule, before the cutover changes any: the import replaces
/// (stopping them), the activations deactivate other versions (stopping theirs), the cutover
/// starts them. The earliest record of a run wins, so the import's own record of a replaced
/// integration's schedule, later, keeps this one; a resumed cutover's records lose to the
/// first attempt's.
async fn save_schedules(
    ctx: &dyn Ctx,
    client: &OicClient,
    codes: &BTreeSet<String>,
) -> Result<(), OpsError> {
    let exec = ctx.exec();
    let target = client.name().to_string();
    let listed = exec
        .read("list_integrations", || client.list_integrations(None))
        .await
        .map_err(|e| OpsError::oic(&target, e))?;
    for i in listed
        .into_iter()
        .filter(|i| i.schedule_defined && codes.contains(&i.code))
    {
        let iid = IntegrationId::new(&i.code, &i.version);
        let cur = exec
            .read("get_schedule", || client.get_schedule(&iid))
            .await
            .map_err(|e| OpsError::oic(&target, e))?;
        if let Some(s) = cur {
            let key = ArtifactKey::new(ArtifactKind::Integration, &i.code, &i.version);
            super::schedules::save_previous(ctx, client, &key, Some(&s))
                .await
                .map_err(|e| {
                    OpsError::Usage(format!(
                        "cannot save the schedule of {iid} on {target} for rollback: {e}"
                    ))
                })?;
        }
    }
    Ok(())
}

fn fail_outcome(o: &CutoverOpts) -> CutoverOutcome {
    if o.rollback {
        CutoverOutcome::RolledBack
    } else {
        CutoverOutcome::Failed
    }
}

type SmokeFailure = (Vec<SmokeResult>, String);

/// The smoke check of the activated integrations (`since`: each one's activation time); one
/// `verify` step per integration with its figures.
async fn smoke(
    ctx: &dyn Ctx,
    client: &OicClient,
    target: &str,
    since: &[(String, DateTime<Utc>)],
    s: &SmokeOpts,
    clock: &dyn Clock,
) -> Result<Vec<SmokeResult>, SmokeFailure> {
    let exec = ctx.exec();
    test_calls(exec, client, target, &s.calls)
        .await
        .map_err(|why| (vec![], why))?;
    let figures: std::sync::Mutex<BTreeMap<String, SmokeResult>> = Default::default();
    let verdict = smoke_window(
        clock,
        Duration::from_secs(s.window_secs),
        Duration::from_secs(s.poll_secs),
        |last| {
            let figures = &figures;
            async move {
                for (id, at) in since {
                    let iid =
                        IntegrationId::parse(id).unwrap_or_else(|_| IntegrationId::new(id, ""));
                    let c = match exec
                        .read("monitoring", || client.instance_counts_since(&iid, *at))
                        .await
                    {
                        Ok(c) => c,
                        Err(e) => return Verdict::Fail(format!("smoke check of {id}: {e}")),
                    };
                    let (r, verdict) = judge(id, &c, s, last);
                    figures
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(id.clone(), r);
                    if verdict != Verdict::Ok {
                        return verdict;
                    }
                }
                Verdict::Ok
            }
        },
    )
    .await;
    let results: Vec<SmokeResult> = figures
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_values()
        .collect();
    record_smoke(exec, target, &results, verdict.as_ref().err());
    match verdict {
        Ok(_) => Ok(results),
        Err(why) => Err((results, why)),
    }
}

/// The smoke check's test calls to REST triggers; the first that fails stops it.
async fn test_calls(
    exec: &crate::effect::Executor,
    client: &OicClient,
    target: &str,
    calls: &[SmokeCall],
) -> Result<(), String> {
    for c in calls {
        let eff = Effect::new(
            Stage::Verify,
            ArtifactKey::new(ArtifactKind::Integration, &c.path, ""),
            target,
            format!("test call {} {}", c.method, c.path),
        );
        if let Err(e) = exec
            .run(eff, || async {
                client
                    .call_rest_trigger(&c.method, &c.path, c.body.clone())
                    .await
                    .map(|_| ())
                    .map_err(Failure::from)
            })
            .await
        {
            return Err(format!(
                "smoke check: test call {} {} failed: {}",
                c.method, c.path, e.error.message
            ));
        }
    }
    Ok(())
}

/// The figures of integration `id` since its activation, and the verdict on them (`last`: the
/// window's last look, when too few instances fail it).
fn judge(
    id: &str,
    c: &crate::oic::InstanceCounts,
    s: &SmokeOpts,
    last: bool,
) -> (SmokeResult, Verdict) {
    let rate = c.error_rate();
    let mut r = SmokeResult {
        id: id.to_string(),
        instances: c.total,
        failed: c.failed + c.aborted,
        error_rate: rate,
        ok: true,
    };
    let verdict = if c.total > 0 && rate > s.max_error_rate {
        Verdict::Fail(format!(
            "smoke check: {id} failed {} of {} instance(s) since its activation ({:.0} % > {:.0} %)",
            r.failed,
            c.total,
            rate * 100.0,
            s.max_error_rate * 100.0
        ))
    } else if last && c.total < s.min_instances {
        Verdict::Fail(format!(
            "smoke check: {id} received {} instance(s) in {} s, fewer than {}",
            c.total, s.window_secs, s.min_instances
        ))
    } else {
        Verdict::Ok
    };
    r.ok = verdict == Verdict::Ok;
    (r, verdict)
}

/// One `smoke check` step per integration, with its figures; failed where the check failed.
fn record_smoke(
    exec: &crate::effect::Executor,
    target: &str,
    results: &[SmokeResult],
    why: Option<&String>,
) {
    for r in results {
        let eff =
            Effect::new(Stage::Verify, key_of(&r.id), target, "smoke check").with_reason(format!(
                "{} instance(s), {} failed, error rate {:.2}",
                r.instances, r.failed, r.error_rate
            ));
        let err = (!r.ok).then(|| StepError {
            kind: "smoke".into(),
            status: None,
            message: why.cloned().unwrap_or_default(),
        });
        exec.note(
            &eff,
            if r.ok {
                StepStatus::Ok
            } else {
                StepStatus::Failed
            },
            err,
        );
    }
}

/// Why a cutover stops, and whether it is rolled back.
struct Stop {
    outcome: CutoverOutcome,
    cause: String,
    roll_back: bool,
}

/// Ends a cutover that did not go through: rolls it back when asked (the run's rollback
/// entries, the rollback job sealed first so its archives can be read back), then tells the
/// people with the cause.
async fn finish(
    ctx: &dyn Ctx,
    run: &Run,
    mut rep: CutoverReport,
    stop: Stop,
    o: &CutoverOpts,
) -> Result<CutoverReport, OpsError> {
    let Stop {
        outcome,
        cause,
        roll_back,
    } = stop;
    run.shell.line(&format!("cutover stopped: {cause}"));
    rep.outcome = outcome;
    rep.cause = Some(cause.clone());
    if roll_back && !ctx.exec().dry_run() {
        run.seal_rollback_job().map_err(OpsError::Usage)?;
        rep.rollback =
            rollback(ctx, &run.id(), &super::rollback::RollbackOptions::default()).await?;
        // The schedules come back with the run's other changes (saved before the cutover).
        rep.schedules_restored = rep
            .rollback
            .iter()
            .filter(|r| r.kind == ArtifactKind::Schedule.as_str())
            .filter_map(|r| match (&r.error, r.action.as_str()) {
                (Some(e), _) => Some((r.id.clone(), format!("failed: {e}"))),
                (None, "done") => Some((
                    r.id.clone(),
                    r.previous_status
                        .clone()
                        .unwrap_or_else(|| "restored".into()),
                )),
                _ => None,
            })
            .collect();
        let failed = rep.rollback.iter().filter(|r| r.error.is_some()).count();
        run.shell.line(&format!(
            "cutover rolled back: {} artifact(s) put back{}",
            rep.rollback.len(),
            if failed > 0 {
                format!(", {failed} FAILED")
            } else {
                String::new()
            }
        ));
    }
    let mut info = run.record().info();
    info.outcome = Some("failed".into());
    info.message = Some(match rep.outcome {
        CutoverOutcome::RolledBack => format!("cutover rolled back: {cause}"),
        _ => format!("cutover stopped: {cause}"),
    });
    info.ended = Some(Utc::now());
    let to = if o.notify.is_empty() {
        run.config
            .mail
            .as_ref()
            .map(|m| m.admins.clone())
            .unwrap_or_default()
    } else {
        o.notify.clone()
    };
    if !to.is_empty() {
        let req = NotifyRequest {
            to,
            owners: None,
            when: When::Always,
            mail: true,
            webhook: true,
        };
        send(run, info, &req).await;
    }
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn calls(v: &[(&str, &[(&str, &str)])]) -> HashMap<String, Vec<(String, String)>> {
        v.iter()
            .map(|(id, c)| {
                (
                    id.to_string(),
                    c.iter()
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn callees_come_before_their_callers() {
        let ids: Vec<String> = [
            "SCM|01.00.0000",
            "FIN|01.00.0000",
            "PAY|01.00.0000",
            "X|02.00.0000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let c = calls(&[
            ("SCM|01.00.0000", &[("FIN", "01.00")]),
            (
                "FIN|01.00.0000",
                &[("PAY", "01.00.0000"), ("OUTSIDE", "01.00")],
            ),
        ]);
        let o = activation_order(&ids, &c).unwrap();
        let pos = |x: &str| o.iter().position(|y| y == x).unwrap();
        assert!(pos("PAY|01.00.0000") < pos("FIN|01.00.0000"));
        assert!(pos("FIN|01.00.0000") < pos("SCM|01.00.0000"));
        assert_eq!(o.len(), 4);
        let cyc = calls(&[
            ("SCM|01.00.0000", &[("FIN", "")]),
            ("FIN|01.00.0000", &[("SCM", "")]),
        ]);
        let e = activation_order(&ids, &cyc).unwrap_err();
        assert!(
            e.contains("cycle") && e.contains("SCM") && e.contains("FIN"),
            "{e}"
        );
    }

    /// A clock the test drives: `sleep` moves it forward at once.
    struct Manual(Mutex<DateTime<Utc>>);
    impl Clock for Manual {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock().unwrap()
        }
        fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
            *self.0.lock().unwrap() += chrono::Duration::from_std(d).unwrap();
            Box::pin(async {})
        }
    }

    #[tokio::test]
    async fn the_window_is_watched_to_its_end_and_a_failure_ends_it_at_once() {
        let clock = Manual(Mutex::new(Utc::now()));
        let start = clock.now();
        let looks = smoke_window(
            &clock,
            Duration::from_secs(300),
            Duration::from_secs(30),
            |_| async { Verdict::Ok },
        )
        .await
        .unwrap();
        assert_eq!(
            looks, 11,
            "one look every 30 s over 300 s, the last at the end"
        );
        assert_eq!((clock.now() - start).num_seconds(), 300);
        let mut n = 0;
        let e = smoke_window(
            &clock,
            Duration::from_secs(300),
            Duration::from_secs(30),
            |_| {
                n += 1;
                let k = n;
                async move {
                    if k == 3 {
                        Verdict::Fail("errors".into())
                    } else {
                        Verdict::Ok
                    }
                }
            },
        )
        .await
        .unwrap_err();
        assert_eq!((e.as_str(), n), ("errors", 3));
        let last_only = smoke_window(
            &clock,
            Duration::ZERO,
            Duration::from_secs(30),
            |last| async move {
                if last {
                    Verdict::Ok
                } else {
                    Verdict::Fail("not last".into())
                }
            },
        )
        .await;
        assert_eq!(last_only, Ok(1));
    }

    #[test]
    fn options_refuse_unknown_keys() {
        let e =
            serde_json::from_value::<CutoverOpts>(serde_json::json!({"smoke": {"windw_secs": 3}}))
                .unwrap_err();
        assert!(e.to_string().contains("unknown field `windw_secs`"), "{e}");
        let o: CutoverOpts = serde_json::from_value(serde_json::json!({
            "smoke": {"window_secs": 0, "max_error_rate": 0.1, "calls": [{"path": "/x"}]},
            "activate": true
        }))
        .unwrap();
        assert_eq!(o.smoke.calls[0].method, "POST");
        assert!(o.rollback);
    }
}
