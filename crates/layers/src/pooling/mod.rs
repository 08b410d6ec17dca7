//! Pooling layers: `MaxPooling1D`, `AveragePooling1D`, `MaxPooling2D`, `AveragePooling2D`,
//! `GlobalMaxPooling1D`, `GlobalAveragePooling1D`, `GlobalMaxPooling2D`,
//! `GlobalAveragePooling2D`.

pub mod average_pooling1d;
pub mod average_pooling2d;
pub mod base_global_pooling;
pub mod base_pooling;
pub mod global_average_pooling1d;
pub mod global_average_pooling2d;
pub mod global_max_pooling1d;
pub mod global_max_pooling2d;
pub mod max_pooling1d;
pub mod max_pooling2d;
pub mod pool_mode;
pub mod pool_window;
#[cfg(test)]
mod text_classifier_tests;
pub mod window_size;
