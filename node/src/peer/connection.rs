//! One connection: handshake, then muxrpc over the (secured) stream, carrying the
//! sync duplex stream (pzp-sync's `sync.connect`, or `sync.reconcile` between two ppppp
//! peers, negotiated as `super::reconcile` says) and `net.ping` keepalives.
//!
//! Bounds, because ractor mailboxes are not:
//! - reads are *credit-based*: the reader task reads at most `Limits::read_chunk_bytes_max`
//!   (asking for 4 KiB first and more only while reads fill what it asked for, into a buffer
//!   that exists only while a read is polled),
//!   hands the decoded frames to this actor with a `call`, and reads again only when the
//!   actor (and the sync actor behind it) has handled them;
//! - writes go through a channel of `Limits::outbound_frames_max` batches and at most
//!   `Limits::outbound_bytes_max` bytes to a writer task; when either is full the peer is not
//!   reading and is disconnected (`SlowReader`). A batch into an empty queue always goes;
//! - one frame body is at most `FRAME_BODY_LEN_MAX` (the decoder refuses bigger ones from the
//!   header alone), and the muxrpc machine bounds open calls.

use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Poll, ready};
use std::time::Duration;

use proto::ids::PubKey;
use proto::keys::Keypair;
use proto::liveness::{self, Liveness};
use proto::sync::Time;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::app::{APP_CALLS_PER_CONNECTION_MAX, AppMethods, AppReply, AppRequest};
use super::config::{Limits, Timers, Transport};
use super::events::{DisconnectReason, HandshakeFailure, NodeEvent, Remote, Traffic};
use super::msgs::{AppCall, ConnMsg, OutgoingSync, SyncActorMsg, SyncObject};
use super::peers::ConnStats;
use super::reconcile::{RECONCILE_ACCEPT, SYNC_RECONCILE, SharedReconcilePeers, SyncMethod};
use super::{AbortOnDrop, ConnId, Emitter};
use crate::net::BoxStream;
use crate::transport::PublicKey;
use crate::transport::muxrpc::codec::{Decoder, Frame, HEADER_LEN};
use crate::transport::muxrpc::perms::Permissions;
use crate::transport::muxrpc::rpc::{Body, CallId, CallType, ErrorBody, Event, Rpc, echo};
use crate::transport::ping::{PingResponder, is_net_ping};
use crate::transport::shse::{self, Identity};

/// The method path of the sync stream.
const SYNC_CONNECT: [&str; 2] = ["sync", "connect"];

/// How long a closing connection waits for its last bytes (GOODBYE) to be written.
const CLOSE_GRACE: Duration = Duration::from_millis(200);

/// Bytes of the SHSE handshake each side sends: 64 + 144 (client) or 64 + 80 (server).
const HANDSHAKE_BYTES_CLIENT: u64 = 64 + 144;
const HANDSHAKE_BYTES_SERVER: u64 = 64 + 80;

/// A connection's reads ask for this many bytes first and twice as many each time a read
/// fills what it asked for, up to `Limits::read_chunk_bytes_max`. The buffer is made for each
/// poll of a read and freed when the read is pending, so a connection waiting for bytes holds
/// none (with a 64 KiB buffer kept per connection end, swarm-100's 3,498 held 229 MB).
const READ_CHUNK_BYTES_FIRST: usize = 4 * 1024;

/// The connection actor.
pub(crate) struct ConnectionActor;

/// What every connection of a node is made with: the connection manager holds one and
/// hands each connection a clone.
#[derive(Clone)]
pub(crate) struct ConnContext {
    pub(crate) transport: Transport,
    pub(crate) keypair: Keypair,
    pub(crate) sync: ActorRef<SyncActorMsg>,
    pub(crate) limits: Limits,
    pub(crate) timers: Timers,
    pub(crate) events: Emitter,
    /// The app's methods (`NodeConfig::app`).
    pub(crate) app: Option<AppMethods>,
    /// The node's record of `sync.reconcile` (`super::reconcile`).
    pub(crate) reconcile: SharedReconcilePeers,
}

/// What a connection starts from.
pub(crate) struct ConnArgs {
    pub(crate) conn: ConnId,
    pub(crate) stream: BoxStream,
    pub(crate) outbound: bool,
    /// The address it was dialed at or accepted from.
    pub(crate) address: String,
    /// The key the dialed peer must prove (outbound SHSE).
    pub(crate) expected_key: Option<PubKey>,
    pub(crate) context: ConnContext,
    pub(crate) rng: ChaCha8Rng,
    /// Counters the connection manager reports (`NodeHandle::peers`).
    pub(crate) stats: Arc<ConnStats>,
    /// Told the remote once the handshake succeeds (the connection manager's admission).
    pub(crate) on_established: Box<dyn Fn(Remote) + Send>,
}

