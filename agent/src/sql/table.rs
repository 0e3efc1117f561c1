//! The table plugin model.
//!
//! A table is data plus one function, as in osquery: it declares its osquery
//! name and columns (names, types and flags exactly as osquery's spec has them)
//! and a `generate` function that receives the constraints SQLite pushed down
//! and returns rows. SQLite re-checks every constraint on the rows that come
//! back, so a table may return a superset of what matches; pushed-down
//! constraints only let it do less work (read one file instead of walking a
//! tree).
//!
//! Tables never touch the OS directly: they read through the [`Machine`]
//! in their [`ScanContext`], which is either this machine or a recording of
//! another one.

use std::fmt;
use std::time::Instant;

pub use rusqlite::types::Value;

use crate::os::Machine;

/// The three operating systems Tend runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Platform {
    Linux,
    Macos,
    Windows,
}

impl Platform {
    /// The platform this binary was built for.
    pub const fn current() -> Platform {
        if cfg!(target_os = "windows") {
            Platform::Windows
        } else if cfg!(target_os = "macos") {
            Platform::Macos
        } else {
            Platform::Linux
        }
    }

    /// The name osquery's spec uses (`linux`, `macos`, `windows`).
    pub const fn spec_name(self) -> &'static str {
        match self {
            Platform::Linux => "linux",
            Platform::Macos => "macos",
            Platform::Windows => "windows",
        }
    }

    /// The key a policy uses for per-OS queries (`linux`, `darwin`, `windows`).
    pub const fn policy_key(self) -> &'static str {
        match self {
            Platform::Linux => "linux",
            Platform::Macos => "darwin",
            Platform::Windows => "windows",
        }
    }

    /// Parses either spelling (`darwin` and `macos` are the same platform).
    pub fn parse(s: &str) -> Option<Platform> {
        match s {
            "linux" => Some(Platform::Linux),
            "darwin" | "macos" => Some(Platform::Macos),
            "windows" => Some(Platform::Windows),
            _ => None,
        }
    }

    pub const ALL: [Platform; 3] = [Platform::Linux, Platform::Macos, Platform::Windows];

    const fn bit(self) -> u8 {
        match self {
            Platform::Linux => 1,
            Platform::Macos => 2,
            Platform::Windows => 4,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.spec_name())
    }
}

/// A set of platforms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Platforms(u8);

impl Platforms {
    pub const NONE: Platforms = Platforms(0);
    pub const LINUX: Platforms = Platforms(1);
    pub const MACOS: Platforms = Platforms(2);
    pub const WINDOWS: Platforms = Platforms(4);
    pub const POSIX: Platforms = Platforms(3);
    pub const ALL: Platforms = Platforms(7);

    pub const fn union(self, other: Platforms) -> Platforms {
        Platforms(self.0 | other.0)
    }

    pub const fn contains(self, p: Platform) -> bool {
        self.0 & p.bit() != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Platforms {
        names
            .into_iter()
            .filter_map(Platform::parse)
            .fold(Platforms::NONE, |acc, p| acc.union(Platforms(p.bit())))
    }

    pub fn iter(self) -> impl Iterator<Item = Platform> {
        Platform::ALL.into_iter().filter(move |p| self.contains(*p))
    }
}

impl fmt::Display for Platforms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("no platform");
        }
        let names: Vec<&str> = self.iter().map(Platform::spec_name).collect();
        f.write_str(&names.join(", "))
    }
}

/// A column type, as osquery's spec names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Integer,
    BigInt,
    UnsignedBigInt,
    Double,
    Datetime,
    Blob,
}

impl ColumnType {
    /// The type as it is declared to SQLite (what osquery declares).
    pub const fn sql(self) -> &'static str {
        match self {
            ColumnType::Text => "TEXT",
            ColumnType::Integer => "INTEGER",
            ColumnType::BigInt => "BIGINT",
            ColumnType::UnsignedBigInt => "UNSIGNED BIGINT",
            ColumnType::Double => "DOUBLE",
            ColumnType::Datetime => "DATETIME",
            ColumnType::Blob => "BLOB",
        }
    }

    /// The type as osquery's spec writes it.
    pub const fn spec_name(self) -> &'static str {
        match self {
            ColumnType::UnsignedBigInt => "UNSIGNED_BIGINT",
            other => other.sql(),
        }
    }

    pub fn from_spec(s: &str) -> Option<ColumnType> {
        Some(match s {
            "TEXT" => ColumnType::Text,
            "INTEGER" => ColumnType::Integer,
            "BIGINT" => ColumnType::BigInt,
            "UNSIGNED_BIGINT" => ColumnType::UnsignedBigInt,
            "DOUBLE" => ColumnType::Double,
            "DATETIME" => ColumnType::Datetime,
            "BLOB" => ColumnType::Blob,
            _ => return None,
        })
    }

    const fn is_integer(self) -> bool {
        matches!(
            self,
            ColumnType::Integer | ColumnType::BigInt | ColumnType::UnsignedBigInt
        )
    }
}

