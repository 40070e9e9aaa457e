//! JSON → [`Msg`], checking every rule that needs no tangle context.
//!
//! The checks run in the reference's order (protocol.md §6.1, steps 1, 2, 3, 5, 6, then the
//! context-free parts of 8 and 9), so a msg with a single fault gets the reference's verdict
//! and message. The rules that need the tangle (the moot short-circuit, sigkey membership,
//! prev depths, signature verification) live in [`crate::validate`].
//!
//! The typed form cannot hold what no reference peer produces (unknown metadata keys,
//! non-ID strings where IDs belong, non-string `prev` items...); such msgs are rejected with
//! the `hardening` variants listed in docs/divergences.md.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{
    Account, Digest, DigestedMsg, MSG_PART_BYTES_MAX, Metadata, Msg, Signature, TangleLink, VERSION,
};
use crate::canon;
use crate::ids::{self, DataHash, DecodedLen, MsgId, PubKey};
use crate::js;
use crate::validate::ValidationError as E;

/// The metadata keys of Msg V4, in the order the reference checks their presence.
pub(crate) const REQUIRED_METADATA_FIELDS: [&str; 6] = [
    "dataHash",
    "dataSize",
    "account",
    "accountTips",
    "tangles",
    "domain",
];

/// Largest integer JavaScript's `Number.isSafeInteger` accepts.
const SAFE_INTEGER_MAX: f64 = 9_007_199_254_740_991.0;

/// Prefixes that make a `prev` item a URI rather than a hash (pzp-db and ppppp-db).
pub(super) const URI_PREFIXES: [&str; 2] = ["pzp:", "ppppp:"];

/// Parses JSON text and decodes it as a msg.
///
/// # Errors
/// [`E::NotJson`] for text that is not JSON, otherwise as [`decode`].
pub fn decode_str(text: &str) -> Result<Msg, E> {
    let value: Value = serde_json::from_str(text).map_err(|err| E::NotJson {
        reason: err.to_string(),
    })?;
    decode_owned(value)
}

/// Decodes a JSON value as a msg, applying the context-free validation rules.
///
/// # Errors
/// The first rule the value breaks.
pub fn decode(value: &Value) -> Result<Msg, E> {
    let (data, checked) = decode_checked(value)?;
    Ok(checked.with_data(data.clone()).0)
}

/// [`decode`] for a value the caller gives up: the msg takes the value's `data` instead of
/// a copy of it (the same checks, in the same order, so the same verdicts).
///
/// # Errors
/// The first rule the value breaks.
pub fn decode_owned(value: Value) -> Result<Msg, E> {
    let (msg, _) = decode_owned_canonical(value)?;
    Ok(msg)
}

/// [`decode`], keeping the msg's [`Digest`]: decoding writes the canonical metadata anyway
/// (to bound its length), and the ID is its hash.
///
/// # Errors
/// The first rule the value breaks.
pub fn decode_digested(value: &Value) -> Result<DigestedMsg, E> {
    let (data, checked) = decode_checked(value)?;
    let (msg, canonical_metadata) = checked.with_data(data.clone());
    Ok(DigestedMsg::decoded(
        msg,
        Digest::of_canonical(canonical_metadata),
    ))
}

/// [`decode_owned`], keeping the msg's [`Digest`] (as [`decode_digested`]).
///
/// # Errors
/// The first rule the value breaks.
pub fn decode_owned_digested(value: Value) -> Result<DigestedMsg, E> {
    let (msg, canonical_metadata) = decode_owned_canonical(value)?;
    Ok(DigestedMsg::decoded(
        msg,
        Digest::of_canonical(canonical_metadata),
    ))
}

/// [`decode_owned`] and the canonical metadata it wrote.
fn decode_owned_canonical(mut value: Value) -> Result<(Msg, String), E> {
    let (_, checked) = decode_checked(&value)?;
    let data = value
        .as_object_mut()
        .and_then(|object| object.remove("data"))
        .expect("invariant: decode_checked found the data");
    Ok(checked.with_data(data))
}

/// A msg that passed [`decode`]'s checks, but for its data.
pub(super) struct CheckedFields {
    metadata: Metadata,
    /// The canonical JSON of `metadata`, written to check its length.
    canonical_metadata: String,
    sigkey: PubKey,
    sig: Signature,
}

impl CheckedFields {
    /// The fields, with the last context-free check: the canonical metadata's length.
    pub(super) fn new(metadata: Metadata, sigkey: PubKey, sig: Signature) -> Result<Self, E> {
        let canonical_metadata = metadata.canonical();
        if canonical_metadata.len() > MSG_PART_BYTES_MAX {
            return Err(E::TooLarge {
                part: "metadata",
                len: canonical_metadata.len(),
                max: MSG_PART_BYTES_MAX,
            });
        }
        Ok(Self {
            metadata,
            canonical_metadata,
            sigkey,
            sig,
        })
    }

