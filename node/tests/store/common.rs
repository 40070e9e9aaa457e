//! Shared fixtures: msgs made with `Db::publish` over `MemStore` (byte-identical to the
//! reference's, as `proto/tests/it/vectors.rs` proves), and store comparisons.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use proto::db::Db;
use proto::ids::{MsgId, TangleId};
use proto::keys::Keypair;
use proto::msg::Msg;
use proto::store::{MemStore, Record, Store};
use serde_json::json;

/// Msgs in an order `Db::add` accepts, and the tangles they form.
#[derive(Debug)]
pub struct Pool {
    /// `(id, msg)` in publish order.
    pub msgs: Vec<(MsgId, Arc<Msg>)>,
    /// Every tangle any msg roots or lists.
    pub tangles: Vec<TangleId>,
}

/// Publishes `count` msgs on one feed of a fresh account (nonce fixed), returning every
/// stored msg (account root, moot, feed msgs) in receive order as JSON lines.
pub fn feed_lines(seed: &str, domain: &str, count: usize) -> Vec<String> {
    let keypair = Keypair::from_string_seed(seed);
    let mut db = Db::new(MemStore::new());
    let account = db
        .create_account(&keypair, "account", seed)
        .expect("account root");
    for index in 0..count {
        db.publish(
            &keypair,
            &account,
            domain,
            json!({"text": format!("msg {index}")}),
            &[],
        )
        .expect("publish");
    }
    records_of(db.store())
        .into_iter()
        .map(|record| record.msg.to_json())
        .collect()
}

/// The small pool the model test draws from: two accounts, three feeds, a msg in two
/// tangles, and msgs whose data (`{}`) is shorter than `null`.
pub fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let alice = Keypair::from_string_seed("alice");
        let bob = Keypair::from_string_seed("bob");
        let mut db = Db::new(MemStore::new());
        let alice_account = db
            .create_account(&alice, "account", "alice")
            .expect("alice");
        let bob_account = db.create_account(&bob, "account", "bob").expect("bob");
        let mut first_post = None;
        for index in 0..8 {
            let id = db
                .publish(
                    &alice,
                    &alice_account,
                    "post",
                    json!({"text": format!("a{index}")}),
                    &[],
                )
                .expect("alice post");
            first_post.get_or_insert(id);
        }
        let thread = first_post.expect("alice posted");
        for index in 0..5 {
            db.publish(
                &bob,
                &bob_account,
                "post",
                json!({"text": format!("b{index}")}),
                &[thread],
            )
            .expect("bob reply");
        }
        for _ in 0..3 {
            db.publish(&alice, &alice_account, "tiny", json!({}), &[])
                .expect("tiny");
        }
        let msgs: Vec<(MsgId, Arc<Msg>)> = records_of(db.store())
            .into_iter()
            .map(|record| (record.id, record.msg))
            .collect();
        let mut tangles = BTreeSet::new();
        for (id, msg) in &msgs {
            if msg.metadata.tangles.is_empty() {
                tangles.insert(*id);
            }
            tangles.extend(msg.metadata.tangles.keys().copied());
        }
        Pool {
            msgs,
            tangles: tangles.into_iter().collect(),
        }
    })
}

/// Every record in receive order.
pub fn records_of<S: Store>(store: &S) -> Vec<Record>
where
    S::Error: std::fmt::Debug,
{
    let mut records = Vec::new();
    store
        .scan(&mut |record| {
            records.push(record.clone());
            ControlFlow::Continue(())
        })
        .expect("scan");
    records
}

/// Asserts that two stores hold the same records, tangles, ghosts and stats.
pub fn assert_same_store<A: Store, B: Store>(
    expected: &A,
    actual: &B,
    tangles: &[TangleId],
    context: &str,
) where
    A::Error: std::fmt::Debug,
    B::Error: std::fmt::Debug,
{
    assert_eq!(
        records_of(actual),
        records_of(expected),
        "records ({context})"
    );
    assert_eq!(actual.len(), expected.len(), "len ({context})");
    // `get_metadata` first, while the decoded-msg cache may not hold the msg (always so after
    // a reopen or a compaction): the metadata-only decode must agree with the full one.
    for record in records_of(expected) {
        let stored = actual
            .get_metadata(&record.id)
            .expect("get_metadata")
            .unwrap_or_else(|| panic!("get_metadata {} ({context}): missing", record.id));
        assert_eq!(
            (stored.metadata(), stored.has_data()),
            (&record.msg.metadata, record.msg.has_data()),
            "get_metadata {} ({context})",
            record.id
        );
    }
    // `get` twice: the disk store's second answer comes from its decoded-msg cache, which
    // must never serve a msg erased, replaced, deleted or moved by compaction since.
    for record in records_of(expected) {
        for _ in 0..2 {
            assert_eq!(
                actual.get(&record.id).expect("get"),
                Some(record.clone()),
                "get {} ({context})",
                record.id
            );
        }
    }
    assert_eq!(actual.stats(), expected.stats(), "stats ({context})");
    for tangle in tangles {
        let mut expected_members = expected.tangle_members(tangle).expect("members");
        let mut actual_members = actual.tangle_members(tangle).expect("members");
        expected_members.sort();
        actual_members.sort();
        assert_eq!(
            actual_members, expected_members,
            "members of {tangle} ({context})"
        );
        assert_eq!(
            actual.ghosts(tangle).expect("ghosts"),
            expected.ghosts(tangle).expect("ghosts"),
            "ghosts of {tangle} ({context})"
        );
    }
    assert_eq!(
        actual.ghost_tangles().expect("ghost tangles"),
        expected.ghost_tangles().expect("ghost tangles"),
        "ghost tangles ({context})"
    );
}

/// The `ppppp` binary.
pub fn ppppp() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_ppppp"))
}

/// Writes `lines` to `path`, one per line.
pub fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).expect("write fixture");
}

/// A seed from `SEED` (decimal), else `default`: failures print it so a run can be repeated.
pub fn seed(default: u64) -> u64 {
    std::env::var("SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

/// A count from the environment variable `name`, else `default` (heavier runs set it).
pub fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}
