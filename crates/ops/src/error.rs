//! The error every op reports when its arguments do not fit.

use candle_core::{DType, Shape};

/// What an op expected of its arguments and what it got instead.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// An argument has the wrong number of dimensions.
    #[error("{op}: expected `{arg}` of rank {expected}, got shape {got:?}")]
    Rank {
        /// The op that refused the argument.
        op: &'static str,
        /// The argument's name.
        arg: &'static str,
        /// The rank the op needs.
        expected: usize,
        /// The shape it was given.
        got: Shape,
    },
    /// An argument is not f32.
    #[error("{op}: expected `{arg}` of dtype f32, got {got:?}")]
    DType {
        /// The op that refused the argument.
        op: &'static str,
        /// The argument's name.
        arg: &'static str,
        /// The dtype it was given.
        got: DType,
    },
    /// Two arguments' shapes do not agree.
    #[error(
        "{op}: {expected}; got `{lhs_name}` of shape {lhs:?} and `{rhs_name}` of shape {rhs:?}"
    )]
    ShapeMismatch {
        /// The op that refused the arguments.
        op: &'static str,
        /// What the shapes should satisfy.
        expected: &'static str,
        /// The first argument's name.
        lhs_name: &'static str,
        /// The first argument's shape.
        lhs: Shape,
        /// The second argument's name.
        rhs_name: &'static str,
        /// The second argument's shape.
        rhs: Shape,
    },
    /// Two arguments live on different devices.
    #[error("{op}: expected all arguments on one device, got {lhs} and {rhs}")]
    DeviceMismatch {
        /// The op that refused the arguments.
        op: &'static str,
        /// The first argument's device.
        lhs: String,
        /// The second argument's device.
        rhs: String,
    },
    /// A hyper-parameter (window, stride, dilation, factor, padding) is out of range.
    #[error("{op}: invalid configuration: {reason}")]
    Config {
        /// The op that refused the configuration.
        op: &'static str,
        /// What is wrong, with the values involved.
        reason: String,
    },
    /// The (padded) input is smaller than the (dilated) window.
    #[error("{op}: input of shape {input:?} with padding {padding:?} is smaller than the window {window:?}")]
    InputTooSmall {
        /// The op that refused the input.
        op: &'static str,
        /// The input's shape.
        input: Shape,
        /// The padding (top, bottom, left, right).
        padding: (usize, usize, usize, usize),
        /// The effective window (height, width), dilation included.
        window: (usize, usize),
    },
    /// The configuration is valid but the non-CPU fallback cannot express it.
    #[error("{op}: {what} is not supported on {device}")]
    Unsupported {
        /// The op that refused the configuration.
        op: &'static str,
        /// What cannot be done.
        what: String,
        /// The device it was asked on.
        device: String,
    },
}

impl From<OpsError> for candle_core::Error {
    fn from(error: OpsError) -> Self {
        candle_core::Error::wrap(error)
    }
}
