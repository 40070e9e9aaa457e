//! Liveness and cost of sync across several peers (the cases of the sync-liveness design):
//! relays that were empty when their downstream connected, races between a relay's commits
//! and its downstream exchange, late joiners, goals other than `all`, partitions, and the
//! cost of a local add. Every peer's sessions check their invariants after every event.

use std::ops::ControlFlow;

use proptest::prelude::*;
use proto::db::Db;
use proto::goals::Goal;
use proto::ids::{AccountId, MsgId, TangleId};
use proto::keys::Keypair;
use proto::msg::{self, Msg};
use proto::store::{MemStore, Store};
use proto::testing::Peer;
use proto::testing::network::{Direction, LinkId, Network};
use proto::{dict, set};
use serde_json::json;

const POST: &str = "post";

/// An account that writes in a scratch database and hands out the msgs each write made.
struct Author {
    keypair: Keypair,
    db: Db<MemStore>,
    account: AccountId,
    seen: usize,
}

impl Author {
    fn new(seed: u8) -> Self {
        let keypair = Keypair::from_seed(&[seed; 32]);
        let mut db = Db::new(MemStore::new());
        let account = db
            .create_account(&keypair, "account", &format!("author{seed}"))
            .expect("account");
        Self {
            keypair,
            db,
            account,
            seen: 0,
        }
    }

    fn feed(&self, domain: &str) -> TangleId {
        msg::feed_id(&self.account, domain)
    }

    /// The msgs written since the last call (the first call includes the account's).
    fn fresh(&mut self) -> Vec<Msg> {
        let mut all = Vec::new();
        let Ok(()) = self.db.store().scan(&mut |record| {
            all.push(Msg::clone(&record.msg));
            ControlFlow::Continue(())
        });
        let fresh = all.split_off(self.seen.min(all.len()));
        self.seen += fresh.len();
        fresh
    }

    /// `count` posts on `domain`; the msgs they made.
    fn posts(&mut self, domain: &str, count: usize) -> Vec<Msg> {
        for index in 0..count {
            self.db
                .publish(
                    &self.keypair,
                    &self.account,
                    domain,
                    json!({"text": format!("{domain} {index}")}),
                    &[],
                )
                .expect("publish");
        }
        self.fresh()
    }
}

/// A peer with these goals.
fn peer(goals: &[(TangleId, Goal)]) -> Peer {
    let mut peer = Peer::new();
    for (tangle, goal) in goals {
        peer.set_goal(*tangle, *goal).expect("few goals");
    }
    peer
}

/// The msgs with data a peer holds in `tangle`.
fn held(net: &mut Network, at: usize, tangle: &TangleId) -> Vec<MsgId> {
    let Ok(tangle_state) = net.peer_mut(at).db.tangle(tangle);
    tangle_state
        .topo_order()
        .filter(|id| tangle_state.has_data(id) == Some(true))
        .copied()
        .collect()
}

/// Delivers everything on `link` (both ways) until it is quiet, leaving other links alone.
fn drain(net: &mut Network, link: LinkId) {
    loop {
        let on_link: Vec<Direction> = net
            .pending()
            .into_iter()
            .filter(|direction| direction.link == link)
            .collect();
        if on_link.is_empty() {
            return;
        }
        for direction in on_link {
            net.deliver(direction).expect("deliver");
        }
    }
}

fn toward(link: LinkId, to: usize) -> Direction {
    Direction { link, to }
}

/// A (author) ← B ← C, all with goal `all` on A's feed; the author's `count` posts.
fn chain(count: usize) -> (Network, Author, [usize; 3], TangleId) {
    let mut author = Author::new(1);
    let feed = author.feed(POST);
    let goals = [(feed, Goal::All)];
    let mut net = Network::new();
    let a = net.add_peer(peer(&goals));
    let b = net.add_peer(peer(&goals));
    let c = net.add_peer(peer(&goals));
    let posts = author.posts(POST, count);
    net.add_local(a, &posts).expect("author's msgs");
    (net, author, [a, b, c], feed)
}

