//! The hub client's actor: keeps the hubs connected (seeded backoff), runs the SHSE
//! handshake with the hub's key and token, moves bytes between the hub connections and the
//! tunnels' streams, and applies [`HubClientMachine`]'s outputs. Inbound tunnels go to the
//! node's listener (through [`crate::tunnel::TunnelNet`]); attendants worth dialing go to
//! the discovery channel, which the program turns into `tunnel:` dial targets.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use proto::keys::Keypair;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::client::{ClientInput, ClientOutput, HUB_KEEPALIVE, HubClientMachine};
use super::link::{LINK_WRITE_BATCHES_MAX, read_frames, write_batches};
use super::server::LinkId;
use crate::net::{BoxFuture, BoxStream, Net};
use crate::peer::AbortOnDrop;
use crate::transport::PublicKey;
use crate::transport::addr::{Address, Transport};
use crate::transport::caps::NetworkKey;
use crate::transport::muxrpc::codec::Frame;
use crate::transport::shse::{self, Identity};
use crate::tunnel::{
    InboundTunnel, TUNNEL_BYTES_IN_FLIGHT_MAX, TUNNEL_FRAME_BYTES_MAX, TUNNELS_PENDING_ACCEPT_MAX,
    TunnelDialer, TunnelEnd, TunnelEvent, TunnelId, TunnelNotify, tunnel,
};

/// Attendants announced for dialing but not yet taken by the program; more are dropped
/// (they are announced again with the hub's next list).
pub const DISCOVERIES_PENDING_MAX: usize = 256;

/// What a hub client starts from.
#[derive(Debug, Clone)]
pub struct HubClientConfig {
    /// The peer's identity (the same as the node's).
    pub keypair: Keypair,
    /// The network key.
    pub network_key: NetworkKey,
    /// Seed of handshake randomness and redial jitter.
    pub seed: u64,
    /// Longest TCP connect plus handshake.
    pub connect_timeout: Duration,
    /// First redial delay; doubles per failure up to `backoff_max`.
    pub backoff_base: Duration,
    /// Longest redial delay.
    pub backoff_max: Duration,
}

/// A hub this client attends, as `ppppp peers`-like rows show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubInfo {
    /// The hub's address (multiaddr, without token).
    pub address: String,
    /// Its key.
    pub key: PublicKey,
    /// Whether it is connected and attended now.
    pub connected: bool,
    /// The attendants it lists (ourselves excluded).
    pub attendants: Vec<PublicKey>,
    /// Why the last connection failed, if it did.
    pub last_error: Option<String>,
}

pub(crate) enum ClientMsg {
    AddHub {
        address: Address,
        probe: bool,
        reply: RpcReplyPort<Result<bool, String>>,
    },
    Dial {
        target: usize,
    },
    Dialed {
        target: usize,
        result: Result<(BoxStream, PublicKey), String>,
    },
    Frames {
        link: LinkId,
        frames: Vec<Frame>,
        reply: RpcReplyPort<bool>,
    },
    Written {
        link: LinkId,
        bytes: usize,
    },
    Ended {
        link: LinkId,
        error: Option<String>,
    },
    Tunnel(TunnelEvent),
    OpenTunnel {
        hub: PublicKey,
        target: PublicKey,
        reply: RpcReplyPort<Result<BoxStream, String>>,
    },
    CreateToken {
        hub: PublicKey,
        reply: RpcReplyPort<Result<String, String>>,
    },
    Hubs {
        reply: RpcReplyPort<Vec<HubInfo>>,
    },
    Tick,
}

struct HubTarget {
    address: Address,
    probe: Option<RpcReplyPort<Result<bool, String>>>,
    link: Option<LinkId>,
    dialing: bool,
    failures: u32,
    timer: Option<AbortOnDrop<Result<(), ractor::MessagingErr<ClientMsg>>>>,
    last_error: Option<String>,
    removed: bool,
}

