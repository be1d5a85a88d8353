//! The one place where errors of every layer become script errors.
//!
//! A domain error reaches a script as a catchable map with a stable set of fields:
//!
//! | field      | meaning                                                         |
//! |------------|-----------------------------------------------------------------|
//! | `kind`     | `http`, `busy` (a 409 to a parallel write), `transport`, `timeout`, `auth`, `archive`, `integrity`, `vault`, `config`, `usage` |
//! | `status`   | the HTTP status (`404`, `409`, `412`, ...) or `()`              |
//! | `message`  | what went wrong, root cause first                               |
//! | `artifact` | `CODE|VERSION` (or `()`)                                        |
//! | `stage`    | `export`, `store`, `verify`, `import`, `activate`, ... (or `()`)|
//! | `instance` | the instance or vault name (or `()`)                            |
//!
//! so that `try { ... } catch (e) { if e.status == 409 { ... } }` works. Cancellation (Ctrl-C)
//! is `ErrorTerminated`, which `try`/`catch` cannot swallow.

use crate::script::api::OrUnit;
use rhai::{Dynamic, EvalAltResult, Map, Position};

use crate::config::ConfigError;
use crate::effect::EffectError;

/// Context to attach to an error.
#[derive(Default, Clone, Debug)]
pub struct Ctx {
    pub artifact: Option<String>,
    pub stage: Option<String>,
    pub instance: Option<String>,
}

impl Ctx {
    pub fn instance(name: &str) -> Ctx {
        Ctx {
            instance: Some(name.to_string()),
            ..Default::default()
        }
    }
    pub fn artifact(mut self, a: impl Into<String>) -> Ctx {
        self.artifact = Some(a.into());
        self
    }
    pub fn stage(mut self, s: impl Into<String>) -> Ctx {
        self.stage = Some(s.into());
        self
    }
}

/// Builds the error map and wraps it as a catchable runtime error.
pub fn script_error(
    kind: &str,
    status: Option<u16>,
    message: impl Into<String>,
    ctx: Ctx,
) -> Box<EvalAltResult> {
    let mut m = Map::new();
    m.insert("kind".into(), kind.into());
    m.insert(
        "status".into(),
        status
            .map(|s| Dynamic::from(s as i64))
            .unwrap_or(Dynamic::UNIT),
    );
    m.insert("message".into(), message.into().into());
    m.insert("artifact".into(), ctx.artifact.or_unit());
    m.insert("stage".into(), ctx.stage.or_unit());
    m.insert("instance".into(), ctx.instance.or_unit());
    EvalAltResult::ErrorRuntime(m.into(), Position::NONE).into()
}

/// A usage error (wrong argument, unknown option).
pub fn usage(message: impl Into<String>) -> Box<EvalAltResult> {
    script_error("usage", None, message, Ctx::default())
}

/// Cancellation: not catchable.
pub fn cancelled() -> Box<EvalAltResult> {
    EvalAltResult::ErrorTerminated("cancelled by the user".into(), Position::NONE).into()
}

/// A failed effect.
pub fn from_effect(e: EffectError) -> Box<EvalAltResult> {
    if e.cancelled {
        return cancelled();
    }
    script_error(
        &e.error.kind,
        e.error.status,
        e.error.message.clone(),
        Ctx {
            artifact: Some(e.artifact.clone()),
            stage: Some(e.stage.as_str().to_string()),
            instance: Some(e.target.clone()),
        },
    )
}

/// A configuration problem.
pub fn from_config(e: ConfigError) -> Box<EvalAltResult> {
    script_error("config", None, e.to_string(), Ctx::default())
}

/// True when the error is a host error map of kind `config` (exit code 2).
pub fn is_config_error(err: &EvalAltResult) -> bool {
    if let EvalAltResult::ErrorRuntime(v, _) = err.unwrap_inner()
        && let Some(m) = v.read_lock::<Map>()
    {
        return m
            .get("kind")
            .map(|k| k.to_string() == "config")
            .unwrap_or(false);
    }
    false
}

/// An OIC client error as a script error (its kind and HTTP status as the effect layer
/// classifies them).
pub fn oic_err(e: crate::oic::OicError, ctx: Ctx) -> Box<EvalAltResult> {
    let f = crate::effect::Failure::from(e);
    script_error(
        crate::effect::Classify::kind(&f),
        crate::effect::Classify::status(&f),
        f.to_string(),
        ctx,
    )
}

/// An error of the `ops` layer as a script error.
pub fn ops_err(e: crate::ops::OpsError) -> Box<EvalAltResult> {
    use crate::ops::OpsError;
    match e {
        OpsError::Usage(m) => usage(m),
        OpsError::Cancelled => cancelled(),
        OpsError::Effect(e) => from_effect(*e),
        OpsError::Oic { at, source } => oic_err(*source, Ctx::instance(&at)),
        OpsError::OicItem { at, item, source } => {
            oic_err(*source, Ctx::instance(&at).artifact(item))
        }
        OpsError::NotFound { at, kind, item } => script_error(
            "http",
            Some(404),
            format!("{kind} {item} does not exist on {at}"),
            Ctx::instance(&at).artifact(item),
        ),
        OpsError::Config(c) => from_config(*c),
        OpsError::Ledger(m) => script_error("ledger", None, m, Ctx::default()),
        OpsError::Connection { at, message } => script_error(
            "connection",
            None,
            message,
            Ctx::instance(&at).stage("connection"),
        ),
        OpsError::Vault { at, message } => script_error("vault", None, message, Ctx::instance(&at)),
    }
}
