//! The polyphonic synth: voice allocation, events, shared modulation, output and snapshots.
//!
//! (One file of about 730 lines: voice allocation, event handling, the per-sample loop and the
//! snapshot walk all work on the same private state, the targets, smoothers and voices, which
//! a split would have to expose to sibling modules.)
//!
//! # Lifecycle
//!
//! [`Synth::new`] allocates everything (in fact the whole synth is one fixed-size value with no
//! heap parts), then the worker calls [`Synth::set_param`] for every parameter and
//! [`Synth::render`] for each chunk, and may take [`Synth::snapshot`]s and [`Synth::restore`]
//! them into another instance at any chunk boundary.
//!
//! # Determinism
//!
//! Everything is computed one sample at a time from state that lives in the struct: parameter
//! smoothing, envelopes, glide, the LFO and all randomness (seeded PCG32 generators). Events are
//! applied at their exact sample offsets. So the output depends only on the initial state and the
//! timed events, not on the block sizes, the thread, the clock or the machine's libm (the
//! per-sample maths uses only basic IEEE operations; see `math`). Floating-point operations are
//! never reassociated (Rust has no fast-math) and no FMA is used.
//!
//! # Real-time safety
//!
//! `render`, `set_param`, `reset`, `snapshot_into` and `restore` never allocate, lock, do I/O or
//! read a clock; the only allocating method is the convenience [`Synth::snapshot`].
//!
//! # Voices
//!
//! Up to 32 voices sound at once (the Polyphony parameter, default 16). A voice that must be
//! taken for a new note is *stolen*: it fades out over 4 ms where it is while the new note
//! starts in a spare voice, so stealing never cuts a waveform. There are 32 spare voices for fades,
//! so even a full 32-note chord replacing another fades out cleanly; only more than 32 steals
//! within 4 ms would cut the most-faded voice short. The victim is the oldest released voice if
//! there is one, otherwise the quietest, where a voice still in its attack counts at the peak it
//! is heading for (else every fresh note would be the quietest and chords would steal their own
//! notes); ties go to the oldest. Each voice has a
//! fixed position in the stereo field (within ±40% pan), and voices are used in rotation, so
//! successive notes spread across the stereo image deterministically.

use crate::adsr::Shape;
use crate::event::{Event, EventKind};
use crate::lfo::Lfo;
use crate::math::exp2;
use crate::params::{ParamId, N_PARAMS, PARAM_SMOOTHERS};
use crate::rng::Rng;
use crate::smoother::{Ranged, Smoother};
use crate::snapshot::{self, Counter, Reader, SnapshotError, Visit, Visitor, Writer, HEADER};
use crate::voice::{Consts, Frame, Voice};
use std::fmt;

/// Most voices that may sound at once.
pub const MAX_VOICES: usize = 32;
/// Spare voices where stolen voices fade out.
const FADE_VOICES: usize = MAX_VOICES;
/// Every voice the synth holds, sounding or idle.
const VOICES: usize = MAX_VOICES + FADE_VOICES;
/// Fade time of a stolen voice.
const FADE_MS: f32 = 4.0;
/// Seed of all PRNGs after `new` and `reset`.
const SEED: u64 = 0x7a4d_656d_5344_5031;