enum Phase {
    Handshaking,
    Open,
    Closed,
}

pub(crate) struct ConnState {
    conn: ConnId,
    on_established: Box<dyn Fn(Remote) + Send>,
    outbound: bool,
    remote: Remote,
    phase: Phase,
    context: ConnContext,
    rpc: Rpc,
    sync_call: Option<CallId>,
    /// Which method `sync_call` is.
    sync_method: SyncMethod,
    /// Our `sync.reconcile` call awaits the remote's acceptance (or refusal); the sync actor
    /// is told of the stream once it is accepted.
    probing: bool,
    ping_call: Option<CallId>,
    ping_inbound: Option<CallId>,
    ping_responder: PingResponder,
    /// Remote requests for app methods not answered yet.
    app_inbound: usize,
    /// Our app calls waiting for the remote's answer.
    app_outbound: BTreeMap<CallId, tokio::sync::oneshot::Sender<Result<Value, String>>>,
    writer: Option<mpsc::Sender<Vec<u8>>>,
    /// The writer; on close it gets `CLOSE_GRACE` to deliver GOODBYE, then is aborted.
    writer_task: Option<AbortOnDrop>,
    /// Bytes handed to the writer and not yet written (the writer subtracts what it wrote).
    queued_bytes: Arc<AtomicUsize>,
    tasks: Vec<AbortOnDrop>,
    ticker: Option<AbortOnDrop>,
    /// Batches handed to the sync actor and not yet handled, oldest first: at most
    /// `Limits::sync_batches_ahead` once the reader's credit is given.
    sync_pending: VecDeque<tokio::sync::oneshot::Receiver<()>>,
    /// When to ping and when to give up (`proto::liveness`, shared with the protocol tier),
    /// on a clock of milliseconds since `started`.
    liveness: Liveness,
    started: Instant,
    stats: Arc<ConnStats>,
}

