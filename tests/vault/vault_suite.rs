//! The vault test suite, generic over a store factory, instantiated whole by [`instantiate!`] for
//! every store: `vault_file` (a `FileStore` in a temp dir), `vault_sftp` (an `SftpStore` against
//! the loopback sshd) and `vault_s3` (an `S3Store` against Garage).
#![allow(dead_code)]

use std::any::Any;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use ferry::artifact::{Artifact, ArtifactKey, ArtifactKind, hash_file};
use ferry::vault::{
    Decryption, DirEntry, Encryption, EntryStatus, JobFilter, JobMeta, Retention, Store,
    StoreWriter, Vault, VaultError,
};

/// A fresh, empty store, plus whatever keeps it alive (a temp dir).
pub struct Fx {
    pub store: Arc<dyn Store>,
    pub _guard: Box<dyn Any>,
}

/// Makes a fresh store for one test.
pub type Factory<'a> = &'a dyn Fn() -> Fx;

/// Instantiates the whole suite, one `#[test]` per case, in the calling module. `$make` is
/// evaluated at the start of each test and gives the store factory (a `Fn() -> Fx`); it may
/// `return` from the test (a service missing under `FERRY_ALLOW_SKIP=1`). `$via`: how the store
/// shares unchanged content between jobs (`ShareVia`).
macro_rules! instantiate {
    ($make:expr, $via:expr) => {
        $crate::vault_suite::instantiate!(@case $make, round_trip_plain, round_trip, Plain);
        $crate::vault_suite::instantiate!(@case $make, round_trip_x25519, round_trip, X25519);
        $crate::vault_suite::instantiate!(@case $make, round_trip_passphrase, round_trip, Passphrase);
        $crate::vault_suite::instantiate!(@case $make, verify_catches_damage_plain, verify_catches_damage, Plain);
        $crate::vault_suite::instantiate!(@case $make, verify_catches_damage_x25519, verify_catches_damage, X25519);
        $crate::vault_suite::instantiate!(@case $make, temp_then_rename_plain, temp_then_rename, Plain);
        $crate::vault_suite::instantiate!(@case $make, temp_then_rename_x25519, temp_then_rename, X25519);
        $crate::vault_suite::instantiate!(@case $make, locking_and_resume, locking_and_resume, X25519);
        $crate::vault_suite::instantiate!(@case $make, new_jobs_never_share_a_folder, new_jobs_never_share_a_folder, Plain);
        $crate::vault_suite::instantiate!(@case $make, refuses_changed_local_file, refuses_changed_local_file, Plain);
        $crate::vault_suite::instantiate!(@case $make, list_filters, list_filters);
        $crate::vault_suite::instantiate!(@case $make, prune_policy, prune_policy);
        $crate::vault_suite::instantiate!(@case $make, partial_jobs, partial_jobs);
        $crate::vault_suite::instantiate!(@case $make, damaged_manifest, damaged_manifest);
        $crate::vault_suite::instantiate!(@case $make, wrong_identity_x25519, wrong_identity, X25519);
        $crate::vault_suite::instantiate!(@case $make, wrong_identity_passphrase, wrong_identity, Passphrase);
        $crate::vault_suite::instantiate!(@shared $make, shared_content_plain, Plain, $via);
        $crate::vault_suite::instantiate!(@shared $make, shared_content_x25519, X25519, $via);
        $crate::vault_suite::instantiate!(@shared $make, shared_content_passphrase, Passphrase, $via);
        $crate::vault_suite::instantiate!(@listing $make, carried_by_listing_plain, Plain, $via);
        $crate::vault_suite::instantiate!(@listing $make, carried_by_listing_x25519, X25519, $via);
    };
    (@case $make:expr, $name:ident, $f:ident $(, $c:ident)?) => {
        #[test]
        fn $name() {
            let make = $make;
            $crate::vault_suite::$f(&make $(, $crate::vault_suite::Crypt::$c)?);
        }
    };
    (@shared $make:expr, $name:ident, $c:ident, $via:expr) => {
        #[test]
        fn $name() {
            let make = $make;
            $crate::vault_suite::shared_content(&make, $crate::vault_suite::Crypt::$c, $via);
        }
    };
    (@listing $make:expr, $name:ident, $c:ident, $via:expr) => {
        #[test]
        fn $name() {
            let make = $make;
            $crate::vault_suite::carried_by_listing(&make, $crate::vault_suite::Crypt::$c, $via);
        }
    };
}
pub(crate) use instantiate;

/// Encryption variants for the suite.
#[derive(Clone, Copy, Debug)]
pub enum Crypt {
    Plain,
    X25519,
    Passphrase,
}

/// A vault with the given encryption, plus an identity that can restore it.
pub fn vault(store: Arc<dyn Store>, c: Crypt) -> Vault {
    use age::secrecy::ExposeSecret;
    match c {
        Crypt::Plain => Vault::with_store(store, Encryption::None, Decryption::None),
        Crypt::X25519 => {
            let id = age::x25519::Identity::generate();
            let other = age::x25519::Identity::generate();
            let enc = Encryption::recipients(&[
                id.to_public().to_string(),
                other.to_public().to_string(),
            ])
            .unwrap();
            let dec = Decryption::identity_text(id.to_string().expose_secret()).unwrap();
            Vault::with_store(store, enc, dec)
        }
        Crypt::Passphrase => {
            let p = ferry::config::Secret::new("correct horse battery staple");
            Vault::with_store(
                store,
                Encryption::Passphrase(p.clone()),
                Decryption::Passphrase(p),
            )
        }
    }
}

/// An artifact backed by a temp file holding `data`.
/// An integration `code` at version 01.00.0000 holding `data`.
pub fn integration(code: &str, data: &[u8]) -> Artifact {
    artifact(ArtifactKind::Integration, code, "01.00.0000", data)
}

pub fn artifact(kind: ArtifactKind, code: &str, version: &str, data: &[u8]) -> Artifact {
    let mut t = tempfile::NamedTempFile::new().unwrap();
    t.write_all(data).unwrap();
    t.flush().unwrap();
    let (size, sha) = hash_file(t.path()).unwrap();
    let mut a = Artifact::from_temp(
        ArtifactKey::new(kind, code, version),
        t.into_temp_path(),
        size,
        sha,
        "dev",
    );
    a.source_status = Some("ACTIVATED".into());
    a
}

