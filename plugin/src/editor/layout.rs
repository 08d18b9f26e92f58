//! Where everything sits in the editor, in logical pixels at 100 % scale.
//!
//! The layout is fixed and computed here rather than left to egui's flow, for two reasons: the
//! sections follow the signal (sound sources, then the filter, then the amplifier, the modulators
//! below, the protection panel at the bottom) and must not shift when a value's text gets
//! longer; and tests can find a control on screen (to drag it with a synthesized pointer) from
//! the same function that placed it.

use dsp::ParamId;
use egui::{pos2, vec2, Pos2, Rect};

/// The editor's width at 100 %.
pub const WIDTH: f32 = 1020.0;
/// The editor's height at 100 %.
pub const HEIGHT: f32 = 600.0;
/// The bar with the presets, the scale and the output meter.
pub const TOP_BAR: Rect = Rect {
    min: pos2(0.0, 0.0),
    max: pos2(WIDTH, 44.0),
};
/// The protection panel along the bottom.
pub const PROTECTION: Rect = Rect {
    min: pos2(GAP, 416.0),
    max: pos2(WIDTH - GAP, HEIGHT - GAP),
};

/// Space between sections.
const GAP: f32 = 8.0;
/// One control's cell: name, knob, value.
pub const CELL: egui::Vec2 = egui::Vec2 { x: 74.0, y: 94.0 };
/// Height of a section's title.
pub const TITLE: f32 = 22.0;
/// Width of the "1" / "2" row labels in the oscillator section.
const ROW_LABEL: f32 = 22.0;

/// A group of controls with a title, in signal order.
pub struct Section {
    /// What the panel is called.
    pub title: &'static str,
    /// Where it is.
    pub rect: Rect,
    /// Its controls, row by row.
    pub rows: &'static [&'static [ParamId]],
    /// Labels in front of each row (the oscillator numbers), or empty.
    pub row_labels: &'static [&'static str],
}

use ParamId::*;

const ROW1: f32 = 52.0;
const ROW1_HEIGHT: f32 = TITLE + 2.0 * CELL.y + 10.0;
const ROW2: f32 = ROW1 + ROW1_HEIGHT + GAP;
const ROW2_HEIGHT: f32 = TITLE + CELL.y + 10.0;

/// Width of a section of `columns` cells.
const fn width(columns: f32) -> f32 {
    columns * CELL.x + 16.0
}

const OSC_W: f32 = ROW_LABEL + width(5.0);
const MIX_X: f32 = GAP + OSC_W + GAP;
const FILTER_X: f32 = MIX_X + width(2.0) + GAP;
const GLOBAL_X: f32 = FILTER_X + width(3.0) + GAP;
const ROW2_W: f32 = (WIDTH - 4.0 * GAP) / 3.0;

const fn rect(x: f32, y: f32, w: f32, h: f32) -> Rect {
    Rect {
        min: pos2(x, y),
        max: pos2(x + w, y + h),
    }
}

/// Every section, in the order the signal meets them.
pub const SECTIONS: [Section; 7] = [
    Section {
        title: "Oscillators",
        rect: rect(GAP, ROW1, OSC_W, ROW1_HEIGHT),
        rows: &[
            &[Osc1Wave, Osc1Octave, Osc1Semitone, Osc1Fine, Osc1PulseWidth],
            &[Osc2Wave, Osc2Octave, Osc2Semitone, Osc2Fine, Osc2PulseWidth],
        ],
        row_labels: &["1", "2"],
    },
    Section {
        title: "Mixer",
        rect: rect(MIX_X, ROW1, width(2.0), ROW1_HEIGHT),
        rows: &[&[OscMix, SubLevel], &[NoiseLevel, InputLevel]],
        row_labels: &[],
    },
    Section {
        title: "Filter",
        rect: rect(FILTER_X, ROW1, width(3.0), ROW1_HEIGHT),
        rows: &[
            &[FilterMode, Cutoff, Resonance],
            &[FilterEnvAmount, KeyTracking],
        ],
        row_labels: &[],
    },
    Section {
        title: "Global",
        rect: rect(GLOBAL_X, ROW1, WIDTH - GAP - GLOBAL_X, ROW1_HEIGHT),
        rows: &[&[MasterGain, Polyphony], &[Glide, Bypass]],
        row_labels: &[],
    },
    Section {
        title: "Filter envelope",
        rect: rect(GAP, ROW2, ROW2_W, ROW2_HEIGHT),
        rows: &[&[FilterAttack, FilterDecay, FilterSustain, FilterRelease]],
        row_labels: &[],
    },
    Section {
        title: "Amp envelope",
        rect: rect(2.0 * GAP + ROW2_W, ROW2, ROW2_W, ROW2_HEIGHT),
        rows: &[&[AmpAttack, AmpDecay, AmpSustain, AmpRelease]],
        row_labels: &[],
    },
    Section {
        title: "LFO (mod wheel)",
        rect: rect(3.0 * GAP + 2.0 * ROW2_W, ROW2, ROW2_W, ROW2_HEIGHT),
        rows: &[&[LfoWave, LfoRate, LfoToPitch, LfoToCutoff]],
        row_labels: &[],
    },
];

