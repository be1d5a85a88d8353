//! Lookups, libraries and monitoring through the OIC client, against the real emulator over HTTP.

use crate::support::emulator::*;

use std::time::Duration;

use ferry::artifact::{ArtifactKind, hash_file};
use ferry::oic::{ActivateOptions, ImportAction, ImportMode};
use ferry::sim::{Seed, SimHandle};

async fn landscape() -> SimHandle {
    start(vec![
        spec("dev2", 2, Seed::Sample),
        spec("dev3", 3, Seed::Sample),
        spec("new2", 2, Seed::TargetConnections),
        spec("new3", 3, Seed::TargetConnections),
    ])
    .await
}

#[tokio::test]
async fn lookups_export_and_import() {
    let h = landscape().await;
    for (src, dst) in [("dev2", "new2"), ("dev3", "new3")] {
        let s = client(&h, src);
        let t = client(&h, dst);
        let all = s.list_lookups(None).await.expect("list");
        assert!(all.iter().any(|l| l.name == "COUNTRY_CODES"), "{all:?}");
        let l = s
            .get_lookup("COUNTRY_CODES")
            .await
            .unwrap()
            .expect("exists");
        assert_eq!(l.columns, vec!["HCM", "ERP"]);
        assert_eq!(l.row_count, 3);
        assert!(s.get_lookup("NOPE").await.unwrap().is_none());

        let a = s.export_lookup("COUNTRY_CODES").await.expect("export");
        assert_eq!(a.key.kind, ArtifactKind::Lookup);
        assert_eq!(a.key.code, "COUNTRY_CODES");
        assert_eq!(hash_file(a.path()).unwrap(), (a.size, a.sha256.clone()));
        assert_eq!(a.file_name(), "COUNTRY_CODES.csv");

        assert!(t.get_lookup("COUNTRY_CODES").await.unwrap().is_none());
        assert_eq!(
            t.import_lookup(&a, ImportMode::Overwrite)
                .await
                .expect("create")
                .action,
            ImportAction::Created
        );
        let copy = t
            .get_lookup("COUNTRY_CODES")
            .await
            .unwrap()
            .expect("imported");
        assert_eq!(
            (copy.columns.clone(), copy.row_count),
            (l.columns.clone(), l.row_count)
        );
        assert_eq!(
            t.import_lookup(&a, ImportMode::SkipExisting)
                .await
                .unwrap()
                .action,
            ImportAction::Skipped
        );
        assert_eq!(
            t.import_lookup(&a, ImportMode::Overwrite)
                .await
                .expect("replace")
                .action,
            ImportAction::Replaced
        );
        let e = s.export_lookup("NOPE").await.unwrap_err();
        assert_eq!(e.status(), Some(404), "{e}");
    }
}

#[tokio::test]
async fn libraries_export_and_import() {
    let h = landscape().await;
    for (src, dst) in [("dev2", "new2"), ("dev3", "new3")] {
        let s = client(&h, src);
        let t = client(&h, dst);
        let du = id("DATE_UTILS|01.00.0000");
        let libs = s.list_libraries(None).await.expect("list");
        let lib = libs
            .iter()
            .find(|l| l.id == "DATE_UTILS|01.00.0000")
            .expect("seeded library");
        assert_eq!(lib.display_name, "Date Utils");
        assert_eq!(lib.library_type, "API");
        assert!(
            s.get_library(&id("NOPE|01.00.0000"))
                .await
                .unwrap()
                .is_none()
        );

        let a = s.export_library(&du).await.expect("export");
        assert_eq!(a.key.kind, ArtifactKind::Library);
        assert_eq!(
            (a.key.code.as_str(), a.key.version.as_str()),
            ("DATE_UTILS", "01.00.0000")
        );
        assert_eq!(hash_file(a.path()).unwrap(), (a.size, a.sha256.clone()));
        zip::ZipArchive::new(std::fs::File::open(a.path()).unwrap()).expect("a .jar is a zip");

        assert_eq!(
            t.import_library(&a, Some("Date Utils"), ImportMode::Overwrite)
                .await
                .expect("create")
                .action,
            ImportAction::Created
        );
        let copy = t.get_library(&du).await.unwrap().expect("imported");
        assert_eq!(copy.display_name, "Date Utils");
        assert_eq!(
            t.import_library(&a, None, ImportMode::SkipExisting)
                .await
                .unwrap()
                .action,
            ImportAction::Skipped
        );
        assert_eq!(
            t.import_library(&a, None, ImportMode::Overwrite)
                .await
                .expect("replace")
                .action,
            ImportAction::Replaced
        );
        let back = t.export_library(&du).await.unwrap();
        assert_eq!(
            back.sha256, a.sha256,
            "{dst}: the jar went through unchanged"
        );
    }
}

