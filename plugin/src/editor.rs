//! The editor: every parameter as a knob or selector, laid out along the signal path, the
//! presets, the output level, and the protection panel that shows the workers at work and
//! chooses between Lockstep and Eco.
//!
//! It is an egui app on nice-plug-egui (baseview: X11 and OpenGL on Linux). Nothing here runs
//! on the audio thread. Parameter changes go through the host with nice-plug's `ParamSetter`
//! (begin, set, end: one automation gesture per drag), so hosts record them and the audio
//! thread sees them as ordinary parameter changes. What the panel shows comes from the
//! [`EngineStatus`] the supervisor keeps, from the [`RunningEngine`] the plugin keeps, and from
//! one atomic the audio thread raises per block ([`OutputMeter`]).

mod controls;
pub mod layout;
mod presets;
mod protection;
mod style;

pub use protection::RunningEngine;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dsp::{ParamId, ParamKind};
use nice_plug::context::gui::GuiContext;
use nice_plug_egui::{
    create_egui_editor, EguiEditor, EguiEditorState, EguiNiceSettings, Frame, NiceEguiApp,
    RepaintNotifier,
};

use crate::engine::EngineStatus;
use crate::params::TandemParams;

/// The zoom steps the scale buttons offer (1.5 for HiDPI screens).
pub const SCALES: [f32; 2] = [1.0, 1.5];
/// How often the editor redraws on its own, for the meter and the protection panel.
const REFRESH: Duration = Duration::from_millis(50);

/// The output's peak level since the editor last looked. The audio thread raises it once per
/// block with one atomic `fetch_max` (wait-free); the editor reads and resets it.
#[derive(Debug, Default)]
pub struct OutputMeter {
    peak_bits: AtomicU32,
}

impl OutputMeter {
    /// Audio thread: notes the block's largest absolute sample. For non-negative floats the
    /// bit patterns order like the values, so an integer max is a float max.
    pub fn record(&self, peak: f32) {
        if peak >= 0.0 {
            self.peak_bits.fetch_max(peak.to_bits(), Ordering::Relaxed);
        }
    }

    /// Editor: the peak since the last call, and starts over.
    pub fn take(&self) -> f32 {
        f32::from_bits(self.peak_bits.swap(0, Ordering::Relaxed))
    }
}

/// The editor's size and zoom, kept by the plugin so a reopened editor keeps its scale.
pub fn default_state() -> Arc<EguiEditorState> {
    EguiEditorState::from_size(
        nice_plug::editor::dpi::LogicalSize::new(layout::WIDTH, layout::HEIGHT),
        SCALES[0],
    )
}

/// The editor nice-plug opens when the host asks for one.
pub fn create(
    params: Arc<TandemParams>,
    status: EngineStatus,
    running: Arc<RunningEngine>,
    meter: Arc<OutputMeter>,
    state: Arc<EguiEditorState>,
) -> Option<EguiEditor<App>> {
    create_egui_editor(
        state,
        RepaintNotifier::new(),
        EguiNiceSettings::new().with_tile("Tandem"),
        App {
            params,
            status,
            running,
            meter,
            gui: None,
            controls: controls::Controls::default(),
            presets: presets::Browser::new(),
            level: protection::Level::default(),
            cpu: protection::CpuLoad::default(),
        },
    )
}

/// The editor's state while it exists (across openings of its window).
pub struct App {
    params: Arc<TandemParams>,
    status: EngineStatus,
    running: Arc<RunningEngine>,
    meter: Arc<OutputMeter>,
    /// The host connection of the open window; `None` while closed.
    gui: Option<GuiContext>,
    controls: controls::Controls,
    presets: presets::Browser,
    level: protection::Level,
    cpu: protection::CpuLoad,
}

impl NiceEguiApp for App {
    fn build(
        &mut self,
        egui_ctx: egui::Context,
        nice_gui_ctx: GuiContext,
        _frame: &mut Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        style::apply(&egui_ctx);
        self.gui = Some(nice_gui_ctx);
        self.presets.rescan();
        Ok(())
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut Frame) {
        let Some(gui) = self.gui.clone() else {
            return;
        };
        let setter = gui.param_setter();
        let params = &*self.params;
        ui.painter()
            .rect_filled(ui.max_rect().union(layout::TOP_BAR), 0.0, style::BACKGROUND);

        self.presets.top_bar(ui, params, &setter);
        let peak = self.meter.take();
        let zoom = ui.ctx().zoom_factor();
        protection::top_bar_right(ui, &mut self.level, peak, zoom);

        for section in &layout::SECTIONS {
            style::section(ui, section.rect, section.title);
            for (r, label) in section.row_labels.iter().enumerate() {
                if let Some(first) = section.rows[r]
                    .first()
                    .and_then(|&id| layout::control_rect(id))
                {
                    style::row_label(ui, first, label);
                }
            }
            for &id in section.rows.iter().flat_map(|row| row.iter()) {
                let Some(cell) = layout::control_rect(id) else {
                    continue;
                };
                match id.info().kind {
                    ParamKind::Choice(names) => {
                        self.controls.selector(ui, params, &setter, id, cell, names)
                    }
                    ParamKind::Toggle => self.controls.toggle(ui, params, &setter, id, cell),
                    ParamKind::Continuous { .. } | ParamKind::Stepped => {
                        self.controls.knob(ui, params, &setter, id, cell)
                    }
                }
            }
        }

        let snapshot = self.status.snapshot();
        protection::panel(
            ui,
            layout::PROTECTION,
            &snapshot,
            &self.running,
            &mut self.cpu,
            params,
            &setter,
        );
        ui.ctx().request_repaint_after(REFRESH);
    }

    fn editor_closed(&mut self) {
        self.gui = None;
        self.controls = controls::Controls::default();
    }
}

/// Whether `id` shows its value around the middle (bipolar: fine tune, envelope amount).
fn bipolar(id: ParamId) -> bool {
    let info = id.info();
    info.min < 0.0 && info.max > 0.0
}
