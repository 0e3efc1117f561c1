//! ASL's intrinsic functions: `States.Format('Hi {}', $.name)` and friends.
//! A failure is `States.IntrinsicFailure`, as in ASL.

use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::Digest as _;

use crate::error::{ErrorInfo, INTRINSIC_FAILURE};
use crate::path::Path;

#[derive(Debug, Clone)]
pub struct Intrinsic {
    pub name: String,
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub enum Arg {
    Lit(Value),
    Path(Path),
    Call(Box<Intrinsic>),
}

const FUNCTIONS: &[(&str, usize, usize)] = &[
    ("States.Format", 1, usize::MAX),
    ("States.StringToJson", 1, 1),
    ("States.JsonToString", 1, 1),
    ("States.Array", 0, usize::MAX),
    ("States.ArrayPartition", 2, 2),
    ("States.ArrayContains", 2, 2),
    ("States.ArrayRange", 3, 3),
    ("States.ArrayGetItem", 2, 2),
    ("States.ArrayLength", 1, 1),
    ("States.ArrayUnique", 1, 1),
    ("States.Base64Encode", 1, 1),
    ("States.Base64Decode", 1, 1),
    ("States.Hash", 2, 2),
    ("States.JsonMerge", 3, 3),
    ("States.MathRandom", 2, 3),
    ("States.MathAdd", 2, 2),
    ("States.StringSplit", 2, 2),
    ("States.UUID", 0, 0),
];

/// Parses `States.Name(arg, ...)`; checks the name and the number of arguments.
pub fn parse(text: &str) -> Result<Intrinsic, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        text,
    };
    let f = p.call()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("unexpected text after the call in {text:?}"));
    }
    Ok(f)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn err(&self, what: &str) -> String {
        format!("{what} at offset {} in {:?}", self.i, self.text)
    }

    fn call(&mut self) -> Result<Intrinsic, String> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'.')
        {
            self.i += 1;
        }
        let name = self.text[start..self.i].to_string();
        let Some(&(_, min, max)) = FUNCTIONS.iter().find(|(n, _, _)| *n == name) else {
            return Err(format!("unknown intrinsic function {name:?}"));
        };
        self.ws();
        if self.s.get(self.i) != Some(&b'(') {
            return Err(self.err("expected ("));
        }
        self.i += 1;
        let mut args = Vec::new();
        self.ws();
        if self.s.get(self.i) == Some(&b')') {
            self.i += 1;
        } else {
            loop {
                args.push(self.arg()?);
                self.ws();
                match self.s.get(self.i) {
                    Some(b',') => self.i += 1,
                    Some(b')') => {
                        self.i += 1;
                        break;
                    }
                    _ => return Err(self.err("expected , or )")),
                }
            }
        }
        if args.len() < min || args.len() > max {
            return Err(format!(
                "{name} takes {} argument(s), not {}",
                arity(min, max),
                args.len()
            ));
        }
        Ok(Intrinsic { name, args })
    }

    fn arg(&mut self) -> Result<Arg, String> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'\'') => {
                self.i += 1;
                let mut out = String::new();
                let mut chars = self.text[self.i..].char_indices();
                loop {
                    let Some((off, c)) = chars.next() else {
                        return Err(self.err("unclosed string"));
                    };
                    match c {
                        '\\' => match chars.next() {
                            // `\{` and `\}` stay escaped for States.Format.
                            Some((_, c @ ('{' | '}'))) => {
                                out.push('\\');
                                out.push(c);
                            }
                            Some((_, c)) => out.push(c),
                            None => return Err(self.err("dangling \\")),
                        },
                        '\'' => {
                            self.i += off + 1;
                            return Ok(Arg::Lit(Value::String(out)));
                        }
                        c => out.push(c),
                    }
                }
            }
            Some(b'$') => {
                let start = self.i;
                let (mut depth, mut quote) = (0i32, None::<u8>);
                while self.i < self.s.len() {
                    let c = self.s[self.i];
                    match (quote, c) {
                        (Some(q), c) if c == q => quote = None,
                        (Some(_), _) => {}
                        (None, b'\'' | b'"') => quote = Some(c),
                        (None, b'[' | b'(') => depth += 1,
                        (None, b']') => depth -= 1,
                        (None, b')') if depth > 0 => depth -= 1,
                        (None, b',' | b')') if depth == 0 => break,
                        _ => {}
                    }
                    self.i += 1;
                }
                Ok(Arg::Path(Path::parse(self.text[start..self.i].trim())?))
            }
            Some(b'S') => Ok(Arg::Call(Box::new(self.call()?))),
            _ => {
                let start = self.i;
                while self.i < self.s.len() && !matches!(self.s[self.i], b',' | b')') {
                    self.i += 1;
                }
                let lit = self.text[start..self.i].trim();
                let v: Value = serde_json::from_str(lit).map_err(|_| self.err("bad argument"))?;
                if v.is_object() || v.is_array() {
                    return Err(self.err("objects and arrays are not literal arguments"));
                }
                Ok(Arg::Lit(v))
            }
        }
    }
}

