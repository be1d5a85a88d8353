//! The effect layer: the one place every side effect goes through.
//!
//! Domain code (`oic`, `vault`, ...) performs one attempt of an operation and classifies its errors
//! ([`Classify`]); the [`Executor`] decides everything else:
//!
//! * **records** each effect as a [`Step`](crate::ledger::Step) of the run (stage, artifact, target,
//!   status, attempts, error with its root cause, sha256, start and end);
//! * **retries** what is retryable (HTTP 429 and 5xx, dropped connections, timeouts) with
//!   exponential backoff and full jitter, honouring `Retry-After`, within a number of attempts and
//!   a time budget;
//! * under `--dry-run`, **describes** the effect instead of performing it ([`Outcome::Planned`]);
//! * stops waiting at once when the run is cancelled (Ctrl-C).

mod classify;
mod decision;
mod plan_guard;
mod resume;

pub use classify::Failure;
pub use decision::{Action, Decision, SkipReason};
pub use plan_guard::{PlanGuard, PlannedArchive, PlannedEffect};
pub use resume::{Resume, ResumeIndex};

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::artifact::{ArtifactKey, ArtifactKind};
use crate::ledger::{RunRecord, Stage, Step, StepError, StepStatus};

/// What the executor needs to know about an error to decide on a retry and to record it.
pub trait Classify: std::fmt::Display {
    /// True for transient failures worth another attempt.
    fn retryable(&self) -> bool;
    /// The server's `Retry-After`, when it sent one.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
    /// The HTTP status, when the failure was an HTTP answer.
    fn status(&self) -> Option<u16> {
        None
    }
    /// A short machine-readable kind: `http`, `transport`, `timeout`, `integrity`, `vault`, ...
    fn kind(&self) -> &'static str;
}

/// What the result of an effect says about itself for the record.
pub trait EffectOutput {
    /// The sha256 of the artifact the effect produced or consumed, if any.
    fn sha256(&self) -> Option<String> {
        None
    }
    /// The content digest of the archive (equal for two exports of unchanged content), asked
    /// only while a plan is recorded or applied.
    fn content_digest(&self) -> Option<String> {
        None
    }
}

impl EffectOutput for () {}
impl<T: EffectOutput> EffectOutput for Option<T> {
    fn sha256(&self) -> Option<String> {
        self.as_ref().and_then(EffectOutput::sha256)
    }
}
impl EffectOutput for String {}
impl EffectOutput for bool {}
impl<T: EffectOutput> EffectOutput for Vec<T> {}
impl EffectOutput for crate::oic::ImportOutcome {}
impl EffectOutput for crate::oic::ScheduleState {}

/// One effect to perform: what, on which artifact, against which instance or vault.
#[derive(Clone, Debug)]
pub struct Effect {
    pub stage: Stage,
    pub key: ArtifactKey,
    /// The instance or vault name.
    pub target: String,
    /// What will be done, in words ("import new", "replace", "activate").
    pub action: String,
    /// The checksum known before the effect runs (store, verify, import).
    pub sha256: Option<String>,
    /// Why it is done (shown by `ferry plan`).
    pub reason: Option<String>,
}

impl Effect {
    pub fn new(
        stage: Stage,
        key: ArtifactKey,
        target: impl Into<String>,
        action: impl Into<String>,
    ) -> Effect {
        Effect {
            stage,
            key,
            target: target.into(),
            action: action.into(),
            sha256: None,
            reason: None,
        }
    }
    pub fn with_sha256(mut self, sha: Option<String>) -> Effect {
        self.sha256 = sha;
        self
    }
    pub fn with_reason(mut self, reason: impl Into<String>) -> Effect {
        self.reason = Some(reason.into());
        self
    }
    fn step(&self, status: StepStatus, attempts: u32, error: Option<StepError>) -> Step {
        let now = Utc::now();
        Step {
            seq: 0,
            stage: self.stage,
            kind: self.key.kind,
            code: self.key.code.clone(),
            version: self.key.version.clone(),
            target: self.target.clone(),
            action: self.action.clone(),
            reason: self.reason.clone(),
            status,
            attempts,
            error,
            sha256: self.sha256.clone(),
            started: now,
            ended: now,
        }
    }
}

