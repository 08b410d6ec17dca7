//! `Conv2D`: 2-D convolution over channels-last images
//! (`keras/src/layers/convolutional/conv2d.py`, `base_conv.py`). The kernel is stored as Keras
//! stores it, `(kh, kw, in, out)`; the work is done by `rkeras_ops::conv2d`.

use std::any::Any;
use std::sync::{Arc, OnceLock};

use candle_core::Tensor;
use rkeras_ops::Conv2dWanted;
use serde::{Deserialize, Serialize};

use crate::activations::{Activation, ActivationArg};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::convolutional::options::{spatial_geometry, Padding, PaddingArg, Size2};
use crate::core::activation::{activation_gradient, derivative_from_output};
use crate::initializers::Initializer;
use crate::kernel_bias::{
    activity_penalty, activity_penalty_gradient, kernel_layer_methods, kernel_layer_options,
    KernelBias,
};
use crate::layer::{single_input, CallRecord, WeightGrads};
use crate::layer_base_methods;
use crate::regularizers::Regularizer;
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// `Conv2D`'s options, with Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conv2DConfig {
    /// Output channels.
    pub filters: usize,
    /// Window height and width.
    pub kernel_size: Size2,
    /// Steps between windows (default 1).
    pub strides: Size2,
    /// Border handling (default valid).
    pub padding: Padding,
    /// Spacing between kernel taps (default 1).
    pub dilation_rate: Size2,
    /// Applied after the convolution (default linear).
    pub activation: Activation,
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

/// A 2-D convolution: `Conv2D::new(128, (7, 7)).activation("relu").padding("same")(x)`.
pub type Conv2D = LayerBuilder<Conv2DConfig>;

impl Conv2D {
    kernel_layer_options!();

    /// `filters` output channels over a `kernel_size` window, Keras's defaults otherwise.
    pub fn new(filters: usize, kernel_size: impl Into<Size2>) -> Self {
        LayerBuilder::from_config(Conv2DConfig {
            filters,
            kernel_size: kernel_size.into(),
            strides: Size2(1, 1),
            padding: Padding::Valid,
            dilation_rate: Size2(1, 1),
            activation: Activation::Linear,
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

    /// The spacing between kernel taps.
    pub fn dilation_rate(self, dilation: impl Into<Size2>) -> Self {
        let dilation = dilation.into();
        self.with(|c| c.dilation_rate = dilation)
    }
}

impl LayerConfig for Conv2DConfig {
    const NAME_PREFIX: &'static str = "conv2d";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        let c = self;
        if c.filters == 0
            || !c.kernel_size.is_positive()
            || !c.strides.is_positive()
            || !c.dilation_rate.is_positive()
        {
            return Err(Error::config(
                name,
                "filters, kernel_size, strides and dilation_rate must be positive",
            ));
        }
        if (c.strides.0 > 1 || c.strides.1 > 1) && (c.dilation_rate.0 > 1 || c.dilation_rate.1 > 1)
        {
            return Err(Error::config(
                name,
                "strides > 1 cannot be combined with dilation_rate > 1 (as in Keras)",
            ));
        }
        Ok(Arc::new(Conv2DLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
            weights: OnceLock::new(),
        }))
    }
}

struct ConvWeights {
    in_channels: usize,
    params: KernelBias,
}

/// The layer a [`Conv2D`] builder makes.
pub struct Conv2DLayer {
    base: LayerBase,
    config: Conv2DConfig,
    weights: OnceLock<ConvWeights>,
}

impl Conv2DLayer {
    /// The options.
    pub fn conv_config(&self) -> &Conv2DConfig {
        &self.config
    }

    fn geometry(&self, h: usize, w: usize) -> Option<(rkeras_ops::Padding2d, (usize, usize))> {
        let c = &self.config;
        spatial_geometry((h, w), c.kernel_size, c.strides, c.dilation_rate, c.padding)
    }

    /// The built weights and the window parameters for input `x`, or an error saying what
    /// does not fit.
    fn checked(&self, x: &Tensor) -> Result<(&ConvWeights, rkeras_ops::Conv2dParams)> {
        let w = self.weights.get().ok_or_else(|| {
            Error::config(self.name(), "called before it was built on an input shape")
        })?;
        let (h, wd) = match x.dims() {
            &[_, h, wd, c] if c == w.in_channels => (h, wd),
            dims => {
                return Err(Error::shape(
                    self.name(),
                    format!("(batch, height, width, {})", w.in_channels),
                    format!("{dims:?}"),
                ))
            }
        };
        let (padding, _) = self.geometry(h, wd).ok_or_else(|| {
            Error::shape(
                self.name(),
                "an input at least as large as the window",
                format!("{:?}", x.dims()),
            )
        })?;
        let c = &self.config;
        let params = rkeras_ops::Conv2dParams {
            strides: c.strides.pair(),
            dilation: c.dilation_rate.pair(),
            padding,
        };
        Ok((w, params))
    }

