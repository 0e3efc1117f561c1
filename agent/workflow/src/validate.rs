//! The graph checks, run before anything executes: every transition names a
//! state of its own machine, every state is reachable, `States.ALL` stands
//! alone and last, state names are unique, and (given a registry) every task
//! resource is known.

use std::collections::{HashMap, HashSet};

use crate::error::{ALL, Problem};
use crate::model::*;
use crate::reader::{field, join};
use crate::resource::Registry;

pub fn validate(wf: &Workflow, registry: Option<&Registry>) -> Vec<Problem> {
    let mut v = Validator {
        d: wf.dialect,
        problems: Vec::new(),
        names: HashMap::new(),
        registry,
    };
    v.machine(&wf.machine);
    v.problems
}

struct Validator<'a> {
    d: Dialect,
    problems: Vec<Problem>,
    /// Every state name and where it was first seen (ASL: unique across the
    /// whole document, branches included).
    names: HashMap<String, String>,
    registry: Option<&'a Registry>,
}

impl Validator<'_> {
    fn problem(&mut self, path: String, message: impl Into<String>) {
        self.problems.push(Problem {
            path,
            message: message.into(),
        });
    }

    fn f(&self, asl: &str) -> String {
        field(self.d, asl)
    }

    fn machine(&mut self, m: &StateMachine) {
        if m.states.is_empty() {
            return;
        }
        if m.get(&m.start).is_none() {
            self.problem(
                join(&m.src, &self.f("StartAt")),
                format!("no state named {:?}", m.start),
            );
        }
        for s in &m.states {
            if let Some(first) = self.names.get(&*s.name) {
                let first = first.clone();
                self.problem(
                    s.src.clone(),
                    format!("the state name {:?} is already used at {first}", s.name),
                );
            } else {
                self.names.insert(s.name.to_string(), s.src.clone());
            }
            self.state(m, s);
        }
        // Reachability from the start.
        let mut seen = HashSet::new();
        let mut todo = vec![m.start.to_string()];
        while let Some(n) = todo.pop() {
            if !seen.insert(n.clone()) {
                continue;
            }
            if let Some(s) = m.get(&n) {
                todo.extend(s.edges().into_iter().map(|e| e.to));
            }
        }
        for s in &m.states {
            if !seen.contains(&*s.name) {
                self.problem(
                    s.src.clone(),
                    format!("the state {:?} is never reached from {:?}", s.name, m.start),
                );
            }
        }
        for child in m.children() {
            self.machine(child);
        }
    }

    fn target(&mut self, m: &StateMachine, to: &str, at: String) {
        if m.get(to).is_none() {
            let hint = if self.names.contains_key(to) || m.src.is_empty() {
                ""
            } else {
                " (a branch can only move between its own states)"
            };
            self.problem(
                at,
                format!("no state named {to:?} in this state machine{hint}"),
            );
        }
    }

    fn state(&mut self, m: &StateMachine, s: &State) {
        let at = |k: &str| join(&s.src, k);
        let has_events = matches!(&s.kind, StateKind::Task(t) if !t.events.is_empty());
        if let Transition::Next(n) = &s.transition {
            if has_events {
                self.problem(
                    at(&self.f("Next")),
                    "a task with events continues at the next of the event that came",
                );
            } else {
                self.target(m, n, at(&self.f("Next")));
            }
        }
        match &s.kind {
            StateKind::Choice { choices, default } => {
                let ck = self.f("Choices");
                for (i, c) in choices.iter().enumerate() {
                    self.target(m, &c.next, format!("{}[{i}].{}", at(&ck), self.f("Next")));
                }
                if let Some(d) = default {
                    self.target(m, d, at(&self.f("Default")));
                }
            }
            StateKind::Task(t) => {
                for (i, e) in t.events.iter().enumerate() {
                    self.target(m, &e.next, format!("{}[{i}].next", at("events")));
                    if t.events[..i].iter().any(|o| o.name == e.name) {
                        self.problem(
                            format!("{}[{i}].name", at("events")),
                            format!("the event {:?} is listed twice", e.name),
                        );
                    }
                }
                if let Some(d) = &t.events_default {
                    if t.events_timeout.is_none() {
                        self.problem(at("eventsDefault"), "needs eventsTimeoutSeconds");
                    }
                    self.target(m, d, at("eventsDefault"));
                }
                if let Some(reg) = self.registry
                    && !t.resource.is_empty()
                    && reg.find(&t.resource).is_none()
                {
                    self.problem(
                        at(&self.f("Resource")),
                        format!("unknown task resource {:?}", t.resource),
                    );
                }
            }
            _ => {}
        }
        if let Some(r) = s.recovery() {
            let rk = self.f("Retry");
            for (i, rt) in r.retry.iter().enumerate() {
                self.all_last(&rt.errors, i, r.retry.len(), format!("{}[{i}]", at(&rk)));
            }
            let ck = self.f("Catch");
            for (i, c) in r.catch.iter().enumerate() {
                let here = format!("{}[{i}]", at(&ck));
                self.all_last(&c.errors, i, r.catch.len(), here.clone());
                self.target(m, &c.next, join(&here, &self.f("Next")));
            }
        }
    }

    fn all_last(&mut self, errors: &[String], i: usize, len: usize, at: String) {
        if errors.iter().any(|e| e == ALL) {
            let at = join(&at, &self.f("ErrorEquals"));
            if errors.len() > 1 {
                self.problem(at.clone(), "States.ALL must appear alone");
            }
            if i + 1 != len {
                self.problem(at, "States.ALL must be in the last retrier or catcher");
            }
        }
    }
}
