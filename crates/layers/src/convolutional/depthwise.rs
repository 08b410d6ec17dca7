//! What `DepthwiseConv2D` and `SeparableConv2D` share (Keras's `base_depthwise_conv.py` and
//! `base_separable_conv.py`): the window options, and the depthwise convolution itself, each
//! input channel convolved with its own `depth_multiplier` filters, output channel
//! `c · depth_multiplier + m` (TensorFlow's `depthwise_conv2d` order).
//!
//! The convolution is `rkeras_ops::depthwise_conv2d` (a CPU kernel, composed candle ops
//! elsewhere) with its backward `depthwise_conv2d_backward`; the layers' backward passes add
//! the bias and activation around them.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::activations::ActivationFn;
use crate::convolutional::options::{check_conv_options, spatial_geometry, Padding, Size2};
use crate::kernel_bias::with_activity_penalty_gradient;
use crate::regularizers::Regularizer;
use crate::{Error, Result, SymbolicShape};

/// The window options of a depthwise convolution, saved under Keras's keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DepthwiseWindow {
    /// Window height and width.
    pub kernel_size: Size2,
    /// Steps between windows (default 1).
    pub strides: Size2,
    /// Border handling (default valid).
    pub padding: Padding,
    /// Filters per input channel (default 1).
    pub depth_multiplier: usize,
    /// Spacing between kernel taps (default 1).
    pub dilation_rate: Size2,
}

impl DepthwiseWindow {
    /// A `kernel_size` window with Keras's defaults otherwise.
    pub(crate) fn new(kernel_size: Size2) -> Self {
        DepthwiseWindow {
            kernel_size,
            strides: Size2(1, 1),
            padding: Padding::Valid,
            depth_multiplier: 1,
            dilation_rate: Size2(1, 1),
        }
    }

    /// Checks the options for `layer`: a positive `depth_multiplier`, then the windows as
    /// every convolution's (strides above 1 not combined with a dilation above 1, which
    /// TensorFlow's `depthwise_conv2d` refuses).
    pub(crate) fn check(&self, layer: &str) -> Result<()> {
        if self.depth_multiplier == 0 {
            return Err(Error::config(layer, "depth_multiplier must be positive"));
        }
        check_conv_options(
            layer,
            self.depth_multiplier,
            self.kernel_size,
            self.strides,
            self.dilation_rate,
        )
    }

    /// The depthwise kernel's shape for `channels` input channels: `(kh, kw, in, multiplier)`.
    pub(crate) fn kernel_shape(&self, channels: usize) -> [usize; 4] {
        let Size2(kh, kw) = self.kernel_size;
        [kh, kw, channels, self.depth_multiplier]
    }

    /// The padding and output size of an input of `h` x `w` pixels, or `None` when the
    /// (dilated) window does not fit.
    fn geometry(&self, h: usize, w: usize) -> Option<(rkeras_ops::Padding2d, (usize, usize))> {
        spatial_geometry(
            (h, w),
            self.kernel_size,
            self.strides,
            self.dilation_rate,
            self.padding,
        )
    }

    /// The error of an input of `shape` smaller than the window, for `layer`.
    fn too_small(&self, layer: &str, shape: impl std::fmt::Display) -> Error {
        let Size2(kh, kw) = self.kernel_size;
        Error::shape(
            layer,
            format!(
                "an input at least as large as the {kh}x{kw} window (dilated) with padding '{}'",
                self.padding
            ),
            shape,
        )
    }

    /// The output shape for an input of `shape` (channels-last images, checked by the
    /// caller), with `channels` output channels.
    pub(crate) fn output_shape(
        &self,
        layer: &str,
        shape: &SymbolicShape,
        channels: usize,
    ) -> Result<SymbolicShape> {
        let dims = shape.dims();
        let (out_h, out_w) = match (dims[1], dims[2]) {
            (Some(h), Some(w)) => {
                let (_, (oh, ow)) = self
                    .geometry(h, w)
                    .ok_or_else(|| self.too_small(layer, shape))?;
                (Some(oh), Some(ow))
            }
            _ => (None, None),
        };
        Ok(SymbolicShape(vec![dims[0], out_h, out_w, Some(channels)]))
    }

    /// The window parameters for input `x` of `layer`, or an error when it is smaller than the
    /// window.
    fn params(&self, layer: &str, x: &Tensor) -> Result<rkeras_ops::Conv2dParams> {
        let (_, h, w, _) = x.dims4()?;
        let (padding, _) = self
            .geometry(h, w)
            .ok_or_else(|| self.too_small(layer, format!("{:?}", x.dims())))?;
        Ok(rkeras_ops::Conv2dParams {
            strides: self.strides.pair(),
            dilation: self.dilation_rate.pair(),
            padding,
        })
    }

