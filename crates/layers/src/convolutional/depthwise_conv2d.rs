//! `DepthwiseConv2D`: each input channel of a channels-last image convolved with its own
//! `depth_multiplier` filters (`keras/src/layers/convolutional/depthwise_conv2d.py`,
//! `base_depthwise_conv.py`). The kernel is stored as Keras stores it, `(kh, kw, in,
//! depth_multiplier)`, under Keras 3's name `kernel`; the bias has `in · depth_multiplier`
//! values. The work is `rkeras_ops::depthwise_conv2d` (see [`super::depthwise`]), with a
//! hand-written backward pass on the CPU.

use std::sync::{Arc, OnceLock};

use candle_core::{Device, Tensor};
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

/// `DepthwiseConv2D`'s options, with Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DepthwiseConv2DConfig {
    /// The window: `kernel_size`, `strides`, `padding`, `depth_multiplier`, `dilation_rate`.
    #[serde(flatten)]
    pub window: DepthwiseWindow,
    /// Applied after the convolution (default linear).
    pub activation: ActivationFn,
    /// Whether there is a bias (default true).
    pub use_bias: bool,
    /// Depthwise kernel initializer (default glorot_uniform).
    pub depthwise_initializer: Initializer,
    /// Bias initializer (default zeros).
    pub bias_initializer: Initializer,
    /// Penalty on the depthwise kernel.
    pub depthwise_regularizer: Option<Regularizer>,
    /// Penalty on the bias.
    pub bias_regularizer: Option<Regularizer>,
    /// Penalty on the output, divided by the batch size.
    pub activity_regularizer: Option<Regularizer>,
}

/// A depthwise 2-D convolution: `DepthwiseConv2D::new(3).depth_multiplier(2)(x)`.
pub type DepthwiseConv2D = LayerBuilder<DepthwiseConv2DConfig>;

impl DepthwiseConv2D {
    /// A `kernel_size` window, Keras's defaults otherwise.
    pub fn new(kernel_size: impl Into<Size2>) -> Self {
        LayerBuilder::from_config(DepthwiseConv2DConfig {
            window: DepthwiseWindow::new(kernel_size.into()),
            activation: ActivationFn::Linear,
            use_bias: true,
            depthwise_initializer: Initializer::glorot_uniform(),
            bias_initializer: Initializer::Zeros,
            depthwise_regularizer: None,
            bias_regularizer: None,
            activity_regularizer: None,
        })
    }

    depthwise_layer_options!();
}

impl LayerConfig for DepthwiseConv2DConfig {
    const CLASS_NAME: &'static str = "DepthwiseConv2D";
    const NAME_PREFIX: &'static str = "depthwise_conv2d";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        self.window.check(&name)?;
        Ok(Arc::new(DepthwiseConv2DLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
            weights: OnceLock::new(),
        }))
    }
}

/// The spatial axes of the layer's input.
const IMAGE: [&str; 2] = ["height", "width"];

struct DepthwiseWeights {
    in_channels: usize,
    params: KernelBias,
}

/// The layer a [`DepthwiseConv2D`] builder makes.
pub struct DepthwiseConv2DLayer {
    base: LayerBase,
    config: DepthwiseConv2DConfig,
    weights: OnceLock<DepthwiseWeights>,
}

impl DepthwiseConv2DLayer {
    /// The built weights, once `x` is checked to fit them.
    fn built(&self, x: &Tensor) -> Result<&DepthwiseWeights> {
        let w = self.weights.get().ok_or_else(|| {
            Error::config(self.name(), "called before it was built on an input shape")
        })?;
        spatial_dims(self.name(), x.dims(), IMAGE, w.in_channels)?;
        Ok(w)
    }

    /// The output channels for `in_channels` input channels, or an error when they overflow.
    fn out_channels(&self, in_channels: usize) -> Result<usize> {
        in_channels
            .checked_mul(self.config.window.depth_multiplier)
            .ok_or_else(|| Error::config(self.name(), "too many output channels"))
    }

    fn make_weights(&self, in_channels: usize) -> Result<DepthwiseWeights> {
        let c = &self.config;
        let shape = c.window.kernel_shape(in_channels);
        // `KernelBias::new` sizes a bias by the kernel's last axis (the multiplier); this one
        // has a value per output channel, so it is drawn on its own, after the kernel.
        let mut params = KernelBias::new(self.name(), &shape, &c.depthwise_initializer, None)?;
        if c.use_bias {
            let out = self.out_channels(in_channels)?;
            let bias = KernelBias::new(self.name(), &[out], &c.bias_initializer, None)?;
            params.bias = Some(bias.kernel);
        }
        Ok(DepthwiseWeights {
            in_channels,
            params,
        })
    }
}

