//! The chaos suite: the migration recipe (`scripts/migrate.rhai`: export, store in a backup job,
//! import, activate) under an unlucky day, then resumed with `--resume last`:
//!
//! * the ferry process killed (SIGKILL, SIGINT, SIGTERM) at 30 points across export, store,
//!   import, activation and schedules, each chosen from the emulator's request log as it is written (the
//!   emulator's request hook sends the signal, so a point is exact and nothing polls);
//! * the emulator answering 429/500/503 storms;
//! * archive downloads dropped mid-body, and trickling (one byte a second: the stall timeout);
//! * the SFTP server (a separate sshd the test starts, never the shared one) killed mid-store.
//!
//! After each: no partial file under a final name in the vault, no job marked complete that is
//! not, the resumed run completes, the target holds exactly the selected set (dev's archives,
//! active where they were active on dev) and each artifact was imported once (the emulator's
//! request log). Schedules (the recipe carries them with `schedules: "keep"`): after a stop
//! in their export, create, replace or start and the resume, each of dev's schedules is on prod
//! with dev's definition and state, written once and started once (the request log), and listed
//! in the complete job.

use crate::support::ledger as ledger_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferry::sim::{Faults, LogEntry, Seed};
use ledger_support::*;
use regex::Regex;
use serde_json::Value;

const IMPORT_PATH: &str = r"/integrations/archive$";

/// How the ferry process is stopped.
#[derive(Clone, Copy, Debug)]
enum Sig {
    Kill,
    Int,
    Term,
}

impl Sig {
    fn number(self) -> i32 {
        match self {
            Sig::Kill => libc::SIGKILL,
            Sig::Int => libc::SIGINT,
            Sig::Term => libc::SIGTERM,
        }
    }
    /// The exit code ferry ends with (`None`: killed by the signal).
    fn code(self) -> Option<i32> {
        match self {
            Sig::Kill => None,
            Sig::Int => Some(130),
            Sig::Term => Some(143),
        }
    }
}

/// A point of the migration: right after the `n`-th request of `instance` whose method and
/// path match is handled (before its answer leaves); `n` 0 is the last artifact's.
#[derive(Clone, Debug)]
struct Point {
    label: &'static str,
    instance: &'static str,
    method: &'static str,
    path: &'static str,
    n: usize,
}

fn point(
    label: &'static str,
    instance: &'static str,
    method: &'static str,
    path: &'static str,
    n: usize,
) -> Point {
    Point {
        label,
        instance,
        method,
        path,
        n,
    }
}

/// The ferry command for the working folder of `env`.
fn command(env: &Env, args: &[&str], extra: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ferry"));
    c.current_dir(env.path())
        .args(args)
        .env_remove("FERRY_CONFIG")
        .env_remove("FERRY_PATH")
        .env_remove("FERRY_LEDGER")
        .env("NO_COLOR", "1");
    for (k, v) in extra {
        c.env(k, v);
    }
    c
}

/// Waits for a child, at most `limit` (then kills it and fails).
fn wait(child: Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut child = child;
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(limit) {
        Ok(st) => st.expect("wait for ferry"),
        Err(_) => {
            // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("{what}: ferry did not end within {limit:?}");
        }
    }
}

/// Starts the migration and stops it with `sig` exactly when `p` is reached. Returns whether
/// how it ended.
fn run_until(env: &Env, recipe: &str, p: &Point, sig: Sig, last: usize) -> Ending {
    let method = Regex::new(&format!("^({})$", p.method)).unwrap();
    let path = Regex::new(p.path).unwrap();
    let child = command(env, &["run", recipe], &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ferry");
    let pid = child.id() as i32;
    let seen = Arc::new(AtomicUsize::new(0));
    let fired = Arc::new(AtomicBool::new(false));
    let (instance, n) = (p.instance, if p.n == 0 { last } else { p.n });
    {
        let (seen, fired) = (seen.clone(), fired.clone());
        env.sim.on_request(move |e: &LogEntry| {
            if e.instance.as_deref() == Some(instance)
                && method.is_match(&e.method)
                && path.is_match(&e.path)
                && !e.injected
                && seen.fetch_add(1, Ordering::SeqCst) + 1 == n
                && !fired.swap(true, Ordering::SeqCst)
            {
                // SAFETY: kill(2) on the pid of the ferry child this test started.
                unsafe { libc::kill(pid, sig.number()) };
            }
        });
    }
    let st = wait(child, Duration::from_secs(120), p.label);
    env.sim.clear_request_hooks();
    let reached = fired.load(Ordering::SeqCst);
    if !reached {
        return Ending::NotReached;
    }
    match sig.code() {
        None => assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&st),
            Some(libc::SIGKILL),
            "{p:?}"
        ),
        // A graceful stop lets the effect in flight finish: when it was the last one, the run
        // is complete (and says so with 0).
        Some(_) if st.code() == Some(0) => return Ending::Completed,
        Some(code) => assert_eq!(st.code(), Some(code), "{p:?} {sig:?}"),
    }
    Ending::Resumable
}

