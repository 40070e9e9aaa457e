//! Plots from a [`Report`] only (never from a live run): the convergence curve with fault
//! intervals shaded, the latency CDF, and bandwidth by kind over time. Each is written as
//! SVG and PNG.
//!
//! Text uses DejaVu Sans, embedded in the binary (`sim/assets/fonts`, Bitstream Vera
//! license beside it) and registered with plotters' `ab_glyph` backend, so no system font
//! library is needed.

use crate::error::SimError;
use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::report::Report;

/// Plot size in pixels.
pub const WIDTH: u32 = 1100;
/// Plot size in pixels.
pub const HEIGHT: u32 = 650;

static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

pub(crate) fn register_font() {
    REGISTER.call_once(|| {
        // The font is a valid TTF compiled into the binary; a failure here would be a
        // build problem, and text would then be missing rather than the program failing.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

const FAULT_FILL: RGBAColor = RGBAColor(214, 39, 40, 0.13);
const CHURN_FILL: RGBAColor = RGBAColor(188, 189, 34, 0.12);
const KIND_COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// The plots of one run, each written as `.svg` and `.png`.
pub const PLOT_NAMES: &[&str] = &["convergence", "latency_cdf", "bandwidth"];

/// Writes `convergence`, `latency_cdf` and `bandwidth`, each `.svg` and `.png`, into `dir`.
///
/// # Errors
/// Drawing or file errors.
pub fn render_all(report: &Report, dir: &Path) -> Result<(), SimError> {
    register_font();
    macro_rules! both {
        ($name:literal, $draw:ident) => {{
            let svg_path = dir.join(concat!($name, ".svg"));
            {
                let root = SVGBackend::new(&svg_path, (WIDTH, HEIGHT)).into_drawing_area();
                root.fill(&WHITE)
                    .and_then(|()| $draw(report, &root))
                    .and_then(|()| root.present())
                    .map_err(|e| SimError::Plot {
                        path: svg_path.clone(),
                        message: e.to_string(),
                    })?;
            }
            let png_path = dir.join(concat!($name, ".png"));
            {
                let root = BitMapBackend::new(&png_path, (WIDTH, HEIGHT)).into_drawing_area();
                root.fill(&WHITE)
                    .and_then(|()| $draw(report, &root))
                    .and_then(|()| root.present())
                    .map_err(|e| SimError::Plot {
                        path: png_path.clone(),
                        message: e.to_string(),
                    })?;
            }
        }};
    }
    both!("convergence", convergence);
    both!("latency_cdf", latency_cdf);
    both!("bandwidth", bandwidth);
    Ok(())
}

#[expect(clippy::cast_precision_loss, reason = "simulated ms far below 2^53")]
fn seconds(ms: u64) -> f64 {
    ms as f64 / 1_000.0
}

fn shade_faults<DB: DrawingBackend, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    report: &Report,
    y_low: Y::ValueType,
    y_high: Y::ValueType,
) -> DrawResult<DB>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged,
    Y::ValueType: Clone + 'static,
{
    if let Some((start, end)) = report.scenario.churn_window_ms {
        let rect = Rectangle::new(
            [
                (seconds(start), y_low.clone()),
                (seconds(end.max(start + 1)), y_high.clone()),
            ],
            CHURN_FILL.filled(),
        );
        chart
            .draw_series(std::iter::once(rect))?
            .label("churn (peers going offline and online)")
            .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], CHURN_FILL.filled()));
    }
    let mut labelled = false;
    for fault in &report.scenario.faults {
        let rect = Rectangle::new(
            [
                (seconds(fault.start_ms), y_low.clone()),
                (
                    seconds(fault.end_ms.max(fault.start_ms + 1)),
                    y_high.clone(),
                ),
            ],
            FAULT_FILL.filled(),
        );
        let series = chart.draw_series(std::iter::once(rect))?;
        if !labelled {
            series.label("fault active").legend(|(x, y)| {
                Rectangle::new([(x, y - 6), (x + 18, y + 6)], FAULT_FILL.filled())
            });
            labelled = true;
        }
    }
    Ok(())
}

