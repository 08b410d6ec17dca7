//! One training step, on every device: each part of the batch runs forward with every layer
//! call recorded, the loss and its gradient are taken at the output (see [`Head`]), the model
//! runs backward layer by layer (each layer by its own backward, or by candle's autograd over
//! its call), and the optimizer applies the gradients.

use candle_core::{Tensor, Var};
use rkeras_layers::record::{differentiate, record_call};
use rkeras_layers::session::{stream_key, with_stream};
use rkeras_layers::{CallContext, WeightGrads};
use rkeras_model::Model;

use super::batch_parts::{combined_loss, over_parts};
use super::gradient_sum::sum_gradient_terms;
use super::head::Head;
use super::inputs::single_output;
use super::tracking::PartOutputs;
use crate::batches::Batch;
use crate::optimizers::Optimizer;
use crate::Result;

/// One optimizer step on one batch; returns the batch loss and, for the metrics, the targets
/// and the (detached) prediction of each part of the batch the step ran separately (in row
/// order; one part when it ran whole). Random draws come from streams keyed by `stream`, the
/// step and the part.
pub(crate) fn train_step(
    head: &Head,
    model: &Model,
    optimizer: &mut dyn Optimizer,
    trainable: &[Var],
    batch: &Batch<'_>,
    stream: u64,
) -> Result<(f64, PartOutputs)> {
    let step = stream_key(stream, optimizer.iterations(), 0);
    let (total, predictions, parts) = batch_gradients(head, model, trainable, batch, step)?;
    let gradients = sum_gradient_terms(&gradient_terms(&parts, trainable))?;
    let pairs: Vec<(&Var, &Tensor)> = gradients.iter().map(|(var, grad)| (*var, grad)).collect();
    optimizer.apply_gradients(&pairs)?;
    Ok((total.to_scalar::<f32>()? as f64, predictions))
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

/// The batch loss, the targets and (detached) prediction of each part the batch ran in (see
/// [`over_parts`]) and the trainable weights' gradients in parts: each part gathered, and its
/// loss and gradients computed by [`part_gradients`] in its own random stream, on its own
/// thread; the weight penalties' by candle's autograd. [`sum_gradient_terms`] adds the parts
/// up.
pub(crate) fn batch_gradients(
    head: &Head,
    model: &Model,
    trainable: &[Var],
    batch: &Batch<'_>,
    step: u64,
) -> Result<(Tensor, PartOutputs, GradientParts)> {
    let parts = over_parts(head.model(), head.loss(), batch.len(), |rows| {
        let (x, y) = batch.take_part(rows)?;
        let (loss, y_pred, grads) = with_stream(stream_key(step, rows.start as u64, 1), || {
            part_gradients(head, trainable, &x, &y)
        })?;
        Ok((loss, ((y, y_pred), grads)))
    })?;
    let mut total = combined_loss(&parts)?;
    let (predictions, mut gradients): (PartOutputs, GradientParts) = parts
        .into_iter()
        .map(|(part_share, _, (y_pred, grads))| (y_pred, (part_share, grads)))
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
        total = (total + penalty.detach())?;
    }
    Ok((total, predictions, gradients))
}

/// The loss of one batch (or part of one) with the losses its calls added, its (detached)
/// prediction and the trainable weights' gradients, without the weight penalties.
fn part_gradients(
    head: &Head,
    trainable: &[Var],
    x: &Tensor,
    y: &Tensor,
) -> Result<(Tensor, Tensor, WeightGrads)> {
    let model = head.model().as_layer();
    let mut ctx = CallContext::recording();
    let record = record_call(model.as_ref(), std::slice::from_ref(x), &mut ctx)?;
    let output = single_output(head.model(), record.outputs.clone())?;
    let (loss, grad) = head.value_and_gradient(y, &output)?;
    let loss = with_call_losses(loss, &mut ctx)?;
    let mut weight_grads = WeightGrads::new(trainable);
    differentiate(model.as_ref(), record, &[grad], &[false], &mut weight_grads)?;
    Ok((loss, head.prediction(&output)?, weight_grads))
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
