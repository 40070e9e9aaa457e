//! PPPPP behind the replication seam: a [`Replicator`] over `proto`'s pure machines — a
//! peer's database (`Db<MemStore>`), sync index and goals, kept across crashes as a disk
//! keeps them, and the running incarnation's sync sessions (`proto::sync::Sessions`, the
//! driver the node uses), which a crash or going offline drops. The engine
//! (`crate::replicated`) runs it as it runs the baselines: one lifecycle, one set of
//! connection policies, one collector for every row of a comparison.
//!
//! ```text
//! mod.rs       the machine: its state, the seam's inputs as sync events, its start and stop
//! app.rs       the app: the account at the first start, the workload's writes, skipped writes
//! sessions.rs  one event through the sessions and each output applied (send, commit, prune,
//!              rounds), a commit's additions fed back as further steps
//! wire.rs      a sync object on the seam, with its bytes
//! ```
//!
//! It names what it publishes and stores itself (real msg and tangle IDs, the account root
//! and moots the plan does not schedule): [`Replicator::NAMES_ITEMS`]. Byte counts are the
//! full-stack tier's: a sync object costs its JSON text plus the muxrpc header, split into
//! msgs, bloom and control as the node splits it; an SHSE handshake its four messages
//! (client 64 + 144 bytes, server 64 + 80).

mod app;
mod sessions;
mod wire;

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use baselines::{Handshake, Input, LinkId, Millis, Output, Replicator};
use proto::db::Db;
use proto::goals::Goals;
use proto::ids::{AccountId, MsgId, TangleId};
use proto::ingest::Snapshot;
use proto::keys::Keypair;
use proto::store::{MemStore, Store};
use proto::sync::wire::Received;
use proto::sync::{Config, Event as SyncEvent, Sessions, SyncIndex};
use proto::validate::{Verdicts, Verifier};
use sim::check::Holdings;
use sim::plan::{PeerIdx, Plan};
use sim::scenario::Transport;
use sim::workload::{self, Memory, Scheduled};

pub use wire::SyncWire;

/// SHSE bytes the client sends (hello 64, authenticate 144).
const SHSE_CLIENT_BYTES: u64 = 64 + 144;
/// SHSE bytes the server sends (hello 64, accept 80).
const SHSE_SERVER_BYTES: u64 = 64 + 80;

/// What every peer's machine of a run shares: facts about a msg that are the same at every
/// peer (its encoded size, which duplicates and GC report), and a buffer for the JSON text of
/// sent sync objects (only their length is used). One thread runs the whole run.
#[derive(Debug, Default)]
struct Shared {
    msg_bytes: RefCell<BTreeMap<MsgId, u64>>,
    json: RefCell<String>,
}

/// The dialer's sync objects of one tangle on a link, for its rounds: how many it sent and
/// received, and how many at its last reported round.
#[derive(Debug, Clone, Copy, Default)]
struct TangleObjects {
    exchanged: u64,
    at_last_round: Option<u64>,
}

/// A link of the running incarnation.
#[derive(Debug, Default)]
struct LinkState {
    /// This peer dialed it (only the dialer reports rounds, so only it counts objects).
    initiator: bool,
    objects: BTreeMap<TangleId, TangleObjects>,
}

/// What a peer keeps while it runs; gone when it crashes or goes offline.
#[derive(Debug)]
struct Incarnation {
    sessions: Sessions<LinkId>,
    links: BTreeMap<LinkId, LinkState>,
}

/// One PPPPP peer: its store, goals and app, and its running sessions.
#[derive(Debug)]
pub struct Ppppp {
    /// Its index and name in the plan (for its account and notes), and the run's seed.
    index: PeerIdx,
    name: String,
    seed: u64,
    keypair: Keypair,
    account: AccountId,
    db: Db<MemStore>,
    sync_index: SyncIndex,
    goals: Goals,
    /// The app's memory across restarts, and its publishes.
    memory: Memory,
    schedule: Vec<Scheduled>,
    /// Its own feeds' tangles → the workload's feed names.
    feeds: BTreeMap<TangleId, String>,
    /// When its last `store_size` was reported.
    store_size_at: Option<u64>,
    config: Config,
    transport: Transport,
    shared: Rc<Shared>,
    /// Whether to assert the sessions' invariants after every event (debug builds).
    check_invariants: bool,
    running: Option<Incarnation>,
}

