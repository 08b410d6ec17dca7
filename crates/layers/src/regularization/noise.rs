//! The layer behind the regularization layers: in training, the input times a mask or plus
//! noise that its options draw (through `crate::random`, so from the stream training gives the
//! step); in inference, the input itself. The backward pass multiplies by the same mask or
//! scale (kept by the call), or passes the gradient through for added noise: candle ops on every
//! device, and on the CPU plain products and sums outside candle's thread pool
//! (`rkeras_ops::multiply`, `rkeras_ops::add`).

use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::builder::LayerConfig;
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// The noise one training call applies.
pub enum Noise {
    /// `x · mask`, the mask broadcast over `x`.
    Multiply(Tensor),
    /// `x + noise`.
    Add(Tensor),
    /// `x · scale + shift`, both broadcast over `x` (alpha dropout's).
    Affine {
        /// The factor, whose gradient the backward pass multiplies by.
        scale: Tensor,
        /// The offset.
        shift: Tensor,
    },
}

/// Options that draw noise for a training call.
pub trait NoiseOptions: LayerConfig + Serialize {
    /// Checks the input shape, for layers that need a rank (`layer` names the layer).
    fn check_input(&self, layer: &str, shape: &SymbolicShape) -> Result<()> {
        let _ = (layer, shape);
        Ok(())
    }

    /// The noise for a training call on `x`; `None` where it would change nothing (a rate of
    /// 0).
    fn draw(&self, layer: &str, x: &Tensor) -> Result<Option<Noise>>;
}

/// The layer the options `C` make.
pub struct NoiseLayer<C> {
    base: LayerBase,
    config: C,
}

impl<C: NoiseOptions> NoiseLayer<C> {
    /// The layer for checked options.
    pub(crate) fn new(name: String, trainable: bool, config: C) -> Self {
        NoiseLayer {
            base: LayerBase::new(name, trainable),
            config,
        }
    }

    /// The options.
    pub fn options(&self) -> &C {
        &self.config
    }
}

impl<C: NoiseOptions> Layer for NoiseLayer<C> {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        C::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        self.config.check_input(self.name(), shape)?;
        Ok(vec![shape.clone()])
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        if !ctx.training() {
            return Ok(vec![x.clone()]);
        }
        Ok(vec![match self.config.draw(self.name(), x)? {
            None => x.clone(),
            Some(Noise::Multiply(mask)) => {
                let mask = mask.to_dtype(x.dtype())?;
                let y = rkeras_ops::multiply(x, &mask)?;
                ctx.save(mask);
                y
            }
            Some(Noise::Add(noise)) => rkeras_ops::add(x, &noise.to_dtype(x.dtype())?)?,
            Some(Noise::Affine { scale, shift }) => {
                let scale = scale.to_dtype(x.dtype())?;
                let scaled = rkeras_ops::multiply(x, &scale)?;
                let y = rkeras_ops::add(&scaled, &shift.to_dtype(x.dtype())?)?;
                ctx.save(scale);
                y
            }
        }])
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }

    /// A product with the kept mask, on every device.
    fn has_backward(&self, _device: &Device) -> bool {
        true
    }

    fn backward(
        &self,
        record: CallRecord,
        grad_outputs: &[Tensor],
        needs_input_grad: &[bool],
        _weight_grads: &mut WeightGrads,
    ) -> Result<Vec<Option<Tensor>>> {
        let (_, _, dy) = record.single(self.name(), grad_outputs)?;
        if !needs_input_grad.first().copied().unwrap_or(false) {
            return Ok(vec![None]);
        }
        // Added noise (or none) passes the gradient through; a mask or scale multiplies it.
        Ok(vec![Some(match record.state.as_ref() {
            None => dy.clone(),
            Some(_) => rkeras_ops::multiply(dy, record.saved::<Tensor>(self.name())?)?,
        })])
    }
}

/// Fails unless `value`, the option `option` of layer `layer`, lies in `[0, 1]` (`[0, 1)` when
/// `one_allowed` is false).
pub(crate) fn unit_interval(
    layer: &str,
    option: &str,
    value: f64,
    one_allowed: bool,
) -> Result<()> {
    let fits = value >= 0.0 && (value < 1.0 || (one_allowed && value == 1.0));
    if fits {
        return Ok(());
    }
    let range = if one_allowed { "[0, 1]" } else { "[0, 1)" };
    Err(Error::config(
        layer,
        format!("{option} must lie in {range}, got {value}"),
    ))
}