impl Actor for ConnectionActor {
    type Msg = ConnMsg;
    type State = ConnState;
    type Arguments = ConnArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ConnMsg>,
        args: ConnArgs,
    ) -> Result<ConnState, ActorProcessingErr> {
        let remote = Remote::Address(args.address.clone());
        let handshake = tokio::spawn(handshake(
            myself,
            args.stream,
            args.outbound,
            args.address,
            args.expected_key,
            args.context.transport,
            args.context.keypair.clone(),
            args.context.timers,
            args.rng,
        ));
        // Time 0 is `started`: the connection's clock starts with the actor.
        let liveness = Liveness::new(Time(0), args.context.timers.liveness());
        Ok(ConnState {
            conn: args.conn,
            outbound: args.outbound,
            remote,
            phase: Phase::Handshaking,
            context: args.context,
            rpc: Rpc::new(Permissions::anonymous()),
            sync_call: None,
            sync_method: SyncMethod::Connect,
            probing: false,
            ping_call: None,
            ping_inbound: None,
            ping_responder: PingResponder::default(),
            app_inbound: 0,
            app_outbound: BTreeMap::new(),
            writer: None,
            queued_bytes: Arc::new(AtomicUsize::new(0)),
            writer_task: None,
            tasks: vec![AbortOnDrop(handshake)],
            ticker: None,
            sync_pending: VecDeque::new(),
            liveness,
            started: Instant::now(),
            stats: args.stats,
            on_established: args.on_established,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ConnMsg>,
        message: ConnMsg,
        state: &mut ConnState,
    ) -> Result<(), ActorProcessingErr> {
        if matches!(state.phase, Phase::Closed) {
            // Late messages after close: release a waiting reader, drop the rest.
            if let ConnMsg::Frames { reply, .. } = message {
                drop(reply);
            }
            return Ok(());
        }
        match message {
            ConnMsg::Established { stream, remote } => state.established(&myself, stream, remote),
            ConnMsg::HandshakeFailed(reason) => {
                tracing::debug!(target: "ppppp::conn", %reason, "handshake failed");
                state.stats.closed(format!("handshake failed: {reason}"));
                // A dial that never became a connection: for an outbound connection this is
                // a failed dial (the manager redials after its backoff).
                let event = match (&state.remote, state.outbound) {
                    (Remote::Address(address), true) => NodeEvent::DialFailed {
                        address: address.clone(),
                        reason: format!("handshake failed: {reason}"),
                    },
                    _ => NodeEvent::Disconnected {
                        remote: state.remote.clone(),
                        reason: DisconnectReason::Handshake(reason),
                    },
                };
                state.context.events.emit(event);
                state.phase = Phase::Closed;
                myself.stop(None);
            }
            ConnMsg::Frames { frames, reply } => {
                let result = state.frames(&myself, frames).await;
                let _ = reply.send(());
                if let Err(reason) = result {
                    state.close(&myself, reason).await;
                }
            }
            ConnMsg::ReaderEnded(None) => {
                state.close(&myself, DisconnectReason::RemoteClosed).await
            }
            ConnMsg::ReaderEnded(Some(error)) => {
                state.close(&myself, DisconnectReason::Io(error)).await
            }
            ConnMsg::WriterFailed(error) => state.close(&myself, DisconnectReason::Io(error)).await,
            ConnMsg::SendSync(items) => {
                let sent = state.send_sync(items);
                state.close_on_error(&myself, sent).await;
            }
            ConnMsg::Tick => {
                let ticked = state.tick();
                state.close_on_error(&myself, ticked).await;
            }
            ConnMsg::Close(reason) => state.close(&myself, reason).await,
            ConnMsg::Useful => state.stats.mark_useful(),
            ConnMsg::AppResponse { id, result } => {
                let sent = state.app_response(id, result);
                state.close_on_error(&myself, sent).await;
            }
            ConnMsg::AppCall(call) => {
                let sent = state.app_call(call);
                state.close_on_error(&myself, sent).await;
            }
        }
        Ok(())
    }
}

/// Runs the handshake (none for plaintext) and reports to the actor.
#[expect(clippy::too_many_arguments, reason = "moved into one task")]
async fn handshake(
    actor: ActorRef<ConnMsg>,
    stream: BoxStream,
    outbound: bool,
    address: String,
    expected_key: Option<PubKey>,
    transport: Transport,
    keypair: Keypair,
    timers: Timers,
    mut rng: ChaCha8Rng,
) {
    let result: Result<(BoxStream, Remote), HandshakeFailure> = match transport {
        Transport::Plaintext => Ok((stream, Remote::Address(address))),
        Transport::Shse(network_key) => {
            let config = shse::io::Config {
                network_key,
                identity: Identity::from_signing_key(keypair.signing_key().clone()),
                timeout: timers.handshake_timeout,
            };
            if outbound {
                match expected_key {
                    None => Err(HandshakeFailure::NoKeyToDial),
                    Some(key) => {
                        shse::io::connect(stream, &config, PublicKey::from(&key), None, &mut rng)
                            .await
                            .map(|(secured, remote)| {
                                (
                                    Box::new(secured) as BoxStream,
                                    Remote::Key(PubKey::from(remote.key)),
                                )
                            })
                            .map_err(HandshakeFailure::from)
                    }
                }
            } else {
                shse::io::accept(stream, &config, &mut rng, |_remote| async { true })
                    .await
                    .map(|(secured, remote)| {
                        (
                            Box::new(secured) as BoxStream,
                            Remote::Key(PubKey::from(remote.key)),
                        )
                    })
                    .map_err(HandshakeFailure::from)
            }
        }
    };
    let _ = match result {
        Ok((stream, remote)) => actor.cast(ConnMsg::Established { stream, remote }),
        Err(reason) => actor.cast(ConnMsg::HandshakeFailed(reason)),
    };
}

/// Reads the socket in bounded chunks, decodes frames, and hands them to the actor, waiting
/// for its credit before reading again.
async fn read_loop(
    actor: ActorRef<ConnMsg>,
    mut reader: tokio::io::ReadHalf<BoxStream>,
    chunk_bytes_max: usize,
    stats: Arc<ConnStats>,
) {
    let mut decoder = Decoder::new();
    let chunk_bytes_max = chunk_bytes_max.max(HEADER_LEN);
    let mut chunk_bytes = READ_CHUNK_BYTES_FIRST.clamp(HEADER_LEN, chunk_bytes_max);
    loop {
        let read = match read_into(&mut reader, &mut decoder, chunk_bytes).await {
            Ok(read) => read,
            Err(error) => {
                let _ = actor.cast(ConnMsg::ReaderEnded(Some(error.to_string())));
                return;
            }
        };
        stats.received(read);
        chunk_bytes = grown_when_filled(chunk_bytes, read, chunk_bytes_max);
        if read == 0 {
            let ending = match decoder.buffered_len() {
                0 => None,
                buffered => Some(format!(
                    "stream ended inside a frame ({buffered} bytes buffered)"
                )),
            };
            let _ = actor.cast(ConnMsg::ReaderEnded(ending));
            return;
        }
        let mut frames = Vec::new();
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(error) => {
                    let _ = actor.cast(ConnMsg::ReaderEnded(Some(error.to_string())));
                    return;
                }
            }
        }
        if frames.is_empty() {
            continue;
        }
        let finished = decoder.is_finished();
        match actor
            .call(|reply| ConnMsg::Frames { frames, reply }, None)
            .await
        {
            Ok(ractor::rpc::CallResult::Success(())) if !finished => {}
            _ => return,
        }
    }
}

