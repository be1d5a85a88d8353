//! Backup vaults: an encrypted, verified copy of every artifact a migration moves.
//!
//! A vault is a folder tree on a [`Store`] (`file:///abs/path` or `sftp://user@host:port/path`):
//!
//! ```text
//! OIC_Backups/YYYY/MM/DD/<job>/Integrations/CODE_VERSION.iar[.age]
//!                             /Projects/CODE.car[.age]  /Lookups/  /Libraries/  /Packages/
//!                             /manifest.json            (written last: the job is finished,
//!                                                        `complete`, or `partial` with what is missing)
//!                             /.lock                    (while a run writes the job)
//! ```
//!
//! Settings of a `[vaults.NAME]` profile (relative paths resolve against the config file's folder):
//!
//! | key | meaning |
//! |---|---|
//! | `url` | `file:///abs/path`, `sftp://user@host:port/abs/path` (`/~/rel` for a path relative to the login folder), or `s3://bucket/prefix` |
//! | `identity_file` | SFTP: private key file (OpenSSH or PEM; ed25519, RSA, ECDSA); default `~/.ssh/id_*` |
//! | `passphrase` | SFTP: passphrase of the key, a secret ref (`env:VAR`, `file:PATH`) |
//! | `password` | SFTP: password authentication, a secret ref |
//! | `known_hosts` | SFTP: host keys file, default `~/.ssh/known_hosts` |
//! | `accept_unknown_host_keys` | SFTP: accept a host not in known_hosts (logged); a changed key is always refused. Default false |
//! | `timeout_secs` | SFTP: connect and I/O timeout, default 30; S3: per request, default 120 |
//! | `endpoint` | S3: service URL (OCI: `https://NAMESPACE.compat.objectstorage.REGION.oraclecloud.com`; none for AWS) |
//! | `region` | S3: signing region, default `us-east-1` |
//! | `path_style` | S3: `ENDPOINT/BUCKET/KEY` requests; default true with an `endpoint` |
//! | `access_key_id`, `secret_access_key`, `session_token` | S3: credentials, secret refs (none: the AWS environment/instance role) |
//! | `part_size_mb` | S3: multipart part size, default 8 (minimum 5) |
//! | `recipients` | age X25519 public keys (`["age1..."]`): files are encrypted to them (`.age`) |
//! | `passphrase_secret` | or: an age passphrase (scrypt), a secret ref |
//! | `identity` | age identity file (`file:PATH`, or `env:VAR` holding the key), needed only to restore |
//!
//! Unknown keys are refused (a typo in `recipients` must not silently disable encryption).
//!
//! An archive whose content is unchanged since one of the newest jobs is not written again: a
//! hard link on file://, a reference in the manifest on SFTP and S3 (see [`shared`]).
//!
//! Every file is written under a temporary name (`.NAME.tmp-XXXX`) and renamed when complete, so
//! no reader ever sees a partial file under a final name. While a job is written, each stored entry
//! is also recorded in `<job>/.journal/`; a run that dies leaves the job locked and unfinished,
//! and a later run with `JobMeta::resume` takes the lock over (unless its holder is still alive
//! on this machine), drops leftover temporary files, keeps the entries already stored and goes
//! on. `finish` writes `manifest.json`, then removes the journal and the lock. Everything here is blocking; call it
//! from `tokio::task::spawn_blocking` in async code.
//!
//! ```no_run
//! # fn demo(profile: &ferry::config::VaultProfile, a: &ferry::artifact::Artifact) -> Result<(), ferry::vault::VaultError> {
//! use ferry::vault::{JobMeta, Vault};
//! let vault = Vault::open(profile)?;
//! let job = vault.create_job("dev-to-test", chrono::Utc::now().date_naive(), JobMeta::default())?;
//! job.store(a)?;
//! let manifest = job.finish()?;
//! # Ok(()) }
//! ```

mod content;
mod counting;
mod crypto;
mod hashio;
mod job;
mod s3;
mod sftp;
mod sftp_pipe;
mod sha256pair;
pub mod shared;
mod spool;
mod store;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};

use crate::config::{SecretRef, VaultProfile};

