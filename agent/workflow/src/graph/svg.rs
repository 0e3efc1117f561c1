//! SVG without Graphviz: the state machine laid out by `layout-rs` (a
//! Sugiyama-style layered layout in pure Rust with no dependencies of its
//! own), so `tend workflow graph --format svg` works on any machine.
//!
//! The graph is built through layout-rs's API rather than by handing it our
//! DOT text: its DOT reader covers a subset of DOT, and building nodes and
//! arrows directly keeps every state name exact (the SVG writer escapes
//! text). States of Parallel branches and Map iterators are drawn as nodes
//! of their own, reached from their Parallel or Map state by a dotted arrow,
//! as in the DOT picture.

use std::collections::HashMap;

use layout::backends::svg::SVGWriter;
use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::geometry::Point;
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, ShapeKind};
use layout::topo::layout::VisualGraph;

use super::{Trace, children};
use crate::model::*;

const PLAIN: u32 = 0x000000ff;
const VISITED_LINE: u32 = 0x2a8a2aff;
const VISITED_FILL: u32 = 0xd4f7d4ff;
const FAILED_LINE: u32 = 0xa02a2aff;
const FAILED_FILL: u32 = 0xf7d4d4ff;
const WHITE: u32 = 0xffffffff;

/// An SVG document of the workflow, with `trace`'s path highlighted (the
/// states it entered filled green, the moves it made drawn green and
/// thicker, the state it failed in red).
pub fn svg(wf: &Workflow, trace: Option<&Trace>) -> String {
    let mut g = VisualGraph::new(Orientation::TopToBottom);
    let start_look = StyleAttr::new(Color::new(PLAIN), 1, Some(Color::new(PLAIN)), 0, 11);
    let start = g.add_node(Element::create(
        ShapeKind::new_circle(""),
        start_look,
        Orientation::TopToBottom,
        Point::new(16., 16.),
    ));
    let first = machine(&mut g, &wf.machine, trace);
    if let Some(&to) = first.get(&*wf.machine.start) {
        let on = trace.is_some_and(|t| t.states.contains(&*wf.machine.start));
        g.add_edge(arrow("", LineStyleKind::Normal, on), start, to);
    }
    let mut out = SVGWriter::new();
    g.do_it(false, false, false, &mut out);
    out.finalize()
}

/// Adds one machine's states and moves; returns its nodes by state name.
fn machine<'m>(
    g: &mut VisualGraph,
    m: &'m StateMachine,
    trace: Option<&Trace>,
) -> HashMap<&'m str, layout::adt::dag::NodeHandle> {
    let mut nodes = HashMap::new();
    for s in &m.states {
        let (line, fill, width) = match trace {
            Some(t) if t.failed.as_deref() == Some(&*s.name) => (FAILED_LINE, FAILED_FILL, 2),
            Some(t) if t.states.contains(&*s.name) => (VISITED_LINE, VISITED_FILL, 2),
            _ => (PLAIN, WHITE, 1),
        };
        let rounded = if matches!(s.kind, StateKind::Choice { .. }) {
            0
        } else {
            10
        };
        let look = StyleAttr::new(Color::new(line), width, Some(Color::new(fill)), rounded, 12);
        let label = format!("{}\n({})", s.name, s.type_name());
        let shape = match s.kind {
            StateKind::Succeed | StateKind::Fail { .. } => ShapeKind::new_double_circle(&label),
            _ => ShapeKind::new_box(&label),
        };
        let size =
            layout::std_shapes::render::get_shape_size(Orientation::TopToBottom, &shape, 12, false);
        let node = g.add_node(Element::create(shape, look, Orientation::TopToBottom, size));
        nodes.insert(&*s.name, node);
    }
    for s in &m.states {
        let from = nodes[&*s.name];
        for child in children(s) {
            let inner = machine(g, child, trace);
            if let Some(&to) = inner.get(&*child.start) {
                g.add_edge(arrow("", LineStyleKind::Dotted, false), from, to);
            }
        }
        for e in s.edges() {
            let Some(&to) = nodes.get(e.to.as_str()) else {
                continue;
            };
            let style = match e.kind {
                EdgeKind::Catch | EdgeKind::Event => LineStyleKind::Dashed,
                _ => LineStyleKind::Normal,
            };
            let on = trace.is_some_and(|t| t.edges.contains(&(s.name.to_string(), e.to.clone())));
            g.add_edge(arrow(&e.label, style, on), from, to);
        }
    }
    nodes
}

