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
//!   window is in use (doubling every round trip, as TCP slow start); the first refusal ends
//!   slow start for good;
//! * on 429, 503 or, on the write lane, a 409 to a write that overlapped another one, goes
//!   back to just below the level of the refused request (not a blind halving: the overshoot of
//!   slow start costs one round trip, not several to regrow), at most halving the window. After
//!   slow start, the level counted is the highest of the requests sent within a few
//!   milliseconds of it (they reach the instance in any order, and it refuses the last to
//!   arrive); a timeout cuts the window by
//!   [`BETA`]. Either cut is made once per *congestion event*: the refusals and timeouts of
//!   requests sent before the last cut were answered to the window that cut corrected; those
//!   sent within that window (not before it) only lower the window further to just below
//!   their level when it is lower (the first refusal to come back is not the lowest), never
//!   below half the window before the cut;
//! * once it has met the limit, grows only by *probes*: one request sent one above the window
//!   (never more, so a probe that fails costs one refused request). A probe that holds raises
//!   the window by one and the next probe follows a round trip later (one more per round trip
//!   while the limit is higher). Each probe that fails, and each cut after the first, doubles
//!   the wait before the next one (from [`PROBE_WAIT`] up to [`MAX_PROBE_WAIT`] round trips;
//!   two probes that hold in a row halve it), so against a fixed limit the share of refusals is
//!   small;
//! * a refusal of a request sent with the last probe (the one that took the last place just
//!   before it, or one sent after it while it was in flight) is the probe's doing (the instance
//!   counts the probe, and it refuses whichever request of the two arrives last): the probe
//!   fails (a window it raised goes back down by one), and nothing is cut below where the
//!   window stood before the probe;
//! * does not grow while the short-term average latency is more than twice the long-term one
//!   (the server is queueing);
//! * a `Retry-After` on a 429 or 503 holds back every new request of the instance until then;
//! * a request refused for ferry's own probing (a probe, a request that overlapped one, slow
//!   start's overshoot: sent above the window the lane now keeps) is sent again at once within
//!   the window (the executor's backoff is for refusals within it).
//!
//! A `concurrency` given in a recipe bounds the verb's fan-out and so stays a hard cap.

use std::collections::VecDeque;
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
pub const PROBE_WAIT: f64 = 16.0;
/// The longest wait between probes, in round trips.
pub const MAX_PROBE_WAIT: f64 = 512.0;
/// Requests sent this close together reach the instance in any order: a refusal of one of them
/// may be due to any other (an eighth of the short-term latency, within these bounds).
const TOGETHER_MIN: Duration = Duration::from_millis(1);
const TOGETHER_MAX: Duration = Duration::from_millis(10);
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

/// The last probe sent: which requests overlapped it and what it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LastProbe {
    /// Its serial.
    serial: u64,
    /// When it was sent.
    at: Duration,
    /// Requests of the lane sent when its answer came (`None`: still in flight); a request
    /// with a serial up to this one was in flight together with the probe.
    answered: Option<u64>,
    /// A refusal of a request that overlapped it came while it was in flight: it failed.
    spoiled: bool,
    /// It held and raised the window by one (undone by a refusal that overlapped it).
    raised: bool,
}

/// A place taken in a lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Taken {
    /// Requests of the lane in flight, this one included.
    level: usize,
    /// Sent one above the window.
    probe: bool,
    /// Its serial among the lane's requests (from 1).
    serial: u64,
    /// When it was sent (on the lane's clock).
    at: Duration,
}

