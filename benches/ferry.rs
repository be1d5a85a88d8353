//! Every benchmark of issue 14 in one command, printed as one table:
//!
//! ```text
//! . /srv/ocitest/env            # the test sshd (SFTP rows); without it those rows are skipped
//! cargo bench --bench ferry     # release build; about 6 minutes on 2 cores
//! ```
//!
//! The emulator (`ferry sim`) and ferry (`ferry run RECIPE`) run as two separate processes of
//! the release binary; each row reports ferry's wall time against the floor, the requests the
//! emulator answered and the 429s among them, ferry's CPU seconds and peak RSS (`wait4`
//! rusage of the child) and the emulator's CPU seconds over the same interval. The SFTP rows run
//! ferry's vault code in a child process of this binary (`BENCH_ROLE=...`), next to OpenSSH's
//! `sftp` on the same files; the small-file row goes through a loopback TCP proxy that adds 20 ms
//! of round-trip time.
//!
//! Environment: `BENCH_N` (integrations, default 1000), `BENCH_BIG_N` (memory row, default
//! 10000), `BENCH_MIB` (big archive, default 1024), `BENCH_FILES` (small archives, default 1000),
//! `BENCH_ONLY` (comma-separated row keys: export16, export4, migrate, rss, rss_big, sim,
//! sftp_big, sftp_small), `BENCH_FERRY` (another ferry binary), `BENCH_LOG` (a directory: the
//! emulator's request log of each latency row, for a timeline of requests in flight; the first
//! entry, `GET <token_url>?bench_spawn`, marks ferry's spawn, and `last_run.json` holds the last
//! run's wall and CPU seconds, so spawn + wall is ferry's exit on the log's clock).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// measuring a child process

