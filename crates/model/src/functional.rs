//! `Functional`: a model's graph as a layer, so that a model nests inside another.

use std::any::Any;
use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};

use candle_core::{DType, Device, Tensor};
use rkeras_layers::builder::first_output;
use rkeras_layers::record::record_call;
use rkeras_layers::symbolic::call_layer;
use rkeras_layers::{
    CallContext, CallRecord, Error, Layer, LayerBase, Result, SymbolicShape, SymbolicTensor,
    Weight, WeightGrads,
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
    /// `Functional`, or `Sequential` for a [`Sequential`](crate::Sequential)'s graph.
    class_name: &'static str,
    /// The symbolic inputs and outputs of the graph in the session: those it was built from,
    /// or those of a replay of its calls (see [`Functional::symbolic_io`]).
    symbolic: Mutex<Option<SymbolicIo>>,
}

/// A model's symbolic inputs and outputs.
type SymbolicIo = (Vec<SymbolicTensor>, Vec<SymbolicTensor>);

impl Functional {
    /// A functional layer named `name` over `graph`.
    pub fn new(name: String, graph: Graph) -> Self {
        let mixes_samples = graph.layers().iter().any(|layer| layer.mixes_samples());
        Functional {
            base: LayerBase::new(name, true),
            graph,
            mixes_samples,
            extension: Mutex::new(None),
            class_name: "Functional",
            symbolic: Mutex::new(None),
        }
    }

    /// The graph of a [`Sequential`](crate::Sequential) named `name`: the same layer, shown
    /// and saved under Keras's class name `Sequential`.
    pub fn sequential(name: String, graph: Graph) -> Self {
        Functional {
            class_name: "Sequential",
            ..Functional::new(name, graph)
        }
    }

