//! `tpm_info`: the TPM (osquery's `tpm_info`), from WMI `Win32_Tpm` in
//! `ROOT\CIMV2\Security\MicrosoftTpm`.
//!
//! As osquery: the last instance of `SELECT * FROM Win32_Tpm` (there is one,
//! or none without a TPM: then no row). `manufacturer_id` is
//! `ManufacturerId` (-1 when missing); `manufacturer_name`
//! (`ManufacturerIdTxt`), `manufacturer_version`, `product_name`
//! (`ManufacturerVersionInfo`), `physical_presence_version`
//! (`PhysicalPresenceVersionInfo`) and `spec_version` are the string
//! properties (`""` when missing). `activated`, `enabled` and `owned` call
//! the `IsActivated`, `IsEnabled` and `IsOwned` methods (0 when a call
//! fails), through the WMI seam's `CALL` form (see [`super::wmi`]).
//! Reading `Win32_Tpm` needs administrator rights, as in osquery.

use super::wmi::{self, MethodCall};
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};

pub static TABLE: TableDef = TableDef {
    name: "tpm_info",
    columns: COLUMNS,
    platforms: Platforms::WINDOWS,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::integer("activated"),
    col::integer("enabled"),
    col::integer("owned"),
    col::text("manufacturer_version"),
    col::integer("manufacturer_id"),
    col::text("manufacturer_name"),
    col::text("product_name"),
    col::text("physical_presence_version"),
    col::text("spec_version"),
];

pub const NAMESPACE: &str = "ROOT\\CIMV2\\Security\\MicrosoftTpm";
pub const QUERY: &str = "SELECT * FROM Win32_Tpm";

/// (WMI property, column) of the string columns.
const STRINGS: [(&str, &str); 5] = [
    ("ManufacturerIdTxt", "manufacturer_name"),
    ("ManufacturerVersion", "manufacturer_version"),
    ("ManufacturerVersionInfo", "product_name"),
    ("PhysicalPresenceVersionInfo", "physical_presence_version"),
    ("SpecVersion", "spec_version"),
];

/// (method, its boolean out-parameter's name and the column).
const METHODS: [(&str, &str); 3] = [
    ("IsActivated", "activated"),
    ("IsEnabled", "enabled"),
    ("IsOwned", "owned"),
];

fn generate(ctx: &ScanContext<'_>, _: &Constraints) -> Result<Vec<Row>, TableError> {
    let w = ctx.machine.wmi.as_ref();
    let Ok(items) = w.query(NAMESPACE, QUERY) else {
        return Ok(Vec::new());
    };
    let Some(tpm) = items.last() else {
        return Ok(Vec::new());
    };
    let mut r = RowBuilder::new(COLUMNS);
    r.set(
        "manufacturer_id",
        wmi::get_long(tpm, "ManufacturerId").unwrap_or(-1),
    );
    for (property, column) in STRINGS {
        r.set(column, wmi::string_or_empty(tpm, property));
    }
    // Win32_Tpm has no key: the instance's path is the class's singleton.
    let path = wmi::get_string(tpm, "__RELPATH").unwrap_or_else(|| "Win32_Tpm=@".to_string());
    for (method, column) in METHODS {
        let value = wmi::call(w, NAMESPACE, &MethodCall::new(&path, method))
            .ok()
            .flatten()
            .and_then(|out| wmi::get_bool(&out, method))
            .unwrap_or(false);
        r.set(column, value);
    }
    Ok(vec![r.build()])
}

#[cfg(test)]
mod tests {
    use crate::os::Machine;
    use crate::sql::table::Value;
    use std::path::Path;

    #[test]
    fn reads_a_recorded_tpm() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/tables/tpm_info"
        );
        let engine = crate::sql::Engine::new(Machine::snapshot(Path::new(dir)).unwrap()).unwrap();
        let res = engine.query("SELECT * FROM tpm_info").unwrap();
        assert_eq!(res.rows.len(), 1);
        let get = |c: &str| res.get(0, c).cloned().unwrap();
        assert_eq!(get("activated"), Value::Integer(1));
        assert_eq!(get("enabled"), Value::Integer(1));
        assert_eq!(get("owned"), Value::Integer(1));
        assert_eq!(get("manufacturer_id"), Value::Integer(1_229_870_147));
        assert_eq!(get("manufacturer_name"), Value::Text("INTC".into()));
        assert_eq!(
            get("manufacturer_version"),
            Value::Text("500.16.0.0".into())
        );
        assert_eq!(get("product_name"), Value::Text("Intel".into()));
        assert_eq!(get("physical_presence_version"), Value::Text("1.3".into()));
        assert_eq!(get("spec_version"), Value::Text("2.0, 0, 1.59".into()));
    }
}
