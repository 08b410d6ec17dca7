//! `LayerNormalization`: each sample normalized over its own values along some axes (the last
//! by default), then scaled and shifted (`keras/src/layers/normalization/layer_normalization.py`,
//! computed as `keras/src/ops/nn.py`'s `_layer_normalization`: biased variance, `epsilon`
//! inside the square root). Samples are independent: the layer never mixes a batch. Keras's
//! deprecated `rms_scaling` and constraints are not supported.

use std::sync::{Arc, OnceLock};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::axes::{resolve_axes, RowLayout};
use super::scale_offset::{check_epsilon, scale_offset_options, ScaleOffset};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::initializers::Initializer;
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::limits::check_shape;
use crate::record::{CallRecord, WeightGrads};
use crate::regularizers::Regularizer;
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape, Weight};

/// Keras's `axis`: one axis or several (negative counts from the end).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Axes {
    /// One axis, `-1`.
    One(i64),
    /// Several axes, `[1, 2, 3]`.
    Many(Vec<i64>),
}

impl Axes {
    /// The axes as a list.
    pub(super) fn list(&self) -> Vec<i64> {
        match self {
            Axes::One(axis) => vec![*axis],
            Axes::Many(axes) => axes.clone(),
        }
    }
}

/// `LayerNormalization`'s options, with Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerNormalizationConfig {
    /// The axes normalized over (default -1); `gamma` and `beta` span them.
    pub axis: Axes,
    /// Added to the variance before its square root (default 1e-3).
    pub epsilon: f64,
    /// Whether to add the offset `beta` (default true).
    pub center: bool,
    /// Whether to multiply by the scale `gamma` (default true).
    pub scale: bool,
    /// Initializer of `beta` (default zeros).
    pub beta_initializer: Initializer,
    /// Initializer of `gamma` (default ones).
    pub gamma_initializer: Initializer,
    /// Penalty on `beta`.
    pub beta_regularizer: Option<Regularizer>,
    /// Penalty on `gamma`.
    pub gamma_regularizer: Option<Regularizer>,
}

impl Default for LayerNormalizationConfig {
    fn default() -> Self {
        LayerNormalizationConfig {
            axis: Axes::One(-1),
            epsilon: 1e-3,
            center: true,
            scale: true,
            beta_initializer: Initializer::Zeros,
            gamma_initializer: Initializer::Ones,
            beta_regularizer: None,
            gamma_regularizer: None,
        }
    }
}

/// Layer normalization, callable on symbolic tensors: `LayerNormalization::new()(x)`.
pub type LayerNormalization = LayerBuilder<LayerNormalizationConfig>;

impl LayerNormalization {
    /// A layer normalization over the last axis, with Keras's defaults.
    pub fn new() -> Self {
        LayerBuilder::from_config(LayerNormalizationConfig::default())
    }

    /// Normalizes over one axis (Keras's `axis=-2`).
    pub fn axis(self, axis: i64) -> Self {
        self.with(|c| c.axis = Axes::One(axis))
    }

    /// Normalizes over several axes (Keras's `axis=[1, 2, 3]`).
    pub fn axes(self, axes: &[i64]) -> Self {
        self.with(|c| c.axis = Axes::Many(axes.to_vec()))
    }

    scale_offset_options!();
}

impl Default for LayerNormalization {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerConfig for LayerNormalizationConfig {
    const CLASS_NAME: &'static str = "LayerNormalization";
    const NAME_PREFIX: &'static str = "layer_normalization";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        check_epsilon(&name, self.epsilon)?;
        if self.axis.list().is_empty() {
            return Err(Error::config(name, "axis must name at least one axis"));
        }
        Ok(Arc::new(LayerNormalizationLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
            weights: OnceLock::new(),
        }))
    }
}

/// The weights, made on first build for inputs of one rank and normalized dims.
struct LayerNormWeights {
    rank: usize,
    /// The normalized axes, sorted.
    axes: Vec<usize>,
    /// Their sizes: the shape of `gamma` and `beta`.
    dims: Vec<usize>,
    params: ScaleOffset,
}

