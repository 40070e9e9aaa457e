//! The fabric substrate's packet mover: takes what every host's simulated kernel sends
//! (turmoil-net's `egress_all`), decides each packet's fate on its link ([`Links`]) and
//! delivers it when its time comes. One call to [`Fabric::pass`] is one *pass*; the run loop
//! (fabric_run.rs) makes passes only at tick boundaries where something happens, so cost
//! follows traffic, not ticks × links.
//!
//! Two things make TCP behave on this fabric:
//! - A link is a FIFO pipe: a packet never overtakes an earlier one in the same direction
//!   (its delivery time is at least the previous one's). turmoil-net's receiver accepts
//!   segments only in order, so reordering would look like loss.
//! - turmoil-net's retransmit timer counts passes, not time. After a drop the loop keeps
//!   making a pass every tick for [`Fabric::retransmit_window_ms`] ([`Fabric::pressing`]),
//!   so a lost segment is resent after a bounded simulated time even on a quiet network.
//! - Loss spares bare acknowledgements. turmoil-net 0.1's receiver acknowledges only a
//!   segment it accepts in order (kernel/tcp.rs, `handle_established`): a duplicate is
//!   dropped without a fresh ACK. A lost ACK would then stall its direction until data in
//!   the other direction carries the acknowledgement, and a quiet connection (keepalives
//!   only) would hit the node's idle timeout under 10 % loss. So `loss` drops segments that
//!   carry data, SYN, FIN or RST, and lets bare ACKs through; a cut drops everything.
//! - A down host refuses new connections. Its listener stays open in its kernel across
//!   incarnations (fabric_listen.rs), so the fabric answers for it: a segment that would open
//!   or complete a connection on a down host is refused with a RST, as a host with nothing
//!   listening answers, instead of being accepted by a kernel whose node is gone.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use sim::plan::{PeerIdx, Plan};
use sim::rng::Stream;
use turmoil_net::{
    EnterGuard, KernelConfig, NetstatState, Packet, TcpFlags, TcpSegment, Transport,
};

use super::links::{Fate, Links};

/// Simulated time a retransmission waits beyond the longest round trip, ms.
pub(super) const RETRANSMIT_SLACK_MS: u64 = 100;

/// Simulated time without acknowledgement after which a connection gives up, at least, ms:
/// past the node's idle timeout on the fabric (120 s, `SimTimers::retransmitting`), so the
/// node, not TCP, decides when a silent connection is dead. Real stacks retry far longer
/// (Linux's `tcp_retries2` = 15 is about 15 minutes).
pub(super) const GIVE_UP_AFTER_MS: u64 = 150_000;
const _: () = assert!(GIVE_UP_AFTER_MS > sim::timers::SimTimers::retransmitting().idle_timeout_ms);

/// Counters for the run's notes.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct FabricStats {
    /// Passes made.
    pub(super) passes: u64,
    /// Packets delivered.
    pub(super) delivered: u64,
    /// Packets lost on lossy or cut links.
    pub(super) dropped: u64,
    /// Connections reset by `break`.
    pub(super) broken: u64,
    /// Segments refused by down hosts (dials to a crashed or offline peer).
    pub(super) refused: u64,
}

/// Packets in flight and the links they travel on.
#[derive(Debug)]
pub(super) struct Fabric {
    links: Links,
    peers: BTreeMap<IpAddr, PeerIdx>,
    rng: Stream,
    tick_ms: u64,
    /// In flight, by (delivery time ms, order of sending).
    pending: BTreeMap<(u64, u64), Packet>,
    sent: u64,
    /// Latest delivery time per direction (FIFO links).
    last: BTreeMap<(PeerIdx, PeerIdx), u64>,
    /// Packets on held links, in order of sending.
    held: Vec<Packet>,
    egress: Vec<Packet>,
    /// Passes run every tick until then (after a drop), ms.
    pressing_until_ms: u64,
    stats: FabricStats,
}

