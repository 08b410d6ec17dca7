//! The activations the fused kernels cover, each differentiated from its own output.

use crate::math::exp;

/// An activation a fused kernel applies in the same pass as the bias, and differentiates from its
/// output alone (so the backward pass needs no copy of the pre-activation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FusedActivation {
    /// The identity.
    Linear,
    /// max(x, 0); its gradient is 0 at x = 0, as TensorFlow's `ReluGrad`.
    Relu,
    /// 1 / (1 + exp(-x)).
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
}

/// One activation as a pair of scalar functions, for monomorphised kernels.
pub(crate) trait ScalarActivation: Copy + Send + Sync {
    /// The activation of `x`.
    fn value(x: f32) -> f32;
    /// The derivative at the point whose activation is `y`.
    fn slope_from_output(y: f32) -> f32;
}

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

/// max(x, 0), keeping NaN (so that a diverging model still reports it).
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
        if y > 0.0 {
            1.0
        } else {
            0.0
        }
    }
}

/// 1 / (1 + exp(-x)): the formula candle-nn's sigmoid uses, saturating to 0 and 1 without NaN,
/// with the vectorisable [`exp`].
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

/// Runs `$body` with `$A` bound to the [`ScalarActivation`] type of `$activation`.
macro_rules! with_scalar_activation {
    ($activation:expr, $A:ident => $body:expr) => {
        match $activation {
            $crate::dense::FusedActivation::Linear => {
                type $A = $crate::dense::activation::LinearFn;
                $body
            }
            $crate::dense::FusedActivation::Relu => {
                type $A = $crate::dense::activation::ReluFn;
                $body
            }
            $crate::dense::FusedActivation::Sigmoid => {
                type $A = $crate::dense::activation::SigmoidFn;
                $body
            }
            $crate::dense::FusedActivation::Tanh => {
                type $A = $crate::dense::activation::TanhFn;
                $body
            }
        }
    };
}
pub(crate) use with_scalar_activation;

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!((SigmoidFn::value(2.0) - 0.880_797).abs() < 1e-6);
        assert!((SigmoidFn::slope_from_output(SigmoidFn::value(2.0)) - 0.104_994).abs() < 1e-6);
        assert_eq!(
            (SigmoidFn::value(-200.0), SigmoidFn::value(200.0)),
            (0.0, 1.0)
        );
        // tanh(1) = 0.761594, slope 1 - 0.58002 = 0.419974.
        assert!((TanhFn::value(1.0) - 0.761_594).abs() < 1e-6);
        assert!((TanhFn::slope_from_output(TanhFn::value(1.0)) - 0.419_974).abs() < 1e-6);
        assert_eq!(
            (LinearFn::value(-3.0), LinearFn::slope_from_output(7.0)),
            (-3.0, 1.0)
        );
    }
}
