//! The Windows seams: the registry and WMI.
//!
//! Windows tables read the registry through [`Registry`] and WMI through
//! [`Wmi`]. On Windows the real implementations call the OS (the
//! `windows-registry` and `wmi` crates); everywhere, a recording answers
//! from `snapshot.json` (`registry`, `wmi`), so the Windows tables are tested
//! on Linux and the same recordings replay a user's machine.

use std::io;

use serde::{Deserialize, Serialize};

/// A registry value's type, with the names osquery prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegType {
    #[serde(rename = "REG_NONE")]
    None,
    #[serde(rename = "REG_SZ")]
    Sz,
    #[serde(rename = "REG_EXPAND_SZ")]
    ExpandSz,
    #[serde(rename = "REG_BINARY")]
    Binary,
    #[serde(rename = "REG_DWORD")]
    Dword,
    #[serde(rename = "REG_DWORD_BIG_ENDIAN")]
    DwordBigEndian,
    #[serde(rename = "REG_LINK")]
    Link,
    #[serde(rename = "REG_MULTI_SZ")]
    MultiSz,
    #[serde(rename = "REG_RESOURCE_LIST")]
    ResourceList,
    #[serde(rename = "REG_FULL_RESOURCE_DESCRIPTOR")]
    FullResourceDescriptor,
    #[serde(rename = "REG_RESOURCE_REQUIREMENTS_LIST")]
    ResourceRequirementsList,
    #[serde(rename = "REG_QWORD")]
    Qword,
    /// A number Windows does not define (values written with a made-up
    /// type); osquery prints these as `UNKNOWN`.
    #[serde(rename = "UNKNOWN")]
    Unknown,
}

impl RegType {
    /// The type's name as osquery prints it (`REG_SZ`, ...).
    pub fn name(self) -> &'static str {
        match self {
            RegType::None => "REG_NONE",
            RegType::Sz => "REG_SZ",
            RegType::ExpandSz => "REG_EXPAND_SZ",
            RegType::Binary => "REG_BINARY",
            RegType::Dword => "REG_DWORD",
            RegType::DwordBigEndian => "REG_DWORD_BIG_ENDIAN",
            RegType::Link => "REG_LINK",
            RegType::MultiSz => "REG_MULTI_SZ",
            RegType::ResourceList => "REG_RESOURCE_LIST",
            RegType::FullResourceDescriptor => "REG_FULL_RESOURCE_DESCRIPTOR",
            RegType::ResourceRequirementsList => "REG_RESOURCE_REQUIREMENTS_LIST",
            RegType::Qword => "REG_QWORD",
            RegType::Unknown => "UNKNOWN",
        }
    }

    /// From the Win32 `REG_*` number.
    pub fn from_raw(n: u32) -> RegType {
        match n {
            1 => RegType::Sz,
            2 => RegType::ExpandSz,
            3 => RegType::Binary,
            4 => RegType::Dword,
            5 => RegType::DwordBigEndian,
            6 => RegType::Link,
            7 => RegType::MultiSz,
            8 => RegType::ResourceList,
            9 => RegType::FullResourceDescriptor,
            10 => RegType::ResourceRequirementsList,
            0 => RegType::None,
            11 => RegType::Qword,
            _ => RegType::Unknown,
        }
    }
}

/// One value of a key: its name (empty for the default value), type and raw bytes
/// as the registry stores them (strings UTF-16LE, NUL-terminated).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegValue {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: RegType,
    /// The raw data, hex-encoded in recordings.
    #[serde(with = "hex_bytes")]
    pub data: Vec<u8>,
}

/// A key as a recording stores it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedKey {
    /// Last write time, Unix seconds.
    #[serde(default)]
    pub mtime: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subkeys: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<RegValue>,
}

/// The registry. Keys are full paths starting with the hive's long name
/// (`HKEY_LOCAL_MACHINE\SOFTWARE\...`); a missing key is `NotFound`.
pub trait Registry: Send + Sync {
    /// The key's subkey names, its values and its last write time.
    fn key(&self, path: &str) -> io::Result<RecordedKey>;

