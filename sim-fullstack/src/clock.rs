//! The fabric substrate's simulated clock, as node events are stamped with it (record.rs):
//! milliseconds since the run on this thread started, on tokio's paused clock.

use std::cell::Cell;

use tokio::time::Instant;

thread_local! {
    /// When the running fabric simulation started (simulated clock), for [`elapsed_ms`].
    static START: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Marks the start (`Some`) or end (`None`) of a fabric run on this thread.
pub(super) fn set_start(start: Option<Instant>) {
    START.with(|cell| cell.set(start));
}

/// Simulated milliseconds since the fabric run on this thread started (`None` outside one).
pub(super) fn elapsed_ms() -> Option<u64> {
    let start = START.with(Cell::get)?;
    Some(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX))
}
