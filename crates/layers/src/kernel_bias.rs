//! The kernel and optional bias that `Dense` and `Conv2D` own, with their regularizers.

use candle_core::{Tensor, Var};

use crate::initializers::Initializer;
use crate::limits::claim_weight;
use crate::regularizers::Regularizer;
use crate::session::default_device;
use crate::{LayerBase, Result, Weight};

/// A kernel of some shape and a bias over its last axis.
#[derive(Clone)]
pub(crate) struct KernelBias {
    pub kernel: Var,
    pub bias: Option<Var>,
}

impl KernelBias {
    /// Draws `layer`'s kernel of `shape` and, when `bias` is given, a bias as long as the last
    /// axis, once their sizes pass [`claim_weight`].
    pub fn new(
        layer: &str,
        shape: &[usize],
        kernel: &Initializer,
        bias: Option<&Initializer>,
    ) -> Result<Self> {
        let bias_len = shape.last().copied().unwrap_or(1);
        claim_weight(layer, shape)?;
        if bias.is_some() {
            claim_weight(layer, &[bias_len])?;
        }
        let device = default_device();
        let kernel = Var::from_tensor(&kernel.initialize(shape, &device)?)?;
        let bias = match bias {
            Some(init) => Some(Var::from_tensor(&init.initialize(&[bias_len], &device)?)?),
            None => None,
        };
        Ok(KernelBias { kernel, bias })
    }

    /// `kernel` then `bias`, as the layer's weights.
    pub fn weights(&self, base: &LayerBase) -> Vec<Weight> {
        let mut all = vec![base.weight("kernel", &self.kernel)];
        if let Some(b) = &self.bias {
            all.push(base.weight("bias", b));
        }
        all
    }

    /// The penalties of the kernel and bias regularizers.
    pub fn penalties(
        &self,
        kernel: Option<&Regularizer>,
        bias: Option<&Regularizer>,
    ) -> Result<Vec<Tensor>> {
        let mut losses = Vec::new();
        if let Some(r) = kernel {
            losses.push(r.penalty(self.kernel.as_tensor())?);
        }
        if let (Some(r), Some(b)) = (bias, &self.bias) {
            losses.push(r.penalty(b.as_tensor())?);
        }
        Ok(losses)
    }
}

/// The activity penalty of `output`, divided by the batch size as Keras 3.14+ does
/// (`keras/src/layers/layer.py`, `Layer.__call__`), when the layer has one: a layer's `call`
/// adds it to the context for candle's autograd, its `call_recorded` as a loss whose gradient
/// ([`with_activity_penalty_gradient`]) the layer's own backward pass adds.
pub(crate) fn activity_penalty(
    regularizer: Option<&Regularizer>,
    output: &Tensor,
) -> Result<Option<Tensor>> {
    regularizer
        .map(|r| Ok((r.penalty(output)? / batch_size(output))?))
        .transpose()
}

/// The gradient `grad` of the layer's `output` with that of [`activity_penalty`]'s loss added,
/// if the layer has a penalty (`grad` itself otherwise).
pub(crate) fn with_activity_penalty_gradient(
    regularizer: Option<&Regularizer>,
    output: &Tensor,
    grad: &Tensor,
) -> Result<Tensor> {
    Ok(match regularizer {
        Some(r) => (grad + (r.gradient(output)? / batch_size(output))?)?,
        None => grad.clone(),
    })
}

/// The batch size Keras divides an activity penalty by: the output's first dimension.
fn batch_size(output: &Tensor) -> f64 {
    output.dims().first().copied().unwrap_or(1).max(1) as f64
}

