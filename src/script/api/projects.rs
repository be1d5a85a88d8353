//! OIC 3 projects (with their deployments), lookups, libraries and packages: list them and pass
//! them to `export_archives`; their archives go back with `import_archives`.

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use super::oic::{Instance, oic_err};
use super::{getter, global};
use crate::oic::{Library, Lookup, Package, Project};
use crate::script::errors::{self, Ctx};

fn deployments(p: &Project) -> Array {
    p.deployments
        .iter()
        .map(|d| {
            let mut m = Map::new();
            m.insert("code".into(), d.code.clone().into());
            m.insert("name".into(), d.name.clone().into());
            m.insert(
                "integrations".into(),
                d.integrations
                    .iter()
                    .map(|i| Dynamic::from(i.to_string()))
                    .collect::<Array>()
                    .into(),
            );
            Dynamic::from_map(m)
        })
        .collect()
}

pub fn register(e: &mut Engine) {
    e.register_type_with_name::<Project>("Project");
    e.register_type_with_name::<Lookup>("Lookup");
    e.register_type_with_name::<Library>("Library");
    register_packages(e);

    getter(
        "code",
        &["p: Project", "string"],
        "The project code (its id in paths).\n\n# Example\n```rhai\nprint(p.code);\n```",
    )
    .register_into_engine(e, |p: &mut Project| p.code.clone());
    getter(
        "name",
        &["p: Project", "string"],
        "The display name.\n\n# Example\n```rhai\nprint(p.name);\n```",
    )
    .register_into_engine(e, |p: &mut Project| p.name.clone());
    getter(
        "status",
        &["p: Project", "string"],
        "The project state (`DRAFT`, ...).\n\n# Example\n```rhai\nprint(p.status);\n```",
    )
    .register_into_engine(e, |p: &mut Project| p.status.clone());
    getter(
        "project_type",
        &["p: Project", "string"],
        "`DEVELOPED` or `ACCELERATOR`.\n\n# Example\n```rhai\nprint(p.project_type);\n```",
    )
    .register_into_engine(e, |p: &mut Project| p.project_type.clone());
    getter("deployments", &["p: Project", "Array"], "The project's deployments (labels): `#{ code, name, integrations: [\"CODE|VERSION\", ...] }` each.\n\n# Example\n```rhai\nfor d in p.deployments { print(d.code); }\n```")
        .register_into_engine(e, |p: &mut Project| deployments(p));
    global(
        "to_string",
        &["p: Project", "string"],
        "`CODE  STATUS  Name (n deployments)`.\n\n# Example\n```rhai\nprint(p);\n```",
    )
    .register_into_engine(e, |p: &mut Project| {
        format!(
            "{}  {}  {} ({} deployments)",
            p.code,
            p.status,
            p.name,
            p.deployments.len()
        )
    });

    getter(
        "name",
        &["l: Lookup", "string"],
        "The lookup name (its id).\n\n# Example\n```rhai\nprint(l.name);\n```",
    )
    .register_into_engine(e, |l: &mut Lookup| l.name.clone());
    getter(
        "columns",
        &["l: Lookup", "Array"],
        "The column (domain) names.\n\n# Example\n```rhai\nprint(l.columns);\n```",
    )
    .register_into_engine(e, |l: &mut Lookup| -> Array {
        l.columns.iter().cloned().map(Dynamic::from).collect()
    });
    getter(
        "rows",
        &["l: Lookup", "int"],
        "The number of rows.\n\n# Example\n```rhai\nprint(l.rows);\n```",
    )
    .register_into_engine(e, |l: &mut Lookup| l.row_count as i64);
    getter(
        "status",
        &["l: Lookup", "string"],
        "The lookup status.\n\n# Example\n```rhai\nprint(l.status);\n```",
    )
    .register_into_engine(e, |l: &mut Lookup| l.status.clone());
    global(
        "to_string",
        &["l: Lookup", "string"],
        "`NAME (n rows)`.\n\n# Example\n```rhai\nprint(l);\n```",
    )
    .register_into_engine(e, |l: &mut Lookup| {
        format!("{} ({} rows)", l.name, l.row_count)
    });

    getter(
        "id",
        &["l: Library", "string"],
        "`CODE|VERSION`.\n\n# Example\n```rhai\nprint(l.id);\n```",
    )
    .register_into_engine(e, |l: &mut Library| format!("{}|{}", l.code, l.version));
    getter(
        "code",
        &["l: Library", "string"],
        "The library code.\n\n# Example\n```rhai\nprint(l.code);\n```",
    )
    .register_into_engine(e, |l: &mut Library| l.code.clone());
    getter(
        "version",
        &["l: Library", "string"],
        "The library version.\n\n# Example\n```rhai\nprint(l.version);\n```",
    )
    .register_into_engine(e, |l: &mut Library| l.version.clone());
    getter(
        "name",
        &["l: Library", "string"],
        "The display name.\n\n# Example\n```rhai\nprint(l.name);\n```",
    )
    .register_into_engine(e, |l: &mut Library| l.display_name.clone());
    global(
        "to_string",
        &["l: Library", "string"],
        "`CODE|VERSION  Name`.\n\n# Example\n```rhai\nprint(l);\n```",
    )
    .register_into_engine(e, |l: &mut Library| {
        format!("{}|{}  {}", l.code, l.version, l.display_name)
    });

    global("projects", &["inst: Instance", "Array"], "The instance's projects (OIC 3 only).\n\n# Example\n```rhai\nfor p in dev.projects() { print(p); }\n```")
        .register_into_engine(e, |i: &mut Instance| -> Result<Array, Box<EvalAltResult>> {
            let list = i.host.read("list_projects", || i.client.list_projects(None))?.map_err(|e| oic_err(e, Ctx::instance(&i.name())))?;
            Ok(list.into_iter().map(Dynamic::from).collect())
        });
    global("project", &["inst: Instance", "code: string", "Project"], "One project by code (OIC 3); an error with `status` 404 when it does not exist.\n\n# Example\n```rhai\nlet p = dev.project(\"HR_CORE\");\nlet car = dev.export_archives(p, #{ label: p.deployments[0].code });\n```")
        .register_into_engine(e, |i: &mut Instance, code: ImmutableString| -> Result<Project, Box<EvalAltResult>> {
            let p = i.host.read("get_project", || i.client.get_project(&code))?.map_err(|e| oic_err(e, Ctx::instance(&i.name()).artifact(code.to_string())))?;
            p.ok_or_else(|| errors::script_error("http", Some(404), format!("project {code} does not exist on {}", i.name()), Ctx::instance(&i.name()).artifact(code.to_string())))
        });
    global(
        "lookups",
        &["inst: Instance", "Array"],
        "The instance's lookups.\n\n# Example\n```rhai\nlet all = dev.lookups();\n```",
    )
    .register_into_engine(e, |i: &mut Instance| -> Result<Array, Box<EvalAltResult>> {
        let list = i
            .host
            .read("list_lookups", || i.client.list_lookups(None))?
            .map_err(|e| oic_err(e, Ctx::instance(&i.name())))?;
        Ok(list.into_iter().map(Dynamic::from).collect())
    });
    global("libraries", &["inst: Instance", "Array"], "The instance's JavaScript libraries.\n\n# Example\n```rhai\nlet libs = dev.libraries();\n```")
        .register_into_engine(e, |i: &mut Instance| -> Result<Array, Box<EvalAltResult>> {
            let list = i.host.read("list_libraries", || i.client.list_libraries(None))?.map_err(|e| oic_err(e, Ctx::instance(&i.name())))?;
            Ok(list.into_iter().map(Dynamic::from).collect())
        });
}

