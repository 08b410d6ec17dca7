//! Activation functions, by Keras name (`keras/src/activations/activations.py`).
//!
//! Each runs on a kernel of `rkeras_ops` on f32 CPU tensors, one pass forward and one pass back:
//! those whose derivative is a function of their output in the fused kernels Dense uses (with the
//! bias), those whose derivative needs the input (GELU, SiLU, hard SiLU, mish) in a kernel of
//! their own, softmax and log-softmax in a row kernel. Elsewhere they compose candle ops, and
//! [`ActivationFn::gradient`] holds their derivatives as candle ops.

use std::fmt;
use std::str::FromStr;

use candle_core::{DType, Tensor};
use rkeras_ops::{FusedActivation, InputActivation};
use serde::{Deserialize, Serialize};

use crate::Result;

/// An activation function, elementwise (or, for softmax and log-softmax, over the last axis),
/// by Keras name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivationFn {
    /// The identity (Keras's default, `None` or `"linear"`).
    #[default]
    Linear,
    /// max(x, 0).
    Relu,
    /// 1 / (1 + exp(-x)).
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// exp(x) / sum(exp(x)) over the last axis.
    Softmax,
    /// x if x > 0, else exp(x) - 1 (alpha 1).
    Elu,
    /// The exact GELU, x·Φ(x) (Keras's default `approximate=False`).
    Gelu,
    /// log(1 + exp(x)).
    Softplus,
    /// x · sigmoid(x) (also named `swish`).
    #[serde(alias = "swish")]
    Silu,
    /// scale · elu(x, alpha) with alpha = 1.67326324 and scale = 1.05070098.
    Selu,
    /// x / (1 + |x|).
    Softsign,
    /// exp(x).
    Exponential,
    /// relu6(x + 3) / 6: 0 below -3, 1 above 3, linear between (Keras 3's).
    HardSigmoid,
    /// x - log(sum(exp(x))) over the last axis.
    LogSoftmax,
    /// min(max(x, 0), 6).
    Relu6,
    /// x if x >= 0, else 0.2 x (the `leaky_relu` activation's default slope).
    LeakyRelu,
    /// x · hard_sigmoid(x) (also named `hard_swish`).
    #[serde(alias = "hard_swish")]
    HardSilu,
    /// x · tanh(softplus(x)).
    Mish,
}

/// How an activation is computed and differentiated.
enum Kernel {
    /// Elementwise, differentiated from its output.
    FromOutput(FusedActivation),
    /// Elementwise, differentiated from its input.
    FromInput(InputActivation),
    /// Softmax (or log-softmax) over the last axis, differentiated from its output.
    Softmax { log: bool },
}

