//! The one generic virtual-table adapter.
//!
//! Every table, Tend's own and the osquery tables Tend does not implement, is
//! registered as an eponymous-only virtual table through this adapter, so any
//! osquery query *prepares* on every platform. `xBestIndex` hands `=`, `LIKE`
//! and `GLOB` constraints on the table's index, required and additional
//! columns to `generate`; constraints are never omitted, so SQLite re-checks
//! them and a table may return a superset. A missing required constraint is
//! priced out of the planner's choice and, if still missing at scan time, an
//! error naming the columns (osquery's behaviour).

use std::borrow::Cow;
use std::ffi::{CStr, CString, c_int};
use std::sync::Arc;

use rusqlite::Connection;
use rusqlite::vtab::{
    Context, Filters, IndexConstraintOp, IndexInfo, VTab, VTabConnection, VTabCursor, sqlite3_vtab,
    sqlite3_vtab_cursor,
};

use super::Runtime;
use super::schema::SpecColumn;
use super::table::{
    ColumnType, Constraint, Constraints, Op, Platforms, Row, ScanContext, TableDef, TableError,
    coerce, flags,
};
use crate::os::Machine;

/// A column as declared to SQLite on this machine's platform.
pub(crate) struct BoundColumn {
    pub name: String,
    pub ty: ColumnType,
    pub flags: u8,
}

/// Everything a registered table needs: its declaration, its implementation
/// (if Tend has one) and the machine to read.
pub(crate) struct TableBinding {
    pub name: String,
    pub columns: Vec<BoundColumn>,
    pub implementation: Option<&'static TableDef>,
    pub osquery_platforms: Platforms,
    pub machine: Machine,
    pub runtime: Arc<Runtime>,
}

impl TableBinding {
    pub fn new(
        name: &str,
        columns: impl IntoIterator<Item = SpecColumn>,
        implementation: Option<&'static TableDef>,
        osquery_platforms: Platforms,
        machine: Machine,
        runtime: Arc<Runtime>,
    ) -> TableBinding {
        let platform = machine.platform;
        let columns = columns
            .into_iter()
            .map(|c| BoundColumn {
                name: c.name,
                ty: c.ty,
                flags: if c.visible_on.contains(platform) {
                    c.flags
                } else {
                    c.flags | flags::HIDDEN
                },
            })
            .collect();
        TableBinding {
            name: name.to_string(),
            columns,
            implementation,
            osquery_platforms,
            machine,
            runtime,
        }
    }

    fn declaration(&self) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let hidden = if c.flags & flags::HIDDEN != 0 {
                    " HIDDEN"
                } else {
                    ""
                };
                format!("\"{}\" {}{hidden}", c.name.replace('"', "\"\""), c.ty.sql())
            })
            .collect();
        format!("CREATE TABLE x({})", cols.join(", "))
    }

    fn required(&self) -> impl Iterator<Item = &BoundColumn> {
        self.columns
            .iter()
            .filter(|c| c.flags & flags::REQUIRED != 0)
    }

    fn scan(
        &self,
        constraints: &Constraints,
        used: Option<&[bool]>,
    ) -> Result<Vec<Row>, TableError> {
        let platform = self.machine.platform;
        let table = match self.implementation {
            Some(t) if t.platforms.contains(platform) => t,
            other => {
                return Err(TableError::NotSupported {
                    table: self.name.clone(),
                    platform,
                    implemented: other.map_or(Platforms::NONE, |t| t.platforms),
                    osquery: self.osquery_platforms,
                });
            }
        };
        let required: Vec<&str> = self.required().map(|c| c.name.as_str()).collect();
        if !required.is_empty() && !required.iter().any(|r| constraints.has(r)) {
            return Err(TableError::MissingRequired {
                table: self.name.clone(),
                columns: required.join(" or "),
            });
        }
        let ctx = ScanContext {
            machine: &self.machine,
            deadline: self.runtime.deadline(),
            used,
        };
        let rows = (table.generate)(&ctx, constraints)?;
        let types: Vec<ColumnType> = self.columns.iter().map(|c| c.ty).collect();
        Ok(rows
            .into_iter()
            .map(|row| row.iter().zip(&types).map(|(v, t)| coerce(*t, v)).collect())
            .collect())
    }
}

/// Registers one table on a connection.
pub(crate) fn register(conn: &Connection, binding: TableBinding) -> rusqlite::Result<()> {
    const MODULE: rusqlite::vtab::Module<'static, TendTable> =
        rusqlite::vtab::Module::eponymous_only_module();
    let name = binding.name.clone();
    conn.create_module(name.as_str(), &MODULE, Some(Arc::new(binding)))
}

#[repr(C)]
pub(crate) struct TendTable {
    /// Base class; must be first.
    base: sqlite3_vtab,
    binding: Arc<TableBinding>,
}

fn module_error(e: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::ModuleError(e.to_string())
}

unsafe impl<'vtab> VTab<'vtab> for TendTable {
    type Aux = Arc<TableBinding>;
    type Cursor = TendCursor;

