//! No panic on any input (issue 13, finding 3): property tests over the parsers that read what
//! others wrote — backup manifests, the config file, role maps, archive listings and the OIC API's
//! JSON. Each must return a value or an error for every input, never panic.

use std::io::Write;

use ferry::oic::{
    Connection, Integration, IntegrationId, IntegrationStats, Library, Lookup, Package, Project,
};
use ferry::rbac::RoleMap;
use ferry::vault::Manifest;
use proptest::prelude::*;
use serde_json::Value;

/// Any JSON value, with the keys the parsers look for among random ones.
fn json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("id".to_string()),
        Just("code".to_string()),
        Just("version".to_string()),
        Just("status".to_string()),
        Just("name".to_string()),
        Just("items".to_string()),
        Just("sha256".to_string()),
        Just("entries".to_string()),
        Just("lastUpdated".to_string()),
        Just("connectionProperties".to_string()),
        Just("deployments".to_string()),
        "\\PC{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,40}".prop_map(Value::from),
        "[0-9a-fé|.]{0,70}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A manifest that parses, to mutate.
fn manifest_json() -> Value {
    serde_json::json!({
        "format": 1, "job": "j", "date": "2026-11-26", "path": "OIC_Backups/2026/11/26/j",
        "ferry_version": "0.1.0", "recipe": "r.rhai", "run_by": "me", "sources": ["dev"],
        "encryption": {"method": "none", "recipients": []},
        "created_at": "2026-11-26T01:00:00Z", "finished_at": "2026-11-26T01:01:00Z",
        "entries": [{
            "kind": "integration", "code": "A", "version": "01.00.0000", "source": "dev",
            "source_status": "ACTIVATED", "size": 3, "sha256": "0".repeat(64),
            "stored_size": 3, "stored_sha256": "1".repeat(64), "encrypted": false,
            "exported_at": "2026-11-26T01:00:00Z", "path": "Integrations/A_01.00.0000.iar"
        }]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn manifests(bytes in prop::collection::vec(any::<u8>(), 0..512), v in json(),
                 field in "[a-z_]{2,14}", s in "\\PC{0,80}") {
        let _ = Manifest::parse(&bytes);
        let _ = Manifest::parse(v.to_string().as_bytes());
        // A valid manifest with one field of its entry replaced by any text.
        let mut m = manifest_json();
        m["entries"][0][field.as_str()] = Value::from(s.clone());
        if let Ok(parsed) = Manifest::parse(m.to_string().as_bytes()) {
            for e in &parsed.entries {
                prop_assert_eq!(e.sha256.len(), 64);
                prop_assert!(!e.path.split('/').any(|p| p == ".." || p.is_empty()));
            }
        }
    }

    #[test]
    fn configs(text in "\\PC{0,400}", key in "[a-z_]{1,20}", val in "\\PC{0,60}") {
        let base = std::path::Path::new("/nonexistent");
        let _ = ferry::config::Config::parse(&text, "ferry.toml", base);
        let toml = format!(
            "[instances.dev]\nbase_url = \"https://x.example\"\ngeneration = 3\n{key} = {val:?}\n\n[vaults.v]\nurl = {val:?}\n[mail]\n{key} = {val:?}\n"
        );
        let _ = ferry::config::Config::parse(&toml, "ferry.toml", base);
    }

    #[test]
    fn role_maps(text in "\\PC{0,300}", csv in "([a-z@.:]{0,12}(,[A-Za-z ]{0,12}){0,3}\n){0,6}") {
        let _ = RoleMap::parse_csv(&text, "roles.csv");
        let _ = RoleMap::parse_csv(&csv, "roles.csv");
    }

    #[test]
    fn oic_json(v in json(), id in "\\PC{0,30}") {
        let _ = Integration::from_json(v.clone());
        let _ = Connection::from_json(v.clone());
        let _ = Project::from_json(v.clone());
        let _ = Lookup::from_json(v.clone());
        let _ = Library::from_json(v.clone());
        let _ = Package::from_json(v.clone());
        let _ = IntegrationStats::from_json(v);
        let _ = IntegrationId::parse(&id);
    }

    #[test]
    fn archive_listings(bytes in prop::collection::vec(any::<u8>(), 0..2048),
                        names in prop::collection::vec("\\PC{0,40}", 0..6),
                        body in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&bytes).unwrap();
        let _ = ferry::oic::archive::inspect(f.path());
        let _ = ferry::oic::archive::inspect_project(f.path());
        let _ = ferry::oic::archive::check_zip(f.path());
        // A real zip with any entry names and contents.
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for n in &names {
            if z.start_file(n.as_str(), zip::write::SimpleFileOptions::default()).is_ok() {
                let _ = z.write_all(&body);
            }
        }
        let data = z.finish().unwrap().into_inner();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&data).unwrap();
        let _ = ferry::oic::archive::inspect(f.path());
        let _ = ferry::oic::archive::inspect_project(f.path());
    }
}
