//! OIC 3 projects through the OIC client (export `.car`, import, ACL, project integrations),
//! against the real emulator over HTTP.

use crate::support::emulator::*;

use ferry::artifact::{ArtifactKind, hash_file};
use ferry::oic::{ImportAction, ImportMode, IntegrationId, ProjectExport, archive};
use ferry::sim::{Seed, SimHandle};

async fn landscape() -> SimHandle {
    start(vec![
        spec("dev3", 3, Seed::Sample),
        spec("prod3", 3, Seed::TargetConnections),
        spec("dev2", 2, Seed::Sample),
    ])
    .await
}

const P: &str = "HR_ONBOARDING";

#[tokio::test]
async fn list_get_and_gen2_refusal() {
    let h = landscape().await;
    let dev = client(&h, "dev3");
    let all = dev.list_projects(None).await.expect("list");
    assert!(all.iter().any(|p| p.code == P), "{all:?}");
    let p = dev.get_project(P).await.unwrap().expect("exists");
    assert_eq!(p.name, "HR Onboarding");
    assert_eq!(p.project_type, "DEVELOPED");
    let d = p
        .deployments
        .iter()
        .find(|d| d.code == "HR-ONB-REL1")
        .expect("deployment");
    assert_eq!(d.integrations.len(), 2);
    assert!(dev.get_project("NOPE").await.unwrap().is_none());
    let ints = dev
        .list_project_integrations(P, None)
        .await
        .expect("project integrations");
    assert_eq!(ints.len(), 3);
    let e = client(&h, "dev2").list_projects(None).await.unwrap_err();
    assert_eq!(e.kind(), "config", "{e}");
}

#[tokio::test]
async fn export_by_deployment_and_whole() {
    let h = landscape().await;
    let dev = client(&h, "dev3");
    let a = dev
        .export_project(
            P,
            &ProjectExport {
                label: Some("HR-ONB-REL1".into()),
                ..ProjectExport::default()
            },
        )
        .await
        .expect("export label");
    assert_eq!(a.key.kind, ArtifactKind::Project);
    assert_eq!(
        (a.key.code.as_str(), a.key.version.as_str()),
        (P, "HR-ONB-REL1")
    );
    assert_eq!(hash_file(a.path()).unwrap(), (a.size, a.sha256.clone()));
    let info = archive::inspect_project(a.path()).unwrap();
    assert_eq!(info.code, P);
    assert_eq!(
        info.integrations,
        vec![
            "ONB_CREATE_ACCOUNT_01.00.0000",
            "ONB_WELCOME_MAIL_01.00.0000"
        ]
    );
    let whole = dev
        .export_project(P, &ProjectExport::default())
        .await
        .expect("export whole");
    assert_eq!(whole.key.version, "");
    assert_eq!(
        archive::inspect_project(whole.path())
            .unwrap()
            .integrations
            .len(),
        3
    );
    let e = dev
        .export_project("NOPE", &ProjectExport::default())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");
}

#[tokio::test]
async fn import_new_acl_and_replace_keeps_the_acl() {
    let h = landscape().await;
    let dev = client(&h, "dev3");
    let prod = client(&h, "prod3");
    let a = dev
        .export_project(
            P,
            &ProjectExport {
                label: Some("HR-ONB-REL1".into()),
                ..ProjectExport::default()
            },
        )
        .await
        .unwrap();

    let out = prod
        .import_project(&a, ImportMode::Overwrite)
        .await
        .expect("import new");
    assert_eq!(out.action, ImportAction::Created);
    let p = prod.get_project(P).await.unwrap().expect("imported");
    assert_eq!(p.name, "HR Onboarding");
    assert_eq!(
        prod.list_project_integrations(P, None).await.unwrap().len(),
        2
    );
    assert_eq!(
        prod.import_project(&a, ImportMode::SkipExisting)
            .await
            .unwrap()
            .action,
        ImportAction::Skipped
    );

    // ACL: copy dev's, add a viewer group, read it back
    let mut acl = dev.get_project_acl(P).await.expect("acl");
    assert!(
        !acl.administrators.allowed.is_empty() || acl.administrators.allow_all,
        "{acl:?}"
    );
    acl.viewers.allow_all = false;
    acl.viewers.allowed = acl.administrators.allowed.clone();
    prod.put_project_acl(P, &acl).await.expect("put acl");
    let back = prod.get_project_acl(P).await.unwrap();
    assert!(!back.viewers.allow_all);
    assert_eq!(
        back.viewers
            .allowed
            .iter()
            .map(|p| &p.id)
            .collect::<Vec<_>>(),
        acl.viewers
            .allowed
            .iter()
            .map(|p| &p.id)
            .collect::<Vec<_>>()
    );

    // replace (no replace API: delete + import) and the ACL survives
    let out = prod
        .import_project(&a, ImportMode::Overwrite)
        .await
        .expect("replace");
    assert_eq!(out.action, ImportAction::Replaced);
    let after = prod.get_project_acl(P).await.unwrap();
    assert!(!after.viewers.allow_all);
    assert_eq!(after.viewers.allowed.len(), acl.viewers.allowed.len());
}

#[tokio::test]
async fn project_integrations_activate_and_replace_deactivates() {
    let h = landscape().await;
    let dev = client(&h, "dev3");
    let wm = IntegrationId::new("ONB_WELCOME_MAIL", "01.00.0000");
    assert!(dev.get_project_integration(P, &wm).await.unwrap().is_some());
    assert_eq!(
        dev.activate_in_project(P, &wm, &async_activation())
            .await
            .expect("activate"),
        "ACTIVATED"
    );
    assert_eq!(
        dev.activation_status_in_project(P, &wm).await.unwrap(),
        "ACTIVATED"
    );
    // the global space does not hold project integrations
    assert!(dev.get_integration(&wm).await.unwrap().is_none());
    // a project with active integrations cannot be deleted...
    let e = dev.delete_project(P).await.unwrap_err();
    assert_eq!(e.status(), Some(412), "{e}");
    // ...but a replace deactivates them first
    let whole = dev
        .export_project(P, &ProjectExport::default())
        .await
        .unwrap();
    let out = dev
        .import_project(&whole, ImportMode::Overwrite)
        .await
        .expect("replace in place");
    assert_eq!(out.action, ImportAction::Replaced);
    let ints = dev.list_project_integrations(P, None).await.unwrap();
    assert_eq!(ints.len(), 3);
    assert!(
        ints.iter().all(|i| i.status != "ACTIVATED"),
        "{:?}",
        ints.iter().map(|i| (&i.id, &i.status)).collect::<Vec<_>>()
    );
    dev.deactivate_in_project(P, &wm)
        .await
        .expect("412 on an inactive one is fine");
}
