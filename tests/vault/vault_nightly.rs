//! The figures of issue 15 for all three vault kinds: a second nightly backup of unchanged
//! integrations (the emulator stamps every export like real OIC, so "unchanged" is found by
//! content hash) writes under 1 % of the first night's bytes and finishes much faster.
//!
//! A benchmark run by hand (minutes of work, not part of `cargo test`):
//!
//! ```text
//! . /srv/ocitest/env && cargo test --release --test vault_nightly -- --ignored --nocapture
//! ```
//!
//! Environment: `NIGHTLY_N` integrations (1000), `NIGHTLY_KB` archive size in KiB (200),
//! `NIGHTLY_LATENCY_MS` emulator latency (50), `NIGHTLY_VAULTS` (`file,sftp,s3`),
//! `NIGHTLY_ASSERT_SPEEDUP` (unset: the speed-up is printed, not asserted).

use crate::support;

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry::cli::sandbox::config_for;
use ferry::effect::RetryPolicy;
use ferry::script::Output;
use ferry::script::runner::{RunOptions, run_recipe};
use ferry::sim::{self, Faults, Seed, SimConfig, SimInstanceSpec};
use ferry::vault::{Store, Vault};

fn env_or(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// Every file below `path` in the store: (vault path, size).
fn files(st: &dyn Store, path: &str) -> Vec<(String, u64)> {
    let mut out = vec![];
    let mut stack = vec![path.to_string()];
    while let Some(d) = stack.pop() {
        for e in st.list(&d).unwrap() {
            let p = format!("{d}/{}", e.name);
            if e.is_dir {
                stack.push(p);
            } else {
                out.push((p, e.size));
            }
        }
    }
    out
}

struct Night {
    wall: Duration,
    /// Bytes the night added to the vault.
    bytes: u64,
    shared: usize,
    entries: usize,
}

#[test]
#[ignore = "benchmark: run by hand with --ignored --nocapture"]
fn second_night_of_unchanged_integrations() {
    ferry::sim::archive::set_stamped_exports(true);
    let n = env_or("NIGHTLY_N", 1000) as usize;
    let kb = env_or("NIGHTLY_KB", 200);
    let latency = env_or("NIGHTLY_LATENCY_MS", 50);
    let kinds = std::env::var("NIGHTLY_VAULTS").unwrap_or_else(|_| "file,sftp,s3".into());
    let rt = ferry::cli::runtime().unwrap();
    let sim = rt
        .block_on(sim::start(SimConfig {
            instances: vec![SimInstanceSpec {
                name: "dev".into(),
                generation: 3,
                seed: Seed::Generated(n),
            }],
            ..Default::default()
        }))
        .unwrap();
    let dir = support::tempdir();
    let mut cfg = config_for(&sim.info, &dir.path().join(".ferry")).unwrap();
    let ids: Vec<String> = {
        let dev = cfg.instances["dev"].clone();
        rt.block_on(async {
            let c = ferry::oic::OicClient::new(&dev).unwrap();
            c.list_integrations(None)
                .await
                .unwrap()
                .into_iter()
                .map(|i| i.id.to_string())
                .collect()
        })
    };
    for id in &ids {
        sim.set_archive_size("dev", id, kb * 1024);
    }
    sim.set_faults(Faults {
        latency_ms: latency,
        max_concurrent: Some(16),
        instances: Some(vec!["dev".into()]),
        ..Default::default()
    });
    let age = age::x25519::Identity::generate().to_public();
    eprintln!(
        "{n} integrations of {kb} KiB, emulator latency {latency} ms (at most 16 concurrent requests), vault encrypted to an age X25519 key"
    );
    let mut missed = vec![];
    for kind in kinds.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        let settings = match kind {
            "file" => format!(
                "url = \"file://{}\"\n",
                dir.path().join(format!("vault-{kind}")).display()
            ),
            "sftp" => {
                let Some(e) = support::vaults::sftp_env(module_path!()) else {
                    continue;
                };
                support::vaults::sftp_vault_toml(&e)
            }
            "s3" => {
                let Some(e) = support::vaults::s3_env(module_path!()) else {
                    continue;
                };
                support::vaults::s3_vault_toml(&e)
            }
            other => panic!("NIGHTLY_VAULTS: unknown vault kind `{other}`"),
        };
        let toml = format!("[vaults.nightly]\n{settings}recipients = [\"{age}\"]\n");
        let parsed = ferry::config::Config::parse(&toml, "ferry.toml", dir.path()).unwrap();
        let profile = parsed.vault("nightly").unwrap().clone();
        cfg.vaults.insert("nightly".into(), profile.clone());
        let cfg = Arc::new(cfg.clone());
        let vault = Vault::open(&profile).unwrap();
        let mut nights: Vec<Night> = vec![];
        let mut seen_inodes = HashSet::new();
        for night in 1..=2 {
            let recipe = format!(
                r#"
let dev = oic::instance("dev");
let list = dev.integrations().filter(|i| i.status != "INPROGRESS" && !i.locked && i.project_type != "PREBUILT");
let job = vault::open("nightly").new_job("night-{night}");
job.store(dev.export_archives(list, #{{ concurrency: 16 }}));
job.finish();
print(`${{list.len()}} ${{job.status}} ${{job.path}}`);
"#
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
            let t = Instant::now();
            let r = run_recipe(
                "nightly.rhai",
                &recipe,
                cfg.clone(),
                rt.handle().clone(),
                Default::default(),
                out.clone(),
                &opts,
            );
            let wall = t.elapsed();
            assert_eq!(r.code, 0, "{:?}\n{:?}", r.error, out.lines());
            let line = out.lines().pop().unwrap_or_default();
            let mut words = line.split_whitespace();
            let count: usize = words.next().unwrap().parse().unwrap();
            assert_eq!(words.next(), Some("complete"), "{line}");
            let job = words.next().unwrap().to_string();
            let m = vault.open_job(&job).unwrap().manifest().clone();
            // Scheduled integrations also store their schedule (`Schedules/*.json`).
            let archives: Vec<_> = m
                .entries
                .iter()
                .filter(|e| e.kind == ferry::artifact::ArtifactKind::Integration)
                .collect();
            assert_eq!(archives.len(), count);
            // Bytes this night wrote: its files (a reference has none; on file://, files whose
            // inode an earlier night already had are hard links, not new bytes)...
            let bytes = if kind == "file" {
                let root = profile.url.trim_start_matches("file://");
                let mut sum = 0;
                for (p, size) in files(vault.store().as_ref(), &job) {
                    let md = std::fs::metadata(format!("{root}/{p}")).unwrap();
                    if seen_inodes.insert((md.dev(), md.ino())) {
                        sum += size;
                    }
                }
                sum
            } else {
                files(vault.store().as_ref(), &job)
                    .iter()
                    .map(|f| f.1)
                    .sum()
            };
            // Plus what was written and removed when the job finished: one journal file per
            // entry (the entry's compact JSON) and the lock.
            let journal: u64 = m
                .entries
                .iter()
                .map(|e| serde_json::to_vec(e).unwrap().len() as u64)
                .sum();
            let bytes = bytes + journal + 256;
            let shared = archives.iter().filter(|e| e.shared.is_some()).count();
            eprintln!(
                "  {kind:<4} night {night}: {count} archives in {:>6.2} s, {:>11} bytes written, {shared} shared",
                wall.as_secs_f64(),
                bytes
            );
            nights.push(Night {
                wall,
                bytes,
                shared,
                entries: count,
            });
        }
        let (one, two) = (&nights[0], &nights[1]);
        let pct = two.bytes as f64 * 100.0 / one.bytes as f64;
        let speedup = one.wall.as_secs_f64() / two.wall.as_secs_f64();
        eprintln!(
            "  {kind:<4} second night: {pct:.3} % of the first night's bytes, {speedup:.1}x faster"
        );
        assert_eq!(one.shared, 0);
        assert_eq!(two.shared, two.entries, "every unchanged archive is shared");
        if pct >= 1.0 {
            missed.push(format!("{kind}: {pct:.3} % of the first night's bytes"));
        }
        if std::env::var_os("NIGHTLY_ASSERT_SPEEDUP").is_some() && speedup < 5.0 {
            missed.push(format!("{kind}: only {speedup:.1}x faster"));
        }
    }
    rt.block_on(sim.shutdown());
    // The targets are checked after every vault kind has been measured.
    assert!(missed.is_empty(), "targets missed: {missed:?}");
}
