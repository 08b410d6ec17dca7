//! `Sequential`: a linear stack of layers as a model, following Keras's
//! `keras/src/models/sequential.py`.
//!
//! ```
//! use rkeras_layers::{Conv2D, Dense, Flatten, Input, MaxPooling2D};
//! use rkeras_model::Sequential;
//!
//! # fn main() -> rkeras_layers::Result<()> {
//! let mut model = Sequential::new([
//!     Input::new(&[28, 28, 1]).into(),
//!     Conv2D::new(32, (3, 3)).activation("relu").into(),
//!     MaxPooling2D::new((2, 2)).into(),
//!     Flatten::new().into(),
//! ])?;
//! model.add(Dense::new(10).activation("softmax"))?;
//! assert_eq!(model.output_shapes()[0].to_string(), "(None, 10)");
//! assert_eq!(model.count_params(), 320 + 54_090);
//! # Ok(())
//! # }
//! ```
//!
//! A `Sequential` is a [`Model`] (it dereferences to one): it trains, predicts, prints its
//! summary, saves, and nests in a functional model (`sequential(x)`) like any model. Unlike
//! Keras, it needs its input shape from the start (an [`Input`](rkeras_layers::Input), or a
//! model as its first layer): there is no model to run before that.

use std::ops::Deref;
use std::sync::Arc;

use rkeras_layers::builder::{first_output, LayerBuilder, LayerConfig};
use rkeras_layers::session::unique_name;
use rkeras_layers::symbolic::{call_layer, with_scratch_arena};
use rkeras_layers::{Error, InputLayer, Layer, Result, SymbolicTensor};

use crate::{Functional, Graph, Model};

/// A linear stack of layers (Keras's `keras.Sequential`); see the module documentation.
pub struct Sequential {
    /// The model over the current stack, rebuilt by [`Sequential::add`] and
    /// [`Sequential::pop`] (its layers, and so its weights, are kept).
    model: Model,
}

/// What a [`Sequential`] is made of: an `Input` (first only), a layer's builder, a layer, or a
/// model. Made with `.into()`, as in `Sequential::new([Input::new(&[4]).into(), ...])`.
pub struct SequentialItem(Item);

enum Item {
    Input(SymbolicTensor),
    Layer(Result<Arc<dyn Layer>>),
}

impl Sequential {
    /// A model stacking `items`, the first an `Input` (or a model, whose input it takes), named
    /// `sequential`, `sequential_1`...: Keras's `Sequential([keras.Input(...), ...])`.
    pub fn new(items: impl IntoIterator<Item = SequentialItem>) -> Result<Sequential> {
        Sequential::stack_items(unique_name("sequential"), items)
    }

    /// A model stacking `items`, named `name`.
    pub fn named(
        name: &str,
        items: impl IntoIterator<Item = SequentialItem>,
    ) -> Result<Sequential> {
        Sequential::stack_items(name.to_string(), items)
    }

    fn stack_items(
        name: String,
        items: impl IntoIterator<Item = SequentialItem>,
    ) -> Result<Sequential> {
        let mut items = items.into_iter();
        let mut stack = match items.next() {
            Some(first) => Stack::start(&name, first)?,
            None => return Err(needs_input(&name)),
        };
        for item in items {
            stack.push(&name, item)?;
        }
        Ok(Sequential {
            model: stack.model(&name)?,
        })
    }

    /// Adds a layer (a builder, a layer or a model) on top of the stack (Keras's `add`). The
    /// model is rebuilt at once; an error (a shape the layer cannot take, a name already in
    /// the model) leaves it as it was. The compile state is kept.
    pub fn add(&mut self, item: impl Into<SequentialItem>) -> Result<()> {
        let mut stack = self.stack();
        stack.push(self.name(), item.into())?;
        self.restack(&stack)
    }

    /// Removes the top layer and returns it (Keras's `pop`); an error when only the input is
    /// left.
    pub fn pop(&mut self) -> Result<Arc<dyn Layer>> {
        let mut stack = self.stack();
        let top = stack.layers.pop().ok_or_else(|| {
            Error::Graph(format!(
                "Sequential model '{}' has no layer to pop",
                self.name()
            ))
        })?;
        self.restack(&stack)?;
        Ok(top)
    }

