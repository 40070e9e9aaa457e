//! The hub's actor: a thin shell around [`HubMachine`] that owns the sockets. It accepts
//! connections (bounded), runs the SHSE handshake with the machine's admission rules,
//! spawns one reader and one writer task per connection, and applies the machine's outputs.
//! Reads are credit-based: a reader reads again only when the actor has handled its frames,
//! and the actor withholds that credit while the machine says the connection's tunnel
//! targets are behind ([`super::server::TUNNEL_BYTES_IN_FLIGHT_MAX`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use proto::keys::Keypair;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::link::{LINK_WRITE_BATCHES_MAX, read_frames, write_batches};
use super::server::{ATTENDANTS_REFRESH, HubInput, HubMachine, HubOutput, LinkId};
use crate::net::{BoxStream, Listener, Net};
use crate::peer::AbortOnDrop;
use crate::transport::caps::NetworkKey;
use crate::transport::muxrpc::codec::Frame;
use crate::transport::shse::{self, Identity};
use crate::transport::{PublicKey, Token};

/// Most connections a hub holds at once, handshakes included; more are dropped at accept.
pub const HUB_LINKS_MAX: usize = 2048;

/// Longest SHSE handshake a hub waits for.
pub const HUB_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// What a hub starts from.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The hub's identity.
    pub keypair: Keypair,
    /// The network key.
    pub network_key: NetworkKey,
    /// `host:port` to listen on.
    pub listen: String,
    /// What `hub.metadata` says.
    pub name: String,
    /// Where `members.json` and `tokens.json` live (`None`: kept in memory only).
    pub dir: Option<PathBuf>,
    /// Admit anyone, not only members and token holders.
    pub open: bool,
    /// Invites made before the hub starts, for a hub kept in memory (`dir: None`: the
    /// simulator, whose plan hands them to the peers): each token is created as
    /// `hub.createToken` creates one. Such a closed hub's first member is its own key (who
    /// made the invites), so no stranger can bootstrap it.
    pub invites: Vec<Token>,
    /// Seed of the token stream and the handshakes' randomness.
    pub seed: u64,
    /// The wall clock at start, ms since the Unix epoch (for `hub.ping`).
    pub epoch_ms: u64,
}

/// Why a hub did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// The listener could not bind.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// The membership files are unreadable or malformed.
    #[error("cannot load the hub's membership: {0}")]
    Admission(String),
    /// The actor did not start, or stopped.
    #[error("hub actor: {0}")]
    Actor(String),
}

/// A snapshot of a running hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubStatus {
    /// Attendants' keys, in arrival order.
    pub attendants: Vec<PublicKey>,
    /// Open connections.
    pub links: usize,
    /// Open tunnels.
    pub tunnels: usize,
    /// Members.
    pub members: usize,
}

pub(crate) enum HubMsg {
    Accepted {
        stream: BoxStream,
    },
    Authorize {
        key: PublicKey,
        token: Option<Token>,
        reply: RpcReplyPort<bool>,
    },
    Established {
        link: LinkId,
        stream: BoxStream,
        key: PublicKey,
    },
    HandshakeFailed {
        link: LinkId,
        reason: String,
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
    Tick,
    Status {
        reply: RpcReplyPort<HubStatus>,
    },
}

struct LinkIo {
    writer: Option<mpsc::Sender<Vec<u8>>>,
    /// The handshake, then the reader.
    task: AbortOnDrop<()>,
    writer_task: Option<AbortOnDrop<()>>,
    credit: Option<RpcReplyPort<bool>>,
    paused: bool,
}

/// How long a closed connection's writer may take to deliver what was queued (GOODBYE).
const CLOSE_GRACE: Duration = Duration::from_millis(200);

pub(crate) struct HubState {
    machine: HubMachine,
    started: Instant,
    links: BTreeMap<LinkId, LinkIo>,
    next_link: u64,
    identity: Identity,
    network_key: NetworkKey,
    dir: Option<PathBuf>,
    rng: ChaCha8Rng,
    _listener: AbortOnDrop<()>,
    _ticker: AbortOnDrop<()>,
}

struct HubArgs {
    config: HubConfig,
    machine: HubMachine,
    listener: Box<dyn Listener>,
}

struct HubActor;

/// A running hub.
#[derive(Debug)]
pub struct HubHandle {
    actor: ActorRef<HubMsg>,
    address: String,
    key: PublicKey,
    join: tokio::task::JoinHandle<()>,
}

impl HubHandle {
    /// The `host:port` it listens on.
    #[must_use]
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Its public key.
    #[must_use]
    pub fn key(&self) -> PublicKey {
        self.key
    }

