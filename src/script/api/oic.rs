//! The `oic` module: instances, integrations and artifacts, export and import.

use crate::script::api::OrUnit;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use super::{getter, global, in_module, static_module};
use crate::artifact::{Artifact, ArtifactKey, ArtifactKind};
use crate::effect::{Effect, Failure, Outcome};
use crate::ledger::{Stage, StepError, StepStatus};
use crate::oic::{
    ActivateOptions, ImportAction, ImportMode, Integration, IntegrationId, OicClient,
};
use crate::script::errors::{self, Ctx};
use crate::script::host::Host;

/// An OIC instance from the config (script type `Instance`).
#[derive(Clone)]
pub struct Instance {
    pub host: Arc<Host>,
    pub client: OicClient,
}

impl Instance {
    pub fn name(&self) -> String {
        self.client.name().to_string()
    }
}

/// Opens (or reuses) the client of a configured instance.
pub fn instance(host: &Arc<Host>, name: &str) -> Result<Instance, Box<EvalAltResult>> {
    if let Some(c) = host.clients.lock().expect("clients lock").get(name) {
        return Ok(Instance {
            host: host.clone(),
            client: c.clone(),
        });
    }
    let profile = host.config.instance(name).map_err(errors::from_config)?;
    let client = OicClient::new(profile)
        .map_err(|e| errors::script_error("config", None, e.to_string(), Ctx::instance(name)))?;
    host.clients
        .lock()
        .expect("clients lock")
        .insert(name.to_string(), client.clone());
    Ok(Instance {
        host: host.clone(),
        client,
    })
}

pub fn oic_err(e: crate::oic::OicError, ctx: Ctx) -> Box<EvalAltResult> {
    let f = Failure::from(e);
    errors::script_error(
        crate::effect::Classify::kind(&f),
        crate::effect::Classify::status(&f),
        f.to_string(),
        ctx,
    )
}

fn key_of(i: &Integration) -> ArtifactKey {
    ArtifactKey::new(ArtifactKind::Integration, i.code.clone(), i.version.clone())
}

/// Filters a list by a filter map: `status` (string or array), `code` (glob), `name` (glob, or
/// `/regex/`), `project`, `updated_since` (date or time prefix), `latest` (bool).
pub fn apply_filter(
    list: Vec<Integration>,
    f: &Map,
) -> Result<Vec<Integration>, Box<EvalAltResult>> {
    const KNOWN: &[&str] = &[
        "status",
        "code",
        "name",
        "project",
        "updated_since",
        "latest",
        "locked",
    ];
    for k in f.keys() {
        if !KNOWN.contains(&k.as_str()) {
            return Err(errors::usage(format!(
                "unknown filter `{k}` (known: {})",
                KNOWN.join(", ")
            )));
        }
    }
    let statuses: Option<Vec<String>> = f.get("status").map(|v| {
        if let Some(a) = v.read_lock::<Array>() {
            a.iter().map(|x| x.to_string()).collect()
        } else {
            vec![v.to_string()]
        }
    });
    let code = f.get("code").map(|v| v.to_string());
    let name_re = match f.get("name").map(|v| v.to_string()) {
        Some(n) if n.len() >= 2 && n.starts_with('/') && n.ends_with('/') => Some(
            regex::Regex::new(&n[1..n.len() - 1])
                .map_err(|e| errors::usage(format!("bad name regex {n}: {e}")))?,
        ),
        _ => None,
    };
    let name_glob = f
        .get("name")
        .map(|v| v.to_string())
        .filter(|_| name_re.is_none());
    let project = f.get("project").map(|v| v.to_string());
    let since = f.get("updated_since").map(|v| v.to_string());
    let locked = f.get("locked").and_then(|v| v.as_bool().ok());
    let mut out: Vec<Integration> = list
        .into_iter()
        .filter(|i| {
            statuses
                .as_ref()
                .is_none_or(|s| s.iter().any(|x| x == &i.status))
        })
        .filter(|i| {
            code.as_ref()
                .is_none_or(|g| super::util::glob_match(g, &i.code))
        })
        .filter(|i| {
            name_glob
                .as_ref()
                .is_none_or(|g| super::util::glob_match(g, &i.name))
        })
        .filter(|i| name_re.as_ref().is_none_or(|r| r.is_match(&i.name)))
        .filter(|i| {
            project
                .as_ref()
                .is_none_or(|p| i.project_code.as_deref() == Some(p.as_str()))
        })
        .filter(|i| {
            since
                .as_ref()
                .is_none_or(|s| i.last_updated.as_str() >= s.as_str())
        })
        .filter(|i| locked.is_none_or(|l| i.locked == l))
        .collect();
    if f.get("latest")
        .and_then(|v| v.as_bool().ok())
        .unwrap_or(false)
    {
        let mut best: BTreeMap<String, Integration> = BTreeMap::new();
        for i in out {
            match best.get(&i.code) {
                Some(b) if b.version >= i.version => {}
                _ => {
                    best.insert(i.code.clone(), i);
                }
            }
        }
        out = best.into_values().collect();
    }
    Ok(out)
}

/// Something an instance can export.
#[derive(Clone)]
pub enum Exportable {
    Integration(Integration),
    Project(crate::oic::Project),
    Lookup(crate::oic::Lookup),
    Library(crate::oic::Library),
}

impl Exportable {
    fn key(&self) -> ArtifactKey {
        match self {
            Exportable::Integration(i) => key_of(i),
            Exportable::Project(p) => ArtifactKey::new(ArtifactKind::Project, p.code.clone(), ""),
            Exportable::Lookup(l) => ArtifactKey::new(ArtifactKind::Lookup, l.name.clone(), ""),
            Exportable::Library(l) => {
                ArtifactKey::new(ArtifactKind::Library, l.code.clone(), l.version.clone())
            }
        }
    }
    fn status(&self) -> Option<String> {
        let s = match self {
            Exportable::Integration(i) => i.status.clone(),
            Exportable::Project(p) => p.status.clone(),
            Exportable::Lookup(l) => l.status.clone(),
            Exportable::Library(l) => l.status.clone(),
        };
        Some(s).filter(|s| !s.is_empty())
    }
}

