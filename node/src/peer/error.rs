//! [`NodeError`]: why a node operation failed.
//!
//! Each variant carries the typed error it comes from, so a program can tell a refused msg
//! from a failed store without reading text. The causes are shown in the message and are
//! not also chained as `source`, so a report that prints the whole chain (`{:#}`) says each
//! cause once.

use proto::db::AddError;
use proto::goals::GoalsError;
use proto::publish::PublishError;

use super::any_store::StoreFailure;

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The listener could not be bound.
    #[error("cannot listen: {0}")]
    Listen(std::io::Error),
    /// The configuration is invalid (its goals do not fit the goal table).
    #[error("invalid node configuration: {0}")]
    Config(GoalsError),
    /// An actor could not start (e.g. the store failed while creating the account).
    #[error("node actor failed to start: {0}")]
    Spawn(ractor::SpawnErr),
    /// The node is stopped (or stopping), so it cannot answer.
    #[error("the node is not running")]
    Stopped,
    /// A local write (publish, set, dict or account) was refused: bad data, domain or
    /// consent.
    #[error("{0}")]
    Write(PublishError<StoreFailure>),
    /// A msg made elsewhere was refused (`NodeHandle::add`): it does not validate, or its
    /// account is unknown here.
    #[error("{}", .0.reason())]
    Add(AddError<StoreFailure>),
    /// A goal was refused (the goal table is full).
    #[error("{0}")]
    Goal(GoalsError),
    /// The store failed to read, or to make the last writes durable at shutdown.
    #[error("{0}")]
    Store(StoreFailure),
    /// An account write made no msg (`NodeHandle::account_add`).
    #[error("the account msg was not added")]
    AccountMsgNotAdded,
    /// An app call (`NodeHandle::call`) failed: not connected, refused or answered with an
    /// error by the remote, or its connection closed.
    #[error("{0}")]
    Call(String),
    /// This node cannot be a device of that account (`NodeHandle::join_account`).
    #[error("{0}")]
    Join(JoinRefused),
}

/// Why a node cannot publish in an account other than its key's own.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinRefused {
    /// The store holds no msg of the account's tangle that adds this node's key.
    #[error("the account {account} does not list this peer's key {key} (not stored here yet?)")]
    NotAMember {
        /// The account.
        account: proto::ids::AccountId,
        /// This node's key.
        key: proto::ids::PubKey,
    },
    /// The store failed to read the account's tangle.
    #[error("{0}")]
    Store(StoreFailure),
}
