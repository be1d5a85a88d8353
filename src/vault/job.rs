//! Jobs: writing a job (artifacts, then the manifest), reading it back, verifying, listing and
//! pruning.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use super::crypto::describe_stream_error;
use super::hashio::{HashingReader, PipeWriter, PlainChunks, PrefetchReader, RefReader};
use super::store::WholeFile;
use super::{Inner, LOCK, MANIFEST, ROOT_FOLDER, VaultError, check_name};
use crate::artifact::{Artifact, ArtifactKey, ArtifactKind};

/// Archives up to this size are stored whole from memory ([`JobWriter`]'s small path): read,
/// checked, encrypted and journalled locally, then written with the journal entry in one
/// [`super::Store::put_whole`] batch (pipelined over SFTP). Larger ones stream.
const WHOLE_MAX: u64 = 1024 * 1024;

/// Where entries of an unfinished job are recorded, one small file each, until the manifest.
pub(crate) const JOURNAL: &str = ".journal";
/// The manifest format version written: 2 adds `shared` to entries (bytes shared with an earlier
/// job); 3 adds what the source listed (`source_updated`, `source_instances`) and entries carried
/// over unchanged without an export (`shared.matched = "listing"`); 4 writes shared entries
/// compactly: the earlier job folders once (`shared_jobs`), each entry naming its folder by
/// number (`shared.job`) and, only when it differs from the entry's own `path`, the file's path
/// in that folder (`shared.path`). Formats 1 to 3 read as before.
const FORMAT: u32 = 4;
/// A job folder whose job was pruned but that still holds files newer jobs share (see
/// [`super::shared`]): not a job any more; the next prune removes it once nothing uses them.
pub(crate) const PRUNED: &str = ".pruned";

/// Facts about a run recorded in the job's manifest.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobMeta {
    /// The ferry version that wrote the job (defaults to this build's version).
    pub ferry_version: String,
    /// The recipe (script) that ran.
    pub recipe: String,
    /// Who ran it (user name, CI job...).
    pub run_by: String,
    /// The instances artifacts were exported from.
    pub sources: Vec<String>,
    /// The instance artifacts are moved to, if any.
    #[serde(default)]
    pub target: Option<String>,
    /// Continue a job an earlier run left unfinished (takes over its lock).
    #[serde(skip)]
    pub resume: bool,
}

/// How an entry shares its stored bytes with an earlier job (its content was unchanged).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ShareVia {
    /// The entry's own file is a hard link to `file` (file vaults): the job folder is complete.
    Hardlink,
    /// The bytes live only in `file`, another job's file (SFTP and S3 vaults: see
    /// [`super::shared`] for why). Prune keeps `file` while any job refers to it.
    Reference,
}

/// How an entry was found unchanged since an earlier job.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Matched {
    /// This run exported it, and its content hash equals the earlier entry's.
    #[default]
    Content,
    /// Not exported: the source listed it with the same `lastUpdated` and status as the earlier
    /// complete job recorded, on the same instance; the content hash is the earlier entry's.
    Listing,
}

impl Matched {
    fn is_content(&self) -> bool {
        *self == Matched::Content
    }
}

/// Where an entry's bytes came from when they are shared with an earlier job.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SharedBytes {
    /// Hard link or reference.
    pub via: ShareVia,
    /// The vault path of the earlier file (`OIC_Backups/2026/11/29/nightly/Integrations/X_01.iar.age`).
    /// Always set in memory; a format-4 manifest says it with `job` and `path` instead.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file: String,
    /// How it was found unchanged (`content` when absent).
    #[serde(default, skip_serializing_if = "Matched::is_content")]
    pub matched: Matched,
    /// On disk only (format 4): the earlier job folder, as its number in the manifest's
    /// `shared_jobs`. `None` in memory ([`Manifest::parse`] resolves it into `file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) job: Option<usize>,
    /// On disk only (format 4): the file's path inside that folder, when it is not the entry's
    /// own `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) path: Option<String>,
}

impl SharedBytes {
    /// Bytes shared `via` a hard link or a reference with the earlier file `file` (a vault path).
    pub fn new(via: ShareVia, file: String, matched: Matched) -> SharedBytes {
        SharedBytes {
            via,
            file,
            matched,
            job: None,
            path: None,
        }
    }
}

/// One stored artifact, as recorded in `manifest.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// Artifact kind.
    pub kind: ArtifactKind,
    /// Artifact code (identifier).
    pub code: String,
    /// Empty for kinds without versions.
    pub version: String,
    /// The instance the artifact was exported from.
    pub source: String,
    /// Its status on the source (`ACTIVATED`...).
    pub source_status: Option<String>,
    /// Plaintext size in bytes.
    pub size: u64,
    /// Plaintext sha256 (lower-case hex).
    pub sha256: String,
    /// The content hash (zip entry names and contents, zip metadata ignored; see
    /// [`super::content_hash`]): equal for two exports of unchanged content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_sha256: Option<String>,
    /// Size of the stored file (the ciphertext when encrypted).
    pub stored_size: u64,
    /// sha256 of the stored file.
    pub stored_sha256: String,
    /// True when the stored file is age-encrypted (`.age` suffix).
    pub encrypted: bool,
    /// RFC 3339 time of the export.
    pub exported_at: String,
    /// Path of the stored file inside the job (`Integrations/CODE_VERSION.iar.age`).
    pub path: String,
    /// The `lastUpdated` the source listed just before the export (integrations; format 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_updated: Option<String>,
    /// Set when the content was unchanged since an earlier job and its bytes are shared rather
    /// than written again; size and checksums are then those of the shared bytes (the earlier
    /// export, whose content equals this one's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<SharedBytes>,
}

impl ManifestEntry {
    /// The artifact's identity.
    pub fn key(&self) -> ArtifactKey {
        ArtifactKey::new(self.kind, self.code.clone(), self.version.clone())
    }

    /// The vault path of the file holding the entry's bytes: the referenced file for a
    /// reference, otherwise `<job_path>/<path>`.
    pub fn stored_at(&self, job_path: &str) -> String {
        match &self.shared {
            Some(SharedBytes {
                via: ShareVia::Reference,
                file,
                ..
            }) => file.clone(),
            _ => format!("{job_path}/{}", self.path),
        }
    }
}

/// Encryption facts recorded in the manifest (public keys only).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManifestEncryption {
    /// `none`, `age-x25519` or `age-scrypt`.
    pub method: String,
    /// The X25519 public keys files were encrypted to.
    pub recipients: Vec<String>,
}

/// Whether a finished job holds everything it was meant to hold.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Every selected artifact was stored and checked.
    #[default]
    Complete,
    /// Some selected artifacts are missing (listed in `missing`): a failed export or store.
    Partial,
}

impl JobStatus {
    /// `complete` or `partial`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Complete => "complete",
            JobStatus::Partial => "partial",
        }
    }
}

/// A selected artifact that a job does not hold, and why.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MissingEntry {
    /// Artifact kind.
    pub kind: ArtifactKind,
    /// Artifact code.
    pub code: String,
    /// Empty for kinds without versions.
    pub version: String,
    /// Why it is missing (the export or store error).
    pub reason: String,
}

impl MissingEntry {
    /// The artifact's identity.
    pub fn key(&self) -> ArtifactKey {
        ArtifactKey::new(self.kind, self.code.clone(), self.version.clone())
    }
}

