//! Turning recorded symbolic calls into a model's own graph: walk back from the outputs to
//! the inputs, order the calls, give every tensor a slot, and check what Keras checks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use rkeras_layers::symbolic::Producer;
use rkeras_layers::{Error, InputLayer, Layer, Result, SymbolicShape, SymbolicTensor};

/// Where a node's input comes from, as Keras's summary prints it: `dense[0][0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The producing layer's name.
    pub layer: String,
    /// Which call of that layer, counted within this model.
    pub node_index: usize,
    /// Which output of that call.
    pub tensor_index: usize,
}

/// One layer call in a model's graph.
#[derive(Clone)]
pub struct Node {
    /// The layer called (a nested model is one node).
    pub layer: Arc<dyn Layer>,
    /// The value slots the call reads.
    pub inputs: Vec<usize>,
    /// The value slots the call writes.
    pub outputs: Vec<usize>,
    /// The shapes of the outputs.
    pub output_shapes: Vec<SymbolicShape>,
    /// Where each input comes from.
    pub inbound: Vec<Inbound>,
    /// The graph depth of the call (inputs are at depth 0).
    pub depth: usize,
}

/// A model's graph: its input layers, its nodes in execution order, and its outputs.
#[derive(Clone)]
pub struct Graph {
    /// The input layers, in the model's input order.
    pub input_layers: Vec<Arc<dyn Layer>>,
    /// The shapes the inputs take, batch first.
    pub input_shapes: Vec<SymbolicShape>,
    /// The slots holding the inputs.
    pub input_slots: Vec<usize>,
    /// The calls, in an order where every input is computed before it is read.
    pub nodes: Vec<Node>,
    /// The slots holding the outputs.
    pub output_slots: Vec<usize>,
    /// The shapes of the outputs.
    pub output_shapes: Vec<SymbolicShape>,
    /// How many value slots a run needs.
    pub slot_count: usize,
    /// For each slot, the index of the last node that reads it (`None`: kept to the end).
    pub last_reader: Vec<Option<usize>>,
    /// For each output, the node and the index among its outputs that produce it, when that
    /// value goes nowhere else (see [`Graph::sole_producer_of_output`]).
    sole_output_producers: Vec<Option<(usize, usize)>>,
    /// For each node, the node whose only output is its only input, when nothing else reads
    /// that value (see [`Graph::sole_feeder`]).
    sole_feeders: Vec<Option<usize>>,
    /// For each node, the node it is the sole feeder of, if any (see [`Graph::sole_reader`]).
    sole_readers: Vec<Option<usize>>,
}

type SlotKey = (usize, usize);

