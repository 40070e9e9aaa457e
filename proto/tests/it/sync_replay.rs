//! Replays of vectors/sync-trace.json (three pzp-sync 1.0.4 sessions) and vectors/bloom.json.
//!
//! Each peer's session is driven with exactly the objects its JS counterpart received, and
//! must send exactly what the JS peer sent: the same ranges and ID lists, byte-identical
//! blooms and framing (checked against the recorded muxrpc frame bodies), and the same msgs.
//! Then the same sessions run against each other in the two-peer harness, and the stores
//! must end as the JS peers' did.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proto::goals::Goal;
use proto::ids::{MsgId, TangleId};
use proto::msg::{DigestedMsg, Msg};
use proto::store::Store;
use proto::sync::bloom::{BloomFilter, ERROR_RATE, ItemHashes, SEED_DEFAULT};
use proto::sync::{
    self, Config, Input, Output, Payload, Reinitiation, Rounds, Session, SyncMsg, Time,
};
use proto::testing::{Pair, Peer, Side};
use serde_json::Value;

use crate::support::{load, msg, text};

struct Trace {
    value: Value,
    feed: TangleId,
    account: TangleId,
    bob_msgs: Vec<(MsgId, Msg)>,
}

impl Trace {
    fn load() -> Self {
        let value = load("sync-trace.json");
        let feed = MsgId::parse(text(&value, "bobPostsFeedID")).expect("feed id");
        let account = MsgId::parse(text(&value, "bobAccountID")).expect("account id");
        let bob_msgs = value["bobMsgs"]
            .as_array()
            .expect("bobMsgs")
            .iter()
            .map(|entry| {
                let id = MsgId::parse(text(entry, "id")).expect("id");
                let decoded = msg(&entry["msg"]);
                assert_eq!(decoded.id(), id);
                (id, decoded)
            })
            .collect();
        Self {
            value,
            feed,
            account,
            bob_msgs,
        }
    }

    /// A peer holding bob's first `count` msgs (account, moot, m1, m2…) and the goals given.
    fn peer(&self, count: usize, goals: &[(TangleId, Goal)]) -> Peer {
        let mut peer = Peer::new();
        for (_, bob_msg) in self.bob_msgs.iter().take(count) {
            peer.db
                .add(bob_msg.clone(), None)
                .expect("bob's msgs are valid");
        }
        for (tangle, goal) in goals {
            peer.set_goal(*tangle, *goal).expect("few goals");
        }
        peer
    }

    fn goals(&self, feed_goal: Goal) -> Vec<(TangleId, Goal)> {
        // Both peers set the feed's goal first, then the account's.
        vec![(self.feed, feed_goal), (self.account, Goal::All)]
    }

    /// Runs of consecutive objects received by one peer in a session: (receiver, objects).
    fn reads(&self, session: u64) -> Vec<(String, Vec<Value>)> {
        let mut reads: Vec<(String, Vec<Value>)> = Vec::new();
        for entry in self.value["syncMessages"].as_array().expect("syncMessages") {
            if entry["session"].as_u64() != Some(session) || entry["localTrigger"] == true {
                continue;
            }
            let receiver = text(entry, "receiver").to_owned();
            match reads.last_mut() {
                Some((last, objects)) if *last == receiver => objects.push(entry["data"].clone()),
                _ => reads.push((receiver, vec![entry["data"].clone()])),
            }
        }
        reads
    }

    /// The exact JSON bodies of every muxrpc frame of a session.
    fn frame_bodies(&self, session: u64) -> BTreeSet<String> {
        self.value["wireFrames"]
            .as_array()
            .expect("wireFrames")
            .iter()
            .filter(|frame| frame["session"].as_u64() == Some(session))
            .filter_map(|frame| frame["body"].as_str().map(str::to_owned))
            .collect()
    }
}

/// One peer's session driven by recorded inputs, applying its own effects.
struct Replayer {
    peer: Peer,
    session: Session,
    sent: Vec<SyncMsg>,
}

impl Replayer {
    fn new(peer: Peer, config: Config) -> Self {
        Self {
            peer,
            session: Session::new(config),
            sent: Vec::new(),
        }
    }

