//! `SeparableConv2D`: a depthwise convolution (each input channel with its own
//! `depth_multiplier` filters) followed by a pointwise 1x1 convolution to `filters` channels
//! (`keras/src/layers/convolutional/separable_conv2d.py`, `base_separable_conv.py`). The
//! weights are stored as Keras stores them: `depthwise_kernel` `(kh, kw, in, multiplier)`,
//! `pointwise_kernel` `(1, 1, in · multiplier, filters)` and `bias` `(filters,)`. The depthwise
//! step is `rkeras_ops::depthwise_conv2d` (see [`super::depthwise`]), the pointwise one a
//! matrix product, with a hand-written backward pass on the CPU.

use std::sync::{Arc, OnceLock};

use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use super::depthwise::{
    bias_activation, depthwise_layer_options, pre_activation_gradient, DepthwiseWindow,
};
use super::options::{input_channels, spatial_dims, Size2};
use crate::activations::ActivationFn;
use crate::builder::{LayerBuilder, LayerConfig};
use crate::initializers::Initializer;
use crate::kernel_bias::{activity_penalty, KernelBias};
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::regularizers::Regularizer;
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape, Weight};

/// `SeparableConv2D`'s options, with Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeparableConv2DConfig {
    /// Output channels.
    pub filters: usize,
    /// The depthwise window: `kernel_size`, `strides`, `padding`, `depth_multiplier`,
    /// `dilation_rate`.
    #[serde(flatten)]
    pub window: DepthwiseWindow,
    /// Applied after the convolution (default linear).
    pub activation: ActivationFn,
    /// Whether there is a bias (default true).
    pub use_bias: bool,
    /// Depthwise kernel initializer (default glorot_uniform).
    pub depthwise_initializer: Initializer,
    /// Pointwise kernel initializer (default glorot_uniform).
    pub pointwise_initializer: Initializer,
    /// Bias initializer (default zeros).
    pub bias_initializer: Initializer,
    /// Penalty on the depthwise kernel.
    pub depthwise_regularizer: Option<Regularizer>,
    /// Penalty on the pointwise kernel.
    pub pointwise_regularizer: Option<Regularizer>,
    /// Penalty on the bias.
    pub bias_regularizer: Option<Regularizer>,
    /// Penalty on the output, divided by the batch size.
    pub activity_regularizer: Option<Regularizer>,
}

/// A depthwise separable 2-D convolution: `SeparableConv2D::new(64, 3).padding("same")(x)`.
pub type SeparableConv2D = LayerBuilder<SeparableConv2DConfig>;

impl SeparableConv2D {
    /// `filters` output channels over a `kernel_size` window, Keras's defaults otherwise.
    pub fn new(filters: usize, kernel_size: impl Into<Size2>) -> Self {
        LayerBuilder::from_config(SeparableConv2DConfig {
            filters,
            window: DepthwiseWindow::new(kernel_size.into()),
            activation: ActivationFn::Linear,
            use_bias: true,
            depthwise_initializer: Initializer::glorot_uniform(),
            pointwise_initializer: Initializer::glorot_uniform(),
            bias_initializer: Initializer::Zeros,
            depthwise_regularizer: None,
            pointwise_regularizer: None,
            bias_regularizer: None,
            activity_regularizer: None,
        })
    }

    depthwise_layer_options!();

    /// The pointwise kernel's initializer.
    pub fn pointwise_initializer(self, init: impl Into<crate::InitializerArg>) -> Self {
        self.with_initializer(init, |c, init| c.pointwise_initializer = init)
    }

    /// A penalty on the pointwise kernel.
    pub fn pointwise_regularizer(self, r: Regularizer) -> Self {
        self.with(|c| c.pointwise_regularizer = Some(r))
    }
}

