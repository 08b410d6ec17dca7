//! `Functional`: a model's graph as a layer, so that a model nests inside another.

use std::any::Any;
use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};

use candle_core::Tensor;
use rkeras_layers::layer::{CallRecord, WeightGrads};
use rkeras_layers::layer_base_methods;
use rkeras_layers::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape, Weight};
use serde_json::json;

use crate::backward;
use crate::graph::{Graph, Node};

/// State another crate attaches to a model (the training crate keeps its compile state here).
pub type Extension = Option<Box<dyn Any + Send>>;

/// A functional model's graph, named, and runnable as one layer.
pub struct Functional {
    base: LayerBase,
    graph: Graph,
    /// Whether every layer treats samples on their own, decided once: training asks every step.
    per_sample: bool,
    extension: Mutex<Extension>,
}

impl Functional {
    /// A functional layer named `name` over `graph`.
    pub fn new(name: String, graph: Graph) -> Self {
        let per_sample = graph.layers().iter().all(|layer| layer.is_per_sample());
        Functional {
            base: LayerBase::new(name, true),
            graph,
            per_sample,
            extension: Mutex::new(None),
        }
    }

    /// The slot other crates keep per-model state in, shared by every handle on the model.
    pub fn extension(&self) -> MutexGuard<'_, Extension> {
        self.extension
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Runs the graph on concrete inputs, in order, freeing each value after its last reader.
    pub fn run(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        self.execute(inputs, |node, args| node.layer.call(args, ctx))
    }

    /// Runs the graph for training and keeps every node's [`CallRecord`], in node order, for
    /// the backward pass.
    fn run_recorded(
        &self,
        inputs: &[Tensor],
        ctx: &mut CallContext,
    ) -> Result<(Vec<Tensor>, Vec<CallRecord>)> {
        let mut records = Vec::with_capacity(self.graph.nodes.len());
        // Only the nodes producing the model's outputs keep logits, and only if asked to.
        let asked = ctx.keeps_logits();
        let outputs = self.execute(inputs, |node, args| {
            // Nodes run in order, so the next record's index is this node's.
            ctx.set_keep_logits(asked && self.graph.produces_sole_output(records.len()));
            let record = node.layer.call_recorded(args, ctx);
            ctx.set_keep_logits(asked);
            let record = record?;
            let outputs = record.outputs.clone();
            records.push(record);
            Ok(outputs)
        })?;
        Ok((outputs, records))
    }

    /// Runs the graph, calling each node through `call_node`.
    fn execute(
        &self,
        inputs: &[Tensor],
        mut call_node: impl FnMut(&Node, &[Tensor]) -> Result<Vec<Tensor>>,
    ) -> Result<Vec<Tensor>> {
        let g = &self.graph;
        if inputs.len() != g.input_slots.len() {
            return Err(Error::Graph(format!(
                "model '{}' takes {} input(s), got {}",
                self.name(),
                g.input_slots.len(),
                inputs.len()
            )));
        }
        let mut values: Vec<Option<Tensor>> = vec![None; g.slot_count];
        for ((x, slot), (layer, shape)) in inputs
            .iter()
            .zip(&g.input_slots)
            .zip(g.input_layers.iter().zip(&g.input_shapes))
        {
            if !shape.accepts(x.dims()) {
                return Err(Error::shape(layer.name(), shape, format!("{:?}", x.dims())));
            }
            values[*slot] = Some(x.clone());
        }
        let mut args = Vec::new();
        for (i, node) in g.nodes.iter().enumerate() {
            args.clear();
            for &s in &node.inputs {
                let value = values[s].clone().ok_or_else(|| {
                    Error::Graph(format!(
                        "layer '{}' read a value not yet computed",
                        node.layer.name()
                    ))
                })?;
                args.push(value);
            }
            let outputs = call_node(node, &args)?;
            if outputs.len() != node.outputs.len() {
                return Err(Error::Graph(format!(
                    "layer '{}' returned {} outputs, expected {}",
                    node.layer.name(),
                    outputs.len(),
                    node.outputs.len()
                )));
            }
            for (slot, value) in node.outputs.iter().zip(outputs) {
                values[*slot] = Some(value);
            }
            for &s in &node.inputs {
                if g.last_reader[s] == Some(i) {
                    values[s] = None;
                }
            }
        }
        g.output_slots
            .iter()
            .map(|&s| {
                values[s]
                    .clone()
                    .ok_or_else(|| Error::Graph("an output was not computed".into()))
            })
            .collect()
    }
}