struct LinkIo {
    target: usize,
    writer: mpsc::Sender<Vec<u8>>,
    queued: usize,
    reader: AbortOnDrop<()>,
    _writer_task: AbortOnDrop<()>,
    credit: Option<RpcReplyPort<bool>>,
    full_tunnels: BTreeSet<TunnelId>,
}

struct TunnelIo {
    end: TunnelEnd,
    link: Option<LinkId>,
}

pub(crate) struct ClientState {
    machine: HubClientMachine,
    config: HubClientConfig,
    net: Arc<dyn Net>,
    started: Instant,
    rng: ChaCha8Rng,
    targets: Vec<HubTarget>,
    links: BTreeMap<LinkId, LinkIo>,
    next_link: u64,
    tunnels: BTreeMap<TunnelId, TunnelIo>,
    waiting_out: BTreeSet<TunnelId>,
    tokens: BTreeMap<u64, RpcReplyPort<Result<String, String>>>,
    next_request: u64,
    inbound: mpsc::Sender<InboundTunnel>,
    discoveries: mpsc::Sender<(PublicKey, PublicKey)>,
    announced: BTreeSet<(PublicKey, PublicKey)>,
    notify: TunnelNotify,
    _ticker: AbortOnDrop<()>,
}

struct ClientArgs {
    config: HubClientConfig,
    net: Arc<dyn Net>,
    inbound: mpsc::Sender<InboundTunnel>,
    discoveries: mpsc::Sender<(PublicKey, PublicKey)>,
}

struct ClientActor;

/// A running hub client: the handle the program and the `Net` seam use.
#[derive(Clone, Debug)]
pub struct HubClient {
    actor: ActorRef<ClientMsg>,
}

/// What [`start_hub_client`] returns besides the handle.
#[derive(Debug)]
pub struct HubClientChannels {
    /// Inbound tunnels, for [`crate::tunnel::TunnelNet::new`].
    pub inbound: mpsc::Receiver<InboundTunnel>,
    /// `(hub, attendant)` pairs to dial through `tunnel:HUB:ATTENDANT`.
    pub discoveries: mpsc::Receiver<(PublicKey, PublicKey)>,
}

/// Starts a hub client dialing hubs over `net` (the real network, not the tunnel net).
///
/// # Errors
/// The actor did not start.
pub async fn start_hub_client(
    config: HubClientConfig,
    net: Arc<dyn Net>,
) -> Result<(HubClient, HubClientChannels), String> {
    let (inbound_sender, inbound) = mpsc::channel(TUNNELS_PENDING_ACCEPT_MAX);
    let (discovery_sender, discoveries) = mpsc::channel(DISCOVERIES_PENDING_MAX);
    let args = ClientArgs {
        config,
        net,
        inbound: inbound_sender,
        discoveries: discovery_sender,
    };
    let (actor, _) = Actor::spawn(None, ClientActor, args)
        .await
        .map_err(|error| error.to_string())?;
    Ok((
        HubClient { actor },
        HubClientChannels {
            inbound,
            discoveries,
        },
    ))
}

async fn ask<T: Send + 'static>(
    actor: &ActorRef<ClientMsg>,
    make: impl FnOnce(RpcReplyPort<T>) -> ClientMsg,
    timeout: Option<Duration>,
) -> Result<T, String> {
    match actor.call(make, timeout).await {
        Ok(ractor::rpc::CallResult::Success(value)) => Ok(value),
        Ok(ractor::rpc::CallResult::Timeout) => {
            Err("the hub client did not answer in time".to_owned())
        }
        _ => Err("the hub client stopped".to_owned()),
    }
}

impl HubClient {
    /// Stops the client where it stands, as a crash would (no `post_stop`): its hub
    /// connections and tunnels go with its state. For the simulator's crashes.
    pub fn kill(&self) {
        self.actor.kill();
    }