impl LayerConfig for SeparableConv2DConfig {
    const CLASS_NAME: &'static str = "SeparableConv2D";
    const NAME_PREFIX: &'static str = "separable_conv2d";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        if self.filters == 0 {
            return Err(Error::config(name, "filters must be positive"));
        }
        self.window.check(&name)?;
        Ok(Arc::new(SeparableConv2DLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
            weights: OnceLock::new(),
        }))
    }
}

/// The spatial axes of the layer's input.
const IMAGE: [&str; 2] = ["height", "width"];

struct SeparableWeights {
    in_channels: usize,
    depthwise: Var,
    /// The pointwise kernel and the bias over its filters.
    pointwise: KernelBias,
}

/// The layer a [`SeparableConv2D`] builder makes.
pub struct SeparableConv2DLayer {
    base: LayerBase,
    config: SeparableConv2DConfig,
    weights: OnceLock<SeparableWeights>,
}

/// What a recorded call keeps: the depthwise step's output, and the pre-activation when the
/// activation's derivative needs it.
struct Saved {
    depthwise: Tensor,
    z: Option<Tensor>,
}

impl SeparableConv2DLayer {
    /// The built weights, once `x` is checked to fit them.
    fn built(&self, x: &Tensor) -> Result<&SeparableWeights> {
        let w = self.weights.get().ok_or_else(|| {
            Error::config(self.name(), "called before it was built on an input shape")
        })?;
        spatial_dims(self.name(), x.dims(), IMAGE, w.in_channels)?;
        Ok(w)
    }

    fn make_weights(&self, in_channels: usize) -> Result<SeparableWeights> {
        let c = &self.config;
        let depthwise_shape = c.window.kernel_shape(in_channels);
        let depthwise = KernelBias::new(
            self.name(),
            &depthwise_shape,
            &c.depthwise_initializer,
            None,
        )?;
        let middle = in_channels
            .checked_mul(c.window.depth_multiplier)
            .ok_or_else(|| Error::config(self.name(), "too many depthwise channels"))?;
        let pointwise = KernelBias::new(
            self.name(),
            &[1, 1, middle, c.filters],
            &c.pointwise_initializer,
            c.use_bias.then_some(&c.bias_initializer),
        )?;
        Ok(SeparableWeights {
            in_channels,
            depthwise: depthwise.kernel,
            pointwise,
        })
    }
}

