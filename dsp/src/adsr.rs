//! Envelope generators: exponential-style ADSR (analogue RC-like segments).
//!
//! Each segment moves the level towards a target by a constant factor per sample, the discrete
//! form of an RC charge. The attack aims past 1 (at 1.3) so it arrives at the peak in finite time
//! with the slightly convex shape of analogue envelopes; the decay and release are pure
//! exponentials, and their time is the time to fall by 60 dB (to 0.1% of the distance), the
//! usual T60 meaning. A retrigger starts the attack from the current level and a release starts
//! from wherever the level is, so neither jumps. Levels and coefficients are `f64` because a
//! 10 s segment at 384 kHz needs a per-sample factor closer to 1 than `f32` can express.

use crate::snapshot::{Visit, Visitor};

/// Envelope stages.
pub(crate) const IDLE: u32 = 0;
pub(crate) const ATTACK: u32 = 1;
/// Decay, then sustain: the level keeps approaching the sustain level.
pub(crate) const DECAY: u32 = 2;
pub(crate) const RELEASE: u32 = 3;

const ATTACK_TARGET: f64 = 1.3;
/// Level below which a release is over (-100 dB).
const SILENT: f64 = 1e-5;

/// Per-sample factors for one envelope's times; derived from the parameters, not state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Shape {
    attack: f64,
    decay: f64,
    release: f64,
}

impl Shape {
    /// Factors for attack, decay and release times in milliseconds.
    pub(crate) fn new(sample_rate: f32, attack_ms: f32, decay_ms: f32, release_ms: f32) -> Shape {
        let samples = |ms: f32| (ms as f64 * 1e-3 * sample_rate as f64).max(1.0);
        Shape {
            attack: ((0.3 / ATTACK_TARGET).ln() / samples(attack_ms)).exp(),
            decay: (1e-3f64.ln() / samples(decay_ms)).exp(),
            release: (1e-3f64.ln() / samples(release_ms)).exp(),
        }
    }
}

/// One envelope's state.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Adsr {
    pub(crate) stage: u32,
    pub(crate) level: f64,
}

impl Adsr {
    /// Starts (or restarts) the attack from the current level.
    pub(crate) fn trigger(&mut self) {
        self.stage = ATTACK;
    }

    /// Starts the release from the current level.
    pub(crate) fn release(&mut self) {
        if self.stage != IDLE {
            self.stage = RELEASE;
        }
    }

    /// Advances one sample and returns the new level (0..=1).
    #[inline]
    pub(crate) fn tick(&mut self, shape: &Shape, sustain: f32) -> f64 {
        match self.stage {
            ATTACK => {
                self.level = ATTACK_TARGET + (self.level - ATTACK_TARGET) * shape.attack;
                if self.level >= 1.0 {
                    self.level = 1.0;
                    self.stage = DECAY;
                }
            }
            DECAY => {
                let s = sustain as f64;
                self.level = s + (self.level - s) * shape.decay;
                // Settle exactly (and never into subnormals).
                if (self.level - s).abs() < 1e-7 {
                    self.level = s;
                }
            }
            RELEASE => {
                self.level *= shape.release;
                if self.level < SILENT {
                    self.level = 0.0;
                    self.stage = IDLE;
                }
            }
            _ => self.level = 0.0,
        }
        self.level
    }
}

impl Visit for Adsr {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.u32(&mut self.stage, RELEASE, "envelope stage");
        v.f64(&mut self.level, 0.0, 1.0, "envelope level");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples from the start of a segment until `done` holds.
    fn samples_until(
        env: &mut Adsr,
        shape: &Shape,
        sus: f32,
        done: impl Fn(&Adsr) -> bool,
    ) -> usize {
        let mut n = 0;
        while !done(env) {
            env.tick(shape, sus);
            n += 1;
            assert!(n < 10_000_000, "segment never ends");
        }
        n
    }

    #[test]
    fn segment_times_within_one_percent() {
        let mut worst = 0.0f64;
        for sr in [8_000.0, 48_000.0, 384_000.0f32] {
            for ms in [1.0, 10.0, 100.0, 1000.0, 10_000.0f32] {
                // Skip segments shorter than 50 samples, where one sample is over 2%.
                if (ms * 1e-3 * sr) < 50.0 {
                    continue;
                }
                let shape = Shape::new(sr, ms, ms, ms);
                let want = (ms as f64 * 1e-3 * sr as f64).round();
                let sus = 0.5;
                let mut env = Adsr::default();
                env.trigger();
                let attack = samples_until(&mut env, &shape, sus, |e| e.stage != ATTACK);
                // Decay: until 0.1% of the way from the peak to the sustain level remains.
                let decay = samples_until(&mut env, &shape, sus, |e| e.level - 0.5 <= 0.5e-3);
                env.release();
                let start = env.level;
                let release = samples_until(&mut env, &shape, sus, |e| e.level <= start * 1e-3);
                for (name, got) in [("attack", attack), ("decay", decay), ("release", release)] {
                    let err = (got as f64 - want).abs() / want;
                    worst = worst.max(err);
                    assert!(
                        err < 0.01,
                        "{name} {ms} ms at {sr} Hz: {got} samples, want {want}"
                    );
                }
            }
        }
        eprintln!("worst ADSR segment time error: {:.3}%", worst * 100.0);
    }

    #[test]
    fn one_millisecond_is_within_one_sample() {
        let shape = Shape::new(48_000.0, 1.0, 1.0, 1.0);
        let mut env = Adsr::default();
        env.trigger();
        let attack = samples_until(&mut env, &shape, 0.0, |e| e.stage != ATTACK);
        assert!((47..=49).contains(&attack), "{attack}");
    }

    #[test]
    fn retrigger_and_release_do_not_jump() {
        let shape = Shape::new(48_000.0, 5.0, 50.0, 20.0);
        let mut env = Adsr::default();
        env.trigger();
        let mut prev = 0.0;
        let mut max_step = 0.0f64;
        for n in 0..48_000 {
            if n == 2000 || n == 2100 {
                env.release();
            }
            if n == 2050 || n == 3000 {
                env.trigger();
            }
            let l = env.tick(&shape, 0.6);
            max_step = max_step.max((l - prev).abs());
            prev = l;
        }
        // The steepest legitimate step is the 5 ms attack from 0: about 1.3 * (1 - factor).
        let bound = 1.3 * (1.0 - shape.attack) * 1.01;
        assert!(max_step <= bound, "max step {max_step}, bound {bound}");
    }

    #[test]
    fn release_ends_idle() {
        let shape = Shape::new(48_000.0, 1.0, 1.0, 1.0);
        let mut env = Adsr::default();
        env.trigger();
        for _ in 0..100 {
            env.tick(&shape, 1.0);
        }
        env.release();
        for _ in 0..1000 {
            env.tick(&shape, 1.0);
        }
        assert_eq!(env.stage, IDLE);
        assert_eq!(env.level, 0.0);
    }
}