struct Measured {
    wall: f64,
    cpu: f64,
    rss_mib: f64,
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` to its end; wall time, user + system CPU and peak RSS from `wait4`.
fn measure(cmd: &mut Command) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let (o, e) = (dir.path().join("out"), dir.path().join("err"));
    cmd.stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .stdin(Stdio::null());
    let t = Instant::now();
    let child = cmd.spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value; wait4 fills it for our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let wall = t.elapsed().as_secs_f64();
    std::mem::forget(child);
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Measured {
        wall,
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        rss_mib: ru.ru_maxrss as f64 / 1024.0,
        ok: r == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        stdout: std::fs::read_to_string(&o).unwrap_or_default(),
        stderr: std::fs::read_to_string(&e).unwrap_or_default(),
    }
}

/// CPU seconds (user + system) a process used so far.
fn proc_cpu(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (tick(11) + tick(12)) / hz.max(1.0)
}

fn env_num(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

// ---------------------------------------------------------------------------------------------
// the emulator in its own process

struct Sim {
    child: std::process::Child,
    info: Value,
    http: reqwest::Client,
    rt: Arc<tokio::runtime::Runtime>,
}

impl Sim {
    fn start(ferry: &Path, rt: &Arc<tokio::runtime::Runtime>, dev: usize) -> Sim {
        let mut child = Command::new(ferry)
            .args(["sim", "--gen", "2", "--seed", "1", "-q"])
            .args([
                "--instance",
                &format!("dev:{dev}"),
                "--instance",
                "prod:empty",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ferry sim");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let info: Value = serde_json::from_str(&line).expect("sim info line");
        Sim {
            child,
            info,
            http: reqwest::Client::new(),
            rt: rt.clone(),
        }
    }
    fn inst(&self, name: &str) -> &Value {
        self.info["instances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .unwrap()
    }
    fn base(&self) -> String {
        self.inst("dev")["base_url"].as_str().unwrap().to_string()
    }
    fn cpu(&self) -> f64 {
        proc_cpu(self.child.id())
    }
    fn faults(&self, f: Value) {
        let r = self
            .rt
            .block_on(
                self.http
                    .post(format!("{}/__sim/faults", self.base()))
                    .json(&f)
                    .send(),
            )
            .unwrap();
        assert!(r.status().is_success(), "faults: {}", r.status());
    }
    fn clear_log(&self) {
        let _ = self.rt.block_on(
            self.http
                .delete(format!("{}/__sim/log", self.base()))
                .send(),
        );
    }
    fn log(&self) -> Vec<Value> {
        self.log_as("")
    }
    /// The request log; with `BENCH_LOG=DIR`, also written to `DIR/<row>.jsonl` (one request a
    /// line: `at_ms`, `duration_ms`, method, path, status) for a timeline of the row.
    fn log_as(&self, row: &str) -> Vec<Value> {
        let text = self
            .rt
            .block_on(async {
                self.http
                    .get(format!("{}/__sim/log", self.base()))
                    .send()
                    .await?
                    .text()
                    .await
            })
            .unwrap();
        if let Ok(dir) = std::env::var("BENCH_LOG")
            && !row.is_empty()
        {
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(Path::new(&dir).join(format!("{row}.jsonl")), &text);
        }
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
    fn basic(&self, inst: &str) -> (String, String) {
        let i = self.inst(inst);
        (
            i["username"].as_str().unwrap().to_string(),
            i["password"].as_str().unwrap().to_string(),
        )
    }
    /// Every integration id of an instance (Basic auth, pages of 100).
    fn ids(&self, inst: &str) -> Vec<String> {
        let (u, p) = self.basic(inst);
        let base = self.inst(inst)["base_url"].as_str().unwrap().to_string();
        let mut out = vec![];
        let mut offset = 0;
        loop {
            let v: Value = self
                .rt
                .block_on(async {
                    self.http
                        .get(format!(
                            "{base}/ic/api/integration/v1/integrations?offset={offset}&limit=100"
                        ))
                        .basic_auth(&u, Some(&p))
                        .send()
                        .await?
                        .json()
                        .await
                })
                .unwrap();
            let items = v["items"].as_array().cloned().unwrap_or_default();
            offset += items.len();
            out.extend(
                items
                    .iter()
                    .filter_map(|i| i["id"].as_str().map(str::to_string)),
            );
            if v["hasMore"] != true || items.is_empty() {
                return out;
            }
        }
    }
    /// Every archive of `inst` made `bytes` long (latency-bound rows measure requests, not disk).
    fn small_archives(&self, inst: &str, bytes: u64) {
        let ids = self.ids(inst);
        let url = format!("{}/__sim/archive_size", self.base());
        self.rt.block_on(async {
            use futures::StreamExt;
            futures::stream::iter(ids)
                .map(|id| {
                    let b = json!({"instance": inst, "id": id, "bytes": bytes});
                    let req = self.http.post(&url).json(&b).send();
                    async move {
                        let _ = req.await;
                    }
                })
                .buffer_unordered(16)
                .collect::<Vec<_>>()
                .await
        });
    }
    /// A ferry.toml for this emulator, a file vault with age encryption under `dir`.
    fn config(&self, dir: &Path) -> PathBuf {
        let id = age::x25519::Identity::generate();
        let key = dir.join("vault.key");
        {
            use age::secrecy::ExposeSecret;
            std::fs::write(&key, format!("{}\n", id.to_string().expose_secret())).unwrap();
        }
        let mut t = String::new();
        for name in ["dev", "prod"] {
            let i = self.inst(name);
            t.push_str(&format!(
                "[instances.{name}]\nbase_url = {}\ngeneration = 2\ntoken_url = {}\nclient_id = {}\nclient_secret = \"env:BENCH_SECRET_{}\"\nscope = {}\ntimeout_secs = 120\n\n",
                i["base_url"],
                i["token_url"],
                i["client_id"],
                name.to_uppercase(),
                i["scope"]
            ));
        }
        std::fs::create_dir_all(dir.join("vault")).unwrap();
        t.push_str(&format!(
            "[vaults.backups]\nurl = \"file://{}\"\nrecipients = [\"{}\"]\nidentity = \"file:{}\"\n\n[run]\ndir = \"{}\"\n",
            dir.join("vault").display(),
            id.to_public(),
            key.display(),
            dir.join(".ferry").display()
        ));
        let p = dir.join("ferry.toml");
        std::fs::write(&p, t).unwrap();
        p
    }
    /// Runs a recipe with `ferry run` in its own process; returns the measurement and the
    /// emulator's CPU seconds over it.
    fn run(&self, ferry: &Path, dir: &Path, recipe: &str) -> (Measured, f64) {
        let cfg = self.config(dir);
        let rp = dir.join("bench.rhai");
        std::fs::write(&rp, recipe).unwrap();
        let mut cmd = Command::new(ferry);
        cmd.args(["run", "-q", "--config"])
            .arg(&cfg)
            .arg(&rp)
            .current_dir(dir);
        for name in ["dev", "prod"] {
            cmd.env(
                format!("BENCH_SECRET_{}", name.to_uppercase()),
                self.inst(name)["client_secret"].as_str().unwrap(),
            );
        }
        self.clear_log();
        // a marker on the emulator's clock just before the spawn (an identity request, which
        // no row counts): the request log's timeline then starts where ferry's process does
        let _ = self.rt.block_on(
            self.http
                .get(format!(
                    "{}?bench_spawn",
                    self.inst("dev")["token_url"].as_str().unwrap()
                ))
                .send(),
        );
        let c0 = self.cpu();
        let m = measure(&mut cmd);
        if let Ok(dir) = std::env::var("BENCH_LOG") {
            let _ = std::fs::create_dir_all(&dir);
            let meta = json!({"wall_s": m.wall, "cpu_s": m.cpu, "rss_mib": m.rss_mib});
            let _ = std::fs::write(Path::new(&dir).join("last_run.json"), meta.to_string());
        }
        (m, self.cpu() - c0)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// the table

struct Row {
    figure: String,
    target: String,
    measured: String,
    ratio: Option<f64>,
    met: Option<bool>,
    requests: String,
    n429: String,
    cpu: String,
    rss: String,
    sim_cpu: String,
}

impl Row {
    fn new(figure: impl Into<String>, target: impl Into<String>) -> Row {
        Row {
            figure: figure.into(),
            target: target.into(),
            measured: "-".into(),
            ratio: None,
            met: None,
            requests: "-".into(),
            n429: "-".into(),
            cpu: "-".into(),
            rss: "-".into(),
            sim_cpu: "-".into(),
        }
    }
    fn print(&self) {
        let ratio = self.ratio.map(|r| format!("{r:.2}")).unwrap_or("-".into());
        let met = match self.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            self.figure,
            self.target,
            self.measured,
            ratio,
            met,
            self.requests,
            self.n429,
            self.cpu,
            self.rss,
            self.sim_cpu
        );
    }
}

fn header() {
    println!(
        "| figure | target | measured | ratio | met | requests | 429s | ferry CPU s | ferry peak RSS MiB | emulator CPU s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
}

const LATENCY_MS: u64 = 50;

const EXPORT: &str = r#"
let dev = oic::instance("dev");
let list = dev.integrations().filter(|i| i.status != "INPROGRESS");
let arts = dev.export_archives(list);
print(`${list.len()} ${arts.filter(|a| a.kind != "schedule").len()}`);
"#;

fn migrate_recipe(c: u64) -> String {
    format!(
        r#"
let dev = oic::instance("dev");
let prod = oic::instance("prod");
let list = dev.integrations().filter(|i| i.status != "INPROGRESS");
// the target's connections configured as a deployment would (else activations are refused, 412)
let conns = #{{}};
for c in dev.connections() {{ conns[c.id] = #{{ properties: #{{ connectionUrl: `https://${{c.id}}.example.com` }}, security: #{{ username: "svc", password: "secret" }} }}; }}
let job = vault::open("backups").new_job("bench");
// exported and stored as scripts/migrate.rhai does: each archive stored as soon as exported
job.backup(dev, list, #{{ incremental: false, keep_local: true, concurrency: {c} }});
let verified = job.artifacts();
job.finish();
let res = prod.import_archives(verified, #{{ overwrite: true, activate: "keep", async_activation: false, concurrency: {c}, activation_concurrency: {c}, connections: conns }});
let errs = res.filter(|r| r.error != ());
if errs.len() > 0 {{ print(`first error: ${{errs[0].error}}`); }}
print(`activation errors ${{errs.filter(|r| r.action != "failed").len()}}`);
print(`${{list.len()}} ${{res.filter(|r| r.action != "failed" && r.kind != "schedule").len()}}`);
"#
    )
}

const STORE: &str = r#"
let dev = oic::instance("dev");
let list = dev.integrations().filter(|i| i.status != "INPROGRESS");
let arts = dev.export_archives(list);
let job = vault::open("backups").new_job("rss");
job.store(arts);
job.finish();
print(`${list.len()} ${arts.filter(|a| a.kind != "schedule").len()}`);
"#;

/// "listed exported" from the recipe's last line.
fn counts(m: &Measured) -> (usize, usize) {
    let l = m.stdout.lines().chain(m.stderr.lines()).rev().find(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        w.len() == 2 && w.iter().all(|x| x.parse::<usize>().is_ok())
    });
    l.map(|l| {
        let w: Vec<usize> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
        (w[0], w[1])
    })
    .unwrap_or((0, 0))
}

