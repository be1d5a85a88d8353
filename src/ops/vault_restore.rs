//! Restoring one artifact (or a few) from any backup job: which manifest entries a selection
//! like `ORDERS|01.00.0002` or `COUNTRIES` names (`ferry vault restore JOB --only ...`,
//! `job.restore(target, #{ only: [...] })`).

use std::sync::Arc;

use super::ctx::fan_out;
use super::import::{ImportOptions, ImportResult, import_archives};
use super::{Ctx, OpsError};
use crate::effect::{Effect, Failure};
use crate::ledger::Stage;
use crate::vault::{JobStatus, ManifestEntry, Vault};

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

/// Options of a restore from the command line (`ferry vault restore`).
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// `CODE|VERSION` or `CODE` items; empty: the whole job.
    pub only: Vec<String>,
    /// Restore what a partial job holds.
    pub accept_partial: bool,
    /// How to import (the defaults of `import_archives`).
    pub import: ImportOptions,
}

fn vault_err(at: &str, e: impl std::fmt::Display) -> OpsError {
    OpsError::Vault {
        at: at.to_string(),
        message: e.to_string(),
    }
}

/// Restores job `job_path` of vault `vault_name` into instance `target`: fetches every selected
/// archive (each verified against the manifest, one `verify` step; a tampered file or a wrong
/// key is refused before anything is imported), then imports them and re-applies their
/// activation states. A partial job is refused unless `accept_partial`.
pub async fn restore(
    ctx: &dyn Ctx,
    vault_name: &str,
    job_path: &str,
    target: &str,
    o: &RestoreOptions,
) -> Result<Vec<ImportResult>, OpsError> {
    let profile = ctx.config().vault(vault_name)?.clone();
    let vault = tokio::task::spawn_blocking(move || Vault::open(&profile))
        .await
        .map_err(|e| vault_err(vault_name, e))?
        .map_err(|e| vault_err(vault_name, e))?;
    let p = job_path.to_string();
    let reader = tokio::task::spawn_blocking(move || vault.open_job(&p))
        .await
        .map_err(|e| vault_err(vault_name, e))?
        .map_err(|e| vault_err(vault_name, e))?;
    let reader = Arc::new(reader);
    let m = reader.manifest();
    if m.status == JobStatus::Partial && !o.accept_partial {
        return Err(vault_err(
            vault_name,
            format!(
                "{}; restore what it holds with --accept-partial",
                super::job::partial_line(reader.path(), &m.missing)
            ),
        ));
    }
    let entries = if o.only.is_empty() {
        m.entries.clone()
    } else {
        select(&m.entries, &o.only)
            .map_err(|e| OpsError::Usage(format!("job {}: {e}", reader.path())))?
    };
    let client = ctx.client(target)?;
    let fetched = fan_out(
        ctx.bar(entries.len(), "verify"),
        ctx.bounds().exports,
        entries,
        |entry| {
            let reader = reader.clone();
            async move {
                let eff = Effect::new(
                    Stage::Verify,
                    entry.key(),
                    vault_name,
                    format!("fetch and verify {}", entry.path),
                )
                .with_sha256(Some(entry.sha256.clone()));
                ctx.exec()
                    .run_read(eff, || {
                        let (reader, entry) = (reader.clone(), entry.clone());
                        async move {
                            let r = tokio::task::spawn_blocking(move || {
                                reader.fetch(&entry).map(|mut a| {
                                    a.source = entry.source.clone();
                                    a
                                })
                            })
                            .await;
                            match r {
                                Ok(Ok(a)) => Ok(a),
                                Ok(Err(e)) => Err(Failure::from(e)),
                                Err(e) => Err(Failure::Task(e.to_string())),
                            }
                        }
                    })
                    .await
            }
        },
    )
    .await;
    let mut arts = vec![];
    for r in fetched {
        match r {
            Ok(a) => arts.push(a),
            Err(e) if e.cancelled => return Err(OpsError::Cancelled),
            // Recorded as a failed verify step; the rest is restored.
            Err(_) => {}
        }
    }
    import_archives(ctx, &client, arts, &o.import).await
}
