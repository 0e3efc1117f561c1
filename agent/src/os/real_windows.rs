//! This Windows machine's registry and WMI.
//!
//! Thin on purpose: everything that interprets what is read (value
//! rendering, glob expansion, property typing, method-call spelling) lives in
//! the tables and is tested on recordings on every platform.
//!
//! - [`RealRegistry`]: the `windows-registry` crate opens keys (64-bit view,
//!   `KEY_READ`); `RegQueryInfoKeyW`, `RegEnumKeyExW` and `RegEnumValueW`
//!   (`windows-sys`) give the last write time, which `windows-registry` does
//!   not expose, and the subkeys and values with their raw type and bytes,
//!   retrying with larger buffers when a value grew between calls (which
//!   `windows-registry`'s iterators treat as the end).
//! - [`RealWmi`]: the `wmi` crate, one COM connection per namespace and
//!   thread (a `WMIConnection` cannot leave its thread), at packet-privacy
//!   authentication (which the BitLocker and TPM namespaces require). Each
//!   row becomes a JSON object of the object's properties, typed as the `wmi`
//!   crate types them, plus its `__RELPATH`. A "query" in the `CALL` form of
//!   [`MethodCall`](super::windows::MethodCall) runs a method instead.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::mem::ManuallyDrop;

use serde_json::{Map, Value};
use windows_registry::Key;
use windows_sys::Win32::Foundation::FILETIME;
use windows_sys::Win32::System::Registry as sys;
use wmi::{AuthLevel, IWbemClassWrapper, Variant, WMIConnection};

use super::windows::MethodCall;
use super::windows::{RecordedKey, RegType, RegValue, Registry, Wmi};

/// The registry of this machine.
pub struct RealRegistry;

/// A `windows-registry` result with its error as an `io::Error` (Win32 codes
/// keep their kind, so a missing key is `NotFound`).
fn reg<T>(r: windows_registry::Result<T>) -> io::Result<T> {
    r.map_err(|e| hresult_error(e.code().0, &e.message()))
}

fn hresult_error(hr: i32, message: &str) -> io::Error {
    let hr = hr as u32;
    if hr & 0xFFFF_0000 == 0x8007_0000 {
        io::Error::from_raw_os_error((hr & 0xFFFF) as i32)
    } else {
        io::Error::other(format!("{message} (HRESULT 0x{hr:08X})"))
    }
}

/// A predefined key. Wrapped so that dropping it never closes the handle.
fn hive(name: &str) -> Option<ManuallyDrop<Key>> {
    let raw = match name {
        "HKEY_CLASSES_ROOT" => sys::HKEY_CLASSES_ROOT,
        "HKEY_CURRENT_CONFIG" => sys::HKEY_CURRENT_CONFIG,
        "HKEY_CURRENT_USER" => sys::HKEY_CURRENT_USER,
        "HKEY_CURRENT_USER_LOCAL_SETTINGS" => sys::HKEY_CURRENT_USER_LOCAL_SETTINGS,
        "HKEY_LOCAL_MACHINE" => sys::HKEY_LOCAL_MACHINE,
        "HKEY_PERFORMANCE_DATA" => sys::HKEY_PERFORMANCE_DATA,
        "HKEY_PERFORMANCE_NLSTEXT" => sys::HKEY_PERFORMANCE_NLSTEXT,
        "HKEY_PERFORMANCE_TEXT" => sys::HKEY_PERFORMANCE_TEXT,
        "HKEY_USERS" => sys::HKEY_USERS,
        _ => return None,
    };
    // SAFETY: a predefined key is a valid handle for the process's lifetime,
    // and ManuallyDrop keeps `Key`'s destructor from closing it.
    Some(ManuallyDrop::new(unsafe { Key::from_raw(raw as _) }))
}

const ERROR_MORE_DATA: u32 = 234;
const ERROR_NO_MORE_ITEMS: u32 = 259;
/// The largest value read; `HKEY_PERFORMANCE_DATA`'s counters come close.
const MAX_VALUE_BYTES: usize = 64 << 20;

fn win32(rc: u32) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc as i32))
    }
}

/// What `RegQueryInfoKeyW` tells about a key.
struct KeyInfo {
    max_subkey_len: u32,
    max_value_name_len: u32,
    max_value_len: u32,
    /// Last write time, Unix seconds, as osquery computes it.
    mtime: i64,
}

