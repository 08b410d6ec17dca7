//! The error type of `rkeras-fit`.

use std::path::PathBuf;

/// Everything that can go wrong while compiling, training, evaluating or reporting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Building or running a layer or a model failed.
    #[error(transparent)]
    Layers(#[from] rkeras_layers::Error),
    /// Saving or loading a model failed.
    #[error(transparent)]
    Saving(#[from] rkeras_model::saving::SaveError),
    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// An option, a name or a combination of settings that cannot be used.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Tensors whose shapes do not fit together (targets vs predictions, x vs y, ...).
    #[error("shape mismatch in {context}: expected {expected}, got {got}")]
    Shape {
        /// Where the mismatch was found (a loss, a metric, fit, ...).
        context: String,
        /// What was expected.
        expected: String,
        /// What was found.
        got: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Serialising or parsing JSON failed.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// The result type of `rkeras-fit`.
pub type Result<T> = std::result::Result<T, Error>;
