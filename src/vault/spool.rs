//! The entries of a job being written, kept out of memory: each entry's compact JSON is appended
//! to a local temporary file (in the run's temporary folder, removed with it), and only an index
//! (the entry's path in the job → where its line is) stays in memory. A job of 10,000 entries
//! held them at about 1.1 KB each; the index takes under 100 bytes an entry. The entries are read
//! back in path order for the manifest (written as they are read) and for a resumed store.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

use super::job::ManifestEntry;

/// Entries by path, the last one given for a path winning (as in a map).
#[derive(Default)]
pub(crate) struct EntrySpool {
    /// Created at the first entry.
    file: Option<File>,
    /// The file's length.
    end: u64,
    /// Path in the job → (offset, length) of its entry's line.
    index: BTreeMap<Box<str>, (u64, u32)>,
}

impl EntrySpool {
    /// Adds (or replaces) the entry of `e.path`.
    pub(crate) fn insert(&mut self, e: &ManifestEntry) -> io::Result<()> {
        let mut line = serde_json::to_vec(e).map_err(io::Error::other)?;
        line.push(b'\n');
        let len = u32::try_from(line.len()).map_err(io::Error::other)?;
        let file = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(tempfile::tempfile()?),
        };
        file.seek(SeekFrom::Start(self.end))?;
        file.write_all(&line)?;
        self.index.insert(e.path.as_str().into(), (self.end, len));
        self.end += u64::from(len);
        Ok(())
    }

    /// Whether it holds an entry at `path`.
    pub(crate) fn contains(&self, path: &str) -> bool {
        self.index.contains_key(path)
    }

    /// The entries, in path order, each read when it is reached.
    pub(crate) fn iter(&self) -> impl Iterator<Item = io::Result<ManifestEntry>> + '_ {
        let mut buf = vec![];
        self.index.values().map(move |&(at, len)| {
            let mut f = self
                .file
                .as_ref()
                .ok_or_else(|| io::Error::other("no spool file"))?;
            f.seek(SeekFrom::Start(at))?;
            buf.resize(len as usize, 0);
            f.read_exact(&mut buf)?;
            serde_json::from_slice(&buf).map_err(io::Error::other)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::ArtifactKind;

    fn entry(path: &str, size: u64) -> ManifestEntry {
        ManifestEntry {
            kind: ArtifactKind::Integration,
            code: path.into(),
            version: "01.00.0000".into(),
            source: "dev".into(),
            source_status: Some("ACTIVATED".into()),
            size,
            sha256: "a".repeat(64),
            content_sha256: None,
            stored_size: size + 1,
            stored_sha256: "b".repeat(64),
            encrypted: true,
            exported_at: "2026-11-30T00:00:00Z".into(),
            path: path.into(),
            source_updated: None,
            shared: None,
        }
    }

    #[test]
    fn entries_read_back_in_path_order_the_last_one_winning() {
        let mut s = EntrySpool::default();
        assert_eq!(s.iter().count(), 0);
        for (p, n) in [
            ("Integrations/B", 1),
            ("Integrations/A", 2),
            ("Integrations/B", 3),
        ] {
            s.insert(&entry(p, n)).unwrap();
        }
        assert!(s.contains("Integrations/A") && !s.contains("Integrations/C"));
        let back: Vec<ManifestEntry> = s.iter().collect::<io::Result<_>>().unwrap();
        assert_eq!(
            back,
            vec![entry("Integrations/A", 2), entry("Integrations/B", 3)]
        );
    }
}
