//! The vault suite against a real sshd on loopback (`.ci/services.sh`, TEST_SFTP_* variables),
//! plus SFTP specifics: host key checks, authentication, timeouts, dropped connections (through
//! a small loopback TCP proxy in front of the real sshd that the test can cut).
//!
//! Without TEST_SFTP_HOST the tests fail, unless FERRY_ALLOW_SKIP=1 (then they print SKIP; see
//! `tests/support/vaults.rs`).

use crate::support;
use crate::vault_suite;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ferry::artifact::ArtifactKind;
use ferry::vault::{
    Decryption, Encryption, JobFilter, JobMeta, SftpStore, Store, Vault, VaultError,
};
use support::vaults::{SftpEnv, sftp_config as config, unique};
use vault_suite::{Fx, artifact, bytes, integration};

type Env = SftpEnv;

/// The sshd settings, or: a failure, or (FERRY_ALLOW_SKIP=1 outside CI) a SKIP and return.
macro_rules! need_env {
    () => {
        match support::vaults::sftp_env(module_path!()) {
            Some(e) => e,
            None => return,
        }
    };
}

fn sftp_store(e: &Env) -> Fx {
    let root = format!("{}/{}", e.dir, unique("t"));
    let store = Arc::new(SftpStore::connect(config(e, &root)).expect("connect to the test sshd"));
    Fx {
        store,
        _guard: Box::new(()),
    }
}

vault_suite::instantiate!(
    {
        let e = need_env!();
        move || sftp_store(&e)
    },
    ferry::vault::ShareVia::Reference
);

#[test]
fn new_jobs_started_at_once() {
    let e = need_env!();
    vault_suite::new_jobs_started_at_once(&|| sftp_store(&e), vault_suite::Crypt::X25519);
}

/// The server's key line from the test known_hosts: (key type, base64 blob).
fn server_key(e: &Env) -> (String, String) {
    let text = std::fs::read_to_string(&e.known_hosts).unwrap();
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .unwrap();
    let parts: Vec<&str> = line.split_whitespace().collect();
    (parts[1].to_string(), parts[2].to_string())
}

/// OpenSSH's own fingerprint of the server key (`ssh-keygen -lf`).
fn openssh_fingerprint(e: &Env) -> String {
    let out = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&e.known_hosts)
        .output()
        .unwrap();
    assert!(out.status.success());
    let s = String::from_utf8(out.stdout).unwrap();
    s.split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .unwrap()
        .to_string()
}

fn write_known_hosts(dir: &Path, line: &str) -> PathBuf {
    let p = dir.join("known_hosts");
    std::fs::write(&p, format!("{line}\n")).unwrap();
    p
}

#[test]
fn unknown_host_key_is_refused_with_fingerprint_and_fix() {
    let e = need_env!();
    let tmp = tempfile::tempdir().unwrap();
    let (ktype, kb64) = server_key(&e);
    let fp = openssh_fingerprint(&e);
    // A known_hosts file with the key under another port only.
    let kh = write_known_hosts(tmp.path(), &format!("[{}]:9999 {ktype} {kb64}", e.host));
    let mut c = config(&e, &e.dir);
    c.known_hosts = kh.clone();
    let err = SftpStore::connect(c.clone()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, VaultError::HostKey { .. }), "{msg}");
    assert!(msg.contains("unknown host key"), "{msg}");
    assert!(
        msg.contains(&fp),
        "shows the OpenSSH fingerprint {fp}: {msg}"
    );
    let expected_line = format!("[{}]:{} {ktype} {kb64}", e.host, e.port);
    assert!(
        msg.contains(&expected_line),
        "shows the known_hosts line to add: {msg}"
    );
    assert!(
        msg.contains(&format!(
            "ssh-keyscan -p {} {} >> {}",
            e.port,
            e.host,
            kh.display()
        )),
        "{msg}"
    );

    // The line from the message, added to known_hosts, is accepted.
    std::fs::write(&kh, format!("{expected_line}\n")).unwrap();
    SftpStore::connect(c.clone()).expect("the suggested line works");

    // A missing known_hosts file: refused, and says so.
    c.known_hosts = tmp.path().join("nope");
    let msg = SftpStore::connect(c.clone()).unwrap_err().to_string();
    assert!(msg.contains("does not exist") && msg.contains(&fp), "{msg}");

    // accept_unknown_host_keys lets it through.
    c.accept_unknown_host_keys = true;
    let s = SftpStore::connect(c).expect("accepted with accept_unknown_host_keys");
    assert!(s.list("").is_ok());
}

