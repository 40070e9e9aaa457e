//! Following accounts the way pzp-conductor does (protocol.md §13.2), and the goals that
//! follow sets, kept in the peer directory so they survive restarts.
//!
//! Following account `A` with the rule `DOMAIN@GOAL` means: add `A` to our follows set
//! (`set_v1__follows`), then want `A`'s account tangle (`all`), `A`'s own follows set
//! (`set`), and `A`'s feed `DOMAIN` with `GOAL` (a `set` or `dict` goal names the
//! `set_v1__DOMAIN` or `dict_v1__DOMAIN` feed, as the conductor maps rules). Unfollowing
//! deletes `A` from the set and sets every goal on `A`'s tangles to `none`.
//!
//! `DIR/goals.json` holds the goals follow set, so `ppppp serve` restores them; only the
//! process that holds the store's writer lock writes it (a running peer, or a command run
//! while none is), so two writers never race. It is replaced atomically (write, fsync,
//! rename, fsync the directory).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use proto::goals::Goal;
use proto::ids::{AccountId, TangleId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The subdomain of the set of followed accounts (domain `set_v1__follows`).
pub(crate) const FOLLOWS_SUBDOMAIN: &str = "follows";
/// The goals file in a peer directory.
const GOALS_FILE: &str = "goals.json";
/// The format of the goals file.
const GOALS_FILE_VERSION: u64 = 1;
/// Most goals the file may hold: the node's goal table holds at most `proto::goals::GOALS_MAX`.
const GOALS_FILE_ENTRIES_MAX: usize = proto::goals::GOALS_MAX;
/// Largest goals file read (each entry is under 200 bytes of JSON).
const GOALS_FILE_BYTES_MAX: u64 = 256 * GOALS_FILE_ENTRIES_MAX as u64;

/// One goal set by following an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FollowGoal {
    /// The followed account.
    pub(crate) account: AccountId,
    /// What the tangle is: `account` (the account tangle) or a feed's domain.
    pub(crate) domain: String,
    /// The tangle.
    pub(crate) tangle: TangleId,
    /// The goal, in the goal DSL.
    #[serde(with = "goal_text")]
    pub(crate) goal: Goal,
}

impl FollowGoal {
    pub(crate) fn to_value(&self) -> Value {
        json!({
            "tangle": self.tangle.to_string(),
            "domain": self.domain,
            "goal": self.goal.to_string(),
        })
    }
}

mod goal_text {
    use proto::goals::Goal;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(goal: &Goal, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(goal)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Goal, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The goals a followed account gets for the rule `domain@goal` (conductor rules).
///
/// # Errors
/// A goal that cannot be a follow rule (`none`), or a bad domain.
pub(crate) fn follow_goals(
    account: &AccountId,
    domain: &str,
    goal: Goal,
) -> anyhow::Result<Vec<FollowGoal>> {
    let domain = match goal {
        Goal::None => anyhow::bail!("`none` is not something to follow; use `ppppp unfollow`"),
        Goal::Set => proto::set::domain(domain),
        Goal::Dict => format!("dict_v1__{domain}"),
        Goal::All | Goal::Newest(_) => domain.to_owned(),
    };
    proto::msg::validate_domain(&domain)
        .map_err(|error| anyhow::anyhow!("{domain:?} cannot be a feed's domain: {error}"))?;
    let follows = proto::set::domain(FOLLOWS_SUBDOMAIN);
    let mut goals = vec![
        FollowGoal {
            account: *account,
            domain: "account".to_owned(),
            tangle: *account,
            goal: Goal::All,
        },
        FollowGoal {
            account: *account,
            tangle: proto::msg::feed_id(account, &follows),
            domain: follows,
            goal: Goal::Set,
        },
    ];
    if let Some(same) = goals.iter_mut().find(|entry| entry.domain == domain) {
        same.goal = goal;
    } else {
        goals.push(FollowGoal {
            account: *account,
            tangle: proto::msg::feed_id(account, &domain),
            domain,
            goal,
        });
    }
    Ok(goals)
}

/// The goals a peer keeps on its own account (the conductor's goals "for me"): its account
/// tangle, its follows set and its `post` feed, so a peer that lost its store gets them back
/// from others — and, since only a sync's dialer names tangles (pzp-sync), so a peer that
/// dials offers its own posts to peers that want them (a hub tunnel is often dialed by one
/// side only).
pub(crate) fn own_goals(account: &AccountId) -> Vec<(TangleId, Goal)> {
    vec![
        (*account, Goal::All),
        (proto::set::feed_id(account, FOLLOWS_SUBDOMAIN), Goal::Set),
        (proto::msg::feed_id(account, "post"), Goal::All),
    ]
}

/// `ppppp follow`'s and `ppppp unfollow`'s answer.
pub(crate) fn follow_value(
    account: &AccountId,
    msg: Option<proto::ids::MsgId>,
    goals: &[FollowGoal],
) -> Value {
    json!({
        "account": account.to_string(),
        "msg": msg.map(|id| id.to_string()),
        "goals": goals.iter().map(FollowGoal::to_value).collect::<Vec<_>>(),
    })
}

#[derive(Debug, Serialize, Deserialize)]
struct GoalsFileJson {
    version: u64,
    goals: Vec<FollowGoal>,
}

/// The goals file of a peer directory.
#[derive(Debug)]
pub(crate) struct GoalsFile {
    path: PathBuf,
    goals: Vec<FollowGoal>,
}

impl GoalsFile {
    /// Reads `DIR/goals.json` (none yet: no goals).
    ///
    /// # Errors
    /// An unreadable or malformed file (named, with what to do).
    pub(crate) fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(GOALS_FILE);
        let goals = match std::fs::metadata(&path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", path.display()));
            }
            Ok(meta) => {
                anyhow::ensure!(
                    meta.len() <= GOALS_FILE_BYTES_MAX,
                    "{} is {} bytes, more than a goals file can be ({GOALS_FILE_BYTES_MAX})",
                    path.display(),
                    meta.len()
                );
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let file: GoalsFileJson = serde_json::from_str(&text).with_context(|| {
                    format!(
                        "{} is damaged (fix or delete it: it only holds the goals `ppppp \
                         follow` set)",
                        path.display()
                    )
                })?;
                anyhow::ensure!(
                    file.version == GOALS_FILE_VERSION,
                    "{} has format version {}; this ppppp reads version {GOALS_FILE_VERSION}",
                    path.display(),
                    file.version
                );
                file.goals
            }
        };
        Ok(Self { path, goals })
    }