/// A job's `manifest.json`: written last, it marks the job finished, `complete` or `partial`.
/// Unknown keys are refused; `format` says which version wrote it (1 and 2 are read).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version (4 written; 1 to 3 read).
    pub format: u32,
    /// Job name.
    pub job: String,
    /// The job's date (its folder).
    pub date: NaiveDate,
    /// Path of the job in the vault (`OIC_Backups/2026/11/26/name`).
    pub path: String,
    /// The ferry version that wrote the job.
    pub ferry_version: String,
    /// The recipe that ran.
    pub recipe: String,
    /// Who ran it.
    pub run_by: String,
    /// The instances artifacts were exported from.
    pub sources: Vec<String>,
    /// The instance artifacts were moved to, if any.
    #[serde(default)]
    pub target: Option<String>,
    /// Which instance each source name stood for (its API URL; format 3): an entry is carried
    /// over unchanged only from a job whose source was the same instance.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_instances: BTreeMap<String, String>,
    /// How the files are encrypted.
    pub encryption: ManifestEncryption,
    /// On disk only (format 4): the earlier job folders whose files entries share, numbered by
    /// `shared.job`. Empty in memory ([`Manifest::parse`] resolves them into `shared.file`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    shared_jobs: Vec<String>,
    /// RFC 3339 time the job was created.
    pub created_at: String,
    /// RFC 3339 time the manifest was written.
    pub finished_at: String,
    /// The artifacts, sorted by path.
    pub entries: Vec<ManifestEntry>,
    /// `complete`, or `partial` when `missing` is not empty (manifests without it are complete).
    #[serde(default)]
    pub status: JobStatus,
    /// The selected artifacts the job does not hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<MissingEntry>,
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Manifest {
    /// The `manifest.json` bytes: indented, with one entry per line (compact: a nightly job of
    /// thousands of unchanged entries writes little besides its manifest).
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = vec![];
        self.write_json(&mut out)?;
        Ok(out)
    }

    /// Writes the `manifest.json` bytes of [`Manifest::to_json`] to `w` as they are made (a
    /// manifest of 10,000 entries is megabytes: no copy of it is held).
    pub fn write_json(&self, w: impl io::Write) -> Result<(), serde_json::Error> {
        self.write_json_with(w, &mut || {
            Box::new(
                self.entries
                    .iter()
                    .map(|e| Ok(std::borrow::Cow::Borrowed(e))),
            )
        })
    }

    /// [`Manifest::write_json`] with the entries (sorted by path) handed over by `entries`
    /// (called twice: the shared folders first, then the entries), not `self.entries`: a job
    /// writer's entries are read from its spool as they are written.
    pub(crate) fn write_json_with<'e>(
        &self,
        mut w: impl io::Write,
        entries: &mut dyn FnMut() -> Box<
            dyn Iterator<Item = io::Result<std::borrow::Cow<'e, ManifestEntry>>> + 'e,
        >,
    ) -> Result<(), serde_json::Error> {
        // Format 4: each earlier job folder once, entries naming it by number.
        let mut table = SharedTable::default();
        if self.format >= 4 {
            for e in entries() {
                table.add(&*e.map_err(serde_json::Error::io)?);
            }
        }
        let head = Manifest {
            format: self.format,
            job: self.job.clone(),
            date: self.date,
            path: self.path.clone(),
            ferry_version: self.ferry_version.clone(),
            recipe: self.recipe.clone(),
            run_by: self.run_by.clone(),
            sources: self.sources.clone(),
            target: self.target.clone(),
            source_instances: self.source_instances.clone(),
            encryption: self.encryption.clone(),
            shared_jobs: table.jobs.clone(),
            created_at: self.created_at.clone(),
            finished_at: self.finished_at.clone(),
            entries: vec![],
            status: self.status,
            missing: self.missing.clone(),
        };
        let pretty = serde_json::to_vec_pretty(&head)?;
        const SLOT: &[u8] = b"\"entries\": []";
        let at = pretty
            .windows(SLOT.len())
            .position(|x| x == SLOT)
            .unwrap_or(pretty.len());
        w.write_all(&pretty[..at]).map_err(serde_json::Error::io)?;
        if at == pretty.len() {
            return Ok(());
        }
        w.write_all(b"\"entries\": [")
            .map_err(serde_json::Error::io)?;
        let mut n = 0;
        for e in entries() {
            let e = e.map_err(serde_json::Error::io)?;
            w.write_all(if n == 0 { b"\n    " } else { b",\n    " })
                .map_err(serde_json::Error::io)?;
            serde_json::to_writer(&mut w, &table.compact(&e))?;
            n += 1;
        }
        w.write_all(if n == 0 { b"]" } else { b"\n  ]" })
            .map_err(serde_json::Error::io)?;
        w.write_all(&pretty[at + SLOT.len()..])
            .map_err(serde_json::Error::io)
    }

    /// Parses and validates a `manifest.json`.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        let mut m: Manifest = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        m.resolve_shared()?;
        m.validate()?;
        Ok(m)
    }

    /// Format 4: turns each shared entry's `job` (and `path`) into the vault path `file`.
    fn resolve_shared(&mut self) -> Result<(), String> {
        let jobs = std::mem::take(&mut self.shared_jobs);
        resolve_shared(&jobs, self.format, &mut self.entries)
    }

    /// Checks what a reader relies on: paths inside the job, checksums of 64 hex digits, names
    /// without control characters.
    pub fn validate(&self) -> Result<(), String> {
        if self.format == 0 || self.format > FORMAT {
            return Err(format!(
                "format {} is not known to this ferry (it reads formats 1 to {FORMAT}); a newer ferry wrote it",
                self.format
            ));
        }
        if (self.status == JobStatus::Complete) != self.missing.is_empty() {
            return Err(format!(
                "status `{}` contradicts its {} missing artifact(s)",
                self.status.as_str(),
                self.missing.len()
            ));
        }
        for e in &self.entries {
            if e.path
                .split('/')
                .any(|p| p == ".." || p == "." || p.is_empty())
            {
                return Err(format!(
                    "entry path `{}` is not inside the job",
                    e.path.escape_debug()
                ));
            }
            for (what, v) in [("sha256", &e.sha256), ("stored_sha256", &e.stored_sha256)] {
                if !is_sha256(v) {
                    return Err(format!(
                        "entry `{}`: {what} `{}` is not 64 hex digits",
                        e.path.escape_debug(),
                        v.escape_debug()
                    ));
                }
            }
            if let Some(sh) = &e.shared {
                if self.format < 2 {
                    return Err(format!(
                        "entry `{}` shares bytes, which format {} cannot say",
                        e.path.escape_debug(),
                        self.format
                    ));
                }
                let parts: Vec<&str> = sh.file.split('/').collect();
                if parts.first() != Some(&ROOT_FOLDER)
                    || parts.len() < 7
                    || parts.iter().any(|p| {
                        p.is_empty() || *p == "." || *p == ".." || p.chars().any(char::is_control)
                    })
                {
                    return Err(format!(
                        "entry `{}`: shared file `{}` is not a file of a job of this vault",
                        e.path.escape_debug(),
                        sh.file.escape_debug()
                    ));
                }
            }
            let texts = [&e.code, &e.version, &e.source, &e.path];
            if texts.iter().any(|t| t.chars().any(char::is_control)) {
                return Err(format!(
                    "entry `{}` has a control character in a name",
                    e.path.escape_debug()
                ));
            }
        }
        Ok(())
    }
}

/// The earlier job folders that entries share files with, numbered for the compact form of
/// format 4 (`shared_jobs`, `shared.job`, `shared.path`).
#[derive(Default)]
struct SharedTable {
    number: BTreeMap<String, usize>,
    jobs: Vec<String>,
}

impl SharedTable {
    /// The folders of the shared entries of `entries`, numbered in order of appearance.
    fn of<'a>(entries: impl IntoIterator<Item = &'a ManifestEntry>) -> SharedTable {
        let mut t = SharedTable::default();
        for e in entries {
            t.add(e);
        }
        t
    }

    /// Numbers the folder of `e`'s shared file, when it is new.
    fn add(&mut self, e: &ManifestEntry) {
        if let Some(sh) = &e.shared
            && let Some((job, _)) = split_job_file(&sh.file)
            && !self.number.contains_key(job)
        {
            self.number.insert(job.to_string(), self.jobs.len());
            self.jobs.push(job.to_string());
        }
    }

    /// The entry as written: a shared file in a numbered folder as `shared.job` (and
    /// `shared.path` when it is not the entry's own path); anything else as it is.
    fn compact<'e>(&self, e: &'e ManifestEntry) -> std::borrow::Cow<'e, ManifestEntry> {
        let found = e.shared.as_ref().and_then(|sh| {
            let (job, file) = split_job_file(&sh.file)?;
            Some((*self.number.get(job)?, file))
        });
        let Some((n, file)) = found else {
            return std::borrow::Cow::Borrowed(e);
        };
        let mut c = e.clone();
        if let Some(sh) = &mut c.shared {
            sh.job = Some(n);
            sh.path = (file != e.path).then(|| file.to_string());
            sh.file = String::new();
        }
        std::borrow::Cow::Owned(c)
    }
}

/// Turns the compact form of shared entries (`shared.job`, `shared.path`; format 4) into the
/// vault path `shared.file`, with `jobs` the `shared_jobs` they were written with.
fn resolve_shared(
    jobs: &[String],
    format: u32,
    entries: &mut [ManifestEntry],
) -> Result<(), String> {
    if format < 4 && !jobs.is_empty() {
        return Err(format!("`shared_jobs` cannot be in format {format}"));
    }
    for e in entries {
        let Some(sh) = &mut e.shared else {
            continue;
        };
        let what = |problem: &str| format!("entry `{}`: {problem}", e.path.escape_debug());
        match (sh.job.take(), sh.path.take()) {
            (None, None) if !sh.file.is_empty() => {}
            (None, _) => return Err(what("shared bytes without their file")),
            (Some(_), _) if format < 4 => {
                return Err(what(&format!("`shared.job` cannot be in format {format}")));
            }
            (Some(_), _) if !sh.file.is_empty() => {
                return Err(what("`shared` names both `file` and `job`"));
            }
            (Some(i), path) => {
                let Some(job) = jobs.get(i) else {
                    return Err(what(&format!("shared job {i} is not in `shared_jobs`")));
                };
                sh.file = format!("{job}/{}", path.as_deref().unwrap_or(&e.path));
            }
        }
    }
    Ok(())
}

/// A job file's vault path split into its job folder (`OIC_Backups/YYYY/MM/DD/<job>`) and its
/// path inside it; `None` when it is not below a job folder.
fn split_job_file(file: &str) -> Option<(&str, &str)> {
    let (i, _) = file.match_indices('/').nth(4)?;
    let (job, rest) = (&file[..i], &file[i + 1..]);
    (job.starts_with(ROOT_FOLDER) && job[ROOT_FOLDER.len()..].starts_with('/') && !rest.is_empty())
        .then_some((job, rest))
}

/// The journal of the earlier jobs whose files this job refers to (entries carried over or
/// shared by content on SFTP and S3), one small file per new folder: what prune must keep while
/// the job is unfinished. A resumed job does not reload those entries: it carries or shares them
/// again (a stat each). Journals of older versions listed every file (`references`).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferencesJournal {
    jobs: Vec<String>,
}

/// Where an artifact's file goes in a job.
struct Target {
    /// Inside the job: `Integrations/CODE_VERSION.iar.age`.
    rel: String,
    /// The folder in the vault.
    dir: String,
    /// The file name (`CODE_VERSION.iar.age`).
    final_name: String,
    /// The vault path.
    final_path: String,
}

/// An integration as the source lists it, for [`JobWriter::carry`].
#[derive(Clone, Copy, Debug)]
pub struct Listing<'a> {
    /// Its identity.
    pub key: &'a ArtifactKey,
    /// The source's profile name.
    pub source: &'a str,
    /// The source's identity ([`crate::oic::OicClient::identity`]).
    pub instance: &'a str,
    /// The listed status.
    pub status: Option<&'a str>,
    /// The listed `lastUpdated`.
    pub updated: &'a str,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct LockInfo {
    host: String,
    pid: u32,
    run_by: String,
    started_at: String,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown-host".into())
}

fn temp_name(dir: &str, file: &str) -> String {
    format!("{dir}/.{file}.tmp-{:016x}", rand::random::<u64>())
}

fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

/// Writes `data` to `path` under a temporary name, then renames it.
fn write_atomic(inner: &Inner, path: &str, data: &[u8]) -> Result<(), VaultError> {
    let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
    let tmp = temp_name(dir, file);
    let res = inner
        .store
        .write_small(&tmp, data)
        .and_then(|_| inner.store.rename(&tmp, path));
    if res.is_err() {
        let _ = inner.store.remove(&tmp);
    }
    res
}

/// Writes a file made by `write` (through a buffer, as it is made: nothing is held whole) to
/// `path` under a temporary name, then renames it.
fn write_atomic_with(
    inner: &Inner,
    path: &str,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), VaultError> {
    let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
    let tmp = temp_name(dir, file);
    let st = &inner.store;
    let res = st.create(&tmp).and_then(|w| {
        let werr = |e: &io::Error| VaultError::store("write", st.describe(), &tmp, e);
        let mut buf = io::BufWriter::with_capacity(64 * 1024, w);
        write(&mut buf).map_err(|e| werr(&e))?;
        buf.into_inner()
            .map_err(|e| werr(e.error()))?
            .finish()
            .map_err(|e| werr(&e))?;
        st.rename(&tmp, path)
    });
    if res.is_err() {
        let _ = st.remove(&tmp);
    }
    res
}