    fn input(&mut self, input: Input) -> Vec<(MsgId, Arc<Msg>)> {
        let mut outputs = Vec::new();
        let Ok(()) = self.session.handle(
            Time(0),
            input,
            &mut self.peer.db,
            &self.peer.goals,
            &mut outputs,
        );
        self.session.check_invariants();
        let mut added = Vec::new();
        for output in outputs {
            match output {
                Output::Send(sent) => self.sent.push(sent),
                Output::Commit { tangle, msgs } => {
                    let Ok(committed) =
                        sync::commit(&mut self.peer.db, &mut self.peer.index, &tangle, msgs);
                    added.extend(committed);
                }
                Output::PruneNewest { tangle, count } => {
                    let Ok(_) = sync::prune_newest(&mut self.peer.db, &tangle, count);
                }
                Output::Refused(refusal) => panic!("refused a recorded object: {refusal}"),
                Output::Close(reason) => panic!("closed: {reason}"),
                Output::Finished { .. } => {}
            }
        }
        added
    }

    /// One read: the objects, then one batch of what their commits added.
    fn read(&mut self, objects: &[Value]) {
        let mut added = Vec::new();
        for object in objects {
            added.extend(self.input(Input::Received(object.clone())));
        }
        if !added.is_empty() {
            let more = self.input(Input::LocalAdded {
                msgs: added,
                from_this_remote: true,
            });
            assert!(more.is_empty());
        }
    }
}

/// Checks that `sent` (our objects) equals `expected` (what the JS peer received from the
/// JS counterpart), tangle by tangle in order: byte-identical JSON for every object without
/// msgs (found among the recorded frame bodies), equal msgs otherwise.
fn assert_same_objects<M: AsRef<Msg>>(
    sent: &[SyncMsg<M>],
    expected: &[Value],
    frames: &BTreeSet<String>,
) {
    let mut ours: BTreeMap<TangleId, Vec<&SyncMsg<M>>> = BTreeMap::new();
    for object in sent {
        ours.entry(object.id).or_default().push(object);
    }
    let mut theirs: BTreeMap<TangleId, Vec<&Value>> = BTreeMap::new();
    for object in expected {
        let id = MsgId::parse(text(object, "id")).expect("id");
        theirs.entry(id).or_default().push(object);
    }
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "tangles"
    );
    for (tangle, objects) in &ours {
        let recorded = theirs.get(tangle).expect("same tangles");
        assert_eq!(objects.len(), recorded.len(), "object count for {tangle}");
        for (ours, recorded) in objects.iter().zip(recorded.iter()) {
            let json = ours.to_json();
            let reparsed: Value = serde_json::from_str(&json).expect("valid JSON");
            assert_eq!(&reparsed, *recorded, "object of phase {}", ours.phase);
            if ours.msgs().is_empty() {
                assert!(
                    frames.contains(&json),
                    "not byte-identical to any recorded frame: {json}"
                );
            } else if let Some(bloom) = ours.bloom() {
                let bloom_json = bloom.to_json();
                assert!(
                    frames.iter().any(|frame| frame.contains(&bloom_json)),
                    "bloom not byte-identical to a recorded one: {bloom_json}"
                );
            }
        }
    }
}

/// Replays one session side by side: `ours` is driven with what its JS counterpart's peer
/// received, and must send what the other JS peer received.
fn replay_side(
    trace: &Trace,
    session: u64,
    replayer: &mut Replayer,
    name: &str,
    initiates: bool,
) -> Vec<Value> {
    if initiates {
        let added = replayer.input(Input::Start);
        assert!(added.is_empty());
    }
    let mut expected = Vec::new();
    for (receiver, objects) in trace.reads(session) {
        if receiver == name {
            replayer.read(&objects);
        } else {
            expected.extend(objects);
        }
    }
    expected
}

fn texts(peer: &Peer) -> Vec<String> {
    let mut texts = Vec::new();
    peer.db
        .store()
        .scan(&mut |record| {
            if let Some(text) = record.msg.data.get("text").and_then(Value::as_str) {
                texts.push(text.to_owned());
            }
            std::ops::ControlFlow::Continue(())
        })
        .expect("memory store");
    texts
}

