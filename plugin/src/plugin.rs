//! The nice-plug `Plugin`: Tandem as a CLAP and VST3 instrument.
//!
//! The plugin object itself is thin. It owns the parameters and, while active, one
//! [`Engine`](crate::engine::Engine), which owns the two worker processes. Its lifecycle, in the
//! order the host drives it:
//!
//! 1. **Instantiate** (`Default`): parameters at their defaults, buffers for events allocated.
//!    No processes yet, so scanning a plugin folder stays cheap.
//! 2. **Activate** (main thread): build the [`EngineConfig`] from the host's sample rate, largest
//!    block, process mode, our latency setting (by default one block: the block size the host
//!    actually uses, see `block_size`) and our protection setting (Lockstep or Eco). An engine with the same config is kept (hosts
//!    reactivate after loading state, and respawning the workers there would be wasted work);
//!    one that only differs in realtime/offline mode is switched in place; anything else replaces
//!    it. Report the latency `L` to the host. On failure (no worker executable, no shared
//!    memory) log why and return `false`; never panic into the host.
//! 3. **Reset** (any thread, real-time): reset the DSP in both workers through the chunk stream.
//! 4. **Process** (audio thread, real-time): translate the block's events into the synth's,
//!    read every parameter's current value, hand both to the engine, which writes the block
//!    delivered `L` frames late. No allocation, no locks, no logging here; the
//!    `assert_process_allocs` feature makes debug builds abort if that slips.
//! 5. **Deactivate**: keep the engine (its workers sleep on their futex), so a reactivation
//!    with the same config is instant. **Drop**: the engine kills and reaps its workers.
//!
//! With `SAMPLE_ACCURATE_AUTOMATION`, nice-plug splits a host block wherever a parameter
//! changes, so each `process()` call sees constant parameter targets and the change lands on
//! its exact sample.

mod block_size;
mod controls;
mod midi;

use std::num::NonZeroU32;
use std::sync::Arc;

use dsp::{ParamId, N_PARAMS};
use nice_plug::midi::{Channel, Key, VoiceID};
use nice_plug::prelude::*;

use nice_plug_egui::{EguiEditor, EguiEditorState};

use crate::editor::{self, OutputMeter, RunningEngine};
use crate::engine::{self, Engine, EngineConfig, EngineStatus, ProcessMode as EngineMode, Tuning};
use crate::params::{self, TandemParams};
use crate::worker_exe;
use block_size::BlockSizes;

pub use controls::REMOTE_CONTROLS;
pub use midi::{bend_from_normalized, MAX_EVENTS};

/// The Tandem instrument.
pub struct Tandem {
    params: Arc<TandemParams>,
    /// The running engine; `None` before the first successful activation.
    engine: Option<Engine>,
    /// What every engine of this instance reports to the editor's protection panel.
    status: EngineStatus,
    /// The running engine's protection and standby, for the same panel.
    running: Arc<RunningEngine>,
    /// The output's peak level for the editor's meter.
    meter: Arc<OutputMeter>,
    /// The editor's size and zoom, and whether it is open.
    editor_state: Arc<EguiEditorState>,
    /// The current block's synth events (capacity [`MAX_EVENTS`], never grown).
    events: Vec<dsp::Event>,
    /// Events of one engine-sized piece of a host block larger than the engine takes.
    piece_events: Vec<dsp::Event>,
    /// Every parameter's target for the current block, plain units.
    targets: [f32; N_PARAMS],
    /// Copies of the input channels: nice-plug processes in place, so the input sits in the
    /// output buffers that the engine is about to overwrite.
    input: [Vec<f32>; 2],
    /// Whether the active layout has the stereo input.
    has_input: bool,
    /// The block sizes the host advertises and uses, which the default latency follows.
    block_sizes: BlockSizes,
    /// Whether we already asked the host to restart for a changed latency or protection.
    restart_requested: bool,
    /// Events dropped because a block had more than [`MAX_EVENTS`].
    dropped_events: u64,
    /// Frames the engine filled with its fallback (realtime xruns), reported on the main thread.
    late_frames: u64,
    /// The voice capacity last reported to the host (CLAP voice-info), 0 before the first.
    voice_capacity: u32,
}

