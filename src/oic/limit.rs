//! Adaptive concurrency per instance: how many requests ferry keeps in flight to one OIC
//! instance, found while it works rather than configured (a user cannot know a tenant's limit).
//!
//! One [`Limiter`] per client (one client per instance and run, shared by every bulk verb), with
//! two lanes: reads (`GET`) and writes (imports, activations, schedules, grants: OIC refuses
//! parallel imports with 409). Each lane is an AIMD window with a latency guard (TCP Vegas,
//! Netflix concurrency-limits):
//!
//! * it starts low and, until the first sign of congestion, grows by one per success (doubling
//!   every round trip, as TCP slow start), then by one per round trip;
//! * it stops growing while the short-term average latency is more than twice the long-term
//!   one (the server is queueing);
//! * it is cut multiplicatively on 429, 503, a timeout and, on the write lane, a 409 answered
//!   while another write was in flight; one cut per round trip (the answers of requests sent
//!   before a cut do not cut again);
//! * after a cut it regrows to just below the level that failed and probes above it only now
//!   and then, each failed probe doubling the wait before the next one: against a fixed cap
//!   the share of 429s stays small;
//! * a `Retry-After` on a 429 or 503 holds back every new request of the instance until then.
//!
//! A `concurrency` given in a recipe bounds the verb's fan-out and so stays a hard cap.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Highest window of a lane.
pub const MAX_LIMIT: usize = 64;
/// Starting window of the read lane.
const START_READS: f64 = 4.0;
/// Starting window of the write lane (the old fixed import bound).
const START_WRITES: f64 = 2.0;
/// Multiplicative decrease.
const BETA: f64 = 0.7;
/// Round trips spent at the level below a failed one before probing above it again (doubled by
/// every failed probe, up to `MAX_PROBE_WAIT`; halved by one that holds).
const PROBE_WAIT: u32 = 8;
const MAX_PROBE_WAIT: u32 = 512;
/// The longest `Retry-After` the limiter honours (the executor's own cap).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// Which lane a request uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    Reads,
    Writes,
}

/// What an answer says about congestion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Answered (any status that says nothing about load); carries the latency.
    Ok,
    /// 429, 503 or a timeout: too much in flight.
    Overload,
    /// A write answered 409 while another write was in flight (OIC's "parallel import").
    Conflict,
    /// Nothing learnt (transport failure, request dropped before an answer).
    Ignore,
}

#[derive(Debug)]
struct Window {
    limit: f64,
    in_flight: usize,
    /// Until the first congestion: slow start.
    slow_start: bool,
    /// The highest level known to hold (below the last level that failed).
    safe: Option<f64>,
    /// Round trips to wait at `safe` before probing above it.
    probe_wait: u32,
    /// Successes counted at `safe` towards the next probe.
    at_safe: f64,
    /// True while the window is above `safe` (a probe).
    probing: bool,
    /// Serial of the last cut; requests sent before it do not cut again.
    epoch: u64,
    /// Short-term (fast) and long-term (slow) averages of the latency.
    srtt: Option<Duration>,
    lrtt: Option<Duration>,
    /// Statistics.
    overloads: u64,
    cuts: u64,
    peak: f64,
}

impl Window {
    fn new(start: f64) -> Window {
        Window {
            limit: start,
            in_flight: 0,
            slow_start: true,
            safe: None,
            probe_wait: PROBE_WAIT,
            at_safe: 0.0,
            probing: false,
            epoch: 0,
            srtt: None,
            lrtt: None,
            overloads: 0,
            cuts: 0,
            peak: start,
        }
    }

    fn allowed(&self, cap: usize) -> usize {
        (self.limit.floor() as usize).clamp(1, cap.max(1))
    }

    /// The latency rises: the short-term average is twice the long-term one (the gradient of
    /// Netflix's limiter; robust to a latency that is high but steady).
    fn queueing(&self) -> bool {
        match (self.lrtt, self.srtt) {
            (Some(l), Some(s)) => s > l * 2 + Duration::from_millis(2),
            _ => false,
        }
    }

