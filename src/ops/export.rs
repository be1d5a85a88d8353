//! `export`: integrations, projects, lookups, libraries and packages to local archives, in
//! parallel, each streamed to disk while its sha256 is computed. An export is a read: it also
//! happens in a dry run, so a plan knows the checksums.

use serde::Deserialize;

use super::OpsError;
use super::ctx::{Ctx, fan_out_adaptive};
use crate::artifact::{Artifact, ArtifactKey, ArtifactKind, Listed};
use crate::effect::{Effect, Failure};
use crate::ledger::Stage;
use crate::oic::{
    Integration, IntegrationId, Lane, Library, Lookup, OicClient, Package, Project, ProjectExport,
};

/// Something an instance can export.
#[derive(Clone, Debug)]
pub enum Exportable {
    Integration(Integration),
    // boxed: a selection of 10,000 items is a vector of 16-byte values, not of the largest kind
    Project(Box<Project>),
    Lookup(Box<Lookup>),
    Library(Box<Library>),
    Package(Box<Package>),
}

impl Exportable {
    /// The key of its archive.
    pub fn key(&self) -> ArtifactKey {
        match self {
            Exportable::Integration(i) => {
                ArtifactKey::new(ArtifactKind::Integration, &i.code, &i.version)
            }
            Exportable::Project(p) => ArtifactKey::new(ArtifactKind::Project, &p.code, ""),
            Exportable::Lookup(l) => ArtifactKey::new(ArtifactKind::Lookup, &l.name, ""),
            Exportable::Library(l) => ArtifactKey::new(ArtifactKind::Library, &l.code, &l.version),
            Exportable::Package(p) => ArtifactKey::new(ArtifactKind::Package, &p.name, ""),
        }
    }

    /// Its status on the source, when it has one.
    pub fn status(&self) -> Option<String> {
        let s = match self {
            Exportable::Integration(i) => i.status.clone(),
            Exportable::Project(p) => p.status.clone(),
            Exportable::Lookup(l) => l.status.clone(),
            Exportable::Library(l) => l.status.clone(),
            Exportable::Package(_) => String::new(),
        };
        Some(s).filter(|s| !s.is_empty())
    }

    async fn export(&self, client: &OicClient, label: Option<&str>) -> Result<Artifact, Failure> {
        match self {
            // The status is known from the list: one request, not two.
            Exportable::Integration(i) => {
                client
                    .export_integration_with_status(
                        &IntegrationId::new(&i.code, &i.version),
                        Some(i.status.as_str()).filter(|s| !s.is_empty()),
                    )
                    .await
            }
            Exportable::Project(p) => {
                let o = ProjectExport {
                    label: label.map(str::to_string),
                    ..Default::default()
                };
                client.export_project(&p.code, &o).await
            }
            Exportable::Lookup(l) => client.export_lookup(&l.name).await,
            Exportable::Library(l) => {
                client
                    .export_library(&IntegrationId::new(&l.code, &l.version))
                    .await
            }
            Exportable::Package(p) => client.export_package(&p.name).await,
        }
        .map_err(Failure::from)
    }
}

/// Options of `export_archives`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExportOptions {
    /// Hard cap on exports at a time (default: adaptive, see `oic::Limiter`).
    pub concurrency: Option<usize>,
    /// Raise the first failure instead of recording it and going on.
    pub stop_on_error: bool,
    /// For projects: the deployment whose integration versions go into the archive.
    pub label: Option<String>,
}

/// Exports in parallel; returns the artifacts of those that succeeded (failures are recorded in
/// the run and, with `stop_on_error`, raised). In a dry run the exports happen too. An exported
/// integration with a schedule also gives its schedule (an artifact of kind `schedule`, see
/// [`super::schedules`]).
pub async fn export(
    ctx: &dyn Ctx,
    client: &OicClient,
    items: Vec<Exportable>,
    o: &ExportOptions,
) -> Result<Vec<Artifact>, OpsError> {
    export_to(ctx, client, items, o, None).await
}

/// [`export`] that also sends each artifact to `tx` as soon as it is exported (its schedule
/// right after it), for a store that overlaps the exports ([`super::job::store_stream`]); `tx`
/// is dropped when the exports end.
pub async fn export_to(
    ctx: &dyn Ctx,
    client: &OicClient,
    items: Vec<Exportable>,
    o: &ExportOptions,
    tx: Option<futures::channel::mpsc::UnboundedSender<Artifact>>,
) -> Result<Vec<Artifact>, OpsError> {
    export_with(ctx, client, items, o, tx, Default::default()).await
}

