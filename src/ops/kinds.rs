//! One implementation of [`KindOps`] per artifact kind that can be imported (integration,
//! project, lookup, library, package): how to read the target, create, replace (and the steps
//! before a replace), export what the target holds (to compare checksums and to save it for
//! rollback) and delete. Import, rollback and restore are written once over this trait, so a
//! kind is added here, in one place.

use futures::future::BoxFuture;

use crate::artifact::{Artifact, ArtifactKey, ArtifactKind};
use crate::effect::Action;
use crate::oic::{ImportMode, IntegrationId, OicClient, OicError, ProjectExport};

/// What the target holds under a key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetState {
    /// Its status (`ACTIVATED`, `CONFIGURED`...; empty when the kind has none).
    pub status: String,
    /// An integration with a schedule defined.
    pub scheduled: bool,
}

impl TargetState {
    /// Active or becoming active.
    pub fn active(&self) -> bool {
        self.status == "ACTIVATED" || self.status == "ACTIVATION_INPROGRESS"
    }
}

type Fut<'a, T> = BoxFuture<'a, Result<T, OicError>>;

/// The operations import, rollback and restore need for one kind.
pub trait KindOps: Sync {
    /// Reads the target: `None` when it does not hold `key`.
    fn state<'a>(&'a self, c: &'a OicClient, key: &'a ArtifactKey) -> Fut<'a, Option<TargetState>>;
    /// Exports what the target holds under `key`, keyed as `key`.
    fn export_current<'a>(&'a self, c: &'a OicClient, key: &'a ArtifactKey) -> Fut<'a, Artifact>;
    /// Imports an archive the target does not hold (409 when it does).
    fn create<'a>(&'a self, c: &'a OicClient, a: &'a Artifact) -> Fut<'a, ()>;
    /// The steps a replace needs first, given what the target holds (each one effect).
    fn before_replace(&self, _st: &TargetState) -> Vec<Action> {
        vec![]
    }
    /// Performs one of the steps of [`KindOps::before_replace`].
    fn step<'a>(
        &'a self,
        _c: &'a OicClient,
        _key: &'a ArtifactKey,
        _step: &'a Action,
    ) -> Fut<'a, ()> {
        Box::pin(async { Ok(()) })
    }
    /// Replaces what the target holds by `a` (after the steps before it).
    fn replace<'a>(&'a self, c: &'a OicClient, a: &'a Artifact) -> Fut<'a, ()>;
    /// Removes `key` from the target (what a rollback does to what a run added).
    fn delete<'a>(&'a self, c: &'a OicClient, key: &'a ArtifactKey) -> Fut<'a, ()>;
}

/// The operations of a kind, or `None` for kinds that are not imported (connections, jobs...).
pub fn ops_for(kind: ArtifactKind) -> Option<&'static dyn KindOps> {
    match kind {
        ArtifactKind::Integration => Some(&Integrations),
        ArtifactKind::Project => Some(&Projects),
        ArtifactKind::Lookup => Some(&Lookups),
        ArtifactKind::Library => Some(&Libraries),
        ArtifactKind::Package => Some(&Packages),
        ArtifactKind::Connection
        | ArtifactKind::Job
        | ArtifactKind::Grant
        | ArtifactKind::Message
        | ArtifactKind::Schedule => None,
    }
}

/// The order kinds are imported in: what integrations use comes first.
pub fn import_rank(k: ArtifactKind) -> u8 {
    match k {
        ArtifactKind::Library => 0,
        ArtifactKind::Lookup => 1,
        ArtifactKind::Project => 2,
        ArtifactKind::Package => 3,
        ArtifactKind::Integration => 4,
        // After the integrations (and their activations: see `ops::schedules`).
        ArtifactKind::Schedule => 5,
        ArtifactKind::Connection
        | ArtifactKind::Job
        | ArtifactKind::Grant
        | ArtifactKind::Message => 6,
    }
}

fn iid(key: &ArtifactKey) -> IntegrationId {
    IntegrationId::new(&key.code, &key.version)
}

/// An export keyed as `key` (a project exported whole is saved under the label it was replaced
/// with, so that rollback finds it).
fn rekeyed(mut a: Artifact, key: &ArtifactKey) -> Artifact {
    a.key = key.clone();
    a
}

