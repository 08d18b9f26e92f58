//! The report's PNG plots, drawn with plotters from the benchmarks' results. Each function
//! writes one file into the report's folder; without a font the plots are drawn without text and
//! the markdown says what the axes are.

use super::data::{self, Data};
use super::goals;
use crate::bench::overhead::BLOCKS;
use crate::bench::schema::{Mode, OverheadRecord, Quantiles, Scenario};
use crate::bench::Summary;
use plotters::prelude::*;
use std::path::Path;

/// Registers DejaVu Sans (or another sans font found on the system) for plot text. Returns
/// false when there is none: the plots are then drawn without text and the markdown says what
/// the axes are.
pub fn register_font() -> bool {
    const CANDIDATES: [&str; 3] = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    ];
    for path in CANDIDATES {
        if let Ok(bytes) = std::fs::read(path) {
            // The font table wants 'static bytes; one small leak per report run.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const RED: RGBColor = RGBColor(214, 39, 40);
const GREY: RGBColor = RGBColor(120, 120, 120);
const PURPLE: RGBColor = RGBColor(148, 103, 189);

/// What drawing a plot returns (plotters' errors are of many types).
pub type PlotResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// Empirical CDF points of `samples` (sorted copies).
fn ecdf(samples: &[f64]) -> Vec<(f64, f64)> {
    let s = Summary::new(samples.to_vec());
    let n = s.count();
    (1..=n)
        .map(|k| (s.quantile(k as f64 / n as f64), k as f64 / n as f64))
        .collect()
}

/// A CDF plot on a logarithmic x axis: ECDF lines for sample sets, dots for published
/// quantiles (p50, p95, p99, max at heights 0.5, 0.95, 0.99, 1), a vertical goal line.
#[allow(clippy::too_many_arguments)]
fn cdf_plot(
    path: &Path,
    title: &str,
    x_desc: &str,
    lines: &[(String, Vec<f64>, RGBColor)],
    quantiles: &[(String, [f64; 4], RGBColor)],
    goal: Option<(f64, &str)>,
    fonts: bool,
) -> PlotResult {
    let root = BitMapBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let all: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.1.iter().copied())
        .chain(quantiles.iter().flat_map(|q| q.1))
        .chain(goal.map(|g| g.0))
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    // Whole decades, so the log axis gets its 1-2-5 labels.
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min).max(1e-3);
    let lo = 10f64.powf(lo.log10().floor());
    let hi = all.iter().copied().fold(0.0, f64::max).max(lo * 10.0);
    let hi = 10f64.powf(hi.log10().ceil());
    let mut builder = ChartBuilder::on(&root);
    builder.margin(15);
    if fonts {
        builder
            .caption(title, ("sans-serif", 22))
            .x_label_area_size(45)
            .y_label_area_size(60);
    } else {
        builder.x_label_area_size(10).y_label_area_size(10);
    }
    let mut chart = builder.build_cartesian_2d((lo..hi).log_scale(), 0.0..1.02)?;
    let mut mesh = chart.configure_mesh();
    if fonts {
        mesh.x_desc(x_desc)
            .y_desc("fraction of trials at or below")
            .x_label_formatter(&log_label)
            .label_style(("sans-serif", 15));
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw()?;
    if let Some((g, label)) = goal {
        let series =
            chart.draw_series(LineSeries::new([(g, 0.0), (g, 1.02)], RED.stroke_width(2)))?;
        if fonts {
            series
                .label(label)
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(2)));
        }
    }
    for (name, samples, color) in lines {
        if samples.is_empty() {
            continue;
        }
        let mut pts = vec![(ecdf(samples)[0].0, 0.0)];
        for (x, y) in ecdf(samples) {
            let prev = pts.last().map_or(0.0, |p| p.1);
            pts.push((x.max(lo), prev));
            pts.push((x.max(lo), y));
        }
        let color = *color;
        let series = chart.draw_series(LineSeries::new(pts, color.stroke_width(2)))?;
        if fonts {
            series
                .label(format!("{name} (n={})", samples.len()))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
    }
    for (name, q, color) in quantiles {
        let color = *color;
        let pts: Vec<(f64, f64)> = q
            .iter()
            .zip([0.5, 0.95, 0.99, 1.0])
            .filter(|(v, _)| v.is_finite())
            .map(|(v, h)| (v.max(lo), h))
            .collect();
        let series = chart.draw_series(
            pts.into_iter()
                .map(move |p| Circle::new(p, 6, color.filled())),
        )?;
        if fonts {
            series
                .label(name.clone())
                .legend(move |(x, y)| Circle::new((x + 10, y), 6, color.filled()));
        }
    }
    if fonts {
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    }
    root.present()?;
    Ok(())
}

/// Draws the series legend in the report's one style (a white box with a black border).
fn draw_legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> PlotResult
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()?;
    Ok(())
}

/// Labels a log axis at 1, 2 and 5 times a power of ten only (plotters offers every integer
/// multiple, which crowds the top of each decade).
fn log_label(v: &f64) -> String {
    let e = v.log10().floor();
    let m = v / 10f64.powf(e);
    if [1.0, 2.0, 5.0].iter().any(|k| (m - k).abs() < 0.02 * k) {
        let v = (m.round()) * 10f64.powf(e);
        if v >= 1.0 {
            format!("{v:.0}")
        } else {
            format!("{v}")
        }
    } else {
        String::new()
    }
}

