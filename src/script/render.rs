//! Renders script errors like a compiler: `error: message`, `--> file:line:col`, the source line
//! with a caret under the column, then the call chain (innermost place first).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rhai::{EvalAltResult, Position};

/// The source texts a renderer can quote, by source name (the display path of each file).
#[derive(Clone, Default)]
pub struct Sources {
    inner: Arc<Mutex<HashMap<String, Arc<str>>>>,
}

impl Sources {
    /// Remembers the text of a source.
    pub fn add(&self, name: &str, text: &str) {
        self.inner
            .lock()
            .expect("sources lock")
            .insert(name.to_string(), Arc::from(text));
    }
    fn get(&self, name: &str) -> Option<Arc<str>> {
        self.inner.lock().expect("sources lock").get(name).cloned()
    }
}

/// One place in a chain of calls.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The file (display path).
    pub source: String,
    pub line: usize,
    pub column: usize,
    /// `in call to function 'f'`, `in module 'util'`, or empty for the innermost place.
    pub context: String,
}

/// The innermost error and the frames from the outermost call site inwards.
pub fn frames(err: &EvalAltResult, main_source: &str) -> (String, Vec<Frame>) {
    let mut frames = vec![];
    let mut current = main_source.to_string();
    let mut e = err;
    loop {
        match e {
            EvalAltResult::ErrorInFunctionCall(name, fn_source, inner, pos) => {
                push(
                    &mut frames,
                    &current,
                    *pos,
                    format!("in call to function '{name}'"),
                );
                if !fn_source.is_empty() {
                    current = fn_source.clone();
                }
                e = inner;
            }
            EvalAltResult::ErrorInModule(name, inner, pos) => {
                push(&mut frames, &current, *pos, format!("importing '{name}'"));
                current = name.clone();
                e = inner;
            }
            other => {
                push(&mut frames, &current, other.position(), String::new());
                return (message_of(other), frames);
            }
        }
    }
}

fn push(frames: &mut Vec<Frame>, source: &str, pos: Position, context: String) {
    if let (Some(line), col) = (pos.line(), pos.position().unwrap_or(1)) {
        frames.push(Frame {
            source: source.to_string(),
            line,
            column: col,
            context,
        });
    }
}

/// The message of an error without Rhai's `(line x, position y)` suffix.
pub fn message_of(err: &EvalAltResult) -> String {
    match err {
        EvalAltResult::ErrorRuntime(v, _) => runtime_message(v),
        EvalAltResult::ErrorParsing(p, _) => format!("syntax error: {p}"),
        _ => {
            let s = err.to_string();
            // Drop Rhai's " (line x, position y)" suffix: the renderer shows the place itself.
            match s.rfind(" (line ") {
                Some(i) if s.ends_with(')') => s[..i].to_string(),
                _ => s,
            }
        }
    }
}

/// A thrown value as text: a domain error map shows `[kind status] message (artifact, stage, instance)`.
pub fn runtime_message(v: &rhai::Dynamic) -> String {
    if let Some(m) = v.read_lock::<rhai::Map>()
        && let Some(msg) = m.get("message")
    {
        let mut s = msg.to_string();
        let mut ctx = vec![];
        for k in ["artifact", "stage", "instance"] {
            if let Some(x) = m.get(k)
                && !x.is_unit()
            {
                ctx.push(format!("{k} {x}"));
            }
        }
        if let Some(st) = m.get("status")
            && !st.is_unit()
        {
            ctx.push(format!("status {st}"));
        }
        if !ctx.is_empty() {
            s = format!("{s} ({})", ctx.join(", "));
        }
        return s;
    }
    v.to_string()
}

/// Renders an error with its source line, caret and call chain.
pub fn render(err: &EvalAltResult, main_source: &str, sources: &Sources) -> String {
    let (msg, fr) = frames(err, main_source);
    let mut out = format!("error: {msg}\n");
    if let Some(inner) = fr.last() {
        out.push_str(&quote(inner, sources));
        for f in fr.iter().rev().skip(1) {
            out.push_str(&format!(
                "  = {} at {}:{}:{}\n",
                f.context, f.source, f.line, f.column
            ));
        }
    } else {
        out.push_str(&format!("  --> {main_source}\n"));
    }
    out
}

fn quote(f: &Frame, sources: &Sources) -> String {
    let num = f.line.to_string();
    let pad = " ".repeat(num.len());
    let mut out = format!("{pad}--> {}:{}:{}\n", f.source, f.line, f.column);
    if let Some(text) = sources.get(&f.source)
        && let Some(line) = text.split('\n').nth(f.line - 1)
    {
        let line = line.trim_end_matches('\r');
        // Keep tabs so the caret lines up; every other character becomes a space.
        let lead: String = line
            .chars()
            .take(f.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        out.push_str(&format!("{pad} |\n{num} | {line}\n{pad} | {lead}^\n"));
    }
    out
}
