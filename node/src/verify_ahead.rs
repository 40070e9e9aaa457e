//! Incoming msgs verified on every core before they are added in order.
//!
//! A signature check is almost all of what validating a msg costs and needs nothing from
//! the tangle, so a batch (a sync round's msgs, a group of `db add` lines) is decoded and its
//! signatures checked in parallel first; then the msgs are validated and stored one by one,
//! in order, on one core, finding their verdicts ready ([`proto::validate::AheadVerdicts`]).
//! What is stored and what is refused, with which reason, is what one-by-one adding gives.
//!
//! Threads: rayon's pool, one thread per core. Never on a path the simulator runs (the
//! node's store actor uses this only when `NodeConfig::verify_ahead` is on, which
//! simulations leave off); the command-line program uses it for `db add`.

use proto::db::Db;
use proto::ingest::{self, Decoded, Verdict};
use proto::msg::DigestedMsg;
use proto::store::Store;
use proto::validate::{AheadVerdicts, SignatureVerdict, Verifier};
use rayon::prelude::*;

/// Smallest batch worth handing to other threads: below it, waking them costs about what
/// verifying on this one does (one verification is ~50 µs).
pub const AHEAD_MSGS_MIN: usize = 4;

/// Decodes JSON lines and verifies their signatures, in parallel for a batch of at least
/// [`AHEAD_MSGS_MIN`]; the verdicts wait in the returned [`AheadVerdicts`] for
/// [`add_decoded_all`].
#[must_use]
pub fn decode_all(texts: &[&str]) -> (Vec<Decoded>, AheadVerdicts) {
    let decode = |verifier: &mut Verifier, text: &&str| {
        let decoded = ingest::decode_json(text);
        let verdict = match &decoded {
            Decoded::Msg(boxed) => Some(SignatureVerdict::of(&boxed.0, &boxed.1, verifier)),
            Decoded::Refused(_) => None,
        };
        (decoded, verdict)
    };
    let pairs: Vec<(Decoded, Option<SignatureVerdict>)> = if texts.len() >= AHEAD_MSGS_MIN {
        texts.par_iter().map_init(Verifier::new, decode).collect()
    } else {
        let mut verifier = Verifier::new();
        texts
            .iter()
            .map(|text| decode(&mut verifier, text))
            .collect()
    };
    let (decoded, verdicts): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
    (decoded, AheadVerdicts::new(verdicts.into_iter().flatten()))
}

/// Adds decoded msgs in order with the reference's rules, using `verdicts` computed ahead.
///
/// # Errors
/// Only store failures; refused msgs are [`Verdict::Rejected`].
pub fn add_decoded_all<S: Store>(
    db: &mut Db<S>,
    decoded: Vec<Decoded>,
    verdicts: AheadVerdicts,
) -> Result<Vec<Verdict>, S::Error> {
    db.expect_verdicts(verdicts);
    let verdicts: Result<Vec<Verdict>, S::Error> = decoded
        .into_iter()
        .map(|one| ingest::add_decoded(db, one))
        .collect();
    db.expect_verdicts(AheadVerdicts::default());
    verdicts
}

/// Signature verdicts of a sync batch, verified in parallel when it has at least
/// [`AHEAD_MSGS_MIN`] msgs; `None` for a smaller one (it is verified inline). The msgs
/// carry the digests their decode computed, so only the signatures are checked here; the
/// batch is then added with those digests ([`proto::sync::AddShared`]).
#[must_use]
pub fn prepare_batch(msgs: &[DigestedMsg]) -> Option<AheadVerdicts> {
    if msgs.len() < AHEAD_MSGS_MIN {
        return None;
    }
    let verdicts: Vec<SignatureVerdict> = msgs
        .par_iter()
        .map_init(Verifier::new, |verifier, digested| {
            SignatureVerdict::of(digested.msg(), digested.digest(), verifier)
        })
        .collect();
    Some(AheadVerdicts::new(verdicts))
}

#[cfg(test)]
mod tests {
    use std::ops::ControlFlow;

    use proptest::prelude::*;
    use proto::db::Added;
    use proto::ingest::add_json;
    use proto::keys::Keypair;
    use proto::msg::Msg;
    use proto::msg::Signature;
    use proto::store::MemStore;
    use serde_json::json;

    use super::*;

    /// An account, its `post` feed and `posts` posts, as JSON lines in the order added.
    fn feed_lines(posts: usize) -> Vec<String> {
        let keypair = Keypair::from_string_seed("ahead");
        let mut db = Db::new(MemStore::new());
        let account = db
            .create_account(&keypair, "account", "n")
            .expect("account");
        for index in 0..posts {
            db.publish(&keypair, &account, "post", json!({ "text": index }), &[])
                .expect("publish");
        }
        let mut lines = Vec::new();
        db.store()
            .scan(&mut |record| {
                lines.push(record.msg.to_json());
                ControlFlow::Continue(())
            })
            .expect("scan");
        lines
    }

