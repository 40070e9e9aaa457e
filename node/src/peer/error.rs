//! [`NodeError`]: why a node operation failed.

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The listener could not be bound.
    #[error("cannot listen: {0}")]
    Listen(String),
    /// The configuration is invalid.
    #[error("invalid node configuration: {0}")]
    Config(String),
    /// An actor could not start (e.g. the store failed while creating the account).
    #[error("node actor failed to start: {0}")]
    Spawn(String),
    /// The node is stopped (or stopping), so it cannot answer.
    #[error("the node is not running")]
    Stopped,
    /// The operation was refused (e.g. a msg that does not validate).
    #[error("{0}")]
    Refused(String),
}

impl NodeError {
    pub(crate) fn spawn(error: ractor::SpawnErr) -> Self {
        Self::Spawn(error.to_string())
    }
}