/// Reads at most `chunk_bytes` and pushes them to `decoder`; returns how many came (0 at the
/// end of the stream). The buffer is made for each poll and dropped with it, so a pending
/// read holds no memory; uninitialized, so nothing is zeroed.
async fn read_into<R: AsyncRead + Unpin>(
    reader: &mut R,
    decoder: &mut Decoder,
    chunk_bytes: usize,
) -> std::io::Result<usize> {
    std::future::poll_fn(|cx| {
        let mut buffer = Vec::with_capacity(chunk_bytes);
        let mut read = ReadBuf::uninit(buffer.spare_capacity_mut());
        ready!(Pin::new(&mut *reader).poll_read(cx, &mut read))?;
        decoder.push(read.filled());
        Poll::Ready(Ok(read.filled().len()))
    })
    .await
}

/// The next read's size: twice `chunk_bytes` (up to `chunk_bytes_max`) when a read filled
/// it, as more may be waiting; else unchanged.
fn grown_when_filled(chunk_bytes: usize, read: usize, chunk_bytes_max: usize) -> usize {
    if read == chunk_bytes && chunk_bytes < chunk_bytes_max {
        chunk_bytes.saturating_mul(2).min(chunk_bytes_max)
    } else {
        chunk_bytes
    }
}

/// Writes batches from the bounded channel; flushes after each (secretstream buffers), then
/// takes the batch's bytes off `queued_bytes`.
async fn write_loop(
    actor: ActorRef<ConnMsg>,
    mut writer: tokio::io::WriteHalf<BoxStream>,
    mut batches: mpsc::Receiver<Vec<u8>>,
    stats: Arc<ConnStats>,
    queued_bytes: Arc<AtomicUsize>,
) {
    while let Some(batch) = batches.recv().await {
        stats.sent(batch.len());
        let written = async {
            writer.write_all(&batch).await?;
            writer.flush().await
        };
        if let Err(error) = written.await {
            let _ = actor.cast(ConnMsg::WriterFailed(error.to_string()));
            return;
        }
        queued_bytes.fetch_sub(batch.len(), Ordering::Relaxed);
    }
    let _ = writer.shutdown().await;
}

impl ConnState {
    fn established(&mut self, myself: &ActorRef<ConnMsg>, stream: BoxStream, remote: Remote) {
        self.stats.established(remote.clone());
        (self.on_established)(remote.clone());
        self.remote = remote;
        self.phase = Phase::Open;
        self.liveness.handle(self.now(), liveness::Event::Received);
        if let Transport::Shse(_) = self.context.transport {
            let bytes = if self.outbound {
                HANDSHAKE_BYTES_CLIENT
            } else {
                HANDSHAKE_BYTES_SERVER
            };
            self.context.events.emit(NodeEvent::Sent {
                to: self.remote.clone(),
                traffic: Traffic::Handshake,
                bytes,
            });
        }
        self.context.events.emit(NodeEvent::Connected {
            remote: self.remote.clone(),
            outbound: self.outbound,
        });
        // The handshake task's last act was sending the message that got us here, so it is
        // done; but a finished task's memory (the size of the whole handshake future, about
        // 4 KiB) is freed only with its handle, which would otherwise live as long as the
        // connection.
        self.tasks.clear();
        let (reader, writer) = tokio::io::split(stream);
        let (sender, receiver) = mpsc::channel(self.context.limits.outbound_frames_max.max(1));
        self.writer = Some(sender);
        self.writer_task = Some(AbortOnDrop(tokio::spawn(write_loop(
            myself.clone(),
            writer,
            receiver,
            Arc::clone(&self.stats),
            Arc::clone(&self.queued_bytes),
        ))));
        self.tasks.push(AbortOnDrop(tokio::spawn(read_loop(
            myself.clone(),
            reader,
            self.context.limits.read_chunk_bytes_max,
            Arc::clone(&self.stats),
        ))));
        self.ticker = Some(AbortOnDrop(
            myself.send_interval(self.context.timers.keepalive_interval, || ConnMsg::Tick),
        ));
        if self.outbound {
            let method = self.context.reconcile.lock().dial(&self.remote);
            self.call_sync(myself, method);
            self.ping_call = self.rpc.call(&["net", "ping"], &[], CallType::Duplex).ok();
        }
        // Nothing to close on failure here: a full queue on the first batch is impossible.
        let _ = self.transmit(Traffic::SyncControl);
    }

