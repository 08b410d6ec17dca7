//! `Conv1D`: 1-D convolution over channels-last sequences
//! (`keras/src/layers/convolutional/conv1d.py`, `base_conv.py`), `groups` aside (always 1). The
//! kernel is stored as Keras stores it, `(k, in, filters)`; the work is done by
//! `rkeras_ops::conv2d` on the sequence seen as an image one row high, `(batch, 1, steps, ch)`,
//! and the kernel as a window one row high, `(1, k, in, filters)`: both are views, not copies.

use std::sync::{Arc, OnceLock};

use candle_core::{Device, Tensor};
use rkeras_ops::{Conv2dParams, Conv2dWanted, Padding2d};
use serde::{Deserialize, Serialize};

use crate::activations::ActivationFn;
use crate::builder::{LayerBuilder, LayerConfig};
use crate::convolutional::options::{
    check_conv_options, input_channels, spatial_dims, Padding1D, Padding1DArg, Size2,
};
use crate::initializers::Initializer;
use crate::kernel_bias::{
    activity_penalty, kernel_layer_logits_twin, kernel_layer_methods, kernel_layer_options,
    with_activity_penalty_gradient, KernelBias,
};
use crate::layer::single_input;
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::regularizers::Regularizer;
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// `Conv1D`'s options, with Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conv1DConfig {
    /// Output channels.
    pub filters: usize,
    /// Window length.
    pub kernel_size: usize,
    /// Steps between windows (default 1).
    pub strides: usize,
    /// `valid` (default), `same` or `causal`.
    pub padding: Padding1D,
    /// Spacing between kernel taps (default 1).
    pub dilation_rate: usize,
    /// Applied after the convolution (default linear).
    pub activation: ActivationFn,
    /// Whether there is a bias (default true).
    pub use_bias: bool,
    /// Kernel initializer (default glorot_uniform).
    pub kernel_initializer: Initializer,
    /// Bias initializer (default zeros).
    pub bias_initializer: Initializer,
    /// Penalty on the kernel.
    pub kernel_regularizer: Option<Regularizer>,
    /// Penalty on the bias.
    pub bias_regularizer: Option<Regularizer>,
    /// Penalty on the output, divided by the batch size.
    pub activity_regularizer: Option<Regularizer>,
}

/// A 1-D convolution: `Conv1D::new(32, 3).activation("relu").padding("causal")(x)`.
pub type Conv1D = LayerBuilder<Conv1DConfig>;

impl Conv1D {
    kernel_layer_options!();

    /// `filters` output channels over a window of `kernel_size` steps, Keras's defaults
    /// otherwise.
    pub fn new(filters: usize, kernel_size: usize) -> Self {
        LayerBuilder::from_config(Conv1DConfig {
            filters,
            kernel_size,
            strides: 1,
            padding: Padding1D::Valid,
            dilation_rate: 1,
            activation: ActivationFn::Linear,
            use_bias: true,
            kernel_initializer: Initializer::glorot_uniform(),
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
            bias_regularizer: None,
            activity_regularizer: None,
        })
    }

    /// `"valid"`, `"same"` or `"causal"`.
    pub fn padding(self, padding: impl Into<Padding1DArg>) -> Self {
        let arg = padding.into();
        self.with_checked(|c| {
            c.padding = arg.0?;
            Ok(())
        })
    }

    /// The steps between windows.
    pub fn strides(self, strides: usize) -> Self {
        self.with(|c| c.strides = strides)
    }

    /// The spacing between kernel taps.
    pub fn dilation_rate(self, dilation: usize) -> Self {
        self.with(|c| c.dilation_rate = dilation)
    }
}

impl LayerConfig for Conv1DConfig {
    const CLASS_NAME: &'static str = "Conv1D";
    const NAME_PREFIX: &'static str = "conv1d";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        let c = self;
        let one_row = |size| Size2(1, size);
        check_conv_options(
            &name,
            c.filters,
            one_row(c.kernel_size),
            one_row(c.strides),
            one_row(c.dilation_rate),
        )?;
        Ok(Arc::new(Conv1DLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
            weights: OnceLock::new(),
        }))
    }
}

/// The spatial axis of the layer's input.
const SEQUENCE: [&str; 1] = ["steps"];

#[derive(Clone)]
struct ConvWeights {
    in_channels: usize,
    params: KernelBias,
}

/// The layer a [`Conv1D`] builder makes.
pub struct Conv1DLayer {
    base: LayerBase,
    config: Conv1DConfig,
    weights: OnceLock<ConvWeights>,
}

/// A `(batch, steps, ch)` sequence seen as a `(batch, 1, steps, ch)` image.
fn image(sequence: &Tensor) -> Result<Tensor> {
    Ok(sequence.unsqueeze(1)?)
}

/// A `(k, in, filters)` kernel seen as a `(1, k, in, filters)` window.
fn window(kernel: &Tensor) -> Result<Tensor> {
    Ok(kernel.unsqueeze(0)?)
}

impl Conv1DLayer {
    kernel_layer_logits_twin!(Conv1DLayer, Conv1DConfig);

