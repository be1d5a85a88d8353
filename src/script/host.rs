//! The host: what native functions share during a run (config, runtime, effect executor, output,
//! open connections and jobs). Script-visible handles carry an `Arc<Host>`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressStyle};
use rhai::EvalAltResult;
use tokio_util::sync::CancellationToken;

use super::errors;
use super::output::Output;
use super::render::Sources;
use crate::config::Config;
use crate::effect::Executor;

/// Default bounds on parallel work, per kind of operation (reads and exports more parallel than
/// imports and activations, as the OIC reference advises).
#[derive(Clone, Debug)]
pub struct Concurrency {
    pub reads: usize,
    pub exports: usize,
    pub stores: usize,
    pub imports: usize,
    pub activations: usize,
}

impl Default for Concurrency {
    fn default() -> Self {
        Concurrency {
            reads: 4,
            exports: 4,
            stores: 4,
            imports: 2,
            activations: 2,
        }
    }
}

/// A cancellation that can be re-armed: the REPL cancels the running entry on Ctrl-C, then
/// resets the flag before the next entry (a `CancellationToken` itself cannot be reset).
#[derive(Debug, Default)]
pub struct CancelFlag(Mutex<CancellationToken>);

impl CancelFlag {
    /// A flag that is not cancelled.
    pub fn new() -> CancelFlag {
        CancelFlag::default()
    }

    /// The token for the current entry.
    pub fn current(&self) -> CancellationToken {
        self.0.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Cancels the current entry.
    pub fn cancel(&self) {
        self.current().cancel();
    }

    /// True when the current entry was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.current().is_cancelled()
    }

    /// Re-arms the flag (a fresh token) when it was cancelled.
    pub fn reset(&self) {
        if let Ok(mut t) = self.0.lock()
            && t.is_cancelled()
        {
            *t = CancellationToken::new();
        }
    }
}

/// Shared state of a run.
pub struct Host {
    pub config: Arc<Config>,
    pub rt: tokio::runtime::Handle,
    pub exec: Executor,
    pub out: Output,
    /// `--var KEY=VALUE` pairs.
    pub vars: rhai::Map,
    /// Draw progress bars (a terminal, not `--json`, not `-q`).
    pub progress: bool,
    pub sources: Sources,
    pub concurrency: Concurrency,
    /// Where the sandbox outbox and vault live, when running with `--sandbox`.
    pub sandbox: bool,
    /// Cancellation of the current REPL entry (in batch mode it is never cancelled; the
    /// executor's token stops the whole run).
    pub interrupt: Arc<CancelFlag>,
    pub(crate) clients: Mutex<HashMap<String, crate::oic::OicClient>>,
    pub(crate) jobs: Mutex<Vec<Arc<super::api::vault::JobState>>>,
}

impl Host {
    pub fn new(
        config: Arc<Config>,
        rt: tokio::runtime::Handle,
        exec: Executor,
        out: Output,
    ) -> Host {
        out.add_secrets(&config.secrets);
        Host {
            config,
            rt,
            exec,
            out,
            vars: rhai::Map::new(),
            progress: false,
            sources: Sources::default(),
            concurrency: Concurrency::default(),
            sandbox: false,
            interrupt: Arc::new(CancelFlag::new()),
            clients: Mutex::new(HashMap::new()),
            jobs: Mutex::new(vec![]),
        }
    }

    /// Runs a future to completion from the script thread, giving up at once on Ctrl-C with an
    /// error scripts cannot catch.
    pub fn block_on<F: Future>(&self, fut: F) -> Result<F::Output, Box<EvalAltResult>> {
        let cancel = self.exec.cancel_token().clone();
        let entry = self.interrupt.current();
        self.rt.block_on(async move {
            tokio::select! {
                r = fut => Ok(r),
                _ = cancel.cancelled() => Err(errors::cancelled()),
                _ = entry.cancelled() => Err(errors::cancelled()),
            }
        })
    }

    /// True when the run (Ctrl-C in batch mode) or the current REPL entry was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.exec.cancel_token().is_cancelled() || self.interrupt.is_cancelled()
    }

    /// Runs a read (a list or a get) with retries on transient failures, from the script thread.
    pub fn read<T, E, F, Fut>(&self, what: &str, f: F) -> Result<Result<T, E>, Box<EvalAltResult>>
    where
        E: crate::effect::Classify,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.block_on(self.exec.read(what, f))
    }

    /// A progress bar for `len` items (hidden when bars are off).
    pub fn bar(&self, len: usize, label: &str) -> ProgressBar {
        if !self.progress || len < 2 {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::new(len as u64);
        pb.set_style(
            ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        pb.set_prefix(label.to_string());
        pb
    }

    /// Leaves every vault job still open unfinished (no manifest, lock kept): a run that was
    /// stopped (Ctrl-C, SIGTERM) is continued with `--resume`, never finalised half-way.
    pub fn leave_jobs_unfinished(&self) -> Vec<String> {
        let jobs: Vec<_> = self.jobs.lock().expect("jobs lock").drain(..).collect();
        for j in jobs {
            tracing::info!(job = %j.path, "run stopped: the job stays unfinished; continue it with --resume");
        }
        vec![]
    }

    /// Finishes every vault job still open (writes their manifests). Called at the end of a run.
    pub fn finish_jobs(&self) -> Vec<String> {
        let jobs: Vec<_> = self.jobs.lock().expect("jobs lock").drain(..).collect();
        let mut errs = vec![];
        for j in jobs {
            if let Err(e) = j.finish(self) {
                errs.push(e);
            }
        }
        errs
    }
}
