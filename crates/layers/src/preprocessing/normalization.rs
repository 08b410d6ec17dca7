//! `Normalization`: features shifted and scaled to mean 0 and variance 1 by statistics given
//! or computed once from data by `adapt` (`keras/src/layers/preprocessing/normalization.py`).
//!
//! As in Keras 3: the output is `(x - mean) / max(sqrt(variance), 1e-7)` (or, with `invert`,
//! `x * max(sqrt(variance), 1e-7) + mean`), inputs cast to f32 first; `axis` names the axes
//! that keep a statistic per index (default the last; none: one scalar mean and variance); the
//! statistics are broadcast over the other axes. Without `mean` and `variance` given, the
//! layer owns three non-trainable weights, `mean` and `variance` shaped as the kept axes and
//! a scalar `count` (so `Normalization()` on 9 features counts 19 parameters), which `adapt`
//! sets to the data's mean and population variance over every other axis (computed here in
//! f64). Like Keras 3, a layer never adapted normalizes with its initial mean 0 and variance 1
//! (the identity), and `adapt` leaves `count` at 0 (Keras keeps it for older files only).
//! Keras makes `count` an integer; here it is an f32 like every weight.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use rkeras_layers::{CallContext, Normalization};
//!
//! # fn main() -> rkeras_layers::Result<()> {
//! let normalizer = Normalization::new();
//! normalizer.adapt(&Tensor::new(&[[1f32, 10.0], [3.0, 30.0]], &Device::Cpu)?)?;
//! // Mean [2, 20], variance [1, 100]: [3, 10] -> [(3 - 2) / 1, (10 - 20) / 10].
//! let x = Tensor::new(&[[3f32, 10.0]], &Device::Cpu)?;
//! let y = normalizer.layer()?.call(&[x], &mut CallContext::new(false))?;
//! assert_eq!(y[0].to_vec2::<f32>()?, [[1.0, -1.0]]);
//! # Ok(())
//! # }
//! ```

use std::sync::{Arc, OnceLock};

use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Deserializer, Serialize};

use crate::builder::{LayerBuilder, LayerConfig};
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::limits::{check_shape, claim_weight};
use crate::normalization::layer_normalization::Axes;
use crate::record::{CallRecord, WeightGrads};
use crate::session::default_device;
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape, Weight};

/// Keras's `backend.epsilon()`: the least deviation divided by.
const EPSILON: f64 = 1e-7;

/// A mean or variance given as an option: a number, or nested lists of numbers (Keras takes
/// anything that broadcasts to the kept axes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Statistic {
    /// One value for every index.
    Scalar(f64),
    /// One entry per index of an axis.
    List(Vec<Statistic>),
}

impl Statistic {
    /// The shape of the values, or `None` when the lists are ragged.
    fn shape(&self) -> Option<Vec<usize>> {
        let Statistic::List(items) = self else {
            return Some(Vec::new());
        };
        let inner = match items.first() {
            Some(first) => first.shape()?,
            None => Vec::new(),
        };
        for item in items.iter().skip(1) {
            if item.shape()? != inner {
                return None;
            }
        }
        Some([vec![items.len()], inner].concat())
    }

    /// The values in row-major order.
    fn values(&self) -> Vec<f64> {
        match self {
            Statistic::Scalar(v) => vec![*v],
            Statistic::List(items) => items.iter().flat_map(Statistic::values).collect(),
        }
    }
}

impl From<f64> for Statistic {
    fn from(value: f64) -> Self {
        Statistic::Scalar(value)
    }
}

impl From<&[f64]> for Statistic {
    fn from(values: &[f64]) -> Self {
        Statistic::List(values.iter().map(|&v| Statistic::Scalar(v)).collect())
    }
}

impl<const N: usize> From<[f64; N]> for Statistic {
    fn from(values: [f64; N]) -> Self {
        Statistic::from(&values[..])
    }
}

impl From<Vec<f64>> for Statistic {
    fn from(values: Vec<f64>) -> Self {
        Statistic::from(&values[..])
    }
}

impl From<Vec<Vec<f64>>> for Statistic {
    fn from(rows: Vec<Vec<f64>>) -> Self {
        Statistic::List(rows.into_iter().map(Statistic::from).collect())
    }
}

