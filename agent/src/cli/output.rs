//! Rendering query results the way osqueryi users expect.

use std::fmt::Write;

use crate::sql::{QueryResult, Value};

/// How `tend query` and `tend shell` print rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Boxed table, as `osqueryi` prints by default.
    Table,
    /// A JSON array of objects with text values, as `osqueryi --json`.
    Json,
    /// Comma-separated values with a header row (RFC 4180 quoting).
    Csv,
    /// One `column = value` line per column, a blank line between rows.
    Line,
}

/// A value as osquery prints it: NULL is empty text.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => f.to_string(),
        Value::Text(s) => s.clone(),
        Value::Blob(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

pub fn render(result: &QueryResult, format: Format) -> String {
    match format {
        Format::Table => table(result),
        Format::Json => json(result),
        Format::Csv => csv(result),
        Format::Line => line(result),
    }
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// A boxed table; an empty result prints nothing, as osqueryi does.
pub fn table(result: &QueryResult) -> String {
    if result.rows.is_empty() {
        return String::new();
    }
    let cells: Vec<Vec<String>> = result
        .rows
        .iter()
        .map(|r| r.iter().map(|v| text(v).replace('\n', "\\n")).collect())
        .collect();
    let mut widths: Vec<usize> = result.columns.iter().map(|c| width(c)).collect();
    for row in &cells {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(width(c));
        }
    }
    let rule: String = widths.iter().fold(String::from("+"), |mut s, w| {
        s.push_str(&"-".repeat(w + 2));
        s.push('+');
        s
    });
    let line = |vals: &[String]| {
        let mut s = String::from("|");
        for (v, w) in vals.iter().zip(&widths) {
            let _ = write!(s, " {v}{} |", " ".repeat(w - width(v)));
        }
        s
    };
    let mut out = String::new();
    let _ = writeln!(out, "{rule}");
    let _ = writeln!(out, "{}", line(&result.columns));
    let _ = writeln!(out, "{rule}");
    for row in &cells {
        let _ = writeln!(out, "{}", line(row));
    }
    let _ = writeln!(out, "{rule}");
    out
}

/// `osqueryi --json`: every value as a string, columns in query order.
pub fn json(result: &QueryResult) -> String {
    let q = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    let mut out = String::from("[\n");
    for (n, row) in result.rows.iter().enumerate() {
        out.push_str("  {");
        for (i, (c, v)) in result.columns.iter().zip(row).enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{}:{}", q(c), q(&text(v)));
        }
        out.push('}');
        if n + 1 < result.rows.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push_str("]\n");
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn csv(result: &QueryResult) -> String {
    let mut out = String::new();
    let header: Vec<String> = result.columns.iter().map(|c| csv_field(c)).collect();
    let _ = writeln!(out, "{}", header.join(","));
    for row in &result.rows {
        let fields: Vec<String> = row.iter().map(|v| csv_field(&text(v))).collect();
        let _ = writeln!(out, "{}", fields.join(","));
    }
    out
}

pub fn line(result: &QueryResult) -> String {
    let w = result.columns.iter().map(|c| width(c)).max().unwrap_or(0);
    let mut out = String::new();
    for (n, row) in result.rows.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        for (c, v) in result.columns.iter().zip(row) {
            let _ = writeln!(out, "{}{c} = {}", " ".repeat(w - width(c)), text(v));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> QueryResult {
        QueryResult {
            columns: vec!["name".into(), "n".into()],
            rows: vec![
                vec![Value::Text("a,b".into()), Value::Integer(1)],
                vec![Value::Text("é".into()), Value::Null],
            ],
        }
    }

    #[test]
    fn formats() {
        let r = sample();
        assert_eq!(
            table(&r),
            "+-----+---+\n| name | n |\n+-----+---+\n".replace("+-----+", "+------+")
                + "| a,b  | 1 |\n| é    |   |\n+------+---+\n"
        );
        assert_eq!(
            json(&r),
            "[\n  {\"name\":\"a,b\",\"n\":\"1\"},\n  {\"name\":\"é\",\"n\":\"\"}\n]\n"
        );
        assert_eq!(csv(&r), "name,n\n\"a,b\",1\né,\n");
        assert_eq!(line(&r), "name = a,b\n   n = 1\n\nname = é\n   n = \n");
    }
}
