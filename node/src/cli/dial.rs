//! The addresses a person gives to dial (`--connect`, `ppppp connect`): a multiserver
//! address with the peer's key (`net:HOST:PORT~shse:KEY`), or `HOST:PORT` in plaintext.

use anyhow::Context;

use crate::peer::{DialTarget, Transport};
use crate::transport::addr::{Address, Transport as AddressTransport};

/// The dial target `text` names under `transport`.
pub(crate) fn dial_target(text: &str, transport: Transport) -> anyhow::Result<DialTarget> {
    if transport == Transport::Plaintext && !text.contains(':') {
        anyhow::bail!("{text:?} is not HOST:PORT");
    }
    if transport == Transport::Plaintext && !text.starts_with("net:") {
        return Ok(DialTarget {
            address: text.to_owned(),
            key: None,
        });
    }
    let address = Address::parse_multiserver(text)
        .with_context(|| format!("{text:?} is not a multiserver address"))?;
    if let AddressTransport::Tunnel { hub, target } = &address.transport {
        return Ok(DialTarget {
            address: format!("tunnel:{hub}:{target}"),
            key: Some(proto::ids::PubKey::from_bytes(&target.0)),
        });
    }
    let AddressTransport::Net { host, port } = &address.transport else {
        anyhow::bail!("{text:?}: only net: and tunnel: addresses can be dialed");
    };
    let host = host.to_string();
    let socket = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let key = address.shse.map(|shse| proto::ids::PubKey::from(shse.key));
    if transport != Transport::Plaintext && key.is_none() {
        anyhow::bail!("{text:?} has no ~shse:PUBKEY part");
    }
    Ok(DialTarget {
        address: socket,
        key,
    })
}
