//! Adaptive concurrency per instance: how many requests ferry keeps in flight to one OIC
//! instance, found while it works rather than configured (a user cannot know a tenant's limit).
//!
//! One [`Limiter`] per client (one client per instance and run, shared by every bulk verb), with
//! two lanes: reads (`GET`) and writes (imports, activations, schedules, grants: OIC refuses
//! parallel imports with 409). Each request records its *level*: how many requests of its lane
//! were in flight when it was sent, itself included. The instance never holds more of ferry's
//! requests than ferry has in flight, so an overload answered to a request sent at level `L`
//! says that the instance's limit is below `L`. Each lane (TCP slow start, probing as TCP Vegas
//! and Netflix concurrency-limits do):
//!
//! * starts low and, until the first sign of congestion, grows by one per success while its
//!   window is in use (doubling every round trip, as TCP slow start);
//! * on 429, 503 or, on the write lane, a 409 to a write that overlapped another one, goes
//!   back to just below the level of the refused request (not a blind halving: the overshoot of
//!   slow start costs one round trip, not several to regrow); a timeout cuts the window by
//!   [`BETA`], once per round trip;
//! * once it has met the limit, grows only by *probes*: one request sent one above the window
//!   (never more, so a probe that fails costs one refused request). A probe that holds raises
//!   the window by one and the next probe follows a round trip later (one more per round trip
//!   while the limit is higher); each probe that fails doubles the wait before the next one (up
//!   to [`MAX_PROBE_WAIT`] round trips), so against a fixed limit the share of refusals is small;
//! * does not grow while the short-term average latency is more than twice the long-term one
//!   (the server is queueing);
//! * a `Retry-After` on a 429 or 503 holds back every new request of the instance until then;
//! * a request refused above the window the lane now keeps (a probe, slow start's overshoot) was
//!   refused for ferry's own probing: the client sends it again at once within the window (the
//!   executor's backoff is for refusals within it).
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
/// Growth of the window per success in slow start (doubling per round trip).
const SLOW_START_GROWTH: f64 = 1.0;
/// Multiplicative decrease on a timeout.
pub const BETA: f64 = 0.7;
/// Round trips below the limit before the first probe above it (doubled by every failed probe).
const PROBE_WAIT: f64 = 16.0;
/// The longest wait between probes, in round trips.
pub const MAX_PROBE_WAIT: f64 = 512.0;
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
    /// 429 or 503: the instance refused the request, too much in flight.
    Overload,
    /// No answer in time: cut multiplicatively (the level says little).
    Timeout,
    /// A write answered 409 while another write was in flight (OIC's "parallel import").
    Conflict,
    /// Nothing learnt (transport failure, request dropped before an answer).
    Ignore,
}

/// Where a lane's probing stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probe {
    /// Counting round trips towards the next probe.
    Waiting,
    /// The next request that finds the window full goes one above it.
    Due,
    /// A probe is in flight.
    Out,
}

#[derive(Debug)]
struct Window {
    limit: f64,
    in_flight: usize,
    /// Requests of the lane sent so far (tells a request whether others started while it ran).
    sent: u64,
    /// Until the first congestion: slow start.
    slow_start: bool,
    probe: Probe,
    /// Round trips to wait before the next probe.
    probe_wait: f64,
    /// Round trips counted towards it.
    waited: f64,
    /// Serial of the last timeout cut; requests sent before it do not cut again.
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
            sent: 0,
            slow_start: true,
            probe: Probe::Waiting,
            probe_wait: PROBE_WAIT,
            waited: 0.0,
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

    /// Takes a place if there is one: `Some((level, probe))`.
    fn take(&mut self) -> Option<(usize, bool)> {
        let allowed = self.allowed(MAX_LIMIT);
        if self.in_flight < allowed {
            self.in_flight += 1;
            return Some((self.in_flight, false));
        }
        if self.probe == Probe::Due && self.in_flight == allowed && allowed < MAX_LIMIT {
            self.probe = Probe::Out;
            self.in_flight += 1;
            return Some((self.in_flight, true));
        }
        None
    }

    /// The latency rises: the short-term average is twice the long-term one (the gradient of
    /// Netflix's limiter; robust to a latency that is high but steady).
    fn queueing(&self) -> bool {
        match (self.lrtt, self.srtt) {
            (Some(l), Some(s)) => s > l * 2 + Duration::from_millis(2),
            _ => false,
        }
    }

