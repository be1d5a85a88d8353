//! `import`: archives into an instance, each verified against its sha256 first, in dependency
//! order (libraries, lookups, projects, packages, then integrations), each after a check of the
//! target (import new, replace, or skip when its content is unchanged or when overwrite is off),
//! what a replace loses saved for rollback first; then the activations.
//!
//! A replace is recorded as its steps: stopping the schedule and deactivating (when the target
//! needs it) are effects of their own before the replace, so a plan, a resume and the ledger see
//! each of them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::OpsError;
use super::activate::{self, ActivateWhen};
use super::connections::{ConnectionSpec, Connections};
use super::ctx::{Ctx, fan_out_adaptive, fan_out_adaptive_stream};
use super::kinds::{KindOps, TargetState, import_rank, ops_for};
use super::schedules::SchedulesMode;
use crate::artifact::{Artifact, ArtifactKey, ArtifactKind};
use crate::effect::{Action, Decision, Effect, EffectError, Failure, Outcome, SkipReason};
use crate::ledger::{Intent, RollbackEntry, Stage, StepError, StepStatus};
use crate::oic::{ActivateOptions, ImportAction, ImportMode, ImportOutcome, Lane, OicClient};

/// Options of `import_archives` (and of a restore, which uses the same defaults).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImportOptions {
    /// Replace what the target holds (true) or leave it alone (false).
    pub overwrite: bool,
    /// When to activate integrations after the import.
    pub activate: ActivateWhen,
    /// Hard cap on imports at a time (default: adaptive, see `oic::Limiter`).
    pub concurrency: Option<usize>,
    /// Hard cap on activations at a time (default: adaptive, see `oic::Limiter`).
    pub activation_concurrency: Option<usize>,
    /// Activate in OIC's asynchronous mode and poll.
    pub async_activation: bool,
    /// Seconds to wait for an activation.
    pub activation_timeout: u64,
    /// Raise the first failure instead of recording it and going on.
    pub stop_on_error: bool,
    pub tracing: Option<bool>,
    pub payload_tracing: Option<bool>,
    /// What to do with the schedules that travel with the integrations (`keep`, `create`,
    /// `skip`); applied after the activations (see [`super::schedules`]).
    pub schedules: SchedulesMode,
    /// Connections to configure and test after the imports, before any activation (a map, or
    /// a TOML file; see [`super::connections`]).
    pub connections: Option<Connections>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            overwrite: false,
            activate: ActivateWhen::Keep,
            concurrency: None,
            activation_concurrency: None,
            async_activation: true,
            activation_timeout: 300,
            stop_on_error: false,
            tracing: None,
            payload_tracing: None,
            schedules: SchedulesMode::Keep,
            connections: None,
        }
    }
}

impl ImportOptions {
    /// Replace what the target holds, or leave it alone.
    fn mode(&self) -> ImportMode {
        if self.overwrite {
            ImportMode::Overwrite
        } else {
            ImportMode::SkipExisting
        }
    }

    fn activation(&self) -> ActivateOptions {
        ActivateOptions {
            async_mode: self.async_activation,
            timeout: Duration::from_secs(self.activation_timeout),
            poll_interval: Duration::from_millis(500),
            tracing: self.tracing,
            payload_tracing: self.payload_tracing,
        }
    }
}

/// What happened to one item of a bulk verb.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemAction {
    Created,
    Replaced,
    Skipped,
    Planned,
    Failed,
    Activated,
    Deactivated,
    Deleted,
    Restored,
}

impl std::fmt::Display for ItemAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        f.write_str(&s)
    }
}

/// The result of importing one artifact: `id`, `kind`, `action`, `status` (the OIC status after
/// the activation, or `()`), `error`, and what else there is to know about it.
#[derive(Clone, Debug, Serialize)]
pub struct ImportResult {
    pub id: String,
    pub kind: String,
    pub action: Option<ItemAction>,
    /// The OIC status after the activation (`ACTIVATED`), when one was made.
    pub status: Option<String>,
    pub error: Option<String>,
    pub code: String,
    pub version: String,
    pub sha256: String,
    pub source: String,
    pub source_status: Option<String>,
    pub activated: bool,
    /// Its status on the target before the import, when it was there.
    pub previous_status: Option<String>,
    /// Why it was skipped.
    pub reason: Option<String>,
    /// The stage that failed (`import` or `activate`).
    pub stage: Option<String>,
    /// The HTTP status of the failure, if it was one.
    pub status_code: Option<u16>,
}

impl ImportResult {
    pub(crate) fn of(a: &Artifact) -> ImportResult {
        ImportResult {
            id: a.key.id(),
            kind: a.key.kind.as_str().into(),
            action: None,
            status: None,
            error: None,
            code: a.key.code.clone(),
            version: a.key.version.clone(),
            sha256: a.sha256.clone(),
            source: a.source.clone(),
            source_status: a.source_status.clone(),
            activated: false,
            previous_status: None,
            reason: None,
            stage: None,
            status_code: None,
        }
    }

    fn fail(&mut self, stage: Stage, e: &EffectError) {
        if stage == Stage::Import {
            self.action = Some(ItemAction::Failed);
        }
        self.stage = Some(stage.as_str().into());
        self.error = Some(e.error.message.clone());
        self.status_code = e.error.status;
    }
}

