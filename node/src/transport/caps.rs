//! The network key ("caps", protocol.md §11.1).
//!
//! SHSE authenticates every handshake message with HMACs keyed by a 32-byte
//! network key, so peers with different keys cannot even complete the first
//! message. PZP's key is the base58 string exported by `pzp-caps`; it is not
//! SSB's. Tests and private networks may use another one.

use core::fmt;

use super::{KEY_LEN, key_newtype};

/// The PZP network key as base58 (`pzp-caps` 1.0.0).
pub const PZP_CAPS_BASE58: &str = "p2pLq5VZKvNWaaafMUEcxH9BKm2WjNBCxsc8TRQV5gS";

/// The PZP network key as bytes (`0c0c5a06…444f`, protocol.md §11.1).
pub const PZP_CAPS: [u8; KEY_LEN] = [
    0x0c, 0x0c, 0x5a, 0x06, 0x0c, 0xe9, 0xc6, 0xf3, 0xb4, 0x16, 0xe7, 0xd4, 0xe8, 0x99, 0xe5, 0xa1,
    0x38, 0x99, 0x08, 0x53, 0xa2, 0x79, 0xa8, 0x0a, 0xe4, 0x4a, 0x22, 0xac, 0x25, 0x88, 0x44, 0x4f,
];

key_newtype! {
    /// A 32-byte SHSE network key (the "app key" `K` of the handshake); in JS configs its
    /// base58 form is `config.shse.caps`.
    NetworkKey
}

impl NetworkKey {
    /// The key every PZP peer uses.
    pub const PZP: NetworkKey = NetworkKey(PZP_CAPS);
}

impl Default for NetworkKey {
    fn default() -> Self {
        Self::PZP
    }
}

impl fmt::Debug for NetworkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NetworkKey({})", self.to_base58())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::KeyParseError;

    #[test]
    fn pzp_caps_base58_and_bytes_agree() {
        assert_eq!(
            NetworkKey::from_base58(PZP_CAPS_BASE58),
            Ok(NetworkKey::PZP)
        );
        assert_eq!(NetworkKey::PZP.to_base58(), PZP_CAPS_BASE58);
        assert_eq!(NetworkKey::default(), NetworkKey::PZP);
    }

    #[test]
    fn wrong_length_is_rejected() {
        assert!(matches!(
            NetworkKey::from_base58("1111"),
            Err(KeyParseError::WrongLength { actual: 4, .. })
        ));
        assert!(matches!(
            NetworkKey::from_base58("0OIl"),
            Err(KeyParseError::NotBase58(_))
        ));
    }
}
