//! The `ppppp-sim` command line.
//!
//! ```text
//! ppppp-sim run SCENARIO.toml [--seed N] [--out DIR] [--trace] [--engine fullstack|protocol]
//!                [--substrate fabric|turmoil] [--collector per-pair|aggregated] [--quiet]
//! ppppp-sim plan SCENARIO.toml [--seed N]
//! ppppp-sim sweep SCENARIO.toml --seeds A..B [--set PATH=V1,V2…]… [--jobs N] [--out DIR]
//!                 [--engine ENGINE] [--substrate SUBSTRATE] [--slurm DIR [--runs-per-task N]]
//!                 [--quiet]
//! ppppp-sim merge DIR
//! ppppp-sim compare BASE.json HEAD.json [--max-regression PCT] [--allow-different]
//! ppppp-sim render REPORT.json [--out DIR]
//! ppppp-sim compare-protocols SCENARIO.toml --protocols a,b,…|all [--seeds S] [--jobs N]
//!                             [--out DIR] [--quiet]
//! ppppp-sim check-baseline [SCENARIO.toml…] [--engine ENGINE] [--substrate SUBSTRATE] [--dir DIR]
//!                          [--bless [--seeds S]]
//! ```
//!
//! The engine is `--engine`, else the scenario's `engine`, else `fullstack`. The full-stack
//! engine's substrate is `--substrate`, else the scenario's `substrate`, else `fabric`. A build without
//! the `fullstack` feature has only the protocol tier (and no tokio, ractor or turmoil).
//!
//! Exit codes: 0 success; 1 a check failed (run, sweep), a regression passed the
//! threshold (compare) or a metric moved past its baseline's tolerance (check-baseline); 2 bad
//! input or an error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use sim::pipeline::{Engine, RunOptions};

use crate::engine_choice::EngineChoice;
use crate::stdout::print_out;
use sim::plan::Plan;
use sim::report::Report;
use sim::scenario::{CollectorMode, EngineKind, Scenario, Substrate};

