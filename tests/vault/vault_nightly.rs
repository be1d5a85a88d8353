//! The figures of issue 15 for all three vault kinds: a second nightly backup of unchanged
//! integrations (the emulator stamps every export like real OIC, so "unchanged" is found by
//! content hash) writes under 1 % of the first night's bytes and finishes much faster.
//!
//! A benchmark run by hand (minutes of work, not part of `cargo test`):
//!
//! ```text
//! . /srv/ocitest/env && cargo test --release --locked --test vault vault_nightly::second -- --ignored --nocapture
//! ```
//!
//! A night's bytes are every byte ferry handed to the vault's store during the run
//! ([`ferry::vault::bytes_written`]: archives, temporaries, journal, lock, manifest).
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
use ferry::sim::{Faults, Seed};
use ferry::vault::{Matched, Store, Vault};
use support::emulator;

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
    /// Integrations carried over without an export (their listing was unchanged).
    carried: usize,
    entries: usize,
}

#[test]
#[ignore = "benchmark: run by hand with --ignored --nocapture"]
fn second_night_of_unchanged_integrations() {
    let n = env_or("NIGHTLY_N", 1000) as usize;
    let kb = env_or("NIGHTLY_KB", 200);
    let latency = env_or("NIGHTLY_LATENCY_MS", 50);
    let kinds = std::env::var("NIGHTLY_VAULTS").unwrap_or_else(|_| "file,sftp,s3".into());
    let rt = ferry::cli::runtime().unwrap();
    let sim = rt.block_on(emulator::start(vec![emulator::spec(
        "dev",
        3,
        Seed::Generated(n),
    )]));
    let dir = support::tempdir();
    if std::env::var_os("NIGHTLY_KEEP").is_some() {
        eprintln!("vaults kept in {}", dir.path().display());
    }
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
let r = job.backup(dev, list, #{{ concurrency: 16 }});
job.finish();
print(`${{list.len()}} ${{job.status}} ${{job.path}} ${{r.carried}}`);
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
            let written_before = ferry::vault::bytes_written();
            sim.clear_request_log();
            let cpu = cpu_time();
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
            let cpu = cpu_time() - cpu;
            assert_eq!(r.code, 0, "{:?}\n{:?}", r.error, out.lines());
            let line = out.lines().pop().unwrap_or_default();
            let mut words = line.split_whitespace();
            let count: usize = words.next().unwrap().parse().unwrap();
            assert_eq!(words.next(), Some("complete"), "{line}");
            let job = words.next().unwrap().to_string();
            let carried_by_listing: usize = words.next().unwrap().parse().unwrap();
            let m = vault.open_job(&job).unwrap().manifest().clone();
            // Scheduled integrations also store their schedule (`Schedules/*.json`).
            let archives: Vec<_> = m
                .entries
                .iter()
                .filter(|e| e.kind == ferry::artifact::ArtifactKind::Integration)
                .collect();
            assert_eq!(archives.len(), count);
            // Bytes this night wrote: every byte ferry handed to the vault's store during the
            // run (archives, temporary files renamed after, journal entries and batches removed
            // when the job finished, the lock, the manifest), counted by the store itself.
            let written = ferry::vault::bytes_written() - written_before;
            // Cross-check: at least the files the job folder holds now (a reference has none;
            // on file://, files whose inode an earlier night already had are hard links, not
            // new bytes).
            let held = if kind == "file" {
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
            assert!(
                written >= held,
                "{written} bytes counted, but the job holds {held} new bytes"
            );
            let manifest = vault
                .store()
                .stat(&format!("{job}/{}", ferry::vault::MANIFEST))
                .unwrap()
                .unwrap_or(0);
            let bytes = written;
            let shared = archives.iter().filter(|e| e.shared.is_some()).count();
            eprintln!(
                "  {kind:<4} night {night}: {count} archives ({} entries) in {:>6.2} s, {:>11} bytes written (manifest {manifest}), {shared} shared, {carried_by_listing} not exported",
                m.entries.len(),
                wall.as_secs_f64(),
                bytes
            );
            eprintln!(
                "  {kind:<4} night {night} at OIC: {}; CPU of this process (ferry and the emulator) {:.2} s",
                oic_timeline(&sim.request_log()),
                cpu.as_secs_f64()
            );
            nights.push(Night {
                wall,
                bytes,
                shared,
                carried: carried_by_listing,
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
        assert_eq!(one.carried, 0);
        assert_eq!(
            two.carried, two.entries,
            "no unchanged integration is exported again"
        );
        assert_eq!(two.shared, two.entries, "every unchanged archive is shared");
        if pct >= 1.0 {
            missed.push(format!("{kind}: {pct:.3} % of the first night's bytes"));
        }
        if std::env::var_os("NIGHTLY_ASSERT_SPEEDUP").is_some() && speedup < 5.0 {
            missed.push(format!("{kind}: only {speedup:.1}x faster"));
        }
    }
    rt.block_on(sim.shutdown());
    if std::env::var_os("NIGHTLY_KEEP").is_some() {
        std::mem::forget(dir);
    }
    // The targets are checked after every vault kind has been measured.
    assert!(missed.is_empty(), "targets missed: {missed:?}");
}

/// CPU time of this process so far (user and system, every thread).
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// What a night asked of the emulator, from its request log (evidence that does not depend on
/// the machine's load as wall-clock time does): requests, refusals (429), when the listing ended
/// and when the schedules were read (ms from the night's first request), and how many schedule
/// reads were in flight on average while they were read (the emulator takes 16 at a time).
fn oic_timeline(log: &[ferry::sim::LogEntry]) -> String {
    let Some(t0) = log.iter().map(|e| e.at_ms).min() else {
        return "no request".into();
    };
    let end = |e: &ferry::sim::LogEntry| e.at_ms + e.duration_ms - t0;
    let refused = log.iter().filter(|e| e.status == 429).count();
    let listed = log
        .iter()
        .filter(|e| e.method == "GET" && e.path.ends_with("/integrations"))
        .map(end)
        .max()
        .unwrap_or(0);
    let sched: Vec<_> = log
        .iter()
        .filter(|e| e.method == "GET" && e.path.ends_with("/schedule"))
        .collect();
    let first = sched.iter().map(|e| e.at_ms - t0).min().unwrap_or(0);
    let last = sched.iter().map(|e| end(e)).max().unwrap_or(0);
    let busy: u64 = sched.iter().map(|e| e.duration_ms).sum();
    format!(
        "{} requests ({refused} refused), listed by +{listed} ms; {} schedules read from +{first} to +{last} ms ({:.1} in flight on average)",
        log.len(),
        sched.len(),
        busy as f64 / (last - first).max(1) as f64
    )
}

/// Runs a recipe against `cfg`; its printed lines.
/// The sandbox config for `sim` with a file vault `nightly` under `dir/vault`.
fn nightly_config(
    sim: &ferry::sim::SimHandle,
    dir: &std::path::Path,
) -> Arc<ferry::config::Config> {
    let mut cfg = config_for(&sim.info, &dir.join(".ferry")).unwrap();
    let toml = format!(
        "[vaults.nightly]\nurl = \"file://{}\"\n",
        dir.join("vault").display()
    );
    let parsed = ferry::config::Config::parse(&toml, "ferry.toml", dir).unwrap();
    cfg.vaults
        .insert("nightly".into(), parsed.vault("nightly").unwrap().clone());
    Arc::new(cfg)
}

fn run(
    rt: &tokio::runtime::Runtime,
    cfg: &Arc<ferry::config::Config>,
    recipe: &str,
) -> Vec<String> {
    let out = Output::buffer();
    let r = run_recipe(
        "nightly.rhai",
        recipe,
        cfg.clone(),
        rt.handle().clone(),
        Default::default(),
        out.clone(),
        &RunOptions::default(),
    );
    assert_eq!(r.code, 0, "{:?}\n{:?}", r.error, out.lines());
    out.lines()
}

/// `job.backup`: what the instance lists as the newest complete job recorded is carried over
/// without an export; a changed listing (here a deactivation: new `lastUpdated` and status) is
/// exported; `incremental: false` exports everything; every job verifies on its own.
#[test]
fn backup_exports_only_what_the_listing_says_changed() {
    let rt = ferry::cli::runtime().unwrap();
    let sim = rt.block_on(emulator::start(vec![emulator::spec(
        "dev",
        3,
        Seed::Generated(16),
    )]));
    let dir = support::tempdir();
    let cfg = nightly_config(&sim, dir.path());
    let night = |name: &str, opts: &str| {
        let lines = run(
            &rt,
            &cfg,
            &format!(
                r#"
let dev = oic::instance("dev");
let list = dev.integrations().filter(|i| i.status != "INPROGRESS" && !i.locked && i.project_type != "PREBUILT");
let job = vault::open("nightly").new_job("{name}");
let r = job.backup(dev, list, {opts});
job.finish();
let v = job.verify();
print(`${{list.len()}} ${{r.carried}} ${{r.exported}} ${{job.status}} ${{v.ok}}`);
"#
            ),
        );
        let w: Vec<String> = lines
            .last()
            .unwrap()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        assert_eq!(w[3..], ["complete", "true"], "{lines:?}");
        let n = |i: usize| w[i].parse::<usize>().unwrap();
        (n(0), n(1), n(2))
    };
    let (n, carried, exported) = night("n1", "#{}");
    assert!(n >= 8, "{n}");
    assert_eq!(carried, 0, "nothing to carry from on the first night");
    assert!(exported >= n, "{exported} < {n}");
    let (_, carried, _) = night("n2", "#{}");
    assert_eq!(carried, n, "an unchanged night exports no integration");
    // Deactivate one active integration, a scheduled one: its lastUpdated and status change.
    let changed = run(
        &rt,
        &cfg,
        r#"
let dev = oic::instance("dev");
let a = dev.integrations().filter(|i| i.status == "ACTIVATED" && !i.locked && i.scheduled)[0];
dev.deactivate(a.id);
print(a.id);
"#,
    );
    let changed = changed.last().unwrap().clone();
    sim.clear_request_log();
    let (n3, carried, _) = night("n3", "#{}");
    assert_eq!(carried, n3 - 1, "only {changed} is exported again");
    // Every schedule is read once, ahead of the decisions: the exported integration's export
    // takes the answer read ahead instead of reading it again.
    let reads: Vec<String> = sim
        .request_log()
        .into_iter()
        .filter(|e| e.method == "GET" && e.path.ends_with("/schedule"))
        .map(|e| e.path)
        .collect();
    let distinct: HashSet<&String> = reads.iter().collect();
    assert_eq!(
        distinct.len(),
        reads.len(),
        "a schedule read twice: {reads:?}"
    );
    let (code, version) = changed.split_once('|').unwrap();
    assert!(
        reads.iter().any(|p| p.contains(code)),
        "{changed}'s schedule read: {reads:?}"
    );
    let m = Vault::open(cfg.vault("nightly").unwrap())
        .unwrap()
        .list_jobs(Default::default())
        .unwrap();
    let last = m.iter().find(|j| j.name == "n3").unwrap().path.clone();
    let vault = Vault::open(cfg.vault("nightly").unwrap()).unwrap();
    let m3 = vault.open_job(&last).unwrap().manifest().clone();
    let schedules = m3
        .entries
        .iter()
        .filter(|e| e.kind == ferry::artifact::ArtifactKind::Schedule)
        .count();
    assert_eq!(schedules, reads.len(), "each schedule read is stored");
    assert!(
        m3.entries
            .iter()
            .any(|e| e.kind == ferry::artifact::ArtifactKind::Schedule
                && e.code == code
                && e.version == version),
        "{changed}'s schedule is in the job"
    );
    let e = m3
        .entries
        .iter()
        .find(|e| {
            e.code == code
                && e.version == version
                && e.kind == ferry::artifact::ArtifactKind::Integration
        })
        .unwrap();
    assert_eq!(e.source_status.as_deref(), Some("CONFIGURED"));
    assert_ne!(
        e.shared.as_ref().map(|s| s.matched),
        Some(Matched::Listing),
        "{e:?}"
    );
    // Forced: everything exported (and still stored once, by content).
    let (_, carried, exported) = night("n4", "#{ incremental: false }");
    assert_eq!(carried, 0);
    assert!(exported >= n3);
    rt.block_on(sim.shutdown());
}

/// `job.backup` with `keep_local` (a migration imports next): each stored file is read back and
/// checked right after its store, while the exports go on (a `verify` step each, not after the
/// last store), and `job.artifacts()` hands back every archive, from the local files.
#[test]
fn keep_local_verifies_each_store_as_it_goes() {
    let rt = ferry::cli::runtime().unwrap();
    let sim = rt.block_on(emulator::start(vec![emulator::spec(
        "dev",
        3,
        Seed::Generated(24),
    )]));
    sim.set_faults(Faults {
        latency_ms: 20,
        ..Default::default()
    });
    let dir = support::tempdir();
    let cfg = nightly_config(&sim, dir.path());
    let lines = run(
        &rt,
        &cfg,
        r#"
let dev = oic::instance("dev");
let list = dev.integrations().filter(|i| i.status != "INPROGRESS" && !i.locked && i.project_type != "PREBUILT");
let job = vault::open("nightly").new_job("k1");
let r = job.backup(dev, list, #{ incremental: false, keep_local: true, concurrency: 2 });
let arts = job.artifacts();
print(`${r.stored} ${arts.len()} ${arts.filter(|a| a.kind == "integration").len()} ${list.len()} ${job.status}`);
"#,
    );
    let w: Vec<&str> = lines.last().unwrap().split_whitespace().collect();
    assert_eq!(w[0], w[1], "every stored artifact handed back: {lines:?}");
    assert_eq!(w[2], w[3], "every integration: {lines:?}");
    assert_eq!(w[4], "complete");
    let db = rusqlite::Connection::open(dir.path().join(".ferry/ledger.db")).unwrap();
    let q = |sql: &str| -> (i64, String) {
        db.query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
    };
    let (stores, last_store) = q("select count(*), max(ended) from steps where stage = 'store'");
    let (verifies, first_verify) =
        q("select count(*), min(started) from steps where stage = 'verify'");
    let (ok, _) = q("select count(*), '' from steps where stage = 'verify' and status = 'ok'");
    assert_eq!(verifies, stores, "one verify step per store");
    assert_eq!(ok, verifies);
    assert!(
        first_verify < last_store,
        "the first verify ({first_verify}) waited for the last store ({last_store})"
    );
    rt.block_on(sim.shutdown());
}
