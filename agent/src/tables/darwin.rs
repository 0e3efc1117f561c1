//! Helpers shared by the macOS tables: property lists read the way osquery
//! reads them, the macOS version, home directories and `system_profiler`
//! reports. Everything goes through the machine seam, so the tables that use
//! these helpers read a recorded Mac on any host.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use crate::os::{CommandOutput, FileKind};
use crate::sql::table::ScanContext;
use crate::tables::plist::scalar;
use crate::tables::util::paths;

/// `/System/Library/CoreServices/SystemVersion.plist`, the system's version.
pub const SYSTEM_VERSION: &str = "/System/Library/CoreServices/SystemVersion.plist";

/// `system_profiler`, which osquery's `getSystemProfilerReport` wraps.
pub const SYSTEM_PROFILER: &str = "/usr/sbin/system_profiler";

/// Parses a property list (XML, binary or OpenStep).
pub fn parse_plist(bytes: &[u8]) -> Option<plist::Value> {
    plist::Value::from_reader(Cursor::new(bytes)).ok()
}

/// Reads and parses a property list file; `None` when it is missing,
/// unreadable or not a property list (osquery skips such files).
pub fn read_plist(ctx: &ScanContext<'_>, path: &Path) -> Option<plist::Value> {
    let bytes = ctx.machine.fs.read(path).ok()?;
    parse_plist(&bytes)
}

/// A value as osquery's property tree holds it: scalars as `getValue` prints
/// them (booleans `1`/`0`, data as base64, dates as Unix seconds), and
/// containers as empty text (a tree node's own data).
pub fn text(v: &plist::Value) -> String {
    match v {
        plist::Value::Array(_) | plist::Value::Dictionary(_) => String::new(),
        other => scalar(other),
    }
}

/// boost's `ptree::get(path, default)`: the child at a dotted path, as text.
/// `None` when a step is missing (the caller's default applies).
pub fn get_text(dict: &plist::Dictionary, path: &str) -> Option<String> {
    let mut parts = path.split('.');
    let first = parts.next()?;
    let mut v = dict.get(first)?;
    for part in parts {
        v = v.as_dictionary()?.get(part)?;
    }
    Some(text(v))
}

/// boost's `ptree::get<int>(key, default)`: the child's text as an integer,
/// `None` when it is missing or is not a whole number.
pub fn get_int(dict: &plist::Dictionary, key: &str) -> Option<i64> {
    get_text(dict, key)?.trim().parse().ok()
}

/// The macOS major version, from `SystemVersion.plist`'s `ProductVersion`.
pub fn major_version(ctx: &ScanContext<'_>) -> Option<i64> {
    let v = read_plist(ctx, Path::new(SYSTEM_VERSION))?;
    let version = v.as_dictionary()?.get("ProductVersion")?.as_string()?;
    version.split('.').next()?.trim().parse().ok()
}

/// The home directories osquery walks for per-user files: each directory
/// under `/Users` (but `Shared` and hidden ones) and root's `/var/root`.
/// osquery takes them from the users table; accounts whose home is elsewhere
/// are not found here.
pub fn home_directories(ctx: &ScanContext<'_>) -> Vec<PathBuf> {
    let fs = ctx.machine.fs.as_ref();
    let mut homes: Vec<PathBuf> = fs
        .read_dir(Path::new("/Users"))
        .map(|entries| {
            entries
                .into_iter()
                .filter(|e| e.kind == FileKind::Dir)
                .filter(|e| e.name != "Shared" && !e.name.starts_with('.'))
                .map(|e| paths::join(Path::new("/Users"), e.name))
                .collect()
        })
        .unwrap_or_default();
    homes.sort();
    homes.push(PathBuf::from("/var/root"));
    homes
}

/// Runs a program; `None` when it cannot be started (not installed, not in
/// the recording). The caller looks at the exit status.
pub fn run(ctx: &ScanContext<'_>, program: &str, args: &[&str]) -> Option<CommandOutput> {
    ctx.machine.commands.run(program, args).ok()
}

/// The report `system_profiler -xml <data type>` prints for one data type:
/// the dictionary with `_items` and `_versionInfo` that osquery's
/// `getSystemProfilerReport` returns. `None` when system_profiler cannot be
/// run or prints no such report.
pub fn system_profiler(ctx: &ScanContext<'_>, data_type: &str) -> Option<plist::Dictionary> {
    let out = run(ctx, SYSTEM_PROFILER, &["-xml", data_type])?;
    if out.status != 0 {
        return None;
    }
    let v = parse_plist(out.stdout.as_bytes())?;
    let reports = v.into_array()?;
    reports
        .into_iter()
        .filter_map(plist::Value::into_dictionary)
        .find(|d| {
            d.get("_dataType")
                .and_then(plist::Value::as_string)
                .is_none_or(|t| t == data_type)
        })
}

/// The last entry of a report's `_items` (osquery's `[_items lastObject]`).
pub fn last_item(report: &plist::Dictionary) -> Option<&plist::Dictionary> {
    report.get("_items")?.as_array()?.last()?.as_dictionary()
}

/// A string entry of a dictionary.
pub fn string<'a>(dict: &'a plist::Dictionary, key: &str) -> Option<&'a str> {
    dict.get(key)?.as_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(xml: &str) -> plist::Dictionary {
        let doc = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">{xml}</plist>"
        );
        parse_plist(doc.as_bytes())
            .and_then(plist::Value::into_dictionary)
            .unwrap()
    }

    #[test]
    fn ptree_style_lookups() {
        let d = dict(
            "<dict><key>a</key><dict><key>b</key><string>x</string></dict>\
             <key>n</key><integer>3</integer><key>t</key><true/>\
             <key>s</key><string>no</string><key>l</key><array/></dict>",
        );
        assert_eq!(get_text(&d, "a.b").as_deref(), Some("x"));
        assert_eq!(get_text(&d, "a").as_deref(), Some(""));
        assert_eq!(get_text(&d, "a.c"), None);
        assert_eq!(get_int(&d, "n"), Some(3));
        assert_eq!(get_int(&d, "t"), Some(1));
        assert_eq!(get_int(&d, "s"), None);
        assert_eq!(get_text(&d, "l").as_deref(), Some(""));
    }

    #[test]
    fn system_profiler_reports() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><array><dict>
<key>_dataType</key><string>SPFirewallDataType</string>
<key>_items</key><array><dict><key>a</key><string>1</string></dict><dict><key>a</key><string>2</string></dict></array>
</dict></array></plist>"#;
        let v = parse_plist(xml.as_bytes()).unwrap();
        let report = v.into_array().unwrap().remove(0).into_dictionary().unwrap();
        assert_eq!(string(last_item(&report).unwrap(), "a"), Some("2"));
    }
}
