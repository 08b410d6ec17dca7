//! Options shared by convolution, pooling and upsampling layers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::limits::check_window;
use crate::{Error, SymbolicShape};

/// How a sliding window treats the borders (Keras's `padding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    /// No padding: the window stays inside the input (Keras's default).
    #[default]
    Valid,
    /// Zero padding so that the output has `ceil(n / stride)` positions; the extra row or
    /// column of an even window goes at the bottom/right, as TensorFlow places it.
    Same,
}

impl FromStr for Padding {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "valid" => Ok(Padding::Valid),
            "same" => Ok(Padding::Same),
            other => Err(format!("unknown padding '{other}' (known: valid, same)")),
        }
    }
}

impl fmt::Display for Padding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Padding::Valid => "valid",
            Padding::Same => "same",
        })
    }
}

/// A padding given to a builder, by value or by Keras name (checked when the layer is made).
#[derive(Debug, Clone)]
pub struct PaddingArg(pub(crate) Result<Padding, String>);

impl From<Padding> for PaddingArg {
    fn from(p: Padding) -> Self {
        PaddingArg(Ok(p))
    }
}

impl From<&str> for PaddingArg {
    fn from(name: &str) -> Self {
        PaddingArg(name.parse())
    }
}

/// A size along the two spatial axes (height, width): `2` or `(2, 3)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Size2(pub usize, pub usize);

impl From<usize> for Size2 {
    fn from(n: usize) -> Self {
        Size2(n, n)
    }
}

impl From<(usize, usize)> for Size2 {
    fn from((h, w): (usize, usize)) -> Self {
        Size2(h, w)
    }
}

impl Size2 {
    /// As a tuple.
    pub fn pair(self) -> (usize, usize) {
        (self.0, self.1)
    }

    /// Whether both sizes are positive.
    pub fn is_positive(self) -> bool {
        self.0 > 0 && self.1 > 0
    }
}

/// The (before, after) padding and output length of one spatial axis, or `None` when the
/// (dilated) window does not fit.
pub fn axis_geometry(
    input: usize,
    window: usize,
    stride: usize,
    dilation: usize,
    padding: Padding,
) -> Option<(usize, usize, usize)> {
    let (before, after) = match padding {
        Padding::Valid => (0, 0),
        Padding::Same => rkeras_ops::same_padding(input, window, stride, dilation),
    };
    let len = rkeras_ops::conv_output_len(input, window, stride, dilation, before, after)?;
    Some((before, after, len))
}

/// The spatial geometry of an NHWC input for a window: padding and output (height, width).
pub fn spatial_geometry(
    input: (usize, usize),
    window: Size2,
    strides: Size2,
    dilation: Size2,
    padding: Padding,
) -> Option<(rkeras_ops::Padding2d, (usize, usize))> {
    let (top, bottom, out_h) = axis_geometry(input.0, window.0, strides.0, dilation.0, padding)?;
    let (left, right, out_w) = axis_geometry(input.1, window.1, strides.1, dilation.1, padding)?;
    Some((
        rkeras_ops::Padding2d {
            top,
            bottom,
            left,
            right,
        },
        (out_h, out_w),
    ))
}

/// How a 1-D convolution treats the ends of its input (Keras's `Conv1D` `padding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding1D {
    /// No padding (Keras's default).
    #[default]
    Valid,
    /// As [`Padding::Same`].
    Same,
    /// Zeros before the input only, `(kernel_size - 1) · dilation_rate` of them, so that an
    /// output step never reads a later input step.
    Causal,
}

impl Padding1D {
    /// The (before, after) padding and output length of an axis of `input` steps, or `None`
    /// when the (dilated) window does not fit.
    pub fn geometry(
        self,
        input: usize,
        window: usize,
        stride: usize,
        dilation: usize,
    ) -> Option<(usize, usize, usize)> {
        match self {
            Padding1D::Valid => axis_geometry(input, window, stride, dilation, Padding::Valid),
            Padding1D::Same => axis_geometry(input, window, stride, dilation, Padding::Same),
            Padding1D::Causal => {
                let before = window.checked_sub(1)?.checked_mul(dilation)?;
                let len = rkeras_ops::conv_output_len(input, window, stride, dilation, before, 0)?;
                Some((before, 0, len))
            }
        }
    }
}

