//! One training step, on every device: each part of the batch runs forward with every layer
//! call recorded, the loss and its gradient are taken at the output (see [`Head`]), the model
//! runs backward layer by layer (each layer by its own backward, or by candle's autograd over
//! its call), and the optimizer applies the gradients.

use candle_core::{Tensor, Var};
use rkeras_layers::record::{differentiate, record_call};
use rkeras_layers::session::{stream_key, with_stream};
use rkeras_layers::{CallContext, WeightGrads};
use rkeras_model::Model;

use super::batch_parts::{combined_loss, over_parts, Part};
use super::gradient_sum::sum_gradient_terms;
use super::head::Head;
use super::tracking::PartOutputs;
use crate::batches::Batch;
use crate::optimizers::Optimizer;
use crate::Result;

/// One optimizer step on one batch; returns the batch's losses and, for the metrics, the targets
/// and the (detached) predictions of each part of the batch the step ran separately (in row
/// order; one part when it ran whole). Random draws come from streams keyed by `stream`, the
/// step and the part.
pub(crate) fn train_step(
    head: &Head,
    model: &Model,
    optimizer: &mut dyn Optimizer,
    trainable: &[Var],
    batch: &Batch<'_>,
    stream: u64,
) -> Result<(BatchLosses, PartOutputs)> {
    let step = stream_key(stream, optimizer.iterations(), 0);
    let (losses, predictions, parts) = batch_gradients(head, model, trainable, batch, step)?;
    let gradients = sum_gradient_terms(&gradient_terms(&parts, trainable))?;
    let pairs: Vec<(&Var, &Tensor)> = gradients.iter().map(|(var, grad)| (*var, grad)).collect();
    optimizer.apply_gradients(&pairs)?;
    Ok((losses, predictions))
}

/// The gradients of a batch, as parts to be weighted by their shares and added: one per part
/// the batch ran in, and the weight penalties' (share 1) when the model has any.
pub(crate) type GradientParts = Vec<(f32, WeightGrads)>;

/// Each trainable variable that has a gradient, with its `(share, gradient)` terms in `parts`.
pub(crate) fn gradient_terms<'a>(
    parts: &'a GradientParts,
    trainable: &'a [Var],
) -> Vec<(&'a Var, Vec<(f32, &'a Tensor)>)> {
    trainable
        .iter()
        .filter_map(|var| {
            let terms: Vec<(f32, &Tensor)> = parts
                .iter()
                .filter_map(|(share, grads)| grads.get(var).map(|grad| (*share, grad)))
                .collect();
            (!terms.is_empty()).then_some((var, terms))
        })
        .collect()
}

/// The batch's losses, the targets and (detached) predictions of each part the batch ran in
/// (see [`over_parts`]) and the trainable weights' gradients in parts: each part gathered, and
/// its losses and gradients computed by [`part_gradients`] in its own random stream, on its own
/// thread; the weight penalties' by candle's autograd. [`sum_gradient_terms`] adds the parts
/// up.
pub(crate) fn batch_gradients(
    head: &Head,
    model: &Model,
    trainable: &[Var],
    batch: &Batch<'_>,
    step: u64,
) -> Result<(BatchLosses, PartOutputs, GradientParts)> {
    let parts = over_parts(head, batch.len(), |rows, part| {
        let (x, y, weights) = batch.take_part(rows)?;
        let mut ctx = CallContext::recording();
        if let Some(part) = part {
            ctx = ctx.in_batch_part(part);
        }
        let (total, output_losses, y_pred, grads) =
            with_stream(stream_key(step, rows.start as u64, 1), || {
                part_gradients(head, trainable, &x, &y, weights.as_deref(), ctx)
            })?;
        Ok((total, (output_losses, (y, y_pred), grads)))
    })?;
    let mut losses = BatchLosses::combined(&parts)?;
    let (predictions, mut gradients): (PartOutputs, GradientParts) = parts
        .into_iter()
        .map(|(part_share, _, (_, outputs, grads))| (outputs, (part_share, grads)))
        .unzip();
    if let Some(penalty) = penalty_sum(model)? {
        let autograd = penalty.backward()?;
        let mut penalty_grads = WeightGrads::new(trainable);
        for var in trainable {
            if let Some(grad) = autograd.get(var.as_tensor()) {
                penalty_grads.add(var, grad.clone())?;
            }
        }
        gradients.push((1.0, penalty_grads));
        losses.total = (losses.total + penalty.detach())?;
    }
    Ok((losses, predictions, gradients))
}