/// The imports done, with the activations that follow them (see [`activate_imported`]).
pub struct Imported {
    pub results: Vec<ImportResult>,
    /// (index in `results`, artifact, imported by this run).
    activations: Vec<(usize, Artifact, bool)>,
    /// The schedules, put on the target after the activations.
    schedules: Vec<Artifact>,
    /// The schedules already put (each right after its integration's activation).
    applied: Vec<ImportResult>,
}

/// Imports ([`import`]), configures and tests the `connections` the options name, activates
/// ([`activate_imported`]), then puts the schedules on the target. The imports, connections
/// and activations overlap ([`pipelined`]): an integration is activated as soon as its own
/// import is done and the connections its archive uses are configured. With `stop_on_error`,
/// and in a dry run (a plan reads in that order), they are phases: every import, then every
/// connection (with `stop_on_error` a failing one stops here), then the activations.
pub async fn import_archives(
    ctx: &dyn Ctx,
    client: &OicClient,
    artifacts: Vec<Artifact>,
    o: &ImportOptions,
) -> Result<Vec<ImportResult>, OpsError> {
    let specs = match &o.connections {
        Some(c) => Some(c.for_instance(client.name())?),
        None => None,
    };
    if !o.stop_on_error && !ctx.exec().dry_run() {
        return pipelined(ctx, client, artifacts, o, specs.unwrap_or_default()).await;
    }
    let imported = import(ctx, client, artifacts, o).await?;
    if let Some(specs) = specs {
        let conns = super::connections::configure(ctx, client, specs, true).await;
        if o.stop_on_error
            && let Some(bad) = conns.iter().find(|r| r.error.is_some())
        {
            return Err(OpsError::Connection {
                at: client.name().to_string(),
                message: format!(
                    "connection {}: {}",
                    bad.connection,
                    bad.error.as_deref().unwrap_or_default()
                ),
            });
        }
    }
    activate_imported(ctx, client, imported, o).await
}

/// [`import_archives`] with its stages overlapping. What the integrations depend on (libraries,
/// lookups, projects, packages) is imported first, a kind after the other. Then each integration
/// goes on as soon as it can: its import; the connections its archive uses (among those the
/// options name), each configured and tested once, as soon as the first import that brings it
/// is done (OIC creates a missing connection with the import); its activation. Connections no
/// import brings are configured after the imports; the schedules follow the activations. At
/// most `concurrency` imports and `activation_concurrency` activations are in flight, and never
/// more requests together than the larger of the two: the instance sees no more than it would
/// from the stages one after the other.
async fn pipelined(
    ctx: &dyn Ctx,
    client: &OicClient,
    artifacts: Vec<Artifact>,
    o: &ImportOptions,
    specs: BTreeMap<String, ConnectionSpec>,
) -> Result<Vec<ImportResult>, OpsError> {
    use tokio::sync::Semaphore;
    let mode = o.mode();
    let conc = o.concurrency.unwrap_or(ctx.bounds().imports).max(1);
    let aconc = o
        .activation_concurrency
        .unwrap_or(ctx.bounds().activations)
        .max(1);
    let width = conc.max(aconc);
    if let Some(c) = o.concurrency.max(o.activation_concurrency) {
        client.limiter().start_at(Lane::Writes, c);
    }
    let (schedules, artifacts) = selection(ctx, artifacts);
    let listed = listed_integrations(ctx, client, &artifacts).await;
    let mut ordered: Vec<(usize, Artifact)> = artifacts.into_iter().enumerate().collect();
    ordered.sort_by_key(|(i, a)| (import_rank(a.key.kind), *i));
    let first = ordered
        .iter()
        .position(|(_, a)| import_rank(a.key.kind) >= import_rank(ArtifactKind::Integration))
        .unwrap_or(ordered.len());
    let later = ordered.split_off(first);
    let mut done = import_ranked(ctx, client, &ordered, mode, conc, &listed, false).await;

    let (total, imports, activations) = (
        Semaphore::new(width),
        Semaphore::new(conc),
        Semaphore::new(aconc),
    );
    let act = o.activation();
    let setup = SpecSetup::new(ctx, client, &specs, &total);
    let then: &dyn BeforeActivation = &setup;
    let res = fan_out_adaptive(
        ctx.bar(later.len(), "import"),
        // items waiting for a connection hold no place: others go on meanwhile
        width.saturating_mul(4),
        client,
        Lane::Writes,
        later,
        |(i, a)| {
            let (total, imports, activations) = (&total, &imports, &activations);
            let (act, listed) = (&act, &listed);
            async move {
                let (i, a, r) = {
                    let _p = (imports.acquire().await, total.acquire().await);
                    import_listed(ctx, client, listed, i, a, mode).await
                };
                let Some(fresh) = activation_of(&a, &r, o) else {
                    return (i, a, r, None);
                };
                if let Some(ready) = then.ready(&a) {
                    ready.await;
                }
                let _p = (activations.acquire().await, total.acquire().await);
                let ar = activate_after_import(ctx, client, act, &a, fresh).await;
                (i, a, r, Some(ar))
            }
        },
    )
    .await;
    // The connections no import brought, as before the activations would have been.
    let rest = setup.untouched(&specs);
    drop(setup);
    if !rest.is_empty() {
        super::connections::configure(ctx, client, rest, true).await;
    }

    let mut activated_as: HashMap<usize, Result<Outcome<String>, EffectError>> = HashMap::new();
    for (i, a, r, ar) in res {
        if let Some(ar) = ar {
            activated_as.insert(i, ar);
        }
        done.push((i, a, r));
    }
    done.sort_by_key(|(i, _, _)| *i);
    let order: Vec<usize> = done.iter().map(|(i, _, _)| *i).collect();
    let Imported {
        mut results,
        activations,
        ..
    } = gather(done, o)?;
    for (idx, _, _) in activations {
        if let Some(ar) = activated_as.remove(&order[idx]) {
            activated(&mut results[idx], ar, o)?;
        }
    }
    finish_with_schedules(ctx, client, results, schedules, o).await
}

