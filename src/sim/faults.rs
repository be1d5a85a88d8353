//! Fault injection and the request log (on every listener: `POST/GET /__sim/faults`, `GET /__sim/log`,
//! `GET /__sim/in_flight`).
//!
//! Faults are drawn from a seeded RNG (reset to the emulator seed whenever faults are set), so the same faults
//! and the same request sequence give the same outcomes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::{Ctx, ListenerKind};

/// Fault knobs. All default to "no fault". JSON field names are the Rust names (snake_case).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Fixed latency added to every request (ms).
    pub latency_ms: u64,
    /// Random extra latency, uniform in `0..=jitter_ms` (ms).
    pub jitter_ms: u64,
    /// Share (0..1) of requests answered 429.
    pub rate_429: f64,
    /// `Retry-After` seconds sent with injected 429s (`None`: no header).
    pub retry_after_secs: Option<u64>,
    /// Share (0..1) of requests answered 500.
    pub rate_500: f64,
    /// Share (0..1) of requests answered 503.
    pub rate_503: f64,
    /// Maximum concurrent requests per instance; excess requests get 429.
    pub max_concurrent: Option<usize>,
    /// Archive downloads are cut after this many bytes (the connection is aborted).
    pub drop_download_after: Option<u64>,
    /// Integration archive downloads trickle after this many bytes: one byte a second, never
    /// ending (a stalled peer).
    pub trickle_download_after: Option<u64>,
    /// Scripted statuses for the next requests, in order (e.g. `[429, 503]`); `0` lets a request through.
    pub script: Vec<u16>,
    /// Only requests whose path matches this regex are affected (default: all, except `/__sim/`).
    pub path_regex: Option<String>,
    /// Only these instances are affected (default: all; the identity listener is `identity`).
    pub instances: Option<Vec<String>>,
    /// Sets the token lifetime (seconds) when present.
    pub token_ttl_secs: Option<u64>,
    /// Integration ids (`CODE|VERSION`) whose activation fails (`FAILEDACTIVATION` + activation errors).
    pub fail_activation: Vec<String>,
    /// A mutating request (POST/PUT/PATCH/DELETE) that overlaps another one on the same instance gets 409,
    /// as OIC is reported to do for parallel imports/activations (off by default: schedule writes and any
    /// other write are served in parallel unless this is set; see the module docs).
    pub conflict_on_parallel_writes: bool,
    /// Connection codes whose test (`POST …/connections/{id}/test`) fails: 200 with `status: FAILED` and an
    /// OIC-like message in `details`.
    pub fail_connection_tests: Vec<String>,
    /// Traffic of integrations once activated, per rule (the first rule whose glob matches `CODE|VERSION` or
    /// `CODE` applies): instances received at each activation and through the REST trigger, and their error rate.
    pub traffic: Vec<TrafficRule>,
}

/// Traffic of the integrations a glob matches ([`Faults::traffic`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrafficRule {
    /// Glob (`*`, `?`) over `CODE|VERSION` or `CODE`.
    pub integration: String,
    /// Instances received right after each successful activation (messages waiting for it).
    pub instances: u64,
    /// Share (0..1) of its instances that fail (`FAILED` in monitoring; the REST trigger answers 500).
    pub error_rate: f64,
}

impl Faults {
    /// The traffic rule of integration `code|version`, if any.
    pub fn traffic_for(&self, code: &str, version: &str) -> Option<&TrafficRule> {
        let id = format!("{code}|{version}");
        self.traffic
            .iter()
            .find(|r| glob_match(&r.integration, &id) || glob_match(&r.integration, code))
    }
}

/// `*` and `?` glob over the whole text.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let re = format!(
        "^{}$",
        regex::escape(pattern)
            .replace(r"\*", ".*")
            .replace(r"\?", ".")
    );
    regex::Regex::new(&re).is_ok_and(|r| r.is_match(text))
}

/// One request of the request log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Milliseconds since the emulator started.
    pub at_ms: u64,
    /// HTTP method.
    pub method: String,
    /// Path (percent-encoded as received).
    pub path: String,
    /// Query string (may be empty).
    pub query: String,
    /// Response status.
    pub status: u16,
    /// Time to the response head (ms).
    pub duration_ms: u64,
    /// Instance name (`identity` for the identity domain; `None` when unknown).
    pub instance: Option<String>,
    /// Whether the response was injected by a fault.
    pub injected: bool,
}

/// The request log keeps the most recent entries only.
pub const MAX_LOG: usize = 200_000;

