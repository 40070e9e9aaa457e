//! SSB's epidemic broadcast trees (`baselines.md` §1.4; ssbc/epidemic-broadcast-trees
//! `events.js`, ssb-ebt v3, "classic" format): one duplex stream per connection carrying
//! vector-clock *notes* and messages. Each feed is received from one peer at a time (its
//! "rx" peer, a tree edge); the others only exchange notes ("lazy" edges) until the tree
//! source stalls or a duplicate shows an edge is redundant.
//!
//! Modelled: the note encoding (−1, seq·2 + (rx ? 0 : 1)), the session start (the dialer
//! asks, the listener sends its notes first, the dialer answers with its own), request
//! skipping with peer clocks remembered across connections, one rx peer per feed, eager push
//! on tx edges and lazy notes elsewhere, duplicate-triggered pruning, and the 3 s stall
//! switch in round-robin order. Our choice where the notes are silent: when a feed's rx peer
//! disconnects, rx moves at once to a connected peer known to be ahead (otherwise the feed
//! waits for that peer's next note). Notes produced by one input go out as one frame per
//! connection. As in the reference, a peer's clock is learned from its notes and from the
//! msgs it sends, never from what we send it: after a session that pushed msgs, the sender
//! still lists those feeds on the next connection (request skipping saves only the feeds
//! both sides noted equal).

use std::collections::{BTreeMap, BTreeSet};

use super::log::{Append, Log};
use super::wire::{SECRET_HANDSHAKE, feed_object_bytes, framed, message_bytes, request_body_bytes};
use crate::seam::{
    Feed, Handshake, Input, Item, LinkId, Millis, Output, PeerId, Replicator, Wire, WireKind,
};

/// How long an rx peer may stay silent before its feeds are asked of another peer (and how
/// often that is checked).
pub const STALL_TIMEOUT_MS: Millis = 3_000;

/// The note value "I do not replicate this feed".
pub const NOT_REPLICATING: i64 = -1;

/// A note's value: `seq·2`, plus 1 when the sender does not want to receive the feed.
#[must_use]
pub fn encode_note(seq: u32, rx: bool) -> i64 {
    i64::from(seq) * 2 + i64::from(!rx)
}

/// A note's sequence and whether its sender wants to receive; `None` for −1 (or any other
/// negative value): the sender does not replicate the feed.
#[must_use]
pub fn decode_note(value: i64) -> Option<(u32, bool)> {
    if value < 0 {
        return None;
    }
    let seq = u32::try_from(value >> 1).unwrap_or(u32::MAX);
    Some((seq, value & 1 == 0))
}

/// An EBT stream's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EbtWire {
    /// The dialer's `["ebt","replicate"]` duplex request, `{version: 3, format: "classic"}`.
    Request,
    /// Notes: feed → note value.
    Notes(BTreeMap<Feed, i64>),
    /// One message.
    Message(Item),
}

impl Wire for EbtWire {
    fn bytes(&self) -> u64 {
        let body = match self {
            EbtWire::Request => {
                let args = r#"{"version":3,"format":"classic"}"#.len() as u64;
                request_body_bytes(&["ebt", "replicate"], "duplex", args)
            }
            EbtWire::Notes(notes) => feed_object_bytes(notes),
            EbtWire::Message(item) => message_bytes(item),
        };
        framed(body)
    }

    fn kind(&self) -> WireKind {
        match self {
            EbtWire::Request => WireKind::Control,
            EbtWire::Notes(_) => WireKind::Summary,
            EbtWire::Message(_) => WireKind::Payload,
        }
    }
}

/// What this peer does with one feed on one connection.
#[derive(Debug, Clone, Copy, Default)]
struct Replication {
    /// We receive the feed from this peer (it is our tree source).
    rx: bool,
    /// The peer wants to receive the feed from us.
    tx: bool,
    /// The highest sequence the peer has from us or told us it has.
    sent: u32,
    /// The highest sequence we have told the peer we hold.
    told: u32,
}

#[derive(Debug)]
struct Session {
    peer: PeerId,
    /// Our notes were sent (the listener on the request, the dialer on the first notes).
    loaded: bool,
    /// Send a notes frame even if empty (a session's first).
    greet: bool,
    /// The highest sequence the peer is known to hold, per feed.
    clock: BTreeMap<Feed, u32>,
    /// Feeds one side does not replicate.
    inert: BTreeSet<Feed>,
    replicating: BTreeMap<Feed, Replication>,
    last_received: Millis,
    /// Notes to send at the end of the current input.
    pending: BTreeMap<Feed, i64>,
}

