//! The replication seam: what every protocol machine looks like to an engine.
//!
//! A protocol is a per-peer pure machine with one shape, `handle(now, input, out)`, and its
//! timers as data (`deadline`). It does no I/O and reads no clock: the engine moves its
//! [`Wire`] messages between peers (charging their [`Wire::bytes`] to the link), wakes it at
//! its deadline, and reads what it stored from its outputs.
//!
//! Items are engine-neutral: an author's feed and a 1-based sequence number, with the size
//! of the item's content. Each protocol maps them onto its own format (an SSB message, a
//! flooded p2p.today broadcast) and computes its wire sizes from that format's real encoding.

use std::fmt::Debug;

/// Simulated time, milliseconds since the start of a run.
pub type Millis = u64;

/// A peer of the simulated network (its index in the engine's plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId(pub u32);

/// An author's feed. In every baseline a feed belongs to one peer, which alone appends to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Feed(pub u32);

/// One connection of this peer, as the engine names it (unique per peer for a run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub u64);

/// Which item: the feed and its 1-based sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemId {
    /// The author's feed.
    pub feed: Feed,
    /// 1-based position in the feed.
    pub seq: u32,
}

/// An item as the workload publishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    /// Which item.
    pub id: ItemId,
    /// Bytes of the item's content (the application's data), before any protocol's framing.
    pub content_bytes: u32,
    /// For a dict workload (profiles): the field this item sets in its author's dict; it
    /// supersedes the author's earlier items of the same field. `None` for posts.
    pub field: Option<u32>,
}

impl Item {
    /// A post: an item that supersedes nothing.
    #[must_use]
    pub const fn post(id: ItemId, content_bytes: u32) -> Item {
        Item {
            id,
            content_bytes,
            field: None,
        }
    }

    /// A dict update of `field`.
    #[must_use]
    pub const fn update(id: ItemId, content_bytes: u32, field: u32) -> Item {
        Item {
            id,
            content_bytes,
            field: Some(field),
        }
    }
}

/// What the bytes of a wire message are for, so reports can split payload from overhead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WireKind {
    /// Carries items (their content and per-item metadata).
    Payload,
    /// Says what a peer holds or wants (notes, vector clocks, fingerprints, requests).
    Summary,
    /// Session set-up and everything else.
    Control,
}

/// One message on a link.
pub trait Wire: Clone + Debug {
    /// Bytes on the wire, from the protocol's real encoding and framing.
    fn bytes(&self) -> u64;
    /// What the bytes are for.
    fn kind(&self) -> WireKind;
    /// For a message that carries several kinds (PPPPP's sync object: its msgs, its bloom,
    /// the rest), its bytes per kind, `[payload, summary, control]`, summing to
    /// [`Wire::bytes`]; each non-zero part is charged as its own kind. `None` (the default):
    /// all of [`Wire::bytes`] is [`Wire::kind`].
    fn split(&self) -> Option<[u64; 3]> {
        None
    }
}

/// What a machine is told.
#[derive(Debug, Clone)]
pub enum Input<W> {
    /// A connection to `peer` is up; `initiator` says whether this peer dialed it.
    LinkUp {
        /// The new connection.
        link: LinkId,
        /// Who is at the other end.
        peer: PeerId,
        /// This peer dialed.
        initiator: bool,
    },
    /// A connection is gone (closed, broken or timed out); its in-flight messages are lost.
    LinkDown {
        /// The connection.
        link: LinkId,
    },
    /// A message arrived on a connection.
    Received {
        /// The connection.
        link: LinkId,
        /// The message.
        msg: W,
    },
    /// This peer's application appended an item to its own feed.
    Publish(Item),
    /// The machine's deadline was reached.
    Tick,
}

/// What a machine asks the engine to do, or reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<W> {
    /// Send a message on a connection.
    Send {
        /// The connection.
        link: LinkId,
        /// The message.
        msg: W,
    },
    /// Send a message once on a broadcast medium: every peer in range (every current link)
    /// hears the one transmission (tinySSB on LoRa).
    Broadcast {
        /// The message.
        msg: W,
    },
    /// An item was stored for the first time (from a connection, or published here).
    Stored {
        /// The item.
        item: ItemId,
        /// The connection it came from; `None` when published here.
        from: Option<LinkId>,
    },
    /// An item arrived that this peer already held (a wasted transmission).
    Duplicate {
        /// The item.
        item: ItemId,
        /// The connection it came from.
        from: LinkId,
    },
    /// Close a connection (after the engine's current step, so that no machine is told
    /// mid-step).
    Close {
        /// The connection.
        link: LinkId,
    },
    /// What follows is a new write: the messages sent after it go out in a segment of their
    /// own (a new latency draw), as a machine that handles what its own step produced (a
    /// commit's additions fed back to its sessions) writes each step separately.
    NewWrite,
    /// Something the machine names itself ([`Replicator::NAMES_ITEMS`]).
    Report(Report),
}

