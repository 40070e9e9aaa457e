//! The hub client as a pure machine: the muxrpc of every connection to a hub, the attendants
//! each hub lists, and the tunnels through them — pzp-hub-client 1.0.0's behaviour.
//!
//! On a new hub connection the client calls `hub.attendants` (which also makes it an
//! attendant) and `net.ping` (keepalive). A hub answers with JSON arrays of keys (the
//! reference hub), which pzp-net's scheduler reads; pzp-hub-client's own observer reads
//! `{type: "state" | "joined" | "left"}` events, which we read too. Tunnels: a local dial
//! calls `hub.createTunnel(target)`; the hub's `hubClient.connect(origin)` is an inbound
//! tunnel. Either way the duplex's data frames are the tunnel's bytes (binary), handed to and
//! taken from [`crate::tunnel::TunnelStream`]s by the actor.
//!
//! A connection opened to find out whether a peer is a hub (`probe`) first calls
//! `hub.metadata`: an answer makes it a hub connection; an error means it is not one.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::server::LinkId;
use crate::transport::PublicKey;
use crate::transport::muxrpc::codec::Frame;
use crate::transport::muxrpc::perms::Permissions;
use crate::transport::muxrpc::rpc::{Body, CallId, CallType, ErrorBody, Event, Rpc};
use crate::tunnel::TunnelId;

/// Most attendants kept per hub (what a hub lists beyond is ignored).
pub const HUB_ATTENDANTS_KEPT_MAX: usize = 4096;

/// Most tunnels open through one hub connection.
pub const TUNNELS_PER_HUB_MAX: usize = 128;

/// How often a hub connection is pinged.
pub const HUB_KEEPALIVE: Duration = Duration::from_secs(30);

/// A hub connection that receives nothing for this long is closed (and redialed).
pub const HUB_CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// What the client's actor tells the machine.
#[derive(Debug)]
pub enum ClientInput {
    /// A connection to `hub` finished its handshake.
    Opened {
        /// The connection.
        link: LinkId,
        /// The hub's key.
        hub: PublicKey,
        /// Ask `hub.metadata` first, to learn whether it is a hub at all.
        probe: bool,
    },
    /// Frames read from it.
    Frames {
        /// The connection.
        link: LinkId,
        /// The frames.
        frames: Vec<Frame>,
    },
    /// It ended.
    Closed {
        /// The connection.
        link: LinkId,
    },
    /// Bytes the local end of a tunnel wrote.
    TunnelData {
        /// The tunnel.
        tunnel: TunnelId,
        /// The bytes (at most a frame's worth).
        bytes: Vec<u8>,
    },
    /// The local end of a tunnel shut down.
    TunnelShut {
        /// The tunnel.
        tunnel: TunnelId,
    },
    /// Keepalive and idle check ([`HUB_KEEPALIVE`]).
    Tick,
}

/// What the machine asks of its actor, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientOutput {
    /// Write to a connection.
    Write {
        /// The connection.
        link: LinkId,
        /// Encoded frames.
        bytes: Vec<u8>,
    },
    /// Close a connection.
    Close {
        /// The connection.
        link: LinkId,
        /// Why.
        reason: String,
    },
    /// A probed peer is a hub (`true`) or not.
    Probed {
        /// The connection.
        link: LinkId,
        /// The verdict.
        hub: bool,
    },
    /// A hub's attendants changed (all of them now, the client itself excluded).
    Attendants {
        /// The hub.
        hub: PublicKey,
        /// Its attendants.
        keys: Vec<PublicKey>,
    },
    /// The hub opened a tunnel to us from `origin`: make its stream.
    Inbound {
        /// The new tunnel.
        tunnel: TunnelId,
        /// The hub.
        hub: PublicKey,
        /// Who dialed.
        origin: PublicKey,
    },
    /// Bytes for a tunnel's local end.
    Deliver {
        /// The tunnel.
        tunnel: TunnelId,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// A tunnel ended at the far side or with its hub connection.
    TunnelEnded {
        /// The tunnel.
        tunnel: TunnelId,
        /// Why, if not a normal end.
        error: Option<String>,
    },
    /// The answer to [`HubClientMachine::create_token`].
    Token {
        /// The request.
        request: u64,
        /// The token, or the hub's error.
        result: Result<String, String>,
    },
}

