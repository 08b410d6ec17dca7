//! Functional models for rkeras: symbolic inputs, layer calls, `Model::new(inputs, outputs)`,
//! `Sequential` stacks, nesting (a model is callable like a layer) and eager execution on candle
//! tensors.
//!
//! ```
//! use rkeras_layers::{Dense, Flatten, Input, Reshape};
//! use rkeras_model::Model;
//!
//! # fn main() -> rkeras_layers::Result<()> {
//! let input = Input::new(&[28, 28, 1]);
//! let encoder = Model::named("encoder", input, Dense::new(49).activation("relu")(Flatten::new()(input)))?;
//! let code = Input::new(&[49]);
//! let image = Reshape::new(&[28, 28, 1])(Dense::new(784).activation("sigmoid")(code));
//! let decoder = Model::named("decoder", code, image)?;
//! let autoencoder = Model::new(input, decoder(encoder(input)))?;
//! assert_eq!(autoencoder.count_params(), 77_665);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod backward;
pub mod functional;
pub mod graph;
pub mod model;
pub mod saving;
pub mod sequential;
pub mod tensor_list;

pub use functional::Functional;
pub use graph::{Graph, Inbound, Node};
pub use model::Model;
pub use sequential::{Sequential, SequentialItem};
pub use tensor_list::TensorList;
