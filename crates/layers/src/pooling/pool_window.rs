//! Where the windows of a pooling layer go: Keras's `pool_size`, `strides` and `padding`
//! (`keras/src/layers/pooling/base_pooling.py`), with the shape arithmetic they imply over the
//! image the input is seen as (a sequence is an image one column wide).

use serde::{Deserialize, Serialize};

use super::window_size::WindowSize;
use crate::convolutional::options::{spatial_geometry, Padding, Size2};
use crate::{Error, Result, SymbolicShape};

/// A pooling window of size `S` ([`Size1`](super::window_size::Size1) or [`Size2`]): its
/// size, the steps between windows and the border handling. Saved as Keras saves it, with the
/// strides written out even when they default to the pool size.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PoolWindow<S> {
    /// Window size.
    pub pool_size: S,
    /// Steps between windows (`None`: the pool size, Keras's default).
    pub strides: Option<S>,
    /// Border handling (default valid).
    pub padding: Padding,
}

impl<S: WindowSize> Serialize for PoolWindow<S> {
    fn serialize<Ser: serde::Serializer>(
        &self,
        serializer: Ser,
    ) -> std::result::Result<Ser::Ok, Ser::Error> {
        /// What Keras's `get_config` holds (`keras/src/layers/pooling/base_pooling.py` sets
        /// `strides = pool_size` when none are given).
        #[derive(Serialize)]
        struct Saved<'a, S> {
            pool_size: &'a S,
            strides: S,
            padding: &'a Padding,
        }
        Saved {
            pool_size: &self.pool_size,
            strides: self.strides(),
            padding: &self.padding,
        }
        .serialize(serializer)
    }
}

/// Where the windows go over the image an input is seen as, as `rkeras_ops`'s pooling takes
/// it: (pool, strides, padding).
pub type Placement = ((usize, usize), (usize, usize), rkeras_ops::Padding2d);

impl<S: WindowSize> PoolWindow<S> {
    /// Windows of `pool_size`, strides equal to the window, valid padding.
    pub fn new(pool_size: S) -> Self {
        PoolWindow {
            pool_size,
            strides: None,
            padding: Padding::Valid,
        }
    }

    /// Fails unless the window and strides are positive and not huge.
    pub fn check(&self, layer: &str) -> Result<()> {
        self.pool_size.check(layer, "pool_size")?;
        self.strides().check(layer, "strides")
    }

    /// The steps between windows over the image.
    fn strides(&self) -> S {
        self.strides.unwrap_or(self.pool_size)
    }

    /// The padding and output (height, width) over an image of `h` by `w`, if a window fits.
    fn geometry(&self, h: usize, w: usize) -> Option<(rkeras_ops::Padding2d, (usize, usize))> {
        let (pool, strides) = (self.pool_size.on_image(), self.strides().on_image());
        spatial_geometry((h, w), pool, strides, Size2(1, 1), self.padding)
    }

    /// The output shape for an input of `shape`, which must be channels-last over `S`'s axes
    /// with room for a window.
    pub fn output_shape(&self, layer: &str, shape: &SymbolicShape) -> Result<SymbolicShape> {
        let [batch, h, w, c] = S::SPATIAL.image_shape(layer, shape)?;
        let (oh, ow) = match (h, w) {
            (Some(h), Some(w)) => {
                let (_, (oh, ow)) = self
                    .geometry(h, w)
                    .ok_or_else(|| self.too_small(layer, shape))?;
                (Some(oh), Some(ow))
            }
            _ => (None, None),
        };
        Ok(S::SPATIAL.from_image_shape([batch, oh, ow, c]))
    }

    /// Where the windows go over the image an input of `dims` is seen as, or why it does not
    /// fit.
    pub fn placement(&self, layer: &str, dims: &[usize]) -> Result<Placement> {
        let [_, h, w, _] = S::SPATIAL.image_dims(layer, dims)?;
        let (padding, _) = self
            .geometry(h, w)
            .ok_or_else(|| self.too_small(layer, format!("{dims:?}")))?;
        let (pool, strides) = (self.pool_size.on_image(), self.strides().on_image());
        Ok((pool.pair(), strides.pair(), padding))
    }

    fn too_small(&self, layer: &str, got: impl std::fmt::Display) -> Error {
        Error::shape(
            layer,
            format!(
                "{} with padding '{}'",
                self.pool_size.smallest_input(),
                self.padding
            ),
            got,
        )
    }
}