    /// The model's stack (a layer added twice appears twice).
    fn stack(&self) -> Stack {
        let graph = self.model.graph();
        Stack {
            input: graph.input_layers[0].clone(),
            layers: graph.nodes.iter().map(|node| node.layer.clone()).collect(),
        }
    }

    /// Rebuilds the model over `stack`, carrying over its trainable flag and compile state.
    fn restack(&mut self, stack: &Stack) -> Result<()> {
        let model = stack.model(self.name())?;
        model.set_own_trainable(self.model.trainable());
        let compiled = self.model.extension().take();
        *model.extension() = compiled;
        self.model = model;
        Ok(())
    }
}

/// The layers of a Sequential: its input layer, and the layers stacked on it, bottom first.
struct Stack {
    input: Arc<dyn Layer>,
    layers: Vec<Arc<dyn Layer>>,
}

impl Stack {
    /// The stack of the Sequential named `name` starting with `first`: an `Input`, or a model
    /// (under an input layer of its input's shape, as Keras builds it).
    fn start(name: &str, first: SequentialItem) -> Result<Stack> {
        let layer = match first.0 {
            Item::Input(tensor) => {
                return Ok(Stack {
                    input: input_layer_of(name, tensor)?,
                    layers: Vec::new(),
                })
            }
            Item::Layer(layer) => layer?,
        };
        let functional = layer
            .as_any()
            .downcast_ref::<Functional>()
            .ok_or_else(|| needs_input(name))?;
        match functional.graph().input_shapes.as_slice() {
            [shape] => Ok(Stack {
                input: Arc::new(InputLayer::new(unique_name("input_layer"), shape.clone())),
                layers: vec![layer],
            }),
            shapes => Err(Error::Graph(format!(
                "Sequential model '{name}': its first layer, model '{}', takes {} inputs, \
                 where a Sequential model takes one",
                layer.name(),
                shapes.len()
            ))),
        }
    }

    /// Puts `item`'s layer on top (the Sequential is named `name`).
    fn push(&mut self, name: &str, item: SequentialItem) -> Result<()> {
        match item.0 {
            Item::Layer(layer) => {
                self.layers.push(layer?);
                Ok(())
            }
            // Keras's message (`Sequential.add`).
            Item::Input(_) => Err(Error::Graph(format!(
                "Sequential model '{name}' has already been configured to use input shape {}: \
                 you cannot add a different Input layer to it",
                self.input_shape()
            ))),
        }
    }

    fn input_shape(&self) -> String {
        self.input
            .as_any()
            .downcast_ref::<InputLayer>()
            .map_or_else(|| "?".to_string(), |layer| layer.shape().to_string())
    }

    /// The model named `name` calling the layers in turn on the input's output. The calls are
    /// recorded in an arena of their own, so that a rebuild leaves nothing behind in the
    /// session.
    fn model(&self, name: &str) -> Result<Model> {
        self.check_unique_names(name)?;
        with_scratch_arena(|| {
            let start = first_output(call_layer(&self.input, &[]));
            let mut x = start;
            for layer in &self.layers {
                x = match call_layer(layer, &[x]).as_slice() {
                    [only] => *only,
                    many => {
                        return Err(Error::config(
                            layer.name(),
                            format!(
                                "returns {} tensors, but every layer of a Sequential model \
                                 must return one (use a functional model for several)",
                                many.len()
                            ),
                        ))
                    }
                };
                x.shape()?;
            }
            let graph = Graph::trace(&[start], &[x])?;
            Ok(sequential_model(name.to_string(), graph))
        })
    }

    /// Keras's check in `Sequential.add`: a name may appear twice only for the same layer.
    fn check_unique_names(&self, name: &str) -> Result<()> {
        let all: Vec<&Arc<dyn Layer>> = std::iter::once(&self.input).chain(&self.layers).collect();
        for (i, layer) in all.iter().enumerate() {
            let clash = all[..i]
                .iter()
                .any(|other| other.name() == layer.name() && !Arc::ptr_eq(other, layer));
            if clash {
                return Err(Error::Graph(format!(
                    "Sequential model '{name}': all layers should have unique names, and '{}' \
                     is already the name of a layer in this model: give the new layer another \
                     name",
                    layer.name()
                )));
            }
        }
        Ok(())
    }
}

fn needs_input(name: &str) -> Error {
    Error::Graph(format!(
        "Sequential model '{name}' needs its input shape first: start it with \
         Input::new(&[...]) (or with a model, whose input it takes)"
    ))
}