/// The connections of an import's options (`connections`): each configured and tested once, by
/// the first integration whose archive uses it, before that integration's activation (the
/// others wait for the same result). The [`BeforeActivation`] of [`pipelined`], as
/// `ops::instance`'s `ConnSetup` is of a whole-instance migration's [`import_arriving`].
struct SpecSetup<'a> {
    /// Each connection's configuration, made up front and run by the first that awaits it
    /// (holding a place of `total` while it runs).
    by_code: BTreeMap<String, ConfigureOnce<'a>>,
}

type ConfigureOnce<'a> = futures::future::Shared<
    futures::future::LocalBoxFuture<'a, super::connections::ConnectionResult>,
>;

impl<'a> SpecSetup<'a> {
    fn new(
        ctx: &'a dyn Ctx,
        client: &'a OicClient,
        specs: &'a BTreeMap<String, ConnectionSpec>,
        total: &'a tokio::sync::Semaphore,
    ) -> SpecSetup<'a> {
        use futures::FutureExt;
        let by_code = specs
            .iter()
            .map(|(code, spec)| {
                let f = async move {
                    let _p = total.acquire().await;
                    super::connections::configure_one(ctx, client, code.clone(), spec, true).await
                }
                .boxed_local()
                .shared();
                (code.clone(), f)
            })
            .collect();
        SpecSetup { by_code }
    }

    /// The connections no activation waited for (not configured yet), with their configuration.
    fn untouched(
        &self,
        specs: &BTreeMap<String, ConnectionSpec>,
    ) -> BTreeMap<String, ConnectionSpec> {
        specs
            .iter()
            .filter(|(c, _)| self.by_code.get(*c).is_none_or(|f| f.peek().is_none()))
            .map(|(c, s)| (c.clone(), s.clone()))
            .collect()
    }
}

impl BeforeActivation for SpecSetup<'_> {
    /// The connections `a`'s archive uses that the options configure, configured one after the
    /// other (the place of the fan-out holds one request at a time).
    fn ready<'b>(&'b self, a: &'b Artifact) -> Option<futures::future::LocalBoxFuture<'b, ()>> {
        use futures::FutureExt;
        Some(
            async move {
                for code in connections_of(a).await {
                    if let Some(f) = self.by_code.get(&code) {
                        f.clone().await;
                    }
                }
            }
            .boxed_local(),
        )
    }
}

/// Counts the selection for the run's record (a restore's: a migration's was counted by its
/// exports) and takes its schedules apart (they follow the activations): (schedules, the rest).
fn selection(ctx: &dyn Ctx, artifacts: Vec<Artifact>) -> (Vec<Artifact>, Vec<Artifact>) {
    ctx.exec()
        .record()
        .expect(Stage::Import, artifacts.len() as u64);
    artifacts
        .into_iter()
        .partition(|a| a.key.kind == ArtifactKind::Schedule)
}

/// The connections an integration archive uses (none for another kind, a planned archive, or
/// one that cannot be read: its import said so already).
async fn connections_of(a: &Artifact) -> Vec<String> {
    if a.key.kind != ArtifactKind::Integration || a.is_planned() {
        return vec![];
    }
    let path = a.path().to_path_buf();
    match tokio::task::spawn_blocking(move || crate::oic::archive::inspect(&path)).await {
        Ok(Ok(info)) => info.connections.into_iter().collect(),
        _ => vec![],
    }
}

/// Phase 1: the imports by kind, in dependency order.
pub async fn import(
    ctx: &dyn Ctx,
    client: &OicClient,
    artifacts: Vec<Artifact>,
    o: &ImportOptions,
) -> Result<Imported, OpsError> {
    let mode = o.mode();
    let conc = o.concurrency.unwrap_or(ctx.bounds().imports);
    let (schedules, artifacts) = selection(ctx, artifacts);
    if let Some(c) = o.concurrency {
        client.limiter().start_at(Lane::Writes, c);
    }
    let listed = listed_integrations(ctx, client, &artifacts).await;
    let mut ordered: Vec<(usize, Artifact)> = artifacts.into_iter().enumerate().collect();
    ordered.sort_by_key(|(i, a)| (import_rank(a.key.kind), *i));
    let mut done = import_ranked(ctx, client, &ordered, mode, conc, &listed, o.stop_on_error).await;
    done.sort_by_key(|(i, _, _)| *i);
    let mut imported = gather(done, o)?;
    imported.schedules = schedules;
    Ok(imported)
}

