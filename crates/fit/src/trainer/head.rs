//! Where a model's output meets its loss, decided once per run for the whole model.
//!
//! Keras on TensorFlow computes the cross-entropy of a sigmoid output from the sigmoid's logits
//! (`keras/src/backend/tensorflow/nn.py`: `binary_crossentropy` reads the `_keras_logits` the
//! sigmoid left on its output), which is exact where the clipped probabilities are not. rkeras
//! does the same by running a twin of the model whose sigmoid layer outputs its logits (same
//! layers, same weights) and the loss's logits form on them; the prediction the metrics see is
//! the sigmoid of those logits. Any other model and loss meet as they are.

use std::sync::Arc;

use candle_core::{Tensor, Var};
use rkeras_layers::{ActivationFn, DenseLayer, Layer};
use rkeras_model::{Functional, Model};

use crate::losses::Loss;
use crate::Result;

/// The model a run computes its loss on and how; see the module documentation.
pub(crate) struct Head {
    model: Model,
    loss: Arc<dyn Loss>,
    from_sigmoid_logits: bool,
}

impl Head {
    /// The head for `model` trained or evaluated with `loss`.
    pub fn new(model: &Model, loss: &Arc<dyn Loss>) -> Head {
        if let Some(logits_loss) = loss.on_sigmoid_logits() {
            if let Some(twin) = logits_twin(model) {
                return Head {
                    model: twin,
                    loss: Arc::from(logits_loss),
                    from_sigmoid_logits: true,
                };
            }
        }
        Head {
            model: model.clone(),
            loss: loss.clone(),
            from_sigmoid_logits: false,
        }
    }

    /// The model to run: the model itself, or its logits twin.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The loss applied to [`Head::model`]'s output.
    pub fn loss(&self) -> &dyn Loss {
        self.loss.as_ref()
    }

    /// Whether the head computes the loss from a sigmoid's logits.
    #[cfg(test)]
    pub fn reads_sigmoid_logits(&self) -> bool {
        self.from_sigmoid_logits
    }

    /// The model's prediction from [`Head::model`]'s output (the sigmoid of the logits).
    pub fn prediction(&self, output: &Tensor) -> Result<Tensor> {
        Ok(if self.from_sigmoid_logits {
            ActivationFn::Sigmoid.apply(output)?
        } else {
            output.clone()
        })
    }

    /// The loss on `output` and its gradient with respect to `output`: from the loss's own
    /// kernel where it has one, else by candle's autograd over the loss of a variable copy.
    pub fn value_and_gradient(&self, y: &Tensor, output: &Tensor) -> Result<(Tensor, Tensor)> {
        let loss = self.loss();
        if let Some(pair) = loss.value_and_gradient(y, output)? {
            return Ok(pair);
        }
        let output = Var::from_tensor(output)?;
        let value = loss.compute(y, output.as_tensor())?;
        let grad = match value.backward()?.get(output.as_tensor()) {
            Some(grad) => grad.clone(),
            None => output.as_tensor().zeros_like()?,
        };
        Ok((value.detach(), grad))
    }

    /// The loss on `output`, as training computes it (so that `loss` and `val_loss` are the same
    /// function).
    pub fn value(&self, y: &Tensor, output: &Tensor) -> Result<Tensor> {
        if self.from_sigmoid_logits {
            Ok(self.value_and_gradient(y, output)?.0)
        } else {
            self.loss.compute(y, output)
        }
    }
}

/// A twin of `model` whose (only) output is the logits of the sigmoid that computes it, when
/// such a sigmoid exists: the layer producing the output (within nested models), its value read
/// by nothing else. A reshape in between hides the logits, as it does from Keras (the reshaped
/// tensor carries no `_keras_logits`).
fn logits_twin(model: &Model) -> Option<Model> {
    let functional = functional_of(&model.as_layer())?;
    twin_of(&functional).map(Model::from_functional)
}

fn functional_of(layer: &Arc<dyn Layer>) -> Option<Arc<Functional>> {
    let any: Arc<dyn std::any::Any + Send + Sync> = layer.clone();
    any.downcast::<Functional>().ok()
}

/// The twin of a one-output functional (see [`logits_twin`]).
fn twin_of(functional: &Functional) -> Option<Arc<Functional>> {
    let graph = functional.graph();
    if graph.output_slots.len() != 1 {
        return None;
    }
    let (index, _) = graph.sole_producer_of_output(0)?;
    let layer = &graph.nodes[index].layer;
    let replacement: Arc<dyn Layer> = match layer.as_any().downcast_ref::<DenseLayer>() {
        Some(dense) => Arc::new(dense.sigmoid_logits_twin()?),
        None => twin_of(&*functional_of(layer)?)?,
    };
    let mut twin_graph = graph.clone();
    twin_graph.nodes[index].layer = replacement;
    let twin = Functional::new(functional.name().to_string(), twin_graph);
    twin.set_trainable(functional.trainable());
    Some(Arc::new(twin))
}
