//! The OIC 3 project archive (`.car`, §11.2).
//!
//! Layout written and accepted by the emulator:
//!
//! ```text
//! project/project.yaml                       code, name, type, description, revision, assets
//! project/oic_project.properties             mod=<integrity hash over the whole archive>
//! project/rpa.zip                            an empty zip
//! project/connections/<CONN>.xml             as IAR appinstances (no secrets)
//! project/lookups/<NAME>.dvm
//! project/labels/<DEPLOYMENT>.json           {name, code, description, revision, integrations:[{code,version}]}
//! project/integrations/<CODE>_<VERSION>/info.json
//! project/integrations/<CODE>_<VERSION>/{ics_project_attributes.properties, PROJECT-INF/..., resources/..., schedule/...}
//! ```
//!
//! `project.yaml` values are JSON scalars (valid YAML). The integrity hash is the IAR one (see [`archive`]).

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::{Value, json};

use super::archive::{
    self, ArchiveError, ArchivedConnection, CAR_PROPS, Content, Entries, ParsedIar,
};
use super::state::{Connection, Deployment, Integration, Lookup, Project};

/// Project content parsed from a `.car`.
#[derive(Debug)]
pub struct ParsedCar {
    /// Project code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// `DEVELOPED` / `ACCELERATOR`.
    pub project_type: String,
    /// Connections.
    pub connections: Vec<ArchivedConnection>,
    /// Lookups.
    pub lookups: Vec<Lookup>,
    /// Deployments.
    pub deployments: Vec<Deployment>,
    /// Integrations with their rebuilt, sealed `.iar` bytes.
    pub integrations: Vec<(ParsedIar, Vec<u8>)>,
}

fn yaml_str(v: &str) -> String {
    serde_json::Value::String(v.to_string()).to_string()
}

/// The `project.yaml` text.
pub fn project_yaml(
    p: &Project,
    ints: &[&Integration],
    conns: &[&Connection],
    lookups: &[&Lookup],
    deps: &[&Deployment],
) -> String {
    let mut y = format!(
        "code: {}\nname: {}\ntype: {}\ndescription: {}\nrevision: 0\ncreated: {}\ncreatedBy: {}\nassets:\n",
        yaml_str(&p.code),
        yaml_str(&p.name),
        yaml_str(&p.project_type),
        yaml_str(&p.description),
        yaml_str(&super::state::oic_date(&p.created)),
        yaml_str(&p.created_by),
    );
    let list = |y: &mut String, key: &str, items: Vec<String>| {
        if items.is_empty() {
            y.push_str(&format!("  {key}: []\n"));
        } else {
            y.push_str(&format!("  {key}:\n"));
            for i in items {
                y.push_str(&format!("    - {}\n", yaml_str(&i)));
            }
        }
    };
    list(
        &mut y,
        "integrations",
        ints.iter().map(|i| i.id()).collect(),
    );
    list(
        &mut y,
        "connections",
        conns.iter().map(|c| c.code.clone()).collect(),
    );
    list(
        &mut y,
        "lookups",
        lookups.iter().map(|l| l.name.clone()).collect(),
    );
    list(
        &mut y,
        "deployments",
        deps.iter().map(|d| d.code.clone()).collect(),
    );
    y
}

/// Top-level `key: value` pairs of the emulator's `project.yaml` (values JSON-decoded when quoted).
pub fn parse_yaml_top(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with(' ') || line.starts_with('-') || line.trim_start().starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            let v = v.trim();
            let v = if v.starts_with('"') {
                serde_json::from_str::<String>(v)
                    .unwrap_or_else(|_| v.trim_matches('"').to_string())
            } else {
                v.trim_matches('\'').to_string()
            };
            out.insert(k.trim().to_string(), v);
        }
    }
    out
}

/// The deployment JSON (`labels/<CODE>.json`, and the API resource).
pub fn deployment_json(d: &Deployment) -> Value {
    json!({
        "code": d.code,
        "name": d.name,
        "description": d.description,
        "revision": 0,
        "integrations": d.integrations.iter().map(|(c, v)| json!({"code": c, "version": v})).collect::<Vec<_>>(),
        "robots": [],
        "decisions": [],
        "b2btradingpartners": [],
        "lastUpdated": super::state::oic_date(&d.last_updated),
    })
}

/// The IAR entries of an integration (from its stored archive, or generated).
pub fn iar_entries_of(
    i: &Integration,
    conns: &[Connection],
    lookups: &[Lookup],
) -> Result<Entries, ArchiveError> {
    match &i.archive {
        super::state::ArchiveSource::Stored(b) => archive::read_zip(b),
        super::state::ArchiveSource::Spilled(p) => {
            archive::read_zip(&std::fs::read(p).map_err(|e| ArchiveError::NotZip(e.to_string()))?)
        }
        super::state::ArchiveSource::Generated { padding } => {
            Ok(archive::iar_entries(i, conns, lookups, *padding))
        }
    }
}

