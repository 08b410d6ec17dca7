//! `GroupNormalization`: the channels split into `groups` groups, each sample normalized over
//! each group's channels and every other non-batch axis, then scaled and shifted per channel
//! (`keras/src/layers/normalization/group_normalization.py`: `ops.moments`' biased variance,
//! `epsilon` inside the square root, `groups=-1` for one group per channel, i.e. instance
//! normalization). Samples are independent. Keras's constraints are not supported.
//!
//! On the CPU each group of a sample is a row for `LayerNormalization`'s kernels (forward and
//! backward), gamma and beta applied per channel around them; elsewhere candle ops.

use std::sync::{Arc, OnceLock};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::axes::RowLayout;
use super::channel_axis::{build_once, ChannelAxis};
use super::scale_offset::{check_epsilon, scale_offset_options, ScaleOffset};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::initializers::Initializer;
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::record::{differentiate_locally, CallRecord, WeightGrads};
use crate::regularizers::Regularizer;
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape, Weight};

/// `GroupNormalization`'s options, with Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupNormalizationConfig {
    /// The number of groups (default 32), dividing the channels; -1 for one per channel.
    pub groups: i64,
    /// The channel axis (default -1); any axis but the batch.
    pub axis: i64,
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

impl Default for GroupNormalizationConfig {
    fn default() -> Self {
        GroupNormalizationConfig {
            groups: 32,
            axis: -1,
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

/// Group normalization, callable on symbolic tensors: `GroupNormalization::new().groups(8)(x)`.
pub type GroupNormalization = LayerBuilder<GroupNormalizationConfig>;

impl GroupNormalization {
    /// A group normalization with Keras's defaults (32 groups over the last axis).
    pub fn new() -> Self {
        LayerBuilder::from_config(GroupNormalizationConfig::default())
    }

    /// The number of groups; -1 for one per channel.
    pub fn groups(self, groups: i64) -> Self {
        self.with(|c| c.groups = groups)
    }

    /// The channel axis (negative counts from the end).
    pub fn axis(self, axis: i64) -> Self {
        self.with(|c| c.axis = axis)
    }

    scale_offset_options!();
}

impl Default for GroupNormalization {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerConfig for GroupNormalizationConfig {
    const CLASS_NAME: &'static str = "GroupNormalization";
    const NAME_PREFIX: &'static str = "group_normalization";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        check_epsilon(&name, self.epsilon)?;
        if self.groups == 0 || self.groups < -1 {
            return Err(Error::config(
                name,
                format!(
                    "groups must be a positive integer (or -1 for instance normalization), got {}",
                    self.groups
                ),
            ));
        }
        Ok(Arc::new(GroupNormalizationLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
            weights: OnceLock::new(),
        }))
    }
}

/// The weights, made on first build for inputs of one rank and channel count.
struct GroupNormWeights {
    at: ChannelAxis,
    groups: usize,
    params: ScaleOffset,
}

/// The layer a [`GroupNormalization`] builder makes.
pub struct GroupNormalizationLayer {
    base: LayerBase,
    config: GroupNormalizationConfig,
    weights: OnceLock<GroupNormWeights>,
}

/// What a recorded call on the kernels keeps: each group's mean and inverse deviation (one
/// per sample and group), and the normalized input as `(rows, channels)`.
struct Saved {
    mean: Tensor,
    inv_std: Tensor,
    normalized: Tensor,
}

/// The input as `(rows, channels)` rows (channels last, `positions` rows per sample) and as
/// one row per sample and group.
struct Groups {
    batch: usize,
    positions: usize,
    groups: usize,
    per_group: usize,
}

impl Groups {
    fn of(w: &GroupNormWeights, batch: usize, rows: usize) -> Self {
        Groups {
            batch,
            positions: rows / batch.max(1),
            groups: w.groups,
            per_group: w.at.channels / w.groups,
        }
    }

    /// `(batch, positions, groups, per group)`.
    fn split(&self, rows: &Tensor) -> Result<Tensor> {
        Ok(rows.reshape((self.batch, self.positions, self.groups, self.per_group))?)
    }

    /// `(rows, channels)` as `(batch · groups, positions · per group)`.
    fn to_group_rows(&self, rows: &Tensor) -> Result<Tensor> {
        let grouped = self.split(rows)?.permute((0, 2, 1, 3))?.contiguous()?;
        Ok(grouped.reshape((self.batch * self.groups, self.positions * self.per_group))?)
    }

    /// The inverse of [`Groups::to_group_rows`].
    fn to_channel_rows(&self, grouped: &Tensor) -> Result<Tensor> {
        let t = grouped
            .reshape((self.batch, self.groups, self.positions, self.per_group))?
            .permute((0, 2, 1, 3))?
            .contiguous()?;
        Ok(t.reshape((self.batch * self.positions, self.groups * self.per_group))?)
    }
}

impl GroupNormalizationLayer {
    /// The normalized rows by candle ops (other devices, f64 inputs): the statistics of a
    /// sample's group run over axes 1 and 3 of [`Groups::split`], in f32 at least (as Keras's).
    fn composed(&self, groups: &Groups, rows: &Tensor) -> Result<Tensor> {
        let dtype = rows.dtype();
        let compute = if dtype == DType::F64 {
            dtype
        } else {
            DType::F32
        };
        let grouped = groups.split(&rows.to_dtype(compute)?)?;
        let mean = grouped.mean_keepdim((1, 3))?;
        let centered = grouped.broadcast_sub(&mean)?;
        let variance = centered.sqr()?.mean_keepdim((1, 3))?;
        let inv_std = (variance + self.config.epsilon)?.sqrt()?.recip()?;
        Ok(centered
            .broadcast_mul(&inv_std)?
            .reshape(rows.shape())?
            .to_dtype(dtype)?)
    }

    fn built(&self) -> Result<&GroupNormWeights> {
        self.weights.get().ok_or_else(|| {
            Error::config(self.name(), "called before it was built on an input shape")
        })
    }

    /// The groups for `channels` channels, as Keras's `build` checks them.
    fn groups(&self, channels: usize) -> Result<usize> {
        let groups = match self.config.groups {
            -1 => channels,
            groups => groups as usize,
        };
        if groups > channels || !channels.is_multiple_of(groups) {
            return Err(Error::config(
                self.name(),
                format!("groups ({groups}) must divide the number of channels ({channels})"),
            ));
        }
        Ok(groups)
    }

    fn make_weights(&self, at: ChannelAxis) -> Result<GroupNormWeights> {
        let channels = at.channels;
        let c = &self.config;
        Ok(GroupNormWeights {
            at,
            groups: self.groups(channels)?,
            params: ScaleOffset::new(
                self.name(),
                &[channels],
                c.scale.then_some(&c.gamma_initializer),
                c.center.then_some(&c.beta_initializer),
            )?,
        })
    }
}

impl Layer for GroupNormalizationLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        GroupNormalizationConfig::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        build_once(
            self.name(),
            self.config.axis,
            shape,
            &self.weights,
            |w| w.at,
            |at| self.make_weights(at),
        )?;
        Ok(vec![shape.clone()])
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        let w = self.built()?;
        let dims = x.dims();
        w.at.check(self.name(), dims)?;
        let layout = RowLayout::new(dims, &[w.at.axis]);
        let rows = layout.to_rows(x)?;
        let groups = Groups::of(w, dims[0], rows.dim(0)?);
        let normalized = if rkeras_ops::kernels_on(x.device()) && x.dtype() == DType::F32 {
            // Each group of a sample as one row: layer normalization's kernel.
            let out = rkeras_ops::layer_normalization(
                &groups.to_group_rows(&rows)?,
                None,
                None,
                self.config.epsilon,
            )?;
            let normalized = groups.to_channel_rows(&out.y)?;
            ctx.save(Saved {
                mean: out.mean,
                inv_std: out.inv_std,
                normalized: normalized.clone(),
            });
            normalized
        } else {
            self.composed(&groups, &rows)?
        };
        let scaled = match &w.params.gamma {
            Some(gamma) => normalized.broadcast_mul(&ctx.weight(gamma))?,
            None => normalized,
        };
        let y = match &w.params.beta {
            Some(beta) => scaled.broadcast_add(&ctx.weight(beta))?,
            None => scaled,
        };
        Ok(vec![layout.to_input_dims(&y)?])
    }

