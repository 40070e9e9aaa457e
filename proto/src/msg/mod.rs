//! Msg V4: the signed message format of pzp-db 1.0.4 (protocol.md §3).
//!
//! ```text
//! {data, metadata: {dataHash, dataSize, account, accountTips, tangles, domain, v: 4}, sigkey, sig}
//! ```
//! - the msg ID is `base58(sha512(canon(metadata))[0..32])`; `sigkey` and `sig` are outside it;
//! - `sig` is Ed25519 over `":msg-v4:" + canon(metadata)`;
//! - a *moot* (feed root) has no data, no tangles and `accountTips: null`; anyone can compute
//!   a feed's ID from (account, domain) with [`moot_id`].
//!
//! [`Msg`] is the typed form. JSON input goes through [`decode`], which checks the
//! context-free rules in the reference's order and rejects what the typed form cannot hold.

mod create;
mod decode;
mod digest;
mod text;

use std::collections::BTreeMap;
use std::fmt;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use sha2::{Digest as _, Sha512};

pub use create::{CreateError, Draft};
pub(crate) use decode::REQUIRED_METADATA_FIELDS;
pub use decode::{
    decode, decode_digested, decode_owned, decode_owned_digested, decode_stored_metadata,
    decode_str, validate_domain,
};
pub use digest::{Digest, DigestedMsg};
pub(crate) use text::MsgText;

use crate::canon;
use crate::ids::{AccountId, DataHash, DecodedLen, MsgId, PubKey, TangleId};

/// The prefix of the signed bytes.
pub const SIGNATURE_TAG: &str = ":msg-v4:";
/// The only msg version this crate speaks.
pub const VERSION: u64 = 4;
/// Domain prefix of account tangles (`account__<subdomain>`).
pub const ACCOUNT_DOMAIN_PREFIX: &str = "account__";
/// Largest canonical `data` and largest canonical `metadata`, in bytes. The protocol caps a
/// serialized msg at 65535 bytes; the reference's log cannot store bigger records.
pub const MSG_PART_BYTES_MAX: usize = 65_535;

/// Who a msg belongs to: an account, the account tangle itself (`"self"`), or nobody
/// (`"any"`, which skips the sigkey check).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Account {
    /// `"self"`: the msg is part of an account tangle.
    OwnTangle,
    /// `"any"`: any key may sign.
    Any,
    /// A regular account.
    Id(AccountId),
}

impl Account {
    /// The JSON string form.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::OwnTangle => "self",
            Self::Any => "any",
            Self::Id(id) => id.as_str(),
        }
    }

    /// The account ID, unless this is `"self"` or `"any"`.
    #[must_use]
    pub fn id(&self) -> Option<AccountId> {
        match self {
            Self::Id(id) => Some(*id),
            Self::OwnTangle | Self::Any => None,
        }
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Account({})", self.as_str())
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Account {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Longest base58 text of 64 bytes.
const SIGNATURE_TEXT_LEN_MAX: usize = 88;

/// A 64-byte Ed25519 signature, written in base58. The text is kept beside the bytes:
/// base58 is quadratic and msgs are serialized far more often than they are signed.
#[derive(Clone, Copy)]
pub struct Signature {
    bytes: [u8; 64],
    len: u8,
    text: [u8; SIGNATURE_TEXT_LEN_MAX],
}

impl Signature {
    /// A signature from its 64 bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 64]) -> Self {
        let mut text = [0u8; SIGNATURE_TEXT_LEN_MAX];
        let len = crate::base58::encode_into(&bytes, &mut text)
            .expect("invariant: 64 bytes fit in 88 base58 digits");
        Self {
            bytes,
            len: u8::try_from(len).expect("invariant: len <= 88"),
            text,
        }
    }

    /// A signature from base58 text that decodes to exactly 64 bytes.
    ///
    /// # Errors
    /// How long the text decodes (not 64 bytes), or why it does not decode.
    pub fn parse(input: &str) -> Result<Self, DecodedLen> {
        let bytes = crate::base58::decode(input).map_err(|error| match error {
            crate::base58::DecodeError::NotBase58 => DecodedLen::NotBase58,
            crate::base58::DecodeError::TooLong { .. } => DecodedLen::TooLong,
        })?;
        let len = bytes.len();
        let bytes: [u8; 64] = bytes.try_into().map_err(|_| DecodedLen::Bytes(len))?;
        // 64 bytes decode only from at most 88 digits, and base58 spelling is unique.
        let mut text = [0u8; SIGNATURE_TEXT_LEN_MAX];
        text.get_mut(..input.len())
            .ok_or(DecodedLen::Bytes(len))?
            .copy_from_slice(input.as_bytes());
        Ok(Self {
            bytes,
            len: u8::try_from(input.len()).map_err(|_| DecodedLen::Bytes(len))?,
            text,
        })
    }

    /// The 64 bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8; 64] {
        &self.bytes
    }

    /// The base58 text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        let text = self.text.get(..usize::from(self.len)).unwrap_or_default();
        std::str::from_utf8(text).expect("invariant: base58 digits are ASCII")
    }
}

