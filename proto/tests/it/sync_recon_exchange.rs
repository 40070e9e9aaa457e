//! `sync.reconcile`'s per-tangle exchange (`proto::sync::recon::Exchange`) between two
//! in-memory peers: every scenario is run twice from the same two stores, once over pzp-sync's
//! session (`proto::testing::Pair`) and once over the exchange
//! (`proto::testing::recon::ReconPair`), and both peers must end holding exactly the same
//! (msgs, data or not, ghosts). Then hostile frames, each refused by its rule's name.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use proto::account;
use proto::db::Db;
use proto::gc;
use proto::goals::{Goal, Goals};
use proto::ids::{AccountId, MsgId, TangleId};
use proto::keys::Keypair;
use proto::msg::{self, Msg};
use proto::set;
use proto::store::{MemStore, Store};
use proto::sync::recon::exchange::{Input, Output, Refusal};
use proto::sync::recon::frame::{self, Frame, ReconFrame};
use proto::sync::recon::{self, Incoming};
use proto::sync::recon::{
    DecodeError, Exchange, FrameError, IDLIST_ITEMS_ACCEPTED_MAX, MESSAGE_BASE64_MAX,
    RECONCILE_FRAME_BYTES_MAX, RECONCILE_RANGES_MAX, RECONCILE_ROUNDS_MAX, ReconcileError, Side,
    VERSION,
};
use proto::sync::wire::{MSG_IDS_PER_PAYLOAD_MAX, WireError};
use proto::sync::{Config, IndexedDb, Time};
use proto::tangle::DepthRange;
use proto::testing::recon::ReconPair;
use proto::testing::{Metrics, Pair, Peer};
use serde_json::{Value, json};

const POST: &str = "post";
const FOLLOWS: &str = "follows";

/// A peer's holdings: every stored msg with whether it has data, and every ghost.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Holdings {
    msgs: BTreeSet<(MsgId, bool)>,
    ghosts: BTreeSet<(TangleId, MsgId)>,
}

pub(crate) fn holdings(peer: &Peer, tangles: &[TangleId]) -> Holdings {
    let mut msgs = BTreeSet::new();
    let Ok(()) = peer.db.store().scan(&mut |record| {
        msgs.insert((record.id, record.msg.has_data()));
        ControlFlow::Continue(())
    });
    let mut ghosts = BTreeSet::new();
    for tangle in tangles {
        let Ok(found) = peer.db.ghosts(tangle);
        ghosts.extend(found.into_keys().map(|id| (*tangle, id)));
    }
    Holdings { msgs, ghosts }
}

/// Runs pzp-sync and the exchange from the same stores; asserts both peers end the same and
/// returns (pzp-sync's metrics, the exchange's, the exchange's pair).
fn compare(dialer: &Peer, responder: &Peer, tangles: &[TangleId]) -> (Metrics, Metrics, ReconPair) {
    let mut pzp = Pair::new(dialer.clone(), responder.clone(), Config::default());
    pzp.start().expect("start");
    let pzp_metrics = pzp.run().expect("pzp-sync ends");
    assert_eq!(pzp_metrics.refused, 0);
    let mut recon = ReconPair::new(dialer.clone(), responder.clone());
    recon.start().expect("start");
    let recon_metrics = recon.run().expect("the exchange ends");
    assert_eq!(
        recon.refusals,
        [Vec::new(), Vec::new()],
        "honest peers refuse nothing"
    );
    assert!(
        recon_metrics.msgs_carried <= pzp_metrics.msgs_carried,
        "no msg pzp-sync would not send: {} against {}",
        recon_metrics.msgs_carried,
        pzp_metrics.msgs_carried
    );
    let (pzp_dialer, pzp_responder) = pzp.into_peers();
    let (recon_dialer, recon_responder) = recon.clone().into_peers();
    assert_eq!(
        holdings(&recon_dialer, tangles),
        holdings(&pzp_dialer, tangles),
        "the dialer ends as with pzp-sync"
    );
    assert_eq!(
        holdings(&recon_responder, tangles),
        holdings(&pzp_responder, tangles),
        "the responder ends as with pzp-sync"
    );
    (pzp_metrics, recon_metrics, recon)
}

/// One author's feed: account root, moot, `posts` posts, in publish order.
struct Feed {
    account: AccountId,
    feed: TangleId,
    msgs: Vec<Msg>,
}

