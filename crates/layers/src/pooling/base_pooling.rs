//! Where the windows of a 2-D pooling layer go: Keras's `pool_size`, `strides` and `padding`
//! (`keras/src/layers/pooling/base_pooling.py`), with the shape arithmetic they imply, and the
//! builder methods every pooling layer whose options are a [`PoolWindow`] shares.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::builder::{LayerBuilder, LayerConfig};
use crate::convolutional::options::{spatial_geometry, Padding, PaddingArg, Size2};
use crate::limits::check_window;
use crate::{Error, Result, SymbolicShape};

/// A pooling window: its size, the steps between windows and the border handling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolWindow {
    /// Window size.
    pub pool_size: Size2,
    /// Steps between windows (`None`: the pool size, Keras's default).
    pub strides: Option<Size2>,
    /// Border handling (default valid).
    pub padding: Padding,
}

/// Where the windows go over one input, as `rkeras_ops`'s pooling takes it: (pool, strides,
/// padding).
pub type Placement = ((usize, usize), (usize, usize), rkeras_ops::Padding2d);

impl PoolWindow {
    /// Windows of `pool_size`, strides equal to the window, valid padding.
    pub fn new(pool_size: Size2) -> Self {
        PoolWindow {
            pool_size,
            strides: None,
            padding: Padding::Valid,
        }
    }

    /// Fails unless the window and strides are positive and not huge.
    pub fn check(&self, layer: &str) -> Result<()> {
        check_window(layer, "pool_size", self.pool_size)?;
        check_window(layer, "strides", self.strides())
    }

    fn strides(&self) -> Size2 {
        self.strides.unwrap_or(self.pool_size)
    }

    /// The padding and output (height, width) over an image of `h` by `w`, if a window fits.
    fn geometry(&self, h: usize, w: usize) -> Option<(rkeras_ops::Padding2d, (usize, usize))> {
        let (pool, strides) = (self.pool_size, self.strides());
        spatial_geometry((h, w), pool, strides, Size2(1, 1), self.padding)
    }

    /// The output shape for an input of `shape`, which must be `(batch, height, width,
    /// channels)` with room for a window.
    pub fn output_shape(&self, layer: &str, shape: &SymbolicShape) -> Result<SymbolicShape> {
        let &[batch, h, w, c] = shape.dims() else {
            return Err(Error::shape(
                layer,
                "(None, height, width, channels)",
                shape,
            ));
        };
        let (oh, ow) = match (h, w) {
            (Some(h), Some(w)) => {
                let (_, (oh, ow)) = self
                    .geometry(h, w)
                    .ok_or_else(|| self.too_small(layer, shape))?;
                (Some(oh), Some(ow))
            }
            _ => (None, None),
        };
        Ok(SymbolicShape(vec![batch, oh, ow, c]))
    }

    /// Where the windows go over `x`, or why `x` does not fit.
    pub fn placement(&self, layer: &str, x: &Tensor) -> Result<Placement> {
        let dims = format!("{:?}", x.dims());
        let &[_, h, w, _] = x.dims() else {
            return Err(Error::shape(
                layer,
                "(batch, height, width, channels)",
                dims,
            ));
        };
        let (padding, _) = self
            .geometry(h, w)
            .ok_or_else(|| self.too_small(layer, dims))?;
        Ok((self.pool_size.pair(), self.strides().pair(), padding))
    }

    fn too_small(&self, layer: &str, got: impl std::fmt::Display) -> Error {
        let p = self.pool_size;
        Error::shape(
            layer,
            format!(
                "an input of at least {}x{} with padding '{}'",
                p.0, p.1, self.padding
            ),
            got,
        )
    }
}

/// The options of a pooling layer that are a [`PoolWindow`], which its builder sets.
pub trait PoolingConfig: LayerConfig {
    /// The window, to change.
    fn window_mut(&mut self) -> &mut PoolWindow;
}

impl<C: PoolingConfig> LayerBuilder<C> {
    /// The steps between windows.
    pub fn strides(self, strides: impl Into<Size2>) -> Self {
        let strides = strides.into();
        self.with(|c| c.window_mut().strides = Some(strides))
    }

    /// `"valid"` or `"same"`.
    pub fn padding(self, padding: impl Into<PaddingArg>) -> Self {
        let arg = padding.into();
        self.with_checked(|c| {
            c.window_mut().padding = arg.0?;
            Ok(())
        })
    }
}
