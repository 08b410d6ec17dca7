//! `EvaluateOptions` and `BatchOptions`: the keyword arguments of Keras's `evaluate` and
//! `train_on_batch` beyond `x` and `y`.

use crate::arrays::Arrays;
use crate::sample_weights::Weighting;

/// How `evaluate_with` evaluates: `EvaluateOptions::new().batch_size(64).sample_weight(&w)`.
#[derive(Debug, Clone, Default)]
pub struct EvaluateOptions {
    pub(crate) batch_size: Option<usize>,
    pub(crate) sample_weight: Option<Arrays>,
}

impl EvaluateOptions {
    /// Keras's defaults: batch 32 (or the input's fixed batch), no sample weights.
    pub fn new() -> Self {
        Self::default()
    }

    /// Samples per batch.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = Some(batch_size);
        self
    }

    /// Keras's `sample_weight`, as [`FitOptions::sample_weight`](crate::FitOptions::sample_weight):
    /// the loss weighted sample by sample (the `metrics` are not).
    ///
    /// ```no_run
    /// # use candle_core::Tensor;
    /// # use rkeras_fit::{EvaluateOptions, Training};
    /// # fn demo(model: &rkeras_model::Model, x: &Tensor, y: &Tensor, w: &Tensor) -> rkeras_fit::Result<()> {
    /// // model.evaluate(x, y, sample_weight=w)
    /// let logs = model.evaluate_with(x, y, EvaluateOptions::new().sample_weight(w))?;
    /// # Ok(()) }
    /// ```
    pub fn sample_weight(mut self, weights: impl Into<Arrays>) -> Self {
        self.sample_weight = Some(weights.into());
        self
    }
}

/// How `train_on_batch_with` weights its batch:
/// `BatchOptions::new().class_weight([(0, 1.0), (1, 3.0)])`.
#[derive(Debug, Clone, Default)]
pub struct BatchOptions {
    pub(crate) weighting: Weighting,
}

impl BatchOptions {
    /// No weights.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keras's `sample_weight`, as [`FitOptions::sample_weight`](crate::FitOptions::sample_weight).
    ///
    /// ```no_run
    /// # use candle_core::Tensor;
    /// # use rkeras_fit::{BatchOptions, Training};
    /// # fn demo(model: &rkeras_model::Model, x: &Tensor, y: &Tensor, w: &Tensor) -> rkeras_fit::Result<()> {
    /// // model.train_on_batch(x, y, sample_weight=w)
    /// let logs = model.train_on_batch_with(x, y, BatchOptions::new().sample_weight(w))?;
    /// # Ok(()) }
    /// ```
    pub fn sample_weight(mut self, weights: impl Into<Arrays>) -> Self {
        self.weighting.sample_weight = Some(weights.into());
        self
    }

    /// Keras's `class_weight`, as [`FitOptions::class_weight`](crate::FitOptions::class_weight).
    pub fn class_weight(mut self, weights: impl IntoIterator<Item = (usize, f32)>) -> Self {
        self.weighting.class_weight = Some(weights.into_iter().collect());
        self
    }
}
