//! tinySSB (`baselines.md` §2): append-only feeds replicated in 120-byte packets by pure
//! polling. Nodes first converge on a GOset of feed ids (goset.rs); then, every round, each
//! sends a WANT vector (the next sequence it wants of a window of GOset feeds) and a CHNK
//! vector (the next chunks of sidechains it has started), understood only by nodes whose
//! GOset state is identical. A node answers with up to `credit` entries or chunks, spread
//! round-robin over the feeds asked for. Only the next entry of each feed and the next chunk
//! of each sidechain are accepted; anything else is dropped and asked for again.
//!
//! Workload mapping: every feed in the GOset is replicated by every node (tinySSB cannot
//! say "not interested"); a node's own feed is in its set from the start; an item is stored
//! when its entry and every chunk of its sidechain are held. Two timer profiles of the
//! reference implementations ([`Profile::lora`], [`Profile::simple_pub`]); the medium's
//! airtime and inter-packet gap are the engine's link model, not this machine's.

pub mod goset;
pub mod packet;

use std::collections::{BTreeMap, BTreeSet};

use self::goset::Goset;
use self::packet::{
    Key, PACKET_BYTES, TinyWire, VECTOR_CUT_BYTES, chnk_list_bytes, chunks_for, feed_of, key_of,
    want_list_bytes,
};
use crate::seam::{Feed, Handshake, Input, Item, ItemId, LinkId, Millis, Output, Replicator};

/// How a node sends its vectors and answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    /// A radio: one transmission heard by every neighbour (LoRa).
    Broadcast,
    /// Connections (websocket, BLE): vectors on every link, answers on the asking link.
    PointToPoint,
}

/// How often a node polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WantPeriod {
    /// A fixed period plus up to `jitter_ms`.
    Fixed {
        /// The period.
        ms: Millis,
        /// Added jitter, uniform up to this.
        jitter_ms: Millis,
    },
    /// The simple pub's adaptive period: starts at `max_ms`, moves halfway to the delay of
    /// the first answer after each WANT, grows ×1.5 (up to `max_ms`) after a silent period.
    Adaptive {
        /// The ceiling and starting value.
        max_ms: Millis,
    },
}

/// One implementation's timers and limits (`baselines.md` §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// Broadcast radio or point-to-point links.
    pub medium: Medium,
    /// WANT/CHNK period.
    pub want: WantPeriod,
    /// WANT and CHNK alternate, one per period (the ESP32), instead of both each period.
    pub alternate: bool,
    /// GOset round.
    pub goset_ms: Millis,
    /// GOset round jitter, uniform up to this.
    pub goset_jitter_ms: Millis,
    /// Entries or chunks sent per WANT or CHNK.
    pub credit: usize,
    /// Pending GOset claims kept.
    pub pending_claims: usize,
    /// GOset help actions per round.
    pub help_per_round: usize,
    /// Feeds a GOset holds.
    pub feeds_max: usize,
}

impl Profile {
    /// The ESP32 LoRa firmware: WANT and CHNK alternating every 7 s (+ ≤ 0.5 s), GOset every
    /// 20 s (+ ≤ 1 s), credit 3, 10 pending claims, 2 helps, 100 feeds.
    #[must_use]
    pub const fn lora() -> Profile {
        Profile {
            medium: Medium::Broadcast,
            want: WantPeriod::Fixed {
                ms: 7_000,
                jitter_ms: 500,
            },
            alternate: true,
            goset_ms: 20_000,
            goset_jitter_ms: 1_000,
            credit: 3,
            pending_claims: 10,
            help_per_round: 2,
            feeds_max: 100,
        }
    }

    /// The Python simple pub over websockets: adaptive period ≤ 4 s, both vectors each
    /// period, GOset every 15 s, credit 3, 20 pending claims, 3 helps, 100 feeds.
    #[must_use]
    pub const fn simple_pub() -> Profile {
        Profile {
            medium: Medium::PointToPoint,
            want: WantPeriod::Adaptive { max_ms: 4_000 },
            alternate: false,
            goset_ms: 15_000,
            goset_jitter_ms: 0,
            credit: 3,
            pending_claims: 20,
            help_per_round: 3,
            feeds_max: 100,
        }
    }
}

/// The adaptive period's floor.
const ADAPTIVE_FLOOR_MS: Millis = 10;

/// One feed as a node holds it.
#[derive(Debug, Default)]
struct FeedLog {
    /// Entries held, in order (each with its item's content size).
    entries: Vec<Item>,
    /// Sidechains not complete yet: entry sequence → chunks held.
    open: BTreeMap<u32, u32>,
}

