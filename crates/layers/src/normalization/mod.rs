//! Normalization layers: `BatchNormalization`, `LayerNormalization`.

mod axes;
pub mod batch_normalization;
pub mod layer_normalization;
mod scale_offset;
