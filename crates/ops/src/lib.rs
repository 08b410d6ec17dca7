//! Fast CPU kernels for rkeras, as candle custom ops with explicit backward passes.
//!
//! All tensors are f32 and channels-last (NHWC), kernels are laid out as Keras stores them
//! (KH, KW, Cin, Cout). Each op runs its own kernel on the CPU and a composition of candle ops on other
//! devices (and on the CPU inside [`with_composed_ops`], to test one against the other).

#![warn(missing_docs)]

mod avg_pool;
mod buffer;
mod check;
mod conv2d;
mod denormals;
pub mod dense;
mod depthwise;
mod elementwise;
mod embedding;
mod error;
mod fork_join;
mod gather;
mod kernels;
mod math;
mod matmul;
mod max_pool;
mod meeting;
mod normalization;
mod padding;
mod recurrent;
pub mod simd;
mod softmax;
mod storage;
#[cfg(test)]
mod test_util;
#[cfg(test)]
mod timing;
mod upsample;

pub use avg_pool::{avg_pool2d, avg_pool2d_backward};
pub use conv2d::{
    conv2d, conv2d_backward, conv2d_max_pool, conv2d_max_pool_backward, conv2d_transpose,
    conv2d_transpose_backward, Conv2dGradients, Conv2dParams, Conv2dTransposeGradients,
    Conv2dTransposeParams, Conv2dWanted, MaxPoolWindow, PoolWinners,
};
pub use denormals::FlushDenormals;
pub use dense::{
    bias_activation, bias_activation_backward, bias_gradient, binary_cross_entropy,
    binary_cross_entropy_with_gradient, fused_activation, fused_activation_backward,
    input_activation, input_activation_backward, matmul_2d, prelu, prelu_backward,
    sigmoid_cross_entropy_with_gradient, softmax_cross_entropy_with_gradient,
    sparse_softmax_cross_entropy_with_gradient, weighted_sums, FusedActivation, InputActivation,
};
pub use depthwise::{depthwise_conv2d, depthwise_conv2d_backward, DepthwiseGradients};
pub use elementwise::{add, multiply};
pub use embedding::{embedding, embedding_backward, embedding_indices};
pub use error::OpsError;
pub use fork_join::{on_own_threads, parts_can_meet, worker_threads};
pub use gather::gather_rows;
pub use kernels::{kernels_on, with_composed_ops};
pub use max_pool::{max_pool2d, max_pool2d_backward};
pub use meeting::{BatchPart, Contributions, MeetingBroken, Seat};
pub use normalization::{
    batch_moments, batch_moments_across_parts, batch_normalization_backward, layer_normalization,
    layer_normalization_backward, scale_shift, BatchNormGradients, BatchNormStatistics,
    LayerNormGradients, LayerNormOutput,
};
pub use padding::{conv_output_len, same_padding, Padding2d};
pub use recurrent::{
    gru_sequence, lstm_sequence, recurrent_backward, simple_rnn_sequence, RecurrentGradients,
    RecurrentOutputGrads, RecurrentRun, RecurrentSpec, RecurrentTape, RecurrentWanted,
    RecurrentWeights,
};
pub use softmax::{log_softmax, log_softmax_backward, softmax, softmax_backward};
pub use upsample::{upsample_nearest2d, upsample_nearest2d_backward};
