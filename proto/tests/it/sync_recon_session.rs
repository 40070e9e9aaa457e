//! `sync.reconcile`'s session over one stream (`proto::sync::recon::ReconSession`): many
//! tangles of every goal kind exchanged at once, then realtime pushes, each run through
//! pzp-sync's session (`proto::testing::Pair`) and the reconcile session
//! (`proto::testing::recon::ReconPair`) from the same stores with the same local writes, both
//! peers ending exactly the same; then hostile frames, refused by name, never stopping the
//! other tangles, and the session's bounds.

use std::sync::Arc;

use proto::db::Db;
use proto::dict;
use proto::goals::Goal;
use proto::ids::{AccountId, MsgId, TangleId};
use proto::keys::Keypair;
use proto::msg::{self, Msg};
use proto::set;
use proto::store::MemStore;
use proto::sync::recon::Refusal;
use proto::sync::recon::exchange::Side as ExchangeSide;
use proto::sync::recon::session::{Input, ReconSession};
use proto::sync::wire::WireError;
use proto::sync::{CloseReason, Config, IndexedDb, REFUSALS_MAX, TANGLES_TRACKED_MAX, Time};
use proto::testing::recon::ReconPair;
use proto::testing::{Pair, Peer, RunError, Side};
use serde_json::{Value, json};

use crate::sync_recon_exchange::{holdings, records};

const POST: &str = "post";
const FOLLOWS: &str = "follows";
const PROFILE: &str = "profile";

/// Three authors' post feeds, and a set and a dict feed of the first; `early` msgs, then
/// `late` ones published after them (a few of each feed), each in an order it can be added.
struct World {
    accounts: Vec<AccountId>,
    feeds: Vec<TangleId>,
    follows: TangleId,
    profile: TangleId,
    early: Vec<Msg>,
    late: Vec<Msg>,
}

impl World {
    fn build() -> Self {
        let mut db = Db::new(MemStore::new());
        let keys: Vec<Keypair> = (0..3_u8)
            .map(|n| Keypair::from_seed(&[60 + n; 32]))
            .collect();
        let mut accounts = Vec::new();
        let mut feeds = Vec::new();
        for (n, key) in keys.iter().enumerate() {
            let account = db
                .create_account(key, "account", &format!("author{n}"))
                .expect("account");
            feeds.push(db.init_feed(key, &account, POST).expect("feed"));
            accounts.push(account);
        }
        let first = keys.first().expect("three");
        let owner = *accounts.first().expect("three");
        let follows = db
            .init_feed(first, &owner, &set::domain(FOLLOWS))
            .expect("set");
        let profile = db
            .init_feed(first, &owner, &dict::domain(PROFILE))
            .expect("dict");
        Self::write(&mut db, &keys, &accounts, 0..12);
        let early = records(&db);
        Self::write(&mut db, &keys, &accounts, 12..15);
        let late = records(&db).split_off(early.len());
        Self {
            accounts,
            feeds,
            follows,
            profile,
            early,
            late,
        }
    }

    /// Round `n`: a post by every author, a follow or unfollow and a profile field.
    fn write(
        db: &mut Db<MemStore>,
        keys: &[Keypair],
        accounts: &[AccountId],
        rounds: std::ops::Range<usize>,
    ) {
        for n in rounds {
            for (key, account) in keys.iter().zip(accounts) {
                db.publish(key, account, POST, json!({"n": n}), &[])
                    .expect("publish");
            }
            let (key, account) = (keys.first().expect("three"), accounts.first().expect("a"));
            let item = format!("friend{}", n % 4);
            if n % 3 == 2 {
                set::del(db, key, account, FOLLOWS, &item).expect("del");
            } else {
                set::add(db, key, account, FOLLOWS, &item).expect("add");
            }
            let mut field = serde_json::Map::new();
            field.insert(format!("field{}", n % 3), json!(n));
            dict::update(db, key, account, PROFILE, &field).expect("update");
        }
    }

    fn tangles(&self) -> Vec<TangleId> {
        let mut tangles = self.feeds.clone();
        tangles.extend([self.follows, self.profile]);
        tangles.extend(&self.accounts);
        tangles
    }

    /// A peer holding the account msgs and the early msgs `keep` selects by position.
    fn peer(&self, keep: impl Fn(usize) -> bool, goals: &[(TangleId, Goal)]) -> Peer {
        let mut peer = Peer::new();
        for (index, msg) in self.early.iter().enumerate() {
            if msg.metadata.account == msg::Account::OwnTangle || keep(index) {
                let _ = peer.add(msg.clone(), None);
            }
        }
        for account in &self.accounts {
            peer.set_goal(*account, Goal::All).expect("goal");
        }
        for (tangle, goal) in goals {
            peer.set_goal(*tangle, *goal).expect("goal");
        }
        peer
    }

