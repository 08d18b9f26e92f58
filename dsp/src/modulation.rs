//! Per-voice modulation: polyphonic parameter offsets and note expressions, one voice at a time.
//!
//! Every voice carries one smoothed lane per poly-modulatable parameter (an offset in the
//! host's normalized units, -1..1) and one per [`Expression`]. A voice whose lanes all rest at
//! their neutral values renders from the frame every voice shares, bit for bit as if this module
//! did not exist; only a voice with a non-neutral lane gets its own copy of the frame with its
//! offsets applied ([`VoiceMods::apply`]).
//!
//! An offset of the whole normalized range moves a parameter across its whole range in the
//! DSP's own units, linearly: the cutoff in octaves, gains in dB, everything else in its plain
//! unit; the result is clamped to the parameter's range. This is the musical scale (a cutoff
//! offset is an interval, whatever the base cutoff), and it is cheap and exact per sample.

use crate::expression::Expression;
use crate::params::ParamId;
use crate::smoother::{Ranged, Smoother};
use crate::snapshot::{Visit, Visitor};
use crate::voice::Frame;

/// The parameters a host may modulate per voice, in lane order.
pub const POLY_MOD_PARAMS: [ParamId; N_POLY_MOD] = [
    ParamId::Cutoff,
    ParamId::Resonance,
    ParamId::FilterEnvAmount,
    ParamId::OscMix,
    ParamId::Osc1PulseWidth,
    ParamId::Osc2PulseWidth,
    ParamId::Osc1Fine,
    ParamId::Osc2Fine,
    ParamId::SubLevel,
    ParamId::NoiseLevel,
    ParamId::MasterGain,
];

/// Number of poly-modulatable parameters.
pub const N_POLY_MOD: usize = 11;
const LANES: usize = N_POLY_MOD + Expression::ALL.len();

/// The lane of a poly-modulatable parameter; `None` for the others.
pub fn poly_mod_lane(id: ParamId) -> Option<usize> {
    POLY_MOD_PARAMS.iter().position(|&p| p == id)
}

fn expression_lane(e: Expression) -> usize {
    N_POLY_MOD + e.code() as usize
}

/// What offsets are measured against that the shared frame does not carry; derived from the
/// parameter targets, never stored.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ModBase {
    /// Fine tune targets of both oscillators, cents.
    pub(crate) fine: [f32; 2],
    /// Master gain target, dB.
    pub(crate) gain_db: f32,
    /// The cutoff range in octaves (log2 Hz).
    pub(crate) cutoff_oct: (f32, f32),
}

impl ModBase {
    /// From the parameter targets (plain units, by index).
    pub(crate) fn new(t: impl Fn(ParamId) -> f32) -> ModBase {
        let cutoff = ParamId::Cutoff.info();
        ModBase {
            fine: [t(ParamId::Osc1Fine), t(ParamId::Osc2Fine)],
            gain_db: t(ParamId::MasterGain),
            cutoff_oct: (cutoff.min.log2(), cutoff.max.log2()),
        }
    }
}

/// One voice's modulation lanes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct VoiceMods {
    lanes: [Smoother; LANES],
    /// Derived: every lane sits on its target (so `tick` has nothing to do).
    settled: bool,
    /// Derived: every lane sits on its neutral value (so the voice uses the shared frame).
    neutral: bool,
}

fn neutral(lane: usize) -> f32 {
    if lane < N_POLY_MOD {
        0.0
    } else {
        Expression::ALL[lane - N_POLY_MOD].neutral()
    }
}

fn range(lane: usize) -> (f32, f32, &'static str) {
    if lane < N_POLY_MOD {
        (-1.0, 1.0, "poly modulation offset")
    } else {
        let (lo, hi) = Expression::ALL[lane - N_POLY_MOD].range();
        (lo, hi, "note expression")
    }
}

