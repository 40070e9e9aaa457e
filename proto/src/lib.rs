//! Pure PPPPP (PZP) protocol logic, byte-compatible with the JavaScript reference
//! (npm `pzp-db` 1.0.4 and friends). No I/O, no clocks, no OS entropy: everything here is
//! a function of its inputs, so the same code runs in real peers, in the simulator and in
//! property tests.
//!
//! Start here:
//! - [`canon`]: canonical JSON (json-canon 1.0.1), the root of every hash and signature.
//! - [`ids`]: msg IDs, tangle and account IDs, public keys (base58 of 32 bytes);
//!   [`base58`]: the codec.
//! - [`keys`]: Ed25519 keypairs as pzp-keypair stores them.
//! - [`msg`]: Msg V4, its canonical metadata, ID and signature; JSON decoding.
//! - [`validate`]: the validation rules that need a tangle, one error variant per rule.
//! - [`tangle`]: the DAG of a tangle: depths, tips, lipmaa links, topological order,
//!   slices, trails, deletables.
//! - [`account`]: account tangles, keys, powers, consent.
//! - [`store`]: the `Store` trait and `MemStore`, the reference store.
//! - [`db`]: what `add` accepts and how tangles are indexed; [`publish`]: writing.
//! - [`set`], [`dict`]: set and dict feeds; [`roots`]: the bookkeeping they share.
//! - [`ingest`]: JSON msgs in with one verdict each; a comparable snapshot of a database.
//! - [`goals`]: replication goals, want-ranges, msg purposes; [`gc`]: cleanup and pruning
//!   plans.
//! - [`sync`]: tangle sync (pzp-sync's phases, blooms, wire format) as a pure state machine.
//! - [`dial`], [`liveness`]: connection policy as pure machines: when to redial, when to
//!   ping and when a silent connection is dead.
//! - `testing` (feature `testing`): an in-memory two-peer harness over [`sync`].
//!
//! Where we differ from the reference on purpose (closing its security holes, refusing what
//! no reference peer produces) is listed in `docs/divergences.md`.

#![deny(missing_docs)]
#![deny(clippy::indexing_slicing)]

pub mod account;
pub mod admission;
pub mod base58;
pub mod canon;
pub mod collate;
pub mod db;
pub mod dial;
pub mod dict;
pub mod fuzzing;
pub mod gc;
pub mod goals;
pub mod ids;
pub mod ingest;
pub mod js;
pub mod keys;
pub mod liveness;
pub mod msg;
pub mod publish;
pub mod roots;
pub mod set;
pub mod store;
pub mod sync;
pub mod tangle;
#[cfg(feature = "testing")]
pub mod testing;
pub mod validate;
