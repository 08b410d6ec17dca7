//! The file format: safetensors, with rkeras's entries in its `__metadata__` (its header is
//! read and checked by [`Header::read`](super::header::Header::read)).
//!
//! Metadata entries (all strings, as safetensors requires):
//! - `format`: `rkeras`; `format_version`: [`FORMAT_VERSION`];
//! - `model`: the architecture as JSON (absent in a weights-only file);
//! - `compile_config`: the training crate's compile settings as JSON, when there are some;
//! - `extra/<key>`: the caller's extra metadata (the epoch of a checkpoint...).
//!
//! Tensors: each weight under its path (`encoder/dense/kernel`), and the caller's extra
//! tensors (optimizer state) under `optimizer/<name>`.

use super::error::TensorSpec;

/// The `format` entry's value.
pub const FORMAT: &str = "rkeras";
/// The version of the metadata layout this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Metadata key of the format name.
pub const KEY_FORMAT: &str = "format";
/// Metadata key of the format version.
pub const KEY_FORMAT_VERSION: &str = "format_version";
/// Metadata key of the architecture JSON.
pub const KEY_MODEL: &str = "model";
/// Metadata key of the compile configuration JSON.
pub const KEY_COMPILE_CONFIG: &str = "compile_config";
/// Prefix of the caller's extra metadata keys.
pub const EXTRA_METADATA_PREFIX: &str = "extra/";
/// Prefix of the caller's extra tensors (optimizer state).
pub const OPTIMIZER_PREFIX: &str = "optimizer/";

/// The dtype and shape of a candle tensor, named as safetensors names dtypes.
pub fn spec_of_tensor(tensor: &candle_core::Tensor) -> TensorSpec {
    TensorSpec {
        dtype: safetensors::Dtype::from(tensor.dtype()).to_string(),
        shape: tensor.dims().to_vec(),
    }
}
