//! The metrics computed at the end of a run from the held intervals of every wanted pair:
//! latency, convergence and its curve, recovery after faults, quantiles and CDFs.

use hdrhistogram::Histogram;

use super::{
    BANDWIDTH_BUCKETS_MAX, CDF_POINTS, ConvergenceMetrics, CurvePoint, LATENCY_MS_MAX,
    LatencyMetrics, Quantiles, Recovery, ratio, round_sig,
};
use crate::interest::Interest;
use crate::plan::{PeerIdx, Plan};

/// The bandwidth bucket: the sample interval, widened so there are at most
/// [`BANDWIDTH_BUCKETS_MAX`] buckets (whole seconds past 1 s).
#[must_use]
pub fn bandwidth_bucket_ms(plan: &Plan) -> u64 {
    let mut bucket = plan.sample_interval_ms.max(1);
    let wanted = plan.duration_ms.div_ceil(BANDWIDTH_BUCKETS_MAX).max(1);
    if bucket < wanted {
        bucket = if wanted > 1_000 {
            wanted.div_ceil(1_000) * 1_000
        } else {
            wanted
        };
    }
    bucket
}

pub(super) fn quantiles_hdr(histogram: &Histogram<u64>) -> Quantiles {
    if histogram.is_empty() {
        return Quantiles::default();
    }
    Quantiles {
        count: histogram.len(),
        mean: round_sig(histogram.mean()),
        p50: Some(histogram.value_at_quantile(0.50)),
        p90: Some(histogram.value_at_quantile(0.90)),
        p99: Some(histogram.value_at_quantile(0.99)),
        max: Some(histogram.max()),
    }
}

/// Exact quantiles (nearest rank) of small integers.
pub(super) fn quantiles_exact(values: &[u32]) -> Quantiles {
    quantiles_exact_u64(values.iter().map(|v| u64::from(*v)).collect())
}

/// [`quantiles_exact`] of wider values.
pub(super) fn quantiles_exact_u64(mut sorted: Vec<u64>) -> Quantiles {
    if sorted.is_empty() {
        return Quantiles::default();
    }
    sorted.sort_unstable();
    let rank = |q: f64| -> u64 {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "0 ≤ q·n ≤ n, n small"
        )]
        let index = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[index]
    };
    let sum: u64 = sorted.iter().sum();
    Quantiles {
        count: sorted.len() as u64,
        mean: ratio(sum, sorted.len() as u64),
        p50: Some(rank(0.50)),
        p90: Some(rank(0.90)),
        p99: Some(rank(0.99)),
        max: sorted.last().copied(),
    }
}

/// [`cdf`] of values given as value → how many times it occurs (the same points).
pub(super) fn cdf_of_counts(counts: &std::collections::BTreeMap<u64, u64>) -> Vec<(u64, f64)> {
    // values[k] occupies the sorted positions [ends[k - 1], ends[k]).
    let values: Vec<u64> = counts.keys().copied().collect();
    let ends: Vec<u64> = counts
        .values()
        .scan(0_u64, |total, count| {
            *total += count;
            Some(*total)
        })
        .collect();
    let Some(&n) = ends.last() else {
        return Vec::new();
    };
    let step = n.div_ceil(CDF_POINTS as u64).max(1);
    let mut points: Vec<(u64, f64)> = Vec::new();
    let mut i = 0_u64;
    while i < n {
        let k = ends.partition_point(|end| *end <= i);
        let (value, last) = (values[k], ends[k] - 1);
        let fraction = round_sig((last + 1) as f64 / n as f64).unwrap_or(1.0);
        if points.last().is_none_or(|(v, _)| *v != value) {
            points.push((value, fraction));
        }
        i = (last + 1).max(i + step);
    }
    let last_value = values[values.len() - 1];
    if points.last().is_none_or(|(v, _)| *v != last_value) {
        points.push((last_value, 1.0));
    }
    points
}

/// At most [`CDF_POINTS`] points of the empirical CDF of sorted values.
fn cdf(sorted: &[u64]) -> Vec<(u64, f64)> {
    if sorted.is_empty() {
        return Vec::new();
    }
    let n = sorted.len();
    let mut points: Vec<(u64, f64)> = Vec::new();
    let step = n.div_ceil(CDF_POINTS).max(1);
    let mut i = 0;
    while i < n {
        // The last index with this value, so each point is the true fraction ≤ value.
        let value = sorted[i];
        let last = sorted.partition_point(|v| *v <= value) - 1;
        let fraction = round_sig((last + 1) as f64 / n as f64).unwrap_or(1.0);
        if points.last().is_none_or(|(v, _)| *v != value) {
            points.push((value, fraction));
        }
        i = (last + 1).max(i + step);
    }
    let last_value = sorted[n - 1];
    if points.last().is_none_or(|(v, _)| *v != last_value) {
        points.push((last_value, 1.0));
    }
    points
}

fn held_at(spans: &[(u64, Option<u64>)], t: u64) -> Option<u64> {
    spans
        .iter()
        .find(|(start, end)| *start <= t && end.is_none_or(|e| t < e))
        .map(|(start, _)| *start)
}