/// Column flags, with osquery's meaning (see `shared/osquery/README.md`).
pub mod flags {
    /// The table needs a constraint on this column (any one required column will do).
    pub const REQUIRED: u8 = 1;
    /// Constraints on this column are pushed down to `generate`.
    pub const INDEX: u8 = 2;
    /// Not part of `SELECT *`.
    pub const HIDDEN: u8 = 4;
    /// Constraints are pushed down, but the column is not the table's key.
    pub const ADDITIONAL: u8 = 8;
    /// `IN (...)` is handed over at once.
    pub const OPTIMIZED: u8 = 16;
}

/// One column of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
    pub flags: u8,
    /// For osquery's extended-schema columns: the platforms where the column
    /// is visible. Elsewhere it is declared HIDDEN. `ALL` for base columns.
    pub visible_on: Platforms,
}

impl Column {
    pub const fn new(name: &'static str, ty: ColumnType) -> Column {
        Column {
            name,
            ty,
            flags: 0,
            visible_on: Platforms::ALL,
        }
    }
    pub const fn required(mut self) -> Column {
        self.flags |= flags::REQUIRED;
        self
    }
    pub const fn index(mut self) -> Column {
        self.flags |= flags::INDEX;
        self
    }
    pub const fn hidden(mut self) -> Column {
        self.flags |= flags::HIDDEN;
        self
    }
    pub const fn additional(mut self) -> Column {
        self.flags |= flags::ADDITIONAL;
        self
    }
    pub const fn optimized(mut self) -> Column {
        self.flags |= flags::OPTIMIZED;
        self
    }
    /// An extended-schema column, visible only on these platforms.
    pub const fn on(mut self, platforms: Platforms) -> Column {
        self.visible_on = platforms;
        self
    }
    pub const fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
    /// Whether constraints on this column reach `generate`.
    pub const fn pushed_down(&self) -> bool {
        self.flags & (flags::REQUIRED | flags::INDEX | flags::ADDITIONAL | flags::OPTIMIZED) != 0
    }
}

/// Shorthands for column declarations in table files.
pub mod col {
    use super::{Column, ColumnType};
    pub const fn text(n: &'static str) -> Column {
        Column::new(n, ColumnType::Text)
    }
    pub const fn integer(n: &'static str) -> Column {
        Column::new(n, ColumnType::Integer)
    }
    pub const fn bigint(n: &'static str) -> Column {
        Column::new(n, ColumnType::BigInt)
    }
    pub const fn ubigint(n: &'static str) -> Column {
        Column::new(n, ColumnType::UnsignedBigInt)
    }
    pub const fn double(n: &'static str) -> Column {
        Column::new(n, ColumnType::Double)
    }
    pub const fn datetime(n: &'static str) -> Column {
        Column::new(n, ColumnType::Datetime)
    }
    pub const fn blob(n: &'static str) -> Column {
        Column::new(n, ColumnType::Blob)
    }
}

/// The comparison of a pushed-down constraint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Like,
    Glob,
}

impl Op {
    pub(crate) fn code(self) -> char {
        match self {
            Op::Eq => '=',
            Op::Like => 'L',
            Op::Glob => 'G',
        }
    }
    pub(crate) fn from_code(c: char) -> Option<Op> {
        match c {
            '=' => Some(Op::Eq),
            'L' => Some(Op::Like),
            'G' => Some(Op::Glob),
            _ => None,
        }
    }
}

/// One pushed-down constraint: `column op value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Constraint {
    pub column: String,
    pub op: Op,
    pub value: Value,
}

/// The constraints SQLite pushed down for one scan.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Constraints(pub Vec<Constraint>);

impl Constraints {
    /// The text of every `column = value` constraint.
    pub fn eq(&self, column: &str) -> Vec<String> {
        self.with(column, Op::Eq)
    }

    /// The text of every constraint on `column` with operator `op`.
    pub fn with(&self, column: &str, op: Op) -> Vec<String> {
        self.0
            .iter()
            .filter(|c| c.column == column && c.op == op)
            .filter_map(|c| value_text(&c.value))
            .collect()
    }

    /// The text of every `=` constraint and the pattern of every `LIKE` on `column`.
    pub fn eq_or_like(&self, column: &str) -> (Vec<String>, Vec<String>) {
        (self.eq(column), self.with(column, Op::Like))
    }

    /// Whether any constraint names `column`.
    pub fn has(&self, column: &str) -> bool {
        self.0.iter().any(|c| c.column == column)
    }