impl Feed {
    fn build(posts: usize) -> Self {
        let keypair = Keypair::from_seed(&[3; 32]);
        let mut db = Db::new(MemStore::new());
        let account = db
            .create_account(&keypair, "account", "recon")
            .expect("account");
        let feed = db.init_feed(&keypair, &account, POST).expect("feed");
        let mut ids = vec![account, feed];
        for index in 0..posts {
            let data = json!({"text": format!("post {index}, with some words in it")});
            ids.push(
                db.publish(&keypair, &account, POST, data, &[])
                    .expect("publish"),
            );
        }
        let msgs = ids
            .iter()
            .map(|id| Arc::unwrap_or_clone(db.get(id).expect("memory").expect("stored")))
            .collect();
        Self {
            account,
            feed,
            msgs,
        }
    }

    /// A peer holding the first `count` msgs with `goal` on the feed and `all` on the account.
    fn peer(&self, count: usize, goal: Goal) -> Peer {
        let mut peer = Peer::new();
        for msg in self.msgs.iter().take(count) {
            peer.add(msg.clone(), None).expect("valid");
        }
        peer.set_goal(self.feed, goal).expect("goal");
        peer.set_goal(self.account, Goal::All).expect("goal");
        peer
    }

    fn tangles(&self) -> [TangleId; 2] {
        [self.feed, self.account]
    }
}

#[test]
fn equal_sets_move_no_msg_and_few_bytes() {
    let world = Feed::build(50);
    let peer = world.peer(52, Goal::All);
    let (_, metrics, _) = compare(&peer, &peer, &world.tangles());
    assert_eq!((metrics.msgs_carried, metrics.added_at_dialer), (0, 0));
    // Per tangle: open, ranges, recon, recon (all Skip), done, done.
    assert_eq!(metrics.objects, 12);
    assert!(metrics.bytes < 2_000, "{} bytes", metrics.bytes);
}

#[test]
fn hundred_new_on_ten_thousand_in_both_directions() {
    let world = Feed::build(10_100);
    let behind = world.peer(10_002, Goal::All);
    let ahead = world.peer(10_102, Goal::All);
    let (pzp, recon, _) = compare(&behind, &ahead, &world.tangles());
    assert_eq!(recon.added_at_dialer, 100);
    assert_eq!(recon.msg_bytes, pzp.msg_bytes, "the same msgs cross");
    assert!(
        recon.overhead_bytes() * 4 <= recon.msg_bytes,
        "overhead {} of {} msg bytes",
        recon.overhead_bytes(),
        recon.msg_bytes
    );
    let (_, recon, _) = compare(&ahead, &behind, &world.tangles());
    assert_eq!(recon.added_at_responder, 100);
    assert!(recon.overhead_bytes() * 4 <= recon.msg_bytes);
}

#[test]
fn an_empty_side_takes_the_shortcut() {
    let world = Feed::build(30);
    let holder = world.peer(32, Goal::All);
    let mut empty = Peer::new();
    empty.set_goal(world.feed, Goal::All).expect("goal");
    empty.set_goal(world.account, Goal::All).expect("goal");
    for (dialer, responder) in [(&empty, &holder), (&holder, &empty)] {
        let (_, metrics, pair) = compare(dialer, responder, &world.tangles());
        assert_eq!(metrics.added_at_dialer + metrics.added_at_responder, 32);
        // No reconciliation message crosses: open, ranges, then the shortcut.
        let recon_frames = pair
            .exchange(proto::testing::Side::Dialer, &world.feed)
            .map(|exchange| exchange.stats().messages_sent);
        assert!(recon_frames.is_none_or(|sent| sent <= 1));
        assert!(metrics.objects <= 8, "{} objects", metrics.objects);
    }
}

#[test]
fn newest_goals_fetch_and_prune_as_pzp_sync() {
    let world = Feed::build(120);
    let holder = world.peer(122, Goal::All);
    for (count, held) in [(10, 0), (10, 50), (30, 110), (200, 60)] {
        let wanting = world.peer(held, Goal::Newest(count));
        compare(&wanting, &holder, &world.tangles());
        compare(&holder, &wanting, &world.tangles());
    }
}