    /// The msg, and its canonical metadata.
    pub(super) fn with_data(self, data: Value) -> (Msg, String) {
        let msg = Msg {
            data,
            metadata: self.metadata,
            sigkey: self.sigkey,
            sig: self.sig,
        };
        (msg, self.canonical_metadata)
    }
}

/// Every check of [`decode`]: the checked `data` and the other fields, typed.
fn decode_checked(value: &Value) -> Result<(&Value, CheckedFields), E> {
    let (object, meta) = check_shape(value)?;
    let sigkey = check_sigkey(object.get("sigkey"))?;
    let data = object.get("data").ok_or(E::MissingData)?;
    check_data_type(data)?;
    let data_size = check_data_size(meta.get("dataSize"))?;
    check_data_hash_and_size(data, meta.get("dataHash"), data_size)?;
    let domain = check_domain(meta.get("domain"))?;
    let metadata = metadata_fields(meta, data_size, domain)?;
    let sig = parse_sig(object.get("sig"))?;
    Ok((data, CheckedFields::new(metadata, sigkey, sig)?))
}

/// The metadata of a msg this peer stored after validating it in full, without decoding its
/// data or signature: what loading a tangle from an encoded store needs.
///
/// It parses every metadata field with [`decode`]'s rules, and skips what the data and the
/// signature would cost (the data's hash and size, the signature's base58, the metadata's
/// canonical length): those were checked before the msg was stored, and the store
/// checksums its records. About a third of a full decode for a post of a few hundred bytes.
///
/// # Errors
/// [`E::NotJson`] for text that is not JSON or has no metadata object, otherwise the first
/// metadata rule the text breaks.
pub fn decode_stored_metadata(text: &str) -> Result<Metadata, E> {
    /// The one field read; serde skips the others (data, sig, sigkey) without building them.
    #[derive(serde::Deserialize)]
    struct MetadataOnly {
        metadata: Map<String, Value>,
    }
    let outer: MetadataOnly = serde_json::from_str(text).map_err(|err| E::NotJson {
        reason: err.to_string(),
    })?;
    let meta = &outer.metadata;
    for field in REQUIRED_METADATA_FIELDS {
        if !meta.contains_key(field) {
            return Err(E::MissingMetadataField { field });
        }
    }
    let data_size = check_data_size(meta.get("dataSize"))?;
    let domain = check_domain(meta.get("domain"))?;
    metadata_fields(meta, data_size, domain)
}

/// Steps 8 and 9's context-free parts: the metadata fields after `dataSize` and `domain`.
fn metadata_fields(
    meta: &Map<String, Value>,
    data_size: u64,
    domain: String,
) -> Result<Metadata, E> {
    reject_unknown_metadata_fields(meta)?;
    Ok(Metadata {
        data_hash: parse_data_hash(meta.get("dataHash"))?,
        data_size,
        account: parse_account(meta.get("account"))?,
        account_tips: parse_account_tips(meta.get("accountTips"))?,
        tangles: parse_tangles(meta.get("tangles"))?,
        domain,
    })
}

/// A msg object and its metadata object.
type Shape<'a> = (&'a Map<String, Value>, &'a Map<String, Value>);

/// Step 1.
fn check_shape(value: &Value) -> Result<Shape<'_>, E> {
    let object = match value {
        Value::Object(object) => object,
        // `typeof [] === 'object'`, so an array fails on the next check instead.
        Value::Array(_) => return Err(E::MissingData),
        _ => return Err(E::NotAnObject),
    };
    if !object.contains_key("data") {
        return Err(E::MissingData);
    }
    let meta = match object.get("metadata") {
        Some(Value::Object(meta)) => meta,
        Some(Value::Array(_)) => return Err(E::MissingMetadataField { field: "dataHash" }),
        _ => return Err(E::MissingMetadata),
    };
    for field in REQUIRED_METADATA_FIELDS {
        if !meta.contains_key(field) {
            return Err(E::MissingMetadataField { field });
        }
    }
    let version_ok = meta.get("v").and_then(Value::as_f64) == Some(VERSION as f64);
    if !version_ok {
        return Err(E::WrongVersion);
    }
    if !matches!(object.get("sig"), Some(Value::String(_))) {
        return Err(E::MissingSig);
    }
    Ok((object, meta))
}

/// Step 2.
fn check_sigkey(sigkey: Option<&Value>) -> Result<PubKey, E> {
    let Some(Value::String(text)) = sigkey else {
        return Err(E::SigkeyNotString {
            sigkey: js::display(sigkey),
        });
    };
    sigkey_of_text(text)
}