#[test]
fn changed_host_key_is_refused_even_with_accept_unknown() {
    let e = need_env!();
    let tmp = tempfile::tempdir().unwrap();
    let other = tmp.path().join("other_host");
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(st.success());
    let pubkey = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let parts: Vec<&str> = pubkey.split_whitespace().collect();
    let kh = write_known_hosts(
        tmp.path(),
        &format!("[{}]:{} {} {}", e.host, e.port, parts[0], parts[1]),
    );
    let mut c = config(&e, &e.dir);
    c.known_hosts = kh;
    c.accept_unknown_host_keys = true;
    let err = SftpStore::connect(c).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, VaultError::HostKey { .. }), "{msg}");
    assert!(msg.contains("HOST KEY CHANGED"), "{msg}");
    assert!(msg.contains(&openssh_fingerprint(&e)), "{msg}");
    assert!(msg.contains("ssh-keygen -R"), "{msg}");
}

#[test]
fn hashed_known_hosts_match() {
    let e = need_env!();
    let tmp = tempfile::tempdir().unwrap();
    let kh = tmp.path().join("known_hosts");
    std::fs::copy(&e.known_hosts, &kh).unwrap();
    let st = std::process::Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&kh)
        .output()
        .unwrap();
    assert!(st.status.success());
    assert!(std::fs::read_to_string(&kh).unwrap().starts_with("|1|"));
    let mut c = config(&e, &e.dir);
    c.known_hosts = kh;
    SftpStore::connect(c).expect("hashed known_hosts entry matches");
}

#[test]
fn wrong_client_key_is_refused() {
    let e = need_env!();
    let tmp = tempfile::tempdir().unwrap();
    let k = tmp.path().join("stranger");
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&k)
        .status()
        .unwrap();
    assert!(st.success());
    let mut c = config(&e, &e.dir);
    c.identity_file = Some(k.clone());
    let err = SftpStore::connect(c.clone()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, VaultError::Auth { .. }), "{msg}");
    assert!(
        msg.contains(&format!("authentication as `{}` failed", e.user)),
        "{msg}"
    );
    assert!(
        msg.contains(&k.display().to_string()) && msg.contains("refused"),
        "{msg}"
    );

    // A configured password is tried too (the test server refuses passwords) and never shown.
    c.password = Some(ferry::config::Secret::new("pw-that-must-not-leak"));
    let msg = SftpStore::connect(c.clone()).unwrap_err().to_string();
    assert!(
        msg.contains("password:") && !msg.contains("pw-that-must-not-leak"),
        "{msg}"
    );
    c.password = None;
    c.identity_file = Some(tmp.path().join("missing_key"));
    let msg = SftpStore::connect(c).unwrap_err().to_string();
    assert!(msg.contains("does not exist"), "{msg}");
}

#[test]
fn rsa_key_with_passphrase() {
    let e = need_env!();
    let (Some(key), Some(pass)) = (e.rsa_key.clone(), e.rsa_passphrase.clone()) else {
        panic!("TEST_SFTP_RSA_KEY / TEST_SFTP_RSA_PASSPHRASE not set: rerun .ci/services.sh");
    };
    let mut c = config(&e, &e.dir);
    c.identity_file = Some(key);
    c.key_passphrase = Some(ferry::config::Secret::new(pass.clone()));
    let s = SftpStore::connect(c.clone()).expect("RSA key with passphrase");
    assert!(s.list("").is_ok());

    c.key_passphrase = Some(ferry::config::Secret::new("not the passphrase"));
    let msg = SftpStore::connect(c.clone()).unwrap_err().to_string();
    assert!(msg.contains("wrong passphrase"), "{msg}");
    assert!(
        !msg.contains("not the passphrase"),
        "no secret in errors: {msg}"
    );
    c.key_passphrase = None;
    let msg = SftpStore::connect(c).unwrap_err().to_string();
    assert!(msg.contains("passphrase"), "{msg}");
    assert!(!msg.contains(&pass));
}

