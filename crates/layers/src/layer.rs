//! The `Layer` trait every layer (and every model) implements, with its weights and call context.

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{Device, Tensor, Var};

use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Result, SymbolicShape};

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

/// A stateful building block: it owns its weights (created by `build` on first use), and
/// calling it in several places shares them.
///
/// What a layer author writes: `build` (output shapes, and the weights on first use), `call`,
/// `config`, the name and trainable flag (the [`layer_base_methods!`](crate::layer_base_methods)
/// macro writes those over a [`LayerBase`]), and, only where a kernel makes it faster, a
/// hand-written `backward`. Without one, training differentiates each call of the layer by
/// candle's autograd over that call alone, on the same path as every other layer.
pub trait Layer: Any + Send + Sync {
    /// The layer's unique name (`dense`, `dense_1`, or the one given).
    fn name(&self) -> &str;

    /// The Keras class name shown by `summary()`: `Dense`, `Conv2D`, `Functional`...
    fn class_name(&self) -> &'static str;

    /// Creates the weights on first use (Keras's `build`) and returns the output shapes for
    /// inputs of these shapes, or an error naming the layer and both shapes.
    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>>;

    /// Runs the layer on concrete tensors, batch first, channels last. Weights are read through
    /// [`CallContext::weight`]; a loss the call produces goes to [`CallContext::add_loss`].
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

    /// Whether a call mixes the samples of a batch: an output depends on other samples'
    /// inputs (batch statistics), or the call changes state from the batch as a whole. Training
    /// cuts the batch of a model with no such layer into parts that run on separate threads
    /// (and adds up their gradients); a model with one runs whole batches. False by default.
    fn mixes_samples(&self) -> bool {
        false
    }

    /// Whether a layer that mixes samples can still train in parts of a batch on `device`: in
    /// a call recorded for its own backward pass, it combines the parts' statistics (and in
    /// that backward pass, their gradient sums) through the context's
    /// [`CallContext::batch_part`], as Keras's `synchronized` batch normalization does across
    /// replicas. False by default.
    fn meets_other_parts(&self, device: &Device) -> bool {
        let _ = device;
        false
    }

    /// Whether the layer has a hand-written [`Layer::backward`] for calls on `device`. False
    /// by default: training then differentiates each call by candle's autograd over that call.
    fn has_backward(&self, device: &Device) -> bool {
        let _ = device;
        false
    }

    /// The layer's backward pass: given the record of a call and the gradients of the loss with
    /// respect to its outputs, adds the gradients of its trainable weights to `weight_grads` and
    /// returns those of its inputs (`None` where `needs_input_grad` is false). A loss the call
    /// added is the layer's to differentiate here.
    ///
    /// The default differentiates the recorded call by candle's autograd; a layer that writes
    /// its own says so in [`Layer::has_backward`].
    fn backward(
        &self,
        record: CallRecord,
        grad_outputs: &[Tensor],
        needs_input_grad: &[bool],
        weight_grads: &mut WeightGrads,
    ) -> Result<Vec<Option<Tensor>>> {
        crate::record::differentiate_locally(
            self,
            record,
            grad_outputs,
            needs_input_grad,
            weight_grads,
        )
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

    /// The config of a layer with no options: its name and trainable flag.
    pub fn config(&self) -> serde_json::Value {
        serde_json::json!({ "name": self.name(), "trainable": self.trainable() })
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
