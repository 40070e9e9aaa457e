//! Workload content, shared by every engine: each peer's keypair and account, the goals it
//! sets, and what each of its scheduled writes publishes (post text, set and dict updates
//! with the IDs they supersede). One module, so both tiers publish byte-identical msgs for
//! the same plan and seed.

use std::collections::{BTreeMap, BTreeSet};

use proto::goals::Goal;
use proto::ids::{AccountId, MsgId, TangleId};
use proto::keys::Keypair;
use proto::msg::Msg;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::goal::FeedKind;
use crate::plan::{Content, PeerIdx, PeerPlan, Plan};

/// The account subdomain a peer creates its account under (the reference's DB: `account`).
pub const ACCOUNT_SUBDOMAIN: &str = "account";

/// The purpose number of the account-nonce stream in a peer's seeded streams.
const RNG_ACCOUNT_NONCE: u64 = 1;
/// The purpose number of the dial-jitter stream in a peer's seeded streams.
const RNG_CONNECTIONS: u64 = 2;

/// What one scheduled msg writes.
#[derive(Debug, Clone)]
pub enum Write {
    /// A post with this text.
    Post {
        /// The text (sized as the plan says).
        text: String,
    },
    /// A dict update of the dict feed `feed`.
    Dict {
        /// Feed name.
        feed: String,
        /// Fields set.
        update: BTreeMap<String, String>,
    },
    /// A set update of the set feed `feed` (follows are set adds of account IDs).
    Set {
        /// Feed name.
        feed: String,
        /// Add (`true`) or delete.
        add: bool,
        /// The item.
        item: String,
    },
}

/// One msg to publish.
#[derive(Debug, Clone)]
pub struct Scheduled {
    /// When (simulated ms).
    pub t_ms: u64,
    /// The domain to publish on.
    pub domain: String,
    /// The feed's tangle ID.
    pub tangle: TangleId,
    /// What to write.
    pub write: Write,
}

/// What a peer's app remembers across restarts (the part of its state that lives on disk):
/// which scheduled writes are done, and the set/dict roots it wrote.
#[derive(Debug, Default, Clone)]
pub struct Memory {
    /// Incarnations started so far.
    pub incarnations: u64,
    /// The next scheduled write.
    pub next: usize,
    /// Dict feed → field → the msg that set it last.
    dict_roots: BTreeMap<String, BTreeMap<String, MsgId>>,
    /// Set feed → item → the msg that touched it last.
    set_roots: BTreeMap<String, BTreeMap<String, MsgId>>,
    /// Set feed → items in the set.
    set_items: BTreeMap<String, BTreeSet<String>>,
}

impl Memory {
    /// The data to publish for `write`, and the IDs it supersedes (pzp-set / pzp-dict: an
    /// update supersedes the roots of what it touches; a set update also those of items no
    /// longer in the set). The author is the only writer, so its own bookkeeping is exact.
    #[must_use]
    pub fn data_for(&self, write: &Write) -> (Value, Vec<MsgId>) {
        match write {
            Write::Post { text } => (json!({ "text": text }), Vec::new()),
            Write::Dict { feed, update } => {
                let roots = self.dict_roots.get(feed);
                let supersedes: BTreeSet<MsgId> = update
                    .keys()
                    .filter_map(|field| roots.and_then(|r| r.get(field)).copied())
                    .collect();
                let supersedes: Vec<MsgId> = supersedes.into_iter().collect();
                let ids: Vec<String> = supersedes.iter().map(ToString::to_string).collect();
                (json!({ "update": update, "supersedes": ids }), supersedes)
            }
            Write::Set { feed, add, item } => {
                let items = self.set_items.get(feed);
                let supersedes: BTreeSet<MsgId> = self
                    .set_roots
                    .get(feed)
                    .into_iter()
                    .flatten()
                    .filter(|(key, _)| *key == item || !items.is_some_and(|i| i.contains(*key)))
                    .map(|(_, id)| *id)
                    .collect();
                let supersedes: Vec<MsgId> = supersedes.into_iter().collect();
                let ids: Vec<String> = supersedes.iter().map(ToString::to_string).collect();
                let (added, deleted): (Vec<&str>, Vec<&str>) = if *add {
                    (vec![item.as_str()], Vec::new())
                } else {
                    (Vec::new(), vec![item.as_str()])
                };
                (
                    json!({ "add": added, "del": deleted, "supersedes": ids }),
                    supersedes,
                )
            }
        }
    }

