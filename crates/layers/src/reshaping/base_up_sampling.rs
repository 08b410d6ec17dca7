//! The one layer type the up-sampling builders make (`UpSampling1D`, `UpSampling2D`:
//! `keras/src/layers/reshaping/up_sampling1d.py`, `up_sampling2d.py`): each cell of the image
//! the input is seen as repeated into a block (a sequence is one column wide, so each step is
//! repeated), by `rkeras_ops::upsample_nearest2d`, whose CPU kernel has a hand-written backward
//! (the sum of each block).

use std::sync::Arc;

use candle_core::{Device, Tensor};

use super::spatial::Spatial;
use crate::builder::LayerConfig;
use crate::convolutional::options::Size2;
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::limits::check_shape;
use crate::merging::base_merge::known_shape;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Layer, LayerBase, Result, SymbolicShape};

/// The options of an up-sampling layer: the input's axes and the repeat factors.
pub trait UpSampling: LayerConfig + serde::Serialize {
    /// The input's spatial axes.
    const SPATIAL: Spatial;

    /// The repeat factors along the (height, width) of the image the input is seen as.
    fn factors(&self) -> Size2;

    /// Fails unless the factors are positive and not huge, naming `layer`.
    fn check(&self, layer: &str) -> Result<()>;
}

/// The layer every up-sampling builder makes, for the options `C`.
pub struct UpSamplingLayer<C> {
    base: LayerBase,
    config: C,
}

impl<C: UpSampling> UpSamplingLayer<C> {
    /// The layer, named `name`, once its factors are checked (what `LayerConfig::make` of an
    /// up-sampling returns).
    pub fn made(config: &C, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        config.check(&name)?;
        Ok(Arc::new(UpSamplingLayer {
            base: LayerBase::new(name, trainable),
            config: config.clone(),
        }))
    }

    /// The output shape for an input of `shape`, which must be channels-last over `C`'s axes.
    fn output_shape(&self, shape: &SymbolicShape) -> Result<SymbolicShape> {
        let [batch, h, w, c] = C::SPATIAL.image_shape(self.name(), shape)?;
        let Size2(fh, fw) = self.config.factors();
        let (h, w) = (
            h.map(|h| h.saturating_mul(fh)),
            w.map(|w| w.saturating_mul(fw)),
        );
        Ok(C::SPATIAL.from_image_shape([batch, h, w, c]))
    }
}

impl<C: UpSampling> Layer for UpSamplingLayer<C> {
    layer_base_methods!();

    fn class_name(&self) -> &'static str {
        C::CLASS_NAME
    }

    fn build(&self, inputs: &[SymbolicShape]) -> Result<Vec<SymbolicShape>> {
        Ok(vec![self.output_shape(single_input(self.name(), inputs)?)?])
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext) -> Result<Vec<Tensor>> {
        let x = single_input(self.name(), inputs)?;
        check_shape(self.name(), &self.output_shape(&known_shape(x))?)?;
        let image = C::SPATIAL.image(self.name(), x)?;
        let y = rkeras_ops::upsample_nearest2d(&image, self.config.factors().pair())?;
        Ok(vec![C::SPATIAL.from_image(y)?])
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
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
        let (_, _, dy) = record.single(self.name(), grad_outputs)?;
        if !needs_input_grad.first().copied().unwrap_or(false) {
            return Ok(vec![None]);
        }
        let dy = C::SPATIAL.image(self.name(), dy)?;
        let dx = rkeras_ops::upsample_nearest2d_backward(&dy, self.config.factors().pair())?;
        Ok(vec![Some(C::SPATIAL.from_image(dx)?)])
    }
}