    fn success(&mut self, rtt: Duration) {
        let ewma = |avg: Option<Duration>, a: f64| match avg {
            Some(v) => v.mul_f64(1.0 - a) + rtt.mul_f64(a),
            None => rtt,
        };
        self.srtt = Some(ewma(self.srtt, 0.2));
        self.lrtt = Some(ewma(self.lrtt, 0.02));
        if self.queueing() {
            return;
        }
        let max = MAX_LIMIT as f64;
        if self.slow_start {
            self.limit = (self.limit + 1.0).min(max);
        } else if let Some(safe) = self.safe
            && self.limit >= safe
            && !self.probing
        {
            // at the known level: count round trips, then probe one above it
            self.at_safe += 1.0 / self.limit;
            if self.at_safe >= self.probe_wait as f64 {
                self.at_safe = 0.0;
                self.probing = true;
                self.limit = (safe + 1.0).min(max);
            }
        } else if self.probing {
            // a probe that held two round trips (the answers to the first requests sent above
            // the known level are in): the level is good, go on growing
            self.at_safe += 1.0 / self.limit;
            if self.at_safe >= 2.0 {
                self.at_safe = 0.0;
                self.probing = false;
                self.safe = Some(self.limit.floor());
                self.probe_wait = (self.probe_wait / 2).max(PROBE_WAIT);
                self.limit = (self.limit + 1.0).min(max);
            }
        } else {
            let next = self.limit + 1.0 / self.limit;
            self.limit = match self.safe {
                Some(s) if next > s => s,
                _ => next.min(max),
            };
        }
        self.peak = self.peak.max(self.limit);
    }

    /// An overload answered to a request sent in `epoch`, with `level` requests in flight (it
    /// included).
    fn overload(&mut self, epoch: u64, level: usize) {
        self.overloads += 1;
        if epoch != self.epoch {
            return;
        }
        let level = (level as f64).min(self.limit).max(1.0);
        if self.slow_start {
            // the window grew fast while this request was out: the level that failed is not
            // known yet; congestion avoidance finds it
            self.slow_start = false;
        } else {
            let failed = self.limit.floor().min(level.floor()).max(1.0);
            // each overload above the known level makes the next probe wait twice as long
            if self.safe.is_some() {
                self.probe_wait = (self.probe_wait * 2).min(MAX_PROBE_WAIT);
            }
            self.safe = Some((failed - 1.0).max(1.0));
        }
        self.probing = false;
        self.at_safe = 0.0;
        self.limit = (level * BETA).max(1.0);
        self.epoch += 1;
        self.cuts += 1;
    }
}

#[derive(Debug)]
struct State {
    reads: Window,
    writes: Window,
    /// No new request before this instant (`Retry-After`).
    paused_until: Option<Instant>,
}

impl State {
    fn lane(&mut self, lane: Lane) -> &mut Window {
        match lane {
            Lane::Reads => &mut self.reads,
            Lane::Writes => &mut self.writes,
        }
    }
}

/// The adaptive limiter of one instance. Cheap to share (`Arc` inside).
#[derive(Clone, Debug)]
pub struct Limiter {
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::new()
    }
}

/// What the limiter has done so far (for progress displays, benchmarks and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitStats {
    /// The current read window.
    pub reads: usize,
    /// The current write window.
    pub writes: usize,
    /// The highest read window reached.
    pub peak_reads: usize,
    /// Answers that signalled overload (429, 503, timeouts, parallel 409s).
    pub overloads: u64,
    /// Multiplicative cuts made.
    pub cuts: u64,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Limiter {
    pub fn new() -> Limiter {
        Limiter {
            state: Arc::new(Mutex::new(State {
                reads: Window::new(START_READS),
                writes: Window::new(START_WRITES),
                paused_until: None,
            })),
            notify: Arc::new(Notify::new()),
        }
    }

    /// Waits for a place in `lane` (and for the end of any `Retry-After` pause).
    pub async fn acquire(&self, lane: Lane) -> Permit {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let pause = {
                let mut st = lock(&self.state);
                let now = Instant::now();
                match st.paused_until {
                    Some(t) if t > now => Some(t),
                    _ => {
                        st.paused_until = None;
                        let w = st.lane(lane);
                        if w.in_flight < w.allowed(MAX_LIMIT) {
                            w.in_flight += 1;
                            return Permit {
                                limiter: self.clone(),
                                lane,
                                epoch: w.epoch,
                                start: now,
                                done: false,
                            };
                        }
                        None
                    }
                }
            };
            match pause {
                Some(t) => tokio::time::sleep_until(t).await,
                None => notified.await,
            }
        }
    }

    /// The current windows and counters.
    pub fn stats(&self) -> LimitStats {
        let st = lock(&self.state);
        LimitStats {
            reads: st.reads.allowed(MAX_LIMIT),
            writes: st.writes.allowed(MAX_LIMIT),
            peak_reads: st.reads.peak.floor() as usize,
            overloads: st.reads.overloads + st.writes.overloads,
            cuts: st.reads.cuts + st.writes.cuts,
        }
    }

    /// Writes in flight in the write lane right now (a 409 while others are in flight is a
    /// parallel-write conflict).
    pub fn writes_in_flight(&self) -> usize {
        lock(&self.state).writes.in_flight
    }

    fn release(&self, p: &Permit, signal: Signal, retry_after: Option<Duration>) {
        {
            let mut st = lock(&self.state);
            let now = Instant::now();
            if let Some(ra) = retry_after
                && signal == Signal::Overload
            {
                let until = now + ra.min(MAX_RETRY_AFTER);
                st.paused_until = Some(st.paused_until.map_or(until, |t| t.max(until)));
            }
            let w = st.lane(p.lane);
            let level = w.in_flight;
            w.in_flight = w.in_flight.saturating_sub(1);
            tracing::trace!(lane = ?p.lane, ?signal, rtt = ?now.saturating_duration_since(p.start), level, limit = w.limit, "adaptive concurrency");
            match signal {
                Signal::Ok => w.success(now.saturating_duration_since(p.start)),
                Signal::Overload | Signal::Conflict => w.overload(p.epoch, level),
                Signal::Ignore => {}
            }
        }
        self.notify.notify_waiters();
    }
}

