//! The controls: knobs for numbers, selectors for choices, a switch for Bypass.
//!
//! A knob: drag up or down (Shift for fine steps), double-click for the default, click the
//! value to type one (Enter applies, Escape cancels). Every change is one host gesture: begin
//! when the drag starts, values while it moves, end when it stops.

use std::f32::consts::PI;

use dsp::ParamId;
use egui::{
    self, pos2, vec2, Align2, Color32, CursorIcon, FontId, Id, Key, Rect, RichText, Sense, Shape,
    Stroke, TextEdit, Ui,
};
use nice_plug::prelude::ParamSetter;

use super::style::{ACCENT, DIM, SMALL, TEXT, TRACK};
use super::{bipolar, layout};
use crate::params::TandemParams;

/// Normalized change per logical pixel of vertical drag.
const DRAG_SPEED: f32 = 1.0 / 200.0;
/// How much slower a drag with Shift held is.
const FINE: f32 = 10.0;
/// The knob's radius.
const RADIUS: f32 = 19.0;
/// Where the ring starts (7:30 o'clock) and how far it turns, in radians (y points down).
const START: f32 = 0.75 * PI;
const SWEEP: f32 = 1.5 * PI;

/// A drag in progress: the value it has reached, before quantization and before the host has
/// applied it (the parameter only changes when the host flushes the gesture's events).
struct Drag {
    id: ParamId,
    value: f32,
}

/// Interaction state that outlives one frame.
#[derive(Default)]
pub struct Controls {
    drag: Option<Drag>,
    /// The value being typed, and for which parameter.
    typing: Option<(ParamId, String)>,
}

impl Controls {
    /// A knob with its name above and its value below, in `cell`.
    pub fn knob(
        &mut self,
        ui: &mut Ui,
        params: &TandemParams,
        setter: &ParamSetter,
        id: ParamId,
        cell: Rect,
    ) {
        let info = id.info();
        name(ui, cell, info.name);
        let center = layout::knob_center(cell);
        let grab = Rect::from_center_size(center, vec2(cell.width(), 2.0 * RADIUS + 8.0));
        let response = ui
            .interact(
                grab,
                Id::unique(("knob", id.index())),
                Sense::click_and_drag(),
            )
            .on_hover_cursor(CursorIcon::ResizeVertical)
            .on_hover_text(
                "Drag up/down · Shift+drag: fine · Double-click: default · Click the value to type",
            );

        if response.drag_started() {
            params.begin_gesture(setter, id);
            self.drag = Some(Drag {
                id,
                value: params.normalized(id),
            });
        }
        if let Some(drag) = self.drag.as_mut().filter(|d| d.id == id) {
            if response.dragged() {
                let fine = ui.input(|i| i.modifiers.shift);
                let speed = if fine { DRAG_SPEED / FINE } else { DRAG_SPEED };
                let before = quantize(params, id, drag.value);
                drag.value = (drag.value - response.drag_delta().y * speed).clamp(0.0, 1.0);
                let after = quantize(params, id, drag.value);
                if after != before {
                    params.set_normalized(setter, id, after);
                }
            }
            if response.drag_stopped() {
                params.end_gesture(setter, id);
                self.drag = None;
            }
        }
        if response.double_clicked() {
            change(params, setter, id, params.default_normalized(id));
        }

        let shown = match &self.drag {
            Some(drag) if drag.id == id => quantize(params, id, drag.value),
            _ => params.normalized(id),
        };
        paint_knob(ui, center, shown, origin(params, id), response.hovered());
        self.value_text(ui, params, setter, id, cell, shown);
    }

    /// The value under a control, which turns into a text field when clicked.
    fn value_text(
        &mut self,
        ui: &mut Ui,
        params: &TandemParams,
        setter: &ParamSetter,
        id: ParamId,
        cell: Rect,
        shown: f32,
    ) {
        let rect = Rect::from_min_size(
            pos2(cell.min.x + 2.0, cell.min.y + 70.0),
            vec2(cell.width() - 4.0, 18.0),
        );
        match &mut self.typing {
            Some((typing, text)) if *typing == id => {
                let edit = ui.put(
                    rect,
                    TextEdit::singleline(text)
                        .font(FontId::proportional(SMALL))
                        .align(Align2::CENTER_CENTER),
                );
                if !edit.has_focus() && !edit.lost_focus() {
                    edit.request_focus();
                }
                let (enter, escape) =
                    ui.input(|i| (i.key_pressed(Key::Enter), i.key_pressed(Key::Escape)));
                if enter {
                    if let Some(normalized) = params.parse(id, text) {
                        change(params, setter, id, normalized);
                    }
                }
                if enter || escape || edit.lost_focus() {
                    self.typing = None;
                }
            }
            _ => {
                let response = ui
                    .interact(rect, Id::unique(("value", id.index())), Sense::click())
                    .on_hover_cursor(CursorIcon::Text);
                if response.clicked() {
                    self.typing = Some((id, params.text(id, shown)));
                }
                ui.painter().text(
                    rect.center(),
                    Align2::CENTER_CENTER,
                    params.text(id, shown),
                    FontId::proportional(SMALL),
                    if response.hovered() { ACCENT } else { TEXT },
                );
            }
        }
    }

