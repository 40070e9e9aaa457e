//! When this peer stored each msg: the `timestamp` of `ppppp feed`, `log` and `hist` (what
//! sbot calls the receive timestamp, and pzp-db keeps as a record's `received`). Msg V4 has
//! no clock of its own, and the store format has no room for one, so the times live beside
//! the store in `DIR/received`: one line per msg, `<msg ID> <ms since the Unix epoch>`,
//! appended by whoever stores the msg — a running peer for everything it publishes or syncs,
//! the command line for what it publishes or follows while no peer runs.
//!
//! A receive time is a local note, not part of the store's durability promise: lines are
//! written (not fsynced) after the msg is durable, so an OS crash may lose the last few and
//! those msgs read as `timestamp: null`; a process crash loses nothing that was written.
//! Unreadable lines (a torn last line, a flipped bit) are skipped; the first time noted for a
//! msg wins. `ppppp serve` rewrites the file without msgs the store no longer holds when
//! those are most of it.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use proto::ids::MsgId;

/// The file in a peer directory.
const RECEIVED_FILE: &str = "received";
/// Lines for msgs no longer stored that are never worth a rewrite.
const COMPACT_SLACK_LINES: u64 = 1024;

/// The receive times of a peer directory.
#[derive(Debug)]
pub(crate) struct ReceivedTimes {
    path: PathBuf,
    times: BTreeMap<MsgId, u64>,
    /// Open for appending once something is noted.
    file: Option<std::fs::File>,
    /// The file ends inside a line (a torn write): start the next append on a new line.
    torn_end: bool,
}

impl ReceivedTimes {
    /// Reads `DIR/received` (none yet: no times).
    ///
    /// # Errors
    /// The file exists but cannot be read.
    pub(crate) fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(RECEIVED_FILE);
        let mut times = BTreeMap::new();
        let mut torn_end = false;
        match std::fs::File::open(&path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", path.display()));
            }
            Ok(file) => {
                let mut reader = std::io::BufReader::new(file);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    let read = reader
                        .read_until(b'\n', &mut line)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    if read == 0 {
                        break;
                    }
                    torn_end = !line.ends_with(b"\n");
                    if let Some((id, ms)) = parse_line(line.strip_suffix(b"\n").unwrap_or(&line)) {
                        times.entry(id).or_insert(ms);
                    }
                }
            }
        }
        Ok(Self {
            path,
            times,
            file: None,
            torn_end,
        })
    }

    /// When `id` was stored, if noted.
    pub(crate) fn get(&self, id: &MsgId) -> Option<u64> {
        self.times.get(id).copied()
    }

    /// Notes that `ids` were stored at `now_ms` (those already noted keep their time).
    ///
    /// # Errors
    /// The file cannot be written.
    pub(crate) fn note(&mut self, ids: &[MsgId], now_ms: u64) -> anyhow::Result<()> {
        let mut lines = String::new();
        if self.torn_end {
            lines.push('\n');
        }
        for id in ids {
            if let std::collections::btree_map::Entry::Vacant(slot) = self.times.entry(*id) {
                slot.insert(now_ms);
                lines.push_str(&format!("{id} {now_ms}\n"));
            }
        }
        if lines.trim().is_empty() {
            return Ok(());
        }
        let file = match &mut self.file {
            Some(file) => file,
            slot @ None => slot.insert(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
                    .with_context(|| format!("cannot open {}", self.path.display()))?,
            ),
        };
        file.write_all(lines.as_bytes())
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.torn_end = false;
        Ok(())
    }

    /// Rewrites the file with only the msgs `keep` says are still stored, when it notes
    /// more than twice as many msgs as the store holds (`store_msgs`), plus some slack: GC
    /// deleted the rest. Atomic: a crash leaves either file.
    ///
    /// # Errors
    /// The file cannot be written.
    pub(crate) fn compact_if_mostly_gone(
        &mut self,
        store_msgs: u64,
        keep: impl Fn(&MsgId) -> bool,
    ) -> anyhow::Result<()> {
        let noted = u64::try_from(self.times.len()).unwrap_or(u64::MAX);
        if noted
            <= store_msgs
                .saturating_mul(2)
                .saturating_add(COMPACT_SLACK_LINES)
        {
            return Ok(());
        }
        let kept: BTreeMap<MsgId, u64> = self
            .times
            .iter()
            .filter(|(id, _)| keep(id))
            .map(|(id, ms)| (*id, *ms))
            .collect();
        let mut text = String::with_capacity(kept.len() * 64);
        for (id, ms) in &kept {
            text.push_str(&format!("{id} {ms}\n"));
        }
        let temporary = self.path.with_extension("new");
        let written = (|| {
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temporary, &self.path)
        })();
        written.with_context(|| format!("cannot rewrite {}", self.path.display()))?;
        self.times = kept;
        self.file = None;
        self.torn_end = false;
        Ok(())
    }
}

