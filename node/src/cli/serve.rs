//! `ppppp serve`: run a peer — listen, keep `--connect` peers connected, sync per the goals,
//! stay in realtime — until SIGTERM or SIGINT, then flush the store and exit 0. If the node
//! stops by itself (its store can no longer write: a full disk, a failing device), the
//! process says why on standard error and exits 1, so a supervisor restarts it; every
//! acknowledged msg is on disk, and the next start recovers the store.
//!
//! The first line on standard output is `listening <address>` (the multiserver address
//! `net:HOST:PORT~shse:PUBKEY` that other peers dial). The peer answers control commands on
//! two channels, which take the same commands and fields:
//!
//! - **The control socket** `DIR/socket` (muxrpc, owner only; `control::socket`), which the
//!   `ppppp` commands use: method `NAME`, first argument an object of the fields below;
//!   `feed`, `log` and `hist` are `source` streams, the rest `async`.
//! - **Standard input**: one JSON object per line, `{"cmd":NAME, ...fields}`, each answered
//!   by one JSON line on standard output (`{"ok":true,...}` or `{"ok":false,"error":...}`,
//!   echoing an `"id"` if given). A line that is not UTF-8, not JSON or longer than 1 MiB
//!   is answered with an error, and the next line is read as usual. End of input stops
//!   this channel only; the peer keeps serving.
//!
//! | command | fields | answer |
//! |---|---|---|
//! | `whoami` | | `account`, `key`, `address` |
//! | `publish` | `domain`, `data` | `msg`, `feed` |
//! | `follow` | `account`, `domain`? (`post`), `goal`? (`all`) | `account`, `msg` (null if already followed), `goals` |
//! | `unfollow` | `account` | `account`, `msg` (null if not followed), `goals` (now `none`) |
//! | `feed`, `log` | `limit`?, `reverse`?, `live`? | socket only: a stream of `{"key","value","timestamp"}` |
//! | `hist` | `account`, `domain`? (`post`), `limit`?, `reverse`?, `live`? | socket only: as `feed` |
//! | `peers` | | `peers`: connections and dial targets |
//! | `connect` | `address` (multiserver), `wait`? | with `wait`: `address`, `key`, `state` once connected |
//! | `status` | | `account`, `msgs`, `msgBytes`, `logBytes`, `tangles`, `follows`, `goals`, `connections` |
//! | `set_add`, `set_del` | `subdomain`, `value` (a string) | `changed`, `tangle`, `msg` (null if unchanged) |
//! | `dict_update` | `subdomain`, `update` (an object) | `changed`, `tangle`, `msg` (null if unchanged) |
//! | `account_add` | `key`, `consent` (the key's signature of the account), `powers`? | `msg` |
//! | `add` | `msg` (a msg made elsewhere), `tangle`? | `msg` |
//! | `goal` | `tangle`, `goal` (`all`, `newest-N`, `set`, `dict`, `none`); not persisted | |
//! | `state` | | `state`: `{"tangles","sets","dicts"}` |
//! | `count` | `tangle` | `count` (msgs, root included), `dataful` (those with data) |
//! | `msgs` | `tangle` | `msgs`: the tangle's msgs, topological (erased ones with `data: null`) |
//! | `connections` | | `count` |
//! | `manifest` | | every method and its muxrpc type |

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use proto::goals::Goal;
use proto::ids::TangleId;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::UnixListener;

use super::control::execute::{self, Control};
use super::control::lines::{Line, LineSplitter};
use super::control::request::Request;
use super::control::socket::SocketFile;
use super::control::{server, socket};
use super::dial::dial_target;
use super::dir::DirArg;
use super::dir::{secret_path, store_dir};
use super::follow::{self, GoalsFile};
use super::peer::random_bytes;
use super::received::ReceivedTimes;
use crate::keyfile;
use crate::net::TokioNet;
use crate::peer::{self, AbortOnDrop, AnyStore, NodeConfig, NodeHandle, Transport};
use crate::store::{DiskStore, Options};
use crate::transport::caps::NetworkKey;

/// Bytes read from standard input at a time.
const STDIN_CHUNK_BYTES: usize = 64 * 1024;
/// How long a peer whose node stopped lets control calls in flight answer before it exits.
const EXIT_REPLY_GRACE: Duration = Duration::from_millis(500);
/// Beyond a TCP connect and a handshake, how long a waiting `connect` gives the dial.
const CONNECT_WAIT_MARGIN: Duration = Duration::from_secs(5);

