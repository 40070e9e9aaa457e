//! The streams substrate's switchboard: every connection as two one-way pipes of the bytes in
//! flight, timed by the fabric's link model ([`Links`]). No segments, no socket buffers: a
//! pipe holds only bytes written and not yet read, and frees each write when it is read.
//!
//! What each link property and fault becomes on a reliable stream:
//! - latency: each write (one `poll_write`) is one chunk, due after a latency drawn from the
//!   link's model, never before the direction's previous chunk (FIFO, as TCP delivers).
//! - `loss` (`fail_rate`): a lost chunk is retransmitted: each loss draw adds one
//!   retransmission timeout ([`Board::rto_ms`], the fabric's: twice the longest latency plus
//!   slack) to its delay, drawn again until it gets through. Past [`GIVE_UP_AFTER_MS`] of
//!   retransmission the connection is reset, as the fabric's TCP gives up.
//! - `break`: the chunk is lost and the connection reset at both ends, after what is in flight.
//! - `partition` / `one-way` (a cut) and `hold`: chunks written while the direction is cut or
//!   held are parked; a `heal` or `release` times them again from then (a TCP would resend at
//!   its next retransmission). The node's idle timeout decides when a stalled connection is dead.
//! - crash / restart: a down host's listener is gone, so a dial is refused after a round trip;
//!   a crashed host's connection ends close (FIN after what they wrote).
//!
//! The bound: a direction holds at most [`WINDOW_BYTES`] unread bytes (in flight or arrived);
//! a writer past it waits until its reader reads, so a slow reader cannot grow memory. The
//! window opens as soon as the reader reads (no acknowledgement travels back), so a bulk
//! transfer moves up to one window per one-way latency, about twice TCP's window-bound rate.
//! Not modelled: congestion control, slow start, bandwidth, segment boundaries, Nagle, and
//! the shape of segment loss (a loss delays a whole write, not one segment of it).

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::task::Waker;

use sim::plan::{PeerIdx, Plan};
use sim::rng::Stream;
use tokio::time::Instant;

use super::fabric::{GIVE_UP_AFTER_MS, RETRANSMIT_SLACK_MS};
use super::links::{Fate, Links};

/// Unread bytes one direction of a connection may hold (TCP's classic 64 KiB window).
pub(crate) const WINDOW_BYTES: usize = 64 * 1024;

/// Chunk slots a drained pipe may keep; a larger queue is freed when it empties.
const IDLE_QUEUE_CAPACITY: usize = 8;

/// A connection's id on the switchboard (in order of opening).
pub(crate) type ConnId = u64;

/// When a chunk (or a dial) gets across.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timing {
    /// Arrives at this simulated time, ms.
    Due(u64),
    /// The direction is cut or held: wait for a heal or release.
    Parked,
    /// The connection is reset (a `break`, or retransmission gave up).
    Reset,
}

/// A write as queued: 24 bytes (a boxed slice, and a `u32` offset since a write is at most
/// a window), where a `Vec` and a `usize` took 32.
#[derive(Debug)]
enum Payload {
    Data { bytes: Box<[u8]>, read: u32 },
    Fin,
    Reset,
}

/// 32 bytes a queued chunk, not 48: a partition parks whole windows of small writes, and at
/// `swarm-100`'s peak the queues held about 300,000 slots (docs/simulation-performance.md,
/// tenth pass).
#[derive(Debug)]
struct Chunk {
    /// When it arrives, ms; [`PARKED`] while parked on a cut or held link.
    due_ms: u64,
    payload: Payload,
}

/// A parked chunk's `due_ms`: no simulated time reaches it.
const PARKED: u64 = u64::MAX;

impl Chunk {
    /// When it arrives, ms; `None` while parked.
    fn due(&self) -> Option<u64> {
        (self.due_ms != PARKED).then_some(self.due_ms)
    }
}

/// What a reader finds at the head of its direction.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Head {
    /// Nothing arrived yet; wait for a wake.
    Empty,
    /// The next chunk arrives then, ms.
    Later(u64),
    /// This many bytes were copied.
    Read(usize),
    /// The writer closed: end of stream.
    Eof,
    /// The connection was reset.
    Reset,
}

