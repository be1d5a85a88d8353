//! Comparing instances: `diff` (what is missing, extra or different on a target compared with a
//! source: integrations, or with `all` everything an instance holds) and `verify` (that an
//! expected set of integrations landed with the expected statuses).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::OpsError;
use super::ctx::{Ctx, fan_out};
use super::select::{Filter, select};
use crate::oic::{Acl, Integration, IntegrationId, OicClient, OicError};

/// Options of `diff` (unknown keys refused).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiffOptions {
    /// Only the integrations that match this filter.
    pub filter: Option<Filter>,
    /// Export both sides of every common integration and compare the archives' content digests
    /// (`vault::content_hash`: entry names and contents, export time stamps left out).
    pub checksums: bool,
    /// Everything the instances hold: projects and their ACLs, connections (status, security
    /// policy, non-secret properties), lookups, libraries, packages; ids get a kind prefix
    /// (`integration:CODE|VERSION`, `connection:CODE`, `acl:PROJECT`, ...).
    pub all: bool,
}

/// One difference of a thing both sides hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub id: String,
    /// `version`, `status`, `checksum`, `security_policy`, `property:NAME`, `columns`, `rows`,
    /// `ROLE` (ACLs).
    pub field: String,
    pub source: String,
    pub target: String,
}

/// The result of `diff`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct InstanceDiff {
    pub source: String,
    pub target: String,
    /// On the source only.
    pub missing: Vec<String>,
    /// On the target only.
    pub extra: Vec<String>,
    pub different: Vec<Difference>,
    /// Things on both sides without a difference.
    pub same: usize,
}

impl InstanceDiff {
    /// True when both sides hold the same.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.different.is_empty()
    }
}

/// What one side holds: id -> (field -> value).
type Facts = BTreeMap<String, BTreeMap<String, String>>;

async fn read<T, F, Fut>(ctx: &dyn Ctx, c: &OicClient, what: &str, f: F) -> Result<T, OpsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, OicError>>,
{
    ctx.exec()
        .read(what, f)
        .await
        .map_err(|e| OpsError::oic(c.name(), e))
}

fn acl_facts(acl: &Acl) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for (role, r) in [
        ("administrators", &acl.administrators),
        ("editors", &acl.editors),
        ("viewers", &acl.viewers),
        ("monitors", &acl.monitors),
    ] {
        let mut who: Vec<String> = r
            .allowed
            .iter()
            .map(|p| format!("{}:{}", p.kind, p.display_name))
            .collect();
        who.sort();
        m.insert(
            role.to_string(),
            format!("allowAll={} [{}]", r.allow_all, who.join(", ")),
        );
    }
    m
}

fn conn_facts(c: &crate::oic::Connection) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("status".into(), c.status.clone());
    m.insert("security_policy".into(), c.security_policy.clone());
    for p in &c.connection_properties {
        let secret = p
            .property_group
            .as_deref()
            .is_some_and(|g| g.eq_ignore_ascii_case("CREDENTIALS"));
        if let Some(v) = &p.property_value
            && !secret
        {
            m.insert(format!("property:{}", p.property_name), v.clone());
        }
    }
    m
}

