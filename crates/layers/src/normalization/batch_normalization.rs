//! `BatchNormalization`: each channel normalized by the batch's statistics in training and by
//! their moving averages in inference, then scaled and shifted
//! (`keras/src/layers/normalization/batch_normalization.py`).
//!
//! As in Keras 3: the moments are `ops.moments`' (the variance is biased, divided by the
//! count, and that same variance enters the moving average); a training call updates
//! `moving = moving · momentum + batch · (1 - momentum)` once, outside any gradient; and a
//! layer with `trainable = false` runs in inference mode even in training (`call` tests
//! `training and self.trainable`). Keras's `renorm`, `synchronized`, masks and constraints
//! are not supported.

use std::sync::{Arc, OnceLock};

use candle_core::{Device, Tensor, Var};
use rkeras_ops::{BatchNormStatistics, BatchPart};
use serde::{Deserialize, Serialize};

use super::axes::RowLayout;
use super::channel_axis::{build_once, ChannelAxis};
use super::scale_offset::{check_epsilon, new_weight, scale_offset_options, ScaleOffset};
use crate::builder::{LayerBuilder, LayerConfig};
use crate::initializers::Initializer;
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::regularizers::Regularizer;
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape, Weight};

/// `BatchNormalization`'s options, with Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchNormalizationConfig {
    /// The channel axis (default -1, the last); any axis but the batch.
    pub axis: i64,
    /// Momentum of the moving averages (default 0.99).
    pub momentum: f64,
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
    /// Initializer of the moving mean (default zeros).
    pub moving_mean_initializer: Initializer,
    /// Initializer of the moving variance (default ones).
    pub moving_variance_initializer: Initializer,
    /// Penalty on `beta`.
    pub beta_regularizer: Option<Regularizer>,
    /// Penalty on `gamma`.
    pub gamma_regularizer: Option<Regularizer>,
}

impl Default for BatchNormalizationConfig {
    fn default() -> Self {
        BatchNormalizationConfig {
            axis: -1,
            momentum: 0.99,
            epsilon: 1e-3,
            center: true,
            scale: true,
            beta_initializer: Initializer::Zeros,
            gamma_initializer: Initializer::Ones,
            moving_mean_initializer: Initializer::Zeros,
            moving_variance_initializer: Initializer::Ones,
            beta_regularizer: None,
            gamma_regularizer: None,
        }
    }
}

/// Batch normalization, callable on symbolic tensors: `BatchNormalization::new()(x)`.
pub type BatchNormalization = LayerBuilder<BatchNormalizationConfig>;

impl BatchNormalization {
    /// A batch normalization with Keras's defaults.
    pub fn new() -> Self {
        LayerBuilder::from_config(BatchNormalizationConfig::default())
    }

    /// The channel axis (negative counts from the end).
    pub fn axis(self, axis: i64) -> Self {
        self.with(|c| c.axis = axis)
    }

    /// The momentum of the moving averages.
    pub fn momentum(self, momentum: f64) -> Self {
        self.with(|c| c.momentum = momentum)
    }

    /// The initializer of the moving mean.
    pub fn moving_mean_initializer(self, init: impl Into<crate::InitializerArg>) -> Self {
        self.with_initializer(init, |c, init| c.moving_mean_initializer = init)
    }

    /// The initializer of the moving variance.
    pub fn moving_variance_initializer(self, init: impl Into<crate::InitializerArg>) -> Self {
        self.with_initializer(init, |c, init| c.moving_variance_initializer = init)
    }

    scale_offset_options!();
}

impl Default for BatchNormalization {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerConfig for BatchNormalizationConfig {
    const CLASS_NAME: &'static str = "BatchNormalization";
    const NAME_PREFIX: &'static str = "batch_normalization";

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        check_epsilon(&name, self.epsilon)?;
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(Error::config(
                name,
                format!("momentum must be within [0, 1], got {}", self.momentum),
            ));
        }
        Ok(Arc::new(BatchNormalizationLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
            weights: OnceLock::new(),
        }))
    }
}

/// The weights, made on first build for inputs of one rank and channel count.
struct BatchNormWeights {
    at: ChannelAxis,
    params: ScaleOffset,
    moving_mean: Var,
    moving_variance: Var,
}

/// What a recorded call keeps for the backward pass: the statistics it normalized with, and
/// the part of the batch it ran on when they were the whole batch's.
struct Saved {
    mean: Tensor,
    inv_std: Tensor,
    scale: Tensor,
    from_batch: bool,
    part: Option<Arc<BatchPart>>,
}

