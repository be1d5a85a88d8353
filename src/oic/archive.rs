//! Reading the identity out of OIC archives without loading them: `.iar` (integration) and
//! `.car` (OIC 3 project). Only the zip central directory and one small metadata entry are read.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::OicError;

/// Largest metadata entry read (properties / yaml), to stay safe on hostile archives.
const MAX_META: u64 = 1024 * 1024;

/// What an `.iar` says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveInfo {
    /// `project_code`.
    pub code: String,
    /// `project_version`.
    pub version: String,
    /// `project_name` (may be empty).
    pub name: String,
    /// `project_type` (may be empty).
    pub project_type: String,
    /// Connection codes from `icspackage/appinstances/<CODE>.xml`.
    pub connections: Vec<String>,
    /// Lookup names from `icspackage/dvms/<NAME>.dvm`.
    pub lookups: Vec<String>,
    /// Number of zip entries.
    pub entries: usize,
    /// It carries a schedule definition (`icspackage/schedule/`).
    pub scheduled: bool,
}

impl ArchiveInfo {
    /// `CODE|VERSION`.
    pub fn id(&self) -> String {
        format!("{}|{}", self.code, self.version)
    }
}

/// What a `.car` says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectArchiveInfo {
    /// The project code (`code:` in `project.yaml`).
    pub code: String,
    /// The project name (`name:` in `project.yaml`, may be empty).
    pub name: String,
    /// Integration folders `integrations/<CODE>_<VERSION>/`.
    pub integrations: Vec<String>,
    /// Number of zip entries.
    pub entries: usize,
}

fn err(path: &Path, message: impl Into<String>) -> OicError {
    OicError::Archive {
        artifact: path.display().to_string(),
        message: message.into(),
    }
}

fn open(path: &Path) -> Result<zip::ZipArchive<BufReader<File>>, OicError> {
    let f =
        File::open(path).map_err(|e| OicError::io(format!("cannot open {}", path.display()), e))?;
    zip::ZipArchive::new(BufReader::new(f))
        .map_err(|e| err(path, format!("not a valid zip archive: {e}")))
}

fn names(path: &Path, z: &zip::ZipArchive<BufReader<File>>) -> Result<Vec<String>, OicError> {
    z.file_names()
        .map(|n| {
            n.map(|c| c.into_owned())
                .map_err(|e| err(path, format!("bad zip entry name: {e}")))
        })
        .collect()
}

