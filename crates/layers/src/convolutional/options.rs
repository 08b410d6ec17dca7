//! Options shared by convolution, pooling and upsampling layers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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