/// Fails unless every given dimension of `noise_shape` (an option of `layer`) is positive.
pub(crate) fn positive_noise_shape(
    layer: &str,
    noise_shape: Option<&[Option<usize>]>,
) -> Result<()> {
    if noise_shape.into_iter().flatten().any(|&d| d == Some(0)) {
        return Err(Error::config(
            layer,
            "noise_shape dimensions must be positive",
        ));
    }
    Ok(())
}

/// Whether `noise_shape` (each dimension the input's, 1, or `None` for the input's) broadcasts
/// over `dims`.
fn broadcasts(noise_shape: &[Option<usize>], dims: &[Option<usize>]) -> bool {
    noise_shape.len() == dims.len()
        && noise_shape.iter().zip(dims).all(|(n, d)| match (n, d) {
            (Some(n), Some(d)) => n == d || *n == 1,
            _ => true,
        })
}

/// The error of a `noise_shape` of `layer` that does not broadcast over an input of `shape`.
fn noise_shape_error(
    layer: &str,
    noise_shape: &[Option<usize>],
    shape: impl std::fmt::Display,
) -> Error {
    Error::shape(
        layer,
        format!("an input over which noise_shape {noise_shape:?} broadcasts"),
        shape,
    )
}

/// Checks that `noise_shape`, an option of `layer`, broadcasts over inputs of `shape`.
pub(crate) fn check_noise_shape(
    layer: &str,
    noise_shape: Option<&[Option<usize>]>,
    shape: &SymbolicShape,
) -> Result<()> {
    match noise_shape {
        Some(noise_shape) if !broadcasts(noise_shape, shape.dims()) => {
            Err(noise_shape_error(layer, noise_shape, shape))
        }
        _ => Ok(()),
    }
}

/// `noise_shape` with each `None` replaced by the input's dimension, once checked to broadcast
/// over the input (Keras's `_get_concrete_noise_shape`); the input's dims without one.
pub(crate) fn concrete_noise_shape(
    layer: &str,
    noise_shape: Option<&[Option<usize>]>,
    dims: &[usize],
) -> Result<Vec<usize>> {
    let Some(noise_shape) = noise_shape else {
        return Ok(dims.to_vec());
    };
    let known: Vec<Option<usize>> = dims.iter().copied().map(Some).collect();
    if !broadcasts(noise_shape, &known) {
        return Err(noise_shape_error(layer, noise_shape, format!("{dims:?}")));
    }
    Ok(noise_shape
        .iter()
        .zip(dims)
        .map(|(n, &d)| n.unwrap_or(d))
        .collect())
}

/// Dropout's noise over `shape` ([`dropout_mask`]), or none for a rate of 0.
pub(crate) fn dropout_noise(shape: &[usize], rate: f64, device: &Device) -> Result<Option<Noise>> {
    if rate == 0.0 {
        return Ok(None);
    }
    Ok(Some(Noise::Multiply(dropout_mask(shape, rate, device)?)))
}

/// Dropout's mask over `shape`: `1 / (1 - rate)` where a uniform draw is at least `rate`, else
/// 0 (TensorFlow's test, `keras/src/backend/tensorflow/random.py`); all 0 for a rate of 1.
fn dropout_mask(shape: &[usize], rate: f64, device: &Device) -> Result<Tensor> {
    let scale = if rate < 1.0 {
        (1.0 / (1.0 - rate)) as f32
    } else {
        0.0
    };
    let rate = rate as f32;
    let count = shape.iter().product();
    let mask = crate::random::uniform_map(count, |u| if u >= rate { scale } else { 0.0 });
    Ok(Tensor::from_vec(mask, shape, device)?)
}

/// The `seed` builder method of a regularization layer whose options have `seed: Option<u64>`.
macro_rules! seed_option {
    () => {
        /// Keras's per-layer seed, kept in the config: the draws come from the stream training
        /// gives each step, which `set_random_seed` fixes.
        pub fn seed(self, seed: u64) -> Self {
            self.with(|c| c.seed = Some(seed))
        }
    };
}
pub(crate) use seed_option;
