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
