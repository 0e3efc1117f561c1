//! The places a config is read from, each turned into a TOML table.
//!
//! A TOML file is read as it is. A macOS property list (what a configuration
//! profile writes under `/Library/Managed Preferences`) and a Windows
//! registry key (`HKLM\SOFTWARE\Policies\Tend`) use the same names: a
//! dictionary or subkey for a table (`asset`, `slack`), an array or a
//! `REG_MULTI_SZ` for a list (`trusted_keys`), and for a list of tables
//! (`sinks`) an array of dictionaries or one subkey per item, taken in name
//! order. Registry value names are matched without regard to case; keys a
//! profile adds for itself (`Payload...`) are skipped, and so is an empty
//! registry string (an installer property left empty).

use std::io;
use std::path::PathBuf;

use serde::Serialize;

use super::{ConfigError, Kind, WINDOWS_POLICY_KEY, join, kind_of, read_config_file};
use crate::os::windows::{RegType, RegValue, Registry};
use crate::sql::table::Platform;

/// One place a config may be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// A TOML file.
    Toml(PathBuf),
    /// Every `*.toml` file of a directory, in name order.
    TomlDir(PathBuf),
    /// A property list (macOS managed preferences).
    Plist(PathBuf),
    /// A registry key (full path, `HKEY_LOCAL_MACHINE\...`) and its subkeys.
    Registry(String),
}

impl Place {
    pub fn describe(&self) -> String {
        match self {
            Place::Toml(p) => p.display().to_string(),
            Place::TomlDir(p) => p.join("*.toml").display().to_string(),
            Place::Plist(p) => format!("managed preferences {}", p.display()),
            Place::Registry(k) => format!("registry {}", short_hive(k)),
        }
    }
}

/// `HKEY_LOCAL_MACHINE\X` → `HKLM\X`, as admins write it.
fn short_hive(key: &str) -> String {
    match key.strip_prefix(r"HKEY_LOCAL_MACHINE\") {
        Some(rest) => format!(r"HKLM\{rest}"),
        None => key.to_string(),
    }
}

/// The places to read, lowest precedence first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Places {
    pub places: Vec<Place>,
    /// Given on the command line: a missing file is an error, not an absence.
    pub explicit: bool,
}

impl Places {
    /// Where MDM puts the config on `platform` (see the module documentation).
    pub fn managed(platform: Platform) -> Places {
        let places = match platform {
            Platform::Linux => vec![
                Place::Toml(PathBuf::from("/etc/tend/agent.toml")),
                Place::TomlDir(PathBuf::from("/etc/tend/agent.d")),
            ],
            Platform::Macos => vec![
                Place::Toml(PathBuf::from(
                    "/Library/Application Support/Tend/agent.toml",
                )),
                Place::Plist(PathBuf::from(format!(
                    "/Library/Managed Preferences/{}.plist",
                    super::MACOS_DOMAIN
                ))),
            ],
            Platform::Windows => vec![
                Place::Toml(super::program_data().join("Tend").join("agent.toml")),
                Place::Registry(WINDOWS_POLICY_KEY.to_string()),
            ],
        };
        Places {
            places,
            explicit: false,
        }
    }

    /// One file named on the command line (`--config FILE`), instead of the managed places.
    pub fn file(path: impl Into<PathBuf>) -> Places {
        Places {
            places: vec![Place::Toml(path.into())],
            explicit: true,
        }
    }
}

/// Whether a place was there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceStatus {
    pub place: String,
    pub found: bool,
}

/// One place's settings.
pub(super) struct Layer {
    pub origin: String,
    pub table: toml::Table,
}

/// Reads one place: none, one or (for a directory) several layers.
pub(super) fn read(
    place: &Place,
    explicit: bool,
    registry: &dyn Registry,
    statuses: &mut Vec<SourceStatus>,
) -> Result<Vec<Layer>, ConfigError> {
    let mut status = |place: String, found: bool| statuses.push(SourceStatus { place, found });
    match place {
        Place::Toml(path) => {
            let layer = read_toml(path)?;
            if layer.is_none() && explicit {
                return Err(ConfigError::Read {
                    path: path.display().to_string(),
                    source: io::Error::new(io::ErrorKind::NotFound, "no such file"),
                });
            }
            status(place.describe(), layer.is_some());
            Ok(layer.into_iter().collect())
        }
        Place::TomlDir(dir) => {
            let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
                Ok(rd) => rd
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
                    .collect(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
                Err(source) => {
                    return Err(ConfigError::Read {
                        path: dir.display().to_string(),
                        source,
                    });
                }
            };
            files.sort();
            let mut layers = Vec::new();
            for f in &files {
                if let Some(layer) = read_toml(f)? {
                    layers.push(layer);
                }
            }
            if layers.is_empty() {
                status(place.describe(), false);
            }
            for l in &layers {
                status(l.origin.clone(), true);
            }
            Ok(layers)
        }
        Place::Plist(path) => {
            let origin = place.describe();
            let Some(bytes) = read_config_file(path)? else {
                status(origin, false);
                return Ok(Vec::new());
            };
            let value = plist::Value::from_reader(io::Cursor::new(bytes)).map_err(|e| {
                ConfigError::Source {
                    origin: origin.clone(),
                    message: format!("not a valid property list: {e}"),
                }
            })?;
            let Some(toml::Value::Table(table)) = plist_to_toml(value) else {
                return Err(ConfigError::Source {
                    origin,
                    message: "the property list is not a dictionary".into(),
                });
            };
            status(origin.clone(), true);
            Ok(vec![Layer { origin, table }])
        }
        Place::Registry(key) => {
            let origin = place.describe();
            match registry_table(registry, key, "") {
                Ok(table) => {
                    status(origin.clone(), true);
                    Ok(vec![Layer { origin, table }])
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::Unsupported
                    ) =>
                {
                    status(origin, false);
                    Ok(Vec::new())
                }
                Err(e) => Err(ConfigError::Source {
                    origin,
                    message: e.to_string(),
                }),
            }
        }
    }
}

