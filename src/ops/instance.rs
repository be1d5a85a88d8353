//! `migrate_instance`: everything an instance holds, moved by ferry's per-artifact path, in
//! dependency order: libraries, lookups, projects and packages (exported, then imported rank by
//! rank, each checked against the target), then the integrations, each carried through on its
//! own as soon as its export is in (the source's requests overlap the target's, no phase waits
//! for the whole of another): imported; the connections it uses configured (properties copied
//! from the source, credentials and overrides per environment) and tested, once, by the first
//! integration that needs them; activated (what was active on the source); its schedule put
//! (definition and state). Then the connections no activation needed, the activations whose
//! connections are not known, the integrations of packages, project ACLs and role grants in the
//! identity domain. With `stop_on_error` every export comes before the first import and every
//! connection before the first activation (the first failure stops the run before what follows).
//!
//! What moves is chosen by include/exclude rules (kind, code glob, status, project, updated
//! since); everything left out is listed with its reason, so a diff of source and target after
//! the run is empty except for it. Every change is an effect of the run: a resumed run skips
//! what its predecessor did, an import whose archive is already on the target is skipped by
//! checksum, and `--dry-run` plans it all. The report says what this path carries and drops
//! ([`coverage`]), next to OIC's own instance archive ([`super::instance_archive::coverage`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::OpsError;
use super::activate::ActivateWhen;
pub use super::connections::ConnectionResult;
use super::connections::{ConnectionSpec, update_and_test, update_from_source};
use super::ctx::{Ctx, fan_out};
use super::export::{ExportOptions, Exportable, export, export_to};
use super::grant::AccessTarget;
use super::import::{
    BeforeActivation, ImportOptions, ImportResult, activate_imported, import, import_arriving,
};
use super::instance_archive::Coverage;
use super::select::{OneOrMany, glob};
use crate::artifact::Artifact;
use crate::oic::{Connection, OicClient};
use crate::rbac::{IdentityClient, Principal, RoleMap};
use futures::FutureExt;
use futures::future::{LocalBoxFuture, Shared};

/// The kinds of things an instance holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    Integration,
    Project,
    Connection,
    Lookup,
    Library,
    Package,
    /// A role grant of the instance's OIC application (code `user:EMAIL` or `group:NAME`,
    /// version the role).
    Grant,
    /// A project's access control list (code: the project).
    Acl,
    /// A certificate uploaded to the instance (code: its alias). Listed and reported, never
    /// carried: OIC's API gives no certificate file or private key back.
    Certificate,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Integration => "integration",
            ItemKind::Project => "project",
            ItemKind::Connection => "connection",
            ItemKind::Lookup => "lookup",
            ItemKind::Library => "library",
            ItemKind::Package => "package",
            ItemKind::Grant => "grant",
            ItemKind::Acl => "acl",
            ItemKind::Certificate => "certificate",
        }
    }
}

/// One kind or several.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Kinds {
    One(ItemKind),
    Many(Vec<ItemKind>),
}

impl Kinds {
    fn contains(&self, k: ItemKind) -> bool {
        match self {
            Kinds::One(x) => *x == k,
            Kinds::Many(v) => v.contains(&k),
        }
    }
}

fn one_of(o: &OneOrMany, s: &str) -> bool {
    match o {
        OneOrMany::One(x) => x == s,
        OneOrMany::Many(v) => v.iter().any(|x| x == s),
    }
}

/// A rule: every field that is set must match. `code` is a glob over the code (the name of a
/// lookup or package, `user:EMAIL`/`group:NAME` for a grant).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rule {
    pub kind: Option<Kinds>,
    pub code: Option<String>,
    pub status: Option<OneOrMany>,
    /// The OIC 3 project an integration belongs to (or the project itself).
    pub project: Option<String>,
    /// A date or time prefix: updated at or after it.
    pub updated_since: Option<String>,
}

/// One thing the instance holds, as rules see it.
#[derive(Clone, Debug)]
pub struct Item {
    pub kind: ItemKind,
    pub code: String,
    pub version: String,
    pub status: Option<String>,
    pub project: Option<String>,
    pub updated: Option<String>,
}

impl Item {
    fn new(kind: ItemKind, code: &str, version: &str) -> Item {
        Item {
            kind,
            code: code.to_string(),
            version: version.to_string(),
            status: None,
            project: None,
            updated: None,
        }
    }
    /// `kind:CODE` or `kind:CODE|VERSION` (`connection:PROJECT/CODE` for a project's connection).
    pub fn id(&self) -> String {
        if self.kind == ItemKind::Connection
            && let Some(p) = &self.project
        {
            return format!("connection:{p}/{}", self.code);
        }
        if self.version.is_empty() {
            format!("{}:{}", self.kind.as_str(), self.code)
        } else {
            format!("{}:{}|{}", self.kind.as_str(), self.code, self.version)
        }
    }
}