/// How a run stopped at a point ended.
#[derive(Debug, PartialEq)]
enum Ending {
    /// The run ended before the point.
    NotReached,
    /// Stopped there, to be resumed.
    Resumable,
    /// A graceful stop came during the last effect: the run completed.
    Completed,
}

/// What dev's migration must leave: id → (status on dev, content digest of dev's archive).
fn wanted(env: &Env) -> BTreeMap<String, (String, String)> {
    let dev = env.rt.block_on(list_integrations(&env.instance("dev")));
    let selected = expected_selection(&dev);
    let dev_state = env.state("dev");
    selected
        .into_iter()
        .map(|(id, status)| {
            let sha = dev_state[&id].1.clone();
            (id, (status, sha))
        })
        .collect()
}

/// Every regular file under `dir` (none when it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    if !dir.exists() {
        return vec![];
    }
    support_files(dir)
}

fn is_temp(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') && n.contains(".tmp-"))
}

/// The vault after a stop: every archive under a final name is whole (one of dev's archives),
/// and no job says `complete` unless it holds the whole selection.
fn check_vault_after_stop(
    env: &Env,
    vault: &Path,
    want: &BTreeMap<String, (String, String)>,
    what: &str,
) {
    check_files(vault, want, what);
    check_jobs(env, vault, want, what);
}

thread_local! {
    /// Whole archives other than dev's that this test's vault may hold (prod's previous
    /// archives, saved in the run's rollback job).
    static ALSO_WHOLE: std::cell::RefCell<BTreeSet<String>> = Default::default();
}

/// Every archive under a final name in the vault is whole (one of dev's archives, or one this
/// test set in [`ALSO_WHOLE`]).
fn check_files(vault: &Path, want: &BTreeMap<String, (String, String)>, what: &str) {
    let also = ALSO_WHOLE.with(|a| a.borrow().clone());
    let shas: BTreeSet<&str> = want
        .values()
        .map(|(_, s)| s.as_str())
        .chain(also.iter().map(String::as_str))
        .collect();
    for f in files(vault) {
        // A job's `.journal` holds its manifest entries (JSON, named after the files).
        let journal = f.components().any(|c| c.as_os_str() == ".journal");
        if journal || is_temp(&f) || f.extension().is_none_or(|x| x != "iar") {
            continue;
        }
        // By content: each export of dev's archive has other bytes (export time stamps); a
        // truncated file is no zip, and its digest is its plain sha256.
        let sha = content_digest(&std::fs::read(&f).unwrap());
        assert!(
            shas.contains(sha.as_str()),
            "{what}: {} is under its final name but is not a whole archive",
            f.display()
        );
    }
}

/// No job says `complete` unless it holds the whole selection.
fn check_jobs(env: &Env, vault: &Path, want: &BTreeMap<String, (String, String)>, what: &str) {
    for j in jobs(env) {
        if j["status"] == "complete" {
            let m = manifest(vault, j["path"].as_str().unwrap());
            assert_eq!(
                m["entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|e| e["kind"].as_str().is_none_or(|k| k == "integration"))
                    .count(),
                want.len(),
                "{what}: a job marked complete without the whole selection: {j}"
            );
        }
    }
}

/// The backup jobs of the vault (a run that replaces archives also has `…-rollback[-N]` jobs with
/// what it replaced: not the selection, left out here).
fn jobs(env: &Env) -> Vec<Value> {
    let out = command(env, &["vault", "jobs", "--json"], &[])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| !j["name"].as_str().unwrap_or("").contains("-rollback"))
        .cloned()
        .collect()
}

fn manifest(vault: &Path, job: &str) -> Value {
    let p = vault.join(job).join("manifest.json");
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .expect("manifest json")
}

