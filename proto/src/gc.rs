//! Garbage collection as a plan (pzp-gc 1.0.0, protocol.md §9.2), and newest-N pruning after
//! a sync (pzp-sync `pruneNewest`, §7.6).
//!
//! Nothing here writes: [`plan`] and [`plan_prune_newest`] read a [`Db`] and return
//! [`Action`]s; [`apply`] (or the caller's own store actor) carries them out through
//! [`Db::erase`], [`Db::delete`] and [`Db::add_ghost`].
//!
//! The reference's cleanup visits every record and acts on its purpose (`crate::goals::purpose`):
//!
//! | purpose | action |
//! |---|---|
//! | goal | keep |
//! | trail | erase (unless already erased) |
//! | ghost | remember as a ghost, then delete |
//! | none | delete |
//!
//! Unlike the reference, which computes purposes while its deletions are still landing, the
//! plan judges every record against the same snapshot, so the result does not depend on timing.

use std::ops::ControlFlow;

use crate::db::Db;
use crate::goals::{self, Goals, Purpose, PurposeCache};
use crate::ids::{MsgId, TangleId};
use crate::store::{Store, StoreStats};

/// Cleanup is due when the log uses more than this share of its budget, in percent.
pub const CLEANUP_USED_PERCENT_MIN: u64 = 80;

/// Compaction alone is due when more than this share of the log is holes, in percent.
pub const COMPACTION_DELETED_PERCENT_MIN: u64 = 30;

/// The reference assumes records of this many bytes when deciding how often to check.
pub const RECORD_BYTES_ASSUMED: u64 = 500;

/// One change the plan asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Set the msg's data to null (it stays as a trail).
    Erase(MsgId),
    /// Remove the msg.
    Delete(MsgId),
    /// Remember the msg as a ghost of `tangle` at `depth` for `span` depths, then delete it.
    Ghost {
        /// The msg.
        msg: MsgId,
        /// The set or dict tangle.
        tangle: TangleId,
        /// The msg's depth in it.
        depth: u64,
        /// The ghost span.
        span: u64,
    },
}

impl Action {
    /// The msg it acts on and what it does to it.
    #[must_use]
    pub fn kind(&self) -> (MsgId, GcAction) {
        match *self {
            Self::Erase(msg) => (msg, GcAction::Erase),
            Self::Delete(msg) => (msg, GcAction::Delete),
            Self::Ghost { msg, .. } => (msg, GcAction::Ghost),
        }
    }
}

/// What a GC action does to a msg, without the msg: what nodes report and traces record.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum GcAction {
    /// Data removed, metadata kept (the msg still serves as trail).
    Erase,
    /// Record removed.
    Delete,
    /// Record removed and remembered as a ghost.
    Ghost,
}

impl GcAction {
    /// Every action, in report order.
    pub const ALL: [GcAction; 3] = [GcAction::Erase, GcAction::Delete, GcAction::Ghost];

    /// The snake_case name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            GcAction::Erase => "erase",
            GcAction::Delete => "delete",
            GcAction::Ghost => "ghost",
        }
    }
}

/// What is due, judged from the store's size accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Due {
    /// Run a cleanup (then compact).
    pub cleanup: bool,
    /// Compact the log.
    pub compaction: bool,
}

/// The reference's thresholds: cleanup when the log (live bytes plus holes) exceeds 80 % of
/// `log_bytes_max`, compaction when holes exceed 30 % of the log. A cleanup is always
/// followed by a compaction.
#[must_use]
pub fn due(stats: StoreStats, log_bytes_max: u64) -> Due {
    let total = stats.bytes.saturating_add(stats.deleted_bytes);
    let used_percent_over =
        u128::from(total) * 100 > u128::from(CLEANUP_USED_PERCENT_MIN) * u128::from(log_bytes_max);
    let deleted_percent_over = total > 0
        && u128::from(stats.deleted_bytes) * 100
            > u128::from(COMPACTION_DELETED_PERCENT_MIN) * u128::from(total);
    Due {
        cleanup: used_percent_over,
        compaction: used_percent_over || deleted_percent_over,
    }
}

/// How many added records the reference waits between two checks of [`due`]:
/// `⌊log_bytes_max · 1 % / 500⌋`.
#[must_use]
pub fn check_interval_records(log_bytes_max: u64) -> u64 {
    log_bytes_max / 100 / RECORD_BYTES_ASSUMED
}

/// A cleanup plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The changes, in the order the records were visited.
    pub actions: Vec<Action>,
    /// Whether the log should be compacted afterwards.
    pub compact: bool,
}