/// Builds the (unsealed) entries of a `.car` for the selected integrations.
pub fn car_entries(
    p: &Project,
    ints: &[&Integration],
    conns: &[&Connection],
    lookups: &[&Lookup],
    deps: &[&Deployment],
) -> Result<Entries, ArchiveError> {
    let mut e: Entries = BTreeMap::new();
    e.insert(
        "project/project.yaml".into(),
        project_yaml(p, ints, conns, lookups, deps)
            .into_bytes()
            .into(),
    );
    e.insert(
        CAR_PROPS.into(),
        format!(
            "{}project_code={}\nproject_revision=0\n",
            archive::export_stamp(),
            p.code
        )
        .into_bytes()
        .into(),
    );
    e.insert(
        "project/rpa.zip".into(),
        archive::write_zip(&BTreeMap::new())?.into(),
    );
    for c in conns {
        e.insert(
            format!("project/connections/{}.xml", c.code),
            archive::connection_xml(c).into_bytes().into(),
        );
    }
    for l in lookups {
        e.insert(
            format!("project/lookups/{}.dvm", l.name),
            archive::lookup_dvm(l).into_bytes().into(),
        );
    }
    for d in deps {
        e.insert(
            format!("project/labels/{}.json", d.code),
            deployment_json(d).to_string().into_bytes().into(),
        );
    }
    let all_conns: Vec<Connection> = conns.iter().map(|c| (*c).clone()).collect();
    let all_lookups: Vec<Lookup> = lookups.iter().map(|l| (*l).clone()).collect();
    for i in ints {
        let dir = format!("{}_{}", i.code, i.version);
        let from = format!("icspackage/project/{dir}/");
        let to = format!("project/integrations/{dir}/");
        for (name, content) in iar_entries_of(i, &all_conns, &all_lookups)? {
            if let Some(rest) = name.strip_prefix(&from) {
                e.insert(format!("{to}{rest}"), content);
            } else if let Some(rest) = name.strip_prefix("icspackage/schedule/") {
                // (the integration's stamp is refreshed below with `restamp`)
                e.insert(format!("{to}schedule/{rest}"), content);
            }
        }
        let info = json!({
            "code": i.code,
            "version": i.version,
            "name": i.name,
            "description": i.description,
            "connections": i.connections.iter().map(|c| json!({"code": c.code, "role": c.role})).collect::<Vec<_>>(),
            "lookups": i.lookups,
        });
        e.insert(
            format!("{to}info.json"),
            info.to_string().into_bytes().into(),
        );
    }
    archive::restamp(&mut e);
    Ok(e)
}

/// Validates and parses a `.car`.
pub fn parse_car(bytes: &[u8]) -> Result<ParsedCar, ArchiveError> {
    let entries = archive::read_zip(bytes)?;
    let yaml = entries
        .get("project/project.yaml")
        .ok_or_else(|| ArchiveError::Layout("missing project/project.yaml".into()))?;
    let top = parse_yaml_top(&String::from_utf8_lossy(yaml.bytes()));
    let code = top
        .get("code")
        .filter(|c| !c.is_empty())
        .cloned()
        .ok_or_else(|| ArchiveError::Layout("project.yaml has no code".into()))?;
    let props = entries
        .get(CAR_PROPS)
        .ok_or_else(|| ArchiveError::Layout("missing project/oic_project.properties".into()))?;
    let stored = archive::parse_properties(&String::from_utf8_lossy(props.bytes()))
        .get("mod")
        .cloned()
        .ok_or_else(|| ArchiveError::Layout("missing mod".into()))?;
    if archive::integrity_hash(&entries) != stored {
        return Err(ArchiveError::Integrity);
    }
    let parts = car_parts(&entries)?;
    let mut integrations = Vec::new();
    for (dir, files) in &parts.int_dirs {
        let bytes = archive::seal_and_zip(integration_iar(dir, files, &parts))?;
        let parsed = archive::parse_iar(&bytes)?;
        integrations.push((parsed, bytes));
    }
    Ok(ParsedCar {
        name: top.get("name").cloned().unwrap_or_else(|| code.clone()),
        description: top.get("description").cloned().unwrap_or_default(),
        project_type: top
            .get("type")
            .cloned()
            .unwrap_or_else(|| "DEVELOPED".into()),
        code,
        connections: parts.connections,
        lookups: parts.lookups,
        deployments: parts.deployments,
        integrations,
    })
}

/// The parts of a project archive: its connections and lookups (parsed, and their files by
/// code and name), its deployments, and the files of each integration folder.
#[derive(Default)]
struct CarParts {
    connections: Vec<ArchivedConnection>,
    conn_xml: BTreeMap<String, Vec<u8>>,
    lookups: Vec<Lookup>,
    dvms: BTreeMap<String, Vec<u8>>,
    deployments: Vec<Deployment>,
    int_dirs: BTreeMap<String, Entries>,
}

