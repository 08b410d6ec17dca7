//! `MaxPooling1D`: the maximum over each window of a channels-last sequence
//! (`keras/src/layers/pooling/max_pooling1d.py`, `base_pooling.py`); padded steps never win.
//! The work is done by `rkeras_ops::max_pool2d` on the sequence seen as an image one column
//! wide (see [`PoolingLayer`]), whose gradient routes to the maximum in full.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::base_pooling::{Pooling, PoolingLayer};
use super::pool_mode::PoolMode;
use super::pool_window::PoolWindow;
use super::window_size::Size1;
use crate::builder::{LayerBuilder, LayerConfig};
use crate::{Layer, Result};

/// `MaxPooling1D`'s options, with Keras's defaults: its window, saved as Keras saves it
/// (`pool_size`, `strides`, `padding`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MaxPooling1DConfig {
    /// The window (default 2 steps, strides equal to it, valid padding).
    pub window: PoolWindow<Size1>,
}

/// Max pooling over steps: `MaxPooling1D::new(2).strides(1).padding("same")(x)`.
pub type MaxPooling1D = LayerBuilder<MaxPooling1DConfig>;

impl MaxPooling1D {
    /// Pooling over windows of `pool_size` steps, strides equal to the window, valid padding.
    pub fn new(pool_size: usize) -> Self {
        LayerBuilder::from_config(MaxPooling1DConfig {
            window: PoolWindow::new(Size1(pool_size)),
        })
    }
}

impl Default for MaxPooling1D {
    fn default() -> Self {
        MaxPooling1D::new(2)
    }
}

impl LayerConfig for MaxPooling1DConfig {
    const CLASS_NAME: &'static str = "MaxPooling1D";
    const NAME_PREFIX: &'static str = "max_pooling1d";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        PoolingLayer::made(self, name, trainable)
    }
}

impl Pooling for MaxPooling1DConfig {
    type Size = Size1;
    const MODE: PoolMode = PoolMode::Max;

    fn window(&self) -> &PoolWindow<Size1> {
        &self.window
    }

    fn window_mut(&mut self) -> &mut PoolWindow<Size1> {
        &mut self.window
    }
}

/// The harness cases: strides, same and valid padding, odd lengths, several features, and
/// forwards computed by hand (the first three are Keras's docstring examples).
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    use candle_core::{Device, Tensor};
    let pool = |p: MaxPooling1D| p.layer().expect("pool");
    let sequence = |values: &[f32], features: usize| {
        Tensor::new(values, &Device::Cpu)
            .and_then(|x| x.reshape((1, values.len() / features, features)))
            .expect("x")
    };
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
