//! Writing results to stdout.

use anyhow::Context;

/// Writes `text` to stdout. A closed pipe (`ppppp-sim plan x.toml | head`) is not an error:
/// the reader has what it wanted, so the program stops quietly.
pub fn print_out(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(error) => Err(error).context("cannot write to stdout"),
    }
}