impl Default for VoiceMods {
    fn default() -> VoiceMods {
        VoiceMods {
            lanes: std::array::from_fn(|i| Smoother::at(neutral(i))),
            settled: true,
            neutral: true,
        }
    }
}

impl VoiceMods {
    /// Whether the voice can use the shared frame as it is.
    #[inline]
    pub(crate) fn is_neutral(&self) -> bool {
        self.neutral
    }

    /// Sets the offset of a poly-modulatable parameter (ignored for the others). `jump`: take
    /// the value at once (on the note's first sample) instead of gliding there.
    pub(crate) fn set_offset(&mut self, id: ParamId, offset: f32, jump: bool) {
        if let Some(lane) = poly_mod_lane(id) {
            self.set(lane, offset, jump);
        }
    }

    /// Sets a note expression, as [`VoiceMods::set_offset`].
    pub(crate) fn set_expression(&mut self, e: Expression, value: f32, jump: bool) {
        self.set(expression_lane(e), value, jump);
    }

    fn set(&mut self, lane: usize, x: f32, jump: bool) {
        let (lo, hi, _) = range(lane);
        let x = x.clamp(lo, hi);
        let s = &mut self.lanes[lane];
        s.target = x;
        if jump {
            s.value = x;
        }
        self.settled = false;
    }

    /// Forgets the derived flags (after a restore); the next `tick` recomputes them from the
    /// lanes alone, so a restored voice takes the same path as the one it was copied from.
    pub(crate) fn refresh(&mut self) {
        self.settled = false;
    }

    /// Advances the lanes by one sample.
    #[inline]
    pub(crate) fn tick(&mut self, coef: f32) {
        if self.settled {
            return;
        }
        let mut settled = true;
        let mut neutral_now = true;
        for (i, s) in self.lanes.iter_mut().enumerate() {
            s.tick(coef);
            settled &= s.value == s.target;
            neutral_now &= s.value == neutral(i);
        }
        self.settled = settled;
        self.neutral = neutral_now;
    }

    /// The voice's pan expression (-1..1), added to its place in the stereo field.
    #[inline]
    pub(crate) fn pan(&self) -> f32 {
        self.lanes[expression_lane(Expression::Pan)].value
    }

    /// The shared frame with this voice's offsets applied. Lanes at their neutral value leave
    /// their fields untouched.
    pub(crate) fn apply(&self, f: &Frame, base: &ModBase) -> Frame {
        let mut g = *f;
        let lane = |i: usize| {
            let x = self.lanes[i].value;
            (x != neutral(i)).then_some(x)
        };
        let span = |id: ParamId| id.info().max - id.info().min;
        let clamp = |x: f32, id: ParamId| x.clamp(id.info().min, id.info().max);
        let mut semis = [0.0f32; 2];
        for (i, &id) in POLY_MOD_PARAMS.iter().enumerate() {
            let Some(m) = lane(i) else { continue };
            let delta = m * span(id);
            match id {
                ParamId::Cutoff => {
                    let octaves = m * (base.cutoff_oct.1 - base.cutoff_oct.0);
                    g.cutoff_oct =
                        (f.cutoff_oct + octaves).clamp(base.cutoff_oct.0, base.cutoff_oct.1);
                }
                ParamId::Resonance => g.k = crate::vcf::damping(clamp(f.res + delta, id)),
                ParamId::FilterEnvAmount => {
                    let (lo, hi) = (id.info().min / 12.0, id.info().max / 12.0);
                    g.env_oct = (f.env_oct + delta / 12.0).clamp(lo, hi);
                }
                ParamId::OscMix => g.mix = clamp(f.mix + delta, id),
                ParamId::Osc1PulseWidth => g.pw[0] = clamp(f.pw[0] + delta, id),
                ParamId::Osc2PulseWidth => g.pw[1] = clamp(f.pw[1] + delta, id),
                ParamId::Osc1Fine | ParamId::Osc2Fine => {
                    let o = (id == ParamId::Osc2Fine) as usize;
                    semis[o] += (clamp(base.fine[o] + delta, id) - base.fine[o]) * 0.01;
                }
                ParamId::SubLevel => g.sub = clamp(f.sub + delta, id),
                ParamId::NoiseLevel => g.noise = clamp(f.noise + delta, id),
                ParamId::MasterGain => {
                    let db = clamp(base.gain_db + delta, id) - base.gain_db;
                    // 10^(dB/20) = 2^(dB * log2(10) / 20)
                    g.level *= crate::math::exp2(db * (std::f32::consts::LOG2_10 / 20.0));
                }
                _ => {}
            }
        }
        if let Some(t) = lane(expression_lane(Expression::Tuning)) {
            g.pitch_mod += t;
            semis[0] += t;
            semis[1] += t;
        }
        for (ratio, s) in g.ratio.iter_mut().zip(semis) {
            if s != 0.0 {
                *ratio *= crate::math::exp2(s * (1.0 / 12.0));
            }
        }
        if let Some(v) = lane(expression_lane(Expression::Volume)) {
            g.level *= v;
        }
        if let Some(b) = lane(expression_lane(Expression::Brightness)) {
            g.cut_mod_oct += (b - 0.5) * 8.0;
        }
        if let Some(p) = lane(expression_lane(Expression::Pressure)) {
            g.cut_mod_oct += p * 2.0;
        }
        g
    }
}

