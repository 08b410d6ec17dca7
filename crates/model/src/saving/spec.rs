//! The saved architecture: each model's layers (class name and config, nested models
//! recursively), its inputs, its layer calls with their inbound tensors, and its outputs.
//!
//! A layer object can appear in several models (the same `Input` feeds an encoder and the
//! autoencoder around it): every layer has an `id` unique in the file, and only its first
//! appearance, in save order, carries its config; later ones refer back to it.
//!
//! Names must follow [`names`](super::names)' rule (no `/`, no control characters...): a
//! model that breaks it is refused on save, as its file would be on load.

use std::collections::HashMap;
use std::sync::Arc;

use rkeras_layers::{LambdaLayer, Layer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::names::check_name;
use crate::{Functional, Graph};

/// A tensor inside a model: output `tensor_index` of call `node_index` of layer `layer`
/// (Keras's `inbound_nodes` triple); an input is `[input_name, 0, 0]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TensorRef(pub String, pub usize, pub usize);

/// One layer of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerSpec {
    /// Unique in the file; a layer shared by several models has one id.
    pub id: u64,
    /// The layer's name.
    pub name: String,
    /// Its Keras class name (`Dense`, `Functional`...).
    pub class_name: String,
    /// Its config, at its first appearance (absent for a nested model, and when repeated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
    /// A nested model's own architecture, at its first appearance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Box<ModelSpec>>,
}

/// One layer call: the layer, by name, and the tensors it reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// The called layer's name.
    pub layer: String,
    /// The tensors the call reads, in order.
    pub inbound: Vec<TensorRef>,
}

/// A functional model's architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// The model's name.
    pub name: String,
    /// Its Keras class name when it is not `Functional`: `Sequential`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// Its trainable flag.
    pub trainable: bool,
    /// Every distinct layer: input layers first, then in call order.
    pub layers: Vec<LayerSpec>,
    /// The input layers' names, in input order.
    pub inputs: Vec<String>,
    /// The calls in execution order (node indices count calls per layer in this order).
    pub nodes: Vec<NodeSpec>,
    /// The output tensors, in output order.
    pub outputs: Vec<TensorRef>,
}

/// Describes models for saving, numbering layers across the whole file.
#[derive(Default)]
pub struct Describer {
    ids: HashMap<usize, u64>,
}

fn identity(layer: &Arc<dyn Layer>) -> usize {
    Arc::as_ptr(layer) as *const () as usize
}

impl Describer {
    /// The architecture of the model named `name` over `graph`, or why it cannot be saved.
    pub fn describe(
        &mut self,
        name: &str,
        trainable: bool,
        graph: &Graph,
    ) -> Result<ModelSpec, String> {
        check_name("model", name)?;
        let layers = graph
            .layers()
            .iter()
            .map(|layer| self.describe_layer(layer))
            .collect::<Result<Vec<_>, _>>()?;
        let mut origin: HashMap<usize, TensorRef> = HashMap::new();
        for (layer, &slot) in graph.input_layers.iter().zip(&graph.input_slots) {
            origin.insert(slot, TensorRef(layer.name().to_string(), 0, 0));
        }
        let mut calls: HashMap<&str, usize> = HashMap::new();
        let mut nodes = Vec::with_capacity(graph.nodes.len());
        for node in &graph.nodes {
            let inbound = node
                .inputs
                .iter()
                .map(|slot| slot_origin(&origin, *slot))
                .collect::<Result<_, _>>()?;
            let name = node.layer.name();
            let index = calls.entry(name).or_insert(0);
            for (i, &slot) in node.outputs.iter().enumerate() {
                origin.insert(slot, TensorRef(name.to_string(), *index, i));
            }
            *index += 1;
            nodes.push(NodeSpec {
                layer: name.to_string(),
                inbound,
            });
        }
        Ok(ModelSpec {
            name: name.to_string(),
            class_name: None,
            trainable,
            layers,
            inputs: graph
                .input_layers
                .iter()
                .map(|l| l.name().to_string())
                .collect(),
            nodes,
            outputs: graph
                .output_slots
                .iter()
                .map(|slot| slot_origin(&origin, *slot))
                .collect::<Result<_, _>>()?,
        })
    }

