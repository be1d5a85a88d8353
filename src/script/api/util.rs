//! Global helpers: recipe variables, time, matching, JSON, logging.

use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString};

use super::{global, in_module, static_module};
use crate::script::errors;
use crate::script::host::Host;

/// `*` matches any run of characters, `?` one character; the whole text must match.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    wildmatch::WildMatch::new(pattern).matches(text)
}

/// Converts a script value to JSON text.
pub fn to_json(v: &Dynamic) -> Result<String, Box<EvalAltResult>> {
    let j: serde_json::Value = rhai::serde::from_dynamic(v)
        .map_err(|e| errors::usage(format!("cannot convert to JSON: {e}")))?;
    Ok(serde_json::to_string(&j).unwrap_or_default())
}

/// A recipe variable's text read as the type of `default`: a string unless the default is an
/// integer, a decimal, a boolean, an array or a map.
pub fn typed_like(
    name: &str,
    text: &str,
    default: &Dynamic,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let bad = |what: &str| {
        errors::usage(format!(
            "recipe variable `{name}`: expected {what} (like its default), found `{text}`"
        ))
    };
    if default.is_int() {
        text.trim()
            .parse::<i64>()
            .map(Dynamic::from)
            .map_err(|_| bad("an integer"))
    } else if default.is_float() {
        text.trim()
            .parse::<f64>()
            .map(Dynamic::from)
            .map_err(|_| bad("a number"))
    } else if default.is_bool() {
        match text.trim() {
            "true" => Ok(true.into()),
            "false" => Ok(false.into()),
            _ => Err(bad("true or false")),
        }
    } else if default.is_array() || default.is_map() {
        let what = if default.is_array() {
            "a JSON array"
        } else {
            "a JSON object"
        };
        let v: serde_json::Value = serde_json::from_str(text).map_err(|_| bad(what))?;
        if v.is_array() != default.is_array() || v.is_object() != default.is_map() {
            return Err(bad(what));
        }
        rhai::serde::to_dynamic(v)
    } else {
        Ok(text.to_string().into())
    }
}

