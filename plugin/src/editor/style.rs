//! Colours, fonts and the section frames: one look for the whole editor.

use egui::{self, pos2, Align2, Color32, FontId, Rect, Stroke, StrokeKind, Ui, Visuals};

/// Behind everything.
pub const BACKGROUND: Color32 = Color32::from_rgb(0x17, 0x19, 0x1d);
/// A section's panel.
pub const PANEL: Color32 = Color32::from_rgb(0x22, 0x25, 0x2b);
/// A section's outline.
pub const OUTLINE: Color32 = Color32::from_rgb(0x33, 0x37, 0x40);
/// The unlit part of a knob's ring.
pub const TRACK: Color32 = Color32::from_rgb(0x3a, 0x3f, 0x4a);
/// Values, arcs and highlights.
pub const ACCENT: Color32 = Color32::from_rgb(0xf0, 0xa0, 0x3c);
/// Names and most text.
pub const TEXT: Color32 = Color32::from_rgb(0xd8, 0xdc, 0xe3);
/// Secondary text (units, captions).
pub const DIM: Color32 = Color32::from_rgb(0x8b, 0x92, 0x9e);
/// A live worker, a good level.
pub const GOOD: Color32 = Color32::from_rgb(0x4c, 0xc3, 0x6f);
/// A worker joining, a hot level.
pub const WARN: Color32 = Color32::from_rgb(0xe8, 0xc5, 0x3a);
/// A lost worker, clipping, errors.
pub const BAD: Color32 = Color32::from_rgb(0xe5, 0x4b, 0x4b);

/// Text size of names and values.
pub const SMALL: f32 = 12.0;
/// Text size of section titles.
pub const TITLE: f32 = 13.5;

/// Dark visuals with the accent colour, applied once per opened window.
pub fn apply(ctx: &egui::Context) {
    let mut visuals = Visuals::dark();
    visuals.selection.bg_fill = ACCENT.gamma_multiply(0.6);
    visuals.widgets.inactive.weak_bg_fill = TRACK;
    visuals.widgets.hovered.weak_bg_fill = OUTLINE;
    visuals.override_text_color = Some(TEXT);
    ctx.set_visuals(visuals);
}

/// A section's panel and title.
pub fn section(ui: &Ui, rect: Rect, title: &str) {
    let painter = ui.painter();
    painter.rect_filled(rect, 6.0, PANEL);
    painter.rect_stroke(rect, 6.0, Stroke::new(1.0, OUTLINE), StrokeKind::Inside);
    painter.text(
        pos2(rect.min.x + 10.0, rect.min.y + 6.0),
        Align2::LEFT_TOP,
        title.to_uppercase(),
        FontId::proportional(TITLE),
        ACCENT,
    );
}

/// The label in front of a row of controls ("1", "2" for the oscillators).
pub fn row_label(ui: &Ui, first_cell: Rect, label: &str) {
    ui.painter().text(
        pos2(first_cell.min.x - 12.0, first_cell.min.y + 44.0),
        Align2::CENTER_CENTER,
        label,
        FontId::proportional(16.0),
        DIM,
    );
}