/// Successful import requests on prod so far (injected answers are not imports).
fn imports(env: &Env) -> usize {
    let re = Regex::new(IMPORT_PATH).unwrap();
    env.sim
        .request_log()
        .iter()
        .filter(|e| {
            e.instance.as_deref() == Some("prod")
                && (e.method == "POST" || e.method == "PUT")
                && re.is_match(&e.path)
                && e.status < 300
                && !e.injected
        })
        .count()
}

/// Resumes the stopped run and checks the end state: the run and its job complete, prod holds
/// exactly the selection (dev's archives, activation kept), each imported once.
fn resume_and_check(
    env: &Env,
    recipe: &str,
    vault: &Path,
    want: &BTreeMap<String, (String, String)>,
    what: &str,
    extra: &[(&str, &str)],
) {
    let out = command(env, &["run", recipe, "--resume", "last", "--json"], extra)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: the resumed run failed: {}",
        text(&out.stderr)
    );
    let report = json_out(&out);
    assert!(report["resumes"].is_string(), "{what}: {report}");
    check_end_state(env, vault, want, what);
}

/// The end state of a completed migration: prod holds exactly the selection (dev's archives,
/// activation kept), each imported once, one complete job holding it, no temporary file left.
fn check_end_state(env: &Env, vault: &Path, want: &BTreeMap<String, (String, String)>, what: &str) {
    let state = env.state("prod");
    assert_eq!(
        state.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: prod holds exactly the selection"
    );
    for (id, (status, sha)) in &state {
        let (dev_status, dev_sha) = &want[id];
        let st = if dev_status == "ACTIVATED" {
            "ACTIVATED"
        } else {
            "CONFIGURED"
        };
        assert_eq!(status, st, "{what}: {id}");
        assert_eq!(sha, dev_sha, "{what}: the archive of {id}");
    }
    assert_eq!(
        imports(env),
        want.len(),
        "{what}: each artifact imported once"
    );
    let list = jobs(env);
    assert_eq!(list.len(), 1, "{what}: one job, continued: {list:?}");
    assert_eq!(list[0]["status"], "complete", "{what}: {list:?}");
    let m = manifest(vault, list[0]["path"].as_str().unwrap());
    assert_eq!(m["status"], "complete", "{what}");
    let mut stored: Vec<String> = m["entries"]
        .as_array()
        .unwrap()
        .iter()
        // Schedules travel in the job beside the archives; the selection is the archives.
        .filter(|e| e["kind"].as_str().is_none_or(|k| k == "integration"))
        .map(|e| {
            format!(
                "{}|{}",
                e["code"].as_str().unwrap(),
                e["version"].as_str().unwrap()
            )
        })
        .collect();
    stored.sort();
    assert_eq!(
        stored,
        want.keys().cloned().collect::<Vec<_>>(),
        "{what}: the job's entries"
    );
    // Every stored file is whole, no temporary file is left in the vault or ferry's temp folder.
    check_vault_after_stop(env, vault, want, what);
    let left: Vec<PathBuf> = files(vault).into_iter().filter(|f| is_temp(f)).collect();
    assert!(
        left.is_empty(),
        "{what}: temporary files left in the vault: {left:?}"
    );
    let tmp = files(&env.path().join(".ferry/tmp"));
    assert!(tmp.is_empty(), "{what}: temporary files left: {tmp:?}");
}

/// One kill point: a fresh emulator and folder, the run stopped there, the checks, the resume.
fn kill_and_resume(p: &Point, sig: Sig) {
    let env = Env::start(Seed::TargetConnections);
    stop_and_resume(&env, p, sig);
}

/// The run stopped at `p` with `sig` in `env`, the checks, the resume.
fn stop_and_resume(env: &Env, p: &Point, sig: Sig) {
    let recipe = env.recipe("migrate.rhai", MIGRATE);
    let vault = env.path().join("vault");
    let want = wanted(env);
    let what = format!("{} #{} ({sig:?})", p.label, p.n);
    eprintln!("chaos: {what}");
    let stopped = run_until(env, &recipe, p, sig, want.len());
    assert_ne!(
        stopped,
        Ending::NotReached,
        "{what}: the run ended before that point"
    );
    check_vault_after_stop(env, &vault, &want, &what);
    if !matches!(sig, Sig::Kill) {
        let tmp = files(&env.path().join(".ferry/tmp"));
        assert!(
            tmp.is_empty(),
            "{what}: a graceful stop left temporary files: {tmp:?}"
        );
    }
    if stopped == Ending::Completed {
        eprintln!("chaos: {what}: the run completed its last effect and ended");
        check_end_state(env, &vault, &want, &what);
    } else {
        resume_and_check(env, &recipe, &vault, &want, &what, &[]);
    }
}

