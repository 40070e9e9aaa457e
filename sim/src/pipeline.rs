//! One run end to end: plan → engine → collector → report files ([`write_report`]). The
//! [`Engine`] is the seam both tiers plug into: `sim-fullstack` (real nodes on turmoil) and
//! `sim-protocol` (discrete events over the pure machines).

use crate::error::SimError;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use crate::metrics::Collector;
use crate::plan::Plan;
use crate::progress::Progress;
use crate::report::{Report, RunInfo, markdown};
use crate::trace::{TRACE_VERSION, TraceHeader, TraceSink};

/// Something that runs a plan and reports events, in simulated-time order, to the collector.
pub trait Engine: Sync {
    /// Its name in traces, reports and repro lines (`fullstack`, `protocol`).
    fn name(&self) -> &'static str;
    /// The simulated network under it, for engines that have one (`fabric`, `turmoil`):
    /// named in traces, reports and repro lines, so runs on different substrates are never
    /// compared silently.
    fn substrate(&self) -> Option<&'static str> {
        None
    }
    /// Runs `plan`, recording every event into `collector` and moving `progress` along in
    /// simulated time.
    ///
    /// # Errors
    /// Whatever stops the run.
    fn run(
        &self,
        plan: &Plan,
        collector: &mut Collector<'_>,
        progress: &Progress,
    ) -> Result<(), SimError>;
}

/// Options of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The scenario file as given (for the repro line).
    pub scenario_path: String,
    /// Where to write outputs; `None` writes nothing (tests, sweeps that only aggregate).
    pub out: Option<PathBuf>,
    /// Also write `trace.jsonl` into `out`.
    pub trace: bool,
    /// Show a progress bar (when stderr is a terminal).
    pub progress: bool,
}

/// Runs `plan` with `engine` and, if `options.out` is set, writes `report.json`,
/// `report.md`, the plots and optionally `trace.jsonl` there (after removing those a previous
/// run left). Shows its own progress when `options.progress`.
///
/// # Errors
/// Engine, trace or file errors.
pub fn run(plan: &Plan, engine: &dyn Engine, options: &RunOptions) -> Result<Report, SimError> {
    let progress = if options.progress {
        Progress::new(
            &format!("{} seed {}", plan.scenario, plan.seed),
            1,
            plan.duration_ms,
        )
    } else {
        Progress::hidden()
    };
    let report = run_reporting(plan, engine, options, &progress)?;
    progress.finish();
    Ok(report)
}

/// [`run`], moving `progress` along (a sweep's shared progress hands each run a child).
///
/// # Errors
/// Engine, trace or file errors.
pub fn run_reporting(
    plan: &Plan,
    engine: &dyn Engine,
    options: &RunOptions,
    progress: &Progress,
) -> Result<Report, SimError> {
    let header = TraceHeader {
        trace_version: TRACE_VERSION,
        scenario: plan.scenario.clone(),
        seed: plan.seed,
        engine: engine.name().to_owned(),
        substrate: engine.substrate().map(str::to_owned),
    };
    if let Some(dir) = &options.out {
        clear_run_files(dir)?;
    }
    let sink = match (&options.out, options.trace) {
        (Some(dir), true) => {
            std::fs::create_dir_all(dir).map_err(|source| SimError::Write {
                path: dir.clone(),
                source,
            })?;
            let path = dir.join("trace.jsonl");
            let written = |source| SimError::Write {
                path: path.clone(),
                source,
            };
            let file = File::create(&path).map_err(written)?;
            TraceSink::writing(&header, Box::new(BufWriter::new(file))).map_err(written)?
        }
        _ => TraceSink::hash_only(&header),
    };
    let mut collector = Collector::new(plan, sink);
    engine.run(plan, &mut collector, progress)?;
    progress.run_done(plan.duration_ms);
    let outcome = collector
        .finish(plan.duration_ms)
        .map_err(SimError::Trace)?;
    let report = Report::new(
        plan,
        &outcome,
        &RunInfo {
            scenario_path: options.scenario_path.clone(),
            engine: engine.name(),
            substrate: engine.substrate(),
        },
    );
    if let Some(dir) = &options.out {
        write_report(dir, &report)?;
    }
    Ok(report)
}

/// The files a run writes into its output directory.
pub const RUN_FILES: &[&str] = &["report.json", "report.md", "trace.jsonl"];

/// Removes the files a run writes ([`RUN_FILES`] and the plots) from `dir`, so a run into a
/// used directory leaves nothing of the previous one (a stale trace beside a new report).
/// Other files are left alone.
///
/// # Errors
/// A file that exists and cannot be removed.
pub fn clear_run_files(dir: &Path) -> Result<(), SimError> {
    let plots = crate::plot::PLOT_NAMES
        .iter()
        .flat_map(|name| [format!("{name}.svg"), format!("{name}.png")]);
    for name in RUN_FILES.iter().map(|n| (*n).to_owned()).chain(plots) {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(SimError::Write { path, source }),
        }
    }
    Ok(())
}

/// Writes `report.json`, `report.md` and the plots (SVG and PNG) into `dir`.
///
/// # Errors
/// File system or drawing errors.
pub fn write_report(dir: &Path, report: &Report) -> Result<(), SimError> {
    let written = |path: PathBuf| move |source| SimError::Write { path, source };
    std::fs::create_dir_all(dir).map_err(written(dir.to_owned()))?;
    let json = dir.join("report.json");
    std::fs::write(&json, report.to_json()).map_err(written(json.clone()))?;
    let md = dir.join("report.md");
    std::fs::write(&md, markdown(report)).map_err(written(md.clone()))?;
    crate::plot::render_all(report, dir)?;
    Ok(())
}
