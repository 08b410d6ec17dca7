//! The `Layer` trait every layer (and every model) implements, with its weights and call context.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{Tensor, TensorId, Var};

use crate::{Result, SymbolicShape};

/// One weight of a layer: a candle `Var` owned by the layer, under a readable path.
#[derive(Debug, Clone)]
pub struct Weight {
    /// The weight's path: `kernel` for a layer's own weight, `dense/kernel` seen from a model,
    /// `encoder/dense/kernel` from a model that nests that one.
    pub path: String,
    /// The variable itself; clones share storage, so updating it updates the layer.
    pub var: Var,
    /// Whether training may change it (the layer's and every enclosing model's flag included).
    pub trainable: bool,
}

impl Weight {
    /// The weight seen from a model: its path prefixed with `owner/`, trainable only if
    /// `owner_trainable` too.
    pub fn nested(self, owner: &str, owner_trainable: bool) -> Weight {
        Weight {
            path: format!("{owner}/{}", self.path),
            var: self.var,
            trainable: self.trainable && owner_trainable,
        }
    }

    /// The number of scalars in the weight.
    pub fn count(&self) -> usize {
        self.var.elem_count()
    }

    /// The weight's size in bytes.
    pub fn bytes(&self) -> usize {
        self.count() * self.var.dtype().size_in_bytes()
    }
}

/// What a call needs besides its inputs: whether it runs in training, whether candle's autograd
/// sees the weights, and where it puts the losses it adds (activity penalties), which training
/// adds to the loss.
#[derive(Debug, Default)]
pub struct CallContext {
    /// True inside `fit`, false in `predict` and `evaluate`.
    pub training: bool,
    /// True when the weights enter the call as constants, so that candle records no graph
    /// (the layer-level backward pass computes the gradients instead).
    detached_weights: bool,
    /// Whether a recorded call keeps the logits of a sigmoid output (see
    /// [`CallContext::keeps_logits`]).
    keep_logits: bool,
    losses: Vec<Tensor>,
    /// Whether some of `losses` were added by [`CallContext::add_loss`], whose gradients only
    /// candle's autograd can follow.
    has_losses_for_autograd: bool,
}

impl CallContext {
    /// A context for a training (`true`) or inference (`false`) call.
    ///
    /// An inference context reads the weights detached, so that candle records no graph and
    /// every intermediate tensor is freed as soon as the next layer has read it.
    pub fn new(training: bool) -> Self {
        CallContext {
            training,
            detached_weights: !training,
            ..Self::default()
        }
    }

    /// A training context whose calls read the weights detached: candle builds no graph, and
    /// [`Layer::backward`] computes the gradients from the [`CallRecord`]s.
    pub fn detached_training() -> Self {
        CallContext {
            training: true,
            detached_weights: true,
            ..Self::default()
        }
    }

    /// A weight as the call must read it: the variable itself, or a detached view of its
    /// storage under [`CallContext::detached_training`].
    pub fn weight(&self, var: &Var) -> Tensor {
        if self.detached_weights {
            var.as_tensor().detach()
        } else {
            var.as_tensor().clone()
        }
    }

    /// Whether a recorded call whose output is a sigmoid's keeps the logits in its record
    /// ([`CallRecord::logits`]), for a loss to use. Set by training and evaluation for the model
    /// call, and by a model for the nodes that produce its outputs only, so that no other layer
    /// pays for the extra tensor.
    pub fn keeps_logits(&self) -> bool {
        self.keep_logits
    }

    /// Sets [`CallContext::keeps_logits`].
    pub fn set_keep_logits(&mut self, keep: bool) {
        self.keep_logits = keep;
    }

    /// Records a scalar loss produced by this call (Keras's `add_loss`); its gradient is left
    /// to candle's autograd.
    pub fn add_loss(&mut self, loss: Tensor) {
        self.losses.push(loss);
        self.has_losses_for_autograd = true;
    }

    /// Records a scalar loss produced by a recorded call ([`Layer::call_recorded`]) whose
    /// gradient the layer's own [`Layer::backward`] adds to the gradient of its outputs, such as
    /// an activity penalty.
    pub fn add_loss_with_layer_gradient(&mut self, loss: Tensor) {
        self.losses.push(loss);
    }

