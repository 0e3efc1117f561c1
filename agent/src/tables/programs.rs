//! `programs`: installed programs as "Apps & features" lists them (osquery's
//! `programs`, alias `programs_and_features`), from the registry.
//!
//! As osquery:
//!
//! - Every subkey of the Uninstall keys is a program:
//!   `HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall`,
//!   its 32-bit twin under `SOFTWARE\WOW6432Node`, and
//!   `HKEY_USERS\<each loaded hive>\Software\Microsoft\Windows\CurrentVersion\Uninstall`
//!   (per-user installs). The values `DisplayName`, `DisplayVersion`,
//!   `InstallLocation`, `InstallSource`, `Language`, `Publisher`,
//!   `UninstallString`, `InstallDate` fill the columns of the same meaning;
//!   a subkey with none of them (and no GUID name) is no program.
//! - `identifying_number`: the `{GUID}` the subkey name ends with (an MSI
//!   product code), else the `BundleIdentifier` value. `upgrade_code`: for
//!   MSI products, the upgrade code Windows Installer files the product
//!   under, from `HKEY_LOCAL_MACHINE\SOFTWARE\Classes\Installer\UpgradeCodes`
//!   (and its WOW6432Node twin), whose key and value names are GUIDs in
//!   Installer's packed form (each part's hex digits reversed).
//! - MSIX/Store packages of each user, from
//!   `HKEY_USERS\<SID>\Software\Classes\Local Settings\Software\Microsoft\Windows\CurrentVersion\AppModel\Repository\Packages`:
//!   the package's `PackageRootFolder` → `install_location`; its
//!   `AppxManifest.xml` gives `name`, `publisher` and `version` (the
//!   `<Identity>` attributes, overridden by the `<Properties>` display names
//!   unless they are `ms-resource:` references) and its creation time gives
//!   `install_date` (`YYYYMMDD`, UTC); `package_family_name` is
//!   `<name>_<publisher hash>` from the package's full name. A package whose
//!   manifest cannot be read is skipped; one without `PackageRootFolder` is
//!   a row with only `package_family_name`, as in osquery. Packages are
//!   listed once per family across users.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regex::Regex;

use super::registry::{self, RegRow};
use super::util::Civil;
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};

pub static TABLE: TableDef = TableDef {
    name: "programs",
    columns: COLUMNS,
    platforms: Platforms::WINDOWS,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("name"),
    col::text("version"),
    col::text("install_location"),
    col::text("install_source"),
    col::text("language"),
    col::text("publisher"),
    col::text("uninstall_string"),
    col::text("install_date"),
    col::text("identifying_number"),
    col::text("package_family_name"),
    col::text("upgrade_code"),
];

const TABLE_NAME: &str = "programs";

const MACHINE_KEYS: [&str; 2] = [
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall",
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall",
];
const USER_KEYS: &str = "HKEY_USERS\\%\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall";
const UPGRADE_CODE_KEYS: [&str; 2] = [
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\Classes\\Installer\\UpgradeCodes",
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\WOW6432Node\\Classes\\Installer\\UpgradeCodes",
];
const MSIX_KEYS: &str = "HKEY_USERS\\%\\Software\\Classes\\Local Settings\\Software\\Microsoft\\Windows\\CurrentVersion\\AppModel\\Repository\\Packages";

/// A GUID at the end of a key path (osquery's pattern).
const GUID_AT_END: &str =
    r"(\{[a-fA-F0-9]+-[a-fA-F0-9]+-[a-fA-F0-9]+-[a-fA-F0-9]+-[a-fA-F0-9]+\})$";

/// Windows Installer's packed GUID (32 hex digits) as `{XXXXXXXX-...}`.
pub fn decode_packed_guid(packed: &str) -> Option<String> {
    if packed.len() != 32 || !packed.is_ascii() {
        return None;
    }
    let rev = |a: usize, b: usize| packed[a..b].chars().rev().collect::<String>();
    let mut tail = String::new();
    for i in (20..32).step_by(2) {
        tail.push_str(&rev(i, i + 2));
    }
    Some(format!(
        "{{{}-{}-{}-{}{}-{}}}",
        rev(0, 8),
        rev(8, 12),
        rev(12, 16),
        rev(16, 18),
        rev(18, 20),
        tail
    ))
}

