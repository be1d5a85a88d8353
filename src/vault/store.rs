//! Storage back ends for vaults: a small blocking, object-safe [`Store`] trait and the local
//! [`FileStore`]. Paths given to a store are relative to its root and use `/` separators.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::VaultError;

/// A small file to write whole ([`Store::put_whole`]): `data` under the temporary name `tmp`,
/// then renamed to `path`.
#[derive(Clone, Copy, Debug)]
pub struct WholeFile<'a> {
    /// The temporary name, in the same folder as `path`.
    pub tmp: &'a str,
    /// The final name.
    pub path: &'a str,
    /// The whole contents.
    pub data: &'a [u8],
    /// Made durable before the rename (fsync where the back end has it). A file whose loss in a
    /// crash costs nothing but work (a journal entry: the archive is stored again) can skip it.
    pub durable: bool,
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The file or folder name (no path).
    pub name: String,
    /// True for a folder.
    pub is_dir: bool,
    /// Size in bytes (0 for folders).
    pub size: u64,
}

/// A file being written to a store. Dropping it without calling [`StoreWriter::finish`] abandons
/// the file (it stays under its temporary name and is cleaned up by the caller).
pub trait StoreWriter: Write + Send {
    /// Flushes, makes the data durable where the back end can, and closes the file.
    fn finish(self: Box<Self>) -> io::Result<()>;
    /// Room a chunk given to [`StoreWriter::write_chunk`] should have before its data (0: none).
    fn headroom(&self) -> usize {
        0
    }
    /// Writes `chunk[head..]`. `chunk[..head]` is room the writer may hand on without its
    /// contents being used (the SFTP writer's libssh2 skips the bytes it has in flight there, so
    /// no byte is copied); with less room than [`StoreWriter::headroom`] it copies instead.
    fn write_chunk(&mut self, chunk: &[u8], head: usize) -> io::Result<()> {
        self.write_all(&chunk[head..])
    }
}

/// A blocking storage back end. Every method takes a path relative to the store's root
/// (`OIC_Backups/2026/11/26/job/manifest.json`). Implementations are `Send + Sync` and may be
/// called from several threads at once.
pub trait Store: Send + Sync {
    /// The store's URL, without secrets.
    fn describe(&self) -> String;
    /// Creates a folder and all its parents; succeeds when it exists already.
    fn create_dir_all(&self, path: &str) -> Result<(), VaultError>;
    /// Creates (or truncates) a file for writing.
    fn create(&self, path: &str) -> Result<Box<dyn StoreWriter>, VaultError>;
    /// Renames `from` to `to`, replacing `to` if it exists. Atomic where the back end allows.
    fn rename(&self, from: &str, to: &str) -> Result<(), VaultError>;
    /// Opens a file for reading.
    fn open(&self, path: &str) -> Result<Box<dyn Read + Send>, VaultError>;
    /// Lists a folder (without `.` and `..`), sorted by name.
    fn list(&self, path: &str) -> Result<Vec<DirEntry>, VaultError>;
    /// The size of a file, or `None` when it does not exist.
    fn stat(&self, path: &str) -> Result<Option<u64>, VaultError>;
    /// Removes a file.
    fn remove(&self, path: &str) -> Result<(), VaultError>;
    /// Removes an empty folder.
    fn remove_dir(&self, path: &str) -> Result<(), VaultError>;
    /// Creates a file only if it does not exist yet, with the given contents. Returns `false`
    /// (and changes nothing) when the file exists.
    fn create_exclusive(&self, path: &str, contents: &[u8]) -> Result<bool, VaultError>;

    /// Makes `to` another name of the existing file `from` (a hard link: no bytes are copied);
    /// fails when `to` exists. The new name is durable once its folder is synced
    /// ([`Store::sync_dir`]). Returns `false`, changing nothing, when the back end cannot (the
    /// caller then records a reference to `from` instead). Back ends without hard links keep
    /// this default.
    fn hard_link(&self, from: &str, to: &str) -> Result<bool, VaultError> {
        let _ = (from, to);
        Ok(false)
    }

    /// Makes the names created in the folder `path` durable (the file back end syncs the
    /// folder; the others have nothing to do). Called once per folder before a job's manifest is
    /// written, for names made without a sync of their own ([`Store::hard_link`]).
    fn sync_dir(&self, path: &str) -> Result<(), VaultError> {
        let _ = path;
        Ok(())
    }

