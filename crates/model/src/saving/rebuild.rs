//! Rebuilding a model from its saved architecture: make each layer through the registry,
//! replay the calls in order, and trace the graph, checking every name, connection and size
//! the file gives before it is used.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rkeras_layers::builder::{first_output, LayerConfig};
use rkeras_layers::core::lambda::LambdaConfig;
use rkeras_layers::limits::with_weight_budget;
use rkeras_layers::registry::name_and_flag;
use rkeras_layers::symbolic::{call_layer, with_scratch_arena};
use rkeras_layers::{InputLayer, Layer, SymbolicTensor};
use serde_json::Value;

use super::error::SaveError;
use super::names::check_spec_names;
use super::registry::Registry;
use super::spec::{LayerSpec, ModelSpec, TensorRef};
use crate::sequential::sequential_from_graph;
use crate::{Graph, Model};

impl fmt::Display for TensorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}][{}]", self.0, self.1, self.2)
    }
}

/// Builds models from specs, sharing layers by id across nested models.
pub struct Rebuilder<'a> {
    registry: &'a Registry,
    path: &'a Path,
    built: HashMap<u64, Arc<dyn Layer>>,
    weight_budget: u64,
}

impl<'a> Rebuilder<'a> {
    /// A rebuilder for the file at `path`, whose weights may hold at most `weight_budget`
    /// values (its tensor data size in bytes bounds that).
    pub fn new(registry: &'a Registry, path: &'a Path, weight_budget: u64) -> Self {
        Rebuilder {
            registry,
            path,
            built: HashMap::new(),
            weight_budget,
        }
    }

    fn invalid(&self, reason: impl Into<String>) -> SaveError {
        SaveError::Architecture {
            path: self.path.to_path_buf(),
            reason: reason.into(),
        }
    }

    /// The model `spec` describes, its layers made but their weights freshly initialized. Its
    /// calls are recorded in an arena of their own, dropped once the model holds its graph, so
    /// that loading leaves nothing behind in the session.
    pub fn model(&mut self, spec: &ModelSpec) -> Result<Model, SaveError> {
        check_spec_names(spec).map_err(|e| self.invalid(e))?;
        with_scratch_arena(|| self.model_in_arena(spec))
    }