impl Rule {
    fn matches(&self, it: &Item) -> bool {
        self.kind.as_ref().is_none_or(|k| k.contains(it.kind))
            && self
                .code
                .as_deref()
                .is_none_or(|g| glob(g).matches(&it.code))
            && self
                .status
                .as_ref()
                .is_none_or(|s| it.status.as_deref().is_some_and(|x| one_of(s, x)))
            && self
                .project
                .as_deref()
                .is_none_or(|p| it.project.as_deref() == Some(p))
            && self
                .updated_since
                .as_deref()
                .is_none_or(|s| it.updated.as_deref().is_some_and(|u| u >= s))
    }
}

/// Which integration versions move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Versions {
    /// Every version.
    All,
    /// The highest version of each code.
    Latest,
}

/// Options of `migrate_instance` (unknown keys refused).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MigrateOptions {
    /// When not empty, only what matches one of these moves.
    pub include: Vec<Rule>,
    /// What matches one of these stays.
    pub exclude: Vec<Rule>,
    /// `"all"` (default) or `"latest"` integration versions.
    pub versions: Versions,
    /// Replace what differs on the target (default true; unchanged archives are skipped).
    pub overwrite: bool,
    /// When to activate: `"keep"` (what was active on the source; default), `true`, `false`.
    pub activate: ActivateWhen,
    /// Per-environment connection settings, by connection code.
    pub connections: BTreeMap<String, ConnectionSpec>,
    /// Copy the source's (non-secret) connection properties and security policy (default true).
    pub copy_connection_properties: bool,
    /// Test every connection configured (default true).
    pub test_connections: bool,
    /// Copy project ACLs (default true; needs an identity domain for both instances).
    pub acls: bool,
    /// Copy the role grants of the source's OIC application (default true; same).
    pub grants: bool,
    /// Exports and imports at a time.
    pub concurrency: Option<usize>,
    pub activation_concurrency: Option<usize>,
    pub async_activation: bool,
    pub activation_timeout: u64,
    pub stop_on_error: bool,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            include: vec![],
            exclude: vec![],
            versions: Versions::All,
            overwrite: true,
            activate: ActivateWhen::Keep,
            connections: BTreeMap::new(),
            copy_connection_properties: true,
            test_connections: true,
            acls: true,
            grants: true,
            concurrency: None,
            activation_concurrency: None,
            async_activation: true,
            activation_timeout: 300,
            stop_on_error: false,
        }
    }
}

/// Something that did not move, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Excluded {
    pub id: String,
    pub reason: String,
}

/// What happened to one grant or ACL principal.
#[derive(Clone, Debug, Serialize)]
pub struct AccessResult {
    /// `grant` or `acl`.
    pub kind: String,
    /// `user:EMAIL` / `group:NAME`.
    pub principal: String,
    pub role: String,
    pub project: Option<String>,
    /// `granted`, `unchanged`, `planned`, `failed`.
    pub status: String,
    pub reason: Option<String>,
}

/// A certificate of the source: listed, not carried (OIC's API gives no certificate file or
/// private key back), with what the operator has to do.
#[derive(Clone, Debug, Serialize)]
pub struct CertificateLine {
    /// `certificate:NAME`.
    pub id: String,
    /// OIC's id: `installedType|type|category|name`.
    pub oic_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub cert_type: String,
    pub category: String,
    pub expires: Option<String>,
    /// Always false (kept so a report reads plainly).
    pub carried: bool,
    /// Whether the target already has a certificate with the same id (not compared: its file
    /// cannot be read).
    pub on_target: bool,
    pub reason: String,
}

/// The report of a whole-instance migration.
#[derive(Clone, Debug, Serialize)]
pub struct MigrationReport {
    pub source: String,
    pub target: String,
    /// Selected items per kind.
    pub selected: BTreeMap<String, usize>,
    pub excluded: Vec<Excluded>,
    pub imports: Vec<ImportResult>,
    /// Activations of integrations that came in packages.
    pub activations: Vec<super::activate::ActivationResult>,
    pub connections: Vec<ConnectionResult>,
    pub access: Vec<AccessResult>,
    /// The source's uploaded certificates the rules select: listed, not carried.
    pub certificates: Vec<CertificateLine>,
    /// Failures in all (imports, activations, connections, access).
    pub failed: usize,
    /// What this path carries and drops.
    pub coverage: Vec<Coverage>,
    /// What OIC's instance archive would carry and drop, for comparison.
    pub archive_coverage: Vec<Coverage>,
}

fn cov(item: &str, carried: bool, note: &str) -> Coverage {
    Coverage {
        item: item.into(),
        carried,
        note: note.into(),
    }
}

