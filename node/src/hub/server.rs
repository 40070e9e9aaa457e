//! The hub as a pure machine: every connected peer's muxrpc, the attendants, the tunnels
//! between them, and the flow control that keeps a tunnel's bytes bounded.
//!
//! What the hub serves (staltz/ppppp-hub's `hub` plugin, the manifest pzp-hub-client 1.0.0
//! expects):
//!
//! | method | type | what |
//! |---|---|---|
//! | `hub.attendants` | source | makes the caller an attendant; streams the attendants' keys as a JSON array, now and whenever the list changes, and every [`ATTENDANTS_REFRESH`] |
//! | `hub.createTunnel(target)` | duplex | calls `hubClient.connect(origin)` (duplex) on the target's connection and relays the two streams' bytes; the two ends run SHSE inside, so the hub relays ciphertext |
//! | `hub.createToken` | sync | a new membership token (base58 of 32 bytes) |
//! | `hub.metadata` | async | `{"name": NAME}` |
//! | `hub.ping` | sync | the hub's clock, ms since the Unix epoch |
//! | `net.ping` | duplex | pzp-net's keepalive |
//!
//! Inputs come from the actor that owns the sockets ([`HubInput`]); outputs are bytes to
//! write, links to close, read credit to withhold or give back, and membership files to
//! save ([`HubOutput`]). The machine reads no clock (`now` is an argument) and draws
//! tokens from a seeded stream.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::admission::Admission;
use crate::transport::muxrpc::codec::Frame;
use crate::transport::muxrpc::perms::Permissions;
use crate::transport::muxrpc::rpc::{Body, CallId, CallType, ErrorBody, Event, Rpc};
use crate::transport::ping::{PingResponder, is_net_ping};
use crate::transport::{PublicKey, Token};

/// Most attendants at once; further `hub.attendants` calls end with an error.
pub const ATTENDANTS_MAX: usize = 1024;

/// Most `hub.attendants` streams one connection may keep open.
pub const ATTENDANT_STREAMS_PER_LINK_MAX: usize = 4;

/// Most tunnels one peer may have open, as origin and as target counted apart.
pub const TUNNELS_PER_ATTENDANT_MAX: usize = 32;

/// A tunnel's origin is not read while its target's send queue holds more than this many
/// bytes; it is read again once the queue is below half. With at most one read chunk
/// decoded beyond it, this bounds the bytes a tunnel has in flight inside the hub.
pub const TUNNEL_BYTES_IN_FLIGHT_MAX: usize = 256 * 1024;

/// How often every attendants stream gets the whole list again (ppppp-hub: 10 s).
pub const ATTENDANTS_REFRESH: Duration = Duration::from_secs(10);

/// A connection that sends nothing for this long is closed (ppppp-hub's inactivity timer).
pub const HUB_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// The hub's error when the target of a tunnel is not attending (ppppp-hub's text).
fn offline(target: &str) -> String {
    format!("Cannot createTunnel with {target} who appears to be offline")
}

/// The methods a hub answers, for `manifest` and the permission check.
const MANIFEST: [(&str, &str, CallType); 6] = [
    ("hub", "attendants", CallType::Source),
    ("hub", "createTunnel", CallType::Duplex),
    ("hub", "createToken", CallType::Sync),
    ("hub", "metadata", CallType::Async),
    ("hub", "ping", CallType::Sync),
    ("net", "ping", CallType::Duplex),
];

/// One connection to the hub, within one hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub u64);

/// What the hub's actor tells the machine.
#[derive(Debug)]
pub enum HubInput {
    /// A peer finished the handshake (and was admitted) as `key`.
    Opened {
        /// The connection.
        link: LinkId,
        /// The peer's proven key.
        key: PublicKey,
    },
    /// Frames read from a connection.
    Frames {
        /// The connection.
        link: LinkId,
        /// The frames.
        frames: Vec<Frame>,
    },
    /// The connection's writer wrote this many bytes of what was handed to it.
    Written {
        /// The connection.
        link: LinkId,
        /// Bytes.
        bytes: usize,
    },
    /// The connection ended (EOF, error, or a close the machine asked for).
    Closed {
        /// The connection.
        link: LinkId,
    },
    /// Time passed ([`ATTENDANTS_REFRESH`]): refresh lists, close idle connections.
    Tick,
}

