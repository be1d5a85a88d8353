//! The REPL: one scope for the whole session, functions and imports kept across lines, multi-line
//! input decided by the parser, history in the user's state folder, errors rendered like batch
//! mode.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rhai::{AST, Dynamic, Engine, EvalAltResult, Scope};
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Helper, Highlighter, Hinter};

use super::{EngineOptions, Host, render};
use crate::ops::run::RunOutcome;

/// The REPL's line helper: multi-line input decided by the parser, and tab completion.
#[derive(Helper, Hinter, Highlighter)]
pub struct ReplHelper {
    engine: Arc<Engine>,
    names: Arc<Mutex<Completions>>,
}

/// What the completer offers, refreshed after every entry.
#[derive(Clone, Debug, Default)]
pub struct Completions {
    /// Static modules (and imported aliases) with their functions.
    pub modules: BTreeMap<String, Vec<String>>,
    /// Global functions.
    pub globals: Vec<String>,
    /// Methods and properties per script type.
    pub members: BTreeMap<String, Vec<String>>,
    /// Variables in the scope, with their type's short name.
    pub vars: Vec<(String, String)>,
    /// Instance and vault profile names from the configuration.
    pub profiles: Vec<String>,
    /// Integration codes seen in lists fetched so far.
    pub codes: BTreeSet<String>,
}

const COMMANDS: &[&str] = &[":help", ":vars", ":load", ":plan", ":json", ":quit"];

const KEYWORDS: &[&str] = &[
    "let", "const", "fn", "if", "else", "for", "in", "while", "loop", "return", "throw", "try",
    "catch", "import", "true", "false", "print",
];

impl Completions {
    /// Candidates for the text before the cursor: the start of the word and the words.
    pub fn complete(&self, line: &str) -> (usize, Vec<String>) {
        // Inside a string: profile names and integration codes.
        if line.matches('"').count() % 2 == 1 {
            let start = line.rfind('"').map(|i| i + 1).unwrap_or(0);
            let word = &line[start..];
            let mut v: Vec<String> = self
                .profiles
                .iter()
                .chain(self.codes.iter())
                .filter(|c| c.starts_with(word))
                .cloned()
                .collect();
            v.sort();
            v.dedup();
            return (start, v);
        }
        let start = line
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == ':' || *c == '.'))
            .map(|(i, c)| i + c.len_utf8())
            .unwrap_or(0);
        let word = &line[start..];
        if start == 0 && word.starts_with(':') && !word.contains("::") {
            return (
                0,
                COMMANDS
                    .iter()
                    .filter(|c| c.starts_with(word))
                    .map(|c| c.to_string())
                    .collect(),
            );
        }
        if let Some((module, rest)) = word.rsplit_once("::") {
            let v = self
                .modules
                .get(module)
                .map(|fns| {
                    fns.iter()
                        .filter(|f| f.starts_with(rest))
                        .map(|f| format!("{module}::{f}"))
                        .collect()
                })
                .unwrap_or_default();
            return (start, v);
        }
        if let Some(dot) = word.rfind('.') {
            let (before, rest) = (&word[..dot], &word[dot + 1..]);
            let ty = self
                .vars
                .iter()
                .find(|(n, _)| n == before)
                .map(|(_, t)| t.clone());
            let mut v: Vec<String> = match ty.as_deref().and_then(|t| self.members.get(t)) {
                Some(m) => m.clone(),
                None => self.members.values().flatten().cloned().collect(),
            };
            v.retain(|m| m.starts_with(rest));
            v.sort();
            v.dedup();
            let at = start + dot + 1;
            return (at, v);
        }
        let mut v: Vec<String> = self
            .vars
            .iter()
            .map(|(n, _)| n.clone())
            .chain(self.globals.iter().cloned())
            .chain(self.modules.keys().map(|m| format!("{m}::")))
            .chain(KEYWORDS.iter().map(|k| k.to_string()))
            .filter(|c| c.starts_with(word))
            .collect();
        v.sort();
        v.dedup();
        (start, v)
    }
}

