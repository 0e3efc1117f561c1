//! The two readers: the seed dialect and Amazon States Language, into one
//! model. Structural problems (wrong types, unknown fields, bad paths) are
//! collected with their paths; the graph checks are in `validate`.
//!
//! The seed dialect spells ASL's fields in lower camel case (`next`, `end`,
//! `resource`, `parameters`, `retry`, `catch`, `timeoutSeconds`, `choices`,
//! `default`, `branches`, `seconds`, `errorEquals`, ...), names a state's type
//! in capitals (`PASS`, `TASK`, `CHOICE`, `WAIT`, `PARALLEL`, `MAP`, `FAIL`,
//! `SUCCESS`), writes `description` for `Comment`, `entry` for `StartAt`, and
//! differs in data flow: a `parameters` string that is a path is filled in
//! (no `.$` keys), `{{$.path}}` inside a string is a template, a task's
//! result is dropped unless `mapping.result` names where it goes, and a
//! PARALLEL merges its branches' output objects into its input.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::{Invalid, Problem};
use crate::model::*;
use crate::path::{Path, RefPath, Template};

/// Reads a workflow in either dialect (ASL when the document has
/// `StartAt`), without the graph checks. Use [`crate::Workflow::parse`] to
/// read and validate.
pub fn read(doc: &Value) -> Result<Workflow, Invalid> {
    let Some(obj) = doc.as_object() else {
        return Err(Invalid {
            problems: vec![Problem {
                path: String::new(),
                message: "a workflow is a JSON object".into(),
            }],
        });
    };
    let dialect = if obj.contains_key("StartAt") || obj.contains_key("States") {
        Dialect::Asl
    } else {
        Dialect::Seed
    };
    let mut r = Reader {
        d: dialect,
        problems: Vec::new(),
    };
    let top_fields: &[&str] = match dialect {
        Dialect::Seed => &[
            "name",
            "description",
            "trigger",
            "entry",
            "states",
            "version",
            "id",
            "enabled",
        ],
        Dialect::Asl => &[
            "StartAt",
            "States",
            "Comment",
            "Version",
            "TimeoutSeconds",
            "QueryLanguage",
        ],
    };
    r.unknown(obj, top_fields, "");
    let machine = r.machine(obj, "");
    let (name, description) = match dialect {
        Dialect::Seed => (
            r.opt_str(obj, "name", "").unwrap_or_default(),
            r.opt_str(obj, "description", ""),
        ),
        Dialect::Asl => (String::new(), r.opt_str(obj, "Comment", "")),
    };
    if dialect == Dialect::Asl
        && let Some(q) = obj.get("QueryLanguage")
        && q != "JSONPath"
    {
        r.problem("QueryLanguage", "only JSONPath is supported");
    }
    let timeout = match dialect {
        Dialect::Asl => r
            .opt_u64(obj, "TimeoutSeconds", "")
            .map(Duration::from_secs),
        Dialect::Seed => None,
    };
    let uses_context = doc.to_string().contains("$$");
    let wf = Workflow {
        name,
        description,
        trigger: obj.get("trigger").cloned(),
        dialect,
        machine,
        timeout,
        uses_context,
    };
    if r.problems.is_empty() {
        Ok(wf)
    } else {
        Err(Invalid {
            problems: r.problems,
        })
    }
}

struct Reader {
    d: Dialect,
    problems: Vec<Problem>,
}

/// The dialect's name for an ASL field: `IntervalSeconds` → `intervalSeconds`.
pub(crate) fn field(d: Dialect, asl: &str) -> String {
    match d {
        Dialect::Asl => asl.to_string(),
        Dialect::Seed => match asl {
            "StartAt" => "entry".into(),
            "Comment" => "description".into(),
            _ => {
                let mut c = asl.chars();
                let first = c.next().map(|c| c.to_ascii_lowercase()).unwrap_or_default();
                std::iter::once(first).chain(c).collect()
            }
        },
    }
}