/// Options of `ppppp serve`.
#[derive(Debug, clap::Args)]
pub(super) struct ServeArgs {
    /// The peer directory (created, with a new keypair, if it does not exist).
    #[command(flatten)]
    dir: DirArg,
    /// Where to listen, `HOST:PORT` (port 0 picks a free one).
    #[arg(long)]
    listen: String,
    /// A peer to keep connected to: `net:HOST:PORT~shse:PUBKEY` (or `HOST:PORT` with
    /// `--plaintext`). Repeatable.
    #[arg(long = "connect")]
    connect: Vec<String>,
    /// A hub to attend, `net:HOST:PORT~shse:KEY[:TOKEN]` or `/ip4/HOST/tcp/PORT/shse/KEY[.TOKEN]`:
    /// kept connected; its attendants are dialed through its tunnels. Repeatable.
    #[arg(long = "hub")]
    hub: Vec<String>,
    /// A goal, `<TANGLE_ID>=<all|newest-N|set|dict|none>`, for this run (the goals `ppppp
    /// follow` set are kept in DIR and need no flag). Repeatable.
    #[arg(long = "goal")]
    goal: Vec<String>,
    /// Speak muxrpc over plain TCP instead of SHSE + secretstream (simulations only; JS peers
    /// cannot connect).
    #[arg(long)]
    plaintext: bool,
    /// Garbage-collect down to this many bytes of msgs (`none` by default).
    #[arg(long)]
    gc_bytes_max: Option<u64>,
    /// Drop connections whose SHSE handshake takes longer than this many milliseconds (the
    /// reference's default is 15 s).
    #[arg(long, default_value_t = 15_000)]
    handshake_timeout_ms: u64,
    /// How to sync with a peer that is also ppppp: `reconcile` (range reconciliation,
    /// `docs/sync-extension.md`) or `connect` (pzp-sync, as with JS peers, who always get it).
    #[arg(long, value_enum, default_value_t = SyncChoice::Reconcile)]
    sync: SyncChoice,
}

/// `ppppp serve --sync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SyncChoice {
    /// `sync.reconcile` with ppppp peers that answer it, pzp-sync with the others.
    Reconcile,
    /// pzp-sync with every peer.
    Connect,
}

pub(super) fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Logs go to standard error, filtered by RUST_LOG (nothing by default): standard output
    // carries only the address line and control replies. Colours only on a terminal, so a
    // captured log (the wire record, `ppppp::wire`) reads as plain text.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let result = runtime.block_on(run(args));
    // tokio reads stdin on a blocking thread that a read in progress keeps alive; the store is
    // already flushed, so do not wait for it.
    runtime.shutdown_background();
    result
}

/// How the control loop ended.
enum Exit {
    /// SIGTERM or SIGINT.
    Signal,
    /// The node stopped by itself, for this reason.
    NodeStopped(String),
}

async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let (control, listener, socket_file, app_requests) = start(args).await?;
    let promises = super::control::invites::serve_promises(Arc::clone(&control), app_requests);
    let noter = AbortOnDrop(tokio::spawn(execute::note_added(Arc::clone(&control))));
    let discovery = control
        .hubs
        .as_ref()
        .and_then(|hubs| hubs.dial_attendants(control.node.dialer()));
    let server = AbortOnDrop(tokio::spawn(server::serve(
        listener,
        socket_file.uid,
        Arc::clone(&control),
    )));
    // Watch the signals before saying we listen: a SIGTERM right after must not kill us.
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch SIGTERM")?;
    let interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot watch SIGINT")?;
    println!("listening {}", control.address);
    let exit = control_loop(&control, terminate, interrupt).await;
    if matches!(exit, Ok(Exit::NodeStopped(_))) {
        // Calls that found the node stopped are saying why to their clients.
        tokio::time::sleep(EXIT_REPLY_GRACE).await;
    }
    drop((server, noter, discovery, promises, socket_file));
    match exit {
        Ok(Exit::Signal) => control
            .node
            .stop()
            .await
            .context("the store could not be flushed"),
        Ok(Exit::NodeStopped(reason)) => anyhow::bail!(
            "the node stopped: {reason}. Exiting so that a supervisor restarts the peer: every \
             acknowledged msg is on disk, and the store recovers when it starts again"
        ),
        Err(error) => {
            let _ = control.node.stop().await;
            Err(error)
        }
    }
}