/// One direction of a connection: the chunks written and not yet read, in order.
#[derive(Debug, Default)]
struct Pipe {
    chunks: VecDeque<Chunk>,
    /// Latest due time given to a chunk (FIFO), ms.
    last_due_ms: u64,
    /// Data bytes written and not yet read (the window's measure).
    unread: usize,
    parked: usize,
    /// The writer sent FIN (or its end closed): no more writes.
    closed: bool,
    /// The connection was reset or the reader's end is gone: writes fail.
    dead: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl Pipe {
    fn wake_reader(&mut self) {
        if let Some(waker) = self.reader.take() {
            waker.wake();
        }
    }

    fn wake_writer(&mut self) {
        if let Some(waker) = self.writer.take() {
            waker.wake();
        }
    }

    fn push(&mut self, timing: Timing, payload: Payload) {
        let due_ms = match timing {
            Timing::Due(due) if self.parked == 0 => {
                let due = due.max(self.last_due_ms);
                self.last_due_ms = due;
                debug_assert_ne!(due, PARKED, "a due time at the end of time");
                due
            }
            _ => {
                self.parked += 1;
                PARKED
            }
        };
        self.chunks.push_back(Chunk { due_ms, payload });
        self.wake_reader();
    }

    /// Copies what has arrived by `now_ms` into `out`.
    fn read(&mut self, now_ms: u64, out: &mut [u8]) -> Head {
        let Some(chunk) = self.chunks.front_mut() else {
            return Head::Empty;
        };
        match chunk.due() {
            None => return Head::Empty,
            Some(due) if due > now_ms => return Head::Later(due),
            Some(_) => {}
        }
        let Payload::Data { bytes, read } = &mut chunk.payload else {
            return match chunk.payload {
                Payload::Fin => Head::Eof,
                _ => Head::Reset,
            };
        };
        let offset = *read as usize;
        let count = out.len().min(bytes.len() - offset);
        out[..count].copy_from_slice(&bytes[offset..offset + count]);
        *read += u32::try_from(count).expect("invariant: a write is at most a window");
        if *read as usize == bytes.len() {
            self.chunks.pop_front();
            // A drained pipe gives back the queue a burst grew (most pipes are idle).
            if self.chunks.is_empty() && self.chunks.capacity() > IDLE_QUEUE_CAPACITY {
                self.chunks = VecDeque::new();
            }
        }
        self.unread -= count;
        self.wake_writer();
        Head::Read(count)
    }

    /// The parked chunks are lost (the connection is reset); returns their unread bytes.
    fn drop_parked(&mut self) -> usize {
        let keep = self.chunks.len() - self.parked;
        let lost: usize = self
            .chunks
            .drain(keep..)
            .map(|chunk| match chunk.payload {
                Payload::Data { bytes, read } => bytes.len() - read as usize,
                Payload::Fin | Payload::Reset => 0,
            })
            .sum();
        self.parked = 0;
        self.unread -= lost;
        lost
    }

    /// The reader's end is gone: everything unread is freed and the writer's next write fails.
    fn abandon(&mut self) -> usize {
        let freed = self.unread;
        self.chunks.clear();
        self.unread = 0;
        self.parked = 0;
        self.dead = true;
        self.wake_writer();
        freed
    }
}

/// One connection: pipe 0 carries the dialer's bytes to the acceptor, pipe 1 the reverse.
#[derive(Debug)]
struct Connection {
    /// (dialer, acceptor).
    ends: [PeerIdx; 2],
    pipes: [Pipe; 2],
    /// Which ends are still open.
    open: [bool; 2],
}

/// Counters for the run's notes.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct StreamStats {
    pub(crate) connections: u64,
    pub(crate) chunks: u64,
    pub(crate) bytes: u64,
    pub(crate) retransmits: u64,
    pub(crate) resets: u64,
    pub(crate) refused: u64,
    /// Most unread bytes held across all pipes at once.
    pub(crate) peak_unread: u64,
}

/// A listening port's accepted-by-the-network, not-yet-by-the-node connections.
#[derive(Debug, Default)]
struct Listening {
    id: u64,
    queue: VecDeque<(ConnId, String)>,
    waker: Option<Waker>,
}

