//! `ppppp hub`: run a hub — a peer that others attend, which lists its attendants and opens
//! tunnels between them (`node::hub`) — until SIGTERM or SIGINT.
//!
//! The directory holds the hub's keypair (`DIR/secret`) and its membership (`DIR/members.json`,
//! `DIR/tokens.json`, as staltz/ppppp-hub keeps them). The first line on standard output is
//! `listening net:HOST:PORT~shse:KEY`. Standard input takes JSON lines: `{"cmd":"status"}`
//! answers `{"ok":true,"attendants":[KEY…],"links":N,"tunnels":N,"members":N}`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use super::DirArg;
use super::control::lines::{Line, LineSplitter};
use super::peer::random_bytes;
use super::received::now_ms;
use crate::hub::{HubConfig, HubHandle, run_hub};
use crate::net::TokioNet;
use crate::transport::caps::NetworkKey;

/// Options of `ppppp hub`.
#[derive(Debug, clap::Args)]
pub(super) struct HubArgs {
    /// The hub's directory (created, with a new keypair, if it does not exist).
    #[command(flatten)]
    dir: DirArg,
    /// Where to listen, `HOST:PORT` (port 0 picks a free one).
    #[arg(long)]
    listen: String,
    /// The name `hub.metadata` gives.
    #[arg(long, default_value = "")]
    name: String,
    /// Admit any peer; by default only members, holders of an unspent token, and the first
    /// peer ever to connect (who becomes the first member) are admitted.
    #[arg(long)]
    open: bool,
}

pub(super) fn hub(args: HubArgs) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let result = runtime.block_on(run(args));
    runtime.shutdown_background();
    result
}

async fn run(args: HubArgs) -> anyhow::Result<()> {
    let dir: PathBuf = args.dir.resolve()?;
    super::peer::create_private_dir(&dir)?;
    let keypair = super::serve::load_or_create_keypair(&dir)?;
    let config = HubConfig {
        keypair,
        network_key: NetworkKey::default(),
        listen: args.listen.clone(),
        name: args.name.clone(),
        dir: Some(dir),
        open: args.open,
        // Members ask for tokens with `hub.createToken` (`ppppp invite create`).
        invites: Vec::new(),
        seed: u64::from_le_bytes(random_bytes()?),
        epoch_ms: now_ms(),
    };
    let hub = run_hub(config, Arc::new(TokioNet)).await?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch SIGTERM")?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot watch SIGINT")?;
    println!("listening net:{}~shse:{}", hub.address(), hub.key());
    let mut stdin = tokio::io::stdin();
    let mut stdin_open = true;
    let mut splitter = LineSplitter::default();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let mut lines = Vec::new();
        tokio::select! {
            biased;
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            read = stdin.read(&mut chunk), if stdin_open => match read {
                Ok(0) | Err(_) => {
                    splitter.finish(&mut lines);
                    stdin_open = false;
                }
                Ok(read) => splitter.push(chunk.get(..read).unwrap_or_default(), &mut lines),
            },
        }
        for line in lines {
            match line {
                Line::Text(text) if text.trim().is_empty() => {}
                Line::Text(text) => println!("{}", answer(&hub, &text).await),
                other => println!("{}", json!({"ok": false, "error": other.problem()})),
            }
        }
    }
    hub.stop().await;
    Ok(())
}

async fn answer(hub: &HubHandle, line: &str) -> Value {
    let request: Value = serde_json::from_str(line).unwrap_or(Value::Null);
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    match request.get("cmd").and_then(Value::as_str) {
        Some("status") => match hub.status().await {
            Ok(status) => json!({
                "ok": true,
                "id": id,
                "attendants": status.attendants.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "links": status.links,
                "tunnels": status.tunnels,
                "members": status.members,
            }),
            Err(error) => json!({"ok": false, "id": id, "error": error.to_string()}),
        },
        _ => json!({"ok": false, "id": id, "error": "commands: status"}),
    }
}