/// The first sample instant at or after `t`, unclamped (what [`Samples`] clamps to its end).
pub(super) fn sample_index(step: u64, t: u64) -> usize {
    usize::try_from(t.div_ceil(step.max(1))).unwrap_or(usize::MAX)
}

/// Held intervals of one (peer, msg), looked up by (peer, msg index).
pub(super) type SpansOf<'a> = dyn Fn(PeerIdx, usize) -> &'a [(u64, Option<u64>)] + 'a;

/// Latency over the wanted pairs delivered while wanted, and how many those are.
pub(super) fn latency<'a>(interest: &Interest, spans_of: &SpansOf<'a>) -> (LatencyMetrics, u64) {
    let mut histogram =
        Histogram::<u64>::new_with_bounds(1, LATENCY_MS_MAX, 3).expect("invariant: valid bounds");
    let mut latencies = Vec::new();
    let mut undelivered = 0_u64;
    let mut wanted_deliveries = 0_u64;
    for want in interest.wants() {
        let first = spans_of(want.peer, want.msg)
            .iter()
            .map(|(start, _)| *start)
            .find(|start| *start >= want.from_ms);
        match first {
            Some(stored) if want.until_ms.is_none_or(|u| stored < u) => {
                let latency = stored - want.from_ms;
                histogram.saturating_record(latency);
                latencies.push(latency);
                wanted_deliveries += 1;
            }
            Some(_) => {}
            None => {
                if want.until_ms.is_none() {
                    undelivered += 1;
                }
            }
        }
    }
    latencies.sort_unstable();
    let latency = LatencyMetrics {
        quantiles: quantiles_hdr(&histogram),
        undelivered,
        cdf: cdf(&latencies),
    };
    (latency, wanted_deliveries)
}

/// Difference arrays over the sample instants `k · step`: +1 at the first sample inside an
/// interval, −1 at the first sample past it; summed, they count intervals per sample.
pub(super) struct Samples {
    step: u64,
    count: usize,
    wanted: Vec<i64>,
    held: Vec<i64>,
}

impl Samples {
    pub(super) fn new(step: u64, end_ms: u64) -> Samples {
        let count = usize::try_from(end_ms / step + 1).unwrap_or(1);
        Samples {
            step,
            count,
            wanted: vec![0; count + 1],
            held: vec![0; count + 1],
        }
    }

    fn first_sample(&self, t: u64) -> usize {
        usize::try_from(t.div_ceil(self.step))
            .unwrap_or(usize::MAX)
            .min(self.count)
    }

    /// `[from, until)` as sample indices, if it holds a sample.
    fn range(&self, from: u64, until: Option<u64>) -> Option<(usize, usize)> {
        let a = self.first_sample(from);
        let b = until.map_or(self.count, |u| self.first_sample(u));
        (a < b).then_some((a, b))
    }

    fn want(&mut self, from: u64, until: Option<u64>) {
        if let Some((a, b)) = self.range(from, until) {
            self.wanted[a] += 1;
            self.wanted[b] -= 1;
        }
    }

    fn hold(&mut self, from: u64, until: Option<u64>) {
        if let Some((a, b)) = self.range(from, until) {
            self.held[a] += 1;
            self.held[b] -= 1;
        }
    }

    /// `count` wanted pairs over `[from, until)`.
    pub(super) fn want_many(&mut self, from: u64, until: Option<u64>, count: u64) {
        if let Some((a, b)) = self.range(from, until) {
            let count = i64::try_from(count).unwrap_or(i64::MAX);
            self.wanted[a] += count;
            self.wanted[b] -= count;
        }
    }

    /// Held-pair changes counted as they happened, by unclamped sample index
    /// ([`sample_index`]): the same sums as [`Samples::hold`] of each interval, since an
    /// interval that holds no sample adds and removes at the same index.
    pub(super) fn add_held(&mut self, changes: &[i64]) {
        for (index, change) in changes.iter().enumerate() {
            self.held[index.min(self.count)] += change;
        }
    }

    /// Coverage at every sample, and F(t): the share of the pairs wanted at the end whose
    /// current copy (stored at `final_times`, sorted) was there by t.
    /// Without `final_times` (the aggregated collector), F(t) is left out.
    pub(super) fn curve(&self, final_times: Option<&[u64]>, wanted_at_end: u64) -> Vec<CurvePoint> {
        let mut curve = Vec::with_capacity(self.count);
        let (mut wanted_now, mut held_now) = (0_i64, 0_i64);
        for k in 0..self.count {
            wanted_now += self.wanted[k];
            held_now += self.held[k];
            let t_ms = k as u64 * self.step;
            let done = final_times.map(|times| times.partition_point(|d| *d <= t_ms) as u64);
            let w = u64::try_from(wanted_now).unwrap_or(0);
            let h = u64::try_from(held_now).unwrap_or(0);
            curve.push(CurvePoint {
                t_ms,
                wanted: w,
                held: h,
                coverage: ratio(h, w),
                final_fraction: done.and_then(|done| ratio(done, wanted_at_end)),
            });
        }
        curve
    }
}