impl Layer for DepthwiseConv2DLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        DepthwiseConv2DConfig::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        let built_channels = self.weights.get().map(|w| w.in_channels);
        let channels = input_channels(self.name(), shape, &IMAGE, built_channels)?;
        let out = self.out_channels(channels)?;
        let output = self.config.window.output_shape(self.name(), shape, out)?;
        if self.weights.get().is_none() {
            let _ = self.weights.set(self.make_weights(channels)?);
        }
        Ok(vec![output])
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        let w = self.built(x)?;
        let c = &self.config;
        let z = c
            .window
            .convolve(self.name(), x, &ctx.weight(&w.params.kernel))?;
        let bias = w.params.bias.as_ref().map(|b| ctx.weight(b));
        let (y, z) = bias_activation(z, bias, c.activation)?;
        if let Some(z) = z {
            ctx.save(z);
        }
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
        let (kernel, bias) = (&w.params.kernel, w.params.bias.as_ref());
        let want_x = needs_input_grad.first().copied().unwrap_or(false);
        let want_kernel = weight_grads.wants(kernel);
        let want_bias = bias.is_some_and(|b| weight_grads.wants(b));
        if !(want_x || want_kernel || want_bias) {
            return Ok(vec![None]);
        }
        let c = &self.config;
        let (dz, bias_grad) = pre_activation_gradient(
            (c.activation, c.activity_regularizer.as_ref()),
            record.saved_if::<Tensor>(),
            (y, dy),
            want_bias,
        )?;
        if let (Some(bias), Some(grad)) = (bias, bias_grad) {
            weight_grads.add(bias, grad)?;
        }
        let grads = c.window.gradients(
            self.name(),
            (x, kernel.as_tensor(), &dz),
            want_x,
            want_kernel,
        )?;
        if let Some(grad) = grads.kernel {
            weight_grads.add(kernel, grad)?;
        }
        Ok(vec![grads.x])
    }

    fn weights(&self) -> Vec<Weight> {
        self.weights
            .get()
            .map_or_else(Vec::new, |w| w.params.weights(&self.base))
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }

    fn regularization_losses(&self) -> Result<Vec<Tensor>> {
        let c = &self.config;
        self.weights.get().map_or(Ok(Vec::new()), |w| {
            w.params.penalties(
                c.depthwise_regularizer.as_ref(),
                c.bias_regularizer.as_ref(),
            )
        })
    }
}