    fn model_in_arena(&mut self, spec: &ModelSpec) -> Result<Model, SaveError> {
        let m = &spec.name;
        let mut layers: HashMap<&str, Arc<dyn Layer>> = HashMap::new();
        for layer_spec in &spec.layers {
            let layer = self.layer(layer_spec)?;
            if layers.insert(&layer_spec.name, layer).is_some() {
                return Err(self.invalid(format!(
                    "model '{m}' lists two layers named '{}'",
                    layer_spec.name
                )));
            }
        }
        let mut produced: HashMap<TensorRef, SymbolicTensor> = HashMap::new();
        let mut inputs = Vec::with_capacity(spec.inputs.len());
        for name in &spec.inputs {
            let layer = layers.get(name.as_str()).ok_or_else(|| {
                self.invalid(format!(
                    "model '{m}' has input '{name}', which is not among its layers"
                ))
            })?;
            if !layer.as_any().is::<InputLayer>() {
                return Err(self.invalid(format!(
                    "model '{m}' has input '{name}', a {} rather than an InputLayer",
                    layer.class_name()
                )));
            }
            let tensor = first_output(call_layer(layer, &[]));
            if produced
                .insert(TensorRef(name.clone(), 0, 0), tensor)
                .is_some()
            {
                return Err(self.invalid(format!("model '{m}' lists input '{name}' twice")));
            }
            inputs.push(tensor);
        }
        let mut calls: HashMap<&str, usize> = HashMap::new();
        for (i, node) in spec.nodes.iter().enumerate() {
            let name = node.layer.as_str();
            let layer = layers.get(name).ok_or_else(|| {
                self.invalid(format!(
                    "model '{m}', node {i} calls layer '{name}', which the model does not list"
                ))
            })?;
            if layer.as_any().is::<InputLayer>() {
                return Err(
                    self.invalid(format!("model '{m}', node {i} calls input layer '{name}'"))
                );
            }
            let args = node
                .inbound
                .iter()
                .map(|r| {
                    produced.get(r).copied().ok_or_else(|| {
                        self.invalid(format!(
                            "model '{m}', node {i} (layer '{name}') reads {r}, which no earlier \
                             call produced: a dangling or cyclic connection"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            // Weights beyond what the file's tensor data can hold are refused before they are
            // drawn.
            let (outputs, left) =
                with_weight_budget(self.weight_budget, || call_layer(layer, &args));
            self.weight_budget = left;
            let index = calls.entry(name).or_insert(0);
            for (j, output) in outputs.into_iter().enumerate() {
                output.shape().map_err(|e| self.invalid(e.to_string()))?;
                produced.insert(TensorRef(name.to_string(), *index, j), output);
            }
            *index += 1;
        }
        let outputs = spec
            .outputs
            .iter()
            .map(|r| {
                produced.get(r).copied().ok_or_else(|| {
                    self.invalid(format!("model '{m}' outputs {r}, which no call produced"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let model = match spec.class_name.as_deref() {
            None => Model::named(m, inputs, outputs),
            Some("Sequential") => Graph::trace(&inputs, &outputs)
                .and_then(|graph| sequential_from_graph(m.clone(), graph)),
            Some(other) => {
                return Err(self.invalid(format!(
                    "model '{m}' has class '{other}', where a saved model is a Functional or a \
                     Sequential"
                )))
            }
        }
        .map_err(|e| self.invalid(e.to_string()))?;
        model.set_own_trainable(spec.trainable);
        Ok(model)
    }

    /// The layer `spec` describes: made at its first appearance, the same one afterwards.
    fn layer(&mut self, spec: &LayerSpec) -> Result<Arc<dyn Layer>, SaveError> {
        if let Some(layer) = self.built.get(&spec.id) {
            if layer.name() != spec.name || layer.class_name() != spec.class_name {
                return Err(self.invalid(format!(
                    "layer id {} is '{}' ({}), but is referred to as '{}' ({})",
                    spec.id,
                    layer.name(),
                    layer.class_name(),
                    spec.name,
                    spec.class_name
                )));
            }
            return Ok(layer.clone());
        }
        let layer = self.make(spec)?;
        if layer.name() != spec.name || layer.class_name() != spec.class_name {
            return Err(self.invalid(format!(
                "layer '{}' ({}) was made as '{}' ({}): its config disagrees with its entry",
                spec.name,
                spec.class_name,
                layer.name(),
                layer.class_name()
            )));
        }
        if self.built.insert(spec.id, layer.clone()).is_some() {
            return Err(self.invalid(format!("layer id {} is given to two layers", spec.id)));
        }
        Ok(layer)
    }

    fn make(&mut self, spec: &LayerSpec) -> Result<Arc<dyn Layer>, SaveError> {
        let name = &spec.name;
        if matches!(spec.class_name.as_str(), "Functional" | "Sequential") {
            let nested = spec.model.as_deref().ok_or_else(|| {
                self.invalid(format!(
                    "nested model '{name}' has no architecture and was not defined before"
                ))
            })?;
            return Ok(self.model(nested)?.as_layer());
        }
        let config = spec.config.as_ref().ok_or_else(|| {
            self.invalid(format!(
                "layer '{name}' has no config and was not defined before"
            ))
        })?;
        if spec.class_name == "Lambda" {
            return self.lambda(name, config);
        }
        let factory = self
            .registry
            .layer_factory(&spec.class_name)
            .ok_or_else(|| SaveError::UnknownLayer {
                path: self.path.to_path_buf(),
                layer: name.clone(),
                class_name: spec.class_name.clone(),
            })?;
        factory(config).map_err(|e| self.invalid(e.to_string()))
    }

    fn lambda(&self, name: &str, config: &Value) -> Result<Arc<dyn Layer>, SaveError> {
        let function = config
            .get("function")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                self.invalid(format!("Lambda layer '{name}' records no function name"))
            })?;
        let registered =
            self.registry
                .lambda(function)
                .ok_or_else(|| SaveError::UnregisteredLambda {
                    path: self.path.to_path_buf(),
                    layer: name.to_string(),
                    function: function.to_string(),
                })?;
        let saved_shape: Option<Vec<usize>> =
            serde_json::from_value(config.get("output_shape").cloned().unwrap_or(Value::Null))
                .map_err(|e| {
                    self.invalid(format!("Lambda layer '{name}': invalid output_shape: {e}"))
                })?;
        let output_shape = match (saved_shape, &registered.output_shape) {
            (Some(saved), Some(registered)) if &saved != registered => {
                return Err(self.invalid(format!(
                    "Lambda layer '{name}' was saved with output shape {saved:?}, but function \
                     '{function}' is registered with {registered:?}"
                )))
            }
            (saved, registered) => saved.or_else(|| registered.clone()),
        };
        let (name, trainable) = name_and_flag(config).map_err(|e| self.invalid(e.to_string()))?;
        LambdaConfig {
            function: registered.function.clone(),
            output_shape,
            function_name: Some(function.to_string()),
        }
        .make(name, trainable)
        .map_err(|e| self.invalid(e.to_string()))
    }
}
