//! Activation functions, by Keras name (`keras/src/activations/activations.py`).

use std::fmt;
use std::str::FromStr;

use candle_core::{DType, Tensor};
use rkeras_ops::FusedActivation;
use serde::{Deserialize, Serialize};

use crate::Result;

/// An activation function, elementwise (or, for softmax, over the last axis), by Keras name.
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
    /// x · sigmoid(x).
    Silu,
}

impl ActivationFn {
    /// Every activation with its Keras name.
    pub const ALL: [(ActivationFn, &'static str); 9] = [
        (ActivationFn::Linear, "linear"),
        (ActivationFn::Relu, "relu"),
        (ActivationFn::Sigmoid, "sigmoid"),
        (ActivationFn::Tanh, "tanh"),
        (ActivationFn::Softmax, "softmax"),
        (ActivationFn::Elu, "elu"),
        (ActivationFn::Gelu, "gelu"),
        (ActivationFn::Softplus, "softplus"),
        (ActivationFn::Silu, "silu"),
    ];

    /// The Keras name.
    pub fn name(self) -> &'static str {
        ActivationFn::ALL
            .iter()
            .find(|(a, _)| *a == self)
            .map_or("linear", |(_, n)| n)
    }

    /// The fused kernel computing this activation, if one does.
    pub fn fused(self) -> Option<FusedActivation> {
        match self {
            ActivationFn::Linear => Some(FusedActivation::Linear),
            ActivationFn::Relu => Some(FusedActivation::Relu),
            ActivationFn::Sigmoid => Some(FusedActivation::Sigmoid),
            ActivationFn::Tanh => Some(FusedActivation::Tanh),
            _ => None,
        }
    }