/// The losses of one batch (or part of one): the total (the outputs' weighted losses and the
/// losses the calls added; no weight penalties), each output's loss not multiplied by its loss
/// weight when there are several, the (detached) predictions and the trainable weights'
/// gradients, the model called with `ctx` (a recording context, for the batch's part when it
/// runs in parts that meet). `sample_weight`, when given, holds each output's sample weights.
fn part_gradients(
    head: &Head,
    trainable: &[Var],
    x: &[Tensor],
    y: &[Tensor],
    sample_weight: Option<&[Tensor]>,
    mut ctx: CallContext,
) -> Result<(Tensor, Vec<f32>, Vec<Tensor>, WeightGrads)> {
    let model = head.model().as_layer();
    let record = record_call(model.as_ref(), x, &mut ctx)?;
    check_targets(head, y)?;
    let mut total: Option<Tensor> = None;
    let (mut output_losses, mut grads, mut predictions) = (Vec::new(), Vec::new(), Vec::new());
    for (index, (output, y)) in record.outputs.iter().zip(y).enumerate() {
        let weights = sample_weight.map(|w| &w[index]);
        let (loss, grad) = head.value_and_gradient(index, y, output, weights)?;
        let weight = head.weight(index);
        let (weighted, grad) = if weight == 1.0 {
            (loss.clone(), grad)
        } else {
            ((&loss * weight)?, (grad * weight)?)
        };
        if head.output_count() > 1 {
            output_losses.push(loss.to_scalar::<f32>()?);
        }
        total = Some(match total {
            Some(total) => (total + weighted)?,
            None => weighted,
        });
        grads.push(grad);
        predictions.push(head.prediction(index, output)?);
    }
    let total = total.ok_or_else(|| crate::Error::Config("a model with no output".into()))?;
    let total = with_call_losses(total, &mut ctx)?;
    let mut weight_grads = WeightGrads::new(trainable);
    let needs_input_grad = vec![false; x.len()];
    differentiate(
        model.as_ref(),
        record,
        &grads,
        &needs_input_grad,
        &mut weight_grads,
    )?;
    Ok((total, output_losses, predictions, weight_grads))
}

/// Checks that there is one target array per model output.
pub(crate) fn check_targets(head: &Head, y: &[Tensor]) -> Result<()> {
    if y.len() == head.output_count() {
        return Ok(());
    }
    Err(crate::Error::Config(format!(
        "model '{}' has {} output(s), but {} target array(s) were given",
        head.model().name(),
        head.output_count(),
        y.len()
    )))
}

/// A batch's losses: the total (what Keras logs as `loss`) and, for a model with several
/// outputs, each output's unweighted loss (`<output>_loss`).
pub(crate) struct BatchLosses {
    /// The total loss, a scalar tensor.
    pub total: Tensor,
    /// Each output's loss, empty for a single-output model.
    pub outputs: Vec<f64>,
}

impl BatchLosses {
    /// The batch's losses from its parts': the share-weighted sums (the means over the batch),
    /// or the one part's own.
    pub fn combined<A, B>(parts: &[Part<(Vec<f32>, A, B)>]) -> Result<BatchLosses> {
        let total = combined_loss(parts)?;
        let count = parts
            .first()
            .map_or(0, |(_, _, (losses, _, _))| losses.len());
        let outputs = (0..count)
            .map(|i| {
                parts
                    .iter()
                    .map(|(part_share, _, (losses, _, _))| (*part_share * losses[i]) as f64)
                    .sum()
            })
            .collect();
        Ok(BatchLosses { total, outputs })
    }
}

/// `loss` plus the losses the calls made with `ctx` added.
pub(crate) fn with_call_losses(loss: Tensor, ctx: &mut CallContext) -> Result<Tensor> {
    let mut total = loss;
    for added in ctx.take_losses() {
        total = (total + added)?;
    }
    Ok(total)
}

/// `loss` plus the model's weight penalties.
pub(crate) fn with_penalties(loss: Tensor, model: &Model) -> Result<Tensor> {
    Ok(match penalty_sum(model)? {
        Some(penalty) => (loss + penalty)?,
        None => loss,
    })
}

/// The sum of the model's weight penalties, if it has any.
fn penalty_sum(model: &Model) -> Result<Option<Tensor>> {
    let mut sum: Option<Tensor> = None;
    for penalty in model.regularization_losses()? {
        sum = Some(match sum {
            Some(sum) => (sum + penalty)?,
            None => penalty,
        });
    }
    Ok(sum)
}

#[cfg(test)]
#[path = "gradient_tests.rs"]
mod gradient_tests;
