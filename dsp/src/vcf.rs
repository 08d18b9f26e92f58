//! The voice filter: a topology-preserving-transform (TPT, zero-delay-feedback) state-variable
//! filter after Zavalishin and Simper's trapezoidal SVF.
//!
//! The TPT form keeps the analogue prototype's response exactly at the cutoff (bilinear
//! transform with prewarping), and it stays stable while cutoff and resonance change every
//! sample, which a per-sample modulated voice filter needs. One structure gives low-pass,
//! band-pass and high-pass outputs at once, so modes can crossfade.
//!
//! Resonance maps to the damping `k = 2 - 2.04 r`: `r = 0` is a gentle Q of 0.5, and near the top
//! the damping goes slightly negative, so the filter self-oscillates. A soft saturator on the
//! band-pass state then sets the oscillation's amplitude (about ±2.5) and bounds the filter under
//! any modulation; below that level (|state| < 1.5) the filter is exactly linear.

use crate::math::{soft_tanh, tan_pi};
use crate::snapshot::{Visit, Visitor};

/// Where the band-pass state starts to saturate.
const SAT_KNEE: f32 = 1.5;
/// Largest magnitude of the band-pass state.
pub(crate) const BP_LIMIT: f32 = SAT_KNEE + 1.0;
/// Hard safety bound on the low-pass state (never reached by audio-range signals).
pub(crate) const LP_LIMIT: f32 = 16.0;
/// Highest cutoff as a fraction of the sample rate.
pub(crate) const MAX_CUTOFF: f32 = 0.45;

/// Damping for a resonance of 0..1.
#[inline]
pub(crate) fn damping(resonance: f32) -> f32 {
    2.0 - 2.04 * resonance
}

/// The integrator gain `g = tan(pi fc / fs)` for a cutoff as a fraction of the sample rate,
/// clamped to 0.45 of the sample rate (the prewarp's pole is at 0.5).
#[inline]
pub(crate) fn gain(cutoff_over_sr: f32) -> f32 {
    tan_pi(cutoff_over_sr.clamp(1e-5, MAX_CUTOFF))
}

#[inline]
fn saturate(x: f32) -> f32 {
    let a = x.abs();
    if a <= SAT_KNEE {
        x
    } else {
        (SAT_KNEE + soft_tanh(a - SAT_KNEE)).copysign(x)
    }
}

/// The two integrator states.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Svf {
    ic1: f32,
    ic2: f32,
}

/// One sample of the three responses.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SvfOut {
    pub(crate) lp: f32,
    pub(crate) bp: f32,
    pub(crate) hp: f32,
}

impl Svf {
    /// Processes one sample with integrator gain `g` and damping `k`.
    #[inline]
    pub(crate) fn tick(&mut self, x: f32, g: f32, k: f32) -> SvfOut {
        // 1 + g(g + k) > 0 for every g >= 0 since k >= -0.04.
        let a1 = 1.0 / (1.0 + g * (g + k));
        let a2 = g * a1;
        let a3 = g * a2;
        let v3 = x - self.ic2;
        let v1 = a1 * self.ic1 + a2 * v3;
        let v2 = self.ic2 + a2 * self.ic1 + a3 * v3;
        self.ic1 = saturate(2.0 * v1 - self.ic1);
        self.ic2 = (2.0 * v2 - self.ic2).clamp(-LP_LIMIT, LP_LIMIT);
        SvfOut {
            lp: v2,
            bp: v1,
            hp: x - k * v1 - v2,
        }
    }
}

