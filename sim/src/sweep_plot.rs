//! Plots across the runs of a sweep, each as SVG and PNG: every key figure against the first
//! matrix parameter (per-seed points, the median line, the 95 % interval of the mean as error
//! bars; one series per value of the other parameters), the convergence curve of each cell as
//! its median over seeds with the 10–90 % band, and each cell's latency CDF overlaid, over
//! all wanted pairs (undelivered ones included, so a curve plateaus below 1).

use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::error::SimError;
use crate::key_figures::KEY_METRICS;
use crate::report::Report;
use crate::stats::quantile;
use crate::sweep::{CellRuns, MetricSummary, Sweep};

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 650;
/// Ten colours, so that a protocol comparison's nine rows are told apart.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

type Drawn = Result<(), String>;

/// Draws `canvas` into `dir/name.svg` and `dir/name.png`.
fn both(dir: &Path, name: &str, canvas: &Canvas<'_>) -> Result<(), SimError> {
    crate::plot::register_font();
    for ext in ["svg", "png"] {
        let path = dir.join(format!("{name}.{ext}"));
        canvas
            .render(&path, ext)
            .map_err(|message| SimError::Plot {
                path: path.clone(),
                message,
            })?;
    }
    Ok(())
}

/// A plot's content, drawable on either backend.
enum Canvas<'a> {
    Metric(&'a Sweep, &'a str),
    Convergence(&'a Sweep, &'a [CellRuns]),
    Latency(&'a Sweep, &'a [CellRuns]),
}

impl Canvas<'_> {
    fn render(&self, path: &Path, ext: &str) -> Drawn {
        if ext == "svg" {
            let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
            self.draw(&root)
        } else {
            let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
            self.draw(&root)
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let drawn = match self {
            Canvas::Metric(sweep, name) => metric(root, sweep, name),
            Canvas::Convergence(sweep, cells) => convergence(root, sweep, cells),
            Canvas::Latency(sweep, cells) => latency(root, sweep, cells),
        };
        drawn.map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())
    }
}

/// Writes every cross-run plot of `sweep` into `dir`.
///
/// # Errors
/// Drawing or file errors.
pub fn render_all(sweep: &Sweep, cells: &[CellRuns], dir: &Path) -> Result<(), SimError> {
    if !sweep.parameters.is_empty() {
        for name in KEY_METRICS {
            both(dir, &format!("metric_{name}"), &Canvas::Metric(sweep, name))?;
        }
    }
    both(dir, "convergence_bands", &Canvas::Convergence(sweep, cells))?;
    both(dir, "latency_cdfs", &Canvas::Latency(sweep, cells))
}

type PlotResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// The x position of a first-parameter value: the number, or its position among the values.
fn x_of(sweep: &Sweep, value: &str) -> f64 {
    let values = first_axis_values(sweep);
    if values.iter().all(|v| number(v).is_some()) {
        return number(value).unwrap_or(0.0);
    }
    #[expect(clippy::cast_precision_loss, reason = "few values")]
    let position = values.iter().position(|v| v == value).unwrap_or(0) as f64;
    position
}

/// A number at the start of a value (`20` → 20, `50ms` → 50).
fn number(value: &str) -> Option<f64> {
    let end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(value.len());
    value[..end].parse().ok()
}

fn first_axis_values(sweep: &Sweep) -> Vec<String> {
    let mut values: Vec<String> = Vec::new();
    for cell in &sweep.cells {
        if let Some(p) = cell.parameters.first()
            && !values.contains(&p.value)
        {
            values.push(p.value.clone());
        }
    }
    values
}

fn rest_label(cell: &crate::sweep::Cell) -> String {
    let rest: Vec<String> = cell
        .parameters
        .iter()
        .skip(1)
        .map(|p| format!("{}={}", p.path, p.value))
        .collect();
    if rest.is_empty() {
        String::new()
    } else {
        format!("{}: ", rest.join(" "))
    }
}

/// One cell's value of a metric: the series (the other parameters), x, the statistics.
type Point = (String, f64, MetricSummary);