    /// A success of a request sent at `level`.
    fn success(&mut self, rtt: Duration, level: usize, probe: bool) {
        let ewma = |avg: Option<Duration>, a: f64| match avg {
            Some(v) => v.mul_f64(1.0 - a) + rtt.mul_f64(a),
            None => rtt,
        };
        self.srtt = Some(ewma(self.srtt, 0.2));
        self.lrtt = Some(ewma(self.lrtt, 0.02));
        let max = MAX_LIMIT as f64;
        if probe {
            // one above the window held: the window takes that level, the next probe follows a
            // round trip later
            self.probe = Probe::Waiting;
            self.limit = self.limit.max(level as f64).min(max);
            self.probe_wait = 1.0;
            self.waited = 0.0;
        } else if self.queueing() {
            return;
        } else if self.slow_start {
            // grow only while the window is in use (a lane with few requests proves nothing)
            if level as f64 * 2.0 >= self.limit {
                self.limit = (self.limit + SLOW_START_GROWTH).min(max);
            }
        } else if self.probe == Probe::Waiting && self.limit < max {
            self.waited += 1.0 / self.limit.max(1.0);
            if self.waited >= self.probe_wait {
                self.waited = 0.0;
                self.probe = Probe::Due;
            }
        }
        self.peak = self.peak.max(self.limit);
    }

    /// A refusal (429, 503, parallel 409) of a request sent at `level`.
    fn overload(&mut self, level: usize, probe: bool) {
        self.overloads += 1;
        let first = std::mem::replace(&mut self.slow_start, false);
        if probe {
            // the level above the window does not hold: wait twice as long before the next try
            self.probe = Probe::Waiting;
            self.probe_wait = (self.probe_wait * 2.0).min(MAX_PROBE_WAIT);
            self.waited = 0.0;
            return;
        }
        // the limit is below `level`: go just below it (requests sent at higher levels before
        // this answer came say nothing new)
        let below = level.saturating_sub(1).max(1) as f64;
        if below < self.limit.floor() {
            self.limit = below;
            self.cuts += 1;
            if self.probe != Probe::Out {
                self.probe = Probe::Waiting;
            }
            self.probe_wait = if first {
                PROBE_WAIT
            } else {
                (self.probe_wait * 2.0).clamp(PROBE_WAIT, MAX_PROBE_WAIT)
            };
            self.waited = 0.0;
        }
    }

