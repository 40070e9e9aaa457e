//! Peer addresses in both notations PZP uses (protocol.md §12.2, pzp-net 1.0.1
//! `lib/multiaddr.js`, secret-handshake-ext's multiserver plugin):
//!
//! | multiaddr | multiserver |
//! |---|---|
//! | `/ip4/1.2.3.4/tcp/8008/shse/PK.TOKEN` | `net:1.2.3.4:8008~shse:PK:TOKEN` |
//! | `/dns/example.com/tcp/8008/shse/PK` | `net:example.com:8008~shse:PK` |
//! | `/ip4/1.2.3.4/ws/8008/shse/PK` | `ws:1.2.3.4:8008~shse:PK` |
//! | `/tunnel/HUB.TARGET/shse/TARGET` | `tunnel:HUB:TARGET~shse:TARGET` |
//!
//! Keys and tokens are base58 of 32 bytes, checked here as the shse plugin
//! checks them. One deliberate difference: pzp-net's `fromMs` labels IPv6 hosts
//! `dns` (it tests the literal string `'ipv6'`); we write `/ip6/`.

use core::fmt;
use core::str::FromStr;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{KeyParseError, PublicKey, Token};

/// A host in an address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Host {
    /// An IPv4 address (`/ip4/`).
    Ip4(Ipv4Addr),
    /// An IPv6 address (`/ip6/`).
    Ip6(Ipv6Addr),
    /// A DNS name (`/dns/`).
    Dns(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip4(ip) => ip.fmt(f),
            Host::Ip6(ip) => ip.fmt(f),
            Host::Dns(name) => f.write_str(name),
        }
    }
}

impl Host {
    /// Classifies host text as a multiserver address holds it.
    fn parse(text: &str) -> Result<Self, AddressError> {
        if let Ok(ip) = text.parse::<Ipv4Addr>() {
            return Ok(Host::Ip4(ip));
        }
        if let Ok(ip) = text.parse::<Ipv6Addr>() {
            return Ok(Host::Ip6(ip));
        }
        Self::dns(text)
    }

    fn dns(text: &str) -> Result<Self, AddressError> {
        let valid = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
        if valid {
            Ok(Host::Dns(text.to_owned()))
        } else {
            Err(AddressError::InvalidHost(text.to_owned()))
        }
    }

    fn multiaddr_label(&self) -> &'static str {
        match self {
            Host::Ip4(_) => "ip4",
            Host::Ip6(_) => "ip6",
            Host::Dns(_) => "dns",
        }
    }
}

/// How to reach the peer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transport {
    /// TCP (multiserver `net`, multiaddr `tcp`).
    Net {
        /// Host.
        host: Host,
        /// TCP port.
        port: u16,
    },
    /// WebSocket (multiserver `ws`, multiaddr `ws`).
    Ws {
        /// Host.
        host: Host,
        /// Port.
        port: u16,
    },
    /// A tunnel through a hub to a target peer.
    Tunnel {
        /// The hub relaying the connection.
        hub: PublicKey,
        /// The peer at the other end.
        target: PublicKey,
    },
}

/// The `shse` transform: who must answer, and the optional token to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Shse {
    /// The peer's public key.
    pub key: PublicKey,
    /// The `extra` token for the hello (a hub invite, for instance).
    pub token: Option<Token>,
}

/// A peer address: a transport, usually followed by the shse transform.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address {
    /// How to reach the peer.
    pub transport: Transport,
    /// The handshake to run on top (absent only in bare transport addresses).
    pub shse: Option<Shse>,
}

/// Why an address does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// A multiaddr must start with `/`.
    #[error("a multiaddr starts with '/': {0:?}")]
    NotMultiaddr(String),
    /// Several `;`-separated multiserver addresses: parse them one by one.
    #[error("several multiserver addresses in one string: {0:?}")]
    MultipleAddresses(String),
    /// The transport is not `net`/`tcp`, `ws` or `tunnel`.
    #[error("unknown transport {0:?}")]
    UnknownTransport(String),
    /// The transform is not `shse`.
    #[error("unknown transform {0:?}")]
    UnknownTransform(String),
    /// A required part is missing.
    #[error("address {address:?} lacks its {part}")]
    Missing {
        /// The address text.
        address: String,
        /// What is missing.
        part: &'static str,
    },
    /// Parts after the end of a known form.
    #[error("unexpected trailing parts in {0:?}")]
    Trailing(String),
    /// The port is not a number in 0..=65535.
    #[error("invalid port {0:?}")]
    InvalidPort(String),
    /// The host is not an IP address or a DNS name (or not of the labelled kind).
    #[error("invalid host {0:?}")]
    InvalidHost(String),
    /// A key or token is not base58 of 32 bytes.
    #[error("invalid {part}: {source}")]
    InvalidKey {
        /// Which key.
        part: &'static str,
        /// Why.
        source: KeyParseError,
    },
}

