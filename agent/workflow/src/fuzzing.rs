//! What the fuzz targets `workflow_read_validate` and `path_eval` run
//! (`fuzz/` at the repository root), kept here so a stable test replays the
//! committed corpora through exactly the same code.

use serde_json::{Value, json};

use crate::intrinsics;
use crate::path::{Path, RefPath, Template};
use crate::{Workflow, graph};

/// Reads a document in either dialect and validates it; a workflow that
/// passes is drawn in every format. Panics on a violated invariant.
pub fn workflow_read_validate(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Workflow::parse(text, None) {
        Ok(wf) => {
            // Everything validation lets through can be drawn, and the
            // start state exists.
            assert!(wf.machine.get(&wf.machine.start).is_some());
            let _ = graph::mermaid(&wf, None);
            let _ = graph::dot(&wf, None);
            let _ = graph::svg(&wf, None);
        }
        Err(invalid) => {
            assert!(!invalid.problems.is_empty());
            let _ = invalid.to_string();
        }
    }
}

/// An input is an expression on the first line and a JSON document after it
/// (a fixed document when the rest is not JSON). The expression is read as a
/// JSONPath, a reference path, an intrinsic call, an ASL `.$` field and a
/// seed-dialect template, and each is evaluated against the document.
pub fn path_eval(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (expr, rest) = text.split_once('\n').unwrap_or((text, ""));
    let doc: Value = serde_json::from_str(rest)
        .unwrap_or_else(|_| json!({"a": {"b": [1, "two", {"c": null}]}, "s": "x,y", "n": 3}));
    let ctx = json!({"Execution": {"Id": "e", "Input": doc}, "State": {"Name": "S"}});

    if let Ok(p) = Path::parse(expr) {
        let _ = p.select(&doc, &ctx);
    }
    if let Ok(rp) = RefPath::parse(expr) {
        let marker = json!({"fuzz-marker": true});
        if let Ok(out) = rp.write(doc.clone(), marker.clone()) {
            // What a reference path wrote, the same text reads back.
            if let Ok(p) = Path::parse(expr)
                && !p.is_context()
            {
                assert_eq!(
                    p.select(&out, &ctx).as_ref(),
                    Some(&marker),
                    "{expr:?} wrote somewhere it does not read"
                );
            }
        }
    }
    if let Ok(f) = intrinsics::parse(expr) {
        let _ = f.eval(&doc, &ctx);
    }
    let mut errors = Vec::new();
    let t = Template::asl(
        &json!({"v.$": expr, "k": [expr]}),
        "$.Parameters",
        &mut errors,
    );
    if errors.is_empty() {
        let _ = t.eval(&doc, &ctx);
    }
    let mut errors = Vec::new();
    let t = Template::seed(&json!({"v": expr}), "parameters", &mut errors);
    if errors.is_empty() {
        let _ = t.eval(&doc, &ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(target: &str, run: fn(&[u8])) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus")
            .join(target);
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let result = std::panic::catch_unwind(|| run(&data));
            assert!(result.is_ok(), "{} fails", path.display());
            n += 1;
        }
        assert!(n >= 4, "only {n} corpus files in {}", dir.display());
    }

    /// Every input the fuzzer kept (seeds and what it found) still runs clean.
    #[test]
    fn workflow_corpus_regression() {
        replay("workflow_read_validate", workflow_read_validate);
    }

    #[test]
    fn path_corpus_regression() {
        replay("path_eval", path_eval);
    }
}