fn read_small(
    path: &Path,
    z: &mut zip::ZipArchive<BufReader<File>>,
    entry: &str,
) -> Result<String, OicError> {
    let f = z
        .by_name(entry)
        .map_err(|e| err(path, format!("cannot read {entry}: {e}")))?;
    let mut buf = Vec::new();
    f.take(MAX_META + 1)
        .read_to_end(&mut buf)
        .map_err(|e| err(path, format!("cannot read {entry}: {e}")))?;
    if buf.len() as u64 > MAX_META {
        return Err(err(
            path,
            format!("{entry} is larger than {MAX_META} bytes"),
        ));
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Checks that a file is a readable zip archive (central directory only); returns its entry count.
pub fn check_zip(path: &Path) -> Result<usize, OicError> {
    Ok(open(path)?.len())
}

/// Reads code, version and name from an `.iar`
/// (`icspackage/project/<CODE>_<VERSION>/ics_project_attributes.properties`) and checks that the
/// folder name matches the properties.
pub fn inspect(path: &Path) -> Result<ArchiveInfo, OicError> {
    let mut z = open(path)?;
    let names = names(path, &z)?;
    let mut dirs = BTreeSet::new();
    let mut connections = BTreeSet::new();
    let mut lookups = BTreeSet::new();
    for n in &names {
        if let Some(rest) = n.strip_prefix("icspackage/project/")
            && let Some((dir, _)) = rest.split_once('/')
            && !dir.is_empty()
        {
            dirs.insert(dir.to_string());
        } else if let Some(c) = n
            .strip_prefix("icspackage/appinstances/")
            .and_then(|r| r.strip_suffix(".xml"))
        {
            if !c.contains('/') && !c.is_empty() {
                connections.insert(c.to_string());
            }
        } else if let Some(l) = n
            .strip_prefix("icspackage/dvms/")
            .and_then(|r| r.strip_suffix(".dvm"))
            && !l.contains('/')
            && !l.is_empty()
        {
            lookups.insert(l.to_string());
        }
    }
    let dir = match dirs.len() {
        0 => {
            return Err(err(
                path,
                "not an integration archive (no icspackage/project/<CODE>_<VERSION>/ folder)",
            ));
        }
        1 => dirs.into_iter().next().unwrap_or_default(),
        _ => {
            return Err(err(
                path,
                format!(
                    "more than one integration folder in icspackage/project/: {}",
                    dirs.into_iter().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    };
    let entry = format!("icspackage/project/{dir}/ics_project_attributes.properties");
    if !names.contains(&entry) {
        return Err(err(
            path,
            format!("not an integration archive (missing {entry})"),
        ));
    }
    let props = parse_properties(&read_small(path, &mut z, &entry)?);
    let code = props.get("project_code").cloned().unwrap_or_default();
    let version = props.get("project_version").cloned().unwrap_or_default();
    if code.is_empty() || version.is_empty() {
        return Err(err(
            path,
            format!("{entry} has no project_code/project_version"),
        ));
    }
    if dir != format!("{code}_{version}") {
        return Err(err(
            path,
            format!("folder {dir} does not match project_code={code} project_version={version}"),
        ));
    }
    Ok(ArchiveInfo {
        name: props.get("project_name").cloned().unwrap_or_default(),
        project_type: props.get("project_type").cloned().unwrap_or_default(),
        code,
        version,
        connections: connections.into_iter().collect(),
        lookups: lookups.into_iter().collect(),
        entries: names.len(),
        scheduled: names.iter().any(|n| n.starts_with("icspackage/schedule/")),
    })
}

/// How an integration invokes another one (read from its archive).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum InvokeKind {
    /// Through the local integration adapter (a co-located integration, by code and version).
    Local,
    /// Through its REST endpoint (`/flows/rest/CODE/M.m/`), by code and major.minor version.
    Rest,
}

/// An integration an archive invokes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Invocation {
    /// Code of the integration called.
    pub code: String,
    /// `MM.mm.pppp` for a local call; `MM.mm` (major.minor) read from a REST path.
    pub version: String,
    pub kind: InvokeKind,
}

/// Most `.jca` entries read from one archive.
const MAX_JCA: usize = 500;

/// The integrations an `.iar` invokes: each invoke's `.jca` under `resources/` names them, as the
/// local integration adapter's `integrationCode`/`integrationVersion` properties, or as a
/// `RelativeURI` (or any URL) under `/ic/api/integration/v1/flows/rest/[project/P/]CODE/M.m/`.
/// Calls to itself are left out; each callee is listed once.
pub fn invocations(path: &Path) -> Result<Vec<Invocation>, OicError> {
    let info = inspect(path)?;
    let mut z = open(path)?;
    let names = names(path, &z)?;
    let prop = |xml: &str, name: &str| -> Option<String> {
        regex::Regex::new(&format!(r#"name\s*=\s*"{name}"\s+value\s*=\s*"([^"]*)""#))
            .ok()?
            .captures(xml)
            .map(|c| c[1].trim().to_string())
    };
    let rest = regex::Regex::new(
        r"/ic/api/integration/v1/flows/rest/(?:project/[^/]+/)?([A-Za-z0-9_\-]+)/(\d+)\.(\d+)",
    )
    .map_err(|e| err(path, e.to_string()))?;
    let mut out: Vec<Invocation> = vec![];
    for n in names
        .iter()
        .filter(|n| n.starts_with("icspackage/project/") && n.ends_with(".jca"))
        .take(MAX_JCA)
    {
        let xml = read_small(path, &mut z, n)?;
        let found = if let Some(code) = prop(&xml, "integrationCode") {
            Some(Invocation {
                code,
                version: prop(&xml, "integrationVersion").unwrap_or_default(),
                kind: InvokeKind::Local,
            })
        } else {
            rest.captures(&xml).map(|c| Invocation {
                code: c[1].to_string(),
                version: format!(
                    "{:02}.{:02}",
                    c[2].parse::<u32>().unwrap_or(0),
                    c[3].parse::<u32>().unwrap_or(0)
                ),
                kind: InvokeKind::Rest,
            })
        };
        if let Some(i) = found
            && i.code != info.code
            && !out.contains(&i)
        {
            out.push(i);
        }
    }
    Ok(out)
}

/// Reads the project code and name from a `.car` (`project/project.yaml`, or
/// `icspackage/project/project.yaml` in one observed variant).
pub fn inspect_project(path: &Path) -> Result<ProjectArchiveInfo, OicError> {
    let mut z = open(path)?;
    let names = names(path, &z)?;
    let root = ["project/", "icspackage/project/"]
        .into_iter()
        .find(|r| names.iter().any(|n| *n == format!("{r}project.yaml")))
        .ok_or_else(|| err(path, "not a project archive (no project/project.yaml)"))?;
    let yaml = read_small(path, &mut z, &format!("{root}project.yaml"))?;
    let top = parse_yaml_top(&yaml);
    let code = top.get("code").cloned().unwrap_or_default();
    if code.is_empty() {
        return Err(err(path, "project.yaml has no `code`"));
    }
    let mut integrations = BTreeSet::new();
    let prefix = format!("{root}integrations/");
    for n in &names {
        if let Some((d, _)) = n.strip_prefix(&prefix).and_then(|r| r.split_once('/'))
            && !d.is_empty()
        {
            integrations.insert(d.to_string());
        }
    }
    Ok(ProjectArchiveInfo {
        code,
        name: top.get("name").cloned().unwrap_or_default(),
        integrations: integrations.into_iter().collect(),
        entries: names.len(),
    })
}

/// Top-level `key: value` scalars of a simple YAML document (quotes removed).
fn parse_yaml_top(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t', '-', '#']) {
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            let v = v.trim();
            let v = if v.starts_with('"') {
                // a double-quoted YAML scalar is a JSON string in the plain cases
                serde_json::from_str::<String>(v)
                    .unwrap_or_else(|_| v.trim_matches('"').to_string())
            } else if let Some(x) = v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')) {
                x.replace("''", "'")
            } else {
                v.to_string()
            };
            out.entry(k.trim().to_string()).or_insert(v);
        }
    }
    out
}

/// Parses Java `.properties` text: `key=value`, `key: value` or `key value`, `#`/`!` comments,
/// backslash line continuations and escapes (`\uXXXX`, `\t`, `\n`, `\:`...).
pub(crate) fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let l = line.trim_start();
        if logical.is_empty() && (l.is_empty() || l.starts_with('#') || l.starts_with('!')) {
            continue;
        }
        // continuation: an odd number of trailing backslashes
        let trailing = l.chars().rev().take_while(|c| *c == '\\').count();
        if trailing % 2 == 1 {
            logical.push_str(&l[..l.len() - 1]);
            if lines.clone().next().is_some() {
                continue;
            }
        } else {
            logical.push_str(l);
        }
        let (k, v) = split_property(&logical);
        out.insert(unescape(&k), unescape(v.trim_start()));
        logical.clear();
    }
    out
}

fn split_property(l: &str) -> (String, &str) {
    let mut key = String::new();
    let mut chars = l.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                key.push('\\');
                if let Some((_, n)) = chars.next() {
                    key.push(n);
                }
            }
            '=' | ':' => return (key, &l[i + 1..]),
            ' ' | '\t' => {
                let rest = l[i..].trim_start();
                let rest = rest.strip_prefix(['=', ':']).unwrap_or(rest);
                return (key, rest);
            }
            _ => key.push(c),
        }
    }
    (key, "")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = it.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => out.push_str(&hex),
                }
            }
            Some(o) => out.push(o),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    fn build(entries: &[(&str, &str)]) -> tempfile::NamedTempFile {
        let t = tempfile::NamedTempFile::new().unwrap();
        let mut w = zip::ZipWriter::new(t.reopen().unwrap());
        for (n, c) in entries {
            w.start_file(*n, SimpleFileOptions::default()).unwrap();
            w.write_all(c.as_bytes()).unwrap();
        }
        w.finish().unwrap();
        t
    }

    const PROPS: &str = "#Generated\nproject_code=HELLO_WORLD\nproject_name=Hello\\u0020World\nproject_version=01.00.0000\nproject_type=DEVELOPED\nmod=abc\\=\\=\n";

    #[test]
    fn inspect_valid_iar() {
        let t = build(&[
            (
                "icspackage/project/HELLO_WORLD_01.00.0000/ics_project_attributes.properties",
                PROPS,
            ),
            (
                "icspackage/project/HELLO_WORLD_01.00.0000/PROJECT-INF/project.xml",
                "<x/>",
            ),
            ("icspackage/appinstances/SAMPLE_REST.xml", "<x/>"),
            ("icspackage/appinstances/ATP.xml", "<x/>"),
            ("icspackage/dvms/COUNTRIES.dvm", "<x/>"),
        ]);
        let i = inspect(t.path()).unwrap();
        assert_eq!(i.code, "HELLO_WORLD");
        assert_eq!(i.version, "01.00.0000");
        assert_eq!(i.name, "Hello World");
        assert_eq!(i.project_type, "DEVELOPED");
        assert_eq!(i.connections, vec!["ATP", "SAMPLE_REST"]);
        assert_eq!(i.lookups, vec!["COUNTRIES"]);
        assert_eq!(i.entries, 5);
        assert_eq!(i.id(), "HELLO_WORLD|01.00.0000");
    }

    #[test]
    fn inspect_rejects_bad_archives() {
        let mut t = tempfile::NamedTempFile::new().unwrap();
        t.write_all(b"{\"status\":\"HTTP 500\"}").unwrap();
        let e = inspect(t.path()).unwrap_err();
        assert_eq!(e.kind(), "archive");
        assert!(e.to_string().contains("not a valid zip"), "{e}");

        let t = build(&[("other/file.txt", "x")]);
        assert!(
            inspect(t.path())
                .unwrap_err()
                .to_string()
                .contains("not an integration archive")
        );

        let t = build(&[(
            "icspackage/project/OTHER_01.00.0000/ics_project_attributes.properties",
            PROPS,
        )]);
        let e = inspect(t.path()).unwrap_err().to_string();
        assert!(e.contains("does not match"), "{e}");

        let t = build(&[
            (
                "icspackage/project/A_01.00.0000/ics_project_attributes.properties",
                "project_code=A\nproject_version=01.00.0000\n",
            ),
            (
                "icspackage/project/B_01.00.0000/ics_project_attributes.properties",
                "project_code=B\nproject_version=01.00.0000\n",
            ),
        ]);
        assert!(
            inspect(t.path())
                .unwrap_err()
                .to_string()
                .contains("more than one")
        );

        let t = build(&[(
            "icspackage/project/A_01.00.0000/PROJECT-INF/project.xml",
            "<x/>",
        )]);
        assert!(
            inspect(t.path())
                .unwrap_err()
                .to_string()
                .contains("missing")
        );

        assert_eq!(check_zip(t.path()).unwrap(), 1);
        let e = inspect(Path::new("/nonexistent/x.iar")).unwrap_err();
        assert_eq!(e.kind(), "io");
    }

    #[test]
    fn inspect_car() {
        let t = build(&[
            (
                "project/project.yaml",
                "code: LAB_DEVOPS\nname: \"LAB \\u00c9 DEVOPS\"\ntype: DEVELOPED\nassets:\n  code: nested\n",
            ),
            ("project/integrations/HELLO_01.00.0000/info.json", "{}"),
        ]);
        let p = inspect_project(t.path()).unwrap();
        assert_eq!(p.code, "LAB_DEVOPS");
        assert_eq!(p.name, "LAB É DEVOPS");
        assert_eq!(p.integrations, vec!["HELLO_01.00.0000"]);
        let t = build(&[("icspackage/project/project.yaml", "code: 'P-1'\n")]);
        assert_eq!(inspect_project(t.path()).unwrap().code, "P-1");
        let t = build(&[("project/x", "")]);
        assert_eq!(inspect_project(t.path()).unwrap_err().kind(), "archive");
    }

    #[test]
    fn properties() {
        let p = parse_properties(
            "a = 1\nb:2\nc 3\n! c\n# x\nlong = one \\\n    two\nkey\\ with\\ space=v\nempty\nu=\\u00e9",
        );
        assert_eq!(p["a"], "1");
        assert_eq!(p["b"], "2");
        assert_eq!(p["c"], "3");
        assert_eq!(p["long"], "one two");
        assert_eq!(p["key with space"], "v");
        assert_eq!(p["empty"], "");
        assert_eq!(p["u"], "é");
    }
}