#[test]
fn a_relay_empty_when_its_downstream_connected_serves_it() {
    // The hole: C dials B while B is empty; B then gets everything from A.
    let (mut net, _, [a, b, c], feed) = chain(50);
    net.connect(c, b).expect("connect");
    net.run().expect("quiet");
    assert!(held(&mut net, c, &feed).is_empty());
    net.connect(b, a).expect("connect");
    net.run().expect("quiet");
    assert_eq!(held(&mut net, b, &feed).len(), 50);
    assert_eq!(held(&mut net, c, &feed), held(&mut net, a, &feed));
}

#[test]
fn the_reference_mode_has_the_hole_and_the_storm() {
    // pzp-sync 1.0.4, for comparison rows: the same chain leaves C empty…
    let (mut net, _, [a, b, c], feed) = chain(50);
    let mut reference = Network::with_config(proto::sync::Config {
        reinitiation: proto::sync::Reinitiation::Reference,
        ..proto::sync::Config::default()
    });
    let mut author = Author::new(1);
    let goals = [(feed, Goal::All)];
    let (ra, rb, rc) = (
        reference.add_peer(peer(&goals)),
        reference.add_peer(peer(&goals)),
        reference.add_peer(peer(&goals)),
    );
    let posts = author.posts(POST, 50);
    reference.add_local(ra, &posts).expect("author");
    reference.connect(rc, rb).expect("connect");
    reference.run().expect("quiet");
    reference.connect(rb, ra).expect("connect");
    reference.run().expect("quiet");
    assert_eq!(held(&mut reference, rb, &feed).len(), 50);
    assert!(held(&mut reference, rc, &feed).is_empty(), "the relay hole");
    // …and costs a phase 1 per requested tangle and stream on every add once exchanges are
    // unfinished, where ours converges with few.
    net.connect(c, b).expect("connect");
    net.connect(b, a).expect("connect");
    net.run().expect("quiet");
    assert_eq!(held(&mut net, c, &feed).len(), 50);
}

#[test]
fn a_relay_empty_when_it_dialed_its_downstream_serves_it() {
    let (mut net, _, [a, b, c], feed) = chain(20);
    net.connect(b, c).expect("connect");
    net.run().expect("quiet");
    net.connect(a, b).expect("connect");
    net.run().expect("quiet");
    assert_eq!(held(&mut net, c, &feed).len(), 20);
}

#[test]
fn the_relay_commits_between_its_phase_2_and_the_downstream_phase_9() {
    let (mut net, _, [a, b, c], feed) = chain(30);
    let down = net.connect(c, b).expect("connect");
    // C's phase 1 reaches B; B answers (empty have, empty want).
    assert!(net.deliver(toward(down, b)).expect("phase 1"));
    // Now B fetches everything from A before C's answer arrives.
    let up = net.connect(b, a).expect("connect");
    drain(&mut net, up);
    assert_eq!(held(&mut net, b, &feed).len(), 30);
    // C takes the shortcut (phase 9, nothing), B consumes it; then the rest.
    net.run().expect("quiet");
    assert_eq!(held(&mut net, c, &feed).len(), 30);
}