    /// A timeout of a request sent in `epoch`: a multiplicative cut, once per round trip.
    fn timeout(&mut self, epoch: u64, probe: bool) {
        self.overloads += 1;
        self.slow_start = false;
        if probe {
            self.probe = Probe::Waiting;
        }
        if epoch != self.epoch {
            return;
        }
        self.limit = (self.limit * BETA).max(1.0);
        self.waited = 0.0;
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
    /// Cuts of a window made.
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
                        if let Some((level, probe)) = w.take() {
                            w.sent += 1;
                            return Permit {
                                limiter: self.clone(),
                                lane,
                                epoch: w.epoch,
                                level,
                                probe,
                                sent: w.sent,
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

    /// A `concurrency` given to a verb: `lane` starts at `n` instead of growing to it (a given
    /// concurrency is a hard cap and a start). Only while the lane is in slow start and
    /// narrower: a lane that has met congestion keeps what it learnt; a 429 above the
    /// instance's limit cuts as usual.
    pub fn start_at(&self, lane: Lane, n: usize) {
        {
            let mut st = lock(&self.state);
            let w = st.lane(lane);
            let n = n.min(MAX_LIMIT) as f64;
            if w.slow_start && w.limit < n {
                w.limit = n;
                w.peak = w.peak.max(n);
            }
        }
        self.notify.notify_waiters();
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

    fn release(&self, p: &Permit, signal: Signal, retry_after: Option<Duration>) -> bool {
        let resend;
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
            w.in_flight = w.in_flight.saturating_sub(1);
            let rtt = now.saturating_duration_since(p.start);
            tracing::trace!(lane = ?p.lane, ?signal, ?rtt, level = p.level, probe = p.probe, limit = w.limit, "adaptive concurrency");
            match signal {
                Signal::Ok => w.success(rtt, p.level, p.probe),
                Signal::Overload | Signal::Conflict => w.overload(p.level, p.probe),
                Signal::Timeout => w.timeout(p.epoch, p.probe),
                Signal::Ignore => {
                    if p.probe {
                        w.probe = Probe::Due;
                    }
                }
            }
            resend = signal == Signal::Overload && p.level > w.allowed(MAX_LIMIT);
        }
        self.notify.notify_waiters();
        resend
    }
}

/// A place in a lane; give it back with [`Permit::finish`] (dropping it counts as nothing learnt).
#[derive(Debug)]
pub struct Permit {
    limiter: Limiter,
    lane: Lane,
    epoch: u64,
    /// Requests of the lane in flight when this one was sent, itself included.
    level: usize,
    /// Sent one above the window.
    probe: bool,
    /// Its serial among the lane's requests.
    sent: u64,
    start: Instant,
    done: bool,
}

impl Permit {
    /// True when another request of the lane was in flight at some time during this one: when
    /// it was sent, now, or sent meanwhile (a 409 to a write that overlapped none cannot be the
    /// instance refusing parallel writes).
    pub fn overlapped(&self) -> bool {
        let st = lock(&self.limiter.state);
        let w = match self.lane {
            Lane::Reads => &st.reads,
            Lane::Writes => &st.writes,
        };
        self.level > 1 || w.in_flight > 1 || w.sent > self.sent
    }

    /// Gives the place back with what the answer said. True when the answer was a refusal
    /// ([`Signal::Overload`]) of a request sent above the window the limiter now keeps (a probe,
    /// or slow start's overshoot): ferry's own doing, corrected, so the request can be sent
    /// again at once within the window instead of after a backoff.
    pub fn finish(mut self, signal: Signal, retry_after: Option<Duration>) -> bool {
        self.done = true;
        self.limiter.release(&self, signal, retry_after)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done {
            self.done = true;
            let _ = self.limiter.release(self, Signal::Ignore, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run of `n` requests against an instance as the emulator models one (every request
    /// takes `rtt_ms`; one that arrives while `cap` others are held is answered 429 after the
    /// same time, holding its place meanwhile), on a simulated clock: a refused request is sent
    /// again at once when it was sent above the window (as `OicClient::execute` does), else
    /// 750 ms later (the executor's first backoff). Returns the time taken (ms), the
    /// refusals and the window.
    fn simulate(cap: usize, n: usize, rtt_ms: u64) -> (u64, usize, Window) {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let mut w = Window::new(START_READS);
        // (answer time, serial, level, probe, refused)
        type Answer = (u64, u64, usize, bool, bool);
        let mut out: BinaryHeap<Reverse<Answer>> = BinaryHeap::new();
        let (mut now, mut serial, mut pending, mut held, mut refused) = (0u64, 0u64, n, 0usize, 0);
        let mut backoff: Vec<u64> = vec![];
        loop {
            backoff.retain(|t| {
                let due = *t <= now;
                pending += due as usize;
                !due
            });
            while pending > 0 {
                let Some((level, probe)) = w.take() else {
                    break;
                };
                pending -= 1;
                held += 1;
                serial += 1;
                out.push(Reverse((now + rtt_ms, serial, level, probe, held > cap)));
            }
            let next_retry = backoff.iter().min().copied();
            let answer = out.peek().map(|Reverse(a)| a.0);
            if let Some(r) = next_retry
                && answer.is_none_or(|a| r < a)
            {
                now = r;
                continue;
            }
            let Some(Reverse((t, _, level, probe, over))) = out.pop() else {
                return (now, refused, w);
            };
            now = t;
            held -= 1;
            w.in_flight -= 1;
            if over {
                refused += 1;
                w.overload(level, probe);
                if level > w.allowed(MAX_LIMIT) {
                    pending += 1;
                } else {
                    backoff.push(now + 750);
                }
            } else {
                w.success(Duration::from_millis(rtt_ms), level, probe);
            }
        }
    }

    #[test]
    fn finds_an_unknown_cap_near_the_floor_with_few_refusals() {
        // the benchmark's rows: 1,000 exports, 50 ms, caps 16 and 4 unknown to the limiter
        for cap in [4usize, 16] {
            let (took, refused, w) = simulate(cap, 1000, 50);
            let floor = 50 * 1000 / cap as u64;
            println!(
                "cap {cap}: {took} ms floor {floor} refused {refused} window {}",
                w.allowed(MAX_LIMIT)
            );
            assert!(
                took * 10 < floor * 11,
                "cap {cap}: {took} ms for a floor of {floor} ms"
            );
            // at cap 16, slow start overshoots once: the requests of that round trip are refused
            // (the emulator holds a refused request's place for the round trip)
            let most = if cap == 4 { 2 } else { 4 };
            assert!(refused * 100 < 1000 * most, "cap {cap}: {refused} refused");
            assert!(refused >= 1, "cap {cap}: the limiter never reached the cap");
            assert_eq!(w.allowed(MAX_LIMIT), cap, "cap {cap}");
        }
    }

    #[test]
    fn grows_without_refusals_to_the_highest_window() {
        let (took, refused, w) = simulate(usize::MAX, 2000, 50);
        println!("nocap: {took} ms");
        assert_eq!(refused, 0);
        assert_eq!(w.allowed(MAX_LIMIT), MAX_LIMIT);
        // slow start: a few round trips to 64, then 64 at a time
        assert!(took < 50 * (2000 / 64 + 6), "{took} ms");
    }

    #[test]
    fn a_refusal_goes_below_its_level_not_lower() {
        let mut w = Window::new(START_READS);
        for _ in 0..60 {
            w.success(Duration::from_millis(50), w.allowed(MAX_LIMIT), false);
        }
        assert_eq!(w.allowed(MAX_LIMIT), MAX_LIMIT);
        // slow start overshot a limit of 16: the first refused request was the 17th in flight
        w.overload(17, false);
        assert_eq!(w.allowed(MAX_LIMIT), 16);
        // those sent higher before the answer came change nothing
        for level in 18..40 {
            w.overload(level, false);
        }
        assert_eq!(w.allowed(MAX_LIMIT), 16);
        assert_eq!(w.cuts, 1);
        // another client took half of the limit: refusals come from lower levels
        w.overload(9, false);
        assert_eq!(w.allowed(MAX_LIMIT), 8);
        // no growth below a known limit except by probes
        for _ in 0..8 * 16 {
            w.success(Duration::from_millis(50), 8, false);
        }
        assert_eq!(w.allowed(MAX_LIMIT), 8);
    }

    #[test]
    fn probes_go_one_above_and_back_off_when_refused() {
        let mut w = Window::new(START_READS);
        w.overload(5, false);
        assert_eq!(w.allowed(MAX_LIMIT), 4);
        w.in_flight = 4;
        assert_eq!(w.take(), None, "window full, no probe due");
        // PROBE_WAIT round trips of 4 successes each
        for _ in 0..(PROBE_WAIT as usize * 4) {
            w.success(Duration::from_millis(50), 4, false);
        }
        assert_eq!(w.probe, Probe::Due);
        assert_eq!(w.take(), Some((5, true)));
        assert_eq!(w.take(), None, "one probe at a time");
        w.in_flight -= 1;
        w.overload(5, true);
        assert_eq!(w.allowed(MAX_LIMIT), 4, "a refused probe cuts nothing");
        assert_eq!(w.probe_wait, PROBE_WAIT * 2.0);
        // the next probe holds: the window takes its level, the next follows a round trip later
        for _ in 0..(PROBE_WAIT as usize * 2 * 4) {
            w.success(Duration::from_millis(50), 4, false);
        }
        assert_eq!(w.take(), Some((5, true)));
        w.in_flight -= 1;
        w.success(Duration::from_millis(50), 5, true);
        assert_eq!(w.allowed(MAX_LIMIT), 5);
        for _ in 0..5 {
            w.success(Duration::from_millis(50), 5, false);
        }
        assert_eq!(w.probe, Probe::Due);
    }

    #[test]
    fn a_timeout_cuts_multiplicatively_once_per_round_trip() {
        let mut w = Window::new(40.0);
        let e = w.epoch;
        w.timeout(e, false);
        assert_eq!(w.allowed(MAX_LIMIT), 28);
        w.timeout(e, false);
        assert_eq!(w.allowed(MAX_LIMIT), 28);
    }

    #[test]
    fn rising_latency_stops_growth_steady_latency_does_not() {
        let mut w = Window::new(START_READS);
        for _ in 0..20 {
            w.success(Duration::from_millis(10), 64, false);
        }
        let l = w.limit;
        for _ in 0..20 {
            w.success(Duration::from_millis(100), 64, false);
        }
        assert!(w.limit < l + 5.0, "{} after {l}", w.limit);
        let mut w = Window::new(START_READS);
        for _ in 0..40 {
            w.success(Duration::from_millis(300), 64, false);
        }
        assert!(w.limit >= 40.0, "{}", w.limit);
    }

    #[test]
    fn a_given_concurrency_is_the_start_of_a_lane_in_slow_start() {
        let l = Limiter::new();
        l.start_at(Lane::Writes, 16);
        assert_eq!(l.stats().writes, 16);
        assert_eq!(l.stats().reads, START_READS as usize);
        // a lane that met congestion keeps what it learnt
        lock(&l.state).reads.overload(3, false);
        l.start_at(Lane::Reads, 16);
        assert_eq!(l.stats().reads, 2);
        l.start_at(Lane::Writes, 500);
        assert_eq!(l.stats().writes, MAX_LIMIT);
    }

    #[test]
    fn slow_start_grows_only_a_window_in_use() {
        let mut w = Window::new(8.0);
        for _ in 0..20 {
            w.success(Duration::from_millis(50), 1, false);
        }
        assert_eq!(w.allowed(MAX_LIMIT), 8);
    }
}