/// `Vault::open` from a config profile with sftp settings and age recipients.
#[test]
fn open_from_profile() {
    use age::secrecy::ExposeSecret;
    let e = need_env!();
    let tmp = tempfile::tempdir().unwrap();
    let id = age::x25519::Identity::generate();
    std::fs::write(tmp.path().join("age.key"), id.to_string().expose_secret()).unwrap();
    // Relative paths resolve against the config file's folder.
    std::fs::copy(&e.key, tmp.path().join("client_key")).unwrap();
    std::fs::copy(&e.known_hosts, tmp.path().join("kh")).unwrap();
    let root = format!("{}/{}", e.dir, unique("profile"));
    let toml = format!(
        "[vaults.remote]\nurl = \"sftp://{}@{}:{}/~/{root}\"\nidentity_file = \"client_key\"\nknown_hosts = \"kh\"\ntimeout_secs = 15\nrecipients = [\"{}\"]\nidentity = \"file:age.key\"\n",
        e.user,
        e.host,
        e.port,
        id.to_public()
    );
    let cfg = ferry::config::Config::parse(&toml, "ferry.toml", tmp.path()).unwrap();
    let v = Vault::open(cfg.vault("remote").unwrap()).unwrap();
    assert_eq!(
        v.describe(),
        format!(
            "sftp://{}@{}:{}/~/{root} (age-x25519)",
            e.user, e.host, e.port
        )
    );
    let job = v
        .create_job(
            "from-profile",
            chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
            JobMeta::default(),
        )
        .unwrap();
    let a = integration("P", &bytes(70_000, 7));
    job.store(&a).unwrap();
    let m = job.finish().unwrap();
    let r = v.open_job(&m.path).unwrap();
    let got = r.fetch(&m.entries[0]).unwrap();
    assert_eq!(
        std::fs::read(got.path()).unwrap(),
        std::fs::read(a.path()).unwrap()
    );

    // A refused host key surfaces from Vault::open.
    let toml = format!(
        "[vaults.remote]\nurl = \"sftp://{}@{}:{}/~/{root}\"\nidentity_file = \"client_key\"\nknown_hosts = \"empty_kh\"\n",
        e.user, e.host, e.port
    );
    std::fs::write(tmp.path().join("empty_kh"), "").unwrap();
    let cfg = ferry::config::Config::parse(&toml, "ferry.toml", tmp.path()).unwrap();
    let msg = Vault::open(cfg.vault("remote").unwrap())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("unknown host key"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// A loopback TCP proxy in front of the real sshd, which the test can cut.

#[derive(Default)]
struct ProxyState {
    /// Refuse (close at once) new connections.
    down: AtomicBool,
    /// Accept connections but never forward a byte.
    blackhole: AtomicBool,
    /// Stop forwarding on open connections (keep them open): a server that hangs. The pumps
    /// wait on `unstalled` while it is set.
    stall: Mutex<bool>,
    unstalled: Condvar,
    /// Cut every connection once this many client->server bytes have passed (u64::MAX: never).
    cut_at: AtomicU64,
    /// Stall (as `stall`) once this many client->server bytes have passed (u64::MAX: never).
    stall_at: AtomicU64,
    /// Whether a cut also refuses new connections.
    down_on_cut: AtomicBool,
    /// Client->server bytes so far.
    up_bytes: AtomicU64,
    accepted: AtomicU64,
    streams: Mutex<Vec<TcpStream>>,
    /// Pump threads still forwarding; `pumps_ended` is signalled when one ends.
    pumps: Mutex<usize>,
    pumps_ended: Condvar,
}

struct Proxy {
    port: u16,
    st: Arc<ProxyState>,
}

impl Proxy {
    fn start(upstream: (String, u16)) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let st = Arc::new(ProxyState {
            cut_at: AtomicU64::new(u64::MAX),
            stall_at: AtomicU64::new(u64::MAX),
            ..Default::default()
        });
        let s2 = st.clone();
        std::thread::spawn(move || {
            for client in l.incoming() {
                let Ok(client) = client else { continue };
                s2.accepted.fetch_add(1, Ordering::SeqCst);
                if s2.down.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                if s2.blackhole.load(Ordering::SeqCst) {
                    s2.streams.lock().unwrap().push(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect((upstream.0.as_str(), upstream.1)) else {
                    continue;
                };
                {
                    let mut v = s2.streams.lock().unwrap();
                    v.push(client.try_clone().unwrap());
                    v.push(server.try_clone().unwrap());
                }
                let (st, st_a, st_b) = (s2.clone(), s2.clone(), s2.clone());
                let (c1, s1) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                *s2.pumps.lock().unwrap() += 2;
                std::thread::spawn(move || pump(c1, s1, Some(st), st_a));
                std::thread::spawn(move || pump(server, client, None, st_b));
            }
        });
        Proxy { port, st }
    }

    /// Cuts every open connection now, and returns once every pump has seen the cut and closed
    /// its side (so the client's next read or write meets a closed connection).
    fn cut_all(&self) {
        for s in self.st.streams.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        let (left, timeout) = self
            .st
            .pumps_ended
            .wait_timeout_while(
                self.st.pumps.lock().unwrap(),
                Duration::from_secs(10),
                |n| *n > 0,
            )
            .unwrap();
        assert!(!timeout.timed_out(), "{} pump(s) still forwarding", *left);
    }

    /// Cuts all connections after `n` more client->server bytes; with `go_down`, refuses new
    /// ones then.
    fn cut_after(&self, n: u64, go_down: bool) {
        self.st.down_on_cut.store(go_down, Ordering::SeqCst);
        let now = self.st.up_bytes.load(Ordering::SeqCst);
        self.st.cut_at.store(now + n, Ordering::SeqCst);
    }

    /// Forwards again on the stalled connections.
    fn unstall(&self) {
        *self.st.stall.lock().unwrap() = false;
        self.st.unstalled.notify_all();
    }

    /// Stalls every connection after `n` more client->server bytes (the pump sets `stall` when
    /// they have passed, so the test needs no thread watching the count).
    fn stall_after(&self, n: u64) {
        let now = self.st.up_bytes.load(Ordering::SeqCst);
        self.st.stall_at.store(now + n, Ordering::SeqCst);
    }

    fn restore(&self) {
        self.st.cut_at.store(u64::MAX, Ordering::SeqCst);
        self.st.down.store(false, Ordering::SeqCst);
    }
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    upstream: Option<Arc<ProxyState>>,
    st_any: Arc<ProxyState>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        drop(
            st_any
                .unstalled
                .wait_while(st_any.stall.lock().unwrap(), |stalled| *stalled)
                .unwrap(),
        );
        if let Some(st) = &upstream {
            let total = st.up_bytes.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if total >= st.stall_at.load(Ordering::SeqCst) {
                st.stall_at.store(u64::MAX, Ordering::SeqCst);
                *st.stall.lock().unwrap() = true;
            }
            if total >= st.cut_at.load(Ordering::SeqCst) {
                st.cut_at.store(u64::MAX, Ordering::SeqCst);
                if st.down_on_cut.load(Ordering::SeqCst) {
                    st.down.store(true, Ordering::SeqCst);
                }
                for s in st.streams.lock().unwrap().drain(..) {
                    let _ = s.shutdown(Shutdown::Both);
                }
                break;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    *st_any.pumps.lock().unwrap() -= 1;
    st_any.pumps_ended.notify_all();
}

/// A known_hosts file for the proxy's port holding the real server's key.
fn proxy_known_hosts(e: &Env, dir: &Path, port: u16) -> PathBuf {
    let (t, k) = server_key(e);
    write_known_hosts(dir, &format!("[127.0.0.1]:{port} {t} {k}"))
}

fn list_names(s: &dyn Store, p: &str) -> Vec<String> {
    s.list(p).unwrap().into_iter().map(|e| e.name).collect()
}

/// The server goes away part-way through an upload: a clear error, no partial file under a
/// final name; once it is back, a rerun (resume) completes the job.
#[test]
fn connection_dropped_mid_upload_then_rerun_completes() {
    let e = need_env!();
    let tmp = tempfile::tempdir().unwrap();
    let proxy = Proxy::start((e.host.clone(), e.port));
    let root = format!("{}/{}", e.dir, unique("drop"));
    let mut c = config(&e, &root);
    c.host = "127.0.0.1".into();
    c.port = proxy.port;
    c.known_hosts = proxy_known_hosts(&e, tmp.path(), proxy.port);
    c.timeout = Duration::from_secs(5);
    let via_proxy = Arc::new(SftpStore::connect(c).unwrap());
    let direct: Arc<dyn Store> = Arc::new(SftpStore::connect(config(&e, &root)).unwrap());
    let id = age::x25519::Identity::generate();
    let enc = Encryption::recipients(&[id.to_public().to_string()]).unwrap();
    let dec = {
        use age::secrecy::ExposeSecret;
        Decryption::identity_text(id.to_string().expose_secret()).unwrap()
    };
    let v = Vault::with_store(via_proxy.clone(), enc, dec);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    let job = v.create_job("cut", day, JobMeta::default()).unwrap();
    let a = integration("A", &bytes(50_000, 1));
    let b = integration("B", &bytes(8 * 1024 * 1024, 2));
    job.store(&a).unwrap();

    proxy.cut_after(2 * 1024 * 1024, true);
    let t0 = Instant::now();
    let err = job.store(&b).unwrap_err();
    let msg = err.to_string();
    eprintln!("dropped upload: {msg}");
    assert!(
        err.is_connection_lost(),
        "transient, for callers that retry: {err:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(30), "fails promptly");
    assert!(
        msg.contains("Integrations/B_01.00.0000.iar.age"),
        "names the file: {msg}"
    );
    assert!(
        msg.contains("connection to the SFTP server lost"),
        "says why: {msg}"
    );
    assert!(
        msg.contains("; retried once: SSH handshake with 127.0.0.1:"),
        "{msg}"
    );
    assert!(proxy.st.down.load(Ordering::SeqCst));

    let jp = job.path().to_string();
    let files = list_names(direct.as_ref(), &format!("{jp}/Integrations"));
    assert!(
        files.contains(&"A_01.00.0000.iar.age".to_string()),
        "{files:?}"
    );
    assert!(
        !files.contains(&"B_01.00.0000.iar.age".to_string()),
        "no partial file under the final name: {files:?}"
    );
    assert_eq!(direct.stat(&format!("{jp}/manifest.json")).unwrap(), None);
    drop(job); // the run gives up

    // While the server is away, operations fail with a clear connection error.
    let msg = v.list_jobs(JobFilter::default()).unwrap_err().to_string();
    assert!(msg.contains(&format!("127.0.0.1:{}", proxy.port)), "{msg}");

    // The server is back: the rerun continues the job and completes it.
    proxy.restore();
    let job = v
        .create_job(
            "cut",
            day,
            JobMeta {
                resume: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(job.entries().len(), 1, "A is kept from the first run");
    job.store(&b).unwrap();
    let m = job.finish().unwrap();
    assert_eq!(m.entries.len(), 2);
    let files = list_names(direct.as_ref(), &format!("{jp}/Integrations"));
    assert_eq!(
        files,
        vec!["A_01.00.0000.iar.age", "B_01.00.0000.iar.age"],
        "temp files cleaned up"
    );
    let r = v.open_job(&m.path).unwrap();
    let rep = r.verify().unwrap();
    assert!(rep.ok(), "{rep:?}");
    let got = r.fetch(&m.entries[1]).unwrap();
    assert_eq!(got.sha256, b.sha256);
    assert!(via_proxy.connections() >= 2, "reconnected");
}

/// A connection dropped while idle is replaced once, transparently.
#[test]
fn reconnects_once_after_idle_drop() {
    let e = need_env!();
    let tmp = tempfile::tempdir().unwrap();
    let proxy = Proxy::start((e.host.clone(), e.port));
    let root = format!("{}/{}", e.dir, unique("idle"));
    let mut c = config(&e, &root);
    c.host = "127.0.0.1".into();
    c.port = proxy.port;
    c.known_hosts = proxy_known_hosts(&e, tmp.path(), proxy.port);
    let s = Arc::new(SftpStore::connect(c.clone()).unwrap());
    let v = Vault::with_store(s.clone(), Encryption::None, Decryption::None);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    let job = v.create_job("idle", day, JobMeta::default()).unwrap();
    job.store(&artifact(ArtifactKind::Lookup, "L1", "", b"one"))
        .unwrap();
    assert_eq!(s.connections(), 1);

    proxy.cut_all();
    job.store(&artifact(ArtifactKind::Lookup, "L2", "", b"two"))
        .unwrap();
    assert_eq!(s.connections(), 2, "one reconnect");
    let m = job.finish().unwrap();
    assert_eq!(m.entries.len(), 2);

    // With keepalive after idle: a short keepalive interval detects the drop before the op.
    c.keepalive = Duration::from_millis(1);
    let s2 = SftpStore::connect(c).unwrap();
    proxy.cut_all();
    assert_eq!(s2.list("").unwrap().len(), 1);
    assert_eq!(s2.connections(), 2);
}

/// A server that accepts the TCP connection but never answers hits the timeout.
#[test]
fn connect_timeout() {
    let e = need_env!();
    let proxy = Proxy::start((e.host.clone(), e.port));
    proxy.st.blackhole.store(true, Ordering::SeqCst);
    let mut c = config(&e, &e.dir);
    c.host = "127.0.0.1".into();
    c.port = proxy.port;
    c.timeout = Duration::from_secs(2);
    let t0 = Instant::now();
    let err = SftpStore::connect(c).unwrap_err();
    let took = t0.elapsed();
    assert!(matches!(err, VaultError::Connect { .. }), "{err}");
    assert!(err.to_string().contains("handshake"), "{err}");
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
        "{took:?}"
    );
}

/// A server that stops answering mid-transfer (connection open, nothing moves) hits the I/O
/// timeout: a clear error, in bounded time, and no file under the final name.
#[test]
fn io_timeout_when_the_server_hangs_mid_upload() {
    let e = need_env!();
    let tmp = tempfile::tempdir().unwrap();
    let proxy = Proxy::start((e.host.clone(), e.port));
    let root = format!("{}/{}", e.dir, unique("stall"));
    let mut c = config(&e, &root);
    c.host = "127.0.0.1".into();
    c.port = proxy.port;
    c.known_hosts = proxy_known_hosts(&e, tmp.path(), proxy.port);
    c.timeout = Duration::from_secs(2);
    let s = Arc::new(SftpStore::connect(c).unwrap());
    let v = Vault::with_store(s.clone(), Encryption::None, Decryption::None);
    let job = v
        .create_job(
            "stall",
            chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
            JobMeta::default(),
        )
        .unwrap();
    let big = integration("H", &bytes(16 * 1024 * 1024, 5));
    // Stalls once the upload is under way (1 MiB of it went through), not after a fixed delay:
    // on a loaded machine the steps before the upload can take longer than any delay, and a
    // stall there is a different failure (a lost connection that cannot be re-opened).
    proxy.stall_after(1024 * 1024);
    let t0 = Instant::now();
    let err = job.store(&big).unwrap_err();
    let took = t0.elapsed();
    let msg = err.to_string();
    eprintln!("stalled upload: {msg} (after {took:?})");
    assert!(err.is_connection_lost(), "{err:?}");
    assert!(msg.contains("Integrations/H_01.00.0000.iar"), "{msg}");
    assert!(
        took < Duration::from_secs(30),
        "bounded by the timeout: {took:?}"
    );
    proxy.unstall();
    let direct = SftpStore::connect(config(&e, &root)).unwrap();
    let files = list_names(&direct, &format!("{}/Integrations", job.path()));
    assert!(
        !files.contains(&"H_01.00.0000.iar".to_string()),
        "{files:?}"
    );
}

/// A connection dropped mid-upload while the server stays reachable: the store reconnects and
/// the upload is sent once more, transparently.
#[test]
fn upload_retried_once_after_a_drop() {
    let e = need_env!();
    let tmp = tempfile::tempdir().unwrap();
    let proxy = Proxy::start((e.host.clone(), e.port));
    let root = format!("{}/{}", e.dir, unique("retry"));
    let mut c = config(&e, &root);
    c.host = "127.0.0.1".into();
    c.port = proxy.port;
    c.known_hosts = proxy_known_hosts(&e, tmp.path(), proxy.port);
    let s = Arc::new(SftpStore::connect(c).unwrap());
    let v = Vault::with_store(s.clone(), Encryption::None, Decryption::None);
    let job = v
        .create_job(
            "retry",
            chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
            JobMeta::default(),
        )
        .unwrap();
    let big = integration("R", &bytes(6 * 1024 * 1024, 8));
    proxy.cut_after(1024 * 1024, false);
    let entry = job.store(&big).expect("retried after the drop");
    assert_eq!(s.connections(), 2);
    assert_eq!(entry.sha256, big.sha256);
    let files = list_names(s.as_ref(), &format!("{}/Integrations", job.path()));
    assert_eq!(files, vec!["R_01.00.0000.iar"], "no leftover temp file");
    let m = job.finish().unwrap();
    assert!(v.open_job(&m.path).unwrap().verify().unwrap().ok());
}

/// Issue 13, finding 8: a key marked `@revoked` is refused even where a plain line for the host
/// holds the same key (as `ssh` does); `@cert-authority` lines are said to be unused.
#[test]
fn revoked_host_key_is_refused() {
    let e = need_env!();
    let tmp = tempfile::tempdir().unwrap();
    let (ktype, kb64) = server_key(&e);
    let plain = format!("[{}]:{} {ktype} {kb64}", e.host, e.port);
    let kh = write_known_hosts(tmp.path(), &format!("@revoked * {ktype} {kb64}\n{plain}"));
    let mut c = config(&e, &e.dir);
    c.known_hosts = kh.clone();
    c.accept_unknown_host_keys = true;
    let err = SftpStore::connect(c.clone()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, VaultError::HostKey { .. }), "{msg}");
    assert!(msg.contains("REVOKED"), "{msg}");
    assert!(msg.contains(&openssh_fingerprint(&e)), "{msg}");
    // OpenSSH agrees: it refuses the same file.
    let ssh = std::process::Command::new("ssh-keygen")
        .args(["-F", &format!("[{}]:{}", e.host, e.port), "-f"])
        .arg(&kh)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&ssh.stdout).contains(&kb64));

    // Without the @revoked line the plain line is accepted.
    std::fs::write(&kh, format!("{plain}\n")).unwrap();
    c.accept_unknown_host_keys = false;
    SftpStore::connect(c.clone()).expect("the plain line is accepted");

    // Only a @cert-authority line for the host: refused, and the message says why.
    std::fs::write(&kh, format!("@cert-authority * {ktype} {kb64}\n")).unwrap();
    let msg = SftpStore::connect(c).unwrap_err().to_string();
    assert!(
        msg.contains("unknown host key") && msg.contains("@cert-authority"),
        "{msg}"
    );
}

/// Many small archives stored from several threads at once go through the pipelined whole-file
/// path (several sessions): every one is there under its final name, no temporary file or
/// journal is left, and the job verifies (decrypting each archive).
#[test]
fn many_small_archives_in_parallel() {
    let e = need_env!();
    let root = format!("{}/{}", e.dir, unique("many"));
    let s = Arc::new(SftpStore::connect(config(&e, &root)).unwrap());
    let id = age::x25519::Identity::generate();
    let enc = Encryption::recipients(&[id.to_public().to_string()]).unwrap();
    let dec = {
        use age::secrecy::ExposeSecret;
        Decryption::identity_text(id.to_string().expose_secret()).unwrap()
    };
    let v = Vault::with_store(s.clone(), enc, dec);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    let job = v.create_job("many", day, JobMeta::default()).unwrap();
    let arts: Vec<_> = (0..40)
        .map(|i| {
            artifact(
                ArtifactKind::Integration,
                &format!("S{i:02}"),
                "01.00.0000",
                &bytes(20_000 + i * 1000, i as u64),
            )
        })
        .collect();
    let next = AtomicU64::new(0);
    std::thread::scope(|sc| {
        for _ in 0..ferry::vault::SFTP_SESSIONS {
            sc.spawn(|| {
                while let Some(a) = arts.get(next.fetch_add(1, Ordering::SeqCst) as usize) {
                    job.store(a).unwrap();
                }
            });
        }
    });
    assert!(
        s.connections() >= 2,
        "several sessions: {}",
        s.connections()
    );
    let m = job.finish().unwrap();
    assert_eq!(m.entries.len(), 40);
    let mut want: Vec<String> = (0..40)
        .map(|i| format!("S{i:02}_01.00.0000.iar.age"))
        .collect();
    want.sort();
    assert_eq!(
        list_names(s.as_ref(), &format!("{}/Integrations", m.path)),
        want
    );
    assert_eq!(s.stat(&format!("{}/.journal", m.path)).unwrap(), None);
    let r = v.open_job(&m.path).unwrap();
    let rep = r.verify().unwrap();
    assert!(rep.ok(), "{rep:?}");
    let got = r.fetch(&m.entries[7]).unwrap();
    assert_eq!(got.sha256, m.entries[7].sha256);
}

/// A pipelined batch the server refuses part of: the files before the refused one are complete,
/// the refused one and those after it are under neither name, and the error names the file.
#[test]
fn put_whole_refused_midway() {
    use ferry::vault::WholeFile;
    let e = need_env!();
    let root = format!("{}/{}", e.dir, unique("whole"));
    let s = SftpStore::connect(config(&e, &root)).unwrap();
    s.create_dir_all("d").unwrap();
    let f = |tmp: &'static str, path: &'static str, data: &'static [u8]| WholeFile {
        tmp,
        path,
        data,
        durable: true,
    };
    s.put_whole(&[f("d/.a.tmp-1", "d/a", b"first")]).unwrap();
    let err = s
        .put_whole(&[
            f("d/.b.tmp-1", "d/b", b"second"),
            f("missing/.c.tmp-1", "missing/c", b"third"),
            f("d/.e.tmp-1", "d/e", b"fourth"),
        ])
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("missing/c") && msg.contains("open"), "{msg}");
    assert!(!err.is_connection_lost(), "{err:?}");
    assert_eq!(list_names(&s, "d"), vec!["a", "b"]);
    assert_eq!(s.read_small("d/b").unwrap(), b"second");
    // rename over an existing file replaces it
    s.put_whole(&[f("d/.a.tmp-2", "d/a", b"replaced")]).unwrap();
    assert_eq!(s.read_small("d/a").unwrap(), b"replaced");
    // a tree of more files than one pipelined batch of removals
    s.create_dir_all("t/sub").unwrap();
    let names: Vec<(String, String)> = (0..600)
        .map(|i| (format!("t/.f{i}.tmp-1"), format!("t/f{i}")))
        .collect();
    let files: Vec<WholeFile<'_>> = names
        .iter()
        .map(|(t, p)| WholeFile {
            tmp: t,
            path: p,
            data: b"x",
            durable: false,
        })
        .collect();
    s.put_whole(&files).unwrap();
    s.write_small("t/sub/g", b"y").unwrap();
    assert_eq!(s.list("t").unwrap().len(), 601);
    s.remove_tree("t").unwrap();
    assert_eq!(s.stat("t").unwrap(), None);
}

/// Many threads wanting a connection at once never open more than [`SFTP_SESSIONS`], with the
/// ones `warm` is opening ahead (each opening is counted before it is made).
#[test]
fn sessions_stay_bounded_when_many_threads_start_at_once() {
    let e = need_env!();
    let s = SftpStore::connect(config(&e, &e.dir)).unwrap();
    assert_eq!(s.connections(), 1);
    s.warm();
    let start = std::sync::Barrier::new(16);
    std::thread::scope(|sc| {
        for _ in 0..16 {
            sc.spawn(|| {
                start.wait();
                for _ in 0..20 {
                    s.stat("").unwrap();
                }
            });
        }
    });
    let n = s.connections() as usize;
    assert!(n <= ferry::vault::SFTP_SESSIONS, "{n} connections");
    // Warming again (some may still be opening) and more work: still within the bound.
    s.warm();
    for _ in 0..20 {
        s.stat("").unwrap();
    }
    let n = s.connections() as usize;
    assert!(n <= ferry::vault::SFTP_SESSIONS, "{n} connections");
}
