//! The object-storage store (`s3://bucket/prefix`), over the `object_store` crate's S3 client.
//!
//! It speaks the S3 API, so it works with AWS S3, OCI Object Storage's S3-compatible endpoint
//! (`https://NAMESPACE.compat.objectstorage.REGION.oraclecloud.com`, path-style) and self-hosted
//! servers (Garage, MinIO, Ceph RGW). Object stores have no folders: a "folder" is a key prefix,
//! creating one does nothing, and it exists while any object lies below it.
//!
//! Every request body is signed with its sha256 (SigV4 signed payload), so the server refuses a
//! body damaged on the way; files larger than one part are sent as a multipart upload, part by
//! part, so a big archive is never held in memory whole. A rename is a server-side copy and a
//! delete. The store is blocking like every [`Store`]: it runs its requests on a small private
//! tokio runtime and waits for them, so it can be called from any thread.

use std::future::Future;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as KeyPath;
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
    WriteMultipart,
};
use tokio::sync::mpsc;

use super::VaultError;
use super::store::{DirEntry, Store, StoreWriter};
use crate::config::Secret;

/// The smallest part S3 accepts (except the last one).
const MIN_PART: usize = 5 * 1024 * 1024;
/// Parts of one upload sent at the same time.
const PART_CONCURRENCY: usize = 2;

/// How to reach an S3-compatible bucket.
#[derive(Clone, Debug)]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// The vault's key prefix inside the bucket (no leading or trailing `/`; may be empty).
    pub prefix: String,
    /// The service endpoint (`https://...`); `None` for AWS S3 in `region`.
    pub endpoint: Option<String>,
    /// The signing region (`us-east-1`, `eu-frankfurt-1`, `garage`...).
    pub region: String,
    /// Path-style requests (`ENDPOINT/BUCKET/KEY`) rather than virtual-hosted ones
    /// (`BUCKET.ENDPOINT/KEY`). OCI and most self-hosted servers need path style.
    pub path_style: bool,
    /// Access key id; with no keys, the usual AWS sources (environment, instance role) are used.
    pub access_key_id: Option<Secret>,
    /// Secret access key.
    pub secret_access_key: Option<Secret>,
    /// Session token for temporary credentials.
    pub session_token: Option<Secret>,
    /// Timeout of one request (a part of a multipart upload is one request).
    pub timeout: Duration,
    /// Multipart part size in bytes (at least 5 MiB); smaller files are sent in one request.
    pub part_size: usize,
}

impl S3Config {
    /// A config with defaults: AWS region `us-east-1`, virtual-hosted style, 120 s timeout,
    /// 8 MiB parts.
    pub fn new(bucket: impl Into<String>, prefix: impl Into<String>) -> S3Config {
        S3Config {
            bucket: bucket.into(),
            prefix: prefix.into().trim_matches('/').to_string(),
            endpoint: None,
            region: "us-east-1".into(),
            path_style: false,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            timeout: Duration::from_secs(120),
            part_size: 8 * 1024 * 1024,
        }
    }

    /// `s3://bucket/prefix`, plus the endpoint when one is set (never a secret).
    pub fn url(&self) -> String {
        let base = if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        };
        match &self.endpoint {
            Some(e) => format!("{base} at {e}"),
            None => base,
        }
    }
}

/// Reads bucket and prefix from `s3://bucket/prefix`.
pub(crate) fn config_from_url(url: &url::Url) -> Result<S3Config, String> {
    let bucket = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("`{url}` names no bucket (use s3://bucket/prefix)"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "put no credentials in the URL; use access_key_id and secret_access_key".into(),
        );
    }
    let prefix = percent_encoding::percent_decode_str(url.path())
        .decode_utf8()
        .map_err(|_| format!("`{url}`: the prefix is not UTF-8"))?;
    if prefix.split('/').any(|p| p == "." || p == "..") {
        return Err(format!("`{url}`: the prefix may not contain `.` or `..`"));
    }
    Ok(S3Config::new(bucket, prefix.as_ref()))
}

/// A vault in an S3-compatible bucket.
pub struct S3Store {
    cfg: S3Config,
    url: String,
    client: Arc<AmazonS3>,
    rt: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3Store({})", self.url)
    }
}

