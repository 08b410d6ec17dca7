//! Elementwise activations differentiated from their input (GELU, SiLU, hard SiLU, mish, and the
//! configurable ReLU and ELU of Keras's activation layers): one pass forward, and one pass back
//! from the input and the output's gradient (instead of a chain of candle ops each way).

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor};

use super::activation::{composed as fused_composed, FusedActivation};
use super::activation_fns::relu6;
use super::gradient_args::expect_f32_and_gradient;
use super::parallel::{map_pairs, map_values};
use super::special::{erf, expm1};
use crate::math::exp;
use crate::storage::{cpu_f32, CpuView};

/// Name used in messages.
const OP: &str = "input_activation";

/// An elementwise activation whose derivative is computed from its input (Keras's definitions,
/// `keras/src/activations/activations.py` and `keras/src/layers/activations/`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InputActivation {
    /// The exact GELU, x·Φ(x) (Keras's default `approximate=False`).
    Gelu,
    /// x · sigmoid(x) (`silu`, alias `swish`).
    Silu,
    /// x · relu6(x + 3) / 6 (`hard_silu`, alias `hard_swish`).
    HardSilu,
    /// x · tanh(softplus(x)).
    Mish,
    /// Keras's `ReLU` layer (thresholds of at least 0): `min(x, max_value)` where
    /// `x > threshold`, else `negative_slope · (x - threshold)`. Gradient 0 at and above
    /// `max_value`, `negative_slope` at and below the threshold.
    Relu {
        /// The slope below the threshold.
        negative_slope: f32,
        /// The largest output (`f32::INFINITY` for none).
        max_value: f32,
        /// Where the identity starts.
        threshold: f32,
    },
    /// Keras's `ELU` layer: x if x > 0, else alpha · (e^x - 1).
    Elu {
        /// The scale of the negative part.
        alpha: f32,
    },
}

/// An activation's value and derivative at its input.
trait InputScalar: Copy + Send + Sync {
    /// The activation of `x`.
    fn value(self, x: f32) -> f32;
    /// Its derivative at `x`.
    fn slope(self, x: f32) -> f32;
}

/// 1 / √(2π).
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// Φ(x) = (1 + erf(x / √2)) / 2 and the density φ(x) = e^(-x²/2) / √(2π).
#[inline(always)]
fn normal_cdf_and_density(x: f32) -> (f32, f32) {
    let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
    (cdf, exp(-0.5 * x * x) * INV_SQRT_2PI)
}

#[derive(Clone, Copy)]
struct GeluFn;

impl InputScalar for GeluFn {
    #[inline(always)]
    fn value(self, x: f32) -> f32 {
        x * normal_cdf_and_density(x).0
    }

    #[inline(always)]
    fn slope(self, x: f32) -> f32 {
        let (cdf, density) = normal_cdf_and_density(x);
        cdf + x * density
    }
}

/// 1 / (1 + e^-x).
#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[derive(Clone, Copy)]
struct SiluFn;

impl InputScalar for SiluFn {
    #[inline(always)]
    fn value(self, x: f32) -> f32 {
        x * sigmoid(x)
    }

    #[inline(always)]
    fn slope(self, x: f32) -> f32 {
        let s = sigmoid(x);
        s * (1.0 + x * (1.0 - s))
    }
}

#[derive(Clone, Copy)]
struct HardSiluFn;

impl InputScalar for HardSiluFn {
    #[inline(always)]
    fn value(self, x: f32) -> f32 {
        x * relu6(x + 3.0) / 6.0
    }

    #[inline(always)]
    fn slope(self, x: f32) -> f32 {
        // hard_sigmoid(x) + x · hard_sigmoid'(x) = (2x + 3) / 6 on (-3, 3).
        if x <= -3.0 {
            0.0
        } else if x >= 3.0 {
            1.0
        } else {
            (2.0 * x + 3.0) / 6.0
        }
    }
}

/// Above this, tanh(softplus(x)) is 1 in f32 (and e^2x would overflow beyond 44).
const MISH_SATURATION: f32 = 20.0;

