//! `Subtract`: the difference of exactly two inputs, `inputs[0] - inputs[1]`
//! (`keras/src/layers/merging/subtract.py`), broadcast as [`base_merge`](super::base_merge) says.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::base_merge::{Merge, MergeLayer};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::{Layer, Result};

/// `Subtract`'s options (it has none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubtractConfig {}

/// Subtracts the second input from the first: `Subtract::new()([a, b].into())`, or
/// [`subtract`](fn@super::subtract)`(&[a, b])`.
pub type Subtract = LayerBuilder<SubtractConfig>;

impl LayerConfig for SubtractConfig {
    const CLASS_NAME: &'static str = "Subtract";
    const NAME_PREFIX: &'static str = "subtract";

    fn make(&self, name: String, trainable: bool) -> Result<std::sync::Arc<dyn Layer>> {
        MergeLayer::<Self>::made(name, trainable)
    }
}

impl Merge for SubtractConfig {
    const TWO_INPUTS: bool = true;

    fn merge(inputs: &[Tensor]) -> candle_core::Result<Tensor> {
        match inputs {
            [a, b] => a.broadcast_sub(b),
            _ => Err(candle_core::Error::Msg("Subtract takes two inputs".into())),
        }
    }

    /// The first input gets the output's gradient, the second its negation.
    fn gradients(
        _inputs: &[Tensor],
        _output: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Vec<Tensor>> {
        Ok(vec![grad.clone(), grad.neg()?])
    }
}

/// The harness cases: same shapes, and a second input broadcast from a lower rank.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use super::testing::{input, merge_case};
    vec![
        // [10, 20, 30] - [1, 2, 3] = [9, 18, 27].
        merge_case(Subtract::new(), &[&[3], &[3]], "(None, 3)").forward(
            vec![input(&[10., 20., 30.], &[3]), input(&[1., 2., 3.], &[3])],
            vec![vec![9., 18., 27.]],
        ),
        // [[1, 2], [3, 4]] - [10, 20] = [[-9, -18], [-7, -16]].
        merge_case(Subtract::new(), &[&[2, 2], &[2]], "(None, 2, 2)").forward(
            vec![input(&[1., 2., 3., 4.], &[2, 2]), input(&[10., 20.], &[2])],
            vec![vec![-9., -18., -7., -16.]],
        ),
    ]
}
