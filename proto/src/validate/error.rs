//! One error variant per validation rule.
//!
//! The Display text of each variant that mirrors a reference rule is the reference's own
//! message (pzp-db 1.0.4 `msg-v4/validation.js`, without its trailing `"\n" + JSON`), so that
//! `ppppp msg check` output can be compared with the JS peer's verdicts line by line. Rules we
//! added to close the reference's holes (see docs/divergences.md) say so in their docs.

use thiserror::Error;

/// Why a msg is invalid. Variants are grouped by the reference's validation steps
/// (protocol.md §6.1); the step number is in each group's heading.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ValidationError {
    // Before step 1: the input must be JSON at all.
    /// The text is not JSON (or nests deeper than the parser allows).
    #[error("invalid msg: not JSON ({reason})")]
    NotJson {
        /// The parser's message.
        reason: String,
    },

    // Step 1: shape.
    /// The msg is not a JSON object.
    #[error("invalid msg: not an object")]
    NotAnObject,
    /// The msg has no `data` key.
    #[error("invalid msg: must have data")]
    MissingData,
    /// `metadata` is missing or not an object.
    #[error("invalid msg: must have metadata")]
    MissingMetadata,
    /// A required metadata key is absent.
    #[error("invalid msg: must have metadata.{field}")]
    MissingMetadataField {
        /// The key: dataHash, dataSize, account, accountTips, tangles or domain.
        field: &'static str,
    },
    /// `metadata.v` is not 4.
    #[error("invalid msg: must have metadata.v=4")]
    WrongVersion,
    /// `sig` is not a string.
    #[error("invalid msg: must have sig")]
    MissingSig,

    // Step 2: sigkey.
    /// `sigkey` is not a string.
    #[error("invalid msg: sigkey \"{sigkey}\" should have been a string")]
    SigkeyNotString {
        /// JavaScript's rendering of the value.
        sigkey: String,
    },
    /// `sigkey` is not base58.
    #[error("invalid msg: sigkey \"{sigkey}\" should have been a base58 string")]
    SigkeyNotBase58 {
        /// The value.
        sigkey: String,
    },
    /// `sigkey` does not decode to 32 bytes.
    #[error("invalid msg: decoded \"sigkey\" should be 32 bytes but was {len}")]
    SigkeyWrongLength {
        /// Decoded length.
        len: usize,
    },
    /// `sigkey` is longer than base58 text is read (hardening: base58 costs the square of
    /// its length; the reference decodes it and reports the decoded length).
    #[error(
        "invalid msg: sigkey is {len} characters, longer than any 32-byte key (44) (hardening)"
    )]
    SigkeyTooLong {
        /// Its length in bytes.
        len: usize,
    },

    // Step 3: data.
    /// `data` is an array.
    #[error("invalid msg: data \"{data}\" must not be an array")]
    DataIsArray {
        /// JavaScript's rendering of the value.
        data: String,
    },
    /// `data` is a number or a boolean.
    #[error("invalid msg: data \"{data}\" must be an object or a string")]
    DataWrongType {
        /// JavaScript's rendering of the value.
        data: String,
    },

    // Step 5: dataSize and dataHash.
    /// `dataSize` is not a safe unsigned integer.
    #[error("invalid msg: dataSize {data_size} should have been an unsigned integer")]
    DataSizeNotUnsigned {
        /// JavaScript's rendering of the value.
        data_size: String,
    },
    /// `dataHash` does not match the hash of `data`.
    #[error("invalid msg: metadata.dataHash \"{actual}\" should have been \"{expected}\"")]
    DataHashMismatch {
        /// The hash in the metadata.
        actual: String,
        /// The hash of the data.
        expected: String,
    },
    /// `dataSize` does not match the canonical size of `data`.
    #[error("invalid msg: metadata.dataSize {actual} should have been \"{expected}\"")]
    DataSizeMismatch {
        /// The size in the metadata.
        actual: u64,
        /// The size of the data.
        expected: u64,
    },

    // Step 6: domain.
    /// `domain` is empty or not a string.
    #[error("invalid domain: \"{domain}\" ({type_of}) should have been a string")]
    DomainNotString {
        /// JavaScript's rendering of the value.
        domain: String,
        /// JavaScript's `typeof` of the value.
        type_of: &'static str,
    },
    /// `domain` is longer than 100 UTF-16 units.
    #[error("invalid domain: \"{domain}\" is 100+ characters long")]
    DomainTooLong {
        /// The domain.
        domain: String,
    },
    /// `domain` is shorter than 3 UTF-16 units.
    #[error("invalid domain: \"{domain}\" is shorter than 3 characters")]
    DomainTooShort {
        /// The domain.
        domain: String,
    },
    /// `domain` has characters outside `[a-zA-Z0-9_]`.
    #[error("invalid domain: \"{domain}\" contains characters other than a-z, A-Z, 0-9, or _")]
    DomainBadCharacters {
        /// The domain.
        domain: String,
    },

    // Step 7: sigkey and account against the tangle type.
    /// `account` is `"self"` in a feed or weave tangle.
    #[error("invalid msg: account \"self\" cannot be \"self\" in a feed tangle")]
    AccountSelfInFeed,
    /// `sigkey` is not one of the account's keys at `accountTips`.
    #[error(
        "invalid msg: sigkey \"{sigkey}\" should have been one of \"{allowed}\" from the account \"{account}\""
    )]
    SigkeyNotInAccount {
        /// The signer.
        sigkey: String,
        /// The account's keys, comma-joined in the order they were added.
        allowed: String,
        /// The account.
        account: String,
    },
    /// `account` is not `"self"` in an account tangle.
    #[error("invalid msg: account \"{account}\" should have been \"self\" in an account tangle")]
    AccountNotSelfInAccountTangle {
        /// The account field.
        account: String,
    },
    /// `accountTips` is not null in an account tangle.
    #[error(
        "invalid msg: accountTips \"{account_tips}\" should have been null in an account tangle"
    )]
    AccountTipsInAccountTangle {
        /// The tips, comma-joined.
        account_tips: String,
    },

    // Step 8: position in the tangle.
    /// The tangle's root lists itself in `tangles`.
    #[error("invalid msg: tangle root \"{tangle}\" must not have self tangle data")]
    RootHasSelfTangle {
        /// The tangle (= this msg's ID).
        tangle: String,
    },
    /// The msg has no entry for the tangle it is validated against.
    #[error("invalid msg: must have metadata.tangles.{tangle}")]
    MissingTangle {
        /// The tangle ID.
        tangle: String,
    },
    /// `prev` is not an array.
    #[error("invalid msg: prev \"{prev}\" should have been an array")]
    PrevNotArray {
        /// JavaScript's rendering of the value.
        prev: String,
    },
    /// `depth` is not a positive safe integer.
    #[error("invalid msg: depth \"{depth}\" should have been a positive integer")]
    DepthNotPositiveInteger {
        /// JavaScript's rendering of the value.
        depth: String,
    },
    /// A feed msg's domain differs from the moot's.
    #[error("invalid msg: domain \"{domain}\" should have been feed domain \"{feed_domain}\"")]
    FeedDomainMismatch {
        /// The msg's domain.
        domain: String,
        /// The moot's domain.
        feed_domain: String,
    },
    /// A feed msg's account differs from the moot's.
    #[error("invalid msg: account \"{account}\" should have been feed account \"{feed_account}\"")]
    FeedAccountMismatch {
        /// The msg's account.
        account: String,
        /// The moot's account.
        feed_account: String,
    },
    /// A `prev` item is not a string.
    #[error("invalid msg: prev item \"{item}\" should have been a string")]
    PrevItemNotString {
        /// JavaScript's rendering of the value.
        item: String,
    },
    /// A `prev` item is a `pzp:` (or `ppppp:`) URI.
    #[error("invalid msg: prev item \"{item}\" is a URI, but should have been a hash")]
    PrevItemIsUri {
        /// The item.
        item: String,
    },
    /// `prev` repeats an ID.
    #[error("invalid msg: prev \"{prev}\" contains duplicates")]
    PrevDuplicates {
        /// The prev list, comma-joined.
        prev: String,
    },
    /// `prev` is not sorted by UTF-16 code units.
    #[error("invalid msg: prev \"{prev}\" should have been alphabetically sorted")]
    PrevUnsorted {
        /// The prev list, comma-joined.
        prev: String,
    },
    /// A known `prev` does not have a lower depth.
    #[error(
        "invalid msg: depth of prev \"{prev}\" should have been lower than this message's depth"
    )]
    PrevDepthNotLower {
        /// The offending prev.
        prev: String,
    },
    /// No `prev` is known locally.
    #[error("invalid msg: all prev are locally unknown")]
    AllPrevUnknown,
    /// Every `prev` is known, but `depth` is not the largest prev depth plus one.
    #[error("invalid msg: depth must be the largest prev depth plus one")]
    DepthNotMaxPrevPlusOne,

    // Step 9: signature.
    /// `sig` is not base58.
    #[error("invalid msg: sig \"{sig}\" should have been a base58 string")]
    SigNotBase58 {
        /// The value.
        sig: String,
    },
    /// `sig` does not decode to 64 bytes.
    #[error("invalid msg: sig should be 64 bytes but was {len}")]
    SigWrongLength {
        /// Decoded length.
        len: usize,
    },
    /// The signature does not verify.
    #[error("invalid msg: sig is invalid")]
    SigInvalid,
    /// `sig` is longer than base58 text is read (hardening: base58 costs the square of its
    /// length; the reference decodes it and reports the decoded length).
    #[error(
        "invalid msg: sig is {len} characters, longer than any 64-byte signature (88) (hardening)"
    )]
    SigTooLong {
        /// Its length in bytes.
        len: usize,
    },

    // Context the reference reports outside `validate`.
    /// The tangle's root msg is not known locally (pzp-db: "Missing tangle type").
    #[error("Missing tangle type when validating msg: tangle \"{tangle}\" has no known root")]
    TangleRootUnknown {
        /// The tangle ID.
        tangle: String,
    },

    // Hardening: rules the reference does not have (docs/divergences.md).
    /// A metadata key other than the seven V4 keys is present (it would change the ID in ways
    /// no reference peer produces).
    #[error("invalid msg: metadata.{field} is not a Msg V4 field (hardening)")]
    UnknownMetadataField {
        /// The key.
        field: String,
    },
    /// A tangle entry has a key other than `depth` and `prev`.
    #[error("invalid msg: metadata.tangles.{tangle}.{field} is not a tangle field (hardening)")]
    UnknownTangleField {
        /// The tangle ID.
        tangle: String,
        /// The key.
        field: String,
    },
    /// A metadata value has the wrong type (`dataHash` not null or a 32-byte hash,
    /// `account` not an ID, `"self"` or `"any"`, `accountTips` not null or an array of IDs,
    /// `tangles` not an object keyed by IDs).
    #[error("invalid msg: metadata.{field} {reason} (hardening)")]
    MalformedMetadataField {
        /// The key.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A `prev` item is a string but not a 32-byte base58 msg ID.
    #[error("invalid msg: prev item \"{item}\" should have been a msg ID (hardening)")]
    PrevItemNotMsgId {
        /// The item.
        item: String,
    },
    /// The msg is larger than the protocol's 65535-byte limit (protospec; the reference's log
    /// cannot store it either).
    #[error("invalid msg: {part} is {len} bytes, more than {max} (hardening)")]
    TooLarge {
        /// Which part: data or metadata.
        part: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
}