    /// The first `=` integer on `column`.
    pub fn eq_int(&self, column: &str) -> Vec<i64> {
        self.eq(column)
            .iter()
            .filter_map(|s| parse_osquery_int(s))
            .collect()
    }
}

/// A value as text, as a constraint's right-hand side would compare.
pub fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Integer(i) => Some(i.to_string()),
        Value::Real(f) => Some(f.to_string()),
        Value::Text(s) => Some(s.clone()),
        Value::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
    }
}

/// Values a table can put in a row.
pub trait IntoValue {
    fn into_value(self) -> Value;
}

impl IntoValue for Value {
    fn into_value(self) -> Value {
        self
    }
}
impl IntoValue for &str {
    fn into_value(self) -> Value {
        Value::Text(self.to_string())
    }
}
impl IntoValue for String {
    fn into_value(self) -> Value {
        Value::Text(self)
    }
}
impl IntoValue for &String {
    fn into_value(self) -> Value {
        Value::Text(self.clone())
    }
}
impl IntoValue for bool {
    fn into_value(self) -> Value {
        Value::Integer(i64::from(self))
    }
}
impl IntoValue for f64 {
    fn into_value(self) -> Value {
        Value::Real(self)
    }
}
macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl IntoValue for $t {
            fn into_value(self) -> Value {
                Value::Integer(self as i64)
            }
        }
    )*};
}
int_value!(i8, i16, i32, i64, u8, u16, u32, u64, usize, isize);
impl<T: IntoValue> IntoValue for Option<T> {
    fn into_value(self) -> Value {
        self.map_or(Value::Null, IntoValue::into_value)
    }
}

/// A row, its values in the table's column order.
pub type Row = Vec<Value>;

/// Builds one row by column name, so table code reads like osquery's
/// `r["name"] = ...` and cannot put a value in the wrong place.
pub struct RowBuilder {
    columns: &'static [Column],
    values: Row,
}

impl RowBuilder {
    pub fn new(columns: &'static [Column]) -> RowBuilder {
        RowBuilder {
            columns,
            values: vec![Value::Null; columns.len()],
        }
    }

    /// Sets a column. Naming a column the table does not declare is a bug in
    /// the table; debug builds panic, release builds drop the value.
    pub fn set(&mut self, column: &str, value: impl IntoValue) -> &mut RowBuilder {
        match self.columns.iter().position(|c| c.name == column) {
            Some(i) => self.values[i] = value.into_value(),
            None => debug_assert!(false, "no column {column}"),
        }
        self
    }

    /// Sets a column from an `Option`, leaving it NULL for `None`.
    pub fn set_opt<V: IntoValue>(&mut self, column: &str, value: Option<V>) -> &mut RowBuilder {
        if let Some(v) = value {
            self.set(column, v);
        }
        self
    }

    pub fn build(self) -> Row {
        self.values
    }

    /// Builds the row and starts a new one with the same columns.
    pub fn take(&mut self) -> Row {
        std::mem::replace(&mut self.values, vec![Value::Null; self.columns.len()])
    }
}

/// Errors a table returns from a scan. Each names the table and what went wrong.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{}", not_supported_message(.table, *.platform, *.implemented, *.osquery))]
    NotSupported {
        table: String,
        platform: Platform,
        implemented: Platforms,
        osquery: Platforms,
    },
    #[error(
        "table {table} was queried without a required column in the WHERE clause: constrain {columns}"
    )]
    MissingRequired { table: String, columns: String },
    #[error("table {table}: {what}: {source}")]
    Io {
        table: &'static str,
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("table {table}: {message}")]
    Other {
        table: &'static str,
        message: String,
    },
    #[error("query stopped: it ran past its time limit")]
    TimeLimit,
}

fn not_supported_message(
    table: &str,
    platform: Platform,
    implemented: Platforms,
    osquery: Platforms,
) -> String {
    let osquery = if osquery.is_empty() {
        String::new()
    } else {
        format!(" (osquery has it on {osquery})")
    };
    if implemented.is_empty() {
        format!("table {table} is not implemented by Tend{osquery}")
    } else {
        format!(
            "table {table} is not available on {platform}: Tend implements it on {implemented}{osquery}"
        )
    }
}

impl TableError {
    pub fn io(table: &'static str, what: impl Into<String>, source: std::io::Error) -> TableError {
        TableError::Io {
            table,
            what: what.into(),
            source,
        }
    }
    pub fn other(table: &'static str, message: impl Into<String>) -> TableError {
        TableError::Other {
            table,
            message: message.into(),
        }
    }
}