fn key(text: &str, part: &'static str) -> Result<PublicKey, AddressError> {
    PublicKey::from_base58(text).map_err(|source| AddressError::InvalidKey { part, source })
}

fn token(text: &str) -> Result<Token, AddressError> {
    Token::from_base58(text).map_err(|source| AddressError::InvalidKey {
        part: "token",
        source,
    })
}

fn port(text: &str) -> Result<u16, AddressError> {
    // Digits only: `u16::from_str` would also take a leading '+'.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddressError::InvalidPort(text.to_owned()));
    }
    text.parse()
        .map_err(|_| AddressError::InvalidPort(text.to_owned()))
}

impl Address {
    /// Parses a multiserver address (`net:HOST:PORT~shse:PK[:TOKEN]`, …).
    pub fn parse_multiserver(text: &str) -> Result<Self, AddressError> {
        if text.contains(';') {
            return Err(AddressError::MultipleAddresses(text.to_owned()));
        }
        let missing = |part| AddressError::Missing {
            address: text.to_owned(),
            part,
        };
        let (transport_text, transform_text) = match text.split_once('~') {
            Some((transport, transform)) => (transport, Some(transform)),
            None => (text, None),
        };
        let (label, rest) = transport_text
            .split_once(':')
            .ok_or_else(|| missing("transport"))?;
        let transport = match label {
            "net" | "ws" => {
                let (host, port_text) = rest.rsplit_once(':').ok_or_else(|| missing("port"))?;
                let host = Host::parse(host)?;
                let port = port(port_text)?;
                if label == "net" {
                    Transport::Net { host, port }
                } else {
                    Transport::Ws { host, port }
                }
            }
            "tunnel" => {
                let (hub, target) = rest
                    .split_once(':')
                    .ok_or_else(|| missing("tunnel target"))?;
                if target.contains(':') {
                    return Err(AddressError::Trailing(text.to_owned()));
                }
                Transport::Tunnel {
                    hub: key(hub, "hub key")?,
                    target: key(target, "target key")?,
                }
            }
            other => return Err(AddressError::UnknownTransport(other.to_owned())),
        };
        let shse = match transform_text {
            None => None,
            Some(transform) => {
                let mut parts = transform.split(':');
                let name = parts.next().unwrap_or_default();
                if name != "shse" {
                    return Err(AddressError::UnknownTransform(name.to_owned()));
                }
                let pubkey = key(parts.next().ok_or_else(|| missing("shse key"))?, "shse key")?;
                let token = parts.next().map(token).transpose()?;
                if parts.next().is_some() {
                    return Err(AddressError::Trailing(text.to_owned()));
                }
                Some(Shse { key: pubkey, token })
            }
        };
        Ok(Self { transport, shse })
    }