    /// Goals of every kind: `all`, `newest-3`, `all`, `set`, `dict`.
    fn mixed_goals(&self) -> Vec<(TangleId, Goal)> {
        let [a, b, c] = self.feeds.as_slice() else {
            panic!("three feeds")
        };
        vec![
            (*a, Goal::All),
            (*b, Goal::Newest(3)),
            (*c, Goal::All),
            (self.follows, Goal::Set),
            (self.profile, Goal::Dict),
        ]
    }
}

/// Local writes after the first sync: these late msgs are added on this side.
fn late_writes(world: &World, side_of: impl Fn(usize) -> Option<Side>, side: Side) -> Vec<Msg> {
    world
        .late
        .iter()
        .enumerate()
        .filter(|(index, _)| side_of(*index) == Some(side))
        .map(|(_, msg)| msg.clone())
        .collect()
}

/// Adds `msgs` to a peer as local writes; returns them as stored, for the session.
fn write_locally(peer: &mut Peer, msgs: &[Msg]) -> Vec<(MsgId, Arc<Msg>)> {
    msgs.iter()
        .filter_map(|msg| peer.add(msg.clone(), None).ok().flatten())
        .collect()
}

/// Syncs `dialer` and `responder` over pzp-sync and over `sync.reconcile`, then adds the
/// late msgs `side_of` assigns as local writes on each side, one at a time, and syncs again
/// (realtime); asserts both methods leave both peers the same. Returns the reconcile pair
/// and the exchanges pzp-sync's dialer initiated.
fn both_methods(
    world: &World,
    dialer: &Peer,
    responder: &Peer,
    side_of: impl Fn(usize) -> Option<Side>,
) -> (ReconPair, u64) {
    let mut pzp = Pair::new(dialer.clone(), responder.clone(), Config::default());
    let mut recon = ReconPair::new(dialer.clone(), responder.clone());
    pzp.start().expect("start");
    pzp.run().expect("pzp-sync ends");
    recon.start().expect("start");
    recon.run().expect("sync.reconcile ends");
    for side in [Side::Responder, Side::Dialer] {
        for msg in late_writes(world, &side_of, side) {
            let stored = write_locally(pzp.peer_mut(side), std::slice::from_ref(&msg));
            pzp.added(side, stored).expect("pzp-sync takes it");
            pzp.run().expect("pzp-sync ends");
            let stored = write_locally(recon.peer_mut(side), &[msg]);
            recon.added(side, stored).expect("sync.reconcile takes it");
            recon.run().expect("sync.reconcile ends");
        }
    }
    assert_eq!(pzp.metrics().refused, 0);
    assert_eq!(recon.refusals, [Vec::new(), Vec::new()], "honest peers");
    let tangles = world.tangles();
    for side in [Side::Dialer, Side::Responder] {
        assert_eq!(
            holdings(recon.peer(side), &tangles),
            holdings(pzp.peer(side), &tangles),
            "{side:?} ends as with pzp-sync"
        );
    }
    (recon, pzp.session(Side::Dialer).stats().initiated)
}

fn index_of(side: Side) -> usize {
    match side {
        Side::Dialer => 0,
        Side::Responder => 1,
    }
}

#[test]
fn many_tangles_of_every_goal_kind_on_one_stream_end_as_with_pzp_sync() {
    let world = World::build();
    let dialer = world.peer(|index| index % 3 != 0, &world.mixed_goals());
    let everything: Vec<(TangleId, Goal)> = world
        .mixed_goals()
        .into_iter()
        .map(|(tangle, goal)| {
            (
                tangle,
                if goal == Goal::Newest(3) {
                    Goal::All
                } else {
                    goal
                },
            )
        })
        .collect();
    let responder = world.peer(|index| index % 4 != 1, &everything);
    let (recon, _) = both_methods(&world, &dialer, &responder, |_| None);
    let tangles = world.tangles();
    for side in [Side::Dialer, Side::Responder] {
        for tangle in &tangles {
            assert!(
                recon.finished[index_of(side)].contains_key(tangle),
                "{side:?} finished {tangle}"
            );
        }
    }
    assert!(recon.metrics().added_at_dialer > 0 && recon.metrics().added_at_responder > 0);
    let session = recon.session(Side::Dialer);
    assert_eq!(
        session.stats().opened,
        tangles.len() as u64,
        "one exchange each"
    );
    assert!(!session.is_busy());
}