fn metric_points(sweep: &Sweep, name: &str) -> Vec<Point> {
    sweep
        .cells
        .iter()
        .filter_map(|cell| {
            let first = cell.parameters.first().map_or("", |p| p.value.as_str());
            let m = cell.metrics.get(name)?;
            Some((rest_label(cell), x_of(sweep, first), m.clone()))
        })
        .collect()
}

fn metric<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    sweep: &Sweep,
    name: &str,
) -> PlotResult<DB> {
    let points = metric_points(sweep, name);
    let xs: Vec<f64> = points.iter().map(|(_, x, _)| *x).collect();
    let (x_low, x_high) = span(&xs);
    let y_high = points
        .iter()
        .flat_map(|(_, _, m)| m.values.iter().flatten().copied().chain(m.high))
        .fold(0.0_f64, f64::max)
        .max(1e-9)
        * 1.1;
    let unit = points.first().map_or("", |(_, _, m)| m.unit.as_str());
    let axis = sweep.parameters.first().cloned().unwrap_or_default();
    let caption = format!(
        "{name} vs {axis} — {} ({} seeds)",
        sweep.scenario,
        sweep.seeds.len()
    );
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(x_low..x_high, 0.0..y_high)?;
    let labels = first_axis_values(sweep);
    let numeric = labels.iter().all(|v| number(v).is_some());
    chart
        .configure_mesh()
        .x_desc(axis.as_str())
        .y_desc(format!("{name} ({unit})"))
        .x_label_formatter(&|x| {
            if numeric {
                format!("{x}")
            } else {
                label_at(&labels, *x)
            }
        })
        .y_label_formatter(&|y| format!("{y}"))
        .axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 13))
        .draw()?;
    let mut series: Vec<&String> = Vec::new();
    for (label, _, _) in &points {
        if !series.contains(&label) {
            series.push(label);
        }
    }
    let cap = (x_high - x_low) / 120.0;
    for (i, label) in series.iter().enumerate() {
        let mine: Vec<&Point> = points.iter().filter(|(s, _, _)| s == *label).collect();
        draw_metric_series(&mut chart, &mine, label, PALETTE[i % PALETTE.len()], cap)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}

/// One series: every seed's value as a dot, the 95 % interval of the mean as a capped bar,
/// and the median as a line.
fn draw_metric_series<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    points: &[&Point],
    label: &str,
    color: RGBColor,
    cap: f64,
) -> PlotResult<DB> {
    chart.draw_series(points.iter().flat_map(|(_, x, m)| {
        m.values
            .iter()
            .flatten()
            .map(move |v| Circle::new((*x, *v), 3, color.mix(0.35).filled()))
    }))?;
    chart.draw_series(points.iter().filter_map(|(_, x, m)| {
        let (low, high) = (m.low?, m.high?);
        let bar = vec![
            (x - cap, low),
            (x + cap, low),
            (*x, low),
            (*x, high),
            (x - cap, high),
            (x + cap, high),
        ];
        Some(PathElement::new(bar, color.stroke_width(2)))
    }))?;
    chart
        .draw_series(LineSeries::new(
            points.iter().filter_map(|(_, x, m)| Some((*x, m.median?))),
            color.stroke_width(2),
        ))?
        .label(format!(
            "{label}median; bars: 95 % interval of the mean; dots: seeds"
        ))
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
    Ok(())
}

fn label_at(labels: &[String], x: f64) -> String {
    if (x - x.round()).abs() > 1e-9 || x < 0.0 {
        return String::new();
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "checked above"
    )]
    let index = x.round() as usize;
    labels.get(index).cloned().unwrap_or_default()
}

fn span(xs: &[f64]) -> (f64, f64) {
    let low = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let high = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !low.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((high - low) * 0.08).max(0.5);
    (low - pad, high + pad)
}

#[expect(clippy::cast_precision_loss, reason = "simulated ms far below 2^53")]
fn seconds(ms: u64) -> f64 {
    ms as f64 / 1_000.0
}