/// The layer a [`BatchNormalization`] builder makes.
pub struct BatchNormalizationLayer {
    base: LayerBase,
    config: BatchNormalizationConfig,
    weights: OnceLock<BatchNormWeights>,
}

impl BatchNormalizationLayer {
    fn built(&self) -> Result<&BatchNormWeights> {
        self.weights.get().ok_or_else(|| {
            Error::config(self.name(), "called before it was built on an input shape")
        })
    }

    fn make_weights(&self, at: ChannelAxis) -> Result<BatchNormWeights> {
        let channels = at.channels;
        let c = &self.config;
        let name = self.name();
        Ok(BatchNormWeights {
            at,
            params: ScaleOffset::new(
                name,
                &[channels],
                c.scale.then_some(&c.gamma_initializer),
                c.center.then_some(&c.beta_initializer),
            )?,
            moving_mean: new_weight(name, &[channels], &c.moving_mean_initializer)?,
            moving_variance: new_weight(name, &[channels], &c.moving_variance_initializer)?,
        })
    }

    /// The input as the `(rows, channels)` matrix the kernels take, once its shape is checked.
    fn layout(&self, w: &BatchNormWeights, dims: &[usize]) -> Result<RowLayout> {
        w.at.check(self.name(), dims)?;
        Ok(RowLayout::new(dims, &[w.at.axis]))
    }

    /// Moves the moving averages towards the batch's statistics, as values only: the update
    /// is never differentiated.
    fn update_moving_averages(
        &self,
        w: &BatchNormWeights,
        mean: &Tensor,
        variance: &Tensor,
    ) -> Result<()> {
        let momentum = self.config.momentum;
        for (moving, batch) in [(&w.moving_mean, mean), (&w.moving_variance, variance)] {
            let moved =
                ((moving.as_tensor().detach() * momentum)? + (batch.detach() * (1.0 - momentum))?)?;
            moving.set(&moved)?;
        }
        Ok(())
    }
}

impl Layer for BatchNormalizationLayer {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        BatchNormalizationConfig::CLASS_NAME
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
        let layout = self.layout(w, x.dims())?;
        let rows = layout.to_rows(x)?;
        // Keras: `training and self.trainable`; a frozen layer normalizes with its averages.
        let from_batch = ctx.training() && self.trainable();
        // A part of a batch meets the others for the whole batch's statistics, when its
        // backward pass is this layer's own (and so meets them again).
        let part = ctx
            .batch_part()
            .filter(|_| from_batch && ctx.is_recording())
            .cloned();
        let (mean, variance) = if let Some(part) = &part {
            rkeras_ops::batch_moments_across_parts(&rows, part)?
        } else if from_batch {
            rkeras_ops::batch_moments(&rows)?
        } else {
            // Copies: a later update of the averages must not change what this call saved.
            let mean = ctx.weight(&w.moving_mean).copy()?;
            (mean, ctx.weight(&w.moving_variance))
        };
        let inv_std = (&variance + self.config.epsilon)?.sqrt()?.recip()?;
        let scale = match &w.params.gamma {
            Some(gamma) => (ctx.weight(gamma) * &inv_std)?,
            None => inv_std.clone(),
        };
        let shift = (mean.neg()? * &scale)?;
        let shift = match &w.params.beta {
            Some(beta) => (shift + ctx.weight(beta))?,
            None => shift,
        };
        let y = rkeras_ops::scale_shift(&rows, &scale, &shift)?;
        // Every part has the same statistics: the first part alone moves the averages.
        if from_batch && part.as_ref().is_none_or(|part| part.seat().index() == 0) {
            self.update_moving_averages(w, &mean, &variance)?;
        }
        ctx.save(Saved {
            mean,
            inv_std,
            scale,
            from_batch,
            part,
        });
        Ok(vec![layout.to_input_dims(&y)?])
    }

    fn weights(&self) -> Vec<Weight> {
        let Some(w) = self.weights.get() else {
            return Vec::new();
        };
        let mut all = w.params.weights(&self.base);
        for (path, var) in [
            ("moving_mean", &w.moving_mean),
            ("moving_variance", &w.moving_variance),
        ] {
            all.push(Weight {
                path: path.to_string(),
                var: var.clone(),
                trainable: false,
            });
        }
        all
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

    /// Training normalizes with the batch's statistics.
    fn mixes_samples(&self) -> bool {
        true
    }

    /// Wherever its own backward runs (the CPU kernels), the parts of a batch combine their
    /// statistics and gradient sums.
    fn meets_other_parts(&self, device: &Device) -> bool {
        self.has_backward(device)
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
        let want_x = needs_input_grad.first().copied().unwrap_or(false);
        let all = [
            w.params.gamma.as_ref(),
            w.params.beta.as_ref(),
            Some(&w.moving_mean),
            Some(&w.moving_variance),
        ];
        if !want_x && !all.into_iter().flatten().any(|v| weight_grads.wants(v)) {
            return Ok(vec![None]);
        }
        let layout = self.layout(w, x.dims())?;
        let stats = BatchNormStatistics {
            mean: &saved.mean,
            inv_std: &saved.inv_std,
            scale: &saved.scale,
            from_batch: saved.from_batch,
            part: saved.part.as_deref(),
        };
        let grads = rkeras_ops::batch_normalization_backward(
            &layout.to_rows(x)?,
            &layout.to_rows(dy)?,
            &stats,
            want_x,
        )?;
        if let Some(gamma) = &w.params.gamma {
            weight_grads.add(gamma, grads.sum_dy_xhat.clone())?;
        }
        if let Some(beta) = &w.params.beta {
            weight_grads.add(beta, grads.sum_dy.clone())?;
        }
        // The averages are never trainable, but in inference the output depends on them:
        // their gradients, for whoever asks (`y = (x - mean) · inv_std · gamma + beta`).
        if !saved.from_batch && weight_grads.wants(&w.moving_mean) {
            weight_grads.add(&w.moving_mean, (saved.scale.neg()? * &grads.sum_dy)?)?;
        }
        if !saved.from_batch && weight_grads.wants(&w.moving_variance) {
            let slope = ((&saved.scale * &saved.inv_std)? * -0.5)?;
            weight_grads.add(&w.moving_variance, (slope * &grads.sum_dy_xhat)?)?;
        }
        Ok(vec![grads
            .x
            .map(|g| layout.to_input_dims(&g))
            .transpose()?])
    }
}

