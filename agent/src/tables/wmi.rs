//! WMI helpers for the Windows tables: reading properties of WMI rows the way
//! osquery's `WmiResultItem` does, calling WMI methods, and CIM datetimes.
//!
//! Rows come from [`crate::os::windows::Wmi::query`] as JSON objects. The
//! real implementation (`os/real_windows.rs`) converts each WMI property to
//! JSON as the `wmi` crate types it: strings and datetimes as strings,
//! integers (including `uint64`) as numbers, booleans, arrays, `null`; and it
//! adds the instance's `__RELPATH`, which method calls need.
//!
//! # Method calls
//!
//! osquery calls WMI methods on the instances it enumerates (BitLocker's
//! `GetConversionStatus`, the TPM's `IsActivated`, ...). So that recordings
//! capture them too, a method call goes through the same `Wmi::query` seam as
//! a query, spelled as a "query" string that no WQL statement can be:
//!
//! ```text
//! CALL <object path> <Method>[ <Param>="<value>" ...]
//! ```
//!
//! The object path is the instance's `__RELPATH`, e.g.
//! `Win32_EncryptableVolume.DeviceID="\\\\?\\Volume{…}\\"`; argument values
//! are quoted like object path keys (`\` and `"` escaped with `\`). The
//! answer is one row: the method's out-parameters (with `ReturnValue`), or
//! none for a method without any. Recordings therefore hold, next to each
//! WQL query, an entry `"CALL … GetConversionStatus": [{"ReturnValue": 0,
//! "ConversionStatus": 1, "EncryptionPercentage": 100, …}]`.

use std::io;

use serde_json::{Map, Value};

use crate::os::windows::Wmi;
pub use crate::os::windows::{MethodCall, quote};

/// One WMI object: property → value.
pub type WmiRow = Map<String, Value>;