/// Every connection, listener and link of a streams run (one per run, behind a mutex).
#[derive(Debug)]
pub(crate) struct Board {
    links: Links,
    rng: Stream,
    tick_ms: u64,
    rto_ms: u64,
    pub(crate) start: Instant,
    names: Vec<String>,
    listeners: BTreeMap<(PeerIdx, u16), Listening>,
    connections: BTreeMap<ConnId, Connection>,
    next_id: u64,
    /// Next ephemeral port per host.
    next_port: Vec<u16>,
    unread_total: u64,
    stats: StreamStats,
}

impl Board {
    /// The switchboard for `plan`, its clock starting at `start`.
    pub(crate) fn new(plan: &Plan, start: Instant) -> Board {
        Board {
            links: Links::new(plan),
            rng: sim::rng::stream(plan.seed, "streams", 0),
            tick_ms: plan.tick_ms.max(1),
            rto_ms: 2 * Links::latency_max_ms(plan) + RETRANSMIT_SLACK_MS,
            start,
            names: plan.peers.iter().map(|peer| peer.name.clone()).collect(),
            listeners: BTreeMap::new(),
            connections: BTreeMap::new(),
            next_id: 0,
            next_port: vec![49_152; plan.peers.len()],
            unread_total: 0,
            stats: StreamStats::default(),
        }
    }

    /// Simulated ms since the start.
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn stats(&self) -> StreamStats {
        self.stats
    }

    pub(crate) fn links_mut(&mut self) -> &mut Links {
        &mut self.links
    }

    /// The retransmission timeout, ms.
    pub(crate) fn rto_ms(&self) -> u64 {
        self.rto_ms
    }

    /// The peer called `name`.
    pub(crate) fn peer_named(&self, name: &str) -> Option<PeerIdx> {
        let index = self.names.iter().position(|known| known == name)?;
        PeerIdx::try_from(index).ok()
    }

    pub(crate) fn name(&self, peer: PeerIdx) -> &str {
        &self.names[peer as usize]
    }

    /// When something sent now from `from` to `to` arrives: loss becomes retransmission delay.
    pub(crate) fn timing(&mut self, from: PeerIdx, to: PeerIdx) -> Timing {
        if self.links.blocked(from, to) {
            return Timing::Parked;
        }
        let now = self.now_ms();
        let mut delay = 0;
        loop {
            match self.links.fate(from, to, true, &mut self.rng) {
                Fate::Deliver(latency) => {
                    return Timing::Due(now + delay + latency.max(self.tick_ms));
                }
                Fate::Hold => return Timing::Parked,
                Fate::Break => return Timing::Reset,
                Fate::Drop => {
                    self.stats.retransmits += 1;
                    delay += self.rto_ms;
                    if delay > GIVE_UP_AFTER_MS {
                        return Timing::Reset;
                    }
                }
            }
        }
    }
}

/// Listeners and dials.
impl Board {
    /// Opens a listener on `(peer, port)`; the id tells a later incarnation's listener apart.
    pub(crate) fn listen(&mut self, peer: PeerIdx, port: u16) -> io::Result<u64> {
        if self.listeners.contains_key(&(peer, port)) {
            return Err(io::Error::from(io::ErrorKind::AddrInUse));
        }
        self.next_id += 1;
        let listening = Listening {
            id: self.next_id,
            ..Listening::default()
        };
        self.listeners.insert((peer, port), listening);
        Ok(self.next_id)
    }

    /// Closes listener `id` on `(peer, port)`; what it had not accepted is closed.
    pub(crate) fn unlisten(&mut self, peer: PeerIdx, port: u16, id: u64) {
        // An earlier incarnation's listener dropping late must not close a newer one.
        if self.listeners.get(&(peer, port)).is_none_or(|l| l.id != id) {
            return;
        }
        if let Some(listening) = self.listeners.remove(&(peer, port)) {
            for (conn, _) in listening.queue {
                self.close_end(conn, 1);
            }
        }
    }

