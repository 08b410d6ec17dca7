//! A model's backward pass, node by node in reverse call order (each as it was recorded: by its
//! layer's own [`Layer::backward`] or by candle's autograd over its call), summing a value's
//! gradient only where the value has several readers.

use candle_core::Tensor;
use rkeras_layers::fusion;
use rkeras_layers::record::differentiate;
use rkeras_layers::{CallRecord, Error, Layer, Result, WeightGrads};

use crate::graph::{Graph, Node};

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
    // A record is taken when its node is differentiated, alone or with the node it feeds.
    let mut records: Vec<Option<CallRecord>> = records.into_iter().map(Some).collect();
    for index in (0..graph.nodes.len()).rev() {
        let node = &graph.nodes[index];
        let Some(record) = records[index].take() else {
            continue;
        };
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
        // The node and the one feeding it, differentiated as one where a kernel fuses them.
        if let Some(feeder) = graph.sole_feeder(index) {
            let feeder_node = &graph.nodes[feeder];
            if let Some(feeder_record) = records[feeder].as_ref() {
                let needs: Vec<bool> = feeder_node.inputs.iter().map(|&s| requires[s]).collect();
                let fused = fusion::backward_pair(
                    feeder_node.layer.as_ref(),
                    feeder_record,
                    &record,
                    &grad_outputs,
                    &needs,
                    weight_grads,
                );
                if let Some(input_grads) = fused {
                    records[feeder] = None;
                    grads.add_inputs(feeder_node, input_grads?, &needs)?;
                    continue;
                }
            }
        }
        let needs: Vec<bool> = node.inputs.iter().map(|&s| requires[s]).collect();
        let input_grads = differentiate(
            node.layer.as_ref(),
            record,
            &grad_outputs,
            &needs,
            weight_grads,
        )?;
        grads.add_inputs(node, input_grads, &needs)?;
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
    /// Adds the gradients a node's backward pass returned for its inputs (those it was asked
    /// for), or an error when it returned the wrong number.
    fn add_inputs(
        &mut self,
        node: &Node,
        input_grads: Vec<Option<Tensor>>,
        needs: &[bool],
    ) -> Result<()> {
        if input_grads.len() != node.inputs.len() {
            return Err(Error::Graph(format!(
                "layer '{}' returned {} input gradient(s) for {} input(s)",
                node.layer.name(),
                input_grads.len(),
                node.inputs.len()
            )));
        }
        for ((&slot, grad), &need) in node.inputs.iter().zip(input_grads).zip(needs) {
            if let (Some(grad), true) = (grad, need) {
                self.add(slot, grad)?;
            }
        }
        Ok(())
    }

    /// Adds `grad` to the slot's gradient (a value with several readers gets one per reader).
    fn add(&mut self, slot: usize, grad: Tensor) -> Result<()> {
        self.0[slot] = Some(match self.0[slot].take() {
            Some(previous) => (previous + grad)?,
            None => grad,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};
    use rkeras_layers::record::record_call;
    use rkeras_layers::{CallContext, CallRecord, Dense, Input, Lambda, WeightGrads};

    use crate::Model;

    fn tensor(values: &[f32], dims: &[usize]) -> candle_core::Tensor {
        candle_core::Tensor::from_slice(values, dims, &Device::Cpu).unwrap()
    }

    #[test]
    fn a_value_read_twice_gets_the_sum_of_its_readers_gradients() {
        // y = 3x + 5x: the input's gradient is 8 times the output's.
        let input = Input::new(&[2]);
        let h = Lambda::new(|x: &candle_core::Tensor| Ok(x.clone()))(input);
        let three = Lambda::new(|x: &candle_core::Tensor| Ok((x * 3.0)?))(h);
        let five = Lambda::new(|x: &candle_core::Tensor| Ok((x * 5.0)?))(h);
        let model = Model::new(input, vec![three, five]).unwrap();
        let x = tensor(&[1.0, 2.0], &[1, 2]);
        let layer = model.as_layer();
        let record = record_call(layer.as_ref(), &[x], &mut CallContext::recording()).unwrap();
        let dy = tensor(&[1.0, -1.0], &[1, 2]);
        let grads = super::run(
            model.graph(),
            *record
                .state
                .and_then(|s| s.downcast::<Vec<CallRecord>>().ok())
                .unwrap(),
            &[dy.clone(), dy],
            &[true],
            &mut WeightGrads::new(&[]),
        )
        .unwrap();
        let dx = grads[0].as_ref().unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(dx, [[8.0, -8.0]]);
    }

    #[test]
    fn nodes_no_gradient_needs_are_skipped_and_frozen_weights_get_none() {
        let input = Input::new(&[2]);
        let frozen = Dense::new(2).trainable(false)(input);
        let model = Model::new(input, Dense::new(1)(frozen)).unwrap();
        let trainable: Vec<Var> = model
            .trainable_weights()
            .into_iter()
            .map(|w| w.var)
            .collect();
        assert_eq!(trainable.len(), 2);
        let layer = model.as_layer();
        let x = tensor(&[1.0, 2.0], &[1, 2]);
        let record = record_call(layer.as_ref(), &[x], &mut CallContext::recording()).unwrap();
        let nodes = *record
            .state
            .and_then(|s| s.downcast::<Vec<CallRecord>>().ok())
            .unwrap();
        let mut weight_grads = WeightGrads::new(&trainable);
        let grads = super::run(
            model.graph(),
            nodes,
            &[tensor(&[1.0], &[1, 1])],
            &[false],
            &mut weight_grads,
        )
        .unwrap();
        assert!(grads[0].is_none());
        assert!(trainable.iter().all(|v| weight_grads.get(v).is_some()));
        let frozen_kernel = &model.weights()[0].var;
        assert!(weight_grads.get(frozen_kernel).is_none());
    }

    #[test]
    fn mismatched_records_and_gradients_are_errors() {
        let input = Input::new(&[2]);
        let model = Model::new(input, Dense::new(1)(input)).unwrap();
        let err = super::run(
            model.graph(),
            Vec::new(),
            &[tensor(&[1.0], &[1, 1])],
            &[false],
            &mut WeightGrads::new(&[]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("node records"), "{err}");
    }
}
