//! Regularization layers (Keras's `keras/src/layers/regularization/`): noise drawn in training
//! only, the identity in inference. `Dropout`, `SpatialDropout1D`, `SpatialDropout2D`,
//! `AlphaDropout`, `GaussianDropout` and `GaussianNoise`, on one layer ([`noise::NoiseLayer`])
//! that draws through `crate::random` and keeps a multiplicative mask for its backward pass;
//! and `ActivityRegularization`, which adds a penalty on its input to the loss.

pub mod activity_regularization;
pub mod alpha_dropout;
pub mod dropout;
pub mod gaussian_dropout;
pub mod gaussian_noise;
pub mod noise;
pub mod spatial_dropout1d;
pub mod spatial_dropout2d;
