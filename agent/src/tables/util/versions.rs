//! Version comparison: generic, Debian's (dpkg) and rpm's algorithms.

use std::cmp::Ordering;

/// Generic: compares runs of digits numerically and other runs as text,
/// ignoring separators (`1.10 > 1.9`, `2.0-rc1 < 2.0.1`).
pub fn generic(a: &str, b: &str) -> Ordering {
    let sa = segments(a);
    let sb = segments(b);
    for (x, y) in sa.iter().zip(&sb) {
        let o = compare_segment(x, y);
        if o != Ordering::Equal {
            return o;
        }
    }
    sa.len().cmp(&sb.len())
}

fn segments(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let digit = bytes[i].is_ascii_digit();
        let start = i;
        while i < bytes.len()
            && bytes[i].is_ascii_alphanumeric()
            && bytes[i].is_ascii_digit() == digit
        {
            i += 1;
        }
        out.push(&s[start..i]);
    }
    out
}

fn compare_segment(a: &str, b: &str) -> Ordering {
    let an = a.bytes().all(|c| c.is_ascii_digit());
    let bn = b.bytes().all(|c| c.is_ascii_digit());
    match (an, bn) {
        (true, true) => compare_numeric(a, b),
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.cmp(b),
    }
}

fn compare_numeric(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Debian's algorithm (deb-version(7)): `[epoch:]upstream[-revision]`.
pub fn dpkg(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split_dpkg(a);
    let (eb, ub, rb) = split_dpkg(b);
    ea.cmp(&eb)
        .then_with(|| dpkg_part(ua, ub))
        .then_with(|| dpkg_part(ra, rb))
}

fn split_dpkg(v: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) if e.bytes().all(|c| c.is_ascii_digit()) => (e.parse().unwrap_or(0), r),
        _ => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((u, r)) => (epoch, u, r),
        None => (epoch, rest, ""),
    }
}

fn dpkg_order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(c) => c as i32 + 256,
    }
}

fn dpkg_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // Non-digit prefix, compared with dpkg's character order.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ca = dpkg_order(a.get(i).copied().filter(|c| !c.is_ascii_digit()));
            let cb = dpkg_order(b.get(j).copied().filter(|c| !c.is_ascii_digit()));
            if ca != cb {
                return ca.cmp(&cb);
            }
            if i < a.len() && !a[i].is_ascii_digit() {
                i += 1;
            }
            if j < b.len() && !b[j].is_ascii_digit() {
                j += 1;
            }
        }
        let si = i;
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        let sj = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let na = std::str::from_utf8(&a[si..i]).unwrap_or("");
        let nb = std::str::from_utf8(&b[sj..j]).unwrap_or("");
        let o = compare_numeric(
            if na.is_empty() { "0" } else { na },
            if nb.is_empty() { "0" } else { nb },
        );
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// rpm's `rpmvercmp`, applied to `[epoch:]version[-release]`.
pub fn rpm(a: &str, b: &str) -> Ordering {
    let (ea, va) = match a.split_once(':') {
        Some((e, v)) if e.bytes().all(|c| c.is_ascii_digit()) => (e.parse::<u64>().unwrap_or(0), v),
        _ => (0, a),
    };
    let (eb, vb) = match b.split_once(':') {
        Some((e, v)) if e.bytes().all(|c| c.is_ascii_digit()) => (e.parse::<u64>().unwrap_or(0), v),
        _ => (0, b),
    };
    ea.cmp(&eb).then_with(|| rpmvercmp(va, vb))
}

fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    loop {
        while i < a.len() && !a[i].is_ascii_alphanumeric() && a[i] != b'~' && a[i] != b'^' {
            i += 1;
        }
        while j < b.len() && !b[j].is_ascii_alphanumeric() && b[j] != b'~' && b[j] != b'^' {
            j += 1;
        }
        // Tilde sorts before everything, even the end.
        let ta = a.get(i) == Some(&b'~');
        let tb = b.get(j) == Some(&b'~');
        if ta || tb {
            if !(ta && tb) {
                return if ta {
                    Ordering::Less
                } else {
                    Ordering::Greater
                };
            }
            i += 1;
            j += 1;
            continue;
        }
        // Caret sorts after the end but before anything else.
        let ca = a.get(i) == Some(&b'^');
        let cb = b.get(j) == Some(&b'^');
        if ca || cb {
            if i >= a.len() {
                return Ordering::Less;
            }
            if j >= b.len() {
                return Ordering::Greater;
            }
            if !(ca && cb) {
                return if ca {
                    Ordering::Greater
                } else {
                    Ordering::Less
                };
            }
            i += 1;
            j += 1;
            continue;
        }
        if i >= a.len() || j >= b.len() {
            break;
        }
        let numeric = a[i].is_ascii_digit();
        let take = |s: &[u8], mut k: usize| {
            let start = k;
            while k < s.len()
                && (if numeric {
                    s[k].is_ascii_digit()
                } else {
                    s[k].is_ascii_alphabetic()
                })
            {
                k += 1;
            }
            (start, k)
        };
        let (s1, e1) = take(a, i);
        let (s2, e2) = take(b, j);
        if s2 == e2 {
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let x = std::str::from_utf8(&a[s1..e1]).unwrap_or("");
        let y = std::str::from_utf8(&b[s2..e2]).unwrap_or("");
        let o = if numeric {
            compare_numeric(x, y)
        } else {
            x.cmp(y)
        };
        if o != Ordering::Equal {
            return o;
        }
        i = e1;
        j = e2;
    }
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn generic_versions() {
        assert_eq!(generic("1.10", "1.9"), Greater);
        assert_eq!(generic("1.2.3", "1.2.3"), Equal);
        assert_eq!(generic("1.2", "1.2.1"), Less);
        assert_eq!(generic("10.0.19045", "10.0.22000"), Less);
    }

    #[test]
    fn dpkg_versions() {
        assert_eq!(dpkg("1.0~rc1", "1.0"), Less);
        assert_eq!(dpkg("1:1.0", "2.0"), Greater);
        assert_eq!(dpkg("1.0-1", "1.0-2"), Less);
        assert_eq!(dpkg("2.36-9+deb12u4", "2.36-9+deb12u10"), Less);
        assert_eq!(dpkg("1.0a", "1.0"), Greater);
        assert_eq!(dpkg("1.0", "1.0"), Equal);
    }

    #[test]
    fn rpm_versions() {
        assert_eq!(rpm("1.0~rc1", "1.0"), Less);
        assert_eq!(rpm("1.0^git1", "1.0"), Greater);
        assert_eq!(rpm("1.0", "1.0.1"), Less);
        assert_eq!(rpm("1:1.0", "2.0"), Greater);
        assert_eq!(rpm("5.14.0-362.el9", "5.14.0-70.el9"), Greater);
    }
}