/// Opens the directory (keypair, store, control socket, goals, receive times) and starts
/// the node with the goals `follow` set, the `--goal` flags, and the peer's own goals.
/// What `start` gives `run`: the control state, the control socket, and the app calls
/// (promise redemptions) remotes make.
type Started = (
    Arc<Control>,
    UnixListener,
    SocketFile,
    tokio::sync::mpsc::Receiver<crate::peer::AppRequest>,
);

async fn start(args: ServeArgs) -> anyhow::Result<Started> {
    let dir = args.dir.resolve()?;
    super::peer::create_private_dir(&dir)?;
    socket::check_private_dir(&dir, None)?;
    let keypair = load_or_create_keypair(&dir)?;
    let store = DiskStore::open(
        store_dir(&dir),
        &Options {
            create: true,
            faults: None,
        },
    )?;
    // After the store's writer lock: no other peer runs here, so a socket file is stale.
    let (listener, socket_file) = socket::bind(&dir)?;
    let goals_file = GoalsFile::load(&dir)?;
    let mut received = ReceivedTimes::load(&dir)?;
    received.compact_if_mostly_gone(proto::store::Store::len(&store), |id| {
        proto::store::Store::get(&store, id).is_ok_and(|record| record.is_some())
    })?;
    let flag_goals: Vec<(TangleId, Goal)> = args
        .goal
        .iter()
        .map(|text| parse_goal(text))
        .collect::<anyhow::Result<_>>()?;
    let mut config = node_config(&args, keypair.clone())?;
    config.account = super::joined::load(&dir)?.map(|joined| joined.account);
    config.goals = goals_file.pairs();
    config.goals.extend(flag_goals.iter().copied());
    let connect_wait =
        config.timers.connect_timeout + config.timers.handshake_timeout + CONNECT_WAIT_MARGIN;
    let transport = config.transport;
    let hub_addresses = args
        .hub
        .iter()
        .map(|text| super::hubs::hub_address(text))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (hubs, net) = hubs_and_net(&config).await?;
    let promises = super::promises::PromiseBook::load(&dir)?;
    let (app, app_requests) = super::control::invites::app_methods();
    config.app = Some(app);
    let node = peer::run(config, net, AnyStore::new(store))
        .await
        .context("cannot start the peer")?;
    if let Some(hubs) = &hubs {
        for address in hub_addresses {
            hubs.add(address).await?;
        }
    }
    for (tangle, goal) in follow::own_goals(&node.account()) {
        if !flag_goals.iter().any(|(flagged, _)| *flagged == tangle) {
            node.set_goal(tangle, goal).await?;
        }
    }
    let control = Control {
        address: advertised_address(&node, transport),
        node,
        keypair,
        dir,
        transport,
        connect_wait,
        goals_file: tokio::sync::Mutex::new(goals_file),
        received: std::sync::Mutex::new(received),
        hubs,
        promises,
    };
    Ok((Arc::new(control), listener, socket_file, app_requests))
}

/// The hub client and the `Net` with tunnels through it; plain TCP for a plaintext peer.
async fn hubs_and_net(
    config: &NodeConfig,
) -> anyhow::Result<(Option<crate::hub::Attendance>, Arc<dyn crate::net::Net>)> {
    Ok(match config.transport {
        Transport::Plaintext => (None, Arc::new(TokioNet)),
        Transport::Shse(_) => {
            let (hubs, net) = super::hubs::start(config).await?;
            (Some(hubs), net)
        }
    })
}

/// The node's configuration from the command line (goals aside).
fn node_config(args: &ServeArgs, keypair: proto::keys::Keypair) -> anyhow::Result<NodeConfig> {
    let transport = if args.plaintext {
        Transport::Plaintext
    } else {
        Transport::Shse(NetworkKey::default())
    };
    let mut config = NodeConfig::new(keypair, u64::from_le_bytes(random_bytes()?));
    config.listen = Some(args.listen.clone());
    config.transport = transport;
    config.gc_bytes_max = args.gc_bytes_max;
    // A real process: synced batches' signatures are checked on every core.
    config.verify_ahead = true;
    // JS peers keep pzp-sync either way.
    config.reconcile = args.sync == SyncChoice::Reconcile;
    config.timers.handshake_timeout = Duration::from_millis(args.handshake_timeout_ms);
    config.dial = args
        .connect
        .iter()
        .map(|address| dial_target(address, transport))
        .collect::<anyhow::Result<_>>()?;
    Ok(config)
}

