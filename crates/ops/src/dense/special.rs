//! `e^x - 1` and the error function for f32, straight-line code LLVM can vectorise (as
//! [`crate::math`]'s `exp` and `ln`), for the activations that need them (ELU, SELU, softplus's
//! slope, GELU).

use crate::math::exp;

/// e^x - 1 without the cancellation of `exp(x) - 1` near 0: a Taylor polynomial where
/// |x| < 1/2 (its truncation error, below |x|^9/9! · e^(1/2), stays under 2^-25 relative), and
/// `exp(x) - 1` elsewhere (where the subtraction is exact or loses at most a bit). Within 2 ulp;
/// -1 far below 0, `inf` above ln(f32::MAX), NaN for NaN.
#[inline(always)]
pub(crate) fn expm1(x: f32) -> f32 {
    // x + x²/2! + ... + x⁸/8!, by Horner's rule on x (1/2! + x (1/3! + ...)).
    let mut p = 1.0f32 / 40_320.0;
    p = p.mul_add(x, 1.0 / 5_040.0);
    p = p.mul_add(x, 1.0 / 720.0);
    p = p.mul_add(x, 1.0 / 120.0);
    p = p.mul_add(x, 1.0 / 24.0);
    p = p.mul_add(x, 1.0 / 6.0);
    p = p.mul_add(x, 0.5);
    let series = (p * x).mul_add(x, x);
    if x.abs() < 0.5 {
        series
    } else {
        exp(x) - 1.0
    }
}

/// The error function: the rational approximation on [-4, 4] that Eigen (and so TensorFlow's
/// CPU kernels) evaluates for f32, ±1 beyond (where erf is 1 to f32 precision). Within 4e-7 of
/// the exact value (6.5e-8 in exact arithmetic, the rest rounding); NaN for NaN.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let clamped = x.clamp(-4.0, 4.0);
    let x2 = clamped * clamped;
    // Odd numerator x·P(x²), even denominator Q(x²).
    let mut p = -2.726_142_3e-10f32;
    p = p.mul_add(x2, 2.770_681_4e-8);
    p = p.mul_add(x2, -2.101_024e-6);
    p = p.mul_add(x2, -5.692_506_4e-5);
    p = p.mul_add(x2, -7.349_906_4e-4);
    p = p.mul_add(x2, -2.954_600_1e-3);
    p = p.mul_add(x2, -1.609_603_3e-2);
    let mut q = -1.456_607_2e-5f32;
    q = q.mul_add(x2, -2.133_740_6e-4);
    q = q.mul_add(x2, -1.682_827e-3);
    q = q.mul_add(x2, -7.373_329e-3);
    q = q.mul_add(x2, -1.426_473_9e-2);
    let ratio = clamped * p / q;
    if x.abs() >= 4.0 {
        1f32.copysign(x)
    } else {
        ratio
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::cpu::erf::erf_f64;

    /// Distance in units of the last place between `got` and the exact `want`.
    fn ulps(got: f32, want: f64) -> f64 {
        let rounded = (want as f32).abs();
        let spacing = (f32::from_bits(rounded.to_bits() + 1) - rounded) as f64;
        (got as f64 - want).abs() / spacing
    }

    /// Points spread over `range`, dense near 0: ±2^k·(1 + i/64) and a uniform grid.
    fn samples(range: std::ops::RangeInclusive<f32>) -> Vec<f32> {
        let scales =
            (-60..8).flat_map(|k| (0..64).map(move |i| 2f32.powi(k) * (1.0 + i as f32 / 64.0)));
        let grid = (0..20_000).map(|i| -104.0 + 192.0 * i as f32 / 20_000.0);
        scales
            .flat_map(|v| [v, -v])
            .chain(grid)
            .chain([0.0, 0.5, -0.5, 0.499_999_97, -0.499_999_97])
            .filter(|v| range.contains(v))
            .collect()
    }

    #[test]
    fn expm1_is_within_two_ulp() {
        let mut worst = (0.0, 0.0f32);
        for x in samples(-103.0..=88.0) {
            let error = ulps(expm1(x), (x as f64).exp_m1());
            if error > worst.0 {
                worst = (error, x);
            }
        }
        assert!(worst.0 <= 2.0, "expm1({}) is {} ulp off", worst.1, worst.0);
        assert_eq!(expm1(0.0), 0.0);
        assert_eq!(expm1(-200.0), -1.0);
        assert_eq!(expm1(100.0), f32::INFINITY);
        assert!(expm1(f32::NAN).is_nan());
    }

    #[test]
    fn erf_is_within_4e7() {
        for x in samples(-10.0..=10.0) {
            let want = erf_f64(x as f64);
            assert!(
                (erf(x) as f64 - want).abs() <= 4e-7,
                "erf({x}) = {} vs {want}",
                erf(x)
            );
        }
        assert_eq!((erf(0.0), erf(9.0), erf(-9.0)), (0.0, 1.0, -1.0));
        assert!(erf(f32::NAN).is_nan());
    }
}
