//! Recording a training call and differentiating it: through the layer's hand-written
//! [`Layer::backward`], or by candle's autograd over that one call (the default, which every
//! layer without a hand-written backward gets).

use std::any::Any;
use std::collections::HashMap;

use candle_core::{Device, Tensor, TensorId, Var};

use crate::{CallContext, Error, Layer, Result};

/// What a training call keeps for its backward pass: its inputs, its outputs, what the layer
/// saved ([`CallContext::save`]) and, for a call differentiated by candle's autograd, that
/// call's own small graph.
pub struct CallRecord {
    /// The tensors the call read.
    pub inputs: Vec<Tensor>,
    /// The tensors the call returned (detached).
    pub outputs: Vec<Tensor>,
    /// What the layer saved for its backward pass (a nested model keeps its nodes' records).
    pub state: Option<Box<dyn Any + Send + Sync>>,
    local: Option<LocalGraph>,
}

/// A call run on variable copies of its inputs with its weights tracked: candle's graph of that
/// call alone, and the losses the call added, still differentiable.
struct LocalGraph {
    inputs: Vec<Option<Var>>,
    outputs: Vec<Tensor>,
    losses: Vec<Tensor>,
}

impl CallRecord {
    /// A record of `inputs` and `outputs` with no saved state (for tests of a backward pass).
    pub fn new(inputs: Vec<Tensor>, outputs: Vec<Tensor>) -> Self {
        CallRecord {
            inputs,
            outputs,
            state: None,
            local: None,
        }
    }

    /// Whether the call is differentiated by candle's autograd rather than by the layer.
    pub fn is_differentiated_by_autograd(&self) -> bool {
        self.local.is_some()
    }

    /// The saved state of type `T`, or an error naming `layer` when the call saved none.
    pub fn saved<T: 'static>(&self, layer: &str) -> Result<&T> {
        self.saved_if::<T>()
            .ok_or_else(|| Error::config(layer, "backward without the state its call saved"))
    }

    /// The state the call saved, if it saved one of type `T` (an activation's pre-activation,
    /// saved only for activations whose derivative needs it).
    pub fn saved_if<T: 'static>(&self) -> Option<&T> {
        self.state.as_ref().and_then(|s| s.downcast_ref::<T>())
    }

    /// The only input and output and the only output gradient of a single-input layer's call,
    /// or an error naming the layer.
    pub fn single<'a>(
        &'a self,
        layer: &str,
        grad_outputs: &'a [Tensor],
    ) -> Result<(&'a Tensor, &'a Tensor, &'a Tensor)> {
        match (&self.inputs[..], &self.outputs[..], grad_outputs) {
            ([x], [y], [dy]) if y.shape() == dy.shape() => Ok((x, y, dy)),
            _ => Err(Error::config(
                layer,
                format!(
                    "backward expects one input, one output and one output gradient of the \
                     output's shape, got {} input(s), {} output(s) and {} gradient(s)",
                    self.inputs.len(),
                    self.outputs.len(),
                    grad_outputs.len()
                ),
            )),
        }
    }
}

/// Runs `layer` on `inputs` for training and keeps what its backward pass needs.
///
/// A layer with a hand-written backward on the inputs' device runs as it is, with detached
/// weights, keeping what it saves. Any other layer runs on variable copies of its (float)
/// inputs with its weights tracked, so that [`differentiate`] can run candle's autograd over
/// that call alone: a random call is then differentiated as drawn, never drawn again. Either
/// way the losses the call adds stay in `ctx` (detached for the second kind, whose tracked
/// copies the record keeps).
pub fn record_call(
    layer: &dyn Layer,
    inputs: &[Tensor],
    ctx: &mut CallContext,
) -> Result<CallRecord> {
    let device = inputs.first().map_or(Device::Cpu, |x| x.device().clone());
    if layer.has_backward(&device) {
        let (outputs, state) = ctx.saving(|ctx| layer.call(inputs, ctx));
        return Ok(CallRecord {
            inputs: inputs.to_vec(),
            outputs: outputs?,
            state,
            local: None,
        });
    }
    record_for_autograd(layer, inputs, ctx)
}