pub use content::content_hash;
pub use counting::bytes_written;
pub use crypto::{Decryption, Encryption};
pub use job::{
    EntryCheck, EntryStatus, JobCondition, JobFilter, JobMeta, JobReader, JobStatus, JobSummary,
    JobWriter, Listing, Manifest, ManifestEntry, Matched, MissingEntry, PruneReport, Retention,
    ShareVia, SharedBytes, VerifyReport,
};
pub use s3::{S3Config, S3Store};
pub use sftp::{SFTP_SESSIONS, SftpConfig, SftpStore, fingerprint};
pub use shared::CarryProbe;
pub use store::{DirEntry, FileStore, Store, StoreWriter, WholeFile};

/// The top folder of every vault.
pub const ROOT_FOLDER: &str = "OIC_Backups";
/// The file that marks a job complete.
pub const MANIFEST: &str = "manifest.json";
/// The lock file held while a run writes a job.
pub const LOCK: &str = ".lock";

/// Everything that can go wrong with a vault. Messages name the vault, job, artifact or path
/// involved, and never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// A setting of the vault profile is missing or wrong.
    #[error("vault setting `{key}`: {problem}")]
    Config { key: String, problem: String },
    /// A store operation failed.
    #[error("{vault}: cannot {op} `{path}`: {reason}")]
    Store {
        op: &'static str,
        vault: String,
        path: String,
        reason: String,
        kind: io::ErrorKind,
    },
    /// The vault server could not be reached or the connection broke.
    #[error("{vault}: {reason}")]
    Connect { vault: String, reason: String },
    /// The server's host key is unknown or changed.
    #[error("{vault}: {message}")]
    HostKey { vault: String, message: String },
    /// Authentication was refused.
    #[error("{vault}: authentication as `{user}` failed: {reason}")]
    Auth {
        vault: String,
        user: String,
        reason: String,
    },
    /// Another run holds the job's lock.
    #[error(
        "job {job} is locked by another run ({holder}); if that run died, continue the job with resume"
    )]
    Locked { job: String, holder: String },
    /// The job exists and is complete.
    #[error("job {job} is already complete (its manifest.json exists); choose another job name")]
    Complete { job: String },
    /// The job finished with artifacts missing.
    #[error(
        "job {job} is partial (some selected artifacts are missing); continue it with resume, or choose another job name"
    )]
    Partial { job: String },
    /// The job was started by an earlier run and never finished.
    #[error("job {job} was left unfinished by an earlier run; continue it with resume")]
    Unfinished { job: String },
    /// The job has no manifest (not complete, or not a job).
    #[error("job {job}: no manifest.json (the job is incomplete or does not exist)")]
    NoManifest { job: String },
    /// The manifest cannot be read.
    #[error("job {job}: manifest.json is not valid: {reason}")]
    BadManifest { job: String, reason: String },
    /// A stored file does not match what the manifest (or the artifact) says.
    #[error("job {job}: {artifact} ({path}): {problem}")]
    Integrity {
        job: String,
        artifact: String,
        path: String,
        problem: String,
    },
    /// A file cannot be decrypted (wrong key, damaged file).
    #[error("job {job}: {artifact} ({path}): {reason}")]
    Decrypt {
        job: String,
        artifact: String,
        path: String,
        reason: String,
    },
    /// A name cannot be used as a file or folder name.
    #[error("{what} `{name}` cannot be used in a vault path: {problem}")]
    BadName {
        what: &'static str,
        name: String,
        problem: &'static str,
    },
    /// A local file (the artifact, a temporary file) cannot be read or written.
    #[error("local file {path}: {reason}")]
    Local { path: String, reason: String },
}

/// Vault failures worth another attempt: a dropped or refused connection, and store I/O that
/// failed for a transient reason.
impl crate::effect::Classify for VaultError {
    fn retryable(&self) -> bool {
        use std::io::ErrorKind as K;
        match self {
            VaultError::Connect { .. } => true,
            VaultError::Store { kind, .. } => matches!(
                kind,
                K::ConnectionReset
                    | K::ConnectionAborted
                    | K::BrokenPipe
                    | K::TimedOut
                    | K::UnexpectedEof
                    | K::Interrupted
                    | K::ConnectionRefused
                    | K::NotConnected
            ),
            _ => false,
        }
    }
    fn kind(&self) -> &'static str {
        "vault"
    }
}