impl Layer for Functional {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        "Functional"
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let g = &self.graph;
        if inputs.len() != g.input_shapes.len() {
            return Err(Error::Graph(format!(
                "model '{}' takes {} input(s), got {}",
                self.name(),
                g.input_shapes.len(),
                inputs.len()
            )));
        }
        for (given, expected) in inputs.iter().zip(&g.input_shapes) {
            let fits = given.rank() == expected.rank()
                && given
                    .dims()
                    .iter()
                    .zip(expected.dims())
                    .skip(1)
                    .all(|(a, b)| a.is_none() || b.is_none() || a == b);
            if !fits {
                return Err(Error::shape(self.name(), expected, given));
            }
        }
        let batch = match inputs {
            [only] => only.dims().first().copied().flatten(),
            _ => None,
        };
        Ok(g.output_shapes
            .iter()
            .map(|s| {
                if batch.is_some() {
                    s.with_batch(batch)
                } else {
                    s.clone()
                }
            })
            .collect())
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        self.run(inputs, ctx)
    }

    fn weights(&self) -> Vec<Weight> {
        let mut seen = HashSet::new();
        let trainable = self.trainable();
        self.graph
            .layers()
            .iter()
            .flat_map(|layer| {
                let name = layer.name().to_string();
                layer
                    .weights()
                    .into_iter()
                    .map(move |w| w.nested(&name, trainable))
            })
            .filter(|w| seen.insert(w.var.as_tensor().id()))
            .collect()
    }

    fn config(&self) -> serde_json::Value {
        let g = &self.graph;
        let layers: Vec<serde_json::Value> = g
            .layers()
            .iter()
            .map(
                |l| json!({ "class_name": l.class_name(), "name": l.name(), "config": l.config() }),
            )
            .collect();
        json!({
            "name": self.name(),
            "trainable": self.trainable(),
            "layers": layers,
            "input_layers": g.input_layers.iter().map(|l| l.name()).collect::<Vec<_>>(),
        })
    }

    fn regularization_losses(&self) -> Result<Vec<Tensor>> {
        let mut all = Vec::new();
        for layer in self.graph.layers() {
            all.extend(layer.regularization_losses()?);
        }
        Ok(all)
    }

    fn output_count(&self) -> usize {
        self.graph.output_slots.len()
    }

    fn has_backward(&self) -> bool {
        self.graph.layers().iter().all(|layer| layer.has_backward())
    }

    fn is_per_sample(&self) -> bool {
        self.per_sample
    }

    fn call_recorded(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<CallRecord> {
        let (outputs, records) = self.run_recorded(inputs, ctx)?;
        let mut record = CallRecord::new(inputs.to_vec(), outputs);
        // An output's logits pass through when the node's output is the model's alone.
        record.logits = (0..self.graph.output_slots.len())
            .map(|output| {
                let (node, position) = self.graph.sole_producer_of_output(output)?;
                records[node].output_logits(position).cloned()
            })
            .collect();
        record.state = Some(Box::new(records));
        Ok(record)
    }

    /// Runs the nodes backward, in reverse order, from the records of their calls.
    fn backward(
        &self,
        record: CallRecord,
        grad_outputs: &[Tensor],
        needs_input_grad: &[bool],
        weight_grads: &mut WeightGrads,
    ) -> Result<Vec<Option<Tensor>>> {
        let flagged: Vec<usize> = (0..self.graph.output_slots.len())
            .filter(|&output| record.is_grad_wrt_logits(output))
            .collect();
        let mut records = record
            .state
            .and_then(|state| state.downcast::<Vec<CallRecord>>().ok())
            .ok_or_else(|| {
                Error::Graph(format!(
                    "model '{}': backward needs the record of a call_recorded run",
                    self.name()
                ))
            })?;
        for output in flagged {
            // `call_recorded` kept logits only for outputs with a sole producer.
            if let Some((node, position)) = self.graph.sole_producer_of_output(output) {
                records[node].set_grad_wrt_logits(position)?;
            }
        }
        backward::run(
            &self.graph,
            *records,
            grad_outputs,
            needs_input_grad,
            weight_grads,
        )
    }
}