/// What a table's `generate` receives besides the constraints.
pub struct ScanContext<'a> {
    /// The machine to read: this one, or a recording.
    pub machine: &'a Machine,
    /// When the query must stop. Tables that can take long (hashing, walking
    /// trees) call [`ScanContext::check_deadline`] as they go.
    pub deadline: Option<Instant>,
    /// The columns the query reads (SQLite's `colUsed`), when known. A table
    /// may leave the others NULL and skip the work of filling them.
    pub used: Option<&'a [bool]>,
}

impl ScanContext<'_> {
    pub fn platform(&self) -> Platform {
        self.machine.platform
    }

    /// Whether the query reads `column` of `columns` (always true when unknown).
    pub fn wants(&self, columns: &[Column], column: &str) -> bool {
        match (self.used, columns.iter().position(|c| c.name == column)) {
            (Some(used), Some(i)) => used.get(i).copied().unwrap_or(true),
            _ => true,
        }
    }

    pub fn check_deadline(&self) -> Result<(), TableError> {
        match self.deadline {
            Some(d) if Instant::now() > d => Err(TableError::TimeLimit),
            _ => Ok(()),
        }
    }
}

/// The generate function of a table.
pub type Generate = fn(&ScanContext<'_>, &Constraints) -> Result<Vec<Row>, TableError>;

/// A table Tend implements.
pub struct TableDef {
    /// osquery's table name.
    pub name: &'static str,
    /// osquery's columns, in osquery's order, base columns then extended ones.
    pub columns: &'static [Column],
    /// The platforms whose machines this table can read. A Linux-only table
    /// that reads files through the machine seam works on any host given a
    /// recording of a Linux machine.
    pub platforms: Platforms,
    pub generate: Generate,
}

impl TableDef {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Parses an integer the way osquery does for INTEGER/BIGINT columns: a
/// leading number with base auto-detection (`0x10` is 16, `010` is 8),
/// trailing characters ignored; anything else is no value.
pub fn parse_osquery_int(s: &str) -> Option<i64> {
    let t = s.trim_start();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = if let Some(rest) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X"))
    {
        (16, rest)
    } else if t.len() > 1 && t.starts_with('0') {
        (8, &t[1..])
    } else {
        (10, t)
    };
    let end = digits
        .char_indices()
        .find(|(_, c)| !c.is_digit(radix))
        .map_or(digits.len(), |(i, _)| i);
    if end == 0 {
        return if radix == 8 { Some(0) } else { None };
    }
    // Parse as u64 so that UNSIGNED_BIGINT values wrap to i64 as osquery stores them.
    let n = u64::from_str_radix(&digits[..end], radix).ok()? as i64;
    Some(if neg { n.wrapping_neg() } else { n })
}

/// Coerces a value to a column's type with osquery's rules: text in a numeric
/// column is parsed, and what does not parse becomes NULL.
pub fn coerce(ty: ColumnType, v: &Value) -> Value {
    match (ty, v) {
        (t, Value::Text(s)) if t.is_integer() => {
            parse_osquery_int(s).map_or(Value::Null, Value::Integer)
        }
        (ColumnType::Double, Value::Text(s)) => {
            s.trim().parse::<f64>().map_or(Value::Null, Value::Real)
        }
        (ColumnType::Double, Value::Integer(i)) => Value::Real(*i as f64),
        (t, Value::Real(f)) if t.is_integer() => Value::Integer(*f as i64),
        (ColumnType::Text | ColumnType::Datetime, Value::Integer(i)) => Value::Text(i.to_string()),
        (ColumnType::Text | ColumnType::Datetime, Value::Real(f)) => Value::Text(f.to_string()),
        _ => v.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osquery_integer_parsing() {
        assert_eq!(parse_osquery_int("42"), Some(42));
        assert_eq!(parse_osquery_int("0x10"), Some(16));
        assert_eq!(parse_osquery_int("010"), Some(8));
        assert_eq!(parse_osquery_int("12abc"), Some(12));
        assert_eq!(parse_osquery_int("-5"), Some(-5));
        assert_eq!(parse_osquery_int("0"), Some(0));
        assert_eq!(parse_osquery_int(""), None);
        assert_eq!(parse_osquery_int("abc"), None);
        assert_eq!(parse_osquery_int("18446744073709551615"), Some(-1));
    }

    #[test]
    fn coercion_follows_osquery() {
        assert_eq!(
            coerce(ColumnType::Integer, &Value::Text("7".into())),
            Value::Integer(7)
        );
        assert_eq!(
            coerce(ColumnType::BigInt, &Value::Text("".into())),
            Value::Null
        );
        assert_eq!(
            coerce(ColumnType::Double, &Value::Text("1.5".into())),
            Value::Real(1.5)
        );
        assert_eq!(
            coerce(ColumnType::Double, &Value::Text("1.5x".into())),
            Value::Null
        );
        assert_eq!(
            coerce(ColumnType::Text, &Value::Integer(3)),
            Value::Text("3".into())
        );
    }
}