/// Requests the emulator answered for `insts` (injected faults apart) and the 429s.
fn requests(log: &[Value], insts: &[&str]) -> (usize, usize) {
    let mine = |e: &&Value| insts.iter().any(|i| e["instance"] == *i);
    let ok = log
        .iter()
        .filter(mine)
        .filter(|e| e["injected"] != true)
        .count();
    let n429 = log
        .iter()
        .filter(mine)
        .filter(|e| e["status"] == 429)
        .count();
    (ok, n429)
}

fn fill(row: &mut Row, m: &Measured, sim_cpu: f64) {
    row.cpu = format!("{:.1}", m.cpu);
    row.rss = format!("{:.0}", m.rss_mib);
    row.sim_cpu = format!("{sim_cpu:.1}");
}

fn failed(row: &mut Row, m: &Measured) {
    row.measured = "FAILED".into();
    let tail: Vec<&str> = m.stderr.lines().rev().take(12).collect();
    let out: Vec<&str> = m.stdout.lines().rev().take(6).collect();
    eprintln!(
        "  {} failed: {} // stdout: {}",
        row.figure,
        tail.join(" / "),
        out.join(" / ")
    );
}

/// Exports every integration with default settings against an emulator cap unknown to ferry.
fn export_row(ferry: &Path, rt: &Arc<tokio::runtime::Runtime>, n: usize, cap: u64) -> Row {
    let mut row = Row::new(
        format!("export {n}, default settings, emulator cap {cap}, {LATENCY_MS} ms"),
        if cap == 4 {
            "≤ 1.3× floor, < 2% 429".to_string()
        } else {
            "≤ 1.3× floor".to_string()
        },
    );
    let sim = Sim::start(ferry, rt, n);
    sim.small_archives("dev", 20_000);
    sim.faults(json!({"latency_ms": LATENCY_MS, "max_concurrent": cap, "instances": ["dev"]}));
    let dir = tempfile::tempdir().unwrap();
    let (m, sim_cpu) = sim.run(ferry, dir.path(), EXPORT);
    fill(&mut row, &m, sim_cpu);
    let (listed, exported) = counts(&m);
    if !m.ok || exported != listed || listed == 0 {
        failed(&mut row, &m);
        return row;
    }
    let (ok, n429) = requests(&sim.log_as(&format!("export{cap}")), &["dev"]);
    let floor = ok as f64 * LATENCY_MS as f64 / 1000.0 / cap as f64;
    let ratio = m.wall / floor;
    let share = n429 as f64 / (ok + n429) as f64;
    row.measured = format!("{:.2} s (floor {floor:.2} s)", m.wall);
    row.ratio = Some(ratio);
    row.met = Some(ratio <= 1.3 && (cap != 4 || share < 0.02));
    row.requests = ok.to_string();
    row.n429 = format!("{n429} ({:.1}%)", share * 100.0);
    row
}

