//! Time intervals during which something held (a peer held a msg, a peer was down).

/// Intervals `[start, end)`; `end == None`: still open.
pub type Spans = Vec<(u64, Option<u64>)>;

/// Whether `t` lies in one of the intervals.
pub(super) fn in_spans(spans: &[(u64, Option<u64>)], t: u64) -> bool {
    spans
        .iter()
        .any(|(start, end)| *start <= t && end.is_none_or(|e| t < e))
}
