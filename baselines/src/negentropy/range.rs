//! Negentropy protocol v1 (`baselines.md` §4.1; hoytech/negentropy's protocol document):
//! records, bounds, fingerprints, the message encoding, and one reconciliation step.
//!
//! Both sides sort their records by (timestamp, id). A message is a list of contiguous
//! ranges, each ending at an upper bound and carrying a mode: Skip, a 16-byte Fingerprint of
//! the records in the range, or the range's full IdList. A side answers a matching
//! fingerprint with Skip and a different one by splitting its own range (an IdList under
//! 32 records, else 16 fingerprinted buckets of equal count); the responder answers an
//! IdList with its own, the initiator computes what each side lacks from it. The initiator
//! stops when its answer would be all Skip. No frame-size limit (the protocol's optional
//! limit is off, as in strfry's default sync).

use sha2::{Digest, Sha256};

/// The protocol version byte of v1.
pub const VERSION: u8 = 0x61;
/// Bytes of a fingerprint.
pub const FINGERPRINT_BYTES: usize = 16;
/// Buckets a mismatching range is split into.
pub const BUCKETS: usize = 16;
/// A range with fewer records than this is sent as an IdList instead of being split.
pub const ID_LIST_BELOW: usize = 2 * BUCKETS;

/// A record's 32-byte id.
pub type Id = [u8; 32];
/// A range's fingerprint.
pub type Fingerprint = [u8; FINGERPRINT_BYTES];

/// One record, ordered by timestamp, then id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Record {
    /// The record's timestamp (the order key).
    pub timestamp: u64,
    /// The record's id.
    pub id: Id,
}

/// A range's upper edge: a timestamp (`u64::MAX` is infinity) and the shortest id prefix that
/// separates it from the record before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    timestamp: u64,
    prefix: Vec<u8>,
}

impl Bound {
    /// Above every record.
    #[must_use]
    pub fn infinity() -> Bound {
        Bound {
            timestamp: u64::MAX,
            prefix: Vec::new(),
        }
    }

    fn zero() -> Bound {
        Bound {
            timestamp: 0,
            prefix: Vec::new(),
        }
    }

    /// The shortest bound above `before` and at or below `after` (`before < after`).
    fn between(before: &Record, after: &Record) -> Bound {
        if before.timestamp != after.timestamp {
            return Bound {
                timestamp: after.timestamp,
                prefix: Vec::new(),
            };
        }
        let shared = before
            .id
            .iter()
            .zip(&after.id)
            .take_while(|(a, b)| a == b)
            .count();
        let length = (shared + 1).min(after.id.len());
        Bound {
            timestamp: after.timestamp,
            prefix: after.id[..length].to_vec(),
        }
    }

    /// Whether `record` lies below this bound (the bound's id is its prefix, zero-padded).
    fn above(&self, record: &Record) -> bool {
        if record.timestamp != self.timestamp {
            return record.timestamp < self.timestamp;
        }
        let mut padded = [0_u8; 32];
        padded[..self.prefix.len()].copy_from_slice(&self.prefix);
        record.id < padded
    }
}

/// What a range says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Nothing to reconcile here.
    Skip,
    /// The fingerprint of the sender's records in the range.
    Fingerprint(Fingerprint),
    /// Every id the sender holds in the range.
    IdList(Vec<Id>),
}

/// One range of a message: from the previous range's upper bound (or zero) to `upper`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// The range's upper edge.
    pub upper: Bound,
    /// What the range carries.
    pub mode: Mode,
}

/// A negentropy message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// Contiguous ranges; what follows the last one is an implicit Skip.
    pub ranges: Vec<Range>,
}

fn varint(mut value: u64, out: &mut Vec<u8>) {
    let mut groups = vec![u8::try_from(value & 0x7f).unwrap_or(0)];
    value >>= 7;
    while value > 0 {
        groups.push(u8::try_from(value & 0x7f).unwrap_or(0) | 0x80);
        value >>= 7;
    }
    out.extend(groups.iter().rev());
}

