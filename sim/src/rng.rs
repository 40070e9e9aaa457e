//! Seeded random streams and the few samplers the plan needs.
//!
//! Every random choice in a plan comes from a named stream:
//!
//! ```text
//! stream_seed = SHA-256("ppppp-sim/rng/v1" || 0x00 || seed as u64 LE || stream name UTF-8 || 0x00 || index as u64 LE)
//! rng         = ChaCha8Rng::from_seed(stream_seed)
//! ```
//!
//! Streams are independent, so adding a group or a fault changes only the streams that
//! depend on it (a new peer gets new streams; existing peers keep theirs). The samplers are
//! written here, on top of `next_u64` only, rather than taken from `rand`'s distributions:
//! ChaCha8's output is fixed by its specification, and these few lines are fixed by us, so a
//! plan stays byte-identical across versions of `rand`.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

/// A deterministic random stream.
#[derive(Debug, Clone)]
pub struct Stream {
    rng: ChaCha8Rng,
}

/// The stream named `name` (with `index`, e.g. a peer index) derived from the run seed.
#[must_use]
pub fn stream(seed: u64, name: &str, index: u64) -> Stream {
    let mut hasher = Sha256::new();
    hasher.update(b"ppppp-sim/rng/v1\0");
    hasher.update(seed.to_le_bytes());
    hasher.update(name.as_bytes());
    hasher.update([0]);
    hasher.update(index.to_le_bytes());
    let digest = hasher.finalize();
    let mut key = [0_u8; 32];
    key.copy_from_slice(&digest);
    Stream {
        rng: ChaCha8Rng::from_seed(key),
    }
}

impl Stream {
    /// 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// Uniform in [0, 1), 53 bits of precision.
    pub fn unit(&mut self) -> f64 {
        #[expect(clippy::cast_precision_loss, reason = "53-bit value, exact in f64")]
        let mantissa = (self.next_u64() >> 11) as f64;
        mantissa * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Uniform in (0, 1]: safe to take the logarithm of.
    pub fn unit_open(&mut self) -> f64 {
        1.0 - self.unit()
    }

    /// Uniform integer in [0, n). `n` must be positive. Uses rejection, so no modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0) has no value");
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let value = self.next_u64();
            if value < zone {
                return value % n;
            }
        }
    }

    /// Uniform index into a slice of length `len` (> 0).
    pub fn index(&mut self, len: usize) -> usize {
        let len_u64 = u64::try_from(len).expect("invariant: slice lengths fit u64");
        usize::try_from(self.below(len_u64)).expect("invariant: below(len) < len")
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Exponential with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * self.unit_open().ln()
    }

    /// Standard normal (Box–Muller, one value per call).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit_open();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }

    /// Picks `count` distinct indices from `weights` (all > 0) without replacement, each draw
    /// proportional to the remaining weights. Returns them in draw order.
    pub fn weighted_sample(&mut self, weights: &[f64], count: usize) -> Vec<usize> {
        let mut remaining: Vec<(usize, f64)> = weights.iter().copied().enumerate().collect();
        let mut picked = Vec::with_capacity(count.min(weights.len()));
        while picked.len() < count && !remaining.is_empty() {
            let total: f64 = remaining.iter().map(|(_, w)| w).sum();
            let mut target = self.unit() * total;
            let mut chosen = remaining.len() - 1;
            for (position, (_, weight)) in remaining.iter().enumerate() {
                if target < *weight {
                    chosen = position;
                    break;
                }
                target -= weight;
            }
            let (index, _) = remaining.remove(chosen);
            picked.push(index);
        }
        picked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_independent() {
        let a1: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(stream(7, "x", 1), |s, _| Some(s.next_u64()))
            .collect();
        let a2: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(stream(7, "x", 1), |s, _| Some(s.next_u64()))
            .collect();
        let b: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(stream(7, "x", 2), |s, _| Some(s.next_u64()))
            .collect();
        let c: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(stream(8, "x", 1), |s, _| Some(s.next_u64()))
            .collect();
        assert_eq!(a1, a2);
        assert_ne!(a1, b);
        assert_ne!(a1, c);
    }

    #[test]
    fn samplers_stay_in_range() {
        let mut s = stream(1, "t", 0);
        for _ in 0..1000 {
            let u = s.unit();
            assert!((0.0..1.0).contains(&u));
            assert!(s.below(7) < 7);
            assert!(s.exp(10.0) >= 0.0);
        }
        let picks = s.weighted_sample(&[1.0, 5.0, 1.0, 1.0], 3);
        assert_eq!(picks.len(), 3);
        let mut sorted = picks.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 3);
    }
}
