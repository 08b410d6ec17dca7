//! A model's backward pass, node by node in reverse call order (each as it was recorded: by its
//! layer's own [`Layer::backward`] or by candle's autograd over its call), summing a value's
//! gradient only where the value has several readers.

use candle_core::Tensor;
use rkeras_layers::record::differentiate;
use rkeras_layers::{CallRecord, Error, Layer, Result, WeightGrads};

use crate::graph::Graph;

/// The gradients of `graph`'s inputs (`None` where `needs_input_grad` is false or the input
/// does not reach an output), adding its layers' weight gradients to `weight_grads`, from the
/// node `records` of a recorded run and the gradients of the outputs.
pub(crate) fn run(
    graph: &Graph,
    records: Vec<CallRecord>,
    grad_outputs: &[Tensor],
    needs_input_grad: &[bool],
    weight_grads: &mut WeightGrads,
) -> Result<Vec<Option<Tensor>>> {
    if records.len() != graph.nodes.len()
        || grad_outputs.len() != graph.output_slots.len()
        || needs_input_grad.len() != graph.input_slots.len()
    {
        return Err(Error::Graph(format!(
            "backward expects {} node records, {} output gradient(s) and {} input flag(s), got {}, {} and {}",
            graph.nodes.len(),
            graph.output_slots.len(),
            graph.input_slots.len(),
            records.len(),
            grad_outputs.len(),
            needs_input_grad.len()
        )));
    }
    let requires = slots_requiring_grad(graph, needs_input_grad, weight_grads);
    let mut grads = SlotGrads(vec![None; graph.slot_count]);
    for (&slot, grad) in graph.output_slots.iter().zip(grad_outputs) {
        grads.add(slot, grad.clone())?;
    }
    for (node, record) in graph.nodes.iter().zip(records).rev() {
        if !node.outputs.iter().any(|&s| requires[s]) {
            continue;
        }
        let taken: Vec<Option<Tensor>> = node.outputs.iter().map(|&s| grads.0[s].take()).collect();
        if taken.iter().all(Option::is_none) {
            continue;
        }
        // An output no reader differentiated contributes nothing: a zero gradient.
        let grad_outputs = taken
            .into_iter()
            .zip(&record.outputs)
            .map(|(grad, output)| grad.map_or_else(|| output.zeros_like(), Ok))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let needs: Vec<bool> = node.inputs.iter().map(|&s| requires[s]).collect();
        let input_grads = differentiate(
            node.layer.as_ref(),
            record,
            &grad_outputs,
            &needs,
            weight_grads,
        )?;
        if input_grads.len() != node.inputs.len() {
            return Err(Error::Graph(format!(
                "layer '{}' returned {} input gradient(s) for {} input(s)",
                node.layer.name(),
                input_grads.len(),
                node.inputs.len()
            )));
        }
        for ((&slot, grad), need) in node.inputs.iter().zip(input_grads).zip(needs) {
            if let (Some(grad), true) = (grad, need) {
                grads.add(slot, grad)?;
            }
        }
    }
    Ok(graph
        .input_slots
        .iter()
        .zip(needs_input_grad)
        .map(|(&slot, &need)| if need { grads.0[slot].take() } else { None })
        .collect())
}

/// For each value slot, whether its gradient is needed: it is a model input whose gradient is
/// asked for, or an output of a node fed by such a value or holding a trainable weight.
fn slots_requiring_grad(
    graph: &Graph,
    needs_input_grad: &[bool],
    weight_grads: &WeightGrads,
) -> Vec<bool> {
    let mut requires = vec![false; graph.slot_count];
    for (&slot, &need) in graph.input_slots.iter().zip(needs_input_grad) {
        requires[slot] = need;
    }
    for node in &graph.nodes {
        let required = node.inputs.iter().any(|&s| requires[s])
            || has_trainable_weight(node.layer.as_ref(), weight_grads);
        for &slot in &node.outputs {
            requires[slot] = required;
        }
    }
    requires
}

fn has_trainable_weight(layer: &dyn Layer, weight_grads: &WeightGrads) -> bool {
    layer.weights().iter().any(|w| weight_grads.wants(&w.var))
}

/// The gradient reaching each value slot so far.
struct SlotGrads(Vec<Option<Tensor>>);

impl SlotGrads {
    /// Adds `grad` to the slot's gradient (a value with several readers gets one per reader).
    fn add(&mut self, slot: usize, grad: Tensor) -> Result<()> {
        self.0[slot] = Some(match self.0[slot].take() {
            Some(previous) => (previous + grad)?,
            None => grad,
        });
        Ok(())
    }
}
