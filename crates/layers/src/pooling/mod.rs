//! Pooling layers: `MaxPooling2D`.

pub mod max_pooling2d;
