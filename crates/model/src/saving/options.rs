//! What a save takes besides the model, what a load gives back, and how weights load.

use std::collections::BTreeMap;

use candle_core::Tensor;

use crate::Model;

/// What the training crate saves with a model: its compile settings, its optimizer state and
/// anything else a resumed run needs (the epoch...).
#[derive(Debug, Clone, Default)]
pub struct SaveExtras {
    /// The compile settings (loss, optimizer, metrics) as JSON.
    pub compile_config: Option<serde_json::Value>,
    /// Tensors stored under `optimizer/<name>` (moments, step counters...).
    pub extra_tensors: Vec<(String, Tensor)>,
    /// Strings stored in the file's metadata under `extra/<key>`.
    pub extra_metadata: BTreeMap<String, String>,
}

/// A loaded model with what was saved beside it.
#[derive(Debug)]
pub struct LoadedModel {
    /// The model, with its saved weights.
    pub model: Model,
    /// The compile settings, if they were saved.
    pub compile_config: Option<serde_json::Value>,
    /// The extra tensors, with their `optimizer/` prefix removed, sorted by name.
    pub extra_tensors: Vec<(String, Tensor)>,
    /// The extra metadata, with its `extra/` prefix removed.
    pub extra_metadata: BTreeMap<String, String>,
}

/// How `load_weights` treats weights that do not fit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Load what fits by name and skip the rest (returning what was skipped) instead of
    /// failing on the first file that does not fit exactly.
    pub skip_mismatch: bool,
}