/// `Normalization`'s options, with Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NormalizationConfig {
    /// The axes with a statistic per index (default `[-1]`; empty: one scalar mean and
    /// variance). Saved as a list, as Keras saves its tuple; read from a number, a list or
    /// `null`.
    #[serde(default = "last_axis", deserialize_with = "keras_axis")]
    pub axis: Vec<i64>,
    /// The mean, given with `variance` instead of adapting.
    #[serde(default)]
    pub mean: Option<Statistic>,
    /// The variance, given with `mean` instead of adapting.
    #[serde(default)]
    pub variance: Option<Statistic>,
    /// Whether to undo a normalization instead: `x * sqrt(variance) + mean`.
    #[serde(default)]
    pub invert: bool,
}

fn last_axis() -> Vec<i64> {
    vec![-1]
}

/// Keras's `axis`: an axis, a list of them, or `null` (none).
fn keras_axis<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Vec<i64>, D::Error> {
    Ok(match Option::<Axes>::deserialize(deserializer)? {
        None => Vec::new(),
        Some(Axes::One(axis)) => vec![axis],
        Some(Axes::Many(axes)) => axes,
    })
}

impl Default for NormalizationConfig {
    fn default() -> Self {
        NormalizationConfig {
            axis: last_axis(),
            mean: None,
            variance: None,
            invert: false,
        }
    }
}

/// Normalization, callable on symbolic tensors: `normalizer.adapt(&x)?` then `normalizer(x)`
/// or `(&normalizer).into()` in a `Sequential`, the adapted statistics with it.
pub type Normalization = LayerBuilder<NormalizationConfig>;

impl Normalization {
    /// A normalization per index of the last axis, to be adapted (Keras's defaults).
    pub fn new() -> Self {
        LayerBuilder::from_config(NormalizationConfig::default())
    }

    /// One statistic per index of `axis` (negative counts from the end).
    pub fn axis(self, axis: i64) -> Self {
        self.with(|c| c.axis = vec![axis])
    }

    /// One statistic per index of several axes (Keras's `axis=(1, 2)`); none (`&[]`, Keras's
    /// `axis=None`): one scalar mean and variance for every value.
    pub fn axes(self, axes: &[i64]) -> Self {
        self.with(|c| c.axis = axes.to_vec())
    }

    /// The mean, broadcast to the kept axes (from the right); give `variance` too.
    pub fn mean(self, mean: impl Into<Statistic>) -> Self {
        let mean = mean.into();
        self.with(|c| c.mean = Some(mean))
    }

    /// The variance, broadcast to the kept axes (from the right); give `mean` too.
    pub fn variance(self, variance: impl Into<Statistic>) -> Self {
        let variance = variance.into();
        self.with(|c| c.variance = Some(variance))
    }

    /// Whether to undo a normalization instead (`x * sqrt(variance) + mean`).
    pub fn invert(self, invert: bool) -> Self {
        self.with(|c| c.invert = invert)
    }

    /// Sets the layer's mean and variance to those of `data` (Keras's `adapt`); see
    /// [`NormalizationLayer::adapt`]. The builder's layer, and so every model it is in,
    /// normalizes with them.
    pub fn adapt(&self, data: &Tensor) -> Result<()> {
        let layer = self.layer()?;
        let normalization = layer
            .as_any()
            .downcast_ref::<NormalizationLayer>()
            .ok_or_else(|| Error::config(layer.name(), "is not a Normalization layer"))?;
        normalization.adapt(data)
    }
}

impl Default for Normalization {
    fn default() -> Self {
        Self::new()
    }
}

impl NormalizationConfig {
    /// Keras's checks in `__init__`: `mean` and `variance` together, of one shape, of a rank
    /// at most the number of axes; and here finite values, no variance below 0.
    fn check_statistics(&self) -> std::result::Result<(), String> {
        let (mean, variance) = match (&self.mean, &self.variance) {
            (None, None) => return Ok(()),
            (Some(mean), Some(variance)) => (mean, variance),
            _ => {
                return Err(
                    "when setting values directly, both `mean` and `variance` must be set".into(),
                )
            }
        };
        let (Some(shape), Some(other)) = (mean.shape(), variance.shape()) else {
            return Err("`mean` and `variance` must be numbers or rectangular lists".into());
        };
        if shape != other {
            return Err(format!(
                "`mean` and `variance` must have the same shape, got {shape:?} and {other:?}"
            ));
        }
        if shape.len() > self.axis.len() {
            return Err(format!(
                "the rank of `mean` ({shape:?}) must be at most the number of axes ({:?})",
                self.axis
            ));
        }
        let variances = variance.values();
        let finite = mean
            .values()
            .iter()
            .chain(&variances)
            .all(|v| v.is_finite());
        if !finite || variances.iter().any(|&v| v < 0.0) {
            return Err("`mean` and `variance` must be finite, the variance at least 0".into());
        }
        Ok(())
    }
}