/// Export, store + verify (file vault, age), import, activate; concurrency given.
fn migrate_row(ferry: &Path, rt: &Arc<tokio::runtime::Runtime>, n: usize) -> Row {
    let c = 16;
    let mut row = Row::new(
        format!(
            "full migration {n} (export, store, verify, import, activate), concurrency {c}, cap {c}, {LATENCY_MS} ms"
        ),
        "≤ 1.2× floor",
    );
    let sim = Sim::start(ferry, rt, n);
    sim.small_archives("dev", 20_000);
    sim.faults(
        json!({"latency_ms": LATENCY_MS, "max_concurrent": c, "instances": ["dev", "prod"]}),
    );
    let dir = tempfile::tempdir().unwrap();
    let (m, sim_cpu) = sim.run(ferry, dir.path(), &migrate_recipe(c));
    fill(&mut row, &m, sim_cpu);
    let (listed, moved) = counts(&m);
    // the recipe configures the target's connections, so every import and activation succeeds
    if !m.ok || moved != listed || listed == 0 {
        failed(&mut row, &m);
        return row;
    }
    let (ok, n429) = requests(&sim.log_as("migrate"), &["dev", "prod"]);
    let floor = ok as f64 * LATENCY_MS as f64 / 1000.0 / c as f64;
    if let Some(l) = m.stdout.lines().find(|l| l.starts_with("first error")) {
        eprintln!("    {l}");
    }
    let act_err = m
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("activation errors "))
        .unwrap_or("?")
        .trim()
        .to_string();
    row.measured = format!(
        "{:.2} s (floor {floor:.2} s; {act_err} activation errors)",
        m.wall
    );
    row.ratio = Some(m.wall / floor);
    row.met = Some(m.wall / floor <= 1.2);
    row.requests = ok.to_string();
    row.n429 = n429.to_string();
    row
}

