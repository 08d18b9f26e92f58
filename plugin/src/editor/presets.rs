//! The preset bar: previous/next, a grouped list, saving the current sound as a user preset.

use std::path::PathBuf;

use dsp::ParamId;
use egui::{self, pos2, Align2, FontId, Layout, Rect, RichText, Ui, UiBuilder};
use nice_plug::prelude::ParamSetter;

use super::style::{ACCENT, BAD, DIM, GOOD};
use crate::params::TandemParams;
use crate::presets::{self, Preset, CATEGORIES, USER_CATEGORY};

/// The factory and user presets, and what the bar last had to say.
pub struct Browser {
    factory: Vec<Preset>,
    user: Vec<Preset>,
    /// Files in the user folder that are not valid presets (file name and why).
    problems: Vec<String>,
    dir: Option<PathBuf>,
    /// The name typed for saving.
    save_name: String,
    /// The last save's outcome: text and whether it is an error.
    message: Option<(String, bool)>,
}

impl Browser {
    /// The factory presets; the user folder is read by [`Browser::rescan`].
    pub fn new() -> Browser {
        Browser {
            factory: presets::factory(),
            user: Vec::new(),
            problems: Vec::new(),
            dir: presets::user_dir(),
            save_name: String::new(),
            message: None,
        }
    }

    /// Reads the user folder again (when the window opens and after saving).
    pub fn rescan(&mut self) {
        (self.user, self.problems) = match &self.dir {
            Some(dir) => presets::load_user(dir),
            None => (Vec::new(), Vec::new()),
        };
    }

    fn all(&self) -> impl Iterator<Item = &Preset> {
        self.factory.iter().chain(&self.user)
    }

    /// Draws the bar's left part: the name, previous/next, the list, saving.
    pub fn top_bar(&mut self, ui: &mut Ui, params: &TandemParams, setter: &ParamSetter) {
        ui.painter().text(
            pos2(14.0, 22.0),
            Align2::LEFT_CENTER,
            "TANDEM",
            FontId::proportional(20.0),
            ACCENT,
        );
        let current = params.preset_name();
        let modified = self
            .all()
            .find(|p| p.name == current)
            .is_some_and(|p| !matches(p, params));
        let mut chosen: Option<Preset> = None;
        let rect = Rect::from_min_max(pos2(110.0, 8.0), pos2(700.0, 36.0));
        ui.scope_builder(
            UiBuilder::new()
                .max_rect(rect)
                .layout(Layout::left_to_right(egui::Align::Center)),
            |ui| {
                let index = self.all().position(|p| p.name == current);
                let count = self.all().count();
                if ui.button("<").on_hover_text("Previous preset").clicked() {
                    let i = index.map_or(count - 1, |i| (i + count - 1) % count);
                    chosen = self.all().nth(i).cloned();
                }
                let shown = match (current.as_str(), modified) {
                    ("", _) => String::from("(no preset)"),
                    (name, true) => format!("{name} (modified)"),
                    (name, false) => name.to_owned(),
                };
                egui::ComboBox::from_id_salt("preset")
                    .width(220.0)
                    .height(520.0)
                    .selected_text(shown)
                    .show_ui(ui, |ui| {
                        let groups = CATEGORIES.iter().copied().chain([USER_CATEGORY]);
                        for category in groups {
                            let mut members = self.all().filter(|p| {
                                p.category == category
                                    || (category == USER_CATEGORY
                                        && !CATEGORIES.contains(&p.category.as_str()))
                            });
                            let Some(first) = members.next() else {
                                continue;
                            };
                            ui.label(RichText::new(category).color(ACCENT).small());
                            for preset in std::iter::once(first).chain(members) {
                                let selected = preset.name == current;
                                if ui.selectable_label(selected, &preset.name).clicked() {
                                    chosen = Some(preset.clone());
                                }
                            }
                        }
                    });
                if ui.button(">").on_hover_text("Next preset").clicked() {
                    let i = index.map_or(0, |i| (i + 1) % count);
                    chosen = self.all().nth(i).cloned();
                }
                ui.add_space(16.0);
                ui.add(
                    egui::TextEdit::singleline(&mut self.save_name)
                        .hint_text("Name")
                        .desired_width(120.0),
                );
                if ui
                    .button("Save")
                    .on_hover_text("Save the current sound as a user preset")
                    .clicked()
                {
                    self.save(params);
                }
                if let Some((text, error)) = &self.message {
                    ui.label(
                        RichText::new(text)
                            .color(if *error { BAD } else { GOOD })
                            .small(),
                    );
                } else if !self.problems.is_empty() {
                    let n = self.problems.len();
                    ui.label(
                        RichText::new(format!("{n} preset file(s) unreadable"))
                            .color(BAD)
                            .small(),
                    )
                    .on_hover_text(self.problems.join("\n"));
                } else if self.dir.is_none() {
                    ui.label(
                        RichText::new("no data folder ($HOME unset)")
                            .color(DIM)
                            .small(),
                    );
                }
            },
        );
        if let Some(preset) = chosen {
            load(&preset, params, setter);
            self.message = None;
        }
    }

    fn save(&mut self, params: &TandemParams) {
        let name = self.save_name.trim();
        let Some(dir) = &self.dir else {
            self.message = Some((String::from("no data folder to save into"), true));
            return;
        };
        if self.factory.iter().any(|p| p.name == name) {
            self.message = Some((
                format!("\"{name}\" is a factory preset; pick another name"),
                true,
            ));
            return;
        }
        let preset = Preset {
            name: name.to_owned(),
            category: String::from(USER_CATEGORY),
            values: ParamId::ALL.map(|id| params.plain(id)),
        };
        self.message = Some(match presets::save_user(dir, &preset) {
            Ok(path) => {
                params.set_preset_name(&preset.name);
                self.rescan();
                (format!("saved {}", path.display()), false)
            }
            Err(why) => (why, true),
        });
    }
}

/// Sets every parameter the preset holds, one gesture each, and remembers its name.
fn load(preset: &Preset, params: &TandemParams, setter: &ParamSetter) {
    for id in ParamId::ALL
        .into_iter()
        .filter(|&id| presets::in_presets(id))
    {
        let normalized = params.normalized_of(id, preset.values[id.index()]);
        params.begin_gesture(setter, id);
        params.set_normalized(setter, id, normalized);
        params.end_gesture(setter, id);
    }
    params.set_preset_name(&preset.name);
}

/// Whether the current parameters are still the preset's.
fn matches(preset: &Preset, params: &TandemParams) -> bool {
    ParamId::ALL
        .into_iter()
        .filter(|&id| presets::in_presets(id))
        .all(|id| {
            (params.normalized(id) - params.normalized_of(id, preset.values[id.index()])).abs()
                < 1e-4
        })
}