impl LayerConfig for NormalizationConfig {
    const CLASS_NAME: &'static str = "Normalization";
    const NAME_PREFIX: &'static str = "normalization";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        self.check_statistics()
            .map_err(|message| Error::config(&name, message))?;
        Ok(Arc::new(NormalizationLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
            built: OnceLock::new(),
        }))
    }
}

/// Where the statistics come from: weights (set by `adapt` or loading) or the options.
enum Statistics {
    Adapted {
        mean: Var,
        variance: Var,
        count: Var,
    },
    Given {
        mean: Tensor,
        variance: Tensor,
    },
}

/// What the first build fixes: the input rank, the kept axes (sorted) and their sizes, the
/// statistics (shaped as the kept axes).
struct Built {
    rank: usize,
    keep: Vec<usize>,
    kept_dims: Vec<usize>,
    statistics: Statistics,
}

impl Built {
    /// The input shape the statistics fit, for messages: `(None, 9)`.
    fn expected(&self) -> String {
        let mut expected = vec!["None".to_string(); self.rank];
        for (&axis, size) in self.keep.iter().zip(&self.kept_dims) {
            expected[axis] = size.to_string();
        }
        format!("({})", expected.join(", "))
    }

    /// Whether an input of `dims` fits: any rank with scalar statistics, else this rank with
    /// these sizes on the kept axes.
    fn fits(&self, dims: &[Option<usize>]) -> bool {
        self.keep.is_empty()
            || (dims.len() == self.rank
                && self
                    .keep
                    .iter()
                    .zip(&self.kept_dims)
                    .all(|(&a, &d)| dims[a] == Some(d)))
    }

    /// The shape the statistics take against an input of `rank`: the kept sizes, 1 elsewhere.
    fn broadcast_shape(&self, rank: usize) -> Vec<usize> {
        let mut shape = vec![1; rank];
        for (&axis, &size) in self.keep.iter().zip(&self.kept_dims) {
            shape[axis] = size;
        }
        shape
    }

    /// The axes of an input of `rank` the statistics are shared over.
    fn reduced_axes(&self, rank: usize) -> Vec<usize> {
        (0..rank).filter(|a| !self.keep.contains(a)).collect()
    }
}

/// What a recorded call keeps for the backward pass: the deviation divided by and the square
/// root of the variance, shaped to broadcast against the input.
struct Saved {
    std: Tensor,
    root: Tensor,
}

/// The layer a [`Normalization`] builder makes.
pub struct NormalizationLayer {
    base: LayerBase,
    config: NormalizationConfig,
    built: OnceLock<Built>,
}

impl NormalizationLayer {
    fn built(&self) -> Result<&Built> {
        self.built.get().ok_or_else(|| {
            Error::config(self.name(), "called before it was built on an input shape")
        })
    }