/// The job's manifest: `None` when there is none, `Some(Err(why))` when it is damaged.
pub(crate) fn read_manifest(
    inner: &Inner,
    job: &str,
) -> Result<Option<Result<Manifest, String>>, VaultError> {
    match inner.store.read_small(&format!("{job}/{MANIFEST}")) {
        Ok(b) => Ok(Some(Manifest::parse(&b))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// A job being written. Share it between threads (`&JobWriter` or `Arc<JobWriter>`) to store
/// artifacts in parallel; call [`JobWriter::finish`] once at the end. Dropping it without
/// finishing leaves the job unfinished and locked (continue it with `JobMeta::resume`).
pub struct JobWriter {
    inner: Arc<Inner>,
    path: String,
    name: String,
    date: NaiveDate,
    meta: JobMeta,
    created_at: String,
    /// The entries stored so far, in a local spool file (not in memory).
    entries: Mutex<super::spool::EntrySpool>,
    /// Selected artifacts not stored (yet), with the reason: a failed store or export.
    failed: Mutex<BTreeMap<ArtifactKey, String>>,
    /// What earlier jobs hold, by content (read at the first store).
    index: std::sync::OnceLock<super::shared::SharedIndex>,
    /// The instance each source name stands for (from the artifacts stored).
    sources: Mutex<BTreeMap<String, String>>,
    /// The earlier jobs whose files this job's journal protects from prune.
    referenced: Mutex<BTreeSet<String>>,
    /// Entries waiting to be journaled, each with whether its batch was written.
    journal_wait: Mutex<Vec<JournalWait>>,
    /// Held while a batch of journal entries is written.
    journal_write: Mutex<()>,
    /// Folders holding hard links not synced yet (synced before the manifest is written).
    unsynced: Mutex<BTreeSet<String>>,
}

/// An entry waiting for the journal, and whether the batch that took it was written.
type JournalWait = (ManifestEntry, Arc<std::sync::OnceLock<bool>>);

/// Entries journaled together ([`JobWriter::record`]), shared files in the compact form of
/// format-4 manifests.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalBatch {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    shared_jobs: Vec<String>,
    entries: Vec<ManifestEntry>,
}

impl std::fmt::Debug for JobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JobWriter({})", self.path)
    }
}

impl JobWriter {
    pub(crate) fn create(
        inner: Arc<Inner>,
        path: String,
        name: String,
        date: NaiveDate,
        mut meta: JobMeta,
    ) -> Result<JobWriter, VaultError> {
        if meta.ferry_version.is_empty() {
            meta.ferry_version = env!("CARGO_PKG_VERSION").to_string();
        }
        let st = &inner.store;
        st.create_dir_all(&path)?;
        let partial = match read_manifest(&inner, &path)? {
            None => false,
            Some(Ok(m)) if m.status == JobStatus::Partial && meta.resume => true,
            Some(Ok(m)) if m.status == JobStatus::Partial => {
                return Err(VaultError::Partial { job: path });
            }
            Some(Ok(_)) => return Err(VaultError::Complete { job: path }),
            Some(Err(reason)) => return Err(VaultError::BadManifest { job: path, reason }),
        };
        let lock = LockInfo {
            host: hostname(),
            pid: std::process::id(),
            run_by: meta.run_by.clone(),
            started_at: now(),
        };
        let lock_json = serde_json::to_vec_pretty(&lock).map_err(|e| VaultError::Local {
            path: LOCK.into(),
            reason: e.to_string(),
        })?;
        let lock_path = format!("{path}/{LOCK}");
        let others: Vec<_> = st
            .list(&path)?
            .into_iter()
            .filter(|e| e.name != LOCK)
            .collect();
        if !st.create_exclusive(&lock_path, &lock_json)? {
            let held = st
                .read_small(&lock_path)
                .ok()
                .and_then(|b| serde_json::from_slice::<LockInfo>(&b).ok());
            let holder = match &held {
                Some(l) => format!(
                    "pid {} on {}, run by `{}`, since {}",
                    l.pid, l.host, l.run_by, l.started_at
                ),
                None => "unknown holder".into(),
            };
            // A run on this machine that is still alive keeps its lock, even against resume.
            let alive = held.as_ref().is_some_and(|l| {
                l.host == lock.host
                    && l.pid != lock.pid
                    && std::path::Path::new(&format!("/proc/{}", l.pid)).exists()
            });
            if !meta.resume || alive {
                let holder = if alive {
                    format!("{holder}; that process is still running")
                } else {
                    holder
                };
                return Err(VaultError::Locked { job: path, holder });
            }
            tracing::warn!(job = %path, "resuming an unfinished job: taking over its lock");
            write_atomic(&inner, &lock_path, &lock_json)?;
        } else if !others.is_empty() && !meta.resume && !partial {
            // Files but no lock and no manifest: an earlier run stopped half-way.
            let _ = st.remove(&lock_path);
            return Err(VaultError::Unfinished { job: path });
        }
        let w = JobWriter {
            inner,
            path,
            name,
            date,
            meta,
            created_at: now(),
            entries: Mutex::new(Default::default()),
            failed: Mutex::new(BTreeMap::new()),
            index: std::sync::OnceLock::new(),
            sources: Mutex::new(BTreeMap::new()),
            referenced: Mutex::new(BTreeSet::new()),
            journal_wait: Mutex::new(vec![]),
            journal_write: Mutex::new(()),
            unsynced: Mutex::new(BTreeSet::new()),
        };
        if w.meta.resume {
            w.recover()?;
        }
        Ok(w)
    }

    /// On resume: removes leftover temporary files and reloads the entries already stored.
    fn recover(&self) -> Result<(), VaultError> {
        let st = &self.inner.store;
        for e in st.list(&self.path)? {
            if e.is_dir && e.name != JOURNAL {
                let dir = format!("{}/{}", self.path, e.name);
                for f in st.list(&dir)? {
                    if !f.is_dir && is_temp_name(&f.name) {
                        st.remove(&format!("{dir}/{}", f.name))?;
                    }
                }
            } else if !e.is_dir && is_temp_name(&e.name) {
                st.remove(&format!("{}/{}", self.path, e.name))?;
            }
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        // A partial job being continued: what its manifest lists and is still there.
        if let Some(Ok(m)) = read_manifest(&self.inner, &self.path)? {
            for entry in m.entries {
                if st.stat(&entry.stored_at(&self.path))? == Some(entry.stored_size) {
                    entries.insert(&entry).map_err(spool_err)?;
                }
            }
        }
        let jdir = format!("{}/{JOURNAL}", self.path);
        if st.stat(&jdir)?.is_none() {
            return Ok(());
        }
        for f in st.list(&jdir)? {
            let p = format!("{jdir}/{}", f.name);
            if is_temp_name(&f.name) {
                st.remove(&p)?;
                continue;
            }
            // Reference journals (`refs-*.json`, `carried-*.json`) are not entries.
            let bytes = st.read_small(&p)?;
            let found = match serde_json::from_slice::<ManifestEntry>(&bytes) {
                Ok(entry) => vec![entry],
                Err(_) => match serde_json::from_slice::<JournalBatch>(&bytes) {
                    Ok(mut b) => match resolve_shared(&b.shared_jobs, FORMAT, &mut b.entries) {
                        Ok(()) => b.entries,
                        Err(why) => {
                            tracing::warn!(job = %self.path, file = %p, "journal batch ignored: {why}");
                            continue;
                        }
                    },
                    Err(_) => continue,
                },
            };
            for entry in found {
                // Keep it only when its file is there with the recorded size.
                if st.stat(&entry.stored_at(&self.path))? == Some(entry.stored_size) {
                    entries.insert(&entry).map_err(spool_err)?;
                }
            }
        }
        Ok(())
    }

    /// The job's path in the vault (`OIC_Backups/YYYY/MM/DD/name`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The entries stored so far.
    pub fn entries(&self) -> Vec<ManifestEntry> {
        let spool = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        spool
            .iter()
            .filter_map(|e| {
                e.map_err(|e| tracing::warn!(job = %self.path, "entry spool: {e}"))
                    .ok()
            })
            .collect()
    }

    /// Stores one artifact: streams its file through sha256, age encryption (when configured)
    /// and a second sha256 to a temporary name in the job, then renames it to
    /// `<Folder>/<file name>[.age]`. Fails (and leaves no file under the final name) when the
    /// file does not match the artifact's recorded size and sha256.
    /// A failed store is remembered: the job then finishes `partial` unless a later store of the
    /// same artifact succeeds.
    pub fn store(&self, a: &Artifact) -> Result<ManifestEntry, VaultError> {
        let r = self.store_file(a);
        let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        match &r {
            Ok(_) => failed.remove(&a.key),
            Err(e) => failed.insert(a.key.clone(), format!("store failed: {e}")),
        };
        r
    }

    /// Reads a file this job stored back and checks it against its entry (stored size and
    /// sha256, and, decrypted, the archive's size and sha256), as [`JobReader`] checks a
    /// finished job's files; false when the plaintext could not be checked (encrypted, no
    /// identity).
    pub fn check_stored(&self, e: &ManifestEntry) -> Result<bool, VaultError> {
        check_entry(&self.inner, &self.path, e, Sink::Discard).map(|(_, plain)| plain)
    }

    /// Records a selected artifact that never reached the job (its export failed): the job
    /// finishes `partial` unless it is stored later.
    pub fn note_missing(&self, key: ArtifactKey, reason: String) {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_insert(reason);
    }

    fn store_file(&self, a: &Artifact) -> Result<ManifestEntry, VaultError> {
        let t = self.target(&a.key, self.inner.encryption.is_encrypted())?;
        self.inner.store.create_dir_all(&t.dir)?;
        let content_sha256 = super::content_hash(a.path(), &a.sha256).ok();
        if let Some(c) = &content_sha256
            && let Some(entry) = self.share(a, c, &t)?
        {
            return self.add_shared(entry);
        }
        if a.size <= WHOLE_MAX {
            return match self.store_whole(a, &t, content_sha256.clone()) {
                Err(first) if first.is_connection_lost() => {
                    tracing::warn!(job = %self.path, artifact = %a.key, "{first}; retrying the upload once");
                    self.store_whole(a, &t, content_sha256)
                        .map_err(|second| first.with_retry_failure(&second))
                }
                r => r,
            };
        }
        let (tmp, size, sha, stored_size, stored_sha) = self.upload_retrying(a, &t)?;
        if let Err(e) = self.check_upload(a, &t, &tmp, (size, &sha), stored_size) {
            let _ = self.inner.store.remove(&tmp);
            return Err(e);
        }
        if let Err(e) = self.inner.store.rename(&tmp, &t.final_path) {
            let _ = self.inner.store.remove(&tmp);
            return Err(e);
        }
        let entry = self.new_entry(
            a,
            &t,
            (size, sha),
            (stored_size, stored_sha),
            content_sha256,
        );
        self.record(entry)
    }

    /// Where an artifact's file goes in this job.
    fn target(&self, key: &ArtifactKey, encrypted: bool) -> Result<Target, VaultError> {
        let file_name = crate::artifact::file_name_of(key);
        check_name("artifact file name", &file_name)?;
        let final_name = if encrypted {
            format!("{file_name}.age")
        } else {
            file_name
        };
        let folder = key.kind.folder();
        Ok(Target {
            rel: format!("{folder}/{final_name}"),
            dir: format!("{}/{folder}", self.path),
            final_path: format!("{}/{folder}/{final_name}", self.path),
            final_name,
        })
    }

    /// The manifest entry of an artifact written by this job (not shared).
    fn new_entry(
        &self,
        a: &Artifact,
        t: &Target,
        (size, sha256): (u64, String),
        (stored_size, stored_sha256): (u64, String),
        content_sha256: Option<String>,
    ) -> ManifestEntry {
        ManifestEntry {
            kind: a.key.kind,
            code: a.key.code.clone(),
            version: a.key.version.clone(),
            source: a.source.clone(),
            source_status: a.source_status.clone(),
            size,
            sha256,
            content_sha256,
            stored_size,
            stored_sha256,
            encrypted: self.inner.encryption.is_encrypted(),
            exported_at: a.exported_at.clone(),
            path: t.rel.clone(),
            source_updated: self.listed(a),
            shared: None,
        }
    }

    /// Streams the artifact to a temporary name (sent once more when the connection dropped
    /// mid-transfer: the store reconnects); returns (temporary name, plain size, plain sha,
    /// stored size, stored sha). Nothing is left behind on failure.
    fn upload_retrying(
        &self,
        a: &Artifact,
        t: &Target,
    ) -> Result<(String, u64, String, u64, String), VaultError> {
        let st = &self.inner.store;
        let tmp = temp_name(&t.dir, &t.final_name);
        let first = match self.upload(a, &tmp, &t.rel) {
            Ok((n, s, sn, ss)) => return Ok((tmp, n, s, sn, ss)),
            Err(e) => {
                let _ = st.remove(&tmp);
                e
            }
        };
        if !first.is_connection_lost() {
            return Err(first);
        }
        tracing::warn!(job = %self.path, artifact = %a.key, "{first}; retrying the upload once");
        let tmp = temp_name(&t.dir, &t.final_name);
        match self.upload(a, &tmp, &t.rel) {
            Ok((n, s, sn, ss)) => Ok((tmp, n, s, sn, ss)),
            Err(second) => {
                let _ = st.remove(&tmp);
                Err(first.with_retry_failure(&second))
            }
        }
    }

    /// Checks an upload: the local file read as the artifact says (size and sha256), and the
    /// store holding every byte written.
    fn check_upload(
        &self,
        a: &Artifact,
        t: &Target,
        tmp: &str,
        (size, sha): (u64, &str),
        stored_size: u64,
    ) -> Result<(), VaultError> {
        let integrity = |problem: String| VaultError::Integrity {
            job: self.path.clone(),
            artifact: a.key.to_string(),
            path: t.rel.clone(),
            problem,
        };
        self.check_local(a, t, size, sha)?;
        match self.inner.store.stat(tmp)? {
            Some(n) if n == stored_size => Ok(()),
            other => Err(integrity(format!(
                "upload incomplete: wrote {stored_size} bytes, the store holds {}",
                other
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "no file".into())
            ))),
        }
    }