/// The harness cases: padding, strides, dilation, multipliers, activations, no bias, and
/// forwards computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    use candle_core::Device;
    crate::session::set_random_seed(23);
    let case = |conv: DepthwiseConv2D, shape: &str, weights: usize, params: usize| {
        LayerCase::new(conv.layer().expect("depthwise"), &[&[5, 6, 3]])
            .output_shapes(&[shape])
            .weights(weights, 0, params)
    };
    // Keras's count: kh·kw·in·multiplier + in·multiplier (the bias).
    let mut cases = vec![
        case(DepthwiseConv2D::new(3), "(None, 3, 4, 3)", 2, 3 * 3 * 3 + 3),
        case(
            DepthwiseConv2D::new((2, 3))
                .depth_multiplier(2)
                .padding("same")
                .activation("relu"),
            "(None, 5, 6, 6)",
            2,
            2 * 3 * 3 * 2 + 3 * 2,
        ),
        case(
            DepthwiseConv2D::new(3).strides((2, 3)).activation("tanh"),
            "(None, 2, 2, 3)",
            2,
            3 * 3 * 3 + 3,
        ),
        case(
            DepthwiseConv2D::new(2)
                .dilation_rate((2, 1))
                .padding("same")
                .depth_multiplier(3)
                .use_bias(false),
            "(None, 5, 6, 9)",
            1,
            2 * 2 * 3 * 3,
        ),
        case(
            DepthwiseConv2D::new(3)
                .strides(2)
                .padding("same")
                .activity_regularizer(Regularizer::l2(0.01))
                .depthwise_regularizer(Regularizer::l1(0.01)),
            "(None, 3, 3, 3)",
            2,
            3 * 3 * 3 + 3,
        ),
    ];
    // Two channels, [[1, 2], [3, 4]] and [[5, 6], [7, 8]], a 2x2 'valid' window, multiplier 2,
    // kernel k[i, j, c, m] = 1 + 4·(2i + j) + 2c + m (1 to 16 in Keras's order):
    // channel 0: 1·1 + 2·5 + 3·9 + 4·13 = 90 and 1·2 + 2·6 + 3·10 + 4·14 = 100;
    // channel 1: 5·3 + 6·7 + 7·11 + 8·15 = 254 and 5·4 + 6·8 + 7·12 + 8·16 = 280;
    // plus the bias [0.5, -0.5, 1, -1].
    let x = Tensor::new(&[1f32, 5.0, 2.0, 6.0, 3.0, 7.0, 4.0, 8.0], &Device::Cpu)
        .and_then(|x| x.reshape((1, 2, 2, 2)))
        .expect("x");
    cases.push(
        LayerCase::new(
            DepthwiseConv2D::new(2)
                .depth_multiplier(2)
                .layer()
                .expect("depthwise"),
            &[&[2, 2, 2]],
        )
        .output_shapes(&["(None, 1, 1, 4)"])
        .weights(2, 0, 2 * 2 * 2 * 2 + 2 * 2)
        .weight_values(vec![
            (1..=16).map(|v| v as f32).collect(),
            vec![0.5, -0.5, 1.0, -1.0],
        ])
        .forward(vec![x], vec![vec![90.5, 99.5, 255.0, 279.0]]),
    );
    // One channel [[1, 2], [3, 4]], kernel [[1, 2], [3, 4]], bias 0.5, 'same' pads below and
    // right: [1+4+9+16, 2·1+4·3, 3·1+4·2, 4·1] + 0.5.
    let x = Tensor::new(&[1f32, 2.0, 3.0, 4.0], &Device::Cpu)
        .and_then(|x| x.reshape((1, 2, 2, 1)))
        .expect("x");
    cases.push(
        LayerCase::new(
            DepthwiseConv2D::new(2)
                .padding("same")
                .layer()
                .expect("depthwise"),
            &[&[2, 2, 1]],
        )
        .output_shapes(&["(None, 2, 2, 1)"])
        .weights(2, 0, 5)
        .weight_values(vec![vec![1.0, 2.0, 3.0, 4.0], vec![0.5]])
        .forward(vec![x], vec![vec![30.5, 14.5, 11.5, 4.5]]),
    );
    cases
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::builtin_classes;
    use serde_json::json;

    #[test]
    fn loads_a_keras_config_and_names_weights_as_keras() {
        let config = json!({
            "name": "dw", "trainable": true, "dtype": "float32",
            "kernel_size": [3, 3], "strides": [1, 1], "padding": "same",
            "depth_multiplier": 2, "data_format": "channels_last", "dilation_rate": [1, 1],
            "activation": "relu", "use_bias": true,
            "depthwise_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform",
                "config": {"seed": null}, "registered_name": null},
            "bias_initializer": {"class_name": "Zeros"},
            "depthwise_regularizer": null, "bias_regularizer": null,
            "activity_regularizer": null, "depthwise_constraint": null, "bias_constraint": null,
        });
        let class = builtin_classes()
            .into_iter()
            .find(|c| c.class_name == "DepthwiseConv2D")
            .expect("registered");
        let layer = (class.from_config)(&config).expect("loads");
        let out = layer
            .build(&[SymbolicShape::batched(None, &[8, 8, 4])])
            .expect("builds");
        assert_eq!(out[0].to_string(), "(None, 8, 8, 8)");
        let weights: Vec<(String, Vec<usize>)> = layer
            .weights()
            .iter()
            .map(|w| (w.path.clone(), w.var.dims().to_vec()))
            .collect();
        assert_eq!(
            weights,
            [
                ("kernel".to_string(), vec![3, 3, 4, 2]),
                ("bias".to_string(), vec![8])
            ]
        );
    }

    #[test]
    fn bad_options_and_shapes_are_errors_naming_the_layer() {
        let made = |conv: DepthwiseConv2D| conv.name("dw").layer().err().expect("refused");
        for (conv, what) in [
            (
                DepthwiseConv2D::new(3).depth_multiplier(0),
                "depth_multiplier",
            ),
            (DepthwiseConv2D::new((0, 3)), "kernel_size"),
            (DepthwiseConv2D::new(3).strides(0), "strides"),
            (
                DepthwiseConv2D::new(3).strides(2).dilation_rate(2),
                "dilation",
            ),
            (DepthwiseConv2D::new(3).padding("full"), "padding"),
        ] {
            let message = made(conv).to_string();
            assert!(
                message.contains("'dw'") && message.contains(what),
                "{message}"
            );
        }
        let shape = |dims: &[usize]| {
            DepthwiseConv2D::new(3).name("dw2")(crate::Input::new(dims))
                .shape()
                .unwrap_err()
                .to_string()
        };
        assert!(shape(&[5, 3]).contains("'dw2'"));
        assert!(shape(&[2, 2, 3]).contains("window"));
    }
}
