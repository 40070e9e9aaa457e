//! The delivery check against the formulation it replaced (one search tree per distinct set
//! of peers down in a window, that set computed by scanning every down peer), on generated
//! plans with churn-like down spans, partitions and random holdings: both must give the same
//! report, examples included.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use proptest::prelude::*;

use super::{DeliveryReport, EXAMPLES_KEPT_MAX, Inputs, check};
use crate::check::spans::Spans;
use crate::interest::{Interest, InterestBuilder, MsgInfo, NewMsg, Want};
use crate::plan::{LinkFault, PeerIdx, Plan};
use crate::rng::Stream;
use crate::scenario::Scenario;
use crate::units::format_ms;

/// A small-world plan of `peers` with follows and `partitions` random partitions.
fn plan(peers: u32, partitions: u32, seed: u64) -> Plan {
    let mut text = format!(
        r#"
name = "generated"
seed = {seed}
duration = "10m"

[topology]
kind = "small-world"
k = 2
beta = 0.3
dial_follows = true

[[group]]
name = "peer"
count = {peers}
goals = ["post@all"]
follow_goals = ["post@all"]
follow = "zipf(1.0, 3)"

[check]
deliver_within = "20s"
"#
    );
    for i in 0..partitions {
        let at = 30 + 100 * i;
        text.push_str(&format!(
            "\n[[fault]]\nat = \"{at}s\"\naction = \"partition\"\na = [\"random({}, peer)\"]\nduration = \"40s\"\n",
            1 + peers / 5
        ));
    }
    let scenario = Scenario::parse(&text, "generated.toml").expect("generated scenario parses");
    Plan::build(&scenario, seed)
}

/// Random publishes, holdings and down spans over `plan`.
fn inputs_for(plan: &Plan, msgs: u32, rng: &mut Stream) -> (Interest, Held, Held) {
    let peers = u32::try_from(plan.peers.len()).expect("few peers");
    let mut builder = InterestBuilder::default();
    let mut times: Vec<u64> = (0..msgs).map(|_| rng.below(600_000)).collect();
    times.sort_unstable();
    for (i, t) in times.iter().enumerate() {
        let owner = u32::try_from(rng.below(u64::from(peers))).expect("a peer");
        let tangle = format!("tangle-{owner}");
        builder.publish(
            *t,
            &NewMsg {
                id: &format!("msg-{i}"),
                owner,
                feed: "post",
                tangle: &tangle,
                bytes: 100,
                supersedes: &[],
            },
        );
    }
    let interest = builder.finish(plan);
    let mut held = Held::new();
    for want in interest.wants() {
        if rng.chance(0.9) {
            let start = want.from_ms + rng.below(30_000);
            held.insert((want.peer, want.msg), vec![(start, None)]);
        }
    }
    let mut down = Held::new();
    for peer in 0..peers {
        let mut t = 0;
        let mut spans: Spans = Vec::new();
        while rng.chance(0.6) {
            t += 1_000 + rng.below(119_000);
            let end = t + 1_000 + rng.below(59_000);
            spans.push((t, Some(end)));
            t = end;
        }
        if !spans.is_empty() {
            down.insert((peer, 0), spans);
        }
    }
    (interest, held, down)
}

type Held = BTreeMap<(PeerIdx, usize), Spans>;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn same_report_as_the_down_set_formulation(
        seed in any::<u64>(),
        peers in 3u32..40,
        msgs in 1u32..60,
        partitions in 0u32..3,
    ) {
        let plan = plan(peers, partitions, seed);
        let mut rng = crate::rng::stream(seed, "delivery-test", 0);
        let (interest, held, down_pairs) = inputs_for(&plan, msgs, &mut rng);
        let down: BTreeMap<PeerIdx, Spans> =
            down_pairs.into_iter().map(|((peer, _), spans)| (peer, spans)).collect();
        let inputs = Inputs { plan: &plan, interest: &interest, held: &held, down: &down, end_ms: 600_000 };
        let ours = check(&inputs);
        prop_assert_eq!(ours, reference::check(&inputs));
    }
}