fn parse_line(line: &[u8]) -> Option<(MsgId, u64)> {
    let text = std::str::from_utf8(line).ok()?;
    let (id, ms) = text.split_once(' ')?;
    Some((MsgId::parse(id).ok()?, ms.parse().ok()?))
}

/// Milliseconds since the Unix epoch: the program edge reads the wall clock here.
#[expect(
    clippy::disallowed_methods,
    reason = "receive times are wall-clock facts noted at the program edge"
)]
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_survive_a_reload_first_wins_and_bad_lines_are_skipped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (a, b, c) = (
            MsgId::from_bytes(&[1; 32]),
            MsgId::from_bytes(&[2; 32]),
            MsgId::from_bytes(&[3; 32]),
        );
        let mut times = ReceivedTimes::load(dir.path()).expect("empty");
        times.note(&[a, b], 1000).expect("noted");
        times.note(&[b, c], 2000).expect("noted");
        assert_eq!(times.get(&b), Some(1000));
        // A flipped bit and a torn last line.
        let path = dir.path().join(RECEIVED_FILE);
        let mut text = std::fs::read(&path).expect("read");
        text.extend_from_slice(b"garbage \xff line\n");
        text.extend_from_slice(format!("{a} 9").as_bytes());
        std::fs::write(&path, &text).expect("write");
        let mut reloaded = ReceivedTimes::load(dir.path()).expect("reload");
        assert_eq!(
            [a, b, c].map(|id| reloaded.get(&id)),
            [Some(1000), Some(1000), Some(2000)]
        );
        // The next line after a torn one is whole.
        let d = MsgId::from_bytes(&[4; 32]);
        reloaded.note(&[d], 3000).expect("noted");
        assert_eq!(
            ReceivedTimes::load(dir.path()).expect("reload").get(&d),
            Some(3000)
        );
        reloaded
            .compact_if_mostly_gone(1000, |id| *id == c)
            .expect("not needed");
        assert_eq!(reloaded.get(&a), Some(1000));
        reloaded
            .compact_if_mostly_gone(0, |id| *id == c)
            .expect("not needed yet: within the slack");
        assert_eq!(reloaded.get(&a), Some(1000));
        let many: Vec<MsgId> = (0..=COMPACT_SLACK_LINES)
            .map(|n| {
                let mut bytes = [9u8; 32];
                bytes[..8].copy_from_slice(&n.to_le_bytes());
                MsgId::from_bytes(&bytes)
            })
            .collect();
        reloaded.note(&many, 5).expect("noted");
        reloaded
            .compact_if_mostly_gone(1, |id| *id == c)
            .expect("compacted");
        let compacted = ReceivedTimes::load(dir.path()).expect("reload");
        assert_eq!(
            [a, b, c, d].map(|id| compacted.get(&id)),
            [None, None, Some(2000), None]
        );
    }
}
