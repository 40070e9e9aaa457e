//! Connection admission: which connections a peer takes, keeps, and lets go when others
//! wait. A pure machine over the connection manager's view (connections by the shell's key,
//! their direction, remote address and key, and when each last moved msgs); the shell feeds
//! it every accept, dial, handshake and close as an [`Event`] and carries out its
//! [`Action`]s.
//!
//! The policy, against hostile or careless peers:
//! - inbound and outbound connections have separate caps ([`AdmissionLimits::inbound_max`],
//!   [`AdmissionLimits::outbound_max`]) under the total one
//!   ([`AdmissionLimits::connections_max`]), so strangers cannot take the slots of the peers
//!   we dial, nor the other way round;
//! - inbound connections still in their handshake are capped
//!   ([`AdmissionLimits::handshakes_max`]); when they are all taken, a new connection
//!   replaces the oldest of them (each must also finish within the shell's handshake
//!   timeout). Silent TCP connects therefore cost a bounded number of slots, and under a
//!   flood of them every handshake still gets `handshakes_max / rate` seconds: a real one (a
//!   few round trips) completes, a silent one is cycled out;
//! - one remote address (host) holds at most [`AdmissionLimits::per_address_max`] inbound
//!   connections, and one key at most [`AdmissionLimits::per_key_max`] connections (the
//!   oldest goes when a newer one is established: a reconnect replaces a stale connection);
//! - when a new inbound connection finds no room, the open inbound connection that has moved
//!   no msgs for the longest time, if that is at least [`AdmissionLimits::yield_after_ms`],
//!   is closed to make room: a connection that brings nothing yields its slot to one that
//!   waits, and a legitimate peer gets in while an attacker holds idle connections;
//! - failing that, if one address holds at least two more open inbound connections than the
//!   newcomer's, its idlest one is closed for the newcomer: a handful of addresses cannot
//!   keep newcomers from elsewhere out with busy or ever-fresh connections (an attacker
//!   needs `inbound_max` addresses to fill every slot).

use std::collections::BTreeMap;

use crate::ids::PubKey;
use crate::sync::Time;

/// The bounds admission keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Most connections, both directions.
    pub connections_max: usize,
    /// Most inbound connections (handshaking or open).
    pub inbound_max: usize,
    /// Most outbound connections.
    pub outbound_max: usize,
    /// Most inbound connections still in their handshake.
    pub handshakes_max: usize,
    /// Most inbound connections from one remote address (host, without the port).
    pub per_address_max: usize,
    /// Most connections with one remote key.
    pub per_key_max: usize,
    /// An inbound connection that moved no msgs for this long yields its slot to a new one
    /// that finds none.
    pub yield_after_ms: u64,
}

/// What a shell tells [`Admission`]. `K` is the shell's connection key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<K> {
    /// A connection was accepted from `address` (`host:port`): admit or refuse it.
    Inbound {
        /// The new connection.
        conn: K,
        /// Where it comes from.
        address: String,
    },
    /// A dial to `address` connected: admit or refuse it.
    Outbound {
        /// The new connection.
        conn: K,
        /// Where it goes.
        address: String,
    },
    /// A connection's handshake finished with `key` (`None`: plaintext, no key).
    Established {
        /// The connection.
        conn: K,
        /// The remote's proven key.
        key: Option<PubKey>,
    },
    /// A connection moved msgs at `at` (the shell may report late, with the time it moved).
    Useful {
        /// The connection.
        conn: K,
        /// When.
        at: Time,
    },
    /// A connection ended (for any reason, including an [`Action::Close`]).
    Closed {
        /// The connection.
        conn: K,
    },
}

/// Why a new connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its address holds [`AdmissionLimits::per_address_max`] inbound connections.
    PerAddress,
    /// No room (a total or inbound cap), and no connection idle long enough to yield.
    Full,
    /// [`AdmissionLimits::outbound_max`] or the total cap is reached.
    OutboundFull,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::PerAddress => "too many inbound connections from this address",
            Self::Full => "no room, and no connection idle long enough to yield its slot",
            Self::OutboundFull => "every outbound (or total) connection slot is taken",
        })
    }
}

/// Why admission closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// The oldest of [`AdmissionLimits::handshakes_max`] unfinished handshakes, replaced
    /// by a new connection.
    StaleHandshake,
    /// It moved no msgs for [`AdmissionLimits::yield_after_ms`] or more, and a new
    /// connection found no room.
    Idle,
    /// Its address held the most inbound connections (at least two more than the
    /// newcomer's), and a newcomer from another address found no room.
    Crowded,
    /// A newer connection with the same key was established
    /// ([`AdmissionLimits::per_key_max`]).
    SameKey,
}