impl ActivationFn {
    /// Every activation with its Keras name.
    pub const ALL: [(ActivationFn, &'static str); 18] = [
        (ActivationFn::Linear, "linear"),
        (ActivationFn::Relu, "relu"),
        (ActivationFn::Sigmoid, "sigmoid"),
        (ActivationFn::Tanh, "tanh"),
        (ActivationFn::Softmax, "softmax"),
        (ActivationFn::Elu, "elu"),
        (ActivationFn::Gelu, "gelu"),
        (ActivationFn::Softplus, "softplus"),
        (ActivationFn::Silu, "silu"),
        (ActivationFn::Selu, "selu"),
        (ActivationFn::Softsign, "softsign"),
        (ActivationFn::Exponential, "exponential"),
        (ActivationFn::HardSigmoid, "hard_sigmoid"),
        (ActivationFn::LogSoftmax, "log_softmax"),
        (ActivationFn::Relu6, "relu6"),
        (ActivationFn::LeakyRelu, "leaky_relu"),
        (ActivationFn::HardSilu, "hard_silu"),
        (ActivationFn::Mish, "mish"),
    ];

    /// Other names Keras accepts.
    pub const ALIASES: [(ActivationFn, &'static str); 2] = [
        (ActivationFn::Silu, "swish"),
        (ActivationFn::HardSilu, "hard_swish"),
    ];

    /// The Keras name.
    pub fn name(self) -> &'static str {
        ActivationFn::ALL
            .iter()
            .find(|(a, _)| *a == self)
            .map_or("linear", |(_, n)| n)
    }

    fn kernel(self) -> Kernel {
        use FusedActivation as F;
        use Kernel::{FromInput, FromOutput};
        match self {
            ActivationFn::Linear => FromOutput(F::Linear),
            ActivationFn::Relu => FromOutput(F::Relu),
            ActivationFn::Sigmoid => FromOutput(F::Sigmoid),
            ActivationFn::Tanh => FromOutput(F::Tanh),
            ActivationFn::Elu => FromOutput(F::Elu),
            ActivationFn::Selu => FromOutput(F::Selu),
            ActivationFn::Softplus => FromOutput(F::Softplus),
            ActivationFn::Softsign => FromOutput(F::Softsign),
            ActivationFn::Exponential => FromOutput(F::Exponential),
            ActivationFn::HardSigmoid => FromOutput(F::HardSigmoid),
            ActivationFn::Relu6 => FromOutput(F::Relu6),
            ActivationFn::LeakyRelu => FromOutput(F::LeakyRelu),
            ActivationFn::Gelu => FromInput(InputActivation::Gelu),
            ActivationFn::Silu => FromInput(InputActivation::Silu),
            ActivationFn::HardSilu => FromInput(InputActivation::HardSilu),
            ActivationFn::Mish => FromInput(InputActivation::Mish),
            ActivationFn::Softmax => Kernel::Softmax { log: false },
            ActivationFn::LogSoftmax => Kernel::Softmax { log: true },
        }
    }

    /// The fused kernel computing this activation (with a bias, in Dense), if one does: every
    /// elementwise activation whose derivative is a function of its output.
    pub fn fused(self) -> Option<FusedActivation> {
        match self.kernel() {
            Kernel::FromOutput(fused) => Some(fused),
            _ => None,
        }
    }

    /// Applies the activation: one pass of a kernel on f32 tensors where the kernels run,
    /// candle ops elsewhere.
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self.kernel() {
            Kernel::FromOutput(fused) => rkeras_ops::fused_activation(x, fused)?,
            Kernel::FromInput(activation) => rkeras_ops::input_activation(x, activation)?,
            Kernel::Softmax { log: false } => rkeras_ops::softmax(x, self.last_axis(x)?)?,
            Kernel::Softmax { log: true } => rkeras_ops::log_softmax(x, self.last_axis(x)?)?,
        })
    }

    /// The last axis of `x`, which softmax normalises.
    fn last_axis(self, x: &Tensor) -> Result<usize> {
        x.rank().checked_sub(1).ok_or_else(|| {
            crate::Error::config(self.name(), "needs an input with at least one axis")
        })
    }
}

/// `1` where `mask` holds, else `0`, in `dtype`.
fn indicator(mask: Tensor, dtype: DType) -> Result<Tensor> {
    Ok(mask.to_dtype(dtype)?)
}

impl ActivationFn {
    /// Whether Keras keeps this activation's input as the logits of its output (`sigmoid` and
    /// `softmax` set `_keras_logits` in `keras/src/activations/activations.py`), from which the
    /// cross-entropies are then computed.
    pub fn has_logits(self) -> bool {
        matches!(self, ActivationFn::Sigmoid | ActivationFn::Softmax)
    }

    /// Whether the derivative needs the pre-activation `z` (it is not a function of the output
    /// alone), so that a layer differentiating its own call must keep `z`.
    pub fn needs_input(self) -> bool {
        matches!(self.kernel(), Kernel::FromInput(_))
    }