fn convergence<DB: DrawingBackend>(
    report: &Report,
    root: &DrawingArea<DB, Shift>,
) -> DrawResult<DB> {
    let curve = &report.metrics.convergence.curve;
    let end_s = seconds(report.scenario.duration_ms).max(1.0);
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("Convergence — {}", report.title_suffix()),
            ("sans-serif", 24),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..end_s, 0.0..1.05)?;
    chart
        .configure_mesh()
        .x_desc("simulated time (s)")
        .y_desc("fraction of wanted (peer, msg) pairs held")
        .x_labels(12)
        .y_labels(11)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.1}"))
        .axis_desc_style(("sans-serif", 17))
        .label_style(("sans-serif", 14))
        .light_line_style(RGBColor(246, 246, 246))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()?;
    shade_faults(&mut chart, report, 0.0, 1.05)?;
    let deadline = seconds(report.scenario.liveness_deadline_ms);
    if report.checks.liveness.enabled && deadline <= end_s {
        let grey = RGBColor(70, 70, 70);
        chart
            .draw_series(DashedLineSeries::new(
                [(deadline, 0.0), (deadline, 1.05)],
                6,
                4,
                grey.stroke_width(2),
            ))?
            .label("liveness check (deadline)")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], grey.stroke_width(2)));
    }
    let orange = RGBColor(255, 127, 14);
    chart
        .draw_series(LineSeries::new(
            curve
                .iter()
                .filter_map(|p| p.final_fraction.map(|c| (seconds(p.t_ms), c))),
            orange.stroke_width(2),
        ))?
        .label("pairs wanted at the end, stored by t")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], orange.stroke_width(2)));
    let blue = RGBColor(31, 119, 180);
    chart
        .draw_series(LineSeries::new(
            curve
                .iter()
                .filter_map(|p| p.coverage.map(|c| (seconds(p.t_ms), c))),
            blue.stroke_width(2),
        ))?
        .label("coverage: held ÷ wanted at t")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], blue.stroke_width(2)));
    finish_legend(&mut chart, SeriesLabelPosition::LowerRight)
}

fn latency_cdf<DB: DrawingBackend>(
    report: &Report,
    root: &DrawingArea<DB, Shift>,
) -> DrawResult<DB> {
    let caption = format!("Delivery latency CDF — {}", report.title_suffix());
    let (steps, max, min_positive) = cdf_steps(report);
    if report.scenario.latency_log_x && min_positive.is_finite() {
        let low = (min_positive / 1.5).max(0.5);
        let high = max * 1.5;
        let mut chart = ChartBuilder::on(root)
            .caption(caption, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d((low..high).log_scale(), 0.0..1.05)?;
        chart
            .configure_mesh()
            .x_desc("publish → stored latency (ms, log scale)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.1}"))
            .y_desc("fraction of wanted pairs delivered ≤ x")
            .axis_desc_style(("sans-serif", 17))
            .label_style(("sans-serif", 14))
            .light_line_style(RGBColor(246, 246, 246))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()?;
        let steps: Vec<(f64, f64)> = steps.into_iter().map(|(v, f)| (v.max(low), f)).collect();
        draw_cdf(&mut chart, report, steps, low)
    } else {
        let mut chart = ChartBuilder::on(root)
            .caption(caption, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(0.0..max * 1.05, 0.0..1.05)?;
        chart
            .configure_mesh()
            .x_desc("publish → stored latency (ms)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.1}"))
            .y_desc("fraction of wanted pairs delivered ≤ x")
            .axis_desc_style(("sans-serif", 17))
            .label_style(("sans-serif", 14))
            .light_line_style(RGBColor(246, 246, 246))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()?;
        draw_cdf(&mut chart, report, steps, 0.0)
    }
}

/// The CDF over every wanted pair as a step line (the fraction holds until the next value):
/// the report's CDF is over deliveries, scaled here by delivered ÷ (delivered + undelivered),
/// so pairs never delivered keep the curve below 1. Also its largest value and its smallest
/// positive value (infinite when there is none).
fn cdf_steps(report: &Report) -> (Vec<(f64, f64)>, f64, f64) {
    let latency = &report.metrics.latency_ms;
    let wanted = latency.quantiles.count + latency.undelivered;
    #[expect(clippy::cast_precision_loss, reason = "pair counts far below 2^53")]
    let delivered_share = if wanted == 0 {
        1.0
    } else {
        latency.quantiles.count as f64 / wanted as f64
    };
    let points: Vec<(f64, f64)> = latency
        .cdf
        .iter()
        .map(|(v, f)| {
            #[expect(clippy::cast_precision_loss, reason = "latencies far below 2^53 ms")]
            let v = *v as f64;
            (v, *f * delivered_share)
        })
        .collect();
    let max = points.iter().map(|p| p.0).fold(1.0, f64::max);
    let min_positive = points
        .iter()
        .map(|p| p.0)
        .filter(|v| *v > 0.0)
        .fold(f64::INFINITY, f64::min);
    let mut steps = Vec::with_capacity(points.len() * 2);
    let mut previous = 0.0;
    for (v, f) in &points {
        steps.push((*v, previous));
        steps.push((*v, *f));
        previous = *f;
    }
    (steps, max, min_positive)
}

