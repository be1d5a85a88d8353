//! The host: what native functions share during a run (config, runtime, effect executor, output,
//! open connections and jobs). Script-visible handles carry an `Arc<Host>`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressStyle};
use rhai::EvalAltResult;

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
            clients: Mutex::new(HashMap::new()),
            jobs: Mutex::new(vec![]),
        }
    }

    /// Runs a future to completion from the script thread, giving up at once on Ctrl-C with an
    /// error scripts cannot catch.
    pub fn block_on<F: Future>(&self, fut: F) -> Result<F::Output, Box<EvalAltResult>> {
        let cancel = self.exec.cancel_token().clone();
        self.rt.block_on(async move {
            tokio::select! {
                r = fut => Ok(r),
                _ = cancel.cancelled() => Err(errors::cancelled()),
            }
        })
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
