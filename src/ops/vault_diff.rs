//! What changed between two backups (`ferry vault diff JOB_A JOB_B`, `vault::diff` in scripts),
//! or between an instance and a backup (`ferry diff INSTANCE JOB`): artifacts added, removed and
//! changed, and for a changed archive what changed inside it — the connections it uses, the
//! endpoints it invokes, and its files (mappings, connection bindings, lookups...) entry by entry.
//!
//! "Changed" compares content: two archives whose entries (names and bytes) are equal are the
//! same even when their zip bytes differ (OIC stamps export times into the zip).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::artifact::{Artifact, ArtifactKind};
use crate::vault::{JobReader, ManifestEntry, VaultError};

/// Entries larger than this are compared by hash only (no line counts, no parsing).
const MAX_TEXT: u64 = 4 * 1024 * 1024;
/// Entries of an archive read at most (hostile archives).
const MAX_ENTRIES: usize = 100_000;

/// Why a diff failed.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// The vault refused (job missing, damaged file, wrong key...).
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// An archive could not be read.
    #[error("{artifact}: {reason}")]
    Archive { artifact: String, reason: String },
    /// The instance refused an export.
    #[error(transparent)]
    Oic(#[from] crate::oic::OicError),
}

/// Options of a diff (`vault::diff(a, b, #{ details: false })`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiffOptions {
    /// Open changed archives and say what changed inside them (default true).
    pub details: bool,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions { details: true }
    }
}

/// One artifact on one side.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ArtifactRef {
    pub kind: ArtifactKind,
    pub code: String,
    pub version: String,
    pub size: u64,
    pub sha256: String,
}

/// An artifact present on both sides with different content.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ArtifactChange {
    pub kind: ArtifactKind,
    pub code: String,
    pub from_version: String,
    pub to_version: String,
    pub from_sha256: String,
    pub to_sha256: String,
    /// What changed inside (absent without details, or for an unreadable archive).
    pub contents: Option<ArchiveChanges>,
    /// Why `contents` is missing, when it is.
    pub note: Option<String>,
}

/// What changed inside an archive.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ArchiveChanges {
    pub connections_added: Vec<String>,
    pub connections_removed: Vec<String>,
    pub endpoints_added: Vec<String>,
    pub endpoints_removed: Vec<String>,
    /// Every entry added, removed or changed, by path (the `icspackage/project/CODE_VERSION/`
    /// folder is written `project/`, so a new version does not change every path).
    pub entries: Vec<EntryChange>,
}

/// What an archive entry is.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    Mapping,
    Connection,
    Endpoint,
    Lookup,
    Schedule,
    Metadata,
    Other,
}

/// How an entry changed.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Removed,
    Changed,
}

/// One archive entry that differs.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct EntryChange {
    pub path: String,
    pub kind: EntryKind,
    pub change: Change,
    pub from_size: Option<u64>,
    pub to_size: Option<u64>,
    /// Lines only in the new entry (text entries).
    pub lines_added: Option<u64>,
    /// Lines only in the old entry (text entries).
    pub lines_removed: Option<u64>,
}

/// The differences between two backups (or an instance and a backup).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct VaultDiff {
    pub from: String,
    pub to: String,
    pub added: Vec<ArtifactRef>,
    pub removed: Vec<ArtifactRef>,
    pub changed: Vec<ArtifactChange>,
    pub unchanged: usize,
}

/// One side of a diff: its label and artifacts, with a way to fetch an artifact's archive.
pub trait DiffSide {
    fn label(&self) -> String;
    fn artifacts(&self) -> Vec<ArtifactRef>;
    /// The content hash (entries, not zip bytes) when the side knows it without fetching.
    fn content_hash(&self, a: &ArtifactRef) -> Option<String>;
    fn fetch(&self, a: &ArtifactRef) -> Result<Artifact, DiffError>;
}