#[test]
fn realtime_pushes_after_the_exchange_end_as_with_pzp_sync() {
    let world = World::build();
    let dialer = world.peer(|index| index % 2 == 0, &world.mixed_goals());
    let responder = world.peer(|_| true, &world.mixed_goals());
    // Late msgs alternate: written on the responder, then on the dialer.
    let side_of = |index: usize| Some([Side::Responder, Side::Dialer][index % 2]);
    let (recon, pzp_initiated) = both_methods(&world, &dialer, &responder, side_of);
    let pushes = recon.pushes;
    assert!(
        pushes[0] > 0 && pushes[1] > 0,
        "both sides pushed in realtime: {pushes:?}"
    );
    let session = recon.session(Side::Dialer);
    // The dialer lacked the feeds' roots, so the responder wanted nothing of them then and
    // is owed the dialer's later posts: both methods open those again.
    assert_eq!(
        session.stats().opened,
        pzp_initiated,
        "as many exchanges as pzp-sync initiates"
    );
    let late = recon
        .peer(Side::Dialer)
        .db
        .get(&world.late.last().expect("late").id());
    assert!(late.expect("memory").is_some(), "the last late msg arrived");
}

/// A msg written while its tangle's exchange runs is pushed when the exchange ends, and
/// nothing more: not the msgs above its depth that the remote holds already (pzp-sync's
/// session keeps just the msgs added meanwhile; pushing everything from the shallowest of
/// them sent the remote what it had).
#[test]
fn a_msg_written_during_an_exchange_is_pushed_after_it_and_nothing_more() {
    let key = Keypair::from_seed(&[71; 32]);
    let mut author = Db::new(MemStore::new());
    let account = author
        .create_account(&key, "account", "writer")
        .expect("account");
    let feed = author.init_feed(&key, &account, POST).expect("feed");
    let mut ids = Vec::new();
    let mut fork_base = None;
    for n in 0..12 {
        ids.push(
            author
                .publish(&key, &account, POST, json!({"text": n}), &[])
                .expect("publish"),
        );
        if n == 5 {
            fork_base = Some(author.clone());
        }
    }
    // A second device's post on top of post 6: depth 7 beside the author's 7..12.
    let mut fork_base = fork_base.expect("six posts");
    let fork_id = fork_base
        .publish(&key, &account, POST, json!({"text": "fork"}), &[])
        .expect("fork");
    let fork = fork_base.get(&fork_id).expect("memory").expect("stored");
    let everything = records(&author);
    let peer = || {
        let mut peer = Peer::new();
        for msg in &everything {
            peer.add(msg.clone(), None).expect("valid");
        }
        peer.set_goal(account, Goal::All).expect("goal");
        peer.set_goal(feed, Goal::All).expect("goal");
        peer
    };
    let mut recon = ReconPair::new(peer(), peer());
    recon.start().expect("start");
    recon.step(Side::Responder).expect("opened");
    assert!(
        recon
            .exchange(Side::Dialer, &feed)
            .is_some_and(|exchange| exchange.is_busy()),
        "the dialer's exchange of the feed runs"
    );
    let stored = write_locally(recon.peer_mut(Side::Dialer), &[Arc::unwrap_or_clone(fork)]);
    assert_eq!(stored.len(), 1, "the fork is new");
    recon.added(Side::Dialer, stored).expect("takes it");
    recon.run().expect("ends");
    assert_eq!(recon.pushes, [1, 0], "the fork alone crossed as a push");
    assert!(
        recon
            .peer(Side::Responder)
            .db
            .get(&fork_id)
            .expect("memory")
            .is_some(),
        "the responder holds the fork"
    );
    assert_eq!(recon.metrics().added_at_responder, 1);
    assert_eq!(ids.len(), 12);
}

#[test]
fn a_goal_set_after_the_first_exchange_opens_its_tangle() {
    let world = World::build();
    let feed = *world.feeds.first().expect("feeds");
    let dialer = world.peer(|_| false, &[]);
    let responder = world.peer(|_| true, &world.mixed_goals());
    let mut recon = ReconPair::new(dialer, responder);
    recon.start().expect("start");
    recon.run().expect("ends");
    let posts = |recon: &ReconPair| {
        let dialer = recon.peer(Side::Dialer);
        let in_feed = |msg: &Msg| msg.id() == feed || msg.metadata.tangles.contains_key(&feed);
        records(&dialer.db)
            .iter()
            .filter(|msg| in_feed(msg))
            .count()
    };
    assert_eq!(posts(&recon), 0, "no goal, nothing fetched");
    recon.set_goal(Side::Dialer, feed, Goal::All).expect("goal");
    recon.run().expect("ends");
    assert_eq!(posts(&recon), 13, "root and twelve posts");
}

