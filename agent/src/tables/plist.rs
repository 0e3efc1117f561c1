//! `plist`: the keys and values of property list files (osquery's `plist`).
//!
//! XML, binary and OpenStep (ASCII) plists are parsed with the `plist` crate,
//! from bytes read through the machine seam, so the table reads a recorded
//! Mac on any host. The rows are the ones osquery makes, in two steps that
//! are reproduced exactly:
//!
//! 1. osquery turns the plist into a property tree (`parsePlist`): a
//!    dictionary's entries become named children; an array becomes unnamed
//!    children, and an array inside an array gets one extra unnamed level; a
//!    top-level array is named `root` and top-level data `data`. Scalars
//!    become text: strings as they are, numbers and booleans as
//!    `-[NSNumber stringValue]` prints them (so booleans are `1` and `0`,
//!    which is what `SELECT value AS passed ...` checks rely on), reals as
//!    `%.16g`, dates as seconds since 1970, data as base64, UIDs as empty
//!    text.
//! 2. The table (`genOSXPlist`) makes one row per leaf: `key` is the
//!    top-level name; `subkey` joins the names below it with `/`. Unnamed
//!    (array) children get an index, but only below the first level, and the
//!    index counter is osquery's: it is shared by the siblings and handed
//!    down to their children (so a list nested in the second element of a
//!    list counts from 2). An empty array or dictionary is one row with an
//!    empty value.
//!
//! A file that is missing or does not parse has no rows, as in osquery.
//! Nesting deeper than [`MAX_DEPTH`] is cut off (osquery has no limit; the
//! limit keeps a hostile file from exhausting the stack).

use std::io::Cursor;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::util::paths::constrained_paths;

pub static TABLE: TableDef = TableDef {
    name: "plist",
    columns: COLUMNS,
    platforms: Platforms::ALL,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("key"),
    col::text("subkey"),
    col::text("value"),
    col::text("path").required().optimized(),
];

/// The deepest nesting that is turned into rows.
pub const MAX_DEPTH: usize = 256;

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    let mut rows = Vec::new();
    for path in constrained_paths(ctx, constraints, "path", None)? {
        ctx.check_deadline()?;
        let Ok(bytes) = ctx.machine.fs.read(&path) else {
            continue;
        };
        let Some(tree) = parse(&bytes) else { continue };
        rows.extend(rows_of(&path, &tree));
    }
    Ok(rows)
}

/// A node of osquery's property tree: text, and named (or unnamed) children.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Node {
    pub data: String,
    pub children: Vec<(String, Node)>,
}

impl Node {
    fn leaf(data: String) -> Node {
        Node {
            data,
            children: Vec::new(),
        }
    }
}

/// Parses a plist into osquery's property tree; `None` when it is not a plist
/// or its top level is a scalar other than data (osquery's "Unexpected plist type").
pub fn parse(bytes: &[u8]) -> Option<Node> {
    let value = plist::Value::from_reader(Cursor::new(bytes)).ok()?;
    match &value {
        plist::Value::Dictionary(d) => Some(dictionary(d, 0)),
        plist::Value::Array(a) => Some(Node {
            data: String::new(),
            children: vec![("root".into(), array(a, 0))],
        }),
        plist::Value::Data(_) => Some(Node {
            data: String::new(),
            children: vec![("data".into(), Node::leaf(scalar(&value)))],
        }),
        _ => None,
    }
}

/// osquery's `filterDictionary`.
fn dictionary(d: &plist::Dictionary, depth: usize) -> Node {
    let mut node = Node::default();
    if depth >= MAX_DEPTH {
        return node;
    }
    for (k, v) in d {
        let child = match v {
            plist::Value::Array(a) => array(a, depth + 1),
            plist::Value::Dictionary(inner) => dictionary(inner, depth + 1),
            other => Node::leaf(scalar(other)),
        };
        node.children.push((k.clone(), child));
    }
    node
}

