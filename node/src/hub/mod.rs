//! Hubs: the discovery layer of PZP, interoperable with pzp-hub-client 1.0.0 and the
//! reference hub (staltz/ppppp-hub).
//!
//! A hub is a peer that others *attend*: it lists who is connected (`hub.attendants`) and
//! opens *tunnels* between attendants (`hub.createTunnel`), muxrpc duplex streams that it
//! relays byte for byte; the two ends run their own SHSE handshake inside, so the hub sees
//! only ciphertext. Peers behind NATs that can only dial out reach each other this way.
//!
//! - [`admission`]: who may connect (members, one-time tokens, the bootstrap member).
//! - [`server`]: the hub as a pure machine over all its connections' muxrpc.
//! - [`actor`]: the hub's sockets, around the machine (`ppppp hub`).
//! - [`client`]: the hub client as a pure machine (attending, tunnels through hubs).
//! - [`client_actor`]: the hub client's sockets and tunnels' streams, around the machine.
//! - [`attend`]: a peer attending hubs (client, tunnel `Net`, attendant dialing) over any
//!   `Net`, for `ppppp serve --hub` and the simulator.
//! - [`link`]: reader and writer tasks shared by the hub and the hub client.

pub mod actor;
pub mod admission;
pub mod attend;
pub mod client;
pub mod client_actor;
pub(crate) mod link;
pub mod server;

pub use actor::{HubConfig, HubError, HubHandle, HubStatus, run_hub};
pub use attend::{AttendError, Attendance, AttendantDialer, attend};
pub use client_actor::{HubClient, HubClientChannels, HubClientConfig, HubInfo, start_hub_client};