/// The cell of one control: its name on top, the knob or selector, its value below.
pub fn control_rect(id: ParamId) -> Option<Rect> {
    for section in &SECTIONS {
        let label = if section.row_labels.is_empty() {
            0.0
        } else {
            ROW_LABEL
        };
        for (r, row) in section.rows.iter().enumerate() {
            if let Some(c) = row.iter().position(|&p| p == id) {
                // Centre the row's cells in the section.
                let used = row.len() as f32 * CELL.x;
                let left = section.rect.min.x + label + (section.rect.width() - label - used) / 2.0;
                let top = section.rect.min.y + TITLE + 4.0 + r as f32 * CELL.y;
                return Some(Rect::from_min_size(
                    pos2(left + c as f32 * CELL.x, top),
                    vec2(CELL.x, CELL.y),
                ));
            }
        }
    }
    None
}

/// Where the knob (or selector) of `id` is, at 100 % scale: where a pointer grabs it.
pub fn control_center(id: ParamId) -> Option<Pos2> {
    control_rect(id).map(knob_center)
}

/// The protection panel's Lockstep and Eco buttons, on its title row (tests click them).
pub fn protection_buttons() -> [Rect; 2] {
    [0.0, 1.0].map(|i| {
        Rect::from_min_size(
            pos2(PROTECTION.min.x + 110.0 + i * 74.0, PROTECTION.min.y + 3.0),
            vec2(70.0, 20.0),
        )
    })
}

/// The knob's centre inside a control cell.
pub fn knob_center(cell: Rect) -> Pos2 {
    pos2(cell.center().x, cell.min.y + 44.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parameter_has_one_place_and_nothing_overlaps() {
        let window = Rect::from_min_size(Pos2::ZERO, vec2(WIDTH, HEIGHT));
        let mut placed = Vec::new();
        for id in ParamId::ALL {
            let cell = control_rect(id).unwrap_or_else(|| panic!("{id:?} has no place"));
            let section = SECTIONS
                .iter()
                .find(|s| s.rows.iter().any(|row| row.contains(&id)))
                .unwrap();
            assert!(
                section.rect.contains_rect(cell),
                "{id:?} spills out of {}",
                section.title
            );
            placed.push((format!("{id:?}"), cell));
        }
        for s in &SECTIONS {
            assert!(
                window.contains_rect(s.rect),
                "{} outside the window",
                s.title
            );
            placed.push((s.title.to_owned(), s.rect));
        }
        placed.push(("top bar".into(), TOP_BAR));
        placed.push(("protection".into(), PROTECTION));
        assert!(window.contains_rect(PROTECTION));
        let sections = SECTIONS.len() + 2;
        let first_section = placed.len() - sections;
        for (i, (a, ra)) in placed.iter().enumerate() {
            for (b, rb) in &placed[i + 1..] {
                let touching = ra.intersect(*rb);
                let overlap = touching.width() > 0.0 && touching.height() > 0.0;
                // A control lies inside its own section; anything else must not overlap.
                let nested = i < first_section
                    && SECTIONS
                        .iter()
                        .any(|s| s.title == b && s.rect.contains_rect(*ra));
                assert!(!overlap || nested, "{a} overlaps {b}");
            }
        }
    }
}