/// What the machine asks of its actor, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum HubOutput {
    /// Save the membership files (before any later output is applied).
    SaveAdmission {
        /// `members.json`.
        members: String,
        /// `tokens.json`.
        tokens: String,
    },
    /// Write these bytes to the connection.
    Write {
        /// The connection.
        link: LinkId,
        /// Encoded frames.
        bytes: Vec<u8>,
    },
    /// Stop reading the connection (its tunnel's target is behind).
    Pause {
        /// The connection.
        link: LinkId,
    },
    /// Read the connection again.
    Resume {
        /// The connection.
        link: LinkId,
    },
    /// Close the connection (after writing what was queued).
    Close {
        /// The connection.
        link: LinkId,
        /// Why, for the log.
        reason: String,
    },
}

#[derive(Debug)]
struct Link {
    key: PublicKey,
    rpc: Rpc,
    /// Bytes handed to the writer and not yet written.
    queued: usize,
    last_received: Duration,
    attendant_streams: BTreeSet<CallId>,
    ping: Option<(CallId, PingResponder)>,
    tunnels_as_origin: usize,
    tunnels_as_target: usize,
}

/// One direction's end of a tunnel: the other leg, and whether this leg's peer ended.
#[derive(Debug, Clone, Copy)]
struct Leg {
    peer: (LinkId, CallId),
    origin: LinkId,
    target: LinkId,
    ended: bool,
}

/// A hub's state.
#[derive(Debug)]
pub struct HubMachine {
    name: String,
    epoch_ms: u64,
    admission: Admission,
    rng: ChaCha8Rng,
    links: BTreeMap<LinkId, Link>,
    /// Attendants in the order they came (the reference's Map order).
    attendants: Vec<(PublicKey, LinkId)>,
    legs: BTreeMap<(LinkId, CallId), Leg>,
    /// Paused origin → the target it waits for.
    paused: BTreeMap<LinkId, LinkId>,
    outputs: Vec<HubOutput>,
    touched: BTreeSet<LinkId>,
}

fn permissions() -> Permissions {
    let mut allowed: BTreeSet<Vec<String>> = MANIFEST
        .iter()
        .map(|(plugin, method, _)| vec![(*plugin).to_owned(), (*method).to_owned()])
        .collect();
    allowed.insert(vec!["manifest".to_owned()]);
    Permissions::Allow(allowed)
}

fn manifest() -> Value {
    let mut out = serde_json::Map::new();
    out.insert("manifest".to_owned(), json!("sync"));
    for (plugin, method, call_type) in MANIFEST {
        let entry = out.entry(plugin).or_insert_with(|| json!({}));
        if let Value::Object(methods) = entry {
            methods.insert(method.to_owned(), json!(call_type.as_str()));
        }
    }
    Value::Object(out)
}

impl HubMachine {
    /// A hub called `name` whose clock reads `epoch_ms` at `now` = 0, admitting peers per
    /// `admission`; tokens come from a stream seeded with `seed`.
    #[must_use]
    pub fn new(name: String, epoch_ms: u64, admission: Admission, seed: u64) -> Self {
        Self {
            name,
            epoch_ms,
            admission,
            rng: ChaCha8Rng::seed_from_u64(seed),
            links: BTreeMap::new(),
            attendants: Vec::new(),
            legs: BTreeMap::new(),
            paused: BTreeMap::new(),
            outputs: Vec::new(),
            touched: BTreeSet::new(),
        }
    }

    /// Decides whether a peer that proved `key` (and sent `token`) may connect; the files to
    /// save first if membership changed.
    pub fn admit(&mut self, key: PublicKey, token: Option<Token>) -> (bool, Option<HubOutput>) {
        let verdict = self.admission.admit(key, token);
        let save = verdict.changed().then(|| self.save_admission());
        (verdict.admitted(), save)
    }

    /// The verdict alone, for logs.
    #[must_use]
    pub fn members(&self) -> usize {
        self.admission.members()
    }

    /// The attendants' keys, in arrival order.
    #[must_use]
    pub fn attendants(&self) -> Vec<PublicKey> {
        self.attendants.iter().map(|(key, _)| *key).collect()
    }

    /// Open connections.
    #[must_use]
    pub fn links(&self) -> usize {
        self.links.len()
    }

    /// Open tunnels.
    #[must_use]
    pub fn tunnels(&self) -> usize {
        self.legs.len() / 2
    }

    fn save_admission(&self) -> HubOutput {
        let (members, tokens) = self.admission.to_files();
        HubOutput::SaveAdmission { members, tokens }
    }

