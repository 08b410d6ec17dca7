//! # rkeras
//!
//! A Keras-like deep-learning framework in Rust on candle: build models from layers as
//! functional graphs, reuse a trained encoder inside another model, print `summary()`,
//! `compile` / `fit` / `predict` with a progress bar, save and load as safetensors, on CPU,
//! CUDA or Metal.
//!
//! ```
//! use rkeras::prelude::*;
//!
//! # fn main() -> rkeras::Result<()> {
//! let input = Input::new(&[28, 28, 1]);
//! let code = Dense::new(49).activation("relu")(Flatten::new()(input));
//! let encoder = Model::named("encoder", input, code)?;
//!
//! let input_code = Input::new(&[49]);
//! let image = Reshape::new(&[28, 28, 1])(Dense::new(784).activation("sigmoid")(input_code));
//! let decoder = Model::named("decoder", input_code, image)?;
//!
//! let autoencoder = Model::new(input, decoder(encoder(input)))?;
//! assert_eq!(autoencoder.count_params(), 77_665);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod error;

/// The candle crate rkeras runs on (tensors, devices, dtypes).
pub use candle_core as candle;
pub use error::{Error, Result};
/// Datasets: MNIST.
pub use rkeras_datasets as datasets;
/// Training: compile, fit, evaluate, predict, summary, losses, optimizers, metrics, callbacks.
pub use rkeras_fit as fit;
/// Keras's `keras.models.load_model`: a saved model, compiled again when it was saved compiled.
pub use rkeras_fit::load_model;
/// Layers, activations, initializers, regularizers.
pub use rkeras_layers as layers;
/// Functional models.
pub use rkeras_model as model;
/// Pictures: digit grids and loss curves as PNG.
pub use rkeras_plot as plot;
/// JSON, the form of layer configs (`Layer::config`) and of a model's saved architecture.
pub use serde_json;

/// Session utilities and helpers, as Keras's `keras.utils` and `keras.backend`.
pub mod utils {
    pub use rkeras_fit::to_categorical;
    pub use rkeras_layers::session::{
        clear_session, default_device, set_default_device, set_random_seed,
    };
}

/// Everything an example needs, in one `use rkeras::prelude::*;`.
pub mod prelude {
    pub use candle_core::{DType, Device, Tensor};
    pub use rkeras_fit::callbacks::{
        Callback, CsvLogger, EarlyStopping, LearningRateScheduler, ModelCheckpoint,
        ReduceLrOnPlateau, TerminateOnNan,
    };
    pub use rkeras_fit::history::History;
    pub use rkeras_fit::losses::{
        BinaryCrossentropy, BinaryFocalCrossentropy, CategoricalCrossentropy, CategoricalHinge,
        CosineSimilarity, Hinge, Huber, KLDivergence, LogCosh, MeanAbsoluteError,
        MeanAbsolutePercentageError, MeanSquaredError, MeanSquaredLogarithmicError, Poisson,
        SparseCategoricalCrossentropy, SquaredHinge,
    };
    pub use rkeras_fit::metrics::{
        FalseNegatives, FalsePositives, Precision, Recall, TrueNegatives, TruePositives, AUC,
    };
    pub use rkeras_fit::optimizers::{
        Adadelta, Adagrad, Adam, AdamW, Adamax, ExponentialDecay, Nadam, RMSprop, SGD,
    };
    pub use rkeras_fit::{
        Arrays, BatchOptions, CompileOptions, EvaluateOptions, FitOptions, Losses, Summary,
        Training,
    };
    pub use rkeras_layers::prelude::*;
    pub use rkeras_layers::{CallContext, Layer, LayerBase, LayerConfig, LayerWeights};
    pub use rkeras_model::{Model, Sequential};
}
