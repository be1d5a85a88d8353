//! OIC 3 projects: list, get, export (`.car`), import, ACL, and the integrations inside a project.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::http::{API, Body, Call};
use super::types::{encode_segment, opt_s, s};
use super::{
    ActivateOptions, ImportAction, ImportMode, ImportOutcome, Integration, IntegrationId,
    OicClient, OicError, archive,
};
use crate::artifact::{Artifact, ArtifactKey, ArtifactKind};
use crate::config::Generation;

/// A project deployment ("label"): a named set of integration versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    /// The deployment code (the export `label`).
    pub code: String,
    /// The deployment name.
    pub name: String,
    /// The integration versions it deploys.
    pub integrations: Vec<IntegrationId>,
}

/// An OIC 3 project as listed or fetched.
#[derive(Clone, Debug, PartialEq)]
pub struct Project {
    /// The project code (also its id in paths).
    pub code: String,
    /// The display name.
    pub name: String,
    /// `DEVELOPED` or `ACCELERATOR`.
    pub project_type: String,
    /// `state.status` (`DRAFT`...).
    pub status: String,
    /// `state.assets.labelsRs.items`.
    pub deployments: Vec<Deployment>,
    /// The whole JSON object as received.
    pub raw: Value,
}

impl Project {
    /// Reads a project from its JSON object; never fails.
    pub fn from_json(v: Value) -> Project {
        let state = v.get("state").cloned().unwrap_or(Value::Null);
        let labels = state
            .pointer("/assets/labelsRs/items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let deployments = labels
            .iter()
            .map(|l| Deployment {
                code: s(l, "code"),
                name: s(l, "name"),
                integrations: l
                    .get("integrations")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|i| {
                                Some(IntegrationId::new(opt_s(i, "code")?, opt_s(i, "version")?))
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect();
        Project {
            code: opt_s(&v, "code")
                .or_else(|| opt_s(&v, "id"))
                .unwrap_or_default(),
            name: s(&v, "name"),
            project_type: s(&v, "type"),
            status: s(&state, "status"),
            deployments,
            raw: v,
        }
    }
}

/// The body of a project export (`POST /projects/{code}/archive`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectExport {
    /// The deployment code that selects the integration versions; `None` exports the whole project.
    pub label: Option<String>,
    /// `DEVELOPED` (default) or `ACCELERATOR`.
    pub project_type: String,
}

impl Default for ProjectExport {
    fn default() -> Self {
        ProjectExport {
            label: None,
            project_type: "DEVELOPED".into(),
        }
    }
}

/// A principal in a project ACL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AclPrincipal {
    #[serde(default)]
    /// The principal id in the identity domain.
    pub id: String,
    #[serde(default)]
    /// The display name.
    pub display_name: String,
    /// `user` or `group`.
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Read only: the identity no longer resolves in this domain. Never sent.
    #[serde(default, skip_serializing)]
    pub id_not_found: bool,
}

/// One ACL role: everybody, or a list of principals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AclRole {
    #[serde(default)]
    /// Everybody has this role.
    pub allow_all: bool,
    #[serde(default)]
    /// The principals that have it (when not `allow_all`).
    pub allowed: Vec<AclPrincipal>,
}

/// A project ACL (`/projects/{p}/acl`): the four roles. `PUT` replaces it whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Acl {
    #[serde(default)]
    /// Project administrators.
    pub administrators: AclRole,
    #[serde(default)]
    /// Editors.
    pub editors: AclRole,
    #[serde(default)]
    /// Viewers.
    pub viewers: AclRole,
    #[serde(default)]
    /// Monitors.
    pub monitors: AclRole,
}

fn project_path(code: &str) -> String {
    format!("{API}/projects/{}", encode_segment(code))
}

impl OicClient {
    fn require_gen3(&self, what: &str) -> Result<(), OicError> {
        if self.generation() == Generation::Gen3 {
            Ok(())
        } else {
            Err(OicError::Config(format!(
                "{}: {what} needs OIC 3 (projects do not exist on Gen2)",
                self.name()
            )))
        }
    }

    /// All projects, paged (OIC 3).
    pub async fn list_projects(&self, q: Option<&str>) -> Result<Vec<Project>, OicError> {
        self.require_gen3("listing projects")?;
        self.list_as(&format!("{API}/projects"), q, Project::from_json)
            .await
    }

    /// One project; `None` on 404 (OIC 3).
    pub async fn get_project(&self, code: &str) -> Result<Option<Project>, OicError> {
        self.require_gen3("reading a project")?;
        self.get_as(Call::get(project_path(code)), Project::from_json)
            .await
    }

