//! `evaluate` and `predict` on arrays, in batches, without training.

use candle_core::Tensor;
use rkeras_model::Model;

use super::inputs::{check_samples, resolve_batch_size, single_output};
use super::step::batch_loss;
use super::tracking::Tracker;
use crate::batches::{batch_count, BatchOrder, Rows};
use crate::callbacks::Logs;
use crate::compile::Compiled;
use crate::{Error, Result};

/// Loss and metrics of `model` on `(x, y)`, in batches, without training.
pub(crate) fn evaluate_arrays(
    model: &Model,
    compiled: &Compiled,
    x: &Tensor,
    y: &Tensor,
    batch_size: usize,
    prefix: &str,
) -> Result<Logs> {
    let rows = check_samples(x, y, "evaluate")?;
    let output_shape = model.output_shapes()[0]
        .dims()
        .iter()
        .map(|d| d.unwrap_or(1))
        .collect::<Vec<_>>();
    let mut tracker = Tracker::new(compiled.make_metrics(&output_shape)?);
    let device = model.device();
    let mut order = BatchOrder::new(rows, false);
    for _ in 0..batch_count(rows, batch_size) {
        let batch = order.next(batch_size);
        let (xb, yb) = batch.take_pair(x, y, &device)?;
        let (loss, y_pred) = batch_loss(model, compiled, &xb, &yb, false)?;
        tracker.update(loss.to_scalar::<f32>()? as f64, batch.len(), &yb, &y_pred)?;
    }
    Ok(tracker.logs(prefix))
}

/// Keras's `predict`: the model's output on `x`, computed in batches.
pub(crate) fn predict(model: &Model, x: &Tensor, batch_size: Option<usize>) -> Result<Tensor> {
    let batch_size = resolve_batch_size(model, batch_size)?;
    let rows = x.dims().first().copied().unwrap_or(0);
    if rows == 0 {
        return Err(Error::Shape {
            context: "predict".into(),
            expected: "at least one sample".into(),
            got: format!("{:?}", x.dims()),
        });
    }
    let device = model.device();
    let mut outputs = Vec::with_capacity(batch_count(rows, batch_size));
    let mut order = BatchOrder::new(rows, false);
    for _ in 0..batch_count(rows, batch_size) {
        let batch: Rows<'_> = order.next(batch_size);
        let xb = batch.take(x, &device)?;
        // Detached: a kept output must not keep its batch's whole forward graph alive.
        outputs.push(single_output(model, model.forward(&[xb])?)?.detach());
    }
    Ok(Tensor::cat(&outputs, 0)?)
}
