//! The scalar functions of each [`FusedActivation`](super::FusedActivation): value and slope
//! from the output, straight-line code the kernels' loops vectorise. Comparisons written as
//! `if x <= 0.0 { 0.0 } else { x }` keep NaN (so that a diverging model still reports it).

use super::activation::{ScalarActivation, LEAKY_RELU_SLOPE, SELU_ALPHA, SELU_SCALE};
use super::special::expm1;
use crate::math::{exp, ln_1p_from_sum};

/// The identity.
#[derive(Clone, Copy)]
pub(crate) struct LinearFn;

impl ScalarActivation for LinearFn {
    #[inline(always)]
    fn value(x: f32) -> f32 {
        x
    }

    #[inline(always)]
    fn slope_from_output(_y: f32) -> f32 {
        1.0
    }
}

/// `1` where `y > 0`, else `0`.
#[inline(always)]
fn step(y: f32) -> f32 {
    if y > 0.0 {
        1.0
    } else {
        0.0
    }
}

/// max(x, 0).
#[derive(Clone, Copy)]
pub(crate) struct ReluFn;

impl ScalarActivation for ReluFn {
    #[inline(always)]
    fn value(x: f32) -> f32 {
        if x <= 0.0 {
            0.0
        } else {
            x
        }
    }

    #[inline(always)]
    fn slope_from_output(y: f32) -> f32 {
        // y > 0 exactly when x > 0.
        step(y)
    }
}

/// 1 / (1 + exp(-x)): the formula candle-nn's sigmoid uses, saturating to 0 and 1 without NaN.
#[derive(Clone, Copy)]
pub(crate) struct SigmoidFn;

impl ScalarActivation for SigmoidFn {
    #[inline(always)]
    fn value(x: f32) -> f32 {
        1.0 / (1.0 + exp(-x))
    }

    #[inline(always)]
    fn slope_from_output(y: f32) -> f32 {
        y * (1.0 - y)
    }
}

/// Hyperbolic tangent.
#[derive(Clone, Copy)]
pub(crate) struct TanhFn;

impl ScalarActivation for TanhFn {
    #[inline(always)]
    fn value(x: f32) -> f32 {
        x.tanh()
    }

    #[inline(always)]
    fn slope_from_output(y: f32) -> f32 {
        1.0 - y * y
    }
}

/// x if x > 0, else e^x - 1.
#[derive(Clone, Copy)]
pub(crate) struct EluFn;

impl ScalarActivation for EluFn {
    #[inline(always)]
    fn value(x: f32) -> f32 {
        if x > 0.0 {
            x
        } else {
            expm1(x)
        }
    }

    #[inline(always)]
    fn slope_from_output(y: f32) -> f32 {
        // e^x = y + 1 below 0.
        if y > 0.0 {
            1.0
        } else {
            y + 1.0
        }
    }
}

/// scale · x if x > 0, else scale · alpha · (e^x - 1).
#[derive(Clone, Copy)]
pub(crate) struct SeluFn;

impl ScalarActivation for SeluFn {
    #[inline(always)]
    fn value(x: f32) -> f32 {
        if x > 0.0 {
            SELU_SCALE as f32 * x
        } else {
            (SELU_SCALE * SELU_ALPHA) as f32 * expm1(x)
        }
    }

    #[inline(always)]
    fn slope_from_output(y: f32) -> f32 {
        // scale · alpha · e^x = y + scale · alpha below 0.
        if y > 0.0 {
            SELU_SCALE as f32
        } else {
            y + (SELU_SCALE * SELU_ALPHA) as f32
        }
    }
}

/// log(1 + e^x) as max(x, 0) + log(1 + e^-|x|): no overflow, full precision far below 0.
#[derive(Clone, Copy)]
pub(crate) struct SoftplusFn;

impl ScalarActivation for SoftplusFn {
    #[inline(always)]
    fn value(x: f32) -> f32 {
        let u = exp(-x.abs());
        let sum = 1.0 + u;
        x.max(0.0) + ln_1p_from_sum(u, sum, 1.0 / sum)
    }