/// What ferry's per-artifact path carries and drops.
pub fn coverage(identity: bool) -> Vec<Coverage> {
    vec![
        cov(
            "integrations",
            true,
            "every version or the latest (`versions`), by include/exclude rules; locked and prebuilt ones are listed as excluded (OIC refuses to export them)",
        ),
        cov("projects", true, "as .car archives with their deployments"),
        cov(
            "connections",
            true,
            "properties and security policy copied from the source, per-environment settings and credentials from `connections` (OIC never returns credentials); each tested; a connection reaches the target with an integration or project that uses it (OIC has no API to create one)",
        ),
        cov("lookups", true, "all selected"),
        cov("libraries", true, "all selected"),
        cov(
            "packages",
            true,
            "with their integrations (not exported twice)",
        ),
        cov(
            "schedules",
            true,
            "definition and state: each scheduled integration's schedule is exported beside its archive and put on the target, started, paused or stopped as on the source, after the activations",
        ),
        cov(
            "certificates",
            false,
            "listed, not carried: OIC's REST API lists certificates and takes uploads, but gives no certificate file back (nor any private key); each uploaded certificate the rules select is in the report (`certificates`) to upload on the target",
        ),
        cov(
            "role grants",
            identity,
            if identity {
                "copied in the identity domain, principals mapped by e-mail or group name"
            } else {
                "dropped: no identity domain configured for both instances"
            },
        ),
        cov(
            "project ACLs",
            identity,
            if identity {
                "copied, principals mapped by e-mail or group name"
            } else {
                "dropped: no identity domain configured for both instances"
            },
        ),
        cov(
            "selection",
            true,
            "include/exclude rules (kind, code glob, status, project, updated since); everything left out is listed",
        ),
    ]
}

/// The selection: what matches the rules, and what does not with its reason.
struct Selection {
    chosen: BTreeSet<String>,
    excluded: Vec<Excluded>,
}

fn select(items: &[Item], o: &MigrateOptions) -> Selection {
    let mut chosen = BTreeSet::new();
    let mut excluded = vec![];
    for it in items {
        let why = if !o.include.is_empty() && !o.include.iter().any(|r| r.matches(it)) {
            Some("matches no include rule".to_string())
        } else {
            o.exclude
                .iter()
                .position(|r| r.matches(it))
                .map(|n| format!("exclude rule {}", n + 1))
        };
        match why {
            Some(reason) => excluded.push(Excluded {
                id: it.id(),
                reason,
            }),
            None => {
                chosen.insert(it.id());
            }
        }
    }
    Selection { chosen, excluded }
}

/// The source's inventory: what it holds, as exportables and as items for the rules.
struct Inventory {
    items: Vec<Item>,
    exportables: Vec<(Item, Exportable)>,
    connections: Vec<(Item, Option<String>, Connection)>,
    /// Integrations that cannot be exported, with the reason.
    refused: Vec<Excluded>,
    /// The integrations each package carries: (package, id, status on the source).
    packaged: Vec<(String, crate::oic::IntegrationId, String)>,
    /// The certificates uploaded to the source (those shipped with OIC are on every instance).
    certificates: Vec<(Item, crate::oic::Certificate)>,
}

async fn read<T, F, Fut>(ctx: &dyn Ctx, at: &str, what: &str, f: F) -> Result<T, OpsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::oic::OicError>>,
{
    ctx.exec()
        .read(what, f)
        .await
        .map_err(|e| OpsError::oic(at, e))
}

