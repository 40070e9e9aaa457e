//! The hub side of `ppppp serve`: hub addresses from the command line, and attending them
//! over TCP (`node::hub::attend`, which the simulator runs over its own network).

use std::sync::Arc;

use anyhow::Context;

use crate::hub::{Attendance, attend};
use crate::net::{Net, TokioNet};
use crate::peer::NodeConfig;
use crate::transport::addr::{Address, Transport as AddressTransport};

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

/// Starts attending hubs over TCP: the hub client, and the `Net` the node uses (TCP plus
/// tunnels through hubs).
///
/// # Errors
/// The client's actor did not start.
pub(crate) async fn start(config: &NodeConfig) -> anyhow::Result<(Attendance, Arc<dyn Net>)> {
    Ok(attend(config, Arc::new(TokioNet)).await?)
}
