//! Adaptive concurrency against the emulator over HTTP: with no `concurrency` given, ferry's
//! per-instance limiter grows past the old fixed bound when nothing pushes back, backs off when
//! the instance answers 429 beyond its (unknown) concurrency cap, keeps a given `concurrency` as a
//! hard cap, re-sends writes answered 409 for running in parallel (imports and, with no
//! `activation_concurrency` given, schedule writes), and holds back after a
//! `Retry-After`. Everything is read from the emulator's request log once the run has ended (no
//! sleeps in the test; the emulator's latency only makes requests overlap).

use crate::support::emulator::{World, client_for, retry, spec};

use ferry::sim::{Faults, LogEntry, Seed, SimConfig};

fn world(n: usize) -> World {
    World::start(
        SimConfig {
            instances: vec![
                spec("dev", 2, Seed::Generated(n)),
                spec("prod", 2, Seed::Generated(0)),
            ],
            seed: 11,
            ..Default::default()
        },
        retry(20, 20, 200, 120),
    )
}

impl World {
    /// The log entries of archive exports on dev.
    fn exports(&self) -> Vec<LogEntry> {
        self.sim()
            .request_log()
            .into_iter()
            .filter(|e| e.instance.as_deref() == Some("dev") && e.path.ends_with("/archive"))
            .collect()
    }
}

/// The most requests of `log` in flight at once (from start times and durations, ms).
fn max_overlap(log: &[LogEntry]) -> usize {
    let mut ev: Vec<(u64, i32)> = vec![];
    for e in log {
        ev.push((e.at_ms, 1));
        ev.push((e.at_ms + e.duration_ms.max(1), -1));
    }
    // at the same millisecond, ends before starts
    ev.sort();
    let (mut n, mut max) = (0i32, 0i32);
    for (_, d) in ev {
        n += d;
        max = max.max(n);
    }
    max as usize
}