/// How an effect ended, when it did not fail.
#[derive(Debug)]
pub enum Outcome<T> {
    /// Performed; here is its result.
    Done(T),
    /// Dry run: described, not performed.
    Planned,
    /// Not performed: nothing to do.
    Skipped(SkipReason),
}

impl<T> Outcome<T> {
    pub fn done(self) -> Option<T> {
        match self {
            Outcome::Done(t) => Some(t),
            _ => None,
        }
    }
}

/// An effect that failed after its retries (or was cancelled).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{stage} of {artifact} on {target} failed after {attempts} attempt(s): {}", error.message)]
pub struct EffectError {
    pub stage: Stage,
    pub artifact: String,
    pub target: String,
    pub attempts: u32,
    pub error: StepError,
    /// True when the run was cancelled rather than the effect failing.
    pub cancelled: bool,
}

/// Backoff settings.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Delay before the second attempt; doubled each time.
    pub base_delay: Duration,
    /// Longest single delay.
    pub max_delay: Duration,
    /// No new attempt starts after this much time since the first one.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            budget: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `n + 1` (n >= 1): exponential with jitter in [d/2, d], or the
    /// server's `Retry-After` when longer (a server's wish is honoured up to two minutes; the
    /// time budget still applies).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << (attempt - 1).min(16));
        let d = exp.min(self.max_delay);
        let jittered = d.mul_f64(0.5 + rand::random::<f64>() * 0.5);
        match retry_after {
            Some(ra) => ra.min(Duration::from_secs(120)).max(jittered),
            None => jittered,
        }
    }
}

/// Why [`Executor::retrying`] stopped without a value: the last error and the attempts made, or
/// the run was cancelled (with the last error, if an attempt had failed).
enum Stop<E> {
    Failed(E, u32),
    Cancelled(u32, Option<E>),
}

/// An artifact on a target: kind, code, version, target.
type TouchKey = (ArtifactKind, String, String, String);

/// The executor. Cheap to clone; shared by every primitive of a run.
#[derive(Clone)]
pub struct Executor {
    record: Arc<RunRecord>,
    dry_run: bool,
    policy: RetryPolicy,
    cancel: CancellationToken,
    resume: Option<Arc<Resume>>,
    /// Artifacts this run changed on a target (imported, deleted): later effects on them are
    /// never skipped as "done in the resumed run".
    touched: Arc<Mutex<HashSet<TouchKey>>>,
    /// Recording a plan (`ferry plan -o`) or held to one (`ferry apply`).
    plan: Option<Arc<PlanGuard>>,
}

impl Executor {
    pub fn new(
        record: Arc<RunRecord>,
        dry_run: bool,
        policy: RetryPolicy,
        cancel: CancellationToken,
    ) -> Executor {
        Executor {
            record,
            dry_run,
            policy,
            cancel,
            resume: None,
            touched: Arc::default(),
            plan: None,
        }
    }

    /// Records the effects of a dry run for a plan file, or admits only a plan's effects.
    pub fn with_plan(mut self, plan: Option<Arc<PlanGuard>>) -> Executor {
        self.plan = plan;
        self
    }

    /// The plan guard, if any.
    pub fn plan(&self) -> Option<&Arc<PlanGuard>> {
        self.plan.as_ref()
    }

    /// Resumes a stopped run: target effects (import, activate, deactivate, delete, connection,
    /// grant, notify) it completed with the same inputs are skipped, recorded as `skipped`
    /// ("done in run X").
    pub fn with_resume(mut self, resume: Option<Arc<Resume>>) -> Executor {
        self.resume = resume;
        self
    }

