//! What the verbs need from the run that calls them: the effect executor, the configuration,
//! clients of the configured instances, progress bars and the place where replaced archives are
//! saved for rollback. The Rhai host implements it for recipes; a command without a recipe
//! implements it over its own run.

use std::future::Future;
use std::sync::Arc;

use futures::future::join_all;
use indicatif::ProgressBar;
use tokio::sync::Semaphore;

use super::OpsError;
use crate::artifact::Artifact;
use crate::config::Config;
use crate::effect::Executor;
use crate::oic::OicClient;

/// Default bounds on parallel work, per kind of operation (exports more parallel than imports
/// and activations, as the OIC reference advises).
#[derive(Clone, Debug)]
pub struct Bounds {
    pub exports: usize,
    pub imports: usize,
    pub activations: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            exports: 4,
            imports: 2,
            activations: 2,
        }
    }
}

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
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let futs = items.into_iter().map(|item| {
        let sem = sem.clone();
        let bar = bar.clone();
        let fut = f(item);
        async move {
            let _permit = sem.acquire_owned().await.ok();
            let r = fut.await;
            bar.inc(1);
            r
        }
    });
    let out = join_all(futs).await;
    bar.finish_and_clear();
    out
}
