//! Workload values against the protocol's limits and the size of the run, checked when a
//! scenario is loaded: before anything is planned, so a careless value is a located error,
//! not an allocation that aborts the process.
//!
//! - A msg's data is at most [`MSG_PART_BYTES_MAX`] bytes of canonical JSON (the protocol's
//!   limit; peers refuse bigger msgs). A post of `size` bytes is `{"text":"…"}`, a dict
//!   update names every field at bootstrap: the largest value a size distribution can draw
//!   must fit. An uncapped `exp`, `pareto` or `lognormal` can draw any size, so it needs a
//!   cap.
//! - Rates are drawn once per account and every publish time is planned up front: the
//!   largest rate a distribution can draw (its cap) times the publishing window times the
//!   publishing peers must stay within [`PLANNED_PUBLISHES_MAX`].
//! - [`estimate`] gives what a run would hold, for the program to compare with the memory it
//!   has (`ppppp-sim` does, before planning).

use proto::msg::MSG_PART_BYTES_MAX;

use crate::dist::{Dist, Shape};
use crate::goal::Follow;
use crate::scenario::Scenario;

/// Most publishes a scenario may plan (every account's publish times are planned before the
/// run; each costs about 100 bytes in the plan and far more as a stored msg at each peer).
pub const PLANNED_PUBLISHES_MAX: f64 = 10_000_000.0;

/// Bytes a post's data adds to its text: `{"text":""}`.
const POST_DATA_OVERHEAD: f64 = 11.0;

/// Bytes a dict update's data adds to its values: the keys, quotes and separators per
/// field, and the `supersedes` list (one quoted 44-character msg ID per field, at most).
fn dict_data_overhead(fields: &[String]) -> f64 {
    let per_field: usize = fields.iter().map(|name| name.len() + 6 + 48).sum();
    #[expect(clippy::cast_precision_loss, reason = "small")]
    let per_field = per_field as f64;
    32.0 + per_field
}

/// Bytes a stored msg costs beyond its data, in a peer's store and indexes (metadata JSON,
/// signature, IDs, the tangle and sync indexes): a planning estimate.
pub const STORED_MSG_OVERHEAD_BYTES: f64 = 1_500.0;

/// A workload value that breaks a limit: the field (keys from the document root) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The field, e.g. `["workload", "post", "size"]`.
    pub field: Vec<&'static str>,
    /// What is wrong.
    pub message: String,
}

/// The largest value `dist` can draw (`+∞` when it is uncapped).
#[must_use]
pub fn upper_bound<Q>(dist: &Dist<Q>) -> f64 {
    match dist.shape {
        Shape::Fixed(value) => value,
        Shape::Uniform { high, .. } => high,
        Shape::Exp { max, .. } | Shape::Pareto { max, .. } | Shape::LogNormal { max, .. } => {
            max.unwrap_or(f64::INFINITY)
        }
    }
}

/// Every workload value of `scenario` that breaks the protocol's limits or would plan too
/// much, in document order.
#[must_use]
pub fn workload_problems(scenario: &Scenario) -> Vec<Problem> {
    let mut problems = Vec::new();
    let data_max = f64::from(u32::try_from(MSG_PART_BYTES_MAX).unwrap_or(u32::MAX));
    let workload = &scenario.workload;
    if let Some(post) = &workload.post {
        let largest = upper_bound(&post.size);
        if largest + POST_DATA_OVERHEAD > data_max {
            problems.push(Problem {
                field: vec!["workload", "post", "size"],
                message: too_big(largest, data_max - POST_DATA_OVERHEAD, "a post's text"),
            });
        }
        check_rate(scenario, &post.rate, "post", &mut problems);
    }
    if let Some(dict) = &workload.dict {
        let largest = upper_bound(&dict.value_size);
        #[expect(clippy::cast_precision_loss, reason = "few fields")]
        let fields = dict.fields.len() as f64;
        let overhead = dict_data_overhead(&dict.fields);
        if largest * fields + overhead > data_max {
            problems.push(Problem {
                field: vec!["workload", "dict", "value_size"],
                message: too_big(
                    largest,
                    ((data_max - overhead) / fields).floor(),
                    "each of the dict's values (the first update sets them all)",
                ),
            });
        }
        check_rate(scenario, &dict.rate, "dict", &mut problems);
    }
    if let Some(set) = &workload.set {
        check_rate(scenario, &set.rate, "set", &mut problems);
    }
    problems
}

fn too_big(largest: f64, allowed: f64, what: &str) -> String {
    if largest.is_infinite() {
        return format!(
            "can draw any size; give it a cap (e.g. `lognormal(300B, 1.0, 16KiB)`): {what} \
             is at most {allowed} bytes, since a msg's data is at most {MSG_PART_BYTES_MAX}"
        );
    }
    format!(
        "can draw {largest} bytes, but {what} is at most {allowed} bytes: a msg's data is at \
         most {MSG_PART_BYTES_MAX} bytes (the protocol's limit)"
    )
}

/// The publishing window in hours.
fn window_hours(scenario: &Scenario) -> f64 {
    let start = scenario.workload.start.ms();
    let stop = scenario.workload_stop().ms();
    #[expect(clippy::cast_precision_loss, reason = "durations far below 2^53 ms")]
    let hours = stop.saturating_sub(start) as f64 / 3_600_000.0;
    hours
}