/// The faults in effect, with their `path_regex` compiled once when they are set (not per
/// request).
#[derive(Debug)]
struct Active {
    faults: Faults,
    paths: Paths,
}

/// Which paths the faults apply to.
#[derive(Debug)]
enum Paths {
    /// No `path_regex`: every path.
    All,
    /// Paths this regex matches.
    Matching(regex::Regex),
    /// A `path_regex` that does not compile (set through [`crate::sim::SimHandle::set_faults`];
    /// `POST /__sim/faults` refuses it): no path.
    Nothing,
}

impl Active {
    fn new(faults: Faults) -> Active {
        let paths = match faults.path_regex.as_deref() {
            None => Paths::All,
            Some(re) => regex::Regex::new(re).map_or(Paths::Nothing, Paths::Matching),
        };
        Active { faults, paths }
    }

    /// The faults apply to a request on `path` for `instance` (`path_regex` and `instances`
    /// select; none selects every request).
    fn applies_to(&self, path: &str, instance: Option<&str>) -> bool {
        let path_ok = match &self.paths {
            Paths::All => true,
            Paths::Matching(re) => re.is_match(path),
            Paths::Nothing => false,
        };
        path_ok
            && self
                .faults
                .instances
                .as_ref()
                .is_none_or(|list| instance.is_some_and(|i| list.iter().any(|x| x == i)))
    }
}

/// Fault and log state of the emulator.
#[derive(Debug)]
pub struct FaultState {
    faults: Mutex<Arc<Active>>,
    script: Mutex<VecDeque<u16>>,
    rng: Mutex<StdRng>,
    seed: u64,
    log: Mutex<VecDeque<LogEntry>>,
    /// Signalled whenever an entry is logged (see [`FaultState::wait_log`]).
    logged: Condvar,
    hooks: Hooks,
    inflight: Mutex<HashMap<String, usize>>,
    /// Woken whenever a request is counted in or out of `inflight` (see
    /// [`FaultState::wait_in_flight`]).
    inflight_changed: tokio::sync::Notify,
    started: Instant,
}

/// Called with every logged request, as it is logged (before its response leaves).
pub type RequestHook = Arc<dyn Fn(&LogEntry) + Send + Sync>;

/// The request hooks (no `Debug` of their own).
#[derive(Default)]
struct Hooks(Mutex<Vec<RequestHook>>);

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hooks({})", lock(&self.0).len())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FaultState {
    /// New state with no faults.
    pub fn new(seed: u64) -> Self {
        FaultState {
            faults: Mutex::new(Arc::new(Active::new(Faults::default()))),
            script: Mutex::new(VecDeque::new()),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            seed,
            log: Mutex::new(VecDeque::new()),
            logged: Condvar::new(),
            hooks: Hooks::default(),
            inflight: Mutex::new(HashMap::new()),
            inflight_changed: tokio::sync::Notify::new(),
            started: Instant::now(),
        }
    }
    /// Current faults.
    pub fn get(&self) -> Faults {
        lock(&self.faults).faults.clone()
    }
    /// The faults in effect, shared (what the middleware reads per request).
    fn active(&self) -> Arc<Active> {
        lock(&self.faults).clone()
    }
    /// Replaces the faults (compiling `path_regex` once) and resets the RNG and the script.
    pub fn set(&self, f: Faults) {
        let active = Arc::new(Active::new(f));
        *lock(&self.script) = active.faults.script.iter().copied().collect();
        *lock(&self.rng) = StdRng::seed_from_u64(self.seed);
        *lock(&self.faults) = active;
    }
    /// The request log.
    pub fn log(&self) -> Vec<LogEntry> {
        lock(&self.log).iter().cloned().collect()
    }
    /// Empties the request log.
    pub fn clear_log(&self) {
        lock(&self.log).clear();
    }
    /// Blocks until `pred` holds over the log (checked at once and after every logged request)
    /// or `timeout` passes; returns whether it held. For tests that wait on events, not sleeps.
    pub fn wait_log(&self, timeout: Duration, mut pred: impl FnMut(&[LogEntry]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut log = lock(&self.log);
        loop {
            if pred(log.make_contiguous()) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            log = self
                .logged
                .wait_timeout(log, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
    /// The requests being answered now (received, no response yet), by instance (`""`: none
    /// named), the mutating ones counted again under `write:INSTANCE`. The log only has a
    /// request once it is answered: this is how a test sees that a slow call is underway.
    pub fn in_flight(&self) -> BTreeMap<String, usize> {
        lock(&self.inflight)
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (k.clone(), *n))
            .collect()
    }
    /// [`FaultState::in_flight`] once some key has at least `at_least` requests in flight
    /// (checked at once and whenever one is counted in or out), or as it is when `timeout`
    /// passes. For tests that wait on the event, not poll.
    pub async fn wait_in_flight(
        &self,
        at_least: usize,
        timeout: Duration,
    ) -> BTreeMap<String, usize> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // registered before the check, so a change right after it still wakes us
            let changed = self.inflight_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let now = self.in_flight();
            if now.values().any(|n| *n >= at_least) {
                return now;
            }
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(deadline) => return self.in_flight(),
            }
        }
    }
    /// Adds a hook called with every request as it is logged, before its response is sent.
    pub fn on_request(&self, hook: RequestHook) {
        lock(&self.hooks.0).push(hook);
    }
    /// Removes every request hook.
    pub fn clear_hooks(&self) {
        lock(&self.hooks.0).clear();
    }
    fn push(&self, e: LogEntry) {
        let hooks: Vec<RequestHook> = lock(&self.hooks.0).clone();
        for h in &hooks {
            h(&e);
        }
        let mut log = lock(&self.log);
        // a ring: the oldest entry goes in O(1) (draining the front of a vector moved all of them)
        while log.len() >= MAX_LOG {
            log.pop_front();
        }
        log.push_back(e);
        drop(log);
        self.logged.notify_all();
    }
}

