//! Applying a session's effects to a [`Db`]: what a shell does with [`super::Output::Commit`]
//! and [`super::Output::PruneNewest`].

use std::sync::Arc;

use super::SyncIndex;
use crate::db::{AddError, Added, Db};
use crate::gc;
use crate::ids::{MsgId, TangleId};
use crate::msg::{Account, Msg};
use crate::store::Store;

/// The reference's `commit`: adds each msg, account msgs (`account: "self"`) with their
/// tangle inferred, the others in `tangle`. Refused msgs are skipped, as the reference skips
/// them. Keeps `index` fresh. Returns the msgs actually added, as stored, for
/// [`super::Input::LocalAdded`].
///
/// # Errors
/// Store failures (msgs before the failing one stay added).
pub fn commit<S: Store>(
    db: &mut Db<S>,
    index: &mut SyncIndex,
    tangle: &TangleId,
    msgs: Vec<(MsgId, Arc<Msg>)>,
) -> Result<Vec<(MsgId, Arc<Msg>)>, S::Error> {
    let mut added = Vec::new();
    for (id, msg) in msgs {
        let hint = if msg.metadata.account == Account::OwnTangle {
            None
        } else {
            Some(*tangle)
        };
        match db.add(Arc::unwrap_or_clone(msg), hint) {
            Ok(Added::Appended(_) | Added::ReplacedErased(_)) => {
                if let Some(stored) = db.get(&id)? {
                    index.note_added(db, &id, &stored)?;
                    added.push((id, stored));
                }
            }
            Ok(Added::AlreadyStored) => {}
            Err(AddError::Store(error)) => return Err(error),
            Err(_) => {}
        }
    }
    Ok(added)
}

/// The reference's `pruneNewest`: keeps the newest `count` msgs of `tangle`
/// ([`gc::plan_prune_newest`]), erasing trails and deleting the rest.
///
/// # Errors
/// Store failures.
pub fn prune_newest<S: Store>(
    db: &mut Db<S>,
    tangle: &TangleId,
    count: u64,
) -> Result<gc::Applied, S::Error> {
    let actions = gc::plan_prune_newest(db, tangle, count)?;
    gc::apply(db, &actions)
}
