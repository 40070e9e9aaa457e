//! Model-based test: random sequences of store operations on `Db<DiskStore>` and on
//! `Db<MemStore>` (the oracle), comparing the full state after every step. Reopen and crash
//! steps check what survives: everything flushed (acknowledged), and nothing else.
//!
//! `PROPTEST_CASES` scales the run (default 96 cases of up to 60 steps); `SEED` picks the
//! random stream.

use std::sync::Arc;

use node::store::{DiskStore, Options};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use proto::db::{Added, Db};
use proto::msg::Msg;
use proto::store::{MemStore, Store};

use crate::common::{assert_same_store, pool};

/// Longest operation sequence of one case.
const STEPS_MAX: usize = 60;
/// Cases unless `PROPTEST_CASES` says otherwise.
const CASES_DEFAULT: u32 = 96;
/// Largest ghost span the ops use.
const GHOST_SPAN_MAX: u64 = 6;

#[derive(Debug, Clone)]
enum Op {
    /// Add the next msg of the pool that neither store has seen yet.
    AddNext,
    /// Add any msg of the pool (often refused, or already stored, or replacing an erased copy).
    Add(usize),
    Erase(usize),
    Delete(usize),
    /// Erase a msg, then add its copy with data again (a replace).
    EraseAndReadd(usize),
    Ghost {
        tangle: usize,
        msg: usize,
        span: u64,
    },
    ClearGhosts(usize),
    Flush,
    Compact,
    /// Flush, close, reopen.
    Reopen,
    /// Close without flushing (a crash): only the last flush survives.
    Crash,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let msgs = pool().msgs.len();
    let tangles = pool().tangles.len();
    prop_oneof![
        8 => Just(Op::AddNext),
        2 => (0..msgs).prop_map(Op::Add),
        2 => (0..msgs).prop_map(Op::Erase),
        2 => (0..msgs).prop_map(Op::Delete),
        2 => (0..msgs).prop_map(Op::EraseAndReadd),
        2 => (0..tangles, 0..msgs, 1..=GHOST_SPAN_MAX)
            .prop_map(|(tangle, msg, span)| Op::Ghost { tangle, msg, span }),
        1 => (0..tangles).prop_map(Op::ClearGhosts),
        2 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
    ]
}

/// What the ops did, summed over every case, to show the run covers each path.
#[derive(Debug, Default, Clone, Copy)]
struct Coverage {
    steps: usize,
    appended: usize,
    replaced: usize,
    already_stored: usize,
    rejected: usize,
    erased: usize,
    deleted: usize,
    ghosts: usize,
    compactions: usize,
    reopens: usize,
    crashes: usize,
}

thread_local! {
    static COVERAGE: std::cell::Cell<Coverage> = std::cell::Cell::new(Coverage::default());
}

fn count(update: impl FnOnce(&mut Coverage)) {
    COVERAGE.with(|cell| {
        let mut coverage = cell.get();
        update(&mut coverage);
        cell.set(coverage);
    });
}

struct Harness {
    dir: tempfile::TempDir,
    disk: Db<DiskStore>,
    oracle: Db<MemStore>,
    /// The oracle as of the last flush: what a crash must leave.
    durable: MemStore,
    next: usize,
}

