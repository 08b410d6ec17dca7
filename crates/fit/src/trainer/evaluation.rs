//! `evaluate` and `predict` on arrays, in batches, without training.

use candle_core::Tensor;
use rkeras_layers::session::{stream_base, stream_key, with_stream};
use rkeras_layers::CallContext;
use rkeras_model::Model;

use super::batch_parts::over_parts;
use super::head::Head;
use super::inputs::{check_samples, resolve_batch_size};
use super::step::{check_targets, with_call_losses, with_penalties, BatchLosses};
use super::tracking::{PartOutputs, Tracker};
use crate::arrays::Arrays;
use crate::batches::{batch_count, Batch, BatchOrder, Rows};
use crate::callbacks::Logs;
use crate::compile::{model_output_shapes, Compiled};
use crate::{Error, Result};

/// Loss and metrics of `model` on `(x, y)`, in batches, without training, under `prefix`
/// (`""`, or `"val_"` for validation); the losses weighted by `sample_weight` (one array per
/// output, checked) when given.
pub(crate) fn evaluate_arrays(
    model: &Model,
    compiled: &Compiled,
    (x, y, sample_weight): (&Arrays, &Arrays, Option<&Arrays>),
    batch_size: usize,
    prefix: &str,
) -> Result<Logs> {
    let rows = check_samples(x, y, "evaluate")?;
    let mut tracker = Tracker::new(compiled, &model_output_shapes(model))?;
    let device = model.device();
    let head = Head::new(model, &compiled.outputs);
    let stream = stream_base();
    let mut order = BatchOrder::new(rows, false);
    for step in 0..batch_count(rows, batch_size) {
        let batch = Batch::new(x, y, order.next(batch_size), &device).weighted(sample_weight);
        let step = stream_key(stream, step as u64, 0);
        let (losses, parts) = evaluation_losses(&head, model, &batch, step)?;
        tracker.update(&losses, batch.len(), &parts)?;
    }
    Ok(tracker.logs(prefix))
}

/// The batch's losses (compiled losses, call losses, weight penalties) and the targets and
/// predictions of each part the batch ran in (see [`over_parts`]; each part gathers its own
/// rows and draws from its own random stream), without training, computed as training computes
/// them (see [`Head`]).
fn evaluation_losses(
    head: &Head,
    model: &Model,
    batch: &Batch<'_>,
    step: u64,
) -> Result<(BatchLosses, PartOutputs)> {
    let parts = over_parts(head, batch.len(), |range, _| {
        let (x, y, weights) = batch.take_part(range)?;
        let (total, output_losses, y_pred) =
            with_stream(stream_key(step, range.start as u64, 1), || {
                part_losses(head, &x, &y, weights.as_deref())
            })?;
        Ok((total, (output_losses, (y, y_pred), ())))
    })?;
    let mut losses = BatchLosses::combined(&parts)?;
    losses.total = with_penalties(losses.total, model)?;
    let predictions = parts
        .into_iter()
        .map(|(_, _, (_, outputs, ()))| outputs)
        .collect();
    Ok((losses, predictions))
}

/// The losses of a batch (or part of one): the total with the losses its calls added (no weight
/// penalties), each output's loss not multiplied by its loss weight when there are several, and
/// the predictions. `sample_weight`, when given, holds each output's sample weights.
fn part_losses(
    head: &Head,
    x: &[Tensor],
    y: &[Tensor],
    sample_weight: Option<&[Tensor]>,
) -> Result<(Tensor, Vec<f32>, Vec<Tensor>)> {
    let mut ctx = CallContext::new(false);
    let outputs = head.model().forward_t(x, &mut ctx)?;
    check_targets(head, y)?;
    let mut total: Option<Tensor> = None;
    let (mut output_losses, mut predictions) = (Vec::new(), Vec::new());
    for (index, (output, y)) in outputs.iter().zip(y).enumerate() {
        let loss = head.value(index, y, output, sample_weight.map(|w| &w[index]))?;
        let weight = head.weight(index);
        if head.output_count() > 1 {
            output_losses.push(loss.to_scalar::<f32>()?);
        }
        let weighted = if weight == 1.0 {
            loss
        } else {
            (loss * weight)?
        };
        total = Some(match total {
            Some(total) => (total + weighted)?,
            None => weighted,
        });
        predictions.push(head.prediction(index, output)?);
    }
    let total = total.ok_or_else(|| Error::Config("a model with no output".into()))?;
    Ok((
        with_call_losses(total, &mut ctx)?,
        output_losses,
        predictions,
    ))
}

/// Keras's `predict`: the model's outputs on `x`, computed in batches on the model's device and
/// returned on the device of `x`'s first array (as Keras returns host arrays for host inputs).
pub(crate) fn predict(model: &Model, x: &Arrays, batch_size: Option<usize>) -> Result<Vec<Tensor>> {
    let batch_size = resolve_batch_size(model, batch_size)?;
    let rows = x.samples("predict")?;
    let device = model.device();
    let home = x.tensors()[0].device().clone();
    let mut outputs: Vec<Vec<Tensor>> = Vec::new();
    let mut order = BatchOrder::new(rows, false);
    for _ in 0..batch_count(rows, batch_size) {
        let batch: Rows<'_> = order.next(batch_size);
        let xb = x
            .tensors()
            .iter()
            .map(|t| batch.take(t, &device))
            .collect::<Result<Vec<_>>>()?;
        // Detached: a kept output must not keep its batch's whole forward graph alive.
        let ys: Vec<Tensor> = model.forward(&xb)?.iter().map(Tensor::detach).collect();
        if outputs.is_empty() {
            outputs = vec![Vec::new(); ys.len()];
        }
        for (all, y) in outputs.iter_mut().zip(ys) {
            all.push(y);
        }
    }
    outputs
        .iter()
        .map(|parts| Ok(Tensor::cat(parts, 0)?.to_device(&home)?))
        .collect()
}