#[test]
fn bloom_vector_is_reproduced() {
    let vector = load("bloom.json");
    let size = vector["filterSize"].as_u64().expect("filterSize");
    let mut filter = BloomFilter::create(2 * size, ERROR_RATE);
    for item in vector["perItem"].as_array().expect("perItem") {
        let item_text = text(item, "item");
        let hashes = ItemHashes::of(item_text.as_bytes(), SEED_DEFAULT);
        assert_eq!(Some(u64::from(hashes.first)), item["h1"].as_u64());
        assert_eq!(Some(u64::from(hashes.second)), item["h2"].as_u64());
        let indexes: Vec<u64> = filter.indexes(hashes).collect();
        let expected: Vec<u64> = item["indexes"]
            .as_array()
            .expect("indexes")
            .iter()
            .map(|index| index.as_u64().expect("index"))
            .collect();
        assert_eq!(indexes, expected, "{item_text}");
        filter.add(item_text.as_bytes());
    }
    // The vector file holds the filter as a JSON value; the byte order of its keys is
    // checked against the recorded frames in the session replays.
    let json = filter.to_json();
    assert!(json.starts_with("{\"type\":\"BloomFilter\",\"_size\":480,\"_nbHashes\":17,"));
    assert_eq!(
        serde_json::from_str::<Value>(&json).expect("valid JSON"),
        vector["json"]
    );
    let imported = BloomFilter::from_json(&vector["json"]).expect("the reference's filter");
    assert_eq!(imported, filter);
    for probe in vector["probes"].as_array().expect("probes") {
        let item_text = text(probe, "item");
        assert_eq!(
            Some(filter.has(item_text.as_bytes())),
            probe["has"].as_bool()
        );
        let indexes: Vec<u64> = filter
            .indexes(ItemHashes::of(item_text.as_bytes(), SEED_DEFAULT))
            .collect();
        let expected: Vec<u64> = probe["indexes"]
            .as_array()
            .expect("indexes")
            .iter()
            .map(|index| index.as_u64().expect("index"))
            .collect();
        assert_eq!(indexes, expected);
    }
    for row in vector["createSizes"].as_array().expect("createSizes") {
        let created = BloomFilter::create(row["nbItems"].as_u64().expect("nbItems"), ERROR_RATE);
        assert_eq!(Some(created.size()), row["size"].as_u64());
        assert_eq!(Some(created.hash_count()), row["nbHashes"].as_u64());
        assert_eq!(
            Some(u64::try_from(created.bytes().len()).expect("small")),
            row["bitsetBytes"].as_u64()
        );
    }
}

/// Both re-initiation modes: the reference's, and ours (which sends the same objects in
/// these sessions: nothing in them is re-initiated). Both run all bloom rounds, as the
/// reference does ([`Rounds::Adaptive`] has its own tests below).
const MODES: [Reinitiation; 2] = [Reinitiation::Reference, Reinitiation::Targeted];

#[test]
fn each_side_sends_what_the_reference_sent() {
    for reinitiation in MODES {
        each_side_sends_what_the_reference_sent_in(Config {
            reinitiation,
            rounds: Rounds::All,
            ..Config::default()
        });
    }
}