impl Default for Tandem {
    fn default() -> Self {
        Tandem {
            params: Arc::new(TandemParams::new()),
            engine: None,
            status: EngineStatus::new(),
            running: Arc::new(RunningEngine::default()),
            meter: Arc::new(OutputMeter::default()),
            editor_state: editor::default_state(),
            events: Vec::with_capacity(MAX_EVENTS),
            piece_events: Vec::with_capacity(MAX_EVENTS),
            targets: [0.0; N_PARAMS],
            input: [Vec::new(), Vec::new()],
            has_input: false,
            block_sizes: BlockSizes::default(),
            restart_requested: false,
            dropped_events: 0,
            late_frames: 0,
            voice_capacity: 0,
        }
    }
}

impl Tandem {
    /// The live workers' process ids (empty while inactive), for tests and diagnostics.
    pub fn worker_pids(&self) -> Vec<u32> {
        self.engine
            .as_ref()
            .map(Engine::worker_pids)
            .unwrap_or_default()
    }

    /// Main thread housekeeping: the engine's supervisor already logged each failover, rebuild
    /// and xrun as it happened, so its event queue (kept for tests and the demo) is only emptied
    /// here to keep it from growing. Our own counters are reported as a summary; the late-frame
    /// total is final here (processing has stopped), which tests rely on.
    fn flush_log(&mut self) {
        if let Some(engine) = &self.engine {
            engine.drain_events();
        }
        if self.late_frames > 0 {
            log::warn!(
                "Tandem: {} frames were late and faded out (realtime xruns)",
                self.late_frames
            );
            self.late_frames = 0;
        }
        if self.dropped_events > 0 {
            log::warn!(
                "Tandem: dropped {} events from blocks with more than {MAX_EVENTS}",
                self.dropped_events
            );
            self.dropped_events = 0;
        }
    }
}

impl Drop for Tandem {
    fn drop(&mut self) {
        self.flush_log();
    }
}

/// The engine's mode for the host's.
fn engine_mode(mode: nice_plug::prelude::ProcessMode) -> EngineMode {
    match mode {
        nice_plug::prelude::ProcessMode::Offline => EngineMode::Offline,
        nice_plug::prelude::ProcessMode::Realtime | nice_plug::prelude::ProcessMode::Buffered => {
            EngineMode::Realtime
        }
    }
}

