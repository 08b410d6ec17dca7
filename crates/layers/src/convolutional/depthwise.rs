//! What `DepthwiseConv2D` and `SeparableConv2D` share (Keras's `base_depthwise_conv.py` and
//! `base_separable_conv.py`): the window options, and the depthwise convolution itself, each
//! input channel convolved with its own `depth_multiplier` filters, output channel
//! `c · depth_multiplier + m` (TensorFlow's `depthwise_conv2d` order).
//!
//! The convolution is composed from candle ops on channels-last tensors: one product per
//! kernel tap of the (strided, dilated) input window with that tap's `(channels, multiplier)`
//! weights, summed; candle's autograd differentiates it on every device.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::convolutional::options::{check_conv_options, spatial_geometry, Padding, Size2};
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

    /// The depthwise convolution of `x` `(batch, h, w, in)` by `kernel`
    /// `(kh, kw, in, multiplier)`: `(batch, out_h, out_w, in · multiplier)`.
    pub(crate) fn convolve(&self, layer: &str, x: &Tensor, kernel: &Tensor) -> Result<Tensor> {
        let (n, h, w, c) = x.dims4()?;
        let (padding, (out_h, out_w)) = self
            .geometry(h, w)
            .ok_or_else(|| self.too_small(layer, format!("{:?}", x.dims())))?;
        let x = x
            .pad_with_zeros(1, padding.top, padding.bottom)?
            .pad_with_zeros(2, padding.left, padding.right)?;
        let (Size2(kh, kw), Size2(sh, sw)) = (self.kernel_size, self.strides);
        let Size2(dh, dw) = self.dilation_rate;
        let mut sum: Option<Tensor> = None;
        for i in 0..kh {
            let rows = taps(&x, 1, i * dh, sh, out_h)?;
            for j in 0..kw {
                // The pixels tap (i, j) reads, (batch, out_h, out_w, in, 1), times its weights
                // (in, multiplier).
                let window = taps(&rows, 2, j * dw, sw, out_w)?.unsqueeze(4)?;
                let term = window.broadcast_mul(&kernel.get(i)?.get(j)?)?;
                sum = Some(match sum {
                    None => term,
                    Some(sum) => (sum + term)?,
                });
            }
        }
        let sum = sum.ok_or_else(|| Error::config(layer, "an empty kernel"))?;
        Ok(sum.reshape((n, out_h, out_w, c * self.depth_multiplier))?)
    }
}

/// `len` positions of `t` along `axis`, from `start` every `step`: a view for a step of 1, a
/// gather otherwise (autograd routes the gradient back to the positions read either way).
fn taps(t: &Tensor, axis: usize, start: usize, step: usize, len: usize) -> Result<Tensor> {
    if step == 1 {
        return Ok(t.narrow(axis, start, len)?);
    }
    let indices: Vec<u32> = (0..len).map(|k| (start + k * step) as u32).collect();
    let indices = Tensor::from_vec(indices, len, t.device())?;
    Ok(t.index_select(&indices, axis)?)
}

/// The builder methods of a depthwise layer, whose config has `window: DepthwiseWindow` and the
/// fields `activation`, `use_bias`, `depthwise_initializer`, `bias_initializer`,
/// `depthwise_regularizer`, `bias_regularizer` and `activity_regularizer`.
macro_rules! depthwise_layer_options {
    () => {
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

        /// The depthwise kernel's initializer.
        pub fn depthwise_initializer(self, init: impl Into<$crate::InitializerArg>) -> Self {
            self.with_initializer(init, |c, init| c.depthwise_initializer = init)
        }

        /// The bias initializer.
        pub fn bias_initializer(self, init: impl Into<$crate::InitializerArg>) -> Self {
            self.with_initializer(init, |c, init| c.bias_initializer = init)
        }

        /// A penalty on the depthwise kernel.
        pub fn depthwise_regularizer(self, r: $crate::Regularizer) -> Self {
            self.with(|c| c.depthwise_regularizer = Some(r))
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
pub(crate) use depthwise_layer_options;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, flat, values};
    use candle_core::Device;

    /// The depthwise convolution by its definition, one output value at a time.
    fn naive(window: &DepthwiseWindow, x: &[f32], dims: [usize; 4], kernel: &[f32]) -> Vec<f64> {
        let [n, h, w, c] = dims;
        let m = window.depth_multiplier;
        let (Size2(kh, kw), Size2(sh, sw)) = (window.kernel_size, window.strides);
        let Size2(dh, dw) = window.dilation_rate;
        let (p, (oh, ow)) = window.geometry(h, w).expect("fits");
        let mut out = Vec::new();
        for b in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    for ch in 0..c {
                        for k in 0..m {
                            let mut sum = 0.0f64;
                            for i in 0..kh {
                                for j in 0..kw {
                                    let y = (oy * sh + i * dh) as isize - p.top as isize;
                                    let xx = (ox * sw + j * dw) as isize - p.left as isize;
                                    if y < 0 || xx < 0 || y >= h as isize || xx >= w as isize {
                                        continue;
                                    }
                                    let at = ((b * h + y as usize) * w + xx as usize) * c + ch;
                                    let weight = kernel[((i * kw + j) * c + ch) * m + k];
                                    sum += x[at] as f64 * weight as f64;
                                }
                            }
                            out.push(sum);
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn matches_the_definition_for_every_geometry() -> Result<()> {
        let dims = [2, 7, 6, 3];
        let x_values = values(dims.iter().product(), 1);
        let x = Tensor::from_vec(x_values.clone(), dims.to_vec(), &Device::Cpu)?;
        let windows = [
            (Size2(3, 3), Size2(1, 1), Padding::Valid, 1, Size2(1, 1)),
            (Size2(3, 2), Size2(2, 3), Padding::Same, 2, Size2(1, 1)),
            (Size2(2, 2), Size2(1, 1), Padding::Same, 3, Size2(2, 3)),
            (Size2(1, 3), Size2(3, 1), Padding::Valid, 1, Size2(1, 1)),
        ];
        for (kernel_size, strides, padding, depth_multiplier, dilation_rate) in windows {
            let window = DepthwiseWindow {
                kernel_size,
                strides,
                padding,
                depth_multiplier,
                dilation_rate,
            };
            let shape = window.kernel_shape(3);
            let k_values = values(shape.iter().product(), 2);
            let kernel = Tensor::from_vec(k_values.clone(), shape.to_vec(), &Device::Cpu)?;
            let y = window.convolve("dw", &x, &kernel)?;
            let want = naive(&window, &x_values, dims, &k_values);
            assert_close(&format!("{window:?}"), &flat(&y), &want, 1e-5);
        }
        Ok(())
    }
}
