//! Benchmarks of the `oic` module against the emulator (issue #4). Run with
//! `cargo bench --bench migrate` (env `BENCH_N` = integrations, default 1000; `BENCH_SKIP_SERIAL=1`
//! skips the concurrency-1 run; `BENCH_GIB` = size of the big archive in GiB, default 1).
//!
//! 1. Migrate N integrations (export, store + verify in a local vault, import, activate) between two
//!    emulated OIC 3 instances with 50 ms latency per request and at most 16 concurrent requests
//!    per instance (the excess is answered 429). Reports the wall time against the floor
//!    (requests x 50 ms / 16) and against the same run with concurrency 1.
//! 2. Export one big archive from a `ferry sim` in another process: peak RSS of this process and
//!    throughput.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry::cli::sandbox::config_for;
use ferry::config::{Auth, Generation, InstanceProfile, Secret};
use ferry::effect::RetryPolicy;
use ferry::oic::{IntegrationId, OicClient};
use ferry::script::Output;
use ferry::script::runner::{RunOptions, run_recipe};
use ferry::sim::{self, Faults, Seed, SimConfig, SimInstanceSpec};

fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn migrate(n: usize, concurrency: usize) -> (Duration, usize, usize) {
    let rt = ferry::cli::runtime().unwrap();
    let sim = rt
        .block_on(sim::start(SimConfig {
            instances: vec![
                SimInstanceSpec {
                    name: "dev".into(),
                    generation: 3,
                    seed: Seed::Generated(n),
                },
                SimInstanceSpec {
                    name: "prod".into(),
                    generation: 3,
                    seed: Seed::Generated(0),
                },
            ],
            seed: 42,
            ..Default::default()
        }))
        .unwrap();
    // Latency-bound: every archive small (20 KB), so the run measures request handling, not
    // disk or loopback bandwidth (the big-archive benchmark covers that).
    if std::env::var("BENCH_REAL_SIZES").is_err() {
        let dev = sim.instance("dev").unwrap().clone();
        let ids: Vec<String> = rt.block_on(async {
            let c = OicClient::new(&profile_of(&dev)).unwrap();
            c.list_integrations(None)
                .await
                .unwrap()
                .into_iter()
                .map(|i| i.id.clone())
                .collect()
        });
        for id in ids {
            sim.set_archive_size("dev", &id, 20_000);
        }
    }
    let latency: u64 = std::env::var("BENCH_LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    sim.set_faults(Faults {
        latency_ms: latency,
        max_concurrent: Some(16),
        instances: Some(vec!["dev".into(), "prod".into()]),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_for(&sim.info, &dir.path().join(".ferry")).unwrap();
    let recipe = format!(
        r#"
let dev = oic::instance("dev");
let prod = oic::instance("prod");
let list = dev.integrations().filter(|i| i.status != "INPROGRESS");
let arts = dev.export_archives(list, #{{ concurrency: {c} }});
let job = vault::open("backups").new_job("bench-{c}");
job.store(arts);
let verified = job.artifacts();
let res = prod.import_archives(verified, #{{ overwrite: true, activate: "keep", async_activation: false, concurrency: {c}, activation_concurrency: {c} }});
print(`${{list.len()}} ${{res.filter(|r| r.error == ()).len()}}`);
"#,
        c = concurrency
    );
    let out = Output::buffer();
    let opts = RunOptions {
        retry: Some(RetryPolicy {
            max_attempts: 20,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(500),
            budget: Duration::from_secs(600),
        }),
        ..Default::default()
    };
    sim.clear_request_log();
    let started = Instant::now();
    let r = run_recipe(
        "bench.rhai",
        &recipe,
        Arc::new(cfg),
        rt.handle().clone(),
        Default::default(),
        out.clone(),
        &opts,
    );
    let wall = started.elapsed();
    assert_eq!(r.code, 0, "{:?}", r.error);
    let line = out.lines().pop().unwrap_or_default();
    let moved: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    let log = sim.request_log();
    let requests = log
        .iter()
        .filter(|e| {
            e.instance
                .as_deref()
                .is_some_and(|i| i == "dev" || i == "prod")
                && !e.injected
        })
        .count();
    let throttled = log.iter().filter(|e| e.injected).count();
    if std::env::var("BENCH_PHASES").is_ok() {
        let phase = |pred: &dyn Fn(&sim::LogEntry) -> bool| {
            let v: Vec<&sim::LogEntry> = log.iter().filter(|e| pred(e)).collect();
            let avg = if v.is_empty() {
                0
            } else {
                v.iter().map(|e| e.duration_ms).sum::<u64>() / v.len() as u64
            };
            eprintln!("      avg duration {avg} ms");
            (
                v.len(),
                v.first().map(|e| e.at_ms).unwrap_or(0),
                v.last().map(|e| e.at_ms + e.duration_ms).unwrap_or(0),
            )
        };
        for (name, f) in [
            (
                "list",
                &(|e: &sim::LogEntry| e.method == "GET" && e.path.ends_with("/integrations"))
                    as &dyn Fn(&sim::LogEntry) -> bool,
            ),
            ("export", &|e: &sim::LogEntry| {
                e.method == "GET" && e.path.ends_with("/archive")
            }),
            ("import-get", &|e: &sim::LogEntry| {
                e.method == "GET"
                    && e.instance.as_deref() == Some("prod")
                    && !e.path.ends_with("/integrations")
            }),
            ("import", &|e: &sim::LogEntry| {
                e.method == "POST" && e.path.ends_with("/integrations/archive")
            }),
            ("activate", &|e: &sim::LogEntry| {
                e.method == "POST" && !e.path.ends_with("/archive") && !e.path.ends_with("/token")
            }),
        ] {
            let (n, a, b) = phase(f);
            eprintln!(
                "    {name:<10} {n:>5} requests from {:>7.2}s to {:>7.2}s",
                a as f64 / 1000.0,
                b as f64 / 1000.0
            );
        }
    }
    eprintln!(
        "  concurrency {concurrency}: {moved} integrations moved, {requests} requests (+{throttled} answered 429), wall {:.2}s",
        wall.as_secs_f64()
    );
    rt.block_on(sim.shutdown());
    (wall, requests, moved)
}

fn profile_of(i: &sim::SimInstanceInfo) -> InstanceProfile {
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
        timeout_secs: 600,
        reads: Default::default(),
    }
}

fn big_export(gib: u64) {
    let bin = env!("CARGO_BIN_EXE_ferry");
    let mut child = Command::new(bin)
        .args(["sim", "--instance", "dev:sample", "--gen", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ferry sim");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: serde_json::Value = serde_json::from_str(&line).expect("sim info line");
    let i = &info["instances"][0];
    let s = |k: &str| i[k].as_str().unwrap().to_string();
    let bytes = gib << 30;
    let id = "HR_EMPLOYEE_SYNC|01.00.0000";
    let rt = ferry::cli::runtime().unwrap();
    let r = rt
        .block_on(
            reqwest::Client::new()
                .post(format!("{}/__sim/archive_size", s("base_url")))
                .json(&serde_json::json!({ "instance": "dev", "id": id, "bytes": bytes }))
                .send(),
        )
        .expect("set archive size");
    assert!(r.status().is_success(), "archive_size: {}", r.status());
    let profile = InstanceProfile {
        name: "dev".into(),
        base_url: s("base_url"),
        generation: Generation::Gen3,
        integration_instance: Some(s("integration_instance")),
        auth: Auth::ClientCredentials {
            token_url: s("token_url"),
            client_id: s("client_id"),
            client_secret: Secret::new(s("client_secret")),
            scope: s("scope"),
        },
        timeout_secs: 600,
        reads: Default::default(),
    };
    let client = OicClient::new(&profile).unwrap();
    let before = peak_rss_mib();
    let started = Instant::now();
    let a = rt
        .block_on(client.export_integration(&IntegrationId::parse(id).unwrap()))
        .expect("export");
    let wall = started.elapsed();
    let mib = a.size as f64 / (1024.0 * 1024.0);
    eprintln!(
        "  exported {} ({:.0} MiB) in {:.2}s = {:.0} MiB/s; peak RSS {:.1} MiB (before the export {:.1} MiB)",
        a.key.id(),
        mib,
        wall.as_secs_f64(),
        mib / wall.as_secs_f64(),
        peak_rss_mib(),
        before
    );
    drop(a);
    let _ = child.kill();
    let _ = child.wait();
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let gib: u64 = std::env::var("BENCH_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    eprintln!("ferry bench: export one {gib} GiB archive from `ferry sim` (separate process)");
    big_export(gib);
    eprintln!(
        "ferry bench: migrate {n} integrations, 50 ms latency, cap 16 concurrent requests per instance"
    );
    let (wall16, req16, moved) = migrate(n, 16);
    let floor = Duration::from_millis(50) * req16 as u32 / 16;
    eprintln!(
        "  floor = {req16} requests x 50 ms / 16 = {:.2}s; concurrency 16 took {:.2}s = {:.2}x the floor ({moved} moved)",
        floor.as_secs_f64(),
        wall16.as_secs_f64(),
        wall16.as_secs_f64() / floor.as_secs_f64()
    );
    if std::env::var("BENCH_SKIP_SERIAL").is_err() {
        let (wall1, req1, _) = migrate(n, 1);
        eprintln!(
            "  concurrency 1: {:.2}s ({req1} requests) = {:.1}x slower than concurrency 16",
            wall1.as_secs_f64(),
            wall1.as_secs_f64() / wall16.as_secs_f64()
        );
    }
}