impl Layer for SeparableConv2DLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        SeparableConv2DConfig::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        let built_channels = self.weights.get().map(|w| w.in_channels);
        let channels = input_channels(self.name(), shape, &IMAGE, built_channels)?;
        let c = &self.config;
        let output = c.window.output_shape(self.name(), shape, c.filters)?;
        if self.weights.get().is_none() {
            let _ = self.weights.set(self.make_weights(channels)?);
        }
        Ok(vec![output])
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        let w = self.built(x)?;
        let c = &self.config;
        let depthwise = c
            .window
            .convolve(self.name(), x, &ctx.weight(&w.depthwise))?;
        // The pointwise 1x1 convolution: every pixel's channels times a (middle, filters)
        // matrix.
        let (n, h, wd, middle) = depthwise.dims4()?;
        let pointwise = ctx
            .weight(&w.pointwise.kernel)
            .reshape((middle, c.filters))?;
        let z = depthwise
            .reshape((n * h * wd, middle))?
            .matmul(&pointwise)?
            .reshape((n, h, wd, c.filters))?;
        let bias = w.pointwise.bias.as_ref().map(|b| ctx.weight(b));
        let (y, z) = bias_activation(z, bias, c.activation)?;
        ctx.save(Saved { depthwise, z });
        if let Some(penalty) = activity_penalty(c.activity_regularizer.as_ref(), &y)? {
            ctx.add_loss(penalty);
        }
        Ok(vec![y])
    }

    fn has_backward(&self, device: &Device) -> bool {
        rkeras_ops::kernels_on(device)
    }

    fn backward(
        &self,
        record: CallRecord,
        grad_outputs: &[Tensor],
        needs_input_grad: &[bool],
        weight_grads: &mut WeightGrads,
    ) -> Result<Vec<Option<Tensor>>> {
        let (x, y, dy) = record.single(self.name(), grad_outputs)?;
        let w = self.built(x)?;
        let (pointwise, bias) = (&w.pointwise.kernel, w.pointwise.bias.as_ref());
        let want_x = needs_input_grad.first().copied().unwrap_or(false);
        let want_depthwise = weight_grads.wants(&w.depthwise);
        let want_pointwise = weight_grads.wants(pointwise);
        let want_bias = bias.is_some_and(|b| weight_grads.wants(b));
        if !(want_x || want_depthwise || want_pointwise || want_bias) {
            return Ok(vec![None]);
        }
        let saved = record.saved::<Saved>(self.name())?;
        let c = &self.config;
        let (dz, bias_grad) = pre_activation_gradient(
            (c.activation, c.activity_regularizer.as_ref()),
            saved.z.as_ref(),
            (y, dy),
            want_bias,
        )?;
        if let (Some(bias), Some(grad)) = (bias, bias_grad) {
            weight_grads.add(bias, grad)?;
        }
        let middle = saved.depthwise.dims4()?.3;
        let rows = saved.depthwise.reshape(((), middle))?;
        let dz = dz.reshape(((), c.filters))?;
        if want_pointwise {
            let grad = rows.t()?.matmul(&dz)?;
            weight_grads.add(pointwise, grad.reshape(pointwise.shape())?)?;
        }
        if !(want_x || want_depthwise) {
            return Ok(vec![None]);
        }
        let kernel = pointwise.as_tensor().reshape((middle, c.filters))?;
        let d_depthwise = dz.matmul(&kernel.t()?)?.reshape(saved.depthwise.shape())?;
        let grads = c.window.gradients(
            self.name(),
            (x, w.depthwise.as_tensor(), &d_depthwise),
            want_x,
            want_depthwise,
        )?;
        if let Some(grad) = grads.kernel {
            weight_grads.add(&w.depthwise, grad)?;
        }
        Ok(vec![grads.x])
    }

    fn weights(&self) -> Vec<Weight> {
        let Some(w) = self.weights.get() else {
            return Vec::new();
        };
        let mut all = vec![
            self.base.weight("depthwise_kernel", &w.depthwise),
            self.base.weight("pointwise_kernel", &w.pointwise.kernel),
        ];
        if let Some(bias) = &w.pointwise.bias {
            all.push(self.base.weight("bias", bias));
        }
        all
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }

    fn regularization_losses(&self) -> Result<Vec<Tensor>> {
        let c = &self.config;
        let Some(w) = self.weights.get() else {
            return Ok(Vec::new());
        };
        let mut losses = Vec::new();
        if let Some(r) = &c.depthwise_regularizer {
            losses.push(r.penalty(w.depthwise.as_tensor())?);
        }
        losses.extend(w.pointwise.penalties(
            c.pointwise_regularizer.as_ref(),
            c.bias_regularizer.as_ref(),
        )?);
        Ok(losses)
    }
}