impl Drop for S3Store {
    fn drop(&mut self) {
        // Never blocks, so the store may be dropped anywhere (even inside async code).
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Maps an object_store error to the io error kind the vault code tests for.
fn io_error(e: object_store::Error) -> io::Error {
    use object_store::Error as E;
    let kind = match &e {
        E::NotFound { .. } => io::ErrorKind::NotFound,
        E::AlreadyExists { .. } => io::ErrorKind::AlreadyExists,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => io::ErrorKind::PermissionDenied,
        E::InvalidPath { .. } => io::ErrorKind::InvalidInput,
        _ => io::ErrorKind::Other,
    };
    // object_store's messages name the key and the HTTP status, never the credentials.
    io::Error::new(kind, e.to_string())
}

fn builder(cfg: &S3Config) -> AmazonS3Builder {
    let mut b = if cfg.access_key_id.is_some() {
        AmazonS3Builder::new()
    } else {
        AmazonS3Builder::from_env()
    };
    // Client options replace the builder's, so `allow_http` goes here rather than on the builder.
    let mut client = ClientOptions::new()
        .with_timeout(cfg.timeout)
        .with_connect_timeout(cfg.timeout.min(Duration::from_secs(15)));
    b = b
        .with_bucket_name(&cfg.bucket)
        .with_region(&cfg.region)
        .with_virtual_hosted_style_request(!cfg.path_style);
    if let Some(e) = &cfg.endpoint {
        b = b.with_endpoint(e.trim_end_matches('/'));
        client = client.with_allow_http(e.starts_with("http://"));
    }
    if let Some(k) = &cfg.access_key_id {
        b = b.with_access_key_id(k.expose());
    }
    if let Some(s) = &cfg.secret_access_key {
        b = b.with_secret_access_key(s.expose());
    }
    if let Some(t) = &cfg.session_token {
        b = b.with_token(t.expose());
    }
    let retry = RetryConfig {
        max_retries: 3,
        retry_timeout: cfg.timeout,
        ..Default::default()
    };
    b.with_retry(retry).with_client_options(client)
}

impl S3Store {
    /// Builds the client and checks that the bucket answers (a listing of the prefix).
    pub fn connect(mut cfg: S3Config) -> Result<S3Store, VaultError> {
        let url = cfg.url();
        let config_err = |key: &str, problem: String| VaultError::Config {
            key: key.into(),
            problem,
        };
        if cfg.access_key_id.is_some() != cfg.secret_access_key.is_some() {
            return Err(config_err(
                "secret_access_key",
                "set both access_key_id and secret_access_key, or neither".into(),
            ));
        }
        cfg.part_size = cfg.part_size.max(MIN_PART);
        let client = builder(&cfg)
            .build()
            .map_err(|e| config_err("url", format!("{url}: {e}")))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("vault-s3")
            .enable_all()
            .build()
            .map_err(|e| VaultError::Connect {
                vault: url.clone(),
                reason: format!("cannot start the I/O runtime: {e}"),
            })?;
        let s = S3Store {
            cfg,
            url,
            client: Arc::new(client),
            rt: Some(rt),
        };
        s.list("").map_err(|e| VaultError::Connect {
            vault: s.url.clone(),
            reason: format!("the bucket does not answer: {e}"),
        })?;
        Ok(s)
    }

    /// The connection settings.
    pub fn config(&self) -> &S3Config {
        &self.cfg
    }

    fn key(&self, path: &str) -> KeyPath {
        KeyPath::from_iter(
            self.cfg
                .prefix
                .split('/')
                .chain(path.split('/'))
                .filter(|p| !p.is_empty()),
        )
    }

    fn err(&self, op: &'static str, path: &str, e: &io::Error) -> VaultError {
        VaultError::store(op, self.url.clone(), path, e)
    }

    /// Runs a request on the store's runtime and waits for it (from any thread).
    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = object_store::Result<T>> + Send + 'static,
    ) -> io::Result<T> {
        let Some(rt) = &self.rt else {
            return Err(io::Error::other("the store is closed"));
        };
        let h = rt.spawn(fut);
        match futures::executor::block_on(h) {
            Ok(r) => r.map_err(io_error),
            Err(e) => Err(io::Error::other(format!("request task failed: {e}"))),
        }
    }

    fn handle(&self) -> io::Result<tokio::runtime::Handle> {
        self.rt
            .as_ref()
            .map(|r| r.handle().clone())
            .ok_or_else(|| io::Error::other("the store is closed"))
    }

    /// True when some object lies below `path/` (a "folder" exists).
    fn has_children(&self, path: &str) -> io::Result<bool> {
        let c = self.client.clone();
        let k = self.key(path);
        self.run(async move {
            let mut s = c.list(Some(&k));
            Ok(s.next().await.transpose()?.is_some())
        })
    }
}

/// Decodes one key segment as object_store percent-encoded it.
fn decode(part: &str) -> String {
    percent_encoding::percent_decode_str(part)
        .decode_utf8_lossy()
        .into_owned()
}

impl Store for S3Store {
    fn describe(&self) -> String {
        self.url.clone()
    }