impl Session {
    fn note(&mut self, feed: Feed, seq: u32, rx: bool) {
        self.pending.insert(feed, encode_note(seq, rx));
        if let Some(replication) = self.replicating.get_mut(&feed) {
            replication.told = replication.told.max(seq);
        }
    }

    fn claims(&self, feed: Feed) -> u32 {
        self.clock.get(&feed).copied().unwrap_or(0)
    }
}

/// One SSB peer replicating with EBT.
#[derive(Debug)]
pub struct Ebt {
    own: Feed,
    replicates: BTreeSet<Feed>,
    log: Log,
    /// Peers' clocks kept between connections, for request skipping (−1: not replicated).
    remembered: BTreeMap<PeerId, BTreeMap<Feed, i64>>,
    sessions: BTreeMap<LinkId, Session>,
    next_check: Option<Millis>,
}

impl Ebt {
    /// A peer whose own feed is `own`, replicating `replicates` (which includes `own`).
    #[must_use]
    pub fn new(own: Feed, replicates: BTreeSet<Feed>) -> Ebt {
        Ebt {
            own,
            replicates,
            log: Log::default(),
            remembered: BTreeMap::new(),
            sessions: BTreeMap::new(),
            next_check: None,
        }
    }

    /// The latest sequence held of `feed`.
    #[must_use]
    pub fn latest(&self, feed: Feed) -> u32 {
        self.log.latest(feed)
    }

    /// The connection we receive `feed` from, if any.
    fn rx_link(&self, feed: Feed) -> Option<LinkId> {
        self.sessions.iter().find_map(|(&link, session)| {
            session
                .replicating
                .get(&feed)
                .filter(|r| r.rx)
                .map(|_| link)
        })
    }

    /// Transition 1: the session's peer clock is known; say what we hold of every feed
    /// whose remembered remote sequence differs from ours.
    fn load(&mut self, link: LinkId) {
        let Some(peer) = self.sessions.get(&link).map(|s| s.peer) else {
            return;
        };
        let remembered = self.remembered.get(&peer).cloned().unwrap_or_default();
        for feed in self.replicates.clone() {
            let local = self.log.latest(feed);
            let known = remembered.get(&feed).copied();
            if known == Some(NOT_REPLICATING) || known == Some(i64::from(local)) {
                continue;
            }
            let rx = feed != self.own && self.rx_link(feed).is_none();
            let Some(session) = self.sessions.get_mut(&link) else {
                return;
            };
            let sent = known.and_then(|seq| u32::try_from(seq).ok()).unwrap_or(0);
            if known.is_some() {
                session.clock.insert(feed, sent);
            }
            session.replicating.insert(
                feed,
                Replication {
                    rx,
                    sent,
                    ..Replication::default()
                },
            );
            session.note(feed, local, rx);
        }
        if let Some(session) = self.sessions.get_mut(&link) {
            session.loaded = true;
            session.greet = true;
        }
    }

    /// Transition 2: a notes frame arrived.
    fn notes(&mut self, link: LinkId, notes: BTreeMap<Feed, i64>, out: &mut Vec<Output<EbtWire>>) {
        for (feed, value) in notes {
            let Some(session) = self.sessions.get_mut(&link) else {
                return;
            };
            let Some((seq, remote_rx)) = decode_note(value) else {
                session.inert.insert(feed);
                if let Some(replication) = session.replicating.get_mut(&feed) {
                    replication.tx = false;
                }
                continue;
            };
            session.clock.insert(feed, seq);
            if !self.replicates.contains(&feed) {
                if session.inert.insert(feed) {
                    session.pending.insert(feed, NOT_REPLICATING);
                }
                continue;
            }
            self.noted(link, feed, seq, remote_rx);
            self.serve(link, feed, out);
        }
    }

    /// The peer on `link` holds `seq` of `feed` and does (not) want to receive it from us.
    fn noted(&mut self, link: LinkId, feed: Feed, seq: u32, remote_rx: bool) {
        let local = self.log.latest(feed);
        let source = self.rx_link(feed).filter(|&other| other != link);
        let source_claims = source
            .and_then(|other| self.sessions.get(&other))
            .map_or(0, |other| other.claims(feed));
        let Some(session) = self.sessions.get_mut(&link) else {
            return;
        };
        let Some(replication) = session.replicating.get_mut(&feed) else {
            // The peer mentioned a feed we skipped: the partial response clock.
            let rx = seq > local && source.is_none() && feed != self.own;
            session.replicating.insert(
                feed,
                Replication {
                    rx,
                    tx: remote_rx,
                    sent: seq,
                    told: 0,
                },
            );
            session.note(feed, local, rx);
            return;
        };
        replication.tx = remote_rx;
        replication.sent = seq;
        let take_over = !replication.rx
            && seq > local
            && feed != self.own
            && (source.is_none() || seq > source_claims);
        if take_over {
            replication.rx = true;
            session.note(feed, local, true);
            if let Some(old) = source.and_then(|other| self.sessions.get_mut(&other)) {
                if let Some(replication) = old.replicating.get_mut(&feed) {
                    replication.rx = false;
                }
                old.note(feed, local, false);
            }
        }
    }