    /// Exports a project (`POST /projects/{code}/archive` with `{type, code, label}`), streamed
    /// to a temporary file while hashed, and checks the `.car` names the same project. The
    /// artifact's version is the label (empty for a whole-project export).
    pub async fn export_project(
        &self,
        code: &str,
        opts: &ProjectExport,
    ) -> Result<Artifact, OicError> {
        self.require_gen3("exporting a project")?;
        let mut body = json!({"type": opts.project_type, "code": code});
        if let Some(l) = &opts.label {
            body["label"] = json!(l);
        }
        let call = Call::post(format!("{}/archive", project_path(code)))
            .body(Body::Json(body))
            .download();
        let (temp, size, sha) = self.download(call).await?;
        let p = temp.to_path_buf();
        let what = format!("project {code} exported from {}", self.name());
        let info = tokio::task::spawn_blocking(move || archive::inspect_project(&p))
            .await
            .map_err(|e| OicError::Config(format!("archive inspection task failed: {e}")))?
            .map_err(|e| match e {
                OicError::Archive { message, .. } => OicError::Archive {
                    artifact: what.clone(),
                    message,
                },
                o => o,
            })?;
        if info.code != code {
            return Err(OicError::Archive {
                artifact: what,
                message: format!("the archive holds project {} instead", info.code),
            });
        }
        Ok(Artifact::from_temp(
            ArtifactKey::new(
                ArtifactKind::Project,
                code,
                opts.label.clone().unwrap_or_default(),
            ),
            temp,
            size,
            sha,
            self.name(),
        ))
    }

    /// Imports a `.car`: `GET /projects/{code}`; 404 → `POST /projects/archive`. If it exists:
    /// [`ImportMode::SkipExisting`] does nothing; [`ImportMode::Overwrite`] (no replace API is
    /// documented) reads the ACL, deactivates every active project integration, deletes the
    /// project, imports the archive and puts the ACL back.
    pub async fn import_project(
        &self,
        a: &Artifact,
        mode: ImportMode,
    ) -> Result<ImportOutcome, OicError> {
        self.require_gen3("importing a project")?;
        if a.key.kind != ArtifactKind::Project {
            return Err(OicError::Archive {
                artifact: a.key.to_string(),
                message: "not a project archive".into(),
            });
        }
        let p = a.path().to_path_buf();
        let info = tokio::task::spawn_blocking(move || archive::inspect_project(&p))
            .await
            .map_err(|e| OicError::Config(format!("archive inspection task failed: {e}")))??;
        if info.code != a.key.code {
            return Err(OicError::Archive {
                artifact: a.key.to_string(),
                message: format!("the file holds project {}", info.code),
            });
        }
        let code = a.key.code.as_str();
        let post = || {
            Call::post(format!("{API}/projects/archive"))
                .create()
                .body(Body::File {
                    path: a.path().to_path_buf(),
                    file_name: a.file_name(),
                    fields: vec![],
                })
        };
        match self.get_project(code).await? {
            None => {
                self.empty(post()).await?;
                Ok(ImportOutcome::created())
            }
            Some(cur) => {
                let prev = Some(cur.status).filter(|s| !s.is_empty());
                if mode == ImportMode::SkipExisting {
                    return Ok(ImportOutcome::existing(ImportAction::Skipped, prev));
                }
                let acl = match self.get_project_acl(code).await {
                    Ok(acl) => Some(acl),
                    Err(e) if e.is_status(404) => None,
                    Err(e) => return Err(e),
                };
                for i in self.list_project_integrations(code, None).await? {
                    if (i.status == "ACTIVATED" || i.status == "ACTIVATION_INPROGRESS")
                        && let Some(id) = i.integration_id()
                    {
                        self.deactivate_at(Some(code), &id).await?;
                    }
                }
                self.empty(Call::new(reqwest::Method::DELETE, project_path(code)))
                    .await?;
                self.empty(post()).await?;
                if let Some(acl) = acl {
                    self.put_project_acl(code, &acl).await?;
                }
                Ok(ImportOutcome::existing(ImportAction::Replaced, prev))
            }
        }
    }

    /// `DELETE /projects/{code}` (412 while an integration is active or locked).
    pub async fn delete_project(&self, code: &str) -> Result<(), OicError> {
        self.require_gen3("deleting a project")?;
        self.empty(Call::new(reqwest::Method::DELETE, project_path(code)))
            .await
            .map(|_| ())
    }

