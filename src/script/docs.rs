//! The reference of every script-visible module, function, method and property, generated from
//! the engine's metadata and doc comments (and the embedded `stdlib/` modules' own doc comments).

use rhai::Engine;
use serde::Serialize;
use serde_json::Value;

/// What an entry documents.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    Function,
    Method,
    Property,
}

/// One documented item.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    /// `oic`, `vault`, `log`, `Instance`, `Integration`, `global`, `stdlib:select`, ...
    pub group: String,
    pub name: String,
    pub kind: EntryKind,
    /// The signature as scripts call it: `oic::instance(name: string) -> Instance`,
    /// `Instance.export(items: Array) -> Array`, `Integration.code -> string`.
    pub signature: String,
    /// The doc comment, without comment markers.
    pub doc: String,
}

/// A module's own doc.
#[derive(Clone, Debug, Serialize)]
pub struct Group {
    pub name: String,
    pub doc: String,
}

fn clean_doc(v: &Value) -> String {
    let parts: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    parts
        .join("\n")
        .lines()
        .map(|l| {
            l.trim_start()
                .trim_start_matches("//!")
                .trim_start_matches("///")
                .strip_prefix(' ')
                .unwrap_or_else(|| {
                    l.trim_start()
                        .trim_start_matches("//!")
                        .trim_start_matches("///")
                })
        })
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

fn clean_type(t: &str) -> String {
    let t = t.trim().trim_start_matches("&mut ").trim();
    if let Some(inner) = t
        .strip_prefix("Result<")
        .and_then(|r| r.strip_suffix(", Box<EvalAltResult>>"))
    {
        return clean_type(inner);
    }
    match t {
        "ImmutableString" | "String" | "&str" => "string".into(),
        "i64" => "int".into(),
        "f64" => "float".into(),
        "Dynamic" => "any".into(),
        other => other.rsplit("::").next().unwrap_or(other).to_string(),
    }
}

/// Script types (the first parameter of their methods): a capitalised name that is not one of
/// Rhai's own containers.
fn is_host_type(t: &str) -> bool {
    t.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && !matches!(t, "Array" | "Map" | "Blob" | "FnPtr")
}

fn entry_from(group: &str, f: &Value) -> Option<Entry> {
    let name = f.get("name")?.as_str()?.to_string();
    let params: Vec<(String, String)> = f
        .get("params")
        .and_then(|p| p.as_array())
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p.get("name")
                            .and_then(|x| x.as_str())
                            .unwrap_or("_")
                            .to_string(),
                        clean_type(p.get("type").and_then(|x| x.as_str()).unwrap_or("any")),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let ret = f
        .get("returnType")
        .and_then(|x| x.as_str())
        .map(clean_type)
        .filter(|r| r != "()");
    let doc = clean_doc(f.get("docComments").unwrap_or(&Value::Null));
    let arrow = ret.as_ref().map(|r| format!(" -> {r}")).unwrap_or_default();
    if let Some(prop) = name.strip_prefix("get$") {
        let ty = params.first().map(|p| p.1.clone()).unwrap_or_default();
        return Some(Entry {
            group: ty.clone(),
            name: prop.to_string(),
            kind: EntryKind::Property,
            signature: format!("{ty}.{prop}{arrow}"),
            doc,
        });
    }
    let first_ty = params.first().map(|p| p.1.clone()).unwrap_or_default();
    if group == "global" && is_host_type(&first_ty) {
        let rest: Vec<String> = params
            .iter()
            .skip(1)
            .map(|(n, t)| format!("{n}: {t}"))
            .collect();
        return Some(Entry {
            group: first_ty.clone(),
            name: name.clone(),
            kind: EntryKind::Method,
            signature: format!("{first_ty}.{name}({}){arrow}", rest.join(", ")),
            doc,
        });
    }
    let all: Vec<String> = params.iter().map(|(n, t)| format!("{n}: {t}")).collect();
    let prefix = if group == "global" {
        String::new()
    } else {
        format!("{group}::")
    };
    Some(Entry {
        group: group.to_string(),
        name: name.clone(),
        kind: EntryKind::Function,
        signature: format!("{prefix}{name}({}){arrow}", all.join(", ")),
        doc,
    })
}

/// Every documented item: native modules, global functions, methods and properties, then the
/// embedded stdlib modules.
pub fn collect(engine: &Engine) -> (Vec<Group>, Vec<Entry>) {
    let json = engine.gen_fn_metadata_to_json(false).unwrap_or_default();
    let v: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
    let mut groups = vec![];
    let mut entries = vec![];
    if let Some(mods) = v.get("modules").and_then(|m| m.as_object()) {
        for (mname, m) in mods {
            groups.push(Group {
                name: mname.clone(),
                doc: clean_doc(&Value::Array(vec![
                    m.get("doc").cloned().unwrap_or(Value::Null),
                ])),
            });
            for f in m
                .get("functions")
                .and_then(|f| f.as_array())
                .into_iter()
                .flatten()
            {
                entries.extend(entry_from(mname, f));
            }
        }
    }
    for f in v
        .get("functions")
        .and_then(|f| f.as_array())
        .into_iter()
        .flatten()
    {
        entries.extend(entry_from("global", f));
    }
    for (mname, text) in super::resolver::STDLIB {
        let group = format!("stdlib:{mname}");
        let module_doc: String = text
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .map(|l| l.trim_start_matches("//!").trim())
            .collect::<Vec<_>>()
            .join("\n");
        groups.push(Group {
            name: group.clone(),
            doc: module_doc,
        });
        if let Ok(ast) = engine.compile(text) {
            for f in ast.iter_functions() {
                if f.name.starts_with("anon$") || f.access == rhai::FnAccess::Private {
                    continue;
                }
                let doc = clean_doc(&Value::Array(
                    f.comments
                        .iter()
                        .map(|c| Value::String(c.to_string()))
                        .collect(),
                ));
                entries.push(Entry {
                    group: group.clone(),
                    name: f.name.to_string(),
                    kind: EntryKind::Function,
                    signature: format!("{mname}::{}({})", f.name, f.params.join(", ")),
                    doc,
                });
            }
        }
    }
    entries.sort_by(|a, b| {
        (
            group_rank(&a.group),
            &a.group,
            &a.kind,
            &a.name,
            &a.signature,
        )
            .cmp(&(
                group_rank(&b.group),
                &b.group,
                &b.kind,
                &b.name,
                &b.signature,
            ))
    });
    (groups, entries)
}

fn group_rank(g: &str) -> u8 {
    match g {
        "global" => 0,
        g if g.starts_with("stdlib:") => 3,
        g if is_host_type(g) => 2,
        _ => 1,
    }
}

/// Plain text for a terminal.
pub fn render_text(groups: &[Group], entries: &[Entry]) -> String {
    let mut out = String::new();
    let mut current = String::new();
    for e in entries {
        if e.group != current {
            current = e.group.clone();
            out.push_str(&format!("\n== {current} ==\n"));
            if let Some(g) = groups.iter().find(|g| g.name == current)
                && !g.doc.is_empty()
            {
                out.push_str(&format!("{}\n", g.doc));
            }
            out.push('\n');
        }
        out.push_str(&format!("{}\n", e.signature));
        for l in e.doc.lines() {
            out.push_str(&format!("    {l}\n"));
        }
        out.push('\n');
    }
    out
}

/// Markdown, for `docs/api.md`.
pub fn render_markdown(groups: &[Group], entries: &[Entry]) -> String {
    let mut out = String::from(
        "# ferry script API\n\nGenerated by `ferry docs --format markdown`; do not edit by hand.\n",
    );
    let mut current = String::new();
    for e in entries {
        if e.group != current {
            current = e.group.clone();
            out.push_str(&format!("\n## `{current}`\n\n"));
            if let Some(g) = groups.iter().find(|g| g.name == current)
                && !g.doc.is_empty()
            {
                out.push_str(&format!("{}\n\n", g.doc));
            }
        }
        out.push_str(&format!("### `{}`\n\n{}\n\n", e.signature, e.doc));
    }
    out
}

/// The entries whose doc comment is missing or has no `# Example` block (a test keeps this empty).
pub fn undocumented(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .filter(|e| e.doc.trim().is_empty() || !e.doc.contains("# Example"))
        .map(|e| e.signature.clone())
        .collect()
}

/// Names to complete in the REPL: static modules with their functions, global functions, and
/// the methods and properties of each script type.
#[derive(Clone, Debug, Default)]
pub struct Names {
    /// `oic` -> `["instance", "instances"]`.
    pub modules: std::collections::BTreeMap<String, Vec<String>>,
    /// Global functions (`param`, `today`, ...).
    pub globals: Vec<String>,
    /// `Instance` -> `["export_archives", "integrations", "name", ...]`.
    pub members: std::collections::BTreeMap<String, Vec<String>>,
}

/// Every completable name, from the same entries as the reference.
pub fn names(entries: &[Entry]) -> Names {
    let mut n = Names::default();
    for e in entries {
        match e.kind {
            EntryKind::Method | EntryKind::Property => n
                .members
                .entry(e.group.clone())
                .or_default()
                .push(e.name.clone()),
            EntryKind::Function if e.group == "global" => n.globals.push(e.name.clone()),
            EntryKind::Function => {
                let m = e.group.strip_prefix("stdlib:").unwrap_or(&e.group);
                n.modules
                    .entry(m.to_string())
                    .or_default()
                    .push(e.name.clone())
            }
        }
    }
    for v in n.modules.values_mut().chain(n.members.values_mut()) {
        v.sort();
        v.dedup();
    }
    n.globals.sort();
    n.globals.dedup();
    n
}

/// Writes Rhai definition files (`.d.rhai`) for editors (the Rhai LSP, VS Code) into `dir`: one
/// for the global functions and one per static module, plus `stdlib.d.rhai` listing the embedded
/// stdlib modules' functions with their doc comments.
pub fn write_definitions(engine: &Engine, dir: &std::path::Path) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    engine
        .definitions()
        .include_standard_packages(false)
        .write_to_dir(dir)?;
    let mut stdlib = String::from(
        "module static;\n\n// The stdlib modules embedded in ferry: `import \"NAME\" as NAME;`\n",
    );
    for (mname, text) in super::resolver::STDLIB {
        stdlib.push_str(&format!("\n// ---- import \"{mname}\" as {mname}; ----\n"));
        if let Ok(ast) = engine.compile(text) {
            for f in ast.iter_functions() {
                if f.name.starts_with("anon$") || f.access == rhai::FnAccess::Private {
                    continue;
                }
                for c in f.comments.iter() {
                    stdlib.push_str(c);
                    stdlib.push('\n');
                }
                stdlib.push_str(&format!(
                    "// fn {mname}::{}({});\n",
                    f.name,
                    f.params.join(", ")
                ));
            }
        }
    }
    std::fs::write(dir.join("stdlib.d.rhai"), stdlib)?;
    let mut files: Vec<String> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    files.sort();
    Ok(files)
}
