//! The SFTP store (`sftp://user@host:port/path`), over libssh2 (`ssh2` crate).
//!
//! Host keys are checked against a known_hosts file; an unknown or changed key is refused with
//! its SHA256 fingerprint and the exact line to add. Authentication by key file (ed25519, RSA,
//! with an optional passphrase) or password. Connect and I/O timeouts, a keepalive before an
//! operation after an idle spell, and one reconnect after a dropped connection.

use std::collections::HashSet;
use std::io::{self, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use sha2::{Digest, Sha256};
use ssh2::{
    CheckResult, ErrorCode, HostKeyType, KnownHostFileKind, OpenFlags, OpenType, Session, Sftp,
};

use super::VaultError;
use super::sftp_pipe::{PipeError, PipeSftp};
use super::store::{DirEntry, Store, StoreWriter, WholeFile};
use crate::config::Secret;

/// Cipher preference: hardware-accelerated AES-GCM first, then the usual OpenSSH defaults.
const CIPHERS: &str = "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr";

/// How to reach and log in to an SFTP server.
#[derive(Clone, Debug)]
pub struct SftpConfig {
    /// Server host name or address.
    pub host: String,
    /// Server port (22).
    pub port: u16,
    /// Login user.
    pub user: String,
    /// The vault's folder on the server (absolute, or relative to the login folder).
    pub root: String,
    /// Private key file (OpenSSH or PEM; ed25519, RSA, ECDSA).
    pub identity_file: Option<PathBuf>,
    /// Passphrase of the private key.
    pub key_passphrase: Option<Secret>,
    /// Password, for password authentication.
    pub password: Option<Secret>,
    /// The known_hosts file host keys are checked against.
    pub known_hosts: PathBuf,
    /// Accept (and log a warning for) a host that is not in known_hosts. A changed key is
    /// always refused.
    pub accept_unknown_host_keys: bool,
    /// Connect and per-operation I/O timeout.
    pub timeout: Duration,
    /// Send a keepalive before an operation when the connection was idle this long.
    pub keepalive: Duration,
}

impl SftpConfig {
    /// A config with defaults: port 22, `~/.ssh/known_hosts`, 30 s timeout, no credentials.
    pub fn new(
        host: impl Into<String>,
        user: impl Into<String>,
        root: impl Into<String>,
    ) -> SftpConfig {
        SftpConfig {
            host: host.into(),
            port: 22,
            user: user.into(),
            root: root.into(),
            identity_file: None,
            key_passphrase: None,
            password: None,
            known_hosts: dirs::home_dir()
                .unwrap_or_default()
                .join(".ssh/known_hosts"),
            accept_unknown_host_keys: false,
            timeout: Duration::from_secs(30),
            keepalive: Duration::from_secs(30),
        }
    }

    /// `sftp://user@host:port/root`.
    pub fn url(&self) -> String {
        let root = if self.root.starts_with('/') {
            self.root.clone()
        } else {
            format!("/~/{}", self.root)
        };
        format!("sftp://{}@{}:{}{}", self.user, self.host, self.port, root)
    }

    /// `host` for port 22, `[host]:port` otherwise (known_hosts notation).
    pub fn host_pattern(&self) -> String {
        if self.port == 22 {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        }
    }
}

struct Conn {
    sess: Session,
    sftp: Sftp,
    /// A second SFTP channel for pipelined whole-file writes, started on first use.
    pipe: Mutex<Option<PipeSftp>>,
    dead: AtomicBool,
    /// Milliseconds since `born` of the last use.
    last_used: AtomicU64,
    born: Instant,
    id: u64,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if !self.dead.load(Ordering::Relaxed) {
            let _ = self.sess.disconnect(None, "ferry: done", None);
        }
    }
}

impl Conn {
    fn touch(&self) {
        self.last_used
            .store(self.born.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    fn idle(&self) -> Duration {
        self.born.elapsed().saturating_sub(Duration::from_millis(
            self.last_used.load(Ordering::Relaxed),
        ))
    }
}

/// Most SSH connections (each with its SFTP session) a store opens at once: parallel stores of
/// many small archives each wait for their own round trips, so they go over several sessions.
pub const SFTP_SESSIONS: usize = 4;

/// A vault on an SFTP server.
pub struct SftpStore {
    pool: Arc<Pool>,
    dirs: Mutex<HashSet<String>>,
}

/// The store's connections: opened on demand when all are busy, or ahead of parallel work
/// ([`Store::warm`]), by threads of their own.
struct Pool {
    cfg: SftpConfig,
    url: String,
    state: Mutex<PoolState>,
    /// Signalled when a connection being opened is ready (or failed).
    opened: Condvar,
    connects: AtomicU64,
}

#[derive(Default)]
struct PoolState {
    /// Live connections, at most [`SFTP_SESSIONS`] with those being opened.
    live: Vec<Arc<Conn>>,
    /// Connections being opened.
    opening: usize,
}

/// Takes back a slot reserved for a connection being opened, and wakes whoever waits for one.
struct Opening<'a>(&'a Pool);

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.opening -= 1;
        drop(st);
        self.0.opened.notify_all();
    }
}

impl std::fmt::Debug for SftpStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SftpStore({})", self.pool.url)
    }
}

/// How opening a connection failed.
enum Handshake {
    /// The server closed the connection during the banner exchange: worth trying again.
    Closed(String),
    Failed(VaultError),
}

