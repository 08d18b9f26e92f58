//! The demo's picture: the waveform, the cutoff automation and the difference from the
//! in-process render, with every worker kill marked by a red line.
//!
//! Text needs a font; we use DejaVu Sans from the system if it is there and otherwise draw the
//! same picture without labels (the demo prints what each panel is).

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::FontStyle;

/// What the picture shows.
pub struct Picture<'a> {
    /// Sample rate, for the time axis.
    pub sample_rate: f32,
    /// The engine's output (left channel).
    pub output: &'a [f32],
    /// The in-process reference (left channel).
    pub reference: &'a [f32],
    /// Cutoff automation in Hz, one value per frame.
    pub cutoff: &'a [f32],
    /// Output frames at which a kill's effects would show (kill frame plus latency).
    pub kills: &'a [u64],
}

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Registers a system font for labels; false if there is none.
fn register_font() -> bool {
    for path in FONT_PATHS {
        if let Ok(bytes) = std::fs::read(path) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

/// Min and max of `signal` over `columns` equal slices.
fn envelope(signal: &[f32], columns: usize) -> Vec<(f32, f32)> {
    let per = signal.len().div_ceil(columns).max(1);
    signal
        .chunks(per)
        .map(|c| {
            c.iter()
                .fold((f32::MAX, f32::MIN), |(lo, hi), &s| (lo.min(s), hi.max(s)))
        })
        .collect()
}

/// Draws the picture into a PNG at `path`. Returns whether it has text labels.
pub fn draw(picture: &Picture, path: &Path) -> Result<bool> {
    let labels = register_font();
    let (width, height) = (1600u32, 900u32);
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let panels = root.split_evenly((3, 1));
    let seconds = picture.output.len() as f32 / picture.sample_rate;
    let columns = width as usize;
    let to_time = |frame: usize, len: usize| frame as f32 / len as f32 * seconds;

    let diff: Vec<f32> = picture
        .output
        .iter()
        .zip(picture.reference)
        .map(|(a, b)| a - b)
        .collect();
    let max_diff = diff.iter().fold(0.0f32, |m, d| m.max(d.abs()));
    let cutoff_max = picture.cutoff.iter().fold(1.0f32, |m, &c| m.max(c));
    let peak = picture.output.iter().fold(1e-3f32, |m, s| m.max(s.abs()));
    let kills: Vec<f32> = picture
        .kills
        .iter()
        .map(|&f| f as f32 / picture.sample_rate)
        .collect();

    let specs: [(&str, &[f32], f32, f32); 3] = [
        (
            "Tandem output (left), worker SIGKILLs in red",
            picture.output,
            -peak * 1.1,
            peak * 1.1,
        ),
        (
            "Cutoff automation (Hz)",
            picture.cutoff,
            0.0,
            cutoff_max * 1.05,
        ),
        (
            "Output minus in-process render (a flat line is bit-exact)",
            &diff,
            -(max_diff.max(1e-6)),
            max_diff.max(1e-6),
        ),
    ];
    for (index, (panel, (title, signal, lo, hi))) in panels.iter().zip(specs).enumerate() {
        let mut builder = ChartBuilder::on(panel);
        builder.margin(12);
        if labels {
            builder
                .caption(title, ("sans-serif", 22))
                .x_label_area_size(28)
                .y_label_area_size(60);
        }
        let mut chart = builder
            .build_cartesian_2d(0f32..seconds, lo..hi)
            .map_err(|e| anyhow!("{e}"))?;
        let mut mesh = chart.configure_mesh();
        mesh.light_line_style(WHITE);
        let scientific = |v: &f32| format!("{v:.1e}");
        let plain = |v: &f32| format!("{v:.1}");
        if labels {
            mesh.x_desc("seconds");
            // The difference panel's values are tiny (or zero): show them in scientific form.
            mesh.y_label_formatter(if index == 2 { &scientific } else { &plain });
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(|e| anyhow!("{e}"))?;
        let env = envelope(signal, columns);
        let n = env.len();
        chart
            .draw_series(env.iter().enumerate().map(|(i, &(a, b))| {
                let x = to_time(i, n);
                PathElement::new(vec![(x, a), (x, b)], BLUE)
            }))
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .draw_series(
                kills
                    .iter()
                    .map(|&t| PathElement::new(vec![(t, lo), (t, hi)], RED.stroke_width(2))),
            )
            .map_err(|e| anyhow!("{e}"))?;
    }
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_covers_the_signal() {
        let s = [0.0, 1.0, -1.0, 0.5, 0.25];
        assert_eq!(envelope(&s, 2), vec![(-1.0, 1.0), (0.25, 0.5)]);
    }
}
