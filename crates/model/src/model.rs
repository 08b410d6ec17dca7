//! `Model`: a functional model, built from symbolic inputs and outputs, callable like a layer.

use std::any::Any;
use std::ops::Deref;
use std::sync::{Arc, MutexGuard};

use candle_core::{Device, Tensor};
use rkeras_layers::session::{default_device, unique_name};
use rkeras_layers::symbolic::{call_layer, one_or_list};
use rkeras_layers::{
    CallContext, Error, InputLayer, Layer, LayerWeights, Result, SymbolicFn, SymbolicShape,
    SymbolicTensor, Weight,
};

use crate::functional::{Extension, Functional};
use crate::graph::{Graph, Node};
use crate::tensor_list::TensorList;

/// A functional model: `Model::new(input, decoder(encoder(input)))?`.
///
/// Cloning a `Model` gives another handle to the same model (same layers, same weights).
/// A model is callable on symbolic tensors like a layer, which nests it inside another model
/// as one node sharing its weights.
///
/// Keras's model methods come with `use rkeras::prelude::*;`, from the training crate:
/// `model.compile(optimizer, loss)`, `model.fit(x, y, FitOptions)`, `model.evaluate(x, y, ..)`,
/// `model.predict(x, ..)`, `model.save(path)` and `model.save_weights(path)` (the `Training`
/// trait, `rkeras::fit::Training`), `model.summary()` (the `Summary` trait), and
/// `rkeras::fit::read(path)` to load a saved model back, compiled.
pub struct Model {
    functional: Arc<Functional>,
    call: Box<SymbolicFn>,
}

impl Model {
    /// The model computing `outputs` from `inputs`, named `functional`, `functional_1`...
    pub fn new(inputs: impl Into<TensorList>, outputs: impl Into<TensorList>) -> Result<Model> {
        Model::build(None, inputs.into(), outputs.into())
    }

    /// The model computing `outputs` from `inputs`, named `name`.
    pub fn named(
        name: &str,
        inputs: impl Into<TensorList>,
        outputs: impl Into<TensorList>,
    ) -> Result<Model> {
        Model::build(Some(name.to_string()), inputs.into(), outputs.into())
    }

    fn build(name: Option<String>, inputs: TensorList, outputs: TensorList) -> Result<Model> {
        let graph = Graph::trace(&inputs.0, &outputs.0)?;
        let name = name.unwrap_or_else(|| unique_name("functional"));
        let functional = Arc::new(Functional::new(name, graph));
        functional.remember_symbolic_io(inputs.0, outputs.0);
        Ok(Model::from_functional(functional))
    }

    /// A handle on an existing functional layer.
    pub fn from_functional(functional: Arc<Functional>) -> Model {
        let layer: Arc<dyn Layer> = functional.clone();
        let call: Box<SymbolicFn> = Box::new(move |x| one_or_list(call_layer(&layer, &[x])));
        Model { functional, call }
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        self.functional.name()
    }

    /// The model as a layer (to nest it by hand, or to inspect it).
    pub fn as_layer(&self) -> Arc<dyn Layer> {
        self.functional.clone()
    }

    /// The graph.
    pub fn graph(&self) -> &Graph {
        self.functional.graph()
    }

    /// The layer calls in execution order.
    pub fn nodes(&self) -> &[Node] {
        &self.graph().nodes
    }

    /// Every distinct layer, input layers first, then in call order (Keras's `model.layers`;
    /// a Sequential's, as Keras's, leaves out its `InputLayer`).
    ///
    /// Each layer then has a call in the session, so that `layer.output()`
    /// ([`LayerTensors`](rkeras_layers::LayerTensors)) works on the layers of a loaded model too.
    pub fn layers(&self) -> Vec<Arc<dyn Layer>> {
        self.functional.symbolic_io();
        let mut layers = self.graph().layers();
        if self.is_sequential() {
            layers.retain(|layer| !layer.as_any().is::<InputLayer>());
        }
        layers
    }