/// Decrements the in-flight counter on drop.
struct Inflight<'a> {
    state: &'a FaultState,
    key: String,
}

impl Drop for Inflight<'_> {
    fn drop(&mut self) {
        let mut m = lock(&self.state.inflight);
        if let Some(n) = m.get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
        drop(m);
        self.state.inflight_changed.notify_waiters();
    }
}

fn instance_of(ctx: &Ctx, query: Option<&str>) -> Option<String> {
    match ctx.kind {
        ListenerKind::Identity => Some("identity".into()),
        ListenerKind::Gen2(i) => ctx.shared.instances.get(i).map(|i| i.ident.name.clone()),
        ListenerKind::Design => {
            let ii: Option<String> = query.and_then(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "integrationInstance")
                    .map(|(_, v)| v.into_owned())
            });
            let ii = ii?;
            ctx.shared
                .instances
                .iter()
                .find(|i| i.ident.integration_instance.as_deref() == Some(ii.as_str()))
                .map(|i| i.ident.name.clone())
        }
    }
}

fn injected(status: StatusCode, retry_after: Option<u64>) -> Response {
    let title = match status.as_u16() {
        409 => "Another operation is in progress on this instance. Try again later.",
        429 => "Too many requests. Try again later.",
        503 => "The service is temporarily unavailable (maintenance).",
        _ => "Internal server error (injected).",
    };
    let mut e = ApiError::new(status, title);
    if status == StatusCode::TOO_MANY_REQUESTS
        && let Some(s) = retry_after
    {
        e = e.with_header(header::RETRY_AFTER, s.to_string());
    }
    e.into_response()
}

