//! JSONPath reading (RFC 9535, through `serde_json_path`), the small writer
//! ResultPath and the seed's `mapping` need, and payload templates
//! (ASL's `Parameters` / `ResultSelector` / `ItemSelector` with `.$` keys, and
//! the seed's `parameters` whose `"$..."` strings and `{{$...}}` pieces are
//! filled from the input).

use serde_json::{Map, Value};
use serde_json_path::JsonPath;

use crate::error::ErrorInfo;
use crate::intrinsics::{self, Intrinsic};

/// A path that reads: from the input (`$...`) or the context object (`$$...`).
#[derive(Debug, Clone)]
pub struct Path {
    pub text: String,
    context: bool,
    compiled: JsonPath,
    /// A path that names one place (no wildcard, filter, slice, union or
    /// descendant): it selects one value, or fails. Others select an array.
    definite: bool,
}

impl Path {
    pub fn parse(text: &str) -> Result<Path, String> {
        let (context, body) = match text.strip_prefix("$$") {
            Some(rest) => (true, format!("${rest}")),
            None => (false, text.to_string()),
        };
        if !body.starts_with('$') {
            return Err(format!("{text:?} is not a path: it must start with $"));
        }
        let body = dot_names_as_brackets(&body);
        let compiled =
            JsonPath::parse(&body).map_err(|e| format!("{text:?} is not a valid JSONPath: {e}"))?;
        // Judged outside quoted names: `$['a*b']` and `$.a*b` name one place.
        let bare = unquoted(&body);
        let definite = !(bare.contains('*')
            || bare.contains("..")
            || bare.contains("[?")
            || bracket_has(&bare, &[':', ',']));
        Ok(Path {
            text: text.to_string(),
            context,
            compiled,
            definite,
        })
    }

    pub fn root() -> Path {
        Path::parse("$").expect("$ is a valid path")
    }

    pub fn is_root(&self) -> bool {
        self.text == "$"
    }

    pub fn is_context(&self) -> bool {
        self.context
    }

    /// What the path selects, or `None` when a definite path selects nothing.
    pub fn select(&self, input: &Value, context: &Value) -> Option<Value> {
        let doc = if self.context { context } else { input };
        if self.text == "$" || self.text == "$$" {
            return Some(doc.clone());
        }
        let nodes = self.compiled.query(doc);
        if self.definite {
            nodes.exactly_one().ok().cloned()
        } else {
            Some(Value::Array(nodes.all().into_iter().cloned().collect()))
        }
    }
}

/// Rewrites `.name` steps whose name RFC 9535's shorthand does not allow
/// (`$.delivery-partner`, `$.2fa`) as `['name']`. Step Functions' JSONPath
/// takes any characters but `.` and `[` in a dot step, and AWS's own
/// examples use such names; the reference-path writer takes them too, so a
/// ResultPath and the same text read back name the same place. Only steps
/// outside brackets and quotes are touched.
fn dot_names_as_brackets(body: &str) -> std::borrow::Cow<'_, str> {
    let shorthand = |name: &str| {
        let mut cs = name.chars();
        let first = |c: char| c.is_ascii_alphabetic() || c == '_' || !c.is_ascii();
        cs.next().is_some_and(first) && cs.all(|c| first(c) || c.is_ascii_digit())
    };
    let mut out = String::with_capacity(body.len() + 8);
    let mut changed = false;
    let (mut depth, mut quote) = (0usize, None::<char>);
    let mut rest = body;
    while let Some(c) = rest.chars().next() {
        let len = c.len_utf8();
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), '\\') => {
                // Keep an escape and the character it escapes together.
                let mut two = rest.chars();
                two.next();
                let n = two.next().map_or(0, char::len_utf8);
                out.push_str(&rest[..len + n]);
                rest = &rest[len + n..];
                continue;
            }
            (Some(_), _) => {}
            (None, '\'' | '"') if depth > 0 => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => depth = depth.saturating_sub(1),
            (None, '.') if depth == 0 => {
                let after = &rest[1..];
                let end = after.find(['.', '[']).unwrap_or(after.len());
                let name = &after[..end];
                if !name.is_empty() && name != "*" && !shorthand(name) {
                    // `..name` (descendants) becomes `..['name']`.
                    if out.ends_with('.') {
                        out.push('.');
                    }
                    out.push_str("['");
                    for ch in name.chars() {
                        if ch == '\'' || ch == '\\' {
                            out.push('\\');
                        }
                        out.push(ch);
                    }
                    out.push_str("']");
                    changed = true;
                    rest = &after[end..];
                    continue;
                }
            }
            _ => {}
        }
        out.push(c);
        rest = &rest[len..];
    }
    if changed {
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(body)
    }
}

