//! The host's view of Tandem's parameters, built at run time from `dsp`'s parameter table.
//!
//! `dsp::ParamId::info()` is the single source of truth for every synth parameter's stable id,
//! name, unit, range, default and kind. We build one nice-plug parameter per table entry here
//! instead of deriving `Params` on a struct with a field per knob, because a derived struct would
//! be a second copy of the table that could drift from the one the workers use. The cost is a
//! manual (`unsafe`) `Params` impl, which only has to hand out pointers to parameters that live
//! as long as `self`.
//!
//! Values reach the engine in plain units, indexed by `ParamId::index()`: continuous values as
//! they are, stepped values as integers, choices as their index, toggles as 0 or 1. Smoothing is
//! the DSP's job (it is part of the state both workers share), so these parameters have none.
//!
//! Besides the synth's parameters there are two plugin settings, both non-automatable, saved with
//! the project, and applied when the host restarts the plugin: [`LATENCY_ID`], the latency `L` in
//! frames (docs/ARCHITECTURE.md, "Timing"), and [`PROTECTION_ID`], Lockstep or Eco (the engine's
//! `Protection`, docs/ARCHITECTURE.md, "Protection").

mod text;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use dsp::{ParamId, ParamKind, N_PARAMS};
use nice_plug::plugin::{ParamValue, PluginState};
use nice_plug::prelude::*;

use crate::engine::Protection;

/// Stable id of the latency setting.
pub const LATENCY_ID: &str = "latency";
/// The latency setting's value for "one host block": `L` equals the host's largest block.
pub const LATENCY_ONE_BLOCK: i32 = -1;
/// The largest latency, in frames, a user can choose (85 ms at 48 kHz).
pub const MAX_LATENCY: i32 = 4096;
/// The latency setting of a new instance. See [`TandemParams::latency_frames`] for why.
pub const DEFAULT_LATENCY: i32 = LATENCY_ONE_BLOCK;

/// Stable id of the protection setting.
pub const PROTECTION_ID: &str = "protection";

/// The protection setting as the host shows and saves it: by name, and by a stable id in the
/// project (so the variants may be reordered). The engine's [`Protection`] is what it selects.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtectionSetting {
    /// Two workers render in lockstep ([`Protection::Lockstep`]).
    #[id = "lockstep"]
    #[name = "Lockstep"]
    Lockstep,
    /// One worker renders, a standby sleeps ([`Protection::Eco`]).
    #[id = "eco"]
    #[name = "Eco"]
    Eco,
}

impl From<ProtectionSetting> for Protection {
    fn from(setting: ProtectionSetting) -> Protection {
        match setting {
            ProtectionSetting::Lockstep => Protection::Lockstep,
            ProtectionSetting::Eco => Protection::Eco,
        }
    }
}

/// Key of the persisted field that marks a state as Tandem's own.
pub const STATE_VERSION_KEY: &str = "tandem_state_version";
/// Current version of the persisted state layout.
pub const STATE_VERSION: u32 = 1;
/// Key of the persisted field that names the preset the project last loaded.
pub const PRESET_KEY: &str = "tandem_preset";

/// One synth parameter as the host sees it.
enum SynthParam {
    /// `ParamKind::Continuous`.
    Float(FloatParam),
    /// `ParamKind::Stepped` and `ParamKind::Choice` (the value is the integer or the index).
    Int(IntParam),
    /// `ParamKind::Toggle`, including the host's bypass switch.
    Bool(BoolParam),
}

/// Runs `$body` with `$p` bound to the typed parameter inside a [`SynthParam`].
macro_rules! with_param {
    ($param:expr, $p:ident => $body:expr) => {
        match $param {
            SynthParam::Float($p) => $body,
            SynthParam::Int($p) => $body,
            SynthParam::Bool($p) => $body,
        }
    };
}

impl SynthParam {
    fn as_ptr(&self) -> ParamPtr {
        with_param!(self, p => p.as_ptr())
    }

