//! What the global pooling layers share (`keras/src/layers/pooling/base_global_pooling.py`):
//! one window over all the steps (or the whole image) of a channels-last input,
//! `(batch, channels)` out, or with `keepdims` `(batch, 1, channels)` (`(batch, 1, 1, channels)`);
//! and the one layer type every global pooling builder makes, which pools the input seen as an
//! image (a sequence is one column wide) on `rkeras_ops`'s kernels, with their hand-written
//! backward on the CPU.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::sync::Arc;

use candle_core::{Device, Tensor};
use rkeras_ops::Padding2d;
use serde::{Deserialize, Serialize};

use super::pool_mode::PoolMode;
use super::pool_window::Placement;
use crate::builder::{LayerBuilder, LayerConfig};
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::reshaping::spatial::Spatial;
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// What makes one global pooling layer (`GlobalAveragePooling1D`, `GlobalMaxPooling2D`...)
/// itself: its Keras names, the input's axes and what it computes over them.
pub trait GlobalPoolingKind: Debug + Clone + PartialEq + Send + Sync + 'static {
    /// The Keras class name.
    const CLASS_NAME: &'static str;

    /// The prefix of default names, Keras's snake-cased class name.
    const NAME_PREFIX: &'static str;

    /// The input's spatial axes.
    const SPATIAL: Spatial;

    /// Maximum or mean.
    const MODE: PoolMode;
}

/// A global pooling's options, with Keras's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct GlobalPoolingConfig<K: GlobalPoolingKind> {
    /// Whether the output keeps the spatial axes as size 1 (default false).
    pub keepdims: bool,
    #[serde(skip)]
    kind: PhantomData<K>,
}

impl<K: GlobalPoolingKind> LayerConfig for GlobalPoolingConfig<K> {
    const CLASS_NAME: &'static str = K::CLASS_NAME;
    const NAME_PREFIX: &'static str = K::NAME_PREFIX;

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        Ok(Arc::new(GlobalPoolingLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
        }))
    }
}

impl<K: GlobalPoolingKind> LayerBuilder<GlobalPoolingConfig<K>> {
    /// Pooling over all the steps (or the whole image), the spatial axes dropped.
    pub fn new() -> Self {
        LayerBuilder::from_config(GlobalPoolingConfig {
            keepdims: false,
            kind: PhantomData,
        })
    }

    /// Whether to keep the spatial axes, as size 1: `(None, 1, channels)` for a sequence,
    /// `(None, 1, 1, channels)` for an image.
    pub fn keepdims(self, keepdims: bool) -> Self {
        self.with(|c| c.keepdims = keepdims)
    }
}

impl<K: GlobalPoolingKind> Default for LayerBuilder<GlobalPoolingConfig<K>> {
    fn default() -> Self {
        Self::new()
    }
}

/// The layer every global pooling builder makes, for the pooling `K`.
pub struct GlobalPoolingLayer<K: GlobalPoolingKind> {
    base: LayerBase,
    config: GlobalPoolingConfig<K>,
}

impl<K: GlobalPoolingKind> GlobalPoolingLayer<K> {
    /// The (batch, height, width, channels) of the image `x` is seen as, and the one window
    /// over all of it; or why `x` is not such an input, of at least one cell.
    fn placement(&self, x: &Tensor) -> Result<([usize; 4], Placement)> {
        let dims = K::SPATIAL.image_dims(self.name(), x.dims())?;
        let [_, h, w, _] = dims;
        if h == 0 || w == 0 {
            return Err(Error::shape(
                self.name(),
                format!("{}, not empty", K::SPATIAL.expected_concrete()),
                format!("{:?}", x.dims()),
            ));
        }
        Ok((dims, ((h, w), (h, w), Padding2d::VALID)))
    }

    /// `pooled` (batch, 1, 1, channels) as the layer outputs it.
    fn output(&self, pooled: Tensor) -> Result<Tensor> {
        match self.config.keepdims {
            true => K::SPATIAL.from_image(pooled),
            false => Ok(pooled.flatten_from(1)?),
        }
    }
}

impl<K: GlobalPoolingKind> Layer for GlobalPoolingLayer<K> {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        K::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        let [batch, _, _, c] = K::SPATIAL.image_shape(self.name(), shape)?;
        Ok(vec![match self.config.keepdims {
            true => K::SPATIAL.from_image_shape([batch, Some(1), Some(1), c]),
            false => SymbolicShape(vec![batch, c]),
        }])
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        let (_, placement) = self.placement(x)?;
        let image = K::SPATIAL.image(self.name(), x)?;
        Ok(vec![self.output(K::MODE.pool(&image, placement)?)?])
    }

    fn has_backward(&self, device: &Device) -> bool {
        rkeras_ops::kernels_on(device)
    }

    fn backward(
        &self,
        record: CallRecord,
        grad_outputs: &[Tensor],
        needs_input_grad: &[bool],
        _weight_grads: &mut WeightGrads,
    ) -> Result<Vec<Option<Tensor>>> {
        let (x, y, dy) = record.single(self.name(), grad_outputs)?;
        if !needs_input_grad.first().copied().unwrap_or(false) {
            return Ok(vec![None]);
        }
        let ([b, _, _, c], placement) = self.placement(x)?;
        let (y, dy) = (y.reshape((b, 1, 1, c))?, dy.reshape((b, 1, 1, c))?);
        let image = K::SPATIAL.image(self.name(), x)?;
        let dx = K::MODE.unpool(&image, &y, &dy, placement)?;
        Ok(vec![Some(K::SPATIAL.from_image(dx)?)])
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }
}
