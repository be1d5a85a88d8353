//! Global helpers: recipe variables, time, matching, JSON, logging.

use rhai::plugin::*;
use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use super::{host_of, register_plugin};
use crate::script::errors;

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

/// Global helpers: recipe variables, time, matching, JSON, files, the run.
#[export_module]
mod util_api {
    use super::*;

    /// The value of a recipe variable given with `--var NAME=VALUE`, as a string; an error when it is not set.
    ///
    /// # Example
    /// ```rhai
    /// let src = param("source");
    /// ```
    #[rhai_fn(name = "param", volatile, return_raw)]
    pub fn param(
        ctx: NativeCallContext,
        name: ImmutableString,
    ) -> Result<String, Box<EvalAltResult>> {
        host_of(&ctx)?
            .vars
            .get(name.as_str())
            .map(|v| v.to_string())
            .ok_or_else(|| {
                errors::usage(format!(
                    "recipe variable `{name}` is not set (pass --var {name}=VALUE)"
                ))
            })
    }

    /// The value of a recipe variable given with `--var NAME=VALUE`, or `default` when it is not set. The value is a string
    /// (`--var prefix=01` gives `"01"`) unless `default` has another type: then it is read as that type (an integer,
    /// a decimal, `true`/`false`, or JSON for an array or a map), and a value that does not fit is an error.
    ///
    /// # Example
    /// ```rhai
    /// let prefix = param("prefix", "HR_");
    /// let daily = param("daily", 7);   // --var daily=10 gives the integer 10
    /// ```
    #[rhai_fn(name = "param", volatile, return_raw)]
    pub fn param_or(
        ctx: NativeCallContext,
        name: ImmutableString,
        default: Dynamic,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        match host_of(&ctx)?.vars.get(name.as_str()) {
            None => Ok(default),
            Some(v) => typed_like(&name, &v.to_string(), &default),
        }
    }

    /// Every recipe variable given with `--var`, as a map.
    ///
    /// # Example
    /// ```rhai
    /// print(params());
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn params(ctx: NativeCallContext) -> Result<Map, Box<EvalAltResult>> {
        Ok(host_of(&ctx)?.vars.clone())
    }

    /// The current time, RFC 3339 in UTC (`2026-11-26T19:30:00Z`).
    ///
    /// # Example
    /// ```rhai
    /// print(now_utc());
    /// ```
    #[rhai_fn(volatile)]
    pub fn now_utc() -> String {
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    /// Today's date in UTC, `YYYY-MM-DD`.
    ///
    /// # Example
    /// ```rhai
    /// let job = `nightly-${today()}`;
    /// ```
    #[rhai_fn(volatile)]
    pub fn today() -> String {
        chrono::Utc::now().format("%Y-%m-%d").to_string()
    }

    /// True when `text` matches the glob `pattern` (`*` any run, `?` one character).
    ///
    /// # Example
    /// ```rhai
    /// glob_match("HR_*", "HR_SYNC")   // true
    /// ```
    #[rhai_fn(name = "glob_match", volatile)]
    pub fn glob(pattern: ImmutableString, text: ImmutableString) -> bool {
        glob_match(&pattern, &text)
    }

    /// True when the regular expression `pattern` matches somewhere in `text`.
    ///
    /// # Example
    /// ```rhai
    /// regex_match("^(HR|FIN)_", "FIN_GL")   // true
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn regex_match(
        pattern: ImmutableString,
        text: ImmutableString,
    ) -> Result<bool, Box<EvalAltResult>> {
        let re = regex::Regex::new(&pattern)
            .map_err(|err| errors::usage(format!("bad regular expression `{pattern}`: {err}")))?;
        Ok(re.is_match(&text))
    }

    /// The value as compact JSON text.
    ///
    /// # Example
    /// ```rhai
    /// print(to_json(#{ a: 1 }));   // {"a":1}
    /// ```
    #[rhai_fn(name = "to_json", volatile, return_raw)]
    pub fn json_text(value: Dynamic) -> Result<String, Box<EvalAltResult>> {
        to_json(&value)
    }

    /// Parses JSON text into maps, arrays and values.
    ///
    /// # Example
    /// ```rhai
    /// let m = parse_json(`{"a": 1}`);
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn parse_json(text: ImmutableString) -> Result<Dynamic, Box<EvalAltResult>> {
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|err| errors::usage(format!("not valid JSON: {err}")))?;
        rhai::serde::to_dynamic(v)
    }

    /// The text of a file (UTF-8), relative to the working folder: role maps, connection maps, templates.
    ///
    /// # Example
    /// ```rhai
    /// let csv = read_text("config/roles.csv");
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn read_text(path: ImmutableString) -> Result<String, Box<EvalAltResult>> {
        std::fs::read_to_string(path.as_str())
            .map_err(|err| errors::usage(format!("cannot read {path}: {err}")))
    }

    /// This run's id (`YYYYMMDD-HHMMSS-xxxx`), as shown by `ferry` at the end of a run and used for its folder in `.ferry/runs/`.
    ///
    /// # Example
    /// ```rhai
    /// print(run_id());
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn run_id(ctx: NativeCallContext) -> Result<String, Box<EvalAltResult>> {
        Ok(host_of(&ctx)?.exec.record().info().id)
    }

    /// True when the run only describes its effects (`--dry-run`, `ferry plan`).
    ///
    /// # Example
    /// ```rhai
    /// if dry_run() { print("nothing will change"); }
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn dry_run(ctx: NativeCallContext) -> Result<bool, Box<EvalAltResult>> {
        Ok(host_of(&ctx)?.exec.dry_run())
    }
}

/// Messages to the log (shown with -v; `print` is for the user's output).
#[export_module]
mod log_api {
    /// Logs an error message.
    ///
    /// # Example
    /// ```rhai
    /// log::error("exported 12 integrations");
    /// ```
    #[rhai_fn(volatile)]
    pub fn error(message: ImmutableString) {
        tracing::error!(target: "script", "{message}");
    }

    /// Logs a warning message.
    ///
    /// # Example
    /// ```rhai
    /// log::warn("exported 12 integrations");
    /// ```
    #[rhai_fn(volatile)]
    pub fn warn(message: ImmutableString) {
        tracing::warn!(target: "script", "{message}");
    }

    /// Logs an information message.
    ///
    /// # Example
    /// ```rhai
    /// log::info("exported 12 integrations");
    /// ```
    #[rhai_fn(volatile)]
    pub fn info(message: ImmutableString) {
        tracing::info!(target: "script", "{message}");
    }

    /// Logs a debugging message (shown with -vv). `debug` is a reserved word in Rhai, so this one
    /// is called `verbose`.
    ///
    /// # Example
    /// ```rhai
    /// log::verbose("exported 12 integrations");
    /// ```
    #[rhai_fn(volatile)]
    pub fn verbose(message: ImmutableString) {
        tracing::debug!(target: "script", "{message}");
    }
}

/// Registers the global helpers and the `log` module.
pub fn register(e: &mut Engine) {
    e.register_global_module(exported_module!(util_api).into());
    register_plugin(e, "log", exported_module!(log_api));
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
