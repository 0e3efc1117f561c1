//! osquery's SQL functions, with osquery's semantics.
//!
//! String: `split`, `regex_split`, `regex_match`, `concat`, `concat_ws`,
//! `version_compare`. Hashing: `md5`, `sha1`, `sha256`. Encoding:
//! `to_base64`, `from_base64`, `conditional_to_base64`. Network: `inet_aton`,
//! `in_cidr_block`. Math: `sqrt`, `log`, `log10`, `ln`, `exp`, `power`, `pi`,
//! `floor`, `ceil`, `sin`, `cos`, `tan`, `cot`, `asin`, `acos`, `atan`,
//! `degrees`, `radians`.
//!
//! Regular expressions use the `regex` crate, which runs in linear time, so a
//! policy's pattern cannot stall the agent the way a backtracking engine can.

use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr};

use base64::Engine as _;
use regex::Regex;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, Error, Result};
use sha1::Digest;

fn text(ctx: &Context<'_>, i: usize) -> Result<Option<String>> {
    Ok(match ctx.get_raw(i) {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
    })
}

fn real(ctx: &Context<'_>, i: usize) -> Option<f64> {
    match ctx.get_raw(i) {
        ValueRef::Integer(n) => Some(n as f64),
        ValueRef::Real(f) => Some(f),
        ValueRef::Text(t) => std::str::from_utf8(t).ok()?.trim().parse().ok(),
        _ => None,
    }
}

fn user_error(msg: impl Into<String>) -> Error {
    Error::UserFunctionError(msg.into().into())
}

fn regex_arg(ctx: &Context<'_>, i: usize) -> Result<std::sync::Arc<Regex>> {
    ctx.get_or_create_aux(i as i32, |v| -> std::result::Result<Regex, Error> {
        let pattern = v
            .as_str()
            .map_err(|_| user_error("the pattern must be text"))?;
        Regex::new(pattern).map_err(|e| user_error(format!("invalid regular expression: {e}")))
    })
}

fn index_arg(ctx: &Context<'_>, i: usize) -> Result<usize> {
    let n: i64 = ctx.get(i)?;
    usize::try_from(n).map_err(|_| user_error("the index must not be negative"))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// `split(string, tokens, index)`: splits on any character of `tokens`,
/// dropping empty pieces, and returns piece `index` (NULL past the end).
pub fn split(input: &str, tokens: &str, index: usize) -> Option<String> {
    input
        .split(|c| tokens.contains(c))
        .filter(|s| !s.is_empty())
        .nth(index)
        .map(str::to_string)
}

/// `regex_split(string, pattern, index)`: splits on matches of `pattern`,
/// dropping empty pieces, and returns piece `index`.
pub fn regex_split(input: &str, re: &Regex, index: usize) -> Option<String> {
    re.split(input)
        .filter(|s| !s.is_empty())
        .nth(index)
        .map(str::to_string)
}

/// `regex_match(string, pattern, index)`: group `index` of the first match (0 is the whole match).
pub fn regex_match(input: &str, re: &Regex, index: usize) -> Option<String> {
    re.captures(input)?
        .get(index)
        .map(|m| m.as_str().to_string())
}

/// `inet_aton(ip)`: a dotted IPv4 address as an integer.
pub fn inet_aton(s: &str) -> Option<i64> {
    s.trim()
        .parse::<Ipv4Addr>()
        .ok()
        .map(|a| u32::from(a) as i64)
}

/// `in_cidr_block(cidr, ip)`: whether `ip` lies in `cidr` (IPv4 or IPv6).
pub fn in_cidr_block(cidr: &str, ip: &str) -> Option<bool> {
    let (net, len) = cidr.split_once('/')?;
    let net: IpAddr = net.parse().ok()?;
    let ip: IpAddr = ip.parse().ok()?;
    let len: u32 = len.parse().ok()?;
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if len <= 32 => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            Some(u32::from(n) & mask == u32::from(i) & mask)
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if len <= 128 => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            Some(u128::from(n) & mask == u128::from(i) & mask)
        }
        _ => Some(false),
    }
}

