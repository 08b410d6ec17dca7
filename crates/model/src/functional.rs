//! `Functional`: a model's graph as a layer, so that a model nests inside another.

use std::any::Any;
use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};

use candle_core::{Device, Tensor};
use rkeras_layers::layer_base_methods;
use rkeras_layers::record::record_call;
use rkeras_layers::{
    CallContext, CallRecord, Error, Layer, LayerBase, Result, SymbolicShape, Weight, WeightGrads,
};
use serde_json::json;

use crate::backward;
use crate::graph::{Graph, Node};

/// State another crate attaches to a model (the training crate keeps its compile state here).
pub type Extension = Option<Box<dyn Any + Send>>;

/// A functional model's graph, named, and runnable as one layer.
pub struct Functional {
    base: LayerBase,
    graph: Graph,
    /// Whether some layer mixes the samples of a batch, decided once: training asks every step.
    mixes_samples: bool,
    extension: Mutex<Extension>,
}

impl Functional {
    /// A functional layer named `name` over `graph`.
    pub fn new(name: String, graph: Graph) -> Self {
        let mixes_samples = graph.layers().iter().any(|layer| layer.mixes_samples());
        Functional {
            base: LayerBase::new(name, true),
            graph,
            mixes_samples,
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
    /// In a recording context each node's call is recorded ([`record_call`]) and the records,
    /// in node order, are saved for [`Layer::backward`].
    pub fn run(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        if !ctx.is_recording() {
            return self.execute(inputs, |node, args| node.layer.call(args, ctx));
        }
        let mut records = Vec::with_capacity(self.graph.nodes.len());
        let outputs = self.execute(inputs, |node, args| {
            let record = record_call(node.layer.as_ref(), args, ctx)?;
            let outputs = record.outputs.clone();
            records.push(record);
            Ok(outputs)
        })?;
        ctx.save(records);
        Ok(outputs)
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

    fn mixes_samples(&self) -> bool {
        self.mixes_samples
    }

    /// The nodes' own backward passes, on every device: each node is differentiated as it
    /// was recorded (by its layer, or by candle's autograd over its call).
    fn has_backward(&self, _device: &Device) -> bool {
        true
    }

    /// Runs the nodes backward, in reverse order, from the records of their calls.
    fn backward(
        &self,
        record: CallRecord,
        grad_outputs: &[Tensor],
        needs_input_grad: &[bool],
        weight_grads: &mut WeightGrads,
    ) -> Result<Vec<Option<Tensor>>> {
        let records = record
            .state
            .and_then(|state| state.downcast::<Vec<CallRecord>>().ok())
            .ok_or_else(|| {
                Error::Graph(format!(
                    "model '{}': backward needs the record of a recorded call",
                    self.name()
                ))
            })?;
        backward::run(
            &self.graph,
            *records,
            grad_outputs,
            needs_input_grad,
            weight_grads,
        )
    }
}