/// Checks every `--var` a recipe reads with `param(NAME, DEFAULT)` against the type of its
/// default, before the recipe runs (so a bad value stops the run before its first effect, not
/// where the recipe reaches the `param` call). Returns the first bad one, at its `param` call.
pub fn check_params(ast: &rhai::AST, vars: &rhai::Map) -> Result<(), Box<EvalAltResult>> {
    use rhai::{ASTNode, Expr};
    let mut found: Option<Box<EvalAltResult>> = None;
    ast.walk(&mut |path: &[ASTNode]| {
        let Some(ASTNode::Expr(Expr::FnCall(call, pos))) = path.last() else {
            return true;
        };
        if call.name != "param" || call.args.len() != 2 || !call.namespace.is_empty() {
            return true;
        }
        let Expr::StringConstant(name, _) = &call.args[0] else {
            return true;
        };
        let Some(text) = vars.get(name.as_str()) else {
            return true;
        };
        // The default's type, from its expression (a map or array literal need not be
        // constant).
        let like: Dynamic = match &call.args[1] {
            Expr::Map(..) => Dynamic::from_map(rhai::Map::new()),
            Expr::Array(..) => Dynamic::from_array(rhai::Array::new()),
            Expr::IntegerConstant(..) => Dynamic::from(0_i64),
            Expr::FloatConstant(..) => Dynamic::from(0.0_f64),
            Expr::BoolConstant(..) => Dynamic::from(false),
            Expr::DynamicConstant(d, _) => (**d).clone(),
            _ => return true,
        };
        if let Err(mut e) = typed_like(name, &text.to_string(), &like) {
            let line = pos
                .line()
                .map(|l| format!(" (`param` at line {l})"))
                .unwrap_or_default();
            e = errors::usage(format!("{}{line}", crate::script::render::message_of(&e)));
            e.set_position(*pos);
            found = Some(e);
            return false;
        }
        true
    });
    match found {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

pub fn register(e: &mut Engine, host: Arc<Host>) {
    let h = host.clone();
    global("param", &["name: string", "string"], "The value of a recipe variable given with `--var NAME=VALUE`, as a string; an error when it is not set.\n\n# Example\n```rhai\nlet src = param(\"source\");\n```")
        .register_into_engine(e, move |name: ImmutableString| -> Result<Dynamic, Box<EvalAltResult>> {
            h.vars.get(name.as_str()).cloned().ok_or_else(|| errors::usage(format!("recipe variable `{name}` is not set (pass --var {name}=VALUE)")))
        });
    let h = host.clone();
    global("param", &["name: string", "default: Dynamic", "Dynamic"], "The value of a recipe variable given with `--var NAME=VALUE`, or `default` when it is not set. The value is a string\n(`--var prefix=01` gives `\"01\"`) unless `default` has another type: then it is read as that type (an integer,\na decimal, `true`/`false`, or JSON for an array or a map), and a value that does not fit is an error.\n\n# Example\n```rhai\nlet prefix = param(\"prefix\", \"HR_\");\nlet daily = param(\"daily\", 7);   // --var daily=10 gives the integer 10\n```")
        .register_into_engine(e, move |name: ImmutableString, default: Dynamic| -> Result<Dynamic, Box<EvalAltResult>> {
            match h.vars.get(name.as_str()) {
                None => Ok(default),
                Some(v) => typed_like(&name, &v.to_string(), &default),
            }
        });
    let h = host.clone();
    global("params", &["Map"], "Every recipe variable given with `--var`, as a map.\n\n# Example\n```rhai\nprint(params());\n```")
        .register_into_engine(e, move || -> rhai::Map { h.vars.clone() });
    global("now_utc", &["string"], "The current time, RFC 3339 in UTC (`2026-11-26T19:30:00Z`).\n\n# Example\n```rhai\nprint(now_utc());\n```")
        .register_into_engine(e, || -> String { chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true) });
    global("today", &["string"], "Today's date in UTC, `YYYY-MM-DD`.\n\n# Example\n```rhai\nlet job = `nightly-${today()}`;\n```")
        .register_into_engine(e, || -> String { chrono::Utc::now().format("%Y-%m-%d").to_string() });
    global("glob_match", &["pattern: string", "text: string", "bool"], "True when `text` matches the glob `pattern` (`*` any run, `?` one character).\n\n# Example\n```rhai\nglob_match(\"HR_*\", \"HR_SYNC\")   // true\n```")
        .register_into_engine(e, |p: ImmutableString, t: ImmutableString| -> bool { glob_match(&p, &t) });
    global("regex_match", &["pattern: string", "text: string", "bool"], "True when the regular expression `pattern` matches somewhere in `text`.\n\n# Example\n```rhai\nregex_match(\"^(HR|FIN)_\", \"FIN_GL\")   // true\n```")
        .register_into_engine(e, |p: ImmutableString, t: ImmutableString| -> Result<bool, Box<EvalAltResult>> {
            let re = regex::Regex::new(&p).map_err(|err| errors::usage(format!("bad regular expression `{p}`: {err}")))?;
            Ok(re.is_match(&t))
        });
    global("to_json", &["value: Dynamic", "string"], "The value as compact JSON text.\n\n# Example\n```rhai\nprint(to_json(#{ a: 1 }));   // {\"a\":1}\n```")
        .register_into_engine(e, |v: Dynamic| to_json(&v));
    global("parse_json", &["text: string", "Dynamic"], "Parses JSON text into maps, arrays and values.\n\n# Example\n```rhai\nlet m = parse_json(`{\"a\": 1}`);\n```")
        .register_into_engine(e, |t: ImmutableString| -> Result<Dynamic, Box<EvalAltResult>> {
            let v: serde_json::Value = serde_json::from_str(&t).map_err(|err| errors::usage(format!("not valid JSON: {err}")))?;
            rhai::serde::to_dynamic(v)
        });
    global("read_text", &["path: string", "string"], "The text of a file (UTF-8), relative to the working folder: role maps, connection maps, templates.\n\n# Example\n```rhai\nlet csv = read_text(\"config/roles.csv\");\n```")
        .register_into_engine(e, |p: ImmutableString| -> Result<String, Box<EvalAltResult>> {
            std::fs::read_to_string(p.as_str()).map_err(|err| errors::usage(format!("cannot read {p}: {err}")))
        });
    global("run_id", &["string"], "This run's id (`YYYYMMDD-HHMMSS-xxxx`), as shown by `ferry` at the end of a run and used for its folder in `.ferry/runs/`.\n\n# Example\n```rhai\nprint(run_id());\n```")
        .register_into_engine(e, {
            let h = host.clone();
            move || -> String { h.exec.record().info().id }
        });
    global("dry_run", &["bool"], "True when the run only describes its effects (`--dry-run`, `ferry plan`).\n\n# Example\n```rhai\nif dry_run() { print(\"nothing will change\"); }\n```")
        .register_into_engine(e, {
            let h = host.clone();
            move || -> bool { h.exec.dry_run() }
        });

    static_module(
        e,
        "log",
        "Messages to the log (shown with -v; `print` is for the user's output).",
        |m| {
            for (level, what) in [
                ("error", "an error"),
                ("warn", "a warning"),
                ("info", "an information"),
                ("debug", "a debugging"),
            ] {
                let lvl = level.to_string();
                in_module(level, &["message: string"], &format!("Logs {what} message.\n\n# Example\n```rhai\nlog::{level}(\"exported 12 integrations\");\n```"))
                .set_into_module(m, move |msg: ImmutableString| match lvl.as_str() {
                    "error" => tracing::error!(target: "script", "{msg}"),
                    "warn" => tracing::warn!(target: "script", "{msg}"),
                    "info" => tracing::info!(target: "script", "{msg}"),
                    _ => tracing::debug!(target: "script", "{msg}"),
                });
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("HR_*", "HR_SYNC"));
        assert!(glob_match("*_LOAD", "FIN_INVOICE_LOAD"));
        assert!(glob_match("A?C", "ABC"));
        assert!(!glob_match("HR_*", "FIN_HR_X"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a*b", "acbx"));
    }
}
