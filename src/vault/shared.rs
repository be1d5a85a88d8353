//! Content shared between jobs: a nightly backup whose archives did not change since an earlier
//! job costs no new bytes.
//!
//! When a job stores an artifact, the newest few finished jobs of the vault (dated on or before
//! it) are looked up by the artifact's content hash ([`super::content_hash`]: entry names and
//! contents, zip times and `.properties` comments ignored). A match written with the same
//! encryption (same method and recipients; for a passphrase, one file of that job is opened
//! with ours, once per job) is shared instead of written:
//!
//! * **file://**: the new job's file is a hard link to the earlier file. Every job folder holds
//!   all its files; deleting one job never affects another.
//! * **sftp://, s3://**: the manifest entry records a *reference*: `shared.file` is the vault path
//!   of the earlier file, and the job's reader, verify, restore and resume read the bytes there.
//!
//! Why no hard link on SFTP: OpenSSH's `hardlink@openssh.com` extension needs a client that can
//! send SFTP extended requests, and libssh2 (under the `ssh2` crate) sends only the extensions it
//! implements itself (`posix-rename`, `fsync`, `statvfs`): no hard link, and no generic extended
//! request either. A symbolic link would dangle once the earlier job is pruned. Why no
//! server-side copy on S3: a copy is stored again, and billed again, by AWS and OCI; a reference
//! costs nothing.
//!
//! Encrypted content is encrypted once: a shared entry reuses the earlier ciphertext, so its
//! size and checksums in the manifest are those of the earlier bytes (whose content equals this
//! night's export).
//!
//! Prune never deletes a file another job refers to: a deleted job's referenced files stay in its
//! folder, marked with a `.pruned` file (the folder is no longer listed as a job), until no job
//! refers to them; a later prune then removes the folder. A backup writing while a prune runs can
//! lose the race for a file it is about to refer to: run prune after the backup (as
//! `scripts/nightly-backup.rhai` does), and verify catches it if not.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use chrono::{Datelike, NaiveDate};

use std::io::Read;

use super::job::{JOURNAL, JobStatus, Listing, ManifestEntry, PRUNED, read_manifest};
use super::{Decryption, Encryption, Inner, ROOT_FOLDER, VaultError};
use crate::artifact::{ArtifactKey, ArtifactKind};

/// Earlier jobs looked at for unchanged content, newest first.
const RECENT_JOBS: usize = 7;

/// An earlier entry whose bytes can be shared.
pub(crate) struct Earlier {
    /// The earlier job's entry.
    pub entry: ManifestEntry,
    /// The earlier job's path.
    pub job: String,
    /// The vault path of the file holding its bytes.
    pub file: String,
    /// The instance the entry's source name stood for in that job (format 3 manifests).
    pub instance: Option<String>,
}

/// What the newest earlier jobs hold, by (kind, content hash).
#[derive(Default)]
pub(crate) struct SharedIndex {
    by_content: HashMap<(ArtifactKind, String), Earlier>,
    /// The newest entry of each artifact (by source name and key) in complete jobs.
    by_key: HashMap<(String, ArtifactKey), Earlier>,
    /// Passphrase vaults: whether our passphrase opens each earlier job's files.
    passphrase_opens: Mutex<HashMap<String, bool>>,
}

