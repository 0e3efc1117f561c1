//! osquery's tables, one file each.
//!
//! Each file declares a [`TableDef`]: osquery's table name, osquery's
//! columns exactly as the spec has them (checked by
//! `tests/osquery_conformance.rs`), the platforms whose machines it can read,
//! and its `generate` function. To add a table, write its file and list it
//! in [`all`]; the engine registers it and `tend schema` shows it.

pub mod util;

mod file;
mod mounts;
mod time;

use crate::sql::table::TableDef;

/// Every table Tend implements.
pub fn all() -> &'static [&'static TableDef] {
    static ALL: &[&TableDef] = &[&file::TABLE, &mounts::TABLE, &time::TABLE];
    ALL
}
