//! Cutover (issue 18, part 1): what the emulator and the client offer it (archives that say whom
//! they call, connection tests that fail on demand, monitoring that counts instances since a time
//! with injectable error rates, a REST trigger), and the cutover itself against the emulator over
//! HTTP.

use crate::support::emulator::{self, client, id, spec, sync_activation};
use crate::support::ledger as ledger_support;

use ferry::oic::ImportMode;
use ferry::oic::archive::{self, InvokeKind};
use ferry::sim::faults::TrafficRule;
use ferry::sim::{Faults, Seed, SimHandle};

/// dev (gen 2, Sample) and prod (OIC 3, target connections).
async fn start() -> SimHandle {
    emulator::start(vec![
        spec("dev", 2, Seed::Sample),
        spec("prod", 3, Seed::TargetConnections),
    ])
    .await
}

#[tokio::test]
async fn sample_archives_say_whom_they_call_and_import_without_the_local_adapter() {
    let h = start().await;
    let (dev, prod) = (client(&h, "dev"), client(&h, "prod"));
    let scm = dev
        .export_integration(&id("SCM_ORDER_NOTIFY|01.00.0000"))
        .await
        .expect("export");
    let calls = archive::invocations(scm.path()).expect("read calls");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        (calls[0].code.as_str(), calls[0].version.as_str()),
        ("FIN_INVOICE_IMPORT", "01.00")
    );
    assert_eq!(calls[0].kind, InvokeKind::Rest);
    let fin = dev
        .export_integration(&id("FIN_INVOICE_IMPORT|01.00.0000"))
        .await
        .expect("export");
    let calls = archive::invocations(fin.path()).expect("read calls");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        (
            calls[0].code.as_str(),
            calls[0].version.as_str(),
            &calls[0].kind
        ),
        ("FIN_PAYMENT_STATUS", "01.00.0000", &InvokeKind::Local)
    );
    // The local integration adapter is a system adapter: not a connection of the archive, so the
    // import on prod is ready to activate.
    let info = archive::inspect(fin.path()).expect("inspect");
    assert_eq!(info.connections, vec!["FIN_ATP", "FIN_ERP"]);
    let leaf = dev
        .export_integration(&id("FIN_PAYMENT_STATUS|01.00.0000"))
        .await
        .expect("export");
    assert!(archive::invocations(leaf.path()).expect("calls").is_empty());
    prod.import_integration(&fin, ImportMode::Overwrite)
        .await
        .expect("import");
    assert_eq!(
        h.integration_status("prod", "FIN_INVOICE_IMPORT|01.00.0000")
            .as_deref(),
        Some("CONFIGURED")
    );
}

#[tokio::test]
async fn connection_tests_fail_on_demand_with_an_oic_message() {
    let h = start().await;
    let prod = client(&h, "prod");
    let ok = prod.test_connection(None, "FIN_ERP").await.expect("test");
    assert!(ok.ok(), "{ok:?}");
    h.set_faults(Faults {
        fail_connection_tests: vec!["FIN_ERP".into()],
        ..Faults::default()
    });
    let t = prod.test_connection(None, "FIN_ERP").await.expect("test");
    assert!(!t.ok());
    assert_eq!(t.status, "FAILED");
    assert!(
        t.details
            .starts_with("Test of FIN_ERP connection failed. CASDK-0005")
            && t.details.contains("https://fin-erp.prod.example.com"),
        "{}",
        t.details
    );
    assert!(
        prod.test_connection(None, "FIN_ATP")
            .await
            .expect("test")
            .ok()
    );
}

