//! The activations of a recurrent cell's gates as its kernels apply them, each with its
//! derivative from its own output. The same functions as the dense kernels' activations, with a
//! tanh LLVM can vectorise (the standard library's `f32::tanh` is a scalar call into libm, and a
//! cell applies tanh twice per unit and step).

use crate::math::exp;

/// An activation a gate kernel applies, differentiated from its output alone.
pub(crate) trait Gate: Copy {
    /// The activation of `x`.
    fn value(x: f32) -> f32;
    /// The derivative at the point whose activation is `y`.
    fn slope_from_output(y: f32) -> f32;
}

/// The dense kernels' activations are gates as they are.
impl<T: crate::dense::activation::ScalarActivation> Gate for T {
    #[inline(always)]
    fn value(x: f32) -> f32 {
        T::value(x)
    }

    #[inline(always)]
    fn slope_from_output(y: f32) -> f32 {
        T::slope_from_output(y)
    }
}

/// The identity.
#[derive(Clone, Copy)]
pub(crate) struct Linear;

impl Gate for Linear {
    #[inline(always)]
    fn value(x: f32) -> f32 {
        x
    }

    #[inline(always)]
    fn slope_from_output(_y: f32) -> f32 {
        1.0
    }
}

/// max(x, 0), keeping NaN; its derivative is 0 at 0, as TensorFlow's.
#[derive(Clone, Copy)]
pub(crate) struct Relu;

impl Gate for Relu {
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
        if y > 0.0 {
            1.0
        } else {
            0.0
        }
    }
}

/// 1 / (1 + exp(-x)) with the vectorisable `exp`.
#[derive(Clone, Copy)]
pub(crate) struct Sigmoid;

impl Gate for Sigmoid {
    #[inline(always)]
    fn value(x: f32) -> f32 {
        1.0 / (1.0 + exp(-x))
    }

    #[inline(always)]
    fn slope_from_output(y: f32) -> f32 {
        y * (1.0 - y)
    }
}

/// Hyperbolic tangent through [`tanh`].
#[derive(Clone, Copy)]
pub(crate) struct Tanh;

impl Gate for Tanh {
    #[inline(always)]
    fn value(x: f32) -> f32 {
        tanh(x)
    }

    #[inline(always)]
    fn slope_from_output(y: f32) -> f32 {
        1.0 - y * y
    }
}

/// tanh by Eigen's rational approximation (`generic_fast_tanh_float`, which TensorFlow's CPU
/// kernels evaluate): odd polynomial of degree 13 over even polynomial of degree 6 on the input
/// clamped to ±7.9988 (where the quotient rounds to ±1 in f32, as tanh does), and `x` itself below 4e-4. Straight-line
/// arithmetic, within a few ulp (tested below against f64).
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    const CLAMP: f32 = 7.998_811_7;
    const TINY: f32 = 4e-4;
    let c = x.clamp(-CLAMP, CLAMP);
    let c2 = c * c;
    let mut p = c2.mul_add(-2.760_768_5e-16, 2.000_188e-13);
    p = c2.mul_add(p, -8.604_672e-11);
    p = c2.mul_add(p, 5.122_297e-8);
    p = c2.mul_add(p, 1.485_722_4e-5);
    p = c2.mul_add(p, 6.372_619_3e-4);
    p = c2.mul_add(p, 4.893_524_6e-3);
    p *= c;
    let mut q = c2.mul_add(1.198_258_4e-6, 1.185_347_1e-4);
    q = c2.mul_add(q, 2.268_434_7e-3);
    q = c2.mul_add(q, 4.893_525e-3);
    let value = p / q;
    // NaN fails the comparison and is returned as it came.
    if x.abs() < TINY || x.is_nan() {
        x
    } else {
        value
    }
}

/// Runs `$body` with `$A` bound to the [`Gate`] type of the `FusedActivation` `$activation`.
macro_rules! with_gate_activation {
    ($activation:expr, $A:ident => $body:expr) => {
        match $activation {
            $crate::dense::FusedActivation::Linear => {
                type $A = $crate::recurrent::gates::Linear;
                $body
            }
            $crate::dense::FusedActivation::Relu => {
                type $A = $crate::recurrent::gates::Relu;
                $body
            }
            $crate::dense::FusedActivation::Sigmoid => {
                type $A = $crate::recurrent::gates::Sigmoid;
                $body
            }
            $crate::dense::FusedActivation::Tanh => {
                type $A = $crate::recurrent::gates::Tanh;
                $body
            }
            // Every other activation differentiated from its output, as the dense kernels
            // apply it.
            other => $crate::dense::activation::with_scalar_activation!(other, $A => $body),
        }
    };
}
pub(crate) use with_gate_activation;

/// Runs `$body` with `$A` and `$S` bound to the gate kernel types of a cell's `activation` and
/// `recurrent_activation` (see [`with_gate_activation`]).
macro_rules! with_cell_activations {
    ($spec:expr, $A:ident, $S:ident => $body:expr) => {
        $crate::recurrent::gates::with_gate_activation!($spec.activation, $A => {
            $crate::recurrent::gates::with_gate_activation!($spec.recurrent_activation, $S => $body)
        })
    };
}
pub(crate) use with_cell_activations;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tanh_is_within_a_few_ulp_everywhere() {
        let mut worst_relative = 0f64;
        let mut x = -12f32;
        while x <= 12.0 {
            for v in [x, x * 1e-3, x * 1e-5] {
                let exact = (v as f64).tanh();
                let got = tanh(v) as f64;
                let relative = (got - exact).abs() / exact.abs().max(f32::MIN_POSITIVE as f64);
                worst_relative = worst_relative.max(relative);
            }
            x += 1.0 / 1024.0;
        }
        // 4 ulp of f32 (2^-23 each).
        assert!(
            worst_relative < 4.0 * 1.2e-7,
            "worst relative error {worst_relative:e}"
        );
        assert_eq!((tanh(0.0), tanh(100.0), tanh(-100.0)), (0.0, 1.0, -1.0));
        assert!(tanh(f32::NAN).is_nan());
        assert_eq!(tanh(f32::INFINITY), 1.0);
    }
}
