//! Helpers shared by the tables' tests.

use std::path::PathBuf;

use crate::os::Machine;
use crate::sql::table::Value;

/// The recorded machine at `tests/fixtures/tables/<rel>` (the repository's).
pub(crate) fn fixture(rel: &str) -> Machine {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/tables"
    ))
    .join(rel);
    Machine::snapshot(&dir)
        .unwrap_or_else(|e| panic!("opening the recording {}: {e}", dir.display()))
}

/// A text value, as rows hold it.
pub(crate) fn text(s: &str) -> Value {
    Value::Text(s.into())
}
