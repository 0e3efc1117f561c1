//! Pictures of a workflow: Mermaid (`flowchart`), Graphviz DOT and SVG
//! (laid out in-process, [`svg()`]), with an execution's path highlighted
//! (the states it entered and the moves it made).

mod svg;
pub use svg::svg;

use std::collections::HashSet;
use std::fmt::Write as _;

use crate::exec::{HistoryEvent, HistoryKind};
use crate::model::*;

/// What an execution did, for highlighting.
#[derive(Debug, Default, Clone)]
pub struct Trace {
    pub states: HashSet<String>,
    pub edges: HashSet<(String, String)>,
    pub failed: Option<String>,
}

impl Trace {
    pub fn from_history(history: &[HistoryEvent]) -> Trace {
        let mut t = Trace::default();
        let mut last: std::collections::HashMap<&str, &str> = Default::default();
        for h in history {
            match &h.kind {
                HistoryKind::StateEntered { state, .. } => {
                    if let Some(prev) = last.get(&*h.thread) {
                        t.edges.insert((prev.to_string(), state.to_string()));
                    }
                    last.insert(&h.thread, state);
                    t.states.insert(state.to_string());
                }
                HistoryKind::ExecutionFailed { .. } => {
                    t.failed = last.get("").map(|s| s.to_string());
                }
                _ => {}
            }
        }
        t
    }
}

fn id(name: &str) -> String {
    let mut s = String::from("s_");
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            s.push(c);
        } else {
            let _ = write!(s, "_{:x}_", c as u32);
        }
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('"', "#quot;")
}

fn dot_esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A Mermaid flowchart.
pub fn mermaid(wf: &Workflow, trace: Option<&Trace>) -> String {
    let mut out = String::from("flowchart TD\n");
    out.push_str("    start_((start))\n");
    let _ = writeln!(out, "    start_ --> {}", id(&wf.machine.start));
    let mut n_edge = 1usize;
    let mut visited_edges = Vec::new();
    if trace.is_some_and(|t| t.states.contains(&*wf.machine.start)) {
        visited_edges.push(0);
    }
    mermaid_machine(
        &wf.machine,
        trace,
        &mut out,
        "    ",
        &mut n_edge,
        &mut visited_edges,
    );
    out.push_str("    classDef visited fill:#d4f7d4,stroke:#2a8a2a,stroke-width:2px\n");
    out.push_str("    classDef failed fill:#f7d4d4,stroke:#a02a2a,stroke-width:2px\n");
    if let Some(t) = trace {
        let mut vs: Vec<_> = t.states.iter().collect();
        vs.sort();
        for s in vs {
            let class = if t.failed.as_ref() == Some(s) {
                "failed"
            } else {
                "visited"
            };
            let _ = writeln!(out, "    class {} {class}", id(s));
        }
        for e in visited_edges {
            let _ = writeln!(out, "    linkStyle {e} stroke:#2a8a2a,stroke-width:3px");
        }
    }
    out
}

fn mermaid_machine(
    m: &StateMachine,
    trace: Option<&Trace>,
    out: &mut String,
    ind: &str,
    n: &mut usize,
    vis: &mut Vec<usize>,
) {
    for s in &m.states {
        let label = format!("{}<br/><small>{}</small>", esc(&s.name), s.type_name());
        match &s.kind {
            StateKind::Choice { .. } => {
                let _ = writeln!(out, "{ind}{}{{\"{label}\"}}", id(&s.name));
            }
            StateKind::Succeed | StateKind::Fail { .. } => {
                let _ = writeln!(out, "{ind}{}([\"{label}\"])", id(&s.name));
            }
            StateKind::Parallel(_) | StateKind::Map(_) => {
                let _ = writeln!(out, "{ind}{}[[\"{label}\"]]", id(&s.name));
            }
            _ => {
                let _ = writeln!(out, "{ind}{}[\"{label}\"]", id(&s.name));
            }
        }
        for (bi, child) in children(s).into_iter().enumerate() {
            let sub = format!("{}_b{bi}", id(&s.name));
            let _ = writeln!(
                out,
                "{ind}subgraph {sub} [\"{} {}\"]",
                esc(&s.name),
                if matches!(s.kind, StateKind::Map(_)) {
                    "iteration".to_string()
                } else {
                    format!("branch {}", bi + 1)
                }
            );
            mermaid_machine(child, trace, out, &format!("{ind}    "), n, vis);
            let _ = writeln!(out, "{ind}end");
            let _ = writeln!(out, "{ind}{} -.-> {}", id(&s.name), id(&child.start));
            *n += 1;
        }
    }
    for s in &m.states {
        for e in s.edges() {
            let arrow = match e.kind {
                EdgeKind::Catch | EdgeKind::Event => "-.->",
                _ => "-->",
            };
            if e.label.is_empty() {
                let _ = writeln!(out, "{ind}{} {arrow} {}", id(&s.name), id(&e.to));
            } else {
                let _ = writeln!(
                    out,
                    "{ind}{} {arrow}|\"{}\"| {}",
                    id(&s.name),
                    esc(&e.label),
                    id(&e.to)
                );
            }
            if trace.is_some_and(|t| t.edges.contains(&(s.name.to_string(), e.to.clone()))) {
                vis.push(*n);
            }
            *n += 1;
        }
        if s.transition == Transition::End
            && !matches!(s.kind, StateKind::Choice { .. })
            && !has_events(s)
        {
            let _ = writeln!(out, "{ind}{} --> end_{}((end))", id(&s.name), id(&s.name));
            *n += 1;
        }
    }
}

