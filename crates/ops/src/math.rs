//! `exp`, `ln` and `ln(1 + u)` for f32 that LLVM can vectorise: straight-line arithmetic and bit operations,
//! no branches and no calls (the standard library's `f32::exp` and `f32::ln` are scalar calls
//! into libm, which made the sigmoid and the cross-entropy the costliest passes of a dense step).
//!
//! The methods are the classic Cephes `expf` and `logf` (range reduction by a power of two, a
//! minimax polynomial on the reduced argument), which is also what TensorFlow's Eigen kernels
//! evaluate; both stay within 1 ulp of the exact result over the whole f32 range (tested below
//! against f64), subnormal inputs and results included.
//!
//! The polynomials are evaluated with `mul_add`: inside the kernels compiled for AVX2+FMA or
//! AVX-512 (`crate::simd`) each step is one fused multiply-add instead of a multiply and an add
//! (the cross-entropy kernel went from 440 to 260 us per 100k elements); called from code
//! compiled without FMA it is libm's exact `fmaf`, slower but with the same result.

/// ln(2) split so that `n * LN2_HI` is exact for the exponents of f32.
const LN2_HI: f32 = 0.693_359_4;
/// The rest of ln(2): `LN2_HI + LN2_LO` is ln(2) to well beyond f32 precision.
const LN2_LO: f32 = -2.121_944_4e-4;

/// Adding then subtracting this rounds an f32 of magnitude below 2^22 to the nearest integer
/// (1.5 · 2^23), and leaves that integer in the low bits of the sum's mantissa.
const ROUNDER: f32 = 12_582_912.0;

/// `2^n` for an integer `n` in `[-126, 127]`, built from its exponent bits.
#[inline(always)]
fn pow2(n: i32) -> f32 {
    f32::from_bits(((n + 127) as u32) << 23)
}

/// e^x, within 1 ulp; `inf` above ln(f32::MAX), 0 below the smallest subnormal, NaN for NaN.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    /// Largest x whose e^x is finite.
    const MAX: f32 = 88.722_83;
    /// Below this e^x rounds to 0 (half the smallest subnormal is e^-103.97).
    const MIN: f32 = -103.972_08;
    let clamped = x.clamp(MIN, MAX);
    // n = round(x / ln 2), read back as an integer from the rounding sum's low bits.
    let shifted = clamped * std::f32::consts::LOG2_E + ROUNDER;
    let n_float = shifted - ROUNDER;
    let n = shifted.to_bits() as i32 - ROUNDER.to_bits() as i32;
    let r = (clamped - n_float * LN2_HI) - n_float * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 0.5);
    let e_r = p * r * r + r + 1.0;
    // 2^n in two factors, each a normal float for every n in [-150, 128].
    let half = n >> 1;
    let value = e_r * pow2(half) * pow2(n - half);
    if x > MAX {
        f32::INFINITY
    } else if x < MIN {
        0.0
    } else {
        value
    }
}

/// The natural logarithm, within 1 ulp; `-inf` at 0, NaN below 0 and for NaN, `inf` at `inf`.
#[inline(always)]
pub(crate) fn ln(x: f32) -> f32 {
    /// 2^23: scales a subnormal input into the normal range.
    const SUBNORMAL_SCALE: f32 = 8_388_608.0;
    let subnormal = x < f32::MIN_POSITIVE;
    let scaled = if subnormal { x * SUBNORMAL_SCALE } else { x };
    let value = ln_of_normal(scaled, if subnormal { 23 } else { 0 });
    if x == f32::INFINITY {
        f32::INFINITY
    } else if x == 0.0 {
        f32::NEG_INFINITY
    } else if x < 0.0 || x.is_nan() {
        f32::NAN
    } else {
        value
    }
}

/// [`ln`] for inputs known to be positive normal finite numbers or NaN (NaN stays NaN), such as
/// probabilities clipped to `[1e-7, 1 - 1e-7]`: the same result without the handling of
/// subnormals, zero, infinity and negative inputs.
#[inline(always)]
pub(crate) fn ln_clipped(x: f32) -> f32 {
    if x.is_nan() {
        x
    } else {
        ln_of_normal(x, 0)
    }
}

/// ln(x · 2^-`scale_exponent`) for a positive normal finite `x` (the scale undoes the one
/// [`ln`] applies to subnormals): x = m · 2^e, a polynomial in m - 1.
#[inline(always)]
fn ln_of_normal(x: f32, scale_exponent: i32) -> f32 {
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    let bits = x.to_bits();
    // x = m · 2^e with m in [0.5, 1).
    let mut e = ((bits >> 23) & 0xff) as i32 - 126 - scale_exponent;
    let m = f32::from_bits((bits & 0x807f_ffff) | 0x3f00_0000);
    // Keep m in [sqrt(1/2), sqrt(2)) and take it relative to 1.
    let small = m < SQRT_HALF;
    e -= small as i32;
    let m = if small { m + m - 1.0 } else { m - 1.0 };
    let z = m * m;
    let mut y = 7.037_683_6e-2f32;
    y = y.mul_add(m, -1.151_461e-1);
    y = y.mul_add(m, 1.167_699_9e-1);
    y = y.mul_add(m, -1.242_014_1e-1);
    y = y.mul_add(m, 1.424_932_3e-1);
    y = y.mul_add(m, -1.666_805_8e-1);
    y = y.mul_add(m, 2.000_071_4e-1);
    y = y.mul_add(m, -2.499_999_4e-1);
    y = y.mul_add(m, 3.333_333e-1);
    y = y * m * z;
    let e = e as f32;
    y += e * LN2_LO;
    y -= 0.5 * z;
    m + y + e * LN2_HI
}

