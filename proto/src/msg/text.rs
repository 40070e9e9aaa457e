//! A msg read straight from JSON text into typed fields: the fast path of decoding, for msgs
//! written as peers write them.
//!
//! [`super::decode`] works on a `serde_json::Value`, whose tree of maps and strings costs
//! more to build and drop than the checks that read it. [`MsgText`] borrows the metadata's
//! strings from the text instead; only `data` becomes a `Value`, as the msg holds it.
//!
//! It takes only msgs [`super::decode`] accepts and gives what it gives. Anything else (an
//! escaped string, a number written as a float, a key outside Msg V4, a repeated key, a rule
//! broken) makes it give nothing, and the caller decodes the same text through a `Value`,
//! which names the fault in the reference's order. So the verdicts are those of the general
//! path by construction; the tests compare the two on valid and broken msgs.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::decode::{self, CheckedFields, URI_PREFIXES};
use super::{Digest, DigestedMsg, Metadata, Signature, TangleLink, VERSION};
use crate::canon;
use crate::ids::{DataHash, MsgId};

/// A msg as its JSON text holds it, strings borrowed. Every field is required, and no other
/// is taken (serde refuses the msg, and the caller falls back).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MsgText<'a> {
    data: Value,
    #[serde(borrow)]
    metadata: MetadataText<'a>,
    sigkey: &'a str,
    sig: &'a str,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetadataText<'a> {
    #[serde(rename = "dataHash", borrow, deserialize_with = "nullable")]
    data_hash: Option<&'a str>,
    #[serde(rename = "dataSize")]
    data_size: u64,
    account: &'a str,
    #[serde(rename = "accountTips", borrow, deserialize_with = "nullable")]
    account_tips: Option<Vec<&'a str>>,
    #[serde(borrow)]
    tangles: TanglesText<'a>,
    domain: &'a str,
    v: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TangleText<'a> {
    depth: u64,
    #[serde(borrow)]
    prev: Vec<&'a str>,
}

/// `tangles`' entries in the text's order, repeats kept (a `Value` keeps the last of a
/// repeated key; this path leaves such a msg to it).
#[derive(Debug)]
struct TanglesText<'a>(Vec<(&'a str, TangleText<'a>)>);

/// A field that must be present and may be `null` (`dataHash`, `accountTips`): serde would
/// take a missing `Option` field as `None`, which [`super::decode`] refuses.
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}