/// Imports `ordered` (sorted by [`import_rank`]) a rank after the other, in parallel within a
/// rank; with `stop_on_error`, no rank after one with a failure.
async fn import_ranked(
    ctx: &dyn Ctx,
    client: &OicClient,
    ordered: &[(usize, Artifact)],
    mode: ImportMode,
    conc: usize,
    listed: &Option<HashSet<String>>,
    stop_on_error: bool,
) -> Vec<Imports> {
    let mut done: Vec<Imports> = vec![];
    let mut rest = ordered;
    while let Some((_, first)) = rest.first() {
        let rank = import_rank(first.key.kind);
        let n = rest
            .iter()
            .position(|(_, a)| import_rank(a.key.kind) != rank)
            .unwrap_or(rest.len());
        let (batch, after) = rest.split_at(n);
        rest = after;
        let res = fan_out_adaptive(
            ctx.bar(batch.len(), "import"),
            conc,
            client,
            Lane::Writes,
            batch.to_vec(),
            |(i, a)| import_listed(ctx, client, listed, i, a, mode),
        )
        .await;
        let failed = res.iter().any(|(_, _, r)| r.is_err());
        done.extend(res);
        if stop_on_error && failed {
            break;
        }
    }
    done
}

/// Whether an import's outcome is followed by an activation: `Some(fresh)` (`fresh`: this run
/// imported it, or plans to), `None` when it is not activated.
fn activation_of(
    a: &Artifact,
    r: &Result<Outcome<ImportOutcome>, EffectError>,
    o: &ImportOptions,
) -> Option<bool> {
    if !o.activate.wants(a) {
        return None;
    }
    match r {
        Ok(Outcome::Done(out)) => (out.action != ImportAction::Skipped).then_some(true),
        Ok(Outcome::Planned) => Some(true),
        // Already there as wanted: its activation still follows.
        Ok(Outcome::Skipped(why)) => why.import_continues().then_some(false),
        Err(_) => None,
    }
}

/// What a pipelined import waits for before it activates an integration (see
/// [`import_arriving`]).
pub trait BeforeActivation {
    /// Resolves when what the activation of `a` needs on the target is in place (its
    /// connections configured and tested); `None`: not known, its activation waits for the end
    /// of the imports ([`activate_imported`]).
    fn ready<'a>(&'a self, a: &'a Artifact) -> Option<futures::future::LocalBoxFuture<'a, ()>>;
}

/// One import of [`import_arriving`]: its result, its activation when it is left for later
/// (`Some(fresh)`), and its schedule's results when it was put at once.
type Arrived = (ImportResult, Artifact, Option<bool>, Vec<ImportResult>);

/// Phase 1 of a migration whose exports overlap its imports: each archive of `arriving` is
/// imported as soon as it is in (and a place is free), none waiting for the others. They must
/// all be of one import rank (the caller imports what comes before them first, with
/// [`import`]); `len`: how many are expected (the progress bar). With `then`, each integration
/// goes on in the same place: activated (when the options want it) as soon as `then` says what
/// it needs is ready, then its schedule put; otherwise, and for those `then` knows nothing of,
/// the activations and schedules are left to [`activate_imported`].
pub async fn import_arriving(
    ctx: &dyn Ctx,
    client: &OicClient,
    arriving: impl futures::Stream<Item = Artifact>,
    len: usize,
    o: &ImportOptions,
    then: Option<&dyn BeforeActivation>,
) -> Result<Imported, OpsError> {
    use futures::StreamExt;
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    let mode = o.mode();
    let conc = o.concurrency.unwrap_or(ctx.bounds().imports);
    // A given concurrency is a start as well as a cap, as in [`import`] (which a whole-instance
    // migration calls just before, for the earlier ranks: it had set the window already).
    if let Some(c) = o.concurrency {
        client.limiter().start_at(Lane::Writes, c);
    }
    let act = o.activation();
    // Listed once, before the first import (one page per 100, while the first exports run).
    let listed = target_integrations(ctx, client).await;
    // The schedules, by their integration: taken from `arriving` as soon as they are in (not
    // when a place frees up), so that an integration finds its own (exported right after it).
    let schedules: Mutex<BTreeMap<(String, String), Artifact>> = Mutex::new(BTreeMap::new());
    let (fwd, archives) = futures::channel::mpsc::unbounded();
    let pump = async {
        let fwd = fwd;
        let mut arriving = std::pin::pin!(arriving);
        while let Some(a) = arriving.next().await {
            if a.key.kind == ArtifactKind::Schedule {
                let k = (a.key.code.clone(), a.key.version.clone());
                schedules
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(k, a);
            } else {
                let _ = fwd.unbounded_send(a);
            }
        }
    };
    // With `stop_on_error`, nothing starts after a failure (as [`import`] stops after the batch).
    let failed = AtomicBool::new(false);
    let items = archives
        .take_while(|_| {
            futures::future::ready(!(o.stop_on_error && failed.load(Ordering::Relaxed)))
        })
        .enumerate();
    let work = fan_out_adaptive_stream(
        ctx.bar(len, "import"),
        conc,
        client,
        Lane::Writes,
        items,
        |(i, a)| {
            let (listed, failed, act, schedules) = (&listed, &failed, &act, &schedules);
            async move {
                let (_, a, r) = import_listed(ctx, client, listed, i, a, mode).await;
                if r.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                let fresh = activation_of(&a, &r, o);
                let mut m = import_result(&a, r, o)?;
                let Some(then) = then else {
                    return Ok((m, a, fresh, vec![]));
                };
                if let Some(fresh) = fresh {
                    let Some(ready) = then.ready(&a) else {
                        return Ok((m, a, Some(fresh), vec![]));
                    };
                    ready.await;
                    let r = activate_after_import(ctx, client, act, &a, fresh).await;
                    activated(&mut m, r, o)?;
                }
                let k = (a.key.code.clone(), a.key.version.clone());
                let mine = schedules
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&k);
                let applied = match mine {
                    Some(s) => {
                        super::schedules::apply(ctx, client, vec![s], o, std::slice::from_ref(&m))
                            .await?
                    }
                    None => vec![],
                };
                Ok::<Arrived, OpsError>((m, a, None, applied))
            }
        },
    );
    let ((), done) = futures::join!(pump, work);
    let mut imported = Imported {
        results: vec![],
        activations: vec![],
        schedules: vec![],
        applied: vec![],
    };
    for r in done {
        let (m, a, later, applied) = r?;
        if let Some(fresh) = later {
            imported
                .activations
                .push((imported.results.len(), a, fresh));
        }
        imported.results.push(m);
        imported.applied.extend(applied);
    }
    imported.schedules = schedules
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_values()
        .collect();
    Ok(imported)
}