const EXPORT: &str = r#"
let dev = oic::instance("dev");
let wanted = dev.integrations(#{ latest: true }).filter(|i| i.status != "INPROGRESS" && !i.locked && i.project_type != "PREBUILT");
let arts = dev.export_archives(wanted, OPTS).filter(|a| a.kind == "integration");
print(`exported ${arts.len()} of ${wanted.len()}`);
"#;

fn exported(lines: &[String]) -> (usize, usize) {
    let l = lines
        .iter()
        .find(|l| l.starts_with("exported "))
        .unwrap_or_else(|| panic!("no count in {lines:?}"));
    let w: Vec<&str> = l.split_whitespace().collect();
    (w[1].parse().unwrap(), w[3].parse().unwrap())
}

#[test]
fn grows_past_the_old_fixed_bound_without_429s() {
    let w = world(150);
    w.sim().set_faults(Faults {
        latency_ms: 100,
        ..Default::default()
    });
    let (r, lines) = w.run(&EXPORT.replace("OPTS", "#{}"));
    assert_eq!(r.code, 0, "{lines:?} {:?}", r.error);
    let (got, wanted) = exported(&lines);
    assert_eq!(got, wanted);
    assert!(wanted >= 100, "{wanted}");
    let log = w.exports();
    assert!(log.iter().all(|e| e.status == 200));
    let peak = max_overlap(&log);
    // the old fixed bound was 4; slow start doubles the window every round trip
    assert!(peak >= 16, "at most {peak} exports in flight");
}

#[test]
fn backs_off_under_429s_at_an_unknown_cap() {
    let w = world(150);
    w.sim().set_faults(Faults {
        latency_ms: 30,
        max_concurrent: Some(4),
        instances: Some(vec!["dev".into()]),
        ..Default::default()
    });
    let (r, lines) = w.run(&EXPORT.replace("OPTS", "#{}"));
    assert_eq!(r.code, 0, "{lines:?} {:?}", r.error);
    let (got, wanted) = exported(&lines);
    assert_eq!(got, wanted, "every export succeeds in the end");
    let log = w.exports();
    let n429 = log.iter().filter(|e| e.status == 429).count();
    let ok = log.iter().filter(|e| e.status == 200).count();
    assert_eq!(ok, wanted);
    // a fixed fan-out of 64 would have most requests refused; the limiter settles at the cap
    assert!(
        n429 * 10 < log.len(),
        "{n429} of {} export requests answered 429",
        log.len()
    );
    assert!(
        n429 >= 1,
        "the cap was never reached: the limiter did not grow"
    );
}

#[test]
fn a_given_concurrency_is_a_hard_cap() {
    let w = world(60);
    w.sim().set_faults(Faults {
        latency_ms: 30,
        ..Default::default()
    });
    let (r, lines) = w.run(&EXPORT.replace("OPTS", "#{ concurrency: 3 }"));
    assert_eq!(r.code, 0, "{lines:?} {:?}", r.error);
    let (got, wanted) = exported(&lines);
    assert_eq!(got, wanted);
    let log = w.exports();
    assert!(log.len() >= 20, "{}", log.len());
    let peak = max_overlap(&log);
    assert!(peak <= 3, "{peak} exports in flight with concurrency 3");
    assert!(peak >= 2, "{peak}");
}

#[test]
fn parallel_imports_refused_with_409_are_sent_again() {
    let w = world(30);
    w.sim().set_faults(Faults {
        latency_ms: 20,
        conflict_on_parallel_writes: true,
        instances: Some(vec!["prod".into()]),
        ..Default::default()
    });
    let recipe = r#"
let dev = oic::instance("dev");
let prod = oic::instance("prod");
let wanted = dev.integrations(#{ latest: true }).filter(|i| i.status != "INPROGRESS" && !i.locked && i.project_type != "PREBUILT");
let arts = dev.export_archives(wanted, #{});
let res = prod.import_archives(arts, #{ activate: false });
let failed = res.filter(|r| r.action == "failed");
print(`imported ${res.len() - failed.len()} failed ${failed.len()}`);
for f in failed { print(`${f}`); }
"#;
    let (r, lines) = w.run(recipe);
    assert_eq!(r.code, 0, "{lines:?} {:?}", r.error);
    assert!(lines.iter().any(|l| l.ends_with(" failed 0")), "{lines:?}");
    let log = w.sim().request_log();
    let conflicts = log
        .iter()
        .filter(|e| e.instance.as_deref() == Some("prod") && e.status == 409)
        .count();
    // the write window starts at 2, so the first parallel imports meet 409s and are sent again
    assert!(conflicts >= 1, "no parallel write was tried");
}

/// The schedules of an instance, read over REST: `CODE|VERSION` → (recurrence, state).
fn schedules_of(w: &World, name: &str) -> Vec<(String, ferry::oic::Schedule)> {
    let c = client_for(&w.instance(name));
    w.rt.block_on(async {
        let mut out = vec![];
        for i in c.list_integrations(None).await.expect("list") {
            let id = i.integration_id().expect("id");
            if let Some(s) = c.get_schedule(&id).await.expect("schedule") {
                out.push((id.to_string(), s));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    })
}

#[test]
fn parallel_schedule_writes_refused_with_409_are_retried_and_all_land() {
    let w = world(60);
    // only prod's schedule writes refuse to overlap: every 409 below is a schedule write's
    w.sim().set_faults(Faults {
        latency_ms: 20,
        conflict_on_parallel_writes: true,
        instances: Some(vec!["prod".into()]),
        path_regex: Some("/schedule".into()),
        ..Default::default()
    });
    // no `activation_concurrency`: the schedules fan out under the adaptive write window
    let recipe = r#"
let dev = oic::instance("dev");
let prod = oic::instance("prod");
let wanted = dev.integrations(#{ latest: true }).filter(|i| i.status != "INPROGRESS" && !i.locked && i.project_type != "PREBUILT");
let arts = dev.export_archives(wanted, #{});
let res = prod.import_archives(arts, #{});
let scheds = res.filter(|r| r.kind == "schedule");
let failed = res.filter(|r| r.action == "failed");
print(`schedules ${scheds.len()} failed ${failed.len()}`);
for f in failed { print(`${f}`); }
"#;
    let (r, lines) = w.run(recipe);
    assert_eq!(r.code, 0, "{lines:?} {:?}", r.error);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("schedules ") && l.ends_with(" failed 0")),
        "{lines:?}"
    );
    let writes: Vec<LogEntry> = w
        .sim()
        .request_log()
        .into_iter()
        .filter(|e| {
            e.instance.as_deref() == Some("prod")
                && e.method != "GET"
                && e.path.contains("/schedule")
        })
        .collect();
    let conflicts = writes.iter().filter(|e| e.status == 409).count();
    assert!(
        conflicts >= 1,
        "no schedule write met a parallel one: {} writes",
        writes.len()
    );
    // sent in parallel (a request answered 409 overlapped another one by construction)
    assert!(max_overlap(&writes) >= 2, "schedule writes one at a time");
    // every schedule landed as it is on dev: the recurrence and the state
    let (dev, prod) = (schedules_of(&w, "dev"), schedules_of(&w, "prod"));
    let wanted: Vec<&(String, ferry::oic::Schedule)> = dev
        .iter()
        .filter(|(id, _)| prod.iter().any(|(p, _)| p == id))
        .collect();
    assert!(wanted.len() >= 4, "{} schedules on both", wanted.len());
    let migrated = lines
        .iter()
        .find_map(|l| l.strip_prefix("schedules "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse::<usize>().ok())
        .expect("count");
    assert_eq!(prod.len(), migrated, "{prod:?}");
    for (id, d) in &dev {
        let Some((_, p)) = prod.iter().find(|(i, _)| i == id) else {
            continue;
        };
        assert!(p.definition.same_recurrence(&d.definition), "{id}");
        assert_eq!(p.state, d.state, "{id}");
    }
}

#[test]
fn retry_after_holds_back_every_request_of_the_instance() {
    let w = world(60);
    w.sim().set_faults(Faults {
        latency_ms: 20,
        retry_after_secs: Some(1),
        script: vec![0, 0, 0, 0, 0, 429],
        instances: Some(vec!["dev".into()]),
        path_regex: Some("/archive$".into()),
        ..Default::default()
    });
    let (r, lines) = w.run(&EXPORT.replace("OPTS", "#{ concurrency: 3 }"));
    assert_eq!(r.code, 0, "{lines:?} {:?}", r.error);
    let log = w.exports();
    let refused = log.iter().find(|e| e.status == 429).expect("a 429");
    let answered = refused.at_ms + refused.duration_ms;
    // requests sent after the client saw the 429 (a few ms of slack) wait out the Retry-After,
    // not only the refused one: none starts within the second
    let early: Vec<u64> = log
        .iter()
        .filter(|e| e.at_ms > answered + 10)
        .map(|e| e.at_ms - answered)
        .filter(|d| *d < 950)
        .collect();
    assert!(early.is_empty(), "requests {early:?} ms after the 429");
    let after = log.iter().filter(|e| e.at_ms >= answered + 950).count();
    assert!(after >= 3, "{after}");
}

#[test]
fn list_pages_after_the_first_are_asked_for_in_parallel() {
    // 650 integrations: 7 pages of 100; `totalResults` of the first says how many follow
    let w = world(650);
    w.sim().set_faults(Faults {
        latency_ms: 100,
        ..Default::default()
    });
    let (r, lines) =
        w.run("let l = oic::instance(\"dev\").integrations(); print(`listed ${l.len()}`);");
    assert_eq!(r.code, 0, "{lines:?} {:?}", r.error);
    assert!(lines.iter().any(|l| l == "listed 650"), "{lines:?}");
    let pages: Vec<LogEntry> = w
        .sim()
        .request_log()
        .into_iter()
        .filter(|e| {
            e.instance.as_deref() == Some("dev")
                && e.method == "GET"
                && e.path.ends_with("/integrations")
        })
        .collect();
    // each page once, the first alone, the six others together
    assert_eq!(pages.len(), 7, "{pages:?}");
    assert_eq!(max_overlap(&pages[..1]), 1);
    let peak = max_overlap(&pages);
    assert!(peak >= 4, "at most {peak} pages in flight");
}

#[test]
fn activations_follow_each_import_and_its_connections_not_the_last_import() {
    // prod has no connections: each import creates its connections as drafts, and an activation
    // before they are configured is refused (412). Imports, connections and activations overlap.
    let w = world(80);
    w.sim().set_faults(Faults {
        latency_ms: 20,
        ..Default::default()
    });
    let recipe = r#"
let dev = oic::instance("dev");
let prod = oic::instance("prod");
let wanted = dev.integrations(#{ latest: true }).filter(|i| i.status != "INPROGRESS" && !i.locked && i.project_type != "PREBUILT");
let conns = #{};
for c in dev.connections() { conns[c.id] = #{ properties: #{ connectionUrl: `https://${c.id}.example.com` }, security: #{ username: "svc", password: "secret" } }; }
let arts = dev.export_archives(wanted, #{ concurrency: 4 });
let res = prod.import_archives(arts, #{ overwrite: true, activate: "keep", concurrency: 4, activation_concurrency: 4, connections: conns });
let errs = res.filter(|r| r.error != ());
print(`errors ${errs.len()} activated ${res.filter(|r| r.activated).len()}`);
for e in errs { print(`${e}`); }
"#;
    let (r, lines) = w.run(recipe);
    assert_eq!(r.code, 0, "{lines:?} {:?}", r.error);
    let l = lines.iter().find(|l| l.starts_with("errors ")).unwrap();
    let w2: Vec<&str> = l.split_whitespace().collect();
    assert_eq!(w2[1], "0", "{lines:?}");
    assert!(w2[3].parse::<usize>().unwrap() >= 5, "{l}");
    let log: Vec<LogEntry> = w
        .sim()
        .request_log()
        .into_iter()
        .filter(|e| e.instance.as_deref() == Some("prod"))
        .collect();
    assert!(log.iter().all(|e| e.status < 400), "a refusal on prod");
    let imports: Vec<&LogEntry> = log
        .iter()
        .filter(|e| e.method == "POST" && e.path.ends_with("/integrations/archive"))
        .collect();
    let activations: Vec<&LogEntry> = log
        .iter()
        .filter(|e| {
            e.method == "POST"
                && e.path.contains("/integrations/")
                && e.path.contains("%7C")
                && !e.path.contains("/schedule")
        })
        .collect();
    let last_import = imports.iter().map(|e| e.at_ms).max().unwrap();
    let first_activation = activations.iter().map(|e| e.at_ms).min().unwrap();
    assert!(
        first_activation < last_import,
        "the first activation ({first_activation} ms) waited for the last import ({last_import} ms)"
    );
    // imports, connections and activations together never exceed the larger concurrency
    let writes: Vec<LogEntry> = log.iter().filter(|e| e.method != "GET").cloned().collect();
    let peak = max_overlap(&writes);
    assert!(peak <= 4, "{peak} writes in flight on prod");
}