    /// The slot other crates keep per-model state in, shared by every handle on the model.
    pub fn extension(&self) -> MutexGuard<'_, Extension> {
        self.extension
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sets the model's own flag only, leaving its layers' (a loader restoring each flag as
    /// it was saved).
    pub(crate) fn set_own_trainable(&self, trainable: bool) {
        self.base.set_trainable(trainable);
    }

    /// Keeps the symbolic tensors the graph was traced from, so that [`Functional::symbolic_io`]
    /// gives them back (Keras's `model.inputs` are the very tensors the model was built on).
    pub(crate) fn remember_symbolic_io(
        &self,
        inputs: Vec<SymbolicTensor>,
        outputs: Vec<SymbolicTensor>,
    ) {
        *self.symbolic.lock().unwrap_or_else(|p| p.into_inner()) = Some((inputs, outputs));
    }

    /// The model's symbolic inputs and outputs in this thread's session: those it was built
    /// from while they are valid here, else (a loaded model, a `Sequential`, another thread,
    /// after `clear_session`) those of its calls recorded again, input layers first, which also
    /// gives each layer a first call for `layer.output()`.
    pub fn symbolic_io(&self) -> SymbolicIo {
        let mut symbolic = self.symbolic.lock().unwrap_or_else(|p| p.into_inner());
        let valid = |io: &SymbolicIo| io.0.iter().chain(&io.1).all(|t| t.shape().is_ok());
        match symbolic.as_ref() {
            Some(io) if valid(io) => io.clone(),
            _ => symbolic.insert(self.replay_calls()).clone(),
        }
    }

    /// Records every call of the graph anew in the session, in order.
    fn replay_calls(&self) -> SymbolicIo {
        let g = &self.graph;
        let mut values: Vec<Option<SymbolicTensor>> = vec![None; g.slot_count];
        for (layer, slot) in g.input_layers.iter().zip(&g.input_slots) {
            values[*slot] = Some(first_output(call_layer(layer, &[])));
        }
        let missing =
            || SymbolicTensor::failed(Error::Graph("a value of the graph was not computed".into()));
        for node in &g.nodes {
            let inputs: Vec<SymbolicTensor> = node
                .inputs
                .iter()
                .map(|&s| values[s].unwrap_or_else(missing))
                .collect();
            for (slot, output) in node.outputs.iter().zip(call_layer(&node.layer, &inputs)) {
                values[*slot] = Some(output);
            }
        }
        let read = |slots: &[usize]| {
            slots
                .iter()
                .map(|&s| values[s].unwrap_or_else(missing))
                .collect()
        };
        (read(&g.input_slots), read(&g.output_slots))
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
            // As Keras converts a model's inputs to its inputs' dtype (float32): integer images,
            // f64 arrays.
            values[*slot] = Some(if x.dtype() == DType::F32 {
                x.clone()
            } else {
                x.to_dtype(DType::F32)?
            });
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
    fn name(&self) -> &str {
        self.base.name()
    }

    fn trainable(&self) -> bool {
        self.base.trainable()
    }

    /// Freezes or unfreezes the model and every layer in it, as Keras's `trainable` setter
    /// does (so that a BatchNormalization in a frozen model runs in inference mode).
    fn set_trainable(&self, trainable: bool) {
        self.base.set_trainable(trainable);
        for layer in self.graph.layers() {
            layer.set_trainable(trainable);
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn class_name(&self) -> &'static str {
        self.class_name
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Model;
    use rkeras_layers::{Dense, Input, Lambda};

    fn tensor(values: &[f32], dims: &[usize]) -> Tensor {
        Tensor::from_slice(values, dims, &Device::Cpu).unwrap()
    }

    #[test]
    fn runs_its_nodes_in_order_and_records_them_only_when_asked() {
        let input = Input::new(&[2]);
        let double = Lambda::new(|x: &Tensor| Ok((x * 2.0)?))(input);
        let plus_one = Lambda::new(|x: &Tensor| Ok((x + 1.0)?))(double);
        let model = Model::new(input, plus_one).unwrap();
        let x = tensor(&[1.0, -3.0], &[1, 2]);
        let y = model.forward(std::slice::from_ref(&x)).unwrap();
        assert_eq!(y[0].to_vec2::<f32>().unwrap(), [[3.0, -5.0]]);
        let layer = model.as_layer();
        let mut ctx = CallContext::recording();
        let record = record_call(layer.as_ref(), std::slice::from_ref(&x), &mut ctx).unwrap();
        let nodes = record.saved::<Vec<CallRecord>>("model").unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[1].inputs[0].to_vec2::<f32>().unwrap(), [[2.0, -6.0]]);
        // A nested model keeps its own nodes' records inside its node's.
        let outer_input = Input::new(&[2]);
        let outer = Model::new(outer_input, model(outer_input)).unwrap();
        let record = record_call(
            outer.as_layer().as_ref(),
            &[x],
            &mut CallContext::recording(),
        )
        .unwrap();
        let outer_nodes = record.saved::<Vec<CallRecord>>("outer").unwrap();
        let inner_nodes = outer_nodes[0].saved::<Vec<CallRecord>>("inner").unwrap();
        assert_eq!((outer_nodes.len(), inner_nodes.len()), (1, 2));
    }

    #[test]
    fn weights_are_listed_once_under_their_paths_and_frozen_with_the_model() {
        let input = Input::new(&[3]);
        let inner = Model::named("inner", input, Dense::new(2).name("d")(input)).unwrap();
        let outer_input = Input::new(&[3]);
        let outer = Model::named("outer", outer_input, inner(outer_input)).unwrap();
        let paths: Vec<String> = outer.weights().into_iter().map(|w| w.path).collect();
        assert_eq!(paths, ["inner/d/kernel", "inner/d/bias"]);
        inner.set_trainable(false);
        assert!(outer.weights().iter().all(|w| !w.trainable));
        assert!(inner.weights().iter().all(|w| !w.trainable));
    }

    #[test]
    fn build_checks_the_input_count_and_shapes() {
        let input = Input::new(&[3]);
        let model = Model::named("m", input, Dense::new(2)(input)).unwrap();
        let layer = model.as_layer();
        let err = layer
            .build(&[SymbolicShape::batched(None, &[4])])
            .unwrap_err()
            .to_string();
        assert!(err.contains("'m'"), "{err}");
        assert!(layer.build(&[]).is_err());
        let shapes = layer
            .build(&[SymbolicShape::batched(Some(5), &[3])])
            .unwrap();
        assert_eq!(shapes[0].to_string(), "(5, 2)");
    }
}