    /// The options.
    pub fn conv_config(&self) -> &Conv1DConfig {
        &self.config
    }

    /// The (before, after) padding and output length of a sequence of `steps`, or `None` when
    /// the (dilated) window does not fit.
    fn geometry(&self, steps: usize) -> Option<(usize, usize, usize)> {
        let c = &self.config;
        c.padding
            .geometry(steps, c.kernel_size, c.strides, c.dilation_rate)
    }

    fn too_short(&self, shape: impl std::fmt::Display) -> Error {
        let c = &self.config;
        Error::shape(
            self.name(),
            format!(
                "a sequence at least as long as the {}-step window (dilated) with padding '{}'",
                c.kernel_size, c.padding
            ),
            shape,
        )
    }

    /// The built weights and the window parameters (of the one-row-high image) for input `x`,
    /// or an error saying what does not fit.
    fn checked(&self, x: &Tensor) -> Result<(&ConvWeights, Conv2dParams)> {
        let w = self.weights.get().ok_or_else(|| {
            Error::config(self.name(), "called before it was built on an input shape")
        })?;
        let [steps] = spatial_dims(self.name(), x.dims(), SEQUENCE, w.in_channels)?;
        let (left, right, _) = self
            .geometry(steps)
            .ok_or_else(|| self.too_short(format!("{:?}", x.dims())))?;
        let c = &self.config;
        // Along the one row, strides and dilation change nothing: they are given for both axes,
        // as candle's convolution (the composed form) takes them.
        let params = Conv2dParams {
            strides: (c.strides, c.strides),
            dilation: (c.dilation_rate, c.dilation_rate),
            padding: Padding2d {
                top: 0,
                bottom: 0,
                left,
                right,
            },
        };
        Ok((w, params))
    }

    /// The convolution and its activation (ReLU fused into the kernel), keeping the
    /// pre-activation for the backward pass when the call is recorded and the activation's
    /// derivative needs it.
    fn forward(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Tensor> {
        let x = single_input(self.name(), inputs)?;
        let (w, params) = self.checked(x)?;
        let activation = self.config.activation;
        let fuse_relu = activation == ActivationFn::Relu;
        let z = rkeras_ops::conv2d(
            &image(x)?,
            &window(&ctx.weight(&w.params.kernel))?,
            w.params.bias.as_ref().map(|b| ctx.weight(b)).as_ref(),
            &params,
            fuse_relu,
        )?
        .squeeze(1)?;
        if fuse_relu {
            return Ok(z);
        }
        let y = activation.apply(&z)?;
        if activation.needs_input() {
            ctx.save(z);
        }
        Ok(y)
    }

    fn make_weights(&self, in_channels: usize) -> Result<ConvWeights> {
        let c = &self.config;
        let shape = [c.kernel_size, in_channels, c.filters];
        let bias = c.use_bias.then_some(&c.bias_initializer);
        Ok(ConvWeights {
            in_channels,
            params: KernelBias::new(self.name(), &shape, &c.kernel_initializer, bias)?,
        })
    }
}

impl Layer for Conv1DLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        Conv1DConfig::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        let built_channels = self.weights.get().map(|w| w.in_channels);
        let channels = input_channels(self.name(), shape, &SEQUENCE, built_channels)?;
        let dims = shape.dims();
        let steps = match dims[1] {
            Some(steps) => Some(self.geometry(steps).ok_or_else(|| self.too_short(shape))?.2),
            None => None,
        };
        if self.weights.get().is_none() {
            let _ = self.weights.set(self.make_weights(channels)?);
        }
        Ok(vec![SymbolicShape(vec![
            dims[0],
            steps,
            Some(self.config.filters),
        ])])
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let y = self.forward(inputs, ctx)?;
        if let Some(penalty) = activity_penalty(self.config.activity_regularizer.as_ref(), &y)? {
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
        let (w, params) = self.checked(x)?;
        let (kernel, bias) = (&w.params.kernel, w.params.bias.as_ref());
        let wanted = Conv2dWanted {
            x: needs_input_grad.first().copied().unwrap_or(false),
            kernel: weight_grads.wants(kernel),
            bias: bias.is_some_and(|b| weight_grads.wants(b)),
        };
        if !(wanted.x || wanted.kernel || wanted.bias) {
            return Ok(vec![None]);
        }
        let activation = self.config.activation;
        let relu = activation == ActivationFn::Relu;
        // The activity penalty's gradient joins the output's.
        let dy = with_activity_penalty_gradient(self.config.activity_regularizer.as_ref(), y, dy)?;
        // ReLU's mask is applied by the kernel itself, from the output.
        let dz = if relu {
            dy
        } else {
            let z = record.saved_if::<Tensor>();
            activation.gradient(z, y, &dy)?
        };
        let grads = rkeras_ops::conv2d_backward(
            &image(x)?,
            &window(kernel.as_tensor())?,
            &image(y)?,
            &image(&dz)?,
            &params,
            relu,
            wanted,
        )?;
        if let Some(grad) = grads.kernel {
            weight_grads.add(kernel, grad.squeeze(0)?)?;
        }
        if let (Some(bias), Some(grad)) = (bias, grads.bias) {
            weight_grads.add(bias, grad)?;
        }
        Ok(vec![grads.x.map(|g| g.squeeze(1)).transpose()?])
    }