/// The input layer behind `tensor`, which must come straight from `Input(...)`.
fn input_layer_of(name: &str, tensor: SymbolicTensor) -> Result<Arc<dyn Layer>> {
    tensor.shape()?;
    match tensor.producer()? {
        Some(p) if p.layer.as_any().is::<InputLayer>() => Ok(p.layer),
        _ => Err(Error::Graph(format!(
            "Sequential model '{name}' takes layers and an Input(...), not the output of a \
             layer call"
        ))),
    }
}

fn sequential_model(name: String, graph: Graph) -> Model {
    Model::from_functional(Arc::new(Functional::sequential(name, graph)))
}

/// The Sequential model named `name` over `graph`, as a loader rebuilds it, or an error when
/// the graph is not a stack (one input, each call reading the one before, one output).
pub fn sequential_from_graph(name: String, graph: Graph) -> Result<Model> {
    let mut previous = match graph.input_slots.as_slice() {
        [slot] => *slot,
        slots => return Err(not_a_stack(&name, format!("{} inputs", slots.len()))),
    };
    for node in &graph.nodes {
        match (node.inputs.as_slice(), node.outputs.as_slice()) {
            ([read], [written]) if *read == previous => previous = *written,
            _ => {
                return Err(not_a_stack(
                    &name,
                    format!(
                        "layer '{}' does not read the layer below",
                        node.layer.name()
                    ),
                ))
            }
        }
    }
    if graph.output_slots != [previous] {
        return Err(not_a_stack(
            &name,
            "its output is not its top layer's".into(),
        ));
    }
    Ok(sequential_model(name, graph))
}

fn not_a_stack(name: &str, why: String) -> Error {
    Error::Graph(format!(
        "model '{name}' is a Sequential but not a stack of layers: {why}"
    ))
}

impl Deref for Sequential {
    type Target = Model;

    fn deref(&self) -> &Model {
        &self.model
    }
}

impl AsRef<Model> for Sequential {
    fn as_ref(&self) -> &Model {
        &self.model
    }
}

impl From<Sequential> for Model {
    fn from(sequential: Sequential) -> Model {
        sequential.model
    }
}

impl TryFrom<Model> for Sequential {
    type Error = Error;

    /// The Sequential behind a model that is one (a loaded Sequential, say), to add to it.
    fn try_from(model: Model) -> Result<Sequential> {
        if model.is_sequential() {
            Ok(Sequential { model })
        } else {
            Err(Error::Graph(format!(
                "model '{}' is a {}, not a Sequential: stack it in one with \
                 Sequential::new([model.into(), ...])",
                model.name(),
                model.class_name()
            )))
        }
    }
}

impl std::fmt::Debug for Sequential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequential")
            .field("name", &self.name())
            .finish()
    }
}

impl From<SymbolicTensor> for SequentialItem {
    /// An `Input(...)`, the first item of a stack.
    fn from(input: SymbolicTensor) -> Self {
        SequentialItem(Item::Input(input))
    }
}

impl<C: LayerConfig> From<LayerBuilder<C>> for SequentialItem {
    fn from(builder: LayerBuilder<C>) -> Self {
        SequentialItem::from(&builder)
    }
}

impl<C: LayerConfig> From<&LayerBuilder<C>> for SequentialItem {
    /// The builder's layer (the same one wherever else the builder is called).
    fn from(builder: &LayerBuilder<C>) -> Self {
        SequentialItem(Item::Layer(builder.layer()))
    }
}

impl From<Arc<dyn Layer>> for SequentialItem {
    fn from(layer: Arc<dyn Layer>) -> Self {
        SequentialItem(Item::Layer(Ok(layer)))
    }
}

impl From<&Model> for SequentialItem {
    /// The model as one layer, sharing its weights.
    fn from(model: &Model) -> Self {
        SequentialItem::from(model.as_layer())
    }
}

impl From<Model> for SequentialItem {
    fn from(model: Model) -> Self {
        SequentialItem::from(&model)
    }
}

impl From<&Sequential> for SequentialItem {
    fn from(sequential: &Sequential) -> Self {
        SequentialItem::from(&sequential.model)
    }
}

impl From<Sequential> for SequentialItem {
    fn from(sequential: Sequential) -> Self {
        SequentialItem::from(&sequential.model)
    }
}

#[cfg(test)]
#[path = "sequential_tests.rs"]
mod tests;