impl DiffSide for JobReader {
    fn label(&self) -> String {
        self.path().to_string()
    }
    fn artifacts(&self) -> Vec<ArtifactRef> {
        self.manifest().entries.iter().map(entry_ref).collect()
    }
    fn content_hash(&self, a: &ArtifactRef) -> Option<String> {
        self.manifest()
            .entries
            .iter()
            .find(|e| e.kind == a.kind && e.code == a.code && e.version == a.version)
            .and_then(|e| e.content_sha256.clone())
    }
    fn fetch(&self, a: &ArtifactRef) -> Result<Artifact, DiffError> {
        let e = self
            .manifest()
            .entries
            .iter()
            .find(|e| e.kind == a.kind && e.code == a.code && e.version == a.version)
            .ok_or_else(|| DiffError::Archive {
                artifact: format!("{} {} {}", a.kind, a.code, a.version),
                reason: "not in the job".into(),
            })?;
        Ok(JobReader::fetch(self, e)?)
    }
}

fn entry_ref(e: &ManifestEntry) -> ArtifactRef {
    ArtifactRef {
        kind: e.kind,
        code: e.code.clone(),
        version: e.version.clone(),
        size: e.size,
        sha256: e.sha256.clone(),
    }
}

/// An artifact already at hand (exported from an instance) as a diff side.
pub struct Exported {
    pub label: String,
    pub artifacts: Vec<Artifact>,
}

impl DiffSide for Exported {
    fn label(&self) -> String {
        self.label.clone()
    }
    fn artifacts(&self) -> Vec<ArtifactRef> {
        self.artifacts
            .iter()
            .map(|a| ArtifactRef {
                kind: a.key.kind,
                code: a.key.code.clone(),
                version: a.key.version.clone(),
                size: a.size,
                sha256: a.sha256.clone(),
            })
            .collect()
    }
    fn content_hash(&self, a: &ArtifactRef) -> Option<String> {
        let x = self
            .artifacts
            .iter()
            .find(|x| x.key.kind == a.kind && x.key.code == a.code && x.key.version == a.version)?;
        crate::vault::content_hash(x.path(), &x.sha256).ok()
    }
    fn fetch(&self, a: &ArtifactRef) -> Result<Artifact, DiffError> {
        self.artifacts
            .iter()
            .find(|x| x.key.kind == a.kind && x.key.code == a.code && x.key.version == a.version)
            .cloned()
            .ok_or_else(|| DiffError::Archive {
                artifact: format!("{} {}", a.code, a.version),
                reason: "not exported".into(),
            })
    }
}

type Key = (ArtifactKind, String, String);

fn key(a: &ArtifactRef) -> Key {
    (a.kind, a.code.clone(), a.version.clone())
}

/// Compares job `a` (older) with job `b` (newer) of a run, each read back (finished first when
/// still open), and adds the diff to the run's report.html.
pub async fn diff_jobs(
    ctx: &dyn super::Ctx,
    a: &std::sync::Arc<super::job::JobState>,
    b: &std::sync::Arc<super::job::JobState>,
    opts: &DiffOptions,
) -> Result<VaultDiff, super::OpsError> {
    use super::vault_restore::{reader, vault_err};
    let (ra, rb) = (reader(ctx, a).await?, reader(ctx, b).await?);
    let (o, at) = (opts.clone(), a.vault_name.as_str());
    let d = tokio::task::spawn_blocking(move || diff(&*ra, &*rb, &o))
        .await
        .map_err(|e| vault_err(at, e))?
        .map_err(|e| vault_err(at, e))?;
    ctx.exec().record().add_report_section(&d.html_section());
    Ok(d)
}

