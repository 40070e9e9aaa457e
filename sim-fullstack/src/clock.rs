//! The event-driven substrates' simulated clock (fabric and streams), as node events are
//! stamped with it (record.rs): milliseconds since the run on this thread started, on tokio's
//! paused clock; and the paused runtime both run on.

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

/// The runtime an event-driven substrate runs every host on: one thread, time paused (it
/// jumps to the next timer when every task waits).
///
/// # Errors
/// The runtime could not be built.
pub(super) fn paused_runtime() -> Result<tokio::runtime::Runtime, sim::error::SimError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|error| sim::error::SimError::Unsupported {
            what: format!("a tokio runtime: {error}"),
        })
}
