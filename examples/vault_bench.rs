//! Vault throughput benchmark: stores a 1 GiB archive through sha256 + age (X25519) + SFTP to
//! the loopback sshd, and times OpenSSH's `sftp` client putting the same file.
//!
//! ```text
//! bash .ci/services.sh && . /srv/ocitest/env
//! cargo run --release --example vault_bench            # 1 GiB
//! cargo run --release --example vault_bench -- 256     # size in MiB
//! ```
//! Prints the throughputs, their ratio and this process's peak RSS (VmHWM).

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use ferry::artifact::{Artifact, ArtifactKey, ArtifactKind, hash_file};
use ferry::vault::{
    Decryption, DirEntry, Encryption, JobMeta, SftpConfig, SftpStore, Store, StoreWriter, Vault,
    VaultError,
};

fn var(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| {
        eprintln!("{k} is not set: run `bash .ci/services.sh && . /srv/ocitest/env` first");
        std::process::exit(2)
    })
}

fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l["VmHWM:".len()..].trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

/// User + system CPU seconds of this process so far (from /proc/self/stat, 100 Hz ticks).
fn process_cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// The 1-minute load average.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string()
}

fn write_data(path: &Path, mib: usize) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for chunk in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&buf)?;
    }
    f.flush()
}

/// A store that discards what is written (to time hashing + encryption alone).
struct NullStore;

struct NullWriter(u64);