#[test]
fn erased_msgs_count_as_held() {
    let world = Feed::build(40);
    let mut erased = world.peer(42, Goal::All);
    for msg in world.msgs.iter().skip(5).take(20) {
        let Ok(true) = erased.db.erase(&msg.id()) else {
            panic!("erased");
        };
    }
    erased.index.clear();
    let full = world.peer(42, Goal::All);
    compare(&erased, &full, &world.tangles());
    compare(&full, &erased, &world.tangles());
    let behind = world.peer(30, Goal::All);
    compare(&behind, &erased, &world.tangles());
}

/// A set feed updated often, held whole by two peers whose garbage collection kept
/// different ghosts.
#[test]
fn different_ghosts_on_each_side() {
    let keypair = Keypair::from_seed(&[5; 32]);
    let mut source = Db::new(MemStore::new());
    let account = source
        .create_account(&keypair, "account", "ghosts")
        .expect("account");
    for round in 0..12 {
        let item = format!("item{}", round % 4);
        set::add(&mut source, &keypair, &account, FOLLOWS, &item).expect("add");
        set::del(&mut source, &keypair, &account, FOLLOWS, &item).expect("del");
    }
    set::add(&mut source, &keypair, &account, FOLLOWS, "kept").expect("add");
    let follows = msg::feed_id(&account, &set::domain(FOLLOWS));
    let peer_with_span = |span: u64| {
        let mut peer = Peer::new();
        for msg in records(&source) {
            peer.add(msg, None).expect("valid");
        }
        peer.set_goal(follows, Goal::Set).expect("goal");
        peer.set_goal(account, Goal::All).expect("goal");
        peer.goals.set_ghost_span(span);
        let Ok(plan) = gc::plan_cleanup(&mut peer.db, &peer.goals);
        let Ok(_) = gc::apply(&mut peer.db, &plan);
        peer.index.clear();
        peer
    };
    let (wide, narrow) = (peer_with_span(64), peer_with_span(3));
    let mut live = Peer::new();
    for msg in records(&source) {
        live.add(msg, None).expect("valid");
    }
    live.set_goal(follows, Goal::Set).expect("goal");
    live.set_goal(account, Goal::All).expect("goal");
    let tangles = [follows, account];
    let ghosts = |peer: &Peer| holdings(peer, &tangles).ghosts;
    assert!(!ghosts(&wide).is_empty() && !ghosts(&narrow).is_empty());
    assert_ne!(ghosts(&wide), ghosts(&narrow));
    compare(&wide, &narrow, &tangles);
    compare(&narrow, &wide, &tangles);
    // Held live on one side, a ghost on the other: neither sends it.
    compare(&live, &wide, &tangles);
    compare(&wide, &live, &tangles);
    let mut fresh = Peer::new();
    fresh.set_goal(follows, Goal::Set).expect("goal");
    fresh.set_goal(account, Goal::All).expect("goal");
    compare(&fresh, &wide, &tangles);
}

/// A feed msg deleted on one side and kept as a ghost there, held on the other: it is held
/// by both (under its depth on one side, key 0 on the other) and crosses in neither direction.
#[test]
fn a_ghost_here_and_a_msg_there_cross_in_neither_direction() {
    let world = Feed::build(40);
    let holder = world.peer(42, Goal::All);
    let mut ghosting = world.peer(42, Goal::All);
    let deleted = world.msgs[20].id();
    let Ok(true) = ghosting.db.delete(&deleted) else {
        panic!("deleted");
    };
    let Ok(()) = ghosting.db.add_ghost(&world.feed, deleted, 19, 100);
    ghosting.index.clear();
    for (dialer, responder) in [(&holder, &ghosting), (&ghosting, &holder)] {
        let (_, metrics, _) = compare(dialer, responder, &world.tangles());
        assert_eq!(metrics.msgs_carried, 0);
    }
}

pub(crate) fn records(db: &Db<MemStore>) -> Vec<Msg> {
    let mut out = Vec::new();
    let Ok(()) = db.store().scan(&mut |record| {
        out.push(Arc::unwrap_or_clone(Arc::clone(&record.msg)));
        ControlFlow::Continue(())
    });
    out
}

