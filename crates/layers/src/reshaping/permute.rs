//! `Permute`: reorders the axes after the batch (`keras/src/layers/reshaping/permute.py`);
//! `dims` numbers them from 1, as Keras does: `Permute::new(&[2, 1])` swaps the two.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::builder::{LayerBuilder, LayerConfig};
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// `Permute`'s options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PermuteConfig {
    /// Where each output axis comes from: a permutation of `1..=rank-1` (the batch is axis 0).
    pub dims: Vec<usize>,
}

/// Reorders axes: `Permute::new(&[2, 1])(x)` turns `(None, 10, 64)` into `(None, 64, 10)`.
pub type Permute = LayerBuilder<PermuteConfig>;

impl Permute {
    /// Output axis `i` (from 1) is input axis `dims[i - 1]`.
    pub fn new(dims: &[usize]) -> Self {
        LayerBuilder::from_config(PermuteConfig {
            dims: dims.to_vec(),
        })
    }
}

impl LayerConfig for PermuteConfig {
    const CLASS_NAME: &'static str = "Permute";
    const NAME_PREFIX: &'static str = "permute";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        let mut sorted = self.dims.clone();
        sorted.sort_unstable();
        if !sorted.iter().copied().eq(1..=sorted.len()) {
            return Err(Error::config(
                name,
                format!(
                    "dims {:?} must be a permutation of 1..={} (the axes after the batch)",
                    self.dims,
                    self.dims.len()
                ),
            ));
        }
        Ok(Arc::new(PermuteLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
        }))
    }
}

/// The layer a [`Permute`] builder makes.
pub struct PermuteLayer {
    base: LayerBase,
    config: PermuteConfig,
}

impl PermuteLayer {
    /// The full permutation (batch first) of an input of `rank`, which must fit `dims`.
    fn permutation(&self, rank: usize, got: impl std::fmt::Display) -> Result<Vec<usize>> {
        if rank != self.config.dims.len() + 1 {
            return Err(Error::shape(
                self.name(),
                format!("an input of rank {}", self.config.dims.len() + 1),
                got,
            ));
        }
        Ok(std::iter::once(0)
            .chain(self.config.dims.iter().copied())
            .collect())
    }
}

impl Layer for PermuteLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        <PermuteConfig as LayerConfig>::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        let perm = self.permutation(shape.rank(), shape)?;
        Ok(vec![SymbolicShape(
            perm.iter().map(|&axis| shape.dims()[axis]).collect(),
        )])
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        let perm = self.permutation(x.rank(), format!("{:?}", x.dims()))?;
        Ok(vec![x.permute(perm)?.contiguous()?])
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }

    /// The inverse permutation of the gradient, on every device.
    fn has_backward(&self, _device: &Device) -> bool {
        true
    }

    fn backward(
        &self,
        record: CallRecord,
        grad_outputs: &[Tensor],
        needs_input_grad: &[bool],
        _weight_grads: &mut WeightGrads,
    ) -> Result<Vec<Option<Tensor>>> {
        let (x, _, dy) = record.single(self.name(), grad_outputs)?;
        if !needs_input_grad.first().copied().unwrap_or(false) {
            return Ok(vec![None]);
        }
        let perm = self.permutation(x.rank(), format!("{:?}", x.dims()))?;
        let mut inverse = vec![0; perm.len()];
        for (i, &axis) in perm.iter().enumerate() {
            inverse[axis] = i;
        }
        Ok(vec![Some(dy.permute(inverse)?.contiguous()?)])
    }
}

/// The harness cases: a swap, a rotation of three axes, and a forward computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    let permute = |dims: &[usize]| Permute::new(dims).layer().expect("permute");
    // [[1, 2, 3], [4, 5, 6]] transposed.
    let x = Tensor::new(&[[[1f32, 2.0, 3.0], [4.0, 5.0, 6.0]]], &Device::Cpu).expect("x");
    vec![
        LayerCase::new(permute(&[2, 1]), &[&[2, 3]])
            .output_shapes(&["(None, 3, 2)"])
            .forward(vec![x], vec![vec![1., 4., 2., 5., 3., 6.]]),
        LayerCase::new(permute(&[3, 1, 2]), &[&[2, 3, 4]]).output_shapes(&["(None, 4, 2, 3)"]),
        LayerCase::new(permute(&[1]), &[&[5]]).output_shapes(&["(None, 5)"]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_must_be_a_permutation_from_one() {
        for bad in [&[0, 1][..], &[1, 1], &[1, 3]] {
            let err = Permute::new(bad).layer().err().unwrap().to_string();
            assert!(err.contains("permutation"), "{err}");
        }
        let x = crate::Input::new(&[2, 3, 4]);
        assert!(Permute::new(&[2, 1])(x).shape().is_err());
    }
}