/// The harness cases: channels last on vectors and images, another axis, no gamma and beta,
/// a frozen layer (inference in training), and forwards computed by hand from known averages.
#[cfg(test)]
pub(crate) fn harness_cases() -> Vec<crate::testing::LayerCase> {
    use crate::testing::LayerCase;
    use candle_core::Device;
    let layer = |bn: BatchNormalization| bn.layer().expect("batch normalization");
    // gamma [1, 2, 0.5], beta [0, 1, -1], moving mean [0.5, -1, 2], moving variance such that
    // variance + 1e-3 = [4, 1, 0.25] (deviations 2, 1, 0.5); y = (x - mean) / dev · gamma + beta:
    // [2.5, 0, 3] -> [2 / 2, 1 / 1 · 2 + 1, 1 / 0.5 · 0.5 - 1] = [1, 3, 0],
    // [-1.5, -2, 1] -> [-2 / 2, -1 / 1 · 2 + 1, -1 / 0.5 · 0.5 - 1] = [-1, -1, -2].
    let x = Tensor::new(&[[2.5f32, 0.0, 3.0], [-1.5, -2.0, 1.0]], &Device::Cpu);
    let known = LayerCase::new(layer(BatchNormalization::new()), &[&[3]])
        .output_shapes(&["(None, 3)"])
        .weights(2, 2, 4 * 3)
        .weight_values(vec![
            vec![1.0, 2.0, 0.5],
            vec![0.0, 1.0, -1.0],
            vec![0.5, -1.0, 2.0],
            vec![3.999, 0.999, 0.249],
        ])
        .forward(
            vec![x.expect("x")],
            vec![vec![1.0, 3.0, 0.0, -1.0, -1.0, -2.0]],
        );
    // Channels on axis 1 of (2, 3): averages [2, 5], deviations [1, 2], gamma 1, beta 0:
    // [[1, 2, 3], [4, 5, 6]] -> [[-1, 0, 1], [-0.5, 0, 0.5]].
    let x = Tensor::new(&[[[1f32, 2.0, 3.0], [4.0, 5.0, 6.0]]], &Device::Cpu);
    let axis_one = LayerCase::new(layer(BatchNormalization::new().axis(1)), &[&[2, 3]])
        .output_shapes(&["(None, 2, 3)"])
        .weights(2, 2, 4 * 2)
        .weight_values(vec![
            vec![1.0, 1.0],
            vec![0.0, 0.0],
            vec![2.0, 5.0],
            vec![0.999, 3.999],
        ])
        .forward(
            vec![x.expect("x")],
            vec![vec![-1.0, 0.0, 1.0, -0.5, 0.0, 0.5]],
        );
    vec![
        known,
        axis_one,
        LayerCase::new(layer(BatchNormalization::new()), &[&[3, 3, 2]])
            .output_shapes(&["(None, 3, 3, 2)"])
            .weights(2, 2, 4 * 2),
        LayerCase::new(
            layer(BatchNormalization::new().center(false).scale(false)),
            &[&[5]],
        )
        .output_shapes(&["(None, 5)"])
        .weights(0, 2, 2 * 5),
        LayerCase::new(
            layer(
                BatchNormalization::new()
                    .axis(-2)
                    .momentum(0.9)
                    .epsilon(0.01),
            ),
            &[&[4, 3]],
        )
        .output_shapes(&["(None, 4, 3)"])
        .weights(2, 2, 4 * 4),
        // Frozen: inference in training calls; every weight is non-trainable.
        LayerCase::new(
            layer(
                BatchNormalization::new()
                    .gamma_regularizer(Regularizer::l2(0.1))
                    .trainable(false),
            ),
            &[&[4]],
        )
        .output_shapes(&["(None, 4)"])
        .weights(0, 4, 4 * 4),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, flat};
    use candle_core::Device;

    /// A built batch normalization on 2 channels.
    fn layer(bn: BatchNormalization) -> Arc<dyn Layer> {
        let layer = bn.layer().unwrap();
        layer.build(&[SymbolicShape::batched(None, &[2])]).unwrap();
        layer
    }

    fn x() -> Tensor {
        // Channel 0: [1, 3, 5, 7], mean 4, biased variance (9 + 1 + 1 + 9) / 4 = 5.
        // Channel 1: [2, 2, 2, 2], mean 2, variance 0.
        Tensor::new(
            &[[1f32, 2.0], [3.0, 2.0], [5.0, 2.0], [7.0, 2.0]],
            &Device::Cpu,
        )
        .unwrap()
    }

    fn averages(layer: &dyn Layer) -> (Vec<f32>, Vec<f32>) {
        let weights = layer.weights();
        (
            flat(weights[2].var.as_tensor()),
            flat(weights[3].var.as_tensor()),
        )
    }

    #[test]
    fn a_training_call_moves_the_averages_once_by_the_momentum_rule() {
        for (what, mut ctx) in [
            ("autograd", CallContext::new(true)),
            ("recording", CallContext::recording()),
        ] {
            let bn = layer(BatchNormalization::new());
            let y = bn.call(&[x()], &mut ctx).unwrap();
            // Batch statistics: channel 0 (x - 4) / sqrt(5 + 0.001), channel 1 all 0.
            let d = (5.001f64).sqrt();
            let want = [-3.0 / d, 0.0, -1.0 / d, 0.0, 1.0 / d, 0.0, 3.0 / d, 0.0];
            assert_close(&format!("{what} y"), &flat(&y[0]), &want, 1e-5);
            // moving = moving · 0.99 + batch · 0.01, from mean 0 and variance 1:
            // mean [0.04, 0.02], variance [0.99 + 0.05, 0.99 + 0] = [1.04, 0.99].
            let (mean, variance) = averages(bn.as_ref());
            assert_close(&format!("{what} mean"), &mean, &[0.04, 0.02], 1e-6);
            assert_close(&format!("{what} variance"), &variance, &[1.04, 0.99], 1e-6);
            // Inference then normalizes with the averages: (x - 0.04) / sqrt(1.04 + 0.001).
            let y = bn.call(&[x()], &mut CallContext::new(false)).unwrap();
            let (d0, d1) = (1.041f64.sqrt(), 0.991f64.sqrt());
            let want: Vec<f64> = [1.0, 3.0, 5.0, 7.0]
                .iter()
                .flat_map(|&v| [(v - 0.04) / d0, (2.0 - 0.02) / d1])
                .collect();
            assert_close(&format!("{what} inference"), &flat(&y[0]), &want, 1e-5);
            assert_eq!(
                averages(bn.as_ref()).0,
                mean,
                "{what}: inference moved the averages"
            );
        }
    }

    #[test]
    fn the_composed_form_moves_the_averages_alike() {
        let bn = layer(BatchNormalization::new().momentum(0.5));
        rkeras_ops::with_composed_ops(|| bn.call(&[x()], &mut CallContext::recording())).unwrap();
        // mean 0 · 0.5 + [4, 2] · 0.5, variance 1 · 0.5 + [5, 0] · 0.5.
        let (mean, variance) = averages(bn.as_ref());
        assert_close("mean", &mean, &[2.0, 1.0], 1e-6);
        assert_close("variance", &variance, &[3.0, 0.5], 1e-6);
    }

    #[test]
    fn the_context_decides_between_batch_statistics_and_averages() {
        // A model passes its context to its layers as it is: a nested model's layer sees the
        // outer call's training flag through it.
        let bn = layer(BatchNormalization::new().momentum(0.0));
        // Momentum 0: the averages become the last batch's statistics.
        bn.call(&[x()], &mut CallContext::recording()).unwrap();
        assert_eq!(averages(bn.as_ref()), (vec![4.0, 2.0], vec![5.0, 0.0]));
        let other = (x() * 2.0).unwrap();
        let inference = bn
            .call(std::slice::from_ref(&other), &mut CallContext::new(false))
            .unwrap();
        let training = bn.call(&[other], &mut CallContext::new(true)).unwrap();
        // Inference: ([2, 6, 10, 14] - 4) / sqrt(5.001); training: ([2, ..] - 8) / sqrt(20.001).
        assert_close(
            "inference",
            &flat(&inference[0])[..1],
            &[-2.0 / 5.001f64.sqrt()],
            1e-5,
        );
        assert_close(
            "training",
            &flat(&training[0])[..1],
            &[-6.0 / 20.001f64.sqrt()],
            1e-5,
        );
        assert_eq!(averages(bn.as_ref()), (vec![8.0, 4.0], vec![20.0, 0.0]));
    }

    #[test]
    fn a_frozen_layer_runs_in_inference_even_in_training() {
        let bn = layer(BatchNormalization::new());
        bn.set_trainable(false);
        assert!(bn.weights().iter().all(|w| !w.trainable));
        let y = bn.call(&[x()], &mut CallContext::recording()).unwrap();
        // Averages 0 and 1: y = x / sqrt(1.001), and they stay as they were.
        let want: Vec<f64> = flat(&x())
            .iter()
            .map(|&v| v as f64 / 1.001f64.sqrt())
            .collect();
        assert_close("frozen", &flat(&y[0]), &want, 1e-5);
        assert_eq!(averages(bn.as_ref()), (vec![0.0, 0.0], vec![1.0, 1.0]));
    }

    #[test]
    fn weights_are_listed_in_keras_order_with_the_averages_non_trainable() {
        let bn = BatchNormalization::new().name("bn").layer().unwrap();
        bn.build(&[SymbolicShape::batched(None, &[28, 28, 64])])
            .unwrap();
        let weights = bn.weights();
        let listed: Vec<(&str, bool, usize)> = weights
            .iter()
            .map(|w| (w.path.as_str(), w.trainable, w.count()))
            .collect();
        assert_eq!(
            listed,
            [
                ("gamma", true, 64),
                ("beta", true, 64),
                ("moving_mean", false, 64),
                ("moving_variance", false, 64)
            ]
        );
        assert!(bn.mixes_samples());
        // 256 parameters: 128 trainable, 128 not.
        assert_eq!(weights.iter().map(Weight::count).sum::<usize>(), 256);
    }

    #[test]
    fn bad_options_and_shapes_are_errors_naming_the_layer() {
        let err = |bn: BatchNormalization| bn.name("bn").layer().err().unwrap().to_string();
        assert!(err(BatchNormalization::new().momentum(1.5)).contains("momentum"));
        assert!(err(BatchNormalization::new().epsilon(-1.0)).contains("epsilon"));
        let bn = BatchNormalization::new().name("bn").layer().unwrap();
        let build = |dims: &[usize]| bn.build(&[SymbolicShape::batched(None, dims)]);
        assert!(build(&[]).unwrap_err().to_string().contains("out of range"));
        assert!(build(&[0]).is_err());
        build(&[3]).unwrap();
        assert!(build(&[4]).unwrap_err().to_string().contains("(None, 3)"));
        let wrong = Tensor::zeros((2, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let message = bn
            .call(&[wrong], &mut CallContext::new(false))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("'bn'") && message.contains("[2, 4]"),
            "{message}"
        );
        let axis_zero = BatchNormalization::new()
            .axis(0)
            .name("b0")
            .layer()
            .unwrap();
        assert!(axis_zero
            .build(&[SymbolicShape::batched(None, &[3])])
            .is_err());
    }
}
