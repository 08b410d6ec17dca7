//! `evaluate` and `predict` on arrays, in batches, without training.

use candle_core::Tensor;
use rkeras_layers::session::{stream_base, stream_key, with_stream};
use rkeras_layers::CallContext;
use rkeras_model::Model;

use super::batch_parts::{combined_loss, over_parts};
use super::head::Head;
use super::inputs::{check_samples, resolve_batch_size, single_output};
use super::step::{with_call_losses, with_penalties};
use super::tracking::{PartOutputs, Tracker};
use crate::batches::{batch_count, Batch, BatchOrder, Rows};
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
    let head = Head::new(model, &compiled.loss);
    let stream = stream_base();
    let mut order = BatchOrder::new(rows, false);
    for step in 0..batch_count(rows, batch_size) {
        let batch = Batch::new(x, y, order.next(batch_size), &device);
        let step = stream_key(stream, step as u64, 0);
        let (loss, parts) = evaluation_loss(&head, model, &batch, step)?;
        tracker.update(loss.to_scalar::<f32>()? as f64, batch.len(), &parts)?;
    }
    Ok(tracker.logs(prefix))
}

/// The batch loss (compiled loss, call losses, weight penalties) and the targets and prediction
/// of each part the batch ran in (see [`over_parts`]; each part gathers its own rows and draws
/// from its own random stream), without training, computed as training computes it (see
/// [`Head`]).
fn evaluation_loss(
    head: &Head,
    model: &Model,
    batch: &Batch<'_>,
    step: u64,
) -> Result<(Tensor, PartOutputs)> {
    let parts = over_parts(head.model(), head.loss(), batch.len(), |range| {
        let (x, y) = batch.take_part(range)?;
        let (loss, y_pred) = with_stream(stream_key(step, range.start as u64, 1), || {
            part_loss(head, &x, &y)
        })?;
        Ok((loss, (y, y_pred)))
    })?;
    let loss = combined_loss(&parts)?;
    let predictions = parts.into_iter().map(|(_, _, outputs)| outputs).collect();
    Ok((with_penalties(loss, model)?, predictions))
}

/// The loss of a batch (or part of one) with the losses its calls added, without the weight
/// penalties, and its prediction.
fn part_loss(head: &Head, x: &Tensor, y: &Tensor) -> Result<(Tensor, Tensor)> {
    let mut ctx = CallContext::new(false);
    let outputs = head.model().forward_t(std::slice::from_ref(x), &mut ctx)?;
    let output = single_output(head.model(), outputs)?;
    let loss = head.value(y, &output)?;
    Ok((with_call_losses(loss, &mut ctx)?, head.prediction(&output)?))
}

/// Keras's `predict`: the model's output on `x`, computed in batches on the model's device
/// and returned on `x`'s (as Keras returns host arrays for host inputs).
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
    Ok(Tensor::cat(&outputs, 0)?.to_device(x.device())?)
}