    /// Handles one input at time `now` (since the hub started).
    pub fn handle(&mut self, now: Duration, input: HubInput) -> Vec<HubOutput> {
        match input {
            HubInput::Opened { link, key } => {
                let link_state = Link {
                    key,
                    rpc: Rpc::new(permissions()),
                    queued: 0,
                    last_received: now,
                    attendant_streams: BTreeSet::new(),
                    ping: None,
                    tunnels_as_origin: 0,
                    tunnels_as_target: 0,
                };
                self.links.insert(link, link_state);
            }
            HubInput::Frames { link, frames } => self.frames(now, link, frames),
            HubInput::Written { link, bytes } => self.written(link, bytes),
            HubInput::Closed { link } => self.remove_link(link),
            HubInput::Tick => self.tick(now),
        }
        self.flush();
        std::mem::take(&mut self.outputs)
    }

    fn frames(&mut self, now: Duration, link: LinkId, frames: Vec<Frame>) {
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        state.last_received = now;
        for frame in frames {
            if let Err(error) = state.rpc.handle_frame(frame) {
                self.close(link, error.to_string());
                return;
            }
        }
        let mut relayed_to = BTreeSet::new();
        let mut goodbye = false;
        while let Some(event) = self
            .links
            .get_mut(&link)
            .and_then(|state| state.rpc.poll_event())
        {
            match event {
                Event::Request {
                    id,
                    name,
                    args,
                    call_type,
                } => self.request(now, link, id, &name, &args, call_type),
                Event::Data { id, body } => self.data(now, link, id, body, &mut relayed_to),
                Event::End { id, error } => self.end(link, id, error),
                Event::Response { .. } => {}
                Event::Goodbye => goodbye = true,
            }
        }
        self.touched.insert(link);
        self.flush();
        if let Some(target) = relayed_to.into_iter().find(|target| {
            self.links
                .get(target)
                .is_some_and(|t| t.queued > TUNNEL_BYTES_IN_FLIGHT_MAX)
        }) {
            self.paused.insert(link, target);
            self.outputs.push(HubOutput::Pause { link });
        }
        if goodbye {
            self.close(link, "the peer said goodbye".to_owned());
        }
    }

    fn request(
        &mut self,
        now: Duration,
        link: LinkId,
        id: CallId,
        name: &[String],
        args: &[Value],
        call_type: CallType,
    ) {
        tracing::debug!(target: "ppppp::hub", link = link.0, ?name, ?args, "request");
        let method: Vec<&str> = name.iter().map(String::as_str).collect();
        let answer: Result<Body, String> = match method.as_slice() {
            ["hub", "attendants"] => return self.attend(link, id),
            ["hub", "createTunnel"] => return self.create_tunnel(link, id, args),
            ["net", "ping"] if is_net_ping(name) && call_type == CallType::Duplex => {
                if let Some(state) = self.links.get_mut(&link) {
                    if state.ping.is_some() {
                        let _ = state
                            .rpc
                            .end(id, Some(ErrorBody::new("net.ping is already open")));
                    } else {
                        state.ping = Some((id, PingResponder::default()));
                    }
                }
                return;
            }
            ["hub", "ping"] => Ok(Body::Json(self.wall_ms(now).to_string().into_bytes())),
            ["hub", "metadata"] => Ok(Body::Json(
                json!({"name": self.name}).to_string().into_bytes(),
            )),
            ["manifest"] => Ok(Body::Json(manifest().to_string().into_bytes())),
            ["hub", "createToken"] => {
                let mut random = [0u8; 32];
                self.rng.fill_bytes(&mut random);
                match self.admission.create_token(random) {
                    Ok(token) => {
                        let save = self.save_admission();
                        self.outputs.push(save);
                        Ok(Body::Json(
                            json!(token.to_base58()).to_string().into_bytes(),
                        ))
                    }
                    Err(error) => Err(error.to_string()),
                }
            }
            _ => Err(format!(
                "method:{} is not in list of allowed methods",
                name.join(",")
            )),
        };
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        let result = if call_type.is_stream() {
            state.rpc.end(id, answer.err().map(ErrorBody::new))
        } else {
            state.rpc.respond(id, answer.map_err(ErrorBody::new))
        };
        if let Err(error) = result {
            tracing::debug!(target: "ppppp::hub", %error, "could not answer a call");
        }
    }

    fn wall_ms(&self, now: Duration) -> u64 {
        self.epoch_ms
            .saturating_add(u64::try_from(now.as_millis()).unwrap_or(u64::MAX))
    }

    fn refuse_stream(&mut self, link: LinkId, id: CallId, message: String) {
        if let Some(state) = self.links.get_mut(&link) {
            let _ = state.rpc.end(id, Some(ErrorBody::new(message)));
        }
    }

