//! `ferry init [DIR]`: a commented `ferry.toml` and a recipe folder with one recipe and its test,
//! which `ferry test recipes` passes at once. Existing files are never overwritten.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{eprint_error, exit};

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The folder to set up (created when missing; default: the current folder).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

/// The files `ferry init` writes: (path relative to DIR, template). Embedded, so an installed
/// `ferry` needs no source tree.
const FILES: &[(&str, &str)] = &[
    (
        "ferry.toml",
        include_str!("../../templates/init/ferry.toml"),
    ),
    (
        "recipes/promote.rhai",
        include_str!("../../templates/init/recipes/promote.rhai"),
    ),
    (
        "recipes/promote_test.rhai",
        include_str!("../../templates/init/recipes/promote_test.rhai"),
    ),
];

/// The `ferry.toml` template with its placeholders filled in for `dir` (an absolute path).
pub fn render(template: &str, dir: &Path) -> String {
    let vault = dir.join("backups");
    let url = url::Url::from_file_path(&vault)
        .map(String::from)
        .unwrap_or_else(|_| format!("file://{}", vault.display()));
    template.replace("{{VAULT_URL}}", &url)
}

pub fn exec(args: InitArgs) -> u8 {
    let dir = match std::path::absolute(&args.dir) {
        Ok(d) => d,
        Err(e) => {
            eprint_error(&format!("{}: {e}", args.dir.display()));
            return exit::USAGE;
        }
    };
    let existing: Vec<String> = FILES
        .iter()
        .map(|(rel, _)| dir.join(rel))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() {
        eprint_error(&format!(
            "ferry init writes nothing over existing files; already there: {} (move them away or choose another folder)",
            existing.join(", ")
        ));
        return exit::USAGE;
    }
    for (rel, template) in FILES {
        let path = dir.join(rel);
        if let Err(e) = write_new(&path, &render(template, &dir)) {
            eprint_error(&format!("cannot write {}: {e}", path.display()));
            return exit::FAILED;
        }
        println!("wrote {}", path.display());
    }
    let rec = shown(&args.dir.join("recipes"));
    let cfg = shown(&args.dir.join("ferry.toml"));
    println!("\nNext:");
    println!("  ferry test {rec}                        # the recipe's test, offline");
    println!("  ferry run {rec}/promote.rhai --sandbox  # the recipe, on emulated instances");
    println!("  edit {cfg} (the values marked CHANGE ME), then: ferry plan {rec}/promote.rhai");
    exit::OK
}

/// A path as the user typed it, without a leading `./`.
fn shown(p: &Path) -> String {
    p.strip_prefix(".").unwrap_or(p).display().to_string()
}

/// Creates `path` (and its folder); fails when it exists, even if it appeared since the check.
fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(text.as_bytes())
}