impl Plugin for Tandem {
    const NAME: &'static str = "Tandem";
    const VENDOR: &'static str = "Tandem";
    const URL: &'static str = "";
    const EMAIL: &'static str = "";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[
        AudioIOLayout {
            main_input_channels: None,
            main_output_channels: NonZeroU32::new(2),
            names: PortNames {
                layout: Some("Stereo out"),
                main_output: Some("Output"),
                ..PortNames::const_default()
            },
            ..AudioIOLayout::const_default()
        },
        AudioIOLayout {
            main_input_channels: NonZeroU32::new(2),
            main_output_channels: NonZeroU32::new(2),
            names: PortNames {
                layout: Some("Stereo in (to the filter), stereo out"),
                main_input: Some("Filter input"),
                main_output: Some("Output"),
                ..PortNames::const_default()
            },
            ..AudioIOLayout::const_default()
        },
    ];

    const MIDI_INPUT: MidiConfig = MidiConfig::MidiCCs;
    const SAMPLE_ACCURATE_AUTOMATION: bool = true;

    type Editor = EguiEditor<editor::App>;
    type SysExMessage = ();
    type BackgroundTask = ();

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn editor(&mut self, _async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        editor::create(
            self.params.clone(),
            self.status.clone(),
            self.running.clone(),
            self.meter.clone(),
            self.editor_state.clone(),
        )
    }

    fn filter_state(state: &mut PluginState) {
        params::filter_state(state);
    }

    fn setup_logger() -> Option<bool> {
        Some(crate::logging::init())
    }

    fn activate(
        &mut self,
        audio_io_layout: &AudioIOLayout,
        buffer_config: &BufferConfig,
        context: &mut impl ActivateContext<Self>,
    ) -> bool {
        self.flush_log();
        // Larger host blocks are fed to the engine in pieces (see `process`).
        let max_block = (buffer_config.max_buffer_size as usize).min(engine::MAX_BLOCK);
        if max_block == 0 {
            log::error!("Tandem: the host offers a largest block of 0 frames; not activating");
            return false;
        }
        let worker_path = match worker_exe::worker_path() {
            Ok(path) => path,
            Err(why) => {
                log::error!("Tandem: cannot start its workers: {why}");
                return false;
            }
        };
        let config = EngineConfig {
            sample_rate: buffer_config.sample_rate,
            max_block,
            latency: self
                .params
                .latency_frames(self.block_sizes.activate(max_block as u32)),
            mode: engine_mode(buffer_config.process_mode),
            protection: self.params.protection(),
            worker_path,
        };
        let keep = match &mut self.engine {
            Some(engine) if *engine.config() == config => true,
            Some(engine)
                if *engine.config()
                    == (EngineConfig {
                        mode: engine.config().mode,
                        ..config.clone()
                    }) =>
            {
                engine.set_mode(config.mode);
                true
            }
            _ => false,
        };
        if !keep {
            // Stop the old workers before starting new ones, so we never run four.
            self.engine = None;
            match Engine::activate_reporting(config.clone(), Tuning::default(), self.status.clone())
            {
                Ok(engine) => {
                    log::info!(
                        "Tandem: workers {:?} up at {} Hz, blocks up to {}, latency {} frames, {:?}, {:?}",
                        engine.worker_pids(),
                        config.sample_rate,
                        config.max_block,
                        config.latency,
                        config.mode,
                        config.protection
                    );
                    self.running.started(config.protection);
                    self.engine = Some(engine);
                }
                Err(e) => {
                    log::error!("Tandem: could not start its engine: {e}");
                    return false;
                }
            }
        }
        self.has_input = audio_io_layout.main_input_channels.is_some();
        self.input = [vec![0.0; max_block], vec![0.0; max_block]];
        self.restart_requested = false;
        context.set_latency_samples(config.latency);
        true
    }

    fn reset(&mut self) {
        if let Some(engine) = &mut self.engine {
            engine.reset();
        }
    }

    fn deactivate(&mut self) {
        self.flush_log();
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        let frames = buffer.samples();

        self.events.clear();
        while let Some(event) = context.next_event() {
            self.dropped_events += midi::translate(&event, &mut self.events) as u64;
        }
        midi::fit_to_block(&mut self.events, frames);
        self.params.targets(&mut self.targets);

        let Some(engine) = &mut self.engine else {
            for channel in buffer.as_slice() {
                channel.fill(0.0);
            }
            return ProcessStatus::KeepAlive;
        };

        // A changed latency or protection setting, or a block size in use that the default
        // latency should follow, takes effect at the next activation, so ask the host for one
        // (thread-safe in both formats). The new latency is reported from `activate`, the only
        // place CLAP allows it to change.
        self.block_sizes.saw(frames);
        let max_block = engine.config().max_block;
        let wanted = self.params.latency_frames(self.block_sizes.wanted());
        let changed = wanted != engine.config().latency
            || self.params.protection() != engine.config().protection;
        if changed && !self.restart_requested {
            context.request_restart();
            self.restart_requested = true;
        }

        let channels = buffer.as_slice();
        let [left, right, ..] = channels else {
            for channel in channels {
                channel.fill(0.0);
            }
            return ProcessStatus::KeepAlive;
        };
        // The engine takes at most `max_block` frames per call: hosts with larger blocks (or
        // that break their promise) are fed in pieces.
        let mut start = 0;
        let mut next_event = 0;
        while start < frames {
            let len = (frames - start).min(max_block);
            let end = start + len;
            let events: &[dsp::Event] = if start == 0 && len == frames {
                &self.events
            } else {
                self.piece_events.clear();
                while next_event < self.events.len()
                    && (self.events[next_event].offset as usize) < end
                {
                    let mut event = self.events[next_event];
                    event.offset -= start as u32;
                    self.piece_events.push(event);
                    next_event += 1;
                }
                &self.piece_events
            };
            // The input sits in the output buffers (in-place processing); copy this piece out
            // before the engine overwrites it.
            let input = if self.has_input {
                let [in_left, in_right] = &mut self.input;
                in_left[..len].copy_from_slice(&left[start..end]);
                in_right[..len].copy_from_slice(&right[start..end]);
                Some([&in_left[..len], &in_right[..len]])
            } else {
                None
            };
            let report = engine.process(
                events,
                &self.targets,
                input,
                [&mut left[start..end], &mut right[start..end]],
            );
            self.late_frames += u64::from(report.fallback_frames);
            // The notes whose voices ended in the frames just delivered, at their samples.
            for end in engine.voice_ends() {
                // Fails only for a host that gave us no output event queue: it wants none.
                let _ = context.try_send_event(NoteEvent::VoiceTerminated {
                    timing: start as u32 + end.timing,
                    voice_id: if end.note_id >= 0 {
                        VoiceID::ID(end.note_id)
                    } else {
                        VoiceID::Wildcard
                    },
                    channel: Channel::Number(end.channel),
                    key: Key::Number(end.key),
                });
            }
            start = end;
        }
        if self.editor_state.is_open() {
            let peak = left
                .iter()
                .chain(right.iter())
                .fold(0.0f32, |m, s| m.max(s.abs()));
            self.meter.record(peak);
            self.running.standby(engine.spare_pid());
        }
        // CLAP voice-info: the voices a note may take is the polyphony setting.
        let capacity = self.targets[ParamId::Polyphony.index()] as u32;
        if capacity != self.voice_capacity {
            context.set_current_voice_capacity(capacity);
            self.voice_capacity = capacity;
        }
        ProcessStatus::Tail(tail_frames(
            &self.targets,
            engine.config().sample_rate,
            engine.config().latency,
        ))
    }
}

