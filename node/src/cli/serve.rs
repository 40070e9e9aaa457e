//! `ppppp serve`: run a peer — listen, keep `--connect` peers connected, sync per the goals,
//! stay in realtime — until SIGTERM or SIGINT, then flush the store and exit 0.
//!
//! The first line on standard output is `listening <address>` (the multiserver address
//! `net:HOST:PORT~shse:PUBKEY` that other peers dial). After it, standard input takes control
//! commands, one JSON object per line, each answered by one JSON line on standard output
//! (`{"ok":true,...}` or `{"ok":false,"error":...}`, echoing an `"id"` if given):
//!
//! | command | fields | answer |
//! |---|---|---|
//! | `whoami` | | `key`, `account`, `address` |
//! | `publish` | `domain`, `data` | `msg`, `feed` |
//! | `goal` | `tangle`, `goal` (`all`, `newest-N`, `set`, `dict`, `none`) | |
//! | `connect` | `address` (multiserver) | |
//! | `state` | | `state`: `{"tangles","sets","dicts"}` |
//! | `msgs` | `tangle` | `msgs`: the tangle's msgs, topological (erased ones with `data: null`) |
//! | `connections` | | `count` |
//!
//! End of input just stops the control channel; the peer keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use proto::goals::Goal;
use proto::ids::TangleId;
use proto::msg;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

use super::peer::random_bytes;
use super::{secret_path, store_dir};
use crate::keyfile;
use crate::net::TokioNet;
use crate::peer::{self, AnyStore, DialTarget, NodeConfig, NodeHandle, Transport};
use crate::store::{DiskStore, Options};
use crate::transport::addr::{Address, Transport as AddressTransport};
use crate::transport::caps::NetworkKey;

/// Options of `ppppp serve`.
#[derive(Debug, clap::Args)]
pub(super) struct ServeArgs {
    /// The peer directory (created with a new keypair if it does not exist).
    #[arg(long)]
    dir: PathBuf,
    /// Where to listen, `HOST:PORT` (port 0 picks a free one).
    #[arg(long)]
    listen: String,
    /// A peer to keep connected to: `net:HOST:PORT~shse:PUBKEY` (or `HOST:PORT` with
    /// `--plaintext`). Repeatable.
    #[arg(long = "connect")]
    connect: Vec<String>,
    /// A goal, `<TANGLE_ID>=<all|newest-N|set|dict|none>`. Repeatable.
    #[arg(long = "goal")]
    goal: Vec<String>,
    /// Speak muxrpc over plain TCP instead of SHSE + secretstream (simulations only; JS peers
    /// cannot connect).
    #[arg(long)]
    plaintext: bool,
    /// Garbage-collect down to this many bytes of msgs (`none` by default).
    #[arg(long)]
    gc_bytes_max: Option<u64>,
}

pub(super) fn serve(args: ServeArgs) -> anyhow::Result<()> {
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

async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let keypair = load_or_create_keypair(&args.dir)?;
    let store = DiskStore::open(
        store_dir(&args.dir),
        &Options {
            create: true,
            faults: None,
        },
    )?;
    let transport = if args.plaintext {
        Transport::Plaintext
    } else {
        Transport::Shse(NetworkKey::default())
    };
    let mut config = NodeConfig::new(keypair, u64::from_le_bytes(random_bytes()?));
    config.listen = Some(args.listen.clone());
    config.transport = transport;
    config.gc_bytes_max = args.gc_bytes_max;
    config.dial = args
        .connect
        .iter()
        .map(|address| dial_target(address, transport))
        .collect::<anyhow::Result<_>>()?;
    config.goals = args
        .goal
        .iter()
        .map(|text| parse_goal(text))
        .collect::<anyhow::Result<_>>()?;
    let node = peer::run(config, Arc::new(TokioNet), AnyStore::new(store))
        .await
        .context("cannot start the peer")?;
    let address = advertised_address(&node, transport);
    println!("listening {address}");
    control_loop(&node, &address).await?;
    node.shutdown()
        .await
        .context("the store could not be flushed")?;
    Ok(())
}

