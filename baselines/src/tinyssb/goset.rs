//! tinySSB's GOset (`baselines.md` §2.2): a grow-only set of feed ids that nodes converge on
//! with claims (lo, hi, XOR, count) and novelties, so that a feed can be named by its index.
//! Every round a node claims its whole set; a claim that does not match locally is kept as
//! pending, and each round the node *asks* about one (sends its own claim for the range) and
//! *helps* with a few (claims for the two halves of the range's interior, or a novelty for a
//! single key). A claim of exactly three keys whose ends are neighbours here gives the
//! middle key by XOR. Our reading where the notes are silent: a pending claim is dropped once
//! asked or helped about (its sender claims again each round), so stale claims of a lagging
//! neighbour cannot starve the one ask per round.

use super::packet::{Claim, Key, TinyWire};

fn xor_into(acc: &mut Key, key: &Key) {
    for (a, b) in acc.iter_mut().zip(key) {
        *a ^= b;
    }
}

/// One node's GOset.
#[derive(Debug)]
pub(crate) struct Goset {
    /// Sorted, without duplicates (indexed by position: WANT and CHNK name feeds by index).
    keys: Vec<Key>,
    pending: Vec<Claim>,
    pending_max: usize,
    help_max: usize,
    keys_max: usize,
}

impl Goset {
    pub(crate) fn new(pending_max: usize, help_max: usize, keys_max: usize) -> Goset {
        Goset {
            keys: Vec::new(),
            pending: Vec::new(),
            pending_max,
            help_max,
            keys_max,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// The set's state: XOR of every key (the WANT/CHNK DMXs are derived from it).
    pub(crate) fn state(&self) -> Key {
        let mut state = [0; 32];
        for key in &self.keys {
            xor_into(&mut state, key);
        }
        state
    }

    /// The key at `index` in sorted order.
    pub(crate) fn at(&self, index: usize) -> Option<&Key> {
        self.keys.get(index)
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &Key> {
        self.keys.iter()
    }

    /// The keys from `lo` to `hi`, inclusive.
    fn between(&self, lo: &Key, hi: &Key) -> &[Key] {
        let from = self.keys.partition_point(|key| key < lo);
        let to = self.keys.partition_point(|key| key <= hi).max(from);
        &self.keys[from..to]
    }

    /// Adds a key; whether it was new (and there was room).
    pub(crate) fn add(&mut self, key: Key) -> bool {
        if self.keys.len() >= self.keys_max {
            return false;
        }
        match self.keys.binary_search(&key) {
            Ok(_) => false,
            Err(at) => {
                self.keys.insert(at, key);
                true
            }
        }
    }

    /// Our claim over the keys from `lo` to `hi`.
    fn claim_over(&self, lo: &Key, hi: &Key) -> Claim {
        let mut xor = [0; 32];
        let mut count = 0_u8;
        for key in self.between(lo, hi) {
            xor_into(&mut xor, key);
            count = count.saturating_add(1);
        }
        Claim {
            lo: *lo,
            hi: *hi,
            xor,
            count,
        }
    }

    /// Takes a received claim; returns the keys it added.
    pub(crate) fn on_claim(&mut self, claim: Claim) -> Vec<Key> {
        let mut added = Vec::new();
        for key in [claim.lo, claim.hi] {
            if self.add(key) {
                added.push(key);
            }
        }
        if claim.count == 3 && self.between(&claim.lo, &claim.hi).len() == 2 {
            let mut middle = claim.xor;
            xor_into(&mut middle, &claim.lo);
            xor_into(&mut middle, &claim.hi);
            if self.add(middle) {
                added.push(middle);
            }
        }
        if self.claim_over(&claim.lo, &claim.hi) != claim && !self.pending.contains(&claim) {
            self.pending.push(claim);
        }
        added
    }

    /// One round: the claim over the whole set, then asking and helping with pending claims.
    pub(crate) fn round(&mut self) -> Vec<TinyWire> {
        let mut out = Vec::new();
        match (self.keys.first(), self.keys.last()) {
            (Some(only), _) if self.keys.len() == 1 => out.push(TinyWire::Novelty(*only)),
            (Some(lo), Some(hi)) => out.push(TinyWire::Claim(self.claim_over(lo, hi))),
            _ => {}
        }
        let pending = std::mem::take(&mut self.pending);
        self.pending = pending
            .into_iter()
            .filter(|claim| self.claim_over(&claim.lo, &claim.hi) != *claim)
            .collect();
        self.pending.sort_by_key(|claim| claim.count);
        let mut asked = false;
        let mut helped = 0;
        let mut kept = Vec::with_capacity(self.pending.len());
        for claim in std::mem::take(&mut self.pending) {
            let local = self.claim_over(&claim.lo, &claim.hi);
            let mut handled = false;
            if local.count <= claim.count && !asked {
                out.push(TinyWire::Claim(local));
                asked = true;
                handled = true;
            }
            // Equal counts with different keys need both: each side asks and helps.
            if local.count >= claim.count && helped < self.help_max {
                self.help(&claim, &mut out);
                helped += 1;
                handled = true;
            }
            if !handled {
                kept.push(claim);
            }
        }
        // A claim asked or helped about is done with: its sender claims again every round.
        kept.truncate(self.pending_max);
        self.pending = kept;
        out
    }

    /// Claims (or a novelty) over the interior of a claim's range, in two halves.
    fn help(&self, claim: &Claim, out: &mut Vec<TinyWire>) {
        let interior: Vec<Key> = self
            .between(&claim.lo, &claim.hi)
            .iter()
            .filter(|key| **key != claim.lo && **key != claim.hi)
            .copied()
            .collect();
        match interior.len() {
            0 => {}
            1 => out.push(TinyWire::Novelty(interior[0])),
            2 | 3 => out.push(TinyWire::Claim(
                self.claim_over(&interior[0], &interior[interior.len() - 1]),
            )),
            n => {
                let half = n / 2;
                out.push(TinyWire::Claim(
                    self.claim_over(&interior[0], &interior[half - 1]),
                ));
                out.push(TinyWire::Claim(
                    self.claim_over(&interior[half], &interior[n - 1]),
                ));
            }
        }
    }
}
