//! `AveragePooling1D`: the mean over each window of a channels-last sequence
//! (`keras/src/layers/pooling/average_pooling1d.py`, `base_pooling.py`). With
//! `padding="same"` a window at an end averages its real steps only, as TensorFlow's `avg_pool`
//! does. The work is done by `rkeras_ops::avg_pool2d` on the sequence seen as an image one
//! column wide (see [`PoolingConfig`]).

use super::base_pooling::{PoolingConfig, PoolingKind};
use super::pool_mode::PoolMode;
use super::window_size::Size1;
use crate::builder::LayerBuilder;

/// What makes `AveragePooling1D` itself among the windowed poolings.
#[derive(Debug, Clone, PartialEq)]
pub struct AveragePooling1DKind;

impl PoolingKind for AveragePooling1DKind {
    const CLASS_NAME: &'static str = "AveragePooling1D";
    const NAME_PREFIX: &'static str = "average_pooling1d";
    type Size = Size1;
    const MODE: PoolMode = PoolMode::Average;
}

/// `AveragePooling1D`'s options, with Keras's defaults (see [`PoolingConfig`]).
pub type AveragePooling1DConfig = PoolingConfig<AveragePooling1DKind>;

/// Average pooling over steps: `AveragePooling1D::new(3).strides(1).padding("same")(x)`.
pub type AveragePooling1D = LayerBuilder<AveragePooling1DConfig>;

/// The harness cases: strides, same and valid padding, odd lengths, several features, and
/// forwards computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::reshaping::spatial::sequence;
    use crate::testing::LayerCase;
    let pool = |p: AveragePooling1D| p.layer().expect("pool");
    let five = sequence(&[1., 2., 3., 4., 5.], 1);
    vec![
        LayerCase::new(pool(AveragePooling1D::default()), &[&[6, 3]])
            .output_shapes(&["(None, 3, 3)"]),
        LayerCase::new(
            pool(AveragePooling1D::new(3).strides(1).padding("same")),
            &[&[5, 2]],
        )
        .output_shapes(&["(None, 5, 2)"]),
        // Windows [1, 2], [2, 3], [3, 4], [4, 5].
        LayerCase::new(pool(AveragePooling1D::new(2).strides(1)), &[&[5, 1]])
            .output_shapes(&["(None, 4, 1)"])
            .forward(vec![five.clone()], vec![vec![1.5, 2.5, 3.5, 4.5]]),
        // 'same', stride 2 over an odd length: windows [1, 2], [3, 4], [5, pad]; the last
        // averages its one real step: 5 / 1.
        LayerCase::new(pool(AveragePooling1D::new(2).padding("same")), &[&[5, 1]])
            .output_shapes(&["(None, 3, 1)"])
            .forward(vec![five.clone()], vec![vec![1.5, 3.5, 5.0]]),
        // 'same', window 3, stride 1: one padded step each end, windows [pad, 1, 2],
        // [1, 2, 3], [2, 3, 4], [3, 4, 5], [4, 5, pad]: 3/2, 6/3, 9/3, 12/3, 9/2.
        LayerCase::new(
            pool(AveragePooling1D::new(3).strides(1).padding("same")),
            &[&[5, 1]],
        )
        .output_shapes(&["(None, 5, 1)"])
        .forward(vec![five], vec![vec![1.5, 2.0, 3.0, 4.0, 4.5]]),
        // 'same', window 3, stride 2 over [1, 2, 3, 4]: one padded step after, windows
        // [1, 2, 3], [3, 4, pad]: 6/3, 7/2.
        LayerCase::new(
            pool(AveragePooling1D::new(3).strides(2).padding("same")),
            &[&[4, 1]],
        )
        .output_shapes(&["(None, 2, 1)"])
        .forward(vec![sequence(&[1., 2., 3., 4.], 1)], vec![vec![2.0, 3.5]]),
        // Each feature on its own: steps [1, -4], [3, -1], [2, -3], [4, -2] average to
        // [(1 + 3)/2, (-4 - 1)/2], [(2 + 4)/2, (-3 - 2)/2] = [2, -2.5], [3, -2.5].
        LayerCase::new(pool(AveragePooling1D::default()), &[&[4, 2]])
            .output_shapes(&["(None, 2, 2)"])
            .forward(
                vec![sequence(&[1., -4., 3., -1., 2., -3., 4., -2.], 2)],
                vec![vec![2.0, -2.5, 3.0, -2.5]],
            ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Input;

    #[test]
    fn saves_its_window_as_keras_does_and_refuses_bad_options() {
        let config = AveragePooling1D::default().layer().unwrap().config();
        assert_eq!(config["pool_size"], serde_json::json!([2]));
        assert_eq!(config["padding"], "valid");
        let err = AveragePooling1D::new(0).name("avg").layer().err().unwrap();
        assert!(err.to_string().contains("'avg'"), "{err}");
        let rank4 = AveragePooling1D::new(2).name("avg4")(Input::new(&[4, 4, 1]));
        let err = rank4.shape().unwrap_err().to_string();
        assert!(
            err.contains("'avg4'") && err.contains("(None, steps, features)"),
            "{err}"
        );
    }
}
