//! Fused kernels for dense networks: the bias and activation after a matrix product, and the
//! binary cross-entropy on probabilities, each one pass forward and one pass backward instead of
//! a chain of candle elementwise ops (each with its own allocation and autograd node).

mod activation;
mod bias_activation_op;
mod cross_entropy_op;
mod parallel;

pub use activation::FusedActivation;
pub use bias_activation_op::{bias_activation, bias_activation_backward};
pub use cross_entropy_op::{binary_cross_entropy, binary_cross_entropy_gradient};