/// Runs each point with the next signal of the three, in turn.
fn kill_points(points: &[Point], first: usize) -> usize {
    let sigs = [Sig::Kill, Sig::Int, Sig::Term];
    for (i, p) in points.iter().enumerate() {
        kill_and_resume(p, sigs[(first + i) % 3]);
    }
    points.len()
}

/// Export and store: downloads from dev, each archive stored in the job as it arrives; the
/// last export is the store of the last archives; prod's first read comes after the job is
/// verified.
#[test]
fn killed_during_export_and_store() {
    let t = Instant::now();
    let n = kill_points(
        &[
            point("list (select)", "dev", "GET", r"/integrations$", 1),
            point("export", "dev", "GET", r"/archive$", 1),
            point("export", "dev", "GET", r"/archive$", 2),
            point("export", "dev", "GET", r"/archive$", 3),
            point("export", "dev", "GET", r"/archive$", 4),
            point("store (last export)", "dev", "GET", r"/archive$", 0),
            point("after the backup", "prod", "GET", r".*", 1),
        ],
        0,
    );
    eprintln!("chaos: export/store: {n} points in {:?}", t.elapsed());
}

/// Import: the creates on prod (each handled, its answer not yet read by ferry).
#[test]
fn killed_during_import() {
    let t = Instant::now();
    let n = kill_points(
        &[
            point("import", "prod", "POST|PUT", IMPORT_PATH, 1),
            point("import", "prod", "POST|PUT", IMPORT_PATH, 2),
            point("import", "prod", "POST|PUT", IMPORT_PATH, 3),
            point("import", "prod", "POST|PUT", IMPORT_PATH, 4),
            point("import", "prod", "POST|PUT", IMPORT_PATH, 5),
            point("import", "prod", "POST|PUT", IMPORT_PATH, 6),
            point("import (last)", "prod", "POST|PUT", IMPORT_PATH, 0),
        ],
        1,
    );
    eprintln!("chaos: import: {n} points in {:?}", t.elapsed());
}

/// Activation: the activations (a POST with a PATCH override on the integration) and the
/// status polls of asynchronous activations.
#[test]
fn killed_during_activation() {
    let t = Instant::now();
    let n = kill_points(
        &[
            point("activate", "prod", "POST", r"/integrations/[^/]+$", 1),
            point("activate", "prod", "POST", r"/integrations/[^/]+$", 2),
            point("activate", "prod", "POST", r"/integrations/[^/]+$", 3),
            point("activate", "prod", "POST", r"/integrations/[^/]+$", 4),
            point("activate", "prod", "POST", r"/integrations/[^/]+$", 5),
            point("activation status", "prod", "GET", r"/activationStatus$", 1),
            point("activation status", "prod", "GET", r"/activationStatus$", 2),
        ],
        2,
    );
    eprintln!("chaos: activation: {n} points in {:?}", t.elapsed());
}

/// A schedule's path (`…/integrations/{id}/schedule`).
const SCHEDULE_PATH: &str = r"/integrations/[^/]+/schedule$";

/// The schedules of an instance, read over its REST API: integration id → the definition and
/// state (the fields a migration carries; timestamps and authors differ by nature).
fn schedules(env: &Env, name: &str) -> BTreeMap<String, Value> {
    let i = env.instance(name);
    env.rt.block_on(async {
        let tok = token(&i).await;
        let mut out = BTreeMap::new();
        for it in list_integrations(&i).await {
            let id = it["id"].as_str().expect("id").to_string();
            let path = format!("/integrations/{}/schedule", id.replace('|', "%7C"));
            let r = api_get(&i, &tok, &path).await;
            match r.status().as_u16() {
                // Not a scheduled integration, or none defined.
                412 => continue,
                200 => {}
                s => panic!("{name}: schedule of {id}: HTTP {s}"),
            }
            let v: Value = r.json().await.expect("schedule json");
            let keep = [
                "name",
                "frequency",
                "icalExpression",
                "startDate",
                "endDate",
                "scheduleTZ",
                "state",
            ];
            let picked: serde_json::Map<String, Value> = keep
                .iter()
                .filter_map(|k| v.get(*k).map(|x| (k.to_string(), x.clone())))
                .collect();
            out.insert(id, Value::Object(picked));
        }
        out
    })
}

