//! Reading JSON-lines input one line at a time, as it arrives: `ppppp db add` and
//! `ppppp msg check` both give one verdict per line without holding the whole input.

use std::io::{BufRead, BufReader, Read};

use anyhow::Context;

/// Input read buffer. Callers act whenever the buffer holds no whole line (the next read
/// might block), so larger buffers make larger batches from files and fast pipes.
pub(super) const INPUT_BUFFER_BYTES: usize = 1024 * 1024;

/// Longest input line read whole. A msg's data and metadata are each at most 65,535 bytes
/// of canonical JSON; escapes and whitespace cannot make a valid msg line this long.
pub(super) const LINE_BYTES_MAX: u64 = 1024 * 1024;

/// One line of input.
pub(super) enum Line<'a> {
    /// The line's text, without its `\n` or `\r\n`.
    Text(&'a str),
    /// The line is not UTF-8.
    NotUtf8,
    /// The line is longer than [`LINE_BYTES_MAX`]; it was skipped unread.
    TooLong,
}

impl Line<'_> {
    /// Why a line that is not text cannot be a msg (the verdict's reason).
    pub(super) fn refusal(&self) -> Option<String> {
        match self {
            Self::Text(_) => None,
            Self::NotUtf8 => Some("invalid msg: not UTF-8".to_owned()),
            Self::TooLong => Some(format!(
                "invalid msg: line longer than {LINE_BYTES_MAX} bytes"
            )),
        }
    }
}

/// Lines of `R`, each at most [`LINE_BYTES_MAX`] bytes in memory.
pub(super) struct Lines<R: Read> {
    input: BufReader<R>,
    line: Vec<u8>,
}

impl<R: Read> Lines<R> {
    pub(super) fn new(input: R) -> Self {
        Self {
            input: BufReader::with_capacity(INPUT_BUFFER_BYTES, input),
            line: Vec::new(),
        }
    }

    /// Whether the buffer holds no whole line, so that the next read might block: the
    /// moment to commit and print what waits.
    pub(super) fn next_read_may_block(&self) -> bool {
        !self.input.buffer().contains(&b'\n')
    }

    /// The next line; `None` at the end of the input.
    ///
    /// # Errors
    /// Reading failed.
    pub(super) fn next_line(&mut self) -> anyhow::Result<Option<Line<'_>>> {
        self.line.clear();
        let read = (&mut self.input)
            .take(LINE_BYTES_MAX)
            .read_until(b'\n', &mut self.line)
            .context("cannot read the input")?;
        if read == 0 {
            return Ok(None);
        }
        if !self.line.ends_with(b"\n")
            && u64::try_from(self.line.len()).is_ok_and(|len| len >= LINE_BYTES_MAX)
        {
            skip_rest_of_line(&mut self.input)?;
            return Ok(Some(Line::TooLong));
        }
        Ok(Some(match std::str::from_utf8(trim_line_end(&self.line)) {
            Ok(text) => Line::Text(text),
            Err(_) => Line::NotUtf8,
        }))
    }
}

/// Reads and drops input up to and including the next newline.
fn skip_rest_of_line(input: &mut impl BufRead) -> anyhow::Result<()> {
    loop {
        let chunk = input.fill_buf().context("cannot read the input")?;
        if chunk.is_empty() {
            return Ok(());
        }
        let (used, found) = match chunk.iter().position(|byte| *byte == b'\n') {
            Some(end) => (end + 1, true),
            None => (chunk.len(), false),
        };
        input.consume(used);
        if found {
            return Ok(());
        }
    }
}

/// The line without its `\n` or `\r\n`.
fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The lines of `file`, or of standard input when `None` or `-`, to `visit`.
///
/// # Errors
/// The file cannot be opened, or `visit` failed.
pub(super) fn with_input<T>(
    file: Option<&std::path::Path>,
    visit: impl FnOnce(&mut dyn LineSource) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    match file {
        Some(path) if path != std::path::Path::new("-") => {
            let input = std::fs::File::open(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            visit(&mut Lines::new(input))
        }
        _ => visit(&mut Lines::new(std::io::stdin().lock())),
    }
}

/// [`Lines`] of any reader, as one type.
pub(super) trait LineSource {
    /// See [`Lines::next_read_may_block`].
    fn next_read_may_block(&self) -> bool;
    /// See [`Lines::next_line`].
    ///
    /// # Errors
    /// Reading failed.
    fn next_line(&mut self) -> anyhow::Result<Option<Line<'_>>>;
}

impl<R: Read> LineSource for Lines<R> {
    fn next_read_may_block(&self) -> bool {
        Lines::next_read_may_block(self)
    }

    fn next_line(&mut self) -> anyhow::Result<Option<Line<'_>>> {
        Lines::next_line(self)
    }
}
