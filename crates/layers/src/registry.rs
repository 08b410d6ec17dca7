//! The one list of built-in layers. Adding a layer is its file plus one line here: the line
//! exports its builder from the crate root and the prelude, lets a loader make it from its saved
//! config, and runs its harness cases ([`crate::testing`]) as a test of its own.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::builder::LayerConfig;
use crate::{Error, Layer, Result};

/// A layer class a loader can make from a saved config.
#[derive(Clone, Copy)]
pub struct LayerClass {
    /// The Keras class name (`Dense`), as `Layer::class_name` returns it.
    pub class_name: &'static str,
    /// Makes the layer from its saved config (options, `name` and `trainable`).
    pub from_config: fn(&Value) -> Result<Arc<dyn Layer>>,
}

impl LayerClass {
    /// The class of the layers that options `C` make.
    pub fn of<C: LayerConfig + DeserializeOwned>() -> Self {
        LayerClass {
            class_name: C::CLASS_NAME,
            from_config: from_config::<C>,
        }
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

/// Reads options `C` from a saved config and makes the layer (which checks the options).
fn from_config<C: LayerConfig + DeserializeOwned>(config: &Value) -> Result<Arc<dyn Layer>> {
    let (name, trainable) = name_and_flag(config)?;
    let options: C = serde_json::from_value(config.clone())
        .map_err(|e| Error::config(&name, format!("invalid config: {e}")))?;
    options.make(name, trainable)
}

/// The module Keras records for its built-in layers.
fn keras_layers_module() -> String {
    "keras.layers".to_string()
}

/// A layer inside another layer's config (a wrapper's `layer`), saved as Keras's
/// `serialize_keras_object` writes it: `{"module": "keras.layers", "class_name": "LSTM",
/// "config": {...}, "registered_name": null}`, and made from it through the built-in classes.
///
/// Made from a layer ([`NestedLayer::of`]), it also holds that layer, which
/// [`NestedLayer::make`] then returns itself (a wrapper shares it, as Keras's `Wrapper` does);
/// loaded from a config, it makes a new one. A custom layer can be wrapped, but a loader cannot
/// make it again from its config yet (only built-in classes are looked up).
#[derive(Clone, Serialize, Deserialize)]
pub struct NestedLayer {
    /// Keras's module of the class (`keras.layers`).
    #[serde(default = "keras_layers_module")]
    pub module: String,
    /// The Keras class name (`LSTM`).
    pub class_name: String,
    /// The layer's own config, with its `name` and `trainable` flag.
    pub config: Value,
    /// Keras's name of a registered custom class (none for a built-in layer).
    #[serde(default)]
    pub registered_name: Option<String>,
    #[serde(skip)]
    layer: Option<Arc<dyn Layer>>,
}

impl NestedLayer {
    /// The nested config of `layer`, holding the layer itself.
    pub fn of(layer: &Arc<dyn Layer>) -> Self {
        NestedLayer {
            layer: Some(layer.clone()),
            ..NestedLayer::from_config(layer.class_name(), layer.config())
        }
    }

    /// A nested config of class `class_name` (no layer held).
    pub fn from_config(class_name: &str, config: Value) -> Self {
        NestedLayer {
            module: keras_layers_module(),
            class_name: class_name.to_string(),
            config,
            registered_name: None,
            layer: None,
        }
    }

    /// The layer held, or a new one made from the config by its built-in class; `owner` (the
    /// wrapper's name) is named in errors.
    pub fn make(&self, owner: &str) -> Result<Arc<dyn Layer>> {
        if let Some(layer) = &self.layer {
            return Ok(layer.clone());
        }
        let class = builtin_classes()
            .into_iter()
            .find(|c| c.class_name == self.class_name)
            .ok_or_else(|| {
                Error::config(
                    owner,
                    format!(
                        "cannot make a wrapped layer of class '{}': not a built-in layer",
                        self.class_name
                    ),
                )
            })?;
        (class.from_config)(&self.config)
    }
}

/// Compares the saved configs (not whether a layer is held).
impl PartialEq for NestedLayer {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.module,
            &self.class_name,
            &self.config,
            &self.registered_name,
        ) == (
            &other.module,
            &other.class_name,
            &other.config,
            &other.registered_name,
        )
    }
}

impl std::fmt::Debug for NestedLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NestedLayer")
            .field("class_name", &self.class_name)
            .field("config", &self.config)
            .finish()
    }
}