impl std::fmt::Display for Eviction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::StaleHandshake => {
                "its handshake was the oldest unfinished one, and a new connection needed the slot"
            }
            Self::Idle => "it moved no msgs for long while a new connection waited for a slot",
            Self::Crowded => "its address held the most connections while a newcomer from another address waited for a slot",
            Self::SameKey => "a newer connection with the same key replaced it",
        })
    }
}

/// What [`Admission`] asks the shell to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<K> {
    /// Open the new connection.
    Admit(K),
    /// Drop the new connection.
    Refuse(K, Refusal),
    /// Close an existing connection (admission already stopped counting it).
    Close(K, Eviction),
}

#[derive(Debug, Clone)]
struct Conn {
    inbound: bool,
    host: String,
    key: Option<PubKey>,
    handshaking: bool,
    opened: Time,
    /// When it last moved msgs (or opened).
    useful: Time,
}

/// The admission machine. See the module docs.
#[derive(Debug, Clone)]
pub struct Admission<K> {
    limits: AdmissionLimits,
    conns: BTreeMap<K, Conn>,
}

impl<K: Ord + Copy> Admission<K> {
    /// No connections yet.
    #[must_use]
    pub fn new(limits: AdmissionLimits) -> Self {
        Self {
            limits,
            conns: BTreeMap::new(),
        }
    }

    /// Handles one event, appending what to do.
    pub fn handle(&mut self, now: Time, event: Event<K>, out: &mut Vec<Action<K>>) {
        match event {
            Event::Inbound { conn, address } => self.inbound(now, conn, &address, out),
            Event::Outbound { conn, address } => {
                if self.outbound_room() {
                    self.insert(now, conn, &address, false);
                    out.push(Action::Admit(conn));
                } else {
                    out.push(Action::Refuse(conn, Refusal::OutboundFull));
                }
            }
            Event::Established { conn, key } => self.established(conn, key, out),
            Event::Useful { conn, at } => {
                if let Some(entry) = self.conns.get_mut(&conn) {
                    entry.useful = entry.useful.max(at);
                }
            }
            Event::Closed { conn } => {
                self.conns.remove(&conn);
            }
        }
    }

    /// Connections counted.
    #[must_use]
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether no connection is counted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    fn inbound_count(&self) -> usize {
        self.conns.values().filter(|conn| conn.inbound).count()
    }

    fn outbound_room(&self) -> bool {
        let outbound = self.conns.len() - self.inbound_count();
        self.conns.len() < self.limits.connections_max && outbound < self.limits.outbound_max
    }

    fn inbound(&mut self, now: Time, conn: K, address: &str, out: &mut Vec<Action<K>>) {
        let host = host_of(address);
        let from_host = self
            .conns
            .values()
            .filter(|entry| entry.inbound && entry.host == host)
            .count();
        if from_host >= self.limits.per_address_max {
            out.push(Action::Refuse(conn, Refusal::PerAddress));
            return;
        }
        let handshaking = self
            .conns
            .values()
            .filter(|entry| entry.inbound && entry.handshaking)
            .count();
        let full = self.conns.len() >= self.limits.connections_max
            || self.inbound_count() >= self.limits.inbound_max;
        let evicted = if handshaking >= self.limits.handshakes_max {
            self.oldest_handshake()
                .map(|victim| (victim, Eviction::StaleHandshake))
        } else if full {
            self.idlest_inbound(now)
                .map(|victim| (victim, Eviction::Idle))
                .or_else(|| {
                    self.crowded_inbound(host)
                        .map(|victim| (victim, Eviction::Crowded))
                })
        } else {
            None
        };
        if (handshaking >= self.limits.handshakes_max || full) && evicted.is_none() {
            out.push(Action::Refuse(conn, Refusal::Full));
            return;
        }
        if let Some((victim, why)) = evicted {
            self.conns.remove(&victim);
            out.push(Action::Close(victim, why));
        }
        self.insert(now, conn, address, true);
        out.push(Action::Admit(conn));
    }

    /// The inbound connection in its handshake for longest (ties: the lowest key).
    fn oldest_handshake(&self) -> Option<K> {
        self.conns
            .iter()
            .filter(|(_, entry)| entry.inbound && entry.handshaking)
            .min_by_key(|(conn, entry)| (entry.opened, **conn))
            .map(|(conn, _)| *conn)
    }