    /// The local file read as the artifact says (its size and sha256 from the export): a file
    /// changed since then is refused, never stored.
    fn check_local(
        &self,
        a: &Artifact,
        t: &Target,
        size: u64,
        sha: &str,
    ) -> Result<(), VaultError> {
        if size == a.size && sha == a.sha256 {
            return Ok(());
        }
        Err(VaultError::Integrity {
            job: self.path.clone(),
            artifact: a.key.to_string(),
            path: t.rel.clone(),
            problem: format!(
                "the local file {} changed: expected {} bytes with sha256 {}, read {} bytes with sha256 {}",
                a.path().display(),
                a.size,
                a.sha256,
                size,
                sha
            ),
        })
    }

    /// The small path of [`JobWriter::store`]: the archive is read, checked against the
    /// artifact's size and sha256, encrypted and hashed in memory, and its journal entry made,
    /// before anything is sent; then both files go in one batch (each under a temporary name,
    /// then renamed), so that the stored bytes are the ones hashed.
    fn store_whole(
        &self,
        a: &Artifact,
        t: &Target,
        content_sha256: Option<String>,
    ) -> Result<ManifestEntry, VaultError> {
        use sha2::{Digest, Sha256};
        let local = |e: io::Error| VaultError::Local {
            path: a.path().display().to_string(),
            reason: e.to_string(),
        };
        let enc = &self.inner.encryption;
        let mut plain = Vec::with_capacity(a.size as usize);
        std::fs::File::open(a.path())
            .and_then(|f| f.take(WHOLE_MAX + 1).read_to_end(&mut plain))
            .map_err(local)?;
        let (size, sha) = (plain.len() as u64, hex::encode(Sha256::digest(&plain)));
        self.check_local(a, t, size, &sha)?;
        let st = &self.inner.store;
        let write_err = |e: io::Error| VaultError::store("write", st.describe(), &t.final_path, &e);
        let stored = if enc.is_encrypted() {
            let mut w = enc
                .wrap(Vec::with_capacity(plain.len() + 1024))
                .map_err(write_err)?;
            w.write_all(&plain).map_err(write_err)?;
            w.finish().map_err(write_err)?
        } else {
            plain
        };
        let stored_sha = hex::encode(Sha256::digest(&stored));
        let entry = self.new_entry(
            a,
            t,
            (size, sha),
            (stored.len() as u64, stored_sha),
            content_sha256,
        );
        let journal = serde_json::to_vec(&entry).map_err(|e| VaultError::Local {
            path: t.rel.clone(),
            reason: e.to_string(),
        })?;
        let jdir = format!("{}/{JOURNAL}", self.path);
        st.create_dir_all(&jdir)?;
        let jname = t.rel.replace('/', "__");
        let (jpath, jtmp) = (format!("{jdir}/{jname}"), temp_name(&jdir, &jname));
        let tmp = temp_name(&t.dir, &t.final_name);
        st.put_whole(&[
            WholeFile {
                tmp: &tmp,
                path: &t.final_path,
                data: &stored,
                durable: true,
            },
            // A journal entry lost in a crash only means the archive is stored again on resume
            // (an entry counts only when its file has the recorded size), so it is not synced:
            // a server's fsync costs about as much as a round trip.
            WholeFile {
                tmp: &jtmp,
                path: &jpath,
                data: &journal,
                durable: false,
            },
        ])?;
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(&entry)
            .map_err(spool_err)?;
        Ok(entry)
    }

    /// Makes the job's file `t` share `earlier` (an earlier job's file): a hard link where the
    /// store can, else a reference (a file an earlier run of this job left under the final name
    /// is removed: it would be stale).
    fn link_or_refer(&self, earlier: &str, t: &Target) -> Result<ShareVia, VaultError> {
        let st = &self.inner.store;
        // Straight to the final name (a hard link appears whole), its folder synced once before
        // the manifest is written; when that name is taken (a resumed job), through a temporary
        // name renamed over it.
        match st.hard_link(earlier, &t.final_path) {
            Ok(true) => {
                self.unsynced
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(t.dir.clone());
                return Ok(ShareVia::Hardlink);
            }
            Ok(false) => {}
            Err(_) => {
                let tmp = temp_name(&t.dir, &t.final_name);
                if st.hard_link(earlier, &tmp)? {
                    if let Err(e) = st.rename(&tmp, &t.final_path) {
                        let _ = st.remove(&tmp);
                        return Err(e);
                    }
                    return Ok(ShareVia::Hardlink);
                }
            }
        }
        if self.meta.resume && st.stat(&t.final_path)?.is_some() {
            st.remove(&t.final_path)?;
        }
        Ok(ShareVia::Reference)
    }

    /// Stores nothing new when an earlier job holds the same content, with the same encryption:
    /// hard-links its file where the store can, else records a reference to it. `None` when
    /// nothing can be shared (the artifact is then written as usual).
    fn share(
        &self,
        a: &Artifact,
        content: &str,
        t: &Target,
    ) -> Result<Option<ManifestEntry>, VaultError> {
        let index = self.index();
        let Some(earlier) = index.find(&self.inner, a.key.kind, content) else {
            return Ok(None);
        };
        // No byte of the local file is stored, so it is not read again (its content hash was
        // just computed from it); a file that changed size since the export is written (and
        // refused) as usual.
        let local = std::fs::metadata(a.path()).map_err(|e| VaultError::Local {
            path: a.path().display().to_string(),
            reason: e.to_string(),
        })?;
        if local.len() != a.size {
            return Ok(None);
        }
        if self.inner.store.stat(&earlier.file)? != Some(earlier.entry.stored_size) {
            return Ok(None);
        }
        let via = self.link_or_refer(&earlier.file, t)?;
        let e = &earlier.entry;
        Ok(Some(ManifestEntry {
            kind: a.key.kind,
            code: a.key.code.clone(),
            version: a.key.version.clone(),
            source: a.source.clone(),
            source_status: a.source_status.clone(),
            size: e.size,
            sha256: e.sha256.clone(),
            content_sha256: Some(content.to_string()),
            stored_size: e.stored_size,
            stored_sha256: e.stored_sha256.clone(),
            encrypted: e.encrypted,
            exported_at: a.exported_at.clone(),
            path: t.rel.clone(),
            source_updated: self.listed(a),
            shared: Some(SharedBytes::new(
                via,
                earlier.file.clone(),
                Matched::Content,
            )),
        }))
    }

    /// The `lastUpdated` listed for an artifact, noting which instance its source is.
    fn listed(&self, a: &Artifact) -> Option<String> {
        let l = a.listed.as_ref()?;
        self.note_source(&a.source, &l.instance);
        Some(l.updated.clone())
    }

    /// Records which instance the source name `source` stands for in this job (the manifest's
    /// `source_instances`).
    pub fn note_source(&self, source: &str, instance: &str) {
        self.sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(source.to_string(), instance.to_string());
    }

    /// Carries an integration over from an earlier complete job without exporting it, when the
    /// source lists it exactly as that job recorded it: same instance, same `lastUpdated`, same
    /// status, same encryption; and the earlier bytes are still there with their size (a stat;
    /// with `deep`, every byte is read back and checked against the stored sha256). Hard-links
    /// the earlier file where the store can, else records a reference. Returns the entry (not yet
    /// in the job: pass it to [`JobWriter::record_carried`]), or `None` when in any doubt (the
    /// caller then exports it).
    pub fn carry(
        &self,
        item: &Listing<'_>,
        deep: bool,
    ) -> Result<Option<ManifestEntry>, VaultError> {
        let Some(earlier) = self.index().unchanged(&self.inner, item, deep)? else {
            return Ok(None);
        };
        let e = &earlier.entry;
        let t = self.target(item.key, e.encrypted)?;
        self.inner.store.create_dir_all(&t.dir)?;
        let via = self.link_or_refer(&earlier.file, &t)?;
        self.note_source(item.source, item.instance);
        Ok(Some(ManifestEntry {
            kind: item.key.kind,
            code: item.key.code.clone(),
            version: item.key.version.clone(),
            source: item.source.to_string(),
            source_status: item.status.map(str::to_string),
            size: e.size,
            sha256: e.sha256.clone(),
            content_sha256: e.content_sha256.clone(),
            stored_size: e.stored_size,
            stored_sha256: e.stored_sha256.clone(),
            encrypted: e.encrypted,
            exported_at: e.exported_at.clone(),
            path: t.rel,
            source_updated: Some(item.updated.to_string()),
            shared: Some(SharedBytes::new(
                via,
                earlier.file.clone(),
                Matched::Listing,
            )),
        }))
    }

