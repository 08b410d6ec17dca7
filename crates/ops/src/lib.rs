//! Fast CPU kernels for rkeras, as candle custom ops with explicit backward passes.
//!
//! All tensors are f32 and channels-last (NHWC), kernels are laid out as Keras stores them
//! (KH, KW, Cin, Cout). Each op runs its own kernel on the CPU and falls back to a composition of
//! candle ops on other devices.

#![warn(missing_docs)]

mod bce;
mod buffer;
mod check;
mod conv2d;
mod denormals;
pub mod dense;
mod error;
mod fork_join;
mod gather;
mod math;
mod matmul;
mod max_pool;
mod padding;
pub mod simd;
mod storage;
#[cfg(test)]
mod test_util;
#[cfg(test)]
mod timing;
mod upsample;

pub use bce::binary_cross_entropy_with_logits;
pub use conv2d::{conv2d, conv2d_backward, Conv2dGradients, Conv2dParams, Conv2dWanted};
pub use denormals::FlushDenormals;
pub use dense::{
    bias_activation, bias_activation_backward, bias_gradient, binary_cross_entropy,
    binary_cross_entropy_with_gradient, matmul_2d, sigmoid_cross_entropy_with_gradient,
    weighted_sums, FusedActivation,
};
pub use error::OpsError;
pub use fork_join::{on_own_threads, worker_threads};
pub use gather::gather_rows;
pub use max_pool::{max_pool2d, max_pool2d_backward};
pub use padding::{conv_output_len, same_padding, Padding2d};
pub use upsample::{upsample_nearest2d, upsample_nearest2d_backward};