    /// Notes that `write` was published as `id`.
    pub fn written(&mut self, write: &Write, id: MsgId) {
        match write {
            Write::Post { .. } => {}
            Write::Dict { feed, update } => {
                let roots = self.dict_roots.entry(feed.clone()).or_default();
                for field in update.keys() {
                    roots.insert(field.clone(), id);
                }
            }
            Write::Set { feed, add, item } => {
                let items = self.set_items.entry(feed.clone()).or_default();
                let roots = self.set_roots.entry(feed.clone()).or_default();
                roots.retain(|key, _| key != item && items.contains(key));
                roots.insert(item.clone(), id);
                if *add {
                    items.insert(item.clone());
                } else {
                    items.remove(item);
                }
            }
        }
    }
}

/// The keypair of peer `peer` in runs with `seed`: the same in every incarnation.
#[must_use]
pub fn keypair(seed: u64, peer: PeerIdx) -> Keypair {
    let mut stream = crate::rng::stream(seed, "keys", u64::from(peer));
    let mut bytes = [0_u8; 32];
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&stream.next_u64().to_le_bytes());
    }
    Keypair::from_seed(&bytes)
}

/// A peer's seeded stream for `purpose` in `incarnation`, derived as the node derives its
/// own (`node::peer` `rng`: the run seed, then peer, incarnation and purpose as the ChaCha
/// stream number), so both engines draw the same nonces and dial jitter.
#[must_use]
pub fn peer_rng(seed: u64, peer: PeerIdx, incarnation: u64, purpose: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream((u64::from(peer) << 32) | ((incarnation & 0xff_ffff) << 8) | (purpose & 0xff));
    rng
}

/// The dial-jitter stream of a peer's incarnation.
#[must_use]
pub fn dial_rng(seed: u64, peer: PeerIdx, incarnation: u64) -> ChaCha8Rng {
    peer_rng(seed, peer, incarnation, RNG_CONNECTIONS)
}

/// The root msg of the account a peer creates at its first start (the nonce drawn as the
/// node draws it in its first incarnation).
#[must_use]
pub fn account_root(seed: u64, peer: PeerIdx, keypair: &Keypair) -> Msg {
    let mut bytes = [0_u8; 32];
    peer_rng(seed, peer, 0, RNG_ACCOUNT_NONCE).fill_bytes(&mut bytes);
    let nonce = bs58::encode(bytes).into_string();
    Msg::create_account_root(keypair, ACCOUNT_SUBDOMAIN, &nonce)
        .expect("invariant: the account subdomain is a valid domain")
}

/// The domain a workload feed is published on.
#[must_use]
pub fn domain(feed: &str, kind: FeedKind) -> String {
    match kind {
        FeedKind::Feed => feed.to_owned(),
        FeedKind::Set => proto::set::domain(feed),
        FeedKind::Dict => proto::dict::domain(feed),
    }
}

/// Every workload feed's tangle → its author and feed name (as goal rules name it).
#[must_use]
pub fn feed_names(plan: &Plan, accounts: &[AccountId]) -> BTreeMap<TangleId, (PeerIdx, String)> {
    let mut feeds = BTreeMap::new();
    for (peer, account) in plan.peers.iter().zip(accounts) {
        for (feed, kind) in &plan.feeds {
            let tangle = proto::msg::feed_id(account, &domain(feed, *kind));
            feeds.insert(tangle, (peer.index, feed.clone()));
        }
    }
    feeds
}

