//! `Registry`: the layer classes and Lambda functions a loader may build. Loading only ever
//! runs code registered here (Keras's safe mode): a file names classes and functions, it
//! never carries code.

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::Tensor;
use rkeras_layers::builder::LayerConfig;
use rkeras_layers::convolutional::conv2d::Conv2DConfig;
use rkeras_layers::core::activation::ActivationConfig;
use rkeras_layers::core::dense::DenseConfig;
use rkeras_layers::core::lambda::LambdaFn;
use rkeras_layers::pooling::max_pooling2d::MaxPooling2DConfig;
use rkeras_layers::reshaping::flatten::FlattenConfig;
use rkeras_layers::reshaping::reshape::ReshapeConfig;
use rkeras_layers::reshaping::up_sampling2d::UpSampling2DConfig;
use rkeras_layers::{Error, InputLayer, Layer, Result, SymbolicShape};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::limits;

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
        registry.register_layer("Flatten", |config: &Value| {
            let (name, trainable) = name_and_flag(config)?;
            FlattenConfig.make(name, trainable)
        });
        registry.register_layer("Dense", from_config::<DenseConfig>(limits::check_dense));
        registry.register_layer("Activation", from_config::<ActivationConfig>(|_| Ok(())));
        registry.register_layer(
            "Reshape",
            from_config::<ReshapeConfig>(limits::check_reshape),
        );
        registry.register_layer("Conv2D", from_config::<Conv2DConfig>(limits::check_conv2d));
        registry.register_layer(
            "MaxPooling2D",
            from_config::<MaxPooling2DConfig>(limits::check_max_pooling2d),
        );
        registry.register_layer(
            "UpSampling2D",
            from_config::<UpSampling2DConfig>(limits::check_up_sampling2d),
        );
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

/// The `name` (required) and `trainable` flag (default true) of a saved layer config.
pub fn name_and_flag(config: &Value) -> Result<(String, bool)> {
    let name = config
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::config("<unnamed>", "the saved config has no string 'name'"))?;
    let trainable = match config.get("trainable") {
        None => true,
        Some(flag) => flag.as_bool().ok_or_else(|| {
            Error::config(
                name,
                format!("'trainable' must be true or false, got {flag}"),
            )
        })?,
    };
    Ok((name.to_string(), trainable))
}

/// A factory deserializing a layer's options `C`, checking them with `check` (bounds that
/// keep a hostile file from asking for huge sizes), then making the layer.
fn from_config<C: LayerConfig + DeserializeOwned>(
    check: fn(&C) -> std::result::Result<(), String>,
) -> impl Fn(&Value) -> Result<Arc<dyn Layer>> + Send + Sync + 'static {
    move |config: &Value| {
        let (name, trainable) = name_and_flag(config)?;
        let options: C = serde_json::from_value(config.clone())
            .map_err(|e| Error::config(&name, format!("invalid config: {e}")))?;
        check(&options).map_err(|message| Error::config(&name, message))?;
        options.make(name, trainable)
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
    limits::check_input_shape(&shape).map_err(|message| Error::config(&name, message))?;
    Ok(Arc::new(InputLayer::new(name, shape)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builds_built_in_layers_from_their_configs() {
        let registry = Registry::default();
        let dense = registry.layer_factory("Dense").unwrap();
        let config = json!({
            "name": "d", "trainable": false, "units": 3, "activation": "relu", "use_bias": true,
            "kernel_initializer": {"class_name": "Zeros"},
            "bias_initializer": {"class_name": "Zeros"},
            "kernel_regularizer": null, "bias_regularizer": null, "activity_regularizer": null,
        });
        let layer = dense(&config).unwrap();
        assert_eq!(
            (layer.name(), layer.class_name(), layer.trainable()),
            ("d", "Dense", false)
        );
        let input = registry.layer_factory("InputLayer").unwrap();
        let layer = input(&json!({"name": "in", "batch_shape": [null, 4]})).unwrap();
        assert_eq!(layer.class_name(), "InputLayer");
    }

    #[test]
    fn reports_bad_configs_by_layer_name() {
        let registry = Registry::default();
        let reshape = registry.layer_factory("Reshape").unwrap();
        let err = reshape(&json!({"name": "r", "target_shape": "x"}))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("'r'") && err.contains("invalid config"),
            "{err}"
        );
        let err = reshape(&json!({"target_shape": [1]}))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("'name'"), "{err}");
        let flatten = registry.layer_factory("Flatten").unwrap();
        assert!(flatten(&json!({"name": "f", "trainable": "yes"})).is_err());
    }

    #[test]
    fn custom_layers_and_lambdas_can_be_registered() {
        let mut registry = Registry::default();
        assert!(registry.layer_factory("MyLayer").is_none());
        registry.register_layer("MyLayer", |config: &Value| {
            let (name, trainable) = name_and_flag(config)?;
            FlattenConfig.make(name, trainable)
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