/// The `Package` type (a Gen2 grouping of integrations) and `inst.packages()`, `inst.package(name)`.
fn register_packages(e: &mut Engine) {
    e.register_type_with_name::<Package>("Package");
    getter(
        "name",
        &["p: Package", "string"],
        "The package name (its id).\n\n# Example\n```rhai\nprint(p.name);\n```",
    )
    .register_into_engine(e, |p: &mut Package| p.name.clone());
    getter(
        "package_type",
        &["p: Package", "string"],
        "`DEVELOPED` or `PREBUILT`.\n\n# Example\n```rhai\nprint(p.package_type);\n```",
    )
    .register_into_engine(e, |p: &mut Package| p.package_type.clone());
    getter(
        "integrations",
        &["p: Package", "Array"],
        "The integrations it holds, as `\"CODE|VERSION\"`.\n\n# Example\n```rhai\nprint(p.integrations);\n```",
    )
    .register_into_engine(e, |p: &mut Package| -> Array {
        p.integrations
            .iter()
            .map(|i| Dynamic::from(format!("{}|{}", i.code, i.version)))
            .collect()
    });
    global(
        "to_string",
        &["p: Package", "string"],
        "`NAME (n integrations)`.\n\n# Example\n```rhai\nprint(p);\n```",
    )
    .register_into_engine(e, |p: &mut Package| {
        format!("{} ({} integrations)", p.name, p.integrations.len())
    });
    global("packages", &["inst: Instance", "Array"], "The instance's packages; each can be exported with `export_archives` and imported with `import_archives`.\n\n# Example\n```rhai\nlet pkgs = dev.packages();\nlet archives = dev.export_archives(pkgs);\n```")
        .register_into_engine(e, |i: &mut Instance| -> Result<Array, Box<EvalAltResult>> {
            let list = i.host.read("list_packages", || i.client.list_packages(None))?.map_err(|e| oic_err(e, Ctx::instance(&i.name())))?;
            Ok(list.into_iter().map(Dynamic::from).collect())
        });
    global("get_package", &["inst: Instance", "name: string", "Package"], "One package by name (`package` is a reserved word in Rhai); an error with `status` 404 when it does not exist.\n\n# Example\n```rhai\nlet p = dev.get_package(\"fin.payables\");\nprod.import_archives(dev.export_archives(p), #{ activate: false });\n```")
        .register_into_engine(e, |i: &mut Instance, name: ImmutableString| -> Result<Package, Box<EvalAltResult>> {
            let p = i.host.read("get_package", || i.client.get_package(&name))?.map_err(|e| oic_err(e, Ctx::instance(&i.name()).artifact(name.to_string())))?;
            p.ok_or_else(|| errors::script_error("http", Some(404), format!("package {name} does not exist on {}", i.name()), Ctx::instance(&i.name()).artifact(name.to_string())))
        });
}