async fn inventory(
    ctx: &dyn Ctx,
    src: &OicClient,
    o: &MigrateOptions,
) -> Result<Inventory, OpsError> {
    let at = src.name();
    let mut inv = Inventory {
        items: vec![],
        exportables: vec![],
        connections: vec![],
        refused: vec![],
        packaged: vec![],
        certificates: vec![],
    };
    // The lists are independent: read together (one round trip, not eight one after another).
    let projects = async {
        if src.generation().number() >= 3 {
            read(ctx, at, "list_projects", || src.list_projects(None)).await
        } else {
            Ok(vec![])
        }
    };
    let (projects, packages, mut ints, lookups, libraries, connections, certs) = futures::try_join!(
        projects,
        read(ctx, at, "list_packages", || src.list_packages(None)),
        read(ctx, at, "list_integrations", || src.list_integrations(None)),
        read(ctx, at, "list_lookups", || src.list_lookups(None)),
        read(ctx, at, "list_libraries", || src.list_libraries(None)),
        read(ctx, at, "list_connections", || src
            .list_connections(None, None)),
        certificates(ctx, src),
    )?;
    // Each project's connections, read together.
    let project_conns = futures::future::try_join_all(projects.iter().map(|p| {
        read(ctx, at, "list_connections", || {
            src.list_connections(Some(&p.code), None)
        })
    }))
    .await?;
    let status: BTreeMap<String, String> = ints
        .iter()
        .map(|i| (format!("{}|{}", i.code, i.version), i.status.clone()))
        .collect();
    for p in &packages {
        for i in &p.integrations {
            let id = format!("{}|{}", i.code, i.version);
            let st = status.get(&id).cloned().unwrap_or_else(|| i.status.clone());
            inv.packaged.push((
                p.name.clone(),
                crate::oic::IntegrationId::new(&i.code, &i.version),
                st,
            ));
        }
    }
    let in_package: BTreeSet<String> = inv
        .packaged
        .iter()
        .map(|(_, id, _)| id.to_string())
        .collect();
    if o.versions == Versions::Latest {
        ints = super::select::select(
            ints,
            &super::select::Filter {
                latest: true,
                ..Default::default()
            },
        )?;
    }
    for i in ints {
        inv.add_integration(i, &in_package);
    }
    for p in packages {
        let it = Item::new(ItemKind::Package, &p.name, "");
        inv.items.push(it.clone());
        inv.exportables.push((it, Exportable::Package(Box::new(p))));
    }
    for (p, conns) in projects.into_iter().zip(project_conns) {
        inv.add_project(p, conns);
    }
    for l in lookups {
        let mut it = Item::new(ItemKind::Lookup, &l.name, "");
        it.status = Some(l.status.clone()).filter(|s| !s.is_empty());
        inv.items.push(it.clone());
        inv.exportables.push((it, Exportable::Lookup(Box::new(l))));
    }
    for l in libraries {
        let mut it = Item::new(ItemKind::Library, &l.code, &l.version);
        it.status = Some(l.status.clone()).filter(|s| !s.is_empty());
        inv.items.push(it.clone());
        inv.exportables.push((it, Exportable::Library(Box::new(l))));
    }
    for c in connections {
        let mut it = Item::new(ItemKind::Connection, &c.id, "");
        it.status = Some(c.status.clone());
        inv.connections.push((it, None, c));
    }
    for (it, _, _) in &inv.connections {
        inv.items.push(it.clone());
    }
    for c in certs {
        if !c.is_user() {
            continue;
        }
        let mut it = Item::new(ItemKind::Certificate, &c.name, "");
        it.status = Some(c.status.clone()).filter(|s| !s.is_empty());
        it.updated = c.last_updated.clone();
        inv.items.push(it.clone());
        inv.certificates.push((it, c));
    }
    Ok(inv)
}

impl Inventory {
    /// An integration of the source: refused (locked, prebuilt), or an item, exported unless a
    /// package carries it.
    fn add_integration(&mut self, i: crate::oic::Integration, in_package: &BTreeSet<String>) {
        let mut it = Item::new(ItemKind::Integration, &i.code, &i.version);
        it.status = Some(i.status.clone());
        it.project = i.project_code.clone();
        it.updated = Some(i.last_updated.clone());
        if i.locked || i.project_type == "PREBUILT" {
            self.refused.push(Excluded {
                id: it.id(),
                reason: if i.locked {
                    "locked: OIC refuses to export it".into()
                } else {
                    "prebuilt: OIC refuses to export it".into()
                },
            });
            return;
        }
        self.items.push(it.clone());
        if !in_package.contains(&format!("{}|{}", i.code, i.version)) {
            self.exportables.push((it, Exportable::Integration(i)));
        }
    }

    /// A project of the source, its connections and its ACL.
    fn add_project(&mut self, p: crate::oic::Project, conns: Vec<Connection>) {
        let mut it = Item::new(ItemKind::Project, &p.code, "");
        it.status = Some(p.status.clone()).filter(|s| !s.is_empty());
        it.project = Some(p.code.clone());
        self.items.push(it.clone());
        for c in conns {
            let mut ci = Item::new(ItemKind::Connection, &c.id, "");
            ci.status = Some(c.status.clone());
            ci.project = Some(p.code.clone());
            self.connections.push((ci, Some(p.code.clone()), c));
        }
        let mut acl = Item::new(ItemKind::Acl, &p.code, "");
        acl.project = Some(p.code.clone());
        self.items.push(acl);
        self.exportables
            .push((it, Exportable::Project(Box::new(p))));
    }
}

/// The certificates of an instance (metadata only); none when the instance has no such API
/// (404).
async fn certificates(
    ctx: &dyn Ctx,
    c: &OicClient,
) -> Result<Vec<crate::oic::Certificate>, OpsError> {
    match ctx
        .exec()
        .read("list_certificates", || c.list_certificates())
        .await
    {
        Err(e) if e.is_status(404) => Ok(vec![]),
        r => r.map_err(|e| OpsError::oic(c.name(), e)),
    }
}

