//! Per-peer queues: what a peer has handed to its links and not yet sent out, when links
//! have a bandwidth (`network.bandwidth`). An engine that models bandwidth hands each peer's
//! peak to the collector ([`super::Collector::queue_peaks`]); the report gives their
//! distribution over peers.

use serde::{Deserialize, Serialize};

use super::Quantiles;
use super::compute::quantiles_exact_u64;

/// The distribution over peers of each peer's largest queue.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueMetrics {
    /// Peak bytes waiting to leave a peer (summed over its links), over peers.
    pub peak_bytes: Quantiles,
    /// Messages waiting at that peak, over peers.
    pub peak_messages: Quantiles,
}

/// The metrics of `peaks`, by peer: `(bytes, messages)` at each peer's peak.
#[must_use]
pub(super) fn queue_metrics(peaks: &[(u64, u64)]) -> QueueMetrics {
    QueueMetrics {
        peak_bytes: quantiles_exact_u64(peaks.iter().map(|(bytes, _)| *bytes).collect()),
        peak_messages: quantiles_exact_u64(peaks.iter().map(|(_, messages)| *messages).collect()),
    }
}