    /// Dialer: calls the sync stream by `method`. `sync.connect` opens at once;
    /// `sync.reconcile` waits for the remote's acceptance ([`Self::probe_answered`]).
    fn call_sync(&mut self, myself: &ActorRef<ConnMsg>, method: SyncMethod) {
        let name = match method {
            SyncMethod::Connect => SYNC_CONNECT,
            SyncMethod::Reconcile => SYNC_RECONCILE,
        };
        match self.rpc.call(&name, &[], CallType::Duplex) {
            Ok(id) => {
                self.sync_call = Some(id);
                self.sync_method = method;
                self.probing = method == SyncMethod::Reconcile;
                if !self.probing {
                    self.open_sync(myself);
                }
            }
            Err(error) => {
                if method == SyncMethod::Reconcile {
                    self.context.reconcile.lock().ended();
                }
                tracing::warn!(target: "ppppp::conn", %error, ?method, "cannot open the sync stream");
            }
        }
    }

    /// Tells the sync actor the stream is open.
    fn open_sync(&self, myself: &ActorRef<ConnMsg>) {
        let _ = self.context.sync.cast(SyncActorMsg::Opened {
            conn: self.conn,
            outbound: self.outbound,
            remote: self.remote.clone(),
            connection: myself.clone(),
            method: self.sync_method,
        });
    }

    /// Dialer, probing: the remote's first data on `sync.reconcile` is its acceptance.
    fn probe_answered(&mut self, myself: &ActorRef<ConnMsg>, object: &Value) {
        self.probing = false;
        let accepted = serde_json::from_str::<Value>(RECONCILE_ACCEPT).ok();
        if accepted.as_ref() != Some(object) {
            tracing::debug!(target: "ppppp::conn", %object, "sync.reconcile answered without its acceptance");
        }
        self.open_sync(myself);
    }

    /// Dialer, probing: the remote refused `sync.reconcile` (a JS peer, or a ppppp peer past
    /// `RECONCILE_PEERS_MAX`): remember it and call `sync.connect` on this connection.
    fn probe_refused(&mut self, myself: &ActorRef<ConnMsg>, id: CallId) {
        self.probing = false;
        self.sync_call = None;
        let _ = self.rpc.end(id, None);
        self.context.reconcile.lock().refused(&self.remote);
        self.call_sync(myself, SyncMethod::Connect);
    }

    /// The sync stream ended: tell the sync actor (if it was told it opened) and free a
    /// `sync.reconcile` place.
    fn sync_ended(&mut self) {
        if self.sync_call.take().is_none() {
            return;
        }
        if !std::mem::take(&mut self.probing) {
            let _ = self
                .context
                .sync
                .cast(SyncActorMsg::Closed { conn: self.conn });
        }
        if self.sync_method == SyncMethod::Reconcile {
            self.context.reconcile.lock().ended();
        }
    }

    /// Handles frames from the socket; sync objects go to the sync actor (awaited: that is
    /// the backpressure).
    async fn frames(
        &mut self,
        myself: &ActorRef<ConnMsg>,
        frames: Vec<Frame>,
    ) -> Result<(), DisconnectReason> {
        self.liveness.handle(self.now(), liveness::Event::Received);
        for frame in frames {
            self.rpc
                .handle_frame(frame)
                .map_err(DisconnectReason::Rpc)?;
        }
        let mut objects: Vec<SyncObject> = Vec::new();
        let mut goodbye = false;
        while let Some(event) = self.rpc.poll_event() {
            match event {
                Event::Request {
                    id,
                    name,
                    args,
                    call_type,
                } => self.request(myself, id, name, args, call_type),
                Event::Data { id, body } => self.data(myself, id, &body, &mut objects)?,
                Event::End { id, error } => self.stream_ended(myself, id, error.as_ref()),
                Event::Response { id, result } => self.app_answered(id, result),
                Event::Goodbye => goodbye = true,
            }
        }
        if !objects.is_empty() {
            self.hand_to_sync(objects).await?;
        }
        self.transmit(Traffic::SyncControl)?;
        if goodbye {
            return Err(DisconnectReason::RemoteClosed);
        }
        Ok(())
    }