    /// Keeps `address` (a `net` address with `shse`, maybe with a membership token)
    /// connected as a hub. With `probe`, first asks `hub.metadata` and answers whether it
    /// is a hub (a peer that is not one is dropped); without, answers at once.
    ///
    /// # Errors
    /// Not a hub address, or (probing) the connection failed.
    pub async fn add_hub(&self, address: Address, probe: bool) -> Result<bool, String> {
        ask(
            &self.actor,
            |reply| ClientMsg::AddHub {
                address,
                probe,
                reply,
            },
            None,
        )
        .await?
    }

    /// The hubs and what each lists.
    ///
    /// # Errors
    /// The client stopped.
    pub async fn hubs(&self) -> Result<Vec<HubInfo>, String> {
        ask(&self.actor, |reply| ClientMsg::Hubs { reply }, None).await
    }

    /// A membership token from `hub` (for invites).
    ///
    /// # Errors
    /// Not connected to that hub, or its refusal.
    pub async fn create_token(&self, hub: PublicKey) -> Result<String, String> {
        ask(
            &self.actor,
            |reply| ClientMsg::CreateToken { hub, reply },
            Some(Duration::from_secs(30)),
        )
        .await?
    }
}

impl TunnelDialer for HubClient {
    fn open<'a>(
        &'a self,
        hub: PublicKey,
        target: PublicKey,
    ) -> BoxFuture<'a, std::io::Result<BoxStream>> {
        Box::pin(async move {
            ask(
                &self.actor,
                |reply| ClientMsg::OpenTunnel { hub, target, reply },
                None,
            )
            .await
            .and_then(|result| result)
            .map_err(|error| std::io::Error::new(std::io::ErrorKind::NotConnected, error))
        })
    }
}

impl Actor for ClientActor {
    type Msg = ClientMsg;
    type State = ClientState;
    type Arguments = ClientArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ClientMsg>,
        args: ClientArgs,
    ) -> Result<ClientState, ActorProcessingErr> {
        let ticker = AbortOnDrop(myself.send_interval(HUB_KEEPALIVE, || ClientMsg::Tick));
        let notifier = myself.clone();
        let notify: TunnelNotify = Arc::new(move |event| {
            let _ = notifier.cast(ClientMsg::Tunnel(event));
        });
        let me = crate::transport::PublicKey(args.config.keypair.public().to_bytes());
        Ok(ClientState {
            machine: HubClientMachine::new(me),
            rng: ChaCha8Rng::seed_from_u64(args.config.seed),
            config: args.config,
            net: args.net,
            started: Instant::now(),
            targets: Vec::new(),
            links: BTreeMap::new(),
            next_link: 0,
            tunnels: BTreeMap::new(),
            waiting_out: BTreeSet::new(),
            tokens: BTreeMap::new(),
            next_request: 0,
            inbound: args.inbound,
            discoveries: args.discoveries,
            announced: BTreeSet::new(),
            notify,
            _ticker: ticker,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ClientMsg>,
        message: ClientMsg,
        state: &mut ClientState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ClientMsg::AddHub {
                address,
                probe,
                reply,
            } => state.add_hub(&myself, address, probe, reply),
            ClientMsg::Dial { target } => state.dial(&myself, target),
            ClientMsg::Dialed { target, result } => state.dialed(&myself, target, result),
            ClientMsg::Frames {
                link,
                frames,
                reply,
            } => {
                if let Some(io) = state.links.get_mut(&link) {
                    io.credit = Some(reply);
                }
                state.input(&myself, ClientInput::Frames { link, frames });
                state.give_credit(link);
            }
            ClientMsg::Written { link, bytes } => {
                if let Some(io) = state.links.get_mut(&link) {
                    io.queued = io.queued.saturating_sub(bytes);
                }
                state.drain_waiting(&myself);
            }
            ClientMsg::Ended { link, error } => {
                if let Some(error) = &error {
                    tracing::debug!(target: "ppppp::hub_client", %error, "hub connection ended");
                }
                state.link_gone(&myself, link, error);
            }
            ClientMsg::Tunnel(event) => state.tunnel_event(&myself, event),
            ClientMsg::OpenTunnel { hub, target, reply } => {
                let _ = reply.send(state.open_tunnel(&myself, hub, target));
            }
            ClientMsg::CreateToken { hub, reply } => {
                let request = state.next_request;
                state.next_request += 1;
                match state.machine.create_token(&hub, request) {
                    Ok(outputs) => {
                        state.tokens.insert(request, reply);
                        state.apply(&myself, outputs);
                    }
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                }
            }
            ClientMsg::Hubs { reply } => {
                let _ = reply.send(state.hub_infos());
            }
            ClientMsg::Tick => state.input(&myself, ClientInput::Tick),
        }
        Ok(())
    }
}