    /// Keras's `_keep_axis` for inputs of `rank`: each axis resolved, sorted, never the batch.
    fn keep_axes(&self, rank: usize) -> Result<Vec<usize>> {
        let mut keep = Vec::with_capacity(self.config.axis.len());
        for &axis in &self.config.axis {
            let resolved = if axis < 0 { axis + rank as i64 } else { axis };
            if resolved < 1 || resolved >= rank as i64 {
                return Err(Error::config(
                    self.name(),
                    format!(
                        "axis {axis} is out of range for an input of rank {rank} (axis 0, the \
                         batch, cannot keep statistics; use no axis for one scalar mean)"
                    ),
                ));
            }
            keep.push(resolved as usize);
        }
        keep.sort_unstable();
        if keep.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err(Error::config(
                self.name(),
                format!("axis {:?} names an axis twice", self.config.axis),
            ));
        }
        Ok(keep)
    }

    /// The statistics for kept axes of `kept_dims`: the given ones broadcast to them, else
    /// new weights (mean 0, variance 1, count 0).
    fn make_statistics(&self, kept_dims: &[usize]) -> Result<Statistics> {
        let device = default_device();
        if let (Some(mean), Some(variance)) = (&self.config.mean, &self.config.variance) {
            return Ok(Statistics::Given {
                mean: self.broadcast_given(mean, kept_dims, &device)?,
                variance: self.broadcast_given(variance, kept_dims, &device)?,
            });
        }
        let weight = |shape: &[usize], value: f64| -> Result<Var> {
            claim_weight(self.name(), shape)?;
            let zeros = Tensor::zeros(shape, DType::F32, &device)?;
            Ok(Var::from_tensor(&(zeros + value)?)?)
        };
        Ok(Statistics::Adapted {
            mean: weight(kept_dims, 0.0)?,
            variance: weight(kept_dims, 1.0)?,
            count: weight(&[], 0.0)?,
        })
    }

    /// A given mean or variance broadcast to `kept_dims`, its dims aligned from the right
    /// (Keras's `build`).
    fn broadcast_given(
        &self,
        values: &Statistic,
        kept_dims: &[usize],
        device: &Device,
    ) -> Result<Tensor> {
        let shape = values.shape().unwrap_or_default();
        let offset = kept_dims.len().saturating_sub(shape.len());
        let aligned: Vec<usize> = std::iter::repeat_n(1, offset)
            .chain(shape.iter().copied())
            .collect();
        let fits = shape.len() <= kept_dims.len()
            && aligned
                .iter()
                .zip(kept_dims)
                .all(|(&a, &k)| a == k || a == 1);
        if !fits {
            return Err(Error::config(
                self.name(),
                format!(
                    "`mean` and `variance` of shape {shape:?} cannot be broadcast to the kept \
                     axes' shape {kept_dims:?}"
                ),
            ));
        }
        let values: Vec<f32> = values.values().iter().map(|&v| v as f32).collect();
        let t = Tensor::from_vec(values, aligned, device)?;
        Ok(t.broadcast_as(kept_dims)?.contiguous()?)
    }

    /// The mean and variance as a call reads them, shaped as the kept axes.
    fn statistics(&self, built: &Built, ctx: &CallContext) -> (Tensor, Tensor) {
        match &built.statistics {
            Statistics::Adapted { mean, variance, .. } => (ctx.weight(mean), ctx.weight(variance)),
            Statistics::Given { mean, variance } => (mean.clone(), variance.clone()),
        }
    }

    /// The current mean, shaped as the kept axes (Keras's `layer.mean`, unbroadcast).
    pub fn mean(&self) -> Result<Tensor> {
        Ok(self.statistics(self.built()?, &CallContext::new(false)).0)
    }

    /// The current variance, shaped as the kept axes.
    pub fn variance(&self) -> Result<Tensor> {
        Ok(self.statistics(self.built()?, &CallContext::new(false)).1)
    }

    /// Keras's `adapt`: builds the layer for `data`'s shape (samples first) if not built yet,
    /// then sets `mean` and `variance` to the mean and population variance of `data` over every
    /// axis but the kept ones (computed in f64). Adapting again replaces them. An error for a
    /// layer given `mean` and `variance`, for data of another shape on the kept axes, and for
    /// empty data.
    pub fn adapt(&self, data: &Tensor) -> Result<()> {
        if self.config.mean.is_some() {
            return Err(Error::config(
                self.name(),
                "was given `mean` and `variance`: there is nothing to adapt",
            ));
        }
        let dims = data.dims();
        if dims.is_empty() || dims.contains(&0) {
            return Err(Error::shape(
                self.name(),
                "data of at least one sample, no dimension of size 0",
                format!("{dims:?}"),
            ));
        }
        let shape = SymbolicShape::batched(None, &dims[1..]);
        if let Some(built) = self.built.get() {
            if !built.fits(shape.dims()) {
                return Err(Error::shape(
                    self.name(),
                    built.expected(),
                    format!("{dims:?}"),
                ));
            }
        }
        self.build(&[shape])?;
        let built = self.built()?;
        let Statistics::Adapted { mean, variance, .. } = &built.statistics else {
            return Err(Error::config(self.name(), "has no statistics to adapt"));
        };
        let reduced = built.reduced_axes(dims.len());
        let x = data.to_dtype(DType::F64)?.to_device(mean.device())?;
        let data_mean = x.mean_keepdim(reduced.clone())?;
        let data_variance = x.broadcast_sub(&data_mean)?.sqr()?.mean_keepdim(reduced)?;
        for (var, value) in [(mean, data_mean), (variance, data_variance)] {
            var.set(
                &value
                    .reshape(built.kept_dims.as_slice())?
                    .to_dtype(DType::F32)?,
            )?;
        }
        Ok(())
    }
}