    /// Hands sync objects to the sync actor, then waits until at most
    /// `Limits::sync_batches_ahead` batches are unhandled (none by default: the reader's
    /// credit then waits for this batch, and the commit behind it). The sync actor handles
    /// the batches in the order they were sent, whatever the wait.
    async fn hand_to_sync(&mut self, objects: Vec<SyncObject>) -> Result<(), DisconnectReason> {
        let (reply, handled) = tokio::sync::oneshot::channel();
        let received = SyncActorMsg::Received {
            conn: self.conn,
            objects,
            reply: reply.into(),
        };
        if self.context.sync.cast(received).is_err() {
            return Err(DisconnectReason::Shutdown);
        }
        self.sync_pending.push_back(handled);
        while self.sync_pending.len() > self.context.limits.sync_batches_ahead {
            let Some(oldest) = self.sync_pending.pop_front() else {
                break;
            };
            if oldest.await.is_err() {
                return Err(DisconnectReason::Shutdown);
            }
        }
        Ok(())
    }

    /// A data frame on one of this connection's streams: a sync object (collected in
    /// `objects`, or the probe's answer) or an inbound ping.
    fn data(
        &mut self,
        myself: &ActorRef<ConnMsg>,
        id: CallId,
        body: &Body,
        objects: &mut Vec<SyncObject>,
    ) -> Result<(), DisconnectReason> {
        if Some(id) == self.sync_call {
            let decoded = if self.probing {
                body.parse_json::<Value>()
                    .map(|object| self.probe_answered(myself, &object))
            } else {
                SyncObject::decode_body(self.sync_method, body).map(|object| objects.push(object))
            };
            if let Err(error) = decoded {
                tracing::debug!(target: "ppppp::conn", %error, "sync data is not JSON");
            }
        } else if Some(id) == self.ping_inbound {
            let now_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            if let Some(pong) = self.ping_responder.on_data(now_ms) {
                let _ = self.rpc.send(id, pong);
                // Sent now so its bytes count as keepalive, not as the sync traffic
                // transmitted after these frames.
                self.transmit(Traffic::Keepalive)?;
            }
        }
        Ok(())
    }

    /// The remote ended one of this connection's streams.
    fn stream_ended(&mut self, myself: &ActorRef<ConnMsg>, id: CallId, error: Option<&ErrorBody>) {
        if Some(id) == self.sync_call && self.probing {
            self.probe_refused(myself, id);
        } else if Some(id) == self.sync_call {
            self.sync_ended();
            let _ = self.rpc.end(id, None);
            if let Some(error) = error {
                tracing::debug!(target: "ppppp::conn", message = %error.message, "sync stream ended with an error");
            }
        } else if Some(id) == self.ping_call {
            // The peer has no net.ping (a JS peer without pzp-net): rely on traffic.
            self.ping_call = None;
        } else if Some(id) == self.ping_inbound {
            self.ping_inbound = None;
            let _ = self.rpc.end(id, None);
        }
    }

    fn request(
        &mut self,
        myself: &ActorRef<ConnMsg>,
        id: CallId,
        name: Vec<String>,
        args: Vec<Value>,
        call_type: CallType,
    ) {
        let serves_app = self
            .context
            .app
            .as_ref()
            .is_some_and(|app| app.serves(&name));
        if serves_app && call_type == CallType::Async {
            self.app_request(myself, id, name, args);
            return;
        }
        let name = &name[..];
        let is_method =
            |method: [&str; 2]| name.len() == 2 && name.iter().zip(method).all(|(a, b)| a == b);
        let duplex = call_type == CallType::Duplex && self.sync_call.is_none();
        if is_method(SYNC_CONNECT) && duplex {
            self.sync_call = Some(id);
            self.sync_method = SyncMethod::Connect;
            self.open_sync(myself);
        } else if is_method(SYNC_RECONCILE) && duplex && self.context.reconcile.lock().accept() {
            self.sync_call = Some(id);
            self.sync_method = SyncMethod::Reconcile;
            if let Err(error) = self
                .rpc
                .send(id, Body::Json(RECONCILE_ACCEPT.as_bytes().to_vec()))
            {
                tracing::debug!(target: "ppppp::conn", %error, "sync.reconcile not accepted");
            }
            self.open_sync(myself);
        } else if is_net_ping(name) && call_type == CallType::Duplex && self.ping_inbound.is_none()
        {
            self.ping_inbound = Some(id);
        } else {
            let error = ErrorBody::new(format!(
                "method:{} is not in list of allowed methods",
                echo(&name.join(","))
            ));
            let refused = if call_type.is_stream() {
                self.rpc.end(id, Some(error))
            } else {
                self.rpc.respond(id, Err(error))
            };
            if let Err(error) = refused {
                tracing::debug!(target: "ppppp::conn", %error, "could not refuse a call");
            }
        }
    }

