//! `ferry vault diff`, `vault::diff` and `ferry diff INSTANCE JOB`: what changed between two
//! backups. Two jobs in a file vault hold archives built here in the emulator's `.iar` layout
//! (see src/sim/archive.rs): one unchanged (re-zipped with other timestamps), one whose mapping
//! and connections changed, one removed, one added.

use crate::support;
use crate::vault_suite;

use std::io::Write;
use std::path::Path;

use ferry::ops::vault_diff::{self, Change, DiffOptions, EntryKind};
use ferry::vault::{FileStore, Vault};
use serde_json::Value;
use support::{ferry, tempdir, text};

const XSL_V1: &str = "<xsl:stylesheet>\n<xsl:template match=\"/\">\n<out><xsl:value-of select=\"/in/a\"/></out>\n</xsl:template>\n</xsl:stylesheet>\n";
const XSL_V2: &str = "<xsl:stylesheet>\n<xsl:template match=\"/\">\n<out><xsl:value-of select=\"/in/b\"/></out>\n<extra/>\n</xsl:template>\n</xsl:stylesheet>\n";

fn project_xml(conns: &[(&str, &str)]) -> String {
    let apps: String = conns
        .iter()
        .enumerate()
        .map(|(i, (role, code))| format!(
            "<ns2:application name=\"application_{}\"><ns2:role>{role}</ns2:role><ns2:adapter><ns2:type>rest</ns2:type><ns2:code>{code}</ns2:code></ns2:adapter></ns2:application>\n",
            i + 1
        ))
        .collect();
    format!("<ns3:icsproject><ns2:icsflow>\n{apps}</ns2:icsflow></ns3:icsproject>\n")
}

