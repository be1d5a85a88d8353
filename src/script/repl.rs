//! The REPL: one scope for the whole session, functions and imports kept across lines, multi-line
//! input decided by the parser, history in the user's state folder, errors rendered like batch
//! mode.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use rhai::{AST, Dynamic, Engine, EvalAltResult, Scope};
use rustyline::error::ReadlineError;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Completer, Helper, Highlighter, Hinter};

use super::{Host, render};

/// Multi-line input: ask for more while the parser says the input is unfinished.
#[derive(Helper, Completer, Hinter, Highlighter)]
pub struct ReplHelper {
    engine: Arc<Engine>,
}

/// True when `input` fails to parse only because it ends too early.
pub fn is_incomplete(engine: &Engine, input: &str) -> bool {
    if input.trim_start().starts_with(':') {
        return false;
    }
    match engine.compile(input) {
        Ok(_) => false,
        Err(e) => {
            use rhai::ParseErrorType as P;
            match e.err_type() {
                P::UnexpectedEOF => true,
                P::MissingToken(t, _) if t == "}" || t == "]" || t == ")" => {
                    // Only when the missing token is at the very end of the input.
                    let lines = input.split('\n').count();
                    e.position().line().map(|l| l >= lines).unwrap_or(true)
                }
                P::BadInput(le) => {
                    le.to_string().contains("Open string") || le.to_string().contains("nterminated")
                }
                _ => false,
            }
        }
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        Ok(if is_incomplete(&self.engine, ctx.input()) {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}

/// The REPL session.
pub struct Session {
    pub host: Arc<Host>,
    pub engine: Engine,
    pub scope: Scope<'static>,
    functions: AST,
    count: usize,
}

/// What one entry produced.
pub enum Entry {
    /// A value to show (or nothing).
    Value(Option<String>),
    /// A rendered error.
    Error(String),
    /// Leave the REPL.
    Quit,
}

impl Session {
    pub fn new(host: Arc<Host>, engine: Engine) -> Session {
        Session {
            host,
            engine,
            scope: Scope::new(),
            functions: AST::empty(),
            count: 0,
        }
    }

    /// Evaluates one entry (a `:command` or script text).
    pub fn eval(&mut self, input: &str) -> Entry {
        let t = input.trim();
        if t.is_empty() {
            return Entry::Value(None);
        }
        if let Some(cmd) = t.strip_prefix(':') {
            return self.command(cmd);
        }
        self.count += 1;
        let name = format!("<repl:{}>", self.count);
        self.host.sources.add(&name, input);
        let ast = match self.engine.compile_with_scope(&self.scope, input) {
            Ok(mut a) => {
                a.set_source(name.as_str());
                a
            }
            Err(e) => {
                return Entry::Error(render::render(
                    &EvalAltResult::from(e),
                    &name,
                    &self.host.sources,
                ));
            }
        };
        // Imports do not outlive an evaluation: register `import "x" as y;` as a static module.
        let imports = imports_with_alias(&ast);
        let combined = self.functions.merge(&ast);
        let result = self
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut self.scope, &combined);
        self.functions = combined.clone_functions_only();
        for (path, alias) in imports {
            if let Ok(m) = self.engine.module_resolver().resolve(
                &self.engine,
                Some(&name),
                &path,
                rhai::Position::NONE,
            ) {
                self.engine.register_static_module(alias.as_str(), m);
            }
        }
        match result {
            Ok(v) if v.is_unit() => Entry::Value(None),
            Ok(v) => Entry::Value(Some(super::api::display_value(&v))),
            Err(e) => Entry::Error(render::render(&e, &name, &self.host.sources)),
        }
    }

    fn command(&mut self, cmd: &str) -> Entry {
        let (word, arg) = cmd
            .split_once(' ')
            .map(|(a, b)| (a, b.trim()))
            .unwrap_or((cmd, ""));
        match word {
            "quit" | "q" | "exit" => Entry::Quit,
            "vars" => {
                let mut lines = vec![];
                for (name, _const, value) in self.scope.iter_raw() {
                    lines.push(format!(
                        "{name} = {}",
                        super::api::display_value(value)
                            .lines()
                            .next()
                            .unwrap_or("")
                    ));
                }
                Entry::Value(Some(if lines.is_empty() {
                    "(no variables)".into()
                } else {
                    lines.join("\n")
                }))
            }
            "help" => {
                let (groups, entries) = super::docs::collect(&self.engine);
                if arg.is_empty() {
                    let mut s = String::from(
                        "Commands: :help [NAME], :vars, :load FILE, :quit (or Ctrl-D)\nModules and types:\n",
                    );
                    for g in &groups {
                        s.push_str(&format!(
                            "  {:<16} {}\n",
                            g.name,
                            g.doc.lines().next().unwrap_or("")
                        ));
                    }
                    s.push_str("Type :help NAME for a function, method or module (e.g. :help oic::instance, :help Instance).");
                    Entry::Value(Some(s))
                } else {
                    let found: Vec<_> = entries
                        .iter()
                        .filter(|e| e.signature.contains(arg) || e.group == arg)
                        .collect();
                    if found.is_empty() {
                        Entry::Value(Some(format!("nothing documented matches `{arg}`")))
                    } else {
                        Entry::Value(Some(
                            found
                                .iter()
                                .map(|e| format!("{}\n{}\n", e.signature, indent(&e.doc)))
                                .collect::<Vec<_>>()
                                .join("\n"),
                        ))
                    }
                }
            }
            "load" => match std::fs::read_to_string(arg) {
                Ok(text) => self.eval(&text),
                Err(e) => Entry::Error(format!("error: cannot read {arg}: {e}\n")),
            },
            other => Entry::Error(format!("error: unknown command `:{other}` (try :help)\n")),
        }
    }
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn imports_with_alias(ast: &AST) -> Vec<(String, String)> {
    let mut v = vec![];
    ast.walk(&mut |nodes| {
        if nodes.len() <= 2
            && let Some(rhai::ASTNode::Stmt(rhai::Stmt::Import(x, _))) = nodes.last()
            && let rhai::Expr::StringConstant(s, _) = &x.0
            && !x.1.name.is_empty()
        {
            v.push((s.to_string(), x.1.name.to_string()));
        }
        true
    });
    v
}

/// The history file: `$XDG_STATE_HOME/ferry/history` (or the data folder).
pub fn history_path() -> Option<PathBuf> {
    let base = dirs::state_dir().or_else(dirs::data_local_dir)?;
    let dir = base.join("ferry");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("history"))
}

/// Runs the interactive loop until `:quit` or Ctrl-D.
pub fn run_interactive(mut session: Session) -> rustyline::Result<()> {
    let helper_engine = {
        let mut e = Engine::new_raw();
        e.set_max_expr_depths(64, 32);
        Arc::new(e)
    };
    let mut rl: rustyline::Editor<ReplHelper, rustyline::history::DefaultHistory> =
        rustyline::Editor::new()?;
    rl.set_helper(Some(ReplHelper {
        engine: helper_engine,
    }));
    let hist = history_path();
    if let Some(h) = &hist {
        let _ = rl.load_history(h);
    }
    println!(
        "ferry {} REPL. :help for help, Ctrl-D to leave.",
        env!("CARGO_PKG_VERSION")
    );
    loop {
        match rl.readline("ferry> ") {
            Ok(line) => {
                let _ = rl.add_history_entry(line.as_str());
                match session.eval(&line) {
                    Entry::Value(Some(v)) => println!("{}", session.host.config.scrub(&v)),
                    Entry::Value(None) => {}
                    Entry::Error(e) => eprint!("{}", session.host.config.scrub(&e)),
                    Entry::Quit => break,
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e),
        }
    }
    if let Some(h) = &hist {
        let _ = rl.save_history(h);
    }
    Ok(())
}

impl std::fmt::Debug for ReplHelper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplHelper")
    }
}

#[allow(dead_code)]
fn _cow(_: Cow<'_, str>) {}
