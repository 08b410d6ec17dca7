//! One error type over every rkeras crate, so that `?` works across them in user code.

/// Any error rkeras can return.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Building or calling layers and models.
    #[error(transparent)]
    Layers(#[from] rkeras_layers::Error),
    /// Compiling, training, evaluating, saving.
    #[error(transparent)]
    Fit(#[from] rkeras_fit::Error),
    /// Loading datasets.
    #[error(transparent)]
    Datasets(#[from] rkeras_datasets::Error),
    /// Writing pictures.
    #[error(transparent)]
    Plot(#[from] rkeras_plot::Error),
    /// A tensor operation.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Files and the console.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The result type of rkeras.
pub type Result<T> = std::result::Result<T, Error>;