fn each_side_sends_what_the_reference_sent_in(config: Config) {
    let trace = Trace::load();
    let all = trace.goals(Goal::All);

    // Session 1: bob (dialer) has his account, the moot and m1..m5; alice has nothing.
    let frames = trace.frame_bodies(1);
    let mut bob = Replayer::new(trace.peer(7, &all), config);
    let expected = replay_side(&trace, 1, &mut bob, "bob", true);
    assert_same_objects(&bob.sent, &expected, &frames);
    let mut alice = Replayer::new(trace.peer(0, &all), config);
    let expected = replay_side(&trace, 1, &mut alice, "alice-sync", false);
    assert_same_objects(&alice.sent, &expected, &frames);
    assert_eq!(texts(&alice.peer), ["m1", "m2", "m3", "m4", "m5"]);

    // Session 2: bob adds m6..m8 and dials again: all nine phases; then m9 goes realtime.
    let frames = trace.frame_bodies(2);
    let mut bob = Replayer::new(trace.peer(10, &all), config);
    let expected = replay_side(&trace, 2, &mut bob, "bob", true);
    let (m9_id, m9) = trace.bob_msgs.get(10).expect("m9").clone();
    bob.peer.db.add(m9, None).expect("m9 is valid");
    let stored = bob.peer.db.get(&m9_id).expect("memory").expect("stored");
    let more = bob.input(Input::LocalAdded {
        msgs: vec![(m9_id, stored)],
        from_this_remote: false,
    });
    assert!(more.is_empty());
    // What alice received from bob includes the realtime push, recorded last.
    let mut alice = Replayer::new(alice.peer, config);
    let alice_expected = replay_side(&trace, 2, &mut alice, "alice-sync", false);
    assert_same_objects(&alice.sent, &alice_expected, &frames);
    assert_same_objects(&bob.sent, &expected, &frames);
    assert_eq!(texts(&alice.peer), ALICE_AFTER_M9);

    // Session 3: carol (newest-3) dials bob, over-fetches [1, 9], then prunes.
    let frames = trace.frame_bodies(3);
    let newest = trace.goals(Goal::Newest(3));
    let mut carol = Replayer::new(trace.peer(0, &newest), config);
    let expected = replay_side(&trace, 3, &mut carol, "carol", true);
    assert_same_objects(&carol.sent, &expected, &frames);
    let mut bob = Replayer::new(trace.peer(11, &all), config);
    let expected = replay_side(&trace, 3, &mut bob, "bob", false);
    assert_same_objects(&bob.sent, &expected, &frames);
    assert_records(&trace, &carol.peer);
}

/// Carol's records, in log order, as `carolRecordsAfter` lists them.
fn assert_records(trace: &Trace, carol: &Peer) {
    let expected = trace.value["sessions"]["3"]["carolRecordsAfter"]
        .as_array()
        .expect("carolRecordsAfter");
    let mut records = Vec::new();
    carol
        .db
        .store()
        .scan(&mut |record| {
            records.push((record.id, Arc::clone(&record.msg)));
            std::ops::ControlFlow::Continue(())
        })
        .expect("memory store");
    assert_eq!(records.len(), expected.len());
    for ((id, stored), expected) in records.iter().zip(expected) {
        assert_eq!(id.as_str(), text(expected, "id"));
        assert_eq!(stored.data, expected["data"], "data of {id}");
        assert_eq!(stored.metadata.account.as_str(), text(expected, "account"));
        let depth = stored
            .metadata
            .tangles
            .get(&trace.feed)
            .map(|link| link.depth)
            .or((*id == trace.feed).then_some(0));
        assert_eq!(depth, expected["depth"].as_u64(), "depth of {id}");
    }
}

/// The objects of a harness transcript sent by `from`, as parsed JSON.
/// What alice holds once session 2 is over and m9 came in realtime.
const ALICE_AFTER_M9: [&str; 9] = [
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "m8",
    "m9 (realtime)",
];

/// Bob (the dialer of session 2) adds m9 and pushes it on the open session.
fn bob_pushes_m9(pair: &mut Pair, trace: &Trace) {
    let (m9_id, m9) = trace.bob_msgs.get(10).expect("m9").clone();
    let bob_db = &mut pair.peer_mut(Side::Dialer).db;
    bob_db.add(m9, None).expect("valid");
    let stored = bob_db.get(&m9_id).expect("memory").expect("stored");
    pair.added(Side::Dialer, vec![(m9_id, stored)])
        .expect("push");
    pair.run().expect("quiescent");
}

/// A sync object as received: its msgs with their digests.
type Decoded = SyncMsg<DigestedMsg>;

fn transcript_objects(pair: &Pair, from: Side) -> Vec<Decoded> {
    pair.transcript
        .as_ref()
        .expect("recording")
        .iter()
        .filter(|delivery| delivery.from == from)
        .map(|delivery| {
            let value: Value = serde_json::from_str(&delivery.json).expect("JSON");
            sync::wire::decode(&value).expect("valid object").msg
        })
        .collect()
}

/// The reference's protocol, all bloom rounds.
const REPLAY: Config = Config {
    bloom_sizing: sync::BloomSizing::Scaled,
    reinitiation: Reinitiation::Targeted,
    rounds: Rounds::All,
};