    /// The losses the calls made with this context added.
    pub fn losses(&self) -> &[Tensor] {
        &self.losses
    }

    /// Whether some added loss needs candle's autograd for its gradient (it was added by
    /// [`CallContext::add_loss`]).
    pub fn has_losses_for_autograd(&self) -> bool {
        self.has_losses_for_autograd
    }

    /// Takes the added losses out, leaving none.
    pub fn take_losses(&mut self) -> Vec<Tensor> {
        self.has_losses_for_autograd = false;
        std::mem::take(&mut self.losses)
    }
}

/// A stateful building block: it owns its weights (created by `build` on first use), and
/// calling it in several places shares them.
pub trait Layer: Any + Send + Sync {
    /// The layer's unique name (`dense`, `dense_1`, or the one given).
    fn name(&self) -> &str;

    /// The Keras class name shown by `summary()`: `Dense`, `Conv2D`, `Functional`...
    fn class_name(&self) -> &'static str;

    /// Creates the weights on first use (Keras's `build`) and returns the output shapes for
    /// inputs of these shapes, or an error naming the layer and both shapes.
    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>>;

    /// Runs the layer on concrete tensors, batch first, channels last.
    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Vec<Tensor>>;

    /// Every weight, trainable or not, in creation order (for a model: its layers' weights).
    fn weights(&self) -> Vec<Weight> {
        Vec::new()
    }

    /// Whether training may change this layer's weights.
    fn trainable(&self) -> bool;

    /// Freezes (`false`) or unfreezes (`true`) the layer.
    fn set_trainable(&self, trainable: bool);

    /// The layer's configuration as JSON (Keras's `get_config`), without its weights.
    fn config(&self) -> serde_json::Value;

    /// The penalties of the layer's weight regularizers, for the current weights.
    fn regularization_losses(&self) -> Result<Vec<Tensor>> {
        Ok(Vec::new())
    }

    /// How many tensors a call returns.
    fn output_count(&self) -> usize {
        1
    }

    /// Whether [`Layer::backward`] is implemented; training falls back to candle's autograd for
    /// the whole step when any layer of the model says no.
    fn has_backward(&self) -> bool {
        false
    }

    /// Whether the layer treats every sample of a batch on its own: each sample's outputs
    /// depend only on that sample's inputs and the weights, and a call draws no random numbers
    /// and changes no state. Training may then run parts of a batch through the layer
    /// separately, on several threads, and add up their gradients. False unless a layer says so.
    fn is_per_sample(&self) -> bool {
        false
    }