    /// The run being resumed, if any.
    pub fn resume(&self) -> Option<&Arc<Resume>> {
        self.resume.as_ref()
    }

    fn touch_key(eff: &Effect) -> TouchKey {
        (
            eff.key.kind,
            eff.key.code.clone(),
            eff.key.version.clone(),
            eff.target.clone(),
        )
    }

    /// Marks an artifact as changed on a target by this run.
    pub fn touch(&self, eff: &Effect) {
        self.touched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(Self::touch_key(eff));
    }

    /// The reason to skip `eff` because the resumed run already did it, if it did.
    pub fn done_before(&self, eff: &Effect) -> Option<SkipReason> {
        let r = self.resume.as_ref()?;
        if self
            .touched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&Self::touch_key(eff))
        {
            return None;
        }
        r.index
            .done(eff)
            .then(|| SkipReason::DoneInRun { run: r.run.clone() })
    }

    /// Records `eff` as skipped for `reason`.
    pub fn skip(&self, mut eff: Effect, reason: SkipReason) {
        eff.reason = Some(reason.to_string());
        self.record.push(eff.step(StepStatus::Skipped, 0, None));
    }

    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    pub fn record(&self) -> &Arc<RunRecord> {
        &self.record
    }

    pub fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Records an effect that was decided without running anything (skipped, or failed before it
    /// could start, e.g. a refused archive).
    pub fn note(&self, eff: &Effect, status: StepStatus, error: Option<StepError>) {
        if status == StepStatus::Planned
            && let Some(g) = &self.plan
        {
            g.described(eff);
        }
        self.record.push(eff.step(status, 0, error));
    }

    /// Performs `f` as the effect `eff`: records it, retries it, or plans it in a dry run.
    pub async fn run<T, E, F, Fut>(&self, eff: Effect, f: F) -> Result<Outcome<T>, EffectError>
    where
        T: EffectOutput,
        E: Classify,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(why) = self.done_before(&eff) {
            self.skip(eff, why.clone());
            return Ok(Outcome::Skipped(why));
        }
        if self.dry_run {
            self.note(&eff, StepStatus::Planned, None);
            return Ok(Outcome::Planned);
        }
        self.attempt(eff, f).await.map(Outcome::Done)
    }

    /// Like [`Executor::run`], with a check first: `check` reads the target (in a dry run too, so
    /// a plan says what would really happen) and decides whether the effect is needed and as
    /// which action. A skip is recorded as `skipped` with its reason; a failed check is
    /// recorded as a failure of the effect.
    pub async fn run_checked<T, E, F, Fut, C, CFut>(
        &self,
        mut eff: Effect,
        check: C,
        f: F,
    ) -> Result<Outcome<T>, EffectError>
    where
        T: EffectOutput,
        E: Classify,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: FnMut() -> CFut,
        CFut: Future<Output = Result<Decision, E>>,
    {
        if let Some(why) = self.done_before(&eff) {
            self.skip(eff, why.clone());
            return Ok(Outcome::Skipped(why));
        }
        let decision = self.retry(&eff, check).await?;
        match decision {
            Decision::Skip(why) => {
                self.skip(eff, why.clone());
                Ok(Outcome::Skipped(why))
            }
            Decision::Go { action, reason } => {
                eff.action = action.to_string();
                if reason.is_some() {
                    eff.reason = reason;
                }
                if self.dry_run {
                    self.note(&eff, StepStatus::Planned, None);
                    return Ok(Outcome::Planned);
                }
                self.attempt(eff, f).await.map(Outcome::Done)
            }
        }
    }

    /// Runs the check before `eff` (a read of the target), retried like an effect; a final
    /// failure is recorded as a failure of `eff`. For effects whose decision leads to several
    /// steps (a replace: stop the schedule, deactivate, replace), each then run on its own.
    pub async fn check<T, E, F, Fut>(&self, eff: &Effect, f: F) -> Result<T, EffectError>
    where
        E: Classify,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.retry(eff, f).await
    }

    /// Performs a read that belongs to `eff` (a check before it), retried like an effect; only
    /// a final failure is recorded, as a failure of `eff`.
    async fn retry<T, E, F, Fut>(&self, eff: &Effect, f: F) -> Result<T, EffectError>
    where
        E: Classify,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let started = Utc::now();
        let what = format!("checking {} on {}", eff.key.id(), eff.target);
        match self.retrying(&what, f).await {
            Ok((v, _)) => Ok(v),
            Err(Stop::Failed(e, attempts)) => {
                let step_err = StepError {
                    kind: e.kind().to_string(),
                    status: e.status(),
                    message: format!("checking the target: {e}"),
                };
                Err(self.fail(eff, started, attempts, step_err, false))
            }
            Err(Stop::Cancelled(attempts, _)) => {
                Err(self.fail(eff, started, attempts, cancelled_error(), true))
            }
        }
    }

    /// The one retry loop: calls `f` until it succeeds, fails with an error that is not
    /// retryable, runs out of attempts or of the time budget, or the run is cancelled; waits
    /// with the policy's backoff between attempts. Returns the value and the attempts made.
    async fn retrying<T, E, F, Fut>(&self, what: &str, mut f: F) -> Result<(T, u32), Stop<E>>
    where
        E: Classify,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let clock = Instant::now();
        let mut attempts = 0u32;
        loop {
            if self.cancel.is_cancelled() {
                return Err(Stop::Cancelled(attempts, None));
            }
            attempts += 1;
            let res = tokio::select! {
                r = f() => r,
                _ = self.cancel.cancelled() => return Err(Stop::Cancelled(attempts, None)),
            };
            let e = match res {
                Ok(v) => return Ok((v, attempts)),
                Err(e) => e,
            };
            let delay = self.policy.delay(attempts, e.retry_after());
            if !e.retryable()
                || attempts >= self.policy.max_attempts
                || clock.elapsed() + delay > self.policy.budget
            {
                return Err(Stop::Failed(e, attempts));
            }
            tracing::warn!(
                attempt = attempts,
                "{what}: {e}; retrying in {:.1}s",
                delay.as_secs_f64()
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.cancel.cancelled() => return Err(Stop::Cancelled(attempts, Some(e))),
            }
        }
    }

    /// Performs a read as the effect `eff` even in a dry run (an export: it changes nothing, and
    /// a plan needs its checksum), recorded as `planned` in a dry run and as done otherwise.
    pub async fn run_read_planned<T, E, F, Fut>(&self, eff: Effect, f: F) -> Result<T, EffectError>
    where
        T: EffectOutput,
        E: Classify,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if !self.dry_run {
            return self.attempt(eff, f).await;
        }
        let v = self.retry(&eff, f).await?;
        if let (Some(g), Stage::Export) = (&self.plan, eff.stage)
            && let Err(m) = g.exported(&eff, v.sha256(), v.content_digest())
        {
            return Err(self.refuse(&eff, m));
        }
        let mut e2 = eff;
        if e2.sha256.is_none() {
            e2.sha256 = v.sha256();
        }
        self.note(&e2, StepStatus::Planned, None);
        Ok(v)
    }

    /// Performs a read that is recorded as a step (fetching and verifying a backup, say): retried
    /// like any effect, and performed in a dry run too, since reads change nothing.
    pub async fn run_read<T, E, F, Fut>(&self, eff: Effect, f: F) -> Result<T, EffectError>
    where
        T: EffectOutput,
        E: Classify,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.attempt(eff, f).await
    }

    /// Retries a plain read (list, get) that is not recorded as a step: transient failures are
    /// retried with the same policy as effects; the last error is returned as it is.
    pub async fn read<T, E, F, Fut>(&self, what: &str, mut f: F) -> Result<T, E>
    where
        E: Classify,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        match self.retrying(what, &mut f).await {
            Ok((v, _)) => Ok(v),
            Err(Stop::Failed(e, _)) | Err(Stop::Cancelled(_, Some(e))) => Err(e),
            // Cancelled before an answer: one last attempt gives the caller an answer or an error.
            Err(Stop::Cancelled(_, None)) => f().await,
        }
    }

    async fn attempt<T, E, F, Fut>(&self, eff: Effect, f: F) -> Result<T, EffectError>
    where
        T: EffectOutput,
        E: Classify,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(g) = &self.plan
            && let Err(m) = g.admit(&eff)
        {
            return Err(self.refuse(&eff, m));
        }
        let started = Utc::now();
        let what = format!("{} of {} on {}", eff.stage, eff.key.id(), eff.target);
        match self.retrying(&what, f).await {
            Ok((v, attempts)) => {
                if let (Some(g), Stage::Export) = (&self.plan, eff.stage)
                    && let Err(m) = g.exported(&eff, v.sha256(), v.content_digest())
                {
                    return Err(self.refuse(&eff, m));
                }
                let sha = v.sha256().or_else(|| eff.sha256.clone());
                let mut step = eff.step(StepStatus::Ok, attempts, None);
                step.sha256 = sha;
                step.started = started;
                self.push_off_thread(step).await;
                Ok(v)
            }
            Err(Stop::Failed(e, attempts)) => {
                let step_err = StepError {
                    kind: e.kind().to_string(),
                    status: e.status(),
                    message: e.to_string(),
                };
                Err(self.fail(&eff, started, attempts, step_err, false))
            }
            Err(Stop::Cancelled(attempts, _)) => {
                Err(self.fail(&eff, started, attempts, cancelled_error(), true))
            }
        }
    }

    /// Records a done step from the blocking pool, and waits for it (the step is in the ledger
    /// when the effect returns, as with [`RunRecord::push`]): its SQLite transaction then does
    /// not hold up the thread that drives the other requests in flight, which a fan-out of
    /// thousands of effects would otherwise wait on once per effect.
    async fn push_off_thread(&self, step: Step) {
        let slot = Arc::new(Mutex::new(Some(step)));
        let (rec, s2) = (self.record.clone(), slot.clone());
        let pushed = tokio::task::spawn_blocking(move || {
            let step = s2.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(step) = step {
                rec.push(step);
            }
        })
        .await;
        // The pool refused it (the runtime shutting down): written here instead.
        let left = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let (Err(_), Some(step)) = (pushed, left) {
            self.record.push(step);
        }
    }

    /// Records `eff` as failed without an attempt: the plan being applied does not allow it.
    fn refuse(&self, eff: &Effect, message: String) -> EffectError {
        let error = StepError {
            kind: "plan".into(),
            status: None,
            message,
        };
        self.fail(eff, Utc::now(), 0, error, false)
    }

    fn fail(
        &self,
        eff: &Effect,
        started: chrono::DateTime<Utc>,
        attempts: u32,
        error: StepError,
        cancelled: bool,
    ) -> EffectError {
        let mut step = eff.step(StepStatus::Failed, attempts, Some(error));
        step.started = started;
        let step = self.record.push(step);
        EffectError {
            stage: eff.stage,
            artifact: eff.key.id(),
            target: eff.target.clone(),
            attempts,
            error: step.error.unwrap_or_else(cancelled_error),
            cancelled,
        }
    }
}

