//! Global helpers (recipe variables, time, matching, JSON, files, the run) and the `log` module.

use rhai::plugin::*;
use rhai::{Dynamic, Engine, ImmutableString, Map};

use super::args::RhaiResultOf;
use super::{host_of, register_plugin};
use crate::script::errors;
pub use crate::script::values::to_json;
use crate::script::values::{self, from_json};

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
    pub fn param(ctx: NativeCallContext, name: ImmutableString) -> RhaiResultOf<String> {
        values::param(&host_of(&ctx)?.vars, &name, None).map(|v| v.to_string())
    }

    /// The value of a recipe variable given with `--var NAME=VALUE`, or `default` when it is not set. It is read as the type
    /// of `default` (a string, an integer, a decimal, `true`/`false`, or JSON for an array or a map); a value that does not fit is an error.
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
    ) -> RhaiResultOf<Dynamic> {
        values::param(&host_of(&ctx)?.vars, &name, Some(default))
    }

    /// Every recipe variable given with `--var`, as a map.
    ///
    /// # Example
    /// ```rhai
    /// print(params());
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn params(ctx: NativeCallContext) -> RhaiResultOf<Map> {
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
        crate::ops::select::glob(&pattern).matches(&text)
    }

    /// True when the regular expression `pattern` matches somewhere in `text`.
    ///
    /// # Example
    /// ```rhai
    /// regex_match("^(HR|FIN)_", "FIN_GL")   // true
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn regex_match(pattern: ImmutableString, text: ImmutableString) -> RhaiResultOf<bool> {
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
    pub fn json_text(value: Dynamic) -> RhaiResultOf<String> {
        to_json(&value)
    }

    /// Parses JSON text into maps, arrays and values.
    ///
    /// # Example
    /// ```rhai
    /// let m = parse_json(`{"a": 1}`);
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn parse_json(text: ImmutableString) -> RhaiResultOf<Dynamic> {
        from_json(&text)
    }

    /// The text of a file (UTF-8), relative to the working folder: role maps, connection maps, templates.
    ///
    /// # Example
    /// ```rhai
    /// let csv = read_text("config/roles.csv");
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn read_text(path: ImmutableString) -> RhaiResultOf<String> {
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
    pub fn run_id(ctx: NativeCallContext) -> RhaiResultOf<String> {
        Ok(host_of(&ctx)?.exec.record().info().id)
    }

    /// True when the run only describes its effects (`--dry-run`, `ferry plan`).
    ///
    /// # Example
    /// ```rhai
    /// if dry_run() { print("nothing will change"); }
    /// ```
    #[rhai_fn(volatile, return_raw)]
    pub fn dry_run(ctx: NativeCallContext) -> RhaiResultOf<bool> {
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
