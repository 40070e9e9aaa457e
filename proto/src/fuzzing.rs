//! Entry points for fuzzing: bytes from a fuzzer go through the same path as msgs from a
//! remote peer, and every property that must hold for accepted msgs is asserted.
//!
//! Used by the cargo-fuzz targets in `fuzz/` and by a seeded smoke test that runs on stable
//! in CI (`proto/tests/it/fuzz_smoke.rs`).

use crate::db::Db;
use crate::ingest::{self, Verdict};
use crate::msg;
use crate::store::{MemStore, Store};

/// A database holding the msgs of a JSON array (e.g. `vectors/msgs-db.json`'s `msgs[].msg`),
/// so that fuzzed msgs meet real tangles and accounts.
#[must_use]
pub fn seeded_db(msgs: &[serde_json::Value]) -> Db<MemStore> {
    let mut db = Db::new(MemStore::new());
    for value in msgs {
        if let Ok(msg) = msg::decode(value) {
            let _ = db.add(msg, None);
        }
    }
    db
}

/// Decodes `data` as a msg and adds it to `db`. Never panics on any input; panics (a fuzz
/// finding) only if an accepted msg breaks an invariant: it must be stored, and its JSON must
/// decode back to the same msg with the same ID.
pub fn decode_and_add(db: &mut Db<MemStore>, data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let before = db.store().len();
    let verdict = match ingest::add_json(db, text) {
        Ok(verdict) => verdict,
        Err(never) => match never {},
    };
    let Verdict::Ok(id) = verdict else {
        assert_eq!(db.store().len(), before, "a rejected msg changed the store");
        return;
    };
    let stored = match db.get(&id) {
        Ok(Some(stored)) => stored,
        Ok(None) => panic!("accepted msg {id} is not stored"),
        Err(never) => match never {},
    };
    let json = stored.to_json();
    let again = msg::decode_str(&json)
        .unwrap_or_else(|err| panic!("stored msg does not decode: {err}\n{json}"));
    assert_eq!(again.id(), id, "ID changed through a JSON round trip");
    assert_eq!(*stored, again, "msg changed through a JSON round trip");
}

/// Decodes `data` as one sync data object ([`crate::sync::wire::decode`]). Never panics;
/// panics (a finding) only if an accepted object breaks an invariant: its phase matches its
/// payload, and the JSON we would send for it decodes back to the same object, with no msg
/// dropped.
pub fn sync_wire_decode(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(received) = crate::sync::wire::decode(&value) else {
        return;
    };
    assert!(received.msg.is_consistent(), "phase and payload disagree");
    let json = received.msg.to_json();
    let again: serde_json::Value = serde_json::from_str(&json)
        .unwrap_or_else(|err| panic!("our JSON of an accepted object is not JSON: {err}\n{json}"));
    let decoded = crate::sync::wire::decode(&again)
        .unwrap_or_else(|err| panic!("our JSON of an accepted object is refused: {err}\n{json}"));
    assert!(
        decoded.dropped.is_empty(),
        "a kept msg is dropped on the way back"
    );
    assert_eq!(
        decoded.msg, received.msg,
        "object changed through a JSON round trip"
    );
}

/// A peer for [`sync_session_receive`]: a database (seeded with `msgs`), its sync index,
/// and goals on every tangle the msgs root or list.
#[derive(Debug, Clone)]
pub struct SyncTarget {
    /// The database.
    pub db: Db<MemStore>,
    /// Goals on its tangles.
    pub goals: crate::goals::Goals,
}

impl SyncTarget {
    /// A peer holding `msgs` (those that add), wanting every tangle they form.
    #[must_use]
    pub fn new(msgs: &[serde_json::Value]) -> Self {
        let db = seeded_db(msgs);
        let mut goals = crate::goals::Goals::new();
        let mut tangles = std::collections::BTreeSet::new();
        let mut visit = |record: &crate::store::Record| {
            tangles.insert(record.id);
            tangles.extend(record.msg.metadata.tangles.keys().copied());
            std::ops::ControlFlow::Continue(())
        };
        let Ok(()) = db.store().scan(&mut visit);
        for tangle in tangles {
            let _ = goals.set(tangle, crate::goals::Goal::All);
        }
        Self { db, goals }
    }
}

/// Feeds `data`, read as JSON lines (one sync object per line; a line that is not JSON is
/// skipped), to a fresh responder session over `target` (a copy: each input starts from the
/// same state), through [`crate::sync::Sessions`] as a node drives it. Commits are applied as
/// a node applies them, and what they add (or refuse) is fed back. Never panics; panics (a
/// finding) only if the sessions break one of their bounds or consistency rules
/// ([`crate::sync::Sessions::check_invariants`]) or send an object whose phase and payload
/// disagree.
pub fn sync_session_receive(target: &SyncTarget, data: &[u8]) {
    use crate::sync::{Config, Event, IndexedDb, Output, Sessions, SyncIndex, Time};
    const KEY: u8 = 0;
    let mut db = Db::new(target.db.store().clone());
    let mut index = SyncIndex::new();
    let mut sessions: Sessions<u8> = Sessions::new(Config::default());
    let mut events = std::collections::VecDeque::from([Event::Opened {
        key: KEY,
        initiate: false,
    }]);
    let lines = data.split(|byte| *byte == b'\n');
    for (tick, line) in (0u64..).zip(lines) {
        if let Ok(object) = serde_json::from_slice::<serde_json::Value>(line) {
            events.push_back(Event::Received { key: KEY, object });
        }
        // Each event, then what applying its commits makes happen, before the next line.
        while let Some(event) = events.pop_front() {
            let mut out = Vec::new();
            let mut store = IndexedDb::new(&mut db, &mut index);
            let Ok(()) = sessions.handle(Time(tick), event, &mut store, &target.goals, &mut out);
            sessions.check_invariants();
            for (key, output) in out {
                match output {
                    Output::Send(object) => {
                        assert!(object.is_consistent(), "sent an inconsistent object");
                    }
                    Output::Commit { tangle, msgs } => {
                        let Ok(crate::sync::Committed { added, refused, .. }) =
                            crate::sync::commit_with(
                                &mut db,
                                &mut index,
                                &tangle,
                                msgs,
                                &mut crate::sync::AddShared,
                                &mut (),
                            );
                        // As a node: the refusal first, the store's announcement after.
                        if refused > 0 {
                            events.push_back(Event::CommitRefused { key, tangle });
                        }
                        if !added.is_empty() {
                            events.push_back(Event::LocalAdded {
                                msgs: added,
                                origin: Some(key),
                            });
                        }
                    }
                    _ => {}
                }
            }
        }
        if sessions.is_empty() {
            break;
        }
    }
}
