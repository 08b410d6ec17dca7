//! `Registry`: the layer classes and Lambda functions a loader may build. Loading only ever
//! runs code registered here (Keras's safe mode): a file names classes and functions, it
//! never carries code.

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::Tensor;
use rkeras_layers::core::lambda::LambdaFn;
use rkeras_layers::registry::name_and_flag;
use rkeras_layers::{Error, InputLayer, Layer, Result, SymbolicShape};
use serde_json::Value;

/// Makes a layer from its saved config (which holds its `name` and `trainable` flag).
pub type LayerFactory = dyn Fn(&Value) -> Result<Arc<dyn Layer>> + Send + Sync;

/// A function registered for Lambda layers, with the output shape it produces (without the
/// batch; `None`: the input's shape).
#[derive(Clone)]
pub struct RegisteredLambda {
    /// The function.
    pub function: Arc<LambdaFn>,
    /// Its output shape without the batch, when it differs from the input's.
    pub output_shape: Option<Vec<usize>>,
}

/// The layer classes (by Keras class name) and Lambda functions (by name) loading may use.
///
/// `Registry::default()` knows every built-in layer; `Functional` (nested models) and
/// `Lambda` are built by the loader itself, the latter from [`Registry::register_lambda`].
#[derive(Clone)]
pub struct Registry {
    layers: HashMap<String, Arc<LayerFactory>>,
    lambdas: HashMap<String, RegisteredLambda>,
}

impl Default for Registry {
    fn default() -> Self {
        let mut registry = Registry {
            layers: HashMap::new(),
            lambdas: HashMap::new(),
        };
        registry.register_layer("InputLayer", make_input_layer);
        for class in rkeras_layers::registry::builtin_classes() {
            registry.register_layer(class.class_name, class.from_config);
        }
        registry
    }
}

impl Registry {
    /// The built-in layers (same as `Registry::default()`).
    pub fn new() -> Self {
        Registry::default()
    }

    /// Registers (or replaces) how to make layers of class `class_name` from their saved
    /// config, for custom layers: the class name is the one `Layer::class_name` returns.
    /// `Functional` and `Lambda` are built by the loader itself, never through a factory.
    pub fn register_layer(
        &mut self,
        class_name: impl Into<String>,
        factory: impl Fn(&Value) -> Result<Arc<dyn Layer>> + Send + Sync + 'static,
    ) -> &mut Self {
        self.layers.insert(class_name.into(), Arc::new(factory));
        self
    }

    /// Registers the function Lambda layers saved with `.function_name(name)` apply, with the
    /// output shape it produces without the batch (`None`: the input's shape).
    pub fn register_lambda(
        &mut self,
        name: impl Into<String>,
        function: impl Fn(&Tensor) -> Result<Tensor> + Send + Sync + 'static,
        output_shape: Option<&[usize]>,
    ) -> &mut Self {
        self.lambdas.insert(
            name.into(),
            RegisteredLambda {
                function: Arc::new(function),
                output_shape: output_shape.map(<[usize]>::to_vec),
            },
        );
        self
    }

    /// The factory for `class_name`, if registered.
    pub fn layer_factory(&self, class_name: &str) -> Option<&LayerFactory> {
        self.layers.get(class_name).map(|f| &**f)
    }

    /// The Lambda function registered as `name`.
    pub fn lambda(&self, name: &str) -> Option<&RegisteredLambda> {
        self.lambdas.get(name)
    }
}

fn make_input_layer(config: &Value) -> Result<Arc<dyn Layer>> {
    let (name, _) = name_and_flag(config)?;
    let shape: SymbolicShape = config
        .get("batch_shape")
        .cloned()
        .ok_or_else(|| Error::config(&name, "the saved config has no 'batch_shape'"))
        .and_then(|shape| {
            serde_json::from_value(shape)
                .map_err(|e| Error::config(&name, format!("invalid batch_shape: {e}")))
        })?;
    Ok(Arc::new(InputLayer::new(name, shape)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkeras_layers::builder::LayerConfig;
    use rkeras_layers::reshaping::flatten::FlattenConfig;
    use serde_json::json;

    #[test]
    fn knows_the_built_in_layers_and_inputs() {
        let registry = Registry::default();
        for class in rkeras_layers::registry::builtin_classes() {
            assert!(registry.layer_factory(class.class_name).is_some());
        }
        let input = registry.layer_factory("InputLayer").unwrap();
        let layer = input(&json!({"name": "in", "batch_shape": [null, 4]})).unwrap();
        assert_eq!(layer.class_name(), "InputLayer");
    }

    #[test]
    fn custom_layers_and_lambdas_can_be_registered() {
        let mut registry = Registry::default();
        assert!(registry.layer_factory("MyLayer").is_none());
        registry.register_layer("MyLayer", |config: &Value| {
            let (name, trainable) = name_and_flag(config)?;
            FlattenConfig::default().make(name, trainable)
        });
        assert!(registry.layer_factory("MyLayer").is_some());
        registry.register_lambda("double", |x| Ok((x * 2.0)?), Some(&[3]));
        assert_eq!(
            registry.lambda("double").unwrap().output_shape,
            Some(vec![3])
        );
        assert!(registry.lambda("triple").is_none());
    }
}