crate::into_failure!(VaultError);

impl VaultError {
    pub(crate) fn store(
        op: &'static str,
        vault: impl Into<String>,
        path: &str,
        e: &io::Error,
    ) -> VaultError {
        VaultError::Store {
            op,
            vault: vault.into(),
            path: path.to_string(),
            reason: e.to_string(),
            kind: e.kind(),
        }
    }

    /// True when the connection to the store dropped during the operation.
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            VaultError::Store {
                kind: io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::TimedOut,
                ..
            }
        )
    }

    /// Adds why a retry failed to the message of the first error.
    pub(crate) fn with_retry_failure(self, retry: &VaultError) -> VaultError {
        match self {
            VaultError::Store {
                op,
                vault,
                path,
                reason,
                kind,
            } => VaultError::Store {
                op,
                vault: vault.clone(),
                path,
                reason: format!(
                    "{reason}; retried once: {}",
                    retry.to_string().replace(&format!("{vault}: "), "")
                ),
                kind,
            },
            other => other,
        }
    }

    /// True when the error says a file or folder does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            VaultError::Store {
                kind: io::ErrorKind::NotFound,
                ..
            }
        )
    }
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) encryption: Encryption,
    pub(crate) decryption: Decryption,
}

/// A backup vault: a store plus its encryption settings.
#[derive(Clone)]
pub struct Vault {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vault({}, {:?})", self.describe(), self.inner.encryption)
    }
}

/// How many jobs of one name and day [`Vault::create_first_job`] tries (`name`, `name-2`, ...).
const MAX_SAME_NAME_JOBS: u32 = 100;

impl Vault {
    /// Opens the vault a profile describes: parses the URL and settings, reads keys and secrets,
    /// and connects (for `sftp://`).
    pub fn open(profile: &VaultProfile) -> Result<Vault, VaultError> {
        let settings = Settings { profile };
        let encryption = settings.encryption()?;
        let decryption = settings.decryption()?;
        let url = url::Url::parse(&profile.url).map_err(|e| {
            settings.err("url", format!("not a valid URL (`{}`): {e}", profile.url))
        })?;
        let store: Arc<dyn Store> = match url.scheme() {
            "file" => {
                let path = url.to_file_path().map_err(|_| {
                    settings.err(
                        "url",
                        format!("`{}` is not a local absolute path", profile.url),
                    )
                })?;
                Arc::new(FileStore::new(path)?)
            }
            "sftp" => Arc::new(SftpStore::connect(settings.sftp(&url)?)?),
            "s3" => Arc::new(S3Store::connect(settings.s3(&url)?)?),
            other => {
                return Err(settings.err(
                    "url",
                    format!("unsupported scheme `{other}` (use file://, sftp:// or s3://)"),
                ));
            }
        };
        let store = Arc::new(counting::CountingStore(store));
        Ok(Vault::with_store(store, encryption, decryption))
    }

    /// Checks a profile without connecting: its URL and settings, and that every secret it
    /// references for writing (key passphrase, password, encryption passphrase, S3 keys) can be
    /// read. The restore identity is checked only for its form: a machine that only backs up
    /// needs no restore key. Run before a run's first effect.
    pub fn check(profile: &VaultProfile) -> Result<(), VaultError> {
        let settings = Settings { profile };
        settings.encryption()?;
        if let Some(raw) = profile.settings.identity.as_deref()
            && raw.starts_with("AGE-SECRET-KEY-")
        {
            return Err(settings.err(
                "identity",
                "write the age identity in a file and use `file:PATH` (or `env:VAR`), not inline"
                    .into(),
            ));
        }
        let url = url::Url::parse(&profile.url).map_err(|e| {
            settings.err("url", format!("not a valid URL (`{}`): {e}", profile.url))
        })?;
        match url.scheme() {
            "file" => {
                url.to_file_path().map_err(|_| {
                    settings.err(
                        "url",
                        format!("`{}` is not a local absolute path", profile.url),
                    )
                })?;
            }
            "sftp" => {
                settings.sftp(&url)?;
            }
            "s3" => {
                settings.s3(&url)?;
            }
            other => {
                return Err(settings.err(
                    "url",
                    format!("unsupported scheme `{other}` (use file://, sftp:// or s3://)"),
                ));
            }
        }
        Ok(())
    }

