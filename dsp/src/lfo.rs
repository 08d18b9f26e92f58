//! The low-frequency oscillator: one free-running LFO shared by all voices.
//!
//! A phase accumulator drives sine, triangle, square and saw shapes; sample-and-hold takes a
//! new value from the synth's seeded PRNG at each cycle start, so it is random but repeatable.
//! The synth smooths the LFO's output over a millisecond, which takes the click out of the
//! square, saw and S&H edges and out of waveform switches. The phase is `f64` so that a 0.05 Hz
//! rate keeps its accuracy at 384 kHz.

use crate::math::sin_2pi;
use crate::rng::Rng;
use crate::snapshot::{Visit, Visitor};

/// LFO waveform indices, as in [`crate::params::LFO_WAVES`].
pub(crate) const SINE: u32 = 0;
pub(crate) const TRIANGLE: u32 = 1;
pub(crate) const SQUARE: u32 = 2;
pub(crate) const SAW: u32 = 3;

/// The LFO's state.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Lfo {
    phase: f64,
    held: f32,
}

impl Lfo {
    /// Returns the current value in -1..1 for `wave`, then advances by `inc` cycles.
    #[inline]
    pub(crate) fn tick(&mut self, wave: u32, inc: f64, rng: &mut Rng) -> f32 {
        let t = self.phase;
        let y = match wave {
            SINE => sin_2pi(t),
            TRIANGLE => {
                let y = if t < 0.25 {
                    4.0 * t
                } else if t < 0.75 {
                    2.0 - 4.0 * t
                } else {
                    4.0 * t - 4.0
                };
                y as f32
            }
            SQUARE => {
                if t < 0.5 {
                    1.0
                } else {
                    -1.0
                }
            }
            SAW => (2.0 * t - 1.0) as f32,
            _ => self.held,
        };
        self.phase += inc;
        if self.phase >= 1.0 {
            self.phase -= 1.0;
            // Drawn whatever the waveform, so that switching to S&H changes no other draw.
            self.held = rng.bipolar();
        }
        y
    }
}

impl Visit for Lfo {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.f64(&mut self.phase, 0.0, 1.0 - f64::EPSILON / 2.0, "lfo phase");
        v.f32(&mut self.held, -1.0, 1.0, "lfo held value");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_bounded_with_the_right_period() {
        for wave in 0..=4 {
            let mut lfo = Lfo::default();
            let mut rng = Rng::new(1);
            let inc = 5.0 / 48_000.0;
            let mut prev = lfo.tick(wave, inc, &mut rng);
            let mut rising = 0;
            for _ in 1..48_000 {
                let y = lfo.tick(wave, inc, &mut rng);
                assert!((-1.0..=1.0).contains(&y));
                if prev < 0.0 && y >= 0.0 {
                    rising += 1;
                }
                prev = y;
            }
            if wave != 4 {
                assert!(
                    (4..=5).contains(&rising),
                    "wave {wave}: {rising} cycles in 1 s at 5 Hz"
                );
            }
        }
    }
}
