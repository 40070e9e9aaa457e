//! The hub side of `ppppp serve`: the hub client beside the node, the `Net` that dials
//! `tunnel:` addresses through it, and the attendants the hubs list (`serve.rs` dials them
//! as `tunnel:HUB:ATTENDANT`, as pzp-net's scheduler does).

use std::sync::Arc;

use anyhow::Context;

use crate::hub::{HubClient, HubClientChannels, HubClientConfig, start_hub_client};
use crate::net::{Net, TokioNet};
use crate::peer::NodeConfig;
use crate::transport::addr::{Address, Transport as AddressTransport};
use crate::tunnel::TunnelNet;

/// The hub client of a running peer.
#[derive(Debug)]
pub(crate) struct Hubs {
    pub(crate) client: HubClient,
    discoveries: std::sync::Mutex<Option<Discoveries>>,
}

pub(crate) type Discoveries =
    tokio::sync::mpsc::Receiver<(crate::transport::PublicKey, crate::transport::PublicKey)>;

/// Parses a hub address (multiaddr or multiserver; `net` with `shse`, maybe a token).
///
/// # Errors
/// Not an address, or not one a hub can have.
pub(crate) fn hub_address(text: &str) -> anyhow::Result<Address> {
    let address: Address = text
        .parse()
        .with_context(|| format!("{text:?} is not a hub address"))?;
    anyhow::ensure!(
        matches!(address.transport, AddressTransport::Net { .. }) && address.shse.is_some(),
        "{text:?}: a hub address is net:HOST:PORT~shse:KEY (or /ip4/HOST/tcp/PORT/shse/KEY)"
    );
    Ok(address)
}

/// Starts the hub client and the `Net` the node uses (TCP, plus tunnels through hubs).
///
/// # Errors
/// The client's actor did not start.
pub(crate) async fn start(config: &NodeConfig) -> anyhow::Result<(Hubs, Arc<dyn Net>)> {
    let client_config = HubClientConfig {
        keypair: config.keypair.clone(),
        network_key: match config.transport {
            crate::peer::Transport::Shse(key) => key,
            crate::peer::Transport::Plaintext => crate::transport::caps::NetworkKey::default(),
        },
        seed: config.seed ^ 0x6875_625f_636c,
        connect_timeout: config.timers.connect_timeout + config.timers.handshake_timeout,
        backoff_base: config.timers.backoff_base,
        backoff_max: config.timers.backoff_max,
    };
    let (
        client,
        HubClientChannels {
            inbound,
            discoveries,
        },
    ) = start_hub_client(client_config, Arc::new(TokioNet))
        .await
        .map_err(|error| anyhow::anyhow!("cannot start the hub client: {error}"))?;
    let net = TunnelNet::new(Arc::new(TokioNet), Arc::new(client.clone()), inbound);
    let hubs = Hubs {
        client,
        discoveries: std::sync::Mutex::new(Some(discoveries)),
    };
    Ok((hubs, Arc::new(net)))
}

impl Hubs {
    /// The attendants the hubs list, as `(hub, attendant)` pairs, for the one task that dials
    /// them (`None` once taken).
    pub(crate) fn take_discoveries(&self) -> Option<Discoveries> {
        self.discoveries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// Attends `address` (kept connected, redialed).
    ///
    /// # Errors
    /// Not a hub address.
    pub(crate) async fn add(&self, address: Address) -> anyhow::Result<()> {
        self.client
            .add_hub(address, false)
            .await
            .map(|_| ())
            .map_err(|error| anyhow::anyhow!(error))
    }
}
