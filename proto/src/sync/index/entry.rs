//! [`Entry`]: what the sync index keeps of one tangle member, which the index and the slice
//! above a cut ([`super::above_cut`]) both read.

use crate::ids::MsgId;
use crate::sync::bloom::ItemHashes;

/// No account tips (the msg is not a feed msg).
pub(super) const NO_TIPS: u32 = u32::MAX;

/// One member of an indexed tangle.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) id: MsgId,
    pub(super) depth: u64,
    pub(super) hashes: [ItemHashes; 3],
    /// Index into the tangle index's tip sets, or [`NO_TIPS`].
    pub(super) tips: u32,
    /// Every other member below this one's depth is its ancestor, and it is alone at its
    /// depth.
    pub(super) cut: bool,
}