    fn attend(&mut self, link: LinkId, id: CallId) {
        let Some(state) = self.links.get(&link) else {
            return;
        };
        let key = state.key;
        if state.attendant_streams.len() >= ATTENDANT_STREAMS_PER_LINK_MAX {
            let message = format!(
                "already {ATTENDANT_STREAMS_PER_LINK_MAX} hub.attendants streams open on this connection"
            );
            return self.refuse_stream(link, id, message);
        }
        let mut changed = false;
        let full = self.attendants.len() >= ATTENDANTS_MAX;
        match self
            .attendants
            .iter_mut()
            .find(|(existing, _)| *existing == key)
        {
            Some(entry) => entry.1 = link,
            None if full => {
                let message = format!("the hub is full: {ATTENDANTS_MAX} attendants");
                return self.refuse_stream(link, id, message);
            }
            None => {
                self.attendants.push((key, link));
                changed = true;
            }
        }
        let list = self.list_body();
        if let Some(state) = self.links.get_mut(&link) {
            state.attendant_streams.insert(id);
            let _ = state.rpc.send(id, list);
        }
        if changed {
            self.broadcast(Some((link, id)));
        }
    }

    fn list_body(&self) -> Body {
        let keys: Vec<String> = self
            .attendants
            .iter()
            .map(|(key, _)| key.to_base58())
            .collect();
        Body::Json(json!(keys).to_string().into_bytes())
    }

    /// Sends the list to every attendants stream (but `except`).
    fn broadcast(&mut self, except: Option<(LinkId, CallId)>) {
        let list = self.list_body();
        for (link, state) in &mut self.links {
            for id in &state.attendant_streams {
                if except != Some((*link, *id)) {
                    let _ = state.rpc.send(*id, list.clone());
                    self.touched.insert(*link);
                }
            }
        }
    }

    fn create_tunnel(&mut self, origin: LinkId, id: CallId, args: &[Value]) {
        let Some(origin_state) = self.links.get(&origin) else {
            return;
        };
        let origin_key = origin_state.key;
        let target_text = args
            .first()
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let target_key = match PublicKey::from_base58(&target_text) {
            Ok(key) => key,
            Err(error) => {
                let message = format!("createTunnel needs a target public key: {error}");
                return self.refuse_stream(origin, id, message);
            }
        };
        if target_key == origin_key {
            return self.refuse_stream(origin, id, "cannot tunnel to yourself".to_owned());
        }
        let Some(&(_, target)) = self.attendants.iter().find(|(key, _)| *key == target_key) else {
            return self.refuse_stream(origin, id, offline(&target_text));
        };
        if origin_state.tunnels_as_origin >= TUNNELS_PER_ATTENDANT_MAX {
            let message =
                format!("{origin_key} already has {TUNNELS_PER_ATTENDANT_MAX} tunnels open");
            return self.refuse_stream(origin, id, message);
        }
        let Some(target_state) = self.links.get_mut(&target) else {
            return self.refuse_stream(origin, id, offline(&target_text));
        };
        if target_state.tunnels_as_target >= TUNNELS_PER_ATTENDANT_MAX {
            let message =
                format!("{target_text} already has {TUNNELS_PER_ATTENDANT_MAX} tunnels open");
            return self.refuse_stream(origin, id, message);
        }
        let args = [json!(origin_key.to_base58())];
        let target_call =
            match target_state
                .rpc
                .call(&["hubClient", "connect"], &args, CallType::Duplex)
            {
                Ok(call) => call,
                Err(error) => {
                    let message = format!("cannot reach {target_text}: {error}");
                    return self.refuse_stream(origin, id, message);
                }
            };
        target_state.tunnels_as_target += 1;
        self.touched.insert(target);
        if let Some(state) = self.links.get_mut(&origin) {
            state.tunnels_as_origin += 1;
        }
        let leg = |peer| Leg {
            peer,
            origin,
            target,
            ended: false,
        };
        self.legs.insert((origin, id), leg((target, target_call)));
        self.legs.insert((target, target_call), leg((origin, id)));
    }

    fn data(
        &mut self,
        now: Duration,
        link: LinkId,
        id: CallId,
        body: Body,
        relayed_to: &mut BTreeSet<LinkId>,
    ) {
        if let Some(leg) = self.legs.get(&(link, id)).copied() {
            let (peer_link, peer_call) = leg.peer;
            if let Some(peer) = self.links.get_mut(&peer_link)
                && peer.rpc.send(peer_call, body).is_ok()
            {
                self.touched.insert(peer_link);
                relayed_to.insert(peer_link);
            }
            return;
        }
        let now_ms = self.wall_ms(now);
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        if let Some((ping, responder)) = &mut state.ping
            && *ping == id
            && let Some(pong) = responder.on_data(now_ms)
        {
            let _ = state.rpc.send(id, pong);
        }
    }

