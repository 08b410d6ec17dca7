//! Activation functions, by Keras name (`keras/src/activations/activations.py`).

use std::fmt;
use std::str::FromStr;

use candle_core::{DType, Tensor};
use rkeras_ops::FusedActivation;
use serde::{Deserialize, Serialize};

use crate::Result;

/// An elementwise (or, for softmax, last-axis) activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
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

impl Activation {
    /// Every activation with its Keras name.
    pub const ALL: [(Activation, &'static str); 9] = [
        (Activation::Linear, "linear"),
        (Activation::Relu, "relu"),
        (Activation::Sigmoid, "sigmoid"),
        (Activation::Tanh, "tanh"),
        (Activation::Softmax, "softmax"),
        (Activation::Elu, "elu"),
        (Activation::Gelu, "gelu"),
        (Activation::Softplus, "softplus"),
        (Activation::Silu, "silu"),
    ];

    /// The Keras name.
    pub fn name(self) -> &'static str {
        Activation::ALL
            .iter()
            .find(|(a, _)| *a == self)
            .map_or("linear", |(_, n)| n)
    }

    /// The fused kernel computing this activation, if one does.
    pub fn fused(self) -> Option<FusedActivation> {
        match self {
            Activation::Linear => Some(FusedActivation::Linear),
            Activation::Relu => Some(FusedActivation::Relu),
            Activation::Sigmoid => Some(FusedActivation::Sigmoid),
            Activation::Tanh => Some(FusedActivation::Tanh),
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
            Activation::Linear => x.clone(),
            Activation::Relu => x.relu()?,
            Activation::Sigmoid => candle_nn::ops::sigmoid(x)?,
            Activation::Tanh => x.tanh()?,
            // Composed, so autograd reaches it: candle's fused `softmax_last_dim` has no backward.
            Activation::Softmax => candle_nn::ops::softmax(x, candle_core::D::Minus1)?,
            Activation::Elu => x.elu(1.0)?,
            Activation::Gelu => x.gelu_erf()?,
            // relu(x) + log(1 + exp(-|x|)): no overflow for large |x|.
            Activation::Softplus => (x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?,
            Activation::Silu => x.silu()?,
        })
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Activation {
    type Err = String;

    fn from_str(name: &str) -> std::result::Result<Self, String> {
        let name = if name == "swish" { "silu" } else { name };
        Activation::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(a, _)| *a)
            .ok_or_else(|| {
                let known: Vec<&str> = Activation::ALL.iter().map(|(_, n)| *n).collect();
                format!("unknown activation '{name}' (known: {})", known.join(", "))
            })
    }
}

/// An activation given to a builder, by value or by Keras name (checked when the layer is made).
#[derive(Debug, Clone)]
pub struct ActivationArg(pub(crate) std::result::Result<Activation, String>);

impl From<Activation> for ActivationArg {
    fn from(a: Activation) -> Self {
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

    fn apply(a: Activation, xs: &[f32]) -> Vec<f32> {
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
        close(&apply(Activation::Linear, &xs), &[-2.0, 0.0, 1.5]);
        close(&apply(Activation::Relu, &xs), &[0.0, 0.0, 1.5]);
        close(
            &apply(Activation::Sigmoid, &xs),
            &[1.0 / (1.0 + 2f64.exp()), 0.5, 1.0 / (1.0 + (-1.5f64).exp())],
        );
        close(
            &apply(Activation::Tanh, &xs),
            &[(-2f64).tanh(), 0.0, 1.5f64.tanh()],
        );
        close(
            &apply(Activation::Elu, &xs),
            &[(-2f64).exp() - 1.0, 0.0, 1.5],
        );
        close(
            &apply(Activation::Softplus, &xs),
            &[
                (1.0 + (-2f64).exp()).ln(),
                2f64.ln(),
                (1.0 + 1.5f64.exp()).ln(),
            ],
        );
        // GELU(1.5) = 1.5 * Phi(1.5) = 1.5 * 0.9331927987311419
        close(
            &apply(Activation::Gelu, &[1.5]),
            &[1.5 * 0.933_192_798_731_141_9],
        );
        let total = (-2f64).exp() + 1.0 + 1.5f64.exp();
        close(
            &apply(Activation::Softmax, &xs),
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
        let cases: [(Activation, [f64; 3]); 3] = [
            // ReLU's gradient at 0 is 0, as TensorFlow's.
            (Activation::Relu, [0.0, 0.0, 1.0]),
            (
                Activation::Sigmoid,
                [-2.0, 0.0, 1.5].map(|v| sigmoid(v) * (1.0 - sigmoid(v))),
            ),
            (
                Activation::Tanh,
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
        assert_eq!(Activation::Softmax.fused(), None);
        Ok(())
    }

    #[test]
    fn softplus_does_not_overflow() {
        let v = apply(Activation::Softplus, &[100.0, -100.0]);
        assert!((v[0] - 100.0).abs() < 1e-4 && v[1] >= 0.0 && v[1] < 1e-30);
    }

    #[test]
    fn parses_keras_names() {
        assert_eq!("relu".parse::<Activation>(), Ok(Activation::Relu));
        assert_eq!("swish".parse::<Activation>(), Ok(Activation::Silu));
        let err = "rleu".parse::<Activation>().unwrap_err();
        assert!(err.contains("rleu") && err.contains("sigmoid"));
    }
}
