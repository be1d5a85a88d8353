//! The emulator in the test process and ferry's OIC client bound to its instances: the setup the
//! client, cutover, schedule and in-process recipe tests share (real HTTP on loopback, no mocks).

use std::sync::Arc;
use std::time::Duration;

use ferry::cli::sandbox::config_for;
use ferry::config::{Auth, Generation, InstanceProfile, Secret};
use ferry::effect::RetryPolicy;
use ferry::oic::{ActivateOptions, IntegrationId, OicClient};
use ferry::script::Output;
use ferry::script::runner::{RunOptions, RunResult, run_recipe};
use ferry::sim::{self, SimConfig, SimHandle, SimInstanceInfo, SimInstanceSpec};

#[allow(unused_imports)] // not every test crate builds instances by hand
pub use super::sim::spec;

/// Starts the emulator with `instances` (every other setting default).
pub async fn start(instances: Vec<SimInstanceSpec>) -> SimHandle {
    start_with(SimConfig {
        instances,
        ..SimConfig::default()
    })
    .await
}

/// Starts the emulator with `config`.
pub async fn start_with(config: SimConfig) -> SimHandle {
    sim::start(config).await.expect("emulator starts")
}

/// An OAuth (client credentials) profile for an emulated instance.
pub fn profile(i: &SimInstanceInfo) -> InstanceProfile {
    InstanceProfile {
        name: i.name.clone(),
        base_url: i.base_url.clone(),
        generation: if i.generation == 2 {
            Generation::Gen2
        } else {
            Generation::Gen3
        },
        integration_instance: i.integration_instance.clone(),
        auth: Auth::ClientCredentials {
            token_url: i.token_url.clone(),
            client_id: i.client_id.clone(),
            client_secret: Secret::new(i.client_secret.clone()),
            scope: i.scope.clone(),
        },
        timeout_secs: 30,
        reads: Default::default(),
    }
}

/// ferry's OIC client for the instance `name` of the emulator.
pub fn client(h: &SimHandle, name: &str) -> OicClient {
    client_for(h.instance(name).expect("instance"))
}

/// ferry's OIC client for an emulated instance.
pub fn client_for(i: &SimInstanceInfo) -> OicClient {
    OicClient::new(&profile(i)).expect("client")
}

/// `CODE|VERSION` as an integration id.
pub fn id(s: &str) -> IntegrationId {
    IntegrationId::parse(s).expect("id")
}

/// Activation that waits for the outcome (polls every 50 ms, 10 s at most).
pub fn sync_activation() -> ActivateOptions {
    ActivateOptions {
        async_mode: false,
        timeout: Duration::from_secs(10),
        poll_interval: Duration::from_millis(50),
        tracing: None,
        payload_tracing: None,
    }
}

/// Activation in OIC's asynchronous mode (otherwise as [`sync_activation`]).
pub fn async_activation() -> ActivateOptions {
    ActivateOptions {
        async_mode: true,
        ..sync_activation()
    }
}

/// A retry policy for runs against an emulator with injected faults (short delays).
pub fn retry(max_attempts: u32, base_ms: u64, max_ms: u64, budget_secs: u64) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(base_ms),
        max_delay: Duration::from_millis(max_ms),
        budget: Duration::from_secs(budget_secs),
    }
}

/// An emulator on its own runtime and a working folder, for running recipes in the test process
/// (`run_recipe`, sandbox configuration). The emulator is shut down on drop.
pub struct World {
    pub rt: tokio::runtime::Runtime,
    sim: Option<SimHandle>,
    pub dir: tempfile::TempDir,
    retry: RetryPolicy,
}

impl World {
    /// Starts the emulator with `config`; recipes will run with `retry`.
    pub fn start(config: SimConfig, retry: RetryPolicy) -> World {
        let rt = ferry::cli::runtime().expect("runtime");
        let sim = rt.block_on(start_with(config));
        World {
            rt,
            sim: Some(sim),
            dir: super::tempdir(),
            retry,
        }
    }

    pub fn sim(&self) -> &SimHandle {
        self.sim.as_ref().expect("running")
    }

    pub fn instance(&self, name: &str) -> SimInstanceInfo {
        self.sim().instance(name).expect("instance").clone()
    }

    /// Runs `recipe` (as `test.rhai`); returns the result and the printed lines.
    pub fn run(&self, recipe: &str) -> (RunResult, Vec<String>) {
        let cfg = config_for(&self.sim().info, &self.dir.path().join(".ferry")).expect("config");
        let out = Output::buffer();
        let opts = RunOptions {
            retry: Some(self.retry.clone()),
            ..Default::default()
        };
        let r = run_recipe(
            "test.rhai",
            recipe,
            Arc::new(cfg),
            self.rt.handle().clone(),
            Default::default(),
            out.clone(),
            &opts,
        );
        (r, out.lines())
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(s) = self.sim.take() {
            self.rt.block_on(s.shutdown());
        }
    }
}