impl Fabric {
    /// The fabric for `plan`, with the peers' addresses.
    pub(super) fn new(plan: &Plan, peers: BTreeMap<IpAddr, PeerIdx>) -> Fabric {
        Fabric {
            links: Links::new(plan),
            peers,
            rng: sim::rng::stream(plan.seed, "fabric", 0),
            tick_ms: plan.tick_ms.max(1),
            pending: BTreeMap::new(),
            sent: 0,
            last: BTreeMap::new(),
            held: Vec::new(),
            egress: Vec::new(),
            pressing_until_ms: 0,
            stats: FabricStats::default(),
        }
    }

    /// turmoil-net's kernel settings for `plan`: a retransmit after the longest round trip
    /// (plus slack) counted in passes of one tick, and enough retries to outlast
    /// [`GIVE_UP_AFTER_MS`].
    pub(super) fn kernel_config(plan: &Plan) -> KernelConfig {
        let tick = plan.tick_ms.max(1);
        let round_trip = 2 * Links::latency_max_ms(plan) + RETRANSMIT_SLACK_MS;
        let threshold = round_trip.div_ceil(tick).max(1);
        let retries = GIVE_UP_AFTER_MS.div_ceil(threshold * tick);
        KernelConfig::default()
            .retx_threshold(u32::try_from(threshold).unwrap_or(u32::MAX))
            .retx_max(u32::try_from(retries).unwrap_or(u32::MAX))
    }

    /// How long passes keep running every tick after a drop, ms.
    pub(super) fn retransmit_window_ms(plan: &Plan) -> u64 {
        let config = Fabric::kernel_config(plan);
        let tick = plan.tick_ms.max(1);
        u64::from(config.retx_threshold) * tick * (u64::from(config.retx_max) + 1)
    }

    /// Whether a drop is recent enough that passes must run every tick.
    pub(super) fn pressing(&self, now_ms: u64) -> bool {
        now_ms < self.pressing_until_ms
    }

    /// When the next packet in flight is due, ms.
    pub(super) fn next_due_ms(&self) -> Option<u64> {
        self.pending.keys().next().map(|(at, _)| *at)
    }

    /// The counters so far.
    pub(super) fn stats(&self) -> FabricStats {
        self.stats
    }

    /// The links, for faults.
    pub(super) fn links_mut(&mut self) -> &mut Links {
        &mut self.links
    }

    /// One pass at `now_ms`: delivers what is due (refusing, for a host that is `down`, what
    /// would open a connection), then routes what every host sent.
    pub(super) fn pass(
        &mut self,
        guard: &EnterGuard,
        (now_ms, window_ms): (u64, u64),
        down: &dyn Fn(PeerIdx) -> bool,
    ) {
        self.stats.passes += 1;
        let mut refusals = Vec::new();
        while let Some(entry) = self.pending.first_entry() {
            if entry.key().0 > now_ms {
                break;
            }
            let packet = entry.remove();
            let to_down_host = self.peers.get(&packet.dst).is_some_and(|&peer| down(peer));
            match to_down_host.then(|| refusal(&packet)).flatten() {
                Some(reset) => {
                    refusals.push(reset);
                    self.stats.refused += 1;
                }
                None => {
                    guard.deliver(packet);
                    self.stats.delivered += 1;
                }
            }
        }
        for reset in refusals {
            self.route(reset, now_ms, window_ms);
        }
        let mut egress = std::mem::take(&mut self.egress);
        guard.egress_all(&mut egress);
        for packet in egress.drain(..) {
            self.route(packet, now_ms, window_ms);
        }
        self.egress = egress;
    }

    /// Routes the packets of links released since they were held.
    pub(super) fn release(&mut self, now_ms: u64, window_ms: u64) {
        for packet in std::mem::take(&mut self.held) {
            self.route(packet, now_ms, window_ms);
        }
    }

    fn route(&mut self, packet: Packet, now_ms: u64, window_ms: u64) {
        let (Some(&from), Some(&to)) = (self.peers.get(&packet.src), self.peers.get(&packet.dst))
        else {
            return;
        };
        match self
            .links
            .fate(from, to, carries_data(&packet), &mut self.rng)
        {
            Fate::Drop => {
                self.stats.dropped += 1;
                self.pressing_until_ms = self.pressing_until_ms.max(now_ms + window_ms);
            }
            Fate::Break => self.break_connection(&packet, (from, to), now_ms),
            Fate::Hold => self.held.push(packet),
            Fate::Deliver(delay_ms) => {
                let bytes = u64::from(packet.size());
                let sent_ms = self.links.serialised_ms(from, to, bytes, now_ms);
                self.send_after(packet, (from, to), sent_ms + delay_ms.max(self.tick_ms));
            }
        }
    }