    /// The current (modulated) value in plain units.
    fn plain(&self) -> f32 {
        match self {
            SynthParam::Float(p) => p.value(),
            SynthParam::Int(p) => p.value() as f32,
            SynthParam::Bool(p) => {
                if p.value() {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }

    /// `plain` (in the table's units) as this parameter's normalized value.
    fn normalized_of(&self, plain: f32) -> f32 {
        match self {
            SynthParam::Float(p) => p.preview_normalized(plain),
            SynthParam::Int(p) => p.preview_normalized(plain.round() as i32),
            SynthParam::Bool(p) => p.preview_normalized(plain >= 0.5),
        }
    }
}

/// Every parameter of one plugin instance, shared between the host's threads.
pub struct TandemParams {
    /// One entry per `dsp::ParamId`, at `ParamId::index()`. Never resized after construction:
    /// the host holds pointers into it.
    synth: Box<[SynthParam]>,
    /// The latency setting: frames, or [`LATENCY_ONE_BLOCK`].
    pub latency: IntParam,
    /// The protection setting; see [`TandemParams::protection`].
    pub protection: EnumParam<ProtectionSetting>,
    /// The name of the preset last loaded (empty: none), saved with the project. Only the main
    /// and GUI threads touch it.
    preset: Mutex<String>,
}

impl Default for TandemParams {
    fn default() -> Self {
        Self::new()
    }
}

impl TandemParams {
    /// Builds every parameter at its default value.
    pub fn new() -> Self {
        let synth = ParamId::ALL.iter().map(|&id| build(id)).collect();
        let latency = IntParam::new(
            "Latency",
            DEFAULT_LATENCY,
            IntRange::Linear {
                min: LATENCY_ONE_BLOCK,
                max: MAX_LATENCY,
            },
        )
        .non_automatable()
        .with_value_to_string(Arc::new(|frames| {
            if frames == LATENCY_ONE_BLOCK {
                String::from("One block")
            } else {
                format!("{frames} frames")
            }
        }))
        .with_string_to_value(Arc::new(|text| {
            let lower = text.trim().to_ascii_lowercase();
            if lower.contains("block") || lower == "auto" {
                return Some(LATENCY_ONE_BLOCK);
            }
            let frames = text::parse_number(&lower)?.round();
            (0.0..=MAX_LATENCY as f32)
                .contains(&frames)
                .then_some(frames as i32)
        }));
        let protection =
            EnumParam::new("Protection", ProtectionSetting::Lockstep).non_automatable();
        TandemParams {
            synth,
            latency,
            protection,
            preset: Mutex::new(String::new()),
        }
    }

    /// Writes every synth parameter's current value, in plain units and inside its range, into
    /// `out` (indexed by `ParamId::index()`). Real-time safe: reads atomics, never allocates.
    pub fn targets(&self, out: &mut [f32; N_PARAMS]) {
        for (i, (param, target)) in self.synth.iter().zip(out.iter_mut()).enumerate() {
            let id = ParamId::ALL[i];
            *target = id.sanitize(param.plain()).unwrap_or(id.info().default);
        }
    }

    /// Puts one synth parameter on a remote-controls page.
    pub fn add_to_page(&self, id: ParamId, page: &mut impl RemoteControlsPage) {
        match &self.synth[id.index()] {
            SynthParam::Float(p) => page.add_param(p),
            SynthParam::Int(p) => page.add_param(p),
            SynthParam::Bool(p) => page.add_param(p),
        }
    }

    /// The current value of one synth parameter in plain units.
    pub fn plain(&self, id: ParamId) -> f32 {
        self.synth[id.index()].plain()
    }

    /// The value the host or the editor last set, normalized 0..1.
    pub fn normalized(&self, id: ParamId) -> f32 {
        with_param!(&self.synth[id.index()], p => p.unmodulated_normalized_value())
    }

    /// The default value, normalized.
    pub fn default_normalized(&self, id: ParamId) -> f32 {
        with_param!(&self.synth[id.index()], p => p.default_normalized_value())
    }

    /// A plain value (the table's units) as `id`'s normalized value.
    pub fn normalized_of(&self, id: ParamId, plain: f32) -> f32 {
        self.synth[id.index()].normalized_of(plain)
    }

    /// Discrete steps of `id` (`None` for continuous parameters).
    pub fn step_count(&self, id: ParamId) -> Option<usize> {
        with_param!(&self.synth[id.index()], p => p.step_count())
    }

    /// A normalized value as the host shows it, with its unit ("3000 Hz", "Saw").
    pub fn text(&self, id: ParamId, normalized: f32) -> String {
        with_param!(&self.synth[id.index()], p => p.normalized_value_to_string(normalized, true))
    }

    /// What someone typed, as a normalized value; `None` if it is not a value of `id`.
    pub fn parse(&self, id: ParamId, text: &str) -> Option<f32> {
        with_param!(&self.synth[id.index()], p => p.string_to_normalized_value(text))
    }

    /// GUI thread: tells the host a change of `id` begins (an automation gesture).
    pub fn begin_gesture(&self, setter: &ParamSetter, id: ParamId) {
        with_param!(&self.synth[id.index()], p => setter.begin_set_parameter(p))
    }

    /// GUI thread: sets `id` through the host, inside a gesture.
    pub fn set_normalized(&self, setter: &ParamSetter, id: ParamId, normalized: f32) {
        with_param!(&self.synth[id.index()], p => setter.set_parameter_normalized(p, normalized))
    }

    /// GUI thread: ends the gesture [`TandemParams::begin_gesture`] began.
    pub fn end_gesture(&self, setter: &ParamSetter, id: ParamId) {
        with_param!(&self.synth[id.index()], p => setter.end_set_parameter(p))
    }

    /// The preset last loaded (empty: none).
    pub fn preset_name(&self) -> String {
        self.preset
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Remembers `name` as the loaded preset (saved with the project).
    pub fn set_preset_name(&self, name: &str) {
        *self
            .preset
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = name.to_owned();
    }

    /// The latency `L` in frames for a host whose blocks are `block` frames (the plugin passes
    /// the block size in use, which may be far below the advertised maximum).
    ///
    /// The default is one host block. With `L` at least the block size, every `process()` call
    /// delivers frames that were posted in an earlier call (docs/ARCHITECTURE.md, "Timing"): the workers
    /// have a whole block period to render them, so neither the wake-up tails of this 2-vCPU
    /// machine (about 50 us at p50, milliseconds at the tail) nor a worker's death followed by
    /// its twin answering can make a block late. A fixed frame count would not scale with the
    /// host: any block larger than `L` makes the call wait for the chunk it has just posted.
    /// Users who play live can pick 0 frames (synchronous) or a small fixed count.
    pub fn latency_frames(&self, block: u32) -> u32 {
        match self.latency.value() {
            LATENCY_ONE_BLOCK => block.min(MAX_LATENCY as u32),
            frames => frames.clamp(0, MAX_LATENCY) as u32,
        }
    }

    /// The protection the next activation runs with. Lockstep by default, and for projects
    /// saved before the setting existed (see [`filter_state`]).
    pub fn protection(&self) -> Protection {
        self.protection.value().into()
    }
}

/// Builds the host parameter for one table entry.
fn build(id: ParamId) -> SynthParam {
    let info = id.info();
    match info.kind {
        ParamKind::Continuous { skew_center } => {
            let (min, max) = (info.min, info.max);
            let range = match skew_center {
                // Put `center` at the middle of the slider: ((c - min) / (max - min))^f = 0.5.
                Some(center) if center > min && center < max => FloatRange::Skewed {
                    min,
                    max,
                    factor: 0.5f32.ln() / ((center - min) / (max - min)).ln(),
                },
                _ => FloatRange::Linear { min, max },
            };
            let mut param = FloatParam::new(info.name, info.default, range);
            // Per-voice offsets of the parameters the DSP can modulate per voice; the id is the
            // parameter's index, which the DSP's events carry anyway.
            if dsp::modulation::poly_mod_lane(id).is_some() {
                param = param.with_poly_modulation_id(id.index() as u32);
            }
            // Fractions 0..1 have no unit in the table; hosts and people read them as percent.
            if info.unit.is_empty() && min >= 0.0 && max <= 1.0 {
                SynthParam::Float(
                    param
                        .with_unit(" %")
                        .with_value_to_string(Arc::new(|v| text::format_number(v * 100.0)))
                        .with_string_to_value(Arc::new(|t| {
                            text::parse_number(t.trim_end_matches('%')).map(|v| v / 100.0)
                        })),
                )
            } else {
                SynthParam::Float(
                    param
                        .with_unit(info.unit)
                        .with_value_to_string(Arc::new(text::format_number))
                        .with_string_to_value(Arc::new(text::parse_number)),
                )
            }
        }
        ParamKind::Stepped => SynthParam::Int(
            IntParam::new(
                info.name,
                info.default.round() as i32,
                IntRange::Linear {
                    min: info.min.round() as i32,
                    max: info.max.round() as i32,
                },
            )
            .with_unit(info.unit)
            .with_string_to_value(Arc::new(|t| {
                text::parse_number(t).map(|v| v.round() as i32)
            })),
        ),
        ParamKind::Choice(names) => SynthParam::Int(
            IntParam::new(
                info.name,
                info.default.round() as i32,
                IntRange::Linear {
                    min: 0,
                    max: names.len() as i32 - 1,
                },
            )
            .with_value_to_string(Arc::new(move |i| {
                names
                    .get(i.max(0) as usize)
                    .map_or_else(|| i.to_string(), |n| (*n).to_owned())
            }))
            .with_string_to_value(Arc::new(move |t| text::parse_choice(t, names))),
        ),
        ParamKind::Toggle => {
            let param = BoolParam::new(info.name, info.default >= 0.5)
                .with_string_to_value(Arc::new(text::parse_toggle));
            // The host's bypass switch: the DSP crossfades to the dry input, so it is declicked.
            if id == ParamId::Bypass {
                SynthParam::Bool(
                    param
                        .make_bypass()
                        .with_value_to_string(formatters::v2s_bool_bypass()),
                )
            } else {
                SynthParam::Bool(param.with_value_to_string(Arc::new(|on| {
                    String::from(if on { "On" } else { "Off" })
                })))
            }
        }
    }
}

// SAFETY: every `ParamPtr` handed out points into `self.synth` (a boxed slice that is never
// resized or moved out of) or at `self.latency` or `self.protection`, so it stays valid as long as `self`, which the
// wrappers keep alive in an `Arc` for as long as they use the pointers.
unsafe impl Params for TandemParams {
    fn param_map(&self) -> Vec<(String, ParamPtr, String)> {
        let mut map: Vec<_> = ParamId::ALL
            .iter()
            .map(|id| {
                (
                    id.info().id.to_owned(),
                    self.synth[id.index()].as_ptr(),
                    String::new(),
                )
            })
            .collect();
        map.push((LATENCY_ID.to_owned(), self.latency.as_ptr(), String::new()));
        map.push((
            PROTECTION_ID.to_owned(),
            self.protection.as_ptr(),
            String::new(),
        ));
        map
    }

    fn serialize_fields(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (STATE_VERSION_KEY.to_owned(), STATE_VERSION.to_string()),
            (PRESET_KEY.to_owned(), self.preset_name()),
        ])
    }

    /// Only our own states (see [`filter_state`]) reach here with fields; a state saved before
    /// presets existed names none.
    fn deserialize_fields(&self, serialized: &BTreeMap<String, String>) {
        if serialized.contains_key(STATE_VERSION_KEY) {
            let name = serialized.get(PRESET_KEY).map_or("", String::as_str);
            self.set_preset_name(name);
        }
    }
}

/// Vets a state the host hands us before nice-plug applies it (see `Plugin::filter_state`).
///
/// A state without our version marker, or with a version we do not know, is foreign: we log it
/// and empty it, so loading it changes nothing and the plugin keeps its current sound. In our own
/// states, entries of the wrong type or with non-finite values are dropped and numbers are clamped
/// into range, so nothing a file says can put an out-of-range target in front of the workers.
/// A state saved before the protection setting existed gets Lockstep, what it ran with then,
/// rather than keeping whatever this instance had. Returns whether the state is accepted.
pub fn filter_state(state: &mut PluginState) -> bool {
    let version = state.fields.get(STATE_VERSION_KEY).map(|v| v.trim());
    if version != Some(STATE_VERSION.to_string().as_str()) {
        log::warn!(
            "Tandem: refusing a state that is not Tandem's (version marker {:?}, {} parameters); \
             keeping the current settings",
            version,
            state.params.len()
        );
        state.params.clear();
        state.fields.clear();
        return false;
    }
    state.params.retain(|key, value| {
        let kept = sanitize_entry(key, value);
        if !kept {
            log::warn!("Tandem: ignoring saved parameter {key:?} = {value:?}");
        }
        kept
    });
    state
        .params
        .entry(PROTECTION_ID.to_owned())
        .or_insert_with(|| ParamValue::I32(ProtectionSetting::Lockstep.to_index() as i32));
    true
}

/// Checks one saved parameter against the table; clamps it in place. False to drop it.
fn sanitize_entry(key: &str, value: &mut ParamValue) -> bool {
    if key == LATENCY_ID {
        return match value {
            ParamValue::I32(frames) => {
                *frames = (*frames).clamp(LATENCY_ONE_BLOCK, MAX_LATENCY);
                true
            }
            _ => false,
        };
    }
    if key == PROTECTION_ID {
        return match value {
            ParamValue::String(id) => ProtectionSetting::ids()
                .unwrap_or_default()
                .contains(&&**id),
            ParamValue::I32(index) => {
                *index = (*index).clamp(0, ProtectionSetting::variants().len() as i32 - 1);
                true
            }
            _ => false,
        };
    }
    let Some(id) = ParamId::ALL.iter().find(|id| id.info().id == key) else {
        return false;
    };
    match (id.info().kind, value) {
        (ParamKind::Continuous { .. }, ParamValue::F32(v)) if v.is_finite() => {
            *v = v.clamp(id.info().min, id.info().max);
            true
        }
        (ParamKind::Stepped | ParamKind::Choice(_), ParamValue::I32(v)) => {
            let info = id.info();
            *v = (*v).clamp(info.min.round() as i32, info.max.round() as i32);
            true
        }
        (ParamKind::Toggle, ParamValue::Bool(_)) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized_to_plain(ptr: ParamPtr, normalized: f32) -> f32 {
        // SAFETY: the pointer comes from a `TandemParams` that outlives this call.
        unsafe { ptr.preview_plain(normalized) }
    }

    #[test]
    fn one_host_param_per_table_entry_with_stable_ids() {
        let params = TandemParams::new();
        let map = params.param_map();
        assert_eq!(map.len(), N_PARAMS + 2);
        for (i, id) in ParamId::ALL.iter().enumerate() {
            assert_eq!(map[i].0, id.info().id);
        }
        assert_eq!(map[N_PARAMS].0, LATENCY_ID);
        assert_eq!(map[N_PARAMS + 1].0, PROTECTION_ID);
        let mut ids: Vec<_> = map.iter().map(|(id, _, _)| id.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), map.len(), "parameter ids must be unique");
    }

    #[test]
    fn defaults_match_the_dsp_table() {
        let params = TandemParams::new();
        let mut targets = [f32::NAN; N_PARAMS];
        params.targets(&mut targets);
        for id in ParamId::ALL {
            assert_eq!(targets[id.index()], id.info().default, "{}", id.info().id);
        }
    }

    #[test]
    fn skew_center_sits_mid_slider() {
        let params = TandemParams::new();
        let map = params.param_map();
        for id in ParamId::ALL {
            let info = id.info();
            let ptr = map[id.index()].1;
            if let ParamKind::Continuous {
                skew_center: Some(c),
            } = info.kind
            {
                let mid = normalized_to_plain(ptr, 0.5);
                assert!((mid - c).abs() <= c * 1e-3, "{}: {mid} vs {c}", info.id);
            }
            assert_eq!(normalized_to_plain(ptr, 0.0), info.min, "{}", info.id);
            assert_eq!(normalized_to_plain(ptr, 1.0), info.max, "{}", info.id);
        }
    }

    #[test]
    fn text_round_trips_for_every_param() {
        let params = TandemParams::new();
        for (id, ptr, _) in params.param_map() {
            for step in 0..=100 {
                let normalized = step as f32 / 100.0;
                // SAFETY: the pointers come from `params`, alive for the whole test.
                let (text, again) = unsafe {
                    let text = ptr.normalized_value_to_string(normalized, false);
                    let parsed = ptr
                        .string_to_normalized_value(&text)
                        .unwrap_or_else(|| panic!("{id}: could not parse {text:?}"));
                    (text, ptr.normalized_value_to_string(parsed, false))
                };
                assert_eq!(text, again, "{id} at {normalized}");
            }
        }
    }

    #[test]
    fn units_and_names_show_in_text() {
        let params = TandemParams::new();
        let map = params.param_map();
        let text = |id: ParamId, plain_normalized: f32| {
            // SAFETY: as above.
            unsafe {
                map[id.index()]
                    .1
                    .normalized_value_to_string(plain_normalized, true)
            }
        };
        assert_eq!(text(ParamId::Cutoff, 1.0), "20000 Hz");
        assert_eq!(text(ParamId::Osc1Wave, 0.0), dsp::params::OSC_WAVES[0]);
        assert_eq!(text(ParamId::Resonance, 1.0), "100 %");
        assert_eq!(text(ParamId::Bypass, 1.0), "Bypassed");
    }

    #[test]
    fn bypass_is_the_host_bypass() {
        let params = TandemParams::new();
        let map = params.param_map();
        for (id, ptr, _) in &map {
            // SAFETY: as above.
            let flags = unsafe { ptr.flags() };
            assert_eq!(
                flags.contains(ParamFlags::BYPASS),
                id == ParamId::Bypass.info().id,
                "{id}"
            );
            assert_eq!(
                flags.contains(ParamFlags::NON_AUTOMATABLE),
                id == LATENCY_ID || id == PROTECTION_ID,
                "{id}"
            );
        }
    }

    #[test]
    fn latency_setting() {
        let params = TandemParams::new();
        assert_eq!(params.latency_frames(512), 512);
        assert_eq!(params.latency_frames(100_000), MAX_LATENCY as u32);
        let ptr = params.latency.as_ptr();
        // SAFETY: as above.
        unsafe {
            let n = ptr.string_to_normalized_value("256").unwrap();
            assert_eq!(ptr.preview_plain(n), 256.0);
            let n = ptr.string_to_normalized_value("One block").unwrap();
            assert_eq!(ptr.preview_plain(n), LATENCY_ONE_BLOCK as f32);
            assert_eq!(ptr.string_to_normalized_value("99999"), None);
        }
    }

    #[test]
    fn protection_setting_is_shown_by_name_and_defaults_to_lockstep() {
        let params = TandemParams::new();
        assert_eq!(params.protection(), Protection::Lockstep);
        let ptr = params.protection.as_ptr();
        // SAFETY: as above.
        unsafe {
            assert_eq!(ptr.normalized_value_to_string(0.0, true), "Lockstep");
            assert_eq!(ptr.normalized_value_to_string(1.0, true), "Eco");
            assert_eq!(ptr.string_to_normalized_value("Eco"), Some(1.0));
        }
        // SAFETY: as above.
        unsafe { ptr._internal_set_normalized_value(1.0) };
        assert_eq!(params.protection(), Protection::Eco);
    }

    fn own_state() -> PluginState {
        PluginState {
            version: String::from("0.1.0"),
            params: BTreeMap::new(),
            fields: TandemParams::new().serialize_fields(),
        }
    }

    #[test]
    fn foreign_state_is_emptied() {
        let mut state = PluginState {
            version: String::from("9.9"),
            params: BTreeMap::from([(String::from("cutoff"), ParamValue::F32(100.0))]),
            fields: BTreeMap::new(),
        };
        assert!(!filter_state(&mut state));
        assert!(state.params.is_empty());
        let mut future = own_state();
        future
            .fields
            .insert(STATE_VERSION_KEY.to_owned(), String::from("2"));
        future
            .params
            .insert(String::from("cutoff"), ParamValue::F32(100.0));
        assert!(!filter_state(&mut future));
        assert!(future.params.is_empty());
    }

    #[test]
    fn own_state_is_sanitized() {
        let mut state = own_state();
        let entries = [
            ("cutoff", ParamValue::F32(1e9)),
            ("resonance", ParamValue::F32(f32::NAN)),
            ("polyphony", ParamValue::I32(1000)),
            ("osc1_wave", ParamValue::Bool(true)),
            ("bypass", ParamValue::Bool(true)),
            ("no_such_param", ParamValue::F32(1.0)),
            (LATENCY_ID, ParamValue::I32(-50)),
            (PROTECTION_ID, ParamValue::String(String::from("eco"))),
        ];
        for (k, v) in entries {
            state.params.insert(k.to_owned(), v);
        }
        assert!(filter_state(&mut state));
        let get = |k: &str| state.params.get(k).cloned();
        assert!(matches!(get("cutoff"), Some(ParamValue::F32(v)) if v == 20000.0));
        assert!(get("resonance").is_none());
        let max_voices = ParamId::Polyphony.info().max as i32;
        assert!(matches!(get("polyphony"), Some(ParamValue::I32(v)) if v == max_voices));
        assert!(get("osc1_wave").is_none());
        assert!(matches!(get("bypass"), Some(ParamValue::Bool(true))));
        assert!(get("no_such_param").is_none());
        assert!(matches!(
            get(LATENCY_ID),
            Some(ParamValue::I32(LATENCY_ONE_BLOCK))
        ));
        assert!(matches!(get(PROTECTION_ID), Some(ParamValue::String(id)) if id == "eco"));

        for (value, kept) in [
            (ParamValue::String(String::from("turbo")), None),
            (ParamValue::F32(1.0), None),
            (ParamValue::I32(7), Some(ParamValue::I32(1))),
        ] {
            let mut state = own_state();
            state.params.insert(PROTECTION_ID.to_owned(), value);
            assert!(filter_state(&mut state));
            // A value we cannot read is dropped and the setting is Lockstep, as in an old project.
            let want = kept.unwrap_or(ParamValue::I32(0));
            assert_eq!(
                format!("{:?}", state.params.get(PROTECTION_ID)),
                format!("{:?}", Some(&want))
            );
        }
    }

    #[test]
    fn a_state_from_before_the_protection_setting_loads_as_lockstep() {
        let mut state = own_state();
        state
            .params
            .insert(String::from("cutoff"), ParamValue::F32(100.0));
        assert!(filter_state(&mut state));
        assert!(matches!(
            state.params.get(PROTECTION_ID),
            Some(ParamValue::I32(0))
        ));
        assert_eq!(ProtectionSetting::Lockstep.to_index(), 0);
    }
}