#[derive(Debug)]
struct Window {
    limit: f64,
    in_flight: usize,
    /// Requests of the lane sent so far (the serial of the last one).
    sent: u64,
    /// The lane's clock (time since the limiter started), set before each `take`.
    clock: Duration,
    /// The last requests sent, oldest first: serial, time, level.
    sends: VecDeque<(u64, Duration, usize)>,
    /// Until the first congestion: slow start.
    slow_start: bool,
    probe: Probe,
    last_probe: Option<LastProbe>,
    /// Round trips to wait before the next probe.
    probe_wait: f64,
    /// Round trips counted towards it.
    waited: f64,
    /// The wait after a failure (doubled by each failure, halved by two probes that hold).
    backoff: f64,
    /// The last probe held (two in a row halve the backoff).
    held: bool,
    /// Requests sent when the window was last cut: a refusal or timeout of one of them belongs
    /// to the congestion event that cut already answered.
    cut_at: u64,
    /// Requests sent when the window was cut before that: the refusals of requests sent between
    /// the two cuts (the window the last cut corrected) may still lower the window, to just
    /// below their level, down to `cut_floor`.
    cut_before: u64,
    /// Half the window before the last cut (a cut at most halves the window).
    cut_floor: f64,
    /// The last cut ended slow start (its refusals count their own level, see `level_seen`).
    cut_slow_start: bool,
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
            clock: Duration::ZERO,
            sends: VecDeque::new(),
            slow_start: true,
            probe: Probe::Waiting,
            last_probe: None,
            probe_wait: PROBE_WAIT,
            waited: 0.0,
            backoff: PROBE_WAIT,
            held: false,
            cut_at: 0,
            cut_before: 0,
            cut_floor: 1.0,
            cut_slow_start: false,
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

    /// Takes a place if there is one.
    fn take(&mut self) -> Option<Taken> {
        let allowed = self.allowed(MAX_LIMIT);
        let probe = if self.in_flight < allowed {
            false
        } else if self.probe == Probe::Due && self.in_flight == allowed && allowed < MAX_LIMIT {
            true
        } else {
            return None;
        };
        self.in_flight += 1;
        self.sent += 1;
        if self.sends.len() >= 4 * MAX_LIMIT {
            self.sends.pop_front();
        }
        self.sends
            .push_back((self.sent, self.clock, self.in_flight));
        if probe {
            self.probe = Probe::Out;
            self.last_probe = Some(LastProbe {
                serial: self.sent,
                at: self.clock,
                answered: None,
                spoiled: false,
                raised: false,
            });
        }
        Some(Taken {
            level: self.in_flight,
            probe,
            serial: self.sent,
            at: self.clock,
        })
    }

    /// How close together requests are sent for the instance to see them in any order.
    fn together(&self) -> Duration {
        self.srtt
            .map_or(TOGETHER_MAX / 2, |s| s / 8)
            .clamp(TOGETHER_MIN, TOGETHER_MAX)
    }

    /// The most requests the instance may have held when `t` reached it: its level, or that of
    /// a request sent just after it (which may have arrived first).
    fn level_seen(&self, t: &Taken) -> usize {
        let until = t.at + self.together();
        let first = self.sends.front().map_or(u64::MAX, |s| s.0);
        let Some(i) = t.serial.checked_sub(first) else {
            return t.level;
        };
        self.sends
            .iter()
            .skip(i as usize + 1)
            .take_while(|s| s.1 <= until)
            .map(|s| s.2)
            .fold(t.level, usize::max)
    }

    /// The latency rises: the short-term average is twice the long-term one (the gradient of
    /// Netflix's limiter; robust to a latency that is high but steady).
    fn queueing(&self) -> bool {
        match (self.lrtt, self.srtt) {
            (Some(l), Some(s)) => s > l * 2 + Duration::from_millis(2),
            _ => false,
        }
    }

    /// A failure (a failed probe, a cut after the first): the next probe waits twice as long.
    fn back_off(&mut self) {
        self.backoff = (self.backoff * 2.0).min(MAX_PROBE_WAIT);
        self.held = false;
        self.probe_wait = self.backoff;
        self.waited = 0.0;
        if self.probe != Probe::Out {
            self.probe = Probe::Waiting;
        }
    }

    /// The answer of the probe `t`, `held` or not.
    fn probe_answered(&mut self, t: &Taken, held: bool) {
        let sent = self.sent;
        let Some(p) = self.last_probe.as_mut().filter(|p| p.serial == t.serial) else {
            return;
        };
        p.answered = Some(sent);
        self.probe = Probe::Waiting;
        if held && !p.spoiled {
            // one above the window held: the window takes that level, the next probe follows
            // a round trip later
            p.raised = true;
            self.limit = self.limit.max(t.level as f64).min(MAX_LIMIT as f64);
            if std::mem::replace(&mut self.held, true) {
                self.backoff = (self.backoff / 2.0).max(PROBE_WAIT);
            }
            self.probe_wait = 1.0;
            self.waited = 0.0;
        } else {
            self.back_off();
        }
    }

