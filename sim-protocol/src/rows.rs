//! The rows of a protocol comparison (`ppppp-sim compare-protocols`): PPPPP with the
//! reference's re-initiation (pzp-sync 1.0.4) and with ours, and every baseline, all on the
//! one engine (`crate::replicated`) — one plan, one network model, one lifecycle, one
//! collector, so that every row is measured by the same metric definitions.

use sim::error::SimError;
use sim::metrics::Collector;
use sim::plan::Plan;
use sim::progress::Progress;
use sim::report::{Report, RunInfo};
use sim::scenario::Reinitiation;
use sim::trace::{TRACE_VERSION, TraceHeader, TraceSink};

use crate::Protocol;
use crate::replicated::{Baseline, RunStats};

/// One protocol of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Row {
    /// PPPPP tangle sync as pzp-sync 1.0.4 re-initiates (`reinitiation = "reference"`).
    PppppReference,
    /// PPPPP tangle sync with our targeted re-initiation (the default).
    Ppppp,
    /// A baseline.
    Baseline(Baseline),
}

impl Row {
    /// Every row, in report order.
    #[must_use]
    pub fn all() -> Vec<Row> {
        let mut rows = vec![Row::PppppReference, Row::Ppppp];
        rows.extend(Baseline::ALL.map(Row::Baseline));
        rows
    }

    /// Its name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Row::PppppReference => "ppppp-reference",
            Row::Ppppp => "ppppp",
            Row::Baseline(baseline) => baseline.name(),
        }
    }

    /// The row of this name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Row> {
        Row::all().into_iter().find(|row| row.name() == name)
    }

    /// What the row is given of the workload, and how (for the report and
    /// `docs/protocols.md`).
    #[must_use]
    pub const fn mapping(self) -> &'static str {
        match self {
            Row::PppppReference | Row::Ppppp => {
                "the workload as written: an account, a moot per feed, posts in feed tangles, \
                 profile updates in a dict tangle and follows in a set tangle; goals as the \
                 scenario sets them (newest-N, dict and set GC)"
            }
            Row::Baseline(Baseline::SsbClassic | Baseline::SsbEbt) => {
                "one feed per account holding its posts, profile updates (about msgs) and \
                 follows (contact msgs) in publish order; a peer replicates its own feed and \
                 every account it has a goal on, whole: SSB has no newest-N, dict or set, so \
                 superseded updates and old posts are kept and sent"
            }
            Row::Baseline(Baseline::TinySsb | Baseline::TinySsbLora) => {
                "one feed per account (tinySSB has no accounts) with every write in order, \
                 entries over 48 B continued in sidechains; every node replicates every feed \
                 of its GOset (no follow graph), which holds at most 100 feeds"
            }
            Row::Baseline(Baseline::P2pFlood) => {
                "every write flooded to every peer (the mesh has no follow graph and no \
                 catch-up: a peer down or cut off when a write floods never gets it)"
            }
            Row::Baseline(Baseline::P2pSyncTable) => {
                "every write sets a key of the leased dict: a profile update its first field's \
                 key, `profile:F:f`, any other write a key of its own; new connections get a \
                 full dump of the table"
            }
            Row::Baseline(Baseline::Negentropy) => {
                "one feed per account; each connection reconciles, per feed the two sides \
                 share, the set of (seq, id) records with negentropy v1, then live-pushes new \
                 items to subscribers; no supersedes: every write is kept"
            }
        }
    }

    /// Runs `plan` (any re-initiation it sets is replaced by the row's) and reports it as
    /// `run` would, with what the engine counted besides the trace.
    ///
    /// # Errors
    /// Trace errors.
    pub fn run(
        self,
        plan: &Plan,
        scenario_path: &str,
        progress: &Progress,
    ) -> Result<(Report, RunStats), SimError> {
        let mut plan = plan.clone();
        plan.reinitiation = match self {
            Row::PppppReference => Reinitiation::Reference,
            _ => Reinitiation::Targeted,
        };
        let header = TraceHeader {
            trace_version: TRACE_VERSION,
            scenario: plan.scenario.clone(),
            seed: plan.seed,
            engine: self.name().to_owned(),
            substrate: None,
        };
        let mut collector = Collector::new(&plan, TraceSink::hash_only(&header));
        let stats = match self {
            Row::PppppReference | Row::Ppppp => {
                Protocol::new().run_counting(&plan, &mut collector, progress)?
            }
            Row::Baseline(baseline) => baseline.run(&plan, &mut collector, progress)?,
        };
        let outcome = collector
            .finish(plan.duration_ms)
            .map_err(SimError::Trace)?;
        let info = RunInfo {
            scenario_path: scenario_path.to_owned(),
            engine: self.name(),
            substrate: None,
        };
        Ok((Report::new(&plan, &outcome, &info), stats))
    }
}
