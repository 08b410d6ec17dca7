//! `Embedding`: rows of a trainable `(input_dim, output_dim)` table picked by index
//! (`keras/src/layers/core/embedding.py`). Indices come as integers or as floats holding
//! integers (models hand their inputs over as f32, exact below 2²⁴), truncated toward zero as
//! Keras casts them; an index outside the table is an error naming the layer. No gradient
//! reaches the indices. `mask_zero` is refused: rkeras has no masks yet.

use std::sync::{Arc, OnceLock};

use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::builder::{LayerBuilder, LayerConfig};
use crate::initializers::Initializer;
use crate::kernel_bias::{activity_penalty, with_activity_penalty_gradient, KernelBias};
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::regularizers::Regularizer;
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape, Weight};

/// `Embedding`'s options, with Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingConfig {
    /// Size of the vocabulary: the largest index plus one.
    pub input_dim: usize,
    /// Length of each embedding vector.
    pub output_dim: usize,
    /// Initializer of the table (default Keras's `uniform`: U(-0.05, 0.05)).
    pub embeddings_initializer: Initializer,
    /// Penalty on the table.
    pub embeddings_regularizer: Option<Regularizer>,
    /// Penalty on the output, divided by the batch size.
    pub activity_regularizer: Option<Regularizer>,
    /// Whether index 0 masks its step out (must be false: rkeras has no masks yet).
    pub mask_zero: bool,
}

/// A lookup table of vectors: `Embedding::new(1000, 64)(tokens)` turns `(batch, steps)`
/// indices into `(batch, steps, 64)` vectors.
pub type Embedding = LayerBuilder<EmbeddingConfig>;

impl Embedding {
    /// A table of `input_dim` vectors of `output_dim` values, Keras's defaults otherwise.
    pub fn new(input_dim: usize, output_dim: usize) -> Self {
        LayerBuilder::from_config(EmbeddingConfig {
            input_dim,
            output_dim,
            embeddings_initializer: Initializer::random_uniform(),
            embeddings_regularizer: None,
            activity_regularizer: None,
            mask_zero: false,
        })
    }

    /// The table's initializer.
    pub fn embeddings_initializer(self, init: impl Into<crate::InitializerArg>) -> Self {
        self.with_initializer(init, |c, init| c.embeddings_initializer = init)
    }

    /// A penalty on the table.
    pub fn embeddings_regularizer(self, r: Regularizer) -> Self {
        self.with(|c| c.embeddings_regularizer = Some(r))
    }

    /// A penalty on the output.
    pub fn activity_regularizer(self, r: Regularizer) -> Self {
        self.with(|c| c.activity_regularizer = Some(r))
    }

    /// Keras's `mask_zero`; `true` is refused when the layer is made (rkeras has no masks yet).
    pub fn mask_zero(self, mask_zero: bool) -> Self {
        self.with(|c| c.mask_zero = mask_zero)
    }
}

impl LayerConfig for EmbeddingConfig {
    const CLASS_NAME: &'static str = "Embedding";
    const NAME_PREFIX: &'static str = "embedding";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        if self.input_dim == 0 || self.output_dim == 0 {
            return Err(Error::config(
                name,
                format!(
                    "input_dim and output_dim must be positive, got {} and {}",
                    self.input_dim, self.output_dim
                ),
            ));
        }
        if self.mask_zero {
            return Err(Error::config(
                name,
                "mask_zero=true is not supported: rkeras has no masks yet",
            ));
        }
        Ok(Arc::new(EmbeddingLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
            embeddings: OnceLock::new(),
        }))
    }
}

/// The layer an [`Embedding`] builder makes.
pub struct EmbeddingLayer {
    base: LayerBase,
    config: EmbeddingConfig,
    embeddings: OnceLock<Var>,
}

impl EmbeddingLayer {
    /// The options.
    pub fn embedding_config(&self) -> &EmbeddingConfig {
        &self.config
    }

    fn built(&self) -> Result<&Var> {
        self.embeddings.get().ok_or_else(|| {
            Error::config(self.name(), "called before it was built on an input shape")
        })
    }
}

