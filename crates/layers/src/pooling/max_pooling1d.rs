//! `MaxPooling1D`: the maximum over each window of a channels-last sequence
//! (`keras/src/layers/pooling/max_pooling1d.py`, `base_pooling.py`); padded steps never win.
//! The work is done by `rkeras_ops::max_pool2d` on the sequence seen as an image one column
//! wide (see [`PoolingConfig`]), whose gradient routes to the maximum in full.

use super::base_pooling::{PoolingConfig, PoolingKind};
use super::pool_mode::PoolMode;
use super::window_size::Size1;
use crate::builder::LayerBuilder;

/// What makes `MaxPooling1D` itself among the windowed poolings.
#[derive(Debug, Clone, PartialEq)]
pub struct MaxPooling1DKind;

impl PoolingKind for MaxPooling1DKind {
    const CLASS_NAME: &'static str = "MaxPooling1D";
    const NAME_PREFIX: &'static str = "max_pooling1d";
    type Size = Size1;
    const MODE: PoolMode = PoolMode::Max;
}

/// `MaxPooling1D`'s options, with Keras's defaults (see [`PoolingConfig`]).
pub type MaxPooling1DConfig = PoolingConfig<MaxPooling1DKind>;

/// Max pooling over steps: `MaxPooling1D::new(2).strides(1).padding("same")(x)`.
pub type MaxPooling1D = LayerBuilder<MaxPooling1DConfig>;

/// The harness cases: strides, same and valid padding, odd lengths, several features, and
/// forwards computed by hand (the first three are Keras's docstring examples).
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::reshaping::spatial::sequence;
    use crate::testing::LayerCase;
    let pool = |p: MaxPooling1D| p.layer().expect("pool");
    let five = sequence(&[1., 2., 3., 4., 5.], 1);
    vec![
        LayerCase::new(pool(MaxPooling1D::default()), &[&[6, 3]]).output_shapes(&["(None, 3, 3)"]),
        LayerCase::new(pool(MaxPooling1D::new(3).strides(2)), &[&[7, 2]])
            .output_shapes(&["(None, 3, 2)"]),
        // Windows [1, 2], [2, 3], [3, 4], [4, 5].
        LayerCase::new(pool(MaxPooling1D::new(2).strides(1)), &[&[5, 1]])
            .output_shapes(&["(None, 4, 1)"])
            .forward(vec![five.clone()], vec![vec![2., 3., 4., 5.]]),
        // Windows [1, 2], [3, 4]; the odd step 5 is left out.
        LayerCase::new(pool(MaxPooling1D::new(2)), &[&[5, 1]])
            .output_shapes(&["(None, 2, 1)"])
            .forward(vec![five.clone()], vec![vec![2., 4.]]),
        // 'same', stride 1: one padded step after, windows [1, 2] ... [4, 5], [5, pad].
        LayerCase::new(
            pool(MaxPooling1D::new(2).strides(1).padding("same")),
            &[&[5, 1]],
        )
        .output_shapes(&["(None, 5, 1)"])
        .forward(vec![five.clone()], vec![vec![2., 3., 4., 5., 5.]]),
        // 'same', stride 2 over an odd length: ceil(5 / 2) = 3 windows [1, 2], [3, 4], [5, pad].
        LayerCase::new(pool(MaxPooling1D::new(2).padding("same")), &[&[5, 1]])
            .output_shapes(&["(None, 3, 1)"])
            .forward(vec![five], vec![vec![2., 4., 5.]]),
        // 'same', window 3, stride 2 over [1, 2, 3, 4]: (2 - 1) * 2 + 3 - 4 = 1 padded step
        // after, windows [1, 2, 3], [3, 4, pad].
        LayerCase::new(
            pool(MaxPooling1D::new(3).strides(2).padding("same")),
            &[&[4, 1]],
        )
        .output_shapes(&["(None, 2, 1)"])
        .forward(vec![sequence(&[1., 2., 3., 4.], 1)], vec![vec![3., 4.]]),
        // Each feature on its own: steps [1, -4], [3, -1], [2, -3], [4, -2] pool to
        // [max(1, 3), max(-4, -1)], [max(2, 4), max(-3, -2)] = [3, -1], [4, -2].
        LayerCase::new(pool(MaxPooling1D::default()), &[&[4, 2]])
            .output_shapes(&["(None, 2, 2)"])
            .forward(
                vec![sequence(&[1., -4., 3., -1., 2., -3., 4., -2.], 2)],
                vec![vec![3., -1., 4., -2.]],
            ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CallContext, Input};
    use candle_core::{DType, Device, Tensor};

    #[test]
    fn saves_its_window_as_keras_does() {
        let layer = MaxPooling1D::new(3)
            .strides(1)
            .padding("same")
            .layer()
            .unwrap();
        let config = layer.config();
        assert_eq!(config["pool_size"], serde_json::json!([3]));
        assert_eq!(config["strides"], serde_json::json!([1]));
        assert_eq!(config["padding"], "same");
        let err = MaxPooling1D::new(2).padding("full").layer().err().unwrap();
        assert!(err.to_string().contains("unknown padding"), "{err}");
    }

    #[test]
    fn bad_options_and_inputs_are_errors_naming_the_layer() {
        let message = |e: crate::Error| e.to_string();
        let err = message(MaxPooling1D::new(0).name("pool").layer().err().unwrap());
        assert!(
            err.contains("'pool'") && err.contains("pool_size 0"),
            "{err}"
        );
        let err = message(
            MaxPooling1D::new(2)
                .strides(0)
                .name("p")
                .layer()
                .err()
                .unwrap(),
        );
        assert!(err.contains("'p'") && err.contains("strides 0"), "{err}");
        let flat = MaxPooling1D::new(2).name("flat")(Input::new(&[8]));
        let err = message(flat.shape().unwrap_err());
        assert!(
            err.contains("'flat'") && err.contains("(None, steps, features)"),
            "{err}"
        );
        let short = MaxPooling1D::new(3).name("short")(Input::new(&[2, 4]));
        let err = message(short.shape().unwrap_err());
        assert!(err.contains("a sequence of at least 3 steps"), "{err}");
        let layer = MaxPooling1D::new(2).layer().unwrap();
        let image = Tensor::zeros((1, 4, 4, 1), DType::F32, &Device::Cpu).unwrap();
        let err = message(
            layer
                .call(&[image], &mut CallContext::new(false))
                .unwrap_err(),
        );
        assert!(err.contains("(batch, steps, features)"), "{err}");
    }
}