    #[inline(always)]
    fn slope_from_output(y: f32) -> f32 {
        // sigmoid(x) = 1 - e^-y, exact even where y is tiny.
        -expm1(-y)
    }
}

/// x / (1 + |x|).
#[derive(Clone, Copy)]
pub(crate) struct SoftsignFn;

impl ScalarActivation for SoftsignFn {
    #[inline(always)]
    fn value(x: f32) -> f32 {
        x / (1.0 + x.abs())
    }

    #[inline(always)]
    fn slope_from_output(y: f32) -> f32 {
        // 1 / (1 + |x|)² and 1 - |y| = 1 / (1 + |x|).
        let rest = 1.0 - y.abs();
        rest * rest
    }
}

/// e^x.
#[derive(Clone, Copy)]
pub(crate) struct ExponentialFn;

impl ScalarActivation for ExponentialFn {
    #[inline(always)]
    fn value(x: f32) -> f32 {
        exp(x)
    }

    #[inline(always)]
    fn slope_from_output(y: f32) -> f32 {
        y
    }
}

/// min(max(x, 0), 6), keeping NaN.
#[inline(always)]
pub(crate) fn relu6(x: f32) -> f32 {
    x.clamp(0.0, 6.0)
}

/// relu6(x + 3) / 6 (Keras 3's, as JAX's `hard_sigmoid`).
#[derive(Clone, Copy)]
pub(crate) struct HardSigmoidFn;

impl ScalarActivation for HardSigmoidFn {
    #[inline(always)]
    fn value(x: f32) -> f32 {
        relu6(x + 3.0) / 6.0
    }

    #[inline(always)]
    fn slope_from_output(y: f32) -> f32 {
        if y > 0.0 && y < 1.0 {
            1.0 / 6.0
        } else {
            0.0
        }
    }
}

/// min(max(x, 0), 6).
#[derive(Clone, Copy)]
pub(crate) struct Relu6Fn;

impl ScalarActivation for Relu6Fn {
    #[inline(always)]
    fn value(x: f32) -> f32 {
        relu6(x)
    }

    #[inline(always)]
    fn slope_from_output(y: f32) -> f32 {
        if y > 0.0 && y < 6.0 {
            1.0
        } else {
            0.0
        }
    }
}

/// x if x >= 0, else 0.2 x.
#[derive(Clone, Copy)]
pub(crate) struct LeakyReluFn;

impl ScalarActivation for LeakyReluFn {
    #[inline(always)]
    fn value(x: f32) -> f32 {
        if x >= 0.0 {
            x
        } else {
            LEAKY_RELU_SLOPE as f32 * x
        }
    }

