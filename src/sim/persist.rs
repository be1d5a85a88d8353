//! `state_dir` persistence: a JSON snapshot of every instance and the identity domain, written after each
//! successful mutating request (and on shutdown), loaded at start. Archive bytes live next to it as
//! content-addressed blobs (`blobs/<sha256>`), written once.
//!
//! Tokens and fault knobs are not persisted. An `ACTIVATION_INPROGRESS` integration is loaded as `ACTIVATED`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::scim::IdentityStore;
use super::state::{InstanceData, IntStatus, Shared};

thread_local! {
    static BLOB_DIR: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// Serde adapter storing `Bytes` as a content-addressed blob file (its SHA-256 hex in the JSON).
pub mod blob {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};
    use sha2::{Digest, Sha256};

    use super::BLOB_DIR;

    /// Writes the blob (once) and serializes its hash.
    pub fn serialize<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        let hash = hex::encode(Sha256::digest(b));
        let dir = BLOB_DIR.with(|d| d.borrow().clone());
        if let Some(dir) = dir {
            let path = dir.join(&hash);
            if !path.exists() {
                let tmp = dir.join(format!("{hash}.tmp"));
                std::fs::write(&tmp, b)
                    .and_then(|_| std::fs::rename(&tmp, &path))
                    .map_err(serde::ser::Error::custom)?;
            }
        }
        s.serialize_str(&hash)
    }

    /// Reads the blob named by the hash.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let hash = String::deserialize(d)?;
        let dir = BLOB_DIR
            .with(|d| d.borrow().clone())
            .ok_or_else(|| serde::de::Error::custom("no blob directory"))?;
        let bytes = std::fs::read(dir.join(&hash)).map_err(serde::de::Error::custom)?;
        Ok(Bytes::from(bytes))
    }
}

/// Serde adapter storing a spooled archive file as a content-addressed blob (copied into `blobs/`, streamed).
pub mod file_blob {
    use std::path::PathBuf;

    use serde::{Deserialize, Deserializer, Serializer};
    use sha2::{Digest, Sha256};

    use super::BLOB_DIR;

    /// Copies the file into the blob directory (once) and serializes its hash.
    pub fn serialize<S: Serializer>(p: &PathBuf, s: S) -> Result<S::Ok, S::Error> {
        let mut f = std::fs::File::open(p).map_err(serde::ser::Error::custom)?;
        let mut h = Sha256::new();
        std::io::copy(&mut f, &mut h).map_err(serde::ser::Error::custom)?;
        let hash = hex::encode(h.finalize());
        if let Some(dir) = BLOB_DIR.with(|d| d.borrow().clone()) {
            let target = dir.join(&hash);
            if !target.exists() && target != *p {
                let tmp = dir.join(format!("{hash}.tmp"));
                std::fs::copy(p, &tmp)
                    .and_then(|_| std::fs::rename(&tmp, &target))
                    .map_err(serde::ser::Error::custom)?;
            }
        }
        s.serialize_str(&hash)
    }

    /// The blob path named by the hash.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
        let hash = String::deserialize(d)?;
        let dir = BLOB_DIR
            .with(|d| d.borrow().clone())
            .ok_or_else(|| serde::de::Error::custom("no blob directory"))?;
        let p = dir.join(&hash);
        if !p.exists() {
            return Err(serde::de::Error::custom(format!("missing blob {hash}")));
        }
        Ok(p)
    }
}

/// The snapshot file content.
#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    /// Format version (1).
    pub version: u32,
    /// Instance content by instance name.
    pub instances: BTreeMap<String, InstanceData>,
    /// Identity domain.
    pub identity: IdentityStore,
}

/// Serializes saves.
static SAVE_LOCK: Mutex<()> = Mutex::new(());