    fn has_backward(&self, device: &Device) -> bool {
        rkeras_ops::kernels_on(device)
    }

    /// Per channel, gamma's gradient sums `dy · x̂` and beta's `dy`; the input's is layer
    /// normalization's backward over each group's row, of `dy · gamma`. A call that ran the
    /// composed form (an f64 input) is differentiated by autograd.
    fn backward(
        &self,
        record: CallRecord,
        grad_outputs: &[Tensor],
        needs_input_grad: &[bool],
        weight_grads: &mut WeightGrads,
    ) -> Result<Vec<Option<Tensor>>> {
        if record.saved_if::<Saved>().is_none() {
            return differentiate_locally(
                self,
                record,
                grad_outputs,
                needs_input_grad,
                weight_grads,
            );
        }
        let (x, _, dy) = record.single(self.name(), grad_outputs)?;
        let saved = record.saved::<Saved>(self.name())?;
        let w = self.built()?;
        let layout = RowLayout::new(x.dims(), &[w.at.axis]);
        let dy = layout.to_rows(dy)?;
        if let Some(gamma) = w.params.gamma.as_ref().filter(|g| weight_grads.wants(g)) {
            let grad = rkeras_ops::bias_gradient(&(&dy * &saved.normalized)?)?;
            weight_grads.add(gamma, grad)?;
        }
        if let Some(beta) = w.params.beta.as_ref().filter(|b| weight_grads.wants(b)) {
            weight_grads.add(beta, rkeras_ops::bias_gradient(&dy)?)?;
        }
        if !needs_input_grad.first().copied().unwrap_or(false) {
            return Ok(vec![None]);
        }
        let d_normalized = match &w.params.gamma {
            Some(gamma) => dy.broadcast_mul(&gamma.as_tensor().detach())?,
            None => dy,
        };
        let rows = layout.to_rows(x)?;
        let groups = Groups::of(w, x.dims()[0], rows.dim(0)?);
        let grads = rkeras_ops::layer_normalization_backward(
            &groups.to_group_rows(&rows)?,
            &groups.to_group_rows(&d_normalized)?,
            (&saved.mean, &saved.inv_std),
            None,
            true,
        )?;
        Ok(vec![grads
            .x
            .map(|dx| {
                groups
                    .to_channel_rows(&dx)
                    .and_then(|dx| layout.to_input_dims(&dx))
            })
            .transpose()?])
    }

