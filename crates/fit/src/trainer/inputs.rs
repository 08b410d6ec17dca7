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

/// Checks that `x` fits the model's (only) input, batch aside: an error naming `argument` (`x`,
/// `validation_data`) and the shape expected.
pub(crate) fn check_inputs(model: &Model, x: &Tensor, argument: &str) -> Result<()> {
    let shape = model.input_shapes()[0].with_batch(None);
    if shape.accepts(x.dims()) {
        return Ok(());
    }
    Err(Error::Shape {
        context: format!("{argument} for model '{}'", model.name()),
        expected: format!("samples shaped {shape}"),
        got: format!("{:?}", x.dims()),
    })
}

/// Checks validation data against the training data, before training starts: as many `x` as
/// `y` samples, `x` fitting the model, `y` shaped like the training targets.
pub(crate) fn check_validation(
    model: &Model,
    (vx, vy): (&Tensor, &Tensor),
    y: &Tensor,
) -> Result<()> {
    check_samples(vx, vy, "validation_data")?;
    check_inputs(model, vx, "validation_data")?;
    if vy.dims().get(1..) != y.dims().get(1..) {
        return Err(Error::Shape {
            context: "validation_data".into(),
            expected: format!("targets shaped like y's samples, (n, {:?})", &y.dims()[1..]),
            got: format!("{:?}", vy.dims()),
        });
    }
    Ok(())
}