    /// `GET /projects/{code}/acl`.
    pub async fn get_project_acl(&self, code: &str) -> Result<Acl, OicError> {
        self.require_gen3("reading a project ACL")?;
        let call = Call::get(format!("{}/acl", project_path(code)));
        let path = call.path.clone();
        let v = self.json(call).await?;
        serde_json::from_value(v).map_err(|e| OicError::Protocol {
            instance: self.name().to_string(),
            method: "GET".into(),
            path,
            message: format!("not an ACL: {e}"),
        })
    }

    /// `PUT /projects/{code}/acl`: replaces the whole ACL (the four roles).
    pub async fn put_project_acl(&self, code: &str, acl: &Acl) -> Result<(), OicError> {
        self.require_gen3("setting a project ACL")?;
        let body = serde_json::to_value(acl)
            .map_err(|e| OicError::Config(format!("ACL of {code}: {e}")))?;
        self.empty(
            Call::new(reqwest::Method::PUT, format!("{}/acl", project_path(code)))
                .body(Body::Json(body)),
        )
        .await
        .map(|_| ())
    }

    /// The integrations of a project (`GET /projects/{p}/integrations`), paged.
    pub async fn list_project_integrations(
        &self,
        project: &str,
        q: Option<&str>,
    ) -> Result<Vec<Integration>, OicError> {
        self.require_gen3("listing project integrations")?;
        self.list_as(
            &format!("{}/integrations", project_path(project)),
            q,
            Integration::from_json,
        )
        .await
    }

    /// One project integration; `None` on 404.
    pub async fn get_project_integration(
        &self,
        project: &str,
        id: &IntegrationId,
    ) -> Result<Option<Integration>, OicError> {
        self.require_gen3("reading a project integration")?;
        self.get_as(
            Call::get(Self::ipath(Some(project), id)),
            Integration::from_json,
        )
        .await
    }

    /// [`OicClient::activate`] for an integration inside a project.
    pub async fn activate_in_project(
        &self,
        project: &str,
        id: &IntegrationId,
        opts: &ActivateOptions,
    ) -> Result<String, OicError> {
        self.require_gen3("activating a project integration")?;
        self.activate_at(Some(project), id, opts).await
    }

    /// [`OicClient::deactivate`] for an integration inside a project (412 is `Ok`).
    pub async fn deactivate_in_project(
        &self,
        project: &str,
        id: &IntegrationId,
    ) -> Result<(), OicError> {
        self.require_gen3("deactivating a project integration")?;
        self.deactivate_at(Some(project), id).await
    }

    /// [`OicClient::activation_status`] for an integration inside a project.
    pub async fn activation_status_in_project(
        &self,
        project: &str,
        id: &IntegrationId,
    ) -> Result<String, OicError> {
        self.require_gen3("reading a project activation status")?;
        self.activation_status_at(Some(project), id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_from_real_shape() {
        let p = Project::from_json(json!({
            "code": "LAB_DEVOPS", "id": "LAB_DEVOPS", "name": "LAB DEVOPS", "type": "DEVELOPED",
            "state": {"assets": {"labelsRs": {"items": [{"code": "D1", "name": "D1", "integrations": [{"code": "HELLO", "version": "01.00.0000"}]}]}}, "status": "DRAFT"}
        }));
        assert_eq!(p.code, "LAB_DEVOPS");
        assert_eq!(p.status, "DRAFT");
        assert_eq!(
            p.deployments[0].integrations,
            vec![IntegrationId::new("HELLO", "01.00.0000")]
        );
        let p = Project::from_json(json!({"id": "X"}));
        assert_eq!(p.code, "X");
        assert!(p.deployments.is_empty());
    }

    #[test]
    fn acl_round_trip_drops_read_only_fields() {
        let v = json!({
            "administrators": {"allowAll": false, "allowed": [{"id": "g1", "displayName": "Jane", "type": "user", "idNotFound": true}]},
            "editors": {"allowAll": false, "allowed": []},
            "viewers": {"allowAll": true, "allowed": []},
            "createdBy": "x"
        });
        let acl: Acl = serde_json::from_value(v).unwrap();
        assert!(acl.administrators.allowed[0].id_not_found);
        assert!(acl.viewers.allow_all);
        assert!(!acl.monitors.allow_all);
        let out = serde_json::to_value(&acl).unwrap();
        assert_eq!(
            out["administrators"]["allowed"][0],
            json!({"id": "g1", "displayName": "Jane", "type": "user"})
        );
        assert!(out.get("createdBy").is_none());
        assert_eq!(out["monitors"], json!({"allowAll": false, "allowed": []}));
    }
}