fn hub_key(address: &Address) -> Result<PublicKey, String> {
    match (&address.transport, &address.shse) {
        (Transport::Net { .. }, Some(shse)) => Ok(shse.key),
        _ => Err(format!(
            "{} is not a hub address (net with shse)",
            address.to_multiaddr()
        )),
    }
}

fn socket_address(address: &Address) -> String {
    match &address.transport {
        Transport::Net { host, port } => {
            let host = host.to_string();
            if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            }
        }
        _ => String::new(),
    }
}

async fn dial_hub(
    net: Arc<dyn Net>,
    address: Address,
    config: shse::io::Config,
    timeout: Duration,
    mut rng: ChaCha8Rng,
) -> Result<(BoxStream, PublicKey), String> {
    let key = hub_key(&address)?;
    let token = address.shse.and_then(|shse| shse.token);
    let socket = socket_address(&address);
    let stream = tokio::time::timeout(timeout, net.connect(&socket))
        .await
        .map_err(|_| format!("connect to {socket} timed out"))?
        .map_err(|error| format!("cannot connect to {socket}: {error}"))?;
    let (secured, _) = shse::io::connect(stream, &config, key, token, &mut rng)
        .await
        .map_err(|error| format!("handshake with hub {key} failed: {error}"))?;
    Ok((Box::new(secured) as BoxStream, key))
}

impl ClientState {
    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    fn input(&mut self, myself: &ActorRef<ClientMsg>, input: ClientInput) {
        let outputs = self.machine.handle(self.now(), input);
        self.apply(myself, outputs);
    }

    fn add_hub(
        &mut self,
        myself: &ActorRef<ClientMsg>,
        address: Address,
        probe: bool,
        reply: RpcReplyPort<Result<bool, String>>,
    ) {
        let key = match hub_key(&address) {
            Ok(key) => key,
            Err(error) => {
                let _ = reply.send(Err(error));
                return;
            }
        };
        if let Some(index) = self
            .targets
            .iter()
            .position(|t| !t.removed && t.address.shse.map(|s| s.key) == Some(key))
        {
            let connected = self.targets.get(index).is_some_and(|t| t.link.is_some());
            if !probe || connected {
                let _ = reply.send(Ok(true));
                return;
            }
            if let Some(target) = self.targets.get_mut(index) {
                target.probe = Some(reply);
            }
            return;
        }
        let index = self.targets.len();
        self.targets.push(HubTarget {
            address,
            probe: None,
            link: None,
            dialing: false,
            failures: 0,
            timer: None,
            last_error: None,
            removed: false,
        });
        if probe {
            if let Some(target) = self.targets.get_mut(index) {
                target.probe = Some(reply);
            }
        } else {
            let _ = reply.send(Ok(true));
        }
        self.dial(myself, index);
    }