impl Write for NullWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl StoreWriter for NullWriter {
    fn finish(self: Box<Self>) -> std::io::Result<()> {
        NULL_SIZE.store(self.0, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

static NULL_SIZE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Store for NullStore {
    fn describe(&self) -> String {
        "null://".into()
    }
    fn create_dir_all(&self, _: &str) -> Result<(), VaultError> {
        Ok(())
    }
    fn create(&self, _: &str) -> Result<Box<dyn StoreWriter>, VaultError> {
        Ok(Box::new(NullWriter(0)))
    }
    fn rename(&self, _: &str, _: &str) -> Result<(), VaultError> {
        Ok(())
    }
    fn open(&self, p: &str) -> Result<Box<dyn std::io::Read + Send>, VaultError> {
        Err(VaultError::NoManifest { job: p.into() })
    }
    fn list(&self, _: &str) -> Result<Vec<DirEntry>, VaultError> {
        Ok(vec![])
    }
    fn stat(&self, p: &str) -> Result<Option<u64>, VaultError> {
        // The temp file "exists" with the size written, so the upload check passes.
        Ok(if p.contains(".tmp-") {
            Some(NULL_SIZE.load(std::sync::atomic::Ordering::SeqCst))
        } else {
            None
        })
    }
    fn remove(&self, _: &str) -> Result<(), VaultError> {
        Ok(())
    }
    fn remove_dir(&self, _: &str) -> Result<(), VaultError> {
        Ok(())
    }
    fn create_exclusive(&self, _: &str, _: &[u8]) -> Result<bool, VaultError> {
        Ok(true)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mib: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1024);
    let (host, port, user, dir) = (
        var("TEST_SFTP_HOST"),
        var("TEST_SFTP_PORT"),
        var("TEST_SFTP_USER"),
        var("TEST_SFTP_DIR"),
    );
    let (key, kh) = (var("TEST_SFTP_KEY"), var("TEST_SFTP_KNOWN_HOSTS"));
    let port: u16 = port.parse()?;

    let tmp = tempfile::tempdir()?;
    let file = tmp.path().join("bench.iar");
    let t = Instant::now();
    write_data(&file, mib)?;
    let (size, sha) = hash_file(&file)?;
    println!(
        "prepared {mib} MiB archive in {:.1?} (written + hashed once)",
        t.elapsed()
    );

    let root = format!("{dir}/bench-{:08x}", rand::random::<u32>());
    let mut cfg = SftpConfig::new(host.clone(), user.clone(), root.clone());
    cfg.port = port;
    cfg.identity_file = Some(key.clone().into());
    cfg.known_hosts = kh.clone().into();
    let store = Arc::new(SftpStore::connect(cfg)?);
    println!("ssh2 session: {}", store.negotiated()?);
    let id = age::x25519::Identity::generate();
    let vault = Vault::with_store(
        store.clone(),
        Encryption::recipients(&[id.to_public().to_string()]).map_err(|e| e.to_string())?,
        Decryption::None,
    );
    let art = Artifact::from_path(
        ArtifactKey::new(ArtifactKind::Integration, "BENCH", "01.00.0000"),
        file.clone(),
        size,
        sha,
        "bench",
    );

    // Primitives alone, on the cached file: one sha256 pass, one age pass.
    let t = Instant::now();
    hash_file(&file)?;
    let sha_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    {
        let enc =
            Encryption::recipients(&[id.to_public().to_string()]).map_err(|e| e.to_string())?;
        let r = age::Encryptor::with_recipients(std::iter::once(
            &id.to_public() as &dyn age::Recipient
        ))?;
        drop(enc);
        let mut w = r.wrap_output(std::io::sink())?;
        std::io::copy(&mut std::fs::File::open(&file)?, &mut w)?;
        w.finish()?;
    }
    let age_secs = t.elapsed().as_secs_f64();

    // CPU side alone: sha256 + age + sha256 into a store that discards.
    let enc = Encryption::recipients(&[id.to_public().to_string()]).map_err(|e| e.to_string())?;
    let null = Vault::with_store(Arc::new(NullStore), enc, Decryption::None);
    let t = Instant::now();
    null.create_job("bench", chrono::Utc::now().date_naive(), JobMeta::default())?
        .store(&art)?;
    let cpu_secs = t.elapsed().as_secs_f64();

    // ferry: sha256 + age + sha256 + SFTP (temp name, then rename).
    let job = vault.create_job("bench", chrono::Utc::now().date_naive(), JobMeta::default())?;
    let (t, c0) = (Instant::now(), process_cpu());
    let entry = job.store(&art)?;
    let ferry_secs = t.elapsed().as_secs_f64();
    let ferry_cpu = process_cpu() - c0;
    job.finish()?;
    let hwm_after_store = vm_hwm();

    // The SFTP store alone (libssh2): the same bytes, no hashing, no encryption.
    let t = Instant::now();
    {
        let mut w = store.create("raw.bin")?;
        std::io::copy(&mut std::fs::File::open(&file)?, &mut w)?;
        w.finish()?;
        store.remove("raw.bin")?;
    }
    let raw_secs = t.elapsed().as_secs_f64();

    // OpenSSH sftp put of the same file.
    let batch = tmp.path().join("batch.txt");
    let remote = format!("{root}/openssh-put.bin");
    std::fs::write(
        &batch,
        format!("put {} {remote}\nrm {remote}\n", file.display()),
    )?;
    let t = Instant::now();
    let out = Command::new("sftp")
        .args([
            "-q",
            "-P",
            &port.to_string(),
            "-i",
            &key,
            "-o",
            &format!("UserKnownHostsFile={kh}"),
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-b",
        ])
        .arg(&batch)
        .arg(format!("{user}@{host}"))
        .output()?;
    let openssh_secs = t.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!("sftp failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }

    // Clean up the remote job.
    store.remove_tree("")?;

    let mb = size as f64 / (1024.0 * 1024.0);
    println!(
        "ferry vault store (sha256 + age X25519 + sha256 + SFTP): {mb:.0} MiB in {ferry_secs:.2} s = {:.1} MiB/s (stored {} bytes)",
        mb / ferry_secs,
        entry.stored_size
    );
    println!(
        "  of which hashing + encryption alone (null store):      {mb:.0} MiB in {cpu_secs:.2} s = {:.1} MiB/s",
        mb / cpu_secs
    );
    println!(
        "  primitives: sha256 {:.0} MiB/s, age encryption {:.0} MiB/s",
        mb / sha_secs,
        mb / age_secs
    );
    println!(
        "  SFTP store alone (libssh2, no hashing/encryption):     {mb:.0} MiB in {raw_secs:.2} s = {:.1} MiB/s",
        mb / raw_secs
    );
    println!(
        "OpenSSH sftp put:                                         {mb:.0} MiB in {openssh_secs:.2} s = {:.1} MiB/s",
        mb / openssh_secs
    );
    println!(
        "ferry store used {ferry_cpu:.2} s of CPU (all its threads; sshd not counted); load average {}",
        load()
    );
    println!(
        "throughput ratio ferry / openssh: {:.2}",
        openssh_secs / ferry_secs
    );
    println!(
        "peak RSS (VmHWM) of this process: {} (after store: {hwm_after_store})",
        vm_hwm()
    );
    Ok(())
}
