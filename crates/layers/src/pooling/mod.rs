//! Pooling layers: `MaxPooling2D`, `AveragePooling2D`, `GlobalAveragePooling2D`,
//! `GlobalMaxPooling2D`.

pub mod average_pooling2d;
pub mod base_global_pooling;
pub mod base_pooling;
pub mod global_average_pooling2d;
pub mod global_max_pooling2d;
pub mod max_pooling2d;
