//! Sample statistics for seed sweeps: mean, standard deviation, median and quartiles, and
//! two 95 % confidence intervals of the mean: Student's t (for metrics near normal over
//! seeds) and the percentile bootstrap (for heavy-tailed ones: latencies, recovery times),
//! whose bounds never leave the sample's range — no negative latency bounds.
//!
//! The bootstrap resamples with a ChaCha stream seeded from the sample itself, so the same
//! values give the same interval, byte for byte.

use serde::Serialize;

/// Two-sided 95 % critical values of Student's t for 1–30 degrees of freedom.
const T95: [f64; 30] = [
    12.706_205, 4.302_653, 3.182_446, 2.776_445, 2.570_582, 2.446_912, 2.364_624, 2.306_004,
    2.262_157, 2.228_139, 2.200_985, 2.178_813, 2.160_369, 2.144_787, 2.131_450, 2.119_905,
    2.109_816, 2.100_922, 2.093_024, 2.085_963, 2.079_614, 2.073_873, 2.068_658, 2.063_899,
    2.059_539, 2.055_529, 2.051_831, 2.048_407, 2.045_230, 2.042_272,
];

/// The 97.5 % quantile of the standard normal.
const Z975: f64 = 1.959_963_984_540_054;

/// The two-sided 95 % critical value of Student's t with `df` degrees of freedom
/// (exact table to 30, Cornish–Fisher expansion beyond, which is within 1e-5 there).
#[must_use]
pub fn t95(df: u64) -> f64 {
    if df == 0 {
        return f64::INFINITY;
    }
    if let Some(value) = usize::try_from(df - 1).ok().and_then(|i| T95.get(i)) {
        return *value;
    }
    #[expect(clippy::cast_precision_loss, reason = "degrees of freedom are small")]
    let v = df as f64;
    let z = Z975;
    let z3 = z.powi(3);
    let z5 = z.powi(5);
    let z7 = z.powi(7);
    z + (z3 + z) / (4.0 * v)
        + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * v * v)
        + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * v * v * v)
}

/// Summary of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Sample size.
    pub n: u64,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (n − 1); 0 for one value.
    pub sd: f64,
    /// Half-width of the 95 % confidence interval of the mean (null for n < 2).
    pub ci95: Option<f64>,
    /// mean − ci95.
    pub low: Option<f64>,
    /// mean + ci95.
    pub high: Option<f64>,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

/// Summarises finite values; `None` for an empty sample.
#[must_use]
pub fn summarize(values: &[f64]) -> Option<Summary> {
    let values: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if values.is_empty() {
        return None;
    }
    let n = values.len() as u64;
    #[expect(clippy::cast_precision_loss, reason = "small samples")]
    let n_f = n as f64;
    let mean = values.iter().sum::<f64>() / n_f;
    let sd = if n > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n_f - 1.0)).sqrt()
    } else {
        0.0
    };
    let ci95 = (n > 1).then(|| t95(n - 1) * sd / n_f.sqrt());
    Some(Summary {
        n,
        mean,
        sd,
        ci95,
        low: ci95.map(|c| mean - c),
        high: ci95.map(|c| mean + c),
        min: values.iter().copied().fold(f64::INFINITY, f64::min),
        max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

/// Resamples of the percentile bootstrap.
pub const BOOTSTRAP_RESAMPLES: usize = 4_000;

/// The `q` quantile (0–1) of sorted values, linear between order statistics (type 7).
#[must_use]
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    #[expect(clippy::cast_precision_loss, reason = "small samples")]
    let position = q.clamp(0.0, 1.0) * last as f64;
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "0 ≤ position ≤ last"
    )]
    let below = position.floor() as usize;
    let above = (below + 1).min(last);
    #[expect(clippy::cast_precision_loss, reason = "small samples")]
    let weight = position - below as f64;
    Some(sorted[below] + (sorted[above] - sorted[below]) * weight)
}

/// Median and quartiles of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quartiles {
    /// 25th percentile.
    pub q1: f64,
    /// Median.
    pub median: f64,
    /// 75th percentile.
    pub q3: f64,
}

/// Quartiles of finite values; `None` for an empty sample.
#[must_use]
pub fn quartiles(values: &[f64]) -> Option<Quartiles> {
    let sorted = sorted_finite(values);
    Some(Quartiles {
        q1: quantile(&sorted, 0.25)?,
        median: quantile(&sorted, 0.5)?,
        q3: quantile(&sorted, 0.75)?,
    })
}

fn sorted_finite(values: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    sorted
}

/// The 95 % percentile-bootstrap interval of the mean: the 2.5th and 97.5th percentiles of
/// the means of [`BOOTSTRAP_RESAMPLES`] resamples drawn with replacement. `None` for fewer
/// than two values. Seeded from the sample's bits (deterministic).
#[must_use]
pub fn bootstrap_mean_ci95(values: &[f64]) -> Option<(f64, f64)> {
    let sorted = sorted_finite(values);
    if sorted.len() < 2 {
        return None;
    }
    let seed = sorted.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, v| {
        (hash ^ v.to_bits()).wrapping_mul(0x0100_0000_01b3)
    });
    let mut rng = crate::rng::stream(seed, "bootstrap", 0);
    #[expect(clippy::cast_precision_loss, reason = "small samples")]
    let n = sorted.len() as f64;
    let mut means: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            (0..sorted.len())
                .map(|_| sorted[rng.index(sorted.len())])
                .sum::<f64>()
                / n
        })
        .collect();
    means.sort_by(f64::total_cmp);
    Some((quantile(&means, 0.025)?, quantile(&means, 0.975)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_values() {
        assert!((t95(1) - 12.706_205).abs() < 1e-6);
        assert!((t95(30) - 2.042_272).abs() < 1e-6);
        // Published values: df 40 → 2.021075, df 60 → 2.000298, df 120 → 1.979930.
        assert!((t95(40) - 2.021_075).abs() < 2e-5, "{}", t95(40));
        assert!((t95(60) - 2.000_298).abs() < 2e-5, "{}", t95(60));
        assert!((t95(120) - 1.979_930).abs() < 2e-5, "{}", t95(120));
    }

    #[test]
    fn quantiles_interpolate() {
        let sorted = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&sorted, 0.5), Some(2.5));
        assert_eq!(quantile(&sorted, 0.0), Some(1.0));
        assert_eq!(quantile(&sorted, 1.0), Some(4.0));
        assert_eq!(quantile(&[], 0.5), None);
        let q = quartiles(&[5.0, 1.0, 3.0]).expect("values");
        assert_eq!((q.q1, q.median, q.q3), (2.0, 3.0, 4.0));
    }
}
