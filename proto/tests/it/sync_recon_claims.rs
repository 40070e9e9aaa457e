//! Fetch claims shared by a peer's `sync.reconcile` sessions, and with its pzp-sync sessions
//! (`proto::sync::Sessions`, `proto::sync::claims`): a tangle the peer holds nothing of is
//! fetched over one connection at a time, whichever method each runs; the others want
//! nothing of it (an empty want-range on the wire) and open it again when the claim is
//! released, by the holder's exchange ending, its stream closing, or the claim expiring.
//! Scripted: the remotes' frames are written by hand, one at a time.

use proto::db::Db;
use proto::goals::{Goal, Goals};
use proto::ids::{MsgId, TangleId};
use proto::keys::Keypair;
use proto::store::MemStore;
use proto::sync::recon::{self, Frame, ReconFrame, Side};
use proto::sync::{
    Config, Event, FETCH_CLAIM_TTL_MS, IndexedDb, Input, Output, Payload, Session, SessionOutput,
    Sessions, SyncIndex, SyncMsg, Time,
};
use proto::tangle::DepthRange;
use serde_json::{Value, json};

/// What the remotes hold of every tangle: five msgs.
const REMOTE_HAVE: DepthRange = DepthRange { min: 0, max: 4 };

/// One peer holding nothing, with `Goal::All` on each of `tangles`, and its sessions.
struct Peer {
    sessions: Sessions<u8>,
    db: Db<MemStore>,
    index: SyncIndex,
    goals: Goals,
    now: Time,
}

impl Peer {
    fn new(tangles: &[TangleId]) -> Self {
        let mut goals = Goals::new();
        for tangle in tangles {
            goals.set(*tangle, Goal::All).expect("room for the goals");
        }
        Self {
            sessions: Sessions::new(Config::default()),
            db: Db::new(MemStore::new()),
            index: SyncIndex::new(),
            goals,
            now: Time(0),
        }
    }

    fn handle(&mut self, event: Event<u8>) -> Vec<(u8, SessionOutput)> {
        let mut out = Vec::new();
        let mut store = IndexedDb::new(&mut self.db, &mut self.index);
        let Ok(()) = self
            .sessions
            .handle_any(self.now, event, &mut store, &self.goals, &mut out);
        self.sessions.check_invariants();
        out
    }

    fn reconcile(&mut self, key: u8, side: Side) -> Vec<(u8, SessionOutput)> {
        self.handle(Event::OpenedReconcile { key, side })
    }

    /// A frame from `key`'s remote on its `sync.reconcile` stream.
    fn frame(&mut self, key: u8, tangle: TangleId, frame: Frame) -> Vec<(u8, SessionOutput)> {
        let mut json = String::new();
        ReconFrame { id: tangle, frame }.write_json(&mut json);
        let value: Value = serde_json::from_str(&json).expect("a frame is JSON");
        let decoded = recon::decode_incoming(&value);
        assert!(decoded.is_ok(), "{json} is a valid frame");
        self.handle(Event::ReconcileDecoded { key, decoded })
    }

    /// The remote's `ranges`: it holds [`REMOTE_HAVE`] and wants nothing.
    fn ranges(&mut self, key: u8, tangle: TangleId) -> Vec<(u8, SessionOutput)> {
        let frame = Frame::Ranges {
            have: REMOTE_HAVE,
            want: DepthRange::EMPTY,
        };
        self.frame(key, tangle, frame)
    }

    /// The remote's `done`, with no msgs: its exchange, and so ours, is over.
    fn done(&mut self, key: u8, tangle: TangleId) -> Vec<(u8, SessionOutput)> {
        let frame = Frame::Done {
            msgs: Vec::new(),
            need: Vec::new(),
        };
        self.frame(key, tangle, frame)
    }

    /// A pzp-sync object from `key`'s remote.
    fn object(
        &mut self,
        key: u8,
        phase: u8,
        tangle: TangleId,
        payload: Payload,
    ) -> Vec<(u8, SessionOutput)> {
        let mut json = String::new();
        SyncMsg {
            id: tangle,
            phase,
            payload,
        }
        .write_json(&mut json);
        let object: Value = serde_json::from_str(&json).expect("an object is JSON");
        self.handle(Event::Received { key, object })
    }

    fn deferred(&self, key: u8) -> u64 {
        self.sessions
            .reconcile(&key)
            .expect("a sync.reconcile session")
            .stats()
            .deferred
    }
}

fn tangle(n: u8) -> TangleId {
    MsgId::from_bytes(&[n; 32])
}

