//! Where `import "name"` finds its module: the importing file's folder, then `--lib` folders,
//! `$FERRY_PATH`, the config's `[script] lib_paths`, and last the `stdlib/` shipped inside the
//! binary. Each module is compiled with its file path as its source, so errors inside it name the
//! file; compiled modules are cached per run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};

use super::render::Sources;

/// The `stdlib/` modules, embedded so an installed `ferry` works anywhere.
pub const STDLIB: &[(&str, &str)] = &[
    ("select", include_str!("../../stdlib/select.rhai")),
    ("naming", include_str!("../../stdlib/naming.rhai")),
    ("report", include_str!("../../stdlib/report.rhai")),
    ("roles", include_str!("../../stdlib/roles.rhai")),
    ("envs", include_str!("../../stdlib/envs.rhai")),
];

/// The resolver.
pub struct Resolver {
    paths: Vec<PathBuf>,
    sources: Sources,
    cache: Mutex<HashMap<String, Shared<Module>>>,
}

impl Resolver {
    /// `paths` are searched in order after the importing file's own folder; the embedded stdlib
    /// comes last.
    pub fn new(paths: Vec<PathBuf>, sources: Sources) -> Resolver {
        Resolver {
            paths,
            sources,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The search order, for `ferry docs` and the REPL.
    pub fn search_order(&self) -> Vec<String> {
        let mut v = vec!["<folder of the importing file>".to_string()];
        v.extend(self.paths.iter().map(|p| p.display().to_string()));
        v.push("<stdlib embedded in ferry>".to_string());
        v
    }

    fn locate(&self, source: Option<&str>, name: &str) -> Option<(String, String)> {
        let file = if name.ends_with(".rhai") {
            name.to_string()
        } else {
            format!("{name}.rhai")
        };
        let mut dirs: Vec<PathBuf> = vec![];
        if let Some(src) = source
            && !src.starts_with("stdlib:")
            && let Some(parent) = Path::new(src).parent()
        {
            dirs.push(parent.to_path_buf());
        }
        dirs.extend(self.paths.iter().cloned());
        for d in dirs {
            let p = d.join(&file);
            if p.is_file()
                && let Ok(text) = std::fs::read_to_string(&p)
            {
                return Some((display(&p), text));
            }
        }
        let bare = name.trim_end_matches(".rhai");
        STDLIB
            .iter()
            .find(|(n, _)| *n == bare)
            .map(|(n, text)| (format!("stdlib:{n}.rhai"), text.to_string()))
    }
}

fn display(p: &Path) -> String {
    let s = p.display().to_string();
    s.strip_prefix("./").map(str::to_string).unwrap_or(s)
}

impl ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let Some((shown, text)) = self.locate(source, path) else {
            return Err(EvalAltResult::ErrorModuleNotFound(path.to_string(), pos).into());
        };
        if let Some(m) = self.cache.lock().expect("module cache").get(&shown) {
            return Ok(m.clone());
        }
        self.sources.add(&shown, &text);
        let mut ast = engine.compile(&text).map_err(|e| {
            Box::new(EvalAltResult::ErrorInModule(
                shown.clone(),
                Box::new(EvalAltResult::from(e)),
                pos,
            ))
        })?;
        ast.set_source(shown.as_str());
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(|e| Box::new(EvalAltResult::ErrorInModule(shown.clone(), e, pos)))?;
        let m: Shared<Module> = module.into();
        self.cache
            .lock()
            .expect("module cache")
            .insert(shown, m.clone());
        Ok(m)
    }
}
