//! The `ppppp` command line: a black-box interface over the library, for people and for
//! tests that drive real processes.

mod msg;

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

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
}

/// Runs the program; the exit code is 0 on success, 1 on failure (with the error on stderr),
/// 2 for bad usage.
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Msg(command) => msg::run(command),
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