/// Compares two sides. Blocking (fetches archives); call from `spawn_blocking` in async code.
pub fn diff(
    from: &dyn DiffSide,
    to: &dyn DiffSide,
    opts: &DiffOptions,
) -> Result<VaultDiff, DiffError> {
    let old: BTreeMap<Key, ArtifactRef> =
        from.artifacts().into_iter().map(|a| (key(&a), a)).collect();
    let new: BTreeMap<Key, ArtifactRef> =
        to.artifacts().into_iter().map(|a| (key(&a), a)).collect();
    let mut out = VaultDiff {
        from: from.label(),
        to: to.label(),
        added: vec![],
        removed: vec![],
        changed: vec![],
        unchanged: 0,
    };
    let mut pairs = vec![];
    for (k, a) in &old {
        match new.get(k) {
            Some(b) => pairs.push((a.clone(), b.clone())),
            None => out.removed.push(a.clone()),
        }
    }
    out.added = new
        .iter()
        .filter(|(k, _)| !old.contains_key(*k))
        .map(|(_, b)| b.clone())
        .collect();
    pair_new_versions(&mut out, &mut pairs);
    for (a, b) in pairs {
        if same_content(from, to, &a, &b)? {
            out.unchanged += 1;
            continue;
        }
        out.changed.push(change(from, to, &a, &b, opts));
    }
    Ok(out)
}

/// A code removed in one version and added in exactly one other is a change of version.
fn pair_new_versions(out: &mut VaultDiff, pairs: &mut Vec<(ArtifactRef, ArtifactRef)>) {
    let count = |v: &[ArtifactRef], a: &ArtifactRef| {
        v.iter()
            .filter(|x| x.kind == a.kind && x.code == a.code)
            .count()
    };
    let mut removed = vec![];
    for r in std::mem::take(&mut out.removed) {
        let single = count(&out.added, &r) == 1 && !r.version.is_empty();
        match out
            .added
            .iter()
            .position(|x| x.kind == r.kind && x.code == r.code)
        {
            Some(i) if single => pairs.push((r, out.added.remove(i))),
            _ => removed.push(r),
        }
    }
    out.removed = removed;
}

fn same_content(
    from: &dyn DiffSide,
    to: &dyn DiffSide,
    a: &ArtifactRef,
    b: &ArtifactRef,
) -> Result<bool, DiffError> {
    if a.sha256 == b.sha256 && a.version == b.version {
        return Ok(true);
    }
    if let (Some(x), Some(y)) = (from.content_hash(a), to.content_hash(b)) {
        return Ok(x == y && a.version == b.version);
    }
    if a.version != b.version {
        return Ok(false);
    }
    // Fetch both and compare their content hashes (zip metadata and export stamps ignored).
    let (fa, fb) = (from.fetch(a)?, to.fetch(b)?);
    let hash = |f: &Artifact| {
        crate::vault::content_hash(f.path(), &f.sha256).map_err(|e| DiffError::Archive {
            artifact: f.key.to_string(),
            reason: e.to_string(),
        })
    };
    Ok(hash(&fa)? == hash(&fb)?)
}

fn change(
    from: &dyn DiffSide,
    to: &dyn DiffSide,
    a: &ArtifactRef,
    b: &ArtifactRef,
    opts: &DiffOptions,
) -> ArtifactChange {
    let mut c = ArtifactChange {
        kind: a.kind,
        code: a.code.clone(),
        from_version: a.version.clone(),
        to_version: b.version.clone(),
        from_sha256: a.sha256.clone(),
        to_sha256: b.sha256.clone(),
        contents: None,
        note: None,
    };
    if !opts.details {
        return c;
    }
    let inside = (|| -> Result<ArchiveChanges, DiffError> {
        let (fa, fb) = (from.fetch(a)?, to.fetch(b)?);
        Ok(compare_archives(&read_entries(&fa)?, &read_entries(&fb)?))
    })();
    match inside {
        Ok(x) => c.contents = Some(x),
        Err(e) => c.note = Some(e.to_string()),
    }
    c
}

/// One archive entry: its hash, size, and its text when small and UTF-8.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) sha: String,
    pub(crate) size: u64,
    pub(crate) text: Option<String>,
}

