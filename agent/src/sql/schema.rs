//! osquery's table specification, embedded.
//!
//! `agent/data/osquery-schema.json` is a compact copy of osquery's spec
//! (names, platforms, columns with types and flags; descriptions dropped),
//! made from `shared/osquery/tables.json`. It serves three purposes: every
//! osquery table is declared on every platform, so a policy written for
//! osquery prepares everywhere; `tend schema` can say where osquery has a
//! table; and the conformance test holds each Tend table to it.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use super::table::{Column, ColumnType, Platforms, flags};

static SPEC_JSON: &str = include_str!("../../data/osquery-schema.json");

/// One column of the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecColumn {
    pub name: String,
    pub ty: ColumnType,
    pub flags: u8,
    /// Platforms where the column is visible (extended columns); `ALL` for base columns.
    pub visible_on: Platforms,
}

/// One table of the spec.
#[derive(Clone, Debug)]
pub struct SpecTable {
    pub name: String,
    pub platforms: Platforms,
    pub columns: Vec<SpecColumn>,
    /// For alias names (`configurations`, `hosts`, ...), the table they stand for.
    pub alias_of: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawEntry {
    Alias {
        alias_of: String,
    },
    Table {
        platforms: Vec<String>,
        columns: Vec<RawColumn>,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawColumn {
    Base(String, String, String),
    Extended(String, String, String, Vec<String>),
}

fn parse_flags(s: &str) -> u8 {
    s.chars()
        .map(|c| match c {
            'r' => flags::REQUIRED,
            'i' => flags::INDEX,
            'h' => flags::HIDDEN,
            'a' => flags::ADDITIONAL,
            'o' => flags::OPTIMIZED,
            _ => 0,
        })
        .fold(0, |a, b| a | b)
}

/// The whole spec, parsed once.
pub fn spec() -> &'static BTreeMap<String, SpecTable> {
    static SPEC: OnceLock<BTreeMap<String, SpecTable>> = OnceLock::new();
    SPEC.get_or_init(|| {
        // The embedded file is generated and checked by the conformance test;
        // an unparsable copy is a build defect, so it is reported loudly and
        // leaves an empty catalogue rather than aborting the agent.
        let raw: BTreeMap<String, RawEntry> = match serde_json::from_str(SPEC_JSON) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("embedded osquery schema is unreadable: {e}");
                BTreeMap::new()
            }
        };
        let mut out: BTreeMap<String, SpecTable> = BTreeMap::new();
        let mut aliases = Vec::new();
        for (name, entry) in raw {
            match entry {
                RawEntry::Alias { alias_of } => aliases.push((name, alias_of)),
                RawEntry::Table { platforms, columns } => {
                    let columns = columns
                        .into_iter()
                        .filter_map(|c| {
                            let (n, t, f, vis) = match c {
                                RawColumn::Base(n, t, f) => (n, t, f, Platforms::ALL),
                                RawColumn::Extended(n, t, f, p) => {
                                    let vis = Platforms::from_names(p.iter().map(String::as_str));
                                    (n, t, f, vis)
                                }
                            };
                            Some(SpecColumn {
                                name: n,
                                ty: ColumnType::from_spec(&t)?,
                                flags: parse_flags(&f),
                                visible_on: vis,
                            })
                        })
                        .collect();
                    out.insert(
                        name.clone(),
                        SpecTable {
                            name,
                            platforms: Platforms::from_names(platforms.iter().map(String::as_str)),
                            columns,
                            alias_of: None,
                        },
                    );
                }
            }
        }
        for (alias, target) in aliases {
            if let Some(t) = out.get(&target).cloned() {
                out.insert(
                    alias.clone(),
                    SpecTable {
                        name: alias,
                        alias_of: Some(target),
                        ..t
                    },
                );
            }
        }
        out
    })
}

/// Whether a Tend column declaration equals the spec's.
pub fn same_column(ours: &Column, spec: &SpecColumn) -> bool {
    ours.name == spec.name
        && ours.ty == spec.ty
        && ours.flags == spec.flags
        && ours.visible_on == spec.visible_on
}

impl From<&Column> for SpecColumn {
    fn from(c: &Column) -> SpecColumn {
        SpecColumn {
            name: c.name.to_string(),
            ty: c.ty,
            flags: c.flags,
            visible_on: c.visible_on,
        }
    }
}