    /// A drop-down of the named options of a choice parameter (waveforms, filter mode).
    pub fn selector(
        &mut self,
        ui: &mut Ui,
        params: &TandemParams,
        setter: &ParamSetter,
        id: ParamId,
        cell: Rect,
        names: &[&str],
    ) {
        name(ui, cell, id.info().name);
        let current = params.plain(id).round() as usize;
        // Wider than the cell: the neighbouring knobs leave room at their sides, and the option
        // names ("Low-pass", "Triangle") then fit.
        let rect =
            Rect::from_center_size(layout::knob_center(cell), vec2(cell.width() + 8.0, 24.0));
        let mut chosen = current;
        ui.scope_builder(egui::UiBuilder::new().max_rect(rect), |ui| {
            ui.spacing_mut().button_padding.x = 3.0;
            ui.spacing_mut().icon_spacing = 2.0;
            egui::ComboBox::from_id_salt(("choice", id.index()))
                .width(rect.width())
                .truncate()
                .selected_text(
                    RichText::new(names.get(current).copied().unwrap_or("?")).size(SMALL),
                )
                .show_ui(ui, |ui| {
                    for (i, option) in names.iter().enumerate() {
                        ui.selectable_value(&mut chosen, i, *option);
                    }
                });
        });
        if chosen != current {
            change(params, setter, id, params.normalized_of(id, chosen as f32));
        }
    }

    /// An on/off switch (Bypass).
    pub fn toggle(
        &mut self,
        ui: &mut Ui,
        params: &TandemParams,
        setter: &ParamSetter,
        id: ParamId,
        cell: Rect,
    ) {
        name(ui, cell, id.info().name);
        let on = params.plain(id) >= 0.5;
        let rect =
            Rect::from_center_size(layout::knob_center(cell), vec2(cell.width() - 14.0, 24.0));
        let label = if on { "Bypassed" } else { "Active" };
        let button = egui::Button::new(label).selected(on);
        if ui.put(rect, button).clicked() {
            change(
                params,
                setter,
                id,
                params.normalized_of(id, if on { 0.0 } else { 1.0 }),
            );
        }
    }
}

/// One complete gesture: for clicks, double-clicks, typed values and choices.
fn change(params: &TandemParams, setter: &ParamSetter, id: ParamId, normalized: f32) {
    params.begin_gesture(setter, id);
    params.set_normalized(setter, id, normalized);
    params.end_gesture(setter, id);
}

/// Rounds to the parameter's steps (octaves, semitones, voices); continuous values pass.
fn quantize(params: &TandemParams, id: ParamId, normalized: f32) -> f32 {
    match params.step_count(id) {
        Some(steps) if steps > 0 => (normalized * steps as f32).round() / steps as f32,
        _ => normalized,
    }
}

/// Where a knob's lit arc starts: the middle (plain 0) for bipolar parameters, else the bottom.
fn origin(params: &TandemParams, id: ParamId) -> f32 {
    if bipolar(id) {
        params.normalized_of(id, 0.0)
    } else {
        0.0
    }
}

/// A parameter's name above its control.
fn name(ui: &Ui, cell: Rect, text: &str) {
    // The section already says "Osc 1", "Filter", "Amp": drop the prefix for the short label.
    let short = ["Osc 1 ", "Osc 2 ", "Filter ", "Amp ", "LFO "]
        .iter()
        .find_map(|prefix| text.strip_prefix(prefix))
        .unwrap_or(text);
    ui.painter().text(
        pos2(cell.center().x, cell.min.y + 6.0),
        Align2::CENTER_TOP,
        short,
        FontId::proportional(SMALL),
        DIM,
    );
}

fn arc(center: egui::Pos2, radius: f32, from: f32, to: f32) -> Vec<egui::Pos2> {
    let (a, b) = (START + SWEEP * from.min(to), START + SWEEP * from.max(to));
    let steps = ((b - a) / 0.08).ceil().max(1.0) as usize;
    (0..=steps)
        .map(|i| {
            let t = a + (b - a) * i as f32 / steps as f32;
            center + radius * vec2(t.cos(), t.sin())
        })
        .collect()
}

fn paint_knob(ui: &Ui, center: egui::Pos2, value: f32, origin: f32, hovered: bool) {
    let painter = ui.painter();
    let body = if hovered {
        Color32::from_rgb(0x3a, 0x3e, 0x48)
    } else {
        Color32::from_rgb(0x2e, 0x32, 0x3a)
    };
    painter.circle_filled(center, RADIUS - 5.0, body);
    painter.add(Shape::line(
        arc(center, RADIUS, 0.0, 1.0),
        Stroke::new(4.0, TRACK),
    ));
    if (value - origin).abs() > 1e-4 {
        painter.add(Shape::line(
            arc(center, RADIUS, origin, value),
            Stroke::new(4.0, ACCENT),
        ));
    }
    let angle = START + SWEEP * value;
    let tip = center + (RADIUS - 7.0) * vec2(angle.cos(), angle.sin());
    painter.line_segment([center, tip], Stroke::new(2.5, TEXT));
}
