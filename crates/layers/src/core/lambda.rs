//! `Lambda`: a closure over candle tensors as a layer with no weights
//! (`keras/src/layers/core/lambda_layer.py`). It runs in training and in inference alike;
//! training differentiates each call by candle's autograd over that call, so a random function
//! (noise) is differentiated as drawn. Random draws come from [`crate::random`], whose streams
//! training keys by the seed, the step and the part of the batch.

use std::sync::Arc;

use candle_core::Tensor;
use serde_json::json;

use crate::builder::{LayerBuilder, LayerConfig};
use crate::layer::single_input;
use crate::layer_base_methods;
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// The function a Lambda applies.
pub type LambdaFn = dyn Fn(&Tensor) -> Result<Tensor> + Send + Sync;

/// `Lambda`'s options: the function, its output shape, and the name it is saved under.
#[derive(Clone)]
pub struct LambdaConfig {
    /// The function.
    pub function: Arc<LambdaFn>,
    /// The output shape without the batch (default: the input's).
    pub output_shape: Option<Vec<usize>>,
    /// The name a saved model records for the function; loading needs it registered.
    pub function_name: Option<String>,
}

/// A closure as a layer: `Lambda::new(|x| Ok((x + 1.0)?))(x)`.
pub type Lambda = LayerBuilder<LambdaConfig>;

impl Lambda {
    /// A Lambda applying `function` to its input.
    pub fn new(function: impl Fn(&Tensor) -> Result<Tensor> + Send + Sync + 'static) -> Self {
        LayerBuilder::from_config(LambdaConfig {
            function: Arc::new(function),
            output_shape: None,
            function_name: None,
        })
    }

    /// The output shape without the batch, when it differs from the input's.
    pub fn output_shape(self, shape: &[usize]) -> Self {
        let shape = shape.to_vec();
        self.with(|c| c.output_shape = Some(shape))
    }

    /// The name under which the function is saved and must be registered to load.
    pub fn function_name(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.with(|c| c.function_name = Some(name))
    }
}

impl LayerConfig for LambdaConfig {
    const CLASS_NAME: &'static str = "Lambda";
    const NAME_PREFIX: &'static str = "lambda";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        Ok(Arc::new(LambdaLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
        }))
    }
}

/// The layer a [`Lambda`] builder makes.
pub struct LambdaLayer {
    base: LayerBase,
    config: LambdaConfig,
}

impl LambdaLayer {
    /// The options.
    pub fn lambda_config(&self) -> &LambdaConfig {
        &self.config
    }

    /// Checks the function's output against the declared output shape, if any.
    fn check_output(&self, y: &Tensor) -> Result<()> {
        match &self.config.output_shape {
            Some(dims) if y.dims().get(1..) != Some(dims.as_slice()) => Err(Error::shape(
                self.name(),
                format!("(batch, {dims:?}) from the function"),
                format!("{:?}", y.dims()),
            )),
            _ => Ok(()),
        }
    }
}

impl Layer for LambdaLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        LambdaConfig::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        Ok(vec![match &self.config.output_shape {
            Some(dims) => SymbolicShape::batched(shape.dims().first().copied().flatten(), dims),
            None => shape.clone(),
        }])
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        let y = (self.config.function)(x)?;
        self.check_output(&y)?;
        Ok(vec![y])
    }

    fn config(&self) -> serde_json::Value {
        json!({
            "name": self.name(),
            "trainable": self.trainable(),
            "function": self.config.function_name,
            "output_shape": self.config.output_shape,
        })
    }
}