    /// The open inbound connection idle (no msgs moved) for longest, if that is at least
    /// [`AdmissionLimits::yield_after_ms`]; ties go to the lowest key.
    fn idlest_inbound(&self, now: Time) -> Option<K> {
        self.conns
            .iter()
            .filter(|(_, entry)| entry.inbound && !entry.handshaking)
            .filter(|(_, entry)| now.0.saturating_sub(entry.useful.0) >= self.limits.yield_after_ms)
            .min_by_key(|(conn, entry)| (entry.useful, **conn))
            .map(|(conn, _)| *conn)
    }

    /// When a newcomer from `host` finds no room and no connection is idle long enough:
    /// the idlest open inbound connection of the host that holds the most, if that host
    /// holds at least two more than `host` (so the swap cannot be undone by the loser's
    /// next connection). Ties go to the lowest host. This way a few addresses cannot keep
    /// out newcomers from others by keeping their connections busy or fresh.
    fn crowded_inbound(&self, host: &str) -> Option<K> {
        let mut by_host: BTreeMap<&str, usize> = BTreeMap::new();
        for entry in self.conns.values() {
            if entry.inbound && !entry.handshaking {
                *by_host.entry(entry.host.as_str()).or_default() += 1;
            }
        }
        let own = by_host.get(host).copied().unwrap_or(0);
        let (crowded, count) = by_host
            .iter()
            .max_by_key(|(name, count)| (**count, std::cmp::Reverse(**name)))?;
        if *count < own + 2 {
            return None;
        }
        self.conns
            .iter()
            .filter(|(_, entry)| entry.inbound && !entry.handshaking && entry.host == *crowded)
            .min_by_key(|(conn, entry)| (entry.useful, **conn))
            .map(|(conn, _)| *conn)
    }

    fn insert(&mut self, now: Time, conn: K, address: &str, inbound: bool) {
        self.conns.insert(
            conn,
            Conn {
                inbound,
                host: host_of(address).to_owned(),
                key: None,
                handshaking: true,
                opened: now,
                useful: now,
            },
        );
    }

    /// `conn`'s handshake finished with `key`: if that key now holds more than
    /// [`AdmissionLimits::per_key_max`] connections, the oldest others close.
    fn established(&mut self, conn: K, key: Option<PubKey>, out: &mut Vec<Action<K>>) {
        let Some(entry) = self.conns.get_mut(&conn) else {
            return;
        };
        entry.handshaking = false;
        entry.key = key;
        let Some(key) = key else {
            return;
        };
        let mut same: Vec<(Time, K)> = self
            .conns
            .iter()
            .filter(|(other, entry)| **other != conn && entry.key == Some(key))
            .map(|(other, entry)| (entry.opened, *other))
            .collect();
        same.sort();
        let excess = (same.len() + 1).saturating_sub(self.limits.per_key_max);
        for (_, replaced) in same.into_iter().take(excess) {
            self.conns.remove(&replaced);
            out.push(Action::Close(replaced, Eviction::SameKey));
        }
    }

    /// Panics if a bound is broken. Tests call it after every step.
    pub fn check_invariants(&self) {
        let limits = &self.limits;
        let inbound = self.inbound_count();
        assert!(self.conns.len() <= limits.connections_max, "total bound");
        assert!(inbound <= limits.inbound_max, "inbound bound");
        assert!(
            self.conns.len() - inbound <= limits.outbound_max,
            "outbound bound"
        );
        let handshaking = self
            .conns
            .values()
            .filter(|entry| entry.inbound && entry.handshaking)
            .count();
        assert!(handshaking <= limits.handshakes_max, "handshake bound");
        let mut by_key: BTreeMap<PubKey, usize> = BTreeMap::new();
        let mut by_host: BTreeMap<&str, usize> = BTreeMap::new();
        for entry in self.conns.values() {
            if let Some(key) = entry.key {
                *by_key.entry(key).or_default() += 1;
            }
            if entry.inbound {
                *by_host.entry(entry.host.as_str()).or_default() += 1;
            }
        }
        assert!(
            by_key.values().all(|count| *count <= limits.per_key_max),
            "per-key bound"
        );
        assert!(
            by_host
                .values()
                .all(|count| *count <= limits.per_address_max),
            "per-address bound"
        );
    }
}

