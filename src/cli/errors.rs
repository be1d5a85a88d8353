//! `ferry errors`: the central error log, every failed step of every run.

use clap::Args;

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
    let since = match &a.since {
        None => None,
        Some(s) => match crate::script::api::ledger::parse_since(s) {
            Some(t) => Some(t),
            None => {
                super::eprint_error(&format!(
                    "--since: expected a date (2026-11-01) or an RFC 3339 time, found `{s}`"
                ));
                return exit::USAGE;
            }
        },
    };
    let stage = match &a.stage {
        None => None,
        Some(s) => match stage_from_str(s) {
            Some(st) => Some(st),
            None => {
                super::eprint_error(&format!(
                    "--stage: unknown stage `{s}` (export, store, verify, import, activate, deactivate, delete, connection, grant, notify)"
                ));
                return exit::USAGE;
            }
        },
    };
    let db = match open(&a.ledger) {
        Ok(d) => d,
        Err(e) => {
            super::eprint_error(&e);
            return exit::USAGE;
        }
    };
    let run = match a.run.as_deref() {
        Some("last") => match db.last_run(None, None) {
            Ok(Some(r)) => Some(r.info.id),
            Ok(None) => {
                super::eprint_error("no run in the ledger yet");
                return exit::USAGE;
            }
            Err(e) => {
                super::eprint_error(&e.to_string());
                return exit::USAGE;
            }
        },
        other => other.map(str::to_string),
    };
    let filter = ErrorFilter {
        run,
        since,
        stage,
        limit: Some(a.limit),
        ..Default::default()
    };
    let rows = match db.errors(&filter) {
        Ok(r) => r,
        Err(e) => {
            super::eprint_error(&e.to_string());
            return exit::USAGE;
        }
    };
    if a.ledger.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_else(|_| "[]".into())
        );
        return exit::OK;
    }
    if rows.is_empty() {
        println!("No failures.");
        return exit::OK;
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
    print!("{}", render_table(&table));
    println!("{} failure(s)", rows.len());
    exit::OK
}