    /// The next connection listener `(peer, port)` has, registering `waker` if none.
    pub(crate) fn accept(
        &mut self,
        (peer, port): (PeerIdx, u16),
        waker: &Waker,
    ) -> Option<io::Result<(ConnId, String)>> {
        let Some(listening) = self.listeners.get_mut(&(peer, port)) else {
            return Some(Err(io::Error::from(io::ErrorKind::NotConnected)));
        };
        let next = listening.queue.pop_front();
        if next.is_none() {
            listening.waker = Some(waker.clone());
        }
        next.map(Ok)
    }

    /// A dial from `from` reached `(to, port)` now: the new connection, queued on the
    /// listener, or refused when nothing listens there.
    pub(crate) fn arrive(&mut self, from: PeerIdx, (to, port): (PeerIdx, u16)) -> Option<ConnId> {
        let Some(listening) = self.listeners.get_mut(&(to, port)) else {
            self.stats.refused += 1;
            return None;
        };
        self.next_id += 1;
        let id = self.next_id;
        let local = &mut self.next_port[from as usize];
        let remote = format!("{}:{local}", self.names[from as usize]);
        *local = local.checked_add(1).unwrap_or(49_152);
        listening.queue.push_back((id, remote));
        if let Some(waker) = listening.waker.take() {
            waker.wake();
        }
        let connection = Connection {
            ends: [from, to],
            pipes: [Pipe::default(), Pipe::default()],
            open: [true, true],
        };
        self.connections.insert(id, connection);
        self.stats.connections += 1;
        Some(id)
    }
}

/// Reading, writing and closing connection ends. `side` 0 is the dialer, 1 the acceptor.
impl Board {
    /// Writes up to a window's room of `bytes` from `side`; `Pending` (waker kept) when full.
    pub(crate) fn write(
        &mut self,
        (conn, side): (ConnId, usize),
        bytes: &[u8],
        waker: &Waker,
    ) -> std::task::Poll<io::Result<usize>> {
        use std::task::Poll;
        let Some(connection) = self.connections.get(&conn) else {
            return Poll::Ready(Err(io::Error::from(io::ErrorKind::NotConnected)));
        };
        let (from, to) = (connection.ends[side], connection.ends[1 - side]);
        let pipe = &connection.pipes[side];
        if pipe.dead || pipe.closed {
            return Poll::Ready(Err(io::Error::from(io::ErrorKind::BrokenPipe)));
        }
        let room = WINDOW_BYTES.saturating_sub(pipe.unread);
        if room == 0 {
            let pipe = &mut self.pipe(conn, side);
            pipe.writer = Some(waker.clone());
            return Poll::Pending;
        }
        let count = room.min(bytes.len());
        let timing = self.timing(from, to);
        if timing == Timing::Reset {
            self.reset(conn);
            return Poll::Ready(Ok(count));
        }
        let pipe = self.pipe(conn, side);
        pipe.unread += count;
        pipe.push(
            timing,
            Payload::Data {
                bytes: bytes[..count].into(),
                read: 0,
            },
        );
        self.unread_total += count as u64;
        self.stats.peak_unread = self.stats.peak_unread.max(self.unread_total);
        self.stats.chunks += 1;
        self.stats.bytes += count as u64;
        Poll::Ready(Ok(count))
    }

    fn pipe(&mut self, conn: ConnId, side: usize) -> &mut Pipe {
        &mut self
            .connections
            .get_mut(&conn)
            .expect("a connection with an open end is on the board")
            .pipes[side]
    }

    /// Reads into `out` at `side` what has arrived; registers `waker` when nothing has.
    pub(crate) fn read(
        &mut self,
        (conn, side): (ConnId, usize),
        out: &mut [u8],
        waker: &Waker,
    ) -> Head {
        let now = self.now_ms();
        let Some(connection) = self.connections.get_mut(&conn) else {
            return Head::Reset;
        };
        let pipe = &mut connection.pipes[1 - side];
        let head = pipe.read(now, out);
        match head {
            Head::Empty => pipe.reader = Some(waker.clone()),
            Head::Read(count) => self.unread_total -= count as u64,
            Head::Later(_) | Head::Eof | Head::Reset => {}
        }
        head
    }