/// The report lines of the selected certificates: none is carried, each says what to do.
fn certificate_lines(
    chosen: &[&crate::oic::Certificate],
    on_target: &BTreeSet<String>,
    target: &str,
) -> Vec<CertificateLine> {
    chosen
        .iter()
        .map(|c| {
            let there = on_target.contains(&c.id);
            let what = if c.has_private_key() {
                "OIC gives neither its file nor its private key back"
            } else {
                "OIC gives no certificate file back"
            };
            let reason = if there {
                format!("not carried ({what}); {target} has one with the same id (not compared)")
            } else if c.has_private_key() {
                format!("not carried ({what}): upload it on {target} with its key and passwords")
            } else {
                format!("not carried ({what}): upload it on {target}")
            };
            CertificateLine {
                id: format!("certificate:{}", c.name),
                oic_id: c.id.clone(),
                name: c.name.clone(),
                cert_type: c.cert_type.clone(),
                category: c.category.clone(),
                expires: c.expires.clone(),
                carried: false,
                on_target: there,
                reason,
            }
        })
        .collect()
}

/// Configures (and tests) one connection on the target: the source's properties and security
/// policy, the per-environment settings over them (see [`update_from_source`]).
async fn configure_one(
    ctx: &dyn Ctx,
    dst: &OicClient,
    project: Option<String>,
    src_conn: Connection,
    o: &MigrateOptions,
) -> ConnectionResult {
    let code = src_conn.id.clone();
    let p = project.as_deref();
    let exists = ctx
        .exec()
        .read("get_connection", || dst.get_connection(p, &code))
        .await;
    let missing = match exists {
        Ok(Some(_)) => None,
        Ok(None) => Some(format!(
            "not on {}: no migrated integration or project uses it (OIC has no API to create a connection)",
            dst.name()
        )),
        Err(e) => Some(e.to_string()),
    };
    if let Some(error) = missing {
        return ConnectionResult {
            connection: code,
            project,
            error: Some(error),
            ..Default::default()
        };
    }
    let update = update_from_source(
        &src_conn,
        o.connections.get(&code),
        o.copy_connection_properties,
    );
    // A connection that is a draft on the source stays one: it is not tested.
    let test = o.test_connections && src_conn.status == "CONFIGURED";
    update_and_test(ctx, dst, p, &code, update, test).await
}

/// The identity domains and OIC applications of both instances, when configured.
struct Access {
    src: IdentityClient,
    src_app: String,
    dst: IdentityClient,
    dst_app: String,
}

fn access(ctx: &dyn Ctx, src: &str, dst: &str) -> Option<Access> {
    let cfg = ctx.config();
    let sp = cfg.identity_for_instance(src)?;
    let dp = cfg.identity_for_instance(dst)?;
    Some(Access {
        src: IdentityClient::new(sp).ok()?,
        src_app: sp.apps.get(src).cloned().unwrap_or_default(),
        dst: IdentityClient::new(dp).ok()?,
        dst_app: dp.apps.get(dst).cloned().unwrap_or_default(),
    })
}

/// The role grants of the source's OIC application, as a role map (principals by e-mail or
/// group name), with the items the rules see.
async fn source_grants(ctx: &dyn Ctx, a: &Access) -> Result<Vec<(Item, Principal)>, String> {
    let exec = ctx.exec();
    let app = exec
        .read("find_app", || a.src.find_app(&a.src_app))
        .await
        .map_err(|e| e.to_string())?;
    let role_name: BTreeMap<&str, &str> = app
        .roles
        .iter()
        .map(|(n, id)| (id.as_str(), n.as_str()))
        .collect();
    let grants = exec
        .read("list_grants", || a.src.list_grants(&app.id))
        .await
        .map_err(|e| e.to_string())?;
    let mut out = vec![];
    for (kind, id, role_id) in grants {
        let Some(role) = role_name.get(role_id.as_str()) else {
            continue;
        };
        let who = exec
            .read("by_id", || a.src.by_id(kind, &id))
            .await
            .map_err(|e| e.to_string())?;
        let Some(who) = who else { continue };
        let name = match kind {
            crate::rbac::PrincipalKind::User => who.email.clone().unwrap_or(who.name.clone()),
            crate::rbac::PrincipalKind::Group => who.name.clone(),
        };
        let p = Principal { kind, name };
        let it = Item::new(ItemKind::Grant, &p.to_string(), role);
        out.push((it, p));
    }
    Ok(out)
}

/// Moves everything `src` holds to `dst` (see the module docs), and adds what this path and OIC's
/// instance archive carry to the run's report.html.
pub async fn migrate_instance(
    ctx: &dyn Ctx,
    src: &OicClient,
    dst: &OicClient,
    o: &MigrateOptions,
) -> Result<MigrationReport, OpsError> {
    use super::instance_archive::coverage_html;
    let r = migrate(ctx, src, dst, o).await?;
    let rec = ctx.exec().record();
    rec.add_report_section(&coverage_html("ferry (per artifact)", &r.coverage));
    let archive = "OIC instance archive (for comparison)";
    rec.add_report_section(&coverage_html(archive, &r.archive_coverage));
    Ok(r)
}