/// What a recorded call keeps for the backward pass: each row's mean and inverse deviation.
struct Saved {
    mean: Tensor,
    inv_std: Tensor,
}

/// The layer a [`LayerNormalization`] builder makes.
pub struct LayerNormalizationLayer {
    base: LayerBase,
    config: LayerNormalizationConfig,
    weights: OnceLock<LayerNormWeights>,
}

impl LayerNormalizationLayer {
    fn built(&self) -> Result<&LayerNormWeights> {
        self.weights.get().ok_or_else(|| {
            Error::config(self.name(), "called before it was built on an input shape")
        })
    }

    /// The expected input shape, for messages: `(None, ..., d)` with the normalized dims.
    fn expected(w: &LayerNormWeights) -> String {
        let mut expected = vec!["None".to_string(); w.rank];
        for (&axis, dim) in w.axes.iter().zip(&w.dims) {
            expected[axis] = dim.to_string();
        }
        format!("({})", expected.join(", "))
    }

    /// The input as the `(rows, cols)` matrix the kernels take, once its shape is checked.
    fn layout(&self, w: &LayerNormWeights, dims: &[usize]) -> Result<RowLayout> {
        let fits = dims.len() == w.rank && w.axes.iter().zip(&w.dims).all(|(&a, &d)| dims[a] == d);
        if !fits {
            return Err(Error::shape(
                self.name(),
                Self::expected(w),
                format!("{dims:?}"),
            ));
        }
        Ok(RowLayout::new(dims, &w.axes))
    }
}

/// `gamma` or `beta` as the kernels take it: one value per column.
fn flat(weight: Option<Tensor>) -> Result<Option<Tensor>> {
    Ok(weight.map(|w| w.flatten_all()).transpose()?)
}

impl Layer for LayerNormalizationLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        LayerNormalizationConfig::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        let axes = resolve_axes(self.name(), &self.config.axis.list(), shape.rank())?;
        check_shape(self.name(), shape)?;
        let dims: Option<Vec<usize>> = axes.iter().map(|&a| shape.dims()[a]).collect();
        match (self.weights.get(), dims) {
            (Some(w), Some(dims)) if w.rank == shape.rank() && w.dims == dims => {}
            (Some(w), _) => return Err(Error::shape(self.name(), Self::expected(w), shape)),
            (None, None) => {
                return Err(Error::shape(
                    self.name(),
                    format!("known sizes on axes {axes:?}"),
                    shape,
                ))
            }
            (None, Some(dims)) => {
                let c = &self.config;
                let params = ScaleOffset::new(
                    self.name(),
                    &dims,
                    c.scale.then_some(&c.gamma_initializer),
                    c.center.then_some(&c.beta_initializer),
                )?;
                // Another thread may have built it meanwhile; its weights fit the same shape.
                let _ = self.weights.set(LayerNormWeights {
                    rank: shape.rank(),
                    axes,
                    dims,
                    params,
                });
            }
        }
        Ok(vec![shape.clone()])
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        let w = self.built()?;
        let layout = self.layout(w, x.dims())?;
        let gamma = flat(w.params.gamma.as_ref().map(|g| ctx.weight(g)))?;
        let beta = flat(w.params.beta.as_ref().map(|b| ctx.weight(b)))?;
        let out = rkeras_ops::layer_normalization(
            &layout.to_rows(x)?,
            gamma.as_ref(),
            beta.as_ref(),
            self.config.epsilon,
        )?;
        ctx.save(Saved {
            mean: out.mean,
            inv_std: out.inv_std,
        });
        Ok(vec![layout.to_input_dims(&out.y)?])
    }

    fn weights(&self) -> Vec<Weight> {
        self.weights
            .get()
            .map_or_else(Vec::new, |w| w.params.weights(&self.base))
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }

    fn regularization_losses(&self) -> Result<Vec<Tensor>> {
        let c = &self.config;
        self.weights.get().map_or(Ok(Vec::new()), |w| {
            w.params
                .penalties(c.gamma_regularizer.as_ref(), c.beta_regularizer.as_ref())
        })
    }

    fn has_backward(&self, device: &Device) -> bool {
        rkeras_ops::kernels_on(device)
    }

    fn backward(
        &self,
        record: CallRecord,
        grad_outputs: &[Tensor],
        needs_input_grad: &[bool],
        weight_grads: &mut WeightGrads,
    ) -> Result<Vec<Option<Tensor>>> {
        let (x, _, dy) = record.single(self.name(), grad_outputs)?;
        let saved = record.saved::<Saved>(self.name())?;
        let w = self.built()?;
        let (gamma, beta) = (w.params.gamma.as_ref(), w.params.beta.as_ref());
        let want_x = needs_input_grad.first().copied().unwrap_or(false);
        let want_weights = [gamma, beta]
            .into_iter()
            .flatten()
            .any(|v| weight_grads.wants(v));
        if !want_x && !want_weights {
            return Ok(vec![None]);
        }
        let layout = self.layout(w, x.dims())?;
        let grads = rkeras_ops::layer_normalization_backward(
            &layout.to_rows(x)?,
            &layout.to_rows(dy)?,
            (&saved.mean, &saved.inv_std),
            flat(gamma.map(|g| g.as_tensor().detach()))?.as_ref(),
            want_x,
        )?;
        if let Some(gamma) = gamma {
            weight_grads.add(gamma, grads.gamma.reshape(w.dims.as_slice())?)?;
        }
        if let Some(beta) = beta {
            weight_grads.add(beta, grads.beta.reshape(w.dims.as_slice())?)?;
        }
        Ok(vec![grads
            .x
            .map(|g| layout.to_input_dims(&g))
            .transpose()?])
    }
}