pub(super) fn load_or_create_keypair(dir: &Path) -> anyhow::Result<proto::keys::Keypair> {
    let secret = secret_path(dir);
    if secret.exists() {
        return Ok(keyfile::read(&secret)?);
    }
    super::peer::check_no_store_without_secret(dir)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let keypair = proto::keys::Keypair::from_random(random_bytes()?);
    keyfile::write_new(&secret, &keypair)?;
    eprintln!("ppppp: created a new keypair in {}", secret.display());
    Ok(keypair)
}

fn parse_goal(text: &str) -> anyhow::Result<(TangleId, Goal)> {
    let (tangle, goal) = text
        .split_once('=')
        .with_context(|| format!("goal {text:?} is not TANGLE_ID=GOAL"))?;
    let tangle =
        TangleId::parse(tangle).with_context(|| format!("goal {text:?}: bad tangle ID"))?;
    let goal: Goal = goal
        .parse()
        .with_context(|| format!("goal {text:?}: bad goal"))?;
    Ok((tangle, goal))
}

fn advertised_address(node: &NodeHandle, transport: Transport) -> String {
    let socket = node.address().unwrap_or_default();
    match transport {
        Transport::Plaintext => format!("net:{socket}"),
        Transport::Shse(_) => format!("net:{socket}~shse:{}", node.key()),
    }
}

/// Serves standard input's control commands until SIGTERM or SIGINT, or until the node
/// stops by itself.
async fn control_loop(
    control: &Control,
    mut terminate: tokio::signal::unix::Signal,
    mut interrupt: tokio::signal::unix::Signal,
) -> anyhow::Result<Exit> {
    let mut stdin = Some(tokio::io::stdin());
    let mut splitter = LineSplitter::default();
    let mut chunk = vec![0u8; STDIN_CHUNK_BYTES];
    loop {
        let mut lines = Vec::new();
        tokio::select! {
            biased;
            _ = terminate.recv() => return Ok(Exit::Signal),
            _ = interrupt.recv() => return Ok(Exit::Signal),
            reason = control.node.wait_stopped() => return Ok(Exit::NodeStopped(reason)),
            read = read_some(&mut stdin, &mut chunk) => match read {
                Some(read) => splitter.push(chunk.get(..read).unwrap_or_default(), &mut lines),
                None => {
                    splitter.finish(&mut lines);
                    stdin = None;
                }
            },
        }
        for line in lines {
            if let Some(reply) = answer_line(control, line).await {
                println!("{reply}");
            }
        }
    }
}

/// The next bytes of standard input; `None` at its end (or a read error); never resolves once
/// input has ended.
async fn read_some(stdin: &mut Option<tokio::io::Stdin>, chunk: &mut [u8]) -> Option<usize> {
    match stdin {
        Some(input) => match input.read(chunk).await {
            Ok(0) | Err(_) => None,
            Ok(read) => Some(read),
        },
        None => std::future::pending().await,
    }
}

/// The reply to one line (none to a blank line).
async fn answer_line(control: &Control, line: Line) -> Option<Value> {
    match line {
        Line::Text(text) if text.trim().is_empty() => None,
        Line::Text(text) => Some(command(control, &text).await),
        other => Some(json!({"ok": false, "error": other.problem()})),
    }
}

async fn command(control: &Control, line: &str) -> Value {
    let request: Value = match serde_json::from_str(line) {
        Ok(request) => request,
        Err(error) => return json!({"ok": false, "error": format!("not JSON: {error}")}),
    };
    let id = request.get("id").cloned();
    let result = match request.as_object() {
        None => Err(anyhow::anyhow!("a command is a JSON object with a \"cmd\"")),
        Some(fields) => match fields.get("cmd").and_then(Value::as_str) {
            None => Err(anyhow::anyhow!("missing string field \"cmd\"")),
            Some(name) => match Request::parse(name, fields) {
                Ok(request) => control.execute(request).await,
                Err(error) => Err(error),
            },
        },
    };
    let mut reply = match result {
        Ok(Value::Object(mut fields)) => {
            fields.insert("ok".to_owned(), Value::Bool(true));
            Value::Object(fields)
        }
        Ok(_) => json!({"ok": true}),
        Err(error) => json!({"ok": false, "error": format!("{error:#}")}),
    };
    if let (Some(id), Some(fields)) = (id, reply.as_object_mut()) {
        fields.insert("id".to_owned(), id);
    }
    reply
}