#[test]
fn the_relay_commits_between_its_phase_2_and_its_phase_8() {
    // B already holds the first half and C the first quarter: a full bloom exchange, during
    // which B gets the second half from A.
    let mut author = Author::new(2);
    let feed = author.feed(POST);
    let goals = [(feed, Goal::All)];
    let mut net = Network::new();
    let a = net.add_peer(peer(&goals));
    let b = net.add_peer(peer(&goals));
    let c = net.add_peer(peer(&goals));
    let quarter = author.posts(POST, 10);
    let half = author.posts(POST, 10);
    let rest = author.posts(POST, 20);
    for msgs in [&quarter, &half, &rest] {
        net.add_local(a, msgs).expect("author");
    }
    net.add_local(b, &quarter).expect("b");
    net.add_local(b, &half).expect("b");
    net.add_local(c, &quarter).expect("c");
    let down = net.connect(c, b).expect("connect");
    assert!(net.deliver(toward(down, b)).expect("phase 1"));
    assert!(net.deliver(toward(down, c)).expect("phase 2"));
    assert!(net.deliver(toward(down, b)).expect("phase 3"));
    let up = net.connect(b, a).expect("connect");
    drain(&mut net, up);
    assert_eq!(held(&mut net, b, &feed).len(), 40);
    net.run().expect("quiet");
    assert_eq!(held(&mut net, c, &feed).len(), 40);
    // The msgs B got during the exchange went out as realtime pushes when it ended, not by
    // repeating the exchange.
    let relay = net.node(b).sessions.get(&down).expect("session");
    assert_eq!(relay.stats().repeated, 0);
    assert!(relay.stats().realtime_pushed >= 20);
}

#[test]
fn a_late_joiner_needs_exactly_one_exchange() {
    let (mut net, _, [a, b, c], feed) = chain(25);
    net.connect(b, a).expect("connect");
    net.run().expect("quiet");
    let down = net.connect(c, b).expect("connect");
    net.run().expect("quiet");
    assert_eq!(held(&mut net, c, &feed).len(), 25);
    assert_eq!(net.traffic().exchanges_on(down), 1);
}

#[test]
fn a_relay_that_connects_empty_then_publishes_its_own_feed() {
    let mut relay_author = Author::new(3);
    let own = relay_author.feed(POST);
    let mut net = Network::new();
    let b = net.add_peer(peer(&[(own, Goal::All)]));
    let c = net.add_peer(peer(&[(own, Goal::All)]));
    for (dialer, responder) in [(c, b), (b, c)] {
        let link = net.connect(dialer, responder).expect("connect");
        net.run().expect("quiet");
        let posts = relay_author.posts(POST, 3);
        net.add_local(b, &posts).expect("publish");
        net.run().expect("quiet");
        assert_eq!(held(&mut net, c, &own), held(&mut net, b, &own));
        net.disconnect(link).expect("disconnect");
    }
    assert_eq!(held(&mut net, c, &own).len(), 6);
}

#[test]
fn two_empty_peers_fed_from_different_upstreams_end_equal() {
    for b_dials in [true, false] {
        let mut author = Author::new(4);
        let feed = author.feed(POST);
        let goals = [(feed, Goal::All)];
        let mut net = Network::new();
        let early = author.posts(POST, 8);
        let late = author.posts(POST, 8);
        let upstream_old = net.add_peer(peer(&goals));
        let upstream_new = net.add_peer(peer(&goals));
        net.add_local(upstream_old, &early).expect("old");
        net.add_local(upstream_new, &early).expect("new");
        net.add_local(upstream_new, &late).expect("new");
        let b = net.add_peer(peer(&goals));
        let c = net.add_peer(peer(&goals));
        if b_dials {
            net.connect(b, c).expect("connect");
        } else {
            net.connect(c, b).expect("connect");
        }
        net.run().expect("quiet");
        net.connect(b, upstream_old).expect("connect");
        net.connect(upstream_new, c).expect("connect");
        net.run().expect("quiet");
        assert_eq!(held(&mut net, b, &feed).len(), 16, "b dials: {b_dials}");
        assert_eq!(held(&mut net, c, &feed).len(), 16, "b dials: {b_dials}");
    }
}