    /// Ways to spoil a msg line.
    #[derive(Debug, Clone, Copy)]
    enum Spoil {
        /// One bit of the signature flipped: a forgery.
        SignatureBit(u16),
        /// Another msg's signature.
        SwappedSignature,
        /// A metadata field changed after signing.
        Depth,
        /// Not JSON at all.
        Garbage,
        /// The same line twice.
        Repeat,
    }

    fn spoil(lines: &[String], index: usize, how: Spoil) -> Vec<String> {
        let mut out = lines.to_vec();
        let Ok(mut msg) = serde_json::from_str::<Msg>(&lines[index]) else {
            return out; // spoiled already
        };
        match how {
            Spoil::SignatureBit(bit) => {
                let mut sig = *msg.sig.bytes();
                sig[usize::from(bit / 8) % 64] ^= 1 << (bit % 8);
                msg.sig = Signature::from_bytes(sig);
            }
            Spoil::SwappedSignature => {
                // The next line may be spoiled into garbage already: then nothing to swap.
                let next = &lines[(index + 1) % lines.len()];
                let Ok(other) = serde_json::from_str::<Msg>(next) else {
                    return out;
                };
                msg.sig = other.sig;
            }
            Spoil::Depth => {
                for link in msg.metadata.tangles.values_mut() {
                    link.depth += 1;
                }
            }
            Spoil::Garbage => {
                out[index] = "{not json".to_owned();
                return out;
            }
            Spoil::Repeat => {
                out.insert(index, lines[index].clone());
                return out;
            }
        }
        out[index] = msg.to_json();
        out
    }

    fn spoils() -> impl Strategy<Value = Spoil> {
        prop_oneof![
            (0u16..512).prop_map(Spoil::SignatureBit),
            Just(Spoil::SwappedSignature),
            Just(Spoil::Depth),
            Just(Spoil::Garbage),
            Just(Spoil::Repeat),
        ]
    }

    fn one_by_one(lines: &[String]) -> (Vec<Verdict>, proto::ingest::Snapshot) {
        let mut db = Db::new(MemStore::new());
        let verdicts = lines
            .iter()
            .map(|line| add_json(&mut db, line).unwrap_or_else(|never| match never {}))
            .collect();
        (
            verdicts,
            proto::ingest::Snapshot::of(&mut db).expect("snapshot"),
        )
    }

    fn ahead(lines: &[String]) -> (Vec<Verdict>, proto::ingest::Snapshot) {
        let mut db = Db::new(MemStore::new());
        let texts: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (decoded, verdicts) = decode_all(&texts);
        let verdicts =
            add_decoded_all(&mut db, decoded, verdicts).unwrap_or_else(|never| match never {});
        (
            verdicts,
            proto::ingest::Snapshot::of(&mut db).expect("snapshot"),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Verifying ahead, on several threads, refuses exactly what one-by-one adding
        /// refuses, with the same reasons, wherever spoiled msgs sit in the batch, and stores
        /// the same.
        #[test]
        fn verdicts_ahead_equal_one_by_one(
            posts in 3usize..24,
            spoiled in proptest::collection::vec((any::<prop::sample::Index>(), spoils()), 0..4),
        ) {
            let mut lines = feed_lines(posts);
            for (index, how) in spoiled {
                let at = index.index(lines.len());
                lines = spoil(&lines, at, how);
            }
            prop_assert_eq!(ahead(&lines), one_by_one(&lines));
        }
    }

    #[test]
    fn a_forged_msg_in_a_batch_is_refused_for_its_signature_alone() {
        let lines = feed_lines(10);
        let spoiled = spoil(&lines, 5, Spoil::SignatureBit(77));
        let (verdicts, snapshot) = ahead(&spoiled);
        assert!(verdicts[..5].iter().all(|v| matches!(v, Verdict::Ok(_))));
        let Verdict::Rejected(_, reason) = &verdicts[5] else {
            panic!("the forged msg is refused: {:?}", verdicts[5])
        };
        assert!(reason.contains("sig"), "{reason}");
        // Its successors that reach it only through it are refused (prev unknown); those
        // with a skip link to a known msg are stored: the same as one by one.
        assert_eq!((verdicts, snapshot), one_by_one(&spoiled));
    }

    #[test]
    fn a_sync_batch_prepared_ahead_adds_what_plain_adds_do() {
        let lines = feed_lines(12);
        let msgs: Vec<DigestedMsg> = lines
            .iter()
            .map(|line| {
                let value: serde_json::Value = serde_json::from_str(line).expect("json");
                proto::msg::decode_digested(&value).expect("msg")
            })
            .collect();
        let verdicts = prepare_batch(&msgs).expect("big enough to prepare");
        assert_eq!(verdicts.len(), msgs.len());
        let mut db = Db::new(MemStore::new());
        db.expect_verdicts(verdicts);
        for digested in &msgs {
            let (msg, digest) = digested.clone().into_parts();
            let added = db.add_digested(msg, digest, None);
            assert!(matches!(added, Ok(Added::Appended(_))), "{added:?}");
        }
        assert!(prepare_batch(&msgs[..AHEAD_MSGS_MIN - 1]).is_none());
    }
}
