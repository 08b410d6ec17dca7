//! `Conv2DTranspose`: transposed 2-D convolution over channels-last images
//! (`keras/src/layers/convolutional/conv2d_transpose.py`, `base_conv_transpose.py`; output
//! shapes by `compute_conv_transpose_output_shape` in `keras/src/backend/common/backend_utils.py`,
//! with the JAX backend's padding where backends differ). The kernel is stored as Keras stores it,
//! `(kh, kw, filters, in)`: filters before input channels. The work is done by
//! `rkeras_ops::conv2d_transpose`, the input-gradient pass of a convolution, and the bias and
//! activation by the fused kernels `Dense` uses.

use std::sync::{Arc, OnceLock};

use candle_core::{Device, Tensor};
use rkeras_ops::{Conv2dTransposeParams, FusedActivation};
use serde::{Deserialize, Serialize};

use crate::activations::ActivationFn;
use crate::builder::{LayerBuilder, LayerConfig};
use crate::convolutional::options::{
    check_conv_options, input_channels, spatial_dims, transpose_axis_geometry, Padding, PaddingArg,
    Size2,
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

/// `Conv2DTranspose`'s options, with Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conv2DTransposeConfig {
    /// Output channels.
    pub filters: usize,
    /// Window height and width.
    pub kernel_size: Size2,
    /// Steps between the windows of consecutive input pixels (default 1).
    pub strides: Size2,
    /// `valid` (default) or `same` (the output is the input times the strides).
    pub padding: Padding,
    /// Rows and columns added at the bottom and right of the output, each less than its stride
    /// (default none: Keras's rule picks the output size).
    pub output_padding: Option<Size2>,
    /// Spacing between kernel taps (default 1).
    pub dilation_rate: Size2,
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

/// A transposed 2-D convolution, the decoder's upsampling convolution:
/// `Conv2DTranspose::new(64, 3).activation("relu").strides(2).padding("same")(x)`.
pub type Conv2DTranspose = LayerBuilder<Conv2DTransposeConfig>;

impl Conv2DTranspose {
    kernel_layer_options!();

    /// `filters` output channels over a `kernel_size` window, Keras's defaults otherwise.
    pub fn new(filters: usize, kernel_size: impl Into<Size2>) -> Self {
        LayerBuilder::from_config(Conv2DTransposeConfig {
            filters,
            kernel_size: kernel_size.into(),
            strides: Size2(1, 1),
            padding: Padding::Valid,
            output_padding: None,
            dilation_rate: Size2(1, 1),
            activation: ActivationFn::Linear,
            use_bias: true,
            kernel_initializer: Initializer::glorot_uniform(),
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
            bias_regularizer: None,
            activity_regularizer: None,
        })
    }

    /// `"valid"` or `"same"`.
    pub fn padding(self, padding: impl Into<PaddingArg>) -> Self {
        let arg = padding.into();
        self.with_checked(|c| {
            c.padding = arg.0?;
            Ok(())
        })
    }

    /// The steps between windows.
    pub fn strides(self, strides: impl Into<Size2>) -> Self {
        let strides = strides.into();
        self.with(|c| c.strides = strides)
    }

    /// The rows and columns added at the bottom and right of the output.
    pub fn output_padding(self, output_padding: impl Into<Size2>) -> Self {
        let output_padding = output_padding.into();
        self.with(|c| c.output_padding = Some(output_padding))
    }

    /// The spacing between kernel taps.
    pub fn dilation_rate(self, dilation: impl Into<Size2>) -> Self {
        let dilation = dilation.into();
        self.with(|c| c.dilation_rate = dilation)
    }
}

impl LayerConfig for Conv2DTransposeConfig {
    const CLASS_NAME: &'static str = "Conv2DTranspose";
    const NAME_PREFIX: &'static str = "conv2d_transpose";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        let c = self;
        check_conv_options(&name, c.filters, c.kernel_size, c.strides, c.dilation_rate)?;
        if let Some(Size2(h, w)) = c.output_padding {
            if h >= c.strides.0 || w >= c.strides.1 {
                return Err(Error::config(
                    name,
                    format!(
                        "output_padding {:?} must be strictly less than strides {:?} on each axis",
                        (h, w),
                        c.strides.pair()
                    ),
                ));
            }
        }
        Ok(Arc::new(Conv2DTransposeLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
            weights: OnceLock::new(),
        }))
    }
}

