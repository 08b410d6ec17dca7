//! `Average`: the elementwise mean of its inputs (`keras/src/layers/merging/average.py`),
//! broadcast as [`base_merge`](super::base_merge) says.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::add::sum;
use super::base_merge::{Merge, MergeLayer};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::{Layer, Result};

/// `Average`'s options (it has none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AverageConfig {}

/// Averages a list of inputs: `Average::new()([a, b].into())`, or
/// [`average`](fn@super::average)`(&[a, b])`.
pub type Average = LayerBuilder<AverageConfig>;

impl LayerConfig for AverageConfig {
    const CLASS_NAME: &'static str = "Average";
    const NAME_PREFIX: &'static str = "average";

    fn make(&self, name: String, trainable: bool) -> Result<std::sync::Arc<dyn Layer>> {
        MergeLayer::<Self>::made(name, trainable)
    }
}

impl Merge for AverageConfig {
    fn merge(inputs: &[Tensor]) -> candle_core::Result<Tensor> {
        sum(inputs)? / inputs.len() as f64
    }

    /// Each input gets the output's gradient over the number of inputs.
    fn gradients(
        inputs: &[Tensor],
        _output: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Vec<Tensor>> {
        Ok(vec![(grad / inputs.len() as f64)?; inputs.len()])
    }
}

/// The harness cases: two and three inputs, one broadcast from a lower rank.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use super::testing::{input, merge_case};
    vec![
        // ([1, 2, 3] + [3, 6, 9]) / 2 = [2, 4, 6].
        merge_case(Average::new(), &[&[3], &[3]], "(None, 3)").forward(
            vec![input(&[1., 2., 3.], &[3]), input(&[3., 6., 9.], &[3])],
            vec![vec![2., 4., 6.]],
        ),
        // ([[1, 2], [3, 4]] + [5, 7] + [[0, 0], [3, 3]]) / 3 = [[2, 3], [11/3, 14/3]].
        merge_case(Average::new(), &[&[2, 2], &[2], &[2, 2]], "(None, 2, 2)").forward(
            vec![
                input(&[1., 2., 3., 4.], &[2, 2]),
                input(&[5., 7.], &[2]),
                input(&[0., 0., 3., 3.], &[2, 2]),
            ],
            vec![vec![2., 3., 11. / 3., 14. / 3.]],
        ),
    ]
}
