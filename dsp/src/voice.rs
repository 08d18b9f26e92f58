//! One voice: two VCOs, sub and noise, input, VCF, two ADSRs and a VCA.
//!
//! The synth computes everything voices share once per sample into a [`Frame`] (smoothed
//! parameters, LFO, bend); a voice then adds only what is its own (its key, glide, velocity,
//! envelopes, phases, filter state). Everything advances per sample, so a voice's output does
//! not depend on how the host cuts blocks.

use crate::adsr::{self, Adsr, Shape};
use crate::math::exp2;
use crate::modulation::{ModBase, VoiceMods};
use crate::rng::Rng;
use crate::snapshot::{Visit, Visitor};
use crate::vcf::{self, Svf};
use crate::vco;

/// Fixed voice gain, leaving headroom for chords at the default master gain.
const VOICE_GAIN: f32 = 0.25;
/// Largest phase value (the largest `f64` below 1).
const PHASE_MAX: f64 = 1.0 - f64::EPSILON / 2.0;

/// Per-sample values shared by all voices.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Frame {
    /// Semitones added to every note: pitch bend and LFO vibrato.
    pub(crate) pitch_mod: f32,
    /// Frequency ratio of each oscillator to the note: octave, semitone, fine, bend and vibrato.
    pub(crate) ratio: [f32; 2],
    pub(crate) pw: [f32; 2],
    pub(crate) waves: [[f32; 4]; 2],
    pub(crate) mix: f32,
    pub(crate) sub: f32,
    pub(crate) noise: f32,
    /// Mono input already scaled by the input level.
    pub(crate) input: f32,
    /// log2 of the cutoff in Hz.
    pub(crate) cutoff_oct: f32,
    pub(crate) k: f32,
    /// Resonance 0..1 (`k` is derived from it).
    pub(crate) res: f32,
    /// Filter envelope amount in octaves.
    pub(crate) env_oct: f32,
    pub(crate) keytrack: f32,
    /// LFO to cutoff, in octaves.
    pub(crate) cut_mod_oct: f32,
    /// Weights of low-pass, band-pass and high-pass.
    pub(crate) mode: [f32; 3],
    pub(crate) amp_sustain: f32,
    pub(crate) filter_sustain: f32,
    /// Gain factor on the voice's output (1 unless a voice's own modulation changes it).
    pub(crate) level: f32,
}

/// Per-configuration constants voices need; derived from parameters and sample rate, not state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Consts {
    pub(crate) inv_sr: f32,
    /// 440 Hz as a phase increment.
    pub(crate) a4_dt: f32,
    pub(crate) amp: Shape,
    pub(crate) filter: Shape,
    /// Glide factor per sample (1 = no glide).
    pub(crate) glide: f64,
    /// Smoothing factor for velocity changes on retrigger.
    pub(crate) smooth: f32,
    /// Fade decrement per sample for stolen voices.
    pub(crate) fade_step: f32,
    /// What per-voice modulation offsets are measured against.
    pub(crate) mods: ModBase,
}

/// One voice's state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Voice {
    /// Sounding (including fading out).
    pub(crate) active: bool,
    pub(crate) key: u32,
    /// The host's note id (-1: none) and MIDI channel of the note playing.
    pub(crate) note_id: i32,
    pub(crate) channel: u32,
    /// Velocity target and its smoothed value (a retrigger may change it mid-note).
    pub(crate) velocity: f32,
    vel: f32,
    /// Key held down.
    pub(crate) gate: bool,
    /// Key released but held on by the sustain pedal.
    pub(crate) sustained: bool,
    /// Stolen: fading out fast and ignoring note events.
    pub(crate) fading: bool,
    fade: f32,
    /// Note-on order, for "oldest first".
    pub(crate) stamp: u64,
    /// Current pitch in semitones (gliding towards `key`).
    pitch: f64,
    /// `2^((pitch - 69) / 12)`, recomputed whenever `pitch` changes; derived, so not in the
    /// snapshot (restore recomputes it with the same function, hence the same bits).
    pitch_factor: f32,
    phase: [f64; 2],
    sub_phase: f64,
    rng: Rng,
    svf: Svf,
    pub(crate) amp_env: Adsr,
    filter_env: Adsr,
    /// Polyphonic modulation and note expressions.
    pub(crate) mods: VoiceMods,
    /// Started at the current sample and not yet ticked: modulation set now jumps instead of
    /// gliding. Always false between samples, so not in the snapshot.
    pub(crate) fresh: bool,
}

