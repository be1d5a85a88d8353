//! Fan-out for bulk primitives: run one future per item on the runtime, at most `concurrency` at
//! a time, with a progress bar, and give the results back in the items' order.

use std::future::Future;
use std::sync::Arc;

use futures::future::join_all;
use rhai::EvalAltResult;
use tokio::sync::Semaphore;

use crate::script::host::Host;

/// Runs `f(item)` for every item, bounded by `concurrency`, blocking the script thread until all
/// are done (Ctrl-C stops waiting at once).
pub fn run_bulk<I, R, Fut, F>(
    host: &Host,
    label: &str,
    concurrency: usize,
    items: Vec<I>,
    f: F,
) -> Result<Vec<R>, Box<EvalAltResult>>
where
    F: Fn(I) -> Fut,
    Fut: Future<Output = R>,
{
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let bar = host.bar(items.len(), label);
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
    let out = host.block_on(join_all(futs));
    bar.finish_and_clear();
    out
}