    /// Adds carried entries to the job. The job folders of the earlier files they refer to
    /// (SFTP, S3) are journaled first, once per folder and job, so that a prune keeps them while
    /// the job is unfinished; hard links need no journal (an unchanged night writes little).
    pub fn record_carried(&self, batch: Vec<ManifestEntry>) -> Result<(), VaultError> {
        self.journal_references(&batch)?;
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        for e in &batch {
            entries.insert(e).map_err(spool_err)?;
        }
        Ok(())
    }

    /// Adds an entry sharing an earlier job's bytes (found by content) to the job: its
    /// reference, if any, is journaled as [`JobWriter::record_carried`] does, and the entry is
    /// journaled like any stored one. Why not rely on sharing it again on resume (as carried
    /// entries are): a job a resumed run does not store into again (a rollback job whose save
    /// was done before the stop) must still finish with every entry it was given.
    fn add_shared(&self, entry: ManifestEntry) -> Result<ManifestEntry, VaultError> {
        self.journal_references(std::slice::from_ref(&entry))?;
        self.record(entry)
    }

    /// Journals the job folders holding the earlier files `entries` refer to that this job has
    /// not journaled yet (one small file, usually one folder for a whole night): while the job
    /// is unfinished, prune keeps every file of those folders. The lock is held while writing,
    /// so no entry is added before the folder it refers to is journaled.
    fn journal_references(&self, entries: &[ManifestEntry]) -> Result<(), VaultError> {
        let mut done = self.referenced.lock().unwrap_or_else(|p| p.into_inner());
        let jobs: BTreeSet<String> = entries
            .iter()
            .filter_map(|e| match &e.shared {
                Some(SharedBytes {
                    via: ShareVia::Reference,
                    file,
                    ..
                }) => Some(super::shared::job_of(file).to_string()),
                _ => None,
            })
            .filter(|j| !done.contains(j))
            .collect();
        if jobs.is_empty() {
            return Ok(());
        }
        let journal = serde_json::to_vec(&ReferencesJournal {
            jobs: jobs.iter().cloned().collect(),
        })
        .map_err(|e| VaultError::Local {
            path: JOURNAL.into(),
            reason: e.to_string(),
        })?;
        let jdir = format!("{}/{JOURNAL}", self.path);
        self.inner.store.create_dir_all(&jdir)?;
        write_atomic(
            &self.inner,
            &format!("{jdir}/refs-{:016x}.json", rand::random::<u64>()),
            &journal,
        )?;
        done.extend(jobs);
        Ok(())
    }

    fn index(&self) -> &super::shared::SharedIndex {
        self.index
            .get_or_init(|| super::shared::SharedIndex::build(&self.inner, self.date, &self.path))
    }

    /// Journals a stored entry and adds it to the job. Entries recorded at the same time (the
    /// stores running in parallel) are journaled together, in one file: whichever store gets to
    /// the journal first writes every entry waiting (group commit).
    fn record(&self, entry: ManifestEntry) -> Result<ManifestEntry, VaultError> {
        let done = Arc::new(std::sync::OnceLock::new());
        self.journal_wait
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((entry.clone(), done.clone()));
        {
            let _writing = self.journal_write.lock().unwrap_or_else(|p| p.into_inner());
            if done.get().is_none() {
                let batch = std::mem::take(
                    &mut *self.journal_wait.lock().unwrap_or_else(|p| p.into_inner()),
                );
                let r = self.write_journal(batch.iter().map(|b| &b.0));
                for (_, d) in &batch {
                    let _ = d.set(r.is_ok());
                }
                r?;
            }
        }
        // Another store's batch with this entry failed: journal it alone (its own error).
        if done.get() != Some(&true) {
            self.write_journal(std::iter::once(&entry))?;
        }
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(&entry)
            .map_err(spool_err)?;
        Ok(entry)
    }

    /// Writes journal entries: one entry as its compact JSON in a file named after its path,
    /// several as one [`JournalBatch`] (named by time, so that a later batch reads later).
    fn write_journal<'e>(
        &self,
        entries: impl Iterator<Item = &'e ManifestEntry> + Clone,
    ) -> Result<(), VaultError> {
        let jdir = format!("{}/{JOURNAL}", self.path);
        let err = |e: serde_json::Error| VaultError::Local {
            path: JOURNAL.into(),
            reason: e.to_string(),
        };
        let mut all = entries.clone();
        let (Some(first), None) = (all.next(), all.next()) else {
            let table = SharedTable::of(entries.clone());
            let batch = JournalBatch {
                shared_jobs: table.jobs.clone(),
                entries: entries.map(|e| table.compact(e).into_owned()).collect(),
            };
            if batch.entries.is_empty() {
                return Ok(());
            }
            let json = serde_json::to_vec(&batch).map_err(err)?;
            let name = format!(
                "batch-{:020}-{:08x}.json",
                chrono::Utc::now().timestamp_micros(),
                rand::random::<u32>()
            );
            return self.put_journal(&jdir, &name, &json);
        };
        let json = serde_json::to_vec(first).map_err(err)?;
        self.put_journal(&jdir, &first.path.replace('/', "__"), &json)
    }

    /// Writes one journal file whole, under a temporary name then renamed, not synced (as the
    /// journal entries of [`JobWriter::store_whole`]: a server's fsync costs about a round trip,
    /// and only a crash of the machine, not of the process, can lose it).
    fn put_journal(&self, jdir: &str, name: &str, data: &[u8]) -> Result<(), VaultError> {
        let st = &self.inner.store;
        st.create_dir_all(jdir)?;
        let (path, tmp) = (format!("{jdir}/{name}"), temp_name(jdir, name));
        st.put_whole(&[WholeFile {
            tmp: &tmp,
            path: &path,
            data,
            durable: false,
        }])
    }

    /// Streams the artifact to `tmp`; returns (plain size, plain sha, stored size, stored sha).
    fn upload(
        &self,
        a: &Artifact,
        tmp: &str,
        rel: &str,
    ) -> Result<(u64, String, u64, String), VaultError> {
        let local = |e: io::Error| VaultError::Local {
            path: a.path().display().to_string(),
            reason: e.to_string(),
        };
        let st = &self.inner.store;
        let write_err = |e: io::Error| {
            VaultError::store("write", st.describe(), &format!("{}/{rel}", self.path), &e)
        };
        // Four stages on four threads: read | age encryption | sha256 of the plaintext and of
        // the stored bytes, the two hashes interleaved (DualHash) | store writes (for SFTP:
        // libssh2's copies and SSH encryption). Chunks of 1 MiB are handed over, not copied.
        let mut src =
            PrefetchReader::spawn(std::fs::File::open(a.path()).map_err(local)?).map_err(local)?;
        let encrypted = self.inner.encryption.is_encrypted();
        let out = PipeWriter::new(st.create(tmp)?, src.recycler(), !encrypted).map_err(local)?;
        let plain = out.plain_chunks();
        let out = if encrypted {
            let mut w = self.inner.encryption.wrap(out).map_err(write_err)?;
            copy_chunks(&mut src, &mut w, &plain, local, write_err)?;
            w.finish().map_err(write_err)?
        } else {
            let mut w = out;
            copy_chunks(&mut src, &mut w, &plain, local, write_err)?;
            w
        };
        let (size, sha, stored_size, stored_sha) = out.finish().map_err(write_err)?;
        let read = src.finish().map_err(local)?;
        if read != size {
            // bytes read and never hashed (cannot happen: every chunk read goes through
            // copy_chunks): refused rather than recorded with a wrong checksum
            return Err(local(io::Error::other(format!(
                "read {read} bytes, hashed {size}"
            ))));
        }
        Ok((size, sha, stored_size, stored_sha))
    }

    /// Writes `manifest.json` (under a temporary name, then renamed: the job is now finished)
    /// and releases the lock. The job is `complete` when no selected artifact is missing,
    /// otherwise `partial`, its manifest listing what is missing and why.
    /// Returns the manifest, its entries read back (see [`JobWriter::finish_status`] for a job
    /// of thousands).
    pub fn finish(self) -> Result<Manifest, VaultError> {
        let (mut m, spool) = self.write_manifest()?;
        m.entries = spool
            .iter()
            .collect::<io::Result<Vec<_>>>()
            .map_err(spool_err)?;
        Ok(m)
    }

    /// [`JobWriter::finish`] that returns what the job is (`complete` or `partial`) and what it
    /// misses, without reading its entries back.
    pub fn finish_status(self) -> Result<(JobStatus, Vec<MissingEntry>), VaultError> {
        let (m, _) = self.write_manifest()?;
        Ok((m.status, m.missing))
    }

    /// Writes the manifest and releases the lock; returns the manifest without its entries, and
    /// the entries.
    fn write_manifest(self) -> Result<(Manifest, super::spool::EntrySpool), VaultError> {
        // moved out: the writer ends here
        let spool = std::mem::take(&mut *self.entries.lock().unwrap_or_else(|p| p.into_inner()));
        // An entry's path is its key's file name in its kind's folder (`.age` when encrypted).
        let stored = |k: &ArtifactKey| {
            [false, true]
                .into_iter()
                .any(|enc| self.target(k, enc).is_ok_and(|t| spool.contains(&t.rel)))
        };
        let missing: Vec<MissingEntry> = self
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(k, _)| !stored(k))
            .map(|(k, reason)| MissingEntry {
                kind: k.kind,
                code: k.code.clone(),
                version: k.version.clone(),
                reason: reason.clone(),
            })
            .collect();
        // Every name in the job durable before the manifest says the job is complete.
        let unsynced =
            std::mem::take(&mut *self.unsynced.lock().unwrap_or_else(|p| p.into_inner()));
        for dir in &unsynced {
            self.inner.store.sync_dir(dir)?;
        }
        let enc = &self.inner.encryption;
        let m = Manifest {
            format: FORMAT,
            job: self.name.clone(),
            date: self.date,
            path: self.path.clone(),
            ferry_version: self.meta.ferry_version.clone(),
            recipe: self.meta.recipe.clone(),
            run_by: self.meta.run_by.clone(),
            sources: self.meta.sources.clone(),
            target: self.meta.target.clone(),
            source_instances: self
                .sources
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            encryption: ManifestEncryption {
                method: enc.method(),
                recipients: enc.public_keys(),
            },
            shared_jobs: vec![],
            created_at: self.created_at.clone(),
            finished_at: now(),
            entries: vec![],
            status: if missing.is_empty() {
                JobStatus::Complete
            } else {
                JobStatus::Partial
            },
            missing,
        };
        write_atomic_with(&self.inner, &format!("{}/{MANIFEST}", self.path), |w| {
            m.write_json_with(w, &mut || {
                Box::new(spool.iter().map(|e| e.map(std::borrow::Cow::Owned)))
            })
            .map_err(io::Error::from)
        })?;
        let st = &self.inner.store;
        let jdir = format!("{}/{JOURNAL}", self.path);
        if st.stat(&jdir)?.is_some()
            && let Err(e) = st.remove_tree(&jdir)
        {
            tracing::warn!(job = %self.path, "cannot remove the job journal: {e}");
        }
        st.remove(&format!("{}/{LOCK}", self.path))?;
        Ok((m, spool))
    }
}