impl Layer for NormalizationLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        NormalizationConfig::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        check_shape(self.name(), shape)?;
        if let Some(built) = self.built.get() {
            if !built.fits(shape.dims()) {
                return Err(Error::shape(self.name(), built.expected(), shape));
            }
            return Ok(vec![shape.clone()]);
        }
        let keep = self.keep_axes(shape.rank())?;
        let kept_dims = keep
            .iter()
            .map(|&a| {
                shape.dims()[a].ok_or_else(|| {
                    Error::shape(self.name(), format!("a known size on axis {a}"), shape)
                })
            })
            .collect::<Result<Vec<usize>>>()?;
        let statistics = self.make_statistics(&kept_dims)?;
        // Another thread may have built it meanwhile, for the same shape.
        let _ = self.built.set(Built {
            rank: shape.rank(),
            keep,
            kept_dims,
            statistics,
        });
        Ok(vec![shape.clone()])
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?.to_dtype(DType::F32)?;
        let built = self.built()?;
        let dims: Vec<Option<usize>> = x.dims().iter().copied().map(Some).collect();
        if !built.fits(&dims) {
            return Err(Error::shape(
                self.name(),
                built.expected(),
                format!("{:?}", x.dims()),
            ));
        }
        let shape = built.broadcast_shape(x.rank());
        let (mean, variance) = self.statistics(built, ctx);
        let (mean, variance) = (mean.reshape(shape.as_slice())?, variance.reshape(shape)?);
        let root = variance.sqrt()?;
        let std = root.maximum(EPSILON)?;
        let y = if self.config.invert {
            x.broadcast_mul(&std)?.broadcast_add(&mean)?
        } else {
            x.broadcast_sub(&mean)?.broadcast_div(&std)?
        };
        ctx.save(Saved { std, root });
        Ok(vec![y])
    }

    fn weights(&self) -> Vec<Weight> {
        let Some(Built {
            statistics:
                Statistics::Adapted {
                    mean,
                    variance,
                    count,
                },
            ..
        }) = self.built.get()
        else {
            return Vec::new();
        };
        [("mean", mean), ("variance", variance), ("count", count)]
            .into_iter()
            .map(|(path, var)| Weight {
                path: path.to_string(),
                var: var.clone(),
                trainable: false,
            })
            .collect()
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }

    /// A fixed affine map: the output's gradient divided by the deviation (times it when
    /// inverting), on every device.
    fn has_backward(&self, _device: &Device) -> bool {
        true
    }

    /// Also the gradients of the statistics, for whoever asks: `mean` gets minus the input's
    /// (plus the output's when inverting) summed over the shared axes; `variance` gets what
    /// the deviation gets times `1 / (2 sqrt(variance))`, nothing where `epsilon` is the
    /// deviation.
    fn backward(
        &self,
        record: CallRecord,
        grad_outputs: &[Tensor],
        needs_input_grad: &[bool],
        weight_grads: &mut WeightGrads,
    ) -> Result<Vec<Option<Tensor>>> {
        let (x, y, dy) = record.single(self.name(), grad_outputs)?;
        let saved = record.saved::<Saved>(self.name())?;
        let built = self.built()?;
        let wants_x = needs_input_grad.first().copied().unwrap_or(false) && x.dtype().is_float();
        let wanted = |var: &Var| weight_grads.wants(var);
        let wants_statistics = match &built.statistics {
            Statistics::Adapted { mean, variance, .. } => wanted(mean) || wanted(variance),
            Statistics::Given { .. } => false,
        };
        if !wants_x && !wants_statistics {
            return Ok(vec![None]);
        }
        let invert = self.config.invert;
        let dx = if invert {
            dy.broadcast_mul(&saved.std)?
        } else {
            dy.broadcast_div(&saved.std)?
        };
        if let Statistics::Adapted { mean, variance, .. } = &built.statistics {
            let reduced = built.reduced_axes(x.rank());
            let kept = built.kept_dims.as_slice();
            if weight_grads.wants(mean) {
                let grad = if invert { dy.clone() } else { dx.neg()? };
                weight_grads.add(mean, grad.sum_keepdim(reduced.clone())?.reshape(kept)?)?;
            }
            if weight_grads.wants(variance) {
                // d std / d variance: 1 / (2 sqrt(variance)) where the root is the deviation.
                let slope = saved
                    .root
                    .gt(EPSILON)?
                    .where_cond(&(saved.root.recip()? * 0.5)?, &saved.root.zeros_like()?)?;
                // d y / d std: x (inverting), else -(x - mean) / std² = -y / std.
                let d_std = if invert {
                    (dy * x.to_dtype(DType::F32)?)?.sum_keepdim(reduced)?
                } else {
                    (dy * y)?.sum_keepdim(reduced)?.neg()?.div(&saved.std)?
                };
                weight_grads.add(variance, (d_std * slope)?.reshape(kept)?)?;
            }
        }
        Ok(vec![wants_x.then(|| dx.to_dtype(x.dtype())).transpose()?])
    }
}