    /// Whether keys read here are this host's live registry (so a change
    /// to one can be watched); false for a recording.
    fn is_live(&self) -> bool {
        false
    }
}

/// WMI: a WQL query in a namespace, each row an object of property → value.
pub trait Wmi: Send + Sync {
    fn query(
        &self,
        namespace: &str,
        wql: &str,
    ) -> io::Result<Vec<serde_json::Map<String, serde_json::Value>>>;
}

/// Quotes a value as WMI object paths quote key values: `"..."` with `\\` and
/// `"` escaped by `\\`.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '\\' || c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A WMI method call, spelled as a query string so that it goes through
/// [`Wmi::query`] and recordings capture it like any query:
/// `CALL <object path> <Method>[ <Param>="<value>" ...]`. No WQL statement
/// starts with `CALL`. The answer is one row of out-parameters (see
/// `tables/wmi.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MethodCall {
    pub object_path: String,
    pub method: String,
    pub args: Vec<(String, String)>,
}

impl MethodCall {
    pub fn new(object_path: &str, method: &str) -> MethodCall {
        MethodCall {
            object_path: object_path.to_string(),
            method: method.to_string(),
            args: Vec::new(),
        }
    }

    pub fn arg(mut self, name: &str, value: &str) -> MethodCall {
        self.args.push((name.to_string(), value.to_string()));
        self
    }

    /// The string passed to [`Wmi::query`].
    pub fn to_query(&self) -> String {
        let mut q = format!("CALL {} {}", self.object_path, self.method);
        for (name, value) in &self.args {
            q.push(' ');
            q.push_str(name);
            q.push('=');
            q.push_str(&quote(value));
        }
        q
    }

    /// Parses [`MethodCall::to_query`]'s form; `None` for anything else (WQL).
    /// (Used by the real WMI on Windows.)
    pub fn parse(query: &str) -> Option<MethodCall> {
        let rest = query.strip_prefix("CALL ")?;
        let (object_path, rest) = split_word(rest)?;
        let (method, mut rest) = split_word(rest.trim_start())?;
        if method.is_empty() || object_path.is_empty() {
            return None;
        }
        let mut args = Vec::new();
        loop {
            rest = rest.trim_start();
            if rest.is_empty() {
                break;
            }
            let (name, after) = rest.split_once('=')?;
            let (value, after) = unquote(after)?;
            args.push((name.to_string(), value));
            rest = after;
        }
        Some(MethodCall {
            object_path,
            method,
            args,
        })
    }
}

/// The text up to the first space outside double quotes (kept as written).
fn split_word(s: &str) -> Option<(String, &str)> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            ' ' if !in_quotes => return Some((s[..i].to_string(), &s[i..])),
            _ => {}
        }
    }
    (!in_quotes).then(|| (s.to_string(), ""))
}

/// A `"..."` value with `\` escapes, and what follows it.
fn unquote(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return Some((out, &body[i + 1..]));
        } else {
            out.push(c);
        }
    }
    None
}

/// The registry and WMI where there are none (Linux, macOS).
pub struct NoWindows;

fn unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{what} exists on Windows only"),
    )
}

impl Registry for NoWindows {
    fn key(&self, _path: &str) -> io::Result<RecordedKey> {
        Err(unsupported("the registry"))
    }
}

impl Wmi for NoWindows {
    fn query(
        &self,
        _: &str,
        _: &str,
    ) -> io::Result<Vec<serde_json::Map<String, serde_json::Value>>> {
        Err(unsupported("WMI"))
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        use std::fmt::Write;
        let mut out = String::with_capacity(b.len() * 2);
        for byte in b {
            let _ = write!(out, "{byte:02x}");
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        let s: String = s
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ',')
            .collect();
        if !s.len().is_multiple_of(2) {
            return Err(serde::de::Error::custom(
                "hex data must have an even number of digits",
            ));
        }
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// Encodes text as the registry stores a string: UTF-16LE with a terminating NUL.
pub fn utf16_bytes(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain(std::iter::once(0))
        .flat_map(u16::to_le_bytes)
        .collect()
}