/// The want-range `key`'s dialer sent on its first `recon` of `tangle`, if it sent one.
fn recon_want(out: &[(u8, SessionOutput)], key: u8, tangle: TangleId) -> Option<DepthRange> {
    out.iter().find_map(|(at, output)| match output {
        SessionOutput::Reconcile(recon::Output::Send(ReconFrame {
            id,
            frame: Frame::Recon { want, .. },
        })) if *at == key && *id == tangle => *want,
        _ => None,
    })
}

/// The want-range `key`'s responder sent in its `ranges` for `tangle`, if it sent them.
fn ranges_want(out: &[(u8, SessionOutput)], key: u8, tangle: TangleId) -> Option<DepthRange> {
    out.iter().find_map(|(at, output)| match output {
        SessionOutput::Reconcile(recon::Output::Send(ReconFrame {
            id,
            frame: Frame::Ranges { want, .. },
        })) if *at == key && *id == tangle => Some(*want),
        _ => None,
    })
}

/// Whether `key` sent a `sync.reconcile` frame `phase` for `tangle`.
fn sent(out: &[(u8, SessionOutput)], key: u8, tangle: TangleId, phase: &str) -> bool {
    out.iter().any(|(at, output)| {
        matches!(output, SessionOutput::Reconcile(recon::Output::Send(frame))
            if *at == key && frame.id == tangle && frame.frame.phase() == phase)
    })
}

/// The want-range `key`'s pzp-sync session sent in its phase 3 of `tangle`, if it did.
fn phase_three_want(out: &[(u8, SessionOutput)], key: u8, tangle: TangleId) -> Option<DepthRange> {
    out.iter().find_map(|(at, output)| match output {
        SessionOutput::Sync(Output::Send(SyncMsg {
            id,
            phase: 3,
            payload: Payload::WantBloom { want, .. },
        })) if *at == key && *id == tangle => Some(*want),
        _ => None,
    })
}

/// Whether `key`'s pzp-sync session sent its phase 1 of `tangle`.
fn sent_phase_one(out: &[(u8, SessionOutput)], key: u8, tangle: TangleId) -> bool {
    out.iter().any(|(at, output)| {
        matches!(output, SessionOutput::Sync(Output::Send(SyncMsg { id, phase: 1, .. }))
            if *at == key && *id == tangle)
    })
}

/// Two dialers of one peer that holds nothing of the tangle, both remotes holding it.
fn two_dialers_one_claiming(feed: TangleId) -> Peer {
    let mut peer = Peer::new(&[feed]);
    for key in [1, 2] {
        let out = peer.reconcile(key, Side::Dialer);
        assert!(sent(&out, key, feed, "open"), "dialer {key} opens the goal");
    }
    let first = peer.ranges(1, feed);
    assert_eq!(
        recon_want(&first, 1, feed),
        Some(REMOTE_HAVE),
        "the first fetches"
    );
    let second = peer.ranges(2, feed);
    assert_eq!(
        recon_want(&second, 2, feed),
        Some(DepthRange::EMPTY),
        "the second wants nothing while the first holds the claim"
    );
    assert_eq!((peer.deferred(1), peer.deferred(2)), (0, 1));
    let second = peer.sessions.reconcile(&2).expect("open");
    assert!(second.has_deferred(&feed) && !second.has_claimed(&feed));
    assert!(
        peer.sessions
            .reconcile(&1)
            .expect("open")
            .has_claimed(&feed)
    );
    peer
}

#[test]
fn two_reconcile_dialers_fetch_an_empty_tangle_one_at_a_time() {
    let feed = tangle(7);
    let mut peer = two_dialers_one_claiming(feed);
    let out = peer.done(2, feed);
    assert!(
        !sent(&out, 2, feed, "open"),
        "deferred until the claim is released"
    );
    let out = peer.done(1, feed);
    assert!(
        sent(&out, 2, feed, "open"),
        "the first's exchange ended: the second opens the tangle again"
    );
    assert!(!sent(&out, 1, feed, "open"));
    let out = peer.ranges(2, feed);
    assert_eq!(
        recon_want(&out, 2, feed),
        Some(REMOTE_HAVE),
        "with the claim free, the second fetches"
    );
}

#[test]
fn a_deferred_dialer_still_in_its_exchange_opens_again_after_it() {
    let feed = tangle(7);
    let mut peer = two_dialers_one_claiming(feed);
    let out = peer.done(1, feed);
    assert!(
        !sent(&out, 2, feed, "open"),
        "its own exchange is under way: it waits for the end"
    );
    let out = peer.done(2, feed);
    assert!(sent(&out, 2, feed, "open"), "then opens the tangle again");
}