    fn end(&mut self, link: LinkId, id: CallId, error: Option<ErrorBody>) {
        if let Some(mut leg) = self.legs.get(&(link, id)).copied() {
            let (peer_link, peer_call) = leg.peer;
            if let Some(peer) = self.links.get_mut(&peer_link) {
                let _ = peer.rpc.end(peer_call, error);
                self.touched.insert(peer_link);
            }
            leg.ended = true;
            let peer_ended = self.legs.get(&leg.peer).is_some_and(|peer| peer.ended);
            if peer_ended {
                self.drop_tunnel(leg);
                self.legs.remove(&(link, id));
                self.legs.remove(&leg.peer);
            } else {
                self.legs.insert((link, id), leg);
            }
            return;
        }
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        if state.attendant_streams.remove(&id) {
            let _ = state.rpc.end(id, None);
        } else if state.ping.as_ref().is_some_and(|(ping, _)| *ping == id) {
            state.ping = None;
            let _ = state.rpc.end(id, None);
        }
    }

    fn drop_tunnel(&mut self, leg: Leg) {
        if let Some(origin) = self.links.get_mut(&leg.origin) {
            origin.tunnels_as_origin = origin.tunnels_as_origin.saturating_sub(1);
        }
        if let Some(target) = self.links.get_mut(&leg.target) {
            target.tunnels_as_target = target.tunnels_as_target.saturating_sub(1);
        }
    }

    fn written(&mut self, link: LinkId, bytes: usize) {
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        state.queued = state.queued.saturating_sub(bytes);
        if state.queued <= TUNNEL_BYTES_IN_FLIGHT_MAX / 2 {
            self.resume_waiting_on(link);
        }
    }

    fn resume_waiting_on(&mut self, target: LinkId) {
        let waiting: Vec<LinkId> = self
            .paused
            .iter()
            .filter(|(_, waits_on)| **waits_on == target)
            .map(|(origin, _)| *origin)
            .collect();
        for origin in waiting {
            self.paused.remove(&origin);
            self.outputs.push(HubOutput::Resume { link: origin });
        }
    }

    fn tick(&mut self, now: Duration) {
        let idle: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, state)| now.saturating_sub(state.last_received) > HUB_IDLE_TIMEOUT)
            .map(|(link, _)| *link)
            .collect();
        for link in idle {
            self.close(link, "nothing received for the idle timeout".to_owned());
        }
        self.broadcast(None);
    }

    /// Asks the actor to close `link` and forgets it (its tunnels end at their other side).
    fn close(&mut self, link: LinkId, reason: String) {
        if let Some(state) = self.links.get_mut(&link) {
            state.rpc.abort();
            self.touched.insert(link);
            self.flush();
            self.outputs.push(HubOutput::Close { link, reason });
        }
        self.remove_link(link);
    }

    fn remove_link(&mut self, link: LinkId) {
        if self.links.remove(&link).is_none() {
            return;
        }
        let before = self.attendants.len();
        self.attendants.retain(|(_, attending)| *attending != link);
        let legs: Vec<((LinkId, CallId), Leg)> = self
            .legs
            .range((link, CallId::Outbound(0))..)
            .take_while(|((owner, _), _)| *owner == link)
            .map(|(key, leg)| (*key, *leg))
            .collect();
        for (key, leg) in legs {
            self.legs.remove(&key);
            self.legs.remove(&leg.peer);
            self.drop_tunnel(leg);
            let (peer_link, peer_call) = leg.peer;
            if let Some(peer) = self.links.get_mut(&peer_link) {
                let message = "the other end of the tunnel left the hub";
                let _ = peer.rpc.end(peer_call, Some(ErrorBody::new(message)));
                self.touched.insert(peer_link);
            }
        }
        self.paused.remove(&link);
        self.resume_waiting_on(link);
        if self.attendants.len() != before {
            self.broadcast(None);
        }
    }

    fn flush(&mut self) {
        for link in std::mem::take(&mut self.touched) {
            let Some(state) = self.links.get_mut(&link) else {
                continue;
            };
            let mut bytes = Vec::new();
            state.rpc.encode_transmit(&mut bytes);
            if !bytes.is_empty() {
                state.queued += bytes.len();
                self.outputs.push(HubOutput::Write { link, bytes });
            }
        }
    }
}

#[cfg(test)]
mod tests;