/// Each peer's publishes, as the writes its app makes.
#[must_use]
pub fn schedules(plan: &Plan, accounts: &[AccountId]) -> Vec<Vec<Scheduled>> {
    let mut schedules: Vec<Vec<Scheduled>> = vec![Vec::new(); plan.peers.len()];
    for publish in &plan.publishes {
        let account = &accounts[publish.peer as usize];
        let domain = domain(&publish.feed, publish.kind);
        let write = match &publish.content {
            Content::Post { bytes } => Write::Post {
                text: post_text(plan.peer_name(publish.peer), publish.seq, *bytes),
            },
            Content::Dict { update } => Write::Dict {
                feed: publish.feed.clone(),
                update: update.clone(),
            },
            Content::Set { add, item } => Write::Set {
                feed: publish.feed.clone(),
                add: *add,
                item: item.clone(),
            },
            Content::Follow { followee } => Write::Set {
                feed: publish.feed.clone(),
                add: true,
                item: accounts[*followee as usize].to_string(),
            },
        };
        schedules[publish.peer as usize].push(Scheduled {
            t_ms: publish.t_ms,
            tangle: proto::msg::feed_id(account, &domain),
            domain,
            write,
        });
    }
    schedules
}

/// The domains of the plain feeds (posts) a peer writes: an app creates their moots at its
/// first start (docs/simulation.md, "Feeds exist from the start").
#[must_use]
pub fn post_domains(schedule: &[Scheduled]) -> BTreeSet<&str> {
    schedule
        .iter()
        .filter(|scheduled| matches!(scheduled.write, Write::Post { .. }))
        .map(|scheduled| scheduled.domain.as_str())
        .collect()
}

/// The peer's own account tangle, and each followed account's (their key msgs validate the
/// feeds), then what the plan's rules ask for.
#[must_use]
pub fn goals(peer: &PeerPlan, accounts: &[AccountId]) -> Vec<(TangleId, Goal)> {
    let mut goals: Vec<(TangleId, Goal)> = vec![(accounts[peer.index as usize], Goal::All)];
    for followee in &peer.follows {
        goals.push((accounts[*followee as usize], Goal::All));
    }
    for goal in &peer.goals {
        let owner = &accounts[goal.account as usize];
        let tangle = proto::msg::feed_id(owner, &goal.rule.domain());
        goals.push((tangle, goal.rule.goal));
    }
    goals
}

/// Post text of about `bytes` bytes (the plan's data size), unique per author and depth.
fn post_text(author: &str, seq: u32, bytes: u64) -> String {
    let mut text = format!("{author} post {seq} ");
    let target = usize::try_from(bytes).unwrap_or(usize::MAX);
    while text.len() < target {
        text.push_str("lorem ipsum ");
    }
    text.truncate(target.max(1));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> MsgId {
        MsgId::from_bytes(&[n; 32])
    }

    #[test]
    fn dict_updates_supersede_the_roots_of_their_fields() {
        let mut memory = Memory::default();
        let all = Write::Dict {
            feed: "profile".to_owned(),
            update: [("name", "a"), ("about", "b")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        };
        assert!(memory.data_for(&all).1.is_empty());
        memory.written(&all, id(1));
        let name = Write::Dict {
            feed: "profile".to_owned(),
            update: [("name".to_owned(), "c".to_owned())].into_iter().collect(),
        };
        assert_eq!(memory.data_for(&name).1, vec![id(1)]);
        memory.written(&name, id(2));
        assert_eq!(memory.data_for(&name).1, vec![id(2)]);
    }

    #[test]
    fn set_updates_supersede_the_item_and_items_gone() {
        let mut memory = Memory::default();
        let write = |add: bool, item: &str| Write::Set {
            feed: "tags".to_owned(),
            add,
            item: item.to_owned(),
        };
        memory.written(&write(true, "a"), id(1));
        memory.written(&write(true, "b"), id(2));
        let (data, supersedes) = memory.data_for(&write(false, "a"));
        assert_eq!(supersedes, vec![id(1)]);
        assert_eq!(data["del"], json!(["a"]));
        memory.written(&write(false, "a"), id(3));
        // `a` is gone: its root (3) is superseded by the next update, together with b's.
        let (_, supersedes) = memory.data_for(&write(true, "b"));
        assert_eq!(supersedes.len(), 2);
        assert!(supersedes.contains(&id(2)) && supersedes.contains(&id(3)));
    }
}
