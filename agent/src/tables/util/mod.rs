//! Helpers shared by several tables.

pub mod dylib;
pub mod paths;
#[cfg(test)]
pub(crate) mod testing;
pub mod versions;

use std::path::Path;

use crate::os::Fs;

/// Reads a text file, mapping "not there" to `None` and other errors to `Err`.
pub fn read_optional(fs: &dyn Fs, path: &Path) -> std::io::Result<Option<String>> {
    match fs.read_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Parses `KEY=value` lines (os-release, /etc/default files), unquoting values.
pub fn key_values(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let (k, v) = line.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

/// Matches SQL `LIKE` (case-insensitive for ASCII, `%` any run, `_` one character).
pub fn sql_like(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('%', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some(('_', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some((c, rest)) => !t.is_empty() && t[0].eq_ignore_ascii_case(c) && go(rest, &t[1..]),
        }
    }
    // Collapse runs of % so the matcher stays linear in practice.
    let mut p: Vec<char> = Vec::with_capacity(pattern.len());
    for c in pattern.chars() {
        if c == '%' && p.last() == Some(&'%') {
            continue;
        }
        p.push(c);
    }
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_matches_like_sqlite() {
        assert!(sql_like("%.conf", "ufw.conf"));
        assert!(sql_like("UFW%", "ufw.conf"));
        assert!(sql_like("u_w.conf", "ufw.conf"));
        assert!(!sql_like("%.conf", "ufw.con"));
        assert!(sql_like("%", ""));
    }

    #[test]
    fn key_values_unquote() {
        let kv = key_values("NAME=\"Debian GNU/Linux\"\n# c\nID=debian\nX='y'\n");
        assert_eq!(kv[0], ("NAME".into(), "Debian GNU/Linux".into()));
        assert_eq!(kv[1], ("ID".into(), "debian".into()));
        assert_eq!(kv[2], ("X".into(), "y".into()));
    }
}

/// A UTC calendar time broken down, without a date library.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Sunday.
    pub weekday: u32,
}

impl Civil {
    /// Breaks down Unix seconds (Howard Hinnant's civil-from-days algorithm).
    pub fn from_unix(t: i64) -> Civil {
        let days = t.div_euclid(86_400);
        let secs = t.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Civil {
            year,
            month,
            day,
            hour: (secs / 3600) as u32,
            minute: (secs % 3600 / 60) as u32,
            second: (secs % 60) as u32,
            weekday: (days + 4).rem_euclid(7) as u32,
        }
    }

    /// `2026-11-29T16:10:56Z`.
    pub fn iso8601(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    pub fn weekday_name(&self) -> &'static str {
        [
            "Sunday",
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
        ][self.weekday as usize % 7]
    }

    pub fn month_abbrev(&self) -> &'static str {
        [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ][(self.month as usize + 11) % 12]
    }
}

#[cfg(test)]
mod civil_tests {
    use super::Civil;

    #[test]
    fn breaks_down_unix_time() {
        let c = Civil::from_unix(1_795_968_656); // 2026-11-29T16:10:56Z, a Sunday
        assert_eq!((c.year, c.month, c.day), (2026, 11, 29));
        assert_eq!((c.hour, c.minute, c.second), (16, 10, 56));
        assert_eq!(c.weekday_name(), "Sunday");
        assert_eq!(Civil::from_unix(0).iso8601(), "1970-01-01T00:00:00Z");
    }
}