/// An `.iar` in the emulator's layout; `minute` changes the zip timestamps only.
fn iar(code: &str, xsl: &str, conns: &[(&str, &str)], minute: u8) -> Vec<u8> {
    let p = format!("icspackage/project/{code}_01.00.0000/");
    let mut entries = vec![
        (
            format!("{p}ics_project_attributes.properties"),
            format!("project_code={code}\nproject_version=01.00.0000\n"),
        ),
        (format!("{p}PROJECT-INF/project.xml"), project_xml(conns)),
        (
            format!("{p}resources/processor_1/resourcegroup_1/req_0a1b2c.xsl"),
            xsl.to_string(),
        ),
    ];
    for (_, c) in conns {
        entries.push((
            format!("icspackage/appinstances/{c}.xml"),
            format!("<applicationInstance><instanceCode>{c}</instanceCode><connectionProperties><connectionProperty><name>connectionUrl</name><value>https://{}.example.com/api</value></connectionProperty></connectionProperties></applicationInstance>\n", c.to_lowercase()),
        ));
    }
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let t = zip::DateTime::from_date_and_time(2026, 11, 26, 10, minute, 0).unwrap();
    for (name, body) in entries {
        let o = zip::write::SimpleFileOptions::default().last_modified_time(t);
        w.start_file(name, o).unwrap();
        w.write_all(body.as_bytes()).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn day(d: &str) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap()
}

/// Two jobs: (older, newer) paths.
fn two_jobs(root: &Path) -> (String, String) {
    let v = Vault::with_store(
        std::sync::Arc::new(FileStore::new(root).unwrap()),
        ferry::vault::Encryption::None,
        ferry::vault::Decryption::None,
    );
    let a = |code: &str, bytes: Vec<u8>| vault_suite::integration(code, &bytes);
    let j1 = v
        .create_job("nightly", day("2026-11-25"), Default::default())
        .unwrap();
    j1.store(&a(
        "SAME",
        iar("SAME", XSL_V1, &[("TRIGGER", "REST_IN")], 1),
    ))
    .unwrap();
    j1.store(&a(
        "ORDERS",
        iar(
            "ORDERS",
            XSL_V1,
            &[("TRIGGER", "REST_IN"), ("INVOKE", "ERP_OLD")],
            1,
        ),
    ))
    .unwrap();
    j1.store(&a("GONE", iar("GONE", XSL_V1, &[], 1))).unwrap();
    let m1 = j1.finish().unwrap();
    let j2 = v
        .create_job("nightly", day("2026-11-26"), Default::default())
        .unwrap();
    j2.store(&a(
        "SAME",
        iar("SAME", XSL_V1, &[("TRIGGER", "REST_IN")], 2),
    ))
    .unwrap();
    j2.store(&a(
        "ORDERS",
        iar(
            "ORDERS",
            XSL_V2,
            &[("TRIGGER", "REST_IN"), ("INVOKE", "ERP_NEW")],
            2,
        ),
    ))
    .unwrap();
    j2.store(&a("NEW", iar("NEW", XSL_V1, &[], 2))).unwrap();
    let m2 = j2.finish().unwrap();
    (m1.path, m2.path)
}

#[test]
fn diff_names_the_changed_mapping_file() {
    let d = tempdir();
    let (p1, p2) = two_jobs(d.path());
    let v = Vault::with_store(
        std::sync::Arc::new(FileStore::new(d.path()).unwrap()),
        ferry::vault::Encryption::None,
        ferry::vault::Decryption::None,
    );
    let (r1, r2) = (v.open_job(&p1).unwrap(), v.open_job(&p2).unwrap());
    // The unchanged archive was exported with other timestamps: the same content, so the second
    // job shares the first one's bytes (and so their byte sha256) instead of storing it again.
    let entry = |r: &ferry::vault::JobReader, c: &str| {
        r.manifest()
            .entries
            .iter()
            .find(|e| e.code == c)
            .unwrap()
            .clone()
    };
    let sha = |r: &ferry::vault::JobReader, c: &str| {
        let e = entry(r, c);
        (e.sha256, e.content_sha256)
    };
    assert_eq!(sha(&r1, "SAME"), sha(&r2, "SAME"));
    assert!(entry(&r2, "SAME").shared.is_some());
    assert!(entry(&r2, "ORDERS").shared.is_none());
    assert_ne!(sha(&r1, "ORDERS").1, sha(&r2, "ORDERS").1);

    let diff = vault_diff::diff(&r1, &r2, &DiffOptions::default()).unwrap();
    assert_eq!(diff.unchanged, 1, "{diff:#?}");
    let codes =
        |v: &[vault_diff::ArtifactRef]| v.iter().map(|a| a.code.clone()).collect::<Vec<_>>();
    assert_eq!(codes(&diff.added), vec!["NEW"]);
    assert_eq!(codes(&diff.removed), vec!["GONE"]);
    assert_eq!(diff.changed.len(), 1);
    let c = &diff.changed[0];
    assert_eq!(c.code, "ORDERS");
    let x = c.contents.as_ref().unwrap();
    assert_eq!(x.connections_added, vec!["ERP_NEW"]);
    assert_eq!(x.connections_removed, vec!["ERP_OLD"]);
    assert!(
        x.endpoints_added.contains(&"INVOKE ERP_NEW".to_string()),
        "{x:#?}"
    );
    assert!(
        x.endpoints_added
            .contains(&"https://erp_new.example.com/api".to_string()),
        "{x:#?}"
    );
    let mapping = x
        .entries
        .iter()
        .find(|e| e.kind == EntryKind::Mapping)
        .expect("the mapping is named");
    assert_eq!(
        mapping.path,
        "project/resources/processor_1/resourcegroup_1/req_0a1b2c.xsl"
    );
    assert_eq!(mapping.change, Change::Changed);
    assert_eq!(
        (mapping.lines_added, mapping.lines_removed),
        (Some(2), Some(1))
    );
    assert!(
        x.entries
            .iter()
            .any(|e| e.path == "icspackage/appinstances/ERP_NEW.xml"
                && e.change == Change::Added
                && e.kind == EntryKind::Connection)
    );
    let t = diff.to_text();
    assert!(t.contains("~ mapping    project/resources/processor_1/resourcegroup_1/req_0a1b2c.xsl (+2 -1 lines)"), "{t}");
    assert!(t.contains("connections: +ERP_NEW -ERP_OLD"), "{t}");

    // Without details: only which artifacts changed.
    let brief = vault_diff::diff(&r1, &r2, &DiffOptions { details: false }).unwrap();
    assert!(brief.changed[0].contents.is_none());
}

fn config(dir: &Path) -> std::path::PathBuf {
    let cfg = dir.join("ferry.toml");
    std::fs::write(
        &cfg,
        format!(
            "[vaults.main]\nurl = \"file://{}\"\n",
            dir.join("vault").display()
        ),
    )
    .unwrap();
    cfg
}

#[test]
fn cli_and_script_diff() {
    let d = tempdir();
    let (p1, p2) = two_jobs(&d.path().join("vault"));
    let cfg = config(d.path());
    let cfg_s = cfg.display().to_string();
    let html = d.path().join("diff.html");
    let out = ferry(
        d.path(),
        &[
            "vault",
            "diff",
            &p1,
            &p2,
            "--config",
            &cfg_s,
            "--json",
            "--html",
            &html.display().to_string(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["changed"][0]["code"], "ORDERS");
    let entries = j["changed"][0]["contents"]["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "mapping"
                && e["path"].as_str().unwrap().ends_with("req_0a1b2c.xsl"))
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("req_0a1b2c.xsl") && page.contains("ORDERS"),
        "{page}"
    );

    let out = ferry(
        d.path(),
        &["vault", "diff", &p1, &p2, "--config", &cfg_s],
        &[],
    );
    let t = text(&out.stdout);
    assert!(
        t.contains("1 added, 1 removed, 1 changed, 1 unchanged"),
        "{t}"
    );
    assert!(t.contains("mapping") && t.contains("req_0a1b2c.xsl"), "{t}");

    // vault::diff in a recipe; the diff lands in the run's report.html.
    let script = d.path().join("diff.rhai");
    std::fs::write(
        &script,
        format!(
            "let v = vault::open(\"main\");\nlet d = vault::diff(v.job(\"{p1}\"), v.job(\"{p2}\"));\nprint(`changed ${{d.changed[0].code}} ${{d.changed[0].contents.entries.len()}}`);\n"
        ),
    )
    .unwrap();
    let out = ferry(
        d.path(),
        &["run", &script.display().to_string(), "--config", &cfg_s],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(all.contains("changed ORDERS"), "{all}");
    let reports = support::files_under(&d.path().join(".ferry"));
    let report = reports
        .iter()
        .find(|p| p.ends_with("report.html"))
        .expect("a report.html");
    let page = std::fs::read_to_string(report).unwrap();
    assert!(
        page.contains("req_0a1b2c.xsl") && page.contains("Changes"),
        "{page}"
    );
}

/// `ferry diff INSTANCE JOB` against the sandbox emulator: right after a backup nothing changed.
#[test]
fn instance_against_job() {
    let d = tempdir();
    support::sandbox_migrate(d.path());
    let jobs = support::sandbox_jobs(d.path());
    let job = jobs[0]["path"].as_str().unwrap().to_string();
    let n = jobs[0]["artifacts"].as_u64().unwrap();
    let out = ferry(d.path(), &["diff", "dev", &job, "--sandbox", "--json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["unchanged"].as_u64().unwrap(), n, "{j:#}");
    assert!(j["changed"].as_array().unwrap().is_empty(), "{j:#}");
    assert!(j["removed"].as_array().unwrap().is_empty(), "{j:#}");
    assert!(j["to"].as_str().unwrap().contains("dev"));
}