    /// The gradient of the pre-activation `z` given `y = self.apply(z)` and `y`'s gradient
    /// `dy`; `z` is read only where [`ActivationFn::needs_input`], and must then be given.
    ///
    /// On f32 tensors where the kernels run, this is one pass of the activation's kernel;
    /// everything else composes candle ops, on any device, from the formulas below.
    pub fn gradient(self, z: Option<&Tensor>, y: &Tensor, dy: &Tensor) -> Result<Tensor> {
        let input = || {
            z.ok_or_else(|| {
                crate::Error::config(
                    self.name(),
                    "its gradient needs the pre-activation, which was not kept",
                )
            })
        };
        if rkeras_ops::kernels_on(y.device()) && y.dtype() == DType::F32 {
            return Ok(match self.kernel() {
                Kernel::FromOutput(fused) => rkeras_ops::fused_activation_backward(fused, y, dy)?,
                Kernel::FromInput(activation) => {
                    rkeras_ops::input_activation_backward(activation, input()?, dy)?
                }
                Kernel::Softmax { log: false } => {
                    rkeras_ops::softmax_backward(y, dy, self.last_axis(y)?)?
                }
                Kernel::Softmax { log: true } => {
                    rkeras_ops::log_softmax_backward(y, dy, self.last_axis(y)?)?
                }
            });
        }
        let dtype = dy.dtype();
        let (scale, alpha) = (FusedActivation::SELU_SCALE, FusedActivation::SELU_ALPHA);
        let slope = match self {
            ActivationFn::Linear => return Ok(dy.clone()),
            // 0 at 0, as TensorFlow's ReluGrad.
            ActivationFn::Relu => indicator(y.gt(0.0)?, dtype)?,
            // y (1 - y).
            ActivationFn::Sigmoid => (y * y.affine(-1.0, 1.0)?)?,
            // 1 - y².
            ActivationFn::Tanh => y.sqr()?.affine(-1.0, 1.0)?,
            // y (dy - sum(dy y)) over the last axis.
            ActivationFn::Softmax => {
                let dot = (dy * y)?.sum_keepdim(candle_core::D::Minus1)?;
                return Ok((y * dy.broadcast_sub(&dot)?)?);
            }
            // dy - exp(y) sum(dy) over the last axis.
            ActivationFn::LogSoftmax => {
                let total = dy.sum_keepdim(candle_core::D::Minus1)?;
                return Ok((dy - y.exp()?.broadcast_mul(&total)?)?);
            }
            // 1 where y > 0, else exp(z) = y + 1.
            ActivationFn::Elu => y.gt(0.0)?.where_cond(&y.ones_like()?, &(y + 1.0)?)?,
            // scale where y > 0, else scale · alpha · exp(z) = y + scale · alpha.
            ActivationFn::Selu => {
                let above = (y.ones_like()? * scale)?;
                y.gt(0.0)?.where_cond(&above, &(y + scale * alpha)?)?
            }
            // sigmoid(z) = 1 - exp(-y).
            ActivationFn::Softplus => y.neg()?.exp()?.affine(-1.0, 1.0)?,
            // (1 - |y|)² = 1 / (1 + |z|)².
            ActivationFn::Softsign => y.abs()?.affine(-1.0, 1.0)?.sqr()?,
            ActivationFn::Exponential => y.clone(),
            // 1/6 where 0 < y < 1.
            ActivationFn::HardSigmoid => {
                ((indicator(y.gt(0.0)?, dtype)? * indicator(y.lt(1.0)?, dtype)?)? / 6.0)?
            }
            // 1 where 0 < y < 6.
            ActivationFn::Relu6 => (indicator(y.gt(0.0)?, dtype)? * indicator(y.lt(6.0)?, dtype)?)?,
            // 1 where y > 0, else the slope.
            ActivationFn::LeakyRelu => indicator(y.gt(0.0)?, dtype)?.affine(
                1.0 - FusedActivation::LEAKY_RELU_SLOPE,
                FusedActivation::LEAKY_RELU_SLOPE,
            )?,
            // Φ(z) + z φ(z).
            ActivationFn::Gelu => {
                let z = input()?;
                let cdf = ((z / std::f64::consts::SQRT_2)?.erf()? + 1.0)?.affine(0.5, 0.0)?;
                let pdf = (z.sqr()?.affine(-0.5, 0.0)?.exp()?
                    * (1.0 / (2.0 * std::f64::consts::PI).sqrt()))?;
                (cdf + (z * pdf)?)?
            }
            // s (1 + z (1 - s)) with s = sigmoid(z).
            ActivationFn::Silu => {
                let z = input()?;
                let s = candle_nn::ops::sigmoid(z)?;
                (&s * ((z * s.affine(-1.0, 1.0)?)? + 1.0)?)?
            }
            // (2z + 3) / 6 on (-3, 3), 1 from 3 up.
            ActivationFn::HardSilu => {
                let z = input()?;
                let inside = (indicator(z.gt(-3.0)?, dtype)? * indicator(z.lt(3.0)?, dtype)?)?;
                ((inside * z.affine(1.0 / 3.0, 0.5)?)? + indicator(z.ge(3.0)?, dtype)?)?
            }
            // t + z (1 - t²) sigmoid(z) with t = tanh(softplus(z)).
            ActivationFn::Mish => {
                let z = input()?;
                let t = ActivationFn::Softplus.apply(z)?.tanh()?;
                let s = candle_nn::ops::sigmoid(z)?;
                (&t + (z * (t.sqr()?.affine(-1.0, 1.0)? * s)?)?)?
            }
        };
        Ok((dy * slope)?)
    }
}