#[test]
fn a_downstream_without_the_goal_costs_at_most_one_more_exchange_and_gets_no_push() {
    for downstream_goal in [None, Some(Goal::None)] {
        let (mut net, mut author, [a, b, _], feed) = chain(10);
        let c = net.add_peer(peer(&[]));
        if let Some(goal) = downstream_goal {
            net.set_goal(c, feed, goal).expect("goal");
        }
        let down = net.connect(c, b).expect("connect");
        net.run().expect("quiet");
        let before = net.traffic().exchanges_on(down);
        net.connect(b, a).expect("connect");
        net.run().expect("quiet");
        let more = author.posts(POST, 5);
        net.add_local(a, &more).expect("author");
        net.run().expect("quiet");
        assert!(held(&mut net, c, &feed).is_empty());
        assert!(net.traffic().exchanges_on(down) <= before + 2);
        let relay = net.node(b).sessions.get(&down).expect("session");
        assert_eq!(relay.stats().realtime_pushed, 0, "{downstream_goal:?}");
    }
}

#[test]
fn a_cut_between_relay_and_downstream_heals() {
    let (mut net, mut author, [a, b, c], feed) = chain(5);
    net.connect(b, a).expect("connect");
    let down = net.connect(c, b).expect("connect");
    net.run().expect("quiet");
    net.disconnect(down).expect("cut");
    let during = author.posts(POST, 7);
    net.add_local(a, &during).expect("author");
    net.run().expect("quiet");
    assert_eq!(held(&mut net, c, &feed).len(), 5);
    net.connect(c, b).expect("heal");
    net.run().expect("quiet");
    assert_eq!(held(&mut net, c, &feed).len(), 12);
}

#[test]
fn a_cut_upstream_heals_while_the_downstream_stays_on_the_relay() {
    let (mut net, mut author, [a, b, c], feed) = chain(5);
    let up = net.connect(b, a).expect("connect");
    net.connect(c, b).expect("connect");
    net.run().expect("quiet");
    net.disconnect(up).expect("cut");
    let during = author.posts(POST, 7);
    net.add_local(a, &during).expect("author");
    net.run().expect("quiet");
    net.connect(b, a).expect("heal");
    net.run().expect("quiet");
    assert_eq!(held(&mut net, c, &feed).len(), 12);
    let after = author.posts(POST, 2);
    net.add_local(a, &after).expect("author");
    net.run().expect("quiet");
    assert_eq!(held(&mut net, c, &feed).len(), 14);
}

#[test]
fn newest_n_goals_pass_through_an_empty_relay() {
    let mut author = Author::new(5);
    let feed = author.feed(POST);
    let goals = [(feed, Goal::Newest(3))];
    let mut net = Network::new();
    let a = net.add_peer(peer(&[(feed, Goal::All)]));
    let b = net.add_peer(peer(&goals));
    let c = net.add_peer(peer(&goals));
    let posts = author.posts(POST, 10);
    net.add_local(a, &posts).expect("author");
    net.connect(c, b).expect("connect");
    net.run().expect("quiet");
    net.connect(b, a).expect("connect");
    net.run().expect("quiet");
    let newest: Vec<MsgId> = held(&mut net, a, &feed).into_iter().rev().take(3).collect();
    let at_c = held(&mut net, c, &feed);
    for id in &newest {
        assert!(at_c.contains(id), "c lacks {id}");
    }
    // And later posts keep flowing.
    let more = author.posts(POST, 2);
    net.add_local(a, &more).expect("author");
    net.run().expect("quiet");
    let at_c = held(&mut net, c, &feed);
    for (id, _) in more.iter().map(|msg| (msg.id(), ())) {
        assert!(at_c.contains(&id));
    }
}