    /// The depthwise convolution of `x` `(batch, h, w, in)` by `kernel`
    /// `(kh, kw, in, multiplier)`: `(batch, out_h, out_w, in · multiplier)`.
    pub(crate) fn convolve(&self, layer: &str, x: &Tensor, kernel: &Tensor) -> Result<Tensor> {
        let params = self.params(layer, x)?;
        Ok(rkeras_ops::depthwise_conv2d(x, kernel, &params)?)
    }

    /// The gradients of `x` and `kernel` (when `want_x`, `want_kernel`) of [`Self::convolve`]
    /// given its output's gradient `dz` (CPU).
    pub(crate) fn gradients(
        &self,
        layer: &str,
        (x, kernel, dz): (&Tensor, &Tensor, &Tensor),
        want_x: bool,
        want_kernel: bool,
    ) -> Result<rkeras_ops::DepthwiseGradients> {
        let params = self.params(layer, x)?;
        Ok(rkeras_ops::depthwise_conv2d_backward(
            x,
            kernel,
            dz,
            &params,
            want_x,
            want_kernel,
        )?)
    }
}

/// `activation(z + bias)` of a depthwise layer's pre-bias output `z`, with `z + bias` when
/// the activation's derivative needs it (for the backward pass).
pub(crate) fn bias_activation(
    z: Tensor,
    bias: Option<Tensor>,
    activation: ActivationFn,
) -> Result<(Tensor, Option<Tensor>)> {
    let z = match bias {
        Some(bias) => z.broadcast_add(&bias)?,
        None => z,
    };
    let y = activation.apply(&z)?;
    Ok((y, activation.needs_input().then_some(z)))
}

/// The gradient of the pre-activation `z` given the output `y`, its gradient `dy` and the
/// activity penalty's, through the activation; and the bias's (a sum over all but the
/// channels) when `want_bias`.
pub(crate) fn pre_activation_gradient(
    (activation, activity): (ActivationFn, Option<&Regularizer>),
    z: Option<&Tensor>,
    (y, dy): (&Tensor, &Tensor),
    want_bias: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let dy = with_activity_penalty_gradient(activity, y, dy)?;
    let dz = activation.gradient(z, y, &dy)?;
    let channels = dz.dims().last().copied().unwrap_or(1);
    let bias = want_bias
        .then(|| rkeras_ops::bias_gradient(&dz.reshape(((), channels))?))
        .transpose()?;
    Ok((dz, bias))
}

/// The builder methods of a depthwise layer, whose config has `window: DepthwiseWindow` and the
/// fields `activation`, `use_bias`, `depthwise_initializer`, `bias_initializer`,
/// `depthwise_regularizer`, `bias_regularizer` and `activity_regularizer`.
macro_rules! depthwise_layer_options {
    () => {
        $crate::kernel_bias::bias_activation_options!();

        /// `"valid"` or `"same"`.
        pub fn padding(
            self,
            padding: impl Into<$crate::convolutional::options::PaddingArg>,
        ) -> Self {
            let arg = padding.into();
            self.with_checked(|c| {
                c.window.padding = arg.0?;
                Ok(())
            })
        }

        /// The steps between windows.
        pub fn strides(self, strides: impl Into<$crate::Size2>) -> Self {
            let strides = strides.into();
            self.with(|c| c.window.strides = strides)
        }

        /// The spacing between kernel taps.
        pub fn dilation_rate(self, dilation: impl Into<$crate::Size2>) -> Self {
            let dilation = dilation.into();
            self.with(|c| c.window.dilation_rate = dilation)
        }

        /// The number of filters per input channel.
        pub fn depth_multiplier(self, depth_multiplier: usize) -> Self {
            self.with(|c| c.window.depth_multiplier = depth_multiplier)
        }

        /// The depthwise kernel's initializer.
        pub fn depthwise_initializer(self, init: impl Into<$crate::InitializerArg>) -> Self {
            self.with_initializer(init, |c, init| c.depthwise_initializer = init)
        }

        /// A penalty on the depthwise kernel.
        pub fn depthwise_regularizer(self, r: $crate::Regularizer) -> Self {
            self.with(|c| c.depthwise_regularizer = Some(r))
        }
    };
}
pub(crate) use depthwise_layer_options;