/// The steps of [`migrate_instance`].
async fn migrate(
    ctx: &dyn Ctx,
    src: &OicClient,
    dst: &OicClient,
    o: &MigrateOptions,
) -> Result<MigrationReport, OpsError> {
    let inv = inventory(ctx, src, o).await?;
    let acc = access(ctx, src.name(), dst.name());
    let mut items = inv.items.clone();
    let grants = match (&acc, o.grants) {
        (Some(a), true) => source_grants(ctx, a)
            .await
            .map_err(|m| OpsError::Usage(format!("reading the grants of {}: {m}", src.name())))?,
        _ => vec![],
    };
    items.extend(grants.iter().map(|(i, _)| i.clone()));
    let sel = select(&items, o);
    let mut excluded = inv.refused.clone();
    excluded.extend(sel.excluded.iter().cloned());
    let mut selected: BTreeMap<String, usize> = BTreeMap::new();
    // Certificates are listed, not carried: not counted as moved.
    for it in items.iter().filter(|i| i.kind != ItemKind::Certificate) {
        if sel.chosen.contains(&it.id()) {
            *selected.entry(it.kind.as_str().to_string()).or_default() += 1;
        }
    }

    // 1-2. Export what is selected (a read: also in a dry run) and import it in dependency
    // order: libraries, lookups, projects and packages first (exported, then imported rank by
    // rank); the integrations' exports start with them, and each integration is imported as soon
    // as its archive is in and those are done (the source's requests overlap the target's).
    let (ints, pre): (Vec<Exportable>, Vec<Exportable>) = inv
        .exportables
        .iter()
        .filter(|(it, _)| sel.chosen.contains(&it.id()))
        .map(|(_, e)| e.clone())
        .partition(|e| matches!(e, Exportable::Integration(_)));
    let eo = ExportOptions {
        concurrency: o.concurrency,
        stop_on_error: o.stop_on_error,
        label: None,
    };
    let io = ImportOptions {
        overwrite: o.overwrite,
        activate: o.activate,
        concurrency: o.concurrency,
        activation_concurrency: o.activation_concurrency,
        async_activation: o.async_activation,
        activation_timeout: o.activation_timeout,
        stop_on_error: o.stop_on_error,
        tracing: None,
        payload_tracing: None,
        schedules: Default::default(),
        connections: None,
    };
    let setup = ConnSetup::new(ctx, dst, &inv, &sel, o);
    let imported = if o.stop_on_error {
        // The first failure stops the run before anything after it: every export before the
        // first import.
        let mut wanted = pre;
        wanted.extend(ints);
        let artifacts = export(ctx, src, wanted, &eo).await?;
        import(ctx, dst, artifacts, &io).await?
    } else {
        let n_ints = ints.len();
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let exports = export_to(ctx, src, ints, &eo, Some(tx));
        let imports = async {
            let first = export(ctx, src, pre, &eo).await?;
            let mut imported = import(ctx, dst, first, &io).await?;
            let then: &dyn BeforeActivation = &setup;
            imported.extend(import_arriving(ctx, dst, rx, n_ints, &io, Some(then)).await?);
            Ok::<_, OpsError>(imported)
        };
        // Both run to their end (no request is dropped half way), then an error is raised.
        let (exported, imported) = futures::join!(exports, imports);
        exported?;
        imported?
    };

    // 3. Connections, configured and tested before any activation that needs them (those the
    // pipeline did not need yet now).
    let connections = migrate_connections(ctx, dst, &setup, o).await?;

    // 4. Activations: the imported integrations, then those that came in packages.
    let imports = activate_imported(ctx, dst, imported, &io).await?;
    let activations = activate_packaged(ctx, dst, &inv, &sel, o).await?;

    // 5. Access: project ACLs, then role grants.
    let mut access_rows = vec![];
    if let Some(a) = &acc {
        if o.acls && dst.generation().number() >= 3 {
            access_rows = copy_acls(ctx, src, dst, a, &items, &sel).await;
        }
        access_rows.extend(apply_grants(ctx, dst, a, &grants, &sel).await);
    }
    // 6. Certificates: listed with what to do.
    let certificate_rows = certificate_report(ctx, dst, &inv, &sel).await?;
    let failed = imports.iter().filter(|r| r.error.is_some()).count()
        + activations.iter().filter(|r| r.error.is_some()).count()
        + connections.iter().filter(|c| c.error.is_some()).count()
        + access_rows.iter().filter(|a| a.status == "failed").count();
    Ok(MigrationReport {
        source: src.name().to_string(),
        target: dst.name().to_string(),
        selected,
        excluded,
        imports,
        activations,
        connections,
        access: access_rows,
        certificates: certificate_rows,
        failed,
        coverage: coverage(acc.is_some()),
        archive_coverage: super::instance_archive::coverage(
            true,
            super::instance_archive::ModeOpt::ImportOnly,
            false,
        ),
    })
}