/// The spatial axes of the layer's input.
const IMAGE: [&str; 2] = ["height", "width"];

#[derive(Clone)]
struct ConvWeights {
    in_channels: usize,
    params: KernelBias,
}

/// The layer a [`Conv2DTranspose`] builder makes.
pub struct Conv2DTransposeLayer {
    base: LayerBase,
    config: Conv2DTransposeConfig,
    weights: OnceLock<ConvWeights>,
}

impl Conv2DTransposeLayer {
    kernel_layer_logits_twin!(Conv2DTransposeLayer, Conv2DTransposeConfig);

    /// The options.
    pub fn conv_config(&self) -> &Conv2DTransposeConfig {
        &self.config
    }

    /// The window parameters for an input of `h` x `w` pixels, or `None` when the output
    /// would be empty or too large to count.
    fn geometry(&self, h: usize, w: usize) -> Option<Conv2dTransposeParams> {
        let c = &self.config;
        let axis = |input, axis: fn(Size2) -> usize| {
            transpose_axis_geometry(
                input,
                axis(c.kernel_size),
                axis(c.strides),
                axis(c.dilation_rate),
                c.padding,
                c.output_padding.map(axis),
            )
        };
        let (crop_h, out_h) = axis(h, |s| s.0)?;
        let (crop_w, out_w) = axis(w, |s| s.1)?;
        Some(Conv2dTransposeParams {
            strides: c.strides.pair(),
            dilation: c.dilation_rate.pair(),
            crop: (crop_h, crop_w),
            output_size: (out_h, out_w),
        })
    }

    fn empty_output(&self, shape: impl std::fmt::Display) -> Error {
        Error::shape(
            self.name(),
            "an input whose transposed convolution has at least one row and column",
            shape,
        )
    }

    /// The built weights and the window parameters for input `x`, or an error saying what
    /// does not fit.
    fn checked(&self, x: &Tensor) -> Result<(&ConvWeights, Conv2dTransposeParams)> {
        let w = self.weights.get().ok_or_else(|| {
            Error::config(self.name(), "called before it was built on an input shape")
        })?;
        let [h, wd] = spatial_dims(self.name(), x.dims(), IMAGE, w.in_channels)?;
        let params = self
            .geometry(h, wd)
            .ok_or_else(|| self.empty_output(format!("{:?}", x.dims())))?;
        Ok((w, params))
    }

