//! `select`: the integrations of a list that match a filter (status, code and name globs or a
//! name regex, project, update time, lock, latest version per code); the reads of an instance's
//! integrations (the list, one, its status).

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;
use wildmatch::WildMatch;

use super::{Ctx, OpsError};
use crate::artifact::ArtifactKind;
use crate::oic::{Integration, IntegrationId, OicClient};

/// One value or a list of them.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn contains(&self, s: &str) -> bool {
        match self {
            OneOrMany::One(x) => x == s,
            OneOrMany::Many(v) => v.iter().any(|x| x == s),
        }
    }
}

/// A filter over integrations. Every field that is set must match.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Filter {
    /// A status or a list of them.
    pub status: Option<OneOrMany>,
    /// A glob over the code (`HR_*`).
    pub code: Option<String>,
    /// A glob over the name, or `/regex/`.
    pub name: Option<String>,
    /// The OIC 3 project code.
    pub project: Option<String>,
    /// A date or time prefix: updated at or after it.
    pub updated_since: Option<String>,
    /// Only the highest version of each code.
    pub latest: bool,
    pub locked: Option<bool>,
}

/// A glob (`*` any run of characters, `?` one), anchored at both ends.
pub fn glob(pattern: &str) -> WildMatch {
    WildMatch::new(pattern)
}

/// How a name is matched: `/regex/` or a glob.
enum NameMatcher {
    Glob(WildMatch),
    Regex(Regex),
}

impl NameMatcher {
    fn is_match(&self, s: &str) -> bool {
        match self {
            NameMatcher::Glob(g) => g.matches(s),
            NameMatcher::Regex(r) => r.is_match(s),
        }
    }
}

/// The name matcher: `/regex/` or a glob.
fn name_matcher(n: &str) -> Result<NameMatcher, OpsError> {
    if n.len() >= 2 && n.starts_with('/') && n.ends_with('/') {
        return Regex::new(&n[1..n.len() - 1])
            .map(NameMatcher::Regex)
            .map_err(|e| OpsError::Usage(format!("bad name regex {n}: {e}")));
    }
    Ok(NameMatcher::Glob(glob(n)))
}

/// The integrations of `list` that match `f`.
pub fn select(list: Vec<Integration>, f: &Filter) -> Result<Vec<Integration>, OpsError> {
    let code = f.code.as_deref().map(glob);
    let name = f.name.as_deref().map(name_matcher).transpose()?;
    let out: Vec<Integration> = list
        .into_iter()
        .filter(|i| f.status.as_ref().is_none_or(|s| s.contains(&i.status)))
        .filter(|i| code.as_ref().is_none_or(|g| g.matches(&i.code)))
        .filter(|i| name.as_ref().is_none_or(|r| r.is_match(&i.name)))
        .filter(|i| {
            f.project
                .as_ref()
                .is_none_or(|p| i.project_code.as_deref() == Some(p.as_str()))
        })
        .filter(|i| {
            f.updated_since
                .as_ref()
                .is_none_or(|s| i.last_updated.as_str() >= s.as_str())
        })
        .filter(|i| f.locked.is_none_or(|l| i.locked == l))
        .collect();
    if !f.latest {
        return Ok(out);
    }
    let mut best: BTreeMap<String, Integration> = BTreeMap::new();
    for i in out {
        match best.get(&i.code) {
            Some(b) if b.version >= i.version => {}
            _ => {
                best.insert(i.code.clone(), i);
            }
        }
    }
    Ok(best.into_values().collect())
}

/// Every integration of the instance of `client` (all pages of the list); with a filter, those
/// that match it.
pub async fn integrations(
    ctx: &dyn Ctx,
    client: &OicClient,
    filter: Option<&Filter>,
) -> Result<Vec<Integration>, OpsError> {
    let list = ctx
        .exec()
        .read("list_integrations", || client.list_integrations(None))
        .await
        .map_err(|e| OpsError::oic(client.name(), e))?;
    match filter {
        Some(f) => select(list, f),
        None => Ok(list),
    }
}

/// The integration `id` of the instance of `client`, `None` when it does not exist.
async fn find(
    ctx: &dyn Ctx,
    client: &OicClient,
    id: &IntegrationId,
) -> Result<Option<Integration>, OpsError> {
    ctx.exec()
        .read("get_integration", || client.get_integration(id))
        .await
        .map_err(|e| OpsError::oic_item(client.name(), id.to_string(), e))
}

/// The integration `id`; [`OpsError::NotFound`] when it does not exist.
pub async fn integration(
    ctx: &dyn Ctx,
    client: &OicClient,
    id: &IntegrationId,
) -> Result<Integration, OpsError> {
    find(ctx, client, id)
        .await?
        .ok_or_else(|| OpsError::NotFound {
            at: client.name().to_string(),
            kind: ArtifactKind::Integration,
            item: id.to_string(),
        })
}

/// The status of the integration `id` (`ACTIVATED`, `CONFIGURED`, ...), `MISSING` when it does
/// not exist.
pub async fn status(
    ctx: &dyn Ctx,
    client: &OicClient,
    id: &IntegrationId,
) -> Result<String, OpsError> {
    Ok(find(ctx, client, id)
        .await?
        .map(|i| i.status.clone())
        .unwrap_or_else(|| "MISSING".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_are_anchored_and_escape_the_rest() {
        assert!(glob("HR_*").matches("HR_SYNC"));
        assert!(!glob("HR_*").matches("XHR_SYNC"));
        assert!(glob("A?C").matches("ABC"));
        assert!(glob("*").matches("") && !glob("a*b").matches("acbx"));
        assert!(!glob("A.C").matches("ABC"));
        assert!(glob("a[b]*").matches("a[b]c"), "brackets are literal");
        // `*` is any run of characters, line breaks included (the regex `.*` was not).
        assert!(glob("HR_*").matches("HR_A\nB"));
    }
}