impl SharedIndex {
    /// Reads the newest finished jobs dated on or before `date` (other than `own`). A vault that
    /// cannot be read gives an empty index (every archive is then written).
    pub(crate) fn build(inner: &Inner, date: NaiveDate, own: &str) -> SharedIndex {
        match SharedIndex::try_build(inner, date, own) {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(job = %own, "cannot read earlier jobs, so unchanged archives are stored again: {e}");
                SharedIndex::default()
            }
        }
    }

    fn try_build(inner: &Inner, date: NaiveDate, own: &str) -> Result<SharedIndex, VaultError> {
        let mut keys = inner.encryption.public_keys();
        keys.sort();
        let method = inner.encryption.method();
        let mut idx = SharedIndex::default();
        for (job, m) in recent_manifests(inner, date, own, RECENT_JOBS)? {
            let mut theirs = m.encryption.recipients.clone();
            theirs.sort();
            if m.encryption.method != method || theirs != keys {
                continue;
            }
            let complete = m.status == JobStatus::Complete;
            for e in m.entries {
                let Some(c) = e.content_sha256.clone() else {
                    continue;
                };
                if e.encrypted != inner.encryption.is_encrypted() {
                    continue;
                }
                let earlier = || Earlier {
                    file: e.stored_at(&job),
                    job: job.clone(),
                    instance: m.source_instances.get(&e.source).cloned(),
                    entry: e.clone(),
                };
                if complete && e.source_updated.is_some() {
                    idx.by_key
                        .entry((e.source.clone(), e.key()))
                        .or_insert_with(earlier);
                }
                idx.by_content.entry((e.kind, c)).or_insert_with(earlier);
            }
        }
        tracing::debug!(job = %own, entries = idx.by_content.len(), "content of earlier jobs indexed");
        Ok(idx)
    }

    /// The earlier entry with this content that this vault's keys can share, if any.
    pub(crate) fn find(
        &self,
        inner: &Inner,
        kind: ArtifactKind,
        content: &str,
    ) -> Option<&Earlier> {
        let e = self.by_content.get(&(kind, content.to_string()))?;
        self.usable(inner, e).then_some(e)
    }

    /// The newest entry of `key` from `source` in a complete earlier job that this vault's keys
    /// can share, if any.
    pub(crate) fn find_listed(
        &self,
        inner: &Inner,
        key: &ArtifactKey,
        source: &str,
    ) -> Option<&Earlier> {
        let e = self.by_key.get(&(source.to_string(), key.clone()))?;
        self.usable(inner, e).then_some(e)
    }

    /// The earlier entry of an integration the source lists exactly as the newest complete
    /// earlier job recorded it: same instance, same `lastUpdated`, same status, a content hash,
    /// and its file still there with its size (with `deep`, every byte read back and checked
    /// against the stored sha256). `None` when in any doubt. What [`super::JobWriter::carry`]
    /// carries over, and what a dry run shows as carried.
    pub(crate) fn unchanged(
        &self,
        inner: &Inner,
        item: &Listing<'_>,
        deep: bool,
    ) -> Result<Option<&Earlier>, VaultError> {
        if item.updated.is_empty() {
            return Ok(None);
        }
        let Some(earlier) = self.find_listed(inner, item.key, item.source) else {
            return Ok(None);
        };
        let e = &earlier.entry;
        if earlier.instance.as_deref() != Some(item.instance)
            || e.source_updated.as_deref() != Some(item.updated)
            || e.source_status.as_deref() != item.status
            || e.content_sha256.is_none()
            || inner.store.stat(&earlier.file)? != Some(e.stored_size)
        {
            return Ok(None);
        }
        if deep && !reads_back(inner, &earlier.file, e.stored_size, &e.stored_sha256)? {
            tracing::warn!(file = %earlier.file, "an earlier file differs from its manifest: exporting again");
            return Ok(None);
        }
        Ok(Some(earlier))
    }

    /// Passphrase vaults: whether our passphrase opens the earlier job's files (checked once per
    /// job). Key vaults: always (the recipients were compared when the index was built).
    fn usable(&self, inner: &Inner, e: &Earlier) -> bool {
        if let Encryption::Passphrase(p) = &inner.encryption {
            let mut opens = self
                .passphrase_opens
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let ok = *opens.entry(e.job.clone()).or_insert_with(|| {
                let d = Decryption::Passphrase(p.clone());
                inner
                    .store
                    .open(&e.file)
                    .ok()
                    .is_some_and(|r| d.decrypt(r).is_ok())
            });
            return ok;
        }
        true
    }
}

/// Reads a stored file back: true when its size and sha256 are as recorded.
fn reads_back(inner: &Inner, file: &str, size: u64, sha: &str) -> Result<bool, VaultError> {
    let st = &inner.store;
    let mut r = super::hashio::HashingReader::new(st.open(file)?);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(VaultError::store("read", st.describe(), file, &e)),
        }
    }
    let (n, got) = r
        .finish()
        .map_err(|e| VaultError::store("read", st.describe(), file, &e))?;
    Ok(n == size && got == sha)
}

/// What a dry run of a nightly backup would carry over: the earlier jobs of a vault, read once
/// ([`super::Vault::carry_probe`]).
pub struct CarryProbe {
    pub(crate) inner: std::sync::Arc<Inner>,
    pub(crate) index: SharedIndex,
}

impl CarryProbe {
    /// The earlier file an integration listed this way would be carried over from (as
    /// [`super::JobWriter::carry`] decides, without writing anything), or `None`.
    pub fn would_carry(&self, item: &Listing<'_>) -> Result<Option<String>, VaultError> {
        Ok(self
            .index
            .unchanged(&self.inner, item, false)?
            .map(|e| e.file.clone()))
    }
}

/// The job folder (`OIC_Backups/YYYY/MM/DD/<job>`) a vault path of a job's file lies in.
pub(crate) fn job_of(file: &str) -> &str {
    match file.match_indices('/').nth(4) {
        Some((i, _)) => &file[..i],
        None => file,
    }
}