/// Product code (upper case) → upgrade code, from Installer's UpgradeCodes keys.
fn upgrade_codes(ctx: &ScanContext<'_>) -> BTreeMap<String, String> {
    let reg = ctx.machine.registry.as_ref();
    let mut map = BTreeMap::new();
    for key in UPGRADE_CODE_KEYS {
        let Ok(rows) = registry::query_key(reg, key, false) else {
            continue;
        };
        for sub in rows.iter().filter(|r| r.is_subkey()) {
            let Some(upgrade) = decode_packed_guid(&sub.name) else {
                continue;
            };
            let Ok(products) = registry::query_key(reg, &sub.path, false) else {
                continue;
            };
            for p in &products {
                if let Some(code) = decode_packed_guid(&p.name) {
                    map.insert(code.to_ascii_uppercase(), upgrade.clone());
                }
            }
        }
    }
    map
}

/// The row of one Uninstall subkey, `None` when it names nothing osquery shows.
pub fn program_row(
    program_path: &str,
    values: &[RegRow],
    upgrade: &BTreeMap<String, String>,
    guid: &Regex,
) -> Option<Row> {
    let mut r = RowBuilder::new(COLUMNS);
    let mut any = false;
    let identifying = guid
        .captures(program_path)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_string());
    if let Some(id) = &identifying {
        r.set("identifying_number", id.as_str());
        any = true;
        if let Some(code) = upgrade
            .get(&id.to_ascii_uppercase())
            .filter(|c| !c.is_empty())
        {
            r.set("upgrade_code", code.as_str());
        }
    }
    for v in values {
        let column = match v.name.as_str() {
            "BundleIdentifier" if identifying.is_none() => "identifying_number",
            "DisplayName" => "name",
            "DisplayVersion" => "version",
            "InstallLocation" => "install_location",
            "InstallSource" => "install_source",
            "Language" => "language",
            "Publisher" => "publisher",
            "UninstallString" => "uninstall_string",
            "InstallDate" => "install_date",
            _ => continue,
        };
        r.set(column, v.data.as_str());
        any = true;
    }
    any.then(|| r.build())
}

/// `<Name>_<Version>_<Arch>_<ResourceId>_<PublisherHash>` → `<Name>_<PublisherHash>`,
/// as osquery derives it; "" for a name it does not recognize.
pub fn package_family_name(full_name: &str) -> String {
    let name = full_name.split_once('_').map_or("", |(n, _)| n);
    let mut hash = full_name.find("__").map_or("", |i| &full_name[i + 2..]);
    if hash.is_empty() {
        hash = full_name.rfind('_').map_or("", |i| &full_name[i + 1..]);
    }
    if name.is_empty() || hash.is_empty() {
        return String::new();
    }
    format!("{name}_{hash}")
}

/// What osquery reads from an `AppxManifest.xml`: name, publisher, version.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub name: Option<String>,
    pub publisher: Option<String>,
    pub version: Option<String>,
}

