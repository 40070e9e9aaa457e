//! `ppppp msg id` and `ppppp msg check`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use proto::db::Db;
use proto::ingest::{self, Snapshot, Verdict};
use proto::store::MemStore;

use super::lines::{self, Line, LineSource};

#[derive(Debug, Subcommand)]
pub(super) enum MsgCommand {
    /// Print the msg ID of one msg given as JSON (FILE, or standard input).
    Id {
        /// The msg; `-` or nothing for standard input.
        file: Option<PathBuf>,
    },
    /// Add JSON-lines msgs, in order, to a fresh in-memory store with the reference's rules;
    /// print `ok <ID>` or `rejected <ID|-> <reason>` per line, as the lines arrive (a line
    /// that is not UTF-8, or longer than 1 MiB, gets its own `rejected -` verdict).
    Check {
        /// The msgs, one per line; `-` or nothing for standard input.
        file: Option<PathBuf>,
        /// Then print the resulting tangles, sets and dicts as one JSON object.
        #[arg(long)]
        state: bool,
    },
}

pub(super) fn run(command: MsgCommand) -> anyhow::Result<()> {
    match command {
        MsgCommand::Id { file } => {
            let text = read_input(file.as_deref())?;
            let value: serde_json::Value =
                serde_json::from_str(&text).context("the input is not JSON")?;
            let id = ingest::id_of_json(&value)
                .context("the input has no metadata object, so no msg ID")?;
            println!("{id}");
            Ok(())
        }
        MsgCommand::Check { file, state } => {
            lines::with_input(file.as_deref(), |input| check(input, state))
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

/// `ppppp msg check`: one verdict per line, as the lines arrive (printed whenever the next
/// read might block), never holding more than one line.
fn check(input: &mut dyn LineSource, state: bool) -> anyhow::Result<()> {
    let mut db = Db::new(MemStore::new());
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    loop {
        if input.next_read_may_block() {
            out.flush()?;
        }
        let Some(line) = input.next_line()? else {
            break;
        };
        let verdict = match line {
            Line::Text(text) => match ingest::add_json(&mut db, text) {
                Ok(verdict) => verdict,
                Err(never) => match never {},
            },
            other => Verdict::Rejected(None, other.refusal().unwrap_or_default()),
        };
        writeln!(out, "{verdict}")?;
    }
    if state {
        let snapshot = match Snapshot::of(&mut db) {
            Ok(snapshot) => snapshot,
            Err(never) => match never {},
        };
        writeln!(out, "{}", serde_json::to_string(&snapshot)?)?;
    }
    out.flush()?;
    Ok(())
}