/// The file entries of an archive by normalised path.
pub(crate) fn read_entries(a: &Artifact) -> Result<BTreeMap<String, Entry>, DiffError> {
    let err = |reason: String| DiffError::Archive {
        artifact: a.key.to_string(),
        reason,
    };
    let f = std::fs::File::open(a.path()).map_err(|e| err(e.to_string()))?;
    read_zip(f, &a.key.code, &a.key.version).map_err(err)
}

fn read_zip(
    f: std::fs::File,
    code: &str,
    version: &str,
) -> Result<BTreeMap<String, Entry>, String> {
    let mut z = zip::ZipArchive::new(std::io::BufReader::new(f))
        .map_err(|e| format!("not a zip archive: {e}"))?;
    if z.len() > MAX_ENTRIES {
        return Err(format!("{} entries (more than {MAX_ENTRIES})", z.len()));
    }
    let project = format!("icspackage/project/{code}_{version}/");
    let mut out = BTreeMap::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).map_err(|e| format!("entry {i}: {e}"))?;
        if f.is_dir() {
            continue;
        }
        let name = f.name().map_err(|e| format!("entry {i}: {e}"))?.to_string();
        let path = match name.strip_prefix(&project) {
            Some(rest) => format!("project/{rest}"),
            None => name,
        };
        let mut h = Sha256::new();
        let mut keep = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut size = 0u64;
        loop {
            let n = f.read(&mut buf).map_err(|e| format!("{path}: {e}"))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            size += n as u64;
            if size <= MAX_TEXT {
                keep.extend_from_slice(&buf[..n]);
            }
        }
        let text = (size <= MAX_TEXT)
            .then(|| String::from_utf8(keep).ok())
            .flatten();
        out.insert(
            path,
            Entry {
                sha: hex::encode(h.finalize()),
                size,
                text,
            },
        );
    }
    Ok(out)
}

/// What an entry is, from its path.
fn entry_kind(path: &str) -> EntryKind {
    let p = path.to_ascii_lowercase();
    if p.ends_with(".xsl") || p.ends_with(".xslt") || p.contains("/mapping") {
        EntryKind::Mapping
    } else if p.contains("appinstances/") || p.contains("connections/") {
        EntryKind::Connection
    } else if p.contains("/resources/application_")
        || [".wsdl", ".jca", ".xsd", ".swagger", ".openapi"]
            .iter()
            .any(|x| p.ends_with(x))
    {
        EntryKind::Endpoint
    } else if p.contains("dvms/") || p.ends_with(".dvm") || p.contains("lookups/") {
        EntryKind::Lookup
    } else if p.contains("schedule") {
        EntryKind::Schedule
    } else if p.ends_with(".properties")
        || p.ends_with("project.xml")
        || p.ends_with(".json")
        || p.ends_with(".yaml")
        || p.ends_with(".yml")
    {
        EntryKind::Metadata
    } else {
        EntryKind::Other
    }
}

/// Lines only in `b` and lines only in `a` (as multisets).
fn line_counts(a: &str, b: &str) -> (u64, u64) {
    let mut m: BTreeMap<&str, i64> = BTreeMap::new();
    for l in a.lines() {
        *m.entry(l).or_default() -= 1;
    }
    for l in b.lines() {
        *m.entry(l).or_default() += 1;
    }
    let added = m.values().filter(|v| **v > 0).map(|v| *v as u64).sum();
    let removed = m.values().filter(|v| **v < 0).map(|v| (-*v) as u64).sum();
    (added, removed)
}