impl<'de: 'a, 'a> Deserialize<'de> for TanglesText<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for EntriesVisitor<'a> {
            type Value = TanglesText<'a>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("an object of tangle links")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<&'a str, TangleText<'a>>()? {
                    entries.push(entry);
                }
                Ok(TanglesText(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

impl MsgText<'_> {
    /// The msg and its digest, if [`super::decode`] accepts it; `None` when it may not (the
    /// caller then decodes the text through a `Value`).
    pub(crate) fn decode(self) -> Option<DigestedMsg> {
        let meta = self.metadata;
        if meta.v != VERSION {
            return None;
        }
        let sigkey = decode::sigkey_of_text(self.sigkey).ok()?;
        decode::check_data_type(&self.data).ok()?;
        let data_size = decode::safe_integer(meta.data_size)?;
        let sums_match = match decode::data_sums(&self.data).ok()? {
            None => true,
            Some((hash, size)) => meta.data_hash == Some(hash.as_str()) && size == data_size,
        };
        if !sums_match || meta.domain.is_empty() || decode::validate_domain(meta.domain).is_err() {
            return None;
        }
        let metadata = Metadata {
            data_hash: meta.data_hash.map(DataHash::parse).transpose().ok()?,
            data_size,
            account: decode::account_of_text(meta.account).ok()?,
            account_tips: match meta.account_tips {
                None => None,
                Some(tips) => Some(parse_ids(&tips)?),
            },
            tangles: tangle_links(meta.tangles)?,
            domain: meta.domain.to_owned(),
        };
        let sig = Signature::parse(self.sig).ok()?;
        let (msg, canonical) = CheckedFields::new(metadata, sigkey, sig)
            .ok()?
            .with_data(self.data);
        Some(DigestedMsg::decoded(msg, Digest::of_canonical(canonical)))
    }
}

/// Every text as a msg ID, if each is one.
fn parse_ids(texts: &[&str]) -> Option<Vec<MsgId>> {
    texts.iter().map(|text| MsgId::parse(text).ok()).collect()
}

/// The tangle links, if every entry passes step 8's context-free rules and no tangle is
/// named twice.
fn tangle_links(tangles: TanglesText<'_>) -> Option<BTreeMap<MsgId, TangleLink>> {
    let mut links = BTreeMap::new();
    for (tangle, link) in tangles.0 {
        let depth = decode::safe_integer(link.depth).filter(|depth| *depth > 0)?;
        if !prev_in_order(&link.prev) {
            return None;
        }
        let link = TangleLink {
            depth,
            prev: parse_ids(&link.prev)?,
        };
        if links.insert(MsgId::parse(tangle).ok()?, link).is_some() {
            return None;
        }
    }
    Some(links)
}

/// Whether `prev` holds no URI and is strictly ascending (sorted, no repeats) by UTF-16
/// code units, as the reference compares strings.
fn prev_in_order(prev: &[&str]) -> bool {
    let no_uri = prev
        .iter()
        .all(|text| !URI_PREFIXES.iter().any(|prefix| text.starts_with(prefix)));
    no_uri
        && prev
            .iter()
            .zip(prev.iter().skip(1))
            .all(|(earlier, later)| canon::compare_utf16(later, earlier) == Ordering::Greater)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::db::Db;
    use crate::keys::Keypair;
    use crate::msg::{Msg, decode_owned_digested};
    use crate::store::MemStore;

    /// A feed's msgs: the account's root, the feed's root, then posts with `data`.
    fn feed(posts: &[Value]) -> Vec<Msg> {
        let keypair = Keypair::from_seed(&[3; 32]);
        let mut db = Db::new(MemStore::new());
        let account = db
            .create_account(&keypair, "account", "text")
            .expect("account");
        let mut ids = vec![account];
        for data in posts {
            let id = db
                .publish(&keypair, &account, "post", data.clone(), &[])
                .expect("publish");
            ids.push(id);
        }
        ids.insert(1, crate::msg::feed_id(&account, "post"));
        ids.iter()
            .map(|id| Msg::clone(&db.get(id).expect("memory").expect("stored")))
            .collect()
    }

    /// What the general path gives for `text`, as [`MsgText`]'s result reads it (`None` for
    /// a refused msg).
    fn general(text: &str) -> Option<DigestedMsg> {
        let value: Value = serde_json::from_str(text).ok()?;
        decode_owned_digested(value).ok()
    }

    fn fast(text: &str) -> Option<DigestedMsg> {
        serde_json::from_str::<MsgText<'_>>(text)
            .ok()
            .and_then(MsgText::decode)
    }

    fn sample_msgs() -> Vec<Msg> {
        feed(&[
            json!({"text": "hello"}),
            json!({"text": "ünïcödé \u{1F600} \"quoted\"", "n": [1, 2.5, -3e-7]}),
            json!(null),
            json!("a bare string"),
        ])
    }

    #[test]
    fn msgs_as_peers_write_them_take_the_fast_path_with_the_general_result() {
        for msg in sample_msgs() {
            let text = msg.to_json();
            let fast = fast(&text).expect("a written msg takes the fast path");
            assert_eq!(Some(&fast), general(&text).as_ref());
            assert_eq!(**fast.msg(), msg);
        }
    }

    /// Shapes the fast path leaves to the general one; each must give the general verdict
    /// there, and the fast path must not accept what the general one refuses.
    #[test]
    fn unusual_or_broken_msgs_are_left_to_the_general_path() {
        let msg = sample_msgs().pop().expect("a post");
        let base: Value = serde_json::from_str(&msg.to_json()).expect("json");
        let edits: Vec<Edit> = vec![
            ("no dataHash", |m| remove(m, "/metadata", "dataHash")),
            ("no accountTips", |m| remove(m, "/metadata", "accountTips")),
            ("no data", |m| remove(m, "", "data")),
            ("no v", |m| remove(m, "/metadata", "v")),
            ("v 5", |m| set(m, "/metadata/v", json!(5))),
            ("v 4.0", |m| set(m, "/metadata/v", json!(4.0))),
            ("size 1e9", |m| set(m, "/metadata/dataSize", json!(1e9))),
            ("size off", |m| bump(m, "/metadata/dataSize")),
            ("extra key", |m| set(m, "/extra", json!(1))),
            ("extra meta key", |m| set(m, "/metadata/extra", json!(1))),
            ("data array", |m| set(m, "/data", json!([1]))),
            ("data changed", |m| set(m, "/data", json!("other"))),
            ("domain short", |m| set(m, "/metadata/domain", json!("ab"))),
            ("domain empty", |m| set(m, "/metadata/domain", json!(""))),
            ("account self", |m| {
                set(m, "/metadata/account", json!("self"))
            }),
            ("tips null", |m| {
                set(m, "/metadata/accountTips", Value::Null)
            }),
            ("sig short", |m| set(m, "/sig", json!("abc"))),
            ("sigkey number", |m| set(m, "/sigkey", json!(7))),
        ];
        for (name, edit) in edits {
            let mut value = base.clone();
            edit(&mut value);
            let text = value.to_string();
            let fast = fast(&text);
            if let Some(fast) = &fast {
                assert_eq!(Some(fast), general(&text).as_ref(), "{name}");
            }
        }
        // Escapes are valid JSON the fast path cannot borrow; the general path decodes them.
        let escaped = msg.to_json().replacen("\"post\"", "\"p\\u006fst\"", 1);
        assert!(fast(&escaped).is_none());
        assert_eq!(general(&escaped).map(|m| Msg::clone(m.msg())), Some(msg));
    }

    /// A named change to a msg's JSON.
    type Edit = (&'static str, fn(&mut Value));

    fn remove(value: &mut Value, pointer: &str, key: &str) {
        if let Some(Value::Object(object)) = value.pointer_mut(pointer) {
            object.remove(key);
        }
    }

    fn set(value: &mut Value, pointer: &str, to: Value) {
        let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
        if let Some(Value::Object(object)) = value.pointer_mut(parent) {
            object.insert(key.to_owned(), to);
        }
    }

    fn bump(value: &mut Value, pointer: &str) {
        if let Some(number) = value.pointer(pointer).and_then(Value::as_u64) {
            set(value, pointer, json!(number + 1));
        }
    }

    proptest! {
        /// Whatever bytes of a msg's text are changed, the fast path gives the general
        /// path's msg or nothing: never a msg the general path refuses or decodes otherwise.
        #[test]
        fn a_changed_byte_never_makes_the_paths_disagree(
            which in 0usize..4,
            position in any::<prop::sample::Index>(),
            byte in prop::sample::select(b"0123456789abcdefABCDEF\"\\{}[],:. -_xyzv".to_vec()),
        ) {
            let mut msgs = sample_msgs();
            let mut bytes = msgs.swap_remove(which % msgs.len()).to_json().into_bytes();
            let at = position.index(bytes.len());
            if let Some(slot) = bytes.get_mut(at) {
                *slot = byte;
            }
            let Ok(text) = String::from_utf8(bytes) else { return Ok(()) };
            if let Some(fast) = fast(&text) {
                prop_assert_eq!(Some(fast), general(&text));
            }
        }
    }
}
