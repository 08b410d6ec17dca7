//! Convolution layers: `Conv1D`, `Conv2D`, `Conv2DTranspose`, `DepthwiseConv2D`,
//! `SeparableConv2D`, and the options windowed layers share.

pub mod conv1d;
pub mod conv2d;
pub mod conv2d_transpose;
pub mod depthwise;
pub mod depthwise_conv2d;
pub mod options;
pub mod separable_conv2d;