/// Successful (not injected) requests on prod whose method and path match, per integration id
/// (`CODE|VERSION`, read from the path).
fn prod_writes(env: &Env, method: &str, path: &str) -> BTreeMap<String, usize> {
    let (method, path) = (
        Regex::new(&format!("^({method})$")).unwrap(),
        Regex::new(path).unwrap(),
    );
    let id = Regex::new(r"/integrations/([^/]+)/").unwrap();
    let mut out = BTreeMap::new();
    for e in env.sim.request_log() {
        if e.instance.as_deref() == Some("prod")
            && method.is_match(&e.method)
            && path.is_match(&e.path)
            && e.status < 300
            && !e.injected
        {
            let i = id.captures(&e.path).expect("an integration path")[1]
                .replace("%7C", "|")
                .replace("%7c", "|");
            *out.entry(i).or_insert(0) += 1;
        }
    }
    out
}

/// Prod's schedules are dev's (definition and state), none written twice, each dev runs started
/// once, and each is listed in the complete job.
fn check_schedules(env: &Env, vault: &Path, dev: &BTreeMap<String, Value>, what: &str) {
    assert!(!dev.is_empty(), "dev has scheduled integrations");
    assert_eq!(
        &schedules(env, "prod"),
        dev,
        "{what}: prod's schedules are dev's (definition and state)"
    );
    // The import brings the archive's definition (stopped); the put replaces it once, or not
    // at all when a stop came between the import and the put (the resume finds it the same).
    let written = prod_writes(env, "POST|PUT", SCHEDULE_PATH);
    assert!(
        written.keys().all(|k| dev.contains_key(k)) && written.values().all(|n| *n == 1),
        "{what}: each schedule written at most once: {written:?}"
    );
    let started = prod_writes(env, "POST", r"/schedule/(start|resume)$");
    let want_started: BTreeMap<String, usize> = dev
        .iter()
        .filter(|(_, s)| s["state"] == "ACTIVE")
        .map(|(k, _)| (k.clone(), 1))
        .collect();
    assert!(!want_started.is_empty(), "dev runs a schedule");
    assert_eq!(started, want_started, "{what}: each schedule started once");
    let list = jobs(env);
    let m = manifest(vault, list[0]["path"].as_str().unwrap());
    let mut listed: Vec<String> = m["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "schedule")
        .map(|e| {
            format!(
                "{}|{}",
                e["code"].as_str().unwrap(),
                e["version"].as_str().unwrap()
            )
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        dev.keys().cloned().collect::<Vec<_>>(),
        "{what}: the job lists each schedule"
    );
}

/// Schedules: a stop while dev's schedule is exported, while prod's is read before the put (the
/// import brought it stopped: the read finds it, so its definition is replaced with one PUT),
/// while it is replaced, while it is started and while its state settles; the resumed run
/// writes and starts each once. (prod's GETs of the schedule: the put's check, whose state the
/// start goes by, then the poll after the start.)
#[test]
fn killed_during_schedules() {
    let t = Instant::now();
    let points = [
        point("export schedule", "dev", "GET", SCHEDULE_PATH, 1),
        point("read before the put", "prod", "GET", SCHEDULE_PATH, 1),
        point("replace schedule", "prod", "PUT", SCHEDULE_PATH, 1),
        point("start schedule", "prod", "POST", r"/schedule/start$", 1),
        point("state after start", "prod", "GET", SCHEDULE_PATH, 2),
    ];
    let sigs = [Sig::Kill, Sig::Int, Sig::Term];
    for (i, p) in points.iter().enumerate() {
        let sig = sigs[i % 3];
        let env = Env::start(Seed::TargetConnections);
        let dev = schedules(&env, "dev");
        stop_and_resume(&env, p, sig);
        let what = format!("{} #{} ({sig:?})", p.label, p.n);
        check_schedules(&env, &env.path().join("vault"), &dev, &what);
    }
    eprintln!(
        "chaos: schedules: {} points in {:?}",
        points.len(),
        t.elapsed()
    );
}

/// Schedules replaced: prod already runs an older archive of the scheduled integration, its
/// schedule started. The migration stops that schedule, replaces the archive, activates it, puts
/// dev's schedule and starts it. A stop while the old schedule is being stopped, while the
/// archive is replaced, and while the new schedule is started: the resumed run replaces the
/// archive once and starts the schedule once, as on dev.
#[test]
fn killed_during_schedule_replace() {
    use super::cutover::{post_archive, previous_version};
    let t = Instant::now();
    let pay = "HR_PAYROLL_EXPORT|01.00.0000";
    let points = [
        point(
            "stop the old schedule",
            "prod",
            "POST",
            r"/schedule/stop$",
            1,
        ),
        point(
            "replace the scheduled archive",
            "prod",
            "PUT",
            IMPORT_PATH,
            1,
        ),
        point(
            "start after the replace",
            "prod",
            "POST",
            r"/schedule/start$",
            1,
        ),
    ];
    let sigs = [Sig::Term, Sig::Kill, Sig::Int];
    for (i, p) in points.iter().enumerate() {
        let sig = sigs[i % 3];
        let env = Env::start(Seed::TargetConnections);
        post_archive(&env, pay, previous_version(&env, pay));
        env.set_status("prod", pay, "ACTIVATED");
        let start = format!("/integrations/{}/schedule/start", pay.replace('|', "%7C"));
        let code = env.call("prod", reqwest::Method::POST, &start, None);
        assert!(code < 300, "start prod's schedule: HTTP {code}");
        assert_eq!(schedules(&env, "prod")[pay]["state"], "ACTIVE");
        // prod's archive goes whole into the run's rollback job.
        let previous = env.state("prod")[pay].1.clone();
        ALSO_WHOLE.with(|a| a.borrow_mut().insert(previous));
        let (prod_before, sched_before) = (env.state("prod"), schedules(&env, "prod"));
        // Count from here: the run's imports, writes and starts only.
        env.sim.clear_request_log();
        let dev = schedules(&env, "dev");
        stop_and_resume(&env, p, sig);
        let what = format!("{} #{} ({sig:?})", p.label, p.n);
        check_schedules(&env, &env.path().join("vault"), &dev, &what);
        // The stopped and resumed run rolls back as one: prod's archive, its state and its
        // started schedule come back (from the rollback jobs of both attempts).
        let out = command(&env, &["rollback", "last"], &[]).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{what}: rollback: {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert_eq!(
            env.state("prod"),
            prod_before,
            "{what}: prod as before the run"
        );
        assert_eq!(
            schedules(&env, "prod"),
            sched_before,
            "{what}: prod's schedule as before the run"
        );
    }
    eprintln!(
        "chaos: schedule replace: {} points in {:?}",
        points.len(),
        t.elapsed()
    );
}

/// 429/500/503 storms on every instance and the identity domain: the run completes, each
/// artifact imported once; nothing needs a resume.
#[test]
fn storms_of_429_and_5xx() {
    let t = Instant::now();
    let env = Env::start(Seed::TargetConnections);
    let recipe = env.recipe("migrate.rhai", MIGRATE);
    let vault = env.path().join("vault");
    let want = wanted(&env);
    env.sim.set_faults(Faults {
        rate_429: 0.15,
        retry_after_secs: Some(0),
        rate_500: 0.1,
        rate_503: 0.1,
        ..Faults::default()
    });
    let out = command(&env, &["run", &recipe, "--json"], &[])
        .output()
        .unwrap();
    let injected = env.sim.request_log().iter().filter(|e| e.injected).count();
    assert!(injected >= 10, "a storm: {injected} injected answers");
    env.sim.set_faults(Faults::default());
    if out.status.code() != Some(0) {
        // What failed after its retries is finished by a resume (no fault then).
        check_vault_after_stop(&env, &vault, &want, "storm");
        resume_and_check(&env, &recipe, &vault, &want, "storm (resumed)", &[]);
    } else {
        let state = env.state("prod");
        assert_eq!(
            state.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>()
        );
        assert_eq!(
            imports(&env),
            want.len(),
            "storm: each artifact imported once"
        );
        let list = jobs(&env);
        assert_eq!(list[0]["status"], "complete", "{list:?}");
    }
    eprintln!(
        "chaos: storm: {injected} injected answers, {:?}",
        t.elapsed()
    );
}

/// Downloads cut mid-body, then downloads trickling one byte a second: the run cannot complete
/// its backup (the job is not complete, nothing is imported from an unverified backup...), and
/// the resume without the fault completes it.
#[test]
fn dropped_and_trickled_downloads() {
    let t = Instant::now();
    for (what, faults) in [
        (
            "dropped downloads",
            Faults {
                drop_download_after: Some(700),
                ..Faults::default()
            },
        ),
        (
            "trickled downloads",
            Faults {
                trickle_download_after: Some(700),
                ..Faults::default()
            },
        ),
    ] {
        let env = Env::start(Seed::TargetConnections);
        let recipe = env.recipe("migrate.rhai", MIGRATE);
        let vault = env.path().join("vault");
        let want = wanted(&env);
        env.sim.set_faults(faults);
        // A download stalls after 1 s without 1 KiB and gives up after 4 s (instance settings).
        let cfg = env.path().join("ferry.toml");
        let toml = std::fs::read_to_string(&cfg).unwrap().replace(
            "timeout_secs = 30\n",
            "timeout_secs = 30\ndownload_stall_secs = 1\ndownload_deadline_secs = 4\n",
        );
        std::fs::write(&cfg, toml).unwrap();
        let child = command(&env, &["run", &recipe], &[])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let st = wait(child, Duration::from_secs(150), what);
        assert_ne!(st.code(), Some(0), "{what}: the run cannot succeed");
        check_vault_after_stop(&env, &vault, &want, what);
        let list = jobs(&env);
        assert!(
            list.iter().all(|j| j["status"] != "complete"),
            "{what}: {list:?}"
        );
        env.sim.set_faults(Faults::default());
        resume_and_check(&env, &recipe, &vault, &want, what, &[]);
    }
    eprintln!("chaos: downloads: 2 runs in {:?}", t.elapsed());
}

/// A separate sshd for this test (the shared one on TEST_SFTP_PORT is never touched): the same
/// keys, user and chroot, on a port of its own.
struct Sshd {
    child: Option<Child>,
}

impl Sshd {
    /// Starts sshd on `port` and returns once it listens (read from its log, not by polling).
    fn start(dir: &Path, port: u16) -> Sshd {
        use std::io::BufRead;
        let v = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
        let keys = PathBuf::from(v("TEST_SFTP_KEY"))
            .parent()
            .unwrap()
            .to_path_buf();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {k}/host_ed25519\nPidFile none\n\
                 AuthorizedKeysFile {k}/authorized_keys_%u\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin no\nAllowUsers {u}\n\
                 StrictModes yes\nSubsystem sftp internal-sftp\nMatch User {u}\n    ChrootDirectory {c}\n\
                 \x20   ForceCommand internal-sftp\n    AllowTcpForwarding no\n",
                k = keys.display(),
                u = v("TEST_SFTP_USER"),
                c = v("TEST_SFTP_CHROOT"),
            ),
        )
        .unwrap();
        let mut child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sshd");
        let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            let n = err.read_line(&mut line).expect("read sshd's log");
            assert!(n > 0, "sshd ended before listening");
            if line.contains("Server listening on") {
                break;
            }
        }
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while err.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        Sshd { child: Some(child) }
    }

    /// Kills sshd and every session process it forked (SIGKILL): uploads in flight die with it.
    fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let root = child.id() as i32;
        // Stopped first, then every process it forked, until no new one appears: a stopped
        // process forks no more, and its children keep it as parent (a connection being opened
        // at the moment of the kill would otherwise escape, forked after the scan or reparented
        // to init once its parent died, and the run would store through it).
        let mut tree = vec![root];
        // SAFETY: kill(2) on sshd (started by this test) and the processes it forked.
        unsafe { libc::kill(root, libc::SIGSTOP) };
        loop {
            let new: Vec<i32> = children_of(&tree)
                .into_iter()
                .filter(|c| !tree.contains(c))
                .collect();
            if new.is_empty() {
                break;
            }
            for &pid in &new {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGSTOP) };
            }
            tree.extend(new);
        }
        for pid in tree {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = child.wait();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The processes whose parent is one of `parents` (from /proc).
fn children_of(parents: &[i32]) -> Vec<i32> {
    let mut out = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|s| s.parse::<i32>().ok());
        if ppid.is_some_and(|p| parents.contains(&p)) {
            out.push(pid);
        }
    }
    out
}