    /// The convolution and its activation, returning the pre-activation too when
    /// `keep_pre_activation` (and the activation is not fused into the kernel).
    fn forward(
        &self,
        inputs: &[Tensor],
        ctx: &CallContext,
        keep_pre_activation: bool,
    ) -> Result<(Option<Tensor>, Tensor)> {
        let x = single_input(self.name(), inputs)?;
        let (w, params) = self.checked(x)?;
        let c = &self.config;
        let fuse_relu = c.activation == Activation::Relu;
        let z = rkeras_ops::conv2d(
            x,
            &ctx.weight(&w.params.kernel),
            w.params.bias.as_ref().map(|b| ctx.weight(b)).as_ref(),
            &params,
            fuse_relu,
        )?;
        let (z, y) = if fuse_relu {
            (None, z)
        } else {
            let y = c.activation.apply(&z)?;
            (keep_pre_activation.then_some(z), y)
        };
        Ok((z, y))
    }

    fn make_weights(&self, in_channels: usize) -> Result<ConvWeights> {
        let c = &self.config;
        let shape = [c.kernel_size.0, c.kernel_size.1, in_channels, c.filters];
        let bias = c.use_bias.then_some(&c.bias_initializer);
        Ok(ConvWeights {
            in_channels,
            params: KernelBias::new(&shape, &c.kernel_initializer, bias)?,
        })
    }
}

impl Layer for Conv2DLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        "Conv2D"
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        let built_channels = self.weights.get().map(|w| w.in_channels);
        let channels = match (shape.rank(), shape.last()) {
            (4, Some(c)) if built_channels.is_none_or(|b| b == c) => c,
            _ => {
                let expected = match built_channels {
                    Some(c) => format!("(None, height, width, {c})"),
                    None => "(None, height, width, channels) with known channels".to_string(),
                };
                return Err(Error::shape(self.name(), expected, shape));
            }
        };
        let dims = shape.dims();
        let (out_h, out_w) = match (dims[1], dims[2]) {
            (Some(h), Some(w)) => match self.geometry(h, w) {
                Some((_, (oh, ow))) => (Some(oh), Some(ow)),
                None => {
                    return Err(Error::shape(
                        self.name(),
                        format!(
                            "an input at least as large as the {}x{} window (dilated) with padding '{}'",
                            self.config.kernel_size.0, self.config.kernel_size.1, self.config.padding
                        ),
                        shape,
                    ))
                }
            },
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
        let (_, y) = self.forward(inputs, ctx, false)?;
        if let Some(penalty) = activity_penalty(self.config.activity_regularizer.as_ref(), &y)? {
            ctx.add_loss(penalty);
        }
        Ok(vec![y])
    }

    fn has_backward(&self) -> bool {
        true
    }

    fn is_per_sample(&self) -> bool {
        true
    }

    fn call_recorded(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<CallRecord> {
        let keep_pre_activation = !derivative_from_output(self.config.activation);
        let (pre_activation, y) = self.forward(inputs, ctx, keep_pre_activation)?;
        // The layer's own backward pass adds the penalty's gradient.
        if let Some(penalty) = activity_penalty(self.config.activity_regularizer.as_ref(), &y)? {
            ctx.add_loss_with_layer_gradient(penalty);
        }
        let mut record = CallRecord::new(inputs.to_vec(), vec![y]);
        record.state = pre_activation.map(|z| Box::new(z) as Box<dyn Any + Send + Sync>);
        Ok(record)
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
        let relu = activation == Activation::Relu;
        // The activity penalty's gradient joins the output's.
        let dy = match activity_penalty_gradient(self.config.activity_regularizer.as_ref(), y)? {
            Some(penalty) => (dy + penalty)?,
            None => dy.clone(),
        };
        // ReLU's mask is applied by the kernel itself, from the output.
        let dz = if relu {
            dy
        } else {
            let z = record
                .state
                .as_ref()
                .and_then(|s| s.downcast_ref::<Tensor>());
            activation_gradient(activation, z, y, &dy)?
        };
        let grads =
            rkeras_ops::conv2d_backward(x, kernel.as_tensor(), y, &dz, &params, relu, wanted)?;
        if let Some(grad) = grads.kernel {
            weight_grads.add(kernel, grad)?;
        }
        if let (Some(bias), Some(grad)) = (bias, grads.bias) {
            weight_grads.add(bias, grad)?;
        }
        Ok(vec![grads.x])
    }

    kernel_layer_methods!();
}
