//! Where a model's outputs meet their losses, decided once per run for the whole model.
//!
//! Keras on TensorFlow computes the cross-entropy of a sigmoid output from the sigmoid's logits
//! (`keras/src/backend/tensorflow/nn.py`: `binary_crossentropy` reads the `_keras_logits` the
//! sigmoid left on its output), which is exact where the clipped probabilities are not. rkeras
//! does the same by running a twin of the model whose sigmoid layers output their logits (same
//! layers, same weights) and each such output's loss in its logits form; the prediction the
//! metrics see is the sigmoid of those logits. Any other output meets its loss as it is.

use std::sync::Arc;

use candle_core::{Tensor, Var};
use rkeras_layers::{ActivationFn, DenseLayer, Layer};
use rkeras_model::{Functional, Model};

use crate::compile::CompiledOutput;
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
    from_sigmoid_logits: bool,
}

impl Head {
    /// The head for `model` trained or evaluated with the compiled `outputs`.
    pub fn new(model: &Model, outputs: &[CompiledOutput]) -> Head {
        let logits_losses: Vec<Option<Box<dyn Loss>>> =
            outputs.iter().map(|o| o.loss.on_sigmoid_logits()).collect();
        let wanted: Vec<bool> = logits_losses.iter().map(Option::is_some).collect();
        let (twin, replaced) = match functional_of(&model.as_layer()) {
            Some(functional) => twin_of(&functional, &wanted),
            None => (None, vec![false; outputs.len()]),
        };
        let outputs = outputs
            .iter()
            .zip(logits_losses)
            .zip(replaced)
            .map(|((output, logits_loss), replaced)| match logits_loss {
                Some(loss) if replaced => OutputHead {
                    loss: Arc::from(loss),
                    weight: output.weight,
                    from_sigmoid_logits: true,
                },
                _ => OutputHead {
                    loss: output.loss.clone(),
                    weight: output.weight,
                    from_sigmoid_logits: false,
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

    /// Whether output `index`'s loss is computed from a sigmoid's logits.
    #[cfg(test)]
    pub fn reads_sigmoid_logits(&self, index: usize) -> bool {
        self.outputs[index].from_sigmoid_logits
    }

    /// The model's prediction for output `index` from [`Head::model`]'s output (the sigmoid
    /// of the logits).
    pub fn prediction(&self, index: usize, output: &Tensor) -> Result<Tensor> {
        Ok(if self.outputs[index].from_sigmoid_logits {
            ActivationFn::Sigmoid.apply(output)?
        } else {
            output.clone()
        })
    }

    /// Output `index`'s loss on `output` (unweighted) and its gradient with respect to
    /// `output`: from the loss's own kernel where it has one, else by candle's autograd over
    /// the loss of a variable copy.
    pub fn value_and_gradient(
        &self,
        index: usize,
        y: &Tensor,
        output: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let loss = self.outputs[index].loss.as_ref();
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

    /// Output `index`'s loss on `output` (unweighted), as training computes it (so that `loss`
    /// and `val_loss` are the same function).
    pub fn value(&self, index: usize, y: &Tensor, output: &Tensor) -> Result<Tensor> {
        if self.outputs[index].from_sigmoid_logits {
            Ok(self.value_and_gradient(index, y, output)?.0)
        } else {
            self.outputs[index].loss.compute(y, output)
        }
    }
}

fn functional_of(layer: &Arc<dyn Layer>) -> Option<Arc<Functional>> {
    let any: Arc<dyn std::any::Any + Send + Sync> = layer.clone();
    any.downcast::<Functional>().ok()
}

/// A twin of `functional` in which each output `wanted` is the logits of the sigmoid that
/// computes it, when such a sigmoid exists: the layer producing the output (within a nested
/// one-output model), its value read by nothing else. A reshape in between hides the logits,
/// as it does from Keras (the reshaped tensor carries no `_keras_logits`). Returns the twin
/// (`None` when no output changed) and which outputs did.
fn twin_of(functional: &Functional, wanted: &[bool]) -> (Option<Arc<Functional>>, Vec<bool>) {
    let graph = functional.graph();
    let mut twin_graph = graph.clone();
    let mut replaced = vec![false; wanted.len()];
    for (output, &want) in wanted.iter().enumerate() {
        let Some((index, _)) = graph.sole_producer_of_output(output).filter(|_| want) else {
            continue;
        };
        let layer = &graph.nodes[index].layer;
        let replacement: Option<Arc<dyn Layer>> = match layer.as_any().downcast_ref::<DenseLayer>()
        {
            Some(dense) => dense
                .sigmoid_logits_twin()
                .map(|twin| Arc::new(twin) as Arc<dyn Layer>),
            None => functional_of(layer)
                .filter(|nested| nested.graph().output_slots.len() == 1)
                .and_then(|nested| twin_of(&nested, &[true]).0)
                .map(|twin| twin as Arc<dyn Layer>),
        };
        if let Some(replacement) = replacement {
            twin_graph.nodes[index].layer = replacement;
            replaced[output] = true;
        }
    }
    if !replaced.contains(&true) {
        return (None, replaced);
    }
    let twin = Functional::new(functional.name().to_string(), twin_graph);
    twin.set_trainable(functional.trainable());
    (Some(Arc::new(twin)), replaced)
}