#[derive(Debug)]
struct HubLink {
    hub: PublicKey,
    rpc: Rpc,
    probe: Option<CallId>,
    attendants_call: Option<CallId>,
    ping_call: Option<CallId>,
    attendants: Vec<PublicKey>,
    last_received: Duration,
    tunnels: usize,
}

/// The hub client's state.
#[derive(Debug)]
pub struct HubClientMachine {
    me: PublicKey,
    links: BTreeMap<LinkId, HubLink>,
    tunnels: BTreeMap<TunnelId, (LinkId, CallId)>,
    by_call: BTreeMap<(LinkId, CallId), TunnelId>,
    tokens: BTreeMap<(LinkId, CallId), u64>,
    next_tunnel: u64,
    outputs: Vec<ClientOutput>,
}

fn permissions() -> Permissions {
    Permissions::Allow(
        [vec!["hubClient".to_owned(), "connect".to_owned()]]
            .into_iter()
            .collect(),
    )
}

/// Reads one `hub.attendants` item into the new list, given the old one.
fn read_attendants(body: &Body, current: &[PublicKey]) -> Option<Vec<PublicKey>> {
    let value: Value = body.parse_json().ok()?;
    let key = |value: &Value| {
        value
            .as_str()
            .and_then(|text| PublicKey::from_base58(text).ok())
    };
    let keys = |values: &Vec<Value>| -> Vec<PublicKey> {
        values
            .iter()
            .filter_map(key)
            .take(HUB_ATTENDANTS_KEPT_MAX)
            .collect()
    };
    match &value {
        Value::Array(values) => Some(keys(values)),
        Value::Object(fields) => match fields.get("type").and_then(Value::as_str)? {
            "state" => fields.get("pubkeys").and_then(Value::as_array).map(keys),
            "joined" => {
                let joined = fields.get("pubkey").and_then(key)?;
                let mut list = current.to_vec();
                if !list.contains(&joined) && list.len() < HUB_ATTENDANTS_KEPT_MAX {
                    list.push(joined);
                }
                Some(list)
            }
            "left" => {
                let left = fields.get("pubkey").and_then(key)?;
                Some(
                    current
                        .iter()
                        .copied()
                        .filter(|existing| *existing != left)
                        .collect(),
                )
            }
            _ => None,
        },
        _ => None,
    }
}

impl HubClientMachine {
    /// A client whose own key is `me`.
    #[must_use]
    pub fn new(me: PublicKey) -> Self {
        Self {
            me,
            links: BTreeMap::new(),
            tunnels: BTreeMap::new(),
            by_call: BTreeMap::new(),
            tokens: BTreeMap::new(),
            next_tunnel: 0,
            outputs: Vec::new(),
        }
    }

    /// The attendants `hub` lists (ourselves excluded), if connected to it.
    #[must_use]
    pub fn attendants(&self, hub: &PublicKey) -> Option<Vec<PublicKey>> {
        self.link_of(hub)
            .and_then(|link| self.links.get(&link))
            .map(|state| {
                state
                    .attendants
                    .iter()
                    .copied()
                    .filter(|key| *key != self.me)
                    .collect()
            })
    }

    /// The hubs this client attends now.
    #[must_use]
    pub fn hubs(&self) -> Vec<PublicKey> {
        self.links
            .values()
            .filter(|state| state.attendants_call.is_some())
            .map(|state| state.hub)
            .collect()
    }