/// A free port on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The SFTP server is killed while the run stores its archives: the store fails, the job is
/// not complete and nothing under a final name is partial; with the server back, the resumed
/// run completes the same job.
#[test]
fn sftp_server_killed_mid_store() {
    if std::env::var_os("TEST_SFTP_CHROOT").is_none() {
        assert!(
            std::env::var_os("FERRY_ALLOW_SKIP").is_some(),
            "TEST_SFTP_* is not set: start the test services (`. /srv/ocitest/env`) or set FERRY_ALLOW_SKIP=1"
        );
        eprintln!("SKIP sftp_server_killed_mid_store: TEST_SFTP_* not set");
        return;
    }
    let t = Instant::now();
    let env = Env::start(Seed::TargetConnections);
    let recipe = env.recipe("migrate.rhai", MIGRATE);
    let want = wanted(&env);
    let port = free_port();
    let mut sshd = Sshd::start(env.path(), port);
    let user = std::env::var("TEST_SFTP_USER").unwrap();
    let dir = std::env::var("TEST_SFTP_DIR").unwrap();
    let root = format!(
        "{dir}/chaos-{:012x}",
        rand::random::<u64>() & 0xffff_ffff_ffff
    );
    let on_disk = PathBuf::from(std::env::var("TEST_SFTP_CHROOT").unwrap()).join(&root);
    let host_key = std::fs::read_to_string(
        PathBuf::from(std::env::var("TEST_SFTP_KEY").unwrap())
            .parent()
            .unwrap()
            .join("host_ed25519.pub"),
    )
    .unwrap();
    let host_key: Vec<&str> = host_key.split_whitespace().take(2).collect();
    let kh = env.path().join("known_hosts");
    std::fs::write(&kh, format!("[127.0.0.1]:{port} {}\n", host_key.join(" "))).unwrap();
    let cfg = env.path().join("ferry.toml");
    let toml = std::fs::read_to_string(&cfg).unwrap();
    let head = toml.split("[vaults.backups]").next().unwrap().to_string();
    std::fs::write(
        &cfg,
        format!(
            "{head}[vaults.backups]\nurl = \"sftp://{user}@127.0.0.1:{port}/{root}\"\nidentity_file = \"{}\"\nknown_hosts = \"{}\"\ntimeout_secs = 5\n",
            std::env::var("TEST_SFTP_KEY").unwrap(),
            kh.display()
        ),
    )
    .unwrap();

    // Kill the server when the third archive arrives from dev (the first ones are being
    // stored). The exports after it are held in the emulator until the server is dead: the
    // store overlaps the exports, and without the hold a fast machine stored everything in the
    // moment between the third export and the kill (the run then rightly succeeded).
    let child = command(&env, &["run", &recipe], &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let tx = std::sync::Mutex::new(Some(tx));
    let seen = AtomicUsize::new(0);
    let killed = std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    let hold = killed.clone();
    env.sim.on_request(move |e: &LogEntry| {
        if e.instance.as_deref() != Some("dev") || !e.path.ends_with("/archive") {
            return;
        }
        let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 3
            && let Some(tx) = tx.lock().unwrap().take()
        {
            let _ = tx.send(());
        } else if n > 3 {
            let (m, cv) = &*hold;
            let g = m.lock().unwrap();
            let _g = cv
                .wait_timeout_while(g, Duration::from_secs(30), |dead| !*dead)
                .unwrap();
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the third export");
    sshd.kill();
    {
        let (m, cv) = &*killed;
        *m.lock().unwrap() = true;
        cv.notify_all();
    }
    let st = wait(child, Duration::from_secs(120), "sftp");
    env.sim.clear_request_hooks();
    assert_ne!(
        st.code(),
        Some(0),
        "the run cannot store without its server"
    );
    check_files(&on_disk, &want, "sftp killed");

    // The server comes back; the resumed run completes the same job.
    let _sshd = Sshd::start(env.path(), port);
    check_jobs(&env, &on_disk, &want, "sftp killed");
    resume_and_check(&env, &recipe, &on_disk, &want, "sftp resumed", &[]);
    let _ = std::fs::remove_dir_all(&on_disk);
    eprintln!("chaos: sftp: 2 runs in {:?}", t.elapsed());
}
