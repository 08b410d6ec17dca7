//! Training for rkeras models: compile, fit, evaluate, predict, summary, losses, optimizers,
//! metrics, callbacks and Keras-style progress output.
#![warn(missing_docs)]

mod arrays;
mod batches;
pub mod callbacks;
mod categorical;
pub mod compile;
pub mod error;
mod fit_options;
mod format;
pub mod history;
pub mod losses;
pub mod metrics;
pub mod optimizers;
mod progress;
mod restore;
mod run_options;
mod sample_weights;
pub mod saving;
mod summary;
mod summary_table;
#[cfg(test)]
mod test_threads;
mod trainer;
mod training;

pub use arrays::Arrays;
pub use categorical::to_categorical;
pub use compile::{CompileOptions, Losses};
pub use error::{Error, Result};
pub use fit_options::FitOptions;
pub use run_options::{BatchOptions, EvaluateOptions};
pub use saving::{load_checkpoint, load_model, Checkpoint};
pub use summary::Summary;
pub use training::Training;
