//! One training step: forward, loss, gradients (through candle's autograd or the layers' own
//! backward passes), optimizer update.

use candle_core::{Tensor, Var};
use rkeras_layers::layer::{CallRecord, WeightGrads};
use rkeras_layers::CallContext;
use rkeras_model::Model;

use super::batch_parts::{combined_loss, over_parts};
use super::gradient_sum::sum_gradient_terms;
use super::inputs::single_output;
use super::tracking::PartOutputs;
use crate::batches::Batch;
use crate::compile::Compiled;
use crate::losses::Loss;
use crate::{Error, Result};

/// The total loss of a batch (compiled loss + losses the call added + weight penalties) and
/// the prediction.
pub(crate) fn batch_loss(
    model: &Model,
    compiled: &Compiled,
    x: &Tensor,
    y: &Tensor,
    training: bool,
) -> Result<(Tensor, Tensor)> {
    let mut ctx = CallContext::new(training);
    let y_pred = single_output(model, model.forward_t(std::slice::from_ref(x), &mut ctx)?)?;
    let total = compiled.loss.compute(y, &y_pred)?;
    Ok((with_added_losses(total, &mut ctx, model)?, y_pred))
}

/// `loss` plus the losses the call added to `ctx` and the model's weight penalties.
fn with_added_losses(loss: Tensor, ctx: &mut CallContext, model: &Model) -> Result<Tensor> {
    with_penalties(with_call_losses(loss, ctx)?, model)
}

/// `loss` plus the losses the call added to `ctx`.
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

/// How a training step computes its gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepPath {
    /// candle's autograd over the whole step.
    Autograd,
    /// The layers' own backward passes (every layer has one, the model runs on the CPU, and the
    /// layers differentiate the losses their calls add, such as activity penalties): candle's
    /// autograd only over the loss and the weight penalties.
    LayerBackward,
}