/// Peak RSS of an export + store of `n` integrations (no latency).
fn rss_row(ferry: &Path, rt: &Arc<tokio::runtime::Runtime>, n: usize) -> Row {
    let mut row = Row::new(
        format!("peak RSS, export + store {n} integrations"),
        "≤ 64 MiB",
    );
    let sim = Sim::start(ferry, rt, n);
    sim.small_archives("dev", 20_000);
    let dir = tempfile::tempdir().unwrap();
    let (m, sim_cpu) = sim.run(ferry, dir.path(), STORE);
    fill(&mut row, &m, sim_cpu);
    let (listed, stored) = counts(&m);
    if !m.ok || stored != listed || listed == 0 {
        failed(&mut row, &m);
        return row;
    }
    let (ok, n429) = requests(&sim.log(), &["dev"]);
    row.measured = format!("{:.0} MiB in {:.1} s", m.rss_mib, m.wall);
    row.ratio = Some(m.rss_mib / 64.0);
    row.met = Some(m.rss_mib <= 64.0);
    row.requests = ok.to_string();
    row.n429 = n429.to_string();
    row
}

/// List requests per second the emulator answers (16 connections, 3 s, Basic auth). The client
/// runs in this process and only reads the bytes of each answer (chunk by chunk, nothing kept); its
/// CPU seconds are shown in the ferry CPU column, so a client-bound figure shows as one.
fn sim_row(ferry: &Path, rt: &Arc<tokio::runtime::Runtime>) -> Row {
    let mut row = Row::new(
        "emulator: list requests/s (GET integrations?limit=100, 16 connections)",
        "≥ 5,000/s",
    );
    let sim = Sim::start(ferry, rt, 500);
    let (u, p) = sim.basic("dev");
    let url = format!(
        "{}/ic/api/integration/v1/integrations?limit=100",
        sim.base()
    );
    let dur = Duration::from_secs(3);
    let c0 = sim.cpu();
    let me0 = proc_cpu(std::process::id());
    let t = Instant::now();
    let n: usize = rt.block_on(async {
        let mut tasks = vec![];
        for _ in 0..16 {
            let (http, url, u, p) = (sim.http.clone(), url.clone(), u.clone(), p.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = 0usize;
                while t.elapsed() < dur {
                    if let Ok(mut r) = http.get(&url).basic_auth(&u, Some(&p)).send().await
                        && r.status().is_success()
                    {
                        let mut whole = true;
                        loop {
                            match r.chunk().await {
                                Ok(Some(_)) => {}
                                Ok(None) => break,
                                Err(_) => {
                                    whole = false;
                                    break;
                                }
                            }
                        }
                        n += usize::from(whole);
                    }
                }
                n
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap_or(0);
        }
        total
    });
    let secs = t.elapsed().as_secs_f64();
    let rate = n as f64 / secs;
    row.measured = format!("{rate:.0}/s");
    row.ratio = Some(rate / 5000.0);
    row.met = Some(rate >= 5000.0);
    row.requests = n.to_string();
    let (sim_cpu, client_cpu) = (sim.cpu() - c0, proc_cpu(std::process::id()) - me0);
    row.sim_cpu = format!("{sim_cpu:.1}");
    row.cpu = format!("client {client_cpu:.1}");
    eprintln!(
        "    emulator {:.3} ms CPU a request, client {:.3} ms ({n} requests in {secs:.1} s)",
        sim_cpu * 1000.0 / n.max(1) as f64,
        client_cpu * 1000.0 / n.max(1) as f64
    );
    row
}

// ---------------------------------------------------------------------------------------------
// SFTP

struct Sshd {
    host: String,
    port: u16,
    user: String,
    dir: String,
    key: String,
    known_hosts: String,
}

fn sshd() -> Option<Sshd> {
    let v = |k: &str| std::env::var(k).ok();
    Some(Sshd {
        host: v("TEST_SFTP_HOST")?,
        port: v("TEST_SFTP_PORT")?.parse().ok()?,
        user: v("TEST_SFTP_USER")?,
        dir: v("TEST_SFTP_DIR")?,
        key: v("TEST_SFTP_KEY")?,
        known_hosts: v("TEST_SFTP_KNOWN_HOSTS")?,
    })
}

/// A known_hosts file whose entries for the sshd's port also name `port` (the proxy).
fn known_hosts_for(s: &Sshd, port: u16, dir: &Path) -> String {
    let text = std::fs::read_to_string(&s.known_hosts).unwrap_or_default();
    let from = format!("[{}]:{}", s.host, s.port);
    let to = format!("[{}]:{port}", s.host);
    let p = dir.join("known_hosts");
    std::fs::write(&p, text.replace(&from, &to)).unwrap();
    p.display().to_string()
}

fn write_data(path: &Path, bytes: u64, seed: u64) {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ seed;
    let mut buf = vec![0u8; (bytes as usize).min(1 << 20)];
    let mut left = bytes;
    while left > 0 {
        for chunk in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        let k = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..k]).unwrap();
        left -= k as u64;
    }
    f.flush().unwrap();
}

