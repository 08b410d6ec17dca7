//! Training for rkeras models: compile, fit, evaluate, predict, summary, losses, optimizers,
//! metrics, callbacks and Keras-style progress output.
#![warn(missing_docs)]

pub mod callbacks;
pub mod error;
pub mod history;
pub mod progress;
pub mod summary_table;

pub use error::{Error, Result};
