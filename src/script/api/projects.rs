//! OIC 3 projects (with their deployments), lookups, libraries and packages: list them and pass
//! them to `export_archives`; their archives go back with `import_archives`.

use rhai::plugin::*;
use rhai::{Array, Engine, ImmutableString};

use super::args::{RhaiResultOf, objects, results};
use super::oic::Instance;
use crate::oic::{Library, Lookup, Package, Project};
use crate::ops::reads;

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
    pub fn projects(i: &mut Instance) -> RhaiResultOf<Array> {
        Ok(objects(i.run(|h, c| reads::projects(h, c))?))
    }

    /// One project by code (OIC 3); an error with `status` 404 when it does not exist.
    ///
    /// # Example
    /// ```rhai
    /// let p = dev.project("HR_CORE");
    /// let car = dev.export_archives(p, #{ label: p.deployments[0].code });
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn project(i: &mut Instance, code: ImmutableString) -> RhaiResultOf<Project> {
        i.run(|h, c| reads::project(h, c, &code))
    }

    /// The instance's lookups.
    ///
    /// # Example
    /// ```rhai
    /// let all = dev.lookups();
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn lookups(i: &mut Instance) -> RhaiResultOf<Array> {
        Ok(objects(i.run(|h, c| reads::lookups(h, c))?))
    }

    /// The instance's JavaScript libraries.
    ///
    /// # Example
    /// ```rhai
    /// let libs = dev.libraries();
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn libraries(i: &mut Instance) -> RhaiResultOf<Array> {
        Ok(objects(i.run(|h, c| reads::libraries(h, c))?))
    }

    /// The instance's packages; each can be exported with `export_archives` and imported with `import_archives`.
    ///
    /// # Example
    /// ```rhai
    /// let pkgs = dev.packages();
    /// let archives = dev.export_archives(pkgs);
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn packages(i: &mut Instance) -> RhaiResultOf<Array> {
        Ok(objects(i.run(|h, c| reads::packages(h, c))?))
    }

    /// One package by name (`package` is a reserved word in Rhai); an error with `status` 404 when it does not exist.
    ///
    /// # Example
    /// ```rhai
    /// let p = dev.get_package("fin.payables");
    /// prod.import_archives(dev.export_archives(p), #{ activate: false });
    /// ```
    #[rhai_fn(volatile, pure, return_raw)]
    pub fn get_package(i: &mut Instance, name: ImmutableString) -> RhaiResultOf<Package> {
        i.run(|h, c| reads::package(h, c, &name))
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
            => "for d in p.deployments { print(d.code); }", results(reads::deployments(p)).unwrap_or_default();
        fn to_string -> String: "`CODE  STATUS  Name (n deployments)`.",
            format!("{}  {}  {} ({} deployments)", p.code, p.status, p.name, p.deployments.len());
    });
    props!(e, l: Lookup {
        name -> String: "The lookup name (its id).", l.name.clone();
        columns -> Array: "The column (domain) names.", objects(l.columns.clone());
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
        integrations -> Array: "The integrations it holds, as `\"CODE|VERSION\"`.", objects(reads::package_integrations(p));
        fn to_string -> String: "`NAME (n integrations)`.", format!("{} ({} integrations)", p.name, p.integrations.len());
    });
}