impl Imported {
    /// `later` after these: its results follow, its activations and schedules too.
    pub fn extend(&mut self, later: Imported) {
        let base = self.results.len();
        self.results.extend(later.results);
        self.activations.extend(
            later
                .activations
                .into_iter()
                .map(|(i, a, fresh)| (base + i, a, fresh)),
        );
        self.schedules.extend(later.schedules);
        self.applied.extend(later.applied);
    }
}

type Imports = (usize, Artifact, Result<Outcome<ImportOutcome>, EffectError>);

/// One import of phase 1: absent from the target's list (when it was read) is imported without
/// a check of its own.
async fn import_listed(
    ctx: &dyn Ctx,
    client: &OicClient,
    listed: &Option<HashSet<String>>,
    i: usize,
    a: Artifact,
    mode: ImportMode,
) -> Imports {
    let absent = listed.as_ref().is_some_and(|l| !l.contains(&a.key.id()));
    let r = import_one(ctx, client, &a, mode, absent).await;
    (i, a, r)
}

/// The target's integrations, listed once (a page per 100) so that a new import needs no GET of
/// its own; `None` when the list cannot be read (each import then checks for itself).
async fn listed_integrations(
    ctx: &dyn Ctx,
    client: &OicClient,
    artifacts: &[Artifact],
) -> Option<HashSet<String>> {
    if !artifacts
        .iter()
        .any(|a| a.key.kind == ArtifactKind::Integration && !a.is_planned())
    {
        return None;
    }
    target_integrations(ctx, client).await
}

/// The target's integrations as `CODE|VERSION`; `None` when the list cannot be read (each
/// import then finds out for itself).
async fn target_integrations(ctx: &dyn Ctx, client: &OicClient) -> Option<HashSet<String>> {
    let l = ctx
        .exec()
        .read("list_integrations", || client.list_integrations(None))
        .await
        .ok()?;
    Some(
        l.into_iter()
            .map(|i| format!("{}|{}", i.code, i.version))
            .collect(),
    )
}

/// The results of phase 1 and the activations that follow.
fn gather(done: Vec<Imports>, o: &ImportOptions) -> Result<Imported, OpsError> {
    let mut results = vec![];
    let mut activations = vec![];
    for (_, a, r) in done {
        if let Some(fresh) = activation_of(&a, &r, o) {
            activations.push((results.len(), a.clone(), fresh));
        }
        results.push(import_result(&a, r, o)?);
    }
    Ok(Imported {
        results,
        activations,
        schedules: vec![],
        applied: vec![],
    })
}

/// The result of one import.
fn import_result(
    a: &Artifact,
    r: Result<Outcome<ImportOutcome>, EffectError>,
    o: &ImportOptions,
) -> Result<ImportResult, OpsError> {
    let mut m = ImportResult::of(a);
    match r {
        Ok(Outcome::Done(out)) => {
            m.action = Some(match out.action {
                ImportAction::Created => ItemAction::Created,
                ImportAction::Replaced => ItemAction::Replaced,
                ImportAction::Skipped => ItemAction::Skipped,
            });
            m.previous_status = out.previous_status;
        }
        Ok(Outcome::Planned) => m.action = Some(ItemAction::Planned),
        Ok(Outcome::Skipped(why)) => {
            m.action = Some(ItemAction::Skipped);
            m.reason = Some(why.to_string());
        }
        Err(e) if e.cancelled => return Err(OpsError::Cancelled),
        Err(e) if o.stop_on_error => return Err(OpsError::effect(e)),
        Err(e) => m.fail(Stage::Import, &e),
    }
    Ok(m)
}

/// Phase 2: the activations, bounded (OIC advises against many parallel activations).
pub async fn activate_imported(
    ctx: &dyn Ctx,
    client: &OicClient,
    imported: Imported,
    o: &ImportOptions,
) -> Result<Vec<ImportResult>, OpsError> {
    let Imported {
        mut results,
        activations,
        schedules,
        applied,
    } = imported;
    let conc = o.activation_concurrency.unwrap_or(ctx.bounds().activations);
    if let Some(c) = o.activation_concurrency {
        client.limiter().start_at(Lane::Writes, c);
    }
    let act = o.activation();
    let done = fan_out_adaptive(
        ctx.bar(activations.len(), "activate"),
        conc,
        client,
        Lane::Writes,
        activations,
        |(idx, a, fresh)| {
            let act = &act;
            async move {
                (
                    idx,
                    activate_after_import(ctx, client, act, &a, fresh).await,
                )
            }
        },
    )
    .await;
    for (idx, r) in done {
        activated(&mut results[idx], r, o)?;
    }
    let mut results = finish_with_schedules(ctx, client, results, schedules, o).await?;
    results.extend(applied);
    Ok(results)
}