/// OpenSSH's `sftp -b`; tried again (up to twice) when the server closed the connection before
/// the banner exchange (sshd does at random beyond `MaxStartups` unauthenticated connections,
/// which the other users of the test sshd can reach).
fn openssh(s: &Sshd, port: u16, known_hosts: &str, batch: &Path) -> Measured {
    let mut m = openssh_once(s, port, known_hosts, batch);
    for _ in 0..2 {
        if m.ok || !m.stderr.contains("kex_exchange_identification") {
            break;
        }
        eprintln!("  openssh: {} (trying again)", m.stderr.trim());
        std::thread::sleep(Duration::from_millis(500));
        m = openssh_once(s, port, known_hosts, batch);
    }
    m
}

fn openssh_once(s: &Sshd, port: u16, known_hosts: &str, batch: &Path) -> Measured {
    measure(
        Command::new("sftp")
            .args(["-q", "-P", &port.to_string(), "-i", &s.key])
            .args(["-o", &format!("UserKnownHostsFile={known_hosts}")])
            .args([
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-b",
            ])
            .arg(batch)
            .arg(format!("{}@{}", s.user, s.host)),
    )
}

/// The seconds a role child reports for its store (`stored N in S s`): from connecting to the
/// job finished, without the hashing of the files that stands in for the export (an export
/// hashes each archive as it downloads it); the process's wall time when it reports none.
fn stored_secs(m: &Measured) -> f64 {
    m.stderr
        .lines()
        .filter_map(|l| l.strip_prefix("stored "))
        .filter_map(|l| l.split(" in ").nth(1))
        .filter_map(|l| l.trim_end_matches(" s").parse::<f64>().ok())
        .next_back()
        .unwrap_or(m.wall)
}

/// This binary in a role (a child process that runs ferry's vault code).
fn role(role: &str, envs: &[(&str, String)]) -> Measured {
    let me = std::env::current_exe().unwrap();
    let mut cmd = Command::new(me);
    cmd.env("BENCH_ROLE", role);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    measure(&mut cmd)
}

