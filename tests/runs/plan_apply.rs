//! Plan files against the emulator over HTTP: `ferry plan RECIPE -o plan.json` then
//! `ferry apply plan.json` performs exactly the plan's effects (the emulator's request log shows
//! no other change); a target or an archive changed after the plan, or a plan edited by hand,
//! is refused, naming what changed, and nothing is sent.

use crate::support::ledger as ledger_support;

use std::collections::BTreeMap;

use ferry::ledger::{Ledger, Stage, StepStatus};
use ferry::sim::Seed;
use ledger_support::*;
use serde_json::Value;

/// Export from dev and import into prod (no backup job); activate what is active on dev.
const SYNC: &str = r#"
let dev = oic::instance("dev");
let prod = oic::instance("prod");
let wanted = dev.integrations(#{ latest: true })
    .filter(|i| i.status != "INPROGRESS" && !i.locked && i.project_type != "PREBUILT");
prod.import_archives(dev.export_archives(wanted), #{ overwrite: true, activate: "keep" });
"#;

type Counted = BTreeMap<(String, String, String, String), usize>;

/// (stage, artifact, target, action) → how many, of the plan file's effects.
fn plan_effects(plan: &Value) -> Counted {
    let mut m = Counted::new();
    for e in plan["effects"].as_array().expect("effects") {
        let id = format!(
            "{}|{}",
            e["code"].as_str().unwrap(),
            e["version"].as_str().unwrap()
        );
        let k = (
            e["stage"].as_str().unwrap().to_string(),
            id,
            e["target"].as_str().unwrap().to_string(),
            e["action"].as_str().unwrap().to_string(),
        );
        *m.entry(k).or_default() += 1;
    }
    m
}

/// The same, of the changes a run performed (reads left out; a store without its path).
fn run_effects(db: &Ledger, run: &str) -> Counted {
    let mut m = Counted::new();
    for s in db.steps(run).unwrap() {
        if s.status != StepStatus::Ok || matches!(s.stage, Stage::Export | Stage::Verify) {
            continue;
        }
        let action = if s.stage == Stage::Store {
            "store".to_string()
        } else {
            s.action.clone()
        };
        let k = (
            s.stage.as_str().to_string(),
            s.key().id(),
            s.target.clone(),
            action,
        );
        *m.entry(k).or_default() += 1;
    }
    m
}

/// The requests that change something (not reads, not tokens), as `METHOD path`.
fn changes_sent(env: &Env) -> Vec<String> {
    env.sim
        .request_log()
        .into_iter()
        .filter(|r| r.method != "GET" && !r.path.contains("token"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn read_plan(env: &Env, name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(env.path().join(name)).expect("plan file"))
        .expect("plan JSON")
}

#[test]
fn apply_performs_exactly_the_plan_and_only_once() {
    let env = Env::start(Seed::TargetConnections);
    let migrate = env.recipe("migrate.rhai", MIGRATE);
    let out = env.ferry(&["plan", &migrate, "-o", "plan.json", "--var", "job=planned"]);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
    assert!(env.state("prod").is_empty(), "a plan changes nothing");
    let plan = read_plan(&env, "plan.json");
    assert_eq!(plan["format"], "ferry-plan");
    assert_eq!(plan["version"], 1);
    let planned = plan_effects(&plan);
    let dev = env.rt.block_on(list_integrations(&env.instance("dev")));
    let selected = expected_selection(&dev);
    // Each selected integration: stored, imported new, activated when active on dev; a scheduled
    // one also has its schedule put on prod, and started when it runs on dev (the sample's
    // schedules run where their integration is active).
    for (id, status) in &selected {
        let mine: Vec<_> = planned.keys().filter(|k| k.1 == *id).collect();
        let mut want = if status == "ACTIVATED" { 3 } else { 2 };
        if dev
            .iter()
            .any(|i| i["id"] == id.as_str() && i["scheduleDefinedFlag"] == true)
        {
            want += if status == "ACTIVATED" { 2 } else { 1 };
        }
        assert_eq!(mine.len(), want, "{id}: {mine:?}");
    }
    // Every archive the plan exported has its content digest; every target was absent.
    for a in plan["archives"].as_array().unwrap() {
        assert_eq!(a["digest"].as_str().unwrap().len(), 64, "{a}");
    }
    for t in plan["targets"].as_array().unwrap() {
        assert!(t["status"].is_null(), "{t}");
    }

    env.sim.clear_request_log();
    let out = env.ferry(&["apply", "plan.json", "--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let run = json_out(&out)["run"]["id"].as_str().unwrap().to_string();
    let db = Ledger::open(&env.path().join(".ferry/ledger.db")).unwrap();
    assert_eq!(
        run_effects(&db, &run),
        planned,
        "the run performed exactly the plan"
    );
    // The emulator saw exactly one import per planned import and one activation per planned
    // activation, the schedule writes of the planned schedule steps, and no other change.
    let sent = changes_sent(&env);
    let schedule_step = |k: &(String, String, String, String)| k.3.ends_with(" schedule");
    let imports = planned
        .keys()
        .filter(|k| k.0 == "import" && !schedule_step(k))
        .count();
    let activations = planned
        .keys()
        .filter(|k| k.0 == "activate" && !schedule_step(k))
        .count();
    let (sched, sent): (Vec<&String>, Vec<&String>) =
        sent.iter().partition(|r| r.contains("/schedule"));
    let sched_steps = planned.keys().filter(|k| schedule_step(k)).count();
    assert!(!sched.is_empty() && sched_steps > 0, "{sched:#?}");
    for r in &sched {
        assert!(
            planned
                .keys()
                .any(|k| schedule_step(k) && r.contains(&k.1.replace('|', "%7C"))),
            "a schedule change the plan does not have: {r}"
        );
    }
    let (imp, rest): (Vec<&String>, Vec<&String>) =
        sent.iter().copied().partition(|r| r.ends_with("/archive"));
    assert_eq!(imp.len(), imports, "{sent:#?}");
    assert_eq!(rest.len(), activations, "{sent:#?}");
    for r in &rest {
        assert!(
            selected
                .iter()
                .any(|(id, s)| s == "ACTIVATED" && r.contains(&id.replace('|', "%7C"))),
            "a change the plan does not have: {r}"
        );
    }
    assert_eq!(
        env.state("prod").keys().cloned().collect::<Vec<_>>(),
        selected.keys().cloned().collect::<Vec<_>>()
    );

    // Applying it again: the targets now differ from what the plan assumed.
    env.sim.clear_request_log();
    let out = env.ferry(&["apply", "plan.json"]);
    assert_eq!(out.status.code(), Some(1), "stdout: {}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains("refused"), "{err}");
    let (id, _) = selected.iter().next().unwrap();
    assert!(err.contains(id.as_str()), "names the artifact: {err}");
    assert_eq!(changes_sent(&env), Vec::<String>::new(), "nothing sent");
}

#[test]
fn a_target_changed_since_the_plan_is_refused_naming_the_artifact() {
    let env = Env::start(Seed::TargetConnections);
    let sync = env.recipe("sync.rhai", SYNC);
    let out = env.ferry(&["run", &sync]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let dev = env.rt.block_on(list_integrations(&env.instance("dev")));
    let active: Vec<String> = expected_selection(&dev)
        .into_iter()
        .filter(|(_, s)| s == "ACTIVATED")
        .map(|(id, _)| id)
        .collect();
    assert!(active.len() >= 2, "{active:?}");
    let (x, y) = (&active[0], &active[1]);

    // The plan: activate X again.
    env.set_status("prod", x, "CONFIGURED");
    let out = env.ferry(&["plan", &sync, "-o", "plan.json"]);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
    let plan = read_plan(&env, "plan.json");
    let changes: Vec<_> = plan_effects(&plan).into_keys().collect();
    assert_eq!(
        changes,
        vec![(
            "activate".to_string(),
            x.clone(),
            "prod".to_string(),
            "activate".to_string()
        )]
    );
    let x_state = plan["targets"].as_array().unwrap();
    assert_eq!(x_state.len(), 1);
    assert_eq!(x_state[0]["status"], "CONFIGURED");

    // Someone deactivates Y on prod before the apply: refused, naming Y; nothing sent.
    env.set_status("prod", y, "CONFIGURED");
    let before = env.state("prod");
    env.sim.clear_request_log();
    let out = env.ferry(&["apply", "plan.json"]);
    assert_eq!(out.status.code(), Some(1), "stdout: {}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains("refused") && err.contains(y.as_str()), "{err}");
    assert!(!err.contains(&format!("{x}:")), "X is as planned: {err}");
    assert_eq!(changes_sent(&env), Vec::<String>::new());
    assert_eq!(env.state("prod"), before);

    // Y put back as it was: the plan applies, and changes X only.
    env.set_status("prod", y, "ACTIVATED");
    env.sim.clear_request_log();
    let out = env.ferry(&["apply", "plan.json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let sent = changes_sent(&env);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert!(sent[0].contains(&x.replace('|', "%7C")), "{sent:#?}");

    // Someone changes X itself (activates it) after a new plan: the target state differs.
    env.set_status("prod", x, "CONFIGURED");
    let out = env.ferry(&["plan", &sync, "-o", "plan2.json"]);
    assert_eq!(out.status.code(), Some(2));
    env.set_status("prod", x, "ACTIVATED");
    let out = env.ferry(&["apply", "plan2.json"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(x.as_str()) && err.contains("ACTIVATED"),
        "{err}"
    );
}

#[test]
fn an_edited_plan_or_a_changed_archive_is_refused() {
    let env = Env::start(Seed::TargetConnections);
    let sync = env.recipe("sync.rhai", SYNC);
    let out = env.ferry(&["plan", &sync, "-o", "plan.json"]);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
    let original = std::fs::read_to_string(env.path().join("plan.json")).unwrap();
    env.sim.clear_request_log();
    let refused = |edited: &str, want: &str| {
        std::fs::write(env.path().join("edited.json"), edited).unwrap();
        let out = env.ferry(&["apply", "edited.json"]);
        assert_eq!(out.status.code(), Some(1), "{want}");
        let err = text(&out.stderr);
        assert!(err.contains(want), "want {want:?}: {err}");
    };
    // An effect edited (a replace instead of an import new): the digest no longer matches.
    refused(
        &original.replacen("\"import new\"", "\"replace\"", 1),
        "was modified after `ferry plan` wrote it",
    );
    // The recipe edited.
    refused(
        &original.replacen("latest: true", "latest: false", 1),
        "was modified",
    );
    // An unknown key; another format version; not a plan.
    refused(
        &original.replacen('{', "{\n  \"approved_by\": \"me\",", 1),
        "unknown field `approved_by`",
    );
    refused(
        &original.replacen("\"version\": 1", "\"version\": 2", 1),
        "has format version 2",
    );
    refused("{\"format\": \"other\"}", "is not a ferry plan");
    assert_eq!(changes_sent(&env), Vec::<String>::new(), "nothing sent");

    // An archive changed on the source since the plan: refused, naming it; prod untouched.
    let plan: Value = serde_json::from_str(&original).unwrap();
    let a = &plan["archives"][0];
    let id = format!(
        "{}|{}",
        a["code"].as_str().unwrap(),
        a["version"].as_str().unwrap()
    );
    assert!(env.sim.set_archive_size("dev", &id, 300_000), "{id}");
    let out = env.ferry(&["apply", "plan.json"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("the archive of integration {id} on dev changed")),
        "{err}"
    );
    assert!(env.state("prod").is_empty());
    assert_eq!(changes_sent(&env), Vec::<String>::new(), "nothing sent");
}
