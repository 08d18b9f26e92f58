//! `cargo xtask bench report [--quick] [--out DIR] [--no-run]`: runs every benchmark and writes
//! `PERFORMANCE.md` with tables, PNG plots and the goals stated as met or not met.
//!
//! Each benchmark runs as its own process (this executable, `bench NAME`), so one benchmark's
//! scheduling changes (`SCHED_FIFO` threads) and memory never leak into the next; the report is
//! then built from their JSON files in `target/bench/`. The full run writes into `docs/` and is
//! the one committed; `--quick` (what CI runs, with no thresholds) uses short durations and writes
//! into `target/bench/report/` so it never overwrites the committed report. `--no-run` rebuilds
//! the report from the JSON files already there.
//!
//! The analysis written by hand (causes of missed goals) lives in the report between the
//! `notes:begin` and `notes:end` markers; regenerating keeps it.

use super::{flag, Summary};
use anyhow::{bail, Context, Result};
use plotters::prelude::*;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const NOTES_BEGIN: &str = "<!-- notes:begin -->";
const NOTES_END: &str = "<!-- notes:end -->";

/// The Python prototype's published figures.
const PROTOTYPE: &str = "detection 2.97 ms, switch 9 µs, rebuild 3-4 ms";

/// Each benchmark and its arguments, full and quick.
fn plan(quick: bool) -> Vec<(&'static str, Vec<&'static str>)> {
    if quick {
        vec![
            ("failover", vec!["--kills", "18"]),
            ("overhead", vec!["--seconds", "0.5", "--rounds", "1"]),
            ("realtime", vec!["--seconds", "2"]),
            ("scale", vec!["--seconds", "1"]),
        ]
    } else {
        vec![
            ("failover", vec!["--kills", "180"]),
            ("overhead", vec!["--seconds", "5", "--rounds", "2"]),
            ("realtime", vec!["--seconds", "20"]),
            ("scale", vec!["--seconds", "4"]),
        ]
    }
}

/// Entry point.
pub fn run(args: &[String]) -> Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let no_run = args.iter().any(|a| a == "--no-run");
    let default_out = if quick { "target/bench/report" } else { "docs" };
    let out: String = flag(args, "--out", default_out.to_string())?;
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out)?;
    let started = std::time::Instant::now();
    let code_before = code_state();
    // The benchmarks write into a folder of this report's own (see `super::json_dir`).
    let json_dir = PathBuf::from(if quick {
        "target/bench/report-quick"
    } else {
        "target/bench/report-full"
    });
    if !no_run {
        let exe = std::env::current_exe()?;
        for (name, bench_args) in plan(quick) {
            eprintln!("== bench {name} {}", bench_args.join(" "));
            crate::util::run(
                Command::new(&exe)
                    .arg("bench")
                    .arg(name)
                    .args(&bench_args)
                    .env("TANDEM_BENCH_DIR", &json_dir),
            )
            .with_context(|| format!("bench {name}"))?;
        }
    }
    let data = Data::load(&json_dir)?;
    let fonts = register_font();
    let plots = [
        ("detection.png", plot_detection(&out, &data, fonts)),
        ("rebuild.png", plot_rebuild(&out, &data, fonts)),
        ("overhead.png", plot_overhead(&out, &data, fonts)),
        ("xruns.png", plot_xruns(&out, &data, fonts)),
    ];
    for (name, result) in &plots {
        if let Err(e) = result {
            bail!("plotting {name}: {e}");
        }
    }
    let notes = existing_notes(&out.join("PERFORMANCE.md"))
        .or_else(|| existing_notes(Path::new("docs/PERFORMANCE.md")))
        .unwrap_or_else(|| "_No analysis written yet._\n".to_string());
    let command = format!(
        "cargo xtask bench report{}",
        if quick { " --quick" } else { "" }
    );
    let mut code = code_state();
    if !no_run && code != code_before {
        code = format!("{code_before} at the start, {code} at the end (it changed during the run)");
    }
    let md = markdown(
        &data,
        &command,
        quick,
        fonts,
        &notes,
        &code,
        started.elapsed(),
    );
    let path = out.join("PERFORMANCE.md");
    std::fs::write(&path, md).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {} and its plots", path.display());
    Ok(())
}

