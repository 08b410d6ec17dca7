//! Convolution layers: `Conv2D`, and the options windowed layers share.

pub mod conv2d;
pub mod options;
