//! Where a model's outputs meet their losses, decided once per run for the whole model.
//!
//! Keras on TensorFlow computes the cross-entropy of a sigmoid or softmax output from the
//! activation's logits (`keras/src/backend/tensorflow/nn.py`: the cross-entropies read the
//! `_keras_logits` the activation left on its output), which is exact where the clipped
//! probabilities are not. rkeras does the same by running a twin of the model whose output
//! layers output their logits (same layers, same weights, see [`rkeras_layers::logits`]) and
//! each such output's loss in its logits form; the prediction the metrics see is the activation
//! of those logits. Any other output meets its loss as it is.

use std::sync::Arc;

use candle_core::{Tensor, Var};
use rkeras_layers::logits::logits_twin;
use rkeras_layers::{ActivationFn, Layer};
use rkeras_model::{Functional, Model};

use crate::compile::CompiledOutput;
use crate::losses::weighted::{weighted_value, weighted_value_and_gradient};
use crate::losses::Loss;
use crate::Result;

/// The model a run computes its losses on and how; see the module documentation.
pub(crate) struct Head {
    model: Model,
    outputs: Vec<OutputHead>,
}

/// How one output meets its loss.
struct OutputHead {
    loss: Arc<dyn Loss>,
    weight: Option<f64>,
    /// The activation whose logits the model's twin outputs here, if it does.
    logits_of: Option<ActivationFn>,
}

impl Head {
    /// The head for `model` trained or evaluated with the compiled `outputs`.
    pub fn new(model: &Model, outputs: &[CompiledOutput]) -> Head {
        let logits_loss =
            |output: usize, activation: ActivationFn| outputs[output].loss.on_logits_of(activation);
        let (twin, replaced) = match functional_of(&model.as_layer()) {
            Some(functional) => twin_of(&functional, &logits_loss),
            None => (None, (0..outputs.len()).map(|_| None).collect()),
        };
        let outputs = outputs
            .iter()
            .zip(replaced)
            .map(|(output, replaced)| match replaced {
                Some((activation, loss)) => OutputHead {
                    loss: Arc::from(loss),
                    weight: output.weight,
                    logits_of: Some(activation),
                },
                None => OutputHead {
                    loss: output.loss.clone(),
                    weight: output.weight,
                    logits_of: None,
                },
            })
            .collect();
        Head {
            model: twin.map_or_else(|| model.clone(), Model::from_functional),
            outputs,
        }
    }

    /// The model to run: the model itself, or its logits twin.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The number of outputs.
    pub fn output_count(&self) -> usize {
        self.outputs.len()
    }

    /// Whether every output's loss is a mean over samples (so a batch may run in parts).
    pub fn averages_over_samples(&self) -> bool {
        self.outputs.iter().all(|o| o.loss.averages_over_samples())
    }

    /// The weight of output `index`'s loss in the total (1 unless compiled with weights).
    pub fn weight(&self, index: usize) -> f64 {
        self.outputs[index].weight.unwrap_or(1.0)
    }

    /// The activation whose logits output `index`'s loss is computed from, if any.
    #[cfg(test)]
    pub fn logits_of(&self, index: usize) -> Option<ActivationFn> {
        self.outputs[index].logits_of
    }

    /// The model's prediction for output `index` from [`Head::model`]'s output (the activation
    /// of the logits).
    pub fn prediction(&self, index: usize, output: &Tensor) -> Result<Tensor> {
        Ok(match self.outputs[index].logits_of {
            Some(activation) => activation.apply(output)?,
            None => output.clone(),
        })
    }

    /// Output `index`'s loss on `output` (not multiplied by the output's loss weight, each
    /// sample's values by its `sample_weight` when given) and its gradient with respect to
    /// `output`: from the loss's own kernel where it has one, else by candle's autograd over
    /// the loss of a variable copy.
    pub fn value_and_gradient(
        &self,
        index: usize,
        y: &Tensor,
        output: &Tensor,
        sample_weight: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        let loss = self.outputs[index].loss.as_ref();
        if let Some(weights) = sample_weight {
            return weighted_value_and_gradient(loss, y, output, weights);
        }
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

    /// Output `index`'s loss on `output` (as [`Head::value_and_gradient`]'s), as training
    /// computes it (so that `loss` and `val_loss` are the same function).
    pub fn value(
        &self,
        index: usize,
        y: &Tensor,
        output: &Tensor,
        sample_weight: Option<&Tensor>,
    ) -> Result<Tensor> {
        let loss = self.outputs[index].loss.as_ref();
        if let Some(weights) = sample_weight {
            weighted_value(loss, y, output, weights)
        } else if self.outputs[index].logits_of.is_some() {
            Ok(self.value_and_gradient(index, y, output, None)?.0)
        } else {
            self.outputs[index].loss.compute(y, output)
        }
    }
}

fn functional_of(layer: &Arc<dyn Layer>) -> Option<Arc<Functional>> {
    let any: Arc<dyn std::any::Any + Send + Sync> = layer.clone();
    any.downcast::<Functional>().ok()
}

/// The losses a twin computes: for an output and the activation producing it, the output's
/// loss in its logits form, if it has one.
type LogitsLoss<'a> = dyn Fn(usize, ActivationFn) -> Option<Box<dyn Loss>> + 'a;

/// A twin of `functional` in which each output whose loss has a logits form for its activation
/// is that activation's logits, when the layer producing the output (within a nested one-output
/// model) has logits, its value read by nothing else. A reshape in between hides the logits,
/// as it does from Keras (the reshaped tensor carries no `_keras_logits`). Returns the twin
/// (`None` when no output changed) and, for each output, the activation left out and the loss.
#[allow(clippy::type_complexity)]
fn twin_of(
    functional: &Functional,
    logits_loss: &LogitsLoss<'_>,
) -> (
    Option<Arc<Functional>>,
    Vec<Option<(ActivationFn, Box<dyn Loss>)>>,
) {
    let graph = functional.graph();
    let mut twin_graph = graph.clone();
    let mut replaced: Vec<Option<(ActivationFn, Box<dyn Loss>)>> =
        (0..graph.output_slots.len()).map(|_| None).collect();
    for (output, slot) in replaced.iter_mut().enumerate() {
        let Some((index, _)) = graph.sole_producer_of_output(output) else {
            continue;
        };
        let layer = &graph.nodes[index].layer;
        let twin = match functional_of(layer) {
            Some(nested) if nested.graph().output_slots.len() == 1 => {
                let inner = |_: usize, activation| logits_loss(output, activation);
                match twin_of(&nested, &inner) {
                    (Some(twin), mut found) => found
                        .pop()
                        .flatten()
                        .map(|(activation, loss)| (twin as Arc<dyn Layer>, activation, loss)),
                    (None, _) => None,
                }
            }
            Some(_) => None,
            None => logits_twin(layer.as_ref()).and_then(|(twin, activation)| {
                logits_loss(output, activation).map(|loss| (twin, activation, loss))
            }),
        };
        if let Some((twin, activation, loss)) = twin {
            twin_graph.nodes[index].layer = twin;
            *slot = Some((activation, loss));
        }
    }
    if replaced.iter().all(Option::is_none) {
        return (None, replaced);
    }
    let twin = Functional::new(functional.name().to_string(), twin_graph);
    twin.set_trainable(functional.trainable());
    (Some(Arc::new(twin)), replaced)
}
