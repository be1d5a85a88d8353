//! `rbac` against the emulator's identity domain (SCIM over real HTTP on loopback): grants by
//! e-mail and by group, idempotence, unknown users, revoke, dry-run plans, project roles through
//! the ACL, and a project ACL copied between two emulators (two identity domains) with principals
//! mapped and unmapped.

use std::path::Path;

use ferry::config::{IdentityProfile, Secret};
use ferry::effect::Executor;
use ferry::ledger::{RunInfo, Stage, StepStatus};
use ferry::oic::{Acl, AclPrincipal, OicClient};
use ferry::ops::grant::{self as ops_grant, AccessTarget};
use ferry::rbac::{self, GrantStatus, IdentityClient, Principal, PrincipalKind, RoleMap};
use ferry::sim::{Seed, SimConfig, SimHandle};

use crate::support::emulator;

/// The emulator with gen-3 sample instances `names` and the identity domain seeded with `seed`.
async fn start(seed: u64, names: &[&str]) -> SimHandle {
    emulator::start_with(SimConfig {
        instances: names
            .iter()
            .map(|n| emulator::spec(n, 3, Seed::Sample))
            .collect(),
        seed,
        ..SimConfig::default()
    })
    .await
}

fn identity(h: &SimHandle, name: &str) -> IdentityClient {
    IdentityClient::new(&IdentityProfile {
        name: name.into(),
        url: h.info.identity_url.clone(),
        token_url: format!("{}/oauth2/v1/token", h.info.identity_url),
        client_id: h.info.admin_client_id.clone(),
        client_secret: Secret::new(h.info.admin_client_secret.clone()),
        scope: h.info.admin_scope.clone(),
        apps: Default::default(),
        timeout_secs: 10,
    })
    .unwrap()
}

fn oic(h: &SimHandle, name: &str) -> OicClient {
    let dir = std::env::temp_dir();
    let cfg = ferry::cli::sandbox::config_for(&h.info, &dir).unwrap();
    OicClient::new(cfg.instance(name).unwrap()).unwrap()
}

fn exec(dry: bool) -> Executor {
    crate::support::memory_executor(RunInfo {
        dry_run: dry,
        sandbox: true,
        ..crate::support::run_info("rbac")
    })
}