fn sftp_big_row(s: &Sshd) -> Row {
    let mib = env_num("BENCH_MIB", 1024);
    let mut row = Row::new(
        format!("SFTP store of one {mib} MiB archive (sha256 + age + SFTP) vs OpenSSH `sftp put`"),
        "≥ 0.9× OpenSSH",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.iar");
    write_data(&file, mib << 20, 1);
    let remote = format!("{}/bench-{:08x}", s.dir, rand::random::<u32>());
    let batch = dir.path().join("batch");
    std::fs::write(
        &batch,
        format!(
            "-mkdir {remote}\nput {} {remote}/openssh.bin\nrm {remote}/openssh.bin\n",
            file.display()
        ),
    )
    .unwrap();
    let o = openssh(s, s.port, &s.known_hosts, &batch);
    let m = role(
        "sftp_store",
        &[
            ("BENCH_FILE", file.display().to_string()),
            ("BENCH_REMOTE", remote.clone()),
            ("BENCH_PORT", s.port.to_string()),
            ("BENCH_KNOWN_HOSTS", s.known_hosts.clone()),
        ],
    );
    fill(&mut row, &m, 0.0);
    row.sim_cpu = "-".into();
    if !m.ok || !o.ok {
        eprintln!("  openssh: {}", o.stderr.trim());
        failed(&mut row, &m);
        return row;
    }
    let mib = mib as f64;
    let (f, r) = (mib / stored_secs(&m), mib / o.wall);
    row.measured = format!("{f:.0} MiB/s (OpenSSH {r:.0} MiB/s)");
    row.ratio = Some(f / r);
    row.met = Some(f / r >= 0.9);
    row
}

fn sftp_small_row(s: &Sshd, rt: &Arc<tokio::runtime::Runtime>) -> Row {
    let files = env_num("BENCH_FILES", 1000) as usize;
    let sessions = ferry::vault::SFTP_SESSIONS;
    let mut row = Row::new(
        format!(
            "SFTP store of {files} archives of 50 KiB through a proxy adding 20 ms RTT, vs `sftp -b`"
        ),
        "≤ 1.2× floor",
    );
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..files {
        write_data(&src.join(format!("a{i:05}.iar")), 50 * 1024, i as u64);
    }
    let port = proxy(rt, (s.host.clone(), s.port), Duration::from_millis(10));
    let kh = known_hosts_for(s, port, dir.path());
    let remote = format!("{}/bench-{:08x}", s.dir, rand::random::<u32>());
    let batch = dir.path().join("batch");
    let mut b = format!("-mkdir {remote}\n");
    for i in 0..files {
        b.push_str(&format!(
            "put {} {remote}/o{i:05}.iar\n",
            src.join(format!("a{i:05}.iar")).display()
        ));
    }
    std::fs::write(&batch, b).unwrap();
    let o = openssh(s, port, &kh, &batch);
    let m = role(
        "sftp_many",
        &[
            ("BENCH_DIR", src.display().to_string()),
            ("BENCH_REMOTE", remote.clone()),
            ("BENCH_PORT", port.to_string()),
            ("BENCH_KNOWN_HOSTS", kh.clone()),
        ],
    );
    fill(&mut row, &m, 0.0);
    row.sim_cpu = "-".into();
    if !m.ok || !o.ok {
        eprintln!("  openssh: {}", o.stderr.trim());
        failed(&mut row, &m);
        return row;
    }
    // an upload needs at least open, write, close: 3 round trips
    let floor = 3.0 * 0.020 * files as f64 / sessions as f64;
    let wall = stored_secs(&m);
    row.measured = format!(
        "{wall:.1} s (floor {floor:.1} s = 3 RTT × {files} ÷ {sessions} sessions; `sftp -b` {:.1} s)",
        o.wall
    );
    row.ratio = Some(wall / floor);
    row.met = Some(wall / floor <= 1.2);
    row
}

/// A loopback TCP proxy to `to` that delays every chunk by `one_way` in each direction.
fn proxy(rt: &Arc<tokio::runtime::Runtime>, to: (String, u16), one_way: Duration) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = l.local_addr().unwrap().port();
    async fn pipe(
        mut r: tokio::net::tcp::OwnedReadHalf,
        mut w: tokio::net::tcp::OwnedWriteHalf,
        d: Duration,
    ) {
        let (tx, mut rx) =
            tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
        let writer = tokio::spawn(async move {
            while let Some((at, b)) = rx.recv().await {
                tokio::time::sleep_until(at + d).await;
                if w.write_all(&b).await.is_err() {
                    break;
                }
            }
            let _ = w.shutdown().await;
        });
        let mut buf = vec![0u8; 256 * 1024];
        while let Ok(n) = r.read(&mut buf).await {
            if n == 0
                || tx
                    .send((tokio::time::Instant::now(), buf[..n].to_vec()))
                    .is_err()
            {
                break;
            }
        }
        drop(tx);
        let _ = writer.await;
    }
    rt.spawn(async move {
        while let Ok((c, _)) = l.accept().await {
            let to = to.clone();
            tokio::spawn(async move {
                let Ok(s) = tokio::net::TcpStream::connect((to.0.as_str(), to.1)).await else {
                    return;
                };
                let _ = c.set_nodelay(true);
                let _ = s.set_nodelay(true);
                let (cr, cw) = c.into_split();
                let (sr, sw) = s.into_split();
                tokio::join!(pipe(cr, sw, one_way), pipe(sr, cw, one_way));
            });
        }
    });
    port
}

