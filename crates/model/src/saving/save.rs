//! Saving a model (architecture, weights, extras) or its weights alone, atomically.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use super::atomic::write_atomically;
use super::error::SaveError;
use super::format::{
    EXTRA_METADATA_PREFIX, FORMAT, FORMAT_VERSION, KEY_COMPILE_CONFIG, KEY_FORMAT,
    KEY_FORMAT_VERSION, KEY_MODEL,
};
use super::options::SaveExtras;
use super::spec::{saved_class, Describer};
use super::structure::{weight_structure, KEY_WEIGHT_STRUCTURE};
use super::weights::tensors_to_save;
use crate::Model;

/// Saves `model` to one `.safetensors` file at `path`: every weight under its path
/// (`encoder/dense/kernel`), the architecture and `extras` in the metadata.
///
/// The file is replaced atomically: a failed save leaves any previous file as it was. An
/// existing file keeps its permissions (less any set-id bits); a new one gets what
/// `File::create` gives. A symbolic link at `path` is written through: the file it names is
/// replaced and the link stays (a link to nothing is refused). A `path` that holds anything
/// but a regular file (a directory, a FIFO, a device) is refused and left as it is.
/// Temporary files that saves of the same path killed midway left beside it are removed.
pub fn save_model(
    model: &Model,
    path: impl AsRef<Path>,
    extras: &SaveExtras,
) -> Result<(), SaveError> {
    let path = path.as_ref();
    let unsavable = |reason: String| SaveError::Unsavable {
        path: path.to_path_buf(),
        reason,
    };
    let mut spec = Describer::default()
        .describe(model.name(), model.trainable(), model.graph())
        .map_err(unsavable)?;
    spec.class_name = saved_class(model.class_name());
    let mut metadata = header();
    let architecture = serde_json::to_string(&spec).map_err(|e| unsavable(e.to_string()))?;
    metadata.insert(KEY_MODEL.into(), architecture);
    if let Some(config) = &extras.compile_config {
        metadata.insert(KEY_COMPILE_CONFIG.into(), config.to_string());
    }
    for (key, value) in &extras.extra_metadata {
        metadata.insert(format!("{EXTRA_METADATA_PREFIX}{key}"), value.clone());
    }
    write(model, &extras.extra_tensors, metadata, path)
}

/// Saves `model`'s weights alone (Keras's `save_weights`), atomically and to a path as
/// [`save_model`] does.
pub fn save_weights(model: &Model, path: impl AsRef<Path>) -> Result<(), SaveError> {
    let path = path.as_ref();
    write(model, &[], header(), path)
}

/// Saves `model` with no extras (see [`save_model`]).
pub fn save(model: &Model, path: impl AsRef<Path>) -> Result<(), SaveError> {
    save_model(model, path, &SaveExtras::default())
}

/// The metadata every file this crate writes starts with.
fn header() -> HashMap<String, String> {
    HashMap::from([
        (KEY_FORMAT.to_string(), FORMAT.to_string()),
        (KEY_FORMAT_VERSION.to_string(), FORMAT_VERSION.to_string()),
    ])
}

fn write(
    model: &Model,
    extra_tensors: &[(String, candle_core::Tensor)],
    mut metadata: HashMap<String, String>,
    path: &Path,
) -> Result<(), SaveError> {
    metadata.insert(KEY_WEIGHT_STRUCTURE.to_string(), weight_structure(model));
    let tensors = tensors_to_save(model, extra_tensors, path)?;
    let bytes =
        safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(metadata))
            .map_err(|e| SaveError::Unsavable {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
    write_atomically(path, |file| file.write_all(&bytes))
}