/// A failure of the local spool of a job's entries.
fn spool_err(e: io::Error) -> VaultError {
    VaultError::Local {
        path: "the job's entry spool (temporary folder)".into(),
        reason: e.to_string(),
    }
}

/// Every chunk the reader read ahead, written to `dst` (no intermediate buffer), then handed
/// over to be hashed as plaintext.
fn copy_chunks(
    src: &mut PrefetchReader,
    dst: &mut dyn Write,
    plain: &PlainChunks,
    read_err: impl Fn(io::Error) -> VaultError,
    write_err: impl Fn(io::Error) -> VaultError,
) -> Result<(), VaultError> {
    while let Some(chunk) = src.next_chunk().map_err(&read_err)? {
        dst.write_all(&chunk).map_err(&write_err)?;
        plain.borrow_mut().push(chunk);
    }
    Ok(())
}

/// The outcome of checking one entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum EntryStatus {
    /// Every byte read back and matched.
    Ok,
    /// Only the stored (encrypted) bytes could be checked: no identity to decrypt.
    StoredOk,
    /// Size or checksum differs, or decryption failed.
    Mismatch { problem: String },
    /// The file is not there.
    Missing,
    /// The file could not be read.
    Unreadable { reason: String },
}

/// One entry's verification.
#[derive(Clone, Debug, Serialize)]
pub struct EntryCheck {
    /// Path of the file inside the job.
    pub path: String,
    /// The artifact (`kind CODE|VERSION`).
    pub artifact: String,
    /// What was found.
    #[serde(flatten)]
    pub status: EntryStatus,
}

/// The result of [`JobReader::verify`].
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    /// The job's path.
    pub job: String,
    /// One check per manifest entry.
    pub entries: Vec<EntryCheck>,
    /// Stored bytes read.
    pub bytes_read: u64,
    /// Files in the job's artifact folders that the manifest does not list (reported, not
    /// counted as failures).
    pub extra: Vec<String>,
}

impl VerifyReport {
    /// True when every entry is `Ok` or `StoredOk`.
    pub fn ok(&self) -> bool {
        self.entries
            .iter()
            .all(|e| matches!(e.status, EntryStatus::Ok | EntryStatus::StoredOk))
    }
    /// The entries that failed.
    pub fn failures(&self) -> Vec<&EntryCheck> {
        self.entries
            .iter()
            .filter(|e| !matches!(e.status, EntryStatus::Ok | EntryStatus::StoredOk))
            .collect()
    }
}

/// A complete job, opened for reading.
pub struct JobReader {
    inner: Arc<Inner>,
    path: String,
    manifest: Manifest,
}

impl std::fmt::Debug for JobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JobReader({})", self.path)
    }
}

enum Sink<'a> {
    Discard,
    File(&'a mut std::fs::File),
}

impl JobReader {
    pub(crate) fn open(inner: Arc<Inner>, path: String) -> Result<JobReader, VaultError> {
        for part in path.split('/') {
            if part == ".." || part == "." || part.is_empty() {
                return Err(VaultError::BadName {
                    what: "job path",
                    name: path.clone(),
                    problem: "it has an empty, `.` or `..` part",
                });
            }
        }
        let mp = format!("{path}/{MANIFEST}");
        let bytes = match inner.store.read_small(&mp) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Err(VaultError::NoManifest { job: path }),
            Err(e) => return Err(e),
        };
        let manifest = Manifest::parse(&bytes).map_err(|reason| VaultError::BadManifest {
            job: path.clone(),
            reason,
        })?;
        Ok(JobReader {
            inner,
            path,
            manifest,
        })
    }

    /// The job's path in the vault.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The job's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Downloads one entry to a local temporary file, decrypting it, and checks the stored and
    /// plaintext sizes and sha256 against the manifest. Returns nothing unless all match.
    pub fn fetch(&self, entry: &ManifestEntry) -> Result<Artifact, VaultError> {
        let mut tmp = tempfile::Builder::new()
            .prefix(".ferry-fetch-")
            .tempfile()
            .map_err(|e| VaultError::Local {
                path: std::env::temp_dir().display().to_string(),
                reason: e.to_string(),
            })?;
        self.check(entry, Sink::File(tmp.as_file_mut()))?;
        let mut a = Artifact::from_temp(
            entry.key(),
            tmp.into_temp_path(),
            entry.size,
            entry.sha256.clone(),
            format!("vault:{}", self.path),
        );
        a.source_status = entry.source_status.clone();
        a.exported_at = entry.exported_at.clone();
        Ok(a)
    }

    /// [`JobReader::fetch`] without writing the plaintext again when this run still holds the
    /// local file it stored for `entry` (`local`, of the manifest's size and sha256): the stored
    /// file is read, decrypted and checked against the manifest all the same, and the artifact
    /// given back is backed by that local file (the same bytes, by sha256). Otherwise a fetch.
    /// One temporary file less per artifact: creating a file costs milliseconds on a busy ext4.
    pub fn fetch_or_share(
        &self,
        entry: &ManifestEntry,
        local: Option<&crate::artifact::FileHandle>,
    ) -> Result<Artifact, VaultError> {
        let Some(local) = local else {
            return self.fetch(entry);
        };
        let mut a = Artifact::planned(
            entry.key(),
            format!("vault:{}", self.path),
            entry.source_status.clone(),
        );
        a.size = entry.size;
        a.sha256 = entry.sha256.clone();
        a.exported_at = entry.exported_at.clone();
        let Some(a) = a.backed_by(local) else {
            return self.fetch(entry);
        };
        let (_, plain_checked) = self.check(entry, Sink::Discard)?;
        if !plain_checked {
            // Not decrypted (no identity): only a fetch proves the plaintext.
            return self.fetch(entry);
        }
        Ok(a)
    }

    /// Reads back every byte of every file and checks it against the manifest (like
    /// `restic check --read-data`). Encrypted files are decrypted when the vault has an
    /// identity; otherwise only their stored bytes are checked.
    pub fn verify(&self) -> Result<VerifyReport, VaultError> {
        let mut report = VerifyReport {
            job: self.path.clone(),
            entries: vec![],
            bytes_read: 0,
            extra: vec![],
        };
        for e in &self.manifest.entries {
            let status = match self.check(e, Sink::Discard) {
                Ok(stored) => {
                    report.bytes_read += stored.0;
                    if stored.1 {
                        EntryStatus::Ok
                    } else {
                        EntryStatus::StoredOk
                    }
                }
                Err(VaultError::Integrity { problem, .. }) => EntryStatus::Mismatch { problem },
                Err(VaultError::Decrypt { reason, .. }) => {
                    EntryStatus::Mismatch { problem: reason }
                }
                Err(err) if err.is_not_found() => EntryStatus::Missing,
                Err(err) => EntryStatus::Unreadable {
                    reason: err.to_string(),
                },
            };
            report.entries.push(EntryCheck {
                path: e.path.clone(),
                artifact: e.key().to_string(),
                status,
            });
        }
        let listed: BTreeSet<&str> = self
            .manifest
            .entries
            .iter()
            .map(|e| e.path.as_str())
            .collect();
        for d in self.inner.store.list(&self.path)? {
            if !d.is_dir || d.name.starts_with('.') {
                continue;
            }
            for f in self
                .inner
                .store
                .list(&format!("{}/{}", self.path, d.name))?
            {
                let rel = format!("{}/{}", d.name, f.name);
                if !listed.contains(rel.as_str()) {
                    report.extra.push(rel);
                }
            }
        }
        Ok(report)
    }

    /// Streams one entry; returns (stored bytes read, plaintext checked).
    fn check(&self, e: &ManifestEntry, sink: Sink<'_>) -> Result<(u64, bool), VaultError> {
        check_entry(&self.inner, &self.path, e, sink)
    }
}

/// Streams one entry of the job at `job_path`; returns (stored bytes read, plaintext checked).
fn check_entry(
    inner: &Inner,
    job_path: &str,
    e: &ManifestEntry,
    mut sink: Sink<'_>,
) -> Result<(u64, bool), VaultError> {
    let full = e.stored_at(job_path);
    let st = &inner.store;
    let integrity = |problem: String| VaultError::Integrity {
        job: job_path.to_string(),
        artifact: e.key().to_string(),
        path: e.path.clone(),
        problem,
    };
    let read_err = |err: io::Error| VaultError::store("read", st.describe(), &full, &err);
    let raw = st.open(&full)?;
    let mut stored = HashingReader::new(raw);
    let dec = &inner.decryption;
    let mut plain_checked = true;
    let plain = if !e.encrypted {
        let mut plain = HashingReader::new(RefReader(&mut stored));
        pump(&mut plain, &mut sink).map_err(|err| match err {
            PumpError::Read(err) => read_err(err),
            PumpError::Write(err) => VaultError::Local {
                path: "temporary file".into(),
                reason: err.to_string(),
            },
        })?;
        Some(plain.finish().map_err(read_err)?)
    } else if dec.is_none() && matches!(sink, Sink::Discard) {
        plain_checked = false;
        None
    } else {
        let decrypt_err = |reason: String| VaultError::Decrypt {
            job: job_path.to_string(),
            artifact: e.key().to_string(),
            path: e.path.clone(),
            reason,
        };
        let r = dec.decrypt(RefReader(&mut stored)).map_err(decrypt_err)?;
        let mut plain = HashingReader::new(r);
        pump(&mut plain, &mut sink).map_err(|err| match err {
            PumpError::Read(err)
                if err.kind() == io::ErrorKind::InvalidData
                    || err.kind() == io::ErrorKind::UnexpectedEof =>
            {
                decrypt_err(describe_stream_error(&err))
            }
            PumpError::Read(err) => read_err(err),
            PumpError::Write(err) => VaultError::Local {
                path: "temporary file".into(),
                reason: err.to_string(),
            },
        })?;
        Some(
            plain
                .finish()
                .map_err(|err| decrypt_err(describe_stream_error(&err)))?,
        )
    };
    let (stored_size, stored_sha) = stored.finish().map_err(read_err)?;
    if stored_size != e.stored_size || stored_sha != e.stored_sha256 {
        return Err(integrity(format!(
            "the stored file differs from the manifest: expected {} bytes with sha256 {}, found {} bytes with sha256 {}",
            e.stored_size, e.stored_sha256, stored_size, stored_sha
        )));
    }
    if let Some((size, sha)) = plain
        && (size != e.size || sha != e.sha256)
    {
        return Err(integrity(format!(
            "the restored archive differs from the manifest: expected {} bytes with sha256 {}, found {} bytes with sha256 {}",
            e.size, e.sha256, size, sha
        )));
    }
    Ok((stored_size, plain_checked))
}