fn with_blob_dir<T>(dir: &Path, f: impl FnOnce() -> T) -> T {
    BLOB_DIR.with(|d| *d.borrow_mut() = Some(dir.join("blobs")));
    let out = f();
    BLOB_DIR.with(|d| *d.borrow_mut() = None);
    out
}

/// Writes the snapshot of `shared` into `dir` (atomically: temp file + rename).
pub fn save(shared: &Shared, dir: &Path) -> anyhow::Result<()> {
    let _g = SAVE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    std::fs::create_dir_all(dir.join("blobs"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let json = with_blob_dir(dir, || -> anyhow::Result<Vec<u8>> {
        let mut instances = BTreeMap::new();
        for i in &shared.instances {
            instances.insert(i.ident.name.clone(), i.lock().clone());
        }
        let ids = shared.identity();
        let snap = SnapshotRef {
            version: 1,
            instances: &instances,
            identity: &ids,
        };
        Ok(serde_json::to_vec(&snap)?)
    })?;
    let tmp = dir.join("state.json.tmp");
    std::fs::write(&tmp, json).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join("state.json")).context("replacing state.json")?;
    Ok(())
}

#[derive(Serialize)]
struct SnapshotRef<'a> {
    version: u32,
    instances: &'a BTreeMap<String, InstanceData>,
    identity: &'a IdentityStore,
}

fn settle(data: &mut InstanceData) {
    for i in data.integrations.values_mut() {
        if i.status == IntStatus::ActivationInProgress {
            i.status = IntStatus::Activated;
        }
        if i.status == IntStatus::DeactivationInProgress {
            i.status = IntStatus::Configured;
        }
    }
    for p in data.projects.values_mut() {
        settle(&mut p.data);
    }
}

/// Loads the snapshot in `dir`, if there is one.
pub fn load(dir: &Path) -> anyhow::Result<Option<Snapshot>> {
    let path = dir.join("state.json");
    if !path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut snap: Snapshot = with_blob_dir(dir, || serde_json::from_slice(&bytes))
        .with_context(|| format!("parsing {}", path.display()))?;
    for d in snap.instances.values_mut() {
        settle(d);
    }
    Ok(Some(snap))
}

/// Middleware: saves the state after every successful mutating request when a state dir is configured.
pub async fn layer(
    axum::extract::State(ctx): axum::extract::State<super::Ctx>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mutating = !matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS")
        && !req.uri().path().starts_with("/__sim/")
        && req.uri().path() != "/oauth2/v1/token";
    let resp = next.run(req).await;
    if mutating
        && resp.status().is_success()
        && let Some(dir) = ctx.shared.state_dir.clone()
    {
        let shared = ctx.shared.clone();
        let res = tokio::task::spawn_blocking(move || save(&shared, &dir)).await;
        if let Ok(Err(e)) | Err(e) = res.map_err(anyhow::Error::from) {
            tracing::warn!("emulator state not saved: {e:#}");
        }
    }
    resp
}

/// Serde adapter for maps keyed by `(code, version)`: stored as a list of values (keys are rebuilt by `key`).
pub mod tuple_map {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Values that know their `(code, version)` key.
    pub trait Keyed {
        /// The map key.
        fn key(&self) -> (String, String);
    }

    impl Keyed for crate::sim::state::Integration {
        fn key(&self) -> (String, String) {
            (self.code.clone(), self.version.clone())
        }
    }

    impl Keyed for crate::sim::state::Library {
        fn key(&self) -> (String, String) {
            (self.code.clone(), self.version.clone())
        }
    }

    /// Serializes the values as a sequence.
    pub fn serialize<S: Serializer, T: Serialize>(
        m: &BTreeMap<(String, String), T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.values())
    }

    /// Rebuilds the map from a sequence.
    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de> + Keyed>(
        d: D,
    ) -> Result<BTreeMap<(String, String), T>, D::Error> {
        let v: Vec<T> = Vec::deserialize(d)?;
        Ok(v.into_iter().map(|x| (x.key(), x)).collect())
    }
}