// Hostile frames.

fn garbage_for(tangle: &TangleId) -> Vec<(Value, &'static str)> {
    vec![
        (
            json!({"id": tangle.to_string(), "phase": "recon", "msg": "!!"}),
            "frame",
        ),
        (
            json!({"id": tangle.to_string(), "phase": "nonsense"}),
            "frame",
        ),
        (
            json!({"id": tangle.to_string(), "phase": 3, "payload": {}}),
            "push",
        ),
        (
            json!({"id": tangle.to_string(), "phase": 4, "payload": [[], {}]}),
            "push",
        ),
    ]
}

#[test]
fn hostile_frames_are_refused_by_name_and_the_other_tangles_sync_on() {
    let world = World::build();
    let dialer = world.peer(|index| index % 3 != 0, &world.mixed_goals());
    let responder = world.peer(|_| true, &world.mixed_goals());
    let mut honest = ReconPair::new(dialer.clone(), responder.clone());
    honest.start().expect("start");
    honest.run().expect("ends");
    let mut attacked = ReconPair::new(dialer, responder);
    attacked.start().expect("start");
    let victim = *world.feeds.first().expect("feeds");
    for side in [Side::Dialer, Side::Responder] {
        for (frame, _) in garbage_for(&victim) {
            let refused = attacked.inject(side, &frame).expect("open");
            assert_eq!(refused.len(), 1, "{frame} refused once on {side:?}");
        }
    }
    let done = json!({"id": victim.to_string(), "phase": "done", "msgs": [], "need": []});
    let stray =
        json!({"id": world.follows.to_string(), "phase": "ranges", "have": [0, 1], "want": [0, 1]});
    // The dialer's feed exchange awaits `ranges`; a `done` is out of place there.
    let refused = attacked.inject(Side::Dialer, &done).expect("open");
    assert!(matches!(
        refused.as_slice(),
        [Refusal::Unexpected { phase: "done", .. }]
    ));
    attacked.run().expect("ends");
    let refused = attacked.inject(Side::Dialer, &stray).expect("open");
    assert!(matches!(
        refused.as_slice(),
        [Refusal::Unexpected {
            phase: "ranges",
            ..
        }]
    ));
    let tangles = world.tangles();
    for side in [Side::Dialer, Side::Responder] {
        assert_eq!(
            holdings(attacked.peer(side), &tangles),
            holdings(honest.peer(side), &tangles),
            "{side:?} ends as without the attack"
        );
    }
}

/// A lone session on `side`, with one peer's store, fed frames one at a time.
struct Lone {
    session: ReconSession,
    peer: Peer,
}

impl Lone {
    fn new(side: ExchangeSide) -> Self {
        Self {
            session: ReconSession::new(side),
            peer: Peer::new(),
        }
    }

    fn feed(&mut self, frame: Value) -> Vec<proto::sync::recon::Output> {
        let mut out = Vec::new();
        let mut store = IndexedDb::new(&mut self.peer.db, &mut self.peer.index);
        let Ok(()) = self.session.handle(
            Time::default(),
            Input::Received(frame),
            &mut store,
            &self.peer.goals,
            &mut out,
        );
        self.session.check_invariants();
        out
    }

    fn refusals(&mut self, frame: Value) -> Vec<Refusal> {
        self.feed(frame)
            .into_iter()
            .filter_map(|output| match output {
                proto::sync::recon::Output::Refused(refusal) => Some(refusal),
                _ => None,
            })
            .collect()
    }
}

fn tangle_numbered(n: usize) -> TangleId {
    let mut bytes = [0_u8; 32];
    bytes[..8].copy_from_slice(&(n as u64).to_be_bytes());
    TangleId::from_bytes(&bytes)
}

#[test]
fn numbered_frames_other_than_pushes_are_refused_by_name() {
    let mut lone = Lone::new(ExchangeSide::Responder);
    let tangle = tangle_numbered(1);
    for (frame, kind) in garbage_for(&tangle)
        .into_iter()
        .filter(|(_, k)| *k == "push")
    {
        let refused = lone.refusals(frame);
        assert!(
            matches!(
                refused.as_slice(),
                [Refusal::NotAPush { .. } | Refusal::Push(_)]
            ),
            "{kind}: {refused:?}"
        );
    }
    let bad_push = json!({"id": tangle.to_string(), "phase": 9, "payload": 7});
    let refused = lone.refusals(bad_push);
    assert_eq!(refused, vec![Refusal::Push(WireError::MsgsNotArray)]);
    let phase_one = json!({"id": tangle.to_string(), "phase": 1, "payload": [0, 3]});
    let refused = lone.refusals(phase_one);
    assert_eq!(refused, vec![Refusal::NotAPush { phase: 1 }]);
}