/// `ImportMode::SkipExisting` that found the artifact present is a conflict for `create`.
fn created(o: crate::oic::ImportOutcome, key: &ArtifactKey) -> Result<(), OicError> {
    match o.action {
        crate::oic::ImportAction::Skipped => Err(OicError::Config(format!(
            "{key} appeared on the target while it was being created"
        ))),
        _ => Ok(()),
    }
}

struct Integrations;

impl KindOps for Integrations {
    fn state<'a>(&'a self, c: &'a OicClient, key: &'a ArtifactKey) -> Fut<'a, Option<TargetState>> {
        Box::pin(async move {
            Ok(c.get_integration(&iid(key)).await?.map(|i| TargetState {
                status: i.status.clone(),
                scheduled: i.schedule_defined,
            }))
        })
    }
    fn export_current<'a>(&'a self, c: &'a OicClient, key: &'a ArtifactKey) -> Fut<'a, Artifact> {
        Box::pin(async move { c.export_integration(&iid(key)).await })
    }
    fn create<'a>(&'a self, c: &'a OicClient, a: &'a Artifact) -> Fut<'a, ()> {
        Box::pin(c.create_integration(a))
    }
    fn before_replace(&self, st: &TargetState) -> Vec<Action> {
        let mut steps = vec![];
        if st.scheduled {
            steps.push(Action::StopSchedule);
        }
        if st.active() {
            steps.push(Action::Deactivate);
        }
        steps
    }
    fn step<'a>(&'a self, c: &'a OicClient, key: &'a ArtifactKey, step: &'a Action) -> Fut<'a, ()> {
        Box::pin(async move {
            match step {
                Action::StopSchedule => c.stop_schedule(&iid(key)).await,
                Action::Deactivate => c.deactivate(&iid(key)).await,
                _ => Ok(()),
            }
        })
    }
    fn replace<'a>(&'a self, c: &'a OicClient, a: &'a Artifact) -> Fut<'a, ()> {
        Box::pin(c.replace_integration(a))
    }
    fn delete<'a>(&'a self, c: &'a OicClient, key: &'a ArtifactKey) -> Fut<'a, ()> {
        Box::pin(async move {
            let id = iid(key);
            if let Some(cur) = c.get_integration(&id).await? {
                if cur.status == "ACTIVATED" || cur.status == "ACTIVATION_INPROGRESS" {
                    c.deactivate(&id).await?;
                }
                c.delete_integration(&id).await?;
            }
            Ok(())
        })
    }
}

struct Projects;

impl KindOps for Projects {
    fn state<'a>(&'a self, c: &'a OicClient, key: &'a ArtifactKey) -> Fut<'a, Option<TargetState>> {
        Box::pin(async move {
            Ok(c.get_project(&key.code).await?.map(|p| TargetState {
                status: p.status,
                scheduled: false,
            }))
        })
    }
    fn export_current<'a>(&'a self, c: &'a OicClient, key: &'a ArtifactKey) -> Fut<'a, Artifact> {
        Box::pin(async move {
            // The whole project: what a replace loses, whatever deployment the archive holds.
            let a = c
                .export_project(&key.code, &ProjectExport::default())
                .await?;
            Ok(rekeyed(a, key))
        })
    }
    fn create<'a>(&'a self, c: &'a OicClient, a: &'a Artifact) -> Fut<'a, ()> {
        Box::pin(
            async move { created(c.import_project(a, ImportMode::SkipExisting).await?, &a.key) },
        )
    }
    fn replace<'a>(&'a self, c: &'a OicClient, a: &'a Artifact) -> Fut<'a, ()> {
        // No replace API is documented: the client keeps the ACL, deactivates, deletes, imports.
        Box::pin(async move { c.import_project(a, ImportMode::Overwrite).await.map(|_| ()) })
    }
    fn delete<'a>(&'a self, c: &'a OicClient, key: &'a ArtifactKey) -> Fut<'a, ()> {
        Box::pin(async move {
            if c.get_project(&key.code).await?.is_none() {
                return Ok(());
            }
            for i in c.list_project_integrations(&key.code, None).await? {
                if (i.status == "ACTIVATED" || i.status == "ACTIVATION_INPROGRESS")
                    && let Some(id) = i.integration_id()
                {
                    c.deactivate_in_project(&key.code, &id).await?;
                }
            }
            c.delete_project(&key.code).await
        })
    }
}

struct Lookups;