    /// A vault over any store (for tests and embedding).
    pub fn with_store(
        store: Arc<dyn Store>,
        encryption: Encryption,
        decryption: Decryption,
    ) -> Vault {
        Vault {
            inner: Arc::new(Inner {
                store,
                encryption,
                decryption,
            }),
        }
    }

    /// The vault's URL (no secrets) and encryption method.
    pub fn describe(&self) -> String {
        match self.inner.encryption {
            Encryption::None => self.inner.store.describe(),
            ref e => format!("{} ({})", self.inner.store.describe(), e.method()),
        }
    }

    /// The store under the vault.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The path of a job: `OIC_Backups/YYYY/MM/DD/<name>`.
    pub fn job_path(name: &str, date: NaiveDate) -> Result<String, VaultError> {
        check_name("job name", name)?;
        Ok(format!(
            "{ROOT_FOLDER}/{:04}/{:02}/{:02}/{name}",
            date.year(),
            date.month(),
            date.day()
        ))
    }

    /// Starts writing a job: creates its folder and takes its lock. Fails when another run holds
    /// the lock or the job is complete; a job left unfinished needs `meta.resume`.
    pub fn create_job(
        &self,
        name: &str,
        date: NaiveDate,
        meta: JobMeta,
    ) -> Result<JobWriter, VaultError> {
        let path = Vault::job_path(name, date)?;
        JobWriter::create(self.inner.clone(), path, name.to_string(), date, meta)
    }

    /// Starts a job of its own for this run: `name`, or, when that day already has a job `name`
    /// (complete, partial, left unfinished or held by another run), the first free one of
    /// `name-2`, `name-3`, ... So two runs given the same name (a `{time}` template within one
    /// second) never share nor overwrite a job folder: the lock, taken exclusively, decides
    /// which run a name goes to. `meta.resume` must be false (resuming continues a job by its
    /// name: [`Vault::create_job`]).
    pub fn create_new_job(
        &self,
        name: &str,
        date: NaiveDate,
        meta: JobMeta,
    ) -> Result<JobWriter, VaultError> {
        debug_assert!(!meta.resume);
        self.create_first_job(name, date, meta, |e| {
            matches!(
                e,
                VaultError::Complete { .. }
                    | VaultError::Partial { .. }
                    | VaultError::Unfinished { .. }
                    | VaultError::Locked { .. }
                    | VaultError::BadManifest { .. }
            )
        })
    }

    /// Starts the first job of `name`, `name-2`, `name-3`, ... (at most [`MAX_SAME_NAME_JOBS`])
    /// that [`Vault::create_job`] does not refuse with an error `taken` says means "that name is
    /// another job's": a new job skips every existing one ([`Vault::create_new_job`]); a resumed
    /// run's rollback job skips only finished ones and continues its own.
    pub fn create_first_job(
        &self,
        name: &str,
        date: NaiveDate,
        meta: JobMeta,
        taken: impl Fn(&VaultError) -> bool,
    ) -> Result<JobWriter, VaultError> {
        let mut n = 1;
        loop {
            let candidate = match n {
                1 => name.to_string(),
                n => format!("{name}-{n}"),
            };
            match self.create_job(&candidate, date, meta.clone()) {
                Err(e) if taken(&e) && n < MAX_SAME_NAME_JOBS => n += 1,
                r => return r,
            }
        }
    }

    /// What a nightly backup into the job at `job_path` (`OIC_Backups/YYYY/MM/DD/name`) would
    /// carry over from earlier complete jobs (read now; nothing is written): for a dry run of
    /// `job.backup`.
    pub fn carry_probe(&self, job_path: &str) -> Result<CarryProbe, VaultError> {
        let parts: Vec<&str> = job_path.split('/').collect();
        let date = match parts.as_slice() {
            [root, y, m, d, _] if *root == ROOT_FOLDER => {
                let n = |s: &str| s.parse::<u32>().ok();
                n(y).zip(n(m))
                    .zip(n(d))
                    .and_then(|((y, m), d)| NaiveDate::from_ymd_opt(y as i32, m, d))
            }
            _ => None,
        };
        let Some(date) = date else {
            return Err(VaultError::BadName {
                what: "job path",
                name: job_path.to_string(),
                problem: "not OIC_Backups/YYYY/MM/DD/<name>",
            });
        };
        let path = job_path.to_string();
        Ok(CarryProbe {
            inner: self.inner.clone(),
            index: shared::SharedIndex::build(&self.inner, date, &path),
        })
    }