/// Labels a log2 axis (x = log2 of the block size) at its whole powers of two.
fn pow2_label(x: &f64) -> String {
    if (x - x.round()).abs() < 1e-6 {
        format!("{}", 2u64.pow(x.round() as u32))
    } else {
        String::new()
    }
}

fn quantiles_of(q: &Quantiles) -> [f64; 4] {
    [q.p50, q.p95, q.p99, q.max]
}

/// `detection.png`: detection as a CDF.
pub fn detection(out: &Path, d: &Data, fonts: bool) -> PlotResult {
    let calm = d.pooled(data::detection, |s| !s.pressure);
    let pressed = d.pooled(data::detection, |s| s.pressure);
    let goal_us = goals::DETECTION.limit * 1000.0;
    cdf_plot(
        &out.join("detection.png"),
        "Detection: SIGKILL returns -> supervisor knows",
        "microseconds (log scale)",
        &[
            ("bench realtime, no pressure".into(), calm, BLUE),
            ("bench realtime, CPU pressure".into(), pressed, ORANGE),
        ],
        &[(
            "bench failover p50/p95/p99/max".into(),
            quantiles_of(&d.failover.detection_us),
            GREEN,
        )],
        Some((goal_us, &format!("goal: p99 < {goal_us} us"))),
        fonts,
    )
}

/// `rebuild.png`: rebuild as a CDF.
pub fn rebuild(out: &Path, d: &Data, fonts: bool) -> PlotResult {
    let calm = d.pooled(data::rebuild, |s| !s.pressure);
    let pressed = d.pooled(data::rebuild, |s| s.pressure);
    let goal_ms = goals::REBUILD.limit;
    cdf_plot(
        &out.join("rebuild.png"),
        "Rebuild: worker death -> new standby verified in lockstep",
        "milliseconds (log scale)",
        &[
            ("bench realtime SIGKILL, no pressure".into(), calm, BLUE),
            (
                "bench realtime SIGKILL, CPU pressure".into(),
                pressed,
                ORANGE,
            ),
        ],
        &[(
            "bench failover, all faults, p50/p95/p99/max".into(),
            quantiles_of(&d.failover.rebuild_ms),
            GREEN,
        )],
        Some((goal_ms, &format!("goal: p99 < {goal_ms} ms"))),
        fonts,
    )
}

const MODE_COLORS: [(Mode, RGBColor); 5] = [
    (Mode::InProcess, GREEN),
    (Mode::InProcessWoken, GREY),
    (Mode::SingleWorker, BLUE),
    (Mode::Eco, PURPLE),
    (Mode::Lockstep, ORANGE),
];

/// `overhead.png`: CPU and the audio thread's time against the block size, per mode.
pub fn overhead(out: &Path, d: &Data, fonts: bool) -> PlotResult {
    let path = out.join("overhead.png");
    let root = BitMapBackend::new(&path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(600);
    let series = |mode: Mode, f: &dyn Fn(&OverheadRecord) -> f64| -> Vec<(f64, f64)> {
        BLOCKS
            .iter()
            .filter_map(|&b| d.overhead(mode, b).map(|r| ((b as f64).log2(), f(r))))
            .filter(|p| p.1.is_finite())
            .collect()
    };
    // Left: CPU seconds per audio second.
    let cpu_max = MODE_COLORS
        .iter()
        .flat_map(|(m, _)| series(*m, &|r| r.cpu_per_audio_s))
        .map(|p| p.1)
        .fold(0.0, f64::max)
        * 1.15;
    let mut b = ChartBuilder::on(&left);
    b.margin(15);
    if fonts {
        b.caption("CPU s per audio s (all processes)", ("sans-serif", 20))
            .x_label_area_size(45)
            .y_label_area_size(60);
    } else {
        b.x_label_area_size(10).y_label_area_size(10);
    }
    let mut chart = b.build_cartesian_2d(4.6f64..10.4f64, 0.0..cpu_max.max(0.01))?;
    let mut mesh = chart.configure_mesh();
    if fonts {
        mesh.x_desc("block (frames, log scale)")
            .y_desc("CPU seconds per audio second")
            .x_labels(13)
            .x_label_formatter(&pow2_label)
            .label_style(("sans-serif", 15));
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw()?;
    for (mode, color) in MODE_COLORS {
        let pts = series(mode, &|r| r.cpu_per_audio_s);
        let s = chart.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?;
        if fonts {
            s.label(mode.name()).legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, color.filled())))?;
    }
    if fonts {
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    }
    // Right: audio thread's time per block, p99 (thick, dots) and p50 (thin).
    let mut b = ChartBuilder::on(&right);
    b.margin(15);
    if fonts {
        b.caption(
            "audio thread per block: p99 (dots), p50",
            ("sans-serif", 20),
        )
        .x_label_area_size(45)
        .y_label_area_size(60);
    } else {
        b.x_label_area_size(10).y_label_area_size(10);
    }
    let t_max = MODE_COLORS
        .iter()
        .flat_map(|(m, _)| series(*m, &|r| r.audio_thread_us.p99))
        .map(|p| p.1)
        .fold(1.0, f64::max)
        * 1.5;
    let mut chart = b.build_cartesian_2d(4.6f64..10.4f64, (5f64..t_max).log_scale())?;
    let mut mesh = chart.configure_mesh();
    if fonts {
        mesh.x_desc("block (frames, log scale)")
            .y_desc("microseconds (log scale)")
            .x_labels(13)
            .x_label_formatter(&pow2_label)
            .y_label_formatter(&log_label)
            .label_style(("sans-serif", 15));
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw()?;
    let goal_us = goals::AUDIO_THREAD.limit;
    let goal_x = (goals::GOAL_BLOCK as f64).log2();
    let goal = chart.draw_series(LineSeries::new(
        [(goal_x, 5.0), (goal_x, goal_us)],
        RED.stroke_width(3),
    ))?;
    if fonts {
        goal.label(format!("goal at {}: p99 < {goal_us} us", goals::GOAL_BLOCK))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(3)));
    }
    for (mode, color) in MODE_COLORS {
        let p99 = series(mode, &|r| r.audio_thread_us.p99);
        let p50 = series(mode, &|r| r.audio_thread_us.p50);
        let s = chart.draw_series(LineSeries::new(p99.clone(), color.stroke_width(2)))?;
        if fonts {
            s.label(mode.name()).legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
        chart.draw_series(p99.into_iter().map(|p| Circle::new(p, 4, color.filled())))?;
        chart.draw_series(LineSeries::new(p50, color.stroke_width(1)))?;
    }
    if fonts {
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    }
    root.present()?;
    Ok(())
}