#[test]
fn set_and_dict_goals_pass_through_an_empty_relay() {
    let mut author = Author::new(6);
    let follows = set::feed_id(&author.account, "follows");
    let profile = dict::feed_id(&author.account, "profile");
    let goals = [(follows, Goal::Set), (profile, Goal::Dict)];
    let mut net = Network::new();
    let a = net.add_peer(peer(&[(follows, Goal::All), (profile, Goal::All)]));
    let b = net.add_peer(peer(&goals));
    let c = net.add_peer(peer(&goals));
    for item in ["x", "y", "z"] {
        set::add(
            &mut author.db,
            &author.keypair,
            &author.account,
            "follows",
            item,
        )
        .expect("set");
    }
    let mut update = serde_json::Map::new();
    update.insert("name".to_owned(), json!("A"));
    dict::update(
        &mut author.db,
        &author.keypair,
        &author.account,
        "profile",
        &update,
    )
    .expect("dict");
    let written = author.fresh();
    net.add_local(a, &written).expect("author");
    net.connect(c, b).expect("connect");
    net.run().expect("quiet");
    net.connect(b, a).expect("connect");
    net.run().expect("quiet");
    let Ok(items) = set::read(&mut net.peer_mut(c).db, &author.account, "follows");
    assert_eq!(items.into_vec(), vec![json!("x"), json!("y"), json!("z")]);
    let Ok(fields) = dict::read(&mut net.peer_mut(c).db, &author.account, "profile");
    assert_eq!(fields.get("name"), Some(&json!("A")));
}

#[test]
fn an_account_change_re_initiates_that_accounts_feeds() {
    // B relays A's feed to C in realtime; C follows the feed, not the account tangle. The
    // account adds a second key and posts with it. The account change makes B sync the feed
    // with C again (one exchange); the post, pushed before that exchange can carry the
    // account msg, is refused by C, which fetches the feed again (one more) and gets both.
    let (mut net, mut author, [a, b, c], feed) = chain(3);
    net.connect(b, a).expect("connect");
    let down = net.connect(c, b).expect("connect");
    net.run().expect("quiet");
    assert_eq!(held(&mut net, c, &feed).len(), 3);
    let second = Keypair::from_seed(&[99; 32]);
    let consent = proto::account::consent(&second, &author.account);
    author
        .db
        .account_add(
            &author.keypair,
            &author.account,
            &second.public(),
            &consent,
            &[],
        )
        .expect("add key");
    let key_added = author.fresh();
    author
        .db
        .publish(
            &second,
            &author.account,
            POST,
            json!({"text": "new key"}),
            &[],
        )
        .expect("publish");
    let post = author.fresh();
    let before = net.traffic().exchanges_on(down);
    net.add_local(b, &key_added).expect("account msg");
    net.add_local(b, &post).expect("post");
    net.run().expect("quiet");
    assert_eq!(net.traffic().exchanges_on(down), before + 2);
    assert_eq!(
        net.node(c)
            .sessions
            .get(&down)
            .expect("session")
            .stats()
            .refetched,
        1
    );
    assert_eq!(held(&mut net, c, &feed).len(), 4);
}

#[test]
fn a_local_add_sends_at_most_one_phase_1_per_touched_tangle_and_session() {
    // A hub with 6 sessions that requested 20 tangles each, all synced; one post re-initiates
    // nothing (the downstreams are in realtime) and is pushed once per session.
    let mut authors: Vec<Author> = (10..30).map(Author::new).collect();
    let feeds: Vec<TangleId> = authors.iter().map(|author| author.feed(POST)).collect();
    let goals: Vec<(TangleId, Goal)> = feeds.iter().map(|feed| (*feed, Goal::All)).collect();
    let mut net = Network::new();
    let hub = net.add_peer(peer(&goals));
    for author in &mut authors {
        let posts = author.posts(POST, 2);
        net.add_local(hub, &posts).expect("hub");
    }
    let leaves: Vec<usize> = (0..6).map(|_| net.add_peer(peer(&goals))).collect();
    for leaf in &leaves {
        net.connect(*leaf, hub).expect("connect");
    }
    net.run().expect("quiet");
    let before = net.traffic().clone();
    let post = authors.first_mut().expect("author").posts(POST, 1);
    net.add_local(hub, &post).expect("post");
    net.run().expect("quiet");
    let after = net.traffic();
    let phase_1 = after.exchanges() - before.exchanges();
    assert!(
        phase_1 <= 6,
        "{phase_1} phase-1 objects for one add on 6 sessions"
    );
    let objects = after.objects() - before.objects();
    assert!(objects <= 6 * 2, "{objects} objects for one add");
    for leaf in leaves {
        assert_eq!(held(&mut net, leaf, feeds.first().expect("feed")).len(), 3);
    }
}

