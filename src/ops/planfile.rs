//! Plan files (`ferry plan RECIPE -o plan.json`, `ferry apply plan.json`): the effects a recipe
//! would perform (from the executor's dry-run description), the archives it exported with their
//! content digests, and the state of the targets the plan assumed, with the recipe text and its
//! variables. `apply` makes the same plan again, compares it with this one ([`differences`])
//! and refuses, naming what changed, unless nothing did; it then performs the recipe with the
//! executor admitting only these effects.
//!
//! The file is JSON with a format version; unknown keys are refused, and a digest over the rest
//! of the file refuses a plan edited by hand.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::OpsError;
use super::kinds::ops_for;
use crate::artifact::{ArtifactKey, ArtifactKind};
use crate::config::Config;
use crate::effect::{PlannedArchive, PlannedEffect};
use crate::oic::OicClient;

/// The format version this ferry writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The `format` field of every plan file.
pub const FORMAT: &str = "ferry-plan";
/// Largest plan file read (the recipe text and a line per effect).
pub const MAX_PLAN_BYTES: u64 = 64 * 1024 * 1024;

/// The recipe a plan was made from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRecipe {
    /// As given to `ferry plan` (imports resolve from its folder).
    pub name: String,
    pub sha256: String,
    pub text: String,
    /// `--var KEY=VALUE`, in order.
    pub vars: Vec<(String, String)>,
    /// `--lib DIR`, in order.
    #[serde(default)]
    pub libs: Vec<String>,
    /// Made against the sandbox.
    pub sandbox: bool,
}

/// What a target held under a key when the plan was made.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetRecord {
    pub target: String,
    pub kind: ArtifactKind,
    pub code: String,
    pub version: String,
    /// Its status (`ACTIVATED`...), or `None` when the target did not hold it.
    pub status: Option<String>,
    /// The content digest of what it held, when it held it.
    pub digest: Option<String>,
}

impl TargetRecord {
    fn id(&self) -> String {
        if self.version.is_empty() {
            self.code.clone()
        } else {
            format!("{}|{}", self.code, self.version)
        }
    }
    fn describe_state(&self) -> String {
        match (&self.status, &self.digest) {
            (None, _) => "absent".to_string(),
            (Some(s), Some(d)) => format!("{s}, content {}…", &d[..d.len().min(12)]),
            (Some(s), None) => s.clone(),
        }
    }
}

/// A plan file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    /// Always `ferry-plan`.
    pub format: String,
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// The ferry that wrote it.
    pub ferry_version: String,
    /// The run of `ferry plan` that made it.
    pub run: String,
    /// RFC 3339.
    pub created: String,
    pub recipe: PlanRecipe,
    /// Base URL of each instance the plan changes (not for the sandbox: its ports change).
    pub instances: BTreeMap<String, String>,
    /// The effects, sorted.
    pub effects: Vec<PlannedEffect>,
    /// The archives exported, sorted.
    pub archives: Vec<PlannedArchive>,
    /// What the targets held, sorted.
    pub targets: Vec<TargetRecord>,
    /// sha256 of this file written with `digest` empty.
    pub digest: String,
}

/// Why a plan file is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    #[error("cannot read the plan {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the plan {0} is larger than {MAX_PLAN_BYTES} bytes")]
    TooLarge(String),
    #[error("{path} is not a ferry plan: {message}")]
    Invalid { path: String, message: String },
    #[error(
        "the plan {path} has format version {found}; this ferry reads version {FORMAT_VERSION}"
    )]
    Version { path: String, found: u32 },
    #[error(
        "the plan {0} was modified after `ferry plan` wrote it (its digest does not match); make a new plan"
    )]
    Tampered(String),
}

impl PlanFile {
    /// The digest over everything but the digest.
    pub fn compute_digest(&self) -> String {
        let mut c = self.clone();
        c.digest = String::new();
        let bytes = serde_json::to_vec(&c).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }

    /// Sets the digest and writes the file.
    pub fn write(mut self, path: &Path) -> std::io::Result<()> {
        self.digest = self.compute_digest();
        let text = serde_json::to_string_pretty(&self).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }

