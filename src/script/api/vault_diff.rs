//! `vault::diff(a, b)`: what changed between two backup jobs (a thin binding over
//! [`crate::ops::vault_diff`]). The diff is also added to the run's report.html.

use rhai::{Dynamic, EvalAltResult};

use super::vault::{Job, reader_of};
use crate::ops::vault_diff::{self, DiffOptions};
use crate::script::errors::{self, Ctx};

/// Compares job `a` (older) with job `b` (newer).
pub fn diff(a: &Job, b: &Job, opts: &Dynamic) -> Result<Dynamic, Box<EvalAltResult>> {
    let opts: DiffOptions = if opts.is_unit() {
        DiffOptions::default()
    } else {
        rhai::serde::from_dynamic(opts).map_err(|e| errors::usage(format!("diff: {e}")))?
    };
    let (ra, rb) = (reader_of(a)?, reader_of(b)?);
    let vault = a.state.vault_name.clone();
    let d = a
        .host
        .block_on(async move {
            tokio::task::spawn_blocking(move || vault_diff::diff(&*ra, &*rb, &opts)).await
        })?
        .map_err(|e| errors::script_error("internal", None, e.to_string(), Ctx::default()))?
        .map_err(|e| errors::script_error("vault", None, e.to_string(), Ctx::instance(&vault)))?;
    a.host.exec.record().add_report_section(&d.html_section());
    rhai::serde::to_dynamic(&d)
}
