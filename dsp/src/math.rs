//! Small deterministic approximations of `exp2`, `tan`, `sin` and `tanh`.
//!
//! They are written with nothing but IEEE additions, multiplications, divisions and `floor`, so
//! their results are the same bits on every machine and with every libm, and they are cheaper
//! than the library calls in the per-sample, per-voice path. Each states its accuracy; the tests
//! below check it against `std`.

/// `2^x` for the pitch and cutoff paths; relative error below 3e-7. Arguments are clamped to
/// ±126 so the result is always a normal, finite number.
#[inline]
pub(crate) fn exp2(x: f32) -> f32 {
    let x = x.clamp(-126.0, 126.0);
    // Round to nearest by truncating a positive number: no libm `floor` call on baseline x86.
    let n = (x + 128.5) as i32 - 128;
    let f = x - n as f32; // -0.5..=0.5
                          // Degree-5 polynomial interpolating 2^f at the Chebyshev nodes of -0.5..0.5 (near-minimax,
                          // 1e-7), evaluated by Estrin's scheme for a short dependency chain.
    let f2 = f * f;
    let p = (1.000_000_1 + std::f32::consts::LN_2 * f)
        + f2 * ((0.240_221_07 + 0.055_503_57 * f) + f2 * (0.009_676_032 + 0.001_339_086_3 * f));
    p * f32::from_bits(((n + 127) as u32) << 23)
}

/// `tan(pi * x)` for `x` in 0..0.5, the bilinear-transform prewarp of the filter; relative
/// error below 1e-6. Above 1/4 it uses `tan(pi x) = 1 / tan(pi (1/2 - x))` (and `1/2 - x` is
/// exact in floating point there), so the series only ever sees arguments up to pi/4.
#[inline]
pub(crate) fn tan_pi(x: f32) -> f32 {
    if x > 0.25 {
        1.0 / tan_pi_core(0.5 - x)
    } else {
        tan_pi_core(x)
    }
}

#[inline]
fn tan_pi_core(x: f32) -> f32 {
    // Taylor series to degree 7 and 8, enough for |a| <= pi/4 in f32.
    let a = std::f32::consts::PI * x;
    let a2 = a * a;
    let a4 = a2 * a2;
    let s = a * ((1.0 - a2 * (1.0 / 6.0)) + a4 * ((1.0 / 120.0) - a2 * (1.0 / 5040.0)));
    let c = (1.0 - a2 * 0.5) + a4 * ((1.0 / 24.0 - a2 * (1.0 / 720.0)) + a4 * (1.0 / 40320.0));
    s / c
}

/// `sin(2 pi t)` for any finite `t` (one period per unit), for the sine oscillator and LFO;
/// absolute error below 1e-6.
#[inline]
pub(crate) fn sin_2pi(t: f64) -> f32 {
    // Reduce to u in -0.25..=0.25, where sin(2 pi u) is odd and monotonic.
    // Fractional part without a libm `floor` call (truncation, then fix negatives).
    let mut fr = t - (t as i64) as f64;
    if fr < 0.0 {
        fr += 1.0;
    }
    let mut u = fr - 0.5; // sin(2 pi t) = -sin(2 pi u)
    if u > 0.25 {
        u = 0.5 - u;
    } else if u < -0.25 {
        u = -0.5 - u;
    }
    let x = (std::f64::consts::TAU * u) as f32;
    let x2 = x * x;
    let s = x
        * (1.0
            + x2 * (-1.0 / 6.0
                + x2 * (1.0 / 120.0
                    + x2 * (-1.0 / 5040.0 + x2 * (1.0 / 362_880.0 + x2 * (-1.0 / 39_916_800.0))))));
    -s
}

/// A smooth saturating curve, `tanh`-like within 2.5% and exactly ±1 beyond ±3, with slope 1 at
/// the origin; used to bound the filter's resonance.
#[inline]
pub(crate) fn soft_tanh(y: f32) -> f32 {
    let y = y.clamp(-3.0, 3.0);
    let y2 = y * y;
    // The clamp only removes a rounding excess at |y| = 3.
    (y * (27.0 + y2) / (27.0 + 9.0 * y2)).clamp(-1.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp2_is_accurate() {
        let mut worst = 0.0f64;
        for i in -20_000..=20_000 {
            let x = i as f32 * 0.001;
            let want = (x as f64).exp2();
            let rel = ((exp2(x) as f64 - want) / want).abs();
            worst = worst.max(rel);
        }
        assert!(worst < 3e-7, "exp2 relative error {worst:e}");
        assert!(exp2(1000.0).is_finite() && exp2(-1000.0) > 0.0);
    }

    #[test]
    fn tan_pi_is_accurate() {
        let mut worst = 0.0f64;
        for i in 1..5000 {
            let x = i as f32 * 1e-4;
            let want = (std::f64::consts::PI * x as f64).tan();
            if want > 0.0 {
                worst = worst.max(((tan_pi(x) as f64 - want) / want).abs());
            }
        }
        assert!(worst < 1e-6, "tan relative error {worst:e}");
    }

    #[test]
    fn sin_2pi_is_accurate() {
        let mut worst = 0.0f64;
        for i in -30_000..=30_000 {
            let t = i as f64 * 1.37e-4;
            worst = worst.max((sin_2pi(t) as f64 - (std::f64::consts::TAU * t).sin()).abs());
        }
        assert!(worst < 1e-6, "sin absolute error {worst:e}");
    }

    #[test]
    fn soft_tanh_is_close_and_bounded() {
        for i in -1000..=1000 {
            let y = i as f32 * 0.01;
            assert!((soft_tanh(y) - y.tanh()).abs() < 0.025, "{y}");
            assert!(soft_tanh(y).abs() <= 1.0);
        }
    }
}