fn key_info(key: &Key) -> io::Result<KeyInfo> {
    let (mut max_subkey_len, mut max_value_name_len, mut max_value_len) = (0u32, 0u32, 0u32);
    let mut ft = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    // SAFETY: `key` is an open key; the out pointers are valid or null, as
    // RegQueryInfoKeyW allows.
    let rc = unsafe {
        sys::RegQueryInfoKeyW(
            key.as_raw() as _,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null_mut(),
            &mut max_subkey_len,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut max_value_name_len,
            &mut max_value_len,
            std::ptr::null_mut(),
            &mut ft,
        )
    };
    win32(rc)?;
    let ticks = (u64::from(ft.dwHighDateTime) << 32 | u64::from(ft.dwLowDateTime)) as i64;
    Ok(KeyInfo {
        max_subkey_len,
        max_value_name_len,
        max_value_len,
        mtime: (ticks - 116_444_736_000_000_000) / 10_000_000,
    })
}

/// The subkey names, in the registry's order. Enumerated here rather than
/// with `windows-registry`'s iterator, which stops (or, in debug builds,
/// asserts) when a name outgrows the size queried first.
fn subkeys(key: &Key, info: &KeyInfo) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut buf = vec![0u16; info.max_subkey_len as usize + 1];
    let mut index = 0u32;
    loop {
        let mut len = buf.len() as u32;
        // SAFETY: `buf` holds `len` UTF-16 units; the other out pointers are null.
        let rc = unsafe {
            sys::RegEnumKeyExW(
                key.as_raw() as _,
                index,
                buf.as_mut_ptr(),
                &mut len,
                std::ptr::null(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        match rc {
            0 => {
                names.push(String::from_utf16_lossy(&buf[..len as usize]));
                index += 1;
            }
            ERROR_MORE_DATA if buf.len() < 32_768 => buf.resize(buf.len() * 2, 0),
            ERROR_NO_MORE_ITEMS => return Ok(names),
            other => return win32(other).map(|()| names),
        }
    }
}

/// The values with their raw type and bytes, growing the buffers when a
/// value changed size since `RegQueryInfoKeyW` (volatile keys, performance data).
fn values(key: &Key, info: &KeyInfo) -> io::Result<Vec<RegValue>> {
    let mut out = Vec::new();
    let mut name = vec![0u16; info.max_value_name_len as usize + 1];
    let mut data = vec![0u8; (info.max_value_len as usize).max(1)];
    let mut index = 0u32;
    loop {
        let mut name_len = name.len() as u32;
        let mut data_len = data.len() as u32;
        let mut kind = 0u32;
        // SAFETY: `name` holds `name_len` UTF-16 units and `data` `data_len` bytes.
        let rc = unsafe {
            sys::RegEnumValueW(
                key.as_raw() as _,
                index,
                name.as_mut_ptr(),
                &mut name_len,
                std::ptr::null(),
                &mut kind,
                data.as_mut_ptr(),
                &mut data_len,
            )
        };
        match rc {
            0 => {
                out.push(RegValue {
                    name: String::from_utf16_lossy(&name[..name_len as usize]),
                    kind: RegType::from_raw(kind),
                    data: data[..data_len as usize].to_vec(),
                });
                index += 1;
            }
            ERROR_MORE_DATA if data.len() < MAX_VALUE_BYTES || name.len() < 32_768 => {
                if name.len() < 32_768 {
                    name.resize(name.len() * 2, 0);
                }
                let wanted = (data_len as usize).max(data.len() * 2);
                data.resize(wanted.min(MAX_VALUE_BYTES), 0);
            }
            ERROR_NO_MORE_ITEMS => return Ok(out),
            other => return win32(other).map(|()| out),
        }
    }
}

impl Registry for RealRegistry {
    fn key(&self, path: &str) -> io::Result<RecordedKey> {
        let (hive_name, sub) = path.split_once('\\').unwrap_or((path, ""));
        let root = hive(hive_name).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{hive_name}: not a registry hive"),
            )
        })?;
        let key = reg(root.open(sub))?;
        let info = key_info(&key)?;
        Ok(RecordedKey {
            mtime: info.mtime,
            subkeys: subkeys(&key, &info)?,
            values: values(&key, &info)?,
        })
    }

    fn is_live(&self) -> bool {
        true
    }
}

/// WMI on this machine. It holds nothing: connections cannot leave their
/// thread, so they are kept per thread ([`CONNECTIONS`]).
#[derive(Default)]
pub struct RealWmi {
    _private: (),
}

thread_local! {
    /// This thread's connection to each namespace.
    static CONNECTIONS: RefCell<HashMap<String, WMIConnection>> = RefCell::new(HashMap::new());
}

