//! One-pole parameter smoothing, ticked once per sample.
//!
//! Every continuous parameter approaches its target exponentially (time constant a few
//! milliseconds) and snaps onto it when close, so it settles exactly and costs a compare
//! afterwards. Being per sample, the result does not depend on how the host cuts blocks; being a
//! pure function of (value, target), setting the same target again changes nothing, which makes
//! `Synth::set_param` idempotent.

use crate::snapshot::{Visit, Visitor};

/// A smoothed value and the target it moves towards.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Smoother {
    pub(crate) value: f32,
    pub(crate) target: f32,
}

impl Smoother {
    /// At rest on `x`.
    pub(crate) fn at(x: f32) -> Smoother {
        Smoother {
            value: x,
            target: x,
        }
    }

    /// The per-sample coefficient for time constant `tau_s` seconds.
    pub(crate) fn coef(tau_s: f64, sample_rate: f32) -> f32 {
        (1.0 - (-1.0 / (tau_s * sample_rate as f64)).exp()) as f32
    }

    /// Advances one sample and returns the new value.
    #[inline]
    pub(crate) fn tick(&mut self, coef: f32) -> f32 {
        if self.value != self.target {
            let d = self.target - self.value;
            // The snap distance is wide enough that `d * coef` never falls below half an ulp
            // of the value (which would stall it short of the target) at any supported rate.
            if d.abs() <= 1e-4 + self.target.abs() * 3e-4 {
                self.value = self.target;
            } else {
                self.value += d * coef;
            }
        }
        self.value
    }
}

/// A smoother together with the range its value and target must lie in, for restore checks.
pub(crate) struct Ranged<'a> {
    pub(crate) s: &'a mut Smoother,
    pub(crate) lo: f32,
    pub(crate) hi: f32,
    pub(crate) what: &'static str,
}

impl Visit for Ranged<'_> {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.f32(&mut self.s.value, self.lo, self.hi, self.what);
        v.f32(&mut self.s.target, self.lo, self.hi, self.what);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settles_exactly_at_every_rate() {
        for sr in [8_000.0, 48_000.0, 384_000.0] {
            let c = Smoother::coef(0.005, sr);
            for (from, to) in [(0.0, 1.0), (14.3, 4.3), (-48.0, 48.0), (1.0, 0.001)] {
                let mut s = Smoother::at(from);
                s.target = to;
                let mut n = 0;
                while s.value != to {
                    s.tick(c);
                    n += 1;
                    assert!(
                        n < (sr * 0.2) as usize,
                        "stalled at {} towards {to}",
                        s.value
                    );
                }
            }
        }
    }
}
