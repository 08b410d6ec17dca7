//! `Conv2D`: 2-D convolution over channels-last images
//! (`keras/src/layers/convolutional/conv2d.py`, `base_conv.py`). The kernel is stored as Keras
//! stores it, `(kh, kw, in, out)`; the work is done by `rkeras_ops::conv2d`.

use std::sync::{Arc, OnceLock};

use candle_core::{Device, Tensor};
use rkeras_ops::{Conv2dGradients, Conv2dWanted, MaxPoolWindow, PoolWinners};
use serde::{Deserialize, Serialize};

use crate::activations::ActivationFn;
use crate::builder::{LayerBuilder, LayerConfig};
use crate::convolutional::options::{spatial_geometry, Padding, PaddingArg, Size2};
use crate::initializers::Initializer;
use crate::kernel_bias::{
    activity_penalty, kernel_layer_logits_twin, kernel_layer_methods, kernel_layer_options,
    with_activity_penalty_gradient, KernelBias,
};
use crate::layer::single_input;
use crate::layer_base_methods;
use crate::limits::check_window;
use crate::record::{CallRecord, WeightGrads};
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

    /// The spacing between kernel taps.
    pub fn dilation_rate(self, dilation: impl Into<Size2>) -> Self {
        let dilation = dilation.into();
        self.with(|c| c.dilation_rate = dilation)
    }
}

impl LayerConfig for Conv2DConfig {
    const CLASS_NAME: &'static str = "Conv2D";
    const NAME_PREFIX: &'static str = "conv2d";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        let c = self;
        if c.filters == 0 {
            return Err(Error::config(name, "filters must be positive"));
        }
        check_window(&name, "kernel_size", c.kernel_size)?;
        check_window(&name, "strides", c.strides)?;
        check_window(&name, "dilation_rate", c.dilation_rate)?;
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

#[derive(Clone)]
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
    kernel_layer_logits_twin!(Conv2DLayer, Conv2DConfig);

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

    /// The convolution and its activation (ReLU fused into the kernel), keeping the
    /// pre-activation for the backward pass when the call is recorded and the activation's
    /// derivative needs it.
    fn forward(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Tensor> {
        let x = single_input(self.name(), inputs)?;
        let (w, params) = self.checked(x)?;
        let activation = self.config.activation;
        let fuse_relu = activation == ActivationFn::Relu;
        let z = rkeras_ops::conv2d(
            x,
            &ctx.weight(&w.params.kernel),
            w.params.bias.as_ref().map(|b| ctx.weight(b)).as_ref(),
            &params,
            fuse_relu,
        )?;
        if fuse_relu {
            return Ok(z);
        }
        let y = activation.apply(&z)?;
        if activation.needs_input() {
            ctx.save(z);
        }
        Ok(y)
    }

    /// The gradients a backward pass computes, or None when nothing needs one.
    fn wanted(
        &self,
        w: &ConvWeights,
        needs_input_grad: &[bool],
        weight_grads: &WeightGrads,
    ) -> Option<Conv2dWanted> {
        let wanted = Conv2dWanted {
            x: needs_input_grad.first().copied().unwrap_or(false),
            kernel: weight_grads.wants(&w.params.kernel),
            bias: w
                .params
                .bias
                .as_ref()
                .is_some_and(|b| weight_grads.wants(b)),
        };
        (wanted.x || wanted.kernel || wanted.bias).then_some(wanted)
    }

    /// Hands the kernel and bias gradients to `weight_grads` and returns the input's.
    fn add_weight_grads(
        &self,
        w: &ConvWeights,
        grads: Conv2dGradients,
        weight_grads: &mut WeightGrads,
    ) -> Result<Vec<Option<Tensor>>> {
        if let Some(grad) = grads.kernel {
            weight_grads.add(&w.params.kernel, grad)?;
        }
        if let (Some(bias), Some(grad)) = (w.params.bias.as_ref(), grads.bias) {
            weight_grads.add(bias, grad)?;
        }
        Ok(vec![grads.x])
    }

    /// The activation fused into the convolution kernel itself: Some(true) for ReLU, Some(false)
    /// for none, None for any other (applied as a separate step).
    fn fused_relu(&self) -> Option<bool> {
        match self.config.activation {
            ActivationFn::Relu => Some(true),
            ActivationFn::Linear => Some(false),
            _ => None,
        }
    }

    /// This call on `x` and a max pooling of its output by `pool` (the window for the output's
    /// shape), run as one pass ([`rkeras_ops::conv2d_max_pool`]) that never writes the output in
    /// full: the pooled result and the windows' winners, which
    /// [`Conv2DLayer::backward_through_max_pool`] differentiates by. None where the pair does
    /// not run as one: an activation other than ReLU or linear, an activity regularizer (it
    /// reads the output), a call candle's autograd is to see (tracked input or weights), or
    /// windows or a device the fused kernel does not take.
    pub(crate) fn call_through_max_pool(
        &self,
        x: &Tensor,
        pool: impl FnOnce(&[usize]) -> Result<MaxPoolWindow>,
        ctx: &CallContext,
    ) -> Option<Result<(Tensor, PoolWinners)>> {
        let relu = self.fused_relu()?;
        if self.config.activity_regularizer.is_some() || !self.has_backward(x.device()) {
            return None;
        }
        let (w, params) = self.checked(x).ok()?;
        let kernel = ctx.weight(&w.params.kernel);
        let bias = w.params.bias.as_ref().map(|b| ctx.weight(b));
        if x.track_op() || kernel.track_op() || bias.as_ref().is_some_and(Tensor::track_op) {
            return None;
        }
        let &[n, h, wd, _] = x.dims() else {
            return None;
        };
        let (_, (out_h, out_w)) = self.geometry(h, wd)?;
        let window = match pool(&[n, out_h, out_w, self.config.filters]) {
            Ok(window) => window,
            Err(err) => return Some(Err(err)),
        };
        if !window.fuses_on(x.device()) {
            return None;
        }
        Some(
            rkeras_ops::conv2d_max_pool(x, &kernel, bias.as_ref(), &params, relu, &window)
                .map_err(Into::into),
        )
    }

    /// The backward pass of [`Conv2DLayer::call_through_max_pool`]'s call on `x`, given the
    /// pooled result, its gradient and the windows' winners: the gradients of the pooling and of
    /// the convolution in one ([`rkeras_ops::conv2d_max_pool_backward`]).
    pub(crate) fn backward_through_max_pool(
        &self,
        x: &Tensor,
        pooled: &Tensor,
        grad: &Tensor,
        winners: &PoolWinners,
        needs_input_grad: &[bool],
        weight_grads: &mut WeightGrads,
    ) -> Result<Vec<Option<Tensor>>> {
        let relu = self.fused_relu().ok_or_else(|| {
            Error::config(
                self.name(),
                "a backward pass through a max pooling needs ReLU or no activation",
            )
        })?;
        let (w, params) = self.checked(x)?;
        let Some(wanted) = self.wanted(w, needs_input_grad, weight_grads) else {
            return Ok(vec![None]);
        };
        let kernel = w.params.kernel.as_tensor();
        let grads = rkeras_ops::conv2d_max_pool_backward(
            x, kernel, pooled, grad, winners, &params, relu, wanted,
        )?;
        self.add_weight_grads(w, grads, weight_grads)
    }

    fn make_weights(&self, in_channels: usize) -> Result<ConvWeights> {
        let c = &self.config;
        let shape = [c.kernel_size.0, c.kernel_size.1, in_channels, c.filters];
        let bias = c.use_bias.then_some(&c.bias_initializer);
        Ok(ConvWeights {
            in_channels,
            params: KernelBias::new(self.name(), &shape, &c.kernel_initializer, bias)?,
        })
    }
}

impl Layer for Conv2DLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        Conv2DConfig::CLASS_NAME
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
        let Some(wanted) = self.wanted(w, needs_input_grad, weight_grads) else {
            return Ok(vec![None]);
        };
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
        let kernel = w.params.kernel.as_tensor();
        let grads = rkeras_ops::conv2d_backward(x, kernel, y, &dz, &params, relu, wanted)?;
        self.add_weight_grads(w, grads, weight_grads)
    }

    kernel_layer_methods!();
}

