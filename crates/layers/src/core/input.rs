//! `Input`: where a functional graph starts (Keras's `keras.Input` and `InputLayer`).

use std::sync::Arc;

use candle_core::Tensor;
use serde_json::json;

use crate::layer_base_methods;
use crate::session::unique_name;
use crate::symbolic::{call_layer, SymbolicTensor};
use crate::{builder::first_output, CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// The layer behind a symbolic input: it passes its tensor through, checking its shape.
pub struct InputLayer {
    base: LayerBase,
    shape: SymbolicShape,
}

impl InputLayer {
    /// An input layer named `name` for tensors of `shape` (batch first).
    pub fn new(name: String, shape: SymbolicShape) -> Self {
        InputLayer {
            base: LayerBase::new(name, true),
            shape,
        }
    }

    /// The shape its tensors must have, batch first.
    pub fn shape(&self) -> &SymbolicShape {
        &self.shape
    }
}

impl Layer for InputLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        "InputLayer"
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        if !inputs.is_empty() {
            return Err(Error::config(self.name(), "an input layer takes no inputs"));
        }
        Ok(vec![self.shape.clone()])
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = crate::layer::single_input(self.name(), inputs)?;
        if !self.shape.accepts(x.dims()) {
            return Err(Error::shape(
                self.name(),
                &self.shape,
                format!("{:?}", x.dims()),
            ));
        }
        Ok(vec![x.clone()])
    }

    fn config(&self) -> serde_json::Value {
        json!({ "name": self.name(), "batch_shape": self.shape })
    }
}

/// Makes symbolic inputs: `let input = Input::new(&[28, 28, 1]);` is Keras's
/// `Input(shape=(28, 28, 1))`.
pub struct Input;

impl Input {
    /// An input for tensors shaped `(batch, shape...)`, any batch size.
    // Keras's `Input(...)` returns a symbolic tensor, not an input object: so does this.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(shape: &[usize]) -> SymbolicTensor {
        Input::from_shape(SymbolicShape::batched(None, shape), None)
    }

    /// An input with a fixed batch size: `batch_shape[0]` is the batch
    /// (Keras's `Input(batch_shape=(16, 28, 28, 1))`).
    pub fn batch_shape(batch_shape: &[usize]) -> SymbolicTensor {
        match batch_shape.split_first() {
            Some((&batch, dims)) => {
                Input::from_shape(SymbolicShape::batched(Some(batch), dims), None)
            }
            None => SymbolicTensor::failed(Error::config(
                "input_layer",
                "batch_shape needs at least the batch dimension",
            )),
        }
    }

    /// A named input for tensors shaped `(batch, shape...)`.
    pub fn named(name: &str, shape: &[usize]) -> SymbolicTensor {
        Input::from_shape(SymbolicShape::batched(None, shape), Some(name.to_string()))
    }

    /// An input of any symbolic shape (batch first; unknown dimensions allowed), optionally named.
    pub fn from_shape(shape: SymbolicShape, name: Option<String>) -> SymbolicTensor {
        let name = name.unwrap_or_else(|| unique_name("input_layer"));
        let layer: Arc<dyn Layer> = Arc::new(InputLayer::new(name, shape));
        first_output(call_layer(&layer, &[]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_has_a_free_or_fixed_batch() {
        assert_eq!(
            Input::new(&[28, 28, 1]).shape().unwrap().to_string(),
            "(None, 28, 28, 1)"
        );
        assert_eq!(
            Input::batch_shape(&[16, 28, 28, 1])
                .shape()
                .unwrap()
                .to_string(),
            "(16, 28, 28, 1)"
        );
        assert!(Input::batch_shape(&[]).shape().is_err());
    }

    #[test]
    fn a_zero_sized_dimension_is_refused_when_the_input_is_made() {
        for dims in [&[0][..], &[28, 0, 1]] {
            let err = Input::new(dims).shape().unwrap_err().to_string();
            assert!(
                err.contains("input_layer") && err.contains("size 0"),
                "{err}"
            );
        }
        assert!(Input::batch_shape(&[0, 3]).shape().is_err());
    }
}