/// Everything but the integrations, as facts.
async fn other_facts(ctx: &dyn Ctx, c: &OicClient) -> Result<Facts, OpsError> {
    let mut f = Facts::new();
    if c.generation().number() >= 3 {
        for p in read(ctx, c, "list_projects", || c.list_projects(None)).await? {
            f.insert(format!("project:{}", p.code), BTreeMap::new());
            let acl = read(ctx, c, "get_project_acl", || c.get_project_acl(&p.code)).await?;
            f.insert(format!("acl:{}", p.code), acl_facts(&acl));
            for conn in read(ctx, c, "list_connections", || {
                c.list_connections(Some(&p.code), None)
            })
            .await?
            {
                f.insert(
                    format!("connection:{}/{}", p.code, conn.id),
                    conn_facts(&conn),
                );
            }
        }
    }
    for conn in read(ctx, c, "list_connections", || {
        c.list_connections(None, None)
    })
    .await?
    {
        f.insert(format!("connection:{}", conn.id), conn_facts(&conn));
    }
    for l in read(ctx, c, "list_lookups", || c.list_lookups(None)).await? {
        let mut m = BTreeMap::new();
        m.insert("columns".into(), l.columns.join(","));
        m.insert("rows".into(), l.row_count.to_string());
        f.insert(format!("lookup:{}", l.name), m);
    }
    for l in read(ctx, c, "list_libraries", || c.list_libraries(None)).await? {
        f.insert(format!("library:{}|{}", l.code, l.version), BTreeMap::new());
    }
    for p in read(ctx, c, "list_packages", || c.list_packages(None)).await? {
        f.insert(format!("package:{}", p.name), BTreeMap::new());
    }
    Ok(f)
}

/// Compares `src` with `dst` (see [`DiffOptions`]).
pub async fn diff(
    ctx: &dyn Ctx,
    src: &OicClient,
    dst: &OicClient,
    o: &DiffOptions,
) -> Result<InstanceDiff, OpsError> {
    let mut a = read(ctx, src, "list_integrations", || {
        src.list_integrations(None)
    })
    .await?;
    let mut b = read(ctx, dst, "list_integrations", || {
        dst.list_integrations(None)
    })
    .await?;
    if let Some(f) = &o.filter {
        a = select(a, f)?;
        b = select(b, f)?;
    }
    let prefix = if o.all { "integration:" } else { "" };
    let facts = |l: &[Integration]| -> Facts {
        l.iter()
            .map(|i| {
                let mut m = BTreeMap::new();
                m.insert("status".to_string(), i.status.clone());
                (format!("{prefix}{}|{}", i.code, i.version), m)
            })
            .collect()
    };
    let (mut fa, mut fb) = (facts(&a), facts(&b));
    let mut out = InstanceDiff {
        source: src.name().to_string(),
        target: dst.name().to_string(),
        ..Default::default()
    };
    if !o.all {
        out.different = version_differences(&a, &b);
    } else {
        fa.extend(other_facts(ctx, src).await?);
        fb.extend(other_facts(ctx, dst).await?);
    }
    let both: Vec<String> = fa.keys().filter(|k| fb.contains_key(*k)).cloned().collect();
    out.missing = fa
        .keys()
        .filter(|k| !fb.contains_key(*k))
        .cloned()
        .collect();
    out.extra = fb
        .keys()
        .filter(|k| !fa.contains_key(*k))
        .cloned()
        .collect();
    let mut differs = field_differences(&fa, &fb, &both, &mut out.different);
    if o.checksums {
        for d in checksum_differences(ctx, src, dst, &both, prefix).await? {
            differs.insert(d.id.clone());
            out.different.push(d);
        }
    }
    out.same = both.len() - differs.len();
    Ok(out)
}

/// The highest version of each code on both sides, where they differ (field `version`).
fn version_differences(a: &[Integration], b: &[Integration]) -> Vec<Difference> {
    let latest = |l: &[Integration]| -> BTreeMap<String, String> {
        let mut m: BTreeMap<String, String> = BTreeMap::new();
        for i in l {
            let e = m.entry(i.code.clone()).or_default();
            if *e < i.version {
                *e = i.version.clone();
            }
        }
        m
    };
    let (la, lb) = (latest(a), latest(b));
    la.iter()
        .filter_map(|(code, va)| {
            let vb = lb.get(code).filter(|vb| *vb != va)?;
            Some(Difference {
                id: code.clone(),
                field: "version".into(),
                source: va.clone(),
                target: vb.clone(),
            })
        })
        .collect()
}

