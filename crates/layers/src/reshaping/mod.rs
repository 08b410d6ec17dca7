//! Reshaping layers: `Flatten`, `Reshape`, `UpSampling2D`, `RepeatVector`, `Permute`,
//! `ZeroPadding2D`, `Cropping2D`.

pub mod cropping2d;
pub mod flatten;
pub mod permute;
pub mod repeat_vector;
pub mod reshape;
pub mod sides;
pub mod up_sampling2d;
pub mod zero_padding2d;