/// The benchmarks' JSON files.
struct Data {
    failover: Value,
    overhead: Value,
    realtime: Value,
    scale: Value,
}

impl Data {
    fn load(dir: &Path) -> Result<Data> {
        let read = |name: &str| -> Result<Value> {
            let path = dir.join(format!("{name}.json"));
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "{} missing: run the report without --no-run",
                    path.display()
                )
            })?;
            Ok(serde_json::from_str(&text)?)
        };
        Ok(Data {
            failover: read("failover")?,
            overhead: read("overhead")?,
            realtime: read("realtime")?,
            scale: read("scale")?,
        })
    }

    fn overhead(&self, mode: &str, block: u64) -> Option<&Value> {
        self.overhead["records"]
            .as_array()?
            .iter()
            .find(|r| r["mode"] == mode && r["block"] == block)
    }

    fn scenarios(&self) -> Vec<&Value> {
        self.realtime["scenarios"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    }

    /// Samples of one list field pooled over the realtime scenarios that match `pick`.
    fn pooled(&self, field: &str, pick: impl Fn(&Value) -> bool) -> Vec<f64> {
        self.scenarios()
            .into_iter()
            .filter(|s| pick(s))
            .flat_map(|s| {
                s[field]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_f64).collect::<Vec<_>>())
                    .unwrap_or_default()
            })
            .collect()
    }
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// Registers DejaVu Sans (or another sans font found on the system) for plot text. Returns
/// false when there is none: the plots are then drawn without text and the markdown says what
/// the axes are.
fn register_font() -> bool {
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

// ---- plots ------------------------------------------------------------------------------------

const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const RED: RGBColor = RGBColor(214, 39, 40);
const GREY: RGBColor = RGBColor(120, 120, 120);

type PlotResult = std::result::Result<(), Box<dyn std::error::Error>>;

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
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()?;
    }
    root.present()?;
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

fn quantiles_of(v: &Value) -> [f64; 4] {
    [
        num(&v["p50"]),
        num(&v["p95"]),
        num(&v["p99"]),
        num(&v["max"]),
    ]
}

fn plot_detection(out: &Path, d: &Data, fonts: bool) -> PlotResult {
    let calm = d.pooled("detection_us_samples", |s| s["pressure"] == false);
    let pressed = d.pooled("detection_us_samples", |s| s["pressure"] == true);
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
            quantiles_of(&d.failover["detection_us"]),
            GREEN,
        )],
        Some((500.0, "goal: p99 < 500 us")),
        fonts,
    )
}

fn plot_rebuild(out: &Path, d: &Data, fonts: bool) -> PlotResult {
    let calm = d.pooled("rebuild_ms_samples", |s| s["pressure"] == false);
    let pressed = d.pooled("rebuild_ms_samples", |s| s["pressure"] == true);
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
            quantiles_of(&d.failover["rebuild_ms"]),
            GREEN,
        )],
        Some((5.0, "goal: p99 < 5 ms")),
        fonts,
    )
}

const MODE_COLORS: [(&str, RGBColor); 3] = [
    ("in_process", GREEN),
    ("single_worker", BLUE),
    ("lockstep", ORANGE),
];