/// Child roles: ferry's vault code storing files over SFTP (measured by the parent).
fn run_role(role: &str) {
    use ferry::artifact::{Artifact, ArtifactKey, ArtifactKind, hash_file};
    use ferry::vault::{Decryption, Encryption, JobMeta, SftpConfig, SftpStore, Vault};
    let s = sshd().expect("sshd env");
    let v = |k: &str| std::env::var(k).unwrap();
    let files: Vec<PathBuf> = match role {
        "sftp_store" => vec![PathBuf::from(v("BENCH_FILE"))],
        _ => {
            let mut f: Vec<PathBuf> = std::fs::read_dir(v("BENCH_DIR"))
                .unwrap()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            f.sort();
            f
        }
    };
    // the artifacts as an export leaves them (hashed once, when downloaded)
    let arts: Vec<Artifact> = files
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (size, sha) = hash_file(p).unwrap();
            Artifact::from_path(
                ArtifactKey::new(ArtifactKind::Integration, format!("B{i:05}"), "01.00.0000"),
                p.clone(),
                size,
                sha,
                "bench",
            )
        })
        .collect();
    // timed like `sftp`: from connecting to the last file stored (the job finished)
    let t = Instant::now();
    let mut cfg = SftpConfig::new(s.host.clone(), s.user.clone(), v("BENCH_REMOTE"));
    cfg.port = v("BENCH_PORT").parse().unwrap();
    cfg.identity_file = Some(s.key.clone().into());
    cfg.known_hosts = v("BENCH_KNOWN_HOSTS").into();
    let store = Arc::new(SftpStore::connect(cfg).expect("connect"));
    let id = age::x25519::Identity::generate();
    let vault = Vault::with_store(
        store.clone(),
        Encryption::recipients(&[id.to_public().to_string()]).unwrap(),
        Decryption::None,
    );
    let job = vault
        .create_job("bench", chrono::Utc::now().date_naive(), JobMeta::default())
        .expect("job");
    let threads = ferry::vault::SFTP_SESSIONS.min(arts.len()).max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|sc| {
        for _ in 0..threads {
            sc.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(a) = arts.get(i) else { break };
                    job.store(a).expect("store");
                }
            });
        }
    });
    job.finish().expect("finish");
    eprintln!(
        "stored {} in {:.2} s",
        arts.len(),
        t.elapsed().as_secs_f64()
    );
    // the stored job is not kept (1 GiB a run on the test sshd, whose disk the tests share)
    use ferry::vault::Store;
    if let Err(e) = store.remove_tree("OIC_Backups") {
        eprintln!("  cannot remove the stored job: {e}");
    }
}

fn main() {
    if let Ok(r) = std::env::var("BENCH_ROLE") {
        run_role(&r);
        return;
    }
    let ferry = std::env::var("BENCH_FERRY")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_BIN_EXE_ferry")));
    let only: Option<Vec<String>> = std::env::var("BENCH_ONLY")
        .ok()
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let want = |k: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == k));
    let n = env_num("BENCH_N", 1000) as usize;
    let big = env_num("BENCH_BIG_N", 10_000) as usize;
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    );
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!(
        "ferry benchmarks: {} ({cpus} CPUs, load {})",
        ferry.display(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let started = Instant::now();
    let mut rows = vec![];
    let mut step = |key: &str, f: &mut dyn FnMut() -> Row| {
        if want(key) {
            eprintln!("  running {key} ...");
            let r = f();
            eprintln!(
                "    {} ({:.0} s so far)",
                r.measured,
                started.elapsed().as_secs_f64()
            );
            rows.push(r);
        }
    };
    step("export16", &mut || export_row(&ferry, &rt, n, 16));
    step("export4", &mut || export_row(&ferry, &rt, n, 4));
    step("migrate", &mut || migrate_row(&ferry, &rt, n));
    step("rss", &mut || rss_row(&ferry, &rt, n));
    step("rss_big", &mut || rss_row(&ferry, &rt, big));
    step("sim", &mut || sim_row(&ferry, &rt));
    match sshd() {
        Some(s) => {
            step("sftp_big", &mut || sftp_big_row(&s));
            step("sftp_small", &mut || sftp_small_row(&s, &rt));
        }
        None => eprintln!("  SFTP rows skipped: `. /srv/ocitest/env` first (the test sshd)"),
    }
    println!();
    println!(
        "ferry benchmarks, {} on {cpus} CPUs (load average at the start {}), {:.0} s in all",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        load.split_whitespace().next().unwrap_or("?"),
        started.elapsed().as_secs_f64()
    );
    println!();
    header();
    for r in &rows {
        r.print();
    }
}