/// The schedules put on the target once the imports and activations are done.
async fn finish_with_schedules(
    ctx: &dyn Ctx,
    client: &OicClient,
    mut results: Vec<ImportResult>,
    schedules: Vec<Artifact>,
    o: &ImportOptions,
) -> Result<Vec<ImportResult>, OpsError> {
    if !schedules.is_empty() {
        let s = super::schedules::apply(ctx, client, schedules, o, &results).await?;
        results.extend(s);
    }
    Ok(results)
}

/// The activation that follows the import of `a` (one `activate` effect; `fresh`: this run
/// imported it).
async fn activate_after_import(
    ctx: &dyn Ctx,
    client: &OicClient,
    act: &ActivateOptions,
    a: &Artifact,
    fresh: bool,
) -> Result<Outcome<String>, EffectError> {
    let reason = a
        .source_status
        .as_deref()
        .map(|s| format!("was {s} on {}", a.source));
    let eff = Effect::new(
        Stage::Activate,
        a.key.clone(),
        client.name(),
        Action::Activate.to_string(),
    )
    .with_sha256(Some(a.sha256.clone()).filter(|s| !s.is_empty()));
    let eff = match reason {
        Some(r) => eff.with_reason(r),
        None => eff,
    };
    activate::activate_one(ctx.exec(), client, act, eff, fresh).await
}

/// Notes an activation's outcome in its import's result.
fn activated(
    m: &mut ImportResult,
    r: Result<Outcome<String>, EffectError>,
    o: &ImportOptions,
) -> Result<(), OpsError> {
    match r {
        Ok(Outcome::Done(status)) => {
            m.status = Some(status);
            m.activated = true;
        }
        Ok(_) => {}
        Err(e) if e.cancelled => return Err(OpsError::Cancelled),
        Err(e) if o.stop_on_error => return Err(OpsError::effect(e)),
        Err(e) => m.fail(Stage::Activate, &e),
    }
    Ok(())
}

/// What a check of the target found.
pub struct TargetCheck {
    pub decision: Decision,
    /// What the target holds, when it holds it.
    pub state: Option<TargetState>,
    /// The target's current archive (exported to compare contents), when it was exported.
    pub current: Option<Artifact>,
    /// The content digest of `current` (see [`crate::vault::content_hash`]).
    pub current_digest: Option<String>,
    /// The content digest of the archive the import brings, when it was computed.
    pub incoming_digest: Option<String>,
}