/// Random worlds: an account with `devices` keys, a post feed forked by devices publishing
/// before they merge, a set feed; every msg in an order it can be added.
fn world(devices: usize, ops: &[(u8, u8)]) -> (AccountId, TangleId, TangleId, Vec<Msg>) {
    let keys: Vec<Keypair> = (0..devices)
        .map(|index| Keypair::from_seed(&[u8::try_from(index).expect("few") + 40; 32]))
        .collect();
    let creator = keys.first().expect("a device").clone();
    let mut first = Db::new(MemStore::new());
    let account = first
        .create_account(&creator, "account", "props")
        .expect("account");
    for key in keys.iter().skip(1) {
        let consent = account::consent(key, &account);
        first
            .account_add(&creator, &account, &key.public(), &consent, &[])
            .expect("add key");
    }
    let feed = first.init_feed(&creator, &account, POST).expect("feed");
    let follows = first
        .init_feed(&creator, &account, &set::domain(FOLLOWS))
        .expect("set");
    let mut dbs: Vec<Db<MemStore>> = (0..devices).map(|_| first.clone()).collect();
    for (step, (kind, arg)) in ops.iter().enumerate() {
        let at = usize::from(*arg) % devices;
        let (db, key) = (dbs.get_mut(at).expect("device"), keys.get(at).expect("key"));
        match kind % 4 {
            0 | 1 => {
                db.publish(key, &account, POST, json!({"n": step}), &[])
                    .expect("publish");
            }
            2 => {
                let item = format!("item{}", arg % 3);
                if step % 2 == 0 {
                    set::add(db, key, &account, FOLLOWS, &item).expect("set add");
                } else {
                    set::del(db, key, &account, FOLLOWS, &item).expect("set del");
                }
            }
            _ => {
                let merged: Vec<Msg> = dbs.iter().flat_map(records).collect();
                let target = dbs.get_mut(at).expect("device");
                for msg in merged {
                    let _ = target.add(msg, None);
                }
            }
        }
    }
    let mut all = Db::new(MemStore::new());
    for db in &dbs {
        for msg in records(db) {
            let _ = all.add(msg, None);
        }
    }
    (account, feed, follows, records(&all))
}

fn goal_of(choice: u8) -> Goal {
    match choice % 5 {
        0 | 1 => Goal::All,
        2 => Goal::Newest(u64::from(choice % 7) + 1),
        3 => Goal::Set,
        _ => Goal::None,
    }
}

fn random_peer(msgs: &[Msg], keep: &[bool], goals: &[(TangleId, Goal)], gc_span: u8) -> Peer {
    let mut peer = Peer::new();
    for (index, msg) in msgs.iter().enumerate() {
        let is_account_msg = msg.metadata.account == msg::Account::OwnTangle;
        if is_account_msg || keep.get(index % keep.len().max(1)).copied().unwrap_or(true) {
            let _ = peer.add(msg.clone(), None);
        }
    }
    for (tangle, goal) in goals {
        peer.set_goal(*tangle, *goal).expect("few goals");
    }
    if gc_span > 0 {
        peer.goals.set_ghost_span(u64::from(gc_span));
        let Ok(plan) = gc::plan_cleanup(&mut peer.db, &peer.goals);
        let Ok(_) = gc::apply(&mut peer.db, &plan);
        peer.index.clear();
    }
    peer
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random store pairs and goals: the exchange leaves both peers exactly as pzp-sync does.
    #[test]
    fn random_store_pairs_end_as_with_pzp_sync(
        devices in 1usize..4,
        ops in prop::collection::vec((any::<u8>(), any::<u8>()), 1..40),
        keep_dialer in prop::collection::vec(any::<bool>(), 1..16),
        keep_responder in prop::collection::vec(any::<bool>(), 1..16),
        goals_dialer in (any::<u8>(), any::<u8>()),
        goals_responder in (any::<u8>(), any::<u8>()),
        gc_spans in (0_u8..4, 0_u8..4),
    ) {
        let (account, feed, follows, msgs) = world(devices, &ops);
        let goals = |(post, set): (u8, u8)| {
            let set_goal = if set % 2 == 0 { Goal::Set } else { goal_of(set) };
            vec![(feed, goal_of(post)), (follows, set_goal), (account, Goal::All)]
        };
        let dialer = random_peer(&msgs, &keep_dialer, &goals(goals_dialer), gc_spans.0);
        let responder = random_peer(&msgs, &keep_responder, &goals(goals_responder), gc_spans.1);
        compare(&dialer, &responder, &[feed, follows, account]);
    }
}