/// Parses an AppX manifest the way osquery does (regular expressions on the
/// `<Identity .../>` tag and the `<Properties>` element).
pub fn parse_manifest(xml: &str) -> Manifest {
    let mut m = Manifest::default();
    let attr = |tag: &str, name: &str| -> String {
        let re = Regex::new(r#"(\w+)="([^"]*)""#).ok();
        re.and_then(|re| {
            re.captures_iter(tag)
                .filter(|c| &c[1] == name)
                .last()
                .map(|c| c[2].to_string())
        })
        .unwrap_or_default()
    };
    if let Some(tag) = Regex::new(r"<Identity[\s\S]*?/>")
        .ok()
        .and_then(|re| re.find(xml).map(|f| f.as_str().to_string()))
    {
        m.name = Some(attr(&tag, "Name"));
        m.publisher = Some(attr(&tag, "Publisher"));
        m.version = Some(attr(&tag, "Version"));
    }
    let content = |text: &str, tag: &str| -> String {
        Regex::new(&format!(r"<{tag}[\s\S]*?>([\s\S]*?)</{tag}>"))
            .ok()
            .and_then(|re| re.captures(text).map(|c| c[1].to_string()))
            .unwrap_or_default()
    };
    let properties = content(xml, "Properties");
    if !properties.is_empty() {
        let display = content(&properties, "DisplayName");
        let publisher = content(&properties, "PublisherDisplayName");
        if !display.is_empty() && !display.contains("ms-resource") {
            m.name = Some(display);
        }
        if !publisher.is_empty() && !publisher.contains("ms-resource") {
            m.publisher = Some(publisher);
        }
    }
    m
}

/// One MSIX package's row, `None` when osquery skips it.
fn msix_row(ctx: &ScanContext<'_>, full_name: &str, values: &[RegRow]) -> Option<(String, Row)> {
    let fs = ctx.machine.fs.as_ref();
    let family = package_family_name(full_name);
    let mut r = RowBuilder::new(COLUMNS);
    r.set("package_family_name", family.as_str());
    let mut name = None;
    if let Some(root) = registry::value(values, "PackageRootFolder") {
        r.set("install_location", root);
        let manifest = format!("{root}\\AppxManifest.xml");
        let path = Path::new(&manifest);
        if let Ok(meta) = fs.metadata(path, true) {
            let c = Civil::from_unix(meta.btime);
            r.set(
                "install_date",
                format!("{:04}{:02}{:02}", c.year, c.month, c.day),
            );
        }
        let xml = fs.read_string(path).ok()?;
        let m = parse_manifest(&xml);
        r.set_opt("publisher", m.publisher)
            .set_opt("version", m.version);
        if let Some(n) = m.name {
            r.set("name", n.as_str());
            name = Some(n);
        }
    }
    let dedup = if family.is_empty() {
        name.unwrap_or_default()
    } else {
        family
    };
    Some((dedup, r.build()))
}

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let reg = ctx.machine.registry.as_ref();
    let guid = Regex::new(GUID_AT_END).map_err(|e| TableError::other(TABLE_NAME, e.to_string()))?;
    let mut keys: BTreeSet<String> = MACHINE_KEYS.iter().map(|k| k.to_string()).collect();
    keys.extend(registry::expand_globs(ctx, USER_KEYS)?);
    let upgrade = upgrade_codes(ctx);

    let mut rows = Vec::new();
    let mut seen = BTreeSet::new();
    for key in &keys {
        let Ok(subkeys) = registry::query_key(reg, key, false) else {
            continue;
        };
        for sub in subkeys.iter().filter(|r| r.is_subkey()) {
            ctx.check_deadline()?;
            if !seen.insert(sub.path.clone()) {
                continue;
            }
            let values = registry::query_key(reg, &sub.path, false).unwrap_or_default();
            if let Some(row) = program_row(&sub.path, &values, &upgrade, &guid) {
                rows.push(row);
            }
        }
    }

    let mut families = BTreeSet::new();
    for key in registry::expand_globs(ctx, MSIX_KEYS)? {
        let Ok(packages) = registry::query_key(reg, &key, false) else {
            continue;
        };
        for p in packages.iter().filter(|r| r.is_subkey()) {
            ctx.check_deadline()?;
            let values = registry::query_key(reg, &p.path, false).unwrap_or_default();
            if let Some((family, row)) = msix_row(ctx, &p.name, &values)
                && families.insert(family)
            {
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::Machine;
    use crate::sql::table::Value;

    #[test]
    fn packed_guids_unpack() {
        assert_eq!(
            decode_packed_guid("2CCAB6107DB47314AB175756630CCD04").as_deref(),
            Some("{016BACC2-4BD7-4137-BA71-756536C0DC40}")
        );
        assert_eq!(decode_packed_guid("short"), None);
    }

    #[test]
    fn package_family_names() {
        assert_eq!(
            package_family_name("MSTeams_25060.205.3499.6849_arm64__8wekyb3d8bbwe"),
            "MSTeams_8wekyb3d8bbwe"
        );
        assert_eq!(
            package_family_name("Windows.PrintDialog_6.2.3.0_neutral_neutral_cw5n1h2txyewy"),
            "Windows.PrintDialog_cw5n1h2txyewy"
        );
        assert_eq!(package_family_name("nounderscore"), "");
    }

    #[test]
    fn manifests_parse_as_osquery_reads_them() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<Package xmlns="http://schemas.microsoft.com/appx/manifest/foundation/windows10">
  <Identity Name="Microsoft.WindowsTerminal" Publisher="CN=Microsoft Corporation, O=Microsoft Corporation, L=Redmond, S=Washington, C=US" Version="1.18.3181.0" ProcessorArchitecture="x64" />
  <Properties>
    <DisplayName>ms-resource:AppName</DisplayName>
    <PublisherDisplayName>Microsoft Corporation</PublisherDisplayName>
    <Logo>Images\StoreLogo.png</Logo>
  </Properties>
</Package>"#;
        assert_eq!(
            parse_manifest(xml),
            Manifest {
                name: Some("Microsoft.WindowsTerminal".into()),
                publisher: Some("Microsoft Corporation".into()),
                version: Some("1.18.3181.0".into()),
            }
        );
    }

    fn text(v: Option<&Value>) -> Option<String> {
        match v {
            Some(Value::Text(s)) => Some(s.clone()),
            Some(Value::Null) | None => None,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_recorded_uninstall_keys() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/tables/programs"
        );
        let engine = crate::sql::Engine::new(Machine::snapshot(Path::new(dir)).unwrap()).unwrap();
        let res = engine.query("SELECT * FROM programs").unwrap();
        let names: Vec<Option<String>> = (0..res.rows.len())
            .map(|i| text(res.get(i, "name")))
            .collect();
        assert_eq!(
            names,
            vec![
                Some("7-Zip 23.01 (x64)".to_string()),
                Some("Mozilla Firefox (x64 en-US)".to_string()),
                Some(
                    "Microsoft Visual C++ 2015-2022 Redistributable (x64) - 14.38.33130"
                        .to_string()
                ),
                Some("Microsoft Update Health Tools".to_string()),
                Some("Microsoft Visual C++ 2013 x86 Minimum Runtime - 12.0.40664".to_string()),
                Some("Microsoft Teams classic".to_string()),
                // An MSIX package without a PackageRootFolder.
                None,
            ]
        );
        let row = |name: &str| {
            (0..res.rows.len())
                .find(|i| text(res.get(*i, "name")).as_deref() == Some(name))
                .unwrap()
        };
        let i = row("Microsoft Update Health Tools");
        assert_eq!(
            text(res.get(i, "identifying_number")).as_deref(),
            Some("{1FC1A6C2-576E-489A-9B4A-92D21F542136}")
        );
        assert_eq!(
            text(res.get(i, "upgrade_code")).as_deref(),
            Some("{2E5106FD-42A1-4BBE-9C03-7C1F3A6B1A2D}")
        );
        assert_eq!(
            text(res.get(i, "install_date")).as_deref(),
            Some("20231107")
        );
        assert_eq!(text(res.get(i, "version")).as_deref(), Some("5.72.0.0"));
        assert_eq!(
            text(res.get(i, "uninstall_string")).as_deref(),
            Some("MsiExec.exe /X{1FC1A6C2-576E-489A-9B4A-92D21F542136}")
        );
        let i = row("7-Zip 23.01 (x64)");
        assert_eq!(text(res.get(i, "identifying_number")), None);
        assert_eq!(
            text(res.get(i, "publisher")).as_deref(),
            Some("Igor Pavlov")
        );
        assert_eq!(
            text(res.get(i, "install_location")).as_deref(),
            Some("C:\\Program Files\\7-Zip\\")
        );
        let i = row("Microsoft Teams classic");
        assert_eq!(
            text(res.get(i, "install_location")).as_deref(),
            Some("C:\\Users\\alice\\AppData\\Local\\Microsoft\\Teams")
        );
        assert_eq!(
            text(res.get(6, "package_family_name")).as_deref(),
            Some("Microsoft.ZuneMusic_8wekyb3d8bbwe")
        );
        // The alias view.
        let alias = engine
            .query("SELECT COUNT(*) AS n FROM programs_and_features")
            .unwrap();
        assert_eq!(alias.get(0, "n"), Some(&Value::Integer(7)));
    }

    #[cfg(unix)]
    #[test]
    fn msix_packages_read_their_manifest() {
        // The manifest's Windows path is one file name under root/ on a Unix host.
        let dir = tempfile::tempdir().unwrap();
        let root_folder = "C:\\Program Files\\WindowsApps\\Microsoft.WindowsTerminal_1.18.3181.0_x64__8wekyb3d8bbwe";
        let manifest = format!("{root_folder}\\AppxManifest.xml");
        std::fs::create_dir_all(dir.path().join("root")).unwrap();
        std::fs::write(
            dir.path().join("root").join(&manifest),
            "<Package><Identity Name=\"Microsoft.WindowsTerminal\" Publisher=\"CN=Microsoft Corporation\" \
             Version=\"1.18.3181.0\" /><Properties><DisplayName>Windows Terminal</DisplayName>\
             <PublisherDisplayName>Microsoft Corporation</PublisherDisplayName></Properties></Package>",
        )
        .unwrap();
        let sid = "S-1-5-21-1004336348-1177238915-682003330-1001";
        let packages = format!(
            "HKEY_USERS\\{sid}\\Software\\Classes\\Local Settings\\Software\\Microsoft\\Windows\\CurrentVersion\\AppModel\\Repository\\Packages"
        );
        let full = "Microsoft.WindowsTerminal_1.18.3181.0_x64__8wekyb3d8bbwe";
        let root_hex: String = crate::os::windows::utf16_bytes(root_folder)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let snapshot = serde_json::json!({
            "format": 1, "platform": "windows",
            "stat": { manifest.clone(): {
                "kind": "file", "size": 200, "mode": 420, "uid": 0, "gid": 0, "inode": 1,
                "device": 1, "nlink": 1, "block_size": 4096, "atime": 1_700_000_000,
                "mtime": 1_700_000_000, "ctime": 1_700_000_000, "btime": 1_699_401_600 } },
            "registry": {
                "HKEY_USERS": { "mtime": 0, "subkeys": [sid] },
                packages.clone(): { "mtime": 0, "subkeys": [full] },
                format!("{packages}\\{full}"): { "mtime": 0, "values": [
                    { "name": "PackageRootFolder", "type": "REG_SZ", "data": root_hex } ] }
            }
        });
        std::fs::write(dir.path().join("snapshot.json"), snapshot.to_string()).unwrap();
        let engine = crate::sql::Engine::new(Machine::snapshot(dir.path()).unwrap()).unwrap();
        let res = engine.query("SELECT * FROM programs").unwrap();
        assert_eq!(res.rows.len(), 1);
        assert_eq!(
            text(res.get(0, "name")).as_deref(),
            Some("Windows Terminal")
        );
        assert_eq!(text(res.get(0, "version")).as_deref(), Some("1.18.3181.0"));
        assert_eq!(
            text(res.get(0, "publisher")).as_deref(),
            Some("Microsoft Corporation")
        );
        assert_eq!(
            text(res.get(0, "install_location")).as_deref(),
            Some(root_folder)
        );
        assert_eq!(
            text(res.get(0, "install_date")).as_deref(),
            Some("20231108")
        );
        assert_eq!(
            text(res.get(0, "package_family_name")).as_deref(),
            Some("Microsoft.WindowsTerminal_8wekyb3d8bbwe")
        );
    }
}
