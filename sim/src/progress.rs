//! A progress bar on stderr in simulated time, with indicatif's ETA. Hidden when stderr is
//! not a terminal (CI logs stay clean) and for sweeps' inner runs.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use crate::units::format_ms;

/// Progress in simulated milliseconds.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar for a run of `duration_ms`, shown only if stderr is a terminal.
    #[must_use]
    pub fn new(label: &str, duration_ms: u64) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress::hidden();
        }
        let bar = ProgressBar::new(duration_ms);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:40}] {msg} simulated, ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_owned());
        Progress { bar }
    }

    /// A bar that draws nothing.
    #[must_use]
    pub fn hidden() -> Progress {
        Progress {
            bar: ProgressBar::hidden(),
        }
    }

    /// Simulated time reached.
    pub fn set(&self, t_ms: u64) {
        if self.bar.is_hidden() {
            return;
        }
        self.bar.set_position(t_ms);
        let total = self.bar.length().unwrap_or(0);
        self.bar.set_message(format!(
            "{} / {}",
            format_ms(t_ms - t_ms % 1_000),
            format_ms(total)
        ));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
