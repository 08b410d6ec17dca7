//! `ZeroPadding2D`: rows and columns of zeros around a channels-last image
//! (`keras/src/layers/reshaping/zero_padding2d.py`), by [`BordersLayer`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::borders::{BorderMode, Borders, BordersLayer};
use super::sides::Sides2;
use crate::builder::{LayerBuilder, LayerConfig};
use crate::{Layer, Result};

/// `ZeroPadding2D`'s options, with Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZeroPadding2DConfig {
    /// Rows above and below, columns left and right (default one each).
    pub padding: Sides2,
}

/// Zero padding: `ZeroPadding2D::new(((1, 2), (3, 4)))(x)`, `ZeroPadding2D::new(1)(x)`.
pub type ZeroPadding2D = LayerBuilder<ZeroPadding2DConfig>;

impl ZeroPadding2D {
    /// Padding by `padding`: `n`, `(rows, columns)` or `((top, bottom), (left, right))`.
    pub fn new(padding: impl Into<Sides2>) -> Self {
        LayerBuilder::from_config(ZeroPadding2DConfig {
            padding: padding.into(),
        })
    }
}

impl Default for ZeroPadding2D {
    fn default() -> Self {
        ZeroPadding2D::new(1)
    }
}

impl LayerConfig for ZeroPadding2DConfig {
    const CLASS_NAME: &'static str = "ZeroPadding2D";
    const NAME_PREFIX: &'static str = "zero_padding2d";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        BordersLayer::made(self, name, trainable)
    }
}

impl Borders for ZeroPadding2DConfig {
    type Sides = Sides2;
    const MODE: BorderMode = BorderMode::Pad;

    fn sides(&self) -> Sides2 {
        self.padding
    }
}

/// The harness cases: each form of `padding`, and a forward computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    use candle_core::{Device, Tensor};
    let pad = |p: ZeroPadding2D| p.layer().expect("padding");
    let x = Tensor::new(&[1f32, 2.0], &Device::Cpu)
        .and_then(|x| x.reshape((1, 1, 2, 1)))
        .expect("x");
    vec![
        LayerCase::new(pad(ZeroPadding2D::default()), &[&[3, 4, 2]])
            .output_shapes(&["(None, 5, 6, 2)"]),
        LayerCase::new(pad(ZeroPadding2D::new((2, 0))), &[&[3, 4, 1]])
            .output_shapes(&["(None, 7, 4, 1)"]),
        // [1, 2] with one row above, none below, no column left and two right:
        // [[0, 0, 0, 0], [1, 2, 0, 0]].
        LayerCase::new(pad(ZeroPadding2D::new(((1, 0), (0, 2)))), &[&[1, 2, 1]])
            .output_shapes(&["(None, 2, 4, 1)"])
            .forward(vec![x], vec![vec![0., 0., 0., 0., 1., 2., 0., 0.]]),
    ]
}