impl FromStr for Padding1D {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "causal" => Ok(Padding1D::Causal),
            other => match other.parse::<Padding>() {
                Ok(Padding::Valid) => Ok(Padding1D::Valid),
                Ok(Padding::Same) => Ok(Padding1D::Same),
                Err(_) => Err(format!(
                    "unknown padding '{other}' (known: valid, same, causal)"
                )),
            },
        }
    }
}

impl fmt::Display for Padding1D {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Padding1D::Valid => "valid",
            Padding1D::Same => "same",
            Padding1D::Causal => "causal",
        })
    }
}

/// A 1-D padding given to a builder, by value or by Keras name (checked when the layer is made).
#[derive(Debug, Clone)]
pub struct Padding1DArg(pub(crate) Result<Padding1D, String>);

impl From<Padding1D> for Padding1DArg {
    fn from(p: Padding1D) -> Self {
        Padding1DArg(Ok(p))
    }
}

impl From<&str> for Padding1DArg {
    fn from(name: &str) -> Self {
        Padding1DArg(name.parse())
    }
}

/// The crop (rows cut from the start of the full output) and output length of one axis of a
/// transposed convolution of `input` steps, by Keras's rule: `compute_conv_transpose_output_shape`
/// and the JAX padding of `_convert_conv_transpose_padding_args_from_keras_to_jax`
/// (`keras/src/backend/common/backend_utils.py`). `None` when the output would be empty or its
/// length overflows.
///
/// `valid`: `(input - 1)·stride + k + output_padding` steps, `output_padding` defaulting to
/// `max(k, stride) - k`, nothing cropped. `same`: `input·stride` steps without
/// `output_padding`, `(input - 1)·stride + k % 2 + output_padding` with it, cropped by
/// `k - 1 - min(ceil(pad / 2), k - 1)` where `pad` is the total padding JAX adds. `k` is the
/// dilated window, `(window - 1)·dilation + 1`.
pub fn transpose_axis_geometry(
    input: usize,
    window: usize,
    stride: usize,
    dilation: usize,
    padding: Padding,
    output_padding: Option<usize>,
) -> Option<(usize, usize)> {
    let k = window
        .checked_sub(1)?
        .checked_mul(dilation)?
        .checked_add(1)?;
    let base = input.checked_sub(1)?.checked_mul(stride)?;
    let (crop, len) = match padding {
        Padding::Valid => {
            let extra = output_padding.unwrap_or(k.max(stride) - k);
            (0, base.checked_add(k)?.checked_add(extra)?)
        }
        Padding::Same => {
            let (pad, len) = match output_padding {
                None => ((stride + k).saturating_sub(2), input.checked_mul(stride)?),
                Some(extra) => (
                    (k + k % 2 - 2).checked_add(extra)?,
                    base.checked_add(k % 2)?.checked_add(extra)?,
                ),
            };
            (k - 1 - (pad / 2 + pad % 2).min(k - 1), len)
        }
    };
    (len > 0).then_some((crop, len))
}

/// Checks the options every convolution layer has, for `layer`: positive `filters`, and
/// `kernel_size`, `strides` and `dilation_rate` windows (see [`check_window`]), strides above 1
/// not combined with a dilation above 1 (as Keras refuses).
pub(crate) fn check_conv_options(
    layer: &str,
    filters: usize,
    kernel_size: Size2,
    strides: Size2,
    dilation_rate: Size2,
) -> crate::Result<()> {
    if filters == 0 {
        return Err(Error::config(layer, "filters must be positive"));
    }
    check_window(layer, "kernel_size", kernel_size)?;
    check_window(layer, "strides", strides)?;
    check_window(layer, "dilation_rate", dilation_rate)?;
    if (strides.0 > 1 || strides.1 > 1) && (dilation_rate.0 > 1 || dilation_rate.1 > 1) {
        return Err(Error::config(
            layer,
            "strides > 1 cannot be combined with dilation_rate > 1 (as in Keras)",
        ));
    }
    Ok(())
}

