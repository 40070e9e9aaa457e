//! Pure machines of other replication protocols, for side-by-side comparison with PPPPP's
//! tangle sync on the simulator's protocol tier (issue 21).
//!
//! ```text
//! seam.rs        the one shape every protocol has: Replicator::handle(now, Input) -> [Output],
//!                deadline(), handshake(); Wire::bytes()/kind() from each real encoding
//! p2p/           p2p.today: the mesh socket's flooding (flood.rs), the sync socket's leased
//!                dict over it (sync_table.rs), what both share (mesh.rs)
//! ssb/           Secure Scuttlebutt: sizes of its message format and transport (wire.rs),
//!                classic replication (classic.rs: createHistoryStream per followed feed),
//!                epidemic broadcast trees (ebt.rs: vector-clock notes, eager and lazy peers)
//! negentropy/    range-based set reconciliation, protocol v1 (range.rs: bounds, fingerprints,
//!                encoding, one step), as Nostr relays run it per connection (mod.rs)
//! tinyssb/       tinySSB: 120-byte packets (packet.rs), the GOset of feed ids (goset.rs),
//!                WANT/CHNK polling with credits and sidechains, two timer profiles (mod.rs)
//! testing.rs     a small deterministic network of static links to drive machines in tests
//! ```
//!
//! No I/O, no clock, no threads, no hash-ordered collections: the same inputs give the same
//! outputs, byte for byte.

pub mod negentropy;
pub mod p2p;
pub mod seam;
pub mod ssb;
pub mod testing;
pub mod tinyssb;

pub use seam::{
    Collection, Feed, Handshake, Input, Item, ItemId, LinkId, Millis, Output, PeerId, Publication,
    Replicator, Report, Wire, WireKind,
};