/// [`export_to`] where some schedules were read already (`ahead`, by integration code and
/// version): an exported integration's schedule effect takes that answer instead of reading it
/// again. The answer for an integration whose export fails is dropped, as a schedule read after
/// it would not have been made: nothing of it is stored or recorded.
pub(super) async fn export_with(
    ctx: &dyn Ctx,
    client: &OicClient,
    items: Vec<Exportable>,
    o: &ExportOptions,
    tx: Option<futures::channel::mpsc::UnboundedSender<Artifact>>,
    ahead: super::schedules::ReadsAhead,
) -> Result<Vec<Artifact>, OpsError> {
    let ahead = std::sync::Mutex::new(ahead);
    let ahead = &ahead;
    let conc = o.concurrency.unwrap_or(ctx.bounds().exports);
    // A given concurrency is a start as well as a cap: no slow start up to it.
    if let Some(c) = o.concurrency {
        client.limiter().start_at(Lane::Reads, c);
    }
    // The selection is known: the run's progress counts against it.
    ctx.exec()
        .record()
        .expect(Stage::Export, items.len() as u64);
    let label = o.label.as_deref();
    // An exported integration's schedule is read right after its archive, in the same slot of
    // the fan-out (no barrier between the exports and the schedules); the run's expected total
    // counts the schedules now.
    let scheduled = items
        .iter()
        .filter(|it| matches!(it, Exportable::Integration(i) if i.schedule_defined))
        .count();
    if scheduled > 0 {
        ctx.exec().record().expect(Stage::Export, scheduled as u64);
    }
    let results = fan_out_adaptive(
        ctx.bar(items.len(), "export"),
        conc,
        client,
        Lane::Reads,
        items,
        |it| {
            let tx = tx.clone();
            async move {
                let key = it.key();
                let action = match (&it, label) {
                    (Exportable::Project(_), Some(l)) => format!("export (deployment {l})"),
                    _ => "export".to_string(),
                };
                let eff = Effect::new(Stage::Export, key, client.name(), action);
                let r = ctx
                    .exec()
                    .run_read_planned(eff, || it.export(client, label))
                    .await;
                let read = match &it {
                    Exportable::Integration(i) if i.schedule_defined => ahead
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&IntegrationId::new(&i.code, &i.version)),
                    _ => None,
                };
                let schedule = match (&r, &it) {
                    (Ok(_), Exportable::Integration(i)) if i.schedule_defined => {
                        super::schedules::export_effect(ctx, client, i, read)
                            .await
                            .transpose()
                    }
                    _ => None,
                };
                let r = r.map(|mut a| {
                    if a.source_status.is_none() {
                        a.source_status = it.status();
                    }
                    // What the list said before the export: a later backup compares it.
                    if let Exportable::Integration(i) = &it
                        && !i.last_updated.is_empty()
                    {
                        a.listed = Some(Listed {
                            updated: i.last_updated.clone(),
                            instance: client.identity(),
                        });
                    }
                    a
                });
                if let Some(tx) = &tx {
                    for a in r.iter().chain(schedule.iter().flatten()) {
                        // The receiver gone (its store stopped): the export still goes on.
                        let _ = tx.unbounded_send(a.clone());
                    }
                }
                // errors boxed: the results of 10,000 exports are 10,000 small pairs
                (r.map_err(Box::new), schedule.map(|s| s.map_err(Box::new)))
            }
        },
    )
    .await;
    drop(tx);
    let mut out = vec![];
    let mut schedules = vec![];
    for (r, schedule) in results {
        for r in std::iter::once(r).chain(schedule) {
            match r {
                Ok(a) if a.key.kind == ArtifactKind::Schedule => schedules.push(a),
                Ok(a) => out.push(a),
                Err(e) if e.cancelled => return Err(OpsError::Cancelled),
                Err(e) if o.stop_on_error => return Err(OpsError::effect(*e)),
                Err(_) => {}
            }
        }
    }
    // the schedules after the archives, as before
    out.append(&mut schedules);
    Ok(out)
}