/// The channels of a channels-last input `shape` of `layer` with the `spatial` axes named
/// (`["height", "width"]`), which must be known, and equal to `built` once the layer is built.
pub(crate) fn input_channels(
    layer: &str,
    shape: &SymbolicShape,
    spatial: &[&str],
    built: Option<usize>,
) -> crate::Result<usize> {
    match (shape.rank(), shape.last()) {
        (rank, Some(c)) if rank == spatial.len() + 2 && built.is_none_or(|b| b == c) => Ok(c),
        _ => {
            let channels = built.map_or("channels".to_string(), |c| c.to_string());
            let known = if built.is_some() {
                ""
            } else {
                " with known channels"
            };
            Err(Error::shape(
                layer,
                format!("(None, {}, {channels}){known}", spatial.join(", ")),
                shape,
            ))
        }
    }
}

/// The `N` spatial dimensions of a concrete channels-last input of `layer` with the `spatial`
/// axes named and `channels` channels, or an error showing the shape expected.
pub(crate) fn spatial_dims<const N: usize>(
    layer: &str,
    dims: &[usize],
    spatial: [&str; N],
    channels: usize,
) -> crate::Result<[usize; N]> {
    match dims.split_last() {
        Some((&c, [_, inner @ ..])) if c == channels => {
            if let Ok(spatial_dims) = inner.try_into() {
                return Ok(spatial_dims);
            }
        }
        _ => {}
    }
    Err(Error::shape(
        layer,
        format!("(batch, {}, {channels})", spatial.join(", ")),
        format!("{dims:?}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposed_lengths_follow_keras() {
        let same = |n, k, s, op| transpose_axis_geometry(n, k, s, 1, Padding::Same, op);
        let valid = |n, k, s, op| transpose_axis_geometry(n, k, s, 1, Padding::Valid, op);
        // keras.io's VAE decoder: 7 -> 14 -> 28 (kernel 3, strides 2, 'same'), then 28 -> 28.
        assert_eq!(same(7, 3, 2, None), Some((0, 14)));
        assert_eq!(same(14, 3, 2, None), Some((0, 28)));
        assert_eq!(same(28, 3, 1, None), Some((1, 28)));
        // Even kernels crop half of k - s, rounded down, before.
        assert_eq!(same(5, 4, 2, None), Some((1, 10)));
        assert_eq!(same(5, 2, 1, None), Some((0, 5)));
        assert_eq!(same(5, 5, 3, None), Some((1, 15)));
        // With output_padding: (n - 1)·s + k % 2 + output_padding.
        assert_eq!(same(7, 3, 2, Some(1)), Some((0, 14)));
        assert_eq!(same(7, 3, 2, Some(0)), Some((1, 13)));
        assert_eq!(same(1, 2, 2, Some(0)), None);
        // 'valid': (n - 1)·s + max(k, s), or + k + output_padding.
        assert_eq!(valid(7, 3, 2, None), Some((0, 15)));
        assert_eq!(valid(4, 2, 3, None), Some((0, 12)));
        assert_eq!(valid(7, 3, 2, Some(1)), Some((0, 16)));
        // Dilation 2 widens a 3-tap window to 5.
        assert_eq!(
            transpose_axis_geometry(4, 3, 1, 2, Padding::Valid, None),
            Some((0, 8))
        );
        assert_eq!(
            transpose_axis_geometry(4, 3, 1, 2, Padding::Same, None),
            Some((2, 4))
        );
        assert_eq!(valid(0, 3, 2, None), None);
        assert_eq!(valid(usize::MAX, 3, 2, None), None);
    }

    #[test]
    fn causal_padding_pads_before_only() {
        assert_eq!(Padding1D::Causal.geometry(10, 3, 1, 2), Some((4, 0, 10)));
        assert_eq!(Padding1D::Causal.geometry(10, 3, 3, 1), Some((2, 0, 4)));
        assert_eq!(Padding1D::Same.geometry(10, 4, 1, 1), Some((1, 2, 10)));
        assert_eq!(Padding1D::Valid.geometry(2, 3, 1, 1), None);
        assert_eq!("causal".parse::<Padding1D>(), Ok(Padding1D::Causal));
        assert_eq!("same".parse::<Padding1D>(), Ok(Padding1D::Same));
        assert!("full".parse::<Padding1D>().unwrap_err().contains("causal"));
        assert_eq!(Padding1D::Causal.to_string(), "causal");
    }
}
