//! Resume after SIGKILL: a migration is killed at many different points (chosen from the
//! emulator's request log, not by sleeping), resumed with `--resume last`, and must end in the
//! same target state as an uninterrupted run, with no artifact imported twice.

use crate::support::ledger as ledger_support;

use std::time::{Duration, Instant};

use ferry::ledger::{Ledger, StepStatus};
use ferry::sim::{LogEntry, Seed};
use ledger_support::*;
use regex::Regex;

/// A point of the migration: right after the `n`-th request of `instance` whose method and path
/// match is logged.
struct Point {
    label: &'static str,
    instance: &'static str,
    method: &'static str,
    path: &'static str,
    n: usize,
}

const IMPORT_PATH: &str = r"/integrations/archive$";

fn points() -> Vec<Point> {
    let mut v = vec![];
    for n in [1, 3, 6] {
        v.push(Point {
            label: "export",
            instance: "dev",
            method: "GET",
            path: r"/archive$",
            n,
        });
    }
    for n in [1, 2, 4, 7] {
        v.push(Point {
            label: "import",
            instance: "prod",
            method: "POST|PUT",
            path: IMPORT_PATH,
            n,
        });
    }
    // Activations: POST with a PATCH override on the integration itself.
    for n in [1, 3, 5] {
        v.push(Point {
            label: "activate",
            instance: "prod",
            method: "POST",
            path: r"/integrations/[^/]+$",
            n,
        });
    }
    // An activation status poll (async activations are polled).
    v.push(Point {
        label: "status read",
        instance: "prod",
        method: "GET",
        path: r"/activationStatus$",
        n: 3,
    });
    v
}

fn matches(e: &LogEntry, instance: &str, method: &Regex, path: &Regex) -> bool {
    e.instance.as_deref() == Some(instance)
        && method.is_match(&e.method)
        && path.is_match(&e.path)
        && !e.injected
}

#[test]
fn a_killed_migration_resumes_to_the_same_state_without_double_imports() {
    let mut reached = 0;
    let import_re = Regex::new(IMPORT_PATH).unwrap();
    for p in points() {
        let env = Env::start(Seed::TargetConnections);
        let recipe = env.recipe("migrate.rhai", MIGRATE);
        let dev = env.rt.block_on(list_integrations(&env.instance("dev")));
        let selected = expected_selection(&dev);
        let method = Regex::new(&format!("^({})$", p.method)).unwrap();
        let path = Regex::new(p.path).unwrap();

        // Run, and SIGKILL it right after the chosen request is logged.
        let mut child = env.spawn(&["run", &recipe]);
        let deadline = Instant::now() + Duration::from_secs(60);
        eprintln!("kill point: {} #{}", p.label, p.n);
        let killed = loop {
            // woken by each logged request; the bound only lets the loop see ferry's exit
            let reached_point = env.sim.wait_for_requests(Duration::from_millis(50), |log| {
                log.iter()
                    .filter(|e| matches(e, p.instance, &method, &path))
                    .count()
                    >= p.n
            });
            if reached_point {
                child.kill().expect("SIGKILL ferry");
                child.wait().expect("reap ferry");
                break true;
            }
            if child.try_wait().expect("poll ferry").is_some() {
                break false;
            }
            assert!(Instant::now() < deadline, "{} #{}: timed out", p.label, p.n);
        };
        assert!(
            killed,
            "{} #{}: the run ended before that point",
            p.label, p.n
        );
        reached += 1;

        // Resume to the end.
        let killed_at = env.sim.request_log().len();
        let out = env.ferry(&["run", &recipe, "--resume", "last", "--json"]);
        if out.status.code() != Some(0) {
            for (i, e) in env.sim.request_log().iter().enumerate() {
                if e.instance.as_deref() == Some("prod") {
                    eprintln!(
                        "{}{} {} {} {} {}",
                        if i >= killed_at { "R " } else { "K " },
                        e.at_ms,
                        e.method,
                        e.path,
                        e.status,
                        e.duration_ms
                    );
                }
            }
        }
        assert_eq!(
            out.status.code(),
            Some(0),
            "{} #{}: resume failed: {}",
            p.label,
            p.n,
            text(&out.stderr)
        );
        let report = json_out(&out);
        let db = Ledger::open(&env.path().join(".ferry/ledger.db")).unwrap();
        let runs = db.runs(10).unwrap();
        assert_eq!(runs.len(), 2);
        let first = &runs[1];
        assert!(first.info.outcome.is_none(), "the killed run never ended");
        assert_eq!(report["resumes"], first.info.id.as_str());

        // The same target state as an uninterrupted run: the selection, active where it was
        // active on dev, each with dev's archive.
        let state = env.state("prod");
        assert_eq!(
            state.keys().collect::<Vec<_>>(),
            selected.keys().collect::<Vec<_>>(),
            "{} #{}",
            p.label,
            p.n
        );
        let dev_state = env.state("dev");
        for (id, (status, sha)) in &state {
            let want = if selected[id] == "ACTIVATED" {
                "ACTIVATED"
            } else {
                "CONFIGURED"
            };
            assert_eq!(status, want, "{} #{}: {id}", p.label, p.n);
            assert_eq!(
                sha, &dev_state[id].1,
                "{} #{}: archive of {id}",
                p.label, p.n
            );
        }

        // No artifact imported twice: one successful import request per artifact, over both
        // runs.
        let imports = env
            .sim
            .request_log()
            .iter()
            .filter(|e| {
                e.instance.as_deref() == Some("prod")
                    && (e.method == "POST" || e.method == "PUT")
                    && import_re.is_match(&e.path)
                    && e.status < 300
            })
            .count();
        assert_eq!(
            imports,
            selected.len(),
            "{} #{}: imports over both runs",
            p.label,
            p.n
        );

        // What the killed run finished is skipped by the resumed one, not redone.
        let resumed = db.steps(report["run"]["id"].as_str().unwrap()).unwrap();
        let first_steps = db.steps(&first.info.id).unwrap();
        for s in first_steps
            .iter()
            .filter(|s| s.status == StepStatus::Ok && s.stage == ferry::ledger::Stage::Import)
        {
            let again = resumed
                .iter()
                .find(|r| r.stage == s.stage && r.key() == s.key())
                .expect("the resumed run records the import");
            assert_eq!(again.status, StepStatus::Skipped, "{} #{}", p.label, p.n);
            assert_eq!(
                again.reason.as_deref(),
                Some(format!("done in run {}", first.info.id).as_str())
            );
        }

        // One backup job, reopened and completed by the resumed run.
        let jobs = db.jobs(&first.info.id).unwrap();
        let jobs2 = db.jobs(report["run"]["id"].as_str().unwrap()).unwrap();
        assert_eq!(jobs.len(), 1, "{} #{}", p.label, p.n);
        assert_eq!(jobs2.len(), 1, "{} #{}", p.label, p.n);
        assert_eq!(jobs[0].path, jobs2[0].path, "the same job is continued");
        let job_dir = env.path().join("vault").join(&jobs[0].path);
        assert!(job_dir.join("manifest.json").exists());
        assert!(!job_dir.join(".lock").exists());
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(job_dir.join("manifest.json")).unwrap()).unwrap();
        let archives = manifest["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] != "schedule")
            .count();
        assert_eq!(archives, selected.len());
    }
    assert!(reached >= 10);
}
