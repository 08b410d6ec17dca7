//! `Multiply`: the elementwise product of its inputs (`keras/src/layers/merging/multiply.py`),
//! broadcast as [`base_merge`](super::base_merge) says.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::base_merge::{Merge, MergeLayer};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::{Layer, Result};

/// `Multiply`'s options (it has none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MultiplyConfig {}

/// Multiplies a list of inputs: `Multiply::new()([a, b].into())`, or
/// [`multiply`](fn@super::multiply)`(&[a, b])`.
pub type Multiply = LayerBuilder<MultiplyConfig>;

impl LayerConfig for MultiplyConfig {
    const CLASS_NAME: &'static str = "Multiply";
    const NAME_PREFIX: &'static str = "multiply";

    fn make(&self, name: String, trainable: bool) -> Result<std::sync::Arc<dyn Layer>> {
        MergeLayer::<Self>::made(name, trainable)
    }
}

/// The broadcast product of one or more tensors (`None` for none; on the CPU, outside candle's
/// thread pool when the shapes agree: `rkeras_ops::multiply`).
fn product<'a>(
    factors: impl IntoIterator<Item = &'a Tensor>,
) -> candle_core::Result<Option<Tensor>> {
    let mut product: Option<Tensor> = None;
    for x in factors {
        product = Some(match product {
            Some(p) => rkeras_ops::multiply(&p, x)?,
            None => x.clone(),
        });
    }
    Ok(product)
}

impl Merge for MultiplyConfig {
    fn merge(inputs: &[Tensor]) -> candle_core::Result<Tensor> {
        product(inputs)?.ok_or_else(|| candle_core::Error::Msg("a product of no tensors".into()))
    }

    /// Each input gets the output's gradient times the product of the other inputs (taken
    /// directly, never as the output over the input, which may be zero).
    fn gradients(
        inputs: &[Tensor],
        _output: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Vec<Tensor>> {
        (0..inputs.len())
            .map(|i| {
                let others = inputs[..i].iter().chain(&inputs[i + 1..]);
                match product(others)? {
                    Some(others) => rkeras_ops::multiply(grad, &others),
                    None => Ok(grad.clone()),
                }
            })
            .collect()
    }
}

/// The harness cases: two and three inputs, one broadcast from a lower rank.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use super::testing::{input, merge_case};
    vec![
        // [1, 2, 3] * [4, 5, 6] = [4, 10, 18].
        merge_case(Multiply::new(), &[&[3], &[3]], "(None, 3)").forward(
            vec![input(&[1., 2., 3.], &[3]), input(&[4., 5., 6.], &[3])],
            vec![vec![4., 10., 18.]],
        ),
        // [[1, 2], [3, 4]] * [10, 100] * [[1, 1], [2, 2]] = [[10, 200], [60, 800]].
        merge_case(Multiply::new(), &[&[2, 2], &[2], &[2, 2]], "(None, 2, 2)").forward(
            vec![
                input(&[1., 2., 3., 4.], &[2, 2]),
                input(&[10., 100.], &[2]),
                input(&[1., 1., 2., 2.], &[2, 2]),
            ],
            vec![vec![10., 200., 60., 800.]],
        ),
    ]
}
