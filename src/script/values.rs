//! Script values as text: JSON in and out, and recipe variables (`--var`) read as the type of
//! their default, checked before a recipe runs.

use rhai::{Dynamic, EvalAltResult};

use crate::script::errors;

/// Converts a script value to JSON text.
pub fn to_json(v: &Dynamic) -> Result<String, Box<EvalAltResult>> {
    let j: serde_json::Value = rhai::serde::from_dynamic(v)
        .map_err(|e| errors::usage(format!("cannot convert to JSON: {e}")))?;
    Ok(serde_json::to_string(&j).unwrap_or_default())
}

/// Recipe variable `name` (`--var NAME=VALUE`) in `vars`: its text, or with a `default`, read as
/// the type of `default` (`default` itself when it is not set). Not set and no default: an error
/// that says how to set it.
pub fn param(
    vars: &rhai::Map,
    name: &str,
    default: Option<Dynamic>,
) -> Result<Dynamic, Box<EvalAltResult>> {
    match (vars.get(name), default) {
        (Some(v), None) => Ok(v.to_string().into()),
        (Some(v), Some(d)) => typed_like(name, &v.to_string(), &d),
        (None, Some(d)) => Ok(d),
        (None, None) => Err(errors::usage(format!(
            "recipe variable `{name}` is not set (pass --var {name}=VALUE)"
        ))),
    }
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

/// Parses JSON text into maps, arrays and values.
pub fn from_json(text: &str) -> Result<Dynamic, Box<EvalAltResult>> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|err| errors::usage(format!("not valid JSON: {err}")))?;
    rhai::serde::to_dynamic(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(e: Box<EvalAltResult>) -> String {
        crate::script::render::message_of(&e)
    }

    #[test]
    fn vars_take_the_type_of_their_default() {
        assert_eq!(
            typed_like("n", " 10 ", &Dynamic::from(7_i64))
                .unwrap()
                .as_int(),
            Ok(10)
        );
        assert_eq!(
            typed_like("b", "true", &Dynamic::from(false))
                .unwrap()
                .as_bool(),
            Ok(true)
        );
        assert_eq!(
            typed_like("s", "01", &Dynamic::from("x"))
                .unwrap()
                .to_string(),
            "01"
        );
        assert!(
            typed_like("a", "[1,2]", &Dynamic::from_array(vec![]))
                .unwrap()
                .is_array()
        );
        let e = msg(typed_like("n", "x", &Dynamic::from(7_i64)).unwrap_err());
        assert!(
            e.contains("recipe variable `n`: expected an integer (like its default), found `x`"),
            "{e}"
        );
        assert!(typed_like("m", "[1]", &Dynamic::from_map(rhai::Map::new())).is_err());
        assert!(
            typed_like("f", "1.5", &Dynamic::from(0.5_f64))
                .unwrap()
                .is_float()
        );
    }

    #[test]
    fn params_are_text_or_their_default_or_an_error() {
        let vars = rhai::Map::from([("prefix".into(), Dynamic::from("01"))]);
        let text = |d: Option<Dynamic>| param(&vars, "prefix", d).map(|v| v.to_string());
        assert_eq!(text(None).unwrap(), "01");
        assert_eq!(text(Some(Dynamic::from("x"))).unwrap(), "01");
        assert_eq!(
            param(&vars, "prefix", Some(Dynamic::from(0_i64)))
                .unwrap()
                .as_int(),
            Ok(1)
        );
        assert_eq!(
            param(&vars, "n", Some(Dynamic::from(7_i64)))
                .unwrap()
                .as_int(),
            Ok(7)
        );
        let e = msg(param(&vars, "n", None).unwrap_err());
        assert!(
            e.contains("recipe variable `n` is not set (pass --var n=VALUE)"),
            "{e}"
        );
    }

    #[test]
    fn json_both_ways() {
        let v = from_json(r#"{"a": [1, "x", null]}"#).unwrap();
        assert_eq!(to_json(&v).unwrap(), r#"{"a":[1,"x",null]}"#);
        assert!(msg(from_json("{").unwrap_err()).contains("not valid JSON"));
    }
}
