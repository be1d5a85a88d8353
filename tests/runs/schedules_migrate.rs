//! Schedules migrate (issue 12): a sandbox migration of the sample set leaves every scheduled
//! integration on the target with the schedule definition and state it has on the source (both
//! read over the REST API); the backup job holds `Schedules/CODE_VERSION.json`, listed and
//! checksummed in its manifest; `ferry plan` shows the schedule steps and changes nothing;
//! `ferry rollback` puts the target's previous schedule and state back; a restore from the job
//! puts the source's schedule back again.

use crate::support::emulator::client_for;
use crate::support::ledger as ledger_support;

use ferry::oic::{IntegrationId, OicClient, Schedule, ScheduleDefinition, ScheduleState};
use ferry::sim::Seed;
use ledger_support::*;
use serde_json::{Value, json};

fn client(env: &Env, name: &str) -> OicClient {
    client_for(&env.instance(name))
}

/// Every schedule of an instance: id → schedule (read over REST).
fn schedules(env: &Env, name: &str) -> Vec<(IntegrationId, Schedule)> {
    let c = client(env, name);
    env.rt.block_on(async {
        let mut out = vec![];
        for i in c.list_integrations(None).await.expect("list") {
            let id = i.integration_id().expect("id");
            if let Some(s) = c.get_schedule(&id).await.expect("schedule") {
                out.push((id, s));
            }
        }
        out
    })
}

fn schedule_of(env: &Env, name: &str, id: &IntegrationId) -> Option<Schedule> {
    let c = client(env, name);
    env.rt
        .block_on(c.get_schedule(id))
        .expect("read the schedule")
}

fn manifests(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Value)> {
    support_files(dir)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "manifest.json"))
        .map(|p| {
            let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            (p, v)
        })
        .collect()
}

