//! What the windowed pooling layers share (`keras/src/layers/pooling/base_pooling.py`): options
//! that are a [`PoolWindow`], the builder methods that set it, and the one layer type that every
//! such builder makes, 1-D or 2-D, which pools its input seen as an image (a sequence is one
//! column wide) on `rkeras_ops`'s kernels, with their hand-written backward on the CPU.

use std::sync::Arc;

use candle_core::{Device, Tensor};

use super::pool_mode::PoolMode;
use super::pool_window::PoolWindow;
use super::window_size::WindowSize;
use crate::builder::{LayerBuilder, LayerConfig};
use crate::convolutional::options::PaddingArg;
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Layer, LayerBase, Result, SymbolicShape};

/// A windowed pooling (`MaxPooling1D`, `AveragePooling2D`...): its options type, which holds a
/// [`PoolWindow`], and what it computes over each window.
pub trait Pooling: LayerConfig + serde::Serialize {
    /// The window size: [`Size1`](super::window_size::Size1) or
    /// [`Size2`](crate::Size2), which also says the input's spatial axes.
    type Size: WindowSize;

    /// Maximum or mean.
    const MODE: PoolMode;

    /// The window.
    fn window(&self) -> &PoolWindow<Self::Size>;

    /// The window, to change.
    fn window_mut(&mut self) -> &mut PoolWindow<Self::Size>;
}

impl<C: Pooling> LayerBuilder<C> {
    /// The steps between windows.
    pub fn strides(self, strides: impl Into<C::Size>) -> Self {
        let strides = strides.into();
        self.with(|c| c.window_mut().strides = Some(strides))
    }

    /// `"valid"` or `"same"`.
    pub fn padding(self, padding: impl Into<PaddingArg>) -> Self {
        let arg = padding.into();
        self.with_checked(|c| {
            c.window_mut().padding = arg.0?;
            Ok(())
        })
    }
}

/// The layer every windowed pooling builder makes, for the pooling `C`.
pub struct PoolingLayer<C> {
    base: LayerBase,
    config: C,
}

impl<C: Pooling> PoolingLayer<C> {
    /// The layer, named `name`, once its window is checked (what `LayerConfig::make` of a
    /// pooling returns).
    pub fn made(config: &C, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        config.window().check(&name)?;
        Ok(Arc::new(PoolingLayer {
            base: LayerBase::new(name, trainable),
            config: config.clone(),
        }))
    }
}

impl<C: Pooling> Layer for PoolingLayer<C> {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        C::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        Ok(vec![self
            .config
            .window()
            .output_shape(self.name(), shape)?])
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        let placement = self.config.window().placement(self.name(), x.dims())?;
        let spatial = C::Size::SPATIAL;
        let pooled = C::MODE.pool(&spatial.image(self.name(), x)?, placement)?;
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
        let placement = self.config.window().placement(self.name(), x.dims())?;
        let spatial = C::Size::SPATIAL;
        let image = |t: &Tensor| spatial.image(self.name(), t);
        let dx = C::MODE.unpool(&image(x)?, &image(y)?, &image(dy)?, placement)?;
        Ok(vec![Some(spatial.from_image(dx)?)])
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }
}