    /// Queues `packet` on its link, due at `due_ms` or after the link's previous packet.
    fn send_after(&mut self, packet: Packet, (from, to): (PeerIdx, PeerIdx), due_ms: u64) {
        let at = due_ms.max(self.last.get(&(from, to)).copied().unwrap_or(0));
        self.last.insert((from, to), at);
        self.pending.insert((at, self.sent), packet);
        self.sent += 1;
    }

    /// A `break`: the packet is lost and its connection is reset at both ends, as a middlebox
    /// that drops a connection's state would: each end gets a RST for the connection's
    /// four-tuple (turmoil-net tears a connection down on any RST that matches it), after the
    /// packets already in flight on its link. A UDP datagram is only lost.
    fn break_connection(&mut self, packet: &Packet, (from, to): (PeerIdx, PeerIdx), now_ms: u64) {
        self.stats.dropped += 1;
        let Transport::Tcp(segment) = &packet.payload else {
            return;
        };
        self.stats.broken += 1;
        let reset = |src, dst, src_port, dst_port| Packet {
            src,
            dst,
            ttl: packet.ttl,
            payload: Transport::Tcp(TcpSegment {
                src_port,
                dst_port,
                seq: 0,
                ack: 0,
                flags: TcpFlags {
                    rst: true,
                    ..TcpFlags::default()
                },
                window: 0,
                payload: Default::default(),
            }),
        };
        let (src, dst) = (packet.src, packet.dst);
        let forward = reset(src, dst, segment.src_port, segment.dst_port);
        let back = reset(dst, src, segment.dst_port, segment.src_port);
        let next = now_ms + self.tick_ms;
        self.send_after(forward, (from, to), next);
        self.send_after(back, (to, from), next);
    }
}

/// The RST a host with nothing listening sends for `packet`, if a down host must refuse it:
/// a TCP segment other than a RST that belongs to none of the host's connections past their
/// handshake (those are the crashed incarnation's sockets finishing their close, and get
/// their packets). The RST follows RFC 793, as turmoil-net's own does.
fn refusal(packet: &Packet) -> Option<Packet> {
    let Transport::Tcp(segment) = &packet.payload else {
        return None;
    };
    if segment.flags.rst || has_open_connection(packet, segment) {
        return None;
    }
    let (seq, ack, ack_flag) = if segment.flags.ack {
        (segment.ack, 0, false)
    } else {
        let length = u32::try_from(segment.payload.len()).unwrap_or(u32::MAX)
            + u32::from(segment.flags.syn)
            + u32::from(segment.flags.fin);
        (0, segment.seq.wrapping_add(length), true)
    };
    Some(Packet {
        src: packet.dst,
        dst: packet.src,
        ttl: packet.ttl,
        payload: Transport::Tcp(TcpSegment {
            src_port: segment.dst_port,
            dst_port: segment.src_port,
            seq,
            ack,
            flags: TcpFlags {
                rst: true,
                ack: ack_flag,
                ..TcpFlags::default()
            },
            window: 0,
            payload: Default::default(),
        }),
    })
}

/// Whether the destination host has a connection for `segment` past its handshake.
fn has_open_connection(packet: &Packet, segment: &TcpSegment) -> bool {
    let local = SocketAddr::new(packet.dst, segment.dst_port);
    let remote = SocketAddr::new(packet.src, segment.src_port);
    turmoil_net::netstat(packet.dst)
        .entries
        .iter()
        .any(|entry| {
            entry.local == local
                && entry.peer == Some(remote)
                && !matches!(
                    entry.state,
                    None | Some(NetstatState::Listen | NetstatState::SynReceived)
                )
        })
}

/// Whether a packet is subject to `loss`: anything but a bare TCP acknowledgement.
fn carries_data(packet: &Packet) -> bool {
    match &packet.payload {
        Transport::Tcp(segment) => {
            let flags = segment.flags;
            !segment.payload.is_empty() || flags.syn || flags.fin || flags.rst || !flags.ack
        }
        Transport::Udp(_) => true,
    }
}