    /// `side` sends FIN after what it wrote (a shutdown or a close).
    pub(crate) fn finish(&mut self, (conn, side): (ConnId, usize)) {
        let Some(connection) = self.connections.get(&conn) else {
            return;
        };
        let pipe = &connection.pipes[side];
        if pipe.closed || pipe.dead {
            return;
        }
        let (from, to) = (connection.ends[side], connection.ends[1 - side]);
        match self.timing(from, to) {
            Timing::Reset => self.reset(conn),
            timing => {
                let pipe = self.pipe(conn, side);
                pipe.closed = true;
                pipe.push(timing, Payload::Fin);
            }
        }
    }

    /// `side`'s end is closed (dropped, or its host crashed): FIN after what it wrote, what
    /// it had not read is freed; the connection goes when both ends are closed.
    pub(crate) fn close_end(&mut self, conn: ConnId, side: usize) {
        if !self.connections.get(&conn).is_some_and(|c| c.open[side]) {
            return;
        }
        self.finish((conn, side));
        let Some(connection) = self.connections.get_mut(&conn) else {
            return;
        };
        connection.open[side] = false;
        let freed = connection.pipes[1 - side].abandon();
        self.unread_total -= freed as u64;
        if connection.open == [false, false] {
            let freed = connection.pipes[side].abandon();
            self.unread_total -= freed as u64;
            self.connections.remove(&conn);
        }
    }

    /// A reset: both directions end with a RST after what is in flight; writes fail.
    fn reset(&mut self, conn: ConnId) {
        self.stats.resets += 1;
        let now = self.now_ms() + self.tick_ms;
        if let Some(connection) = self.connections.get_mut(&conn) {
            for pipe in &mut connection.pipes {
                let lost = pipe.drop_parked();
                self.unread_total -= lost as u64;
                pipe.dead = true;
                pipe.push(Timing::Due(now), Payload::Reset);
                pipe.wake_writer();
            }
        }
    }

    /// Every end on `peer` closes (its host crashed or went offline), and its listeners go.
    pub(crate) fn host_down(&mut self, peer: PeerIdx) {
        let ends: Vec<(ConnId, usize)> = self
            .connections
            .iter()
            .flat_map(|(&id, c)| {
                (0..2)
                    .filter(move |&s| c.ends[s] == peer && c.open[s])
                    .map(move |s| (id, s))
            })
            .collect();
        for (conn, side) in ends {
            self.close_end(conn, side);
        }
        let ports: Vec<(u16, u64)> = self
            .listeners
            .iter()
            .filter(|((host, _), _)| *host == peer)
            .map(|((_, port), l)| (*port, l.id))
            .collect();
        for (port, id) in ports {
            self.unlisten(peer, port, id);
        }
    }

    /// After a heal or release: parked chunks get through now, in order, where they can.
    pub(crate) fn unpark(&mut self) {
        let parked: Vec<(ConnId, usize)> = self
            .connections
            .iter()
            .flat_map(|(&id, c)| {
                (0..2)
                    .filter(move |&s| c.pipes[s].parked > 0)
                    .map(move |s| (id, s))
            })
            .collect();
        for (conn, side) in parked {
            self.unpark_pipe(conn, side);
        }
    }

