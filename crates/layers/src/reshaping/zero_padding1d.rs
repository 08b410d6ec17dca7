//! `ZeroPadding1D`: steps of zeros at the start and end of a channels-last sequence
//! (`keras/src/layers/reshaping/zero_padding1d.py`), by [`BordersLayer`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::borders::{BorderMode, Borders, BordersLayer};
use super::sides::Sides1;
use crate::builder::{LayerBuilder, LayerConfig};
use crate::{Layer, Result};

/// `ZeroPadding1D`'s options, with Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZeroPadding1DConfig {
    /// Steps of zeros at the start and at the end (default one each).
    pub padding: Sides1,
}

/// Zero padding of a sequence: `ZeroPadding1D::new(2)(x)`, `ZeroPadding1D::new((1, 3))(x)`.
pub type ZeroPadding1D = LayerBuilder<ZeroPadding1DConfig>;

impl ZeroPadding1D {
    /// Padding by `padding`: `n` at both ends, or `(start, end)`.
    pub fn new(padding: impl Into<Sides1>) -> Self {
        LayerBuilder::from_config(ZeroPadding1DConfig {
            padding: padding.into(),
        })
    }
}

impl Default for ZeroPadding1D {
    fn default() -> Self {
        ZeroPadding1D::new(1)
    }
}

impl LayerConfig for ZeroPadding1DConfig {
    const CLASS_NAME: &'static str = "ZeroPadding1D";
    const NAME_PREFIX: &'static str = "zero_padding1d";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        BordersLayer::made(self, name, trainable)
    }
}

impl Borders for ZeroPadding1DConfig {
    type Sides = Sides1;
    const MODE: BorderMode = BorderMode::Pad;

    fn sides(&self) -> Sides1 {
        self.padding
    }
}

/// The harness cases: each form of `padding`, and forwards computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    use candle_core::{Device, Tensor};
    let pad = |p: ZeroPadding1D| p.layer().expect("padding");
    // Two steps of two features: [[1, 10], [2, 20]].
    let x = Tensor::new(&[1f32, 10., 2., 20.], &Device::Cpu)
        .and_then(|x| x.reshape((1, 2, 2)))
        .expect("x");
    // Three steps of two features: [[1, 10], [2, 20], [3, 30]].
    let odd = Tensor::new(&[1f32, 10., 2., 20., 3., 30.], &Device::Cpu)
        .and_then(|x| x.reshape((1, 3, 2)))
        .expect("odd");
    vec![
        LayerCase::new(pad(ZeroPadding1D::default()), &[&[3, 2]]).output_shapes(&["(None, 5, 2)"]),
        LayerCase::new(pad(ZeroPadding1D::new((2, 0))), &[&[4, 1]])
            .output_shapes(&["(None, 6, 1)"]),
        LayerCase::new(pad(ZeroPadding1D::new(0)), &[&[3, 1]]).output_shapes(&["(None, 3, 1)"]),
        // One step of zeros before, two after: [[0, 0], [1, 10], [2, 20], [0, 0], [0, 0]].
        LayerCase::new(pad(ZeroPadding1D::new((1, 2))), &[&[2, 2]])
            .output_shapes(&["(None, 5, 2)"])
            .forward(
                vec![x],
                vec![vec![0., 0., 1., 10., 2., 20., 0., 0., 0., 0.]],
            ),
        // Two steps of zeros at each end of an odd length:
        // [[0, 0], [0, 0], [1, 10], [2, 20], [3, 30], [0, 0], [0, 0]].
        LayerCase::new(pad(ZeroPadding1D::new(2)), &[&[3, 2]])
            .output_shapes(&["(None, 7, 2)"])
            .forward(
                vec![odd],
                vec![vec![
                    0., 0., 0., 0., 1., 10., 2., 20., 3., 30., 0., 0., 0., 0.,
                ]],
            ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Input;
    use candle_core::{DType, Device, Tensor};

    #[test]
    fn saves_its_padding_as_keras_does_and_refuses_bad_inputs() {
        let layer = ZeroPadding1D::new((1, 3)).layer().unwrap();
        assert_eq!(layer.config()["padding"], serde_json::json!([1, 3]));
        let err = ZeroPadding1D::new(1).name("pad")(Input::new(&[6]))
            .shape()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'pad'") && err.contains("(None, steps, features)"),
            "{err}"
        );
        let err = ZeroPadding1D::new(1 << 20)
            .layer()
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("padding (1048576, 1048576)"), "{err}");
        let image = Tensor::zeros((1, 2, 2, 1), DType::F32, &Device::Cpu).unwrap();
        let err = layer
            .call(&[image], &mut crate::CallContext::new(false))
            .unwrap_err();
        assert!(err.to_string().contains("steps, features"), "{err}");
    }
}