/// pzp-gc's cleanup as a plan, when [`due`] says so for `log_bytes_max` (an empty plan
/// otherwise; a plan with only `compact` when only compaction is due).
///
/// # Errors
/// Store failures.
pub fn plan<S: Store>(db: &mut Db<S>, goals: &Goals, log_bytes_max: u64) -> Result<Plan, S::Error> {
    let due = due(db.store().stats(), log_bytes_max);
    if !due.cleanup {
        return Ok(Plan {
            actions: Vec::new(),
            compact: due.compaction,
        });
    }
    let actions = plan_cleanup(db, goals)?;
    Ok(Plan {
        actions,
        compact: true,
    })
}

/// pzp-gc's `cleanup`: the action for every stored record, in receive order.
///
/// # Errors
/// Store failures.
pub fn plan_cleanup<S: Store>(db: &mut Db<S>, goals: &Goals) -> Result<Vec<Action>, S::Error> {
    let mut records = Vec::new();
    db.store().scan(&mut |record| {
        records.push((record.id, std::sync::Arc::clone(&record.msg)));
        ControlFlow::Continue(())
    })?;
    let mut cache = PurposeCache::new();
    let mut actions = Vec::new();
    for (id, msg) in records {
        match goals::purpose(db, goals, &mut cache, &id, &msg)? {
            Purpose::Goal => {}
            Purpose::Trail => {
                if msg.has_data() {
                    actions.push(Action::Erase(id));
                }
            }
            Purpose::Ghost { tangle, span } => {
                let depth = db.tangle(&tangle)?.depth(&id).unwrap_or(0);
                actions.push(Action::Ghost {
                    msg: id,
                    tangle,
                    depth,
                    span,
                });
            }
            Purpose::None => actions.push(Action::Delete(id)),
        }
    }
    Ok(actions)
}

/// pzp-sync's `pruneNewest(tangle, count)`: keep the newest `count` msgs of the tangle in
/// topological order; the msgs before the oldest kept one are deleted, except those on its
/// trail to the root, which are erased. Deletions come first, as in the reference.
///
/// # Errors
/// Store failures.
pub fn plan_prune_newest<S: Store>(
    db: &mut Db<S>,
    tangle_id: &TangleId,
    count: u64,
) -> Result<Vec<Action>, S::Error> {
    let tangle = db.tangle(tangle_id)?;
    if !tangle.has_root() {
        return Ok(Vec::new());
    }
    let len = u64::try_from(tangle.len()).unwrap_or(u64::MAX);
    if len <= count {
        return Ok(Vec::new());
    }
    let skip = usize::try_from(len - count).expect("invariant: len - count <= tangle.len()");
    let Some(oldest_kept) = tangle.topo_order().nth(skip) else {
        return Ok(Vec::new());
    };
    let (deletables, erasables) = tangle.deletables_and_erasables(&[*oldest_kept]);
    let mut actions: Vec<Action> = deletables.into_iter().map(Action::Delete).collect();
    actions.extend(erasables.into_iter().map(Action::Erase));
    Ok(actions)
}

/// What [`apply`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Msgs erased (they had data).
    pub erased: u64,
    /// Msgs deleted (ghosts included).
    pub deleted: u64,
    /// Ghosts recorded.
    pub ghosted: u64,
    /// The actions that changed the store, in order: what a shell reports. A plan may name a
    /// msg that is erased already (pzp-sync's `pruneNewest` erases a tangle's whole trail
    /// after every commit) or gone; those changed nothing and are left out.
    pub effective: Vec<Action>,
}

/// Carries out `actions` on `db`.
///
/// # Errors
/// Store failures; the actions before the failing one stay applied.
pub fn apply<S: Store>(db: &mut Db<S>, actions: &[Action]) -> Result<Applied, S::Error> {
    let mut applied = Applied::default();
    for action in actions {
        let changed = match *action {
            Action::Erase(id) => {
                let had_data = db.erase(&id)?;
                applied.erased += u64::from(had_data);
                had_data
            }
            Action::Delete(id) => {
                let was_stored = db.delete(&id)?;
                applied.deleted += u64::from(was_stored);
                was_stored
            }
            Action::Ghost {
                msg,
                tangle,
                depth,
                span,
            } => {
                db.add_ghost(&tangle, msg, depth, span)?;
                applied.ghosted += 1;
                applied.deleted += u64::from(db.delete(&msg)?);
                true
            }
        };
        if changed {
            applied.effective.push(*action);
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_the_reference_ones() {
        let stats = |bytes, deleted_bytes| StoreStats {
            msgs: 0,
            bytes,
            deleted_bytes,
        };
        assert_eq!(due(stats(80, 0), 100), Due::default());
        assert_eq!(
            due(stats(81, 0), 100),
            Due {
                cleanup: true,
                compaction: true
            }
        );
        assert_eq!(
            due(stats(60, 31), 1000),
            Due {
                cleanup: false,
                compaction: true
            }
        );
        assert_eq!(due(stats(70, 30), 1000), Due::default());
        assert_eq!(check_interval_records(64 << 20), 1342);
    }
}