/// The host part of `host:port` (`[v6]:port` too); the whole text when there is no port.
#[must_use]
pub fn host_of(address: &str) -> &str {
    match address.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            host.trim_start_matches('[').trim_end_matches(']')
        }
        _ => address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> AdmissionLimits {
        AdmissionLimits {
            connections_max: 8,
            inbound_max: 5,
            outbound_max: 4,
            handshakes_max: 3,
            per_address_max: 3,
            per_key_max: 2,
            yield_after_ms: 1000,
        }
    }

    fn key(seed: u8) -> PubKey {
        crate::keys::Keypair::from_seed(&[seed; 32]).public()
    }

    /// One event; its actions; the invariants checked.
    fn step(admission: &mut Admission<u32>, now: u64, event: Event<u32>) -> Vec<Action<u32>> {
        let mut out = Vec::new();
        admission.handle(Time(now), event, &mut out);
        admission.check_invariants();
        out
    }

    fn inbound(
        admission: &mut Admission<u32>,
        now: u64,
        conn: u32,
        address: &str,
    ) -> Vec<Action<u32>> {
        let address = address.to_owned();
        step(admission, now, Event::Inbound { conn, address })
    }

    fn established(
        admission: &mut Admission<u32>,
        conn: u32,
        key: Option<PubKey>,
    ) -> Vec<Action<u32>> {
        step(admission, 0, Event::Established { conn, key })
    }

    #[test]
    fn silent_connects_are_bounded_by_the_address_cap_and_cycled_through_the_handshake_cap() {
        let mut admission = Admission::new(limits());
        for conn in 0..3u32 {
            let address = format!("10.0.0.1:{conn}");
            let actions = inbound(&mut admission, u64::from(conn), conn, &address);
            assert_eq!(actions, [Action::Admit(conn)]);
        }
        assert_eq!(
            inbound(&mut admission, 5, 3, "10.0.0.1:9"),
            [Action::Refuse(3, Refusal::PerAddress)],
            "the attacker's address is full"
        );
        assert_eq!(
            inbound(&mut admission, 6, 4, "10.0.0.2:1"),
            [Action::Close(0, Eviction::StaleHandshake), Action::Admit(4)],
            "another address gets in, replacing the oldest handshake"
        );
        assert!(established(&mut admission, 4, Some(key(1))).is_empty());
        assert_eq!(
            inbound(&mut admission, 7, 5, "10.0.0.3:1"),
            [Action::Admit(5)],
            "a finished handshake frees its handshake slot, and is never cycled out"
        );
        assert_eq!(
            inbound(&mut admission, 8, 6, "10.0.0.4:1"),
            [Action::Close(1, Eviction::StaleHandshake), Action::Admit(6)]
        );
        assert_eq!(host_of("[::1]:8008"), "::1");
        assert_eq!(host_of("127.0.0.1:8008"), "127.0.0.1");
        assert_eq!(host_of("weird"), "weird");
        assert_eq!(host_of("weird:"), "weird:");
    }

    #[test]
    fn an_idle_connection_yields_its_slot_only_when_someone_waits() {
        let mut admission = Admission::new(limits());
        for conn in 0..5u32 {
            let address = format!("10.0.0.{conn}:1");
            assert_eq!(
                inbound(&mut admission, 0, conn, &address),
                [Action::Admit(conn)]
            );
            established(
                &mut admission,
                conn,
                Some(key(u8::try_from(conn).expect("small"))),
            );
        }
        assert_eq!(admission.len(), 5);
        assert_eq!(
            inbound(&mut admission, 500, 9, "10.0.1.1:1"),
            [Action::Refuse(9, Refusal::Full)],
            "full, and nobody idle long enough yet"
        );
        step(
            &mut admission,
            1600,
            Event::Useful {
                conn: 0,
                at: Time(1500),
            },
        );
        assert_eq!(
            inbound(&mut admission, 2000, 9, "10.0.1.1:1"),
            [Action::Close(1, Eviction::Idle), Action::Admit(9)],
            "the idlest (ties: the lowest key) yields; 0 moved msgs lately"
        );
        assert_eq!(admission.len(), 5);
        // Handshaking connections never yield as idle (the handshake timeout bounds them).
        let mut admission = Admission::new(limits());
        for conn in 0..3u32 {
            inbound(&mut admission, 0, conn, &format!("10.0.0.{conn}:1"));
        }
        assert_eq!(admission.idlest_inbound(Time(10_000)), None);
    }

    #[test]
    fn a_crowded_address_gives_way_to_a_newcomer_from_another() {
        let mut admission = Admission::new(limits());
        for conn in 0..3u32 {
            inbound(&mut admission, 0, conn, &format!("10.0.0.1:{conn}"));
            established(
                &mut admission,
                conn,
                Some(key(u8::try_from(conn).expect("small"))),
            );
        }
        for conn in 3..5u32 {
            inbound(&mut admission, 0, conn, &format!("10.0.0.2:{conn}"));
            established(
                &mut admission,
                conn,
                Some(key(u8::try_from(conn).expect("small"))),
            );
        }
        // Everyone moved msgs just now: nobody is idle.
        for conn in 0..5u32 {
            step(
                &mut admission,
                10,
                Event::Useful {
                    conn,
                    at: Time(u64::from(10 - conn)),
                },
            );
        }
        assert_eq!(
            inbound(&mut admission, 10, 9, "10.0.0.2:9"),
            [Action::Refuse(9, Refusal::Full)],
            "10.0.0.2 holds 2 and 10.0.0.1 only 3: not crowded enough to give way"
        );
        assert_eq!(
            inbound(&mut admission, 10, 9, "10.0.0.3:1"),
            [Action::Close(2, Eviction::Crowded), Action::Admit(9)],
            "the idlest of the most crowded address gives way"
        );
        established(&mut admission, 9, Some(key(9)));
        assert_eq!(
            inbound(&mut admission, 10, 10, "10.0.0.1:7"),
            [Action::Refuse(10, Refusal::Full)],
            "and does not take it back: every address holds at most one more than another"
        );
    }

    #[test]
    fn one_key_holds_a_bounded_number_of_connections_newest_kept() {
        let mut admission = Admission::new(limits());
        for conn in 0..3u32 {
            inbound(
                &mut admission,
                u64::from(conn),
                conn,
                &format!("10.0.0.{conn}:1"),
            );
        }
        assert!(established(&mut admission, 0, Some(key(7))).is_empty());
        assert!(established(&mut admission, 1, Some(key(7))).is_empty());
        assert_eq!(
            established(&mut admission, 2, Some(key(7))),
            [Action::Close(0, Eviction::SameKey)]
        );
        // No key (plaintext): no per-key bound.
        assert!(established(&mut admission, 1, None).is_empty());
        // A late handshake of a connection already closed changes nothing.
        assert!(established(&mut admission, 0, Some(key(7))).is_empty());
        assert_eq!(admission.len(), 2);
    }

    #[test]
    fn outbound_and_inbound_have_their_own_caps_under_the_total() {
        let mut admission = Admission::new(limits());
        for conn in 0..4u32 {
            let address = "10.9.9.9:1".to_owned();
            let actions = step(&mut admission, 0, Event::Outbound { conn, address });
            assert_eq!(actions, [Action::Admit(conn)]);
        }
        let address = "10.9.9.9:1".to_owned();
        assert_eq!(
            step(&mut admission, 0, Event::Outbound { conn: 99, address }),
            [Action::Refuse(99, Refusal::OutboundFull)],
            "the outbound cap"
        );
        for conn in 4..8u32 {
            let address = format!("10.0.0.{conn}:1");
            assert_eq!(
                inbound(&mut admission, 0, conn, &address),
                [Action::Admit(conn)]
            );
            established(&mut admission, conn, None);
        }
        assert_eq!(
            inbound(&mut admission, 0, 8, "10.0.2.1:1"),
            [Action::Refuse(8, Refusal::Full)],
            "the total cap"
        );
        step(&mut admission, 0, Event::Closed { conn: 4 });
        assert_eq!(
            inbound(&mut admission, 0, 8, "10.0.2.1:1"),
            [Action::Admit(8)]
        );
    }

    #[test]
    fn random_event_sequences_keep_every_bound() {
        use rand_chacha::ChaCha8Rng;
        use rand_core::{Rng, SeedableRng};
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let mut admission = Admission::new(limits());
        let mut next = 0u32;
        for now in 0..20_000u64 {
            let conn = rng.next_u32() % (next + 1);
            let event = match rng.next_u32() % 6 {
                0 | 1 => {
                    next += 1;
                    let host = rng.next_u32() % 4;
                    Event::Inbound {
                        conn: next,
                        address: format!("10.0.0.{host}:{now}"),
                    }
                }
                2 => {
                    next += 1;
                    Event::Outbound {
                        conn: next,
                        address: "10.1.0.1:1".to_owned(),
                    }
                }
                3 => {
                    let seed = u8::try_from(rng.next_u32() % 3).expect("small");
                    Event::Established {
                        conn,
                        key: Some(key(seed)),
                    }
                }
                4 => Event::Useful {
                    conn,
                    at: Time(now),
                },
                _ => Event::Closed { conn },
            };
            step(&mut admission, now, event);
        }
    }
}
