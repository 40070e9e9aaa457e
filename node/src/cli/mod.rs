//! The `ppppp` command line: a black-box interface over the library, for people and for
//! tests that drive real processes.
//!
//! A peer directory `DIR` holds `DIR/secret` (the keypair, pzp-keypair's format),
//! `DIR/db/` (the store, `docs/store-format.md`), `DIR/goals.json` (the goals `follow` set),
//! `DIR/received` (when each msg was stored) and, while `ppppp serve` runs, `DIR/socket`
//! (its control socket). The commands a person runs against a peer (`whoami`, `publish`,
//! `follow`, `feed`, …) ask the running peer through the socket, or read and write the
//! directory themselves when none runs, with the same output either way.

mod control;
mod db;
mod dial;
mod dir;
mod follow;
mod hub;
mod hubs;
mod joined;
mod lines;
mod local;
mod msg;
mod peer;
mod promises;
mod query;
mod received;
mod serve;
mod user;

pub use control::fuzz;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use dir::DirArg;

/// A PPPPP (PZP) peer, byte-compatible with the JavaScript reference.
#[derive(Debug, Parser)]
#[command(
    name = "ppppp",
    version,
    about = "A PPPPP (PZP) peer: msgs, a durable store, and tangle sync with JS pzp peers",
    after_help = "Every command that takes --dir defaults to $PPPPP_DIR, else ~/.ppppp. \
                  Commands ask the peer running there (`ppppp serve`) through DIR/socket, \
                  or use DIR directly when none runs."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `--limit`, `--reverse`, `--live` of the msg streams.
#[derive(Debug, Clone, clap::Args)]
struct ReadArgs {
    /// Print at most this many msgs.
    #[arg(long)]
    limit: Option<u64>,
    /// Newest first.
    #[arg(long, conflicts_with = "live")]
    reverse: bool,
    /// Then keep printing msgs as the running peer adds them, until interrupted.
    #[arg(long)]
    live: bool,
}