fn arrow(label: &str, style: LineStyleKind, on: bool) -> Arrow {
    let look = if on {
        StyleAttr::new(Color::new(VISITED_LINE), 3, None, 0, 10)
    } else {
        StyleAttr::new(Color::new(PLAIN), 1, None, 0, 10)
    };
    Arrow::new(
        LineEndKind::None,
        LineEndKind::Arrow,
        style,
        label,
        &look,
        &None,
        &None,
    )
}

#[cfg(test)]
mod tests {
    use quick_xml::events::Event;

    use super::*;
    use crate::exec::{HistoryEvent, HistoryKind};

    /// The text of every element, and whether the document is well-formed XML.
    fn texts(svg: &str) -> Vec<String> {
        let mut reader = quick_xml::Reader::from_str(svg);
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut depth = 0i32;
        loop {
            let event = reader.read_event();
            if matches!(event, Ok(Event::Start(_) | Event::End(_) | Event::Empty(_))) {
                out.push(std::mem::take(&mut cur));
            }
            match event {
                Ok(Event::Start(_)) => depth += 1,
                Ok(Event::End(_)) => depth -= 1,
                Ok(Event::Text(t)) => cur.push_str(&t.into_inner()),
                Ok(Event::GeneralRef(r)) => cur.push_str(match r.into_inner().as_ref() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    other => panic!("unknown entity &{other};"),
                }),
                Ok(Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("not XML at {}: {e}\n{svg}", reader.buffer_position()),
            }
        }
        assert_eq!(depth, 0, "unbalanced elements");
        out
    }

    fn names(m: &StateMachine, out: &mut Vec<String>) {
        for s in &m.states {
            out.push(s.name.to_string());
            for c in children(s) {
                names(c, out);
            }
        }
    }

    fn check(wf: &Workflow, trace: Option<&Trace>) -> String {
        let svg = svg(wf, trace);
        assert!(svg.contains("<svg"));
        let texts = texts(&svg);
        let mut all = Vec::new();
        names(&wf.machine, &mut all);
        for name in all {
            assert!(
                texts.iter().any(|t| t.trim() == name),
                "state {name:?} is not drawn"
            );
        }
        svg
    }

    #[test]
    fn the_seed_workflow_draws_as_svg() {
        let text = include_str!("../../../../tests/fixtures/seed-workflow.json");
        let wf = Workflow::parse(text, None).unwrap();
        check(&wf, None);
    }

    #[test]
    fn nested_machines_odd_names_and_a_trace() {
        let wf = Workflow::parse(
            r#"{"StartAt": "A <&> \"q\"", "States": {
              "A <&> \"q\"": {"Type": "Pass", "Next": "Fan"},
              "Fan": {"Type": "Parallel", "Next": "Each", "Branches": [
                {"StartAt": "B1", "States": {"B1": {"Type": "Pass", "End": true}}},
                {"StartAt": "B2", "States": {"B2": {"Type": "Succeed"}}}]},
              "Each": {"Type": "Map", "ItemsPath": "$.xs", "Next": "Pick",
                "ItemProcessor": {"StartAt": "Item", "States": {"Item": {"Type": "Pass", "End": true}}}},
              "Pick": {"Type": "Choice", "Default": "Bad", "Choices": [
                {"Variable": "$.ok", "BooleanEquals": true, "Next": "Pick"}]},
              "Bad": {"Type": "Fail", "Error": "E"}}}"#,
            None,
        )
        .unwrap();
        let ev = |thread: &str, state: &str| HistoryEvent {
            seq: 0,
            at_ms: 0,
            thread: thread.into(),
            kind: HistoryKind::StateEntered {
                state: state.into(),
                input: Default::default(),
            },
        };
        let history = vec![
            ev("", "A <&> \"q\""),
            ev("", "Fan"),
            ev("/0", "B1"),
            ev("", "Bad"),
            HistoryEvent {
                seq: 0,
                at_ms: 0,
                thread: "".into(),
                kind: HistoryKind::ExecutionFailed {
                    error: crate::ErrorInfo::new("E", ""),
                },
            },
        ];
        let trace = Trace::from_history(&history);
        let svg = check(&wf, Some(&trace));
        assert!(svg.contains("#d4f7d4ff"), "visited states are filled green");
        assert!(svg.contains("#f7d4d4ff"), "the failed state is filled red");
        check(&wf, None);
    }
}