pub(super) fn convergence<'a>(
    plan: &Plan,
    interest: &Interest,
    spans_of: &SpansOf<'a>,
    end_ms: u64,
) -> ConvergenceMetrics {
    let mut samples = Samples::new(plan.sample_interval_ms.max(1), end_ms);
    let mut final_times = Vec::new();
    let mut wanted_at_end = 0_u64;
    for want in interest.wants() {
        samples.want(want.from_ms, want.until_ms);
        for (start, end) in spans_of(want.peer, want.msg) {
            let from = (*start).max(want.from_ms);
            let until = match (end, want.until_ms) {
                (Some(e), Some(u)) => Some((*e).min(u)),
                (Some(e), None) => Some(*e),
                (None, u) => u,
            };
            if until.is_none_or(|u| from < u) {
                samples.hold(from, until);
            }
        }
        if want.until_ms.is_none_or(|u| u > end_ms) {
            wanted_at_end += 1;
            if let Some(start) = held_at(spans_of(want.peer, want.msg), end_ms) {
                final_times.push(start.max(want.from_ms));
            }
        }
    }
    final_times.sort_unstable();
    let reach = |fraction: f64| reach(&final_times, wanted_at_end, fraction);
    let last_publish_ms = interest.msgs().iter().map(|m| m.t_ms).max();
    let t100 = reach(1.0);
    ConvergenceMetrics {
        wanted_at_end,
        held_at_end: final_times.len() as u64,
        fraction_at_end: ratio(final_times.len() as u64, wanted_at_end),
        t50_ms: reach(0.50),
        t90_ms: reach(0.90),
        t99_ms: reach(0.99),
        t100_ms: t100,
        last_publish_ms,
        settle_after_last_publish_ms: match (t100, last_publish_ms) {
            (Some(t), Some(p)) => Some(t.saturating_sub(p)),
            _ => None,
        },
        curve: samples.curve(Some(&final_times), wanted_at_end),
    }
}

/// When `fraction` of the pairs wanted at the end had their current copy (`final_times`,
/// sorted).
fn reach(final_times: &[u64], wanted_at_end: u64, fraction: f64) -> Option<u64> {
    if wanted_at_end == 0 {
        return None;
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "0 < fraction·n ≤ n"
    )]
    let needed = ((fraction * wanted_at_end as f64).ceil() as usize).max(1);
    final_times.get(needed - 1).copied()
}

/// How long after each healed fault every pair wanted then (and still at the end) was held
/// again.
pub(super) fn recovery<'a>(
    plan: &Plan,
    interest: &Interest,
    spans_of: &SpansOf<'a>,
    end_ms: u64,
) -> Vec<Recovery> {
    let mut out = Vec::new();
    for interval in plan.fault_intervals.iter().filter(|i| i.healed) {
        let e = interval.end_ms;
        let mut missing = 0_u64;
        let mut worst = Some(0_u64);
        for want in interest.wants() {
            if !want.at(e) || want.until_ms.is_some_and(|u| u <= end_ms) {
                continue;
            }
            let spans = spans_of(want.peer, want.msg);
            if held_at(spans, e).is_some() {
                continue;
            }
            missing += 1;
            let recovered = held_at(spans, end_ms);
            worst = match (worst, recovered) {
                (Some(w), Some(start)) => Some(w.max(start.saturating_sub(e))),
                _ => None,
            };
        }
        out.push(Recovery {
            label: interval.label.clone(),
            start_ms: interval.start_ms,
            end_ms: e,
            missing_at_end_of_fault: missing,
            recovery_ms: worst,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::CDF_POINTS;

    #[test]
    fn round_sig_is_stable() {
        assert_eq!(round_sig(1.0 / 3.0), Some(0.333_333));
        assert_eq!(round_sig(123_456_789.0), Some(123_457_000.0));
        assert_eq!(round_sig(f64::NAN), None);
        assert_eq!(round_sig(0.0), Some(0.0));
    }

    #[test]
    fn cdf_ends_at_one() {
        let values: Vec<u64> = (1..=1000).collect();
        let points = cdf(&values);
        assert!(points.len() <= CDF_POINTS + 1);
        assert_eq!(points.last(), Some(&(1000, 1.0)));
        assert_eq!(cdf(&[5, 5, 5]), vec![(5, 1.0)]);
    }

    #[test]
    fn cdf_of_counts_equals_cdf_of_the_sorted_values() {
        for n in [1_u64, 7, 199, 200, 201, 1_000, 5_003] {
            // Repeats of every length, so that steps land inside and across runs of a value.
            let sorted: Vec<u64> = (0..n).map(|i| (i * i) % 97 + i / 13).collect();
            let mut sorted = sorted;
            sorted.sort_unstable();
            let mut counts = std::collections::BTreeMap::new();
            for value in &sorted {
                *counts.entry(*value).or_insert(0_u64) += 1;
            }
            assert_eq!(cdf_of_counts(&counts), cdf(&sorted), "n = {n}");
        }
        assert!(cdf_of_counts(&std::collections::BTreeMap::new()).is_empty());
    }
}