/// Step 6 of [`migrate_instance`]: the selected certificates, each with what to do (the
/// target's are read to say which it has already).
async fn certificate_report(
    ctx: &dyn Ctx,
    dst: &OicClient,
    inv: &Inventory,
    sel: &Selection,
) -> Result<Vec<CertificateLine>, OpsError> {
    let chosen: Vec<&crate::oic::Certificate> = inv
        .certificates
        .iter()
        .filter(|(it, _)| sel.chosen.contains(&it.id()))
        .map(|(_, c)| c)
        .collect();
    let on_target: BTreeSet<String> = if chosen.is_empty() {
        BTreeSet::new()
    } else {
        certificates(ctx, dst)
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect()
    };
    Ok(certificate_lines(&chosen, &on_target, dst.name()))
}

/// The selected connections (a project's only with its project): each configured and tested on
/// the target once, by the first that needs it: an integration that uses it, just imported (the
/// connection reached the target with it), before its activation; the rest at step 3.
struct ConnSetup<'a> {
    /// Every selected connection, in order, with its configuration (global connections: shared
    /// by the integrations that use them).
    all: Vec<Shared<LocalBoxFuture<'a, ConnectionResult>>>,
    /// The global connections by code (indices in `all`).
    by_code: BTreeMap<String, usize>,
    /// The connections each selected integration uses (`CODE|VERSION`), from the source's list.
    uses: BTreeMap<String, Vec<String>>,
}

impl<'a> ConnSetup<'a> {
    fn new(
        ctx: &'a dyn Ctx,
        dst: &'a OicClient,
        inv: &Inventory,
        sel: &Selection,
        o: &'a MigrateOptions,
    ) -> ConnSetup<'a> {
        let mut all = vec![];
        let mut by_code = BTreeMap::new();
        let conns = inv
            .connections
            .iter()
            .filter(|(it, _, _)| sel.chosen.contains(&it.id()))
            .filter(|(_, p, _)| {
                p.as_ref()
                    .is_none_or(|p| sel.chosen.contains(&format!("project:{p}")))
            });
        for (_, p, c) in conns {
            if p.is_none() {
                by_code.insert(c.id.clone(), all.len());
            }
            let (p, c) = (p.clone(), c.clone());
            all.push(configure_one(ctx, dst, p, c, o).boxed_local().shared());
        }
        let uses = inv
            .exportables
            .iter()
            .filter_map(|(it, e)| match e {
                Exportable::Integration(i) if sel.chosen.contains(&it.id()) => {
                    Some((format!("{}|{}", i.code, i.version), i.connections.clone()))
                }
                _ => None,
            })
            .collect();
        ConnSetup { all, by_code, uses }
    }
}

impl BeforeActivation for ConnSetup<'_> {
    /// The selected connections `a` uses, configured; `None` when its connections are not known.
    fn ready<'b>(&'b self, a: &'b Artifact) -> Option<LocalBoxFuture<'b, ()>> {
        let codes = self
            .uses
            .get(&format!("{}|{}", a.key.code, a.key.version))?;
        if codes.is_empty() {
            return None;
        }
        let setups: Vec<_> = codes
            .iter()
            .filter_map(|c| self.by_code.get(c).map(|&i| self.all[i].clone()))
            .collect();
        // One after the other: the place of the fan-out holds one request at a time (the
        // target's limit counts them all).
        Some(
            async move {
                for s in setups {
                    s.await;
                }
            }
            .boxed_local(),
        )
    }
}

/// Step 3 of [`migrate_instance`]: the selected connections configured and tested on the target
/// (those an integration's activation needed already are); with `stop_on_error` the first
/// failure stops.
async fn migrate_connections(
    ctx: &dyn Ctx,
    dst: &OicClient,
    setup: &ConnSetup<'_>,
    o: &MigrateOptions,
) -> Result<Vec<ConnectionResult>, OpsError> {
    let conc = o.concurrency.unwrap_or(ctx.bounds().imports);
    let connections = fan_out(
        ctx.bar(setup.all.len(), "connections"),
        conc,
        setup.all.clone(),
        |c| c,
    )
    .await;
    if o.stop_on_error
        && let Some(bad) = connections.iter().find(|c| c.error.is_some())
    {
        return Err(OpsError::Connection {
            at: dst.name().to_string(),
            message: format!(
                "connection {} on {}: {}",
                bad.connection,
                dst.name(),
                bad.error.clone().unwrap_or_default()
            ),
        });
    }
    Ok(connections)
}