impl fmt::Display for ActivationFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ActivationFn {
    type Err = String;

    fn from_str(name: &str) -> std::result::Result<Self, String> {
        ActivationFn::ALL
            .iter()
            .chain(&ActivationFn::ALIASES)
            .find(|(_, n)| *n == name)
            .map(|(a, _)| *a)
            .ok_or_else(|| {
                let known: Vec<&str> = ActivationFn::ALL.iter().map(|(_, n)| *n).collect();
                format!("unknown activation '{name}' (known: {})", known.join(", "))
            })
    }
}

/// An activation given to a builder, by value or by Keras name (checked when the layer is made).
#[derive(Debug, Clone)]
pub struct ActivationArg(pub(crate) std::result::Result<ActivationFn, String>);

impl From<ActivationFn> for ActivationArg {
    fn from(a: ActivationFn) -> Self {
        ActivationArg(Ok(a))
    }
}

impl From<&str> for ActivationArg {
    fn from(name: &str) -> Self {
        ActivationArg(name.parse())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Points away from every kink (0, ±3, 6).
    const XS: [f64; 6] = [-4.0, -2.0, -0.5, 0.25, 1.5, 7.0];

    /// Each activation's value and derivative at `x`, written from Keras's definitions.
    fn by_hand(activation: ActivationFn, x: f64) -> (f64, f64) {
        let sigmoid = 1.0 / (1.0 + (-x).exp());
        let (scale, alpha) = (1.050_700_987_355_480_5, 1.673_263_242_354_377_3);
        let step = |low: f64, high: f64| if x > low && x < high { 1.0 } else { 0.0 };
        match activation {
            ActivationFn::Linear => (x, 1.0),
            ActivationFn::Relu => (x.max(0.0), step(0.0, f64::INFINITY)),
            ActivationFn::Sigmoid => (sigmoid, sigmoid * (1.0 - sigmoid)),
            ActivationFn::Tanh => (x.tanh(), 1.0 - x.tanh().powi(2)),
            ActivationFn::Elu if x > 0.0 => (x, 1.0),
            ActivationFn::Elu => (x.exp() - 1.0, x.exp()),
            ActivationFn::Selu if x > 0.0 => (scale * x, scale),
            ActivationFn::Selu => (scale * alpha * (x.exp() - 1.0), scale * alpha * x.exp()),
            ActivationFn::Softplus => ((1.0 + x.exp()).ln(), sigmoid),
            ActivationFn::Softsign => (x / (1.0 + x.abs()), 1.0 / (1.0 + x.abs()).powi(2)),
            ActivationFn::Exponential => (x.exp(), x.exp()),
            ActivationFn::HardSigmoid => (((x + 3.0) / 6.0).clamp(0.0, 1.0), step(-3.0, 3.0) / 6.0),
            ActivationFn::Relu6 => (x.clamp(0.0, 6.0), step(0.0, 6.0)),
            ActivationFn::LeakyRelu if x > 0.0 => (x, 1.0),
            ActivationFn::LeakyRelu => (0.2 * x, 0.2),
            ActivationFn::Gelu => {
                // Φ(x) from the error function of candle's CPU backend, in f64.
                let cdf = 0.5 * (1.0 + candle_core::cpu::erf::erf_f64(x / 2f64.sqrt()));
                let pdf = (-x * x / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
                (x * cdf, cdf + x * pdf)
            }
            ActivationFn::Silu => (x * sigmoid, sigmoid + x * sigmoid * (1.0 - sigmoid)),
            ActivationFn::HardSilu => {
                let hard = ((x + 3.0) / 6.0).clamp(0.0, 1.0);
                (x * hard, hard + x * step(-3.0, 3.0) / 6.0)
            }
            ActivationFn::Mish => {
                let t = (1.0 + x.exp()).ln().tanh();
                (x * t, t + x * (1.0 - t * t) * sigmoid)
            }
            // Over the row XS: in `row_by_hand`.
            ActivationFn::Softmax | ActivationFn::LogSoftmax => (f64::NAN, f64::NAN),
        }
    }

    /// Values and gradient of `sum(upstream ⊙ f(x))` over the row XS, upstream `[1, 2, ...]`.
    fn row_by_hand(activation: ActivationFn) -> (Vec<f64>, Vec<f64>) {
        let upstream: Vec<f64> = (1..=XS.len()).map(|i| i as f64).collect();
        match activation {
            ActivationFn::Softmax | ActivationFn::LogSoftmax => {
                let total: f64 = XS.iter().map(|x| x.exp()).sum();
                let p: Vec<f64> = XS.iter().map(|x| x.exp() / total).collect();
                let dot: f64 = upstream.iter().zip(&p).map(|(u, p)| u * p).sum();
                let sum: f64 = upstream.iter().sum();
                if activation == ActivationFn::Softmax {
                    let grad = p.iter().zip(&upstream).map(|(p, u)| p * (u - dot));
                    (p.clone(), grad.collect())
                } else {
                    let grad = p.iter().zip(&upstream).map(|(p, u)| u - p * sum);
                    (p.iter().map(|p| p.ln()).collect(), grad.collect())
                }
            }
            _ => XS
                .iter()
                .zip(&upstream)
                .map(|(&x, u)| {
                    let (value, slope) = by_hand(activation, x);
                    (value, u * slope)
                })
                .unzip(),
        }
    }

    fn close(what: &str, got: &[f32], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (g, w) in got.iter().zip(want) {
            assert!(
                (*g as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()),
                "{what}: {got:?} vs {want:?}"
            );
        }
    }

    fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    /// Value, `gradient` and autograd through `apply`, on `x` of shape (1, 2, 6) holding XS twice.
    fn run(activation: ActivationFn) -> Result<[Vec<f32>; 3]> {
        let values: Vec<f32> = XS.iter().chain(&XS).map(|&x| x as f32).collect();
        let x = Var::from_tensor(&Tensor::from_vec(values, (1, 2, 6), &Device::Cpu)?)?;
        let upstream = Tensor::arange(1f32, 7.0, &Device::Cpu)?.broadcast_as((1, 2, 6))?;
        let y = activation.apply(x.as_tensor())?;
        let grad = activation.gradient(Some(x.as_tensor()), &y.detach(), &upstream)?;
        let grads = (&y * &upstream)?.sum_all()?.backward()?;
        let autograd = grads.get(x.as_tensor()).expect("gradient");
        Ok([flat(&y), flat(&grad), flat(autograd)])
    }

    #[test]
    fn values_and_gradients_match_hand_computation_on_every_path() -> Result<()> {
        for (activation, name) in ActivationFn::ALL {
            let (value, grad) = row_by_hand(activation);
            let twice = |v: &[f64]| [v, v].concat();
            for composed in [false, true] {
                let [y, gradient, autograd] = if composed {
                    rkeras_ops::with_composed_ops(|| run(activation))?
                } else {
                    run(activation)?
                };
                let what = format!("{name} composed {composed}");
                close(&format!("{what} value"), &y, &twice(&value));
                close(&format!("{what} gradient"), &gradient, &twice(&grad));
                close(&format!("{what} autograd"), &autograd, &twice(&grad));
            }
        }
        Ok(())
    }

    #[test]
    fn the_derivative_of_the_input_activations_needs_the_input() -> Result<()> {
        let x = Tensor::new(&[1f32, 2.0], &Device::Cpu)?;
        for (activation, name) in ActivationFn::ALL {
            let y = activation.apply(&x)?;
            let without = activation.gradient(None, &y, &x.ones_like()?);
            assert_eq!(without.is_err(), activation.needs_input(), "{name}");
            assert_eq!(
                activation.fused().is_none(),
                activation.needs_input()
                    || matches!(activation, ActivationFn::Softmax | ActivationFn::LogSoftmax),
                "{name}"
            );
        }
        let message = ActivationFn::Gelu
            .gradient(None, &x, &x)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("gelu") && message.contains("pre-activation"),
            "{message}"
        );
        Ok(())
    }

    #[test]
    fn f64_runs_the_composed_form() -> Result<()> {
        let x = Tensor::new(&[-2f64, 0.5], &Device::Cpu)?;
        for (activation, name) in ActivationFn::ALL {
            let y = activation.apply(&x)?;
            assert_eq!(y.dtype(), DType::F64, "{name}");
            let grad = activation.gradient(Some(&x), &y, &x.ones_like()?)?;
            assert_eq!(grad.dims(), &[2], "{name}");
        }
        Ok(())
    }

    #[test]
    fn softplus_does_not_overflow_and_softmax_needs_an_axis() {
        let x = Tensor::new(&[100f32, -100.0], &Device::Cpu).unwrap();
        let v = flat(&ActivationFn::Softplus.apply(&x).unwrap());
        assert!((v[0] - 100.0).abs() < 1e-4 && v[1] >= 0.0 && v[1] < 1e-30);
        let scalar = Tensor::new(1f32, &Device::Cpu).unwrap();
        let message = ActivationFn::Softmax
            .apply(&scalar)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("softmax") && message.contains("axis"),
            "{message}"
        );
    }

    #[test]
    fn parses_keras_names_and_aliases() {
        for (activation, name) in ActivationFn::ALL {
            assert_eq!(name.parse::<ActivationFn>(), Ok(activation));
            assert_eq!(activation.to_string(), name);
            let json = serde_json::to_value(activation).unwrap();
            assert_eq!(json, serde_json::json!(name));
            assert_eq!(
                serde_json::from_value::<ActivationFn>(json).unwrap(),
                activation
            );
        }
        assert_eq!("swish".parse::<ActivationFn>(), Ok(ActivationFn::Silu));
        assert_eq!(
            "hard_swish".parse::<ActivationFn>(),
            Ok(ActivationFn::HardSilu)
        );
        let swish: ActivationFn = serde_json::from_value(serde_json::json!("swish")).unwrap();
        assert_eq!(swish, ActivationFn::Silu);
        let err = "rleu".parse::<ActivationFn>().unwrap_err();
        assert!(err.contains("rleu") && err.contains("sigmoid"));
    }
}