/// Middleware: request log, latency, injected statuses, concurrency cap.
pub async fn layer(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().to_string();
    if path.starts_with("/__sim/") {
        return next.run(req).await;
    }
    let state = &ctx.shared.faults;
    let instance = instance_of(&ctx, req.uri().query());
    let active = state.active();
    let faults = &active.faults;
    let applies = active.applies_to(&path, instance.as_deref());
    let (delay, mut forced) = if applies {
        state.draw(faults)
    } else {
        (Duration::ZERO, None)
    };
    let key = instance.clone().unwrap_or_default();
    let (in_flight, _guard) = state.enter(key.clone());
    let over_cap = applies && faults.max_concurrent.is_some_and(|cap| in_flight > cap);
    let mutating = !matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS")
        && ctx.kind != ListenerKind::Identity;
    let _write_guard = if mutating {
        let (writes, guard) = state.enter(format!("write:{key}"));
        if applies && faults.conflict_on_parallel_writes && writes > 1 {
            forced = Some(StatusCode::CONFLICT);
        }
        Some(guard)
    } else {
        None
    };
    // An archive import (`POST`/`PUT .../integrations/archive`) reads and parses its upload while
    // the latency runs, as a server receives and unpacks an upload while the caller waits; its
    // handler waits for the gate before it touches the instance, and the answer leaves no sooner
    // than the latency either way. Nothing else changes: the same checks in the same order, the
    // same statuses and bodies, the same state change after the latency (on 2 shared cores the
    // parse was added to the latency, making an import take about 63 ms for a 50 ms latency).
    let gate = (!delay.is_zero()
        && !over_cap
        && forced.is_none()
        && matches!(method.as_str(), "POST" | "PUT")
        && path.ends_with("/integrations/archive"))
    .then(|| LatencyGate(tokio::time::Instant::from_std(start) + delay));
    if !delay.is_zero() && gate.is_none() {
        tokio::time::sleep(delay).await;
    }
    let (resp, was_injected) = if let Some(g) = gate {
        let mut req = req;
        req.extensions_mut().insert(g.clone());
        let resp = next.run(req).await;
        g.wait().await;
        (resp, false)
    } else if over_cap {
        (
            injected(StatusCode::TOO_MANY_REQUESTS, faults.retry_after_secs),
            true,
        )
    } else if let Some(code) = forced {
        (injected(code, faults.retry_after_secs), true)
    } else {
        (next.run(req).await, false)
    };
    state.push(LogEntry {
        at_ms: start.duration_since(state.started).as_millis() as u64,
        method,
        path,
        query,
        status: resp.status().as_u16(),
        duration_ms: start.elapsed().as_millis() as u64,
        instance,
        injected: was_injected,
    });
    resp
}

/// When a request's simulated latency ends (see [`layer`]): a handler that parses its upload
/// during the latency waits for it before it changes the instance.
#[derive(Clone, Debug)]
pub struct LatencyGate(tokio::time::Instant);

impl LatencyGate {
    /// Waits until the latency has passed (at once when it has).
    pub async fn wait(&self) {
        tokio::time::sleep_until(self.0).await;
    }
}

/// The injected status a roll in `0..1` draws: 429, 500 or 503 by their rates, in that order.
fn status_for(roll: f64, faults: &Faults) -> Option<StatusCode> {
    if roll < faults.rate_429 {
        Some(StatusCode::TOO_MANY_REQUESTS)
    } else if roll < faults.rate_429 + faults.rate_500 {
        Some(StatusCode::INTERNAL_SERVER_ERROR)
    } else if roll < faults.rate_429 + faults.rate_500 + faults.rate_503 {
        Some(StatusCode::SERVICE_UNAVAILABLE)
    } else {
        None
    }
}

impl FaultState {
    /// The delay (latency plus jitter) and the injected status of one request the faults apply
    /// to: drawn by rate, then the next scripted status (0: none) replaces it.
    fn draw(&self, faults: &Faults) -> (Duration, Option<StatusCode>) {
        let (delay, mut forced) = {
            let mut rng = lock(&self.rng);
            let jitter = if faults.jitter_ms > 0 {
                rng.random_range(0..=faults.jitter_ms)
            } else {
                0
            };
            let roll: f64 = rng.random();
            (
                Duration::from_millis(faults.latency_ms + jitter),
                status_for(roll, faults),
            )
        };
        if let Some(code) = lock(&self.script).pop_front()
            && code != 0
        {
            forced = StatusCode::from_u16(code).ok();
        }
        (delay, forced)
    }

    /// Counts a request in flight under `key`: how many are now (this one included), and the
    /// guard that counts it out.
    fn enter(&self, key: String) -> (usize, Inflight<'_>) {
        let n = {
            let mut m = lock(&self.inflight);
            let n = m.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        self.inflight_changed.notify_waiters();
        (n, Inflight { state: self, key })
    }
}

/// `POST /__sim/faults` (JSON [`Faults`]; replaces all knobs) → 200 with the faults now in effect.
pub async fn set_faults(State(ctx): State<Ctx>, body: Bytes) -> Response {
    let f: Faults = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => {
            return ApiError::bad_request(format!("Invalid faults JSON: {e}")).into_response();
        }
    };
    if let Some(re) = &f.path_regex
        && regex::Regex::new(re).is_err()
    {
        return ApiError::bad_request("Invalid path_regex.").into_response();
    }
    if let Some(s) = f.token_ttl_secs {
        ctx.shared
            .token_ttl_ms
            .store(s.saturating_mul(1000), Ordering::Relaxed);
    }
    ctx.shared.faults.set(f.clone());
    super::integrations::json_ok(&serde_json::to_value(&f).unwrap_or_default())
}