    fn create_dir_all(&self, _path: &str) -> Result<(), VaultError> {
        Ok(())
    }

    fn create(&self, path: &str) -> Result<Box<dyn StoreWriter>, VaultError> {
        let h = self.handle().map_err(|e| self.err("create", path, &e))?;
        Ok(Box::new(S3Writer {
            client: self.client.clone(),
            rt: h,
            key: self.key(path),
            part_size: self.cfg.part_size,
            buf: Vec::new(),
            upload: None,
        }))
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), VaultError> {
        let (c, f, t) = (self.client.clone(), self.key(from), self.key(to));
        self.run(async move {
            c.copy(&f, &t).await?;
            c.delete(&f).await
        })
        .map_err(|e| self.err("rename", &format!("{from} -> {to}"), &e))
    }

    fn open(&self, path: &str) -> Result<Box<dyn Read + Send>, VaultError> {
        let (c, k) = (self.client.clone(), self.key(path));
        let res = self
            .run(async move { c.get(&k).await })
            .map_err(|e| self.err("open", path, &e))?;
        let h = self.handle().map_err(|e| self.err("open", path, &e))?;
        // A task pumps the body into a small channel; the reader takes chunks off it.
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
        h.spawn(async move {
            let mut s = res.into_stream();
            while let Some(chunk) = s.next().await {
                let stop = chunk.is_err();
                if tx.send(chunk.map_err(io_error)).await.is_err() || stop {
                    break;
                }
            }
        });
        Ok(Box::new(S3Reader {
            rx,
            cur: Bytes::new(),
            done: false,
        }))
    }

    fn list(&self, path: &str) -> Result<Vec<DirEntry>, VaultError> {
        let (c, k) = (self.client.clone(), self.key(path));
        let res = self
            .run(async move { c.list_with_delimiter(Some(&k)).await })
            .map_err(|e| self.err("list", path, &e))?;
        let mut out: Vec<DirEntry> = res
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(decode))
            .map(|name| DirEntry {
                name,
                is_dir: true,
                size: 0,
            })
            .collect();
        out.extend(res.objects.iter().filter_map(|o| {
            o.location.filename().map(|n| DirEntry {
                name: decode(n),
                is_dir: false,
                size: o.size,
            })
        }));
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.dedup_by(|a, b| a.name == b.name);
        Ok(out)
    }

    fn stat(&self, path: &str) -> Result<Option<u64>, VaultError> {
        let (c, k) = (self.client.clone(), self.key(path));
        match self.run(async move { c.head(&k).await }) {
            Ok(m) => Ok(Some(m.size)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Not an object: a "folder" when something lies below it.
                match self.has_children(path) {
                    Ok(true) => Ok(Some(0)),
                    Ok(false) => Ok(None),
                    Err(e) => Err(self.err("stat", path, &e)),
                }
            }
            Err(e) => Err(self.err("stat", path, &e)),
        }
    }

    fn remove(&self, path: &str) -> Result<(), VaultError> {
        let (c, k) = (self.client.clone(), self.key(path));
        self.run(async move { c.delete(&k).await })
            .map_err(|e| self.err("remove", path, &e))
    }

    fn remove_dir(&self, _path: &str) -> Result<(), VaultError> {
        // Folders are key prefixes: one disappears with its last object.
        Ok(())
    }

