//! The commands a person runs against a peer (`whoami`, `publish`, `follow`, `feed`, …):
//! each asks the peer running in the directory through its control socket, or, when none
//! runs, answers from the directory itself (`cli::local`). Both ways give the same answer,
//! printed here the same way.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

use super::control::client::Client;
use super::control::request::Request;
use super::control::socket::{self, Found};
use super::local;

/// How an answer is printed.
#[derive(Debug, Clone, Copy)]
pub(super) enum Show {
    /// The whole answer, pretty JSON.
    Pretty,
    /// One string field, bare.
    Field(&'static str),
    /// Each item of an array field, one JSON per line.
    Lines(&'static str),
}

/// Runs request `method` with `fields` and prints the answer.
///
/// # Errors
/// The peer's error, or why it could not be asked.
pub(super) fn answer(dir: &Path, method: &str, fields: Value, show: Show) -> anyhow::Result<()> {
    let value = runtime()?.block_on(ask(dir, method, fields))?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match show {
        Show::Pretty => writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?,
        Show::Field(name) => writeln!(
            out,
            "{}",
            value
                .get(name)
                .and_then(Value::as_str)
                .with_context(|| format!("the answer has no {name:?}: {value}"))?
        )?,
        Show::Lines(name) => {
            for item in value
                .get(name)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                writeln!(out, "{item}")?;
            }
        }
    }
    out.flush().context("cannot write to standard output")
}

/// Runs the stream `method` (`feed`, `log`, `hist`) with `fields`, printing each msg as a
/// line as it comes. A closed standard output (`| head`) ends it quietly.
///
/// # Errors
/// The peer's error, or why it could not be asked.
pub(super) fn stream(dir: &Path, method: &str, fields: Value) -> anyhow::Result<()> {
    let result = runtime()?.block_on(stream_to_stdout(dir, method, fields));
    match result {
        Err(error)
            if error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|error| error.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        other => other,
    }
}

async fn stream_to_stdout(dir: &Path, method: &str, fields: Value) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match find(dir).await? {
        Some(mut client) => {
            let live = fields.get("live").and_then(Value::as_bool) == Some(true);
            client
                .source(method, fields, |line| {
                    out.write_all(line)?;
                    out.write_all(b"\n")?;
                    if live {
                        out.flush()?;
                    }
                    Ok(())
                })
                .await?;
        }
        None => {
            let Request::Read(read) = parse(method, &fields)? else {
                anyhow::bail!("invariant: {method} is a stream");
            };
            local::stream(dir, &read, &mut out)?;
        }
    }
    out.flush()?;
    Ok(())
}

async fn ask(dir: &Path, method: &str, fields: Value) -> anyhow::Result<Value> {
    match find(dir).await? {
        Some(mut client) => client.call(method, fields).await,
        None => local::execute(dir, parse(method, &fields)?),
    }
}

/// A connection to the running peer, or `None` when no peer runs.
async fn find(dir: &Path) -> anyhow::Result<Option<Client>> {
    match socket::connect(dir).await? {
        Found::Running(stream) => Ok(Some(Client::new(stream, dir))),
        Found::Stopped { stale } => {
            if stale {
                eprintln!(
                    "ppppp: {} is stale (no peer listens on it: the last one was killed); \
                     using the directory directly",
                    socket::socket_path(dir).display()
                );
            }
            Ok(None)
        }
    }
}

fn parse(method: &str, fields: &Value) -> anyhow::Result<Request> {
    let empty = serde_json::Map::new();
    Request::parse(method, fields.as_object().unwrap_or(&empty))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
}