/// Per sample instant: (t, 10th percentile, median, 90th percentile) of F(t) over seeds.
fn bands(reports: &[Report]) -> Vec<(f64, f64, f64, f64)> {
    let len = reports
        .iter()
        .map(|r| r.metrics.convergence.curve.len())
        .min()
        .unwrap_or(0);
    (0..len)
        .filter_map(|i| {
            let mut values: Vec<f64> = reports
                .iter()
                .filter_map(|r| r.metrics.convergence.curve[i].final_fraction)
                .collect();
            values.sort_by(f64::total_cmp);
            let t = seconds(reports.first()?.metrics.convergence.curve[i].t_ms);
            Some((
                t,
                quantile(&values, 0.1)?,
                quantile(&values, 0.5)?,
                quantile(&values, 0.9)?,
            ))
        })
        .collect()
}

fn convergence<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    sweep: &Sweep,
    cells: &[CellRuns],
) -> PlotResult<DB> {
    let end = cells
        .iter()
        .flat_map(|c| &c.reports)
        .map(|r| seconds(r.scenario.duration_ms))
        .fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "Convergence F(t), median and 10–90 % over {} seeds — {}",
                sweep.seeds.len(),
                sweep.scenario
            ),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..end, 0.0..1.05)?;
    chart
        .configure_mesh()
        .x_desc("simulated time (s)")
        .y_desc("share of end-wanted pairs stored by t")
        .axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 13))
        .draw()?;
    for (i, cell) in cells.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let band = bands(&cell.reports);
        let outline: Vec<(f64, f64)> = band
            .iter()
            .map(|b| (b.0, b.3))
            .chain(band.iter().rev().map(|b| (b.0, b.1)))
            .collect();
        chart.draw_series(std::iter::once(Polygon::new(
            outline,
            color.mix(0.18).filled(),
        )))?;
        chart
            .draw_series(LineSeries::new(
                band.iter().map(|b| (b.0, b.2)),
                color.stroke_width(2),
            ))?
            .label(crate::sweep::cell_label(&cell.parameters))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}

/// A cell's latency CDF over all wanted pairs of all its seeds: at each latency, the share
/// of (delivered + undelivered) pairs delivered within it.
fn pooled_cdf(reports: &[Report]) -> Vec<(f64, f64)> {
    let total: u64 = reports
        .iter()
        .map(|r| r.metrics.latency_ms.quantiles.count + r.metrics.latency_ms.undelivered)
        .sum();
    if total == 0 {
        return Vec::new();
    }
    let mut xs: Vec<u64> = reports
        .iter()
        .flat_map(|r| r.metrics.latency_ms.cdf.iter().map(|p| p.0))
        .collect();
    xs.sort_unstable();
    xs.dedup();
    xs.iter()
        .map(|x| {
            let below: f64 = reports
                .iter()
                .map(|r| {
                    let cdf = &r.metrics.latency_ms.cdf;
                    let fraction = cdf
                        .iter()
                        .take_while(|p| p.0 <= *x)
                        .last()
                        .map_or(0.0, |p| p.1);
                    #[expect(clippy::cast_precision_loss, reason = "pair counts far below 2^53")]
                    let delivered = r.metrics.latency_ms.quantiles.count as f64;
                    fraction * delivered
                })
                .sum();
            #[expect(clippy::cast_precision_loss, reason = "pair counts far below 2^53")]
            let share = below / total as f64;
            (seconds(*x).max(0.001), share)
        })
        .collect()
}

fn latency<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    sweep: &Sweep,
    cells: &[CellRuns],
) -> PlotResult<DB> {
    let curves: Vec<Vec<(f64, f64)>> = cells.iter().map(|c| pooled_cdf(&c.reports)).collect();
    let high = curves.iter().flatten().map(|p| p.0).fold(1.0, f64::max) * 1.2;
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "Latency CDF over all wanted pairs (undelivered included) — {}",
                sweep.scenario
            ),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d((0.001..high).log_scale(), 0.0..1.05)?;
    chart
        .configure_mesh()
        .x_desc("latency (s, log)")
        .y_desc("share of wanted pairs delivered within")
        .axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 13))
        .draw()?;
    for (i, (cell, curve)) in cells.iter().zip(&curves).enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                curve.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(crate::sweep::cell_label(&cell.parameters))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}
