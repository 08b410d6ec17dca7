//! What the elementwise merge layers share (`keras/src/layers/merging/base_merge.py`): the
//! broadcasting rule for their inputs' shapes, and one layer type that runs any of them.
//!
//! Inputs of lower rank get axes of size 1 inserted right after the batch (Keras's
//! `expand_dims(x, axis=1)`), then every axis after the batch broadcasts as in NumPy (a size 1
//! stretches to the other size); the batch sizes must agree. The hand-written backward passes
//! sum each input's gradient back over the axes it was stretched along.

use std::marker::PhantomData;
use std::sync::Arc;

use candle_core::{Device, Tensor};

use crate::builder::{LayerBuilder, LayerConfig};
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// An elementwise merge (`Add`, `Maximum`...): its options type, which also says what the
/// merge computes and how it is differentiated.
pub trait Merge: LayerConfig + Default {
    /// Whether the merge takes exactly two inputs (`Subtract`) rather than one or more.
    const TWO_INPUTS: bool = false;

    /// The merge of `inputs`, all of one rank and broadcastable to each other.
    fn merge(inputs: &[Tensor]) -> candle_core::Result<Tensor>;

    /// The gradient of each of `inputs` (as [`Merge::merge`] got them), given the merge's
    /// `output` and its gradient `grad`; each may have the output's shape (the caller sums it
    /// back to the input's).
    fn gradients(
        inputs: &[Tensor],
        output: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Vec<Tensor>>;
}

impl<M: Merge> LayerBuilder<M> {
    /// The merge layer, called on a list: `Add::new()([a, b].into())`.
    pub fn new() -> Self {
        LayerBuilder::from_config(M::default())
    }
}

impl<M: Merge> Default for LayerBuilder<M> {
    fn default() -> Self {
        Self::new()
    }
}

/// The layer every elementwise merge builder makes, for the merge `M`.
pub struct MergeLayer<M> {
    base: LayerBase,
    merge: PhantomData<fn() -> M>,
}

impl<M: Merge> MergeLayer<M> {
    /// The layer, named `name` (what `LayerConfig::make` of a merge returns).
    pub fn made(name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        Ok(Arc::new(MergeLayer::<M> {
            base: LayerBase::new(name, trainable),
            merge: PhantomData,
        }))
    }

    /// Fails unless there are as many inputs as the merge takes.
    fn check_count(&self, count: usize) -> Result<()> {
        let (fits, wanted) = match M::TWO_INPUTS {
            true => (count == 2, "exactly 2 inputs"),
            false => (count >= 1, "at least 1 input"),
        };
        if fits {
            return Ok(());
        }
        Err(Error::config(
            self.name(),
            format!("a {} layer takes {wanted}, got {count}", M::CLASS_NAME),
        ))
    }
}

/// The shape of an elementwise merge of inputs of `shapes` (Keras's
/// `_compute_elemwise_op_output_shape` over the axes after the batch): an unknown size on either
/// side gives an unknown size, a size 1 gives the other one; the batch is the one the inputs
/// fix, if they do.
pub fn broadcast_shape(layer: &str, shapes: &[SymbolicShape]) -> Result<SymbolicShape> {
    let incompatible = || {
        let shapes: Vec<String> = shapes.iter().map(ToString::to_string).collect();
        Error::shape(
            layer,
            "inputs of one batch size whose other axes broadcast together",
            shapes.join(" and "),
        )
    };
    let rank = shapes.iter().map(SymbolicShape::rank).max().unwrap_or(0);
    if rank == 0 || shapes.iter().any(|s| s.rank() == 0) {
        return Err(incompatible());
    }
    let mut batch = None;
    let mut dims = vec![Some(1); rank - 1];
    for shape in shapes {
        if let Some(b) = shape.batch() {
            if batch.is_some_and(|known| known != b) {
                return Err(incompatible());
            }
            batch = Some(b);
        }
        let offset = rank - shape.rank();
        for (out, &d) in dims[offset..].iter_mut().zip(&shape.dims()[1..]) {
            *out = match (*out, d) {
                (None, _) | (_, None) => None,
                (Some(1), d) | (d, Some(1)) => d,
                (Some(a), Some(b)) if a == b => Some(a),
                _ => return Err(incompatible()),
            };
        }
    }
    let mut all = vec![batch];
    all.extend(dims);
    Ok(SymbolicShape(all))
}

/// The shape of a concrete tensor, batch included, as a symbolic shape.
pub fn known_shape(x: &Tensor) -> SymbolicShape {
    SymbolicShape(x.dims().iter().map(|&d| Some(d)).collect())
}

/// `inputs` brought to one rank by axes of size 1 right after the batch (views, no copies),
/// after checking that they broadcast together.
pub fn aligned(layer: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
    let shapes: Vec<SymbolicShape> = inputs.iter().map(known_shape).collect();
    let rank = broadcast_shape(layer, &shapes)?.rank();
    inputs
        .iter()
        .map(|x| {
            let mut dims = x.dims().to_vec();
            dims.splice(1..1, std::iter::repeat_n(1, rank - x.rank()));
            Ok(x.reshape(dims)?)
        })
        .collect()
}

/// The gradient of an input of shape `input` (before alignment), from `grad` of the merge's
/// output shape: summed over the axes the input was stretched along, in the input's shape.
pub fn unbroadcast(grad: &Tensor, input: &[usize]) -> Result<Tensor> {
    let added = grad
        .rank()
        .checked_sub(input.len())
        .filter(|_| !input.is_empty());
    let Some(added) = added else {
        return Err(Error::shape(
            "gradient",
            format!("a gradient for an input of shape {input:?}"),
            format!("{:?}", grad.dims()),
        ));
    };
    let mut aligned = input.to_vec();
    aligned.splice(1..1, std::iter::repeat_n(1, added));
    let stretched: Vec<usize> = (0..grad.rank())
        .filter(|&axis| aligned[axis] == 1 && grad.dims()[axis] != 1)
        .collect();
    let summed = match stretched.is_empty() {
        true => grad.clone(),
        false => grad.sum_keepdim(stretched)?,
    };
    Ok(summed.reshape(input)?)
}

/// The only output of a merge's call and its gradient, which must have the output's shape.
pub fn only_output<'a>(
    layer: &str,
    record: &'a CallRecord,
    grad_outputs: &'a [Tensor],
) -> Result<(&'a Tensor, &'a Tensor)> {
    match (&record.outputs[..], grad_outputs) {
        ([y], [dy]) if y.shape() == dy.shape() => Ok((y, dy)),
        _ => Err(Error::config(
            layer,
            format!(
                "backward expects one output and one gradient of its shape, got {} output(s) \
                 and {} gradient(s)",
                record.outputs.len(),
                grad_outputs.len()
            ),
        )),
    }
}