impl TargetCheck {
    fn absent(target: &str) -> TargetCheck {
        TargetCheck {
            decision: Decision::go(Action::ImportNew, format!("not on {target}")),
            state: None,
            current: None,
            current_digest: None,
            incoming_digest: None,
        }
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// What an import brings, as [`target_check`] compares it with what the target holds: by content
/// digest, never by bytes (two exports of the same content differ byte for byte, as real OIC
/// stamps each export; see [`crate::vault::content_hash`]).
#[derive(Clone, Copy, Debug)]
pub enum Incoming<'a> {
    /// An archive at hand; its digest is computed only when the target holds the artifact.
    Archive(&'a Artifact),
    /// An archive known by what was recorded of it (a rollback entry): its sha256 and, when it
    /// was recorded, its content digest (without it, only identical bytes count as unchanged).
    Recorded {
        sha256: &'a str,
        content: Option<&'a str>,
    },
}

/// The content digest of a local archive, off the runtime (its sha256 when it is not a zip).
pub async fn content_digest(a: &Artifact) -> Result<String, Failure> {
    let a2 = a.clone();
    tokio::task::spawn_blocking(move || crate::vault::content_hash(a2.path(), &a2.sha256))
        .await
        .map_err(|e| Failure::Task(e.to_string()))?
        .map_err(|e| {
            Failure::Task(format!(
                "cannot read the archive {}: {e}",
                a.path().display()
            ))
        })
}

/// Reads the target to decide how an archive of `key` would be imported: skipped when the
/// target holds the same content (compared by content digest), else replaced or imported new.
pub async fn target_check(
    kops: &dyn KindOps,
    client: &OicClient,
    key: &ArtifactKey,
    incoming: Incoming<'_>,
    mode: ImportMode,
) -> Result<TargetCheck, Failure> {
    let Some(st) = kops.state(client, key).await? else {
        return Ok(TargetCheck::absent(client.name()));
    };
    if mode == ImportMode::SkipExisting {
        return Ok(TargetCheck {
            decision: Decision::Skip(SkipReason::Present {
                target: client.name().to_string(),
                status: st.status.clone(),
            }),
            state: Some(st),
            current: None,
            current_digest: None,
            incoming_digest: None,
        });
    }
    let current = kops.export_current(client, key).await?;
    let current_digest = content_digest(&current).await?;
    let (want, unchanged) = match incoming {
        Incoming::Archive(a) => {
            let d = content_digest(a).await?;
            let same = d == current_digest;
            (Some(d), same)
        }
        Incoming::Recorded {
            content: Some(c), ..
        } => (Some(c.to_string()), c == current_digest),
        Incoming::Recorded {
            sha256,
            content: None,
        } => (None, !sha256.is_empty() && sha256 == current.sha256),
    };
    let decision = if unchanged {
        Decision::Skip(SkipReason::Unchanged {
            sha256: want.clone().unwrap_or_else(|| current_digest.clone()),
        })
    } else {
        let has = match (&want, incoming) {
            (Some(d), _) => format!("content {}", short(d)),
            (None, Incoming::Recorded { sha256, .. }) if !sha256.is_empty() => {
                format!("sha256 {}", short(sha256))
            }
            _ => "?".to_string(),
        };
        Decision::go(
            Action::Replace,
            format!(
                "{} holds content {}… ({}), the archive has {has}…",
                client.name(),
                short(&current_digest),
                st.status,
            ),
        )
    };
    Ok(TargetCheck {
        decision,
        state: Some(st),
        current: Some(current),
        current_digest: Some(current_digest),
        incoming_digest: want,
    })
}

/// Imports one archive as its effects: the check (also in a dry run), then the steps a replace
/// needs, then the import; `listed_absent`: the target's list did not hold it.
pub async fn import_one(
    ctx: &dyn Ctx,
    client: &OicClient,
    a: &Artifact,
    mode: ImportMode,
    listed_absent: bool,
) -> Result<Outcome<ImportOutcome>, EffectError> {
    let exec = ctx.exec();
    let action = match mode {
        ImportMode::Overwrite => "import (replace if present)",
        ImportMode::SkipExisting => "import (skip if present)",
    };
    let mut eff = Effect::new(Stage::Import, a.key.clone(), client.name(), action)
        .with_sha256(Some(a.sha256.clone()).filter(|s| !s.is_empty()));
    if a.is_planned() {
        exec.note(&eff, StepStatus::Planned, None);
        return Ok(Outcome::Planned);
    }
    let Some(kops) = ops_for(a.key.kind) else {
        let msg = format!("importing a {} archive is not supported", a.key.kind);
        return Err(failed_effect(exec, &eff, "config", msg));
    };
    if let Err(ie) = verify_blocking(a).await {
        // A corrupt archive is refused before anything is sent; it is not retried.
        return Err(failed_effect(exec, &eff, "integrity", ie.to_string()));
    }
    if let Some(why) = exec.done_before(&eff) {
        exec.skip(eff, why.clone());
        return Ok(Outcome::Skipped(why));
    }
    let d = exec
        .check(&eff, || {
            decide(ctx, kops, client, a, mode, &eff, listed_absent)
        })
        .await?;
    let (action, reason) = match d.decision {
        Decision::Skip(why) => {
            exec.skip(eff, why.clone());
            return Ok(Outcome::Skipped(why));
        }
        Decision::Go { action, reason } => (action, reason),
    };
    eff.action = action.to_string();
    if reason.is_some() {
        eff.reason = reason;
    }
    let previous_status = d
        .state
        .as_ref()
        .map(|s| s.status.clone())
        .filter(|s| !s.is_empty());
    let created = action == Action::ImportNew;
    let r = apply(ctx, kops, client, a, eff, created, d.state.as_ref()).await?;
    Ok(match r {
        Outcome::Done(()) => Outcome::Done(ImportOutcome {
            action: if created {
                ImportAction::Created
            } else {
                ImportAction::Replaced
            },
            previous_status,
        }),
        Outcome::Planned => Outcome::Planned,
        Outcome::Skipped(w) => Outcome::Skipped(w),
    })
}

/// Performs a decided import as its effects: for a replace, the steps the target needs first
/// (stop the schedule, deactivate), each an effect of its own; then the create or the replace
/// (`eff`). Used by import and by rollback's restore.
pub async fn apply(
    ctx: &dyn Ctx,
    kops: &dyn KindOps,
    client: &OicClient,
    a: &Artifact,
    eff: Effect,
    created: bool,
    state: Option<&TargetState>,
) -> Result<Outcome<()>, EffectError> {
    let exec = ctx.exec();
    // Changed by this run from here on: what follows is never skipped as done before.
    exec.touch(&eff);
    if !created {
        for step in kops.before_replace(state.unwrap_or(&TargetState::default())) {
            let s = Effect::new(
                Stage::Deactivate,
                a.key.clone(),
                client.name(),
                step.to_string(),
            )
            .with_reason(format!("before the replace on {}", client.name()));
            exec.run(s, || kops.step(client, &a.key, &step)).await?;
        }
    }
    exec.record().note_intent(&Intent {
        stage: eff.stage,
        kind: a.key.kind,
        code: a.key.code.clone(),
        version: a.key.version.clone(),
        target: client.name().to_string(),
        sha256: eff.sha256.clone().unwrap_or_default(),
    });
    let record = exec.record().clone();
    let tries = std::sync::atomic::AtomicU32::new(0);
    exec.run(eff, || {
        let first = tries.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0;
        send(kops, client, a, created, &record, first)
    })
    .await
}

/// The check before an import: reads the target (unless its list showed it absent), waits for
/// an import the resumed run sent and never saw answered, and saves what a replace would lose.
async fn decide(
    ctx: &dyn Ctx,
    kops: &dyn KindOps,
    client: &OicClient,
    a: &Artifact,
    mode: ImportMode,
    eff: &Effect,
    listed_absent: bool,
) -> Result<TargetCheck, Failure> {
    let exec = ctx.exec();
    // The run being resumed sent this import and died before recording its end: the request
    // may still land. Wait for it (up to a grace period) rather than import twice.
    let pending = exec.resume().is_some_and(|r| r.index.pending(eff));
    let mut d = if listed_absent && !pending {
        TargetCheck::absent(client.name())
    } else {
        target_check(kops, client, &a.key, Incoming::Archive(a), mode).await?
    };
    if pending {
        let until = std::time::Instant::now() + ctx.resume_grace();
        while matches!(d.decision, Decision::Go { .. }) && std::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(200)).await;
            d = target_check(kops, client, &a.key, Incoming::Archive(a), mode).await?;
        }
    }
    if matches!(d.decision, Decision::Go { .. }) && !exec.dry_run() {
        save_for_rollback(ctx, client.name(), a, &d)
            .await
            .map_err(|e| {
                Failure::Task(format!(
                    "cannot save {} for rollback before replacing it: {e}",
                    a.key.id()
                ))
            })?;
        // A replace stops the integration's schedule: save it as it is now.
        if d.state.as_ref().is_some_and(|s| s.scheduled) {
            super::schedules::save_before_replace(ctx, client, &a.key)
                .await
                .map_err(Failure::Task)?;
        }
    }
    Ok(d)
}