/// `s` without its quoted names (the quotes stay, empty).
fn unquoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in s.chars() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => {
                quote = None;
                out.push(c);
            }
            Some(_) => {}
            None => {
                if c == '\'' || c == '"' {
                    quote = Some(c);
                }
                out.push(c);
            }
        }
    }
    out
}

/// True when a `[...]` outside quotes holds one of `chars`.
fn bracket_has(s: &str, chars: &[char]) -> bool {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => depth -= 1,
            (None, c) if depth > 0 && chars.contains(&c) => return true,
            _ => {}
        }
    }
    false
}

/// One step of a reference path.
#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A reference path: names one place to write (ResultPath, the seed's
/// `mapping`). Only `.name`, `['name']` and `[n]` steps.
#[derive(Debug, Clone)]
pub struct RefPath {
    pub text: String,
    pub segs: Vec<Seg>,
}

impl RefPath {
    pub fn root() -> RefPath {
        RefPath {
            text: "$".into(),
            segs: Vec::new(),
        }
    }

    pub fn parse(text: &str) -> Result<RefPath, String> {
        let bad = |why: &str| format!("{text:?} is not a reference path: {why}");
        let mut rest = text
            .strip_prefix('$')
            .ok_or_else(|| bad("it must start with $"))?;
        if rest.starts_with('$') {
            return Err(bad("the context object cannot be written"));
        }
        let mut segs = Vec::new();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let name = &r[..end];
                if name.is_empty() || name == "*" {
                    return Err(bad("empty or wildcard name"));
                }
                segs.push(Seg::Key(name.to_string()));
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let end = r.find(']').ok_or_else(|| bad("unclosed ["))?;
                let inner = r[..end].trim();
                if let Ok(n) = inner.parse::<usize>() {
                    segs.push(Seg::Index(n));
                } else if inner.len() >= 2
                    && ((inner.starts_with('\'') && inner.ends_with('\''))
                        || (inner.starts_with('"') && inner.ends_with('"')))
                {
                    segs.push(Seg::Key(inner[1..inner.len() - 1].to_string()));
                } else {
                    return Err(bad("only names and indexes may appear in [ ]"));
                }
                rest = &r[end + 1..];
            } else {
                return Err(bad("expected . or ["));
            }
        }
        Ok(RefPath {
            text: text.to_string(),
            segs,
        })
    }

    /// `target` with `value` placed at this path; objects on the way are
    /// created. Fails (`States.ResultPathMatchFailure`) when a step meets a
    /// value that is not an object (or array, for an index).
    pub fn write(&self, target: Value, value: Value) -> Result<Value, ErrorInfo> {
        if self.segs.is_empty() {
            return Ok(value);
        }
        let mut root = target;
        let mut cur = &mut root;
        for (i, seg) in self.segs.iter().enumerate() {
            let last = i + 1 == self.segs.len();
            let fail = |what: &str| {
                ErrorInfo::new(
                    crate::error::RESULT_PATH_MATCH_FAILURE,
                    format!("Unable to apply ResultPath {:?}: {what}", self.text),
                )
            };
            match seg {
                Seg::Key(k) => {
                    if cur.is_null() {
                        *cur = Value::Object(Map::new());
                    }
                    let obj = cur
                        .as_object_mut()
                        .ok_or_else(|| fail("not an object on the way"))?;
                    if last {
                        obj.insert(k.clone(), value);
                        return Ok(root);
                    }
                    cur = obj
                        .entry(k.clone())
                        .or_insert_with(|| Value::Object(Map::new()));
                }
                Seg::Index(n) => {
                    let arr = cur
                        .as_array_mut()
                        .ok_or_else(|| fail("not an array on the way"))?;
                    let slot = arr.get_mut(*n).ok_or_else(|| fail("index out of range"))?;
                    if last {
                        *slot = value;
                        return Ok(root);
                    }
                    cur = slot;
                }
            }
        }
        Ok(root)
    }
}

/// A payload template: the shape of the output with the places filled from
/// the input, the context object and intrinsic functions.
#[derive(Debug, Clone)]
pub enum Template {
    Literal(Value),
    Path(Path),
    Intrinsic(Intrinsic),
    /// The seed's `"Hi {{$.owner.name}}"`.
    Interp(Vec<Piece>),
    Object(Vec<(String, Template)>),
    Array(Vec<Template>),
}

#[derive(Debug, Clone)]
pub enum Piece {
    Text(String),
    Path(Path),
}

