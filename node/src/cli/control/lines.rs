//! Splitting `serve`'s standard input into control lines, bounded and total: every line
//! gives one [`Line`] — its text, or why it cannot be a command (not UTF-8, too long) — so
//! a bad line is answered and the next one is read as usual.

/// Longest control line read whole (a command holds at most a msg, whose data and metadata
/// are each at most 65,535 bytes of JSON; escapes cannot make a valid one this long). The
/// rest of a longer line is skipped, not buffered.
pub(crate) const CONTROL_LINE_BYTES_MAX: usize = 1024 * 1024;

/// One input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Line {
    /// A line of text (without its `\n` or `\r\n`).
    Text(String),
    /// Not UTF-8: the first bad byte is at this offset.
    NotUtf8 { offset: usize },
    /// Longer than [`CONTROL_LINE_BYTES_MAX`].
    TooLong,
}

impl Line {
    /// The reply's error for a line that cannot be a command.
    pub(crate) fn problem(&self) -> Option<String> {
        match self {
            Self::Text(_) => None,
            Self::NotUtf8 { offset } => Some(format!(
                "the line is not UTF-8 (bad byte at offset {offset}); it was skipped"
            )),
            Self::TooLong => Some(format!(
                "the line is longer than {CONTROL_LINE_BYTES_MAX} bytes; it was skipped"
            )),
        }
    }
}

/// Cuts a byte stream into [`Line`]s; holds at most one partial line of up to
/// [`CONTROL_LINE_BYTES_MAX`] bytes.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    partial: Vec<u8>,
    /// Inside a line already reported too long: drop bytes up to its end.
    skipping: bool,
}

impl LineSplitter {
    /// Feeds bytes; appends the lines they complete to `out`.
    pub(crate) fn push(&mut self, mut bytes: &[u8], out: &mut Vec<Line>) {
        while !bytes.is_empty() {
            let end = bytes.iter().position(|byte| *byte == b'\n');
            let (piece, rest, complete) = match end {
                Some(end) => (
                    bytes.get(..end).unwrap_or_default(),
                    bytes.get(end + 1..).unwrap_or_default(),
                    true,
                ),
                None => (bytes, &[][..], false),
            };
            bytes = rest;
            if self.skipping {
                self.skipping = !complete;
                continue;
            }
            if self.partial.len() + piece.len() > CONTROL_LINE_BYTES_MAX {
                self.partial.clear();
                self.skipping = !complete;
                out.push(Line::TooLong);
                continue;
            }
            self.partial.extend_from_slice(piece);
            if complete {
                out.push(self.take());
            }
        }
    }

    /// The input ended: a last line without `\n`, if any.
    pub(crate) fn finish(&mut self, out: &mut Vec<Line>) {
        if !self.partial.is_empty() && !self.skipping {
            out.push(self.take());
        }
        self.skipping = false;
    }

    /// Bytes held for an unfinished line.
    pub(crate) fn buffered(&self) -> usize {
        self.partial.len()
    }

    fn take(&mut self) -> Line {
        let bytes = std::mem::take(&mut self.partial);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(&bytes).to_vec();
        match String::from_utf8(bytes) {
            Ok(text) => Line::Text(text),
            Err(error) => Line::NotUtf8 {
                offset: error.utf8_error().valid_up_to(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<Line> {
        let mut splitter = LineSplitter::default();
        let mut out = Vec::new();
        for chunk in chunks {
            splitter.push(chunk, &mut out);
        }
        splitter.finish(&mut out);
        out
    }

    #[test]
    fn a_bad_line_is_reported_and_the_next_one_read() {
        let lines = split(&[b"{\"cmd\":\"who", b"ami\"}\n\xff\xfe\n", b"ok\r\nlast"]);
        assert_eq!(
            lines,
            [
                Line::Text("{\"cmd\":\"whoami\"}".to_owned()),
                Line::NotUtf8 { offset: 0 },
                Line::Text("ok".to_owned()),
                Line::Text("last".to_owned()),
            ]
        );
    }

    #[test]
    fn a_long_line_is_skipped_without_being_buffered() {
        let mut splitter = LineSplitter::default();
        let mut out = Vec::new();
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..40 {
            splitter.push(&chunk, &mut out);
            assert!(splitter.buffered() <= CONTROL_LINE_BYTES_MAX);
        }
        splitter.push(b"tail\nnext\n", &mut out);
        assert_eq!(out, [Line::TooLong, Line::Text("next".to_owned())]);
    }
}