#[test]
fn a_migration_carries_schedules_and_a_rollback_puts_the_targets_back() {
    let env = Env::start(Seed::Sample);
    let pay = IntegrationId::parse("HR_PAYROLL_EXPORT|01.00.0000").unwrap();
    let (dev, prod) = (client(&env, "dev"), client(&env, "prod"));

    // dev runs it daily (a frequency definition), prod every 3 hours (iCal); both started. (An
    // integration's restore alone would bring prod's definition back stopped: only the schedule
    // rollback starts it again.)
    let dev_def = ScheduleDefinition::from_json(&json!({
        "frequency": {"frequencyType": "DAILY", "interval": 1},
        "name": "Schedule2HR_PAYROLL_EXPORT_01_00_0000",
        "startDate": "2/14/2025|0:0:0", "endDate": null,
        "scheduleTZ": "Europe/Berlin",
        "scheduleTZDisplayName": "(UTC+01:00) Berlin - Central European Time"
    }));
    let prod_def = ScheduleDefinition::from_json(&json!({
        "icalExpression": "FREQ=HOURLY;INTERVAL=3;", "name": "prod-hourly", "scheduleTZ": "UTC"
    }));
    env.rt.block_on(async {
        dev.put_schedule_at(None, &pay, &dev_def).await.unwrap();
        assert_eq!(
            dev.start_schedule(&pay).await.unwrap(),
            ScheduleState::Active
        );
        prod.put_schedule_at(None, &pay, &prod_def).await.unwrap();
    });
    let source = schedules(&env, "dev");
    assert!(
        !source.is_empty(),
        "the sample set has scheduled integrations"
    );
    let before = schedule_of(&env, "prod", &pay).expect("prod has a schedule");
    assert_eq!(before.definition, prod_def);
    assert_eq!(before.state, Some(ScheduleState::Active));

    // The plan shows the schedule steps and changes nothing.
    let recipe = env.recipe("migrate.rhai", MIGRATE);
    let out = env.ferry(&["plan", &recipe, "--json", "--var", "job=plan-only"]);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
    let plan = json_out(&out);
    let acts: Vec<String> = plan["plan"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["artifact"] == "HR_PAYROLL_EXPORT|01.00.0000")
        .map(|l| l["action"].as_str().unwrap_or("").to_string())
        .collect();
    for want in ["export schedule", "put schedule", "start schedule"] {
        assert!(acts.iter().any(|a| a == want), "{want} planned: {acts:?}");
    }
    assert_eq!(
        schedule_of(&env, "prod", &pay).as_ref(),
        Some(&before),
        "a plan changes nothing"
    );

    // The migration.
    let out = env.ferry(&["run", &recipe, "--json", "--var", "job=with-schedules"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let run = json_out(&out)["run"]["id"].as_str().unwrap().to_string();
    for (id, s) in &source {
        let t =
            schedule_of(&env, "prod", id).unwrap_or_else(|| panic!("{id}: no schedule on prod"));
        assert_eq!(t.definition, s.definition, "{id}: same definition");
        assert_eq!(t.state, s.state, "{id}: same state");
    }
    assert_eq!(
        schedule_of(&env, "prod", &pay).unwrap().state,
        Some(ScheduleState::Active),
        "started on prod as on dev"
    );

    // The job holds the schedule beside the archive, listed and checksummed.
    let ms = manifests(&env.path().join("vault"));
    let (mpath, m) = ms
        .iter()
        .find(|(_, m)| m["job"] == "with-schedules")
        .expect("the backup job's manifest");
    let e = m["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "Schedules/HR_PAYROLL_EXPORT_01.00.0000.json")
        .unwrap_or_else(|| panic!("schedule listed: {m}"));
    assert_eq!(e["kind"], "schedule");
    let file = std::fs::read(
        mpath
            .parent()
            .unwrap()
            .join("Schedules/HR_PAYROLL_EXPORT_01.00.0000.json"),
    )
    .expect("the schedule file");
    assert_eq!(e["sha256"].as_str().unwrap(), sha256_hex(&file));
    let saved: Value = serde_json::from_slice(&file).unwrap();
    assert_eq!(saved["state"], "ACTIVE");
    assert_eq!(saved["integration"], "HR_PAYROLL_EXPORT|01.00.0000");
    assert_eq!(saved["definition"]["frequency"]["frequencyType"], "DAILY");
    let job_path = m["path"].as_str().unwrap().to_string();

    // Rollback: prod's previous schedule and state come back.
    let out = env.ferry(&["rollback", &run, "--json"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let back = schedule_of(&env, "prod", &pay).expect("prod has its schedule back");
    assert_eq!(back.definition, prod_def, "previous definition");
    assert_eq!(back.state, Some(ScheduleState::Active), "previous state");

    // A restore from the job puts dev's schedule back, started.
    let out = env.ferry(&[
        "vault",
        "restore",
        &job_path,
        "--to",
        "prod",
        "--only",
        "HR_PAYROLL_EXPORT|01.00.0000",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let restored = schedule_of(&env, "prod", &pay).unwrap();
    assert_eq!(restored.definition, dev_def);
    assert_eq!(restored.state, Some(ScheduleState::Active));
}

#[test]
fn schedules_skip_leaves_the_target_alone_and_unknown_modes_are_refused() {
    let env = Env::start(Seed::Sample);
    let pay = IntegrationId::parse("HR_PAYROLL_EXPORT|01.00.0000").unwrap();
    let prod = client(&env, "prod");
    env.rt
        .block_on(async { prod.stop_schedule(&pay).await.unwrap() });
    let recipe = |mode: &str| {
        format!(
            r#"
let dev = oic::instance("dev");
let prod = oic::instance("prod");
let wanted = dev.integrations().filter(|i| i.code == "HR_PAYROLL_EXPORT");
let arts = dev.export_archives(wanted);
if arts.filter(|a| a.kind == "schedule").len() != 1 {{ throw "no schedule exported"; }}
prod.import_archives(arts, #{{ overwrite: true, activate: "keep", schedules: {mode} }});
"#
        )
    };
    let bad = env.recipe("bad.rhai", &recipe("\"start\""));
    let out = env.ferry(&["run", &bad]);
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("start"), "{}", text(&out.stderr));
    let skip = env.recipe("skip.rhai", &recipe("\"skip\""));
    let out = env.ferry(&["run", &skip]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(
        schedule_of(&env, "prod", &pay).unwrap().state,
        Some(ScheduleState::Cancelled),
        "skip: the target's schedule is not started"
    );
    let keep = env.recipe("keep.rhai", &recipe("\"keep\""));
    let out = env.ferry(&["run", &keep]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(
        schedule_of(&env, "prod", &pay).unwrap().state,
        Some(ScheduleState::Active),
        "keep: started as on dev"
    );
}