/// The facts that differ for the ids on both sides, pushed to `out`; returns those ids.
fn field_differences(
    fa: &Facts,
    fb: &Facts,
    both: &[String],
    out: &mut Vec<Difference>,
) -> BTreeSet<String> {
    let mut differs: BTreeSet<String> = BTreeSet::new();
    for id in both {
        let (x, y) = (&fa[id], &fb[id]);
        let fields: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
        for field in fields {
            let (s, t) = (
                x.get(field).cloned().unwrap_or_default(),
                y.get(field).cloned().unwrap_or_default(),
            );
            if s != t {
                differs.insert(id.clone());
                out.push(Difference {
                    id: id.clone(),
                    field: field.clone(),
                    source: s,
                    target: t,
                });
            }
        }
    }
    differs
}

/// The integrations on both sides (ids with `prefix`) whose exported archives differ in content (field
/// `checksum`); each side exported once, a read.
async fn checksum_differences(
    ctx: &dyn Ctx,
    src: &OicClient,
    dst: &OicClient,
    both: &[String],
    prefix: &str,
) -> Result<Vec<Difference>, OpsError> {
    let common: Vec<String> = both
        .iter()
        .filter_map(|id| id.strip_prefix(prefix))
        .filter(|id| !id.contains(':'))
        .map(str::to_string)
        .collect();
    let pairs = fan_out(
        ctx.bar(common.len(), "compare"),
        ctx.bounds().exports,
        common,
        |id| async move {
            let iid = IntegrationId::parse(&id).map_err(|e| OpsError::oic(src.name(), e))?;
            let x = read(ctx, src, "export", || src.export_integration(&iid)).await?;
            let y = read(ctx, dst, "export", || dst.export_integration(&iid)).await?;
            // By content: two exports of the same content differ byte for byte.
            let dx = super::import::content_digest(&x)
                .await
                .unwrap_or_else(|_| x.sha256.clone());
            let dy = super::import::content_digest(&y)
                .await
                .unwrap_or_else(|_| y.sha256.clone());
            Ok::<_, OpsError>((id, dx, dy))
        },
    )
    .await;
    let mut out = vec![];
    for p in pairs {
        let (id, x, y) = p?;
        if x != y {
            out.push(Difference {
                id: format!("{prefix}{id}"),
                field: "checksum".into(),
                source: x,
                target: y,
            });
        }
    }
    Ok(out)
}

/// What `verify` expects: id -> status (None: existence only).
pub type Expected = BTreeMap<String, Option<String>>;

/// One thing given to `verify`, as scripts pass them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectItem {
    /// An exported artifact: ACTIVATED where it was active on the source, else CONFIGURED
    /// (existence only when its source status is unknown).
    Exported {
        key: crate::artifact::ArtifactKey,
        source_status: Option<String>,
    },
    /// An integration as listed: its `CODE|VERSION` with its status.
    Listed { id: String, status: String },
    /// An import result map: its `id`, `kind` and `status` (`None`: existence only).
    Result {
        id: Option<String>,
        kind: Option<String>,
        status: Option<String>,
    },
    /// An id: existence only.
    Id(String),
}

/// What `verify` expects of `items`. Schedules travel beside their integrations and are left
/// out: `verify` checks the integrations.
pub fn expected(items: Vec<ExpectItem>) -> Result<Expected, OpsError> {
    use crate::artifact::ArtifactKind::Schedule;
    let mut want = Expected::new();
    for x in items {
        let (id, status) = match x {
            ExpectItem::Exported { key, .. } if key.kind == Schedule => continue,
            ExpectItem::Result { kind: Some(k), .. } if k == Schedule.as_str() => continue,
            ExpectItem::Exported { key, source_status } => {
                let st = source_status.map(|s| match s.as_str() {
                    "ACTIVATED" => s,
                    _ => "CONFIGURED".to_string(),
                });
                (key.id(), st)
            }
            ExpectItem::Listed { id, status } => (id, Some(status)),
            ExpectItem::Result {
                id: Some(id),
                status,
                ..
            } => (id, status),
            ExpectItem::Result { id: None, .. } => {
                return Err(OpsError::Usage("a result map without `id`".into()));
            }
            ExpectItem::Id(id) => (id, None),
        };
        want.insert(id, status);
    }
    Ok(want)
}