impl FeedLog {
    fn next(&self) -> u32 {
        u32::try_from(self.entries.len()).unwrap_or(u32::MAX) + 1
    }

    fn entry(&self, seq: u32) -> Option<&Item> {
        self.entries.get(usize::try_from(seq.checked_sub(1)?).ok()?)
    }

    fn chunks_held(&self, seq: u32) -> u32 {
        match self.open.get(&seq) {
            Some(&held) => held,
            None => self
                .entry(seq)
                .map_or(0, |item| chunks_for(item.content_bytes)),
        }
    }
}

/// One tinySSB node.
#[derive(Debug)]
pub struct TinySsb {
    profile: Profile,
    rng: u64,
    goset: Goset,
    feeds: BTreeMap<Feed, FeedLog>,
    links: BTreeSet<LinkId>,
    next_vector: Option<Millis>,
    next_goset: Option<Millis>,
    /// The next round sends the CHNK vector (alternating profiles).
    chnk_turn: bool,
    offset: u32,
    period_ms: Millis,
    /// When the last WANT went out, until the first answer arrives.
    awaiting_since: Option<Millis>,
    heard_this_period: bool,
}

impl TinySsb {
    /// A node whose own feed is `own`, seeded for its timers' jitter.
    #[must_use]
    pub fn new(own: Feed, profile: Profile, seed: u64) -> TinySsb {
        let mut goset = Goset::new(
            profile.pending_claims,
            profile.help_per_round,
            profile.feeds_max,
        );
        goset.add(key_of(own));
        let mut feeds = BTreeMap::new();
        feeds.insert(own, FeedLog::default());
        let period_ms = match profile.want {
            WantPeriod::Fixed { ms, .. } => ms,
            WantPeriod::Adaptive { max_ms } => max_ms,
        };
        TinySsb {
            profile,
            rng: seed | 1,
            goset,
            feeds,
            links: BTreeSet::new(),
            next_vector: None,
            next_goset: None,
            chnk_turn: false,
            offset: 0,
            period_ms,
            awaiting_since: None,
            heard_this_period: false,
        }
    }

    /// The feeds in this node's GOset.
    #[must_use]
    pub fn goset_len(&self) -> usize {
        self.goset.len()
    }

    /// Entries held of `feed` whose sidechains are complete, counted from the start.
    #[must_use]
    pub fn latest(&self, feed: Feed) -> u32 {
        self.feeds.get(&feed).map_or(0, |log| {
            let first_open = log.open.keys().next().copied().unwrap_or(u32::MAX);
            (log.next() - 1).min(first_open.saturating_sub(1))
        })
    }