/// Compares two archives' entries.
pub(crate) fn compare_archives(
    a: &BTreeMap<String, Entry>,
    b: &BTreeMap<String, Entry>,
) -> ArchiveChanges {
    let mut out = ArchiveChanges::default();
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for n in names {
        let (x, y) = (a.get(n), b.get(n));
        let change = match (x, y) {
            (Some(x), Some(y)) if x.sha == y.sha => continue,
            (Some(_), Some(_)) => Change::Changed,
            (Some(_), None) => Change::Removed,
            _ => Change::Added,
        };
        let old_text = x.and_then(|e| e.text.as_deref());
        let new_text = y.and_then(|e| e.text.as_deref());
        let lines = match (change, old_text, new_text) {
            (Change::Changed, Some(o), Some(t)) => Some(line_counts(o, t)),
            (Change::Added, _, Some(t)) => Some(line_counts("", t)),
            (Change::Removed, Some(o), _) => Some(line_counts(o, "")),
            _ => None,
        };
        out.entries.push(EntryChange {
            path: n.clone(),
            kind: entry_kind(n),
            change,
            from_size: x.map(|e| e.size),
            to_size: y.map(|e| e.size),
            lines_added: lines.map(|l| l.0),
            lines_removed: lines.map(|l| l.1),
        });
    }
    let (ca, cb) = (connections(a), connections(b));
    out.connections_added = cb.difference(&ca).cloned().collect();
    out.connections_removed = ca.difference(&cb).cloned().collect();
    let (ea, eb) = (endpoints(a), endpoints(b));
    out.endpoints_added = eb.difference(&ea).cloned().collect();
    out.endpoints_removed = ea.difference(&eb).cloned().collect();
    out
}

fn stem(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.rsplit_once('.').map(|(s, _)| s).unwrap_or(file)
}

/// The connections an archive uses: its `appinstances/` (or `connections/`) entries and the
/// adapter codes its flow names.
fn connections(entries: &BTreeMap<String, Entry>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let code = regex::Regex::new(r"<(?:\w+:)?adapter>.*?<(?:\w+:)?code>([^<]+)</").ok();
    for (path, e) in entries {
        if entry_kind(path) == EntryKind::Connection {
            out.insert(stem(path).to_string());
        }
        if path.ends_with("project.xml")
            && let (Some(re), Some(t)) = (&code, &e.text)
        {
            out.extend(re.captures_iter(t).map(|c| c[1].trim().to_string()));
        }
    }
    out
}