/// `GET /__sim/faults`.
pub async fn get_faults(State(ctx): State<Ctx>) -> Response {
    super::integrations::json_ok(&serde_json::to_value(ctx.shared.faults.get()).unwrap_or_default())
}

/// `GET /__sim/log`: the request log as JSON lines (`application/x-ndjson`).
pub async fn get_log(State(ctx): State<Ctx>) -> Response {
    let mut out = String::new();
    for e in ctx.shared.faults.log() {
        out.push_str(&serde_json::to_string(&e).unwrap_or_default());
        out.push('\n');
    }
    let mut r = (StatusCode::OK, out).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/x-ndjson"),
    );
    r
}

/// The longest `GET /__sim/in_flight?at_least=N&wait_ms=T` waits.
const MAX_IN_FLIGHT_WAIT: Duration = Duration::from_secs(60);

/// `GET /__sim/in_flight`: the requests being answered now, by instance (a JSON object, see
/// [`FaultState::in_flight`]). With `at_least=N` it answers once some instance has N requests
/// in flight, or after `wait_ms` (default 10,000, at most 60,000) with what is in flight then.
pub async fn get_in_flight(
    State(ctx): State<Ctx>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Response {
    let mut at_least = None;
    let mut wait = Duration::from_secs(10);
    for (k, v) in url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()) {
        let n = match v.parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                return ApiError::bad_request(format!("{k}: expected a number, got `{v}`."))
                    .into_response();
            }
        };
        match &*k {
            "at_least" => at_least = Some(usize::try_from(n).unwrap_or(usize::MAX)),
            "wait_ms" => wait = Duration::from_millis(n).min(MAX_IN_FLIGHT_WAIT),
            _ => {
                return ApiError::bad_request(format!(
                    "Unknown parameter `{k}` (at_least, wait_ms)."
                ))
                .into_response();
            }
        }
    }
    let now = match at_least {
        Some(n) => ctx.shared.faults.wait_in_flight(n, wait).await,
        None => ctx.shared.faults.in_flight(),
    };
    super::integrations::json_ok(&serde_json::json!(now))
}

/// `DELETE /__sim/log`: empties the log (204).
pub async fn clear_log(State(ctx): State<Ctx>) -> Response {
    ctx.shared.faults.clear_log();
    StatusCode::NO_CONTENT.into_response()
}

/// Shared handle type used by the streaming module.
pub type SharedFaults = Arc<super::state::Shared>;

/// Body of `POST /__sim/archive_size`.
#[derive(Debug, Deserialize)]
struct ArchiveSize {
    instance: String,
    id: String,
    bytes: u64,
}

/// `POST /__sim/archive_size` `{"instance","id","bytes"}`: 204; 404 when the integration is unknown or imported.
pub async fn set_archive_size(State(ctx): State<Ctx>, body: Bytes) -> Response {
    let a: ArchiveSize = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => return ApiError::bad_request(format!("Invalid JSON: {e}")).into_response(),
    };
    if ctx.shared.set_archive_size(&a.instance, &a.id, a.bytes) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        ApiError::not_found(format!(
            "No generated integration '{}' on '{}'.",
            a.id, a.instance
        ))
        .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_select_requests_and_rates_draw_statuses() {
        let f = Faults {
            path_regex: Some("/archive$".into()),
            instances: Some(vec!["dev".into()]),
            rate_429: 0.1,
            rate_500: 0.2,
            rate_503: 0.3,
            ..Faults::default()
        };
        let a = Active::new(f.clone());
        assert!(a.applies_to("/ic/api/integration/v1/integrations/A/archive", Some("dev")));
        assert!(!a.applies_to(
            "/ic/api/integration/v1/integrations/A/archive",
            Some("prod")
        ));
        assert!(!a.applies_to("/ic/api/integration/v1/integrations", Some("dev")));
        assert!(!a.applies_to("/x/archive", None));
        assert!(Active::new(Faults::default()).applies_to("/anything", None));
        // a regex that does not compile selects nothing (as when it was compiled per request)
        let bad = Active::new(Faults {
            path_regex: Some("(".into()),
            ..Faults::default()
        });
        assert!(!bad.applies_to("/anything", None));
        assert_eq!(status_for(0.05, &f), Some(StatusCode::TOO_MANY_REQUESTS));
        assert_eq!(
            status_for(0.25, &f),
            Some(StatusCode::INTERNAL_SERVER_ERROR)
        );
        assert_eq!(status_for(0.5, &f), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(status_for(0.7, &f), None);
    }
}