/// Pseudo-random bytes (deterministic per seed).
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn sha(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

fn day(d: &str) -> NaiveDate {
    NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap()
}

fn meta() -> JobMeta {
    JobMeta {
        recipe: "recipes/move.rhai".into(),
        run_by: "tester".into(),
        sources: vec!["dev".into()],
        ..Default::default()
    }
}

/// Store, finish, list, open, fetch; manifest checksums equal the stored files' checksums.
pub fn round_trip(f: Factory, c: Crypt) {
    let fx = f();
    let v = vault(fx.store.clone(), c);
    let big = bytes(3 * 1024 * 1024 + 17, 1);
    let arts = vec![
        integration("HELLO_WORLD", &big),
        artifact(ArtifactKind::Project, "PROJ", "", b"project archive"),
        artifact(ArtifactKind::Lookup, "COUNTRIES", "", b"a,b\n1,2\n"),
        artifact(ArtifactKind::Library, "LIB", "", b""),
    ];
    assert!(
        v.list_jobs(JobFilter::default()).unwrap().is_empty(),
        "a fresh vault has no jobs"
    );
    let e = v.open_job("OIC_Backups/2026/11/26/nothing").unwrap_err();
    assert!(matches!(e, VaultError::NoManifest { .. }), "{e}");
    let job = v
        .create_job("dev-to-test", day("2026-11-26"), meta())
        .unwrap();
    assert_eq!(job.path(), "OIC_Backups/2026/11/26/dev-to-test");
    // Store from several threads at once.
    std::thread::scope(|s| {
        for a in &arts {
            let job = &job;
            s.spawn(move || job.store(a).unwrap());
        }
    });
    // No manifest until finish.
    assert_eq!(
        fx.store
            .stat("OIC_Backups/2026/11/26/dev-to-test/manifest.json")
            .unwrap(),
        None
    );
    assert!(
        v.open_job("OIC_Backups/2026/11/26/dev-to-test")
            .unwrap_err()
            .to_string()
            .contains("no manifest.json")
    );
    let m = job.finish().unwrap();
    let suffix = match c {
        Crypt::Plain => "",
        _ => ".age",
    };
    let paths: Vec<&str> = m.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            format!("Integrations/HELLO_WORLD_01.00.0000.iar{suffix}"),
            format!("Libraries/LIB.jar{suffix}"),
            format!("Lookups/COUNTRIES.csv{suffix}"),
            format!("Projects/PROJ.car{suffix}"),
        ]
    );
    assert_eq!(m.recipe, "recipes/move.rhai");
    assert_eq!(m.run_by, "tester");
    match c {
        Crypt::Plain => assert_eq!(m.encryption.method, "none"),
        Crypt::X25519 => {
            assert_eq!(m.encryption.method, "age-x25519");
            assert_eq!(m.encryption.recipients.len(), 2);
            assert!(
                m.encryption
                    .recipients
                    .iter()
                    .all(|r| r.starts_with("age1"))
            );
        }
        Crypt::Passphrase => {
            assert_eq!(m.encryption.method, "age-scrypt");
            assert!(m.encryption.recipients.is_empty());
        }
    }
    // The lock and the journal are gone; no temp files anywhere in the job.
    let job_dir = "OIC_Backups/2026/11/26/dev-to-test";
    let top: Vec<String> = fx
        .store
        .list(job_dir)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(
        top,
        vec![
            "Integrations",
            "Libraries",
            "Lookups",
            "Projects",
            "manifest.json"
        ]
    );
    for e in &m.entries {
        let stored = fx
            .store
            .read_small(&format!("{job_dir}/{}", e.path))
            .unwrap();
        assert_eq!(stored.len() as u64, e.stored_size);
        assert_eq!(
            sha(&stored),
            e.stored_sha256,
            "manifest sha256 == stored file sha256 for {}",
            e.path
        );
        let a = arts.iter().find(|a| a.key.code == e.code).unwrap();
        assert_eq!(e.sha256, a.sha256);
        assert_eq!(e.size, a.size);
        assert_eq!(e.source, "dev");
        assert_eq!(e.source_status.as_deref(), Some("ACTIVATED"));
        assert_eq!(e.encrypted, !matches!(c, Crypt::Plain));
        if matches!(c, Crypt::Plain) {
            assert_eq!(e.stored_sha256, e.sha256);
        } else {
            assert_ne!(e.stored_sha256, e.sha256);
            assert!(stored.starts_with(b"age-encryption.org/v1\n"));
        }
    }
    // The manifest on the store is what finish returned.
    let on_disk: serde_json::Value = serde_json::from_slice(
        &fx.store
            .read_small(&format!("{job_dir}/manifest.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(on_disk["entries"].as_array().unwrap().len(), 4);
    assert_eq!(on_disk["job"], "dev-to-test");

    let jobs = v.list_jobs(JobFilter::default()).unwrap();
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].complete && !jobs[0].locked);
    assert_eq!(jobs[0].artifacts, 4);
    assert_eq!(jobs[0].total_size, arts.iter().map(|a| a.size).sum::<u64>());

    let r = v.open_job(&jobs[0].path).unwrap();
    assert_eq!(r.manifest(), &m);
    for e in &r.manifest().entries {
        let got = r.fetch(e).unwrap();
        let a = arts.iter().find(|a| a.key.code == e.code).unwrap();
        assert_eq!(
            std::fs::read(got.path()).unwrap(),
            std::fs::read(a.path()).unwrap()
        );
        assert_eq!(got.key, a.key);
        assert_eq!(got.sha256, a.sha256);
        assert_eq!(got.source, format!("vault:{job_dir}"));
        got.verify().unwrap();
    }
    let rep = r.verify().unwrap();
    assert!(rep.ok(), "{rep:?}");
    assert!(rep.entries.iter().all(|e| e.status == EntryStatus::Ok));
    assert_eq!(
        rep.bytes_read,
        m.entries.iter().map(|e| e.stored_size).sum::<u64>()
    );
}

/// Flipped byte, truncated file and missing file are reported by verify and refused by fetch.
pub fn verify_catches_damage(f: Factory, c: Crypt) {
    let fx = f();
    let v = vault(fx.store.clone(), c);
    let job = v.create_job("damage", day("2026-11-20"), meta()).unwrap();
    let a1 = integration("A", &bytes(200_000, 2));
    let a2 = integration("B", &bytes(100_000, 3));
    let a3 = integration("C", &bytes(1000, 4));
    let a4 = integration("D", &bytes(1000, 5));
    for a in [&a1, &a2, &a3, &a4] {
        job.store(a).unwrap();
    }
    let m = job.finish().unwrap();
    let dir = &m.path;
    let p = |i: usize| format!("{dir}/{}", m.entries[i].path);
    // Flip one byte in the middle of A.
    let mut d = fx.store.read_small(&p(0)).unwrap();
    let mid = d.len() / 2;
    d[mid] ^= 0x01;
    fx.store.write_small(&p(0), &d).unwrap();
    // Truncate B.
    let d = fx.store.read_small(&p(1)).unwrap();
    fx.store.write_small(&p(1), &d[..d.len() - 100]).unwrap();
    // Remove C.
    fx.store.remove(&p(2)).unwrap();

    let r = v.open_job(dir).unwrap();
    let rep = r.verify().unwrap();
    assert!(!rep.ok());
    let st: Vec<&EntryStatus> = rep.entries.iter().map(|e| &e.status).collect();
    assert!(matches!(st[0], EntryStatus::Mismatch { .. }), "{:?}", st[0]);
    assert!(matches!(st[1], EntryStatus::Mismatch { .. }), "{:?}", st[1]);
    assert_eq!(st[2], &EntryStatus::Missing);
    assert_eq!(st[3], &EntryStatus::Ok);
    assert_eq!(rep.failures().len(), 3);
    assert!(rep.extra.is_empty(), "{:?}", rep.extra);
    // A file the manifest does not know is reported.
    fx.store
        .write_small(&format!("{dir}/Integrations/intruder.iar"), b"x")
        .unwrap();
    assert_eq!(
        r.verify().unwrap().extra,
        vec!["Integrations/intruder.iar".to_string()]
    );

    for i in 0..2 {
        let e = r.fetch(&r.manifest().entries[i]).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, VaultError::Integrity { .. } | VaultError::Decrypt { .. }),
            "{msg}"
        );
        assert!(msg.contains(&r.manifest().entries[i].path), "{msg}");
        assert!(msg.contains("damage"), "names the job: {msg}");
    }
    let e = r.fetch(&r.manifest().entries[2]).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    r.fetch(&r.manifest().entries[3]).unwrap();
}