/// How long the output can go on after the last note-off: our latency `L` plus the amplifier's
/// release from full level down to where a voice ends (-100 dB, 5/3 of its -60 dB time), plus
/// the 4 ms fade of a stolen voice. Hosts that honour it never cut a release short.
fn tail_frames(targets: &[f32; N_PARAMS], sample_rate: f32, latency: u32) -> u32 {
    let release_s = targets[ParamId::AmpRelease.index()] as f64 * 1e-3 * 5.0 / 3.0 + 0.004;
    let frames = (release_s * sample_rate as f64).ceil() as u64 + latency as u64;
    frames.min(u32::MAX as u64 - 1) as u32
}

impl ClapPlugin for Tandem {
    const CLAP_ID: &'static str = "dev.tandem.synth";
    const CLAP_DESCRIPTION: Option<&'static str> =
        Some("A polyphonic synth whose DSP runs in two sandboxed processes in lockstep");
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] = &[
        ClapFeature::Instrument,
        ClapFeature::Synthesizer,
        ClapFeature::Stereo,
    ];
    const CLAP_POLY_MODULATION_CONFIG: Option<PolyModulationConfig> = Some(PolyModulationConfig {
        max_voice_capacity: dsp::synth::MAX_VOICES as u32,
        // One voice per key: a second note on a sounding key takes its voice over.
        supports_overlapping_voices: false,
    });

    fn remote_controls(&self, context: &mut impl RemoteControlsContext) {
        controls::pages(&self.params, context);
    }
}

impl Vst3Plugin for Tandem {
    const VST3_CLASS_ID: [u8; 16] = *b"TandemLockstepSy";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] =
        &[Vst3SubCategory::Instrument, Vst3SubCategory::Synth];
}