impl Graph {
    /// The graph from `inputs` to `outputs`, or an error naming the layer at fault.
    pub fn trace(inputs: &[SymbolicTensor], outputs: &[SymbolicTensor]) -> Result<Graph> {
        if inputs.is_empty() || outputs.is_empty() {
            return Err(Error::Graph(
                "a model needs at least one input and one output".into(),
            ));
        }
        let mut slots: HashMap<SlotKey, usize> = HashMap::new();
        let mut input_layers = Vec::new();
        let mut input_shapes = Vec::new();
        let mut input_slots = Vec::new();
        for input in inputs {
            let shape = input.shape()?;
            let producer = producer_of(input)?;
            if !producer.layer.as_any().is::<InputLayer>() {
                return Err(Error::Graph(format!(
                    "model inputs must come from Input(...), but one comes from layer '{}'",
                    producer.layer.name()
                )));
            }
            let key = (producer.call, producer.output_index);
            if slots.contains_key(&key) {
                return Err(Error::Graph(format!(
                    "input '{}' is given twice",
                    producer.layer.name()
                )));
            }
            let slot = slots.len();
            slots.insert(key, slot);
            input_slots.push(slot);
            input_layers.push(producer.layer);
            input_shapes.push(shape);
        }

        let calls = collect_calls(outputs, &slots)?;
        let mut depth_of_slot: HashMap<usize, usize> = HashMap::new();
        let mut call_counts: HashMap<String, usize> = HashMap::new();
        let mut slot_origin: HashMap<usize, Inbound> = HashMap::new();
        for (layer, slot) in input_layers.iter().zip(&input_slots) {
            slot_origin.insert(
                *slot,
                Inbound {
                    layer: layer.name().to_string(),
                    node_index: 0,
                    tensor_index: 0,
                },
            );
        }
        let mut nodes = Vec::with_capacity(calls.len());
        for (call, producer) in calls {
            let input_keys: Vec<SlotKey> = producer
                .inputs
                .iter()
                .map(|t| producer_of(t).map(|p| (p.call, p.output_index)))
                .collect::<Result<_>>()?;
            let input_slots_of_node: Vec<usize> = input_keys
                .iter()
                .map(|k| {
                    slots.get(k).copied().ok_or_else(|| {
                        Error::Graph(format!(
                            "layer '{}' reads a tensor computed outside the model",
                            producer.layer.name()
                        ))
                    })
                })
                .collect::<Result<_>>()?;
            let input_shapes_of_node: Vec<SymbolicShape> = producer
                .inputs
                .iter()
                .map(|t| t.shape())
                .collect::<Result<_>>()?;
            let output_shapes = producer.layer.build(&input_shapes_of_node)?;
            let outputs: Vec<usize> = (0..output_shapes.len())
                .map(|i| {
                    let slot = slots.len();
                    slots.insert((call, i), slot);
                    slot
                })
                .collect();
            let depth = 1 + input_slots_of_node
                .iter()
                .map(|s| depth_of_slot.get(s).copied().unwrap_or(0))
                .max()
                .unwrap_or(0);
            let inbound = input_slots_of_node
                .iter()
                .filter_map(|s| slot_origin.get(s).cloned())
                .collect();
            let node_index = call_counts
                .entry(producer.layer.name().to_string())
                .or_insert(0);
            for (i, slot) in outputs.iter().enumerate() {
                depth_of_slot.insert(*slot, depth);
                slot_origin.insert(
                    *slot,
                    Inbound {
                        layer: producer.layer.name().to_string(),
                        node_index: *node_index,
                        tensor_index: i,
                    },
                );
            }
            *node_index += 1;
            nodes.push(Node {
                layer: producer.layer,
                inputs: input_slots_of_node,
                outputs,
                output_shapes,
                inbound,
                depth,
            });
        }

        let mut output_slots = Vec::with_capacity(outputs.len());
        let mut output_shapes = Vec::with_capacity(outputs.len());
        for output in outputs {
            let p = producer_of(output)?;
            let slot = slots
                .get(&(p.call, p.output_index))
                .copied()
                .ok_or_else(|| Error::Graph("an output could not be reached".into()))?;
            output_slots.push(slot);
            output_shapes.push(output.shape()?);
        }
        check_unique_names(&input_layers, &nodes)?;
        let slot_count = slots.len();
        let mut last_reader = vec![None; slot_count];
        for (i, node) in nodes.iter().enumerate() {
            for &s in &node.inputs {
                last_reader[s] = Some(i);
            }
        }
        for &s in &output_slots {
            last_reader[s] = None;
        }
        let sole_output_producers = output_slots
            .iter()
            .map(|&slot| sole_producer(&nodes, &output_slots, slot))
            .collect();
        let sole_feeders: Vec<Option<usize>> = (0..nodes.len())
            .map(|node| sole_feeder(&nodes, &output_slots, node))
            .collect();
        let mut sole_readers = vec![None; nodes.len()];
        for (reader, feeder) in sole_feeders.iter().enumerate() {
            if let Some(feeder) = *feeder {
                sole_readers[feeder] = Some(reader);
            }
        }
        Ok(Graph {
            input_layers,
            input_shapes,
            input_slots,
            nodes,
            output_slots,
            output_shapes,
            slot_count,
            last_reader,
            sole_output_producers,
            sole_feeders,
            sole_readers,
        })
    }

    /// The node and the index among its outputs that produce the graph's output `output`, when
    /// that value goes nowhere else: no node reads it and no other output repeats it (so a
    /// gradient given for it reaches that node's output alone).
    pub fn sole_producer_of_output(&self, output: usize) -> Option<(usize, usize)> {
        self.sole_output_producers.get(output).copied().flatten()
    }