    fn jitter(&mut self, up_to: Millis) -> Millis {
        if up_to == 0 {
            return 0;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % (up_to + 1)
    }

    fn arm(&mut self, now: Millis) {
        if self.next_vector.is_none() {
            let first = self.jitter(self.period_ms);
            self.next_vector = Some(now + first);
        }
        if self.next_goset.is_none() {
            let first = self.jitter(self.profile.goset_ms.min(self.period_ms));
            self.next_goset = Some(now + first);
        }
    }

    /// Sends a vector or GOset packet the way the medium does.
    fn emit(&self, msg: TinyWire, out: &mut Vec<Output<TinyWire>>) {
        match self.profile.medium {
            Medium::Broadcast => out.push(Output::Broadcast { msg }),
            Medium::PointToPoint => {
                for &link in &self.links {
                    out.push(Output::Send {
                        link,
                        msg: msg.clone(),
                    });
                }
            }
        }
    }

    /// Sends an answer: on the radio to everyone, else on the asking link.
    fn answer(&self, link: LinkId, msg: TinyWire, out: &mut Vec<Output<TinyWire>>) {
        match self.profile.medium {
            Medium::Broadcast => out.push(Output::Broadcast { msg }),
            Medium::PointToPoint => out.push(Output::Send { link, msg }),
        }
    }

    fn add_keys(&mut self, keys: Vec<Key>) {
        for key in keys {
            self.feeds.entry(feed_of(&key)).or_default();
        }
    }

    fn want_vector(&mut self) -> TinyWire {
        let count = self.goset.len();
        let mut next = Vec::new();
        if count > 0 {
            let offset = self.offset as usize % count;
            for i in 0..count {
                let Some(key) = self.goset.at((offset + i) % count) else {
                    break;
                };
                let wanted = self.feeds.get(&feed_of(key)).map_or(1, FeedLog::next);
                next.push(wanted);
                if want_list_bytes(self.offset, &next) > VECTOR_CUT_BYTES {
                    break;
                }
            }
        }
        let msg = TinyWire::Want {
            state: self.goset.state(),
            offset: self.offset,
            next,
        };
        self.offset = self.offset.wrapping_add(1) % u32::try_from(count.max(1)).unwrap_or(1);
        msg
    }

    fn chnk_vector(&self) -> Option<TinyWire> {
        let mut wants = Vec::new();
        for (index, key) in self.goset.keys().enumerate() {
            let Some(log) = self.feeds.get(&feed_of(key)) else {
                continue;
            };
            for (&seq, &held) in &log.open {
                let triple = (u32::try_from(index).unwrap_or(u32::MAX), seq, held);
                wants.push(triple);
                if chnk_list_bytes(&wants) > VECTOR_CUT_BYTES {
                    return Some(TinyWire::Chnk {
                        state: self.goset.state(),
                        wants,
                    });
                }
            }
        }
        (!wants.is_empty()).then(|| TinyWire::Chnk {
            state: self.goset.state(),
            wants,
        })
    }

    fn vector_round(&mut self, now: Millis, out: &mut Vec<Output<TinyWire>>) {
        if let WantPeriod::Adaptive { max_ms } = self.profile.want
            && !self.heard_this_period
        {
            self.period_ms = (self.period_ms * 3 / 2).min(max_ms);
        }
        self.heard_this_period = false;
        let send_want = !self.profile.alternate || !self.chnk_turn;
        let send_chnk = !self.profile.alternate || self.chnk_turn;
        self.chnk_turn = !self.chnk_turn;
        if send_want {
            let want = self.want_vector();
            self.emit(want, out);
            self.awaiting_since = Some(now);
        }
        if send_chnk && let Some(chnk) = self.chnk_vector() {
            self.emit(chnk, out);
        }
        let jitter = match self.profile.want {
            WantPeriod::Fixed { jitter_ms, .. } => self.jitter(jitter_ms),
            WantPeriod::Adaptive { .. } => 0,
        };
        self.next_vector = Some(now + self.period_ms + jitter);
    }

    /// Entries asked for by a WANT: round-robin over its feeds, up to the credit.
    fn serve_want(&self, link: LinkId, offset: u32, next: &[u32], out: &mut Vec<Output<TinyWire>>) {
        let count = self.goset.len();
        if count == 0 {
            return;
        }
        let mut cursors: Vec<(Feed, u32)> = next
            .iter()
            .enumerate()
            .filter_map(|(i, &seq)| {
                let key = self.goset.at((offset as usize + i) % count)?;
                Some((feed_of(key), seq))
            })
            .collect();
        let mut sent = 0;
        while sent < self.profile.credit {
            let mut progressed = false;
            for (feed, seq) in &mut cursors {
                if sent == self.profile.credit {
                    break;
                }
                let Some(item) = self.feeds.get(feed).and_then(|log| log.entry(*seq)) else {
                    continue;
                };
                let msg = TinyWire::Entry {
                    feed: *feed,
                    seq: *seq,
                    content_bytes: item.content_bytes,
                };
                self.answer(link, msg, out);
                *seq += 1;
                sent += 1;
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
    }

    /// Chunks asked for by a CHNK: round-robin over its sidechains, up to the credit.
    fn serve_chnk(&self, link: LinkId, wants: &[(u32, u32, u32)], out: &mut Vec<Output<TinyWire>>) {
        let mut cursors: Vec<(Feed, u32, u32)> = wants
            .iter()
            .filter_map(|&(index, seq, chunk)| {
                let key = self.goset.at(index as usize)?;
                Some((feed_of(key), seq, chunk))
            })
            .collect();
        let mut sent = 0;
        while sent < self.profile.credit {
            let mut progressed = false;
            for (feed, seq, number) in &mut cursors {
                if sent == self.profile.credit {
                    break;
                }
                let held = self.feeds.get(feed).map_or(0, |log| log.chunks_held(*seq));
                if *number >= held {
                    continue;
                }
                self.answer(
                    link,
                    TinyWire::Chunk {
                        feed: *feed,
                        seq: *seq,
                        number: *number,
                    },
                    out,
                );
                *number += 1;
                sent += 1;
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
    }

    fn heard_answer(&mut self, now: Millis) {
        self.heard_this_period = true;
        if let (WantPeriod::Adaptive { .. }, Some(since)) =
            (self.profile.want, self.awaiting_since.take())
        {
            self.period_ms =
                (self.period_ms / 2 + now.saturating_sub(since) / 2).max(ADAPTIVE_FLOOR_MS);
        }
    }

    fn on_entry(
        &mut self,
        now: Millis,
        link: LinkId,
        feed: Feed,
        seq: u32,
        content_bytes: u32,
        out: &mut Vec<Output<TinyWire>>,
    ) {
        let Some(log) = self.feeds.get_mut(&feed) else {
            return;
        };
        let id = ItemId { feed, seq };
        if seq != log.next() {
            if seq < log.next() {
                out.push(Output::Duplicate {
                    item: id,
                    from: link,
                });
            }
            return;
        }
        log.entries.push(Item::post(id, content_bytes));
        if chunks_for(content_bytes) == 0 {
            out.push(Output::Stored {
                item: id,
                from: Some(link),
            });
        } else {
            log.open.insert(seq, 0);
        }
        self.heard_answer(now);
    }

    fn on_chunk(
        &mut self,
        now: Millis,
        link: LinkId,
        feed: Feed,
        seq: u32,
        number: u32,
        out: &mut Vec<Output<TinyWire>>,
    ) {
        let Some(log) = self.feeds.get_mut(&feed) else {
            return;
        };
        let needed = log
            .entry(seq)
            .map_or(0, |item| chunks_for(item.content_bytes));
        let Some(held) = log.open.get_mut(&seq) else {
            return;
        };
        if number != *held {
            return;
        }
        *held += 1;
        let complete = *held >= needed;
        if complete {
            log.open.remove(&seq);
            out.push(Output::Stored {
                item: ItemId { feed, seq },
                from: Some(link),
            });
        }
        self.heard_answer(now);
    }

    fn received(
        &mut self,
        now: Millis,
        link: LinkId,
        msg: TinyWire,
        out: &mut Vec<Output<TinyWire>>,
    ) {
        match msg {
            TinyWire::Claim(claim) => {
                let added = self.goset.on_claim(claim);
                self.add_keys(added);
            }
            TinyWire::Novelty(key) => {
                if self.goset.add(key) {
                    self.add_keys(vec![key]);
                }
            }
            TinyWire::Want {
                state,
                offset,
                next,
            } => {
                if state == self.goset.state() {
                    self.serve_want(link, offset, &next, out);
                }
            }
            TinyWire::Chnk { state, wants } => {
                if state == self.goset.state() {
                    self.serve_chnk(link, &wants, out);
                }
            }
            TinyWire::Entry {
                feed,
                seq,
                content_bytes,
            } => {
                self.on_entry(now, link, feed, seq, content_bytes, out);
            }
            TinyWire::Chunk { feed, seq, number } => {
                self.on_chunk(now, link, feed, seq, number, out)
            }
        }
    }

    fn tick(&mut self, now: Millis, out: &mut Vec<Output<TinyWire>>) {
        if self.next_goset.is_some_and(|at| at <= now) {
            for msg in self.goset.round() {
                self.emit(msg, out);
            }
            let jitter = self.jitter(self.profile.goset_jitter_ms);
            self.next_goset = Some(now + self.profile.goset_ms + jitter);
        }
        if self.next_vector.is_some_and(|at| at <= now) {
            self.vector_round(now, out);
        }
    }
}

impl Replicator for TinySsb {
    type Wire = TinyWire;

    fn handle(&mut self, now: Millis, input: Input<TinyWire>, out: &mut Vec<Output<TinyWire>>) {
        self.arm(now);
        match input {
            Input::LinkUp { link, .. } => {
                self.links.insert(link);
            }
            Input::LinkDown { link } => {
                self.links.remove(&link);
            }
            Input::Received { link, msg } => self.received(now, link, msg, out),
            Input::Publish(item) => {
                let log = self.feeds.entry(item.id.feed).or_default();
                if item.id.seq == log.next() {
                    log.entries.push(item);
                    out.push(Output::Stored {
                        item: item.id,
                        from: None,
                    });
                }
            }
            Input::Tick => self.tick(now, out),
        }
    }

    fn deadline(&self) -> Option<Millis> {
        match (self.next_vector, self.next_goset) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn handshake(&self) -> Handshake {
        // Connectionless on the radio; a websocket's set-up is not part of the protocol's
        // counts in the reference's own figures.
        Handshake {
            round_trips: 0,
            bytes: 0,
            acceptor_bytes: 0,
        }
    }

    /// The links and the timers end with the process (the next incarnation arms them at its
    /// first input, as the first did); the feeds and the GOset stay, as the reference
    /// rebuilds them from its repository at start.
    fn stop(&mut self) {
        self.links.clear();
        self.next_vector = None;
        self.next_goset = None;
        self.awaiting_since = None;
    }

    /// Every entry a 120-byte packet, and every sidechain chunk held another.
    fn stored_bytes(&self) -> u64 {
        let packets: u64 = self
            .feeds
            .values()
            .map(|log| {
                (1..log.next())
                    .map(|seq| 1 + u64::from(log.chunks_held(seq)))
                    .sum::<u64>()
            })
            .sum();
        packets * PACKET_BYTES
    }
}
