//! Invite URIs, byte for byte as pzp-invite 1.0.0 writes and reads them.
//!
//! ```text
//! pzp://invite/join/HOSTFORMAT/HOST/tcp/PORT/shse/HUBKEY.HUBTOKEN/follow/ACCOUNT/promise.follow/pubkey.ISSUER/TOKEN
//! pzp://invite/join/HOSTFORMAT/HOST/tcp/PORT/shse/HUBKEY.HUBTOKEN/tunnel-connect/HUBKEY/ISSUER/promise.account-add/pubkey.ISSUER/TOKEN
//! ```
//!
//! A URI is a sequence of commands, each a name and a fixed number of `/`-separated
//! arguments: `join` (6: a hub multiaddr whose credentials may carry the hub's membership
//! token), `follow` (1: an account ID), `tunnel-connect` (2: hub key, target key),
//! `promise.follow` and `promise.account-add` (2: `pubkey.ISSUER`, the promise token).
//! pzp-invite also wraps the URI in a web link, `https://HOST/invite#<percent-encoded URI>`
//! (`http` when the hub's host is an IP address), which [`parse`] accepts too.
//!
//! Where pzp-invite checks little (its TODOs: base58 keys and tokens), we check more: keys
//! and tokens must be base58 of 32 bytes, ports digits only. Everything pzp-invite writes
//! passes; we refuse only URIs whose commands could not be carried out anyway.

use core::fmt;

use crate::transport::addr::{Address, AddressError, Transport};
use crate::transport::{KeyParseError, PublicKey, Token};

/// The scheme and host every invite URI starts with.
pub const URI_PREFIX: &str = "pzp://invite";

/// Longest invite URI (or web link) we parse: commands have fixed sizes, so a real invite is a
/// few hundred bytes; this only stops a hostile paste from costing more.
pub const INVITE_TEXT_BYTES_MAX: usize = 16 * 1024;

/// Most commands in one URI.
pub const INVITE_COMMANDS_MAX: usize = 32;

/// Who issued a promise. pzp-invite 1.0.0 writes and accepts only `pubkey` issuers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Issuer(pub PublicKey);

/// One command of an invite URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Connect to this hub (a `net` address with `shse`), presenting its token if any.
    Join(Address),
    /// Follow this account (its ID, as text: pzp-invite does not check it).
    Follow(String),
    /// Connect to `target` through a tunnel of `hub`.
    TunnelConnect {
        /// The hub's key.
        hub: PublicKey,
        /// The peer to reach.
        target: PublicKey,
    },
    /// `issuer` promised to follow back whoever redeems `token` (`promise.follow`).
    PromiseFollow {
        /// The peer holding the promise.
        issuer: Issuer,
        /// The promise token.
        token: Token,
    },
    /// `issuer` promised to add the redeemer's key to its account (`promise.account-add`).
    PromiseAccountAdd {
        /// The peer holding the promise.
        issuer: Issuer,
        /// The promise token.
        token: Token,
    },
}

/// Why an invite does not parse; the texts follow pzp-invite's where it has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InviteError {
    /// Longer than [`INVITE_TEXT_BYTES_MAX`].
    #[error("invite is {0} bytes long, more than {INVITE_TEXT_BYTES_MAX}")]
    TooLong(usize),
    /// Not `pzp://invite/...` (nor a web link holding one).
    #[error("Invalid URI {0:?}: expected \"pzp://invite/...\"")]
    NotInvite(String),
    /// A percent escape in a web link is broken.
    #[error("invalid percent-encoding in invite link {0:?}")]
    BadEscape(String),
    /// No commands at all.
    #[error("invite {0:?} has no commands")]
    Empty(String),
    /// More than [`INVITE_COMMANDS_MAX`] commands.
    #[error("invite has more than {INVITE_COMMANDS_MAX} commands")]
    TooManyCommands,
    /// A command name pzp-invite does not know.
    #[error("Unknown command: {0:?}")]
    UnknownCommand(String),
    /// A command lacks arguments.
    #[error("Invalid URI {uri:?} for invite.parse, missing some {command:?} arguments")]
    MissingArguments {
        /// The URI.
        uri: String,
        /// The command.
        command: &'static str,
    },
    /// A `join` address is not a `tcp` + `shse` multiaddr.
    #[error("invalid \"join\" address {address:?}: {reason}")]
    BadJoin {
        /// The multiaddr as written.
        address: String,
        /// Why.
        reason: String,
    },
    /// An issuer is not `pubkey.KEY`.
    #[error("invalid promise issuer {0:?}: expected \"pubkey.KEY\"")]
    BadIssuer(String),
    /// A key or token is not base58 of 32 bytes.
    #[error("invalid {part} in invite: {source}")]
    BadKey {
        /// Which one.
        part: &'static str,
        /// Why.
        source: KeyParseError,
    },
}

