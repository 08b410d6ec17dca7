//! `Cropping1D`: removes steps at the start and end of a channels-last sequence
//! (`keras/src/layers/reshaping/cropping1d.py`), by [`BordersLayer`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::borders::{BorderMode, Borders, BordersLayer};
use super::sides::Sides1;
use crate::builder::{LayerBuilder, LayerConfig};
use crate::{Layer, Result};

/// `Cropping1D`'s options, with Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cropping1DConfig {
    /// Steps cut at the start and at the end (default one each).
    pub cropping: Sides1,
}

/// Cropping of a sequence: `Cropping1D::new(2)(x)`, `Cropping1D::new((1, 3))(x)`.
pub type Cropping1D = LayerBuilder<Cropping1DConfig>;

impl Cropping1D {
    /// Cropping by `cropping`: `n` at both ends, or `(start, end)`.
    pub fn new(cropping: impl Into<Sides1>) -> Self {
        LayerBuilder::from_config(Cropping1DConfig {
            cropping: cropping.into(),
        })
    }
}

impl Default for Cropping1D {
    fn default() -> Self {
        Cropping1D::new((1, 1))
    }
}

impl LayerConfig for Cropping1DConfig {
    const CLASS_NAME: &'static str = "Cropping1D";
    const NAME_PREFIX: &'static str = "cropping1d";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        BordersLayer::made(self, name, trainable)
    }
}

impl Borders for Cropping1DConfig {
    type Sides = Sides1;
    const MODE: BorderMode = BorderMode::Crop;

    fn sides(&self) -> Sides1 {
        self.cropping
    }
}

/// The harness cases: each form of `cropping`, and forwards computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    use candle_core::{Device, Tensor};
    let crop = |c: Cropping1D| c.layer().expect("cropping");
    // Keras's example: [[1, 2], [3, 4], [5, 6]], one step off each end: [[3, 4]].
    let x = Tensor::arange(1f32, 7.0, &Device::Cpu)
        .and_then(|x| x.reshape((1, 3, 2)))
        .expect("x");
    // 1..5, one step off the start and two off the end: [2, 3].
    let odd = Tensor::arange(1f32, 6.0, &Device::Cpu)
        .and_then(|x| x.reshape((1, 5, 1)))
        .expect("odd");
    vec![
        LayerCase::new(crop(Cropping1D::default()), &[&[4, 2]]).output_shapes(&["(None, 2, 2)"]),
        LayerCase::new(crop(Cropping1D::new((2, 0))), &[&[5, 1]]).output_shapes(&["(None, 3, 1)"]),
        LayerCase::new(crop(Cropping1D::new(0)), &[&[3, 1]]).output_shapes(&["(None, 3, 1)"]),
        LayerCase::new(crop(Cropping1D::new(1)), &[&[3, 2]])
            .output_shapes(&["(None, 1, 2)"])
            .forward(vec![x], vec![vec![3., 4.]]),
        LayerCase::new(crop(Cropping1D::new((1, 2))), &[&[5, 1]])
            .output_shapes(&["(None, 2, 1)"])
            .forward(vec![odd], vec![vec![2., 3.]]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Input;
    use candle_core::{DType, Device, Tensor};

    #[test]
    fn refuses_to_cut_the_whole_sequence_naming_the_layer() {
        let x = Input::new(&[4, 2]);
        let err = Cropping1D::new((1, 3)).name("crop")(x)
            .shape()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'crop'") && err.contains("more than 4 steps"),
            "{err}"
        );
        assert!(Cropping1D::new(2)(x).shape().is_err());
        assert!(Cropping1D::new(1)(Input::new(&[4])).shape().is_err());
        assert!(Cropping1D::new(1 << 20).layer().is_err());
        let layer = Cropping1D::new((0, 2)).layer().unwrap();
        assert_eq!(layer.config()["cropping"], serde_json::json!([0, 2]));
        let short = Tensor::zeros((1, 2, 3), DType::F32, &Device::Cpu).unwrap();
        let err = layer
            .call(&[short], &mut crate::CallContext::new(false))
            .unwrap_err();
        assert!(err.to_string().contains("more than 2 steps"), "{err}");
    }
}