impl Voice {
    /// An idle voice whose noise and start phases come from `rng`.
    pub(crate) fn idle(rng: Rng) -> Voice {
        Voice {
            active: false,
            key: 0,
            note_id: -1,
            channel: 0,
            velocity: 0.0,
            vel: 0.0,
            gate: false,
            sustained: false,
            fading: false,
            fade: 1.0,
            stamp: 0,
            pitch: 0.0,
            pitch_factor: 0.0,
            phase: [0.0; 2],
            sub_phase: 0.0,
            rng,
            svf: Svf::default(),
            amp_env: Adsr::default(),
            filter_env: Adsr::default(),
            mods: VoiceMods::default(),
            fresh: false,
        }
    }

    /// Sounding and not being stolen: counts against the polyphony.
    pub(crate) fn live(&self) -> bool {
        self.active && !self.fading
    }

    /// How loud the voice is, for "quietest first": its level now, or for a voice still in its
    /// attack the peak it is heading for.
    pub(crate) fn loudness(&self) -> f64 {
        let level = if self.amp_env.stage == adsr::ATTACK {
            1.0
        } else {
            self.amp_env.level
        };
        level * (0.3 + 0.7 * self.velocity as f64) * self.fade as f64
    }

    /// Starts a new note from silence, gliding from `from_pitch`.
    pub(crate) fn start(&mut self, key: u8, velocity: f32, stamp: u64, from_pitch: f64) {
        // Random start phases: analogue-like, and chords do not start with a summed spike.
        let p0 = self.rng.unit() as f64;
        let p1 = self.rng.unit() as f64;
        *self = Voice {
            active: true,
            key: key as u32,
            velocity,
            vel: velocity,
            gate: true,
            stamp,
            pitch: from_pitch,
            phase: [p0, p1],
            // Half of oscillator 1's phase, so the sub's edges line up with its cycles.
            sub_phase: p0 * 0.5,
            fresh: true,
            ..Voice::idle(self.rng)
        };
        self.refresh();
        self.amp_env.trigger();
        self.filter_env.trigger();
    }

    /// Recomputes the derived pitch factor from the pitch.
    pub(crate) fn refresh(&mut self) {
        self.pitch_factor = exp2((self.pitch as f32 - 69.0) * (1.0 / 12.0));
    }

    /// Plays the same key again without resetting anything that would click.
    pub(crate) fn retrigger(&mut self, velocity: f32, stamp: u64) {
        self.velocity = velocity;
        self.stamp = stamp;
        self.gate = true;
        self.sustained = false;
        self.amp_env.trigger();
        self.filter_env.trigger();
    }

    /// Key up: release, or hold for the pedal.
    pub(crate) fn key_up(&mut self, pedal: bool) {
        self.gate = false;
        if pedal {
            self.sustained = true;
        } else {
            self.release();
        }
    }

    /// Enters the release stage of both envelopes.
    pub(crate) fn release(&mut self) {
        self.gate = false;
        self.sustained = false;
        self.amp_env.release();
        self.filter_env.release();
    }

    /// Starts the fast fade of a stolen voice.
    pub(crate) fn steal(&mut self) {
        self.fading = true;
    }