    kernel_layer_methods!();
}

/// The harness cases: the paddings (causal included), strides, dilation, activations, and
/// forwards computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    crate::session::set_random_seed(29);
    let layer = |conv: Conv1D| conv.layer().expect("conv1d");
    // Keras's count: k·in·filters + filters.
    let mut cases = vec![
        // Keras's docstring example: 10 steps of 128 features -> (4, 8, 32).
        LayerCase::new(layer(Conv1D::new(32, 3).activation("relu")), &[&[10, 128]])
            .output_shapes(&["(None, 8, 32)"])
            .weights(2, 0, 3 * 128 * 32 + 32),
        // Causal, dilated: (3 - 1)·2 zeros before, as many steps out as in.
        LayerCase::new(
            layer(Conv1D::new(2, 3).padding("causal").dilation_rate(2)),
            &[&[6, 3]],
        )
        .output_shapes(&["(None, 6, 2)"])
        .weights(2, 0, 3 * 3 * 2 + 2),
        // 'same', strides 2: ceil(7 / 2) = 4 steps.
        LayerCase::new(
            layer(
                Conv1D::new(3, 4)
                    .strides(2)
                    .padding("same")
                    .activation("sigmoid"),
            ),
            &[&[7, 2]],
        )
        .output_shapes(&["(None, 4, 3)"])
        .weights(2, 0, 4 * 2 * 3 + 3),
        // 'valid', no bias, an activation whose derivative needs the pre-activation.
        LayerCase::new(
            layer(Conv1D::new(2, 2).activation("gelu").use_bias(false)),
            &[&[5, 3]],
        )
        .output_shapes(&["(None, 4, 2)"])
        .weights(1, 0, 2 * 3 * 2),
    ];
    let sequence = |values: &[f32], dims: (usize, usize, usize)| {
        Tensor::new(values, &Device::Cpu)
            .and_then(|x| x.reshape(dims))
            .expect("x")
    };
    // x = [1, 2, 3], kernel [1, 10], bias 0.5, causal (one zero before):
    // y[t] = x[t - 1]·1 + x[t]·10 + 0.5 = [0 + 10, 1 + 20, 2 + 30] + 0.5.
    cases.push(
        LayerCase::new(layer(Conv1D::new(1, 2).padding("causal")), &[&[3, 1]])
            .output_shapes(&["(None, 3, 1)"])
            .weights(2, 0, 2 + 1)
            .weight_values(vec![vec![1.0, 10.0], vec![0.5]])
            .forward(
                vec![sequence(&[1.0, 2.0, 3.0], (1, 3, 1))],
                vec![vec![10.5, 21.5, 32.5]],
            ),
    );
    // The kernel's axes are (k, in, filters): one step of channels [1, 2] through
    // kernel[0] = [[1, 2], [3, 4]] (a row per input channel) gives [1 + 2·3, 2 + 2·4].
    cases.push(
        LayerCase::new(layer(Conv1D::new(2, 1).use_bias(false)), &[&[1, 2]])
            .output_shapes(&["(None, 1, 2)"])
            .weights(1, 0, 4)
            .weight_values(vec![vec![1.0, 2.0, 3.0, 4.0]])
            .forward(
                vec![sequence(&[1.0, 2.0], (1, 1, 2))],
                vec![vec![7.0, 10.0]],
            ),
    );
    cases
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Input;

    fn error_of(conv: Conv1D, input: &[usize]) -> String {
        conv(Input::new(input)).shape().unwrap_err().to_string()
    }

    #[test]
    fn bad_options_and_inputs_are_errors_naming_the_layer() {
        let err = error_of(
            Conv1D::new(2, 3).strides(2).dilation_rate(2).name("c"),
            &[8, 1],
        );
        assert!(
            err.contains("'c'") && err.contains("dilation_rate"),
            "{err}"
        );
        assert!(error_of(Conv1D::new(2, 0), &[8, 1]).contains("kernel_size"));
        assert!(error_of(Conv1D::new(0, 2), &[8, 1]).contains("filters"));
        assert!(error_of(Conv1D::new(2, 2).padding("full"), &[8, 1]).contains("causal"));
        let err = error_of(Conv1D::new(2, 5).name("short"), &[4, 1]);
        assert!(err.contains("'short'") && err.contains("window"), "{err}");
        assert!(error_of(Conv1D::new(2, 2), &[4, 4, 1]).contains("steps"));
    }

    #[test]
    fn the_kernel_is_stored_as_keras_stores_it_and_unknown_lengths_pass_through() {
        let conv = Conv1D::new(4, 3).padding("causal");
        let y = conv(Input::from_shape(
            SymbolicShape(vec![None, None, Some(5)]),
            None,
        ));
        assert_eq!(y.shape().unwrap().to_string(), "(None, None, 4)");
        assert_eq!(conv.layer().unwrap().weights()[0].var.dims(), &[3, 5, 4]);
    }
}