    fn link_of(&self, hub: &PublicKey) -> Option<LinkId> {
        self.links
            .iter()
            .find(|(_, state)| state.hub == *hub && state.attendants_call.is_some())
            .map(|(link, _)| *link)
    }

    /// Handles one input at `now`; the outputs to apply, in order.
    pub fn handle(&mut self, now: Duration, input: ClientInput) -> Vec<ClientOutput> {
        match input {
            ClientInput::Opened { link, hub, probe } => self.opened(now, link, hub, probe),
            ClientInput::Frames { link, frames } => self.frames(now, link, frames),
            ClientInput::Closed { link } => self.remove_link(link, "the hub connection ended"),
            ClientInput::TunnelData { tunnel, bytes } => {
                if let Some((link, call)) = self.tunnels.get(&tunnel).copied()
                    && let Some(state) = self.links.get_mut(&link)
                    && state.rpc.send(call, Body::Binary(bytes)).is_err()
                {
                    tracing::debug!(target: "ppppp::hub_client", "tunnel data after its end");
                }
                self.flush_tunnel(tunnel);
            }
            ClientInput::TunnelShut { tunnel } => {
                if let Some((link, call)) = self.tunnels.get(&tunnel).copied()
                    && let Some(state) = self.links.get_mut(&link)
                {
                    let _ = state.rpc.end(call, None);
                    self.flush(link);
                }
            }
            ClientInput::Tick => self.tick(now),
        }
        std::mem::take(&mut self.outputs)
    }

    fn flush_tunnel(&mut self, tunnel: TunnelId) {
        if let Some((link, _)) = self.tunnels.get(&tunnel).copied() {
            self.flush(link);
        }
    }

    fn opened(&mut self, now: Duration, link: LinkId, hub: PublicKey, probe: bool) {
        let mut state = HubLink {
            hub,
            rpc: Rpc::new(permissions()),
            probe: None,
            attendants_call: None,
            ping_call: None,
            attendants: Vec::new(),
            last_received: now,
            tunnels: 0,
        };
        if probe {
            state.probe = state
                .rpc
                .call(&["hub", "metadata"], &[], CallType::Async)
                .ok();
            self.links.insert(link, state);
        } else {
            self.links.insert(link, state);
            self.attend(link);
        }
        self.flush(link);
    }

    fn attend(&mut self, link: LinkId) {
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        state.attendants_call = state
            .rpc
            .call(&["hub", "attendants"], &[], CallType::Source)
            .ok();
        state.ping_call = state.rpc.call(&["net", "ping"], &[], CallType::Duplex).ok();
    }

    /// Opens a tunnel to `target` through `hub`; its id, or why not.
    ///
    /// # Errors
    /// Not connected to the hub, the target not attending, too many tunnels.
    pub fn open_tunnel(
        &mut self,
        hub: &PublicKey,
        target: &PublicKey,
    ) -> Result<(TunnelId, Vec<ClientOutput>), String> {
        let link = self
            .link_of(hub)
            .ok_or_else(|| format!("not connected to hub {hub}"))?;
        let state = self
            .links
            .get_mut(&link)
            .ok_or_else(|| format!("not connected to hub {hub}"))?;
        if !state.attendants.contains(target) {
            return Err(format!("{target} is not attending hub {hub}"));
        }
        if state.tunnels >= TUNNELS_PER_HUB_MAX {
            return Err(format!(
                "already {TUNNELS_PER_HUB_MAX} tunnels through hub {hub}"
            ));
        }
        let call = state
            .rpc
            .call(
                &["hub", "createTunnel"],
                &[json!(target.to_base58())],
                CallType::Duplex,
            )
            .map_err(|error| error.to_string())?;
        state.tunnels += 1;
        let tunnel = self.new_tunnel(link, call);
        self.flush(link);
        Ok((tunnel, std::mem::take(&mut self.outputs)))
    }

