//! Goal rules as the conductor writes them (`"post@newest-100"`, `"profile@dict"`,
//! `"follows@set"`, `"post@all"`), and follow specifications (`"zipf(1.1, 10)"`).
//!
//! A rule `<feed>@<goal>` becomes, once accounts exist, a goal on the tangle
//! `getMootID(account, domain)` where the domain is `<feed>` for `all`/`newest-N`/`none`,
//! `set_v1__<feed>` for `set` and `dict_v1__<feed>` for `dict` (protocol.md §13.2). The goal
//! itself is the node's [`Goal`] (`proto::goals`).

use std::fmt;

use proto::goals::Goal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Parses a rule's goal as scenario files write it: `all`, `newest-N` (0 < N < 2³²), `set`,
/// `dict`, `none`. Stricter than the reference's DSL ([`Goal`]'s `FromStr`), with messages
/// that say what to write instead.
///
/// # Errors
/// A message naming what is wrong.
pub fn parse_goal(text: &str) -> Result<Goal, String> {
    match text {
        "all" => Ok(Goal::All),
        "set" => Ok(Goal::Set),
        "dict" => Ok(Goal::Dict),
        "none" => Ok(Goal::None),
        other => {
            let Some(count) = other.strip_prefix("newest-") else {
                return Err(format!(
                    "unknown goal `{other}`; use all, newest-N, set, dict or none"
                ));
            };
            let n: u32 = count
                .parse()
                .map_err(|_| format!("`newest-{count}`: N must be a whole number"))?;
            if n == 0 {
                return Err("`newest-0` wants nothing; write `none`".to_owned());
            }
            Ok(Goal::Newest(u64::from(n)))
        }
    }
}

/// What kind of tangle a feed is, which decides its domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedKind {
    /// A plain feed (e.g. posts); domain = the feed name.
    Feed,
    /// A set feed; domain = `set_v1__<feed>`.
    Set,
    /// A dict feed; domain = `dict_v1__<feed>`.
    Dict,
}

/// `<feed>@<goal>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rule {
    /// The feed name (the conductor's "subdomain"), e.g. `post`, `profile`, `follows`.
    pub feed: String,
    /// The goal.
    pub goal: Goal,
}

impl Rule {
    /// Parses `"post@newest-100"`.
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn parse(text: &str) -> Result<Rule, String> {
        let Some((feed, goal)) = text.split_once('@') else {
            return Err(format!(
                "`{text}` is not a rule; write <feed>@<goal>, e.g. \"post@newest-100\""
            ));
        };
        if feed.is_empty()
            || !feed
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return Err(format!(
                "feed name `{feed}` in `{text}` must be non-empty lowercase letters, digits, `_` or `-`"
            ));
        }
        Ok(Rule {
            feed: feed.to_owned(),
            goal: parse_goal(goal).map_err(|e| format!("in `{text}`: {e}"))?,
        })
    }

    /// The tangle domain the rule names (`post`, `set_v1__follows`, `dict_v1__profile`).
    #[must_use]
    pub fn domain(&self) -> String {
        match self.goal {
            Goal::Set => format!("set_v1__{}", self.feed),
            Goal::Dict => format!("dict_v1__{}", self.feed),
            _ => self.feed.clone(),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.feed, self.goal)
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Rule::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Whom a peer follows.
#[derive(Debug, Clone, PartialEq)]
pub enum Follow {
    /// Nobody.
    None,
    /// Every candidate (hubs).
    All,
    /// `count` candidates drawn uniformly.
    Uniform {
        /// How many.
        count: u32,
    },
    /// `count` candidates drawn without replacement, candidate of popularity rank r
    /// (1-based) weighted 1/r^exponent.
    Zipf {
        /// The skew; 0 is uniform, ~1 is social-network-like.
        exponent: f64,
        /// How many.
        count: u32,
    },
}

impl Follow {
    /// Parses `"none"`, `"all"`, `"uniform(10)"`, `"zipf(1.1, 10)"`.
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn parse(text: &str) -> Result<Follow, String> {
        let trimmed = text.trim();
        match trimmed {
            "none" => return Ok(Follow::None),
            "all" => return Ok(Follow::All),
            _ => {}
        }
        let Some((name, rest)) = trimmed.split_once('(') else {
            return Err(format!(
                "`{trimmed}`: use \"none\", \"all\", \"uniform(N)\" or \"zipf(S, N)\""
            ));
        };
        let Some(inner) = rest.strip_suffix(')') else {
            return Err(format!("`{trimmed}`: missing closing parenthesis"));
        };
        let args: Vec<&str> = inner.split(',').map(str::trim).collect();
        let count_at = |index: usize| -> Result<u32, String> {
            let arg = args.get(index).copied().unwrap_or_default();
            let count: u32 = arg.parse().map_err(|_| {
                format!("`{trimmed}`: the count must be a whole number, got `{arg}`")
            })?;
            if count == 0 {
                return Err(format!(
                    "`{trimmed}`: the count must be > 0 (or write \"none\")"
                ));
            }
            Ok(count)
        };
        match (name.trim(), args.len()) {
            ("uniform", 1) => Ok(Follow::Uniform {
                count: count_at(0)?,
            }),
            ("zipf", 2) => {
                let exponent: f64 = args
                    .first()
                    .copied()
                    .unwrap_or_default()
                    .parse()
                    .map_err(|_| format!("`{trimmed}`: the exponent must be a number"))?;
                if !(exponent.is_finite() && exponent >= 0.0) {
                    return Err(format!("`{trimmed}`: the exponent must be ≥ 0"));
                }
                Ok(Follow::Zipf {
                    exponent,
                    count: count_at(1)?,
                })
            }
            ("uniform", _) => Err(format!("`{trimmed}`: uniform takes one argument, N")),
            ("zipf", _) => Err(format!(
                "`{trimmed}`: zipf takes two arguments, the exponent and N"
            )),
            (other, _) => Err(format!(
                "unknown follow model `{other}`; use none, all, uniform(N) or zipf(S, N)"
            )),
        }
    }
}

impl fmt::Display for Follow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Follow::None => f.write_str("none"),
            Follow::All => f.write_str("all"),
            Follow::Uniform { count } => write!(f, "uniform({count})"),
            Follow::Zipf { exponent, count } => write!(f, "zipf({exponent}, {count})"),
        }
    }
}

impl Serialize for Follow {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Follow {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Follow::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let rule = Rule::parse("post@newest-100").expect("valid");
        assert_eq!(rule.goal, Goal::Newest(100));
        assert_eq!(rule.domain(), "post");
        assert_eq!(
            Rule::parse("profile@dict").map(|r| r.domain()),
            Ok("dict_v1__profile".to_owned())
        );
        assert!(Rule::parse("post").is_err());
        assert!(Rule::parse("post@newest-0").is_err());
        assert!(Rule::parse("post@most").is_err());
        assert!(Rule::parse("Post@all").is_err());
    }

    #[test]
    fn follows() {
        assert_eq!(
            Follow::parse("zipf(1.1, 10)"),
            Ok(Follow::Zipf {
                exponent: 1.1,
                count: 10
            })
        );
        assert_eq!(Follow::parse("all"), Ok(Follow::All));
        assert!(Follow::parse("zipf(1.1)").is_err());
        assert!(Follow::parse("uniform(0)").is_err());
    }
}
