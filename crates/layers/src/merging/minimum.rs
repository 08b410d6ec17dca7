//! `Minimum`: the elementwise minimum of its inputs (`keras/src/layers/merging/minimum.py`),
//! broadcast as [`base_merge`](super::base_merge) says.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::base_merge::{Merge, MergeLayer};
use super::maximum::{fold, route_to_first_hit};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::{Layer, Result};

/// `Minimum`'s options (it has none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MinimumConfig {}

/// The elementwise minimum of a list of inputs: `Minimum::new()([a, b].into())`, or
/// [`minimum`](fn@super::minimum)`(&[a, b])`.
pub type Minimum = LayerBuilder<MinimumConfig>;

impl LayerConfig for MinimumConfig {
    const CLASS_NAME: &'static str = "Minimum";
    const NAME_PREFIX: &'static str = "minimum";

    fn make(&self, name: String, trainable: bool) -> Result<std::sync::Arc<dyn Layer>> {
        MergeLayer::<Self>::made(name, trainable)
    }
}

impl Merge for MinimumConfig {
    fn merge(inputs: &[Tensor]) -> candle_core::Result<Tensor> {
        fold(inputs, Tensor::broadcast_minimum)
    }

    fn gradients(
        inputs: &[Tensor],
        output: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Vec<Tensor>> {
        route_to_first_hit(inputs, output, grad)
    }
}

/// The harness cases: two and three inputs, one broadcast from a lower rank.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use super::testing::{input, merge_case};
    vec![
        // min([1, 5, 3], [4, 2, 6]) = [1, 2, 3].
        merge_case(Minimum::new(), &[&[3], &[3]], "(None, 3)").forward(
            vec![input(&[1., 5., 3.], &[3]), input(&[4., 2., 6.], &[3])],
            vec![vec![1., 2., 3.]],
        ),
        // min([[1, 8], [3, 4]], [2, 5], [[0, 9], [9, 9]]) = [[0, 5], [2, 4]].
        merge_case(Minimum::new(), &[&[2, 2], &[2], &[2, 2]], "(None, 2, 2)").forward(
            vec![
                input(&[1., 8., 3., 4.], &[2, 2]),
                input(&[2., 5.], &[2]),
                input(&[0., 9., 9., 9.], &[2, 2]),
            ],
            vec![vec![0., 5., 2., 4.]],
        ),
    ]
}