// Smoothed values, by index into `Synth::sm`: where the parameters' are comes from the
// parameter table (its `smoothed` column); the controllers' follow them.
const S_OSC_OFS: [usize; 2] = [
    ParamId::Osc1Octave.first_smoother(),
    ParamId::Osc2Octave.first_smoother(),
];
const S_PW: [usize; 2] = [
    ParamId::Osc1PulseWidth.first_smoother(),
    ParamId::Osc2PulseWidth.first_smoother(),
];
/// Four crossfade weights per oscillator, one per waveform.
const S_WAVES: [usize; 2] = [
    ParamId::Osc1Wave.first_smoother(),
    ParamId::Osc2Wave.first_smoother(),
];
const S_MIX: usize = ParamId::OscMix.first_smoother();
const S_SUB: usize = ParamId::SubLevel.first_smoother();
const S_NOISE: usize = ParamId::NoiseLevel.first_smoother();
const S_CUTOFF: usize = ParamId::Cutoff.first_smoother();
const S_RES: usize = ParamId::Resonance.first_smoother();
const S_ENV: usize = ParamId::FilterEnvAmount.first_smoother();
const S_KEYTRACK: usize = ParamId::KeyTracking.first_smoother();
/// Three crossfade weights, one per filter mode.
const S_MODE: usize = ParamId::FilterMode.first_smoother();
const S_AMP_SUS: usize = ParamId::AmpSustain.first_smoother();
const S_FILT_SUS: usize = ParamId::FilterSustain.first_smoother();
const S_LFO_RATE: usize = ParamId::LfoRate.first_smoother();
const S_LFO_PITCH: usize = ParamId::LfoToPitch.first_smoother();
const S_LFO_CUT: usize = ParamId::LfoToCutoff.first_smoother();
const S_INPUT: usize = ParamId::InputLevel.first_smoother();
const S_GAIN: usize = ParamId::MasterGain.first_smoother();
const S_BYPASS: usize = ParamId::Bypass.first_smoother();
const S_BEND: usize = PARAM_SMOOTHERS;
const S_WHEEL: usize = PARAM_SMOOTHERS + 1;
/// Last, so that `tick_shared` can tick every other value before the LFO's output.
const S_LFO_OUT: usize = PARAM_SMOOTHERS + 2;
const N_SM: usize = PARAM_SMOOTHERS + 3;

/// Valid range and name of each smoothed value, for restore checks.
fn sm_range(i: usize) -> (f32, f32, &'static str) {
    let waveform = S_WAVES.iter().any(|&first| (first..first + 4).contains(&i));
    match i {
        _ if S_OSC_OFS.contains(&i) => (-49.0, 49.0, "oscillator tuning"),
        _ if S_PW.contains(&i) => (0.05, 0.95, "pulse width"),
        _ if waveform => (0.0, 1.0, "waveform weight"),
        S_CUTOFF => (4.0, 15.0, "cutoff"),
        S_ENV => (-96.0, 96.0, "filter envelope amount"),
        S_LFO_RATE => (0.05, 40.0, "lfo rate"),
        S_LFO_PITCH => (0.0, 12.0, "lfo to pitch"),
        S_LFO_CUT => (0.0, 48.0, "lfo to cutoff"),
        S_GAIN => (0.0, 2.1, "master gain"),
        S_BEND | S_LFO_OUT => (-1.0, 1.0, "pitch bend or lfo"),
        _ => (0.0, 1.0, "level"),
    }
}

/// Why a [`Synth`] could not be configured.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    /// The sample rate is not finite or outside 1 000..=2 000 000 Hz (the range the plugin
    /// validators try).
    SampleRate(f32),
    /// The maximum block is 0 or above 8192 frames.
    MaxBlock(usize),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::SampleRate(sr) => {
                write!(f, "sample rate {sr} is outside 1000..=2000000 Hz")
            }
            ConfigError::MaxBlock(n) => write!(f, "max block {n} is outside 1..=8192 frames"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Values derived from the configuration and the parameter targets; recomputed, never stored.
#[derive(Clone, Copy, Debug)]
struct Derived {
    voice: Consts,
    /// Smoothing factor of each smoothed value.
    sm_coef: [f32; N_SM],
    /// Left and right gain of each voice.
    pan: [[f32; 2]; VOICES],
    snapshot_len: usize,
}

/// The whole instrument: a plain value with no heap parts, so it can be cloned without
/// allocating (restore uses that to validate into a scratch copy).
///
/// ```
/// use dsp::{Event, EventKind, ParamId, Synth};
///
/// let mut synth = Synth::new(48_000.0, 256)?;
/// synth.set_param(ParamId::Cutoff, 1200.0);
/// let events = [Event { offset: 10, kind: EventKind::NoteOn { key: 60, velocity: 0.8 } }];
/// let (mut l, mut r) = (vec![0.0; 256], vec![0.0; 256]);
/// synth.render(&events, None, [&mut l, &mut r]);
///
/// // Carry the state over to another instance: it continues bit for bit.
/// let bytes = synth.snapshot();
/// let mut other = Synth::new(48_000.0, 256)?;
/// other.restore(&bytes)?;
/// let (mut l2, mut r2) = (vec![0.0; 256], vec![0.0; 256]);
/// synth.render(&[], None, [&mut l, &mut r]);
/// other.render(&[], None, [&mut l2, &mut r2]);
/// assert_eq!(l, l2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Synth {
    sample_rate: f32,
    max_block: usize,
    d: Derived,
    // ---- State (everything below is in the snapshot) ----
    targets: [f32; N_PARAMS],
    sm: [Smoother; N_SM],
    lfo: Lfo,
    rng: Rng,
    pedal: bool,
    /// Pitch of the latest note, where the next note glides from.
    last_pitch: f64,
    has_last: bool,
    /// Next note-on stamp.
    stamp: u64,
    /// Next voice to try (voices are used in rotation).
    next_voice: u32,
    voices: [Voice; VOICES],
}

