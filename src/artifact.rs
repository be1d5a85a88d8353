//! Artifacts: archives on the local disk (`.iar`, `.car`, lookups, libraries), with the facts that
//! travel with them (kind, code, version, size, sha256, source instance).
//!
//! An [`Artifact`] is what an export produces, what the vault stores and fetches, and what an
//! import consumes. Its file is a temporary file owned by the run (removed when the last clone is
//! dropped) or a file the user pointed at.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::shared::Shared;

/// What an archive contains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    /// An integration archive (`.iar`).
    Integration,
    /// An OIC 3 project archive (`.car`).
    Project,
    /// A lookup export (CSV).
    Lookup,
    /// A JavaScript library archive (`.jar`).
    Library,
    /// A package archive (`.par`).
    Package,
    /// A connection (its configuration; never an archive).
    Connection,
    /// A backup job in a vault (for retention and restore steps).
    Job,
    /// A role grant or project access change (`user:jane@example.com|ServiceDeveloper`).
    Grant,
    /// A notification (`mail:ops@example.com`, `webhook:...`).
    Message,
    /// The schedule of a scheduled integration (definition + state), saved beside its archive as
    /// `Schedules/CODE_VERSION.json` (see `ops::schedules`).
    Schedule,
}

impl ArtifactKind {
    /// The lower-case name used in reports and scripts.
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::Integration => "integration",
            ArtifactKind::Project => "project",
            ArtifactKind::Lookup => "lookup",
            ArtifactKind::Library => "library",
            ArtifactKind::Package => "package",
            ArtifactKind::Connection => "connection",
            ArtifactKind::Job => "job",
            ArtifactKind::Grant => "grant",
            ArtifactKind::Message => "message",
            ArtifactKind::Schedule => "schedule",
        }
    }
    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ArtifactKind::Integration => "iar",
            ArtifactKind::Project => "car",
            ArtifactKind::Lookup => "csv",
            ArtifactKind::Library => "jar",
            ArtifactKind::Package => "par",
            ArtifactKind::Connection | ArtifactKind::Schedule => "json",
            ArtifactKind::Job | ArtifactKind::Grant | ArtifactKind::Message => "",
        }
    }
    /// The backup folder of this kind inside a job (`Integrations`, `Projects`, ...).
    pub fn folder(self) -> &'static str {
        match self {
            ArtifactKind::Integration => "Integrations",
            ArtifactKind::Project => "Projects",
            ArtifactKind::Lookup => "Lookups",
            ArtifactKind::Library => "Libraries",
            ArtifactKind::Package => "Packages",
            ArtifactKind::Connection => "Connections",
            ArtifactKind::Schedule => "Schedules",
            ArtifactKind::Job | ArtifactKind::Grant | ArtifactKind::Message => "",
        }
    }
    /// Parses the lower-case name.
    pub fn parse(s: &str) -> Option<ArtifactKind> {
        Some(match s.to_ascii_lowercase().as_str() {
            "integration" | "iar" => ArtifactKind::Integration,
            "project" | "car" => ArtifactKind::Project,
            "lookup" | "csv" => ArtifactKind::Lookup,
            "library" | "jar" => ArtifactKind::Library,
            "package" | "par" => ArtifactKind::Package,
            "connection" => ArtifactKind::Connection,
            "job" => ArtifactKind::Job,
            "grant" => ArtifactKind::Grant,
            "message" => ArtifactKind::Message,
            "schedule" => ArtifactKind::Schedule,
            _ => return None,
        })
    }
}

impl fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The identity of an artifact: kind, code and version (empty for kinds without versions).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub struct ArtifactKey {
    pub kind: ArtifactKind,
    pub code: String,
    pub version: String,
}

impl ArtifactKey {
    pub fn new(kind: ArtifactKind, code: impl Into<String>, version: impl Into<String>) -> Self {
        ArtifactKey {
            kind,
            code: code.into(),
            version: version.into(),
        }
    }
    /// `CODE|VERSION`, or `CODE` when there is no version.
    pub fn id(&self) -> String {
        if self.version.is_empty() {
            self.code.clone()
        } else {
            format!("{}|{}", self.code, self.version)
        }
    }
}

impl fmt::Display for ArtifactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.id())
    }
}