/// Deterministic simulations of PPPPP peers: scenarios in, reports out.
#[derive(Debug, Parser)]
#[command(name = "ppppp-sim", version, about)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario once and write report.json, report.md and plots.
    Run {
        /// The scenario file.
        scenario: PathBuf,
        /// Seed (default: the scenario's `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// Output directory (default: reports/<scenario name>/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also write the event trace, trace.jsonl.
        #[arg(long)]
        trace: bool,
        /// The engine: `fullstack` (real nodes on a simulated network) or `protocol`
        /// (discrete events over the pure machines). Default: the scenario's `engine`, else
        /// `fullstack`.
        #[arg(long, value_parser = parse_engine)]
        engine: Option<EngineKind>,
        /// The full-stack engine's network: `fabric` (turmoil-net, TCP with retransmission),
        /// `streams` (reliable byte streams timed by the same links; less memory) or `turmoil`
        /// (turmoil 0.7). Default: the scenario's `substrate`, else `fabric`.
        #[arg(long, value_parser = parse_substrate)]
        substrate: Option<Substrate>,
        /// Protocol tier: every peer verifies every signature it receives, instead of each
        /// msg's signature being verified once per run (same results, slower).
        #[arg(long)]
        verify_all: bool,
        /// What the collector keeps: `per-pair` (every metric and check) or `aggregated`
        /// (memory not growing with peers × msgs; leaves out F(t), t50…t100, recovery,
        /// liveness, delivery and the double-store and tangle-order checks). Default: the
        /// scenario's `[report] collector`, else `per-pair`.
        #[arg(long, value_parser = parse_collector)]
        collector: Option<CollectorMode>,
        /// No progress and no table of key figures.
        #[arg(long)]
        quiet: bool,
    },
    /// Print the expanded plan (peers, edges, follows, schedules) as JSON.
    Plan {
        /// The scenario file.
        scenario: PathBuf,
        /// Seed (default: the scenario's `seed`).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Run a scenario's matrix of cells over many seeds and aggregate (median, IQR, mean and
    /// 95 % interval); writes sweep.json, sweep.md, runs.csv and plots.
    Sweep {
        /// The scenario file.
        scenario: PathBuf,
        /// Seeds: `A..B` (B excluded), `A..=B`, or `A,B,C`.
        #[arg(long)]
        seeds: String,
        /// A matrix axis: a scenario field and its values, e.g. `group.peer.count=10,20,30`
        /// (repeatable; adds to the file's `[matrix]`).
        #[arg(long = "set", value_name = "PATH=V1,V2")]
        sets: Vec<String>,
        /// Write a Slurm job array into DIR instead of running (then `merge DIR`).
        #[arg(long, value_name = "DIR")]
        slurm: Option<PathBuf>,
        /// With --slurm: runs per array task.
        #[arg(long, default_value_t = 1)]
        runs_per_task: usize,
        /// No progress and no table of key figures.
        #[arg(long)]
        quiet: bool,
        /// Parallel runs (each run is single-threaded). Default: available cores.
        #[arg(long)]
        jobs: Option<usize>,
        /// Output directory (default: reports/<scenario name>/sweep/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The engine (as for `run`).
        #[arg(long, value_parser = parse_engine)]
        engine: Option<EngineKind>,
        /// The substrate (as for `run`).
        #[arg(long, value_parser = parse_substrate)]
        substrate: Option<Substrate>,
        /// As for `run`.
        #[arg(long)]
        verify_all: bool,
    },
    /// Compare two report.json (or two sweep.json); non-zero exit past the threshold.
    Compare {
        /// Baseline.
        base: PathBuf,
        /// Candidate.
        head: PathBuf,
        /// Fail when a gated metric gets worse by more than this many percent.
        #[arg(long)]
        max_regression: Option<f64>,
        /// Compare even when the scenario name, engine, substrate or plans (seeds, values)
        /// differ.
        #[arg(long)]
        allow_different: bool,
    },
    /// Build sweep.json, sweep.md, runs.csv and plots from a sweep directory (a Slurm array's).
    Merge {
        /// The directory `sweep --slurm` wrote.
        dir: PathBuf,
        /// No table of key figures.
        #[arg(long)]
        quiet: bool,
    },
    /// Rerun scenarios and fail when a metric moved from its committed baseline
    /// (benches/baselines/<scenario>.<engine>.json; docs/regression-ci.md).
    CheckBaseline {
        /// Scenario files (default: every baseline in --dir, with the scenario it names).
        scenarios: Vec<PathBuf>,
        /// The engine (default: the scenario's); without scenarios, check only its baselines.
        #[arg(long, value_parser = parse_engine)]
        engine: Option<EngineKind>,
        /// The full-stack substrate (default: the baseline's, else the scenario's).
        #[arg(long, value_parser = parse_substrate)]
        substrate: Option<Substrate>,
        /// The baselines' directory.
        #[arg(long, default_value = sim::baseline::DEFAULT_DIR)]
        dir: PathBuf,
        /// Accept the new metrics: rewrite (or create) the files and print what changed.
        #[arg(long)]
        bless: bool,
        /// With --bless: the seed set (`A..B`, `A..=B`, `A,B,C`; default: the file's, else
        /// the scenario's seed).
        #[arg(long, requires = "bless")]
        seeds: Option<String>,
    },
    /// Run protocols side by side on the protocol tier (PPPPP's two rows and the baselines
    /// of issue 21), every protocol × seed on the same plans; writes protocols.md,
    /// protocols.json, protocols.csv and overlaid plots (docs/protocols.md).
    CompareProtocols {
        /// The scenario file.
        scenario: PathBuf,
        /// Comma-separated: ppppp-reference, ppppp, ssb-classic, ssb-ebt, tinyssb,
        /// tinyssb-lora, p2p-flood, p2p-sync-table, negentropy; or `all`.
        #[arg(long)]
        protocols: String,
        /// Seeds: `A..B`, `A..=B` or `A,B,C` (default: the scenario's seed).
        #[arg(long)]
        seeds: Option<String>,
        /// Parallel runs (each run is single-threaded). Default: available cores.
        #[arg(long)]
        jobs: Option<usize>,
        /// Output directory (default: reports/<scenario name>/protocols/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// No progress and no table.
        #[arg(long)]
        quiet: bool,
    },
    /// Re-render report.md and the plots from a report.json.
    Render {
        /// The report.json.
        report: PathBuf,
        /// Output directory (default: the report's directory).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Parses an engine name.
fn parse_engine(text: &str) -> Result<EngineKind, String> {
    match text {
        "fullstack" => Ok(EngineKind::Fullstack),
        "protocol" => Ok(EngineKind::Protocol),
        other => Err(format!("`{other}`: the engines are fullstack and protocol")),
    }
}

/// Parses a substrate name.
fn parse_collector(text: &str) -> Result<CollectorMode, String> {
    match text {
        "per-pair" => Ok(CollectorMode::PerPair),
        "aggregated" => Ok(CollectorMode::Aggregated),
        other => Err(format!(
            "`{other}`: the collector modes are per-pair and aggregated"
        )),
    }
}

fn parse_substrate(text: &str) -> Result<Substrate, String> {
    match text {
        "fabric" => Ok(Substrate::Fabric),
        "turmoil" => Ok(Substrate::Turmoil),
        "streams" => Ok(Substrate::Streams),
        other => Err(format!(
            "`{other}`: the substrates are fabric, turmoil and streams"
        )),
    }
}

/// The full-stack engine on a substrate, when this build has it.
#[cfg(feature = "fullstack")]
fn fullstack_engine(substrate: Substrate) -> Option<&'static dyn Engine> {
    use sim_fullstack::Fullstack;
    static FABRIC: Fullstack = Fullstack::on(Substrate::Fabric);
    static TURMOIL: Fullstack = Fullstack::on(Substrate::Turmoil);
    static STREAMS: Fullstack = Fullstack::on(Substrate::Streams);
    Some(match substrate {
        Substrate::Fabric => &FABRIC,
        Substrate::Turmoil => &TURMOIL,
        Substrate::Streams => &STREAMS,
    })
}

#[cfg(not(feature = "fullstack"))]
fn fullstack_engine(_substrate: Substrate) -> Option<&'static dyn Engine> {
    None
}