/// The eight (block, latency, kills) groups of the realtime scenarios, in plot order.
fn groups(d: &Data) -> Vec<(String, Option<&Scenario>, Option<&Scenario>)> {
    let mut out = Vec::new();
    for block in [64usize, 256] {
        for latency in [0, block as u32] {
            for kills in [false, true] {
                let find = |pressure: bool| {
                    d.scenarios().iter().find(|s| {
                        s.block == block
                            && s.latency == latency
                            && s.kills == kills
                            && s.pressure == pressure
                    })
                };
                let label = format!("{block}/L{latency}{}", if kills { " kill" } else { "" });
                out.push((label, find(false), find(true)));
            }
        }
    }
    out
}

/// `xruns.png`: xrun frames and overruns per realtime scenario.
pub fn xruns(out: &Path, d: &Data, fonts: bool) -> PlotResult {
    let path = out.join("xruns.png");
    let root = BitMapBackend::new(&path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(600);
    let groups = groups(d);
    let xrun_frames: fn(&Scenario) -> u64 = |s| s.xrun_frames;
    let overruns: fn(&Scenario) -> u64 = |s| s.overruns;
    for (area, (field, count), title) in [
        (
            &left,
            ("xrun_frames", xrun_frames),
            "xrun frames (fallback)",
        ),
        (
            &right,
            ("overruns", overruns),
            "callbacks past their period",
        ),
    ] {
        let value = |s: Option<&Scenario>| s.map_or(0.0, |s| count(s) as f64);
        let top = groups
            .iter()
            .flat_map(|g| [value(g.1), value(g.2)])
            .fold(1.0, f64::max)
            * 1.2;
        let mut b = ChartBuilder::on(area);
        b.margin(15);
        if fonts {
            b.caption(
                format!("{title}: no pressure (blue), pressure (orange)"),
                ("sans-serif", 18),
            )
            .x_label_area_size(70)
            .y_label_area_size(60);
        } else {
            b.x_label_area_size(10).y_label_area_size(10);
        }
        let n = groups.len() as f64;
        let mut chart = b.build_cartesian_2d(-0.5..n - 0.5, 0.0..top)?;
        let mut mesh = chart.configure_mesh();
        let names: Vec<String> = groups.iter().map(|g| g.0.clone()).collect();
        let formatter = move |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
                names[i as usize].clone()
            } else {
                String::new()
            }
        };
        if fonts {
            mesh.x_labels(groups.len() * 2 + 1)
                .x_label_formatter(&formatter)
                .disable_x_mesh()
                .x_desc("block / latency, with kills every 2 s or not")
                .y_desc(field)
                .y_label_formatter(&|y| format!("{y:.0}"))
                .label_style(("sans-serif", 13));
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw()?;
        for (i, g) in groups.iter().enumerate() {
            let x = i as f64;
            for (v, x0, x1, color) in [
                (value(g.1), x - 0.4, x - 0.02, BLUE),
                (value(g.2), x + 0.02, x + 0.4, ORANGE),
            ] {
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.0), (x1, v)],
                    color.filled(),
                )))?;
                if v == 0.0 {
                    // A zero bar is still visible as a grey tick.
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(x0, 0.0), (x1, top * 0.004)],
                        GREY.filled(),
                    )))?;
                }
            }
        }
    }
    root.present()?;
    Ok(())
}