// Hostile frames.

/// A dialer exchange of `world.feed` that sent its first `recon` to a responder holding
/// `responder_count` msgs, and the responder, which answered it (both reconciling; the
/// answer is not delivered).
fn reconciling(world: &Feed, responder_count: usize) -> (Exchange, Peer, Exchange, Peer) {
    let mut dialer_peer = world.peer(42, Goal::All);
    let mut responder_peer = world.peer(responder_count, Goal::All);
    let mut dialer = Exchange::new(world.feed, Side::Dialer);
    let mut responder = Exchange::new(world.feed, Side::Responder);
    let open = drive(&mut dialer, &mut dialer_peer, Input::Start);
    let ranges = drive(&mut responder, &mut responder_peer, received(&open[0]));
    let recon = drive(&mut dialer, &mut dialer_peer, received(&ranges[0]));
    assert_eq!(recon[0]["phase"], "recon");
    let answer = drive(&mut responder, &mut responder_peer, received(&recon[0]));
    assert_eq!(answer[0]["phase"], "recon");
    (dialer, dialer_peer, responder, responder_peer)
}

/// Runs one input; returns the frames sent, as JSON.
fn drive(exchange: &mut Exchange, peer: &mut Peer, input: Input) -> Vec<Value> {
    run(exchange, peer, input)
        .into_iter()
        .filter_map(|output| match output {
            Output::Send(frame) => Some(serde_json::from_str(&frame.to_json()).expect("json")),
            _ => None,
        })
        .collect()
}

fn run(exchange: &mut Exchange, peer: &mut Peer, input: Input) -> Vec<Output> {
    let mut out = Vec::new();
    let mut store = IndexedDb::new(&mut peer.db, &mut peer.index);
    let goals: Goals = peer.goals.clone();
    let Ok(()) = exchange.handle(Time::default(), input, &mut store, &goals, &mut out);
    out
}

fn received(value: &Value) -> Input {
    Input::Received(value.clone())
}

/// The refusals and failures an input causes.
fn refusals(exchange: &mut Exchange, peer: &mut Peer, value: Value) -> Vec<Refusal> {
    run(exchange, peer, Input::Received(value))
        .into_iter()
        .filter_map(|output| match output {
            Output::Refused(refusal)
            | Output::Failed {
                reason: refusal, ..
            } => Some(refusal),
            Output::Send(_)
            | Output::Push(_)
            | Output::Commit { .. }
            | Output::PruneNewest { .. }
            | Output::Close(_) => {
                panic!("a refused frame has no other effect")
            }
            Output::Finished { .. } => None,
        })
        .collect()
}

fn recon_frame(id: &TangleId, message: &[u8]) -> Value {
    json!({"id": id.as_str(), "phase": "recon", "msg": STANDARD.encode(message)})
}

#[test]
fn malformed_frames_are_refused_by_name() {
    let world = Feed::build(40);
    let (_, _, mut responder, mut peer) = reconciling(&world, 42);
    let id = world.feed.as_str();
    let too_many_ids: Vec<&str> = vec![id; MSG_IDS_PER_PAYLOAD_MAX + 1];
    let cases: Vec<(Value, FrameError)> = vec![
        (json!([1]), FrameError::NotObject),
        (
            json!({"id": 3, "phase": "recon", "msg": ""}),
            FrameError::BadId(proto::ids::IdError::NotBase58("3".into())),
        ),
        (
            json!({"id": id, "phase": 9}),
            FrameError::UnknownPhase("9".into()),
        ),
        (
            json!({"id": id, "phase": "recon", "msg": 7}),
            FrameError::MessageNotString,
        ),
        (
            json!({"id": id, "phase": "recon", "msg": "A".repeat(MESSAGE_BASE64_MAX + 4)}),
            FrameError::MessageTooLong(MESSAGE_BASE64_MAX + 4),
        ),
        (
            json!({"id": id, "phase": "recon", "msg": "not base64!"}),
            FrameError::MessageNotBase64,
        ),
        (
            json!({"id": id, "phase": "open", "have": [0, 9_007_199_254_740_992_u64]}),
            FrameError::Wire(WireError::BadRange {
                field: "have",
                max: 9_007_199_254_740_991,
            }),
        ),
        (
            json!({"id": id, "phase": "done", "msgs": [], "need": too_many_ids}),
            FrameError::Wire(WireError::TooManyMsgIds {
                count: MSG_IDS_PER_PAYLOAD_MAX + 1,
                max: MSG_IDS_PER_PAYLOAD_MAX,
            }),
        ),
        (
            json!({"id": id, "phase": "msgs", "msgs": {}}),
            FrameError::Wire(WireError::MsgsNotArray),
        ),
        (
            json!({"id": id, "phase": "done", "msgs": [{"data": 1}], "need": []}),
            FrameError::Wire(WireError::MsgShape { index: 0 }),
        ),
    ];
    for (value, error) in cases {
        // Sessions decode the frames they are given by value; a shell may decode first, by
        // value or from the text.
        assert_eq!(frame::decode(&value), Err(error.clone()));
        let from_text = recon::decode_incoming_text(&value.to_string()).expect("JSON");
        let by_value = recon::decode_incoming_owned(value.clone());
        assert!(by_value.is_err(), "{value}");
        assert_eq!(from_text, by_value, "{value}");
        assert_eq!(
            refusals(&mut responder, &mut peer, value),
            [Refusal::Frame(error)]
        );
    }
}

