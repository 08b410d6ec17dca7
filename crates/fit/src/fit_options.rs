//! `FitOptions`: Keras's `fit` keyword arguments, with Keras's defaults.

use crate::arrays::Arrays;
use crate::callbacks::Callback;
use crate::sample_weights::Weighting;

/// How `fit` trains: `FitOptions::new().epochs(50).batch_size(256).validation_data(&x, &x)`.
pub struct FitOptions<'a> {
    pub(crate) epochs: usize,
    pub(crate) batch_size: Option<usize>,
    pub(crate) shuffle: bool,
    pub(crate) validation_data: Option<(Arrays, Arrays)>,
    pub(crate) validation_split: f64,
    pub(crate) steps_per_epoch: Option<usize>,
    pub(crate) initial_epoch: usize,
    pub(crate) verbose: Option<u8>,
    pub(crate) callbacks: Vec<Box<dyn Callback + 'a>>,
    pub(crate) weighting: Weighting,
    pub(crate) validation_sample_weight: Option<Arrays>,
}

impl Default for FitOptions<'_> {
    /// Never inlined, as `LayerBuilder::from_config` (rust-lang/rust#158830: rustc 1.95 and
    /// 1.96 can drop twice two identical options made inline and passed by value to `fit`).
    #[inline(never)]
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: None,
            shuffle: true,
            validation_data: None,
            validation_split: 0.0,
            steps_per_epoch: None,
            initial_epoch: 0,
            verbose: None,
            callbacks: Vec::new(),
            weighting: Weighting::default(),
            validation_sample_weight: None,
        }
    }
}

impl<'a> FitOptions<'a> {
    /// Keras's defaults: 1 epoch, batch 32 (or the input's fixed batch), shuffled, verbose 1.
    pub fn new() -> Self {
        FitOptions::default()
    }

    /// The epoch to stop after (0 trains nothing).
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// Samples per step (default 32, or the fixed batch size of the model's input).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = Some(batch_size);
        self
    }

    /// Whether the training samples are shuffled every epoch (default true).
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Data to compute `val_loss` and `val_*` metrics on after each epoch: an array or a list
    /// of arrays each, as `fit`'s `x` and `y`.
    pub fn validation_data(mut self, x: impl Into<Arrays>, y: impl Into<Arrays>) -> Self {
        self.validation_data = Some((x.into(), y.into()));
        self
    }

    /// The fraction of the data, taken from its end before shuffling, kept for validation.
    pub fn validation_split(mut self, fraction: f64) -> Self {
        self.validation_split = fraction;
        self
    }

    /// Steps per epoch instead of one pass over the data (the data then continues where the
    /// previous epoch stopped).
    pub fn steps_per_epoch(mut self, steps: usize) -> Self {
        self.steps_per_epoch = Some(steps);
        self
    }

    /// The epoch to start at (to resume training).
    pub fn initial_epoch(mut self, epoch: usize) -> Self {
        self.initial_epoch = epoch;
        self
    }

    /// 0 silent, 1 a progress bar (one line per epoch when stdout is not a terminal), 2 one
    /// line per epoch.
    pub fn verbose(mut self, verbose: u8) -> Self {
        self.verbose = Some(verbose);
        self
    }

    /// Keras's `sample_weight`: each sample's weight in the loss, one array of one weight per
    /// sample (`(samples,)` or `(samples, 1)`) for every output, or one array per output (which
    /// may also hold one weight per sample and timestep, `(samples, timesteps)`). Each sample's
    /// loss is multiplied by its weight and the batch's loss is the sum divided by the number of
    /// values, as Keras's `"sum_over_batch_size"` reduction (not by the sum of the weights).
    /// Shuffling and `validation_split` keep each weight with its sample (the validation part
    /// weights `val_loss`). As in Keras, the `metrics` are not weighted. Cannot be combined
    /// with [`class_weight`](Self::class_weight).
    ///
    /// ```no_run
    /// # use candle_core::{Device, Tensor};
    /// # use rkeras_fit::{FitOptions, Training};
    /// # fn demo(model: &rkeras_model::Model, x: &Tensor, y: &Tensor) -> rkeras_fit::Result<()> {
    /// // model.fit(x, y, sample_weight=w)
    /// let w = Tensor::new(&[1f32, 2., 0.5, 1.], &Device::Cpu)?;
    /// model.fit(x, y, FitOptions::new().epochs(5).sample_weight(&w))?;
    /// # Ok(()) }
    /// ```
    pub fn sample_weight(mut self, weights: impl Into<Arrays>) -> Self {
        self.weighting.sample_weight = Some(weights.into());
        self
    }

    /// Keras's `class_weight`: `(class, weight)` pairs (an array, a `Vec` or a `HashMap`), each
    /// sample's weight being its class's, 1 for a class not listed. The class is the argmax of
    /// a one-hot target, the label of a sparse target, 0 or 1 for a binary target. Training
    /// only (not `val_loss`), for a model with one output; cannot be combined with
    /// [`sample_weight`](Self::sample_weight).
    ///
    /// ```no_run
    /// # use candle_core::Tensor;
    /// # use rkeras_fit::{FitOptions, Training};
    /// # fn demo(model: &rkeras_model::Model, x: &Tensor, y: &Tensor) -> rkeras_fit::Result<()> {
    /// // model.fit(x, y, class_weight={0: 1.0, 1: 5.0})
    /// model.fit(x, y, FitOptions::new().class_weight([(0, 1.0), (1, 5.0)]))?;
    /// # Ok(()) }
    /// ```
    pub fn class_weight(mut self, weights: impl IntoIterator<Item = (usize, f32)>) -> Self {
        self.weighting.class_weight = Some(weights.into_iter().collect());
        self
    }

    /// The sample weights of [`validation_data`](Self::validation_data), weighting `val_loss`
    /// as [`sample_weight`](Self::sample_weight) weights `loss` (Keras's third element of
    /// `validation_data=(x_val, y_val, val_sample_weights)`).
    pub fn validation_sample_weight(mut self, weights: impl Into<Arrays>) -> Self {
        self.validation_sample_weight = Some(weights.into());
        self
    }

    /// Adds a callback.
    pub fn callback(mut self, callback: impl Callback + 'a) -> Self {
        self.callbacks.push(Box::new(callback));
        self
    }
}