/// Runs `layer` on variable copies of its (float) inputs with its weights tracked, keeping the
/// call's own graph for [`differentiate_locally`] (what [`record_call`] does for a layer without
/// a hand-written backward).
pub(crate) fn record_for_autograd<L: Layer + ?Sized>(
    layer: &L,
    inputs: &[Tensor],
    ctx: &mut CallContext,
) -> Result<CallRecord> {
    let variables = inputs
        .iter()
        .map(|x| {
            x.dtype()
                .is_float()
                .then(|| Var::from_tensor(&x.detach()))
                .transpose()
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    let tracked_inputs: Vec<Tensor> = variables
        .iter()
        .zip(inputs)
        .map(|(var, x)| {
            var.as_ref()
                .map_or_else(|| x.clone(), |v| v.as_tensor().clone())
        })
        .collect();
    let (outputs, losses) = ctx.tracked(|ctx| layer.call(&tracked_inputs, ctx));
    let outputs = outputs?;
    for loss in &losses {
        ctx.add_loss(loss.detach());
    }
    Ok(CallRecord {
        inputs: inputs.to_vec(),
        outputs: outputs.iter().map(Tensor::detach).collect(),
        state: None,
        local: Some(LocalGraph {
            inputs: variables,
            outputs,
            losses,
        }),
    })
}

/// The backward pass of a call recorded by [`record_call`]: the gradients of its inputs
/// (`None` where `needs_input_grad` is false), adding those of its trainable weights to
/// `weight_grads`, given the gradients of its outputs.
pub fn differentiate(
    layer: &dyn Layer,
    record: CallRecord,
    grad_outputs: &[Tensor],
    needs_input_grad: &[bool],
    weight_grads: &mut WeightGrads,
) -> Result<Vec<Option<Tensor>>> {
    if record.is_differentiated_by_autograd() {
        differentiate_locally(layer, record, grad_outputs, needs_input_grad, weight_grads)
    } else {
        layer.backward(record, grad_outputs, needs_input_grad, weight_grads)
    }
}

/// [`Layer::backward`]'s default: candle's autograd over the recorded call's own graph, from
/// `sum(output · its gradient)` plus the losses the call added.
pub fn differentiate_locally<L: Layer + ?Sized>(
    layer: &L,
    record: CallRecord,
    grad_outputs: &[Tensor],
    needs_input_grad: &[bool],
    weight_grads: &mut WeightGrads,
) -> Result<Vec<Option<Tensor>>> {
    let graph = record.local.ok_or_else(|| {
        Error::config(
            layer.name(),
            format!(
                "{} has a hand-written backward, but its call was recorded for autograd",
                layer.class_name()
            ),
        )
    })?;
    if grad_outputs.len() != graph.outputs.len() {
        return Err(Error::config(
            layer.name(),
            format!(
                "backward got {} output gradient(s) for {} output(s)",
                grad_outputs.len(),
                graph.outputs.len()
            ),
        ));
    }
    let mut terms = Vec::new();
    for (y, dy) in graph.outputs.iter().zip(grad_outputs) {
        if y.track_op() {
            terms.push((y * dy.detach())?.sum_all()?);
        }
    }
    terms.extend(graph.losses.into_iter().filter(Tensor::track_op));
    let Some(objective) = sum(terms)? else {
        return Ok(vec![None; graph.inputs.len()]);
    };
    let grads = objective.backward()?;
    for weight in layer.weights() {
        if let Some(grad) = grads.get(weight.var.as_tensor()) {
            weight_grads.add(&weight.var, grad.clone())?;
        }
    }
    graph
        .inputs
        .iter()
        .zip(needs_input_grad.iter().chain(std::iter::repeat(&false)))
        .map(|(var, &need)| match var {
            Some(var) if need => Ok(Some(match grads.get(var.as_tensor()) {
                Some(grad) => grad.clone(),
                None => var.as_tensor().zeros_like()?,
            })),
            _ => Ok(None),
        })
        .collect()
}

/// The sum of `terms`, if there are any.
fn sum(terms: Vec<Tensor>) -> Result<Option<Tensor>> {
    let mut total: Option<Tensor> = None;
    for term in terms {
        total = Some(match total {
            Some(total) => (total + term)?,
            None => term,
        });
    }
    Ok(total)
}

/// The gradients of the loss with respect to the trainable weights, summed per variable (a layer
/// called twice contributes twice). Weights outside the trainable set are ignored.
pub struct WeightGrads {
    trainable: HashMap<TensorId, Var>,
    grads: HashMap<TensorId, Tensor>,
}

impl WeightGrads {
    /// An empty sum over the variables `trainable`.
    pub fn new(trainable: &[Var]) -> Self {
        WeightGrads {
            trainable: trainable
                .iter()
                .map(|v| (v.as_tensor().id(), v.clone()))
                .collect(),
            grads: HashMap::new(),
        }
    }

    /// Whether `var`'s gradient is wanted (it is trainable).
    pub fn wants(&self, var: &Var) -> bool {
        self.trainable.contains_key(&var.as_tensor().id())
    }

    /// Adds `grad` to `var`'s sum; ignored when `var` is not trainable. The shapes must agree.
    pub fn add(&mut self, var: &Var, grad: Tensor) -> Result<()> {
        let id = var.as_tensor().id();
        if !self.trainable.contains_key(&id) {
            return Ok(());
        }
        if grad.shape() != var.shape() {
            return Err(Error::shape(
                "weight gradient",
                format!("{:?}", var.dims()),
                format!("{:?}", grad.dims()),
            ));
        }
        let sum = match self.grads.remove(&id) {
            Some(previous) => (previous + grad)?,
            None => grad,
        };
        self.grads.insert(id, sum);
        Ok(())
    }

    /// `var`'s summed gradient, if any call contributed one.
    pub fn get(&self, var: &Var) -> Option<&Tensor> {
        self.grads.get(&var.as_tensor().id())
    }
}