/// A place in a lane; give it back with [`Permit::finish`] (dropping it counts as nothing learnt).
#[derive(Debug)]
pub struct Permit {
    limiter: Limiter,
    lane: Lane,
    epoch: u64,
    start: Instant,
    done: bool,
}

impl Permit {
    /// Gives the place back with what the answer said.
    pub fn finish(mut self, signal: Signal, retry_after: Option<Duration>) {
        self.done = true;
        self.limiter.release(&self, signal, retry_after);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done {
            self.done = true;
            self.limiter.release(self, Signal::Ignore, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(w: &mut Window, cap: usize, rounds: usize) -> (u64, usize) {
        // one round trip: `allowed` requests, those above the cap overload
        let mut over = 0;
        let mut sent = 0;
        for _ in 0..rounds {
            let n = w.allowed(MAX_LIMIT);
            let epoch = w.epoch;
            for i in 0..n {
                sent += 1;
                if i >= cap {
                    over += 1;
                    w.overload(epoch, n);
                } else {
                    w.success(Duration::from_millis(50));
                }
            }
        }
        (over, sent)
    }

    #[test]
    fn finds_a_cap_with_few_overloads() {
        for cap in [4usize, 16] {
            let mut w = Window::new(START_READS);
            let (over, sent) = run(&mut w, cap, 300);
            assert!(
                (over as f64) < sent as f64 * 0.02,
                "cap {cap}: {over} of {sent}"
            );
            let n = w.allowed(MAX_LIMIT);
            assert!(n + 2 >= cap && n <= cap + 1, "cap {cap}: window {n}");
        }
    }

    #[test]
    fn grows_without_overload_and_cuts_on_it() {
        let mut w = Window::new(START_READS);
        run(&mut w, usize::MAX, 10);
        assert_eq!(w.allowed(MAX_LIMIT), MAX_LIMIT);
        let e = w.epoch;
        w.overload(e, MAX_LIMIT);
        assert_eq!(w.allowed(MAX_LIMIT), (MAX_LIMIT as f64 * BETA) as usize);
        // a second answer of the same round trip does not cut again
        w.overload(e, MAX_LIMIT);
        assert_eq!(w.allowed(MAX_LIMIT), (MAX_LIMIT as f64 * BETA) as usize);
    }

    #[test]
    fn rising_latency_stops_growth_steady_latency_does_not() {
        let mut w = Window::new(START_READS);
        for _ in 0..20 {
            w.success(Duration::from_millis(10));
        }
        let l = w.limit;
        for _ in 0..20 {
            w.success(Duration::from_millis(100));
        }
        assert!(w.limit < l + 5.0, "{} after {l}", w.limit);
        let mut w = Window::new(START_READS);
        for _ in 0..40 {
            w.success(Duration::from_millis(300));
        }
        assert!(w.limit >= 40.0, "{}", w.limit);
    }
}