    #[inline(always)]
    fn slope_from_output(y: f32) -> f32 {
        if y > 0.0 {
            1.0
        } else {
            LEAKY_RELU_SLOPE as f32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f32, want: f64) {
        assert!(
            (got as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()),
            "{got} vs {want}"
        );
    }

    #[test]
    fn values_and_slopes_by_hand() {
        assert_eq!(
            (ReluFn::value(-2.0), ReluFn::value(0.0), ReluFn::value(1.5)),
            (0.0, 0.0, 1.5)
        );
        assert!(ReluFn::value(f32::NAN).is_nan());
        assert_eq!(
            (
                ReluFn::slope_from_output(0.0),
                ReluFn::slope_from_output(1.5)
            ),
            (0.0, 1.0)
        );
        // sigmoid(0) = 1/2, slope 1/4; sigmoid(2) = 0.880797, slope 0.104994.
        assert_eq!(SigmoidFn::value(0.0), 0.5);
        assert_eq!(SigmoidFn::slope_from_output(0.5), 0.25);
        close(SigmoidFn::value(2.0), 0.880_797);
        close(
            SigmoidFn::slope_from_output(SigmoidFn::value(2.0)),
            0.104_994,
        );
        assert_eq!(
            (SigmoidFn::value(-200.0), SigmoidFn::value(200.0)),
            (0.0, 1.0)
        );
        // tanh(1) = 0.761594, slope 1 - 0.58002 = 0.419974.
        close(TanhFn::value(1.0), 0.761_594);
        close(TanhFn::slope_from_output(TanhFn::value(1.0)), 0.419_974);
        assert_eq!(
            (LinearFn::value(-3.0), LinearFn::slope_from_output(7.0)),
            (-3.0, 1.0)
        );
        // elu(-1) = e^-1 - 1 = -0.632121, slope e^-1 = 0.367879.
        close(EluFn::value(-1.0), -0.632_120_6);
        close(EluFn::slope_from_output(EluFn::value(-1.0)), 0.367_879_4);
        assert_eq!(
            (EluFn::value(2.0), EluFn::slope_from_output(2.0)),
            (2.0, 1.0)
        );
        // selu(-1) = 1.0507010 · 1.6732632 · (e^-1 - 1) = -1.1113307, slope 1.7580993 · e^-1 =
        // 0.6467686; selu(2) = 2.1014020, slope 1.0507010.
        close(SeluFn::value(-1.0), -1.111_330_7);
        close(SeluFn::slope_from_output(SeluFn::value(-1.0)), 0.646_768_6);
        close(SeluFn::value(2.0), 2.101_402);
        close(SeluFn::slope_from_output(2.101_402), 1.050_701);
        // softplus(0) = ln 2, slope 1/2; softplus(-20) = 2.0611537e-9, slope sigmoid(-20) =
        // 2.0611536e-9; softplus(30) = 30, slope 1.
        close(SoftplusFn::value(0.0), std::f64::consts::LN_2);
        close(SoftplusFn::slope_from_output(SoftplusFn::value(0.0)), 0.5);
        let tiny = SoftplusFn::value(-20.0);
        assert!((tiny as f64 / 2.061_153_7e-9 - 1.0).abs() < 1e-6, "{tiny}");
        let tiny_slope = SoftplusFn::slope_from_output(tiny);
        assert!((tiny_slope as f64 / 2.061_153_6e-9 - 1.0).abs() < 1e-6);
        assert_eq!(
            (SoftplusFn::value(30.0), SoftplusFn::slope_from_output(30.0)),
            (30.0, 1.0)
        );
        // softsign(-3) = -3/4, slope 1/16.
        assert_eq!(SoftsignFn::value(-3.0), -0.75);
        assert_eq!(SoftsignFn::slope_from_output(-0.75), 0.0625);
        // exp(1) = e, slope e.
        close(ExponentialFn::value(1.0), std::f64::consts::E);
        assert_eq!(ExponentialFn::slope_from_output(2.5), 2.5);
        // hard_sigmoid: 0 at -3 and below, 1 at 3 and above, (x + 3) / 6 between.
        assert_eq!(
            [-4.0, -3.0, 0.0, 1.5, 3.0, 4.0].map(HardSigmoidFn::value),
            [0.0, 0.0, 0.5, 0.75, 1.0, 1.0]
        );
        assert_eq!(
            [0.0, 0.5, 1.0].map(HardSigmoidFn::slope_from_output),
            [0.0, 1.0 / 6.0, 0.0]
        );
        assert_eq!(
            [-1.0, 0.0, 3.0, 6.0, 7.0].map(Relu6Fn::value),
            [0.0, 0.0, 3.0, 6.0, 6.0]
        );
        assert_eq!(
            [0.0, 3.0, 6.0].map(Relu6Fn::slope_from_output),
            [0.0, 1.0, 0.0]
        );
        assert!(Relu6Fn::value(f32::NAN).is_nan() && HardSigmoidFn::value(f32::NAN).is_nan());
        // leaky_relu: 0.2 x below 0.
        assert_eq!([-2.0, 0.0, 3.0].map(LeakyReluFn::value), [-0.4, 0.0, 3.0]);
        assert_eq!(
            [-0.4, 0.0, 3.0].map(LeakyReluFn::slope_from_output),
            [0.2, 0.2, 1.0]
        );
    }
}
