//! Garbage-collection plans: purposes from goals (pzp-goals `getMsgPurpose`), the cleanup
//! plan and its application (pzp-gc), newest-N pruning (pzp-sync `pruneNewest`).

use proto::db::Db;
use proto::gc::{self, Action};
use proto::goals::{self, Goal, Goals, Purpose, PurposeCache};
use proto::ids::MsgId;
use proto::keys::Keypair;
use proto::msg::Msg;
use proto::roots;
use proto::set;
use proto::store::{MemStore, Store};

use crate::support::{load, msg, text};

/// Bob's account, his post feed's moot and m1..m9 from the sync trace.
fn bob() -> (Db<MemStore>, MsgId, MsgId, Vec<MsgId>) {
    let trace = load("sync-trace.json");
    let mut db = Db::new(MemStore::new());
    let mut ids = Vec::new();
    for entry in trace["bobMsgs"].as_array().expect("bobMsgs") {
        let decoded: Msg = msg(&entry["msg"]);
        ids.push(MsgId::parse(text(entry, "id")).expect("id"));
        db.add(decoded, None).expect("valid");
    }
    let account = MsgId::parse(text(&trace, "bobAccountID")).expect("account");
    let feed = MsgId::parse(text(&trace, "bobPostsFeedID")).expect("feed");
    (db, account, feed, ids)
}

fn purposes(db: &mut Db<MemStore>, goals: &Goals, ids: &[MsgId]) -> Vec<Purpose> {
    let mut cache = PurposeCache::new();
    ids.iter()
        .map(|id| {
            let stored = db.get(id).expect("memory").expect("stored");
            goals::purpose(db, goals, &mut cache, id, &stored).expect("memory")
        })
        .collect()
}

#[test]
fn newest_goal_purposes_and_cleanup() {
    let (mut db, account, feed, ids) = bob();
    let mut goals = Goals::new();
    goals.set(feed, Goal::Newest(3)).expect("goal");
    goals.set(account, Goal::All).expect("goal");
    // ids: account, moot, m1..m9.
    let got = purposes(&mut db, &goals, &ids);
    use Purpose::{Goal as G, None as N, Trail as T};
    assert_eq!(got, [G, T, N, N, T, N, N, N, G, G, G]);
    let actions = gc::plan_cleanup(&mut db, &goals).expect("memory");
    let m = |n: usize| ids[n + 1];
    assert_eq!(
        actions,
        [
            Action::Delete(m(1)),
            Action::Delete(m(2)),
            Action::Erase(m(3)),
            Action::Delete(m(4)),
            Action::Delete(m(5)),
            Action::Delete(m(6)),
        ]
    );
    let applied = gc::apply(&mut db, &actions).expect("memory");
    db.check_invariants().expect("memory");
    assert_eq!(
        (applied.erased, applied.deleted, applied.ghosted),
        (1, 5, 0)
    );
    // Pruning after a sync reaches the same state (the records of the trace's session 3).
    let (mut pruned, _, _, _) = bob();
    let plan = gc::plan_prune_newest(&mut pruned, &feed, 3).expect("memory");
    assert_eq!(
        plan,
        [
            Action::Delete(m(1)),
            Action::Delete(m(2)),
            Action::Delete(m(4)),
            Action::Delete(m(5)),
            Action::Delete(m(6)),
            Action::Erase(feed),
            Action::Erase(m(3)),
        ]
    );
    gc::apply(&mut pruned, &plan).expect("memory");
    pruned.check_invariants().expect("memory");
    assert_eq!(pruned.store().len(), db.store().len());
}

/// pzp-sync's `pruneNewest` erases a tangle's whole trail after every commit; a second prune
/// with nothing new names the same msgs again, and they must not be reported as erased twice.
#[test]
fn a_second_prune_changes_nothing_and_reports_nothing() {
    let (mut db, _, feed, _) = bob();
    let plan = gc::plan_prune_newest(&mut db, &feed, 3).expect("memory");
    let first = gc::apply(&mut db, &plan).expect("memory");
    // The feed's root is a moot, dataless from the start: erasing it changes nothing.
    let changing: Vec<Action> = plan
        .iter()
        .copied()
        .filter(|action| *action != Action::Erase(feed))
        .collect();
    assert_eq!(first.effective, changing);
    assert_eq!((first.erased, first.deleted), (1, 5));

    let again = gc::plan_prune_newest(&mut db, &feed, 3).expect("memory");
    assert!(
        again
            .iter()
            .any(|action| matches!(action, Action::Erase(_))),
        "the reference's plan names the erased trail again: {again:?}"
    );
    let second = gc::apply(&mut db, &again).expect("memory");
    assert_eq!(second.effective, [], "nothing had data or was stored");
    assert_eq!((second.erased, second.deleted, second.ghosted), (0, 0, 0));
    db.check_invariants().expect("memory");
}