/// A property by name. WMI names are case-insensitive (a query for
/// `CAPTION` returns `Caption`).
pub fn prop<'a>(row: &'a WmiRow, name: &str) -> Option<&'a Value> {
    row.get(name).or_else(|| {
        row.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// osquery's `GetString`: a string property (WMI's 64-bit integers travel as
/// strings too, so a number becomes its decimal text). `None` for NULL,
/// missing or another type, where osquery gets "".
pub fn get_string(row: &WmiRow, name: &str) -> Option<String> {
    match prop(row, name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// [`get_string`], or "" as osquery leaves the column.
pub fn string_or_empty(row: &WmiRow, name: &str) -> String {
    get_string(row, name).unwrap_or_default()
}

/// osquery's `GetLong`: a 32-bit integer property (WMI's `VT_I4`, which
/// carries `uint32`/`sint32`/`uint16`), as a signed 32-bit value: a `uint32`
/// above 2^31 wraps negative as it does in osquery.
pub fn get_long(row: &WmiRow, name: &str) -> Option<i64> {
    let n = prop(row, name)?.as_number()?;
    if let Some(i) = n.as_i64() {
        if let Ok(v) = i32::try_from(i) {
            return Some(i64::from(v));
        }
        if let Ok(v) = u32::try_from(i) {
            return Some(i64::from(v as i32));
        }
    }
    None
}

/// An integer property of any width (`uint64` as number or decimal text).
pub fn get_u64(row: &WmiRow, name: &str) -> Option<u64> {
    match prop(row, name)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// osquery's `GetBool`.
pub fn get_bool(row: &WmiRow, name: &str) -> Option<bool> {
    prop(row, name)?.as_bool()
}

/// osquery's `GetVectorOfStrings`.
pub fn get_strings(row: &WmiRow, name: &str) -> Option<Vec<String>> {
    prop(row, name)?
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(String::from))
        .collect()
}

/// The object path of an instance: its `__RELPATH`, else `Class.Key="value"`.
pub fn object_path(row: &WmiRow, class: &str, key: &str) -> Option<String> {
    if let Some(Value::String(p)) = prop(row, "__RELPATH") {
        return Some(p.clone());
    }
    let value = get_string(row, key)?;
    Some(format!("{class}.{key}={}", quote(&value)))
}

/// Runs a method and returns its out-parameters (`None` if it has none).
pub fn call(wmi: &dyn Wmi, namespace: &str, call: &MethodCall) -> io::Result<Option<WmiRow>> {
    Ok(wmi.query(namespace, &call.to_query())?.into_iter().next())
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's days-from-civil).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A CIM datetime (`20240115093012.000000+060`: local time and its offset
/// from UTC in minutes) as Unix seconds, as osquery's
/// `cimDatetimeToUnixtime` gives it (through `SWbemDateTime`, in UTC).
pub fn cim_datetime_to_unix(s: &str) -> Option<i64> {
    let s = s.trim();
    let digits = |a: usize, b: usize| -> Option<i64> {
        let part = s.get(a..b)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let year = digits(0, 4)?;
    let month = u32::try_from(digits(4, 6)?).ok()?;
    let day = u32::try_from(digits(6, 8)?).ok()?;
    let (h, m, sec) = (digits(8, 10)?, digits(10, 12)?, digits(12, 14)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // `.mmmmmm` then the sign and minutes; `***` marks an unknown offset.
    let offset = match (s.get(21..22), s.get(22..25)) {
        (Some(sign @ ("+" | "-")), Some(mins)) if mins.bytes().all(|c| c.is_ascii_digit()) => {
            let mins: i64 = mins.parse().ok()?;
            if sign == "-" { -mins } else { mins }
        }
        _ => 0,
    };
    let local = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec;
    Some(local - offset * 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> WmiRow {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn properties_read_as_osquery_reads_them() {
        let r = row(json!({
            "DriveLetter": "C:", "ProtectionStatus": 1, "Big": 4294967295u64,
            "Size": 511_101_108_224u64, "Nothing": null, "Flag": true,
            "Ids": ["{A}", "{B}"]
        }));
        assert_eq!(get_string(&r, "driveletter").as_deref(), Some("C:"));
        assert_eq!(get_string(&r, "Size").as_deref(), Some("511101108224"));
        assert_eq!(get_string(&r, "Nothing"), None);
        assert_eq!(get_long(&r, "ProtectionStatus"), Some(1));
        assert_eq!(get_long(&r, "Big"), Some(-1));
        assert_eq!(get_long(&r, "DriveLetter"), None);
        assert_eq!(get_long(&r, "Size"), None);
        assert_eq!(get_u64(&r, "Size"), Some(511_101_108_224));
        assert_eq!(get_bool(&r, "Flag"), Some(true));
        assert_eq!(
            get_strings(&r, "Ids"),
            Some(vec!["{A}".to_string(), "{B}".to_string()])
        );
    }

    #[test]
    fn method_calls_round_trip() {
        let path = object_path(
            &row(json!({"DeviceID": "\\\\?\\Volume{1b2c}\\"})),
            "Win32_EncryptableVolume",
            "DeviceID",
        )
        .unwrap();
        assert_eq!(
            path,
            r#"Win32_EncryptableVolume.DeviceID="\\\\?\\Volume{1b2c}\\""#
        );
        let call =
            MethodCall::new(&path, "GetKeyProtectorType").arg("VolumeKeyProtectorID", "{5E2\"x}");
        let q = call.to_query();
        assert_eq!(
            q,
            r#"CALL Win32_EncryptableVolume.DeviceID="\\\\?\\Volume{1b2c}\\" GetKeyProtectorType VolumeKeyProtectorID="{5E2\"x}""#
        );
        assert_eq!(MethodCall::parse(&q), Some(call));
        let bare = MethodCall::new("Win32_Tpm=@", "IsEnabled");
        assert_eq!(MethodCall::parse(&bare.to_query()), Some(bare));
        assert_eq!(MethodCall::parse("SELECT * FROM Win32_Tpm"), None);
        assert_eq!(MethodCall::parse("CALL X.K=\"open GetX"), None);
    }

    #[test]
    fn cim_datetimes() {
        // 2023-10-05 14:35:12 at UTC+2 is 12:35:12 UTC.
        assert_eq!(
            cim_datetime_to_unix("20231005143512.000000+120"),
            Some(1_696_509_312)
        );
        assert_eq!(
            cim_datetime_to_unix("20231005123512.000000+000"),
            Some(1_696_509_312)
        );
        assert_eq!(
            cim_datetime_to_unix("20231005073512.000000-300"),
            Some(1_696_509_312)
        );
        assert_eq!(cim_datetime_to_unix(""), None);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }
}