fn arity(min: usize, max: usize) -> String {
    match (min, max) {
        (a, b) if a == b => a.to_string(),
        (a, usize::MAX) => format!("at least {a}"),
        (a, b) => format!("{a} to {b}"),
    }
}

fn fail(cause: impl Into<String>) -> ErrorInfo {
    ErrorInfo::new(INTRINSIC_FAILURE, cause)
}

fn as_str<'v>(f: &str, v: &'v Value) -> Result<&'v str, ErrorInfo> {
    v.as_str()
        .ok_or_else(|| fail(format!("{f}: expected a string, got {v}")))
}

fn as_arr<'v>(f: &str, v: &'v Value) -> Result<&'v Vec<Value>, ErrorInfo> {
    v.as_array()
        .ok_or_else(|| fail(format!("{f}: expected an array, got {v}")))
}

fn as_int(f: &str, v: &Value) -> Result<i64, ErrorInfo> {
    v.as_i64()
        .or_else(|| v.as_f64().filter(|x| x.fract() == 0.0).map(|x| x as i64))
        .ok_or_else(|| fail(format!("{f}: expected an integer, got {v}")))
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Intrinsic {
    pub fn eval(&self, input: &Value, context: &Value) -> Result<Value, ErrorInfo> {
        let mut a = Vec::with_capacity(self.args.len());
        for arg in &self.args {
            a.push(match arg {
                Arg::Lit(v) => v.clone(),
                Arg::Path(p) => p.select(input, context).ok_or_else(|| {
                    fail(format!(
                        "{}: the path {:?} selects nothing",
                        self.name, p.text
                    ))
                })?,
                Arg::Call(f) => f.eval(input, context)?,
            });
        }
        let f = self.name.as_str();
        Ok(match f {
            "States.Format" => {
                let tpl = as_str(f, &a[0])?;
                let mut out = String::new();
                let mut args = a[1..].iter();
                let mut chars = tpl.chars().peekable();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                out.push(n);
                            }
                        }
                        '{' if chars.peek() == Some(&'}') => {
                            chars.next();
                            let v = args
                                .next()
                                .ok_or_else(|| fail("States.Format: more {} than arguments"))?;
                            out.push_str(&text_of(v));
                        }
                        c => out.push(c),
                    }
                }
                if args.next().is_some() {
                    return Err(fail("States.Format: more arguments than {}"));
                }
                Value::String(out)
            }
            "States.StringToJson" => serde_json::from_str(as_str(f, &a[0])?)
                .map_err(|e| fail(format!("{f}: not JSON: {e}")))?,
            "States.JsonToString" => Value::String(a[0].to_string()),
            "States.Array" => Value::Array(a),
            "States.ArrayPartition" => {
                let arr = as_arr(f, &a[0])?;
                let n = as_int(f, &a[1])?;
                if n <= 0 {
                    return Err(fail(format!("{f}: the chunk size must be positive")));
                }
                Value::Array(
                    arr.chunks(n as usize)
                        .map(|c| Value::Array(c.to_vec()))
                        .collect(),
                )
            }
            "States.ArrayContains" => Value::Bool(as_arr(f, &a[0])?.contains(&a[1])),
            "States.ArrayRange" => {
                let (start, end, step) = (as_int(f, &a[0])?, as_int(f, &a[1])?, as_int(f, &a[2])?);
                if step == 0 {
                    return Err(fail(format!("{f}: the step cannot be 0")));
                }
                let mut out = Vec::new();
                let mut x = start;
                while (step > 0 && x <= end) || (step < 0 && x >= end) {
                    out.push(Value::from(x));
                    if out.len() > 1000 {
                        return Err(fail(format!("{f}: more than 1000 items")));
                    }
                    // Past i64's range the sequence ends (the bound is unreachable).
                    match x.checked_add(step) {
                        Some(next) => x = next,
                        None => break,
                    }
                }
                Value::Array(out)
            }
            "States.ArrayGetItem" => {
                let arr = as_arr(f, &a[0])?;
                let i = as_int(f, &a[1])?;
                usize::try_from(i)
                    .ok()
                    .and_then(|i| arr.get(i))
                    .cloned()
                    .ok_or_else(|| fail(format!("{f}: index {i} out of range")))?
            }
            "States.ArrayLength" => Value::from(as_arr(f, &a[0])?.len()),
            "States.ArrayUnique" => {
                let mut out: Vec<Value> = Vec::new();
                for v in as_arr(f, &a[0])? {
                    if !out.contains(v) {
                        out.push(v.clone());
                    }
                }
                Value::Array(out)
            }
            "States.Base64Encode" => {
                Value::String(base64::engine::general_purpose::STANDARD.encode(as_str(f, &a[0])?))
            }
            "States.Base64Decode" => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(as_str(f, &a[0])?)
                    .map_err(|e| fail(format!("{f}: {e}")))?;
                Value::String(
                    String::from_utf8(bytes).map_err(|_| fail(format!("{f}: not UTF-8")))?,
                )
            }
            "States.Hash" => {
                let data = text_of(&a[0]);
                let hex = match as_str(f, &a[1])? {
                    "MD5" => to_hex(&md5::Md5::digest(data.as_bytes())),
                    "SHA-1" => to_hex(&sha1::Sha1::digest(data.as_bytes())),
                    "SHA-256" => to_hex(&sha2::Sha256::digest(data.as_bytes())),
                    "SHA-384" => to_hex(&sha2::Sha384::digest(data.as_bytes())),
                    "SHA-512" => to_hex(&sha2::Sha512::digest(data.as_bytes())),
                    other => {
                        return Err(fail(format!(
                            "{f}: unknown algorithm {other:?} (MD5, SHA-1, SHA-256, SHA-384, SHA-512)"
                        )));
                    }
                };
                Value::String(hex)
            }
            "States.JsonMerge" => {
                let (Some(x), Some(y)) = (a[0].as_object(), a[1].as_object()) else {
                    return Err(fail(format!("{f}: both arguments must be objects")));
                };
                if a[2] != Value::Bool(false) {
                    return Err(fail(format!(
                        "{f}: only the shallow merge (false) is defined"
                    )));
                }
                let mut m: Map<String, Value> = x.clone();
                for (k, v) in y {
                    m.insert(k.clone(), v.clone());
                }
                Value::Object(m)
            }
            "States.MathRandom" => {
                let (start, end) = (as_int(f, &a[0])?, as_int(f, &a[1])?);
                if end <= start {
                    return Err(fail(format!("{f}: the end must be above the start")));
                }
                let mut rng = match a.get(2) {
                    Some(seed) => fastrand::Rng::with_seed(as_int(f, seed)? as u64),
                    None => fastrand::Rng::new(),
                };
                Value::from(rng.i64(start..end))
            }
            "States.MathAdd" => {
                let (x, y) = (as_int(f, &a[0])?, as_int(f, &a[1])?);
                Value::from(
                    x.checked_add(y)
                        .ok_or_else(|| fail(format!("{f}: overflow")))?,
                )
            }
            "States.StringSplit" => {
                let s = as_str(f, &a[0])?;
                let d: Vec<char> = as_str(f, &a[1])?.chars().collect();
                Value::Array(
                    s.split(|c| d.contains(&c))
                        .filter(|p| !p.is_empty())
                        .map(|p| Value::String(p.to_string()))
                        .collect(),
                )
            }
            "States.UUID" => Value::String(uuid::Uuid::new_v4().to_string()),
            other => return Err(fail(format!("unknown intrinsic function {other:?}"))),
        })
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(expr: &str, input: Value) -> Result<Value, ErrorInfo> {
        parse(expr)
            .unwrap()
            .eval(&input, &json!({"Execution": {"Id": "x"}}))
    }

    #[test]
    fn all_functions() {
        let i = json!({"name": "Ann", "n": 3, "arr": [1, 2, 2, 3], "o": {"a": 1}, "p": {"b": 2}});
        assert_eq!(
            run("States.Format('Hi {}, {} \\{\\}', $.name, $.n)", i.clone()).unwrap(),
            json!("Hi Ann, 3 {}")
        );
        assert_eq!(
            run("States.StringToJson('{\"a\": 1}')", i.clone()).unwrap(),
            json!({"a": 1})
        );
        assert_eq!(
            run("States.JsonToString($.o)", i.clone()).unwrap(),
            json!("{\"a\":1}")
        );
        assert_eq!(
            run("States.Array(1, 'x', $.n, null)", i.clone()).unwrap(),
            json!([1, "x", 3, null])
        );
        assert_eq!(
            run("States.ArrayPartition($.arr, 3)", i.clone()).unwrap(),
            json!([[1, 2, 2], [3]])
        );
        assert_eq!(
            run("States.ArrayContains($.arr, 3)", i.clone()).unwrap(),
            json!(true)
        );
        assert_eq!(
            run("States.ArrayRange(1, 9, 2)", i.clone()).unwrap(),
            json!([1, 3, 5, 7, 9])
        );
        assert_eq!(
            run("States.ArrayGetItem($.arr, 3)", i.clone()).unwrap(),
            json!(3)
        );
        assert_eq!(
            run("States.ArrayLength($.arr)", i.clone()).unwrap(),
            json!(4)
        );
        assert_eq!(
            run("States.ArrayUnique($.arr)", i.clone()).unwrap(),
            json!([1, 2, 3])
        );
        assert_eq!(
            run("States.Base64Encode('Data to encode')", i.clone()).unwrap(),
            json!("RGF0YSB0byBlbmNvZGU=")
        );
        assert_eq!(
            run("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')", i.clone()).unwrap(),
            json!("Data to encode")
        );
        assert_eq!(
            run("States.Hash('input data', 'SHA-1')", i.clone()).unwrap(),
            json!("aaff4a450a104cd177d28d18d74485e8cae074b7")
        );
        assert_eq!(
            run("States.JsonMerge($.o, $.p, false)", i.clone()).unwrap(),
            json!({"a": 1, "b": 2})
        );
        let r = run("States.MathRandom(1, 10)", i.clone())
            .unwrap()
            .as_i64()
            .unwrap();
        assert!((1..10).contains(&r));
        assert_eq!(run("States.MathAdd($.n, -1)", i.clone()).unwrap(), json!(2));
        assert_eq!(
            run("States.StringSplit('a,b, c', ', ')", i.clone()).unwrap(),
            json!(["a", "b", "c"])
        );
        assert_eq!(
            run("States.UUID()", i.clone())
                .unwrap()
                .as_str()
                .unwrap()
                .len(),
            36
        );
        assert_eq!(
            run("States.ArrayLength(States.Array(1, 2))", i.clone()).unwrap(),
            json!(2)
        );
        assert_eq!(
            run("States.Format('{}', $$.Execution.Id)", i.clone()).unwrap(),
            json!("x")
        );
    }

    #[test]
    fn failures() {
        assert!(parse("States.Nope(1)").is_err());
        assert!(parse("States.ArrayLength(1, 2)").is_err());
        assert!(parse("States.Format('x'").is_err());
        let e = run("States.ArrayGetItem(States.Array(1), 5)", json!({})).unwrap_err();
        assert_eq!(e.error, "States.IntrinsicFailure");
        let e = run("States.Hash('x', 'CRC')", json!({})).unwrap_err();
        assert_eq!(e.error, "States.IntrinsicFailure");
    }
}