/// Declares the built-in layers: `module::path::Builder` each.
macro_rules! builtin_layers {
    ($($($module:ident)::+ => $builder:ident),* $(,)?) => {
        /// The builders of every built-in layer, for `use rkeras_layers::builtins::*`.
        pub mod builtins {
            $(pub use crate::$($module)::+::$builder;)*
        }

        /// Every built-in layer class a loader can make from a saved config (`Input` and
        /// `Lambda`, which need more than a config, are made by the loader itself).
        pub fn builtin_classes() -> Vec<LayerClass> {
            vec![$(LayerClass::of::<<crate::$($module)::+::$builder as
                crate::builder::Options>::Config>()),*]
        }

        /// One harness test per built-in layer: a layer missing from here cannot be listed
        /// (its module must have `harness_cases`), and one with no case fails.
        #[cfg(test)]
        #[allow(non_snake_case)]
        mod harness {
            $(
                mod $builder {
                    #[test]
                    fn passes_the_layer_harness() {
                        let cases = crate::$($module)::+::harness_cases();
                        let class = <<crate::$($module)::+::$builder as
                            crate::builder::Options>::Config as crate::LayerConfig>::CLASS_NAME;
                        crate::testing::run_cases(class, cases);
                    }
                }
            )*
        }
    };
}

builtin_layers! {
    advanced_activations::elu => ELU,
    advanced_activations::leaky_relu => LeakyReLU,
    advanced_activations::prelu => PReLU,
    advanced_activations::relu => ReLU,
    advanced_activations::softmax => Softmax,
    convolutional::conv1d => Conv1D,
    convolutional::conv2d => Conv2D,
    convolutional::conv2d_transpose => Conv2DTranspose,
    convolutional::depthwise_conv2d => DepthwiseConv2D,
    convolutional::separable_conv2d => SeparableConv2D,
    core::activation => Activation,
    core::dense => Dense,
    core::embedding => Embedding,
    core::identity => Identity,
    merging::add => Add,
    merging::average => Average,
    merging::concatenate => Concatenate,
    merging::dot => Dot,
    merging::maximum => Maximum,
    merging::minimum => Minimum,
    merging::multiply => Multiply,
    merging::subtract => Subtract,
    normalization::batch_normalization => BatchNormalization,
    normalization::group_normalization => GroupNormalization,
    normalization::layer_normalization => LayerNormalization,
    normalization::unit_normalization => UnitNormalization,
    pooling::average_pooling1d => AveragePooling1D,
    pooling::average_pooling2d => AveragePooling2D,
    pooling::global_average_pooling1d => GlobalAveragePooling1D,
    pooling::global_average_pooling2d => GlobalAveragePooling2D,
    pooling::global_max_pooling1d => GlobalMaxPooling1D,
    pooling::global_max_pooling2d => GlobalMaxPooling2D,
    pooling::max_pooling1d => MaxPooling1D,
    pooling::max_pooling2d => MaxPooling2D,
    preprocessing::normalization => Normalization,
    preprocessing::rescaling => Rescaling,
    recurrent::bidirectional => Bidirectional,
    recurrent::gru => GRU,
    recurrent::lstm => LSTM,
    recurrent::simple_rnn => SimpleRNN,
    recurrent::time_distributed => TimeDistributed,
    regularization::activity_regularization => ActivityRegularization,
    regularization::alpha_dropout => AlphaDropout,
    regularization::dropout => Dropout,
    regularization::gaussian_dropout => GaussianDropout,
    regularization::gaussian_noise => GaussianNoise,
    regularization::spatial_dropout1d => SpatialDropout1D,
    regularization::spatial_dropout2d => SpatialDropout2D,
    reshaping::cropping1d => Cropping1D,
    reshaping::cropping2d => Cropping2D,
    reshaping::flatten => Flatten,
    reshaping::permute => Permute,
    reshaping::repeat_vector => RepeatVector,
    reshaping::reshape => Reshape,
    reshaping::up_sampling1d => UpSampling1D,
    reshaping::up_sampling2d => UpSampling2D,
    reshaping::zero_padding1d => ZeroPadding1D,
    reshaping::zero_padding2d => ZeroPadding2D,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn class(name: &str) -> LayerClass {
        builtin_classes()
            .into_iter()
            .find(|c| c.class_name == name)
            .unwrap_or_else(|| panic!("{name} is not registered"))
    }

    #[test]
    fn makes_built_in_layers_from_their_configs() {
        let config = json!({
            "name": "d", "trainable": false, "units": 3, "activation": "relu", "use_bias": true,
            "kernel_initializer": {"class_name": "Zeros"},
            "bias_initializer": {"class_name": "Zeros"},
            "kernel_regularizer": null, "bias_regularizer": null, "activity_regularizer": null,
        });
        let layer = (class("Dense").from_config)(&config).unwrap();
        assert_eq!(
            (layer.name(), layer.class_name(), layer.trainable()),
            ("d", "Dense", false)
        );
    }

    #[test]
    fn reports_bad_configs_by_layer_name() {
        let reshape = class("Reshape").from_config;
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
        let flatten = class("Flatten").from_config;
        assert!(flatten(&json!({"name": "f", "trainable": "yes"})).is_err());
    }

    #[test]
    fn class_names_are_unique() {
        let mut names: Vec<&str> = builtin_classes().iter().map(|c| c.class_name).collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
    }
}