    fn dial(&mut self, myself: &ActorRef<ClientMsg>, index: usize) {
        let identity = Identity::from_signing_key(self.config.keypair.signing_key().clone());
        let config = shse::io::Config {
            network_key: self.config.network_key,
            identity,
            timeout: self.config.connect_timeout,
        };
        let rng = ChaCha8Rng::seed_from_u64(self.rng.next_u64());
        let Some(target) = self.targets.get_mut(index) else {
            return;
        };
        if target.removed || target.link.is_some() || target.dialing {
            return;
        }
        target.dialing = true;
        target.timer = None;
        let (net, address, timeout, client) = (
            Arc::clone(&self.net),
            target.address.clone(),
            self.config.connect_timeout,
            myself.clone(),
        );
        tokio::spawn(async move {
            let result = dial_hub(net, address, config, timeout, rng).await;
            let _ = client.cast(ClientMsg::Dialed {
                target: index,
                result,
            });
        });
    }

    fn dialed(
        &mut self,
        myself: &ActorRef<ClientMsg>,
        index: usize,
        result: Result<(BoxStream, PublicKey), String>,
    ) {
        let probing = self.targets.get(index).is_some_and(|t| t.probe.is_some());
        let Some(target) = self.targets.get_mut(index) else {
            return;
        };
        target.dialing = false;
        match result {
            Err(error) => {
                target.last_error = Some(error.clone());
                if let Some(reply) = target.probe.take() {
                    target.removed = true;
                    let _ = reply.send(Err(error));
                } else {
                    self.retry_later(myself, index);
                }
            }
            Ok((stream, hub)) => {
                let link = LinkId(self.next_link);
                self.next_link += 1;
                target.link = Some(link);
                target.failures = 0;
                self.spawn_link(myself, link, index, stream);
                self.input(
                    myself,
                    ClientInput::Opened {
                        link,
                        hub,
                        probe: probing,
                    },
                );
            }
        }
    }

    fn retry_later(&mut self, myself: &ActorRef<ClientMsg>, index: usize) {
        let jitter_permille = 500 + self.rng.next_u32() % 500;
        let Some(target) = self.targets.get_mut(index) else {
            return;
        };
        if target.removed {
            return;
        }
        target.failures = target.failures.saturating_add(1);
        let exponent = target.failures.saturating_sub(1).min(16);
        let base = self
            .config
            .backoff_base
            .saturating_mul(1u32 << exponent)
            .min(self.config.backoff_max);
        let delay = base * jitter_permille / 1000;
        target.timer =
            Some(AbortOnDrop(myself.send_after(delay, move || {
                ClientMsg::Dial { target: index }
            })));
    }

    fn spawn_link(
        &mut self,
        myself: &ActorRef<ClientMsg>,
        link: LinkId,
        target: usize,
        stream: BoxStream,
    ) {
        let (reader, writer) = tokio::io::split(stream);
        let (sender, receiver) = mpsc::channel(LINK_WRITE_BATCHES_MAX);
        let client = myself.clone();
        let writer_task = AbortOnDrop(tokio::spawn(async move {
            let reports = client.clone();
            let error = write_batches(writer, receiver, move |bytes| {
                let _ = reports.cast(ClientMsg::Written { link, bytes });
            })
            .await;
            if error.is_some() {
                let _ = client.cast(ClientMsg::Ended { link, error });
            }
        }));
        let client = myself.clone();
        let reader = AbortOnDrop(tokio::spawn(async move {
            let deliver = |frames| {
                let client = client.clone();
                async move {
                    let asked = client
                        .call(
                            |reply| ClientMsg::Frames {
                                link,
                                frames,
                                reply,
                            },
                            None,
                        )
                        .await;
                    matches!(asked, Ok(ractor::rpc::CallResult::Success(true)))
                }
            };
            let error = read_frames(reader, deliver).await;
            let _ = client.cast(ClientMsg::Ended { link, error });
        }));
        self.links.insert(
            link,
            LinkIo {
                target,
                writer: sender,
                queued: 0,
                reader,
                _writer_task: writer_task,
                credit: None,
                full_tunnels: BTreeSet::new(),
            },
        );
    }