#[test]
fn two_sessions_reproduce_the_recorded_sessions() {
    let trace = Trace::load();
    let all = trace.goals(Goal::All);
    let expected_by = |session: u64, receiver: &str| -> Vec<Value> {
        trace
            .reads(session)
            .into_iter()
            .filter(|(name, _)| name == receiver)
            .flat_map(|(_, objects)| objects)
            .collect()
    };

    // Session 1.
    let mut pair = Pair::new(trace.peer(7, &all), trace.peer(0, &all), REPLAY);
    pair.transcript = Some(Vec::new());
    pair.start().expect("start");
    let metrics = pair.run().expect("quiescent");
    let frames = trace.frame_bodies(1);
    assert_same_objects(
        &transcript_objects(&pair, Side::Dialer),
        &expected_by(1, "alice-sync"),
        &frames,
    );
    assert_same_objects(
        &transcript_objects(&pair, Side::Responder),
        &expected_by(1, "bob"),
        &frames,
    );
    assert_eq!(metrics.objects, 6);
    assert_eq!(metrics.one_way_trips, 3);
    let (_, alice) = pair.into_peers();
    assert_eq!(texts(&alice), ["m1", "m2", "m3", "m4", "m5"]);

    // Session 2, then m9 in realtime.
    let mut pair = Pair::new(trace.peer(10, &all), alice, REPLAY);
    pair.transcript = Some(Vec::new());
    pair.start().expect("start");
    let metrics = pair.run().expect("quiescent");
    assert_eq!(metrics.objects, 18);
    assert_eq!(metrics.one_way_trips, 9);
    assert_eq!(metrics.added_at_responder, 3);
    bob_pushes_m9(&mut pair, &trace);
    let frames = trace.frame_bodies(2);
    assert_same_objects(
        &transcript_objects(&pair, Side::Dialer),
        &expected_by(2, "alice-sync"),
        &frames,
    );
    assert_same_objects(
        &transcript_objects(&pair, Side::Responder),
        &expected_by(2, "bob"),
        &frames,
    );
    assert_eq!(texts(pair.peer(Side::Responder)), ALICE_AFTER_M9);

    // Session 3.
    let newest = trace.goals(Goal::Newest(3));
    let mut pair = Pair::new(trace.peer(0, &newest), trace.peer(11, &all), REPLAY);
    pair.transcript = Some(Vec::new());
    pair.start().expect("start");
    let metrics = pair.run().expect("quiescent");
    assert_eq!(metrics.objects, 8);
    let frames = trace.frame_bodies(3);
    assert_same_objects(
        &transcript_objects(&pair, Side::Dialer),
        &expected_by(3, "bob"),
        &frames,
    );
    assert_same_objects(
        &transcript_objects(&pair, Side::Responder),
        &expected_by(3, "carol"),
        &frames,
    );
    assert_records(&trace, pair.peer(Side::Dialer));
}

#[test]
fn payload_phase_pairs_are_consistent() {
    let trace = Trace::load();
    for entry in trace.value["syncMessages"]
        .as_array()
        .expect("syncMessages")
    {
        if entry["localTrigger"] == true {
            continue;
        }
        let received = sync::wire::decode(&entry["data"]).expect("every recorded object passes");
        assert!(received.dropped.is_empty());
        assert!(received.msg.is_consistent());
        if let Payload::Msgs(msgs) = &received.msg.payload {
            assert!(msgs.iter().all(|msg| msg.msg().metadata.domain.len() >= 3));
        }
    }
}

/// What bob's session (dialer, holding m1..m8, goal `all`) answers to a phase 4 of his feed
/// that lists nothing and carries `bloom`, after alice's phase 2 said she has [1, 5].
fn initiator_answer_to_phase_4(config: Config, bloom: &BloomFilter) -> u8 {
    let trace = Trace::load();
    let mut bob = Replayer::new(trace.peer(10, &trace.goals(Goal::All)), config);
    bob.input(Input::Start);
    let feed = trace.feed.as_str();
    let phase_2 = serde_json::json!({"id": feed, "phase": 2,
        "payload": {"haveRange": [1, 5], "wantRange": [1, 8]}});
    bob.input(Input::Received(phase_2));
    let phase_4 = serde_json::json!({"id": feed, "phase": 4,
        "payload": {"bloom": bloom.to_value(), "msgIDs": []}});
    bob.sent.clear();
    bob.input(Input::Received(phase_4));
    let [answer] = bob.sent.as_slice() else {
        panic!("one answer, got {:?}", bob.sent);
    };
    assert_eq!(answer.id, trace.feed);
    answer.phase
}

