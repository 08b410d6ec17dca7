//! What the global pooling layers share (`keras/src/layers/pooling/base_global_pooling.py`):
//! one window over the whole image of a channels-last input, `(batch, channels)` out, or
//! `(batch, 1, 1, channels)` with `keepdims`; and one layer type that runs either of them on
//! `rkeras_ops`'s pooling kernels.

use std::sync::Arc;

use candle_core::{Device, Tensor};

use crate::builder::{LayerBuilder, LayerConfig};
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// A global pooling (`GlobalAveragePooling2D`...): its options type, which also says how one
/// window over a whole image is pooled and differentiated.
pub trait GlobalPooling: LayerConfig + serde::Serialize {
    /// Whether the output keeps the spatial axes (as size 1).
    fn keepdims(&self) -> bool;

    /// Sets [`GlobalPooling::keepdims`].
    fn set_keepdims(&mut self, keepdims: bool);

    /// `x` (batch, height, width, channels) pooled over its whole `image` (height, width), to
    /// (batch, 1, 1, channels).
    fn pool(x: &Tensor, image: (usize, usize)) -> candle_core::Result<Tensor>;

    /// The gradient of `x` given the pooled `y` (batch, 1, 1, channels) and its gradient.
    fn unpool(
        x: &Tensor,
        y: &Tensor,
        dy: &Tensor,
        image: (usize, usize),
    ) -> candle_core::Result<Tensor>;
}

impl<C: GlobalPooling> LayerBuilder<C> {
    /// Whether to keep the spatial axes, as size 1: `(None, 1, 1, channels)`.
    pub fn keepdims(self, keepdims: bool) -> Self {
        self.with(|c| c.set_keepdims(keepdims))
    }
}

/// The layer every global pooling builder makes, for the pooling `C`.
pub struct GlobalPoolingLayer<C> {
    base: LayerBase,
    config: C,
}

impl<C: GlobalPooling> GlobalPoolingLayer<C> {
    /// The layer, named `name` (what `LayerConfig::make` of a global pooling returns).
    pub fn made(config: &C, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        Ok(Arc::new(GlobalPoolingLayer {
            base: LayerBase::new(name, trainable),
            config: config.clone(),
        }))
    }

    /// The (batch, height, width, channels) of `x`, or why it is not an image.
    fn image(&self, x: &Tensor) -> Result<(usize, usize, usize, usize)> {
        match *x.dims() {
            [b, h, w, c] if h > 0 && w > 0 => Ok((b, h, w, c)),
            _ => Err(Error::shape(
                self.name(),
                "(batch, height, width, channels), of at least one pixel",
                format!("{:?}", x.dims()),
            )),
        }
    }

    /// `t` (batch, 1, 1, channels) as the layer outputs it.
    fn squeezed(&self, t: Tensor) -> Result<Tensor> {
        match self.config.keepdims() {
            true => Ok(t),
            false => Ok(t.flatten_from(1)?),
        }
    }
}

impl<C: GlobalPooling> Layer for GlobalPoolingLayer<C> {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        C::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        let shape = single_input(self.name(), inputs)?;
        let &[batch, _, _, c] = shape.dims() else {
            return Err(Error::shape(
                self.name(),
                "(None, height, width, channels)",
                shape,
            ));
        };
        Ok(vec![SymbolicShape(match self.config.keepdims() {
            true => vec![batch, Some(1), Some(1), c],
            false => vec![batch, c],
        })])
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        let (_, h, w, _) = self.image(x)?;
        Ok(vec![self.squeezed(C::pool(x, (h, w))?)?])
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
        let (b, h, w, c) = self.image(x)?;
        let (y, dy) = (y.reshape((b, 1, 1, c))?, dy.reshape((b, 1, 1, c))?);
        Ok(vec![Some(C::unpool(x, &y, &dy, (h, w))?)])
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }
}
