//! Fused kernels for dense networks: the bias and activation after a matrix product, the
//! activations on their own (those differentiated from the output or from the input, and the
//! parametric ReLU), and the binary cross-entropy on probabilities or on a sigmoid's logits, each
//! one pass forward and one pass backward instead of a chain of candle elementwise ops (each with
//! its own allocation and autograd node).

pub(crate) mod activation;
pub(crate) mod activation_fns;
mod averaged_loss;
mod bias_activation_op;
mod cross_entropy_op;
mod gradient_args;
mod input_activation;
mod parallel;
mod prelu;
mod product;
mod sigmoid_cross_entropy;
mod softmax_cross_entropy;
mod special;
mod weighted_sum;

pub use activation::FusedActivation;
#[cfg(test)]
pub(crate) use bias_activation_op::ActivationOp;
pub use bias_activation_op::{
    bias_activation, bias_activation_backward, bias_gradient, fused_activation,
    fused_activation_backward,
};
#[cfg(test)]
pub(crate) use cross_entropy_op::BinaryCrossEntropyOp;
pub use cross_entropy_op::{binary_cross_entropy, binary_cross_entropy_with_gradient};
pub(crate) use gradient_args::expect_f32_and_gradient;
pub use input_activation::{input_activation, input_activation_backward, InputActivation};
pub(crate) use parallel::{in_row_chunks, map_pairs, write_rows};
pub use prelu::{prelu, prelu_backward};
pub use product::matmul_2d;
pub use sigmoid_cross_entropy::sigmoid_cross_entropy_with_gradient;
pub use softmax_cross_entropy::{
    softmax_cross_entropy_with_gradient, sparse_softmax_cross_entropy_with_gradient,
};
pub use weighted_sum::weighted_sums;
