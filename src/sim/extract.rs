//! The request extractor shared by all OIC handlers: authentication, instance selection, query, path ids.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts, Path};
use axum::http::request::Parts;

use super::auth::{Caller, authenticate};
use super::error::{ApiError, ApiResult};
use super::query::Params;
use super::state::{Instance, InstanceData};
use super::{API, Ctx};

/// An authenticated developer-API request.
pub struct Api {
    /// Listener context.
    pub ctx: Ctx,
    /// Selected instance.
    pub inst: Arc<Instance>,
    /// Caller.
    pub caller: Caller,
    /// Query parameters.
    pub params: Params,
    /// Path parameters (`p` = project code, `id` = resource id, ...), percent-decoded.
    pub path: HashMap<String, String>,
}

impl FromRequestParts<Ctx> for Api {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &Ctx) -> Result<Self, Self::Rejection> {
        let params = Params::parse(parts.uri.query());
        let (inst, caller) = authenticate(ctx, &parts.headers, &params.0)?;
        let path = match <Path<HashMap<String, String>> as OptionalFromRequestParts<Ctx>>::from_request_parts(
            parts, ctx,
        )
        .await {
            Ok(Some(Path(p))) => p,
            Ok(None) => HashMap::new(),
            Err(_) => return Err(ApiError::bad_request("Invalid path parameter.")),
        };
        Ok(Api {
            ctx: ctx.clone(),
            inst,
            caller,
            params,
            path,
        })
    }
}

impl Api {
    /// The project code of a `/projects/{p}/...` route.
    pub fn project(&self) -> Option<&str> {
        self.path.get("p").map(String::as_str)
    }
    /// A path parameter (empty when absent).
    pub fn param(&self, name: &str) -> &str {
        self.path.get(name).map(String::as_str).unwrap_or("")
    }
    /// The resource id (`{id}`).
    pub fn id(&self) -> &str {
        self.param("id")
    }
    /// `{base}{API}` or `{base}{API}/projects/{p}`: prefix of resource links.
    pub fn prefix(&self) -> String {
        match self.project() {
            Some(p) => format!(
                "{}{API}/projects/{}",
                self.ctx.base_url,
                super::integrations::enc(p)
            ),
            None => format!("{}{API}", self.ctx.base_url),
        }
    }
    /// `?integrationInstance=<name>` on the OIC 3 design host (where every link needs it), "" on Gen2.
    pub fn instance_query(&self) -> String {
        match &self.inst.ident.integration_instance {
            Some(ii) if matches!(self.ctx.kind, super::ListenerKind::Design) => {
                format!("?integrationInstance={ii}")
            }
            _ => String::new(),
        }
    }
    /// Who is calling (for `lastUpdatedBy`).
    pub fn who(&self) -> &str {
        &self.caller.principal
    }
}

/// The data space of a request: the instance's global space or a project's (404 when the project is missing).
pub fn space<'a>(
    data: &'a mut InstanceData,
    project: Option<&str>,
) -> ApiResult<&'a mut InstanceData> {
    match project {
        None => Ok(data),
        Some(p) => data
            .projects
            .get_mut(p)
            .map(|p| &mut p.data)
            .ok_or_else(|| ApiError::not_found(format!("Project '{p}' not found."))),
    }
}
