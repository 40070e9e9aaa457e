//! Secure Scuttlebutt's two replication protocols over its transport (`baselines.md` §1):
//! classic `createHistoryStream` and epidemic broadcast trees.

pub mod classic;
pub mod ebt;
mod log;
pub mod wire;