/// osquery's `filterArray`: the elements as unnamed children.
fn array(a: &[plist::Value], depth: usize) -> Node {
    let mut node = Node::default();
    if depth >= MAX_DEPTH {
        return node;
    }
    for v in a {
        let child = match v {
            // `filterArray(value, "", child)` pushes the inner list into
            // `child` under an empty name: one more level.
            plist::Value::Array(inner) => Node {
                data: String::new(),
                children: vec![(String::new(), array(inner, depth + 1))],
            },
            plist::Value::Dictionary(d) => dictionary(d, depth + 1),
            other => Node::leaf(scalar(other)),
        };
        node.children.push((String::new(), child));
    }
    node
}

/// osquery's `getValue`: a scalar as text.
pub fn scalar(v: &plist::Value) -> String {
    match v {
        plist::Value::String(s) => s.clone(),
        plist::Value::Boolean(b) => if *b { "1" } else { "0" }.to_string(),
        plist::Value::Integer(i) => i
            .as_signed()
            .map(|n| n.to_string())
            .or_else(|| i.as_unsigned().map(|n| n.to_string()))
            .unwrap_or_default(),
        plist::Value::Real(f) => format_g16(*f),
        plist::Value::Date(d) => {
            let t: SystemTime = (*d).into();
            let secs = match t.duration_since(UNIX_EPOCH) {
                Ok(d) => d.as_secs_f64(),
                Err(e) => -e.duration().as_secs_f64(),
            };
            format_g16(secs)
        }
        plist::Value::Data(bytes) => base64::engine::general_purpose::STANDARD.encode(bytes),
        _ => String::new(),
    }
}

/// `printf("%.16g")`, which is how `-[NSNumber stringValue]` prints a double.
pub fn format_g16(v: f64) -> String {
    format_g(v, 16)
}

/// `printf("%.<digits>g")`: `digits` significant digits, trailing zeros
/// dropped, scientific notation outside the range `%g` prints plainly.
pub fn format_g(v: f64, digits: usize) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let digits = digits.max(1);
    // Rounded to `digits` significant digits, the exponent tells which form %g chooses.
    let sci = format!("{v:.prec$e}", prec = digits - 1);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if exp < -4 || exp >= digits as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        let decimals = (digits as i32 - 1 - exp).max(0) as usize;
        trim(&format!("{v:.decimals$}"))
    }
}

/// The rows of one file: osquery's `genOSXPlist` over the tree.
pub fn rows_of(path: &Path, tree: &Node) -> Vec<Row> {
    let path = path.to_string_lossy();
    let mut rows = Vec::new();
    for (key, node) in &tree.children {
        walk(node, key, String::new(), 0, &path, &mut rows);
    }
    rows
}