impl Visit for VoiceMods {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        for (i, s) in self.lanes.iter_mut().enumerate() {
            let (lo, hi, what) = range(i);
            Ranged { s, lo, hi, what }.visit(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Frame {
        Frame {
            ratio: [1.0, 1.5],
            pw: [0.5, 0.5],
            mix: 0.5,
            cutoff_oct: 10.0,
            res: 0.25,
            k: crate::vcf::damping(0.25),
            env_oct: 2.0,
            level: 1.0,
            ..Frame::default()
        }
    }

    fn base() -> ModBase {
        ModBase::new(|id| id.info().default)
    }

    #[test]
    fn neutral_lanes_leave_the_frame_alone() {
        let mut m = VoiceMods::default();
        m.tick(0.1);
        assert!(m.is_neutral());
        let f = frame();
        let g = m.apply(&f, &base());
        assert_eq!(format!("{f:?}"), format!("{g:?}"));
    }

    #[test]
    fn an_offset_moves_only_its_parameter_and_stays_in_range() {
        let mut m = VoiceMods::default();
        m.set_offset(ParamId::Cutoff, 0.1, true);
        m.tick(0.1);
        assert!(!m.is_neutral());
        let f = frame();
        let g = m.apply(&f, &base());
        let octaves = 0.1 * (20000f32.log2() - 20f32.log2());
        assert!((g.cutoff_oct - (10.0 + octaves)).abs() < 1e-5);
        assert_eq!(g.mix, f.mix);
        assert_eq!(g.k, f.k);
        m.set_offset(ParamId::Cutoff, 1.0, true);
        m.tick(0.1);
        assert_eq!(m.apply(&f, &base()).cutoff_oct, 20000f32.log2());
        // Not modulatable: ignored.
        let mut n = VoiceMods::default();
        n.set_offset(ParamId::Polyphony, 1.0, true);
        n.tick(0.1);
        assert!(n.is_neutral());
    }

    #[test]
    fn offsets_glide_unless_told_to_jump() {
        let mut m = VoiceMods::default();
        m.set_expression(Expression::Volume, 2.0, false);
        m.tick(0.5);
        let v = m.apply(&frame(), &base()).level;
        assert!(v > 1.0 && v < 2.0, "{v}");
        for _ in 0..200 {
            m.tick(0.5);
        }
        assert_eq!(m.apply(&frame(), &base()).level, 2.0);
        m.set_expression(Expression::Volume, 1.0, false);
        for _ in 0..200 {
            m.tick(0.5);
        }
        assert!(m.is_neutral(), "back at neutral, back on the shared frame");
    }
}
