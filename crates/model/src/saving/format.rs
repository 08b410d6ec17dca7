//! The file format: safetensors, with rkeras's entries in its `__metadata__`, read with one
//! bounded read and checked before anything is allocated from what the header claims.
//!
//! Metadata entries (all strings, as safetensors requires):
//! - `format`: `rkeras`; `format_version`: [`FORMAT_VERSION`];
//! - `model`: the architecture as JSON (absent in a weights-only file);
//! - `compile_config`: the training crate's compile settings as JSON, when there are some;
//! - `extra/<key>`: the caller's extra metadata (the epoch of a checkpoint...).
//!
//! Tensors: each weight under its path (`encoder/dense/kernel`), and the caller's extra
//! tensors (optimizer state) under `optimizer/<name>`.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use safetensors::SafeTensors;

use super::error::{SaveError, TensorSpec};

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

const LENGTH_PREFIX: usize = 8;

/// The whole file, read at once into a buffer no larger than the file.
pub fn read_file(path: &Path) -> Result<Vec<u8>, SaveError> {
    let io = |action: &'static str| {
        move |source: std::io::Error| SaveError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    };
    let file = File::open(path).map_err(io("cannot open"))?;
    let len = file
        .metadata()
        .map_err(io("cannot read the size of"))?
        .len();
    let mut bytes = Vec::new();
    usize::try_from(len)
        .ok()
        .and_then(|len| bytes.try_reserve_exact(len).ok())
        .ok_or_else(|| SaveError::Format {
            path: path.to_path_buf(),
            reason: format!("the file's {len} bytes do not fit in memory"),
        })?;
    file.take(len)
        .read_to_end(&mut bytes)
        .map_err(io("cannot read"))?;
    Ok(bytes)
}

/// A parsed file: its tensors, and its `__metadata__` entries (none for a file written without).
#[derive(Debug)]
pub struct ParsedFile<'a> {
    /// The tensors, as views into the file's bytes.
    pub tensors: SafeTensors<'a>,
    /// The metadata entries.
    pub metadata: HashMap<String, String>,
}

/// The safetensors view of `bytes`, after checking that the header and every tensor's
/// offsets lie inside the file.
pub fn parse<'a>(bytes: &'a [u8], path: &Path) -> Result<ParsedFile<'a>, SaveError> {
    let format_error = |reason: String| SaveError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let metadata = read_header(bytes).map_err(format_error)?;
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| format_error(e.to_string()))?;
    Ok(ParsedFile { tensors, metadata })
}

/// Reads the header's metadata, checking what `SafeTensors::deserialize` would otherwise add
/// up unchecked: the header length and every tensor's end offset must lie within the file.
fn read_header(bytes: &[u8]) -> Result<HashMap<String, String>, String> {
    let (prefix, rest) = bytes.split_at_checked(LENGTH_PREFIX).ok_or_else(|| {
        format!(
            "the file has {} bytes, fewer than the {LENGTH_PREFIX}-byte header length",
            bytes.len()
        )
    })?;
    let mut length = [0u8; LENGTH_PREFIX];
    length.copy_from_slice(prefix);
    let header_len = u64::from_le_bytes(length);
    let header = usize::try_from(header_len)
        .ok()
        .and_then(|n| rest.get(..n))
        .ok_or_else(|| {
            format!(
                "the header claims {header_len} bytes, but only {} follow the length",
                rest.len()
            )
        })?;
    let data_len = (rest.len() - header.len()) as u64;
    let mut entries: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(header)
        .map_err(|e| format!("the header is not a JSON object: {e}"))?;
    let metadata = match entries.remove("__metadata__") {
        None => HashMap::new(),
        Some(value) => serde_json::from_value(value)
            .map_err(|e| format!("__metadata__ must map strings to strings: {e}"))?,
    };
    for (name, entry) in &entries {
        let offsets = entry.get("data_offsets").and_then(|o| o.as_array());
        for offset in offsets.into_iter().flatten() {
            if offset.as_u64().is_some_and(|o| o > data_len) {
                return Err(format!(
                    "tensor '{name}' claims data offset {offset}, beyond the {data_len} data bytes in the file"
                ));
            }
        }
    }
    Ok(metadata)
}

/// The dtype and shape of a tensor in the file.
pub fn spec_of_view(view: &safetensors::tensor::TensorView<'_>) -> TensorSpec {
    TensorSpec {
        dtype: view.dtype().to_string(),
        shape: view.shape().to_vec(),
    }
}

/// The dtype and shape of a candle tensor, named as safetensors names dtypes.
pub fn spec_of_tensor(tensor: &candle_core::Tensor) -> TensorSpec {
    TensorSpec {
        dtype: safetensors::Dtype::from(tensor.dtype()).to_string(),
        shape: tensor.dims().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with_header(header: &str, data: &[u8]) -> Vec<u8> {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    #[test]
    fn accepts_a_well_formed_file() {
        let bytes = file_with_header(
            r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            &[0; 8],
        );
        let file = parse(&bytes, Path::new("f")).unwrap();
        assert_eq!(file.tensors.names(), ["w"]);
        assert!(file.metadata.is_empty());
    }

    #[test]
    fn rejects_a_header_longer_than_the_file() {
        let mut bytes = file_with_header("{}", &[]);
        bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        let err = parse(&bytes, Path::new("big.safetensors"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("big.safetensors: "), "{err}");
        assert!(err.contains(&u64::MAX.to_string()), "{err}");
    }

    #[test]
    fn rejects_offsets_beyond_the_file_before_adding_them_up() {
        // Nine tensors whose sizes add up past usize::MAX would overflow inside safetensors.
        let huge = usize::MAX / 8;
        let header =
            format!(r#"{{"a":{{"dtype":"U8","shape":[{huge}],"data_offsets":[0,{huge}]}}}}"#);
        let err = parse(&file_with_header(&header, &[]), Path::new("f"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("tensor 'a' claims data offset"), "{err}");
    }

    #[test]
    fn reads_the_metadata() {
        let bytes = file_with_header(r#"{"__metadata__":{"format":"rkeras"}}"#, &[]);
        let file = parse(&bytes, Path::new("f")).unwrap();
        assert_eq!(file.metadata["format"], "rkeras");
        let bytes = file_with_header(r#"{"__metadata__":{"format":1}}"#, &[]);
        assert!(parse(&bytes, Path::new("f")).is_err());
    }

    #[test]
    fn rejects_short_and_non_json_headers() {
        assert!(parse(&[1, 2, 3], Path::new("f")).is_err());
        assert!(parse(&file_with_header("[1]", &[]), Path::new("f")).is_err());
        assert!(parse(&file_with_header("{\"a\":", &[]), Path::new("f")).is_err());
    }
}