fn wmi_error(e: wmi::WMIError) -> io::Error {
    io::Error::other(format!("WMI: {e}"))
}

fn connection(namespace: &str) -> io::Result<WMIConnection> {
    let key = namespace.to_ascii_lowercase();
    CONNECTIONS.with(|c| {
        if let Some(conn) = c.borrow().get(&key) {
            return Ok(conn.clone());
        }
        let conn = WMIConnection::with_namespace_path(namespace).map_err(wmi_error)?;
        conn.set_proxy_blanket(AuthLevel::PktPrivacy)
            .map_err(wmi_error)?;
        c.borrow_mut().insert(key, conn.clone());
        Ok(conn)
    })
}

fn to_json(v: Variant) -> Value {
    match v {
        Variant::Empty | Variant::Null | Variant::Unknown(_) => Value::Null,
        Variant::String(s) => Value::String(s),
        Variant::I1(n) => n.into(),
        Variant::I2(n) => n.into(),
        Variant::I4(n) => n.into(),
        Variant::I8(n) => n.into(),
        Variant::UI1(n) => n.into(),
        Variant::UI2(n) => n.into(),
        Variant::UI4(n) => n.into(),
        Variant::UI8(n) => n.into(),
        Variant::R4(f) => {
            serde_json::Number::from_f64(f64::from(f)).map_or(Value::Null, Value::Number)
        }
        Variant::R8(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        Variant::Bool(b) => Value::Bool(b),
        Variant::Array(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Variant::Object(o) => Value::Object(object(&o, false)),
    }
}

/// An object's properties (and `__RELPATH` for instances) as JSON.
fn object(o: &IWbemClassWrapper, with_path: bool) -> Map<String, Value> {
    let mut row = Map::new();
    for name in o.list_properties().unwrap_or_default() {
        let value = o.get_property(&name).map_or(Value::Null, to_json);
        row.insert(name, value);
    }
    if with_path && let Ok(Variant::String(p)) = o.get_property("__RELPATH") {
        row.insert("__RELPATH".into(), Value::String(p));
    }
    row
}

fn exec(conn: &WMIConnection, call: &MethodCall) -> io::Result<Vec<Map<String, Value>>> {
    let class = call
        .object_path
        .split(['.', '='])
        .next()
        .unwrap_or(&call.object_path);
    let definition = conn.get_object(class).map_err(wmi_error)?;
    let input = match definition.get_method(&call.method).map_err(wmi_error)? {
        Some(signature) => {
            let params = signature.spawn_instance().map_err(wmi_error)?;
            for (name, value) in &call.args {
                params
                    .put_property(name, Variant::String(value.clone()))
                    .map_err(wmi_error)?;
            }
            Some(params)
        }
        None => None,
    };
    let out = conn
        .exec_method(&call.object_path, &call.method, input.as_ref())
        .map_err(wmi_error)?;
    Ok(out.map(|o| object(&o, false)).into_iter().collect())
}

impl Wmi for RealWmi {
    fn query(&self, namespace: &str, wql: &str) -> io::Result<Vec<Map<String, Value>>> {
        let conn = connection(namespace)?;
        if let Some(call) = MethodCall::parse(wql) {
            return exec(&conn, &call);
        }
        let mut rows = Vec::new();
        for item in conn.exec_query(wql).map_err(wmi_error)? {
            rows.push(object(&item.map_err(wmi_error)?, true));
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_key_with_its_write_time() {
        let key = RealRegistry
            .key("HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion")
            .unwrap();
        assert!(key.mtime > 0);
        assert!(!key.subkeys.is_empty());
        assert!(key.values.iter().any(|v| v.name == "CurrentBuildNumber"));
        let missing = RealRegistry.key("HKEY_LOCAL_MACHINE\\SOFTWARE\\Tend\\No\\Such\\Key");
        assert_eq!(missing.unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn queries_and_calls_methods() {
        let wmi = RealWmi::default();
        let processes = wmi
            .query("ROOT\\CIMV2", "SELECT * FROM Win32_Process")
            .unwrap();
        let path = processes
            .iter()
            .find_map(|p| p.get("__RELPATH").and_then(Value::as_str))
            .expect("instances carry their __RELPATH")
            .to_string();
        let out = wmi
            .query(
                "ROOT\\CIMV2",
                &MethodCall::new(&path, "GetOwner").to_query(),
            )
            .unwrap();
        assert!(out[0].contains_key("ReturnValue"), "{out:?}");
    }
}
