//! A seeded PCG32 generator (O'Neill's PCG-XSH-RR), the only source of randomness.
//!
//! Noise, random start phases and the LFO's sample-and-hold draw from generators kept in the
//! synth's state, so two instances, or a restored snapshot, draw the same numbers.

use crate::snapshot::{Visit, Visitor};

const MUL: u64 = 6_364_136_223_846_793_005;
const INC: u64 = 1_442_695_040_888_963_407;

/// PCG32 with a fixed stream; the 64-bit state is all there is to snapshot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    /// A generator seeded as the PCG reference does.
    pub(crate) fn new(seed: u64) -> Rng {
        let mut r = Rng { state: 0 };
        r.next_u32();
        r.state = r.state.wrapping_add(seed);
        r.next_u32();
        r
    }

    /// The next 32 random bits.
    #[inline]
    pub(crate) fn next_u32(&mut self) -> u32 {
        let old = self.state;
        self.state = old.wrapping_mul(MUL).wrapping_add(INC);
        let xorshifted = (((old >> 18) ^ old) >> 27) as u32;
        xorshifted.rotate_right((old >> 59) as u32)
    }

    /// Uniform in 0..1 with 24 bits of resolution.
    #[inline]
    pub(crate) fn unit(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
    }

    /// Uniform in -1..1.
    #[inline]
    pub(crate) fn bipolar(&mut self) -> f32 {
        self.unit() * 2.0 - 1.0
    }
}

impl Visit for Rng {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.u64(&mut self.state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_and_roughly_uniform() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let mut c = Rng::new(43);
        let mut sum = 0.0f64;
        let mut differs = false;
        for _ in 0..100_000 {
            let x = a.bipolar();
            assert_eq!(x.to_bits(), b.bipolar().to_bits());
            differs |= x != c.bipolar();
            assert!((-1.0..1.0).contains(&x));
            sum += x as f64;
        }
        assert!(differs);
        assert!((sum / 100_000.0).abs() < 0.01, "mean {}", sum / 100_000.0);
    }
}
