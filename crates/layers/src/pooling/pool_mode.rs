//! What a pooling layer computes over each window (Keras's `pool_mode`,
//! `keras/src/layers/pooling/base_pooling.py`), on `rkeras_ops`'s image pooling: its CPU kernels
//! and hand-written backward passes, and its composed form on other devices.

use candle_core::Tensor;

use super::pool_window::Placement;

/// The maximum or the mean of each window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    /// The maximum; padded cells never win, and the gradient goes whole to the first maximum.
    Max,
    /// The mean of the real cells of each window (padded cells are not counted, as
    /// TensorFlow's `avg_pool` does); the gradient spreads evenly over them.
    Average,
}

impl PoolMode {
    /// An NHWC `image` pooled over the windows of `placement`.
    pub fn pool(self, image: &Tensor, placement: Placement) -> candle_core::Result<Tensor> {
        let (pool, strides, padding) = placement;
        match self {
            PoolMode::Max => rkeras_ops::max_pool2d(image, pool, strides, padding),
            PoolMode::Average => rkeras_ops::avg_pool2d(image, pool, strides, padding),
        }
    }

    /// The gradient of `image` given its pooling `pooled` and the gradient of that (CPU only).
    pub fn unpool(
        self,
        image: &Tensor,
        pooled: &Tensor,
        grad: &Tensor,
        placement: Placement,
    ) -> candle_core::Result<Tensor> {
        let (pool, strides, padding) = placement;
        match self {
            PoolMode::Max => {
                rkeras_ops::max_pool2d_backward(image, pooled, grad, pool, strides, padding)
            }
            PoolMode::Average => {
                rkeras_ops::avg_pool2d_backward(image, grad, pool, strides, padding)
            }
        }
    }
}