    fn give_credit(&mut self, link: LinkId) {
        if let Some(io) = self.links.get_mut(&link)
            && io.full_tunnels.is_empty()
            && let Some(credit) = io.credit.take()
        {
            let _ = credit.send(true);
        }
    }

    fn link_gone(&mut self, myself: &ActorRef<ClientMsg>, link: LinkId, error: Option<String>) {
        let Some(io) = self.links.remove(&link) else {
            return;
        };
        drop(io.reader);
        self.input(myself, ClientInput::Closed { link });
        if let Some(target) = self.targets.get_mut(io.target) {
            target.link = None;
            target.last_error = error.or_else(|| Some("the hub closed the connection".to_owned()));
            if !target.removed {
                self.retry_later(myself, io.target);
            }
        }
    }

    fn apply(&mut self, myself: &ActorRef<ClientMsg>, outputs: Vec<ClientOutput>) {
        for output in outputs {
            match output {
                ClientOutput::Write { link, bytes } => {
                    let Some(io) = self.links.get_mut(&link) else {
                        continue;
                    };
                    io.queued += bytes.len();
                    if io.writer.try_send(bytes).is_err() {
                        let _ = myself.cast(ClientMsg::Ended {
                            link,
                            error: Some("the hub does not read what we send".to_owned()),
                        });
                    }
                }
                ClientOutput::Close { link, reason } => {
                    let _ = myself.cast(ClientMsg::Ended {
                        link,
                        error: Some(reason),
                    });
                }
                ClientOutput::Probed { link, hub } => self.probed(link, hub),
                ClientOutput::Attendants { hub, keys } => self.discovered(hub, &keys),
                ClientOutput::Inbound {
                    tunnel: id,
                    hub,
                    origin,
                } => self.inbound(myself, id, hub, origin),
                ClientOutput::Deliver { tunnel: id, bytes } => {
                    let Some(io) = self.tunnels.get(&id) else {
                        continue;
                    };
                    if io.end.deliver(&bytes)
                        && let Some(link) = io.link
                        && let Some(link_io) = self.links.get_mut(&link)
                    {
                        link_io.full_tunnels.insert(id);
                    }
                }
                ClientOutput::TunnelEnded { tunnel: id, error } => {
                    if let Some(io) = self.tunnels.remove(&id) {
                        io.end.end(error);
                        if let Some(link) = io.link
                            && let Some(link_io) = self.links.get_mut(&link)
                        {
                            link_io.full_tunnels.remove(&id);
                        }
                    }
                }
                ClientOutput::Token { request, result } => {
                    if let Some(reply) = self.tokens.remove(&request) {
                        let _ = reply.send(result);
                    }
                }
            }
        }
    }

    fn probed(&mut self, link: LinkId, hub: bool) {
        let Some(target) = self
            .links
            .get(&link)
            .and_then(|io| self.targets.get_mut(io.target))
        else {
            return;
        };
        if !hub {
            target.removed = true;
        }
        if let Some(reply) = target.probe.take() {
            let _ = reply.send(Ok(hub));
        }
    }

    fn discovered(&mut self, hub: PublicKey, keys: &[PublicKey]) {
        self.announced
            .retain(|(announced_hub, key)| *announced_hub != hub || keys.contains(key));
        for key in keys {
            if self.announced.contains(&(hub, *key)) {
                continue;
            }
            if self.discoveries.try_send((hub, *key)).is_ok() {
                self.announced.insert((hub, *key));
            }
        }
    }

    fn new_tunnel(&mut self, id: TunnelId, link: Option<LinkId>) -> crate::tunnel::TunnelStream {
        let (stream, end) = tunnel(id, Arc::clone(&self.notify));
        self.tunnels.insert(id, TunnelIo { end, link });
        stream
    }