fn one_exportable(x: &Dynamic) -> Option<Exportable> {
    if let Some(i) = x.read_lock::<Integration>() {
        return Some(Exportable::Integration(i.clone()));
    }
    if let Some(p) = x.read_lock::<crate::oic::Project>() {
        return Some(Exportable::Project(p.clone()));
    }
    if let Some(l) = x.read_lock::<crate::oic::Lookup>() {
        return Some(Exportable::Lookup(l.clone()));
    }
    if let Some(l) = x.read_lock::<crate::oic::Library>() {
        return Some(Exportable::Library(l.clone()));
    }
    None
}

/// Integrations, projects, lookups or libraries (one, or an array of them).
pub fn as_exportables(items: &Dynamic) -> Result<Vec<Exportable>, Box<EvalAltResult>> {
    if let Some(e) = one_exportable(items) {
        return Ok(vec![e]);
    }
    if let Some(a) = items.read_lock::<Array>() {
        return a
            .iter()
            .map(|x| {
                one_exportable(x).ok_or_else(|| {
                    errors::usage(format!(
                        "expected integrations, projects, lookups or libraries, found a {}",
                        x.type_name()
                    ))
                })
            })
            .collect();
    }
    Err(errors::usage(format!(
        "expected an integration (or project, lookup, library) or an array of them, found a {}",
        items.type_name()
    )))
}

/// Artifacts (one, or an array of them).
pub fn as_artifacts(items: &Dynamic) -> Result<Vec<Artifact>, Box<EvalAltResult>> {
    if let Some(a) = items.read_lock::<Artifact>() {
        return Ok(vec![a.clone()]);
    }
    if let Some(arr) = items.read_lock::<Array>() {
        return arr
            .iter()
            .map(|x| {
                x.read_lock::<Artifact>().map(|a| a.clone()).ok_or_else(|| {
                    errors::usage(format!("expected artifacts, found a {}", x.type_name()))
                })
            })
            .collect();
    }
    Err(errors::usage(format!(
        "expected an artifact or an array of artifacts, found a {}",
        items.type_name()
    )))
}

fn opt_usize(o: &Map, k: &str, default: usize) -> Result<usize, Box<EvalAltResult>> {
    match o.get(k) {
        None => Ok(default),
        Some(v) => v
            .as_int()
            .ok()
            .filter(|n| *n > 0)
            .map(|n| n as usize)
            .ok_or_else(|| errors::usage(format!("option `{k}` must be a positive integer"))),
    }
}

fn opt_bool(o: &Map, k: &str, default: bool) -> Result<bool, Box<EvalAltResult>> {
    match o.get(k) {
        None => Ok(default),
        Some(v) => v
            .as_bool()
            .map_err(|_| errors::usage(format!("option `{k}` must be true or false"))),
    }
}

