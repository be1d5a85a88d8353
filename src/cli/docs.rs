//! `ferry docs`: the reference of the script API.

use std::sync::Arc;

use clap::{Args, ValueEnum};

use super::exit;
use crate::script::{self, EngineOptions, Output, docs};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Text,
    Markdown,
    Json,
}

#[derive(Args, Debug)]
pub struct DocsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Only entries whose signature contains this text (e.g. `oic::`, `Instance.`, `export`).
    pub filter: Option<String>,
    /// Write Rhai definition files (`*.d.rhai`) for editors into this folder instead.
    #[arg(long, value_name = "DIR")]
    pub definitions: Option<std::path::PathBuf>,
}

/// An engine for reading metadata: no configuration, nothing connected.
pub fn offline_engine() -> Option<(tokio::runtime::Runtime, rhai::Engine)> {
    let rt = super::runtime().ok()?;
    let run = crate::ops::run::Run::offline(
        Arc::default(),
        rt.handle().clone(),
        Output::buffer(),
        crate::ops::run::RunKind::Plan,
    );
    let host = Arc::new(script::Host::new(run));
    let mut engine = script::build_engine(host, &EngineOptions::default());
    super::test::register(&mut engine);
    Some((rt, engine))
}

pub fn exec(a: DocsArgs) -> u8 {
    let Some((_rt, engine)) = offline_engine() else {
        super::eprint_error("cannot start the runtime");
        return exit::USAGE;
    };
    if let Some(dir) = &a.definitions {
        return match docs::write_definitions(&engine, dir) {
            Ok(files) => {
                println!(
                    "wrote {} definition files to {}",
                    files.len(),
                    dir.display()
                );
                exit::OK
            }
            Err(e) => {
                super::eprint_error(&format!(
                    "cannot write definitions to {}: {e}",
                    dir.display()
                ));
                exit::USAGE
            }
        };
    }
    let (groups, mut entries) = docs::collect(&engine);
    if let Some(f) = &a.filter {
        entries.retain(|e| e.signature.contains(f.as_str()) || e.group == *f);
    }
    let text = match a.format {
        Format::Text => docs::render_text(&groups, &entries),
        Format::Markdown => docs::render_markdown(&groups, &entries),
        Format::Json => serde_json::to_string_pretty(
            &serde_json::json!({ "modules": groups, "entries": entries }),
        )
        .unwrap_or_default(),
    };
    print!("{text}");
    exit::OK
}