fn read_toml(path: &std::path::Path) -> Result<Option<Layer>, ConfigError> {
    let name = path.display().to_string();
    let Some(bytes) = read_config_file(path)? else {
        return Ok(None);
    };
    let text = String::from_utf8(bytes).map_err(|e| ConfigError::Syntax {
        path: name.clone(),
        line: 0,
        column: 0,
        message: format!("not UTF-8: {e}"),
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        let (line, column) = e
            .span()
            .map(|s| line_column(&text, s.start))
            .unwrap_or((0, 0));
        ConfigError::Syntax {
            path: name.clone(),
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })?;
    Ok(Some(Layer {
        origin: name,
        table,
    }))
}

/// The 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    (line, offset - start + 1)
}

/// A property list value as TOML; `None` for what TOML cannot hold (data, UIDs).
fn plist_to_toml(v: plist::Value) -> Option<toml::Value> {
    use toml::Value as T;
    Some(match v {
        plist::Value::String(s) => T::String(s),
        plist::Value::Boolean(b) => T::Boolean(b),
        plist::Value::Integer(i) => T::Integer(i.as_signed()?),
        plist::Value::Real(f) => T::Float(f),
        plist::Value::Date(d) => T::String(d.to_xml_format()),
        plist::Value::Array(a) => T::Array(a.into_iter().filter_map(plist_to_toml).collect()),
        plist::Value::Dictionary(d) => T::Table(
            d.into_iter()
                .filter(|(k, _)| !k.starts_with("Payload"))
                .filter_map(|(k, v)| Some((k, plist_to_toml(v)?)))
                .collect(),
        ),
        _ => return None,
    })
}

/// A registry key as a table: its values, and a subkey per section; for a
/// list of tables (`sinks`), each subkey of that key is one item.
fn registry_table(registry: &dyn Registry, key: &str, prefix: &str) -> io::Result<toml::Table> {
    let recorded = registry.key(key)?;
    let mut table = toml::Table::new();
    for v in &recorded.values {
        if v.name.is_empty() {
            continue;
        }
        let name = v.name.to_ascii_lowercase();
        match registry_value(v) {
            // An empty string is no setting: it is what an installer
            // property left empty writes (the MSI's POLICY_URL, ...).
            Some(toml::Value::String(s)) if s.is_empty() => {}
            Some(value) => {
                table.insert(name, value);
            }
            None => tracing::warn!(
                "registry {}\\{}: a {} value cannot hold a setting (ignored)",
                short_hive(key),
                v.name,
                v.kind.name()
            ),
        }
    }
    let mut subkeys = recorded.subkeys.clone();
    subkeys.sort_by_key(|s| s.to_ascii_lowercase());
    for sub in subkeys {
        let name = sub.to_ascii_lowercase();
        let path = join(prefix, &name);
        let sub_key = format!("{key}\\{sub}");
        let value = if kind_of(&path) == Some(Kind::Items) {
            let items = registry.key(&sub_key)?;
            let mut names = items.subkeys.clone();
            names.sort_by_key(|s| s.to_ascii_lowercase());
            let mut list = Vec::new();
            for item in names {
                list.push(toml::Value::Table(registry_table(
                    registry,
                    &format!("{sub_key}\\{item}"),
                    &format!("{path}[]"),
                )?));
            }
            toml::Value::Array(list)
        } else {
            toml::Value::Table(registry_table(registry, &sub_key, &path)?)
        };
        table.insert(name, value);
    }
    Ok(table)
}

/// A registry value as TOML: strings as text, `REG_MULTI_SZ` as a list,
/// `REG_DWORD`/`REG_QWORD` as integers. Binary data holds no setting.
fn registry_value(v: &RegValue) -> Option<toml::Value> {
    use toml::Value as T;
    let u32_at = |b: &[u8]| -> Option<[u8; 4]> { b.get(..4)?.try_into().ok() };
    Some(match v.kind {
        RegType::Sz | RegType::ExpandSz | RegType::Link => T::String(utf16(&v.data)),
        RegType::MultiSz => T::Array(
            utf16(&v.data)
                .split('\0')
                .filter(|s| !s.is_empty())
                .map(|s| T::String(s.to_string()))
                .collect(),
        ),
        RegType::Dword => T::Integer(i64::from(u32::from_le_bytes(u32_at(&v.data)?))),
        RegType::DwordBigEndian => T::Integer(i64::from(u32::from_be_bytes(u32_at(&v.data)?))),
        RegType::Qword => T::Integer(i64::from_le_bytes(v.data.get(..8)?.try_into().ok()?)),
        _ => return None,
    })
}

/// UTF-16LE registry text without its terminating NUL.
fn utf16(data: &[u8]) -> String {
    let units: Vec<u16> = data
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let s = String::from_utf16_lossy(&units);
    s.trim_end_matches('\0').to_string()
}
