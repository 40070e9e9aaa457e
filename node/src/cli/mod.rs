//! The `ppppp` command line: a black-box interface over the library, for people and for
//! tests that drive real processes.
//!
//! A peer directory `DIR` holds `DIR/secret` (the keypair, pzp-keypair's format) and
//! `DIR/db/` (the store, `docs/store-format.md`).

mod db;
mod msg;
mod peer;
mod serve;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::store::{DiskStore, Options};

/// A PPPPP (PZP) peer, byte-compatible with the JavaScript reference.
#[derive(Debug, Parser)]
#[command(name = "ppppp", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Msg tools that need no store.
    #[command(subcommand)]
    Msg(msg::MsgCommand),
    /// Create a peer directory: a store and a new keypair (never overwrites a secret).
    Init {
        /// The peer directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// The peer's durable store.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Publish `data` on the feed `domain` of the directory's account (created on first
    /// use); print the new msg's ID once it is durable.
    Publish {
        /// The peer directory.
        #[arg(long)]
        dir: PathBuf,
        /// The feed's domain (`[a-zA-Z0-9_]{3,100}`).
        #[arg(long)]
        domain: String,
        /// The msg's data, as JSON.
        #[arg(long)]
        data: String,
    },
    /// Run the peer: listen, connect, sync per the goals, stay in realtime, until SIGTERM or
    /// SIGINT. Prints `listening <address>` first; takes JSON control commands on stdin.
    Serve(serve::ServeArgs),
}

/// Runs the program; the exit code is 0 on success, 1 on failure (with the error on stderr),
/// 2 for bad usage.
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Msg(command) => msg::run(command),
        Command::Init { dir } => peer::init(&dir),
        Command::Db(command) => db::run(command),
        Command::Publish { dir, domain, data } => peer::publish(&dir, &domain, &data),
        Command::Serve(args) => serve::serve(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ppppp: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Reads all of `file`, or of standard input when `None` or `-`.
fn read_input(file: Option<&Path>) -> anyhow::Result<String> {
    let mut text = String::new();
    match file {
        Some(path) if path != Path::new("-") => {
            text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
        }
        _ => {
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
        }
    }
    Ok(text)
}

/// The store directory of a peer directory.
fn store_dir(dir: &Path) -> PathBuf {
    dir.join("db")
}

/// The keypair file of a peer directory.
fn secret_path(dir: &Path) -> PathBuf {
    dir.join("secret")
}

/// Opens the peer's store for writing; says on standard error what recovery repaired.
fn open_writer(dir: &Path) -> anyhow::Result<DiskStore> {
    let store = DiskStore::open(store_dir(dir), &Options::default())?;
    let recovery = store.recovery();
    if let Some(offset) = recovery.torn_tail_offset {
        eprintln!(
            "ppppp: cut {} bytes of an unfinished write at byte {offset} of the log \
             (never acknowledged; left by a crash)",
            recovery.torn_tail_bytes
        );
    }
    if recovery.removed_compaction_file {
        eprintln!("ppppp: removed an unfinished compaction's file (the log itself is whole)");
    }
    Ok(store)
}

/// Opens the peer's store read-only (no lock: works beside a running writer).
fn open_reader(dir: &Path) -> anyhow::Result<DiskStore> {
    Ok(DiskStore::open_read_only(
        store_dir(dir),
        &Options::default(),
    )?)
}