/// The protocol-tier engine, when this build has it.
#[cfg(feature = "protocol")]
fn protocol_engine(verify_all: bool) -> Option<&'static dyn Engine> {
    static SHARED_VERDICTS: sim_protocol::Protocol = sim_protocol::Protocol::new();
    static VERIFY_ALL: sim_protocol::Protocol = sim_protocol::Protocol::verifying_all();
    Some(if verify_all {
        &VERIFY_ALL
    } else {
        &SHARED_VERDICTS
    })
}

#[cfg(not(feature = "protocol"))]
fn protocol_engine(_verify_all: bool) -> Option<&'static dyn Engine> {
    None
}

/// Parses arguments and runs; returns the process exit code.
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    #[expect(
        clippy::disallowed_methods,
        reason = "the program edge: the wall clock paces progress lines, never a simulation"
    )]
    sim::progress::use_wall_clock(std::time::Instant::now);
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", error_line(&error));
            ExitCode::from(2)
        }
    }
}

/// An error and its causes on one line, each cause once: many errors repeat their source's
/// text in their own, which `{:#}` would print twice.
fn error_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if line.contains(&part) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&part);
    }
    line
}

fn load(path: &Path) -> anyhow::Result<Scenario> {
    let scenario = Scenario::load(path)?;
    check_memory(&scenario, path)?;
    Ok(scenario)
}

