//! What the windowed pooling layers share (`keras/src/layers/pooling/base_pooling.py`): their
//! options, a [`PoolWindow`], with the builder that sets it, and the one layer type that every
//! such builder makes, 1-D or 2-D, which pools its input seen as an image (a sequence is one
//! column wide) on `rkeras_ops`'s kernels, with their hand-written backward on the CPU. What
//! differs from one layer to the next is its [`PoolingKind`].

use std::fmt::Debug;
use std::marker::PhantomData;
use std::sync::Arc;

use candle_core::{Device, Tensor};
use rkeras_ops::MaxPoolWindow;
use serde::{Deserialize, Serialize};

use super::pool_mode::PoolMode;
use super::pool_window::PoolWindow;
use super::window_size::WindowSize;
use crate::builder::{LayerBuilder, LayerConfig};
use crate::convolutional::options::PaddingArg;
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Layer, LayerBase, Result, SymbolicShape};

/// What makes one windowed pooling layer (`MaxPooling1D`, `AveragePooling2D`...) itself: its
/// Keras names, its window size and what it computes over each window.
pub trait PoolingKind: Debug + Clone + PartialEq + Send + Sync + 'static {
    /// The Keras class name.
    const CLASS_NAME: &'static str;

    /// The prefix of default names, Keras's snake-cased class name.
    const NAME_PREFIX: &'static str;

    /// The window size: [`Size1`](super::window_size::Size1) or
    /// [`Size2`](crate::Size2), which also says the input's spatial axes.
    type Size: WindowSize;

    /// Maximum or mean.
    const MODE: PoolMode;
}

/// A windowed pooling's options, with Keras's defaults: its window, saved as Keras saves it
/// (`pool_size`, `strides`, `padding`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent, bound = "")]
pub struct PoolingConfig<K: PoolingKind> {
    /// The window (default 2 along each axis, strides equal to it, valid padding).
    pub window: PoolWindow<K::Size>,
    #[serde(skip)]
    kind: PhantomData<K>,
}

impl<K: PoolingKind> LayerConfig for PoolingConfig<K> {
    const CLASS_NAME: &'static str = K::CLASS_NAME;
    const NAME_PREFIX: &'static str = K::NAME_PREFIX;

    fn make(&self, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        self.window.check(&name)?;
        Ok(Arc::new(PoolingLayer {
            base: LayerBase::new(name, trainable),
            config: self.clone(),
        }))
    }
}

impl<K: PoolingKind> LayerBuilder<PoolingConfig<K>> {
    /// Pooling over windows of `pool_size` (`2`, or `(2, 3)` for an image), strides equal to
    /// the window, valid padding.
    pub fn new(pool_size: impl Into<K::Size>) -> Self {
        LayerBuilder::from_config(PoolingConfig {
            window: PoolWindow::new(pool_size.into()),
            kind: PhantomData,
        })
    }

    /// The steps between windows.
    pub fn strides(self, strides: impl Into<K::Size>) -> Self {
        let strides = strides.into();
        self.with(|c| c.window.strides = Some(strides))
    }

    /// `"valid"` or `"same"`.
    pub fn padding(self, padding: impl Into<PaddingArg>) -> Self {
        let arg = padding.into();
        self.with_checked(|c| {
            c.window.padding = arg.0?;
            Ok(())
        })
    }
}

impl<K: PoolingKind> Default for LayerBuilder<PoolingConfig<K>> {
    /// Keras's defaults: windows of 2 along each axis.
    fn default() -> Self {
        Self::new(2)
    }
}

/// The layer every windowed pooling builder makes, for the pooling `K`.
pub struct PoolingLayer<K: PoolingKind> {
    base: LayerBase,
    config: PoolingConfig<K>,
}

impl<K: PoolingKind> PoolingLayer<K> {
    /// The windows over an image of shape `dims`, as a convolution pooled in one pass takes
    /// them (`rkeras_ops::conv2d_max_pool`), or an error naming the layer when the image is
    /// smaller than a window.
    pub(crate) fn window_over(&self, dims: &[usize]) -> Result<MaxPoolWindow> {
        let (pool, strides, padding) = self.config.window.placement(self.name(), dims)?;
        Ok(MaxPoolWindow {
            pool,
            strides,
            padding,
        })
    }
}

impl<K: PoolingKind> Layer for PoolingLayer<K> {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        K::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        Ok(vec![self.config.window.output_shape(self.name(), shape)?])
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        let placement = self.config.window.placement(self.name(), x.dims())?;
        let spatial = K::Size::SPATIAL;
        let pooled = K::MODE.pool(&spatial.image(self.name(), x)?, placement)?;
        Ok(vec![spatial.from_image(pooled)?])
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
        let placement = self.config.window.placement(self.name(), x.dims())?;
        let spatial = K::Size::SPATIAL;
        let image = |t: &Tensor| spatial.image(self.name(), t);
        let dx = K::MODE.unpool(&image(x)?, &image(y)?, &image(dy)?, placement)?;
        Ok(vec![Some(spatial.from_image(dx)?)])
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }
}