fn load_or_create_keypair(dir: &Path) -> anyhow::Result<proto::keys::Keypair> {
    let secret = secret_path(dir);
    if secret.exists() {
        return Ok(keyfile::read(&secret)?);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let keypair = proto::keys::Keypair::from_random(random_bytes()?);
    keyfile::write_new(&secret, &keypair)?;
    eprintln!("ppppp: created a new keypair in {}", secret.display());
    Ok(keypair)
}

fn dial_target(text: &str, transport: Transport) -> anyhow::Result<DialTarget> {
    if transport == Transport::Plaintext && !text.contains(':') {
        anyhow::bail!("{text:?} is not HOST:PORT");
    }
    if transport == Transport::Plaintext && !text.starts_with("net:") {
        return Ok(DialTarget {
            address: text.to_owned(),
            key: None,
        });
    }
    let address = Address::parse_multiserver(text)
        .with_context(|| format!("{text:?} is not a multiserver address"))?;
    let AddressTransport::Net { host, port } = &address.transport else {
        anyhow::bail!("{text:?}: only net: addresses can be dialed directly");
    };
    let host = host.to_string();
    let socket = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let key = address
        .shse
        .map(|shse| proto::ids::PubKey::from_bytes(&shse.key.0));
    if transport != Transport::Plaintext && key.is_none() {
        anyhow::bail!("{text:?} has no ~shse:PUBKEY part");
    }
    Ok(DialTarget {
        address: socket,
        key,
    })
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

/// Serves control commands until SIGTERM or SIGINT.
async fn control_loop(node: &NodeHandle, address: &str) -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch SIGTERM")?;
    let mut lines = Some(tokio::io::BufReader::new(tokio::io::stdin()).lines());
    loop {
        tokio::select! {
            biased;
            _ = terminate.recv() => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
            line = next_line(&mut lines) => {
                match line {
                    Some(line) if !line.trim().is_empty() => {
                        let reply = command(node, address, &line).await;
                        println!("{reply}");
                    }
                    Some(_) => {}
                    None => lines = None,
                }
            }
        }
    }
}

/// The next control line; never resolves once input has ended.
async fn next_line(
    lines: &mut Option<tokio::io::Lines<tokio::io::BufReader<tokio::io::Stdin>>>,
) -> Option<String> {
    match lines {
        Some(reader) => reader.next_line().await.ok().flatten(),
        None => std::future::pending().await,
    }
}

async fn command(node: &NodeHandle, address: &str, line: &str) -> Value {
    let request: Value = match serde_json::from_str(line) {
        Ok(request) => request,
        Err(error) => return json!({"ok": false, "error": format!("not JSON: {error}")}),
    };
    let id = request.get("id").cloned();
    let mut reply = match execute(node, address, &request).await {
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

async fn execute(node: &NodeHandle, address: &str, request: &Value) -> anyhow::Result<Value> {
    let field = |name: &str| {
        request
            .get(name)
            .and_then(Value::as_str)
            .with_context(|| format!("missing string field {name:?}"))
    };
    match field("cmd")? {
        "whoami" => Ok(
            json!({"key": node.key().to_string(), "account": node.account().to_string(), "address": address}),
        ),
        "publish" => {
            let domain = field("domain")?;
            let data = request
                .get("data")
                .cloned()
                .context("missing field \"data\"")?;
            let id = node.publish(domain, data).await?;
            Ok(
                json!({"msg": id.to_string(), "feed": msg::feed_id(&node.account(), domain).to_string()}),
            )
        }
        "goal" => {
            let tangle = TangleId::parse(field("tangle")?).context("bad tangle ID")?;
            let goal: Goal = field("goal")?.parse().context("bad goal")?;
            node.set_goal(tangle, goal).await?;
            Ok(json!({}))
        }
        "connect" => {
            let transport = if field("address")?.contains("~shse:") {
                Transport::Shse(NetworkKey::default())
            } else {
                Transport::Plaintext
            };
            node.connect(dial_target(field("address")?, transport)?)
                .await?;
            Ok(json!({}))
        }
        "state" => Ok(json!({"state": serde_json::to_value(node.snapshot().await?)?})),
        "connections" => Ok(json!({"count": node.connections().await?})),
        "msgs" => {
            let tangle = TangleId::parse(field("tangle")?).context("bad tangle ID")?;
            let msgs: Vec<Value> = node
                .tangle_msgs(tangle)
                .await?
                .iter()
                .map(|msg| msg.to_value())
                .collect();
            Ok(json!({"msgs": msgs}))
        }
        other => anyhow::bail!("unknown command {other:?}"),
    }
}