impl Template {
    /// ASL: keys ending in `.$` take a path or an intrinsic; everything else
    /// is literal. Errors carry the path under `src`.
    pub fn asl(v: &Value, src: &str, errors: &mut Vec<(String, String)>) -> Template {
        match v {
            Value::Object(m) => {
                let mut fields = Vec::with_capacity(m.len());
                for (k, v) in m {
                    let here = format!("{src}.{k}");
                    if let Some(name) = k.strip_suffix(".$") {
                        let t = match v.as_str() {
                            Some(s) if s.starts_with("States.") => match intrinsics::parse(s) {
                                Ok(f) => Template::Intrinsic(f),
                                Err(e) => {
                                    errors.push((here, e));
                                    Template::Literal(Value::Null)
                                }
                            },
                            Some(s) => match Path::parse(s) {
                                Ok(p) => Template::Path(p),
                                Err(e) => {
                                    errors.push((here, e));
                                    Template::Literal(Value::Null)
                                }
                            },
                            None => {
                                errors.push((
                                    here,
                                    "a field ending in .$ must hold a path or an intrinsic function"
                                        .into(),
                                ));
                                Template::Literal(Value::Null)
                            }
                        };
                        fields.push((name.to_string(), t));
                    } else {
                        fields.push((k.clone(), Template::asl(v, &here, errors)));
                    }
                }
                Template::Object(fields)
            }
            Value::Array(a) => Template::Array(
                a.iter()
                    .enumerate()
                    .map(|(i, v)| Template::asl(v, &format!("{src}[{i}]"), errors))
                    .collect(),
            ),
            other => Template::Literal(other.clone()),
        }
    }

    /// The seed dialect: a string that is a path (`"$"`, `"$.item.id"`) is
    /// replaced by what it selects; `{{$.path}}` inside a string is filled in.
    pub fn seed(v: &Value, src: &str, errors: &mut Vec<(String, String)>) -> Template {
        match v {
            Value::String(s) if s.starts_with('$') => match Path::parse(s) {
                Ok(p) => Template::Path(p),
                Err(e) => {
                    errors.push((src.to_string(), e));
                    Template::Literal(v.clone())
                }
            },
            Value::String(s) if s.contains("{{") => match interp(s) {
                Ok(pieces) => Template::Interp(pieces),
                Err(e) => {
                    errors.push((src.to_string(), e));
                    Template::Literal(v.clone())
                }
            },
            Value::Object(m) => Template::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), Template::seed(v, &format!("{src}.{k}"), errors)))
                    .collect(),
            ),
            Value::Array(a) => Template::Array(
                a.iter()
                    .enumerate()
                    .map(|(i, v)| Template::seed(v, &format!("{src}[{i}]"), errors))
                    .collect(),
            ),
            other => Template::Literal(other.clone()),
        }
    }

    pub fn eval(&self, input: &Value, context: &Value) -> Result<Value, ErrorInfo> {
        let missing = |p: &Path| {
            ErrorInfo::new(
                crate::error::PARAMETER_PATH_FAILURE,
                format!("The JSONPath {:?} could not be found in the input", p.text),
            )
        };
        Ok(match self {
            Template::Literal(v) => v.clone(),
            Template::Path(p) => p.select(input, context).ok_or_else(|| missing(p))?,
            Template::Intrinsic(f) => f.eval(input, context)?,
            Template::Interp(pieces) => {
                let mut s = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Text(t) => s.push_str(t),
                        Piece::Path(p) => {
                            match p.select(input, context).ok_or_else(|| missing(p))? {
                                Value::String(v) => s.push_str(&v),
                                other => s.push_str(&other.to_string()),
                            }
                        }
                    }
                }
                Value::String(s)
            }
            Template::Object(fields) => {
                let mut m = Map::with_capacity(fields.len());
                for (k, t) in fields {
                    m.insert(k.clone(), t.eval(input, context)?);
                }
                Value::Object(m)
            }
            Template::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|t| t.eval(input, context))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    /// Every path this template reads (for validation and pictures).
    pub fn paths(&self) -> Vec<&Path> {
        match self {
            Template::Path(p) => vec![p],
            Template::Interp(ps) => ps
                .iter()
                .filter_map(|p| match p {
                    Piece::Path(p) => Some(p),
                    Piece::Text(_) => None,
                })
                .collect(),
            Template::Object(f) => f.iter().flat_map(|(_, t)| t.paths()).collect(),
            Template::Array(a) => a.iter().flat_map(|t| t.paths()).collect(),
            _ => Vec::new(),
        }
    }
}

/// Splits `"Hi {{$.a}}!"` into text and paths.
fn interp(s: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            out.push(Piece::Text(rest[..open].to_string()));
        }
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| format!("unclosed {{{{ in {s:?}"))?;
        out.push(Piece::Path(Path::parse(after[..close].trim())?));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.to_string()));
    }
    Ok(out)
}

