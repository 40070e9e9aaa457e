//! [`MsgInterner`]: one decoded copy of each msg per run, however many simulated peers store it.
//!
//! Every node decodes the msgs it receives into its own `Msg`, so a msg that all 100 peers of
//! a run replicate was held 100 times, once in each peer's store. The runner gives every
//! peer's [`crate::store::SharedStore`] the run's interner; a store hands each msg it keeps to
//! [`MsgInterner::share`], which returns the copy another store already holds when it is the
//! same msg. "The same" is equality of every field, not the ID alone: the ID covers only the
//! metadata, an erased copy has the ID of the full one, and the signature is outside it. So a
//! store reads back exactly the msg it was given, and no node can tell the difference.
//!
//! Entries are weak: a msg is freed when the last store lets go of it. Dead entries are swept
//! once the table has doubled since the last sweep, so it stays within twice the msgs alive.
//! An interner is made per run (`setup::peers`), never global, so runs in one process share
//! nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use proto::ids::MsgId;
use proto::msg::Msg;

/// The table is not swept below this many entries (a sweep walks them all).
const SWEEP_ENTRIES_MIN: usize = 1024;

/// A run's table of the msgs its stores hold, by ID and whether the copy has its data.
#[derive(Debug, Clone, Default)]
pub struct MsgInterner {
    table: Arc<Mutex<Table>>,
}

#[derive(Debug, Default)]
struct Table {
    msgs: BTreeMap<(MsgId, bool), Weak<Msg>>,
    /// Entries alive after the last sweep.
    alive_at_sweep: usize,
}

impl MsgInterner {
    /// An empty table.
    #[must_use]
    pub fn new() -> MsgInterner {
        MsgInterner::default()
    }

    /// The copy of `msg` (whose ID is `id`) to keep: one another store holds if it is equal,
    /// otherwise `msg`, which later equal msgs will share.
    #[must_use]
    pub fn share(&self, id: MsgId, msg: Arc<Msg>) -> Arc<Msg> {
        let mut table = self.lock();
        let key = (id, msg.has_data());
        if let Some(held) = table.msgs.get(&key).and_then(Weak::upgrade) {
            // An equal msg under another key cannot be: equal msgs have equal IDs and data.
            if Arc::ptr_eq(&held, &msg) || *held == *msg {
                return held;
            }
            // Same metadata, another signature or data: a different msg, kept as it is.
            return msg;
        }
        table.msgs.insert(key, Arc::downgrade(&msg));
        table.sweep_if_grown();
        msg
    }

    /// How many msgs some store still holds (sweeps first; for tests and reports).
    #[must_use]
    pub fn alive(&self) -> usize {
        let mut table = self.lock();
        table.sweep();
        table.msgs.len()
    }

    /// Whether `self` and `other` are the same table (the same run's).
    #[must_use]
    pub fn is_same(&self, other: &MsgInterner) -> bool {
        Arc::ptr_eq(&self.table, &other.table)
    }

    /// Locks the table. Simulated hosts run one at a time on one thread, so this never waits;
    /// a panic while it was held leaves the table consistent (every entry is a valid weak
    /// reference), so a poisoned lock is taken over.
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Table {
    fn sweep_if_grown(&mut self) {
        if self.msgs.len() >= SWEEP_ENTRIES_MIN.max(2 * self.alive_at_sweep) {
            self.sweep();
        }
    }

    /// Drops the entries of msgs no store holds, which also frees their allocations (a weak
    /// reference keeps a dropped msg's memory allocated).
    fn sweep(&mut self) {
        self.msgs.retain(|_, msg| msg.strong_count() > 0);
        self.alive_at_sweep = self.msgs.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::keys::Keypair;

    fn account_root(seed: u8) -> Msg {
        let keypair = Keypair::from_seed(&[seed; 32]);
        Msg::create_account_root(&keypair, "account", "nonce").expect("account root is valid")
    }

    #[test]
    fn equal_msgs_share_one_copy_and_different_ones_do_not() {
        let interner = MsgInterner::new();
        let msg = account_root(1);
        let id = msg.id();
        let first = interner.share(id, Arc::new(msg.clone()));
        let second = interner.share(id, Arc::new(msg.clone()));
        assert!(
            Arc::ptr_eq(&first, &second),
            "an equal msg is the held copy"
        );
        let erased = interner.share(id, Arc::new(msg.erased()));
        assert!(
            !Arc::ptr_eq(&first, &erased),
            "an erased copy is another msg"
        );
        assert!(!erased.has_data());
        let other = account_root(2);
        let other = interner.share(other.id(), Arc::new(other));
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(interner.alive(), 3);
    }

    #[test]
    fn a_msg_with_the_same_id_but_other_fields_is_kept_as_given() {
        let interner = MsgInterner::new();
        let msg = account_root(1);
        let id = msg.id();
        let held = interner.share(id, Arc::new(msg.clone()));
        // A different signature over the same metadata: the ID does not cover it.
        let mut forged = msg;
        forged.sig = proto::msg::Signature::from_bytes([7; 64]);
        let forged = Arc::new(forged);
        let kept = interner.share(id, Arc::clone(&forged));
        assert!(Arc::ptr_eq(&kept, &forged), "not replaced by the held copy");
        assert!(!Arc::ptr_eq(&kept, &held));
    }

    #[test]
    fn a_msg_no_one_holds_is_freed_and_swept() {
        let interner = MsgInterner::new();
        let msg = account_root(1);
        let id = msg.id();
        let held = interner.share(id, Arc::new(msg.clone()));
        let weak = Arc::downgrade(&held);
        drop(held);
        assert!(weak.upgrade().is_none(), "the interner keeps no msg alive");
        assert_eq!(interner.alive(), 0);
        let again = Arc::new(msg);
        let kept = interner.share(id, Arc::clone(&again));
        assert!(Arc::ptr_eq(&kept, &again), "a dead entry is replaced");
    }

    #[test]
    fn the_table_stays_within_twice_the_msgs_alive() {
        let interner = MsgInterner::new();
        let keypair = Keypair::from_seed(&[1; 32]);
        for nonce in 0..3 * SWEEP_ENTRIES_MIN {
            let msg = Msg::create_account_root(&keypair, "account", &nonce.to_string())
                .expect("account root is valid");
            // Dropped at once: nothing stays alive.
            let _ = interner.share(msg.id(), Arc::new(msg));
        }
        assert!(interner.lock().msgs.len() <= SWEEP_ENTRIES_MIN);
    }
}
