//! The host: what native functions share during a run (the [`Run`], the runtime, recipe variables,
//! sources, open connections). Script-visible handles carry an `Arc<Host>`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use indicatif::ProgressBar;
use rhai::EvalAltResult;
use tokio_util::sync::CancellationToken;

use super::errors;
use super::render::Sources;
use crate::config::Config;
use crate::effect::Executor;
use crate::ops::run::Run;
use crate::shell::Shell;

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
            // bulk OIC calls: fan-out ceilings; the instance's adaptive limiter decides below
            exports: crate::ops::ctx::ADAPTIVE,
            stores: 4,
            imports: crate::ops::ctx::ADAPTIVE,
            activations: crate::ops::ctx::ADAPTIVE,
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

/// What native functions share during a run: the run itself ([`Run`]: record, executor, jobs,
/// rollback and notifications), with what only the script side needs.
pub struct Host {
    /// The run (owns the record, the executor, open jobs, the rollback job, `at_end` requests).
    pub run: Arc<Run>,
    /// The run's config, executor and shell (the same as `run`'s, at hand).
    pub config: Arc<Config>,
    pub rt: tokio::runtime::Handle,
    pub exec: Executor,
    pub out: Shell,
    /// `--var KEY=VALUE` pairs (values are strings).
    pub vars: rhai::Map,
    pub sources: Sources,
    pub concurrency: Concurrency,
    /// Running against the sandbox.
    pub sandbox: bool,
    /// Cancellation of the current REPL entry (in batch mode it is never cancelled; the
    /// executor's token stops the whole run).
    pub interrupt: Arc<CancelFlag>,
    pub(crate) clients: Mutex<HashMap<String, crate::oic::OicClient>>,
}

impl Host {
    /// The host of a run.
    pub fn new(run: Arc<Run>) -> Host {
        Host {
            config: run.config.clone(),
            rt: run.rt.clone(),
            exec: run.exec.clone(),
            out: run.shell.clone(),
            sandbox: run.opts.sandbox,
            run,
            vars: rhai::Map::new(),
            sources: Sources::default(),
            concurrency: Concurrency::default(),
            interrupt: Arc::new(CancelFlag::new()),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// With `--var` pairs (kept as strings; `param` types them after its default).
    pub fn with_vars(mut self, vars: &[(String, String)]) -> Host {
        for (k, v) in vars {
            self.vars.insert(k.as_str().into(), v.clone().into());
        }
        self
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

    /// A progress bar for `len` items, in the shell's one set of bars (hidden when bars are off).
    pub fn bar(&self, len: usize, label: &str) -> ProgressBar {
        self.out.bar(len, label)
    }
}

/// What the `ops` layer needs of a run: the executor, the config, clients, bars, bounds.
impl crate::ops::Ctx for Host {
    fn exec(&self) -> &Executor {
        &self.exec
    }
    fn config(&self) -> &Arc<Config> {
        &self.config
    }
    fn client(&self, name: &str) -> Result<crate::oic::OicClient, crate::ops::OpsError> {
        if let Some(c) = self.clients.lock().expect("clients lock").get(name) {
            return Ok(c.clone());
        }
        let client = crate::oic::OicClient::new(self.config.instance(name)?)
            .map_err(|e| crate::ops::OpsError::oic(name, e))?;
        self.clients
            .lock()
            .expect("clients lock")
            .insert(name.to_string(), client.clone());
        Ok(client)
    }
    fn bar(&self, len: usize, label: &str) -> ProgressBar {
        Host::bar(self, len, label)
    }
    fn shell(&self) -> &Shell {
        &self.out
    }
    fn rollback_sink(&self) -> Arc<dyn crate::ops::RollbackSink> {
        self.run.clone()
    }
    fn resume_grace(&self) -> std::time::Duration {
        self.run.opts.resume_grace
    }
    fn bounds(&self) -> crate::ops::Bounds {
        crate::ops::Bounds {
            exports: self.concurrency.exports,
            imports: self.concurrency.imports,
            activations: self.concurrency.activations,
            stores: self.concurrency.stores,
        }
    }
}