/// The builder methods every layer with a bias and an activation has (a kernel layer, a
/// depthwise layer), whose config has the fields `activation`, `use_bias`, `bias_initializer`,
/// `bias_regularizer` and `activity_regularizer`.
macro_rules! bias_activation_options {
    () => {
        /// The activation, by value (`Activation::Relu`) or Keras name (`"relu"`).
        pub fn activation(self, activation: impl Into<$crate::activations::ActivationArg>) -> Self {
            let arg = activation.into();
            self.with_checked(|c| {
                c.activation = arg.0?;
                Ok(())
            })
        }

        /// Whether the layer has a bias.
        pub fn use_bias(self, use_bias: bool) -> Self {
            self.with(|c| c.use_bias = use_bias)
        }

        /// The bias initializer.
        pub fn bias_initializer(self, init: impl Into<$crate::InitializerArg>) -> Self {
            self.with_initializer(init, |c, init| c.bias_initializer = init)
        }

        /// A penalty on the bias.
        pub fn bias_regularizer(self, r: $crate::Regularizer) -> Self {
            self.with(|c| c.bias_regularizer = Some(r))
        }

        /// A penalty on the output.
        pub fn activity_regularizer(self, r: $crate::Regularizer) -> Self {
            self.with(|c| c.activity_regularizer = Some(r))
        }
    };
}

pub(crate) use bias_activation_options;

/// The builder methods of a layer with a kernel and a bias (`Dense`, `Conv2D`): those of
/// [`bias_activation_options`], and `kernel_initializer` and `kernel_regularizer`.
macro_rules! kernel_layer_options {
    () => {
        $crate::kernel_bias::bias_activation_options!();

        /// The kernel initializer.
        pub fn kernel_initializer(self, init: impl Into<$crate::InitializerArg>) -> Self {
            self.with_initializer(init, |c, init| c.kernel_initializer = init)
        }

        /// A penalty on the kernel.
        pub fn kernel_regularizer(self, r: $crate::Regularizer) -> Self {
            self.with(|c| c.kernel_regularizer = Some(r))
        }
    };
}

pub(crate) use kernel_layer_options;

/// The `Layer` methods a kernel-and-bias layer writes the same way, for a type with fields
/// `base: LayerBase`, `config` (with `kernel_regularizer` and `bias_regularizer`) and
/// `weights: OnceLock<_>` holding `params: KernelBias`: `weights`, `config` and
/// `regularization_losses`.
macro_rules! kernel_layer_methods {
    () => {
        fn weights(&self) -> Vec<$crate::Weight> {
            self.weights
                .get()
                .map_or_else(Vec::new, |w| w.params.weights(&self.base))
        }

        fn config(&self) -> serde_json::Value {
            $crate::layer::config_with_name(&self.config, &self.base)
        }

        fn regularization_losses(&self) -> $crate::Result<Vec<candle_core::Tensor>> {
            let c = &self.config;
            self.weights.get().map_or(Ok(Vec::new()), |w| {
                w.params
                    .penalties(c.kernel_regularizer.as_ref(), c.bias_regularizer.as_ref())
            })
        }
    };
}
pub(crate) use kernel_layer_methods;

/// `logits_twin` for a kernel-and-bias layer `$layer` whose fields are `base: LayerBase`,
/// `config: $config` (with `activation` and `activity_regularizer`) and `weights: OnceLock<_>`
/// of a `Clone` type: a twin that outputs its pre-activation (the same weights, shared; the same
/// name; the linear activation), with the activation it leaves out. See
/// [`crate::logits::logits_twin`].
macro_rules! kernel_layer_logits_twin {
    ($layer:ident, $config:ident) => {
        pub(crate) fn logits_twin(&self) -> Option<($layer, $crate::ActivationFn)> {
            let c = &self.config;
            if !c.activation.has_logits() || c.activity_regularizer.is_some() {
                return None;
            }
            let twin = $layer {
                base: $crate::LayerBase::new(self.name().to_string(), self.trainable()),
                config: $config {
                    activation: $crate::ActivationFn::Linear,
                    ..c.clone()
                },
                weights: std::sync::OnceLock::new(),
            };
            let _ = twin.weights.set(self.weights.get()?.clone());
            Some((twin, c.activation))
        }
    };
}
pub(crate) use kernel_layer_logits_twin;