/// Refuses a run whose msgs would not fit in the memory this machine has available (read
/// from `/proc/meminfo` here, at the program edge; skipped where it cannot be read).
fn check_memory(scenario: &Scenario, path: &Path) -> anyhow::Result<()> {
    let Some(available) = available_memory_bytes() else {
        return Ok(());
    };
    let estimate = sim::limits::estimate(scenario);
    #[expect(clippy::cast_precision_loss, reason = "an estimate")]
    let available_f = available as f64;
    anyhow::ensure!(
        estimate.stored_bytes <= available_f,
        "{}: this run would hold about {:.1} GiB of msgs across its {} peers ({:.0} publishes \
         expected), more than the {:.1} GiB of memory available; shorten it, lower the rates \
         or the sizes, or use fewer peers",
        path.display(),
        estimate.stored_bytes / GIB,
        scenario.peer_count(),
        estimate.publishes,
        available_f / GIB
    );
    Ok(())
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// `MemAvailable` of `/proc/meminfo`, in bytes.
fn available_memory_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// The engine `--engine` names, else the scenario's; for the full-stack engine, on the
/// substrate `--substrate` names, else the scenario's.
fn engine_for(choice: EngineChoice, scenario: &Scenario) -> anyhow::Result<&'static dyn Engine> {
    let kind = choice.kind.unwrap_or(scenario.engine);
    let engine = match kind {
        EngineKind::Fullstack => fullstack_engine(choice.substrate.unwrap_or(scenario.substrate)),
        EngineKind::Protocol => protocol_engine(choice.verify_all),
    };
    engine.ok_or_else(|| {
        anyhow::anyhow!(
            "this ppppp-sim was built without the `{}` engine (cargo feature `{0}`)",
            kind.name()
        )
    })
}

/// Parses `A..B`, `A..=B` or `A,B,C`.
///
/// # Errors
/// Bad syntax or an empty range.
pub fn parse_seeds(text: &str) -> anyhow::Result<Vec<u64>> {
    let seeds: Vec<u64> = if let Some((a, b)) = text.split_once("..=") {
        let (a, b): (u64, u64) = (a.trim().parse()?, b.trim().parse()?);
        (a..=b).collect()
    } else if let Some((a, b)) = text.split_once("..") {
        let (a, b): (u64, u64) = (a.trim().parse()?, b.trim().parse()?);
        (a..b).collect()
    } else {
        text.split(',')
            .map(|s| s.trim().parse::<u64>())
            .collect::<Result<_, _>>()
            .context("seeds: write A..B, A..=B or A,B,C")?
    };
    anyhow::ensure!(!seeds.is_empty(), "seeds `{text}` name no seed");
    Ok(seeds)
}

#[cfg(feature = "protocol")]
fn compare_protocols(command: Command) -> anyhow::Result<ExitCode> {
    let Command::CompareProtocols {
        scenario,
        protocols,
        seeds,
        jobs,
        out,
        quiet,
    } = command
    else {
        unreachable!("dispatch passes compare-protocols only")
    };
    let loaded = load(&scenario)?;
    let seeds = match seeds {
        Some(text) => parse_seeds(&text)?,
        None => vec![loaded.seed],
    };
    crate::compare_protocols::compare_protocols(&crate::compare_protocols::CompareRequest {
        scenario_path: &scenario,
        scenario: loaded,
        protocols: &protocols,
        seeds,
        jobs,
        out,
        quiet,
    })
}

#[cfg(not(feature = "protocol"))]
fn compare_protocols(_command: Command) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "this ppppp-sim was built without the `protocol` engine (cargo feature `protocol`)"
    )
}