/// Keeps a file alive while any clone of an [`Artifact`] refers to it; removes temporary files
/// when the last one goes.
#[derive(Debug)]
enum FileHold {
    Temp(tempfile::TempPath),
    Kept(PathBuf),
    /// A dry run's stand-in: the archive that an export would have produced.
    None,
}

impl FileHold {
    fn path(&self) -> &Path {
        match self {
            FileHold::Temp(t) => t,
            FileHold::Kept(p) => p,
            FileHold::None => Path::new(""),
        }
    }
}

/// A local archive with its identity and checksum: a [`Shared`] handle on its [`ArtifactFields`]
/// (a write copies them first when another clone shares them). A clone costs a reference count,
/// not a copy of its strings: scripts pass, filter and return arrays of artifacts by value, and an
/// export of 10,000 integrations holds 10,000 of them.
pub type Artifact = Shared<ArtifactFields>;

/// The facts of an [`Artifact`].
#[derive(Clone, Debug)]
pub struct ArtifactFields {
    pub key: ArtifactKey,
    /// Size in bytes of the plaintext archive.
    pub size: u64,
    /// Lower-case hex sha256 of the plaintext archive.
    pub sha256: String,
    /// The instance it was exported from (profile name), or where it came from (`vault:JOB`).
    pub source: String,
    /// The status the artifact had on its source (for integrations: `ACTIVATED`, `CONFIGURED`...).
    pub source_status: Option<String>,
    /// RFC 3339 time of the export.
    pub exported_at: String,
    /// What the source's list said of it just before the export (integrations): a later
    /// backup compares it to decide that the integration is unchanged without exporting it.
    pub listed: Option<Listed>,
    file: Arc<FileHold>,
}

/// The file of an artifact, not kept alive by this handle ([`Artifact::file_handle`]): a weak
/// reference to the artifact's fields (its file, size and sha256), 8 bytes, as long as a clone
/// of the artifact holds them.
#[derive(Clone, Debug)]
pub struct FileHandle {
    fields: Weak<ArtifactFields>,
}

/// The conventional file name of an artifact: `CODE_VERSION.iar`, `CODE.car`, ...
pub fn file_name_of(key: &ArtifactKey) -> String {
    if key.version.is_empty() {
        format!("{}.{}", key.code, key.kind.extension())
    } else {
        format!("{}_{}.{}", key.code, key.version, key.kind.extension())
    }
}

/// What an instance's list said of an artifact when it was exported: its `lastUpdated`, and
/// which instance answered (its API URL, with the OIC 3 `integrationInstance`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// `lastUpdated` as listed.
    pub updated: String,
    /// The instance's identity (`https://host?integrationInstance=name`).
    pub instance: String,
}

impl Artifact {
    /// An artifact backed by a temporary file that is deleted when the last clone is dropped.
    pub fn from_temp(
        key: ArtifactKey,
        temp: tempfile::TempPath,
        size: u64,
        sha256: String,
        source: impl Into<String>,
    ) -> Self {
        Artifact::exported(key, FileHold::Temp(temp), size, sha256, source.into(), None)
    }

    /// An artifact backed by a file that is kept (a user's file, or a file in a file vault).
    pub fn from_path(
        key: ArtifactKey,
        path: PathBuf,
        size: u64,
        sha256: String,
        source: impl Into<String>,
    ) -> Self {
        Artifact::exported(key, FileHold::Kept(path), size, sha256, source.into(), None)
    }

    /// A stand-in for the archive an effect would have produced in a dry run: no file, no checksum.
    pub fn planned(
        key: ArtifactKey,
        source: impl Into<String>,
        source_status: Option<String>,
    ) -> Self {
        Artifact::exported(
            key,
            FileHold::None,
            0,
            String::new(),
            source.into(),
            source_status,
        )
    }

    /// An artifact of `file`, exported now.
    fn exported(
        key: ArtifactKey,
        file: FileHold,
        size: u64,
        sha256: String,
        source: String,
        source_status: Option<String>,
    ) -> Self {
        ArtifactFields {
            key,
            size,
            sha256,
            source,
            source_status,
            exported_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            listed: None,
            file: Arc::new(file),
        }
        .into()
    }

    /// A handle on this artifact's file that does not keep it alive (see [`Artifact::backed_by`]).
    pub fn file_handle(&self) -> FileHandle {
        FileHandle {
            fields: self.downgrade(),
        }
    }