#[test]
fn a_remote_opening_more_than_the_bound_of_tangles_is_refused() {
    let mut lone = Lone::new(ExchangeSide::Responder);
    let open =
        |n: usize| json!({"id": tangle_numbered(n).to_string(), "phase": "open", "have": [1, 0]});
    for n in 0..TANGLES_TRACKED_MAX {
        assert!(lone.refusals(open(n)).is_empty(), "tangle {n} is answered");
    }
    assert_eq!(
        lone.refusals(open(TANGLES_TRACKED_MAX)),
        vec![Refusal::TooManyTangles {
            max: TANGLES_TRACKED_MAX
        }]
    );
    assert!(
        lone.refusals(open(0)).is_empty(),
        "known tangles still answered"
    );
}

#[test]
fn the_dialer_refuses_frames_for_tangles_it_never_opened() {
    let mut lone = Lone::new(ExchangeSide::Dialer);
    let ranges = json!({"id": tangle_numbered(3).to_string(), "phase": "ranges", "have": [0, 1], "want": [0, 1]});
    assert_eq!(
        lone.refusals(ranges),
        vec![Refusal::NotOpened { phase: "ranges" }]
    );
    assert!(
        lone.session.exchange(&tangle_numbered(3)).is_none(),
        "no state kept"
    );
}

#[test]
fn past_the_refusal_bound_the_stream_closes() {
    let world = World::build();
    let peer = world.peer(|_| true, &world.mixed_goals());
    let mut pair = ReconPair::new(peer.clone(), peer);
    let junk = json!({"id": "not an id", "phase": "open", "have": [0, 0]});
    for n in 0..REFUSALS_MAX {
        assert!(
            pair.inject(Side::Responder, &junk).is_ok(),
            "refusal {n} tolerated"
        );
    }
    let closed = pair.inject(Side::Responder, &junk);
    assert_eq!(
        closed,
        Err(RunError::Closed {
            side: Side::Responder,
            reason: CloseReason::TooManyRefusals { max: REFUSALS_MAX }
        })
    );
    assert!(pair.session(Side::Responder).is_closed());
}

/// The relay hole, as pzp-sync's `a_relay_empty_when_its_downstream_connected_serves_it`:
/// the responder held nothing of the feeds when the dialer's exchanges ran, then gets them.
/// Only the dialer opens exchanges, so the responder asks it to (`again`), and the dialer
/// ends holding what it would with pzp-sync, whose responder re-initiates itself.
#[test]
fn a_responder_that_gets_msgs_later_asks_the_dialer_to_open_again() {
    let world = World::build();
    let goals = world.mixed_goals();
    let dialer = world.peer(|_| false, &goals);
    let responder = world.peer(|_| false, &goals);
    let mut pzp = Pair::new(dialer.clone(), responder.clone(), Config::default());
    let mut recon = ReconPair::new(dialer, responder);
    pzp.start().expect("start");
    pzp.run().expect("ends");
    recon.start().expect("start");
    recon.run().expect("ends");
    let stored = write_locally(pzp.peer_mut(Side::Responder), &world.early);
    pzp.added(Side::Responder, stored).expect("takes it");
    pzp.run().expect("ends");
    let stored = write_locally(recon.peer_mut(Side::Responder), &world.early);
    recon.added(Side::Responder, stored).expect("takes it");
    recon.run().expect("ends");
    assert!(recon.session(Side::Responder).stats().asked > 0, "it asked");
    assert_eq!(recon.refusals, [Vec::new(), Vec::new()], "honest peers");
    let tangles = world.tangles();
    assert_eq!(
        holdings(recon.peer(Side::Dialer), &tangles),
        holdings(pzp.peer(Side::Dialer), &tangles),
        "the dialer ends as with pzp-sync"
    );
    assert!(recon.metrics().added_at_dialer > 30, "the feeds arrived");
}

#[test]
fn a_responder_refuses_again_frames() {
    let mut lone = Lone::new(ExchangeSide::Responder);
    let again = json!({"id": tangle_numbered(4).to_string(), "phase": "again"});
    assert_eq!(
        lone.refusals(again),
        vec![Refusal::Unexpected {
            phase: "again",
            stage: "responding"
        }]
    );
}
