//! Merge layers (`keras/src/layers/merging/`): `Add`, `Subtract`, `Multiply`, `Average`,
//! `Maximum`, `Minimum`, `Concatenate` and `Dot`, called on a list of inputs
//! (`Add::new()([a, b].into())`), and Keras's functional forms of them (`add(&[a, b])`).

pub mod add;
pub mod average;
pub mod base_merge;
pub mod concatenate;
pub mod dot;
pub mod maximum;
pub mod minimum;
pub mod multiply;
pub mod subtract;
#[cfg(test)]
mod testing;

use crate::symbolic::SymbolicTensor;

use add::Add;
use average::Average;
use concatenate::Concatenate;
use dot::{Dot, DotAxes};
use maximum::Maximum;
use minimum::Minimum;
use multiply::Multiply;
use subtract::Subtract;

/// The elementwise sum of `inputs` (Keras's `keras.layers.add`).
pub fn add(inputs: &[SymbolicTensor]) -> SymbolicTensor {
    Add::new()(inputs.into())
}

/// The difference of two inputs, `inputs[0] - inputs[1]` (Keras's `keras.layers.subtract`).
pub fn subtract(inputs: &[SymbolicTensor]) -> SymbolicTensor {
    Subtract::new()(inputs.into())
}

/// The elementwise product of `inputs` (Keras's `keras.layers.multiply`).
pub fn multiply(inputs: &[SymbolicTensor]) -> SymbolicTensor {
    Multiply::new()(inputs.into())
}

/// The elementwise mean of `inputs` (Keras's `keras.layers.average`).
pub fn average(inputs: &[SymbolicTensor]) -> SymbolicTensor {
    Average::new()(inputs.into())
}

/// The elementwise maximum of `inputs` (Keras's `keras.layers.maximum`).
pub fn maximum(inputs: &[SymbolicTensor]) -> SymbolicTensor {
    Maximum::new()(inputs.into())
}

/// The elementwise minimum of `inputs` (Keras's `keras.layers.minimum`).
pub fn minimum(inputs: &[SymbolicTensor]) -> SymbolicTensor {
    Minimum::new()(inputs.into())
}

/// `inputs` joined along `axis` (Keras's `keras.layers.concatenate`; Keras's default is -1).
pub fn concatenate(inputs: &[SymbolicTensor], axis: isize) -> SymbolicTensor {
    Concatenate::new(axis)(inputs.into())
}

/// The batchwise dot product of two inputs along `axes` (Keras's `keras.layers.dot`).
pub fn dot(inputs: &[SymbolicTensor], axes: impl Into<DotAxes>) -> SymbolicTensor {
    Dot::new(axes)(inputs.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Input;

    #[test]
    fn functional_forms_make_one_layer_per_call_with_keras_shapes() {
        let (a, b) = (Input::new(&[3]), Input::new(&[2, 3]));
        let shape = |t: SymbolicTensor| t.shape().map(|s| s.to_string()).unwrap();
        assert_eq!(shape(add(&[a, b])), "(None, 2, 3)");
        assert_eq!(shape(subtract(&[b, a])), "(None, 2, 3)");
        assert_eq!(shape(multiply(&[a, a, a])), "(None, 3)");
        assert_eq!(shape(average(&[a, b])), "(None, 2, 3)");
        assert_eq!(shape(maximum(&[a, b])), "(None, 2, 3)");
        assert_eq!(shape(minimum(&[b, a])), "(None, 2, 3)");
        assert_eq!(shape(concatenate(&[b, b], 1)), "(None, 4, 3)");
        assert_eq!(shape(dot(&[a, b], (1, 2))), "(None, 2)");
        let (first, second) = (add(&[a, a]), add(&[a, a]));
        let layer = |t: SymbolicTensor| t.producer().unwrap().unwrap().layer.name().to_string();
        assert_ne!(layer(first), layer(second));
        assert!(subtract(&[a, a, a]).shape().is_err());
    }
}