    fn connect(
        _db: &mut VTabConnection,
        aux: Option<&Self::Aux>,
        _module_name: &[u8],
        _database_name: &[u8],
        _table_name: &[u8],
        _args: &[&[u8]],
    ) -> rusqlite::Result<(Cow<'static, CStr>, Self)> {
        let binding = aux
            .cloned()
            .ok_or_else(|| module_error("table registered without its binding"))?;
        let declaration = CString::new(binding.declaration()).map_err(module_error)?;
        Ok((
            Cow::Owned(declaration),
            TendTable {
                base: sqlite3_vtab::default(),
                binding,
            },
        ))
    }

    fn best_index(&self, info: &mut IndexInfo) -> rusqlite::Result<bool> {
        let columns = &self.binding.columns;
        let wanted: Vec<(usize, usize, Op)> = info
            .constraints()
            .enumerate()
            .filter(|(_, c)| c.is_usable())
            .filter_map(|(i, c)| {
                let col = usize::try_from(c.column()).ok()?;
                let column = columns.get(col)?;
                let pushed = column.flags
                    & (flags::REQUIRED | flags::INDEX | flags::ADDITIONAL | flags::OPTIMIZED)
                    != 0;
                if !pushed {
                    return None;
                }
                let op = match c.operator() {
                    IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_EQ => Op::Eq,
                    IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_LIKE => Op::Like,
                    IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_GLOB => Op::Glob,
                    _ => return None,
                };
                Some((i, col, op))
            })
            .collect();
        let mut plan = String::new();
        let mut has_required = false;
        let mut has_index = false;
        for (argv, (i, col, op)) in wanted.iter().enumerate() {
            info.constraint_usage(*i).set_argv_index(argv as c_int + 1);
            plan.push_str(&format!("{col}{};", op.code()));
            has_required |= columns[*col].flags & flags::REQUIRED != 0;
            has_index |= *op == Op::Eq;
        }
        let needs_required = columns.iter().any(|c| c.flags & flags::REQUIRED != 0);
        let cost = if needs_required && !has_required {
            // osquery prices a plan without a required constraint out of the
            // running; if no other plan exists the scan reports the error.
            1e18
        } else if has_index {
            10.0
        } else if !wanted.is_empty() {
            1_000.0
        } else {
            1_000_000.0
        };
        // Which columns the statement reads: bit i for column i, bit 63 for
        // "63 or later". Tables may skip filling the others.
        plan.push_str(&format!("u{:x};", info.col_used()));
        info.set_estimated_cost(cost);
        info.set_idx_str(&plan);
        Ok(true)
    }

    fn open(&'vtab mut self) -> rusqlite::Result<TendCursor> {
        Ok(TendCursor {
            base: sqlite3_vtab_cursor::default(),
            binding: self.binding.clone(),
            rows: Vec::new(),
            pos: 0,
        })
    }
}

#[repr(C)]
pub(crate) struct TendCursor {
    /// Base class; must be first.
    base: sqlite3_vtab_cursor,
    binding: Arc<TableBinding>,
    rows: Vec<Row>,
    pos: usize,
}

unsafe impl VTabCursor for TendCursor {
    fn filter(
        &mut self,
        _idx_num: c_int,
        idx_str: Option<&str>,
        args: &Filters<'_>,
    ) -> rusqlite::Result<()> {
        let mut constraints = Constraints::default();
        let mut used = None;
        let mut n = 0;
        for part in idx_str.unwrap_or("").split(';').filter(|p| !p.is_empty()) {
            if let Some(hex) = part.strip_prefix('u') {
                used = u64::from_str_radix(hex, 16).ok();
                continue;
            }
            let (col, op) = part.split_at(part.len() - 1);
            let (Ok(col), Some(op)) = (
                col.parse::<usize>(),
                op.chars().next().and_then(Op::from_code),
            ) else {
                return Err(module_error(format!("bad plan {part:?}")));
            };
            let value: rusqlite::types::Value = args.get(n)?;
            n += 1;
            let column = &self.binding.columns[col];
            constraints.0.push(Constraint {
                column: column.name.clone(),
                op,
                value,
            });
        }
        let used: Option<Vec<bool>> = used.map(|mask| {
            (0..self.binding.columns.len())
                .map(|i| mask & (1u64 << i.min(63)) != 0)
                .collect()
        });
        self.rows = self
            .binding
            .scan(&constraints, used.as_deref())
            .map_err(module_error)?;
        self.pos = 0;
        Ok(())
    }

    fn next(&mut self) -> rusqlite::Result<()> {
        self.pos += 1;
        Ok(())
    }

    fn eof(&self) -> bool {
        self.pos >= self.rows.len()
    }

    fn column(&self, ctx: &mut Context, i: c_int) -> rusqlite::Result<()> {
        let value = self
            .rows
            .get(self.pos)
            .and_then(|r| r.get(i as usize))
            .unwrap_or(&rusqlite::types::Value::Null);
        ctx.set_result(value)
    }

    fn rowid(&self) -> rusqlite::Result<i64> {
        Ok(self.pos as i64)
    }
}