#[tokio::test]
async fn monitoring_counts_instances_since_activation_with_injected_error_rates() {
    let h = start().await;
    let (dev, prod) = (client(&h, "dev"), client(&h, "prod"));
    let pay = id("FIN_PAYMENT_STATUS|01.00.0000");
    let a = dev.export_integration(&pay).await.expect("export");
    prod.import_integration(&a, ImportMode::Overwrite)
        .await
        .expect("import");
    h.set_faults(Faults {
        traffic: vec![TrafficRule {
            integration: "FIN_PAYMENT_*".into(),
            instances: 10,
            error_rate: 0.3,
        }],
        ..Faults::default()
    });
    let before = chrono::Utc::now() - chrono::Duration::seconds(2);
    // Nothing ran before the activation.
    let none = prod
        .instance_counts_since(&pay, before)
        .await
        .expect("counts");
    assert_eq!(none.total, 0);
    prod.activate(&pay, &sync_activation())
        .await
        .expect("activate");
    let c = prod
        .instance_counts_since(&pay, before)
        .await
        .expect("counts");
    assert_eq!((c.total, c.failed, c.completed), (10, 3, 7), "{c:?}");
    assert!((c.error_rate() - 0.3).abs() < 1e-9);
    // Since a later time: none of them.
    let later = chrono::Utc::now() + chrono::Duration::seconds(5);
    assert_eq!(
        prod.instance_counts_since(&pay, later)
            .await
            .expect("counts")
            .total,
        0
    );
    // The REST trigger adds one instance per call; at a 100 % error rate it answers 500.
    let path = "/ic/api/integration/v1/flows/rest/FIN_PAYMENT_STATUS/1.0/status";
    let v = prod
        .call_rest_trigger("POST", path, Some(serde_json::json!({"id": 1})))
        .await
        .expect("trigger");
    assert_eq!(v["status"], "COMPLETED");
    h.set_faults(Faults {
        traffic: vec![TrafficRule {
            integration: "FIN_PAYMENT_STATUS|01.00.0000".into(),
            instances: 0,
            error_rate: 1.0,
        }],
        ..Faults::default()
    });
    let e = prod
        .call_rest_trigger("POST", path, None)
        .await
        .expect_err("a failed instance");
    assert_eq!(e.status(), Some(500), "{e}");
    let c = prod
        .instance_counts_since(&pay, before)
        .await
        .expect("counts");
    assert_eq!((c.total, c.failed), (12, 4), "{c:?}");
    // An inactive integration has no trigger.
    let e = prod
        .call_rest_trigger(
            "POST",
            "/ic/api/integration/v1/flows/rest/HR_NEW_HIRE/1.1/",
            None,
        )
        .await
        .expect_err("not active");
    assert_eq!(e.status(), Some(404), "{e}");
}

// ------------------------------------------------------------------ the cutover, end to end

use ledger_support::{Env, text, token, try_export};