fn print_failure(report: &Report) {
    if let Some(line) = report.checks.first_failure() {
        eprintln!("FAILED {line}");
        eprintln!("{}", report.repro);
    }
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run {
            scenario,
            seed,
            out,
            trace,
            engine,
            substrate,
            verify_all,
            collector,
            quiet,
        } => run(
            &scenario,
            seed,
            out,
            trace,
            EngineChoice {
                kind: engine,
                substrate,
                verify_all,
            },
            collector,
            quiet,
        ),
        Command::Plan { scenario, seed } => {
            let loaded = load(&scenario)?;
            let plan = Plan::build(&loaded, seed.unwrap_or(loaded.seed));
            print_out(&plan.to_json())?;
            Ok(ExitCode::SUCCESS)
        }
        command @ Command::Sweep { .. } => sweep(command),
        Command::Merge { dir, quiet } => crate::sweep_cmd::finish(&dir, quiet),
        Command::Compare {
            base,
            head,
            max_regression,
            allow_different,
        } => compare(&base, &head, max_regression, allow_different),
        command @ Command::CheckBaseline { .. } => check_baseline(command),
        command @ Command::CompareProtocols { .. } => compare_protocols(command),
        Command::Render { report, out } => {
            let loaded = Report::read(&report)?;
            let dir = out.unwrap_or_else(|| {
                report
                    .parent()
                    .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
            });
            sim::pipeline::write_report(&dir, &loaded)?;
            print_out(&format!("rendered into {}\n", dir.display()))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `ppppp-sim sweep`.
fn sweep(command: Command) -> anyhow::Result<ExitCode> {
    let Command::Sweep {
        scenario,
        seeds,
        sets,
        jobs,
        out,
        engine,
        substrate,
        verify_all,
        slurm,
        runs_per_task,
        quiet,
    } = command
    else {
        unreachable!("dispatch hands sweep only a sweep")
    };
    let request = crate::sweep_cmd::SweepRequest {
        scenario: &scenario,
        seeds: parse_seeds(&seeds)?,
        sets: &sets,
        jobs,
        out,
        slurm,
        runs_per_task,
        quiet,
        check_memory,
    };
    let base = load(&scenario)?;
    let choice = EngineChoice {
        kind: engine,
        substrate,
        verify_all,
    };
    let engine_ref = engine_for(choice, &base)?;
    crate::sweep_cmd::sweep(&request, engine_ref, verify_all)
}

/// `ppppp-sim check-baseline`.
fn check_baseline(command: Command) -> anyhow::Result<ExitCode> {
    let Command::CheckBaseline {
        scenarios,
        engine,
        substrate,
        dir,
        bless,
        seeds,
    } = command
    else {
        unreachable!("dispatch hands check_baseline only a check-baseline")
    };
    crate::check_baseline::check_baseline(&crate::check_baseline::Args {
        scenarios,
        engine,
        substrate,
        dir,
        seeds: seeds.as_deref().map(parse_seeds).transpose()?,
        bless,
        runner: crate::check_baseline::Runner {
            load,
            engine: engine_for,
        },
    })
}

fn run(
    scenario: &Path,
    seed: Option<u64>,
    out: Option<PathBuf>,
    trace: bool,
    engine: EngineChoice,
    collector: Option<CollectorMode>,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    let mut loaded = load(scenario)?;
    if let Some(collector) = collector {
        loaded.report.collector = collector;
    }
    let engine = engine_for(engine, &loaded)?;
    let plan = Plan::build(&loaded, seed.unwrap_or(loaded.seed));
    let out = out.unwrap_or_else(|| Path::new("reports").join(&loaded.name));
    let report = sim::pipeline::run(
        &plan,
        engine,
        &RunOptions {
            scenario_path: scenario.display().to_string(),
            out: Some(out.clone()),
            trace,
            progress: !quiet,
        },
    )?;
    if !quiet {
        print_out(&sim::key_figures::run_table(&report))?;
    }
    print_out(&format!(
        "{}: {} — report in {} (trace {})\n",
        plan.scenario,
        if report.checks.passed {
            "checks passed"
        } else {
            "checks FAILED"
        },
        out.display(),
        &report.trace_hash[..16.min(report.trace_hash.len())]
    ))?;
    if report.checks.passed {
        Ok(ExitCode::SUCCESS)
    } else {
        print_failure(&report);
        Ok(ExitCode::from(1))
    }
}

fn compare(
    base: &Path,
    head: &Path,
    max_regression: Option<f64>,
    allow_different: bool,
) -> anyhow::Result<ExitCode> {
    if let Some(pct) = max_regression {
        anyhow::ensure!(
            pct.is_finite() && pct >= 0.0,
            "--max-regression must be ≥ 0"
        );
    }
    let comparison = sim::compare::compare_files(base, head, max_regression, allow_different)?;
    print_out(&sim::compare::markdown(&comparison))?;
    let regressions = comparison.regressions();
    if regressions.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for row in regressions {
        eprintln!(
            "regression: {} {} → {} ({})",
            row.metric,
            row.base
                .map_or_else(|| "null".to_owned(), |v| v.to_string()),
            row.head
                .map_or_else(|| "null".to_owned(), |v| v.to_string()),
            row.delta_pct
                .map_or_else(|| "undefined".to_owned(), |d| format!("{d:+.2} %"))
        );
    }
    Ok(ExitCode::from(1))
}