    /// The node whose only output is node `node`'s only input, when no other node reads that
    /// value and it is not an output of the graph: the gradient `node` passes back is then that
    /// value's whole gradient, so the two calls can be differentiated as one.
    pub fn sole_feeder(&self, node: usize) -> Option<usize> {
        self.sole_feeders.get(node).copied().flatten()
    }

    /// The node that node `node` is the sole feeder of ([`Graph::sole_feeder`]): the only
    /// reader of its only output, which is not an output of the graph, so that the two calls can
    /// run as one.
    pub fn sole_reader(&self, node: usize) -> Option<usize> {
        self.sole_readers.get(node).copied().flatten()
    }

    /// Every distinct layer, inputs first, then in call order (Keras's `model.layers`).
    pub fn layers(&self) -> Vec<Arc<dyn Layer>> {
        let mut seen = HashSet::new();
        let mut layers = Vec::new();
        let all = self
            .input_layers
            .iter()
            .chain(self.nodes.iter().map(|n| &n.layer));
        for layer in all {
            if seen.insert(Arc::as_ptr(layer) as *const () as usize) {
                layers.push(layer.clone());
            }
        }
        layers
    }
}

/// The node and output index producing `slot`, unless a node reads it or it is more than one
/// of the graph's outputs.
fn sole_producer(nodes: &[Node], output_slots: &[usize], slot: usize) -> Option<(usize, usize)> {
    let repeated = output_slots.iter().filter(|&&s| s == slot).count() > 1;
    let read = nodes.iter().any(|node| node.inputs.contains(&slot));
    if repeated || read {
        return None;
    }
    nodes.iter().enumerate().find_map(|(index, node)| {
        let position = node.outputs.iter().position(|&s| s == slot)?;
        Some((index, position))
    })
}

/// See [`Graph::sole_feeder`].
fn sole_feeder(nodes: &[Node], output_slots: &[usize], node: usize) -> Option<usize> {
    let &[slot] = &nodes[node].inputs[..] else {
        return None;
    };
    let readers = nodes.iter().flat_map(|n| &n.inputs).filter(|&&s| s == slot);
    if readers.count() > 1 || output_slots.contains(&slot) {
        return None;
    }
    nodes[..node].iter().position(|n| n.outputs == [slot])
}

fn producer_of(tensor: &SymbolicTensor) -> Result<Producer> {
    tensor.shape()?;
    tensor
        .producer()?
        .ok_or_else(|| Error::Graph("a symbolic tensor has no producing call".into()))
}

/// The calls between the outputs and the inputs, by call order, or an error when an output
/// depends on an `Input` that is not among the model's inputs.
fn collect_calls(
    outputs: &[SymbolicTensor],
    input_slots: &HashMap<SlotKey, usize>,
) -> Result<BTreeMap<usize, Producer>> {
    let mut calls = BTreeMap::new();
    let mut stack: Vec<SymbolicTensor> = outputs.to_vec();
    while let Some(tensor) = stack.pop() {
        let producer = producer_of(&tensor)?;
        let key = (producer.call, producer.output_index);
        if input_slots.contains_key(&key) || calls.contains_key(&producer.call) {
            continue;
        }
        if producer.layer.as_any().is::<InputLayer>() {
            return Err(Error::Graph(format!(
                "graph disconnected: an output depends on input '{}', which is not among the model's inputs",
                producer.layer.name()
            )));
        }
        stack.extend(producer.inputs.iter().copied());
        calls.insert(producer.call, producer);
    }
    Ok(calls)
}

