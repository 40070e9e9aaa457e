//! `ppppp-sim check-baseline`: reruns scenarios and compares their metrics with the committed
//! baselines (`sim::baseline`); `--bless` rewrites the files and prints what changed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use sim::baseline::{BASELINE_VERSION, Baseline, Change, Verdict};
use sim::pipeline::Engine;
use sim::scenario::{EngineKind, Scenario};

/// How the program loads a scenario and picks an engine (`cli.rs`'s, handed in so that this
/// file does not import the one that calls it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Runner {
    /// Loads a scenario file (with the program's memory check).
    pub load: fn(&Path) -> anyhow::Result<Scenario>,
    /// The engine of a kind, for a scenario; the flag is `--verify-all`.
    pub engine: fn(Option<EngineKind>, &Scenario, bool) -> anyhow::Result<&'static dyn Engine>,
}

/// The command's arguments.
#[derive(Debug)]
pub(crate) struct Args {
    /// Scenario files; empty: every baseline in `dir`.
    pub scenarios: Vec<PathBuf>,
    /// The engine (with scenarios), or the only engine checked (without).
    pub engine: Option<EngineKind>,
    /// The baselines' directory.
    pub dir: PathBuf,
    /// A new seed set (only with `bless`).
    pub seeds: Option<Vec<u64>>,
    /// Rewrite the files instead of failing.
    pub bless: bool,
    /// Loading and engines.
    pub runner: Runner,
}

/// One scenario on one engine, and its file.
struct Target {
    scenario: PathBuf,
    engine: EngineKind,
    file: PathBuf,
}

/// Checks (or blesses) every target; exit 1 when a metric moved past its tolerance.
pub(crate) fn check_baseline(args: &Args) -> anyhow::Result<ExitCode> {
    let targets = targets(args)?;
    anyhow::ensure!(
        !targets.is_empty(),
        "no baselines in {} (create one with `ppppp-sim check-baseline SCENARIO.toml --bless`)",
        args.dir.display()
    );
    let mut moved = 0;
    for target in &targets {
        moved += check_one(target, args)?;
    }
    if moved == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "check-baseline FAILED: {moved} metric(s) moved past tolerance. If the change is \
         intended, rerun with --bless and say what changed in the commit message \
         (docs/regression-ci.md)."
    );
    Ok(ExitCode::from(1))
}

/// The scenarios named (on `--engine`, else their own), or every baseline file in the
/// directory (filtered by `--engine`), in name order.
fn targets(args: &Args) -> anyhow::Result<Vec<Target>> {
    if !args.scenarios.is_empty() {
        return args
            .scenarios
            .iter()
            .map(|path| {
                let scenario = Scenario::load(path)?;
                let engine = args.engine.unwrap_or(scenario.engine);
                let name = sim::baseline::file_name(&scenario.name, engine.name());
                Ok(Target {
                    scenario: path.clone(),
                    engine,
                    file: args.dir.join(name),
                })
            })
            .collect();
    }
    let entries = std::fs::read_dir(&args.dir)
        .with_context(|| format!("cannot read {}", args.dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read {}", args.dir.display()))?;
    files.retain(|path| path.extension().is_some_and(|ext| ext == "json"));
    files.sort();
    let mut targets = Vec::new();
    for file in files {
        let baseline = Baseline::read(&file)?;
        let engine = [EngineKind::Fullstack, EngineKind::Protocol]
            .into_iter()
            .find(|kind| kind.name() == baseline.engine)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: engine `{}`; the engines are fullstack and protocol",
                    file.display(),
                    baseline.engine
                )
            })?;
        if args.engine.is_none_or(|chosen| chosen == engine) {
            targets.push(Target {
                scenario: PathBuf::from(&baseline.scenario_path),
                engine,
                file,
            });
        }
    }
    Ok(targets)
}

/// Runs one target over its seed set and compares (or blesses); returns how many metrics
/// moved past tolerance (always 0 when blessing).
fn check_one(target: &Target, args: &Args) -> anyhow::Result<usize> {
    let scenario = (args.runner.load)(&target.scenario)
        .with_context(|| format!("the scenario of {}", target.file.display()))?;
    let engine = (args.runner.engine)(Some(target.engine), &scenario, false)?;
    let existing = if target.file.exists() {
        Some(Baseline::read(&target.file)?)
    } else {
        anyhow::ensure!(
            args.bless,
            "{}: no baseline for {} on the {} engine; create it with `ppppp-sim check-baseline \
             {} --engine {1} --bless`",
            target.file.display(),
            scenario.name,
            target.engine.name(),
            target.scenario.display()
        );
        None
    };
    let seeds = args.seeds.clone().unwrap_or_else(|| {
        existing
            .as_ref()
            .map_or_else(|| vec![scenario.seed], Baseline::seeds)
    });
    let path_text = recorded_path(&target.scenario);
    let runs = sim::baseline::measure(&scenario, &path_text, &seeds, engine)?;
    let header = format!(
        "{} on {} (seeds {seeds:?}, {})",
        scenario.name,
        target.engine.name(),
        target.file.display()
    );
    let Some(existing) = existing else {
        let fresh = Baseline {
            baseline_version: BASELINE_VERSION,
            scenario: scenario.name.clone(),
            scenario_path: path_text,
            engine: target.engine.name().to_owned(),
            tolerances: std::collections::BTreeMap::new(),
            runs,
        };
        fresh.write(&target.file)?;
        println!("{header}: created");
        return Ok(0);
    };
    let changes = sim::baseline::diff(&existing, &runs);
    if args.bless {
        bless(&existing, runs, &changes, &target.file, &header)?;
        return Ok(0);
    }
    Ok(report(&changes, &header))
}

/// Prints the outcome of a check; returns the number of metrics moved past tolerance.
fn report(changes: &[Change], header: &str) -> usize {
    let moved = changes
        .iter()
        .filter(|c| c.verdict == Verdict::Moved)
        .count();
    if changes.is_empty() {
        println!("{header}: every metric matches");
    } else {
        println!(
            "{header}: {moved} metric(s) moved past tolerance, {} within",
            changes.len() - moved
        );
        print!("{}", sim::baseline::render(changes));
    }
    moved
}

/// Rewrites the file with the new runs (tolerances kept) and prints what changed.
fn bless(
    existing: &Baseline,
    runs: Vec<sim::baseline::SeedRun>,
    changes: &[Change],
    file: &Path,
    header: &str,
) -> anyhow::Result<()> {
    let blessed = existing.blessed(runs);
    if blessed == *existing {
        println!("{header}: unchanged");
        return Ok(());
    }
    blessed.write(file)?;
    println!("{header}: blessed, {} metric(s) changed", changes.len());
    print!("{}", sim::baseline::render(changes));
    Ok(())
}

/// The scenario path as the baseline records it: relative to the working directory (the
/// repository root, where the gate runs) when it lies below it.
fn recorded_path(path: &Path) -> String {
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf));
    relative
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}