#[derive(Clone, Copy)]
struct MishFn;

impl MishFn {
    /// tanh(softplus(x)) and sigmoid(x), from e = e^x: tanh(ln(1 + e)) = n / (n + 2) with
    /// n = e (e + 2).
    #[inline(always)]
    fn parts(x: f32) -> (f32, f32) {
        let e = exp(x.min(MISH_SATURATION));
        let n = e * (e + 2.0);
        (n / (n + 2.0), e / (1.0 + e))
    }
}

impl InputScalar for MishFn {
    #[inline(always)]
    fn value(self, x: f32) -> f32 {
        x * Self::parts(x).0
    }

    #[inline(always)]
    fn slope(self, x: f32) -> f32 {
        let (t, s) = Self::parts(x);
        t + x * (1.0 - t * t) * s
    }
}

#[derive(Clone, Copy)]
struct ReluParams {
    negative_slope: f32,
    max_value: f32,
    threshold: f32,
}

impl InputScalar for ReluParams {
    #[inline(always)]
    fn value(self, x: f32) -> f32 {
        // Without a slope, 0 below the threshold, not 0 · (x - threshold), NaN at x = -inf.
        let below = if self.negative_slope == 0.0 {
            0.0
        } else {
            self.negative_slope * (x - self.threshold)
        };
        if x > self.threshold {
            x.min(self.max_value)
        } else if x <= self.threshold {
            below
        } else {
            // NaN stays NaN.
            x
        }
    }

    #[inline(always)]
    fn slope(self, x: f32) -> f32 {
        if x > self.threshold {
            if x < self.max_value {
                1.0
            } else {
                0.0
            }
        } else {
            self.negative_slope
        }
    }
}

#[derive(Clone, Copy)]
struct EluAlpha(f32);

impl InputScalar for EluAlpha {
    #[inline(always)]
    fn value(self, x: f32) -> f32 {
        if x > 0.0 {
            x
        } else {
            self.0 * expm1(x)
        }
    }

    #[inline(always)]
    fn slope(self, x: f32) -> f32 {
        if x > 0.0 {
            1.0
        } else {
            self.0 * exp(x)
        }
    }
}

/// Runs `$body` with `$f` bound to the [`InputScalar`] of `$activation`.
macro_rules! with_input_scalar {
    ($activation:expr, $f:ident => $body:expr) => {
        match $activation {
            InputActivation::Gelu => {
                let $f = GeluFn;
                $body
            }
            InputActivation::Silu => {
                let $f = SiluFn;
                $body
            }
            InputActivation::HardSilu => {
                let $f = HardSiluFn;
                $body
            }
            InputActivation::Mish => {
                let $f = MishFn;
                $body
            }
            InputActivation::Relu {
                negative_slope,
                max_value,
                threshold,
            } => {
                let $f = ReluParams {
                    negative_slope,
                    max_value,
                    threshold,
                };
                $body
            }
            InputActivation::Elu { alpha } => {
                let $f = EluAlpha(alpha);
                $body
            }
        }
    };
}

/// `activation(x)` elementwise, for `x` of any shape and float dtype: one pass of the kernel on
/// f32 tensors where the kernels run (its backward one pass from `x`), candle ops elsewhere.
pub fn input_activation(x: &Tensor, activation: InputActivation) -> candle_core::Result<Tensor> {
    if x.dtype() == DType::F32 && crate::kernels_on(x.device()) {
        return x.apply_op1(InputActivationOp { activation });
    }
    composed(x, activation)
}

/// The gradient of [`input_activation`]'s input `x` (f32, CPU) from the output's gradient:
/// `grad_y ⊙ activation'(x)`, in one pass.
pub fn input_activation_backward(
    activation: InputActivation,
    x: &Tensor,
    grad_y: &Tensor,
) -> candle_core::Result<Tensor> {
    expect_f32_and_gradient(OP, "x", x, grad_y)?;
    let (x_view, grad_view) = (CpuView::of(OP, "x", x)?, CpuView::of(OP, "grad_y", grad_y)?);
    let (x_data, grad_data) = (x_view.f32()?, grad_view.f32()?);
    let grad_x = with_input_scalar!(activation, f => {
        map_pairs(&x_data, &grad_data, |x, g| g * f.slope(x))
    });
    Tensor::from_vec(grad_x, x.shape(), x.device())
}