impl Completer for ReplHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let names = self.names.lock().map(|n| n.clone()).unwrap_or_default();
        Ok(names.complete(&line[..pos]))
    }
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
                // A missing `}`, `]`, `)` or `;` right at the end: an open block, list or call.
                P::MissingToken(..) => at_end(input, e.position()),
                P::BadInput(le) => {
                    le.to_string().contains("Open string") || le.to_string().contains("nterminated")
                }
                _ => false,
            }
        }
    }
}

/// True when `pos` is at (or past) the end of `input`.
fn at_end(input: &str, pos: rhai::Position) -> bool {
    let trimmed = input.trim_end();
    let lines: Vec<&str> = trimmed.split('\n').collect();
    let (Some(line), col) = (pos.line(), pos.position().unwrap_or(0)) else {
        return true;
    };
    line > lines.len()
        || (line == lines.len() && col > lines.last().map(|l| l.chars().count()).unwrap_or(0))
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
    /// Show values as JSON (`--json`, `:json on`).
    pub json: bool,
    opts: EngineOptions,
    functions: AST,
    count: usize,
    /// The last script entry (for `:plan`).
    last: Option<String>,
    /// Modules imported with `import "x" as y;`, re-registered in plan engines.
    imported: Vec<(String, rhai::Shared<rhai::Module>)>,
    /// What the completer offers.
    pub names: Arc<Mutex<Completions>>,
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
    /// A session over `engine` (built from `host` with `opts`).
    pub fn new(host: Arc<Host>, engine: Engine) -> Session {
        Session::with_options(host, engine, EngineOptions::default())
    }

    /// A session whose `:plan` engines use the same module paths as `engine`.
    pub fn with_options(host: Arc<Host>, engine: Engine, opts: EngineOptions) -> Session {
        let (_, entries) = super::docs::collect(&engine);
        let n = super::docs::names(&entries);
        let mut profiles: Vec<String> = host
            .config
            .instances
            .keys()
            .chain(host.config.vaults.keys())
            .cloned()
            .collect();
        profiles.sort();
        let names = Completions {
            modules: n.modules,
            globals: n.globals,
            members: n.members,
            vars: vec![],
            profiles,
            codes: BTreeSet::new(),
        };
        Session {
            host,
            engine,
            scope: Scope::new(),
            json: false,
            opts,
            functions: AST::empty(),
            count: 0,
            last: None,
            imported: vec![],
            names: Arc::new(Mutex::new(names)),
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
        self.last = Some(input.to_string());
        self.run_text(&name, input)
    }

    /// Compiles and runs `text` (shown as `name` in errors) in the session's scope.
    fn run_text(&mut self, name: &str, input: &str) -> Entry {
        self.host.interrupt.reset();
        self.host.sources.add(name, input);
        let ast = match self.engine.compile_with_scope(&self.scope, input) {
            Ok(mut a) => {
                a.set_source(name);
                a
            }
            Err(e) => {
                return Entry::Error(render::render(
                    &EvalAltResult::from(e),
                    name,
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
                Some(name),
                &path,
                rhai::Position::NONE,
            ) {
                let fns: Vec<String> = m
                    .gen_fn_signatures_with_mapper(|t| t.into())
                    .filter_map(|sig| {
                        let head = sig.split('(').next()?.trim();
                        let head = head.strip_prefix("fn ").unwrap_or(head);
                        (!head.starts_with("anon$")).then(|| head.to_string())
                    })
                    .collect();
                if let Ok(mut n) = self.names.lock() {
                    n.modules.insert(alias.clone(), fns);
                }
                self.engine
                    .register_static_module(alias.as_str(), m.clone());
                self.imported.retain(|(a, _)| *a != alias);
                self.imported.push((alias, m));
            }
        }
        self.refresh_names(result.as_ref().ok());
        match result {
            Ok(v) if v.is_unit() => Entry::Value(None),
            Ok(v) => Entry::Value(Some(self.show(&v))),
            Err(e) => Entry::Error(render::render(&e, name, &self.host.sources)),
        }
    }

    /// A value as the session shows it (tables and blocks, or JSON).
    pub fn show(&self, v: &Dynamic) -> String {
        if self.json {
            serde_json::to_string_pretty(&json_value(v)).unwrap_or_default()
        } else {
            super::display::display_value(v)
        }
    }

    fn refresh_names(&self, result: Option<&Dynamic>) {
        let Ok(mut n) = self.names.lock() else {
            return;
        };
        n.vars = self
            .scope
            .iter_raw()
            .map(|(name, _, v)| {
                let ty = v.type_name();
                (
                    name.to_string(),
                    ty.rsplit("::").next().unwrap_or(ty).to_string(),
                )
            })
            .collect();
        let mut codes = vec![];
        for v in self.scope.iter_raw().map(|(_, _, v)| v).chain(result) {
            collect_codes(v, &mut codes);
        }
        n.codes.extend(codes);
    }

    fn command(&mut self, cmd: &str) -> Entry {
        let (word, arg) = cmd
            .split_once(char::is_whitespace)
            .map(|(a, b)| (a, b.trim()))
            .unwrap_or((cmd, ""));
        match word {
            "quit" | "q" | "exit" => Entry::Quit,
            "vars" => {
                let mut lines = vec![];
                for (name, _const, value) in self.scope.iter_raw() {
                    lines.push(format!(
                        "{name} = {}",
                        super::display::display_value(value)
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
            "json" => {
                match arg {
                    "on" => self.json = true,
                    "off" => self.json = false,
                    "" => self.json = !self.json,
                    other => {
                        return Entry::Error(format!(
                            "error: `:json {other}`: expected on or off\n"
                        ));
                    }
                }
                Entry::Value(Some(format!(
                    "json output {}",
                    if self.json { "on" } else { "off" }
                )))
            }
            "help" => Entry::Value(Some(self.help(arg))),
            "load" => {
                if arg.is_empty() {
                    return Entry::Error("error: `:load FILE`: which file?\n".into());
                }
                match std::fs::read_to_string(arg) {
                    Ok(text) => {
                        let shown = arg.strip_prefix("./").unwrap_or(arg).to_string();
                        self.last = Some(text.clone());
                        self.run_text(&shown, &text)
                    }
                    Err(e) => Entry::Error(format!("error: cannot read {arg}: {e}\n")),
                }
            }
            "plan" => {
                let text = if arg.is_empty() {
                    match &self.last {
                        Some(t) => t.clone(),
                        None => {
                            return Entry::Error(
                                "error: nothing to plan yet (type an entry, or `:plan CODE`)\n"
                                    .into(),
                            );
                        }
                    }
                } else {
                    arg.to_string()
                };
                self.plan(&text)
            }
            other => Entry::Error(format!("error: unknown command `:{other}` (try :help)\n")),
        }
    }

    fn help(&self, arg: &str) -> String {
        let (groups, entries) = super::docs::collect(&self.engine);
        if arg.is_empty() {
            let mut s = String::from(
                "Commands:\n  :help [NAME]     this overview, or the reference of a function, method, property or module\n  :vars            the variables of the session\n  :load FILE       run a recipe into the session (its variables and functions stay)\n  :plan [CODE]     describe the effects of the last entry (or of CODE) instead of doing them\n  :json [on|off]   show values as JSON\n  :quit            leave (or Ctrl-D); Ctrl-C cancels the running entry\nModules and types:\n",
            );
            for g in &groups {
                s.push_str(&format!(
                    "  {:<16} {}\n",
                    g.name,
                    g.doc.lines().next().unwrap_or("")
                ));
            }
            s.push_str("Type :help NAME for a function, method or module (e.g. :help oic::instance, :help Instance, :help select).");
            return s;
        }
        let bare = arg.trim_end_matches("()");
        let exact: Vec<_> = entries
            .iter()
            .filter(|e| {
                e.group == bare
                    || e.group == format!("stdlib:{bare}")
                    || e.name == bare
                    || format!("{}::{}", e.group.trim_start_matches("stdlib:"), e.name) == bare
                    || format!("{}.{}", e.group, e.name) == bare
            })
            .collect();
        let found: Vec<_> = if exact.is_empty() {
            entries
                .iter()
                .filter(|e| e.signature.contains(bare))
                .collect()
        } else {
            exact
        };
        if found.is_empty() {
            return format!("nothing documented matches `{arg}`");
        }
        let mut out = String::new();
        if let Some(g) = groups
            .iter()
            .find(|g| g.name == bare || g.name == format!("stdlib:{bare}"))
            && !g.doc.is_empty()
        {
            out.push_str(&format!("{}\n\n", g.doc));
        }
        out.push_str(
            &found
                .iter()
                .map(|e| format!("{}\n{}\n", e.signature, indent(&e.doc)))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        out
    }

    /// Runs `text` against a dry-run copy of the session (the same instances, variables and
    /// functions) and describes the effects it would have; nothing is changed, and the session's
    /// own variables are left as they were.
    pub fn plan(&mut self, text: &str) -> Entry {
        let run = crate::ops::run::Run::offline(
            self.host.config.clone(),
            self.host.rt.clone(),
            self.host.out.clone(),
            crate::ops::run::RunKind::Plan,
        );
        let mut host = Host::new(run);
        host.vars = self.host.vars.clone();
        host.sandbox = self.host.sandbox;
        host.interrupt = self.host.interrupt.clone();
        let host = Arc::new(host);
        let mut engine = super::build_engine(host.clone(), &self.opts);
        for (alias, m) in &self.imported {
            engine.register_static_module(alias.as_str(), m.clone());
        }
        let mut scope = Scope::new();
        for (name, is_const, v) in self.scope.iter_raw() {
            let v = rebind(v, &host);
            if is_const {
                scope.push_constant_dynamic(name.to_string(), v);
            } else {
                scope.push_dynamic(name.to_string(), v);
            }
        }
        self.host.interrupt.reset();
        let name = "<repl:plan>";
        self.host.sources.add(name, text);
        let ast = match engine.compile_with_scope(&scope, text) {
            Ok(mut a) => {
                a.set_source(name);
                a
            }
            Err(e) => {
                return Entry::Error(render::render(
                    &EvalAltResult::from(e),
                    name,
                    &self.host.sources,
                ));
            }
        };
        let combined = self.functions.merge(&ast);
        let result = engine.eval_ast_with_scope::<Dynamic>(&mut scope, &combined);
        let report = host.run.finish(RunOutcome::Planned, None).report;
        let lines = crate::ops::plan::plan_lines(&report);
        let mut out = if lines.is_empty() {
            "plan: no effects".to_string()
        } else {
            format!(
                "plan ({} step(s), nothing was done):\n{}",
                lines.len(),
                crate::ops::plan::plan_table(&lines).trim_end()
            )
        };
        if let Err(e) = result {
            return Entry::Error(format!(
                "{out}\n{}",
                render::render(&e, name, &self.host.sources)
            ));
        }
        out.push('\n');
        Entry::Value(Some(out.trim_end().to_string()))
    }
}

/// A copy of a value whose handles (instances, vaults, jobs) act through `host`.
fn rebind(v: &Dynamic, host: &Arc<Host>) -> Dynamic {
    use super::api::{oic::Instance, vault::Job, vault::Vault};
    if let Some(i) = v.read_lock::<Instance>() {
        return Dynamic::from(Instance {
            host: host.clone(),
            client: i.client.clone(),
        });
    }
    if let Some(x) = v.read_lock::<Vault>() {
        let mut x = x.clone();
        x.host = host.clone();
        return Dynamic::from(x);
    }
    if let Some(x) = v.read_lock::<Job>() {
        let mut x = x.clone();
        x.host = host.clone();
        return Dynamic::from(x);
    }
    if let Some(a) = v.read_lock::<rhai::Array>() {
        return Dynamic::from_array(a.iter().map(|x| rebind(x, host)).collect());
    }
    v.clone()
}

/// A value as JSON: integrations, artifacts and instances as objects of their fields.
pub fn json_value(v: &Dynamic) -> serde_json::Value {
    use serde_json::json;
    if let Some(i) = v.read_lock::<crate::oic::Integration>() {
        return json!({
            "id": i.id, "code": i.code, "version": i.version, "name": i.name,
            "status": i.status, "locked": i.locked, "project_type": i.project_type,
            "last_updated": i.last_updated, "last_updated_by": i.last_updated_by,
            "connections": i.connections, "lookups": i.lookups, "project": i.project_code,
        });
    }
    if let Some(a) = v.read_lock::<crate::artifact::Artifact>() {
        return json!({
            "kind": a.key.kind.to_string(), "id": a.key.id(), "size": a.size,
            "sha256": a.sha256, "source": a.source,
        });
    }
    if let Some(i) = v.read_lock::<super::api::oic::Instance>() {
        return json!({
            "name": i.name(), "generation": i.client.generation().number(),
            "base_url": i.client.base_url(),
        });
    }
    if let Some(a) = v.read_lock::<rhai::Array>() {
        return serde_json::Value::Array(a.iter().map(json_value).collect());
    }
    if let Some(m) = v.read_lock::<rhai::Map>() {
        return serde_json::Value::Object(
            m.iter()
                .map(|(k, x)| (k.to_string(), json_value(x)))
                .collect(),
        );
    }
    rhai::serde::from_dynamic::<serde_json::Value>(v)
        .unwrap_or_else(|_| serde_json::Value::String(v.to_string()))
}

fn collect_codes(v: &Dynamic, out: &mut Vec<String>) {
    if let Some(i) = v.read_lock::<crate::oic::Integration>() {
        out.push(i.code.clone());
    } else if let Some(a) = v.read_lock::<rhai::Array>() {
        for x in a.iter() {
            if x.is::<crate::oic::Integration>() {
                collect_codes(x, out);
            }
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

/// Runs the interactive loop until `:quit` or Ctrl-D. While an entry runs, Ctrl-C (SIGINT)
/// cancels it and the prompt comes back; at the prompt Ctrl-C clears the line.
pub fn run_interactive(mut session: Session) -> rustyline::Result<()> {
    let helper_engine = {
        let mut e = Engine::new_raw();
        e.set_max_expr_depths(64, 32);
        Arc::new(e)
    };
    let config = rustyline::Config::builder()
        .completion_type(rustyline::CompletionType::List)
        .auto_add_history(false)
        .build();
    let mut rl: rustyline::Editor<ReplHelper, rustyline::history::DefaultHistory> =
        rustyline::Editor::with_config(config)?;
    rl.set_helper(Some(ReplHelper {
        engine: helper_engine,
        names: session.names.clone(),
    }));
    let hist = history_path();
    if let Some(h) = &hist {
        let _ = rl.load_history(h);
    }
    // SIGINT only arrives while an entry runs (the prompt reads keys in raw mode). Register the
    // handler now, before the first prompt: rustyline swaps the SIGINT action while it reads a
    // line and puts back whatever was there before, so a handler installed during a read is lost.
    let flag = session.host.interrupt.clone();
    let rt = session.host.rt.clone();
    let sigint = rt.block_on(async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
    });
    match sigint {
        Ok(mut sig) => {
            rt.spawn(async move {
                while sig.recv().await.is_some() {
                    flag.cancel();
                }
            });
        }
        Err(e) => eprintln!("warning: Ctrl-C cannot cancel entries: {e}"),
    }
    println!(
        "ferry {} REPL. :help for help, Ctrl-D to leave.",
        env!("CARGO_PKG_VERSION")
    );
    loop {
        match rl.readline("ferry> ") {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = rl.add_history_entry(line.as_str());
                    if let Some(h) = &hist {
                        let _ = rl.append_history(h);
                    }
                }
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
    Ok(())
}

impl std::fmt::Debug for ReplHelper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplHelper")
    }
}
