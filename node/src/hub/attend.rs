//! A peer that attends hubs: the hub client beside the node, the `Net` that dials
//! `tunnel:HUB:TARGET` addresses through it (and accepts tunnels opened to this peer), and
//! the task that dials every attendant the hubs list, as pzp-net's scheduler does.
//!
//! `ppppp serve --hub` runs this over TCP; the simulator runs it over its simulated network,
//! so a peer behind a NAT there is the same code as a real one.

use std::sync::{Arc, Mutex, PoisonError};

use crate::hub::{HubClient, HubClientChannels, HubClientConfig, start_hub_client};
use crate::net::Net;
use crate::peer::{AbortOnDrop, DialTarget, NodeConfig, NodeDialer, NodeError, Transport};
use crate::transport::PublicKey;
use crate::transport::addr::Address;
use crate::transport::caps::NetworkKey;
use crate::tunnel::TunnelNet;

/// Attendants the hubs list, as `(hub, attendant)` pairs, for the one task that dials them.
pub type Discoveries = tokio::sync::mpsc::Receiver<(PublicKey, PublicKey)>;

/// Why attending failed.
#[derive(Debug, thiserror::Error)]
pub enum AttendError {
    /// The hub client's actor did not start.
    #[error("cannot start the hub client: {0}")]
    ClientStart(String),
    /// The hub client refused the address or stopped.
    #[error("cannot attend {address}: {reason}")]
    Add {
        /// The hub's address.
        address: String,
        /// Why.
        reason: String,
    },
}

/// The hub client of a running peer.
#[derive(Debug)]
pub struct Attendance {
    /// The client (hubs attended, tokens).
    pub client: HubClient,
    discoveries: Mutex<Option<Discoveries>>,
    /// This peer's key: of two attendants, only the one whose key sorts first dials.
    me: PublicKey,
}

/// Seed of the hub client's randomness, derived from the node's so that the two differ.
const CLIENT_SEED_SALT: u64 = 0x6875_625f_636c;

/// Starts the hub client dialing hubs over `base`, and the `Net` the node should run on:
/// `base` for ordinary addresses, plus tunnels through the attended hubs.
///
/// # Errors
/// The client's actor did not start.
pub async fn attend(
    config: &NodeConfig,
    base: Arc<dyn Net>,
) -> Result<(Attendance, Arc<dyn Net>), AttendError> {
    let client_config = HubClientConfig {
        keypair: config.keypair.clone(),
        network_key: match config.transport {
            Transport::Shse(key) => key,
            Transport::Plaintext => NetworkKey::default(),
        },
        seed: config.seed ^ CLIENT_SEED_SALT,
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
    ) = start_hub_client(client_config, Arc::clone(&base))
        .await
        .map_err(AttendError::ClientStart)?;
    let net = TunnelNet::new(base, Arc::new(client.clone()), inbound);
    let attendance = Attendance {
        client,
        discoveries: Mutex::new(Some(discoveries)),
        me: PublicKey(config.keypair.public().to_bytes()),
    };
    Ok((attendance, Arc::new(net)))
}

impl Attendance {
    /// The attendants the hubs list, for the one task that dials them (`None` once taken).
    pub fn take_discoveries(&self) -> Option<Discoveries> {
        self.discoveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Attends `address` (kept connected, redialed).
    ///
    /// # Errors
    /// Not a hub address, or the client stopped.
    pub async fn add(&self, address: Address) -> Result<(), AttendError> {
        let text = address.to_multiaddr();
        self.client
            .add_hub(address, false)
            .await
            .map(|_| ())
            .map_err(|reason| AttendError::Add {
                address: text,
                reason,
            })
    }

    /// Dials the attendants the hubs list through their hub (`tunnel:HUB:ATTENDANT`), for
    /// as long as the node runs; `None` if the listings were already taken. The task ends
    /// with the node or when the returned guard is dropped.
    ///
    /// Only attendants whose key sorts after this peer's are dialed; the others dial this
    /// peer. Two attendants that dial each other at once open two connections, and each
    /// side keeps its newest one (admission replaces an older connection of the same key),
    /// which can be a different one on each side: both close, both redial, and so on.
    #[must_use]
    pub fn dial_attendants(&self, node: NodeDialer) -> Option<AttendantDialer> {
        let mut discoveries = self.take_discoveries()?;
        let me = self.me;
        Some(AttendantDialer {
            _task: AbortOnDrop(tokio::spawn(async move {
                while let Some((hub, target)) = discoveries.recv().await {
                    if target.0 <= me.0 {
                        continue;
                    }
                    let target = DialTarget {
                        address: format!("tunnel:{hub}:{target}"),
                        key: Some(proto::ids::PubKey::from_bytes(&target.0)),
                    };
                    // One attendant that cannot be dialed (gone, or refusing) must not stop the
                    // others from being dialed; the next listing offers it again.
                    match node.connect(target).await {
                        Ok(()) => {}
                        Err(NodeError::Stopped) => return,
                        Err(error) => {
                            tracing::debug!(target: "ppppp::hub", %error, "cannot dial an attendant");
                        }
                    }
                }
            })),
        })
    }
}

/// The task that dials the attendants the hubs list; dropping it stops the dialing.
#[must_use = "dropping it stops dialing the attendants"]
pub struct AttendantDialer {
    _task: AbortOnDrop,
}

impl std::fmt::Debug for AttendantDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AttendantDialer")
    }
}