    fn weights(&self) -> Vec<Weight> {
        self.weights
            .get()
            .map_or_else(Vec::new, |w| w.params.weights(&self.base))
    }

    /// Keras's config; once built, `groups=-1` is saved as the channel count it stands for, as
    /// Keras's `build` sets it (`keras/src/layers/normalization/group_normalization.py`).
    fn config(&self) -> serde_json::Value {
        match self.weights.get() {
            Some(w) => {
                let built = GroupNormalizationConfig {
                    groups: w.groups as i64,
                    ..self.config.clone()
                };
                config_with_name(&built, &self.base)
            }
            None => config_with_name(&self.config, &self.base),
        }
    }

    fn regularization_losses(&self) -> Result<Vec<Tensor>> {
        let c = &self.config;
        self.weights.get().map_or(Ok(Vec::new()), |w| {
            w.params
                .penalties(c.gamma_regularizer.as_ref(), c.beta_regularizer.as_ref())
        })
    }
}

/// The harness cases: groups over the last axis of vectors, sequences and images, instance
/// normalization, an axis before the last, no gamma and beta, and forwards computed by hand.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    use candle_core::Device;
    let layer = |gn: GroupNormalization| gn.layer().expect("group normalization");
    // Two groups of [1, 3 | 0, 4]: mean 2, variance 1 -> [-s, s]; mean 2, variance 4 ->
    // [-2u, 2u], with s = 1/√1.001, u = 1/√4.001. gamma [1, 2, 1, 2], beta [0, 0, 1, 1].
    let (s, u) = (1.0 / 1.001f64.sqrt(), 1.0 / 4.001f64.sqrt());
    let x = Tensor::new(&[[1f32, 3.0, 0.0, 4.0]], &Device::Cpu).expect("x");
    let two_groups = LayerCase::new(layer(GroupNormalization::new().groups(2)), &[&[4]])
        .output_shapes(&["(None, 4)"])
        .weights(2, 0, 2 * 4)
        .weight_values(vec![vec![1.0, 2.0, 1.0, 2.0], vec![0.0, 0.0, 1.0, 1.0]])
        .forward(
            vec![x],
            vec![vec![-s, 2.0 * s, 1.0 - 2.0 * u, 1.0 + 4.0 * u]],
        );
    // Axis 1 of (2 channels, 2 steps), one group per channel: channel rows [1, 3] and [0, 4]
    // normalized over their steps, as above.
    let x = Tensor::new(&[[[1f32, 3.0], [0.0, 4.0]]], &Device::Cpu).expect("x");
    let instance = LayerCase::new(
        layer(GroupNormalization::new().groups(-1).axis(1)),
        &[&[2, 2]],
    )
    .output_shapes(&["(None, 2, 2)"])
    .weights(2, 0, 2 * 2)
    .forward(vec![x], vec![vec![-s, s, -2.0 * u, 2.0 * u]]);
    // One group over steps and channels of [[1, 2], [3, 2]]: mean 2, variance 0.5.
    let v = 1.0 / 0.501f64.sqrt();
    let x = Tensor::new(&[[[1f32, 2.0], [3.0, 2.0]]], &Device::Cpu).expect("x");
    let one_group = LayerCase::new(layer(GroupNormalization::new().groups(1)), &[&[2, 2]])
        .output_shapes(&["(None, 2, 2)"])
        .weights(2, 0, 2 * 2)
        .forward(vec![x], vec![vec![-v, 0.0, v, 0.0]]);
    vec![
        two_groups,
        instance,
        one_group,
        // Keras's count: gamma and beta, one value per channel each.
        LayerCase::new(layer(GroupNormalization::new().groups(3)), &[&[2, 3, 6]])
            .output_shapes(&["(None, 2, 3, 6)"])
            .weights(2, 0, 2 * 6),
        LayerCase::new(
            layer(
                GroupNormalization::new()
                    .groups(2)
                    .center(false)
                    .scale(false),
            ),
            &[&[3, 4]],
        )
        .output_shapes(&["(None, 3, 4)"])
        .weights(0, 0, 0),
        LayerCase::new(
            layer(
                GroupNormalization::new()
                    .groups(2)
                    .axis(-2)
                    .center(false)
                    .epsilon(0.1)
                    .gamma_regularizer(Regularizer::l2(0.01)),
            ),
            &[&[4, 3]],
        )
        .output_shapes(&["(None, 4, 3)"])
        .weights(1, 0, 4),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_keys_are_keras_s() {
        let layer = GroupNormalization::new().name("gn").layer().unwrap();
        let config = layer.config();
        assert_eq!(
            (config["groups"].clone(), config["axis"].clone()),
            (32.into(), (-1).into())
        );
        assert_eq!(config["epsilon"], 1e-3);
        assert!(!layer.mixes_samples());
        // One group per channel: -1 until built, then the channel count, as Keras saves it.
        let layer = GroupNormalization::new().groups(-1).layer().unwrap();
        assert_eq!(layer.config()["groups"], -1);
        layer
            .build(&[crate::SymbolicShape(vec![None, Some(5), Some(6)])])
            .unwrap();
        assert_eq!(layer.config()["groups"], 6);
    }

    #[test]
    fn bad_groups_and_shapes_are_errors_naming_the_layer() {
        let shape = |gn: GroupNormalization, dims: &[usize]| {
            gn.name("gn")(crate::Input::new(dims))
                .shape()
                .unwrap_err()
                .to_string()
        };
        // 32 groups of 6 channels (Keras's default on too few channels), 4 groups of 6.
        for (groups, channels) in [(32, 6), (4, 6)] {
            let message = shape(GroupNormalization::new().groups(groups), &[channels]);
            assert!(
                message.contains("'gn'") && message.contains("divide"),
                "{message}"
            );
        }
        let message = shape(GroupNormalization::new().groups(2).axis(0), &[4]);
        assert!(message.contains("out of range"), "{message}");
        for groups in [0, -2] {
            let message = GroupNormalization::new()
                .groups(groups)
                .name("gn2")
                .layer()
                .err()
                .expect("refused")
                .to_string();
            assert!(
                message.contains("'gn2'") && message.contains("groups"),
                "{message}"
            );
        }
    }
}