    fn send_sync(&mut self, items: Vec<OutgoingSync>) -> Result<(), DisconnectReason> {
        let Some(call) = self.sync_call else {
            return Ok(());
        };
        let (mut msgs, mut blooms, mut control) = (0u64, 0u64, 0u64);
        for item in items {
            let total = item.json.len();
            if let Err(error) = self.rpc.send(call, Body::Json(item.json.into_bytes())) {
                tracing::debug!(target: "ppppp::conn", %error, "sync object not sent");
                continue;
            }
            msgs += item.msg_bytes as u64;
            blooms += item.bloom_bytes as u64;
            control += (total - item.msg_bytes.min(total) - item.bloom_bytes.min(total)) as u64
                + HEADER_LEN as u64;
        }
        if msgs > 0 {
            self.stats.mark_useful();
        }
        if self.context.events.is_on() {
            for (traffic, bytes) in [
                (Traffic::Msgs, msgs),
                (Traffic::Bloom, blooms),
                (Traffic::SyncControl, control),
            ] {
                if bytes > 0 {
                    self.context.events.emit(NodeEvent::Sent {
                        to: self.remote.clone(),
                        traffic,
                        bytes,
                    });
                }
            }
        }
        self.transmit_uncounted()
    }

    /// The connection's clock for [`Liveness`]: milliseconds since the actor started.
    fn now(&self) -> Time {
        Time(u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn tick(&mut self) -> Result<(), DisconnectReason> {
        if !matches!(self.phase, Phase::Open) {
            return Ok(());
        }
        // The machine skips the ping when traffic flowed both ways within the interval (a
        // second of simulated keepalive cost 342 bytes per delivery on quickstart).
        match self.liveness.handle(self.now(), liveness::Event::Tick) {
            None => return Ok(()),
            Some(liveness::Action::CloseIdle) => return Err(DisconnectReason::Idle),
            Some(liveness::Action::Ping) => {}
        }
        // Only the dialer holds a `net.ping` call; the answering end has nothing to send.
        if let Some(ping) = self.ping_call {
            let Time(now_ms) = self.now();
            if self
                .rpc
                .send(ping, Body::Json(now_ms.to_string().into_bytes()))
                .is_ok()
            {
                return self.transmit(Traffic::Keepalive);
            }
        }
        Ok(())
    }

    /// Hands queued frames to the writer, accounting them as `traffic`.
    fn transmit(&mut self, traffic: Traffic) -> Result<(), DisconnectReason> {
        let mut batch = Vec::new();
        self.rpc.encode_transmit(&mut batch);
        if batch.is_empty() {
            return Ok(());
        }
        self.context.events.emit(NodeEvent::Sent {
            to: self.remote.clone(),
            traffic,
            bytes: batch.len() as u64,
        });
        self.push(batch)
    }

    /// Hands queued frames to the writer, already accounted.
    fn transmit_uncounted(&mut self) -> Result<(), DisconnectReason> {
        let mut batch = Vec::new();
        self.rpc.encode_transmit(&mut batch);
        if batch.is_empty() {
            return Ok(());
        }
        self.push(batch)
    }

    /// Queues a batch for the writer within `Limits::outbound_frames_max` batches and
    /// `Limits::outbound_bytes_max` bytes (one batch into an empty queue always fits).
    fn push(&mut self, batch: Vec<u8>) -> Result<(), DisconnectReason> {
        let Some(writer) = &self.writer else {
            return Ok(());
        };
        let len = batch.len();
        let queued = self.queued_bytes.load(Ordering::Relaxed);
        if queued > 0 && queued.saturating_add(len) > self.context.limits.outbound_bytes_max {
            return Err(DisconnectReason::SlowReader);
        }
        self.queued_bytes.fetch_add(len, Ordering::Relaxed);
        match writer.try_send(batch) {
            Ok(()) => {
                self.liveness.handle(self.now(), liveness::Event::Sent);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => Err(DisconnectReason::SlowReader),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Err(DisconnectReason::Io("writer gone".to_owned()))
            }
        }
    }

    async fn close(&mut self, myself: &ActorRef<ConnMsg>, reason: DisconnectReason) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        let was_open = matches!(self.phase, Phase::Open);
        self.phase = Phase::Closed;
        self.stats.closed(reason.to_string());
        tracing::debug!(target: "ppppp::conn", remote = %self.remote, ?reason, "closing");
        self.sync_ended();
        for (_, caller) in std::mem::take(&mut self.app_outbound) {
            let _ = caller.send(Err(format!("the connection closed: {reason}")));
        }
        if was_open && !matches!(reason, DisconnectReason::SlowReader) {
            // Tell the peer (GOODBYE) and give the writer a moment to deliver it.
            self.rpc.abort();
            let _ = self.transmit_uncounted();
        }
        self.writer = None;
        if let Some(mut writer_task) = self.writer_task.take() {
            // Past the grace, dropping the guard aborts the writer.
            let _ = tokio::time::timeout(CLOSE_GRACE, &mut writer_task.0).await;
        }
        self.context.events.emit(NodeEvent::Disconnected {
            remote: self.remote.clone(),
            reason,
        });
        self.tasks.clear();
        self.ticker = None;
        myself.stop(None);
    }
}

/// App methods (see `app.rs`): requests the remote makes of the app, calls the app makes.
impl ConnState {
    fn app_request(
        &mut self,
        myself: &ActorRef<ConnMsg>,
        id: CallId,
        name: Vec<String>,
        args: Vec<Value>,
    ) {
        let refusal = match (&self.remote, &self.context.app) {
            (Remote::Key(remote), Some(app)) if self.app_inbound < APP_CALLS_PER_CONNECTION_MAX => {
                self.app_inbound += 1;
                let request = AppRequest {
                    remote: *remote,
                    name,
                    args,
                    reply: {
                        let connection = myself.clone();
                        // A connection that closed meanwhile has nobody to answer.
                        AppReply::new(move |result| {
                            let _ = connection.cast(ConnMsg::AppResponse { id, result });
                        })
                    },
                };
                match app.offer(request) {
                    Ok(()) => return,
                    Err(request) => {
                        let busy = "busy: too many requests waiting".to_owned();
                        request.reply.send(Err(busy));
                        return;
                    }
                }
            }
            (Remote::Key(_), Some(_)) => "too many calls open on this connection",
            _ => "app methods need an authenticated peer",
        };
        if let Err(error) = self.rpc.respond(id, Err(ErrorBody::new(refusal))) {
            tracing::debug!(target: "ppppp::conn", %error, "could not refuse an app call");
        }
    }

