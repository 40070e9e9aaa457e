//! A msg's digest (its ID and canonical metadata) and a msg paired with the digest computed
//! when it was decoded.
//!
//! Decoding a msg writes its canonical metadata (the metadata's length is bounded), and the
//! ID is the hash of that text; a msg received in a sync frame keeps both in a
//! [`DigestedMsg`], so that filtering, validating and storing it do not write and hash its
//! metadata again.

use std::sync::Arc;

use super::{Msg, id_of_canonical};
use crate::ids::MsgId;

/// A msg's ID and canonical metadata, computed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// The msg ID.
    pub id: MsgId,
    /// The canonical JSON of the metadata (what is hashed and signed).
    pub canonical_metadata: String,
}

impl Digest {
    /// Computes the digest of `msg`.
    #[must_use]
    pub fn of(msg: &Msg) -> Self {
        Self::of_canonical(msg.metadata.canonical())
    }

    /// The digest of the msg whose canonical metadata is `canonical_metadata`.
    pub(super) fn of_canonical(canonical_metadata: String) -> Self {
        Self {
            id: id_of_canonical(&canonical_metadata),
            canonical_metadata,
        }
    }
}

/// A shared msg with its [`Digest`]. The digest is the msg's by construction: computed
/// from it ([`DigestedMsg::new`]) or by the decode that built it
/// ([`super::decode_digested`]); the fields are read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestedMsg {
    msg: Arc<Msg>,
    digest: Digest,
}

impl DigestedMsg {
    /// `msg` with its digest, computed now.
    #[must_use]
    pub fn new(msg: Arc<Msg>) -> Self {
        let digest = Digest::of(&msg);
        Self { msg, digest }
    }

    /// A msg and the digest its decode computed.
    pub(super) fn decoded(msg: Msg, digest: Digest) -> Self {
        Self {
            msg: Arc::new(msg),
            digest,
        }
    }

    /// The msg ID.
    #[must_use]
    pub fn id(&self) -> MsgId {
        self.digest.id
    }

    /// The msg.
    #[must_use]
    pub fn msg(&self) -> &Arc<Msg> {
        &self.msg
    }

    /// The digest.
    #[must_use]
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The msg and its digest.
    #[must_use]
    pub fn into_parts(self) -> (Arc<Msg>, Digest) {
        (self.msg, self.digest)
    }
}

impl AsRef<Msg> for DigestedMsg {
    fn as_ref(&self) -> &Msg {
        &self.msg
    }
}