#[test]
fn a_sparse_round_0_bloom_is_answered_with_phase_8() {
    // Sized as the reference sizes alice's round-0 filter over [1, 5] (estimate 10, so 20
    // items at 10⁻⁵), holding her five msgs: about a sixth of its bits are set.
    let mut sparse = BloomFilter::create(20, ERROR_RATE);
    for index in 0..5u8 {
        sparse.add(&[index]);
    }
    assert_eq!(
        initiator_answer_to_phase_4(Config::default(), &sparse),
        8,
        "rounds 1 and 2 skipped"
    );
    let all_rounds = Config {
        rounds: Rounds::All,
        ..Config::default()
    };
    assert_eq!(initiator_answer_to_phase_4(all_rounds, &sparse), 5);
    let reference = Config {
        reinitiation: Reinitiation::Reference,
        ..Config::default()
    };
    assert_eq!(initiator_answer_to_phase_4(reference, &sparse), 5);
}

#[test]
fn a_dense_round_0_bloom_runs_all_rounds() {
    // Filled to its design capacity: a false positive per 10⁵ probes, above the threshold.
    let mut dense = BloomFilter::create(20, ERROR_RATE);
    for index in 0..20u8 {
        dense.add(&[index]);
    }
    assert_eq!(initiator_answer_to_phase_4(Config::default(), &dense), 5);
}

/// The phases of the objects of `tangle` in a harness transcript, both ways, in order.
fn phases_of(pair: &Pair, tangle: &TangleId) -> Vec<u8> {
    pair.transcript
        .as_ref()
        .expect("recording")
        .iter()
        .map(|delivery| {
            let value: Value = serde_json::from_str(&delivery.json).expect("JSON");
            sync::wire::decode(&value).expect("valid object").msg
        })
        .filter(|object| object.id == *tangle)
        .map(|object| object.phase)
        .collect()
}

/// Session 2 of the recorded trace with [`Rounds::Adaptive`]: bob dials alice, who misses
/// m6..m8. Phases 1, 2, 3, 4, 8, 9 for each tangle; alice's objects before bob's phase 8
/// are the reference's; she gets m6..m8; both sides push the feed in realtime afterwards.
#[test]
fn adaptive_rounds_sync_session_2_in_six_objects_per_tangle() {
    let trace = Trace::load();
    let all = trace.goals(Goal::All);
    let mut first = Pair::new(trace.peer(7, &all), trace.peer(0, &all), Config::default());
    first.start().expect("start");
    first.run().expect("quiescent");
    let (_, alice) = first.into_peers();

    let mut pair = Pair::new(trace.peer(10, &all), alice, Config::default());
    pair.transcript = Some(Vec::new());
    pair.start().expect("start");
    let metrics = pair.run().expect("quiescent");
    assert_eq!(phases_of(&pair, &trace.feed), [1, 2, 3, 4, 8, 9]);
    assert_eq!(phases_of(&pair, &trace.account), [1, 2, 3, 4, 8, 9]);
    assert_eq!(metrics.objects, 12, "18 with all rounds");
    assert_eq!(metrics.added_at_responder, 3);
    assert_eq!(pair.session(Side::Dialer).stats().rounds_skipped, 2);
    let expected = trace
        .reads(2)
        .into_iter()
        .filter(|(name, _)| name == "bob")
        .flat_map(|(_, objects)| objects)
        .filter(|object| object["phase"].as_u64() < Some(5))
        .collect::<Vec<Value>>();
    let alice_sent: Vec<Decoded> = transcript_objects(&pair, Side::Responder)
        .into_iter()
        .filter(|object| object.phase < 5)
        .collect();
    assert_same_objects(&alice_sent, &expected, &trace.frame_bodies(2));
    for side in [Side::Dialer, Side::Responder] {
        assert!(
            pair.session(side)
                .realtime()
                .any(|tangle| *tangle == trace.feed),
            "{side:?} pushes the feed in realtime"
        );
    }

    bob_pushes_m9(&mut pair, &trace);
    assert_eq!(texts(pair.peer(Side::Responder)), ALICE_AFTER_M9);
}
