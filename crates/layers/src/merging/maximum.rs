//! `Maximum`: the elementwise maximum of its inputs (`keras/src/layers/merging/maximum.py`),
//! broadcast as [`base_merge`](super::base_merge) says.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::base_merge::{Merge, MergeLayer};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::{Layer, Result};

/// `Maximum`'s options (it has none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MaximumConfig {}

/// The elementwise maximum of a list of inputs: `Maximum::new()([a, b].into())`, or
/// [`maximum`](fn@super::maximum)`(&[a, b])`.
pub type Maximum = LayerBuilder<MaximumConfig>;

impl LayerConfig for MaximumConfig {
    const CLASS_NAME: &'static str = "Maximum";
    const NAME_PREFIX: &'static str = "maximum";

    fn make(&self, name: String, trainable: bool) -> Result<std::sync::Arc<dyn Layer>> {
        MergeLayer::<Self>::made(name, trainable)
    }
}

impl Merge for MaximumConfig {
    fn merge(inputs: &[Tensor]) -> candle_core::Result<Tensor> {
        fold(inputs, Tensor::broadcast_maximum)
    }

    fn gradients(
        inputs: &[Tensor],
        output: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Vec<Tensor>> {
        route_to_first_hit(inputs, output, grad)
    }
}

/// `inputs` folded by a binary op, from the first.
pub(super) fn fold(
    inputs: &[Tensor],
    op: fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
) -> candle_core::Result<Tensor> {
    let (first, rest) = inputs
        .split_first()
        .ok_or_else(|| candle_core::Error::Msg("a merge of no tensors".into()))?;
    rest.iter().try_fold(first.clone(), |acc, x| op(&acc, x))
}

/// The gradient of a maximum or minimum: each element of `grad` goes, whole, to the first input
/// that holds the `output` there (TensorFlow gives ties to the first input too).
pub(super) fn route_to_first_hit(
    inputs: &[Tensor],
    output: &Tensor,
    grad: &Tensor,
) -> candle_core::Result<Vec<Tensor>> {
    let mut taken = grad.zeros_like()?;
    inputs
        .iter()
        .map(|x| {
            let hit = x.broadcast_eq(output)?.to_dtype(grad.dtype())?;
            let first = (&hit - (&hit * &taken)?)?;
            taken = (&taken + &first)?;
            grad * first
        })
        .collect()
}

/// The harness cases: two and three inputs, one broadcast from a lower rank.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use super::testing::{input, merge_case};
    vec![
        // max([1, 5, 3], [4, 2, 6]) = [4, 5, 6].
        merge_case(Maximum::new(), &[&[3], &[3]], "(None, 3)").forward(
            vec![input(&[1., 5., 3.], &[3]), input(&[4., 2., 6.], &[3])],
            vec![vec![4., 5., 6.]],
        ),
        // max([[1, 8], [3, 4]], [2, 5], [[0, 0], [9, 0]]) = [[2, 8], [9, 5]].
        merge_case(Maximum::new(), &[&[2, 2], &[2], &[2, 2]], "(None, 2, 2)").forward(
            vec![
                input(&[1., 8., 3., 4.], &[2, 2]),
                input(&[2., 5.], &[2]),
                input(&[0., 0., 9., 0.], &[2, 2]),
            ],
            vec![vec![2., 8., 9., 5.]],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn ties_go_to_the_first_input_whole() {
        let a = Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap();
        let b = Tensor::new(&[1f32, 3.0], &Device::Cpu).unwrap();
        let inputs = [a, b];
        let y = MaximumConfig::merge(&inputs).unwrap();
        let grad = Tensor::new(&[10f32, 20.0], &Device::Cpu).unwrap();
        let grads = MaximumConfig::gradients(&inputs, &y, &grad).unwrap();
        assert_eq!(grads[0].to_vec1::<f32>().unwrap(), [10.0, 0.0]);
        assert_eq!(grads[1].to_vec1::<f32>().unwrap(), [0.0, 20.0]);
    }
}