fn key(text: &str, part: &'static str) -> Result<PublicKey, InviteError> {
    PublicKey::from_base58(text).map_err(|source| InviteError::BadKey { part, source })
}

fn token(text: &str) -> Result<Token, InviteError> {
    Token::from_base58(text).map_err(|source| InviteError::BadKey {
        part: "promise token",
        source,
    })
}

fn issuer(text: &str) -> Result<Issuer, InviteError> {
    match text.split_once('.') {
        Some(("pubkey", key_text)) => Ok(Issuer(key(key_text, "issuer key")?)),
        _ => Err(InviteError::BadIssuer(text.to_owned())),
    }
}

fn join(address_text: String) -> Result<Address, InviteError> {
    let bad = |reason: String| InviteError::BadJoin {
        address: address_text.clone(),
        reason,
    };
    let address = Address::parse_multiaddr(&address_text)
        .map_err(|error: AddressError| bad(error.to_string()))?;
    if !matches!(address.transport, Transport::Net { .. }) {
        return Err(bad("a hub is joined over tcp".to_owned()));
    }
    if address.shse.is_none() {
        return Err(bad("no shse credentials".to_owned()));
    }
    Ok(address)
}

/// Takes `count` arguments of `command` from `pieces`.
fn arguments<'a>(
    pieces: &mut core::slice::Iter<'_, &'a str>,
    count: usize,
    command: &'static str,
    uri: &str,
) -> Result<Vec<&'a str>, InviteError> {
    let taken: Vec<&str> = pieces.by_ref().take(count).copied().collect();
    if taken.len() < count || taken.iter().any(|piece| piece.is_empty()) {
        return Err(InviteError::MissingArguments {
            uri: uri.to_owned(),
            command,
        });
    }
    Ok(taken)
}

fn command(
    name: &str,
    pieces: &mut core::slice::Iter<'_, &str>,
    uri: &str,
) -> Result<Command, InviteError> {
    Ok(match name {
        "join" => {
            let args = arguments(pieces, 6, "join", uri)?;
            Command::Join(join(format!("/{}", args.join("/")))?)
        }
        "follow" => Command::Follow(arguments(pieces, 1, "follow", uri)?.concat()),
        "tunnel-connect" => {
            let args = arguments(pieces, 2, "tunnel-connect", uri)?;
            Command::TunnelConnect {
                hub: key(args.first().copied().unwrap_or_default(), "hub key")?,
                target: key(args.get(1).copied().unwrap_or_default(), "target key")?,
            }
        }
        "promise.follow" | "promise.account-add" => {
            let args = arguments(pieces, 2, "promise", uri)?;
            let issuer = issuer(args.first().copied().unwrap_or_default())?;
            let token = token(args.get(1).copied().unwrap_or_default())?;
            if name == "promise.follow" {
                Command::PromiseFollow { issuer, token }
            } else {
                Command::PromiseAccountAdd { issuer, token }
            }
        }
        other => return Err(InviteError::UnknownCommand(other.to_owned())),
    })
}

/// Parses an invite URI, or a pzp-invite web link (`https://HOST/invite#<encoded URI>`).
///
/// # Errors
/// [`InviteError`] says which part is wrong.
pub fn parse(text: &str) -> Result<Vec<Command>, InviteError> {
    if text.len() > INVITE_TEXT_BYTES_MAX {
        return Err(InviteError::TooLong(text.len()));
    }
    let text = text.trim();
    let uri = match text.split_once("/invite#") {
        Some((web, encoded)) if web.starts_with("http://") || web.starts_with("https://") => {
            percent_decode(encoded).ok_or_else(|| InviteError::BadEscape(text.to_owned()))?
        }
        _ => text.to_owned(),
    };
    // URL parsing lowercases the scheme and the host, as `new URL` does.
    let path = match uri.get(..URI_PREFIX.len()) {
        Some(prefix) if prefix.eq_ignore_ascii_case(URI_PREFIX) => {
            uri.get(URI_PREFIX.len()..).unwrap_or_default()
        }
        _ => return Err(InviteError::NotInvite(uri.clone())),
    };
    if !(path.is_empty() || path.starts_with('/')) || path.contains(['?', '#']) {
        return Err(InviteError::NotInvite(uri.clone()));
    }
    let pieces: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if pieces.iter().all(|piece| piece.is_empty()) {
        return Err(InviteError::Empty(uri.clone()));
    }
    let mut iter = pieces.iter();
    let mut commands = Vec::new();
    while let Some(name) = iter.next() {
        if commands.len() == INVITE_COMMANDS_MAX {
            return Err(InviteError::TooManyCommands);
        }
        commands.push(command(name, &mut iter, &uri)?);
    }
    Ok(commands)
}