    /// Runs the layer for training and keeps what [`Layer::backward`] needs: by default the
    /// inputs and outputs. A loss the call adds with
    /// [`CallContext::add_loss_with_layer_gradient`] is the layer's to differentiate in
    /// `backward`.
    fn call_recorded(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<CallRecord> {
        let outputs = self.call(inputs, ctx)?;
        Ok(CallRecord::new(inputs.to_vec(), outputs))
    }

    /// The layer's backward pass: given the record of a call and the gradients of the loss with
    /// respect to its outputs, adds the gradients of its trainable weights to `weight_grads` and
    /// returns those of its inputs (`None` where `needs_input_grad` is false).
    fn backward(
        &self,
        record: CallRecord,
        grad_outputs: &[Tensor],
        needs_input_grad: &[bool],
        weight_grads: &mut WeightGrads,
    ) -> Result<Vec<Option<Tensor>>> {
        let _ = (record, grad_outputs, needs_input_grad, weight_grads);
        Err(crate::Error::config(
            self.name(),
            format!("{} has no layer-level backward pass", self.class_name()),
        ))
    }

    /// The layer as `Any`, to recover its concrete type.
    fn as_any(&self) -> &dyn Any;
}

/// The name and trainable flag every layer has.
#[derive(Debug)]
pub struct LayerBase {
    name: String,
    trainable: AtomicBool,
}

impl LayerBase {
    /// A base with this name and flag.
    pub fn new(name: String, trainable: bool) -> Self {
        LayerBase {
            name,
            trainable: AtomicBool::new(trainable),
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The trainable flag.
    pub fn trainable(&self) -> bool {
        self.trainable.load(Ordering::Relaxed)
    }

    /// Sets the trainable flag.
    pub fn set_trainable(&self, trainable: bool) {
        self.trainable.store(trainable, Ordering::Relaxed);
    }

    /// A weight of this layer under `path`.
    pub fn weight(&self, path: &str, var: &Var) -> Weight {
        Weight {
            path: path.to_string(),
            var: var.clone(),
            trainable: self.trainable(),
        }
    }
}

/// The only input of a single-input layer, or an error naming the layer.
pub fn single_input<'a, T>(layer: &str, inputs: &'a [T]) -> Result<&'a T> {
    match inputs {
        [only] => Ok(only),
        _ => Err(crate::Error::config(
            layer,
            format!("expects exactly one input, got {}", inputs.len()),
        )),
    }
}

/// The `Layer` methods every layer with a `base: LayerBase` field writes the same way:
/// `name`, `trainable`, `set_trainable` and `as_any`.
#[macro_export]
macro_rules! layer_base_methods {
    () => {
        fn name(&self) -> &str {
            self.base.name()
        }

        fn trainable(&self) -> bool {
            self.base.trainable()
        }

        fn set_trainable(&self, trainable: bool) {
            self.base.set_trainable(trainable)
        }

        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    };
}

/// A layer's JSON config: its options plus its name and trainable flag.
pub fn config_with_name<T: serde::Serialize>(options: &T, base: &LayerBase) -> serde_json::Value {
    let mut value = serde_json::to_value(options).unwrap_or_else(|_| serde_json::json!({}));
    if !value.is_object() {
        value = serde_json::json!({ "value": value });
    }
    value["name"] = base.name().into();
    value["trainable"] = base.trainable().into();
    value
}

/// What a training call keeps for its backward pass: its inputs, its outputs and any state of
/// the layer's own (a nested model keeps the records of its nodes).
pub struct CallRecord {
    /// The tensors the call read.
    pub inputs: Vec<Tensor>,
    /// The tensors the call returned.
    pub outputs: Vec<Tensor>,
    /// Whatever else the layer's backward needs.
    pub state: Option<Box<dyn Any + Send + Sync>>,
    /// For outputs that are `sigmoid(logits)`, the logits where the layer kept them (indexed
    /// like `outputs`; missing or `None`: not kept), when the call's context asked for them
    /// ([`CallContext::keeps_logits`]). A loss on probabilities can then be computed from the
    /// logits, as Keras does on TensorFlow. A layer that keeps logits must honour
    /// [`CallRecord::is_grad_wrt_logits`] in its backward pass.
    pub logits: Vec<Option<Tensor>>,
    /// Which output gradients handed to `backward` are with respect to the kept `logits`
    /// rather than to the outputs (indexed like `outputs`; missing: not). Set through
    /// [`CallRecord::set_grad_wrt_logits`].
    grad_wrt_logits: Vec<bool>,
}

impl CallRecord {
    /// A record of `inputs` and `outputs` with no extra state.
    pub fn new(inputs: Vec<Tensor>, outputs: Vec<Tensor>) -> Self {
        CallRecord {
            inputs,
            outputs,
            state: None,
            logits: Vec::new(),
            grad_wrt_logits: Vec::new(),
        }
    }

    /// The kept logits of output `index`, if the layer kept them.
    pub fn output_logits(&self, index: usize) -> Option<&Tensor> {
        self.logits.get(index).and_then(Option::as_ref)
    }

    /// Declares that the gradient of output `index` handed to `backward` is with respect to
    /// its kept logits; an error if the call kept none for that output.
    pub fn set_grad_wrt_logits(&mut self, index: usize) -> Result<()> {
        if self.output_logits(index).is_none() {
            return Err(crate::Error::Graph(format!(
                "output {index} of the call kept no logits to take a gradient for"
            )));
        }
        if self.grad_wrt_logits.len() <= index {
            self.grad_wrt_logits.resize(index + 1, false);
        }
        self.grad_wrt_logits[index] = true;
        Ok(())
    }

    /// Whether the gradient of output `index` is with respect to its logits (see
    /// [`CallRecord::set_grad_wrt_logits`]).
    pub fn is_grad_wrt_logits(&self, index: usize) -> bool {
        self.grad_wrt_logits.get(index).copied().unwrap_or(false)
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
            _ => Err(crate::Error::config(
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
            return Err(crate::Error::shape(
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
