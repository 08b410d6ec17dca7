//! Saving a model with what training needs to resume (compile config, optimizer state, the
//! epoch reached), and loading it back compiled.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::Var;
use rkeras_model::saving::{self, Registry, SaveExtras};
use rkeras_model::Model;

use crate::compile::{attach, CompileOptions, Compiled, Losses};
use crate::restore::{loss_from_config, optimizer_from_config};
use crate::{Error, Result};

/// The metadata key of the number of epochs completed when a checkpoint was written.
const EPOCH_KEY: &str = "epochs_completed";

fn trainable_vars(model: &Model) -> Vec<Var> {
    model
        .trainable_weights()
        .into_iter()
        .map(|w| w.var)
        .collect()
}

/// Saves `model`, its compile config and optimizer state when compiled, and the number of
/// epochs completed when known, atomically to one `.safetensors` file.
pub(crate) fn save_checkpoint(
    model: &Model,
    compiled: Option<&Compiled>,
    epochs_completed: Option<usize>,
    path: &Path,
) -> Result<()> {
    let mut extras = SaveExtras::default();
    if let Some(compiled) = compiled {
        extras.compile_config = Some(compiled.config());
        extras.extra_tensors = compiled.optimizer.state(&trainable_vars(model))?;
    }
    if let Some(epochs) = epochs_completed {
        extras.extra_metadata = BTreeMap::from([(EPOCH_KEY.to_string(), epochs.to_string())]);
    }
    saving::save_model(model, path, &extras)?;
    Ok(())
}

/// Saves `model` with its compile state (Keras's `model.save`).
pub(crate) fn save_model(model: &Model, compiled: Option<&Compiled>, path: &Path) -> Result<()> {
    save_checkpoint(model, compiled, None, path)
}

/// Saves the weights only.
pub(crate) fn save_weights(model: &Model, path: &Path) -> Result<()> {
    saving::save_weights(model, path)?;
    Ok(())
}

/// A model loaded from a file, compiled again when the file holds a compile config.
#[derive(Debug)]
pub struct Checkpoint {
    /// The model, with its weights (and its optimizer state when it was compiled).
    pub model: Model,
    /// The epochs completed when the file was written by `ModelCheckpoint` during `fit`:
    /// pass it as `initial_epoch` to resume.
    pub epochs_completed: Option<usize>,
}

/// Loads a model saved by `save` or `ModelCheckpoint` (Keras's `load_model`), with the
/// Lambdas and custom layers of `registry`; a saved compile config is compiled again and the
/// optimizer's state restored, so that training resumes where it stopped.
pub fn load_checkpoint(path: impl AsRef<Path>, registry: &Registry) -> Result<Checkpoint> {
    let loaded = saving::load_model(path.as_ref(), registry)?;
    let model = loaded.model;
    if let Some(config) = &loaded.compile_config {
        let mut optimizer = optimizer_from_config(&config["optimizer"])?;
        if !loaded.extra_tensors.is_empty() {
            optimizer.load_state(&trainable_vars(&model), &loaded.extra_tensors)?;
        }
        let compiled = Compiled::new(
            &model,
            optimizer,
            losses_from_config(&config["loss"])?,
            options_from_config(config),
        )?;
        attach(&model, compiled)?;
    }
    let epochs_completed = match loaded.extra_metadata.get(EPOCH_KEY) {
        Some(text) => Some(text.parse().map_err(|_| {
            Error::Config(format!(
                "{}: '{EPOCH_KEY}' is '{text}', not a number",
                path.as_ref().display()
            ))
        })?),
        None => None,
    };
    Ok(Checkpoint {
        model,
        epochs_completed,
    })
}

/// The losses of a saved compile config: one loss, or a list, one per output.
fn losses_from_config(config: &serde_json::Value) -> Result<Losses> {
    match config.as_array() {
        Some(list) => Ok(Losses::PerOutput(
            list.iter().map(loss_from_config).collect::<Result<_>>()?,
        )),
        None => Ok(Losses::Every(loss_from_config(config)?)),
    }
}

/// The metrics and loss weights of a saved compile config: for one output a list of metric
/// names and a weight (or null), else a list of each.
fn options_from_config(config: &serde_json::Value) -> CompileOptions {
    let names = |value: &serde_json::Value| -> Vec<String> {
        value
            .as_array()
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| n.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let metrics = &config["metrics"];
    let per_output = metrics
        .as_array()
        .is_some_and(|list| list.iter().any(serde_json::Value::is_array));
    let mut options = CompileOptions::new();
    if per_output {
        let lists: Vec<Vec<String>> = metrics
            .as_array()
            .map(|list| list.iter().map(names).collect())
            .unwrap_or_default();
        let borrowed: Vec<Vec<&str>> = lists
            .iter()
            .map(|l| l.iter().map(String::as_str).collect())
            .collect();
        let slices: Vec<&[&str]> = borrowed.iter().map(Vec::as_slice).collect();
        options = options.output_metrics(&slices);
    } else {
        let flat = names(metrics);
        let flat: Vec<&str> = flat.iter().map(String::as_str).collect();
        options = options.metrics(&flat);
    }
    let weights = &config["loss_weights"];
    if let Some(weight) = weights.as_f64() {
        options = options.loss_weights(&[weight]);
    } else if let Some(list) = weights.as_array() {
        let list: Vec<f64> = list.iter().filter_map(serde_json::Value::as_f64).collect();
        options = options.loss_weights(&list);
    }
    options
}

/// Loads a model with the default registry (no Lambdas or custom layers).
pub fn load_model(path: impl AsRef<Path>) -> Result<Model> {
    Ok(load_checkpoint(path, &Registry::default())?.model)
}
