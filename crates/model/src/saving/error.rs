//! `SaveError`: everything that can go wrong saving or loading, each naming the file.

use std::fmt;
use std::path::PathBuf;

use super::names::{Escaped, Shown};

/// A tensor's dtype and shape, as a file holds it or a model expects it: `F32[784, 32]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// The safetensors dtype name (`F32`, `F16`, `I64`...).
    pub dtype: String,
    /// The dimensions.
    pub shape: Vec<usize>,
}

impl fmt::Display for TensorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:?}", self.dtype, self.shape)
    }
}

/// One way a file's weights fail to fit a model's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightMismatch {
    /// The model has the weight, the file does not.
    Missing {
        /// The weight's path (`encoder/dense/kernel`).
        name: String,
        /// What the model holds.
        expected: TensorSpec,
    },
    /// The file has a tensor the model has no weight for.
    Unexpected {
        /// The tensor's name in the file.
        name: String,
        /// What the file holds.
        found: TensorSpec,
    },
    /// Both have it, with a different dtype or shape.
    Incompatible {
        /// The weight's path.
        name: String,
        /// What the model holds.
        expected: TensorSpec,
        /// What the file holds.
        found: TensorSpec,
    },
}

impl WeightMismatch {
    /// The weight or tensor name the mismatch is about.
    pub fn name(&self) -> &str {
        match self {
            WeightMismatch::Missing { name, .. }
            | WeightMismatch::Unexpected { name, .. }
            | WeightMismatch::Incompatible { name, .. } => name,
        }
    }
}

impl fmt::Display for WeightMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeightMismatch::Missing { name, expected } => {
                write!(
                    f,
                    "missing weight '{}' (the model expects {expected})",
                    Shown(name)
                )
            }
            WeightMismatch::Unexpected { name, found } => {
                write!(
                    f,
                    "unexpected tensor '{}' ({found}): the model has no such weight",
                    Shown(name)
                )
            }
            WeightMismatch::Incompatible {
                name,
                expected,
                found,
            } => write!(
                f,
                "weight '{}': the model expects {expected}, the file holds {found}",
                Shown(name)
            ),
        }
    }
}

/// The list of mismatches, one per line, for [`SaveError::WeightMismatch`]'s message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatches(pub Vec<WeightMismatch>);

impl fmt::Display for Mismatches {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.0 {
            write!(f, "\n  {m}")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong saving or loading a model or its weights; every message
/// starts with the file's path, and shows any text from the file escaped (see [`Escaped`]).
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// Reading, writing, syncing or renaming the file failed.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done (`cannot read`, `cannot rename the temporary file`...).
        action: &'static str,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The bytes are not a well-formed safetensors file.
    #[error("{}: not a valid safetensors file: {}", path.display(), Escaped(reason))]
    Format {
        /// The file.
        path: PathBuf,
        /// What is malformed, and what was expected.
        reason: String,
    },
    /// A well-formed safetensors file that is not an rkeras model, or of another version.
    #[error("{}: {}", path.display(), Escaped(reason))]
    NotAModel {
        /// The file.
        path: PathBuf,
        /// What the metadata holds instead of what was expected.
        reason: String,
    },
    /// The saved architecture cannot be rebuilt: malformed JSON, a bad layer config, a
    /// dangling or cyclic connection, a size beyond what the file can hold.
    #[error("{}: invalid model architecture: {}", path.display(), Escaped(reason))]
    Architecture {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the layer or node.
        reason: String,
    },
    /// A layer class the registry does not know (Keras's "unknown layer").
    #[error(
        "{}: layer '{}' has class '{}', which is not registered: \
         register it with Registry::register_layer(\"{}\", ...)",
        path.display(), Shown(layer), Shown(class_name), Shown(class_name)
    )]
    UnknownLayer {
        /// The file.
        path: PathBuf,
        /// The layer's name.
        layer: String,
        /// Its class name.
        class_name: String,
    },
    /// A Lambda whose function is not registered; loading never runs code a file names.
    #[error(
        "{}: Lambda layer '{}' applies function '{}', which is not registered: \
         register it with Registry::register_lambda(\"{}\", ...)",
        path.display(), Shown(layer), Shown(function), Shown(function)
    )]
    UnregisteredLambda {
        /// The file.
        path: PathBuf,
        /// The Lambda layer's name.
        layer: String,
        /// The function name the file records.
        function: String,
    },
    /// The file's tensors do not fit the model's weights.
    #[error("{}: the file's weights do not fit the model:{mismatches}", path.display())]
    WeightMismatch {
        /// The file.
        path: PathBuf,
        /// Every mismatch found.
        mismatches: Mismatches,
    },
    /// The model cannot be saved as it is (an unnamed Lambda, a reserved name...).
    #[error("{}: cannot save: {}", path.display(), Escaped(reason))]
    Unsavable {
        /// The file.
        path: PathBuf,
        /// Why, and what to change.
        reason: String,
    },
    /// A tensor operation failed (copying a weight off the device, or onto it).
    #[error("{}: {source}", path.display())]
    Tensor {
        /// The file.
        path: PathBuf,
        /// candle's error.
        source: candle_core::Error,
    },
    /// The path holds something other than a regular file (a directory, a FIFO, a device),
    /// which saving does not replace and loading does not open.
    #[error("{}: {action}: it is a {kind}, not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What was refused (`cannot save over it`, `cannot load it`).
        action: &'static str,
        /// What the path holds (`directory`, `FIFO`, `character device`...).
        kind: &'static str,
    },
    /// One entry of a well-formed file holds what cannot be used: an unknown metric in the
    /// compile config, an optimizer state that is not a finite number...
    #[error("{}: entry '{}': {}", path.display(), Shown(entry), Escaped(reason))]
    Entry {
        /// The file.
        path: PathBuf,
        /// The entry (`compile_config`, `optimizer/learning_rate`...).
        entry: String,
        /// What is wrong with it, and what was expected.
        reason: String,
    },
}