/// ln(1 + u) for `u > -1`, within 2 ulp even where `1 + u` rounds away most of `u`, from the
/// rounded `sum = 1 + u` and its reciprocal (which callers such as a sigmoid need anyway): the
/// logarithm of the sum, corrected by the sum's rounding error relative to the sum.
#[inline(always)]
pub(crate) fn ln_1p_from_sum(u: f32, sum: f32, reciprocal: f32) -> f32 {
    ln(sum) - ((sum - 1.0) - u) * reciprocal
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::Lcg;

    /// Distance in units of the last place between `got` and the exact `want`, measured at
    /// `want` rounded to f32 (for subnormal results, the subnormal spacing).
    fn ulps(got: f32, want: f64) -> f64 {
        let rounded = want as f32;
        let spacing = (f32::from_bits(rounded.abs().to_bits() + 1) - rounded.abs()) as f64;
        (got as f64 - want).abs() / spacing
    }

    /// Every 997th f32 bit pattern that is a finite number in `range`, plus random ones.
    fn samples(range: std::ops::RangeInclusive<f32>) -> Vec<f32> {
        let mut rng = Lcg::new(11);
        let stepped = (0..u32::MAX / 997).map(|i| f32::from_bits(i * 997));
        let random = (0..100_000).map(|_| f32::from_bits(rng.next_u32()));
        stepped
            .chain(random)
            .flat_map(|v| [v, -v])
            .filter(|v| v.is_finite() && range.contains(v))
            .collect()
    }

    #[test]
    fn exp_is_within_one_ulp_everywhere() {
        let mut worst = (0.0, 0.0f32);
        for x in samples(-103.9..=88.72) {
            let error = ulps(exp(x), (x as f64).exp());
            if error > worst.0 {
                worst = (error, x);
            }
        }
        assert!(worst.0 <= 1.0, "exp({}) is {} ulp off", worst.1, worst.0);
    }

    #[test]
    fn ln_is_within_one_ulp_everywhere() {
        let mut worst = (0.0, 0.0f32);
        for x in samples(f32::from_bits(1)..=f32::MAX) {
            let error = ulps(ln(x), (x as f64).ln());
            if error > worst.0 {
                worst = (error, x);
            }
        }
        assert!(worst.0 <= 1.0, "ln({}) is {} ulp off", worst.1, worst.0);
    }

    #[test]
    fn ln_clipped_is_ln_on_normal_numbers_and_keeps_nan() {
        for x in samples(f32::MIN_POSITIVE..=f32::MAX).into_iter().chain([
            1e-7,
            (1.0f64 - 1e-7) as f32,
            1.0,
            f32::MIN_POSITIVE,
        ]) {
            assert_eq!(ln_clipped(x).to_bits(), ln(x).to_bits(), "ln({x})");
        }
        assert!(ln_clipped(f32::NAN).is_nan());
    }

    #[test]
    fn ln_1p_from_sum_is_within_two_ulp_on_the_unit_interval() {
        let mut worst = (0.0, 0.0f32);
        for u in samples(0.0..=1.0)
            .into_iter()
            .chain([0.0, 1e-30, 1e-8, 3e-8, 1.0])
        {
            let sum = 1.0 + u;
            let error = ulps(ln_1p_from_sum(u, sum, 1.0 / sum), (u as f64).ln_1p());
            if error > worst.0 {
                worst = (error, u);
            }
        }
        assert!(worst.0 <= 2.0, "ln(1 + {}) is {} ulp off", worst.1, worst.0);
    }

    #[test]
    fn exact_points_and_special_values() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(exp(88.8), f32::INFINITY);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(-104.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(ln(0.0), f32::NEG_INFINITY);
        assert_eq!(ln(-0.0), f32::NEG_INFINITY);
        assert_eq!(ln(f32::INFINITY), f32::INFINITY);
        assert!(ln(-1.0).is_nan());
        assert!(ln(f32::NEG_INFINITY).is_nan());
        assert!(ln(f32::NAN).is_nan());
        // The smallest subnormal: -149 ln 2.
        assert!(ulps(ln(f32::from_bits(1)), -149.0 * std::f64::consts::LN_2) <= 1.0);
        // e^-100 is a subnormal.
        assert!(ulps(exp(-100.0), (-100.0f64).exp()) <= 1.0);
    }
}
