//! The steady-state delivery check: liveness *during* the run, not only after it.
//!
//! The liveness check looks once, after every fault is over. A protocol can pass it and still
//! leave a peer without a msg for minutes on a perfect network, as long as something (a
//! reconnect, a restart) eventually repairs it. This check asks, for every wanted
//! (peer q, msg m) pair: *if nothing stood in the way, did m reach q within `deliver_within`
//! (D) of its publication at t₀?*
//!
//! "Nothing stood in the way" means a path over the plan's edges from m's author to q on
//! which, during `[t₀ − D, t₀ + D]`:
//!
//! - every peer is up (no crash, restart or churn step overlaps the window) — the lead-in of
//!   D before t₀ leaves time to redial after a fault, which the simulator's timers bound well
//!   below the default D (idle timeout 3 s, redial backoff at most 10 s);
//! - every peer in the middle wants m's tangle (has a goal for the author's feed): a peer
//!   that does not want a tangle does not fetch it, so it cannot relay it; tunnel hubs are
//!   the exception, since they relay the bytes of tunnels between their attendants (a path
//!   attendant → hub → attendant is their tunnel);
//! - no fault disturbs a link of the path (partition either way, hold, latency change, loss
//!   above zero), and the configured network does not lose on it (turmoil's TCP loses a
//!   connection where real TCP would retransmit, see docs/simulation.md).
//!
//! Pairs without such a path, whose author or reader is down in the window, or that stop
//! being wanted before t₀ + D (superseded, pushed out of a `newest-N` range) are exempt and
//! counted by reason; pairs whose window ends after the run are not judged. Every other pair
//! must be stored by t₀ + D.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::spans::Spans;
use crate::interest::{Interest, MsgInfo, Want};
use crate::plan::{LinkFault, PeerIdx, Plan};
use crate::scenario::Role;
use crate::units::format_ms;

/// Missing-pair examples kept in the report (by liveness and delivery alike).
pub const EXAMPLES_KEPT_MAX: usize = 10;

/// What the delivery check reads.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// Who wants what.
    pub interest: &'a Interest,
    /// (peer, msg index) → held intervals.
    pub held: &'a BTreeMap<(PeerIdx, usize), Spans>,
    /// Peer → intervals during which it was down (crashed or offline).
    pub down: &'a BTreeMap<PeerIdx, Spans>,
    /// End of the run.
    pub end_ms: u64,
}

/// Delivery results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliveryReport {
    /// Whether the check was asked for.
    pub enabled: bool,
    /// No judged pair missed its deadline (true when disabled).
    pub passed: bool,
    /// The bound D.
    pub deliver_within_ms: u64,
    /// Pairs judged: a fault-free path of interested peers joined author and reader.
    pub judged: u64,
    /// Of those, stored within D.
    pub delivered: u64,
    /// Of those, not stored within D.
    pub missing: u64,
    /// The longest time to storage among delivered judged pairs.
    pub slowest_ms: u64,
    /// Exempt: the author or the reader was down in the window.
    pub exempt_down: u64,
    /// Exempt: no path of up, interested peers over undisturbed links.
    pub exempt_no_path: u64,
    /// Exempt: the pair stopped being wanted before its deadline.
    pub exempt_unwanted: u64,
    /// Not judged: the deadline lies after the end of the run.
    pub after_end: u64,
    /// The first [`EXAMPLES_KEPT_MAX`] missing pairs, as sentences with the path.
    pub examples: Vec<String>,
    /// Why it was not run although asked for (the aggregated collector keeps no pairs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Judges every wanted pair.
#[must_use]
pub fn check(inputs: &Inputs<'_>) -> DeliveryReport {
    let plan = inputs.plan;
    let bound = plan.check.deliver_within_ms;
    let mut report = DeliveryReport {
        enabled: plan.check.delivery,
        passed: true,
        deliver_within_ms: bound,
        ..DeliveryReport::default()
    };
    if !plan.check.delivery {
        return report;
    }
    let graph = Graph::new(plan);
    for want in inputs.interest.wants() {
        let Some(msg) = inputs.interest.msgs().get(want.msg) else {
            continue;
        };
        judge(inputs, &graph, msg, want, &mut report);
    }
    report.passed = report.missing == 0;
    report
}

fn judge(
    inputs: &Inputs<'_>,
    graph: &Graph<'_>,
    msg: &MsgInfo,
    want: &Want,
    report: &mut DeliveryReport,
) {
    let bound = report.deliver_within_ms;
    let published = want.from_ms;
    let deadline = published + bound;
    if deadline > inputs.end_ms {
        report.after_end += 1;
        return;
    }
    if want.until_ms.is_some_and(|until| until <= deadline) {
        report.exempt_unwanted += 1;
        return;
    }
    let window = (published.saturating_sub(bound), deadline);
    if down_in(inputs, want.peer, window) || down_in(inputs, msg.owner, window) {
        report.exempt_down += 1;
        return;
    }
    let Some(path) = graph.path(inputs, msg, want.peer, window) else {
        report.exempt_no_path += 1;
        return;
    };
    report.judged += 1;
    let stored = inputs
        .held
        .get(&(want.peer, want.msg))
        .and_then(|spans| spans.iter().map(|(start, _)| *start).min())
        .filter(|start| *start <= deadline);
    match stored {
        Some(start) => {
            report.delivered += 1;
            report.slowest_ms = report.slowest_ms.max(start.saturating_sub(published));
        }
        None => {
            report.missing += 1;
            if report.examples.len() < EXAMPLES_KEPT_MAX {
                let plan = inputs.plan;
                let names: Vec<&str> = path.iter().map(|p| plan.peer_name(*p)).collect();
                report.examples.push(format!(
                    "{} lacks {} {} after {} published it at {} (path {})",
                    plan.peer_name(want.peer),
                    msg.id,
                    format_ms(bound),
                    plan.peer_name(msg.owner),
                    format_ms(published),
                    names.join(" → ")
                ));
            }
        }
    }
}