    /// Opens a complete job for reading (`job_path` as returned by [`JobWriter::path`] or
    /// [`JobSummary::path`]).
    pub fn open_job(&self, job_path: &str) -> Result<JobReader, VaultError> {
        JobReader::open(self.inner.clone(), job_path.trim_matches('/').to_string())
    }

    /// Lists the jobs in the vault, oldest first.
    pub fn list_jobs(&self, filter: JobFilter) -> Result<Vec<JobSummary>, VaultError> {
        job::list_jobs(&self.inner, &filter)
    }

    /// Deletes complete jobs the retention policy does not keep (or, with `dry_run`, only says
    /// which). Unfinished, partial and damaged jobs are never deleted nor counted, and the newest
    /// complete job is always kept.
    pub fn prune(&self, policy: Retention, dry_run: bool) -> Result<PruneReport, VaultError> {
        job::prune(&self.inner, &policy, dry_run)
    }

    /// Deletes one job of a prune plan (from `prune(policy, true)`), keeping the files that jobs
    /// staying still share (see [`shared`]); returns those kept.
    pub fn delete_pruned(&self, plan: &PruneReport, job: &str) -> Result<Vec<String>, VaultError> {
        job::delete_pruned(&self.inner, plan, job)
    }

    /// After the deletions of a prune plan: removes the folders of jobs pruned earlier whose
    /// shared files no job uses any more.
    pub fn sweep_pruned(&self, plan: &PruneReport) -> Result<(), VaultError> {
        job::sweep_pruned(&self.inner, plan)
    }
}