/// Step 2 for a string `sigkey`.
pub(super) fn sigkey_of_text(text: &str) -> Result<PubKey, E> {
    match ids::decoded_len(text) {
        DecodedLen::NotBase58 => Err(E::SigkeyNotBase58 {
            sigkey: text.to_owned(),
        }),
        DecodedLen::TooLong => Err(E::SigkeyTooLong { len: text.len() }),
        DecodedLen::Bytes(32) => PubKey::parse(text).map_err(|_| E::SigkeyNotBase58 {
            sigkey: text.to_owned(),
        }),
        DecodedLen::Bytes(len) => Err(E::SigkeyWrongLength { len }),
    }
}

/// Step 3.
pub(super) fn check_data_type(data: &Value) -> Result<(), E> {
    match data {
        Value::Null | Value::Object(_) | Value::String(_) => Ok(()),
        Value::Array(_) => Err(E::DataIsArray {
            data: js::display(Some(data)),
        }),
        Value::Bool(_) | Value::Number(_) => Err(E::DataWrongType {
            data: js::display(Some(data)),
        }),
    }
}

/// `integer` if JavaScript's `Number.isSafeInteger` accepts it.
pub(super) fn safe_integer(integer: u64) -> Option<u64> {
    (integer as f64 <= SAFE_INTEGER_MAX).then_some(integer)
}

/// A JSON number as a JavaScript safe integer, if it is one.
fn as_safe_integer(value: &Value) -> Option<u64> {
    let number = value.as_number()?;
    if let Some(integer) = number.as_u64() {
        return safe_integer(integer);
    }
    // Written as a float (`5.0`, `1e2`) but integral: JavaScript cannot tell the difference.
    let double = number.as_f64()?;
    let integral = double.fract() == 0.0 && (0.0..=SAFE_INTEGER_MAX).contains(&double);
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "checked above"
    )]
    integral.then_some(double as u64)
}

/// Step 5, first half.
fn check_data_size(data_size: Option<&Value>) -> Result<u64, E> {
    let size = data_size.and_then(as_safe_integer);
    size.ok_or_else(|| E::DataSizeNotUnsigned {
        data_size: js::display(data_size),
    })
}

/// Step 5, second half: only msgs that carry data are checked.
fn check_data_hash_and_size(
    data: &Value,
    data_hash: Option<&Value>,
    data_size: u64,
) -> Result<(), E> {
    let Some((expected, expected_size)) = data_sums(data)? else {
        return Ok(());
    };
    if data_hash.and_then(Value::as_str) != Some(expected.as_str()) {
        return Err(E::DataHashMismatch {
            actual: js::display(data_hash),
            expected: expected.to_string(),
        });
    }
    if data_size != expected_size {
        return Err(E::DataSizeMismatch {
            actual: data_size,
            expected: expected_size,
        });
    }
    Ok(())
}

/// Step 5's `(dataHash, dataSize)` of non-null data (none for null data, which is not
/// checked), as [`super::represent_data`] gives them, with the canonical JSON bounded by
/// [`MSG_PART_BYTES_MAX`].
pub(super) fn data_sums(data: &Value) -> Result<Option<(DataHash, u64)>, E> {
    if data.is_null() {
        return Ok(None);
    }
    let canonical = canon::to_string(data);
    if canonical.len() > MSG_PART_BYTES_MAX {
        return Err(E::TooLarge {
            part: "data",
            len: canonical.len(),
            max: MSG_PART_BYTES_MAX,
        });
    }
    Ok(Some(super::represent_canonical_data(&canonical)))
}

/// Step 6.
fn check_domain(domain: Option<&Value>) -> Result<String, E> {
    match domain {
        Some(Value::String(text)) if !text.is_empty() => {
            validate_domain(text)?;
            Ok(text.clone())
        }
        _ => Err(E::DomainNotString {
            domain: js::display(domain),
            type_of: js::type_of(domain),
        }),
    }
}

/// The reference's `validateDomain` for a string: 3 to 100 UTF-16 units of `[a-zA-Z0-9_]`.
///
/// # Errors
/// The domain rule broken.
pub fn validate_domain(text: &str) -> Result<(), E> {
    if text.is_empty() {
        return Err(E::DomainNotString {
            domain: String::new(),
            type_of: "string",
        });
    }
    let length = canon::utf16_len(text);
    if length > 100 {
        return Err(E::DomainTooLong {
            domain: text.to_owned(),
        });
    }
    if length < 3 {
        return Err(E::DomainTooShort {
            domain: text.to_owned(),
        });
    }
    if !text
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
    {
        return Err(E::DomainBadCharacters {
            domain: text.to_owned(),
        });
    }
    Ok(())
}

/// Hardening: a metadata key outside V4 would be signed and hashed, but no reference peer
/// writes one, and the typed form cannot carry it.
fn reject_unknown_metadata_fields(meta: &Map<String, Value>) -> Result<(), E> {
    let unknown = meta
        .keys()
        .find(|key| !REQUIRED_METADATA_FIELDS.contains(&key.as_str()) && *key != "v");
    match unknown {
        Some(field) => Err(E::UnknownMetadataField {
            field: field.clone(),
        }),
        None => Ok(()),
    }
}

