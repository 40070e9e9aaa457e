//! `ppppp-sim check-baseline`: reruns scenarios and compares their metrics with the committed
//! baselines (`sim::baseline`); `--bless` rewrites the files and prints what changed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use sim::baseline::{BASELINE_VERSION, Baseline, Change, Verdict};
use sim::pipeline::Engine;
use sim::scenario::{EngineKind, Scenario, Substrate};

use crate::engine_choice::EngineChoice;

/// How the program loads a scenario and picks an engine (`cli.rs`'s, handed in so that this
/// file does not import the one that calls it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Runner {
    /// Loads a scenario file (with the program's memory check).
    pub load: fn(&Path) -> anyhow::Result<Scenario>,
    /// The engine chosen, for a scenario.
    pub engine: fn(EngineChoice, &Scenario) -> anyhow::Result<&'static dyn Engine>,
}

/// The command's arguments.
#[derive(Debug)]
pub(crate) struct Args {
    /// Scenario files; empty: every baseline in `dir`.
    pub scenarios: Vec<PathBuf>,
    /// The engine (with scenarios), or the only engine checked (without).
    pub engine: Option<EngineKind>,
    /// The full-stack substrate (default: the baseline's, else the scenario's).
    pub substrate: Option<Substrate>,
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
    /// `--substrate`, else the baseline file's (the scenario's when neither names one).
    substrate: Option<Substrate>,
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
                    substrate: args.substrate,
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
        let recorded = baseline
            .substrate
            .as_deref()
            .map(substrate_named)
            .transpose()?;
        if args.engine.is_none_or(|chosen| chosen == engine) {
            targets.push(Target {
                scenario: PathBuf::from(&baseline.scenario_path),
                engine,
                substrate: args.substrate.or(recorded),
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
    let choice = EngineChoice {
        kind: Some(target.engine),
        substrate: target.substrate,
        verify_all: false,
    };
    let engine = (args.runner.engine)(choice, &scenario)?;
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
    let substrate = engine.substrate().map(str::to_owned);
    let header = format!(
        "{} on {} (seeds {seeds:?}, {})",
        scenario.name,
        sim::report::engine_label(target.engine.name(), substrate.as_deref()),
        target.file.display()
    );
    let Some(existing) = existing else {
        let fresh = Baseline {
            baseline_version: BASELINE_VERSION,
            scenario: scenario.name.clone(),
            scenario_path: path_text,
            engine: target.engine.name().to_owned(),
            substrate,
            tolerances: std::collections::BTreeMap::new(),
            runs,
        };
        fresh.write(&target.file)?;
        println!("{header}: created");
        return Ok(0);
    };
    let changes = sim::baseline::diff(&existing, &runs);
    if args.bless {
        bless(
            &existing,
            (runs, substrate),
            &changes,
            &target.file,
            &header,
        )?;
        return Ok(0);
    }
    anyhow::ensure!(
        existing.substrate == substrate,
        "{}: the baseline was measured on the {} substrate, this run is on {}; pass \
         --substrate to match it, or --bless to move the baseline",
        target.file.display(),
        existing.substrate.as_deref().unwrap_or("no"),
        substrate.as_deref().unwrap_or("none")
    );
    Ok(report(&changes, &header))
}

/// The substrate a baseline file names.
fn substrate_named(name: &str) -> anyhow::Result<Substrate> {
    [Substrate::Fabric, Substrate::Turmoil, Substrate::Streams]
        .into_iter()
        .find(|kind| kind.name() == name)
        .ok_or_else(|| {
            anyhow::anyhow!("substrate `{name}`; the substrates are fabric, turmoil and streams")
        })
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
    (runs, substrate): (Vec<sim::baseline::SeedRun>, Option<String>),
    changes: &[Change],
    file: &Path,
    header: &str,
) -> anyhow::Result<()> {
    let mut blessed = existing.blessed(runs);
    blessed.substrate = substrate;
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