/// Refuses names that would escape or confuse the folder layout.
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<(), VaultError> {
    let bad = |problem| {
        Err(VaultError::BadName {
            what,
            name: name.to_string(),
            problem,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 200 {
        return bad("it is longer than 200 characters");
    }
    if name.starts_with('.') {
        return bad("it starts with a dot");
    }
    if name.contains(['/', '\\']) {
        return bad("it contains a slash");
    }
    if name.chars().any(|c| c.is_control()) {
        return bad("it contains a control character");
    }
    Ok(())
}

struct Settings<'a> {
    profile: &'a VaultProfile,
}

impl Settings<'_> {
    fn err(&self, key: &str, problem: String) -> VaultError {
        VaultError::Config {
            key: format!("vaults.{}.{key}", self.profile.name),
            problem,
        }
    }

    fn path(&self, v: &Option<String>) -> Option<PathBuf> {
        v.as_deref().map(|s| self.resolve_path(s))
    }

    fn resolve_path(&self, s: &str) -> PathBuf {
        let p = if let Some(rest) = s.strip_prefix("~/") {
            dirs::home_dir()
                .map(|h| h.join(rest))
                .unwrap_or_else(|| PathBuf::from(s))
        } else {
            PathBuf::from(s)
        };
        if p.is_relative() {
            self.profile.base_dir.join(p)
        } else {
            p
        }
    }

    fn secret(
        &self,
        v: &Option<String>,
        key: &str,
    ) -> Result<Option<crate::config::Secret>, VaultError> {
        let Some(raw) = v else {
            return Ok(None);
        };
        let r = SecretRef::parse(raw, Some(&self.profile.base_dir))
            .map_err(|e| self.err(key, e.to_string()))?;
        let s = r
            .resolve()
            .map_err(|e| self.err(key, format!("{e} (from {})", r.describe())))?;
        Ok(Some(s))
    }

    fn sftp(&self, url: &url::Url) -> Result<SftpConfig, VaultError> {
        let mut c = sftp::config_from_url(url).map_err(|p| self.err("url", p))?;
        let s = &self.profile.settings;
        c.identity_file = self.path(&s.identity_file);
        c.key_passphrase = self.secret(&s.passphrase, "passphrase")?;
        c.password = self.secret(&s.password, "password")?;
        if let Some(k) = self.path(&s.known_hosts) {
            c.known_hosts = k;
        }
        c.accept_unknown_host_keys = s.accept_unknown_host_keys.unwrap_or(false);
        match s.timeout_secs {
            None => {}
            Some(t) if t > 0 => c.timeout = std::time::Duration::from_secs(t as u64),
            Some(t) => {
                let problem = format!("expected a positive number, found {t}");
                return Err(self.err("timeout_secs", problem));
            }
        }
        Ok(c)
    }

    fn s3(&self, url: &url::Url) -> Result<S3Config, VaultError> {
        let mut c = s3::config_from_url(url).map_err(|p| self.err("url", p))?;
        let s = &self.profile.settings;
        c.endpoint = s.endpoint.clone();
        if let Some(r) = &s.region {
            c.region = r.clone();
        }
        c.path_style = s.path_style.unwrap_or(c.endpoint.is_some());
        c.access_key_id = self.secret(&s.access_key_id, "access_key_id")?;
        c.secret_access_key = self.secret(&s.secret_access_key, "secret_access_key")?;
        c.session_token = self.secret(&s.session_token, "session_token")?;
        let positive = |key: &str, v: Option<i64>| match v {
            Some(t) if t <= 0 => {
                Err(self.err(key, format!("expected a positive number, found {t}")))
            }
            v => Ok(v.map(|t| t as u64)),
        };
        if let Some(t) = positive("timeout_secs", s.timeout_secs)? {
            c.timeout = std::time::Duration::from_secs(t);
        }
        if let Some(mb) = positive("part_size_mb", s.part_size_mb)? {
            c.part_size = (mb as usize).saturating_mul(1024 * 1024);
        }
        Ok(c)
    }

    fn encryption(&self) -> Result<Encryption, VaultError> {
        let s = &self.profile.settings;
        let recipients = s.recipients.clone();
        let pass = self.secret(&s.passphrase_secret, "passphrase_secret")?;
        match (recipients, pass) {
            (Some(_), Some(_)) => Err(self.err(
                "passphrase_secret",
                "set either `recipients` or `passphrase_secret`, not both".into(),
            )),
            (Some(keys), None) => {
                Encryption::recipients(&keys).map_err(|p| self.err("recipients", p))
            }
            (None, Some(p)) => {
                if p.is_empty() {
                    return Err(self.err("passphrase_secret", "the passphrase is empty".into()));
                }
                Ok(Encryption::Passphrase(p))
            }
            (None, None) => Ok(Encryption::None),
        }
    }

    fn decryption(&self) -> Result<Decryption, VaultError> {
        let s = &self.profile.settings;
        if let Some(raw) = s.identity.as_deref() {
            // `file:PATH` (an age identity file), `env:VAR` (the identity text), or a path.
            if let Some(p) = raw.strip_prefix("file:") {
                return Decryption::identity_file(&self.resolve_path(p))
                    .map_err(|e| self.err("identity", e));
            }
            if raw.starts_with("env:") {
                let id = self.secret(&s.identity, "identity")?.unwrap_or_default();
                return Decryption::identity_text(id.expose()).map_err(|e| self.err("identity", e));
            }
            if raw.starts_with("AGE-SECRET-KEY-") {
                return Err(self.err("identity", "write the age identity in a file and use `file:PATH` (or `env:VAR`), not inline".into()));
            }
            return Decryption::identity_file(&self.resolve_path(raw))
                .map_err(|e| self.err("identity", e));
        }
        if let Some(p) = self.secret(&s.passphrase_secret, "passphrase_secret")? {
            return Ok(Decryption::Passphrase(p));
        }
        Ok(Decryption::None)
    }
}

/// Resolves `~/` and relative paths the same way [`Vault::open`] does (for callers that show
/// paths to users).
pub fn resolve_setting_path(profile: &VaultProfile, s: &str) -> PathBuf {
    Settings { profile }.resolve_path(s)
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Vault>();
    is::<JobWriter>();
    is::<JobReader>();
    is::<FileStore>();
}
