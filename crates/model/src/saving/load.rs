//! Loading a saved model (through a [`Registry`]) or weights into a model built in code.
//!
//! A load reads the header first and checks it (see [`Header::read`]), then reads the data of
//! only the tensors the model takes (and the extras under `optimizer/`), each after checking
//! that it lies within the file: a file's claimed sizes never decide an allocation alone.

use std::io::{Read, Seek};
use std::path::Path;

use super::error::{Mismatches, SaveError, WeightMismatch};
use super::format::{
    EXTRA_METADATA_PREFIX, FORMAT, FORMAT_VERSION, KEY_COMPILE_CONFIG, KEY_FORMAT,
    KEY_FORMAT_VERSION, KEY_MODEL, OPTIMIZER_PREFIX,
};
use super::header::Header;
use super::json_size::check_parsed_size;
use super::names::Shown;
use super::options::{LoadOptions, LoadedModel};
use super::rebuild::Rebuilder;
use super::registry::Registry;
use super::source::Source;
use super::spec::ModelSpec;
use super::weights::{assign, extra_tensors, match_weights};
use crate::Model;

/// Reads the model saved at `path`, building its layers through `registry`, with its
/// weights, compile config and extras (what `rkeras::fit::load_model`, which compiles it
/// again, builds on). `path` must be a regular file (or a link to one).
pub fn read(path: impl AsRef<Path>, registry: &Registry) -> Result<LoadedModel, SaveError> {
    load_from(&mut Source::open(path.as_ref())?, registry)
}

/// Loads the model whose file contents are `bytes`; `path` only names the file in errors.
pub fn read_bytes(
    bytes: &[u8],
    path: &Path,
    registry: &Registry,
) -> Result<LoadedModel, SaveError> {
    load_from(&mut Source::from_bytes(bytes, path), registry)
}

fn load_from<R: Read + Seek>(
    source: &mut Source<'_, R>,
    registry: &Registry,
) -> Result<LoadedModel, SaveError> {
    let path = source.path();
    let header = Header::read(source)?;
    let metadata = &header.metadata;
    let not_a_model = |reason: String| SaveError::NotAModel {
        path: path.to_path_buf(),
        reason,
    };
    let architecture_error = |reason: String| SaveError::Architecture {
        path: path.to_path_buf(),
        reason,
    };
    if metadata.get(KEY_FORMAT).map(String::as_str) != Some(FORMAT) {
        return Err(not_a_model(format!(
            "not an rkeras file: expected the metadata entry '{KEY_FORMAT}': '{FORMAT}'"
        )));
    }
    let version = metadata.get(KEY_FORMAT_VERSION);
    if version.and_then(|v| v.parse::<u32>().ok()) != Some(FORMAT_VERSION) {
        return Err(not_a_model(format!(
            "format version {}, but this build reads version {FORMAT_VERSION}",
            Shown(version.map_or("(none)", String::as_str))
        )));
    }
    let architecture = metadata.get(KEY_MODEL).ok_or_else(|| {
        not_a_model(
            "the file holds weights only (no 'model' entry): load them with load_weights \
             into a model built in code"
                .into(),
        )
    })?;
    check_parsed_size("the architecture", architecture).map_err(architecture_error)?;
    let spec: ModelSpec =
        serde_json::from_str(architecture).map_err(|e| architecture_error(e.to_string()))?;
    let compile_config = metadata
        .get(KEY_COMPILE_CONFIG)
        .map(|json| {
            check_parsed_size("the compile_config", json)?;
            serde_json::from_str(json).map_err(|e| format!("invalid compile_config: {e}"))
        })
        .transpose()
        .map_err(architecture_error)?;

    let weight_bytes: u64 = header
        .tensors
        .iter()
        .filter(|t| !t.name.starts_with(OPTIMIZER_PREFIX))
        .map(|t| t.end - t.start)
        .sum();
    let model = Rebuilder::new(registry, path, weight_bytes).model(&spec)?;
    let matching = match_weights(model.weights(), &header.tensors);
    if !matching.mismatches.is_empty() {
        return Err(SaveError::WeightMismatch {
            path: path.to_path_buf(),
            mismatches: Mismatches(matching.mismatches),
        });
    }
    assign(&matching.matched, &header, source)?;
    Ok(LoadedModel {
        model,
        compile_config,
        extra_tensors: extra_tensors(&header, source)?,
        extra_metadata: metadata
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(EXTRA_METADATA_PREFIX)
                    .map(|k| (k.to_string(), v.clone()))
            })
            .collect(),
    })
}

/// Loads the model saved at `path` with the built-in layers only (Keras's `load_model`
/// without custom objects), dropping any extras.
pub fn load(path: impl AsRef<Path>) -> Result<Model, SaveError> {
    read(path, &Registry::default()).map(|loaded| loaded.model)
}

/// Loads weights by path into `model` (Keras's `load_weights`) from any safetensors file
/// (tensors under `optimizer/` are ignored). A missing, extra or differently shaped weight
/// is an error listing them all, and nothing is loaded; with `skip_mismatch`, what fits is
/// loaded and what was skipped is returned.
pub fn load_weights(
    model: &Model,
    path: impl AsRef<Path>,
    options: LoadOptions,
) -> Result<Vec<WeightMismatch>, SaveError> {
    let path = path.as_ref();
    let mut source = Source::open(path)?;
    let header = Header::read(&mut source)?;
    let matching = match_weights(model.weights(), &header.tensors);
    if !matching.mismatches.is_empty() && !options.skip_mismatch {
        return Err(SaveError::WeightMismatch {
            path: path.to_path_buf(),
            mismatches: Mismatches(matching.mismatches),
        });
    }
    assign(&matching.matched, &header, &mut source)?;
    Ok(matching.mismatches)
}