impl Message {
    /// Whether every range is a Skip (the initiator's signal that reconciliation is over).
    #[must_use]
    pub fn is_all_skip(&self) -> bool {
        self.ranges.iter().all(|range| range.mode == Mode::Skip)
    }

    /// The message's bytes: version, then each range's bound, mode and payload; consecutive
    /// Skips are merged and a trailing Skip is left out.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION];
        let mut last_timestamp = 0_u64;
        let ranges = self.compacted();
        for range in &ranges {
            let bound = &range.upper;
            if bound.timestamp == u64::MAX {
                varint(0, &mut out);
            } else {
                varint(1 + bound.timestamp - last_timestamp, &mut out);
                last_timestamp = bound.timestamp;
            }
            varint(bound.prefix.len() as u64, &mut out);
            out.extend_from_slice(&bound.prefix);
            match &range.mode {
                Mode::Skip => varint(0, &mut out),
                Mode::Fingerprint(fingerprint) => {
                    varint(1, &mut out);
                    out.extend_from_slice(fingerprint);
                }
                Mode::IdList(ids) => {
                    varint(2, &mut out);
                    varint(ids.len() as u64, &mut out);
                    for id in ids {
                        out.extend_from_slice(id);
                    }
                }
            }
        }
        out
    }

    fn compacted(&self) -> Vec<Range> {
        let mut ranges: Vec<Range> = Vec::with_capacity(self.ranges.len());
        for range in &self.ranges {
            match ranges.last_mut() {
                Some(last) if last.mode == Mode::Skip && range.mode == Mode::Skip => {
                    last.upper = range.upper.clone();
                }
                _ => ranges.push(range.clone()),
            }
        }
        if ranges.last().is_some_and(|range| range.mode == Mode::Skip) {
            ranges.pop();
        }
        ranges
    }
}

/// The fingerprint of `records`: the first 16 bytes of SHA-256 over the sum of their ids
/// (little-endian 256-bit integers, mod 2^256) and their count as a varint.
#[must_use]
pub fn fingerprint(records: &[Record]) -> Fingerprint {
    let mut sum = [0_u8; 32];
    for record in records {
        let mut carry = 0_u16;
        for (byte, add) in sum.iter_mut().zip(&record.id) {
            let total = u16::from(*byte) + u16::from(*add) + carry;
            *byte = u8::try_from(total & 0xff).unwrap_or(0);
            carry = total >> 8;
        }
    }
    let mut input = sum.to_vec();
    varint(records.len() as u64, &mut input);
    let digest = Sha256::digest(&input);
    let mut fingerprint = [0_u8; FINGERPRINT_BYTES];
    fingerprint.copy_from_slice(&digest[..FINGERPRINT_BYTES]);
    fingerprint
}

/// The initiator's first message: its whole set, split.
#[must_use]
pub fn initiate(records: &[Record]) -> Message {
    let mut message = Message::default();
    split(records, Bound::infinity(), &mut message.ranges);
    message
}

/// `records` (the sender's, in one range ending at `upper`) as an IdList, or as 16
/// fingerprinted buckets of equal count.
fn split(records: &[Record], upper: Bound, out: &mut Vec<Range>) {
    if records.len() < ID_LIST_BELOW {
        let ids = records.iter().map(|record| record.id).collect();
        out.push(Range {
            upper,
            mode: Mode::IdList(ids),
        });
        return;
    }
    let (per_bucket, extra) = (records.len() / BUCKETS, records.len() % BUCKETS);
    let mut start = 0;
    for bucket in 0..BUCKETS {
        let end = start + per_bucket + usize::from(bucket < extra);
        let bound = match records.get(end) {
            Some(next) if bucket + 1 < BUCKETS => Bound::between(&records[end - 1], next),
            _ => upper.clone(),
        };
        let mode = Mode::Fingerprint(fingerprint(&records[start..end]));
        out.push(Range { upper: bound, mode });
        start = end;
    }
}