/// The generated cases reach every outcome the check has, so the comparison above means
/// something: judged pairs delivered and missing, exempt for a peer down or for no path.
#[test]
fn generated_cases_reach_every_outcome() {
    let mut total = DeliveryReport::default();
    for seed in 0..32 {
        let plan = plan(12 + u32::try_from(seed % 20).expect("small"), 1, seed);
        let mut rng = crate::rng::stream(seed, "delivery-test", 0);
        let (interest, held, down_pairs) = inputs_for(&plan, 40, &mut rng);
        let down: BTreeMap<PeerIdx, Spans> = down_pairs
            .into_iter()
            .map(|((peer, _), spans)| (peer, spans))
            .collect();
        let inputs = Inputs {
            plan: &plan,
            interest: &interest,
            held: &held,
            down: &down,
            end_ms: 600_000,
        };
        let report = check(&inputs);
        total.delivered += report.delivered;
        total.missing += report.missing;
        total.exempt_down += report.exempt_down;
        total.exempt_no_path += report.exempt_no_path;
        total.examples.extend(report.examples);
    }
    assert!(total.delivered > 0, "{total:?}");
    assert!(total.missing > 0, "{total:?}");
    assert!(total.exempt_down > 0, "{total:?}");
    assert!(total.exempt_no_path > 0, "{total:?}");
    assert!(
        total.examples.iter().any(|e| e.contains(" → ")),
        "paths of more than one peer"
    );
}

/// The formulation the check had before (kept here as the oracle).
mod reference {
    use super::*;

    pub(super) fn check(inputs: &Inputs<'_>) -> DeliveryReport {
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
        let down = down_in(inputs, window);
        if down.contains(&want.peer) || down.contains(&msg.owner) {
            report.exempt_down += 1;
            return;
        }
        let Some(path) = graph.path(msg, want.peer, window, &down) else {
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

    fn down_in(inputs: &Inputs<'_>, (from, to): (u64, u64)) -> BTreeSet<PeerIdx> {
        inputs
            .down
            .iter()
            .filter(|(_, spans)| {
                spans
                    .iter()
                    .any(|(start, end)| *start <= to && end.is_none_or(|e| e > from))
            })
            .map(|(peer, _)| *peer)
            .collect()
    }

    struct Graph<'a> {
        plan: &'a Plan,
        neighbours: BTreeMap<PeerIdx, BTreeSet<PeerIdx>>,
        faults: Vec<LinkFault>,
        paths: std::cell::RefCell<BTreeMap<PathKey, Parents>>,
    }

    type PathKey = (PeerIdx, String, BTreeSet<PeerIdx>, Vec<usize>);
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
                paths: std::cell::RefCell::default(),
            }
        }

        fn path(
            &self,
            msg: &MsgInfo,
            reader: PeerIdx,
            (from, to): (u64, u64),
            down: &BTreeSet<PeerIdx>,
        ) -> Option<Vec<PeerIdx>> {
            let faults: Vec<usize> = (0..self.faults.len())
                .filter(|i| self.faults[*i].overlaps(from, to))
                .collect();
            let key: PathKey = (msg.owner, msg.feed.clone(), down.clone(), faults);
            let mut paths = self.paths.borrow_mut();
            let parents = paths
                .entry(key)
                .or_insert_with_key(|(_, _, _, faults)| self.reach(msg, down, faults));
            let mut path = vec![reader];
            let mut at = reader;
            while at != msg.owner {
                at = *parents.get(&at)?;
                path.push(at);
            }
            path.reverse();
            Some(path)
        }

        fn reach(&self, msg: &MsgInfo, down: &BTreeSet<PeerIdx>, faults: &[usize]) -> Parents {
            let interested = |peer: PeerIdx| {
                !down.contains(&peer) && self.plan.rule_for(peer, msg.owner, &msg.feed).is_some()
            };
            let disturbed =
                |p: PeerIdx, q: PeerIdx| faults.iter().any(|i| self.faults[*i].covers(p, q));
            let mut parents = Parents::new();
            parents.insert(msg.owner, msg.owner);
            let mut queue = VecDeque::from([msg.owner]);
            while let Some(peer) = queue.pop_front() {
                if peer != msg.owner && !interested(peer) {
                    continue;
                }
                for &next in self.neighbours.get(&peer).into_iter().flatten() {
                    if parents.contains_key(&next) || down.contains(&next) || disturbed(peer, next)
                    {
                        continue;
                    }
                    parents.insert(next, peer);
                    queue.push_back(next);
                }
            }
            parents
        }
    }
}