    /// Keras's class name of the model: `Functional`, or `Sequential` for a
    /// [`Sequential`](crate::Sequential) (also once saved and loaded back).
    pub fn class_name(&self) -> &'static str {
        self.functional.class_name()
    }

    /// Whether the model is a [`Sequential`](crate::Sequential)'s.
    pub fn is_sequential(&self) -> bool {
        self.class_name() == "Sequential"
    }

    /// The layer (or nested model, as a layer) named `name`.
    pub fn get_layer(&self, name: &str) -> Option<Arc<dyn Layer>> {
        self.layers().into_iter().find(|l| l.name() == name)
    }

    /// The nested model named `name`, as a `Model` that predicts and trains on its own.
    pub fn get_model(&self, name: &str) -> Option<Model> {
        let layer = self.get_layer(name)?;
        let any: Arc<dyn Any + Send + Sync> = layer;
        any.downcast::<Functional>()
            .ok()
            .map(Model::from_functional)
    }

    /// The symbolic inputs (Keras's `model.inputs`): those the model was built on, or, for a
    /// loaded model or a `Sequential`, those of its calls recorded in the session, so that
    /// `Model::new(model.inputs(), layer.output())` builds a model from part of it.
    pub fn inputs(&self) -> Vec<SymbolicTensor> {
        self.functional.symbolic_io().0
    }

    /// The symbolic outputs (Keras's `model.outputs`), as [`Model::inputs`].
    pub fn outputs(&self) -> Vec<SymbolicTensor> {
        self.functional.symbolic_io().1
    }

    /// The symbolic input, or a list of them (Keras's `model.input`).
    pub fn input(&self) -> SymbolicTensor {
        one_or_list(self.inputs())
    }

    /// The symbolic output, or a list of them (Keras's `model.output`).
    pub fn output(&self) -> SymbolicTensor {
        one_or_list(self.outputs())
    }

    /// The input shapes, batch first.
    pub fn input_shapes(&self) -> &[SymbolicShape] {
        &self.graph().input_shapes
    }

    /// The output shapes, batch first.
    pub fn output_shapes(&self) -> &[SymbolicShape] {
        &self.graph().output_shapes
    }

    /// Keras's output names (`model.output_names`): for each output, the name of the layer
    /// (or nested model) that produces it, or of the input it repeats.
    pub fn output_names(&self) -> Vec<String> {
        let graph = self.graph();
        graph
            .output_slots
            .iter()
            .map(|slot| {
                let producer = graph.nodes.iter().find(|n| n.outputs.contains(slot));
                match producer {
                    Some(node) => node.layer.name().to_string(),
                    None => graph
                        .input_slots
                        .iter()
                        .position(|s| s == slot)
                        .map_or_else(String::new, |i| graph.input_layers[i].name().to_string()),
                }
            })
            .collect()
    }

    /// Every weight, each once, with its path (`dense/kernel`, `encoder/dense/kernel`).
    pub fn weights(&self) -> Vec<Weight> {
        self.functional.weights()
    }

    /// The weights training changes.
    pub fn trainable_weights(&self) -> Vec<Weight> {
        self.weights().into_iter().filter(|w| w.trainable).collect()
    }

    /// The weights training leaves alone.
    pub fn non_trainable_weights(&self) -> Vec<Weight> {
        self.weights()
            .into_iter()
            .filter(|w| !w.trainable)
            .collect()
    }

    /// The number of scalar weights.
    pub fn count_params(&self) -> usize {
        self.weights().iter().map(Weight::count).sum()
    }

    /// Whether training may change the model's weights (each layer has its own flag too).
    pub fn trainable(&self) -> bool {
        self.functional.trainable()
    }

    /// Freezes (`false`) or unfreezes (`true`) the whole model.
    pub fn set_trainable(&self, trainable: bool) {
        self.functional.set_trainable(trainable)
    }

    /// Sets the model's own flag only, leaving its layers' as they are (a loader restoring each
    /// flag as it was saved, a rebuilt Sequential keeping its layers').
    pub(crate) fn set_own_trainable(&self, trainable: bool) {
        self.functional.set_own_trainable(trainable)
    }

    /// The device the weights live on (the session's default device for a model without weights).
    pub fn device(&self) -> Device {
        self.weights()
            .first()
            .map(|w| w.var.device().clone())
            .unwrap_or_else(default_device)
    }

    /// Calls the model on a concrete tensor for inference, as Keras's `model(x)`: `x`, shaped
    /// `(batch, ...)`, goes to the model's device and the output is returned there. For a
    /// model with several inputs or outputs, see [`Model::call_list`].
    pub fn call(&self, x: &Tensor) -> Result<Tensor> {
        let mut outputs = self.call_list(std::slice::from_ref(x))?;
        match outputs.len() {
            1 => Ok(outputs.remove(0)),
            n => Err(Error::Graph(format!(
                "model '{}' has {n} outputs: call it with call_list",
                self.name()
            ))),
        }
    }

    /// Calls the model on one concrete tensor per input for inference (Keras's
    /// `model([a, b])`), on the model's device; returns each output, in order.
    pub fn call_list(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let device = self.device();
        let inputs = inputs
            .iter()
            .map(|x| x.to_device(&device))
            .collect::<candle_core::Result<Vec<_>>>()?;
        self.forward(&inputs)
    }

    /// Copies of every weight on the CPU, in Keras's order (`model.get_weights()`): the
    /// layers in order, each layer's weights in creation order.
    pub fn get_weights(&self) -> Result<Vec<Tensor>> {
        self.functional.get_weights()
    }

    /// Sets every weight from tensors in [`Model::get_weights`]'s order (Keras's
    /// `model.set_weights(weights)`); a list of another length or a tensor of another shape is
    /// an error naming the weight (`dense_1/kernel`) and both shapes, and nothing is changed.
    pub fn set_weights(&self, weights: &[Tensor]) -> Result<()> {
        self.functional.set_weights(weights)
    }

    /// Runs the model for inference on tensors shaped `(batch, ...)`.
    pub fn forward(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        self.forward_t(inputs, &mut CallContext::new(false))
    }

    /// Runs the model with an explicit context (training flag, added losses).
    pub fn forward_t(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        self.functional.run(inputs, ctx)
    }

    /// The penalties of every weight regularizer in the model.
    pub fn regularization_losses(&self) -> Result<Vec<Tensor>> {
        self.functional.regularization_losses()
    }

    /// Calls the model on several symbolic tensors (a model with several inputs or outputs).
    pub fn call_many(&self, inputs: &[SymbolicTensor]) -> Vec<SymbolicTensor> {
        let layer: Arc<dyn Layer> = self.functional.clone();
        call_layer(&layer, inputs)
    }

    /// Whether Keras would call the model sequential-like (its summary then has 3 columns): a
    /// Sequential, or one call per depth, each with one input, and no layer called twice.
    pub fn is_sequential_like(&self) -> bool {
        // Keras's `print_summary` takes a Sequential as sequential-like whatever its layers.
        if self.is_sequential() {
            return true;
        }
        let nodes = self.nodes();
        let mut depths = std::collections::HashSet::new();
        let mut layers = std::collections::HashSet::new();
        nodes.iter().all(|n| {
            n.inputs.len() <= 1
                && depths.insert(n.depth)
                && layers.insert(Arc::as_ptr(&n.layer) as *const () as usize)
        }) && self.graph().input_layers.len() == 1
    }

    /// The slot other crates keep per-model state in (the training crate's compile state).
    pub fn extension(&self) -> MutexGuard<'_, Extension> {
        self.functional.extension()
    }

    /// Whether two handles are the same model.
    pub fn same_as(&self, other: &Model) -> bool {
        Arc::ptr_eq(&self.functional, &other.functional)
    }
}

impl Clone for Model {
    fn clone(&self) -> Self {
        Model::from_functional(self.functional.clone())
    }
}

impl Deref for Model {
    type Target = SymbolicFn;

    fn deref(&self) -> &SymbolicFn {
        &*self.call
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("name", &self.name()).finish()
    }
}
