//! Progress on stderr while runs go: simulated time done and its total, simulated seconds per
//! wall-clock second, runs done of the total, and an ETA once it means something (after
//! [`ETA_AFTER`] of wall time and [`ETA_FRACTION`] of the work). On a terminal a bar redraws
//! in place; otherwise (CI logs, `nohup`, Slurm) a line is printed every [`LINE_EVERY`].
//! `--quiet` and sweeps' hidden children print nothing of their own.
//!
//! Wall time is read only through the [`WallClock`] the program edge registers with
//! [`use_wall_clock`] (none registered: nothing is shown), and only to pace and label these
//! lines: it never reaches a simulation.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::units::format_ms;

/// The wall clock, as the program edge reads it.
pub type WallClock = fn() -> Instant;

static CLOCK: std::sync::OnceLock<WallClock> = std::sync::OnceLock::new();

/// Lets progress read the wall clock (the program edge calls this once); until then every
/// [`Progress`] is hidden.
pub fn use_wall_clock(clock: WallClock) {
    let _ = CLOCK.set(clock);
}

/// Without a terminal, one progress line per this much wall time.
pub const LINE_EVERY: Duration = Duration::from_secs(5);
/// No ETA before this much wall time has passed…
pub const ETA_AFTER: Duration = Duration::from_secs(10);
/// …nor before this fraction of the simulated time is done.
pub const ETA_FRACTION: f64 = 0.05;

struct Shared {
    label: String,
    clock: WallClock,
    started: Instant,
    total_sim_ms: u64,
    runs_total: u64,
    runs_done: AtomicU64,
    sim_done_ms: AtomicU64,
    /// Wall milliseconds since `started` of the last line printed.
    last_line_ms: AtomicU64,
    /// The terminal bar, when stderr is one.
    bar: Option<ProgressBar>,
}

/// A handle on shared progress: one per run (a sweep hands each run a child).
pub struct Progress {
    shared: Option<Arc<Shared>>,
    /// Simulated time this handle's run has reached.
    reached_ms: AtomicU64,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("shown", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

impl Progress {
    /// Progress of `runs` runs of `sim_ms_total` simulated milliseconds in all; hidden when
    /// no wall clock was registered.
    #[must_use]
    pub fn new(label: &str, runs: u64, sim_ms_total: u64) -> Progress {
        let Some(clock) = CLOCK.get().copied() else {
            return Progress::hidden();
        };
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(sim_ms_total.max(1));
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(label.to_owned());
            bar
        });
        Progress {
            shared: Some(Arc::new(Shared {
                label: label.to_owned(),
                clock,
                started: clock(),
                total_sim_ms: sim_ms_total.max(1),
                runs_total: runs,
                runs_done: AtomicU64::new(0),
                sim_done_ms: AtomicU64::new(0),
                last_line_ms: AtomicU64::new(0),
                bar,
            })),
            reached_ms: AtomicU64::new(0),
        }
    }

    /// Progress that shows nothing.
    #[must_use]
    pub fn hidden() -> Progress {
        Progress {
            shared: None,
            reached_ms: AtomicU64::new(0),
        }
    }

    /// A handle for one more run of the same progress.
    #[must_use]
    pub fn child(&self) -> Progress {
        Progress {
            shared: self.shared.clone(),
            reached_ms: AtomicU64::new(0),
        }
    }

    /// This handle's run reached simulated time `t_ms`.
    pub fn set(&self, t_ms: u64) {
        let Some(shared) = &self.shared else {
            return;
        };
        let before = self.reached_ms.fetch_max(t_ms, Ordering::Relaxed);
        shared
            .sim_done_ms
            .fetch_add(t_ms.saturating_sub(before), Ordering::Relaxed);
        shared.show(false);
    }

    /// This handle's run of `duration_ms` is done.
    pub fn run_done(&self, duration_ms: u64) {
        self.set(duration_ms);
        if let Some(shared) = &self.shared {
            shared.runs_done.fetch_add(1, Ordering::Relaxed);
            shared.show(false);
        }
    }

    /// Clears the bar, or prints the last line.
    pub fn finish(&self) {
        if let Some(shared) = &self.shared {
            match &shared.bar {
                Some(bar) => bar.finish_and_clear(),
                None => shared.show(true),
            }
        }
    }
}

impl Shared {
    fn show(&self, force: bool) {
        let elapsed = (self.clock)().saturating_duration_since(self.started);
        let message = self.message(elapsed);
        if let Some(bar) = &self.bar {
            bar.set_position(self.sim_done_ms.load(Ordering::Relaxed));
            bar.set_message(message);
            return;
        }
        let now_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let last = self.last_line_ms.load(Ordering::Relaxed);
        let due = now_ms >= last + u64::try_from(LINE_EVERY.as_millis()).unwrap_or(u64::MAX);
        if (force || due)
            && self
                .last_line_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            eprintln!("{}: {message}", self.label);
        }
    }

    fn message(&self, elapsed: Duration) -> String {
        let done = self.sim_done_ms.load(Ordering::Relaxed);
        #[expect(clippy::cast_precision_loss, reason = "display only")]
        let fraction = done as f64 / self.total_sim_ms as f64;
        let wall_s = elapsed.as_secs_f64();
        #[expect(clippy::cast_precision_loss, reason = "display only")]
        let rate = if wall_s > 0.0 {
            done as f64 / 1_000.0 / wall_s
        } else {
            0.0
        };
        let mut message = format!(
            "{} / {} simulated, {rate:.1} sim-s/s, runs {} / {}",
            format_ms(done - done % 1_000),
            format_ms(self.total_sim_ms),
            self.runs_done.load(Ordering::Relaxed),
            self.runs_total
        );
        if elapsed >= ETA_AFTER && (ETA_FRACTION..1.0).contains(&fraction) {
            let remaining_s = wall_s * (1.0 - fraction) / fraction;
            message.push_str(&format!(", ETA {}", format_eta(remaining_s)));
        }
        message
    }
}

fn format_eta(seconds: f64) -> String {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "display"
    )]
    let s = seconds.round().max(0.0) as u64;
    if s >= 3_600 {
        format!("{}h{:02}m", s / 3_600, s % 3_600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}
