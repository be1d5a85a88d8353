//! OIC 3 projects (with their deployments), lookups, libraries and packages: list them and pass
//! them to `export_archives`; their archives go back with `import_archives`.

use rhai::plugin::*;
use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use super::oic::Instance;
use super::{found, listed};
use crate::oic::{Library, Lookup, Package, Project};
use crate::script::errors::Ctx;

fn strings<T: ToString>(items: &[T]) -> Array {
    items.iter().map(|x| Dynamic::from(x.to_string())).collect()
}

fn deployments(p: &Project) -> Array {
    let one = |d: &crate::oic::Deployment| {
        let m = Map::from_iter([
            ("code".into(), d.code.clone().into()),
            ("name".into(), d.name.clone().into()),
            ("integrations".into(), strings(&d.integrations).into()),
        ]);
        Dynamic::from_map(m)
    };
    p.deployments.iter().map(one).collect()
}

/// Reading an instance's projects, lookups, libraries and packages.
#[export_module]
mod projects_api {
    use super::*;

    /// The instance's projects (OIC 3 only).
    ///
    /// # Example
    /// ```rhai
    /// for p in dev.projects() { print(p); }
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn projects(i: &mut Instance) -> Result<Array, Box<EvalAltResult>> {
        listed(i, "list_projects", || i.client.list_projects(None))
    }

    /// One project by code (OIC 3); an error with `status` 404 when it does not exist.
    ///
    /// # Example
    /// ```rhai
    /// let p = dev.project("HR_CORE");
    /// let car = dev.export_archives(p, #{ label: p.deployments[0].code });
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn project(i: &mut Instance, code: ImmutableString) -> Result<Project, Box<EvalAltResult>> {
        let r = i.host.read("get_project", || i.client.get_project(&code))?;
        found(
            r,
            "project",
            &code,
            Ctx::instance(&i.name()).artifact(code.as_str()),
        )
    }

    /// The instance's lookups.
    ///
    /// # Example
    /// ```rhai
    /// let all = dev.lookups();
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn lookups(i: &mut Instance) -> Result<Array, Box<EvalAltResult>> {
        listed(i, "list_lookups", || i.client.list_lookups(None))
    }

    /// The instance's JavaScript libraries.
    ///
    /// # Example
    /// ```rhai
    /// let libs = dev.libraries();
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn libraries(i: &mut Instance) -> Result<Array, Box<EvalAltResult>> {
        listed(i, "list_libraries", || i.client.list_libraries(None))
    }

    /// The instance's packages; each can be exported with `export_archives` and imported with `import_archives`.
    ///
    /// # Example
    /// ```rhai
    /// let pkgs = dev.packages();
    /// let archives = dev.export_archives(pkgs);
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn packages(i: &mut Instance) -> Result<Array, Box<EvalAltResult>> {
        listed(i, "list_packages", || i.client.list_packages(None))
    }

    /// One package by name (`package` is a reserved word in Rhai); an error with `status` 404 when it does not exist.
    ///
    /// # Example
    /// ```rhai
    /// let p = dev.get_package("fin.payables");
    /// prod.import_archives(dev.export_archives(p), #{ activate: false });
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn get_package(
        i: &mut Instance,
        name: ImmutableString,
    ) -> Result<Package, Box<EvalAltResult>> {
        let r = i.host.read("get_package", || i.client.get_package(&name))?;
        found(
            r,
            "package",
            &name,
            Ctx::instance(&i.name()).artifact(name.as_str()),
        )
    }
}

pub fn register(e: &mut Engine) {
    e.register_type_with_name::<Project>("Project");
    e.register_type_with_name::<Lookup>("Lookup");
    e.register_type_with_name::<Library>("Library");
    e.register_type_with_name::<Package>("Package");
    e.register_global_module(exported_module!(projects_api).into());
    props!(e, p: Project {
        code -> String: "The project code (its id in paths).", p.code.clone();
        name -> String: "The display name.", p.name.clone();
        status -> String: "The project state (`DRAFT`, ...).", p.status.clone();
        project_type -> String: "`DEVELOPED` or `ACCELERATOR`.", p.project_type.clone();
        deployments -> Array: "The project's deployments (labels): `#{ code, name, integrations: [\"CODE|VERSION\", ...] }` each."
            => "for d in p.deployments { print(d.code); }", deployments(p);
        fn to_string -> String: "`CODE  STATUS  Name (n deployments)`.",
            format!("{}  {}  {} ({} deployments)", p.code, p.status, p.name, p.deployments.len());
    });
    props!(e, l: Lookup {
        name -> String: "The lookup name (its id).", l.name.clone();
        columns -> Array: "The column (domain) names.", strings(&l.columns);
        rows -> i64: "The number of rows.", l.row_count as i64;
        status -> String: "The lookup status.", l.status.clone();
        fn to_string -> String: "`NAME (n rows)`.", format!("{} ({} rows)", l.name, l.row_count);
    });
    props!(e, l: Library {
        id -> String: "`CODE|VERSION`.", format!("{}|{}", l.code, l.version);
        code -> String: "The library code.", l.code.clone();
        version -> String: "The library version.", l.version.clone();
        name -> String: "The display name.", l.display_name.clone();
        fn to_string -> String: "`CODE|VERSION  Name`.", format!("{}|{}  {}", l.code, l.version, l.display_name);
    });
    props!(e, p: Package {
        name -> String: "The package name (its id).", p.name.clone();
        package_type -> String: "`DEVELOPED` or `PREBUILT`.", p.package_type.clone();
        integrations -> Array: "The integrations it holds, as `\"CODE|VERSION\"`.",
            p.integrations.iter().map(|i| Dynamic::from(format!("{}|{}", i.code, i.version))).collect();
        fn to_string -> String: "`NAME (n integrations)`.", format!("{} ({} integrations)", p.name, p.integrations.len());
    });
}