/// What one side learnt from a message: its answer, and (the initiator only) the ids it
/// holds that the other lacks and the ids the other holds that it lacks.
#[derive(Debug, Default)]
pub struct Step {
    /// The answer to send (for the initiator, `None` when reconciliation is over).
    pub reply: Option<Message>,
    /// Ids only this side holds.
    pub have: Vec<Id>,
    /// Ids only the other side holds.
    pub need: Vec<Id>,
}

/// Processes `message` against this side's sorted `records`.
#[must_use]
pub fn reconcile(records: &[Record], message: &Message, initiator: bool) -> Step {
    let mut step = Step::default();
    let mut reply = Message::default();
    let mut lower = Bound::zero();
    for range in &message.ranges {
        let from = records.partition_point(|record| lower.above(record));
        let to = records
            .partition_point(|record| range.upper.above(record))
            .max(from);
        let mine = &records[from..to];
        match &range.mode {
            Mode::Skip => reply.ranges.push(Range {
                upper: range.upper.clone(),
                mode: Mode::Skip,
            }),
            Mode::Fingerprint(theirs) => {
                if fingerprint(mine) == *theirs {
                    reply.ranges.push(Range {
                        upper: range.upper.clone(),
                        mode: Mode::Skip,
                    });
                } else {
                    split(mine, range.upper.clone(), &mut reply.ranges);
                }
            }
            Mode::IdList(theirs) => {
                if initiator {
                    let ours: std::collections::BTreeSet<&Id> =
                        mine.iter().map(|r| &r.id).collect();
                    let other: std::collections::BTreeSet<&Id> = theirs.iter().collect();
                    step.have.extend(ours.difference(&other).map(|id| **id));
                    step.need.extend(other.difference(&ours).map(|id| **id));
                    reply.ranges.push(Range {
                        upper: range.upper.clone(),
                        mode: Mode::Skip,
                    });
                } else {
                    let ids = mine.iter().map(|record| record.id).collect();
                    reply.ranges.push(Range {
                        upper: range.upper.clone(),
                        mode: Mode::IdList(ids),
                    });
                }
            }
        }
        lower = range.upper.clone();
    }
    if !(initiator && reply.is_all_skip()) {
        step.reply = Some(reply);
    }
    step
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(timestamp: u64, seed: u8) -> Record {
        let mut id = [seed; 32];
        id[0] = seed.wrapping_mul(7);
        Record { timestamp, id }
    }

    #[test]
    fn varints_put_the_most_significant_group_first() {
        let mut out = Vec::new();
        varint(300, &mut out);
        assert_eq!(out, [0x82, 0x2c]);
        out.clear();
        varint(5, &mut out);
        assert_eq!(out, [5]);
    }

    #[test]
    fn an_empty_set_fingerprints_its_zero_sum_and_count() {
        let expected = Sha256::digest([[0_u8; 32].as_slice(), &[0]].concat());
        assert_eq!(fingerprint(&[]).as_slice(), &expected[..16]);
    }

    #[test]
    fn a_bound_between_two_records_of_one_timestamp_takes_one_more_byte_than_they_share() {
        let a = Record {
            timestamp: 9,
            id: [1; 32],
        };
        let mut later = [1; 32];
        later[2] = 2;
        let b = Record {
            timestamp: 9,
            id: later,
        };
        let bound = Bound::between(&a, &b);
        assert_eq!(bound.prefix, vec![1, 1, 2]);
        assert!(bound.above(&a) && !bound.above(&b));
    }

    #[test]
    fn equal_sets_finish_in_one_round_trip() {
        let records: Vec<Record> = (0..100).map(|i| record(i, i as u8)).collect();
        let opening = initiate(&records);
        let answer = reconcile(&records, &opening, false)
            .reply
            .unwrap_or_default();
        assert!(answer.is_all_skip());
        assert!(reconcile(&records, &answer, true).reply.is_none());
        // All Skip encodes as the version byte alone.
        assert_eq!(answer.encode(), vec![VERSION]);
    }
}
