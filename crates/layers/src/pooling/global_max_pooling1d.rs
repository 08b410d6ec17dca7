//! `GlobalMaxPooling1D`: the maximum of each feature over all the steps of a sequence
//! (`keras/src/layers/pooling/global_max_pooling1d.py`), by `rkeras_ops::max_pool2d` with one
//! window (see [`GlobalPoolingConfig`]), whose gradient goes whole to the first maximum.

use super::base_global_pooling::{GlobalPoolingConfig, GlobalPoolingKind};
use super::pool_mode::PoolMode;
use crate::builder::LayerBuilder;
use crate::reshaping::spatial::Spatial;

/// What makes `GlobalMaxPooling1D` itself among the global poolings.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalMaxPooling1DKind;

impl GlobalPoolingKind for GlobalMaxPooling1DKind {
    const CLASS_NAME: &'static str = "GlobalMaxPooling1D";
    const NAME_PREFIX: &'static str = "global_max_pooling1d";
    const SPATIAL: Spatial = Spatial::Steps;
    const MODE: PoolMode = PoolMode::Max;
}

/// `GlobalMaxPooling1D`'s options, with Keras's defaults (see [`GlobalPoolingConfig`]).
pub type GlobalMaxPooling1DConfig = GlobalPoolingConfig<GlobalMaxPooling1DKind>;

/// Global max pooling over steps: `GlobalMaxPooling1D::new()(x)`, `(None, steps, features)` to
/// `(None, features)`.
pub type GlobalMaxPooling1D = LayerBuilder<GlobalMaxPooling1DConfig>;

/// The harness cases: with and without `keepdims`, odd and unit lengths, and forwards
/// computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    use candle_core::{Device, Tensor};
    let pool = |p: GlobalMaxPooling1D| p.layer().expect("pool");
    let sequences = |values: &[f32], (batch, steps): (usize, usize)| {
        Tensor::new(values, &Device::Cpu)
            .and_then(|x| x.reshape((batch, steps, values.len() / (batch * steps))))
            .expect("x")
    };
    vec![
        LayerCase::new(pool(GlobalMaxPooling1D::new()), &[&[5, 3]]).output_shapes(&["(None, 3)"]),
        LayerCase::new(pool(GlobalMaxPooling1D::new().keepdims(true)), &[&[4, 2]])
            .output_shapes(&["(None, 1, 2)"]),
        LayerCase::new(pool(GlobalMaxPooling1D::new()), &[&[1, 3]]).output_shapes(&["(None, 3)"]),
        // Steps [1, -4], [5, -1], [3, -3]: maxima 5 and -1.
        LayerCase::new(pool(GlobalMaxPooling1D::new()), &[&[3, 2]])
            .output_shapes(&["(None, 2)"])
            .forward(
                vec![sequences(&[1., -4., 5., -1., 3., -3.], (1, 3))],
                vec![vec![5., -1.]],
            ),
        // Two sequences, [2, 7, 1, 8, 3] and [6, 4, 9, 0, 5] (odd length): 8 and 9, kept as
        // (2, 1, 1).
        LayerCase::new(pool(GlobalMaxPooling1D::new().keepdims(true)), &[&[5, 1]])
            .output_shapes(&["(None, 1, 1)"])
            .forward(
                vec![sequences(&[2., 7., 1., 8., 3., 6., 4., 9., 0., 5.], (2, 5))],
                vec![vec![8., 9.]],
            ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CallContext, Input};
    use candle_core::{DType, Device, Tensor};

    #[test]
    fn bad_inputs_are_errors_naming_the_layer() {
        let flat = GlobalMaxPooling1D::new().name("gmp")(Input::new(&[8]));
        let err = flat.shape().unwrap_err().to_string();
        assert!(
            err.contains("'gmp'") && err.contains("(None, steps, features)"),
            "{err}"
        );
        let layer = GlobalMaxPooling1D::new().layer().unwrap();
        let call = |x: Tensor| layer.call(&[x], &mut CallContext::new(false));
        let empty = Tensor::zeros((2, 0, 3), DType::F32, &Device::Cpu).unwrap();
        let err = call(empty).unwrap_err().to_string();
        assert!(err.contains("not empty"), "{err}");
        let image = Tensor::zeros((2, 3, 3, 1), DType::F32, &Device::Cpu).unwrap();
        assert!(call(image).is_err());
        assert_eq!(layer.config()["keepdims"], false);
    }
}
