//! The reads behind `ppppp feed`, `log`, `hist` and `status`, written once over any store so
//! that a running peer (through `NodeHandle::read`) and a stopped store (opened directly)
//! answer with the same bytes.
//!
//! Orders:
//! - **log**: receive order (the store's sequence numbers).
//! - **feed**: publish order. Msg V4 carries no clock, so the only publish order msgs can
//!   prove is causal: every msg comes after the msgs it names (its `prev`s in each tangle,
//!   its account tips); msgs that do not depend on each other keep receive order. It differs
//!   from the log where msgs arrived out of order — older posts fetched after newer ones
//!   (a `newest-N` goal widened to `all`), an erased msg whose data came back later.
//! - **hist**: one tangle in its topological order (the reference's order: by depth).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::ops::ControlFlow;
use std::sync::Arc;

use proto::db::Db;
use proto::ids::{MsgId, TangleId};
use proto::msg::Msg;
use proto::store::Store;
use serde_json::{Value, json};

/// Which msgs a read streams, in which order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Selection {
    /// Every msg, in publish (causal) order.
    Feed,
    /// Every msg, in receive order.
    Log,
    /// One tangle (a feed), by depth.
    Hist {
        /// The tangle.
        tangle: TangleId,
    },
}

impl Selection {
    /// Whether a msg added later belongs to this selection (for `--live`).
    pub(crate) fn admits(&self, id: &MsgId, msg: &Msg) -> bool {
        match self {
            Self::Feed | Self::Log => true,
            Self::Hist { tangle } => id == tangle || msg.metadata.tangles.contains_key(tangle),
        }
    }
}

/// How much of the order to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Window {
    /// At most this many msgs (counting live ones).
    pub(crate) limit: Option<u64>,
    /// Newest first.
    pub(crate) reverse: bool,
}

/// Msgs fetched per store access when streaming a selection: each access holds the store
/// (and, in a running peer, makes sync wait) for at most this many reads.
pub(crate) const READ_PAGE_MSGS: usize = 256;

/// The IDs of `selection`, ordered and windowed.
///
/// # Errors
/// Store failures.
pub(crate) fn select<S: Store>(
    db: &mut Db<S>,
    selection: &Selection,
    window: Window,
) -> Result<Vec<MsgId>, S::Error> {
    let mut ids = match selection {
        Selection::Log => log_order(db.store())?,
        Selection::Feed => causal_order(db.store())?,
        Selection::Hist { tangle } => db.tangle(tangle)?.topo_order().copied().collect(),
    };
    if window.reverse {
        ids.reverse();
    }
    if let Some(limit) = window.limit {
        ids.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    Ok(ids)
}

/// The msgs of `ids` that are still stored, in that order.
///
/// # Errors
/// Store failures.
pub(crate) fn fetch<S: Store>(
    db: &Db<S>,
    ids: &[MsgId],
) -> Result<Vec<(MsgId, Arc<Msg>)>, S::Error> {
    let mut msgs = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(msg) = db.get(id)? {
            msgs.push((*id, msg));
        }
    }
    Ok(msgs)
}

/// One streamed msg, as sbot prints them: `{"key","value","timestamp"}`. `timestamp` is when
/// this peer stored the msg (ms since the Unix epoch; `null` when it was not recorded), like
/// sbot's receive timestamp; the msg itself carries no clock.
pub(crate) fn entry_line(id: &MsgId, msg: &Msg, timestamp: Option<u64>) -> String {
    let timestamp = timestamp.map_or_else(|| "null".to_owned(), |ms| ms.to_string());
    // The msg's own JSON is spliced in as stored (the reference's field order).
    format!(
        "{{\"key\":{},\"value\":{},\"timestamp\":{timestamp}}}",
        Value::String(id.to_string()),
        msg.to_json()
    )
}

fn log_order<S: Store>(store: &S) -> Result<Vec<MsgId>, S::Error> {
    let mut ids = Vec::with_capacity(usize::try_from(store.len()).unwrap_or(0));
    store.scan(&mut |record| {
        ids.push(record.id);
        ControlFlow::Continue(())
    })?;
    Ok(ids)
}

/// Kahn's topological sort over "names" edges (tangle `prev`s, account tips) between stored
/// msgs, always taking the earliest-received ready msg.
fn causal_order<S: Store>(store: &S) -> Result<Vec<MsgId>, S::Error> {
    let mut nodes: Vec<(MsgId, Vec<MsgId>)> = Vec::new();
    store.scan(&mut |record| {
        nodes.push((record.id, named_msgs(&record.msg)));
        ControlFlow::Continue(())
    })?;
    Ok(order_causally(nodes))
}

/// The msgs `msg` names: its predecessors in each tangle and its account tips.
fn named_msgs(msg: &Msg) -> Vec<MsgId> {
    let mut named: Vec<MsgId> = msg
        .metadata
        .tangles
        .values()
        .flat_map(|link| link.prev.iter().copied())
        .chain(msg.metadata.account_tips.iter().flatten().copied())
        .collect();
    named.sort_unstable();
    named.dedup();
    named
}