fn malformed(field: &'static str, reason: impl Into<String>) -> E {
    E::MalformedMetadataField {
        field,
        reason: reason.into(),
    }
}

fn parse_data_hash(data_hash: Option<&Value>) -> Result<Option<DataHash>, E> {
    match data_hash {
        Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => DataHash::parse(text)
            .map(Some)
            .map_err(|err| malformed("dataHash", err.to_string())),
        other => Err(malformed(
            "dataHash",
            format!("{:?} is neither null nor a hash", js::display(other)),
        )),
    }
}

fn parse_account(account: Option<&Value>) -> Result<Account, E> {
    match account {
        Some(Value::String(text)) => account_of_text(text),
        other => Err(malformed(
            "account",
            format!("{:?} is not a string", js::display(other)),
        )),
    }
}

/// `account` as a string: `"self"`, `"any"` or an account ID.
pub(super) fn account_of_text(text: &str) -> Result<Account, E> {
    match text {
        "self" => Ok(Account::OwnTangle),
        "any" => Ok(Account::Any),
        _ => MsgId::parse(text)
            .map(Account::Id)
            .map_err(|err| malformed("account", err.to_string())),
    }
}

fn parse_account_tips(tips: Option<&Value>) -> Result<Option<Vec<MsgId>>, E> {
    match tips {
        Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => {
                    MsgId::parse(text).map_err(|err| malformed("accountTips", err.to_string()))
                }
                other => Err(malformed(
                    "accountTips",
                    format!("item {:?} is not a string", js::display(Some(other))),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        other => Err(malformed(
            "accountTips",
            format!("{:?} is neither null nor an array", js::display(other)),
        )),
    }
}

fn parse_tangles(tangles: Option<&Value>) -> Result<BTreeMap<MsgId, TangleLink>, E> {
    let Some(Value::Object(entries)) = tangles else {
        return Err(malformed("tangles", "is not an object"));
    };
    let mut parsed = BTreeMap::new();
    for (key, entry) in entries {
        let tangle = MsgId::parse(key).map_err(|err| malformed("tangles", err.to_string()))?;
        parsed.insert(tangle, parse_tangle_link(key, entry)?);
    }
    Ok(parsed)
}

/// The context-free parts of step 8 for one tangle entry.
fn parse_tangle_link(tangle: &str, entry: &Value) -> Result<TangleLink, E> {
    let prev_value = entry.get("prev");
    let Some(Value::Array(prev_items)) = prev_value else {
        return Err(E::PrevNotArray {
            prev: js::display(prev_value),
        });
    };
    let depth_value = entry.get("depth");
    let depth = depth_value
        .and_then(as_safe_integer)
        .filter(|depth| *depth > 0);
    let depth = depth.ok_or_else(|| E::DepthNotPositiveInteger {
        depth: js::display(depth_value),
    })?;
    let mut last: Option<&str> = None;
    for item in prev_items {
        let Value::String(text) = item else {
            return Err(E::PrevItemNotString {
                item: js::display(Some(item)),
            });
        };
        if URI_PREFIXES.iter().any(|prefix| text.starts_with(prefix)) {
            return Err(E::PrevItemIsUri { item: text.clone() });
        }
        if let Some(previous) = last {
            match canon::compare_utf16(text, previous) {
                Ordering::Equal => {
                    return Err(E::PrevDuplicates {
                        prev: js::display(prev_value),
                    });
                }
                Ordering::Less => {
                    return Err(E::PrevUnsorted {
                        prev: js::display(prev_value),
                    });
                }
                Ordering::Greater => {}
            }
        }
        last = Some(text);
    }
    let prev = prev_items
        .iter()
        .filter_map(Value::as_str)
        .map(|text| {
            MsgId::parse(text).map_err(|_| E::PrevItemNotMsgId {
                item: text.to_owned(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Value::Object(fields) = entry
        && let Some(field) = fields.keys().find(|key| *key != "depth" && *key != "prev")
    {
        return Err(E::UnknownTangleField {
            tangle: tangle.to_owned(),
            field: field.clone(),
        });
    }
    Ok(TangleLink { depth, prev })
}

/// The context-free part of step 9.
fn parse_sig(sig: Option<&Value>) -> Result<Signature, E> {
    let Some(Value::String(text)) = sig else {
        return Err(E::MissingSig);
    };
    Signature::parse(text).map_err(|error| match error {
        DecodedLen::NotBase58 => E::SigNotBase58 { sig: text.clone() },
        DecodedLen::TooLong => E::SigTooLong { len: text.len() },
        DecodedLen::Bytes(len) => E::SigWrongLength { len },
    })
}