#[tokio::test]
async fn monitoring_stats_after_a_migration() {
    let h = landscape().await;
    for (src, dst) in [("dev2", "new2"), ("dev3", "new3")] {
        let s = client(&h, src);
        let t = client(&h, dst);
        let sync = id("HR_EMPLOYEE_SYNC|01.00.0000");
        let st = s
            .integration_stats(&sync, "1d")
            .await
            .expect("stats")
            .expect("exists");
        assert_eq!(st.id, "HR_EMPLOYEE_SYNC|01.00.0000");
        assert_eq!(st.flow_status, "ACTIVATED");
        assert!(st.received > 0, "{st:?}");
        assert_eq!(st.received, st.succeeded + st.errors + st.aborted);
        assert!(st.success_rate > 0.0 && st.success_rate <= 100.0);
        assert!(
            s.integration_stats(&id("NOPE|01.00.0000"), "1d")
                .await
                .unwrap()
                .is_none()
        );
        let e = s.integration_stats(&sync, "7y").await.unwrap_err();
        assert_eq!(e.status(), Some(400), "{e}");
        let all = s
            .list_integration_stats(Some("{timewindow:'1d'}"))
            .await
            .expect("summary");
        assert!(all.iter().any(|x| x.id == st.id), "{all:?}");

        // migrated and activated on the target: present, and clean
        let a = s.export_integration(&sync).await.unwrap();
        t.import_integration(&a, ImportMode::Overwrite)
            .await
            .unwrap();
        let opts = ActivateOptions {
            async_mode: true,
            timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(50),
            tracing: None,
            payload_tracing: None,
        };
        assert_eq!(t.activate(&sync, &opts).await.unwrap(), "ACTIVATED");
        let fresh = t
            .integration_stats(&sync, "1h")
            .await
            .unwrap()
            .expect("listed on the target");
        assert_eq!(fresh.errors, 0);
        assert_eq!(fresh.flow_status, "ACTIVATED");
    }
}

#[tokio::test]
async fn packages_export_and_import() {
    let h = landscape().await;
    for (src, dst) in [("dev2", "new2"), ("dev3", "new3")] {
        let s = client(&h, src);
        let t = client(&h, dst);
        let pkgs = s.list_packages(None).await.expect("list");
        let p = pkgs
            .iter()
            .find(|p| p.name == "fin.payables")
            .expect("seeded package");
        assert!(!p.integrations.is_empty());
        assert!(s.get_package("nope").await.unwrap().is_none());
        let a = s.export_package("fin.payables").await.expect("export");
        assert_eq!(a.key.kind, ArtifactKind::Package);
        assert_eq!(a.file_name(), "fin.payables.par");
        assert_eq!(
            t.import_package(&a, ImportMode::Overwrite)
                .await
                .expect("create")
                .action,
            ImportAction::Created
        );
        let copy = t
            .get_package("fin.payables")
            .await
            .unwrap()
            .expect("imported");
        assert_eq!(copy.integrations.len(), p.integrations.len());
        // activate one on the target; the replace deactivates it first
        let first = copy.integrations[0].integration_id().expect("id");
        let opts = ActivateOptions {
            async_mode: false,
            timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(50),
            tracing: None,
            payload_tracing: None,
        };
        assert_eq!(t.activate(&first, &opts).await.unwrap(), "ACTIVATED");
        assert_eq!(
            t.import_package(&a, ImportMode::SkipExisting)
                .await
                .unwrap()
                .action,
            ImportAction::Skipped
        );
        assert_eq!(
            t.import_package(&a, ImportMode::Overwrite)
                .await
                .expect("replace")
                .action,
            ImportAction::Replaced
        );
        assert_eq!(t.activation_status(&first).await.unwrap(), "CONFIGURED");
    }
}
