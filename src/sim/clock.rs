//! The emulator's clock: wall time plus what a test advanced it by ([`super::SimHandle::advance_clock`]).
//! Everything the emulator times reads it: the runs of started schedules, the end of an asynchronous
//! activation or deactivation (`ACTIVATION_INPROGRESS`, `DEACTIVATION_INPROGRESS`) and of an instance
//! archive job. A test moves time forward instead of sleeping and waiting for it; left alone, the clock is
//! the wall clock. Token lifetimes stay on the wall clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct SimClock {
    /// Milliseconds added to the wall clock.
    offset_ms: AtomicI64,
    /// Woken at each advance, so that timed work checks the clock again at once.
    advanced: Notify,
}

impl SimClock {
    /// The emulator's current time.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves the clock forward by `d`: what falls due by then happens before the next request is answered
    /// (schedule runs), or at once in the background (asynchronous activations, archive jobs; see
    /// [`SimClock::sleep`]).
    pub fn advance(&self, d: Duration) {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let _ = self
            .offset_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| {
                Some(o.saturating_add(ms))
            });
        self.advanced.notify_waiters();
    }

    /// Waits until the clock has moved `d` forward from now, by wall time or by [`SimClock::advance`].
    pub async fn sleep(&self, d: Duration) {
        let Ok(step) = chrono::Duration::from_std(d) else {
            return;
        };
        let until = self.now() + step;
        loop {
            // Created before the clock is read, so an advance in between is not missed.
            let advanced = self.advanced.notified();
            let now = self.now();
            if now >= until {
                return;
            }
            let left = (until - now).to_std().unwrap_or_default();
            tokio::select! {
                _ = tokio::time::sleep(left) => {}
                _ = advanced => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_advance_ends_a_sleep_at_once() {
        let c = std::sync::Arc::new(SimClock::default());
        let before = c.now();
        let c2 = c.clone();
        let t = tokio::spawn(async move { c2.sleep(Duration::from_secs(3600)).await });
        tokio::task::yield_now().await;
        c.advance(Duration::from_secs(1800));
        c.advance(Duration::from_secs(1800));
        tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .expect("the sleep ended with the advance")
            .expect("join");
        assert!(c.now() - before >= chrono::Duration::seconds(3600));
    }
}