fn statuses(r: &[rbac::GrantResult]) -> Vec<String> {
    r.iter()
        .map(|g| format!("{} {} {}", g.principal, g.role, g.status.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn grants_by_email_and_group_are_idempotent_and_unknown_users_fail() {
    let h = start(42, &["prod"]).await;
    let idp = identity(&h, "corp");
    let prod = oic(&h, "prod");
    let app = h.instance("prod").unwrap().idcs_app_name.clone();
    let target = AccessTarget {
        identity: &idp,
        app,
        oic: Some(&prod),
    };
    let map = RoleMap::parse_csv(
        "jane.doe@example.com,Service Developer\njane.doe@example.com,ServiceMonitor\nOIC-Developers,ServiceViewer\nnobody@example.com,ServiceDeveloper\n",
        "roles.csv",
    )
    .unwrap();

    // Dry run: lookups happen, nothing is granted.
    let x = exec(true);
    let plan = ops_grant::grant(&x, &target, &map).await;
    assert_eq!(
        statuses(&plan),
        [
            "user:jane.doe@example.com ServiceDeveloper planned",
            "user:jane.doe@example.com ServiceMonitor planned",
            "group:OIC-Developers ServiceViewer planned",
            "user:nobody@example.com ServiceDeveloper failed",
        ]
    );
    assert!(h.granted_roles("prod", "jane.doe@example.com").is_empty());

    let x = exec(false);
    let r = ops_grant::grant(&x, &target, &map).await;
    assert_eq!(
        statuses(&r),
        [
            "user:jane.doe@example.com ServiceDeveloper granted",
            "user:jane.doe@example.com ServiceMonitor granted",
            "group:OIC-Developers ServiceViewer granted",
            "user:nobody@example.com ServiceDeveloper failed",
        ]
    );
    assert_eq!(
        r[3].reason.as_deref(),
        Some("user `nobody@example.com` not found in identity domain corp")
    );
    // Jane has her two roles plus the group's; Max (a group member) has the group's.
    assert_eq!(
        h.granted_roles("prod", "jane.doe@example.com"),
        ["ServiceDeveloper", "ServiceMonitor", "ServiceViewer"]
    );
    assert_eq!(
        h.granted_roles("prod", "max.mustermann@example.com"),
        ["ServiceViewer"]
    );
    let steps = x.record().steps();
    assert_eq!(steps.len(), 4);
    assert!(steps.iter().all(|s| s.stage == Stage::Grant));
    assert_eq!(steps[3].status, StepStatus::Failed);
    assert_eq!(steps[3].error.as_ref().unwrap().kind, "not_found");

    // Again: unchanged, not failed.
    let x = exec(false);
    let again = ops_grant::grant(&x, &target, &map).await;
    assert_eq!(
        statuses(&again)[..3],
        [
            "user:jane.doe@example.com ServiceDeveloper unchanged",
            "user:jane.doe@example.com ServiceMonitor unchanged",
            "group:OIC-Developers ServiceViewer unchanged",
        ]
    );
    assert!(
        x.record().steps()[..3]
            .iter()
            .all(|s| s.status == StepStatus::Skipped)
    );

    // A 409 from the server (the grant exists) is also unchanged.
    let jane = idp
        .find_user("jane.doe@example.com")
        .await
        .unwrap()
        .unwrap();
    let app = idp.find_app(&target.app).await.unwrap();
    let out = idp
        .grant(&jane, &app.id, &app.roles["ServiceDeveloper"])
        .await
        .unwrap();
    assert_eq!(out, rbac::GrantOutcome::Unchanged);

    // Revoke one; revoking it again is unchanged.
    let mut one = RoleMap::default();
    one.push(
        Principal::parse("jane.doe@example.com"),
        "ServiceMonitor",
        None,
        "t",
    )
    .unwrap();
    let r = ops_grant::revoke(&exec(false), &target, &one).await;
    assert_eq!(r[0].status, GrantStatus::Revoked);
    assert_eq!(
        h.granted_roles("prod", "jane.doe@example.com"),
        ["ServiceDeveloper", "ServiceViewer"]
    );
    let r = ops_grant::revoke(&exec(false), &target, &one).await;
    assert_eq!(r[0].status, GrantStatus::Unchanged);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_app_or_bad_credentials_fail_every_row_with_the_reason() {
    let h = start(42, &["prod"]).await;
    let idp = identity(&h, "corp");
    let map = RoleMap::parse_csv("jane.doe@example.com,ServiceDeveloper\n", "r.csv").unwrap();
    let target = AccessTarget {
        identity: &idp,
        app: "OICINST_nosuch".into(),
        oic: None,
    };
    let r = ops_grant::grant(&exec(false), &target, &map).await;
    assert_eq!(r[0].status, GrantStatus::Failed);
    assert_eq!(
        r[0].reason.as_deref(),
        Some("OIC application `OICINST_nosuch` not found in identity domain corp")
    );
    // The OIC app's own client cannot administer the domain.
    let inst = h.instance("prod").unwrap();
    let weak = IdentityClient::new(&IdentityProfile {
        name: "corp".into(),
        url: h.info.identity_url.clone(),
        token_url: inst.token_url.clone(),
        client_id: inst.client_id.clone(),
        client_secret: Secret::new(inst.client_secret.clone()),
        scope: inst.scope.clone(),
        apps: Default::default(),
        timeout_secs: 10,
    })
    .unwrap();
    let target = AccessTarget {
        identity: &weak,
        app: inst.idcs_app_name.clone(),
        oic: None,
    };
    let x = exec(false);
    let r = ops_grant::grant(&x, &target, &map).await;
    assert_eq!(r[0].status, GrantStatus::Failed);
    let why = r[0].reason.clone().unwrap();
    assert!(why.contains("HTTP 403"), "{why}");
    assert!(!why.contains(&inst.client_secret));
}

#[tokio::test(flavor = "multi_thread")]
async fn project_roles_go_through_the_acl() {
    let h = start(42, &["prod"]).await;
    let idp = identity(&h, "corp");
    let prod = oic(&h, "prod");
    let target = AccessTarget {
        identity: &idp,
        app: h.instance("prod").unwrap().idcs_app_name.clone(),
        oic: Some(&prod),
    };
    let map = RoleMap::parse_csv(
        "user or group,role,project
ana.silva@example.com,editor,HR_ONBOARDING
group:OIC-Developers,Service Monitor,HR_ONBOARDING
ghost@example.com,viewers,HR_ONBOARDING
",
        "roles.csv",
    )
    .unwrap();
    let x = exec(false);
    let r = ops_grant::grant(&x, &target, &map).await;
    assert_eq!(
        statuses(&r),
        [
            "user:ana.silva@example.com editors granted",
            "group:OIC-Developers monitors granted",
            "user:ghost@example.com viewers failed",
        ]
    );
    let acl = prod.get_project_acl("HR_ONBOARDING").await.unwrap();
    let ana = h.user_id("ana.silva@example.com").unwrap();
    assert!(
        acl.editors
            .allowed
            .iter()
            .any(|p| p.id == ana && p.kind == "user" && !p.id_not_found)
    );
    assert_eq!(acl.monitors.allowed.len(), 1);
    assert_eq!(acl.monitors.allowed[0].kind, "group");
    assert!(!acl.monitors.allowed[0].id_not_found);
    // One PUT for the project, recorded on the project.
    let puts: Vec<_> = x
        .record()
        .steps()
        .into_iter()
        .filter(|s| s.status == StepStatus::Ok)
        .collect();
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].code, "HR_ONBOARDING");
    assert!(
        puts[0]
            .action
            .contains("add user:ana.silva@example.com to editors")
    );
    // Idempotent.
    let again = ops_grant::grant(&exec(false), &target, &map).await;
    assert_eq!(again[0].status, GrantStatus::Unchanged);
    assert_eq!(again[1].status, GrantStatus::Unchanged);
    assert_eq!(again[2].status, GrantStatus::Failed);
    // Revoke the group.
    let mut m = RoleMap::default();
    m.push(
        Principal::parse("OIC-Developers"),
        "monitors",
        Some("HR_ONBOARDING"),
        "t",
    )
    .unwrap();
    let r = ops_grant::revoke(&exec(false), &target, &m).await;
    assert_eq!(r[0].status, GrantStatus::Revoked);
    let acl = prod.get_project_acl("HR_ONBOARDING").await.unwrap();
    assert!(acl.monitors.allowed.is_empty());
}

fn principal(id: &str, name: &str, kind: &str) -> AclPrincipal {
    AclPrincipal {
        id: id.into(),
        display_name: name.into(),
        kind: kind.into(),
        id_not_found: false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_acl_maps_principals_between_identity_domains_and_reports_the_missing() {
    // Two emulators: two identity domains with different ids for the same people.
    let a = start(1, &["dev3"]).await;
    let b = start(2, &["prod3"]).await;
    let only_src = a.add_user("leaver@example.com", "Lee Leaver");
    let src_group = a.add_group("Contractors", &["leaver@example.com"]);
    let jane_a = a.user_id("jane.doe@example.com").unwrap();
    let jane_b = b.user_id("jane.doe@example.com").unwrap();
    assert_ne!(jane_a, jane_b);
    let devs_a = idp_group_id(&identity(&a, "src"), "OIC-Developers").await;
    let devs_b = idp_group_id(&identity(&b, "dst"), "OIC-Developers").await;

    let src = oic(&a, "dev3");
    let dst = oic(&b, "prod3");
    let mut acl = Acl::default();
    acl.administrators
        .allowed
        .push(principal(&jane_a, "Jane Doe", "user"));
    acl.editors
        .allowed
        .push(principal(&devs_a, "OIC-Developers", "group"));
    acl.editors
        .allowed
        .push(principal(&only_src, "Lee Leaver", "user"));
    acl.viewers.allow_all = true;
    acl.monitors
        .allowed
        .push(principal(&src_group, "Contractors", "group"));
    src.put_project_acl("HR_ONBOARDING", &acl).await.unwrap();

    let sidp = identity(&a, "src");
    let didp = identity(&b, "dst");
    let x = exec(false);
    let rows = ops_grant::copy_acl(&x, &src, Some(&sidp), &dst, &didp, "HR_ONBOARDING")
        .await
        .unwrap();
    let got: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {}:{} {}",
                r.role,
                r.kind.as_str(),
                r.name,
                r.status.as_str()
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "administrators user:jane.doe@example.com granted",
            "editors group:OIC-Developers granted",
            "editors user:leaver@example.com failed",
            "monitors group:Contractors failed",
        ]
    );
    assert_eq!(
        rows[2].reason.as_deref(),
        Some("user `leaver@example.com` not found in identity domain dst; not copied")
    );
    let copied = dst.get_project_acl("HR_ONBOARDING").await.unwrap();
    assert_eq!(copied.administrators.allowed.len(), 1);
    assert_eq!(copied.administrators.allowed[0].id, jane_b);
    assert!(!copied.administrators.allowed[0].id_not_found);
    assert_eq!(copied.editors.allowed.len(), 1);
    assert_eq!(copied.editors.allowed[0].id, devs_b);
    assert!(copied.viewers.allow_all);
    assert!(copied.monitors.allowed.is_empty());
    // The unmapped principals are failed steps on the project; the PUT is one ok step.
    let steps = x.record().steps();
    let failed: Vec<_> = steps
        .iter()
        .filter(|s| s.status == StepStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 2);
    assert!(failed.iter().all(|s| s.code == "HR_ONBOARDING"));
    assert_eq!(
        steps.iter().filter(|s| s.status == StepStatus::Ok).count(),
        1
    );

    // Copying again changes nothing.
    let x = exec(false);
    let rows = ops_grant::copy_acl(&x, &src, Some(&sidp), &dst, &didp, "HR_ONBOARDING")
        .await
        .unwrap();
    assert_eq!(rows[0].status, GrantStatus::Unchanged);
    assert!(
        !x.record()
            .steps()
            .iter()
            .any(|s| s.status == StepStatus::Ok)
    );

    // Without the source domain, display names are used: Jane Doe is found by display name.
    let mut b2 = Acl::default();
    b2.administrators
        .allowed
        .push(principal("stale-id", "Jane Doe", "user"));
    src.put_project_acl("HR_ONBOARDING", &b2).await.unwrap();
    let rows = ops_grant::copy_acl(&exec(false), &src, None, &dst, &didp, "HR_ONBOARDING")
        .await
        .unwrap();
    assert_eq!(rows[0].target_id.as_deref(), Some(jane_b.as_str()));
    assert_eq!(rows[0].status, GrantStatus::Granted);
}

async fn idp_group_id(idp: &IdentityClient, name: &str) -> String {
    idp.find(PrincipalKind::Group, name)
        .await
        .unwrap()
        .unwrap()
        .id
}

#[test]
fn role_map_files_load() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("team-a.csv");
    std::fs::write(
        &p,
        "email,role,project\njane@example.com,ServiceDeveloper,\n",
    )
    .unwrap();
    let m = RoleMap::load(&p).unwrap();
    assert_eq!(m.entries.len(), 1);
    assert_eq!(m.entries[0].project, None);
    let e = RoleMap::load(Path::new("/nonexistent/roles.csv"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("role map /nonexistent/roles.csv: cannot read"),
        "{e}"
    );
}
