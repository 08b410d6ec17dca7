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
pub mod advanced_activations;
pub mod builder;
pub mod context;
pub mod convolutional;
pub mod core;
pub mod error;
pub mod fusion;
pub mod initializers;
mod kernel_bias;
pub mod layer;
pub mod layer_tensors;
pub mod layer_weights;
pub mod limits;
pub mod logits;
pub mod merging;
pub mod naming;
pub mod normalization;
pub mod pooling;
pub mod preprocessing;
pub mod random;
pub mod record;
pub mod recurrent;
pub mod registry;
pub mod regularization;
pub mod regularizers;
pub mod reshaping;
pub mod session;
pub mod shape;
pub mod symbolic;
pub mod testing;

pub use activations::ActivationFn;
pub use builder::{LayerBuilder, LayerConfig, SymbolicFn};
pub use context::CallContext;
pub use convolutional::conv2d::Conv2DLayer;
pub use convolutional::options::{Padding, Size2};
pub use core::activation::ActivationLayer;
pub use core::dense::DenseLayer;
pub use core::input::{Input, InputLayer};
pub use core::lambda::{Lambda, LambdaLayer};
pub use error::{Error, Result};
pub use initializers::{Initializer, InitializerArg};
pub use layer::{Layer, LayerBase, Weight};
pub use layer_tensors::LayerTensors;
pub use layer_weights::LayerWeights;
pub use record::{CallRecord, WeightGrads};
pub use registry::builtins::*;
pub use regularizers::Regularizer;
pub use shape::SymbolicShape;
pub use symbolic::SymbolicTensor;

/// What a program building models needs, in one `use rkeras_layers::prelude::*;`: every
/// built-in layer's builder, `Input`, `Lambda`, and the options they take.
pub mod prelude {
    pub use crate::merging::{
        add, average, concatenate, dot, maximum, minimum, multiply, subtract,
    };
    pub use crate::registry::builtins::*;
    pub use crate::{
        ActivationFn, Initializer, Input, Lambda, LayerTensors, Padding, Regularizer,
        SymbolicTensor,
    };
}