/// What a GC pass did to a stored item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    /// Its content was removed, its metadata kept.
    Erase,
    /// Its record was removed.
    Delete,
    /// Its record was removed and remembered as a ghost.
    Ghost,
}

/// An event of a machine that names its items (its own msg and tangle IDs, as its format
/// writes them), stores more than the workload's writes (PPPPP's account and moots), or
/// reports more than storing: what the engine turns into trace events as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// This peer made an item (a write of the workload, or one the protocol needs).
    Published(Publication),
    /// An item from a connection was stored for the first time.
    Stored {
        /// The item's ID.
        msg: String,
        /// Its tangle's ID.
        tangle: String,
        /// The connection it came from.
        from: LinkId,
    },
    /// An item arrived that this peer already held.
    Duplicate {
        /// The item's ID.
        msg: String,
        /// The connection it came from.
        from: LinkId,
        /// Its encoded size.
        bytes: u64,
    },
    /// An item arrived and was refused (it fails validation).
    Rejected {
        /// The item's ID.
        msg: String,
        /// Why.
        reason: String,
    },
    /// GC acted on a stored item.
    Collected {
        /// The item's ID.
        msg: String,
        /// What it did.
        action: Collection,
        /// The item's encoded size.
        bytes: u64,
    },
    /// The sync of a tangle this peer initiated on a connection finished.
    Round {
        /// The connection.
        link: LinkId,
        /// The tangle's ID.
        tangle: String,
        /// Its round trips.
        round_trips: u32,
    },
    /// The peer's store size now (sampled by the machine).
    StoreSize {
        /// Bytes.
        bytes: u64,
    },
    /// A remark for the trace; `error` when something failed.
    Note {
        /// The text.
        text: String,
        /// Whether it is an error.
        error: bool,
    },
}

/// An item a peer made, as its machine names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// The item's ID.
    pub msg: String,
    /// Its tangle's (or feed's) ID.
    pub tangle: String,
    /// The workload's name for the feed (`moot`, `account` for the protocol's own).
    pub feed: String,
    /// Its encoded size.
    pub bytes: u64,
    /// IDs of the items it supersedes.
    pub supersedes: Vec<String>,
}

/// A connection's fixed set-up cost in the protocol's transport, paid before its first
/// message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    /// Round trips from dialing until the dialer may send (transport and handshake).
    pub round_trips: u32,
    /// Bytes both sides send during the handshake.
    pub bytes: u64,
    /// Of `bytes`, what the acceptor sends, charged to it (before the dialer's); 0 charges
    /// all of `bytes` to the dialer.
    pub acceptor_bytes: u64,
}

/// A protocol's per-peer machine.
pub trait Replicator {
    /// One message on a link.
    type Wire: Wire + PartialEq;

    /// Feeds this machine on.
    fn handle(&mut self, now: Millis, input: Input<Self::Wire>, out: &mut Vec<Output<Self::Wire>>);

    /// When the machine next wants [`Input::Tick`], if ever.
    fn deadline(&self) -> Option<Millis>;

    /// What this protocol's transport costs per connection before any message.
    fn handshake(&self) -> Handshake;

    /// Bytes of what this peer stores, in the protocol's own record format (what a real
    /// implementation keeps: SSB's message JSON, tinySSB's 120-byte packets, a table's
    /// entries), without indexes or the machine's session state.
    fn stored_bytes(&self) -> u64;

    /// Whether the machine names what it publishes and stores itself, with
    /// [`Output::Report`]s, instead of the engine naming [`Item`]s. Such a machine holds the
    /// application's writes: [`Input::Publish`]'s item then only says which is due (its
    /// `seq` is the write's 1-based position in this peer's schedule, counting writes
    /// skipped while it was down), and it reports the writes it skips
    /// ([`Replicator::start`]).
    const NAMES_ITEMS: bool = false;

    /// A new incarnation of the peer starts (the first, or after a crash or going offline),
    /// over what the machine kept.
    fn start(&mut self, now: Millis, out: &mut Vec<Output<Self::Wire>>) {
        let _ = (now, out);
    }

    /// The peer's process stops (a crash, going offline). The incarnation ends before its
    /// links close, as a process's does: the machine drops what it held in memory for it
    /// (every connection's state, its timers) and keeps what it stores. The engine ends the
    /// dial schedule and wake-ups with it, then closes the links without telling the machine
    /// ([`Input::LinkDown`] is for a link that ends while the peer runs), so a stopping peer
    /// neither sends nor dials.
    fn stop(&mut self);

    /// What the peer holds at the end, per tangle in its order, when the machine names its
    /// items (`None`: the engine's record of what it stored).
    fn holdings(&mut self) -> Option<std::collections::BTreeMap<String, Vec<String>>> {
        None
    }
}