fn check_unique_names(input_layers: &[Arc<dyn Layer>], nodes: &[Node]) -> Result<()> {
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    let all = input_layers.iter().chain(nodes.iter().map(|n| &n.layer));
    for layer in all {
        let id = Arc::as_ptr(layer) as *const () as usize;
        if let Some(other) = by_name.insert(layer.name(), id) {
            if other != id {
                return Err(Error::Graph(format!(
                    "two different layers are named '{}': layer names must be unique in a model",
                    layer.name()
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkeras_layers::{Dense, Input};

    #[test]
    fn traces_calls_in_order_with_slots_depths_and_last_readers() {
        let input = Input::named("in", &[4]);
        let shared = Dense::new(4).name("shared");
        let once = shared(input);
        let twice = shared(once);
        let out = Dense::new(2).name("out")(twice);
        let graph = Graph::trace(&[input], &[out]).unwrap();
        let names: Vec<&str> = graph.nodes.iter().map(|n| n.layer.name()).collect();
        assert_eq!(names, ["shared", "shared", "out"]);
        assert_eq!(graph.input_slots, [0]);
        assert_eq!(graph.nodes[0].inputs, [0]);
        assert_eq!(graph.nodes[1].inputs, graph.nodes[0].outputs);
        assert_eq!(graph.output_slots, graph.nodes[2].outputs);
        assert_eq!(
            graph.nodes.iter().map(|n| n.depth).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        // The second call of `shared` reads the first's output: Keras's `shared[0][0]`.
        let inbound = &graph.nodes[1].inbound[0];
        assert_eq!(
            (
                inbound.layer.as_str(),
                inbound.node_index,
                inbound.tensor_index
            ),
            ("shared", 0, 0)
        );
        assert_eq!(graph.nodes[2].inbound[0].node_index, 1);
        // Each value is freed after its last reader; the output is kept.
        assert_eq!(graph.last_reader[0], Some(0));
        assert_eq!(graph.last_reader[graph.output_slots[0]], None);
        assert_eq!(graph.layers().len(), 3, "input, shared and out, each once");
        assert_eq!(graph.sole_producer_of_output(0), Some((2, 0)));
    }

    #[test]
    fn an_output_read_elsewhere_or_repeated_has_no_sole_producer() {
        let input = Input::new(&[3]);
        let hidden = Dense::new(3)(input);
        let read = Graph::trace(&[input], &[hidden, Dense::new(1)(hidden)]).unwrap();
        assert_eq!(read.sole_producer_of_output(0), None);
        assert_eq!(read.sole_producer_of_output(1), Some((1, 0)));
        let repeated = Graph::trace(&[input], &[hidden, hidden]).unwrap();
        assert_eq!(repeated.sole_producer_of_output(0), None);
    }

    #[test]
    fn a_node_has_a_sole_feeder_only_where_it_alone_reads_the_feeders_only_output() {
        let input = Input::new(&[3]);
        let first = Dense::new(3)(input);
        let second = Dense::new(3)(first);
        let chain = Graph::trace(&[input], &[Dense::new(1)(second)]).unwrap();
        // The first node reads a model input, which no node produces.
        let feeders: Vec<_> = (0..3).map(|node| chain.sole_feeder(node)).collect();
        assert_eq!(feeders, [None, Some(0), Some(1)]);
        let readers: Vec<_> = (0..3).map(|node| chain.sole_reader(node)).collect();
        assert_eq!(readers, [Some(1), Some(2), None]);
        // `first` read twice, and `second` an output as well as read.
        let twice = Dense::new(2)(first);
        let branched = Graph::trace(&[input], &[second, Dense::new(1)(second), twice]).unwrap();
        assert!((0..4).all(|node| branched.sole_feeder(node).is_none()));
        assert!((0..4).all(|node| branched.sole_reader(node).is_none()));
    }

    #[test]
    fn refuses_what_keras_refuses() {
        let (a, b) = (Input::new(&[2]), Input::new(&[2]));
        let out = Dense::new(1)(b);
        let err = Graph::trace(&[a], &[out]).err().unwrap().to_string();
        assert!(err.contains("graph disconnected"), "{err}");
        let err = Graph::trace(&[a, a], &[Dense::new(1)(a)])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("given twice"), "{err}");
        let h = Dense::new(2).name("twin")(a);
        let clash = Dense::new(1).name("twin")(h);
        let err = Graph::trace(&[a], &[clash]).err().unwrap().to_string();
        assert!(
            err.contains("two different layers are named 'twin'"),
            "{err}"
        );
        let err = Graph::trace(&[h], &[clash]).err().unwrap().to_string();
        assert!(err.contains("must come from Input"), "{err}");
        assert!(Graph::trace(&[], &[a]).is_err());
    }
}
