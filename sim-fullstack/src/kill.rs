//! What a simulated crash kills: the parts of a host's running incarnation (its node, and
//! its hub client or tunnel hub), each registered once started.

use std::sync::{Arc, Mutex, MutexGuard};

/// What kills the running incarnation as a crash would: its node, and its hub client or
/// tunnel hub, once started.
#[derive(Clone, Default)]
pub struct KillSlot(Arc<Mutex<Vec<Killer>>>);

type Killer = Box<dyn FnOnce() + Send>;

impl std::fmt::Debug for KillSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("KillSlot").field(&self.lock().len()).finish()
    }
}

impl KillSlot {
    fn lock(&self) -> MutexGuard<'_, Vec<Killer>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Kills what has started and not been killed, newest first: `false` if there was none.
    pub fn kill(&self) -> bool {
        let killers = std::mem::take(&mut *self.lock());
        let any = !killers.is_empty();
        for killer in killers.into_iter().rev() {
            killer();
        }
        any
    }

    /// Adds what kills one more part of the incarnation.
    pub(crate) fn add(&self, killer: impl FnOnce() + Send + 'static) {
        self.lock().push(Box::new(killer));
    }
}
