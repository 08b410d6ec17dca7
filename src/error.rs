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
    /// Saving or loading a model file (boxed: the error names the file and the entry, and
    /// is large).
    #[error(transparent)]
    Save(Box<rkeras_model::saving::SaveError>),
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

impl From<rkeras_model::saving::SaveError> for Error {
    fn from(error: rkeras_model::saving::SaveError) -> Self {
        Error::Save(Box::new(error))
    }
}

/// The result type of rkeras.
pub type Result<T> = std::result::Result<T, Error>;
