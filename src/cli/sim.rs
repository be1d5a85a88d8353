//! `ferry sim`: the OIC emulator, standalone, for curl scripts, Postman or another ferry.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use super::exit;
use crate::sim::{self, Seed, SimConfig, SimInstanceSpec};

#[derive(Args, Debug)]
pub struct SimArgs {
    /// Address to listen on. With a port other than 0, Gen2 instances take consecutive ports from
    /// it, then the OIC 3 design host, then the identity domain.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// An instance, as NAME or NAME:SEED with SEED one of sample, target, empty or a number of
    /// generated integrations. Repeatable. Default: `dev:sample` and `prod:target`.
    #[arg(long = "instance", value_name = "NAME[:SEED]")]
    pub instances: Vec<String>,
    /// OIC generation of every instance: 2 (the host is the instance, Basic auth accepted) or 3
    /// (`integrationInstance` on every call, OAuth only).
    #[arg(long = "gen", default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=3))]
    pub generation: u8,
    /// Seed the first instance with N generated integrations instead of the sample set.
    #[arg(long, value_name = "N")]
    pub seed_integrations: Option<usize>,
    /// Access-token lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub token_ttl: u64,
    /// Seed for the emulator's random choices (generated data, injected faults).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Upload a certificate's public key (PEM) to INSTANCE's confidential application under ALIAS,
    /// so that JWT user and client assertions signed with its private key are accepted.
    /// Repeatable.
    #[arg(long = "jwt-key", value_name = "INSTANCE:ALIAS=FILE")]
    pub jwt_keys: Vec<String>,
    /// Add an identity-domain user (by e-mail), e.g. the subject of JWT user assertions.
    /// Repeatable.
    #[arg(long = "user", value_name = "EMAIL")]
    pub users: Vec<String>,
}

/// Registers `--jwt-key` keys and `--user` users on a running emulator.
fn register_identities(handle: &sim::SimHandle, a: &SimArgs) -> Result<(), String> {
    for spec in &a.jwt_keys {
        let parsed = spec
            .split_once('=')
            .and_then(|(l, file)| l.split_once(':').map(|(i, alias)| (i, alias, file)));
        let Some((instance, alias, file)) = parsed else {
            return Err(format!("--jwt-key `{spec}`: expected INSTANCE:ALIAS=FILE"));
        };
        let pem = std::fs::read(file).map_err(|e| format!("--jwt-key: cannot read {file}: {e}"))?;
        handle
            .register_jwt_key(instance, alias, &pem)
            .map_err(|e| format!("--jwt-key `{spec}`: {e}"))?;
    }
    for u in &a.users {
        handle.add_user(u, u.split('@').next().unwrap_or(u));
    }
    Ok(())
}

fn parse_instance(s: &str, first: bool, n: Option<usize>) -> Result<(String, Seed), String> {
    let (name, seed) = match s.split_once(':') {
        Some((n, s)) => (n, Some(s)),
        None => (s, None),
    };
    if name.is_empty() {
        return Err(format!("empty instance name in `{s}`"));
    }
    let seed = match seed {
        None if first => n.map(Seed::Generated).unwrap_or(Seed::Sample),
        None => Seed::TargetConnections,
        Some("sample") => Seed::Sample,
        Some("target") => Seed::TargetConnections,
        Some("empty") => Seed::Empty,
        Some(x) => Seed::Generated(x.parse().map_err(|_| {
            format!("unknown seed `{x}` in `{s}` (sample, target, empty or a number)")
        })?),
    };
    Ok((name.to_string(), seed))
}

pub fn exec(a: SimArgs) -> u8 {
    let names = if a.instances.is_empty() {
        vec!["dev".to_string(), "prod".to_string()]
    } else {
        a.instances.clone()
    };
    let mut specs = vec![];
    for (i, s) in names.iter().enumerate() {
        match parse_instance(s, i == 0, a.seed_integrations) {
            Ok((name, seed)) => specs.push(SimInstanceSpec {
                name,
                generation: a.generation,
                seed,
            }),
            Err(e) => {
                super::eprint_error(&e);
                return exit::USAGE;
            }
        }
    }
    let cfg = SimConfig {
        instances: specs,
        token_ttl: Duration::from_secs(a.token_ttl),
        host: a.listen.ip(),
        port: a.listen.port(),
        seed: a.seed,
        ..SimConfig::default()
    };
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            super::eprint_error(&format!("cannot start the runtime: {e}"));
            return exit::USAGE;
        }
    };
    rt.block_on(async move {
        let handle = match sim::start(cfg).await {
            Ok(h) => h,
            Err(e) => {
                super::eprint_error(&format!("cannot start the emulator: {e:#}"));
                return exit::USAGE;
            }
        };
        if let Err(e) = register_identities(&handle, &a) {
            super::eprint_error(&e);
            handle.shutdown().await;
            return exit::USAGE;
        }
        println!("{}", sim::standalone_info_line(&handle.info));
        eprintln!(
            "ferry sim: {} instance(s) ready; Ctrl-C to stop",
            handle.info.instances.len()
        );
        let _ = tokio::signal::ctrl_c().await;
        handle.shutdown().await;
        exit::OK
    })
}