/// Sends the archive: a create, or the replace itself. A create answered 409 (a request of a
/// stopped run landing late) is fine when the target now holds this very archive; when the
/// target does not hold it, the 409 was the instance refusing writes sent in parallel
/// ([`crate::oic::OicError::Busy`]: the executor backs off and sends it again); when it holds
/// another archive, it is a failure ("already exists").
/// On the first attempt, that create is another run's, not this run's change: its rollback
/// record is withdrawn, so rolling this run back leaves it alone (a resumed run keeps the record
/// of the attempt that sent it; a retry's 409 is this run's own earlier attempt).
async fn send(
    kops: &dyn KindOps,
    client: &OicClient,
    a: &Artifact,
    created: bool,
    record: &crate::ledger::RunRecord,
    first: bool,
) -> Result<(), Failure> {
    if !created {
        return kops.replace(client, a).await.map_err(Failure::from);
    }
    match kops.create(client, a).await {
        Err(e) if e.is_status(409) => {
            let d = target_check(
                kops,
                client,
                &a.key,
                Incoming::Archive(a),
                ImportMode::Overwrite,
            )
            .await?;
            match d.decision {
                Decision::Skip(why @ SkipReason::Unchanged { .. }) => {
                    tracing::warn!(artifact = %a.key.id(), "{why}: an earlier request landed");
                    if first {
                        record.forget_rollback(&a.key, client.name());
                    }
                    Ok(())
                }
                _ if d.state.is_none() => Err(Failure::from(e.into_busy())),
                _ => Err(Failure::from(e)),
            }
        }
        r => r.map_err(Failure::from),
    }
}

/// Records what a replace or an import new changes, for rollback: the archive the target holds
/// (saved through the run's rollback sink) and its status, or that it was absent, with the
/// content digests of what it held and of what the import brings (`a`).
async fn save_for_rollback(
    ctx: &dyn Ctx,
    target: &str,
    a: &Artifact,
    d: &TargetCheck,
) -> Result<(), String> {
    let key = &a.key;
    let imported = match &d.incoming_digest {
        Some(c) => c.clone(),
        None => content_digest(a).await.map_err(|e| e.to_string())?,
    };
    let record = ctx.exec().record().clone();
    let mut entry = RollbackEntry {
        kind: key.kind,
        code: key.code.clone(),
        version: key.version.clone(),
        target: target.to_string(),
        existed: d.state.is_some(),
        previous_status: d
            .state
            .as_ref()
            .map(|s| s.status.clone())
            .filter(|s| !s.is_empty()),
        sha256: None,
        content_sha256: d.current_digest.clone(),
        imported_content_sha256: Some(imported),
        location: None,
    };
    if let Some(cur) = d.current.clone() {
        let sink = ctx.rollback_sink();
        let sha = cur.sha256.clone();
        let location = tokio::task::spawn_blocking(move || sink.save(&cur))
            .await
            .map_err(|e| e.to_string())??;
        entry.sha256 = Some(sha);
        entry.location = Some(location);
    }
    record.note_rollback(&entry);
    Ok(())
}

/// Checks an archive against its size and sha256 off the runtime.
pub async fn verify_blocking(a: &Artifact) -> Result<(), crate::artifact::IntegrityError> {
    let a2 = a.clone();
    match tokio::task::spawn_blocking(move || a2.verify()).await {
        Ok(r) => r,
        Err(e) => Err(crate::artifact::IntegrityError::Unreadable {
            path: a.path().display().to_string(),
            reason: e.to_string(),
        }),
    }
}

/// A step error as recorded.
pub fn step_error(kind: &str, message: String) -> StepError {
    StepError {
        kind: kind.into(),
        status: None,
        message,
    }
}

/// Records `eff` as failed before it could start (a refused archive, an unsupported kind) and
/// returns the error; it is not retried.
pub fn failed_effect(
    exec: &crate::effect::Executor,
    eff: &Effect,
    kind: &str,
    message: String,
) -> EffectError {
    let err = step_error(kind, message);
    exec.note(eff, StepStatus::Failed, Some(err.clone()));
    EffectError {
        stage: eff.stage,
        artifact: eff.key.id(),
        target: eff.target.clone(),
        attempts: 0,
        error: err,
        cancelled: false,
    }
}
