//! `AveragePooling2D`: the mean over each window of a channels-last image
//! (`keras/src/layers/pooling/average_pooling2d.py`). With `padding="same"` a window at the
//! border averages its real cells only, as TensorFlow's `avg_pool` does (and Keras's JAX backend
//! matches: `keras/src/backend/jax/nn.py`, `average_pool`). The work is done by
//! `rkeras_ops::avg_pool2d` (see [`PoolingConfig`]).

use super::base_pooling::{PoolingConfig, PoolingKind};
use super::pool_mode::PoolMode;
use crate::builder::LayerBuilder;
use crate::convolutional::options::Size2;

/// What makes `AveragePooling2D` itself among the windowed poolings.
#[derive(Debug, Clone, PartialEq)]
pub struct AveragePooling2DKind;

impl PoolingKind for AveragePooling2DKind {
    const CLASS_NAME: &'static str = "AveragePooling2D";
    const NAME_PREFIX: &'static str = "average_pooling2d";
    type Size = Size2;
    const MODE: PoolMode = PoolMode::Average;
}

/// `AveragePooling2D`'s options, with Keras's defaults (see [`PoolingConfig`]).
pub type AveragePooling2DConfig = PoolingConfig<AveragePooling2DKind>;

/// Average pooling: `AveragePooling2D::new((2, 2)).padding("same")(x)`.
pub type AveragePooling2D = LayerBuilder<AveragePooling2DConfig>;

/// The harness cases: same and valid padding, strides, and forwards computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    use candle_core::{Device, Tensor};
    let pool = |p: AveragePooling2D| p.layer().expect("pool");
    // 1..9 in a 3x3 image.
    let x = Tensor::arange(1f32, 10.0, &Device::Cpu)
        .and_then(|x| x.reshape((1, 3, 3, 1)))
        .expect("x");
    vec![
        LayerCase::new(pool(AveragePooling2D::default()), &[&[4, 6, 3]])
            .output_shapes(&["(None, 2, 3, 3)"]),
        LayerCase::new(
            pool(AveragePooling2D::new((3, 3)).strides((2, 1))),
            &[&[5, 4, 2]],
        )
        .output_shapes(&["(None, 2, 2, 2)"]),
        LayerCase::new(
            pool(AveragePooling2D::new(3).strides(1).padding("same")),
            &[&[4, 4, 2]],
        )
        .output_shapes(&["(None, 4, 4, 2)"]),
        // 'same' pads below and right; the border windows average their real cells only:
        // [[(1+2+4+5)/4, (3+6)/2], [(7+8)/2, 9]] = [[3, 4.5], [7.5, 9]].
        LayerCase::new(
            pool(AveragePooling2D::new((2, 2)).padding("same")),
            &[&[3, 3, 1]],
        )
        .output_shapes(&["(None, 2, 2, 1)"])
        .forward(vec![x.clone()], vec![vec![3.0, 4.5, 7.5, 9.0]]),
        // Valid: the one window (1+2+4+5)/4 = 3.
        LayerCase::new(pool(AveragePooling2D::new((2, 2))), &[&[3, 3, 1]])
            .output_shapes(&["(None, 1, 1, 1)"])
            .forward(vec![x], vec![vec![3.0]]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_its_window_as_keras_does() {
        let layer = AveragePooling2D::new((3, 2))
            .strides(1)
            .padding("same")
            .layer()
            .unwrap();
        let config = layer.config();
        assert_eq!(config["pool_size"], serde_json::json!([3, 2]));
        assert_eq!(config["strides"], serde_json::json!([1, 1]));
        assert_eq!(config["padding"], "same");
        let err = AveragePooling2D::new(2)
            .padding("full")
            .layer()
            .err()
            .unwrap();
        assert!(err.to_string().contains("unknown padding"), "{err}");
        let too_small = AveragePooling2D::new(3)(crate::Input::new(&[2, 2, 1]));
        assert!(too_small.shape().is_err());
        // Keras writes the strides out when they default to the window, and reads them back.
        let default = AveragePooling2D::new((3, 2)).layer().unwrap().config();
        assert_eq!(default["strides"], serde_json::json!([3, 2]));
        let loaded: crate::pooling::average_pooling2d::AveragePooling2DConfig =
            serde_json::from_value(default).unwrap();
        assert_eq!(loaded.window.strides, Some(crate::Size2(3, 2)));
    }
}