    /// Every goal in the file, in the order they were first set.
    #[cfg(test)]
    pub(crate) fn goals(&self) -> &[FollowGoal] {
        &self.goals
    }

    /// As `(tangle, goal)` pairs, for the node.
    pub(crate) fn pairs(&self) -> Vec<(TangleId, Goal)> {
        self.goals
            .iter()
            .map(|entry| (entry.tangle, entry.goal))
            .collect()
    }

    /// Sets `goals` (replacing the goal of a tangle that has one) and saves.
    ///
    /// # Errors
    /// More goals than the node can hold; the file cannot be written.
    pub(crate) fn add(&mut self, goals: &[FollowGoal]) -> anyhow::Result<()> {
        let mut next = self.goals.clone();
        for goal in goals {
            match next.iter_mut().find(|entry| entry.tangle == goal.tangle) {
                Some(entry) => *entry = goal.clone(),
                None => next.push(goal.clone()),
            }
        }
        anyhow::ensure!(
            next.len() <= GOALS_FILE_ENTRIES_MAX,
            "following would need more than {GOALS_FILE_ENTRIES_MAX} goals (the node's \
             bound); unfollow some accounts first"
        );
        self.save(next)
    }

    /// Removes every goal on `account`'s tangles and saves; returns them, set to `none`.
    ///
    /// # Errors
    /// The file cannot be written.
    pub(crate) fn remove_account(
        &mut self,
        account: &AccountId,
    ) -> anyhow::Result<Vec<FollowGoal>> {
        let (removed, kept): (Vec<_>, Vec<_>) = self
            .goals
            .iter()
            .cloned()
            .partition(|entry| entry.account == *account);
        self.save(kept)?;
        Ok(removed
            .into_iter()
            .map(|entry| FollowGoal {
                goal: Goal::None,
                ..entry
            })
            .collect())
    }

    fn save(&mut self, goals: Vec<FollowGoal>) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(&GoalsFileJson {
            version: GOALS_FILE_VERSION,
            goals,
        })?;
        write_atomically(&self.path, &json)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        let file: GoalsFileJson = serde_json::from_slice(&json)?;
        self.goals = file.goals;
        Ok(())
    }
}

/// Replaces `path` with `bytes` so that a crash leaves the old or the new file, never a mix.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let temporary = path.with_extension("json.new");
    {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> AccountId {
        AccountId::from_bytes(&[7; 32])
    }

    #[test]
    fn conductor_rules_become_goals() {
        let goals = follow_goals(&account(), "post", Goal::Newest(10)).expect("goals");
        let summary: Vec<_> = goals
            .iter()
            .map(|g| (g.domain.as_str(), g.goal.to_string()))
            .collect();
        assert_eq!(
            summary,
            [
                ("account", "all".to_owned()),
                ("set_v1__follows", "set".to_owned()),
                ("post", "newest-10".to_owned())
            ]
        );
        assert_eq!(goals[2].tangle, proto::msg::feed_id(&account(), "post"));
        let profile = follow_goals(&account(), "profile", Goal::Dict).expect("goals");
        assert_eq!(profile[2].domain, "dict_v1__profile");
        // Following the follows set itself changes that goal rather than adding another.
        let follows = follow_goals(&account(), "follows", Goal::Set).expect("goals");
        assert_eq!(follows.len(), 2);
        assert!(follow_goals(&account(), "post", Goal::None).is_err());
        assert!(follow_goals(&account(), "no", Goal::All).is_err());
    }

    #[test]
    fn the_goals_file_survives_a_reload_and_unfollow_removes_an_account() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut file = GoalsFile::load(dir.path()).expect("empty");
        assert!(file.goals().is_empty());
        let other = AccountId::from_bytes(&[8; 32]);
        file.add(&follow_goals(&account(), "post", Goal::All).expect("goals"))
            .expect("saved");
        file.add(&follow_goals(&other, "post", Goal::Newest(3)).expect("goals"))
            .expect("saved");
        file.add(&follow_goals(&account(), "post", Goal::Newest(5)).expect("goals"))
            .expect("saved");
        let reloaded = GoalsFile::load(dir.path()).expect("reload");
        assert_eq!(reloaded.goals(), file.goals());
        assert_eq!(reloaded.goals().len(), 6);
        assert_eq!(reloaded.goals()[2].goal, Goal::Newest(5));
        let mut reloaded = reloaded;
        let removed = reloaded.remove_account(&account()).expect("saved");
        assert_eq!(removed.len(), 3);
        assert!(removed.iter().all(|entry| entry.goal == Goal::None));
        let again = GoalsFile::load(dir.path()).expect("reload");
        assert!(again.goals().iter().all(|entry| entry.account == other));
        std::fs::write(dir.path().join(GOALS_FILE), "{not json").expect("write");
        let error = GoalsFile::load(dir.path()).expect_err("damaged");
        assert!(format!("{error:#}").contains("damaged"), "{error:#}");
    }
}