impl From<VaultError> for Handshake {
    fn from(e: VaultError) -> Self {
        Handshake::Failed(e)
    }
}

/// True for errors of the SSH session (the connection), as opposed to SFTP status codes
/// (no such file, permission denied...).
fn is_session_error(e: &ssh2::Error) -> bool {
    match e.code() {
        ErrorCode::Session(code) => code != -37, // EAGAIN is not a broken connection
        ErrorCode::SFTP(_) => false,
    }
}

/// OpenSSH-style fingerprint: `SHA256:` + unpadded base64 of the key blob's sha256.
pub fn fingerprint(key: &[u8]) -> String {
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(key))
    )
}

fn key_type_name(t: HostKeyType) -> &'static str {
    match t {
        HostKeyType::Rsa => "ssh-rsa",
        HostKeyType::Dss => "ssh-dss",
        HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        HostKeyType::Ed25519 => "ssh-ed25519",
        HostKeyType::Unknown => "unknown",
    }
}

impl SftpStore {
    /// Connects, checks the host key, logs in and starts SFTP; creates the root folder.
    pub fn connect(cfg: SftpConfig) -> Result<SftpStore, VaultError> {
        let url = cfg.url();
        let s = SftpStore {
            pool: Arc::new(Pool {
                cfg,
                url,
                state: Mutex::new(PoolState::default()),
                opened: Condvar::new(),
                connects: AtomicU64::new(0),
            }),
            dirs: Mutex::new(HashSet::new()),
        };
        s.pool.conn()?;
        s.create_dir_all("")?;
        Ok(s)
    }

    /// The connection settings.
    pub fn config(&self) -> &SftpConfig {
        &self.pool.cfg
    }

    /// The negotiated cipher and MAC (client to server), for diagnostics.
    pub fn negotiated(&self) -> Result<String, VaultError> {
        let c = self.pool.conn()?;
        let m = |t| c.sess.methods(t).unwrap_or("?").to_string();
        Ok(format!(
            "cipher {}, mac {}",
            m(ssh2::MethodType::CryptCs),
            m(ssh2::MethodType::MacCs)
        ))
    }

    /// How many connections were opened so far (1 + reconnects + parallel sessions).
    pub fn connections(&self) -> u64 {
        self.pool.connects.load(Ordering::Relaxed)
    }
}

impl Pool {
    fn connect_err(&self, reason: String) -> VaultError {
        VaultError::Connect {
            vault: self.url.clone(),
            reason,
        }
    }

    /// A new connection, logged in, with SFTP started. A server that closes the connection
    /// during the banner exchange (OpenSSH does so at random beyond `MaxStartups` unauthenticated
    /// connections, e.g. while many clients connect at once) is tried twice more after a pause.
    fn open_connection(&self) -> Result<Conn, VaultError> {
        let mut attempt = 0;
        loop {
            match self.try_connection() {
                Err(Handshake::Closed(m)) if attempt < 2 => {
                    attempt += 1;
                    tracing::debug!(vault = %self.url, "{m}; connecting again");
                    std::thread::sleep(Duration::from_millis(100 + 200 * attempt));
                }
                Err(Handshake::Closed(m)) => return Err(self.connect_err(m)),
                Err(Handshake::Failed(e)) => return Err(e),
                Ok(c) => return Ok(c),
            }
        }
    }