    fn unpark_pipe(&mut self, conn: ConnId, side: usize) {
        let Some(connection) = self.connections.get(&conn) else {
            return;
        };
        let (from, to) = (connection.ends[side], connection.ends[1 - side]);
        let mut index = connection.pipes[side].chunks.len() - connection.pipes[side].parked;
        while self.pipe(conn, side).parked > 0 {
            match self.timing(from, to) {
                Timing::Parked => return,
                Timing::Reset => return self.reset(conn),
                Timing::Due(due) => {
                    let pipe = self.pipe(conn, side);
                    let due = due.max(pipe.last_due_ms);
                    pipe.last_due_ms = due;
                    pipe.chunks[index].due_ms = due;
                    pipe.parked -= 1;
                    index += 1;
                    pipe.wake_reader();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::Poll;
    use std::time::Duration;

    use sim::plan::FaultStep;
    use sim::scenario::{FaultAction, Scenario};

    use super::*;

    #[test]
    fn a_queued_chunk_takes_32_bytes() {
        assert_eq!(size_of::<Payload>(), 24);
        assert_eq!(size_of::<Chunk>(), 32);
    }

    #[test]
    fn a_window_fits_a_chunks_read_offset() {
        assert!(u32::try_from(WINDOW_BYTES).is_ok());
    }

    const TWO_PEERS: &str = r#"
name = "two"
duration = "2m"

[network]
latency = { min = "10ms", max = "50ms", curve = 5.0 }

[topology]
kind = "full"

[[group]]
name = "p"
count = 2
"#;

    fn board() -> Board {
        let scenario = Scenario::parse(TWO_PEERS, "two.toml").expect("parses");
        Board::new(&sim::plan::Plan::build(&scenario, 1), Instant::now())
    }

    fn connected(board: &mut Board) -> ConnId {
        board.listen(1, 9000).expect("listens");
        board.arrive(0, (1, 9000)).expect("accepted")
    }

    fn written(poll: Poll<io::Result<usize>>) -> usize {
        match poll {
            Poll::Ready(Ok(count)) => count,
            other => panic!("write: {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_direction_holds_at_most_a_window_and_frees_what_is_read() {
        let mut board = board();
        let conn = connected(&mut board);
        let waker = Waker::noop();
        let big = vec![7_u8; 100_000];
        assert_eq!(written(board.write((conn, 0), &big, waker)), WINDOW_BYTES);
        assert!(
            board.write((conn, 0), &big, waker).is_pending(),
            "past the window"
        );
        let mut out = vec![0_u8; 1_000];
        assert!(matches!(board.read((conn, 1), &mut out, waker), Head::Later(due) if due >= 10));
        tokio::time::advance(Duration::from_millis(60)).await;
        assert_eq!(board.read((conn, 1), &mut out, waker), Head::Read(1_000));
        assert_eq!(board.unread_total, (WINDOW_BYTES - 1_000) as u64);
        assert_eq!(written(board.write((conn, 0), &big, waker)), 1_000);
        board.close_end(conn, 1);
        assert_eq!(board.unread_total, 0, "the gone reader's bytes are freed");
        assert!(
            board.write((conn, 0), &big, waker).is_ready(),
            "fails, not waits"
        );
        board.close_end(conn, 0);
        assert!(board.connections.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_cut_parks_writes_in_order_and_a_heal_delivers_them() {
        let mut board = board();
        let conn = connected(&mut board);
        let waker = Waker::noop();
        let cut = |action| FaultStep {
            t_ms: 0,
            fault: 0,
            action,
            undo: false,
            label: String::new(),
            a: vec![0],
            b: vec![1],
            peers: Vec::new(),
            latency: None,
            fail_rate: None,
            break_rate: None,
        };
        assert!(board.links_mut().apply(&cut(FaultAction::OneWay)));
        assert_eq!(written(board.write((conn, 0), b"first", waker)), 5);
        assert_eq!(written(board.write((conn, 1), b"back", waker)), 4);
        tokio::time::advance(Duration::from_millis(1_000)).await;
        let mut out = [0_u8; 16];
        assert_eq!(board.read((conn, 1), &mut out, waker), Head::Empty, "cut");
        assert_eq!(
            board.read((conn, 0), &mut out, waker),
            Head::Read(4),
            "the other way flows"
        );
        assert!(board.links_mut().apply(&cut(FaultAction::Heal)));
        board.unpark();
        assert_eq!(written(board.write((conn, 0), b"second", waker)), 6);
        tokio::time::advance(Duration::from_millis(60)).await;
        assert_eq!(board.read((conn, 1), &mut out, waker), Head::Read(5));
        assert_eq!(&out[..5], b"first");
        assert_eq!(board.read((conn, 1), &mut out, waker), Head::Read(6));
        assert_eq!(&out[..6], b"second");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dial_to_a_down_host_is_refused_and_its_ends_close() {
        let mut board = board();
        let conn = connected(&mut board);
        board.host_down(1);
        assert_eq!(
            board.arrive(0, (1, 9000)),
            None,
            "nothing listens on a down host"
        );
        tokio::time::advance(Duration::from_millis(60)).await;
        let mut out = [0_u8; 16];
        assert_eq!(board.read((conn, 0), &mut out, Waker::noop()), Head::Eof);
        assert_eq!(board.stats().refused, 1);
    }
}