/// The harness cases: padding, strides, dilation, multipliers, activations, no bias, and a
/// forward computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    use candle_core::Device;
    crate::session::set_random_seed(29);
    let case = |conv: SeparableConv2D, shape: &str, weights: usize, params: usize| {
        LayerCase::new(conv.layer().expect("separable"), &[&[5, 6, 3]])
            .output_shapes(&[shape])
            .weights(weights, 0, params)
    };
    // Keras's count: kh·kw·in·multiplier + in·multiplier·filters + filters.
    let mut cases = vec![
        case(
            SeparableConv2D::new(4, 3),
            "(None, 3, 4, 4)",
            3,
            3 * 3 * 3 + 3 * 4 + 4,
        ),
        case(
            SeparableConv2D::new(2, (2, 3))
                .depth_multiplier(2)
                .padding("same")
                .activation("relu"),
            "(None, 5, 6, 2)",
            3,
            2 * 3 * 3 * 2 + 3 * 2 * 2 + 2,
        ),
        case(
            SeparableConv2D::new(5, 3)
                .strides((2, 1))
                .activation("sigmoid")
                .use_bias(false),
            "(None, 2, 4, 5)",
            2,
            3 * 3 * 3 + 3 * 5,
        ),
        case(
            SeparableConv2D::new(3, 2)
                .dilation_rate(2)
                .padding("same")
                .depth_multiplier(3)
                .pointwise_regularizer(Regularizer::l2(0.01))
                .activity_regularizer(Regularizer::l1(0.01)),
            "(None, 5, 6, 3)",
            3,
            2 * 2 * 3 * 3 + 3 * 3 * 3 + 3,
        ),
    ];
    // The depthwise step of DepthwiseConv2D's hand-computed case: two channels [[1, 2], [3, 4]]
    // and [[5, 6], [7, 8]], multiplier 2, kernel 1 to 16, give [90, 100, 254, 280]; the
    // pointwise kernel [[1, 0], [0, 1], [0, -1], [1, 0]] then gives 90 + 280 = 370 and
    // 100 - 254 = -154, plus the bias [1, -1].
    let x = Tensor::new(&[1f32, 5.0, 2.0, 6.0, 3.0, 7.0, 4.0, 8.0], &Device::Cpu)
        .and_then(|x| x.reshape((1, 2, 2, 2)))
        .expect("x");
    cases.push(
        LayerCase::new(
            SeparableConv2D::new(2, 2)
                .depth_multiplier(2)
                .layer()
                .expect("separable"),
            &[&[2, 2, 2]],
        )
        .output_shapes(&["(None, 1, 1, 2)"])
        .weights(3, 0, 2 * 2 * 2 * 2 + 2 * 2 * 2 + 2)
        .weight_values(vec![
            (1..=16).map(|v| v as f32).collect(),
            vec![1.0, 0.0, 0.0, 1.0, 0.0, -1.0, 1.0, 0.0],
            vec![1.0, -1.0],
        ])
        .forward(vec![x], vec![vec![371.0, -155.0]]),
    );
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_shapes_the_weights_as_keras() {
        let layer = SeparableConv2D::new(6, 3)
            .depth_multiplier(2)
            .padding("same")
            .layer()
            .unwrap();
        let out = layer
            .build(&[SymbolicShape::batched(None, &[8, 8, 4])])
            .unwrap();
        assert_eq!(out[0].to_string(), "(None, 8, 8, 6)");
        let weights: Vec<(String, Vec<usize>)> = layer
            .weights()
            .iter()
            .map(|w| (w.path.clone(), w.var.dims().to_vec()))
            .collect();
        assert_eq!(
            weights,
            [
                ("depthwise_kernel".to_string(), vec![3, 3, 4, 2]),
                ("pointwise_kernel".to_string(), vec![1, 1, 8, 6]),
                ("bias".to_string(), vec![6]),
            ]
        );
        let config = layer.config();
        for key in [
            "filters",
            "kernel_size",
            "strides",
            "padding",
            "depth_multiplier",
            "dilation_rate",
            "depthwise_initializer",
            "pointwise_initializer",
            "pointwise_regularizer",
        ] {
            assert!(config.get(key).is_some(), "{key} in {config}");
        }
    }

    #[test]
    fn bad_options_are_errors_naming_the_layer() {
        for (conv, what) in [
            (SeparableConv2D::new(0, 3), "filters"),
            (
                SeparableConv2D::new(2, 3).depth_multiplier(0),
                "depth_multiplier",
            ),
            (
                SeparableConv2D::new(2, 3).dilation_rate(2).strides(2),
                "dilation",
            ),
        ] {
            let message = conv.name("sc").layer().err().expect("refused").to_string();
            assert!(
                message.contains("'sc'") && message.contains(what),
                "{message}"
            );
        }
    }
}