    fn try_connection(&self) -> Result<Conn, Handshake> {
        let cfg = &self.cfg;
        let hp = format!("{}:{}", cfg.host, cfg.port);
        let addrs: Vec<_> = (cfg.host.as_str(), cfg.port)
            .to_socket_addrs()
            .map_err(|e| self.connect_err(format!("cannot resolve {}: {e}", cfg.host)))?
            .collect();
        let mut last = None;
        let mut tcp = None;
        for a in &addrs {
            match TcpStream::connect_timeout(a, cfg.timeout) {
                Ok(t) => {
                    tcp = Some(t);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let tcp = tcp.ok_or_else(|| {
            self.connect_err(format!(
                "cannot connect to {hp}: {}",
                last.map(|e| e.to_string())
                    .unwrap_or_else(|| "no address".into())
            ))
        })?;
        let _ = tcp.set_nodelay(true);
        let mut sess = Session::new()
            .map_err(|e| self.connect_err(format!("cannot start an SSH session: {e}")))?;
        sess.set_tcp_stream(tcp);
        // Prefer AES-GCM (OpenSSL, hardware AES) over libssh2's portable ChaCha20 code; the
        // server picks from this list in order of our preference.
        for t in [ssh2::MethodType::CryptCs, ssh2::MethodType::CryptSc] {
            let _ = sess.method_pref(t, CIPHERS);
        }
        sess.set_timeout(cfg.timeout.as_millis().min(u32::MAX as u128) as u32);
        sess.handshake().map_err(|e| {
            let m = format!("SSH handshake with {hp} failed: {}", e.message());
            match e.code() {
                // the server closed or reset the connection (not a timeout, not a refusal)
                ErrorCode::Session(-2 | -7 | -13 | -43) => Handshake::Closed(m),
                _ => Handshake::Failed(self.connect_err(m)),
            }
        })?;
        self.check_host_key(&sess)?;
        self.authenticate(&sess)?;
        let sftp = sess
            .sftp()
            .map_err(|e| self.connect_err(format!("cannot start SFTP on {hp}: {}", e.message())))?;
        let id = self.connects.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(vault = %self.url, connection = id, "connected");
        let c = Conn {
            sess,
            sftp,
            pipe: Mutex::new(None),
            dead: AtomicBool::new(false),
            last_used: AtomicU64::new(0),
            born: Instant::now(),
            id,
        };
        c.touch();
        Ok(c)
    }

    fn check_host_key(&self, sess: &Session) -> Result<(), VaultError> {
        let cfg = &self.cfg;
        let (key, ktype) = sess
            .host_key()
            .ok_or_else(|| self.connect_err("the server sent no host key".into()))?;
        let fp = fingerprint(key);
        let tname = key_type_name(ktype);
        let line = format!(
            "{} {} {}",
            cfg.host_pattern(),
            tname,
            base64::engine::general_purpose::STANDARD.encode(key)
        );
        let kh_path = cfg.known_hosts.display().to_string();
        let mut kh = sess
            .known_hosts()
            .map_err(|e| self.connect_err(format!("cannot check host keys: {e}")))?;
        let file_exists = cfg.known_hosts.exists();
        let mut marked = Marked::default();
        if file_exists {
            let text = read_known_hosts(&cfg.known_hosts).map_err(|m| VaultError::HostKey {
                vault: self.url.clone(),
                message: format!("cannot read known_hosts file {kh_path}: {m}"),
            })?;
            marked = load_known_hosts(&mut kh, &text);
        }
        let b64 = base64::engine::general_purpose::STANDARD.encode(key);
        if marked.revoked.contains(&b64) {
            return Err(VaultError::HostKey {
                vault: self.url.clone(),
                message: format!(
                    "REVOKED HOST KEY: the server presents {tname} {fp}, which {kh_path} marks @revoked; refusing to connect"
                ),
            });
        }
        let trust = format!(
            "If this is the right server (compare the fingerprint with `ssh-keygen -lf` on the server's host key), add this line to {kh_path}:\n  {line}\nor run: ssh-keyscan -p {} {} >> {kh_path}",
            cfg.port, cfg.host
        );
        match kh.check_port(&cfg.host, cfg.port, key) {
            CheckResult::Match => Ok(()),
            CheckResult::NotFound if cfg.accept_unknown_host_keys => {
                tracing::warn!(
                    vault = %self.url,
                    "accepting the unknown host key {tname} {fp} of {} because accept_unknown_host_keys is set",
                    cfg.host_pattern()
                );
                Ok(())
            }
            CheckResult::NotFound => Err(VaultError::HostKey {
                vault: self.url.clone(),
                message: format!(
                    "unknown host key: {} is not in {kh_path}{}{}; the server presents {tname} {fp}. {trust}",
                    cfg.host_pattern(),
                    if file_exists {
                        ""
                    } else {
                        " (the file does not exist)"
                    },
                    if marked.cert_authorities > 0 {
                        " (its @cert-authority lines are not used: ferry checks plain host keys only, not host certificates)"
                    } else {
                        ""
                    },
                ),
            }),
            CheckResult::Mismatch => Err(VaultError::HostKey {
                vault: self.url.clone(),
                message: format!(
                    "HOST KEY CHANGED: the server presents {tname} {fp}, which differs from the key {kh_path} holds for {}. \
                     Someone may be intercepting the connection. If the server's key was legitimately changed, remove the old \
                     entry (ssh-keygen -R '{}' -f {kh_path}) and add:\n  {line}",
                    cfg.host_pattern(),
                    cfg.host_pattern()
                ),
            }),
            CheckResult::Failure => Err(VaultError::HostKey {
                vault: self.url.clone(),
                message: format!("cannot check the host key {tname} {fp} against {kh_path}"),
            }),
        }
    }

    fn authenticate(&self, sess: &Session) -> Result<(), VaultError> {
        let cfg = &self.cfg;
        let auth_err = |reason: String| VaultError::Auth {
            vault: self.url.clone(),
            user: cfg.user.clone(),
            reason,
        };
        let mut tried = vec![];
        let keys: Vec<PathBuf> = match &cfg.identity_file {
            Some(k) => {
                if !k.is_file() {
                    return Err(auth_err(format!(
                        "the identity_file {} does not exist",
                        k.display()
                    )));
                }
                vec![k.clone()]
            }
            None if cfg.password.is_none() => {
                let home = dirs::home_dir().unwrap_or_default();
                ["id_ed25519", "id_ecdsa", "id_rsa"]
                    .iter()
                    .map(|n| home.join(".ssh").join(n))
                    .filter(|p| p.is_file())
                    .collect()
            }
            None => vec![],
        };
        for k in &keys {
            match sess.userauth_pubkey_file(
                &cfg.user,
                None,
                k,
                cfg.key_passphrase.as_ref().map(|s| s.expose()),
            ) {
                Ok(()) if sess.authenticated() => return Ok(()),
                Ok(()) => tried.push(format!("key {}: not accepted", k.display())),
                Err(e) => tried.push(format!(
                    "key {}: {}",
                    k.display(),
                    describe_auth_error(&e, cfg.key_passphrase.is_some())
                )),
            }
        }
        if let Some(p) = &cfg.password {
            match sess.userauth_password(&cfg.user, p.expose()) {
                Ok(()) if sess.authenticated() => return Ok(()),
                Ok(()) => tried.push("password: not accepted".into()),
                Err(e) => tried.push(format!("password: {}", e.message())),
            }
        }
        if tried.is_empty() {
            return Err(auth_err(
                "no credentials: set identity_file (and passphrase) or password".into(),
            ));
        }
        Err(auth_err(tried.join("; ")))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection for one operation: an idle live one (after an idle spell, checked with a
    /// keepalive round trip), else a new one while fewer than [`SFTP_SESSIONS`] are open or being
    /// opened, else the least busy (libssh2 serialises the operations of one session); with
    /// none live yet, waits for one being opened (and opens one itself if that fails).
    fn conn(&self) -> Result<Arc<Conn>, VaultError> {
        let mut st = self.lock();
        loop {
            st.live.retain(|c| !c.dead.load(Ordering::Relaxed));
            // only the pool holds an idle connection
            let idle = st.live.iter().position(|c| Arc::strong_count(c) == 1);
            if let Some(i) = idle {
                let c = st.live[i].clone();
                // After an idle spell, a cheap round trip both keeps the connection alive and
                // finds out whether it still is.
                if c.idle() < self.cfg.keepalive
                    || c.sftp.realpath(std::path::Path::new(".")).is_ok()
                {
                    c.touch();
                    return Ok(c);
                }
                tracing::warn!(vault = %self.url, "the connection was dropped while idle; reconnecting");
                c.dead.store(true, Ordering::Relaxed);
                st.live.remove(i);
                continue;
            }
            if st.live.len() + st.opening < SFTP_SESSIONS {
                st.opening += 1;
                drop(st);
                let slot = Opening(self);
                let c = Arc::new(self.open_connection()?);
                self.lock().live.push(c.clone());
                drop(slot);
                return Ok(c);
            }
            if let Some(c) = st.live.iter().min_by_key(|c| Arc::strong_count(c)).cloned() {
                c.touch();
                return Ok(c);
            }
            // Every slot is a connection being opened: the first one ready is ours.
            st = self
                .opened
                .wait_timeout(st, self.cfg.timeout)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Opens connections until [`SFTP_SESSIONS`] are open or being opened, each on a thread of
    /// its own, without waiting: parallel work then finds them ready. A failure is left to the
    /// operation that next needs a connection.
    fn warm(self: &Arc<Self>) {
        let mut st = self.lock();
        st.live.retain(|c| !c.dead.load(Ordering::Relaxed));
        while st.live.len() + st.opening < SFTP_SESSIONS {
            st.opening += 1;
            let pool = self.clone();
            let spawned = std::thread::Builder::new()
                .name("ferry-sftp-connect".into())
                .spawn(move || {
                    let slot = Opening(&pool);
                    match pool.open_connection() {
                        Ok(c) => pool.lock().live.push(Arc::new(c)),
                        Err(e) => {
                            tracing::debug!(vault = %pool.url, "opening a connection ahead failed: {e}")
                        }
                    }
                    drop(slot);
                });
            if spawned.is_err() {
                st.opening -= 1;
                break;
            }
        }
    }

    fn mark_dead(&self, c: &Conn) {
        c.dead.store(true, Ordering::Relaxed);
        self.lock().live.retain(|s| s.id != c.id);
    }
}

impl SftpStore {
    /// Runs `f` on the connection; after a connection error, reconnects once and runs it again.
    fn run<T>(
        &self,
        op: &'static str,
        path: &str,
        f: impl Fn(&Conn) -> Result<T, ssh2::Error>,
    ) -> Result<T, VaultError> {
        let c = self.pool.conn()?;
        match f(&c) {
            Ok(v) => Ok(v),
            Err(e) if is_session_error(&e) => {
                self.pool.mark_dead(&c);
                tracing::warn!(vault = %self.pool.url, "connection lost during {op} {path} ({}); reconnecting once", e.message());
                let c = self.pool.conn()?;
                f(&c).map_err(|e| {
                    if is_session_error(&e) {
                        self.pool.mark_dead(&c);
                    }
                    self.err(op, path, e)
                })
            }
            Err(e) => Err(self.err(op, path, e)),
        }
    }

    /// One pipelined batch on `c`'s second channel (started when missing); the channel is
    /// dropped after a failure of the channel itself. `Ok(None)`: the server cannot rename over
    /// an existing file, so the batch must go step by step.
    fn put_pipelined(
        &self,
        c: &Conn,
        batch: &[(String, String, &[u8], bool)],
    ) -> Result<Option<()>, PipeError> {
        let mut pipe = c.pipe.lock().unwrap_or_else(|p| p.into_inner());
        if pipe.is_none() {
            *pipe = Some(PipeSftp::start(&c.sess)?);
        }
        let p = pipe.as_mut().expect("started");
        if !p.renames_over() {
            return Ok(None);
        }
        let r = p.put_whole(batch);
        if matches!(r, Err(PipeError::Io(_))) {
            *pipe = None;
        }
        c.touch();
        r.map(Some)
    }

    fn err(&self, op: &'static str, path: &str, e: ssh2::Error) -> VaultError {
        let reason = if is_session_error(&e) {
            format!("connection to the SFTP server lost: {}", e.message())
        } else {
            e.message().to_string()
        };
        // Connection trouble is reported as such, so that callers can tell it is transient.
        let kind = match e.code() {
            ErrorCode::Session(-9) => io::ErrorKind::TimedOut,
            _ if is_session_error(&e) => io::ErrorKind::ConnectionAborted,
            _ => io::Error::from(e).kind(),
        };
        VaultError::Store {
            op,
            vault: self.pool.url.clone(),
            path: path.to_string(),
            reason,
            kind,
        }
    }

    fn full(&self, path: &str) -> PathBuf {
        let root = self.pool.cfg.root.trim_end_matches('/');
        let path = path.trim_matches('/');
        match (root.is_empty(), path.is_empty()) {
            (true, true) => PathBuf::from(if self.pool.cfg.root.starts_with('/') {
                "/"
            } else {
                "."
            }),
            (true, false) => PathBuf::from(if self.pool.cfg.root.starts_with('/') {
                format!("/{path}")
            } else {
                path.to_string()
            }),
            (false, true) => PathBuf::from(root),
            (false, false) => PathBuf::from(format!("{root}/{path}")),
        }
    }
}

fn describe_auth_error(e: &ssh2::Error, have_passphrase: bool) -> String {
    let m = e.message();
    if m.contains("Unable to extract public key")
        || m.contains("Wrong passphrase")
        || m.contains("unable to open")
    {
        if have_passphrase {
            "cannot read the private key (wrong passphrase, or an unsupported key format)".into()
        } else {
            "cannot read the private key (it may need a passphrase: set `passphrase`)".into()
        }
    } else if matches!(e.code(), ErrorCode::Session(-18) | ErrorCode::Session(-19)) {
        "the server refused this key".into()
    } else {
        m.to_string()
    }
}

/// After a read or write error: probes the session with a cheap request; when that fails too,
/// the connection is gone (marked dead, reported as such).
fn lost(conn: &Conn, e: io::Error) -> io::Error {
    match conn.sftp.stat(std::path::Path::new(".")) {
        Err(pe) if is_session_error(&pe) => {
            conn.dead.store(true, Ordering::Relaxed);
            io::Error::new(
                io::ErrorKind::ConnectionAborted,
                format!("connection to the SFTP server lost ({e})"),
            )
        }
        _ => e,
    }
}

/// Bytes of a file in flight (sent, not yet acknowledged) while writing: libssh2 turns every
/// byte of the buffer given to one `write` call beyond those it already holds into WRITE requests
/// (of about 30 kB, copied into its own packets) sent at once, and returns when the first are
/// acknowledged; handing it as many bytes again plus new ones keeps this many requests outstanding
/// all along, instead of draining the pipeline at the end of every buffer.
const IN_FLIGHT: usize = 4 * 1024 * 1024;

/// Bytes written through `Write` gathered before they are handed to libssh2.
const BATCH: usize = 1024 * 1024;

/// Hands libssh2 `chunk[head..]`, preceded by the `*in_flight` bytes it holds already
/// (`chunk[head - *in_flight..head]`, skipped by libssh2 without being read: it counts what it
/// has turned into requests and not had acknowledged), until at most `keep` bytes are
/// unacknowledged (libssh2 returns when the first of them are). `*in_flight <= head`.
fn hand(
    f: &mut ssh2::File,
    in_flight: &mut usize,
    chunk: &[u8],
    head: usize,
    keep: usize,
) -> io::Result<()> {
    let mut from = head - *in_flight;
    // new bytes are handed over at least once, however few
    let mut handed = chunk.len() == head;
    while !handed || chunk.len() - from > keep {
        match f.write(&chunk[from..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                handed = true;
                from += n;
                // everything handed over is libssh2's now (sent or queued)
                *in_flight = chunk.len() - from;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

struct SftpWriter {
    file: Option<ssh2::File>,
    /// Bytes handed to libssh2 and not yet acknowledged by the server.
    in_flight: usize,
    /// `buf[..IN_FLIGHT]`: room standing for the bytes in flight (never written, never read);
    /// `buf[IN_FLIGHT..]`: bytes written through `Write` and not handed over yet.
    buf: Vec<u8>,
    conn: Arc<Conn>,
}

impl SftpWriter {
    fn new(file: ssh2::File, conn: Arc<Conn>) -> SftpWriter {
        // Zeroed memory from the allocator: the room's pages are never touched, so they take
        // no memory.
        let mut buf = vec![0u8; IN_FLIGHT + BATCH];
        buf.truncate(IN_FLIGHT);
        SftpWriter {
            file: Some(file),
            in_flight: 0,
            buf,
            conn,
        }
    }

    fn lost(&self, e: io::Error) -> io::Error {
        lost(&self.conn, e)
    }

    /// Hands the buffered bytes to libssh2 until at most `keep` bytes are unacknowledged.
    fn push(&mut self, keep: usize) -> io::Result<()> {
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("file already closed"))?;
        let r = hand(f, &mut self.in_flight, &self.buf, IN_FLIGHT, keep);
        self.buf.truncate(IN_FLIGHT);
        r.map_err(|e| self.lost(e))
    }
}

impl Write for SftpWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.file.is_none() {
            return Err(io::Error::other("file already closed"));
        }
        self.buf.extend_from_slice(buf);
        if self.buf.len() - IN_FLIGHT >= BATCH {
            self.push(IN_FLIGHT)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.push(0)
    }
}

impl StoreWriter for SftpWriter {
    fn headroom(&self) -> usize {
        IN_FLIGHT
    }

    /// No copy: libssh2 is handed the chunk itself, its room standing for the bytes in flight.
    fn write_chunk(&mut self, chunk: &[u8], head: usize) -> io::Result<()> {
        if self.buf.len() > IN_FLIGHT {
            self.push(IN_FLIGHT)?;
        }
        if self.in_flight > head {
            self.push(head)?;
        }
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("file already closed"))?;
        hand(f, &mut self.in_flight, chunk, head, IN_FLIGHT).map_err(|e| self.lost(e))
    }

    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.push(0)?;
        let mut f = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("file already closed"))?;
        // fsync@openssh.com where the server has it; ignore "unsupported".
        if let Err(e) = f.fsync()
            && is_session_error(&e)
        {
            return Err(self.lost(io::Error::from(e)));
        }
        f.close().map_err(|e| self.lost(io::Error::from(e)))?;
        self.conn.touch();
        Ok(())
    }
}

struct SftpReader {
    file: BufReader<ssh2::File>,
    conn: Arc<Conn>,
}

impl Read for SftpReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.file.read(buf) {
            Ok(n) => Ok(n),
            Err(e) => Err(lost(&self.conn, e)),
        }
    }
}

const WRITE: i32 = 0o644;

impl Store for SftpStore {
    fn describe(&self) -> String {
        self.pool.url.clone()
    }

    fn warm(&self) {
        self.pool.warm()
    }

    fn create_dir_all(&self, path: &str) -> Result<(), VaultError> {
        let full = self.full(path).to_string_lossy().into_owned();
        if self
            .dirs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&full)
        {
            return Ok(());
        }
        // Walk down from the first part; stat each, create what is missing.
        let mut prefix = String::new();
        let abs = full.starts_with('/');
        for part in full.split('/').filter(|p| !p.is_empty() && *p != ".") {
            if abs || !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            if self
                .dirs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&prefix)
            {
                continue;
            }
            let p = PathBuf::from(&prefix);
            let exists = self.run("create folder", &prefix, |c| match c.sftp.stat(&p) {
                Ok(st) => Ok(Some(st.is_dir())),
                Err(e) if matches!(e.code(), ErrorCode::SFTP(2) | ErrorCode::SFTP(10)) => Ok(None),
                Err(e) => Err(e),
            })?;
            match exists {
                Some(true) => {}
                Some(false) => {
                    return Err(VaultError::Store {
                        op: "create folder",
                        vault: self.pool.url.clone(),
                        path: prefix.clone(),
                        reason: "a file is in the way".into(),
                        kind: io::ErrorKind::AlreadyExists,
                    });
                }
                None => {
                    let r = self.run("create folder", &prefix, |c| c.sftp.mkdir(&p, 0o755));
                    if let Err(e) = r {
                        // Another thread or run may have created it meanwhile.
                        let now = self.run("create folder", &prefix, |c| c.sftp.stat(&p)).ok();
                        if !now.is_some_and(|s| s.is_dir()) {
                            return Err(e);
                        }
                    }
                }
            }
            self.dirs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(prefix.clone());
        }
        Ok(())
    }

    fn create(&self, path: &str) -> Result<Box<dyn StoreWriter>, VaultError> {
        let p = self.full(path);
        let conn = self.pool.conn()?;
        let open = |c: &Conn| {
            c.sftp.open_mode(
                &p,
                OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
                WRITE,
                OpenType::File,
            )
        };
        let (file, conn) = match open(&conn) {
            Ok(f) => (f, conn),
            Err(e) if is_session_error(&e) => {
                self.pool.mark_dead(&conn);
                let c = self.pool.conn()?;
                (open(&c).map_err(|e| self.err("create", path, e))?, c)
            }
            Err(e) => return Err(self.err("create", path, e)),
        };
        Ok(Box::new(SftpWriter::new(file, conn)))
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), VaultError> {
        let (f, t) = (self.full(from), self.full(to));
        let what = format!("{from} -> {to}");
        match self.run("rename", &what, |c| c.sftp.rename(&f, &t, None)) {
            Ok(()) => Ok(()),
            Err(e) => {
                // SFTP v3 (OpenSSH) refuses to rename over an existing file: remove it, retry.
                if self.stat(to)?.is_some() && self.stat(from)?.is_some() {
                    self.remove(to)?;
                    self.run("rename", &what, |c| c.sftp.rename(&f, &t, None))
                } else {
                    Err(e)
                }
            }
        }
    }

    fn open(&self, path: &str) -> Result<Box<dyn Read + Send>, VaultError> {
        let p = self.full(path);
        let conn = self.pool.conn()?;
        let (file, conn) = match conn.sftp.open(&p) {
            Ok(f) => (f, conn),
            Err(e) if is_session_error(&e) => {
                self.pool.mark_dead(&conn);
                let c = self.pool.conn()?;
                (c.sftp.open(&p).map_err(|e| self.err("open", path, e))?, c)
            }
            Err(e) => return Err(self.err("open", path, e)),
        };
        Ok(Box::new(SftpReader {
            file: BufReader::with_capacity(1024 * 1024, file),
            conn,
        }))
    }

    fn list(&self, path: &str) -> Result<Vec<DirEntry>, VaultError> {
        let p = self.full(path);
        let entries = self.run("list", path, |c| c.sftp.readdir(&p))?;
        let mut out: Vec<DirEntry> = entries
            .into_iter()
            .filter_map(|(p, st)| {
                let name = p.file_name()?.to_string_lossy().into_owned();
                Some(DirEntry {
                    name,
                    is_dir: st.is_dir(),
                    size: if st.is_dir() { 0 } else { st.size.unwrap_or(0) },
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn stat(&self, path: &str) -> Result<Option<u64>, VaultError> {
        let p = self.full(path);
        self.run("stat", path, |c| match c.sftp.stat(&p) {
            Ok(st) => Ok(Some(st.size.unwrap_or(0))),
            Err(e) if matches!(e.code(), ErrorCode::SFTP(2) | ErrorCode::SFTP(10)) => Ok(None),
            Err(e) => Err(e),
        })
    }

    fn remove(&self, path: &str) -> Result<(), VaultError> {
        let p = self.full(path);
        self.run("remove", path, |c| c.sftp.unlink(&p))
    }

    fn remove_dir(&self, path: &str) -> Result<(), VaultError> {
        let p = self.full(path);
        self.run("remove folder", path, |c| c.sftp.rmdir(&p))?;
        let full = p.to_string_lossy().into_owned();
        self.dirs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|d| !(d == &full || d.starts_with(&format!("{full}/"))));
        Ok(())
    }

    /// The files of the tree are removed with pipelined requests (a round trip for hundreds of
    /// files instead of one each), then its folders, deepest first.
    fn remove_tree(&self, path: &str) -> Result<(), VaultError> {
        let (mut files, mut dirs) = (Vec::new(), vec![path.trim_end_matches('/').to_string()]);
        let mut i = 0;
        while i < dirs.len() {
            let d = dirs[i].clone();
            for e in self.list(&d)? {
                let p = format!("{d}/{}", e.name);
                if e.is_dir {
                    dirs.push(p);
                } else {
                    files.push(p);
                }
            }
            i += 1;
        }
        for batch in files.chunks(super::sftp_pipe::REMOVE_BATCH) {
            let full: Vec<String> = batch
                .iter()
                .map(|f| self.full(f).to_string_lossy().into_owned())
                .collect();
            let c = self.pool.conn()?;
            let r = {
                let mut pipe = c.pipe.lock().unwrap_or_else(|p| p.into_inner());
                let r = match pipe.as_mut() {
                    Some(p) => p.remove_files(&full),
                    None => PipeSftp::start(&c.sess)
                        .map_err(PipeError::Io)
                        .and_then(|p| pipe.insert(p).remove_files(&full)),
                };
                if matches!(r, Err(PipeError::Io(_))) {
                    *pipe = None;
                }
                r
            };
            match r {
                Ok(()) => {}
                Err(PipeError::Refused { .. }) | Err(PipeError::Io(_)) => {
                    // one at a time, for the precise error (and the reconnect of `run`)
                    for f in batch {
                        if self.stat(f)?.is_some() {
                            self.remove(f)?;
                        }
                    }
                }
            }
        }
        for d in dirs.iter().rev() {
            self.remove_dir(d)?;
        }
        Ok(())
    }

    /// Pipelined: all OPENs of the batch, then all WRITE, fsync, CLOSE and RENAME requests
    /// (two round trips for the batch instead of five per file). After a refused request, the
    /// failed file and the ones after it are removed under both names.
    fn put_whole(&self, files: &[WholeFile<'_>]) -> Result<(), VaultError> {
        let batch: Vec<(String, String, &[u8], bool)> = files
            .iter()
            .map(|f| {
                (
                    self.full(f.tmp).to_string_lossy().into_owned(),
                    self.full(f.path).to_string_lossy().into_owned(),
                    f.data,
                    f.durable,
                )
            })
            .collect();
        let first = files.first().map(|f| f.path).unwrap_or("");
        let mut retried = false;
        loop {
            let c = self.pool.conn()?;
            match self.put_pipelined(&c, &batch) {
                Ok(Some(())) => return Ok(()),
                Ok(None) => return super::store::put_each(self, files),
                Err(PipeError::Refused {
                    index,
                    op,
                    code,
                    message,
                }) => {
                    for f in &files[index..] {
                        let _ = self.remove(f.tmp);
                        let _ = self.remove(f.path);
                    }
                    let kind = match code {
                        2 => io::ErrorKind::NotFound,
                        3 => io::ErrorKind::PermissionDenied,
                        6 | 7 => io::ErrorKind::ConnectionAborted,
                        8 => io::ErrorKind::Unsupported,
                        _ => io::ErrorKind::Other,
                    };
                    return Err(VaultError::Store {
                        op: "write",
                        vault: self.pool.url.clone(),
                        path: files[index].path.to_string(),
                        reason: format!(
                            "the server refused the {op} (SFTP status {code}: {message})"
                        ),
                        kind,
                    });
                }
                Err(PipeError::Io(e)) => {
                    let e = lost(&c, e);
                    let gone = e.kind() == io::ErrorKind::ConnectionAborted;
                    if gone {
                        self.pool.mark_dead(&c);
                        if !retried {
                            retried = true;
                            tracing::warn!(vault = %self.pool.url, "connection lost while writing {first} ({e}); reconnecting once");
                            continue;
                        }
                    }
                    return Err(VaultError::store("write", self.pool.url.clone(), first, &e));
                }
            }
        }
    }

    fn create_exclusive(&self, path: &str, contents: &[u8]) -> Result<bool, VaultError> {
        let p = self.full(path);
        let r = self.run("create", path, |c| {
            c.sftp.open_mode(
                &p,
                OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUSIVE,
                WRITE,
                OpenType::File,
            )
        });
        let mut f = match r {
            Ok(f) => f,
            Err(e) => {
                // OpenSSH answers a plain FAILURE when the file exists.
                if self.stat(path)?.is_some() {
                    return Ok(false);
                }
                return Err(e);
            }
        };
        let werr = |e: io::Error| VaultError::store("write", self.pool.url.clone(), path, &e);
        f.write_all(contents).map_err(werr)?;
        let _ = f.fsync();
        f.close().map_err(|e| self.err("write", path, e))?;
        Ok(true)
    }
}

/// What the marker lines of a known_hosts file say (libssh2 does not read markers).
#[derive(Default, Debug)]
struct Marked {
    /// Base64 key blobs of `@revoked` lines: never accepted, for any host.
    revoked: Vec<String>,
    /// How many `@cert-authority` lines there are (not used; said when a host is unknown).
    cert_authorities: usize,
}

/// The largest known_hosts file read.
const MAX_KNOWN_HOSTS: u64 = 16 * 1024 * 1024;

fn read_known_hosts(p: &Path) -> Result<String, String> {
    let f = std::fs::File::open(p).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    f.take(MAX_KNOWN_HOSTS + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > MAX_KNOWN_HOSTS {
        return Err("larger than 16 MiB".into());
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Feeds the plain lines of a known_hosts file to libssh2, as OpenSSH reads them: comments and
/// blank lines skipped, a line libssh2 cannot parse skipped, `@revoked` and `@cert-authority`
/// lines kept apart (libssh2 would take the marker for a host name).
fn load_known_hosts(kh: &mut ssh2::KnownHosts, text: &str) -> Marked {
    let mut m = Marked::default();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let mut words = t.split_whitespace();
        match words.next() {
            Some(w) if w.eq_ignore_ascii_case("@revoked") => {
                // @revoked HOSTS KEYTYPE BASE64 [comment]
                if let Some(b64) = words.nth(2) {
                    m.revoked.push(b64.to_string());
                }
            }
            Some(w) if w.eq_ignore_ascii_case("@cert-authority") => m.cert_authorities += 1,
            Some(w) if w.starts_with('@') => {
                tracing::warn!("known_hosts: unknown marker {w}: line ignored");
            }
            _ => {
                if let Err(e) = kh.read_str(t, KnownHostFileKind::OpenSSH) {
                    tracing::warn!(
                        "known_hosts: a line libssh2 cannot read is ignored: {}",
                        e.message()
                    );
                }
            }
        }
    }
    m
}

/// Builds an [`SftpConfig`] from `sftp://user@host:port/path`.
pub(crate) fn config_from_url(u: &url::Url) -> Result<SftpConfig, String> {
    let host = u
        .host_str()
        .ok_or("the URL has no host")?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if u.password().is_some() {
        return Err(
            "do not put a password in the URL; use the `password` setting with env: or file:"
                .into(),
        );
    }
    let user = percent_encoding::percent_decode_str(u.username())
        .decode_utf8_lossy()
        .into_owned();
    if user.is_empty() {
        return Err("the URL has no user (sftp://user@host:port/path)".into());
    }
    let path = percent_encoding::percent_decode_str(u.path())
        .decode_utf8_lossy()
        .into_owned();
    let root = match path.strip_prefix("/~") {
        Some(rest) => rest.trim_start_matches('/').to_string(),
        None if path.is_empty() => String::new(),
        None => path,
    };
    let mut c = SftpConfig::new(host, user, root);
    c.port = u.port().unwrap_or(22);
    Ok(c)
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<SftpStore>();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parsing() {
        let c =
            config_from_url(&url::Url::parse("sftp://bob@host.example:2222/srv/backups").unwrap())
                .unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.user.as_str(), c.root.as_str()),
            ("host.example", 2222, "bob", "/srv/backups")
        );
        assert_eq!(c.url(), "sftp://bob@host.example:2222/srv/backups");
        assert_eq!(c.host_pattern(), "[host.example]:2222");
        let c = config_from_url(&url::Url::parse("sftp://bob@h/~/bk").unwrap()).unwrap();
        assert_eq!((c.port, c.root.as_str()), (22, "bk"));
        assert_eq!(c.host_pattern(), "h");
        assert!(
            config_from_url(&url::Url::parse("sftp://bob:pw@h/x").unwrap())
                .unwrap_err()
                .contains("password")
        );
        assert!(
            config_from_url(&url::Url::parse("sftp://h/x").unwrap())
                .unwrap_err()
                .contains("no user")
        );
    }

    #[test]
    fn fingerprint_is_openssh_style() {
        // ssh-keygen -lf prints SHA256 + unpadded base64 of sha256(key blob).
        let fp = fingerprint(b"abc");
        assert_eq!(fp, "SHA256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0");
    }
}
