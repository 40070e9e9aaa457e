//! Tunnel hubs and peers behind NATs on the simulated network, with the node's own code:
//! a tunnel hub runs `node::hub::run_hub` (what `ppppp hub` runs), and a peer that attends
//! hubs runs `node::hub::attend` (what `ppppp serve --hub` runs) over the host's network.
//!
//! A NAT is modelled as [`BehindNat`]: the host can dial out, but binds no socket, so a dial
//! to it finds nothing listening and is refused, while tunnels through the hubs it attends
//! still reach its node (the tunnel `Net` merges them into the node's listener).
//!
//! A members-only tunnel hub (`admission = "invites"`) is given the invites the plan drew
//! for the peers attending it; each such peer holds a pzp-invite URI whose join command
//! carries its hub token, and attends with it as `ppppp invite use` does.

use std::io;
use std::sync::Arc;

use node::hub::{Attendance, AttendantDialer, HubConfig, attend, run_hub};
use node::invite::uri::{self, Command};
use node::net::{BoxFuture, BoxStream, Listener, Net};
use node::peer::{NodeConfig, NodeDialer, Transport};
use node::transport::Token;
use node::transport::addr::Address;
use sim::plan::{PeerIdx, PeerPlan, Plan};

use super::kill::KillSlot;
use super::record::{Recorder, now_ms};

/// The network of a host behind a NAT: dials go out, nothing can come in.
pub(crate) struct BehindNat(pub(crate) Arc<dyn Net>);

/// A listener on no socket: it never accepts (a NAT drops what is not a reply).
struct Unreachable {
    local: String,
}

impl Listener for Unreachable {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxStream, String)>> {
        Box::pin(std::future::pending())
    }

    fn local_addr(&self) -> String {
        self.local.clone()
    }
}

impl Net for BehindNat {
    fn bind<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            Ok(Box::new(Unreachable {
                local: addr.to_owned(),
            }) as Box<dyn Listener>)
        })
    }

    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<BoxStream>> {
        self.0.connect(addr)
    }
}

/// The invites a members-only tunnel hub made: every token the plan gave a peer for it
/// (`None`: the hub admits anyone).
pub(crate) fn hub_invites(plan: &Plan, hub: &PeerPlan) -> Option<Vec<[u8; 32]>> {
    hub.members_only.then(|| {
        plan.peers
            .iter()
            .flat_map(|peer| &peer.invites)
            .filter(|invite| invite.hub == hub.index)
            .map(|invite| invite.token)
            .collect()
    })
}

/// How `peer` attends the tunnel hub `hub` at `address` (`net:HOST:PORT~shse:KEY`): the
/// invite URI the hub made for it, or the address if it holds none.
pub(crate) fn hub_entry(address: String, peer: &PeerPlan, hub: PeerIdx) -> String {
    let Some(invite) = peer.invites.iter().find(|invite| invite.hub == hub) else {
        return address;
    };
    let mut join: Address = address
        .parse()
        .expect("invariant: a host name, a port and a key make an address");
    if let Some(shse) = join.shse.as_mut() {
        shse.token = Some(Token(invite.token));
    }
    uri::to_uri(&[Command::Join(join)])
}

/// The hubs an entry of a peer's hub list names: its address, or an invite's join commands.
fn hub_addresses(text: &str) -> Result<Vec<Address>, String> {
    if !text.starts_with("pzp:") {
        return text
            .parse::<Address>()
            .map(|address| vec![address])
            .map_err(|error| format!("bad hub address {text:?}: {error}"));
    }
    let commands = uri::parse(text).map_err(|error| format!("bad invite {text:?}: {error}"))?;
    Ok(commands
        .into_iter()
        .filter_map(|command| match command {
            Command::Join(address) => Some(address),
            _ => None,
        })
        .collect())
}

/// Runs a tunnel hub named `name` with the identity, address and seed of `node` (what the
/// host's node would have), on `net`, until the host crashes (never returns). `invites`:
/// the invites a members-only hub made (`None`: it admits anyone); it keeps its members in
/// memory, so after a crash it starts again from its invites, and the peers holding them
/// join again.
pub(crate) async fn run_tunnel_hub(
    name: &str,
    node: &NodeConfig,
    invites: Option<&[[u8; 32]]>,
    recorder: &Recorder,
    killer: &KillSlot,
    net: Arc<dyn Net>,
) {
    let peer = u32::try_from(node.peer).unwrap_or(u32::MAX);
    recorder.peer_up(peer);
    let network_key = match node.transport {
        Transport::Shse(key) => key,
        // Validation refuses tunnel hubs without SHSE.
        Transport::Plaintext => node::transport::caps::NetworkKey::PZP,
    };
    let config = HubConfig {
        keypair: node.keypair.clone(),
        network_key,
        // Every simulated peer listens (setup.rs); a hub without an address fails to bind.
        listen: node.listen.clone().unwrap_or_default(),
        name: name.to_owned(),
        dir: None,
        open: invites.is_none(),
        invites: invites
            .into_iter()
            .flatten()
            .map(|token| Token(*token))
            .collect(),
        seed: node.seed ^ node.peer,
        epoch_ms: now_ms(),
    };
    match run_hub(config, net).await {
        Ok(hub) => {
            let hub = Arc::new(hub);
            let killed = Arc::clone(&hub);
            killer.add(move || killed.kill());
            std::future::pending::<()>().await;
        }
        Err(error) => {
            recorder.note(
                now_ms(),
                format!("{name}: the tunnel hub did not start: {error}"),
                true,
            );
            std::future::pending::<()>().await;
        }
    }
}

/// A peer attending tunnel hubs: the hub client and what dials the attendants it lists.
pub(crate) struct Attending {
    attendance: Attendance,
    hubs: Vec<Address>,
}

/// The network a node runs on: the host's, behind a NAT if `nat`, with tunnels through the
/// `hubs` it attends (then also the [`Attending`] to start once the node runs).
///
/// # Errors
/// A hub address that does not parse, or the hub client did not start.
pub(crate) async fn node_net(
    nat: bool,
    hubs: &[String],
    config: &NodeConfig,
    killer: &KillSlot,
    net: Arc<dyn Net>,
) -> Result<(Arc<dyn Net>, Option<Attending>), String> {
    let net: Arc<dyn Net> = if nat { Arc::new(BehindNat(net)) } else { net };
    if hubs.is_empty() {
        return Ok((net, None));
    }
    let hubs = hubs
        .iter()
        .map(|text| hub_addresses(text))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    let (attendance, net) = attend(config, net)
        .await
        .map_err(|error| error.to_string())?;
    let client = attendance.client.clone();
    killer.add(move || client.kill());
    Ok((net, Some(Attending { attendance, hubs })))
}

impl Attending {
    /// Attends the hubs and dials the attendants they list, on behalf of the running node.
    ///
    /// # Errors
    /// The hub client stopped.
    pub(crate) async fn start(self, node: NodeDialer) -> Result<AttendantDialer, String> {
        for address in self.hubs {
            self.attendance
                .add(address)
                .await
                .map_err(|error| error.to_string())?;
        }
        self.attendance
            .dial_attendants(node)
            .ok_or_else(|| "the attendants' listings were already taken".to_owned())
    }
}