/// Peers that publish.
fn publishers(scenario: &Scenario) -> f64 {
    let groups = scenario.publishing_groups();
    let peers: u32 = scenario
        .groups
        .iter()
        .filter(|group| groups.contains(&group.name))
        .map(|group| group.count)
        .sum();
    f64::from(peers)
}

fn check_rate<Q>(scenario: &Scenario, rate: &Dist<Q>, load: &'static str, out: &mut Vec<Problem>) {
    let largest = upper_bound(rate);
    let field = vec!["workload", load, "rate"];
    if largest.is_infinite() {
        out.push(Problem {
            field,
            message: "can draw any rate; give it a cap (e.g. `pareto(1/h, 1.2, 60/h)`): every \
                      publish time is planned before the run"
                .to_owned(),
        });
        return;
    }
    let planned = largest * window_hours(scenario) * publishers(scenario);
    if planned > PLANNED_PUBLISHES_MAX {
        out.push(Problem {
            field,
            message: format!(
                "can draw {largest}/h per account: up to {planned:.0} publishes over the run, \
                 more than the {PLANNED_PUBLISHES_MAX} a run may plan"
            ),
        });
    }
}

/// What a run of `scenario` would hold, expected from the distributions' means.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Expected publishes.
    pub publishes: f64,
    /// Expected bytes of msgs held across every peer's store: each msg at its author and
    /// at every peer that follows the author ([`holders_per_msg`]).
    pub stored_bytes: f64,
}

/// Peers expected to hold a msg: its author and its followers. Followers per account are
/// the follows all groups make (`uniform(N)`/`zipf(S, N)`: N each, `all`: every
/// publisher) spread over the publishing accounts; peers only fetch what their goals
/// want, so nobody else stores it. At most every peer.
#[must_use]
pub fn holders_per_msg(scenario: &Scenario) -> f64 {
    let publishers = publishers(scenario);
    let peers = f64::from(scenario.peer_count());
    if publishers == 0.0 {
        return 0.0;
    }
    let follows: f64 = scenario
        .groups
        .iter()
        .map(|group| {
            let each = match group.follow_model() {
                Follow::None => 0.0,
                Follow::All => publishers,
                Follow::Uniform { count } | Follow::Zipf { count, .. } => {
                    f64::from(count).min(publishers)
                }
            };
            each * f64::from(group.count)
        })
        .sum();
    (1.0 + follows / publishers).min(peers)
}

/// The expected size of a run of `scenario` (see [`Estimate`]).
#[must_use]
pub fn estimate(scenario: &Scenario) -> Estimate {
    let hours = window_hours(scenario);
    let publishers = publishers(scenario);
    let mean = |shape: &Shape| shape.mean().filter(|mean| mean.is_finite()).unwrap_or(0.0);
    let mut publishes = 0.0;
    let mut bytes = 0.0;
    let workload = &scenario.workload;
    if let Some(post) = &workload.post {
        let count = mean(&post.rate.shape) * hours * publishers;
        publishes += count;
        bytes += count * (mean(&post.size.shape) + STORED_MSG_OVERHEAD_BYTES);
    }
    if let Some(dict) = &workload.dict {
        let count = mean(&dict.rate.shape) * hours * publishers;
        #[expect(clippy::cast_precision_loss, reason = "few fields")]
        let fields = f64::from(dict.fields_per_update).max(dict.fields.len() as f64 / 2.0);
        publishes += count;
        bytes += count * (mean(&dict.value_size.shape) * fields + STORED_MSG_OVERHEAD_BYTES);
    }
    if let Some(set) = &workload.set {
        let count = mean(&set.rate.shape) * hours * publishers;
        publishes += count;
        bytes += count * STORED_MSG_OVERHEAD_BYTES;
    }
    Estimate {
        publishes,
        stored_bytes: bytes * holders_per_msg(scenario),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(groups: &str) -> Scenario {
        let text = format!(
            "name = \"x\"\nduration = \"1h\"\n[topology]\nkind = \"small-world\"\nk = 4\n\
             beta = 0.2\n{groups}\n[workload.post]\nrate = \"2/h\"\nsize = \"500B\"\n"
        );
        Scenario::parse(&text, "x.toml").expect("valid")
    }

    #[test]
    fn a_msg_is_held_by_its_author_and_its_followers() {
        let alone = scenario("[[group]]\nname = \"a\"\ncount = 100\n");
        assert!((holders_per_msg(&alone) - 1.0).abs() < 1e-9);
        let social = scenario("[[group]]\nname = \"a\"\ncount = 100\nfollow = \"zipf(1.0, 5)\"\n");
        assert!((holders_per_msg(&social) - 6.0).abs() < 1e-9);
        // Two hubs follow all 100 accounts; nothing is held by more than every peer.
        let hubs = scenario(
            "[[group]]\nname = \"h\"\ncount = 2\nrole = \"hub\"\n\
             [[group]]\nname = \"a\"\ncount = 100\nfollow = \"uniform(200)\"\n",
        );
        assert!((holders_per_msg(&hubs) - 102.0).abs() < 1e-9);
        let estimate = estimate(&social);
        assert!((estimate.publishes - 200.0).abs() < 1e-6);
        assert!(
            (estimate.stored_bytes - 200.0 * 6.0 * (500.0 + STORED_MSG_OVERHEAD_BYTES)).abs()
                < 1e-3
        );
    }
}