enum PumpError {
    Read(io::Error),
    Write(io::Error),
}

fn pump(src: &mut dyn Read, sink: &mut Sink<'_>) -> Result<(), PumpError> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let k = match src.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PumpError::Read(e)),
        };
        if let Sink::File(f) = sink {
            f.write_all(&buf[..k]).map_err(PumpError::Write)?;
        }
    }
}

/// Which jobs [`super::Vault::list_jobs`] returns. Empty fields match everything.
#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    /// Earliest job date (inclusive).
    pub from: Option<NaiveDate>,
    /// Latest job date (inclusive).
    pub to: Option<NaiveDate>,
    /// Only jobs whose name contains this text.
    pub name: Option<String>,
}

/// What a listed job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobCondition {
    /// Finished with every selected artifact.
    Complete,
    /// Finished with some selected artifacts missing.
    Partial,
    /// No manifest: being written, or stopped (continue it with resume).
    Unfinished,
    /// The manifest cannot be read or is not valid.
    Damaged,
}

impl JobCondition {
    /// The word shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            JobCondition::Complete => "complete",
            JobCondition::Partial => "PARTIAL",
            JobCondition::Unfinished => "unfinished",
            JobCondition::Damaged => "DAMAGED",
        }
    }
}

/// A job found in the vault.
#[derive(Clone, Debug, Serialize)]
pub struct JobSummary {
    /// Path in the vault (`OIC_Backups/2026/11/26/name`), for [`super::Vault::open_job`].
    pub path: String,
    /// Job name.
    pub name: String,
    /// Job date.
    pub date: NaiveDate,
    /// True when its manifest exists and says the job is complete.
    pub complete: bool,
    /// `complete`, `partial`, `unfinished` (no manifest) or `damaged` (unreadable manifest).
    pub status: JobCondition,
    /// Selected artifacts a partial job does not hold.
    pub missing: usize,
    /// Why the manifest of a damaged job cannot be used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// True while a run holds (or an interrupted run left) its lock.
    pub locked: bool,
    /// Number of artifacts (0 when incomplete).
    pub artifacts: usize,
    /// Plaintext bytes of all artifacts.
    pub total_size: u64,
    /// The recipe that wrote it (complete jobs).
    pub recipe: Option<String>,
    /// RFC 3339 creation time (complete jobs).
    pub created_at: Option<String>,
    /// RFC 3339 finish time (complete jobs).
    pub finished_at: Option<String>,
}

fn numeric_dirs(inner: &Inner, path: &str, width: usize) -> Result<Vec<(u32, String)>, VaultError> {
    let entries = match inner.store.list(path) {
        Ok(v) => v,
        Err(e) if e.is_not_found() => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    Ok(entries
        .into_iter()
        .filter(|e| e.is_dir && e.name.len() == width && e.name.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|e| {
            e.name
                .parse::<u32>()
                .ok()
                .map(|n| (n, format!("{path}/{}", e.name)))
        })
        .collect())
}

/// One job's summary; a damaged manifest is reported, not an error.
fn summarize(
    inner: &Inner,
    path: String,
    name: &str,
    date: NaiveDate,
) -> Result<Option<JobSummary>, VaultError> {
    let files = inner.store.list(&path)?;
    if files.iter().any(|f| f.name == PRUNED) {
        return Ok(None);
    }
    let mut s = JobSummary {
        path,
        name: name.to_string(),
        date,
        complete: false,
        status: JobCondition::Unfinished,
        missing: 0,
        problem: None,
        locked: files.iter().any(|f| f.name == LOCK),
        artifacts: 0,
        total_size: 0,
        recipe: None,
        created_at: None,
        finished_at: None,
    };
    if !files.iter().any(|f| f.name == MANIFEST) {
        return Ok(Some(s));
    }
    match read_manifest(inner, &s.path) {
        Ok(Some(Ok(m))) => {
            s.complete = m.status == JobStatus::Complete;
            s.status = match m.status {
                JobStatus::Complete => JobCondition::Complete,
                JobStatus::Partial => JobCondition::Partial,
            };
            s.missing = m.missing.len();
            s.artifacts = m.entries.len();
            s.total_size = m.entries.iter().map(|e| e.size).sum();
            s.recipe = Some(m.recipe);
            s.created_at = Some(m.created_at);
            s.finished_at = Some(m.finished_at);
        }
        Ok(None) => {}
        Ok(Some(Err(reason))) => {
            s.status = JobCondition::Damaged;
            s.problem = Some(reason);
        }
        Err(e) => {
            s.status = JobCondition::Damaged;
            s.problem = Some(e.to_string());
        }
    }
    Ok(Some(s))
}

pub(crate) fn list_jobs(inner: &Inner, filter: &JobFilter) -> Result<Vec<JobSummary>, VaultError> {
    Ok(list_all(inner, filter)?.0)
}

/// Folders of pruned jobs kept for the files newer jobs share, with their dates.
type PrunedFolders = Vec<(String, NaiveDate)>;

/// The jobs, and the folders of pruned jobs kept for the files newer jobs share.
fn list_all(
    inner: &Inner,
    filter: &JobFilter,
) -> Result<(Vec<JobSummary>, PrunedFolders), VaultError> {
    let mut out = vec![];
    let mut pruned = vec![];
    let from = filter.from.unwrap_or(NaiveDate::MIN);
    let to = filter.to.unwrap_or(NaiveDate::MAX);
    for (y, yp) in numeric_dirs(inner, ROOT_FOLDER, 4)? {
        if (y as i32) < from.year() || (y as i32) > to.year() {
            continue;
        }
        for (m, mp) in numeric_dirs(inner, &yp, 2)? {
            for (d, dp) in numeric_dirs(inner, &mp, 2)? {
                let Some(date) = NaiveDate::from_ymd_opt(y as i32, m, d) else {
                    continue;
                };
                if date < from || date > to {
                    continue;
                }
                for j in inner.store.list(&dp)? {
                    if !j.is_dir || j.name.starts_with('.') {
                        continue;
                    }
                    if let Some(n) = &filter.name
                        && !j.name.contains(n.as_str())
                    {
                        continue;
                    }
                    let path = format!("{dp}/{}", j.name);
                    match summarize(inner, path.clone(), &j.name, date)? {
                        Some(s) => out.push(s),
                        None => pruned.push((path, date)),
                    }
                }
            }
        }
    }
    out.sort_by(|a, b| (a.date, &a.finished_at, &a.path).cmp(&(b.date, &b.finished_at, &b.path)));
    Ok((out, pruned))
}

/// How many jobs [`super::Vault::prune`] keeps: the newest job of each of the last `daily`
/// days, `weekly` ISO weeks and `monthly` months that have jobs (like `restic forget
/// --keep-daily/--keep-weekly/--keep-monthly`). A job kept by any rule is kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Days to keep (the newest job of each).
    pub daily: u32,
    /// ISO weeks to keep (the newest job of each).
    pub weekly: u32,
    /// Months to keep (the newest job of each).
    pub monthly: u32,
}

/// The result of a prune.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    /// True when nothing was deleted (dry run).
    pub dry_run: bool,
    /// Complete jobs kept, with the rules that kept them.
    pub kept: Vec<(String, Vec<String>)>,
    /// Complete jobs deleted (or that would be).
    pub deleted: Vec<String>,
    /// Unfinished jobs, never touched.
    pub skipped_unfinished: Vec<String>,
    /// Partial jobs: never counted as a day's (week's, month's) backup, never deleted here.
    pub skipped_partial: Vec<String>,
    /// Jobs whose manifest is damaged, never touched.
    pub skipped_damaged: Vec<String>,
    /// Files of deleted jobs kept because jobs that stay share them (unchanged content stored
    /// once); their folders are removed by a later prune, once no job uses them.
    pub kept_shared: Vec<String>,
    /// Files the jobs staying refer to: never deleted.
    #[serde(skip)]
    pub(crate) in_use: BTreeSet<String>,
    /// Folders of jobs pruned earlier that still held shared files.
    #[serde(skip)]
    pub(crate) pruned_folders: Vec<String>,
}

pub(crate) fn prune(
    inner: &Inner,
    policy: &Retention,
    dry_run: bool,
) -> Result<PruneReport, VaultError> {
    let (mut jobs, pruned) = list_all(inner, &JobFilter::default())?;
    let all = jobs.clone();
    let mut report = PruneReport {
        dry_run,
        ..Default::default()
    };
    let paths = |c: JobCondition| -> Vec<String> {
        jobs.iter()
            .filter(|j| j.status == c)
            .map(|j| j.path.clone())
            .collect()
    };
    report.skipped_unfinished = paths(JobCondition::Unfinished);
    report.skipped_partial = paths(JobCondition::Partial);
    report.skipped_damaged = paths(JobCondition::Damaged);
    jobs.retain(|j| j.status == JobCondition::Complete);
    // Newest first.
    jobs.sort_by(|a, b| (b.date, &b.finished_at, &b.path).cmp(&(a.date, &a.finished_at, &a.path)));
    let mut reasons: Vec<Vec<String>> = vec![vec![]; jobs.len()];
    type Bucket = fn(NaiveDate) -> (i32, u32);
    let rules: [(&str, u32, Bucket); 3] = [
        ("daily", policy.daily, |d| (d.year(), d.ordinal())),
        ("weekly", policy.weekly, |d| {
            (d.iso_week().year(), d.iso_week().week())
        }),
        ("monthly", policy.monthly, |d| (d.year(), d.month())),
    ];
    for (rule, n, bucket) in rules {
        let mut seen = BTreeSet::new();
        for (i, j) in jobs.iter().enumerate() {
            if seen.len() as u32 >= n {
                break;
            }
            if seen.insert(bucket(j.date)) {
                reasons[i].push(format!("{rule} {}", j.date));
            }
        }
    }
    // The newest complete job is never deleted, whatever the policy.
    if let Some(r) = reasons.first_mut()
        && r.is_empty()
    {
        r.push("the last complete job".into());
    }
    for (j, why) in jobs.iter().zip(reasons) {
        if why.is_empty() {
            report.deleted.push(j.path.clone());
        } else {
            report.kept.push((j.path.clone(), why));
        }
    }
    if report.deleted.is_empty() && pruned.is_empty() {
        return Ok(report);
    }
    // Files that the jobs staying refer to (shared content) are never deleted. References go
    // to jobs of the same day or earlier, so only jobs from the oldest deleted day on can refer.
    let deleting: BTreeSet<&String> = report.deleted.iter().collect();
    let oldest = all
        .iter()
        .filter(|j| deleting.contains(&j.path))
        .map(|j| j.date)
        .chain(pruned.iter().map(|p| p.1))
        .min()
        .unwrap_or(NaiveDate::MIN);
    let mut in_use = BTreeSet::new();
    for j in all
        .iter()
        .filter(|j| j.date >= oldest && !deleting.contains(&j.path))
    {
        in_use.extend(super::shared::references_of(inner, &j.path)?);
    }
    report.in_use = in_use;
    report.pruned_folders = pruned.into_iter().map(|p| p.0).collect();
    for p in report.deleted.iter().chain(&report.pruned_folders) {
        let kept = super::shared::delete_job(inner, p, &report.in_use, true)?;
        report.kept_shared.extend(kept);
    }
    if !dry_run {
        for p in &report.deleted {
            delete_pruned(inner, &report, p)?;
        }
        sweep_pruned(inner, &report)?;
    }
    Ok(report)
}

