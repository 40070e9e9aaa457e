//! The engine options `run`, `sweep` and `check-baseline` share, in a file of their own so
//! that `check_baseline.rs` and `cli.rs` (which calls it) do not import each other.

use sim::scenario::{EngineKind, Substrate};

/// The engine options of `run`, `sweep` and `check-baseline`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EngineChoice {
    /// `--engine`.
    pub kind: Option<EngineKind>,
    /// `--substrate`.
    pub substrate: Option<Substrate>,
    /// `--verify-all`.
    pub verify_all: bool,
}