/// Every peer's machine for `plan`: its keys and account, its goals and its schedule of
/// writes. Each msg's signature is verified once per run and the verdict shared, unless
/// `verify_all`.
#[must_use]
pub fn machines(plan: &Plan, verify_all: bool) -> Vec<Ppppp> {
    let verdicts = (!verify_all).then(Verdicts::new);
    let verifier = || {
        verdicts
            .clone()
            .map_or_else(Verifier::new, Verifier::sharing)
    };
    let keypairs: Vec<_> = plan
        .peers
        .iter()
        .map(|peer| workload::keypair(plan.seed, peer.index))
        .collect();
    let accounts: Vec<_> = plan
        .peers
        .iter()
        .zip(&keypairs)
        .map(|(peer, keypair)| workload::account_root(plan.seed, peer.index, keypair).id())
        .collect();
    let mut schedules = workload::schedules(plan, &accounts);
    let mut feeds: Vec<BTreeMap<TangleId, String>> = vec![BTreeMap::new(); plan.peers.len()];
    for (tangle, (author, feed)) in workload::feed_names(plan, &accounts) {
        feeds[author as usize].insert(tangle, feed);
    }
    let config = Config {
        reinitiation: match plan.reinitiation {
            sim::scenario::Reinitiation::Targeted => proto::sync::Reinitiation::Targeted,
            sim::scenario::Reinitiation::Reference => proto::sync::Reinitiation::Reference,
        },
        ..Config::default()
    };
    let shared = Rc::new(Shared::default());
    plan.peers
        .iter()
        .zip(keypairs)
        .map(|(peer, keypair)| {
            let mut goals = Goals::new();
            for (tangle, goal) in workload::goals(peer, &accounts) {
                // A peer with more goals than the bound keeps the first ones, as the node's
                // goals actor does.
                let _ = goals.set(tangle, goal);
            }
            let index = peer.index as usize;
            Ppppp {
                index: peer.index,
                name: plan.peer_name(peer.index).to_owned(),
                seed: plan.seed,
                keypair,
                account: accounts[index],
                db: Db::with_verifier(MemStore::new(), verifier()),
                sync_index: SyncIndex::new(),
                goals,
                memory: Memory::default(),
                schedule: std::mem::take(&mut schedules[index]),
                feeds: std::mem::take(&mut feeds[index]),
                store_size_at: None,
                config,
                transport: plan.transport,
                shared: Rc::clone(&shared),
                check_invariants: cfg!(debug_assertions),
                running: None,
            }
        })
        .collect()
}

impl Replicator for Ppppp {
    type Wire = SyncWire;

    fn handle(&mut self, now: Millis, input: Input<SyncWire>, out: &mut Vec<Output<SyncWire>>) {
        let Some(running) = self.running.as_mut() else {
            return;
        };
        let event = match input {
            Input::LinkUp {
                link, initiator, ..
            } => {
                let state = LinkState {
                    initiator,
                    ..LinkState::default()
                };
                running.links.insert(link, state);
                SyncEvent::Opened {
                    key: link,
                    initiate: initiator,
                }
            }
            Input::LinkDown { link } => {
                running.links.remove(&link);
                SyncEvent::Closed { key: link }
            }
            Input::Received { link, msg } => {
                running.count_object(link, msg.tangle());
                let decoded = Ok(Received::of_sent(msg.into_msg()));
                SyncEvent::Decoded { key: link, decoded }
            }
            Input::Publish(item) => {
                let index = (item.id.seq as usize).saturating_sub(1);
                let Some(msgs) = self.publish(index, out) else {
                    return;
                };
                SyncEvent::LocalAdded { msgs, origin: None }
            }
            Input::Tick => SyncEvent::Tick,
        };
        self.feed(now, VecDeque::from([event]), out);
    }

    fn deadline(&self) -> Option<Millis> {
        let running = self.running.as_ref()?;
        running.sessions.deadline().map(|at| at.0)
    }

    /// TCP's round trip, then SHSE's two and its four messages (plaintext: TCP's only).
    fn handshake(&self) -> Handshake {
        match self.transport {
            Transport::Shse => Handshake {
                round_trips: 3,
                bytes: SHSE_SERVER_BYTES + SHSE_CLIENT_BYTES,
                acceptor_bytes: SHSE_SERVER_BYTES,
            },
            Transport::Plaintext => Handshake {
                round_trips: 1,
                bytes: 0,
                acceptor_bytes: 0,
            },
        }
    }

    fn stored_bytes(&self) -> u64 {
        self.db.store().stats().bytes
    }

    const NAMES_ITEMS: bool = true;

    /// New sessions; the node rebuilds its sync index from the store at every start. At the
    /// first, the app creates its account; then it skips what it missed while down.
    fn start(&mut self, now: Millis, out: &mut Vec<Output<SyncWire>>) {
        let first = self.memory.incarnations == 0;
        self.memory.incarnations += 1;
        self.running = Some(Incarnation {
            sessions: Sessions::new(self.config),
            links: BTreeMap::new(),
        });
        self.sync_index = SyncIndex::new();
        if first {
            self.create_account(out);
        }
        self.skip_missed(now, out);
    }

    fn stop(&mut self) {
        self.running = None;
    }

    fn holdings(&mut self) -> Option<BTreeMap<String, Vec<String>>> {
        let Ok(snapshot) = Snapshot::of(&mut self.db);
        Some(Holdings::from(&snapshot).tangles)
    }
}

impl Incarnation {
    /// Counts a sync object of `tangle` on `link`, sent or received, if this peer dialed it.
    fn count_object(&mut self, link: LinkId, tangle: &TangleId) {
        if let Some(state) = self.links.get_mut(&link)
            && state.initiator
        {
            state.objects.entry(*tangle).or_default().exchanged += 1;
        }
    }
}