    /// This artifact backed by the file of `h` instead of its own, when the artifact of `h` (a
    /// clone of it) still holds its file, of this artifact's size and sha256: the same bytes, by checksum
    /// (an import checks the file's size and sha256 again before it sends it). `None` otherwise.
    pub fn backed_by(mut self, h: &FileHandle) -> Option<Artifact> {
        let held = h.fields.upgrade()?;
        if held.size != self.size || held.sha256 != self.sha256 || self.sha256.is_empty() {
            return None;
        }
        if matches!(*held.file, FileHold::None) {
            return None;
        }
        self.file = held.file.clone();
        Some(self)
    }

    /// True for a dry run's stand-in.
    pub fn is_planned(&self) -> bool {
        matches!(*self.file, FileHold::None)
    }

    /// The file holding the archive.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The conventional file name: `CODE_VERSION.iar`, `CODE.car`, ...
    pub fn file_name(&self) -> String {
        file_name_of(&self.key)
    }

    /// Re-reads the file and checks its size and sha256 against what the artifact says.
    pub fn verify(&self) -> Result<(), IntegrityError> {
        let (size, sha) = hash_file(self.path()).map_err(|e| IntegrityError::Unreadable {
            path: self.path().display().to_string(),
            reason: e.to_string(),
        })?;
        if size != self.size || sha != self.sha256 {
            return Err(IntegrityError::Mismatch {
                artifact: self.key.id(),
                expected: self.sha256.clone(),
                actual: sha,
                expected_size: self.size,
                actual_size: size,
            });
        }
        Ok(())
    }
}

/// An archive does not match its recorded checksum.
#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    #[error(
        "{artifact}: checksum mismatch (expected sha256 {expected} and {expected_size} bytes, found {actual} and {actual_size} bytes)"
    )]
    Mismatch {
        artifact: String,
        expected: String,
        actual: String,
        expected_size: u64,
        actual_size: u64,
    },
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: String, reason: String },
}

/// Streams a file through sha256; returns its size and lower-case hex digest.
pub fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = std::fs::File::open(path)?;
    hash_reader(&mut f)
}

/// Streams a reader through sha256; returns the byte count and lower-case hex digest.
pub fn hash_reader(r: &mut dyn Read) -> std::io::Result<(u64, String)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let k = r.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, hex::encode(h.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn verify_catches_a_flipped_byte() {
        let mut t = tempfile::NamedTempFile::new().unwrap();
        t.write_all(b"hello archive").unwrap();
        let (size, sha) = hash_file(t.path()).unwrap();
        let a = Artifact::from_temp(
            ArtifactKey::new(ArtifactKind::Integration, "A", "01.00.0000"),
            t.into_temp_path(),
            size,
            sha,
            "dev",
        );
        a.verify().unwrap();
        assert_eq!(a.file_name(), "A_01.00.0000.iar");
        std::fs::write(a.path(), b"hello archivE").unwrap();
        assert!(matches!(a.verify(), Err(IntegrityError::Mismatch { .. })));
    }

    #[test]
    fn clones_share_their_fields_until_one_is_changed() {
        let mut t = tempfile::NamedTempFile::new().unwrap();
        t.write_all(b"shared").unwrap();
        let (size, sha) = hash_file(t.path()).unwrap();
        let key = ArtifactKey::new(ArtifactKind::Integration, "A", "01.00.0000");
        let a = Artifact::from_temp(key.clone(), t.into_temp_path(), size, sha.clone(), "dev");
        let mut b = a.clone();
        assert!(Shared::ptr_eq(&a, &b));
        // a change is the changed clone's alone (values, as scripts see them)
        b.source_status = Some("ACTIVATED".into());
        assert!(!Shared::ptr_eq(&a, &b));
        assert_eq!(a.source_status, None);
        assert_eq!(b.path(), a.path());
        // a handle does not keep the file: the same bytes while a clone holds them
        let h = a.file_handle();
        let path = a.path().to_path_buf();
        let stand_in = || {
            let mut p = Artifact::planned(key.clone(), "vault:j", None);
            p.size = size;
            p.sha256 = sha.clone();
            p
        };
        assert_eq!(stand_in().backed_by(&h).unwrap().path(), path);
        drop(b);
        drop(a);
        assert!(stand_in().backed_by(&h).is_none());
        assert!(!path.exists());
    }
}
