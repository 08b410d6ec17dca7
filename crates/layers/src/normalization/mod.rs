//! Normalization layers: `BatchNormalization`, `GroupNormalization`, `LayerNormalization`,
//! `UnitNormalization`.

mod axes;
pub mod batch_normalization;
mod channel_axis;
pub mod group_normalization;
pub mod layer_normalization;
mod scale_offset;
pub mod unit_normalization;
