//! Restoring one artifact (or a few) from any backup job: which manifest entries a selection
//! like `ORDERS|01.00.0002` or `COUNTRIES` names (`ferry vault restore JOB --only ...`,
//! `job.restore(target, #{ only: [...] })`).

use crate::vault::ManifestEntry;

/// The entries `only` selects: each item is `CODE|VERSION` (that version), or `CODE` (every
/// entry with that code: an integration's versions in the job, a lookup, a project...). Codes
/// compare case-insensitively. Fails, naming the item and what the job holds, when an item
/// selects nothing.
pub fn select(entries: &[ManifestEntry], only: &[String]) -> Result<Vec<ManifestEntry>, String> {
    let mut out: Vec<ManifestEntry> = vec![];
    for item in only {
        let (code, version) = match item.split_once('|') {
            Some((c, v)) => (c.trim(), Some(v.trim())),
            None => (item.trim(), None),
        };
        let hits: Vec<&ManifestEntry> = entries
            .iter()
            .filter(|e| e.code.eq_ignore_ascii_case(code))
            .filter(|e| version.is_none_or(|v| e.version == v))
            .collect();
        if hits.is_empty() {
            return Err(format!(
                "`{item}` is not in the job (it holds {})",
                held(entries)
            ));
        }
        for h in hits {
            if !out.iter().any(|o| o.path == h.path) {
                out.push(h.clone());
            }
        }
    }
    Ok(out)
}

/// The job's artifacts as `CODE|VERSION` (or `CODE`), the first 20.
fn held(entries: &[ManifestEntry]) -> String {
    let mut names: Vec<String> = entries
        .iter()
        .map(|e| {
            if e.version.is_empty() {
                e.code.clone()
            } else {
                format!("{}|{}", e.code, e.version)
            }
        })
        .collect();
    if names.is_empty() {
        return "nothing".into();
    }
    let more = names.len().saturating_sub(20);
    names.truncate(20);
    let mut s = names.join(", ");
    if more > 0 {
        s.push_str(&format!(" and {more} more"));
    }
    s
}
