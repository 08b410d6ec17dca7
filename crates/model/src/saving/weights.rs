//! Weights between a model and a file: collecting them (with the caller's extra tensors) to
//! write, and matching a file's tensors to a model's weights by path to load.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use rkeras_layers::session::default_device;
use rkeras_layers::Weight;
use safetensors::tensor::TensorView;
use safetensors::SafeTensors;

use super::error::{SaveError, WeightMismatch};
use super::format::{spec_of_tensor, spec_of_view, OPTIMIZER_PREFIX};
use crate::Model;

/// Dtypes candle stores without a byte layout safetensors can take.
fn writable(dtype: DType) -> bool {
    !matches!(
        dtype,
        DType::F6E2M3 | DType::F6E3M2 | DType::F4 | DType::F8E8M0
    )
}

/// The tensors a save writes, copied to the CPU: every weight under its path, then each
/// extra tensor under `optimizer/<name>`.
pub fn tensors_to_save(
    model: &Model,
    extra: &[(String, Tensor)],
    path: &Path,
) -> Result<Vec<(String, Tensor)>, SaveError> {
    let unsavable = |reason: String| SaveError::Unsavable {
        path: path.to_path_buf(),
        reason,
    };
    let weights = model.weights();
    if let Some(w) = weights
        .iter()
        .find(|w| w.path.starts_with(OPTIMIZER_PREFIX))
    {
        return Err(unsavable(format!(
            "weight '{}' starts with '{OPTIMIZER_PREFIX}', which is reserved for optimizer state: \
             rename the layer",
            w.path
        )));
    }
    let named = weights
        .into_iter()
        .map(|w| (w.path, w.var.as_tensor().clone()))
        .chain(
            extra
                .iter()
                .map(|(name, t)| (format!("{OPTIMIZER_PREFIX}{name}"), t.clone())),
        );
    let mut seen = HashSet::new();
    let mut all = Vec::new();
    for (name, tensor) in named {
        if !seen.insert(name.clone()) {
            return Err(unsavable(format!(
                "two tensors would both be stored as '{name}'"
            )));
        }
        if !writable(tensor.dtype()) {
            return Err(unsavable(format!(
                "tensor '{name}' has dtype {:?}, which safetensors cannot store byte for byte",
                tensor.dtype()
            )));
        }
        let on_cpu = tensor
            .to_device(&Device::Cpu)
            .map_err(|source| SaveError::Tensor {
                path: path.to_path_buf(),
                source,
            })?;
        all.push((name, on_cpu));
    }
    Ok(all)
}

/// How a file's tensors fit a model's weights.
pub struct WeightMatch<'data> {
    /// Each weight with the file tensor of the same path, dtype and shape.
    pub matched: Vec<(Weight, TensorView<'data>)>,
    /// Everything else, sorted by name.
    pub mismatches: Vec<WeightMismatch>,
}

/// Matches `weights` with the file's tensors by path; tensors under `optimizer/` are the
/// caller's extras, not weights, and are left out.
pub fn match_weights<'data>(weights: Vec<Weight>, file: &SafeTensors<'data>) -> WeightMatch<'data> {
    let mut in_file: HashMap<String, TensorView<'data>> = file
        .iter()
        .filter(|(name, _)| !name.starts_with(OPTIMIZER_PREFIX))
        .map(|(name, view)| (name.to_string(), view))
        .collect();
    let mut matched = Vec::new();
    let mut mismatches = Vec::new();
    for weight in weights {
        let expected = spec_of_tensor(weight.var.as_tensor());
        match in_file.remove(&weight.path) {
            None => mismatches.push(WeightMismatch::Missing {
                name: weight.path,
                expected,
            }),
            Some(view) => {
                let found = spec_of_view(&view);
                if found == expected {
                    matched.push((weight, view));
                } else {
                    mismatches.push(WeightMismatch::Incompatible {
                        name: weight.path,
                        expected,
                        found,
                    });
                }
            }
        }
    }
    mismatches.extend(
        in_file
            .into_iter()
            .map(|(name, view)| WeightMismatch::Unexpected {
                found: spec_of_view(&view),
                name,
            }),
    );
    mismatches.sort_by(|a, b| a.name().cmp(b.name()));
    WeightMatch {
        matched,
        mismatches,
    }
}

/// Copies each matched tensor into its weight. Every tensor is made before any weight is
/// changed, so a failure leaves the model as it was.
pub fn assign(matched: &[(Weight, TensorView<'_>)], path: &Path) -> Result<(), SaveError> {
    let tensor_error = |source| SaveError::Tensor {
        path: path.to_path_buf(),
        source,
    };
    let values = matched
        .iter()
        .map(|(w, view)| {
            Tensor::from_raw_buffer(view.data(), w.var.dtype(), view.shape(), w.var.device())
        })
        .collect::<candle_core::Result<Vec<_>>>()
        .map_err(tensor_error)?;
    for ((weight, _), value) in matched.iter().zip(&values) {
        weight.var.set(value).map_err(tensor_error)?;
    }
    Ok(())
}

/// The extra tensors (stored under `optimizer/`), with that prefix removed, sorted by name,
/// on the session's default device.
pub fn extra_tensors(
    file: &SafeTensors<'_>,
    path: &Path,
) -> Result<Vec<(String, Tensor)>, SaveError> {
    let device = default_device();
    let mut extras = Vec::new();
    for (name, view) in file.iter() {
        let Some(short) = name.strip_prefix(OPTIMIZER_PREFIX) else {
            continue;
        };
        let dtype = DType::try_from(view.dtype())
            .ok()
            .filter(|&d| writable(d))
            .ok_or_else(|| SaveError::Format {
                path: path.to_path_buf(),
                reason: format!(
                    "tensor '{name}' has dtype {}, which candle cannot hold",
                    view.dtype()
                ),
            })?;
        let tensor = Tensor::from_raw_buffer(view.data(), dtype, view.shape(), &device).map_err(
            |source| SaveError::Tensor {
                path: path.to_path_buf(),
                source,
            },
        )?;
        extras.push((short.to_string(), tensor));
    }
    extras.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(extras)
}
