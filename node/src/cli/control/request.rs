//! The commands a running peer answers, parsed from either control channel: a JSON line on
//! `serve`'s standard input (`{"cmd":NAME, ...fields}`) or a muxrpc call on the local socket
//! (method `NAME`, its first argument an object of the same fields). Parsing is pure and
//! total: any input gives a request or a message saying what is wrong.

use anyhow::Context;
use proto::goals::Goal;
use proto::ids::{AccountId, PubKey, TangleId};
use proto::msg::Msg;
use serde_json::{Map, Value};

use crate::cli::query::{Selection, Window};
use crate::invite::promise::PromiseKind;

/// A request to a running peer.
#[derive(Debug)]
pub(crate) enum Request {
    /// The method names and their muxrpc types.
    Manifest,
    /// Account, key, address.
    Whoami,
    /// Publish `data` on the feed `domain`.
    Publish { domain: String, data: Value },
    /// Add to or delete from one of our sets.
    SetWrite {
        add: bool,
        subdomain: String,
        value: String,
    },
    /// Set fields of one of our dicts.
    DictUpdate {
        subdomain: String,
        update: Map<String, Value>,
    },
    /// Add a key to our account.
    AccountAdd {
        key: PubKey,
        consent: String,
        powers: Vec<String>,
    },
    /// Add a msg made elsewhere.
    Add {
        msg: Box<Msg>,
        tangle: Option<TangleId>,
    },
    /// Set one goal (not persisted).
    Goal { tangle: TangleId, goal: Goal },
    /// Keep a peer connected; `wait`: answer once the first attempt succeeded or failed.
    Connect { address: String, wait: bool },
    /// Follow an account (conductor rules; persisted).
    Follow {
        account: AccountId,
        domain: String,
        goal: Goal,
    },
    /// Unfollow an account.
    Unfollow { account: AccountId },
    /// Connections and dial targets.
    Peers,
    /// Store, goals and connections in numbers.
    Status,
    /// Tangles, sets and dicts, whole.
    State,
    /// How many connections are open.
    Connections,
    /// A tangle's msg counts.
    Count { tangle: TangleId },
    /// A tangle's msgs.
    Msgs { tangle: TangleId },
    /// A stream of msgs (`feed`, `log`, `hist`): a muxrpc `source`.
    Read(ReadRequest),
    /// Make an invite through a hub we attend (`hub`: its key; default the first), with a
    /// follow or an account-add promise.
    InviteCreate {
        hub: Option<String>,
        kind: PromiseKind,
    },
    /// Carry out an invite's commands; `account`: the account an account-add invite adds
    /// this peer to (else asked of the inviter).
    InviteUse {
        uri: String,
        account: Option<AccountId>,
    },
}

/// `feed`, `log` or `hist`, windowed, maybe live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadRequest {
    pub(crate) selection: Selection,
    pub(crate) window: Window,
    /// Keep streaming msgs as they are added.
    pub(crate) live: bool,
}

/// Every method and its muxrpc type, for `manifest`.
pub(crate) const METHODS: &[(&str, &str)] = &[
    ("manifest", "sync"),
    ("whoami", "async"),
    ("publish", "async"),
    ("follow", "async"),
    ("unfollow", "async"),
    ("feed", "source"),
    ("log", "source"),
    ("hist", "source"),
    ("peers", "async"),
    ("connect", "async"),
    ("status", "async"),
    ("set_add", "async"),
    ("set_del", "async"),
    ("dict_update", "async"),
    ("account_add", "async"),
    ("add", "async"),
    ("goal", "async"),
    ("state", "async"),
    ("count", "async"),
    ("msgs", "async"),
    ("connections", "async"),
    ("invite_create", "async"),
    ("invite_use", "async"),
];

impl Request {
    /// Parses command `name` with `fields`.
    ///
    /// # Errors
    /// An unknown command, or a missing or malformed field (named).
    pub(crate) fn parse(name: &str, fields: &Map<String, Value>) -> anyhow::Result<Self> {
        let text = |key: &str| -> anyhow::Result<String> {
            fields
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .with_context(|| format!("missing string field {key:?}"))
        };
        let tangle = || -> anyhow::Result<TangleId> {
            TangleId::parse(&text("tangle")?).context("bad tangle ID")
        };
        let account = || -> anyhow::Result<AccountId> {
            AccountId::parse(&text("account")?).context("bad account ID")
        };
        Ok(match name {
            "manifest" => Self::Manifest,
            "whoami" => Self::Whoami,
            "publish" => Self::Publish {
                domain: text("domain")?,
                data: fields
                    .get("data")
                    .cloned()
                    .context("missing field \"data\"")?,
            },
            "set_add" | "set_del" => Self::SetWrite {
                add: name == "set_add",
                subdomain: text("subdomain")?,
                value: text("value")?,
            },
            "dict_update" => Self::DictUpdate {
                subdomain: text("subdomain")?,
                update: fields
                    .get("update")
                    .and_then(Value::as_object)
                    .context("missing object field \"update\"")?
                    .clone(),
            },
            "account_add" => Self::AccountAdd {
                key: PubKey::parse(&text("key")?).context("bad key")?,
                consent: text("consent")?,
                powers: match fields.get("powers") {
                    None => Vec::new(),
                    Some(powers) => serde_json::from_value(powers.clone())
                        .context("\"powers\" is not a list of strings")?,
                },
            },
            "add" => Self::Add {
                msg: Box::new(
                    proto::msg::decode(fields.get("msg").context("missing field \"msg\"")?)
                        .context("not a msg")?,
                ),
                tangle: match fields.get("tangle").and_then(Value::as_str) {
                    Some(tangle) => Some(TangleId::parse(tangle).context("bad tangle ID")?),
                    None => None,
                },
            },
            "goal" => Self::Goal {
                tangle: tangle()?,
                goal: text("goal")?.parse().context("bad goal")?,
            },
            "connect" => Self::Connect {
                address: text("address")?,
                wait: flag(fields, "wait")?,
            },
            "follow" => Self::Follow {
                account: account()?,
                domain: optional_text(fields, "domain")?.unwrap_or_else(|| "post".to_owned()),
                goal: match optional_text(fields, "goal")? {
                    Some(goal) => goal.parse().context("bad goal")?,
                    None => Goal::All,
                },
            },
            "unfollow" => Self::Unfollow {
                account: account()?,
            },
            "peers" => Self::Peers,
            "status" => Self::Status,
            "state" => Self::State,
            "connections" => Self::Connections,
            "count" => Self::Count { tangle: tangle()? },
            "msgs" => Self::Msgs { tangle: tangle()? },
            "feed" | "log" | "hist" => Self::Read(read_request(name, fields)?),
            "invite_create" => Self::InviteCreate {
                hub: optional_text(fields, "hub")?,
                kind: promise_kind(fields)?,
            },
            "invite_use" => Self::InviteUse {
                uri: text("uri")?,
                account: optional_text(fields, "account")?
                    .map(|text| AccountId::parse(&text))
                    .transpose()
                    .context("bad account ID")?,
            },
            other => anyhow::bail!("unknown command {other:?}"),
        })
    }