/// Deletes one job a prune plan chose, keeping the files jobs that stay still share.
pub(crate) fn delete_pruned(
    inner: &Inner,
    plan: &PruneReport,
    job: &str,
) -> Result<Vec<String>, VaultError> {
    if !plan.deleted.iter().any(|d| d == job) {
        return Err(VaultError::BadName {
            what: "job to prune",
            name: job.to_string(),
            problem: "the prune plan does not delete it",
        });
    }
    let kept = super::shared::delete_job(inner, job, &plan.in_use, false)?;
    tracing::info!(job = %job, kept_shared = kept.len(), "pruned");
    Ok(kept)
}

/// Removes the folders of jobs pruned earlier whose files no job shares any more.
pub(crate) fn sweep_pruned(inner: &Inner, plan: &PruneReport) -> Result<(), VaultError> {
    for p in &plan.pruned_folders {
        if super::shared::delete_job(inner, p, &plan.in_use, false)?.is_empty() {
            tracing::info!(folder = %p, "removed the folder of a pruned job: no job shares its files any more");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn manifest_json(format: u32, extra_entry: &str, extra_top: &str) -> String {
        format!(
            r#"{{"format":{format},"job":"n","date":"2026-11-26","path":"OIC_Backups/2026/11/26/n",
"ferry_version":"0.1.0","recipe":"r","run_by":"me","sources":["dev"],
"encryption":{{"method":"none","recipients":[]}},"created_at":"t","finished_at":"t"{extra_top},
"entries":[{{"kind":"integration","code":"A","version":"01.00.0000","source":"dev",
"source_status":null,"size":1,"sha256":"{SHA}","stored_size":1,"stored_sha256":"{SHA}",
"encrypted":false,"exported_at":"t","path":"Integrations/A_01.00.0000.iar"{extra_entry}}}]}}"#
        )
    }

    #[test]
    fn manifests_are_written_one_entry_a_line_and_read_back() {
        let listed = r#","source_updated":"2026-11-29T10:00:00.000+0000","shared":{"via":"reference","file":"OIC_Backups/2026/11/25/n/Integrations/A_01.00.0000.iar","matched":"listing"}"#;
        let m = Manifest::parse(
            manifest_json(
                3,
                listed,
                r#","source_instances":{"dev":"https://oic.example.com"}"#,
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            m.entries[0].shared.as_ref().unwrap().matched,
            Matched::Listing
        );
        let mut two = m.clone();
        two.entries.push(m.entries[0].clone());
        let json = String::from_utf8(two.to_json().unwrap()).unwrap();
        assert_eq!(Manifest::parse(json.as_bytes()).unwrap(), two);
        let lines: Vec<&str> = json.lines().collect();
        assert!(lines.contains(&"  \"format\": 3,"), "{json}");
        // Format 4 names each earlier job folder once; entries refer to it by number, with the
        // file's path only when it is not their own.
        let mut four = two.clone();
        four.format = FORMAT;
        four.entries[1].path = "Integrations/B_01.00.0000.iar".into();
        four.entries.push(m.entries[0].clone());
        four.entries[2].shared = Some(SharedBytes::new(
            ShareVia::Hardlink,
            "OIC_Backups/2026/11/24/m/Integrations/A_01.00.0000.iar".into(),
            Matched::Content,
        ));
        let json = String::from_utf8(four.to_json().unwrap()).unwrap();
        assert_eq!(Manifest::parse(json.as_bytes()).unwrap(), four, "{json}");
        assert!(
            json.contains(
                r#""shared_jobs": [
    "OIC_Backups/2026/11/25/n",
    "OIC_Backups/2026/11/24/m"
  ]"#
            ),
            "{json}"
        );
        assert_eq!(
            json.matches("OIC_Backups/2026/11/25/n").count(),
            1,
            "{json}"
        );
        assert!(
            json.contains(r#""shared":{"via":"reference","matched":"listing","job":0}}"#),
            "{json}"
        );
        assert!(
            json.contains(r#""shared":{"via":"reference","matched":"listing","job":0,"path":"Integrations/A_01.00.0000.iar"}}"#),
            "{json}"
        );
        assert!(
            json.contains(r#""shared":{"via":"hardlink","job":1}}"#),
            "{json}"
        );
        // Refused: a number out of the table, the compact form in older formats, both forms.
        for (from, to, why) in [
            (r#""job":1}"#, r#""job":7}"#, "shared job 7 is not in"),
            (r#""format": 4"#, r#""format": 3"#, "cannot be in format 3"),
            (
                r#""job":1}"#,
                r#""job":1,"file":"OIC_Backups/2026/11/24/m/x/y"}"#,
                "both",
            ),
        ] {
            let bad = json.replacen(from, to, 1);
            let e = Manifest::parse(bad.as_bytes()).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with("    {\"kind\""))
                .count(),
            2,
            "{json}"
        );
        // Content matches are the default and not written.
        let mut c = m.clone();
        c.entries[0].shared.as_mut().unwrap().matched = Matched::Content;
        let json = String::from_utf8(c.to_json().unwrap()).unwrap();
        assert!(!json.contains("matched"), "{json}");
        let empty = Manifest {
            entries: vec![],
            ..m.clone()
        };
        let json = empty.to_json().unwrap();
        assert_eq!(Manifest::parse(&json).unwrap(), empty);
    }

    /// Entries journaled together (one batch file, shared files in the compact form) come back
    /// on resume, and prune sees the files they refer to while the job is unfinished.
    #[test]
    fn journal_batches_resume_and_protect_what_they_refer_to() {
        use super::super::{Decryption, Encryption, FileStore, Store, Vault};
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FileStore::new(dir.path()).unwrap());
        let v = Vault::with_store(store.clone(), Encryption::None, Decryption::None);
        let day = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let earlier = "OIC_Backups/2026/11/29/n1";
        let m = Manifest::parse(manifest_json(3, "", "").as_bytes()).unwrap();
        let mut entries = vec![];
        for (i, code) in ["A", "B", "C"].into_iter().enumerate() {
            let mut e = m.entries[0].clone();
            e.code = code.into();
            e.path = format!("Schedules/{code}_01.00.0000.json");
            e.stored_size = 10 + i as u64;
            // C's bytes live under another name in the earlier job.
            let at = if code == "C" {
                "Schedules/X.json"
            } else {
                e.path.as_str()
            };
            let file = format!("{earlier}/{at}");
            store
                .create_dir_all(&format!("{earlier}/Schedules"))
                .unwrap();
            store.write_small(&file, &vec![b'x'; 10 + i]).unwrap();
            e.shared = Some(SharedBytes::new(
                ShareVia::Reference,
                file,
                Matched::Content,
            ));
            entries.push(e);
        }
        let w = v.create_job("n2", day, JobMeta::default()).unwrap();
        w.write_journal(entries.iter()).unwrap();
        let jdir = format!("{}/{JOURNAL}", w.path());
        let files = store.list(&jdir).unwrap();
        assert_eq!(files.len(), 1, "one batch: {files:?}");
        let batch = String::from_utf8(
            store
                .read_small(&format!("{jdir}/{}", files[0].name))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(batch.matches(earlier).count(), 1, "{batch}");
        let path = w.path().to_string();
        let refs = super::super::shared::references_of(&v.inner, &path).unwrap();
        assert_eq!(
            refs.into_iter().collect::<Vec<_>>(),
            entries
                .iter()
                .map(|e| e.shared.as_ref().unwrap().file.clone())
                .collect::<Vec<_>>()
        );
        drop(w);
        let resume = JobMeta {
            resume: true,
            ..Default::default()
        };
        let w = v.create_job("n2", day, resume).unwrap();
        assert_eq!(w.entries(), entries);
        let m = w.finish().unwrap();
        assert_eq!(m.entries, entries);
        assert_eq!(v.open_job(&path).unwrap().manifest().entries, entries);
    }

    #[test]
    fn format_1_manifests_still_read() {
        let m = Manifest::parse(manifest_json(1, "", "").as_bytes()).unwrap();
        assert_eq!(m.format, 1);
        assert_eq!(m.entries[0].shared, None);
        assert_eq!(
            m.entries[0].stored_at(&m.path),
            "OIC_Backups/2026/11/26/n/Integrations/A_01.00.0000.iar"
        );
    }

    #[test]
    fn shared_entries_say_where_their_bytes_live() {
        let r = r#","shared":{"via":"reference","file":"OIC_Backups/2026/11/25/n/Integrations/A_01.00.0000.iar"}"#;
        let m = Manifest::parse(manifest_json(2, r, "").as_bytes()).unwrap();
        assert_eq!(
            m.entries[0].stored_at(&m.path),
            "OIC_Backups/2026/11/25/n/Integrations/A_01.00.0000.iar"
        );
        let h = r#","shared":{"via":"hardlink","file":"OIC_Backups/2026/11/25/n/Integrations/A_01.00.0000.iar"}"#;
        let m = Manifest::parse(manifest_json(2, h, "").as_bytes()).unwrap();
        assert_eq!(
            m.entries[0].stored_at(&m.path),
            "OIC_Backups/2026/11/26/n/Integrations/A_01.00.0000.iar",
            "a hard link is the job's own file"
        );
        // Refused: a reference out of the vault's jobs, one in a format-1 manifest, unknown
        // keys anywhere, a format from the future.
        let out = r#","shared":{"via":"reference","file":"OIC_Backups/../../etc/passwd"}"#;
        for (json, why) in [
            (manifest_json(2, out, ""), "not a file of a job"),
            (manifest_json(1, r, ""), "format 1 cannot"),
            (
                manifest_json(2, r#","colour":"red""#, ""),
                "unknown field `colour`",
            ),
            (
                manifest_json(2, "", r#","colour":"red""#),
                "unknown field `colour`",
            ),
            (
                manifest_json(2, r#","shared":{"via":"reference","file":"x","why":1}"#, ""),
                "unknown field `why`",
            ),
            (manifest_json(5, "", ""), "format 5 is not known"),
        ] {
            let e = Manifest::parse(json.as_bytes()).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }
}