    /// Asks `hub` for a membership token; the answer comes as [`ClientOutput::Token`].
    ///
    /// # Errors
    /// Not connected to the hub.
    pub fn create_token(
        &mut self,
        hub: &PublicKey,
        request: u64,
    ) -> Result<Vec<ClientOutput>, String> {
        let link = self
            .link_of(hub)
            .ok_or_else(|| format!("not connected to hub {hub}"))?;
        let state = self
            .links
            .get_mut(&link)
            .ok_or_else(|| format!("not connected to hub {hub}"))?;
        let call = state
            .rpc
            .call(&["hub", "createToken"], &[], CallType::Async)
            .map_err(|error| error.to_string())?;
        self.tokens.insert((link, call), request);
        self.flush(link);
        Ok(std::mem::take(&mut self.outputs))
    }

    fn new_tunnel(&mut self, link: LinkId, call: CallId) -> TunnelId {
        let tunnel = TunnelId(self.next_tunnel);
        self.next_tunnel += 1;
        self.tunnels.insert(tunnel, (link, call));
        self.by_call.insert((link, call), tunnel);
        tunnel
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
                } => self.request(link, id, &name, &args, call_type),
                Event::Data { id, body } => self.data(link, id, body),
                Event::End { id, error } => self.end(link, id, error),
                Event::Response { id, result } => self.response(link, id, result),
                Event::Goodbye => goodbye = true,
            }
        }
        self.flush(link);
        if goodbye {
            self.close(link, "the hub said goodbye".to_owned());
        }
    }

    fn request(
        &mut self,
        link: LinkId,
        id: CallId,
        name: &[String],
        args: &[Value],
        call_type: CallType,
    ) {
        tracing::debug!(target: "ppppp::hub_client", link = link.0, ?name, ?args, "request");
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        let is_connect = name.len() == 2 && name.first().is_some_and(|n| n == "hubClient");
        let origin = args
            .first()
            .and_then(Value::as_str)
            .and_then(|text| PublicKey::from_base58(text).ok());
        let refusal = match (is_connect && call_type == CallType::Duplex, origin) {
            (false, _) => Some(format!(
                "method:{} is not in list of allowed methods",
                name.join(",")
            )),
            (true, None) => Some("hubClient.connect needs the origin's public key".to_owned()),
            (true, Some(_)) if state.tunnels >= TUNNELS_PER_HUB_MAX => Some(format!(
                "already {TUNNELS_PER_HUB_MAX} tunnels through this hub"
            )),
            (true, Some(_)) => None,
        };
        if let Some(message) = refusal {
            let _ = if call_type.is_stream() {
                state.rpc.end(id, Some(ErrorBody::new(message)))
            } else {
                state.rpc.respond(id, Err(ErrorBody::new(message)))
            };
            return;
        }
        let (Some(origin), hub) = (origin, state.hub) else {
            return;
        };
        state.tunnels += 1;
        let tunnel = self.new_tunnel(link, id);
        self.outputs.push(ClientOutput::Inbound {
            tunnel,
            hub,
            origin,
        });
    }

    fn data(&mut self, link: LinkId, id: CallId, body: Body) {
        if let Some(tunnel) = self.by_call.get(&(link, id)).copied() {
            let bytes = body.as_bytes().to_vec();
            self.outputs.push(ClientOutput::Deliver { tunnel, bytes });
            return;
        }
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        if state.attendants_call == Some(id)
            && let Some(list) = read_attendants(&body, &state.attendants)
            && list != state.attendants
        {
            state.attendants = list;
            let keys = state
                .attendants
                .iter()
                .copied()
                .filter(|key| *key != self.me)
                .collect();
            self.outputs.push(ClientOutput::Attendants {
                hub: state.hub,
                keys,
            });
        }
    }

    fn end(&mut self, link: LinkId, id: CallId, error: Option<ErrorBody>) {
        if let Some(tunnel) = self.by_call.remove(&(link, id)) {
            self.tunnels.remove(&tunnel);
            if let Some(state) = self.links.get_mut(&link) {
                state.tunnels = state.tunnels.saturating_sub(1);
                let _ = state.rpc.end(id, None);
            }
            let error = error.map(|error| error.message);
            self.outputs
                .push(ClientOutput::TunnelEnded { tunnel, error });
            return;
        }
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        if state.attendants_call == Some(id) {
            let reason = error.map_or_else(
                || "the hub ended the attendants stream".to_owned(),
                |e| e.message,
            );
            self.close(link, reason);
        } else if state.ping_call == Some(id) {
            state.ping_call = None;
            let _ = state.rpc.end(id, None);
        }
    }

    fn response(&mut self, link: LinkId, id: CallId, result: Result<Body, ErrorBody>) {
        if let Some(request) = self.tokens.remove(&(link, id)) {
            let result = match result {
                Ok(body) => body
                    .parse_json::<String>()
                    .map_err(|error| error.to_string()),
                Err(error) => Err(error.message),
            };
            self.outputs.push(ClientOutput::Token { request, result });
            return;
        }
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        if state.probe == Some(id) {
            state.probe = None;
            let hub = result.is_ok();
            self.outputs.push(ClientOutput::Probed { link, hub });
            if hub {
                self.attend(link);
            } else {
                self.close(link, "not a hub".to_owned());
            }
        }
    }

    fn tick(&mut self, now: Duration) {
        let links: Vec<LinkId> = self.links.keys().copied().collect();
        for link in links {
            let Some(state) = self.links.get_mut(&link) else {
                continue;
            };
            if now.saturating_sub(state.last_received) > HUB_CLIENT_IDLE_TIMEOUT {
                self.close(
                    link,
                    "nothing received from the hub for the idle timeout".to_owned(),
                );
                continue;
            }
            if let Some(ping) = state.ping_call {
                let ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
                let _ = state
                    .rpc
                    .send(ping, Body::Json(ms.to_string().into_bytes()));
            }
            self.flush(link);
        }
    }

    fn close(&mut self, link: LinkId, reason: String) {
        if let Some(state) = self.links.get_mut(&link) {
            state.rpc.abort();
            self.flush(link);
            self.outputs.push(ClientOutput::Close {
                link,
                reason: reason.clone(),
            });
        }
        self.remove_link(link, &reason);
    }

    fn remove_link(&mut self, link: LinkId, reason: &str) {
        let Some(state) = self.links.remove(&link) else {
            return;
        };
        if state.probe.is_some() {
            self.outputs.push(ClientOutput::Probed { link, hub: false });
        }
        let tunnels: Vec<((LinkId, CallId), TunnelId)> = self
            .by_call
            .range((link, CallId::Outbound(0))..)
            .take_while(|((owner, _), _)| *owner == link)
            .map(|(key, tunnel)| (*key, *tunnel))
            .collect();
        for (key, tunnel) in tunnels {
            self.by_call.remove(&key);
            self.tunnels.remove(&tunnel);
            self.outputs.push(ClientOutput::TunnelEnded {
                tunnel,
                error: Some(reason.to_owned()),
            });
        }
        self.tokens.retain(|(owner, _), request| {
            if *owner == link {
                self.outputs.push(ClientOutput::Token {
                    request: *request,
                    result: Err(reason.to_owned()),
                });
                false
            } else {
                true
            }
        });
        if state.attendants_call.is_some() && !state.attendants.is_empty() {
            self.outputs.push(ClientOutput::Attendants {
                hub: state.hub,
                keys: Vec::new(),
            });
        }
    }

    fn flush(&mut self, link: LinkId) {
        if let Some(state) = self.links.get_mut(&link) {
            let mut bytes = Vec::new();
            state.rpc.encode_transmit(&mut bytes);
            if !bytes.is_empty() {
                self.outputs.push(ClientOutput::Write { link, bytes });
            }
        }
    }
}
