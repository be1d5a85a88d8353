//! Reads of an instance's projects, lookups, libraries, packages and connections (each a read of
//! the effect executor: retried, failures naming the instance; a missing item is
//! [`OpsError::NotFound`]), and the shapes scripts see of what they read.

use std::future::Future;

use serde::Serialize;

use super::{Ctx, OpsError};
use crate::artifact::ArtifactKind;
use crate::oic::{Connection, Library, Lookup, OicClient, OicError, Package, Project};

/// A list read of the instance of `client`.
async fn list<T, Fut>(
    ctx: &dyn Ctx,
    client: &OicClient,
    what: &str,
    f: impl FnMut() -> Fut,
) -> Result<Vec<T>, OpsError>
where
    Fut: Future<Output = Result<Vec<T>, OicError>>,
{
    let r = ctx.exec().read(what, f).await;
    r.map_err(|e| OpsError::oic(client.name(), e))
}

/// A read of the `kind` called `id`; [`OpsError::NotFound`] when it does not exist.
async fn one<T, Fut>(
    ctx: &dyn Ctx,
    client: &OicClient,
    (kind, id): (ArtifactKind, &str),
    f: impl FnMut() -> Fut,
) -> Result<T, OpsError>
where
    Fut: Future<Output = Result<Option<T>, OicError>>,
{
    let (at, item) = (client.name().to_string(), id.to_string());
    let r = ctx.exec().read(&format!("get_{kind}"), f).await;
    r.map_err(|e| OpsError::oic_item(&at, item.clone(), e))?
        .ok_or(OpsError::NotFound { at, kind, item })
}

/// The instance's projects (OIC 3).
pub async fn projects(ctx: &dyn Ctx, c: &OicClient) -> Result<Vec<Project>, OpsError> {
    list(ctx, c, "list_projects", || c.list_projects(None)).await
}

/// The project `code` (OIC 3).
pub async fn project(ctx: &dyn Ctx, c: &OicClient, code: &str) -> Result<Project, OpsError> {
    one(ctx, c, (ArtifactKind::Project, code), || {
        c.get_project(code)
    })
    .await
}

/// The instance's lookups.
pub async fn lookups(ctx: &dyn Ctx, c: &OicClient) -> Result<Vec<Lookup>, OpsError> {
    list(ctx, c, "list_lookups", || c.list_lookups(None)).await
}

/// The instance's JavaScript libraries.
pub async fn libraries(ctx: &dyn Ctx, c: &OicClient) -> Result<Vec<Library>, OpsError> {
    list(ctx, c, "list_libraries", || c.list_libraries(None)).await
}

/// The instance's packages.
pub async fn packages(ctx: &dyn Ctx, c: &OicClient) -> Result<Vec<Package>, OpsError> {
    list(ctx, c, "list_packages", || c.list_packages(None)).await
}

/// The package `name`.
pub async fn package(ctx: &dyn Ctx, c: &OicClient, name: &str) -> Result<Package, OpsError> {
    one(ctx, c, (ArtifactKind::Package, name), || {
        c.get_package(name)
    })
    .await
}

/// The instance's connections.
pub async fn connections(ctx: &dyn Ctx, c: &OicClient) -> Result<Vec<Connection>, OpsError> {
    list(ctx, c, "list_connections", || {
        c.list_connections(None, None)
    })
    .await
}

/// The connection `code`.
pub async fn connection(ctx: &dyn Ctx, c: &OicClient, code: &str) -> Result<Connection, OpsError> {
    let get = || c.get_connection(None, code);
    one(ctx, c, (ArtifactKind::Connection, code), get).await
}

/// A project deployment as scripts see it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct DeploymentView {
    pub code: String,
    pub name: String,
    /// `CODE|VERSION` each.
    pub integrations: Vec<String>,
}

/// The deployments (labels) of a project.
pub fn deployments(p: &Project) -> Vec<DeploymentView> {
    let view = |d: &crate::oic::Deployment| DeploymentView {
        code: d.code.clone(),
        name: d.name.clone(),
        integrations: d.integrations.iter().map(|i| i.to_string()).collect(),
    };
    p.deployments.iter().map(view).collect()
}

/// The integrations of a package as `CODE|VERSION`.
pub fn package_integrations(p: &Package) -> Vec<String> {
    let id = |i: &crate::oic::Integration| format!("{}|{}", i.code, i.version);
    p.integrations.iter().map(id).collect()
}

/// How an instance prints: `Instance(name, OIC n, url)`.
pub fn instance_text(c: &OicClient) -> String {
    let n = c.generation().number();
    format!("Instance({}, OIC {n}, {})", c.name(), c.base_url())
}

/// The names of the configured instance profiles, in the config's order.
pub fn instance_names(config: &crate::config::Config) -> Vec<String> {
    config.instances.keys().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployments_show_their_integrations_as_ids() {
        let p = Project::from_json(json!({
            "code": "HR", "name": "HR", "state": { "status": "DRAFT", "assets": { "labelsRs": { "items": [
                { "code": "REL1", "name": "Release 1",
                  "integrations": [{ "code": "HR_SYNC", "version": "01.00.0000" }] }
            ] } } }
        }));
        let want = vec![DeploymentView {
            code: "REL1".into(),
            name: "Release 1".into(),
            integrations: vec!["HR_SYNC|01.00.0000".into()],
        }];
        assert_eq!(deployments(&p), want);
    }

    #[test]
    fn package_integrations_are_ids() {
        let p = Package::from_json(json!({
            "name": "fin.payables", "integrations": ["FIN_GL|02.00.0000", { "code": "AP", "version": "01.00.0000" }]
        }));
        assert_eq!(
            package_integrations(&p),
            ["FIN_GL|02.00.0000", "AP|01.00.0000"]
        );
    }
}