#[test]
fn a_claim_whose_holder_never_answers_expires() {
    let feed = tangle(7);
    let mut peer = two_dialers_one_claiming(feed);
    peer.done(2, feed);
    assert_eq!(peer.sessions.deadline(), Some(Time(FETCH_CLAIM_TTL_MS)));
    peer.now = Time(FETCH_CLAIM_TTL_MS - 1);
    let out = peer.handle(Event::Tick);
    assert!(out.is_empty(), "the claim holds until it expires");
    peer.now = Time(FETCH_CLAIM_TTL_MS);
    let out = peer.handle(Event::Tick);
    assert!(
        sent(&out, 2, feed, "open"),
        "expired: the second opens again"
    );
    assert_eq!(peer.sessions.deadline(), None);
}

#[test]
fn a_claim_is_released_when_its_stream_closes() {
    let feed = tangle(7);
    let mut peer = two_dialers_one_claiming(feed);
    peer.done(2, feed);
    let out = peer.handle(Event::Closed { key: 1 });
    assert!(sent(&out, 2, feed, "open"), "the holder's stream closed");
    assert!(peer.sessions.reconcile(&1).is_none());
    assert_eq!(peer.sessions.deadline(), None);
}

#[test]
fn a_deferred_responder_asks_its_dialer_to_open_again() {
    let feed = tangle(7);
    let mut peer = Peer::new(&[feed]);
    for key in [1, 2] {
        peer.reconcile(key, Side::Responder);
    }
    let open = Frame::Open { have: REMOTE_HAVE };
    let first = peer.frame(1, feed, open.clone());
    assert_eq!(ranges_want(&first, 1, feed), Some(REMOTE_HAVE));
    let second = peer.frame(2, feed, open);
    assert_eq!(ranges_want(&second, 2, feed), Some(DepthRange::EMPTY));
    assert_eq!(peer.deferred(2), 1);
    // The first's dialer: its first `recon` (it holds what it said), then its `done`.
    let recon = Frame::Recon {
        want: Some(DepthRange::EMPTY),
        message: vec![recon::VERSION],
    };
    peer.frame(1, feed, recon);
    let out = peer.done(1, feed);
    assert!(
        sent(&out, 2, feed, "again"),
        "the claim was released: the deferred responder asks for the tangle again"
    );
}

/// A pzp-sync remote holding a feed of three posts, answering one session of [`Peer`].
struct PzpRemote {
    session: Session,
    db: Db<MemStore>,
    index: SyncIndex,
    goals: Goals,
    feed: TangleId,
}

impl PzpRemote {
    fn new() -> Self {
        let mut db = Db::new(MemStore::new());
        let key = Keypair::from_seed(&[90; 32]);
        let account = db
            .create_account(&key, "account", "remote")
            .expect("account");
        let feed = db.init_feed(&key, &account, "post").expect("feed");
        for n in 0..3 {
            db.publish(&key, &account, "post", json!({"n": n}), &[])
                .expect("publish");
        }
        let mut goals = Goals::new();
        goals.set(feed, Goal::All).expect("room");
        Self {
            session: Session::new(Config::default()),
            db,
            index: SyncIndex::new(),
            goals,
            feed,
        }
    }

    /// Runs `key`'s pzp-sync objects in `out` through the remote and its answers through
    /// `peer`, until neither has anything more to send; every output `peer` gave.
    fn pump(
        &mut self,
        peer: &mut Peer,
        key: u8,
        out: Vec<(u8, SessionOutput)>,
    ) -> Vec<(u8, SessionOutput)> {
        let mut seen = Vec::new();
        let mut pending = out;
        for _ in 0..PUMP_ROUNDS_MAX {
            let to_remote: Vec<Value> = pending
                .iter()
                .filter_map(|(at, output)| match output {
                    SessionOutput::Sync(Output::Send(msg)) if *at == key => Some(json_of(msg)),
                    _ => None,
                })
                .collect();
            seen.append(&mut pending);
            if to_remote.is_empty() {
                return seen;
            }
            for object in to_remote {
                let mut answers = Vec::new();
                let mut store = IndexedDb::new(&mut self.db, &mut self.index);
                let input = Input::Received(object);
                let Ok(()) =
                    self.session
                        .handle(peer.now, input, &mut store, &self.goals, &mut answers);
                for answer in answers {
                    if let Output::Send(msg) = answer {
                        let object = json_of(&msg);
                        pending.extend(peer.handle(Event::Received { key, object }));
                    }
                }
            }
        }
        panic!("the exchange did not end within {PUMP_ROUNDS_MAX} rounds");
    }
}

/// Most rounds of [`PzpRemote::pump`]: pzp-sync's exchange takes nine phases.
const PUMP_ROUNDS_MAX: usize = 32;

fn json_of(msg: &SyncMsg) -> Value {
    let mut json = String::new();
    msg.write_json(&mut json);
    serde_json::from_str(&json).expect("an object is JSON")
}

