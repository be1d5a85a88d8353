//! Backups that never lie (issue 13): a run whose exports fail leaves a `partial` job that the
//! vault commands report as such; a run stopped by Ctrl-C or SIGTERM leaves its job unfinished
//! and `--resume last` completes it. The emulator over HTTP, the real binary.

use crate::support::ledger as ledger_support;

use std::time::Duration;

use ferry::sim::{Faults, Seed};
use ledger_support::*;
use serde_json::Value;

const BACKUP: &str = r#"
let src = oic::instance("dev");
let wanted = src.integrations(#{ latest: true })
    .filter(|i| i.status != "INPROGRESS" && !i.locked && i.project_type != "PREBUILT");
let job = vault::open("backups").new_job("nightly");
job.store(src.export_archives(wanted));
job.finish();
print(`job ${job.path} is ${job.status}`);
"#;

fn jobs(env: &Env) -> Vec<Value> {
    let out = env.ferry(&["vault", "jobs", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn manifest(env: &Env, job: &str) -> Value {
    let p = env.path().join("vault").join(job).join("manifest.json");
    serde_json::from_slice(&std::fs::read(p).expect("manifest")).expect("manifest json")
}

/// Finding 1: two exports answer 500 for good; the job is `partial`, lists them, and
/// `vault jobs`, `verify` and `restore` say so (non-zero unless `--accept-partial`).
/// The archives a manifest lists (a scheduled integration's schedule is listed beside its
/// archive, as kind `schedule`).
fn archives(m: &serde_json::Value) -> usize {
    m["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] != "schedule")
        .count()
}

#[test]
fn failed_exports_make_a_partial_job() {
    let env = Env::start(Seed::TargetConnections);
    let dev = env.rt.block_on(list_integrations(&env.instance("dev")));
    let selected = expected_selection(&dev);
    let victims: Vec<&String> = selected.keys().take(2).collect();
    let re = victims
        .iter()
        .map(|v| regex::escape(&v.replace('|', "%7C")))
        .collect::<Vec<_>>()
        .join("|");
    env.sim.set_faults(Faults {
        rate_500: 1.0,
        path_regex: Some(format!("({re})/archive$")),
        instances: Some(vec!["dev".into()]),
        ..Faults::default()
    });
    let recipe = env.recipe("backup.rhai", BACKUP);
    let out = env.ferry(&["run", &recipe]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("is PARTIAL: 2 selected artifact(s) missing"),
        "{stdout}"
    );
    assert!(stdout.contains("is partial"), "{stdout}");

    let list = jobs(&env);
    assert_eq!(list.len(), 1);
    let job = list[0]["path"].as_str().unwrap().to_string();
    assert_eq!(list[0]["status"], "partial");
    assert_eq!(list[0]["complete"], false);
    assert_eq!(list[0]["missing"], 2);
    let m = manifest(&env, &job);
    assert_eq!(m["status"], "partial");
    assert_eq!(archives(&m), selected.len() - 2);
    let mut missing: Vec<String> = m["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            format!(
                "{}|{}",
                x["code"].as_str().unwrap(),
                x["version"].as_str().unwrap()
            )
        })
        .collect();
    missing.sort();
    assert_eq!(
        missing,
        victims.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    );

    let out = env.ferry(&["vault", "jobs"]);
    assert!(
        text(&out.stdout).contains("PARTIAL (2 missing)"),
        "{}",
        text(&out.stdout)
    );
    let out = env.ferry(&["vault", "verify", &job]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a partial job does not verify as ok"
    );
    assert!(
        text(&out.stdout).contains("is PARTIAL"),
        "{}",
        text(&out.stdout)
    );
    let out = env.ferry(&["vault", "verify", &job, "--accept-partial"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    let out = env.ferry(&["vault", "restore", &job, "--to", "prod"]);
    assert_ne!(out.status.code(), Some(0), "restore refuses a partial job");
    assert!(
        text(&out.stderr).contains("partial"),
        "{}",
        text(&out.stderr)
    );
    assert!(env.state("prod").is_empty(), "nothing imported");
    let out = env.ferry(&["vault", "restore", &job, "--to", "prod", "--accept-partial"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(env.state("prod").len(), selected.len() - 2);

    // The exports work again: resuming the run completes the same job.
    env.sim.set_faults(Faults::default());
    let out = env.ferry(&["run", &recipe, "--resume", "last"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let m = manifest(&env, &job);
    assert_eq!(m["status"], "complete");
    assert_eq!(archives(&m), selected.len());
    assert!(m.get("missing").is_none());
}

fn signal(pid: u32, sig: &str) {
    let st = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
}

/// Findings 2 and 11: Ctrl-C (SIGINT) and SIGTERM during the exports stop the run (130, 143)
/// without finishing the job; `--resume last` completes it with every artifact once.
#[test]
fn a_stopped_run_leaves_its_job_resumable() {
    for (sig, code) in [("-INT", 130), ("-TERM", 143)] {
        let env = Env::start(Seed::Empty);
        env.sim.set_faults(Faults {
            latency_ms: 150,
            path_regex: Some("/archive$".into()),
            ..Faults::default()
        });
        let dev = env.rt.block_on(list_integrations(&env.instance("dev")));
        let selected = expected_selection(&dev);
        let recipe = env.recipe("backup.rhai", BACKUP);
        let mut child = env.spawn(&["run", &recipe]);
        // Woken by the emulator as each request is logged (no polling).
        let seen = env.sim.wait_for_requests(Duration::from_secs(60), |log| {
            log.iter()
                .any(|e| e.path.ends_with("/archive") && e.status == 200)
        });
        assert!(seen, "{sig}: no export seen");
        assert!(child.try_wait().unwrap().is_none(), "{sig}: ended early");
        signal(child.id(), sig);
        let st = child.wait().expect("wait");
        assert_eq!(st.code(), Some(code), "{sig}");
        let list = jobs(&env);
        assert_eq!(list.len(), 1, "{sig}");
        assert_eq!(list[0]["status"], "unfinished", "{sig}: {list:?}");
        let job = list[0]["path"].as_str().unwrap().to_string();
        let tmp = env.path().join(".ferry/tmp");
        let left = support_files(&tmp);
        assert!(left.is_empty(), "{sig}: temp files left: {left:?}");

        env.sim.set_faults(Faults::default());
        let out = env.ferry(&["run", &recipe, "--resume", "last"]);
        assert_eq!(out.status.code(), Some(0), "{sig}: {}", text(&out.stderr));
        let m = manifest(&env, &job);
        assert_eq!(m["status"], "complete", "{sig}");
        assert_eq!(archives(&m), selected.len(), "{sig}");
    }
}

/// Finding 11: what ferry writes (ledger, reports, temporary files, the file vault's jobs) is
/// private: files 0600, folders 0700.
#[test]
fn files_ferry_writes_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::start(Seed::Empty);
    let recipe = env.recipe("backup.rhai", BACKUP);
    let out = env.ferry(&["run", &recipe]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut seen = 0;
    let mut stack = vec![
        env.path().join(".ferry"),
        env.path().join("vault/OIC_Backups"),
    ];
    while let Some(p) = stack.pop() {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        if p.is_dir() {
            assert_eq!(mode, 0o700, "{}", p.display());
            for e in std::fs::read_dir(&p).unwrap().flatten() {
                stack.push(e.path());
            }
        } else {
            assert_eq!(mode, 0o600, "{}", p.display());
            seen += 1;
        }
    }
    assert!(seen >= 5, "ledger, reports and archives checked ({seen})");
}