fn check_keys(o: &Map, known: &[&str], what: &str) -> Result<(), Box<EvalAltResult>> {
    for k in o.keys() {
        if !known.contains(&k.as_str()) {
            return Err(errors::usage(format!(
                "unknown {what} option `{k}` (known: {})",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

/// Exports in parallel; returns the artifacts of those that succeeded (failures are recorded in
/// the run and, with `stop_on_error`, raised). Projects take the `label` option (a deployment).
pub fn export(
    inst: &Instance,
    items: Vec<Exportable>,
    opts: &Map,
) -> Result<Vec<Artifact>, Box<EvalAltResult>> {
    check_keys(opts, &["concurrency", "stop_on_error", "label"], "export")?;
    let host = inst.host.clone();
    let conc = opt_usize(opts, "concurrency", host.concurrency.exports)?;
    let stop = opt_bool(opts, "stop_on_error", false)?;
    let label = opts.get("label").map(|v| v.to_string());
    let results = super::bulk::run_bulk(&host, "export", conc, items, |it| {
        let exec = host.exec.clone();
        let client = inst.client.clone();
        let label = label.clone();
        async move {
            let key = it.key();
            let status = it.status();
            let action = match (&it, &label) {
                (Exportable::Project(_), Some(l)) => format!("export (deployment {l})"),
                _ => "export".to_string(),
            };
            let eff = Effect::new(Stage::Export, key.clone(), client.name(), action);
            // An export is a read: it also happens in a dry run, so a plan knows the checksums.
            let r = exec
                .run_read_planned(eff, || async {
                    match &it {
                        // The status is known from the list: one request, not two.
                        Exportable::Integration(i) => {
                            client
                                .export_integration_with_status(
                                    &IntegrationId::new(i.code.clone(), i.version.clone()),
                                    Some(i.status.as_str()).filter(|s| !s.is_empty()),
                                )
                                .await
                        }
                        Exportable::Project(p) => {
                            let o = crate::oic::ProjectExport {
                                label: label.clone(),
                                ..Default::default()
                            };
                            client.export_project(&p.code, &o).await
                        }
                        Exportable::Lookup(l) => client.export_lookup(&l.name).await,
                        Exportable::Library(l) => {
                            client
                                .export_library(&IntegrationId::new(
                                    l.code.clone(),
                                    l.version.clone(),
                                ))
                                .await
                        }
                    }
                    .map_err(Failure::from)
                })
                .await
                .map(Outcome::Done);
            r.map(|o| match o {
                Outcome::Done(mut a) => {
                    if a.source_status.is_none() {
                        a.source_status = status;
                    }
                    Some(a)
                }
                Outcome::Planned => Some(Artifact::planned(key, client.name(), status)),
                Outcome::Skipped(_) => None,
            })
        }
    })?;
    let mut out = vec![];
    for r in results {
        match r {
            Ok(Some(a)) => out.push(a),
            Ok(None) => {}
            Err(e) if e.cancelled => return Err(errors::cancelled()),
            Err(e) if stop => return Err(errors::from_effect(e)),
            Err(_) => {}
        }
    }
    Ok(out)
}

/// When to activate after an import.
#[derive(Clone, Copy, Debug, PartialEq)]
enum ActivateWhen {
    Never,
    Always,
    /// What was active on the source.
    Keep,
}

impl ActivateWhen {
    fn wants(self, a: &Artifact) -> bool {
        a.key.kind == ArtifactKind::Integration
            && match self {
                ActivateWhen::Always => true,
                ActivateWhen::Never => false,
                ActivateWhen::Keep => a.source_status.as_deref() == Some("ACTIVATED"),
            }
    }
}

/// The order kinds are imported in: what integrations use comes first.
fn kind_rank(k: ArtifactKind) -> u8 {
    match k {
        ArtifactKind::Library => 0,
        ArtifactKind::Lookup => 1,
        ArtifactKind::Project => 2,
        ArtifactKind::Package => 3,
        ArtifactKind::Integration => 4,
        ArtifactKind::Connection
        | ArtifactKind::Job
        | ArtifactKind::Grant
        | ArtifactKind::Message => 5,
    }
}

/// Imports artifacts (each verified first) in dependency order — libraries, lookups, projects,
/// then integrations —, configures connections when asked, then activates per the options; one
/// result map per artifact.
pub fn import(
    inst: &Instance,
    artifacts: Vec<Artifact>,
    opts: &Map,
) -> Result<Array, Box<EvalAltResult>> {
    check_keys(
        opts,
        &[
            "overwrite",
            "activate",
            "concurrency",
            "activation_concurrency",
            "async_activation",
            "activation_timeout",
            "stop_on_error",
            "tracing",
            "payload_tracing",
            "connections",
        ],
        "import",
    )?;
    let host = inst.host.clone();
    let overwrite = opt_bool(opts, "overwrite", false)?;
    let when = match opts.get("activate") {
        None => ActivateWhen::Keep,
        Some(v) if v.is_bool() => {
            if v.as_bool().unwrap_or(false) {
                ActivateWhen::Always
            } else {
                ActivateWhen::Never
            }
        }
        Some(v) if v.to_string() == "keep" => ActivateWhen::Keep,
        Some(v) => {
            return Err(errors::usage(format!(
                "option `activate` must be true, false or \"keep\", found {v}"
            )));
        }
    };
    let conc = opt_usize(opts, "concurrency", host.concurrency.imports)?;
    let aconc = opt_usize(opts, "activation_concurrency", host.concurrency.activations)?;
    let stop = opt_bool(opts, "stop_on_error", false)?;
    let act = ActivateOptions {
        async_mode: opt_bool(opts, "async_activation", true)?,
        timeout: Duration::from_secs(opt_usize(opts, "activation_timeout", 300)? as u64),
        poll_interval: Duration::from_millis(500),
        tracing: opts.get("tracing").and_then(|v| v.as_bool().ok()),
        payload_tracing: opts.get("payload_tracing").and_then(|v| v.as_bool().ok()),
    };
    let conn_specs = match opts.get("connections") {
        Some(v) => Some(super::connections::specs_from_value(inst, v)?),
        None => None,
    };
    let mode = if overwrite {
        ImportMode::Overwrite
    } else {
        ImportMode::SkipExisting
    };
    let target = inst.name();

    // The target's integrations, listed once (a page per 100) so that each new import needs no
    // GET of its own; `None` when the list cannot be read (each import then checks for itself).
    let listed: Option<std::collections::HashSet<String>> = if artifacts
        .iter()
        .any(|a| a.key.kind == ArtifactKind::Integration && !a.is_planned())
    {
        host.read("list_integrations", || inst.client.list_integrations(None))?
            .ok()
            .map(|l| {
                l.into_iter()
                    .map(|i| format!("{}|{}", i.code, i.version))
                    .collect()
            })
    } else {
        None
    };
    let listed = Arc::new(listed);

    // Phase 1: imports by kind, in dependency order; each file is refused before it is sent when
    // it does not match its checksum.
    let mut ordered: Vec<(usize, Artifact)> = artifacts.into_iter().enumerate().collect();
    ordered.sort_by_key(|(i, a)| (kind_rank(a.key.kind), *i));
    let mut imported: Vec<(
        usize,
        Artifact,
        Result<Outcome<crate::oic::ImportOutcome>, crate::effect::EffectError>,
    )> = vec![];
    let mut start = 0;
    while start < ordered.len() {
        let rank = kind_rank(ordered[start].1.key.kind);
        let end = ordered[start..]
            .iter()
            .position(|(_, a)| kind_rank(a.key.kind) != rank)
            .map(|p| start + p)
            .unwrap_or(ordered.len());
        let batch: Vec<(usize, Artifact)> = ordered[start..end].to_vec();
        start = end;
        let res = super::bulk::run_bulk(&host, "import", conc, batch, |(idx, a)| {
            let exec = host.exec.clone();
            let client = inst.client.clone();
            let target = target.clone();
            let host = host.clone();
            let listed = listed.clone();
            async move {
                let action = if overwrite {
                    "import (replace if present)"
                } else {
                    "import (skip if present)"
                };
                let eff = Effect::new(Stage::Import, a.key.clone(), target, action)
                    .with_sha256(Some(a.sha256.clone()).filter(|s| !s.is_empty()));
                let r = if a.is_planned() {
                    exec.note(&eff, StepStatus::Planned, None);
                    Ok(Outcome::Planned)
                } else if let Err(ie) = verify_blocking(&a).await {
                    // A corrupt archive is refused before anything is sent; it is not retried.
                    let err = StepError {
                        kind: "integrity".into(),
                        status: None,
                        message: ie.to_string(),
                    };
                    exec.note(&eff, StepStatus::Failed, Some(err.clone()));
                    Err(crate::effect::EffectError {
                        stage: Stage::Import,
                        artifact: a.key.id(),
                        target: eff.target.clone(),
                        attempts: 0,
                        error: err,
                        cancelled: false,
                    })
                } else {
                    if a.key.kind == ArtifactKind::Integration {
                        // Reads the target first: import new, replace, or skip when unchanged by
                        // checksum (and saves what a replace loses, for rollback).
                        let absent = (*listed).as_ref().is_some_and(|l| !l.contains(&a.key.id()));
                        let r = super::ledger::import_integration(
                            &host, &client, &a, mode, eff, absent,
                        )
                        .await;
                        return (idx, a, r);
                    }
                    exec.run(eff, || async {
                        match a.key.kind {
                            ArtifactKind::Integration => client.import_integration(&a, mode).await,
                            ArtifactKind::Project => client.import_project(&a, mode).await,
                            ArtifactKind::Lookup => client.import_lookup(&a, mode).await,
                            ArtifactKind::Library => client.import_library(&a, None, mode).await,
                            ArtifactKind::Package
                            | ArtifactKind::Connection
                            | ArtifactKind::Job
                            | ArtifactKind::Grant
                            | ArtifactKind::Message => Err(crate::oic::OicError::Config(format!(
                                "importing a {} archive is not supported",
                                a.key.kind
                            ))),
                        }
                        .map_err(Failure::from)
                    })
                    .await
                };
                (idx, a, r)
            }
        })?;
        let failed_now = res.iter().any(|(_, _, r)| r.is_err());
        imported.extend(res);
        if stop && failed_now {
            break;
        }
    }
    imported.sort_by_key(|(idx, _, _)| *idx);

    let mut results: Vec<Map> = vec![];
    let mut to_activate: Vec<(usize, Artifact, bool)> = vec![];
    for (_, a, r) in imported {
        let mut m = result_map(&a);
        match r {
            Ok(Outcome::Done(o)) => {
                m.insert("action".into(), o.action.as_str().into());
                m.insert(
                    "previous_status".into(),
                    o.previous_status.clone().or_unit(),
                );
                if when.wants(&a) && o.action != ImportAction::Skipped {
                    to_activate.push((results.len(), a.clone(), true));
                }
            }
            Ok(Outcome::Planned) => {
                m.insert("action".into(), "planned".into());
                if when.wants(&a) {
                    to_activate.push((results.len(), a.clone(), true));
                }
            }
            Ok(Outcome::Skipped(why)) => {
                m.insert("action".into(), "skipped".into());
                // Already there (unchanged, or imported by the run being resumed): its
                // activation still follows.
                if when.wants(&a) && super::ledger::import_skip_continues(&why) {
                    to_activate.push((results.len(), a.clone(), false));
                }
                m.insert("reason".into(), why.into());
            }
            Err(e) => {
                if e.cancelled {
                    return Err(errors::cancelled());
                }
                if stop {
                    return Err(errors::from_effect(e));
                }
                fail_into(&mut m, "import", &e);
            }
        }
        results.push(m);
    }

    // Phase 2: connections the integrations need, configured and tested before any activation.
    if let Some(specs) = conn_specs {
        let conn_results = super::connections::configure(inst, specs, true)?;
        if stop
            && let Some(bad) = conn_results.iter().find(|r| {
                r.read_lock::<Map>()
                    .is_some_and(|m| m.get("error").is_some_and(|e| !e.is_unit()))
            })
        {
            return Err(errors::script_error(
                "connection",
                None,
                bad.to_string(),
                Ctx::instance(&target).stage("connection"),
            ));
        }
    }

    // Phase 3: activations, bounded (OIC advises against many parallel activations).
    let activated =
        super::bulk::run_bulk(&host, "activate", aconc, to_activate, |(idx, a, fresh)| {
            let exec = host.exec.clone();
            let client = inst.client.clone();
            let act = act.clone();
            let target = target.clone();
            async move {
                let id = IntegrationId::new(a.key.code.clone(), a.key.version.clone());
                let why = match a.source_status.as_deref() {
                    Some(s) => format!("activate (was {s} on {})", a.source),
                    None => "activate".to_string(),
                };
                let eff = Effect::new(Stage::Activate, a.key.clone(), target, why)
                    .with_sha256(Some(a.sha256.clone()).filter(|s| !s.is_empty()));
                (
                    idx,
                    super::ledger::activate_integration(&exec, &client, &id, &act, eff, fresh)
                        .await,
                )
            }
        })?;
    for (idx, r) in activated {
        let m = &mut results[idx];
        match r {
            Ok(Outcome::Done(status)) => {
                m.insert("status".into(), status.into());
                m.insert("activated".into(), true.into());
            }
            Ok(_) => {}
            Err(e) => {
                if e.cancelled {
                    return Err(errors::cancelled());
                }
                if stop {
                    return Err(errors::from_effect(e));
                }
                fail_into(m, "activate", &e);
            }
        }
    }
    Ok(results.into_iter().map(Dynamic::from_map).collect())
}

fn fail_into(m: &mut Map, stage: &str, e: &crate::effect::EffectError) {
    if stage == "import" {
        m.insert("action".into(), "failed".into());
    }
    m.insert("stage".into(), stage.into());
    m.insert("error".into(), e.error.message.clone().into());
    m.insert(
        "status_code".into(),
        e.error
            .status
            .map(|s| Dynamic::from(s as i64))
            .unwrap_or(Dynamic::UNIT),
    );
}

/// Activates (or deactivates) integrations in parallel, bounded; one result map each.
pub fn set_active(
    inst: &Instance,
    ids: Vec<IntegrationId>,
    activate: bool,
    opts: &Map,
) -> Result<Array, Box<EvalAltResult>> {
    check_keys(
        opts,
        &[
            "concurrency",
            "async_activation",
            "activation_timeout",
            "stop_on_error",
        ],
        "activate",
    )?;
    let host = inst.host.clone();
    let conc = opt_usize(opts, "concurrency", host.concurrency.activations)?;
    let stop = opt_bool(opts, "stop_on_error", false)?;
    let act = ActivateOptions {
        async_mode: opt_bool(opts, "async_activation", true)?,
        timeout: Duration::from_secs(opt_usize(opts, "activation_timeout", 300)? as u64),
        poll_interval: Duration::from_millis(500),
        tracing: None,
        payload_tracing: None,
    };
    let results = super::bulk::run_bulk(
        &host,
        if activate { "activate" } else { "deactivate" },
        conc,
        ids,
        |id| {
            let exec = host.exec.clone();
            let client = inst.client.clone();
            let act = act.clone();
            async move {
                let key = ArtifactKey::new(
                    ArtifactKind::Integration,
                    id.code.clone(),
                    id.version.clone(),
                );
                let (stage, action) = if activate {
                    (Stage::Activate, "activate")
                } else {
                    (Stage::Deactivate, "deactivate")
                };
                let r = exec
                    .run(Effect::new(stage, key, client.name(), action), || async {
                        if activate {
                            client.activate(&id, &act).await
                        } else {
                            client
                                .deactivate(&id)
                                .await
                                .map(|_| "CONFIGURED".to_string())
                        }
                        .map_err(Failure::from)
                    })
                    .await;
                (id, r)
            }
        },
    )?;
    let mut out = Array::new();
    for (id, r) in results {
        let mut m = Map::new();
        m.insert("id".into(), id.to_string().into());
        m.insert("status".into(), Dynamic::UNIT);
        m.insert("error".into(), Dynamic::UNIT);
        match r {
            Ok(Outcome::Done(s)) => {
                m.insert("status".into(), s.into());
            }
            Ok(_) => {
                m.insert("status".into(), "planned".into());
            }
            Err(e) if e.cancelled => return Err(errors::cancelled()),
            Err(e) if stop => return Err(errors::from_effect(e)),
            Err(e) => {
                m.insert("error".into(), e.error.message.into());
            }
        }
        out.push(m.into());
    }
    Ok(out)
}

async fn verify_blocking(a: &Artifact) -> Result<(), crate::artifact::IntegrityError> {
    let a2 = a.clone();
    match tokio::task::spawn_blocking(move || a2.verify()).await {
        Ok(r) => r,
        Err(e) => Err(crate::artifact::IntegrityError::Unreadable {
            path: a.path().display().to_string(),
            reason: e.to_string(),
        }),
    }
}

fn result_map(a: &Artifact) -> Map {
    let mut m = Map::new();
    m.insert("id".into(), a.key.id().into());
    m.insert("code".into(), a.key.code.clone().into());
    m.insert("version".into(), a.key.version.clone().into());
    m.insert("kind".into(), a.key.kind.as_str().into());
    m.insert("sha256".into(), a.sha256.clone().into());
    m.insert("source".into(), a.source.clone().into());
    m.insert("source_status".into(), a.source_status.clone().or_unit());
    m.insert("action".into(), Dynamic::UNIT);
    m.insert("status".into(), Dynamic::UNIT);
    m.insert("activated".into(), false.into());
    m.insert("error".into(), Dynamic::UNIT);
    m
}

fn ids_from(v: &Dynamic) -> Result<Vec<IntegrationId>, Box<EvalAltResult>> {
    match v.read_lock::<Array>() {
        Some(a) => a.iter().map(id_from).collect(),
        None => Ok(vec![id_from(v)?]),
    }
}

fn id_from(v: &Dynamic) -> Result<IntegrationId, Box<EvalAltResult>> {
    if let Some(i) = v.read_lock::<Integration>() {
        return Ok(IntegrationId::new(i.code.clone(), i.version.clone()));
    }
    if let Some(a) = v.read_lock::<Artifact>() {
        return Ok(IntegrationId::new(
            a.key.code.clone(),
            a.key.version.clone(),
        ));
    }
    if let Some(m) = v.read_lock::<Map>()
        && let Some(id) = m.get("id")
    {
        return IntegrationId::parse(&id.to_string()).map_err(|e| errors::usage(e.to_string()));
    }
    let s = v.to_string();
    IntegrationId::parse(&s).map_err(|e| errors::usage(e.to_string()))
}

/// `Integration` as a short block of text.
pub fn integration_text(i: &Integration) -> String {
    format!(
        "{}|{}  {}  {}{}{}",
        i.code,
        i.version,
        i.status,
        i.name,
        if i.locked { "  [locked]" } else { "" },
        if i.schedule_defined {
            "  [scheduled]"
        } else {
            ""
        }
    )
}

/// `Integration` as a map (for `to_json` and tables).
pub fn integration_map(i: &Integration) -> Map {
    let mut m = Map::new();
    m.insert("id".into(), format!("{}|{}", i.code, i.version).into());
    m.insert("code".into(), i.code.clone().into());
    m.insert("version".into(), i.version.clone().into());
    m.insert("name".into(), i.name.clone().into());
    m.insert("status".into(), i.status.clone().into());
    m.insert("locked".into(), i.locked.into());
    m.insert("scheduled".into(), i.schedule_defined.into());
    m.insert("project_type".into(), i.project_type.clone().into());
    m.insert("project".into(), i.project_code.clone().or_unit());
    m.insert("last_updated".into(), i.last_updated.clone().into());
    m.insert("last_updated_by".into(), i.last_updated_by.clone().into());
    m.insert(
        "connections".into(),
        i.connections
            .iter()
            .cloned()
            .map(Dynamic::from)
            .collect::<Array>()
            .into(),
    );
    m.insert(
        "lookups".into(),
        i.lookups
            .iter()
            .cloned()
            .map(Dynamic::from)
            .collect::<Array>()
            .into(),
    );
    m
}

/// `Artifact` as a map.
pub fn artifact_map(a: &Artifact) -> Map {
    let mut m = Map::new();
    m.insert("kind".into(), a.key.kind.as_str().into());
    m.insert("id".into(), a.key.id().into());
    m.insert("code".into(), a.key.code.clone().into());
    m.insert("version".into(), a.key.version.clone().into());
    m.insert("size".into(), (a.size as i64).into());
    m.insert("sha256".into(), a.sha256.clone().into());
    m.insert("source".into(), a.source.clone().into());
    m.insert("source_status".into(), a.source_status.clone().or_unit());
    m
}

pub fn register(e: &mut Engine, host: Arc<Host>) {
    e.register_type_with_name::<Instance>("Instance");
    e.register_type_with_name::<Integration>("Integration");
    e.register_type_with_name::<Artifact>("Artifact");

    let h = host.clone();
    static_module(
        e,
        "oic",
        "Oracle Integration instances: list, export, import and activate integrations.",
        move |m| {
            let h1 = h.clone();
            in_module("instance", &["name: string", "Instance"], "Connects to the instance profile `name` from the config file (`[instances.NAME]`).\nThe token is fetched on first use, cached, and renewed before it expires.\n\n# Example\n```rhai\nlet dev = oic::instance(\"dev\");\n```")
            .set_into_module(m, move |name: ImmutableString| instance(&h1, &name));
            let h2 = h.clone();
            in_module("instances", &["Array"], "The names of the configured instance profiles.\n\n# Example\n```rhai\nprint(oic::instances());   // [\"dev\", \"prod\"]\n```")
            .set_into_module(m, move || -> Array { h2.config.instances.keys().cloned().map(Dynamic::from).collect() });
        },
    );

    // Instance
    getter(
        "name",
        &["inst: Instance", "string"],
        "The profile name of the instance.\n\n# Example\n```rhai\nprint(dev.name);\n```",
    )
    .register_into_engine(e, |i: &mut Instance| i.name());
    getter("generation", &["inst: Instance", "int"], "2 for OIC Gen2, 3 for OIC 3.\n\n# Example\n```rhai\nif dev.generation == 3 { print(\"OIC 3\"); }\n```")
        .register_into_engine(e, |i: &mut Instance| i.client.generation().number());
    getter(
        "url",
        &["inst: Instance", "string"],
        "The instance's Developer API base URL.\n\n# Example\n```rhai\nprint(dev.url);\n```",
    )
    .register_into_engine(e, |i: &mut Instance| i.client.base_url().to_string());
    global(
        "to_string",
        &["inst: Instance", "string"],
        "`Instance(name, url)`.\n\n# Example\n```rhai\nprint(dev);\n```",
    )
    .register_into_engine(e, |i: &mut Instance| {
        format!(
            "Instance({}, OIC {}, {})",
            i.name(),
            i.client.generation().number(),
            i.client.base_url()
        )
    });
    global("integrations", &["inst: Instance", "Array"], "Every integration of the instance (all pages of the list).\n\n# Example\n```rhai\nlet all = dev.integrations();\nlet hr = all.filter(|i| i.code.starts_with(\"HR_\"));\n```")
        .register_into_engine(e, |i: &mut Instance| -> Result<Array, Box<EvalAltResult>> {
            let list = i.host.read("list_integrations", || i.client.list_integrations(None))?.map_err(|e| oic_err(e, Ctx::instance(&i.name())))?;
            Ok(list.into_iter().map(Dynamic::from).collect())
        });
    global(
        "integrations",
        &["inst: Instance", "filter: Map", "Array"],
        "The integrations matching a filter map: `status` (string or array), `code` (glob: `\"HR_*\"`), `name` (glob, or `\"/regex/\"`),\n`project`, `updated_since` (`\"2026-01-01\"`), `locked` (bool), `latest` (true: only the highest version of each code).\n\n# Example\n```rhai\nlet live = dev.integrations(#{ status: \"ACTIVATED\", code: \"HR_*\", latest: true });\n```",
    )
    .register_into_engine(e, |i: &mut Instance, f: Map| -> Result<Array, Box<EvalAltResult>> {
        let list = i.host.read("list_integrations", || i.client.list_integrations(None))?.map_err(|e| oic_err(e, Ctx::instance(&i.name())))?;
        Ok(apply_filter(list, &f)?.into_iter().map(Dynamic::from).collect())
    });
    global("integration", &["inst: Instance", "id: string", "Integration"], "One integration by `\"CODE|VERSION\"`; an error with `status` 404 when it does not exist.\n\n# Example\n```rhai\nlet i = dev.integration(\"HR_SYNC|01.00.0000\");\n```")
        .register_into_engine(e, |i: &mut Instance, id: ImmutableString| get_one(i, IntegrationId::parse(&id).map_err(|e| errors::usage(e.to_string()))?));
    global("integration", &["inst: Instance", "code: string", "version: string", "Integration"], "One integration by code and version; an error with `status` 404 when it does not exist.\n\n# Example\n```rhai\nlet i = dev.integration(\"HR_SYNC\", \"01.00.0000\");\n```")
        .register_into_engine(e, |i: &mut Instance, code: ImmutableString, version: ImmutableString| get_one(i, IntegrationId::new(code.to_string(), version.to_string())));
    global("export_archives", &["inst: Instance", "items: Dynamic", "Array"], "Exports integrations, projects, lookups or libraries (one or an array) to local archives, in parallel, each streamed to disk while its sha256 is computed.\nReturns the artifacts that were exported; failures are recorded in the run (exit code 1) and the rest go on.\n\n# Example\n```rhai\nlet artifacts = dev.export_archives(dev.integrations(#{ code: \"HR_*\" }));\n```")
        .register_into_engine(e, |i: &mut Instance, items: Dynamic| -> Result<Array, Box<EvalAltResult>> {
            Ok(export(i, as_exportables(&items)?, &Map::new())?.into_iter().map(Dynamic::from).collect())
        });
    global("export_archives", &["inst: Instance", "items: Dynamic", "options: Map", "Array"], "Exports with options: `concurrency` (default 4), `stop_on_error` (default false: raise the first failure), `label` (for projects: the deployment whose integration versions go into the archive).\n\n# Example\n```rhai\nlet artifacts = dev.export_archives(list, #{ concurrency: 8, stop_on_error: true });\n```")
        .register_into_engine(e, |i: &mut Instance, items: Dynamic, o: Map| -> Result<Array, Box<EvalAltResult>> {
            Ok(export(i, as_exportables(&items)?, &o)?.into_iter().map(Dynamic::from).collect())
        });
    global(
        "import_archives",
        &["inst: Instance", "artifacts: Dynamic", "options: Map", "Array"],
        "Imports artifacts into the instance, each checked against its sha256 first (a corrupt archive is refused before it is sent),\nin dependency order: libraries, lookups, projects, then integrations; then configures `connections` if given; then activates.\nExisting items are replaced (integrations deactivated and their schedules stopped first) with `overwrite: true`, else skipped.\nOptions: `overwrite` (false), `activate` (`\"keep\"`: what was active on the source; true; false), `concurrency` (2),\n`activation_concurrency` (2), `async_activation` (true), `activation_timeout` (seconds, 300), `tracing`, `payload_tracing`,\n`connections` (a map or TOML file, as for `configure_connections`), `stop_on_error` (false).\nReturns one map per artifact: `id`, `code`, `version`, `action` (created, replaced, skipped, failed, planned), `status`, `activated`, `error`.\n\n# Example\n```rhai\nlet results = prod.import_archives(job.artifacts(), #{ overwrite: true, activate: \"keep\" });\n```",
    )
    .register_into_engine(e, |i: &mut Instance, items: Dynamic, o: Map| -> Result<Array, Box<EvalAltResult>> { import(i, as_artifacts(&items)?, &o) });
    global("import_archives", &["inst: Instance", "artifacts: Dynamic", "Array"], "Imports artifacts with the default options (no overwrite; activate what was active on the source).\n\n# Example\n```rhai\nlet results = prod.import_archives(artifacts);\n```")
        .register_into_engine(e, |i: &mut Instance, items: Dynamic| -> Result<Array, Box<EvalAltResult>> { import(i, as_artifacts(&items)?, &Map::new()) });
    global("activate", &["inst: Instance", "items: Dynamic", "Array"], "Activates integrations (an Integration, Artifact or `\"CODE|VERSION\"`, or an array of them), in parallel (2 at a time),\nwaiting for each to be active. Returns `#{ id, status, error }` per item; failures are recorded and the rest go on.\n\n# Example\n```rhai\nprod.activate([\"HR_SYNC|01.00.0000\", \"FIN_GL|02.00.0000\"]);\n```")
        .register_into_engine(e, |i: &mut Instance, items: Dynamic| -> Result<Array, Box<EvalAltResult>> { set_active(i, ids_from(&items)?, true, &Map::new()) });
    global("activate", &["inst: Instance", "items: Dynamic", "options: Map", "Array"], "Activates with options: `concurrency` (2), `async_activation` (true), `activation_timeout` (seconds, 300), `stop_on_error` (false).\n\n# Example\n```rhai\nprod.activate(list, #{ concurrency: 1, stop_on_error: true });\n```")
        .register_into_engine(e, |i: &mut Instance, items: Dynamic, o: Map| -> Result<Array, Box<EvalAltResult>> { set_active(i, ids_from(&items)?, true, &o) });
    global("deactivate", &["inst: Instance", "items: Dynamic", "Array"], "Deactivates integrations (one or an array); already inactive is fine. Returns `#{ id, status, error }` per item.\n\n# Example\n```rhai\nprod.deactivate(\"HR_SYNC|01.00.0000\");\n```")
        .register_into_engine(e, |i: &mut Instance, items: Dynamic| -> Result<Array, Box<EvalAltResult>> { set_active(i, ids_from(&items)?, false, &Map::new()) });
    global("delete", &["inst: Instance", "item: Dynamic"], "Deletes an integration (Integration, Artifact or `\"CODE|VERSION\"`). OIC refuses an active (412) or locked (423) one: deactivate first.\n\n# Example\n```rhai\nprod.deactivate(\"OLD_FLOW|01.00.0000\");\nprod.delete(\"OLD_FLOW|01.00.0000\");\n```")
        .register_into_engine(e, |i: &mut Instance, item: Dynamic| -> Result<(), Box<EvalAltResult>> {
            let id = id_from(&item)?;
            let key = ArtifactKey::new(ArtifactKind::Integration, id.code.clone(), id.version.clone());
            let client = i.client.clone();
            let r = i.host.block_on(i.host.exec.run(Effect::new(Stage::Delete, key, i.name(), "delete"), || async { client.delete_integration(&id).await.map_err(Failure::from) }))?;
            r.map(|_| ()).map_err(errors::from_effect)
        });
    global("status", &["inst: Instance", "item: Dynamic", "string"], "The current status of an integration (`ACTIVATED`, `CONFIGURED`, ...), or `\"MISSING\"` when it does not exist.\n\n# Example\n```rhai\nif prod.status(\"HR_SYNC|01.00.0000\") != \"ACTIVATED\" { print(\"not live\"); }\n```")
        .register_into_engine(e, |i: &mut Instance, item: Dynamic| -> Result<String, Box<EvalAltResult>> {
            let id = id_from(&item)?;
            let r = i.host.read("get_integration", || i.client.get_integration(&id))?.map_err(|e| oic_err(e, Ctx::instance(&i.name()).artifact(id.to_string())))?;
            Ok(r.map(|x| x.status).unwrap_or_else(|| "MISSING".into()))
        });

    // Integration
    macro_rules! int_get {
        ($prop:literal, $ty:literal, $doc:literal, $f:expr) => {
            getter(
                $prop,
                &["i: Integration", $ty],
                concat!($doc, "\n\n# Example\n```rhai\nprint(i.", $prop, ");\n```"),
            )
            .register_into_engine(e, $f);
        };
    }
    int_get!(
        "code",
        "string",
        "The integration code (`HR_SYNC`).",
        |i: &mut Integration| i.code.clone()
    );
    int_get!(
        "version",
        "string",
        "The version, `MM.mm.pppp` (`01.00.0000`).",
        |i: &mut Integration| i.version.clone()
    );
    int_get!(
        "id",
        "string",
        "`CODE|VERSION`.",
        |i: &mut Integration| format!("{}|{}", i.code, i.version)
    );
    int_get!(
        "name",
        "string",
        "The display name.",
        |i: &mut Integration| i.name.clone()
    );
    int_get!(
        "status",
        "string",
        "`CONFIGURED`, `ACTIVATED`, `ACTIVATION_INPROGRESS`, `FAILEDACTIVATION` or `INPROGRESS` (incomplete draft).",
        |i: &mut Integration| i.status.clone()
    );
    int_get!(
        "locked",
        "bool",
        "True while someone edits it (OIC refuses to export it).",
        |i: &mut Integration| i.locked
    );
    int_get!(
        "scheduled",
        "bool",
        "True when a schedule is defined.",
        |i: &mut Integration| i.schedule_defined
    );
    int_get!(
        "project_type",
        "string",
        "`DEVELOPED`, `CUSTOM` or `PREBUILT` (accelerators cannot be exported).",
        |i: &mut Integration| i.project_type.clone()
    );
    int_get!(
        "project",
        "Dynamic",
        "The OIC 3 project code, or `()` for a global integration.",
        |i: &mut Integration| i.project_code.clone().or_unit()
    );
    int_get!(
        "last_updated",
        "string",
        "When it was last changed (as OIC reports it).",
        |i: &mut Integration| i.last_updated.clone()
    );
    int_get!(
        "last_updated_by",
        "string",
        "Who changed it last (an e-mail or user name): the owner notified about failures.",
        |i: &mut Integration| i.last_updated_by.clone()
    );
    int_get!(
        "connections",
        "Array",
        "The codes of the connections it uses.",
        |i: &mut Integration| -> Array {
            i.connections.iter().cloned().map(Dynamic::from).collect()
        }
    );
    int_get!(
        "lookups",
        "Array",
        "The names of the lookups it uses.",
        |i: &mut Integration| -> Array { i.lookups.iter().cloned().map(Dynamic::from).collect() }
    );
    register_views(
        e,
        "Integration",
        "i",
        "integration",
        "`CODE|VERSION  STATUS  Name`.",
        integration_text,
        integration_map,
    );

    // Artifact
    macro_rules! art_get {
        ($prop:literal, $ty:literal, $doc:literal, $f:expr) => {
            getter(
                $prop,
                &["a: Artifact", $ty],
                concat!($doc, "\n\n# Example\n```rhai\nprint(a.", $prop, ");\n```"),
            )
            .register_into_engine(e, $f);
        };
    }
    art_get!(
        "kind",
        "string",
        "`integration`, `project`, `lookup`, `library` or `package`.",
        |a: &mut Artifact| a.key.kind.as_str().to_string()
    );
    art_get!(
        "code",
        "string",
        "The code of what the archive holds.",
        |a: &mut Artifact| a.key.code.clone()
    );
    art_get!(
        "version",
        "string",
        "The version (empty for kinds without one).",
        |a: &mut Artifact| a.key.version.clone()
    );
    art_get!("id", "string", "`CODE|VERSION`.", |a: &mut Artifact| a
        .key
        .id());
    art_get!("size", "int", "Size in bytes.", |a: &mut Artifact| a.size
        as i64);
    art_get!(
        "sha256",
        "string",
        "The sha256 of the archive (hex).",
        |a: &mut Artifact| a.sha256.clone()
    );
    art_get!(
        "source",
        "string",
        "Where it came from: the instance it was exported from.",
        |a: &mut Artifact| a.source.clone()
    );
    art_get!(
        "source_status",
        "Dynamic",
        "Its status on the source (`ACTIVATED`, ...), or `()`.",
        |a: &mut Artifact| a.source_status.clone().or_unit()
    );
    art_get!(
        "file_name",
        "string",
        "The conventional file name (`CODE_VERSION.iar`).",
        |a: &mut Artifact| a.file_name()
    );
    register_views(
        e,
        "Artifact",
        "a",
        "artifact",
        "`kind CODE|VERSION (size bytes, sha256 prefix)`.",
        artifact_text,
        artifact_map,
    );
    global("verify", &["a: Artifact", "bool"], "Re-reads the file and checks its size and sha256; raises an `integrity` error on a mismatch.\n\n# Example\n```rhai\na.verify();\n```")
        .register_into_engine(e, |a: &mut Artifact| -> Result<bool, Box<EvalAltResult>> {
            if a.is_planned() {
                return Ok(true);
            }
            a.verify().map(|_| true).map_err(|ie| errors::script_error("integrity", None, ie.to_string(), Ctx::default().artifact(a.key.id())))
        });
}

/// Registers the four views of a script type — `to_string`, `to_debug` (the same text), `to_map`
/// and `to_json` (the map as JSON) — from its text and map functions.
fn register_views<T: Clone + Send + Sync + 'static>(
    e: &mut Engine,
    ty: &str,
    var: &str,
    noun: &str,
    text_doc: &str,
    text: fn(&T) -> String,
    map: fn(&T) -> Map,
) {
    let this = format!("{var}: {ty}");
    global(
        "to_string",
        &[&this, "string"],
        &format!("{text_doc}\n\n# Example\n```rhai\nprint({var});\n```"),
    )
    .register_into_engine(e, move |x: &mut T| text(x));
    global(
        "to_debug",
        &[&this, "string"],
        &format!("Same as `to_string`.\n\n# Example\n```rhai\ndebug({var});\n```"),
    )
    .register_into_engine(e, move |x: &mut T| text(x));
    global(
        "to_map",
        &[&this, "Map"],
        &format!(
            "The {noun}'s fields as a map.\n\n# Example\n```rhai\nlet m = {var}.to_map();\n```"
        ),
    )
    .register_into_engine(e, move |x: &mut T| map(x));
    global(
        "to_json",
        &[&this, "string"],
        &format!(
            "The {noun}'s fields as JSON.\n\n# Example\n```rhai\nprint({var}.to_json());\n```"
        ),
    )
    .register_into_engine(e, move |x: &mut T| {
        super::util::to_json(&Dynamic::from_map(map(x)))
    });
}

/// `kind CODE|VERSION (size, sha256 prefix)`.
pub fn artifact_text(a: &Artifact) -> String {
    if a.is_planned() {
        return format!("{} {} (planned, from {})", a.key.kind, a.key.id(), a.source);
    }
    format!(
        "{} {} ({} bytes, sha256 {}…, from {})",
        a.key.kind,
        a.key.id(),
        a.size,
        &a.sha256[..a.sha256.len().min(12)],
        a.source
    )
}

fn get_one(i: &mut Instance, id: IntegrationId) -> Result<Integration, Box<EvalAltResult>> {
    let r = i
        .host
        .read("get_integration", || i.client.get_integration(&id))?
        .map_err(|e| oic_err(e, Ctx::instance(&i.name()).artifact(id.to_string())))?;
    r.ok_or_else(|| {
        errors::script_error(
            "http",
            Some(404),
            format!("integration {id} does not exist on {}", i.name()),
            Ctx::instance(&i.name()).artifact(id.to_string()),
        )
    })
}