/// The three FIN/SCM integrations that call one another on dev: SCM_ORDER_NOTIFY calls
/// FIN_INVOICE_IMPORT's REST endpoint, which calls FIN_PAYMENT_STATUS locally.
const CHAIN: &str = r#"
let src = oic::instance("dev");
let dst = oic::instance("prod");
let codes = param("codes", "SCM_ORDER_NOTIFY,FIN_INVOICE_IMPORT,FIN_PAYMENT_STATUS").split(",");
let wanted = src.integrations(#{ latest: true }).filter(|i| codes.contains(i.code));
let job = vault::open("backups").new_job("cutover-{run}");
job.store(src.export_archives(wanted));
let r = dst.cutover(job.artifacts(), parse_json(param("options", "{}")));
print(`outcome=${r.outcome}`);
print(`order=${r.order}`);
print(`cause=${r.cause}`);
for f in r.failed_connections { print(`failed ${f.connection}: ${f.message}`); }
"#;

/// The ids of the integrations activated on `inst`, in the order the emulator received the
/// activation requests (`POST /integrations/{id}` with a status body).
fn activations(env: &Env, inst: &str) -> Vec<String> {
    env.sim
        .request_log()
        .into_iter()
        .filter(|e| e.instance.as_deref() == Some(inst) && e.method == "POST" && e.status < 300)
        .filter_map(|e| {
            let rest = e
                .path
                .strip_prefix("/ic/api/integration/v1/integrations/")?;
            (!rest.contains('/') && rest != "archive").then(|| rest.replace("%7C", "|"))
        })
        .collect()
}

fn run_chain(env: &Env, options: &str) -> (std::process::Output, String) {
    let recipe = env.recipe("cutover.rhai", CHAIN);
    let out = env.ferry(&["run", &recipe, "--var", &format!("options={options}")]);
    let stdout = text(&out.stdout);
    (out, stdout)
}

#[test]
fn a_callee_is_activated_before_its_caller() {
    let env = Env::start(Seed::TargetConnections);
    env.sim.clear_request_log();
    let (out, stdout) = run_chain(
        &env,
        r#"{"activate": true, "smoke": {"window_secs": 0,
            "calls": [{"path": "/ic/api/integration/v1/flows/rest/FIN_PAYMENT_STATUS/1.0/status", "body": {"id": 7}}]}}"#,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("outcome=completed"), "{stdout}");
    // The smoke check's test call reached the REST trigger once the integrations were active.
    let log = env.sim.request_log();
    let call = log
        .iter()
        .position(|e| e.path == "/ic/api/integration/v1/flows/rest/FIN_PAYMENT_STATUS/1.0/status")
        .expect("the test call");
    assert_eq!(log[call].status, 200);
    let order = activations(&env, "prod");
    let pos = |id: &str| {
        order
            .iter()
            .position(|x| x == id)
            .unwrap_or_else(|| panic!("{id} activated: {order:?}"))
    };
    assert!(
        pos("FIN_PAYMENT_STATUS|01.00.0000") < pos("FIN_INVOICE_IMPORT|01.00.0000"),
        "{order:?}"
    );
    assert!(
        pos("FIN_INVOICE_IMPORT|01.00.0000") < pos("SCM_ORDER_NOTIFY|01.00.0000"),
        "{order:?}"
    );
    for id in [
        "FIN_PAYMENT_STATUS|01.00.0000",
        "FIN_INVOICE_IMPORT|01.00.0000",
        "SCM_ORDER_NOTIFY|01.00.0000",
    ] {
        assert_eq!(
            env.sim.integration_status("prod", id).as_deref(),
            Some("ACTIVATED"),
            "{id}"
        );
    }
    // Every connection the three use was tested before the first activation.
    let log = env.sim.request_log();
    let first_activation = log
        .iter()
        .position(|e| {
            e.instance.as_deref() == Some("prod")
                && e.method == "POST"
                && e.path.ends_with("FIN_PAYMENT_STATUS%7C01.00.0000")
        })
        .expect("activation");
    for c in ["FIN_ERP", "FIN_ATP", "SCM_REST"] {
        let t = log
            .iter()
            .position(|e| {
                e.instance.as_deref() == Some("prod")
                    && e.path.ends_with(&format!("/connections/{c}/test"))
            })
            .unwrap_or_else(|| panic!("{c} tested"));
        assert!(t < first_activation, "{c} tested before any activation");
    }
}

