//! Committed workflow transitions per second in durable mode: the engine
//! runs a chain of Pass states with the daemon's journal, so every
//! transition is one SQLite transaction (WAL, `synchronous = FULL`: an
//! fsync per commit) in a real state database on disk.
//!
//! `cargo bench -p tend --bench workflow_journal`. The database goes in a
//! temporary directory under the build's target directory (on disk, not a
//! tmpfs); set `TEND_BENCH_DIR` to measure another disk.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tend::daemon::store::Store;
use tend::daemon::workflows::journal::{NewExecution, StoreJournal, new_token};
use tend_workflow::{Engine, RealClock, Registry, Status, Workflow};

fn main() {
    divan::main();
}

/// States per execution.
const CHAIN: usize = 200;

fn chain() -> Workflow {
    let mut states = serde_json::Map::new();
    for i in 0..CHAIN {
        let s = if i + 1 == CHAIN {
            json!({"type": "PASS", "end": true})
        } else {
            json!({"type": "PASS", "next": format!("s{}", i + 1)})
        };
        states.insert(format!("s{i}"), s);
    }
    Workflow::from_value(
        &json!({"name": "chain", "entry": "s0", "states": states}),
        None,
    )
    .unwrap()
}

fn bench_dir() -> PathBuf {
    std::env::var_os("TEND_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// One execution of the chain: CHAIN transitions, each committed (plus the
/// final one that writes the outcome).
#[divan::bench(sample_count = 10, sample_size = 1)]
fn durable_pass_chain(bencher: divan::Bencher) {
    std::fs::create_dir_all(bench_dir()).unwrap();
    let dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let store = Arc::new(Mutex::new(Store::open(dir.path()).unwrap()));
    let wf = Arc::new(chain());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine =
        Engine::new(Registry::new(), Arc::new(RealClock)).with_journal(Arc::new(StoreJournal {
            store: store.clone(),
        }));
    let mut n = 0u64;
    bencher
        .counter(divan::counter::ItemsCount::new(CHAIN + 1))
        .bench_local(|| {
            n += 1;
            let id = format!("e{n}");
            store
                .lock()
                .unwrap()
                .wf_insert(&NewExecution {
                    id: id.clone(),
                    workflow: "chain".into(),
                    policy_serial: 1,
                    input: json!({}),
                    trigger: "manual".into(),
                    trigger_uuid: None,
                    token: new_token(),
                    started_ms: 0,
                })
                .unwrap();
            let out =
                rt.block_on(async { engine.start_with_id(wf.clone(), id, json!({})).wait().await });
            assert_eq!(out.status, Status::Succeeded);
        });
}
