//! The content hash of an archive: what "unchanged" means for a backup. OIC exports of the same
//! integration differ byte for byte (the zip records export times), so the hash covers only the
//! zip's entry names and contents: sha256 over the file entries sorted by name, each as its name,
//! a 0 byte, its length as a big-endian u64 and its bytes. A file that is not a zip (a lookup's
//! CSV) hashes as its plain sha256.

use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Entries hashed at most (a hostile archive cannot make this run forever).
const MAX_ENTRIES: usize = 1_000_000;

/// The content hash of a local file (lower-case hex); `plain_sha256` is returned for a file that
/// is not a zip archive.
pub fn content_hash(path: &Path, plain_sha256: &str) -> io::Result<String> {
    let f = std::fs::File::open(path)?;
    let Ok(mut z) = zip::ZipArchive::new(io::BufReader::new(f)) else {
        return Ok(plain_sha256.to_string());
    };
    if z.len() > MAX_ENTRIES {
        return Ok(plain_sha256.to_string());
    }
    let mut names: Vec<(String, usize)> = Vec::with_capacity(z.len());
    for i in 0..z.len() {
        let e = z.by_index_raw(i).map_err(io::Error::other)?;
        if !e.is_dir() {
            names.push((e.name().map_err(io::Error::other)?.to_string(), i));
        }
    }
    names.sort();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    for (name, i) in names {
        let mut e = z.by_index(i).map_err(io::Error::other)?;
        h.update(name.as_bytes());
        h.update([0u8]);
        h.update(e.size().to_be_bytes());
        loop {
            let n = e.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(hex::encode(h.finalize()))
}

impl crate::effect::EffectOutput for crate::artifact::Artifact {
    fn sha256(&self) -> Option<String> {
        Some(self.sha256.clone())
    }
    fn content_digest(&self) -> Option<String> {
        if self.is_planned() {
            return None;
        }
        content_hash(self.path(), &self.sha256).ok()
    }
}