    /// Reads and checks a plan file: size, format, version, unknown keys, digest, recipe checksum.
    pub fn read(path: &Path) -> Result<PlanFile, PlanFileError> {
        use std::io::Read;
        let p = path.display().to_string();
        let io = |source| PlanFileError::Io {
            path: p.clone(),
            source,
        };
        let f = std::fs::File::open(path).map_err(io)?;
        let mut bytes = vec![];
        f.take(MAX_PLAN_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > MAX_PLAN_BYTES {
            return Err(PlanFileError::TooLarge(p));
        }
        // The version first, so that a newer format is named as such rather than as unknown keys.
        #[derive(Deserialize)]
        struct Head {
            format: Option<String>,
            version: Option<u32>,
        }
        let invalid = |message: String| PlanFileError::Invalid {
            path: p.clone(),
            message,
        };
        let head: Head = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        if head.format.as_deref() != Some(FORMAT) {
            return Err(invalid(format!("its `format` is not \"{FORMAT}\"")));
        }
        match head.version {
            Some(FORMAT_VERSION) => {}
            Some(found) => return Err(PlanFileError::Version { path: p, found }),
            None => return Err(invalid("it has no `version`".into())),
        }
        let plan: PlanFile = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        if plan.digest != plan.compute_digest() {
            return Err(PlanFileError::Tampered(p));
        }
        if hex::encode(Sha256::digest(plan.recipe.text.as_bytes())) != plan.recipe.sha256 {
            return Err(PlanFileError::Tampered(p));
        }
        Ok(plan)
    }
}

/// The instance targets of `effects` with a kind that can be read back, each once.
fn target_keys(config: &Config, effects: &[PlannedEffect]) -> BTreeSet<(String, ArtifactKey)> {
    effects
        .iter()
        .filter(|e| config.instances.contains_key(&e.target) && ops_for(e.kind).is_some())
        .map(|e| {
            (
                e.target.clone(),
                ArtifactKey::new(e.kind, e.code.clone(), e.version.clone()),
            )
        })
        .collect()
}

/// Reads what the targets of `effects` hold under their keys: status and content digest.
pub async fn target_states(
    config: &Config,
    effects: &[PlannedEffect],
) -> Result<Vec<TargetRecord>, OpsError> {
    let mut clients: BTreeMap<String, OicClient> = BTreeMap::new();
    let mut out = vec![];
    for (target, key) in target_keys(config, effects) {
        let Some(kops) = ops_for(key.kind) else {
            continue;
        };
        if !clients.contains_key(&target) {
            let c =
                OicClient::new(config.instance(&target)?).map_err(|e| OpsError::oic(&target, e))?;
            clients.insert(target.clone(), c);
        }
        let client = &clients[&target];
        let st = kops
            .state(client, &key)
            .await
            .map_err(|e| OpsError::oic(&target, e))?;
        let (status, digest) = match st {
            None => (None, None),
            Some(st) => {
                let cur = kops
                    .export_current(client, &key)
                    .await
                    .map_err(|e| OpsError::oic(&target, e))?;
                let path = cur.path().to_path_buf();
                let sha = cur.sha256.clone();
                let d = tokio::task::spawn_blocking(move || {
                    crate::vault::content_hash(&path, &sha).ok()
                })
                .await
                .ok()
                .flatten();
                (Some(st.status), d)
            }
        };
        out.push(TargetRecord {
            target,
            kind: key.kind,
            code: key.code,
            version: key.version,
            status,
            digest,
        });
    }
    out.sort();
    Ok(out)
}

/// The base URLs of the instances `effects` target.
pub fn instance_urls(config: &Config, effects: &[PlannedEffect]) -> BTreeMap<String, String> {
    effects
        .iter()
        .filter_map(|e| {
            config
                .instances
                .get(&e.target)
                .map(|p| (e.target.clone(), p.base_url.clone()))
        })
        .collect()
}

/// What changed between the plan (`was`) and the same plan made now (`now`), one sentence each,
/// naming the artifact; empty when nothing did.
pub fn differences(was: &PlanFile, now: &PlanFile) -> Vec<String> {
    let mut out = vec![];
    for (name, url) in &was.instances {
        match now.instances.get(name) {
            Some(u) if u == url => {}
            Some(u) => out.push(format!(
                "instance {name} is now {u}; the plan was made against {url}"
            )),
            None => {}
        }
    }
    let key = |a: &PlannedArchive| (a.kind, a.code.clone(), a.version.clone(), a.source.clone());
    let old: BTreeMap<_, _> = was.archives.iter().map(|a| (key(a), a)).collect();
    let new: BTreeMap<_, _> = now.archives.iter().map(|a| (key(a), a)).collect();
    for (k, a) in &old {
        match new.get(k) {
            Some(b) if b.digest == a.digest => {}
            Some(b) => out.push(format!(
                "the archive of {} {} on {} changed since the plan: content {}… now, {}… in the plan",
                a.kind.as_str(),
                a.id(),
                a.source,
                &b.digest[..b.digest.len().min(12)],
                &a.digest[..a.digest.len().min(12)]
            )),
            None => out.push(format!(
                "{} {} is no longer exported from {} (the plan exported it)",
                a.kind.as_str(),
                a.id(),
                a.source
            )),
        }
    }
    for (k, b) in &new {
        if !old.contains_key(k) {
            out.push(format!(
                "{} {} is now exported from {} (the plan did not export it)",
                b.kind.as_str(),
                b.id(),
                b.source
            ));
        }
    }
    let tkey = |t: &TargetRecord| (t.target.clone(), t.kind, t.code.clone(), t.version.clone());
    let old_t: BTreeMap<_, _> = was.targets.iter().map(|t| (tkey(t), t)).collect();
    for t in &now.targets {
        if let Some(o) = old_t.get(&tkey(t))
            && (o.status != t.status || o.digest != t.digest)
        {
            out.push(format!(
                "{} {} on {} changed since the plan: {} now, {} in the plan",
                t.kind.as_str(),
                t.id(),
                t.target,
                t.describe_state(),
                o.describe_state()
            ));
        }
    }
    let count = |v: &[PlannedEffect]| {
        let mut m: BTreeMap<PlannedEffect, i64> = BTreeMap::new();
        for e in v {
            *m.entry(e.clone()).or_default() += 1;
        }
        m
    };
    let (a, b) = (count(&was.effects), count(&now.effects));
    for (e, n) in &a {
        if b.get(e).copied().unwrap_or(0) < *n {
            out.push(format!(
                "planned effect no longer needed or changed: {}",
                e.describe()
            ));
        }
    }
    for (e, n) in &b {
        if a.get(e).copied().unwrap_or(0) < *n {
            out.push(format!("effect not in the plan: {}", e.describe()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Stage;

    fn plan() -> PlanFile {
        PlanFile {
            format: FORMAT.into(),
            version: FORMAT_VERSION,
            ferry_version: "0".into(),
            run: "r".into(),
            created: "now".into(),
            recipe: PlanRecipe {
                name: "r.rhai".into(),
                sha256: hex::encode(Sha256::digest(b"print(1);")),
                text: "print(1);".into(),
                vars: vec![],
                libs: vec![],
                sandbox: false,
            },
            instances: BTreeMap::new(),
            effects: vec![PlannedEffect {
                stage: Stage::Activate,
                kind: ArtifactKind::Integration,
                code: "A".into(),
                version: "01.00.0000".into(),
                target: "prod".into(),
                action: "activate".into(),
                archive: None,
            }],
            archives: vec![],
            targets: vec![],
            digest: String::new(),
        }
    }

    #[test]
    fn a_plan_reads_back_and_refuses_edits_versions_and_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("plan.json");
        plan().write(&p).unwrap();
        let back = PlanFile::read(&p).unwrap();
        assert!(differences(&back, &back).is_empty());

        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, text.replace("\"activate\"", "\"deactivate\"")).unwrap();
        assert!(matches!(
            PlanFile::read(&p),
            Err(PlanFileError::Tampered(_))
        ));
        std::fs::write(&p, text.replace("\"version\": 1", "\"version\": 7")).unwrap();
        assert!(matches!(
            PlanFile::read(&p),
            Err(PlanFileError::Version { found: 7, .. })
        ));
        std::fs::write(&p, text.replacen('{', "{\"extra\": 1,", 1)).unwrap();
        let e = PlanFile::read(&p).unwrap_err().to_string();
        assert!(e.contains("unknown field `extra`"), "{e}");
    }

    #[test]
    fn differences_name_the_artifact() {
        let was = plan();
        let mut now = plan();
        now.effects[0].code = "B".into();
        let d = differences(&was, &now);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].contains("A|01.00.0000") && d[1].contains("B|01.00.0000"));
    }
}