    /// A success of the request `t`.
    fn success(&mut self, rtt: Duration, t: &Taken) {
        let ewma = |avg: Option<Duration>, a: f64| match avg {
            Some(v) => v.mul_f64(1.0 - a) + rtt.mul_f64(a),
            None => rtt,
        };
        self.srtt = Some(ewma(self.srtt, 0.2));
        self.lrtt = Some(ewma(self.lrtt, 0.02));
        let max = MAX_LIMIT as f64;
        if t.probe {
            self.probe_answered(t, true);
        } else if self.queueing() {
            return;
        } else if self.slow_start {
            // grow only while the window is in use (a lane with few requests proves nothing)
            if t.level as f64 * 2.0 >= self.limit {
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

    /// A refusal (429, 503, parallel 409) of the request `t`. True when it was ferry's own
    /// probing (the request, or one it overlapped, was sent above the window): corrected by
    /// the window now, nothing to back off for.
    fn overload(&mut self, t: &Taken) -> bool {
        self.overloads += 1;
        let first = std::mem::replace(&mut self.slow_start, false);
        if t.probe {
            // the level above the window does not hold
            self.probe_answered(t, false);
            return true;
        }
        let together = self.together();
        if let Some(p) = self.last_probe.as_mut()
            && (t.serial > p.serial || t.at + together >= p.at)
            && p.answered.is_none_or(|a| t.serial <= a)
        {
            // sent with the last probe (the request that took the last place before it, or one
            // after it) while it was in flight: the probe's doing, not the window's
            match p.answered {
                None => p.spoiled = true,
                Some(_) if std::mem::take(&mut p.raised) => {
                    self.limit = (self.limit - 1.0).max(1.0);
                    self.cuts += 1;
                    self.new_event(self.limit, false);
                    self.back_off();
                }
                Some(_) => {}
            }
            return true;
        }
        if t.serial <= self.cut_at {
            // the event the last cut answered: a refusal of a request sent within the window it
            // corrected goes just below its level if that is lower (the first refusal to come
            // back is not the lowest), a cut at most halving; one sent before changes nothing
            if t.serial > self.cut_before {
                let seen = if self.cut_slow_start {
                    t.level
                } else {
                    self.level_seen(t)
                };
                let below = (seen.saturating_sub(1) as f64).max(self.cut_floor);
                if below < self.limit.floor() {
                    self.limit = below;
                }
            }
            return false;
        }
        // the limit is below the level the instance saw: go just below it, once for this event,
        // and at most halve the window (in slow start, the requests sent just after this one
        // are the burst of the overshoot: its own level)
        let seen = if first { t.level } else { self.level_seen(t) };
        let floor = (self.limit / 2.0).floor().max(1.0);
        let below = (seen.saturating_sub(1) as f64).max(floor);
        self.new_event(floor, first);
        if below < self.limit.floor() {
            self.limit = below;
            self.cuts += 1;
            if first {
                self.probe_wait = self.backoff;
                self.waited = 0.0;
                if self.probe != Probe::Out {
                    self.probe = Probe::Waiting;
                }
            } else {
                self.back_off();
            }
        }
        false
    }

    /// A timeout of the request `t`: a multiplicative cut, once per congestion event.
    fn timeout(&mut self, t: &Taken) {
        self.overloads += 1;
        self.slow_start = false;
        if t.probe {
            self.probe_answered(t, false);
        }
        if t.serial <= self.cut_at {
            return;
        }
        self.limit = (self.limit * BETA).max(1.0);
        self.waited = 0.0;
        self.cuts += 1;
        self.new_event(self.limit, false);
    }

    /// A cut: the congestion event of the requests sent so far, the window not to go below
    /// `floor` for it.
    fn new_event(&mut self, floor: f64, slow_start: bool) {
        self.cut_before = if slow_start { 0 } else { self.cut_at };
        self.cut_at = self.sent;
        self.cut_floor = floor;
        self.cut_slow_start = slow_start;
    }

    /// An answer that says nothing of the request `t`.
    fn ignore(&mut self, t: &Taken) {
        if t.probe && self.probe == Probe::Out {
            if let Some(p) = self.last_probe.as_mut() {
                p.answered = Some(self.sent);
            }
            self.probe = Probe::Due;
        }
    }
}

#[derive(Debug)]
struct State {
    reads: Window,
    writes: Window,
    /// No new request before this instant (`Retry-After`).
    paused_until: Option<Instant>,
    /// When the limiter started (the lanes' clocks count from it).
    origin: Instant,
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
                origin: Instant::now(),
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
                        let clock = now.saturating_duration_since(st.origin);
                        let w = st.lane(lane);
                        w.clock = clock;
                        if let Some(taken) = w.take() {
                            return Permit {
                                limiter: self.clone(),
                                lane,
                                taken,
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
            let t = &p.taken;
            tracing::trace!(lane = ?p.lane, ?signal, ?rtt, level = t.level, probe = t.probe, serial = t.serial, limit = w.limit, "adaptive concurrency");
            let own = match signal {
                Signal::Ok => {
                    w.success(rtt, t);
                    false
                }
                Signal::Overload | Signal::Conflict => w.overload(t),
                Signal::Timeout => {
                    w.timeout(t);
                    false
                }
                Signal::Ignore => {
                    w.ignore(t);
                    false
                }
            };
            resend = signal == Signal::Overload && (own || t.level > w.allowed(MAX_LIMIT));
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
    /// Its level, serial and whether it is a probe.
    taken: Taken,
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
        self.taken.level > 1 || w.in_flight > 1 || w.sent > self.taken.serial
    }

    /// Gives the place back with what the answer said. True when the answer was a refusal
    /// ([`Signal::Overload`]) of a request sent for ferry's own probing (a probe, a request in
    /// flight together with one, slow start's overshoot above the window the limiter now
    /// keeps): corrected, so the request can be sent again at once within the window instead of
    /// after a backoff.
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
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    /// What happens next in [`simulate`].
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    enum Ev {
        /// The request (index into the run's requests) reaches the instance.
        Arrive(usize),
        /// The instance lets go of it.
        Done(usize),
        /// Its answer reaches the limiter.
        Answer(usize),
        /// A refused request's backoff is over.
        Retry,
    }

    /// What [`simulate`] measured.
    struct Run {
        /// Time taken (µs).
        took: u64,
        /// Requests refused.
        refused: usize,
        window: Window,
    }

    /// A run of `n` requests against an instance as the emulator models one: a request the
    /// instance holds `rtt_ms`; one that arrives while `cap` others are held is answered 429
    /// after the same time, holding its place meanwhile. On a simulated clock (µs), with up to
    /// `skew_us` (pseudo-random, per request) between the client and the instance each way, so
    /// that the instance lets go of requests before the client sees the answers and requests
    /// sent together arrive in any order (a loaded machine). A refused request is sent again at
    /// once when the limiter says so (as `OicClient::execute` does), else 750 ms later (the
    /// executor's first backoff).
    fn simulate(cap: usize, n: usize, rtt_ms: u64, skew_us: u64) -> Run {
        let rtt = rtt_ms * 1000;
        let mut w = Window::new(START_READS);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut skew = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            if skew_us == 0 { 0 } else { 50 + seed % skew_us }
        };
        // (taken, sent at, refused)
        let mut reqs: Vec<(Taken, u64, bool)> = vec![];
        let mut events: BinaryHeap<Reverse<(u64, u64, Ev)>> = BinaryHeap::new();
        let (mut now, mut order, mut pending, mut held, mut refused) = (0u64, 0u64, n, 0usize, 0);
        loop {
            w.clock = Duration::from_micros(now);
            while pending > 0 {
                let Some(t) = w.take() else { break };
                pending -= 1;
                reqs.push((t, now, false));
                order += 1;
                events.push(Reverse((now + skew(), order, Ev::Arrive(reqs.len() - 1))));
            }
            let Some(Reverse((t, _, ev))) = events.pop() else {
                return Run {
                    took: now,
                    refused,
                    window: w,
                };
            };
            now = t;
            order += 1;
            match ev {
                Ev::Arrive(i) => {
                    held += 1;
                    reqs[i].2 = held > cap;
                    events.push(Reverse((now + rtt, order, Ev::Done(i))));
                }
                Ev::Done(i) => {
                    held -= 1;
                    events.push(Reverse((now + skew(), order, Ev::Answer(i))));
                }
                Ev::Answer(i) => {
                    let (taken, at, over) = reqs[i];
                    w.in_flight -= 1;
                    if over {
                        refused += 1;
                        let own = w.overload(&taken);
                        if own || taken.level > w.allowed(MAX_LIMIT) {
                            pending += 1;
                        } else {
                            events.push(Reverse((now + 750_000, order, Ev::Retry)));
                        }
                    } else {
                        w.success(Duration::from_micros(now - at), &taken);
                    }
                }
                Ev::Retry => pending += 1,
            }
        }
    }

    /// A request of the window taken by hand: `level`, `serial`.
    fn req(level: usize, serial: u64) -> Taken {
        Taken {
            level,
            probe: false,
            serial,
            at: Duration::ZERO,
        }
    }

    const RTT: Duration = Duration::from_millis(50);

    /// Fills the window (`w.in_flight` = its size) and answers every request with a success.
    fn round_trips(w: &mut Window, n: usize) {
        for _ in 0..n {
            let mut out = vec![];
            while w.in_flight < w.allowed(MAX_LIMIT) {
                out.push(w.take().expect("a place"));
            }
            assert!(out.iter().all(|t| !t.probe));
            let level = w.in_flight;
            for t in out {
                w.in_flight -= 1;
                w.success(RTT, &Taken { level, ..t });
            }
        }
    }

    #[test]
    fn finds_an_unknown_cap_near_the_floor_with_few_refusals() {
        // the benchmark's rows: 1,000 exports, 50 ms, caps 16 and 4 unknown to the limiter; the
        // answers exact, then up to 3 ms late or early (a loaded machine)
        for skew in [0, 3000] {
            for cap in [4usize, 16] {
                let r = simulate(cap, 1000, 50, skew);
                let floor = 50_000 * 1000 / cap as u64;
                let window = r.window.allowed(MAX_LIMIT);
                println!(
                    "cap {cap} skew {skew} µs: {} ms floor {} refused {} window {window} cuts {}",
                    r.took / 1000,
                    floor / 1000,
                    r.refused,
                    r.window.cuts
                );
                // the floor with the skew: a round trip takes it twice (about 50 µs + skew / 2)
                let skewed = floor * (50_000 + 100 + skew) / 50_000;
                assert!(
                    r.took * 100 < skewed * 108,
                    "cap {cap}, skew {skew}: {} ms for a floor of {} ms",
                    r.took / 1000,
                    skewed / 1000
                );
                // slow start overshoots once: the requests of that round trip are refused (the
                // emulator holds a refused request's place for the round trip); then a few probes
                let most = if cap == 4 { 12 } else { 50 };
                assert!(
                    r.refused <= most,
                    "cap {cap}, skew {skew}: {} refused",
                    r.refused
                );
                assert!(
                    r.refused >= 1,
                    "cap {cap}: the limiter never reached the cap"
                );
                assert!(
                    (cap..=cap + 2).contains(&window),
                    "cap {cap}, skew {skew}: window {window}"
                );
            }
        }
    }

    #[test]
    fn grows_without_refusals_to_the_highest_window() {
        let r = simulate(usize::MAX, 2000, 50, 0);
        println!("nocap: {} ms", r.took / 1000);
        assert_eq!(r.refused, 0);
        assert_eq!(r.window.allowed(MAX_LIMIT), MAX_LIMIT);
        // slow start: a few round trips to 64, then 64 at a time
        assert!(r.took < 50_000 * (2000 / 64 + 6), "{} ms", r.took / 1000);
    }

    #[test]
    fn a_refusal_goes_below_its_level_once_per_congestion_event() {
        let mut w = Window::new(START_READS);
        round_trips(&mut w, 3);
        assert_eq!(w.allowed(MAX_LIMIT), 32);
        // slow start overshot a limit of 16: the first refused request was the 17th in flight
        let sent = w.sent;
        assert!(!w.overload(&req(17, sent - 20)));
        assert!(!w.slow_start, "the first refusal ends slow start");
        assert_eq!(w.allowed(MAX_LIMIT), 16);
        // the others of slow start's burst lower it no further than half the window before
        // the cut (their levels count answers still on their way back, or come out of order)
        for level in (10..40).rev() {
            w.overload(&req(level, sent - 10));
        }
        assert_eq!(w.allowed(MAX_LIMIT), 16);
        assert_eq!(w.cuts, 1);
        // another client took half of the limit: refusals come from lower levels
        let t = w.take().unwrap();
        w.in_flight -= 1;
        w.overload(&req(9, t.serial));
        assert_eq!(w.allowed(MAX_LIMIT), 8);
        assert_eq!(w.cuts, 2);
        assert_eq!(
            w.backoff,
            PROBE_WAIT * 2.0,
            "a cut after the first backs off"
        );
        // no growth below a known limit except by probes
        round_trips(&mut w, PROBE_WAIT as usize * 2 - 1);
        assert_eq!(w.allowed(MAX_LIMIT), 8);
        assert_eq!(w.probe, Probe::Waiting);
        round_trips(&mut w, 1);
        assert_eq!(w.probe, Probe::Due);
    }

    #[test]
    fn a_refusal_counts_the_requests_sent_just_after_it() {
        let mut w = Window::new(START_READS);
        let t = w.take().unwrap();
        w.in_flight -= 1;
        w.overload(&Taken { level: 5, ..t });
        round_trips(&mut w, 2);
        assert_eq!(w.allowed(MAX_LIMIT), 4);
        // the lane ran dry; then one request, and three more within a millisecond: they reach
        // the instance in any order, and the first one sent arrived last
        w.clock = Duration::from_secs(10);
        let first = w.take().unwrap();
        assert_eq!(first.level, 1);
        w.clock += Duration::from_micros(300);
        let rest: Vec<Taken> = (0..3).map(|_| w.take().unwrap()).collect();
        w.in_flight -= 1;
        assert!(!w.overload(&first));
        assert_eq!(w.allowed(MAX_LIMIT), 3, "the instance saw 4 of ferry's");
        // requests sent later say nothing of what the instance held
        w.in_flight -= 3;
        w.clock += Duration::from_secs(1);
        round_trips(&mut w, 1);
        for t in rest {
            w.success(RTT, &t);
        }
        let a = w.take().unwrap();
        w.clock += Duration::from_millis(20);
        let _b = w.take().unwrap();
        w.in_flight -= 1;
        w.overload(&a);
        assert_eq!(w.allowed(MAX_LIMIT), 1, "{:?}", w.limit);
    }

    #[test]
    fn probes_go_one_above_and_back_off_when_refused() {
        let mut w = Window::new(START_READS);
        let t = w.take().unwrap();
        w.in_flight -= 1;
        w.overload(&Taken { level: 5, ..t });
        assert_eq!(w.allowed(MAX_LIMIT), 4);
        round_trips(&mut w, PROBE_WAIT as usize - 1);
        let full: Vec<Taken> = (0..4).map(|_| w.take().unwrap()).collect();
        assert_eq!(w.take(), None, "window full, no probe due");
        for t in full {
            w.in_flight -= 1;
            w.success(RTT, &t);
        }
        assert_eq!(w.probe, Probe::Due);
        let full: Vec<Taken> = (0..4).map(|_| w.take().unwrap()).collect();
        let p = w.take().unwrap();
        assert_eq!((p.level, p.probe), (5, true));
        assert_eq!(w.take(), None, "one probe at a time");
        w.in_flight -= 1;
        assert!(w.overload(&p), "a refused probe is sent again at once");
        assert_eq!(w.allowed(MAX_LIMIT), 4, "a refused probe cuts nothing");
        assert_eq!(w.probe_wait, PROBE_WAIT * 2.0);
        for t in full {
            w.in_flight -= 1;
            w.success(RTT, &t);
        }
        // the next probe holds: the window takes its level, the next follows a round trip later
        round_trips(&mut w, PROBE_WAIT as usize * 2);
        let full: Vec<Taken> = (0..4).map(|_| w.take().unwrap()).collect();
        let p = w.take().unwrap();
        assert!(p.probe);
        for t in full {
            w.in_flight -= 1;
            w.success(RTT, &t);
        }
        w.in_flight -= 1;
        w.success(RTT, &p);
        assert_eq!(w.allowed(MAX_LIMIT), 5);
        round_trips(&mut w, 1);
        assert_eq!(w.probe, Probe::Due);
        // a second probe that holds halves the wait after the next failure
        let full: Vec<Taken> = (0..5).map(|_| w.take().unwrap()).collect();
        let p = w.take().unwrap();
        assert_eq!((p.level, p.probe), (6, true));
        w.in_flight -= 6;
        w.success(RTT, &p);
        for t in full {
            w.success(RTT, &t);
        }
        assert_eq!(w.allowed(MAX_LIMIT), 6);
        assert_eq!(w.backoff, PROBE_WAIT);
    }

    #[test]
    fn a_refusal_in_flight_with_a_probe_is_the_probes_failure() {
        // the window is full at 4 when an answer comes: the place it frees and the probe go
        // out together, and the instance refuses whichever arrives last
        let mut w = Window::new(START_READS);
        let t = w.take().unwrap();
        w.in_flight -= 1;
        w.overload(&Taken { level: 5, ..t });
        round_trips(&mut w, PROBE_WAIT as usize);
        assert_eq!(w.probe, Probe::Due);
        let full: Vec<Taken> = (0..4).map(|_| w.take().unwrap()).collect();
        let p = w.take().unwrap();
        assert!(p.probe);
        // the regular request is refused, the probe held
        w.in_flight -= 2;
        assert!(w.overload(&full[3]), "sent again at once");
        assert_eq!(
            w.allowed(MAX_LIMIT),
            4,
            "nothing cut below the window before the probe"
        );
        w.success(RTT, &p);
        assert_eq!(w.allowed(MAX_LIMIT), 4, "a spoiled probe raises nothing");
        assert_eq!(
            w.probe_wait,
            PROBE_WAIT * 2.0,
            "and backs off as a refused one"
        );
        for t in &full[..3] {
            w.in_flight -= 1;
            w.success(RTT, t);
        }
        // the other order: the probe held first (the instance let go of a request the client
        // had not seen answered yet), then a request in flight with it is refused
        round_trips(&mut w, PROBE_WAIT as usize * 2);
        let full: Vec<Taken> = (0..4).map(|_| w.take().unwrap()).collect();
        let p = w.take().unwrap();
        assert!(p.probe);
        w.in_flight -= 2;
        w.success(RTT, &full[0]);
        w.success(RTT, &full[1]);
        let q = w.take().unwrap();
        assert!(!q.probe);
        w.in_flight -= 1;
        w.success(RTT, &p);
        assert_eq!(w.allowed(MAX_LIMIT), 5);
        let cuts = w.cuts;
        w.in_flight -= 2;
        assert!(w.overload(&full[3]), "sent again at once");
        assert!(w.overload(&q));
        assert_eq!(
            w.allowed(MAX_LIMIT),
            4,
            "the raise undone, once, nothing below"
        );
        assert_eq!(w.cuts, cuts + 1);
        assert_eq!(w.probe_wait, PROBE_WAIT * 4.0);
        // requests sent after the probe's answer that are refused are a new event
        round_trips(&mut w, 1);
        let t = w.take().unwrap();
        w.in_flight -= 1;
        assert!(!w.overload(&Taken { level: 4, ..t }));
        assert_eq!(w.allowed(MAX_LIMIT), 3);
    }

    #[test]
    fn a_timeout_cuts_multiplicatively_once_per_congestion_event() {
        let mut w = Window::new(40.0);
        let a = w.take().unwrap();
        let b = w.take().unwrap();
        w.in_flight -= 2;
        w.timeout(&a);
        assert_eq!(w.allowed(MAX_LIMIT), 28);
        w.timeout(&b);
        assert_eq!(w.allowed(MAX_LIMIT), 28);
        let c = w.take().unwrap();
        w.in_flight -= 1;
        w.timeout(&c);
        assert_eq!(w.allowed(MAX_LIMIT), 19);
    }

    #[test]
    fn rising_latency_stops_growth_steady_latency_does_not() {
        let mut w = Window::new(START_READS);
        for _ in 0..20 {
            w.success(Duration::from_millis(10), &req(64, 1));
        }
        let l = w.limit;
        for _ in 0..20 {
            w.success(Duration::from_millis(100), &req(64, 1));
        }
        assert!(w.limit < l + 5.0, "{} after {l}", w.limit);
        let mut w = Window::new(START_READS);
        for _ in 0..40 {
            w.success(Duration::from_millis(300), &req(64, 1));
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
        lock(&l.state).reads.overload(&req(3, 1));
        l.start_at(Lane::Reads, 16);
        assert_eq!(l.stats().reads, 2);
        l.start_at(Lane::Writes, 500);
        assert_eq!(l.stats().writes, MAX_LIMIT);
    }

    #[test]
    fn slow_start_grows_only_a_window_in_use() {
        let mut w = Window::new(8.0);
        for _ in 0..20 {
            w.success(RTT, &req(1, 1));
        }
        assert_eq!(w.allowed(MAX_LIMIT), 8);
    }
}
