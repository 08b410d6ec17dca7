//! `Add`: the elementwise sum of its inputs (`keras/src/layers/merging/add.py`), broadcast as
//! [`base_merge`](super::base_merge) says.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::base_merge::{Merge, MergeLayer};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::{Layer, Result};

/// `Add`'s options (it has none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AddConfig {}

/// Sums a list of inputs: `Add::new()([a, b].into())`, or [`add`](fn@super::add)`(&[a, b])`.
pub type Add = LayerBuilder<AddConfig>;

impl LayerConfig for AddConfig {
    const CLASS_NAME: &'static str = "Add";
    const NAME_PREFIX: &'static str = "add";

    fn make(&self, name: String, trainable: bool) -> Result<std::sync::Arc<dyn Layer>> {
        MergeLayer::<Self>::made(name, trainable)
    }
}

impl Merge for AddConfig {
    fn merge(inputs: &[Tensor]) -> candle_core::Result<Tensor> {
        sum(inputs)
    }

    /// Each input gets the output's gradient as it is.
    fn gradients(
        inputs: &[Tensor],
        _output: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Vec<Tensor>> {
        Ok(vec![grad.clone(); inputs.len()])
    }
}

/// The broadcast sum of one or more tensors of one rank (on the CPU, outside candle's thread
/// pool when the shapes agree: `rkeras_ops::add`).
pub(super) fn sum(inputs: &[Tensor]) -> candle_core::Result<Tensor> {
    let (first, rest) = inputs
        .split_first()
        .ok_or_else(|| candle_core::Error::Msg("a sum of no tensors".into()))?;
    rest.iter()
        .try_fold(first.clone(), |sum, x| rkeras_ops::add(&sum, x))
}

/// The harness cases: two and three inputs, one broadcast from a lower rank.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use super::testing::{input, merge_case};
    vec![
        // [1, 2, 3] + [10, 20, 30] = [11, 22, 33].
        merge_case(Add::new(), &[&[3], &[3]], "(None, 3)").forward(
            vec![input(&[1., 2., 3.], &[3]), input(&[10., 20., 30.], &[3])],
            vec![vec![11., 22., 33.]],
        ),
        // A (2,) row added to each row of a (2, 2) matrix, plus a third (2, 2) input:
        // [[1, 2], [3, 4]] + [10, 20] + [[100, 100], [100, 100]] = [[111, 122], [113, 124]].
        merge_case(Add::new(), &[&[2, 2], &[2], &[2, 2]], "(None, 2, 2)").forward(
            vec![
                input(&[1., 2., 3., 4.], &[2, 2]),
                input(&[10., 20.], &[2]),
                input(&[100.; 4], &[2, 2]),
            ],
            vec![vec![111., 122., 113., 124.]],
        ),
    ]
}
