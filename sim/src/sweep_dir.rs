//! A sweep's directory: the manifest of its cells and seeds (`sweep-cells.json`), each cell's
//! scenario file and each run's output (`cell-01/scenario.toml`, `cell-01/seed-7/`), and the
//! outputs [`merge`] builds from the runs' `report.json`: `sweep.json`, `sweep.md`,
//! `runs.csv` and the cross-run plots.
//!
//! A local sweep and a Slurm array (`crate::slurm`) lay out the same directory and both end
//! in [`merge`], so their outputs are the same bytes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::matrix;
use crate::report::Report;
use crate::sweep::{CellRuns, Parameter, Sweep};

/// The manifest's file name.
pub const MANIFEST: &str = "sweep-cells.json";

/// One cell in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestCell {
    /// Its directory.
    pub dir: String,
    /// Its parameters.
    pub parameters: Vec<Parameter>,
}

/// `sweep-cells.json`: what a sweep runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Scenario name.
    pub scenario: String,
    /// The engine's name.
    pub engine: String,
    /// The engine's substrate (`fabric`, `turmoil`; none for the protocol tier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substrate: Option<String>,
    /// The protocol tier verifies every signature.
    pub verify_all: bool,
    /// Seeds of every cell.
    pub seeds: Vec<u64>,
    /// Matrix axes.
    pub parameters: Vec<String>,
    /// Cells, in matrix order.
    pub cells: Vec<ManifestCell>,
}

impl Manifest {
    /// The manifest of these cells.
    #[must_use]
    pub fn new(
        cells: &[matrix::Cell],
        seeds: &[u64],
        (engine, substrate): (&str, Option<&str>),
        verify_all: bool,
    ) -> Manifest {
        Manifest {
            scenario: cells
                .first()
                .map(|c| c.scenario.name.clone())
                .unwrap_or_default(),
            engine: engine.to_owned(),
            substrate: substrate.map(str::to_owned),
            verify_all,
            seeds: seeds.to_vec(),
            parameters: cells
                .first()
                .map(|c| c.parameters.iter().map(|p| p.path.clone()).collect())
                .unwrap_or_default(),
            cells: cells
                .iter()
                .map(|c| ManifestCell {
                    dir: c.dir.clone(),
                    parameters: c.parameters.clone(),
                })
                .collect(),
        }
    }

    /// Every run: (cell directory, seed), cell by cell.
    #[must_use]
    pub fn runs(&self) -> Vec<(String, u64)> {
        self.cells
            .iter()
            .flat_map(|c| self.seeds.iter().map(|s| (c.dir.clone(), *s)))
            .collect()
    }
}

/// A cell's scenario file in `dir`.
#[must_use]
pub fn scenario_file(dir: &Path, cell: &str) -> PathBuf {
    dir.join(cell).join("scenario.toml")
}

/// A run's output directory in `dir`.
#[must_use]
pub fn run_dir(dir: &Path, cell: &str, seed: u64) -> PathBuf {
    dir.join(cell).join(format!("seed-{seed}"))
}

fn write(path: &Path, text: &str) -> Result<(), SimError> {
    let failed = |source| SimError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    std::fs::write(path, text).map_err(failed)
}

/// Writes the manifest and every cell's scenario file into `dir`.
///
/// # Errors
/// File system errors.
pub fn prepare(dir: &Path, manifest: &Manifest, cells: &[matrix::Cell]) -> Result<(), SimError> {
    for cell in cells {
        write(&scenario_file(dir, &cell.dir), &cell.text)?;
    }
    let mut json = serde_json::to_string_pretty(manifest).expect("invariant: manifest serializes");
    json.push('\n');
    write(&dir.join(MANIFEST), &json)
}

/// Reads a sweep directory's manifest.
///
/// # Errors
/// Missing or malformed manifest.
pub fn read_manifest(dir: &Path) -> Result<Manifest, SimError> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|source| SimError::Read {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| SimError::NotJson {
        path,
        what: "a sweep manifest",
        source,
    })
}

/// Reads every run's report, aggregates, and writes `sweep.json`, `sweep.md`, `runs.csv` and
/// the cross-run plots into `dir`.
///
/// # Errors
/// A missing manifest or report (each missing run is named), or file errors.
pub fn merge(dir: &Path) -> Result<Sweep, SimError> {
    let manifest = read_manifest(dir)?;
    let mut missing = Vec::new();
    let mut cells = Vec::new();
    for cell in &manifest.cells {
        let mut reports = Vec::new();
        for seed in &manifest.seeds {
            let path = run_dir(dir, &cell.dir, *seed).join("report.json");
            if path.exists() {
                reports.push(Report::read(&path)?);
            } else {
                missing.push(format!("{}/seed-{seed}", cell.dir));
            }
        }
        cells.push(CellRuns {
            dir: cell.dir.clone(),
            parameters: cell.parameters.clone(),
            reports,
        });
    }
    if !missing.is_empty() {
        return Err(SimError::MissingRuns {
            dir: dir.to_owned(),
            count: missing.len(),
            first: missing.into_iter().take(5).collect::<Vec<_>>().join(", "),
        });
    }
    let sweep = crate::sweep::aggregate(cells.clone())?;
    write(&dir.join("sweep.json"), &sweep.to_json())?;
    write(&dir.join("sweep.md"), &crate::sweep::markdown(&sweep))?;
    write(&dir.join("runs.csv"), &crate::runs_csv::runs_csv(&sweep))?;
    crate::sweep_plot::render_all(&sweep, &cells, dir)?;
    Ok(sweep)
}
