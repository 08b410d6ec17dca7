//! The one layer type the zero-padding and cropping builders make (`ZeroPadding1D`,
//! `ZeroPadding2D`, `Cropping1D`, `Cropping2D`: `keras/src/layers/reshaping/zero_padding1d.py`,
//! `zero_padding2d.py`, `cropping1d.py`, `cropping2d.py`): borders added to or cut from the image
//! the input is seen as (a sequence is one column wide, so only its start and end change). Each
//! is the other's backward pass, on every device.

use std::sync::Arc;

use candle_core::{Device, Tensor};

use super::sides::{Sides2, SpatialSides};
use crate::builder::LayerConfig;
use crate::layer::{config_with_name, single_input};
use crate::layer_base_methods;
use crate::limits::check_shape;
use crate::merging::base_merge::known_shape;
use crate::record::{CallRecord, WeightGrads};
use crate::{CallContext, Error, Layer, LayerBase, Result, SymbolicShape};

/// Whether a layer adds borders of zeros or cuts borders off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BorderMode {
    /// Zero padding (the option is named `padding`).
    Pad,
    /// Cropping (the option is named `cropping`).
    Crop,
}

/// The options of a layer that pads or crops: the amounts on each side, and which it does.
pub trait Borders: LayerConfig + serde::Serialize {
    /// [`Sides1`](super::sides::Sides1) or [`Sides2`], which also says the input's axes.
    type Sides: SpatialSides;

    /// Padding or cropping.
    const MODE: BorderMode;

    /// The amounts on each side.
    fn sides(&self) -> Self::Sides;
}

/// `image` (NHWC) with `sides` of zeros around it.
fn pad(image: &Tensor, Sides2((top, bottom), (left, right)): Sides2) -> Result<Tensor> {
    Ok(image
        .pad_with_zeros(1, top, bottom)?
        .pad_with_zeros(2, left, right)?)
}

/// `image` (NHWC) without `sides` around it, leaving `h` by `w`.
fn crop(
    image: &Tensor,
    Sides2((top, _), (left, _)): Sides2,
    (h, w): (usize, usize),
) -> Result<Tensor> {
    Ok(image.narrow(1, top, h)?.narrow(2, left, w)?.contiguous()?)
}

/// The layer every zero-padding and cropping builder makes, for the options `C`.
pub struct BordersLayer<C> {
    base: LayerBase,
    config: C,
}

impl<C: Borders> BordersLayer<C> {
    /// The layer, named `name`, once its amounts are checked (what `LayerConfig::make` of a
    /// zero padding or cropping returns).
    pub fn made(config: &C, name: String, trainable: bool) -> Result<Arc<dyn Layer>> {
        let option = match C::MODE {
            BorderMode::Pad => "padding",
            BorderMode::Crop => "cropping",
        };
        config.sides().check(&name, option)?;
        Ok(Arc::new(BordersLayer {
            base: LayerBase::new(name, trainable),
            config: config.clone(),
        }))
    }

    fn sides(&self) -> Sides2 {
        self.config.sides().on_image()
    }

    /// The output shape for an input of `shape`, which must be channels-last over `C`'s axes
    /// and, to crop, longer than what is cut along each axis (Keras's rule).
    fn output_shape(&self, shape: &SymbolicShape) -> Result<SymbolicShape> {
        let spatial = C::Sides::SPATIAL;
        let (dh, dw) = self.sides().totals();
        let refused = || {
            let wanted = spatial.counted((dh, dw));
            let expected = format!("{} with more than {wanted}", spatial.expected());
            Error::shape(self.name(), expected, shape)
        };
        let image = spatial.image_shape(self.name(), shape);
        let [batch, h, w, c] = match C::MODE {
            BorderMode::Pad => image?,
            BorderMode::Crop => image.map_err(|_| refused())?,
        };
        let resized = |len: Option<usize>, by: usize| match (len, C::MODE) {
            (None, _) => Some(None),
            (Some(len), BorderMode::Pad) => Some(Some(len.saturating_add(by))),
            (Some(len), BorderMode::Crop) => len.checked_sub(by).filter(|&n| n > 0).map(Some),
        };
        let (Some(h), Some(w)) = (resized(h, dh), resized(w, dw)) else {
            return Err(refused());
        };
        Ok(spatial.from_image_shape([batch, h, w, c]))
    }
}

impl<C: Borders> Layer for BordersLayer<C> {
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
        let spatial = C::Sides::SPATIAL;
        let image = spatial.image(self.name(), x)?;
        let sides = self.sides();
        let y = match C::MODE {
            BorderMode::Pad => pad(&image, sides)?,
            BorderMode::Crop => {
                let [_, h, w, _] = spatial.image_dims(self.name(), x.dims())?;
                let (dh, dw) = sides.totals();
                crop(&image, sides, (h - dh, w - dw))?
            }
        };
        Ok(vec![spatial.from_image(y)?])
    }

    fn config(&self) -> serde_json::Value {
        config_with_name(&self.config, &self.base)
    }

    /// Padding's gradient is cropped, cropping's padded, on every device.
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
        let (x, _, dy) = record.single(self.name(), grad_outputs)?;
        if !needs_input_grad.first().copied().unwrap_or(false) {
            return Ok(vec![None]);
        }
        let spatial = C::Sides::SPATIAL;
        let dy = spatial.image(self.name(), dy)?;
        let dx = match C::MODE {
            BorderMode::Pad => {
                let [_, h, w, _] = spatial.image_dims(self.name(), x.dims())?;
                crop(&dy, self.sides(), (h, w))?
            }
            BorderMode::Crop => pad(&dy, self.sides())?,
        };
        Ok(vec![Some(spatial.from_image(dx)?)])
    }
}
