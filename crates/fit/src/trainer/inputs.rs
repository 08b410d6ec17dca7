//! Checking what `fit`, `evaluate` and `predict` are given: sample counts, batch size, outputs.

use candle_core::Tensor;
use rkeras_model::Model;

use crate::{Error, Result};

/// Keras's default batch size.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// The only output of a single-output model.
pub(crate) fn single_output(model: &Model, mut outputs: Vec<Tensor>) -> Result<Tensor> {
    match outputs.len() {
        1 => Ok(outputs.remove(0)),
        n => Err(Error::Config(format!(
            "model '{}' has {n} outputs; fit, evaluate and predict take single-output models",
            model.name()
        ))),
    }
}

/// The batch size to use: the input's fixed batch size if it has one (then `asked` must
/// match it), else `asked`, else 32.
pub(crate) fn resolve_batch_size(model: &Model, asked: Option<usize>) -> Result<usize> {
    let fixed = model.input_shapes().first().and_then(|s| s.batch());
    match (fixed, asked) {
        (_, Some(0)) => Err(Error::Config("batch_size must be positive".into())),
        (Some(fixed), Some(asked)) if fixed != asked => Err(Error::Config(format!(
            "model '{}' has an input with a fixed batch size of {fixed} ('{}'); batch_size {asked} cannot be used",
            model.name(),
            model.graph().input_layers[0].name()
        ))),
        (Some(fixed), _) => Ok(fixed),
        (None, Some(asked)) => Ok(asked),
        (None, None) => Ok(DEFAULT_BATCH_SIZE),
    }
}

/// Checks that `x` and `y` hold the same, non-zero number of samples.
pub(crate) fn check_samples(x: &Tensor, y: &Tensor, context: &str) -> Result<usize> {
    let (nx, ny) = (x.dims().first().copied(), y.dims().first().copied());
    match (nx, ny) {
        (Some(a), Some(b)) if a == b && a > 0 => Ok(a),
        _ => Err(Error::Shape {
            context: context.to_string(),
            expected: format!(
                "x and y with the same, non-zero number of samples (x has {:?})",
                x.dims()
            ),
            got: format!("y shaped {:?}", y.dims()),
        }),
    }
}
