//! Helpers for the merge layers' harness cases.

use candle_core::{Device, Tensor};

use crate::builder::{LayerBuilder, LayerConfig};
use crate::testing::LayerCase;

/// A batch of one sample holding `values` in the shape `dims` (batch excluded).
pub(crate) fn input(values: &[f32], dims: &[usize]) -> Tensor {
    let mut shape = vec![1];
    shape.extend_from_slice(dims);
    Tensor::from_slice(values, shape, &Device::Cpu).expect("input")
}

/// A case for the layer `builder` makes, on inputs of `shapes`, with one output printed as
/// `output` and no weights.
pub(crate) fn merge_case<C: LayerConfig>(
    builder: LayerBuilder<C>,
    shapes: &[&[usize]],
    output: &str,
) -> LayerCase {
    LayerCase::new(builder.layer().expect("layer"), shapes).output_shapes(&[output])
}