/// The harness cases: padding, strides, dilation, activations, and a forward computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    crate::session::set_random_seed(17);
    let case = |conv: Conv2D, shape: &str, params: usize| {
        LayerCase::new(conv.layer().expect("conv"), &[&[5, 6, 3]])
            .output_shapes(&[shape])
            .weights(2, 0, params)
    };
    // Keras's count: kh·kw·in·filters + filters.
    let mut cases = vec![
        case(
            Conv2D::new(3, (2, 2)).activation("relu").padding("same"),
            "(None, 5, 6, 3)",
            2 * 2 * 3 * 3 + 3,
        ),
        case(
            Conv2D::new(2, (3, 3)).strides(2).padding("valid"),
            "(None, 2, 2, 2)",
            3 * 3 * 3 * 2 + 2,
        ),
        case(
            Conv2D::new(1, (3, 3)).activation("sigmoid").padding("same"),
            "(None, 5, 6, 1)",
            3 * 3 * 3 + 1,
        ),
        case(
            Conv2D::new(2, (2, 2)).dilation_rate(2).padding("same"),
            "(None, 5, 6, 2)",
            2 * 2 * 3 * 2 + 2,
        ),
        case(
            Conv2D::new(2, (2, 3)).activation("gelu"),
            "(None, 4, 4, 2)",
            2 * 3 * 3 * 2 + 2,
        ),
    ];
    // x = [[1, 2], [3, 4]], kernel [[1, 2], [3, 4]], bias 0.5, 'same' pads below and right:
    // y = [1+4+9+16, 2·1+4·3, 3·1+4·2, 4·1] + 0.5.
    let x = Tensor::new(&[1f32, 2.0, 3.0, 4.0], &candle_core::Device::Cpu)
        .and_then(|x| x.reshape((1, 2, 2, 1)))
        .expect("x");
    cases.push(
        LayerCase::new(
            Conv2D::new(1, (2, 2))
                .padding("same")
                .layer()
                .expect("conv"),
            &[&[2, 2, 1]],
        )
        .output_shapes(&["(None, 2, 2, 1)"])
        .weights(2, 0, 5)
        .weight_values(vec![vec![1.0, 2.0, 3.0, 4.0], vec![0.5]])
        .forward(vec![x], vec![vec![30.5, 14.5, 11.5, 4.5]]),
    );
    cases
}
