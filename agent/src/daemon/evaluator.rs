//! The evaluator thread: the SQL engine, off the async runtime.
//!
//! rusqlite is synchronous and a query can take seconds, so the engine
//! lives on a thread of its own and takes one job at a time. Each check's
//! evaluation runs under the engine's limits (time and rows: a check over
//! budget is `error` with the reason) through trackers
//! ([`crate::os::tracking`]), so the result comes back with the paths and
//! registry keys it read, for the watcher.
//!
//! If a table blocks past the time limit where the engine cannot interrupt
//! it, the daemon gives up on the thread ([`Evaluator`] is dropped; the
//! thread ends when its job does), records the check as `error`, and starts
//! a new evaluator: the other checks go on.

use std::path::PathBuf;
use std::sync::mpsc;

use tokio::sync::mpsc::UnboundedSender;

use crate::checks::{self, Outcome, Status};
use crate::os::Machine;
use crate::os::windows::Registry as _;
use crate::policy::Check;
use crate::sql::{Engine, Limits, QueryResult};

/// A path or registry key an evaluation read: on the machine, and where
/// to watch it on the host (a file, or a key of the live registry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    pub path: String,
    pub host: Option<PathBuf>,
    pub key: Option<String>,
}

/// What the evaluator was asked to do.
pub enum Job {
    Evaluate {
        run: u64,
        check: Box<Check>,
    },
    Query {
        sql: String,
        reply: tokio::sync::oneshot::Sender<Result<QueryResult, String>>,
    },
}

/// One finished evaluation.
pub struct Done {
    pub generation: u64,
    pub run: u64,
    pub outcome: Outcome,
    pub reads: Vec<Read>,
}

/// A handle on an evaluator thread.
pub struct Evaluator {
    jobs: mpsc::Sender<Job>,
    pub generation: u64,
}

/// Pseudo-filesystems: reading them is not something a watch can follow.
fn watchable(path: &str) -> bool {
    !["/proc", "/sys", "/dev", "/run"]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

impl Evaluator {
    /// Starts a thread evaluating on `machine` under `limits`; results go to `done`.
    pub fn spawn(
        machine: Machine,
        limits: Limits,
        generation: u64,
        done: UnboundedSender<Done>,
    ) -> std::io::Result<Evaluator> {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(format!("tend-eval-{generation}"))
            .spawn(move || {
                let (machine, trackers) = crate::os::tracking::track(machine);
                let tracker = trackers.fs;
                let keys = trackers.registry;
                let engine = Engine::with_limits(machine, limits).map_err(|e| e.to_string());
                if let Err(e) = &engine {
                    tracing::error!("the SQL engine cannot start: {e}");
                }
                while let Ok(job) = rx.recv() {
                    match job {
                        Job::Evaluate { run, check } => {
                            tracker.take();
                            keys.take();
                            let outcome = match &engine {
                                Ok(engine) => checks::evaluate(engine, &check),
                                Err(e) => Outcome {
                                    id: check.id.clone(),
                                    name: check.name.clone(),
                                    status: Status::Error,
                                    evidence: None,
                                    error: Some(format!("the SQL engine cannot start: {e}")),
                                    remediation: None,
                                    duration: std::time::Duration::ZERO,
                                },
                            };
                            let live = keys.is_live();
                            let reads = tracker
                                .take()
                                .into_iter()
                                .map(|p| {
                                    let path = p.to_string_lossy().into_owned();
                                    let host =
                                        watchable(&path).then(|| tracker.host_path(&p)).flatten();
                                    Read {
                                        path,
                                        host,
                                        key: None,
                                    }
                                })
                                .chain(keys.take().into_iter().map(|k| Read {
                                    key: live.then(|| k.clone()),
                                    path: k,
                                    host: None,
                                }))
                                .collect();
                            if done
                                .send(Done {
                                    generation,
                                    run,
                                    outcome,
                                    reads,
                                })
                                .is_err()
                            {
                                break;
                            }
                        }
                        Job::Query { sql, reply } => {
                            let r = match &engine {
                                Ok(engine) => engine.query(&sql).map_err(|e| e.to_string()),
                                Err(e) => Err(e.clone()),
                            };
                            tracker.take();
                            keys.take();
                            let _ = reply.send(r);
                        }
                    }
                }
            })?;
        Ok(Evaluator { jobs, generation })
    }

    /// Queues a job; false when the thread is gone.
    pub fn submit(&self, job: Job) -> bool {
        self.jobs.send(job).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_filesystems_are_not_watched() {
        assert!(!watchable("/proc/1/status"));
        assert!(!watchable("/sys"));
        assert!(watchable("/etc/ufw/ufw.conf"));
        assert!(watchable("/system"));
    }
}
