//! `ferry errors`: the central error log, every failed step of every run.

use clap::Args;

use super::error::CliError;
use super::exit;
use super::runs::{LedgerOpts, open};
use crate::ledger::report::render_table;
use crate::ledger::{ErrorFilter, stage_from_str};

#[derive(Args, Debug)]
pub struct ErrorsArgs {
    /// Only this run (or `last`).
    #[arg(long, value_name = "RUN")]
    pub run: Option<String>,
    /// Only failures since this date (`2026-11-01`) or time (RFC 3339).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Only this stage: export, store, verify, import, activate, deactivate, delete, connection,
    /// grant, notify.
    #[arg(long, value_name = "STAGE")]
    pub stage: Option<String>,
    /// At most this many (newest first).
    #[arg(long, default_value_t = 100)]
    pub limit: u64,
    #[command(flatten)]
    pub ledger: LedgerOpts,
}

pub fn exec(a: ErrorsArgs) -> u8 {
    let shell = super::shell(false, a.ledger.json);
    match errors(&a) {
        Ok(out) => {
            shell.report(&out);
            exit::OK
        }
        Err(e) => e.report(&shell),
    }
}

/// The failures as a table (or JSON), for the shell to print.
fn errors(a: &ErrorsArgs) -> Result<String, CliError> {
    let since = match &a.since {
        None => None,
        Some(s) => Some(crate::ledger::query::parse_since(s).ok_or_else(|| {
            CliError::Usage(format!(
                "--since: expected a date (2026-11-01) or an RFC 3339 time, found `{s}`"
            ))
        })?),
    };
    let stage = match &a.stage {
        None => None,
        Some(s) => Some(stage_from_str(s).ok_or_else(|| {
            CliError::Usage(format!(
                "--stage: unknown stage `{s}` (export, store, verify, import, activate, deactivate, delete, connection, grant, notify)"
            ))
        })?),
    };
    let db = open(&a.ledger).map_err(CliError::Ledger)?;
    let run = match a.run.as_deref() {
        Some("last") => Some(
            db.last_run(None, None)
                .map_err(|e| CliError::Ledger(e.to_string()))?
                .ok_or_else(|| CliError::Ledger("no run in the ledger yet".into()))?
                .info
                .id,
        ),
        other => other.map(str::to_string),
    };
    let filter = ErrorFilter {
        run,
        since,
        stage,
        limit: Some(a.limit),
        ..Default::default()
    };
    let rows = db
        .errors(&filter)
        .map_err(|e| CliError::Ledger(e.to_string()))?;
    if a.ledger.json {
        return Ok(serde_json::to_string_pretty(&rows).unwrap_or_else(|_| "[]".into()));
    }
    if rows.is_empty() {
        return Ok("No failures.".into());
    }
    let mut table = vec![vec![
        "WHEN".to_string(),
        "RUN".into(),
        "ARTIFACT".into(),
        "STAGE".into(),
        "TARGET".into(),
        "ERROR (root cause first)".into(),
    ]];
    for r in &rows {
        let e = r
            .step
            .error
            .clone()
            .unwrap_or_else(|| crate::ledger::StepError {
                kind: "unknown".into(),
                status: None,
                message: String::new(),
            });
        table.push(vec![
            r.step.started.format("%Y-%m-%d %H:%M:%S").to_string(),
            r.run.clone(),
            format!("{} {}", r.step.kind, r.step.key().id()),
            r.step.stage.as_str().to_string(),
            r.step.target.clone(),
            format!(
                "{}{}: {}",
                e.status.map(|c| format!("HTTP {c} ")).unwrap_or_default(),
                e.kind,
                e.message.replace('\n', " ")
            ),
        ]);
    }
    Ok(format!("{}{} failure(s)", render_table(&table), rows.len()))
}
