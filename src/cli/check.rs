//! `ferry check RECIPE`: parse a recipe and the modules it imports, report errors, do nothing.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use rhai::EvalAltResult;

use super::exit;
use crate::ops::run::{Run, RunKind};
use crate::script::{self, EngineOptions, Output, render};

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The recipe (.rhai) to check.
    pub recipe: PathBuf,
    /// A folder of shared .rhai modules for `import`. Repeatable.
    #[arg(long = "lib", value_name = "DIR")]
    pub libs: Vec<PathBuf>,
}

pub fn exec(a: CheckArgs) -> u8 {
    let text = match script::runner::read_recipe(&a.recipe) {
        Ok(t) => t,
        Err(e) => {
            super::eprint_error(&e);
            return exit::USAGE;
        }
    };
    let name = a.recipe.display().to_string();
    match check_text(&name, &text, &a.libs) {
        Ok(n) => {
            println!("{name}: ok ({n} import(s) checked)");
            exit::OK
        }
        Err(rendered) => {
            eprint!("{rendered}");
            exit::USAGE
        }
    }
}

/// Compiles `text` and every module it imports (transitively); returns the number of imports
/// checked or the rendered first error.
pub fn check_text(name: &str, text: &str, libs: &[PathBuf]) -> Result<usize, String> {
    let rt = super::runtime().map_err(|e| format!("error: cannot start the runtime: {e}\n"))?;
    let run = Run::offline(
        Arc::default(),
        rt.handle().clone(),
        Output::buffer(),
        RunKind::Plan,
    );
    let host = Arc::new(script::Host::new(run));
    host.sources.add(name, text);
    let engine = script::build_engine(host.clone(), &EngineOptions::with_paths(libs, &[]));
    let mut ast = engine
        .compile(text)
        .map_err(|e| render::render(&EvalAltResult::from(e), name, &host.sources))?;
    ast.set_source(name);
    // Resolve every import so that errors in libraries surface now (the resolver compiles the
    // modules those import in turn).
    let resolver = engine.module_resolver();
    let imports = imports_of(&ast);
    for (path, pos) in &imports {
        if let Err(e) = resolver.resolve(&engine, Some(name), path, *pos) {
            return Err(render::render(&e, name, &host.sources));
        }
    }
    Ok(imports.len())
}

fn imports_of(ast: &rhai::AST) -> Vec<(String, rhai::Position)> {
    let mut v = vec![];
    ast.walk(&mut |nodes| {
        if let Some(rhai::ASTNode::Stmt(rhai::Stmt::Import(x, pos))) = nodes.last()
            && let rhai::Expr::StringConstant(s, _) = &x.0
        {
            v.push((s.to_string(), *pos));
        }
        true
    });
    v
}