fn voice_seed(voice: usize) -> u64 {
    SEED ^ (voice as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl Synth {
    /// Allocates everything up front. Errors: sample rate outside 1_000..=2_000_000 (or
    /// non-finite), max_block 0 or > 8192.
    ///
    /// The synth starts in the default patch with no notes sounding, as after [`Synth::reset`].
    pub fn new(sample_rate: f32, max_block: usize) -> Result<Synth, ConfigError> {
        if !(1_000.0..=2_000_000.0).contains(&sample_rate) {
            return Err(ConfigError::SampleRate(sample_rate));
        }
        if max_block == 0 || max_block > 8192 {
            return Err(ConfigError::MaxBlock(max_block));
        }
        let mut sm_coef = [Smoother::coef(0.005, sample_rate); N_SM];
        sm_coef[S_BYPASS] = Smoother::coef(0.010, sample_rate);
        sm_coef[S_LFO_OUT] = Smoother::coef(0.001, sample_rate);
        let mut pan = [[1.0; 2]; VOICES];
        for (i, p) in pan.iter_mut().enumerate() {
            // Golden-ratio sequence: neighbouring voices land far apart.
            let x = (i as f64 * 0.618_033_988_749_895).fract() as f32;
            let pos = 0.4 * (2.0 * x - 1.0);
            *p = [(1.0 - pos).sqrt(), (1.0 + pos).sqrt()];
        }
        let shape = Shape::new(sample_rate, 1.0, 1.0, 1.0);
        let mut synth = Synth {
            sample_rate,
            max_block,
            d: Derived {
                voice: Consts {
                    inv_sr: 1.0 / sample_rate,
                    a4_dt: 440.0 / sample_rate,
                    amp: shape,
                    filter: shape,
                    glide: 1.0,
                    smooth: sm_coef[0],
                    fade_step: 1.0 / (FADE_MS * 1e-3 * sample_rate),
                },
                sm_coef,
                pan,
                snapshot_len: 0,
            },
            targets: [0.0; N_PARAMS],
            sm: [Smoother::at(0.0); N_SM],
            lfo: Lfo::default(),
            rng: Rng::new(SEED),
            pedal: false,
            last_pitch: 60.0,
            has_last: false,
            stamp: 0,
            next_voice: 0,
            voices: [Voice::idle(Rng::new(SEED)); VOICES],
        };
        for id in ParamId::ALL {
            synth.targets[id.index()] = id.info().default;
            synth.retarget(id);
        }
        synth.derive();
        synth.reset();
        let mut counter = Counter::default();
        synth.clone().visit(&mut counter);
        synth.d.snapshot_len = HEADER + counter.0;
        Ok(synth)
    }

    /// The configured sample rate in Hz.
    pub fn sample_rate(&self) -> f32 {
        self.sample_rate
    }

    /// The largest block `render` accepts (fixed at construction so nothing is sized later).
    pub fn max_block(&self) -> usize {
        self.max_block
    }

    /// The current target of a parameter (plain units, as clamped and rounded by `set_param`).
    pub fn param(&self, id: ParamId) -> f32 {
        self.targets[id.index()]
    }

    /// Voices sounding now, including releasing and fading ones; for a host's voice meter
    /// and for tests (it is at most the polyphony plus the voices still fading out).
    pub fn active_voices(&self) -> usize {
        self.voices.iter().filter(|v| v.active).count()
    }

    /// Sets a parameter's target (plain units, clamped to its range, rounded for stepped kinds;
    /// NaN is ignored). No parameter jumps the sound, so automation never zips: levels,
    /// frequencies and tunings (octave and semitone included) glide there over a few
    /// milliseconds, waveform and filter-mode choices crossfade, and envelope times, glide time,
    /// LFO waveform (its output is smoothed) and polyphony (excess voices fade) take effect at
    /// once.
    ///
    /// Cheap and idempotent: setting the value a parameter already has changes nothing, so the
    /// worker may call it for every parameter at the start of every chunk.
    pub fn set_param(&mut self, id: ParamId, value: f32) {
        let Some(v) = id.sanitize(value) else {
            return;
        };
        if self.targets[id.index()] == v {
            return;
        }
        self.targets[id.index()] = v;
        self.retarget(id);
        self.derive();
        if id == ParamId::Polyphony {
            while self.live_count() > self.polyphony() {
                self.steal_one();
            }
        }
    }

    /// Points the smoothers that depend on `id` at its new target.
    fn retarget(&mut self, id: ParamId) {
        use ParamId::*;
        let t = |p: ParamId| self.targets[p.index()];
        let osc_ofs = |o: ParamId, s: ParamId, f: ParamId| t(o) * 12.0 + t(s) + t(f) * 0.01;
        match id {
            Osc1Octave | Osc1Semitone | Osc1Fine => {
                self.sm[S_OSC_OFS[0]].target = osc_ofs(Osc1Octave, Osc1Semitone, Osc1Fine)
            }
            Osc2Octave | Osc2Semitone | Osc2Fine => {
                self.sm[S_OSC_OFS[1]].target = osc_ofs(Osc2Octave, Osc2Semitone, Osc2Fine)
            }
            Osc1Wave | Osc2Wave => {
                let (osc, wave) = if id == Osc1Wave {
                    (0, t(Osc1Wave))
                } else {
                    (1, t(Osc2Wave))
                };
                for w in 0..4 {
                    self.sm[S_WAVES[osc] + w].target = (w as f32 == wave) as u32 as f32;
                }
            }
            FilterMode => {
                let m = t(FilterMode);
                for w in 0..3 {
                    self.sm[S_MODE + w].target = (w as f32 == m) as u32 as f32;
                }
            }
            Osc1PulseWidth => self.sm[S_PW[0]].target = t(id),
            Osc2PulseWidth => self.sm[S_PW[1]].target = t(id),
            OscMix => self.sm[S_MIX].target = t(id),
            SubLevel => self.sm[S_SUB].target = t(id),
            NoiseLevel => self.sm[S_NOISE].target = t(id),
            Cutoff => self.sm[S_CUTOFF].target = t(id).log2(),
            Resonance => self.sm[S_RES].target = t(id),
            FilterEnvAmount => self.sm[S_ENV].target = t(id),
            KeyTracking => self.sm[S_KEYTRACK].target = t(id),
            FilterSustain => self.sm[S_FILT_SUS].target = t(id),
            AmpSustain => self.sm[S_AMP_SUS].target = t(id),
            LfoRate => self.sm[S_LFO_RATE].target = t(id),
            LfoToPitch => self.sm[S_LFO_PITCH].target = t(id),
            LfoToCutoff => self.sm[S_LFO_CUT].target = t(id),
            InputLevel => self.sm[S_INPUT].target = t(id),
            MasterGain => self.sm[S_GAIN].target = 10f32.powf(t(id) / 20.0),
            Bypass => self.sm[S_BYPASS].target = t(id),
            // Read directly from the targets or through `derive`.
            FilterAttack | FilterDecay | FilterRelease | AmpAttack | AmpDecay | AmpRelease
            | LfoWave | Glide | Polyphony => {}
        }
    }

    /// Recomputes the values derived from the targets (envelope and glide factors).
    fn derive(&mut self) {
        use ParamId::*;
        let t = |p: ParamId| self.targets[p.index()];
        let sr = self.sample_rate;
        let c = &mut self.d.voice;
        c.amp = Shape::new(sr, t(AmpAttack), t(AmpDecay), t(AmpRelease));
        c.filter = Shape::new(sr, t(FilterAttack), t(FilterDecay), t(FilterRelease));
        // Glide time is the time to cover 99% of the interval.
        let glide_samples = t(Glide) as f64 * 1e-3 * sr as f64;
        c.glide = if glide_samples < 1.0 {
            1.0
        } else {
            1.0 - (-(100f64.ln()) / glide_samples).exp()
        };
    }

    fn polyphony(&self) -> usize {
        self.targets[ParamId::Polyphony.index()] as usize
    }

    fn live_count(&self) -> usize {
        self.voices.iter().filter(|v| v.live()).count()
    }

    /// Fades out one live voice: the oldest released one, else the quietest (then the oldest).
    fn steal_one(&mut self) {
        let mut best: Option<(usize, bool, f64, u64)> = None;
        for (i, v) in self.voices.iter().enumerate() {
            if !v.live() {
                continue;
            }
            let released = !v.gate;
            let cand = (i, released, v.loudness(), v.stamp);
            best = match best {
                None => Some(cand),
                Some(b) => {
                    let better = match (released, b.1) {
                        (true, false) => true,
                        (false, true) => false,
                        (true, true) => v.stamp < b.3,
                        (false, false) => cand.2 < b.2 || (cand.2 == b.2 && v.stamp < b.3),
                    };
                    Some(if better { cand } else { b })
                }
            };
        }
        if let Some((i, ..)) = best {
            self.voices[i].steal();
        }
    }

    fn note_on(&mut self, key: u8, velocity: f32) {
        let stamp = self.stamp;
        self.stamp = self.stamp.wrapping_add(1);
        let from = if self.has_last && self.d.voice.glide < 1.0 {
            self.last_pitch
        } else {
            key as f64
        };
        self.last_pitch = key as f64;
        self.has_last = true;
        if let Some(v) = self
            .voices
            .iter_mut()
            .find(|v| v.live() && v.key == key as u32)
        {
            v.retrigger(velocity, stamp);
            return;
        }
        while self.live_count() >= self.polyphony() {
            self.steal_one();
        }
        let start = self.next_voice as usize;
        let voice = (0..VOICES)
            .map(|j| (start + j) % VOICES)
            .find(|&i| !self.voices[i].active)
            .unwrap_or_else(|| {
                // Every spare voice is fading: cut the most faded (rare; see the module docs).
                let mut best = 0;
                for (i, v) in self.voices.iter().enumerate() {
                    if v.fading
                        && (!self.voices[best].fading
                            || v.loudness() < self.voices[best].loudness())
                    {
                        best = i;
                    }
                }
                best
            });
        self.next_voice = ((voice + 1) % VOICES) as u32;
        self.voices[voice].start(key, velocity, stamp, from);
    }

    fn apply(&mut self, kind: EventKind) {
        match kind {
            EventKind::NoteOn { key, velocity } => self.note_on(key, velocity),
            EventKind::NoteOff { key } => {
                let pedal = self.pedal;
                for v in self.voices.iter_mut() {
                    if v.live() && v.gate && v.key == key as u32 {
                        v.key_up(pedal);
                    }
                }
            }
            EventKind::PitchBend(b) => self.sm[S_BEND].target = b,
            EventKind::ModWheel(w) => self.sm[S_WHEEL].target = w,
            EventKind::Sustain(on) => {
                self.pedal = on;
                if !on {
                    for v in self.voices.iter_mut() {
                        if v.live() && v.sustained {
                            v.release();
                        }
                    }
                }
            }
            EventKind::AllNotesOff => {
                for v in self.voices.iter_mut() {
                    if v.live() {
                        v.release();
                    }
                }
            }
            EventKind::Reset => self.reset(),
            EventKind::Param { id, value } => self.set_param(id, value),
        }
    }

    /// Advances everything voices share by one sample.
    #[inline]
    fn tick_shared(&mut self, input: f32) -> (Frame, f32, f32) {
        for i in 0..S_LFO_OUT {
            self.sm[i].tick(self.d.sm_coef[i]);
        }
        let v = |i: usize| self.sm[i].value;
        let inc = v(S_LFO_RATE) as f64 / self.sample_rate as f64;
        let wave = self.targets[ParamId::LfoWave.index()] as u32;
        self.sm[S_LFO_OUT].target = self.lfo.tick(wave, inc, &mut self.rng);
        let lfo = self.sm[S_LFO_OUT].tick(self.d.sm_coef[S_LFO_OUT]);
        let v = |i: usize| self.sm[i].value;
        let wheel_lfo = lfo * v(S_WHEEL);
        let waves = |o: usize| {
            let b = S_WAVES[o];
            [v(b), v(b + 1), v(b + 2), v(b + 3)]
        };
        let pitch_mod = 2.0 * v(S_BEND) + wheel_lfo * v(S_LFO_PITCH);
        let frame = Frame {
            pitch_mod,
            ratio: [
                exp2((v(S_OSC_OFS[0]) + pitch_mod) * (1.0 / 12.0)),
                exp2((v(S_OSC_OFS[1]) + pitch_mod) * (1.0 / 12.0)),
            ],
            pw: [v(S_PW[0]), v(S_PW[1])],
            waves: [waves(0), waves(1)],
            mix: v(S_MIX),
            sub: v(S_SUB),
            noise: v(S_NOISE),
            input: input * v(S_INPUT),
            cutoff_oct: v(S_CUTOFF),
            k: crate::vcf::damping(v(S_RES)),
            env_oct: v(S_ENV) * (1.0 / 12.0),
            keytrack: v(S_KEYTRACK),
            cut_mod_oct: wheel_lfo * v(S_LFO_CUT) * (1.0 / 12.0),
            mode: [v(S_MODE), v(S_MODE + 1), v(S_MODE + 2)],
            amp_sustain: v(S_AMP_SUS),
            filter_sustain: v(S_FILT_SUS),
        };
        (frame, v(S_GAIN), v(S_BYPASS))
    }

    /// Renders `out[0].len()` frames (== `out[1].len()`, <= `max_block`; panics only on that
    /// programmer error). `events` sorted by offset, each offset < frames (events with
    /// out-of-range offsets or invalid fields are ignored, never panic; an event whose offset is
    /// below an earlier one's is applied at the earlier offset). `input` is an optional stereo
    /// input of the same length (missing or non-finite samples count as silence). No
    /// allocation, lock, I/O or clock.
    pub fn render(&mut self, events: &[Event], input: Option<[&[f32]; 2]>, out: [&mut [f32]; 2]) {
        let [out_l, out_r] = out;
        let frames = out_l.len();
        assert!(
            out_r.len() == frames && frames <= self.max_block,
            "render: {} and {} frames, max block {}",
            frames,
            out_r.len(),
            self.max_block
        );
        let sample = |ch: Option<&[f32]>, n: usize| {
            let x = ch.and_then(|c| c.get(n)).copied().unwrap_or(0.0);
            if x.is_finite() {
                x.clamp(-64.0, 64.0)
            } else {
                0.0
            }
        };
        let (in_l, in_r) = match input {
            Some([l, r]) => (Some(l), Some(r)),
            None => (None, None),
        };
        let mut next = 0;
        for n in 0..frames {
            while let Some(e) = events.get(next) {
                if e.offset as usize > n {
                    break;
                }
                if e.is_valid() {
                    self.apply(e.kind);
                }
                next += 1;
            }
            let (dry_l, dry_r) = (sample(in_l, n), sample(in_r, n));
            let (frame, gain, bypass) = self.tick_shared(0.5 * (dry_l + dry_r));
            let (mut l, mut r) = (0.0f32, 0.0f32);
            for (v, pan) in self.voices.iter_mut().zip(&self.d.pan) {
                if v.active {
                    let y = v.tick(&frame, &self.d.voice);
                    l += y * pan[0];
                    r += y * pan[1];
                }
            }
            let wet = gain * (1.0 - bypass);
            out_l[n] = l * wet + dry_l * bypass;
            out_r[n] = r * wet + dry_r * bypass;
        }
    }

    /// Returns to the just-configured state (all voices off, smoothers at their targets, PRNG
    /// reseeded, controllers centred, pedal up), keeping parameter targets. Abrupt by design:
    /// it is for a transport reset or a fresh start, not for musical use.
    pub fn reset(&mut self) {
        self.sm[S_BEND].target = 0.0;
        self.sm[S_WHEEL].target = 0.0;
        self.sm[S_LFO_OUT].target = 0.0;
        for s in &mut self.sm {
            s.value = s.target;
        }
        self.lfo = Lfo::default();
        self.rng = Rng::new(SEED);
        self.pedal = false;
        self.last_pitch = 60.0;
        self.has_last = false;
        self.stamp = 0;
        self.next_voice = 0;
        for (i, v) in self.voices.iter_mut().enumerate() {
            *v = Voice::idle(Rng::new(voice_seed(i)));
        }
    }

    /// Size in bytes of a snapshot of this synth (fixed for a given configuration).
    pub fn snapshot_len(&self) -> usize {
        self.d.snapshot_len
    }

    /// Writes the complete state as plain bytes (version tag, config, length, a checksum, then
    /// every field); no allocation. Err if buf is too small. Returns the bytes written.
    ///
    /// The format (header, version, checksum, then every field in a fixed order) is defined in
    /// the `snapshot` module. The checksum catches torn or damaged copies; restore still checks
    /// every field, so a matching checksum is never what makes bytes safe.
    pub fn snapshot_into(&self, buf: &mut [u8]) -> Result<usize, SnapshotError> {
        let len = self.snapshot_len();
        if buf.len() < len {
            return Err(SnapshotError::BufferTooSmall {
                needed: len,
                got: buf.len(),
            });
        }
        let (head, body) = buf[..len].split_at_mut(HEADER);
        // The walk takes `&mut` so that one function both reads and writes; a copy on the
        // stack (no heap) keeps `self` untouched.
        let mut copy = self.clone();
        let mut w = Writer::new(body);
        copy.visit(&mut w);
        debug_assert_eq!(w.pos(), len - HEADER);
        snapshot::write_header(head, self.sample_rate, self.max_block, body);
        Ok(len)
    }

    /// The snapshot in a fresh vector (allocates; for use outside the audio path).
    pub fn snapshot(&self) -> Vec<u8> {
        let mut v = vec![0; self.snapshot_len()];
        let n = self
            .snapshot_into(&mut v)
            .expect("buffer sized by snapshot_len");
        debug_assert_eq!(n, v.len());
        v
    }

    /// Restores a snapshot taken from a synth with the same sample rate and max block, after
    /// which rendering continues bit-identically to the synth it was taken from.
    ///
    /// Refuses (Err, never panic) bytes of another version, size, configuration, a bad
    /// checksum, or field values that are out of range (NaN, voice counts beyond the polyphony,
    /// smoothers inconsistent with their parameters). On error `self` is unchanged. No
    /// allocation.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let payload =
            snapshot::check_header(bytes, self.snapshot_len(), self.sample_rate, self.max_block)?;
        let mut tmp = self.clone();
        let mut r = Reader::new(payload);
        tmp.visit(&mut r);
        r.finish()?;
        tmp.check()?;
        tmp.derive();
        for voice in &mut tmp.voices {
            voice.refresh();
        }
        *self = tmp;
        Ok(())
    }

    /// Cross-field invariants a running synth always satisfies.
    fn check(&self) -> Result<(), SnapshotError> {
        for id in ParamId::ALL {
            let t = self.targets[id.index()];
            if id.sanitize(t).map(f32::to_bits) != Some(t.to_bits()) {
                return Err(SnapshotError::Field("parameter target"));
            }
        }
        // The smoothers' targets must be what the parameter targets imply.
        let mut expect = self.clone();
        for id in ParamId::ALL {
            expect.retarget(id);
        }
        let controllers = [S_BEND, S_WHEEL, S_LFO_OUT];
        for i in 0..N_SM {
            if !controllers.contains(&i)
                && expect.sm[i].target.to_bits() != self.sm[i].target.to_bits()
            {
                return Err(SnapshotError::Field("smoother target"));
            }
        }
        if self.stamp > u64::MAX / 2 {
            return Err(SnapshotError::Field("note counter"));
        }
        if self.live_count() > self.polyphony() {
            return Err(SnapshotError::Field("more voices than the polyphony"));
        }
        for v in &self.voices {
            if v.active && v.stamp >= self.stamp {
                return Err(SnapshotError::Field("voice stamp"));
            }
            if v.active && v.amp_env.stage == crate::adsr::IDLE {
                return Err(SnapshotError::Field("active voice with idle envelope"));
            }
        }
        Ok(())
    }
}

impl Visit for Synth {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        for id in ParamId::ALL {
            let info = id.info();
            v.f32(
                &mut self.targets[id.index()],
                info.min,
                info.max,
                "parameter target",
            );
        }
        for (i, s) in self.sm.iter_mut().enumerate() {
            let (lo, hi, what) = sm_range(i);
            Ranged { s, lo, hi, what }.visit(v);
        }
        self.lfo.visit(v);
        self.rng.visit(v);
        v.bool(&mut self.pedal, "sustain pedal");
        v.f64(&mut self.last_pitch, 0.0, 127.0, "last pitch");
        v.bool(&mut self.has_last, "last pitch flag");
        v.u64(&mut self.stamp);
        v.u32(&mut self.next_voice, VOICES as u32 - 1, "next voice");
        for voice in &mut self.voices {
            voice.visit(v);
        }
    }
}
