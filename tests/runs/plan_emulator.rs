//! `ferry plan` against the emulator: the plan lists exactly the effects the real run then
//! performs, changes nothing, and exits 2 when something would change and 0 when nothing would.

use crate::support::ledger as ledger_support;

use std::collections::BTreeSet;

use ferry::ledger::{Ledger, Stage, StepStatus};
use ferry::sim::Seed;
use ledger_support::*;

/// Export from dev and import into prod, no backup job: once done, nothing is left to do.
const SYNC: &str = r#"
let dev = oic::instance("dev");
let prod = oic::instance("prod");
let wanted = dev.integrations(#{ latest: true })
    .filter(|i| i.status != "INPROGRESS" && !i.locked && i.project_type != "PREBUILT");
prod.import_archives(dev.export_archives(wanted), #{ overwrite: true, activate: "keep" });
"#;

type Effect = (String, Stage, String, String);

/// (artifact, stage, target, action) of the steps of `run` with `status`; verifications are
/// compared without their path (the plan has no job to name).
fn effects(db: &Ledger, run: &str, status: StepStatus) -> BTreeSet<Effect> {
    db.steps(run)
        .unwrap()
        .into_iter()
        .filter(|s| s.status == status)
        .map(|s| {
            let action = if s.stage == Stage::Verify {
                "fetch and verify".to_string()
            } else {
                s.action.clone()
            };
            (s.key().id(), s.stage, s.target.clone(), action)
        })
        .collect()
}

#[test]
fn plan_lists_exactly_what_the_run_then_does() {
    let env = Env::start(Seed::TargetConnections);
    let migrate = env.recipe("migrate.rhai", MIGRATE);
    let sync = env.recipe("sync.rhai", SYNC);
    let before = env.state("prod");
    assert!(before.is_empty());

    // The plan of the migration: everything would change.
    let out = env.ferry(&["plan", &migrate, "--json", "--var", "job=plan-test"]);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
    let plan = json_out(&out);
    assert_eq!(plan["changes"], true);
    let plan_run = plan["run"].as_str().unwrap().to_string();
    assert_eq!(env.state("prod"), before, "a plan changes nothing");
    assert!(
        !env.path().join("vault/OIC_Backups").exists()
            || ledger_support::support_files(&env.path().join("vault")).is_empty(),
        "a plan writes no backup"
    );
    let lines = plan["plan"].as_array().unwrap();
    let dev = env.rt.block_on(list_integrations(&env.instance("dev")));
    let selected = expected_selection(&dev);
    for (id, status) in &selected {
        let acts: Vec<&str> = lines
            .iter()
            .filter(|l| l["artifact"] == id.as_str())
            .map(|l| l["action"].as_str().unwrap())
            .collect();
        let mut want = vec!["export", "store", "fetch and verify", "import new"];
        if status == "ACTIVATED" {
            want.push("activate");
        }
        // A scheduled integration's schedule travels beside it, put back after the activation
        // and started where it runs on dev (the sample's schedules run where their integration
        // is active).
        if dev
            .iter()
            .any(|i| i["id"] == id.as_str() && i["scheduleDefinedFlag"] == true)
        {
            want.extend([
                "export schedule",
                "store",
                "fetch and verify",
                "put schedule",
            ]);
            if status == "ACTIVATED" {
                want.push("start schedule");
            }
        }
        assert_eq!(acts, want, "plan of {id}");
    }

    // The real run performs exactly the planned effects.
    let out = env.ferry(&["run", &migrate, "--json", "--var", "job=plan-test"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let real_run = json_out(&out)["run"]["id"].as_str().unwrap().to_string();
    let db = Ledger::open(&env.path().join(".ferry/ledger.db")).unwrap();
    let planned = effects(&db, &plan_run, StepStatus::Planned);
    let done = effects(&db, &real_run, StepStatus::Ok);
    assert_eq!(planned, done);
    assert!(effects(&db, &real_run, StepStatus::Skipped).is_empty());
    let after = env.state("prod");
    assert_eq!(
        after.keys().cloned().collect::<BTreeSet<_>>(),
        selected.keys().cloned().collect::<BTreeSet<_>>()
    );

    // Nothing left to do: exit 0, every line a skip with its reason.
    let out = env.ferry(&["plan", &sync, "--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let plan = json_out(&out);
    assert_eq!(plan["changes"], false);
    for l in plan["plan"].as_array().unwrap() {
        if l["stage"] == "export" {
            continue;
        }
        assert_eq!(l["action"], "skip", "{l}");
        let reason = l["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("unchanged by checksum")
                || reason == "already active"
                || reason == "same schedule on prod"
                || reason == "already ACTIVE",
            "{l}"
        );
    }
    let table = env.ferry(&["plan", &sync]);
    assert_eq!(table.status.code(), Some(0));
    assert!(
        text(&table.stdout).contains("No changes"),
        "{}",
        text(&table.stdout)
    );

    // One integration deactivated on prod: the plan activates it again, and only that.
    let (id, _) = selected.iter().find(|(_, s)| *s == "ACTIVATED").unwrap();
    env.set_status("prod", id, "CONFIGURED");
    let out = env.ferry(&["plan", &sync, "--json"]);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
    let changes: Vec<_> = json_out(&out)["plan"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["change"] == true)
        .map(|l| {
            (
                l["artifact"].as_str().unwrap().to_string(),
                l["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(changes, vec![(id.clone(), "activate".to_string())]);
    let out = env.ferry(&["run", &sync, "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let run = json_out(&out)["run"]["id"].as_str().unwrap().to_string();
    let done: Vec<_> = db
        .steps(&run)
        .unwrap()
        .into_iter()
        .filter(|s| s.status == StepStatus::Ok && s.stage != Stage::Export)
        .map(|s| (s.key().id(), s.action))
        .collect();
    assert_eq!(done, vec![(id.clone(), "activate".to_string())]);
    assert_eq!(env.state("prod"), after);

    // A script error: exit 1.
    let bad = env.recipe("bad.rhai", "let x = ;");
    assert_eq!(env.ferry(&["plan", &bad]).status.code(), Some(1));
}
