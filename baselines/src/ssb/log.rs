//! A peer's feeds as SSB keeps them: each strictly in order from sequence 1, no gaps.

use std::collections::BTreeMap;

use super::wire::message_bytes;
use crate::seam::{Feed, Item};

/// What appending a received message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Append {
    /// It was the next one: appended.
    Appended,
    /// Already held.
    Held,
    /// Beyond the next one: dropped ("out of order", never buffered).
    Gap,
}

/// Feeds, each a gap-free prefix.
#[derive(Debug, Default)]
pub(crate) struct Log {
    feeds: BTreeMap<Feed, Vec<Item>>,
    /// The messages' JSON, summed as they are appended.
    bytes: u64,
}

impl Log {
    /// The latest sequence held of `feed` (0 when none).
    pub(crate) fn latest(&self, feed: Feed) -> u32 {
        self.feeds
            .get(&feed)
            .map_or(0, |items| u32::try_from(items.len()).unwrap_or(u32::MAX))
    }

    /// The item at `seq` of `feed`, if held.
    pub(crate) fn get(&self, feed: Feed, seq: u32) -> Option<&Item> {
        let index = usize::try_from(seq.checked_sub(1)?).ok()?;
        self.feeds.get(&feed)?.get(index)
    }

    /// Bytes of the messages held, as their JSON (the log an SSB server keeps).
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(crate) fn append(&mut self, item: Item) -> Append {
        let latest = self.latest(item.id.feed);
        if item.id.seq <= latest {
            return Append::Held;
        }
        if item.id.seq > latest + 1 {
            return Append::Gap;
        }
        self.feeds.entry(item.id.feed).or_default().push(item);
        self.bytes += message_bytes(&item);
        Append::Appended
    }
}