    fn describe_layer(&mut self, layer: &Arc<dyn Layer>) -> Result<LayerSpec, String> {
        check_name("layer", layer.name())?;
        let mut spec = LayerSpec {
            id: 0,
            name: layer.name().to_string(),
            class_name: layer.class_name().to_string(),
            config: None,
            model: None,
        };
        if let Some(&id) = self.ids.get(&identity(layer)) {
            spec.id = id;
            return Ok(spec);
        }
        if let Some(functional) = layer.as_any().downcast_ref::<Functional>() {
            let mut nested = self.describe(layer.name(), layer.trainable(), functional.graph())?;
            nested.class_name = saved_class(layer.class_name());
            spec.model = Some(Box::new(nested));
        } else {
            if let Some(lambda) = layer.as_any().downcast_ref::<LambdaLayer>() {
                if lambda.lambda_config().function_name.is_none() {
                    return Err(format!(
                        "Lambda layer '{}' has no function name: give it one with \
                         `.function_name(\"...\")` and register that name when loading",
                        layer.name()
                    ));
                }
            }
            spec.config = Some(layer.config());
        }
        // Numbered after any nested model's layers, in the order loading builds them.
        spec.id = self.ids.len() as u64;
        self.ids.insert(identity(layer), spec.id);
        Ok(spec)
    }
}

/// The class a saved model records: none for `Functional`, else its own (`Sequential`).
pub fn saved_class(class_name: &str) -> Option<String> {
    (class_name != "Functional").then(|| class_name.to_string())
}

fn slot_origin(origin: &HashMap<usize, TensorRef>, slot: usize) -> Result<TensorRef, String> {
    origin
        .get(&slot)
        .cloned()
        .ok_or_else(|| format!("value slot {slot} has no producer in the model's graph"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Model;
    use rkeras_layers::{Dense, Input};
    use serde_json::json;

    #[test]
    fn describes_calls_by_layer_node_and_tensor_index() {
        let input = Input::named("x", &[3]);
        let shared = Dense::new(3).name("shared");
        let y = shared(shared(input));
        let model = Model::named("twice", input, y).unwrap();
        let spec = Describer::default()
            .describe(model.name(), true, model.graph())
            .unwrap();
        assert_eq!(spec.inputs, ["x"]);
        let names: Vec<&str> = spec.layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["x", "shared"]);
        assert_eq!(spec.layers.iter().map(|l| l.id).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(
            spec.nodes,
            [
                NodeSpec {
                    layer: "shared".into(),
                    inbound: vec![TensorRef("x".into(), 0, 0)]
                },
                NodeSpec {
                    layer: "shared".into(),
                    inbound: vec![TensorRef("shared".into(), 0, 0)]
                },
            ]
        );
        assert_eq!(spec.outputs, [TensorRef("shared".into(), 1, 0)]);
        let json = serde_json::to_value(&spec.nodes[1]).unwrap();
        assert_eq!(
            json,
            json!({"layer": "shared", "inbound": [["shared", 0, 0]]})
        );
    }

    #[test]
    fn a_layer_in_two_models_is_described_once_then_referred_to() {
        let input = Input::named("image", &[4]);
        let encoder = Model::named("enc", input, Dense::new(2).name("code")(input)).unwrap();
        let outer = Model::named("outer", input, encoder(input)).unwrap();
        let spec = Describer::default()
            .describe(outer.name(), true, outer.graph())
            .unwrap();
        // The outer model lists the shared input first: it carries the config there, and the
        // encoder refers back to it by id.
        assert_eq!(
            (spec.layers[0].id, spec.layers[0].config.is_some()),
            (0, true)
        );
        let nested = spec.layers[1].model.as_ref().unwrap();
        assert_eq!(
            (nested.layers[0].id, nested.layers[0].config.is_none()),
            (0, true)
        );
        assert_eq!(
            (nested.layers[1].id, nested.layers[1].config.is_some()),
            (1, true)
        );
        assert_eq!(spec.layers[1].id, 2);
    }

    #[test]
    fn an_unnamed_lambda_cannot_be_saved() {
        let input = Input::named("x", &[2]);
        let y = rkeras_layers::Lambda::new(|x| Ok(x.clone())).name("anon")(input);
        let model = Model::named("m", input, y).unwrap();
        let err = Describer::default()
            .describe(model.name(), true, model.graph())
            .unwrap_err();
        assert!(
            err.contains("'anon'") && err.contains("function_name"),
            "{err}"
        );
    }

    #[test]
    fn a_layer_name_that_would_be_refused_on_load_cannot_be_saved() {
        let input = Input::named("x", &[2]);
        let model = Model::named("m", input, Dense::new(1).name("a/b")(input)).unwrap();
        let err = Describer::default()
            .describe(model.name(), true, model.graph())
            .unwrap_err();
        assert!(err.contains("'a/b'") && err.contains('/'), "{err}");
    }
}
