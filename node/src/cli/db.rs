//! `ppppp db …`: the durable store from the command line.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use proto::db::Db;
use proto::ids::{AccountId, TangleId};
use proto::ingest::{Decoded, Verdict};
use proto::store::Store;
use serde_json::json;

use crate::store::DiskStore;
use crate::verify_ahead;

use super::dir::{open_reader, open_writer};
use super::lines::{self, Line, LineSource};

/// Most msgs whose verdicts wait for one group commit: bounds the memory of waiting
/// verdicts and how long an `ok` can lag behind its msg under a steady stream.
const GROUP_COMMIT_MSGS_MAX: usize = 4096;
/// Most bytes of msg text one group holds (its lines are kept until the group is added).
const GROUP_BYTES_MAX: usize = 64 * 1024 * 1024;

#[derive(Debug, Subcommand)]
pub(super) enum DbCommand {
    /// Add JSON-lines msgs to the store with the reference's rules; print `ok <ID>` or
    /// `rejected <ID|-> <reason>` per line, in input order. An `ok` line is printed only
    /// once its msg is durable (fsynced), so every printed `ok` survives a crash.
    Add {
        /// Peer directory (made by `ppppp init`).
        #[arg(long)]
        dir: PathBuf,
        /// The msgs, one per line; `-` or nothing for standard input (read as it arrives).
        file: Option<PathBuf>,
    },
    /// Print a tangle's msg IDs in topological order, one per line.
    Tangle {
        /// Peer directory.
        #[arg(long)]
        dir: PathBuf,
        /// The tangle (its root's msg ID).
        tangle: String,
    },
    /// Print the value of a set feed as JSON.
    Set {
        /// Peer directory.
        #[arg(long)]
        dir: PathBuf,
        /// The account ID.
        account: String,
        /// The set's subdomain.
        subdomain: String,
    },
    /// Print the value of a dict feed as JSON.
    Dict {
        /// Peer directory.
        #[arg(long)]
        dir: PathBuf,
        /// The account ID.
        account: String,
        /// The dict's subdomain.
        subdomain: String,
    },
    /// Print every msg in receive order, one JSON per line.
    Log {
        /// Peer directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Print one tangle's msgs in topological order, one JSON per line.
    Hist {
        /// Peer directory.
        #[arg(long)]
        dir: PathBuf,
        /// The tangle (its root's msg ID).
        tangle: String,
    },
    /// Print counts and sizes as JSON.
    Stats {
        /// Peer directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Rewrite the log without deleted and erased bytes (crash-safe).
    Compact {
        /// Peer directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Rebuild a damaged store from every record its log still holds; print what was kept
    /// and what was lost as JSON. The damaged log is kept beside the new one
    /// (`db/log.damaged`). A store that opens cleanly is left as it is.
    Salvage {
        /// Peer directory.
        #[arg(long)]
        dir: PathBuf,
    },
}

pub(super) fn run(command: DbCommand) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match command {
        DbCommand::Add { dir, file } => add(&dir, file.as_deref(), &mut out),
        DbCommand::Tangle { dir, tangle } => {
            let tangle = parse_id(&tangle, "tangle")?;
            let mut db = Db::new(open_reader(&dir)?);
            let view = db.tangle(&tangle)?;
            anyhow::ensure!(!view.is_empty(), "no msg of tangle {tangle} is stored");
            for id in view.topo_order() {
                writeln!(out, "{id}")?;
            }
            finish(&mut out)
        }
        DbCommand::Set {
            dir,
            account,
            subdomain,
        } => {
            let account = parse_id(&account, "account")?;
            let mut db = Db::new(open_reader(&dir)?);
            let items = proto::set::read(&mut db, &account, &subdomain)?;
            writeln!(out, "{}", serde_json::to_string(items.as_slice())?)?;
            finish(&mut out)
        }
        DbCommand::Dict {
            dir,
            account,
            subdomain,
        } => {
            let account: AccountId = parse_id(&account, "account")?;
            let mut db = Db::new(open_reader(&dir)?);
            let value = proto::dict::read(&mut db, &account, &subdomain)?;
            writeln!(out, "{}", serde_json::to_string(&value)?)?;
            finish(&mut out)
        }
        DbCommand::Log { dir } => {
            let store = open_reader(&dir)?;
            let mut written = Ok(());
            store.scan(&mut |record| {
                written = writeln!(out, "{}", record.msg.to_json());
                if written.is_err() {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })?;
            written?;
            finish(&mut out)
        }
        DbCommand::Hist { dir, tangle } => {
            let tangle = parse_id(&tangle, "tangle")?;
            let mut db = Db::new(open_reader(&dir)?);
            let order: Vec<_> = db.tangle(&tangle)?.topo_order().copied().collect();
            anyhow::ensure!(!order.is_empty(), "no msg of tangle {tangle} is stored");
            for id in order {
                if let Some(msg) = db.get(&id)? {
                    writeln!(out, "{}", msg.to_json())?;
                }
            }
            finish(&mut out)
        }
        DbCommand::Stats { dir } => {
            let store = open_reader(&dir)?;
            let stats = store.stats();
            let disk = store.disk_stats();
            let value = json!({
                "msgs": stats.msgs,
                "bytes": stats.bytes,
                "deletedBytes": stats.deleted_bytes,
                "logBytes": disk.log_bytes,
                "deadRecords": disk.dead_records,
                "ghostTangles": disk.ghost_tangles,
            });
            writeln!(out, "{value}")?;
            finish(&mut out)
        }
        DbCommand::Salvage { dir } => salvage(&dir, &mut out),
        DbCommand::Compact { dir } => {
            let mut store = open_writer(&dir)?;
            let done = store.compact()?;
            let value = json!({
                "msgs": done.msgs,
                "logBytesBefore": done.log_bytes_before,
                "logBytesAfter": done.log_bytes_after,
            });
            writeln!(out, "{value}")?;
            finish(&mut out)
        }
    }
}

/// `ppppp db salvage`: the report as one JSON line, and a sentence on standard error.
fn salvage(dir: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let (_store, report) = DiskStore::salvage(super::dir::store_dir(dir), &Default::default())?;
    let lost: Vec<serde_json::Value> = report
        .lost
        .iter()
        .map(|range| json!({"from": range.start, "to": range.end}))
        .collect();
    let dropped: Vec<serde_json::Value> = report
        .records_dropped
        .iter()
        .map(|(at, reason)| json!({"at": at, "reason": reason}))
        .collect();
    let value = json!({
        "msgs": report.msgs,
        "logBytes": report.log_bytes,
        "headerDamaged": report.header_damaged,
        "recordsFromIntactBatches": report.records_from_intact_batches,
        "recordsFromDamagedBatches": report.records_from_damaged_batches,
        "lostBytes": lost,
        "recordsDropped": dropped,
        "damagedLog": report.damaged_copy.as_ref().map(|path| path.display().to_string()),
    });
    writeln!(out, "{value}")?;
    match &report.damaged_copy {
        None => eprintln!("ppppp: the store opens cleanly; nothing to salvage"),
        Some(copy) => {
            let lost_bytes: u64 = report
                .lost
                .iter()
                .map(|range| range.end - range.start)
                .sum();
            eprintln!(
                "ppppp: salvaged {} msgs; lost {lost_bytes} unreadable bytes in {} range(s) and \
                 dropped {} record(s) that no longer fit; the damaged log is kept as {}",
                report.msgs,
                report.lost.len(),
                report.records_dropped.len(),
                copy.display()
            );
        }
    }
    finish(out)
}

fn finish(out: &mut impl Write) -> anyhow::Result<()> {
    out.flush().context("cannot write to standard output")
}

fn parse_id(text: &str, what: &str) -> anyhow::Result<TangleId> {
    TangleId::parse(text).with_context(|| format!("{text:?} is not a valid {what} ID"))
}

/// `ppppp db add`: reads msgs as they arrive and commits in groups. A group is committed
/// (one fsync) when the input buffer holds no whole line — the next read could block, and
/// waiting verdicts must not wait on a slow producer — or when it reaches
/// [`GROUP_COMMIT_MSGS_MAX`] msgs or [`GROUP_BYTES_MAX`] bytes. A group's msgs are decoded
/// and their signatures verified on every core, then added in order
/// (`crate::verify_ahead`). Verdicts are printed only after their group's commit.
fn add(dir: &Path, file: Option<&Path>, out: &mut impl Write) -> anyhow::Result<()> {
    let store = open_writer(dir)?;
    let mut db = Db::new(store);
    lines::with_input(file, |input| add_lines(&mut db, input, out))
}

fn add_lines(
    db: &mut Db<DiskStore>,
    input: &mut dyn LineSource,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    loop {
        let group = read_group(input)?;
        if group.is_empty() {
            return finish(out);
        }
        let mut waiting = add_group(db, group).context(
            "the store failed; msgs whose verdicts were not printed were not acknowledged",
        )?;
        commit(db, &mut waiting, out)?;
    }
}

/// One line of a group: its text, or the verdict that refuses it unread.
enum GroupLine {
    Text(String),
    Refused(Verdict),
}

/// The next group of lines: at least one (waiting for it if need be), then more while
/// whole lines are buffered, up to the group's bounds.
fn read_group(input: &mut dyn LineSource) -> anyhow::Result<Vec<GroupLine>> {
    let mut group = Vec::new();
    let mut bytes = 0;
    while group.len() < GROUP_COMMIT_MSGS_MAX
        && bytes < GROUP_BYTES_MAX
        && (group.is_empty() || !input.next_read_may_block())
    {
        let Some(line) = input.next_line()? else {
            break;
        };
        group.push(match line {
            Line::Text(text) => {
                bytes += text.len();
                GroupLine::Text(text.to_owned())
            }
            other => {
                GroupLine::Refused(Verdict::Rejected(None, other.refusal().unwrap_or_default()))
            }
        });
    }
    Ok(group)
}

/// Adds a group's msgs in input order; their verdicts, in the same order.
fn add_group(
    db: &mut Db<DiskStore>,
    group: Vec<GroupLine>,
) -> Result<Vec<Verdict>, <DiskStore as Store>::Error> {
    let texts: Vec<&str> = group
        .iter()
        .filter_map(|line| match line {
            GroupLine::Text(text) => Some(text.as_str()),
            GroupLine::Refused(_) => None,
        })
        .collect();
    let (decoded, ahead) = verify_ahead::decode_all(&texts);
    let mut decoded = decoded.into_iter();
    let in_order = group
        .iter()
        .map(|line| match line {
            GroupLine::Text(_) => decoded.next().expect("one decoded msg per text line"),
            GroupLine::Refused(verdict) => Decoded::Refused(verdict.clone()),
        })
        .collect();
    verify_ahead::add_decoded_all(db, in_order, ahead)
}

/// Makes every waiting msg durable, then prints the waiting verdicts.
fn commit(
    db: &mut Db<DiskStore>,
    waiting: &mut Vec<Verdict>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    db.flush()
        .context("cannot make msgs durable; their verdicts were not printed")?;
    for verdict in waiting.drain(..) {
        writeln!(out, "{verdict}")?;
    }
    finish(out)
}