    /// Gets ready for parallel work without waiting for it: a store with connections opens the
    /// ones it will want (SFTP: up to [`super::SFTP_SESSIONS`]) in the background. Default:
    /// nothing.
    fn warm(&self) {}

    /// Reads a small file entirely.
    fn read_small(&self, path: &str) -> Result<Vec<u8>, VaultError> {
        let mut r = self.open(path)?;
        let mut buf = Vec::new();
        r.read_to_end(&mut buf)
            .map_err(|e| VaultError::store("read", self.describe(), path, &e))?;
        Ok(buf)
    }

    /// Writes a small file (directly, under its final name; use a temporary name and
    /// [`Store::rename`] for files that must appear whole).
    fn write_small(&self, path: &str, data: &[u8]) -> Result<(), VaultError> {
        let mut w = self.create(path)?;
        w.write_all(data)
            .map_err(|e| VaultError::store("write", self.describe(), path, &e))?;
        w.finish()
            .map_err(|e| VaultError::store("write", self.describe(), path, &e))
    }

    /// Writes small files whole, in order: each under its temporary name `tmp` (made durable
    /// where the back end can), then renamed over its final name `path`. Stops at the first
    /// failure; then the failed file is under neither name. Back ends where each step costs a
    /// round trip override this to pipeline the batch (SFTP).
    fn put_whole(&self, files: &[WholeFile<'_>]) -> Result<(), VaultError> {
        put_each(self, files)
    }

    /// Removes a folder and everything below it.
    fn remove_tree(&self, path: &str) -> Result<(), VaultError> {
        for e in self.list(path)? {
            let p = format!("{}/{}", path.trim_end_matches('/'), e.name);
            if e.is_dir {
                self.remove_tree(&p)?;
            } else {
                self.remove(&p)?;
            }
        }
        self.remove_dir(path)
    }
}

/// [`Store::put_whole`] one step at a time: write, rename, next file.
pub(crate) fn put_each<S: Store + ?Sized>(
    store: &S,
    files: &[WholeFile<'_>],
) -> Result<(), VaultError> {
    for f in files {
        let r = store
            .write_small(f.tmp, f.data)
            .and_then(|_| store.rename(f.tmp, f.path));
        if r.is_err() {
            let _ = store.remove(f.tmp);
            return r;
        }
    }
    Ok(())
}

/// A vault on the local disk (`file:///abs/path`).
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    /// A store rooted at an absolute folder (created when missing).
    pub fn new(root: impl Into<PathBuf>) -> Result<FileStore, VaultError> {
        let root = root.into();
        if !root.is_absolute() {
            return Err(VaultError::Config {
                key: "url".into(),
                problem: format!(
                    "a file vault needs an absolute path, got `{}`",
                    root.display()
                ),
            });
        }
        fs::create_dir_all(&root).map_err(|e| {
            VaultError::store(
                "create folder",
                format!("file://{}", root.display()),
                "",
                &e,
            )
        })?;
        Ok(FileStore { root })
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn full(&self, path: &str) -> PathBuf {
        let mut p = self.root.clone();
        for part in path.split('/').filter(|s| !s.is_empty()) {
            p.push(part);
        }
        p
    }

    fn err(&self, op: &'static str, path: &str, e: &io::Error) -> VaultError {
        VaultError::store(op, self.describe(), path, e)
    }
}

struct FileWriter {
    file: io::BufWriter<fs::File>,
}

impl Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl StoreWriter for FileWriter {
    fn finish(self: Box<Self>) -> io::Result<()> {
        let f = self.file.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()
    }
}

impl Store for FileStore {
    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn create_dir_all(&self, path: &str) -> Result<(), VaultError> {
        fs::create_dir_all(self.full(path)).map_err(|e| self.err("create folder", path, &e))
    }

    fn create(&self, path: &str) -> Result<Box<dyn StoreWriter>, VaultError> {
        let f = fs::File::create(self.full(path)).map_err(|e| self.err("create", path, &e))?;
        Ok(Box::new(FileWriter {
            file: io::BufWriter::with_capacity(256 * 1024, f),
        }))
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), VaultError> {
        fs::rename(self.full(from), self.full(to))
            .map_err(|e| self.err("rename", &format!("{from} -> {to}"), &e))?;
        // Make the rename durable: sync the folder holding it.
        if let Some(dir) = self.full(to).parent()
            && let Ok(d) = fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn sync_dir(&self, path: &str) -> Result<(), VaultError> {
        // As after a rename: best effort (a folder that cannot be opened for a sync is left).
        if let Ok(d) = fs::File::open(self.full(path)) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Each file written under its temporary name (fsynced only when `durable`), then renamed;
    /// the folders of the durable files are synced once, after the batch, so that their renames
    /// last. A file that need not survive a crash (a journal entry) costs no fsync at all: on a
    /// busy ext4 each fsync of a small file costs milliseconds.
    fn put_whole(&self, files: &[WholeFile<'_>]) -> Result<(), VaultError> {
        let mut dirs: Vec<PathBuf> = vec![];
        for f in files {
            let tmp = self.full(f.tmp);
            let r = fs::File::create(&tmp)
                .and_then(|mut h| {
                    h.write_all(f.data)?;
                    if f.durable { h.sync_all() } else { Ok(()) }
                })
                .map_err(|e| self.err("write", f.tmp, &e))
                .and_then(|_| {
                    fs::rename(&tmp, self.full(f.path))
                        .map_err(|e| self.err("rename", &format!("{} -> {}", f.tmp, f.path), &e))
                });
            if r.is_err() {
                let _ = fs::remove_file(&tmp);
                return r;
            }
            if let Some(d) = self.full(f.path).parent().filter(|_| f.durable)
                && !dirs.iter().any(|x| x == d)
            {
                dirs.push(d.to_path_buf());
            }
        }
        for d in dirs {
            if let Ok(d) = fs::File::open(d) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    fn open(&self, path: &str) -> Result<Box<dyn Read + Send>, VaultError> {
        let f = fs::File::open(self.full(path)).map_err(|e| self.err("open", path, &e))?;
        Ok(Box::new(io::BufReader::with_capacity(256 * 1024, f)))
    }

    fn list(&self, path: &str) -> Result<Vec<DirEntry>, VaultError> {
        let rd = fs::read_dir(self.full(path)).map_err(|e| self.err("list", path, &e))?;
        let mut out = Vec::new();
        for e in rd {
            let e = e.map_err(|e| self.err("list", path, &e))?;
            let md = e.metadata().map_err(|e| self.err("list", path, &e))?;
            out.push(DirEntry {
                name: e.file_name().to_string_lossy().into_owned(),
                is_dir: md.is_dir(),
                size: if md.is_dir() { 0 } else { md.len() },
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn stat(&self, path: &str) -> Result<Option<u64>, VaultError> {
        match fs::metadata(self.full(path)) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err("stat", path, &e)),
        }
    }

    fn remove(&self, path: &str) -> Result<(), VaultError> {
        fs::remove_file(self.full(path)).map_err(|e| self.err("remove", path, &e))
    }

    fn remove_dir(&self, path: &str) -> Result<(), VaultError> {
        fs::remove_dir(self.full(path)).map_err(|e| self.err("remove folder", path, &e))
    }

    fn create_exclusive(&self, path: &str, contents: &[u8]) -> Result<bool, VaultError> {
        let mut f = match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(self.full(path))
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(self.err("create", path, &e)),
        };
        f.write_all(contents)
            .and_then(|_| f.sync_all())
            .map_err(|e| self.err("write", path, &e))?;
        Ok(true)
    }

    fn hard_link(&self, from: &str, to: &str) -> Result<bool, VaultError> {
        match fs::hard_link(self.full(from), self.full(to)) {
            Ok(()) => Ok(true),
            // A file system without hard links (or a vault spread over several): fall back.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Unsupported
                        | io::ErrorKind::CrossesDevices
                        | io::ErrorKind::PermissionDenied
                        | io::ErrorKind::TooManyLinks
                ) =>
            {
                tracing::debug!("hard link {from} -> {to} refused ({e}); recording a reference");
                Ok(false)
            }
            Err(e) => Err(self.err("link", &format!("{from} -> {to}"), &e)),
        }
    }
}
