//! `Concatenate`: joins its inputs along one axis (`keras/src/layers/merging/concatenate.py`);
//! every other axis must agree (no broadcasting). The batch axis cannot be joined: a sample of
//! the output must be made of that sample of each input.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::base_merge::{known_shape, only_output};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::layer::config_with_name;
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// `Concatenate`'s options, with Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConcatenateConfig {
    /// The axis to join along, batch included, negative from the end (default -1).
    pub axis: isize,
}

/// Joins a list of inputs: `Concatenate::new(-1)([a, b].into())`, or
/// [`concatenate`](fn@super::concatenate)`(&[a, b], -1)`.
pub type Concatenate = LayerBuilder<ConcatenateConfig>;

impl Concatenate {
    /// Joining along `axis` (batch included; Keras's default is -1, the last).
    pub fn new(axis: isize) -> Self {
        LayerBuilder::from_config(ConcatenateConfig { axis })
    }
}

impl Default for Concatenate {
    fn default() -> Self {
        Concatenate::new(-1)
    }
}

impl LayerConfig for ConcatenateConfig {
    const CLASS_NAME: &'static str = "Concatenate";
    const NAME_PREFIX: &'static str = "concatenate";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        if self.axis == 0 {
            return Err(Error::config(
                name,
                "cannot concatenate along the batch axis (axis 0)",
            ));
        }
        Ok(Arc::new(ConcatenateLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
        }))
    }
}

/// The layer a [`Concatenate`] builder makes.
pub struct ConcatenateLayer {
    base: LayerBase,
    config: ConcatenateConfig,
}

impl ConcatenateLayer {
    /// The axis to join inputs of `rank` along, or why it is not one.
    fn axis(&self, rank: usize) -> Result<usize> {
        let axis = self.config.axis;
        let resolved = if axis < 0 {
            rank.checked_sub(axis.unsigned_abs())
        } else {
            Some(axis as usize)
        };
        match resolved {
            Some(a) if a >= 1 && a < rank => Ok(a),
            _ => Err(Error::config(
                self.name(),
                format!("axis {axis} is not an axis after the batch of inputs of rank {rank}"),
            )),
        }
    }

    /// The axis to join inputs of `shapes` along, once they are checked to agree elsewhere
    /// (an unknown size agrees with any); returns it with the joined size, if known.
    fn check(&self, shapes: &[SymbolicShape]) -> Result<(usize, Option<usize>)> {
        let mismatch = || {
            let shapes: Vec<String> = shapes.iter().map(ToString::to_string).collect();
            Error::shape(
                self.name(),
                format!(
                    "inputs of one rank whose shapes agree except along axis {}",
                    self.config.axis
                ),
                shapes.join(" and "),
            )
        };
        let first = shapes.first().ok_or_else(|| {
            Error::config(self.name(), "a Concatenate layer takes at least 1 input")
        })?;
        let axis = self.axis(first.rank())?;
        let mut joined = Some(0usize);
        for shape in shapes {
            if shape.rank() != first.rank() {
                return Err(mismatch());
            }
            for (i, (a, b)) in first.dims().iter().zip(shape.dims()).enumerate() {
                if i != axis && matches!((a, b), (Some(a), Some(b)) if a != b) {
                    return Err(mismatch());
                }
            }
            joined = joined.zip(shape.dims()[axis]).map(|(sum, d)| sum + d);
        }
        Ok((axis, joined))
    }
}

impl Layer for ConcatenateLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        <ConcatenateConfig as LayerConfig>::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let (axis, joined) = self.check(inputs)?;
        let mut dims = inputs[0].dims().to_vec();
        dims[axis] = joined;
        Ok(vec![SymbolicShape(dims)])
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let shapes: Vec<SymbolicShape> = inputs.iter().map(known_shape).collect();
        let (axis, _) = self.check(&shapes)?;
        Ok(vec![Tensor::cat(inputs, axis)?])
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }

    /// Slices of the gradient, on every device.
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
        let (_, grad) = only_output(self.name(), &record, grad_outputs)?;
        let axis = self.axis(grad.rank())?;
        let mut start = 0;
        let mut needs = needs_input_grad.iter().chain(std::iter::repeat(&false));
        record
            .inputs
            .iter()
            .map(|x| {
                let len = x.dims().get(axis).copied().unwrap_or(0);
                let slice = match needs.next() {
                    Some(true) => Some(grad.narrow(axis, start, len)?),
                    _ => None,
                };
                start += len;
                Ok(slice)
            })
            .collect()
    }
}

/// The harness cases: the default last axis, a middle axis, and three inputs.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use super::testing::{input, merge_case};
    vec![
        // [1, 2] ++ [3, 4, 5] = [1, 2, 3, 4, 5].
        merge_case(Concatenate::default(), &[&[2], &[3]], "(None, 5)").forward(
            vec![input(&[1., 2.], &[2]), input(&[3., 4., 5.], &[3])],
            vec![vec![1., 2., 3., 4., 5.]],
        ),
        // Along axis 1 of (1, 2) and (2, 2): the rows of the first, then of the second.
        merge_case(Concatenate::new(1), &[&[1, 2], &[2, 2]], "(None, 3, 2)").forward(
            vec![input(&[1., 2.], &[1, 2]), input(&[3., 4., 5., 6.], &[2, 2])],
            vec![vec![1., 2., 3., 4., 5., 6.]],
        ),
        // Along axis -2 of three (2, 1, 3) inputs: (None, 2, 3, 3).
        merge_case(
            Concatenate::new(-2),
            &[&[2, 1, 3], &[2, 1, 3], &[2, 1, 3]],
            "(None, 2, 3, 3)",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Input;

    #[test]
    fn refuses_mismatched_shapes_and_axes() {
        let (a, b) = (Input::new(&[2, 3]), Input::new(&[4, 3]));
        let err = Concatenate::new(-1)([a, b].into()).shape().unwrap_err();
        assert!(err.to_string().contains("agree except"), "{err}");
        assert_eq!(
            Concatenate::new(1)([a, b].into())
                .shape()
                .unwrap()
                .to_string(),
            "(None, 6, 3)"
        );
        assert!(Concatenate::new(3)([a, b].into()).shape().is_err());
        assert!(Concatenate::new(-3)([a, b].into()).shape().is_err());
        let batch = Concatenate::new(0).layer().err().unwrap().to_string();
        assert!(batch.contains("batch"), "{batch}");
        let c = Input::new(&[2]);
        assert!(Concatenate::new(-1)([a, c].into()).shape().is_err());
    }
}
