//! Reshaping layers: `Flatten`, `Reshape`, `RepeatVector`, `Permute`, `UpSampling1D`,
//! `UpSampling2D`, `ZeroPadding1D`, `ZeroPadding2D`, `Cropping1D`, `Cropping2D`.

pub mod base_up_sampling;
pub mod borders;
pub mod cropping1d;
pub mod cropping2d;
pub mod flatten;
pub mod permute;
pub mod repeat_vector;
pub mod reshape;
pub mod sides;
pub mod spatial;
pub mod up_sampling1d;
pub mod up_sampling2d;
pub mod zero_padding1d;
pub mod zero_padding2d;