    /// The transposed convolution, its bias and its activation (ReLU, sigmoid and tanh fused
    /// with the bias into one pass), keeping the pre-activation for the backward pass when the
    /// call is recorded and the activation's derivative needs it.
    fn forward(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Tensor> {
        let x = single_input(self.name(), inputs)?;
        let (w, params) = self.checked(x)?;
        let z = rkeras_ops::conv2d_transpose(x, &ctx.weight(&w.params.kernel), &params)?;
        let bias = w.params.bias.as_ref().map(|b| ctx.weight(b));
        let activation = self.config.activation;
        let fused = activation.fused();
        let filters = self.config.filters;
        let rows = z.elem_count() / filters;
        let z = rkeras_ops::bias_activation(
            &z.reshape((rows, filters))?,
            bias.as_ref(),
            fused.unwrap_or(FusedActivation::Linear),
        )?
        .reshape(z.shape())?;
        if fused.is_some() {
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
        let shape = [c.kernel_size.0, c.kernel_size.1, c.filters, in_channels];
        // `KernelBias::new` sizes a bias by the kernel's last axis; here the filters are the
        // third, so the bias is drawn as a kernel of its own, after the kernel as there.
        let mut params = KernelBias::new(self.name(), &shape, &c.kernel_initializer, None)?;
        if c.use_bias {
            let bias = KernelBias::new(self.name(), &[c.filters], &c.bias_initializer, None)?;
            params.bias = Some(bias.kernel);
        }
        Ok(ConvWeights {
            in_channels,
            params,
        })
    }
}

impl Layer for Conv2DTransposeLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        Conv2DTransposeConfig::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        let built_channels = self.weights.get().map(|w| w.in_channels);
        let channels = input_channels(self.name(), shape, &IMAGE, built_channels)?;
        let dims = shape.dims();
        let (out_h, out_w) = match (dims[1], dims[2]) {
            (Some(h), Some(w)) => {
                let params = self
                    .geometry(h, w)
                    .ok_or_else(|| self.empty_output(shape))?;
                (Some(params.output_size.0), Some(params.output_size.1))
            }
            _ => (None, None),
        };
        if self.weights.get().is_none() {
            let _ = self.weights.set(self.make_weights(channels)?);
        }
        Ok(vec![SymbolicShape(vec![
            dims[0],
            out_h,
            out_w,
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
        let want_x = needs_input_grad.first().copied().unwrap_or(false);
        let want_kernel = weight_grads.wants(kernel);
        let want_bias = bias.is_some_and(|b| weight_grads.wants(b));
        if !(want_x || want_kernel || want_bias) {
            return Ok(vec![None]);
        }
        // The activity penalty's gradient joins the output's.
        let dy = with_activity_penalty_gradient(self.config.activity_regularizer.as_ref(), y, dy)?;
        let z = record.saved_if::<Tensor>();
        let dz = self.config.activation.gradient(z, y, &dy)?;
        if let (Some(bias), true) = (bias, want_bias) {
            let filters = self.config.filters;
            let rows = dz.elem_count() / filters;
            weight_grads.add(
                bias,
                rkeras_ops::bias_gradient(&dz.reshape((rows, filters))?)?,
            )?;
        }
        if !(want_x || want_kernel) {
            return Ok(vec![None]);
        }
        let grads = rkeras_ops::conv2d_transpose_backward(
            x,
            kernel.as_tensor(),
            &dz,
            &params,
            (want_x, want_kernel),
        )?;
        if let Some(grad) = grads.kernel {
            weight_grads.add(kernel, grad)?;
        }
        Ok(vec![grads.x])
    }

    kernel_layer_methods!();
}

/// The harness cases: keras.io's VAE decoder layer, both paddings with and without
/// output_padding, dilation, activations, and forwards computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    crate::session::set_random_seed(23);
    let layer = |conv: Conv2DTranspose| conv.layer().expect("conv2d_transpose");
    // Keras's count: kh·kw·in·filters + filters.
    let mut cases = vec![
        // keras.io's VAE decoder: 7x7x64 -> 14x14x64, 36,928 parameters in Keras's summary.
        LayerCase::new(
            layer(
                Conv2DTranspose::new(64, 3)
                    .activation("relu")
                    .strides(2)
                    .padding("same"),
            ),
            &[&[7, 7, 64]],
        )
        .output_shapes(&["(None, 14, 14, 64)"])
        .weights(2, 0, 3 * 3 * 64 * 64 + 64),
        // 'valid' with output_padding: (3 - 1)·2 + 3 + 1 = 8, (4 - 1)·3 + 2 + 2 = 13.
        LayerCase::new(
            layer(
                Conv2DTranspose::new(3, (3, 2))
                    .strides((2, 3))
                    .output_padding((1, 2))
                    .activation("sigmoid"),
            ),
            &[&[3, 4, 2]],
        )
        .output_shapes(&["(None, 8, 13, 3)"])
        .weights(2, 0, 3 * 2 * 2 * 3 + 3),
        // 'valid' without: (3 - 1)·3 + max(2, 3) = 9 each way.
        LayerCase::new(layer(Conv2DTranspose::new(2, 2).strides(3)), &[&[3, 3, 2]])
            .output_shapes(&["(None, 9, 9, 2)"])
            .weights(2, 0, 2 * 2 * 2 * 2 + 2),
        // 'same' with output_padding: (5 - 1)·2 + 4 % 2 + 1 = 9 rows, 3·2 = 6 columns.
        LayerCase::new(
            layer(
                Conv2DTranspose::new(2, (4, 3))
                    .strides(2)
                    .padding("same")
                    .output_padding((1, 1))
                    .activation("tanh"),
            ),
            &[&[5, 3, 2]],
        )
        .output_shapes(&["(None, 9, 6, 2)"])
        .weights(2, 0, 4 * 3 * 2 * 2 + 2),
        // 'same', stride 1, no bias, an activation whose derivative needs the pre-activation.
        LayerCase::new(
            layer(
                Conv2DTranspose::new(2, 2)
                    .padding("same")
                    .use_bias(false)
                    .activation("gelu"),
            ),
            &[&[4, 5, 3]],
        )
        .output_shapes(&["(None, 4, 5, 2)"])
        .weights(1, 0, 2 * 2 * 3 * 2),
        // Dilation 2: a 3-tap window spans 5, so 'valid' gives 4 - 1 + 5 = 8.
        LayerCase::new(
            layer(
                Conv2DTranspose::new(2, 3)
                    .dilation_rate(2)
                    .activity_regularizer(Regularizer::l2(0.01)),
            ),
            &[&[4, 4, 2]],
        )
        .output_shapes(&["(None, 8, 8, 2)"])
        .weights(2, 0, 3 * 3 * 2 * 2 + 2),
    ];
    let image = |values: &[f32], dims: (usize, usize, usize, usize)| {
        Tensor::new(values, &Device::Cpu)
            .and_then(|x| x.reshape(dims))
            .expect("x")
    };
    // x = [[1, 2], [3, 4]], kernel [[1, 2], [3, 4]], bias 0.5, strides 2, 'valid': each input
    // pixel stamps x·kernel onto its own 2x2 block of the 4x4 output.
    let x = image(&[1.0, 2.0, 3.0, 4.0], (1, 2, 2, 1));
    cases.push(
        LayerCase::new(layer(Conv2DTranspose::new(1, 2).strides(2)), &[&[2, 2, 1]])
            .output_shapes(&["(None, 4, 4, 1)"])
            .weights(2, 0, 5)
            .weight_values(vec![vec![1.0, 2.0, 3.0, 4.0], vec![0.5]])
            .forward(
                vec![x.clone()],
                vec![[
                    1.0, 2.0, 2.0, 4.0, //
                    3.0, 4.0, 6.0, 8.0, //
                    3.0, 6.0, 4.0, 8.0, //
                    9.0, 12.0, 12.0, 16.0,
                ]
                .iter()
                .map(|v| v + 0.5)
                .collect()],
            ),
    );
    // The same with strides 1, 'same': the stamps overlap on the full 3x3 output and 'same'
    // keeps its top-left 2x2: [1·1, 1·2 + 2·1], [1·3 + 3·1, 1·4 + 2·3 + 3·2 + 4·1].
    cases.push(
        LayerCase::new(
            layer(Conv2DTranspose::new(1, 2).padding("same")),
            &[&[2, 2, 1]],
        )
        .output_shapes(&["(None, 2, 2, 1)"])
        .weights(2, 0, 5)
        .weight_values(vec![vec![1.0, 2.0, 3.0, 4.0], vec![0.0]])
        .forward(vec![x], vec![vec![1.0, 4.0, 6.0, 20.0]]),
    );
    // The kernel's axes are (kh, kw, filters, in): one pixel of channels [1, 2] through
    // kernel[0][0] = [[1, 2], [3, 4], [5, 6]] (a row per filter) gives [1 + 4, 3 + 8, 5 + 12].
    cases.push(
        LayerCase::new(
            layer(Conv2DTranspose::new(3, 1).use_bias(false)),
            &[&[1, 1, 2]],
        )
        .output_shapes(&["(None, 1, 1, 3)"])
        .weights(1, 0, 6)
        .weight_values(vec![vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
        .forward(
            vec![image(&[1.0, 2.0], (1, 1, 1, 2))],
            vec![vec![5.0, 11.0, 17.0]],
        ),
    );
    cases
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Input;

    fn error_of(conv: Conv2DTranspose, input: &[usize]) -> String {
        conv(Input::new(input)).shape().unwrap_err().to_string()
    }

    #[test]
    fn bad_options_are_errors_naming_the_layer() {
        let err = error_of(
            Conv2DTranspose::new(2, 3)
                .strides(2)
                .output_padding(2)
                .name("up"),
            &[4, 4, 1],
        );
        assert!(
            err.contains("'up'") && err.contains("output_padding"),
            "{err}"
        );
        let err = error_of(
            Conv2DTranspose::new(2, 3)
                .strides(2)
                .dilation_rate(2)
                .name("up"),
            &[4, 4, 1],
        );
        assert!(err.contains("dilation_rate"), "{err}");
        assert!(error_of(Conv2DTranspose::new(0, 3), &[4, 4, 1]).contains("filters"));
        assert!(error_of(Conv2DTranspose::new(2, 3).padding("full"), &[4, 4, 1]).contains("full"));
        // An even kernel, 'same', output_padding 0 on one pixel: an empty output.
        let err = error_of(
            Conv2DTranspose::new(1, 2)
                .strides(2)
                .padding("same")
                .output_padding(0)
                .name("empty"),
            &[1, 1, 1],
        );
        assert!(
            err.contains("'empty'") && err.contains("at least one row"),
            "{err}"
        );
        assert!(error_of(Conv2DTranspose::new(1, 2), &[4, 4]).contains("channels"));
    }

    #[test]
    fn kerasio_vae_decoder_shapes_and_parameter_counts() {
        // keras.io's VAE decoder, after its Dense and Reshape to 7x7x64.
        let layers = [
            Conv2DTranspose::new(64, 3)
                .activation("relu")
                .strides(2)
                .padding("same"),
            Conv2DTranspose::new(32, 3)
                .activation("relu")
                .strides(2)
                .padding("same"),
            Conv2DTranspose::new(1, 3)
                .activation("sigmoid")
                .padding("same"),
        ];
        let mut x = Input::new(&[7, 7, 64]);
        let mut summary = Vec::new();
        for conv in &layers {
            x = conv(x);
            let params: usize = conv
                .layer()
                .unwrap()
                .weights()
                .iter()
                .map(|w| w.count())
                .sum();
            summary.push((x.shape().unwrap().to_string(), params));
        }
        let expected = [
            ("(None, 14, 14, 64)", 36_928),
            ("(None, 28, 28, 32)", 18_464),
            ("(None, 28, 28, 1)", 289),
        ];
        let expected: Vec<(String, usize)> =
            expected.iter().map(|(s, p)| (s.to_string(), *p)).collect();
        assert_eq!(summary, expected);
    }

    #[test]
    fn the_kernel_is_stored_filters_before_input_channels() {
        let conv = Conv2DTranspose::new(5, (3, 2)).strides(2).padding("same");
        let y = conv(Input::new(&[7, 6, 4]));
        assert_eq!(y.shape().unwrap().to_string(), "(None, 14, 12, 5)");
        let weights = conv.layer().unwrap().weights();
        assert_eq!(weights[0].var.dims(), &[3, 2, 5, 4]);
        assert_eq!(weights[1].var.dims(), &[5]);
    }
}
