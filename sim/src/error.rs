//! What can go wrong in a simulation run, a sweep or a comparison, outside the scenario file
//! itself (whose errors, with file, line and field, are [`crate::scenario::ScenarioError`]).

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// An error of the simulator's library; the `ppppp-sim` program prints it and exits 2.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SimError {
    /// A file or directory could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// A file or directory could not be created or written.
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    /// A file is not the JSON document expected (`what`: "JSON", "a report.json", …).
    #[error("{} is not {what}: {source}", path.display())]
    NotJson {
        path: PathBuf,
        what: &'static str,
        source: serde_json::Error,
    },
    /// A `report.json` of another schema version than this build writes.
    #[error("{}: schema_version {found} (this build reads {expected})", path.display())]
    SchemaVersion {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    /// `compare` was given something that is neither a `report.json` nor a `sweep.json`.
    #[error("{}: kind `{kind}`; expected a report.json (kind run) or a sweep.json (kind sweep)", path.display())]
    UnknownKind { path: PathBuf, kind: String },
    /// `compare` was given a run and a sweep.
    #[error("cannot compare a run with a sweep ({} vs {})", base.display(), head.display())]
    RunVersusSweep { base: PathBuf, head: PathBuf },
    /// `compare` was given results of different scenarios, engines or plans.
    #[error(
        "not comparable: the {what} differs (base {base}, head {head}); compare runs of the same \
         scenario, seed, engine and substrate, or pass --allow-different"
    )]
    NotComparable {
        what: &'static str,
        base: String,
        head: String,
    },
    /// A sweep directory whose runs have not all written their report.
    #[error(
        "{}: {count} run(s) have no report.json (first: {first}); an array task failed or has \
         not run yet (see its log), or the directory holds another sweep",
        dir.display()
    )]
    MissingRuns {
        dir: PathBuf,
        count: usize,
        first: String,
    },
    /// A sweep over no reports.
    #[error("no reports to aggregate")]
    NothingToAggregate,
    /// A sweep over reports of different scenarios.
    #[error("reports of different scenarios: `{first}` and `{other}`")]
    MixedScenarios { first: String, other: String },
    /// Drawing a plot failed.
    #[error("cannot draw {}: {message}", path.display())]
    Plot { path: PathBuf, message: String },
    /// Writing the trace (or feeding the collector) failed.
    #[error("writing the trace: {0}")]
    Trace(#[source] io::Error),
    /// turmoil reported an error while stepping (a host's future failed).
    #[error("turmoil step at {at_ms} ms: {message}")]
    Turmoil { at_ms: u64, message: String },
    /// The engine cannot run what the plan asks for.
    #[error("not supported: {what}")]
    Unsupported { what: String },
    /// A peer's store could not be read back at the end of a run.
    #[error("reading the store of {peer}: {message}")]
    Store { peer: String, message: String },
}