#[cfg(test)]
thread_local! {
    /// Set by tests to run the autograd path on a model that could take the other one.
    static FORCE_AUTOGRAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The path `train_step` takes for `model`.
pub(crate) fn step_path(model: &Model) -> StepPath {
    #[cfg(test)]
    if FORCE_AUTOGRAD.get() {
        return StepPath::Autograd;
    }
    if model.device().is_cpu() && model.as_layer().has_backward() {
        StepPath::LayerBackward
    } else {
        StepPath::Autograd
    }
}

/// One optimizer step on one batch along `path` (from [`step_path`]); returns the batch loss
/// and, for the metrics, the targets and the (detached) prediction of each part of the batch
/// the step ran separately (in row order; one part when it ran whole).
pub(crate) fn train_step(
    model: &Model,
    compiled: &mut Compiled,
    trainable: &[Var],
    path: StepPath,
    batch: &Batch<'_>,
) -> Result<(f64, PartOutputs)> {
    match path {
        StepPath::Autograd => {
            let (x, y) = batch.take()?;
            autograd_step(model, compiled, trainable, &x, &y)
        }
        StepPath::LayerBackward => layer_backward_step(model, compiled, trainable, batch),
    }
}

/// The step through candle's autograd over the whole model.
fn autograd_step(
    model: &Model,
    compiled: &mut Compiled,
    trainable: &[Var],
    x: &Tensor,
    y: &Tensor,
) -> Result<(f64, PartOutputs)> {
    let (loss, y_pred, grads) = autograd_gradients(model, compiled, x, y)?;
    let pairs: Vec<(&Var, &Tensor)> = trainable
        .iter()
        .filter_map(|v| grads.get(v.as_tensor()).map(|g| (v, g)))
        .collect();
    compiled.optimizer.apply_gradients(&pairs)?;
    Ok((
        loss.to_scalar::<f32>()? as f64,
        vec![(y.clone(), y_pred.detach())],
    ))
}

/// The batch loss, the prediction and the gradients of everything the loss depends on, by
/// candle's autograd over the whole model.
fn autograd_gradients(
    model: &Model,
    compiled: &Compiled,
    x: &Tensor,
    y: &Tensor,
) -> Result<(Tensor, Tensor, candle_core::backprop::GradStore)> {
    let (loss, y_pred) = batch_loss(model, compiled, x, y, true)?;
    let grads = loss.backward()?;
    Ok((loss, y_pred, grads))
}

/// The step through the layers' own backward passes.
fn layer_backward_step(
    model: &Model,
    compiled: &mut Compiled,
    trainable: &[Var],
    batch: &Batch<'_>,
) -> Result<(f64, PartOutputs)> {
    let (total, y_pred, parts) = layer_gradients(model, compiled, trainable, batch)?;
    let gradients = sum_gradient_terms(&gradient_terms(&parts, trainable))?;
    let pairs: Vec<(&Var, &Tensor)> = gradients.iter().map(|(var, grad)| (*var, grad)).collect();
    compiled.optimizer.apply_gradients(&pairs)?;
    Ok((total.to_scalar::<f32>()? as f64, y_pred))
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
/// [`batch_parts`](super::batch_parts::batch_parts)) and the trainable weights' gradients in
/// parts through the layers' own backward passes: each part gathered, and its loss and
/// gradients computed by [`part_gradients`], on its own thread; the weight penalties' by
/// candle's autograd. [`sum_gradient_terms`] adds the parts up.
fn layer_gradients(
    model: &Model,
    compiled: &Compiled,
    trainable: &[Var],
    batch: &Batch<'_>,
) -> Result<(Tensor, PartOutputs, GradientParts)> {
    let loss_fn = compiled.loss.as_ref();
    let parts = over_parts(model, loss_fn, batch.len(), |rows| {
        let (x, y) = batch.take_part(rows)?;
        let (loss, y_pred, grads) = part_gradients(model, loss_fn, trainable, &x, &y)?;
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

/// The loss of one batch (or part of one) with the losses its call added (activity
/// penalties), its (detached) prediction and the trainable weights' gradients, without the
/// weight penalties: a forward that builds no candle graph and records what each layer needs;
/// the loss and its gradient from the loss's own kernel (from the logits when the output comes
/// from a sigmoid that kept them, as Keras does on TensorFlow) or else by candle's autograd over
/// the loss of a variable copy of the prediction; then the model's backward from the
/// prediction's (or its logits') gradient, in which the layers that added losses add their
/// gradients.
fn part_gradients(
    model: &Model,
    loss_fn: &dyn Loss,
    trainable: &[Var],
    x: &Tensor,
    y: &Tensor,
) -> Result<(Tensor, Tensor, WeightGrads)> {
    let mut ctx = CallContext::detached_training();
    let (mut record, y_pred) = recorded_forward(model, loss_fn, x, &mut ctx)?;
    if ctx.has_losses_for_autograd() {
        return Err(Error::Config(format!(
            "model '{}': a layer added a loss during a layer-level backward step, which only \
             candle's autograd can follow",
            model.name()
        )));
    }
    let (loss, grad) = if let Some(pair) = logits_loss(loss_fn, y, &record)? {
        record.set_grad_wrt_logits(0)?;
        pair
    } else if let Some(pair) = loss_fn.value_and_gradient(y, &y_pred)? {
        pair
    } else {
        let y_pred_var = Var::from_tensor(&y_pred)?;
        let loss = loss_fn.compute(y, y_pred_var.as_tensor())?;
        let grad = match loss.backward()?.get(y_pred_var.as_tensor()) {
            Some(grad) => grad.clone(),
            None => y_pred.zeros_like()?,
        };
        (loss.detach(), grad)
    };
    // The losses the layers added (activity penalties): their layers add their gradients.
    let loss = with_call_losses(loss, &mut ctx)?;
    let mut weight_grads = WeightGrads::new(trainable);
    model
        .as_layer()
        .backward(record, &[grad], &[false], &mut weight_grads)?;
    Ok((loss, y_pred, weight_grads))
}

/// `model` run on `x` in `ctx` for the layer-level path, keeping what its backward pass needs
/// (and the output's sigmoid logits where `loss_fn` reads them), and its one output.
pub(crate) fn recorded_forward(
    model: &Model,
    loss_fn: &dyn Loss,
    x: &Tensor,
    ctx: &mut CallContext,
) -> Result<(CallRecord, Tensor)> {
    ctx.set_keep_logits(loss_fn.reads_sigmoid_logits());
    let record = model
        .as_layer()
        .call_recorded(std::slice::from_ref(x), ctx)?;
    let y_pred = single_output(model, record.outputs.clone())?;
    Ok((record, y_pred))
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

/// The loss and its gradient with respect to the logits `record` kept for the model's
/// output, when the output is a sigmoid's that kept them and the loss has that form.
pub(crate) fn logits_loss(
    loss_fn: &dyn Loss,
    y: &Tensor,
    record: &CallRecord,
) -> Result<Option<(Tensor, Tensor)>> {
    match record.output_logits(0) {
        Some(logits) => loss_fn.value_and_gradient_from_sigmoid_logits(y, logits),
        None => Ok(None),
    }
}

#[cfg(test)]
#[path = "layer_backward_tests.rs"]
mod layer_backward_tests;