impl Visit for Svf {
    fn visit<V: Visitor>(&mut self, v: &mut V) {
        v.f32(&mut self.ic1, -BP_LIMIT, BP_LIMIT, "filter band state");
        v.f32(&mut self.ic2, -LP_LIMIT, LP_LIMIT, "filter low state");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Steady-state gain of one response at frequency `f` (fraction of the sample rate),
    /// measured by correlating with a quadrature pair over whole periods.
    fn measured_gain(f: f64, g: f32, k: f32, pick: fn(SvfOut) -> f32) -> f64 {
        let amp = 0.01; // far below the saturator's knee: the linear filter
        let mut svf = Svf::default();
        let period = (1.0 / f).round() as usize;
        let settle = 200 * period;
        let measure = 200 * period;
        let (mut re, mut im) = (0.0, 0.0);
        for n in 0..settle + measure {
            let ph = std::f64::consts::TAU * f * n as f64;
            let y = pick(svf.tick((amp * ph.sin()) as f32, g, k)) as f64;
            if n >= settle {
                re += y * ph.sin();
                im += y * ph.cos();
            }
        }
        2.0 * (re * re + im * im).sqrt() / measure as f64 / amp
    }

    #[test]
    fn magnitude_at_cutoff_matches_design() {
        // For the SVF, |LP(fc)| = |BP(fc)| = |HP(fc)| = 1/k = Q exactly.
        let sr = 48_000.0;
        let mut worst = 0.0f64;
        for fc in [480.0, 4800.0] {
            for res in [0.0, 0.5, 0.8, 0.95] {
                let k = damping(res);
                let g = gain(fc / sr);
                let want_db = 20.0 * (1.0 / k as f64).log10();
                for (name, pick) in [
                    ("lp", (|o: SvfOut| o.lp) as fn(SvfOut) -> f32),
                    ("bp", |o| o.bp),
                    ("hp", |o| o.hp),
                ] {
                    let got_db = 20.0 * measured_gain(fc as f64 / sr as f64, g, k, pick).log10();
                    worst = worst.max((got_db - want_db).abs());
                    assert!(
                        (got_db - want_db).abs() < 0.05,
                        "{name} fc {fc} res {res}: {got_db:.3} dB vs {want_db:.3} dB"
                    );
                }
            }
        }
        eprintln!("filter magnitude at cutoff: worst deviation from 1/k {worst:.4} dB");
    }

    #[test]
    fn low_pass_passes_dc_and_rejects_high() {
        let sr = 48_000.0;
        let g = gain(1000.0 / sr);
        let k = damping(0.0);
        let lp = |o: SvfOut| o.lp;
        let at_100 = measured_gain(100.0 / 48_000.0, g, k, lp);
        let at_10k = measured_gain(10_000.0 / 48_000.0, g, k, lp);
        assert!((20.0 * at_100.log10()).abs() < 0.2, "{at_100}");
        // Two poles: about -40 dB a decade above the cutoff.
        assert!(20.0 * at_10k.log10() < -35.0, "{at_10k}");
    }

    #[test]
    fn stable_under_ten_seconds_of_random_automation() {
        let sr = 48_000.0f32;
        let mut rng = Rng::new(7);
        let mut svf = Svf::default();
        let (mut fc, mut res) = (1000.0f32, 0.5f32);
        let mut peak = 0.0f32;
        let mut t = 0.0f64;
        for n in 0..(10.0 * sr) as usize {
            // A new random target every 1..256 samples, anywhere in the parameter ranges,
            // including jumps; loud saw input plus noise.
            if n % (1 + (rng.next_u32() % 256) as usize) == 0 {
                fc = 20.0 * 1000f32.powf(rng.unit());
                res = rng.unit();
            }
            let x = 4.0 * (2.0 * t as f32 - 1.0) + rng.bipolar();
            crate::vco::advance(&mut t, 110.0 / sr as f64);
            let o = svf.tick(x, gain(fc / sr), damping(res));
            for y in [o.lp, o.bp, o.hp] {
                assert!(y.is_finite(), "sample {n}");
                peak = peak.max(y.abs());
            }
        }
        eprintln!("peak output under random automation: {peak}");
        assert!(peak < 64.0, "peak {peak}");
    }

    #[test]
    fn self_oscillates_at_maximum_resonance() {
        let sr = 48_000.0f32;
        let fc = 1000.0f32;
        let mut svf = Svf::default();
        let (g, k) = (gain(fc / sr), damping(1.0));
        let mut out = Vec::new();
        for n in 0..sr as usize {
            let x = if n == 0 { 0.1 } else { 0.0 }; // one small kick, then silence
            out.push(svf.tick(x, g, k).lp);
        }
        let rms =
            |s: &[f32]| (s.iter().map(|&y| (y * y) as f64).sum::<f64>() / s.len() as f64).sqrt();
        let early = rms(&out[24_000..28_800]);
        let late = rms(&out[43_200..48_000]);
        // Rising zero crossings over the last 0.5 s give the frequency.
        let crossings = out[24_000..]
            .windows(2)
            .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
            .count();
        let freq = crossings as f32 * 2.0;
        eprintln!("self-oscillation: rms {early:.3} -> {late:.3}, {freq} Hz");
        assert!(late > 0.5, "oscillation too weak: rms {late}");
        assert!(
            (late / early - 1.0).abs() < 0.02,
            "amplitude not steady: {early} -> {late}"
        );
        assert!(
            (freq - fc).abs() / fc < 0.03,
            "oscillates at {freq} Hz, cutoff {fc} Hz"
        );
    }
}