/// A store wrapper that records every operation and checks, while a file is being written,
/// that nothing exists under a final name yet.
/// A forwarding store that logs creates, renames and removes (a [`Tap`] with a [`Log`]).
pub type Recording = Tap<Log>;

/// The log of a [`Recording`] store.
#[derive(Default)]
pub struct Log(pub Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }
}

impl Observer for Log {
    fn create(
        &self,
        store: &Arc<dyn Store>,
        path: &str,
        w: Box<dyn StoreWriter>,
    ) -> Box<dyn StoreWriter> {
        self.push(format!("create {path}"));
        Box::new(RecWriter {
            inner: w,
            store: store.clone(),
            path: path.into(),
            log: self.0.clone(),
            checked: false,
        })
    }
    fn rename(&self, from: &str, to: &str) {
        self.push(format!("rename {from} -> {to}"));
    }
    fn remove(&self, path: &str) {
        self.push(format!("remove {path}"));
    }
    fn create_exclusive(&self, path: &str, _contents: &[u8]) {
        self.push(format!("create-exclusive {path}"));
    }
    fn links(&self) -> bool {
        false
    }
}

/// What a [`Tap`] store is told before it forwards a call; by default nothing.
pub trait Observer: Send + Sync {
    /// A file is created; returns the writer to hand out (by default `w`).
    fn create(
        &self,
        store: &Arc<dyn Store>,
        path: &str,
        w: Box<dyn StoreWriter>,
    ) -> Box<dyn StoreWriter> {
        let _ = (store, path);
        w
    }
    fn rename(&self, _from: &str, _to: &str) {}
    fn remove(&self, _path: &str) {}
    fn create_exclusive(&self, _path: &str, _contents: &[u8]) {}
    /// Whether hard links are passed through (else the store has none).
    fn links(&self) -> bool {
        true
    }
}

/// A store that forwards every call to `inner`, telling `seen` first.
pub struct Tap<O> {
    pub inner: Arc<dyn Store>,
    pub seen: O,
}

impl<O: Observer> Store for Tap<O> {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn create_dir_all(&self, path: &str) -> Result<(), VaultError> {
        self.inner.create_dir_all(path)
    }
    fn create(&self, path: &str) -> Result<Box<dyn StoreWriter>, VaultError> {
        let w = self.inner.create(path)?;
        Ok(self.seen.create(&self.inner, path, w))
    }
    fn rename(&self, from: &str, to: &str) -> Result<(), VaultError> {
        self.seen.rename(from, to);
        self.inner.rename(from, to)
    }
    fn open(&self, path: &str) -> Result<Box<dyn Read + Send>, VaultError> {
        self.inner.open(path)
    }
    fn list(&self, path: &str) -> Result<Vec<DirEntry>, VaultError> {
        self.inner.list(path)
    }
    fn stat(&self, path: &str) -> Result<Option<u64>, VaultError> {
        self.inner.stat(path)
    }
    fn remove(&self, path: &str) -> Result<(), VaultError> {
        self.seen.remove(path);
        self.inner.remove(path)
    }
    fn remove_dir(&self, path: &str) -> Result<(), VaultError> {
        self.inner.remove_dir(path)
    }
    fn create_exclusive(&self, path: &str, contents: &[u8]) -> Result<bool, VaultError> {
        self.seen.create_exclusive(path, contents);
        self.inner.create_exclusive(path, contents)
    }
    fn hard_link(&self, from: &str, to: &str) -> Result<bool, VaultError> {
        if self.seen.links() {
            self.inner.hard_link(from, to)
        } else {
            Ok(false)
        }
    }
    fn sync_dir(&self, path: &str) -> Result<(), VaultError> {
        self.inner.sync_dir(path)
    }
}

struct RecWriter {
    inner: Box<dyn StoreWriter>,
    store: Arc<dyn Store>,
    path: String,
    log: Arc<Mutex<Vec<String>>>,
    checked: bool,
}