    async fn close_on_error(
        &mut self,
        myself: &ActorRef<ConnMsg>,
        sent: Result<(), DisconnectReason>,
    ) {
        if let Err(reason) = sent {
            self.close(myself, reason).await;
        }
    }

    fn app_response(
        &mut self,
        id: CallId,
        result: Result<Value, String>,
    ) -> Result<(), DisconnectReason> {
        self.app_inbound = self.app_inbound.saturating_sub(1);
        let body = match result {
            Ok(value) => Body::json(&value).map_err(|error| ErrorBody::new(error.to_string())),
            Err(message) => Err(ErrorBody::new(message)),
        };
        if let Err(error) = self.rpc.respond(id, body) {
            tracing::debug!(target: "ppppp::conn", %error, "app answer not sent");
        }
        self.transmit(Traffic::App)
    }

    fn app_call(&mut self, call: AppCall) -> Result<(), DisconnectReason> {
        if self.app_outbound.len() >= APP_CALLS_PER_CONNECTION_MAX {
            let _ = call
                .reply
                .send(Err("too many calls open on this connection".to_owned()));
            return Ok(());
        }
        let name: Vec<&str> = call.name.iter().map(String::as_str).collect();
        match self.rpc.call(&name, &call.args, CallType::Async) {
            Ok(id) => {
                self.app_outbound.insert(id, call.reply);
                self.transmit(Traffic::App)
            }
            Err(error) => {
                let _ = call.reply.send(Err(error.to_string()));
                Ok(())
            }
        }
    }

    fn app_answered(&mut self, id: CallId, result: Result<Body, ErrorBody>) {
        let Some(caller) = self.app_outbound.remove(&id) else {
            return;
        };
        let answer = match result {
            Ok(body) => body
                .parse_json::<Value>()
                .map_err(|error| format!("the answer is not JSON: {error}")),
            Err(error) => Err(error.message),
        };
        let _ = caller.send(answer);
    }
}

#[cfg(test)]
mod tests {
    use super::grown_when_filled;

    #[test]
    fn the_read_size_doubles_only_when_a_read_fills_it_and_stops_at_the_limit() {
        let mut chunk = 4096;
        chunk = grown_when_filled(chunk, 4095, 65_536);
        assert_eq!(chunk, 4096, "a partial read leaves it as it is");
        chunk = grown_when_filled(chunk, 4096, 65_536);
        assert_eq!(chunk, 8192);
        for _ in 0..10 {
            chunk = grown_when_filled(chunk, chunk, 65_536);
        }
        assert_eq!(chunk, 65_536, "never past read_chunk_bytes_max");
        assert_eq!(grown_when_filled(40_000, 40_000, 65_536), 65_536);
    }
}
