//! Saving a model with what training needs to resume (compile config, optimizer state, the
//! epoch reached), and loading it back compiled.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::Var;
use rkeras_model::saving::format::{EXTRA_METADATA_PREFIX, OPTIMIZER_PREFIX};
use rkeras_model::saving::{self, Registry, SaveError, SaveExtras};
use rkeras_model::Model;

use crate::compile::{attach, CompileOptions, Compiled, Losses};
use crate::restore::{
    check_optimizer_state, loss_from_config, metrics_from_config, optimizer_from_config,
};
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
/// optimizer's state restored, so that training resumes where it stopped. A compile config or
/// an optimizer state that cannot be used is an error naming the file and the entry.
pub fn load_checkpoint(path: impl AsRef<Path>, registry: &Registry) -> Result<Checkpoint> {
    let path = path.as_ref();
    let loaded = saving::read(path, registry)?;
    let model = loaded.model;
    let refused = |entry: &str, reason: String| {
        Error::Saving(SaveError::Entry {
            path: path.to_path_buf(),
            entry: entry.to_string(),
            reason,
        })
    };
    if let Some(config) = &loaded.compile_config {
        let in_config = |e: Error| refused("compile_config", e.to_string());
        let mut optimizer = optimizer_from_config(&config["optimizer"]).map_err(in_config)?;
        let losses = losses_from_config(&config["loss"]).map_err(in_config)?;
        let options = options_from_config(config).map_err(|e| refused("compile_config", e))?;
        if !loaded.extra_tensors.is_empty() {
            check_optimizer_state(&loaded.extra_tensors)
                .map_err(|(name, reason)| refused(&format!("{OPTIMIZER_PREFIX}{name}"), reason))?;
            optimizer
                .load_state(&trainable_vars(&model), &loaded.extra_tensors)
                .map_err(|e| refused(OPTIMIZER_PREFIX, e.to_string()))?;
        }
        let compiled = Compiled::new(&model, optimizer, losses, options).map_err(in_config)?;
        attach(&model, compiled)?;
    }
    let epochs_completed = match loaded.extra_metadata.get(EPOCH_KEY) {
        Some(text) => Some(text.parse().map_err(|_| {
            refused(
                &format!("{EXTRA_METADATA_PREFIX}{EPOCH_KEY}"),
                format!("'{text}' is not a number"),
            )
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

/// The metrics and loss weights of a saved compile config: for one output a list of metrics
/// (names, or configs of metrics with options) and a weight (or null), else a list of each;
/// unknown metrics are refused.
fn options_from_config(config: &serde_json::Value) -> std::result::Result<CompileOptions, String> {
    let metrics = &config["metrics"];
    let per_output = metrics
        .as_array()
        .is_some_and(|list| list.iter().any(serde_json::Value::is_array));
    let mut options = CompileOptions::new();
    if per_output {
        let lists = metrics
            .as_array()
            .into_iter()
            .flatten()
            .map(metrics_from_config)
            .collect::<std::result::Result<_, _>>()?;
        options = options.metric_lists(lists);
    } else {
        for metric in metrics_from_config(metrics)? {
            options = options.metric(metric);
        }
    }
    let weights = &config["loss_weights"];
    let weights: Option<Vec<f64>> = match weights {
        serde_json::Value::Null => None,
        serde_json::Value::Array(list) => Some(
            list.iter()
                .map(|w| {
                    w.as_f64()
                        .ok_or_else(|| format!("loss weight {w} is not a number"))
                })
                .collect::<std::result::Result<_, _>>()?,
        ),
        other => Some(vec![other
            .as_f64()
            .ok_or_else(|| format!("'loss_weights' {other} is not a number"))?]),
    };
    if let Some(weights) = weights {
        if weights.iter().any(|w| !w.is_finite()) {
            return Err(format!("'loss_weights' {weights:?} are not all finite"));
        }
        options = options.loss_weights(&weights);
    }
    Ok(options)
}

/// Loads a model with the default registry (no Lambdas or custom layers).
pub fn load_model(path: impl AsRef<Path>) -> Result<Model> {
    Ok(load_checkpoint(path, &Registry::default())?.model)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use candle_core::{Device, Tensor};
    use rkeras_layers::{Dense, Input};
    use serde_json::{json, Value};

    use super::*;
    use crate::compile::{with_compiled, CompileState};
    use crate::Training;

    /// A compiled model saved with its compile config and optimizer state changed by `edit`.
    fn saved_with(
        name: &str,
        edit: impl FnOnce(&mut Value, &mut Vec<(String, Tensor)>),
    ) -> PathBuf {
        let input = Input::named("x", &[3]);
        let model = Model::named("m", input, Dense::new(2).name("d")(input)).unwrap();
        model.compile_with_metrics("adam", "mse", &["mae"]).unwrap();
        let (mut config, mut state) = with_compiled(&model, |state| match state {
            CompileState::Ready(c) => (
                c.config(),
                c.optimizer.state(&trainable_vars(&model)).unwrap(),
            ),
            _ => panic!("the model was just compiled"),
        });
        edit(&mut config, &mut state);
        let path = std::env::temp_dir().join(format!(
            "rkeras-fit-saving-{}-{name}.safetensors",
            std::process::id()
        ));
        let extras = SaveExtras {
            compile_config: Some(config),
            extra_tensors: state,
            ..SaveExtras::default()
        };
        saving::save_model(&model, &path, &extras).unwrap();
        path
    }

    fn load_error(path: &Path) -> String {
        let err = load_checkpoint(path, &Registry::default())
            .unwrap_err()
            .to_string();
        std::fs::remove_file(path).unwrap();
        err
    }

    fn set(state: &mut [(String, Tensor)], name: &str, value: Tensor) {
        state.iter_mut().find(|(n, _)| n == name).unwrap().1 = value;
    }

    #[test]
    fn an_unedited_checkpoint_loads() {
        let path = saved_with("plain", |_, _| {});
        load_checkpoint(&path, &Registry::default()).unwrap();
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn an_unknown_metric_is_refused_naming_the_file_and_entry() {
        let path = saved_with("metric", |config, _| config["metrics"] = json!(["acuracy"]));
        let err = load_error(&path);
        let file = path.display().to_string();
        assert!(
            err.contains(&file) && err.contains("compile_config"),
            "{err}"
        );
        assert!(err.contains("acuracy"), "{err}");
        let path = saved_with("metric-type", |config, _| config["metrics"] = json!([3]));
        let err = load_error(&path);
        assert!(err.contains("compile_config") && err.contains('3'), "{err}");
        let path = saved_with("metric-class", |config, _| {
            config["metrics"] = json!([{"class_name": "IoU", "config": {"name": "iou"}}])
        });
        let err = load_error(&path);
        assert!(
            err.contains("IoU") && err.contains("TruePositives"),
            "{err}"
        );
        let path = saved_with("metric-threshold", |config, _| {
            config["metrics"] = json!([{"class_name": "Recall", "config": {"thresholds": 2.0}}])
        });
        let err = load_error(&path);
        assert!(err.contains("thresholds must be in [0, 1]"), "{err}");
    }

    #[test]
    fn a_nan_learning_rate_is_refused_naming_the_file_and_entry() {
        let path = saved_with("nan", |_, state| {
            set(
                state,
                "learning_rate",
                Tensor::new(f64::NAN, &Device::Cpu).unwrap(),
            )
        });
        let err = load_error(&path);
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(
            err.contains("optimizer/learning_rate") && err.contains("NaN"),
            "{err}"
        );
    }

    #[test]
    fn a_non_scalar_iteration_count_is_refused_naming_the_file() {
        let path = saved_with("iterations", |_, state| {
            set(
                state,
                "iterations",
                Tensor::new(&[1i64, 2], &Device::Cpu).unwrap(),
            )
        });
        let err = load_error(&path);
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("optimizer/iterations"), "{err}");
    }
}