impl PartialEq for Signature {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}
impl Eq for Signature {}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A msg's position in one tangle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TangleLink {
    /// Distance from the root (the root itself has no link; its depth is 0).
    pub depth: u64,
    /// Predecessors in the tangle, sorted by string order, without duplicates.
    pub prev: Vec<MsgId>,
}

/// The signed part of a msg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Hash of `data`; `None` only for moots.
    pub data_hash: Option<DataHash>,
    /// UTF-8 length of the canonical JSON of `data` (0 for moots).
    pub data_size: u64,
    /// Owner.
    pub account: Account,
    /// The account tangle's tips when the msg was made; `None` in account tangles and moots.
    pub account_tips: Option<Vec<MsgId>>,
    /// The tangles this msg belongs to, with its position in each.
    pub tangles: BTreeMap<TangleId, TangleLink>,
    /// The domain (feed type), `[a-zA-Z0-9_]{3,100}`.
    pub domain: String,
}

impl Metadata {
    /// Appends the canonical JSON of this metadata to `out`.
    ///
    /// Written by hand for speed; it must equal `canon::to_string` of the JSON form, which
    /// the tests check on every vector. Keys in UTF-16 order: account, accountTips, dataHash,
    /// dataSize, domain, tangles, v; and inside a tangle: depth, prev.
    pub fn write_canonical(&self, out: &mut String) {
        out.push_str("{\"account\":");
        canon::write_string(out, self.account.as_str());
        out.push_str(",\"accountTips\":");
        match &self.account_tips {
            None => out.push_str("null"),
            Some(tips) => write_id_array(out, tips),
        }
        out.push_str(",\"dataHash\":");
        match &self.data_hash {
            None => out.push_str("null"),
            Some(hash) => canon::write_string(out, hash.as_str()),
        }
        out.push_str(",\"dataSize\":");
        out.push_str(&self.data_size.to_string());
        out.push_str(",\"domain\":");
        canon::write_string(out, &self.domain);
        out.push_str(",\"tangles\":{");
        for (index, (tangle, link)) in self.tangles.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            canon::write_string(out, tangle.as_str());
            out.push_str(":{\"depth\":");
            out.push_str(&link.depth.to_string());
            out.push_str(",\"prev\":");
            write_id_array(out, &link.prev);
            out.push('}');
        }
        out.push_str("},\"v\":4}");
    }

    /// The canonical JSON of this metadata.
    #[must_use]
    pub fn canonical(&self) -> String {
        let mut out = String::with_capacity(256);
        self.write_canonical(&mut out);
        out
    }
}

fn write_id_array(out: &mut String, ids: &[MsgId]) {
    out.push('[');
    for (index, id) in ids.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        canon::write_string(out, id.as_str());
    }
    out.push(']');
}

impl Serialize for Metadata {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Field order as the reference emits it.
        let mut state = serializer.serialize_struct("Metadata", 7)?;
        state.serialize_field("dataHash", &self.data_hash)?;
        state.serialize_field("dataSize", &self.data_size)?;
        state.serialize_field("account", &self.account)?;
        state.serialize_field("accountTips", &self.account_tips)?;
        state.serialize_field("tangles", &self.tangles)?;
        state.serialize_field("domain", &self.domain)?;
        state.serialize_field("v", &VERSION)?;
        state.end()
    }
}

/// A Msg V4.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Msg {
    /// `null` (moots and erased msgs), a JSON object, or an encrypted string.
    pub data: Value,
    /// The signed metadata.
    pub metadata: Metadata,
    /// The signing key.
    pub sigkey: PubKey,
    /// Ed25519 signature by `sigkey` over [`Msg::signable`].
    pub sig: Signature,
}

impl<'de> Deserialize<'de> for Msg {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        decode(&value).map_err(serde::de::Error::custom)
    }
}