/// The activation from candle ops (differentiable by candle's autograd), for any device and
/// dtype.
fn composed(x: &Tensor, activation: InputActivation) -> candle_core::Result<Tensor> {
    match activation {
        InputActivation::Gelu => x.gelu_erf(),
        InputActivation::Silu => x.silu(),
        InputActivation::HardSilu => x * ((x + 3.0)?.clamp(0.0, 6.0)? / 6.0)?,
        InputActivation::Mish => x * fused_composed(x, FusedActivation::Softplus)?.tanh()?,
        InputActivation::Relu {
            negative_slope,
            max_value,
            threshold,
        } => {
            let above = x.gt(threshold as f64)?;
            let identity = if max_value.is_finite() {
                x.minimum(max_value as f64)?
            } else {
                x.clone()
            };
            let below = x.affine(negative_slope as f64, -(negative_slope * threshold) as f64)?;
            above.where_cond(&identity, &below)
        }
        InputActivation::Elu { alpha } => x.elu(alpha as f64),
    }
}

/// The CPU kernel.
struct InputActivationOp {
    activation: InputActivation,
}

impl CustomOp1 for InputActivationOp {
    fn name(&self) -> &'static str {
        "rkeras-input-activation"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x_data = cpu_f32(OP, "x", x, x_layout)?;
        let y = with_input_scalar!(self.activation, f => map_values(&x_data, |x| f.value(x)));
        Ok((CpuStorage::F32(y), x_layout.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad_y: &Tensor) -> candle_core::Result<Option<Tensor>> {
        input_activation_backward(self.activation, x, grad_y).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{
        assert_close, gradients_against, random_tensor, random_var, values, Lcg,
    };
    use candle_core::cpu::erf::erf_f64;
    use candle_core::Device;

    const ALL: [InputActivation; 8] = [
        InputActivation::Gelu,
        InputActivation::Silu,
        InputActivation::HardSilu,
        InputActivation::Mish,
        // Plain ReLU, Keras's defaults.
        InputActivation::Relu {
            negative_slope: 0.0,
            max_value: f32::INFINITY,
            threshold: 0.0,
        },
        InputActivation::Relu {
            negative_slope: 0.3,
            max_value: 2.5,
            threshold: 0.5,
        },
        InputActivation::Elu { alpha: 1.0 },
        InputActivation::Elu { alpha: 0.4 },
    ];

    /// The activation and its derivative at `z`, in f64, from Keras's definitions.
    fn reference(activation: InputActivation, z: f64) -> (f64, f64) {
        let sigmoid = 1.0 / (1.0 + (-z).exp());
        match activation {
            InputActivation::Gelu => {
                let cdf = 0.5 * (1.0 + erf_f64(z / std::f64::consts::SQRT_2));
                let density = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
                (z * cdf, cdf + z * density)
            }
            InputActivation::Silu => (z * sigmoid, sigmoid * (1.0 + z * (1.0 - sigmoid))),
            InputActivation::HardSilu => {
                let hard = ((z + 3.0) / 6.0).clamp(0.0, 1.0);
                let slope = if z.abs() < 3.0 { 1.0 / 6.0 } else { 0.0 };
                (z * hard, hard + z * slope)
            }
            InputActivation::Mish => {
                let t = z.exp().ln_1p().tanh();
                (z * t, t + z * (1.0 - t * t) * sigmoid)
            }
            InputActivation::Relu {
                negative_slope,
                max_value,
                threshold,
            } => {
                let (slope, max, t) = (negative_slope as f64, max_value as f64, threshold as f64);
                if z > t {
                    (z.min(max), if z < max { 1.0 } else { 0.0 })
                } else {
                    (slope * (z - t), slope)
                }
            }
            InputActivation::Elu { .. } if z > 0.0 => (z, 1.0),
            InputActivation::Elu { alpha } => (alpha as f64 * z.exp_m1(), alpha as f64 * z.exp()),
        }
    }

    #[test]
    fn forward_and_gradients_match_naive_loops() -> candle_core::Result<()> {
        let mut rng = Lcg::new(19);
        for dims in [&[1][..], &[3, 5], &[2, 3, 4], &[300, 300]] {
            for activation in ALL {
                let x = random_var(&mut rng, dims);
                // Inputs in [-6, 6): both tails and every kink's sides.
                x.set(&(x.as_tensor() * 6.0)?)?;
                let upstream = random_tensor(&mut rng, dims);
                let y = input_activation(x.as_tensor(), activation)?;
                assert_eq!(y.dims(), dims);
                let grads = gradients_against(&y, &upstream);
                let (mut want_y, mut want_grad) = (vec![], vec![]);
                for (&v, &u) in values(x.as_tensor()).iter().zip(&values(&upstream)) {
                    let (value, slope) = reference(activation, v as f64);
                    want_y.push(value);
                    want_grad.push(u as f64 * slope);
                }
                let what = format!("{activation:?} {dims:?}");
                assert_close(&format!("{what} y"), &values(&y), &want_y, 1e-6);
                let grad = grads.get(x.as_tensor()).expect("x gradient");
                assert_close(&format!("{what} grad"), &values(grad), &want_grad, 1e-6);
                let composed_y = composed(x.as_tensor(), activation)?;
                let reference: Vec<f64> = values(&composed_y).iter().map(|&v| v as f64).collect();
                assert_close(&format!("{what} composed"), &values(&y), &reference, 1e-6);
            }
        }
        Ok(())
    }

    #[test]
    fn tails_stay_finite_and_nan_stays_nan() -> candle_core::Result<()> {
        let x = Tensor::new(&[-200f32, -50.0, 50.0, 200.0], &Device::Cpu)?;
        for activation in ALL {
            let y = values(&input_activation(&x, activation)?);
            let grad = values(&input_activation_backward(activation, &x, &x.ones_like()?)?);
            assert!(
                y[..2].iter().all(|v| v.abs() <= 200.0 && v.is_finite())
                    && y[2..].iter().all(|v| v.is_finite())
                    && grad.iter().all(|v| v.is_finite()),
                "{activation:?}: {y:?} {grad:?}"
            );
            let nan = values(&input_activation(
                &Tensor::new(&[f32::NAN], &Device::Cpu)?,
                activation,
            )?);
            assert!(nan[0].is_nan(), "{activation:?}");
        }
        // mish and silu are the identity far above 0, and 0 far below.
        for activation in [InputActivation::Mish, InputActivation::Silu] {
            let y = values(&input_activation(&x, activation)?);
            assert_eq!((y[0], y[3]), (-0.0, 200.0), "{activation:?}");
        }
        Ok(())
    }

    #[test]
    fn relu_without_slope_is_zero_at_minus_infinity_and_f64_is_composed() -> candle_core::Result<()>
    {
        let relu = ALL[4];
        let x = Tensor::new(&[f32::NEG_INFINITY, -1.0, 2.0], &Device::Cpu)?;
        assert_eq!(values(&input_activation(&x, relu)?), vec![0.0, 0.0, 2.0]);
        // max 2.5 above threshold 0.5, 0.3 (x - 0.5) at or below it.
        let x64 = Tensor::new(&[-1.5f64, 0.5, 1.0, 4.0], &Device::Cpu)?;
        let y = input_activation(&x64, ALL[5])?;
        assert_eq!(y.dtype(), DType::F64);
        let y: Vec<f64> = y.to_vec1()?;
        let want = [0.3 * -2.0, 0.0, 1.0, 2.5];
        // 0.3 is read as the f32 nearest to it.
        assert!(
            y.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-7),
            "{y:?}"
        );
        Ok(())
    }
}