#[test]
fn decoding_a_frame_by_value_gives_the_same_msgs_and_drops() {
    let world = Feed::build(6);
    let id = world.feed.as_str();
    let valid: Vec<Value> = world
        .msgs
        .iter()
        .map(|msg| serde_json::from_str(&msg.to_json()).expect("JSON"))
        .collect();
    let mut tampered = valid[3].clone();
    tampered["data"]["text"] = json!("not what was hashed");
    let mut bad_sig = valid[4].clone();
    bad_sig["sig"] = json!("x");
    let carried = vec![valid[2].clone(), tampered, valid[3].clone(), bad_sig];
    for value in [
        json!({"id": id, "phase": "msgs", "msgs": carried}),
        json!({"id": id, "phase": "done", "msgs": carried, "need": [world.msgs[1].id().as_str()]}),
    ] {
        let by_reference = frame::decode(&value).expect("the frame is well formed");
        assert_eq!(by_reference.frame.frame.msgs().len(), 2, "two msgs decode");
        assert_eq!(
            by_reference
                .dropped
                .iter()
                .map(|drop| drop.index)
                .collect::<Vec<_>>(),
            [1, 3]
        );
        let from_text = recon::decode_incoming_text(&value.to_string()).expect("JSON");
        assert_eq!(from_text, Ok(Incoming::Frame(by_reference.clone())));
        assert_eq!(frame::decode_owned(value), Ok(by_reference));
    }
}

/// The frames of an exchange as a session writes them, one per phase, with msgs.
fn written_frames(world: &Feed) -> Vec<String> {
    let id = world.feed;
    let have = DepthRange { min: 1, max: 40 };
    let msgs: Vec<Arc<Msg>> = world.msgs.iter().take(5).cloned().map(Arc::new).collect();
    let frames = [
        Frame::Open { have },
        Frame::Ranges { have, want: have },
        Frame::Recon {
            want: Some(have),
            message: vec![VERSION, 0, 1, 2],
        },
        Frame::Recon {
            want: None,
            message: vec![VERSION],
        },
        Frame::Msgs { msgs: msgs.clone() },
        Frame::Again,
        Frame::Done {
            msgs,
            need: vec![world.msgs[0].id(), world.msgs[1].id()],
        },
    ];
    frames
        .into_iter()
        .map(|frame| ReconFrame { id, frame }.to_json())
        .collect()
}

/// What a frame's text decodes to, through a `Value` (the general path).
fn through_a_value(text: &str) -> Option<Result<Incoming, Refusal>> {
    serde_json::from_str(text)
        .ok()
        .map(recon::decode_incoming_owned)
}

