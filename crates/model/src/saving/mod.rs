//! Saving and loading models as safetensors files: every weight under its path
//! (`encoder/dense/kernel`), readable by any safetensors reader, with the architecture, the
//! compile config and the caller's extras as JSON in the file's metadata (see
//! [`format`](mod@format)).
//!
//! Loading rebuilds the same graph through a [`Registry`] and never runs code the file names
//! without registration: a Lambda's function and a custom layer class must be registered.
//! Saving is atomic, and loading checks every size and connection the file gives before
//! using it: a broken or hostile file is an error naming the file, never a panic.
//!
//! ```
//! use rkeras_layers::{Dense, Input};
//! use rkeras_model::saving::{load, save};
//! use rkeras_model::Model;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let input = Input::new(&[4]);
//! let model = Model::named("tiny", input, Dense::new(2)(input))?;
//! let dir = std::env::temp_dir().join(format!("rkeras-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! save(&model, dir.join("tiny.safetensors"))?;
//! let loaded = load(dir.join("tiny.safetensors"))?;
//! assert_eq!(loaded.count_params(), 10);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```

mod atomic;
pub mod error;
pub mod format;
mod header;
mod json_size;
mod load;
mod names;
mod options;
mod rebuild;
pub mod registry;
mod regular;
mod save;
mod source;
pub mod spec;
mod structure;
mod target;
mod temporary;
mod weights;

pub use error::{SaveError, TensorSpec, WeightMismatch};
pub use load::{load, load_weights, read, read_bytes};
pub use options::{LoadOptions, LoadedModel, SaveExtras};
pub use registry::Registry;
pub use save::{save, save_model, save_weights};
pub use structure::{load_weights_by_structure, KEY_WEIGHT_STRUCTURE};
