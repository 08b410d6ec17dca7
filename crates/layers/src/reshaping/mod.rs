//! Reshaping layers: `Flatten`, `Reshape`, `UpSampling2D`.

pub mod flatten;
pub mod reshape;
pub mod up_sampling2d;