/// Step 4 of [`migrate_instance`], second part: the integrations that came in selected packages,
/// activated as the options say.
async fn activate_packaged(
    ctx: &dyn Ctx,
    dst: &OicClient,
    inv: &Inventory,
    sel: &Selection,
    o: &MigrateOptions,
) -> Result<Vec<super::activate::ActivationResult>, OpsError> {
    let packaged: Vec<crate::oic::IntegrationId> = inv
        .packaged
        .iter()
        .filter(|(p, _, _)| sel.chosen.contains(&format!("package:{p}")))
        .filter(|(_, _, st)| match o.activate {
            ActivateWhen::Always => true,
            ActivateWhen::Never => false,
            ActivateWhen::Keep => st == "ACTIVATED",
        })
        .map(|(_, id, _)| id.clone())
        .collect();
    super::activate::set_active(
        ctx,
        dst,
        packaged,
        true,
        &super::activate::ActivateOpts {
            concurrency: o.activation_concurrency,
            async_activation: o.async_activation,
            activation_timeout: o.activation_timeout,
            stop_on_error: o.stop_on_error,
        },
    )
    .await
}

/// The selected projects' ACLs copied to the target (each principal a row).
async fn copy_acls(
    ctx: &dyn Ctx,
    src: &OicClient,
    dst: &OicClient,
    a: &Access,
    items: &[Item],
    sel: &Selection,
) -> Vec<AccessResult> {
    let mut rows = vec![];
    for it in items.iter().filter(|i| i.kind == ItemKind::Acl) {
        if !sel.chosen.contains(&it.id()) || !sel.chosen.contains(&format!("project:{}", it.code)) {
            continue;
        }
        match super::grant::copy_acl(ctx.exec(), src, Some(&a.src), dst, &a.dst, &it.code).await {
            Ok(acl) => rows.extend(acl.into_iter().map(|r| AccessResult {
                kind: "acl".into(),
                principal: format!("{}:{}", r.kind.as_str(), r.name),
                role: r.role,
                project: Some(it.code.clone()),
                status: r.status.as_str().into(),
                reason: r.reason,
            })),
            Err(e) => rows.push(AccessResult {
                kind: "acl".into(),
                principal: String::new(),
                role: String::new(),
                project: Some(it.code.clone()),
                status: "failed".into(),
                reason: Some(e.to_string()),
            }),
        }
    }
    rows
}

/// The selected role grants of the source applied to the target's OIC application.
async fn apply_grants(
    ctx: &dyn Ctx,
    dst: &OicClient,
    a: &Access,
    grants: &[(Item, Principal)],
    sel: &Selection,
) -> Vec<AccessResult> {
    let mut map = RoleMap::default();
    for (it, p) in grants {
        if sel.chosen.contains(&it.id()) {
            let _ = map.push(p.clone(), &it.version, None, "source grants");
        }
    }
    if map.entries.is_empty() {
        return vec![];
    }
    let target = AccessTarget {
        identity: &a.dst,
        app: a.dst_app.clone(),
        oic: Some(dst),
    };
    super::grant::grant(ctx.exec(), &target, &map)
        .await
        .into_iter()
        .map(|r| AccessResult {
            kind: "grant".into(),
            principal: r.principal.to_string(),
            role: r.role,
            project: r.project,
            status: r.status.as_str().into(),
            reason: r.reason,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn it(kind: ItemKind, code: &str, status: &str) -> Item {
        let mut i = Item::new(kind, code, "");
        i.status = Some(status.into());
        i
    }

    #[test]
    fn include_then_exclude_with_reasons() {
        let items = vec![
            it(ItemKind::Integration, "HR_A", "ACTIVATED"),
            it(ItemKind::Integration, "FIN_B", "CONFIGURED"),
            it(ItemKind::Lookup, "HR_CODES", "CONFIGURED"),
        ];
        let o: MigrateOptions = serde_json::from_value(serde_json::json!({
            "include": [{"code": "HR_*"}],
            "exclude": [{"kind": "lookup"}],
        }))
        .unwrap();
        let s = select(&items, &o);
        assert_eq!(
            s.chosen.iter().cloned().collect::<Vec<_>>(),
            vec!["integration:HR_A"]
        );
        assert_eq!(s.excluded.len(), 2);
        assert!(s.excluded.iter().any(|e| e.reason == "exclude rule 1"));
        assert!(
            s.excluded
                .iter()
                .any(|e| e.reason == "matches no include rule")
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = serde_json::from_value::<MigrateOptions>(
            serde_json::json!({"exclude": [{"kode": "X"}]}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("kode"), "{e}");
        assert!(
            serde_json::from_value::<MigrateOptions>(serde_json::json!({"verions": "all"}))
                .is_err()
        );
    }
}