impl fmt::Display for Command {
    /// The command as it appears in a URI (no leading or trailing `/`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Join(address) => write!(f, "join{}", address.to_multiaddr()),
            Command::Follow(account) => write!(f, "follow/{account}"),
            Command::TunnelConnect { hub, target } => write!(f, "tunnel-connect/{hub}/{target}"),
            Command::PromiseFollow { issuer, token } => {
                write!(f, "promise.follow/pubkey.{}/{token}", issuer.0)
            }
            Command::PromiseAccountAdd { issuer, token } => {
                write!(f, "promise.account-add/pubkey.{}/{token}", issuer.0)
            }
        }
    }
}

/// Writes the URI of `commands`.
#[must_use]
pub fn to_uri(commands: &[Command]) -> String {
    let mut uri = URI_PREFIX.to_owned();
    for command in commands {
        uri.push('/');
        uri.push_str(&command.to_string());
    }
    uri
}

/// pzp-invite's web link for `uri`: the first `join` command's host, `https` for a DNS name
/// and `http` for an IP address, and the URI percent-encoded as `encodeURIComponent` does.
#[must_use]
pub fn to_web_link(commands: &[Command]) -> Option<String> {
    let host = commands.iter().find_map(|command| match command {
        Command::Join(Address {
            transport: Transport::Net { host, .. },
            ..
        }) => Some(host),
        _ => None,
    })?;
    let scheme = match host {
        crate::transport::addr::Host::Dns(_) => "https",
        _ => "http",
    };
    Some(format!(
        "{scheme}://{host}/invite#{}",
        encode_uri_component(&to_uri(commands))
    ))
}

/// JavaScript's `encodeURIComponent` for ASCII text (invite URIs are ASCII).
fn encode_uri_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for byte in text.bytes() {
        let unreserved = byte.is_ascii_alphanumeric()
            || matches!(
                byte,
                b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
            );
        if unreserved {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(byte);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUB: &str = "9hSR6S7WPtxmTojgo6GG3k4yDPecgJY292j7xrsUGWBu";
    const PK: &str = "AKnL4NNf3DGWZJS6cPknBuEGnVsV4A4m5tgebLHaRSZ9";
    const TOKEN: &str = "p2pLq5VZKvNWaaafMUEcxH9BKm2WjNBCxsc8TRQV5gS";

    #[test]
    fn a_friend_invite_round_trips() {
        let uri = format!(
            "pzp://invite/join/ip4/127.0.0.1/tcp/8008/shse/{HUB}.{TOKEN}/follow/ACCOUNT/promise.follow/pubkey.{PK}/{TOKEN}"
        );
        let commands = parse(&uri).expect("parses");
        assert_eq!(commands.len(), 3);
        assert_eq!(
            commands.get(1),
            Some(&Command::Follow("ACCOUNT".to_owned()))
        );
        assert_eq!(to_uri(&commands), uri);
        let link = to_web_link(&commands).expect("a join command");
        assert!(link.starts_with("http://127.0.0.1/invite#pzp%3A%2F%2Finvite%2Fjoin%2Fip4%2F"));
        assert_eq!(parse(&link), Ok(commands));
    }

    #[test]
    fn malformed_invites_are_refused_with_reasons() {
        let cases = [
            ("ssb://invite/follow/X".to_owned(), "expected"),
            ("pzp://invite".to_owned(), "no commands"),
            ("pzp://invite/join/ip4/127.0.0.1".to_owned(), "missing some"),
            ("pzp://invite/dance/x".to_owned(), "Unknown command"),
            (
                format!("pzp://invite/promise.follow/account.{PK}/{TOKEN}"),
                "issuer",
            ),
            (
                format!("pzp://invite/promise.follow/pubkey.{PK}/short"),
                "promise token",
            ),
            (
                format!("pzp://invite/join/ip4/127.0.0.1/udp/1/shse/{HUB}"),
                "join",
            ),
            (format!("pzp://invite/tunnel-connect/{HUB}"), "missing some"),
            ("pzp://invite/follow/".to_owned(), "missing some"),
        ];
        for (uri, expected) in cases {
            let error = parse(&uri).expect_err(&uri).to_string();
            assert!(error.contains(expected), "{uri}: {error}");
        }
        assert!(matches!(
            parse(&"x".repeat(INVITE_TEXT_BYTES_MAX + 1)),
            Err(InviteError::TooLong(_))
        ));
    }
}