    /// Parses a multiaddr (`/ip4/HOST/tcp/PORT/shse/PK.TOKEN`, …).
    pub fn parse_multiaddr(text: &str) -> Result<Self, AddressError> {
        let rest = text
            .strip_prefix('/')
            .ok_or_else(|| AddressError::NotMultiaddr(text.to_owned()))?;
        let missing = |part| AddressError::Missing {
            address: text.to_owned(),
            part,
        };
        let mut parts = rest.split('/');
        let label = parts.next().unwrap_or_default();
        let transport = if label == "tunnel" {
            let keys = parts.next().ok_or_else(|| missing("tunnel keys"))?;
            let (hub, target) = keys
                .split_once('.')
                .ok_or_else(|| missing("tunnel target"))?;
            Transport::Tunnel {
                hub: key(hub, "hub key")?,
                target: key(target, "target key")?,
            }
        } else {
            let host_text = parts.next().ok_or_else(|| missing("host"))?;
            let host = match label {
                "ip4" => Host::Ip4(
                    host_text
                        .parse()
                        .map_err(|_| AddressError::InvalidHost(host_text.to_owned()))?,
                ),
                "ip6" => Host::Ip6(
                    host_text
                        .parse()
                        .map_err(|_| AddressError::InvalidHost(host_text.to_owned()))?,
                ),
                "dns" => Host::dns(host_text)?,
                other => return Err(AddressError::UnknownTransport(other.to_owned())),
            };
            let kind = parts.next().ok_or_else(|| missing("transport"))?;
            let port = port(parts.next().ok_or_else(|| missing("port"))?)?;
            match kind {
                "tcp" => Transport::Net { host, port },
                "ws" => Transport::Ws { host, port },
                other => return Err(AddressError::UnknownTransport(other.to_owned())),
            }
        };
        let shse = match parts.next() {
            None => None,
            Some("shse") => {
                let credentials = parts.next().ok_or_else(|| missing("shse key"))?;
                let (pubkey, token) = match credentials.split_once('.') {
                    Some((pubkey, token_text)) => (pubkey, Some(token(token_text)?)),
                    None => (credentials, None),
                };
                Some(Shse {
                    key: key(pubkey, "shse key")?,
                    token,
                })
            }
            Some(other) => return Err(AddressError::UnknownTransform(other.to_owned())),
        };
        if parts.next().is_some() {
            return Err(AddressError::Trailing(text.to_owned()));
        }
        Ok(Self { transport, shse })
    }

    /// The multiserver form.
    pub fn to_multiserver(&self) -> String {
        let mut out = match &self.transport {
            Transport::Net { host, port } => format!("net:{host}:{port}"),
            Transport::Ws { host, port } => format!("ws:{host}:{port}"),
            Transport::Tunnel { hub, target } => format!("tunnel:{hub}:{target}"),
        };
        if let Some(shse) = &self.shse {
            out.push_str(&format!("~shse:{}", shse.key));
            if let Some(token) = &shse.token {
                out.push_str(&format!(":{token}"));
            }
        }
        out
    }

    /// The multiaddr form.
    pub fn to_multiaddr(&self) -> String {
        let mut out = match &self.transport {
            Transport::Net { host, port } => {
                format!("/{}/{host}/tcp/{port}", host.multiaddr_label())
            }
            Transport::Ws { host, port } => format!("/{}/{host}/ws/{port}", host.multiaddr_label()),
            Transport::Tunnel { hub, target } => format!("/tunnel/{hub}.{target}"),
        };
        if let Some(shse) = &self.shse {
            out.push_str(&format!("/shse/{}", shse.key));
            if let Some(token) = &shse.token {
                out.push_str(&format!(".{token}"));
            }
        }
        out
    }
}

impl FromStr for Address {
    type Err = AddressError;

    /// Either notation: a leading `/` means multiaddr.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.starts_with('/') {
            Self::parse_multiaddr(text)
        } else {
            Self::parse_multiserver(text)
        }
    }
}

impl fmt::Display for Address {
    /// The multiaddr form (pzp-net's primary notation).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_multiaddr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // alice and bob from vectors/keypairs.json.
    const PK: &str = "AKnL4NNf3DGWZJS6cPknBuEGnVsV4A4m5tgebLHaRSZ9";
    const HUB: &str = "9hSR6S7WPtxmTojgo6GG3k4yDPecgJY292j7xrsUGWBu";
    const TOKEN: &str = "p2pLq5VZKvNWaaafMUEcxH9BKm2WjNBCxsc8TRQV5gS";