#[test]
fn a_connection_failing_its_test_stops_the_cutover_before_any_activation() {
    let env = Env::start(Seed::TargetConnections);
    env.sim.set_faults(Faults {
        fail_connection_tests: vec!["FIN_ERP".into()],
        ..Faults::default()
    });
    env.sim.clear_request_log();
    let (out, stdout) = run_chain(&env, r#"{"activate": true, "smoke": {"window_secs": 0}}"#);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("outcome=connections_failed"), "{stdout}");
    assert!(
        stdout.contains("failed FIN_ERP: Test of FIN_ERP connection failed. CASDK-0005"),
        "each failing connection with OIC's message: {stdout}"
    );
    assert!(!stdout.contains("failed FIN_ATP"), "{stdout}");
    assert_eq!(
        activations(&env, "prod"),
        Vec::<String>::new(),
        "nothing activated"
    );
    for id in [
        "FIN_PAYMENT_STATUS|01.00.0000",
        "FIN_INVOICE_IMPORT|01.00.0000",
    ] {
        assert_eq!(
            env.sim.integration_status("prod", id).as_deref(),
            Some("CONFIGURED"),
            "{id}: imported, inactive"
        );
    }
}

/// dev's archive of `id` with one more file in it, sealed again: the version prod runs before
/// the cutover.
pub(crate) fn previous_version(env: &Env, id: &str) -> Vec<u8> {
    env.edited_archive(id, "what prod ran before the cutover")
}

/// Imports `bytes` on prod (`POST /integrations/archive`).
pub(crate) fn post_archive(env: &Env, id: &str, bytes: Vec<u8>) {
    env.upload_archive("prod", reqwest::Method::POST, id, bytes)
}

fn schedule_state(env: &Env, id: &str) -> String {
    let i = env.instance("prod");
    env.rt.block_on(async {
        let tok = token(&i).await;
        let url = format!(
            "{}/ic/api/integration/v1/integrations/{}/schedule?integrationInstance={}",
            i.base_url,
            id.replace('|', "%7C"),
            i.integration_instance.clone().unwrap_or_default()
        );
        let v: serde_json::Value = reqwest::Client::new()
            .get(url)
            .bearer_auth(tok)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        v["state"].as_str().unwrap_or("").to_string()
    })
}

fn smtp() -> Option<Vec<String>> {
    let vars = [
        "TEST_SMTP_HOST",
        "TEST_SMTP_PORT",
        "TEST_SMTP_USER",
        "TEST_SMTP_PASS",
        "TEST_SMTP_MAILDIR",
        "TEST_SMTP_CA",
    ];
    let v: Vec<Option<String>> = vars.iter().map(|k| std::env::var(k).ok()).collect();
    if v.iter().any(Option::is_none) {
        assert!(
            std::env::var_os("FERRY_ALLOW_SKIP").is_some(),
            "TEST_SMTP_* is not set: run `. /srv/ocitest/env` (or FERRY_ALLOW_SKIP=1 to skip)"
        );
        return None;
    }
    Some(v.into_iter().flatten().collect())
}

#[test]
fn a_failing_smoke_check_puts_back_versions_states_and_schedules_and_notifies() {
    let Some(smtp) = smtp() else { return };
    let env = Env::start(Seed::TargetConnections);
    // prod runs earlier versions of the chain and of the scheduled payroll export, all active,
    // the export's schedule started.
    let ids = [
        "FIN_PAYMENT_STATUS|01.00.0000",
        "FIN_INVOICE_IMPORT|01.00.0000",
        "HR_PAYROLL_EXPORT|01.00.0000",
    ];
    for id in ids {
        post_archive(&env, id, previous_version(&env, id));
        env.set_status("prod", id, "ACTIVATED");
    }
    let code = env.call(
        "prod",
        reqwest::Method::POST,
        "/integrations/HR_PAYROLL_EXPORT%7C01.00.0000/schedule/start",
        None,
    );
    assert!(code < 300, "start the schedule: HTTP {code}");
    assert_eq!(
        schedule_state(&env, "HR_PAYROLL_EXPORT|01.00.0000"),
        "ACTIVE"
    );
    let before = env.state("prod");
    // Once released, FIN_INVOICE_IMPORT fails half of its messages.
    env.sim.set_faults(Faults {
        traffic: vec![TrafficRule {
            integration: "FIN_INVOICE_IMPORT|*".into(),
            instances: 4,
            error_rate: 0.5,
        }],
        ..Faults::default()
    });
    let marker = format!("cut{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff);
    std::fs::write(env.path().join("secrets/smtp.txt"), &smtp[3]).unwrap();
    let mut cfg = std::fs::read_to_string(env.path().join("ferry.toml")).unwrap();
    cfg.push_str(&format!(
        "\n[mail]\nhost = \"{}\"\nport = {}\ntls = \"starttls\"\nusername = \"{}\"\npassword = \"file:secrets/smtp.txt\"\nca_file = \"{}\"\nfrom = \"ferry <ferry@example.com>\"\nadmins = [\"{marker}@example.com\"]\n",
        smtp[0], smtp[1], smtp[2], smtp[5]
    ));
    std::fs::write(env.path().join("ferry.toml"), cfg).unwrap();

    let recipe = env.recipe("cutover.rhai", CHAIN);
    let out = env.ferry(&[
        "run",
        &recipe,
        "--json",
        "--var",
        "codes=FIN_INVOICE_IMPORT,FIN_PAYMENT_STATUS,HR_PAYROLL_EXPORT",
        "--var",
        r#"options={"activate": true, "smoke": {"window_secs": 0, "max_error_rate": 0.1}}"#,
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("outcome=rolled_back"), "{stderr}");
    assert!(
        stderr
            .contains("cause=smoke check: FIN_INVOICE_IMPORT|01.00.0000 failed 2 of 4 instance(s)"),
        "{stderr}"
    );
    // The cutover did replace the three (and the rollback put them back): six replaces.
    let puts = env
        .sim
        .request_log()
        .iter()
        .filter(|e| {
            e.instance.as_deref() == Some("prod")
                && e.method == "PUT"
                && e.path.ends_with("/integrations/archive")
                && e.status < 300
        })
        .count();
    assert_eq!(puts, 6, "replaces on prod");

    // The previous versions (by checksum), their activation states and the schedule are back.
    let after = env.state("prod");
    for id in ids {
        assert_eq!(after[id], before[id], "{id} as before the cutover");
    }
    assert_eq!(
        schedule_state(&env, "HR_PAYROLL_EXPORT|01.00.0000"),
        "ACTIVE"
    );
    // The replaced archives came back from the run's rollback job, whose manifest was written.
    let vault = env.path().join("vault");
    let manifests: Vec<_> = walk(&vault)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("-rollback") && p.ends_with("manifest.json"))
        .collect();
    assert_eq!(manifests.len(), 1, "one rollback job: {manifests:?}");

    // And the administrators were told why.
    // No waiting: the sink (aiosmtpd's Mailbox) writes the message into `new/` before it answers
    // 250 to DATA, and ferry's process has exited, so a sent mail is already on disk.
    let newdir = std::path::Path::new(&smtp[4]).join("new");
    let found = std::fs::read_dir(&newdir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains(&marker)));
    let msg = std::fs::read_to_string(found.expect("the notification arrived")).unwrap();
    assert!(msg.contains(&format!("To: {marker}@example.com")), "{msg}");
    assert!(
        msg.contains("cutover rolled back: smoke check: FIN_INVOICE_IMPORT"),
        "{msg}"
    );
    assert!(!msg.contains(&smtp[3]), "no secret in the message");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_stopped_cutover_resumes_where_it_stopped() {
    let env = Env::start(Seed::TargetConnections);
    env.sim.set_faults(Faults {
        fail_connection_tests: vec!["SCM_REST".into()],
        ..Faults::default()
    });
    let (out, stdout) = run_chain(&env, r#"{"activate": true, "smoke": {"window_secs": 0}}"#);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("outcome=connections_failed"), "{stdout}");
    // The connection is fixed; the resumed run skips the imports it already made and goes on.
    env.sim.set_faults(Faults::default());
    env.sim.clear_request_log();
    let recipe = env.recipe("cutover.rhai", CHAIN);
    let out = env.ferry(&[
        "run",
        &recipe,
        "--resume",
        "last",
        "--var",
        r#"options={"activate": true, "smoke": {"window_secs": 0}}"#,
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("outcome=completed"), "{stdout}");
    let imports = env
        .sim
        .request_log()
        .iter()
        .filter(|e| e.path.ends_with("/integrations/archive") && e.method != "GET")
        .count();
    assert_eq!(imports, 0, "no import sent again");
    assert_eq!(activations(&env, "prod").len(), 3, "{stdout}");
}

/// prod's schedule of `id` over the REST API: the definition fields and the state.
fn schedule_of(env: &Env, id: &str) -> serde_json::Value {
    let i = env.instance("prod");
    env.rt.block_on(async {
        let tok = token(&i).await;
        let url = format!(
            "{}/ic/api/integration/v1/integrations/{}/schedule?integrationInstance={}",
            i.base_url,
            id.replace('|', "%7C"),
            i.integration_instance.clone().unwrap_or_default()
        );
        let r = reqwest::Client::new()
            .get(url)
            .bearer_auth(tok)
            .send()
            .await
            .expect("get");
        assert_eq!(r.status().as_u16(), 200, "prod has a schedule for {id}");
        let v: serde_json::Value = r.json().await.expect("json");
        let keep = [
            "name",
            "frequency",
            "icalExpression",
            "startDate",
            "endDate",
            "scheduleTZ",
            "state",
        ];
        serde_json::Value::Object(
            keep.iter()
                .filter_map(|k| v.get(*k).map(|x| (k.to_string(), x.clone())))
                .collect(),
        )
    })
}

/// A cutover that completes changes prod's schedules (it starts them; a replace brings the
/// archive's definition); `ferry rollback RUN` afterwards puts back each one's definition and
/// state, read over the REST API before and after. Two cases: prod already holds dev's very
/// archive with its schedule stopped (no import: only the cutover's start changes it), and prod
/// holds an older archive with a schedule of its own, paused (replaced, then started).
#[test]
fn rollback_of_a_completed_cutover_puts_the_schedules_back() {
    let pay = "HR_PAYROLL_EXPORT|01.00.0000";
    let start = format!("/integrations/{}/schedule/start", pay.replace('|', "%7C"));
    for case in [
        "same archive, stopped",
        "older archive, own schedule, paused",
    ] {
        let env = Env::start(Seed::TargetConnections);
        if case.starts_with("same") {
            let dev = env
                .rt
                .block_on(try_export(&env.instance("dev"), pay))
                .expect("export from dev");
            post_archive(&env, pay, dev);
            env.set_status("prod", pay, "ACTIVATED");
        } else {
            post_archive(&env, pay, previous_version(&env, pay));
            env.set_status("prod", pay, "ACTIVATED");
            // prod's own definition (`call` sends bodies as PATCH overrides: a PUT of its own).
            let i = env.instance("prod");
            let code = env.rt.block_on(async {
                let tok = token(&i).await;
                reqwest::Client::new()
                    .put(format!(
                        "{}/ic/api/integration/v1/integrations/{}/schedule?integrationInstance={}",
                        i.base_url,
                        pay.replace('|', "%7C"),
                        i.integration_instance.clone().unwrap_or_default()
                    ))
                    .bearer_auth(tok)
                    .json(&serde_json::json!({
                        "icalExpression": "FREQ=HOURLY;INTERVAL=3;",
                        "name": "prod-every-3h",
                        "scheduleTZ": "UTC"
                    }))
                    .send()
                    .await
                    .expect("put")
                    .status()
                    .as_u16()
            });
            assert!(code < 300, "{case}: prod's own schedule: HTTP {code}");
            let code = env.call("prod", reqwest::Method::POST, &start, None);
            assert!(code < 300, "{case}: start: HTTP {code}");
            let pause = start.replace("/start", "/pause");
            let code = env.call("prod", reqwest::Method::POST, &pause, None);
            assert!(code < 300, "{case}: pause: HTTP {code}");
        }
        let before = schedule_of(&env, pay);
        let state_before = env.state("prod");
        assert_ne!(before["state"], "ACTIVE", "{case}: {before}");

        let recipe = env.recipe("cutover.rhai", CHAIN);
        let out = env.ferry(&[
            "run",
            &recipe,
            "--json",
            "--var",
            &format!("codes={}", pay.split('|').next().unwrap()),
            "--var",
            r#"options={"activate": true, "smoke": {"window_secs": 0}}"#,
        ]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{case}: {stderr}");
        assert!(stderr.contains("outcome=completed"), "{case}: {stderr}");
        let run = ledger_support::json_out(&out)["run"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let during = schedule_of(&env, pay);
        assert_eq!(during["state"], "ACTIVE", "{case}: the cutover started it");
        assert_ne!(during, before, "{case}: the cutover changed the schedule");

        let out = env.ferry(&["rollback", &run, "--json"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{case}: {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert_eq!(
            schedule_of(&env, pay),
            before,
            "{case}: the definition and state prod had before the cutover"
        );
        assert_eq!(
            env.state("prod"),
            state_before,
            "{case}: the integration as before"
        );
    }
}