    /// Renders one sample (mono, before panning).
    #[inline]
    pub(crate) fn tick(&mut self, f: &Frame, c: &Consts) -> f32 {
        self.fresh = false;
        self.mods.tick(c.smooth);
        let own;
        let f = if self.mods.is_neutral() {
            f
        } else {
            own = self.mods.apply(f, &c.mods);
            &own
        };
        // Glide (exponential, in semitones).
        let target = self.key as f64;
        if self.pitch != target {
            let d = target - self.pitch;
            if d.abs() < 1e-4 {
                self.pitch = target;
            } else {
                self.pitch += d * c.glide;
            }
            self.refresh();
        }
        if self.vel != self.velocity {
            let d = self.velocity - self.vel;
            self.vel = if d.abs() < 1e-5 {
                self.velocity
            } else {
                self.vel + d * c.smooth
            };
        }
        let semis = self.pitch as f32 + f.pitch_mod;
        let base = c.a4_dt * self.pitch_factor;

        // Oscillators, sub, noise, input.
        let dt1 = ((base * f.ratio[0]) as f64).min(vco::MAX_DT);
        let dt2 = ((base * f.ratio[1]) as f64).min(vco::MAX_DT);
        let mut mix = 0.0f32;
        if f.mix != 1.0 {
            mix += (1.0 - f.mix) * vco::sample(self.phase[0], dt1, f.pw[0], &f.waves[0]);
        }
        if f.mix != 0.0 {
            mix += f.mix * vco::sample(self.phase[1], dt2, f.pw[1], &f.waves[1]);
        }
        vco::advance(&mut self.phase[0], dt1);
        vco::advance(&mut self.phase[1], dt2);
        let sub_dt = dt1 * 0.5;
        if f.sub != 0.0 {
            mix += f.sub * vco::pulse(self.sub_phase, sub_dt, 0.5) as f32;
        }
        vco::advance(&mut self.sub_phase, sub_dt);
        let noise = self.rng.bipolar();
        mix += f.noise * noise + f.input;

        // Envelopes, filter, amplifier.
        let fenv = self.filter_env.tick(&c.filter, f.filter_sustain) as f32;
        let aenv = self.amp_env.tick(&c.amp, f.amp_sustain) as f32;
        let env_depth = 0.6 + 0.4 * self.vel;
        let oct = f.cutoff_oct
            + f.keytrack * (semis - 60.0) * (1.0 / 12.0)
            + f.env_oct * env_depth * fenv
            + f.cut_mod_oct;
        let g = vcf::gain(exp2(oct) * c.inv_sr);
        let o = self.svf.tick(mix, g, f.k);
        let y = f.mode[0] * o.lp + f.mode[1] * o.bp + f.mode[2] * o.hp;
        let gain = aenv * (0.3 + 0.7 * self.vel) * self.fade * VOICE_GAIN * f.level;

        if self.fading {
            self.fade -= c.fade_step;
            if self.fade <= 0.0 {
                self.fade = 0.0;
                self.active = false;
            }
        }
        if self.amp_env.stage == adsr::IDLE {
            self.active = false;
        }
        y * gain
    }
}

impl Visit for Voice {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.bool(&mut self.active, "voice active");
        v.u32(&mut self.key, 127, "voice key");
        let mut id = self.note_id as u32;
        v.u32(&mut id, u32::MAX, "voice note id");
        self.note_id = id as i32;
        v.u32(&mut self.channel, 15, "voice channel");
        v.f32(&mut self.velocity, 0.0, 1.0, "voice velocity");
        v.f32(&mut self.vel, 0.0, 1.0, "voice velocity");
        v.bool(&mut self.gate, "voice gate");
        v.bool(&mut self.sustained, "voice sustained");
        v.bool(&mut self.fading, "voice fading");
        v.f32(&mut self.fade, 0.0, 1.0, "voice fade");
        v.u64(&mut self.stamp);
        v.f64(&mut self.pitch, 0.0, 127.0, "voice pitch");
        for p in &mut self.phase {
            v.f64(p, 0.0, PHASE_MAX, "oscillator phase");
        }
        v.f64(&mut self.sub_phase, 0.0, PHASE_MAX, "sub oscillator phase");
        self.rng.visit(v);
        self.svf.visit(v);
        self.amp_env.visit(v);
        self.filter_env.visit(v);
        self.mods.visit(v);
    }
}