/// The harness cases: the last axis on vectors and sequences, several axes, an axis before
/// the last, no gamma and beta, and a forward computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    use candle_core::Device;
    let layer = |ln: LayerNormalization| ln.layer().expect("layer normalization");
    // Row [1, 3, 1, 3]: mean 2, variance 1, x̂ = [-1, 1, -1, 1] · s with s = 1 / sqrt(1.001).
    // Row [0, 0, 0, 4]: mean 1, variance (1 + 1 + 1 + 9) / 4 = 3, x̂ = [-1, -1, -1, 3] · t with
    // t = 1 / sqrt(3.001). gamma [1, 2, 1, 2], beta [0, 0, 1, 1]: y = x̂ · gamma + beta.
    let (s, t) = (1.0 / 1.001f64.sqrt(), 1.0 / 3.001f64.sqrt());
    let x = Tensor::new(&[[1f32, 3.0, 1.0, 3.0], [0.0, 0.0, 0.0, 4.0]], &Device::Cpu);
    let known = LayerCase::new(layer(LayerNormalization::new()), &[&[4]])
        .output_shapes(&["(None, 4)"])
        .weights(2, 0, 2 * 4)
        .weight_values(vec![vec![1.0, 2.0, 1.0, 2.0], vec![0.0, 0.0, 1.0, 1.0]])
        .forward(
            vec![x.expect("x")],
            vec![vec![
                -s,
                2.0 * s,
                1.0 - s,
                1.0 + 2.0 * s,
                -t,
                -2.0 * t,
                1.0 - t,
                1.0 + 6.0 * t,
            ]],
        );
    // Axis 1 of (2, 2): each column of a sample normalized on its own. Sample [[1, 2], [3, 6]]:
    // column [1, 3] -> mean 2, variance 1; column [2, 6] -> mean 4, variance 4, so
    // [[-s, -u], [s, u]] with u = 2 / sqrt(4.001).
    let u = 2.0 / 4.001f64.sqrt();
    let x = Tensor::new(&[[[1f32, 2.0], [3.0, 6.0]]], &Device::Cpu);
    let axis_one = LayerCase::new(layer(LayerNormalization::new().axis(1)), &[&[2, 2]])
        .output_shapes(&["(None, 2, 2)"])
        .weights(2, 0, 2 * 2)
        .forward(vec![x.expect("x")], vec![vec![-s, -u, s, u]]);
    vec![
        known,
        axis_one,
        LayerCase::new(layer(LayerNormalization::new()), &[&[3, 5]])
            .output_shapes(&["(None, 3, 5)"])
            .weights(2, 0, 2 * 5),
        LayerCase::new(layer(LayerNormalization::new().axes(&[1, 2])), &[&[3, 4]])
            .output_shapes(&["(None, 3, 4)"])
            .weights(2, 0, 2 * 3 * 4),
        LayerCase::new(
            layer(LayerNormalization::new().axes(&[-3, -1])),
            &[&[2, 3, 2]],
        )
        .output_shapes(&["(None, 2, 3, 2)"])
        .weights(2, 0, 2 * 2 * 2),
        LayerCase::new(
            layer(LayerNormalization::new().center(false).scale(false)),
            &[&[6]],
        )
        .output_shapes(&["(None, 6)"])
        .weights(0, 0, 0),
        LayerCase::new(
            layer(
                LayerNormalization::new()
                    .center(false)
                    .epsilon(0.1)
                    .gamma_regularizer(Regularizer::l1(0.01)),
            ),
            &[&[5]],
        )
        .output_shapes(&["(None, 5)"])
        .weights(1, 0, 5),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, flat as values};

    #[test]
    fn the_axis_is_saved_as_keras_writes_it() {
        let one = LayerNormalization::new().name("ln").layer().unwrap();
        assert_eq!(one.config()["axis"], -1);
        let many = LayerNormalization::new()
            .axes(&[1, 2])
            .name("ln2")
            .layer()
            .unwrap();
        assert_eq!(many.config()["axis"], serde_json::json!([1, 2]));
        assert!(!many.mixes_samples());
    }

    #[test]
    fn samples_are_normalized_apart() {
        // The same sample gives the same output whatever the rest of the batch holds.
        let ln = LayerNormalization::new().layer().unwrap();
        ln.build(&[SymbolicShape::batched(None, &[3])]).unwrap();
        let alone = Tensor::new(&[[1f32, 2.0, 4.0]], &Device::Cpu).unwrap();
        let batch = Tensor::new(&[[1f32, 2.0, 4.0], [100.0, -3.0, 0.5]], &Device::Cpu).unwrap();
        let mut ctx = CallContext::recording();
        let one = values(&ln.call(&[alone], &mut ctx).unwrap()[0]);
        let both = values(&ln.call(&[batch], &mut ctx).unwrap()[0]);
        let want: Vec<f64> = one.iter().map(|&v| v as f64).collect();
        assert_close("first sample", &both[..3], &want, 1e-6);
    }

    #[test]
    fn bad_axes_and_shapes_are_errors_naming_the_layer() {
        let build = |ln: LayerNormalization, dims: &[usize]| {
            let layer = ln.name("ln").layer()?;
            layer.build(&[SymbolicShape::batched(None, dims)])?;
            Ok::<_, Error>(layer)
        };
        let err = |r: Result<Arc<dyn Layer>>| r.err().unwrap().to_string();
        assert!(
            err(build(LayerNormalization::new().axes(&[1, -2]), &[3, 4])).contains("duplicate")
        );
        assert!(err(build(LayerNormalization::new().axes(&[]), &[3])).contains("at least one"));
        assert!(err(build(LayerNormalization::new().axis(0), &[3])).contains("out of range"));
        assert!(err(build(LayerNormalization::new().epsilon(f64::NAN), &[3])).contains("epsilon"));
        let ln = build(LayerNormalization::new(), &[3]).unwrap();
        assert!(ln
            .build(&[SymbolicShape::batched(None, &[4])])
            .unwrap_err()
            .to_string()
            .contains("(None, 3)"));
        let wrong = Tensor::zeros((2, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let message = ln
            .call(&[wrong], &mut CallContext::new(false))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("'ln'") && message.contains("[2, 4]"),
            "{message}"
        );
    }
}