    #[test]
    fn the_protocol_table_converts_both_ways() {
        let table = [
            (
                format!("/ip4/1.2.3.4/tcp/8008/shse/{PK}.{TOKEN}"),
                format!("net:1.2.3.4:8008~shse:{PK}:{TOKEN}"),
            ),
            (
                format!("/dns/example.com/tcp/8008/shse/{PK}"),
                format!("net:example.com:8008~shse:{PK}"),
            ),
            (
                format!("/tunnel/{HUB}.{PK}/shse/{PK}"),
                format!("tunnel:{HUB}:{PK}~shse:{PK}"),
            ),
            (
                format!("/ip4/127.0.0.1/ws/80/shse/{PK}"),
                format!("ws:127.0.0.1:80~shse:{PK}"),
            ),
            (
                format!("/ip6/::1/tcp/8008/shse/{PK}"),
                format!("net:::1:8008~shse:{PK}"),
            ),
            (
                "/ip4/10.0.0.1/tcp/1".to_owned(),
                "net:10.0.0.1:1".to_owned(),
            ),
        ];
        for (multiaddr, multiserver) in table {
            let from_multiaddr = Address::parse_multiaddr(&multiaddr).expect(&multiaddr);
            let from_multiserver = Address::parse_multiserver(&multiserver).expect(&multiserver);
            assert_eq!(from_multiaddr, from_multiserver);
            assert_eq!(from_multiaddr.to_multiserver(), multiserver);
            assert_eq!(from_multiserver.to_multiaddr(), multiaddr);
            assert_eq!(multiaddr.parse::<Address>(), Ok(from_multiaddr.clone()));
            assert_eq!(multiserver.parse::<Address>(), Ok(from_multiaddr));
        }
        let parsed: Address = format!("net:1.2.3.4:8008~shse:{PK}:{TOKEN}")
            .parse()
            .expect("parses");
        assert_eq!(
            parsed,
            Address {
                transport: Transport::Net {
                    host: Host::Ip4(Ipv4Addr::new(1, 2, 3, 4)),
                    port: 8008
                },
                shse: Some(Shse {
                    key: PublicKey::from_base58(PK).expect("key"),
                    token: Some(Token::from_base58(TOKEN).expect("token")),
                }),
            }
        );
    }

    #[test]
    fn malformed_addresses_get_typed_errors() {
        use AddressError as E;
        type Check = fn(&AddressError) -> bool;
        let cases: Vec<(String, Check)> = vec![
            (
                "/ip4/1.2.3.4/udp/1".into(),
                |e| matches!(e, E::UnknownTransport(t) if t == "udp"),
            ),
            ("/ip4/example.com/tcp/1".into(), |e| {
                matches!(e, E::InvalidHost(_))
            }),
            ("/ip4/1.2.3.4/tcp/99999".into(), |e| {
                matches!(e, E::InvalidPort(_))
            }),
            ("/ip4/1.2.3.4/tcp/+80".into(), |e| {
                matches!(e, E::InvalidPort(_))
            }),
            ("/ip4/1.2.3.4/tcp".into(), |e| {
                matches!(e, E::Missing { part: "port", .. })
            }),
            (format!("/ip4/1.2.3.4/tcp/1/noise/{PK}"), |e| {
                matches!(e, E::UnknownTransform(_))
            }),
            (format!("/ip4/1.2.3.4/tcp/1/shse/{PK}/extra"), |e| {
                matches!(e, E::Trailing(_))
            }),
            ("/ip4/1.2.3.4/tcp/1/shse/abc".into(), |e| {
                matches!(
                    e,
                    E::InvalidKey {
                        part: "shse key",
                        ..
                    }
                )
            }),
            (format!("/ip4/1.2.3.4/tcp/1/shse/{PK}.0OIl"), |e| {
                matches!(e, E::InvalidKey { part: "token", .. })
            }),
            (format!("/tunnel/{HUB}/shse/{PK}"), |e| {
                matches!(
                    e,
                    E::Missing {
                        part: "tunnel target",
                        ..
                    }
                )
            }),
            (format!("udp:1.2.3.4:1~shse:{PK}"), |e| {
                matches!(e, E::UnknownTransport(_))
            }),
            (format!("net:1.2.3.4~shse:{PK}"), |e| {
                matches!(e, E::InvalidHost(_) | E::Missing { .. })
            }),
            (format!("net:1.2.3.4:1~shs:{PK}"), |e| {
                matches!(e, E::UnknownTransform(_))
            }),
            (format!("net:1.2.3.4:1~shse:{PK}:{TOKEN}:x"), |e| {
                matches!(e, E::Trailing(_))
            }),
            (
                format!("net:1.2.3.4:1~shse:{PK};net:1.2.3.5:1~shse:{PK}"),
                |e| matches!(e, E::MultipleAddresses(_)),
            ),
            (format!("net:bad host:1~shse:{PK}"), |e| {
                matches!(e, E::InvalidHost(_))
            }),
            ("net:1.2.3.4:1~shse".into(), |e| {
                matches!(
                    e,
                    E::Missing {
                        part: "shse key",
                        ..
                    }
                )
            }),
        ];
        assert!(matches!(
            Address::parse_multiaddr("ip4/1.2.3.4/tcp/1"),
            Err(E::NotMultiaddr(_))
        ));
        for (text, check) in cases {
            let error = text.parse::<Address>().expect_err(&text);
            assert!(check(&error), "{text}: {error:?}");
        }
    }
}
