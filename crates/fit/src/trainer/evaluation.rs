//! `evaluate` and `predict` on arrays, in batches, without training.

use candle_core::Tensor;
use rkeras_layers::CallContext;
use rkeras_model::Model;

use super::inputs::{check_samples, resolve_batch_size, single_output};
use super::step::{batch_loss, logits_loss, step_path, with_added_losses, StepPath};
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
    let path = step_path(model);
    let mut order = BatchOrder::new(rows, false);
    for _ in 0..batch_count(rows, batch_size) {
        let batch = order.next(batch_size);
        let (xb, yb) = batch.take_pair(x, y, &device)?;
        let (loss, y_pred) = evaluation_loss(model, compiled, path, &xb, &yb)?;
        tracker.update(loss.to_scalar::<f32>()? as f64, batch.len(), &yb, &y_pred)?;
    }
    Ok(tracker.logs(prefix))
}

/// The batch loss (compiled loss, call losses, weight penalties) and the prediction, without
/// training. Where training computes the loss from the output's sigmoid logits (the layer-level
/// path), so does evaluation, so that `loss` and `val_loss` are the same function.
fn evaluation_loss(
    model: &Model,
    compiled: &Compiled,
    path: StepPath,
    x: &Tensor,
    y: &Tensor,
) -> Result<(Tensor, Tensor)> {
    if path != StepPath::LayerBackward {
        return batch_loss(model, compiled, x, y, false);
    }
    let mut ctx = CallContext::new(false);
    ctx.set_keep_logits(true);
    let record = model
        .as_layer()
        .call_recorded(std::slice::from_ref(x), &mut ctx)?;
    let y_pred = single_output(model, record.outputs.clone())?;
    let loss = match logits_loss(compiled, y, &record)? {
        Some((loss, _)) => loss,
        None => compiled.loss.compute(y, &y_pred)?,
    };
    Ok((with_added_losses(loss, &mut ctx, model)?, y_pred))
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