/// The endpoints an archive invokes: each flow application as `ROLE CONNECTION`, and every
/// http(s) URL its resources and connection descriptions name.
fn endpoints(entries: &BTreeMap<String, Entry>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let app = regex::Regex::new(
        r"(?s)<(?:\w+:)?application\b[^>]*>.*?<(?:\w+:)?role>([^<]*)</.*?<(?:\w+:)?code>([^<]*)</",
    )
    .ok();
    let url = regex::Regex::new(r#"https?://[^\s"'<>]+"#).ok();
    for (path, e) in entries {
        let Some(t) = &e.text else { continue };
        if path.ends_with("project.xml")
            && let Some(re) = &app
        {
            out.extend(
                re.captures_iter(t)
                    .map(|c| format!("{} {}", c[1].trim(), c[2].trim())),
            );
        }
        if entry_kind(path) != EntryKind::Mapping
            && let Some(re) = &url
        {
            // Namespace URIs are not endpoints.
            out.extend(
                re.find_iter(t)
                    .map(|m| m.as_str().to_string())
                    .filter(|u| !is_namespace(u)),
            );
        }
    }
    out
}

fn is_namespace(u: &str) -> bool {
    [
        "xmlns.oracle.com",
        "www.oracle.com/20",
        "www.w3.org",
        "schemas.xmlsoap.org",
    ]
    .iter()
    .any(|n| u.contains(n))
}

fn fmt_ref(a: &ArtifactRef) -> String {
    if a.version.is_empty() {
        format!("{} {}", a.kind, a.code)
    } else {
        format!("{} {} {}", a.kind, a.code, a.version)
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

fn fmt_entry(e: &EntryChange) -> String {
    let sign = match e.change {
        Change::Added => "+",
        Change::Removed => "-",
        Change::Changed => "~",
    };
    let kind = serde_json::to_value(e.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let lines = match (e.lines_added, e.lines_removed) {
        (Some(a), Some(r)) => format!(" (+{a} -{r} lines)"),
        _ => format!(
            " ({} -> {} bytes)",
            e.from_size.map(|s| s.to_string()).unwrap_or("-".into()),
            e.to_size.map(|s| s.to_string()).unwrap_or("-".into())
        ),
    };
    format!("{sign} {kind:<10} {}{lines}", e.path)
}

impl VaultDiff {
    /// True when nothing was added, removed or changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// The diff as terminal text.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} -> {}: {} added, {} removed, {} changed, {} unchanged",
            self.from,
            self.to,
            self.added.len(),
            self.removed.len(),
            self.changed.len(),
            self.unchanged
        );
        for a in &self.added {
            let _ = writeln!(s, "+ {}", fmt_ref(a));
        }
        for a in &self.removed {
            let _ = writeln!(s, "- {}", fmt_ref(a));
        }
        for c in &self.changed {
            let _ = writeln!(s, "{}", change_title(c));
            for line in change_lines(c) {
                let _ = writeln!(s, "    {line}");
            }
        }
        s
    }

    /// The diff as one self-contained HTML page (same look as a run's report.html).
    pub fn to_html(&self) -> String {
        use crate::ledger::html::escape;
        let mut h = String::new();
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>ferry diff {} -> {}</title>\n</head>\n<body style=\"font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#202124;margin:16px\">\n",
            escape(&self.from),
            escape(&self.to)
        );
        h.push_str(&self.html_section());
        h.push_str("</body>\n</html>\n");
        h
    }

    /// The diff as an HTML fragment (a heading and tables), for embedding in a report.
    pub fn html_section(&self) -> String {
        use crate::ledger::html::escape;
        const TD: &str = "padding:4px 8px;border:1px solid #dadce0;vertical-align:top";
        let mut h = String::new();
        let _ = writeln!(
            h,
            "<h2 style=\"font-size:17px;margin:16px 0 8px 0\">Changes {} &rarr; {}</h2>\n<p>{} added, {} removed, {} changed, {} unchanged</p>",
            escape(&self.from),
            escape(&self.to),
            self.added.len(),
            self.removed.len(),
            self.changed.len(),
            self.unchanged
        );
        h.push_str("<table style=\"border-collapse:collapse\">\n");
        let mut row = |sign: &str, what: String, detail: Vec<String>| {
            let _ = writeln!(
                h,
                "<tr><td style=\"{TD}\">{}</td><td style=\"{TD}\">{}</td><td style=\"{TD};font-family:monospace\">{}</td></tr>",
                escape(sign),
                escape(&what),
                detail
                    .iter()
                    .map(|d| escape(d))
                    .collect::<Vec<_>>()
                    .join("<br>")
            );
        };
        for a in &self.added {
            row("added", fmt_ref(a), vec![]);
        }
        for a in &self.removed {
            row("removed", fmt_ref(a), vec![]);
        }
        for c in &self.changed {
            row("changed", change_title(c)[2..].to_string(), change_lines(c));
        }
        h.push_str("</table>\n");
        h
    }
}

fn change_title(c: &ArtifactChange) -> String {
    let v = if c.from_version == c.to_version {
        c.from_version.clone()
    } else {
        format!("{} -> {}", c.from_version, c.to_version)
    };
    format!(
        "~ {} {} {v} (sha256 {} -> {})",
        c.kind,
        c.code,
        short(&c.from_sha256),
        short(&c.to_sha256)
    )
}

fn change_lines(c: &ArtifactChange) -> Vec<String> {
    let mut out = vec![];
    if let Some(n) = &c.note {
        out.push(format!("(contents not compared: {n})"));
    }
    let Some(x) = &c.contents else { return out };
    let list = |add: &[String], rem: &[String]| {
        add.iter()
            .map(|s| format!("+{s}"))
            .chain(rem.iter().map(|s| format!("-{s}")))
            .collect::<Vec<_>>()
            .join(" ")
    };
    if !x.connections_added.is_empty() || !x.connections_removed.is_empty() {
        out.push(format!(
            "connections: {}",
            list(&x.connections_added, &x.connections_removed)
        ));
    }
    if !x.endpoints_added.is_empty() || !x.endpoints_removed.is_empty() {
        out.push(format!(
            "endpoints: {}",
            list(&x.endpoints_added, &x.endpoints_removed)
        ));
    }
    out.extend(x.entries.iter().map(fmt_entry));
    out
}

/// Reads two archives on disk and compares them (for tests and tools).
pub fn compare_files(
    a: &Path,
    a_id: (&str, &str),
    b: &Path,
    b_id: (&str, &str),
) -> Result<ArchiveChanges, String> {
    let open = |p: &Path| std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()));
    let ea = read_zip(open(a)?, a_id.0, a_id.1)?;
    let eb = read_zip(open(b)?, b_id.0, b_id.1)?;
    Ok(compare_archives(&ea, &eb))
}