/// The CDF's steps, a vertical line at p50, p90 and p99 (none left of `low`, the axis's
/// start), and the legend.
fn draw_cdf<'a, DB: DrawingBackend + 'a, X: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    report: &Report,
    steps: Vec<(f64, f64)>,
    low: f64,
) -> DrawResult<DB> {
    let quantiles = &report.metrics.latency_ms.quantiles;
    let blue = RGBColor(31, 119, 180);
    chart
        .draw_series(LineSeries::new(steps, blue.stroke_width(2)))?
        .label(format!(
            "{} deliveries, {} wanted pairs undelivered",
            quantiles.count, report.metrics.latency_ms.undelivered
        ))
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], blue.stroke_width(2)));
    for (name, value, color) in [
        ("p50", quantiles.p50, RGBColor(44, 160, 44)),
        ("p90", quantiles.p90, RGBColor(255, 127, 14)),
        ("p99", quantiles.p99, RGBColor(214, 39, 40)),
    ] {
        if let Some(value) = value {
            #[expect(clippy::cast_precision_loss, reason = "latencies far below 2^53 ms")]
            let x = (value as f64).max(low);
            chart
                .draw_series(LineSeries::new(
                    [(x, 0.0), (x, 1.05)],
                    color.stroke_width(1),
                ))?
                .label(format!("{name} = {value} ms"))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], color.stroke_width(1))
                });
        }
    }
    finish_legend(chart, SeriesLabelPosition::LowerRight)
}

/// Past this ratio between the peak rate and the median non-zero rate, the bandwidth plot
/// uses a logarithmic y axis: real runs start with a burst (every connection syncs every
/// goal at once) that is orders of magnitude above the steady state, which a linear axis
/// flattens to zero.
pub const BANDWIDTH_LOG_RATIO: f64 = 30.0;

/// Most bins the bandwidth plot draws: report buckets are merged (whole multiples) down to
/// this, so a periodic trickle (keepalives every second in 1 s buckets) reads as a level
/// rather than a saw, and isolated bursts stay visible as steps.
pub const BANDWIDTH_PLOT_BINS_MAX: usize = 60;

/// One drawn bin: `[start_s, end_s)` and its rate in bytes per second.
type Bin = (f64, f64, f64);

/// The report's buckets merged for drawing: the bin width in ms, and per kind that sent
/// anything, its kind index and bins.
fn bandwidth_rates(report: &Report) -> (u64, Vec<(usize, Vec<Bin>)>) {
    let bytes = &report.metrics.bytes;
    let end_ms = report.scenario.duration_ms.max(1);
    let bucket_ms = bytes.bucket_ms.max(1);
    let buckets = usize::try_from(end_ms.div_ceil(bucket_ms))
        .unwrap_or(usize::MAX)
        .min(bytes.series.len());
    let merge = buckets.div_ceil(BANDWIDTH_PLOT_BINS_MAX).max(1);
    let bin_ms = bucket_ms.saturating_mul(u64::try_from(merge).unwrap_or(u64::MAX));
    let mut out = Vec::new();
    for column in 0..bytes.kinds.len() {
        let values: Vec<u64> = bytes
            .series
            .iter()
            .take(buckets)
            .map(|row| row.get(column).copied().unwrap_or(0))
            .collect();
        if values.iter().all(|v| *v == 0) {
            continue;
        }
        let bins: Vec<Bin> = values
            .chunks(merge)
            .enumerate()
            .map(|(i, chunk)| {
                let start = bin_ms.saturating_mul(i as u64);
                let end = start.saturating_add(bin_ms).min(end_ms);
                let sum: u64 = chunk.iter().sum();
                #[expect(clippy::cast_precision_loss, reason = "bytes far below 2^53")]
                let rate = sum as f64 / seconds(end.saturating_sub(start).max(1));
                (seconds(start), seconds(end), rate)
            })
            .collect();
        out.push((column, bins));
    }
    (bin_ms, out)
}

/// The rates of every non-empty bin, ascending.
fn nonzero_rates(rates: &[(usize, Vec<Bin>)]) -> Vec<f64> {
    let mut nonzero: Vec<f64> = rates
        .iter()
        .flat_map(|(_, bins)| bins.iter().map(|(_, _, y)| *y))
        .filter(|y| *y > 0.0)
        .collect();
    nonzero.sort_by(f64::total_cmp);
    nonzero
}