#[test]
fn frames_read_from_their_text_decode_as_through_a_value() {
    let world = Feed::build(8);
    for text in written_frames(&world) {
        let from_text = recon::decode_incoming_text(&text).expect("JSON");
        assert!(from_text.is_ok(), "{text}");
        assert_eq!(Some(from_text), through_a_value(&text), "{text}");
    }
    // `"want": null` is not an absent want-range; a push (numbered phase) is no exchange
    // frame; text that is not JSON is an error of its own.
    let id = world.feed.as_str();
    for value in [
        json!({"id": id, "phase": "recon", "want": null, "msg": "cA=="}),
        json!({"id": id, "phase": "recon", "msg": "cA==", "msg": 3}),
        json!({"id": id, "phase": 9, "payload": []}),
    ] {
        let text = value.to_string();
        let from_text = recon::decode_incoming_text(&text).expect("JSON");
        assert_eq!(Some(from_text), through_a_value(&text), "{text}");
    }
    assert!(recon::decode_incoming_text("{\"id\":").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A frame's text with any one byte changed decodes from the text exactly as through a
    /// `Value`: the same msgs, drops and refusals, or JSON errors on both paths.
    #[test]
    fn a_changed_byte_decodes_from_the_text_as_through_a_value(
        which in 0usize..7,
        position in any::<prop::sample::Index>(),
        byte in prop::sample::select(b"0123456789abcdefABCDEF\"\\{}[],:. -_xyzvn".to_vec()),
    ) {
        let world = Feed::build(8);
        let mut bytes = written_frames(&world).swap_remove(which).into_bytes();
        let at = position.index(bytes.len());
        bytes[at] = byte;
        let Ok(text) = String::from_utf8(bytes) else { return Ok(()) };
        let from_text = recon::decode_incoming_text(&text).ok();
        prop_assert_eq!(from_text, through_a_value(&text));
    }
}

#[test]
fn reconciliation_messages_breaking_a_bound_are_refused_by_name() {
    let world = Feed::build(40);
    let (_, _, mut responder, mut peer) = reconciling(&world, 42);
    let id = world.feed;
    let mut id_list = vec![VERSION, 0, 0, 2];
    let mut count = Vec::new();
    proto::sync::recon::codec::write_varint(&mut count, (IDLIST_ITEMS_ACCEPTED_MAX + 1) as u64);
    id_list.extend(count);
    id_list.extend(vec![1; (IDLIST_ITEMS_ACCEPTED_MAX + 1) * 32]);
    // Ranges of keys 1, 2, 3…, each a Skip.
    let mut ranges = vec![VERSION];
    for _ in 0..=RECONCILE_RANGES_MAX {
        ranges.extend([2, 0, 0]);
    }
    let cases: Vec<(Vec<u8>, DecodeError)> = vec![
        (vec![0x61], DecodeError::UnsupportedVersion(0x61)),
        (
            vec![VERSION; RECONCILE_FRAME_BYTES_MAX + 1],
            DecodeError::FrameTooLarge(RECONCILE_FRAME_BYTES_MAX + 1),
        ),
        (ranges, DecodeError::TooManyRanges),
        (
            id_list,
            DecodeError::IdListTooLong((IDLIST_ITEMS_ACCEPTED_MAX + 1) as u64),
        ),
        (
            vec![VERSION, 1, 0, 0, 1, 0, 0],
            DecodeError::BoundNotIncreasing,
        ),
    ];
    for (message, error) in cases {
        assert_eq!(
            refusals(&mut responder, &mut peer, recon_frame(&id, &message)),
            [Refusal::Reconcile(ReconcileError::Malformed(error))]
        );
    }
    // Still reconciling: an honest message is answered.
    let answer = drive(
        &mut responder,
        &mut peer,
        received(&recon_frame(&id, &[VERSION])),
    );
    assert_eq!(answer.len(), 1);
}

#[test]
fn frames_out_of_place_are_refused_by_name() {
    let world = Feed::build(40);
    let (mut dialer, mut dialer_peer, mut responder, mut peer) = reconciling(&world, 42);
    let id = world.feed.as_str();
    let other = world.account.as_str();
    assert_eq!(
        refusals(
            &mut responder,
            &mut peer,
            json!({"id": other, "phase": "open", "have": [0, 1]})
        ),
        [Refusal::WrongTangle {
            expected: world.feed,
            got: world.account
        }]
    );
    assert_eq!(
        refusals(
            &mut responder,
            &mut peer,
            json!({"id": id, "phase": "ranges", "have": [0, 1], "want": [0, 1]})
        ),
        [Refusal::Unexpected {
            phase: "ranges",
            stage: "reconciling"
        }]
    );
    assert_eq!(
        refusals(
            &mut dialer,
            &mut dialer_peer,
            json!({"id": id, "phase": "open", "have": [0, 1]})
        ),
        [Refusal::Unexpected {
            phase: "open",
            stage: "reconciling"
        }]
    );
    assert_eq!(
        refusals(
            &mut responder,
            &mut peer,
            json!({"id": id, "phase": "recon", "want": [0, 3], "msg": "cA=="})
        ),
        [Refusal::WantMisplaced]
    );
    let mut fresh = Exchange::new(world.feed, Side::Responder);
    let open = json!({"id": id, "phase": "open", "have": [0, 41]});
    drive(&mut fresh, &mut peer, received(&open));
    assert_eq!(
        refusals(
            &mut fresh,
            &mut peer,
            json!({"id": id, "phase": "recon", "msg": "cA=="})
        ),
        [Refusal::WantMisplaced]
    );
}

#[test]
fn a_remote_that_never_stops_reconciling_fails_the_exchange_after_the_round_bound() {
    let world = Feed::build(40);
    let (mut dialer, mut peer, _, _) = reconciling(&world, 42);
    let id = world.feed;
    // One Fingerprint range over everything that never matches: the dialer splits again.
    let mut mismatch = vec![VERSION, 0, 0, 1];
    mismatch.extend([0xab; 16]);
    for _ in 0..RECONCILE_ROUNDS_MAX {
        let sent = drive(
            &mut dialer,
            &mut peer,
            received(&recon_frame(&id, &mismatch)),
        );
        assert_eq!(sent.len(), 1, "answered");
    }
    assert_eq!(
        refusals(&mut dialer, &mut peer, recon_frame(&id, &mismatch)),
        [Refusal::TooManyRounds {
            max: RECONCILE_ROUNDS_MAX
        }]
    );
    assert!(!dialer.is_busy());
    // Another tangle's exchange is untouched, and this one can start over.
    let sent = drive(&mut dialer, &mut peer, Input::Start);
    assert_eq!(sent[0]["phase"], "open");
}

#[test]
fn a_need_outside_the_dialers_want_sends_nothing() {
    let world = Feed::build(40);
    let holder = world.peer(42, Goal::All);
    let mut wanting = world.peer(20, Goal::Newest(5));
    let mut dialer = Exchange::new(world.feed, Side::Dialer);
    let mut responder = Exchange::new(world.feed, Side::Responder);
    let mut responder_peer = holder.clone();
    let open = drive(&mut dialer, &mut wanting, Input::Start);
    let ranges = drive(&mut responder, &mut responder_peer, received(&open[0]));
    let recon = drive(&mut dialer, &mut wanting, received(&ranges[0]));
    drive(&mut responder, &mut responder_peer, received(&recon[0]));
    // The dialer wants depths 20 to 41 (newest 5 on top of its 20); a hostile dialer asks
    // for depths 3 and 9, inside the hull the two sides reconciled, outside its want.
    let (low, lower) = (world.msgs[4].id(), world.msgs[10].id());
    let done = json!({"id": world.feed.as_str(), "phase": "done", "msgs": [], "need": [low.as_str(), lower.as_str()]});
    let sent = drive(&mut responder, &mut responder_peer, received(&done));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["msgs"], json!([]));
}

/// The index keys items as the database does (a peer may read either way).
#[test]
fn indexed_and_plain_reads_give_the_same_items() {
    use proto::sync::recon::{Item, ReconStore};
    use proto::tangle::DepthRange;
    let world = Feed::build(60);
    let mut peer = world.peer(62, Goal::All);
    let Ok(()) = peer.db.add_ghost(&world.feed, world.msgs[7].id(), 6, 100);
    for range in [(0, 61), (0, 0), (5, 30), (40, 90)] {
        let range = DepthRange {
            min: range.0,
            max: range.1,
        };
        for tangle in world.tangles() {
            let mut plain: Vec<Item> = Vec::new();
            let Ok(()) = peer.db.recon_items(&tangle, range, &mut plain);
            let mut indexed: Vec<Item> = Vec::new();
            let mut store = IndexedDb::new(&mut peer.db, &mut peer.index);
            let Ok(()) = store.recon_items(&tangle, range, &mut indexed);
            plain.sort_unstable();
            indexed.sort_unstable();
            assert!(
                tangle != world.feed || !plain.is_empty(),
                "the ghost at least"
            );
            assert_eq!(plain, indexed);
        }
    }
}