    /// Whether the answer is a stream (muxrpc `source`) rather than one reply.
    pub(crate) fn is_stream(&self) -> bool {
        matches!(self, Self::Read(_))
    }
}

fn read_request(name: &str, fields: &Map<String, Value>) -> anyhow::Result<ReadRequest> {
    let selection = match name {
        "feed" => Selection::Feed,
        "log" => Selection::Log,
        _ => {
            let account = AccountId::parse(
                &optional_text(fields, "account")?.context("missing string field \"account\"")?,
            )
            .context("bad account ID")?;
            let domain = optional_text(fields, "domain")?.unwrap_or_else(|| "post".to_owned());
            Selection::Hist {
                tangle: proto::msg::feed_id(&account, &domain),
            }
        }
    };
    let limit = match fields.get("limit") {
        None | Some(Value::Null) => None,
        Some(limit) => Some(
            limit
                .as_u64()
                .context("\"limit\" is not a non-negative integer")?,
        ),
    };
    let request = ReadRequest {
        selection,
        window: Window {
            limit,
            reverse: flag(fields, "reverse")?,
        },
        live: flag(fields, "live")?,
    };
    anyhow::ensure!(
        !(request.live && request.window.reverse),
        "\"live\" and \"reverse\" do not go together: new msgs come last"
    );
    Ok(request)
}

/// `invite_create`'s `promise` field: `follow` (the default) or `account-add`.
fn promise_kind(fields: &Map<String, Value>) -> anyhow::Result<PromiseKind> {
    match optional_text(fields, "promise")?.as_deref() {
        None | Some("follow") => Ok(PromiseKind::Follow),
        Some("account-add") => Ok(PromiseKind::AccountAdd),
        Some(other) => anyhow::bail!("\"promise\" is \"follow\" or \"account-add\", not {other:?}"),
    }
}

fn optional_text(fields: &Map<String, Value>, key: &str) -> anyhow::Result<Option<String>> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => anyhow::bail!("field {key:?} is not a string"),
    }
}

fn flag(fields: &Map<String, Value>, key: &str) -> anyhow::Result<bool> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(value)) => Ok(*value),
        Some(_) => anyhow::bail!("field {key:?} is not true or false"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> anyhow::Result<Request> {
        let fields = value.as_object().expect("object").clone();
        let name = fields
            .get("cmd")
            .and_then(Value::as_str)
            .expect("cmd")
            .to_owned();
        Request::parse(&name, &fields)
    }

    #[test]
    fn every_method_in_the_manifest_parses_or_names_what_is_missing() {
        for (name, kind) in METHODS {
            match Request::parse(name, &Map::new()) {
                Ok(request) => assert_eq!(request.is_stream(), *kind == "source", "{name}"),
                Err(error) => assert!(
                    format!("{error:#}").contains("missing"),
                    "{name}: {error:#}"
                ),
            }
        }
        assert!(Request::parse("nope", &Map::new()).is_err());
    }

    #[test]
    fn reads_follow_and_their_defaults() {
        let account = AccountId::from_bytes(&[9; 32]).to_string();
        let Request::Read(read) =
            parse(json!({"cmd": "hist", "account": account, "limit": 3})).expect("hist")
        else {
            panic!("not a read")
        };
        assert_eq!(
            read.selection,
            Selection::Hist {
                tangle: proto::msg::feed_id(&AccountId::parse(&account).expect("id"), "post")
            }
        );
        assert_eq!(read.window.limit, Some(3));
        let error = parse(json!({"cmd": "log", "live": true, "reverse": true})).expect_err("both");
        assert!(format!("{error:#}").contains("do not go together"));
        assert!(parse(json!({"cmd": "log", "limit": -1})).is_err());
        let Request::Follow { domain, goal, .. } =
            parse(json!({"cmd": "follow", "account": account})).expect("follow")
        else {
            panic!("not a follow")
        };
        assert_eq!((domain.as_str(), goal), ("post", Goal::All));
    }
}