    /// Sends what the peer on `link` wants of `feed` and lacks, or tells it we are ahead.
    fn serve(&mut self, link: LinkId, feed: Feed, out: &mut Vec<Output<EbtWire>>) {
        let local = self.log.latest(feed);
        let Some(session) = self.sessions.get_mut(&link) else {
            return;
        };
        let Some(replication) = session.replicating.get_mut(&feed) else {
            return;
        };
        if local <= replication.sent {
            return;
        }
        if replication.tx {
            for seq in replication.sent + 1..=local {
                if let Some(item) = self.log.get(feed, seq) {
                    out.push(Output::Send {
                        link,
                        msg: EbtWire::Message(*item),
                    });
                }
            }
            replication.sent = local;
        } else if replication.told < local {
            let rx = replication.rx;
            session.note(feed, local, rx);
        }
    }

    /// Transition 3: `item` was appended here; push it on tx edges that are exactly one
    /// behind, and tell lazy peers we have it.
    fn appended(&mut self, item: Item, out: &mut Vec<Output<EbtWire>>) {
        let (feed, seq) = (item.id.feed, item.id.seq);
        for (&link, session) in &mut self.sessions {
            if !session.loaded || session.claims(feed) >= seq {
                continue;
            }
            let Some(replication) = session.replicating.get_mut(&feed) else {
                // A feed both sides skipped at the session's start: say we have more.
                if !session.inert.contains(&feed) {
                    session.pending.insert(feed, encode_note(seq, false));
                }
                continue;
            };
            if replication.tx && replication.sent + 1 == seq {
                replication.sent = seq;
                out.push(Output::Send {
                    link,
                    msg: EbtWire::Message(item),
                });
            } else if !replication.tx && replication.told < seq {
                // "I have seq", not asking for it (the reference's lazy push).
                replication.rx = false;
                session.note(feed, seq, false);
            }
        }
    }

    /// Transition 4: a message arrived.
    fn message(&mut self, link: LinkId, item: Item, out: &mut Vec<Output<EbtWire>>) {
        let (feed, seq) = (item.id.feed, item.id.seq);
        let Some(session) = self.sessions.get_mut(&link) else {
            return;
        };
        let Some(replication) = session.replicating.get_mut(&feed) else {
            return;
        };
        replication.sent = replication.sent.max(seq);
        let was_rx = replication.rx;
        let claims = session.claims(feed).max(seq);
        session.clock.insert(feed, claims);
        match self.log.append(item) {
            Append::Appended => {
                out.push(Output::Stored {
                    item: item.id,
                    from: Some(link),
                });
                self.appended(item, out);
            }
            Append::Held => {
                out.push(Output::Duplicate {
                    item: item.id,
                    from: link,
                });
                if was_rx {
                    let local = self.log.latest(feed);
                    if let Some(replication) = session.replicating.get_mut(&feed) {
                        replication.rx = false;
                    }
                    session.note(feed, local, false);
                }
            }
            Append::Gap => {}
        }
    }

    /// Moves rx for `feed` from `from` to the next connection (in link order, wrapping)
    /// whose peer claims more than we hold.
    fn switch_source(&mut self, feed: Feed, from: LinkId) -> bool {
        let local = self.log.latest(feed);
        let after = self.sessions.range(from..).skip(1);
        let before = self.sessions.range(..from);
        let next = after.chain(before).find_map(|(&link, session)| {
            (session.loaded
                && session.claims(feed) > local
                && session.replicating.contains_key(&feed))
            .then_some(link)
        });
        let Some(next) = next else { return false };
        if let Some(old) = self.sessions.get_mut(&from)
            && let Some(replication) = old.replicating.get_mut(&feed)
        {
            replication.rx = false;
            old.note(feed, local, false);
        }
        if let Some(new) = self.sessions.get_mut(&next)
            && let Some(replication) = new.replicating.get_mut(&feed)
        {
            replication.rx = true;
            new.note(feed, local, true);
        }
        true
    }