fn cancelled_error() -> StepError {
    StepError {
        kind: "cancelled".into(),
        status: None,
        message: "cancelled by the user".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::ArtifactKind;
    use crate::ledger::RunInfo;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug)]
    struct E(u16);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "HTTP {}", self.0)
        }
    }
    impl Classify for E {
        fn retryable(&self) -> bool {
            self.0 == 429 || self.0 >= 500
        }
        fn status(&self) -> Option<u16> {
            Some(self.0)
        }
        fn kind(&self) -> &'static str {
            "http"
        }
    }

    fn exec(dry: bool) -> Executor {
        let info = RunInfo {
            dry_run: dry,
            ..RunInfo::started_now("t", "t", "t")
        };
        let policy = RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            budget: Duration::from_secs(5),
        };
        Executor::new(
            Arc::new(RunRecord::in_memory(info)),
            dry,
            policy,
            CancellationToken::new(),
        )
    }

    fn eff() -> Effect {
        Effect::new(
            Stage::Import,
            ArtifactKey::new(ArtifactKind::Integration, "A", "01.00.0000"),
            "prod",
            "import new",
        )
    }

    #[tokio::test]
    async fn retries_transient_then_succeeds() {
        let x = exec(false);
        let n = AtomicU32::new(0);
        let r = x
            .run(eff(), || async {
                if n.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(E(503))
                } else {
                    Ok(())
                }
            })
            .await
            .unwrap();
        assert!(matches!(r, Outcome::Done(())));
        let steps = x.record().steps();
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].attempts, 3);
        assert_eq!(steps[0].status, StepStatus::Ok);
    }

    #[tokio::test]
    async fn does_not_retry_a_conflict_and_records_it() {
        let x = exec(false);
        let n = AtomicU32::new(0);
        let err = x
            .run(eff(), || async {
                n.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(E(409))
            })
            .await
            .unwrap_err();
        assert_eq!(n.load(Ordering::SeqCst), 1);
        assert_eq!(err.error.status, Some(409));
        assert_eq!(x.record().steps()[0].status, StepStatus::Failed);
    }

    /// OIC's classification, shared by every verb: a 409 the client knows to be a refusal of
    /// writes sent in parallel is backed off and sent again; any other 409 stays a failure.
    #[tokio::test]
    async fn retries_a_busy_409_but_not_an_already_exists_one() {
        use crate::oic::OicError;
        let conflict = || OicError::Http {
            instance: "prod".into(),
            method: "PUT".into(),
            path: "/ic/api/integration/v1/integrations/A%7C01.00.0000/schedule".into(),
            status: 409,
            title: "t".into(),
            retry_after: None,
        };
        let x = exec(false);
        let n = AtomicU32::new(0);
        let r = x
            .run(eff(), || async {
                if n.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(conflict().into_busy())
                } else {
                    Ok(())
                }
            })
            .await
            .unwrap();
        assert!(matches!(r, Outcome::Done(())));
        assert_eq!(x.record().steps()[0].attempts, 3);
        let x = exec(false);
        let err = x
            .run(eff(), || async { Err::<(), _>(conflict()) })
            .await
            .unwrap_err();
        assert_eq!(err.attempts, 1);
        assert_eq!(err.error.status, Some(409));
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts() {
        let x = exec(false);
        let err = x
            .run(eff(), || async { Err::<(), _>(E(429)) })
            .await
            .unwrap_err();
        assert_eq!(err.attempts, 4);
    }

    #[tokio::test]
    async fn dry_run_describes_without_calling() {
        let x = exec(true);
        let r = x
            .run(eff(), || async {
                panic!("must not run in a dry run") as Result<(), E>
            })
            .await
            .unwrap();
        assert!(matches!(r, Outcome::Planned));
        assert_eq!(x.record().steps()[0].status, StepStatus::Planned);
    }

    #[test]
    fn delay_honours_retry_after_and_caps() {
        let p = RetryPolicy::default();
        assert!(p.delay(1, Some(Duration::from_secs(7))) >= Duration::from_secs(7));
        assert!(p.delay(1, Some(Duration::from_secs(7200))) <= Duration::from_secs(120));
        assert!(p.delay(30, None) <= Duration::from_secs(60));
        assert!(p.delay(2, None) >= Duration::from_secs(1));
    }
}
