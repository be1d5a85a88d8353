//! Collection conventions (§1.4): `offset`/`limit` paging, the `q` filter language, the envelope.

use serde_json::{Value, json};

use super::error::ApiError;

/// Default page size.
pub const DEFAULT_LIMIT: usize = 100;
/// Maximum page size (larger values are clamped).
pub const MAX_LIMIT: usize = 1000;

/// Parsed query string.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Self {
        Params(
            raw.map(|r| {
                url::form_urlencoded::parse(r.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default(),
        )
    }
    /// First value of a parameter.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    /// Boolean parameter (`true` case-insensitively).
    pub fn flag(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
    /// `offset` and `limit` (defaults 0 / 100, limit clamped to 1000; bad numbers → 400).
    pub fn paging(&self) -> Result<(usize, usize), ApiError> {
        let num = |k: &str, d: usize| -> Result<usize, ApiError> {
            match self.get(k) {
                None | Some("") => Ok(d),
                Some(v) => v.trim().parse::<usize>().map_err(|_| {
                    ApiError::bad_request(format!("Invalid value '{v}' for query parameter {k}."))
                }),
            }
        };
        let offset = num("offset", 0)?;
        let limit = num("limit", DEFAULT_LIMIT)?;
        if limit == 0 {
            return Err(ApiError::bad_request(
                "The query parameter limit must be at least 1.",
            ));
        }
        Ok((offset, limit.min(MAX_LIMIT)))
    }
}

/// One `key:value` condition of a `q` filter.
#[derive(Debug, Clone)]
pub enum Cond {
    /// `key:'value'`: exact (case-sensitive) match.
    Exact(String, String),
    /// `key:/re/`: unanchored, case-insensitive regular expression.
    Regex(String, regex::Regex),
}

impl Cond {
    /// The key.
    pub fn key(&self) -> &str {
        match self {
            Cond::Exact(k, _) | Cond::Regex(k, _) => k,
        }
    }
    /// The value of an exact condition.
    pub fn value(&self) -> Option<&str> {
        match self {
            Cond::Exact(_, v) => Some(v),
            Cond::Regex(..) => None,
        }
    }
    /// Whether a field value matches.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Cond::Exact(_, v) => v == value,
            Cond::Regex(_, re) => re.is_match(value),
        }
    }
}

/// Parses a `q` expression `{k:'v', k2:/re/}`; keys outside `allowed` → 400.
pub fn parse_q(q: Option<&str>, allowed: &[&str]) -> Result<Vec<Cond>, ApiError> {
    let Some(q) = q.map(str::trim).filter(|q| !q.is_empty()) else {
        return Ok(Vec::new());
    };
    let bad = || ApiError::bad_request(format!("Invalid query expression: {q}"));
    let inner = q
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(bad)?;
    let chars: Vec<char> = inner.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            break;
        }
        let start = i;
        while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
        {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        if key.is_empty() {
            return Err(bad());
        }
        skip_ws(&mut i);
        if i >= chars.len() || chars[i] != ':' {
            return Err(bad());
        }
        i += 1;
        skip_ws(&mut i);
        let quote = *chars.get(i).ok_or_else(bad)?;
        if quote != '\'' && quote != '"' && quote != '/' {
            return Err(bad());
        }
        i += 1;
        let vstart = i;
        while i < chars.len() && chars[i] != quote {
            i += 1;
        }
        if i >= chars.len() {
            return Err(bad());
        }
        let value: String = chars[vstart..i].iter().collect();
        i += 1;
        if !allowed.contains(&key.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Unsupported query field '{key}'. Supported: {}.",
                allowed.join(", ")
            )));
        }
        if quote == '/' {
            let re = regex::RegexBuilder::new(&value)
                .case_insensitive(true)
                .build()
                .map_err(|_| {
                    ApiError::bad_request(format!("Invalid expression /{value}/ in query."))
                })?;
            out.push(Cond::Regex(key, re));
        } else {
            out.push(Cond::Exact(key, value));
        }
        skip_ws(&mut i);
        if i < chars.len() {
            if chars[i] != ',' {
                return Err(bad());
            }
            i += 1;
        }
    }
    Ok(out)
}

/// Builds a collection envelope from the full filtered list, as recorded:
/// `{"hasMore", "items", "limit", "links":[self, canonical], "totalResults"}` (no `offset`).
pub fn envelope(all: Vec<Value>, offset: usize, limit: usize, self_href: &str) -> Value {
    let total = all.len();
    let items: Vec<Value> = all.into_iter().skip(offset).take(limit).collect();
    let has_more = offset.saturating_add(items.len()) < total;
    json!({
        "items": items,
        "hasMore": has_more,
        "limit": limit,
        "totalResults": total,
        "links": [ { "href": self_href, "rel": "self" }, { "href": self_href, "rel": "canonical" } ],
    })
}