impl Write for RecWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.checked {
            // Mid-transfer: the final name must not exist.
            let name = self.path.rsplit('/').next().unwrap();
            let final_name = name
                .trim_start_matches('.')
                .split(".tmp-")
                .next()
                .unwrap()
                .to_string();
            let dir = self.path.rsplit_once('/').unwrap().0;
            let exists = self
                .store
                .stat(&format!("{dir}/{final_name}"))
                .unwrap()
                .is_some();
            self.log
                .lock()
                .unwrap()
                .push(format!("mid-write {} final-exists={exists}", self.path));
            self.checked = true;
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl StoreWriter for RecWriter {
    fn finish(self: Box<Self>) -> std::io::Result<()> {
        self.inner.finish()
    }
}

/// Every file is created under a temporary name and renamed; the manifest is renamed last,
/// and the lock removed after it.
pub fn temp_then_rename(f: Factory, c: Crypt) {
    let fx = f();
    let log = Arc::new(Mutex::new(vec![]));
    let rec: Arc<dyn Store> = Arc::new(Recording {
        inner: fx.store.clone(),
        seen: Log(log.clone()),
    });
    let v = vault(rec, c);
    let job = v.create_job("atomic", day("2026-11-26"), meta()).unwrap();
    job.store(&integration("X", &bytes(600_000, 9))).unwrap();
    job.store(&artifact(ArtifactKind::Project, "P", "", b"car"))
        .unwrap();
    job.finish().unwrap();
    let log = log.lock().unwrap().clone();
    let creates: Vec<&String> = log.iter().filter(|l| l.starts_with("create ")).collect();
    assert!(creates.len() >= 3, "{log:#?}");
    for c in &creates {
        let name = c.rsplit('/').next().unwrap();
        assert!(
            name.starts_with('.') && name.contains(".tmp-"),
            "file created under a final name: {c}\n{log:#?}"
        );
    }
    assert!(
        log.iter()
            .filter(|l| l.starts_with("mid-write"))
            .all(|l| l.ends_with("final-exists=false")),
        "{log:#?}"
    );
    let renames: Vec<&String> = log.iter().filter(|l| l.starts_with("rename ")).collect();
    let ext = if matches!(c, Crypt::Plain) {
        ""
    } else {
        ".age"
    };
    assert!(
        renames
            .iter()
            .any(|r| r.ends_with(&format!("/Integrations/X_01.00.0000.iar{ext}"))),
        "{log:#?}"
    );
    assert!(
        renames
            .iter()
            .any(|r| r.ends_with(&format!("/Projects/P.car{ext}"))),
        "{log:#?}"
    );
    let manifest_at = log
        .iter()
        .position(|l| l.starts_with("rename ") && l.ends_with("/manifest.json"))
        .expect("manifest renamed");
    let last_artifact = log
        .iter()
        .rposition(|l| l.starts_with("rename ") && l.contains("/Projects/"))
        .unwrap();
    assert!(manifest_at > last_artifact, "{log:#?}");
    let lock_removed = log
        .iter()
        .position(|l| l.starts_with("remove ") && l.ends_with("/.lock"))
        .expect("lock removed");
    assert!(lock_removed > manifest_at, "{log:#?}");
    assert!(
        log[0].starts_with("create-exclusive ") && log[0].ends_with("/atomic/.lock"),
        "{log:#?}"
    );
}

/// A new job is its run's own: two runs given one name (a `{time}` template within one second)
/// get `name` and `name-2`, ..., whether the job of that name is being written, complete or left
/// unfinished; resume still continues a job by its name.
pub fn new_jobs_never_share_a_folder(f: Factory, c: Crypt) {
    let fx = f();
    let v = vault(fx.store.clone(), c);
    let d = day("2026-11-25");
    let first = v.create_new_job("nightly", d, meta()).unwrap();
    assert_eq!(first.path(), "OIC_Backups/2026/11/25/nightly");
    // The first run still writes its job.
    let second = v.create_new_job("nightly", d, meta()).unwrap();
    assert_eq!(
        (second.name(), second.path()),
        ("nightly-2", "OIC_Backups/2026/11/25/nightly-2")
    );
    first.store(&integration("A", b"first run")).unwrap();
    first.finish().unwrap();
    second.store(&integration("A", b"second run")).unwrap();
    drop(second); // this run dies without finishing: its job stays unfinished
    // Complete and unfinished jobs of the name: the next free one.
    let third = v.create_new_job("nightly", d, meta()).unwrap();
    assert_eq!(third.name(), "nightly-3");
    third.finish().unwrap();
    // Resume continues the unfinished job by its name, with what it held.
    let resumed = v
        .create_job(
            "nightly-2",
            d,
            JobMeta {
                resume: true,
                ..meta()
            },
        )
        .unwrap();
    assert_eq!(resumed.entries().len(), 1);
    resumed.finish().unwrap();
    // Each job holds its own run's archive, untouched by the others.
    let a = |job: &str| {
        let r = v
            .open_job(&format!("OIC_Backups/2026/11/25/{job}"))
            .unwrap();
        assert!(r.verify().unwrap().ok(), "{job}");
        r.manifest().entries.len()
    };
    assert_eq!((a("nightly"), a("nightly-2"), a("nightly-3")), (1, 1, 0));
}

/// Runs given one job name that start at once: each gets a job of its own (the lock, created
/// exclusively, decides). Not in [`instantiate!`]: it needs a store whose `create_exclusive` is
/// atomic (file, SFTP); Garage ignores S3's conditional PUT (`If-None-Match: *`).
pub fn new_jobs_started_at_once(f: Factory, c: Crypt) {
    let fx = f();
    let v = vault(fx.store.clone(), c);
    let d = day("2026-11-25");
    let runs = 4;
    let start = std::sync::Barrier::new(runs);
    let names: Vec<String> = std::thread::scope(|s| {
        let started: Vec<_> = (0..runs)
            .map(|i| {
                let (v, start) = (&v, &start);
                s.spawn(move || {
                    start.wait();
                    let job = v.create_new_job("race", d, meta()).unwrap();
                    job.store(&integration(&format!("R{i}"), b"race")).unwrap();
                    let m = job.finish().unwrap();
                    assert_eq!(m.entries.len(), 1, "{}", m.path);
                    job_name(&m.path)
                })
            })
            .collect();
        started.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, ["race", "race-2", "race-3", "race-4"], "{names:?}");
}

/// The last segment of a job path.
fn job_name(path: &str) -> String {
    path.rsplit('/').next().unwrap_or_default().to_string()
}

/// Two runs cannot write one job; a complete job is refused; resume continues an unfinished one.
pub fn locking_and_resume(f: Factory, c: Crypt) {
    let fx = f();
    let v = vault(fx.store.clone(), c);
    let d = day("2026-11-25");
    let first = v.create_job("nightly", d, meta()).unwrap();
    let e = v.create_job("nightly", d, meta()).unwrap_err();
    assert!(matches!(e, VaultError::Locked { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("OIC_Backups/2026/11/25/nightly") && msg.contains("locked by another run"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("pid {}", std::process::id())) && msg.contains("tester"),
        "{msg}"
    );
    // A different job is fine meanwhile.
    v.create_job("other", d, meta()).unwrap().finish().unwrap();

    let a = integration("A", b"first");
    first.store(&a).unwrap();
    drop(first); // the run dies without finishing

    let summaries = v
        .list_jobs(JobFilter {
            name: Some("nightly".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(summaries.len(), 1);
    assert!(!summaries[0].complete && summaries[0].locked);
    let e = v.create_job("nightly", d, meta()).unwrap_err();
    assert!(matches!(e, VaultError::Locked { .. }), "{e}");

    let resumed = v
        .create_job(
            "nightly",
            d,
            JobMeta {
                resume: true,
                ..meta()
            },
        )
        .unwrap();
    assert_eq!(
        resumed.entries().len(),
        1,
        "the entry stored before the crash is kept"
    );
    let b = integration("B", b"second");
    resumed.store(&b).unwrap();
    let m = resumed.finish().unwrap();
    assert_eq!(m.entries.len(), 2);
    let r = v.open_job(&m.path).unwrap();
    assert!(r.verify().unwrap().ok());

    let e = v.create_job("nightly", d, meta()).unwrap_err();
    assert!(matches!(e, VaultError::Complete { .. }), "{e}");
    assert!(e.to_string().contains("already complete"), "{e}");
    let e = v
        .create_job(
            "nightly",
            d,
            JobMeta {
                resume: true,
                ..meta()
            },
        )
        .unwrap_err();
    assert!(matches!(e, VaultError::Complete { .. }), "{e}");
    // Bad names are refused.
    assert!(matches!(
        v.create_job("../x", d, meta()).unwrap_err(),
        VaultError::BadName { .. }
    ));
    assert!(matches!(
        v.create_job("", d, meta()).unwrap_err(),
        VaultError::BadName { .. }
    ));
}

/// An artifact whose local file changed after export is refused, with nothing left behind.
pub fn refuses_changed_local_file(f: Factory, c: Crypt) {
    let fx = f();
    let v = vault(fx.store.clone(), c);
    let job = v.create_job("changed", day("2026-11-26"), meta()).unwrap();
    let a = integration("A", b"original");
    std::fs::write(a.path(), b"tampered").unwrap();
    let e = job.store(&a).unwrap_err();
    assert!(matches!(e, VaultError::Integrity { .. }), "{e}");
    assert!(e.to_string().contains("changed"), "{e}");
    let files = fx
        .store
        .list(&format!("{}/Integrations", job.path()))
        .unwrap();
    assert!(files.is_empty(), "{files:?}");
}

/// list_jobs filters by date range and name.
pub fn list_filters(f: Factory) {
    let fx = f();
    let v = vault(fx.store.clone(), Crypt::Plain);
    for (name, d) in [
        ("a-job", "2025-12-31"),
        ("b-job", "2026-01-01"),
        ("a-job", "2026-02-10"),
        ("c", "2026-02-11"),
    ] {
        let j = v.create_job(name, day(d), meta()).unwrap();
        j.store(&artifact(ArtifactKind::Lookup, "L", "", name.as_bytes()))
            .unwrap();
        j.finish().unwrap();
    }
    let all = v.list_jobs(JobFilter::default()).unwrap();
    let got: Vec<String> = all
        .iter()
        .map(|j| format!("{} {}", j.date, j.name))
        .collect();
    assert_eq!(
        got,
        vec![
            "2025-12-31 a-job",
            "2026-01-01 b-job",
            "2026-02-10 a-job",
            "2026-02-11 c"
        ]
    );
    let f1 = v
        .list_jobs(JobFilter {
            from: Some(day("2026-01-01")),
            to: Some(day("2026-02-10")),
            name: None,
        })
        .unwrap();
    assert_eq!(
        f1.iter().map(|j| j.path.as_str()).collect::<Vec<_>>(),
        vec![
            "OIC_Backups/2026/01/01/b-job",
            "OIC_Backups/2026/02/10/a-job"
        ]
    );
    let f2 = v
        .list_jobs(JobFilter {
            name: Some("a-".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(f2.len(), 2);
    assert!(v.open_job("OIC_Backups/../etc").is_err());
}

/// Prune keeps exactly what the policy says.
pub fn prune_policy(f: Factory) {
    let fx = f();
    let v = vault(fx.store.clone(), Crypt::Plain);
    // Two jobs on 2026-11-26, one each on other days spanning weeks and months.
    let dates = [
        ("j1", "2026-09-15"),
        ("j2", "2026-10-05"),
        ("j3", "2026-10-30"),
        ("j4", "2026-11-02"),
        ("j5", "2026-11-16"),
        ("j6", "2026-11-20"),
        ("j7", "2026-11-24"),
        ("j8", "2026-11-25"),
        ("j9", "2026-11-26"),
    ];
    for (n, d) in dates {
        let j = v.create_job(n, day(d), meta()).unwrap();
        j.store(&artifact(ArtifactKind::Lookup, "L", "", n.as_bytes()))
            .unwrap();
        j.finish().unwrap();
    }
    // An unfinished job is never touched.
    let unfinished = v.create_job("running", day("2026-01-01"), meta()).unwrap();
    let policy = Retention {
        daily: 3,
        weekly: 2,
        monthly: 3,
    };
    // daily 3: j9 (11-26), j8 (11-25), j7 (11-24)
    // weekly 2: week of 11-23..29 -> j9; week of 11-16..22 -> j6
    // monthly 3: Nov -> j9, Oct -> j3, Sep -> j1
    let dry = v.prune(policy, true).unwrap();
    let mut deleted: Vec<String> = dry
        .deleted
        .iter()
        .map(|p| p.rsplit('/').next().unwrap().to_string())
        .collect();
    deleted.sort();
    assert_eq!(deleted, vec!["j2", "j4", "j5"]);
    let mut kept: Vec<String> = dry
        .kept
        .iter()
        .map(|(p, _)| p.rsplit('/').next().unwrap().to_string())
        .collect();
    kept.sort();
    assert_eq!(kept, vec!["j1", "j3", "j6", "j7", "j8", "j9"]);
    assert_eq!(
        dry.skipped_unfinished,
        vec!["OIC_Backups/2026/01/01/running".to_string()]
    );
    let j9 = dry.kept.iter().find(|(p, _)| p.ends_with("/j9")).unwrap();
    assert_eq!(j9.1.len(), 3, "j9 is kept by all three rules: {:?}", j9.1);
    assert_eq!(
        v.list_jobs(JobFilter::default()).unwrap().len(),
        10,
        "dry run deletes nothing"
    );

    let real = v.prune(policy, false).unwrap();
    assert_eq!(real.deleted, dry.deleted);
    let left: Vec<String> = v
        .list_jobs(JobFilter::default())
        .unwrap()
        .into_iter()
        .map(|j| j.name)
        .collect();
    assert_eq!(left, vec!["running", "j1", "j3", "j6", "j7", "j8", "j9"]);
    for p in &real.deleted {
        assert_eq!(fx.store.stat(p).unwrap(), None, "{p} is gone");
    }
    drop(unfinished);
    // A second prune deletes nothing more.
    assert!(v.prune(policy, false).unwrap().deleted.is_empty());
}

/// A wrong age identity (or passphrase) is refused with a clear message, and nothing is returned.
pub fn wrong_identity(f: Factory, c: Crypt) {
    use age::secrecy::ExposeSecret;
    let fx = f();
    let v = vault(fx.store.clone(), c);
    let job = v.create_job("secret", day("2026-11-26"), meta()).unwrap();
    job.store(&integration("S", b"top secret archive")).unwrap();
    let m = job.finish().unwrap();
    let stored = fx
        .store
        .read_small(&format!("{}/{}", m.path, m.entries[0].path))
        .unwrap();
    assert!(
        !stored.windows(10).any(|w| w == b"top secret"),
        "stored bytes are encrypted"
    );

    let wrong = match c {
        Crypt::X25519 => Decryption::identity_text(
            age::x25519::Identity::generate()
                .to_string()
                .expose_secret(),
        )
        .unwrap(),
        Crypt::Passphrase => Decryption::Passphrase(ferry::config::Secret::new("wrong passphrase")),
        Crypt::Plain => panic!("wrong_identity needs encryption"),
    };
    let v2 = Vault::with_store(fx.store.clone(), Encryption::None, wrong);
    let r = v2.open_job(&m.path).unwrap();
    let e = r.fetch(&r.manifest().entries[0]).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, VaultError::Decrypt { .. }), "{msg}");
    assert!(msg.contains("wrong"), "{msg}");
    assert!(msg.contains("S_01.00.0000.iar.age"), "{msg}");
    let rep = r.verify().unwrap();
    assert!(
        matches!(rep.entries[0].status, EntryStatus::Mismatch { .. }),
        "{rep:?}"
    );

    // Without any identity, verify still checks the stored bytes; fetch is refused.
    let v3 = Vault::with_store(fx.store.clone(), Encryption::None, Decryption::None);
    let r = v3.open_job(&m.path).unwrap();
    let rep = r.verify().unwrap();
    assert_eq!(rep.entries[0].status, EntryStatus::StoredOk);
    assert!(rep.ok());
    let e = r.fetch(&r.manifest().entries[0]).unwrap_err();
    assert!(e.to_string().contains("no age identity"), "{e}");
}

/// Issue 13, finding 1: a job that misses selected artifacts (a failed store, a failed export)
/// finishes `partial`, lists what is missing, never stands for its day in retention, and is
/// continued to `complete` with resume.
pub fn partial_jobs(f: Factory) {
    use ferry::vault::{JobCondition, JobStatus};
    let fx = f();
    let v = vault(fx.store.clone(), Crypt::Plain);
    let d = day("2026-11-26");
    let full = v.create_job("a-full-0100", d, meta()).unwrap();
    for code in ["A", "B", "C"] {
        full.store(&artifact(ArtifactKind::Lookup, code, "", code.as_bytes()))
            .unwrap();
    }
    let m = full.finish().unwrap();
    assert_eq!(m.status, JobStatus::Complete);
    assert!(m.missing.is_empty());

    // The 09:00 rerun: A stored, B's store fails, C's export failed.
    let rerun = v.create_job("b-rerun-0900", d, meta()).unwrap();
    rerun
        .store(&artifact(ArtifactKind::Lookup, "A", "", b"A"))
        .unwrap();
    let b = artifact(ArtifactKind::Lookup, "B", "", b"B");
    std::fs::write(b.path(), b"tampered").unwrap();
    rerun.store(&b).unwrap_err();
    rerun.note_missing(
        ArtifactKey::new(ArtifactKind::Lookup, "C", ""),
        "export failed: HTTP 500".into(),
    );
    let m = rerun.finish().unwrap();
    assert_eq!(m.status, JobStatus::Partial);
    let missing: Vec<String> = m.missing.iter().map(|x| x.code.clone()).collect();
    assert_eq!(missing, vec!["B", "C"]);
    assert!(
        m.missing[0].reason.contains("store failed"),
        "{:?}",
        m.missing
    );

    let list = v.list_jobs(JobFilter::default()).unwrap();
    let p = list.iter().find(|j| j.name == "b-rerun-0900").unwrap();
    assert_eq!(p.status, JobCondition::Partial);
    assert!(!p.complete);
    assert_eq!(p.missing, 2);
    let r = v.open_job(&p.path).unwrap();
    assert_eq!(r.manifest().status, JobStatus::Partial);

    // Retention keeps the complete job of the day, whatever the partial rerun.
    let pr = v
        .prune(
            Retention {
                daily: 1,
                ..Default::default()
            },
            false,
        )
        .unwrap();
    assert!(pr.deleted.is_empty(), "{pr:?}");
    assert_eq!(pr.kept.len(), 1);
    assert!(pr.kept[0].0.ends_with("a-full-0100"), "{pr:?}");
    assert_eq!(pr.skipped_partial, vec![p.path.clone()]);

    // A partial job is not reopened by accident; resume continues it.
    let e = v.create_job("b-rerun-0900", d, meta()).unwrap_err();
    assert!(matches!(e, VaultError::Partial { .. }), "{e}");
    let mut m2 = meta();
    m2.resume = true;
    let again = v.create_job("b-rerun-0900", d, m2).unwrap();
    assert_eq!(
        again.entries().len(),
        1,
        "A is kept from the partial manifest"
    );
    for code in ["B", "C"] {
        again
            .store(&artifact(ArtifactKind::Lookup, code, "", code.as_bytes()))
            .unwrap();
    }
    let m = again.finish().unwrap();
    assert_eq!(m.status, JobStatus::Complete);
    assert_eq!(m.entries.len(), 3);
}

/// Issue 13, finding 10 (and 3): a damaged manifest is reported for its job; listing and pruning
/// go on for the others; a non-ASCII or short sha256 is refused, never a panic.
pub fn damaged_manifest(f: Factory) {
    use ferry::vault::JobCondition;
    let fx = f();
    let v = vault(fx.store.clone(), Crypt::Plain);
    let d = day("2026-11-26");
    let mut paths = vec![];
    for n in ["good", "garbage", "bad-sha"] {
        let j = v.create_job(n, d, meta()).unwrap();
        j.store(&artifact(ArtifactKind::Lookup, "L", "", n.as_bytes()))
            .unwrap();
        paths.push(j.path().to_string());
        j.finish().unwrap();
    }
    fx.store
        .write_small(&format!("{}/manifest.json", paths[1]), b"{ not json")
        .unwrap();
    let mp = format!("{}/manifest.json", paths[2]);
    let mut m: serde_json::Value =
        serde_json::from_slice(&fx.store.read_small(&mp).unwrap()).unwrap();
    m["entries"][0]["sha256"] = "é".repeat(32).into();
    fx.store
        .write_small(&mp, &serde_json::to_vec(&m).unwrap())
        .unwrap();

    let list = v.list_jobs(JobFilter::default()).unwrap();
    assert_eq!(list.len(), 3);
    let by = |n: &str| list.iter().find(|j| j.name == n).unwrap();
    assert_eq!(by("good").status, JobCondition::Complete);
    for n in ["garbage", "bad-sha"] {
        assert_eq!(by(n).status, JobCondition::Damaged, "{n}");
        assert!(by(n).problem.is_some());
        let e = v.open_job(&by(n).path).unwrap_err();
        assert!(matches!(e, VaultError::BadManifest { .. }), "{e}");
    }
    assert!(
        by("bad-sha").problem.as_deref().unwrap().contains("64 hex"),
        "{:?}",
        by("bad-sha").problem
    );
    let pr = v
        .prune(
            Retention {
                daily: 1,
                ..Default::default()
            },
            false,
        )
        .unwrap();
    assert_eq!(pr.skipped_damaged.len(), 2, "{pr:?}");
    assert_eq!(pr.kept.len(), 1);
}

/// Counts the bytes written to a store (files created and exclusive creates); hard links are
/// passed through, so a file store keeps linking.
pub type Counting = Tap<Count>;

/// The bytes written through a [`Counting`] store.
#[derive(Default)]
pub struct Count(Arc<std::sync::atomic::AtomicU64>);

impl Observer for Count {
    fn create(
        &self,
        _store: &Arc<dyn Store>,
        _path: &str,
        w: Box<dyn StoreWriter>,
    ) -> Box<dyn StoreWriter> {
        Box::new(CountWriter {
            inner: w,
            written: self.0.clone(),
        })
    }
    fn create_exclusive(&self, _path: &str, contents: &[u8]) {
        self.0
            .fetch_add(contents.len() as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

struct CountWriter {
    inner: Box<dyn StoreWriter>,
    written: Arc<std::sync::atomic::AtomicU64>,
}

impl Write for CountWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl StoreWriter for CountWriter {
    fn finish(self: Box<Self>) -> std::io::Result<()> {
        self.inner.finish()
    }
}

impl Counting {
    pub fn new(inner: Arc<dyn Store>) -> Counting {
        Tap {
            inner,
            seen: Count::default(),
        }
    }
    /// Bytes written since the last call.
    pub fn take(&self) -> u64 {
        self.seen.0.swap(0, std::sync::atomic::Ordering::Relaxed)
    }
}

/// A zip archive as OIC exports it: `stamp` changes the entry times and the `#` comment line of
/// the properties file (as two exports of unchanged content differ), `body` the content.
pub fn export_zip(code: &str, body: &[u8], stamp: u8) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let t = zip::DateTime::from_date_and_time(2026, 11, 26, 10, stamp % 60, 0).unwrap();
    let o = zip::write::SimpleFileOptions::default()
        .last_modified_time(t)
        .compression_method(zip::CompressionMethod::Stored);
    let p = format!("icspackage/project/{code}_01.00.0000/");
    w.start_file(format!("{p}ics_project_attributes.properties"), o)
        .unwrap();
    write!(
        w,
        "#Mon Nov 30 10:{stamp:02}:00.{stamp}12345 UTC 2026\nproject_code={code}\n"
    )
    .unwrap();
    w.start_file(format!("{p}resources/body.bin"), o).unwrap();
    w.write_all(body).unwrap();
    w.finish().unwrap().into_inner()
}

/// Content-addressed jobs: nights whose archives did not change (new export stamps, same
/// content) write no archive bytes; encrypted content is reused, not encrypted again; every job
/// reads, verifies and resumes on its own; prune keeps what later jobs share and removes it
/// once nothing does. `via`: how the store shares (hard link on file://, reference elsewhere).
pub fn shared_content(f: Factory, c: Crypt, via: ferry::vault::ShareVia) {
    use ferry::vault::ShareVia;
    let fx = f();
    let counting = Arc::new(Counting::new(fx.store.clone()));
    let store: Arc<dyn Store> = counting.clone();
    let v = vault(store.clone(), c);
    let big = bytes(2 * 1024 * 1024, 7);
    let a = |stamp| integration("ORDERS", &export_zip("ORDERS", &big, stamp));
    let b = |body: &[u8], stamp| integration("BILLING", &export_zip("BILLING", body, stamp));
    let lookup = || artifact(ArtifactKind::Lookup, "COUNTRIES", "", b"a,b\n1,2\n");
    let night = |name: &str, d: &str, arts: &[ferry::artifact::Artifact]| {
        let j = v.create_job(name, day(d), meta()).unwrap();
        for x in arts {
            j.store(x).unwrap();
        }
        j.finish().unwrap()
    };
    // Night 1 writes everything.
    let a1 = a(1);
    let m1 = night(
        "n1",
        "2026-11-25",
        &[a1.clone(), b(b"billing v1", 1), lookup()],
    );
    let first = counting.take();
    assert!(first > big.len() as u64, "{first}");
    assert!(m1.entries.iter().all(|e| e.shared.is_none()));
    let entry = |m: &ferry::vault::Manifest, code: &str| {
        m.entries.iter().find(|e| e.code == code).unwrap().clone()
    };
    let j1 = "OIC_Backups/2026/11/25/n1";

    // Night 2: ORDERS exported again (other bytes, same content), BILLING changed.
    let a2 = a(2);
    assert_ne!(a2.sha256, a1.sha256, "the exports differ byte for byte");
    let m2 = night("n2", "2026-11-26", &[a2, b(b"billing v2", 2), lookup()]);
    let second = counting.take();
    for code in ["ORDERS", "COUNTRIES"] {
        let (e1, e2) = (entry(&m1, code), entry(&m2, code));
        let sh = e2
            .shared
            .clone()
            .unwrap_or_else(|| panic!("{code} is shared"));
        assert_eq!(sh.via, via);
        assert_eq!(sh.file, format!("{j1}/{}", e1.path));
        assert_eq!(e2.content_sha256, e1.content_sha256);
        // Encrypted once: the earlier ciphertext is reused, so the checksums are the earlier ones.
        assert_eq!(
            (
                e2.stored_sha256.as_str(),
                e2.sha256.as_str(),
                e2.stored_size
            ),
            (
                e1.stored_sha256.as_str(),
                e1.sha256.as_str(),
                e1.stored_size
            )
        );
        let own = fx
            .store
            .stat(&format!("OIC_Backups/2026/11/26/n2/{}", e2.path))
            .unwrap();
        match via {
            ShareVia::Hardlink => assert_eq!(own, Some(e1.stored_size), "a hard link in the job"),
            ShareVia::Reference => assert_eq!(own, None, "a reference: no file in the job"),
        }
    }
    assert!(
        entry(&m2, "BILLING").shared.is_none(),
        "changed content is written"
    );
    assert!(
        second < big.len() as u64 / 10,
        "night 2 wrote {second} bytes, night 1 {first}"
    );
    // Night 2 restores on its own: the earlier export's bytes come back.
    let r2 = v.open_job("OIC_Backups/2026/11/26/n2").unwrap();
    assert!(r2.verify().unwrap().ok());
    let got = r2.fetch(&entry(&m2, "ORDERS")).unwrap();
    assert_eq!(
        std::fs::read(got.path()).unwrap(),
        std::fs::read(a1.path()).unwrap()
    );

    // Night 3, unchanged, interrupted after ORDERS and resumed: shares ORDERS with n1 (not
    // through n2) and BILLING with n2, writes under 1 % of night 1.
    let j3 = v.create_job("n3", day("2026-11-27"), meta()).unwrap();
    j3.store(&a(3)).unwrap();
    drop(j3);
    let resume = JobMeta {
        resume: true,
        ..meta()
    };
    let j3 = v.create_job("n3", day("2026-11-27"), resume).unwrap();
    // A shared entry is journaled like a stored one: the resumed job has it without storing it
    // again (a rollback job is not stored into again after a resume).
    assert_eq!(
        j3.entries().len(),
        1,
        "the shared entry survives the resume"
    );
    j3.store(&b(b"billing v2", 3)).unwrap();
    let m3 = j3.finish().unwrap();
    let third = counting.take();
    assert!(
        third * 100 < first,
        "an unchanged night wrote {third} bytes, night 1 {first}"
    );
    // A reference names the file holding the bytes (n1's), never another reference.
    let holder = match via {
        ShareVia::Reference => j1,
        ShareVia::Hardlink => "OIC_Backups/2026/11/26/n2",
    };
    assert_eq!(
        entry(&m3, "ORDERS").shared.unwrap().file,
        format!("{holder}/{}", entry(&m1, "ORDERS").path)
    );
    assert_eq!(
        entry(&m3, "BILLING").shared.unwrap().file,
        format!("OIC_Backups/2026/11/26/n2/{}", entry(&m2, "BILLING").path)
    );

    // Other keys cannot read the earlier ciphertext: the content is written again.
    if !matches!(c, Crypt::Plain) {
        let other = match c {
            Crypt::Passphrase => {
                let p = ferry::config::Secret::new("another passphrase");
                Vault::with_store(
                    store.clone(),
                    Encryption::Passphrase(p.clone()),
                    Decryption::Passphrase(p),
                )
            }
            _ => vault(store.clone(), c),
        };
        let j = other
            .create_job("rekeyed", day("2026-11-27"), meta())
            .unwrap();
        j.store(&a(4)).unwrap();
        let m = j.finish().unwrap();
        assert!(m.entries[0].shared.is_none(), "{:?}", m.entries[0]);
        counting.take();
        fx.store
            .remove_tree("OIC_Backups/2026/11/27/rekeyed")
            .unwrap();
    }

    // Prune keeping one day: n1 and n2 go, but the files n3 refers to stay, and n3 restores.
    let plan = v
        .prune(
            Retention {
                daily: 1,
                ..Default::default()
            },
            false,
        )
        .unwrap();
    assert_eq!(plan.deleted.len(), 2, "{plan:?}");
    let r3 = v.open_job("OIC_Backups/2026/11/27/n3").unwrap();
    let rep = r3.verify().unwrap();
    assert!(rep.ok(), "{rep:?}");
    for e in &r3.manifest().entries {
        r3.fetch(e).unwrap().verify().unwrap();
    }
    let names: Vec<String> = v
        .list_jobs(JobFilter::default())
        .unwrap()
        .into_iter()
        .map(|j| j.name)
        .collect();
    assert_eq!(names, vec!["n3"], "pruned jobs are not listed");
    let lookup1 = format!("{j1}/{}", entry(&m1, "COUNTRIES").path);
    assert_eq!(fx.store.stat(&lookup1).unwrap(), None, "unshared files go");
    match via {
        ShareVia::Reference => {
            let mut kept = plan.kept_shared.clone();
            kept.sort();
            assert_eq!(
                kept,
                vec![
                    format!("{j1}/{}", entry(&m1, "ORDERS").path),
                    format!("OIC_Backups/2026/11/26/n2/{}", entry(&m2, "BILLING").path),
                ]
            );
        }
        ShareVia::Hardlink => {
            assert!(plan.kept_shared.is_empty(), "hard links need nothing kept");
            assert_eq!(fx.store.stat(j1).unwrap(), None);
        }
    }

    // Night 4 changes ORDERS and drops BILLING; pruning n3 leaves nothing of n1..n3.
    let m4 = night(
        "n4",
        "2026-11-28",
        &[integration(
            "ORDERS",
            &export_zip("ORDERS", b"rewritten", 4),
        )],
    );
    assert!(m4.entries[0].shared.is_none());
    let plan = v
        .prune(
            Retention {
                daily: 1,
                ..Default::default()
            },
            false,
        )
        .unwrap();
    assert!(plan.kept_shared.is_empty(), "{plan:?}");
    for d in ["25/n1", "26/n2", "27/n3"] {
        let p = format!("OIC_Backups/2026/11/{d}");
        assert_eq!(fx.store.stat(&p).unwrap(), None, "{p} is gone");
    }
    assert!(
        v.open_job("OIC_Backups/2026/11/28/n4")
            .unwrap()
            .verify()
            .unwrap()
            .ok()
    );
}

/// Carried over by listing: an integration the source lists as the newest complete job recorded
/// it (same instance, `lastUpdated`, status, encryption; earlier file there with its size) is
/// carried without an export; any doubt gives `None` (the caller exports). The carried job
/// verifies and restores on its own, and prune keeps what it refers to.
pub fn carried_by_listing(f: Factory, c: Crypt, via: ferry::vault::ShareVia) {
    use ferry::artifact::Listed;
    use ferry::vault::{Listing, Matched, ShareVia};
    let fx = f();
    let counting = Arc::new(Counting::new(fx.store.clone()));
    let store: Arc<dyn Store> = counting.clone();
    let v = vault(store.clone(), c);
    let oic = "https://oic.example.com?integrationInstance=dev";
    let listed = |code: &str, body: &[u8], updated: &str| {
        let mut a = integration(code, &export_zip(code, body, 1));
        a.listed = Some(Listed {
            updated: updated.into(),
            instance: oic.into(),
        });
        a
    };
    let big = bytes(512 * 1024, 11);
    let orders = listed("ORDERS", &big, "2026-11-20T10:00:00.000+0000");
    let billing = listed("BILLING", b"billing", "2026-11-21T10:00:00.000+0000");
    let j1 = v.create_job("n1", day("2026-11-25"), meta()).unwrap();
    j1.store(&orders).unwrap();
    j1.store(&billing).unwrap();
    let m1 = j1.finish().unwrap();
    assert_eq!(
        m1.source_instances.get("dev").map(String::as_str),
        Some(oic)
    );
    assert_eq!(
        m1.entries[1].source_updated.as_deref(),
        Some("2026-11-20T10:00:00.000+0000")
    );
    let first = counting.take();

    let key = |code: &str| ArtifactKey::new(ArtifactKind::Integration, code, "01.00.0000");
    let (ko, kb) = (key("ORDERS"), key("BILLING"));
    let at =
        |k: &ArtifactKey, updated: &'static str, status: &'static str, instance: &'static str| {
            // A Listing borrows; leak the key for the test's brevity.
            let k: &'static ArtifactKey = Box::leak(Box::new(k.clone()));
            Listing {
                key: k,
                source: "dev",
                instance,
                status: Some(status),
                updated,
            }
        };
    let same = "2026-11-20T10:00:00.000+0000";
    let j2 = v.create_job("n2", day("2026-11-26"), meta()).unwrap();
    // Any doubt: exported.
    let doubts = [
        at(&ko, "2026-11-26T09:00:00.000+0000", "ACTIVATED", oic),
        at(&ko, same, "CONFIGURED", oic),
        at(&ko, same, "ACTIVATED", "https://other.example.com"),
        at(&ko, "", "ACTIVATED", oic),
        at(&key("NEVER_SEEN"), same, "ACTIVATED", oic),
    ];
    for l in &doubts {
        assert!(j2.carry(l, false).unwrap().is_none(), "{l:?}");
    }
    let e = j2
        .carry(&at(&ko, same, "ACTIVATED", oic), false)
        .unwrap()
        .unwrap();
    let sh = e.shared.clone().unwrap();
    assert_eq!((sh.via, sh.matched), (via, Matched::Listing));
    assert_eq!(
        sh.file,
        format!("OIC_Backups/2026/11/25/n1/{}", m1.entries[1].path)
    );
    assert_eq!(e.content_sha256, m1.entries[1].content_sha256);
    assert_eq!(e.sha256, orders.sha256);
    // Deep: every byte read back; same answer.
    let deep = j2
        .carry(
            &at(&kb, "2026-11-21T10:00:00.000+0000", "ACTIVATED", oic),
            true,
        )
        .unwrap()
        .unwrap();
    j2.record_carried(vec![e, deep]).unwrap();
    let m2 = j2.finish().unwrap();
    assert_eq!(m2.entries.len(), 2);
    let second = counting.take();
    assert!(
        second * 100 < first,
        "a carried night wrote {second} bytes, night 1 {first}"
    );
    let r2 = v.open_job("OIC_Backups/2026/11/26/n2").unwrap();
    assert!(r2.verify().unwrap().ok());
    let got = r2.fetch(&m2.entries[1]).unwrap();
    assert_eq!(
        std::fs::read(got.path()).unwrap(),
        std::fs::read(orders.path()).unwrap()
    );

    // A later night carries from n2 (the newest complete job); the bytes are still n1's file
    // on a reference store (a reference never points at a reference).
    let j3 = v.create_job("n3", day("2026-11-27"), meta()).unwrap();
    let e3 = j3
        .carry(&at(&ko, same, "ACTIVATED", oic), false)
        .unwrap()
        .unwrap();
    let holder = match via {
        ShareVia::Reference => "OIC_Backups/2026/11/25/n1",
        ShareVia::Hardlink => "OIC_Backups/2026/11/26/n2",
    };
    assert_eq!(
        e3.shared.unwrap().file,
        format!("{holder}/{}", m1.entries[1].path)
    );
    drop(j3);
    fx.store.remove_tree("OIC_Backups/2026/11/27/n3").unwrap();

    // The earlier bytes damaged (same size, other bytes): a stat does not see it, a deep check
    // does, and verify of the job that refers to them reports it.
    let victim = format!("OIC_Backups/2026/11/25/n1/{}", m1.entries[0].path);
    let mut bad = Vec::new();
    fx.store
        .open(&victim)
        .unwrap()
        .read_to_end(&mut bad)
        .unwrap();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    if via == ShareVia::Hardlink {
        // A hard link shares the inode: damage n2's copy through its own name too.
        fx.store.remove(&victim).unwrap();
    }
    fx.store.write_small(&victim, &bad).unwrap();
    let j4 = v.create_job("n4", day("2026-11-28"), meta()).unwrap();
    let billing_at = at(&kb, "2026-11-21T10:00:00.000+0000", "ACTIVATED", oic);
    if via == ShareVia::Reference {
        assert!(
            j4.carry(&billing_at, true).unwrap().is_none(),
            "a deep check reads the damage"
        );
    }
    // The earlier file gone: exported.
    fx.store.remove(&victim).unwrap();
    if via == ShareVia::Reference {
        assert!(
            j4.carry(&billing_at, false).unwrap().is_none(),
            "a missing file is exported"
        );
    }
    drop(j4);

    // A partial job is never carried from.
    let v2 = vault(f().store, c);
    let j = v2.create_job("p", day("2026-11-25"), meta()).unwrap();
    j.store(&orders).unwrap();
    j.note_missing(kb.clone(), "export failed: test".into());
    assert_eq!(j.finish().unwrap().status, ferry::vault::JobStatus::Partial);
    let j = v2.create_job("after", day("2026-11-26"), meta()).unwrap();
    assert!(
        j.carry(&at(&ko, same, "ACTIVATED", oic), false)
            .unwrap()
            .is_none()
    );
}
