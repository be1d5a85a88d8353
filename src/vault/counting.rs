//! Bytes written to vaults: every store a [`super::Vault`] opens is wrapped in a
//! [`CountingStore`], which adds every byte handed to the store for writing (archives,
//! temporary files, journal entries, locks, manifests; a hard link or a rename writes none) to
//! one process-wide counter, [`bytes_written`]. What the nightly benchmark of issue 15 measures
//! a night's bytes by: nothing written can escape it.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::VaultError;
use super::store::{DirEntry, Store, StoreWriter, WholeFile};

static WRITTEN: AtomicU64 = AtomicU64::new(0);

/// Bytes every vault of this process has handed to its store for writing so far.
pub fn bytes_written() -> u64 {
    WRITTEN.load(Ordering::Relaxed)
}

fn add(n: usize) {
    WRITTEN.fetch_add(n as u64, Ordering::Relaxed);
}

/// A store that counts the bytes written through it ([`bytes_written`]).
pub(crate) struct CountingStore(pub(crate) Arc<dyn Store>);

struct CountingWriter(Box<dyn StoreWriter>);

impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.0.write(buf)?;
        add(n);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl StoreWriter for CountingWriter {
    fn finish(self: Box<Self>) -> io::Result<()> {
        self.0.finish()
    }
    fn headroom(&self) -> usize {
        self.0.headroom()
    }
    fn write_chunk(&mut self, chunk: &[u8], head: usize) -> io::Result<()> {
        self.0.write_chunk(chunk, head)?;
        add(chunk.len().saturating_sub(head));
        Ok(())
    }
}

impl Store for CountingStore {
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn create_dir_all(&self, path: &str) -> Result<(), VaultError> {
        self.0.create_dir_all(path)
    }
    fn create(&self, path: &str) -> Result<Box<dyn StoreWriter>, VaultError> {
        Ok(Box::new(CountingWriter(self.0.create(path)?)))
    }
    fn rename(&self, from: &str, to: &str) -> Result<(), VaultError> {
        self.0.rename(from, to)
    }
    fn open(&self, path: &str) -> Result<Box<dyn Read + Send>, VaultError> {
        self.0.open(path)
    }
    fn list(&self, path: &str) -> Result<Vec<DirEntry>, VaultError> {
        self.0.list(path)
    }
    fn stat(&self, path: &str) -> Result<Option<u64>, VaultError> {
        self.0.stat(path)
    }
    fn remove(&self, path: &str) -> Result<(), VaultError> {
        self.0.remove(path)
    }
    fn remove_dir(&self, path: &str) -> Result<(), VaultError> {
        self.0.remove_dir(path)
    }
    fn create_exclusive(&self, path: &str, contents: &[u8]) -> Result<bool, VaultError> {
        let made = self.0.create_exclusive(path, contents)?;
        if made {
            add(contents.len());
        }
        Ok(made)
    }
    fn hard_link(&self, from: &str, to: &str) -> Result<bool, VaultError> {
        self.0.hard_link(from, to)
    }
    fn sync_dir(&self, path: &str) -> Result<(), VaultError> {
        self.0.sync_dir(path)
    }
    fn warm(&self) {
        self.0.warm()
    }
    fn read_small(&self, path: &str) -> Result<Vec<u8>, VaultError> {
        self.0.read_small(path)
    }
    fn write_small(&self, path: &str, data: &[u8]) -> Result<(), VaultError> {
        add(data.len());
        self.0.write_small(path, data)
    }
    fn put_whole(&self, files: &[WholeFile<'_>]) -> Result<(), VaultError> {
        add(files.iter().map(|f| f.data.len()).sum());
        self.0.put_whole(files)
    }
    fn remove_tree(&self, path: &str) -> Result<(), VaultError> {
        self.0.remove_tree(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_way_of_writing_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let st = CountingStore(Arc::new(super::super::FileStore::new(dir.path()).unwrap()));
        let before = bytes_written();
        st.write_small("a", b"12345").unwrap();
        let mut w = st.create("b").unwrap();
        w.write_all(b"123").unwrap();
        w.write_chunk(b"xx4567", 2).unwrap();
        w.finish().unwrap();
        assert!(st.create_exclusive("c", b"12").unwrap());
        assert!(!st.create_exclusive("c", b"12").unwrap());
        st.put_whole(&[WholeFile {
            tmp: ".d.tmp",
            path: "d",
            data: b"123456",
            durable: false,
        }])
        .unwrap();
        assert!(st.hard_link("d", "e").unwrap());
        st.rename("e", "f").unwrap();
        // Other tests of this process write at the same time: at least ours.
        assert!(bytes_written() - before >= 5 + 7 + 2 + 6);
        assert_eq!(st.read_small("b").unwrap(), b"1234567");
    }
}