impl ReadArgs {
    fn fields(&self) -> Value {
        json!({"limit": self.limit, "reverse": self.reverse, "live": self.live})
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a peer directory: keypair, account, store
    ///
    /// Prints the account ID and the public key. Never overwrites a secret.
    Init {
        #[command(flatten)]
        dir: DirArg,
    },
    /// Print the account ID, public key and listening address
    ///
    /// The address is null when no peer runs.
    Whoami {
        #[command(flatten)]
        dir: DirArg,
    },
    /// Run the peer: listen, connect, sync, stay in realtime
    ///
    /// Runs until SIGTERM or SIGINT. Prints `listening <address>` first; answers the other
    /// commands on DIR/socket and JSON control commands on stdin. Exits 1 if the node can no
    /// longer write its store.
    Serve(serve::ServeArgs),
    /// Run a hub: list attendants, open tunnels between them, issue invite tokens
    ///
    /// Runs until SIGTERM or SIGINT. Prints `listening <address>` first. Peers attend with
    /// `ppppp serve --hub ADDRESS`; only members, holders of a token and the first peer ever
    /// to connect are admitted (unless --open).
    Hub(hub::HubArgs),
    /// Publish a msg on one of the account's feeds
    ///
    /// The feed DOMAIN is created on first use; prints the msg's ID once it is durable.
    Publish {
        #[command(flatten)]
        dir: DirArg,
        /// The feed's domain (`[a-zA-Z0-9_]{3,100}`).
        #[arg(long, default_value = "post")]
        domain: String,
        /// The msg's data, as JSON.
        #[arg(long, required_unless_present = "text", conflicts_with = "text")]
        data: Option<String>,
        /// A post: data `{"text": TEXT}`.
        #[arg(long)]
        text: Option<String>,
    },
    /// Follow an account and replicate its feed
    ///
    /// Adds the account to the follows set and wants its account, its follows and its feed
    /// DOMAIN per GOAL (pzp-conductor's rules). The goals persist in DIR/goals.json.
    Follow {
        #[command(flatten)]
        dir: DirArg,
        /// The account ID.
        account: String,
        /// The feed to replicate.
        #[arg(long, default_value = "post")]
        domain: String,
        /// How much of it: `all`, `newest-N` (or `set`, `dict` for such feeds).
        #[arg(long, default_value = "all")]
        goal: String,
    },
    /// Stop following an account
    ///
    /// Deletes it from the follows set; its goals become `none`.
    Unfollow {
        #[command(flatten)]
        dir: DirArg,
        /// The account ID.
        account: String,
    },
    /// Print every msg in publish order
    ///
    /// One JSON `{"key","value","timestamp"}` per line. Msgs carry no clock: publish order is
    /// causal (a msg after the msgs it names), receive order otherwise. `timestamp` is when
    /// this peer stored the msg (ms since the epoch; null if not noted).
    Feed {
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Print every msg in receive order
    ///
    /// One JSON `{"key","value","timestamp"}` per line.
    Log {
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Print one account's feed by depth
    ///
    /// One JSON `{"key","value","timestamp"}` per line.
    Hist {
        #[command(flatten)]
        dir: DirArg,
        /// The account ID.
        account: String,
        /// The feed's domain.
        #[arg(default_value = "post")]
        domain: String,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Ask the running peer to connect to a peer
    ///
    /// The peer keeps it connected (redialing with backoff). Waits for the handshake and
    /// prints the outcome.
    Connect {
        #[command(flatten)]
        dir: DirArg,
        /// `net:HOST:PORT~shse:PUBKEY` (`HOST:PORT` for a `--plaintext` peer).
        address: String,
    },
    /// Print the connections and the peers being dialed
    ///
    /// One JSON per line: address, key, direction, state, since, bytes each way, sync.
    Peers {
        #[command(flatten)]
        dir: DirArg,
    },
    /// Print the store's size, msgs, tangles, follows, goals and connections
    Status {
        #[command(flatten)]
        dir: DirArg,
    },
    /// Invites: make one through a hub, or use one (pzp-invite URIs)
    #[command(subcommand)]
    Invite(InviteCommand),
    /// The peer's durable store, low level
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Msg tools that need no store
    #[command(subcommand)]
    Msg(msg::MsgCommand),
}

/// `ppppp invite …`: both ask the running peer.
#[derive(Debug, Subcommand)]
enum InviteCommand {
    /// Make an invite for a friend
    ///
    /// Asks a hub this peer attends for a membership token and makes a follow promise; the
    /// URI lets its user attend the hub, follow this account and be followed back. Prints
    /// `{"uri", "url"}` (the URI, and pzp-invite's web link holding it).
    Create {
        #[command(flatten)]
        dir: DirArg,
        /// The hub's key (default: the first hub attended now).
        #[arg(long)]
        hub: Option<String>,
        /// What the invite's promise allows: `follow` (its user follows this account and is
        /// followed back) or `account-add` (its user's key joins this account: a new device).
        #[arg(long, default_value = "follow", value_parser = ["follow", "account-add"])]
        promise: String,
    },
    /// Use an invite: attend its hub, follow, redeem its promise
    ///
    /// Accepts a `pzp://invite/…` URI or its web link. An account-add invite makes this peer
    /// a device of the inviter's account for good (kept in DIR/joined-account.json): it
    /// publishes there from then on; its former account stays in the store, unused.
    Use {
        #[command(flatten)]
        dir: DirArg,
        /// The invite.
        uri: String,
        /// The account an account-add invite adds this peer to (its URI does not say;
        /// default: ask the inviter, which a ppppp inviter answers and a pzp app does not).
        #[arg(long)]
        account: Option<String>,
    },
}

/// Runs the program; the exit code is 0 on success, 1 on failure (with the error on stderr),
/// 2 for bad usage.
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ppppp: {}", error_text(&err));
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    use user::Show;
    match command {
        Command::Init { dir } => peer::init(&dir.resolve()?),
        Command::Whoami { dir } => user::answer(&dir.resolve()?, "whoami", json!({}), Show::Pretty),
        Command::Serve(args) => serve::serve(args),
        Command::Hub(args) => hub::hub(args),
        Command::Publish {
            dir,
            domain,
            data,
            text,
        } => {
            let data: Value = match (data, text) {
                (Some(data), _) => serde_json::from_str(&data).context("--data is not JSON")?,
                (None, text) => json!({ "text": text.unwrap_or_default() }),
            };
            let fields = json!({"domain": domain, "data": data});
            user::answer(&dir.resolve()?, "publish", fields, Show::Field("msg"))
        }
        Command::Follow {
            dir,
            account,
            domain,
            goal,
        } => {
            let fields = json!({"account": account, "domain": domain, "goal": goal});
            user::answer(&dir.resolve()?, "follow", fields, Show::Pretty)
        }
        Command::Unfollow { dir, account } => {
            let fields = json!({ "account": account });
            user::answer(&dir.resolve()?, "unfollow", fields, Show::Pretty)
        }
        Command::Feed { dir, read } => user::stream(&dir.resolve()?, "feed", read.fields()),
        Command::Log { dir, read } => user::stream(&dir.resolve()?, "log", read.fields()),
        Command::Hist {
            dir,
            account,
            domain,
            read,
        } => {
            let mut fields = read.fields();
            if let Some(fields) = fields.as_object_mut() {
                fields.insert("account".to_owned(), Value::from(account));
                fields.insert("domain".to_owned(), Value::from(domain));
            }
            user::stream(&dir.resolve()?, "hist", fields)
        }
        Command::Connect { dir, address } => {
            let fields = json!({"address": address, "wait": true});
            user::answer(&dir.resolve()?, "connect", fields, Show::Pretty)
        }
        Command::Peers { dir } => {
            user::answer(&dir.resolve()?, "peers", json!({}), Show::Lines("peers"))
        }
        Command::Status { dir } => user::answer(&dir.resolve()?, "status", json!({}), Show::Pretty),
        Command::Invite(command) => invite(command),
        Command::Db(command) => db::run(command),
        Command::Msg(command) => msg::run(command),
    }
}

fn invite(command: InviteCommand) -> anyhow::Result<()> {
    use user::Show;
    match command {
        InviteCommand::Create { dir, hub, promise } => {
            let fields = json!({"hub": hub, "promise": promise});
            user::answer(&dir.resolve()?, "invite_create", fields, Show::Pretty)
        }
        InviteCommand::Use { dir, uri, account } => user::answer(
            &dir.resolve()?,
            "invite_use",
            json!({"uri": uri, "account": account}),
            Show::Pretty,
        ),
    }
}

/// An error and its causes on one line, `outer: inner: …`, leaving out a cause whose text
/// the line already holds (many errors repeat their source's text in their own, and the
/// operating system's `… (os error N)` came out twice).
#[must_use]
pub fn error_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}