/// Exports, from an instance, every integration it has and each other artifact a backup job
/// holds (lookups, libraries, projects), to compare the instance with the job. Up to four
/// exports run at once.
pub async fn export_instance(
    client: &crate::oic::OicClient,
    job: &[ManifestEntry],
) -> Result<Exported, DiffError> {
    use futures::StreamExt;
    let mut keys: BTreeSet<Key> = client
        .list_integrations(None)
        .await?
        .into_iter()
        .map(|i| (ArtifactKind::Integration, i.code.clone(), i.version.clone()))
        .collect();
    keys.extend(
        job.iter()
            .filter(|e| e.kind != ArtifactKind::Integration)
            .map(|e| (e.kind, e.code.clone(), e.version.clone())),
    );
    let results: Vec<Result<Option<Artifact>, crate::oic::OicError>> = futures::stream::iter(keys)
        .map(|(kind, code, version)| export_one(client, kind, code, version))
        .buffer_unordered(4)
        .collect()
        .await;
    let mut artifacts = vec![];
    for r in results {
        if let Some(a) = r? {
            artifacts.push(a);
        }
    }
    Ok(Exported {
        label: format!("instance {}", client.name()),
        artifacts,
    })
}

/// One export; `None` when the instance does not have it (or cannot export that kind).
async fn export_one(
    client: &crate::oic::OicClient,
    kind: ArtifactKind,
    code: String,
    version: String,
) -> Result<Option<Artifact>, crate::oic::OicError> {
    use crate::oic::{IntegrationId, OicError};
    let id = IntegrationId::new(code.clone(), version.clone());
    let r = match kind {
        ArtifactKind::Integration => client.export_integration(&id).await,
        ArtifactKind::Lookup => client.export_lookup(&code).await,
        ArtifactKind::Library => client.export_library(&id).await,
        ArtifactKind::Project => {
            client
                .export_project(&code, &crate::oic::ProjectExport::default())
                .await
        }
        ArtifactKind::Schedule => match super::schedules::export_one(client, &id).await {
            Ok(Some(a)) => Ok(a),
            Ok(None) => return Ok(None),
            Err(e) => Err(e),
        },
        _ => return Ok(None),
    };
    match r {
        Ok(a) => Ok(Some(a)),
        // Not there, or not exportable (a draft, a locked or prebuilt integration).
        Err(e)
            if e.status()
                .is_some_and(|s| (400..500).contains(&s) && s != 401 && s != 403) =>
        {
            Ok(None)
        }
        // Projects on a Gen2 instance.
        Err(OicError::Config(_)) if kind == ArtifactKind::Project => Ok(None),
        Err(e) => Err(e),
    }
}