/// osquery's `genOSXPlistPrefValue`, `level` counter and all.
fn walk(node: &Node, key: &str, subkey: String, mut level: u32, path: &str, rows: &mut Vec<Row>) {
    if node.children.is_empty() {
        let mut r = RowBuilder::new(COLUMNS);
        r.set("key", key)
            .set("subkey", subkey)
            .set("value", node.data.as_str())
            .set("path", path);
        rows.push(r.build());
        return;
    }
    for (name, child) in &node.children {
        let mut sub = subkey.clone();
        if !sub.is_empty() {
            sub.push('/');
            if name.is_empty() {
                sub.push_str(&level.to_string());
                level += 1;
            }
        }
        sub.push_str(name);
        walk(child, key, sub, level, path, rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::Machine;
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text as t};

    /// (key, subkey, value) of every row.
    fn triples(xml: &str) -> Vec<(String, String, String)> {
        let tree = parse(xml.as_bytes()).expect("a plist");
        rows_of(Path::new("/x.plist"), &tree)
            .into_iter()
            .map(|r| {
                let s = |v: &Value| match v {
                    Value::Text(s) => s.clone(),
                    other => panic!("{other:?}"),
                };
                (s(&r[0]), s(&r[1]), s(&r[2]))
            })
            .collect()
    }

    fn doc(body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">{body}</plist>"#
        )
    }

    fn own(v: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
        v.iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect()
    }

    #[test]
    fn g16_prints_like_nsnumber() {
        assert_eq!(format_g16(1.0), "1");
        assert_eq!(format_g16(0.1), "0.1");
        assert_eq!(format_g16(0.1 + 0.2), "0.3");
        assert_eq!(format_g16(-2.5), "-2.5");
        assert_eq!(format_g16(1e20), "1e+20");
        assert_eq!(format_g16(0.00001), "1e-05");
        assert_eq!(format_g16(1_700_000_000.0), "1700000000");
        assert_eq!(format_g16(1.0 / 3.0), "0.3333333333333333");
    }

    #[test]
    fn scalars_as_osquery_prints_them() {
        let rows = triples(&doc(
            "<dict><key>b</key><true/><key>f</key><false/><key>i</key><integer>-3</integer>\
             <key>r</key><real>2.5</real><key>s</key><string>text</string>\
             <key>d</key><data>AAEC</data><key>t</key><date>2024-01-02T03:04:05Z</date></dict>",
        ));
        assert_eq!(
            rows,
            own(&[
                ("b", "", "1"),
                ("f", "", "0"),
                ("i", "", "-3"),
                ("r", "", "2.5"),
                ("s", "", "text"),
                ("d", "", "AAEC"),
                ("t", "", "1704164645"),
            ])
        );
    }

    #[test]
    fn nesting_follows_osquery() {
        let rows = triples(&doc("<dict>\
               <key>top</key><array><string>a</string><string>b</string></array>\
               <key>d</key><dict>\
                 <key>list</key><array><dict><key>n</key><integer>1</integer></dict>\
                                       <dict><key>n</key><integer>2</integer>\
                                             <key>m</key><array><string>x</string></array></dict></array>\
                 <key>empty</key><array/>\
               </dict>\
             </dict>"));
        assert_eq!(
            rows,
            own(&[
                // First-level list elements get no index.
                ("top", "", "a"),
                ("top", "", "b"),
                ("d", "list/0/n", "1"),
                ("d", "list/1/n", "2"),
                // The counter handed down from the second element: 2, not 0.
                ("d", "list/1/m/2", "x"),
                ("d", "empty", ""),
            ])
        );
    }

    #[test]
    fn top_level_array_is_root() {
        let rows = triples(&doc(
            "<array><string>a</string><array><string>b</string></array></array>",
        ));
        assert_eq!(rows, own(&[("root", "", "a"), ("root", "", "b")]));
    }

    #[test]
    fn scalar_top_level_is_not_a_table() {
        assert!(parse(doc("<string>x</string>").as_bytes()).is_none());
        assert!(parse(b"not a plist at all {").is_none());
    }

    #[test]
    fn reads_binary_and_xml_files_through_the_engine() {
        let engine = Engine::new(fixture("plist")).unwrap();
        // The seed's automatic-updates check, on the XML file.
        let r = engine
            .query(
                "SELECT value AS passed FROM plist \
                 WHERE path = '/Library/Preferences/com.apple.SoftwareUpdate.plist' \
                 AND key = 'AutomaticCheckEnabled'",
            )
            .unwrap();
        assert_eq!(r.rows, vec![vec![t("1")]]);
        // The same preferences as a binary plist.
        let r = engine
            .query(
                "SELECT key, subkey, value FROM plist \
                 WHERE path = '/Library/Preferences/com.apple.alf.plist' ORDER BY key, subkey",
            )
            .unwrap();
        assert_eq!(
            r.rows,
            vec![
                vec![t("applicationsigned"), t(""), t("1")],
                vec![t("globalstate"), t(""), t("1")],
                vec![t("loggingenabled"), t(""), t("0")],
                vec![t("stealthenabled"), t(""), t("1")],
            ]
        );
    }

    #[test]
    fn reads_a_file_on_this_machine() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("com.example.test.plist");
        std::fs::write(&file, doc("<dict><key>Enabled</key><true/></dict>")).unwrap();
        let engine = Engine::new(Machine::real()).unwrap();
        let r = engine
            .query(&format!(
                "SELECT key, value FROM plist WHERE path = '{}'",
                file.display()
            ))
            .unwrap();
        assert_eq!(r.rows, vec![vec![t("Enabled"), t("1")]]);
    }

    #[test]
    fn missing_and_unparsable_files_have_no_rows() {
        let engine = Engine::new(fixture("plist")).unwrap();
        let r = engine
            .query("SELECT * FROM plist WHERE path IN ('/nope.plist', '/Library/Preferences/broken.plist')")
            .unwrap();
        assert!(r.rows.is_empty());
    }
}
