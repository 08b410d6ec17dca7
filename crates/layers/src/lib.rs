//! Keras-style layers over candle: each layer owns its weights (candle `Var`s, made on first
//! use), is callable on symbolic tensors to write functional graphs, and runs eagerly on
//! candle tensors shaped `(batch, ...)`, channels last.
//!
//! ```
//! use rkeras_layers::{Dense, Flatten, Input};
//!
//! let input = Input::new(&[28, 28, 1]);
//! let code = Dense::new(49).activation("relu")(Flatten::new()(input));
//! assert_eq!(code.shape().unwrap().to_string(), "(None, 49)");
//! ```
#![warn(missing_docs)]

pub mod activations;
pub mod builder;
pub mod convolutional;
pub mod core;
pub mod error;
pub mod initializers;
mod kernel_bias;
pub mod layer;
#[cfg(test)]
mod layer_tests;
pub mod pooling;
pub mod random;
pub mod regularizers;
pub mod reshaping;
pub mod session;
pub mod shape;
pub mod symbolic;

pub use activations::Activation;
pub use builder::{LayerBuilder, LayerConfig, SymbolicFn};
pub use convolutional::conv2d::Conv2D;
pub use convolutional::options::{Padding, Size2};
pub use core::activation::ActivationLayer;
pub use core::dense::{Dense, DenseLayer};
pub use core::input::{Input, InputLayer};
pub use core::lambda::{Lambda, LambdaLayer};
pub use error::{Error, Result};
pub use initializers::Initializer;
pub use layer::{CallContext, Layer, LayerBase, Weight};
pub use pooling::max_pooling2d::MaxPooling2D;
pub use regularizers::Regularizer;
pub use reshaping::flatten::Flatten;
pub use reshaping::reshape::Reshape;
pub use reshaping::up_sampling2d::UpSampling2D;
pub use shape::SymbolicShape;
pub use symbolic::SymbolicTensor;