/// Sorts the entries of a project archive into its [`CarParts`].
fn car_parts(entries: &Entries) -> Result<CarParts, ArchiveError> {
    let mut p = CarParts::default();
    for (name, content) in entries {
        let text = String::from_utf8_lossy(content.bytes()).to_string();
        if let Some(f) = name.strip_prefix("project/connections/") {
            let c = archive::parse_connection_xml(&text, f.trim_end_matches(".xml"));
            p.conn_xml.insert(c.code.clone(), content.bytes().to_vec());
            p.connections.push(c);
        } else if let Some(f) = name.strip_prefix("project/lookups/") {
            let l = archive::parse_dvm(&text, f.trim_end_matches(".dvm"));
            p.dvms.insert(l.name.clone(), content.bytes().to_vec());
            p.lookups.push(l);
        } else if name.starts_with("project/labels/") {
            p.deployments.push(parse_deployment(name, &text)?);
        } else if let Some(rest) = name.strip_prefix("project/integrations/")
            && let Some((dir, file)) = rest.split_once('/')
        {
            p.int_dirs
                .entry(dir.to_string())
                .or_default()
                .insert(file.to_string(), content.clone());
        }
    }
    Ok(p)
}

/// A deployment (`project/labels/NAME.json`).
fn parse_deployment(name: &str, text: &str) -> Result<Deployment, ArchiveError> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| ArchiveError::Layout(format!("{name}: {e}")))?;
    let code = v["code"].as_str().unwrap_or_default().to_string();
    Ok(deployment_from(&v, code))
}

/// A deployment from its JSON (a `.car`'s label file or an API body) once its code is known.
pub fn deployment_from(v: &Value, code: String) -> Deployment {
    Deployment {
        name: v["name"].as_str().unwrap_or(&code).to_string(),
        description: v["description"].as_str().unwrap_or_default().to_string(),
        integrations: v["integrations"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|i| {
                        (
                            i["code"].as_str().unwrap_or_default().to_string(),
                            i["version"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        code,
        last_updated: Utc::now(),
    }
}

/// The `.iar` entries of the integration folder `dir` (`files`): its flow, its schedule, and the
/// connections and lookups its `info.json` names, from the project's `parts`.
fn integration_iar(dir: &str, files: &Entries, parts: &CarParts) -> Entries {
    let info: Value = files
        .get("info.json")
        .and_then(|c| serde_json::from_slice(c.bytes()).ok())
        .unwrap_or(Value::Null);
    let mut iar: Entries = BTreeMap::new();
    for (file, content) in files {
        if file == "info.json" {
            continue;
        }
        if let Some(rest) = file.strip_prefix("schedule/") {
            iar.insert(format!("icspackage/schedule/{rest}"), content.clone());
        } else {
            iar.insert(format!("icspackage/project/{dir}/{file}"), content.clone());
        }
    }
    for c in info["connections"].as_array().into_iter().flatten() {
        if let Some(code) = c["code"].as_str()
            && let Some(x) = parts.conn_xml.get(code)
        {
            iar.insert(
                format!("icspackage/appinstances/{code}.xml"),
                Content::Bytes(x.clone()),
            );
        }
    }
    for l in info["lookups"].as_array().into_iter().flatten() {
        if let Some(name) = l.as_str()
            && let Some(x) = parts.dvms.get(name)
        {
            iar.insert(
                format!("icspackage/dvms/{name}.dvm"),
                Content::Bytes(x.clone()),
            );
        }
    }
    iar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployment_label_reads_with_defaults() {
        let d = parse_deployment(
            "project/labels/R1.json",
            r#"{"code":"R1","integrations":[{"code":"A","version":"01.00.0000"}]}"#,
        )
        .expect("parses");
        assert_eq!((d.code.as_str(), d.name.as_str()), ("R1", "R1"));
        assert_eq!(
            d.integrations,
            [("A".to_string(), "01.00.0000".to_string())]
        );
        assert!(parse_deployment("project/labels/x.json", "not json").is_err());
    }

    #[test]
    fn an_integration_folder_becomes_an_iar_with_what_its_info_names() {
        let mut parts = CarParts::default();
        parts.conn_xml.insert("C1".into(), b"<c1/>".to_vec());
        parts.conn_xml.insert("C2".into(), b"<c2/>".to_vec());
        parts.dvms.insert("L1".into(), b"<dvm/>".to_vec());
        let mut files: Entries = BTreeMap::new();
        files.insert(
            "info.json".into(),
            Content::Bytes(br#"{"connections":[{"code":"C1"}],"lookups":["L1","L9"]}"#.to_vec()),
        );
        files.insert(
            "PROJECT-INF/project.xml".into(),
            Content::Bytes(b"<p/>".to_vec()),
        );
        files.insert("schedule/s.xml".into(), Content::Bytes(b"<s/>".to_vec()));
        let iar = integration_iar("A_01.00.0000", &files, &parts);
        let names: Vec<&str> = iar.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "icspackage/appinstances/C1.xml",
                "icspackage/dvms/L1.dvm",
                "icspackage/project/A_01.00.0000/PROJECT-INF/project.xml",
                "icspackage/schedule/s.xml",
            ]
        );
    }
}