impl<M: Merge> Layer for MergeLayer<M> {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        M::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        self.check_count(inputs.len())?;
        Ok(vec![broadcast_shape(self.name(), inputs)?])
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        self.check_count(inputs.len())?;
        Ok(vec![M::merge(&aligned(self.name(), inputs)?)?])
    }

    fn config(&self) -> serde_json::Value {
        self.base.config()
    }

    /// Candle ops only: the same backward on every device.
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
        let (output, grad) = only_output(self.name(), &record, grad_outputs)?;
        let inputs = aligned(self.name(), &record.inputs)?;
        let grads = M::gradients(&inputs, output, grad)?;
        record
            .inputs
            .iter()
            .zip(grads)
            .zip(needs_input_grad.iter().chain(std::iter::repeat(&false)))
            .map(|((x, g), &need)| need.then(|| unbroadcast(&g, x.dims())).transpose())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(dims: &[Option<usize>]) -> SymbolicShape {
        SymbolicShape(dims.to_vec())
    }

    #[test]
    fn shapes_broadcast_as_keras_says() {
        let out = |shapes: &[SymbolicShape]| broadcast_shape("m", shapes).map(|s| s.to_string());
        let (a, b) = (shape(&[None, Some(3)]), shape(&[None, Some(2), Some(3)]));
        assert_eq!(out(&[a.clone(), b]).unwrap(), "(None, 2, 3)");
        let c = shape(&[Some(4), Some(1), Some(3)]);
        assert_eq!(out(&[c.clone(), a.clone()]).unwrap(), "(4, 1, 3)");
        assert_eq!(
            out(&[shape(&[None, None, Some(3)]), c]).unwrap(),
            "(4, None, 3)"
        );
        let err = out(&[a, shape(&[None, Some(4)])]).unwrap_err().to_string();
        assert!(err.contains("'m'") && err.contains("(None, 4)"), "{err}");
        assert!(out(&[shape(&[Some(2), Some(3)]), shape(&[Some(5), Some(3)])]).is_err());
    }

    #[test]
    fn gradients_are_summed_back_to_the_input_shape() {
        let grad = Tensor::arange(0f32, 12.0, &Device::Cpu)
            .and_then(|g| g.reshape((2, 2, 3)))
            .unwrap();
        // An input of shape (2, 3) was aligned to (2, 1, 3): rows summed.
        let g = unbroadcast(&grad, &[2, 3]).unwrap();
        assert_eq!(
            g.to_vec2::<f32>().unwrap(),
            [[3.0, 5.0, 7.0], [15.0, 17.0, 19.0]]
        );
        let g = unbroadcast(&grad, &[2, 2, 1]).unwrap();
        assert_eq!(
            g.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [3.0, 12.0, 21.0, 30.0]
        );
        assert_eq!(unbroadcast(&grad, &[2, 2, 3]).unwrap().dims(), &[2, 2, 3]);
    }
}
