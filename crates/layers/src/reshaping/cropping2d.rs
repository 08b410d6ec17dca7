//! `Cropping2D`: removes rows and columns at the borders of a channels-last image
//! (`keras/src/layers/reshaping/cropping2d.py`), by [`BordersLayer`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::borders::{BorderMode, Borders, BordersLayer};
use super::sides::Sides2;
use crate::builder::{LayerBuilder, LayerConfig};
use crate::{Layer, Result};

/// `Cropping2D`'s options, with Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cropping2DConfig {
    /// Rows cut above and below, columns left and right (default none).
    pub cropping: Sides2,
}

/// Cropping: `Cropping2D::new(((1, 2), (3, 4)))(x)`, `Cropping2D::new(1)(x)`.
pub type Cropping2D = LayerBuilder<Cropping2DConfig>;

impl Cropping2D {
    /// Cropping by `cropping`: `n`, `(rows, columns)` or `((top, bottom), (left, right))`.
    pub fn new(cropping: impl Into<Sides2>) -> Self {
        LayerBuilder::from_config(Cropping2DConfig {
            cropping: cropping.into(),
        })
    }
}

impl Default for Cropping2D {
    fn default() -> Self {
        Cropping2D::new(0)
    }
}

impl LayerConfig for Cropping2DConfig {
    const CLASS_NAME: &'static str = "Cropping2D";
    const NAME_PREFIX: &'static str = "cropping2d";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        BordersLayer::made(self, name, trainable)
    }
}

impl Borders for Cropping2DConfig {
    type Sides = Sides2;
    const MODE: BorderMode = BorderMode::Crop;

    fn sides(&self) -> Sides2 {
        self.cropping
    }
}

/// The harness cases: each form of `cropping`, and a forward computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    use candle_core::{Device, Tensor};
    let crop = |c: Cropping2D| c.layer().expect("cropping");
    // 1..12 in a 3x4 image.
    let x = Tensor::arange(1f32, 13.0, &Device::Cpu)
        .and_then(|x| x.reshape((1, 3, 4, 1)))
        .expect("x");
    vec![
        LayerCase::new(crop(Cropping2D::default()), &[&[2, 3, 2]])
            .output_shapes(&["(None, 2, 3, 2)"]),
        LayerCase::new(crop(Cropping2D::new(1)), &[&[4, 5, 2]]).output_shapes(&["(None, 2, 3, 2)"]),
        LayerCase::new(crop(Cropping2D::new((1, 0))), &[&[4, 3, 1]])
            .output_shapes(&["(None, 2, 3, 1)"]),
        // One row off the top, one column off the left and two off the right of
        // [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]: [[6], [10]].
        LayerCase::new(crop(Cropping2D::new(((1, 0), (1, 2)))), &[&[3, 4, 1]])
            .output_shapes(&["(None, 2, 1, 1)"])
            .forward(vec![x], vec![vec![6., 10.]]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_to_cut_everything() {
        let x = crate::Input::new(&[4, 4, 1]);
        let err = Cropping2D::new((2, 1))(x).shape().unwrap_err().to_string();
        assert!(err.contains("more than 4 rows"), "{err}");
        assert!(Cropping2D::new(((0, 0), (1, 3)))(x).shape().is_err());
        assert!(Cropping2D::new(1 << 20).layer().is_err());
    }
}