/// The harness cases: adapted statistics set by hand and by `adapt` (Keras's docstring
/// examples), inverted, one scalar mean (`axis=None`), several kept axes, another axis, and
/// statistics given as options, broadcast from a number or from the right.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    let layer = |n: Normalization| n.layer().expect("normalization");
    let adapted = |n: Normalization, data: &[[f32; 3]; 4]| {
        let data = Tensor::new(data, &Device::Cpu).expect("data");
        n.adapt(&data).expect("adapt");
        layer(n)
    };
    let t = |values: &[f32], shape: &[usize]| {
        Tensor::from_slice(values, shape, &Device::Cpu).expect("input")
    };
    // Mean [1, -2, 0.5], variance [4, 0.25, 1]: deviations [2, 0.5, 1].
    let stats = || vec![vec![1.0, -2.0, 0.5], vec![4.0, 0.25, 1.0], vec![0.0]];
    // Keras's docstring data: mean [1, 8, 5], variance [1, 1, 1].
    let keras_data = [[0., 7., 4.], [2., 9., 6.], [0., 7., 4.], [2., 9., 6.]];
    vec![
        // 3 + 3 + 1 parameters, none trainable. [3, -1.5, 2.5] -> [(3 - 1) / 2,
        // (-1.5 + 2) / 0.5, (2.5 - 0.5) / 1] = [1, 1, 2]; [-1, -2, -0.5] -> [-1, 0, -1].
        LayerCase::new(layer(Normalization::new()), &[&[3]])
            .output_shapes(&["(None, 3)"])
            .weights(0, 3, 3 + 3 + 1)
            .weight_values(stats())
            .forward(
                vec![t(&[3., -1.5, 2.5, -1., -2., -0.5], &[2, 3])],
                vec![vec![1., 1., 2., -1., 0., -1.]],
            ),
        // Inverted, the same statistics undo the case above: x · deviation + mean.
        LayerCase::new(layer(Normalization::new().invert(true)), &[&[3]])
            .output_shapes(&["(None, 3)"])
            .weights(0, 3, 3 + 3 + 1)
            .weight_values(stats())
            .forward(
                vec![t(&[1., 1., 2., -1., 0., -1.], &[2, 3])],
                vec![vec![3., -1.5, 2.5, -1., -2., -0.5]],
            ),
        // Adapted on Keras's data: [0, 7, 4] -> [-1, -1, -1], as Keras's docstring prints.
        LayerCase::new(adapted(Normalization::new(), &keras_data), &[&[3]])
            .output_shapes(&["(None, 3)"])
            .weights(0, 3, 3 + 3 + 1)
            .forward(vec![t(&[0., 7., 4.], &[1, 3])], vec![vec![-1., -1., -1.]]),
        // And inverted: [1, 2, 3] -> [1 + 1, 2 + 8, 3 + 5] = [2, 10, 8].
        LayerCase::new(
            adapted(Normalization::new().invert(true), &keras_data),
            &[&[3]],
        )
        .output_shapes(&["(None, 3)"])
        .weights(0, 3, 3 + 3 + 1)
        .forward(vec![t(&[1., 2., 3.], &[1, 3])], vec![vec![2., 10., 8.]]),
        // axis=None: one scalar mean 2 and variance 16 (deviation 4), 1 + 1 + 1 parameters:
        // [2, 6, -2, 10] -> [0, 1, -1, 2].
        LayerCase::new(layer(Normalization::new().axes(&[])), &[&[2, 2]])
            .output_shapes(&["(None, 2, 2)"])
            .weights(0, 3, 1 + 1 + 1)
            .weight_values(vec![vec![2.0], vec![16.0], vec![0.0]])
            .forward(
                vec![t(&[2., 6., -2., 10.], &[1, 2, 2])],
                vec![vec![0., 1., -1., 2.]],
            ),
        // axis=(1, 2): a mean and variance per (2, 3) position, 6 + 6 + 1 parameters.
        // Mean 0..6, variance (1..7)² (deviations 1..7): [1, 3, 8, 3, 14, 17] ->
        // [1 / 1, 2 / 2, 6 / 3, 0 / 4, 10 / 5, 12 / 6] = [1, 1, 2, 0, 2, 2].
        LayerCase::new(layer(Normalization::new().axes(&[1, 2])), &[&[2, 3]])
            .output_shapes(&["(None, 2, 3)"])
            .weights(0, 3, 2 * 3 + 2 * 3 + 1)
            .weight_values(vec![
                vec![0., 1., 2., 3., 4., 5.],
                vec![1., 4., 9., 16., 25., 36.],
                vec![0.],
            ])
            .forward(
                vec![t(&[1., 3., 8., 3., 14., 17.], &[1, 2, 3])],
                vec![vec![1., 1., 2., 0., 2., 2.]],
            ),
        // Given on axis -2 (2 steps): mean [1, -1], variance [1, 4], no weights.
        // [[1, 2, 3], [-1, 1, 3]] -> [[0, 1, 2], [0 / 2, 2 / 2, 4 / 2]] = [[0, 1, 2], [0, 1, 2]].
        LayerCase::new(
            layer(
                Normalization::new()
                    .axis(-2)
                    .mean([1.0, -1.0])
                    .variance([1.0, 4.0]),
            ),
            &[&[2, 3]],
        )
        .output_shapes(&["(None, 2, 3)"])
        .forward(
            vec![t(&[1., 2., 3., -1., 1., 3.], &[1, 2, 3])],
            vec![vec![0., 1., 2., 0., 1., 2.]],
        ),
        // Keras's docstring: mean 3, variance 2 given as numbers:
        // [1, 2, 3] -> [-2 / √2, -1 / √2, 0] = [-1.4142135, -0.70710677, 0].
        LayerCase::new(layer(Normalization::new().mean(3.0).variance(2.0)), &[&[1]])
            .output_shapes(&["(None, 1)"])
            .forward(
                vec![t(&[1., 2., 3.], &[3, 1])],
                vec![vec![
                    -std::f64::consts::SQRT_2,
                    -std::f64::consts::FRAC_1_SQRT_2,
                    0.,
                ]],
            ),
        // axis=(1, 2) given a mean of one row, broadcast from the right over the rows:
        // deviations [2, 1] per column: [3, 2, 5, 0] -> [(3 - 1) / 2, 0, (5 - 1) / 2, -2 / 1].
        LayerCase::new(
            layer(
                Normalization::new()
                    .axes(&[1, 2])
                    .mean(vec![1.0, 2.0])
                    .variance(vec![4.0, 1.0]),
            ),
            &[&[2, 2]],
        )
        .output_shapes(&["(None, 2, 2)"])
        .forward(
            vec![t(&[3., 2., 5., 0.], &[1, 2, 2])],
            vec![vec![1., 0., 2., -2.]],
        ),
    ]
}

#[cfg(test)]
#[path = "normalization_tests.rs"]
mod tests;