fn has_events(s: &State) -> bool {
    matches!(&s.kind, StateKind::Task(t) if !t.events.is_empty())
}

fn children(s: &State) -> Vec<&StateMachine> {
    match &s.kind {
        StateKind::Parallel(p) => p.branches.iter().collect(),
        StateKind::Map(m) => vec![&m.iterator],
        _ => Vec::new(),
    }
}

/// A Graphviz DOT digraph.
pub fn dot(wf: &Workflow, trace: Option<&Trace>) -> String {
    let mut out = String::from(
        "digraph workflow {\n    rankdir=TB;\n    node [fontname=\"Helvetica\", fontsize=11];\n    edge [fontname=\"Helvetica\", fontsize=9];\n",
    );
    let _ = writeln!(
        out,
        "    start_ [shape=circle, label=\"\", style=filled, fillcolor=black, width=0.2];"
    );
    let hl = |on: bool| {
        if on {
            ", color=\"#2a8a2a\", penwidth=2.5"
        } else {
            ""
        }
    };
    let _ = writeln!(
        out,
        "    start_ -> {}[{}];",
        id(&wf.machine.start),
        hl(trace.is_some_and(|t| t.states.contains(&*wf.machine.start))).trim_start_matches(", ")
    );
    let mut cluster = 0usize;
    dot_machine(&wf.machine, trace, &mut out, "    ", &mut cluster);
    out.push_str("}\n");
    out
}

fn dot_machine(
    m: &StateMachine,
    trace: Option<&Trace>,
    out: &mut String,
    ind: &str,
    cluster: &mut usize,
) {
    for s in &m.states {
        let shape = match s.kind {
            StateKind::Choice { .. } => "diamond",
            StateKind::Succeed | StateKind::Fail { .. } => "doubleoctagon",
            StateKind::Parallel(_) | StateKind::Map(_) => "box3d",
            _ => "box",
        };
        let mut style = String::from("style=\"rounded,filled\", fillcolor=\"#ffffff\"");
        if let Some(t) = trace
            && t.states.contains(&*s.name)
        {
            style = if t.failed.as_deref() == Some(&*s.name) {
                "style=\"rounded,filled\", fillcolor=\"#f7d4d4\", color=\"#a02a2a\", penwidth=2"
                    .into()
            } else {
                "style=\"rounded,filled\", fillcolor=\"#d4f7d4\", color=\"#2a8a2a\", penwidth=2"
                    .into()
            };
        }
        let _ = writeln!(
            out,
            "{ind}{} [shape={shape}, {style}, label=\"{}\\n({})\"];",
            id(&s.name),
            dot_esc(&s.name),
            s.type_name()
        );
        for child in children(s) {
            *cluster += 1;
            let _ = writeln!(
                out,
                "{ind}subgraph cluster_{} {{\n{ind}    label=\"{}\"; style=dashed;",
                cluster,
                dot_esc(&s.name)
            );
            dot_machine(child, trace, out, &format!("{ind}    "), cluster);
            let _ = writeln!(out, "{ind}}}");
            let _ = writeln!(
                out,
                "{ind}{} -> {} [style=dotted];",
                id(&s.name),
                id(&child.start)
            );
        }
    }
    for s in &m.states {
        for e in s.edges() {
            let mut attrs = Vec::new();
            if !e.label.is_empty() {
                attrs.push(format!("label=\"{}\"", dot_esc(&e.label)));
            }
            if matches!(e.kind, EdgeKind::Catch | EdgeKind::Event) {
                attrs.push("style=dashed".into());
            }
            if trace.is_some_and(|t| t.edges.contains(&(s.name.to_string(), e.to.clone()))) {
                attrs.push("color=\"#2a8a2a\", penwidth=2.5".into());
            }
            let _ = writeln!(
                out,
                "{ind}{} -> {} [{}];",
                id(&s.name),
                id(&e.to),
                attrs.join(", ")
            );
        }
    }
}
