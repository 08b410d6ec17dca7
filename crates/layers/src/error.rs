//! The error type of `rkeras-layers`.

use std::sync::Arc;

/// Everything that can go wrong when configuring, building or calling a layer.
///
/// Cloneable, so that a symbolic tensor can carry the error of the call that produced it
/// until `Model::new` reports it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(Arc<candle_core::Error>),
    /// A layer received an input whose shape it cannot take.
    #[error("layer '{layer}': expected input shape {expected}, got {got}")]
    IncompatibleShape {
        /// The layer's name.
        layer: String,
        /// What the layer accepts.
        expected: String,
        /// What it received.
        got: String,
    },
    /// A layer option that cannot be used (an unknown activation name, zero filters, ...).
    #[error("layer '{layer}': {message}")]
    Config {
        /// The layer's name (or its class when it has no name yet).
        layer: String,
        /// What is wrong.
        message: String,
    },
    /// A symbolic graph that cannot be built or run.
    #[error("graph: {0}")]
    Graph(String),
}

impl From<candle_core::Error> for Error {
    fn from(error: candle_core::Error) -> Self {
        Error::Candle(Arc::new(error))
    }
}

impl Error {
    /// A [`Error::Config`] for `layer`.
    pub fn config(layer: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            layer: layer.into(),
            message: message.into(),
        }
    }

    /// An [`Error::IncompatibleShape`] for `layer`.
    pub fn shape(
        layer: impl Into<String>,
        expected: impl std::fmt::Display,
        got: impl std::fmt::Display,
    ) -> Self {
        Error::IncompatibleShape {
            layer: layer.into(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }
}

/// The result type of `rkeras-layers`.
pub type Result<T> = std::result::Result<T, Error>;