#[test]
fn msgs_without_a_goal_have_no_purpose() {
    let (mut db, account, feed, ids) = bob();
    let mut goals = Goals::new();
    goals.set(feed, Goal::All).expect("goal");
    // The account has no goal: the reference deletes its msgs too.
    let got = purposes(&mut db, &goals, &ids);
    assert_eq!(got.first(), Some(&Purpose::None));
    assert!(got.iter().skip(1).all(|purpose| *purpose == Purpose::Goal));
    goals.set(account, Goal::None).expect("goal");
    assert_eq!(purposes(&mut db, &goals, &ids[..1]), [Purpose::None]);
}

#[test]
fn budget_thresholds_gate_the_plan() {
    let (mut db, account, feed, _) = bob();
    let mut goals = Goals::new();
    goals.set(feed, Goal::Newest(3)).expect("goal");
    goals.set(account, Goal::All).expect("goal");
    let bytes = db.store().stats().bytes;
    let relaxed = gc::plan(&mut db, &goals, bytes * 2).expect("memory");
    assert!(relaxed.actions.is_empty() && !relaxed.compact);
    let tight = gc::plan(&mut db, &goals, bytes).expect("memory");
    assert_eq!(tight.actions.len(), 6);
    assert!(tight.compact);
}

#[test]
fn superseded_set_updates_become_ghosts() {
    let keypair = Keypair::from_seed(&[9; 32]);
    let mut db = Db::new(MemStore::new());
    let account = db
        .create_account(&keypair, "account", "gc")
        .expect("account");
    for (add, item) in [
        (true, "a"),
        (true, "b"),
        (false, "a"),
        (true, "c"),
        (false, "b"),
        (true, "a"),
    ] {
        if add {
            set::add(&mut db, &keypair, &account, "follows", item).expect("add");
        } else {
            set::del(&mut db, &keypair, &account, "follows", item).expect("del");
        }
        db.check_invariants().expect("memory");
    }
    let feed = set::feed_id(&account, "follows");
    let before = set::read(&mut db, &account, "follows").expect("memory");
    let min_required = roots::min_required_depth(&mut db, &feed)
        .expect("memory")
        .expect("some update survives");
    let mut goals = Goals::new();
    goals.set(feed, Goal::Set).expect("goal");
    goals.set(account, Goal::All).expect("goal");
    goals.set_ghost_span(2);
    let actions = gc::plan_cleanup(&mut db, &goals).expect("memory");
    let tangle = db.tangle(&feed).expect("memory").clone();
    for action in &actions {
        match *action {
            Action::Ghost {
                msg,
                tangle: ghost_tangle,
                depth,
                span,
            } => {
                assert_eq!(ghost_tangle, feed);
                assert_eq!(span, 2);
                assert_eq!(tangle.depth(&msg), Some(depth));
                assert!(min_required - 2 <= depth && depth < min_required);
            }
            Action::Delete(msg) => {
                let depth = tangle.depth(&msg).expect("member");
                assert!(depth < min_required.saturating_sub(2), "{msg} at {depth}");
            }
            Action::Erase(msg) => {
                assert!(tangle.depth(&msg).expect("member") < min_required);
            }
        }
    }
    assert!(
        actions
            .iter()
            .any(|action| matches!(action, Action::Ghost { .. }))
    );
    gc::apply(&mut db, &actions).expect("memory");
    db.check_invariants().expect("memory");
    assert!(!db.ghosts(&feed).expect("memory").is_empty());
    assert_eq!(
        set::read(&mut db, &account, "follows").expect("memory"),
        before
    );
}