fn verdict<E: std::error::Error>(
    result: Result<Added, proto::db::AddError<E>>,
) -> Result<Added, String> {
    result.map_err(|err| err.reason())
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = DiskStore::create(dir.path()).expect("create store");
        Self {
            dir,
            disk: Db::new(store),
            oracle: Db::new(MemStore::new()),
            durable: MemStore::new(),
            next: 0,
        }
    }

    fn add(&mut self, msg: &Arc<Msg>) {
        let expected = verdict(self.oracle.add(Msg::clone(msg), None));
        let actual = verdict(self.disk.add(Msg::clone(msg), None));
        assert_eq!(actual, expected, "verdict of add");
        count(|coverage| match actual {
            Ok(Added::Appended(_)) => coverage.appended += 1,
            Ok(Added::ReplacedErased(_)) => coverage.replaced += 1,
            Ok(Added::AlreadyStored) => coverage.already_stored += 1,
            Err(_) => coverage.rejected += 1,
        });
    }

    fn reopen(&mut self) {
        let dir = self.dir.path().to_path_buf();
        // Replace the store first so the old one (and its lock) is dropped before reopening.
        let placeholder =
            Db::new(DiskStore::open_read_only(&dir, &Options::default()).expect("reader"));
        drop(std::mem::replace(&mut self.disk, placeholder));
        let store = DiskStore::open(&dir, &Options::default()).expect("reopen");
        assert_eq!(
            store.recovery().torn_tail_bytes,
            0,
            "a clean close leaves no torn tail"
        );
        self.disk = Db::new(store);
    }

    /// Most erase/delete/ghost targets are msgs added so far, so they hit stored msgs.
    fn target(&self, index: usize) -> usize {
        let added = self.next.max(1);
        if index < added * 4 {
            index % added
        } else {
            index
        }
    }

    fn apply(&mut self, op: &Op) {
        let msgs = &pool().msgs;
        let op = &match op {
            Op::Erase(index) => Op::Erase(self.target(*index)),
            Op::Delete(index) => Op::Delete(self.target(*index)),
            Op::EraseAndReadd(index) => Op::EraseAndReadd(self.target(*index)),
            Op::Ghost { tangle, msg, span } => Op::Ghost {
                tangle: *tangle,
                msg: self.target(*msg),
                span: *span,
            },
            other => other.clone(),
        };
        match op {
            Op::AddNext => {
                if let Some((_, msg)) = msgs.get(self.next) {
                    self.next += 1;
                    self.add(&Arc::clone(msg));
                }
            }
            Op::Add(index) => self.add(&Arc::clone(&msgs[*index].1)),
            Op::Erase(index) => {
                let id = msgs[*index].0;
                let expected = self.oracle.erase(&id).expect("mem");
                assert_eq!(self.disk.erase(&id).expect("disk erase"), expected, "erase");
                count(|coverage| coverage.erased += usize::from(expected));
            }
            Op::Delete(index) => {
                let id = msgs[*index].0;
                let expected = self.oracle.delete(&id).expect("mem");
                assert_eq!(
                    self.disk.delete(&id).expect("disk delete"),
                    expected,
                    "delete"
                );
                count(|coverage| coverage.deleted += usize::from(expected));
            }
            Op::EraseAndReadd(index) => {
                self.apply(&Op::Erase(*index));
                self.apply(&Op::Add(*index));
            }
            Op::Ghost { tangle, msg, span } => {
                let tangle = pool().tangles[*tangle];
                let (id, body) = &msgs[*msg];
                let depth = body.depth_in(id, &tangle).unwrap_or(0);
                self.oracle
                    .add_ghost(&tangle, *id, depth, *span)
                    .expect("mem");
                self.disk
                    .add_ghost(&tangle, *id, depth, *span)
                    .expect("disk ghost");
                count(|coverage| coverage.ghosts += 1);
            }
            Op::ClearGhosts(tangle) => {
                let tangle = pool().tangles[*tangle];
                let none = proto::store::Ghosts::new();
                self.oracle
                    .store_mut()
                    .set_ghosts(&tangle, &none)
                    .expect("mem");
                self.disk
                    .store_mut()
                    .set_ghosts(&tangle, &none)
                    .expect("disk ghosts");
            }
            Op::Flush => {
                self.disk.flush().expect("flush");
                self.durable = self.oracle.store().clone();
            }
            Op::Compact => {
                self.disk.store_mut().compact().expect("compact");
                self.oracle.store_mut().compact();
                count(|coverage| coverage.compactions += 1);
                self.durable = self.oracle.store().clone();
            }
            Op::Reopen => {
                self.disk.flush().expect("flush");
                self.durable = self.oracle.store().clone();
                self.reopen();
                self.oracle = Db::new(self.durable.clone());
                count(|coverage| coverage.reopens += 1);
            }
            Op::Crash => {
                count(|coverage| coverage.crashes += 1);
                self.reopen();
                self.oracle = Db::new(self.durable.clone());
            }
        }
    }

    fn check(&mut self, step: usize, op: &Op) {
        let context = format!("after step {step}: {op:?}");
        self.disk.store().check_invariants();
        self.disk.check_invariants().expect("disk");
        self.oracle.check_invariants().expect("mem");
        let tangles = &pool().tangles;
        assert_same_store(self.oracle.store(), self.disk.store(), tangles, &context);
        for (id, _) in &pool().msgs {
            assert_eq!(
                self.disk.record(id).expect("disk get"),
                self.oracle.record(id).expect("mem get"),
                "get {id} ({context})"
            );
        }
        for tangle in tangles {
            let expected: Vec<_> = self
                .oracle
                .tangle(tangle)
                .expect("mem")
                .topo_order()
                .copied()
                .collect();
            let actual: Vec<_> = self
                .disk
                .tangle(tangle)
                .expect("disk")
                .topo_order()
                .copied()
                .collect();
            assert_eq!(
                actual, expected,
                "topological order of {tangle} ({context})"
            );
        }
    }
}

fn run_case(ops: &[Op]) {
    let mut harness = Harness::new();
    for (step, op) in ops.iter().enumerate() {
        harness.apply(op);
        harness.check(step, op);
        count(|coverage| coverage.steps += 1);
    }
    // Whatever the sequence, a final flush and reopen show the same store.
    harness.apply(&Op::Reopen);
    harness.check(ops.len(), &Op::Reopen);
}

#[test]
fn disk_store_matches_mem_store() {
    let seed = crate::common::seed(0x5EED_0001);
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(CASES_DEFAULT);
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let strategy = proptest::collection::vec(op_strategy(), 1..=STEPS_MAX);
    let result = runner.run(&strategy, |ops| {
        run_case(&ops);
        Ok(())
    });
    if let Err(err) = result {
        panic!("model test failed (SEED={seed}): {err}");
    }
    let coverage = COVERAGE.with(std::cell::Cell::get);
    eprintln!("model test, {cases} cases (SEED={seed}): {coverage:?}");
    assert!(coverage.replaced > 0 && coverage.erased > 0 && coverage.deleted > 0);
    assert!(coverage.compactions > 0 && coverage.crashes > 0 && coverage.reopens > 0);
}