    /// Its attendants, connections and tunnels now.
    ///
    /// # Errors
    /// The hub stopped.
    pub async fn status(&self) -> Result<HubStatus, HubError> {
        match self
            .actor
            .call(|reply| HubMsg::Status { reply }, None)
            .await
        {
            Ok(ractor::rpc::CallResult::Success(status)) => Ok(status),
            _ => Err(HubError::Actor("the hub stopped".to_owned())),
        }
    }

    /// Stops the hub where it stands, as a crash would (no `post_stop`): its connections
    /// and tunnels go with its state. For the simulator's crashes.
    pub fn kill(&self) {
        self.actor.kill();
    }

    /// Stops the hub and waits for it.
    pub async fn stop(self) {
        self.actor.stop(None);
        let _ = self.join.await;
    }
}

/// Starts a hub: loads membership, binds the listener, serves until stopped.
///
/// # Errors
/// [`HubError`].
pub async fn run_hub(config: HubConfig, net: Arc<dyn Net>) -> Result<HubHandle, HubError> {
    let admission = load_admission(&config)?;
    let listener = net
        .bind(&config.listen)
        .await
        .map_err(|source| HubError::Listen {
            address: config.listen.clone(),
            source,
        })?;
    let address = listener.local_addr();
    let machine = HubMachine::new(config.name.clone(), config.epoch_ms, admission, config.seed);
    let key = PublicKey(config.keypair.public().to_bytes());
    let args = HubArgs {
        config,
        machine,
        listener,
    };
    let (actor, join) = Actor::spawn(None, HubActor, args)
        .await
        .map_err(|error| HubError::Actor(error.to_string()))?;
    Ok(HubHandle {
        actor,
        address,
        key,
        join,
    })
}

fn load_admission(config: &HubConfig) -> Result<super::admission::Admission, HubError> {
    let Some(dir) = &config.dir else {
        let mut admission = super::admission::Admission::new(config.open);
        if !config.open {
            admission.admit(PublicKey(config.keypair.public().to_bytes()), None);
        }
        for token in &config.invites {
            admission
                .create_token(token.0)
                .map_err(|error| HubError::Admission(error.to_string()))?;
        }
        return Ok(admission);
    };
    let read = |name: &str| {
        crate::durable::read_optional(&dir.join(name))
            .map_err(|error| HubError::Admission(format!("{name}: {error}")))
    };
    let members = read("members.json")?;
    let tokens = read("tokens.json")?;
    super::admission::Admission::from_files(config.open, members.as_deref(), tokens.as_deref())
        .map_err(|error| HubError::Admission(error.to_string()))
}

impl Actor for HubActor {
    type Msg = HubMsg;
    type State = HubState;
    type Arguments = HubArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<HubMsg>,
        args: HubArgs,
    ) -> Result<HubState, ActorProcessingErr> {
        let listener = AbortOnDrop(tokio::spawn(accept_loop(myself.clone(), args.listener)));
        let ticker = AbortOnDrop(myself.send_interval(ATTENDANTS_REFRESH, || HubMsg::Tick));
        Ok(HubState {
            machine: args.machine,
            started: Instant::now(),
            links: BTreeMap::new(),
            next_link: 0,
            identity: Identity::from_signing_key(args.config.keypair.signing_key().clone()),
            network_key: args.config.network_key,
            dir: args.config.dir,
            rng: ChaCha8Rng::seed_from_u64(args.config.seed ^ 0x0068_7562),
            _listener: listener,
            _ticker: ticker,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<HubMsg>,
        message: HubMsg,
        state: &mut HubState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            HubMsg::Accepted { stream } => state.accepted(&myself, stream),
            HubMsg::Authorize { key, token, reply } => {
                let (admitted, save) = state.machine.admit(key, token);
                if let Some(save) = save {
                    state.apply(None, vec![save]);
                }
                tracing::debug!(target: "ppppp::hub", %key, admitted, "handshake");
                let _ = reply.send(admitted);
            }
            HubMsg::Established { link, stream, key } => {
                state.established(&myself, link, stream, key)
            }
            HubMsg::HandshakeFailed { link, reason } => {
                tracing::debug!(target: "ppppp::hub", %reason, "handshake failed");
                state.links.remove(&link);
            }
            HubMsg::Frames {
                link,
                frames,
                reply,
            } => {
                let outputs = state.input(HubInput::Frames { link, frames });
                if let Some(io) = state.links.get_mut(&link) {
                    io.credit = Some(reply);
                }
                state.apply(Some(link), outputs);
            }
            HubMsg::Written { link, bytes } => {
                let outputs = state.input(HubInput::Written { link, bytes });
                state.apply(None, outputs);
            }
            HubMsg::Ended { link, error } => {
                if let Some(error) = error {
                    tracing::debug!(target: "ppppp::hub", %error, "connection ended");
                }
                state.links.remove(&link);
                let outputs = state.input(HubInput::Closed { link });
                state.apply(None, outputs);
            }
            HubMsg::Tick => {
                let outputs = state.input(HubInput::Tick);
                state.apply(None, outputs);
            }
            HubMsg::Status { reply } => {
                let _ = reply.send(HubStatus {
                    attendants: state.machine.attendants(),
                    links: state.machine.links(),
                    tunnels: state.machine.tunnels(),
                    members: state.machine.members(),
                });
            }
        }
        Ok(())
    }
}

async fn accept_loop(hub: ActorRef<HubMsg>, mut listener: Box<dyn Listener>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                if hub.cast(HubMsg::Accepted { stream }).is_err() {
                    return;
                }
            }
            Err(error) => {
                tracing::warn!(target: "ppppp::hub", %error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handshake(
    hub: ActorRef<HubMsg>,
    link: LinkId,
    stream: BoxStream,
    config: shse::io::Config,
    mut rng: ChaCha8Rng,
) {
    let asker = hub.clone();
    let authorize = move |remote: shse::Remote| async move {
        let asked = asker
            .call(
                |reply| HubMsg::Authorize {
                    key: remote.key,
                    token: remote.token,
                    reply,
                },
                None,
            )
            .await;
        matches!(asked, Ok(ractor::rpc::CallResult::Success(true)))
    };
    let message = match shse::io::accept(stream, &config, &mut rng, authorize).await {
        Ok((secured, remote)) => HubMsg::Established {
            link,
            stream: Box::new(secured),
            key: remote.key,
        },
        Err(error) => HubMsg::HandshakeFailed {
            link,
            reason: error.to_string(),
        },
    };
    let _ = hub.cast(message);
}

impl LinkIo {
    /// Stops reading at once; lets the writer deliver what is queued, for a moment.
    fn close(mut self) {
        self.writer = None;
        if let Some(credit) = self.credit.take() {
            let _ = credit.send(false);
        }
        if let Some(writer_task) = self.writer_task.take() {
            tokio::spawn(async move {
                tokio::time::sleep(CLOSE_GRACE).await;
                drop(writer_task);
            });
        }
    }
}

impl HubState {
    fn input(&mut self, input: HubInput) -> Vec<HubOutput> {
        self.machine.handle(self.started.elapsed(), input)
    }

    fn accepted(&mut self, myself: &ActorRef<HubMsg>, stream: BoxStream) {
        if self.links.len() >= HUB_LINKS_MAX {
            tracing::debug!(target: "ppppp::hub", "refused: connection limit");
            return;
        }
        let link = LinkId(self.next_link);
        self.next_link += 1;
        let config = shse::io::Config {
            network_key: self.network_key,
            identity: self.identity.clone(),
            timeout: HUB_HANDSHAKE_TIMEOUT,
        };
        let rng = ChaCha8Rng::seed_from_u64(self.rng.next_u64());
        let task = tokio::spawn(handshake(myself.clone(), link, stream, config, rng));
        self.links.insert(
            link,
            LinkIo {
                writer: None,
                task: AbortOnDrop(task),
                writer_task: None,
                credit: None,
                paused: false,
            },
        );
    }

    fn established(
        &mut self,
        myself: &ActorRef<HubMsg>,
        link: LinkId,
        stream: BoxStream,
        key: PublicKey,
    ) {
        let Some(io) = self.links.get_mut(&link) else {
            return;
        };
        let (reader, writer) = tokio::io::split(stream);
        let (sender, receiver) = mpsc::channel(LINK_WRITE_BATCHES_MAX);
        io.writer = Some(sender);
        let hub = myself.clone();
        io.writer_task = Some(AbortOnDrop(tokio::spawn(async move {
            let reports = hub.clone();
            let error = write_batches(writer, receiver, move |bytes| {
                let _ = reports.cast(HubMsg::Written { link, bytes });
            })
            .await;
            if error.is_some() {
                let _ = hub.cast(HubMsg::Ended { link, error });
            }
        })));
        let hub = myself.clone();
        io.task = AbortOnDrop(tokio::spawn(async move {
            let deliver = |frames| {
                let hub = hub.clone();
                async move {
                    let asked = hub
                        .call(
                            |reply| HubMsg::Frames {
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
            let _ = hub.cast(HubMsg::Ended { link, error });
        }));
        let outputs = self.input(HubInput::Opened { link, key });
        self.apply(None, outputs);
    }

    /// Applies outputs in order; `reading` is the link whose frames were just handled (its
    /// credit is given back unless the machine paused it).
    fn apply(&mut self, reading: Option<LinkId>, outputs: Vec<HubOutput>) {
        let mut closed = Vec::new();
        for output in outputs {
            match output {
                HubOutput::SaveAdmission { members, tokens } => self.save(&members, &tokens),
                HubOutput::Write { link, bytes } => {
                    let Some(writer) = self.links.get(&link).and_then(|io| io.writer.as_ref())
                    else {
                        continue;
                    };
                    if writer.try_send(bytes).is_err() {
                        tracing::debug!(target: "ppppp::hub", "a peer does not read; closing");
                        closed.push(link);
                    }
                }
                HubOutput::Pause { link } => {
                    if let Some(io) = self.links.get_mut(&link) {
                        io.paused = true;
                    }
                }
                HubOutput::Resume { link } => {
                    if let Some(io) = self.links.get_mut(&link) {
                        io.paused = false;
                        if let Some(credit) = io.credit.take() {
                            let _ = credit.send(true);
                        }
                    }
                }
                HubOutput::Close { link, reason } => {
                    tracing::debug!(target: "ppppp::hub", %reason, "closing a connection");
                    // Dropping the writer's queue lets it write what is queued, then end.
                    if let Some(io) = self.links.remove(&link) {
                        io.close();
                    }
                }
            }
        }
        if let Some(link) = reading
            && let Some(io) = self.links.get_mut(&link)
            && !io.paused
            && let Some(credit) = io.credit.take()
        {
            let _ = credit.send(true);
        }
        for link in closed {
            self.links.remove(&link);
            let outputs = self.input(HubInput::Closed { link });
            self.apply(None, outputs);
        }
    }

    fn save(&self, members: &str, tokens: &str) {
        let Some(dir) = &self.dir else {
            return;
        };
        for (name, text) in [("members.json", members), ("tokens.json", tokens)] {
            if let Err(error) = crate::durable::write_atomically(&dir.join(name), text.as_bytes()) {
                tracing::error!(target: "ppppp::hub", %error, file = name, "cannot save membership");
            }
        }
    }
}