impl KindOps for Lookups {
    fn state<'a>(&'a self, c: &'a OicClient, key: &'a ArtifactKey) -> Fut<'a, Option<TargetState>> {
        Box::pin(async move {
            Ok(c.get_lookup(&key.code).await?.map(|l| TargetState {
                status: l.status,
                scheduled: false,
            }))
        })
    }
    fn export_current<'a>(&'a self, c: &'a OicClient, key: &'a ArtifactKey) -> Fut<'a, Artifact> {
        Box::pin(async move { Ok(rekeyed(c.export_lookup(&key.code).await?, key)) })
    }
    fn create<'a>(&'a self, c: &'a OicClient, a: &'a Artifact) -> Fut<'a, ()> {
        Box::pin(
            async move { created(c.import_lookup(a, ImportMode::SkipExisting).await?, &a.key) },
        )
    }
    fn replace<'a>(&'a self, c: &'a OicClient, a: &'a Artifact) -> Fut<'a, ()> {
        Box::pin(async move { c.import_lookup(a, ImportMode::Overwrite).await.map(|_| ()) })
    }
    fn delete<'a>(&'a self, c: &'a OicClient, key: &'a ArtifactKey) -> Fut<'a, ()> {
        Box::pin(async move {
            match c.delete_lookup(&key.code).await {
                Err(e) if e.is_status(404) => Ok(()),
                r => r,
            }
        })
    }
}

struct Libraries;

impl KindOps for Libraries {
    fn state<'a>(&'a self, c: &'a OicClient, key: &'a ArtifactKey) -> Fut<'a, Option<TargetState>> {
        Box::pin(async move {
            Ok(c.get_library(&iid(key)).await?.map(|l| TargetState {
                status: l.status,
                scheduled: false,
            }))
        })
    }
    fn export_current<'a>(&'a self, c: &'a OicClient, key: &'a ArtifactKey) -> Fut<'a, Artifact> {
        Box::pin(async move { Ok(rekeyed(c.export_library(&iid(key)).await?, key)) })
    }
    fn create<'a>(&'a self, c: &'a OicClient, a: &'a Artifact) -> Fut<'a, ()> {
        Box::pin(async move {
            created(
                c.import_library(a, None, ImportMode::SkipExisting).await?,
                &a.key,
            )
        })
    }
    fn replace<'a>(&'a self, c: &'a OicClient, a: &'a Artifact) -> Fut<'a, ()> {
        Box::pin(async move {
            c.import_library(a, None, ImportMode::Overwrite)
                .await
                .map(|_| ())
        })
    }
    fn delete<'a>(&'a self, c: &'a OicClient, key: &'a ArtifactKey) -> Fut<'a, ()> {
        Box::pin(async move {
            match c.delete_library(&iid(key)).await {
                Err(e) if e.is_status(404) => Ok(()),
                r => r,
            }
        })
    }
}

struct Packages;

impl KindOps for Packages {
    fn state<'a>(&'a self, c: &'a OicClient, key: &'a ArtifactKey) -> Fut<'a, Option<TargetState>> {
        Box::pin(async move {
            Ok(c.get_package(&key.code).await?.map(|_| TargetState {
                status: String::new(),
                scheduled: false,
            }))
        })
    }
    fn export_current<'a>(&'a self, c: &'a OicClient, key: &'a ArtifactKey) -> Fut<'a, Artifact> {
        Box::pin(async move { Ok(rekeyed(c.export_package(&key.code).await?, key)) })
    }
    fn create<'a>(&'a self, c: &'a OicClient, a: &'a Artifact) -> Fut<'a, ()> {
        Box::pin(
            async move { created(c.import_package(a, ImportMode::SkipExisting).await?, &a.key) },
        )
    }
    fn replace<'a>(&'a self, c: &'a OicClient, a: &'a Artifact) -> Fut<'a, ()> {
        // The client deactivates the package's active integrations, then PUTs the archive.
        Box::pin(async move { c.import_package(a, ImportMode::Overwrite).await.map(|_| ()) })
    }
    fn delete<'a>(&'a self, c: &'a OicClient, key: &'a ArtifactKey) -> Fut<'a, ()> {
        Box::pin(async move {
            let Some(p) = c.get_package(&key.code).await? else {
                return Ok(());
            };
            for i in &p.integrations {
                if let Some(id) = i.integration_id() {
                    c.deactivate(&id).await?;
                }
            }
            c.delete_package(&key.code).await
        })
    }
}