/// Whether osquery's `conditional_to_base64` leaves the text as it is: all printable ASCII.
fn is_plain(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// Compares two versions. `kind` is osquery's optional third argument:
/// `DPKG` (Debian), `RHEL` (rpm), or generic segment comparison otherwise.
pub fn version_compare(a: &str, b: &str, kind: Option<&str>) -> Ordering {
    match kind.map(str::to_ascii_uppercase).as_deref() {
        Some("DPKG") => crate::tables::util::versions::dpkg(a, b),
        Some("RHEL") | Some("RPM") => crate::tables::util::versions::rpm(a, b),
        _ => crate::tables::util::versions::generic(a, b),
    }
}

fn ordering_int(o: Ordering) -> i64 {
    match o {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    }
}

macro_rules! math1 {
    ($conn:expr, $flags:expr, $( $name:literal => $f:expr ),* $(,)?) => {
        $(
            $conn.create_scalar_function($name, 1, $flags, |ctx| {
                Ok(real(ctx, 0).map($f).filter(|v: &f64| v.is_finite()))
            })?;
        )*
    };
}

/// Adds osquery's functions to a connection.
pub fn register(conn: &Connection) -> Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;

    conn.create_scalar_function("split", 3, det, |ctx| {
        let (Some(s), Some(t)) = (text(ctx, 0)?, text(ctx, 1)?) else {
            return Ok(None);
        };
        Ok(split(&s, &t, index_arg(ctx, 2)?))
    })?;
    conn.create_scalar_function("regex_split", 3, det, |ctx| {
        let Some(s) = text(ctx, 0)? else {
            return Ok(None);
        };
        let re = regex_arg(ctx, 1)?;
        Ok(regex_split(&s, &re, index_arg(ctx, 2)?))
    })?;
    conn.create_scalar_function("regex_match", 3, det, |ctx| {
        let Some(s) = text(ctx, 0)? else {
            return Ok(None);
        };
        let re = regex_arg(ctx, 1)?;
        Ok(regex_match(&s, &re, index_arg(ctx, 2)?))
    })?;
    conn.create_scalar_function("concat", -1, det, |ctx| {
        let mut out = String::new();
        for i in 0..ctx.len() {
            if let Some(s) = text(ctx, i)? {
                out.push_str(&s);
            }
        }
        Ok(out)
    })?;
    conn.create_scalar_function("concat_ws", -1, det, |ctx| {
        if ctx.len() < 2 {
            return Err(user_error(
                "concat_ws takes a separator and at least one value",
            ));
        }
        let sep = text(ctx, 0)?.unwrap_or_default();
        let mut parts = Vec::new();
        for i in 1..ctx.len() {
            if let Some(s) = text(ctx, i)? {
                parts.push(s);
            }
        }
        Ok(parts.join(&sep))
    })?;
    for n in [2, 3] {
        conn.create_scalar_function("version_compare", n, det, |ctx| {
            let (Some(a), Some(b)) = (text(ctx, 0)?, text(ctx, 1)?) else {
                return Ok(None);
            };
            let kind = if ctx.len() > 2 { text(ctx, 2)? } else { None };
            Ok(Some(ordering_int(version_compare(&a, &b, kind.as_deref()))))
        })?;
    }
    conn.create_scalar_function("md5", 1, det, |ctx| {
        Ok(text(ctx, 0)?.map(|s| hex(&md5::Md5::digest(s.as_bytes()))))
    })?;
    conn.create_scalar_function("sha1", 1, det, |ctx| {
        Ok(text(ctx, 0)?.map(|s| hex(&sha1::Sha1::digest(s.as_bytes()))))
    })?;
    conn.create_scalar_function("sha256", 1, det, |ctx| {
        Ok(text(ctx, 0)?.map(|s| hex(&sha2::Sha256::digest(s.as_bytes()))))
    })?;
    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
    conn.create_scalar_function("to_base64", 1, det, |ctx| {
        Ok(match ctx.get_raw(0) {
            ValueRef::Null => None,
            ValueRef::Text(t) | ValueRef::Blob(t) => Some(B64.encode(t)),
            _ => text(ctx, 0)?.map(|s| B64.encode(s)),
        })
    })?;
    conn.create_scalar_function("from_base64", 1, det, |ctx| {
        Ok(text(ctx, 0)?.and_then(|s| {
            B64.decode(s.trim())
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        }))
    })?;
    conn.create_scalar_function("conditional_to_base64", 1, det, |ctx| {
        Ok(text(ctx, 0)?.map(|s| if is_plain(&s) { s } else { B64.encode(s) }))
    })?;
    conn.create_scalar_function("inet_aton", 1, det, |ctx| {
        Ok(text(ctx, 0)?.and_then(|s| inet_aton(&s)))
    })?;
    conn.create_scalar_function("in_cidr_block", 2, det, |ctx| {
        let (Some(c), Some(i)) = (text(ctx, 0)?, text(ctx, 1)?) else {
            return Ok(None);
        };
        Ok(in_cidr_block(&c, &i).map(i64::from))
    })?;

    math1!(conn, det,
        "sqrt" => f64::sqrt,
        "log" => f64::ln,
        "ln" => f64::ln,
        "log10" => f64::log10,
        "exp" => f64::exp,
        "floor" => f64::floor,
        "ceil" => f64::ceil,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "cot" => |x: f64| 1.0 / x.tan(),
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "degrees" => f64::to_degrees,
        "radians" => f64::to_radians,
    );
    conn.create_scalar_function("power", 2, det, |ctx| {
        Ok(match (real(ctx, 0), real(ctx, 1)) {
            (Some(a), Some(b)) => Some(a.powf(b)).filter(|v| v.is_finite()),
            _ => None,
        })
    })?;
    conn.create_scalar_function("pi", 0, det, |_| Ok(std::f64::consts::PI))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_drops_empty_pieces() {
        assert_eq!(split("a,,b;c", ",;", 1).as_deref(), Some("b"));
        assert_eq!(split("a,b", ",", 5), None);
    }

    #[test]
    fn regexes() {
        let re = Regex::new(r"(\d+)\.(\d+)").unwrap();
        assert_eq!(regex_match("v 10.4 x", &re, 2).as_deref(), Some("4"));
        assert_eq!(regex_match("v 10.4 x", &re, 0).as_deref(), Some("10.4"));
        let sep = Regex::new(r"[ ,]+").unwrap();
        assert_eq!(regex_split("a, b  c", &sep, 2).as_deref(), Some("c"));
    }

    #[test]
    fn network() {
        assert_eq!(inet_aton("10.0.0.1"), Some(167_772_161));
        assert_eq!(inet_aton("nope"), None);
        assert_eq!(in_cidr_block("10.0.0.0/8", "10.2.3.4"), Some(true));
        assert_eq!(in_cidr_block("10.0.0.0/8", "11.2.3.4"), Some(false));
        assert_eq!(in_cidr_block("fe80::/10", "fe80::1"), Some(true));
    }
}
