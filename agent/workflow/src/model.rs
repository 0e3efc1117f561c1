//! The one internal model both dialects are read into.
//!
//! A [`Workflow`] is a named [`StateMachine`]; a machine is an ordered list of
//! [`State`]s and the name of the first. Every state keeps `src`, the place in
//! the source document it came from (`states.check_rule` in the seed dialect,
//! `States.CheckRule` in ASL), so validation errors name the exact path.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::path::{Path, RefPath, Template};

/// Which language a workflow was written in. It decides the defaults the
/// readers filled in and the field names validation errors use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Dialect {
    /// Tend's (Zercurity's) dialect: `entry`, `states`, `type: "TASK"`, ...
    Seed,
    /// Amazon States Language: `StartAt`, `States`, `Type: "Task"`, ...
    Asl,
}

/// A state's name. Shared: the executor hands the model's own name to each
/// thread row and history event it writes (a reference count, not a copy),
/// and it serializes as the plain string.
pub type Name = Arc<str>;

/// A whole workflow document.
#[derive(Debug, Clone)]
pub struct Workflow {
    pub name: String,
    pub description: Option<String>,
    /// What starts it (the seed's `trigger`), kept as written.
    pub trigger: Option<Value>,
    pub dialect: Dialect,
    pub machine: StateMachine,
    /// ASL's top-level `TimeoutSeconds`.
    pub timeout: Option<Duration>,
    /// Whether any path reads the context object (`$$`); when none does the
    /// executor does not build it.
    pub uses_context: bool,
}

/// A state machine: the top level, a Parallel branch or a Map iterator.
#[derive(Debug, Clone)]
pub struct StateMachine {
    pub start: Name,
    pub states: Vec<State>,
    /// Where this machine sits in the source (`""` for the top level).
    pub src: String,
    index: HashMap<Name, usize, BuildHasherDefault<Fnv>>,
    /// Per state, where its `Next` leads (an index into `states`), so the
    /// executor follows a normal transition without a name lookup.
    next_at: Vec<Option<usize>>,
}

/// FNV-1a, for the state-name index: every transition looks a name up, and
/// SipHash cost more than the rest of a Pass step. The names are short and
/// come from the workflow's author (a signed policy), not from someone who
/// could choose colliding names to slow the lookups down.
#[derive(Default)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

impl StateMachine {
    pub fn new(start: Name, states: Vec<State>, src: String) -> Self {
        let index = states
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect::<HashMap<_, _, _>>();
        let next_at = states
            .iter()
            .map(|s| match &s.transition {
                Transition::Next(n) => index.get(n).copied(),
                Transition::End => None,
            })
            .collect();
        StateMachine {
            start,
            states,
            src,
            index,
            next_at,
        }
    }

    pub fn get(&self, name: &str) -> Option<&State> {
        self.index.get(name).map(|&i| &self.states[i])
    }

    /// The index in `states` of the state with this name.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The index of `to` when it is where state `from` goes by its `Next`
    /// (the same shared name: no string comparison, no lookup); `None`
    /// otherwise (a Choice's or a Catcher's target: look it up by name).
    pub fn follow(&self, from: usize, to: &Name) -> Option<usize> {
        match &self.states.get(from)?.transition {
            Transition::Next(n) if Arc::ptr_eq(n, to) => self.next_at[from],
            _ => None,
        }
    }

    /// Every machine nested in this one's Parallel and Map states.
    pub fn children(&self) -> impl Iterator<Item = &StateMachine> {
        self.states.iter().flat_map(|s| match &s.kind {
            StateKind::Parallel(p) => p.branches.iter().collect::<Vec<_>>(),
            StateKind::Map(m) => vec![&m.iterator],
            _ => Vec::new(),
        })
    }
}

/// Where a state goes when it completes normally.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    Next(Name),
    End,
}

/// The data-flow fields of a state, applied in ASL's order:
/// InputPath → Parameters → (the work) → ResultSelector → ResultPath → OutputPath.
#[derive(Debug, Clone)]
pub struct Io {
    /// `None` is ASL's `"InputPath": null`: the effective input is `{}`.
    pub input_path: Option<Path>,
    pub parameters: Option<Template>,
    pub result_selector: Option<Template>,
    /// `None` discards the result (output = input).
    pub result_path: Option<RefPath>,
    pub output_path: Option<Path>,
}

