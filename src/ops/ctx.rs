//! What the verbs need from the run that calls them: the effect executor, the configuration,
//! clients of the configured instances, progress bars and the place where replaced archives are
//! saved for rollback. The Rhai host implements it for recipes; a command without a recipe
//! implements it over its own run.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use indicatif::ProgressBar;

use super::OpsError;
use crate::artifact::Artifact;
use crate::config::Config;
use crate::effect::Executor;
use crate::oic::{Lane, Limiter, OicClient};

/// Default ceilings on the fan-out of bulk work, per kind of operation, when the verb is given no
/// `concurrency`: the instance's adaptive limiter ([`crate::oic::Limiter`]) then decides how many
/// requests are in flight, below these. A `concurrency` given to a verb replaces them and so is a
/// hard cap.
#[derive(Clone, Debug)]
pub struct Bounds {
    pub exports: usize,
    pub imports: usize,
    pub activations: usize,
    /// Vault writes and reads at a time (a vault has no adaptive limiter).
    pub stores: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            exports: ADAPTIVE,
            imports: ADAPTIVE,
            activations: ADAPTIVE,
            stores: 4,
        }
    }
}

/// The fan-out ceiling of a verb given no `concurrency` (the adaptive limiter's highest window).
pub const ADAPTIVE: usize = crate::oic::limit_max();

/// Where a run saves an archive a replace is about to lose (blocking; called off the runtime).
pub trait RollbackSink: Send + Sync {
    /// Saves `a`; returns its location (`vault:<vault>:<job path>` or `file:<path>`).
    fn save(&self, a: &Artifact) -> Result<String, String>;
}

/// The run a verb works in.
pub trait Ctx {
    /// The effect executor of the run.
    fn exec(&self) -> &Executor;
    /// The configuration.
    fn config(&self) -> &Arc<Config>;
    /// The client of a configured instance (shared by every verb of the run).
    fn client(&self, name: &str) -> Result<OicClient, OpsError>;
    /// A progress bar for `len` items (hidden when bars are off).
    fn bar(&self, _len: usize, _label: &str) -> ProgressBar {
        ProgressBar::hidden()
    }
    /// Where the run's output goes (secrets met on the way are added to its scrub list).
    fn shell(&self) -> &crate::shell::Shell;
    /// Where replaced archives are saved for rollback.
    fn rollback_sink(&self) -> Arc<dyn RollbackSink>;
    /// How long a resumed run waits for an import its predecessor sent but never saw answered
    /// (the run's `RunOptions::resume_grace`).
    fn resume_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(20)
    }
    /// Default bounds on parallel work.
    fn bounds(&self) -> Bounds {
        Bounds::default()
    }
}

/// Runs `f(item)` for every item, at most `concurrency` at a time, with a progress bar; the
/// results come back in the items' order.
pub async fn fan_out<I, R, Fut, F>(
    bar: ProgressBar,
    concurrency: usize,
    items: Vec<I>,
    f: F,
) -> Vec<R>
where
    F: Fn(I) -> Fut,
    Fut: Future<Output = R>,
{
    fan_out_shown(bar, concurrency, None, futures::stream::iter(items), f).await
}

/// [`fan_out`] whose progress bar shows the current window of `client`'s adaptive limiter in
/// `lane` (`limit N`).
pub async fn fan_out_adaptive<I, R, Fut, F>(
    bar: ProgressBar,
    concurrency: usize,
    client: &OicClient,
    lane: Lane,
    items: Vec<I>,
    f: F,
) -> Vec<R>
where
    F: Fn(I) -> Fut,
    Fut: Future<Output = R>,
{
    let items = futures::stream::iter(items);
    fan_out_shown(bar, concurrency, Some((client.limiter(), lane)), items, f).await
}

/// [`fan_out_adaptive`] over items that arrive while it works (a migration's imports fed by its
/// exports): each starts as soon as it is in and a place is free; the results come back in the
/// order the items arrived, when the stream has ended and the last one is done.
pub async fn fan_out_adaptive_stream<I, R, Fut, F>(
    bar: ProgressBar,
    concurrency: usize,
    client: &OicClient,
    lane: Lane,
    items: impl futures::Stream<Item = I>,
    f: F,
) -> Vec<R>
where
    F: Fn(I) -> Fut,
    Fut: Future<Output = R>,
{
    fan_out_shown(bar, concurrency, Some((client.limiter(), lane)), items, f).await
}

async fn fan_out_shown<I, R, Fut, F>(
    bar: ProgressBar,
    concurrency: usize,
    limit: Option<(&Limiter, Lane)>,
    items: impl futures::Stream<Item = I>,
    f: F,
) -> Vec<R>
where
    F: Fn(I) -> Fut,
    Fut: Future<Output = R>,
{
    let show = |bar: &ProgressBar| {
        if let Some((l, lane)) = limit {
            let s = l.stats();
            let n = match lane {
                Lane::Reads => s.reads,
                Lane::Writes => s.writes,
            };
            bar.set_message(format!("limit {}", n.min(concurrency.max(1))));
        }
    };
    show(&bar);
    // Futures are made as places free up, not all at once: memory stays that of `concurrency`
    // requests in flight whatever the number of items (an export's future is kilobytes).
    let mut out: Vec<(usize, R)> = items
        .enumerate()
        .map(|(i, item)| {
            let bar = bar.clone();
            let fut = f(item);
            async move {
                let r = fut.await;
                bar.inc(1);
                show(&bar);
                (i, r)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    out.sort_by_key(|(i, _)| *i);
    bar.finish_and_clear();
    out.into_iter().map(|(_, r)| r).collect()
}