fn bandwidth<DB: DrawingBackend>(report: &Report, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
    let bytes = &report.metrics.bytes;
    let (bin_ms, rates) = bandwidth_rates(report);
    let nonzero = nonzero_rates(&rates);
    let peak_rate = nonzero.last().copied().unwrap_or(0.0);
    let median = nonzero.get(nonzero.len() / 2).copied().unwrap_or(0.0);
    let end_s = seconds(report.scenario.duration_ms).max(1.0);
    let caption = format!("Bandwidth by kind — {}", report.title_suffix());
    let buckets = crate::units::format_ms(bin_ms);
    if median > 0.0 && peak_rate / median > BANDWIDTH_LOG_RATIO {
        // Log axis in B/s; empty buckets sit on the floor.
        let floor = (nonzero.first().copied().unwrap_or(1.0) / 2.0).max(1.0);
        let top = peak_rate * 2.0;
        let mut chart = ChartBuilder::on(root)
            .caption(caption, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(96)
            .build_cartesian_2d(0.0..end_s, (floor..top).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("simulated time (s)")
            .x_labels(12)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| si_rate(*y))
            .y_desc(format!(
                "bytes sent, all peers (log scale, {buckets} buckets)"
            ))
            .axis_desc_style(("sans-serif", 17))
            .label_style(("sans-serif", 14))
            .light_line_style(RGBColor(246, 246, 246))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()?;
        shade_faults(&mut chart, report, floor, top)?;
        draw_rates(&mut chart, bytes, rates, |y| y, true)?;
        return finish_legend(&mut chart, SeriesLabelPosition::UpperRight);
    }
    let (unit, divisor) = if peak_rate >= 10.0 * 1024.0 * 1024.0 {
        ("MiB/s", 1024.0 * 1024.0)
    } else if peak_rate >= 10.0 * 1024.0 {
        ("KiB/s", 1024.0)
    } else {
        ("B/s", 1.0)
    };
    let y_max = (peak_rate / divisor * 1.1).max(1.0);
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..end_s, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("simulated time (s)")
        .x_labels(12)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .y_desc(format!("bytes sent, all peers ({unit}, {buckets} buckets)"))
        .axis_desc_style(("sans-serif", 17))
        .label_style(("sans-serif", 14))
        .light_line_style(RGBColor(246, 246, 246))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()?;
    shade_faults(&mut chart, report, 0.0, y_max)?;
    draw_rates(&mut chart, bytes, rates, |y| y / divisor, false)?;
    finish_legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// Decimal rate labels for the log axis, whose ticks are powers of ten: `100 B/s`,
/// `10 kB/s`, `1 MB/s`.
fn si_rate(bytes_per_second: f64) -> String {
    let (value, unit) = if bytes_per_second >= 1e9 {
        (bytes_per_second / 1e9, "GB/s")
    } else if bytes_per_second >= 1e6 {
        (bytes_per_second / 1e6, "MB/s")
    } else if bytes_per_second >= 1e3 {
        (bytes_per_second / 1e3, "kB/s")
    } else {
        (bytes_per_second, "B/s")
    };
    let digits = if value >= 10.0 || (value - value.round()).abs() < 0.05 {
        0
    } else {
        1
    };
    format!("{value:.digits$} {unit}")
}

/// Draws each kind's rate over time as steps, one level per bin. With `gaps`, empty bins
/// break the line (on a log axis they have no place); a lone non-empty bin is one level.
fn draw_rates<'a, DB: DrawingBackend + 'a, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    bytes: &crate::metrics::BytesMetrics,
    rates: Vec<(usize, Vec<Bin>)>,
    scale: impl Fn(f64) -> f64,
    gaps: bool,
) -> DrawResult<DB> {
    for (column, bins) in rates {
        let color = KIND_COLORS[column % KIND_COLORS.len()];
        let kind = bytes.kinds.get(column).map_or("?", String::as_str);
        let runs: Vec<&[Bin]> = if gaps {
            bins.split(|(_, _, y)| *y <= 0.0)
                .filter(|run| !run.is_empty())
                .collect()
        } else {
            vec![bins.as_slice()]
        };
        let mut labelled = false;
        for run in runs {
            let steps: Vec<(f64, f64)> = run
                .iter()
                .flat_map(|(start, end, y)| [(*start, scale(*y)), (*end, scale(*y))])
                .collect();
            let series = chart.draw_series(LineSeries::new(steps, color.stroke_width(2)))?;
            if !labelled {
                series.label(kind.replace('_', " ")).legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2))
                });
                labelled = true;
            }
        }
    }
    Ok(())
}

fn finish_legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> DrawResult<DB> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    Ok(())
}