pub(crate) fn join(base: &str, field: &str) -> String {
    if base.is_empty() {
        field.to_string()
    } else {
        format!("{base}.{field}")
    }
}

impl Reader {
    fn problem(&mut self, path: impl Into<String>, msg: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: msg.into(),
        });
    }

    fn f(&self, asl: &'static str) -> String {
        field(self.d, asl)
    }

    fn get<'v>(&self, obj: &'v Map<String, Value>, asl: &'static str) -> Option<&'v Value> {
        obj.get(&self.f(asl))
    }

    fn unknown(&mut self, obj: &Map<String, Value>, known: &[&str], base: &str) {
        for k in obj.keys() {
            if !known.contains(&k.as_str()) {
                self.problem(join(base, k), "unknown field");
            }
        }
    }

    fn opt_str(&mut self, obj: &Map<String, Value>, key: &str, base: &str) -> Option<String> {
        match obj.get(key) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.problem(join(base, key), "must be a string");
                None
            }
        }
    }

    fn opt_u64(&mut self, obj: &Map<String, Value>, key: &str, base: &str) -> Option<u64> {
        match obj.get(key) {
            None => None,
            Some(v) => match v.as_u64() {
                Some(n) => Some(n),
                None => {
                    self.problem(join(base, key), "must be a non-negative integer");
                    None
                }
            },
        }
    }

    fn path_field(
        &mut self,
        obj: &Map<String, Value>,
        asl: &'static str,
        base: &str,
    ) -> Option<Path> {
        let key = self.f(asl);
        let s = self.opt_str(obj, &key, base)?;
        match Path::parse(&s) {
            Ok(p) => Some(p),
            Err(e) => {
                self.problem(join(base, &key), e);
                None
            }
        }
    }

    /// ASL's InputPath/OutputPath: absent is `$`, null is "nothing" (`{}`).
    fn io_path(&mut self, obj: &Map<String, Value>, asl: &'static str, base: &str) -> Option<Path> {
        match self.get(obj, asl) {
            None => Some(Path::root()),
            Some(Value::Null) => None,
            Some(_) => self
                .path_field(obj, asl, base)
                .or_else(|| Some(Path::root())),
        }
    }

    fn ref_path(
        &mut self,
        v: Option<&Value>,
        default: Option<RefPath>,
        at: &str,
    ) -> Option<RefPath> {
        match v {
            None => default,
            Some(Value::Null) => None,
            Some(Value::String(s)) => match RefPath::parse(s) {
                Ok(p) => Some(p),
                Err(e) => {
                    self.problem(at, e);
                    default
                }
            },
            Some(_) => {
                self.problem(at, "must be a path or null");
                default
            }
        }
    }

    fn template(&mut self, v: &Value, at: &str) -> Template {
        let mut errs = Vec::new();
        let t = match self.d {
            Dialect::Asl => Template::asl(v, at, &mut errs),
            Dialect::Seed => Template::seed(v, at, &mut errs),
        };
        for (p, m) in errs {
            self.problem(p, m);
        }
        t
    }

    fn machine(&mut self, obj: &Map<String, Value>, base: &str) -> StateMachine {
        let start_key = self.f("StartAt");
        let states_key = self.f("States");
        let start = match obj.get(&start_key) {
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                self.problem(join(base, &start_key), "must be a state name");
                String::new()
            }
            None => {
                self.problem(join(base, &start_key), "missing: name the first state");
                String::new()
            }
        };
        let states_base = join(base, &states_key);
        let mut states = Vec::new();
        match obj.get(&states_key) {
            Some(Value::Object(m)) => {
                if m.is_empty() {
                    self.problem(&states_base, "a state machine needs at least one state");
                }
                for (name, v) in m {
                    let at = join(&states_base, name);
                    if name.is_empty() || name.chars().count() > 80 {
                        self.problem(&at, "a state name must be 1 to 80 characters");
                    }
                    match v.as_object() {
                        Some(s) => states.push(self.state(name, s, &at)),
                        None => self.problem(&at, "a state is a JSON object"),
                    }
                }
            }
            Some(_) => self.problem(&states_base, "must be an object of states by name"),
            None => self.problem(&states_base, "missing"),
        }
        StateMachine::new(start.into(), states, base.to_string())
    }

    fn state(&mut self, name: &str, s: &Map<String, Value>, at: &str) -> State {
        let type_key = self.f("Type");
        let ty = self.opt_str(s, &type_key, at).unwrap_or_default();
        let ty = match (self.d, ty.as_str()) {
            (Dialect::Asl, t) => t.to_string(),
            (Dialect::Seed, "SUCCESS" | "SUCCEED") => "Succeed".into(),
            (Dialect::Seed, t) => {
                let lower = t.to_ascii_lowercase();
                let mut c = lower.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            }
        };
        let common: &[&str] = &["Type", "Comment"];
        let flow: &[&str] = &["Next", "End"];
        let io_in: &[&str] = &["InputPath", "OutputPath"];
        let io_param: &[&str] = &["Parameters", "ResultPath"];
        let (extra, kind): (Vec<&str>, StateKind) = match ty.as_str() {
            "Pass" => (
                [common, flow, io_in, io_param, &["Result", "Mapping"]].concat(),
                StateKind::Pass {
                    result: self.get(s, "Result").cloned(),
                },
            ),
            "Task" => (
                [
                    common,
                    flow,
                    io_in,
                    io_param,
                    &[
                        "Resource",
                        "ResultSelector",
                        "Retry",
                        "Catch",
                        "TimeoutSeconds",
                        "TimeoutSecondsPath",
                        "HeartbeatSeconds",
                        "HeartbeatSecondsPath",
                        "Credentials",
                        "Mapping",
                        "Events",
                        "EventsTimeoutSeconds",
                        "EventsDefault",
                    ],
                ]
                .concat(),
                self.task(s, at),
            ),
            "Choice" => (
                [common, io_in, &["Choices", "Default"]].concat(),
                self.choice(s, at),
            ),
            "Wait" => (
                [
                    common,
                    flow,
                    io_in,
                    &["Seconds", "SecondsPath", "Timestamp", "TimestampPath"],
                ]
                .concat(),
                self.wait(s, at),
            ),
            "Parallel" => (
                [
                    common,
                    flow,
                    io_in,
                    io_param,
                    &["Branches", "ResultSelector", "Retry", "Catch", "Mapping"],
                ]
                .concat(),
                self.parallel(s, at),
            ),
            "Map" => (
                [
                    common,
                    flow,
                    io_in,
                    io_param,
                    &[
                        "Iterator",
                        "ItemProcessor",
                        "ItemsPath",
                        "ItemSelector",
                        "MaxConcurrency",
                        "ResultSelector",
                        "Retry",
                        "Catch",
                        "Mapping",
                        "Label",
                        "ToleratedFailurePercentage",
                        "ToleratedFailureCount",
                    ],
                ]
                .concat(),
                self.map(s, at),
            ),
            "Succeed" => ([common, io_in].concat(), StateKind::Succeed),
            "Fail" => (
                [common, &["Error", "Cause", "ErrorPath", "CausePath"]].concat(),
                self.fail(s, at),
            ),
            _ => {
                let list = match self.d {
                    Dialect::Asl => "Pass, Task, Choice, Wait, Parallel, Map, Succeed, Fail",
                    Dialect::Seed => "PASS, TASK, CHOICE, WAIT, PARALLEL, MAP, SUCCESS, FAIL",
                };
                self.problem(
                    join(at, &type_key),
                    format!("unknown state type {ty:?}: one of {list}"),
                );
                (Vec::new(), StateKind::Succeed)
            }
        };
        if !extra.is_empty() {
            let mut known: Vec<String> = extra.iter().map(|k| self.f(k)).collect();
            if self.d == Dialect::Asl {
                known.retain(|k| {
                    !["Mapping", "Events", "EventsTimeoutSeconds", "EventsDefault"]
                        .contains(&k.as_str())
                });
            }
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            self.unknown(s, &known, at);
        }
        // Transition.
        let terminal = matches!(
            kind,
            StateKind::Choice { .. } | StateKind::Succeed | StateKind::Fail { .. }
        );
        let next_key = self.f("Next");
        let end_key = self.f("End");
        let next = self.opt_str(s, &next_key, at);
        let end = match s.get(&end_key) {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.problem(join(at, &end_key), "must be true or false");
                false
            }
        };
        let has_events = matches!(&kind, StateKind::Task(t) if !t.events.is_empty());
        let transition = match (next, end) {
            (Some(n), false) => Transition::Next(n.into()),
            (None, true) => Transition::End,
            (Some(_), true) => {
                self.problem(
                    at,
                    format!("a state has {next_key:?} or {end_key:?}, not both"),
                );
                Transition::End
            }
            (None, false) => {
                if !terminal && !has_events {
                    self.problem(at, format!("missing {next_key:?} (or {end_key:?}: true)"));
                }
                Transition::End
            }
        };
        let io = self.io(s, &kind, at);
        State {
            name: name.into(),
            comment: self.opt_str(s, &self.f("Comment"), at),
            kind,
            transition,
            io,
            src: at.to_string(),
        }
    }

    fn io(&mut self, s: &Map<String, Value>, kind: &StateKind, at: &str) -> Io {
        let mut io = Io::asl_default();
        io.input_path = self.io_path(s, "InputPath", at);
        io.output_path = self.io_path(s, "OutputPath", at);
        if let Some(v) = self.get(s, "Parameters") {
            let key = self.f("Parameters");
            io.parameters = Some(self.template(v, &join(at, &key)));
        }
        if let Some(v) = self.get(s, "ResultSelector") {
            let key = self.f("ResultSelector");
            io.result_selector = Some(self.template(v, &join(at, &key)));
        }
        match self.d {
            Dialect::Asl => {
                let at_rp = join(at, "ResultPath");
                io.result_path = self.ref_path(s.get("ResultPath"), Some(RefPath::root()), &at_rp);
            }
            Dialect::Seed => {
                // Seed: the result is dropped unless mapping.result says where
                // it goes; PASS with `result`, MAP and PARALLEL keep ASL's `$`
                // (a PARALLEL merges instead, see `Parallel::merge`).
                let default = match kind {
                    StateKind::Pass { result: Some(_) } | StateKind::Map(_) => {
                        Some(RefPath::root())
                    }
                    _ => None,
                };
                io.result_path = default.clone();
                if let Some(v) = s.get("resultPath") {
                    io.result_path =
                        self.ref_path(Some(v), default.clone(), &join(at, "resultPath"));
                }
                match s.get("mapping") {
                    None => {}
                    Some(Value::Object(m)) => {
                        let mat = join(at, "mapping");
                        for (k, v) in m {
                            let here = join(&mat, k);
                            match k.as_str() {
                                "result" => {
                                    io.result_path = self.ref_path(Some(v), default.clone(), &here)
                                }
                                "input" | "output" => {
                                    let p = match v {
                                        Value::Null => None,
                                        Value::String(t) => match Path::parse(t) {
                                            Ok(p) => Some(p),
                                            Err(e) => {
                                                self.problem(&here, e);
                                                Some(Path::root())
                                            }
                                        },
                                        _ => {
                                            self.problem(&here, "must be a path or null");
                                            Some(Path::root())
                                        }
                                    };
                                    if k == "input" {
                                        io.input_path = p;
                                    } else {
                                        io.output_path = p;
                                    }
                                }
                                _ => self.problem(
                                    &here,
                                    "unknown mapping: one of result, input, output",
                                ),
                            }
                        }
                    }
                    Some(_) => self.problem(
                        join(at, "mapping"),
                        "must be an object such as {\"result\": \"$.x\"}",
                    ),
                }
            }
        }
        io
    }

    fn recovery(&mut self, s: &Map<String, Value>, at: &str) -> Recovery {
        let mut rec = Recovery::default();
        let (retry_key, catch_key) = (self.f("Retry"), self.f("Catch"));
        let (ee, is, ma, br, md, js, nx, rp) = (
            self.f("ErrorEquals"),
            self.f("IntervalSeconds"),
            self.f("MaxAttempts"),
            self.f("BackoffRate"),
            self.f("MaxDelaySeconds"),
            self.f("JitterStrategy"),
            self.f("Next"),
            self.f("ResultPath"),
        );
        if let Some(v) = s.get(&retry_key) {
            let base = join(at, &retry_key);
            match v.as_array() {
                None => self.problem(&base, "must be an array of retriers"),
                Some(a) => {
                    for (i, r) in a.iter().enumerate() {
                        let here = format!("{base}[{i}]");
                        let Some(r) = r.as_object() else {
                            self.problem(&here, "a retrier is an object");
                            continue;
                        };
                        self.unknown(
                            r,
                            &[&ee, &is, &ma, &br, &md, &js, &self.f("Comment")],
                            &here,
                        );
                        let mut rt = Retrier::with_errors(self.errors(r, &ee, &here));
                        if let Some(n) = r.get(&is) {
                            match n.as_u64() {
                                Some(n) if n >= 1 => rt.interval = Duration::from_secs(n),
                                _ => self.problem(join(&here, &is), "must be a positive integer"),
                            }
                        }
                        if let Some(n) = self.opt_u64(r, &ma, &here) {
                            rt.max_attempts = n.min(u32::MAX as u64) as u32;
                        }
                        if let Some(n) = r.get(&br) {
                            match n.as_f64() {
                                Some(x) if x >= 1.0 => rt.backoff_rate = x,
                                _ => self.problem(join(&here, &br), "must be a number >= 1.0"),
                            }
                        }
                        if let Some(n) = r.get(&md) {
                            match n.as_u64() {
                                Some(n) if n >= 1 => rt.max_delay = Some(Duration::from_secs(n)),
                                _ => self.problem(join(&here, &md), "must be a positive integer"),
                            }
                        }
                        match r.get(&js).map(|v| v.as_str()) {
                            None | Some(Some("NONE")) => {}
                            Some(Some("FULL")) => rt.full_jitter = true,
                            Some(_) => {
                                self.problem(join(&here, &js), "must be \"FULL\" or \"NONE\"")
                            }
                        }
                        rec.retry.push(rt);
                    }
                }
            }
        }
        if let Some(v) = s.get(&catch_key) {
            let base = join(at, &catch_key);
            match v.as_array() {
                None => self.problem(&base, "must be an array of catchers"),
                Some(a) => {
                    for (i, c) in a.iter().enumerate() {
                        let here = format!("{base}[{i}]");
                        let Some(c) = c.as_object() else {
                            self.problem(&here, "a catcher is an object");
                            continue;
                        };
                        self.unknown(c, &[&ee, &nx, &rp, &self.f("Comment")], &here);
                        let errors = self.errors(c, &ee, &here);
                        let next = self.opt_str(c, &nx, &here).unwrap_or_else(|| {
                            self.problem(join(&here, &nx), "missing");
                            String::new()
                        });
                        let result_path =
                            self.ref_path(c.get(&rp), Some(RefPath::root()), &join(&here, &rp));
                        rec.catch.push(Catcher {
                            errors,
                            next,
                            result_path,
                        });
                    }
                }
            }
        }
        rec
    }

    fn errors(&mut self, o: &Map<String, Value>, key: &str, at: &str) -> Vec<String> {
        match o.get(key).and_then(|v| v.as_array()) {
            Some(a) if !a.is_empty() && a.iter().all(|v| v.is_string()) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => {
                self.problem(join(at, key), "must be a non-empty array of error names");
                Vec::new()
            }
        }
    }

    fn task(&mut self, s: &Map<String, Value>, at: &str) -> StateKind {
        let rk = self.f("Resource");
        let resource = self.opt_str(s, &rk, at).unwrap_or_else(|| {
            self.problem(join(at, &rk), "missing: name the task resource");
            String::new()
        });
        let tk = self.f("TimeoutSeconds");
        let mut timeout = match s.get(&tk).map(|v| v.as_u64()) {
            None => None,
            Some(Some(n)) if n >= 1 => Some(Timeout::Fixed(Duration::from_secs(n))),
            Some(_) => {
                self.problem(join(at, &tk), "must be a positive integer");
                None
            }
        };
        if let Some(p) = self.path_field(s, "TimeoutSecondsPath", at) {
            if timeout.is_some() {
                self.problem(
                    at,
                    "TimeoutSeconds and TimeoutSecondsPath cannot both be given",
                );
            }
            timeout = Some(Timeout::Path(p));
        }
        let recovery = self.recovery(s, at);
        let mut events = Vec::new();
        let (mut events_timeout, mut events_default) = (None, None);
        if self.d == Dialect::Seed {
            if let Some(v) = s.get("events") {
                match v.as_array() {
                    None => self.problem(join(at, "events"), "must be an array of events"),
                    Some(a) => {
                        for (i, e) in a.iter().enumerate() {
                            let here = format!("{at}.events[{i}]");
                            let Some(e) = e.as_object() else {
                                self.problem(&here, "an event is an object");
                                continue;
                            };
                            self.unknown(e, &["name", "next", "response", "description"], &here);
                            let name = self.opt_str(e, "name", &here).unwrap_or_else(|| {
                                self.problem(join(&here, "name"), "missing");
                                String::new()
                            });
                            let next = self.opt_str(e, "next", &here).unwrap_or_else(|| {
                                self.problem(join(&here, "next"), "missing");
                                String::new()
                            });
                            events.push(EventSpec {
                                name,
                                next,
                                response: e.get("response").cloned(),
                            });
                        }
                    }
                }
            }
            events_timeout = self
                .opt_u64(s, "eventsTimeoutSeconds", at)
                .map(Duration::from_secs);
            events_default = self.opt_str(s, "eventsDefault", at);
        }
        StateKind::Task(Box::new(Task {
            resource,
            timeout,
            recovery,
            events,
            events_timeout,
            events_default,
        }))
    }

    fn choice(&mut self, s: &Map<String, Value>, at: &str) -> StateKind {
        let ck = self.f("Choices");
        let mut choices = Vec::new();
        match s.get(&ck) {
            Some(Value::Array(a)) if !a.is_empty() => {
                for (i, c) in a.iter().enumerate() {
                    let here = format!("{at}.{ck}[{i}]");
                    let Some(c) = c.as_object() else {
                        self.problem(&here, "a choice rule is an object");
                        continue;
                    };
                    let nk = self.f("Next");
                    let next = self.opt_str(c, &nk, &here).unwrap_or_else(|| {
                        self.problem(
                            join(&here, &nk),
                            "missing: a top-level choice rule needs a next state",
                        );
                        String::new()
                    });
                    let rule = self.rule(c, &here, true);
                    choices.push(Choice {
                        rule,
                        next: next.into(),
                        comment: self.opt_str(c, &self.f("Comment"), &here),
                    });
                }
            }
            _ => self.problem(
                join(at, &ck),
                "a choice state needs a non-empty array of choice rules",
            ),
        }
        let default = self.opt_str(s, &self.f("Default"), at);
        StateKind::Choice {
            choices,
            default: default.map(Name::from),
        }
    }

    fn rule(&mut self, c: &Map<String, Value>, at: &str, top: bool) -> Rule {
        let (and, or, not, var) = (
            self.f("And"),
            self.f("Or"),
            self.f("Not"),
            self.f("Variable"),
        );
        let mut known = vec![self.f("Comment")];
        if top {
            known.push(self.f("Next"));
        }
        let mut found: Vec<Rule> = Vec::new();
        for (k, v) in c {
            if known.contains(k) || *k == var {
                continue;
            }
            let here = join(at, k);
            if *k == and || *k == or {
                match v.as_array() {
                    Some(a) if !a.is_empty() => {
                        let rules: Vec<Rule> = a
                            .iter()
                            .enumerate()
                            .map(|(i, r)| match r.as_object() {
                                Some(r) => self.rule(r, &format!("{here}[{i}]"), false),
                                None => {
                                    self.problem(
                                        format!("{here}[{i}]"),
                                        "a choice rule is an object",
                                    );
                                    Rule::And(Vec::new())
                                }
                            })
                            .collect();
                        found.push(if *k == and {
                            Rule::And(rules)
                        } else {
                            Rule::Or(rules)
                        });
                    }
                    _ => self.problem(&here, "must be a non-empty array of choice rules"),
                }
            } else if *k == not {
                match v.as_object() {
                    Some(r) => found.push(Rule::Not(Box::new(self.rule(r, &here, false)))),
                    None => self.problem(&here, "must be one choice rule"),
                }
            } else {
                let asl_name = match self.d {
                    Dialect::Asl => k.clone(),
                    Dialect::Seed => {
                        let mut ch = k.chars();
                        ch.next()
                            .map(|f| f.to_ascii_uppercase().to_string() + ch.as_str())
                            .unwrap_or_default()
                    }
                };
                let Some((op, is_path)) = Op::parse(&asl_name) else {
                    self.problem(&here, "unknown field or comparison operator");
                    continue;
                };
                let Some(variable) = self.path_field(c, "Variable", at) else {
                    self.problem(join(at, &var), "missing: a comparison needs a variable");
                    continue;
                };
                let operand = if is_path {
                    match v.as_str().map(Path::parse) {
                        Some(Ok(p)) => Operand::Path(p),
                        Some(Err(e)) => {
                            self.problem(&here, e);
                            continue;
                        }
                        None => {
                            self.problem(&here, "must be a path");
                            continue;
                        }
                    }
                } else {
                    let ok = match op.operand_kind() {
                        "string" => v.is_string(),
                        "number" => v.is_number(),
                        _ => v.is_boolean(),
                    };
                    if !ok {
                        self.problem(
                            &here,
                            format!("{} compares with a {}, not {v}", k, op.operand_kind()),
                        );
                        continue;
                    }
                    if op.name().starts_with("Timestamp")
                        && crate::choice::parse_timestamp(v.as_str().unwrap_or_default()).is_none()
                    {
                        self.problem(&here, "not an RFC 3339 timestamp");
                    }
                    Operand::Value(v.clone())
                };
                found.push(Rule::Compare {
                    variable,
                    op,
                    operand,
                });
            }
        }
        if found.len() != 1 {
            self.problem(
                at,
                if found.is_empty() {
                    "a choice rule needs one comparison (or And/Or/Not)".to_string()
                } else {
                    "a choice rule has exactly one comparison (combine with And/Or)".to_string()
                },
            );
        }
        if c.contains_key(&var) && !matches!(found.first(), Some(Rule::Compare { .. })) {
            self.problem(
                join(at, &var),
                "a variable belongs with a comparison operator",
            );
        }
        found.pop().unwrap_or(Rule::And(Vec::new()))
    }

    fn wait(&mut self, s: &Map<String, Value>, at: &str) -> StateKind {
        let mut found = Vec::new();
        if let Some(n) = self.opt_u64(s, &self.f("Seconds"), at) {
            found.push(WaitFor::Seconds(n));
        }
        if let Some(p) = self.path_field(s, "SecondsPath", at) {
            found.push(WaitFor::SecondsPath(p));
        }
        if let Some(t) = self.opt_str(s, &self.f("Timestamp"), at) {
            if crate::choice::parse_timestamp(&t).is_none() {
                self.problem(join(at, &self.f("Timestamp")), "not an RFC 3339 timestamp");
            }
            found.push(WaitFor::Timestamp(t));
        }
        if let Some(p) = self.path_field(s, "TimestampPath", at) {
            found.push(WaitFor::TimestampPath(p));
        }
        if found.len() != 1 {
            self.problem(
                at,
                "a wait state has exactly one of seconds, secondsPath, timestamp, timestampPath",
            );
        }
        StateKind::Wait(found.pop().unwrap_or(WaitFor::Seconds(0)))
    }

    fn parallel(&mut self, s: &Map<String, Value>, at: &str) -> StateKind {
        let bk = self.f("Branches");
        let mut branches = Vec::new();
        match s.get(&bk) {
            Some(Value::Array(a)) if !a.is_empty() => {
                for (i, b) in a.iter().enumerate() {
                    let here = format!("{at}.{bk}[{i}]");
                    match b.as_object() {
                        Some(b) => {
                            let known = [self.f("StartAt"), self.f("States"), self.f("Comment")];
                            let known: Vec<&str> = known.iter().map(String::as_str).collect();
                            self.unknown(b, &known, &here);
                            branches.push(self.machine(b, &here));
                        }
                        None => self.problem(&here, "a branch is an object with its own states"),
                    }
                }
            }
            _ => self.problem(
                join(at, &bk),
                "a parallel state needs a non-empty array of branches",
            ),
        }
        let recovery = self.recovery(s, at);
        StateKind::Parallel(Box::new(Parallel {
            branches,
            recovery,
            merge: self.d == Dialect::Seed,
        }))
    }

    fn map(&mut self, s: &Map<String, Value>, at: &str) -> StateKind {
        let (ik, pk) = (self.f("Iterator"), self.f("ItemProcessor"));
        let iterator = match (s.get(&ik), s.get(&pk)) {
            (Some(Value::Object(m)), None) => self.machine(m, &join(at, &ik)),
            (None, Some(Value::Object(m))) => {
                let here = join(at, &pk);
                if let Some(cfg) = m.get(&self.f("ProcessorConfig"))
                    && cfg
                        .get(self.f("Mode"))
                        .and_then(|v| v.as_str())
                        .is_some_and(|m| m != "INLINE")
                {
                    self.problem(
                        join(&here, &self.f("ProcessorConfig")),
                        "only INLINE mode is supported",
                    );
                }
                self.machine(m, &here)
            }
            _ => {
                self.problem(at, format!("a map state needs {pk:?} (or {ik:?})"));
                StateMachine::new(Name::from(""), Vec::new(), at.to_string())
            }
        };
        let items_path = if self.get(s, "ItemsPath").is_some() {
            self.path_field(s, "ItemsPath", at)
                .unwrap_or_else(Path::root)
        } else {
            Path::root()
        };
        let item_selector = self.get(s, "ItemSelector").cloned().map(|v| {
            let key = self.f("ItemSelector");
            self.template(&v, &join(at, &key))
        });
        let max_concurrency = self.opt_u64(s, &self.f("MaxConcurrency"), at).unwrap_or(0) as usize;
        let recovery = self.recovery(s, at);
        StateKind::Map(Box::new(MapState {
            iterator,
            items_path,
            item_selector,
            max_concurrency,
            recovery,
        }))
    }

    fn fail(&mut self, s: &Map<String, Value>, at: &str) -> StateKind {
        let mut text = |lit: &'static str, path: &'static str| -> Option<ErrText> {
            let l = self.opt_str(s, &self.f(lit), at).map(ErrText::Literal);
            let p = self.path_field(s, path, at).map(ErrText::Path);
            if l.is_some() && p.is_some() {
                self.problem(
                    at,
                    format!("{} and {} cannot both be given", self.f(lit), self.f(path)),
                );
            }
            l.or(p)
        };
        let error = text("Error", "ErrorPath");
        let cause = text("Cause", "CausePath");
        StateKind::Fail { error, cause }
    }
}