    fn create_exclusive(&self, path: &str, contents: &[u8]) -> Result<bool, VaultError> {
        // A conditional PUT (If-None-Match: *) where the server supports it; the look first
        // covers servers that ignore the condition.
        if self.stat(path)?.is_some() {
            return Ok(false);
        }
        let (c, k) = (self.client.clone(), self.key(path));
        let payload = PutPayload::from(contents.to_vec());
        let opts = PutOptions::from(PutMode::Create);
        match self.run(async move { c.put_opts(&k, payload, opts).await }) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(self.err("create", path, &e)),
        }
    }
}

/// Streams a GET body: chunks arrive from a task on the store's runtime.
struct S3Reader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
    done: bool,
}

impl Read for S3Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            if self.done {
                return Ok(0);
            }
            match futures::executor::block_on(self.rx.recv()) {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                None => self.done = true,
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

enum Part {
    Data(Bytes),
    Finish,
}

/// A multipart upload running on the store's runtime, fed part by part.
struct Upload {
    tx: mpsc::Sender<Part>,
    task: tokio::task::JoinHandle<object_store::Result<()>>,
}

/// Buffers up to one part; a file that stays smaller is sent with a single PUT, a bigger one as
/// a multipart upload (at most a few parts in memory). Dropped unfinished, it aborts the upload.
struct S3Writer {
    client: Arc<AmazonS3>,
    rt: tokio::runtime::Handle,
    key: KeyPath,
    part_size: usize,
    buf: Vec<u8>,
    upload: Option<Upload>,
}

async fn run_upload(
    client: Arc<AmazonS3>,
    key: KeyPath,
    part_size: usize,
    mut rx: mpsc::Receiver<Part>,
) -> object_store::Result<()> {
    let up = client.put_multipart(&key).await?;
    let mut w = WriteMultipart::new_with_chunk_size(up, part_size);
    loop {
        match rx.recv().await {
            Some(Part::Data(b)) => {
                if let Err(e) = w.wait_for_capacity(PART_CONCURRENCY).await {
                    let _ = w.abort().await;
                    return Err(e);
                }
                w.put(b);
            }
            Some(Part::Finish) => return w.finish().await.map(|_| ()),
            None => {
                // The writer was dropped without finish: abandon the upload.
                let _ = w.abort().await;
                return Err(object_store::Error::Generic {
                    store: "S3",
                    source: "upload abandoned".into(),
                });
            }
        }
    }
}

impl S3Writer {
    fn send(&mut self, part: Part) -> io::Result<()> {
        if self.upload.is_none() {
            let (tx, rx) = mpsc::channel(1);
            let task = self.rt.spawn(run_upload(
                self.client.clone(),
                self.key.clone(),
                self.part_size,
                rx,
            ));
            self.upload = Some(Upload { tx, task });
        }
        let Some(up) = &self.upload else {
            return Err(io::Error::other("no upload"));
        };
        if futures::executor::block_on(up.tx.send(part)).is_ok() {
            return Ok(());
        }
        // The upload task stopped: report why.
        let Some(up) = self.upload.take() else {
            return Err(io::Error::other("no upload"));
        };
        drop(up.tx);
        match futures::executor::block_on(up.task) {
            Ok(Err(e)) => Err(io_error(e)),
            _ => Err(io::Error::other("the upload stopped")),
        }
    }
}

impl Write for S3Writer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= self.part_size {
            let chunk = std::mem::take(&mut self.buf);
            self.send(Part::Data(Bytes::from(chunk)))?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl StoreWriter for S3Writer {
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        let rest = Bytes::from(std::mem::take(&mut self.buf));
        if self.upload.is_none() {
            let (c, k) = (self.client.clone(), self.key.clone());
            let h = self
                .rt
                .spawn(async move { c.put(&k, PutPayload::from(rest)).await });
            return match futures::executor::block_on(h) {
                Ok(r) => r.map(|_| ()).map_err(io_error),
                Err(e) => Err(io::Error::other(format!("request task failed: {e}"))),
            };
        }
        if !rest.is_empty() {
            self.send(Part::Data(rest))?;
        }
        self.send(Part::Finish)?;
        let Some(up) = self.upload.take() else {
            return Err(io::Error::other("no upload"));
        };
        match futures::executor::block_on(up.task) {
            Ok(r) => r.map_err(io_error),
            Err(e) => Err(io::Error::other(format!("upload task failed: {e}"))),
        }
    }
}
