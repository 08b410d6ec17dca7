//! PNG pictures for rkeras, drawn without a plotting library: grids of digit images
//! ([`plot_digits`]) and training curves ([`plot_history`]).
//!
//! ```
//! use rkeras_plot::{plot_digits, plot_history};
//!
//! let dir = tempfile::tempdir()?;
//! // Two rows of two 2x2 images: a gradient and its negative.
//! let originals = [0.0, 0.25, 0.5, 0.75, 1.0, 0.5, 0.5, 0.0];
//! let negatives = originals.map(|v| 1.0 - v);
//! plot_digits(&dir.path().join("digits.png"), &[&originals, &negatives], (2, 2))?;
//!
//! let loss = [0.31, 0.18, 0.14, 0.12];
//! let val_loss = [0.20, 0.16, 0.15, f64::NAN];
//! plot_history(
//!     &dir.path().join("loss.png"),
//!     "Autoencoder loss",
//!     &[("loss", &loss), ("val_loss", &val_loss)],
//! )?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod canvas;
mod digits;
mod error;
mod font;
mod history;
mod png_file;
mod ticks;

pub use digits::{plot_digits, DIGIT_SCALE, SEPARATOR, SEPARATOR_GREY};
pub use error::{Error, Result};
pub use history::{plot_history, HISTORY_HEIGHT, HISTORY_WIDTH};