    /// Applies the activation.
    ///
    /// ReLU, sigmoid and tanh on f32 run as one fused pass each way (see
    /// [`rkeras_ops::bias_activation`]); the others compose candle ops.
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        if let (Some(fused), Some(&last)) = (self.fused(), x.dims().last()) {
            if x.dtype() == DType::F32 && last > 0 {
                let rows = x.elem_count() / last;
                let y = rkeras_ops::bias_activation(&x.reshape((rows, last))?, None, fused)?;
                return Ok(y.reshape(x.shape())?);
            }
        }
        Ok(match self {
            ActivationFn::Linear => x.clone(),
            ActivationFn::Relu => x.relu()?,
            ActivationFn::Sigmoid => candle_nn::ops::sigmoid(x)?,
            ActivationFn::Tanh => x.tanh()?,
            // Composed, so autograd reaches it: candle's fused `softmax_last_dim` has no backward.
            ActivationFn::Softmax => candle_nn::ops::softmax(x, candle_core::D::Minus1)?,
            ActivationFn::Elu => x.elu(1.0)?,
            ActivationFn::Gelu => x.gelu_erf()?,
            // relu(x) + log(1 + exp(-|x|)): no overflow for large |x|.
            ActivationFn::Softplus => (x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?,
            ActivationFn::Silu => x.silu()?,
        })
    }
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
        matches!(
            self,
            ActivationFn::Gelu | ActivationFn::Softplus | ActivationFn::Silu
        )
    }

    /// The gradient of the pre-activation `z` given `y = self.apply(z)` and `y`'s gradient
    /// `dy`; `z` is read only where [`ActivationFn::needs_input`], and must then be given.
    ///
    /// The fused activations run the kernel's one pass on f32 CPU tensors (see
    /// [`rkeras_ops::bias_activation_backward`]); everything else composes candle ops, on any
    /// device, from the formulas below.
    pub fn gradient(self, z: Option<&Tensor>, y: &Tensor, dy: &Tensor) -> Result<Tensor> {
        if let (Some(fused), Some(&last)) = (self.fused(), y.dims().last()) {
            if rkeras_ops::kernels_on(y.device()) && y.dtype() == DType::F32 && last > 0 {
                let rows = y.elem_count() / last;
                let (dz, _) = rkeras_ops::bias_activation_backward(
                    fused,
                    &y.reshape((rows, last))?,
                    &dy.reshape((rows, last))?,
                    false,
                )?;
                return Ok(dz.reshape(y.shape())?);
            }
        }
        let input = || {
            z.ok_or_else(|| {
                crate::Error::config(
                    self.name(),
                    "its gradient needs the pre-activation, which was not kept",
                )
            })
        };
        Ok(match self {
            ActivationFn::Linear => dy.clone(),
            // 0 at 0, as TensorFlow's ReluGrad.
            ActivationFn::Relu => (dy * y.gt(0.0)?.to_dtype(dy.dtype())?)?,
            // y (1 - y).
            ActivationFn::Sigmoid => (dy * (y * y.affine(-1.0, 1.0)?)?)?,
            // 1 - y².
            ActivationFn::Tanh => (dy * y.sqr()?.affine(-1.0, 1.0)?)?,
            // y (dy - sum(dy y)) over the last axis.
            ActivationFn::Softmax => {
                let dot = (dy * y)?.sum_keepdim(candle_core::D::Minus1)?;
                (y * dy.broadcast_sub(&dot)?)?
            }
            // 1 where y > 0, else exp(z) = y + 1.
            ActivationFn::Elu => {
                let positive = y.gt(0.0)?;
                (dy * positive.where_cond(&y.ones_like()?, &(y + 1.0)?)?)?
            }
            // Φ(z) + z φ(z).
            ActivationFn::Gelu => {
                let z = input()?;
                let cdf = ((z / std::f64::consts::SQRT_2)?.erf()? + 1.0)?.affine(0.5, 0.0)?;
                let pdf = (z.sqr()?.affine(-0.5, 0.0)?.exp()?
                    * (1.0 / (2.0 * std::f64::consts::PI).sqrt()))?;
                (dy * (cdf + (z * pdf)?)?)?
            }
            // sigmoid(z).
            ActivationFn::Softplus => (dy * candle_nn::ops::sigmoid(input()?)?)?,
            // s (1 + z (1 - s)) with s = sigmoid(z).
            ActivationFn::Silu => {
                let z = input()?;
                let s = candle_nn::ops::sigmoid(z)?;
                (dy * (&s * ((z * s.affine(-1.0, 1.0)?)? + 1.0)?)?)?
            }
        })
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
        let name = if name == "swish" { "silu" } else { name };
        ActivationFn::ALL
            .iter()
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
    use candle_core::Device;

    fn apply(a: ActivationFn, xs: &[f32]) -> Vec<f32> {
        let t = Tensor::new(xs, &Device::Cpu).unwrap();
        a.apply(&t).unwrap().to_vec1().unwrap()
    }

    fn close(a: &[f32], b: &[f64]) {
        for (x, y) in a.iter().zip(b) {
            assert!((*x as f64 - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn values_match_hand_computation() {
        let xs = [-2.0f32, 0.0, 1.5];
        close(&apply(ActivationFn::Linear, &xs), &[-2.0, 0.0, 1.5]);
        close(&apply(ActivationFn::Relu, &xs), &[0.0, 0.0, 1.5]);
        close(
            &apply(ActivationFn::Sigmoid, &xs),
            &[1.0 / (1.0 + 2f64.exp()), 0.5, 1.0 / (1.0 + (-1.5f64).exp())],
        );
        close(
            &apply(ActivationFn::Tanh, &xs),
            &[(-2f64).tanh(), 0.0, 1.5f64.tanh()],
        );
        close(
            &apply(ActivationFn::Elu, &xs),
            &[(-2f64).exp() - 1.0, 0.0, 1.5],
        );
        close(
            &apply(ActivationFn::Softplus, &xs),
            &[
                (1.0 + (-2f64).exp()).ln(),
                2f64.ln(),
                (1.0 + 1.5f64.exp()).ln(),
            ],
        );
        // GELU(1.5) = 1.5 * Phi(1.5) = 1.5 * 0.9331927987311419
        close(
            &apply(ActivationFn::Gelu, &[1.5]),
            &[1.5 * 0.933_192_798_731_141_9],
        );
        let total = (-2f64).exp() + 1.0 + 1.5f64.exp();
        close(
            &apply(ActivationFn::Softmax, &xs),
            &[(-2f64).exp() / total, 1.0 / total, 1.5f64.exp() / total],
        );
    }

    #[test]
    fn fused_gradients_match_hand_computation() -> Result<()> {
        // d/dx of sum(act(x)) at x = [-2, 0, 1.5], shaped (3, 1, 1) to check higher ranks.
        let x = candle_core::Var::from_tensor(
            &Tensor::new(&[-2f32, 0.0, 1.5], &Device::Cpu)?.reshape((3, 1, 1))?,
        )?;
        let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
        let cases: [(ActivationFn, [f64; 3]); 3] = [
            // ReLU's gradient at 0 is 0, as TensorFlow's.
            (ActivationFn::Relu, [0.0, 0.0, 1.0]),
            (
                ActivationFn::Sigmoid,
                [-2.0, 0.0, 1.5].map(|v| sigmoid(v) * (1.0 - sigmoid(v))),
            ),
            (
                ActivationFn::Tanh,
                [-2f64, 0.0, 1.5].map(|v| 1.0 - v.tanh().powi(2)),
            ),
        ];
        for (activation, expected) in cases {
            let y = activation.apply(x.as_tensor())?;
            assert_eq!(y.dims(), &[3, 1, 1]);
            let grads = y.sum_all()?.backward()?;
            let grad = grads
                .get(x.as_tensor())
                .map(|g| g.flatten_all())
                .transpose()?;
            let grad = grad
                .map(|g| g.to_vec1::<f32>())
                .transpose()?
                .unwrap_or_default();
            close(&grad, &expected);
            assert_eq!(grad.len(), 3, "{activation}");
        }
        assert_eq!(ActivationFn::Softmax.fused(), None);
        Ok(())
    }

    #[test]
    fn softplus_does_not_overflow() {
        let v = apply(ActivationFn::Softplus, &[100.0, -100.0]);
        assert!((v[0] - 100.0).abs() < 1e-4 && v[1] >= 0.0 && v[1] < 1e-30);
    }

    #[test]
    fn parses_keras_names() {
        assert_eq!("relu".parse::<ActivationFn>(), Ok(ActivationFn::Relu));
        assert_eq!("swish".parse::<ActivationFn>(), Ok(ActivationFn::Silu));
        let err = "rleu".parse::<ActivationFn>().unwrap_err();
        assert!(err.contains("rleu") && err.contains("sigmoid"));
    }
}