/// One integration whose status is not the expected one.
#[derive(Clone, Debug, Serialize)]
pub struct WrongStatus {
    pub id: String,
    pub expected: String,
    pub actual: String,
}

/// The result of `verify`.
#[derive(Clone, Debug, Serialize)]
pub struct Verified {
    pub ok: bool,
    pub checked: usize,
    pub missing: Vec<String>,
    pub wrong_status: Vec<WrongStatus>,
}

/// Checks that every expected `CODE|VERSION` is on the instance with the expected status.
pub async fn verify(
    ctx: &dyn Ctx,
    client: &OicClient,
    want: &Expected,
) -> Result<Verified, OpsError> {
    let list = read(ctx, client, "list_integrations", || {
        client.list_integrations(None)
    })
    .await?;
    let have: BTreeMap<String, String> = list
        .into_iter()
        .map(|i| (format!("{}|{}", i.code, i.version), i.status.clone()))
        .collect();
    let mut missing = vec![];
    let mut wrong = vec![];
    for (id, st) in want {
        match have.get(id) {
            None => missing.push(id.clone()),
            Some(actual) => {
                if let Some(s) = st
                    && s != actual
                {
                    wrong.push(WrongStatus {
                        id: id.clone(),
                        expected: s.clone(),
                        actual: actual.clone(),
                    });
                }
            }
        }
    }
    Ok(Verified {
        ok: missing.is_empty() && wrong.is_empty(),
        checked: want.len(),
        missing,
        wrong_status: wrong,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::{ArtifactKey, ArtifactKind};

    fn exported(kind: ArtifactKind, code: &str, status: Option<&str>) -> ExpectItem {
        ExpectItem::Exported {
            key: ArtifactKey::new(kind, code, "01.00.0000"),
            source_status: status.map(str::to_string),
        }
    }

    #[test]
    fn expected_maps_each_kind_of_item_and_leaves_schedules_out() {
        let result = |id: Option<&str>, kind: &str, status: Option<&str>| ExpectItem::Result {
            id: id.map(str::to_string),
            kind: Some(kind.to_string()),
            status: status.map(str::to_string),
        };
        let want = expected(vec![
            exported(ArtifactKind::Integration, "A", Some("ACTIVATED")),
            exported(ArtifactKind::Integration, "B", Some("INPROGRESS")),
            exported(ArtifactKind::Integration, "C", None),
            exported(ArtifactKind::Schedule, "A", Some("ACTIVATED")),
            ExpectItem::Listed {
                id: "D|01.00.0000".into(),
                status: "CONFIGURED".into(),
            },
            result(Some("E|01.00.0000"), "integration", Some("ACTIVATED")),
            result(None, "schedule", None),
            ExpectItem::Id("F|01.00.0000".into()),
        ])
        .unwrap();
        let got: Vec<(&str, Option<&str>)> = want
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("A|01.00.0000", Some("ACTIVATED")),
                ("B|01.00.0000", Some("CONFIGURED")),
                ("C|01.00.0000", None),
                ("D|01.00.0000", Some("CONFIGURED")),
                ("E|01.00.0000", Some("ACTIVATED")),
                ("F|01.00.0000", None),
            ]
        );
    }

    #[test]
    fn a_result_without_id_is_refused() {
        let r = expected(vec![ExpectItem::Result {
            id: None,
            kind: None,
            status: Some("ACTIVATED".into()),
        }]);
        assert!(matches!(r, Err(OpsError::Usage(m)) if m.contains("without `id`")));
    }
}