/// First 32 bytes of SHA-512, the hash of msg IDs and data hashes.
#[must_use]
pub fn hash32(bytes: &[u8]) -> [u8; 32] {
    let digest = Sha512::digest(bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.get(..32).unwrap_or(&[0u8; 32]));
    out
}

/// `(dataHash, dataSize)` of a data value.
#[must_use]
pub fn represent_data(data: &Value) -> (DataHash, u64) {
    represent_canonical_data(&canon::to_string(data))
}

/// [`represent_data`] of the data whose canonical JSON is `canonical`.
fn represent_canonical_data(canonical: &str) -> (DataHash, u64) {
    let size = u64::try_from(canonical.len()).unwrap_or(u64::MAX);
    (DataHash::from_bytes(&hash32(canonical.as_bytes())), size)
}

/// The msg ID of a metadata's canonical JSON.
#[must_use]
pub fn id_of_canonical(canonical_metadata: &str) -> MsgId {
    MsgId::from_bytes(&hash32(canonical_metadata.as_bytes()))
}

impl Msg {
    /// The msg ID.
    #[must_use]
    pub fn id(&self) -> MsgId {
        id_of_canonical(&self.metadata.canonical())
    }

    /// The bytes `sig` signs: `":msg-v4:" + canon(metadata)`.
    #[must_use]
    pub fn signable(&self) -> Vec<u8> {
        signable_of_canonical(&self.metadata.canonical())
    }

    /// Whether this is a moot (feed root): no data, no tangles, no account tips, and an
    /// account other than `"self"`.
    #[must_use]
    pub fn is_moot(&self) -> bool {
        let meta = &self.metadata;
        self.data.is_null()
            && meta.data_hash.is_none()
            && meta.data_size == 0
            && meta.account != Account::OwnTangle
            && meta.account_tips.is_none()
            && meta.tangles.is_empty()
    }

    /// Whether this msg roots its own tangle (it lists no tangles).
    #[must_use]
    pub fn is_root(&self) -> bool {
        self.metadata.tangles.is_empty()
    }

    /// Whether this is a feed msg: it names account tips and a regular account.
    #[must_use]
    pub fn is_feed_msg(&self) -> bool {
        self.metadata.account_tips.is_some() && self.metadata.account.id().is_some()
    }

    /// This msg with its data removed (what erasing keeps, and what trails carry).
    #[must_use]
    pub fn erased(&self) -> Self {
        Self {
            data: Value::Null,
            ..self.clone()
        }
    }

    /// Whether the data is present (not erased, not a moot).
    #[must_use]
    pub fn has_data(&self) -> bool {
        !self.data.is_null()
    }

    /// The msg as the reference serializes it (`JSON.stringify`, not canonical).
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("invariant: a Msg always serializes")
    }

    /// The msg as a JSON value.
    #[must_use]
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("invariant: a Msg always serializes")
    }

    /// Depth of this msg in `tangle`, 0 if it is that tangle's root.
    #[must_use]
    pub fn depth_in(&self, self_id: &MsgId, tangle: &TangleId) -> Option<u64> {
        if self_id == tangle {
            return Some(0);
        }
        self.metadata.tangles.get(tangle).map(|link| link.depth)
    }
}

/// `":msg-v4:" + canonical_metadata` as bytes.
#[must_use]
pub fn signable_of_canonical(canonical_metadata: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(SIGNATURE_TAG.len() + canonical_metadata.len());
    bytes.extend_from_slice(SIGNATURE_TAG.as_bytes());
    bytes.extend_from_slice(canonical_metadata.as_bytes());
    bytes
}

/// The feed ID of `(account, domain)`: the ID of the moot anyone would build for it.
///
/// Takes strings because the reference accepts any text here (`getMootID('dummy','dummy')`).
#[must_use]
pub fn moot_id(account: &str, domain: &str) -> MsgId {
    let mut canonical = String::with_capacity(160);
    canonical.push_str("{\"account\":");
    canon::write_string(&mut canonical, account);
    canonical.push_str(",\"accountTips\":null,\"dataHash\":null,\"dataSize\":0,\"domain\":");
    canon::write_string(&mut canonical, domain);
    canonical.push_str(",\"tangles\":{},\"v\":4}");
    id_of_canonical(&canonical)
}

/// The feed ID of an account's domain.
#[must_use]
pub fn feed_id(account: &AccountId, domain: &str) -> MsgId {
    moot_id(account.as_str(), domain)
}
