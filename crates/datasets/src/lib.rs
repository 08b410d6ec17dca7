//! Datasets for rkeras, loaded the way Keras loads them.
//!
//! [`mnist::load_data`] gives the MNIST digits as candle tensors, reading the copy
//! shipped with rkeras, a directory named by `RKERAS_DATA`, or a cache it downloads
//! into (see [`mnist`]); [`mnist::to_unit_images`] turns the images into the tutorial's
//! f32 network input.
//!
//! ```
//! use rkeras_datasets::mnist;
//!
//! let ((x_train, y_train), (x_test, y_test)) = mnist::load_data()?;
//! assert_eq!(x_train.dims(), [60000, 28, 28]);
//! assert_eq!(y_train.dims(), [60000]);
//! assert_eq!(x_test.dims(), [10000, 28, 28]);
//! assert_eq!(y_test.dims(), [10000]);
//!
//! let x_train = mnist::to_unit_images(&x_train)?;
//! assert_eq!(x_train.dims(), [60000, 28, 28, 1]);
//! # Ok::<(), rkeras_datasets::Error>(())
//! ```
#![warn(missing_docs)]

mod digest;
mod download;
mod error;
pub mod idx;
pub mod mnist;
#[cfg(test)]
mod test_server;

pub use error::{DigestMismatch, Error, Result};