    /// Transition 5: feeds whose rx peer has been silent too long are asked of another.
    fn check_stalls(&mut self, now: Millis) {
        let stalled: Vec<(LinkId, Feed)> = self
            .sessions
            .iter()
            .filter(|(_, session)| now.saturating_sub(session.last_received) > STALL_TIMEOUT_MS)
            .flat_map(|(&link, session)| {
                session
                    .replicating
                    .iter()
                    .filter(|(_, r)| r.rx)
                    .map(move |(&feed, _)| (link, feed))
            })
            .collect();
        for (link, feed) in stalled {
            self.switch_source(feed, link);
        }
    }

    /// Transition 6: a connection closed; remember its peer's clock, and move rx of the feeds
    /// it was the source of.
    fn closed(&mut self, link: LinkId) {
        let Some(session) = self.sessions.get(&link) else {
            return;
        };
        let rx_feeds: Vec<Feed> = session
            .replicating
            .iter()
            .filter(|(_, r)| r.rx)
            .map(|(&feed, _)| feed)
            .collect();
        for feed in rx_feeds {
            self.switch_source(feed, link);
        }
        if let Some(session) = self.sessions.remove(&link) {
            self.remember(session);
        }
    }

    /// Keeps a closed session's peer clock for request skipping at the next connection.
    fn remember(&mut self, session: Session) {
        let remembered = self.remembered.entry(session.peer).or_default();
        for (feed, seq) in session.clock {
            remembered.insert(feed, i64::from(seq));
        }
        for feed in session.inert {
            remembered.insert(feed, NOT_REPLICATING);
        }
    }

    fn flush(&mut self, out: &mut Vec<Output<EbtWire>>) {
        for (&link, session) in &mut self.sessions {
            if session.pending.is_empty() && !session.greet {
                continue;
            }
            session.greet = false;
            let notes = std::mem::take(&mut session.pending);
            out.push(Output::Send {
                link,
                msg: EbtWire::Notes(notes),
            });
        }
    }

    fn received(
        &mut self,
        now: Millis,
        link: LinkId,
        msg: EbtWire,
        out: &mut Vec<Output<EbtWire>>,
    ) {
        let Some(session) = self.sessions.get_mut(&link) else {
            return;
        };
        session.last_received = now;
        let loaded = session.loaded;
        match msg {
            EbtWire::Request => {
                if !loaded {
                    self.load(link);
                }
            }
            EbtWire::Notes(notes) => {
                if !loaded {
                    self.load(link);
                }
                self.notes(link, notes, out);
            }
            EbtWire::Message(item) => {
                if loaded {
                    self.message(link, item, out);
                }
            }
        }
    }
}

impl Replicator for Ebt {
    type Wire = EbtWire;

    fn handle(&mut self, now: Millis, input: Input<EbtWire>, out: &mut Vec<Output<EbtWire>>) {
        match input {
            Input::LinkUp {
                link,
                peer,
                initiator,
            } => {
                let session = Session {
                    peer,
                    loaded: false,
                    greet: false,
                    clock: BTreeMap::new(),
                    inert: BTreeSet::new(),
                    replicating: BTreeMap::new(),
                    last_received: now,
                    pending: BTreeMap::new(),
                };
                self.sessions.insert(link, session);
                self.next_check.get_or_insert(now + STALL_TIMEOUT_MS);
                if initiator {
                    out.push(Output::Send {
                        link,
                        msg: EbtWire::Request,
                    });
                }
            }
            Input::LinkDown { link } => self.closed(link),
            Input::Received { link, msg } => self.received(now, link, msg, out),
            Input::Publish(item) => {
                if self.log.append(item) == Append::Appended {
                    out.push(Output::Stored {
                        item: item.id,
                        from: None,
                    });
                    self.appended(item, out);
                }
            }
            Input::Tick => {
                if self.next_check.is_some_and(|at| at <= now) {
                    self.check_stalls(now);
                    self.next_check = Some(now + STALL_TIMEOUT_MS);
                }
            }
        }
        if self.sessions.is_empty() {
            self.next_check = None;
        }
        self.flush(out);
    }

    fn deadline(&self) -> Option<Millis> {
        self.next_check
    }

    fn handshake(&self) -> Handshake {
        SECRET_HANDSHAKE
    }

    fn stored_bytes(&self) -> u64 {
        self.log.bytes()
    }

    /// The sessions and the stall check end with the process; the log stays, and so do the
    /// peers' clocks (ssb-ebt persists them as it learns them), so no rx peer is chosen
    /// again and no note is sent by a stopping peer.
    fn stop(&mut self) {
        for session in std::mem::take(&mut self.sessions).into_values() {
            self.remember(session);
        }
        self.next_check = None;
    }
}