impl Io {
    /// ASL's defaults: every path is `$`.
    pub fn asl_default() -> Io {
        Io {
            input_path: Some(Path::root()),
            parameters: None,
            result_selector: None,
            result_path: Some(RefPath::root()),
            output_path: Some(Path::root()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct State {
    pub name: Name,
    pub comment: Option<String>,
    pub kind: StateKind,
    /// Unused by Choice, Succeed and Fail.
    pub transition: Transition,
    pub io: Io,
    /// Path of this state in the source document.
    pub src: String,
}

impl State {
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            StateKind::Pass { .. } => "Pass",
            StateKind::Task(_) => "Task",
            StateKind::Choice { .. } => "Choice",
            StateKind::Wait(_) => "Wait",
            StateKind::Parallel(_) => "Parallel",
            StateKind::Map(_) => "Map",
            StateKind::Succeed => "Succeed",
            StateKind::Fail { .. } => "Fail",
        }
    }

    /// The retriers and catchers of states that have them.
    pub fn recovery(&self) -> Option<&Recovery> {
        match &self.kind {
            StateKind::Task(t) => Some(&t.recovery),
            StateKind::Parallel(p) => Some(&p.recovery),
            StateKind::Map(m) => Some(&m.recovery),
            _ => None,
        }
    }

    /// Every state name this state can move to, with a label for pictures.
    pub fn edges(&self) -> Vec<Edge> {
        let mut out = Vec::new();
        if let Transition::Next(n) = &self.transition
            && !matches!(self.kind, StateKind::Choice { .. })
        {
            let waits = matches!(&self.kind, StateKind::Task(t) if !t.events.is_empty());
            if !waits {
                out.push(Edge {
                    to: n.to_string(),
                    label: String::new(),
                    kind: EdgeKind::Next,
                });
            }
        }
        match &self.kind {
            StateKind::Choice { choices, default } => {
                for c in choices {
                    out.push(Edge {
                        to: c.next.to_string(),
                        label: c.rule.describe(),
                        kind: EdgeKind::Choice,
                    });
                }
                if let Some(d) = default {
                    out.push(Edge {
                        to: d.to_string(),
                        label: "default".into(),
                        kind: EdgeKind::Default,
                    });
                }
            }
            StateKind::Task(t) => {
                for e in &t.events {
                    out.push(Edge {
                        to: e.next.clone(),
                        label: format!("event {}", e.name),
                        kind: EdgeKind::Event,
                    });
                }
                if let Some(d) = &t.events_default {
                    out.push(Edge {
                        to: d.to_string(),
                        label: "no event in time".into(),
                        kind: EdgeKind::Event,
                    });
                }
            }
            _ => {}
        }
        if let Some(r) = self.recovery() {
            for c in &r.catch {
                out.push(Edge {
                    to: c.next.clone(),
                    label: format!("catch {}", c.errors.join(", ")),
                    kind: EdgeKind::Catch,
                });
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeKind {
    Next,
    Choice,
    Default,
    Catch,
    Event,
}

#[derive(Debug, Clone)]
pub struct Edge {
    pub to: String,
    pub label: String,
    pub kind: EdgeKind,
}

#[derive(Debug, Clone)]
pub enum StateKind {
    /// Pass: `result` replaces the effective input when given.
    Pass {
        result: Option<Value>,
    },
    Task(Box<Task>),
    Choice {
        choices: Vec<Choice>,
        default: Option<Name>,
    },
    Wait(WaitFor),
    Parallel(Box<Parallel>),
    Map(Box<MapState>),
    Succeed,
    Fail {
        error: Option<ErrText>,
        cause: Option<ErrText>,
    },
}

/// A Fail state's Error or Cause: literal or read from a path.
#[derive(Debug, Clone)]
pub enum ErrText {
    Literal(String),
    Path(Path),
}

#[derive(Debug, Clone, Default)]
pub struct Recovery {
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
}

#[derive(Debug, Clone)]
pub struct Task {
    pub resource: String,
    pub timeout: Option<Timeout>,
    pub recovery: Recovery,
    /// The seed dialect's interaction events: after the task succeeds the
    /// execution waits for one of these.
    pub events: Vec<EventSpec>,
    /// How long to wait for an event; `None` waits for ever.
    pub events_timeout: Option<Duration>,
    /// Where to go when no event came in time (without it: `States.Timeout`).
    pub events_default: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Timeout {
    Fixed(Duration),
    Path(Path),
}

#[derive(Debug, Clone)]
pub struct EventSpec {
    pub name: String,
    pub next: String,
    /// Handed back to whoever delivered the event (e.g. the new text of the
    /// Slack message whose button was pressed).
    pub response: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct Parallel {
    pub branches: Vec<StateMachine>,
    pub recovery: Recovery,
    /// ASL: the output is the array of branch outputs. Seed: each branch's
    /// output object is merged (deeply) into the state's input.
    pub merge: bool,
}

#[derive(Debug, Clone)]
pub struct MapState {
    pub iterator: StateMachine,
    pub items_path: Path,
    /// ASL's ItemSelector (or the older Parameters on a Map).
    pub item_selector: Option<Template>,
    /// 0: no limit beyond the engine's.
    pub max_concurrency: usize,
    pub recovery: Recovery,
}

#[derive(Debug, Clone)]
pub enum WaitFor {
    Seconds(u64),
    SecondsPath(Path),
    /// RFC 3339.
    Timestamp(String),
    TimestampPath(Path),
}

#[derive(Debug, Clone)]
pub struct Retrier {
    pub errors: Vec<String>,
    pub interval: Duration,
    pub max_attempts: u32,
    pub backoff_rate: f64,
    pub max_delay: Option<Duration>,
    pub full_jitter: bool,
}

impl Retrier {
    /// ASL's defaults: 1 s, 3 attempts, rate 2.0, no cap, no jitter.
    pub fn with_errors(errors: Vec<String>) -> Retrier {
        Retrier {
            errors,
            interval: Duration::from_secs(1),
            max_attempts: 3,
            backoff_rate: 2.0,
            max_delay: None,
            full_jitter: false,
        }
    }

    /// The delay before retry number `attempt` (1-based), before jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let secs =
            self.interval.as_secs_f64() * self.backoff_rate.powi(attempt.saturating_sub(1) as i32);
        let mut d = Duration::from_secs_f64(secs.min(1.0e9));
        if let Some(cap) = self.max_delay {
            d = d.min(cap);
        }
        d
    }
}

#[derive(Debug, Clone)]
pub struct Catcher {
    pub errors: Vec<String>,
    pub next: String,
    /// Where the error object goes; `None` discards it. ASL's default is `$`.
    pub result_path: Option<RefPath>,
}

#[derive(Debug, Clone)]
pub struct Choice {
    pub rule: Rule,
    pub next: Name,
    pub comment: Option<String>,
}

/// A boolean expression of a Choice.
#[derive(Debug, Clone)]
pub enum Rule {
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Box<Rule>),
    Compare {
        variable: Path,
        op: Op,
        operand: Operand,
    },
}

impl Rule {
    /// A short text for pictures: `$.a == true`.
    pub fn describe(&self) -> String {
        match self {
            Rule::And(v) => v
                .iter()
                .map(|r| r.describe())
                .collect::<Vec<_>>()
                .join(" and "),
            Rule::Or(v) => v
                .iter()
                .map(|r| r.describe())
                .collect::<Vec<_>>()
                .join(" or "),
            Rule::Not(r) => format!("not ({})", r.describe()),
            Rule::Compare {
                variable,
                op,
                operand,
            } => {
                let rhs = match operand {
                    Operand::Value(v) => v.to_string(),
                    Operand::Path(p) => p.text.clone(),
                };
                format!("{} {} {}", variable.text, op.symbol(), rhs)
            }
        }
    }
}

#[derive(Debug, Clone)]
pub enum Operand {
    Value(Value),
    /// The `...Path` forms: compare with what this path selects.
    Path(Path),
}

/// The comparison operators of ASL, without the `Path` suffix (carried by
/// [`Operand::Path`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    StringEquals,
    StringLessThan,
    StringGreaterThan,
    StringLessThanEquals,
    StringGreaterThanEquals,
    StringMatches,
    NumericEquals,
    NumericLessThan,
    NumericGreaterThan,
    NumericLessThanEquals,
    NumericGreaterThanEquals,
    BooleanEquals,
    TimestampEquals,
    TimestampLessThan,
    TimestampGreaterThan,
    TimestampLessThanEquals,
    TimestampGreaterThanEquals,
    IsNull,
    IsPresent,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

impl Op {
    pub const ALL: [Op; 23] = [
        Op::StringEquals,
        Op::StringLessThan,
        Op::StringGreaterThan,
        Op::StringLessThanEquals,
        Op::StringGreaterThanEquals,
        Op::StringMatches,
        Op::NumericEquals,
        Op::NumericLessThan,
        Op::NumericGreaterThan,
        Op::NumericLessThanEquals,
        Op::NumericGreaterThanEquals,
        Op::BooleanEquals,
        Op::TimestampEquals,
        Op::TimestampLessThan,
        Op::TimestampGreaterThan,
        Op::TimestampLessThanEquals,
        Op::TimestampGreaterThanEquals,
        Op::IsNull,
        Op::IsPresent,
        Op::IsNumeric,
        Op::IsString,
        Op::IsBoolean,
        Op::IsTimestamp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::StringEquals => "StringEquals",
            Op::StringLessThan => "StringLessThan",
            Op::StringGreaterThan => "StringGreaterThan",
            Op::StringLessThanEquals => "StringLessThanEquals",
            Op::StringGreaterThanEquals => "StringGreaterThanEquals",
            Op::StringMatches => "StringMatches",
            Op::NumericEquals => "NumericEquals",
            Op::NumericLessThan => "NumericLessThan",
            Op::NumericGreaterThan => "NumericGreaterThan",
            Op::NumericLessThanEquals => "NumericLessThanEquals",
            Op::NumericGreaterThanEquals => "NumericGreaterThanEquals",
            Op::BooleanEquals => "BooleanEquals",
            Op::TimestampEquals => "TimestampEquals",
            Op::TimestampLessThan => "TimestampLessThan",
            Op::TimestampGreaterThan => "TimestampGreaterThan",
            Op::TimestampLessThanEquals => "TimestampLessThanEquals",
            Op::TimestampGreaterThanEquals => "TimestampGreaterThanEquals",
            Op::IsNull => "IsNull",
            Op::IsPresent => "IsPresent",
            Op::IsNumeric => "IsNumeric",
            Op::IsString => "IsString",
            Op::IsBoolean => "IsBoolean",
            Op::IsTimestamp => "IsTimestamp",
        }
    }

    /// Reads an ASL operator name (`NumericGreaterThanPath`): the operator
    /// and whether it is the `Path` form. Case-sensitive, as ASL is.
    pub fn parse(name: &str) -> Option<(Op, bool)> {
        let (base, path) = match name.strip_suffix("Path") {
            Some(b) => (b, true),
            None => (name, false),
        };
        let op = Op::ALL.into_iter().find(|o| o.name() == base)?;
        if path && (op.is_type_test() || op == Op::StringMatches) {
            return None;
        }
        Some((op, path))
    }

    pub fn is_type_test(self) -> bool {
        matches!(
            self,
            Op::IsNull
                | Op::IsPresent
                | Op::IsNumeric
                | Op::IsString
                | Op::IsBoolean
                | Op::IsTimestamp
        )
    }

    /// The JSON type a literal operand must have.
    pub fn operand_kind(self) -> &'static str {
        match self {
            Op::StringEquals
            | Op::StringLessThan
            | Op::StringGreaterThan
            | Op::StringLessThanEquals
            | Op::StringGreaterThanEquals
            | Op::StringMatches
            | Op::TimestampEquals
            | Op::TimestampLessThan
            | Op::TimestampGreaterThan
            | Op::TimestampLessThanEquals
            | Op::TimestampGreaterThanEquals => "string",
            Op::NumericEquals
            | Op::NumericLessThan
            | Op::NumericGreaterThan
            | Op::NumericLessThanEquals
            | Op::NumericGreaterThanEquals => "number",
            _ => "boolean",
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Op::StringEquals | Op::NumericEquals | Op::BooleanEquals | Op::TimestampEquals => "==",
            Op::StringLessThan | Op::NumericLessThan | Op::TimestampLessThan => "<",
            Op::StringGreaterThan | Op::NumericGreaterThan | Op::TimestampGreaterThan => ">",
            Op::StringLessThanEquals | Op::NumericLessThanEquals | Op::TimestampLessThanEquals => {
                "<="
            }
            Op::StringGreaterThanEquals
            | Op::NumericGreaterThanEquals
            | Op::TimestampGreaterThanEquals => ">=",
            Op::StringMatches => "matches",
            Op::IsNull => "is null",
            Op::IsPresent => "is present",
            Op::IsNumeric => "is numeric",
            Op::IsString => "is string",
            Op::IsBoolean => "is boolean",
            Op::IsTimestamp => "is timestamp",
        }
    }
}
