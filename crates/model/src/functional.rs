//! `Functional`: a model's graph as a layer, so that a model nests inside another.

use std::any::Any;
use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};

use candle_core::{DType, Device, Tensor};
use rkeras_layers::builder::first_output;
use rkeras_layers::fusion::{self, PairCall};
use rkeras_layers::record::record_call;
use rkeras_layers::symbolic::call_layer;
use rkeras_layers::{
    CallContext, CallRecord, Error, Layer, LayerBase, Result, SymbolicShape, SymbolicTensor,
    Weight, WeightGrads,
};
use serde_json::json;

use crate::backward;
use crate::graph::Graph;

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
    /// A node and the sole reader of its output run as one call where the pair has a fused pass
    /// ([`fusion::call_pair`]). In a recording context each node's call is recorded
    /// ([`record_call`]) and the records, in node order, are saved for [`Layer::backward`].
    pub fn run(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let g = &self.graph;
        let mut values = self.bind_inputs(inputs)?;
        // One slot per node when recording.
        let mut records: Option<Vec<Option<CallRecord>>> = ctx
            .is_recording()
            .then(|| g.nodes.iter().map(|_| None).collect());
        // Nodes already run, as the second call of a fused pair.
        let mut ran = vec![false; g.nodes.len()];
        let mut args = Vec::new();
        for (i, node) in g.nodes.iter().enumerate() {
            if !ran[i] {
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
                let (last, outputs) = self.call_node(i, &args, ctx, records.as_mut())?;
                ran[last] = true;
                for (slot, value) in g.nodes[last].outputs.iter().zip(outputs) {
                    values[*slot] = Some(value);
                }
            }
            for &s in &node.inputs {
                if g.last_reader[s] == Some(i) {
                    values[s] = None;
                }
            }
        }
        if let Some(records) = records {
            let records = records
                .into_iter()
                .map(|record| record.ok_or_else(|| Error::Graph("a call was not recorded".into())))
                .collect::<Result<Vec<CallRecord>>>()?;
            ctx.save(records);
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

    /// The value slots with the model's inputs bound, once checked against the input shapes.
    fn bind_inputs(&self, inputs: &[Tensor]) -> Result<Vec<Option<Tensor>>> {
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
        Ok(values)
    }

    /// Runs node `index` on `args`, with the sole reader of its output where the two have a
    /// fused pass, recording the calls into `records` when given; returns the index of the last
    /// node run (`index` or that reader) and its outputs.
    fn call_node(
        &self,
        index: usize,
        args: &[Tensor],
        ctx: &mut CallContext,
        records: Option<&mut Vec<Option<CallRecord>>>,
    ) -> Result<(usize, Vec<Tensor>)> {
        let g = &self.graph;
        let node = &g.nodes[index];
        let pair = g.sole_reader(index).and_then(|reader| {
            let reader_layer = g.nodes[reader].layer.as_ref();
            fusion::call_pair(node.layer.as_ref(), reader_layer, args, ctx)
                .map(|call| (reader, call))
        });
        let (last, outputs) = match (pair, records) {
            (Some((reader, call)), records) => {
                let PairCall {
                    outputs,
                    records: pair_records,
                } = call?;
                if let (Some(records), Some((first, second))) = (records, pair_records) {
                    records[index] = Some(first);
                    records[reader] = Some(second);
                }
                (reader, outputs)
            }
            (None, Some(records)) => {
                let record = record_call(node.layer.as_ref(), args, ctx)?;
                let outputs = record.outputs.clone();
                records[index] = Some(record);
                (index, outputs)
            }
            (None, None) => (index, node.layer.call(args, ctx)?),
        };
        let expected = &g.nodes[last];
        if outputs.len() != expected.outputs.len() {
            return Err(Error::Graph(format!(
                "layer '{}' returned {} outputs, expected {}",
                expected.layer.name(),
                outputs.len(),
                expected.outputs.len()
            )));
        }
        Ok((last, outputs))
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

    /// Every layer that mixes samples meets the other parts of its batch.
    fn meets_other_parts(&self, device: &Device) -> bool {
        self.graph
            .layers()
            .iter()
            .all(|layer| !layer.mixes_samples() || layer.meets_other_parts(device))
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
    use rkeras_layers::{Conv2D, Dense, Input, Lambda, MaxPooling2D};

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
    fn a_convolution_and_the_max_pooling_of_its_output_alone_run_as_one_call() {
        let input = Input::new(&[7, 7, 2]);
        let features = Conv2D::new(3, (3, 3)).activation("relu")(input);
        let pooled = MaxPooling2D::new((2, 2))(features);
        let model = Model::new(input, pooled).unwrap();
        let values: Vec<f32> = (0..2 * 7 * 7 * 2)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let x = tensor(&values, &[2, 7, 7, 2]);
        let layer = model.as_layer();
        let run = |ctx: &mut CallContext| {
            let y = layer.call(std::slice::from_ref(&x), ctx).unwrap();
            y[0].flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        // Candle's autograd sees the calls one by one; inference runs the pair as one.
        let one_by_one = run(&mut CallContext::new(true));
        assert_eq!(run(&mut CallContext::new(false)), one_by_one);
        assert!(one_by_one.iter().any(|&v| v > 0.0));
        // Recorded as one: the convolution's output is never made, so neither record holds it.
        let record = record_call(
            layer.as_ref(),
            std::slice::from_ref(&x),
            &mut CallContext::recording(),
        )
        .unwrap();
        let y = record.outputs[0].flatten_all().unwrap();
        assert_eq!(y.to_vec1::<f32>().unwrap(), one_by_one);
        let nodes = record.saved::<Vec<CallRecord>>("model").unwrap();
        assert_eq!(nodes.len(), 2);
        assert!(nodes[0].outputs.is_empty() && nodes[1].inputs.is_empty());
        // The convolution's output is also the model's: each call runs, and is recorded, alone.
        let both = Model::new(input, vec![features, pooled]).unwrap();
        let record = record_call(
            both.as_layer().as_ref(),
            std::slice::from_ref(&x),
            &mut CallContext::recording(),
        )
        .unwrap();
        let nodes = record.saved::<Vec<CallRecord>>("both").unwrap();
        assert_eq!((nodes[0].outputs.len(), nodes[1].inputs.len()), (1, 1));
        let pooled = record.outputs[1].flatten_all().unwrap();
        assert_eq!(pooled.to_vec1::<f32>().unwrap(), one_by_one);
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