fn plot_overhead(out: &Path, d: &Data, fonts: bool) -> PlotResult {
    let path = out.join("overhead.png");
    let root = BitMapBackend::new(&path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(600);
    let blocks: Vec<u64> = super::overhead::BLOCKS.iter().map(|&b| b as u64).collect();
    let series = |mode: &str, f: &dyn Fn(&Value) -> f64| -> Vec<(f64, f64)> {
        blocks
            .iter()
            .filter_map(|&b| d.overhead(mode, b).map(|r| ((b as f64).log2(), f(r))))
            .filter(|p| p.1.is_finite())
            .collect()
    };
    // Left: CPU seconds per audio second.
    let cpu_max = MODE_COLORS
        .iter()
        .flat_map(|(m, _)| series(m, &|r| num(&r["cpu_per_audio_s"])))
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
        let pts = series(mode, &|r| num(&r["cpu_per_audio_s"]));
        let s = chart.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?;
        if fonts {
            s.label(mode).legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, color.filled())))?;
    }
    if fonts {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()?;
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
        .flat_map(|(m, _)| series(m, &|r| num(&r["audio_thread_us"]["p99"])))
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
    let goal = chart.draw_series(LineSeries::new(
        [(6.0, 5.0), (6.0, 20.0)],
        RED.stroke_width(3),
    ))?;
    if fonts {
        goal.label("goal at 64: p99 < 20 us")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(3)));
    }
    for (mode, color) in MODE_COLORS {
        let p99 = series(mode, &|r| num(&r["audio_thread_us"]["p99"]));
        let p50 = series(mode, &|r| num(&r["audio_thread_us"]["p50"]));
        let s = chart.draw_series(LineSeries::new(p99.clone(), color.stroke_width(2)))?;
        if fonts {
            s.label(mode).legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
        chart.draw_series(p99.into_iter().map(|p| Circle::new(p, 4, color.filled())))?;
        chart.draw_series(LineSeries::new(p50, color.stroke_width(1)))?;
    }
    if fonts {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// The eight (block, latency, kills) groups of the realtime scenarios, in plot order.
fn groups(d: &Data) -> Vec<(String, Option<&Value>, Option<&Value>)> {
    let mut out = Vec::new();
    for block in [64u64, 256] {
        for latency in [0, block] {
            for kills in [false, true] {
                let find = |pressure: bool| {
                    d.scenarios().into_iter().find(|s| {
                        s["block"] == block
                            && s["latency"] == latency
                            && s["kills"] == kills
                            && s["pressure"] == pressure
                    })
                };
                let label = format!("{block}/L{latency}{}", if kills { " kill" } else { "" });
                out.push((label, find(false), find(true)));
            }
        }
    }
    out
}

fn plot_xruns(out: &Path, d: &Data, fonts: bool) -> PlotResult {
    let path = out.join("xruns.png");
    let root = BitMapBackend::new(&path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(600);
    let groups = groups(d);
    for (area, field, title) in [
        (&left, "xrun_frames", "xrun frames (fallback)"),
        (&right, "overruns", "callbacks past their period"),
    ] {
        let value = |s: Option<&Value>| s.map_or(0.0, |s| num(&s[field]));
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

// ---- markdown ---------------------------------------------------------------------------------

fn existing_notes(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let start = text.find(NOTES_BEGIN)? + NOTES_BEGIN.len();
    let end = text[start..].find(NOTES_END)? + start;
    Some(text[start..end].trim_matches('\n').to_string() + "\n")
}

/// UTC now as `YYYY-MM-DD HH:MM`.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

fn git(args: &[&str]) -> String {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The commit, and whether the engine's crates had uncommitted changes.
fn code_state() -> String {
    let commit = git(&["rev-parse", "--short", "HEAD"]);
    let dirty = git(&[
        "status",
        "--porcelain",
        "--",
        "plugin",
        "shm",
        "sandbox-worker",
        "dsp",
    ]);
    if dirty.is_empty() {
        format!("commit `{commit}`")
    } else {
        format!("commit `{commit}` with uncommitted changes in the engine's crates")
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "**met**"
    } else {
        "**not met**"
    }
}

fn f1(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "n/a".into()
    }
}

fn f2(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "n/a".into()
    }
}

fn f3(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "n/a".into()
    }
}

fn quantile_row(name: &str, unit: &str, v: &Value, fmt: fn(f64) -> String) -> String {
    format!(
        "| {name} | {} | {} | {} | {} | {} | {unit} |\n",
        fmt(num(&v["p50"])),
        fmt(num(&v["p95"])),
        fmt(num(&v["p99"])),
        fmt(num(&v["max"])),
        v["n"].as_u64().unwrap_or(0),
    )
}

fn markdown(
    d: &Data,
    command: &str,
    quick: bool,
    fonts: bool,
    notes: &str,
    code: &str,
    took: std::time::Duration,
) -> String {
    let mut md = String::new();
    let m = &d.failover["machine"];
    let fo = &d.failover;
    let scen = d.scenarios();
    let steal: u64 = scen.iter().filter_map(|s| s["steal_ms"].as_u64()).sum();
    let rt_granted = scen.iter().all(|s| s["realtime_priority"] == true);
    let _ = writeln!(md, "# Tandem: performance\n");
    let _ = writeln!(
        md,
        "Generated by `{command}` on {} ({} s). Every figure below comes from this one run; \
         each benchmark can be run alone with the command shown in its section. Figures are \
         distributions (p50/p95/p99/max, nearest rank) because this machine is shared and noisy; \
         ratios compare modes measured in the same run.{}\n",
        utc_now(),
        took.as_secs(),
        if quick {
            " **Quick run: short durations, few trials; for CI, not for conclusions.**"
        } else {
            ""
        }
    );
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(
        md,
        "| machine | {} ({} cores), Linux {} |",
        m["cpu"].as_str().unwrap_or("?"),
        m["cores"],
        m["kernel"].as_str().unwrap_or("?")
    );
    let _ = writeln!(md, "| code | {code} |");
    let _ = writeln!(
        md,
        "| host thread | `SCHED_FIFO` 20 {}; workers ask for `SCHED_FIFO` 5 |",
        if rt_granted {
            "granted"
        } else {
            "**not granted**"
        }
    );
    let _ = writeln!(
        md,
        "| hypervisor steal during `bench realtime` | {steal} ms over {} scenarios |",
        scen.len()
    );
    let _ = writeln!(
        md,
        "| sample rate | 48 kHz; the 16-voice passage of `xtask/src/bench/host.rs` |\n"
    );

    // Goals.
    let det = num(&fo["detection_us"]["p99"]);
    let det_rt = Summary::new(d.pooled("detection_us_samples", |_| true));
    let det_rt_calm = Summary::new(d.pooled("detection_us_samples", |s| s["pressure"] == false));
    let reb = num(&fo["rebuild_ms"]["p99"]);
    let reb_rt = Summary::new(d.pooled("rebuild_ms_samples", |_| true));
    let gap = fo["gap_frames_total"].as_u64().unwrap_or(u64::MAX);
    let kill_mismatch: u64 = scen
        .iter()
        .filter(|s| s["kills"] == true)
        .filter_map(|s| s["mismatched_frames"].as_u64())
        .sum();
    let lock64 = d.overhead("lockstep", 64);
    let ratio64 = lock64.map_or(f64::NAN, |r| num(&r["cpu_vs_in_process"]));
    let at64 = lock64.map_or(f64::NAN, |r| num(&r["audio_thread_us"]["p99"]));
    let rt64: Vec<&&Value> = scen
        .iter()
        .filter(|s| s["block"] == 64 && s["kills"] == true && s["pressure"] == false)
        .collect();
    let scale32 = d.scale["results"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["instances"] == 32));
    let mem32 = scale32.map_or(f64::NAN, |r| {
        num(&r["memory_beyond_dsp_kib"]) * 1024.0 / 1e6
    });
    let spawn32 = scale32.map_or(f64::NAN, |r| num(&r["activate_ms"]["max"]));
    let ready32 = scale32.map_or(f64::NAN, |r| num(&r["ready_ms"]["max"]));

    let _ = writeln!(md, "## Goals of issue 6\n");
    let _ = writeln!(md, "| goal | measured | verdict |\n|---|---|---|");
    let _ = writeln!(
        md,
        "| failover gap 0 frames in every trial | `bench failover`: {gap} frames differ from the \
         reference over {} trials; `bench realtime` with kills: {kill_mismatch} | {} |",
        fo["trials"],
        verdict(gap == 0 && kill_mismatch == 0)
    );
    let _ = writeln!(
        md,
        "| detection p99 < 0.5 ms | `bench failover` SIGKILL: p99 {} µs (n={}); `bench realtime` \
         SIGKILLs: p99 {} µs (n={}), without pressure {} µs | {} |",
        f1(det),
        fo["detection_us"]["n"],
        f1(det_rt.quantile(0.99)),
        det_rt.count(),
        f1(det_rt_calm.quantile(0.99)),
        verdict(det < 500.0 && det_rt.quantile(0.99) < 500.0)
    );
    let _ = writeln!(
        md,
        "| rebuild p99 < 5 ms | `bench failover` (all fault kinds): p99 {} ms (n={}); \
         `bench realtime` SIGKILLs: p99 {} ms (n={}) | {} |",
        f2(reb),
        fo["rebuild_ms"]["n"],
        f2(reb_rt.quantile(0.99)),
        reb_rt.count(),
        verdict(reb < 5.0 && reb_rt.quantile(0.99) < 5.0)
    );
    let _ = writeln!(
        md,
        "| lockstep CPU ≤ 2.3x in-process at 64 frames | {}x | {} |",
        f2(ratio64),
        verdict(ratio64 <= 2.3)
    );
    let _ = writeln!(
        md,
        "| audio thread p99 < 20 µs per 64-frame block | lockstep, latency one block: {} µs | {} |",
        f1(at64),
        verdict(at64 < 20.0)
    );
    let rt_text: Vec<String> = rt64
        .iter()
        .map(|s| {
            format!(
                "latency {}: {} xrun frames, {} failovers",
                s["latency"], s["xrun_frames"], s["failovers"]
            )
        })
        .collect();
    let rt_met = !rt64.is_empty() && rt64.iter().all(|s| s["xrun_frames"] == 0);
    let _ = writeln!(
        md,
        "| realtime, 64 frames, 16 voices, kill every 2 s, no pressure: 0 xruns | {} | {} |",
        rt_text.join("; "),
        verdict(rt_met)
    );
    let _ = writeln!(
        md,
        "| 32 instances: < 5 MB per instance beyond the DSP's own state | {} MB | {} |",
        f2(mem32),
        verdict(mem32 < 5.0)
    );
    let _ = writeln!(
        md,
        "| 32 instances: spawn < 20 ms each | slowest `activate` {} ms (slowest until both \
         workers verified: {} ms) | {} |\n",
        f1(spawn32),
        f1(ready32),
        verdict(spawn32 < 20.0)
    );

    let _ = writeln!(md, "## Analysis\n\n{NOTES_BEGIN}\n{notes}{NOTES_END}\n");

    // Failover.
    let kinds: Vec<&str> = fo["rebuild_ms_by_kind"]
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let _ = writeln!(md, "## Failover\n");
    let _ = writeln!(
        md,
        "`{}`: {} trials cycling through {} fault kinds ({}), block {}, latency {}, on a period \
         clock. Detection of a crash is measured from the moment `kill` returns, so only SIGKILL \
         trials give detection samples; a hang is detected by the heartbeat bound.\n",
        fo["command"].as_str().unwrap_or("?"),
        fo["trials"],
        kinds.len(),
        kinds.join(", "),
        fo["block"],
        fo["latency"]
    );
    let _ = writeln!(
        md,
        "| figure | p50 | p95 | p99 | max | n | unit |\n|---|---|---|---|---|---|---|"
    );
    md += &quantile_row("detection (crash)", "µs", &fo["detection_us"], f1);
    md += &quantile_row("detection (hang)", "ms", &fo["hang_detection_ms"], f2);
    md += &quantile_row("switch", "ns", &fo["switch_ns"], |v| format!("{v:.0}"));
    md += &quantile_row("rebuild (all kinds)", "ms", &fo["rebuild_ms"], f2);
    for (label, pressure) in [("no pressure", false), ("CPU pressure", true)] {
        let pick = |s: &Value| s["pressure"] == pressure;
        md += &quantile_row(
            &format!("detection, `bench realtime` SIGKILLs, {label}"),
            "µs",
            &Summary::new(d.pooled("detection_us_samples", pick)).json(),
            f1,
        );
        md += &quantile_row(
            &format!("kill → our own pidfd readable, {label}"),
            "µs",
            &Summary::new(d.pooled("exit_seen_us_samples", pick)).json(),
            f1,
        );
        md += &quantile_row(
            &format!("rebuild, `bench realtime` SIGKILLs, {label}"),
            "ms",
            &Summary::new(d.pooled("rebuild_ms_samples", pick)).json(),
            f2,
        );
    }
    let _ = writeln!(
        md,
        "\nGap: {gap} frames differ from the reference; xrun frames {}; leaked fds {}, leaked \
         processes {}.\n",
        fo["xruns"], fo["leaked_fds"], fo["leaked_processes"]
    );
    let _ = writeln!(
        md,
        "Compared with the Python prototype ({PROTOTYPE}): detection p50 {} µs vs 2970 µs, \
         switch p50 {} µs vs 9 µs, rebuild p50 {} ms vs 3-4 ms.\n",
        f1(num(&fo["detection_us"]["p50"])),
        f2(num(&fo["switch_ns"]["p50"]) / 1000.0),
        f2(num(&fo["rebuild_ms"]["p50"]))
    );
    let axes = |what: &str| {
        if fonts {
            String::new()
        } else {
            format!(" (No font was found for the plot's text: {what}.)")
        }
    };
    let _ = writeln!(
        md,
        "![detection](detection.png)\n\nDetection as a cumulative distribution: x is microseconds \
         (log scale), y the fraction of kills detected within x. Lines: every SIGKILL of \
         `bench realtime`, without and with CPU pressure; dots: `bench failover`'s p50, p95, p99 \
         and max (its JSON keeps only those); red: the goal.{}\n",
        axes("x is microseconds on a log scale, y the cumulative fraction")
    );
    let _ = writeln!(
        md,
        "![rebuild](rebuild.png)\n\nRebuild, the same way, in milliseconds (log scale): from \
         the kill to the new standby verified bit-identical.{}\n",
        axes("x is milliseconds on a log scale, y the cumulative fraction")
    );

    // Overhead.
    let oh = &d.overhead;
    let _ = writeln!(md, "## Overhead\n");
    let _ = writeln!(
        md,
        "`{}`: the same passage in three modes at each block size, latency one block (the \
         plugin's default), on a period clock ({} s per mode and block, {} rounds, modes \
         interleaved). CPU counts every process: this process's `getrusage` (host thread, \
         supervisor) plus each worker's exact runtime (`/proc/<pid>/task/*/schedstat`) read \
         before the engine is dropped. The audio thread's time is the wall time of each \
         `process()` call. `single_worker` is the engine with its standby stopped (`SIGSTOP`, \
         never evicted): one worker renders and the audio thread waits for it alone; the last \
         column gives the estimate the issue allowed instead (lockstep minus one worker's CPU).\n",
        oh["command"].as_str().unwrap_or("?"),
        oh["seconds_per_window"],
        oh["rounds"]
    );
    let _ = writeln!(
        md,
        "| mode | block | CPU s / audio s | x in-process | of which plugin process | workers | \
         audio thread p50 µs | p99 µs | max µs | xrun frames | lockstep minus one worker |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
    for r in oh["records"].as_array().into_iter().flatten() {
        let workers: Vec<String> = r["cpu_parts_per_audio_s"]["workers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|w| num(w) > 0.0)
            .map(|w| f3(num(w)))
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r["mode"].as_str().unwrap_or("?"),
            r["block"],
            f3(num(&r["cpu_per_audio_s"])),
            f2(num(&r["cpu_vs_in_process"])),
            f3(num(&r["cpu_parts_per_audio_s"]["plugin_process"])),
            if workers.is_empty() {
                "-".to_string()
            } else {
                workers.join(" + ")
            },
            f1(num(&r["audio_thread_us"]["p50"])),
            f1(num(&r["audio_thread_us"]["p99"])),
            f1(num(&r["audio_thread_us"]["max"])),
            r["xrun_frames"],
            r.get("single_worker_by_subtraction")
                .map_or("".to_string(), |v| f3(num(v))),
        );
    }
    let _ = writeln!(
        md,
        "\n![overhead](overhead.png)\n\nLeft: CPU seconds per audio second against the block \
         size (log scale) for the three modes. Right: the audio thread's time per block, p99 \
         (thick, dots) and p50 (thin), log scales; the red bar is the goal at 64 frames.{}\n",
        axes("left, x is the block size and y CPU seconds per audio second; right, y is microseconds")
    );

    // Realtime.
    let rt = &d.realtime;
    let _ = writeln!(md, "## Real time, pressure and kills\n");
    let _ = writeln!(
        md,
        "`{}`: {} s per scenario, 16 voices, a period clock at `SCHED_FIFO`; pressure is {} \
         busy threads at normal priority; kills are a SIGKILL of the serving worker every {} s. \
         The engine is activated at normal priority as a DAW's main thread would, so its \
         supervisor thread runs at normal priority. Overruns are callbacks that returned after \
         the end of their period (the host thread waking late counts too).\n",
        rt["command"].as_str().unwrap_or("?"),
        rt["seconds"],
        rt["pressure_threads"],
        rt["kill_every_s"]
    );
    let _ = writeln!(
        md,
        "| block | latency | pressure | kills | xrun frames | overruns | failovers | mismatched \
         frames | process() p99 µs | max µs | wake late p99 µs | failures not caused by us |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for s in &scen {
        let others = s["other_failures"].as_array().map_or(0, |a| a.len());
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s["block"],
            s["latency"],
            if s["pressure"] == true { "yes" } else { "no" },
            if s["kills"] == true {
                format!("{}", s["kills_sent"])
            } else {
                "no".into()
            },
            s["xrun_frames"],
            s["overruns"],
            s["failovers"],
            s["mismatched_frames"],
            f1(num(&s["process_us"]["p99"])),
            f1(num(&s["process_us"]["max"])),
            f1(num(&s["wake_late_us"]["p99"])),
            others
        );
    }
    let others: Vec<String> = scen
        .iter()
        .flat_map(|s| {
            s["other_failures"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |e| {
                    format!(
                        "- block {}, latency {}, pressure {}: {}",
                        s["block"],
                        s["latency"],
                        s["pressure"],
                        e.as_str().unwrap_or("?")
                    )
                })
        })
        .collect();
    if !others.is_empty() {
        let _ = writeln!(
            md,
            "\nFailures the benchmark did not cause (the engine's own words):\n\n{}",
            others.join("\n")
        );
    }
    let _ = writeln!(
        md,
        "\n![xruns](xruns.png)\n\nLeft: xrun frames per scenario, right: callbacks that \
         overran their period; each pair is without (blue) and with (orange) CPU pressure, \
         grouped by block / latency and by kills. A grey tick marks zero.{}\n",
        axes("groups left to right are 64/L0, 64/L0 kill, 64/L64, 64/L64 kill, 256/L0, 256/L0 kill, 256/L256, 256/L256 kill")
    );

    // Scale.
    let sc = &d.scale;
    let _ = writeln!(md, "## Many instances\n");
    let _ = writeln!(
        md,
        "`{}`: N engines in one process, blocks of {} frames at latency one block, driven by one \
         host thread. Memory per instance: PSS of every worker plus the growth of this process's \
         PSS since before the first activation, over N (PSS shares each page among the processes \
         that map it, so the rings, mapped by the plugin and its two workers, and the worker \
         executable, shared by all workers, are counted once). The DSP's own state is the same \
         measure for in-process reference engines: {} KiB per instance. Idle CPU: {} s with no \
         `process()` call, all processes, per wall second.\n",
        sc["command"].as_str().unwrap_or("?"),
        sc["block"],
        f1(num(&sc["dsp_state_kib_per_instance"])),
        sc["seconds"]
    );
    let _ = writeln!(
        md,
        "| instances | activate p50 ms | activate max ms | ready max ms | memory per instance MB \
         | beyond DSP state MB | idle CPU % of a core, all | per instance | busy CPU s / audio s \
         | xrun frames | overruns | failovers |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in sc["results"].as_array().into_iter().flatten() {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r["instances"],
            f2(num(&r["activate_ms"]["p50"])),
            f2(num(&r["activate_ms"]["max"])),
            f2(num(&r["ready_ms"]["max"])),
            f2(num(&r["memory_per_instance_kib"]) * 1024.0 / 1e6),
            f2(num(&r["memory_beyond_dsp_kib"]) * 1024.0 / 1e6),
            f1(num(&r["idle_cpu_per_s"]) * 100.0),
            f2(num(&r["idle_cpu_per_s_per_instance"]) * 100.0),
            f3(num(&r["busy_cpu_per_audio_s"])),
            r["xrun_frames"],
            r["overruns"],
            r["failovers"],
        );
    }
    for r in sc["results"].as_array().into_iter().flatten() {
        let reasons: Vec<String> = r["failure_reasons"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(why, n)| format!("{n} × {why}"))
            .collect();
        if !reasons.is_empty() {
            let _ = writeln!(
                md,
                "\nFailovers with {} instances, in the engine's words: {}.",
                r["instances"],
                reasons.join("; ")
            );
        }
    }
    let _ = writeln!(
        md,
        "\nThe JSON behind every table is in `{}/*.json` after a run.",
        if quick {
            "target/bench/report-quick"
        } else {
            "target/bench/report-full"
        }
    );
    md
}