fn numeric_desc(inner: &Inner, path: &str, width: usize) -> Result<Vec<(u32, String)>, VaultError> {
    let entries = match inner.store.list(path) {
        Ok(v) => v,
        Err(e) if e.is_not_found() => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    let mut out: Vec<(u32, String)> = entries
        .into_iter()
        .filter(|e| e.is_dir && e.name.len() == width && e.name.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|e| {
            e.name
                .parse()
                .ok()
                .map(|n| (n, format!("{path}/{}", e.name)))
        })
        .collect();
    out.sort_by_key(|e| std::cmp::Reverse(e.0));
    Ok(out)
}

/// Up to `k` finished (complete or partial) jobs dated on or before `date`, newest first, with
/// their manifests: (job path, manifest).
fn recent_manifests(
    inner: &Inner,
    date: NaiveDate,
    own: &str,
    k: usize,
) -> Result<Vec<(String, super::Manifest)>, VaultError> {
    let mut out = vec![];
    for (y, yp) in numeric_desc(inner, ROOT_FOLDER, 4)? {
        if y as i32 > date.year() {
            continue;
        }
        for (m, mp) in numeric_desc(inner, &yp, 2)? {
            for (d, dp) in numeric_desc(inner, &mp, 2)? {
                match NaiveDate::from_ymd_opt(y as i32, m, d) {
                    Some(day) if day <= date => {}
                    _ => continue,
                }
                let mut day = vec![];
                for j in inner.store.list(&dp)? {
                    let path = format!("{dp}/{}", j.name);
                    if !j.is_dir || j.name.starts_with('.') || path == own {
                        continue;
                    }
                    if let Some(Ok(m)) = read_manifest(inner, &path)?
                        && inner.store.stat(&format!("{path}/{PRUNED}"))?.is_none()
                    {
                        day.push((path, m));
                    }
                }
                day.sort_by(|a, b| b.1.finished_at.cmp(&a.1.finished_at));
                for j in day {
                    out.push(j);
                    if out.len() >= k {
                        return Ok(out);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The referenced files (vault paths) in a manifest or journal entry, read loosely so that a
/// damaged manifest still protects what it refers to; a journal naming whole job folders adds
/// them to `folders`.
fn references_in(json: &[u8], out: &mut BTreeSet<String>, folders: &mut BTreeSet<String>) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(json) else {
        return;
    };
    let jobs = &v["shared_jobs"];
    let mut one = |e: &serde_json::Value| {
        let sh = &e["shared"];
        if sh["via"] != "reference" {
            return;
        }
        if let Some(f) = sh["file"].as_str() {
            out.insert(f.to_string());
        } else if let Some(job) = sh["job"].as_u64().and_then(|i| jobs[i as usize].as_str())
            && let Some(p) = sh["path"].as_str().or(e["path"].as_str())
        {
            // Format 4: the job folder by number, the path when not the entry's own.
            out.insert(format!("{job}/{p}"));
        }
    };
    // A journal of references names the job folders referred to (older versions: the files).
    if let Some(jobs) = v["jobs"].as_array() {
        folders.extend(jobs.iter().filter_map(|f| f.as_str()).map(str::to_string));
        return;
    }
    if let Some(files) = v["references"].as_array() {
        out.extend(files.iter().filter_map(|f| f.as_str()).map(str::to_string));
        return;
    }
    match v["entries"].as_array() {
        Some(entries) => entries.iter().for_each(&mut one),
        None => one(&v),
    }
}

/// The files (vault paths) the job at `path` refers to: from its manifest, and from the journal
/// of a job still being written (every file of a job folder it names).
pub(crate) fn references_of(inner: &Inner, path: &str) -> Result<BTreeSet<String>, VaultError> {
    let st = &inner.store;
    let mut out = BTreeSet::new();
    let mut folders = BTreeSet::new();
    match st.read_small(&format!("{path}/{}", super::MANIFEST)) {
        Ok(b) => references_in(&b, &mut out, &mut folders),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e),
    }
    let jdir = format!("{path}/{JOURNAL}");
    let files = match st.list(&jdir) {
        Ok(f) => f,
        Err(e) if e.is_not_found() => vec![],
        Err(e) => return Err(e),
    };
    for f in files.iter().filter(|f| !f.is_dir) {
        match st.read_small(&format!("{jdir}/{}", f.name)) {
            Ok(b) => references_in(&b, &mut out, &mut folders),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    for f in folders {
        out.extend(tree(inner, &f)?.0);
    }
    Ok(out)
}

/// Every file below `path` (vault paths), and the folders, deepest first.
pub(crate) fn tree(inner: &Inner, path: &str) -> Result<(Vec<String>, Vec<String>), VaultError> {
    let (mut files, mut dirs) = (vec![], vec![]);
    let mut stack = vec![path.to_string()];
    while let Some(d) = stack.pop() {
        let list = match inner.store.list(&d) {
            Ok(l) => l,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        for e in list {
            let p = format!("{d}/{}", e.name);
            if e.is_dir {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
        dirs.push(d);
    }
    dirs.reverse();
    Ok((files, dirs))
}

/// Deletes a job folder, except the files in `in_use` (shared with jobs that stay): those stay,
/// with a `.pruned` marker so that the folder is no longer a job. Returns the files kept.
pub(crate) fn delete_job(
    inner: &Inner,
    path: &str,
    in_use: &BTreeSet<String>,
    dry_run: bool,
) -> Result<Vec<String>, VaultError> {
    let st = &inner.store;
    let (files, dirs) = tree(inner, path)?;
    let marker = format!("{path}/{PRUNED}");
    let keep: Vec<String> = files
        .iter()
        .filter(|f| in_use.contains(*f))
        .cloned()
        .collect();
    if dry_run {
        return Ok(keep);
    }
    let manifest = format!("{path}/{}", super::MANIFEST);
    if keep.is_empty() {
        // The manifest goes first, so a prune cut short leaves an unfinished job, never a
        // "complete" one with files missing.
        if files.contains(&manifest) {
            st.remove(&manifest)?;
        }
        st.remove_tree(path)?;
        return Ok(keep);
    }
    if !files.contains(&marker) {
        let note = serde_json::json!({
            "pruned_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "kept_for_newer_jobs": keep,
        });
        st.write_small(&marker, note.to_string().as_bytes())?;
    }
    if files.contains(&manifest) {
        st.remove(&manifest)?;
    }
    for f in &files {
        if *f != marker && *f != manifest && !in_use.contains(f) {
            st.remove(f)?;
        }
    }
    for d in dirs {
        // Folders still holding kept files stay (the error says so); that is expected.
        let _ = st.remove_dir(&d);
    }
    Ok(keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_read_from_manifests_journals_and_damaged_json() {
        let mut out = BTreeSet::new();
        let mut folders = BTreeSet::new();
        references_in(
            br#"{"entries":[{"shared":{"via":"reference","file":"OIC_Backups/2026/11/29/n/Integrations/A.iar"}},{"shared":{"via":"hardlink","file":"x"}},{}],"format":"broken"}"#,
            &mut out,
            &mut folders,
        );
        references_in(
            br#"{"path":"Integrations/B.iar","shared":{"via":"reference","file":"OIC_Backups/2026/11/28/n/Integrations/B.iar"}}"#,
            &mut out,
            &mut folders,
        );
        references_in(b"not json", &mut out, &mut folders);
        references_in(
            br#"{"shared_jobs":["OIC_Backups/2026/11/24/n"],"entries":[{"path":"Integrations/D.iar","shared":{"via":"reference","job":0}},{"path":"Schedules/E.json","shared":{"via":"reference","job":0,"path":"Schedules/F.json"}},{"path":"Integrations/G.iar","shared":{"via":"hardlink","job":0}}],"format":"broken"}"#,
            &mut out,
            &mut folders,
        );
        references_in(
            br#"{"jobs":["OIC_Backups/2026/11/26/n"]}"#,
            &mut out,
            &mut folders,
        );
        assert_eq!(
            folders.iter().cloned().collect::<Vec<_>>(),
            vec!["OIC_Backups/2026/11/26/n".to_string()]
        );
        assert_eq!(
            job_of("OIC_Backups/2026/11/26/n/Integrations/A.iar"),
            "OIC_Backups/2026/11/26/n"
        );
        references_in(
            br#"{"references":["OIC_Backups/2026/11/27/n/Integrations/C.iar"]}"#,
            &mut out,
            &mut folders,
        );
        assert_eq!(
            out.into_iter().collect::<Vec<_>>(),
            vec![
                "OIC_Backups/2026/11/24/n/Integrations/D.iar".to_string(),
                "OIC_Backups/2026/11/24/n/Schedules/F.json".to_string(),
                "OIC_Backups/2026/11/27/n/Integrations/C.iar".to_string(),
                "OIC_Backups/2026/11/28/n/Integrations/B.iar".to_string(),
                "OIC_Backups/2026/11/29/n/Integrations/A.iar".to_string()
            ]
        );
    }
}