/// `nodes` in receive order, each with the msgs it names; returns a causal order.
fn order_causally(nodes: Vec<(MsgId, Vec<MsgId>)>) -> Vec<MsgId> {
    let position: BTreeMap<MsgId, usize> = nodes
        .iter()
        .enumerate()
        .map(|(index, (id, _))| (*id, index))
        .collect();
    let mut waiting_on = vec![0usize; nodes.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (index, (_, named)) in nodes.iter().enumerate() {
        for earlier in named.iter().filter_map(|id| position.get(id)) {
            if let (Some(count), Some(list)) =
                (waiting_on.get_mut(index), dependents.get_mut(*earlier))
            {
                *count += 1;
                list.push(index);
            }
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = waiting_on
        .iter()
        .enumerate()
        .filter(|(_, count)| **count == 0)
        .map(|(index, _)| Reverse(index))
        .collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(Reverse(index)) = ready.pop() {
        if let Some((id, _)) = nodes.get(index) {
            order.push(*id);
        }
        for dependent in dependents.get(index).into_iter().flatten() {
            if let Some(count) = waiting_on.get_mut(*dependent) {
                *count -= 1;
                if *count == 0 {
                    ready.push(Reverse(*dependent));
                }
            }
        }
    }
    order
}

/// Counts for `ppppp status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoreFacts {
    /// Msgs stored.
    pub(crate) msgs: u64,
    /// Bytes of their JSON.
    pub(crate) msg_bytes: u64,
    /// Tangles with at least one stored msg (their root or a member).
    pub(crate) tangles: u64,
}

/// Counts what the store holds (one scan).
///
/// # Errors
/// Store failures.
pub(crate) fn store_facts<S: Store>(store: &S) -> Result<StoreFacts, S::Error> {
    let mut tangles = std::collections::BTreeSet::new();
    store.scan(&mut |record| {
        if record.msg.metadata.tangles.is_empty() {
            tangles.insert(record.id);
        }
        tangles.extend(record.msg.metadata.tangles.keys().copied());
        ControlFlow::Continue(())
    })?;
    let stats = store.stats();
    Ok(StoreFacts {
        msgs: stats.msgs,
        msg_bytes: stats.bytes,
        tangles: u64::try_from(tangles.len()).unwrap_or(u64::MAX),
    })
}

/// The accounts in `account`'s follows set, as the set holds them.
///
/// # Errors
/// Store failures.
pub(crate) fn follows<S: Store>(db: &mut Db<S>, account: &MsgId) -> Result<Vec<Value>, S::Error> {
    Ok(proto::set::read(db, account, super::follow::FOLLOWS_SUBDOMAIN)?.into_vec())
}

/// `ppppp status`'s answer.
pub(crate) fn status_value(
    account: Option<&MsgId>,
    facts: StoreFacts,
    log_bytes: u64,
    follows: Vec<Value>,
    goals: &[(TangleId, proto::goals::Goal)],
    connections: usize,
) -> Value {
    let mut goals: Vec<(String, String)> = goals
        .iter()
        .filter(|(_, goal)| *goal != proto::goals::Goal::None)
        .map(|(tangle, goal)| (tangle.to_string(), goal.to_string()))
        .collect();
    goals.sort();
    goals.dedup_by(|a, b| a.0 == b.0);
    json!({
        "account": account.map(ToString::to_string),
        "msgs": facts.msgs,
        "msgBytes": facts.msg_bytes,
        "logBytes": log_bytes,
        "tangles": facts.tangles,
        "follows": follows,
        "goals": goals
            .into_iter()
            .map(|(tangle, goal)| json!({"tangle": tangle, "goal": goal}))
            .collect::<Vec<_>>(),
        "connections": connections,
    })
}

/// `ppppp whoami`'s answer; `address` is `None` when no peer is running.
pub(crate) fn whoami_value(account: Option<&MsgId>, key: &str, address: Option<&str>) -> Value {
    json!({
        "account": account.map(ToString::to_string),
        "key": key,
        "address": address,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> MsgId {
        MsgId::from_bytes(&[n; 32])
    }

    #[test]
    fn causal_order_puts_named_msgs_first_and_keeps_receive_order_otherwise() {
        // Received: 3 (names 2), 1, 2 (names 1), 9 (independent), 4 (names 3 and a msg
        // that is not stored).
        let nodes = vec![
            (id(3), vec![id(2)]),
            (id(1), vec![]),
            (id(2), vec![id(1)]),
            (id(9), vec![]),
            (id(4), vec![id(3), id(77)]),
        ];
        assert_eq!(
            order_causally(nodes),
            vec![id(1), id(2), id(3), id(9), id(4)]
        );
    }

    #[test]
    fn causal_order_of_an_ordered_log_is_the_log() {
        let nodes: Vec<_> = (1..=20u8)
            .map(|n| (id(n), if n > 1 { vec![id(n - 1)] } else { vec![] }))
            .collect();
        let ids: Vec<_> = nodes.iter().map(|(id, _)| *id).collect();
        assert_eq!(order_causally(nodes), ids);
    }
}
