//! Weights between a model and a file: collecting them (with the caller's extra tensors) to
//! write, and matching a file's tensors to a model's weights by path to load.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use rkeras_layers::session::default_device;
use rkeras_layers::Weight;

use super::error::TensorSpec;
use super::error::{SaveError, WeightMismatch};
use super::format::{spec_of_tensor, OPTIMIZER_PREFIX};
use super::header::{Header, TensorEntry};
use super::names::Shown;
use super::source::Source;
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

/// The dtype and shape of a tensor in the file.
fn spec_of_entry(entry: &TensorEntry) -> TensorSpec {
    TensorSpec {
        dtype: entry.dtype.to_string(),
        shape: entry.shape.clone(),
    }
}

/// How a file's tensors fit a model's weights.
pub struct WeightMatch<'h> {
    /// Each weight with the file tensor of the same path, dtype and shape.
    pub matched: Vec<(Weight, &'h TensorEntry)>,
    /// Everything else, sorted by name.
    pub mismatches: Vec<WeightMismatch>,
}

/// Matches `weights` with the file's tensors by path; tensors under `optimizer/` are the
/// caller's extras, not weights, and are left out.
pub fn match_weights(weights: Vec<Weight>, tensors: &[TensorEntry]) -> WeightMatch<'_> {
    let mut in_file: HashMap<&str, &TensorEntry> = tensors
        .iter()
        .filter(|t| !t.name.starts_with(OPTIMIZER_PREFIX))
        .map(|t| (t.name.as_str(), t))
        .collect();
    let mut matched = Vec::new();
    let mut mismatches = Vec::new();
    for weight in weights {
        let expected = spec_of_tensor(weight.var.as_tensor());
        match in_file.remove(weight.path.as_str()) {
            None => mismatches.push(WeightMismatch::Missing {
                name: weight.path,
                expected,
            }),
            Some(entry) => {
                let found = spec_of_entry(entry);
                if found == expected {
                    matched.push((weight, entry));
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
            .into_values()
            .map(|entry| WeightMismatch::Unexpected {
                found: spec_of_entry(entry),
                name: entry.name.clone(),
            }),
    );
    mismatches.sort_by(|a, b| a.name().cmp(b.name()));
    WeightMatch {
        matched,
        mismatches,
    }
}

/// Reads each matched tensor from `source` and copies it into its weight. Every tensor is
/// made before any weight is changed, so a failure leaves the model as it was.
pub fn assign<R: Read + Seek>(
    matched: &[(Weight, &TensorEntry)],
    header: &Header,
    source: &mut Source<'_, R>,
) -> Result<(), SaveError> {
    let path = source.path();
    let tensor_error = |source| SaveError::Tensor {
        path: path.to_path_buf(),
        source,
    };
    let mut values = Vec::with_capacity(matched.len());
    for (weight, entry) in matched {
        let bytes = header.data(entry, source)?;
        let value = Tensor::from_raw_buffer(
            &bytes,
            weight.var.dtype(),
            &entry.shape,
            weight.var.device(),
        )
        .map_err(tensor_error)?;
        values.push(value);
    }
    for ((weight, _), value) in matched.iter().zip(&values) {
        weight.var.set(value).map_err(tensor_error)?;
    }
    Ok(())
}

/// The extra tensors (stored under `optimizer/`), read from `source`, with that prefix
/// removed, sorted by name, on the session's default device.
pub fn extra_tensors<R: Read + Seek>(
    header: &Header,
    source: &mut Source<'_, R>,
) -> Result<Vec<(String, Tensor)>, SaveError> {
    let path = source.path();
    let device = default_device();
    let mut extras = Vec::new();
    for entry in &header.tensors {
        let Some(short) = entry.name.strip_prefix(OPTIMIZER_PREFIX) else {
            continue;
        };
        let dtype = DType::try_from(entry.dtype)
            .ok()
            .filter(|&d| writable(d))
            .ok_or_else(|| SaveError::Format {
                path: path.to_path_buf(),
                reason: format!(
                    "tensor '{}' has dtype {}, which candle cannot hold",
                    Shown(&entry.name),
                    entry.dtype
                ),
            })?;
        let bytes = header.data(entry, source)?;
        let tensor =
            Tensor::from_raw_buffer(&bytes, dtype, &entry.shape, &device).map_err(|source| {
                SaveError::Tensor {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        extras.push((short.to_string(), tensor));
    }
    extras.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(extras)
}