/// Whether `peer` is down at some point of `[from, to]`.
fn down_in(inputs: &Inputs<'_>, peer: PeerIdx, (from, to): (u64, u64)) -> bool {
    inputs.down.get(&peer).is_some_and(|spans| {
        spans
            .iter()
            .any(|(start, end)| *start <= to && end.is_none_or(|e| e > from))
    })
}

/// The plan's edges as an undirected graph, with the link faults. The search tree of the
/// last msg's window is kept: wants come grouped by msg, and every want of a msg shares its
/// author, feed and window, hence its tree. (Keying trees by the set of peers down in the
/// window instead, as this check once did, costs a scan of every down peer per want and a
/// stored set per window: churn makes nearly every window's down set differ.)
struct Graph<'a> {
    plan: &'a Plan,
    /// Peer → neighbours over edges the configured network does not lose on, in peer order.
    neighbours: BTreeMap<PeerIdx, BTreeSet<PeerIdx>>,
    faults: Vec<LinkFault>,
    last: std::cell::RefCell<Option<(TreeKey, Parents)>>,
}

/// What decides a search tree: author, feed and window (the window decides who is down and
/// which faults are in force).
type TreeKey = (PeerIdx, String, (u64, u64));
/// BFS tree: reached peer → the peer it was reached from (the root maps to itself).
type Parents = BTreeMap<PeerIdx, PeerIdx>;

impl<'a> Graph<'a> {
    fn new(plan: &'a Plan) -> Graph<'a> {
        let mut neighbours: BTreeMap<PeerIdx, BTreeSet<PeerIdx>> = BTreeMap::new();
        for edge in &plan.edges {
            if edge.dialer == edge.acceptor || plan.link_lossy(edge.dialer, edge.acceptor) {
                continue;
            }
            neighbours
                .entry(edge.dialer)
                .or_default()
                .insert(edge.acceptor);
            neighbours
                .entry(edge.acceptor)
                .or_default()
                .insert(edge.dialer);
        }
        Graph {
            plan,
            neighbours,
            faults: plan.link_faults(),
            last: std::cell::RefCell::default(),
        }
    }

    /// A path from the msg's author to `reader` (author first) through peers up and
    /// interested in the author's feed, over links no fault disturbs within `window`.
    fn path(
        &self,
        inputs: &Inputs<'_>,
        msg: &MsgInfo,
        reader: PeerIdx,
        window: (u64, u64),
    ) -> Option<Vec<PeerIdx>> {
        let key: TreeKey = (msg.owner, msg.feed.clone(), window);
        let mut last = self.last.borrow_mut();
        if last.as_ref().is_none_or(|(k, _)| *k != key) {
            *last = Some((key, self.reach(inputs, msg, window)));
        }
        let (_, parents) = last.as_ref()?;
        let mut path = vec![reader];
        let mut at = reader;
        while at != msg.owner {
            at = *parents.get(&at)?;
            path.push(at);
        }
        path.reverse();
        Some(path)
    }

    fn tunnel_hub(&self, peer: PeerIdx) -> bool {
        self.plan
            .peers
            .get(peer as usize)
            .is_some_and(|plan| plan.role == Role::TunnelHub)
    }

    /// Breadth-first from the author, in peer order (deterministic parents).
    fn reach(&self, inputs: &Inputs<'_>, msg: &MsgInfo, (from, to): (u64, u64)) -> Parents {
        let faults: Vec<&LinkFault> = self
            .faults
            .iter()
            .filter(|f| f.overlaps(from, to))
            .collect();
        let down = |peer: PeerIdx| down_in(inputs, peer, (from, to));
        let interested =
            |peer: PeerIdx| !down(peer) && self.plan.rule_for(peer, msg.owner, &msg.feed).is_some();
        let disturbed = |p: PeerIdx, q: PeerIdx| faults.iter().any(|f| f.covers(p, q));
        let mut parents = Parents::new();
        parents.insert(msg.owner, msg.owner);
        let mut queue = VecDeque::from([msg.owner]);
        while let Some(peer) = queue.pop_front() {
            // Only the author and interested peers pass a msg on, and tunnel hubs, which
            // relay the bytes of a tunnel between two of their attendants.
            if peer != msg.owner && !interested(peer) && !self.tunnel_hub(peer) {
                continue;
            }
            for &next in self.neighbours.get(&peer).into_iter().flatten() {
                if parents.contains_key(&next) || down(next) || disturbed(peer, next) {
                    continue;
                }
                parents.insert(next, peer);
                queue.push_back(next);
            }
        }
        parents
    }
}

#[cfg(test)]
mod tests;