/// What a random run does, on a line or star of peers whose first peer authors the feed.
#[derive(Debug, Clone)]
enum Step {
    /// Connect the `n`th edge of the topology (if not connected).
    Connect(usize),
    /// Cut the `n`th edge (if connected).
    Cut(usize),
    /// The author publishes.
    Publish(usize),
    /// Deliver one object on some direction (index into the waiting ones).
    Deliver(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (0usize..4).prop_map(Step::Connect),
        1 => (0usize..4).prop_map(Step::Cut),
        2 => (1usize..4).prop_map(Step::Publish),
        8 => (0usize..16).prop_map(Step::Deliver),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random connects, cuts, publishes and delivery orders on a line or a star of 3–5 peers
    /// with goal `all`: once every edge is up and the network is quiet, everyone holds the
    /// feed; each add costs a bounded number of objects.
    #[test]
    fn lines_and_stars_converge(
        peers in 3usize..=5,
        star in any::<bool>(),
        steps in prop::collection::vec(step(), 1..60),
    ) {
        let mut author = Author::new(40);
        let feed = author.feed(POST);
        let goals = [(feed, Goal::All)];
        let mut net = Network::new();
        let nodes: Vec<usize> = (0..peers).map(|_| net.add_peer(peer(&goals))).collect();
        let first = author.posts(POST, 1);
        net.add_local(0, &first).expect("author");
        let mut published = 1usize;
        let mut publishes = 1u64;
        let mut connects = 0u64;
        // A line 0-1-2-… (each peer dials the previous one), or a star whose hub is the last
        // peer (every other peer dials it). Peer 0 authors the feed.
        let hub = peers - 1;
        let edges: Vec<(usize, usize)> = if star {
            (0..hub).map(|leaf| (leaf, hub)).collect()
        } else {
            (1..peers).map(|index| (index, index - 1)).collect()
        };
        let mut up: Vec<Option<LinkId>> = vec![None; edges.len()];
        for step in steps {
            match step {
                Step::Connect(edge) | Step::Cut(edge) => {
                    let edge = edge % edges.len();
                    let (dialer, responder) = edges[edge];
                    match (matches!(step, Step::Connect(_)), up[edge]) {
                        (true, None) => {
                            connects += 1;
                            up[edge] = Some(net.connect(dialer, responder).expect("connect"));
                        }
                        (false, Some(link)) => {
                            net.disconnect(link).expect("cut");
                            up[edge] = None;
                        }
                        _ => {}
                    }
                }
                Step::Publish(count) => {
                    let posts = author.posts(POST, count);
                    published += count;
                    publishes += 1;
                    net.add_local(0, &posts).expect("author");
                }
                Step::Deliver(index) => {
                    let pending = net.pending();
                    if !pending.is_empty() {
                        net.deliver(pending[index % pending.len()]).expect("deliver");
                    }
                }
            }
        }
        for edge in 0..edges.len() {
            if up[edge].is_none() {
                let (dialer, responder) = edges[edge];
                connects += 1;
                up[edge] = Some(net.connect(dialer, responder).expect("connect"));
            }
        }
        net.run().expect("quiet");
        for node in nodes {
            prop_assert_eq!(held(&mut net, node, &feed).len(), published, "peer {}", node);
        }
        // Cost: a connection starts one exchange per goal; a batch of adds at a peer starts
        // at most one per session (owed, or a repeat), and each repeat or deferral at most
        // one more. Every batch is added once at each peer.
        let degree = peers as u64 - 1;
        let bound = 2 * connects + 3 * publishes * peers as u64 * degree;
        prop_assert!(
            net.traffic().exchanges() <= bound,
            "{} exchanges, bound {} ({} connects, {} publishes)",
            net.traffic().exchanges(),
            bound,
            connects,
            publishes
        );
    }
}