/// Whether `key`'s pzp-sync session handed msgs of `tangle` to commit.
fn committed(out: &[(u8, SessionOutput)], key: u8, tangle: TangleId) -> bool {
    out.iter().any(|(at, output)| {
        matches!(output, SessionOutput::Sync(Output::Commit { tangle: of, msgs })
            if *at == key && *of == tangle && !msgs.is_empty())
    })
}

#[test]
fn a_reconcile_claim_defers_pzp_sync_until_the_exchange_ends() {
    let mut remote = PzpRemote::new();
    let feed = remote.feed;
    let mut peer = Peer::new(&[feed]);
    peer.reconcile(2, Side::Dialer);
    let out = peer.ranges(2, feed);
    assert_eq!(
        recon_want(&out, 2, feed),
        Some(REMOTE_HAVE),
        "reconcile claims"
    );
    let opened = peer.handle(Event::Opened {
        key: 1,
        initiate: true,
    });
    let out = remote.pump(&mut peer, 1, opened);
    assert_eq!(
        phase_three_want(&out, 1, feed),
        Some(DepthRange::EMPTY),
        "pzp-sync wants nothing while sync.reconcile holds the claim"
    );
    assert!(!committed(&out, 1, feed), "and receives nothing");
    assert_eq!(peer.sessions.get(&1).expect("open").stats().deferred, 1);
    let out = peer.done(2, feed);
    assert!(
        sent_phase_one(&out, 1, feed),
        "the reconcile exchange ended: pzp-sync opens the tangle again"
    );
    let out = remote.pump(&mut peer, 1, out);
    assert_eq!(
        phase_three_want(&out, 1, feed),
        Some(DepthRange { min: 0, max: 3 })
    );
    assert!(committed(&out, 1, feed), "and fetches it");
}

#[test]
fn a_pzp_sync_claim_defers_reconcile_until_its_stream_closes() {
    let feed = tangle(5);
    let mut peer = Peer::new(&[feed]);
    peer.handle(Event::Opened {
        key: 1,
        initiate: true,
    });
    peer.reconcile(2, Side::Dialer);
    let remote_phase_two = Payload::HaveWant {
        have: REMOTE_HAVE,
        want: DepthRange::EMPTY,
    };
    let out = peer.object(1, 2, feed, remote_phase_two);
    assert_eq!(
        phase_three_want(&out, 1, feed),
        Some(REMOTE_HAVE),
        "pzp-sync claims"
    );
    let out = peer.ranges(2, feed);
    assert_eq!(
        recon_want(&out, 2, feed),
        Some(DepthRange::EMPTY),
        "sync.reconcile wants nothing while pzp-sync holds the claim"
    );
    assert_eq!(peer.deferred(2), 1);
    peer.done(2, feed);
    let out = peer.handle(Event::Closed { key: 1 });
    assert!(
        sent(&out, 2, feed, "open"),
        "the pzp-sync stream closed: sync.reconcile opens the tangle again"
    );
}

/// The want-range `key`'s pzp-sync session sent in its phase 2 of `tangle`, if it did.
fn phase_two_want(out: &[(u8, SessionOutput)], key: u8, tangle: TangleId) -> Option<DepthRange> {
    out.iter().find_map(|(at, output)| match output {
        SessionOutput::Sync(Output::Send(SyncMsg {
            id,
            phase: 2,
            payload: Payload::HaveWant { want, .. },
        })) if *at == key && *id == tangle => Some(*want),
        _ => None,
    })
}

/// A deferred pzp-sync session that takes over an expired claim (before the Tick that would
/// release it) fetches as the holder and is no longer deferred (the sessions' invariant:
/// never claimed and deferred at once).
#[test]
fn a_deferred_pzp_sync_session_taking_over_an_expired_claim_is_no_longer_deferred() {
    let feed = tangle(9);
    let mut peer = Peer::new(&[feed]);
    for key in [1, 2] {
        peer.handle(Event::Opened {
            key,
            initiate: false,
        });
    }
    let out = peer.object(1, 1, feed, Payload::Have(REMOTE_HAVE));
    assert_eq!(phase_two_want(&out, 1, feed), Some(REMOTE_HAVE), "1 claims");
    let out = peer.object(2, 1, feed, Payload::Have(REMOTE_HAVE));
    assert_eq!(
        phase_two_want(&out, 2, feed),
        Some(DepthRange::EMPTY),
        "2 defers"
    );
    assert_eq!(peer.sessions.get(&2).expect("open").stats().deferred, 1);
    // The claim expires; before any Tick releases it, 2's remote opens the tangle again.
    peer.now = Time(FETCH_CLAIM_TTL_MS);
    let out = peer.object(2, 1, feed, Payload::Have(REMOTE_HAVE));
    assert_eq!(
        phase_two_want(&out, 2, feed),
        Some(REMOTE_HAVE),
        "2 takes the expired claim over and fetches"
    );
}