impl Layer for EmbeddingLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        EmbeddingConfig::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        if shape.rank() == 0 {
            return Err(Error::shape(self.name(), "(None, ...) indices", shape));
        }
        if self.embeddings.get().is_none() {
            let c = &self.config;
            let shape = [c.input_dim, c.output_dim];
            let table = KernelBias::new(self.name(), &shape, &c.embeddings_initializer, None)?;
            let _ = self.embeddings.set(table.kernel);
        }
        let mut out = shape.clone();
        out.0.push(Some(self.config.output_dim));
        Ok(vec![out])
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        let table = self.built()?;
        let indices = rkeras_ops::embedding_indices(x, self.config.input_dim)
            .map_err(|e| Error::config(self.name(), e.to_string()))?;
        let y = rkeras_ops::embedding(&ctx.weight(table), &indices, x.dims())?;
        ctx.save(indices);
        if let Some(penalty) = activity_penalty(self.config.activity_regularizer.as_ref(), &y)? {
            ctx.add_loss(penalty);
        }
        Ok(vec![y])
    }

    fn has_backward(&self, device: &Device) -> bool {
        rkeras_ops::kernels_on(device)
    }

    fn backward(
        &self,
        record: CallRecord,
        grad_outputs: &[Tensor],
        _needs_input_grad: &[bool],
        weight_grads: &mut WeightGrads,
    ) -> Result<Vec<Option<Tensor>>> {
        let (_, y, dy) = record.single(self.name(), grad_outputs)?;
        let table = self.built()?;
        if weight_grads.wants(table) {
            // The activity penalty's gradient joins the output's.
            let dy =
                with_activity_penalty_gradient(self.config.activity_regularizer.as_ref(), y, dy)?;
            let indices = record.saved::<Vec<u32>>(self.name())?;
            let grad = rkeras_ops::embedding_backward(&dy, indices, self.config.input_dim)?;
            weight_grads.add(table, grad)?;
        }
        // Indices are not differentiable.
        Ok(vec![None])
    }

    fn weights(&self) -> Vec<Weight> {
        self.embeddings
            .get()
            .map_or_else(Vec::new, |t| vec![self.base.weight("embeddings", t)])
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }

    fn regularization_losses(&self) -> Result<Vec<Tensor>> {
        match (&self.config.embeddings_regularizer, self.embeddings.get()) {
            (Some(r), Some(table)) => Ok(vec![r.penalty(table.as_tensor())?]),
            _ => Ok(Vec::new()),
        }
    }
}

/// The harness cases: Keras's docstring example, indices of rank 2 with penalties, and a
/// forward computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    crate::session::set_random_seed(31);
    let layer = |embedding: Embedding| embedding.layer().expect("embedding");
    // Table [[0, 1], [2, 3], [4, 5], [6, 7]]; indices [3, 0, 3.7] (3.7 truncates to 3).
    let x = Tensor::new(&[[3f32, 0.0, 3.7]], &Device::Cpu).expect("x");
    vec![
        // Keras's docstring: Embedding(1000, 64) on 10 indices, 1000·64 parameters.
        LayerCase::new(layer(Embedding::new(1000, 64)), &[&[10]])
            .output_shapes(&["(None, 10, 64)"])
            .weights(1, 0, 1000 * 64)
            .integer_inputs(1000),
        LayerCase::new(
            layer(
                Embedding::new(5, 3)
                    .embeddings_regularizer(Regularizer::l2(0.1))
                    .activity_regularizer(Regularizer::l1(0.01)),
            ),
            &[&[2, 3]],
        )
        .output_shapes(&["(None, 2, 3, 3)"])
        .weights(1, 0, 5 * 3)
        .integer_inputs(5),
        LayerCase::new(layer(Embedding::new(4, 2)), &[&[3]])
            .output_shapes(&["(None, 3, 2)"])
            .weights(1, 0, 8)
            .weight_values(vec![(0..8).map(|v| v as f32).collect()])
            .forward(vec![x], vec![vec![6.0, 7.0, 0.0, 1.0, 6.0, 7.0]])
            .integer_inputs(4),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Input;

    #[test]
    fn integer_indices_and_errors_naming_the_layer() -> Result<()> {
        let embedding = Embedding::new(3, 2).name("words");
        let _ = embedding(Input::new(&[2]));
        let layer = embedding.layer()?;
        let ids = Tensor::new(&[[2u32, 1]], &Device::Cpu)?;
        let y = layer.call(&[ids], &mut CallContext::new(false))?.remove(0);
        assert_eq!(y.dims(), &[1, 2, 2]);
        let table = layer.weights()[0].var.as_tensor().to_vec2::<f32>()?;
        assert_eq!(
            y.to_vec3::<f32>()?[0],
            vec![table[2].clone(), table[1].clone()]
        );
        let out_of_range = Tensor::new(&[[1f32, 3.0]], &Device::Cpu)?;
        let err = layer
            .call(&[out_of_range], &mut CallContext::new(false))
            .unwrap_err()
            .to_string();
        assert!(err.contains("'words'") && err.contains("index 3"), "{err}");
        Ok(())
    }

    #[test]
    fn keras_defaults_and_refused_options() {
        let c = Embedding::new(10, 4).config().clone();
        assert_eq!(c.embeddings_initializer, Initializer::random_uniform());
        let values = c
            .embeddings_initializer
            .initialize(&[10, 4], &Device::Cpu)
            .and_then(|t| Ok(t.flatten_all()?.to_vec1::<f32>()?))
            .unwrap();
        assert!(values.iter().all(|v| v.abs() <= 0.05));
        let shape_error = |e: Embedding| e(Input::new(&[3])).shape().unwrap_err().to_string();
        let err = shape_error(Embedding::new(10, 4).mask_zero(true).name("m"));
        assert!(err.contains("'m'") && err.contains("mask_zero"), "{err}");
        assert!(shape_error(Embedding::new(0, 4)).contains("input_dim"));
    }
}