    fn inbound(
        &mut self,
        myself: &ActorRef<ClientMsg>,
        id: TunnelId,
        hub: PublicKey,
        origin: PublicKey,
    ) {
        let link = self.link_of_tunnel_hub(hub);
        let stream = self.new_tunnel(id, link);
        let address = format!("tunnel:{hub}:{origin}");
        if self
            .inbound
            .try_send((Box::new(stream) as BoxStream, address))
            .is_err()
        {
            tracing::debug!(target: "ppppp::hub_client", "inbound tunnel refused: the node is not accepting");
            // Dropping the stream shut it down; the Shut event ends the call.
        }
        let _ = myself;
    }

    fn link_of_tunnel_hub(&self, hub: PublicKey) -> Option<LinkId> {
        self.links
            .iter()
            .find(|(_, io)| {
                self.targets
                    .get(io.target)
                    .and_then(|t| t.address.shse)
                    .map(|s| s.key)
                    == Some(hub)
            })
            .map(|(link, _)| *link)
    }

    fn open_tunnel(
        &mut self,
        myself: &ActorRef<ClientMsg>,
        hub: PublicKey,
        target: PublicKey,
    ) -> Result<BoxStream, String> {
        let (id, outputs) = self.machine.open_tunnel(&hub, &target)?;
        let link = self.link_of_tunnel_hub(hub);
        let stream = self.new_tunnel(id, link);
        self.apply(myself, outputs);
        Ok(Box::new(stream))
    }

    fn tunnel_event(&mut self, myself: &ActorRef<ClientMsg>, event: TunnelEvent) {
        match event {
            TunnelEvent::Outbound(id) => {
                self.waiting_out.insert(id);
                self.drain_waiting(myself);
            }
            TunnelEvent::Drained(id) => {
                let Some(link) = self.tunnels.get(&id).and_then(|io| io.link) else {
                    return;
                };
                if let Some(io) = self.links.get_mut(&link) {
                    io.full_tunnels.remove(&id);
                }
                self.give_credit(link);
            }
            TunnelEvent::Shut(id) => {
                self.waiting_out.insert(id);
                self.drain_waiting(myself);
            }
        }
    }

    /// Moves what tunnels' streams wrote into their hub connections, while those
    /// connections' send queues are below the bound.
    fn drain_waiting(&mut self, myself: &ActorRef<ClientMsg>) {
        let waiting: Vec<TunnelId> = self.waiting_out.iter().copied().collect();
        for id in waiting {
            let Some(io) = self.tunnels.get(&id) else {
                self.waiting_out.remove(&id);
                continue;
            };
            let (end, link) = (io.end.clone(), io.link);
            loop {
                let room = link
                    .and_then(|link| self.links.get(&link))
                    .is_none_or(|io| io.queued < TUNNEL_BYTES_IN_FLIGHT_MAX);
                if !room {
                    break;
                }
                match end.take_outbound(TUNNEL_FRAME_BYTES_MAX) {
                    Some(bytes) if bytes.is_empty() => {
                        self.waiting_out.remove(&id);
                        break;
                    }
                    Some(bytes) => {
                        self.input(myself, ClientInput::TunnelData { tunnel: id, bytes })
                    }
                    None => {
                        self.waiting_out.remove(&id);
                        self.tunnels.remove(&id);
                        self.input(myself, ClientInput::TunnelShut { tunnel: id });
                        break;
                    }
                }
            }
        }
    }

    fn hub_infos(&self) -> Vec<HubInfo> {
        self.targets
            .iter()
            .filter(|target| !target.removed)
            .filter_map(|target| {
                let key = target.address.shse?.key;
                let mut address = target.address.clone();
                if let Some(shse) = &mut address.shse {
                    shse.token = None;
                }
                let attendants = self.machine.attendants(&key);
                Some(HubInfo {
                    address: address.to_multiaddr(),
                    key,
                    connected: attendants.is_some(),
                    attendants: attendants.unwrap_or_default(),
                    last_error: target.last_error.clone(),
                })
            })
            .collect()
    }
}