/// Deep merge: objects key by key, anything else replaced by `from`.
pub fn merge_into(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(slot) => merge_into(slot, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dot_names_beyond_the_rfc_shorthand() {
        let doc = json!({"delivery-partner": "UQS", "2fa": true, "a": {"x-y": [{"k'q": 1}]}});
        let sel = |p: &str| Path::parse(p).unwrap().select(&doc, &Value::Null);
        assert_eq!(sel("$.delivery-partner"), Some(json!("UQS")));
        assert_eq!(sel("$.2fa"), Some(json!(true)));
        assert_eq!(sel("$.a.x-y[0].k'q"), Some(json!(1)));
        assert_eq!(sel("$..x-y"), Some(json!([[{"k'q": 1}]])));
        // Inside brackets nothing is rewritten.
        assert_eq!(sel("$['delivery-partner']"), Some(json!("UQS")));
        assert!(Path::parse("$[?@.a-b]").is_err());
        // What a reference path writes, the same text reads back.
        let written = RefPath::parse("$.new-key.x-y")
            .unwrap()
            .write(doc.clone(), json!(5))
            .unwrap();
        assert_eq!(
            Path::parse("$.new-key.x-y")
                .unwrap()
                .select(&written, &Value::Null),
            Some(json!(5))
        );
    }

    #[test]
    fn select_definite_and_indefinite() {
        let doc = json!({"a": {"b": [1, 2, 3]}, "c": "x"});
        let ctx = json!({"Execution": {"Id": "e1"}});
        assert_eq!(
            Path::parse("$.a.b[1]").unwrap().select(&doc, &ctx),
            Some(json!(2))
        );
        assert_eq!(
            Path::parse("$.a.b[*]").unwrap().select(&doc, &ctx),
            Some(json!([1, 2, 3]))
        );
        assert_eq!(
            Path::parse("$.a.b[0:2]").unwrap().select(&doc, &ctx),
            Some(json!([1, 2]))
        );
        assert_eq!(Path::parse("$.nope").unwrap().select(&doc, &ctx), None);
        assert_eq!(
            Path::parse("$$.Execution.Id").unwrap().select(&doc, &ctx),
            Some(json!("e1"))
        );
        assert_eq!(
            Path::parse("$").unwrap().select(&doc, &ctx),
            Some(doc.clone())
        );
        assert!(Path::parse("a.b").is_err());
    }

    #[test]
    fn write_reference_paths() {
        let p = RefPath::parse("$.x.y").unwrap();
        assert_eq!(
            p.write(json!({"a": 1}), json!(2)).unwrap(),
            json!({"a": 1, "x": {"y": 2}})
        );
        let p = RefPath::parse("$['x'][1]").unwrap();
        assert_eq!(
            p.write(json!({"x": [0, 0]}), json!(5)).unwrap(),
            json!({"x": [0, 5]})
        );
        let p = RefPath::parse("$.a.b").unwrap();
        let e = p.write(json!({"a": 1}), json!(2)).unwrap_err();
        assert_eq!(e.error, "States.ResultPathMatchFailure");
        assert!(RefPath::parse("$.a[*]").is_err());
        assert!(RefPath::parse("$$.a").is_err());
    }

    #[test]
    fn seed_templates() {
        let mut errs = Vec::new();
        let t = Template::seed(
            &json!({"uuid": "$.item.id", "text": "Hi {{$.owner.name}}, rule {{$.n}}", "all": "$", "lit": 3}),
            "parameters",
            &mut errs,
        );
        assert!(errs.is_empty());
        let input = json!({"item": {"id": "fw"}, "owner": {"name": "Ann"}, "n": 7});
        let out = t.eval(&input, &Value::Null).unwrap();
        assert_eq!(out["uuid"], "fw");
        assert_eq!(out["text"], "Hi Ann, rule 7");
        assert_eq!(out["all"], input);
        assert_eq!(out["lit"], 3);
    }

    #[test]
    fn asl_templates() {
        let mut errs = Vec::new();
        let t = Template::asl(
            &json!({"a.$": "$.x", "b": {"c.$": "States.Format('n={}', $.x)"}, "d": "$.x"}),
            "Parameters",
            &mut errs,
        );
        assert!(errs.is_empty(), "{errs:?}");
        let out = t.eval(&json!({"x": 4}), &Value::Null).unwrap();
        assert_eq!(out, json!({"a": 4, "b": {"c": "n=4"}, "d": "$.x"}));
        let e = Template::asl(&json!({"a.$": "$.missing"}), "P", &mut errs)
            .eval(&json!({}), &Value::Null)
            .unwrap_err();
        assert_eq!(e.error, "States.ParameterPathFailure");
    }

    #[test]
    fn deep_merge() {
        let mut a = json!({"x": {"y": 1}, "k": 1});
        merge_into(&mut a, json!({"x": {"z": 2}, "k": [1]}));
        assert_eq!(a, json!({"x": {"y": 1, "z": 2}, "k": [1]}));
    }
}
