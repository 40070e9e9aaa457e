//! Link rules against the directed-pair set they replace, on generated fault sequences.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::LinkRules;
use sim::plan::PeerIdx;

const PEERS: PeerIdx = 7;

/// One fault step as the network applies it.
#[derive(Debug, Clone)]
enum Step {
    /// Cut or hold `a` from `b`, both ways or one way.
    Block {
        a: Vec<PeerIdx>,
        b: Vec<PeerIdx>,
        both_ways: bool,
    },
    /// Heal or release between `a` and `b`, both ways.
    Lift { a: Vec<PeerIdx>, b: Vec<PeerIdx> },
    /// Heal or release every link.
    LiftAll,
}

fn peers() -> impl Strategy<Value = Vec<PeerIdx>> {
    prop::collection::btree_set(0..PEERS, 0..=PEERS as usize).prop_map(|s| s.into_iter().collect())
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (peers(), peers(), any::<bool>()).prop_map(|(a, b, both_ways)| Step::Block { a, b, both_ways }),
        3 => (peers(), peers()).prop_map(|(a, b)| Step::Lift { a, b }),
        1 => Just(Step::LiftAll),
    ]
}

/// The former model: the directed pairs `(from, to)`, inserted and removed one by one.
fn apply_pairs(pairs: &mut BTreeSet<(PeerIdx, PeerIdx)>, step: &Step) {
    let cross = |a: &[PeerIdx], b: &[PeerIdx]| -> Vec<(PeerIdx, PeerIdx)> {
        a.iter()
            .flat_map(|x| b.iter().filter(move |y| *y != x).map(move |y| (*x, *y)))
            .collect()
    };
    match step {
        Step::Block { a, b, both_ways } => {
            for (x, y) in cross(a, b) {
                pairs.insert((x, y));
                if *both_ways {
                    pairs.insert((y, x));
                }
            }
        }
        Step::Lift { a, b } => {
            for (x, y) in cross(a, b) {
                pairs.remove(&(x, y));
                pairs.remove(&(y, x));
            }
        }
        Step::LiftAll => pairs.clear(),
    }
}

fn apply_rules(rules: &mut LinkRules<bool>, step: &Step) {
    match step {
        Step::Block { a, b, both_ways } => rules.push(a, b, *both_ways, true),
        Step::Lift { a, b } => rules.push(a, b, true, false),
        Step::LiftAll => rules.clear(),
    }
}

proptest! {
    #[test]
    fn the_newest_covering_rule_decides_as_the_pair_set_did(
        steps in prop::collection::vec(step(), 0..12),
    ) {
        let mut pairs = BTreeSet::new();
        let mut rules = LinkRules::default();
        for step in &steps {
            apply_pairs(&mut pairs, step);
            apply_rules(&mut rules, step);
            for from in 0..PEERS {
                for to in 0..PEERS {
                    prop_assert_eq!(
                        rules.get(from, to) == Some(true),
                        pairs.contains(&(from, to)),
                        "{} → {} after {:?}", from, to, steps
                    );
                }
            }
        }
    }
}

#[test]
fn a_partition_of_a_few_peers_from_many_is_one_rule() {
    let few: Vec<PeerIdx> = (0..200).collect();
    let rest: Vec<PeerIdx> = (200..10_000).collect();
    let mut rules = LinkRules::default();
    rules.push(&few, &rest, true, true);
    assert_eq!(rules.rules.len(), 1);
    assert_eq!(rules.get(5, 9_000), Some(true));
    assert_eq!(rules.get(9_000, 5), Some(true));
    assert_eq!(rules.get(5, 6), None, "inside the cut-off side");
    assert_eq!(rules.get(9_000, 9_001), None, "inside the rest");
}
