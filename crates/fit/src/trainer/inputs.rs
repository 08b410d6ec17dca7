//! Checking what `fit`, `evaluate` and `predict` are given: sample counts, batch size, outputs.

use rkeras_model::Model;

use crate::arrays::Arrays;
use crate::{Error, Result};

/// Keras's default batch size.
pub const DEFAULT_BATCH_SIZE: usize = 32;

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

/// Checks that every array of `x` and `y` holds the same, non-zero number of samples, and
/// returns it.
pub(crate) fn check_samples(x: &Arrays, y: &Arrays, context: &str) -> Result<usize> {
    let rows = x.samples(&format!("{context}: x"))?;
    let targets = y.samples(&format!("{context}: y"))?;
    if rows != targets {
        let dims = |a: &Arrays| {
            a.tensors()
                .iter()
                .map(|t| t.dims().to_vec())
                .collect::<Vec<_>>()
        };
        return Err(Error::Shape {
            context: context.to_string(),
            expected: format!("x and y with the same number of samples (x: {:?})", dims(x)),
            got: format!("y: {:?}", dims(y)),
        });
    }
    Ok(rows)
}

/// Checks that `x` holds one array per model input, each fitting its input, batch aside: an
/// error naming `argument` (`x`, `validation_data`) and the shape expected.
pub(crate) fn check_inputs(model: &Model, x: &Arrays, argument: &str) -> Result<()> {
    let shapes = model.input_shapes();
    if x.len() != shapes.len() {
        return Err(Error::Config(format!(
            "{argument}: model '{}' takes {} input array(s), got {}",
            model.name(),
            shapes.len(),
            x.len()
        )));
    }
    for (shape, array) in shapes.iter().zip(x.tensors()) {
        let shape = shape.with_batch(None);
        if !shape.accepts(array.dims()) {
            return Err(Error::Shape {
                context: format!("{argument} for model '{}'", model.name()),
                expected: format!("samples shaped {shape}"),
                got: format!("{:?}", array.dims()),
            });
        }
    }
    Ok(())
}

/// Checks validation data against the training data, before training starts: as many `x` as
/// `y` samples, `x` fitting the model, each target shaped like the training targets.
pub(crate) fn check_validation(
    model: &Model,
    (vx, vy): (&Arrays, &Arrays),
    y: &Arrays,
) -> Result<()> {
    check_samples(vx, vy, "validation_data")?;
    check_inputs(model, vx, "validation_data")?;
    let same = vy.len() == y.len()
        && vy
            .tensors()
            .iter()
            .zip(y.tensors())
            .all(|(v, t)| v.dims().get(1..) == t.dims().get(1..));
    if !same {
        let dims = |a: &Arrays| {
            a.tensors()
                .iter()
                .map(|t| t.dims()[1..].to_vec())
                .collect::<Vec<_>>()
        };
        return Err(Error::Shape {
            context: "validation_data".into(),
            expected: format!("targets shaped like y's samples, {:?}", dims(y)),
            got: format!("{:?}", dims(vy)),
        });
    }
    Ok(())
}
