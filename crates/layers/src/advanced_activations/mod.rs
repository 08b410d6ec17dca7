//! Activation layers with options of their own (Keras's `keras/src/layers/activations/`):
//! `ReLU`, `LeakyReLU`, `ELU`, `Softmax` and `PReLU` (`Activation`, which takes any activation by
//! name, is in `core`).

pub mod elementwise;
pub mod elu;
pub mod leaky_relu;
pub mod prelu;
pub mod relu;
pub mod softmax;
