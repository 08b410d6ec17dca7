//! The activations the fused kernels cover, each differentiated from its own output, and their
//! composition from candle ops for devices without the kernels.

use candle_core::Tensor;

/// SELU's alpha.
pub(crate) const SELU_ALPHA: f64 = FusedActivation::SELU_ALPHA;
/// SELU's scale.
pub(crate) const SELU_SCALE: f64 = FusedActivation::SELU_SCALE;
/// The leaky ReLU's slope below 0.
pub(crate) const LEAKY_RELU_SLOPE: f64 = FusedActivation::LEAKY_RELU_SLOPE;

/// An activation a fused kernel applies in the same pass as the bias, and differentiates from its
/// output alone (so the backward pass needs no copy of the pre-activation). Each follows the
/// Keras activation of the same name (`keras/src/activations/activations.py`).
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
    /// x if x > 0, else exp(x) - 1 (alpha 1); slope 1, else y + 1.
    Elu,
    /// scale · elu(x, alpha) with Keras's constants; slope scale, else y + scale · alpha.
    Selu,
    /// log(1 + exp(x)); slope sigmoid(x) = 1 - exp(-y).
    Softplus,
    /// x / (1 + |x|); slope (1 - |y|)².
    Softsign,
    /// exp(x); slope y.
    Exponential,
    /// relu6(x + 3) / 6 (Keras 3's); slope 1/6 where 0 < y < 1, else 0.
    HardSigmoid,
    /// min(max(x, 0), 6); slope 1 where 0 < y < 6, else 0.
    Relu6,
    /// x if x >= 0, else 0.2 x (the `leaky_relu` activation's default slope); slope 1 where
    /// y > 0, else 0.2 (as TensorFlow's `LeakyReluGrad`).
    LeakyRelu,
}

impl FusedActivation {
    /// SELU's alpha (Keras's `selu`, `keras/src/backend/numpy/nn.py`).
    pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
    /// SELU's scale.
    pub const SELU_SCALE: f64 = 1.050_700_987_355_480_5;
    /// The slope of Keras's `leaky_relu` activation below 0 (its default `negative_slope`).
    pub const LEAKY_RELU_SLOPE: f64 = 0.2;

    /// Every fused activation.
    pub const ALL: [FusedActivation; 12] = [
        FusedActivation::Linear,
        FusedActivation::Relu,
        FusedActivation::Sigmoid,
        FusedActivation::Tanh,
        FusedActivation::Elu,
        FusedActivation::Selu,
        FusedActivation::Softplus,
        FusedActivation::Softsign,
        FusedActivation::Exponential,
        FusedActivation::HardSigmoid,
        FusedActivation::Relu6,
        FusedActivation::LeakyRelu,
    ];
}

/// One activation as a pair of scalar functions, for monomorphised kernels.
pub(crate) trait ScalarActivation: Copy + Send + Sync {
    /// The activation of `x`.
    fn value(x: f32) -> f32;
    /// The derivative at the point whose activation is `y`.
    fn slope_from_output(y: f32) -> f32;
}

/// Runs `$body` with `$A` bound to the [`ScalarActivation`] type of `$activation`.
macro_rules! with_scalar_activation {
    ($activation:expr, $A:ident => $body:expr) => {{
        use $crate::dense::activation_fns as fns;
        use $crate::dense::FusedActivation as F;
        match $activation {
            F::Linear => {
                type $A = fns::LinearFn;
                $body
            }
            F::Relu => {
                type $A = fns::ReluFn;
                $body
            }
            F::Sigmoid => {
                type $A = fns::SigmoidFn;
                $body
            }
            F::Tanh => {
                type $A = fns::TanhFn;
                $body
            }
            F::Elu => {
                type $A = fns::EluFn;
                $body
            }
            F::Selu => {
                type $A = fns::SeluFn;
                $body
            }
            F::Softplus => {
                type $A = fns::SoftplusFn;
                $body
            }
            F::Softsign => {
                type $A = fns::SoftsignFn;
                $body
            }
            F::Exponential => {
                type $A = fns::ExponentialFn;
                $body
            }
            F::HardSigmoid => {
                type $A = fns::HardSigmoidFn;
                $body
            }
            F::Relu6 => {
                type $A = fns::Relu6Fn;
                $body
            }
            F::LeakyRelu => {
                type $A = fns::LeakyReluFn;
                $body
            }
        }
    }};
}
pub(crate) use with_scalar_activation;

/// The activation from candle ops (differentiable by candle's autograd), for any device and
/// dtype: what the fused ops run where their kernels do not.
pub(crate) fn composed(z: &Tensor, activation: FusedActivation) -> candle_core::Result<Tensor> {
    match activation {
        FusedActivation::Linear => Ok(z.clone()),
        FusedActivation::Relu => z.relu(),
        FusedActivation::Sigmoid => (z.neg()?.exp()? + 1.0)?.recip(),
        FusedActivation::Tanh => z.tanh(),
        FusedActivation::Elu => z.elu(1.0),
        FusedActivation::Selu => z.elu(SELU_ALPHA)? * SELU_SCALE,
        // relu(x) + log(1 + exp(-|x|)): no overflow for large |x|.
        FusedActivation::Softplus => z.relu()? + (z.abs()?.neg()?.exp()? + 1.0)?.log()?,
        FusedActivation::Softsign => z / (z.abs()? + 1.0)?,
        FusedActivation::Exponential => z.exp(),
        FusedActivation::HardSigmoid => (z + 3.0)?.clamp(0.0, 6.0)? / 6.0,
        FusedActivation::Relu6 => z.clamp(0.0, 6.0),
        FusedActivation::LeakyRelu => {
            let negative = (z.minimum(0.0)? * LEAKY_RELU_SLOPE)?;
            z.relu()? + negative
        }
    }
}
