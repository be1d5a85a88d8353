//! The content hash of an archive: what "unchanged" means for a backup. OIC exports of the same
//! integration differ byte for byte (the zip records export times, and every `.properties` file
//! starts with a `#<export time>` comment line, as Java's `Properties.store` writes it), so the
//! hash covers only the zip's entry names and normalised contents: sha256 over the file entries
//! sorted by name, each as its name, a 0 byte, its length as a big-endian u64 and its bytes, where
//! a `.properties` entry is taken without its comment lines. A file that is not a zip (a lookup's
//! CSV) hashes as its plain sha256.

use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Entries hashed at most (a hostile archive cannot make this run forever).
const MAX_ENTRIES: usize = 1_000_000;
/// `.properties` entries larger than this are hashed as they are (not normalised in memory).
const MAX_PROPERTIES: u64 = 16 * 1024 * 1024;

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
        if name.ends_with(".properties") && e.size() <= MAX_PROPERTIES {
            let mut raw = Vec::with_capacity(e.size() as usize);
            (&mut e).take(MAX_PROPERTIES).read_to_end(&mut raw)?;
            let body = without_comments(&raw);
            h.update((body.len() as u64).to_be_bytes());
            h.update(&body);
            continue;
        }
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

/// A properties file without its comment lines: lines whose first non-blank character is `#`
/// or `!`, unless they continue the previous line (which ended with an odd number of `\`).
fn without_comments(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut continued = false;
    for line in raw.split_inclusive(|b| *b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        let first = body.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\x0c'));
        let comment = !continued && matches!(first, Some(b'#' | b'!'));
        if !comment {
            out.extend_from_slice(line);
        }
        let slashes = body.iter().rev().take_while(|b| **b == b'\\').count();
        continued = !comment && slashes % 2 == 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(entries: &[(&str, &str)], minute: u8) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let t = zip::DateTime::from_date_and_time(2026, 11, 26, 10, minute, 0).unwrap();
        for (n, b) in entries {
            let o = zip::write::SimpleFileOptions::default().last_modified_time(t);
            w.start_file(*n, o).unwrap();
            w.write_all(b.as_bytes()).unwrap();
        }
        f.write_all(&w.finish().unwrap().into_inner()).unwrap();
        f
    }

    #[test]
    fn export_stamps_do_not_count_but_content_does() {
        let a = zip_of(
            &[
                ("p/a.properties", "#Mon Nov 30 08:00:01 UTC 2026\nk=v\n"),
                ("p/x.xsl", "<a/>"),
            ],
            1,
        );
        let b = zip_of(
            &[
                ("p/x.xsl", "<a/>"),
                ("p/a.properties", "#Mon Nov 30 09:13:44 UTC 2026\nk=v\n"),
            ],
            7,
        );
        let c = zip_of(
            &[
                ("p/a.properties", "#Mon Nov 30 08:00:01 UTC 2026\nk=w\n"),
                ("p/x.xsl", "<a/>"),
            ],
            1,
        );
        let h = |f: &tempfile::NamedTempFile| content_hash(f.path(), "plain").unwrap();
        assert_eq!(h(&a), h(&b), "stamps and entry order are not content");
        assert_ne!(h(&a), h(&c), "a changed value is");
        // A comment sign in an XML entry is content.
        let d = zip_of(&[("p/x.xsl", "#1\n<a/>")], 1);
        let e = zip_of(&[("p/x.xsl", "#2\n<a/>")], 1);
        assert_ne!(h(&d), h(&e));
    }

    #[test]
    fn continuation_lines_are_not_comments() {
        assert_eq!(without_comments(b"#c\n  !c\nk=v\n"), b"k=v\n");
        assert_eq!(
            without_comments(b"k=a\\\n#not a comment\n#c\n"),
            b"k=a\\\n#not a comment\n"
        );
        assert_eq!(without_comments(b"k=a\\\\\n#c\n"), b"k=a\\\\\n");
    }
}
